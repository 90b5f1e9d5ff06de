/* metric_vec.c: the PromQL-like half of LogQL metric queries, step by step over matrices: vector
 * aggregations (sum avg count max min stddev stdvar topk bottomk sort sort_desc), binary operators
 * (arithmetic, comparisons with and without bool, and/or/unless, on/ignoring, group_left/right),
 * label_replace and constants, following Loki's evaluator.go (division by zero gives NaN). */
#include "querier/metric_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/timeutil.h"

#include <math.h>
#include <stdlib.h>

/* ---- matrices ------------------------------------------------------------------------------------ */

void st_matrix_init(st_matrix_t *m, size_t nsteps)
{
    memset(m, 0, sizeof *m);
    m->nsteps = nsteps;
}

static void series_free(st_mseries_t *s)
{
    st_labels_free(&s->labels);
    free(s->v);
    free(s->has);
}

void st_matrix_free(st_matrix_t *m)
{
    if (m == NULL) return;
    for (size_t i = 0; i < m->n; i++) series_free(&m->s[i]);
    free(m->s);
    free(m->slots);
    size_t nsteps = m->nsteps;
    memset(m, 0, sizeof *m);
    m->nsteps = nsteps;
}

static int matrix_rehash(st_matrix_t *m, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (slots == NULL) return -ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        size_t k = (size_t)m->s[i].hash & (nslots - 1);
        while (slots[k]) k = (k + 1) & (nslots - 1);
        slots[k] = (uint32_t)(i + 1);
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

int st_matrix_take(st_matrix_t *m, st_labels_t *labels, uint64_t hash, size_t *idx)
{
    if (m->nslots) {
        for (size_t k = (size_t)hash & (m->nslots - 1); m->slots[k]; k = (k + 1) & (m->nslots - 1)) {
            st_mseries_t *s = &m->s[m->slots[k] - 1];
            if (s->hash == hash && st_mlabels_eq(&s->labels, labels)) {
                st_labels_free(labels);
                *idx = m->slots[k] - 1;
                return 0;
            }
        }
    }
    if ((m->n + 1) * 2 > m->nslots) ST_TRY(matrix_rehash(m, m->nslots ? m->nslots * 2 : 16));
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 8;
        st_mseries_t *s = realloc(m->s, cap * sizeof *s);
        if (s == NULL) return -ENOMEM;
        m->s = s;
        m->cap = cap;
    }
    st_mseries_t *s = &m->s[m->n];
    memset(s, 0, sizeof *s);
    size_t nsteps = m->nsteps ? m->nsteps : 1;
    s->v = malloc(nsteps * sizeof *s->v);
    s->has = calloc((nsteps + 63) / 64, sizeof *s->has);
    if (s->v == NULL || s->has == NULL) {
        free(s->v);
        free(s->has);
        return -ENOMEM;
    }
    s->labels = *labels;
    *labels = ST_LABELS_INIT;
    s->hash = hash;
    size_t k = (size_t)hash & (m->nslots - 1);
    while (m->slots[k]) k = (k + 1) & (m->nslots - 1);
    m->slots[k] = (uint32_t)(m->n + 1);
    *idx = m->n++;
    return 0;
}

int st_matrix_get(st_matrix_t *m, const st_labels_t *labels, size_t *idx)
{
    st_buf_t scratch = ST_BUF_INIT;
    uint64_t h;
    int rc = st_mlabels_hash(labels, &scratch, &h);
    st_buf_free(&scratch);
    if (rc < 0) return rc;
    st_labels_t copy;
    ST_TRY(st_mlabels_copy(labels, &copy));
    rc = st_matrix_take(m, &copy, h, idx);
    st_labels_free(&copy);
    return rc;
}

/* ---- labels -------------------------------------------------------------------------------------- */

int st_mlabels_hash(const st_labels_t *l, st_buf_t *scratch, uint64_t *out)
{
    st_buf_reset(scratch);
    ST_TRY(st_labels_format(l, scratch));
    *out = st_hash64(scratch->data, scratch->len);
    return 0;
}

int st_mlabels_cmp(const st_labels_t *a, const st_labels_t *b)
{
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int c = st_str_cmp(a->v[i].name, b->v[i].name);
        if (c) return c;
        c = st_str_cmp(a->v[i].value, b->v[i].value);
        if (c) return c;
    }
    return a->n < b->n ? -1 : a->n > b->n;
}

bool st_mlabels_eq(const st_labels_t *a, const st_labels_t *b)
{
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!st_str_eq(a->v[i].name, b->v[i].name) || !st_str_eq(a->v[i].value, b->v[i].value)) return false;
    return true;
}

static bool in_names(st_str_t name, const st_str_t *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (st_str_eq(name, names[i])) return true;
    return false;
}

static int cmp_label_names(const void *a, const void *b)
{
    return st_str_cmp(((const st_label_t *)a)->name, ((const st_label_t *)b)->name);
}

int st_mlabels_build(const st_label_t *pairs, size_t n, st_labels_t *out)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) total += pairs[i].name.n + pairs[i].value.n + 2;
    st_labels_t l = ST_LABELS_INIT;
    if (n > 0) {
        l.v = malloc(n * sizeof *l.v);
        l.arena = malloc(total);
        if (l.v == NULL || l.arena == NULL) {
            free(l.v);
            free(l.arena);
            return -ENOMEM;
        }
    }
    char *a = l.arena;
    for (size_t i = 0; i < n; i++) {
        memcpy(a, pairs[i].name.p, pairs[i].name.n);
        a[pairs[i].name.n] = '\0';
        l.v[i].name = st_str(a, pairs[i].name.n);
        a += pairs[i].name.n + 1;
        if (pairs[i].value.n) memcpy(a, pairs[i].value.p, pairs[i].value.n);
        a[pairs[i].value.n] = '\0';
        l.v[i].value = st_str(a, pairs[i].value.n);
        a += pairs[i].value.n + 1;
    }
    l.n = n;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) sorted = st_str_cmp(l.v[i - 1].name, l.v[i].name) < 0;
    if (!sorted) st_qsort(l.v, n, sizeof *l.v, cmp_label_names);
    *out = l;
    return 0;
}

int st_mlabels_copy(const st_labels_t *in, st_labels_t *out)
{
    return st_mlabels_build(in->v, in->n, out);
}

int st_mlabels_by(const st_labels_t *in, const st_str_t *names, size_t n, bool without, st_labels_t *out)
{
    st_label_t stack[64];
    st_label_t *pairs = in->n <= 64 ? stack : malloc(in->n * sizeof *pairs);
    if (pairs == NULL) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < in->n; i++)
        if (in_names(in->v[i].name, names, n) != without) pairs[k++] = in->v[i];
    int rc = st_mlabels_build(k ? pairs : NULL, k, out);
    if (pairs != stack) free(pairs);
    return rc;
}

/* ---- small hash maps used per step --------------------------------------------------------------- */

void st_mmap_free(st_mmap_t *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

void st_mmap_clear(st_mmap_t *m)
{
    if (m->n) memset(m->vals, 0, m->cap * sizeof *m->vals);
    m->n = 0;
}

static int map_grow(st_mmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *k = malloc(cap * sizeof *k);
    uint32_t *v = calloc(cap, sizeof *v);
    if (k == NULL || v == NULL) {
        free(k);
        free(v);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i]) continue;
        size_t j = (size_t)(m->keys[i] * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (cap - 1);
        while (v[j]) j = (j + 1) & (cap - 1);
        k[j] = m->keys[i];
        v[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = k;
    m->vals = v;
    m->cap = cap;
    return 0;
}

/* Returns the slot of key; *found tells whether it was there. */
static int map_slot(st_mmap_t *m, uint64_t key, size_t *slot, bool *found)
{
    if ((m->n + 1) * 2 > m->cap) ST_TRY(map_grow(m));
    size_t j = (size_t)(key * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (m->cap - 1);
    while (m->vals[j]) {
        if (m->keys[j] == key) {
            *slot = j;
            *found = true;
            return 0;
        }
        j = (j + 1) & (m->cap - 1);
    }
    *slot = j;
    *found = false;
    return 0;
}

int st_mmap_put(st_mmap_t *m, uint64_t key, uint32_t val, bool *existed)
{
    size_t j;
    bool f;
    ST_TRY(map_slot(m, key, &j, &f));
    if (!f) {
        m->keys[j] = key;
        m->vals[j] = val + 1;
        m->n++;
    }
    if (existed) *existed = f;
    return 0;
}

bool st_mmap_get(const st_mmap_t *m, uint64_t key, uint32_t *val)
{
    if (m->cap == 0) return false;
    size_t j = (size_t)(key * UINT64_C(0x9E3779B97F4A7C15) >> 20) & (m->cap - 1);
    while (m->vals[j]) {
        if (m->keys[j] == key) {
            *val = m->vals[j] - 1;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    return false;
}

/* ---- shared helpers ------------------------------------------------------------------------------ */

static int oom(st_mctx_t *c, int rc)
{
    return st_qerr(c->err, 500, rc, "%s", st_strerror(rc));
}

static int check_deadline(st_mctx_t *c)
{
    if (st_mono_ns() > c->deadline) return st_qerr(c->err, 504, ST_ETIMEOUT, ST_METRIC_TIMEOUT_MSG);
    return 0;
}

/* Output series for input series i of src (labels copied), created on first use. */
static int out_for(st_mctx_t *c, st_matrix_t *out, const st_matrix_t *src, size_t i, int64_t *map, size_t *oi)
{
    if (map[i] >= 0) {
        *oi = (size_t)map[i];
        return 0;
    }
    st_labels_t copy;
    int rc = st_mlabels_copy(&src->s[i].labels, &copy);
    if (rc == 0) rc = st_matrix_take(out, &copy, src->s[i].hash, oi);
    st_labels_free(&copy);
    if (rc < 0) return oom(c, rc);
    map[i] = (int64_t)*oi;
    return 0;
}

static int64_t *new_map(size_t n)
{
    int64_t *m = malloc((n ? n : 1) * sizeof *m);
    if (m)
        for (size_t i = 0; i < n; i++) m[i] = -1;
    return m;
}

double st_metric_apply(st_logql_binop_t op, double l, double r)
{
    switch (op) {
    case ST_LOGQL_BIN_ADD: return l + r;
    case ST_LOGQL_BIN_SUB: return l - r;
    case ST_LOGQL_BIN_MUL: return l * r;
    case ST_LOGQL_BIN_DIV: return r == 0 ? NAN : l / r;
    case ST_LOGQL_BIN_MOD: return r == 0 ? NAN : fmod(l, r);
    case ST_LOGQL_BIN_POW: return pow(l, r);
    case ST_LOGQL_BIN_EQ: return l == r;
    case ST_LOGQL_BIN_NEQ: return l != r;
    case ST_LOGQL_BIN_GT: return l > r;
    case ST_LOGQL_BIN_GTE: return l >= r;
    case ST_LOGQL_BIN_LT: return l < r;
    case ST_LOGQL_BIN_LTE: return l <= r;
    default: return NAN;
    }
}

static bool is_comparison(st_logql_binop_t op)
{
    return op == ST_LOGQL_BIN_EQ || op == ST_LOGQL_BIN_NEQ || op == ST_LOGQL_BIN_GT ||
           op == ST_LOGQL_BIN_GTE || op == ST_LOGQL_BIN_LT || op == ST_LOGQL_BIN_LTE;
}

static bool is_set_op(st_logql_binop_t op)
{
    return op == ST_LOGQL_BIN_AND || op == ST_LOGQL_BIN_OR || op == ST_LOGQL_BIN_UNLESS;
}

/* ---- vector aggregation -------------------------------------------------------------------------- */

static int group_labels(const st_logql_grouping_t *g, const st_labels_t *in, st_labels_t *out)
{
    if (!g->present) return st_mlabels_by(in, NULL, 0, false, out); /* by (): one group */
    return st_mlabels_by(in, g->labels, g->n, g->without, out);
}

/* sum avg count max min stddev stdvar: one output series per group. */
static int reduce_agg(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out)
{
    st_logql_vec_op_t op = e->vec_agg.op;
    size_t n = in->n, T = in->nsteps;
    size_t *gidx = malloc((n ? n : 1) * sizeof *gidx);
    int rc = gidx ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        st_labels_t g;
        uint64_t h;
        if ((rc = group_labels(&e->vec_agg.grouping, &in->s[i].labels, &g)) < 0) break;
        rc = st_mlabels_hash(&g, &c->scratch, &h);
        if (rc == 0) rc = st_matrix_take(out, &g, h, &gidx[i]);
        st_labels_free(&g);
    }
    size_t ng = out->n;
    double *val = NULL, *mean = NULL;
    int64_t *cnt = NULL;
    if (rc == 0) {
        val = malloc((ng ? ng : 1) * sizeof *val);
        mean = malloc((ng ? ng : 1) * sizeof *mean);
        cnt = malloc((ng ? ng : 1) * sizeof *cnt);
        if (val == NULL || mean == NULL || cnt == NULL) rc = -ENOMEM;
    }
    for (size_t t = 0; t < T && rc == 0; t++) {
        if ((t & 255) == 255 && (rc = check_deadline(c)) < 0) goto out;
        memset(cnt, 0, ng * sizeof *cnt);
        for (size_t i = 0; i < n; i++) {
            const st_mseries_t *s = &in->s[i];
            if (!st_mseries_has(s, t)) continue;
            size_t g = gidx[i];
            double x = s->v[t];
            if (cnt[g] == 0) {
                cnt[g] = 1;
                val[g] = x;
                mean[g] = x;
                if (op == ST_LOGQL_VEC_STDDEV || op == ST_LOGQL_VEC_STDVAR) val[g] = 0;
                continue;
            }
            switch (op) {
            case ST_LOGQL_VEC_SUM: val[g] += x; break;
            case ST_LOGQL_VEC_AVG:
                cnt[g]++;
                if (isinf(mean[g])) {
                    if (isinf(x) && (mean[g] > 0) == (x > 0)) break;
                    if (!isinf(x) && !isnan(x)) break;
                }
                mean[g] += (x - mean[g]) / (double)cnt[g];
                break;
            case ST_LOGQL_VEC_MAX:
                if (val[g] < x || isnan(val[g])) val[g] = x;
                break;
            case ST_LOGQL_VEC_MIN:
                if (val[g] > x || isnan(val[g])) val[g] = x;
                break;
            case ST_LOGQL_VEC_COUNT: cnt[g]++; break;
            case ST_LOGQL_VEC_STDDEV:
            case ST_LOGQL_VEC_STDVAR: {
                cnt[g]++;
                double delta = x - mean[g];
                mean[g] += delta / (double)cnt[g];
                val[g] += delta * (x - mean[g]);
                break;
            }
            default: break;
            }
        }
        for (size_t g = 0; g < ng; g++) {
            if (cnt[g] == 0) continue;
            double v = val[g];
            switch (op) {
            case ST_LOGQL_VEC_AVG: v = mean[g]; break;
            case ST_LOGQL_VEC_COUNT: v = (double)cnt[g]; break;
            case ST_LOGQL_VEC_STDDEV: v = sqrt(val[g] / (double)cnt[g]); break;
            case ST_LOGQL_VEC_STDVAR: v = val[g] / (double)cnt[g]; break;
            default: break;
            }
            st_mseries_set(&out->s[g], t, v);
        }
    }
out:
    if (rc < 0 && c->err->status == 0) oom(c, rc);
    free(gidx);
    free(val);
    free(mean);
    free(cnt);
    return rc;
}

typedef struct {
    const st_matrix_t *m;
    const size_t *group;
    size_t t;
    bool desc; /* larger values first */
} selcmp_t;

/* Group, then value (NaN always last, as Loki's heaps order it), then labels. */
static int sel_cmp(const void *a, const void *b, void *arg)
{
    const selcmp_t *s = arg;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (s->group[i] != s->group[j]) return s->group[i] < s->group[j] ? -1 : 1;
    double x = s->m->s[i].v[s->t], y = s->m->s[j].v[s->t];
    bool xn = isnan(x), yn = isnan(y);
    if (xn != yn) return xn ? 1 : -1;
    if (!xn && x != y) return (s->desc ? x > y : x < y) ? -1 : 1;
    return st_mlabels_cmp(&s->m->s[i].labels, &s->m->s[j].labels);
}

/* topk bottomk sort sort_desc: series keep their labels; groups only partition them. */
static int select_agg(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out)
{
    st_logql_vec_op_t op = e->vec_agg.op;
    bool all = op == ST_LOGQL_VEC_SORT || op == ST_LOGQL_VEC_SORT_DESC;
    int64_t k = all ? INT64_MAX : e->vec_agg.param;
    size_t n = in->n, T = in->nsteps;
    st_matrix_t groups;
    st_matrix_init(&groups, 1);
    size_t *gidx = malloc((n ? n : 1) * sizeof *gidx);
    size_t *cand = malloc((n ? n : 1) * sizeof *cand);
    int64_t *map = new_map(n);
    int rc = gidx && cand && map ? 0 : -ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++) {
        st_labels_t g;
        uint64_t h;
        if ((rc = group_labels(&e->vec_agg.grouping, &in->s[i].labels, &g)) < 0) break;
        rc = st_mlabels_hash(&g, &c->scratch, &h);
        if (rc == 0) rc = st_matrix_take(&groups, &g, h, &gidx[i]);
        st_labels_free(&g);
    }
    selcmp_t sc = {in, gidx, 0,
                   op == ST_LOGQL_VEC_TOPK || op == ST_LOGQL_VEC_APPROX_TOPK || op == ST_LOGQL_VEC_SORT_DESC};
    for (size_t t = 0; t < T && rc == 0; t++) {
        if ((t & 255) == 255 && (rc = check_deadline(c)) < 0) goto out;
        size_t nc = 0;
        for (size_t i = 0; i < n; i++)
            if (st_mseries_has(&in->s[i], t)) cand[nc++] = i;
        if (nc == 0 || k < 1) continue;
        sc.t = t;
        qsort_r(cand, nc, sizeof *cand, sel_cmp, &sc);
        int64_t taken = 0;
        for (size_t j = 0; j < nc && rc == 0; j++) {
            if (j > 0 && gidx[cand[j]] != gidx[cand[j - 1]]) taken = 0;
            if (taken >= k) continue;
            taken++;
            size_t oi;
            if ((rc = out_for(c, out, in, cand[j], map, &oi)) < 0) goto out;
            st_mseries_set(&out->s[oi], t, in->s[cand[j]].v[t]);
        }
    }
out:
    if (rc < 0 && c->err->status == 0) oom(c, rc);
    st_matrix_free(&groups);
    free(gidx);
    free(cand);
    free(map);
    return rc;
}

int st_metric_vec_agg(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out)
{
    st_matrix_init(out, in->nsteps);
    int rc;
    switch (e->vec_agg.op) {
    case ST_LOGQL_VEC_TOPK:
    case ST_LOGQL_VEC_BOTTOMK:
    case ST_LOGQL_VEC_APPROX_TOPK: /* exact topk, as Loki's querier runs it when not sharded */
    case ST_LOGQL_VEC_SORT:
    case ST_LOGQL_VEC_SORT_DESC: rc = select_agg(c, e, in, out); break;
    default: rc = reduce_agg(c, e, in, out); break;
    }
    st_matrix_free(in);
    if (rc < 0) st_matrix_free(out);
    return rc;
}

/* ---- binary operators ---------------------------------------------------------------------------- */

int st_metric_binop_literal(st_mctx_t *c, st_logql_binop_t op, bool return_bool, double lit, bool lit_left,
                            st_matrix_t *in, st_matrix_t *out)
{
    bool cmp = is_comparison(op);
    for (size_t i = 0; i < in->n; i++) {
        st_mseries_t *s = &in->s[i];
        for (size_t t = 0; t < in->nsteps; t++) {
            if (!st_mseries_has(s, t)) continue;
            double v = s->v[t];
            double r = lit_left ? st_metric_apply(op, lit, v) : st_metric_apply(op, v, lit);
            if (cmp && !return_bool) {
                if (r == 0) {
                    s->has[t >> 6] &= ~(UINT64_C(1) << (t & 63));
                    s->npoints--;
                }
                continue; /* a filter keeps the vector's value */
            }
            s->v[t] = r;
        }
    }
    (void)c;
    *out = *in;
    st_matrix_init(in, out->nsteps);
    return 0;
}

/* Signature of a series for vector matching: its labels reduced by on(...)/ignoring(...). */
static int signatures(st_mctx_t *c, const st_logql_expr_t *e, const st_matrix_t *m, uint64_t **out)
{
    uint64_t *sig = malloc((m->n ? m->n : 1) * sizeof *sig);
    if (sig == NULL) return -ENOMEM;
    for (size_t i = 0; i < m->n; i++) {
        if (!e->binop.on && e->binop.n_matching == 0) {
            sig[i] = m->s[i].hash;
            continue;
        }
        st_labels_t r;
        int rc = st_mlabels_by(&m->s[i].labels, e->binop.matching, e->binop.n_matching, !e->binop.on, &r);
        if (rc == 0) rc = st_mlabels_hash(&r, &c->scratch, &sig[i]);
        st_labels_free(&r);
        if (rc < 0) {
            free(sig);
            return rc;
        }
    }
    *out = sig;
    return 0;
}

static size_t present_at(const st_matrix_t *m, size_t t)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) k += st_mseries_has(&m->s[i], t);
    return k;
}

static int set_op(st_mctx_t *c, st_logql_binop_t op, st_matrix_t *l, st_matrix_t *r, const uint64_t *ls,
                  const uint64_t *rs, st_matrix_t *out)
{
    int64_t *lmap = new_map(l->n), *rmap = new_map(r->n);
    st_mmap_t set = {0};
    int rc = lmap && rmap ? 0 : -ENOMEM;
    for (size_t t = 0; t < out->nsteps && rc == 0; t++) {
        if ((t & 255) == 255 && (rc = check_deadline(c)) < 0) break;
        size_t nl = present_at(l, t), nr = present_at(r, t);
        bool take_l_all = false, take_r_all = false;
        st_mmap_clear(&set);
        switch (op) {
        case ST_LOGQL_BIN_AND:
            if (nl == 0 || nr == 0) continue;
            break;
        case ST_LOGQL_BIN_OR:
            if (nl == 0)
                take_r_all = true;
            else if (nr == 0)
                take_l_all = true;
            break;
        default: /* unless */
            if (nl == 0 || nr == 0) take_l_all = true;
            break;
        }
        if (take_l_all || take_r_all) {
            st_matrix_t *src = take_l_all ? l : r;
            int64_t *map = take_l_all ? lmap : rmap;
            for (size_t i = 0; i < src->n && rc == 0; i++) {
                if (!st_mseries_has(&src->s[i], t)) continue;
                size_t oi;
                if ((rc = out_for(c, out, src, i, map, &oi)) == 0)
                    st_mseries_set(&out->s[oi], t, src->s[i].v[t]);
            }
            continue;
        }
        /* the set of signatures of the other side */
        bool or_op = op == ST_LOGQL_BIN_OR;
        const st_matrix_t *other = or_op ? l : r;
        const uint64_t *osig = or_op ? ls : rs;
        for (size_t i = 0; i < other->n && rc == 0; i++)
            if (st_mseries_has(&other->s[i], t)) rc = st_mmap_put(&set, osig[i], 0, NULL);
        for (size_t i = 0; i < l->n && rc == 0; i++) {
            if (!st_mseries_has(&l->s[i], t)) continue;
            uint32_t dummy;
            bool in_r = !or_op && st_mmap_get(&set, ls[i], &dummy);
            if (op == ST_LOGQL_BIN_AND && !in_r) continue;
            if (op == ST_LOGQL_BIN_UNLESS && in_r) continue;
            size_t oi;
            if ((rc = out_for(c, out, l, i, lmap, &oi)) == 0) st_mseries_set(&out->s[oi], t, l->s[i].v[t]);
        }
        for (size_t i = 0; or_op && i < r->n && rc == 0; i++) {
            uint32_t dummy;
            if (!st_mseries_has(&r->s[i], t) || st_mmap_get(&set, rs[i], &dummy)) continue;
            size_t oi;
            if ((rc = out_for(c, out, r, i, rmap, &oi)) == 0) st_mseries_set(&out->s[oi], t, r->s[i].v[t]);
        }
    }
    free(lmap);
    free(rmap);
    st_mmap_free(&set);
    return rc;
}

/* Loki's resultMetric: one-to-one keeps the on() labels (or drops the ignoring() ones); the labels
 * of group_x(...) come from the "one" side (removed when empty there). */
static int result_metric(const st_logql_expr_t *e, const st_labels_t *l, const st_labels_t *r,
                         st_labels_t *out)
{
    size_t cap = l->n + e->binop.n_include;
    st_label_t stack[64];
    st_label_t *pairs = cap <= 64 ? stack : malloc(cap * sizeof *pairs);
    if (pairs == NULL) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (e->binop.card == ST_LOGQL_CARD_ONE_TO_ONE &&
            in_names(l->v[i].name, e->binop.matching, e->binop.n_matching) != e->binop.on)
            continue;
        if (in_names(l->v[i].name, e->binop.include, e->binop.n_include)) continue;
        pairs[k++] = l->v[i];
    }
    for (size_t i = 0; i < e->binop.n_include; i++) {
        st_str_t v;
        bool dup = false;
        for (size_t j = 0; j < i; j++) dup |= st_str_eq(e->binop.include[j], e->binop.include[i]);
        if (!dup && st_labels_get(r, e->binop.include[i], &v) && v.n > 0)
            pairs[k++] = (st_label_t){e->binop.include[i], v};
    }
    int rc = st_mlabels_build(k ? pairs : NULL, k, out);
    if (pairs != stack) free(pairs);
    return rc;
}

static int vector_op(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *lhs, st_matrix_t *rhs,
                     const uint64_t *lsig, const uint64_t *rsig, st_matrix_t *out)
{
    st_logql_binop_t op = e->binop.op;
    bool swap = e->binop.card == ST_LOGQL_CARD_ONE_TO_MANY;
    /* "many" (or one-to-one left) side m, "one" side o */
    st_matrix_t *m = swap ? rhs : lhs, *o = swap ? lhs : rhs;
    const uint64_t *msig = swap ? rsig : lsig, *osig = swap ? lsig : rsig;
    bool cmp = is_comparison(op), filter = !e->binop.return_bool;
    st_mmap_t right = {0}, matched = {0};
    /* per many-side series: the one-side series it was last matched with and the output series */
    int64_t *last_o = new_map(m->n), *last_out = new_map(m->n);
    int rc = last_o && last_out ? 0 : -ENOMEM;
    for (size_t t = 0; t < out->nsteps && rc == 0; t++) {
        if ((t & 255) == 255 && (rc = check_deadline(c)) < 0) break;
        st_mmap_clear(&right);
        st_mmap_clear(&matched);
        for (size_t j = 0; j < o->n && rc == 0; j++) {
            if (!st_mseries_has(&o->s[j], t)) continue;
            bool dup;
            if ((rc = st_mmap_put(&right, osig[j], (uint32_t)j, &dup)) < 0) break;
            if (dup) {
                rc = st_qerr(
                    c->err, 500, ST_EPARSE,
                    "found duplicate series on the %s hand-side;many-to-many matching not allowed: matching "
                    "labels must be unique on one side",
                    swap ? "left" : "right");
                goto out;
            }
        }
        for (size_t i = 0; i < m->n && rc == 0; i++) {
            if (!st_mseries_has(&m->s[i], t)) continue;
            uint32_t j;
            if (!st_mmap_get(&right, msig[i], &j)) continue;
            /* the output series (labels from resultMetric) for this pairing */
            if (last_o[i] != (int64_t)j) {
                st_labels_t lbl;
                uint64_t h;
                if ((rc = result_metric(e, &m->s[i].labels, &o->s[j].labels, &lbl)) < 0) break;
                rc = st_mlabels_hash(&lbl, &c->scratch, &h);
                size_t oi = 0;
                if (rc == 0) rc = st_matrix_take(out, &lbl, h, &oi);
                st_labels_free(&lbl);
                if (rc < 0) break;
                last_o[i] = j;
                last_out[i] = (int64_t)oi;
            }
            size_t oi = (size_t)last_out[i];
            bool dup;
            if (e->binop.card == ST_LOGQL_CARD_ONE_TO_ONE) {
                if ((rc = st_mmap_put(&matched, msig[i], 0, &dup)) < 0) break;
                if (dup) {
                    rc = st_qerr(c->err, 500, ST_EPARSE,
                                 "multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)");
                    goto out;
                }
            } else {
                uint64_t pair[2] = {msig[i], out->s[oi].hash};
                if ((rc = st_mmap_put(&matched, st_hash64(pair, sizeof pair), 0, &dup)) < 0) break;
                if (dup) {
                    rc = st_qerr(c->err, 500, ST_EPARSE,
                                 "multiple matches for labels: grouping labels must ensure unique matches");
                    goto out;
                }
            }
            double lv = swap ? o->s[j].v[t] : m->s[i].v[t];
            double rv = swap ? m->s[i].v[t] : o->s[j].v[t];
            double res = st_metric_apply(op, lv, rv);
            if (cmp && filter) {
                if (res == 0) continue;
                res = lv; /* a filter keeps the left-hand value */
            }
            st_mseries_set(&out->s[oi], t, res);
        }
    }
out:
    free(last_o);
    free(last_out);
    st_mmap_free(&right);
    st_mmap_free(&matched);
    return rc;
}

int st_metric_binop(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *lhs, st_matrix_t *rhs,
                    st_matrix_t *out)
{
    st_matrix_init(out, lhs->nsteps);
    uint64_t *ls = NULL, *rs = NULL;
    int rc = signatures(c, e, lhs, &ls);
    if (rc == 0) rc = signatures(c, e, rhs, &rs);
    if (rc == 0) {
        if (is_set_op(e->binop.op))
            rc = set_op(c, e->binop.op, lhs, rhs, ls, rs, out);
        else
            rc = vector_op(c, e, lhs, rhs, ls, rs, out);
    }
    if (rc < 0 && c->err->status == 0) oom(c, rc);
    free(ls);
    free(rs);
    st_matrix_free(lhs);
    st_matrix_free(rhs);
    if (rc < 0) st_matrix_free(out);
    return rc;
}

/* ---- label_replace ------------------------------------------------------------------------------- */

static bool name_byte(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
           ch >= 0x80;
}

/* The number of the capture group called name in an RE2 expression (0: none). The compiled PCRE2
 * pattern does not keep RE2 group names, so they are found in the source: groups are numbered by their
 * opening parenthesis, escapes and character classes skipped. */
static int group_by_name(st_str_t re, st_str_t name)
{
    int group = 0;
    for (size_t i = 0; i < re.n; i++) {
        char ch = re.p[i];
        if (ch == '\\') {
            i++;
            continue;
        }
        if (ch == '[') {
            size_t k = i + 1;
            if (k < re.n && re.p[k] == '^') k++;
            if (k < re.n && re.p[k] == ']') k++;
            for (; k < re.n && re.p[k] != ']'; k++) {
                if (re.p[k] == '\\')
                    k++;
                else if (re.p[k] == '[' && k + 1 < re.n && re.p[k + 1] == ':') {
                    const char *end = memchr(re.p + k + 2, ']', re.n - k - 2);
                    if (end) k = (size_t)(end - re.p);
                }
            }
            i = k;
            continue;
        }
        if (ch != '(') continue;
        if (i + 1 >= re.n || re.p[i + 1] != '?') {
            group++;
            continue;
        }
        size_t b = 0;
        if (i + 3 < re.n && re.p[i + 2] == 'P' && re.p[i + 3] == '<')
            b = i + 4;
        else if (i + 2 < re.n && re.p[i + 2] == '<')
            b = i + 3;
        if (b == 0) continue;
        group++;
        const char *end = memchr(re.p + b, '>', re.n - b);
        if (end && st_str_eq(st_str(re.p + b, (size_t)(end - (re.p + b))), name)) return group;
    }
    return 0;
}

/* Go's Regexp.ExpandString: $1, ${1}, $name, ${name}, $$; unknown or unmatched groups expand to "". */
static int expand(st_str_t re, st_str_t tmpl, st_str_t src, const PCRE2_SIZE *ov, uint32_t ngroups,
                  st_buf_t *out)
{
    size_t i = 0;
    while (i < tmpl.n) {
        const char *d = memchr(tmpl.p + i, '$', tmpl.n - i);
        if (d == NULL) return st_buf_append(out, tmpl.p + i, tmpl.n - i);
        size_t at = (size_t)(d - tmpl.p);
        ST_TRY(st_buf_append(out, tmpl.p + i, at - i));
        i = at + 1;
        if (i < tmpl.n && tmpl.p[i] == '$') {
            ST_TRY(st_buf_putc(out, '$'));
            i++;
            continue;
        }
        bool brace = i < tmpl.n && tmpl.p[i] == '{';
        size_t ns = i + (brace ? 1 : 0), ne = ns;
        while (ne < tmpl.n && name_byte((unsigned char)tmpl.p[ne])) ne++;
        if (ne == ns || (brace && (ne >= tmpl.n || tmpl.p[ne] != '}'))) {
            ST_TRY(st_buf_putc(out, '$')); /* malformed: the $ is literal text */
            continue;
        }
        st_str_t name = st_str(tmpl.p + ns, ne - ns);
        i = ne + (brace ? 1 : 0);
        long num = 0;
        for (size_t k = 0; k < name.n && num >= 0; k++) {
            if (name.p[k] < '0' || name.p[k] > '9' || num >= 100000000)
                num = -1;
            else
                num = num * 10 + (name.p[k] - '0');
        }
        if (name.p[0] == '0' && name.n > 1) num = -1;
        if (num < 0 && (num = group_by_name(re, name)) == 0) continue;
        if ((uint32_t)num < ngroups && ov[2 * num] != PCRE2_UNSET)
            ST_TRY(st_buf_append(out, src.p + ov[2 * num], ov[2 * num + 1] - ov[2 * num]));
    }
    return 0;
}

static int replace_labels(const st_logql_expr_t *e, pcre2_match_data *md, const st_labels_t *in,
                          st_buf_t *tmp, st_labels_t *out, bool *changed)
{
    *changed = false;
    st_str_t src = st_str("", 0);
    st_labels_get(in, e->label_replace.src, &src);
    int n = pcre2_match(e->label_replace.re, (PCRE2_SPTR)(src.p ? src.p : ""), src.n, 0, 0, md, NULL);
    if (n < 0) return 0; /* no match: no replacement */
    st_buf_reset(tmp);
    ST_TRY(expand(e->label_replace.regex, e->label_replace.replacement, src, pcre2_get_ovector_pointer(md),
                  pcre2_get_ovector_count(md), tmp));
    st_label_t stack[64];
    st_label_t *pairs = in->n + 1 <= 64 ? stack : malloc((in->n + 1) * sizeof *pairs);
    if (pairs == NULL) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < in->n; i++)
        if (!st_str_eq(in->v[i].name, e->label_replace.dst)) pairs[k++] = in->v[i];
    if (tmp->len > 0) pairs[k++] = (st_label_t){e->label_replace.dst, st_str(tmp->data, tmp->len)};
    int rc = st_mlabels_build(k ? pairs : NULL, k, out);
    if (pairs != stack) free(pairs);
    *changed = rc == 0;
    return rc;
}

int st_metric_label_replace(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *in, st_matrix_t *out)
{
    st_matrix_init(out, in->nsteps);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(e->label_replace.re, NULL);
    st_buf_t tmp = ST_BUF_INIT;
    int rc = md ? 0 : -ENOMEM;
    for (size_t i = 0; i < in->n && rc == 0; i++) {
        st_mseries_t *s = &in->s[i];
        st_labels_t nl;
        bool changed;
        if ((rc = replace_labels(e, md, &s->labels, &tmp, &nl, &changed)) < 0) break;
        uint64_t h = s->hash;
        if (!changed) {
            nl = s->labels;
            s->labels = ST_LABELS_INIT;
        } else if ((rc = st_mlabels_hash(&nl, &c->scratch, &h)) < 0) {
            st_labels_free(&nl);
            break;
        }
        size_t oi;
        if ((rc = st_matrix_take(out, &nl, h, &oi)) < 0) break;
        for (size_t t = 0; t < in->nsteps; t++)
            if (st_mseries_has(s, t)) st_mseries_set(&out->s[oi], t, s->v[t]);
    }
    if (rc < 0) oom(c, rc);
    if (md) pcre2_match_data_free(md);
    st_buf_free(&tmp);
    st_matrix_free(in);
    if (rc < 0) st_matrix_free(out);
    return rc;
}

/* ---- constants ----------------------------------------------------------------------------------- */

int st_metric_constant(st_mctx_t *c, double v, st_matrix_t *out)
{
    st_matrix_init(out, c->steps.n);
    st_labels_t none = ST_LABELS_INIT;
    uint64_t h;
    size_t idx;
    int rc = st_mlabels_hash(&none, &c->scratch, &h);
    if (rc == 0) rc = st_matrix_take(out, &none, h, &idx);
    if (rc < 0) return oom(c, rc);
    for (size_t t = 0; t < c->steps.n; t++) st_mseries_set(&out->s[idx], t, v);
    return 0;
}
