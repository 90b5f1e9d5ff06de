/* api_push.c: POST /loki/api/v1/push and /api/prom/push. Decoding and validation run on the thread
 * pool; the push goes to the WAL; the answer (204, or 400 listing rejected entries after storing the
 * rest) is sent only when the WAL thread reports the batch durable. Transient trouble answers 503 or
 * 429 so shippers retry; 400 only for data that can never be accepted. */
#include "server/app.h"

#include "common/codec.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

typedef struct push_ctx {
    st_app_t *app;
    st_http_req_t *req;
    char tenant[151];
    bool legacy;
    int encoding; /* 0 none, 1 gzip, 2 deflate */
    st_push_t *push;
    st_push_errors_t errs;
    int status;      /* response to send when not waiting for the WAL */
    st_buf_t msg;
    /* Both run on the loop, in either order: whichever comes second answers. */
    bool after_done; /* push_after ran (the thread-pool work is finished) */
    bool wal_done;   /* the WAL reported the push durable (or failed) */
    struct push_ctx *next;
} push_ctx_t;

static st_metric_t *m_lines, *m_bytes, *m_rejected;

static void ctx_free(push_ctx_t *c)
{
    st_push_free(c->push);
    st_push_errors_free(&c->errs);
    st_buf_free(&c->msg);
    free(c);
}

static void respond_ctx(push_ctx_t *c, int status, const char *body)
{
    if (status == 204) st_http_respond(c->req, 204, NULL, NULL, 0);
    else st_http_respond_error(c->req, status, body, true);
}

static void set_err(push_ctx_t *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(push_ctx_t *c, int status, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    c->status = status;
    st_buf_reset(&c->msg);
    st_buf_puts(&c->msg, tmp);
}

/* Thread pool: decompress, decode, validate, hand to the WAL. */
static void push_work(st_http_req_t *r, void *arg)
{
    push_ctx_t *c = arg;
    st_app_t *app = c->app;
    st_buf_t plain = ST_BUF_INIT;
    st_str_t body = st_str(r->body.data ? r->body.data : "", r->body.len);
    if (c->encoding) {
        int rc = st_inflate(c->encoding == 1 ? ST_INFLATE_GZIP : ST_INFLATE_DEFLATE, body.p, body.n,
                            app->cfg.distributor.max_decompressed_size, &plain);
        if (rc == ST_ELIMIT) {
            set_err(c, 413, "request body too large: %zu bytes, limit: %zu bytes", plain.len,
                    app->cfg.distributor.max_decompressed_size);
            goto out;
        }
        if (rc == -ENOMEM) {
            set_err(c, 503, "out of memory decompressing the request; retry later");
            goto out;
        }
        if (rc < 0) {
            set_err(c, 400, "%s: invalid compressed body", c->encoding == 1 ? "gzip" : "flate");
            goto out;
        }
        body = st_str(plain.data ? plain.data : "", plain.len);
    }
    if (st_push_new(c->tenant, &c->push) < 0) {
        set_err(c, 503, "out of memory; retry later");
        goto out;
    }
    const st_config_t *cfg = &app->cfg;
    st_push_limits_t lim = {
        .now_ns = st_now_ns(),
        .reject_old_samples = cfg->limits_config.reject_old_samples,
        .reject_old_samples_max_age_ns = cfg->limits_config.reject_old_samples_max_age_ns,
        .creation_grace_period_ns = cfg->limits_config.creation_grace_period_ns,
        .max_line_size = cfg->limits_config.max_line_size,
        .max_line_size_truncate = cfg->limits_config.max_line_size_truncate,
        .max_label_names_per_series = cfg->limits_config.max_label_names_per_series,
        .max_label_name_length = cfg->limits_config.max_label_name_length,
        .max_label_value_length = cfg->limits_config.max_label_value_length,
        .allow_structured_metadata = true,
        .max_structured_metadata_size = 64 * 1024,
        .max_structured_metadata_entries = 128,
    };
    int rc = st_push_decode_json(body, c->legacy, &lim, c->push, &c->errs);
    if (rc == ST_ENOTFOUND) {
        set_err(c, 422, "%s", st_buf_cstr(&c->errs.text));
        goto out;
    }
    if (rc == -ENOMEM) {
        set_err(c, 503, "out of memory decoding the request; retry later");
        goto out;
    }
    if (rc < 0) {
        set_err(c, 400, "%s", st_buf_cstr(&c->errs.text));
        goto out;
    }
    if (c->errs.count) st_counter_add(m_rejected, c->errs.dropped ? c->errs.dropped : c->errs.count);
    st_push_set_owner(c->push, c);
    rc = st_ingester_push(app->ingester, c->push);
    if (rc == 1) {
        /* nothing valid to store */
        if (c->errs.count) set_err(c, 400, "%s", st_buf_cstr(&c->errs.text));
        else c->status = 204;
    } else if (rc == ST_EFULL) {
        set_err(c, 429, "too many writes waiting for the write-ahead log; retry later");
    } else if (rc == ST_EBADSTATE) {
        set_err(c, 503, "the write-ahead log is not accepting writes (shutting down or failed); retry later");
    } else if (rc < 0) {
        set_err(c, 503, "cannot queue the push: %s; retry later", st_strerror(rc));
    } else {
        c->status = 0; /* waiting for the WAL */
    }
out:
    st_buf_free(&plain);
}

static void finish_durable(push_ctx_t *c);

static void push_after(st_http_req_t *r, void *arg)
{
    push_ctx_t *c = arg;
    (void)r;
    if (c->status == 0) {
        /* waiting for the WAL, unless it already reported */
        c->after_done = true;
        if (c->wal_done) finish_durable(c);
        return;
    }
    respond_ctx(c, c->status, st_buf_cstr(&c->msg));
    ctx_free(c);
}

/* WAL thread: hand the finished push to the loop. */
void st_api_push_on_complete(void *arg, st_push_t *p)
{
    st_app_t *app = arg;
    push_ctx_t *c = st_push_owner(p);
    pthread_mutex_lock(&app->push_mu);
    c->next = app->done;
    app->done = c;
    pthread_mutex_unlock(&app->push_mu);
    uv_async_send(&app->push_async);
}

static void on_push_async(uv_async_t *h)
{
    st_app_t *app = h->data;
    pthread_mutex_lock(&app->push_mu);
    push_ctx_t *list = app->done;
    app->done = NULL;
    pthread_mutex_unlock(&app->push_mu);
    while (list) {
        push_ctx_t *c = list;
        list = c->next;
        c->wal_done = true;
        if (c->after_done) finish_durable(c);
    }
}

/* Answers a push the WAL has finished with (loop thread). */
static void finish_durable(push_ctx_t *c)
{
    int st = st_push_status(c->push);
    if (st < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "write-ahead log write failed (%s); nothing was stored, retry later",
                 st_strerror(st));
        respond_ctx(c, 503, msg);
    } else {
        st_counter_add(m_lines, st_push_entries(c->push));
        st_counter_add(m_bytes, st_push_bytes(c->push));
        if (c->errs.count) respond_ctx(c, 400, st_buf_cstr(&c->errs.text));
        else respond_ctx(c, 204, NULL);
    }
    ctx_free(c);
}

int st_api_push_init(st_app_t *app)
{
    m_lines = st_counter("strata_distributor_lines_received_total", "Log lines accepted by pushes (durable).", NULL);
    m_bytes = st_counter("strata_distributor_bytes_received_total", "Line and metadata bytes accepted by pushes.", NULL);
    m_rejected = st_counter("strata_discarded_samples_total", "Entries rejected by validation.", NULL);
    pthread_mutex_init(&app->push_mu, NULL);
    app->push_async.data = app;
    return uv_async_init(app->loop, &app->push_async, on_push_async);
}

void st_api_push_close(st_app_t *app)
{
    uv_close((uv_handle_t *)&app->push_async, NULL);
}

static void handle_push(st_http_req_t *r, void *arg, bool legacy)
{
    st_app_t *app = arg;
    push_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", true);
        return;
    }
    c->app = app;
    c->req = r;
    c->legacy = legacy;
    if (!st_api_tenant(app, r, c->tenant)) {
        free(c);
        return;
    }
    st_str_t v;
    if (st_http_header(r, "Content-Encoding", &v) && v.n > 0) {
        if (v.n == 4 && strncasecmp(v.p, "gzip", 4) == 0) c->encoding = 1;
        else if (v.n == 7 && strncasecmp(v.p, "deflate", 7) == 0) c->encoding = 2;
        else if (!(v.n == 6 && strncasecmp(v.p, "snappy", 6) == 0)) {
            char msg[256];
            snprintf(msg, sizeof msg, "Content-Encoding %.*s not supported", (int)(v.n > 64 ? 64 : v.n), v.p);
            st_http_respond_error(r, 400, msg, true);
            free(c);
            return;
        }
    }
    st_str_t ct = st_str("", 0);
    st_http_header(r, "Content-Type", &ct);
    size_t n = 0;
    while (n < ct.n && ct.p[n] != ';') n++;
    while (n > 0 && ct.p[n - 1] == ' ') n--;
    if (!(n == 16 && strncasecmp(ct.p, "application/json", 16) == 0)) {
        /* protobuf+snappy pushes arrive with the ingest work; say so clearly meanwhile */
        st_http_respond_error(r, 415, "only Content-Type: application/json pushes are supported by this build", true);
        free(c);
        return;
    }
    if (st_http_queue_work(r, push_work, push_after, c) != 0) {
        st_http_respond_error(r, 503, "server busy; retry later", true);
        free(c);
    }
}

static void handle_push_v1(st_http_req_t *r, void *arg) { handle_push(r, arg, false); }
static void handle_push_legacy(st_http_req_t *r, void *arg) { handle_push(r, arg, true); }

int st_api_register_push(st_app_t *app);
int st_api_register_push(st_app_t *app)
{
    ST_TRY(st_http_route(app->http, ST_HTTP_POST, "/loki/api/v1/push", handle_push_v1, app));
    ST_TRY(st_http_route(app->http, ST_HTTP_POST, "/api/prom/push", handle_push_legacy, app));
    return 0;
}
