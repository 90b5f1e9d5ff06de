/* check.c: the checks Loki applies after parsing (validateExpr: node errors, selectors that need a
 * non-empty-matching matcher, sort grouping) and the ones it applies when it builds a pipeline
 * (line filter regexes/patterns/ip(), ip label filters, label_format names, json paths), which
 * Strata reports at parse time with Loki's "stage '...'" text. Compiles what those checks build. */
#include "querier/logql/logql_int.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>

#define ERR_MATCHER                                                                                          \
    "queries require at least one regexp or equality matcher that does not have an empty-compatible "        \
    "value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will"

static int fail(st_logql_error_t *e, const char *msg)
{
    e->line = 0;
    e->col = 0;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return ST_EPARSE;
}

static int validate_matchers(const st_logql_selector_t *s, st_logql_error_t *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->v[i].matches_empty) return 0;
    return fail(e, ERR_MATCHER);
}

static int validate_sample(const st_logql_expr_t *x, st_logql_error_t *e)
{
    const lq_node_t *n = lq_node(x);
    if (n->err != NULL) return fail(e, n->err);
    switch (x->kind) {
    case ST_LOGQL_EXPR_BINOP:
        ST_TRY(validate_sample(x->binop.lhs, e));
        return validate_sample(x->binop.rhs, e);
    case ST_LOGQL_EXPR_LITERAL:
    case ST_LOGQL_EXPR_VECTOR: return 0;
    case ST_LOGQL_EXPR_VECTOR_AGG:
        if ((x->vec_agg.op == ST_LOGQL_VEC_SORT || x->vec_agg.op == ST_LOGQL_VEC_SORT_DESC) &&
            x->vec_agg.grouping.n > 0)
            return fail(e, "sort and sort_desc doesn't allow grouping by ");
        return validate_sample(x->vec_agg.inner, e);
    case ST_LOGQL_EXPR_LABEL_REPLACE: return validate_sample(x->label_replace.inner, e);
    case ST_LOGQL_EXPR_RANGE_AGG: return validate_matchers(&x->range_agg.range.selector, e);
    case ST_LOGQL_EXPR_LOG: return validate_matchers(&x->log.selector, e);
    }
    return 0;
}

int lq_validate(const st_logql_expr_t *root, st_logql_error_t *e)
{
    if (root->kind == ST_LOGQL_EXPR_LOG) return validate_matchers(&root->log.selector, e);
    return validate_sample(root, e);
}

/* ---- pipeline-build checks ---- */

typedef struct {
    lq_arena_t *a;
    st_logql_error_t *e;
    char msg[400];
} ck_t;

static int stage_fail(ck_t *c, st_buf_t *stage_text, const char *why)
{
    int rc = fail(c->e, "");
    snprintf(c->e->msg, sizeof c->e->msg, "stage '%.*s' : %s",
             (int)(stage_text->len > 300 ? 300 : stage_text->len), stage_text->data ? stage_text->data : "",
             why);
    st_buf_free(stage_text);
    return rc;
}

static int ip_error(char *msg, size_t msgsz, st_str_t text)
{
    st_buf_t q = ST_BUF_INIT;
    if (lq_quote(&q, text) < 0) return -ENOMEM;
    snprintf(msg, msgsz, "ip: invalid pattern: %.*s", (int)(q.len > 300 ? 300 : q.len), q.data);
    st_buf_free(&q);
    return ST_EPARSE;
}

/* Builds one line filter operand; returns 0, ST_EPARSE (c->msg) or -ENOMEM. */
static int build_alt(ck_t *c, st_logql_line_op_t op, st_logql_line_alt_t *alt)
{
    if (alt->is_ip) {
        if (op != ST_LOGQL_LINE_CONTAINS && op != ST_LOGQL_LINE_NOT_CONTAINS) {
            snprintf(c->msg, sizeof c->msg, "ip: invalid operation");
            return ST_EPARSE;
        }
        alt->ip.text = alt->value;
        if (lq_parse_ip(alt->value, &alt->ip) != 0) return ip_error(c->msg, sizeof c->msg, alt->value);
        return 0;
    }
    switch (op) {
    case ST_LOGQL_LINE_REGEX:
    case ST_LOGQL_LINE_NOT_REGEX:
        return lq_regex_compile(c->a, alt->value, 0, &alt->re, c->msg, sizeof c->msg);
    case ST_LOGQL_LINE_PATTERN:
    case ST_LOGQL_LINE_NOT_PATTERN: {
        if (alt->value.n == 0) return 0;
        int rc = lq_parse_pattern(c->a, alt->value, &alt->pattern, c->msg, sizeof c->msg);
        if (rc != 0) return rc;
        return lq_check_pattern_filter(&alt->pattern, c->msg, sizeof c->msg);
    }
    default: return 0;
    }
}

/* A run of line filters is one stage for Loki, built from its last filter backwards. */
static int check_line_group(ck_t *c, st_logql_stage_t **g, size_t n)
{
    for (size_t k = n; k > 0; k--) {
        st_logql_line_filter_t *f = &g[k - 1]->line;
        bool neg = f->op == ST_LOGQL_LINE_NOT_CONTAINS || f->op == ST_LOGQL_LINE_NOT_REGEX ||
                   f->op == ST_LOGQL_LINE_NOT_PATTERN;
        for (size_t j = 0; j < f->n_alts; j++) {
            size_t i = neg ? f->n_alts - 1 - j : j;
            int rc = build_alt(c, f->op, &f->alts[i]);
            if (rc == -ENOMEM) return rc;
            if (rc != 0) {
                st_buf_t t = ST_BUF_INIT;
                if (lq_format_line_filters((const st_logql_stage_t *const *)g, n, &t) < 0) return -ENOMEM;
                return stage_fail(c, &t, c->msg);
            }
        }
    }
    return 0;
}

static int build_ips(ck_t *c, st_logql_label_filter_t *f, bool *bad)
{
    switch (f->kind) {
    case ST_LOGQL_LF_AND:
    case ST_LOGQL_LF_OR: ST_TRY(build_ips(c, f->bin.left, bad)); return build_ips(c, f->bin.right, bad);
    case ST_LOGQL_LF_IP:
        if (lq_parse_ip(f->ip.ip.text, &f->ip.ip) != 0 && !*bad) {
            *bad = true;
            return ip_error(c->msg, sizeof c->msg, f->ip.ip.text);
        }
        return 0;
    default: return 0;
    }
}

static int check_label_filter(ck_t *c, st_logql_label_filter_t *f, bool in_unwrap)
{
    bool bad = false;
    int rc = build_ips(c, f, &bad);
    if (rc == 0) return 0;
    if (rc == -ENOMEM) return rc;
    st_buf_t t = ST_BUF_INIT;
    if (st_buf_puts(&t, "| ") < 0 || st_logql_format_label_filter(f, &t) < 0) return -ENOMEM;
    (void)in_unwrap;
    return stage_fail(c, &t, c->msg);
}

static int check_stage(ck_t *c, st_logql_stage_t *s)
{
    st_buf_t t = ST_BUF_INIT;
    switch (s->kind) {
    case ST_LOGQL_STAGE_LABEL_FILTER: return check_label_filter(c, s->label_filter, false);
    case ST_LOGQL_STAGE_LABEL_FORMAT:
        for (size_t i = 0; i < s->label_format.n; i++) {
            st_str_t d = s->label_format.v[i].dst;
            if (st_str_eqc(d, "__error__")) {
                snprintf(c->msg, sizeof c->msg, "__error__ cannot be formatted");
                goto fail;
            }
            for (size_t j = 0; j < i; j++) {
                if (st_str_eq(s->label_format.v[j].dst, d)) {
                    snprintf(c->msg, sizeof c->msg,
                             "multiple label name '%.*s' not allowed in a single format operation", (int)d.n,
                             d.p);
                    goto fail;
                }
            }
        }
        return 0;
    case ST_LOGQL_STAGE_JSON:
        for (size_t i = 0; i < s->json.n; i++) {
            st_logql_extract_t *x = &s->json.v[i];
            int rc = lq_parse_json_path(c->a, x->expr, &x->steps, &x->n_steps, c->msg, sizeof c->msg);
            if (rc == -ENOMEM) return rc;
            if (rc != 0) goto fail;
        }
        return 0;
    default: return 0;
    }
fail:
    if (lq_format_stage(s, &t) < 0) return -ENOMEM;
    return stage_fail(c, &t, c->msg);
}

/* Loki's reorderStages: line filters move to the front of their segment; label filters,
 * line_format and unpack end a segment. Stages are built (and fail) in that order. */
static int check_pipeline(ck_t *c, st_logql_pipeline_t *p, st_logql_unwrap_t *u)
{
    size_t n = p->n;
    st_logql_stage_t *lf_buf[64], *other_buf[64];
    st_logql_stage_t **lf = lf_buf, **other = other_buf;
    if (n > 64) {
        lf = lq_alloc(c->a, n * sizeof *lf);
        other = lq_alloc(c->a, n * sizeof *other);
        if (lf == NULL || other == NULL) return -ENOMEM;
    }
    size_t nlf = 0, nother = 0;
#define FLUSH()                                                                                              \
    do {                                                                                                     \
        if (nlf > 0) ST_TRY(check_line_group(c, lf, nlf));                                                   \
        for (size_t k_ = 0; k_ < nother; k_++) ST_TRY(check_stage(c, other[k_]));                            \
        nlf = nother = 0;                                                                                    \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        st_logql_stage_t *s = &p->v[i];
        switch (s->kind) {
        case ST_LOGQL_STAGE_LABEL_FILTER:
            FLUSH();
            ST_TRY(check_stage(c, s));
            break;
        case ST_LOGQL_STAGE_LINE_FILTER: lf[nlf++] = s; break;
        case ST_LOGQL_STAGE_LINE_FORMAT:
            other[nother++] = s;
            FLUSH();
            break;
        case ST_LOGQL_STAGE_UNPACK:
            other[nother++] = s;
            FLUSH();
            break;
        default: other[nother++] = s; break;
        }
    }
    FLUSH();
#undef FLUSH
    if (u != NULL)
        for (size_t i = 0; i < u->n_post; i++) ST_TRY(check_label_filter(c, u->post[i], true));
    return 0;
}

static int check_expr(ck_t *c, st_logql_expr_t *x)
{
    switch (x->kind) {
    case ST_LOGQL_EXPR_LOG: return check_pipeline(c, &x->log.pipeline, NULL);
    case ST_LOGQL_EXPR_RANGE_AGG:
        return check_pipeline(c, &x->range_agg.range.pipeline, x->range_agg.range.unwrap);
    case ST_LOGQL_EXPR_VECTOR_AGG: return check_expr(c, x->vec_agg.inner);
    case ST_LOGQL_EXPR_LABEL_REPLACE: return check_expr(c, x->label_replace.inner);
    case ST_LOGQL_EXPR_BINOP: ST_TRY(check_expr(c, x->binop.lhs)); return check_expr(c, x->binop.rhs);
    default: return 0;
    }
}

int lq_check_stages(lq_arena_t *a, st_logql_expr_t *root, st_logql_error_t *e)
{
    ck_t c = {a, e, {0}};
    return check_expr(&c, root);
}
