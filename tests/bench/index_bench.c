/* index_bench.c: how long the index takes from a selector to chunk references (the querier's first
 * step), on a real data directory (e.g. one filled by tests/bench/query_bench.sh with 100,000
 * streams). It samples streams from the index, builds for each a selective selector ({host="..",
 * job=".."}, every label of the stream) and a one-label selector, and times st_index_select plus
 * st_index_chunks over the days in range, in a fresh read transaction each time (as a query does).
 *
 * Usage: strata-index-bench <index dir> [tenant fake] [samples 1000] */
#include "common/labels.h"
#include "common/timeutil.h"
#include "common/vec.h"
#include "index/index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t *v;
    size_t n, cap;
    int64_t day_min, day_max;
    const char *tenant;
} ids_t;

static int scan_cb(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    ids_t *a = arg;
    if (strcmp(tenant, a->tenant) != 0) return 0;
    if (day < a->day_min) a->day_min = day;
    if (day > a->day_max) a->day_max = day;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 1024;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (a->v == NULL) return -ENOMEM;
    }
    a->v[a->n++] = ref->stream_id;
    return 0;
}

static int count_cb(void *arg, const st_chunk_ref_t *ref)
{
    (void)ref;
    (*(size_t *)arg)++;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* One lookup: select + chunk refs for every selected stream and day. Returns the refs found. */
static size_t lookup(st_index_t *ix, const char *tenant, const st_matcher_t *m, size_t nm, int64_t d0, int64_t d1)
{
    st_index_read_t *r;
    if (st_index_read_begin(ix, &r) < 0) return 0;
    st_u64vec_t ids = ST_U64VEC_INIT;
    size_t refs = 0;
    if (st_index_select(r, tenant, d0, d1, m, nm, &ids) == 0)
        for (size_t i = 0; i < ids.n; i++)
            for (int64_t d = d0; d <= d1; d++) st_index_chunks(r, tenant, d, ids.v[i], INT64_MIN, INT64_MAX, count_cb, &refs);
    st_u64vec_free(&ids);
    st_index_read_end(r);
    return refs;
}

static void report(const char *what, int64_t *t, size_t n, size_t refs)
{
    qsort(t, n, sizeof *t, cmp_i64);
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)t[i];
    printf("%-44s mean %7.1f us  p50 %7.1f us  p99 %7.1f us  (%zu lookups, %.1f chunk refs each)\n", what,
           sum / (double)n / 1e3, (double)t[n / 2] / 1e3, (double)t[n * 99 / 100] / 1e3, n, (double)refs / (double)n);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <index dir> [tenant] [samples]\n", argv[0]);
        return 2;
    }
    const char *tenant = argc > 2 ? argv[2] : "fake";
    size_t samples = argc > 3 ? (size_t)atol(argv[3]) : 1000;
    st_index_t *ix;
    if (st_index_open(argv[1], (size_t)64 << 30, &ix) < 0) {
        fprintf(stderr, "cannot open index %s\n", argv[1]);
        return 1;
    }
    ids_t a = {NULL, 0, 0, INT64_MAX, INT64_MIN, tenant};
    st_index_read_t *r;
    st_index_read_begin(ix, &r);
    st_index_scan_chunks(r, scan_cb, &a);
    qsort(a.v, a.n, sizeof *a.v, cmp_u64);
    size_t w = 0;
    for (size_t i = 0; i < a.n; i++)
        if (w == 0 || a.v[i] != a.v[w - 1]) a.v[w++] = a.v[i];
    a.n = w;
    printf("index %s: tenant %s, %zu streams, days %lld..%lld\n", argv[1], tenant, a.n, (long long)a.day_min,
           (long long)a.day_max);
    if (a.n == 0) return 1;
    /* sample streams and keep their label sets */
    st_labels_t *ls = calloc(samples, sizeof *ls);
    srand(42);
    for (size_t i = 0; i < samples; i++) {
        st_str_t text;
        char err[256];
        if (st_index_stream(r, tenant, a.v[(size_t)rand() % a.n], &text, NULL) == 0) st_labels_parse(text, &ls[i], err);
    }
    st_index_read_end(r);
    int64_t *t = calloc(samples, sizeof *t);
    size_t refs = 0;
    /* every label of the stream: the most selective selector */
    for (size_t i = 0; i < samples; i++) {
        st_matcher_t m[16];
        size_t nm = 0;
        for (size_t k = 0; k < ls[i].n && nm < 16; k++)
            m[nm++] = (st_matcher_t){ST_MATCH_EQ, ls[i].v[k].name, ls[i].v[k].value, NULL, NULL};
        int64_t t0 = st_mono_ns();
        refs += lookup(ix, tenant, m, nm, a.day_min, a.day_max);
        t[i] = st_mono_ns() - t0;
    }
    report("selector with all labels of one stream", t, samples, refs);
    /* the stream's last label alone (host=... in the bench data) */
    refs = 0;
    for (size_t i = 0; i < samples; i++) {
        if (ls[i].n == 0) continue;
        const st_label_t *l = &ls[i].v[ls[i].n > 1 ? 1 : 0];
        st_matcher_t m = {ST_MATCH_EQ, l->name, l->value, NULL, NULL};
        int64_t t0 = st_mono_ns();
        refs += lookup(ix, tenant, &m, 1, a.day_min, a.day_max);
        t[i] = st_mono_ns() - t0;
    }
    report("selector with one label (second label)", t, samples, refs);
    for (size_t i = 0; i < samples; i++) st_labels_free(&ls[i]);
    free(ls);
    free(t);
    free(a.v);
    st_index_close(ix);
    return 0;
}
