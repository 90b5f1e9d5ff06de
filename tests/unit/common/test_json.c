/* test_json.c: the pull parser (strictness, escapes, depth) and the escaping writer. */
#include "testutil.h"

#include "common/err.h"
#include "common/json.h"

static void test_parse_object(void **state)
{
    (void)state;
    const char *doc = " {\"a\": \"x\\n\\u00e9\\ud83d\\ude00\", \"b\": [1, -2.5e3, true, null], \"c\": {}} ";
    st_json_t j;
    st_json_init(&j, doc, strlen(doc));
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    assert_int_equal(st_json_object_begin(&j), 0);
    st_str_t k, v;
    assert_int_equal(st_json_next_key(&j, &k, &s1), 1);
    assert_true(st_str_eqc(k, "a"));
    assert_int_equal(st_json_string(&j, &v, &s2), 0);
    assert_true(st_str_eqc(v, "x\n\xc3\xa9\xf0\x9f\x98\x80"));
    assert_int_equal(st_json_next_key(&j, &k, &s1), 1);
    assert_int_equal(st_json_array_begin(&j), 0);
    assert_int_equal(st_json_next_elem(&j), 1);
    assert_int_equal(st_json_number(&j, &v), 0);
    assert_true(st_str_eqc(v, "1"));
    assert_int_equal(st_json_next_elem(&j), 1);
    assert_int_equal(st_json_number(&j, &v), 0);
    assert_true(st_str_eqc(v, "-2.5e3"));
    assert_int_equal(st_json_next_elem(&j), 1);
    st_json_type_t t;
    assert_int_equal(st_json_literal(&j, &t), 0);
    assert_int_equal(t, ST_JSON_TRUE);
    assert_int_equal(st_json_next_elem(&j), 1);
    assert_int_equal(st_json_skip(&j, NULL), 0);
    assert_int_equal(st_json_next_elem(&j), 0);
    assert_int_equal(st_json_next_key(&j, &k, &s1), 1);
    st_str_t raw;
    assert_int_equal(st_json_skip(&j, &raw), 0);
    assert_true(st_str_eqc(raw, "{}"));
    assert_int_equal(st_json_next_key(&j, &k, &s1), 0);
    assert_int_equal(st_json_finish(&j), 0);
    st_buf_free(&s1);
    st_buf_free(&s2);
}

static void expect_bad(const char *doc)
{
    st_json_t j;
    st_json_init(&j, doc, strlen(doc));
    int rc = st_json_skip(&j, NULL);
    if (rc == 0) rc = st_json_finish(&j);
    assert_int_equal(rc, ST_EPARSE);
    assert_non_null(st_json_error(&j, NULL));
}

static void test_rejects(void **state)
{
    (void)state;
    expect_bad("{\"a\":1,}");
    expect_bad("[1,]");
    expect_bad("{\"a\" 1}");
    expect_bad("\"unterminated");
    expect_bad("\"ctl\x01char\"");
    expect_bad("\"bad \\q escape\"");
    expect_bad("01");
    expect_bad("1.");
    expect_bad("tru");
    expect_bad("{} {}");
    expect_bad("");
    char deep[400];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    expect_bad(deep); /* depth limit, not a stack overflow */
}

static void test_writer(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    st_json_put_str(&b, st_cstr("q\"b\\n\n\t\x01\xc3\xa9\xff end"));
    assert_string_equal(st_buf_cstr(&b), "\"q\\\"b\\\\n\\n\\t\\u0001\xc3\xa9\\ufffd end\"");
    st_buf_reset(&b);
    st_json_put_float_str(&b, 2);
    st_buf_putc(&b, ' ');
    st_json_put_float_str(&b, 0.1);
    st_buf_putc(&b, ' ');
    st_json_put_float_str(&b, 1e21);
    st_buf_putc(&b, ' ');
    st_json_put_float_str(&b, 1.0 / 0.0);
    assert_string_equal(st_buf_cstr(&b), "2 0.1 1000000000000000000000 +Inf");
    st_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse_object), cmocka_unit_test(test_rejects),
                                       cmocka_unit_test(test_writer)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
