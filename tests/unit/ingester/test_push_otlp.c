/* test_push_otlp.c: OTLP logs: the protobuf and JSON decoders and Loki 3's mapping (which resource
 * attributes become labels, exactly which structured metadata every record gets and in what order),
 * body rendering, timestamps, attribute-name sanitising, service_name, errors, the Status body and
 * the bounded zstd/lz4 decoders. Entries are captured through --wrap (capture.h). */
#include "testutil.h"

#include "capture.h"
#include "common/err.h"
#include "ingester/ingester.h"
#include "ingester/proto/otlp_logs.pb-c.h"

#include <math.h>
#include <zstd.h>
#ifdef __has_include
#if __has_include(<lz4frame.h>)
#include <lz4frame.h>
#define HAVE_LZ4_HDR 1
#endif
#endif

#define NOW INT64_C(1724240000000000000)

typedef Strata__Otlp__AnyValue any_t;
typedef Strata__Otlp__KeyValue kv_t;

/* ---- building requests with the generated code (everything from a tracked pool) ---------------- */

static void *pool[4096];
static size_t npool;

static void *T(size_t n)
{
    void *p = calloc(1, n);
    assert_true(npool < 4096);
    pool[npool++] = p;
    return p;
}

static void pool_free(void)
{
    while (npool) free(pool[--npool]);
}

static ProtobufCBinaryData bd(const void *p, size_t n)
{
    void *c = T(n + 1);
    memcpy(c, p, n);
    return (ProtobufCBinaryData){n, c};
}
static ProtobufCBinaryData bs(const char *s)
{
    return bd(s, strlen(s));
}

static any_t *av(void)
{
    any_t *v = T(sizeof *v);
    strata__otlp__any_value__init(v);
    return v;
}
static any_t *av_str(const char *s)
{
    any_t *v = av();
    v->value_case = STRATA__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = bs(s);
    return v;
}
static any_t *av_int(int64_t i)
{
    any_t *v = av();
    v->value_case = STRATA__OTLP__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return v;
}
static any_t *av_bool(bool b)
{
    any_t *v = av();
    v->value_case = STRATA__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b;
    return v;
}
static any_t *av_dbl(double d)
{
    any_t *v = av();
    v->value_case = STRATA__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return v;
}
static any_t *av_bytes(const void *p, size_t n)
{
    any_t *v = av();
    v->value_case = STRATA__OTLP__ANY_VALUE__VALUE_BYTES_VALUE;
    v->bytes_value = bd(p, n);
    return v;
}
static kv_t *kv(const char *k, any_t *v)
{
    kv_t *x = T(sizeof *x);
    strata__otlp__key_value__init(x);
    x->key = bs(k);
    x->value = v;
    return x;
}
static kv_t **kvs(size_t n, kv_t **v)
{
    kv_t **a = T((n ? n : 1) * sizeof *a);
    if (n) memcpy(a, v, n * sizeof *a);
    return a;
}
#define KVS(...) kvs(sizeof((kv_t *[]){__VA_ARGS__}) / sizeof(kv_t *), (kv_t *[]){__VA_ARGS__})
#define NKV(...) (sizeof((kv_t *[]){__VA_ARGS__}) / sizeof(kv_t *))

static any_t *av_map(size_t n, kv_t **v)
{
    any_t *x = av();
    Strata__Otlp__KeyValueList *l = T(sizeof *l);
    strata__otlp__key_value_list__init(l);
    l->n_values = n;
    l->values = kvs(n, v);
    x->value_case = STRATA__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
    x->kvlist_value = l;
    return x;
}
#define MAP(...) av_map(NKV(__VA_ARGS__), (kv_t *[]){__VA_ARGS__})

static any_t *av_arr(size_t n, any_t **v)
{
    any_t *x = av();
    Strata__Otlp__ArrayValue *a = T(sizeof *a);
    strata__otlp__array_value__init(a);
    a->n_values = n;
    a->values = T((n ? n : 1) * sizeof *a->values);
    if (n) memcpy(a->values, v, n * sizeof *v);
    x->value_case = STRATA__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
    x->array_value = a;
    return x;
}
#define ARR(...) av_arr(sizeof((any_t *[]){__VA_ARGS__}) / sizeof(any_t *), (any_t *[]){__VA_ARGS__})

typedef struct {
    Strata__Otlp__ExportLogsServiceRequest req;
    Strata__Otlp__ResourceLogs *rl[8];
} req_t;

static void r_init(req_t *r)
{
    memset(r, 0, sizeof *r);
    strata__otlp__export_logs_service_request__init(&r->req);
    r->req.resource_logs = r->rl;
}

/* Adds a resource with attrs and one scope; returns the scope to fill. */
static Strata__Otlp__ScopeLogs *r_resource(req_t *r, size_t nattr, kv_t **attrs,
                                           Strata__Otlp__InstrumentationScope *sc)
{
    Strata__Otlp__ResourceLogs *rl = T(sizeof *rl);
    strata__otlp__resource_logs__init(rl);
    Strata__Otlp__Resource *res = T(sizeof *res);
    strata__otlp__resource__init(res);
    res->n_attributes = nattr;
    res->attributes = kvs(nattr, attrs);
    rl->resource = res;
    Strata__Otlp__ScopeLogs *sl = T(sizeof *sl);
    strata__otlp__scope_logs__init(sl);
    sl->scope = sc;
    sl->log_records = T(64 * sizeof *sl->log_records);
    rl->n_scope_logs = 1;
    rl->scope_logs = T(sizeof *rl->scope_logs);
    rl->scope_logs[0] = sl;
    r->rl[r->req.n_resource_logs++] = rl;
    return sl;
}

static Strata__Otlp__LogRecord *r_record(Strata__Otlp__ScopeLogs *sl, uint64_t t, uint64_t observed,
                                         any_t *body)
{
    Strata__Otlp__LogRecord *lr = T(sizeof *lr);
    strata__otlp__log_record__init(lr);
    lr->time_unix_nano = t;
    lr->observed_time_unix_nano = observed;
    lr->body = body;
    sl->log_records[sl->n_log_records++] = lr;
    return lr;
}

static void r_pack(req_t *r, st_buf_t *out)
{
    size_t n = strata__otlp__export_logs_service_request__get_packed_size(&r->req);
    st_buf_reset(out);
    assert_int_equal(st_buf_reserve(out, n + 1), 0);
    out->len = strata__otlp__export_logs_service_request__pack(&r->req, (uint8_t *)out->data);
    assert_int_equal(out->len, n);
}

static st_push_limits_t limits(void)
{
    static const st_str_t names[] = {ST_STR("service"), ST_STR("app"), ST_STR("k8s_container_name"),
                                     ST_STR("job")};
    return (st_push_limits_t){.now_ns = NOW,
                              .reject_old_samples = false,
                              .creation_grace_period_ns = INT64_C(600) * 1000000000,
                              .max_line_size = 4096,
                              .max_label_names_per_series = 15,
                              .max_label_name_length = 1024,
                              .max_label_value_length = 2048,
                              .allow_structured_metadata = true,
                              .max_structured_metadata_size = 65536,
                              .max_structured_metadata_entries = 128,
                              .discover_service_name = names,
                              .discover_service_name_n = 4,
                              .discover_log_levels = true};
}

static int decode(st_str_t body, st_otlp_format_t fmt, const st_push_limits_t *lim, st_push_t **p,
                  st_push_errors_t *e)
{
    cap_reset();
    assert_int_equal(st_push_new("t", p), 0);
    memset(e, 0, sizeof *e);
    return st_push_decode_otlp(body, fmt, lim, *p, e);
}

/* ---- the full mapping, protobuf and JSON ------------------------------------------------------------ */

static const char *const want_labels =
    "{deployment_environment=\"prod\", k8s_pod_name=\"pod-1\", service_name=\"checkout\"}";
static const char *const res_scope_md =
    "host_name=h1;process_pid=42;cloud_provider=aws;cloud_tags_a_b=c;"
    "scope_attr=s;scope_name=io.x;scope_version=1.2;scope_dropped_attributes_count=3";

static void check_full_mapping(void)
{
    assert_int_equal(ncap, 3);
    for (size_t i = 0; i < 3; i++) assert_string_equal(cap[i].labels, want_labels);
    assert_true(cap[0].ts == INT64_C(1724240000000000001));
    assert_string_equal(cap[0].line, "payment failed");
    assert_string_equal(
        cap[0].md, "user_id=u1;http_status=500;observed_timestamp=1724240000000000002;severity_number=13;"
                   "severity_text=Warning;dropped_attributes_count=2;flags=1;"
                   "trace_id=0102030405060708090a0b0c0d0e0f10;span_id=a1a2a3a4a5a6a7a8;"
                   "event_name=checkout.failed;host_name=h1;process_pid=42;cloud_provider=aws;"
                   "cloud_tags_a_b=c;scope_attr=s;scope_name=io.x;scope_version=1.2;"
                   "scope_dropped_attributes_count=3;detected_level=warn");
    /* no time: observed time is the timestamp and is not repeated as metadata */
    assert_true(cap[1].ts == INT64_C(1724240000000000009));
    assert_string_equal(cap[1].line, "7");
    char want[1024];
    snprintf(want, sizeof want, "%s;detected_level=unknown", res_scope_md);
    assert_string_equal(cap[1].md, want);
    /* neither: arrival time; a map body is JSON with sorted keys, a repeated key keeps its last value */
    assert_true(cap[2].ts == NOW);
    assert_string_equal(cap[2].line, "{\"a\":\"x\",\"b\":2}");
    snprintf(want, sizeof want, "%s;detected_level=unknown", res_scope_md);
    assert_string_equal(cap[2].md, want);
}

static void test_mapping_protobuf(void **state)
{
    (void)state;
    req_t r;
    r_init(&r);
    Strata__Otlp__InstrumentationScope *sc = T(sizeof *sc);
    strata__otlp__instrumentation_scope__init(sc);
    sc->name = bs("io.x");
    sc->version = bs("1.2");
    sc->n_attributes = 1;
    sc->attributes = KVS(kv("scope.attr", av_str("s")));
    sc->dropped_attributes_count = 3;
    Strata__Otlp__ScopeLogs *sl = r_resource(
        &r, 6,
        KVS(kv("service.name", av_str("checkout")), kv("k8s.pod.name", av_str("pod-1")),
            kv("host.name", av_str("h1")), kv("deployment.environment", av_str("prod")),
            kv("process.pid", av_int(42)),
            kv("cloud", MAP(kv("provider", av_str("aws")), kv("tags", MAP(kv("a.b", av_str("c"))))))),
        sc);
    Strata__Otlp__LogRecord *lr =
        r_record(sl, UINT64_C(1724240000000000001), UINT64_C(1724240000000000002), av_str("payment failed"));
    lr->severity_number = 13;
    lr->severity_text = bs("Warning");
    lr->n_attributes = 3;
    lr->attributes =
        KVS(kv("user.id", av_str("u1")), kv("http.status", av_int(500)), kv("event_name", av_str("dup")));
    lr->dropped_attributes_count = 2;
    lr->flags = 1;
    lr->trace_id = bd("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10", 16);
    lr->span_id = bd("\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8", 8);
    lr->event_name = bs("checkout.failed");
    r_record(sl, 0, UINT64_C(1724240000000000009), av_int(7));
    r_record(sl, 0, 0, MAP(kv("b", av_int(1)), kv("a", av_str("x")), kv("b", av_int(2))));
    st_buf_t body = ST_BUF_INIT;
    r_pack(&r, &body);
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    check_full_mapping();
    assert_int_equal(e.count, 0);
    assert_int_equal(st_push_nstreams(p), 1);
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
    pool_free();
}

static void test_mapping_json(void **state)
{
    (void)state;
    const char *body =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":["
        "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"checkout\"}},"
        "{\"key\":\"k8s.pod.name\",\"value\":{\"stringValue\":\"pod-1\"}},"
        "{\"key\":\"host.name\",\"value\":{\"stringValue\":\"h1\"}},"
        "{\"key\":\"deployment.environment\",\"value\":{\"stringValue\":\"prod\"}},"
        "{\"key\":\"process.pid\",\"value\":{\"intValue\":\"42\"}},"
        "{\"key\":\"cloud\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"provider\",\"value\":{"
        "\"stringValue\":\"aws\"}},"
        "{\"key\":\"tags\",\"value\":{\"kvlistValue\":{\"values\":[{\"key\":\"a.b\",\"value\":{"
        "\"stringValue\":\"c\"}}]}}}]}}}"
        "],\"droppedAttributesCount\":0},\"schemaUrl\":\"https://x\","
        "\"scopeLogs\":[{\"scope\":{\"name\":\"io.x\",\"version\":\"1.2\",\"attributes\":[{\"key\":\"scope."
        "attr\","
        "\"value\":{\"stringValue\":\"s\"}}],\"droppedAttributesCount\":3},\"logRecords\":["
        "{\"timeUnixNano\":\"1724240000000000001\",\"observedTimeUnixNano\":1724240000000000002,"
        "\"severityNumber\":\"SEVERITY_NUMBER_WARN\",\"severityText\":\"Warning\",\"body\":{\"stringValue\":"
        "\"payment failed\"},"
        "\"attributes\":[{\"key\":\"user.id\",\"value\":{\"stringValue\":\"u1\"}},{\"key\":\"http.status\","
        "\"value\":{\"intValue\":500}},"
        "{\"key\":\"event_name\",\"value\":{\"stringValue\":\"dup\"}}],\"droppedAttributesCount\":2,"
        "\"flags\":1,"
        "\"traceId\":\"0102030405060708090A0B0C0D0E0F10\",\"spanId\":\"a1a2a3a4a5a6a7a8\",\"eventName\":"
        "\"checkout.failed\","
        "\"unknownField\":{\"x\":[1,2]}},"
        "{\"observed_time_unix_nano\":\"1724240000000000009\",\"body\":{\"int_value\":\"7\"},\"traceId\":"
        "\"\",\"severityText\":null},"
        "{\"body\":{\"kvlistValue\":{\"values\":[{\"key\":\"b\",\"value\":{\"intValue\":\"1\"}},{\"key\":"
        "\"a\",\"value\":"
        "{\"stringValue\":\"x\"}},{\"key\":\"b\",\"value\":{\"intValue\":\"2\"}}]}}}"
        "]}]}]}";
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_cstr(body), ST_OTLP_JSON, &lim, &p, &e), 0);
    check_full_mapping();
    st_push_errors_free(&e);
    st_push_free(p);
}

/* One record per body value; returns the captured line of record i. */
static void test_bodies(void **state)
{
    (void)state;
    req_t r;
    r_init(&r);
    Strata__Otlp__ScopeLogs *sl = r_resource(&r, 1, KVS(kv("service.name", av_str("b"))), NULL);
    any_t *bodies[] = {av_dbl(1.5),
                       av_dbl(1e21),
                       av_dbl(1e-7),
                       av_dbl(100),
                       av_dbl(123456789.125),
                       av_dbl(0.000001),
                       av_dbl(-0.0),
                       av_dbl(NAN),
                       av_dbl(-INFINITY),
                       av_dbl(1e20),
                       av_bool(true),
                       av_int(-5),
                       av_bytes("\x00\xff", 2),
                       av(),
                       NULL,
                       ARR(av_int(1), av_str("a\"\n"), av_bool(false), av(), av_dbl(2.5), av_bytes("hi", 2),
                           MAP(kv("k", av_str("v"))), av_arr(0, NULL)),
                       av_map(0, NULL),
                       av_str("")};
    const char *want[] = {"1.5",
                          "1e+21",
                          "1e-7",
                          "100",
                          "123456789.125",
                          "0.000001",
                          "-0",
                          "NaN",
                          "-Infinity",
                          "100000000000000000000",
                          "true",
                          "-5",
                          "AP8=",
                          "",
                          "",
                          "[1,\"a\\\"\\n\",false,null,2.5,\"aGk=\",{\"k\":\"v\"},[]]",
                          "{}",
                          ""};
    size_t n = sizeof bodies / sizeof bodies[0];
    for (size_t i = 0; i < n; i++) r_record(sl, UINT64_C(1724240000000000000) + i, 0, bodies[i]);
    st_buf_t body = ST_BUF_INIT;
    r_pack(&r, &body);
    st_push_limits_t lim = limits();
    lim.discover_log_levels = false;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_int_equal(ncap, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(cap[i].ts == INT64_C(1724240000000000000) + (int64_t)i);
        assert_string_equal(cap[i].line, want[i]);
        assert_string_equal(cap[i].md, "");
    }
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
    pool_free();
}

static void test_sanitize(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"http.method", "http_method"},
        {"123abc", "key_123abc"},
        {"__reserved__", "__reserved__"},
        {"__a.b__", "__a_b__"},
        {"a..b", "a_b"},
        {"a__b", "a_b"},
        {"_x", "_x"},
        {"x_", "x_"},
        {"\xc3\xbcn\xc3\xaf", "_n_"},
        {"k8s.pod.name", "k8s_pod_name"},
        {"9", "key_9"},
        {"A-Z", "A_Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        st_buf_t b = ST_BUF_INIT;
        char err[256];
        assert_int_equal(st_label_name_sanitize(st_cstr(cases[i][0]), &b, err), 0);
        assert_string_equal(st_buf_cstr(&b), cases[i][1]);
        st_buf_free(&b);
    }
    st_buf_t b = ST_BUF_INIT;
    char err[256];
    assert_int_equal(st_label_name_sanitize(st_str("", 0), &b, err), ST_EPARSE);
    assert_string_equal(err, "label name is empty");
    assert_int_equal(st_label_name_sanitize(st_cstr("..."), &b, err), ST_EPARSE);
    assert_string_equal(err, "normalization for label name \"...\" resulted in invalid name \"_\"");
    assert_int_equal(b.len, 0);
    st_buf_free(&b);

    /* an attribute whose name cannot be sanitised rejects the request, as in Loki */
    const char *body = "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"\",\"value\":{"
                       "\"stringValue\":\"x\"}}]},"
                       "\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":\"l\"}}]}]}]}";
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_cstr(body), ST_OTLP_JSON, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "symbolizer lookup: label name is empty");
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_service_name_and_index_list(void **state)
{
    (void)state;
    req_t r;
    r_init(&r);
    /* discovery from an indexed label */
    r_record(r_resource(&r, 2,
                        KVS(kv("k8s.container.name", av_str("c1")), kv("k8s.namespace.name", av_str("ns"))),
                        NULL),
             1, 0, av_str("a"));
    /* nothing to discover from */
    r_record(r_resource(&r, 1, KVS(kv("host.name", av_str("h"))), NULL), 2, 0, av_str("b"));
    /* an empty service.name counts as absent */
    r_record(r_resource(&r, 1, KVS(kv("service.name", av_str(""))), NULL), 3, 0, av_str("c"));
    st_buf_t body = ST_BUF_INIT;
    r_pack(&r, &body);
    st_push_limits_t lim = limits();
    lim.discover_log_levels = false;
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_int_equal(ncap, 3);
    assert_string_equal(cap[0].labels,
                        "{k8s_container_name=\"c1\", k8s_namespace_name=\"ns\", service_name=\"c1\"}");
    assert_string_equal(cap[1].labels, "{service_name=\"unknown_service\"}");
    assert_string_equal(cap[1].md, "host_name=h");
    assert_string_equal(cap[2].labels, "{service_name=\"unknown_service\"}");
    st_push_errors_free(&e);
    st_push_free(p);
    pool_free();

    /* a custom index list: service.name present but not indexed means no service_name label (it stays
     * metadata); a repeated (sanitised) label name keeps the last value; discovery off and nothing
     * indexed leaves a stream without labels */
    r_init(&r);
    r_record(
        r_resource(&r, 3,
                   KVS(kv("service.name", av_str("svc")), kv("pod", av_str("a")), kv("pod.", av_str("b"))),
                   NULL),
        1, 0, av_str("x"));
    r_pack(&r, &body);
    static const st_str_t idx[] = {ST_STR("pod"), ST_STR("pod.")};
    lim.otlp_index_labels = idx;
    lim.otlp_index_labels_n = 2;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_int_equal(ncap, 1);
    assert_string_equal(cap[0].labels, "{pod=\"a\", pod_=\"b\"}");
    assert_string_equal(cap[0].md, "service_name=svc");
    st_push_errors_free(&e);
    st_push_free(p);
    pool_free();

    r_init(&r);
    r_record(
        r_resource(&r, 3,
                   KVS(kv("service.name", av_str("svc")), kv("a.b", av_str("1")), kv("a_b", av_str("2"))),
                   NULL),
        1, 0, av_str("x"));
    r_pack(&r, &body);
    static const st_str_t idx2[] = {ST_STR("a.b"), ST_STR("a_b")};
    lim.otlp_index_labels = idx2;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_int_equal(ncap, 1);
    assert_string_equal(cap[0].labels, "{a_b=\"2\"}");
    assert_string_equal(cap[0].md, "service_name=svc");
    st_push_errors_free(&e);
    st_push_free(p);
    lim.discover_service_name_n = 0;
    lim.otlp_index_labels_n = 0; /* index nothing: the stream has no labels */
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_int_equal(ncap, 0);
    assert_string_equal(st_buf_cstr(&e.text), "error at least one label pair is required per stream");
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
    pool_free();
}

static void test_errors(void **state)
{
    (void)state;
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    /* malformed protobuf */
    assert_int_equal(decode(st_str("\x0a\x05\x01", 3), ST_OTLP_PROTOBUF, &lim, &p, &e), ST_EPARSE);
    assert_non_null(strstr(st_buf_cstr(&e.text), "proto:"));
    st_push_errors_free(&e);
    st_push_free(p);
    /* no records: 422, like Loki's empty push */
    assert_int_equal(decode(st_str("", 0), ST_OTLP_PROTOBUF, &lim, &p, &e), ST_ENOTFOUND);
    assert_string_equal(st_buf_cstr(&e.text), "error at least one valid stream is required for ingestion");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode(st_cstr("{\"resourceLogs\":[]}"), ST_OTLP_JSON, &lim, &p, &e), ST_ENOTFOUND);
    st_push_errors_free(&e);
    st_push_free(p);
    /* JSON errors */
    assert_int_equal(decode(st_cstr("{\"resourceLogs\":{}}"), ST_OTLP_JSON, &lim, &p, &e), ST_EPARSE);
    assert_non_null(strstr(st_buf_cstr(&e.text), "error parsing OTLP JSON request: expected an array"));
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(
        decode(st_cstr("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"traceId\":\"abc\"}]}]}]}"),
               ST_OTLP_JSON, &lim, &p, &e),
        ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "error parsing OTLP JSON request: invalid length for TraceID");
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(
        decode(st_cstr("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"timeUnixNano\":\"-1\"}]}]}]}"),
               ST_OTLP_JSON, &lim, &p, &e),
        ST_EPARSE);
    st_push_errors_free(&e);
    st_push_free(p);
    assert_int_equal(decode(st_cstr("[]"), ST_OTLP_JSON, &lim, &p, &e), ST_EPARSE);
    st_push_errors_free(&e);
    st_push_free(p);
    /* a protobuf trace_id of the wrong length */
    req_t r;
    r_init(&r);
    r_record(r_resource(&r, 0, NULL, NULL), 1, 0, NULL)->trace_id = bd("abc", 3);
    st_buf_t body = ST_BUF_INIT;
    r_pack(&r, &body);
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), ST_EPARSE);
    assert_string_equal(st_buf_cstr(&e.text), "proto: invalid length for TraceID");
    st_push_errors_free(&e);
    st_push_free(p);
    pool_free();
    /* nesting deeper than the limit is refused before protobuf-c recurses */
    r_init(&r);
    any_t *v = av_str("leaf");
    for (int i = 0; i < 60; i++) v = MAP(kv("k", v));
    r_record(r_resource(&r, 1, KVS(kv("deep", v)), NULL), 1, 0, NULL);
    r_pack(&r, &body);
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), ST_EPARSE);
    assert_non_null(strstr(st_buf_cstr(&e.text), "nested too deeply"));
    st_push_errors_free(&e);
    st_push_free(p);
    pool_free();
    /* ...while moderate nesting flattens */
    r_init(&r);
    v = av_str("leaf");
    for (int i = 0; i < 3; i++) v = MAP(kv("k", v));
    r_record(r_resource(&r, 2, KVS(kv("service.name", av_str("s")), kv("deep", v)), NULL), 1, 0, NULL);
    r_pack(&r, &body);
    lim.discover_log_levels = false;
    assert_int_equal(decode(st_str(body.data, body.len), ST_OTLP_PROTOBUF, &lim, &p, &e), 0);
    assert_string_equal(cap[0].md, "deep_k_k_k=leaf");
    st_push_errors_free(&e);
    st_push_free(p);
    st_buf_free(&body);
    pool_free();
}

static void test_json_forms(void **state)
{
    (void)state;
    /* snake_case keys, numbers as strings or numbers, enum names, base64 bytes, nulls */
    const char *body =
        "{\"resource_logs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"string_value\":\"s\"}},{\"key\":\"b\",\"value\":{\"bytesValue\":\"AP8=\"}},{\"key\":\"d\","
        "\"value\":{\"doubleValue\":2.50}},{\"key\":\"t\",\"value\":{\"boolValue\":true}},"
        "{\"key\":\"n\",\"value\":null},{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":"
        "[{\"intValue\":1},{\"stringValue\":\"x\"}]}}}]},"
        "\"scope_logs\":[{\"scope\":null,\"log_records\":[{\"time_unix_nano\":5,\"severity_number\":"
        "\"SEVERITY_NUMBER_ERROR2\",\"span_id\":\"0000000000000000\",\"body\":{\"doubleValue\":\"NaN\"}},"
        "{\"timeUnixNano\":\"6\",\"severityNumber\":9,\"body\":{\"boolValue\":false}}]}]}]}";
    st_push_limits_t lim = limits();
    st_push_t *p;
    st_push_errors_t e;
    assert_int_equal(decode(st_cstr(body), ST_OTLP_JSON, &lim, &p, &e), 0);
    assert_int_equal(ncap, 2);
    assert_string_equal(cap[0].labels, "{service_name=\"s\"}");
    assert_true(cap[0].ts == 5);
    assert_string_equal(cap[0].line, "NaN");
    /* an all-zero span id is "empty" and left out; a null attribute value is an empty string (dropped) */
    assert_string_equal(cap[0].md,
                        "severity_number=18;b=AP8=;d=2.5;t=true;arr=[1,\"x\"];detected_level=error");
    assert_string_equal(cap[1].line, "false");
    assert_string_equal(cap[1].md, "severity_number=9;b=AP8=;d=2.5;t=true;arr=[1,\"x\"];detected_level=info");
    st_push_errors_free(&e);
    st_push_free(p);
}

static void test_status_and_decompress(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_otlp_status_encode(&b, st_cstr("abc")), 0);
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data,
                        "\x12\x03"
                        "abc",
                        5);
    st_buf_reset(&b);
    assert_int_equal(st_otlp_status_encode(&b, st_str("", 0)), 0);
    assert_int_equal(b.len, 0);

    char raw[5000];
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (char)('a' + i % 7);
    size_t cb = ZSTD_compressBound(sizeof raw);
    char *z = malloc(2 * cb);
    size_t zn = ZSTD_compress(z, cb, raw, sizeof raw, 3);
    assert_false(ZSTD_isError(zn));
    memcpy(z + zn, z, zn); /* two frames back to back */
    st_buf_reset(&b);
    assert_int_equal(st_zstd_decompress_bounded(z, 2 * zn, 10000, &b), 0);
    assert_int_equal(b.len, 10000);
    assert_memory_equal(b.data, raw, sizeof raw);
    assert_memory_equal(b.data + 5000, raw, sizeof raw);
    st_buf_reset(&b);
    assert_int_equal(st_zstd_decompress_bounded(z, 2 * zn, 9999, &b), ST_ELIMIT);
    st_buf_reset(&b);
    assert_int_equal(st_zstd_decompress_bounded(z, zn - 3, 10000, &b), ST_EPARSE);
    st_buf_reset(&b);
    assert_int_equal(st_zstd_decompress_bounded("garbage!", 8, 10000, &b), ST_EPARSE);
    free(z);
#ifdef HAVE_LZ4_HDR
    size_t lb = LZ4F_compressFrameBound(sizeof raw, NULL);
    char *l = malloc(lb);
    size_t ln = LZ4F_compressFrame(l, lb, raw, sizeof raw, NULL);
    assert_false(LZ4F_isError(ln));
    st_buf_reset(&b);
    assert_int_equal(st_lz4_decompress_bounded(l, ln, 5000, &b), 0);
    assert_int_equal(b.len, 5000);
    assert_memory_equal(b.data, raw, sizeof raw);
    st_buf_reset(&b);
    assert_int_equal(st_lz4_decompress_bounded(l, ln, 4999, &b), ST_ELIMIT);
    st_buf_reset(&b);
    assert_int_equal(st_lz4_decompress_bounded(l, ln - 4, 5000, &b), ST_EPARSE);
    free(l);
#endif
    st_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mapping_protobuf),
        cmocka_unit_test(test_mapping_json),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_service_name_and_index_list),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_json_forms),
        cmocka_unit_test(test_status_and_decompress),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cap_reset();
    pool_free();
    return rc;
}
