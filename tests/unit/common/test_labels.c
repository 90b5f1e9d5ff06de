/* test_labels.c: label-string parsing (Go escapes, empty values dropped, sorting) and formatting. */
#include "testutil.h"

#include "common/err.h"
#include "common/labels.h"

static void test_parse_format(void **state)
{
    (void)state;
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(ST_STR("{ job=\"api\", env = \"prod\",empty=\"\", q=\"a\\\"b\\n\\u00e9\\x41\\101\"}"), &l, err), 0);
    assert_int_equal(l.n, 3);
    st_buf_t b = ST_BUF_INIT;
    st_labels_format(&l, &b);
    assert_string_equal(st_buf_cstr(&b), "{env=\"prod\", job=\"api\", q=\"a\\\"b\\n\xc3\xa9" "AA\"}");
    st_str_t v;
    assert_true(st_labels_get(&l, ST_STR("job"), &v) && st_str_eqc(v, "api"));
    assert_false(st_labels_get(&l, ST_STR("empty"), &v));
    st_labels_free(&l);
    st_buf_free(&b);
    assert_int_equal(st_labels_parse(ST_STR("{}"), &l, err), 0);
    assert_int_equal(l.n, 0);
    st_labels_free(&l);
    /* duplicates stay visible for validation */
    assert_int_equal(st_labels_parse(ST_STR("{a=\"1\", a=\"2\"}"), &l, err), 0);
    assert_int_equal(st_labels_first_dup(&l), 1);
    st_labels_free(&l);
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = {"job=\"x\"", "{job=\"x\"", "{job=x}", "{1job=\"x\"}", "{job=~\"x\"}", "{job=\"x\" env=\"y\"}",
                         "{a.b=\"x\"}", "{job=\"\\q\"}", "{job=\"x\"} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_labels_t l;
        char err[256] = "";
        assert_int_equal(st_labels_parse(st_cstr(bad[i]), &l, err), ST_EPARSE);
        assert_true(strlen(err) > 0);
    }
}

static void test_quote(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    st_go_quote(&b, st_cstr("tab\there\x7f\xff\xe2\x80\xa8"));
    assert_string_equal(st_buf_cstr(&b), "\"tab\\there\\x7f\\xff\\u2028\"");
    st_buf_free(&b);
}

static bool re_prefix(const void *re, st_str_t s)
{
    const char *p = re;
    return s.n >= strlen(p) && memcmp(s.p, p, strlen(p)) == 0;
}

static void test_matchers(void **state)
{
    (void)state;
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(ST_STR("{app=\"api\", env=\"prod\"}"), &l, err), 0);
    st_matcher_t m[3] = {{ST_MATCH_EQ, ST_STR("app"), ST_STR("api"), NULL, NULL},
                         {ST_MATCH_NEQ, ST_STR("pod"), ST_STR("x"), NULL, NULL}, /* absent label is "" */
                         {ST_MATCH_RE, ST_STR("env"), ST_STR("pr.*"), re_prefix, "pr"}};
    assert_true(st_matchers_match(m, 3, &l));
    m[1].type = ST_MATCH_EQ;
    assert_false(st_matchers_match(m, 3, &l));
    st_matcher_t nre = {ST_MATCH_NRE, ST_STR("env"), ST_STR("pr.*"), re_prefix, "pr"};
    assert_false(st_matchers_match(&nre, 1, &l));
    st_labels_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_parse_format), cmocka_unit_test(test_parse_errors),
                                       cmocka_unit_test(test_quote), cmocka_unit_test(test_matchers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
