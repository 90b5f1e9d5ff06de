/* api_lifecycle.c: the lifecycle inside strata serve (a timer that runs the worker on the thread pool,
 * never two at once) and its HTTP API: POST/GET /strata/api/v1/restore. */
#include "server/app.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "objstore/objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- scheduled runs --------------------------------------------------------------------------------- */

static uv_work_t lc_work;
static st_lc_report_t lc_rep;
static int lc_rc;

static bool lc_moves(const st_app_t *app)
{
    return app->lc && app->lc->enabled && app->lc->npolicies > 0;
}

static void lc_run(uv_work_t *w)
{
    st_app_t *app = w->data;
    int64_t now = st_now_ns();
    /* tier moves every lifecycle.interval; delete requests every compactor.compaction_interval */
    bool moves = lc_moves(app) && now - app->lc_last_moves >= app->lc->interval_ns;
    st_lc_run_opts_t o = {.cfg = &app->cfg,
                          .lc = app->lc,
                          .index = app->index,
                          .now_ns = now,
                          .erase_only = !moves,
                          .ingest = st_app_ingest_wait,
                          .ingest_arg = app->ingester};
    lc_rc = st_lifecycle_run(&o, &lc_rep);
    if (moves && lc_rc == 0) app->lc_last_moves = now;
}

static void lc_done(uv_work_t *w, int status)
{
    st_app_t *app = w->data;
    app->lc_running = false;
    if (status != 0) return;
    if (lc_rc == ST_EBADSTATE)
        ST_LOG_INFO("lifecycle", "msg=\"another lifecycle run holds the lease; skipped\"");
    else if (lc_rc < 0 || lc_rep.failures)
        ST_LOG_WARN("lifecycle", "msg=\"lifecycle run finished with failures\" err=\"%s\" failures=%llu",
                    lc_rc < 0 ? st_s3_strerror(lc_rc) : "", (unsigned long long)lc_rep.failures);
    else if (lc_rep.packs_written || lc_rep.objects_deleted)
        ST_LOG_INFO("lifecycle",
                    "msg=\"lifecycle run done\" uploaded_chunks=%llu objects_written=%llu deleted=%llu",
                    (unsigned long long)lc_rep.to_upload, (unsigned long long)lc_rep.packs_written,
                    (unsigned long long)lc_rep.objects_deleted);
}

static void lc_tick(uv_timer_t *t)
{
    st_app_t *app = t->data;
    if (app->lc_running || atomic_load(&app->state) != ST_APP_READY) return;
    app->lc_running = true;
    lc_work.data = app;
    if (uv_queue_work(app->loop, &lc_work, lc_run, lc_done) != 0) app->lc_running = false;
}

int st_api_lifecycle_start(st_app_t *app)
{
    bool erase = strcmp(app->cfg.limits_config.deletion_mode, "filter-and-delete") == 0;
    if (!lc_moves(app) && !erase) return 0;
    int64_t every = app->cfg.compactor.compaction_interval_ns;
    if (lc_moves(app) && app->lc->interval_ns < every) every = app->lc->interval_ns;
    uint64_t ms = (uint64_t)(every / ST_NS_PER_MS);
    if (ms == 0) ms = 1000;
    uv_timer_init(app->loop, &app->lc_timer);
    app->lc_timer.data = app;
    uv_timer_start(&app->lc_timer, lc_tick, ms, ms);
    app->lc_timer_on = true;
    ST_LOG_INFO("lifecycle",
                "msg=\"lifecycle worker scheduled\" interval_ms=%llu policies=%d tier_moves=%s deletes=%s",
                (unsigned long long)ms, app->lc ? app->lc->npolicies : 0, lc_moves(app) ? "true" : "false",
                erase ? "true" : "false");
    return 0;
}

void st_api_lifecycle_stop(st_app_t *app)
{
    if (app->lc_timer_on) {
        uv_timer_stop(&app->lc_timer);
        uv_close((uv_handle_t *)&app->lc_timer, NULL);
        app->lc_timer_on = false;
    }
}

/* ---- restore API ---------------------------------------------------------------------------------- */

typedef struct {
    st_app_t *app;
    char tenant[151];
    bool post;
    char *selector;
    int64_t start, end;
    char tier[16];
    int days;
    st_buf_t out;
    int status;
    char err[512];
} rctx_t;

static void restore_work(st_http_req_t *r, void *arg)
{
    (void)r;
    rctx_t *c = arg;
    if (!c->post) {
        c->status = st_lc_restore_status(c->app->lc, c->app->index, c->tenant, &c->out) < 0 ? 500 : 200;
        return;
    }
    st_lc_restore_t q;
    int rc = st_lc_restore_request(c->app->lc, c->app->index, c->tenant, st_cstr(c->selector), c->start,
                                   c->end, c->tier, c->days, st_now_ns(), &q, c->err, sizeof c->err);
    if (rc == ST_EPARSE)
        c->status = 400;
    else if (rc == ST_ENOTFOUND)
        c->status = 404;
    else if (rc < 0) {
        c->status = 503;
        snprintf(c->err, sizeof c->err, "restore failed: %s", st_s3_strerror(rc));
    } else {
        c->status = 202;
        st_buf_printf(&c->out, "{\"id\":\"%s\",\"objects\":%d,\"failed\":%d,\"tier\":\"%s\",\"days\":%d}",
                      q.id, q.objects, q.failed, q.tier, q.days);
    }
}

static void restore_done(st_http_req_t *r, void *arg)
{
    rctx_t *c = arg;
    if (c->status >= 400)
        st_http_respond_error(r, c->status, c->err[0] ? c->err : "error", true);
    else
        st_http_respond_buf(r, c->status, "application/json", &c->out);
    st_buf_free(&c->out);
    free(c->selector);
    free(c);
}

static void handle_restore(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    if (app->lc == NULL || app->lc->s3.bucket[0] == '\0') {
        st_http_respond_error(r, 404, "no lifecycle.s3 configuration: nothing is archived", true);
        return;
    }
    rctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_respond_error(r, 503, "out of memory", true);
        return;
    }
    c->app = app;
    if (!st_api_tenant(app, r, c->tenant)) {
        free(c);
        return;
    }
    c->post = r->method == ST_HTTP_POST;
    if (c->post) {
        st_http_form_t f = {0};
        if (st_http_form_parse(r, &f) < 0) {
            st_http_form_free(&f);
            free(c);
            st_http_respond_error(r, 400, "invalid form", true);
            return;
        }
        const char *sel = st_http_form_get(&f, "selector"), *s = st_http_form_get(&f, "start"),
                   *e = st_http_form_get(&f, "end"), *tier = st_http_form_get(&f, "tier"),
                   *days = st_http_form_get(&f, "days");
        if (sel == NULL) sel = st_http_form_get(&f, "query");
        const char *bad = NULL;
        c->end = st_now_ns();
        if (sel == NULL || sel[0] == '\0')
            bad = "selector is required";
        else if (s == NULL || st_parse_query_time(st_cstr(s), &c->start) < 0)
            bad = "start is required (RFC3339 or Unix time)";
        else if (e && e[0] && st_parse_query_time(st_cstr(e), &c->end) < 0)
            bad = "invalid end";
        snprintf(c->tier, sizeof c->tier, "%s", tier && tier[0] ? tier : "Standard");
        c->days = days && days[0] ? atoi(days) : 7;
        c->selector = sel ? strdup(sel) : NULL;
        st_http_form_free(&f);
        if (bad) {
            free(c->selector);
            free(c);
            st_http_respond_error(r, 400, bad, true);
            return;
        }
    }
    if (st_http_queue_work(r, restore_work, restore_done, c) != 0) {
        free(c->selector);
        free(c);
        st_http_respond_error(r, 503, "server busy; retry later", true);
    }
}

int st_api_register_lifecycle(st_app_t *app)
{
    return st_http_route(app->http, ST_HTTP_GET | ST_HTTP_POST, "/strata/api/v1/restore", handle_restore,
                         app);
}
