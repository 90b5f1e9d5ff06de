/* test_parse.c: socket-free tests of the http module: st_url_decode and the form helpers on
 * hand-built requests, and request parsing through the simulated connections of http_int.h (the
 * same code path as real sockets): any split of the input gives the same answers, limits and
 * errors map to the right status, and a handler may keep a request past its connection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "http/http_int.h"

#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------------ */
/* st_url_decode and forms */

static void expect_decode(const char *in, bool plus, const char *want)
{
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_url_decode(st_cstr(in), plus, &b), 0);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    st_buf_free(&b);
}

static void test_url_decode(void **state)
{
    expect_decode("", true, "");
    expect_decode("abc", true, "abc");
    expect_decode("a+b", true, "a b");
    expect_decode("a+b", false, "a+b");
    expect_decode("%41%62%7e%7E", false, "Ab~~");
    expect_decode("%2B+%20", true, "+  ");
    expect_decode("%C3%A9", false, "\xc3\xa9");
    expect_decode("100%25", false, "100%");
    /* embedded NUL survives with its length */
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_url_decode(st_cstr("a%00b"), false, &b), 0);
    assert_int_equal(b.len, 3);
    assert_int_equal(b.data[1], '\0');
    /* appends; on error the buffer is left as it was */
    assert_int_equal(st_url_decode(st_cstr("+c"), true, &b), 0);
    assert_int_equal(b.len, 5);
    const char *bad[] = {"%", "%4", "%zz", "%g0", "ab%", "a%0", "%%41"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(st_url_decode(st_cstr(bad[i]), true, &b), ST_EPARSE);
        assert_int_equal(b.len, 5);
    }
    assert_memory_equal(b.data, "a\0b c", 5);
    st_buf_free(&b);
}

static st_http_req_t fake_req(st_http_method_t m, const char *mname, const char *query, st_http_header_t *h,
                              size_t nh, const char *body)
{
    st_http_req_t r;
    memset(&r, 0, sizeof r);
    r.method = m;
    r.method_name = st_cstr(mname);
    r.query = st_cstr(query);
    r.headers = h;
    r.nheaders = nh;
    if (body) st_buf_append(&r.body, body, strlen(body));
    return r;
}

static void test_form(void **state)
{
    st_http_form_t f;
    st_http_req_t r = fake_req(ST_HTTP_GET, "GET",
                               "query=%7Bjob%3D%22a%22%7D&limit=10&match[]=a&match%5B%5D=b&x", NULL, 0, NULL);
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 5);
    assert_string_equal(st_http_form_get(&f, "query"), "{job=\"a\"}");
    assert_string_equal(st_http_form_get(&f, "limit"), "10");
    assert_string_equal(st_http_form_get(&f, "match[]"), "a");
    assert_string_equal(f.v[3].key, "match[]");
    assert_string_equal(f.v[3].value, "b");
    assert_string_equal(st_http_form_get(&f, "x"), "");
    assert_null(st_http_form_get(&f, "nope"));
    st_http_form_free(&f);

    /* empty query, empty fields */
    r = fake_req(ST_HTTP_GET, "GET", "&&=&", NULL, 0, NULL);
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.v[0].key, "");
    assert_string_equal(f.v[0].value, "");
    st_http_form_free(&f);

    /* form POST: URL fields first, then the body's; value_len counts embedded NULs */
    st_http_header_t h[] = {
        {ST_STR("content-type"), ST_STR("Application/X-WWW-Form-Urlencoded ; charset=utf-8")}};
    r = fake_req(ST_HTTP_POST, "POST", "a=1", h, 1, "a=2&b=%00z&c=x+y");
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 4);
    assert_string_equal(f.v[0].value, "1");
    assert_string_equal(f.v[1].value, "2");
    assert_int_equal(f.v[2].value_len, 2);
    assert_int_equal(f.v[2].value[1], 'z');
    assert_string_equal(f.v[3].value, "x y");
    st_http_form_free(&f);
    st_buf_free(&r.body);

    /* PATCH reads the body too; GET does not; another content type does not */
    r = fake_req(ST_HTTP_OTHER, "PATCH", "", h, 1, "k=v");
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 1);
    st_http_form_free(&f);
    st_buf_free(&r.body);
    r = fake_req(ST_HTTP_GET, "GET", "", h, 1, "k=v");
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 0);
    st_http_form_free(&f);
    st_buf_free(&r.body);
    st_http_header_t hj[] = {{ST_STR("Content-Type"), ST_STR("application/x-www-form-urlencodedX")}};
    r = fake_req(ST_HTTP_POST, "POST", "", hj, 1, "k=v");
    assert_int_equal(st_http_form_parse(&r, &f), 0);
    assert_int_equal(f.n, 0);
    st_http_form_free(&f);
    st_buf_free(&r.body);

    /* bad escapes: ST_EPARSE and nothing left behind */
    r = fake_req(ST_HTTP_GET, "GET", "a=1&b=%zz", NULL, 0, NULL);
    assert_int_equal(st_http_form_parse(&r, &f), ST_EPARSE);
    assert_int_equal(f.n, 0);
    assert_null(f.v);
    r = fake_req(ST_HTTP_POST, "POST", "a=1", h, 1, "%=x");
    assert_int_equal(st_http_form_parse(&r, &f), ST_EPARSE);
    assert_int_equal(f.n, 0);
    st_buf_free(&r.body);
    st_http_form_free(NULL);
}

/* ------------------------------------------------------------------------------------------------ */
/* simulated connections */

static st_http_req_t *held; /* a request a handler kept */

static void h_echo(st_http_req_t *r, void *arg)
{
    st_str_t v;
    if (st_http_header(r, "x-tag", &v)) {
        char tag[64];
        snprintf(tag, sizeof tag, "%.*s", (int)v.n, v.p);
        st_http_add_header(r, "X-Tag", tag);
    }
    st_http_respond(r, 200, "text/plain", r->body.data, r->body.len);
}

static void h_hold(st_http_req_t *r, void *arg)
{
    held = r;
}

static void h_param(st_http_req_t *r, void *arg)
{
    st_str_t p = st_http_path_param(r);
    st_http_respond(r, 200, "text/plain", p.p, p.n);
}

static st_http_server_t *sim_server(size_t max_header, size_t max_body)
{
    st_http_opts_t o = {.max_header_bytes = max_header, .max_body_bytes = max_body};
    st_http_server_t *s = NULL;
    assert_int_equal(st__http_sim_server_create(&o, &s), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_POST | ST_HTTP_GET, "/echo", h_echo, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/hold", h_hold, NULL), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET, "/p/*", h_param, NULL), 0);
    return s;
}

/* Output with the Date lines removed, so that runs can be compared. */
static char *strip_dates(st_str_t out)
{
    char *s = malloc(out.n + 1);
    size_t j = 0;
    for (size_t i = 0; i < out.n;) {
        if (out.n - i >= 6 && memcmp(out.p + i, "Date: ", 6) == 0) {
            while (i < out.n && out.p[i] != '\n') i++;
            i++;
            continue;
        }
        s[j++] = out.p[i++];
    }
    s[j] = '\0';
    return s;
}

static int count_status(const char *s, const char *status_line)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, status_line)) != NULL; p++) n++;
    return n;
}

/* Feeds input in pieces of step bytes (0: all at once); returns the Date-less output. */
static char *run(st_http_server_t *s, const char *in, size_t len, size_t step, bool *closed)
{
    st_http_conn_t *c = st__http_sim_open(s);
    assert_non_null(c);
    if (step == 0) step = len;
    for (size_t off = 0; off < len; off += step)
        st__http_sim_feed(c, in + off, len - off < step ? len - off : step);
    char *out = strip_dates(st__http_sim_output(c));
    if (closed) *closed = st__http_sim_closed(c);
    st__http_sim_close(c);
    return out;
}

static void test_sim_splits(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    static const char in[] = "GET /echo HTTP/1.1\r\nX-Tag: one\r\n\r\n"
                             "POST /echo HTTP/1.1\r\nContent-Length: 5\r\nX-Tag:   two  \r\n\r\nhello"
                             "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n"
                             "1\r\nd\r\n0\r\nT: 1\r\n\r\n"
                             "GET /p/a%20b HTTP/1.1\r\n\r\n"
                             "POST /echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"
                             "GET /missing HTTP/1.0\r\n\r\n";
    bool closed = false;
    char *whole = run(s, in, sizeof in - 1, 0, &closed);
    assert_true(closed); /* HTTP/1.0 without keep-alive */
    assert_int_equal(count_status(whole, "HTTP/1.1 200 OK\r\n"), 5);
    assert_int_equal(count_status(whole, "HTTP/1.1 404 Not Found\r\n"), 1);
    assert_int_equal(count_status(whole, "HTTP/1.1 100 Continue"), 0); /* body came along */
    assert_non_null(strstr(whole, "X-Tag: two\r\n"));
    assert_non_null(strstr(whole, "\r\n\r\nabcd"));
    assert_non_null(strstr(whole, "\r\n\r\na b"));
    /* order */
    const char *p1 = strstr(whole, "X-Tag: one"), *p2 = strstr(whole, "hello"), *p3 = strstr(whole, "abcd");
    assert_true(p1 && p2 && p3 && p1 < p2 && p2 < p3);
    for (size_t step = 1; step < 40; step += 3) {
        char *split = run(s, in, sizeof in - 1, step, NULL);
        /* only the 100 Continue may differ: a client that waits gets one */
        char *q = split;
        const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        char *hit = strstr(q, cont);
        if (hit) memmove(hit, hit + sizeof cont - 1, strlen(hit + sizeof cont - 1) + 1);
        assert_string_equal(split, whole);
        free(split);
    }
    free(whole);
    st_http_server_destroy(s);
}

static void expect_error(st_http_server_t *s, const char *in, size_t len, const char *status_line)
{
    if (len == SIZE_MAX) len = strlen(in);
    bool closed = false;
    char *out = run(s, in, len, 0, &closed);
    assert_true(closed);
    if (strncmp(out, status_line, strlen(status_line)) != 0) fail_msg("want %s got: %s", status_line, out);
    assert_non_null(strstr(out, "Connection: close\r\n"));
    free(out);
}

static void test_sim_errors(void **state)
{
    st_http_server_t *s = sim_server(200, 16);
    expect_error(s,
                 "GET / HTTP/1.1\r\nX: 0123456789012345678901234567890123456789012345678901234567890123456789"
                 "0123456789012345678901234567890123456789012345678901234567890123456789"
                 "0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n",
                 SIZE_MAX, "HTTP/1.1 431 ");
    expect_error(s, "POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n", SIZE_MAX, "HTTP/1.1 413 ");
    expect_error(
        s, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n1\r\nx\r\n",
        SIZE_MAX, "HTTP/1.1 413 ");
    expect_error(s, "BREW /pot HTTP/1.1\r\n\r\n", SIZE_MAX, "HTTP/1.1 400 ");
    expect_error(s, "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx", SIZE_MAX,
                 "HTTP/1.1 400 ");
    expect_error(s, "GET /%%% HTTP/1.1\r\n\r\n", SIZE_MAX, "HTTP/1.1 400 ");
    expect_error(s, "GET / HTTP/1.1\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\n", SIZE_MAX,
                 "HTTP/1.1 417 ");
    expect_error(s, "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", SIZE_MAX, "HTTP/1.1 400 ");
    /* trailers count against the header limit */
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n");
    for (int i = 0; i < 50; i++) st_buf_puts(&b, "Trailer-Field: value\r\n");
    st_buf_puts(&b, "\r\n");
    expect_error(s, b.data, b.len, "HTTP/1.1 431 ");
    st_buf_free(&b);
    st_http_server_destroy(s);
}

static void test_default_header_limit(void **state)
{
    /* max_header_bytes 0 means 1 MiB, past http-parser's own 80 KiB default cap. */
    st_http_server_t *s = sim_server(0, 0);
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "GET /echo HTTP/1.1\r\nX-Tag: t\r\n");
    for (int i = 0; i < 300; i++) {
        st_buf_printf(&b, "X-Fill-%d: ", i);
        for (int j = 0; j < 1000; j++) st_buf_putc(&b, 'f');
        st_buf_puts(&b, "\r\n");
    }
    st_buf_puts(&b, "\r\n");
    bool closed;
    char *out = run(s, b.data, b.len, 0, &closed);
    assert_false(closed);
    assert_int_equal(strncmp(out, "HTTP/1.1 200 OK\r\n", 17), 0);
    free(out);
    /* and over 1 MiB is refused */
    st_buf_reset(&b);
    st_buf_puts(&b, "GET /echo HTTP/1.1\r\n");
    for (int i = 0; i < 1100; i++) {
        st_buf_puts(&b, "X-Fill: ");
        for (int j = 0; j < 1000; j++) st_buf_putc(&b, 'f');
        st_buf_puts(&b, "\r\n");
    }
    st_buf_puts(&b, "\r\n");
    expect_error(s, b.data, b.len, "HTTP/1.1 431 ");
    st_buf_free(&b);
    st_http_server_destroy(s);
}

static void test_sim_expect(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    st_http_conn_t *c = st__http_sim_open(s);
    static const char head[] = "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n";
    st__http_sim_feed(c, head, sizeof head - 1);
    st_str_t out = st__http_sim_output(c);
    assert_int_equal(out.n, 25);
    assert_memory_equal(out.p, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    st__http_sim_feed(c, "abc", 3);
    out = st__http_sim_output(c);
    assert_true(out.n > 25 + 17);
    assert_memory_equal(out.p + 25, "HTTP/1.1 200 OK\r\n", 17);
    assert_false(st__http_sim_closed(c));
    st__http_sim_close(c);
    st_http_server_destroy(s);
}

static void test_sim_held_request(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    /* answered later, after more pipelined input arrived */
    st_http_conn_t *c = st__http_sim_open(s);
    held = NULL;
    static const char two[] = "GET /hold HTTP/1.1\r\n\r\nGET /echo HTTP/1.1\r\n\r\n";
    st__http_sim_feed(c, two, sizeof two - 1);
    assert_non_null(held);
    assert_int_equal(st__http_sim_output(c).n, 0);
    assert_int_equal(st_http_active_requests(s), 1);
    st_http_respond(held, 200, NULL, "later", 5);
    held = NULL;
    st__http_sim_flush(c); /* completes the write, then serves the queued request */
    char *out = strip_dates(st__http_sim_output(c));
    assert_int_equal(count_status(out, "HTTP/1.1 200 OK"), 2);
    assert_non_null(strstr(out, "later"));
    free(out);
    st__http_sim_close(c);

    /* input that arrives while the request is held is queued and served after it, in order */
    c = st__http_sim_open(s);
    st__http_sim_feed(c, "GET /hold HTTP/1.1\r\n\r\n", 22);
    assert_non_null(held);
    static const char more[] = "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /p/x HTTP/1.1\r\n\r\n";
    for (size_t i = 0; i < sizeof more - 1; i++) st__http_sim_feed(c, more + i, 1);
    assert_int_equal(st__http_sim_output(c).n, 0);
    st_http_respond(held, 200, NULL, "first", 5);
    held = NULL;
    st__http_sim_flush(c);
    out = strip_dates(st__http_sim_output(c));
    const char *a = strstr(out, "first"), *b = strstr(out, "abc"), *x = strstr(out, "\r\n\r\nx");
    assert_true(a && b && x && a < b && b < x);
    free(out);
    st__http_sim_close(c);

    /* the client leaves while the handler holds the request: the answer is dropped, no leak */
    c = st__http_sim_open(s);
    st__http_sim_feed(c, "GET /hold HTTP/1.1\r\n\r\n", 22);
    assert_non_null(held);
    st__http_sim_close(c);
    assert_true(st_http_client_gone(held));
    assert_int_equal(st_http_connections(s), 1); /* kept alive by the request */
    assert_int_equal(st_http_add_header(held, "X-A", "b"), 0);
    st_http_respond(held, 200, NULL, "dropped", 7);
    assert_int_equal(st_http_connections(s), 0);
    assert_int_equal(st_http_active_requests(s), 0);
    held = NULL;
    st_http_server_destroy(s);
}

static void test_sim_shutdown(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    st_http_conn_t *c = st__http_sim_open(s);
    held = NULL;
    st__http_sim_feed(c, "GET /hold HTTP/1.1\r\n\r\n", 22);
    assert_non_null(held);
    st_http_server_shutdown(s, NULL, NULL);
    st_http_respond(held, 200, NULL, "x", 1);
    st__http_sim_flush(c);
    char *out = strip_dates(st__http_sim_output(c));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    free(out);
    assert_true(st__http_sim_closed(c));
    st__http_sim_close(c);
    st_http_server_destroy(s);
}

static void test_add_header_rules(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    st_http_conn_t *c = st__http_sim_open(s);
    held = NULL;
    st__http_sim_feed(c, "GET /hold HTTP/1.1\r\n\r\n", 22);
    assert_non_null(held);
    assert_int_equal(st_http_add_header(held, "Content-Length", "1"), -EINVAL);
    assert_int_equal(st_http_add_header(held, "connection", "close"), -EINVAL);
    assert_int_equal(st_http_add_header(held, "Bad Name", "x"), -EINVAL);
    assert_int_equal(st_http_add_header(held, "X-Ok", "a\r\nInjected: 1"), -EINVAL);
    assert_int_equal(st_http_add_header(held, "X-Ok", "fine"), 0);
    st_http_respond(held, 99, NULL, NULL, 0); /* not a final status: sent as 500 */
    /* White-box: in a simulation the request lives until the flush below, so a (contract-breaking)
     * late call can be observed to be refused. */
    assert_int_equal(st_http_add_header(held, "X-Late", "1"), ST_EBADSTATE);
    st__http_sim_flush(c);
    st_str_t out = st__http_sim_output(c);
    assert_true(out.n > 35);
    assert_memory_equal(out.p, "HTTP/1.1 500 Internal Server Error\r\n", 36);
    char *o = strip_dates(out);
    assert_non_null(strstr(o, "X-Ok: fine\r\n"));
    assert_null(strstr(o, "Injected"));
    free(o);
    held = NULL;
    st__http_sim_close(c);
    st_http_server_destroy(s);
}

static void test_access_log(void **state)
{
    st_http_server_t *s = sim_server(4096, 4096);
    char path[] = "/tmp/st_http_logXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    st_log_level_t lvl = st_log_level;
    st_log_level = ST_LOG_DEBUG;
    bool closed;
    static const char in[] = "GET /echo?x=1 HTTP/1.1\r\n\r\nGET /we%22ird%0A HTTP/1.1\r\n\r\n";
    free(run(s, in, sizeof in - 1, 0, &closed));
    st_log_level = lvl;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    assert_true(n > 0);
    assert_non_null(
        strstr(buf, "level=debug module=http msg=request method=GET path=\"/echo\" status=200 duration="));
    assert_non_null(strstr(buf, "remote=sim"));
    assert_non_null(strstr(buf, "path=\"/we\\\"ird\\x0a\" status=404"));
    st_http_server_destroy(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_decode),   cmocka_unit_test(test_form),
        cmocka_unit_test(test_sim_splits),   cmocka_unit_test(test_sim_errors),
        cmocka_unit_test(test_sim_expect),   cmocka_unit_test(test_sim_held_request),
        cmocka_unit_test(test_sim_shutdown), cmocka_unit_test(test_add_header_rules),
        cmocka_unit_test(test_access_log),   cmocka_unit_test(test_default_header_limit),
    };
    return cmocka_run_group_tests_name("http_parse", tests, NULL, NULL);
}
