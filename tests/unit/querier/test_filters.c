/* test_filters.c: selector matching (anchored regexes, empty-matching matchers) and compiled line
 * filters (|=, !=, |~, !~, |>, !>, ip(), chains, or) against hand-written expectations. */
#include "testutil.h"

#include "common/err.h"
#include "querier/querier_int.h"

static st_logql_expr_t *parse(const char *q)
{
    st_logql_expr_t *e = NULL;
    char err[512];
    int rc = st_logql_parse(q, strlen(q), &e, err, sizeof err);
    if (rc != 0) fail_msg("parse %s: %s", q, err);
    return e;
}

static bool sel_matches(const char *q, const char *labels)
{
    st_logql_expr_t *e = parse(q);
    st_matcher_t m[16];
    st_qmatchers(&e->log.selector, m);
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(labels), &l, err), 0);
    bool ok = st_matchers_match(m, e->log.selector.n, &l);
    st_labels_free(&l);
    st_logql_free(e);
    return ok;
}

static void test_selectors(void **state)
{
    (void)state;
    const char *l = "{app=\"api\", env=\"prod\", pod=\"api-7d9f\"}";
    assert_true(sel_matches("{app=\"api\"}", l));
    assert_false(sel_matches("{app=\"ap\"}", l));
    assert_true(sel_matches("{app=~\"a.i\"}", l));
    assert_false(sel_matches("{app=~\"a\"}", l)); /* fully anchored */
    assert_true(sel_matches("{app=~\"api|web\", env!=\"dev\"}", l));
    assert_false(sel_matches("{app=\"api\", env!~\"p.*\"}", l));
    assert_true(sel_matches("{app=\"api\", zone!=\"eu\"}", l));  /* absent label is "" */
    assert_true(sel_matches("{app=\"api\", zone=~\"|eu\"}", l));  /* matches the empty value */
    assert_false(sel_matches("{app=\"api\", zone=~\"eu\"}", l));
    assert_true(sel_matches("{pod=~\"api-[0-9a-f]+\"}", l));
    assert_true(sel_matches("{app=~\"(?i)API\"}", l));
}

static bool keeps(const char *q, const char *line)
{
    st_logql_expr_t *e = parse(q);
    st_pipeline_t *p;
    char err[256];
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, err), 0);
    bool k = st_pipeline_keep_line(p, st_cstr(line));
    st_pipeline_free(p);
    st_logql_free(e);
    return k;
}

static void test_line_filters(void **state)
{
    (void)state;
    const char *line = "level=error msg=\"connection refused\" addr=10.1.2.3:5432 took=12ms";
    assert_true(keeps("{a=\"b\"} |= \"refused\"", line));
    assert_false(keeps("{a=\"b\"} |= \"Refused\"", line));
    assert_true(keeps("{a=\"b\"} |= \"\"", line));
    assert_true(keeps("{a=\"b\"} != \"timeout\"", line));
    assert_false(keeps("{a=\"b\"} != \"error\"", line));
    assert_true(keeps("{a=\"b\"} |~ \"took=[0-9]+ms\"", line));
    assert_true(keeps("{a=\"b\"} |~ \"(?i)REFUSED\"", line));  /* (?i) literal fast path */
    assert_true(keeps("{a=\"b\"} |~ \"warn|error\"", line));   /* alternation of literals */
    assert_false(keeps("{a=\"b\"} |~ \"^msg\"", line));        /* unanchored, but ^ still anchors */
    assert_true(keeps("{a=\"b\"} !~ \"panic|fatal\"", line));
    assert_true(keeps("{a=\"b\"} |= \"error\" != \"warn\" |~ \"addr=10\\\\.\"", line));
    assert_false(keeps("{a=\"b\"} |= \"error\" |= \"warn\"", line));
    assert_true(keeps("{a=\"b\"} |= \"warn\" or \"refused\"", line));
    assert_false(keeps("{a=\"b\"} != \"warn\" or \"refused\"", line)); /* negative or = neither */
    assert_true(keeps("{a=\"b\"} != \"warn\" or \"debug\"", line));
    assert_true(keeps("{a=\"b\"} |> \"level=<_> msg=<_>\"", line));
    assert_false(keeps("{a=\"b\"} |> \"msg=<_>\"", line)); /* a leading literal anchors */
    assert_true(keeps("{a=\"b\"} !> \"level=info <_>\"", line));
    assert_true(keeps("{a=\"b\"} |= ip(\"10.1.0.0/16\")", line));
    assert_false(keeps("{a=\"b\"} |= ip(\"192.168.0.0/16\")", line));
    assert_true(keeps("{a=\"b\"} |= ip(\"10.1.2.0-10.1.2.9\")", line));
    assert_true(keeps("{a=\"b\"} != ip(\"172.16.0.1\")", line));
    assert_true(keeps("{a=\"b\"} |= \"ünï\"", "a ünïcode line"));
    assert_true(keeps("{a=\"b\"} |~ \"(?i)ÉTÉ\"", "en été"));   /* Unicode case folding, as Go */
    assert_true(keeps("{a=\"b\"} |~ \"(?i)summer\"", "SUMMER"));
}

static void test_required_literal(void **state)
{
    (void)state;
    st_logql_expr_t *e = parse("{a=\"b\"} |= \"needle\" != \"x\"");
    st_pipeline_t *p;
    char err[256];
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, err), 0);
    st_str_t lit;
    assert_true(st_pipeline_required_literal(p, &lit));
    assert_true(st_str_eqc(lit, "needle"));
    st_pipeline_free(p);
    st_logql_free(e);
    e = parse("{a=\"b\"} |= \"a\" or \"b\"");
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, err), 0);
    assert_false(st_pipeline_required_literal(p, &lit));
    st_pipeline_free(p);
    st_logql_free(e);
}

/* The literal every match of a regex must contain (RE2 syntax), "" when none can be proven. */
static void check_rl(const char *re, const char *want)
{
    char out[256];
    size_t n = st_regex_required_literal(st_cstr(re), out, sizeof out);
    if (n != strlen(want) || memcmp(out, want, n) != 0) fail_msg("%s: got \"%.*s\", want \"%s\"", re, (int)n, out, want);
}

static void test_regex_literal(void **state)
{
    (void)state;
    check_rl("blk_[0-9]+ terminating", " terminating");
    check_rl("blk_[0-9]+ nomatch", " nomatch");
    check_rl("error: .* refused", " refused"); /* the longest run */
    check_rl("abc", "abc");
    check_rl("abcd*", "abc");         /* d may be absent */
    check_rl("abcd?ef", "abc");
    check_rl("abcd+ef", "abcd");      /* at least one d, but the run ends there */
    check_rl("xabc{2}de", "xab");     /* a counted repeat drops the character */
    check_rl("ab{x}cd", "ab{x}cd");   /* not a repeat: literal braces */
    check_rl("a|bcdef", "");          /* top-level alternation */
    check_rl("(foo|bar)baz", "baz");  /* alternation inside a group is fine */
    check_rl("(?i)hello world", "");  /* flags: give up */
    check_rl("ab(?:cd)efg", "");
    check_rl("10\\.1\\.2\\.3", "10.1.2.3"); /* escaped punctuation is literal */
    check_rl("\\d+ ms elapsed", " ms elapsed");
    check_rl("\\pL+ word", "");        /* \p: give up */
    check_rl("[a-z]+ mid []x] tail", " mid ");
    check_rl("[[:alpha:]]] xyz", "] xyz");
    check_rl("^start$", "start");
    check_rl("xhé*ll", "xh");         /* a quantifier drops the whole UTF-8 character */
    check_rl("ünï*x", "ün");
    /* and the filter still decides exactly */
    assert_true(keeps("{a=\"b\"} |~ \"blk_[0-9]+ terminating\"", "x blk_12 terminating y"));
    assert_false(keeps("{a=\"b\"} |~ \"blk_[0-9]+ terminating\"", "x blk_ terminating y"));
    assert_false(keeps("{a=\"b\"} |~ \"blk_[0-9]+ terminating\"", "x blk_12 terminated y"));
    assert_true(keeps("{a=\"b\"} !~ \"blk_[0-9]+ terminating\"", "no literal here"));
    assert_false(keeps("{a=\"b\"} !~ \"blk_[0-9]+ terminating\"", "blk_7 terminating"));
    st_logql_expr_t *e = parse("{a=\"b\"} |~ \"blk_[0-9]+ nomatch\"");
    st_pipeline_t *p;
    char err[256];
    assert_int_equal(st_pipeline_compile(&e->log.pipeline, NULL, &p, err), 0);
    st_str_t lit;
    assert_true(st_pipeline_required_literal(p, &lit));
    assert_true(st_str_eqc(lit, " nomatch"));
    st_pipeline_free(p);
    st_logql_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_selectors), cmocka_unit_test(test_line_filters),
                                       cmocka_unit_test(test_required_literal), cmocka_unit_test(test_regex_literal)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
