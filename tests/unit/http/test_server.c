/* test_server.c: end-to-end tests of the http module over real sockets. The server runs on its own
 * libuv loop in a thread on 127.0.0.1:0; the test talks to it with plain blocking sockets and a tiny
 * response reader, covering routing, keep-alive, pipelining, chunked bodies, 100-continue, limits,
 * timeouts, HEAD, forms, queued work, client disconnects, shutdown and metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/metrics.h"
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ */
/* handlers */

static atomic_int work_started, work_finished, work_saw_gone;

/* Handlers run on the loop thread, where cmocka's assertions (longjmp) must not be used. */
#define HCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: handler check failed: %s\n", __FILE__, __LINE__, #x);                    \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static void h_hello(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 200, "text/plain", "hello", 5);
}

static void h_echo(st_http_req_t *r, void *arg)
{
    char n[32];
    snprintf(n, sizeof n, "%zu", r->body.len);
    HCHECK(st_http_add_header(r, "X-Body-Len", n) == 0);
    st_http_respond(r, 200, "application/octet-stream", r->body.data, r->body.len);
}

static void h_param(st_http_req_t *r, void *arg)
{
    st_str_t p = st_http_path_param(r);
    st_http_respond(r, 200, "text/plain", p.p, p.n);
}

static void h_route(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 200, "text/plain", r->route.p, r->route.n);
}

static void h_path(st_http_req_t *r, void *arg)
{
    st_buf_t b = ST_BUF_INIT;
    st_buf_printf(&b, "%.*s|%.*s|%.*s", (int)r->path.n, r->path.p, (int)r->query.n, r->query.p,
                  (int)r->target.n, r->target.p);
    st_http_respond_buf(r, 200, "text/plain", &b);
}

static void h_form(st_http_req_t *r, void *arg)
{
    st_http_form_t f;
    int rc = st_http_form_parse(r, &f);
    if (rc == ST_EPARSE) {
        st_http_respond_error(r, 400, "invalid form escape", true);
        return;
    }
    HCHECK(rc == 0);
    st_buf_t b = ST_BUF_INIT;
    for (size_t i = 0; i < f.n; i++) st_buf_printf(&b, "%s=%s\n", f.v[i].key, f.v[i].value);
    st_http_form_free(&f);
    st_http_respond_buf(r, 200, "text/plain", &b);
}

static void h_head(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 200, "text/plain", "0123456789", 10);
}

static void h_big(st_http_req_t *r, void *arg)
{
    st_buf_t b = ST_BUF_INIT;
    size_t n = 8u << 20;
    HCHECK(st_buf_reserve(&b, n) == 0);
    for (size_t i = 0; i < n; i++) b.data[i] = (char)('a' + i % 26);
    b.len = n;
    st_http_respond_buf(r, 200, "application/octet-stream", &b);
}

static char copy_body[100000];

static void h_copy(st_http_req_t *r, void *arg)
{
    /* A body over the inline limit: copied into its own buffer, and the source may change at once. */
    memset(copy_body, 'c', sizeof copy_body);
    copy_body[0] = '<';
    copy_body[sizeof copy_body - 1] = '>';
    st_http_respond(r, 200, "text/plain", copy_body, sizeof copy_body);
    memset(copy_body, 'X', sizeof copy_body);
}

static void work_sleep(st_http_req_t *r, void *arg)
{
    atomic_fetch_add(&work_started, 1);
    usleep((useconds_t)(intptr_t)arg * 1000);
}

static void work_done(st_http_req_t *r, void *arg)
{
    if (st_http_client_gone(r)) atomic_fetch_add(&work_saw_gone, 1);
    /* Counted before responding: the client may see the answer (and the test move on) before this
     * function returns. */
    atomic_fetch_add(&work_finished, 1);
    st_http_respond(r, 200, "text/plain", "worked", 6);
}

static void h_work(st_http_req_t *r, void *arg)
{
    HCHECK(st_http_queue_work(r, work_sleep, work_done, arg) == 0);
}

static void h_nocontent(st_http_req_t *r, void *arg)
{
    st_http_respond(r, 204, NULL, "ignored", 7);
}

/* ------------------------------------------------------------------------------------------------ */
/* server in a loop thread */

typedef struct {
    uv_loop_t loop;
    uv_async_t async;
    st_http_server_t *srv;
    pthread_t th;
    int port;
    atomic_int shutdown_done;
    bool shutting;  /* loop thread */
    bool triggered; /* test thread: the async was sent (it is closed once shutdown is done) */
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

static st_http_opts_t default_opts(void)
{
    return (st_http_opts_t){.host = "127.0.0.1",
                            .port = 0,
                            .max_header_bytes = 4096,
                            .max_body_bytes = 4096,
                            .read_timeout_ns = 5000000000LL,
                            .write_timeout_ns = 5000000000LL,
                            .idle_timeout_ns = 5000000000LL};
}

static ts_t *ts_start(const st_http_opts_t *o)
{
    ts_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(st_http_server_create(&t->loop, o, &t->srv), 0);
    t->port = st_http_port(t->srv);
    assert_true(t->port > 0);
    st_http_server_t *s = t->srv;
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/hello", h_hello, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_POST | ST_HTTP_PUT, "/echo", h_echo, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/label/*/values", h_param, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/route/*", h_route, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/path", h_path, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET | ST_HTTP_POST, "/form", h_form, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET | ST_HTTP_HEAD, "/head", h_head, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/big", h_big, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/copy", h_copy, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/work/fast", h_work, (void *)(intptr_t)50), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/work/slow", h_work, (void *)(intptr_t)400), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_DELETE, "/nocontent", h_nocontent, NULL), 0);
    /* invalid patterns */
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "nope", h_hello, NULL), -EINVAL);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/a*/b", h_hello, NULL), -EINVAL);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/*/*", h_hello, NULL), -EINVAL);
    assert_int_equal(st_http_route(s, 0, "/x", h_hello, NULL), -EINVAL);
    t->async.data = t;
    assert_int_equal(uv_async_init(&t->loop, &t->async, on_async), 0);
    assert_int_equal(pthread_create(&t->th, NULL, loop_main, t), 0);
    return t;
}

static void ts_shutdown(ts_t *t)
{
    if (t->triggered) return;
    t->triggered = true;
    uv_async_send(&t->async);
}

static void ts_stop(ts_t *t)
{
    ts_shutdown(t);
    pthread_join(t->th, NULL);
    assert_int_equal(atomic_load(&t->shutdown_done), 1);
    st_http_server_destroy(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
}

/* ------------------------------------------------------------------------------------------------ */
/* blocking client */

typedef struct {
    int fd;
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
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static cli_t *cli_open(int port)
{
    cli_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->fd = raw_connect(port);
    assert_true(c->fd >= 0);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
    return c;
}

static void cli_close(cli_t *c)
{
    close(c->fd);
    free(c->buf);
    free(c);
}

static int cli_send_n(cli_t *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static void cli_send(cli_t *c, const char *s)
{
    assert_int_equal(cli_send_n(c, s, strlen(s)), 0);
}

/* Reads more bytes into the buffer; returns bytes read, 0 on EOF, -1 on error/timeout. */
static ssize_t cli_fill(cli_t *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0) c->len += (size_t)n;
    return n;
}

static void cli_consume(cli_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static const char *find_crlf2(const char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (memcmp(p + i, "\r\n\r\n", 4) == 0) return p + i;
    return NULL;
}

/* Value of a response header (NULL if absent), copied into a static buffer. */
static const char *hdr(const resp_t *r, const char *name)
{
    static char val[1024];
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\0' && !(p[2] == '\r' && p[3] == '\n')) {
        const char *line = p + 2;
        const char *end = strstr(line, "\r\n");
        if (end == NULL) break;
        if ((size_t)(end - line) > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ') v++;
            size_t vn = (size_t)(end - v);
            if (vn >= sizeof val) vn = sizeof val - 1;
            memcpy(val, v, vn);
            val[vn] = '\0';
            return val;
        }
        p = end;
    }
    return NULL;
}

/* Reads one response; head_req: the request was HEAD (no body follows). Returns 0 or -1. */
static int cli_read(cli_t *c, resp_t *r, bool head_req)
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
    cli_consume(c, hl);
    const char *cl = hdr(r, "Content-Length");
    size_t n = cl && !head_req ? (size_t)strtoull(cl, NULL, 10) : 0;
    while (c->len < n)
        if (cli_fill(c) <= 0) return -1;
    st_buf_append(&r->body, c->buf, n);
    st_buf_cstr(&r->body);
    cli_consume(c, n);
    return 0;
}

/* True if the server closes the connection (EOF or reset) within timeout_ms with no more data. */
static bool cli_eof(cli_t *c, int timeout_ms)
{
    if (c->len) return false;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0) return false;
    char b[64];
    ssize_t n = recv(c->fd, b, sizeof b, 0);
    return n == 0 || (n < 0 && errno == ECONNRESET);
}

static void resp_free(resp_t *r)
{
    st_buf_free(&r->body);
}

/* One request on a fresh connection; returns the response (caller frees). */
static void roundtrip(int port, const char *req, resp_t *r)
{
    cli_t *c = cli_open(port);
    cli_send(c, req);
    assert_int_equal(cli_read(c, r, strncmp(req, "HEAD ", 5) == 0), 0);
    cli_close(c);
}

static void expect_body(const resp_t *r, int status, const char *body)
{
    assert_int_equal(r->status, status);
    assert_int_equal(r->body.len, strlen(body));
    if (r->body.len) assert_memory_equal(r->body.data, body, r->body.len);
}

static void wait_for(atomic_int *v, int want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (atomic_load(v) < want && now_ms() < end) usleep(5000);
    assert_true(atomic_load(v) >= want);
}

/* ------------------------------------------------------------------------------------------------ */
/* tests using the shared server */

static ts_t *shared;

static int group_setup(void **state)
{
    st_http_opts_t o = default_opts();
    shared = ts_start(&o);
    return 0;
}

static int group_teardown(void **state)
{
    ts_stop(shared);
    return 0;
}

static void test_routing(void **state)
{
    resp_t r;
    roundtrip(shared->port, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    expect_body(&r, 200, "hello");
    assert_string_equal(hdr(&r, "Content-Type"), "text/plain");
    assert_string_equal(hdr(&r, "Content-Length"), "5");
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    const char *date = hdr(&r, "Date");
    assert_non_null(date);
    assert_int_equal(strlen(date), 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
    assert_string_equal(date + 26, "GMT");
    assert_int_equal(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17), 0);
    resp_free(&r);

    roundtrip(shared->port, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    expect_body(&r, 404, "404 page not found\n");
    assert_string_equal(hdr(&r, "Content-Type"), "text/plain; charset=utf-8");
    assert_int_equal(strncmp(r.head, "HTTP/1.1 404 Not Found\r\n", 24), 0);
    resp_free(&r);

    roundtrip(shared->port, "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    expect_body(&r, 405, "");
    assert_string_equal(hdr(&r, "Content-Length"), "0");
    assert_string_equal(hdr(&r, "Allow"), "GET");
    assert_null(hdr(&r, "Content-Type"));
    resp_free(&r);

    roundtrip(shared->port, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r);
    expect_body(&r, 200, "abc");
    assert_string_equal(hdr(&r, "X-Body-Len"), "3");
    resp_free(&r);

    roundtrip(shared->port, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nzz", &r);
    expect_body(&r, 200, "zz");
    resp_free(&r);

    roundtrip(shared->port, "GET /route/abc HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "/route/*");
    resp_free(&r);

    /* path is decoded, query kept raw, target untouched */
    roundtrip(shared->port, "GET /pa%74h?x=1%202&y HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "/path|x=1%202&y|/pa%74h?x=1%202&y");
    resp_free(&r);
    roundtrip(shared->port, "GET /he%6Clo HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    /* absolute-form target */
    roundtrip(shared->port, "GET http://example.com/path?q=1 HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "/path|q=1|http://example.com/path?q=1");
    resp_free(&r);

    /* 204: no body, no Content-Length */
    roundtrip(shared->port, "DELETE /nocontent HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 204);
    assert_null(hdr(&r, "Content-Length"));
    resp_free(&r);
}

static void test_bad_requests(void **state)
{
    const char *bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /he%zzllo HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_t *c = cli_open(shared->port);
        cli_send(c, bad[i]);
        resp_t r;
        assert_int_equal(cli_read(c, &r, false), 0);
        assert_int_equal(r.status, 400);
        assert_string_equal(hdr(&r, "Connection"), "close");
        assert_string_equal(hdr(&r, "Content-Type"), "text/plain; charset=utf-8");
        assert_true(r.body.len > 1 && r.body.data[r.body.len - 1] == '\n');
        assert_true(cli_eof(c, 2000));
        resp_free(&r);
        cli_close(c);
    }
    /* unsupported expectation */
    resp_t r;
    roundtrip(shared->port, "POST /echo HTTP/1.1\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n", &r);
    assert_int_equal(r.status, 417);
    resp_free(&r);
}

static void test_path_params(void **state)
{
    resp_t r;
    roundtrip(shared->port, "GET /label/foo%20bar/values HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "foo bar");
    resp_free(&r);
    roundtrip(shared->port, "GET /label/job/values?start=1 HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "job");
    resp_free(&r);
    roundtrip(shared->port, "GET /label/%C3%A9t%C3%A9/values HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "\xc3\xa9t\xc3\xa9");
    resp_free(&r);
    const char *nf[] = {"GET /label//values HTTP/1.1\r\n\r\n", "GET /label/a/b/values HTTP/1.1\r\n\r\n",
                        "GET /label/a/values/ HTTP/1.1\r\n\r\n", "GET /label/a%2Fb/values HTTP/1.1\r\n\r\n",
                        "GET /label/values HTTP/1.1\r\n\r\n"};
    for (size_t i = 0; i < sizeof nf / sizeof nf[0]; i++) {
        roundtrip(shared->port, nf[i], &r);
        expect_body(&r, 404, "404 page not found\n");
        resp_free(&r);
    }
    /* method mismatch on a wildcard route: 405 */
    roundtrip(shared->port, "DELETE /label/x/values HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 405, "");
    resp_free(&r);
}

static void test_keepalive(void **state)
{
    cli_t *c = cli_open(shared->port);
    resp_t r;
    for (int i = 0; i < 5; i++) {
        cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(cli_read(c, &r, false), 0);
        expect_body(&r, 200, "hello");
        assert_string_equal(hdr(&r, "Connection"), "keep-alive");
        resp_free(&r);
        cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nping");
        assert_int_equal(cli_read(c, &r, false), 0);
        expect_body(&r, 200, "ping");
        resp_free(&r);
    }
    /* a 404 keeps the connection too */
    cli_send(c, "GET /missing HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    resp_free(&r);
    /* Connection: close ends it */
    cli_send(c, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(c, 2000));
    cli_close(c);

    /* HTTP/1.0 closes by default ... */
    c = cli_open(shared->port);
    cli_send(c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(c, 2000));
    cli_close(c);
    /* ... unless asked to keep alive */
    c = cli_open(shared->port);
    for (int i = 0; i < 3; i++) {
        cli_send(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        assert_int_equal(cli_read(c, &r, false), 0);
        expect_body(&r, 200, "hello");
        assert_string_equal(hdr(&r, "Connection"), "keep-alive");
        resp_free(&r);
    }
    cli_close(c);
}

static void test_pipelining(void **state)
{
    cli_t *c = cli_open(shared->port);
    /* The first request is slow (thread pool work); the others must still be answered after it. */
    cli_send(c, "GET /work/fast HTTP/1.1\r\n\r\n"
                "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nfirst"
                "GET /label/second/values HTTP/1.1\r\n\r\n"
                "\r\n" /* stray CRLF between requests is tolerated */
                "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nthird\r\n0\r\n\r\n"
                "GET /nope HTTP/1.1\r\n\r\n"
                "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n"
                "GET /hello HTTP/1.1\r\n\r\n"); /* after close: never answered */
    const char *want[] = {"worked", "first", "second", "third", "404 page not found\n", "hello"};
    const int codes[] = {200, 200, 200, 200, 404, 200};
    for (int i = 0; i < 6; i++) {
        resp_t r;
        assert_int_equal(cli_read(c, &r, false), 0);
        expect_body(&r, codes[i], want[i]);
        resp_free(&r);
    }
    assert_true(cli_eof(c, 2000));
    cli_close(c);

    /* many small pipelined requests in one write, answered in order */
    c = cli_open(shared->port);
    st_buf_t b = ST_BUF_INIT;
    for (int i = 0; i < 200; i++) st_buf_printf(&b, "GET /label/v%d/values HTTP/1.1\r\n\r\n", i);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    st_buf_free(&b);
    for (int i = 0; i < 200; i++) {
        resp_t r;
        char want_body[32];
        snprintf(want_body, sizeof want_body, "v%d", i);
        assert_int_equal(cli_read(c, &r, false), 0);
        expect_body(&r, 200, want_body);
        resp_free(&r);
    }
    cli_close(c);
}

/* Reads n answers to "GET /hello"; returns how many were right. */
static int read_hellos(cli_t *c, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        resp_t r;
        if (cli_read(c, &r, false) != 0) break;
        if (r.status == 200 && r.body.len == 5 && memcmp(r.body.data, "hello", 5) == 0) ok++;
        resp_free(&r);
    }
    return ok;
}

static void test_pipelining_while_busy(void **state)
{
    /* Requests that arrive while an earlier one is in the thread pool are queued, in order; past the
     * pending cap (256 KiB) the server stops reading until it catches up. */
    cli_t *c = cli_open(shared->port);
    int started = atomic_load(&work_started);
    cli_send(c, "GET /work/slow HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 6\r\n\r\nqueued");
    usleep(20000);
    cli_send(c, "GET /label/later/values HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "worked");
    resp_free(&r);
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "queued");
    resp_free(&r);
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "later");
    resp_free(&r);

    /* a flood behind a slow request: 15000 requests (about 345 KB) */
    started = atomic_load(&work_started);
    cli_send(c, "GET /work/slow HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    st_buf_t b = ST_BUF_INIT;
    for (int i = 0; i < 15000; i++) st_buf_puts(&b, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_send_n(c, b.data, b.len), 0); /* the kernel buffers what the server does not read */
    st_buf_free(&b);
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "worked");
    resp_free(&r);
    assert_int_equal(read_hellos(c, 15000), 15000);
    cli_close(c);
}

static void test_half_close(void **state)
{
    /* The client shuts down its write side after the request: the answer is still delivered. */
    const char *reqs[] = {"GET /hello HTTP/1.1\r\n\r\n", "GET /big HTTP/1.1\r\n\r\n"};
    for (int i = 0; i < 2; i++) {
        cli_t *c = cli_open(shared->port);
        cli_send(c, reqs[i]);
        shutdown(c->fd, SHUT_WR);
        resp_t r;
        assert_int_equal(cli_read(c, &r, false), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, i == 0 ? 5 : 8u << 20);
        resp_free(&r);
        assert_true(cli_eof(c, 3000));
        cli_close(c);
    }
}

static void test_chunked(void **state)
{
    resp_t r;
    roundtrip(shared->port,
              "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
              &r);
    expect_body(&r, 200, "Wikipedia");
    assert_string_equal(hdr(&r, "X-Body-Len"), "9");
    resp_free(&r);

    /* extensions, upper-case hex, trailers; then the connection is still usable */
    cli_t *c = cli_open(shared->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "abc0123456789");
    resp_free(&r);
    /* byte by byte */
    const char *req =
        "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n";
    for (const char *p = req; *p; p++) {
        assert_int_equal(cli_send_n(c, p, 1), 0);
        if (p[1] && (p - req) % 7 == 0) usleep(1000);
    }
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hi!");
    resp_free(&r);
    cli_close(c);
}

static void test_expect_continue(void **state)
{
    cli_t *c = cli_open(shared->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 100);
    assert_string_equal(r.head, "HTTP/1.1 100 Continue\r\n\r\n");
    resp_free(&r);
    cli_send(c, "hello");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    /* chunked with Expect, same connection */
    cli_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-Continue\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 100);
    resp_free(&r);
    cli_send(c, "3\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "abc");
    resp_free(&r);
    /* body sent along without waiting: no interim response */
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "ok");
    resp_free(&r);
    cli_close(c);

    /* over the limit: 413 at once, no 100 */
    c = cli_open(shared->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 413);
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(c, 3000));
    cli_close(c);
}

static void test_body_limits(void **state)
{
    /* Content-Length over max_body_bytes (4096): answered before the body is sent */
    cli_t *c = cli_open(shared->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 4097\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 413, "request body too large\n");
    assert_string_equal(hdr(&r, "Connection"), "close");
    assert_int_equal(strncmp(r.head, "HTTP/1.1 413 Request Entity Too Large\r\n", 39), 0);
    resp_free(&r);
    assert_true(cli_eof(c, 3000));
    cli_close(c);

    /* exactly at the limit is fine */
    st_buf_t b = ST_BUF_INIT;
    st_buf_printf(&b, "POST /echo HTTP/1.1\r\nContent-Length: 4096\r\n\r\n");
    for (int i = 0; i < 4096; i++) st_buf_putc(&b, 'x');
    c = cli_open(shared->port);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 4096);
    resp_free(&r);
    cli_close(c);
    st_buf_free(&b);

    /* chunked body growing past the limit while being read */
    c = cli_open(shared->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[1100];
    memset(chunk, 'y', sizeof chunk);
    memcpy(chunk, "400\r\n", 5); /* 1024 bytes per chunk */
    memcpy(chunk + 5 + 1024, "\r\n", 2);
    int sent = 0;
    for (int i = 0; i < 8; i++) {
        if (cli_send_n(c, chunk, 5 + 1024 + 2) < 0) break;
        sent++;
    }
    assert_true(sent >= 4);
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 413, "request body too large\n");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(c, 3000));
    cli_close(c);
}

static void test_header_limits(void **state)
{
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "GET /hello HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 5000; i++) st_buf_putc(&b, 'a');
    st_buf_puts(&b, "\r\n\r\n");
    cli_t *c = cli_open(shared->port);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 431);
    assert_int_equal(strncmp(r.head, "HTTP/1.1 431 Request Header Fields Too Large\r\n", 46), 0);
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(c, 3000));
    cli_close(c);
    st_buf_free(&b);

    /* a long URL counts as well */
    st_buf_puts(&b, "GET /hello?");
    for (int i = 0; i < 5000; i++) st_buf_putc(&b, 'q');
    st_buf_puts(&b, " HTTP/1.1\r\n\r\n");
    c = cli_open(shared->port);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    cli_close(c);
    st_buf_free(&b);

    /* many small headers whose syntax (not content) pushes past the limit: exact accounting */
    st_buf_puts(&b, "GET /hello HTTP/1.1\r\n");
    for (int i = 0; i < 1100; i++) st_buf_puts(&b, "A:\r\n");
    st_buf_puts(&b, "\r\n");
    c = cli_open(shared->port);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 431);
    resp_free(&r);
    cli_close(c);
    st_buf_free(&b);

    /* just under the limit passes */
    st_buf_puts(&b, "GET /hello HTTP/1.1\r\nX-Big: ");
    for (int i = 0; i < 3500; i++) st_buf_putc(&b, 'a');
    st_buf_puts(&b, "\r\n\r\n");
    c = cli_open(shared->port);
    assert_int_equal(cli_send_n(c, b.data, b.len), 0);
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    cli_close(c);
    st_buf_free(&b);
}

static void test_head(void **state)
{
    cli_t *c = cli_open(shared->port);
    cli_send(c, "HEAD /head HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, true), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Content-Length"), "10");
    resp_free(&r);
    /* no body bytes were sent: the next response starts right away */
    cli_send(c, "GET /head HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "0123456789");
    resp_free(&r);
    /* HEAD on a GET-only route is a 405 (gorilla/mux), with no body either */
    cli_send(c, "HEAD /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, true), 0);
    assert_int_equal(r.status, 405);
    resp_free(&r);
    cli_send(c, "HEAD /nope HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, true), 0);
    assert_int_equal(r.status, 404);
    assert_string_equal(hdr(&r, "Content-Length"), "19");
    resp_free(&r);
    cli_send(c, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    cli_close(c);
}

static void test_form(void **state)
{
    resp_t r;
    roundtrip(shared->port, "GET /form?a=1&b=x+y&a=2&c=%41%42&d&&e= HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "a=1\nb=x y\na=2\nc=AB\nd=\ne=\n");
    resp_free(&r);
    /* URL fields first, then the body's */
    const char *body = "a=3&e=%7E+&match%5B%5D=%7Ba%7D";
    char req[512];
    snprintf(
        req, sizeof req,
        "POST /form?q=1&match[]=%%7Bjob%%3D%%22x%%22%%7D HTTP/1.1\r\n"
        "Content-Type: application/x-www-form-urlencoded; charset=UTF-8\r\nContent-Length: %zu\r\n\r\n%s",
        strlen(body), body);
    roundtrip(shared->port, req, &r);
    expect_body(&r, 200, "q=1\nmatch[]={job=\"x\"}\na=3\ne=~ \nmatch[]={a}\n");
    resp_free(&r);
    /* other content types: body ignored */
    roundtrip(shared->port,
              "POST /form?q=1 HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\na=3", &r);
    expect_body(&r, 200, "q=1\n");
    resp_free(&r);
    /* bad escapes: 400 */
    roundtrip(shared->port, "GET /form?a=%zz HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 400, "invalid form escape\n");
    resp_free(&r);
    roundtrip(shared->port, "GET /form?a=%4 HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    roundtrip(shared->port,
              "POST /form HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
              "4\r\n\r\na=%G",
              &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
}

static void test_queue_work(void **state)
{
    resp_t r;
    roundtrip(shared->port, "GET /work/fast HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "worked");
    resp_free(&r);
    /* several connections with work in flight at once */
    cli_t *cs[4];
    for (int i = 0; i < 4; i++) {
        cs[i] = cli_open(shared->port);
        cli_send(cs[i], "GET /work/fast HTTP/1.1\r\n\r\n");
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(cli_read(cs[i], &r, false), 0);
        expect_body(&r, 200, "worked");
        resp_free(&r);
        cli_close(cs[i]);
    }
}

static void test_disconnect_during_work(void **state)
{
    int started = atomic_load(&work_started), finished = atomic_load(&work_finished);
    int gone = atomic_load(&work_saw_gone);
    cli_t *c = cli_open(shared->port);
    cli_send(c, "GET /work/slow HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    cli_close(c); /* while the work runs */
    wait_for(&work_finished, finished + 1, 3000);
    assert_int_equal(atomic_load(&work_saw_gone), gone + 1);
    /* a reset instead of a FIN, with pipelined requests queued behind */
    started = atomic_load(&work_started);
    finished = atomic_load(&work_finished);
    c = cli_open(shared->port);
    cli_send(c, "GET /work/slow HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cli_close(c);
    wait_for(&work_finished, finished + 1, 3000);
    /* the server is fine */
    resp_t r;
    roundtrip(shared->port, "GET /hello HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "hello");
    resp_free(&r);
}

static void test_big_response(void **state)
{
    cli_t *c = cli_open(shared->port);
    cli_send(c, "GET /big HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 8u << 20);
    for (size_t i = 0; i < r.body.len; i += 4099) assert_int_equal(r.body.data[i], (char)('a' + i % 26));
    resp_free(&r);
    cli_send(c, "GET /copy HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body.len, 100000);
    assert_int_equal(r.body.data[0], '<');
    assert_int_equal(r.body.data[50000], 'c');
    assert_int_equal(r.body.data[99999], '>');
    resp_free(&r);
    cli_send(c, "GET /hello HTTP/1.1\r\n\r\n");
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    cli_close(c);
}

static void test_metrics(void **state)
{
    resp_t r;
    roundtrip(shared->port, "GET /hello HTTP/1.1\r\n\r\n", &r);
    resp_free(&r);
    roundtrip(shared->port, "GET /label/x/values HTTP/1.1\r\n\r\n", &r);
    resp_free(&r);
    roundtrip(shared->port, "GET /nowhere HTTP/1.1\r\n\r\n", &r);
    resp_free(&r);
    st_buf_t b = ST_BUF_INIT;
    st_metrics_render(&b);
    const char *m = st_buf_cstr(&b);
    assert_non_null(strstr(m, "strata_http_requests_total{route=\"/hello\",method=\"GET\",code=\"200\"}"));
    assert_non_null(
        strstr(m, "strata_http_requests_total{route=\"/label/*/values\",method=\"GET\",code=\"200\"}"));
    assert_non_null(strstr(m, "strata_http_requests_total{route=\"notfound\",method=\"GET\",code=\"404\"}"));
    assert_non_null(strstr(m, "strata_http_requests_total{route=\"invalid\",method=\"GET\",code=\"431\"}"));
    assert_non_null(strstr(m, "strata_http_request_duration_seconds_count{route=\"/hello\"}"));
    assert_non_null(strstr(m, "strata_http_request_duration_seconds_bucket{route=\"/hello\",le=\"0.005\"}"));
    assert_non_null(strstr(m, "strata_http_inflight_requests "));
    assert_non_null(strstr(m, "strata_http_connections "));
    st_buf_free(&b);
}

/* ------------------------------------------------------------------------------------------------ */
/* tests with their own server */

static void test_read_timeout(void **state)
{
    st_http_opts_t o = default_opts();
    o.read_timeout_ns = 200 * 1000000LL;
    ts_t *t = ts_start(&o);

    /* headers never finish: 408 */
    cli_t *c = cli_open(t->port);
    int64_t t0 = now_ms();
    cli_send(c, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    int64_t el = now_ms() - t0;
    expect_body(&r, 408, "request timeout\n");
    assert_string_equal(hdr(&r, "Connection"), "close");
    assert_true(el >= 150 && el < 2000);
    resp_free(&r);
    assert_true(cli_eof(c, 3000));
    cli_close(c);

    /* slowloris: a byte every 40 ms keeps the socket busy but not the request alive */
    c = cli_open(t->port);
    t0 = now_ms();
    cli_send(c, "GET /hello HTTP/1.1\r\n");
    bool got = false;
    while (now_ms() - t0 < 3000) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 40) > 0) {
            got = true;
            break;
        }
        if (cli_send_n(c, "X", 1) < 0) break;
    }
    assert_true(got);
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 408);
    assert_true(now_ms() - t0 < 1500);
    resp_free(&r);
    cli_close(c);

    /* a slow body counts too */
    c = cli_open(t->port);
    cli_send(c, "POST /echo HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
    assert_int_equal(cli_read(c, &r, false), 0);
    assert_int_equal(r.status, 408);
    resp_free(&r);
    cli_close(c);

    /* a connection that never sends anything is closed quietly */
    c = cli_open(t->port);
    t0 = now_ms();
    assert_true(cli_eof(c, 3000));
    assert_true(now_ms() - t0 >= 150);
    cli_close(c);
    ts_stop(t);
}

static void test_idle_timeout(void **state)
{
    st_http_opts_t o = default_opts();
    o.idle_timeout_ns = 200 * 1000000LL;
    ts_t *t = ts_start(&o);
    cli_t *c = cli_open(t->port);
    cli_send(c, "GET /hello HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(c, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    int64_t t0 = now_ms();
    assert_true(cli_eof(c, 3000)); /* quiet close, no 408 */
    assert_true(now_ms() - t0 >= 100);
    cli_close(c);
    ts_stop(t);
}

static void test_write_timeout(void **state)
{
    st_http_opts_t o = default_opts();
    o.write_timeout_ns = 200 * 1000000LL;
    ts_t *t = ts_start(&o);
    /* A client that does not read: with a tiny receive window the 8 MiB answer cannot drain. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char req[] = "GET /big HTTP/1.1\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    usleep(800 * 1000);
    size_t total = 0;
    char buf[65536];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) total += (size_t)n;
    assert_true(n == 0 || errno == ECONNRESET); /* closed by the server, not a client timeout */
    assert_true(total < (8u << 20));
    close(fd);
    /* the server is still fine */
    resp_t r;
    roundtrip(t->port, "GET /hello HTTP/1.1\r\n\r\n", &r);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    ts_stop(t);
}

static void test_max_connections(void **state)
{
    st_http_opts_t o = default_opts();
    o.max_connections = 1;
    ts_t *t = ts_start(&o);
    cli_t *a = cli_open(t->port);
    cli_send(a, "GET /hello HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(a, &r, false), 0);
    expect_body(&r, 200, "hello");
    resp_free(&r);
    cli_t *b = cli_open(t->port); /* accepted, then closed at once */
    assert_true(cli_eof(b, 3000));
    cli_close(b);
    cli_close(a);
    /* once a is gone, a new connection is served */
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        cli_t *c = cli_open(t->port);
        if (cli_send_n(c, "GET /hello HTTP/1.1\r\n\r\n", 23) == 0 && cli_read(c, &r, false) == 0) {
            ok = r.status == 200;
            resp_free(&r);
        }
        cli_close(c);
        if (!ok) usleep(20000);
    }
    assert_true(ok);
    ts_stop(t);
}

static void test_shutdown_inflight(void **state)
{
    st_http_opts_t o = default_opts();
    ts_t *t = ts_start(&o);
    /* an idle keep-alive connection */
    cli_t *idle = cli_open(t->port);
    cli_send(idle, "GET /hello HTTP/1.1\r\n\r\n");
    resp_t r;
    assert_int_equal(cli_read(idle, &r, false), 0);
    resp_free(&r);
    /* a request in flight, with another pipelined behind it */
    int started = atomic_load(&work_started);
    cli_t *busy = cli_open(t->port);
    cli_send(busy, "GET /work/slow HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    ts_shutdown(t);
    assert_true(cli_eof(idle, 3000));
    cli_close(idle);
    /* the in-flight request completes, with Connection: close; the pipelined one is not served */
    assert_int_equal(cli_read(busy, &r, false), 0);
    expect_body(&r, 200, "worked");
    assert_string_equal(hdr(&r, "Connection"), "close");
    resp_free(&r);
    assert_true(cli_eof(busy, 3000));
    cli_close(busy);
    int64_t end = now_ms() + 3000;
    while (!atomic_load(&t->shutdown_done) && now_ms() < end) usleep(5000);
    assert_int_equal(atomic_load(&t->shutdown_done), 1);
    /* no longer listening */
    assert_true(raw_connect(t->port) < 0);
    ts_stop(t);
}

static void test_shutdown_with_gone_client(void **state)
{
    /* The client leaves while its request is in the thread pool; shutdown waits for the handler. */
    st_http_opts_t o = default_opts();
    ts_t *t = ts_start(&o);
    int started = atomic_load(&work_started), finished = atomic_load(&work_finished);
    cli_t *c = cli_open(t->port);
    cli_send(c, "GET /work/slow HTTP/1.1\r\n\r\n");
    wait_for(&work_started, started + 1, 3000);
    cli_close(c);
    usleep(20000);
    ts_shutdown(t);
    pthread_join(t->th, NULL); /* the loop ends only after the handler answered */
    assert_int_equal(atomic_load(&work_finished), finished + 1);
    assert_int_equal(atomic_load(&t->shutdown_done), 1);
    assert_int_equal(st_http_connections(t->srv), 0);
    assert_int_equal(st_http_active_requests(t->srv), 0);
    st_http_server_destroy(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
}

static void test_create_errors(void **state)
{
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    st_http_opts_t o = default_opts();
    st_http_server_t *a = NULL, *b = NULL;
    assert_int_equal(st_http_server_create(&loop, &o, &a), 0);
    o.port = st_http_port(a);
    assert_int_equal(st_http_server_create(&loop, &o, &b), -EADDRINUSE);
    o.port = 70000;
    assert_int_equal(st_http_server_create(&loop, &o, &b), -EINVAL);
    st_http_server_shutdown(a, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    st_http_server_destroy(a);
    st_http_server_destroy(NULL);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest shared_tests[] = {
        cmocka_unit_test(test_routing),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_path_params),
        cmocka_unit_test(test_keepalive),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_pipelining_while_busy),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_queue_work),
        cmocka_unit_test(test_disconnect_during_work),
        cmocka_unit_test(test_big_response),
        cmocka_unit_test(test_metrics),
    };
    const struct CMUnitTest own_tests[] = {
        cmocka_unit_test(test_read_timeout),      cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_write_timeout),     cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_shutdown_inflight), cmocka_unit_test(test_shutdown_with_gone_client),
        cmocka_unit_test(test_create_errors),
    };
    int fails = cmocka_run_group_tests_name("http_server_shared", shared_tests, group_setup, group_teardown);
    fails += cmocka_run_group_tests_name("http_server_own", own_tests, NULL, NULL);
    return fails;
}
