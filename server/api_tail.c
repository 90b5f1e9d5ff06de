/* api_tail.c: live tail (GET /loki/api/v1/tail and the legacy /api/prom/tail, same messages as in
 * Loki) over a WebSocket. Parameters are checked before the upgrade (plain 400s); after it the tailer
 * subscribes to the ingester, a backfill query runs, and entries flow as text messages of at most
 * 100 entries. At most 10 messages wait for a slow reader; entries that find the queue full become
 * dropped_entries markers (at most 1000) on the next message sent. The server pings every second;
 * errors close with 1011, querier.tail_max_duration with 1000. Work runs on the thread pool. */
#include "server/app.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_api_register_tail(st_app_t *app);
bool st_api_categorize(const st_http_req_t *r);
bool st_api_bounds(st_http_req_t *r, const st_http_form_t *f, int64_t *start, int64_t *end);
bool st_api_int(st_http_req_t *r, const char *v, long def, long *out);

#define MAX_PENDING_MESSAGES 10   /* Loki's maxBufferedTailResponses */
#define ENTRIES_PER_MESSAGE  100  /* maxEntriesPerTailResponse */
#define MAX_DROPPED          1000 /* maxDroppedEntriesPerTailResponse */
#define MAX_DELAY_FOR        5
#define TICK_MS              200

static st_metric_t *m_active, *m_sent, *m_dropped;

typedef struct {
    st_app_t *app;
    st_http_ws_t *ws;
    st_tailer_t *tl;
    uv_timer_t timer;
    uv_work_t work;
    bool working; /* a work item runs (it holds a reference on ws) */
    bool again;   /* new entries arrived meanwhile */
    bool closed;  /* on_close ran */
    bool timer_open;
    bool backfilled;
    bool held; /* the tailer holds entries back for delay_for */
    bool categorize;
    int64_t start_ns; /* backfill from */
    int limit;
    int64_t deadline_mono;
    st_tail_batch_t out;   /* made by the worker */
    st_tail_batch_t drops; /* markers waiting for the next message */
    st_query_error_t err;
    int rc;
} tail_t;

static void tail_free(tail_t *t)
{
    st_tailer_free(t->tl);
    st_tail_batch_free(&t->out);
    st_tail_batch_free(&t->drops);
    st_query_error_free(&t->err);
    free(t);
    st_gauge_add(m_active, -1);
}

/* Frees the tail once nothing refers to it any more (loop thread). */
static void maybe_free(tail_t *t)
{
    if (t->closed && !t->working && !t->timer_open) tail_free(t);
}

static void on_timer_closed(uv_handle_t *h)
{
    tail_t *t = h->data;
    t->timer_open = false;
    maybe_free(t);
}

/* ---- work on the thread pool ---------------------------------------------------------------------- */

static void work_cb(uv_work_t *w)
{
    tail_t *t = w->data;
    int64_t now = st_now_ns();
    t->rc = 0;
    if (!t->backfilled) {
        t->backfilled = true;
        if (t->limit > 0 && t->start_ns < now)
            t->rc = st_tailer_backfill(t->tl, t->start_ns, now + 1, t->limit, &t->out, &t->err);
    }
    if (t->rc == 0) t->rc = st_tailer_process(t->tl, now, &t->out, &t->held);
    if (t->rc < 0 && t->err.msg.len == 0) st_buf_puts(&t->err.msg, st_strerror(t->rc));
}

static void add_drop(tail_t *t, const st_tail_item_t *it)
{
    st_counter_inc(m_dropped);
    if (t->drops.n >= MAX_DROPPED) return;
    st_tail_batch_add(&t->drops, it->ts, it->labels, st_str("", 0), st_str("", 0), true);
}

/* Sends one message: pending markers first, then items[0..n). */
static void send_message(tail_t *t, const st_tail_item_t *items, size_t n)
{
    if (st_http_ws_queued(t->ws) >= MAX_PENDING_MESSAGES) {
        for (size_t i = 0; i < n; i++) add_drop(t, &items[i]);
        return;
    }
    st_tail_item_t *all = malloc((t->drops.n + n + 1) * sizeof *all);
    if (all == NULL) return;
    if (t->drops.n) memcpy(all, t->drops.v, t->drops.n * sizeof *all);
    if (n) memcpy(all + t->drops.n, items, n * sizeof *all);
    st_buf_t msg = ST_BUF_INIT;
    int rc = st_tail_encode(all, t->drops.n + n, t->categorize, &msg);
    free(all);
    if (rc == 0) rc = st_http_ws_send_buf(t->ws, ST_WS_TEXT, &msg);
    st_buf_free(&msg);
    if (rc == ST_EFULL) {
        for (size_t i = 0; i < n; i++) add_drop(t, &items[i]);
        return;
    }
    if (rc == 0) {
        size_t live = 0;
        for (size_t i = 0; i < n; i++) live += !items[i].dropped;
        st_counter_add(m_sent, live);
        st_tail_batch_reset(&t->drops);
    }
}

static void schedule(tail_t *t);

static void after_work_cb(uv_work_t *w, int status)
{
    tail_t *t = w->data;
    st_http_ws_t *ws = t->ws;
    t->working = false;
    if (!t->closed && !st_http_ws_closing(ws)) {
        if (t->rc < 0) {
            ST_LOG_WARN("tail", "msg=\"tail failed\" err=\"%s\"", st_buf_cstr(&t->err.msg));
            st_http_ws_close(ws, ST_WS_CLOSE_INTERNAL, st_buf_cstr(&t->err.msg));
        } else {
            /* markers the tailer produced (its buffer overflowed) travel like the ones made here */
            size_t k = 0;
            for (size_t i = 0; i < t->out.n; i++) {
                if (t->out.v[i].dropped)
                    add_drop(t, &t->out.v[i]);
                else
                    t->out.v[k++] = t->out.v[i];
                if (t->out.v[i].dropped) free(t->out.v[i].mem);
            }
            t->out.n = k;
            for (size_t i = 0; i < t->out.n; i += ENTRIES_PER_MESSAGE) {
                size_t n = t->out.n - i < ENTRIES_PER_MESSAGE ? t->out.n - i : ENTRIES_PER_MESSAGE;
                send_message(t, t->out.v + i, n);
            }
            if (t->out.n == 0 && t->drops.n > 0) send_message(t, NULL, 0);
        }
    }
    st_tail_batch_reset(&t->out);
    bool again = t->again && !t->closed;
    t->again = false;
    if (again) schedule(t);
    maybe_free(t);
    st_http_ws_unref(ws); /* last: may free the connection */
}

static void schedule(tail_t *t)
{
    if (t->closed) return;
    if (t->working) {
        t->again = true;
        return;
    }
    t->working = true;
    t->work.data = t;
    st_http_ws_ref(t->ws);
    if (uv_queue_work(t->app->loop, &t->work, work_cb, after_work_cb) != 0) {
        t->working = false;
        st_http_ws_unref(t->ws);
        st_http_ws_close(t->ws, ST_WS_CLOSE_INTERNAL, "server busy");
    }
}

/* ---- WebSocket and timer callbacks --------------------------------------------------------------- */

/* WAL thread: entries were buffered. The handle is valid: on_close unsubscribes before it goes. */
static void notify(void *arg)
{
    tail_t *t = arg;
    st_http_ws_wake(t->ws);
}

static void on_wake(st_http_ws_t *ws, void *arg)
{
    schedule(arg);
}

static void on_tick(uv_timer_t *h)
{
    tail_t *t = h->data;
    if (t->closed || st_http_ws_closing(t->ws)) return;
    if (st_mono_ns() >= t->deadline_mono) {
        st_http_ws_close(t->ws, ST_WS_CLOSE_NORMAL, "reached tail max duration limit");
        return;
    }
    if (t->held || t->drops.n > 0) schedule(t);
}

static void on_close(st_http_ws_t *ws, int code, st_str_t reason, void *arg)
{
    tail_t *t = arg;
    t->closed = true;
    st_tailer_stop(t->tl); /* no notify after this: the handle may go */
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_timer_closed);
    ST_LOG_INFO("tail", "msg=\"ended tailing logs\" code=%d", code);
}

/* ---- handler ---------------------------------------------------------------------------------------- */

static void handle_tail(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    char tenant[151];
    if (!st_api_tenant(app, r, tenant)) return;
    st_http_form_t f = {0};
    if (st_http_form_parse(r, &f) < 0) {
        st_http_respond_error(r, 400, "invalid query string or form body", false);
        return;
    }
    tail_t *t = calloc(1, sizeof *t);
    st_buf_t query = ST_BUF_INIT;
    st_query_error_t err = {0};
    long limit = 100, delay = 0;
    int64_t start = 0, end = 0;
    bool ok = t != NULL;
    if (!ok) st_http_respond_error(r, 503, "out of memory; retry later", false);
    const char *q = st_http_form_get(&f, "query");
    st_buf_puts(&query, q ? q : "");
    const char *re = st_http_form_get(&f, "regexp");
    if (ok && re && re[0]) { /* the deprecated regexp parameter: a |~ line filter */
        st_buf_puts(&query, " |~ ");
        st_json_put_cstr(&query, re);
    }
    st_buf_cstr(&query);
    st_tail_opts_t o = {.tenant = tenant,
                        .query = st_str(query.data ? query.data : "", query.len),
                        .categorize_labels = st_api_categorize(r),
                        .notify = notify,
                        .arg = t};
    /* Loki's order: the query, then limit, start, delay_for */
    if (ok && st_tailer_new(app->querier, &o, &t->tl, &err) < 0) {
        st_http_respond_error(r, err.status ? err.status : 500, st_buf_cstr(&err.msg), false);
        ok = false;
    }
    if (ok && !st_api_int(r, st_http_form_get(&f, "limit"), 100, &limit)) ok = false;
    if (ok && limit <= 0) {
        st_http_respond_error(r, 400, "limit must be a positive value", false);
        ok = false;
    }
    long maxl = app->cfg.limits_config.max_entries_limit_per_query;
    if (ok && maxl > 0 && limit > maxl) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "max entries limit per query exceeded, limit > max_entries_limit_per_query (%ld > %ld)",
                 limit, maxl);
        st_http_respond_error(r, 400, msg, false);
        ok = false;
    }
    if (ok && !st_api_bounds(r, &f, &start, &end)) ok = false;
    if (ok && !st_api_int(r, st_http_form_get(&f, "delay_for"), 0, &delay)) ok = false;
    if (ok && delay < 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "delay_for value %ld is out of range [0, 4294967295]", delay);
        st_http_respond_error(r, 400, msg, false);
        ok = false;
    }
    if (ok && delay > MAX_DELAY_FOR) {
        st_http_respond_error(r, 400, "delay_for can't be greater than 5", false);
        ok = false;
    }
    if (ok) st_api_audit_query(app, r, tenant, st_buf_cstr(&query), start, end); /* audit trail */
    st_http_form_free(&f);
    st_buf_free(&query);
    st_query_error_free(&err);
    if (!ok) {
        if (t) {
            st_tailer_free(t->tl);
            free(t);
        }
        return;
    }
    /* delay_for reaches the tailer through its options: rebuild them now that it is known */
    t->app = app;
    t->categorize = o.categorize_labels;
    t->start_ns = start;
    t->limit = (int)limit;
    t->deadline_mono = st_mono_ns() + app->cfg.querier.tail_max_duration_ns;
    st_tailer_set_delay(t->tl, (int64_t)delay * ST_NS_PER_SEC);
    st_http_ws_opts_t wo = {.on_close = on_close,
                            .on_wake = on_wake,
                            .max_queue = MAX_PENDING_MESSAGES,
                            .max_queue_bytes = (size_t)64 << 20,
                            .ping_interval_ns = ST_NS_PER_SEC};
    if (st_http_ws_accept(r, &wo, t, &t->ws) < 0) { /* answered (400/405/...) */
        st_tailer_free(t->tl);
        free(t);
        return;
    }
    st_gauge_add(m_active, 1);
    uv_timer_init(app->loop, &t->timer);
    t->timer.data = t;
    t->timer_open = true;
    uv_timer_start(&t->timer, on_tick, TICK_MS, TICK_MS);
    ST_LOG_INFO("tail", "msg=\"starting to tail logs\" tenant=%s", tenant);
    if (st_tailer_start(t->tl) < 0) {
        st_http_ws_close(t->ws, ST_WS_CLOSE_INTERNAL, "cannot subscribe to new entries");
        return;
    }
    schedule(t); /* backfill, then whatever arrived meanwhile */
}

int st_api_register_tail(st_app_t *app)
{
    m_active = st_gauge("strata_tail_active", "Live tails (WebSocket) open.", NULL);
    m_sent = st_counter("strata_tail_entries_sent_total", "Entries sent to live tails.", NULL);
    m_dropped =
        st_counter("strata_tail_entries_dropped_total", "Entries dropped for slow live-tail readers.", NULL);
    unsigned gp = ST_HTTP_GET | ST_HTTP_POST;
    ST_TRY(st_http_route(app->http, gp, "/loki/api/v1/tail", handle_tail, app));
    ST_TRY(st_http_route(app->http, gp, "/api/prom/tail", handle_tail, app));
    return 0;
}
