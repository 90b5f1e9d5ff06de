/* http_int.h: internals shared by the http module's sources (server, routing, responses, WebSocket,
 * TLS), plus a socket-free test seam: a "simulated" server and connection that push bytes through
 * exactly the same parse/dispatch/respond code as a real one, for fuzzing and parser tests. Not for
 * other modules: nothing here is a stable API. */
#ifndef ST_HTTP_HTTP_INT_H
#define ST_HTTP_HTTP_INT_H

#include "http/http.h"

#include "common/metrics.h"

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>

typedef struct st_http_conn st_http_conn_t;

/* One lazily created requests_total series of a route. */
typedef struct {
    unsigned method; /* http_parser method number, or ST__HTTP_METHOD_UNKNOWN */
    int code;
    st_metric_t *m;
} st__http_counter_t;

#define ST__HTTP_METHOD_UNKNOWN 0xffu

typedef struct st_http_route {
    unsigned methods;
    char *pattern; /* owned, NUL-terminated */
    size_t npattern;
    st_http_handler_fn fn;
    void *arg;
    char *label;             /* owned: escaped pattern for metric labels */
    st_metric_t *duration;   /* strata_http_request_duration_seconds{route} */
    st__http_counter_t *ctr; /* owned */
    size_t nctr, capctr;
} st__http_route_t;

/* A request and everything it owns. pub is first so st_http_req_t * and st__http_req_t * convert. */
typedef struct st__http_req {
    st_http_req_t pub;
    st_http_conn_t *conn; /* borrowed; the request holds a reference once dispatched */
    st_buf_t raw;         /* target, then header names and values (views point in here) */
    struct hdr_ent {
        size_t name_off, name_len, val_off, val_len;
    } * ents;
    size_t nents, capents;
    bool in_value; /* the last header callback was a value */
    st_buf_t path; /* decoded path (pub.path views it) */
    size_t param_off, param_len;
    bool has_param;
    unsigned pmethod; /* http_parser method number, ST__HTTP_METHOD_UNKNOWN before known */
    bool head;        /* HEAD: no body in the response */
    bool keep_alive;  /* per http_should_keep_alive, minus upgrades */
    bool started;     /* counted as in flight */
    bool responded;
    st__http_route_t *route; /* for metrics; never NULL once started */
    st_buf_t resp_hdrs;      /* headers added with st_http_add_header */
    /* response being written */
    uv_write_t wr;
    st_buf_t whead;
    char *wbody; /* owned */
    size_t wbody_len;
    /* st_http_queue_work */
    uv_work_t work;
    void (*work_fn)(st_http_req_t *, void *);
    void (*done_fn)(st_http_req_t *, void *);
    void *work_arg;
} st__http_req_t;

typedef enum { T_NONE = 0, T_FIRST, T_IDLE, T_READ, T_WRITE, T_LINGER } st__http_timer_mode_t;

struct st_http_conn {
    uv_tcp_t tcp; /* handle memory: released only after both close callbacks ran */
    uv_timer_t timer;
    uv_shutdown_t shut;
    uv_write_t cont_wr; /* "100 Continue" */
    st_http_server_t *srv;
    st_http_conn_t *prev, *next;
    http_parser parser;
    char remote[64];
    int refs; /* open handles (2) + a dispatched request (1) */
    st__http_timer_mode_t tmode;
    st_buf_t pending; /* received, not yet parsed (pipelined data) */
    size_t pending_off;
    st__http_req_t *cur;    /* being parsed */
    st__http_req_t *ready;  /* parsed completely, about to be dispatched */
    st__http_req_t *active; /* dispatched (or an error response), until its response is written */
    bool in_headers;        /* between messages or inside a request line/headers */
    bool hdr_paused;        /* the parser paused in on_headers_complete */
    size_t hdr_bytes;       /* exact bytes of the current request line + headers */
    size_t trailer_bytes;
    int err_status; /* set by a parser callback that failed */
    const char *err_msg;
    int64_t data_ns; /* monotonic time of the last read */
    bool reading;
    bool closing;     /* uv_close called (or the simulated equivalent) */
    bool close_after; /* close once the current response is written */
    bool lingering;   /* response sent, write side shut down, discarding input */
    atomic_bool gone; /* the client went away (read by handlers, maybe off-loop) */
    st_http_ws_t *ws; /* [ext] set once a handler upgraded the connection to WebSocket (owned) */
    /* [ext] TLS state (owned); NULL for plain HTTP */
    struct st__tls_conn *tls;
    /* simulation (test seam) */
    bool peer_eof; /* the client half-closed while its response was being written */
    bool sim;
    bool sim_write_pending;
    st_buf_t sim_out;
};

struct st_http_server {
    uv_loop_t *loop; /* NULL for a simulated server */
    uv_tcp_t listener;
    bool listener_closed;
    st_http_opts_t opts; /* defaults applied */
    int port;
    st__http_route_t **routes;
    size_t nroutes, caproutes;
    st__http_route_t notfound, invalid; /* pseudo-routes for metrics */
    st_http_conn_t *conns;
    size_t nconns, nrejected, nactive;
    bool shutting_down, shutdown_done;
    void (*shutdown_cb)(void *);
    void *shutdown_arg;
    char *rbuf; /* shared read buffer: every read is consumed inside its callback */
    size_t rbuf_len;
    st_metric_t *m_inflight, *m_conns;
    st_http_tls_t *tls; /* [ext] context for new connections (a reference); NULL for plain HTTP */
    char *tls_stage;    /* [ext] staging buffer that coalesces small plaintext writes into one record */
    st_metric_t *m_tls_hs[2], *m_tls_err[4];
};

/* --- routing (route.c) --- */
int st__http_route_init(st__http_route_t *rt, unsigned methods, const char *pattern, st_http_handler_fn fn,
                        void *arg);
void st__http_route_dispose(st__http_route_t *rt);
/* Finds the route for a decoded path and method. Returns the route, or NULL with *allowed set to the
 * union of the methods of routes whose pattern matched (0: none, i.e. 404) and *path_match to the
 * first of them (for the 405's metrics). */
st__http_route_t *st__http_route_find(st_http_server_t *s, st_str_t path, st_http_method_t method,
                                      size_t *param_off, size_t *param_len, bool *has_param,
                                      unsigned *allowed, st__http_route_t **path_match);
/* Metric handle for (route, method, code), created on first use. */
st_metric_t *st__http_route_counter(st__http_route_t *rt, unsigned pmethod, int code);

/* --- responses (respond.c) --- */
const char *st__http_reason(int status);
/* Writes the IMF-fixdate of now ("Sun, 06 Nov 1994 08:49:37 GMT") into out (30 bytes); returns len. */
size_t st__http_date(char *out);
/* Serializes the status line and headers (Content-Type if ct, the extra lines, Content-Length if
 * with_len, Date, Connection) and the blank line into out. Returns 0 or -ENOMEM. */
int st__http_build_head(st_buf_t *out, int status, const char *ct, const st_buf_t *extra, bool with_len,
                        size_t len, bool keep_alive);
/* Appends a logfmt-quoted copy of s (at most max input bytes) to out. */
void st__http_logfmt_quote(st_buf_t *out, st_str_t s, size_t max);

/* --- connection internals used across files (server.c) --- */
void st__http_req_free(st__http_req_t *ri);

/* --- connection internals used by websocket.c (server.c) --- */
void st__http_conn_close(st_http_conn_t *c);
void st__http_conn_ref(st_http_conn_t *c);
void st__http_conn_unref(st_http_conn_t *c);
void st__http_read_start(st_http_conn_t *c);
/* Answers ri with the 101 head (already serialized in ri->whead by the caller) and switches the
 * connection to WebSocket mode once it is written (st__ws_begin). Returns 0 or ST_EBADSTATE when the
 * client is gone (the request is then released). */
int st__http_upgrade(st__http_req_t *ri);

/* Writes bufs to the connection like uv_write (plain, or encrypted when it is a TLS connection); cb
 * (may be NULL) gets req once the bytes are out. Returns 0 or a negative error (cb not called then). */
int st__http_conn_write(st_http_conn_t *c, uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb);

/* --- [ext] connection internals used by tls.c (server.c) --- */
/* Plaintext received: parsed, dispatched or handed to the WebSocket, exactly like a plain read. */
void st__http_conn_input(st_http_conn_t *c, const char *data, size_t len);
/* The peer finished sending (TLS close_notify): handled like a TCP EOF. */
void st__http_conn_eof(st_http_conn_t *c);
/* Closes after the bytes already queued are written: half-close, discard input, close (or at once
 * when a handler owns a request). */
void st__http_conn_linger(st_http_conn_t *c);

/* --- [ext] TLS (tls.c) --- */
enum { ST__TLS_ERR_HANDSHAKE = 0, ST__TLS_ERR_PLAIN_HTTP, ST__TLS_ERR_TIMEOUT, ST__TLS_ERR_PROTOCOL };

/* Server side: takes a reference to t, allocates the staging buffer, registers the metrics. */
int st__tls_server_init(st_http_server_t *s, const st_http_tls_t *t);
void st__tls_server_dispose(st_http_server_t *s);
/* Per connection: an SSL object in server mode between two memory BIOs. 0 or -ENOMEM. */
int st__tls_conn_new(st_http_conn_t *c);
void st__tls_conn_free(st_http_conn_t *c);
/* Ciphertext read from the socket: drives the handshake, decrypts and passes plaintext on to
 * st__http_conn_input, writes handshake output; failures close the connection and are counted. */
void st__tls_input(st_http_conn_t *c, const char *data, size_t len);
/* st__http_conn_write for a TLS connection. UV_EPIPE before the handshake or after close_notify. */
int st__tls_write(st_http_conn_t *c, uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb);
/* Queues a close_notify alert (once, only on an established connection) before a graceful close. */
void st__tls_close_notify(st_http_conn_t *c);
/* The first-request timer fired: counts a handshake that never completed. */
void st__tls_timeout(st_http_conn_t *c);

/* --- WebSocket (websocket.c) --- */

typedef enum {
    ST__WS_EV_NONE = 0, /* input used up, no complete event */
    ST__WS_EV_MESSAGE,  /* a complete (reassembled) text or binary message */
    ST__WS_EV_PING,
    ST__WS_EV_PONG,
    ST__WS_EV_CLOSE,
    ST__WS_EV_ERROR /* protocol violation: code is the close code to send, why its reason */
} st__ws_ev_type_t;

typedef struct {
    st__ws_ev_type_t type;
    int opcode;          /* MESSAGE: ST_WS_TEXT or ST_WS_BINARY */
    const uint8_t *data; /* MESSAGE/PING/PONG payload, CLOSE reason; valid until the next parse call */
    size_t len;
    int code;            /* CLOSE: the peer's code (1005 when none); ERROR: the code to answer with */
    const char *why;     /* ERROR: static text */
} st__ws_event_t;

/* An incremental frame parser. Server side (client_frames) every frame must be masked; client side
 * (used by tests to read what a server wrote) none may be. After an ERROR it stays failed. */
typedef struct {
    bool client_frames;
    size_t max_message;
    uint8_t hdr[14];
    size_t hlen;
    bool in_payload;
    int opcode;
    bool fin, masked;
    uint8_t mask[4];
    uint64_t plen, pgot;
    int msg_opcode; /* opcode of the message being assembled (0: none) */
    bool msg_done;  /* msg holds a delivered message: reset at the next call */
    st_buf_t msg;
    uint8_t ctl[125];
    bool failed;
    int fail_code;
    const char *fail_why;
} st__ws_parser_t;

void st__ws_parser_init(st__ws_parser_t *p, bool client_frames, size_t max_message);
void st__ws_parser_dispose(st__ws_parser_t *p);
/* Consumes input up to and including the next complete event (or all of it). Returns the bytes
 * consumed; *ev says what completed. Call again with the rest. */
size_t st__ws_parse(st__ws_parser_t *p, const void *data, size_t len, st__ws_event_t *ev);
/* Writes a frame header (FIN set; masked with mask when not NULL) into out (14 bytes); returns its
 * length. */
size_t st__ws_frame_header(uint8_t *out, int opcode, uint64_t len, const uint8_t *mask);
/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + GUID)), 28 characters + NUL. */
int st__ws_accept_key(st_str_t key, char out[29]);
/* True if key is the base64 encoding of 16 bytes. */
bool st__ws_key_valid(st_str_t key);

typedef struct st__ws_frame {
    struct st__ws_frame *next;
    uint8_t hdr[14];
    uint8_t hlen;
    bool data;     /* a data message: counts against the queue limits */
    bool is_close; /* the close frame */
    int opcode;
    char *payload; /* owned */
    size_t len;
} st__ws_frame_t;

struct st_http_ws {
    st_http_conn_t *conn; /* the owner; the handle is freed with the connection */
    st_http_ws_opts_t o;
    void *arg;
    /* shared with other threads (post/wake), under mu */
    pthread_mutex_t mu;
    bool x_closed;
    st__ws_frame_t *inbox, *inbox_tail;
    size_t ninbox;
    bool x_wake;
    uv_async_t async;
    bool has_async;
    /* loop thread */
    st__ws_parser_t parser;
    st__ws_frame_t *q, *q_tail; /* waiting to be written */
    st__ws_frame_t *inflight;   /* being written */
    size_t ndata;               /* data messages queued or being written */
    size_t data_bytes;
    uv_write_t wr;
    uv_buf_t *bufs;
    size_t capbufs;
    bool writing;
    int64_t write_start_ns;
    bool started;       /* the 101 is written: frames flow */
    bool close_sent;    /* a close frame is queued (no more data) */
    bool close_written; /* ... and written */
    bool close_received;
    bool fatal; /* protocol error: close once our close frame is out */
    bool ended; /* the connection closed (on_close pending or done) */
    bool ping_queued;
    int peer_code;
    st_buf_t peer_reason;
    int64_t close_deadline_ns;
    int64_t next_ping_ns;
    uint64_t dropped;
};

/* Hooks called by server.c. */
void st__ws_begin(st_http_conn_t *c);                               /* the 101 was written */
void st__ws_input(st_http_conn_t *c, const char *data, size_t len); /* bytes read in WebSocket mode */
void st__ws_conn_closing(st_http_conn_t *c);                        /* conn_close on a WebSocket */
void st__ws_conn_free(st_http_conn_t *c);                           /* the connection is freed */
void st__ws_shutdown(st_http_conn_t *c);                            /* the server shuts down */

/* --- test seam: simulated server and connections (no loop, no sockets) --- */
/* A server that never listens: routes can be registered and simulated connections opened. Destroy
 * with st_http_server_destroy after closing every simulated connection. */
int st__http_sim_server_create(const st_http_opts_t *opts, st_http_server_t **out);
/* Opens a simulated connection; NULL on OOM. */
st_http_conn_t *st__http_sim_open(st_http_server_t *s);
/* Feeds bytes as if one socket read delivered them. Handlers run synchronously inside and should
 * respond before returning (a handler that does not respond leaves the connection waiting; its
 * later response is still delivered or dropped correctly). Writes complete immediately. */
void st__http_sim_feed(st_http_conn_t *c, const void *data, size_t len);
/* Completes writes queued by responses given outside st__http_sim_feed (a handler that kept its
 * request), which may dispatch queued pipelined requests. */
void st__http_sim_flush(st_http_conn_t *c);
/* Everything the server wrote so far: interim 100 Continue lines and responses, in order. */
st_str_t st__http_sim_output(const st_http_conn_t *c);
/* True once the server decided to close the connection (error, Connection: close, ...). */
bool st__http_sim_closed(const st_http_conn_t *c);
/* Simulates the client going away and releases the connection (memory is freed once no handler
 * holds its request any more). */
void st__http_sim_close(st_http_conn_t *c);

#endif
