/* metric.c: LogQL metric queries: evaluates the expression tree over the query's steps (range
 * queries: start, start+step, ... <= end; instant queries: one step at `time`), pushes `sum by`
 * groupings into sample extraction, applies max_query_series, and encodes Loki's matrix, vector or
 * scalar result with the stats object. */
#include "querier/metric_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static const st_logql_expr_t *child_of(const st_logql_expr_t *e, int i)
{
    switch (e->kind) {
    case ST_LOGQL_EXPR_VECTOR_AGG: return i == 0 ? e->vec_agg.inner : NULL;
    case ST_LOGQL_EXPR_LABEL_REPLACE: return i == 0 ? e->label_replace.inner : NULL;
    case ST_LOGQL_EXPR_BINOP: return i == 0 ? e->binop.lhs : i == 1 ? e->binop.rhs : NULL;
    default: return NULL;
    }
}

/* True if some vector aggregation of the tree is one of ops (a, b). */
static bool uses_vec_op(const st_logql_expr_t *e, st_logql_vec_op_t a, st_logql_vec_op_t b)
{
    if (e == NULL) return false;
    if (e->kind == ST_LOGQL_EXPR_VECTOR_AGG && (e->vec_agg.op == a || e->vec_agg.op == b)) return true;
    return uses_vec_op(child_of(e, 0), a, b) || uses_vec_op(child_of(e, 1), a, b);
}

int st_metric_eval(st_mctx_t *c, const st_logql_expr_t *e, st_matrix_t *out)
{
    st_matrix_t a, b;
    int rc;
    st_matrix_init(out, c->steps.n);
    switch (e->kind) {
    case ST_LOGQL_EXPR_RANGE_AGG: return st_metric_range(c, e, NULL, out);
    case ST_LOGQL_EXPR_VECTOR_AGG:
        /* sum over count/rate/bytes/sum_over_time: the grouping reduces series at extraction */
        if (e->vec_agg.op == ST_LOGQL_VEC_SUM && st_metric_can_push_sum(e->vec_agg.inner))
            rc = st_metric_range(c, e->vec_agg.inner, &e->vec_agg.grouping, &a);
        else
            rc = st_metric_eval(c, e->vec_agg.inner, &a);
        if (rc < 0) return rc;
        return st_metric_vec_agg(c, e, &a, out);
    case ST_LOGQL_EXPR_BINOP:
        if (e->binop.lhs->kind == ST_LOGQL_EXPR_LITERAL || e->binop.rhs->kind == ST_LOGQL_EXPR_LITERAL) {
            bool lit_left = e->binop.lhs->kind == ST_LOGQL_EXPR_LITERAL;
            const st_logql_expr_t *other = lit_left ? e->binop.rhs : e->binop.lhs;
            double lit = lit_left ? e->binop.lhs->literal : e->binop.rhs->literal;
            ST_TRY(st_metric_eval(c, other, &a));
            return st_metric_binop_literal(c, e->binop.op, e->binop.return_bool, lit, lit_left, &a, out);
        }
        ST_TRY(st_metric_eval(c, e->binop.lhs, &a));
        if ((rc = st_metric_eval(c, e->binop.rhs, &b)) < 0) {
            st_matrix_free(&a);
            return rc;
        }
        return st_metric_binop(c, e, &a, &b, out);
    case ST_LOGQL_EXPR_LITERAL: return st_metric_constant(c, e->literal, out);
    case ST_LOGQL_EXPR_VECTOR: return st_metric_constant(c, e->vector, out);
    case ST_LOGQL_EXPR_LABEL_REPLACE:
        ST_TRY(st_metric_eval(c, e->label_replace.inner, &a));
        return st_metric_label_replace(c, e, &a, out);
    case ST_LOGQL_EXPR_LOG: break;
    }
    return st_qerr(c->err, 400, ST_EPARSE, "parse error : unexpected log query in a metric expression");
}

/* ---- encoding ----------------------------------------------------------------------------------- */

int st_metric_put_float(st_buf_t *out, double v)
{
    char tmp[400];
    if (isnan(v) || isinf(v) || v == 0) return st_json_put_float_str(out, v);
    if (fabs(v) < 9007199254740992.0 && v == (double)(int64_t)v) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)v);
        return st_buf_puts(out, tmp);
    }
    /* Go's FormatFloat(v, 'f', -1, 64): the correctly rounded 15-digit form round-trips whenever
     * any form of 15 digits or fewer does (a double is within half a 15-digit unit of such a form),
     * so its digits without trailing zeros are the shortest; otherwise 16, else 17 digits. */
    char e[64];
    int prec;
    for (prec = 14; prec < 16; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, v);
        if (strtod(e, NULL) == v) break;
    }
    if (prec == 16) snprintf(e, sizeof e, "%.16e", v);
    char *x = strchr(e, 'e');
    int exp = atoi(x + 1);
    int sig = 0;
    for (const char *d = e; d < x; d++)
        if (*d >= '0' && *d <= '9') sig++;
    for (const char *d = x - 1; d > e && *d == '0'; d--) sig--;
    int frac = sig - 1 - exp;
    if (frac < 0) frac = 0;
    if (frac > 340) frac = 340;
    snprintf(tmp, sizeof tmp, "%.*f", frac, v);
    return st_buf_puts(out, tmp);
}

/* Prometheus' model.Time.String(): seconds with up to millisecond precision, as a JSON number
 * (FormatFloat(ms/1000, 'f', -1): the decimal form of the milliseconds, trailing zeros trimmed). */
void st_metric_put_time(st_buf_t *out, int64_t ns)
{
    int64_t ms = ns / ST_NS_PER_MS;
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%s%llu", ms < 0 ? "-" : "", (unsigned long long)(a / 1000));
    unsigned f = (unsigned)(a % 1000);
    if (f) {
        tmp[n++] = '.';
        tmp[n++] = (char)('0' + f / 100);
        if (f % 100) tmp[n++] = (char)('0' + f / 10 % 10);
        if (f % 10) tmp[n++] = (char)('0' + f % 10);
    }
    st_buf_append(out, tmp, (size_t)n);
}

static void put_point(st_buf_t *out, int64_t ns, double v)
{
    st_buf_putc(out, '[');
    st_metric_put_time(out, ns);
    st_buf_puts(out, ",\"");
    st_metric_put_float(out, v);
    st_buf_puts(out, "\"]");
}

static void put_metric(st_buf_t *out, const st_labels_t *l)
{
    st_buf_putc(out, '{');
    for (size_t i = 0; i < l->n; i++) {
        if (i) st_buf_putc(out, ',');
        st_json_put_str(out, l->v[i].name);
        st_buf_putc(out, ':');
        st_json_put_str(out, l->v[i].value);
    }
    st_buf_putc(out, '}');
}

static int cmp_series(const void *a, const void *b, void *arg)
{
    const st_matrix_t *m = arg;
    return st_mlabels_cmp(&m->s[*(const size_t *)a].labels, &m->s[*(const size_t *)b].labels);
}

static void put_head(st_mctx_t *c, st_buf_t *out, const char *type)
{
    st_buf_puts(out, "{\"status\":\"success\",");
    st_strvec_sort_unique(&c->warnings);
    st_put_warnings(out, &c->warnings);
    st_buf_puts(out, "\"data\":{\"resultType\":\"");
    st_buf_puts(out, type);
    st_buf_puts(out, "\",\"result\":");
}

static int put_tail(st_mctx_t *c, st_buf_t *out)
{
    st_buf_putc(out, ',');
    st_qstats_json(&c->stats, out);
    return st_buf_puts(out, "}}");
}

static int encode(st_mctx_t *c, st_matrix_t *m, bool keep_order, st_buf_t *out)
{
    size_t *order = malloc((m->n ? m->n : 1) * sizeof *order);
    if (order == NULL) return -ENOMEM;
    size_t n = 0, points = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (m->s[i].npoints == 0) continue;
        order[n++] = i;
        points += m->s[i].npoints;
    }
    if (!keep_order && n > 1) qsort_r(order, n, sizeof *order, cmp_series, m);
    put_head(c, out, c->instant ? "vector" : "matrix");
    st_buf_putc(out, '[');
    for (size_t k = 0; k < n; k++) {
        const st_mseries_t *s = &m->s[order[k]];
        if (k) st_buf_putc(out, ',');
        st_buf_puts(out, "{\"metric\":");
        put_metric(out, &s->labels);
        if (c->instant) {
            st_buf_puts(out, ",\"value\":");
            put_point(out, c->steps.start, s->v[0]);
        } else {
            st_buf_puts(out, ",\"values\":[");
            bool first = true;
            for (size_t t = 0; t < m->nsteps; t++) {
                if (!st_mseries_has(s, t)) continue;
                if (!first) st_buf_putc(out, ',');
                first = false;
                put_point(out, st_msteps_at(&c->steps, t), s->v[t]);
            }
            st_buf_putc(out, ']');
        }
        st_buf_putc(out, '}');
    }
    st_buf_putc(out, ']');
    free(order);
    c->stats.entries_returned = points;
    return put_tail(c, out);
}

/* ---- entry point -------------------------------------------------------------------------------- */

int st_exec_metric_query(st_querier_t *q, const st_query_t *req, const st_logql_expr_t *e, st_buf_t *out,
                         st_query_error_t *err)
{
    st_mctx_t c;
    memset(&c, 0, sizeof c);
    c.q = q;
    c.tenant = req->tenant;
    c.err = err;
    c.instant = req->instant;
    c.stats.start_mono = st_mono_ns();
    c.deadline = q->o.query_timeout_ns > 0 ? c.stats.start_mono + q->o.query_timeout_ns : INT64_MAX;
    c.max_series = q->o.max_query_series;
    c.steps.start = req->start;
    if (req->instant || req->step_ns <= 0 || req->end <= req->start) {
        c.steps.step = req->instant ? 0 : req->step_ns;
        c.steps.n = 1;
    } else {
        c.steps.step = req->step_ns;
        c.steps.n = (size_t)((req->end - req->start) / req->step_ns) + 1;
    }
    if (!req->instant && uses_vec_op(e, ST_LOGQL_VEC_APPROX_TOPK, ST_LOGQL_VEC_APPROX_TOPK))
        return st_qerr(err, 400, ST_EPARSE, "count min sketches are only supported on instant queries");
    if (e->kind == ST_LOGQL_EXPR_LITERAL && req->instant) {
        /* a scalar */
        put_head(&c, out, "scalar");
        put_point(out, c.steps.start, e->literal);
        return put_tail(&c, out);
    }
    if (e->kind == ST_LOGQL_EXPR_RANGE_AGG)
        c.output_range = e;
    else if (e->kind == ST_LOGQL_EXPR_VECTOR_AGG && e->vec_agg.op == ST_LOGQL_VEC_SUM &&
             st_metric_can_push_sum(e->vec_agg.inner))
        c.output_range = e->vec_agg.inner;
    st_matrix_t m;
    int rc = st_metric_eval(&c, e, &m);
    if (rc == 0 && c.max_series > 0) {
        size_t n = 0;
        for (size_t i = 0; i < m.n; i++) n += m.s[i].npoints > 0;
        if (n > (size_t)c.max_series) rc = st_metric_series_limit_error(&c, c.max_series);
    }
    if (rc == 0) {
        /* instant results keep the order of sort/sort_desc; everything else is sorted by labels */
        bool keep = req->instant && uses_vec_op(e, ST_LOGQL_VEC_SORT, ST_LOGQL_VEC_SORT_DESC);
        if ((rc = encode(&c, &m, keep, out)) < 0)
            st_qerr(err, 500, rc, "encoding result: %s", st_strerror(rc));
    }
    if (rc < 0 && err && err->status == 0) st_qerr(err, 500, rc, "%s", st_strerror(rc));
    st_matrix_free(&m);
    st_buf_free(&c.scratch);
    st_strvec_free(&c.warnings);
    return rc;
}
