/* test_push_json.c: JSON push decoding and Loki's validation messages, partial acceptance and the
 * grouping of repeated errors. */
#include "testutil.h"

#include "common/err.h"
#include "ingester/ingester.h"

#define NOW INT64_C(1724240000000000000) /* 2024-08-21T11:33:20Z */

static st_push_limits_t limits(void)
{
    return (st_push_limits_t){.now_ns = NOW,
                              .reject_old_samples = true,
                              .reject_old_samples_max_age_ns = INT64_C(7) * 86400 * 1000000000,
                              .creation_grace_period_ns = INT64_C(600) * 1000000000,
                              .max_line_size = 20,
                              .max_label_names_per_series = 3,
                              .max_label_name_length = 10,
                              .max_label_value_length = 10,
                              .allow_structured_metadata = true,
                              .max_structured_metadata_size = 20,
                              .max_structured_metadata_entries = 2};
}

static int decode(const char *body, bool legacy, st_push_t **p, st_push_errors_t *e)
{
    st_push_limits_t lim = limits();
    assert_int_equal(st_push_new("t", p), 0);
    memset(e, 0, sizeof *e);
    return st_push_decode_json(st_cstr(body), legacy, &lim, *p, e);
}

static void test_ok_and_merge(void **state)
{
    (void)state;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode("{\"streams\":[{\"stream\":{\"job\":\"a\",\"env\":\"p\"},\"values\":[[\"1724240000000000000\",\"one\"]]},"
                            "{\"values\":[[\"1724240000000000001\",\"two\",{\"trace\":\"x\"}]],\"stream\":{\"env\":\"p\",\"job\":\"a\"}}]}",
                            false, &p, &e),
                     0);
    assert_int_equal(st_push_nstreams(p), 1); /* same label set merged */
    assert_true(st_push_entries(p) == 2);
    assert_true(st_str_eqc(st_push_stream_labels(p, 0), "{env=\"p\", job=\"a\"}"));
    assert_int_equal(e.count, 0);
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_validation_messages(void **state)
{
    (void)state;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode("{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":["
                            "[\"1724240000000000000\",\"ok\"],"
                            "[\"1000000000000000000\",\"old\"],"
                            "[\"1824240000000000000\",\"future\"],"
                            "[\"1724240000000000000\",\"this line is far too long\"]]}]}",
                            false, &p, &e),
                     0);
    assert_true(st_push_entries(p) == 1);
    const char *t = st_buf_cstr(&e.text);
    assert_non_null(strstr(t, "1 errors like: entry for stream '{job=\"a\"}' has timestamp too old: 2001-09-09T01:46:40Z, "
                              "oldest acceptable timestamp is: 2024-08-14T11:33:20Z"));
    assert_non_null(strstr(t, "1 errors like: entry for stream '{job=\"a\"}' has timestamp too new: 2027-10-22T"));
    assert_non_null(strstr(t, "1 errors like: max entry size '20' bytes exceeded for stream '{job=\"a\"}' while adding an "
                              "entry with length '25' bytes"));
    st_push_errors_free(&e);
    st_push_free(p);

    /* one failing stream, repeated: a single message is bare, repeats are counted */
    assert_int_equal(decode("{\"streams\":[{\"stream\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\",\"d\":\"4\"},\"values\":[[\"1724240000000000000\",\"x\"]]}]}",
                            false, &p, &e),
                     0);
    assert_string_equal(st_buf_cstr(&e.text), "entry for stream '{a=\"1\", b=\"2\", c=\"3\", d=\"4\"}' has 4 label names; limit 3");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode("{\"streams\":[{\"stream\":{},\"values\":[]},{\"stream\":{\"x\":\"\"},\"values\":[]}]}", false, &p, &e), 0);
    assert_string_equal(st_buf_cstr(&e.text), "2 errors like: error at least one label pair is required per stream");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode("{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1724240000000000000\",\"x\",{\"k1\":\"v\",\"k2\":\"v\",\"k3\":\"v\"}]]}]}",
                            false, &p, &e),
                     0);
    assert_non_null(strstr(st_buf_cstr(&e.text), "has too many structured metadata labels: '3', limit: '2'"));
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode("{\"streams\":[{\"stream\":{\"verylonglabelname\":\"a\"},\"values\":[]}]}", false, &p, &e), 0);
    assert_string_equal(st_buf_cstr(&e.text), "stream '{verylonglabelname=\"a\"}' has label name too long: 'verylonglabelname'");
    st_push_errors_free(&e);
    st_push_free(p);
}

/* Table 1.6 disallowed_structured_metadata (no configuration key reaches it in the server yet):
 * the entry with metadata is refused with Loki's text, the one without is kept. */
static void test_disallowed_structured_metadata(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    lim.allow_structured_metadata = false;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(st_push_new("t", &p), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(st_push_decode_json(st_cstr("{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":["
                                                 "[\"1724240000000000000\",\"kept\"],"
                                                 "[\"1724240000000000001\",\"x\",{\"k\":\"v\"}]]}]}"),
                                         false, &lim, p, &e),
                     0);
    st_push_errors_finish(&e);
    assert_string_equal(st_buf_cstr(&e.text),
                        "stream '{job=\"a\"}' includes structured metadata, but this feature is disallowed. Please see "
                        "`limits_config.allow_structured_metadata` or contact your Loki administrator to enable it.");
    assert_true(st_push_entries(p) == 1);
    st_push_errors_free(&e);
    st_push_free(p);
}

/* A message longer than any fixed buffer (the label value is quoted twice) arrives whole. */
static void test_long_message_not_cut(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    lim.max_label_value_length = 3000;
    char v[3002];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    st_buf_t body = ST_BUF_INIT, want = ST_BUF_INIT;
    st_buf_printf(&body, "{\"streams\":[{\"stream\":{\"v\":\"%s\"},\"values\":[[\"1724240000000000000\",\"l\"]]}]}", v);
    st_buf_printf(&want, "stream '{v=\"%s\"}' has label value too long: '%s'", v, v);
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(st_push_new("t", &p), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(st_push_decode_json(st_str(body.data, body.len), false, &lim, p, &e), 0);
    st_push_errors_finish(&e);
    assert_string_equal(st_buf_cstr(&e.text), st_buf_cstr(&want));
    st_buf_free(&body);
    st_buf_free(&want);
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_fatal(void **state)
{
    (void)state;
    const char *bad[] = {"{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[1724240000000000000,\"numeric ts\"]]}]}",
                         "{\"streams\":[{\"stream\":{\"a.b\":\"x\"},\"values\":[]}]}",
                         "{\"streams\":[{\"stream\":{\"job\":1},\"values\":[]}]}",
                         "{\"streams\":[{\"stream\":{\"job\":\"a\"},\"values\":[[\"1\",\"x\",{},\"extra\"]]}]}",
                         "{\"streams\": [",
                         "not json"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_push_t *p;
        st_push_errors_t e;
        assert_int_equal(decode(bad[i], false, &p, &e), ST_EPARSE);
        assert_true(e.text.len > 0);
        st_push_errors_free(&e);
        st_push_free(p);
    }
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode("{\"streams\":[]}", false, &p, &e), ST_ENOTFOUND);
    assert_string_equal(st_buf_cstr(&e.text), "error at least one valid stream is required for ingestion");
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_legacy(void **state)
{
    (void)state;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode("{\"streams\":[{\"labels\":\"{job=\\\"old\\\"}\",\"entries\":[{\"ts\":\"2024-08-21T11:33:20.5Z\",\"line\":\"legacy\"}]}]}",
                            true, &p, &e),
                     0);
    assert_true(st_push_entries(p) == 1);
    assert_true(st_str_eqc(st_push_stream_labels(p, 0), "{job=\"old\"}"));
    st_push_errors_free(&e);
    st_push_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_ok_and_merge), cmocka_unit_test(test_validation_messages),
                                       cmocka_unit_test(test_fatal), cmocka_unit_test(test_legacy),
                                       cmocka_unit_test(test_disallowed_structured_metadata),
                                       cmocka_unit_test(test_long_message_not_cut)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
