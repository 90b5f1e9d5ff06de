/* fuzz_http.c: libFuzzer target for the http module's request handling without sockets. The input
 * (after a first byte choosing a split size) is fed to a simulated connection once whole and once in
 * small pieces, through the real parse/limit/route/respond code; handlers parse forms and summarize
 * each request as a hash. Both runs must give the same answers (only 431 vs 400 may differ, since
 * the exact header size is known per read), and st_url_decode is checked on the raw input too. */
#include "common/err.h"
#include "http/http_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER 2048
#define MAX_BODY   8192

#define FCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "fuzz_http: check failed at line %d: %s\n", __LINE__, #x);                       \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static st_http_server_t *srv;
static st_http_req_t *held;

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

static void h_any(st_http_req_t *r, void *arg)
{
    FCHECK(r->body.len <= MAX_BODY);
    FCHECK(r->path.n > 0);
    FCHECK(r->target.n > 0 && r->target.n <= MAX_HEADER);
    FCHECK(r->route.n > 0);
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, r->method_name.p, r->method_name.n);
    h = fnv(h, r->path.p, r->path.n);
    h = fnv(h, r->query.p, r->query.n);
    h = fnv(h, r->body.data, r->body.len);
    for (size_t i = 0; i < r->nheaders; i++) {
        st_str_t v = r->headers[i].value;
        FCHECK(v.n == 0 || (v.p[0] != ' ' && v.p[v.n - 1] != ' '));
        h = fnv(h, r->headers[i].name.p, r->headers[i].name.n);
        h = fnv(h, v.p, v.n);
    }
    st_str_t param = st_http_path_param(r);
    h = fnv(h, param.p, param.n);
    st_http_form_t f;
    int rc = st_http_form_parse(r, &f);
    if (rc == ST_EPARSE) {
        st_http_respond_error(r, 400, "bad form", true);
        return;
    }
    FCHECK(rc == 0);
    for (size_t i = 0; i < f.n; i++) {
        FCHECK(st_http_form_get(&f, f.v[i].key) != NULL);
        h = fnv(h, f.v[i].key, strlen(f.v[i].key));
        h = fnv(h, f.v[i].value, f.v[i].value_len);
    }
    st_http_form_free(&f);
    char hex[32];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    FCHECK(st_http_add_header(r, "X-Sum", hex) == 0);
    st_str_t v;
    if (st_http_header(r, "X-Status", &v) && v.n > 0) {
        /* The input picks the status (no-body and invalid-status paths) from a fixed set, so that the
         * per-code metric series stay few. */
        static const int codes[] = {200, 204, 304, 101, 1000, 499, 503};
        int st = codes[(unsigned char)v.p[v.n - 1] % (sizeof codes / sizeof codes[0])];
        st_http_respond(r, st, NULL, hex, 16);
        return;
    }
    st_http_respond(r, 200, "text/plain", hex, 16);
}

static void h_hold(st_http_req_t *r, void *arg)
{
    held = r;
}

static void init(void)
{
    st_http_opts_t o = {.max_header_bytes = MAX_HEADER, .max_body_bytes = MAX_BODY};
    FCHECK(st__http_sim_server_create(&o, &srv) == 0);
    unsigned all =
        ST_HTTP_GET | ST_HTTP_POST | ST_HTTP_PUT | ST_HTTP_DELETE | ST_HTTP_OPTIONS | ST_HTTP_OTHER;
    FCHECK(st_http_route(srv, all | ST_HTTP_HEAD, "/", h_any, NULL) == 0);
    FCHECK(st_http_route(srv, all, "/a/*/b", h_any, NULL) == 0);
    FCHECK(st_http_route(srv, ST_HTTP_GET | ST_HTTP_POST, "/f", h_any, NULL) == 0);
    FCHECK(st_http_route(srv, ST_HTTP_GET, "/hold", h_hold, NULL) == 0);
    FCHECK(st_http_route(srv, ST_HTTP_POST, "/p/*", h_any, NULL) == 0);
}

/* Output without Date lines and interim 100 Continue responses (they legitimately differ). A 100
 * may directly follow a body, so it is removed wherever it appears (bodies are hashes or fixed text). */
static void normalize(st_str_t in, st_buf_t *out)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    st_buf_t tmp = ST_BUF_INIT;
    size_t i = 0;
    while (i < in.n) {
        const char *hit = memmem(in.p + i, in.n - i, cont, sizeof cont - 1);
        size_t end = hit ? (size_t)(hit - in.p) : in.n;
        st_buf_append(&tmp, in.p + i, end - i);
        i = hit ? end + sizeof cont - 1 : in.n;
    }
    i = 0;
    while (i < tmp.len) {
        size_t e = i;
        while (e < tmp.len && tmp.data[e] != '\n') e++;
        if (e < tmp.len) e++;
        if (!(e - i >= 6 && memcmp(tmp.data + i, "Date: ", 6) == 0)) st_buf_append(out, tmp.data + i, e - i);
        i = e;
    }
    st_buf_free(&tmp);
}

/* Status codes in order. Response bodies are hashes and fixed texts, so "HTTP/1.1 " only starts
 * status lines. */
static size_t statuses(st_str_t s, int *codes, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i + 12 <= s.n && n < max; i++) {
        if (memcmp(s.p + i, "HTTP/1.1 ", 9) != 0) continue;
        codes[n++] = (s.p[i + 9] - '0') * 100 + (s.p[i + 10] - '0') * 10 + (s.p[i + 11] - '0');
    }
    return n;
}

static void run(const uint8_t *data, size_t size, size_t step, st_buf_t *out, bool *closed)
{
    st_http_conn_t *c = st__http_sim_open(srv);
    FCHECK(c != NULL);
    held = NULL;
    if (step == 0) step = size ? size : 1;
    for (size_t off = 0; off < size && !st__http_sim_closed(c); off += step) {
        st__http_sim_feed(c, data + off, size - off < step ? size - off : step);
        while (held) { /* answered from outside the handler, as a queued-work handler would */
            st_http_req_t *r = held;
            held = NULL;
            st_http_respond(r, 202, NULL, NULL, 0);
            st__http_sim_flush(c);
        }
    }
    st_str_t o = st__http_sim_output(c);
    FCHECK(o.n == 0 || (o.n > 12 && memcmp(o.p, "HTTP/1.1 ", 9) == 0));
    normalize(o, out);
    *closed = st__http_sim_closed(c);
    st__http_sim_close(c);
    FCHECK(st_http_active_requests(srv) == 0);
    FCHECK(st_http_connections(srv) == 0);
}

/* On a differential failure, shows both runs (escaped) before aborting. */
static void dump(const char *tag, const st_buf_t *b)
{
    fprintf(stderr, "=== %s (%zu bytes)\n", tag, b->len);
    for (size_t i = 0; i < b->len; i++) {
        unsigned char ch = (unsigned char)b->data[i];
        if (ch == '\n' || (ch >= 32 && ch < 127))
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
    fputc('\n', stderr);
}

#define DCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            dump("whole", &whole);                                                                           \
            dump("split", &split);                                                                           \
            FCHECK(x);                                                                                       \
        }                                                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL) init();
    if (size < 1) return 0;
    size_t step = (size_t)(data[0] % 32) + 1;
    data++;
    size--;

    /* st_url_decode: never grows, plus only changes '+' */
    st_buf_t d1 = ST_BUF_INIT, d2 = ST_BUF_INIT;
    int r1 = st_url_decode(st_str((const char *)data, size), true, &d1);
    int r2 = st_url_decode(st_str((const char *)data, size), false, &d2);
    FCHECK(r1 == r2 && (r1 == 0 || r1 == ST_EPARSE));
    if (r1 == 0) FCHECK(d1.len == d2.len && d1.len <= size);
    st_buf_free(&d1);
    st_buf_free(&d2);

    /* access-log quoting: one quoted token, no raw control bytes, bounded */
    st_buf_t q = ST_BUF_INIT;
    st__http_logfmt_quote(&q, st_str((const char *)data, size), 512);
    const char *qs = st_buf_cstr(&q);
    FCHECK(qs != NULL && q.len >= 2 && qs[0] == '"' && qs[q.len - 1] == '"' && strlen(qs) == q.len);
    FCHECK(q.len <= 2 + 4 * 512 + 3);
    for (size_t i = 1; i + 1 < q.len; i++) {
        FCHECK((unsigned char)qs[i] >= 0x20 && qs[i] != 0x7f);
        if (qs[i] == '\\')
            i++; /* escaped char */
        else
            FCHECK(qs[i] != '"');
    }
    st_buf_free(&q);

    st_buf_t whole = ST_BUF_INIT, split = ST_BUF_INIT;
    bool cw = false, cs = false;
    run(data, size, 0, &whole, &cw);
    run(data, size, step, &split, &cs);

    int a[512], b[512];
    size_t na = statuses(st_str(whole.data, whole.len), a, 512);
    size_t nb = statuses(st_str(split.data, split.len), b, 512);
    DCHECK(na == nb);
    bool hdr_limit = false;
    for (size_t i = 0; i < na; i++) {
        if (a[i] == b[i]) continue;
        /* Only the last answer may differ, and only between "too large headers" and "malformed". */
        DCHECK(i == na - 1);
        DCHECK((a[i] == 431 || a[i] == 400) && (b[i] == 431 || b[i] == 400));
        hdr_limit = true;
    }
    if (!hdr_limit && na < 512) {
        DCHECK(whole.len == split.len);
        DCHECK(whole.len == 0 || memcmp(whole.data, split.data, whole.len) == 0);
        DCHECK(cw == cs);
    }
    st_buf_free(&whole);
    st_buf_free(&split);
    return 0;
}
