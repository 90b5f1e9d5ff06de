/* test_meta.c: the querier's Drilldown helpers: the Drain pattern miner (templates with "<_>",
 * spacing kept, adjacent placeholders collapsed, short lines skipped, least recently used clusters
 * evicted at 300), field type detection in Loki's order of Go parsers, field extraction from JSON
 * (flattened names, key paths, "_extracted", arrays and nulls skipped) and logfmt, and the tail
 * message encoder. */
#include "testutil.h"

#include "common/err.h"
#include "querier/meta_int.h"

/* ---- Drain ------------------------------------------------------------------------------------------ */

static int train(st_drain_t *d, const char *line)
{
    int id;
    assert_int_equal(st_drain_train(d, st_cstr(line), &id), 0);
    return id;
}

static void expect_pattern(st_drain_t *d, int id, const char *want)
{
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_drain_pattern(d, id, &b), 0);
    assert_string_equal(st_buf_cstr(&b), want);
    st_buf_free(&b);
}

static void test_drain_templates(void **state)
{
    st_drain_t *d;
    assert_int_equal(st_drain_new(&d), 0);
    int a = train(d, "user 17 logged in from 10.0.0.1");
    assert_true(a >= 0);
    assert_int_equal(train(d, "user 243 logged in from 192.168.1.20"), a);
    assert_int_equal(train(d, "user 9 logged in from 10.1.2.3"), a);
    expect_pattern(d, a, "user <_> logged in from <_>");
    int b = train(d, "connection closed by peer");
    assert_true(b >= 0 && b != a);
    expect_pattern(d, b, "connection closed by peer");
    assert_int_equal(train(d, "too short"), -1); /* fewer than 4 tokens */
    /* logfmt: '=' is a token of its own, spacing comes back as it was */
    int c = train(d, "level=info msg=done status=200");
    assert_int_equal(train(d, "level=info msg=done status=500"), c);
    expect_pattern(d, c, "level=info msg=done status=<_>");
    /* placeholders with nothing between them collapse into one (the last token is off the tree path) */
    int e = train(d, "a b c v=(1)");
    assert_int_equal(train(d, "a b c v=(2]"), e);
    expect_pattern(d, e, "a b c v=(<_>");
    /* double spaces are kept */
    int f = train(d, "x  y  z  w");
    expect_pattern(d, f, "x  y  z  w");
    st_drain_free(d);
}

static void test_drain_eviction(void **state)
{
    st_drain_t *d;
    assert_int_equal(st_drain_new(&d), 0);
    char line[64];
    int first = -1;
    for (int i = 0; i < 320; i++) {
        /* four tokens that all differ between lines: every line starts a cluster */
        char w[5] = {(char)('a' + i % 26), (char)('a' + i / 26 % 26), 'q', 'q', 0};
        snprintf(line, sizeof line, "A%s B%s C%s D%s", w, w, w, w);
        int id = train(d, line);
        assert_true(id >= 0);
        if (i == 0) first = id;
    }
    size_t alive = 0;
    for (size_t i = 0; i < st_drain_cap(d); i++) alive += st_drain_alive(d, (int)i);
    assert_int_equal(alive, 300);
    assert_false(st_drain_alive(d, first)); /* the least recently used went first */
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_drain_pattern(d, first, &b), ST_ENOTFOUND);
    st_buf_free(&b);
    st_drain_free(d);
}

/* ---- field types ------------------------------------------------------------------------------------ */

static void test_field_types(void **state)
{
    static const struct {
        const char *v;
        st_field_type_t t;
    } cases[] = {
        {"42", ST_FIELD_INT},
        {"-7", ST_FIELD_INT},
        {"+3", ST_FIELD_INT},
        {"9223372036854775807", ST_FIELD_INT},
        {"9223372036854775808", ST_FIELD_FLOAT}, /* over int64: ParseFloat still takes it */
        {"3.14", ST_FIELD_FLOAT},
        {"1e3", ST_FIELD_FLOAT},
        {".5", ST_FIELD_FLOAT},
        {"inf", ST_FIELD_FLOAT},
        {"NaN", ST_FIELD_FLOAT},
        {"0x1p-2", ST_FIELD_FLOAT},
        {"true", ST_FIELD_BOOLEAN},
        {"False", ST_FIELD_BOOLEAN},
        {"t", ST_FIELD_BOOLEAN},
        {"1.5s", ST_FIELD_DURATION},
        {"250ms", ST_FIELD_DURATION},
        {"1h2m", ST_FIELD_DURATION},
        {"10KB", ST_FIELD_BYTES},
        {"3 MiB", ST_FIELD_BYTES},
        {"1.5kB", ST_FIELD_BYTES},
        {"hello", ST_FIELD_STRING},
        {"", ST_FIELD_STRING},
        {" 42", ST_FIELD_STRING},
        {"0x10", ST_FIELD_STRING},
        {"1_000", ST_FIELD_STRING},
        {"yes", ST_FIELD_STRING},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_field_type_t t = st_field_type_of(st_cstr(cases[i].v));
        if (t != cases[i].t)
            fail_msg("%s: got %s, want %s", cases[i].v, st_field_type_name(t),
                     st_field_type_name(cases[i].t));
    }
    assert_string_equal(st_field_type_name(ST_FIELD_DURATION), "duration");
}

/* ---- extraction ------------------------------------------------------------------------------------- */

typedef struct {
    st_buf_t out; /* "name=value@path/path|" */
} fx_t;

static int collect(void *arg, st_str_t name, st_str_t value, const st_str_t *path, size_t npath)
{
    fx_t *x = arg;
    st_buf_printf(&x->out, "%.*s=%.*s", (int)name.n, name.p, (int)value.n, value.p);
    for (size_t i = 0; i < npath; i++)
        st_buf_printf(&x->out, "%c%.*s", i ? '/' : '@', (int)path[i].n, path[i].p);
    st_buf_putc(&x->out, '|');
    return 0;
}

static void expect_fields(const char *line, const st_labels_t *stream, int kind, const char *want)
{
    fx_t x = {ST_BUF_INIT};
    int rc = st_fields_extract(st_cstr(line), stream, collect, &x);
    assert_int_equal(rc, kind);
    st_buf_cstr(&x.out);
    if (strcmp(x.out.data ? x.out.data : "", want) != 0)
        fail_msg("%s:\n got  %s\n want %s", line, x.out.data, want);
    st_buf_free(&x.out);
}

static void test_fields_json(void **state)
{
    st_labels_t stream;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr("{a=\"s\", job=\"x\"}"), &stream, err), 0);
    expect_fields("{\"a\":1,\"b\":{\"c\":\"x\\ty\",\"d\":[1,2],\"e\":null,\"deep\":{\"k\":false}},\"f "
                  "g\":true,\"1x\":\"y\"}",
                  &stream, ST_FIELDS_JSON,
                  "a_extracted=1@a|b_c=x\ty@b/c|b_deep_k=false@b/deep/k|f_g=true@f g|_1x=y@1x|");
    expect_fields("{}", NULL, ST_FIELDS_JSON, "");
    /* not an object: read as logfmt; broken JSON fails logfmt too (a quote inside a key) */
    expect_fields("[1,2]", NULL, ST_FIELDS_LOGFMT, "");
    expect_fields("{\"a\":1", NULL, ST_FIELDS_NONE, "");
    st_labels_free(&stream);
}

static void test_fields_logfmt(void **state)
{
    expect_fields("level=info msg=\"hello \\\"world\\\"\" empty= bare status=200 dur=1.5s", NULL,
                  ST_FIELDS_LOGFMT, "level=info|msg=hello \"world\"|status=200|dur=1.5s|");
    expect_fields("caller.name=main.go:12 x-y=1", NULL, ST_FIELDS_LOGFMT, "caller_name=main.go:12|x_y=1|");
    expect_fields("hello world", NULL, ST_FIELDS_LOGFMT, "");
    expect_fields("key=\"unterminated", NULL, ST_FIELDS_NONE, "");
    expect_fields("bad\"key=1", NULL, ST_FIELDS_NONE, "");
}

/* ---- tail messages ---------------------------------------------------------------------------------- */

static void test_tail_encode(void **state)
{
    st_tail_batch_t b = {0};
    st_str_t l1 = st_cstr("{\"job\":\"a\"}"), l2 = st_cstr("{\"job\":\"b\"}");
    assert_int_equal(st_tail_batch_add(&b, 1, l1, st_cstr("one"), st_str("", 0), false), 0);
    assert_int_equal(st_tail_batch_add(&b, 2, l1, st_cstr("two \"q\""), st_str("", 0), false), 0);
    assert_int_equal(st_tail_batch_add(&b, 3, l2, st_str("", 0), st_str("", 0), true), 0);
    assert_int_equal(
        st_tail_batch_add(&b, 4, l2, st_cstr("three"), st_cstr("{\"parsed\":{\"x\":\"1\"}}"), false), 0);
    st_buf_t out = ST_BUF_INIT;
    assert_int_equal(st_tail_encode(b.v, b.n, false, &out), 0);
    assert_string_equal(
        st_buf_cstr(&out),
        "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"one\"],[\"2\",\"two \\\"q\\\"\"]]},"
        "{\"stream\":{\"job\":\"b\"},\"values\":[[\"4\",\"three\"]]}],"
        "\"dropped_entries\":[{\"labels\":{\"job\":\"b\"},\"timestamp\":\"3\"}]}");
    st_buf_reset(&out);
    assert_int_equal(st_tail_encode(b.v, 1, true, &out), 0);
    assert_string_equal(st_buf_cstr(&out),
                        "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"one\",{}]]}],"
                        "\"encodingFlags\":[\"categorize-labels\"]}");
    st_buf_reset(&out);
    assert_int_equal(st_tail_encode(NULL, 0, false, &out), 0);
    assert_string_equal(st_buf_cstr(&out), "{\"streams\":[]}");
    st_buf_free(&out);
    st_tail_batch_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_templates), cmocka_unit_test(test_drain_eviction),
        cmocka_unit_test(test_field_types),     cmocka_unit_test(test_fields_json),
        cmocka_unit_test(test_fields_logfmt),   cmocka_unit_test(test_tail_encode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
