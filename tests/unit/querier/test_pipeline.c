/* test_pipeline.c: the compiled LogQL pipeline against hand-written expectations: every parser and
 * its edge cases (json, logfmt, regexp, pattern, unpack), label-name sanitising and `_extracted`,
 * label filters (precedence, types, conversion errors), __error__ semantics, line_format and
 * label_format, drop/keep, decolorize, stage reordering, unwrap conversions and result categories. */
#include "testutil.h"

#include "common/err.h"
#include "common/hash.h"
#include "querier/querier_int.h"

typedef struct {
    bool keep;
    char labels[4096];
    char line[4096];
    char cats[128]; /* one char per label: s(tream) m(etadata) p(arsed) */
    bool has_value;
    double value;
} res_t;

/* Parses q (a log query, or a metric query whose first range aggregation supplies pipeline and
 * unwrap) and compiles its pipeline; fails the test on errors. */
static st_pipeline_t *compile(const char *q, st_logql_expr_t **ep)
{
    st_logql_expr_t *e = NULL;
    char err[512];
    if (st_logql_parse(q, strlen(q), &e, err, sizeof err) != 0) fail_msg("parse %s: %s", q, err);
    const st_logql_pipeline_t *pl;
    const st_logql_unwrap_t *u = NULL;
    const st_logql_expr_t *x = e;
    while (x->kind == ST_LOGQL_EXPR_VECTOR_AGG) x = x->vec_agg.inner;
    if (x->kind == ST_LOGQL_EXPR_RANGE_AGG) {
        pl = &x->range_agg.range.pipeline;
        u = x->range_agg.range.unwrap;
    } else {
        pl = &e->log.pipeline;
    }
    st_pipeline_t *p;
    char perr[256];
    int rc = st_pipeline_compile(pl, u, &p, perr);
    if (rc != 0) fail_msg("compile %s: %s", q, perr);
    *ep = e;
    return p;
}

/* md: "name=value,name=value" (no escapes). */
static void run_p(st_pipeline_t *p, const char *stream, const char *md, int64_t ts, const char *line,
                  res_t *r)
{
    st_labels_t sl;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(stream), &sl, err), 0);
    st_buf_t mdb = ST_BUF_INIT;
    if (md && *md) {
        st_str_t names[16], values[16];
        size_t n = 0;
        char *copy = strdup(md), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t && n < 16; t = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(t, '=');
            names[n] = st_str(t, (size_t)(eq - t));
            values[n] = st_cstr(eq + 1);
            n++;
        }
        assert_int_equal(st_md_encode(&mdb, names, values, n), 0);
        free(copy);
    }
    st_pipeline_result_t out;
    assert_int_equal(st_pipeline_run(p, ts, st_cstr(line), &sl, st_str(mdb.data, mdb.len), &out), 0);
    memset(r, 0, sizeof *r);
    r->keep = out.keep;
    if (out.keep) {
        st_buf_t b = ST_BUF_INIT;
        assert_int_equal(st_labels_format(out.labels, &b), 0);
        snprintf(r->labels, sizeof r->labels, "%s", st_buf_cstr(&b));
        /* the hash is st_hash64 of the canonical text */
        assert_true(out.hash == st_hash64(b.data, b.len));
        st_buf_free(&b);
        snprintf(r->line, sizeof r->line, "%.*s", (int)out.line.n, out.line.p);
        for (size_t i = 0; i < out.labels->n && i < sizeof r->cats - 1; i++) r->cats[i] = "smp"[out.cats[i]];
        r->has_value = out.has_value;
        r->value = out.value;
        assert_int_equal(out.has_error, strstr(r->labels, "__error__=") != NULL);
    }
    st_buf_free(&mdb);
    st_labels_free(&sl);
}

static res_t run_md(const char *q, const char *stream, const char *md, const char *line)
{
    st_logql_expr_t *e;
    st_pipeline_t *p = compile(q, &e);
    res_t r;
    run_p(p, stream, md, 1656331200000000000LL, line, &r);
    /* a clone behaves the same */
    st_pipeline_t *c;
    assert_int_equal(st_pipeline_clone(p, &c), 0);
    res_t r2;
    run_p(c, stream, md, 1656331200000000000LL, line, &r2);
    assert_int_equal(r.keep, r2.keep);
    assert_string_equal(r.labels, r2.labels);
    assert_string_equal(r.line, r2.line);
    st_pipeline_free(c);
    st_pipeline_free(p);
    st_logql_free(e);
    return r;
}

static res_t run(const char *q, const char *stream, const char *line)
{
    return run_md(q, stream, NULL, line);
}

#define EXPECT(Q, STREAM, LN, WANT)                                                                          \
    do {                                                                                                     \
        res_t r_ = run(Q, STREAM, LN);                                                                       \
        if (!r_.keep) fail_msg("%s on %s: dropped, want %s", Q, LN, WANT);                                   \
        if (strcmp(r_.labels, WANT) != 0) fail_msg("%s on %s:\n got  %s\n want %s", Q, LN, r_.labels, WANT); \
    } while (0)

#define DROPPED(Q, STREAM, LN)                                                                               \
    do {                                                                                                     \
        res_t r_ = run(Q, STREAM, LN);                                                                       \
        if (r_.keep) fail_msg("%s on %s: kept with %s", Q, LN, r_.labels);                                   \
    } while (0)

#define LINE(Q, STREAM, LN, WANT)                                                                            \
    do {                                                                                                     \
        res_t r_ = run(Q, STREAM, LN);                                                                       \
        if (!r_.keep) fail_msg("%s on %s: dropped", Q, LN);                                                  \
        if (strcmp(r_.line, WANT) != 0)                                                                      \
            fail_msg("%s on %s:\n got line  %s\n want line %s", Q, LN, r_.line, WANT);                       \
    } while (0)

static const char *S = "{app=\"api\"}";

/* ---- json ------------------------------------------------------------------------------------------ */

static void test_json_flat(void **state)
{
    (void)state;
    EXPECT(
        "{app=\"api\"} | json", S,
        "{\"level\":\"info\",\"ns\":\"prod\",\"pod\":{\"uuid\":\"foo\",\"deployment\":{\"ref\":\"foobar\"}}}",
        "{app=\"api\", level=\"info\", ns=\"prod\", pod_deployment_ref=\"foobar\", pod_uuid=\"foo\"}");
    /* non-strings keep their raw JSON text, null and arrays are skipped */
    EXPECT("{app=\"api\"} | json", S,
           "{\"counter\":1, \"price\": {\"_net_\":5.56909}, \"ok\":true, \"no\":false, \"n\":null, "
           "\"tags\":[\"a\",{\"b\":1}], \"e\":-1.5e3}",
           "{app=\"api\", counter=\"1\", e=\"-1.5e3\", no=\"false\", ok=\"true\", price__net_=\"5.56909\"}");
    /* stream label collisions get _extracted, nested too */
    EXPECT("{app=\"api\"} | json", "{app=\"api\", pod_uuid=\"x\"}",
           "{\"app\":\"bar\",\"pod\":{\"uuid\":\"y\"}}",
           "{app=\"api\", app_extracted=\"bar\", pod_uuid=\"x\", pod_uuid_extracted=\"y\"}");
    /* sanitising: bad bytes become _, leading digit gets _, spaces are trimmed, blank keys vanish */
    EXPECT("{app=\"api\"} | json", S,
           "{\"cou-nter\":1,\"1st\":\"a\",\" padded "
           "\":\"b\",\"a.b\":{\"c\":\"d\"},\"\xc3\xa9t\xc3\xa9\":\"e\",\" "
           "\":{\"foo\":\"bar\"},\"x\":{\"1y\":\"z\"}}",
           "{_1st=\"a\", _t_=\"e\", a_b_c=\"d\", app=\"api\", cou_nter=\"1\", foo=\"bar\", padded=\"b\", "
           "x_1y=\"z\"}");
    /* escapes are decoded; U+FFFD and invalid bytes become spaces */
    EXPECT("{app=\"api\"} | json", S,
           "{\"foo\":\"foo\\\\\\\"bar\",\"u\":\"\\u00e9\\n\",\"bad\":\"a\xff\xef\xbf\xbd"
           "b\"}",
           "{app=\"api\", bad=\"a  b\", foo=\"foo\\\\\\\"bar\", u=\"\xc3\xa9\\n\"}");
    /* the first value of a repeated key wins */
    EXPECT("{app=\"api\"} | json", S, "{\"name\":\"first\",\"name\":\"second\"}",
           "{app=\"api\", name=\"first\"}");
    /* trailing text after the object is ignored, as jsonparser does */
    EXPECT("{app=\"api\"} | json", S, "{\"foo\":{\"cou-nter\":1}}\"", "{app=\"api\", foo_cou_nter=\"1\"}");
    /* errors never drop the line */
    EXPECT("{app=\"api\"} | json", S, "{n}",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json", S, "plain text",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json", S, "",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json", S, "{\"a\":\"b\"",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value is array, but can't find closing ']' "
           "symbol\", a=\"b\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json", S, "{\"a\":\"b",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value is string, but can't find closing '\\\"' "
           "symbol\", app=\"api\"}");
    /* structured metadata collisions */
    res_t r = run_md("{app=\"api\"} | json", S, "pod=pod_sm",
                     "{\"app\":\"foo\",\"ns\":\"prod\",\"pod\":\"pod_parsed\"}");
    assert_string_equal(
        r.labels,
        "{app=\"api\", app_extracted=\"foo\", ns=\"prod\", pod=\"pod_sm\", pod_extracted=\"pod_parsed\"}");
    assert_string_equal(r.cats, "sppmp");
}

static void test_json_params(void **state)
{
    (void)state;
    const char *line =
        "{\"app\":\"foo\",\"pod\":{\"uuid\":\"u1\",\"deployment\":{\"ref\":\"r\",\"params\":[1,2,\"x\"]}},"
        "\"list\":[{\"a\":1},{\"a\":\"two\"}],\"n\":null,\"b\":false,\"esc\":\"x\\ty\"}";
    EXPECT("{app=\"api\"} | json first=\"pod.uuid\", ref=\"pod.deployment.ref\", "
           "p1=\"pod.deployment.params[1]\"",
           S, line, "{app=\"api\", first=\"u1\", p1=\"2\", ref=\"r\"}");
    EXPECT("{app=\"api\"} | json obj=\"pod.deployment\", arr=\"pod.deployment.params\"", S, line,
           "{app=\"api\", arr=\"[1,2,\\\"x\\\"]\", "
           "obj=\"{\\\"ref\\\":\\\"r\\\",\\\"params\\\":[1,2,\\\"x\\\"]}\"}");
    EXPECT("{app=\"api\"} | json second=\"list[1].a\", b, n, esc", S, line,
           "{app=\"api\", b=\"false\", esc=\"x\\ty\", n=\"\", second=\"two\"}");
    EXPECT("{app=\"api\"} | json k=`[\"pod\"][\"uuid\"]`", S, line, "{app=\"api\", k=\"u1\"}");
    /* missing paths give empty labels; an existing stream label is not overwritten */
    EXPECT("{app=\"api\"} | json nope=\"pod.nope\", app", S, line,
           "{app=\"api\", app_extracted=\"foo\", nope=\"\"}");
    EXPECT("{app=\"api\"} | json uuid=\"will.not.work\"", S, "{}", "{app=\"api\", uuid=\"\"}");
    /* a line that cannot start JSON is an error without details; an empty line is left alone */
    EXPECT("{app=\"api\"} | json uuid=\"a\"", S, "invalid json",
           "{__error__=\"JSONParserErr\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json uuid=\"a\"", S, "", "{app=\"api\"}");
    /* duplicate keys: the first value */
    EXPECT("{app=\"api\"} | json x=\"app\"", S, "{\"app\":\"foo\",\"app\":\"dup\"}",
           "{app=\"api\", x=\"foo\"}");
}

/* ---- logfmt -------------------------------------------------------------------------------------- */

static void test_logfmt(void **state)
{
    (void)state;
    EXPECT("{app=\"api\"} | logfmt", S,
           "level=error ts=2024-01-01T00:00:00Z msg=\"connection refused\" took=12ms empty= alone",
           "{app=\"api\", level=\"error\", msg=\"connection refused\", took=\"12ms\", "
           "ts=\"2024-01-01T00:00:00Z\"}");
    /* escapes in quoted values, literal control characters, invalid runes */
    EXPECT("{app=\"api\"} | logfmt", S,
           "a=\"foo\\nbar\\tbaz\" b=\"x\\\\y\" c=\"\\u00e9\" d=\xef\xbf\xbd"
           "f",
           "{a=\"foo\\nbar\\tbaz\", app=\"api\", b=\"x\\\\y\", c=\"\xc3\xa9\", d=\" f\"}");
    /* the first of repeated keys wins; collisions with stream labels and metadata */
    EXPECT("{app=\"api\"} | logfmt", S, "foo=1 foo=2 app=web",
           "{app=\"api\", app_extracted=\"web\", foo=\"1\"}");
    res_t r = run_md("{app=\"api\"} | logfmt", S, "level=md", "level=error x=1");
    assert_string_equal(r.labels, "{app=\"api\", level=\"md\", level_extracted=\"error\", x=\"1\"}");
    /* invalid names are sanitised */
    EXPECT("{app=\"api\"} | logfmt", S, "foo.bar=10ms test-dash=foo 9lives=yes",
           "{_9lives=\"yes\", app=\"api\", foo_bar=\"10ms\", test_dash=\"foo\"}");
    /* malformed pairs are skipped without --strict */
    EXPECT("{app=\"api\"} | logfmt", S, "foo=\"bar baz\" =notkey bar=10ms",
           "{app=\"api\", bar=\"10ms\", foo=\"bar baz\"}");
    EXPECT("{app=\"api\"} | logfmt", S, "bar=bu=zz foo=\"bar\"", "{app=\"api\", foo=\"bar\"}");
    EXPECT("{app=\"api\"} | logfmt", S, "foobar====wqe=sdad1r", "{app=\"api\"}");
    /* --strict stops at the first malformed pair with Loki's message */
    EXPECT("{app=\"api\"} | logfmt --strict", S, "foobar====wqe=sdad1r",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 8 : unexpected "
           "'='\", app=\"api\"}");
    EXPECT("{app=\"api\"} | logfmt --strict", S, "foo=\"foo bar\" =notkey bar=10ms",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 15 : unexpected "
           "'='\", app=\"api\", foo=\"foo bar\"}");
    EXPECT("{app=\"api\"} | logfmt --strict", S, "foo=\"foo bar\" bu\"zz=10ms",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 17 : unexpected "
           "'\\\"'\", app=\"api\", foo=\"foo bar\"}");
    EXPECT("{app=\"api\"} | logfmt --strict", S, "bar=bu=zz foo=\"foo bar\"",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 7 : unexpected "
           "'='\", app=\"api\"}");
    EXPECT("{app=\"api\"} | logfmt --strict", S, "foo=\"foo bar\" b\xef\xbf\xbdr=10ms",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 20 : invalid "
           "key\", app=\"api\", foo=\"foo bar\"}");
    EXPECT("{app=\"api\"} | logfmt --strict", S, "a=\"unterminated",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 16 : unterminated "
           "quoted value\", app=\"api\"}");
    /* --keep-empty keeps standalone keys and empty values */
    EXPECT("{app=\"api\"} | logfmt --keep-empty", S,
           "buzz bar=foo e=", "{app=\"api\", bar=\"foo\", buzz=\"\", e=\"\"}");
    EXPECT("{app=\"api\"} | logfmt --strict --keep-empty", S, "buzz bar=foo",
           "{app=\"api\", bar=\"foo\", buzz=\"\"}");
}

static void test_logfmt_params(void **state)
{
    (void)state;
    const char *line = "level=debug app=foo msg=\"hi there\" lvl=x";
    EXPECT("{app=\"api\"} | logfmt msg", S, line, "{app=\"api\", msg=\"hi there\"}");
    /* a listed key that is absent is still set (empty); renames */
    EXPECT("{app=\"api\"} | logfmt severity=\"level\", missing", S, "level=warn",
           "{app=\"api\", missing=\"\", severity=\"warn\"}");
    EXPECT("{app=\"api\"} | logfmt app", S, line, "{app=\"api\", app_extracted=\"foo\"}");
    EXPECT("{app=\"api\"} | logfmt --strict a", S, "a=1 =x",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 5 : unexpected "
           "'='\", a=\"1\", app=\"api\"}");
}

/* ---- regexp, pattern, unpack ----------------------------------------------------------------------- */

static void test_regexp_pattern(void **state)
{
    (void)state;
    EXPECT("{app=\"api\"} | regexp \"status=(?P<status>\\\\w+),latency=(?P<latency>\\\\w+)(ms|ns)\"", S,
           "status=200,latency=500ms", "{app=\"api\", latency=\"500\", status=\"200\"}");
    EXPECT("{app=\"api\"} | regexp \"(?P<foo>foo|bar)buzz\"", S, "blah", "{app=\"api\"}");
    EXPECT("{app=\"api\"} | regexp \"(?P<app>.*)buzz\"", S, "matchebuzz barbuzz",
           "{app=\"api\", app_extracted=\"matchebuzz bar\"}");
    EXPECT("{app=\"api\"} | regexp \"(?P<a>x)|(?P<b>y)\"", S, "y", "{a=\"\", app=\"api\", b=\"y\"}");

    const char *nginx =
        "10.1.0.88 - - [14/Dec/2020:22:56:24 +0000] \"GET /static/img/a.jpg HTTP/1.1\" 200 60755";
    EXPECT("{app=\"api\"} | pattern \"<ip> - - [<ts>] \\\"<method> <path> <_>\\\" <status> <size>\"", S,
           nginx,
           "{app=\"api\", ip=\"10.1.0.88\", method=\"GET\", path=\"/static/img/a.jpg\", size=\"60755\", "
           "status=\"200\", ts=\"14/Dec/2020:22:56:24 +0000\"}");
    /* a leading literal anchors the match */
    EXPECT("{app=\"api\"} | pattern \"GET <path> \"", S, nginx, "{app=\"api\"}");
    /* a missing literal makes the capture take the rest of the line, and parsing stops */
    EXPECT("{app=\"api\"} | pattern \"<a> | <b> | <c>\"", S, "x | y and more",
           "{a=\"x\", app=\"api\", b=\"y and more\"}");
    EXPECT("{app=\"api\"} | pattern \"<_> user=<user> \"", S, "login user=bob ok",
           "{app=\"api\", user=\"bob\"}");
    EXPECT("{app=\"api\"} | pattern \"<app> <x>\"", S, "a b", "{app=\"api\", app_extracted=\"a\", x=\"b\"}");
}

static void test_unpack(void **state)
{
    (void)state;
    res_t r = run("{app=\"api\"} | unpack", "{app=\"bar\", cluster=\"c1\"}",
                  "{\"bar\":1,\"app\":\"foo\",\"ns\":\"prod\",\"_entry\":\"some "
                  "message\",\"pod\":{\"uid\":\"1\"},\"foo.bar\":\"10ms\"}");
    assert_true(r.keep);
    assert_string_equal(
        r.labels, "{app=\"bar\", app_extracted=\"foo\", cluster=\"c1\", foo_bar=\"10ms\", ns=\"prod\"}");
    assert_string_equal(r.line, "some message");
    /* without a packed entry nothing changes (Loki) */
    r = run("{app=\"api\"} | unpack", S, "{\"a\":\"b\"}");
    assert_string_equal(r.labels, "{app=\"api\"}");
    assert_string_equal(r.line, "{\"a\":\"b\"}");
    EXPECT("{app=\"api\"} | unpack", S, "[\"foo\"]",
           "{__error__=\"JSONParserErr\", __error_details__=\"expecting json object(6), but it is not\", "
           "app=\"api\"}");
    EXPECT("{app=\"api\"} | unpack", S, "", "{app=\"api\"}");
    /* line filters after unpack see the unpacked line */
    LINE("{app=\"api\"} | unpack |= \"hello\"", S, "{\"_entry\":\"hello \\\"world\\\"\"}", "hello \"world\"");
    DROPPED("{app=\"api\"} | unpack |= \"_entry\"", S, "{\"_entry\":\"hello\"}");
}

/* ---- label filters ------------------------------------------------------------------------------ */

static void test_label_filters(void **state)
{
    (void)state;
    const char *l = "status=500 latency=250ms size=2KB ratio=0.5 name=web-1 addr=10.0.0.7";
    EXPECT("{app=\"api\"} | logfmt | status >= 500", S, l,
           "{addr=\"10.0.0.7\", app=\"api\", latency=\"250ms\", name=\"web-1\", ratio=\"0.5\", size=\"2KB\", "
           "status=\"500\"}");
    DROPPED("{app=\"api\"} | logfmt | status < 500", S, l);
    DROPPED("{app=\"api\"} | logfmt | status != 500", S, l);
    DROPPED("{app=\"api\"} | logfmt | status == 400", S, l);
    assert_true(run("{app=\"api\"} | logfmt | ratio > 0.25, ratio <= 0.5", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | latency > 200ms", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | latency > 1s", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | latency == 250ms", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | size > 1KB and size < 3KB", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | size == 2000B", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | size >= 1KiB and size > 2KiB", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | name =~ \"web-[0-9]+\"", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | name =~ \"web\"", S, l).keep); /* anchored */
    assert_true(run("{app=\"api\"} | logfmt | name !~ \"db.*\"", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | addr = ip(\"10.0.0.0/24\")", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | addr != ip(\"10.0.0.0/24\")", S, l).keep);
    /* a missing label: "" for strings, dropped for numbers */
    assert_true(run("{app=\"api\"} | logfmt | nope = \"\"", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | nope > 1", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | nope < 1", S, l).keep);
    /* AND binds tighter than OR: a or (b and c) */
    assert_true(run("{app=\"api\"} | logfmt | status=500 or status=1 and name=\"x\"", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | (status=500 or status=1) and name=\"x\"", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | name=\"x\" and status=1 or ratio=0.5", S, l).keep);
    assert_false(run("{app=\"api\"} | logfmt | name=\"x\" and (status=1 or ratio=0.5)", S, l).keep);
    assert_true(run("{app=\"api\"} | logfmt | name=\"x\" or status=1 or ratio=0.5", S, l).keep);
    /* a new stage is another AND */
    assert_false(run("{app=\"api\"} | logfmt | status=500 or ratio=0.5 | name=\"x\"", S, l).keep);
}

static void test_errors(void **state)
{
    (void)state;
    /* conversion failures keep the line and record LabelFilterErr with Go's message */
    EXPECT("{app=\"api\"} | logfmt | level > 1", S, "level=error",
           "{__error__=\"LabelFilterErr\", __error_details__=\"strconv.ParseFloat: parsing \\\"error\\\": "
           "invalid syntax\", app=\"api\", level=\"error\"}");
    EXPECT("{app=\"api\"} | logfmt | d > 1s", S, "d=fast",
           "{__error__=\"LabelFilterErr\", __error_details__=\"time: invalid duration \\\"fast\\\"\", "
           "app=\"api\", d=\"fast\"}");
    EXPECT("{app=\"api\"} | logfmt | d > 1s", S, "d=10",
           "{__error__=\"LabelFilterErr\", __error_details__=\"time: missing unit in duration \\\"10\\\"\", "
           "app=\"api\", d=\"10\"}");
    EXPECT("{app=\"api\"} | logfmt | d > 1s", S, "d=10x",
           "{__error__=\"LabelFilterErr\", __error_details__=\"time: unknown unit \\\"x\\\" in duration "
           "\\\"10x\\\"\", app=\"api\", d=\"10x\"}");
    EXPECT("{app=\"api\"} | logfmt | b > 1KB", S, "b=12parsecs",
           "{__error__=\"LabelFilterErr\", __error_details__=\"unhandled size name: parsecs\", app=\"api\", "
           "b=\"12parsecs\"}");
    EXPECT("{app=\"api\"} | logfmt | b > 1KB", S, "b=lots",
           "{__error__=\"LabelFilterErr\", __error_details__=\"strconv.ParseFloat: parsing \\\"\\\": invalid "
           "syntax\", app=\"api\", b=\"lots\"}");
    /* the first error wins over later label filter errors */
    EXPECT("{app=\"api\"} | logfmt | json | level > 1", S, "level=error",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\", app=\"api\", level=\"error\"}");
    /* a label a parser did not produce fails a numeric filter, errors or not */
    DROPPED("{app=\"api\"} | json | level > 1", S, "level=error");
    /* only string matchers see __error__ */
    DROPPED("{app=\"api\"} | json | __error__=\"\"", S, "not json");
    assert_true(run("{app=\"api\"} | json | __error__=\"\"", S, "{\"a\":1}").keep);
    assert_true(run("{app=\"api\"} | json | __error__=\"JSONParserErr\"", S, "x").keep);
    assert_true(run("{app=\"api\"} | json | __error__=~\"JSON.*\"", S, "x").keep);
    DROPPED("{app=\"api\"} | json | __error__ > 1", S, "x");
    /* drop and keep handle the error labels */
    EXPECT("{app=\"api\"} | json | drop __error__, __error_details__", S, "x", "{app=\"api\"}");
    EXPECT("{app=\"api\"} | json | drop __error__=\"LogfmtParserErr\"", S, "x",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\", app=\"api\"}");
    EXPECT("{app=\"api\"} | json | keep nothing", S, "x",
           "{__error__=\"JSONParserErr\", __error_details__=\"Value looks like object, but can't find "
           "closing '}' symbol\"}");
    /* a later parser error replaces an earlier one */
    EXPECT("{app=\"api\"} | json | logfmt --strict", S, "a==b",
           "{__error__=\"LogfmtParserErr\", __error_details__=\"logfmt syntax error at pos 3 : unexpected "
           "'='\", app=\"api\"}");
}

/* ---- formatting --------------------------------------------------------------------------------- */

static void test_line_format(void **state)
{
    (void)state;
    LINE("{app=\"api\"} | logfmt | line_format \"{{.msg}}\"", S, "msg=hello level=info", "hello");
    LINE("{app=\"api\"} | logfmt | line_format \"{{.missing}}\"", S, "msg=hello", "");
    LINE("{app=\"api\"} | logfmt | line_format \"{{.level | ToUpper}}: {{.msg}} ({{ __line__ | len }} "
         "bytes)\"",
         S, "msg=hello level=info", "INFO: hello (20 bytes)");
    LINE("{app=\"api\"} | line_format \"{{ __timestamp__ | date \\\"2006-01-02 15:04\\\" }} {{.app}}\"", S,
         "x", "2022-06-27 12:00 api");
    LINE("{app=\"api\"} | logfmt | line_format \"{{ if eq .level \\\"error\\\" }}E{{ else if eq .level "
         "\\\"info\\\" }}I{{ else }}?{{ end }}\"",
         S, "level=info", "I");
    /* a template error keeps the line and sets TemplateFormatErr */
    res_t r = run("{app=\"api\"} | logfmt | line_format \"{{ div .a 0 }}\"", S, "a=1");
    assert_string_equal(r.line, "a=1");
    assert_string_equal(
        r.labels,
        "{__error__=\"TemplateFormatErr\", __error_details__=\"template: line:1:3: executing \\\"line\\\" at "
        "<div .a 0>: error calling div: runtime error: integer divide by zero\", a=\"1\", app=\"api\"}");
    /* line filters after line_format see the new line; before it, the old one */
    assert_true(run("{app=\"api\"} | logfmt | line_format \"{{.msg}}\" |= \"hello\"", S, "msg=hello").keep);
    assert_false(run("{app=\"api\"} | logfmt | line_format \"{{.msg}}\" |= \"msg\"", S, "msg=hello").keep);
    /* the template map holds the error labels (the {{.x}} fast path does not: Loki reads labels only) */
    LINE("{app=\"api\"} | json | line_format \"{{.__error__}} \"", S, "x", "JSONParserErr ");
    LINE("{app=\"api\"} | json | line_format \"{{.__error__}}\"", S, "x", "");
    /* bad templates fail compilation with Loki's message */
    st_logql_expr_t *e;
    const char *q = "{app=\"api\"} | line_format \"{{ nope }}\"";
    char perr[512];
    assert_int_equal(st_logql_parse(q, strlen(q), &e, perr, sizeof perr), 0);
    st_pipeline_t *p;
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, perr), ST_EPARSE);
    assert_string_equal(perr, "invalid line template: template: line:1: function \"nope\" not defined");
    st_logql_free(e);
    q = "{app=\"api\"} | label_format x=\"{{ .a \"";
    assert_int_equal(st_logql_parse(q, strlen(q), &e, perr, sizeof perr), 0);
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, perr), ST_EPARSE);
    assert_string_equal(perr, "invalid template for label 'x': template: label:1: unclosed action");
    st_logql_free(e);
}

static void test_label_format(void **state)
{
    (void)state;
    const char *stream = "{app=\"api\", foo=\"blip\", bar=\"blop\"}";
    EXPECT("{app=\"api\"} | label_format baz=foo", stream, "x", "{app=\"api\", bar=\"blop\", baz=\"blip\"}");
    EXPECT("{app=\"api\"} | label_format bar=foo", stream, "x", "{app=\"api\", bar=\"blip\"}");
    EXPECT("{app=\"api\"} | label_format foo=\"{{.foo}} and {{.bar}}\"", stream, "x",
           "{app=\"api\", bar=\"blop\", foo=\"blip and blop\"}");
    /* templates of one stage see the labels as they were when the stage reached its first template */
    EXPECT("{app=\"api\"} | label_format blip=\"{{.foo}} and {{.bar}}\", bar=foo", stream, "x",
           "{app=\"api\", bar=\"blip\", blip=\"blip and blop\"}");
    EXPECT("{app=\"api\"} | label_format a=\"{{.foo}}\", b=\"[{{.a}}]\"", stream, "x",
           "{a=\"blip\", app=\"api\", b=\"[]\", bar=\"blop\", foo=\"blip\"}");
    EXPECT("{app=\"api\"} | label_format a=\"{{.foo}}\" | label_format b=\"[{{.a}}]\"", stream, "x",
           "{a=\"blip\", app=\"api\", b=\"[blip]\", bar=\"blop\", foo=\"blip\"}");
    EXPECT("{app=\"api\"} | label_format status=\"{{div .status 100}}\"", "{app=\"api\", status=\"200\"}",
           "x", "{app=\"api\", status=\"2\"}");
    EXPECT("{app=\"api\"} | label_format bar=\"{{replace \\\"test\\\" .foo}}\"", stream, "x",
           "{__error__=\"TemplateFormatErr\", __error_details__=\"template: label:1:2: executing "
           "\\\"label\\\" at <replace>: wrong number of args for replace: want 3 got 2\", app=\"api\", "
           "bar=\"blop\", foo=\"blip\"}");
    EXPECT("{app=\"api\"} | label_format line=\"{{ __line__ }}\"", S, "test line",
           "{app=\"api\", line=\"test line\"}");
    /* renaming a missing label does nothing; the label is parsed afterwards (categories) */
    res_t r = run("{app=\"api\"} | label_format x=nope, app2=app", S, "l");
    assert_string_equal(r.labels, "{app2=\"api\"}");
    assert_string_equal(r.cats, "p");
}

static void test_drop_keep_decolorize(void **state)
{
    (void)state;
    const char *line = "level=info method=GET status=200 path=/x";
    EXPECT("{app=\"api\"} | logfmt | drop method, path", S, line,
           "{app=\"api\", level=\"info\", status=\"200\"}");
    EXPECT("{app=\"api\"} | logfmt | drop level=\"info\", status=\"500\"", S, line,
           "{app=\"api\", method=\"GET\", path=\"/x\", status=\"200\"}");
    EXPECT("{app=\"api\"} | logfmt | drop app", S, line,
           "{level=\"info\", method=\"GET\", path=\"/x\", status=\"200\"}");
    EXPECT("{app=\"api\"} | logfmt | keep level, app", S, line, "{app=\"api\", level=\"info\"}");
    EXPECT("{app=\"api\"} | logfmt | keep level=\"error\", status", S, line, "{status=\"200\"}");
    EXPECT("{app=\"api\"} | logfmt | keep method=~\"G.*\"", S, line, "{method=\"GET\"}");
    /* dropped stream labels still rename extracted ones */
    EXPECT("{app=\"api\"} | drop app | logfmt", S, "app=x", "{app_extracted=\"x\"}");
    LINE("{app=\"api\"} | decolorize", S,
         "\x1b[31mred\x1b[0m and \x1b[1;32mbold green\x1b[0m\x1b]0;title\x07!", "red and bold green!");
    LINE("{app=\"api\"} | decolorize", S, "plain", "plain");
}

static void test_unwrap(void **state)
{
    (void)state;
    st_logql_expr_t *e;
    st_pipeline_t *p = compile("sum_over_time({app=\"api\"} | logfmt | unwrap latency [1m])", &e);
    assert_false(st_pipeline_line_only(p));
    res_t r;
    run_p(p, S, NULL, 0, "latency=1.5 code=200", &r);
    assert_true(r.keep && r.has_value);
    assert_true(r.value == 1.5);
    assert_string_equal(r.labels, "{app=\"api\", code=\"200\"}"); /* the unwrapped label is left out */
    run_p(p, S, NULL, 0, "code=200", &r);                         /* no value: no sample */
    assert_false(r.keep);
    run_p(p, S, NULL, 0, "latency=fast", &r);
    assert_true(r.keep && r.has_value);
    assert_true(r.value == 0);
    assert_string_equal(r.labels,
                        "{__error__=\"SampleExtractionErr\", __error_details__=\"strconv.ParseFloat: parsing "
                        "\\\"fast\\\": invalid syntax\", app=\"api\", latency=\"fast\"}");
    st_pipeline_free(p);
    st_logql_free(e);

    p = compile("sum_over_time({app=\"api\"} | logfmt | unwrap bytes(size) [1m])", &e);
    run_p(p, S, NULL, 0, "size=1.5KiB", &r);
    assert_true(r.has_value && r.value == 1536);
    run_p(p, S, NULL, 0, "size=\"3 MB\"", &r);
    assert_true(r.has_value && r.value == 3e6);
    st_pipeline_free(p);
    st_logql_free(e);

    p = compile("sum_over_time({app=\"api\"} | logfmt | unwrap duration(d) [1m])", &e);
    run_p(p, S, NULL, 0, "d=1m30.5s", &r);
    assert_true(r.has_value && r.value == 90.5);
    run_p(p, S, NULL, 0, "d=250ms", &r);
    assert_true(r.has_value && r.value == 0.25);
    st_pipeline_free(p);
    st_logql_free(e);

    p = compile("sum_over_time({app=\"api\"} | logfmt | unwrap duration_seconds(d) | __error__=\"\" [1m])",
                &e);
    run_p(p, S, NULL, 0, "d=2h", &r);
    assert_true(r.has_value && r.value == 7200);
    run_p(p, S, NULL, 0, "d=2", &r); /* conversion error, then dropped by the post filter */
    assert_false(r.keep);
    st_pipeline_free(p);
    st_logql_free(e);

    p = compile("avg_over_time({app=\"api\"} | json | unwrap n | n > 10 [1m])", &e);
    run_p(p, S, NULL, 0, "{\"n\":12}", &r);
    assert_true(r.keep && r.value == 12);
    run_p(p, S, NULL, 0, "{\"n\":9}", &r);
    assert_false(r.keep);
    st_pipeline_free(p);
    st_logql_free(e);

    /* a pipeline without unwrap gives no value */
    p = compile("count_over_time({app=\"api\"} |= \"x\" [1m])", &e);
    assert_true(st_pipeline_line_only(p));
    run_p(p, S, NULL, 0, "x", &r);
    assert_true(r.keep && !r.has_value);
    st_pipeline_free(p);
    st_logql_free(e);
}

static void test_reorder_and_keep_line(void **state)
{
    (void)state;
    st_logql_expr_t *e;
    /* the filter after json runs before it (Loki moves line filters to the front of their segment) */
    st_pipeline_t *p = compile("{app=\"api\"} | json |= \"needle\" | level=\"error\"", &e);
    assert_false(st_pipeline_line_only(p));
    assert_false(st_pipeline_keep_line(p, st_cstr("{\"level\":\"error\"}")));
    assert_true(st_pipeline_keep_line(p, st_cstr("{\"level\":\"error\",\"m\":\"needle\"}")));
    st_str_t lit;
    assert_true(st_pipeline_required_literal(p, &lit));
    assert_true(st_str_eqc(lit, "needle"));
    st_pipeline_free(p);
    st_logql_free(e);
    /* a filter after a label filter or line_format stays after it */
    p = compile("{app=\"api\"} | logfmt | level=\"error\" |= \"x\"", &e);
    assert_true(st_pipeline_keep_line(p, st_cstr("level=info")));
    assert_false(st_pipeline_required_literal(p, &lit));
    st_pipeline_free(p);
    st_logql_free(e);
    p = compile("{app=\"api\"} |= \"a\" != \"b\"", &e);
    assert_true(st_pipeline_line_only(p));
    st_pipeline_free(p);
    st_logql_free(e);
    /* decolorize is not a segment end in Loki: the filter sees the colored line */
    assert_false(run("{app=\"api\"} | decolorize |= \"red text\"", S, "\x1b[31mred\x1b[0m text").keep);
    /* st_pipeline_run applies the leading filters too */
    DROPPED("{app=\"api\"} |= \"x\" | logfmt", S, "a=b");
    /* st_pipeline_run_kept skips them */
    p = compile("{app=\"api\"} |= \"x\" | logfmt", &e);
    st_labels_t sl;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(S), &sl, err), 0);
    st_pipeline_result_t out;
    assert_int_equal(st_pipeline_run_kept(p, 0, st_cstr("a=b"), &sl, st_str("", 0), &out), 0);
    assert_true(out.keep);
    st_labels_free(&sl);
    st_pipeline_free(p);
    st_logql_free(e);
}

static void test_categories_and_hash(void **state)
{
    (void)state;
    res_t r = run_md("{app=\"api\"} | logfmt | label_format app=\"x\"", "{app=\"api\", env=\"prod\"}",
                     "trace=abc", "level=info");
    assert_string_equal(r.labels, "{app=\"x\", env=\"prod\", level=\"info\", trace=\"abc\"}");
    assert_string_equal(r.cats, "pspm");
    /* metadata with a stream label's name is renamed, as Loki's LabelsBuilder.Add does */
    r = run_md("{app=\"api\"} | logfmt", S, "app=md", "x=1");
    assert_string_equal(r.labels, "{app=\"api\", app_extracted=\"md\", x=\"1\"}");
    assert_string_equal(r.cats, "smp");
    /* the hash is the hash of the canonical text */
    st_logql_expr_t *e;
    st_pipeline_t *p = compile("{app=\"api\"} | logfmt", &e);
    st_labels_t sl;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(S), &sl, err), 0);
    st_pipeline_result_t a, b;
    assert_int_equal(st_pipeline_run(p, 0, st_cstr("x=1 y=2"), &sl, st_str("", 0), &a), 0);
    uint64_t ha = a.hash;
    assert_int_equal(st_pipeline_run(p, 0, st_cstr("y=2 x=1"), &sl, st_str("", 0), &b), 0);
    assert_true(ha == b.hash);
    assert_int_equal(st_pipeline_run(p, 0, st_cstr("y=3 x=1"), &sl, st_str("", 0), &b), 0);
    assert_true(ha != b.hash);
    st_labels_free(&sl);
    st_pipeline_free(p);
    st_logql_free(e);
}

/* Many entries through one pipeline: results stay correct as buffers are reused. */
static void test_reuse(void **state)
{
    (void)state;
    st_logql_expr_t *e;
    st_pipeline_t *p = compile(
        "{app=\"api\"} | json | line_format \"{{.id}}:{{.msg | upper}}\" | label_format n=\"{{.id}}\"", &e);
    st_labels_t sl;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(S), &sl, err), 0);
    char line[256], want[256];
    for (int i = 0; i < 5000; i++) {
        snprintf(line, sizeof line, "{\"id\":%d,\"msg\":\"m\\u00e9%d\",\"pad\":\"%*s\"}", i, i, i % 300, "");
        st_pipeline_result_t out;
        assert_int_equal(st_pipeline_run(p, i, st_cstr(line), &sl, st_str("", 0), &out), 0);
        snprintf(want, sizeof want, "%d:M\xc3\x89%d", i, i);
        assert_true(out.keep);
        assert_int_equal(out.line.n, strlen(want));
        assert_memory_equal(out.line.p, want, out.line.n);
        st_str_t v;
        assert_true(st_labels_get(out.labels, st_cstr("n"), &v));
        snprintf(want, sizeof want, "%d", i);
        assert_true(st_str_eqc(v, want));
    }
    st_labels_free(&sl);
    st_pipeline_free(p);
    st_logql_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_flat),
        cmocka_unit_test(test_json_params),
        cmocka_unit_test(test_logfmt),
        cmocka_unit_test(test_logfmt_params),
        cmocka_unit_test(test_regexp_pattern),
        cmocka_unit_test(test_unpack),
        cmocka_unit_test(test_label_filters),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_label_format),
        cmocka_unit_test(test_drop_keep_decolorize),
        cmocka_unit_test(test_unwrap),
        cmocka_unit_test(test_reorder_and_keep_line),
        cmocka_unit_test(test_categories_and_hash),
        cmocka_unit_test(test_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
