/* server.c: the connection engine of the http module: listening socket, per-connection state
 * machine (parse -> dispatch -> respond -> write -> next request), keep-alive, pipelining, limits,
 * timeouts, lingering close, graceful shutdown, metrics/access log, and the simulated connections
 * used by the fuzzer. Routing is in route.c, response helpers in respond.c, forms in form.c; on a TLS
 * connection reads go through tls.c before parsing and every write through st__http_conn_write. */
#include "http/http_int.h"

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF_SIZE          (64 * 1024)
#define INLINE_BODY_MAX    (64 * 1024) /* smaller bodies are copied behind the headers: one buffer */
#define BODY_PREALLOC_MAX  (1024 * 1024)
#define PENDING_CAP_MIN    (256 * 1024) /* stop reading when this much pipelined input waits */
#define LINGER_NS          (2 * ST_NS_PER_SEC)
#define DEFAULT_MAX_HEADER ((size_t)1 << 20)

static const char continue_100[] = "HTTP/1.1 100 Continue\r\n\r\n";

static void conn_close(st_http_conn_t *c);
static void conn_process(st_http_conn_t *c);
static void conn_input(st_http_conn_t *c, const char *data, size_t len);
static void on_timer(uv_timer_t *t);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

/* ------------------------------------------------------------------------------------------------ */
/* small helpers */

static void check_shutdown(st_http_server_t *s)
{
    if (!s->shutting_down || s->shutdown_done || !s->listener_closed || s->nconns || s->nrejected) return;
    s->shutdown_done = true;
    if (s->shutdown_cb) s->shutdown_cb(s->shutdown_arg);
}

static size_t pending_left(const st_http_conn_t *c)
{
    return c->pending.len - c->pending_off;
}

static size_t pending_cap(const st_http_conn_t *c)
{
    size_t h = c->srv->opts.max_header_bytes;
    return h > PENDING_CAP_MIN ? h : PENDING_CAP_MIN;
}

static void timer_set(st_http_conn_t *c, st__http_timer_mode_t mode)
{
    const st_http_opts_t *o = &c->srv->opts;
    int64_t ns = 0;
    switch (mode) {
    case T_FIRST:
    case T_READ: ns = o->read_timeout_ns; break;
    case T_IDLE: ns = o->idle_timeout_ns; break;
    case T_WRITE: ns = o->write_timeout_ns; break;
    case T_LINGER:
        ns = LINGER_NS;
        if (o->read_timeout_ns > 0 && o->read_timeout_ns < ns) ns = o->read_timeout_ns;
        break;
    case T_NONE: break;
    }
    c->tmode = mode;
    if (c->sim || c->closing) return;
    if (mode == T_NONE || ns <= 0) {
        uv_timer_stop(&c->timer);
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)((ns + ST_NS_PER_MS - 1) / ST_NS_PER_MS), 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    st_http_conn_t *c = h->data;
    buf->base = c->srv->rbuf;
    buf->len = c->srv->rbuf_len;
}

static void read_start(st_http_conn_t *c)
{
    if (c->sim || c->reading || c->closing) return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

static void read_stop(st_http_conn_t *c)
{
    if (c->sim || !c->reading) return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

/* Appends unparsed input, compacting what was already consumed. */
static int pending_append(st_http_conn_t *c, const char *data, size_t len)
{
    if (c->pending_off > 0) {
        size_t left = pending_left(c);
        memmove(c->pending.data, c->pending.data + c->pending_off, left);
        c->pending.len = left;
        c->pending_off = 0;
    }
    return st_buf_append(&c->pending, data, len);
}

static st_http_method_t map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET: return ST_HTTP_GET;
    case HTTP_POST: return ST_HTTP_POST;
    case HTTP_PUT: return ST_HTTP_PUT;
    case HTTP_DELETE: return ST_HTTP_DELETE;
    case HTTP_HEAD: return ST_HTTP_HEAD;
    case HTTP_OPTIONS: return ST_HTTP_OPTIONS;
    default: return ST_HTTP_OTHER;
    }
}

/* ------------------------------------------------------------------------------------------------ */
/* requests */

static st__http_req_t *req_new(st_http_conn_t *c)
{
    st__http_req_t *ri = calloc(1, sizeof *ri);
    if (ri == NULL) return NULL;
    ri->conn = c;
    ri->pmethod = ST__HTTP_METHOD_UNKNOWN;
    ri->pub.method = ST_HTTP_OTHER;
    ri->pub.method_name = st_str("", 0);
    ri->pub.target = st_str("", 0);
    ri->pub.path = st_str("", 0);
    ri->pub.query = st_str("", 0);
    ri->pub.route = st_str("", 0);
    ri->pub.remote_addr = c->remote;
    ri->pub.start_ns = c->data_ns ? c->data_ns : st_mono_ns();
    return ri;
}

void st__http_req_free(st__http_req_t *ri)
{
    if (ri == NULL) return;
    st_buf_free(&ri->raw);
    free(ri->ents);
    free(ri->pub.headers);
    st_buf_free(&ri->pub.body);
    st_buf_free(&ri->path);
    st_buf_free(&ri->resp_hdrs);
    st_buf_free(&ri->whead);
    free(ri->wbody);
    free(ri);
}

static void conn_free(st_http_conn_t *c)
{
    st_http_server_t *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    st_gauge_add(s->m_conns, -1);
    if (c->ws) st__ws_conn_free(c);
    st__tls_conn_free(c);
    st__http_req_free(c->cur);
    st__http_req_free(c->ready);
    st_buf_free(&c->pending);
    st_buf_free(&c->sim_out);
    free(c);
    check_shutdown(s);
}

static void conn_unref(st_http_conn_t *c)
{
    ST_ASSERT(c->refs > 0);
    if (--c->refs == 0) conn_free(c);
}

/* Drops a request the connection no longer needs (answered and written, or answer dropped). */
static void release_req(st__http_req_t *ri)
{
    st_http_conn_t *c = ri->conn;
    if (c->active == ri) c->active = NULL;
    st__http_req_free(ri);
    conn_unref(c);
}

/* The request is now the connection's active one and counts as in flight. */
static void begin_request(st_http_conn_t *c, st__http_req_t *ri, st__http_route_t *route)
{
    ri->started = true;
    ri->route = route;
    c->active = ri;
    c->refs++;
    c->srv->nactive++;
    st_gauge_add(c->srv->m_inflight, 1);
    timer_set(c, T_NONE);
}

static void access_log(const st__http_req_t *ri, int status, int64_t dur_ns)
{
    st_buf_t path = ST_BUF_INIT;
    st__http_logfmt_quote(&path, ri->pub.path.n ? ri->pub.path : ri->pub.target, 512);
    const char *qpath = st_buf_cstr(&path);
    char dur[64];
    st_format_go_duration(dur_ns, dur);
    ST_LOG_DEBUG("http", "msg=request method=%.*s path=%s status=%d duration=%s remote=%s",
                 ri->pub.method_name.n ? (int)ri->pub.method_name.n : 1,
                 ri->pub.method_name.n ? ri->pub.method_name.p : "-", qpath ? qpath : "\"\"", status, dur,
                 ri->pub.remote_addr);
    st_buf_free(&path);
}

static void finish_request(st__http_req_t *ri, int status)
{
    st_http_server_t *s = ri->conn->srv;
    s->nactive--;
    st_gauge_add(s->m_inflight, -1);
    int64_t dur = st_mono_ns() - ri->pub.start_ns;
    if (dur < 0) dur = 0;
    st_counter_inc(st__http_route_counter(ri->route, ri->pmethod, status));
    st_histogram_observe(ri->route->duration, (double)dur / 1e9);
    if (st_log_level >= ST_LOG_DEBUG) access_log(ri, status, dur);
}

/* ------------------------------------------------------------------------------------------------ */
/* writing */

static void begin_linger(st_http_conn_t *c)
{
    if (c->sim || c->peer_eof) {
        conn_close(c);
        return;
    }
    /* Half-close and drain: closing with unread input would send a RST that can destroy the response
     * before the client reads it. */
    c->lingering = true;
    timer_set(c, T_LINGER);
    read_start(c);
    if (c->tls) st__tls_close_notify(c); /* queued before the FIN */
    if (!c->closing && uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, NULL) < 0) conn_close(c);
}

static void write_done(st__http_req_t *ri, int status)
{
    st_http_conn_t *c = ri->conn;
    c->refs++; /* c must outlive release_req below */
    release_req(ri);
    if (!c->closing) {
        if (status < 0) {
            conn_close(c);
        } else if (c->ws) {
            st__ws_begin(c); /* the 101 is out: WebSocket frames from now on */
        } else if (c->close_after) {
            begin_linger(c);
        } else {
            timer_set(c, T_IDLE);
            conn_process(c);
        }
    }
    conn_unref(c);
}

static void on_write(uv_write_t *w, int status)
{
    st__http_req_t *ri = (st__http_req_t *)((char *)w - offsetof(st__http_req_t, wr));
    write_done(ri, status);
}

static void start_write(st_http_conn_t *c, st__http_req_t *ri)
{
    uv_buf_t bufs[2];
    unsigned n = 0;
    bufs[n].base = ri->whead.data;
    bufs[n++].len = ri->whead.len;
    if (ri->wbody_len) {
        bufs[n].base = ri->wbody;
        bufs[n++].len = ri->wbody_len;
    }
    if (c->sim) {
        for (unsigned i = 0; i < n; i++) st_buf_append(&c->sim_out, bufs[i].base, bufs[i].len);
        c->sim_write_pending = true;
        return;
    }
    timer_set(c, T_WRITE);
    int rc = st__http_conn_write(c, &ri->wr, bufs, n, on_write);
    if (rc < 0) write_done(ri, rc);
}

static void respond_impl(st__http_req_t *ri, int status, const char *ct, const void *body, size_t len,
                         char *owned)
{
    st_http_conn_t *c = ri->conn;
    ST_ASSERT(ri->started && !ri->responded);
    ri->responded = true;
    if (status < 200 || status > 999) status = 500;
    finish_request(ri, status);
    if (c->closing || atomic_load(&c->gone)) {
        free(owned);
        release_req(ri);
        return;
    }
    bool ka = ri->keep_alive && !c->close_after && !c->srv->shutting_down;
    if (!ka) c->close_after = true;
    bool no_body = ri->head || status == 204 || status == 304;
    int rc =
        st__http_build_head(&ri->whead, status, ct, &ri->resp_hdrs, status != 204 && status != 304, len, ka);
    if (rc == 0 && !no_body && len > 0) {
        if (owned) {
            ri->wbody = owned;
            ri->wbody_len = len;
            owned = NULL;
        } else if (len <= INLINE_BODY_MAX) {
            rc = st_buf_append(&ri->whead, body, len);
        } else if ((ri->wbody = malloc(len)) == NULL) {
            rc = -ENOMEM;
        } else {
            memcpy(ri->wbody, body, len);
            ri->wbody_len = len;
        }
    }
    free(owned);
    if (rc < 0) {
        ST_LOG_WARN("http", "msg=\"response dropped\" status=%d err=\"%s\" remote=%s", status,
                    st_strerror(rc), c->remote);
        conn_close(c);
        release_req(ri);
        return;
    }
    start_write(c, ri);
}

void st_http_respond(st_http_req_t *r, int status, const char *content_type, const void *body, size_t len)
{
    respond_impl((st__http_req_t *)r, status, content_type, body, body ? len : 0, NULL);
}

void st_http_respond_buf(st_http_req_t *r, int status, const char *content_type, st_buf_t *body)
{
    size_t len = 0;
    char *p = body ? st_buf_steal(body, &len) : NULL;
    respond_impl((st__http_req_t *)r, status, content_type, p, p ? len : 0, p);
}

/* Answers an error for the request being parsed (or a fresh one) and closes after it. Returns -1. */
static int send_error(st_http_conn_t *c, int status, const char *msg)
{
    st__http_req_t *ri = c->cur ? c->cur : req_new(c);
    c->cur = NULL;
    if (ri == NULL) {
        conn_close(c);
        return -1;
    }
    ri->keep_alive = false;
    c->close_after = true;
    begin_request(c, ri, &c->srv->invalid);
    st_http_respond_error(&ri->pub, status, msg, true);
    return -1;
}

static void send_continue(st_http_conn_t *c)
{
    if (c->sim) {
        st_buf_append(&c->sim_out, continue_100, sizeof continue_100 - 1);
        return;
    }
    /* Static bytes and a write request inside the connection: nothing to free afterwards, and libuv
     * completes writes in order, so it is done before the response that follows it. */
    uv_buf_t b = uv_buf_init((char *)continue_100, sizeof continue_100 - 1);
    if (st__http_conn_write(c, &c->cont_wr, &b, 1, NULL) < 0) conn_close(c);
}

/* ------------------------------------------------------------------------------------------------ */
/* parsing */

static int fail(st_http_conn_t *c, int status, const char *msg)
{
    c->err_status = status;
    c->err_msg = msg;
    return -1;
}

static int raw_append(st_http_conn_t *c, st__http_req_t *ri, const char *at, size_t len)
{
    if (len > c->srv->opts.max_header_bytes - ri->raw.len)
        return fail(c, 431, "request header fields too large");
    if (st_buf_append(&ri->raw, at, len) < 0) return fail(c, 500, "out of memory");
    return 0;
}

/* Trailer fields of a chunked body are not kept, but count against the header limit. */
static int count_trailer(st_http_conn_t *c, size_t len)
{
    c->trailer_bytes += len;
    if (c->trailer_bytes > c->srv->opts.max_header_bytes)
        return fail(c, 431, "request header fields too large");
    return 0;
}

static int cb_message_begin(http_parser *p)
{
    st_http_conn_t *c = p->data;
    st__http_req_free(c->cur); /* never set here; defensive */
    c->cur = req_new(c);
    if (c->cur == NULL) return fail(c, 500, "out of memory");
    c->trailer_bytes = 0;
    if (c->tmode != T_READ) timer_set(c, T_READ);
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    st_http_conn_t *c = p->data;
    st__http_req_t *ri = c->cur;
    if (ri->pmethod == ST__HTTP_METHOD_UNKNOWN) {
        ri->pmethod = p->method;
        ri->pub.method = map_method(p->method);
        ri->pub.method_name = st_cstr(http_method_str((enum http_method)p->method));
    }
    if (raw_append(c, ri, at, len) < 0) return -1;
    ri->pub.target.n += len;
    return 0;
}

static int cb_header_field(http_parser *p, const char *at, size_t len)
{
    st_http_conn_t *c = p->data;
    st__http_req_t *ri = c->cur;
    if (!c->in_headers) return count_trailer(c, len);
    if (ri->nents == 0 || ri->in_value) {
        if (ri->nents == ri->capents) {
            size_t cap = ri->capents ? ri->capents * 2 : 16;
            struct hdr_ent *e = realloc(ri->ents, cap * sizeof *e);
            if (e == NULL) return fail(c, 500, "out of memory");
            ri->ents = e;
            ri->capents = cap;
        }
        ri->ents[ri->nents++] = (struct hdr_ent){ri->raw.len, 0, ri->raw.len, 0};
        ri->in_value = false;
    }
    if (raw_append(c, ri, at, len) < 0) return -1;
    ri->ents[ri->nents - 1].name_len += len;
    return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t len)
{
    st_http_conn_t *c = p->data;
    st__http_req_t *ri = c->cur;
    if (!c->in_headers) return count_trailer(c, len);
    if (ri->nents == 0) return fail(c, 400, "malformed header");
    struct hdr_ent *e = &ri->ents[ri->nents - 1];
    if (!ri->in_value) {
        ri->in_value = true;
        e->val_off = ri->raw.len;
        e->val_len = 0;
    }
    if (raw_append(c, ri, at, len) < 0) return -1;
    e->val_len += len;
    return 0;
}

static int cb_headers_complete(http_parser *p)
{
    st_http_conn_t *c = p->data;
    /* Stop here so the caller knows the exact header size and can check limits and Expect before any
     * body byte is read. */
    c->hdr_paused = true;
    http_parser_pause(p, 1);
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    st_http_conn_t *c = p->data;
    st__http_req_t *ri = c->cur;
    if (len > c->srv->opts.max_body_bytes - ri->pub.body.len) return fail(c, 413, "request body too large");
    if (st_buf_append(&ri->pub.body, at, len) < 0) return fail(c, 500, "out of memory");
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    st_http_conn_t *c = p->data;
    /* A NUL after the body (not counted) spares handlers a copy when they want a C string. */
    if (c->cur->pub.body.len) st_buf_cstr(&c->cur->pub.body);
    c->ready = c->cur;
    c->cur = NULL;
    c->in_headers = true;
    c->hdr_bytes = 0;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = cb_message_begin,
    .on_url = cb_url,
    .on_header_field = cb_header_field,
    .on_header_value = cb_header_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
};

static st_str_t trim(st_str_t s)
{
    while (s.n && (s.p[0] == ' ' || s.p[0] == '\t')) s.p++, s.n--;
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t')) s.n--;
    return s;
}

/* Splits a request target into the path (origin-form, absolute-form or "*") and the query. */
static void split_target(st_str_t t, st_str_t *path, st_str_t *query)
{
    size_t start = 0, n = t.n;
    if (n > 0 && t.p[0] != '/') {
        const char *sep = memmem(t.p, n, "://", 3);
        if (sep) {
            start = (size_t)(sep - t.p) + 3;
            while (start < n && t.p[start] != '/' && t.p[start] != '?' && t.p[start] != '#') start++;
        }
    }
    size_t q = start;
    while (q < n && t.p[q] != '?' && t.p[q] != '#') q++;
    *path = st_str(t.p + start, q - start);
    *query = st_str("", 0);
    if (q < n && t.p[q] == '?') {
        size_t e = q + 1;
        while (e < n && t.p[e] != '#') e++;
        *query = st_str(t.p + q + 1, e - q - 1);
    }
}

/* Runs once the request line and headers are in: finalizes the request and applies the header-time
 * checks. avail is how many body bytes were already received. Returns 0, or -1 after answering. */
static int headers_done(st_http_conn_t *c, size_t avail)
{
    st__http_req_t *ri = c->cur;
    http_parser *p = &c->parser;
    const st_http_opts_t *o = &c->srv->opts;
    c->in_headers = false;
    if (c->hdr_bytes > o->max_header_bytes) return send_error(c, 431, "request header fields too large");

    ri->pmethod = p->method;
    ri->pub.method = map_method(p->method);
    ri->pub.method_name = st_cstr(http_method_str((enum http_method)p->method));
    ri->head = p->method == HTTP_HEAD;
    ri->keep_alive = http_should_keep_alive(p) && !p->upgrade;
    ri->pub.target.p = ri->raw.data; /* raw no longer grows: trailers are not stored */
    if (ri->nents) {
        ri->pub.headers = malloc(ri->nents * sizeof *ri->pub.headers);
        if (ri->pub.headers == NULL) return send_error(c, 500, "out of memory");
        for (size_t i = 0; i < ri->nents; i++) {
            const struct hdr_ent *e = &ri->ents[i];
            ri->pub.headers[i].name = st_str(ri->raw.data + e->name_off, e->name_len);
            ri->pub.headers[i].value = trim(st_str(ri->raw.data + e->val_off, e->val_len));
        }
        ri->pub.nheaders = ri->nents;
    }

    st_str_t rawpath;
    split_target(ri->pub.target, &rawpath, &ri->pub.query);
    if (rawpath.n == 0) rawpath = st_str("/", 1);
    int rc = st_url_decode(rawpath, false, &ri->path);
    if (rc == ST_EPARSE) return send_error(c, 400, "invalid URL escape");
    if (rc < 0 || st_buf_cstr(&ri->path) == NULL) return send_error(c, 500, "out of memory");
    ri->pub.path = st_str(ri->path.data, ri->path.len);

    bool chunked = (p->flags & F_CHUNKED) != 0;
    uint64_t cl = p->content_length; /* ULLONG_MAX when absent */
    bool has_cl = !chunked && cl != UINT64_MAX;
    bool has_body = chunked || (has_cl && cl > 0);
    if (has_cl && cl > o->max_body_bytes) return send_error(c, 413, "request body too large");

    st_str_t ex;
    if (p->http_major == 1 && p->http_minor >= 1 && st_http_header(&ri->pub, "Expect", &ex)) {
        if (!(ex.n == 12 && strncasecmp(ex.p, "100-continue", 12) == 0))
            return send_error(c, 417, "unsupported Expect header");
        /* A client that did not wait for the 100 already sent body bytes: no interim answer then. */
        if (has_body && avail == 0) send_continue(c);
    }
    if (has_cl && cl > 0)
        st_buf_reserve(&ri->pub.body, cl < BODY_PREALLOC_MAX ? (size_t)cl : BODY_PREALLOC_MAX);
    return 0;
}

static void parse_error(st_http_conn_t *c, enum http_errno e)
{
    int status = c->err_status;
    const char *msg = c->err_msg;
    char buf[160];
    if (status == 0) {
        if (e == HPE_HEADER_OVERFLOW) {
            status = 431;
            msg = "request header fields too large";
        } else {
            status = 400;
            snprintf(buf, sizeof buf, "malformed HTTP request: %s", http_errno_description(e));
            msg = buf;
        }
    }
    send_error(c, status, msg);
}

/* Parses up to one request from data. Stops when a request is complete (c->ready), after an error
 * was answered, or when data is used up. Returns the bytes consumed. */
static size_t parse_some(st_http_conn_t *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len && c->ready == NULL && c->active == NULL && !c->closing) {
        bool in_hdr = c->in_headers;
        c->hdr_paused = false;
        c->err_status = 0;
        size_t n = http_parser_execute(&c->parser, &parser_settings, data + off, len - off);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        off += n;
        if (in_hdr) c->hdr_bytes += n;
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->hdr_paused) {
                /* Paused on the final LF, which the parser reads again on resume. */
                c->hdr_bytes += 1;
                if (headers_done(c, len - off - 1) < 0) break;
            }
            continue;
        }
        if (e != HPE_OK) {
            parse_error(c, e);
            break;
        }
        if (c->in_headers && c->cur && c->hdr_bytes > c->srv->opts.max_header_bytes)
            send_error(c, 431, "request header fields too large");
        break;
    }
    return off;
}

static void dispatch(st_http_conn_t *c)
{
    st__http_req_t *ri = c->ready;
    c->ready = NULL;
    st_http_server_t *s = c->srv;
    size_t off = 0, len = 0;
    bool hp = false;
    unsigned allowed = 0;
    st__http_route_t *pm = NULL;
    st__http_route_t *rt =
        st__http_route_find(s, ri->pub.path, ri->pub.method, &off, &len, &hp, &allowed, &pm);
    if (rt) {
        begin_request(c, ri, rt);
        ri->param_off = off;
        ri->param_len = len;
        ri->has_param = hp;
        ri->pub.route = st_str(rt->pattern, rt->npattern);
        rt->fn(&ri->pub, rt->arg);
        return;
    }
    if (allowed) {
        begin_request(c, ri, pm);
        ri->pub.route = st_str(pm->pattern, pm->npattern);
        static const struct {
            unsigned bit;
            const char *name;
        } names[] = {{ST_HTTP_GET, "GET"},       {ST_HTTP_POST, "POST"}, {ST_HTTP_PUT, "PUT"},
                     {ST_HTTP_DELETE, "DELETE"}, {ST_HTTP_HEAD, "HEAD"}, {ST_HTTP_OPTIONS, "OPTIONS"}};
        char allow[64] = "";
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (!(allowed & names[i].bit)) continue;
            if (allow[0]) strcat(allow, ", ");
            strcat(allow, names[i].name);
        }
        if (allow[0]) st_http_add_header(&ri->pub, "Allow", allow);
        st_http_respond(&ri->pub, 405, NULL, NULL, 0);
        return;
    }
    begin_request(c, ri, &s->notfound);
    static const char nf[] = "404 page not found\n";
    st_http_add_header(&ri->pub, "X-Content-Type-Options", "nosniff");
    st_http_respond(&ri->pub, 404, "text/plain; charset=utf-8", nf, sizeof nf - 1);
}

/* Parses and dispatches buffered input while the connection is free to take a request. */
static void conn_process(st_http_conn_t *c)
{
    while (!c->closing && c->active == NULL && !c->close_after && pending_left(c) > 0) {
        size_t used = parse_some(c, c->pending.data + c->pending_off, pending_left(c));
        c->pending_off += used;
        if (c->ready)
            dispatch(c);
        else if (used == 0)
            break;
    }
    if (c->closing) return;
    if (pending_left(c) == 0) {
        if (c->pending.cap > PENDING_CAP_MIN) st_buf_free(&c->pending);
        c->pending.len = 0;
        c->pending_off = 0;
    }
    if (!c->reading && pending_left(c) <= pending_cap(c)) read_start(c);
}

static void conn_input(st_http_conn_t *c, const char *data, size_t len)
{
    if (c->lingering || c->closing) return; /* draining before close */
    if (c->ws && c->active == NULL) {
        st__ws_input(c, data, len);
        return;
    }
    if (c->active || c->close_after || pending_left(c) > 0) {
        /* Busy with a request (or behind queued input): keep the bytes for later, in order. */
        if (pending_append(c, data, len) < 0) {
            conn_close(c);
            return;
        }
        if (c->active == NULL)
            conn_process(c);
        else if (pending_left(c) > pending_cap(c))
            read_stop(c);
        return;
    }
    size_t used = parse_some(c, data, len);
    if (c->ready == NULL) return; /* all consumed, or an error was answered */
    if (used < len && pending_append(c, data + used, len - used) < 0) {
        conn_close(c);
        return;
    }
    dispatch(c);
}

/* ------------------------------------------------------------------------------------------------ */
/* connection lifecycle */

static void on_handle_close(uv_handle_t *h)
{
    conn_unref(h->data);
}

static void conn_close(st_http_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    atomic_store(&c->gone, true);
    c->reading = false;
    if (c->ws) st__ws_conn_closing(c);
    if (c->sim) return;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_close);
    uv_close((uv_handle_t *)&c->tcp, on_handle_close);
}

static void on_timer(uv_timer_t *t)
{
    st_http_conn_t *c = t->data;
    if (c->tmode == T_READ && c->cur && c->active == NULL) {
        send_error(c, 408, "request timeout");
        return;
    }
    if (c->tmode == T_FIRST && c->tls) st__tls_timeout(c); /* the handshake shares this deadline */
    conn_close(c); /* idle, first byte never came, write stalled, or linger over */
}

static void conn_eof(st_http_conn_t *c)
{
    if (c->active && c->active->responded && !c->lingering) {
        /* Half-close after the answer was queued: let it drain, then close. */
        c->peer_eof = true;
        c->close_after = true;
        read_stop(c);
        return;
    }
    conn_close(c); /* marks a request still in a handler as gone; its answer will be dropped */
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    st_http_conn_t *c = st->data;
    if (nread == 0) return;
    if (nread < 0) {
        if (nread == UV_EOF)
            conn_eof(c);
        else
            conn_close(c);
        return;
    }
    c->data_ns = st_mono_ns();
    if (c->tls && !c->lingering && !c->closing)
        st__tls_input(c, buf->base, (size_t)nread); /* decrypts, then conn_input */
    else
        conn_input(c, buf->base, (size_t)nread);
}

static void conn_init(st_http_conn_t *c, st_http_server_t *s)
{
    c->srv = s;
    c->refs = 2;
    c->in_headers = true;
    atomic_init(&c->gone, false);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    st_gauge_add(s->m_conns, 1);
}

static void on_reject_close(uv_handle_t *h)
{
    st_http_server_t *s = h->data;
    free(h);
    s->nrejected--;
    check_shutdown(s);
}

static void reject(st_http_server_t *s, uv_stream_t *l)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (t == NULL) return;
    uv_tcp_init(s->loop, t);
    t->data = s;
    uv_accept(l, (uv_stream_t *)t);
    s->nrejected++;
    uv_close((uv_handle_t *)t, on_reject_close);
}

static void format_peer(st_http_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    snprintf(c->remote, sizeof c->remote, "unknown");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(c->remote, sizeof c->remote, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(c->remote, sizeof c->remote, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    st_http_server_t *s = l->data;
    if (status < 0) {
        ST_LOG_WARN("http", "msg=\"accept failed\" err=\"%s\"", uv_strerror(status));
        return;
    }
    if (s->shutting_down) return;
    if (s->opts.max_connections > 0 && s->nconns >= (size_t)s->opts.max_connections) {
        reject(s, l);
        return;
    }
    st_http_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        reject(s, l);
        return;
    }
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    conn_init(c, s);
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    format_peer(c);
    if (s->tls && st__tls_conn_new(c) < 0) {
        conn_close(c);
        return;
    }
    timer_set(c, T_FIRST);
    read_start(c);
}

/* ------------------------------------------------------------------------------------------------ */
/* [ext] internals for websocket.c and tls.c */

void st__http_conn_close(st_http_conn_t *c) { conn_close(c); }
void st__http_conn_ref(st_http_conn_t *c) { c->refs++; }
void st__http_conn_unref(st_http_conn_t *c) { conn_unref(c); }
void st__http_read_start(st_http_conn_t *c) { read_start(c); }
void st__http_conn_input(st_http_conn_t *c, const char *data, size_t len) { conn_input(c, data, len); }
void st__http_conn_eof(st_http_conn_t *c) { conn_eof(c); }

void st__http_conn_linger(st_http_conn_t *c)
{
    if (c->closing || c->lingering) return;
    c->close_after = true;
    if (c->active)
        conn_close(c); /* a handler owns a request: its answer is dropped */
    else
        begin_linger(c);
}

int st__http_conn_write(st_http_conn_t *c, uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb)
{
    if (c->tls) return st__tls_write(c, req, bufs, n, cb);
    return uv_write(req, (uv_stream_t *)&c->tcp, bufs, n, cb);
}

int st__http_upgrade(st__http_req_t *ri)
{
    st_http_conn_t *c = ri->conn;
    ST_ASSERT(ri->started && !ri->responded);
    ri->responded = true;
    finish_request(ri, 101);
    if (c->closing || atomic_load(&c->gone)) {
        release_req(ri);
        return ST_EBADSTATE;
    }
    c->close_after = false;
    start_write(c, ri);
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* server */

static int server_alloc(const st_http_opts_t *opts, st_http_server_t **out)
{
    st_http_server_t *s = calloc(1, sizeof *s);
    if (s == NULL) return -ENOMEM;
    s->opts = *opts;
    s->opts.tls = NULL; /* borrowed by the caller; the server keeps s->tls (a reference) */
    if (s->opts.max_header_bytes == 0) s->opts.max_header_bytes = DEFAULT_MAX_HEADER;
    if (s->opts.max_body_bytes == 0) s->opts.max_body_bytes = SIZE_MAX;
    if (s->opts.max_header_bytes > UINT32_MAX / 2) s->opts.max_header_bytes = UINT32_MAX / 2;
    s->rbuf_len = RBUF_SIZE;
    s->rbuf = malloc(s->rbuf_len);
    int rc = s->rbuf ? 0 : -ENOMEM;
    if (rc == 0) rc = st__http_route_init(&s->notfound, 0, "notfound", NULL, NULL);
    if (rc == 0) rc = st__http_route_init(&s->invalid, 0, "invalid", NULL, NULL);
    if (rc < 0) {
        st__http_route_dispose(&s->notfound);
        free(s->rbuf);
        free(s);
        return rc;
    }
    s->m_inflight = st_gauge("strata_http_inflight_requests", "HTTP requests being handled.", NULL);
    s->m_conns = st_gauge("strata_http_connections", "Open HTTP connections.", NULL);

    /* http-parser's own cap (process-global) must not undercut ours; ours is exact. */
    static _Atomic uint32_t parser_cap = 80 * 1024;
    uint32_t want = (uint32_t)s->opts.max_header_bytes + 1024;
    uint32_t cur = atomic_load(&parser_cap);
    while (want > cur) {
        if (atomic_compare_exchange_weak(&parser_cap, &cur, want)) {
            http_parser_set_max_header_size(want);
            break;
        }
    }
    *out = s;
    return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    if (port < 0 || port > 65535) return -EINVAL;
    if (host == NULL || host[0] == '\0') host = "0.0.0.0";
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc != 0) return rc == EAI_MEMORY ? -ENOMEM : -EADDRNOTAVAIL;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void on_listener_close(uv_handle_t *h)
{
    st_http_server_t *s = h->data;
    s->listener_closed = true;
    check_shutdown(s);
}

static void on_failed_listener_close(uv_handle_t *h)
{
    st_http_server_destroy(h->data);
}

int st_http_server_create(uv_loop_t *loop, const st_http_opts_t *opts, st_http_server_t **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int rc = resolve(opts->host, opts->port, &ss, &sl);
    if (rc < 0) return rc;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
    /* Bind and listen with plain syscalls so that their errors come back here, before any handle
     * exists on the loop. */
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 511) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    int port = opts->port;
    if (getsockname(fd, (struct sockaddr *)&bound, &bl) == 0)
        port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    st_http_server_t *s = NULL;
    rc = server_alloc(opts, &s);
    if (rc == 0 && opts->tls) rc = st__tls_server_init(s, opts->tls);
    if (rc == 0) rc = uv_tcp_init(loop, &s->listener);
    if (rc < 0) {
        if (s) {
            s->listener_closed = true;
            st_http_server_destroy(s);
        }
        close(fd);
        return rc;
    }
    s->loop = loop;
    s->port = port;
    s->listener.data = s;
    rc = uv_tcp_open(&s->listener, fd);
    if (rc < 0) close(fd);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc < 0) {
        /* Rare (the socket is already listening); the handle is released once the loop runs. */
        s->listener_closed = true;
        uv_close((uv_handle_t *)&s->listener, on_failed_listener_close);
        return rc;
    }
    *out = s;
    return 0;
}

int st_http_port(const st_http_server_t *s)
{
    return s->port;
}

size_t st_http_active_requests(const st_http_server_t *s)
{
    return s->nactive;
}

size_t st_http_connections(const st_http_server_t *s)
{
    return s->nconns;
}

void st_http_server_shutdown(st_http_server_t *s, void (*cb)(void *arg), void *arg)
{
    if (s->shutting_down) return;
    s->shutting_down = true;
    s->shutdown_cb = cb;
    s->shutdown_arg = arg;
    if (!s->listener_closed) uv_close((uv_handle_t *)&s->listener, on_listener_close);
    for (st_http_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing || c->lingering) continue;
        if (c->ws) {
            st__ws_shutdown(c); /* close handshake (1001), bounded by its own timeout */
            continue;
        }
        if (c->active)
            c->close_after = true; /* after the current answer */
        else if (c->cur == NULL)
            conn_close(c); /* idle */
        /* else mid-request: it finishes (answered with Connection: close) or times out */
    }
    check_shutdown(s);
}

void st_http_server_destroy(st_http_server_t *s)
{
    if (s == NULL) return;
    ST_ASSERT(s->nconns == 0 && s->nrejected == 0 && s->listener_closed);
    for (size_t i = 0; i < s->nroutes; i++) {
        st__http_route_dispose(s->routes[i]);
        free(s->routes[i]);
    }
    free(s->routes);
    st__http_route_dispose(&s->notfound);
    st__http_route_dispose(&s->invalid);
    st__tls_server_dispose(s);
    free(s->rbuf);
    free(s);
}

bool st_http_client_gone(const st_http_req_t *r)
{
    const st__http_req_t *ri = (const st__http_req_t *)r;
    return atomic_load(&ri->conn->gone);
}

static void work_cb(uv_work_t *w)
{
    st__http_req_t *ri = w->data;
    ri->work_fn(&ri->pub, ri->work_arg);
}

static void after_work_cb(uv_work_t *w, int status)
{
    st__http_req_t *ri = w->data;
    ri->done_fn(&ri->pub, ri->work_arg);
}

int st_http_queue_work(st_http_req_t *r, void (*work)(st_http_req_t *, void *),
                       void (*done)(st_http_req_t *, void *), void *arg)
{
    st__http_req_t *ri = (st__http_req_t *)r;
    if (work == NULL || done == NULL || ri->responded) return -EINVAL;
    st_http_server_t *s = ri->conn->srv;
    if (s->loop == NULL) return ST_EBADSTATE; /* simulated server: no loop */
    ri->work.data = ri;
    ri->work_fn = work;
    ri->done_fn = done;
    ri->work_arg = arg;
    return uv_queue_work(s->loop, &ri->work, work_cb, after_work_cb);
}

/* ------------------------------------------------------------------------------------------------ */
/* test seam: simulated connections */

int st__http_sim_server_create(const st_http_opts_t *opts, st_http_server_t **out)
{
    int rc = server_alloc(opts, out);
    if (rc == 0) (*out)->listener_closed = true;
    return rc;
}

st_http_conn_t *st__http_sim_open(st_http_server_t *s)
{
    st_http_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->sim = true;
    snprintf(c->remote, sizeof c->remote, "sim");
    conn_init(c, s);
    timer_set(c, T_FIRST);
    return c;
}

static void sim_pump(st_http_conn_t *c)
{
    while (c->sim_write_pending && c->active) {
        c->sim_write_pending = false;
        write_done(c->active, 0);
    }
}

void st__http_sim_feed(st_http_conn_t *c, const void *data, size_t len)
{
    if (len == 0) return;
    c->data_ns = st_mono_ns();
    c->refs++;
    conn_input(c, data, len);
    sim_pump(c);
    conn_unref(c);
}

void st__http_sim_flush(st_http_conn_t *c)
{
    c->refs++;
    sim_pump(c);
    conn_unref(c);
}

st_str_t st__http_sim_output(const st_http_conn_t *c)
{
    return st_str(c->sim_out.data, c->sim_out.len);
}

bool st__http_sim_closed(const st_http_conn_t *c)
{
    return c->closing;
}

void st__http_sim_close(st_http_conn_t *c)
{
    c->refs++;
    if (c->sim_write_pending && c->active) {
        c->sim_write_pending = false;
        write_done(c->active, UV_ECANCELED);
    }
    conn_close(c);
    conn_unref(c);
    conn_unref(c); /* the two "handles" */
    conn_unref(c);
}
