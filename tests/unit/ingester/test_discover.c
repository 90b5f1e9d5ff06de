/* test_discover.c: Loki's stream decorations: service_name discovery (and its exemption from
 * max_label_names_per_series), detected_level from labels, structured metadata, OTLP severity and
 * the line (JSON, logfmt, words; bounded scan), and the list/name helpers. */
#include "testutil.h"

#include "capture.h"
#include "common/err.h"
#include "ingester/ingester.h"

#define NOW INT64_C(1724240000000000000)

static const st_str_t loki_names[] = {
    ST_STR("service"),
    ST_STR("app"),
    ST_STR("application"),
    ST_STR("app_name"),
    ST_STR("name"),
    ST_STR("app_kubernetes_io_name"),
    ST_STR("container"),
    ST_STR("container_name"),
    ST_STR("k8s_container_name"),
    ST_STR("component"),
    ST_STR("workload"),
    ST_STR("job"),
    ST_STR("k8s_job_name"),
};

static st_push_limits_t limits(void)
{
    return (st_push_limits_t){.now_ns = NOW,
                              .reject_old_samples = true,
                              .reject_old_samples_max_age_ns = INT64_C(7) * 86400 * 1000000000,
                              .creation_grace_period_ns = INT64_C(600) * 1000000000,
                              .max_line_size = 4096,
                              .max_label_names_per_series = 15,
                              .max_label_name_length = 1024,
                              .max_label_value_length = 2048,
                              .allow_structured_metadata = true,
                              .max_structured_metadata_size = 1024,
                              .max_structured_metadata_entries = 8,
                              .discover_service_name = loki_names,
                              .discover_service_name_n = sizeof loki_names / sizeof loki_names[0],
                              .discover_log_levels = true};
}

static char *discovered(const st_push_limits_t *lim, const char *labels)
{
    st_labels_t in = ST_LABELS_INIT, out = ST_LABELS_INIT;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(labels), &in, err), 0);
    int rc = st_discover_service_name(lim, &in, &out);
    assert_true(rc == 0 || rc == 1);
    st_buf_t b = ST_BUF_INIT;
    st_labels_format(rc == 1 ? &out : &in, &b);
    st_buf_cstr(&b);
    st_labels_free(&in);
    st_labels_free(&out);
    return st_buf_steal(&b, NULL);
}

#define ASSERT_DISCOVERED(lim, in, want)                                                                     \
    do {                                                                                                     \
        char *got_ = discovered(lim, in);                                                                    \
        assert_string_equal(got_, want);                                                                     \
        free(got_);                                                                                          \
    } while (0)

static void test_service_name(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    ASSERT_DISCOVERED(&lim, "{job=\"j\", app=\"a\"}", "{app=\"a\", job=\"j\", service_name=\"a\"}");
    ASSERT_DISCOVERED(&lim, "{job=\"j\", container=\"c\"}",
                      "{container=\"c\", job=\"j\", service_name=\"c\"}");
    ASSERT_DISCOVERED(&lim, "{k8s_job_name=\"kj\", job=\"j\"}",
                      "{job=\"j\", k8s_job_name=\"kj\", service_name=\"j\"}");
    ASSERT_DISCOVERED(&lim, "{env=\"p\"}", "{env=\"p\", service_name=\"unknown_service\"}");
    ASSERT_DISCOVERED(&lim, "{}", "{service_name=\"unknown_service\"}");
    ASSERT_DISCOVERED(&lim, "{app=\"\", job=\"j\"}", "{job=\"j\", service_name=\"j\"}"); /* empty = absent */
    ASSERT_DISCOVERED(&lim, "{service_name=\"s\", app=\"a\"}", "{app=\"a\", service_name=\"s\"}");
    ASSERT_DISCOVERED(&lim, "{__pattern__=\"x\", app=\"a\"}", "{__pattern__=\"x\", app=\"a\"}");
    ASSERT_DISCOVERED(&lim, "{__aggregated_metric__=\"x\"}", "{__aggregated_metric__=\"x\"}");
    lim.discover_service_name_n = 0;
    ASSERT_DISCOVERED(&lim, "{app=\"a\"}", "{app=\"a\"}");
    static const st_str_t custom[] = {ST_STR("env")};
    lim.discover_service_name = custom;
    lim.discover_service_name_n = 1;
    ASSERT_DISCOVERED(&lim, "{app=\"a\", env=\"e\"}", "{app=\"a\", env=\"e\", service_name=\"e\"}");
}

/* Through the validated entry point: discovery before validation, service_name not counted. */
static void test_service_name_limits(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    lim.max_label_names_per_series = 2;
    st_push_t *p;
    st_push_errors_t e = {0};
    assert_int_equal(st_push_new("t", &p), 0);
    st_labels_t l = ST_LABELS_INIT;
    char err[256];
    size_t idx;
    assert_int_equal(st_labels_parse(st_cstr("{a=\"1\", b=\"2\"}"), &l, err), 0);
    assert_int_equal(st_push_add_stream(p, &lim, &l, &e, &idx), 0);
    assert_int_not_equal(idx, SIZE_MAX);
    assert_true(
        st_str_eqc(st_push_stream_labels(p, idx), "{a=\"1\", b=\"2\", service_name=\"unknown_service\"}"));
    st_labels_free(&l);
    assert_int_equal(st_labels_parse(st_cstr("{a=\"1\", b=\"2\", c=\"3\"}"), &l, err), 0);
    assert_int_equal(st_push_add_stream(p, &lim, &l, &e, &idx), 0);
    assert_int_equal(idx, SIZE_MAX);
    st_push_errors_finish(&e);
    assert_string_equal(st_buf_cstr(&e.text),
                        "entry for stream '{a=\"1\", b=\"2\", c=\"3\", "
                        "service_name=\"unknown_service\"}' has 3 label names; limit 2");
    st_labels_free(&l);
    /* the flag leaves service_name to the caller (OTLP) */
    assert_int_equal(st_labels_parse(st_cstr("{x=\"1\"}"), &l, err), 0);
    assert_int_equal(st_push_add_stream_flags(p, &lim, &l, ST_PUSH_NO_DISCOVERY, &e, &idx), 0);
    assert_true(st_str_eqc(st_push_stream_labels(p, idx), "{x=\"1\"}"));
    st_labels_free(&l);
    st_push_errors_free(&e);
    st_push_free(p);
}

static st_str_t md_of(st_buf_t *b, const char *const *kv, size_t n)
{
    st_str_t names[8], values[8];
    for (size_t i = 0; i < n; i++) {
        names[i] = st_cstr(kv[2 * i]);
        values[i] = st_cstr(kv[2 * i + 1]);
    }
    st_buf_reset(b);
    assert_int_equal(st_md_encode(b, names, values, n), 0);
    return st_str(b->data, b->len);
}

/* The level st_discover_level picks for a line with no labels or metadata. */
static const char *line_level(const char *line)
{
    static char out[64];
    st_str_t lv;
    assert_int_equal(st_discover_level(st_str("", 0), st_cstr(line), st_str("", 0), &lv), 1);
    snprintf(out, sizeof out, "%.*s", (int)lv.n, lv.p);
    return out;
}

static void test_level_from_line(void **state)
{
    (void)state;
    /* JSON: exact-case level fields, string values, nested up to depth 2, document order */
    assert_string_equal(line_level("{\"level\":\"debug\",\"msg\":\"x\"}"), "debug");
    assert_string_equal(line_level("  {\"msg\":\"x\", \"severity\":\"WARNING\"}  "), "warn");
    assert_string_equal(line_level("{\"a\":{\"lvl\":\"Err\"},\"level\":\"info\"}"), "error");
    assert_string_equal(line_level("{\"a\":{\"b\":{\"level\":\"trace\"}}}"),
                        "unknown"); /* depth 3: not seen */
    assert_string_equal(line_level("{\"Level\":\"dbg\"}"), "debug");
    assert_string_equal(line_level("{\"LeVeL\":\"error\"}"), "unknown"); /* JSON keys are case-sensitive */
    assert_string_equal(line_level("{\"level\":3,\"msg\":\"all fine\"}"), "unknown");
    assert_string_equal(line_level("{\"level\":\"nonsense\",\"m\":\"INFO here\"}"), "info");
    assert_string_equal(line_level("{\"arr\":[{\"level\":\"fatal\"}],\"level\":\"critical\"}"), "critical");
    /* logfmt: case-insensitive keys, the earliest field of the list wins, level stops at once */
    assert_string_equal(line_level("ts=1 lvl=WRN msg=x"), "warn");
    assert_string_equal(line_level("severity=error LEVEL=debug"), "debug");
    assert_string_equal(line_level("severity=error lvl=debug"), "error");
    assert_string_equal(line_level("msg=\"a b\" level=\"fatal\""), "fatal");
    assert_string_equal(line_level("level=information"), "info");
    assert_string_equal(line_level("level=verbose msg=\"debug this\""), "debug");
    assert_string_equal(line_level("a=b"), "unknown");
    /* words */
    assert_string_equal(line_level("Something INFO happened"), "info");
    assert_string_equal(line_level("[ERROR] disk"), "error");
    assert_string_equal(line_level("err: disk"), "error");
    assert_string_equal(line_level("WARNING: disk"), "warn");
    assert_string_equal(line_level("[critical] disk"), "critical");
    assert_string_equal(line_level("a debug line"), "debug");
    assert_string_equal(line_level("nothing to see"), "unknown");
    assert_string_equal(line_level(""), "unknown");
    /* only the first ST_LEVEL_SCAN_BYTES are looked at */
    char big[2048];
    memset(big, 'x', sizeof big);
    big[0] = '{';
    memcpy(big + 1, "\"pad\":\"", 7);
    memcpy(big + 1500, "\",\"level\":\"error\"}", 18);
    big[1518] = '\0';
    assert_string_equal(line_level(big), "unknown");
    memset(big, 'x', sizeof big);
    memcpy(big + 600, " INFO", 5);
    big[700] = '\0';
    assert_string_equal(line_level(big), "unknown");
}

static void test_level_sources(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    st_str_t lv;
    /* a stream label wins over everything */
    static const char *const md1[] = {"level", "debug"};
    assert_int_equal(st_discover_level(st_cstr("warn"), st_cstr("ERROR"), md_of(&b, md1, 1), &lv), 1);
    assert_true(st_str_eqc(lv, "warn"));
    /* metadata: the earliest field of the list, normalised; unknown values kept */
    static const char *const md2[] = {"severity", "Err", "lvl", "x", "level", "WARNING"};
    assert_int_equal(st_discover_level(st_str("", 0), st_cstr("info"), md_of(&b, md2, 3), &lv), 1);
    assert_true(st_str_eqc(lv, "warn"));
    static const char *const md3[] = {"lvl", "Notice"};
    assert_int_equal(st_discover_level(st_str("", 0), st_cstr("info"), md_of(&b, md3, 1), &lv), 1);
    assert_true(st_str_eqc(lv, "Notice"));
    /* OTLP severity_number */
    static const char *const sev[][2] = {
        {"severity_number", "0"},  {"severity_number", "3"},  {"severity_number", "6"},
        {"severity_number", "10"}, {"severity_number", "16"}, {"severity_number", "17"},
        {"severity_number", "24"}, {"severity_number", "25"}, {"severity_number", "x"}};
    static const char *const want[] = {"unknown", "trace", "debug",   "info", "warn",
                                       "error",   "fatal", "unknown", "info"};
    for (size_t i = 0; i < 9; i++) {
        assert_int_equal(st_discover_level(st_str("", 0), st_cstr("ERROR"), md_of(&b, sev[i], 1), &lv), 1);
        assert_true(st_str_eqc(lv, want[i]));
    }
    /* severity_text (a level field) beats severity_number */
    static const char *const md4[] = {"severity_number", "17", "severity_text", "Information"};
    assert_int_equal(st_discover_level(st_str("", 0), st_cstr(""), md_of(&b, md4, 2), &lv), 1);
    assert_true(st_str_eqc(lv, "info"));
    /* an existing detected_level is only normalised */
    static const char *const md5[] = {"detected_level", "ERROR"};
    assert_int_equal(st_discover_level(st_cstr("info"), st_cstr(""), md_of(&b, md5, 1), &lv), 2);
    assert_true(st_str_eqc(lv, "error"));
    static const char *const md6[] = {"detected_level", "custom"};
    assert_int_equal(st_discover_level(st_cstr("info"), st_cstr(""), md_of(&b, md6, 1), &lv), 0);
    st_buf_free(&b);
    /* normalisation table */
    static const char *const norm[][2] = {
        {"TRACE", "trace"}, {"trc", "trace"},         {"Debug", "debug"}, {"DBG", "debug"},
        {"inf", "info"},    {"INFORMATION", "info"},  {"wrn", "warn"},    {"Warning", "warn"},
        {"ERR", "error"},   {"critical", "critical"}, {"FATAL", "fatal"}, {"panic", "panic"}};
    for (size_t i = 0; i < sizeof norm / sizeof norm[0]; i++)
        assert_true(st_str_eqc(st_level_normalize(st_cstr(norm[i][0])), norm[i][1]));
}

/* Through st_push_add_stream/st_push_add_entry: detected_level appended after validation (not
 * counted against the metadata limits), level labels cached per stream, switches honoured. */
static void test_level_in_push(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    lim.max_structured_metadata_entries = 1;
    st_push_t *p;
    st_push_errors_t e = {0};
    assert_int_equal(st_push_new("t", &p), 0);
    st_labels_t l1 = ST_LABELS_INIT, l2 = ST_LABELS_INIT;
    char err[256];
    size_t a, b;
    assert_int_equal(st_labels_parse(st_cstr("{job=\"a\", level=\"WARN\"}"), &l1, err), 0);
    assert_int_equal(st_labels_parse(st_cstr("{job=\"b\"}"), &l2, err), 0);
    assert_int_equal(st_push_add_stream(p, &lim, &l1, &e, &a), 0);
    assert_int_equal(st_push_add_stream(p, &lim, &l2, &e, &b), 0);
    st_buf_t md = ST_BUF_INIT;
    static const char *const kv[] = {"trace_id", "t1"};
    cap_reset();
    assert_int_equal(st_push_add_entry(p, &lim, a, NOW, st_cstr("level=error"), md_of(&md, kv, 1), &e), 0);
    assert_int_equal(st_push_add_entry(p, &lim, b, NOW, st_cstr("level=error"), md_of(&md, kv, 1), &e), 0);
    assert_int_equal(st_push_add_entry(p, &lim, b, NOW, st_cstr("plain"), st_str("", 0), &e), 0);
    static const char *const dl[] = {"detected_level", "Warning"};
    assert_int_equal(st_push_add_entry(p, &lim, b, NOW, st_cstr("x"), md_of(&md, dl, 1), &e), 0);
    assert_int_equal(ncap, 4);
    assert_string_equal(cap[0].md, "trace_id=t1;detected_level=warn");
    assert_string_equal(cap[1].md, "trace_id=t1;detected_level=error");
    assert_string_equal(cap[2].md, "detected_level=unknown");
    assert_string_equal(cap[3].md, "detected_level=warn");
    assert_int_equal(e.count, 0);
    lim.discover_log_levels = false;
    assert_int_equal(st_push_add_entry(p, &lim, b, NOW, st_cstr("level=error"), st_str("", 0), &e), 0);
    assert_string_equal(cap[4].md, "");
    lim.discover_log_levels = true;
    lim.allow_structured_metadata = false;
    assert_int_equal(st_push_add_entry(p, &lim, b, NOW, st_cstr("level=error"), st_str("", 0), &e), 0);
    assert_string_equal(cap[5].md, "");
    cap_reset();
    st_buf_free(&md);
    st_labels_free(&l1);
    st_labels_free(&l2);
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_json_decoder_decorated(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e = {0};
    assert_int_equal(st_push_new("t", &p), 0);
    cap_reset();
    assert_int_equal(
        st_push_decode_json(st_cstr("{\"streams\":[{\"stream\":{\"app\":\"web\"},\"values\":[["
                                    "\"1724240000000000000\",\"{\\\"level\\\":\\\"warn\\\"}\"]]}]}"),
                            false, &lim, p, &e),
        0);
    assert_int_equal(ncap, 1);
    assert_string_equal(cap[0].labels, "{app=\"web\", service_name=\"web\"}");
    assert_string_equal(cap[0].md, "detected_level=warn");
    cap_reset();
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_helpers(void **state)
{
    (void)state;
    st_str_t *v;
    size_t n;
    assert_int_equal(st_str_split_list(st_cstr(" a, b ,,c,"), &v, &n), 0);
    assert_int_equal(n, 3);
    assert_true(st_str_eqc(v[0], "a") && st_str_eqc(v[1], "b") && st_str_eqc(v[2], "c"));
    free(v);
    assert_int_equal(st_str_split_list(st_cstr(""), &v, &n), 0);
    assert_int_equal(n, 0);
    free(v);
    st_labels_t l = ST_LABELS_INIT;
    char err[256];
    st_str_t val;
    assert_int_equal(st_labels_parse(st_cstr("{lvl=\"a\", severity=\"b\"}"), &l, err), 0);
    assert_true(st_level_from_labels(&l, &val) && st_str_eqc(val, "b")); /* severity precedes lvl */
    st_labels_free(&l);
    assert_int_equal(st_labels_parse(st_cstr("{job=\"x\"}"), &l, err), 0);
    assert_false(st_level_from_labels(&l, &val));
    st_labels_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_name),    cmocka_unit_test(test_service_name_limits),
        cmocka_unit_test(test_level_from_line), cmocka_unit_test(test_level_sources),
        cmocka_unit_test(test_level_in_push),   cmocka_unit_test(test_json_decoder_decorated),
        cmocka_unit_test(test_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
