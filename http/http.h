/* http.h: the HTTP/1.1 transport: a libuv TCP server, request parsing (Node's http-parser from
 * Debian), routing, limits/timeouts and response writing. It knows nothing about logs.
 *
 * Threading: everything here runs on the loop thread, except the work callback given to
 * st_http_queue_work, which runs on libuv's thread pool. A handler must eventually call exactly one
 * st_http_respond* for its request (possibly later, from another loop callback). Requests on one
 * connection are answered in order (pipelined requests wait). Keep-alive, chunked request bodies,
 * Expect: 100-continue, header/body size limits (431/413), and read/idle/write timeouts (408 or close)
 * are handled here.
 *
 * Additions to the original contract (all backwards compatible) are marked "[ext]". */
#ifndef ST_HTTP_HTTP_H
#define ST_HTTP_HTTP_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct st_http_server st_http_server_t;
typedef struct st_http_req st_http_req_t;

typedef enum {
    ST_HTTP_GET = 1 << 0,
    ST_HTTP_POST = 1 << 1,
    ST_HTTP_PUT = 1 << 2,
    ST_HTTP_DELETE = 1 << 3,
    ST_HTTP_HEAD = 1 << 4,
    ST_HTTP_OPTIONS = 1 << 5,
    ST_HTTP_OTHER = 1 << 6
} st_http_method_t;

typedef struct {
    st_str_t name;  /* as received */
    st_str_t value; /* leading/trailing whitespace trimmed */
} st_http_header_t;

/* A parsed request. Everything is owned by the server and valid until the response is sent. */
struct st_http_req {
    st_http_method_t method;
    st_str_t method_name; /* "GET", ... */
    st_str_t target;      /* raw request target, e.g. "/loki/api/v1/query?query=..." */
    st_str_t path;        /* target up to '?', percent-decoded */
    st_str_t query;       /* raw text after '?', not decoded ("" if none) */
    st_http_header_t *headers;
    size_t nheaders;
    st_buf_t body;           /* the complete body, chunked transfer decoded; not content-decoded */
    const char *remote_addr; /* "ip:port" */
    int64_t start_ns;        /* monotonic time the first byte arrived */
    st_str_t route;          /* the pattern of the route that matched (for metrics) */
    void *user;              /* free for the handler */
};

typedef void (*st_http_handler_fn)(st_http_req_t *req, void *arg);

typedef struct {
    const char *host;         /* listen address, e.g. "127.0.0.1" or "0.0.0.0" or "::" */
    int port;                 /* 0 = any free port (see st_http_port) */
    size_t max_header_bytes;  /* request line + headers; over it: 431 and close */
    size_t max_body_bytes;    /* over it: 413 (checked on Content-Length and while reading) */
    int64_t read_timeout_ns;  /* whole request must arrive within this: else 408 and close */
    int64_t write_timeout_ns; /* response must drain within this: else close */
    int64_t idle_timeout_ns;  /* keep-alive connection idle: close */
    int max_connections;      /* 0 = unlimited; over it new connections are closed at once */
    /* [ext] NULL: plain HTTP. Otherwise the port speaks only TLS with this context (see "TLS" below);
     * the server keeps its own reference, so the caller may free it after st_http_server_create. */
    const struct st_http_tls *tls;
} st_http_opts_t;
/* [ext] Zero values: max_header_bytes 0 = 1 MiB (Go's default); max_body_bytes 0 = no limit; a timeout
 * of 0 disables that timer. A connection that sends nothing gets read_timeout before a quiet close.
 * http-parser's own header cap is process-global: creating a server raises it (never lowers it) to
 * max_header_bytes, so the exact per-server limit is always the one enforced here. */

/* Creates the server on loop and binds/listens. Returns 0 or a negative libuv/errno code.
 * host is an IP literal or a name resolved with getaddrinfo (NULL or "" = "0.0.0.0"). bind errors
 * (-EADDRINUSE, -EACCES, ...) are reported synchronously and leave nothing on the loop.
 * [ext] When SIGPIPE still has its default action it is set to SIG_IGN (process-wide): libuv writes
 * with writev, and a write to a connection the peer reset must fail with EPIPE, not kill the process. */
int st_http_server_create(uv_loop_t *loop, const st_http_opts_t *opts, st_http_server_t **out);
/* Actual bound port (useful with port 0). */
int st_http_port(const st_http_server_t *s);
/* Stops accepting; existing connections finish their current request and are closed after it.
 * cb (optional) runs on the loop once every connection is gone. [ext] Idle connections are closed at
 * once; a connection in the middle of receiving a request may finish it (bounded by read_timeout).
 * "Gone" includes connections whose client left while a handler still owns the request: cb waits for
 * that handler to respond. cb never runs inside this call. Later calls are ignored. */
void st_http_server_shutdown(st_http_server_t *s, void (*cb)(void *arg), void *arg);
/* Frees the server (after shutdown completed and the loop no longer runs its handles). NULL is a
 * no-op. */
void st_http_server_destroy(st_http_server_t *s);
/* Number of requests being handled (accepted, not yet answered). */
size_t st_http_active_requests(const st_http_server_t *s);
/* [ext] Number of open connections (including ones whose client left while a handler still owns
 * their request). */
size_t st_http_connections(const st_http_server_t *s);

/* Routes. pattern is an exact path ("/ready") or has a wildcard segment (a lone '*' between slashes
 * or at the end) somewhere: "/loki/api/v1/label/" "*" "/values" matches one path segment at the
 * star (exposed through st_http_path_param). Routes are tried in registration order. A path that matches a
 * route's pattern but not its methods answers 405 (empty body); no match answers 404 "404 page not found\n".
 * methods is a mask of st_http_method_t.
 * [ext] HEAD is matched only by routes that list ST_HTTP_HEAD (as gorilla/mux does); a 405 carries
 * an Allow header. '*' must be a whole segment and may appear once; the segment it matches
 * is non-empty. The pattern is copied. Returns 0, -EINVAL (bad pattern, no methods) or -ENOMEM.
 * Register routes before the server gets traffic. The route label of the metrics is the pattern;
 * requests that match no route are counted as route="notfound", requests rejected before routing
 * (400/408/413/417/431) as route="invalid". */
int st_http_route(st_http_server_t *s, unsigned methods, const char *pattern, st_http_handler_fn fn,
                  void *arg);
/* The path segment matched by the route's '*' ("" if none), percent-decoded. */
st_str_t st_http_path_param(const st_http_req_t *r);

/* Case-insensitive header lookup; returns false if absent. */
bool st_http_header(const st_http_req_t *r, const char *name, st_str_t *value);

/* Adds a response header (copied) before responding.
 * [ext] Returns 0, -ENOMEM, -EINVAL (name not a token, CR/LF in value, or one of the headers the
 * server writes itself: Content-Length, Transfer-Encoding, Connection, Date) or ST_EBADSTATE (already
 * responded). */
int st_http_add_header(st_http_req_t *r, const char *name, const char *value);
/* Sends the response: status, Content-Type (NULL for none), body (copied; may be NULL with len 0).
 * Adds Content-Length, Date and Connection headers. Must be called exactly once, on the loop thread.
 * [ext] HEAD requests get Content-Length but no body; 204/304 get neither; a status outside
 * 200..999 is sent as 500. After this call r must not be used. */
void st_http_respond(st_http_req_t *r, int status, const char *content_type, const void *body, size_t len);
/* Same, taking ownership of body's bytes (no copy); body is left empty. */
void st_http_respond_buf(st_http_req_t *r, int status, const char *content_type, st_buf_t *body);
/* Loki-style plain-text error: "text/plain; charset=utf-8", body = msg (+ "\n" when newline). */
void st_http_respond_error(st_http_req_t *r, int status, const char *msg, bool newline);

/* True once the client has gone away; a handler may still respond (the response is dropped). */
bool st_http_client_gone(const st_http_req_t *r);

/* Runs work(r, arg) on the libuv thread pool, then done(r, arg) on the loop thread. The request stays
 * valid throughout even if the client disconnects. Returns 0 or a libuv error.
 * [ext] One work item per request at a time (done may queue another). work must not call st_http_*
 * functions other than st_http_client_gone and st_http_header (read-only). */
int st_http_queue_work(st_http_req_t *r, void (*work)(st_http_req_t *, void *),
                       void (*done)(st_http_req_t *, void *), void *arg);

/* Query-string helpers (application/x-www-form-urlencoded). A POST with that Content-Type has its
 * body's fields merged after the URL's. Values are percent/plus-decoded into malloc'd strings.
 * [ext] Fields are split on '&', empty fields skipped, a field without '=' has value "". Repeated keys
 * are all kept, in order. Keys are decoded too. PUT and PATCH bodies are read like POST (as Go's
 * ParseForm does); the media type match ignores case and parameters ("; charset=..."). */
typedef struct {
    struct {
        char *key;
        char *value;
        size_t value_len;
    } * v;
    size_t n;
} st_http_form_t;

/* Parses r->query and, for form POSTs, the body. Returns 0 or -ENOMEM.
 * [ext] Also ST_EPARSE for an invalid %-escape (answer 400). On error *out is empty. */
int st_http_form_parse(const st_http_req_t *r, st_http_form_t *out);
/* First value of key, or NULL. */
const char *st_http_form_get(const st_http_form_t *f, const char *key);
void st_http_form_free(st_http_form_t *f);
/* Percent-decodes (and '+' to space when plus is true) into out. Returns 0 or ST_EPARSE.
 * [ext] Appends to out (which need not be empty); on error out is left as it was. -ENOMEM too. */
int st_url_decode(st_str_t s, bool plus, st_buf_t *out);

/* ---- [ext] WebSocket (RFC 6455, server side; websocket.c) ------------------------------------------
 *
 * A handler upgrades its request with st_http_ws_accept; the connection then carries WebSocket frames
 * until either side closes it. Server frames are unmasked, client frames must be masked; fragmented
 * messages are reassembled (up to max_message); text messages and close reasons must be UTF-8; pings
 * are answered with pongs. No extension or subprotocol is negotiated. Everything runs on the loop
 * thread except st_http_ws_post and st_http_ws_wake, which any thread may call while the handle is
 * valid (they hand work to the loop through a uv_async owned by the connection; once the connection
 * ended they fail cleanly, so the owner only has to stop other threads before its last reference
 * goes, e.g. in on_close).
 *
 * Sending is bounded: at most max_queue data messages (and max_queue_bytes of them) may wait to be
 * written; beyond that st_http_ws_send returns ST_EFULL and the caller decides what to drop. Control
 * frames (ping, pong, close) are never refused. A write that does not drain within the server's
 * write_timeout closes the connection. With ping_interval_ns the server pings on its own.
 *
 * Closing: st_http_ws_close queues a close frame after the queued messages and waits (up to 5 s) for
 * the peer's close frame, then closes the TCP connection. A close frame from the peer is answered with
 * the same code. Protocol violations are answered with 1002 (framing), 1007 (invalid UTF-8) or 1009
 * (message too big). on_close runs exactly once, on the loop, after the connection has ended. */

typedef struct st_http_ws st_http_ws_t;

enum { ST_WS_TEXT = 1, ST_WS_BINARY = 2 };

enum {
    ST_WS_CLOSE_NORMAL = 1000,
    ST_WS_CLOSE_GOING_AWAY = 1001,
    ST_WS_CLOSE_PROTOCOL = 1002,
    ST_WS_CLOSE_UNSUPPORTED = 1003,
    ST_WS_CLOSE_NO_STATUS = 1005, /* reported only: the peer's close frame carried no code */
    ST_WS_CLOSE_ABNORMAL = 1006,  /* reported only: the connection ended without a close frame */
    ST_WS_CLOSE_INVALID_DATA = 1007,
    ST_WS_CLOSE_POLICY = 1008,
    ST_WS_CLOSE_TOO_BIG = 1009,
    ST_WS_CLOSE_INTERNAL = 1011
};

typedef struct {
    /* A complete message (opcode ST_WS_TEXT or ST_WS_BINARY); data valid during the call. NULL: the
     * connection reads and discards messages (control frames are still handled). */
    void (*on_message)(st_http_ws_t *ws, int opcode, const void *data, size_t len, void *arg);
    /* The connection ended. code: the peer's close code (ST_WS_CLOSE_NO_STATUS when its close frame had
     * none), or ST_WS_CLOSE_ABNORMAL when it ended without one (peer gone, write timeout, server
     * shutdown without an answer); reason: the peer's reason (valid during the call). The handle stays
     * valid until on_close returns; keep a reference (st_http_ws_ref) to use it longer. */
    void (*on_close)(st_http_ws_t *ws, int code, st_str_t reason, void *arg);
    /* Runs on the loop after st_http_ws_wake (several wakes may be folded into one call). */
    void (*on_wake)(st_http_ws_t *ws, void *arg);
    size_t max_message;       /* largest incoming message; bigger: close 1009 (0 = 1 MiB) */
    size_t max_queue;         /* data messages waiting to be written (0 = 16) */
    size_t max_queue_bytes;   /* bytes of those messages (0 = 16 MiB; one message may exceed it) */
    int64_t ping_interval_ns; /* send a ping this often (0 = never) */
} st_http_ws_opts_t;

/* True when the request asks for a WebSocket upgrade (a GET with "Upgrade: websocket"). */
bool st_http_ws_is_upgrade(const st_http_req_t *r);
/* Upgrades the request: checks the handshake (GET, HTTP/1.1, Connection: upgrade, Upgrade: websocket,
 * Sec-WebSocket-Version: 13, a Sec-WebSocket-Key of 16 base64-encoded bytes) and answers 101 with
 * Sec-WebSocket-Accept. On success returns 0 and *out; r must not be used any more. On failure the
 * request has already been answered the way gorilla/websocket answers it (400, 405 or 426 with
 * Sec-WebSocket-Version: 13; 503 while shutting down) and an error is returned (-EINVAL, -ENOMEM,
 * ST_EBADSTATE). Opts and arg are copied/kept; callbacks run on the loop thread. */
int st_http_ws_accept(st_http_req_t *r, const st_http_ws_opts_t *opts, void *arg, st_http_ws_t **out);
/* Queues a message (data copied). Returns 0, ST_EFULL (queue at its limit: message not queued),
 * ST_EBADSTATE (closing or closed), -EINVAL (bad opcode) or -ENOMEM. Loop thread only. */
int st_http_ws_send(st_http_ws_t *ws, int opcode, const void *data, size_t len);
/* Same, taking the bytes of data (left empty on success; untouched on failure). */
int st_http_ws_send_buf(st_http_ws_t *ws, int opcode, st_buf_t *data);
/* Starts the close handshake with code (1000..4999, not 1004-1006/1015) and reason (at most 123
 * bytes, cut otherwise; NULL for none). Messages queued before are sent first; later sends fail.
 * Returns 0, or ST_EBADSTATE when a close was already started. Loop thread only. */
int st_http_ws_close(st_http_ws_t *ws, int code, const char *reason);
/* Data messages queued and not yet written. Loop thread only. */
size_t st_http_ws_queued(const st_http_ws_t *ws);
/* True once a close was started by either side or the connection ended. Loop thread only. */
bool st_http_ws_closing(const st_http_ws_t *ws);
/* Any thread: queues a copy of a message for the loop, which sends it as st_http_ws_send would
 * (messages that then find the send queue full are dropped and counted). Returns 0, ST_EFULL (more
 * than max_queue posts are waiting), ST_EBADSTATE (connection closed) or -ENOMEM. */
int st_http_ws_post(st_http_ws_t *ws, int opcode, const void *data, size_t len);
/* Any thread: makes the loop call on_wake soon. Returns 0 or ST_EBADSTATE (closed). */
int st_http_ws_wake(st_http_ws_t *ws);
/* Loop thread: a reference keeps the handle (and its connection, so also the server's shutdown)
 * alive after on_close, e.g. while work for it runs on the thread pool. Calls on a closed handle fail
 * cleanly with ST_EBADSTATE. */
void st_http_ws_ref(st_http_ws_t *ws);
void st_http_ws_unref(st_http_ws_t *ws);
/* Messages dropped by st_http_ws_post because the send queue was full (loop thread). */
uint64_t st_http_ws_dropped(const st_http_ws_t *ws);

/* ---- [ext] TLS (tls.c) -----------------------------------------------------------------------------
 *
 * A server created with st_http_opts_t.tls speaks only TLS (OpenSSL) on its port; nothing else about it
 * changes: keep-alive, pipelining, chunked bodies, 100-continue, WebSocket upgrades (wss), limits,
 * timeouts and shutdown behave as over plain HTTP. Encryption runs on the loop thread between two
 * memory BIOs fed by the loop's reads and writes (sockets never block). The handshake counts against
 * read_timeout (the timer a new connection gets before its first request). ALPN selects "http/1.1"
 * when the client offers it; session resumption (TLS 1.3 tickets, TLS 1.2 tickets and a server-side
 * cache) is on; client-initiated renegotiation is refused.
 *
 * A failed handshake (garbage, no shared version or cipher, a client certificate missing or not
 * verified) gets OpenSSL's alert and the connection is closed; a plain HTTP request on the TLS port is
 * answered "HTTP/1.0 400 Bad Request" with "Client sent an HTTP request to an HTTPS server." (what Go's
 * net/http, hence Loki, answers) and closed. Either is counted in
 * strata_http_tls_errors_total{reason="handshake"|"plain_http"|"handshake_timeout"|"protocol"}, and
 * completed handshakes in strata_http_tls_handshakes_total{resumed="false"|"true"}. */

typedef struct st_http_tls st_http_tls_t;

/* Client certificate policy, with the meaning and names of Go's tls.ClientAuthType (dskit's
 * client_auth_type). */
typedef enum {
    ST_HTTP_TLS_NO_CLIENT_CERT = 0,            /* "NoClientCert": none asked for */
    ST_HTTP_TLS_REQUEST_CLIENT_CERT,           /* "RequestClientCert": asked for, optional, not verified */
    ST_HTTP_TLS_REQUIRE_ANY_CLIENT_CERT,       /* "RequireAnyClientCert": required, not verified */
    ST_HTTP_TLS_VERIFY_CLIENT_CERT_IF_GIVEN,   /* "VerifyClientCertIfGiven": optional, verified if sent */
    ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT /* "RequireAndVerifyClientCert": required and verified */
} st_http_tls_client_auth_t;

typedef enum {
    ST_HTTP_TLS_V12 = 0, /* "VersionTLS12" */
    ST_HTTP_TLS_V13      /* "VersionTLS13" */
} st_http_tls_version_t;

typedef struct {
    const char *cert_file; /* PEM: the server certificate, then any intermediates */
    const char *key_file;  /* PEM private key of that certificate (not encrypted) */
    st_http_tls_client_auth_t client_auth;
    const char *client_ca_file; /* PEM CAs for client certificates; required by the two Verify modes */
    st_http_tls_version_t min_version;
} st_http_tls_opts_t;

/* Loads the certificate chain, key and client CAs once and builds a server context. Returns 0, or
 * -EINVAL (missing file name, a Verify mode without client_ca_file), -EIO (a file cannot be read or
 * parsed, the key does not match the certificate) or -ENOMEM, with a one-line reason naming the file
 * in err (errsz bytes, always NUL-terminated; never any key material). */
int st_http_tls_new(const st_http_tls_opts_t *o, st_http_tls_t **out, char *err, size_t errsz);
/* Drops the caller's reference (servers keep their own). NULL is a no-op. */
void st_http_tls_free(st_http_tls_t *t);
/* The server certificate's subject (RFC 2253, e.g. "CN=logs.example,O=Example") and notAfter (Unix
 * seconds), for logs. Valid while t is. */
const char *st_http_tls_subject(const st_http_tls_t *t);
int64_t st_http_tls_not_after(const st_http_tls_t *t);
/* Go's names ("NoClientCert", ..., "VersionTLS12", "VersionTLS13") to the enums. 0 or -EINVAL. */
int st_http_tls_client_auth_parse(const char *name, st_http_tls_client_auth_t *out);
int st_http_tls_version_parse(const char *name, st_http_tls_version_t *out);

/* Replaces the context used for new connections (certificate reload, e.g. on SIGHUP); connections
 * already open keep theirs. Session ticket keys carry over, so resumption survives. Loop thread only.
 * Returns 0, or ST_EBADSTATE for a server created without TLS. */
int st_http_server_set_tls(st_http_server_t *s, st_http_tls_t *t);
/* True when the request arrived over TLS. */
bool st_http_req_tls(const st_http_req_t *r);
/* The subject CN of the client certificate, only when one was sent and verified against
 * client_ca_file (the two Verify modes); NULL otherwise. Valid until the response is sent. */
const char *st_http_tls_peer_cn(const st_http_req_t *r);

#endif
