/* http_int.h: internals shared by the http module's sources (server, routing, responses), plus a
 * socket-free test seam: a "simulated" server and connection that push bytes through exactly the
 * same parse/dispatch/respond code as a real one, for fuzzing and parser tests. Not for other
 * modules: nothing here is a stable API. */
#ifndef ST_HTTP_HTTP_INT_H
#define ST_HTTP_HTTP_INT_H

#include "http/http.h"

#include "common/metrics.h"

#include <http_parser.h>
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
