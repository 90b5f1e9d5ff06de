/* test_websocket.c: the http module's WebSocket support. The frame parser on its own (every split of
 * the input gives the same events; each RFC 6455 violation gives its close code), the handshake and
 * framing through the socket-free simulated connection (echo, fragmentation, ping/pong, close
 * handshake, protocol errors), and over real sockets with the server on a loop thread: server pings,
 * posts from another thread, a bounded send queue under a client that does not read, client
 * disconnects and shutdown with an open WebSocket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/err.h"
#include "common/timeutil.h"
#include "http/http_int.h"

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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Handlers run on the loop thread (or inside a simulated feed); no cmocka assertions there. */
#define HCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "%s:%d: handler check failed: %s\n", __FILE__, __LINE__, #x);                    \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static const char key_req[] =
    "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/* Appends a client frame (masked with 1,2,3,4 unless unmasked). */
static void cframe(st_buf_t *b, bool fin, int opcode, const void *payload, size_t len, bool unmasked)
{
    static const uint8_t mask[4] = {1, 2, 3, 4};
    uint8_t h[14];
    size_t hl = st__ws_frame_header(h, opcode, len, unmasked ? NULL : mask);
    if (!fin) h[0] &= 0x7f;
    st_buf_append(b, h, hl);
    const uint8_t *p = payload;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = unmasked ? p[i] : (uint8_t)(p[i] ^ mask[i & 3]);
        st_buf_putc(b, (char)c);
    }
}

static void cclose(st_buf_t *b, int code, const char *reason)
{
    uint8_t p[128];
    size_t n = 0;
    if (code) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        size_t rl = strlen(reason);
        memcpy(p + 2, reason, rl);
        n += rl;
    }
    cframe(b, true, 8, p, n, false);
}

/* Server output decoded by a client-side parser. */
typedef struct {
    int n;
    st__ws_ev_type_t type[64];
    int opcode[64];
    int code[64];
    char data[64][256];
    size_t len[64];
} evs_t;

static void decode(const char *p, size_t n, evs_t *out)
{
    memset(out, 0, sizeof *out);
    st__ws_parser_t ps;
    st__ws_parser_init(&ps, false, 1 << 24);
    size_t off = 0;
    while (off < n && out->n < 64) {
        st__ws_event_t ev;
        off += st__ws_parse(&ps, p + off, n - off, &ev);
        if (ev.type == ST__WS_EV_NONE) break;
        int i = out->n++;
        out->type[i] = ev.type;
        out->opcode[i] = ev.opcode;
        out->code[i] = ev.code;
        out->len[i] = ev.len;
        memcpy(out->data[i], ev.data, ev.len < 255 ? ev.len : 255);
        if (ev.type == ST__WS_EV_ERROR) break;
    }
    st__ws_parser_dispose(&ps);
}

/* ------------------------------------------------------------------------------------------------ */
/* parser */

static void collect(const uint8_t *in, size_t n, size_t step, bool server, size_t maxmsg, st_buf_t *trace)
{
    st__ws_parser_t p;
    st__ws_parser_init(&p, server, maxmsg);
    size_t off = 0;
    while (off < n) {
        size_t chunk = n - off < step ? n - off : step;
        size_t used = 0;
        while (used < chunk) {
            st__ws_event_t ev;
            size_t u = st__ws_parse(&p, in + off + used, chunk - used, &ev);
            used += u;
            if (ev.type != ST__WS_EV_NONE) {
                st_buf_printf(trace, "%d/%d/%d/", ev.type, ev.opcode, ev.code);
                st_buf_append(trace, ev.data, ev.len);
                st_buf_putc(trace, '|');
            }
            if (ev.type == ST__WS_EV_ERROR) {
                st__ws_parser_dispose(&p);
                return;
            }
            if (u == 0 && ev.type == ST__WS_EV_NONE) break;
        }
        off += chunk;
    }
    st__ws_parser_dispose(&p);
}

static void test_parser_splits(void **state)
{
    st_buf_t in = ST_BUF_INIT;
    char big[70000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    cframe(&in, true, 1, "hello", 5, false);
    cframe(&in, false, 2, "ab", 2, false);
    cframe(&in, true, 9, "pi", 2, false); /* control frame inside a fragmented message */
    cframe(&in, false, 0, "cd", 2, false);
    cframe(&in, true, 0, "ef", 2, false);
    cframe(&in, true, 1, big, 300, false);        /* 16-bit length */
    cframe(&in, true, 2, big, sizeof big, false); /* 64-bit length */
    cframe(&in, true, 10, "", 0, false);
    cframe(&in, true, 1, "", 0, false);
    cclose(&in, 1000, "bye");
    st_buf_t whole = ST_BUF_INIT;
    collect((const uint8_t *)in.data, in.len, in.len, true, 1 << 20, &whole);
    assert_non_null(strstr(st_buf_cstr(&whole), "1/1/0/hello|"));
    assert_non_null(strstr(whole.data, "2/0/0/pi|1/2/0/abcdef|"));
    assert_non_null(strstr(whole.data, "4/0/1000/bye|"));
    for (size_t step = 1; step < 40; step++) {
        st_buf_t t = ST_BUF_INIT;
        collect((const uint8_t *)in.data, in.len, step, true, 1 << 20, &t);
        assert_int_equal(t.len, whole.len);
        assert_memory_equal(t.data, whole.data, whole.len);
        st_buf_free(&t);
    }
    st_buf_free(&whole);
    st_buf_free(&in);
}

/* The event trace of one input must end with an error of this close code. */
static void expect_error(const st_buf_t *in, bool server, size_t maxmsg, int code)
{
    st_buf_t t = ST_BUF_INIT;
    collect((const uint8_t *)in->data, in->len, in->len, server, maxmsg, &t);
    char want[32];
    snprintf(want, sizeof want, "%d/0/%d/", ST__WS_EV_ERROR, code);
    if (strstr(st_buf_cstr(&t), want) == NULL)
        fail_msg("want %s in trace %s (input %zu bytes, first %02x %02x)", want, t.data ? t.data : "",
                 in->len, (unsigned char)in->data[0], (unsigned char)in->data[1]);
    st_buf_free(&t);
}

static void test_parser_violations(void **state)
{
    st_buf_t b = ST_BUF_INIT;
    cframe(&b, true, 1, "x", 1, true); /* unmasked client frame */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, true, 1, "x", 1, false); /* masked server frame seen by a client */
    expect_error(&b, false, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, true, 1, "x", 1, false);
    b.data[0] |= 0x40; /* RSV1 */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, true, 3, "x", 1, false); /* reserved opcode */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, true, 0, "x", 1, false); /* continuation without a message */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, false, 1, "x", 1, false);
    cframe(&b, true, 2, "y", 1, false); /* new message inside a fragmented one */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, false, 9, "x", 1, false); /* fragmented ping */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    char big[200];
    memset(big, 'p', sizeof big);
    cframe(&b, true, 9, big, 126, false); /* control frame over 125 bytes */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cframe(&b, true, 1, "\xff\xfe", 2, false); /* invalid UTF-8 text */
    expect_error(&b, true, 0, 1007);
    st_buf_reset(&b);
    cframe(&b, true, 2, big, 101, false); /* over max_message 100 */
    expect_error(&b, true, 100, 1009);
    st_buf_reset(&b);
    cframe(&b, false, 2, big, 60, false);
    cframe(&b, true, 0, big, 60, false); /* the reassembled message is too big */
    expect_error(&b, true, 100, 1009);
    st_buf_reset(&b);
    cframe(&b, true, 8, "\x03", 1, false); /* close payload of one byte */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cclose(&b, 1005, ""); /* reserved close code on the wire */
    expect_error(&b, true, 0, 1002);
    st_buf_reset(&b);
    cclose(&b, 1000, "\xc3"); /* truncated UTF-8 in the reason */
    expect_error(&b, true, 0, 1007);
    st_buf_reset(&b);
    uint8_t h[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}; /* 64-bit length, top bit set */
    st_buf_append(&b, h, sizeof h);
    expect_error(&b, true, 0, 1002);
    st_buf_free(&b);
}

static void test_accept_key(void **state)
{
    char out[29];
    assert_int_equal(st__ws_accept_key(st_cstr("dGhlIHNhbXBsZSBub25jZQ=="), out), 0);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="); /* RFC 6455 section 1.3 */
    assert_true(st__ws_key_valid(st_cstr("dGhlIHNhbXBsZSBub25jZQ==")));
    assert_false(st__ws_key_valid(st_cstr("dGhlIHNhbXBsZSBub25jZQ=")));
    assert_false(st__ws_key_valid(st_cstr("dGhlIHNhbXBsZSBub25jZQ*=")));
    assert_false(st__ws_key_valid(st_cstr("dGhlIHNhbXBsZSBub25jZR==")));
    assert_false(st__ws_key_valid(st_cstr("")));
}

/* ------------------------------------------------------------------------------------------------ */
/* simulated connections */

typedef struct {
    st_http_ws_t *ws;
    int nmsg;
    st_buf_t last;
    int close_code;
    char close_reason[128];
    int closes;
    int accept_rc;
    bool echo;
    int close_after; /* close with 1011 after this many messages */
} sim_state_t;

static sim_state_t S;

static void s_on_message(st_http_ws_t *ws, int opcode, const void *data, size_t len, void *arg)
{
    sim_state_t *s = arg;
    s->nmsg++;
    st_buf_reset(&s->last);
    st_buf_append(&s->last, data, len);
    if (s->echo) HCHECK(st_http_ws_send(ws, opcode, data, len) == 0);
    if (s->close_after && s->nmsg == s->close_after) {
        HCHECK(st_http_ws_close(ws, ST_WS_CLOSE_INTERNAL, "boom") == 0);
        HCHECK(st_http_ws_send(ws, ST_WS_TEXT, "late", 4) == ST_EBADSTATE);
        HCHECK(st_http_ws_close(ws, 1000, NULL) == ST_EBADSTATE);
    }
}

static void s_on_close(st_http_ws_t *ws, int code, st_str_t reason, void *arg)
{
    sim_state_t *s = arg;
    s->closes++;
    s->close_code = code;
    snprintf(s->close_reason, sizeof s->close_reason, "%.*s", (int)reason.n, reason.p);
}

static void h_ws(st_http_req_t *r, void *arg)
{
    st_http_ws_opts_t o = {
        .on_message = s_on_message, .on_close = s_on_close, .max_message = 1000, .max_queue = 4};
    S.accept_rc = st_http_ws_accept(r, &o, &S, &S.ws);
}

static st_http_server_t *sim_server(void)
{
    st_http_opts_t o = {.max_header_bytes = 4096, .max_body_bytes = 4096};
    st_http_server_t *s;
    assert_int_equal(st__http_sim_server_create(&o, &s), 0);
    assert_int_equal(st_http_route(s, ST_HTTP_GET | ST_HTTP_POST, "/ws", h_ws, NULL), 0);
    return s;
}

static void sim_reset(void)
{
    st_buf_free(&S.last);
    memset(&S, 0, sizeof S);
}

/* Splits the output into the HTTP head and the frames after it. */
static st_str_t frames_of(st_http_conn_t *c, int *status)
{
    st_str_t out = st__http_sim_output(c);
    *status = 0;
    sscanf(out.p, "HTTP/1.1 %d", status);
    const char *e = memmem(out.p, out.n, "\r\n\r\n", 4);
    if (e == NULL) return st_str("", 0);
    e += 4;
    return st_str(e, out.n - (size_t)(e - out.p));
}

static void test_sim_handshake_errors(void **state)
{
    static const struct {
        const char *req;
        int status;
        const char *body;
    } cases[] = {
        {"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         400, "'upgrade' token not found in 'Connection' header"},
        {"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         400, "'websocket' token not found in 'Upgrade' header"},
        {"POST /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: "
         "websocket\r\nSec-WebSocket-Version: 13\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n",
         405, "request method is not GET"},
        {"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: "
         "8\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
         400, "unsupported version: 13 not found"},
        {"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: "
         "13\r\n"
         "Sec-WebSocket-Key: abc\r\n\r\n",
         400, "'Sec-WebSocket-Key' header must be Base64 encoded value of 16-byte in length"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_reset();
        st_http_server_t *s = sim_server();
        st_http_conn_t *c = st__http_sim_open(s);
        st__http_sim_feed(c, cases[i].req, strlen(cases[i].req));
        st_str_t out = st__http_sim_output(c);
        char head[32];
        snprintf(head, sizeof head, "HTTP/1.1 %d ", cases[i].status);
        assert_true(out.n > strlen(head) && memcmp(out.p, head, strlen(head)) == 0);
        assert_non_null(memmem(out.p, out.n, cases[i].body, strlen(cases[i].body)));
        if (cases[i].status == 400 && strstr(cases[i].body, "version"))
            assert_non_null(memmem(out.p, out.n, "Sec-WebSocket-Version: 13", 25));
        assert_true(S.accept_rc < 0);
        st__http_sim_close(c);
        st_http_server_destroy(s);
    }
    sim_reset();
}

static void test_sim_echo_fragments_ping(void **state)
{
    sim_reset();
    S.echo = true;
    st_http_server_t *s = sim_server();
    st_http_conn_t *c = st__http_sim_open(s);
    /* the first frame arrives in the same read as the upgrade request */
    st_buf_t in = ST_BUF_INIT;
    st_buf_puts(&in, key_req);
    cframe(&in, true, 1, "hello", 5, false);
    st__http_sim_feed(c, in.data, in.len);
    assert_int_equal(S.accept_rc, 0);
    int status;
    st_str_t fr = frames_of(c, &status);
    assert_int_equal(status, 101);
    st_str_t out = st__http_sim_output(c);
    assert_non_null(memmem(out.p, out.n, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", 52));
    assert_non_null(memmem(out.p, out.n, "Upgrade: websocket\r\n", 20));
    evs_t e;
    decode(fr.p, fr.n, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], ST__WS_EV_MESSAGE);
    assert_int_equal(e.opcode[0], 1);
    assert_memory_equal(e.data[0], "hello", 5);
    /* fragmented binary message with a ping in the middle, fed byte by byte */
    st_buf_reset(&in);
    cframe(&in, false, 2, "ab", 2, false);
    cframe(&in, true, 9, "hb", 2, false);
    cframe(&in, true, 0, "cd", 2, false);
    for (size_t i = 0; i < in.len; i++) st__http_sim_feed(c, in.data + i, 1);
    fr = frames_of(c, &status);
    decode(fr.p, fr.n, &e);
    assert_int_equal(e.n, 3);
    assert_int_equal(e.type[1], ST__WS_EV_PONG);
    assert_memory_equal(e.data[1], "hb", 2);
    assert_int_equal(e.type[2], ST__WS_EV_MESSAGE);
    assert_int_equal(e.opcode[2], 2);
    assert_int_equal(e.len[2], 4);
    assert_memory_equal(e.data[2], "abcd", 4);
    assert_int_equal(S.nmsg, 2);
    /* client close: echoed, then the server closes the connection */
    st_buf_reset(&in);
    cclose(&in, 1000, "bye");
    st__http_sim_feed(c, in.data, in.len);
    fr = frames_of(c, &status);
    decode(fr.p, fr.n, &e);
    assert_int_equal(e.n, 4);
    assert_int_equal(e.type[3], ST__WS_EV_CLOSE);
    assert_int_equal(e.code[3], 1000);
    assert_true(st__http_sim_closed(c));
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.close_code, 1000);
    assert_string_equal(S.close_reason, "bye");
    st_buf_free(&in);
    st__http_sim_close(c);
    st_http_server_destroy(s);
    sim_reset();
}

static void test_sim_server_close(void **state)
{
    sim_reset();
    S.close_after = 2;
    st_http_server_t *s = sim_server();
    st_http_conn_t *c = st__http_sim_open(s);
    st_buf_t in = ST_BUF_INIT;
    st_buf_puts(&in, key_req);
    cframe(&in, true, 1, "one", 3, false);
    cframe(&in, true, 1, "two", 3, false);
    cframe(&in, true, 1, "three", 5, false); /* ignored: the server is closing */
    st__http_sim_feed(c, in.data, in.len);
    int status;
    st_str_t fr = frames_of(c, &status);
    evs_t e;
    decode(fr.p, fr.n, &e);
    assert_int_equal(e.n, 1);
    assert_int_equal(e.type[0], ST__WS_EV_CLOSE);
    assert_int_equal(e.code[0], 1011);
    assert_memory_equal(e.data[0], "boom", 4);
    assert_int_equal(S.nmsg, 2);
    assert_false(st__http_sim_closed(c)); /* waits for the client's close frame */
    st_buf_reset(&in);
    cclose(&in, 1011, "");
    st__http_sim_feed(c, in.data, in.len);
    assert_true(st__http_sim_closed(c));
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.close_code, 1011);
    st_buf_free(&in);
    st__http_sim_close(c);
    st_http_server_destroy(s);
    sim_reset();
}

static void test_sim_protocol_errors(void **state)
{
    static const struct {
        int code;
        int kind;
    } cases[] = {{1002, 0}, {1007, 1}, {1009, 2}, {1002, 3}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sim_reset();
        st_http_server_t *s = sim_server();
        st_http_conn_t *c = st__http_sim_open(s);
        st_buf_t in = ST_BUF_INIT;
        st_buf_puts(&in, key_req);
        char big[2000];
        memset(big, 'z', sizeof big);
        switch (cases[i].kind) {
        case 0: cframe(&in, true, 1, "x", 1, true); break;
        case 1: cframe(&in, true, 1, "\xc0\xaf", 2, false); break;
        case 2: cframe(&in, true, 2, big, sizeof big, false); break;
        case 3: cframe(&in, true, 0xb, "", 0, false); break;
        }
        st__http_sim_feed(c, in.data, in.len);
        int status;
        st_str_t fr = frames_of(c, &status);
        assert_int_equal(status, 101);
        evs_t e;
        decode(fr.p, fr.n, &e);
        assert_int_equal(e.n, 1);
        assert_int_equal(e.type[0], ST__WS_EV_CLOSE);
        assert_int_equal(e.code[0], cases[i].code);
        assert_true(st__http_sim_closed(c)); /* no waiting after a protocol error */
        assert_int_equal(S.closes, 1);
        assert_int_equal(S.close_code, ST_WS_CLOSE_ABNORMAL);
        assert_int_equal(S.nmsg, 0);
        st_buf_free(&in);
        st__http_sim_close(c);
        st_http_server_destroy(s);
    }
    sim_reset();
}

static void test_sim_client_gone(void **state)
{
    sim_reset();
    st_http_server_t *s = sim_server();
    st_http_conn_t *c = st__http_sim_open(s);
    st__http_sim_feed(c, key_req, strlen(key_req));
    assert_int_equal(S.accept_rc, 0);
    assert_int_equal(st_http_ws_send(S.ws, ST_WS_TEXT, "a", 1), 0);
    assert_int_equal(st_http_ws_send(S.ws, 7, "a", 1), -EINVAL);
    assert_int_equal(st_http_ws_post(S.ws, ST_WS_BINARY, "b", 1), 0);
    assert_int_equal(st_http_ws_wake(S.ws), 0);
    st__http_sim_close(c); /* the client drops the TCP connection */
    assert_int_equal(S.closes, 1);
    assert_int_equal(S.close_code, ST_WS_CLOSE_ABNORMAL);
    st_http_server_destroy(s);
    sim_reset();
}

/* ------------------------------------------------------------------------------------------------ */
/* real sockets: the server on a loop thread */

typedef struct {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    st_http_server_t *srv;
    pthread_t th;
    int port;
    atomic_int shutdown_done;
    atomic_int stop_cmd;
    bool shutting;
} ts_t;

typedef struct {
    atomic_int closes, close_code, wakes, accepted, full_at, msgs;
    st_http_ws_t *ws; /* loop thread */
    pthread_t poster;
    bool poster_started;
    atomic_int posted;
    int mode; /* 0 echo, 1 flood on wake, 2 post from a thread */
} live_t;

static live_t L;

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

static void *poster_main(void *arg)
{
    st_http_ws_t *ws = arg;
    for (int i = 0; i < 50; i++) {
        char m[32];
        int n = snprintf(m, sizeof m, "post-%d", i);
        while (st_http_ws_post(ws, ST_WS_TEXT, m, (size_t)n) == ST_EFULL) usleep(1000);
        atomic_fetch_add(&L.posted, 1);
    }
    return NULL;
}

static void l_on_message(st_http_ws_t *ws, int opcode, const void *data, size_t len, void *arg)
{
    atomic_fetch_add(&L.msgs, 1);
    if (L.mode == 0) HCHECK(st_http_ws_send(ws, opcode, data, len) == 0);
    if (L.mode == 2 && !L.poster_started) {
        L.poster_started = true;
        HCHECK(pthread_create(&L.poster, NULL, poster_main, ws) == 0);
    }
}

/* flood: 256 KiB messages until the queue refuses */
static void flood(st_http_ws_t *ws)
{
    static char blob[256 * 1024];
    memset(blob, 'f', sizeof blob);
    for (int i = 0; i < 1000; i++) {
        int rc = st_http_ws_send(ws, ST_WS_BINARY, blob, sizeof blob);
        if (rc == ST_EFULL) {
            atomic_store(&L.full_at, (int)st_http_ws_queued(ws));
            return;
        }
        /* the flood timer can fire after the write timeout closed the connection (the test checks
         * that close on its own): nothing more to send then */
        if (rc == ST_EBADSTATE && atomic_load(&L.full_at) > 0) return;
        HCHECK(rc == 0);
    }
}

static uv_timer_t flood_timer;

static void on_flood_timer(uv_timer_t *t)
{
    if (L.ws) flood(L.ws);
}

static void l_on_wake(st_http_ws_t *ws, void *arg)
{
    atomic_fetch_add(&L.wakes, 1);
    if (L.mode != 1) return;
    flood(ws);
    /* keep the queue full while the client does not read */
    uv_timer_init(ws->conn->srv->loop, &flood_timer);
    uv_timer_start(&flood_timer, on_flood_timer, 20, 20);
}

static void l_on_close(st_http_ws_t *ws, int code, st_str_t reason, void *arg)
{
    if (L.poster_started) {
        pthread_join(L.poster, NULL); /* other threads stop before the handle goes */
        L.poster_started = false;
    }
    L.ws = NULL;
    if (L.mode == 1) uv_close((uv_handle_t *)&flood_timer, NULL);
    atomic_store(&L.close_code, code);
    atomic_fetch_add(&L.closes, 1);
}

static void h_live(st_http_req_t *r, void *arg)
{
    st_http_ws_opts_t o = {.on_message = l_on_message,
                           .on_close = l_on_close,
                           .on_wake = l_on_wake,
                           .max_queue = L.mode == 2 ? 64 : 4,
                           .ping_interval_ns = 100 * ST_NS_PER_MS};
    st_http_ws_t *ws;
    if (st_http_ws_accept(r, &o, NULL, &ws) == 0) {
        L.ws = ws;
        atomic_fetch_add(&L.accepted, 1);
        if (L.mode == 1) HCHECK(st_http_ws_wake(ws) == 0);
    }
}

static ts_t *ts_start(void)
{
    ts_t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    st_http_opts_t o = {.host = "127.0.0.1",
                        .max_header_bytes = 4096,
                        .max_body_bytes = 4096,
                        .read_timeout_ns = 5 * ST_NS_PER_SEC,
                        .write_timeout_ns = 3 * ST_NS_PER_SEC,
                        .idle_timeout_ns = 5 * ST_NS_PER_SEC};
    assert_int_equal(st_http_server_create(&t->loop, &o, &t->srv), 0);
    t->port = st_http_port(t->srv);
    assert_int_equal(st_http_route(t->srv, ST_HTTP_GET, "/live", h_live, NULL), 0);
    t->async.data = t;
    assert_int_equal(uv_async_init(&t->loop, &t->async, on_async), 0);
    assert_int_equal(pthread_create(&t->th, NULL, loop_main, t), 0);
    return t;
}

static void ts_stop(ts_t *t)
{
    uv_async_send(&t->async);
    pthread_join(t->th, NULL);
    assert_int_equal(atomic_load(&t->shutdown_done), 1);
    st_http_server_destroy(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
}

static int64_t now_ms(void)
{
    return st_mono_ns() / ST_NS_PER_MS;
}

static int cli_connect(int port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    if (rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void cli_send(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* A client reading frames from a socket. */
typedef struct {
    int fd;
    st_buf_t buf;
    size_t off;
    st__ws_parser_t p;
} wcli_t;

static void wcli_open(wcli_t *w, int port, const char *path, int rcvbuf)
{
    memset(w, 0, sizeof *w);
    w->fd = cli_connect(port, rcvbuf);
    char req[512];
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
             path);
    cli_send(w->fd, req, strlen(req));
    st__ws_parser_init(&w->p, false, 1 << 24);
    /* the 101 head */
    for (;;) {
        const char *e = w->buf.len ? memmem(w->buf.data, w->buf.len, "\r\n\r\n", 4) : NULL;
        if (e) {
            assert_memory_equal(w->buf.data, "HTTP/1.1 101 ", 13);
            w->off = (size_t)(e - w->buf.data) + 4;
            break;
        }
        char tmp[4096];
        ssize_t n = recv(w->fd, tmp, sizeof tmp, 0);
        assert_true(n > 0);
        st_buf_append(&w->buf, tmp, (size_t)n);
    }
}

/* Next event (reading as needed); NONE on EOF or timeout. */
static st__ws_event_t wcli_next(wcli_t *w)
{
    for (;;) {
        st__ws_event_t ev;
        size_t used = st__ws_parse(&w->p, w->buf.data + w->off, w->buf.len - w->off, &ev);
        w->off += used;
        if (ev.type != ST__WS_EV_NONE) return ev;
        w->buf.len = 0;
        w->off = 0;
        char tmp[65536];
        ssize_t n = recv(w->fd, tmp, sizeof tmp, 0);
        if (n <= 0) return (st__ws_event_t){.type = ST__WS_EV_NONE};
        st_buf_append(&w->buf, tmp, (size_t)n);
    }
}

static void wcli_close(wcli_t *w)
{
    close(w->fd);
    st_buf_free(&w->buf);
    st__ws_parser_dispose(&w->p);
}

/* Waits up to timeout_ms (generous: the wait ends as soon as v reaches want; a loaded CI host can be
 * slow to schedule the server thread). */
static void wait_int(atomic_int *v, int want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (atomic_load(v) < want && now_ms() < end) usleep(2000);
    assert_true(atomic_load(v) >= want);
}

static void test_live_echo_ping_close(void **state)
{
    memset(&L, 0, sizeof L);
    ts_t *t = ts_start();
    wcli_t w;
    wcli_open(&w, t->port, "/live", 0);
    st_buf_t f = ST_BUF_INIT;
    cframe(&f, true, 1, "echo me", 7, false);
    cli_send(w.fd, f.data, f.len);
    int pings = 0;
    bool echoed = false;
    int64_t start = now_ms();
    while (pings < 3 || !echoed) {
        st__ws_event_t ev = wcli_next(&w);
        assert_int_not_equal(ev.type, ST__WS_EV_NONE);
        if (ev.type == ST__WS_EV_PING) pings++;
        if (ev.type == ST__WS_EV_MESSAGE) {
            assert_int_equal(ev.len, 7);
            assert_memory_equal(ev.data, "echo me", 7);
            echoed = true;
        }
    }
    assert_true(now_ms() - start >= 200); /* three pings 100 ms apart */
    /* client-initiated close */
    st_buf_reset(&f);
    cclose(&f, 1000, "done");
    cli_send(w.fd, f.data, f.len);
    st__ws_event_t ev;
    do ev = wcli_next(&w);
    while (ev.type == ST__WS_EV_PING);
    assert_int_equal(ev.type, ST__WS_EV_CLOSE);
    assert_int_equal(ev.code, 1000);
    ev = wcli_next(&w); /* then EOF */
    assert_int_equal(ev.type, ST__WS_EV_NONE);
    wait_int(&L.closes, 1, 10000);
    assert_int_equal(atomic_load(&L.close_code), 1000);
    wcli_close(&w);
    st_buf_free(&f);
    ts_stop(t);
}

static void test_live_post_from_thread(void **state)
{
    memset(&L, 0, sizeof L);
    L.mode = 2;
    ts_t *t = ts_start();
    wcli_t w;
    wcli_open(&w, t->port, "/live", 0);
    st_buf_t f = ST_BUF_INIT;
    cframe(&f, true, 1, "go", 2, false);
    cli_send(w.fd, f.data, f.len);
    int got = 0;
    while (got < 50) {
        st__ws_event_t ev = wcli_next(&w);
        assert_int_not_equal(ev.type, ST__WS_EV_NONE);
        if (ev.type != ST__WS_EV_MESSAGE) continue;
        char want[32];
        int n = snprintf(want, sizeof want, "post-%d", got);
        assert_int_equal(ev.len, (size_t)n);
        assert_memory_equal(ev.data, want, (size_t)n);
        got++;
    }
    wcli_close(&w); /* abrupt: no close frame */
    wait_int(&L.closes, 1, 10000);
    assert_int_equal(atomic_load(&L.close_code), ST_WS_CLOSE_ABNORMAL);
    st_buf_free(&f);
    ts_stop(t);
}

static void test_live_backpressure(void **state)
{
    memset(&L, 0, sizeof L);
    L.mode = 1;
    ts_t *t = ts_start();
    wcli_t w;
    wcli_open(&w, t->port, "/live", 4096); /* small receive buffer, and nothing is read */
    wait_int(&L.full_at, 4, 10000); /* refused at max_queue */
    assert_int_equal(atomic_load(&L.full_at), 4);
    /* a stalled write is cut after the write timeout (3 s) */
    wait_int(&L.closes, 1, 15000);
    assert_int_equal(atomic_load(&L.close_code), ST_WS_CLOSE_ABNORMAL);
    wcli_close(&w);
    ts_stop(t);
}

static void test_live_shutdown(void **state)
{
    memset(&L, 0, sizeof L);
    ts_t *t = ts_start();
    wcli_t w;
    wcli_open(&w, t->port, "/live", 0);
    wait_int(&L.accepted, 1, 10000);
    uv_async_send(&t->async); /* shutdown while the WebSocket is open */
    st__ws_event_t ev;
    do ev = wcli_next(&w);
    while (ev.type == ST__WS_EV_PING);
    assert_int_equal(ev.type, ST__WS_EV_CLOSE);
    assert_int_equal(ev.code, 1001);
    st_buf_t f = ST_BUF_INIT;
    cclose(&f, 1001, "");
    cli_send(w.fd, f.data, f.len);
    ev = wcli_next(&w);
    assert_int_equal(ev.type, ST__WS_EV_NONE); /* closed */
    wait_int(&t->shutdown_done, 1, 10000);
    assert_int_equal(atomic_load(&L.close_code), 1001);
    pthread_join(t->th, NULL);
    st_http_server_destroy(t->srv);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
    wcli_close(&w);
    st_buf_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_splits),
        cmocka_unit_test(test_parser_violations),
        cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_sim_handshake_errors),
        cmocka_unit_test(test_sim_echo_fragments_ping),
        cmocka_unit_test(test_sim_server_close),
        cmocka_unit_test(test_sim_protocol_errors),
        cmocka_unit_test(test_sim_client_gone),
        cmocka_unit_test(test_live_echo_ping_close),
        cmocka_unit_test(test_live_post_from_thread),
        cmocka_unit_test(test_live_backpressure),
        cmocka_unit_test(test_live_shutdown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
