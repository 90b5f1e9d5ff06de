/* push_otlp.c: OTLP/HTTP logs (POST /otlp/v1/logs): decoding an ExportLogsServiceRequest from protobuf
 * (protoc-c code of ingester/proto/otlp_logs.proto) or OTLP JSON (built into the same structs in an
 * arena), and Loki 3's mapping onto streams: indexed resource attributes become labels, the rest of
 * the attributes and the record fields become structured metadata. Also the bounded zstd/lz4 body
 * decoders and the google.rpc.Status error body. Validation is validate.c's, as for every decoder. */
#include "ingester/ingester.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/json.h"
#include "ingester/proto/otlp_logs.pb-c.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>
#ifdef ST_HAVE_LZ4
#include <lz4frame.h>
#endif

typedef Strata__Otlp__AnyValue any_t;
typedef Strata__Otlp__KeyValue kv_t;

const st_str_t st_otlp_default_index_labels[] = {
    ST_STR("service.name"),
    ST_STR("service.namespace"),
    ST_STR("service.instance.id"),
    ST_STR("deployment.environment"),
    ST_STR("deployment.environment.name"),
    ST_STR("cloud.region"),
    ST_STR("cloud.availability_zone"),
    ST_STR("k8s.cluster.name"),
    ST_STR("k8s.namespace.name"),
    ST_STR("k8s.pod.name"),
    ST_STR("k8s.container.name"),
    ST_STR("container.name"),
    ST_STR("k8s.replicaset.name"),
    ST_STR("k8s.deployment.name"),
    ST_STR("k8s.statefulset.name"),
    ST_STR("k8s.daemonset.name"),
    ST_STR("k8s.cronjob.name"),
    ST_STR("k8s.job.name"),
};
const size_t st_otlp_default_index_labels_n =
    sizeof st_otlp_default_index_labels / sizeof st_otlp_default_index_labels[0];

/* Deepest message nesting accepted (AnyValue maps nest three messages per level). */
#define MAX_PB_DEPTH 100

static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_buf_reset(&e->text);
    st_buf_puts(&e->text, msg);
    return rc;
}

static st_str_t bin(ProtobufCBinaryData b)
{
    return st_str(b.data ? (const char *)b.data : "", b.len);
}

/* ---- error body and body decoders ----------------------------------------------------------------- */

int st_otlp_status_encode(st_buf_t *out, st_str_t message)
{
    if (message.n == 0) return 0;
    ST_TRY(st_buf_putc(out, 0x12)); /* field 2, length-delimited */
    ST_TRY(st_buf_put_uvarint(out, message.n));
    return st_buf_append(out, message.p, message.n);
}

/* Room for the next chunk of output: at most one byte over the limit, so overflow is detected. */
static int grow_room(st_buf_t *out, size_t start, size_t max_out, size_t *room)
{
    size_t produced = out->len - start;
    size_t want = max_out - produced + 1;
    if (want > (size_t)1 << 20) want = (size_t)1 << 20;
    ST_TRY(st_buf_reserve(out, want));
    *room = want;
    return 0;
}

int st_zstd_decompress_bounded(const void *in, size_t n, size_t max_out, st_buf_t *out)
{
    if (n == 0) return 0;
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (ds == NULL) return -ENOMEM;
    ZSTD_initDStream(ds);
    ZSTD_inBuffer ib = {in, n, 0};
    size_t start = out->len;
    int rc = 0;
    for (;;) {
        size_t room;
        if ((rc = grow_room(out, start, max_out, &room)) < 0) break;
        ZSTD_outBuffer ob = {out->data + out->len, room, 0};
        size_t r = ZSTD_decompressStream(ds, &ob, &ib);
        if (ZSTD_isError(r)) {
            rc = ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : ST_EPARSE;
            break;
        }
        out->len += ob.pos;
        if (out->len - start > max_out) {
            rc = ST_ELIMIT;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) {
            if (r != 0) rc = ST_EPARSE; /* truncated frame */
            break;
        }
    }
    ZSTD_freeDStream(ds);
    return rc;
}

int st_lz4_decompress_bounded(const void *in, size_t n, size_t max_out, st_buf_t *out)
{
#ifdef ST_HAVE_LZ4
    if (n == 0) return 0;
    LZ4F_dctx *dc;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&dc, LZ4F_VERSION))) return -ENOMEM;
    const char *p = in, *end = p + n;
    size_t start = out->len, last = 0;
    int rc = 0;
    for (;;) {
        size_t room;
        if ((rc = grow_room(out, start, max_out, &room)) < 0) break;
        size_t dst = room, src = (size_t)(end - p);
        size_t r = LZ4F_decompress(dc, out->data + out->len, &dst, p, &src, NULL);
        if (LZ4F_isError(r)) {
            rc = ST_EPARSE;
            break;
        }
        p += src;
        out->len += dst;
        last = r;
        if (out->len - start > max_out) {
            rc = ST_ELIMIT;
            break;
        }
        if (p == end && dst < room) {
            if (last != 0) rc = ST_EPARSE; /* truncated frame */
            break;
        }
    }
    LZ4F_freeDecompressionContext(dc);
    return rc;
#else
    (void)in, (void)n, (void)max_out, (void)out;
    return -ENOTSUP;
#endif
}

/* ---- protobuf ------------------------------------------------------------------------------------- */

/* Walks the wire format along the schema and rejects nesting deeper than MAX_PB_DEPTH before
 * protobuf-c (which recurses without a limit) unpacks it. Also rejects malformed framing early. */
static bool pb_depth_ok(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth)
{
    if (depth > MAX_PB_DEPTH) return false;
    st_reader_t r = {p, end, false};
    while (r.p < r.end) {
        uint64_t key = st_read_uvarint(&r);
        if (r.err) return false;
        unsigned wt = (unsigned)(key & 7);
        uint64_t num = key >> 3;
        switch (wt) {
        case 0: st_read_uvarint(&r); break;
        case 1: st_read_bytes(&r, 8); break;
        case 5: st_read_bytes(&r, 4); break;
        case 2: {
            uint64_t len = st_read_uvarint(&r);
            if (r.err || len > st_reader_left(&r)) return false;
            const ProtobufCFieldDescriptor *f =
                num <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                !pb_depth_ok(f->descriptor, r.p, r.p + len, depth + 1))
                return false;
            r.p += len;
            break;
        }
        default: return false;
        }
        if (r.err) return false;
    }
    return true;
}

/* ---- an arena for the JSON-built request ---------------------------------------------------------- */

typedef struct blk {
    struct blk *next;
    size_t used, cap;
    max_align_t data[];
} blk_t;

typedef struct {
    blk_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0) n = sizeof(max_align_t);
    blk_t *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 32768 ? n : 32768;
        b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void arena_free(arena_t *a)
{
    while (a->head) {
        blk_t *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

/* protobuf-c's allocator interface over the arena (free is a no-op: the arena goes at once). */
static void *pb_alloc(void *arg, size_t n) { return arena_alloc(arg, n); }
static void pb_free(void *arg, void *p)
{
    (void)arg;
    (void)p;
}

/* ---- OTLP JSON -> the protobuf-c structs ------------------------------------------------------------ */

typedef struct {
    st_json_t j;
    st_buf_t s1, s2;
    arena_t *a;
    st_push_errors_t *e;
} jdec_t;

static int jfail(jdec_t *d, const char *what)
{
    size_t off = 0;
    const char *m = st_json_error(&d->j, &off);
    if (m == NULL) {
        st_json_fail(&d->j, what);
        m = st_json_error(&d->j, &off);
    }
    return fatal(d->e, ST_EPARSE, "error parsing OTLP JSON request: %s: %s at offset %zu", what, m, off);
}

static bool key_is(st_str_t k, const char *camel, const char *snake)
{
    return st_str_eqc(k, camel) || (snake && st_str_eqc(k, snake));
}

/* null stands for an absent field: consumes it and returns true. */
static bool jnull(jdec_t *d)
{
    if (st_json_peek(&d->j) != ST_JSON_NULL) return false;
    st_json_type_t t;
    st_json_literal(&d->j, &t);
    return true;
}

static int jbytes(jdec_t *d, ProtobufCBinaryData *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    if (st_json_peek(&d->j) != ST_JSON_STRING || st_json_string(&d->j, &s, &d->s2) < 0)
        return jfail(d, "expected a string");
    uint8_t *p = arena_alloc(d->a, s.n + 1);
    if (p == NULL) return -ENOMEM;
    memcpy(p, s.p, s.n);
    out->data = p;
    out->len = s.n;
    return 0;
}

/* An integer given as a JSON number or a string holding one (proto3 JSON writes 64-bit ints as
 * strings). Sets *neg for a leading '-'. */
static int jint_text(jdec_t *d, st_str_t *txt)
{
    st_json_type_t t = st_json_peek(&d->j);
    int rc = t == ST_JSON_STRING   ? st_json_string(&d->j, txt, &d->s2)
             : t == ST_JSON_NUMBER ? st_json_number(&d->j, txt)
                                   : -1;
    if (rc < 0) return jfail(d, "expected an integer");
    return 0;
}

static int parse_u64(st_str_t s, uint64_t max, uint64_t *out)
{
    if (s.n == 0 || s.n > 20) return ST_EPARSE;
    uint64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return ST_EPARSE;
        unsigned dg = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_MAX - dg) / 10) return ST_EPARSE;
        v = v * 10 + dg;
    }
    if (v > max) return ST_EPARSE;
    *out = v;
    return 0;
}

static int ju64(jdec_t *d, uint64_t max, uint64_t *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    ST_TRY(jint_text(d, &s));
    if (parse_u64(s, max, out) < 0) return jfail(d, "invalid unsigned integer");
    return 0;
}

static int ji64(jdec_t *d, int64_t *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    ST_TRY(jint_text(d, &s));
    bool neg = s.n > 0 && s.p[0] == '-';
    uint64_t v;
    if (parse_u64(neg ? st_str(s.p + 1, s.n - 1) : s, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX,
                  &v) < 0)
        return jfail(d, "invalid integer");
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static int jdouble(jdec_t *d, double *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    st_json_type_t t = st_json_peek(&d->j);
    if (t == ST_JSON_STRING) {
        if (st_json_string(&d->j, &s, &d->s2) < 0) return jfail(d, "bad doubleValue");
        if (st_str_eqc(s, "NaN"))
            *out = NAN;
        else if (st_str_eqc(s, "Infinity"))
            *out = INFINITY;
        else if (st_str_eqc(s, "-Infinity"))
            *out = -INFINITY;
        else
            goto num;
        return 0;
    }
    if (t != ST_JSON_NUMBER || st_json_number(&d->j, &s) < 0) return jfail(d, "expected a number");
num:;
    char tmp[64];
    if (s.n == 0 || s.n >= sizeof tmp) return jfail(d, "invalid number");
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    char *endp;
    *out = strtod(tmp, &endp);
    if (*endp != '\0') return jfail(d, "invalid number");
    return 0;
}

static int jbool(jdec_t *d, protobuf_c_boolean *out)
{
    if (jnull(d)) return 0;
    st_json_type_t t;
    if (st_json_literal(&d->j, &t) < 0 || (t != ST_JSON_TRUE && t != ST_JSON_FALSE))
        return jfail(d, "expected a boolean");
    *out = t == ST_JSON_TRUE;
    return 0;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* traceId / spanId: hex in OTLP JSON; empty means unset. */
static int jhex_id(jdec_t *d, size_t want, const char *name, ProtobufCBinaryData *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    if (st_json_peek(&d->j) != ST_JSON_STRING || st_json_string(&d->j, &s, &d->s2) < 0)
        return jfail(d, "expected a hex string");
    if (s.n == 0) return 0;
    if (s.n != want * 2)
        return fatal(d->e, ST_EPARSE, "error parsing OTLP JSON request: invalid length for %s", name);
    uint8_t *p = arena_alloc(d->a, want);
    if (p == NULL) return -ENOMEM;
    for (size_t i = 0; i < want; i++) {
        int h = hexval(s.p[2 * i]), l = hexval(s.p[2 * i + 1]);
        if (h < 0 || l < 0)
            return fatal(d->e, ST_EPARSE, "error parsing OTLP JSON request: invalid hex in %s", name);
        p[i] = (uint8_t)(h << 4 | l);
    }
    out->data = p;
    out->len = want;
    return 0;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

static int jbase64(jdec_t *d, ProtobufCBinaryData *out)
{
    if (jnull(d)) return 0;
    st_str_t s;
    if (st_json_peek(&d->j) != ST_JSON_STRING || st_json_string(&d->j, &s, &d->s2) < 0)
        return jfail(d, "expected a base64 string");
    while (s.n > 0 && s.p[s.n - 1] == '=') s.n--;
    uint8_t *p = arena_alloc(d->a, s.n * 3 / 4 + 3);
    if (p == NULL) return -ENOMEM;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < s.n; i++) {
        int v = b64val((unsigned char)s.p[i]);
        if (v < 0)
            return fatal(d->e, ST_EPARSE, "error parsing OTLP JSON request: invalid base64 in bytesValue");
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            p[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = p;
    out->len = o;
    return 0;
}

/* Collected pointers of a repeated field, copied into the arena when complete. */
typedef struct {
    st_buf_t v;
} ptrs_t;

static int ptrs_push(ptrs_t *pv, void *p)
{
    return st_buf_append(&pv->v, &p, sizeof p);
}

static int ptrs_finish(jdec_t *d, ptrs_t *pv, void ***out, size_t *n)
{
    *n = pv->v.len / sizeof(void *);
    *out = NULL;
    if (*n) {
        if ((*out = arena_alloc(d->a, pv->v.len)) == NULL) return -ENOMEM;
        memcpy(*out, pv->v.data, pv->v.len);
    }
    st_buf_free(&pv->v);
    return 0;
}

typedef int (*jelem_fn)(jdec_t *d, void **out);

/* An array of messages; each element parsed by fn. */
static int jarray(jdec_t *d, jelem_fn fn, void ***out, size_t *n)
{
    if (jnull(d)) return 0;
    if (st_json_array_begin(&d->j) < 0) return jfail(d, "expected an array");
    ptrs_t pv = {ST_BUF_INIT};
    int r, rc = 0;
    while ((r = st_json_next_elem(&d->j)) == 1) {
        void *m = NULL;
        if ((rc = fn(d, &m)) < 0) break;
        if (m && (rc = ptrs_push(&pv, m)) < 0) break;
    }
    if (rc == 0 && r < 0) rc = jfail(d, "bad array");
    if (rc < 0) {
        st_buf_free(&pv.v);
        return rc;
    }
    return ptrs_finish(d, &pv, out, n);
}

static int j_any(jdec_t *d, void **out);
static int j_kv(jdec_t *d, void **out);

/* Declares m, a new message of type T from the arena, initialised by init_fn. */
#define NEW(d, T, init_fn)                                                                                   \
    T *m = arena_alloc((d)->a, sizeof(T));                                                                   \
    if (m == NULL) return -ENOMEM;                                                                           \
    init_fn(m)

/* {"values": [...]} of an arrayValue or kvlistValue. */
static int j_values(jdec_t *d, jelem_fn fn, void ***out, size_t *n)
{
    if (jnull(d)) return 0;
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "expected an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "values"))
            ST_TRY(jarray(d, fn, out, n));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad value list");
    }
    return r < 0 ? jfail(d, "bad value list") : 0;
}

static int j_any(jdec_t *d, void **out)
{
    if (jnull(d)) return 0;
    NEW(d, any_t, strata__otlp__any_value__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "AnyValue must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (key_is(k, "stringValue", "string_value")) {
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
            ST_TRY(jbytes(d, &m->string_value));
        } else if (key_is(k, "boolValue", "bool_value")) {
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
            ST_TRY(jbool(d, &m->bool_value));
        } else if (key_is(k, "intValue", "int_value")) {
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_INT_VALUE;
            ST_TRY(ji64(d, &m->int_value));
        } else if (key_is(k, "doubleValue", "double_value")) {
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
            ST_TRY(jdouble(d, &m->double_value));
        } else if (key_is(k, "bytesValue", "bytes_value")) {
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_BYTES_VALUE;
            ST_TRY(jbase64(d, &m->bytes_value));
        } else if (key_is(k, "arrayValue", "array_value")) {
            Strata__Otlp__ArrayValue *a = arena_alloc(d->a, sizeof *a);
            if (a == NULL) return -ENOMEM;
            strata__otlp__array_value__init(a);
            ST_TRY(j_values(d, j_any, (void ***)&a->values, &a->n_values));
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE;
            m->array_value = a;
        } else if (key_is(k, "kvlistValue", "kvlist_value")) {
            Strata__Otlp__KeyValueList *l = arena_alloc(d->a, sizeof *l);
            if (l == NULL) return -ENOMEM;
            strata__otlp__key_value_list__init(l);
            ST_TRY(j_values(d, j_kv, (void ***)&l->values, &l->n_values));
            m->value_case = STRATA__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE;
            m->kvlist_value = l;
        } else if (st_json_skip(&d->j, NULL) < 0) {
            return jfail(d, "bad AnyValue");
        }
    }
    if (r < 0) return jfail(d, "bad AnyValue");
    *out = m;
    return 0;
}

static int j_kv(jdec_t *d, void **out)
{
    if (jnull(d)) return 0;
    NEW(d, kv_t, strata__otlp__key_value__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "KeyValue must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "key"))
            ST_TRY(jbytes(d, &m->key));
        else if (st_str_eqc(k, "value"))
            ST_TRY(j_any(d, (void **)&m->value));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad KeyValue");
    }
    if (r < 0) return jfail(d, "bad KeyValue");
    *out = m;
    return 0;
}

static int j_u32(jdec_t *d, uint32_t *out)
{
    uint64_t v = *out;
    ST_TRY(ju64(d, UINT32_MAX, &v));
    *out = (uint32_t)v;
    return 0;
}

/* severityNumber: a number or the enum name (SEVERITY_NUMBER_WARN2, ...). */
static int j_severity(jdec_t *d, int32_t *out)
{
    if (jnull(d)) return 0;
    if (st_json_peek(&d->j) == ST_JSON_STRING) {
        st_str_t s;
        if (st_json_string(&d->j, &s, &d->s2) < 0) return jfail(d, "bad severityNumber");
        static const char *const base[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
        st_str_t pre = ST_STR("SEVERITY_NUMBER_");
        if (s.n > pre.n && memcmp(s.p, pre.p, pre.n) == 0) {
            st_str_t rest = st_str(s.p + pre.n, s.n - pre.n);
            if (st_str_eqc(rest, "UNSPECIFIED")) {
                *out = 0;
                return 0;
            }
            for (int i = 0; i < 6; i++) {
                size_t bl = strlen(base[i]);
                if (rest.n < bl || memcmp(rest.p, base[i], bl) != 0) continue;
                if (rest.n == bl) {
                    *out = 4 * i + 1;
                    return 0;
                }
                if (rest.n == bl + 1 && rest.p[bl] >= '2' && rest.p[bl] <= '4') {
                    *out = 4 * i + 1 + (rest.p[bl] - '1');
                    return 0;
                }
            }
        }
        uint64_t v;
        if (parse_u64(s, INT32_MAX, &v) == 0) {
            *out = (int32_t)v;
            return 0;
        }
        return fatal(d->e, ST_EPARSE, "error parsing OTLP JSON request: invalid severityNumber \"%.*s\"",
                     (int)(s.n > 64 ? 64 : s.n), s.p);
    }
    int64_t v = 0;
    ST_TRY(ji64(d, &v));
    if (v < INT32_MIN || v > INT32_MAX) return jfail(d, "severityNumber out of range");
    *out = (int32_t)v;
    return 0;
}

static int j_log_record(jdec_t *d, void **out)
{
    if (jnull(d)) return 0;
    NEW(d, Strata__Otlp__LogRecord, strata__otlp__log_record__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "LogRecord must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (key_is(k, "timeUnixNano", "time_unix_nano"))
            ST_TRY(ju64(d, UINT64_MAX, &m->time_unix_nano));
        else if (key_is(k, "observedTimeUnixNano", "observed_time_unix_nano"))
            ST_TRY(ju64(d, UINT64_MAX, &m->observed_time_unix_nano));
        else if (key_is(k, "severityNumber", "severity_number"))
            ST_TRY(j_severity(d, &m->severity_number));
        else if (key_is(k, "severityText", "severity_text"))
            ST_TRY(jbytes(d, &m->severity_text));
        else if (st_str_eqc(k, "body"))
            ST_TRY(j_any(d, (void **)&m->body));
        else if (st_str_eqc(k, "attributes"))
            ST_TRY(jarray(d, j_kv, (void ***)&m->attributes, &m->n_attributes));
        else if (key_is(k, "droppedAttributesCount", "dropped_attributes_count"))
            ST_TRY(j_u32(d, &m->dropped_attributes_count));
        else if (st_str_eqc(k, "flags"))
            ST_TRY(j_u32(d, &m->flags));
        else if (key_is(k, "traceId", "trace_id"))
            ST_TRY(jhex_id(d, 16, "TraceID", &m->trace_id));
        else if (key_is(k, "spanId", "span_id"))
            ST_TRY(jhex_id(d, 8, "SpanID", &m->span_id));
        else if (key_is(k, "eventName", "event_name"))
            ST_TRY(jbytes(d, &m->event_name));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad LogRecord");
    }
    if (r < 0) return jfail(d, "bad LogRecord");
    *out = m;
    return 0;
}

static int j_scope(jdec_t *d, Strata__Otlp__InstrumentationScope **out)
{
    if (jnull(d)) return 0;
    NEW(d, Strata__Otlp__InstrumentationScope, strata__otlp__instrumentation_scope__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "scope must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "name"))
            ST_TRY(jbytes(d, &m->name));
        else if (st_str_eqc(k, "version"))
            ST_TRY(jbytes(d, &m->version));
        else if (st_str_eqc(k, "attributes"))
            ST_TRY(jarray(d, j_kv, (void ***)&m->attributes, &m->n_attributes));
        else if (key_is(k, "droppedAttributesCount", "dropped_attributes_count"))
            ST_TRY(j_u32(d, &m->dropped_attributes_count));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad scope");
    }
    if (r < 0) return jfail(d, "bad scope");
    *out = m;
    return 0;
}

static int j_scope_logs(jdec_t *d, void **out)
{
    if (jnull(d)) return 0;
    NEW(d, Strata__Otlp__ScopeLogs, strata__otlp__scope_logs__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "scopeLogs element must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "scope"))
            ST_TRY(j_scope(d, &m->scope));
        else if (key_is(k, "logRecords", "log_records"))
            ST_TRY(jarray(d, j_log_record, (void ***)&m->log_records, &m->n_log_records));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad scopeLogs");
    }
    if (r < 0) return jfail(d, "bad scopeLogs");
    *out = m;
    return 0;
}

static int j_resource(jdec_t *d, Strata__Otlp__Resource **out)
{
    if (jnull(d)) return 0;
    NEW(d, Strata__Otlp__Resource, strata__otlp__resource__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "resource must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "attributes"))
            ST_TRY(jarray(d, j_kv, (void ***)&m->attributes, &m->n_attributes));
        else if (key_is(k, "droppedAttributesCount", "dropped_attributes_count"))
            ST_TRY(j_u32(d, &m->dropped_attributes_count));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad resource");
    }
    if (r < 0) return jfail(d, "bad resource");
    *out = m;
    return 0;
}

static int j_resource_logs(jdec_t *d, void **out)
{
    if (jnull(d)) return 0;
    NEW(d, Strata__Otlp__ResourceLogs, strata__otlp__resource_logs__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "resourceLogs element must be an object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (st_str_eqc(k, "resource"))
            ST_TRY(j_resource(d, &m->resource));
        else if (key_is(k, "scopeLogs", "scope_logs"))
            ST_TRY(jarray(d, j_scope_logs, (void ***)&m->scope_logs, &m->n_scope_logs));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad resourceLogs");
    }
    if (r < 0) return jfail(d, "bad resourceLogs");
    *out = m;
    return 0;
}

static int decode_json(jdec_t *d, st_str_t body, Strata__Otlp__ExportLogsServiceRequest **out)
{
    st_json_init(&d->j, body.p, body.n);
    NEW(d, Strata__Otlp__ExportLogsServiceRequest, strata__otlp__export_logs_service_request__init);
    if (st_json_object_begin(&d->j) < 0) return jfail(d, "body must be a JSON object");
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (key_is(k, "resourceLogs", "resource_logs"))
            ST_TRY(jarray(d, j_resource_logs, (void ***)&m->resource_logs, &m->n_resource_logs));
        else if (st_json_skip(&d->j, NULL) < 0)
            return jfail(d, "bad request");
    }
    if (r < 0 || st_json_finish(&d->j) < 0) return jfail(d, "bad request");
    *out = m;
    return 0;
}

/* ---- AnyValue as a string (pdata's Value.AsString) ---------------------------------------------- */

/* Go's encoding/json / ES6 number formatting: shortest round-trip digits, exponent form below 1e-6
 * and from 1e21 on ("1e+21", "1e-7"). */
static int put_es6_float(st_buf_t *b, double f)
{
    if (f == 0) return st_buf_puts(b, signbit(f) ? "-0" : "0");
    char e[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    double a = fabs(f);
    if (a < 1e-6 || a >= 1e21) {
        /* "d.ddde-07" -> "d.ddde-7" */
        size_t n = strlen(e);
        if (n >= 4 && e[n - 4] == 'e' && e[n - 3] == '-' && e[n - 2] == '0') {
            e[n - 2] = e[n - 1];
            e[n - 1] = '\0';
        }
        return st_buf_puts(b, e);
    }
    /* fixed notation from the digits and exponent of e */
    char digits[20];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp = atoi(p + 1);
    if (neg) ST_TRY(st_buf_putc(b, '-'));
    if (exp < 0) {
        ST_TRY(st_buf_puts(b, "0."));
        for (int i = 0; i < -exp - 1; i++) ST_TRY(st_buf_putc(b, '0'));
        return st_buf_append(b, digits, nd);
    }
    for (int i = 0; i <= exp || i < (int)nd; i++) {
        if (i == exp + 1) ST_TRY(st_buf_putc(b, '.'));
        ST_TRY(st_buf_putc(b, i < (int)nd ? digits[i] : '0'));
    }
    return 0;
}

static int put_base64(st_buf_t *b, st_str_t s)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ST_TRY(st_buf_reserve(b, (s.n + 2) / 3 * 4));
    const unsigned char *p = (const unsigned char *)s.p;
    size_t i = 0;
    for (; i + 3 <= s.n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        st_buf_append(b, o, 4);
    }
    if (i < s.n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < s.n ? (uint32_t)p[i + 1] << 8 : 0);
        char o[4] = {tab[v >> 18], tab[(v >> 12) & 63], i + 1 < s.n ? tab[(v >> 6) & 63] : '=', '='};
        st_buf_append(b, o, 4);
    }
    return 0;
}

typedef struct {
    const kv_t *kv;
    size_t pos;
} kv_pos_t;

static int cmp_kv_pos(const void *a, const void *b)
{
    const kv_pos_t *x = a, *y = b;
    int c = st_str_cmp(bin(x->kv->key), bin(y->kv->key));
    if (c) return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos; /* equal keys keep their order */
}

static int put_json_value(st_buf_t *b, const any_t *v);

/* A map as Go marshals map[string]any: keys sorted, a repeated key keeps its last value. */
static int put_json_map(st_buf_t *b, const Strata__Otlp__KeyValueList *l)
{
    size_t n = l ? l->n_values : 0;
    if (n == 0) return st_buf_puts(b, "{}");
    kv_pos_t *ord = malloc(n * sizeof *ord);
    if (ord == NULL) return -ENOMEM;
    for (size_t i = 0; i < n; i++) ord[i] = (kv_pos_t){l->values[i], i};
    st_qsort(ord, n, sizeof *ord, cmp_kv_pos);
    int rc = st_buf_putc(b, '{');
    bool first = true;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i + 1 < n && st_str_eq(bin(ord[i].kv->key), bin(ord[i + 1].kv->key)))
            continue; /* last one wins */
        if (!first) rc = st_buf_putc(b, ',');
        first = false;
        if (rc == 0) rc = st_json_put_str(b, bin(ord[i].kv->key));
        if (rc == 0) rc = st_buf_putc(b, ':');
        if (rc == 0) rc = put_json_value(b, ord[i].kv->value);
    }
    if (rc == 0) rc = st_buf_putc(b, '}');
    free(ord);
    return rc;
}

static int put_json_value(st_buf_t *b, const any_t *v)
{
    if (v == NULL) return st_buf_puts(b, "null");
    switch (v->value_case) {
    case STRATA__OTLP__ANY_VALUE__VALUE_STRING_VALUE: return st_json_put_str(b, bin(v->string_value));
    case STRATA__OTLP__ANY_VALUE__VALUE_BOOL_VALUE: return st_buf_puts(b, v->bool_value ? "true" : "false");
    case STRATA__OTLP__ANY_VALUE__VALUE_INT_VALUE: return st_buf_printf(b, "%" PRId64, v->int_value);
    case STRATA__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value) || isinf(v->double_value)) return st_buf_puts(b, "null");
        return put_es6_float(b, v->double_value);
    case STRATA__OTLP__ANY_VALUE__VALUE_BYTES_VALUE:
        ST_TRY(st_buf_putc(b, '"'));
        ST_TRY(put_base64(b, bin(v->bytes_value)));
        return st_buf_putc(b, '"');
    case STRATA__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE: {
        ST_TRY(st_buf_putc(b, '['));
        const Strata__Otlp__ArrayValue *a = v->array_value;
        for (size_t i = 0; a && i < a->n_values; i++) {
            if (i) ST_TRY(st_buf_putc(b, ','));
            ST_TRY(put_json_value(b, a->values[i]));
        }
        return st_buf_putc(b, ']');
    }
    case STRATA__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE: return put_json_map(b, v->kvlist_value);
    default: return st_buf_puts(b, "null");
    }
}

/* Appends v as pdata's Value.AsString() would render it. */
static int put_as_string(st_buf_t *b, const any_t *v)
{
    if (v == NULL) return 0;
    switch (v->value_case) {
    case STRATA__OTLP__ANY_VALUE__VALUE_STRING_VALUE: {
        st_str_t s = bin(v->string_value);
        return st_buf_append(b, s.p, s.n);
    }
    case STRATA__OTLP__ANY_VALUE__VALUE_BOOL_VALUE: return st_buf_puts(b, v->bool_value ? "true" : "false");
    case STRATA__OTLP__ANY_VALUE__VALUE_INT_VALUE: return st_buf_printf(b, "%" PRId64, v->int_value);
    case STRATA__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
        if (isnan(v->double_value)) return st_buf_puts(b, "NaN");
        if (isinf(v->double_value)) return st_buf_puts(b, v->double_value > 0 ? "Infinity" : "-Infinity");
        return put_es6_float(b, v->double_value);
    case STRATA__OTLP__ANY_VALUE__VALUE_BYTES_VALUE: return put_base64(b, bin(v->bytes_value));
    case STRATA__OTLP__ANY_VALUE__VALUE_ARRAY_VALUE:
    case STRATA__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE: return put_json_value(b, v);
    default: return 0;
    }
}

/* ---- mapping ------------------------------------------------------------------------------------- */

/* name/value pairs stored back to back in one buffer. */
typedef struct {
    st_buf_t bytes;
    size_t *off; /* 4 per pair: name offset, name length, value offset, value length */
    size_t n, cap;
    st_str_t *names, *values; /* views, filled by pairs_views */
    size_t vcap;
} pairs_t;

static void pairs_free(pairs_t *p)
{
    st_buf_free(&p->bytes);
    free(p->off);
    free(p->names);
    free(p->values);
    memset(p, 0, sizeof *p);
}

static void pairs_reset(pairs_t *p)
{
    st_buf_reset(&p->bytes);
    p->n = 0;
}

/* Starts a pair whose name is already at bytes[name_off..]; the value follows. */
static int pairs_commit(pairs_t *p, size_t name_off, size_t name_len, size_t val_off)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        size_t *o = realloc(p->off, cap * 4 * sizeof *o);
        if (o == NULL) return -ENOMEM;
        p->off = o;
        p->cap = cap;
    }
    size_t *o = p->off + 4 * p->n++;
    o[0] = name_off;
    o[1] = name_len;
    o[2] = val_off;
    o[3] = p->bytes.len - val_off;
    return 0;
}

static int pairs_add(pairs_t *p, st_str_t name, st_str_t value)
{
    size_t no = p->bytes.len;
    ST_TRY(st_buf_append(&p->bytes, name.p, name.n));
    size_t vo = p->bytes.len;
    ST_TRY(st_buf_append(&p->bytes, value.p, value.n));
    return pairs_commit(p, no, name.n, vo);
}

static st_str_t pair_name(const pairs_t *p, size_t i)
{
    return st_str(p->bytes.data + p->off[4 * i], p->off[4 * i + 1]);
}
static st_str_t pair_value(const pairs_t *p, size_t i)
{
    return st_str(p->bytes.data + p->off[4 * i + 2], p->off[4 * i + 3]);
}

typedef struct {
    const st_push_limits_t *lim;
    st_push_errors_t *e;
    st_buf_t name;    /* scratch for prefixed names */
    pairs_t labels;   /* stream labels of the current resource */
    pairs_t res_md;   /* structured metadata from the resource */
    pairs_t scope_md; /* ... from the scope */
    pairs_t md;       /* one entry's structured metadata */
    st_buf_t line;
    st_buf_t mdenc;
    st_str_t *mdn, *mdv;
    size_t mdcap;
} map_t;

static void map_free(map_t *m)
{
    st_buf_free(&m->name);
    pairs_free(&m->labels);
    pairs_free(&m->res_md);
    pairs_free(&m->scope_md);
    pairs_free(&m->md);
    st_buf_free(&m->line);
    st_buf_free(&m->mdenc);
    free(m->mdn);
    free(m->mdv);
}

/* Loki's AttributeToLabels: the (prefixed) name sanitised; a map flattens into parent_child names. */
static int flatten(map_t *m, pairs_t *out, st_str_t prefix, st_str_t key, const any_t *v, int depth)
{
    if (depth > MAX_PB_DEPTH) return fatal(m->e, ST_EPARSE, "attribute nesting too deep");
    st_buf_t raw = ST_BUF_INIT;
    int rc = 0;
    if (prefix.n) {
        rc = st_buf_append(&raw, prefix.p, prefix.n);
        if (rc == 0) rc = st_buf_putc(&raw, '_');
    }
    if (rc == 0) rc = st_buf_append(&raw, key.p, key.n);
    size_t no = out->bytes.len;
    char err[256];
    if (rc == 0) {
        rc = st_label_name_sanitize(st_str(raw.data ? raw.data : "", raw.len), &out->bytes, err);
        if (rc == ST_EPARSE) rc = fatal(m->e, ST_EPARSE, "symbolizer lookup: %s", err);
    }
    st_buf_free(&raw);
    if (rc < 0) return rc;
    size_t nl = out->bytes.len - no;
    if (v && v->value_case == STRATA__OTLP__ANY_VALUE__VALUE_KVLIST_VALUE) {
        /* the name is only a prefix: copy it out, then drop it from the buffer */
        char *pre = st_str_dup(st_str(out->bytes.data + no, nl));
        out->bytes.len = no;
        if (pre == NULL) return -ENOMEM;
        const Strata__Otlp__KeyValueList *l = v->kvlist_value;
        for (size_t i = 0; rc == 0 && l && i < l->n_values; i++)
            rc = flatten(m, out, st_str(pre, nl), bin(l->values[i]->key), l->values[i]->value, depth + 1);
        free(pre);
        return rc;
    }
    size_t vo = out->bytes.len;
    ST_TRY(put_as_string(&out->bytes, v));
    return pairs_commit(out, no, nl, vo);
}

static bool is_index_label(const st_push_limits_t *lim, st_str_t key)
{
    const st_str_t *list = lim->otlp_index_labels ? lim->otlp_index_labels : st_otlp_default_index_labels;
    size_t n = lim->otlp_index_labels ? lim->otlp_index_labels_n : st_otlp_default_index_labels_n;
    for (size_t i = 0; i < n; i++)
        if (st_str_eq(list[i], key)) return true;
    return false;
}

/* Encodes pairs of several lists (in order) as one entry's structured metadata; empty values are
 * dropped, as the JSON decoder drops them. */
static int encode_md(map_t *m, const pairs_t *const *lists, int nlists)
{
    size_t total = 0;
    for (int i = 0; i < nlists; i++) total += lists[i]->n;
    if (total > m->mdcap) {
        st_str_t *a = realloc(m->mdn, total * sizeof *a);
        if (a == NULL) return -ENOMEM;
        m->mdn = a;
        st_str_t *b = realloc(m->mdv, total * sizeof *b);
        if (b == NULL) return -ENOMEM;
        m->mdv = b;
        m->mdcap = total;
    }
    size_t k = 0;
    for (int i = 0; i < nlists; i++) {
        for (size_t j = 0; j < lists[i]->n; j++) {
            st_str_t v = pair_value(lists[i], j);
            if (v.n == 0) continue;
            m->mdn[k] = pair_name(lists[i], j);
            m->mdv[k++] = v;
        }
    }
    st_buf_reset(&m->mdenc);
    return k ? st_md_encode(&m->mdenc, m->mdn, m->mdv, k) : 0;
}

static bool all_zero(ProtobufCBinaryData b)
{
    for (size_t i = 0; i < b.len; i++)
        if (b.data[i]) return false;
    return true;
}

static int put_hex_pair(pairs_t *p, const char *name, ProtobufCBinaryData b)
{
    static const char hx[] = "0123456789abcdef";
    size_t no = p->bytes.len;
    ST_TRY(st_buf_puts(&p->bytes, name));
    size_t vo = p->bytes.len;
    for (size_t i = 0; i < b.len; i++) {
        ST_TRY(st_buf_putc(&p->bytes, hx[b.data[i] >> 4]));
        ST_TRY(st_buf_putc(&p->bytes, hx[b.data[i] & 15]));
    }
    return pairs_commit(p, no, strlen(name), vo);
}

static int put_num_pair(pairs_t *p, const char *name, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", v);
    return pairs_add(p, st_cstr(name), st_str(t, (size_t)n));
}

/* Loki's LogAttrsToLabels: the record's attributes and fields as structured metadata. */
static int record_md(map_t *m, const Strata__Otlp__LogRecord *lr)
{
    pairs_t *md = &m->md;
    pairs_reset(md);
    bool have_event = lr->event_name.len > 0;
    for (size_t i = 0; i < lr->n_attributes; i++) {
        const kv_t *kv = lr->attributes[i];
        if (have_event && st_str_eqc(bin(kv->key), "event_name")) continue;
        ST_TRY(flatten(m, md, st_str("", 0), bin(kv->key), kv->value, 0));
    }
    if (lr->time_unix_nano != 0 && lr->observed_time_unix_nano != 0)
        ST_TRY(put_num_pair(md, "observed_timestamp", (long long)(int64_t)lr->observed_time_unix_nano));
    if (lr->severity_number != 0) ST_TRY(put_num_pair(md, "severity_number", lr->severity_number));
    if (lr->severity_text.len) ST_TRY(pairs_add(md, ST_STR("severity_text"), bin(lr->severity_text)));
    if (lr->dropped_attributes_count)
        ST_TRY(put_num_pair(md, "dropped_attributes_count", lr->dropped_attributes_count));
    if (lr->flags) ST_TRY(put_num_pair(md, "flags", lr->flags));
    if (lr->trace_id.len && !all_zero(lr->trace_id)) ST_TRY(put_hex_pair(md, "trace_id", lr->trace_id));
    if (lr->span_id.len && !all_zero(lr->span_id)) ST_TRY(put_hex_pair(md, "span_id", lr->span_id));
    if (have_event) ST_TRY(pairs_add(md, ST_STR("event_name"), bin(lr->event_name)));
    return 0;
}

/* Loki's ScopeAttrsToStructuredMetadata. */
static int scope_md(map_t *m, const Strata__Otlp__InstrumentationScope *sc)
{
    pairs_t *md = &m->scope_md;
    pairs_reset(md);
    if (sc == NULL) return 0;
    for (size_t i = 0; i < sc->n_attributes; i++)
        ST_TRY(flatten(m, md, st_str("", 0), bin(sc->attributes[i]->key), sc->attributes[i]->value, 0));
    if (sc->name.len) ST_TRY(pairs_add(md, ST_STR("scope_name"), bin(sc->name)));
    if (sc->version.len) ST_TRY(pairs_add(md, ST_STR("scope_version"), bin(sc->version)));
    if (sc->dropped_attributes_count)
        ST_TRY(put_num_pair(md, "scope_dropped_attributes_count", sc->dropped_attributes_count));
    return 0;
}

/* Loki's ResourceAttrsToStreamLabels: labels (later names win) plus service_name discovery, and the
 * resource's structured metadata. Builds *out. */
static int resource_labels(map_t *m, const Strata__Otlp__Resource *res, st_labels_t *out)
{
    const st_push_limits_t *lim = m->lim;
    pairs_reset(&m->labels);
    pairs_reset(&m->res_md);
    bool has_service = false, service_checked = false;
    size_t nattr = res ? res->n_attributes : 0;
    st_buf_t tmp = ST_BUF_INIT;
    for (size_t i = 0; i < nattr; i++) {
        const kv_t *kv = res->attributes[i];
        st_str_t key = bin(kv->key);
        if (!service_checked && st_str_eqc(key, "service.name")) {
            service_checked = true; /* the first one counts, as pcommon.Map.Get */
            st_buf_reset(&tmp);
            int rc = put_as_string(&tmp, kv->value);
            if (rc < 0) {
                st_buf_free(&tmp);
                return rc;
            }
            has_service = tmp.len > 0;
        }
        int rc =
            flatten(m, is_index_label(lim, key) ? &m->labels : &m->res_md, st_str("", 0), key, kv->value, 0);
        if (rc < 0) {
            st_buf_free(&tmp);
            return rc;
        }
    }
    st_buf_free(&tmp);
    /* a label set: a repeated name keeps its last value */
    size_t n = m->labels.n;
    st_label_t *pairs = malloc((n + 1) * sizeof *pairs);
    if (pairs == NULL) return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        st_str_t nm = pair_name(&m->labels, i), v = pair_value(&m->labels, i);
        size_t j;
        for (j = 0; j < k; j++)
            if (st_str_eq(pairs[j].name, nm)) break;
        pairs[j] = (st_label_t){nm, v};
        if (j == k) k++;
    }
    if (!has_service && lim->discover_service_name_n > 0) {
        st_str_t sv = ST_STR("unknown_service");
        bool found = false;
        for (size_t x = 0; x < lim->discover_service_name_n && !found; x++)
            for (size_t j = 0; j < k && !found; j++)
                if (st_str_eq(pairs[j].name, lim->discover_service_name[x]) && pairs[j].value.n) {
                    sv = pairs[j].value;
                    found = true;
                }
        size_t j;
        for (j = 0; j < k; j++)
            if (st_str_eqc(pairs[j].name, "service_name")) break;
        pairs[j] = (st_label_t){ST_STR("service_name"), sv};
        if (j == k) k++;
    }
    int rc = st_labels_from_pairs(pairs, k, out);
    free(pairs);
    return rc;
}

static int64_t clamp_ns(uint64_t v)
{
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int check_ids(st_push_errors_t *e, const Strata__Otlp__LogRecord *lr)
{
    if (lr->trace_id.len != 0 && lr->trace_id.len != 16)
        return fatal(e, ST_EPARSE, "proto: invalid length for TraceID");
    if (lr->span_id.len != 0 && lr->span_id.len != 8)
        return fatal(e, ST_EPARSE, "proto: invalid length for SpanID");
    return 0;
}

static int map_request(const Strata__Otlp__ExportLogsServiceRequest *req, const st_push_limits_t *lim,
                       st_push_t *p, st_push_errors_t *e)
{
    size_t records = 0;
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const Strata__Otlp__ResourceLogs *rl = req->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Strata__Otlp__ScopeLogs *sl = rl->scope_logs[j];
            records += sl->n_log_records;
            for (size_t k = 0; k < sl->n_log_records; k++) ST_TRY(check_ids(e, sl->log_records[k]));
        }
    }
    if (records == 0)
        return fatal(e, ST_ENOTFOUND, "error at least one valid stream is required for ingestion");
    map_t m;
    memset(&m, 0, sizeof m);
    m.lim = lim;
    m.e = e;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < req->n_resource_logs; i++) {
        const Strata__Otlp__ResourceLogs *rl = req->resource_logs[i];
        st_labels_t labels = ST_LABELS_INIT;
        size_t idx = SIZE_MAX;
        rc = resource_labels(&m, rl->resource, &labels);
        size_t nrec = 0;
        for (size_t j = 0; j < rl->n_scope_logs; j++) nrec += rl->scope_logs[j]->n_log_records;
        if (rc == 0 && nrec > 0)
            rc = st_push_add_stream_flags(p, lim, &labels, ST_PUSH_NO_DISCOVERY, e, &idx);
        st_labels_free(&labels);
        if (idx == SIZE_MAX) continue; /* rejected (recorded in e) or nothing to add */
        for (size_t j = 0; rc == 0 && j < rl->n_scope_logs; j++) {
            const Strata__Otlp__ScopeLogs *sl = rl->scope_logs[j];
            if ((rc = scope_md(&m, sl->scope)) < 0) break;
            for (size_t k = 0; rc == 0 && k < sl->n_log_records; k++) {
                const Strata__Otlp__LogRecord *lr = sl->log_records[k];
                if ((rc = record_md(&m, lr)) < 0) break;
                const pairs_t *lists[3] = {&m.md, &m.res_md, &m.scope_md};
                if ((rc = encode_md(&m, lists, 3)) < 0) break;
                st_buf_reset(&m.line);
                if ((rc = put_as_string(&m.line, lr->body)) < 0) break;
                int64_t ts = lr->time_unix_nano            ? clamp_ns(lr->time_unix_nano)
                             : lr->observed_time_unix_nano ? clamp_ns(lr->observed_time_unix_nano)
                                                           : lim->now_ns;
                rc = st_push_add_entry(p, lim, idx, ts, st_str(m.line.data ? m.line.data : "", m.line.len),
                                       st_str(m.mdenc.data ? m.mdenc.data : "", m.mdenc.len), e);
            }
        }
    }
    map_free(&m);
    if (rc == 0) st_push_errors_finish(e);
    return rc;
}

int st_push_decode_otlp(st_str_t body, st_otlp_format_t fmt, const st_push_limits_t *lim, st_push_t *p,
                        st_push_errors_t *errs)
{
    if (fmt == ST_OTLP_PROTOBUF) {
        const uint8_t *b = (const uint8_t *)(body.p ? body.p : "");
        if (!pb_depth_ok(&strata__otlp__export_logs_service_request__descriptor, b, b + body.n, 0))
            return fatal(errs, ST_EPARSE,
                         "proto: invalid ExportLogsServiceRequest (malformed or nested too deeply)");
        /* unpack into the arena: one free for the request's many small allocations */
        arena_t pa = {NULL};
        ProtobufCAllocator alloc = {.alloc = pb_alloc, .free = pb_free, .allocator_data = &pa};
        Strata__Otlp__ExportLogsServiceRequest *req =
            strata__otlp__export_logs_service_request__unpack(&alloc, body.n, b);
        if (req == NULL) {
            arena_free(&pa);
            return fatal(errs, ST_EPARSE, "proto: invalid ExportLogsServiceRequest (malformed protobuf)");
        }
        int rc = map_request(req, lim, p, errs);
        arena_free(&pa);
        return rc;
    }
    arena_t a = {NULL};
    jdec_t d;
    memset(&d, 0, sizeof d);
    d.a = &a;
    d.e = errs;
    Strata__Otlp__ExportLogsServiceRequest *req = NULL;
    int rc = decode_json(&d, body, &req);
    if (rc == 0) rc = map_request(req, lim, p, errs);
    st_buf_free(&d.s1);
    st_buf_free(&d.s2);
    arena_free(&a);
    return rc;
}
