/* metric_range.c: range aggregations over logs (count_over_time, rate, bytes_*, *_over_time,
 * rate_counter, absent_over_time). Workers of the querier's pool take chunk blocks one at a time, run
 * their own pipeline clone and add each sample to every step window (t-range, t] that holds it, in
 * per-series step accumulators (difference arrays for counts and bytes, so a sample costs O(1)
 * whatever range/step is); the coordinator merges the workers' series and finalizes the values.
 * Only blocks overlapping [start-range-offset, end-offset] are read. */
#include "querier/metric_int.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/pool.h"
#include "common/search.h"
#include "common/timeutil.h"

#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* How samples are accumulated per step. */
typedef enum {
    ACC_COUNT,   /* n: difference array */
    ACC_BYTES,   /* n, a: difference arrays */
    ACC_SUM,     /* n, a = sum */
    ACC_MIN,     /* n, a */
    ACC_MAX,     /* n, a */
    ACC_AVG,     /* n, a = running mean */
    ACC_VAR,     /* n, a = mean, b = M2 (Welford) */
    ACC_FIRST,   /* n, a, ts */
    ACC_LAST,    /* n, a, ts */
    ACC_SAMPLES, /* every sample kept (quantile_over_time, rate_counter) */
} acc_kind_t;

typedef enum { G_FULL, G_NONE, G_BY, G_WITHOUT } gmode_t;

#define CACHE_MAX 65536 /* entries of a worker's label-hash caches before they are cleared */
#define PAGE_BITS 8
#define PAGE_MAX  (1u << PAGE_BITS)

/* Accumulators of PAGE_MAX (or fewer, for short queries) consecutive steps; arrays follow the struct. */
typedef struct {
    int64_t *n;
    double *a, *b;
    int64_t *ts;
} page_t;

typedef struct {
    int64_t ts;
    double v;
} smp_t;

typedef struct {
    st_labels_t labels; /* the series' labels after grouping */
    uint64_t key;       /* hash of their canonical text */
    bool error;         /* carries __error__ without __preserve_error__="true" */
    page_t **pages;     /* npages, allocated on first touch */
    smp_t *smp;         /* ACC_SAMPLES */
    size_t nsmp, capsmp;
} rseries_t;

typedef struct {
    rseries_t *s;
    size_t n, cap;
    st_mmap_t full; /* pipeline label hash -> series (worker tables) */
    st_mmap_t keys; /* grouped label hash -> series */
} rtable_t;

typedef struct rjob {
    st_mctx_t *c;
    const st_logql_expr_t *e;
    st_logql_range_op_t op;
    acc_kind_t kind;
    gmode_t gmode;
    const st_str_t *gnames;
    size_t ngnames;
    bool unwrap;
    st_pipeline_t *pl; /* compiled once; worker 0 uses it, the others clones */
    bool line_only;
    bool has_lit;
    bool lit_only; /* st_pipeline_literal_only: a line the prefilter marked passes */
    st_str_t lit;
    st_finder_t finder;
    qsel_t sel;
    int64_t s0, step, range; /* window i: (s0 + i*step - range, s0 + i*step] */
    size_t nsteps, pg, npages;
    int64_t from, through; /* entries with from < ts <= through */
    size_t cap;            /* series limit */
    int64_t deadline;
    _Atomic size_t next; /* next block to take */
    _Atomic int stop;
} rjob_t;

typedef struct {
    st_task_t task; /* first: the pool hands back this pointer */
    rjob_t *job;
    st_pipeline_t *pl;
    bool own_pl;
    rtable_t tab;
    int32_t *stream_series; /* per selected stream (fast path): series index, -1 unknown */
    st_mmap_t mdcache;      /* (stream, structured metadata) -> series, for pipelines that only filter */
    st_qstats_t stats;
    st_block_t blk;
    st_buf_t scratch, lbuf;
    uint8_t *hit;
    size_t hitcap;
    uint32_t fd_file;
    int fd;
    int rc;
    bool perr; /* a pipeline error was found */
    size_t perr_step;
    char *perr_labels; /* canonical text of the failing series */
    char *perr_type;   /* its __error__ value */
} rworker_t;

/* ---- pure window functions ------------------------------------------------------------------------ */

double st_metric_extrapolated_rate(const int64_t *ts, const double *v, size_t n, int64_t range_ns,
                                   int64_t range_end, bool is_counter, bool is_rate)
{
    /* Prometheus' extrapolatedRate as Loki adapts it: ns timestamps, the window from the query */
    if (n < 2) return 0;
    int64_t range_start = range_end - range_ns;
    double result = v[n - 1] - v[0];
    if (is_counter) {
        double last = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < last) result += last;
            last = v[i];
        }
    }
    double to_start = (double)(ts[0] - range_start) / 1e9;
    double to_end = (double)(range_end - ts[n - 1]) / 1e9;
    double sampled = (double)(ts[n - 1] - ts[0]) / 1e9;
    double avg_between = sampled / (double)(n - 1);
    double threshold = avg_between * 1.1;
    if (to_start >= threshold) to_start = avg_between / 2;
    if (is_counter) {
        double to_zero = to_start;
        if (result > 0 && v[0] >= 0) to_zero = sampled * (v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    if (to_end >= threshold) to_end = avg_between / 2;
    double interval = sampled + to_start + to_end;
    result = result * (interval / sampled);
    if (is_rate) {
        double secs = (double)(range_ns / ST_NS_PER_SEC) + (double)(range_ns % ST_NS_PER_SEC) / 1e9;
        result /= secs;
    }
    return result;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) return isnan(x) ? (isnan(y) ? 0 : -1) : 1;
    return x < y ? -1 : x > y;
}

double st_metric_quantile(double q, double *v, size_t n)
{
    if (n == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (n > 1) qsort(v, n, sizeof *v, cmp_double);
    double rank = q * (double)(n - 1);
    double lo = floor(rank);
    if (lo < 0) lo = 0;
    double hi = lo + 1 > (double)(n - 1) ? (double)(n - 1) : lo + 1;
    double w = rank - floor(rank);
    return v[(size_t)lo] * (1 - w) + v[(size_t)hi] * w;
}

/* ---- series tables ---------------------------------------------------------------------------------- */

static void series_free(rjob_t *j, rseries_t *s)
{
    st_labels_free(&s->labels);
    if (s->pages)
        for (size_t p = 0; p < j->npages; p++) free(s->pages[p]);
    free(s->pages);
    free(s->smp);
}

static void table_free(rjob_t *j, rtable_t *t)
{
    for (size_t i = 0; i < t->n; i++) series_free(j, &t->s[i]);
    free(t->s);
    st_mmap_free(&t->full);
    st_mmap_free(&t->keys);
    memset(t, 0, sizeof *t);
}

static int table_add(rjob_t *j, rtable_t *t, st_labels_t *labels, uint64_t key, bool error, uint32_t *idx)
{
    if (t->n >= j->cap && !error) return ST_ELIMIT;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        rseries_t *s = realloc(t->s, cap * sizeof *s);
        if (s == NULL) return -ENOMEM;
        t->s = s;
        t->cap = cap;
    }
    rseries_t *s = &t->s[t->n];
    memset(s, 0, sizeof *s);
    if (j->kind != ACC_SAMPLES && (s->pages = calloc(j->npages, sizeof *s->pages)) == NULL) return -ENOMEM;
    ST_TRY(st_mmap_put(&t->keys, key, (uint32_t)t->n, NULL));
    s->labels = *labels;
    *labels = ST_LABELS_INIT;
    s->key = key;
    s->error = error;
    *idx = (uint32_t)t->n++;
    return 0;
}

static unsigned page_fields(acc_kind_t k)
{
    switch (k) {
    case ACC_COUNT: return 0;
    case ACC_VAR: return 3;
    case ACC_FIRST:
    case ACC_LAST: return 4 | 1;
    default: return 1;
    }
}

static page_t *page_new(rjob_t *j)
{
    unsigned f = page_fields(j->kind);
    size_t arrays = 1 + ((f & 1) != 0) + ((f & 2) != 0) + ((f & 4) != 0);
    page_t *p = calloc(1, sizeof *p + arrays * j->pg * 8);
    if (p == NULL) return NULL;
    char *a = (char *)(p + 1);
    p->n = (int64_t *)(void *)a;
    a += j->pg * 8;
    if (f & 1) {
        p->a = (double *)(void *)a;
        a += j->pg * 8;
    }
    if (f & 2) {
        p->b = (double *)(void *)a;
        a += j->pg * 8;
    }
    if (f & 4) p->ts = (int64_t *)(void *)a;
    return p;
}

static inline page_t *page_at(rjob_t *j, rseries_t *s, size_t i)
{
    page_t **pp = &s->pages[i >> PAGE_BITS];
    if (*pp == NULL) *pp = page_new(j);
    return *pp;
}

/* ---- sample accumulation ---------------------------------------------------------------------------- */

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static inline int64_t ceil_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a > 0) ? q + 1 : q;
}

/* The steps whose window holds ts: [*lo, *hi]; false when none. */
static inline bool steps_of(const rjob_t *j, int64_t ts, size_t *lo, size_t *hi)
{
    if (j->step == 0) {
        if (ts <= j->s0 - j->range || ts > j->s0) return false;
        *lo = *hi = 0;
        return true;
    }
    int64_t d = ts - j->s0;
    int64_t l = ceil_div(d, j->step), h = floor_div(d + j->range - 1, j->step);
    if (l < 0) l = 0;
    if (h > (int64_t)j->nsteps - 1) h = (int64_t)j->nsteps - 1;
    if (l > h) return false;
    *lo = (size_t)l;
    *hi = (size_t)h;
    return true;
}

static void record_pipeline_error(rworker_t *w, rseries_t *s, size_t step)
{
    if (w->perr && w->perr_step <= step) return;
    st_buf_t t = ST_BUF_INIT;
    st_str_t et = st_str("", 0);
    st_labels_get(&s->labels, ST_STR("__error__"), &et);
    if (st_labels_format(&s->labels, &t) < 0) {
        st_buf_free(&t);
        w->rc = -ENOMEM;
        return;
    }
    char *type = st_str_dup(et);
    free(w->perr_labels);
    free(w->perr_type);
    w->perr_labels = st_str_dup(st_str(t.data, t.len));
    st_buf_free(&t);
    w->perr_type = type;
    w->perr = true;
    w->perr_step = step;
    atomic_store(&w->job->stop, 1);
}

static int add_sample(rworker_t *w, uint32_t si, int64_t ts, double v)
{
    rjob_t *j = w->job;
    size_t lo, hi;
    if (!steps_of(j, ts, &lo, &hi)) return 0;
    rseries_t *s = &w->tab.s[si];
    if (s->error) {
        record_pipeline_error(w, s, lo);
        return 1;
    }
    page_t *p;
    switch (j->kind) {
    case ACC_COUNT:
    case ACC_BYTES:
        if ((p = page_at(j, s, lo)) == NULL) return -ENOMEM;
        p->n[lo & (PAGE_MAX - 1)]++;
        if (j->kind == ACC_BYTES) p->a[lo & (PAGE_MAX - 1)] += v;
        if (hi + 1 < j->nsteps) {
            if ((p = page_at(j, s, hi + 1)) == NULL) return -ENOMEM;
            p->n[(hi + 1) & (PAGE_MAX - 1)]--;
            if (j->kind == ACC_BYTES) p->a[(hi + 1) & (PAGE_MAX - 1)] -= v;
        }
        return 0;
    case ACC_SAMPLES:
        if (s->nsmp == s->capsmp) {
            size_t cap = s->capsmp ? s->capsmp * 2 : 64;
            smp_t *x = realloc(s->smp, cap * sizeof *x);
            if (x == NULL) return -ENOMEM;
            s->smp = x;
            s->capsmp = cap;
        }
        s->smp[s->nsmp++] = (smp_t){ts, v};
        return 0;
    default: break;
    }
    p = NULL;
    for (size_t i = lo; i <= hi; i++) {
        size_t k = i & (PAGE_MAX - 1);
        if (p == NULL || k == 0)
            if ((p = page_at(j, s, i)) == NULL) return -ENOMEM;
        int64_t n = ++p->n[k];
        double *a = &p->a[k];
        switch (j->kind) {
        case ACC_SUM: *a += v; break;
        case ACC_MIN:
            if (n == 1 || v < *a || isnan(*a)) *a = v;
            break;
        case ACC_MAX:
            if (n == 1 || v > *a || isnan(*a)) *a = v;
            break;
        case ACC_AVG:
            /* Loki's incremental mean, Inf-safe */
            if (n > 1 && isinf(*a)) {
                if (isinf(v) && (*a > 0) == (v > 0)) break;
                if (!isinf(v) && !isnan(v)) break;
            }
            *a += v / (double)n - *a / (double)n;
            break;
        case ACC_VAR: {
            double delta = v - *a;
            *a += delta / (double)n;
            p->b[k] += delta * (v - *a);
            break;
        }
        case ACC_FIRST:
            if (n == 1 || ts < p->ts[k]) {
                *a = v;
                p->ts[k] = ts;
            }
            break;
        case ACC_LAST:
            if (n == 1 || ts >= p->ts[k]) {
                *a = v;
                p->ts[k] = ts;
            }
            break;
        default: break;
        }
    }
    return 0;
}

/* ---- series identity ---------------------------------------------------------------------------------- */

/* Series of an entry whose pipeline labels are full (hash fullhash): cached per worker. */
static int series_of(rworker_t *w, const st_labels_t *full, uint64_t fullhash, bool has_error, uint32_t *out)
{
    if (st_mmap_get(&w->tab.full, fullhash, out)) return 0;
    rjob_t *j = w->job;
    st_labels_t red = ST_LABELS_INIT;
    bool error = false;
    int rc;
    gmode_t mode = j->gmode;
    has_error = has_error || st_labels_get(full, ST_STR("__error__"), NULL);
    if (has_error) {
        /* errors keep every label, so that the failing series can be reported */
        st_str_t pv;
        error = !(st_labels_get(full, ST_STR("__preserve_error__"), &pv) && st_str_eqc(pv, "true"));
        mode = G_FULL;
    }
    switch (mode) {
    case G_FULL: rc = st_mlabels_copy(full, &red); break;
    case G_NONE: rc = 0; break;
    default: rc = st_mlabels_by(full, j->gnames, j->ngnames, mode == G_WITHOUT, &red); break;
    }
    uint64_t key = 0;
    if (rc == 0) rc = st_mlabels_hash(&red, &w->lbuf, &key);
    uint32_t idx = 0;
    if (rc == 0 && !st_mmap_get(&w->tab.keys, key, &idx)) rc = table_add(j, &w->tab, &red, key, error, &idx);
    st_labels_free(&red);
    /* parsers can make every entry's label set unique: the cache is bounded, not the series */
    if (w->tab.full.n >= CACHE_MAX) st_mmap_clear(&w->tab.full);
    if (rc == 0) rc = st_mmap_put(&w->tab.full, fullhash, idx, NULL);
    if (rc == 0) *out = idx;
    return rc;
}

/* Series of an entry of stream si that has no structured metadata, when the pipeline only filters. */
static int stream_series(rworker_t *w, uint32_t si, uint32_t *out)
{
    if (w->stream_series[si] >= 0) {
        *out = (uint32_t)w->stream_series[si];
        return 0;
    }
    const st_labels_t *l = &w->job->sel.streams[si].labels;
    uint64_t h;
    ST_TRY(st_mlabels_hash(l, &w->lbuf, &h));
    ST_TRY(series_of(w, l, h, st_labels_get(l, ST_STR("__error__"), NULL), out));
    w->stream_series[si] = (int32_t)*out;
    return 0;
}

#define NO_SERIES (UINT32_MAX - 1) /* the pipeline dropped the entry */

/* Series of an entry with structured metadata when the pipeline only filters lines: its labels are
 * the stream's plus the metadata, so the series is cached per (stream, metadata bytes) and the
 * pipeline runs once per distinct pair. */
static int md_series(rworker_t *w, uint32_t sidx, int64_t ts, st_str_t line, st_str_t md, uint32_t *out)
{
    uint64_t key = st_hash64(md.p, md.n) ^ ((uint64_t)(sidx + 1) * UINT64_C(0x9E3779B97F4A7C15));
    if (st_mmap_get(&w->mdcache, key, out)) return 0;
    st_pipeline_result_t r;
    ST_TRY(st_pipeline_run_kept(w->pl, ts, line, &w->job->sel.streams[sidx].labels, md, &r));
    uint32_t si = NO_SERIES;
    if (r.keep) ST_TRY(series_of(w, r.labels, r.hash, r.has_error, &si));
    if (w->mdcache.n >= CACHE_MAX) st_mmap_clear(&w->mdcache);
    ST_TRY(st_mmap_put(&w->mdcache, key, si, NULL));
    *out = si;
    return 0;
}

/* ---- block scanning ----------------------------------------------------------------------------------- */

/* Marks the entries of a decoded block whose line contains the required literal (one search over the
 * block's contiguous text). */
static int prefilter(rworker_t *w, const st_block_t *b)
{
    ST_TRY(st_qhits_zero(&w->hit, &w->hitcap, b->n));
    st_qmark_lines(&w->job->finder, w->job->lit.n, b, w->hit);
    return 0;
}

static int read_block(rworker_t *w, const qblock_t *b)
{
    rjob_t *j = w->job;
    const qfile_t *f = &j->sel.files[b->file];
    int fd;
    if (f->borrowed) {
        fd = f->fd;
    } else {
        if (w->fd < 0 || w->fd_file != b->file) {
            if (w->fd >= 0) close(w->fd);
            w->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (w->fd < 0) return -errno;
            w->fd_file = b->file;
        }
        fd = w->fd;
    }
    int rc = st_block_read_for(fd, f->base, &b->meta, j->has_lit ? j->lit.p : NULL, j->lit.n, &w->scratch,
                               &w->blk);
    if (rc < 0) return rc;
    if (rc == 1) { /* the block's trigram filter proves no line holds the required literal: no sample */
        w->stats.compressed_bytes += b->meta.clen;
        return 0;
    }
    ST_TRY(st_qsel_filter_block(&j->sel, b->stream, &w->blk));
    w->stats.compressed_bytes += b->meta.clen;
    w->stats.decompressed_lines += w->blk.n;
    w->stats.decompressed_bytes += w->blk.line_off[w->blk.n];
    return 0;
}

/* k samples of total bytes `bytes` whose windows are steps [lo, hi] (unclamped; none when lo > hi). */
static int add_run(rworker_t *w, uint32_t si, int64_t lo, int64_t hi, int64_t k, double bytes)
{
    rjob_t *j = w->job;
    if (lo < 0) lo = 0;
    if (hi > (int64_t)j->nsteps - 1) hi = (int64_t)j->nsteps - 1;
    if (k == 0 || lo > hi) return 0;
    rseries_t *s = &w->tab.s[si];
    if (s->error) {
        record_pipeline_error(w, s, (size_t)lo);
        return 1;
    }
    page_t *p = page_at(j, s, (size_t)lo);
    if (p == NULL) return -ENOMEM;
    p->n[lo & (PAGE_MAX - 1)] += k;
    if (j->kind == ACC_BYTES) p->a[lo & (PAGE_MAX - 1)] += bytes;
    if (hi + 1 < (int64_t)j->nsteps) {
        if ((p = page_at(j, s, (size_t)hi + 1)) == NULL) return -ENOMEM;
        p->n[(hi + 1) & (PAGE_MAX - 1)] -= k;
        if (j->kind == ACC_BYTES) p->a[(hi + 1) & (PAGE_MAX - 1)] -= bytes;
    }
    return 0;
}

static uint32_t first_after(const int64_t *ts, uint32_t n, int64_t t)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ts[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* count/bytes over a decoded chunk block with a pipeline that only filters lines: entries are
 * time-sorted, so consecutive ones fall in the same step windows; each such run is counted per series
 * (stream labels plus structured metadata) and added once. */
typedef struct {
    uint32_t si;
    int64_t k;
    double bytes;
} run_slot_t;

#define RUN_SLOTS 8

static int flush_runs(rworker_t *w, run_slot_t *slots, int *n, int64_t lo, int64_t hi)
{
    for (int x = 0; x < *n; x++) {
        int rc = add_run(w, slots[x].si, lo, hi, slots[x].k, slots[x].bytes);
        if (rc != 0) return rc;
    }
    *n = 0;
    return 0;
}

static int process_block_counts(rworker_t *w, const qblock_t *b, bool use_hit)
{
    rjob_t *j = w->job;
    const st_block_t *blk = &w->blk;
    uint32_t a = first_after(blk->ts, blk->n, j->from), z = first_after(blk->ts, blk->n, j->through);
    w->stats.lines += z - a;
    w->stats.bytes += blk->line_off[z] - blk->line_off[a];
    if (blk->md_off) w->stats.md_bytes += blk->md_off[z] - blk->md_off[a];
    uint32_t stream_si;
    ST_TRY(stream_series(w, b->stream, &stream_si));
    run_slot_t slots[RUN_SLOTS];
    int nslots = 0, rc;
    int64_t lo = 0, hi = -1, boundary = INT64_MIN;
    for (uint32_t i = a; i < z; i++) {
        if (use_hit && !w->hit[i]) continue;
        st_str_t line = st_str(blk->lines + blk->line_off[i], blk->line_off[i + 1] - blk->line_off[i]);
        if (!(use_hit && j->lit_only) && !st_pipeline_keep_line(w->pl, line)) continue;
        int64_t ts = blk->ts[i];
        uint32_t si = stream_si;
        if (blk->md_off && blk->md_off[i + 1] > blk->md_off[i]) {
            st_str_t md = st_str(blk->md + blk->md_off[i], blk->md_off[i + 1] - blk->md_off[i]);
            ST_TRY(md_series(w, b->stream, ts, line, md, &si));
            if (si == NO_SERIES) continue;
        }
        w->stats.post_filter_lines++;
        if (ts > boundary) {
            if ((rc = flush_runs(w, slots, &nslots, lo, hi)) != 0) return rc;
            if (j->step == 0) {
                lo = hi = 0;
                boundary = INT64_MAX;
            } else {
                /* steps [lo, hi] hold ts until ts passes a window end or a window start */
                int64_t d = ts - j->s0;
                lo = ceil_div(d, j->step);
                hi = floor_div(d + j->range - 1, j->step);
                int64_t e1 = j->s0 + lo * j->step, e2 = j->s0 + (hi + 1) * j->step - j->range;
                boundary = e1 < e2 ? e1 : e2;
            }
        }
        int x = 0;
        while (x < nslots && slots[x].si != si) x++;
        if (x == nslots) {
            if (nslots == RUN_SLOTS && (rc = flush_runs(w, slots, &nslots, lo, hi)) != 0) return rc;
            x = nslots++;
            slots[x] = (run_slot_t){si, 0, 0};
        }
        slots[x].k++;
        slots[x].bytes += (double)line.n;
    }
    return flush_runs(w, slots, &nslots, lo, hi);
}

static int process_block(rworker_t *w, const qblock_t *b)
{
    rjob_t *j = w->job;
    uint32_t n;
    bool use_hit = false;
    if (b->is_mem) {
        n = (uint32_t)b->n;
    } else {
        ST_TRY(read_block(w, b));
        n = w->blk.n;
        if (j->has_lit) {
            ST_TRY(prefilter(w, &w->blk));
            use_hit = true;
        }
        if (j->line_only && !j->unwrap && (j->kind == ACC_COUNT || j->kind == ACC_BYTES))
            return process_block_counts(w, b, use_hit);
    }
    const st_labels_t *stream = &j->sel.streams[b->stream].labels;
    bool inside = b->min_ts > j->from && b->max_ts <= j->through;
    bool fast = j->line_only && !j->unwrap;
    bool bytes = j->kind == ACC_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        st_entry_t e = b->is_mem ? b->e[i] : st_block_entry(&w->blk, i);
        if (!inside && (e.ts <= j->from || e.ts > j->through)) continue;
        w->stats.lines++;
        w->stats.bytes += e.line.n;
        w->stats.md_bytes += e.md.n;
        if (b->is_mem) {
            w->stats.head_lines++;
            w->stats.head_bytes += e.line.n;
        }
        if (use_hit && !w->hit[i]) continue;
        uint32_t si;
        double v;
        int rc;
        if (fast) {
            if (!(use_hit && j->lit_only) && !st_pipeline_keep_line(w->pl, e.line)) continue;
            if (e.md.n == 0)
                ST_TRY(stream_series(w, b->stream, &si));
            else
                ST_TRY(md_series(w, b->stream, e.ts, e.line, e.md, &si));
            if (si == NO_SERIES) continue;
            v = bytes ? (double)e.line.n : 1;
        } else {
            /* the line filters in front of the first stage that changes labels or the line reject
             * most entries cheaply; the rest of the pipeline runs only on what they keep */
            if (!(use_hit && j->lit_only) && !st_pipeline_keep_line(w->pl, e.line)) continue;
            st_pipeline_result_t r;
            ST_TRY(st_pipeline_run_kept(w->pl, e.ts, e.line, stream, e.md, &r));
            if (!r.keep) continue;
            ST_TRY(series_of(w, r.labels, r.hash, r.has_error, &si));
            v = j->unwrap ? (r.has_value ? r.value : 0) : bytes ? (double)r.line.n : 1;
        }
        w->stats.post_filter_lines++;
        if ((rc = add_sample(w, si, e.ts, v)) != 0) return rc;
    }
    return 0;
}

static void worker_run(st_task_t *t)
{
    rworker_t *w = (rworker_t *)(void *)t;
    rjob_t *j = w->job;
    for (;;) {
        if (atomic_load_explicit(&j->stop, memory_order_relaxed)) break;
        size_t bi = atomic_fetch_add(&j->next, 1);
        if (bi >= j->sel.nblocks) break;
        if (st_mono_ns() > j->deadline) {
            w->rc = ST_ETIMEOUT;
            atomic_store(&j->stop, 1);
            break;
        }
        int rc = process_block(w, &j->sel.blocks[bi]);
        if (rc < 0) {
            if (w->rc == 0) w->rc = rc;
            atomic_store(&j->stop, 1);
            break;
        }
        if (rc > 0) break; /* pipeline error recorded */
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}

/* ---- merging and finalizing ----------------------------------------------------------------------- */

static void merge_page(rjob_t *j, page_t *d, const page_t *s)
{
    for (size_t k = 0; k < j->pg; k++) {
        int64_t dn = d->n[k], sn = s->n[k];
        if (j->kind == ACC_COUNT || j->kind == ACC_BYTES) {
            d->n[k] = dn + sn;
            if (j->kind == ACC_BYTES) d->a[k] += s->a[k];
            continue;
        }
        if (sn == 0) continue;
        d->n[k] = dn + sn;
        if (dn == 0) {
            d->a[k] = s->a[k];
            if (d->b) d->b[k] = s->b[k];
            if (d->ts) d->ts[k] = s->ts[k];
            continue;
        }
        double x = s->a[k], *a = &d->a[k];
        switch (j->kind) {
        case ACC_SUM: *a += x; break;
        case ACC_MIN:
            if (x < *a || isnan(*a)) *a = x;
            break;
        case ACC_MAX:
            if (x > *a || isnan(*a)) *a = x;
            break;
        case ACC_AVG:
            if (isinf(*a) || isinf(x)) {
                if (isinf(*a) && isinf(x))
                    *a = (*a > 0) == (x > 0) ? *a : NAN;
                else if (isinf(x))
                    *a = x;
            } else {
                *a += (x - *a) * ((double)sn / (double)(dn + sn));
            }
            break;
        case ACC_VAR: {
            double delta = x - *a, tot = (double)(dn + sn);
            *a += delta * (double)sn / tot;
            d->b[k] += s->b[k] + delta * delta * (double)dn * (double)sn / tot;
            break;
        }
        case ACC_FIRST:
            if (s->ts[k] < d->ts[k]) {
                *a = x;
                d->ts[k] = s->ts[k];
            }
            break;
        case ACC_LAST:
            if (s->ts[k] > d->ts[k]) {
                *a = x;
                d->ts[k] = s->ts[k];
            }
            break;
        default: break;
        }
    }
}

static int merge_series(rjob_t *j, rseries_t *d, rseries_t *s)
{
    if (j->kind == ACC_SAMPLES) {
        if (d->nsmp + s->nsmp > d->capsmp) {
            size_t cap = d->nsmp + s->nsmp;
            smp_t *x = realloc(d->smp, cap * sizeof *x);
            if (x == NULL) return -ENOMEM;
            d->smp = x;
            d->capsmp = cap;
        }
        memcpy(d->smp + d->nsmp, s->smp, s->nsmp * sizeof *s->smp);
        d->nsmp += s->nsmp;
        return 0;
    }
    for (size_t p = 0; p < j->npages; p++) {
        if (s->pages[p] == NULL) continue;
        if (d->pages[p] == NULL) {
            d->pages[p] = s->pages[p];
            s->pages[p] = NULL;
        } else {
            merge_page(j, d->pages[p], s->pages[p]);
        }
    }
    return 0;
}

static int merge_into(rjob_t *j, rtable_t *g, rtable_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        rseries_t *s = &t->s[i];
        uint32_t idx;
        if (st_mmap_get(&g->keys, s->key, &idx)) {
            ST_TRY(merge_series(j, &g->s[idx], s));
            continue;
        }
        if (g->n >= j->cap) return ST_ELIMIT;
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 8;
            rseries_t *x = realloc(g->s, cap * sizeof *x);
            if (x == NULL) return -ENOMEM;
            g->s = x;
            g->cap = cap;
        }
        ST_TRY(st_mmap_put(&g->keys, s->key, (uint32_t)g->n, NULL));
        g->s[g->n++] = *s;
        memset(s, 0, sizeof *s);
    }
    return 0;
}

static int cmp_smp(const void *a, const void *b)
{
    const smp_t *x = a, *y = b;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

static double range_seconds(int64_t ns)
{
    return (double)(ns / ST_NS_PER_SEC) + (double)(ns % ST_NS_PER_SEC) / 1e9;
}

/* Window values of a series kept as samples (quantile_over_time, rate_counter). */
static int finalize_samples(rjob_t *j, rseries_t *s, st_mseries_t *o)
{
    /* time order; equal timestamps keep their order (a stable merge would be needed for full
     * fidelity with Loki's iterator, which breaks ties by labels) */
    if (s->nsmp > 1) qsort(s->smp, s->nsmp, sizeof *s->smp, cmp_smp);
    int64_t *ts = malloc((s->nsmp ? s->nsmp : 1) * sizeof *ts);
    double *v = malloc((s->nsmp ? s->nsmp : 1) * sizeof *v);
    if (ts == NULL || v == NULL) {
        free(ts);
        free(v);
        return -ENOMEM;
    }
    size_t lo = 0, hi = 0;
    for (size_t i = 0; i < j->nsteps; i++) {
        int64_t end = j->s0 + (int64_t)i * j->step;
        while (hi < s->nsmp && s->smp[hi].ts <= end) hi++;
        while (lo < hi && s->smp[lo].ts <= end - j->range) lo++;
        if (lo >= hi) continue;
        size_t n = hi - lo;
        for (size_t k = 0; k < n; k++) {
            ts[k] = s->smp[lo + k].ts;
            v[k] = s->smp[lo + k].v;
        }
        double x = j->op == ST_LOGQL_RANGE_QUANTILE_OVER_TIME
                       ? st_metric_quantile(j->e->range_agg.param, v, n)
                       : st_metric_extrapolated_rate(ts, v, n, j->range, end, true, true);
        st_mseries_set(o, i, x);
    }
    free(ts);
    free(v);
    return 0;
}

static void finalize_acc(rjob_t *j, rseries_t *s, st_mseries_t *o, uint8_t *any)
{
    double secs = range_seconds(j->range);
    int64_t c = 0;
    double bytes = 0;
    for (size_t i = 0; i < j->nsteps; i++) {
        const page_t *p = s->pages[i >> PAGE_BITS];
        size_t k = i & (PAGE_MAX - 1);
        if (j->kind == ACC_COUNT || j->kind == ACC_BYTES) {
            if (p) {
                c += p->n[k];
                if (j->kind == ACC_BYTES) bytes += p->a[k];
            }
            if (c <= 0) continue;
            double v = (double)c;
            switch (j->op) {
            case ST_LOGQL_RANGE_RATE: v = (double)c / secs; break;
            case ST_LOGQL_RANGE_BYTES_OVER_TIME: v = bytes; break;
            case ST_LOGQL_RANGE_BYTES_RATE: v = bytes / secs; break;
            case ST_LOGQL_RANGE_ABSENT_OVER_TIME: any[i] = 1; continue;
            default: break;
            }
            st_mseries_set(o, i, v);
            continue;
        }
        if (p == NULL || p->n[k] == 0) continue;
        double v = p->a[k];
        switch (j->op) {
        case ST_LOGQL_RANGE_RATE: v = p->a[k] / secs; break;
        case ST_LOGQL_RANGE_STDVAR_OVER_TIME: v = p->b[k] / (double)p->n[k]; break;
        case ST_LOGQL_RANGE_STDDEV_OVER_TIME: v = sqrt(p->b[k] / (double)p->n[k]); break;
        case ST_LOGQL_RANGE_ABSENT_OVER_TIME: any[i] = 1; continue;
        default: break;
        }
        st_mseries_set(o, i, v);
    }
}

/* absent_over_time labels (Loki's absentLabels): the selector's equality matchers, minus every name
 * that another matcher (or a repeated one) also uses. */
static int absent_labels(const st_logql_selector_t *sel, st_labels_t *out)
{
    size_t n = sel->n ? sel->n : 1;
    st_label_t *pairs = malloc(n * sizeof *pairs);
    st_str_t *drop = malloc(n * sizeof *drop);
    int rc = pairs && drop ? 0 : -ENOMEM;
    size_t k = 0, nd = 0;
    for (size_t i = 0; i < sel->n && rc == 0; i++) {
        const st_logql_matcher_t *m = &sel->v[i];
        bool have = false;
        for (size_t x = 0; x < k; x++) have |= st_str_eq(pairs[x].name, m->name);
        if (m->type == ST_LOGQL_MATCH_EQ && !have)
            pairs[k++] = (st_label_t){m->name, m->value};
        else
            drop[nd++] = m->name;
    }
    size_t kept = 0;
    for (size_t x = 0; x < k; x++) {
        bool d = false;
        for (size_t y = 0; y < nd; y++) d |= st_str_eq(pairs[x].name, drop[y]);
        if (!d) pairs[kept++] = pairs[x];
    }
    if (rc == 0) rc = st_labels_from_pairs(pairs, kept, out);
    free(pairs);
    free(drop);
    return rc;
}

static int cmp_rseries(const void *a, const void *b)
{
    return st_mlabels_cmp(&((const rseries_t *)a)->labels, &((const rseries_t *)b)->labels);
}

static int finalize(st_mctx_t *c, rjob_t *j, rtable_t *g, st_matrix_t *out)
{
    /* series in label order, so that later floating-point aggregation does not depend on which
     * worker met a series first */
    if (g->n > 1) qsort(g->s, g->n, sizeof *g->s, cmp_rseries);
    uint8_t *any = NULL;
    bool absent = j->op == ST_LOGQL_RANGE_ABSENT_OVER_TIME;
    if (absent && (any = calloc(j->nsteps, 1)) == NULL) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        rseries_t *s = &g->s[i];
        if (absent) {
            finalize_acc(j, s, NULL, any);
            continue;
        }
        size_t oi;
        st_labels_t l = s->labels;
        s->labels = ST_LABELS_INIT;
        if ((rc = st_matrix_take(out, &l, s->key, &oi)) < 0) break;
        if (j->kind == ACC_SAMPLES)
            rc = finalize_samples(j, s, &out->s[oi]);
        else
            finalize_acc(j, s, &out->s[oi], NULL);
    }
    if (absent && rc == 0) {
        st_labels_t l = ST_LABELS_INIT;
        uint64_t h;
        size_t oi;
        rc = absent_labels(&j->e->range_agg.range.selector, &l);
        if (rc == 0 && (rc = st_mlabels_hash(&l, &c->scratch, &h)) == 0) rc = st_matrix_take(out, &l, h, &oi);
        st_labels_free(&l);
        for (size_t i = 0; i < j->nsteps && rc == 0; i++)
            if (!any[i]) st_mseries_set(&out->s[oi], i, 1);
    }
    free(any);
    return rc;
}

/* ---- entry point ----------------------------------------------------------------------------------------
 */

bool st_metric_can_push_sum(const st_logql_expr_t *e)
{
    if (e->kind != ST_LOGQL_EXPR_RANGE_AGG || e->range_agg.grouping.present) return false;
    switch (e->range_agg.op) {
    case ST_LOGQL_RANGE_COUNT_OVER_TIME:
    case ST_LOGQL_RANGE_RATE:
    case ST_LOGQL_RANGE_BYTES_OVER_TIME:
    case ST_LOGQL_RANGE_BYTES_RATE:
    case ST_LOGQL_RANGE_SUM_OVER_TIME: return true;
    default: return false;
    }
}

static acc_kind_t kind_of(st_logql_range_op_t op, bool unwrap)
{
    switch (op) {
    case ST_LOGQL_RANGE_COUNT_OVER_TIME:
    case ST_LOGQL_RANGE_ABSENT_OVER_TIME: return ACC_COUNT;
    case ST_LOGQL_RANGE_RATE: return unwrap ? ACC_SUM : ACC_COUNT;
    case ST_LOGQL_RANGE_BYTES_OVER_TIME:
    case ST_LOGQL_RANGE_BYTES_RATE: return ACC_BYTES;
    case ST_LOGQL_RANGE_SUM_OVER_TIME: return ACC_SUM;
    case ST_LOGQL_RANGE_MIN_OVER_TIME: return ACC_MIN;
    case ST_LOGQL_RANGE_MAX_OVER_TIME: return ACC_MAX;
    case ST_LOGQL_RANGE_AVG_OVER_TIME: return ACC_AVG;
    case ST_LOGQL_RANGE_STDVAR_OVER_TIME:
    case ST_LOGQL_RANGE_STDDEV_OVER_TIME: return ACC_VAR;
    case ST_LOGQL_RANGE_FIRST_OVER_TIME: return ACC_FIRST;
    case ST_LOGQL_RANGE_LAST_OVER_TIME: return ACC_LAST;
    case ST_LOGQL_RANGE_QUANTILE_OVER_TIME:
    case ST_LOGQL_RANGE_RATE_COUNTER: return ACC_SAMPLES;
    }
    return ACC_COUNT;
}

/* Effective grouping of the extracted series (Loki's RangeAggregationExpr.extractor). */
static void set_grouping(rjob_t *j, const st_logql_expr_t *e, const st_logql_grouping_t *outer)
{
    const st_logql_grouping_t *g = outer                           ? outer
                                   : e->range_agg.grouping.present ? &e->range_agg.grouping
                                                                   : NULL;
    j->gmode = G_FULL;
    if (e->range_agg.op == ST_LOGQL_RANGE_ABSENT_OVER_TIME)
        j->gmode = G_NONE;
    else if (g == NULL)
        j->gmode = G_FULL;
    else if (!g->without && g->n == 0)
        j->gmode = G_NONE;
    else if (g->without && g->n == 0)
        j->gmode = G_FULL;
    else
        j->gmode = g->without ? G_WITHOUT : G_BY;
    if (g) {
        j->gnames = g->labels;
        j->ngnames = g->n;
    }
}

int st_metric_series_limit_error(st_mctx_t *c, int limit)
{
    return st_qerr(
        c->err, 400, ST_ELIMIT,
        "maximum number of series (%d) reached for a single query; consider reducing query cardinality by "
        "adding more specific stream selectors, reducing the time range, or aggregating results with "
        "functions like sum(), count() or topk()",
        limit);
}

static int worker_error(st_mctx_t *c, rjob_t *j, int rc)
{
    if (rc == ST_ETIMEOUT) return st_qerr(c->err, 504, rc, ST_METRIC_TIMEOUT_MSG);
    if (rc == ST_ELIMIT) return st_metric_series_limit_error(c, (int)j->cap);
    return st_qerr(c->err, 500, rc, "reading chunks: %s", st_strerror(rc));
}

static rjob_t *job_new(st_mctx_t *c, const st_logql_expr_t *e, const st_logql_grouping_t *outer)
{
    const st_logql_log_range_t *lr = &e->range_agg.range;
    rjob_t *j = calloc(1, sizeof *j);
    if (j == NULL) return NULL;
    j->c = c;
    j->e = e;
    j->op = e->range_agg.op;
    j->unwrap = lr->unwrap != NULL;
    j->kind = kind_of(j->op, j->unwrap);
    set_grouping(j, e, outer);
    j->nsteps = c->steps.n;
    j->step = c->steps.step;
    j->range = lr->range_ns;
    j->s0 = c->steps.start - lr->offset_ns;
    j->from = j->s0 - j->range;
    j->through = j->s0 + (int64_t)(j->nsteps - 1) * j->step;
    j->pg = j->nsteps < PAGE_MAX ? j->nsteps : PAGE_MAX;
    j->npages = (j->nsteps + PAGE_MAX - 1) / PAGE_MAX;
    j->deadline = c->deadline;
    if (c->max_series <= 0)
        j->cap = SIZE_MAX;
    else if (c->output_range == e)
        j->cap = (size_t)c->max_series;
    else
        j->cap = (size_t)c->max_series * 100 > 10000 ? (size_t)c->max_series * 100 : 10000;
    atomic_init(&j->next, 0);
    atomic_init(&j->stop, 0);
    return j;
}

static int workers_new(rjob_t *j, size_t nw, rworker_t **out)
{
    rworker_t *w = calloc(nw, sizeof *w);
    if (w == NULL) return -ENOMEM;
    *out = w;
    for (size_t i = 0; i < nw; i++) {
        w[i].job = j;
        w[i].fd = -1;
        w[i].task.fn = worker_run;
        w[i].stream_series = malloc((j->sel.nstreams ? j->sel.nstreams : 1) * sizeof *w[i].stream_series);
        if (w[i].stream_series == NULL) return -ENOMEM;
        for (size_t k = 0; k < j->sel.nstreams; k++) w[i].stream_series[k] = -1;
        if (i == 0) {
            w[i].pl = j->pl;
        } else {
            ST_TRY(st_pipeline_clone(j->pl, &w[i].pl));
            w[i].own_pl = true;
        }
    }
    return 0;
}

static void job_free(rjob_t *j, rworker_t *w, size_t nw)
{
    for (size_t i = 0; w && i < nw; i++) {
        table_free(j, &w[i].tab);
        st_mmap_free(&w[i].mdcache);
        if (w[i].own_pl) st_pipeline_free(w[i].pl);
        free(w[i].stream_series);
        st_block_free(&w[i].blk);
        st_buf_free(&w[i].scratch);
        st_buf_free(&w[i].lbuf);
        free(w[i].hit);
        free(w[i].perr_labels);
        free(w[i].perr_type);
    }
    free(w);
    st_qsel_free(&j->sel);
    st_pipeline_free(j->pl);
    free(j);
}

/* After the workers: statistics, errors (a pipeline error at the earliest step wins, then the first
 * failure), then the merged series' values. */
static int job_finish(st_mctx_t *c, rjob_t *j, rworker_t *w, size_t nw, st_matrix_t *out)
{
    rworker_t *pe = NULL;
    int werr = 0;
    for (size_t i = 0; i < nw; i++) {
        st_qstats_t *s = &w[i].stats;
        c->stats.lines += s->lines;
        c->stats.bytes += s->bytes;
        c->stats.post_filter_lines += s->post_filter_lines;
        c->stats.md_bytes += s->md_bytes;
        c->stats.head_lines += s->head_lines;
        c->stats.head_bytes += s->head_bytes;
        c->stats.compressed_bytes += s->compressed_bytes;
        c->stats.decompressed_lines += s->decompressed_lines;
        c->stats.decompressed_bytes += s->decompressed_bytes;
        if (w[i].perr && (pe == NULL || w[i].perr_step < pe->perr_step)) pe = &w[i];
        if (w[i].rc < 0 && werr == 0) werr = w[i].rc;
    }
    if (pe)
        return st_qerr(
            c->err, 400, ST_EPARSE,
            "pipeline error: '%s' for series: '%s'.\n"
            "Use a label filter to intentionally skip this error. (e.g | __error__!=\"%s\").\n"
            "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
            "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n",
            pe->perr_type, pe->perr_labels, pe->perr_type);
    if (werr < 0) return worker_error(c, j, werr);
    rtable_t g;
    memset(&g, 0, sizeof g);
    int rc = 0;
    for (size_t i = 0; i < nw && rc == 0; i++) rc = merge_into(j, &g, &w[i].tab);
    if (rc == 0) rc = finalize(c, j, &g, out);
    table_free(j, &g);
    if (rc == ST_ELIMIT) return worker_error(c, j, rc);
    if (rc < 0) return st_qerr(c->err, 500, rc, "%s", st_strerror(rc));
    return 0;
}

int st_metric_range(st_mctx_t *c, const st_logql_expr_t *e, const st_logql_grouping_t *outer,
                    st_matrix_t *out)
{
    const st_logql_log_range_t *lr = &e->range_agg.range;
    st_matrix_init(out, c->steps.n);
    rjob_t *j = job_new(c, e, outer);
    if (j == NULL) return st_qerr(c->err, 500, -ENOMEM, "out of memory");
    rworker_t *w = NULL;
    size_t nw = 0;
    char perr[256];
    int rc = st_pipeline_compile(&lr->pipeline, lr->unwrap, &j->pl, perr);
    if (rc < 0) {
        j->pl = NULL;
        rc = rc == ST_EPARSE ? st_qerr(c->err, 400, rc, "%s", perr)
                             : st_qerr(c->err, 500, rc, "%s", st_strerror(rc));
        goto done;
    }
    j->line_only = st_pipeline_line_only(j->pl);
    j->has_lit = j->line_only && st_pipeline_required_literal(j->pl, &j->lit);
    if (j->has_lit) st_finder_init(&j->finder, j->lit.p, j->lit.n);
    j->lit_only = j->has_lit && st_pipeline_literal_only(j->pl);
    if ((rc = st_qsel_build(c->q, c->tenant, &lr->selector, j->from + 1, j->through, true, &j->sel,
                            &c->stats)) < 0) {
        rc = st_qerr(c->err, 500, rc, "selecting streams: %s", st_strerror(rc));
        goto done;
    }
    if ((rc = st_qsel_warnings(&j->sel, &c->warnings)) < 0) goto done;
    for (size_t i = 0; i < j->sel.nfiles; i++)
        if (j->sel.files[i].pending > 0) c->stats.chunks_downloaded++;
    nw = (size_t)st_querier_threads(c->q);
    if (nw > j->sel.nblocks) nw = j->sel.nblocks ? j->sel.nblocks : 1;
    if ((rc = workers_new(j, nw, &w)) < 0) {
        rc = st_qerr(c->err, 500, rc, "%s", st_strerror(rc));
        goto done;
    }
    if (j->sel.nblocks > 0) {
        /* the coordinator works too; a task the pool has not started yet runs here in st_pool_wait */
        for (size_t i = 1; i < nw; i++)
            if (st_pool_submit(c->q->pool, &w[i].task) < 0) worker_run(&w[i].task);
        worker_run(&w[0].task);
        for (size_t i = 1; i < nw; i++) st_pool_wait(c->q->pool, &w[i].task);
    }
    rc = job_finish(c, j, w, nw, out);
done:
    job_free(j, w, nw);
    if (rc < 0) st_matrix_free(out);
    return rc;
}

int st_metric_range_samples(st_mctx_t *c, const st_logql_expr_t *e, const st_logql_grouping_t *outer,
                            const st_msample_t *s, size_t n, st_matrix_t *out)
{
    st_matrix_init(out, c->steps.n);
    rjob_t *j = job_new(c, e, outer);
    if (j == NULL) return st_qerr(c->err, 500, -ENOMEM, "out of memory");
    rworker_t *w = calloc(1, sizeof *w);
    int rc = w ? 0 : -ENOMEM;
    if (w) {
        w->job = j;
        w->fd = -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (s[i].ts <= j->from || s[i].ts > j->through) continue;
        uint64_t h;
        uint32_t si;
        if ((rc = st_mlabels_hash(s[i].labels, &w->lbuf, &h)) < 0) break;
        if ((rc = series_of(w, s[i].labels, h, false, &si)) < 0) break;
        rc = add_sample(w, si, s[i].ts, s[i].v);
        if (rc > 0) rc = 0; /* pipeline error recorded */
        if (w->perr) break;
    }
    if (rc < 0) w->rc = rc;
    rc = w ? job_finish(c, j, w, 1, out) : st_qerr(c->err, 500, rc, "out of memory");
    job_free(j, w, w ? 1 : 0);
    if (rc < 0) st_matrix_free(out);
    return rc;
}
