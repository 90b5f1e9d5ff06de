/* api_push.c: POST /loki/api/v1/push, /api/prom/push (Loki JSON or protobuf+snappy, routed by
 * Content-Type) and /otlp/v1/logs (OTLP protobuf or JSON). Decoding and validation run on the thread
 * pool; the push goes to the WAL; the answer (204, or 400 listing rejected entries after storing the
 * rest) is sent only when the WAL thread reports the batch durable. Transient trouble answers 503 or
 * 429 so shippers retry; 400 only for data that can never be accepted. OTLP errors are protobuf
 * google.rpc.Status bodies, with 500 sent as 503. */
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
    int encoding; /* enc_t */
    int format;   /* fmt_t */
    st_push_t *push;
    st_push_errors_t errs;
    int status;      /* response to send when not waiting for the WAL */
    st_buf_t msg;
    /* Both run on the loop, in either order: whichever comes second answers. */
    bool after_done; /* push_after ran (the thread-pool work is finished) */
    bool wal_done;   /* the WAL reported the push durable (or failed) */
    struct push_ctx *next;
} push_ctx_t;

enum enc_t { ENC_NONE, ENC_GZIP, ENC_DEFLATE, ENC_ZSTD, ENC_LZ4 };
enum fmt_t { FMT_JSON, FMT_PROTO, FMT_OTLP_PROTO, FMT_OTLP_JSON };

static st_metric_t *m_lines, *m_bytes, *m_rejected;

/* limits_config.discover_service_name and the OTLP index list, split once at start (views into the
 * configuration, which lives as long as the server). */
static st_str_t *discover_names, *otlp_index;
static size_t discover_n, otlp_index_n;

static bool is_otlp(const push_ctx_t *c) { return c->format == FMT_OTLP_PROTO || c->format == FMT_OTLP_JSON; }

static void ctx_free(push_ctx_t *c)
{
    st_push_free(c->push);
    st_push_errors_free(&c->errs);
    st_buf_free(&c->msg);
    free(c);
}

/* An OTLP error: google.rpc.Status with only message set; 500 becomes 503 so OTel clients retry. */
static void respond_otlp_error(st_http_req_t *r, int status, const char *msg)
{
    if (status == 500) status = 503;
    st_buf_t b = ST_BUF_INIT;
    if (st_otlp_status_encode(&b, st_cstr(msg)) < 0) {
        st_buf_free(&b);
        st_http_respond(r, 503, NULL, NULL, 0);
        return;
    }
    st_http_respond_buf(r, status, "application/octet-stream", &b);
    st_buf_free(&b);
}

static void respond_ctx(push_ctx_t *c, int status, const char *body)
{
    if (status == 204) st_http_respond(c->req, 204, NULL, NULL, 0);
    else if (is_otlp(c)) respond_otlp_error(c->req, status, body);
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
        static const char *const names[] = {"", "gzip", "flate", "zstd", "lz4"};
        size_t max = app->cfg.distributor.max_decompressed_size;
        int rc;
        if (c->encoding == ENC_ZSTD) rc = st_zstd_decompress_bounded(body.p, body.n, max, &plain);
        else if (c->encoding == ENC_LZ4) rc = st_lz4_decompress_bounded(body.p, body.n, max, &plain);
        else
            rc = st_inflate(c->encoding == ENC_GZIP ? ST_INFLATE_GZIP : ST_INFLATE_DEFLATE, body.p, body.n, max,
                            &plain);
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
            set_err(c, 400, "%s: invalid compressed body", names[c->encoding]);
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
        .allow_structured_metadata = cfg->limits_config.allow_structured_metadata,
        .max_structured_metadata_size = cfg->limits_config.max_structured_metadata_size,
        .max_structured_metadata_entries = cfg->limits_config.max_structured_metadata_entries_count,
        .discover_service_name = discover_names,
        .discover_service_name_n = discover_n,
        .discover_log_levels = cfg->limits_config.discover_log_levels,
        .otlp_index_labels = otlp_index,
        .otlp_index_labels_n = otlp_index_n,
    };
    int rc;
    switch (c->format) {
    case FMT_PROTO:
        rc = st_push_decode_proto(body, cfg->distributor.max_decompressed_size, &lim, c->push, &c->errs);
        break;
    case FMT_OTLP_PROTO: rc = st_push_decode_otlp(body, ST_OTLP_PROTOBUF, &lim, c->push, &c->errs); break;
    case FMT_OTLP_JSON: rc = st_push_decode_otlp(body, ST_OTLP_JSON, &lim, c->push, &c->errs); break;
    default: rc = st_push_decode_json(body, c->legacy, &lim, c->push, &c->errs); break;
    }
    if (rc == ST_ELIMIT) {
        set_err(c, 413, "%s", st_buf_cstr(&c->errs.text));
        goto out;
    }
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
    const char *lmsg;
    int lstatus = st_push_limit_status(c->push, &lmsg);
    if (rc == ST_ELIMIT) {
        set_err(c, lstatus ? lstatus : 429, "%s", lmsg ? lmsg : "limit exceeded");
    } else if (rc == 1) {
        /* nothing valid to store */
        if (lstatus) set_err(c, lstatus, "%s%s%s", st_buf_cstr(&c->errs.text), c->errs.count ? "; " : "", lmsg);
        else if (c->errs.count) set_err(c, 400, "%s", st_buf_cstr(&c->errs.text));
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
        const char *lmsg;
        int lstatus = st_push_limit_status(c->push, &lmsg);
        if (lstatus) {
            /* stored what was admitted; the rest may be retried (exact repeats are dropped) */
            set_err(c, lstatus, "%s%s%s", st_buf_cstr(&c->errs.text), c->errs.count ? "; " : "", lmsg);
            respond_ctx(c, lstatus, st_buf_cstr(&c->msg));
        } else if (c->errs.count) {
            respond_ctx(c, 400, st_buf_cstr(&c->errs.text));
        } else {
            respond_ctx(c, 204, NULL);
        }
    }
    ctx_free(c);
}

int st_api_push_init(st_app_t *app)
{
    m_lines = st_counter("strata_distributor_lines_received_total", "Log lines accepted by pushes (durable).", NULL);
    m_bytes = st_counter("strata_distributor_bytes_received_total", "Line and metadata bytes accepted by pushes.", NULL);
    m_rejected = st_counter("strata_discarded_samples_total", "Entries rejected by validation.", NULL);
    const st_config_t *cfg = &app->cfg;
    ST_TRY(st_str_split_list(st_cstr(cfg->limits_config.discover_service_name), &discover_names, &discover_n));
    ST_TRY(st_str_split_list(st_cstr(cfg->distributor.otlp_config.default_resource_attributes_as_index_labels),
                             &otlp_index, &otlp_index_n));
    pthread_mutex_init(&app->push_mu, NULL);
    app->push_async.data = app;
    return uv_async_init(app->loop, &app->push_async, on_push_async);
}

void st_api_push_close(st_app_t *app)
{
    uv_close((uv_handle_t *)&app->push_async, NULL);
    free(discover_names);
    free(otlp_index);
    discover_names = otlp_index = NULL;
    discover_n = otlp_index_n = 0;
}

/* Media type of Content-Type (parameters dropped); empty when absent. */
static st_str_t media_type(st_http_req_t *r)
{
    st_str_t ct = st_str("", 0);
    st_http_header(r, "Content-Type", &ct);
    size_t n = 0;
    while (n < ct.n && ct.p[n] != ';') n++;
    while (n > 0 && (ct.p[n - 1] == ' ' || ct.p[n - 1] == '\t')) n--;
    return st_str(ct.p, n);
}

static bool ieq(st_str_t s, const char *lit) { return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0; }

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
        /* snappy passes through: the protobuf decoder handles the snappy layer */
        if (ieq(v, "gzip")) c->encoding = ENC_GZIP;
        else if (ieq(v, "deflate")) c->encoding = ENC_DEFLATE;
        else if (!ieq(v, "snappy")) {
            char msg[256];
            snprintf(msg, sizeof msg, "Content-Encoding %.*s not supported", (int)(v.n > 64 ? 64 : v.n), v.p);
            st_http_respond_error(r, 400, msg, true);
            free(c);
            return;
        }
    }
    /* application/json is Loki JSON; anything else, including application/x-protobuf and a missing
     * Content-Type (older Loki's behaviour, deliberately kept), is snappy-compressed protobuf */
    c->format = ieq(media_type(r), "application/json") ? FMT_JSON : FMT_PROTO;
    if (st_http_queue_work(r, push_work, push_after, c) != 0) {
        st_http_respond_error(r, 503, "server busy; retry later", true);
        free(c);
    }
}

static void handle_push_v1(st_http_req_t *r, void *arg) { handle_push(r, arg, false); }
static void handle_push_legacy(st_http_req_t *r, void *arg) { handle_push(r, arg, true); }

/* POST /otlp/v1/logs (Loki 3's native OTLP endpoint). */
static void handle_otlp_logs(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    push_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        respond_otlp_error(r, 503, "out of memory; retry later");
        return;
    }
    c->app = app;
    c->req = r;
    if (!st_api_tenant(app, r, c->tenant)) {
        free(c);
        return;
    }
    st_str_t v;
    if (st_http_header(r, "Content-Encoding", &v) && v.n > 0) {
        if (ieq(v, "gzip")) c->encoding = ENC_GZIP;
        else if (ieq(v, "zstd")) c->encoding = ENC_ZSTD;
        else if (ieq(v, "lz4")) c->encoding = ENC_LZ4;
        else {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "unsupported content encoding %.*s: only gzip, lz4 and zstd are supported",
                     (int)(v.n > 64 ? 64 : v.n), v.p);
            respond_otlp_error(r, 400, msg);
            free(c);
            return;
        }
    }
    st_str_t mt = media_type(r);
    if (ieq(mt, "application/x-protobuf")) {
        c->format = FMT_OTLP_PROTO;
    } else if (ieq(mt, "application/json")) {
        c->format = FMT_OTLP_JSON;
    } else {
        st_str_t ct = st_str("", 0);
        st_http_header(r, "Content-Type", &ct);
        char msg[256];
        snprintf(msg, sizeof msg, "content type: %.*s is not supported", (int)(ct.n > 64 ? 64 : ct.n), ct.p);
        respond_otlp_error(r, 400, msg);
        free(c);
        return;
    }
    if (st_http_queue_work(r, push_work, push_after, c) != 0) {
        respond_otlp_error(r, 503, "server busy; retry later");
        free(c);
    }
}

int st_api_register_push(st_app_t *app);
int st_api_register_push(st_app_t *app)
{
    ST_TRY(st_http_route(app->http, ST_HTTP_POST, "/loki/api/v1/push", handle_push_v1, app));
    ST_TRY(st_http_route(app->http, ST_HTTP_POST, "/api/prom/push", handle_push_legacy, app));
    ST_TRY(st_http_route(app->http, ST_HTTP_POST, "/otlp/v1/logs", handle_otlp_logs, app));
    return 0;
}
