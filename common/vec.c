/* vec.c: uint64 and string vectors (see vec.h). */
#include "common/vec.h"

#include <errno.h>
#include <stdlib.h>

int st_u64vec_push(st_u64vec_t *a, uint64_t x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        uint64_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

void st_u64vec_free(st_u64vec_t *a)
{
    if (a == NULL) return;
    free(a->v);
    *a = ST_U64VEC_INIT;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

void st_u64vec_sort_unique(st_u64vec_t *a)
{
    if (a->n < 2) return;
    st_qsort(a->v, a->n, sizeof *a->v, cmp_u64);
    size_t w = 1;
    for (size_t i = 1; i < a->n; i++)
        if (a->v[i] != a->v[w - 1]) a->v[w++] = a->v[i];
    a->n = w;
}

void st_u64vec_intersect(st_u64vec_t *a, const st_u64vec_t *b)
{
    size_t i = 0, j = 0, w = 0;
    while (i < a->n && j < b->n) {
        if (a->v[i] < b->v[j]) i++;
        else if (a->v[i] > b->v[j]) j++;
        else {
            a->v[w++] = a->v[i];
            i++;
            j++;
        }
    }
    a->n = w;
}

bool st_u64vec_contains(const st_u64vec_t *a, uint64_t x)
{
    size_t lo = 0, hi = a->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a->v[mid] == x) return true;
        if (a->v[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

int st_strvec_push(st_strvec_t *a, st_str_t s)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        char **v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        a->v = v;
        size_t *l = realloc(a->len, cap * sizeof *l);
        if (l == NULL) return -ENOMEM;
        a->len = l;
        a->cap = cap;
    }
    char *c = st_str_dup(s);
    if (c == NULL) return -ENOMEM;
    a->v[a->n] = c;
    a->len[a->n] = s.n;
    a->n++;
    return 0;
}

void st_strvec_free(st_strvec_t *a)
{
    if (a == NULL) return;
    for (size_t i = 0; i < a->n; i++) free(a->v[i]);
    free(a->v);
    free(a->len);
    *a = ST_STRVEC_INIT;
}

typedef struct {
    char *s;
    size_t n;
} pair_t;

static int cmp_pair(const void *x, const void *y)
{
    const pair_t *a = x, *b = y;
    return st_str_cmp(st_str(a->s, a->n), st_str(b->s, b->n));
}

void st_strvec_sort_unique(st_strvec_t *a)
{
    if (a->n < 2) return;
    pair_t *p = malloc(a->n * sizeof *p);
    if (p == NULL) return; /* leaves the vector unsorted; callers still get correct members */
    for (size_t i = 0; i < a->n; i++) p[i] = (pair_t){a->v[i], a->len[i]};
    st_qsort(p, a->n, sizeof *p, cmp_pair);
    size_t w = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (w > 0 && p[i].n == a->len[w - 1] && memcmp(p[i].s, a->v[w - 1], p[i].n) == 0) {
            free(p[i].s);
            continue;
        }
        a->v[w] = p[i].s;
        a->len[w] = p[i].n;
        w++;
    }
    a->n = w;
    free(p);
}
