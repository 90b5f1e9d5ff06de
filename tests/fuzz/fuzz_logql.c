/* fuzz_logql.c: libFuzzer target for the LogQL front end. Parses the input; on success formats it,
 * parses the text again and requires the same canonical text (idempotent formatting), does the same
 * for the pretty form of small queries, and walks the selectors. Crashes, leaks and any instability
 * abort. */
#include "querier/logql/logql.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool nonfinite(const st_logql_expr_t *e)
{
    switch (e->kind) {
    case ST_LOGQL_EXPR_LITERAL: return !isfinite(e->literal);
    case ST_LOGQL_EXPR_VECTOR: return !isfinite(e->vector);
    case ST_LOGQL_EXPR_BINOP: return nonfinite(e->binop.lhs) || nonfinite(e->binop.rhs);
    case ST_LOGQL_EXPR_VECTOR_AGG: return nonfinite(e->vec_agg.inner);
    case ST_LOGQL_EXPR_LABEL_REPLACE: return nonfinite(e->label_replace.inner);
    default: return false;
    }
}

static int count_cb(const st_logql_selector_t *s, const st_logql_pipeline_t *p, const st_logql_log_range_t *r,
                    void *arg)
{
    (void)r;
    *(size_t *)arg += s->n + p->n;
    return 0;
}

static void die(const char *what, const uint8_t *data, size_t size, const char *a, const char *b)
{
    fprintf(stderr, "%s\ninput: %.*s\nfirst:  %s\nsecond: %s\n", what, (int)size, (const char *)data, a, b);
    abort();
}

/* Parses text and requires its canonical form to equal want. */
static void reparse(const char *text, size_t n, const char *want, const uint8_t *data, size_t size)
{
    st_logql_expr_t *e2 = NULL;
    char err[1024];
    if (st_logql_parse(text, n, &e2, err, sizeof err) != 0)
        die("formatted query does not parse", data, size, text, err);
    st_buf_t b2 = ST_BUF_INIT;
    if (st_logql_format(e2, &b2) != 0) abort();
    if (strcmp(want, st_buf_cstr(&b2)) != 0) die("formatting is not stable", data, size, want, b2.data);
    st_buf_free(&b2);
    st_logql_free(e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_logql_expr_t *e = NULL;
    char err[1024];
    if (st_logql_parse((const char *)data, size, &e, err, sizeof err) != 0) return 0;
    size_t count = 0;
    (void)st_logql_walk_selectors(e, count_cb, &count);
    (void)st_logql_is_log_query(e);
    st_buf_t b = ST_BUF_INIT;
    if (st_logql_format(e, &b) != 0) abort();
    const char *text = st_buf_cstr(&b);
    if (!nonfinite(e) && b.len < ST_LOGQL_MAX_INPUT) {
        reparse(text, b.len, text, data, size);
        if (b.len < 4096) {
            st_buf_t p = ST_BUF_INIT;
            if (st_logql_format_pretty(e, &p) != 0) abort();
            /* deep trees indent quadratically and may outgrow the input limit */
            if (p.len < ST_LOGQL_MAX_INPUT) reparse(st_buf_cstr(&p), p.len, text, data, size);
            st_buf_free(&p);
        }
    }
    st_buf_free(&b);
    st_logql_free(e);
    return 0;
}
