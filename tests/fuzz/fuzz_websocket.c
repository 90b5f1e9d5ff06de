/* fuzz_websocket.c: libFuzzer target for the WebSocket frame parser and connection logic. The first
 * input byte picks a mode and a read size. Parser mode: the rest is parsed as client frames (and as
 * server frames) whole and in pieces, and both runs must report the same events. Connection mode:
 * the rest follows an upgrade request into a simulated connection whose handler echoes messages and
 * sometimes closes; everything the server writes after its 101 must decode as well-formed server
 * frames, with nothing after a close frame. */
#include "common/err.h"
#include "http/http_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "fuzz_websocket: check failed at line %d: %s\n", __LINE__, #x);                  \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* Parses data in pieces of step bytes; returns a hash of the event sequence. */
static uint64_t trace(const uint8_t *data, size_t n, size_t step, bool server, size_t *nev)
{
    st__ws_parser_t p;
    st__ws_parser_init(&p, server, 300);
    uint64_t h = 0xcbf29ce484222325ULL;
    *nev = 0;
    size_t off = 0;
    bool stop = false;
    while (off < n && !stop) {
        size_t chunk = n - off < step ? n - off : step;
        size_t used = 0;
        while (used < chunk) {
            st__ws_event_t ev;
            size_t u = st__ws_parse(&p, data + off + used, chunk - used, &ev);
            FCHECK(u <= chunk - used);
            used += u;
            if (ev.type != ST__WS_EV_NONE) {
                (*nev)++;
                int t[3] = {ev.type, ev.opcode, ev.code};
                h = fnv(h, t, sizeof t);
                h = fnv(h, ev.data, ev.len);
                if (ev.type == ST__WS_EV_MESSAGE) FCHECK(ev.len <= 300);
                if (ev.type == ST__WS_EV_PING || ev.type == ST__WS_EV_PONG) FCHECK(ev.len <= 125);
            }
            if (ev.type == ST__WS_EV_ERROR) {
                FCHECK(ev.code == 1002 || ev.code == 1007 || ev.code == 1009);
                stop = true;
                break;
            }
            if (u == 0 && ev.type == ST__WS_EV_NONE) break;
        }
        off += chunk;
    }
    st__ws_parser_dispose(&p);
    return h;
}

static st_http_ws_t *cur;
static int messages, closes;

static void on_message(st_http_ws_t *ws, int opcode, const void *data, size_t len, void *arg)
{
    messages++;
    int rc = st_http_ws_send(ws, opcode, data, len);
    FCHECK(rc == 0 || rc == ST_EFULL);
    if (len > 0 && ((const uint8_t *)data)[0] == 'Q') FCHECK(st_http_ws_close(ws, 1011, "quit") == 0);
    if (len > 1 && ((const uint8_t *)data)[0] == 'P')
        FCHECK(st_http_ws_post(ws, ST_WS_TEXT, "p", 1) != -EINVAL);
}

static void on_close(st_http_ws_t *ws, int code, st_str_t reason, void *arg)
{
    closes++;
    FCHECK(code == ST_WS_CLOSE_ABNORMAL || code == ST_WS_CLOSE_NO_STATUS || (code >= 1000 && code <= 4999));
}

static void h_ws(st_http_req_t *r, void *arg)
{
    st_http_ws_opts_t o = {
        .on_message = on_message, .on_close = on_close, .max_message = 300, .max_queue = 3};
    if (st_http_ws_accept(r, &o, NULL, &cur) < 0) cur = NULL;
}

static const char upgrade[] =
    "GET /ws HTTP/1.1\r\nHost: f\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

static void connection(const uint8_t *data, size_t n, size_t step)
{
    static st_http_server_t *srv;
    if (srv == NULL) {
        st_http_opts_t o = {.max_header_bytes = 2048, .max_body_bytes = 2048};
        FCHECK(st__http_sim_server_create(&o, &srv) == 0);
        FCHECK(st_http_route(srv, ST_HTTP_GET, "/ws", h_ws, NULL) == 0);
    }
    messages = closes = 0;
    cur = NULL;
    st_http_conn_t *c = st__http_sim_open(srv);
    FCHECK(c != NULL);
    st__http_sim_feed(c, upgrade, sizeof upgrade - 1);
    FCHECK(cur != NULL);
    for (size_t off = 0; off < n && !st__http_sim_closed(c); off += step)
        st__http_sim_feed(c, data + off, n - off < step ? n - off : step);
    st_str_t out = st__http_sim_output(c);
    const char *e = memmem(out.p, out.n, "\r\n\r\n", 4);
    FCHECK(e != NULL && memcmp(out.p, "HTTP/1.1 101 ", 13) == 0);
    e += 4;
    size_t left = out.n - (size_t)(e - out.p);
    st__ws_parser_t p;
    st__ws_parser_init(&p, false, 1 << 20);
    size_t off = 0;
    bool closed = false;
    while (off < left) {
        st__ws_event_t ev;
        off += st__ws_parse(&p, e + off, left - off, &ev);
        FCHECK(ev.type != ST__WS_EV_ERROR);
        FCHECK(ev.type != ST__WS_EV_NONE || off == left); /* no torn frame at the end */
        if (ev.type == ST__WS_EV_NONE) break;
        FCHECK(!closed); /* nothing after the close frame */
        if (ev.type == ST__WS_EV_CLOSE) closed = true;
    }
    st__ws_parser_dispose(&p);
    FCHECK(closes == (st__http_sim_closed(c) ? 1 : 0));
    st__http_sim_close(c);
    FCHECK(closes == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    size_t step = (size_t)(mode >> 2) % 17 + 1;
    if ((mode & 3) == 0) {
        for (int server = 0; server <= 1; server++) {
            size_t n1, n2;
            uint64_t whole = trace(data, size, size ? size : 1, server, &n1);
            uint64_t split = trace(data, size, step, server, &n2);
            FCHECK(whole == split && n1 == n2);
        }
    } else {
        connection(data, size, (mode & 3) == 1 ? size + 1 : step);
    }
    return 0;
}
