/* test_push_proto.c: Loki's protobuf push bodies (snappy block + logproto PushRequest): the wire
 * format against hand-assembled bytes, decoding into entries (captured through --wrap), label parse
 * failures, timestamp range, structured metadata, the snappy size limit and the decorations. */
#include "testutil.h"

#include "capture.h"
#include "common/err.h"
#include "ingester/ingester.h"
#include "ingester/proto/push.pb-c.h"

#include <snappy-c.h>

#define NOW INT64_C(1724240000000000000) /* 2024-08-21T11:33:20Z */

static st_push_limits_t limits(void)
{
    return (st_push_limits_t){.now_ns = NOW,
                              .reject_old_samples = true,
                              .reject_old_samples_max_age_ns = INT64_C(7) * 86400 * 1000000000,
                              .creation_grace_period_ns = INT64_C(600) * 1000000000,
                              .max_line_size = 64,
                              .max_label_names_per_series = 15,
                              .max_label_name_length = 1024,
                              .max_label_value_length = 2048,
                              .allow_structured_metadata = true,
                              .max_structured_metadata_size = 1024,
                              .max_structured_metadata_entries = 8};
}

/* ---- building requests with the generated code ------------------------------------------------- */

typedef struct {
    Strata__Push__PushRequest req;
    Strata__Push__Stream st[8], *stp[8];
    Strata__Push__Entry en[8][8], *enp[8][8];
    Strata__Push__Timestamp ts[8][8];
    Strata__Push__LabelPair lp[8][8][4], *lpp[8][8][4];
} build_t;

static ProtobufCBinaryData bd(const char *s, size_t n)
{
    return (ProtobufCBinaryData){n, (uint8_t *)(uintptr_t)s};
}
static ProtobufCBinaryData bs(const char *s)
{
    return bd(s, strlen(s));
}

static void b_init(build_t *b)
{
    memset(b, 0, sizeof *b);
    strata__push__push_request__init(&b->req);
    b->req.streams = b->stp;
}

static size_t b_stream(build_t *b, const char *labels)
{
    size_t i = b->req.n_streams++;
    strata__push__stream__init(&b->st[i]);
    b->st[i].labels = bs(labels);
    b->st[i].entries = b->enp[i];
    b->stp[i] = &b->st[i];
    return i;
}

static size_t b_entry(build_t *b, size_t s, int64_t sec, int32_t nanos, const char *line, size_t line_n)
{
    size_t j = b->st[s].n_entries++;
    Strata__Push__Entry *e = &b->en[s][j];
    strata__push__entry__init(e);
    strata__push__timestamp__init(&b->ts[s][j]);
    b->ts[s][j].seconds = sec;
    b->ts[s][j].nanos = nanos;
    e->timestamp = &b->ts[s][j];
    e->line = bd(line, line_n);
    e->structured_metadata = b->lpp[s][j];
    b->enp[s][j] = e;
    return j;
}

static void b_md(build_t *b, size_t s, size_t j, const char *name, const char *value)
{
    Strata__Push__Entry *e = &b->en[s][j];
    size_t k = e->n_structured_metadata++;
    strata__push__label_pair__init(&b->lp[s][j][k]);
    b->lp[s][j][k].name = bs(name);
    b->lp[s][j][k].value = bs(value);
    b->lpp[s][j][k] = &b->lp[s][j][k];
}

/* Packs and snappy-compresses the request. */
static void b_body(build_t *b, st_buf_t *out)
{
    size_t n = strata__push__push_request__get_packed_size(&b->req);
    uint8_t *raw = malloc(n + 1);
    assert_int_equal(strata__push__push_request__pack(&b->req, raw), n);
    size_t cn = snappy_max_compressed_length(n);
    st_buf_reset(out);
    assert_int_equal(st_buf_reserve(out, cn), 0);
    assert_int_equal(snappy_compress((const char *)raw, n, out->data, &cn), SNAPPY_OK);
    out->len = cn;
    free(raw);
}

static int decode(st_str_t body, size_t max, const st_push_limits_t *lim, st_push_t **p, st_push_errors_t *e)
{
    cap_reset();
    assert_int_equal(st_push_new("t", p), 0);
    memset(e, 0, sizeof *e);
    return st_push_decode_proto(body, max, lim, *p, e);
}

/* ---- tests ----------------------------------------------------------------------------------------- */

/* The generated encoder writes exactly the bytes assembled by hand from the field table (reference
 * 1.3), so the field numbers of push.proto are Loki's; the decoder reads them back. */
static void test_wire_bytes(void **state)
{
    (void)state;
    static const char want[] =
        "\x0a\x28\x0a\x09\x7b\x6a\x6f\x62\x3d\x22\x61\x22\x7d\x12\x1b\x0a\x08\x08\x80\xa1\x97"
        "\xb6\x06\x10\x05\x12\x01\x78\x1a\x0c\x0a\x05\x74\x72\x61\x63\x65\x12\x03\x61\x62\x63";
    build_t *b = malloc(sizeof *b);
    b_init(b);
    size_t s = b_stream(b, "{job=\"a\"}");
    size_t j = b_entry(b, s, 1724240000, 5, "x", 1);
    b_md(b, s, j, "trace", "abc");
    size_t n = strata__push__push_request__get_packed_size(&b->req);
    assert_int_equal(n, sizeof want - 1);
    uint8_t raw[64];
    strata__push__push_request__pack(&b->req, raw);
    assert_memory_equal(raw, want, n);
    free(b);

    /* the hand-assembled bytes, snappy-compressed, decode to the entry */
    char comp[128];
    size_t cn = sizeof comp;
    assert_int_equal(snappy_compress(want, sizeof want - 1, comp, &cn), SNAPPY_OK);
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(comp, cn), 1 << 20, &lim, &p, &e), 0);
    assert_int_equal(ncap, 1);
    assert_string_equal(cap[0].labels, "{job=\"a\"}");
    assert_true(cap[0].ts == INT64_C(1724240000000000005));
    assert_string_equal(cap[0].line, "x");
    assert_string_equal(cap[0].md, "trace=abc");
    assert_int_equal(e.count, 0);
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_decode_streams(void **state)
{
    (void)state;
    build_t *b = malloc(sizeof *b);
    b_init(b);
    size_t s0 = b_stream(b, "{job=\"api\", env=\"prod\"}");
    size_t j = b_entry(b, s0, 1724240000, 1, "first", 5);
    b_md(b, s0, j, "user", "u1");
    b_md(b, s0, j, "empty", ""); /* empty values are dropped */
    b_entry(b, s0, 1724240000, 2, "nul\0byte", 8);
    size_t s1 = b_stream(b, "{env=\"prod\",job=\"api\"}"); /* same set, other spelling: merged */
    b_entry(b, s1, 1724240001, 0, "third", 5);
    size_t s2 = b_stream(b, "{job=\"other\", drop=\"\"}"); /* empty label value dropped */
    b_entry(b, s2, 1724240002, 0, "fourth", 6);
    /* parsed (4) and hash (3) are ignored */
    Strata__Push__LabelPair parsed = STRATA__PUSH__LABEL_PAIR__INIT, *pp = &parsed;
    parsed.name = bs("p");
    parsed.value = bs("q");
    b->en[s2][0].n_parsed = 1;
    b->en[s2][0].parsed = &pp;
    b->st[s2].hash = 12345;
    b->req.format = bs("loki");
    st_buf_t body = ST_BUF_INIT;
    b_body(b, &body);
    free(b);

    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), 1 << 20, &lim, &p, &e), 0);
    assert_int_equal(st_push_nstreams(p), 2);
    assert_true(st_push_entries(p) == 4);
    assert_int_equal(ncap, 4);
    assert_string_equal(cap[0].labels, "{env=\"prod\", job=\"api\"}");
    assert_string_equal(cap[0].line, "first");
    assert_string_equal(cap[0].md, "user=u1");
    assert_int_equal(cap[1].line_n, 8);
    assert_memory_equal(cap[1].line, "nul\0byte", 8);
    assert_string_equal(cap[1].md, "");
    assert_string_equal(cap[2].labels, "{env=\"prod\", job=\"api\"}");
    assert_true(cap[2].ts == INT64_C(1724240001000000000));
    assert_string_equal(cap[3].labels, "{job=\"other\"}");
    assert_string_equal(cap[3].md, "");
    assert_int_equal(e.count, 0);
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
}

static void test_labels_parse_failure(void **state)
{
    (void)state;
    build_t *b = malloc(sizeof *b);
    b_init(b);
    b_entry(b, b_stream(b, "{job=\"ok\"}"), 1724240000, 0, "a", 1);
    b_entry(b, b_stream(b, "{job=\"a\""), 1724240000, 0, "b", 1);
    st_buf_t body = ST_BUF_INIT;
    b_body(b, &body);
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), 1 << 20, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text),
                        "couldn't parse labels: 1:9: parse error: unexpected end of input");
    assert_int_equal(ncap, 0); /* nothing of the request was added */
    assert_true(st_push_entries(p) == 0);
    st_push_errors_free(&e);
    st_push_free(p);

    /* a bad label string rejects even when its stream has no entries */
    b_init(b);
    b_entry(b, b_stream(b, "{job=\"ok\"}"), 1724240000, 0, "a", 1);
    b_stream(b, "job=x");
    b_body(b, &body);
    assert_int_equal(decode(st_str(body.data, body.len), 1 << 20, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text),
                        "couldn't parse labels: 1:1: parse error: unexpected character, expected \"{\"");
    st_push_errors_free(&e);
    st_push_free(p);
    free(b);
    st_buf_free(&body);
}

static int decode_ts(int64_t sec, int32_t nanos, bool present, st_push_limits_t *lim, st_push_t **p,
                     st_push_errors_t *e)
{
    build_t *b = malloc(sizeof *b);
    b_init(b);
    size_t s = b_stream(b, "{job=\"t\"}");
    size_t j = b_entry(b, s, sec, nanos, "l", 1);
    if (!present) b->en[s][j].timestamp = NULL;
    st_buf_t body = ST_BUF_INIT;
    b_body(b, &body);
    free(b);
    int rc = decode(st_str(body.data, body.len), 1 << 20, lim, p, e);
    st_buf_free(&body);
    return rc;
}

static void test_timestamp_range(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode_ts(INT64_C(-62135596801), 0, true, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text),
                        "timestamp: &types.Timestamp{Seconds: -62135596801,\nNanos: 0,\n} before 0001-01-01");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode_ts(INT64_C(253402300800), 0, true, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text),
                        "timestamp: &types.Timestamp{Seconds: 253402300800,\nNanos: 0,\n} after 10000-01-01");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode_ts(1724240000, -1, true, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(
        st_buf_cstr(&e.text),
        "timestamp: &types.Timestamp{Seconds: 1724240000,\nNanos: -1,\n}: nanos not in range [0, 1e9)");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode_ts(1724240000, 1000000000, true, &lim, &p, &e), ST_EPARSE);
    assert_non_null(strstr(st_buf_cstr(&e.text), "nanos not in range [0, 1e9)"));
    st_push_errors_free(&e);
    st_push_free(p);

    /* the extremes of the valid range are accepted by the decoder; int64 nanoseconds clamp them */
    lim.reject_old_samples = false;
    lim.creation_grace_period_ns = INT64_MAX / 2;
    assert_int_equal(decode_ts(INT64_C(-62135596800), 0, true, &lim, &p, &e), 0);
    assert_int_equal(ncap, 1);
    assert_true(cap[0].ts == INT64_C(-9223372036000000000));
    st_push_errors_free(&e);
    st_push_free(p);
    lim = limits();
    assert_int_equal(decode_ts(INT64_C(253402300799), 999999999, true, &lim, &p, &e), 0);
    assert_int_equal(ncap, 0);
    assert_string_equal(st_buf_cstr(&e.text),
                        "entry for stream '{job=\"t\"}' has timestamp too new: 2262-04-11T23:47:16Z");
    st_push_errors_free(&e);
    st_push_free(p);
    /* an absent timestamp is Go's zero time (year 1): too old */
    assert_int_equal(decode_ts(0, 0, false, &lim, &p, &e), 0);
    assert_int_equal(ncap, 0);
    assert_non_null(strstr(st_buf_cstr(&e.text), "has timestamp too old: 1677-09-21T00:12:44Z"));
    st_push_errors_free(&e);
    st_push_free(p);
    /* nanosecond precision is kept */
    assert_int_equal(decode_ts(1724240000, 999999999, true, &lim, &p, &e), 0);
    assert_true(cap[0].ts == INT64_C(1724240000999999999));
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_snappy_limits(void **state)
{
    (void)state;
    char raw[1000];
    memset(raw, 'a', sizeof raw);
    char comp[2048];
    size_t cn = sizeof comp;
    assert_int_equal(snappy_compress(raw, sizeof raw, comp, &cn), SNAPPY_OK);
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(comp, cn), 999, &lim, &p, &e), ST_ELIMIT);
    assert_string_equal(st_buf_cstr(&e.text), "request body too large: 1000 bytes, limit: 999 bytes");
    st_push_errors_free(&e);
    st_push_free(p);
    /* exactly at the limit: decompressed, then fails as protobuf ('a' is not a valid tag) */
    assert_int_equal(decode(st_str(comp, cn), 1000, &lim, &p, &e), ST_EPARSE);
    assert_non_null(strstr(st_buf_cstr(&e.text), "proto:"));
    st_push_errors_free(&e);
    st_push_free(p);
    /* a header promising far more than the input could hold is corrupt, not a 4 GiB allocation */
    assert_int_equal(decode(st_str("\xff\xff\xff\xff\x0f\x00", 6), SIZE_MAX, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "snappy: corrupt input");
    st_push_errors_free(&e);
    st_push_free(p);
    /* empty and garbage bodies */
    assert_int_equal(decode(st_str("", 0), 1 << 20, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "snappy: corrupt input");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode(st_str("\x0a\x10"
                                   "ab",
                                   4),
                            1 << 20, &lim, &p, &e),
                     ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "snappy: corrupt input");
    st_push_errors_free(&e);
    st_push_free(p);
    /* a valid, empty PushRequest: 422 */
    assert_int_equal(decode(st_str("\x00", 1), 1 << 20, &lim, &p, &e), ST_ENOTFOUND);
    assert_string_equal(st_buf_cstr(&e.text), "error at least one valid stream is required for ingestion");
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_validation_and_decorations(void **state)
{
    (void)state;
    build_t *b = malloc(sizeof *b);
    b_init(b);
    size_t s = b_stream(b, "{app=\"shop\", env=\"p\"}");
    b_entry(b, s, 1724240000, 0, "level=warn msg=hi", 17);
    b_entry(b, s, 1000000000, 0, "old", 3);
    size_t j = b_entry(b, s, 1724240000, 1, "{\"msg\":\"x\"}", 11);
    b_md(b, s, j, "severity", "ERROR");
    st_buf_t body = ST_BUF_INIT;
    b_body(b, &body);
    free(b);
    st_push_limits_t lim = limits();
    static const st_str_t names[] = {ST_STR("service"), ST_STR("app")};
    lim.discover_service_name = names;
    lim.discover_service_name_n = 2;
    lim.discover_log_levels = true;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), 1 << 20, &lim, &p, &e), 0);
    assert_int_equal(ncap, 2);
    assert_string_equal(cap[0].labels, "{app=\"shop\", env=\"p\", service_name=\"shop\"}");
    assert_string_equal(cap[0].md, "detected_level=warn");
    assert_string_equal(cap[1].md, "severity=ERROR;detected_level=error");
    assert_string_equal(
        st_buf_cstr(&e.text),
        "entry for stream '{app=\"shop\", env=\"p\", service_name=\"shop\"}' has timestamp too old: "
        "2001-09-09T01:46:40Z, oldest acceptable timestamp is: 2024-08-14T11:33:20Z");
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_bytes),           cmocka_unit_test(test_decode_streams),
        cmocka_unit_test(test_labels_parse_failure), cmocka_unit_test(test_timestamp_range),
        cmocka_unit_test(test_snappy_limits),        cmocka_unit_test(test_validation_and_decorations),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cap_reset();
    return rc;
}
