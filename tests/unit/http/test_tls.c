/* test_tls.c: the http module over TLS. A throwaway CA, server and client certificates are generated
 * with OpenSSL's APIs into the test's temporary directory; servers run on their own libuv loop thread
 * on 127.0.0.1:0 and an OpenSSL client on blocking sockets talks to them: handshake and ALPN,
 * keep-alive, pipelining, chunked and large bodies, a WebSocket upgrade (wss), session resumption,
 * garbage and plain HTTP instead of a ClientHello, handshake and request timeouts, the connection
 * limit, client certificates (required, verified, optional, rogue), the minimum version, a
 * certificate reload, graceful shutdown, configuration errors and the metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/metrics.h"
#include "http/http_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Handlers run on the loop thread, where cmocka's assertions (longjmp) must not be used. */
#define HCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: handler check failed: %s\n", __FILE__, __LINE__, #x);                    \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

#define BIG_LEN ((size_t)8 << 20)

static char dir[1024];
static char ca_crt[1100], srv_crt[1100], srv_key[1100], cli_crt[1100], cli_key[1100], rogue_crt[1100],
    rogue_key[1100], srv2_crt[1100], srv2_key[1100], bad_pem[1100];

/* ------------------------------------------------------------------------------------------------ */
/* certificates */

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(e);
    assert_int_equal(X509_add_ext(x, e, -1), 1);
    X509_EXTENSION_free(e);
}

/* A P-256 certificate for key, signed by issuer (self-signed when NULL). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                       long serial)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"Strata Test", -1, -1, 0);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
    X509 *is = issuer ? issuer : x;
    if (ca) {
        add_ext(x, is, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, is, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, is, NID_basic_constraints, "CA:FALSE");
        add_ext(x, is, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    }
    assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
    return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    if (x) assert_int_equal(PEM_write_X509(f, x), 1);
    if (k) assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void make_certs(void)
{
    const char *base = getenv("ST_TEST_TMPDIR");
    if (base == NULL) base = "/tmp";
    mkdir(base, 0755);
    snprintf(dir, sizeof dir, "%s/tls-%d", base, (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
#define P(var, name) snprintf(var, sizeof var, "%s/%s", dir, name)
    P(ca_crt, "ca.crt");
    P(srv_crt, "server.crt");
    P(srv_key, "server.key");
    P(cli_crt, "client.crt");
    P(cli_key, "client.key");
    P(rogue_crt, "rogue.crt");
    P(rogue_key, "rogue.key");
    P(srv2_crt, "server2.crt");
    P(srv2_key, "server2.key");
    P(bad_pem, "bad.pem");
#undef P
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *sk = EVP_EC_gen("P-256"), *ck = EVP_EC_gen("P-256"),
             *rk = EVP_EC_gen("P-256"), *s2k = EVP_EC_gen("P-256");
    assert_true(cak && sk && ck && rk && s2k);
    X509 *ca = make_cert(cak, "Strata Test CA", NULL, NULL, true, 1);
    X509 *sc = make_cert(sk, "localhost", ca, cak, false, 2);
    X509 *cc = make_cert(ck, "client-1", ca, cak, false, 3);
    X509 *rc = make_cert(rk, "client-1", NULL, NULL, false, 4); /* same name, not from the CA */
    X509 *s2 = make_cert(s2k, "reloaded.localhost", ca, cak, false, 5);
    write_pem(ca_crt, ca, NULL);
    write_pem(srv_crt, sc, NULL);
    write_pem(srv_key, NULL, sk);
    write_pem(cli_crt, cc, NULL);
    write_pem(cli_key, NULL, ck);
    write_pem(rogue_crt, rc, NULL);
    write_pem(rogue_key, NULL, rk);
    write_pem(srv2_crt, s2, NULL);
    write_pem(srv2_key, NULL, s2k);
    FILE *f = fopen(bad_pem, "w");
    fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
    fclose(f);
    X509_free(ca), X509_free(sc), X509_free(cc), X509_free(rc), X509_free(s2);
    EVP_PKEY_free(cak), EVP_PKEY_free(sk), EVP_PKEY_free(ck), EVP_PKEY_free(rk), EVP_PKEY_free(s2k);
}

static void remove_certs(void)
{
    const char *files[] = {ca_crt,    srv_crt,   srv_key,  cli_crt,  cli_key,
                           rogue_crt, rogue_key, srv2_crt, srv2_key, bad_pem};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(files[i]);
    rmdir(dir);
}

/* ------------------------------------------------------------------------------------------------ */
/* handlers */

static void h_hello(st_http_req_t *r, void *arg)
{
    HCHECK(st_http_req_tls(r));
    st_http_respond(r, 200, "text/plain", "hello", 5);
}

static void h_echo(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 200, "application/octet-stream", r->body.data, r->body.len);
}

static void h_big(st_http_req_t *r, void *arg)
{
    st_buf_t b = ST_BUF_INIT;
    HCHECK(st_buf_reserve(&b, BIG_LEN) == 0);
    for (size_t i = 0; i < BIG_LEN; i++) b.data[i] = (char)('a' + i % 26);
    b.len = BIG_LEN;
    st_http_respond_buf(r, 200, "application/octet-stream", &b);
}

static void h_cn(st_http_req_t *r, void *arg)
{
    const char *cn = st_http_tls_peer_cn(r);
    st_http_respond(r, 200, "text/plain", cn ? cn : "-", cn ? strlen(cn) : 1);
}

static void work_sleep(st_http_req_t *r, void *arg)
{
    usleep(300 * 1000);
}

static void work_done(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 200, "text/plain", "slept", 5);
}

static void h_slow(st_http_req_t *r, void *arg)
{
    HCHECK(st_http_queue_work(r, work_sleep, work_done, NULL) == 0);
}

static void ws_echo(st_http_ws_t *ws, int opcode, const void *data, size_t len, void *arg)
{
    HCHECK(st_http_ws_send(ws, opcode, data, len) == 0);
}

static void h_ws(st_http_req_t *r, void *arg)
{
    st_http_ws_opts_t o = {.on_message = ws_echo};
    st_http_ws_t *ws;
    st_http_ws_accept(r, &o, NULL, &ws);
}

static st_http_tls_t *reload_to; /* set by the test before it asks for /reload */

static void h_reload(st_http_req_t *r, void *arg)
{
    st_http_server_t *s = arg;
    HCHECK(st_http_server_set_tls(s, reload_to) == 0);
    st_http_respond(r, 200, "text/plain", "reloaded", 8);
}

/* ------------------------------------------------------------------------------------------------ */
/* servers on a loop thread */

typedef struct {
    uv_loop_t loop;
    uv_async_t async;
    st_http_server_t *srv;
    pthread_t th;
    int port;
    atomic_int shutdown_done;
    bool shutting, triggered;
} ts_t;

static void on_shutdown_done(void *arg)
{
    ts_t *t = arg;
    atomic_store(&t->shutdown_done, 1);
    uv_close((uv_handle_t *)&t->async, NULL);
}

static void on_async(uv_async_t *a)
{
    ts_t *t = a->data;
    if (t->shutting) return;
    t->shutting = true;
    st_http_server_shutdown(t->srv, on_shutdown_done, t);
}

static void *loop_main(void *arg)
{
    ts_t *t = arg;
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

static st_http_tls_opts_t tls_opts(st_http_tls_client_auth_t auth)
{
    return (st_http_tls_opts_t){.cert_file = srv_crt,
                                .key_file = srv_key,
                                .client_auth = auth,
                                .client_ca_file = auth == ST_HTTP_TLS_NO_CLIENT_CERT ? NULL : ca_crt};
}

static st_http_opts_t http_opts(void)
{
    return (st_http_opts_t){.host = "127.0.0.1",
                            .max_header_bytes = 8192,
                            .max_body_bytes = 16u << 20,
                            .read_timeout_ns = 5000000000LL,
                            .write_timeout_ns = 5000000000LL,
                            .idle_timeout_ns = 5000000000LL};
}

static ts_t *ts_start(st_http_opts_t o, const st_http_tls_opts_t *to)
{
    char err[512];
    st_http_tls_t *tls = NULL;
    int rc = st_http_tls_new(to, &tls, err, sizeof err);
    if (rc != 0) fail_msg("st_http_tls_new: %d %s", rc, err);
    ts_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    o.tls = tls;
    assert_int_equal(st_http_server_create(&t->loop, &o, &t->srv), 0);
    st_http_tls_free(tls); /* the server keeps its own reference */
    t->port = st_http_port(t->srv);
    st_http_server_t *s = t->srv;
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/hello", h_hello, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_POST, "/echo", h_echo, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/big", h_big, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/cn", h_cn, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/slow", h_slow, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/ws", h_ws, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/reload", h_reload, s), 0);
    t->async.data = t;
    assert_int_equal(uv_async_init(&t->loop, &t->async, on_async), 0);
    assert_int_equal(pthread_create(&t->th, NULL, loop_main, t), 0);
    return t;
}

static void ts_stop(ts_t *t)
{
    if (!t->triggered) uv_async_send(&t->async);
    t->triggered = true;
    pthread_join(t->th, NULL);
    assert_int_equal(atomic_load(&t->shutdown_done), 1);
    st_http_server_destroy(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
}

/* ------------------------------------------------------------------------------------------------ */
/* an OpenSSL client on a blocking socket */

typedef struct {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char *buf;
    size_t len, cap;
} cli_t;

typedef struct {
    int status;
    char head[8192];
    st_buf_t body;
} resp_t;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int raw_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

typedef struct {
    const char *cert, *key; /* client certificate (NULL: none) */
    int max_version;        /* 0: any */
    SSL_SESSION *session;   /* resume this session */
} cli_opts_t;

/* Connects and handshakes; returns NULL when the handshake fails. */
static cli_t *cli_open(int port, const cli_opts_t *o)
{
    cli_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(c->ctx);
    assert_int_equal(SSL_CTX_load_verify_locations(c->ctx, ca_crt, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    if (o && o->cert) {
        assert_int_equal(SSL_CTX_use_certificate_file(c->ctx, o->cert, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(c->ctx, o->key, SSL_FILETYPE_PEM), 1);
    }
    if (o && o->max_version) SSL_CTX_set_max_proto_version(c->ctx, o->max_version);
    static const unsigned char alpn[] = "\x02h2\x08http/1.1";
    assert_int_equal(SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof alpn - 1), 0);
    c->fd = raw_connect(port);
    c->ssl = SSL_new(c->ctx);
    assert_non_null(c->ssl);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_tlsext_host_name(c->ssl, "localhost");
    SSL_set1_host(c->ssl, "localhost");
    if (o && o->session) SSL_set_session(c->ssl, o->session);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    if (SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        SSL_free(c->ssl);
        SSL_CTX_free(c->ctx);
        close(c->fd);
        free(c->buf);
        free(c);
        return NULL;
    }
    return c;
}

static void cli_close(cli_t *c)
{
    if (c == NULL) return;
    SSL_shutdown(c->ssl); /* close_notify; without it OpenSSL would not resume the session later */
    ERR_clear_error();
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
    free(c->buf);
    free(c);
}

static int cli_send_n(cli_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        int w = SSL_write(c->ssl, s, n > INT_MAX ? INT_MAX : (int)n);
        if (w <= 0) {
            ERR_clear_error();
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void cli_send(cli_t *c, const char *s)
{
    assert_int_equal(cli_send_n(c, s, strlen(s)), 0);
}

/* Reads more plaintext; returns bytes read, 0 on a clean end, -1 on an error or timeout. */
static int cli_fill(cli_t *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    int n = SSL_read(c->ssl, c->buf + c->len, (int)(c->cap - c->len));
    if (n > 0) {
        c->len += (size_t)n;
        return n;
    }
    int e = SSL_get_error(c->ssl, n);
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static const char *find_crlf2(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) return p + i;
    return NULL;
}

static const char *hdr(const resp_t *r, const char *name)
{
    static char val[256];
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(r->head, pat);
    if (p == NULL) return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\r");
    if (n >= sizeof val) n = sizeof val - 1;
    memcpy(val, p, n);
    val[n] = '\0';
    return val;
}

/* Reads one response (Content-Length bodies). Returns 0 or -1. */
static int cli_read(cli_t *c, resp_t *r)
{
    memset(r, 0, sizeof *r);
    const char *e;
    while ((e = find_crlf2(c->buf, c->len)) == NULL)
        if (cli_fill(c) <= 0) return -1;
    size_t hl = (size_t)(e - c->buf) + 4;
    assert_true(hl < sizeof r->head);
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1) return -1;
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    const char *cl = hdr(r, "Content-Length");
    size_t n = cl ? (size_t)strtoull(cl, NULL, 10) : 0;
    while (c->len < n)
        if (cli_fill(c) <= 0) return -1;
    st_buf_append(&r->body, c->buf, n);
    st_buf_cstr(&r->body);
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    return 0;
}

/* True when the server ends the connection (close_notify, EOF or reset) within timeout_ms. */
static bool cli_ended(cli_t *c, int timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int64_t end = now_ms() + timeout_ms;
    while (now_ms() < end) {
        if (SSL_pending(c->ssl) == 0 && poll(&pfd, 1, (int)(end - now_ms())) <= 0) return false;
        char b[256];
        int n = SSL_read(c->ssl, b, sizeof b);
        if (n <= 0) {
            ERR_clear_error();
            return true;
        }
    }
    return false;
}

static void resp_free(resp_t *r)
{
    st_buf_free(&r->body);
}

static void expect_body(const resp_t *r, int status, const char *body)
{
    assert_int_equal(r->status, status);
    assert_int_equal(r->body.len, strlen(body));
    assert_memory_equal(r->body.data, body, r->body.len);
}

/* GET path on a fresh connection: the status (-1 when the handshake or the request failed). */
static int get_status(int port, const cli_opts_t *o, const char *path, char *body, size_t bodysz)
{
    cli_t *c = cli_open(port, o);
    if (c == NULL) return -1;
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path);
    resp_t r;
    int status = -1;
    if (cli_send_n(c, req, strlen(req)) == 0 && cli_read(c, &r) == 0) {
        status = r.status;
        if (body) snprintf(body, bodysz, "%s", r.body.data ? r.body.data : "");
        resp_free(&r);
    }
    cli_close(c);
    return status;
}

/* Raw TCP: sends bytes, then reads until the server closes; returns what it sent back. */
static size_t raw_exchange(int port, const void *data, size_t len, char *out, size_t outsz, bool *closed)
{
    int fd = raw_connect(port);
    assert_int_equal(send(fd, data, len, MSG_NOSIGNAL), (ssize_t)len);
    size_t got = 0;
    *closed = false;
    for (;;) {
        ssize_t n = recv(fd, out + got, outsz - 1 - got, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            *closed = true;
            break;
        }
        if (n < 0) break; /* timeout */
        got += (size_t)n;
        if (got == outsz - 1) break;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

static uint64_t metric(const char *name, const char *labels)
{
    return st_counter_value(st_counter(name, "", labels));
}

static uint64_t tls_errors(const char *reason)
{
    char l[64];
    snprintf(l, sizeof l, "reason=\"%s\"", reason);
    return metric("strata_http_tls_errors_total", l);
}

/* ------------------------------------------------------------------------------------------------ */
/* tests on the shared server (no client certificates) */

static ts_t *shared;

static int group_setup(void **state)
{
    make_certs();
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    shared = ts_start(http_opts(), &to);
    return 0;
}

static int group_teardown(void **state)
{
    ts_stop(shared);
    remove_certs();
    return 0;
}

static void test_handshake_keepalive_pipelining(void **state)
{
    uint64_t hs0 = metric("strata_http_tls_handshakes_total", "resumed=\"false\"");
    cli_t *c = cli_open(shared->port, NULL);
    assert_non_null(c);
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    assert_int_equal(alen, 8);
    assert_memory_equal(alpn, "http/1.1", 8);
    assert_string_equal(SSL_get_version(c->ssl), "TLSv1.3");

    resp_t r;
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "hello");
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    resp_free(&r);
    /* keep-alive: more requests on the same connection */
    for (int i = 0; i < 3; i++) {
        cli_send(c, "GET /cn HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_int_equal(cli_read(c, &r), 0);
        expect_body(&r, 200, "-");
        resp_free(&r);
    }
    /* pipelining: three requests in one TLS record, answered in order */
    cli_send(
        c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
           "abcGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "abc");
    resp_free(&r);
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 404, "404 page not found\n");
    resp_free(&r);
    /* many pipelined requests in one go: decrypted input waits while each answer is written */
    st_buf_t many = ST_BUF_INIT;
    for (int i = 0; i < 1000; i++) st_buf_printf(&many, "GET /cn HTTP/1.1\r\nHost: x\r\nX-N: %d\r\n\r\n", i);
    assert_int_equal(cli_send_n(c, many.data, many.len), 0);
    st_buf_free(&many);
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(cli_read(c, &r), 0);
        expect_body(&r, 200, "-");
        resp_free(&r);
    }
    /* Connection: close gets a close_notify after the answer */
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "hello");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_int_equal(cli_fill(c), 0); /* SSL_ERROR_ZERO_RETURN: a clean TLS close */
    cli_close(c);
    assert_true(metric("strata_http_tls_handshakes_total", "resumed=\"false\"") >= hs0 + 1);
}

static void test_large_and_chunked_bodies(void **state)
{
    cli_t *c = cli_open(shared->port, NULL);
    assert_non_null(c);
    resp_t r;
    /* a large response: 8 MiB in many records */
    cli_send(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i += 4099) assert_int_equal(r.body.data[i], 'a' + i % 26);
    resp_free(&r);
    /* a large request body (3 MiB, several reads) echoed back */
    size_t n = 3u << 20;
    char *body = malloc(n);
    assert_non_null(body);
    for (size_t i = 0; i < n; i++) body[i] = (char)(i * 7 + 3);
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", n);
    cli_send(c, head);
    assert_int_equal(cli_send_n(c, body, n), 0);
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, n);
    assert_memory_equal(r.body.data, body, n);
    resp_free(&r);
    /* a chunked body, chunks split across records, with Expect: 100-continue */
    cli_send(c,
             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    while (find_crlf2(c->buf, c->len) == NULL) assert_true(cli_fill(c) > 0);
    assert_int_equal(strncmp(c->buf, "HTTP/1.1 100 Continue\r\n\r\n", 25), 0);
    memmove(c->buf, c->buf + 25, c->len - 25);
    c->len -= 25;
    cli_send(c, "5\r\nhello\r\n");
    cli_send(c, "1");
    cli_send(c, "\r\n \r\n0\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "hello ");
    resp_free(&r);
    free(body);
    cli_close(c);
}

/* Client frame (masked) and reading one server frame. */
static void ws_send(cli_t *c, int opcode, const char *payload)
{
    static const uint8_t mask[4] = {9, 8, 7, 6};
    uint8_t h[14];
    size_t len = strlen(payload);
    size_t hl = st__ws_frame_header(h, opcode, len, mask);
    st_buf_t b = ST_BUF_INIT;
    st_buf_append(&b, h, hl);
    for (size_t i = 0; i < len; i++) st_buf_putc(&b, (char)(payload[i] ^ mask[i & 3]));
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    st_buf_free(&b);
}

static void test_websocket(void **state)
{
    cli_t *c = cli_open(shared->port, NULL);
    assert_non_null(c);
    cli_send(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    const char *e;
    while ((e = find_crlf2(c->buf, c->len)) == NULL) assert_true(cli_fill(c) > 0);
    assert_int_equal(strncmp(c->buf, "HTTP/1.1 101 ", 13), 0);
    assert_non_null(strstr(c->buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    size_t hl = (size_t)(e - c->buf) + 4;
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    const char *msgs[] = {"over wss", "second message, a little longer than the first one"};
    for (size_t m = 0; m < 2; m++) {
        ws_send(c, ST_WS_TEXT, msgs[m]);
        size_t want = 2 + strlen(msgs[m]);
        while (c->len < want) assert_true(cli_fill(c) > 0);
        assert_int_equal((uint8_t)c->buf[0], 0x81);
        assert_int_equal((uint8_t)c->buf[1], strlen(msgs[m]));
        assert_memory_equal(c->buf + 2, msgs[m], strlen(msgs[m]));
        memmove(c->buf, c->buf + want, c->len - want);
        c->len -= want;
    }
    /* close handshake: the server answers 1000, then ends the connection */
    static const uint8_t close_frame[] = {0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8};
    assert_int_equal(cli_send_n(c, close_frame, sizeof close_frame), 0);
    while (c->len < 4) assert_true(cli_fill(c) > 0);
    assert_int_equal((uint8_t)c->buf[0], 0x88);
    assert_int_equal((uint8_t)c->buf[2] << 8 | (uint8_t)c->buf[3], 1000);
    c->len = 0;
    assert_true(cli_ended(c, 3000));
    cli_close(c);
}

static void test_resumption(void **state)
{
    uint64_t resumed0 = metric("strata_http_tls_handshakes_total", "resumed=\"true\"");
    cli_t *c = cli_open(shared->port, NULL);
    assert_non_null(c);
    resp_t r;
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0); /* the TLS 1.3 tickets arrive with or before the answer */
    resp_free(&r);
    SSL_SESSION *sess = SSL_get1_session(c->ssl);
    assert_non_null(sess);
    assert_true(SSL_SESSION_is_resumable(sess));
    cli_close(c);
    for (int v = 0; v < 2; v++) {
        cli_opts_t o = {.session = sess};
        c = cli_open(shared->port, &o);
        assert_non_null(c);
        assert_int_equal(SSL_session_reused(c->ssl), 1);
        cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(cli_read(c, &r), 0);
        expect_body(&r, 200, "hello");
        resp_free(&r);
        SSL_SESSION_free(sess);
        sess = SSL_get1_session(c->ssl);
        cli_close(c);
    }
    SSL_SESSION_free(sess);
    /* TLS 1.2 resumes too */
    cli_opts_t o12 = {.max_version = TLS1_2_VERSION};
    c = cli_open(shared->port, &o12);
    assert_non_null(c);
    assert_string_equal(SSL_get_version(c->ssl), "TLSv1.2");
    sess = SSL_get1_session(c->ssl);
    cli_close(c);
    o12.session = sess;
    c = cli_open(shared->port, &o12);
    assert_non_null(c);
    assert_int_equal(SSL_session_reused(c->ssl), 1);
    cli_close(c);
    SSL_SESSION_free(sess);
    /* the server counts handshakes as soon as they complete; allow it a moment */
    int64_t end = now_ms() + 2000;
    while (metric("strata_http_tls_handshakes_total", "resumed=\"true\"") < resumed0 + 3 && now_ms() < end)
        usleep(5000);
    assert_true(metric("strata_http_tls_handshakes_total", "resumed=\"true\"") >= resumed0 + 3);
}

static void test_garbage_and_plain_http(void **state)
{
    char out[4096];
    bool closed;
    uint64_t plain0 = tls_errors("plain_http"), hs0 = tls_errors("handshake");

    /* plain HTTP on the TLS port: Go's answer, then the connection ends */
    raw_exchange(shared->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 33, out, sizeof out, &closed);
    assert_true(closed);
    assert_string_equal(out,
                        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n");
    raw_exchange(shared->port, "POST /loki/api/v1/push HTTP/1.1\r\n", 33, out, sizeof out, &closed);
    assert_true(closed);
    assert_int_equal(strncmp(out, "HTTP/1.0 400 Bad Request\r\n", 26), 0);
    assert_int_equal(tls_errors("plain_http"), plain0 + 2);

    /* garbage: at most an alert, then the end */
    static const char junk[] = "\x16\x03\x01\x00\x05hello this is not a ClientHello at all................";
    size_t n = raw_exchange(shared->port, junk, sizeof junk - 1, out, sizeof out, &closed);
    assert_true(closed);
    if (n > 0) assert_int_equal((uint8_t)out[0], 0x15); /* an alert record */
    uint8_t rnd[300];
    for (size_t i = 0; i < sizeof rnd; i++) rnd[i] = (uint8_t)(i * 37 + 11);
    raw_exchange(shared->port, rnd, sizeof rnd, out, sizeof out, &closed);
    assert_true(closed);
    raw_exchange(shared->port, "SSH-2.0-OpenSSH_9.2\r\n", 21, out, sizeof out, &closed);
    assert_true(closed);
    assert_int_equal(tls_errors("handshake"), hs0 + 3);

    /* garbage after a completed handshake: a protocol error, the connection ends */
    uint64_t proto0 = tls_errors("protocol");
    cli_t *c = cli_open(shared->port, NULL);
    assert_non_null(c);
    assert_int_equal(send(c->fd, "\x17\x03\x03\x00\x20 thirty-two bytes of no record..", 37, MSG_NOSIGNAL),
                     37);
    assert_true(cli_ended(c, 3000));
    cli_close(c);
    int64_t end = now_ms() + 2000;
    while (tls_errors("protocol") < proto0 + 1 && now_ms() < end) usleep(5000);
    assert_int_equal(tls_errors("protocol"), proto0 + 1);

    /* the server keeps serving */
    char body[64];
    assert_int_equal(get_status(shared->port, NULL, "/hello", body, sizeof body), 200);
    assert_string_equal(body, "hello");
}

static void test_config_errors(void **state)
{
    char err[512];
    st_http_tls_t *t = NULL;
    st_http_tls_opts_t o = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), 0);
    assert_string_equal(st_http_tls_subject(t), "CN=localhost,O=Strata Test");
    int64_t now = (int64_t)time(NULL);
    assert_true(st_http_tls_not_after(t) > now + 86000 && st_http_tls_not_after(t) < now + 86500);
    st_http_tls_free(t);
    st_http_tls_free(NULL);

    o.key_file = cli_key; /* another certificate's key */
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EIO);
    if (strstr(err, "does not match certificate") == NULL) fail_msg("%s", err);
    o = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    char missing[1200];
    snprintf(missing, sizeof missing, "%s/missing.crt", dir);
    o.cert_file = missing;
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EIO);
    assert_int_equal(strncmp(err, "certificate ", 12), 0);
    assert_non_null(strstr(err, missing));
    o.cert_file = bad_pem;
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EIO);
    assert_non_null(strstr(err, bad_pem));
    o = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    o.key_file = srv_crt; /* no key in it */
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EIO);
    assert_int_equal(strncmp(err, "private key ", 12), 0);
    o.key_file = "";
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EINVAL);
    o = tls_opts(ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT);
    o.client_ca_file = NULL;
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "client CA"));
    o.client_ca_file = bad_pem;
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), -EIO);
    assert_non_null(strstr(err, bad_pem));
    o = tls_opts(ST_HTTP_TLS_REQUEST_CLIENT_CERT);
    o.client_ca_file = NULL; /* optional when certificates are not verified */
    assert_int_equal(st_http_tls_new(&o, &t, err, sizeof err), 0);
    st_http_tls_free(t);

    st_http_tls_client_auth_t a;
    assert_int_equal(st_http_tls_client_auth_parse("RequireAndVerifyClientCert", &a), 0);
    assert_int_equal(a, ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT);
    assert_int_equal(st_http_tls_client_auth_parse("NoClientCert", &a), 0);
    assert_int_equal(a, ST_HTTP_TLS_NO_CLIENT_CERT);
    assert_int_equal(st_http_tls_client_auth_parse("noclientcert", &a), -EINVAL);
    st_http_tls_version_t v;
    assert_int_equal(st_http_tls_version_parse("VersionTLS13", &v), 0);
    assert_int_equal(v, ST_HTTP_TLS_V13);
    assert_int_equal(st_http_tls_version_parse("VersionTLS11", &v), -EINVAL);
}

/* ------------------------------------------------------------------------------------------------ */
/* tests with their own servers */

static void test_client_certificates(void **state)
{
    cli_opts_t good = {.cert = cli_crt, .key = cli_key}, rogue = {.cert = rogue_crt, .key = rogue_key},
               none = {0}, good12 = {.cert = cli_crt, .key = cli_key, .max_version = TLS1_2_VERSION},
               none12 = {.max_version = TLS1_2_VERSION};
    char body[128];
    uint64_t hs0 = tls_errors("handshake");

    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT);
    ts_t *t = ts_start(http_opts(), &to);
    assert_int_equal(get_status(t->port, &good, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "client-1");
    assert_int_equal(get_status(t->port, &good12, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "client-1");
    assert_int_equal(get_status(t->port, &none, "/cn", NULL, 0), -1);
    assert_int_equal(get_status(t->port, &none12, "/cn", NULL, 0), -1);
    assert_int_equal(get_status(t->port, &rogue, "/cn", NULL, 0), -1);
    assert_int_equal(get_status(t->port, &good, "/hello", body, sizeof body), 200); /* still serving */
    ts_stop(t);
    assert_int_equal(tls_errors("handshake"), hs0 + 3);

    to = tls_opts(ST_HTTP_TLS_VERIFY_CLIENT_CERT_IF_GIVEN);
    t = ts_start(http_opts(), &to);
    assert_int_equal(get_status(t->port, &good, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "client-1");
    assert_int_equal(get_status(t->port, &none, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "-");
    assert_int_equal(get_status(t->port, &rogue, "/cn", NULL, 0), -1);
    ts_stop(t);

    to = tls_opts(ST_HTTP_TLS_REQUIRE_ANY_CLIENT_CERT);
    t = ts_start(http_opts(), &to);
    assert_int_equal(get_status(t->port, &rogue, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "-"); /* taken, but not verified: no CN for handlers */
    assert_int_equal(get_status(t->port, &none, "/cn", NULL, 0), -1);
    ts_stop(t);

    to = tls_opts(ST_HTTP_TLS_REQUEST_CLIENT_CERT);
    t = ts_start(http_opts(), &to);
    assert_int_equal(get_status(t->port, &rogue, "/cn", body, sizeof body), 200);
    assert_int_equal(get_status(t->port, &none, "/cn", body, sizeof body), 200);
    assert_string_equal(body, "-");
    ts_stop(t);
}

static void test_min_version(void **state)
{
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    to.min_version = ST_HTTP_TLS_V13;
    ts_t *t = ts_start(http_opts(), &to);
    cli_opts_t o12 = {.max_version = TLS1_2_VERSION};
    assert_null(cli_open(t->port, &o12));
    assert_int_equal(get_status(t->port, NULL, "/hello", NULL, 0), 200);
    ts_stop(t);
}

static void test_timeouts_and_limits(void **state)
{
    st_http_opts_t o = http_opts();
    o.read_timeout_ns = 400000000LL;
    o.max_connections = 2;
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    ts_t *t = ts_start(o, &to);
    uint64_t to0 = tls_errors("handshake_timeout");

    /* a client that never finishes its handshake is dropped after read_timeout */
    int fd = raw_connect(t->port);
    assert_int_equal(send(fd, "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL),
                     6); /* a record header, then silence */
    int64_t start = now_ms();
    char b[64];
    ssize_t n = recv(fd, b, sizeof b, 0);
    int64_t took = now_ms() - start;
    assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
    assert_true(took >= 300 && took < 3000);
    close(fd);
    assert_int_equal(tls_errors("handshake_timeout"), to0 + 1);

    /* a slow request after the handshake: 408 */
    cli_t *c = cli_open(t->port, NULL);
    assert_non_null(c);
    cli_send(c, "GET /hello HTTP/1.1\r\nHost:");
    resp_t r;
    assert_int_equal(cli_read(c, &r), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    assert_true(cli_ended(c, 3000));
    cli_close(c);

    /* the connection limit: a third connection is closed at once */
    usleep(50 * 1000); /* the closed connections above are released on the loop's next turn */
    cli_t *a = cli_open(t->port, NULL), *b2 = cli_open(t->port, NULL);
    assert_non_null(a);
    assert_non_null(b2);
    cli_send(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(a, &r), 0);
    resp_free(&r);
    assert_null(cli_open(t->port, NULL));
    cli_close(a);
    cli_close(b2);
    usleep(100 * 1000);
    assert_int_equal(get_status(t->port, NULL, "/hello", NULL, 0), 200);
    ts_stop(t);
}

static void test_graceful_shutdown(void **state)
{
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    ts_t *t = ts_start(http_opts(), &to);
    cli_t *idle = cli_open(t->port, NULL), *busy = cli_open(t->port, NULL);
    assert_non_null(idle);
    assert_non_null(busy);
    resp_t r;
    cli_send(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(idle, &r), 0);
    resp_free(&r);
    cli_send(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(100 * 1000); /* the request is in the thread pool */
    uv_async_send(&t->async);
    t->triggered = true;
    /* the request in flight finishes, with Connection: close; the idle connection just ends */
    assert_int_equal(cli_read(busy, &r), 0);
    expect_body(&r, 200, "slept");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_ended(busy, 3000));
    assert_true(cli_ended(idle, 3000));
    cli_close(idle);
    cli_close(busy);
    ts_stop(t);
}

static void test_reload(void **state)
{
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    ts_t *t = ts_start(http_opts(), &to);
    char err[512];
    st_http_tls_opts_t o2 = to;
    o2.cert_file = srv2_crt;
    o2.key_file = srv2_key;
    assert_int_equal(st_http_tls_new(&o2, &reload_to, err, sizeof err), 0);
    assert_string_equal(st_http_tls_subject(reload_to), "CN=reloaded.localhost,O=Strata Test");

    cli_t *c = cli_open(t->port, NULL);
    assert_non_null(c);
    resp_t r;
    cli_send(c, "GET /reload HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "reloaded");
    resp_free(&r);
    SSL_SESSION *sess = SSL_get1_session(c->ssl);
    /* the open connection keeps working with its certificate */
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(cli_read(c, &r), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    cli_close(c);
    st_http_tls_free(reload_to); /* the server holds it now */
    reload_to = NULL;

    /* a new connection gets the new certificate; an old session still resumes */
    c = cli_open(t->port, NULL);
    assert_non_null(c);
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    char cn[128];
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "reloaded.localhost");
    X509_free(peer);
    cli_close(c);
    cli_opts_t ro = {.session = sess};
    c = cli_open(t->port, &ro);
    assert_non_null(c);
    assert_int_equal(SSL_session_reused(c->ssl), 1);
    cli_close(c);
    SSL_SESSION_free(sess);
    ts_stop(t);
}

static void test_plain_server_has_no_tls(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    st_http_opts_t o = http_opts();
    st_http_server_t *s = NULL;
    assert_int_equal(st_http_server_create(&loop, &o, &s), 0);
    char err[512];
    st_http_tls_t *tls = NULL;
    st_http_tls_opts_t to = tls_opts(ST_HTTP_TLS_NO_CLIENT_CERT);
    assert_int_equal(st_http_tls_new(&to, &tls, err, sizeof err), 0);
    assert_int_equal(st_http_server_set_tls(s, tls), ST_EBADSTATE);
    st_http_tls_free(tls);
    st_http_server_shutdown(s, NULL, NULL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    st_http_server_destroy(s);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* the client writes to connections the server closed */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshake_keepalive_pipelining),
        cmocka_unit_test(test_large_and_chunked_bodies),
        cmocka_unit_test(test_websocket),
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_garbage_and_plain_http),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_client_certificates),
        cmocka_unit_test(test_min_version),
        cmocka_unit_test(test_timeouts_and_limits),
        cmocka_unit_test(test_graceful_shutdown),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_plain_server_has_no_tls),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
