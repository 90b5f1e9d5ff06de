/* metric_int.h: internals of the LogQL metric engine (querier/metric*.c), shared with its tests.
 *
 * A metric expression is evaluated bottom-up into matrices: one row of values per series over the
 * query's steps (t_i = start + i*step, i < n; an instant query has one step), each value present or
 * absent. metric_range.c computes range aggregations over logs on the worker pool, metric_vec.c
 * vector aggregations, binary operators and label_replace, metric.c walks the tree, applies Loki's
 * limits and encodes the result. */
#ifndef ST_QUERIER_METRIC_INT_H
#define ST_QUERIER_METRIC_INT_H

#include "querier/querier_int.h"

/* ---- steps and matrices ------------------------------------------------------------------------- */

typedef struct {
    int64_t start; /* ns: the first step */
    int64_t step;  /* ns; 0 for an instant query */
    size_t n;      /* number of steps (>= 1) */
} st_msteps_t;

static inline int64_t st_msteps_at(const st_msteps_t *s, size_t i)
{
    return s->start + (int64_t)i * s->step;
}

typedef struct {
    st_labels_t labels; /* owned */
    uint64_t hash;      /* st_hash64 of the canonical text of labels */
    double *v;          /* nsteps values (meaningful where present) */
    uint64_t *has;      /* presence bitmap */
    size_t npoints;     /* present steps */
} st_mseries_t;

/* Series are unique by labels; the matrix indexes them by hash. */
typedef struct {
    st_mseries_t *s;
    size_t n, cap;
    size_t nsteps;
    uint32_t *slots; /* open addressing: series index + 1, 0 = empty */
    size_t nslots;
} st_matrix_t;

void st_matrix_init(st_matrix_t *m, size_t nsteps);
void st_matrix_free(st_matrix_t *m); /* NULL-safe, leaves m empty */
/* Finds the series with these labels or adds one; *labels is moved into the matrix when added and
 * freed otherwise (it is empty afterwards). hash must be st_mlabels_hash of the labels. */
int st_matrix_take(st_matrix_t *m, st_labels_t *labels, uint64_t hash, size_t *idx);
/* Same with a copy of the labels. */
int st_matrix_get(st_matrix_t *m, const st_labels_t *labels, size_t *idx);

static inline bool st_mseries_has(const st_mseries_t *s, size_t i)
{
    return (s->has[i >> 6] >> (i & 63)) & 1;
}
static inline void st_mseries_set(st_mseries_t *s, size_t i, double v)
{
    if (!st_mseries_has(s, i)) {
        s->has[i >> 6] |= UINT64_C(1) << (i & 63);
        s->npoints++;
    }
    s->v[i] = v;
}

/* ---- labels --------------------------------------------------------------------------------------- */

/* st_hash64 of the canonical text ({a="b", c="d"}); scratch is reused. */
int st_mlabels_hash(const st_labels_t *l, st_buf_t *scratch, uint64_t *out);
/* Prometheus' labels.Compare: pairwise by name then value, then by length. */
int st_mlabels_cmp(const st_labels_t *a, const st_labels_t *b);
bool st_mlabels_eq(const st_labels_t *a, const st_labels_t *b);
/* Label sets built here keep empty values: the pipeline keeps a parsed `a=""` as Loki does, and it
 * is part of the series' identity. Pairs must have unique names (any order). */
int st_mlabels_build(const st_label_t *pairs, size_t n, st_labels_t *out);
int st_mlabels_copy(const st_labels_t *in, st_labels_t *out);
/* Keeps only the named labels (without: drops them). */
int st_mlabels_by(const st_labels_t *in, const st_str_t *names, size_t n, bool without, st_labels_t *out);

/* ---- a u64 -> u32 open-addressing map (series lookups by hash) ---------------------------------- */

typedef struct {
    uint64_t *keys;
    uint32_t *vals; /* value + 1; 0 = empty */
    size_t cap, n;
} st_mmap_t;

void st_mmap_free(st_mmap_t *m);
void st_mmap_clear(st_mmap_t *m);
/* Inserts key -> val unless key is present (*existed tells; the old value is kept). */
int st_mmap_put(st_mmap_t *m, uint64_t key, uint32_t val, bool *existed);
bool st_mmap_get(const st_mmap_t *m, uint64_t key, uint32_t *val);

/* ---- evaluation context -------------------------------------------------------------------------- */

typedef struct {
    st_querier_t *q; /* NULL when only pure operators are used (tests) */
    const char *tenant;
    st_msteps_t steps;
    bool instant;
    int64_t deadline; /* st_mono_ns() value; INT64_MAX: none */
    int max_series;   /* limits_config.max_query_series (<= 0: none) */
    /* The range aggregation whose series are the query's output series (a bare range aggregation, or
     * one under a pushed-down sum): it fails as soon as it holds more than max_series series. */
    const st_logql_expr_t *output_range;
    st_qstats_t stats;
    st_strvec_t warnings; /* from the selections (archived data), deduplicated when encoded */
    st_buf_t scratch;
    st_query_error_t *err;
} st_mctx_t;

/* Loki's texts. */
#define ST_METRIC_TIMEOUT_MSG                                                                                \
    "request timed out, decrease the duration of the request or add more label matchers (prefer exact "      \
    "match "                                                                                                 \
    "over regex match) to reduce the amount of data processed"
int st_metric_series_limit_error(st_mctx_t *c, int limit);

/* Range aggregation over logs (metric_range.c). outer: the grouping of an enclosing sum pushed down
 * into sample extraction (NULL for none); the result then holds series reduced to that grouping. */
int st_metric_range(st_mctx_t *c, const st_logql_expr_t *e, const st_logql_grouping_t *outer,
                    st_matrix_t *out);
/* The same over given samples instead of the store and the pipeline (tests): labels are the
 * pipeline's output labels of each sample, in any order. */
typedef struct {
    const st_labels_t *labels;
    int64_t ts;
    double v;
} st_msample_t;
int st_metric_range_samples(st_mctx_t *c, const st_logql_expr_t *e, const st_logql_grouping_t *outer,
                            const st_msample_t *s, size_t n, st_matrix_t *out);
/* True when `sum <grouping> (e)` may push its grouping into e's extraction (Loki's
 * canInjectVectorGrouping: count, rate, bytes, bytes_rate, sum_over_time without a grouping). */
bool st_metric_can_push_sum(const st_logql_expr_t *e);

/* Window functions over time-sorted samples in (range_end - range, range_end] (metric_range.c). */
double st_metric_extrapolated_rate(const int64_t *ts, const double *v, size_t n, int64_t range_ns,
                                   int64_t range_end, bool is_counter, bool is_rate);
/* Prometheus quantile with linear interpolation; sorts v. NaN for n == 0, -Inf for q < 0, +Inf q > 1. */
double st_metric_quantile(double q, double *v, size_t n);

/* Vector operators (metric_vec.c). Inputs are consumed (left empty). */
int st_metric_vec_agg(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out);
int st_metric_binop(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *lhs, st_matrix_t *rhs,
                    st_matrix_t *out);
/* A binary operator with a literal on one side (lit_left: `lit op v`, else `v op lit`). */
int st_metric_binop_literal(st_mctx_t *c, st_logql_binop_t op, bool return_bool, double lit, bool lit_left,
                            st_matrix_t *in, st_matrix_t *out);
int st_metric_label_replace(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out);
/* One series with no labels and value v at every step (vector(v), or a literal over a range). */
int st_metric_constant(st_mctx_t *c, double v, st_matrix_t *out);
/* Applies a binary operator to two values as Loki's MergeBinOp does (division and modulo by zero
 * give NaN; comparisons give 0/1). */
double st_metric_apply(st_logql_binop_t op, double l, double r);

/* Appends v as Go's strconv.FormatFloat(v, 'f', -1, 64) (the same text as st_json_put_float_str,
 * faster: integers directly, the shortest digits in at most three tries). */
int st_metric_put_float(st_buf_t *out, double v);

/* Appends a sample time as Prometheus' JSON does: milliseconds (truncated) as seconds with up to
 * three decimals, no trailing zeros: 1700000000, 1700000000.12, -0.002. */
void st_metric_put_time(st_buf_t *out, int64_t ns);

/* Whole-tree evaluation (metric.c). */
int st_metric_eval(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *out);
/* Metric query entry point, called by st_query_exec. */
int st_exec_metric_query(st_querier_t *q, const st_query_t *req, const st_logql_expr_t *e, st_buf_t *out,
                         st_query_error_t *err);

#endif
