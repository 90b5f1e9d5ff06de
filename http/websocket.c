/* websocket.c: RFC 6455 on top of the HTTP/1.1 connection engine: the upgrade handshake
 * (Sec-WebSocket-Accept with OpenSSL's SHA-1), an incremental frame parser (masking, fragmentation,
 * control frames, size and UTF-8 checks), a bounded send queue written with uv_write, pings, the close
 * handshake, and a uv_async through which other threads post messages or wake the owner. server.c
 * hands a connection over once its 101 response is written. */
#include "http/http_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_MESSAGE ((size_t)1 << 20)
#define DEFAULT_MAX_QUEUE   16
#define DEFAULT_MAX_QBYTES  ((size_t)16 << 20)
#define CLOSE_TIMEOUT_NS    (5 * ST_NS_PER_SEC)
#define TICK_MAX_NS         ST_NS_PER_SEC
#define MAX_BUFS_PER_WRITE  64

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* ------------------------------------------------------------------------------------------------ */
/* handshake helpers */

int st__ws_accept_key(st_str_t key, char out[29])
{
    char buf[128];
    if (key.n > sizeof buf - sizeof ws_guid) return -EINVAL;
    memcpy(buf, key.p, key.n);
    memcpy(buf + key.n, ws_guid, sizeof ws_guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(buf, key.n + sizeof ws_guid - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
        return -EIO;
    if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28) return -EIO;
    out[28] = '\0';
    return 0;
}

static int b64_val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool st__ws_key_valid(st_str_t key)
{
    /* 16 bytes encode to 22 characters plus "==" (Go's base64.StdEncoding, which gorilla uses) */
    if (key.n != 24 || key.p[22] != '=' || key.p[23] != '=') return false;
    for (size_t i = 0; i < 22; i++)
        if (b64_val(key.p[i]) < 0) return false;
    return (b64_val(key.p[21]) & 0x0f) == 0; /* no stray bits in the last character */
}

/* True when the comma-separated header value list of name holds token (case-insensitive). */
static bool header_has_token(const st_http_req_t *r, const char *name, const char *token)
{
    size_t nl = strlen(name), tl = strlen(token);
    for (size_t h = 0; h < r->nheaders; h++) {
        const st_http_header_t *hd = &r->headers[h];
        if (hd->name.n != nl || strncasecmp(hd->name.p, name, nl) != 0) continue;
        st_str_t v = hd->value;
        size_t i = 0;
        while (i < v.n) {
            size_t j = i;
            while (j < v.n && v.p[j] != ',') j++;
            size_t a = i, b = j;
            while (a < b && (v.p[a] == ' ' || v.p[a] == '\t')) a++;
            while (b > a && (v.p[b - 1] == ' ' || v.p[b - 1] == '\t')) b--;
            if (b - a == tl && strncasecmp(v.p + a, token, tl) == 0) return true;
            i = j + 1;
        }
    }
    return false;
}

bool st_http_ws_is_upgrade(const st_http_req_t *r)
{
    return r->method == ST_HTTP_GET && header_has_token(r, "Upgrade", "websocket");
}

/* ------------------------------------------------------------------------------------------------ */
/* frame parser */

void st__ws_parser_init(st__ws_parser_t *p, bool client_frames, size_t max_message)
{
    memset(p, 0, sizeof *p);
    p->client_frames = client_frames;
    p->max_message = max_message ? max_message : DEFAULT_MAX_MESSAGE;
}

void st__ws_parser_dispose(st__ws_parser_t *p)
{
    st_buf_free(&p->msg);
}

size_t st__ws_frame_header(uint8_t *out, int opcode, uint64_t len, const uint8_t *mask)
{
    size_t n = 0;
    out[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[n++] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        out[n++] = (uint8_t)(mbit | 126);
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = (uint8_t)(mbit | 127);
        for (int i = 7; i >= 0; i--) out[n++] = (uint8_t)(len >> (8 * i));
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

static size_t fail(st__ws_parser_t *p, st__ws_event_t *ev, int code, const char *why, size_t used)
{
    p->failed = true;
    p->fail_code = code;
    p->fail_why = why;
    ev->type = ST__WS_EV_ERROR;
    ev->code = code;
    ev->why = why;
    return used;
}

static bool close_code_valid(int code)
{
    if (code >= 3000 && code <= 4999) return true;
    switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014: return true;
    default: return false;
    }
}

/* Header bytes complete: validate and set up the payload. Returns false on a violation (ev set). */
static bool header_done(st__ws_parser_t *p, st__ws_event_t *ev)
{
    const uint8_t *h = p->hdr;
    size_t i = 2;
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        i = 4;
    } else if (len == 127) {
        len = 0;
        for (int k = 0; k < 8; k++) len = len << 8 | h[2 + k];
        i = 10;
        if (len >> 63) {
            fail(p, ev, ST_WS_CLOSE_PROTOCOL, "invalid payload length", 0);
            return false;
        }
    }
    if (p->masked) memcpy(p->mask, h + i, 4);
    p->plen = len;
    p->pgot = 0;
    if (p->opcode < 8) {
        if (p->msg.len + len > p->max_message || len > p->max_message) {
            fail(p, ev, ST_WS_CLOSE_TOO_BIG, "message too big", 0);
            return false;
        }
        if (st_buf_reserve(&p->msg, (size_t)len) < 0) {
            fail(p, ev, ST_WS_CLOSE_INTERNAL, "out of memory", 0);
            return false;
        }
    }
    p->in_payload = true;
    return true;
}

/* First two header bytes in: early checks, and the total header length. Returns 0 on a violation. */
static size_t header_need(st__ws_parser_t *p, st__ws_event_t *ev)
{
    uint8_t b0 = p->hdr[0], b1 = p->hdr[1];
    p->fin = (b0 & 0x80) != 0;
    p->opcode = b0 & 0x0f;
    p->masked = (b1 & 0x80) != 0;
    uint8_t len7 = b1 & 0x7f;
    if (b0 & 0x70) return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "reserved bits set", 0);
    switch (p->opcode) {
    case OP_CONT:
        if (p->msg_opcode == 0)
            return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "continuation frame without a message", 0);
        break;
    case OP_TEXT:
    case OP_BINARY:
        if (p->msg_opcode != 0)
            return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "new message inside a fragmented message", 0);
        break;
    case OP_CLOSE:
    case OP_PING:
    case OP_PONG:
        if (!p->fin) return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "fragmented control frame", 0);
        if (len7 > 125) return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "control frame too long", 0);
        break;
    default: return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "unknown opcode", 0);
    }
    if (p->client_frames && !p->masked) return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "frame not masked", 0);
    if (!p->client_frames && p->masked) return fail(p, ev, ST_WS_CLOSE_PROTOCOL, "masked server frame", 0);
    size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (p->masked ? 4 : 0);
    return need;
}

/* A frame's payload is complete. Returns true when it produced an event. */
static bool frame_done(st__ws_parser_t *p, st__ws_event_t *ev)
{
    p->in_payload = false;
    p->hlen = 0;
    size_t n = (size_t)p->plen;
    switch (p->opcode) {
    case OP_PING:
    case OP_PONG:
        ev->type = p->opcode == OP_PING ? ST__WS_EV_PING : ST__WS_EV_PONG;
        ev->data = p->ctl;
        ev->len = n;
        return true;
    case OP_CLOSE:
        if (n == 1) {
            fail(p, ev, ST_WS_CLOSE_PROTOCOL, "invalid close frame", 0);
            return true;
        }
        ev->type = ST__WS_EV_CLOSE;
        ev->code = ST_WS_CLOSE_NO_STATUS;
        ev->data = p->ctl;
        ev->len = 0;
        if (n >= 2) {
            ev->code = p->ctl[0] << 8 | p->ctl[1];
            ev->data = p->ctl + 2;
            ev->len = n - 2;
            if (!close_code_valid(ev->code)) {
                fail(p, ev, ST_WS_CLOSE_PROTOCOL, "invalid close code", 0);
                return true;
            }
            if (!st_utf8_valid(st_str((const char *)ev->data, ev->len))) {
                fail(p, ev, ST_WS_CLOSE_INVALID_DATA, "invalid UTF-8 in close reason", 0);
                return true;
            }
        }
        return true;
    default:
        if (p->opcode != OP_CONT) p->msg_opcode = p->opcode;
        if (!p->fin) return false;
        if (p->msg_opcode == OP_TEXT && !st_utf8_valid(st_str(p->msg.data, p->msg.len))) {
            fail(p, ev, ST_WS_CLOSE_INVALID_DATA, "invalid UTF-8 in text message", 0);
            return true;
        }
        ev->type = ST__WS_EV_MESSAGE;
        ev->opcode = p->msg_opcode;
        ev->data = (const uint8_t *)(p->msg.data ? p->msg.data : "");
        ev->len = p->msg.len;
        p->msg_opcode = 0;
        p->msg_done = true;
        return true;
    }
}

size_t st__ws_parse(st__ws_parser_t *p, const void *data, size_t len, st__ws_event_t *ev)
{
    const uint8_t *d = data;
    memset(ev, 0, sizeof *ev);
    if (p->failed) {
        ev->type = ST__WS_EV_ERROR;
        ev->code = p->fail_code;
        ev->why = p->fail_why;
        return 0;
    }
    if (p->msg_done) {
        p->msg.len = 0;
        p->msg_done = false;
        if (p->msg.cap > (size_t)256 << 10) st_buf_free(&p->msg); /* do not keep a big message's buffer */
    }
    size_t off = 0;
    for (;;) {
        if (!p->in_payload) {
            while (p->hlen < 2 && off < len) p->hdr[p->hlen++] = d[off++];
            if (p->hlen < 2) return off;
            size_t need = header_need(p, ev); /* checks the first two bytes (again, when resumed) */
            if (need == 0) return off;
            while (p->hlen < need && off < len) p->hdr[p->hlen++] = d[off++];
            if (p->hlen < need) return off;
            if (!header_done(p, ev)) return off;
            if (p->plen == 0) {
                if (frame_done(p, ev)) return off;
                continue;
            }
        }
        if (off == len) return off;
        size_t take = len - off;
        if ((uint64_t)take > p->plen - p->pgot) take = (size_t)(p->plen - p->pgot);
        uint8_t *dst = p->opcode >= 8 ? p->ctl + p->pgot : (uint8_t *)p->msg.data + p->msg.len;
        if (p->masked) {
            size_t mo = (size_t)(p->pgot & 3);
            for (size_t i = 0; i < take; i++) dst[i] = d[off + i] ^ p->mask[(mo + i) & 3];
        } else {
            memcpy(dst, d + off, take);
        }
        if (p->opcode < 8) p->msg.len += take;
        p->pgot += take;
        off += take;
        if (p->pgot == p->plen && frame_done(p, ev)) return off;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* send queue */

static void frame_free(st__ws_frame_t *f)
{
    if (f == NULL) return;
    free(f->payload);
    free(f);
}

static void frames_free(st__ws_frame_t *f)
{
    while (f) {
        st__ws_frame_t *n = f->next;
        frame_free(f);
        f = n;
    }
}

/* A frame owning payload (transferred). Returns NULL on OOM (payload is then freed). */
static st__ws_frame_t *frame_new(int opcode, char *payload, size_t len)
{
    st__ws_frame_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        free(payload);
        return NULL;
    }
    f->opcode = opcode;
    f->payload = payload;
    f->len = len;
    f->data = opcode == OP_TEXT || opcode == OP_BINARY;
    f->is_close = opcode == OP_CLOSE;
    f->hlen = (uint8_t)st__ws_frame_header(f->hdr, opcode, len, NULL);
    return f;
}

static void on_written(uv_write_t *w, int status);

static void flush(st_http_ws_t *ws)
{
    st_http_conn_t *c = ws->conn;
    if (ws->writing || !ws->started || ws->ended || c->closing || ws->q == NULL) return;
    size_t n = 0;
    st__ws_frame_t *f = ws->q, *last = NULL;
    while (f && n + 2 <= MAX_BUFS_PER_WRITE) {
        n += f->len ? 2 : 1;
        last = f;
        f = f->next;
    }
    if (ws->capbufs == 0) {
        uv_buf_t *b = realloc(ws->bufs, MAX_BUFS_PER_WRITE * sizeof *b);
        if (b == NULL) {
            st__http_conn_close(c);
            return;
        }
        ws->bufs = b;
        ws->capbufs = MAX_BUFS_PER_WRITE;
    }
    ws->inflight = ws->q;
    ws->q = last->next;
    if (ws->q == NULL) ws->q_tail = NULL;
    last->next = NULL;
    n = 0;
    for (f = ws->inflight; f; f = f->next) {
        ws->bufs[n++] = uv_buf_init((char *)f->hdr, f->hlen);
        if (f->len) ws->bufs[n++] = uv_buf_init(f->payload, (unsigned)f->len);
    }
    ws->writing = true;
    ws->wr.data = ws;
    if (c->sim) {
        for (size_t i = 0; i < n; i++) st_buf_append(&c->sim_out, ws->bufs[i].base, ws->bufs[i].len);
        on_written(&ws->wr, 0);
        return;
    }
    ws->write_start_ns = st_mono_ns();
    int rc = st__http_conn_write(c, &ws->wr, ws->bufs, (unsigned)n, on_written);
    if (rc < 0) {
        ws->writing = false;
        frames_free(ws->inflight);
        ws->inflight = NULL;
        st__http_conn_close(c);
    }
}

static void on_written(uv_write_t *w, int status)
{
    st_http_ws_t *ws = w->data;
    st_http_conn_t *c = ws->conn;
    ws->writing = false;
    bool close_out = false;
    for (st__ws_frame_t *f = ws->inflight, *n; f; f = n) {
        n = f->next;
        if (f->data) {
            ws->ndata--;
            ws->data_bytes -= f->len;
        }
        if (f->opcode == OP_PING) ws->ping_queued = false;
        if (f->is_close) close_out = true;
        frame_free(f);
    }
    ws->inflight = NULL;
    if (c->closing) return;
    if (status < 0) {
        st__http_conn_close(c);
        return;
    }
    if (close_out) {
        ws->close_written = true;
        /* The server closes the TCP connection first (RFC 6455 7.1.1) once the handshake is done, or
         * at once after a protocol error. */
        if (ws->close_received || ws->fatal) {
            st__http_conn_close(c);
            return;
        }
    }
    flush(ws);
}

static int enqueue(st_http_ws_t *ws, st__ws_frame_t *f)
{
    f->next = NULL;
    if (ws->q_tail)
        ws->q_tail->next = f;
    else
        ws->q = f;
    ws->q_tail = f;
    if (f->data) {
        ws->ndata++;
        ws->data_bytes += f->len;
    }
    flush(ws);
    return 0;
}

static bool queue_full(const st_http_ws_t *ws, size_t len)
{
    if (ws->ndata >= ws->o.max_queue) return true;
    return ws->ndata > 0 && ws->data_bytes + len > ws->o.max_queue_bytes;
}

/* Queues a control frame (payload copied, at most 125 bytes). */
static void send_control(st_http_ws_t *ws, int opcode, const void *p, size_t n)
{
    char *copy = NULL;
    if (n) {
        if ((copy = malloc(n)) == NULL) {
            st__http_conn_close(ws->conn);
            return;
        }
        memcpy(copy, p, n);
    }
    st__ws_frame_t *f = frame_new(opcode, copy, n);
    if (f == NULL) {
        st__http_conn_close(ws->conn);
        return;
    }
    enqueue(ws, f);
}

static void queue_close(st_http_ws_t *ws, int code, const char *reason, size_t rlen)
{
    uint8_t b[125];
    size_t n = 0;
    if (code != ST_WS_CLOSE_NO_STATUS) {
        b[0] = (uint8_t)(code >> 8);
        b[1] = (uint8_t)code;
        n = 2;
        if (rlen > 123) {
            rlen = 123; /* never cut a UTF-8 sequence in half */
            while (rlen > 0 && ((unsigned char)reason[rlen] & 0xc0) == 0x80) rlen--;
        }
        if (rlen) memcpy(b + 2, reason, rlen);
        n += rlen;
    }
    ws->close_sent = true;
    ws->close_deadline_ns = st_mono_ns() + CLOSE_TIMEOUT_NS;
    send_control(ws, OP_CLOSE, b, n);
}

/* ------------------------------------------------------------------------------------------------ */
/* input */

void st__ws_input(st_http_conn_t *c, const char *data, size_t len)
{
    st_http_ws_t *ws = c->ws;
    if (!ws->started) return; /* cannot happen: input is held until the 101 is written */
    size_t off = 0;
    while (off < len && !c->closing && !ws->ended) {
        if (ws->close_received || ws->fatal) return; /* nothing after a close or an error counts */
        st__ws_event_t ev;
        size_t used = st__ws_parse(&ws->parser, data + off, len - off, &ev);
        off += used;
        switch (ev.type) {
        case ST__WS_EV_NONE: break;
        case ST__WS_EV_MESSAGE:
            if (ws->o.on_message && !ws->close_sent)
                ws->o.on_message(ws, ev.opcode, ev.data, ev.len, ws->arg);
            break;
        case ST__WS_EV_PING:
            if (!ws->close_sent) send_control(ws, OP_PONG, ev.data, ev.len);
            break;
        case ST__WS_EV_PONG: break;
        case ST__WS_EV_CLOSE:
            ws->close_received = true;
            ws->peer_code = ev.code;
            st_buf_reset(&ws->peer_reason);
            st_buf_append(&ws->peer_reason, ev.data, ev.len);
            if (!ws->close_sent)
                queue_close(ws, ev.code, (const char *)ev.data,
                            ev.code == ST_WS_CLOSE_NO_STATUS ? 0 : ev.len);
            else if (ws->close_written)
                st__http_conn_close(c);
            return;
        case ST__WS_EV_ERROR:
            ST_LOG_DEBUG("http", "msg=\"websocket protocol error\" code=%d why=\"%s\" remote=%s", ev.code,
                         ev.why, c->remote);
            ws->fatal = true;
            if (!ws->close_sent)
                queue_close(ws, ev.code, ev.why, strlen(ev.why));
            else if (ws->close_written)
                st__http_conn_close(c);
            return;
        }
        if (used == 0 && ev.type == ST__WS_EV_NONE) break;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* timer, async, lifecycle */

static int64_t tick_ns(const st_http_ws_t *ws)
{
    int64_t t = TICK_MAX_NS;
    if (ws->o.ping_interval_ns > 0 && ws->o.ping_interval_ns < t) t = ws->o.ping_interval_ns;
    return t;
}

static void on_tick(uv_timer_t *t)
{
    st_http_conn_t *c = t->data;
    st_http_ws_t *ws = c->ws;
    if (c->closing || ws == NULL) return;
    int64_t now = st_mono_ns();
    int64_t wt = c->srv->opts.write_timeout_ns;
    if (ws->writing && wt > 0 && now - ws->write_start_ns > wt) {
        ST_LOG_DEBUG("http", "msg=\"websocket write timeout\" remote=%s", c->remote);
        st__http_conn_close(c);
        return;
    }
    if (ws->close_sent && now >= ws->close_deadline_ns) {
        st__http_conn_close(c);
        return;
    }
    /* timers may fire a little early against the monotonic clock: allow a few ms of slack */
    if (ws->o.ping_interval_ns > 0 && !ws->close_sent && now + 20 * ST_NS_PER_MS >= ws->next_ping_ns) {
        ws->next_ping_ns = now + ws->o.ping_interval_ns;
        if (!ws->ping_queued) {
            ws->ping_queued = true;
            send_control(ws, OP_PING, NULL, 0);
        }
    }
}

/* Loop side of post/wake: moves posted messages to the send queue, then calls on_wake. */
static void process_async(st_http_ws_t *ws)
{
    pthread_mutex_lock(&ws->mu);
    st__ws_frame_t *in = ws->inbox;
    ws->inbox = ws->inbox_tail = NULL;
    ws->ninbox = 0;
    bool wake = ws->x_wake;
    ws->x_wake = false;
    pthread_mutex_unlock(&ws->mu);
    while (in) {
        st__ws_frame_t *n = in->next;
        if (ws->ended || ws->close_sent || ws->conn->closing || queue_full(ws, in->len)) {
            ws->dropped++;
            frame_free(in);
        } else {
            enqueue(ws, in);
        }
        in = n;
    }
    if (wake && !ws->ended && ws->o.on_wake) ws->o.on_wake(ws, ws->arg);
}

static void on_async(uv_async_t *a)
{
    process_async(a->data);
}

static void call_on_close(st_http_ws_t *ws)
{
    int code = ws->close_received ? ws->peer_code : ST_WS_CLOSE_ABNORMAL;
    if (ws->o.on_close) ws->o.on_close(ws, code, st_str(ws->peer_reason.data, ws->peer_reason.len), ws->arg);
}

static void on_async_closed(uv_handle_t *h)
{
    st_http_ws_t *ws = h->data;
    st_http_conn_t *c = ws->conn;
    call_on_close(ws);
    st__http_conn_unref(c);
}

void st__ws_begin(st_http_conn_t *c)
{
    st_http_ws_t *ws = c->ws;
    ws->started = true;
    int64_t now = st_mono_ns();
    ws->next_ping_ns = now + ws->o.ping_interval_ns;
    if (!c->sim) {
        uint64_t ms = (uint64_t)((tick_ns(ws) + ST_NS_PER_MS - 1) / ST_NS_PER_MS);
        c->tmode = T_NONE;
        uv_timer_start(&c->timer, on_tick, ms, ms);
    }
    if (c->srv->shutting_down) st_http_ws_close(ws, ST_WS_CLOSE_GOING_AWAY, "server shutting down");
    /* bytes that arrived right behind the upgrade request */
    if (c->pending.len > c->pending_off) {
        size_t n = c->pending.len - c->pending_off;
        char *copy = malloc(n);
        if (copy == NULL) {
            st__http_conn_close(c);
            return;
        }
        memcpy(copy, c->pending.data + c->pending_off, n);
        c->pending.len = c->pending_off = 0;
        st__ws_input(c, copy, n);
        free(copy);
    }
    st_buf_free(&c->pending);
    c->pending_off = 0;
    if (!c->closing) {
        st__http_read_start(c);
        flush(ws);
    }
}

void st__ws_conn_closing(st_http_conn_t *c)
{
    st_http_ws_t *ws = c->ws;
    if (ws->ended) return;
    ws->ended = true;
    pthread_mutex_lock(&ws->mu);
    ws->x_closed = true;
    st__ws_frame_t *in = ws->inbox;
    ws->inbox = ws->inbox_tail = NULL;
    ws->ninbox = 0;
    pthread_mutex_unlock(&ws->mu);
    frames_free(in);
    if (ws->has_async) {
        uv_close((uv_handle_t *)&ws->async, on_async_closed); /* on_close runs there, outside any call */
    } else {
        call_on_close(ws); /* simulated connection */
    }
}

void st__ws_conn_free(st_http_conn_t *c)
{
    st_http_ws_t *ws = c->ws;
    c->ws = NULL;
    frames_free(ws->q);
    frames_free(ws->inflight);
    pthread_mutex_lock(&ws->mu);
    frames_free(ws->inbox);
    pthread_mutex_unlock(&ws->mu);
    pthread_mutex_destroy(&ws->mu);
    st__ws_parser_dispose(&ws->parser);
    st_buf_free(&ws->peer_reason);
    free(ws->bufs);
    free(ws);
}

void st__ws_shutdown(st_http_conn_t *c)
{
    st_http_ws_t *ws = c->ws;
    if (ws->started && !ws->close_sent && !ws->ended)
        st_http_ws_close(ws, ST_WS_CLOSE_GOING_AWAY, "server shutting down");
    /* not started yet: st__ws_begin sees shutting_down and closes */
}

/* ------------------------------------------------------------------------------------------------ */
/* public API */

static void reject(st_http_req_t *r, int status, const char *msg, bool version_hdr)
{
    if (version_hdr) st_http_add_header(r, "Sec-WebSocket-Version", "13");
    st_http_respond_error(r, status, msg, true);
}

int st_http_ws_accept(st_http_req_t *r, const st_http_ws_opts_t *opts, void *arg, st_http_ws_t **out)
{
    static const char bad[] = "websocket: the client is not using the websocket protocol: ";
    st__http_req_t *ri = (st__http_req_t *)r;
    st_http_conn_t *c = ri->conn;
    char msg[256];
    if (c->ws != NULL) {
        st_http_respond_error(r, 500, "connection already upgraded", true);
        return ST_EBADSTATE;
    }
    if (!header_has_token(r, "Connection", "upgrade")) {
        snprintf(msg, sizeof msg, "%s'upgrade' token not found in 'Connection' header", bad);
        reject(r, 400, msg, false);
        return -EINVAL;
    }
    if (!header_has_token(r, "Upgrade", "websocket")) {
        snprintf(msg, sizeof msg, "%s'websocket' token not found in 'Upgrade' header", bad);
        reject(r, 400, msg, false);
        return -EINVAL;
    }
    if (r->method != ST_HTTP_GET) {
        snprintf(msg, sizeof msg, "%srequest method is not GET", bad);
        reject(r, 405, msg, false);
        return -EINVAL;
    }
    if (!header_has_token(r, "Sec-WebSocket-Version", "13")) {
        reject(r, 400, "websocket: unsupported version: 13 not found in 'Sec-Websocket-Version' header",
               true);
        return -EINVAL;
    }
    st_str_t key = {NULL, 0};
    if (!st_http_header(r, "Sec-WebSocket-Key", &key) || !st__ws_key_valid(key)) {
        reject(r, 400,
               "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header must be Base64 encoded "
               "value of "
               "16-byte in length",
               false);
        return -EINVAL;
    }
    if (c->srv->shutting_down) {
        st_http_respond_error(r, 503, "server shutting down", true);
        return ST_EBADSTATE;
    }
    if (c->closing || atomic_load(&c->gone)) {
        st_http_respond_error(r, 499, "client gone", true); /* dropped: nobody is listening */
        return ST_EBADSTATE;
    }
    char accept[29];
    int rc = st__ws_accept_key(key, accept);
    st_http_ws_t *ws = rc == 0 ? calloc(1, sizeof *ws) : NULL;
    if (ws == NULL) {
        st_http_respond_error(r, 500, "out of memory", true);
        return rc < 0 ? rc : -ENOMEM;
    }
    ws->o = *opts;
    if (ws->o.max_message == 0) ws->o.max_message = DEFAULT_MAX_MESSAGE;
    if (ws->o.max_queue == 0) ws->o.max_queue = DEFAULT_MAX_QUEUE;
    if (ws->o.max_queue_bytes == 0) ws->o.max_queue_bytes = DEFAULT_MAX_QBYTES;
    ws->arg = arg;
    ws->conn = c;
    pthread_mutex_init(&ws->mu, NULL);
    st__ws_parser_init(&ws->parser, true, ws->o.max_message);
    st_buf_reset(&ri->whead);
    rc = st_buf_printf(&ri->whead,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: %s\r\n",
                       accept);
    if (rc == 0 && ri->resp_hdrs.len) rc = st_buf_append(&ri->whead, ri->resp_hdrs.data, ri->resp_hdrs.len);
    if (rc == 0) rc = st_buf_puts(&ri->whead, "\r\n");
    if (rc == 0 && !c->sim) {
        rc = uv_async_init(c->srv->loop, &ws->async, on_async);
        if (rc == 0) {
            ws->async.data = ws;
            ws->has_async = true;
            st__http_conn_ref(c); /* released when the async handle is closed */
        }
    }
    if (rc < 0) {
        pthread_mutex_destroy(&ws->mu);
        st__ws_parser_dispose(&ws->parser);
        free(ws);
        st_buf_reset(&ri->whead);
        st_http_respond_error(r, 500, "cannot upgrade the connection", true);
        return rc;
    }
    c->ws = ws;
    rc = st__http_upgrade(ri);
    if (rc < 0) {
        st__ws_conn_closing(c); /* the client left in between */
        return rc;
    }
    *out = ws;
    return 0;
}

static int send_owned(st_http_ws_t *ws, int opcode, char *payload, size_t len)
{
    if (opcode != ST_WS_TEXT && opcode != ST_WS_BINARY) return -EINVAL;
    if (ws->ended || ws->close_sent || ws->conn->closing) return ST_EBADSTATE;
    if (queue_full(ws, len)) return ST_EFULL;
    st__ws_frame_t *f = frame_new(opcode, payload, len);
    if (f == NULL) return -ENOMEM;
    return enqueue(ws, f);
}

int st_http_ws_send(st_http_ws_t *ws, int opcode, const void *data, size_t len)
{
    if (opcode != ST_WS_TEXT && opcode != ST_WS_BINARY) return -EINVAL;
    if (ws->ended || ws->close_sent || ws->conn->closing) return ST_EBADSTATE;
    if (queue_full(ws, len)) return ST_EFULL;
    char *copy = NULL;
    if (len) {
        if ((copy = malloc(len)) == NULL) return -ENOMEM;
        memcpy(copy, data, len);
    }
    return send_owned(ws, opcode, copy, len);
}

int st_http_ws_send_buf(st_http_ws_t *ws, int opcode, st_buf_t *data)
{
    if (opcode != ST_WS_TEXT && opcode != ST_WS_BINARY) return -EINVAL;
    if (ws->ended || ws->close_sent || ws->conn->closing) return ST_EBADSTATE;
    if (queue_full(ws, data->len)) return ST_EFULL;
    size_t len = 0;
    char *p = st_buf_steal(data, &len);
    return send_owned(ws, opcode, p, p ? len : 0);
}

int st_http_ws_close(st_http_ws_t *ws, int code, const char *reason)
{
    if (ws->close_sent || ws->ended || ws->conn->closing) return ST_EBADSTATE;
    if (!close_code_valid(code)) code = ST_WS_CLOSE_INTERNAL;
    queue_close(ws, code, reason, reason ? strlen(reason) : 0);
    return 0;
}

size_t st_http_ws_queued(const st_http_ws_t *ws)
{
    return ws->ndata;
}

bool st_http_ws_closing(const st_http_ws_t *ws)
{
    return ws->close_sent || ws->close_received || ws->ended || ws->conn->closing;
}

uint64_t st_http_ws_dropped(const st_http_ws_t *ws)
{
    return ws->dropped;
}

int st_http_ws_post(st_http_ws_t *ws, int opcode, const void *data, size_t len)
{
    if (opcode != ST_WS_TEXT && opcode != ST_WS_BINARY) return -EINVAL;
    char *copy = NULL;
    if (len) {
        if ((copy = malloc(len)) == NULL) return -ENOMEM;
        memcpy(copy, data, len);
    }
    st__ws_frame_t *f = frame_new(opcode, copy, len);
    if (f == NULL) return -ENOMEM;
    pthread_mutex_lock(&ws->mu);
    int rc = 0;
    if (ws->x_closed)
        rc = ST_EBADSTATE;
    else if (ws->ninbox >= ws->o.max_queue)
        rc = ST_EFULL;
    if (rc == 0) {
        if (ws->inbox_tail)
            ws->inbox_tail->next = f;
        else
            ws->inbox = f;
        ws->inbox_tail = f;
        ws->ninbox++;
        if (ws->has_async) uv_async_send(&ws->async);
    }
    bool sim = !ws->has_async;
    pthread_mutex_unlock(&ws->mu);
    if (rc < 0)
        frame_free(f);
    else if (sim)
        process_async(ws);
    return rc;
}

int st_http_ws_wake(st_http_ws_t *ws)
{
    pthread_mutex_lock(&ws->mu);
    int rc = 0;
    if (ws->x_closed) {
        rc = ST_EBADSTATE;
    } else {
        ws->x_wake = true;
        if (ws->has_async) uv_async_send(&ws->async);
    }
    bool sim = !ws->has_async;
    pthread_mutex_unlock(&ws->mu);
    if (rc == 0 && sim) process_async(ws);
    return rc;
}

void st_http_ws_ref(st_http_ws_t *ws)
{
    st__http_conn_ref(ws->conn);
}

void st_http_ws_unref(st_http_ws_t *ws)
{
    st__http_conn_unref(ws->conn);
}
