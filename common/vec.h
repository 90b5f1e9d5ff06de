/* vec.h: a growable array of uint64 (stream and chunk ids) with sort/unique/intersect, and a
 * growable array of owned strings with sort/unique. Both own their memory; *_free is NULL-safe. */
#ifndef ST_COMMON_VEC_H
#define ST_COMMON_VEC_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* qsort for arrays that may be empty and NULL (qsort's base must not be NULL, even for 0 items). */
static inline void st_qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
    if (n > 1) qsort(base, n, size, cmp);
}

typedef struct {
    uint64_t *v;
    size_t n, cap;
} st_u64vec_t;

#define ST_U64VEC_INIT ((st_u64vec_t){NULL, 0, 0})

int st_u64vec_push(st_u64vec_t *a, uint64_t x);
void st_u64vec_free(st_u64vec_t *a);
/* Sorts ascending and removes duplicates. */
void st_u64vec_sort_unique(st_u64vec_t *a);
/* a := a ∩ b; both sorted unique. */
void st_u64vec_intersect(st_u64vec_t *a, const st_u64vec_t *b);
/* Binary search in a sorted vector. */
bool st_u64vec_contains(const st_u64vec_t *a, uint64_t x);

typedef struct {
    char **v; /* owned strings (NUL-terminated; lens in len) */
    size_t *len;
    size_t n, cap;
} st_strvec_t;

#define ST_STRVEC_INIT ((st_strvec_t){NULL, NULL, 0, 0})

int st_strvec_push(st_strvec_t *a, st_str_t s);
void st_strvec_free(st_strvec_t *a);
/* Sorts bytewise and removes duplicates. */
void st_strvec_sort_unique(st_strvec_t *a);
static inline st_str_t st_strvec_at(const st_strvec_t *a, size_t i) { return st_str(a->v[i], a->len[i]); }

#endif
