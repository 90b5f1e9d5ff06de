/* test_logql_parse.c: unit tests of the LogQL front end: the shared corpus (verdicts, Loki's error
 * texts, format -> parse -> format round trips, pretty output that parses back) and targeted
 * checks of the AST (matchers, filters, stages, grouping, operator precedence, folding, values). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/err.h"
#include "querier/logql/logql.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOGQL_CORPUS
#define LOGQL_CORPUS "tests/logql/corpus.txt"
#endif

static st_logql_expr_t *must_parse(const char *q)
{
    st_logql_expr_t *e = NULL;
    char err[1024];
    int rc = st_logql_parse(q, strlen(q), &e, err, sizeof err);
    if (rc != 0) fail_msg("parse failed for %s: %s", q, err);
    return e;
}

static void expect_error(const char *q, const char *want)
{
    st_logql_expr_t *e = NULL;
    char err[1024];
    int rc = st_logql_parse(q, strlen(q), &e, err, sizeof err);
    if (rc == 0) {
        st_logql_free(e);
        fail_msg("expected an error for %s", q);
    }
    assert_int_equal(rc, ST_EPARSE);
    if (want != NULL && strcmp(err, want) != 0) fail_msg("query %s\n want: %s\n got:  %s", q, want, err);
}

static char *fmt(const st_logql_expr_t *e)
{
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_logql_format(e, &b), 0);
    st_buf_cstr(&b);
    size_t n;
    return st_buf_steal(&b, &n);
}

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

/* ---- corpus ---- */

static void test_corpus(void **state)
{
    (void)state;
    FILE *f = fopen(LOGQL_CORPUS, "r");
    if (f == NULL) fail_msg("cannot open %s", LOGQL_CORPUS);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lines = 0, oks = 0, errs = 0, msgs = 0, failures = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[--n] = '\0';
        if (n == 0 || line[0] == '#') continue;
        lines++;
        char *q = strchr(line, '\t');
        if (q == NULL) fail_msg("bad corpus line %s", line);
        *q++ = '\0';
        char *want = strchr(q, '\t');
        if (want != NULL) *want++ = '\0';
        bool expect_ok = strcmp(line, "OK") == 0;
        st_logql_expr_t *e = NULL;
        char err[1024];
        int rc = st_logql_parse(q, strlen(q), &e, err, sizeof err);
        if (expect_ok) {
            oks++;
            if (rc != 0) {
                print_error("OK query failed: %s\n  %s\n", q, err);
                failures++;
                continue;
            }
            char *f1 = fmt(e);
            st_logql_expr_t *e2 = NULL;
            char err2[1024];
            if (nonfinite(e)) {
                /* NaN/Inf print as Loki prints them, which LogQL cannot read back */
            } else if (st_logql_parse(f1, strlen(f1), &e2, err2, sizeof err2) != 0) {
                print_error("round trip failed: %s\n  formatted %s\n  %s\n", q, f1, err2);
                failures++;
            } else {
                char *f2 = fmt(e2);
                if (strcmp(f1, f2) != 0) {
                    print_error("round trip unstable: %s\n  %s\n  %s\n", q, f1, f2);
                    failures++;
                }
                free(f2);
                st_logql_free(e2);
                /* the pretty form parses back to the same query */
                st_buf_t pb = ST_BUF_INIT;
                assert_int_equal(st_logql_format_pretty(e, &pb), 0);
                st_buf_cstr(&pb);
                e2 = NULL;
                if (st_logql_parse(pb.data, pb.len, &e2, err2, sizeof err2) != 0) {
                    print_error("pretty form does not parse: %s\n%s\n  %s\n", q, pb.data, err2);
                    failures++;
                } else {
                    char *f3 = fmt(e2);
                    if (strcmp(f1, f3) != 0) {
                        print_error("pretty form changes the query: %s\n  %s\n  %s\n", q, f1, f3);
                        failures++;
                    }
                    free(f3);
                    st_logql_free(e2);
                }
                st_buf_free(&pb);
            }
            free(f1);
            st_logql_free(e);
        } else {
            errs++;
            if (rc == 0) {
                char *f1 = fmt(e);
                print_error("ERR query parsed: %s\n  as %s\n", q, f1);
                free(f1);
                st_logql_free(e);
                failures++;
                continue;
            }
            if (rc != ST_EPARSE) {
                print_error("ERR query gave rc %d: %s\n", rc, q);
                failures++;
            }
            if (want != NULL) {
                msgs++;
                if (strcmp(want, err) != 0) {
                    print_error("message mismatch: %s\n  want %s\n  got  %s\n", q, want, err);
                    failures++;
                }
            }
        }
    }
    free(line);
    fclose(f);
    print_message("corpus: %d queries (%d OK, %d ERR, %d with messages), %d failures\n", lines, oks, errs,
                  msgs, failures);
    assert_true(lines > 300);
    assert_int_equal(failures, 0);
}

/* ---- selectors ---- */

static bool re_match(const pcre2_code *re, const char *s)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

static void test_selector(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("{app=\"foo\", env!=\"x\", re=~\"a.+\", nre!~`b\\d`, esc=\"q\\\"\\u00e9\"}");
    assert_int_equal(e->kind, ST_LOGQL_EXPR_LOG);
    assert_true(st_logql_is_log_query(e));
    const st_logql_selector_t *s = &e->log.selector;
    assert_int_equal(s->n, 5);
    assert_int_equal(s->v[0].type, ST_LOGQL_MATCH_EQ);
    assert_string_equal(s->v[0].name.p, "app");
    assert_string_equal(s->v[0].value.p, "foo");
    assert_null(s->v[0].re);
    assert_false(s->v[0].matches_empty);
    assert_int_equal(s->v[1].type, ST_LOGQL_MATCH_NEQ);
    assert_true(s->v[1].matches_empty);
    assert_int_equal(s->v[2].type, ST_LOGQL_MATCH_RE);
    assert_non_null(s->v[2].re);
    assert_true(re_match(s->v[2].re, "aXb"));
    assert_true(re_match(s->v[2].re, "a\nb"));  /* Prometheus matchers use (?s) */
    assert_false(re_match(s->v[2].re, "zaXb")); /* fully anchored */
    assert_false(re_match(s->v[2].re, "a"));
    assert_false(s->v[2].matches_empty);
    assert_int_equal(s->v[3].type, ST_LOGQL_MATCH_NRE);
    assert_string_equal(s->v[3].value.p, "b\\d");
    assert_true(re_match(s->v[3].re, "b7"));
    assert_true(s->v[3].matches_empty);
    assert_int_equal(s->v[4].value.n, 4);
    assert_memory_equal(s->v[4].value.p, "q\"\xc3\xa9", 4);
    assert_int_equal(e->log.pipeline.n, 0);
    st_logql_free(e);

    e = must_parse("{\xc3\xb1=\"x\"}"); /* Go identifiers may be Unicode letters */
    assert_string_equal(e->log.selector.v[0].name.p, "\xc3\xb1");
    st_logql_free(e);
    st_logql_free(NULL);
}

/* ---- line filters ---- */

static void test_line_filters(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("{a=\"b\"} |= \"x\" or \"y\" != \"z\" or `w` |~ \"e.r\" !~ \"(?i)dbg\" |> \"<_> x <_>\" "
                   "!> \"y\" |= ip(\"10.0.0.0/8\") != ip(\"::1\")");
    const st_logql_pipeline_t *p = &e->log.pipeline;
    assert_int_equal(p->n, 8);
    for (size_t i = 0; i < p->n; i++) assert_int_equal(p->v[i].kind, ST_LOGQL_STAGE_LINE_FILTER);
    const st_logql_line_filter_t *f = &p->v[0].line;
    assert_int_equal(f->op, ST_LOGQL_LINE_CONTAINS);
    assert_int_equal(f->n_alts, 2);
    assert_string_equal(f->alts[0].value.p, "x");
    assert_string_equal(f->alts[1].value.p, "y");
    f = &p->v[1].line;
    assert_int_equal(f->op, ST_LOGQL_LINE_NOT_CONTAINS);
    assert_int_equal(f->n_alts, 2);
    assert_string_equal(f->alts[1].value.p, "w");
    f = &p->v[2].line;
    assert_int_equal(f->op, ST_LOGQL_LINE_REGEX);
    assert_non_null(f->alts[0].re);
    assert_true(re_match(f->alts[0].re, "an error here")); /* unanchored */
    assert_false(re_match(f->alts[0].re, "e\nr"));
    f = &p->v[3].line;
    assert_int_equal(f->op, ST_LOGQL_LINE_NOT_REGEX);
    assert_true(re_match(f->alts[0].re, "DBG"));
    f = &p->v[4].line;
    assert_int_equal(f->op, ST_LOGQL_LINE_PATTERN);
    assert_int_equal(f->alts[0].pattern.n, 3);
    assert_true(f->alts[0].pattern.v[0].capture);
    assert_string_equal(f->alts[0].pattern.v[0].text.p, "_");
    assert_false(f->alts[0].pattern.v[1].capture);
    assert_string_equal(f->alts[0].pattern.v[1].text.p, " x ");
    assert_int_equal(p->v[5].line.op, ST_LOGQL_LINE_NOT_PATTERN);
    f = &p->v[6].line;
    assert_true(f->alts[0].is_ip);
    assert_true(f->alts[0].ip.v4);
    assert_int_equal(f->alts[0].ip.lo[10], 0xFF);
    assert_int_equal(f->alts[0].ip.lo[12], 10);
    assert_int_equal(f->alts[0].ip.lo[13], 0);
    assert_int_equal(f->alts[0].ip.hi[12], 10);
    assert_int_equal(f->alts[0].ip.hi[15], 255);
    f = &p->v[7].line;
    assert_false(f->alts[0].ip.v4);
    assert_int_equal(f->alts[0].ip.lo[15], 1);
    char *s = fmt(e);
    assert_string_equal(
        s, "{a=\"b\"} |= \"x\" or \"y\" != \"z\" != \"w\" |~ \"e.r\" !~ \"(?i)dbg\" |> \"<_> x <_>\" "
           "!> \"y\" |= ip(\"10.0.0.0/8\") != ip(\"::1\")");
    free(s);
    st_logql_free(e);

    e = must_parse("{a=\"b\"} |= ip(\"192.168.0.1-192.168.0.20\")");
    const st_logql_ip_t *ip = &e->log.pipeline.v[0].line.alts[0].ip;
    assert_int_equal(ip->lo[15], 1);
    assert_int_equal(ip->hi[15], 20);
    st_logql_free(e);
}

/* ---- parser stages ---- */

static void test_parser_stages(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("{a=\"b\"} | json | json x, y=\"a.b[0][\\\"c d\\\"]\" | logfmt --strict --keep-empty | "
                   "logfmt k, v=\"w\" "
                   "| regexp \"(?P<m>\\\\w+) (\\\\d+) (?<p>x)\" | pattern \"<ip> - <_> [<ts>]\" | unpack");
    const st_logql_pipeline_t *p = &e->log.pipeline;
    assert_int_equal(p->n, 7);
    assert_int_equal(p->v[0].kind, ST_LOGQL_STAGE_JSON);
    assert_int_equal(p->v[0].json.n, 0);
    assert_int_equal(p->v[1].kind, ST_LOGQL_STAGE_JSON);
    assert_int_equal(p->v[1].json.n, 2);
    assert_string_equal(p->v[1].json.v[0].name.p, "x");
    assert_string_equal(p->v[1].json.v[0].expr.p, "x");
    assert_int_equal(p->v[1].json.v[0].n_steps, 1);
    const st_logql_extract_t *x = &p->v[1].json.v[1];
    assert_string_equal(x->expr.p, "a.b[0][\"c d\"]");
    assert_int_equal(x->n_steps, 4);
    assert_string_equal(x->steps[0].key.p, "a");
    assert_string_equal(x->steps[1].key.p, "b");
    assert_true(x->steps[2].is_index);
    assert_int_equal(x->steps[2].index, 0);
    assert_string_equal(x->steps[3].key.p, "c d");
    assert_int_equal(p->v[2].kind, ST_LOGQL_STAGE_LOGFMT);
    assert_true(p->v[2].logfmt.strict);
    assert_true(p->v[2].logfmt.keep_empty);
    assert_int_equal(p->v[2].logfmt.n, 0);
    assert_false(p->v[3].logfmt.strict);
    assert_int_equal(p->v[3].logfmt.n, 2);
    assert_string_equal(p->v[3].logfmt.v[1].expr.p, "w");
    assert_int_equal(p->v[4].kind, ST_LOGQL_STAGE_REGEXP);
    assert_int_equal(p->v[4].regexp.n, 4);
    assert_string_equal(p->v[4].regexp.names[1].p, "m");
    assert_int_equal(p->v[4].regexp.names[2].n, 0);
    assert_string_equal(p->v[4].regexp.names[3].p, "p");
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->v[4].regexp.code, NULL);
    assert_int_equal(pcre2_match(p->v[4].regexp.code, (PCRE2_SPTR) "GET 42 x", 8, 0, 0, md, NULL), 4);
    pcre2_match_data_free(md);
    assert_int_equal(p->v[5].kind, ST_LOGQL_STAGE_PATTERN);
    const st_logql_pattern_t *pt = &p->v[5].pattern.pattern;
    assert_int_equal(pt->n, 6);
    assert_string_equal(pt->v[0].text.p, "ip");
    assert_string_equal(pt->v[1].text.p, " - ");
    assert_true(pt->v[2].capture);
    assert_string_equal(pt->v[3].text.p, " [");
    assert_string_equal(pt->v[4].text.p, "ts");
    assert_string_equal(pt->v[5].text.p, "]");
    assert_int_equal(p->v[6].kind, ST_LOGQL_STAGE_UNPACK);
    st_logql_free(e);
}

/* ---- label filters ---- */

static void test_label_filters(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("{a=\"b\"} | x=\"1\" or y=\"2\" and z=\"3\" | d > 1m30s | s >= 20MB | k < 1KiB "
                   "| n == -1.5 | n2 = 7 | n3 != 1e3 | i = ip(\"1.2.3.4\") | r =~ \"a.*\" | q!~\"b\"");
    const st_logql_pipeline_t *p = &e->log.pipeline;
    assert_int_equal(p->n, 10);
    const st_logql_label_filter_t *f = p->v[0].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_OR);
    assert_int_equal(f->bin.left->kind, ST_LOGQL_LF_STRING);
    assert_string_equal(f->bin.left->str.name.p, "x");
    assert_int_equal(f->bin.right->kind, ST_LOGQL_LF_AND);
    assert_string_equal(f->bin.right->bin.right->str.value.p, "3");
    f = p->v[1].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_DURATION);
    assert_int_equal(f->dur.op, ST_LOGQL_CMP_GT);
    assert_true(f->dur.ns == INT64_C(90000000000));
    f = p->v[2].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_BYTES);
    assert_int_equal(f->bytes.op, ST_LOGQL_CMP_GTE);
    assert_true(f->bytes.bytes == 20000000);
    f = p->v[3].label_filter;
    assert_true(f->bytes.bytes == 1024);
    f = p->v[4].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_NUMBER);
    assert_int_equal(f->num.op, ST_LOGQL_CMP_EQ);
    assert_true(f->num.value == -1.5);
    assert_int_equal(p->v[5].label_filter->num.op, ST_LOGQL_CMP_EQ);
    assert_int_equal(p->v[6].label_filter->num.op, ST_LOGQL_CMP_NEQ);
    assert_true(p->v[6].label_filter->num.value == 1000);
    f = p->v[7].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_IP);
    assert_int_equal(f->ip.ip.lo[12], 1);
    f = p->v[8].label_filter;
    assert_int_equal(f->str.type, ST_LOGQL_MATCH_RE);
    assert_true(re_match(f->str.re, "abc"));
    assert_false(re_match(f->str.re, "zabc"));
    assert_int_equal(p->v[9].label_filter->str.type, ST_LOGQL_MATCH_NRE);
    char *s = fmt(e);
    assert_string_equal(
        s, "{a=\"b\"} | ( x=\"1\" or ( y=\"2\" , z=\"3\" ) ) | d>1m30s | s>=20MB | k<1.0kB | n==-1.5 "
           "| n2==7 | n3!=1000 | i=ip(\"1.2.3.4\") | r=~\"a.*\" | q!~\"b\"");
    free(s);
    st_logql_free(e);

    /* "," and juxtaposition take the rest of the filter; and binds tighter than or */
    e = must_parse("{a=\"b\"} | a=\"1\", b=\"2\" or c=\"3\"");
    f = e->log.pipeline.v[0].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_AND);
    assert_int_equal(f->bin.right->kind, ST_LOGQL_LF_OR);
    st_logql_free(e);
    e = must_parse("{a=\"b\"} | a=\"1\" and b=\"2\" or c=\"3\" and d=\"4\"");
    f = e->log.pipeline.v[0].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_OR);
    assert_int_equal(f->bin.left->kind, ST_LOGQL_LF_AND);
    assert_int_equal(f->bin.right->kind, ST_LOGQL_LF_AND);
    st_logql_free(e);
    e = must_parse("{a=\"b\"} | a=\"1\" b=\"2\" c=\"3\"");
    f = e->log.pipeline.v[0].label_filter;
    assert_int_equal(f->kind, ST_LOGQL_LF_AND);
    assert_int_equal(f->bin.left->kind, ST_LOGQL_LF_STRING);
    assert_int_equal(f->bin.right->kind, ST_LOGQL_LF_AND);
    st_logql_free(e);
}

/* ---- formatting stages ---- */

static void test_format_stages(void **state)
{
    (void)state;
    st_logql_expr_t *e = must_parse("{a=\"b\"} | line_format \"{{.x}}\" | label_format dst=src, t=\"{{.y}}\" "
                                    "| drop a, b=\"c\", d=~\"e.*\" | keep f | decolorize");
    const st_logql_pipeline_t *p = &e->log.pipeline;
    assert_int_equal(p->n, 5);
    assert_int_equal(p->v[0].kind, ST_LOGQL_STAGE_LINE_FORMAT);
    assert_string_equal(p->v[0].line_format.p, "{{.x}}");
    assert_int_equal(p->v[1].kind, ST_LOGQL_STAGE_LABEL_FORMAT);
    assert_int_equal(p->v[1].label_format.n, 2);
    assert_true(p->v[1].label_format.v[0].rename);
    assert_string_equal(p->v[1].label_format.v[0].dst.p, "dst");
    assert_string_equal(p->v[1].label_format.v[0].value.p, "src");
    assert_false(p->v[1].label_format.v[1].rename);
    assert_string_equal(p->v[1].label_format.v[1].value.p, "{{.y}}");
    assert_int_equal(p->v[2].kind, ST_LOGQL_STAGE_DROP);
    assert_int_equal(p->v[2].names.n, 3);
    assert_false(p->v[2].names.v[0].has_matcher);
    assert_true(p->v[2].names.v[1].has_matcher);
    assert_string_equal(p->v[2].names.v[1].name.p, "b");
    assert_int_equal(p->v[2].names.v[2].matcher.type, ST_LOGQL_MATCH_RE);
    assert_non_null(p->v[2].names.v[2].matcher.re);
    assert_int_equal(p->v[3].kind, ST_LOGQL_STAGE_KEEP);
    assert_int_equal(p->v[4].kind, ST_LOGQL_STAGE_DECOLORIZE);
    st_logql_free(e);
}

/* ---- metric expressions ---- */

static void test_range_agg(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("quantile_over_time(0.99, {a=\"b\"} | json | unwrap duration(lat) | __error__=\"\" "
                   "[5m] offset 1h) by (x, y)");
    assert_int_equal(e->kind, ST_LOGQL_EXPR_RANGE_AGG);
    assert_false(st_logql_is_log_query(e));
    assert_int_equal(e->range_agg.op, ST_LOGQL_RANGE_QUANTILE_OVER_TIME);
    assert_true(e->range_agg.has_param);
    assert_true(e->range_agg.param == 0.99);
    const st_logql_log_range_t *r = &e->range_agg.range;
    assert_true(r->range_ns == INT64_C(300000000000));
    assert_true(r->offset_ns == INT64_C(3600000000000));
    assert_int_equal(r->selector.n, 1);
    assert_int_equal(r->pipeline.n, 1);
    assert_non_null(r->unwrap);
    assert_int_equal(r->unwrap->conv, ST_LOGQL_CONV_DURATION);
    assert_string_equal(r->unwrap->label.p, "lat");
    assert_int_equal(r->unwrap->n_post, 1);
    assert_int_equal(r->unwrap->post[0]->kind, ST_LOGQL_LF_STRING);
    assert_true(e->range_agg.grouping.present);
    assert_false(e->range_agg.grouping.without);
    assert_int_equal(e->range_agg.grouping.n, 2);
    assert_string_equal(e->range_agg.grouping.labels[1].p, "y");
    st_logql_free(e);

    /* every order of range, offset, pipeline and unwrap gives the same tree */
    const char *forms[] = {
        "sum_over_time({a=\"b\"} | json | unwrap x [5m] offset 1m)",
        "sum_over_time({a=\"b\"} [5m] offset 1m | json | unwrap x)",
        "sum_over_time(({a=\"b\"} | json | unwrap x) [5m] offset 1m)",
        "sum_over_time(({a=\"b\"} | json | unwrap x [5m] offset 1m))",
    };
    char *first = NULL;
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        e = must_parse(forms[i]);
        char *s = fmt(e);
        if (first == NULL)
            first = s;
        else {
            assert_string_equal(first, s);
            free(s);
        }
        st_logql_free(e);
    }
    assert_string_equal(first, "sum_over_time({a=\"b\"} | json | unwrap x[5m] offset 1m0s)");
    free(first);

    e = must_parse("rate({a=\"b\"}[5m] offset -30s)");
    assert_true(e->range_agg.range.offset_ns == INT64_C(-30000000000));
    assert_null(e->range_agg.range.unwrap);
    assert_false(e->range_agg.grouping.present);
    st_logql_free(e);
}

static void test_vector_agg(void **state)
{
    (void)state;
    st_logql_expr_t *e = must_parse("topk by (a) (3, sum without (b) (rate({a=\"b\"}[1m])))");
    assert_int_equal(e->kind, ST_LOGQL_EXPR_VECTOR_AGG);
    assert_int_equal(e->vec_agg.op, ST_LOGQL_VEC_TOPK);
    assert_true(e->vec_agg.has_param);
    assert_int_equal(e->vec_agg.param, 3);
    assert_true(e->vec_agg.grouping.present);
    assert_false(e->vec_agg.grouping.without);
    assert_string_equal(e->vec_agg.grouping.labels[0].p, "a");
    const st_logql_expr_t *in = e->vec_agg.inner;
    assert_int_equal(in->vec_agg.op, ST_LOGQL_VEC_SUM);
    assert_true(in->vec_agg.grouping.without);
    assert_false(in->vec_agg.has_param);
    assert_int_equal(in->vec_agg.inner->kind, ST_LOGQL_EXPR_RANGE_AGG);
    st_logql_free(e);

    /* grouping after the parentheses is the same grouping */
    e = must_parse("sum(rate({a=\"b\"}[1m])) by (a, b)");
    assert_int_equal(e->vec_agg.grouping.n, 2);
    char *s = fmt(e);
    assert_string_equal(s, "sum by (a,b)(rate({a=\"b\"}[1m]))");
    free(s);
    st_logql_free(e);
    e = must_parse("sum(rate({a=\"b\"}[1m]))");
    assert_false(e->vec_agg.grouping.present);
    st_logql_free(e);
    e = must_parse("sort_desc(sum by (x) (count_over_time({a=\"b\"}[1m])))");
    assert_int_equal(e->vec_agg.op, ST_LOGQL_VEC_SORT_DESC);
    st_logql_free(e);
    e = must_parse("approx_topk(2, rate({a=\"b\"}[1m]))");
    assert_int_equal(e->vec_agg.op, ST_LOGQL_VEC_APPROX_TOPK);
    assert_int_equal(e->vec_agg.param, 2);
    st_logql_free(e);
}

static const char *R = "rate({a=\"b\"}[1m])";

static st_logql_expr_t *parsef(const char *fmtq, ...) __attribute__((format(printf, 1, 2)));
static st_logql_expr_t *parsef(const char *fmtq, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmtq);
    vsnprintf(q, sizeof q, fmtq, ap);
    va_end(ap);
    return must_parse(q);
}

static void test_binop(void **state)
{
    (void)state;
    /* precedence: a + b * c */
    st_logql_expr_t *e = parsef("%s + %s * %s", R, R, R);
    assert_int_equal(e->kind, ST_LOGQL_EXPR_BINOP);
    assert_int_equal(e->binop.op, ST_LOGQL_BIN_ADD);
    assert_int_equal(e->binop.rhs->binop.op, ST_LOGQL_BIN_MUL);
    st_logql_free(e);
    /* left-associative: a - b - c */
    e = parsef("%s - %s - %s", R, R, R);
    assert_int_equal(e->binop.op, ST_LOGQL_BIN_SUB);
    assert_int_equal(e->binop.lhs->kind, ST_LOGQL_EXPR_BINOP);
    assert_int_equal(e->binop.rhs->kind, ST_LOGQL_EXPR_RANGE_AGG);
    st_logql_free(e);
    /* right-associative: a ^ b ^ c */
    e = parsef("%s ^ %s ^ %s", R, R, R);
    assert_int_equal(e->binop.op, ST_LOGQL_BIN_POW);
    assert_int_equal(e->binop.lhs->kind, ST_LOGQL_EXPR_RANGE_AGG);
    assert_int_equal(e->binop.rhs->binop.op, ST_LOGQL_BIN_POW);
    st_logql_free(e);
    /* or < and/unless < comparisons < +- */
    e = parsef("%s or %s and %s > %s + 1", R, R, R, R);
    assert_int_equal(e->binop.op, ST_LOGQL_BIN_OR);
    assert_int_equal(e->binop.rhs->binop.op, ST_LOGQL_BIN_AND);
    assert_int_equal(e->binop.rhs->binop.rhs->binop.op, ST_LOGQL_BIN_GT);
    assert_int_equal(e->binop.rhs->binop.rhs->binop.rhs->binop.op, ST_LOGQL_BIN_ADD);
    st_logql_free(e);
    /* modifiers */
    e = parsef("%s > bool on (a, b) group_left (c) %s", R, R);
    assert_true(e->binop.return_bool);
    assert_true(e->binop.on);
    assert_true(e->binop.has_matching);
    assert_int_equal(e->binop.n_matching, 2);
    assert_string_equal(e->binop.matching[1].p, "b");
    assert_int_equal(e->binop.card, ST_LOGQL_CARD_MANY_TO_ONE);
    assert_int_equal(e->binop.n_include, 1);
    assert_string_equal(e->binop.include[0].p, "c");
    st_logql_free(e);
    e = parsef("%s / ignoring (x) group_right %s", R, R);
    assert_false(e->binop.on);
    assert_int_equal(e->binop.n_matching, 1);
    assert_int_equal(e->binop.card, ST_LOGQL_CARD_ONE_TO_MANY);
    assert_int_equal(e->binop.n_include, 0);
    st_logql_free(e);
    /* a literal with a vector is not folded */
    e = parsef("%s * 2", R);
    assert_int_equal(e->binop.rhs->kind, ST_LOGQL_EXPR_LITERAL);
    assert_true(e->binop.rhs->literal == 2);
    st_logql_free(e);
}

static double fold(const char *q)
{
    st_logql_expr_t *e = must_parse(q);
    assert_int_equal(e->kind, ST_LOGQL_EXPR_LITERAL);
    double v = e->literal;
    st_logql_free(e);
    return v;
}

static void test_folding(void **state)
{
    (void)state;
    assert_true(fold("1 + 2 * 3") == 7);
    assert_true(fold("(1 + 2) * 3") == 9);
    assert_true(fold("2 ^ 3 ^ 2") == 512);
    assert_true(fold("-1 ^ 2") == 1); /* the minus belongs to the literal */
    assert_true(fold("10 - 2 - 3") == 5);
    assert_true(fold("2 > 1") == 1);
    assert_true(fold("2 < bool 1") == 0);
    assert_true(fold("7 % 4") == 3);
    assert_true(isnan(fold("1 / 0")));
    assert_true(isnan(fold("1 % 0")));
    assert_true(fold("- 1") == -1);
    assert_true(fold("+1.5") == 1.5);
    assert_true(fold("0x1p4") == 16);
    assert_true(fold("1_000") == 1000);
    assert_true(fold(".5e1") == 5);
    st_logql_expr_t *e = must_parse("vector(2) + 1");
    assert_int_equal(e->kind, ST_LOGQL_EXPR_BINOP);
    assert_int_equal(e->binop.lhs->kind, ST_LOGQL_EXPR_VECTOR);
    assert_true(e->binop.lhs->vector == 2);
    st_logql_free(e);
}

static void test_label_replace(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("label_replace(sum by (x) (rate({a=\"b\"}[1m])), \"dst\", \"$1\", \"x\", \"(.*)-y\")");
    assert_int_equal(e->kind, ST_LOGQL_EXPR_LABEL_REPLACE);
    assert_string_equal(e->label_replace.dst.p, "dst");
    assert_string_equal(e->label_replace.replacement.p, "$1");
    assert_string_equal(e->label_replace.src.p, "x");
    assert_string_equal(e->label_replace.regex.p, "(.*)-y");
    assert_true(re_match(e->label_replace.re, "a-y"));
    assert_false(re_match(e->label_replace.re, "a-yz"));
    assert_int_equal(e->label_replace.inner->kind, ST_LOGQL_EXPR_VECTOR_AGG);
    st_logql_free(e);
}

/* ---- walk, errors, lexical details ---- */

static int count_cb(const st_logql_selector_t *s, const st_logql_pipeline_t *p, const st_logql_log_range_t *r,
                    void *arg)
{
    int *n = arg;
    if (*n == 0) assert_string_equal(s->v[0].value.p, "one");
    if (*n == 1) {
        assert_string_equal(s->v[0].value.p, "two");
        assert_int_equal(p->n, 1);
        assert_non_null(r);
        assert_true(r->range_ns == INT64_C(120000000000));
    }
    (*n)++;
    return 0;
}

static int log_cb(const st_logql_selector_t *s, const st_logql_pipeline_t *p, const st_logql_log_range_t *r,
                  void *arg)
{
    assert_null(r);
    assert_int_equal(p->n, 1);
    (*(int *)arg)++;
    return s->n == 1 ? 7 : 0;
}

static void test_walk(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("sum(rate({x=\"one\"}[1m])) / label_replace(count_over_time({x=\"two\"} |= \"e\" "
                   "[2m]), \"a\", \"b\", \"c\", \"d\") > vector(1)");
    int n = 0;
    assert_int_equal(st_logql_walk_selectors(e, count_cb, &n), 0);
    assert_int_equal(n, 2);
    st_logql_free(e);
    e = must_parse("{x=\"one\"} | json");
    n = 0;
    assert_int_equal(st_logql_walk_selectors(e, log_cb, &n), 7);
    assert_int_equal(n, 1);
    st_logql_free(e);
}

static void test_error_positions(void **state)
{
    (void)state;
    st_logql_expr_t *e = NULL;
    st_logql_error_t err;
    const char *q = "{app=\"foo\"}\n  | json\n  | x > ";
    assert_int_equal(st_logql_parse_ex(q, strlen(q), &e, &err), ST_EPARSE);
    assert_null(e);
    assert_int_equal(err.line, 3);
    assert_int_equal(err.col, 9);
    assert_string_equal(err.msg, "syntax error: unexpected $end");
    char text[600];
    st_logql_error_text(&err, text, sizeof text);
    assert_string_equal(text, "parse error at line 3, col 9: syntax error: unexpected $end");
    /* a two-character operator was finished with look-ahead: Loki reports line 0 */
    q = "{app=\"foo\"}\n|= \"x\" |= |=";
    assert_int_equal(st_logql_parse_ex(q, strlen(q), &e, &err), ST_EPARSE);
    assert_int_equal(err.line, 0);
    assert_int_equal(err.col, 11);
    /* post-parse checks have no position */
    q = "{a=\"\"}";
    assert_int_equal(st_logql_parse_ex(q, strlen(q), &e, &err), ST_EPARSE);
    assert_int_equal(err.line, 0);
    assert_int_equal(err.col, 0);
    assert_int_equal(st_logql_parse_ex(q, strlen(q), &e, NULL), ST_EPARSE);
    assert_int_equal(st_logql_parse(q, strlen(q), &e, NULL, 0), ST_EPARSE);
    /* comments and newlines */
    e = must_parse("# leading comment\n{app=\"foo\"} # why\n  |= \"x\" # more\n");
    assert_int_equal(e->log.pipeline.n, 1);
    st_logql_free(e);
    expect_error("{app=\"foo\"}\n| unknown_stage",
                 "parse error at line 2, col 16: syntax error: unexpected $end");
    expect_error("{app=\"foo\"\n}\n x", "parse error at line 3, col 2: syntax error: unexpected IDENTIFIER");
    expect_error("\xff", "parse error : invalid UTF-8 encoding");
    expect_error("{app=~\"\xa0\xa1\"}", "parse error at line 1, col 7: invalid UTF-8 encoding");
    expect_error("{app=\"a\0b\"}", NULL);
}

static void test_input_limit(void **state)
{
    (void)state;
    size_t n = ST_LOGQL_MAX_INPUT;
    char *q = malloc(n + 1);
    memset(q, ' ', n);
    memcpy(q, "{app=\"foo\"}", 11);
    q[n] = '\0';
    st_logql_expr_t *e = NULL;
    char err[256];
    assert_int_equal(st_logql_parse(q, n, &e, err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "parse error : input size too long (131072 > 131072)");
    assert_int_equal(st_logql_parse(q, n - 1, &e, err, sizeof err), 0);
    st_logql_free(e);
    free(q);
}

static void test_nesting_limit(void **state)
{
    (void)state;
    /* deeply nested input fails cleanly instead of exhausting the stack */
    size_t depth = 5000;
    char *q = malloc(depth * 2 + 2);
    memset(q, '(', depth);
    q[depth] = '1';
    memset(q + depth + 1, ')', depth);
    q[depth * 2 + 1] = '\0';
    st_logql_expr_t *e = NULL;
    char err[256];
    assert_int_equal(st_logql_parse(q, strlen(q), &e, err, sizeof err), ST_EPARSE);
    free(q);
    /* long flat chains are fine */
    st_buf_t b = ST_BUF_INIT;
    for (int i = 0; i < 500; i++) st_buf_puts(&b, i ? " + vector(1)" : "vector(1)");
    e = must_parse(st_buf_cstr(&b));
    st_logql_free(e);
    st_buf_free(&b);
}

static void test_lexical(void **state)
{
    (void)state;
    /* case-insensitive keywords, contextual function names */
    st_logql_expr_t *e =
        must_parse("SUM BY (a) (Count_Over_Time({a=\"b\"} | LOGFMT | count > 1 | rate=\"x\" [1m]))");
    assert_int_equal(e->vec_agg.op, ST_LOGQL_VEC_SUM);
    const st_logql_pipeline_t *p = &e->vec_agg.inner->range_agg.range.pipeline;
    assert_string_equal(p->v[1].label_filter->num.name.p, "count");
    assert_string_equal(p->v[2].label_filter->str.name.p, "rate");
    st_logql_free(e);
    /* durations and bytes in the lexer */
    int64_t ns;
    assert_int_equal(st_logql_parse_duration(st_cstr("1h30m"), &ns), 0);
    assert_true(ns == INT64_C(5400000000000));
    assert_int_equal(st_logql_parse_duration(st_cstr("1.5h"), &ns), 0);
    assert_true(ns == INT64_C(5400000000000));
    assert_int_equal(st_logql_parse_duration(st_cstr("2d"), &ns), 0);
    assert_true(ns == INT64_C(172800000000000));
    assert_int_equal(st_logql_parse_duration(st_cstr("300us"), &ns), 0);
    assert_true(ns == 300000);
    assert_int_equal(st_logql_parse_duration(st_cstr("-5m"), &ns), 0);
    assert_true(ns == INT64_C(-300000000000));
    assert_int_equal(st_logql_parse_duration(st_cstr("5x"), &ns), ST_EPARSE);
    uint64_t by;
    assert_int_equal(st_logql_parse_bytes(st_cstr("20MB"), &by), 0);
    assert_true(by == 20000000);
    assert_int_equal(st_logql_parse_bytes(st_cstr("1.5KiB"), &by), 0);
    assert_true(by == 1536);
    assert_int_equal(st_logql_parse_bytes(st_cstr("5 GiB"), &by), 0);
    assert_true(by == UINT64_C(5368709120));
    assert_int_equal(st_logql_parse_bytes(st_cstr("5XB"), &by), ST_EPARSE);
    /* backquoted strings keep backslashes */
    e = must_parse("{a=`x\\y`} |= `\"q\"`");
    assert_string_equal(e->log.selector.v[0].value.p, "x\\y");
    assert_string_equal(e->log.pipeline.v[0].line.alts[0].value.p, "\"q\"");
    st_logql_free(e);
    /* names of operators */
    assert_string_equal(st_logql_range_op_name(ST_LOGQL_RANGE_ABSENT_OVER_TIME), "absent_over_time");
    assert_string_equal(st_logql_vec_op_name(ST_LOGQL_VEC_APPROX_TOPK), "approx_topk");
    assert_string_equal(st_logql_binop_name(ST_LOGQL_BIN_UNLESS), "unless");
    assert_string_equal(st_logql_line_op_name(ST_LOGQL_LINE_NOT_PATTERN), "!>");
    assert_string_equal(st_logql_cmp_name(ST_LOGQL_CMP_LTE), "<=");
}

static void test_pretty(void **state)
{
    (void)state;
    st_logql_expr_t *e =
        must_parse("sum by (namespace, pod) (rate({app=\"loki\", namespace=\"prod\"} |= \"error\" != "
                   "\"timeout\" | json | level=\"error\" | line_format \"{{.msg}}\" [5m])) / 100");
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_logql_format_pretty(e, &b), 0);
    const char *want = "  sum by (namespace, pod)(\n"
                       "    rate(\n"
                       "      {app=\"loki\", namespace=\"prod\"}\n"
                       "        |= \"error\" != \"timeout\"\n"
                       "        | json\n"
                       "        | level=\"error\"\n"
                       "        | line_format \"{{.msg}}\" [5m]\n"
                       "    )\n"
                       "  )\n"
                       "/\n"
                       "  100";
    assert_string_equal(st_buf_cstr(&b), want);
    st_buf_free(&b);
    st_logql_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus),          cmocka_unit_test(test_selector),
        cmocka_unit_test(test_line_filters),    cmocka_unit_test(test_parser_stages),
        cmocka_unit_test(test_label_filters),   cmocka_unit_test(test_format_stages),
        cmocka_unit_test(test_range_agg),       cmocka_unit_test(test_vector_agg),
        cmocka_unit_test(test_binop),           cmocka_unit_test(test_folding),
        cmocka_unit_test(test_label_replace),   cmocka_unit_test(test_walk),
        cmocka_unit_test(test_error_positions), cmocka_unit_test(test_input_limit),
        cmocka_unit_test(test_nesting_limit),   cmocka_unit_test(test_lexical),
        cmocka_unit_test(test_pretty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
