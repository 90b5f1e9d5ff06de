/* test_cwlogs.c: the CloudWatch Logs client's offline parts: log group / stream name rules, retention
 * values, PutLogEvents batch planning (event and byte limits with the 26-byte overhead, 24 h span,
 * order, the 14 d / 2 h window, oversized and empty events), message sizes as CloudWatch counts them,
 * stable sorting, and the JSON response parsers. */
#include "testutil.h"

#include "common/err.h"
#include "objstore/objstore.h"

#define S(lit) lit, sizeof(lit) - 1
#define NOW    1795000000000LL /* ms */

static void test_names(void **state)
{
    (void)state;
    assert_true(st_cw_group_name_valid(st_cstr("/aws/lambda/my-fn_1.x#2")));
    assert_true(st_cw_group_name_valid(st_cstr("a")));
    assert_false(st_cw_group_name_valid(st_cstr("")));
    assert_false(st_cw_group_name_valid(st_cstr("has space")));
    assert_false(st_cw_group_name_valid(st_cstr("colon:x")));
    assert_false(st_cw_group_name_valid(st_cstr("star*")));
    assert_false(st_cw_group_name_valid(st_cstr("caf\xC3\xA9")));
    char big[600];
    memset(big, 'a', sizeof big);
    assert_true(st_cw_group_name_valid(st_str(big, 512)));
    assert_false(st_cw_group_name_valid(st_str(big, 513)));
    assert_true(st_cw_stream_name_valid(st_str(big, 512)));
    assert_false(st_cw_stream_name_valid(st_str(big, 513)));

    assert_true(st_cw_stream_name_valid(st_cstr("2026/11/26/[$LATEST]abc {job=\"x\"} caf\xC3\xA9")));
    assert_false(st_cw_stream_name_valid(st_cstr("")));
    assert_false(st_cw_stream_name_valid(st_cstr("a:b")));
    assert_false(st_cw_stream_name_valid(st_cstr("a*b")));
    assert_false(st_cw_stream_name_valid(st_str("a\0b", 3)));
    assert_false(st_cw_stream_name_valid(st_cstr("bad\xFFutf8")));
}

static void test_retention_values(void **state)
{
    (void)state;
    assert_int_equal(st_cw_nretention_values, 22);
    assert_true(st_cw_retention_valid(1));
    assert_true(st_cw_retention_valid(2557));
    assert_true(st_cw_retention_valid(3653));
    assert_false(st_cw_retention_valid(0));
    assert_false(st_cw_retention_valid(2555));
    assert_false(st_cw_retention_valid(10));
    assert_int_equal(st_cw_retention_at_least(0), 1);
    assert_int_equal(st_cw_retention_at_least(1), 1);
    assert_int_equal(st_cw_retention_at_least(2), 3);
    assert_int_equal(st_cw_retention_at_least(10), 14);
    assert_int_equal(st_cw_retention_at_least(366), 400);
    assert_int_equal(st_cw_retention_at_least(2555), 2557);
    assert_int_equal(st_cw_retention_at_least(3653), 3653);
    assert_int_equal(st_cw_retention_at_least(99999), 3653);
    for (size_t i = 1; i < st_cw_nretention_values; i++)
        assert_true(st_cw_retention_values[i - 1] < st_cw_retention_values[i]);
}

static void test_message_size(void **state)
{
    (void)state;
    assert_int_equal(st_cw_message_size(st_cstr("hello")), 5);
    assert_int_equal(st_cw_message_size(st_cstr("caf\xC3\xA9")), 5);      /* é: 2 bytes */
    assert_int_equal(st_cw_message_size(st_cstr("\xF0\x9F\x98\x80")), 4); /* emoji */
    assert_int_equal(st_cw_message_size(st_cstr("a\xFF"
                                                "b")),
                     5);                                              /* bad byte -> U+FFFD */
    assert_int_equal(st_cw_message_size(st_cstr("\xE2\x82")), 6);     /* truncated: 2 x U+FFFD */
    assert_int_equal(st_cw_message_size(st_cstr("\xED\xA0\x80")), 9); /* surrogate: 3 x U+FFFD */
    assert_int_equal(st_cw_message_size(st_cstr("tab\there\n")), 9);  /* escapes are decoded by AWS */
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_cw_message_normalize(st_cstr("a\xFF"
                                                     "b\xC3\xA9"),
                                             &b),
                     0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data,
                        "a\xEF\xBF\xBD"
                        "b\xC3\xA9",
                        7);
    assert_int_equal(st_cw_message_size(st_str(b.data, b.len)), b.len);
    st_buf_free(&b);
}

static st_cw_put_event_t *gen(size_t n, int64_t ts0, int64_t step, const char *msg)
{
    st_cw_put_event_t *ev = calloc(n, sizeof *ev);
    for (size_t i = 0; i < n; i++) ev[i] = (st_cw_put_event_t){ts0 + (int64_t)i * step, st_cstr(msg)};
    return ev;
}

/* Checks the invariants every plan must hold: batch numbers non-decreasing and dense, each batch
 * sorted, within the limits, below the span. */
static void check_plan(const st_cw_put_event_t *ev, size_t n, const int32_t *plan, size_t nb,
                       const st_cw_limits_t *lim)
{
    size_t max_events = lim && lim->max_events ? lim->max_events : ST_CW_MAX_BATCH_EVENTS;
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : ST_CW_MAX_BATCH_BYTES;
    int32_t cur = -1;
    size_t cnt = 0, bytes = 0;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < n; i++) {
        if (plan[i] < 0) continue;
        if (plan[i] != cur) {
            assert_int_equal(plan[i], cur + 1);
            cur = plan[i];
            cnt = 0;
            bytes = 0;
            first = ev[i].timestamp_ms;
        } else {
            assert_true(ev[i].timestamp_ms >= last);
        }
        cnt++;
        bytes += st_cw_message_size(ev[i].message) + ST_CW_EVENT_OVERHEAD;
        last = ev[i].timestamp_ms;
        assert_true(cnt <= max_events);
        assert_true(bytes <= max_bytes);
        assert_true(last - first < ST_CW_MAX_SPAN_MS);
    }
    assert_int_equal((size_t)(cur + 1), nb);
}

static void test_plan_counts_and_bytes(void **state)
{
    (void)state;
    /* 25,000 small events: 10,000 per batch */
    size_t n = 25000;
    st_cw_put_event_t *ev = gen(n, NOW - 60000, 1, "x");
    int32_t *plan = calloc(n, sizeof *plan);
    size_t nb = st_cw_plan_batches(ev, n, NOW, NULL, plan);
    assert_int_equal(nb, 3);
    assert_int_equal(plan[9999], 0);
    assert_int_equal(plan[10000], 1);
    assert_int_equal(plan[24999], 2);
    check_plan(ev, n, plan, nb, NULL);
    free(ev);
    free(plan);

    /* 1000-byte messages: the 26 bytes of overhead count, 1022 fit in 1,048,576 (1023 would not) */
    static char big[1001];
    memset(big, 'm', 1000);
    n = 3000;
    ev = gen(n, NOW - 60000, 1, big);
    plan = calloc(n, sizeof *plan);
    nb = st_cw_plan_batches(ev, n, NOW, NULL, plan);
    assert_int_equal(nb, 3);
    assert_int_equal(plan[1021], 0);
    assert_int_equal(plan[1022], 1);
    check_plan(ev, n, plan, nb, NULL);
    free(ev);
    free(plan);

    /* an event of exactly max bytes alone fits; one byte more is skipped as too large */
    size_t maxmsg = ST_CW_MAX_BATCH_BYTES - ST_CW_EVENT_OVERHEAD;
    char *huge = malloc(maxmsg + 2);
    memset(huge, 'h', maxmsg + 1);
    st_cw_put_event_t e2[3] = {
        {NOW, st_str(huge, maxmsg)}, {NOW, st_str(huge, maxmsg + 1)}, {NOW, st_cstr("ok")}};
    int32_t p2[3];
    nb = st_cw_plan_batches(e2, 3, NOW, NULL, p2);
    assert_int_equal(nb, 2);
    assert_int_equal(p2[0], 0);
    assert_int_equal(p2[1], -ST_CW_SKIP_TOO_LARGE);
    assert_int_equal(p2[2], 1);
    free(huge);

    /* small limits for the boundaries */
    st_cw_limits_t lim = {.max_events = 3, .max_bytes = 3 * (26 + 4)};
    st_cw_put_event_t e3[7];
    for (int i = 0; i < 7; i++) e3[i] = (st_cw_put_event_t){NOW + i, st_cstr("abcd")};
    int32_t p3[7];
    nb = st_cw_plan_batches(e3, 7, NOW, &lim, p3);
    assert_int_equal(nb, 3);
    check_plan(e3, 7, p3, nb, &lim);
    lim.max_events = 100;
    lim.max_bytes = 2 * 30 + 29; /* two events fit, a third does not */
    nb = st_cw_plan_batches(e3, 7, NOW, &lim, p3);
    assert_int_equal(nb, 4);
    assert_int_equal(p3[2], 1);
}

static void test_plan_order_span_window(void **state)
{
    (void)state;
    /* time going back starts a new batch; nothing is reordered */
    st_cw_put_event_t ev[6] = {{NOW - 50, st_cstr("a")}, {NOW - 40, st_cstr("b")}, {NOW - 45, st_cstr("c")},
                               {NOW - 45, st_cstr("d")}, {NOW - 10, st_cstr("e")}, {NOW - 11, st_cstr("f")}};
    int32_t plan[6];
    size_t nb = st_cw_plan_batches(ev, 6, NOW, NULL, plan);
    assert_int_equal(nb, 3);
    int32_t want[6] = {0, 0, 1, 1, 1, 2};
    assert_memory_equal(plan, want, sizeof want);

    /* a batch must span less than 24 hours */
    int64_t h = 3600 * 1000;
    st_cw_put_event_t sp[4] = {{NOW - 30 * h, st_cstr("a")},
                               {NOW - 7 * h - 1, st_cstr("b")},
                               {NOW - 6 * h, st_cstr("c")},
                               {NOW - 6 * h + 1, st_cstr("d")}};
    int32_t ps[4];
    nb = st_cw_plan_batches(sp, 4, NOW, NULL, ps);
    assert_int_equal(nb, 2);
    assert_int_equal(ps[1], 0); /* 23 h - 1 ms after the first */
    assert_int_equal(ps[2], 1); /* exactly 24 h: too far */
    check_plan(sp, 4, ps, nb, NULL);

    /* the acceptance window: older than 14 days, more than 2 hours ahead, empty */
    st_cw_put_event_t w[6] = {{NOW - ST_CW_MAX_AGE_MS - 1, st_cstr("old")},
                              {NOW - ST_CW_MAX_AGE_MS, st_cstr("oldest ok")},
                              {NOW, st_cstr("")},
                              {NOW, st_cstr("now")},
                              {NOW + ST_CW_MAX_FUTURE_MS, st_cstr("newest ok")},
                              {NOW + ST_CW_MAX_FUTURE_MS + 1, st_cstr("future")}};
    int32_t pw[6];
    nb = st_cw_plan_batches(w, 6, NOW, NULL, pw);
    assert_int_equal(pw[0], -ST_CW_SKIP_TOO_OLD);
    assert_int_equal(pw[2], -ST_CW_SKIP_EMPTY);
    assert_int_equal(pw[5], -ST_CW_SKIP_TOO_NEW);
    assert_true(pw[1] >= 0 && pw[3] >= 0 && pw[4] >= 0);
    /* oldest ok .. newest ok spans 14 d + 2 h: split by the 24 h rule */
    assert_int_equal(nb, 2);
    assert_int_equal(pw[1], 0);
    assert_int_equal(pw[3], 1);
    assert_int_equal(pw[4], 1);
    assert_string_equal(st_cw_skip_name(ST_CW_SKIP_TOO_OLD), "too_old");
    assert_string_equal(st_cw_skip_name(ST_CW_SKIP_EMPTY), "empty");

    /* nothing to send */
    assert_int_equal(st_cw_plan_batches(NULL, 0, NOW, NULL, NULL), 0);
}

static void test_sort_stable(void **state)
{
    (void)state;
    size_t n = 1000;
    st_cw_put_event_t *ev = calloc(n, sizeof *ev);
    char(*msg)[8] = calloc(n, 8);
    for (size_t i = 0; i < n; i++) {
        snprintf(msg[i], 8, "%zu", i);
        ev[i] = (st_cw_put_event_t){(int64_t)((i * 7919) % 37), st_cstr(msg[i])};
    }
    assert_int_equal(st_cw_sort_events(ev, n), 0);
    for (size_t i = 1; i < n; i++) {
        assert_true(ev[i - 1].timestamp_ms <= ev[i].timestamp_ms);
        if (ev[i - 1].timestamp_ms == ev[i].timestamp_ms)
            assert_true(strtoul(ev[i - 1].message.p, NULL, 10) < strtoul(ev[i].message.p, NULL, 10));
    }
    free(ev);
    free(msg);
}

static void test_parsers(void **state)
{
    (void)state;
    st_s3_error_t e;
    memset(&e, 0, sizeof e);
    assert_int_equal(
        st_cw_parse_error(S("{\"__type\":\"com.amazonaws.logs#ThrottlingException\",\"message\":\"Rate "
                            "exceeded\"}"),
                          &e),
        0);
    assert_string_equal(e.code, "ThrottlingException");
    assert_string_equal(e.message, "Rate exceeded");
    memset(&e, 0, sizeof e);
    assert_int_equal(
        st_cw_parse_error(S("{\"Message\":\"m\",\"__type\":\"ResourceNotFoundException:http://x\"}"), &e), 0);
    assert_string_equal(e.code, "ResourceNotFoundException");
    assert_string_equal(e.message, "m");
    assert_int_equal(st_cw_parse_error(S("<html>503</html>"), &e), ST_EPARSE);
    assert_int_equal(st_cw_parse_error(S("{\"message\":\"no type\"}"), &e), ST_EPARSE);

    st_cw_rejected_t r;
    assert_int_equal(st_cw_parse_put_result(S(""), &r), 0);
    assert_int_equal(r.too_old_end, -1);
    assert_int_equal(
        st_cw_parse_put_result(S("{\"nextSequenceToken\":\"49\",\"rejectedLogEventsInfo\":{"
                                 "\"tooOldLogEventEndIndex\":2,\"tooNewLogEventStartIndex\":7}}"),
                               &r),
        0);
    assert_int_equal(r.too_old_end, 2);
    assert_int_equal(r.too_new_start, 7);
    assert_int_equal(r.expired_end, -1);
    assert_int_equal(
        st_cw_parse_put_result(S("{\"__type\":\"InvalidSequenceTokenException\",\"expectedSequenceToken\":"
                                 "\"4960\",\"message\":\"x\"}"),
                               &r),
        0);
    assert_string_equal(r.expected_token, "4960");
    assert_int_equal(st_cw_parse_put_result(S("{\"rejectedLogEventsInfo\":null}"), &r), 0);
    assert_int_equal(st_cw_parse_put_result(S("{"), &r), ST_EPARSE);

    st_cw_groups_t g;
    assert_int_equal(
        st_cw_parse_groups(
            S("{\"logGroups\":[{\"logGroupName\":\"/a\",\"creationTime\":1700000000000,"
              "\"retentionInDays\":30,\"storedBytes\":12,\"arn\":\"arn:x\",\"tags\":{\"k\":[1,2]}},"
              "{\"logGroupName\":\"/b\"}],\"nextToken\":\"t1\"}"),
            &g),
        0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.v[0].name, "/a");
    assert_int_equal(g.v[0].retention_days, 30);
    assert_int_equal(g.v[0].stored_bytes, 12);
    assert_int_equal(g.v[1].retention_days, 0);
    assert_string_equal(g.next_token, "t1");
    st_cw_groups_free(&g);
    assert_int_equal(st_cw_parse_groups(S("{\"logGroups\":[],\"nextToken\":null}"), &g), 0);
    assert_null(g.next_token);
    st_cw_groups_free(&g);
    assert_int_equal(st_cw_parse_groups(S("{\"logGroups\":[{\"retentionInDays\":1}]}"), &g), ST_EPARSE);
    assert_int_equal(g.n, 0);

    st_cw_streams_t s;
    assert_int_equal(
        st_cw_parse_streams(S("{\"logStreams\":[{\"logStreamName\":\"s1\",\"firstEventTimestamp\":5,"
                              "\"lastEventTimestamp\":9,\"lastIngestionTime\":10,\"storedBytes\":0}]}"),
                            &s),
        0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.v[0].name, "s1");
    assert_int_equal(s.v[0].last_event_ms, 9);
    assert_null(s.next_token);
    st_cw_streams_free(&s);

    st_cw_events_t ev;
    assert_int_equal(
        st_cw_parse_events(S("{\"events\":[{\"timestamp\":1795000000000,\"message\":\"caf\\u00e9 \\\"q\\\"\","
                             "\"ingestionTime\":1795000000005},{\"timestamp\":1.795e12,\"message\":\"\","
                             "\"logStreamName\":\"st\",\"eventId\":\"42\"}],"
                             "\"nextForwardToken\":\"f/1\",\"nextBackwardToken\":\"b/0\"}"),
                           &ev),
        0);
    assert_int_equal(ev.n, 2);
    assert_int_equal(ev.v[0].timestamp_ms, 1795000000000LL);
    assert_int_equal(ev.v[0].ingestion_ms, 1795000000005LL);
    assert_true(st_str_eqc(ev.v[0].message, "caf\xC3\xA9 \"q\""));
    assert_int_equal(ev.v[1].timestamp_ms, 1795000000000LL);
    assert_int_equal(ev.v[1].message.n, 0);
    assert_true(st_str_eqc(ev.v[1].stream, "st"));
    assert_true(st_str_eqc(ev.v[1].event_id, "42"));
    assert_string_equal(ev.next_token, "f/1");
    assert_string_equal(ev.prev_token, "b/0");
    st_cw_events_free(&ev);
    assert_int_equal(st_cw_parse_events(S("{\"events\":[{\"message\":\"no time\"}]}"), &ev), ST_EPARSE);
    assert_int_equal(st_cw_parse_events(S("{\"events\":[]} trailing"), &ev), ST_EPARSE);
    assert_int_equal(st_cw_parse_events(S("{\"events\":[{\"timestamp\":\"x\"}]}"), &ev), ST_EPARSE);
}

static void test_client_validation(void **state)
{
    (void)state;
    st_cw_config_t cfg = {.endpoint = "http://127.0.0.1:9", .region = "us-east-1", .max_attempts = 1};
    st_cw_client_t *c = NULL;
    assert_int_equal(st_cw_client_create(&cfg, &c), 0);
    /* rejected before anything goes on the wire */
    assert_int_equal(st_cw_create_log_group(c, "bad name", NULL), -EINVAL);
    assert_int_equal(st_cw_create_log_stream(c, "/ok", "a:b", NULL), -EINVAL);
    assert_int_equal(st_cw_put_retention_policy(c, "/ok", 2555, NULL), -EINVAL);
    st_cw_put_event_t e = {NOW, st_cstr("x")};
    assert_int_equal(st_cw_put_log_events(c, "/ok", "s*", &e, 1, NULL, NULL, NULL), -EINVAL);
    st_cw_events_t ev;
    assert_int_equal(st_cw_get_log_events(c, "", "s", NULL, &ev, NULL), -EINVAL);
    st_cw_client_destroy(c);
    cfg.endpoint = NULL;
    cfg.region = "us-east-1/../x";
    assert_int_equal(st_cw_client_create(&cfg, &c), -EINVAL);
    cfg.endpoint = "ftp://x";
    cfg.region = NULL;
    assert_int_equal(st_cw_client_create(&cfg, &c), -EINVAL);
    st_cw_client_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_retention_values),
        cmocka_unit_test(test_message_size),
        cmocka_unit_test(test_plan_counts_and_bytes),
        cmocka_unit_test(test_plan_order_span_window),
        cmocka_unit_test(test_sort_stable),
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_client_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
