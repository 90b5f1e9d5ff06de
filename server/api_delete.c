/* api_delete.c: Loki's log deletion API, /loki/api/v1/delete: POST/PUT adds a request, GET lists the
 * tenant's requests, DELETE cancels one; parameters, status codes and error texts as Loki's compactor.
 * Strata extension: dry_run=true on POST answers 200 with what the request would touch and records
 * nothing. The requests are carried out by the lifecycle run (lifecycle/erase.c). */
#include "server/app.h"

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OP_ADD, OP_LIST, OP_CANCEL } op_t;

typedef struct {
    st_app_t *app;
    op_t op;
    char tenant[151];
    char *query;
    int64_t start, end;
    bool dry_run, force;
    char id[16];
    st_buf_t out;
    int status;
    char err[1024];
} dctx_t;

static void dctx_free(dctx_t *c)
{
    free(c->query);
    st_buf_free(&c->out);
    free(c);
}

/* Loki's delete API times: RFC3339, or exactly 10 digits of Unix seconds; millisecond precision.
 * Empty means now. */
static int parse_delete_time(const char *s, int64_t now, int64_t *out)
{
    if (s == NULL || s[0] == '\0') {
        *out = now / 1000000 * 1000000;
        return 0;
    }
    size_t n = strlen(s);
    if (n == 10 && strspn(s, "0123456789") == 10) {
        *out = strtoll(s, NULL, 10) * ST_NS_PER_SEC;
        return 0;
    }
    int64_t t;
    if (st_parse_rfc3339(st_cstr(s), &t) < 0) return ST_EPARSE;
    *out = t / 1000000 * 1000000;
    return 0;
}

static void work(st_http_req_t *r, void *arg)
{
    (void)r;
    dctx_t *c = arg;
    st_app_t *app = c->app;
    int rc;
    switch (c->op) {
    case OP_LIST:
        rc = st_lc_delete_list(app->index, c->tenant, &c->out);
        c->status = rc < 0 ? 500 : 200;
        if (rc < 0) snprintf(c->err, sizeof c->err, "%s", st_strerror(rc));
        break;
    case OP_CANCEL:
        rc = st_lc_delete_cancel(app->index, c->tenant, c->id, c->force, c->err, sizeof c->err);
        c->status = rc == 0 ? 204 : rc == ST_ENOTFOUND ? 404 : rc == ST_EBADSTATE ? 400 : 500;
        if (c->status == 500) snprintf(c->err, sizeof c->err, "%s", st_strerror(rc));
        break;
    case OP_ADD:
        if (c->dry_run) {
            rc = st_lc_delete_preview(app->lc, app->index, c->tenant, st_cstr(c->query), c->start, c->end,
                                      &c->out, c->err, sizeof c->err);
            c->status = rc == 0 ? 200 : rc == ST_EPARSE ? 400 : 500;
        } else {
            rc = st_lc_delete_add(app->lc, app->index, c->tenant, st_cstr(c->query), c->start, c->end,
                                  st_now_ns(), c->id, c->err, sizeof c->err);
            c->status = rc == 0 ? 204 : rc == ST_EPARSE || rc == ST_EBADSTATE ? 400 : 500;
            if (rc == 0)
                ST_LOG_INFO("deletion", "msg=\"delete request for user added\" delete_request_id=%s user=%s",
                            c->id, c->tenant);
        }
        if (c->status == 500) snprintf(c->err, sizeof c->err, "%s", st_strerror(rc));
        break;
    }
}

static void done(st_http_req_t *r, void *arg)
{
    dctx_t *c = arg;
    if (c->status >= 400) {
        st_http_respond_error(r, c->status, c->err, true);
    } else if (c->status == 204) {
        if (c->op == OP_ADD) st_http_add_header(r, "X-Delete-Request-ID", c->id);
        st_http_respond(r, 204, NULL, NULL, 0);
    } else {
        st_buf_putc(&c->out, '\n');
        st_http_respond_buf(r, c->status, "application/json", &c->out);
    }
    dctx_free(c);
}

static void handle_delete(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    char tenant[151];
    if (!st_api_tenant(app, r, tenant)) return;
    if (strcmp(app->cfg.limits_config.deletion_mode, "disabled") == 0) {
        st_http_respond_error(r, 403, "deletion is not available for this tenant", true);
        return;
    }
    st_http_form_t f = {0};
    if (st_http_form_parse(r, &f) < 0) {
        st_http_form_free(&f);
        st_http_respond_error(r, 400, "invalid form", true);
        return;
    }
    dctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_form_free(&f);
        st_http_respond_error(r, 503, "out of memory", true);
        return;
    }
    c->app = app;
    snprintf(c->tenant, sizeof c->tenant, "%s", tenant);
    const char *bad = NULL;
    char msg[256];
    if (r->method == ST_HTTP_GET) {
        c->op = OP_LIST;
    } else if (r->method == ST_HTTP_DELETE) {
        c->op = OP_CANCEL;
        const char *id = st_http_form_get(&f, "request_id");
        snprintf(c->id, sizeof c->id, "%s", id ? id : "");
        const char *force = st_http_form_get(&f, "force");
        c->force = force && strcmp(force, "true") == 0;
    } else {
        c->op = OP_ADD;
        const char *q = st_http_form_get(&f, "query"), *s = st_http_form_get(&f, "start"),
                   *e = st_http_form_get(&f, "end"), *mi = st_http_form_get(&f, "max_interval"),
                   *dry = st_http_form_get(&f, "dry_run");
        int64_t now = st_now_ns();
        c->dry_run = dry && strcmp(dry, "true") == 0;
        if (q == NULL || q[0] == '\0')
            bad = "query not set";
        else if ((c->query = strdup(q)) == NULL)
            bad = "out of memory";
        else if (s == NULL || s[0] == '\0')
            bad = "start time not set";
        else if (parse_delete_time(s, now, &c->start) < 0)
            bad = "invalid start time: require unix seconds or RFC3339 format";
        else if (parse_delete_time(e, now, &c->end) < 0)
            bad = "invalid end time: require unix seconds or RFC3339 format";
        else if (c->end > now)
            bad = "deletes in the future are not allowed";
        else if (c->start > c->end)
            bad = "start time can't be greater than end time";
        if (bad == NULL) {
            /* max_interval only matters for requests with line filters: Loki checks it there */
            st_delexpr_t *d = NULL;
            char perr[128];
            if (st_delexpr_parse(st_cstr(c->query), &d, perr, sizeof perr) < 0) {
                bad = "invalid query expression";
            } else if (st_delexpr_has_filters(d)) {
                int64_t span = c->end - c->start, lim = app->cfg.compactor.delete_max_interval_ns, iv;
                char dur[64];
                if (mi && mi[0]) {
                    if (st_parse_go_duration(st_cstr(mi), &iv) < 0 || iv < ST_NS_PER_SEC) {
                        bad = "invalid max_interval: valid time units are 's', 'm', 'h'";
                    } else if (lim && iv > lim) {
                        st_format_go_duration(lim, dur);
                        snprintf(msg, sizeof msg, "max_interval can't be greater than %s", dur);
                        bad = msg;
                    } else if (iv > span) {
                        st_format_go_duration(span, dur);
                        snprintf(msg, sizeof msg,
                                 "max_interval can't be greater than the interval to be deleted (%s)", dur);
                        bad = msg;
                    }
                } else if (span < ST_NS_PER_SEC) {
                    bad = "difference between start time and end time must be at least one second";
                }
            }
            st_delexpr_free(d);
        }
    }
    st_http_form_free(&f);
    if (bad) {
        st_http_respond_error(r, 400, bad, true);
        dctx_free(c);
        return;
    }
    if (st_http_queue_work(r, work, done, c) != 0) {
        dctx_free(c);
        st_http_respond_error(r, 503, "server busy; retry later", true);
    }
}

int st_api_register_delete(st_app_t *app)
{
    return st_http_route(app->http, ST_HTTP_GET | ST_HTTP_POST | ST_HTTP_PUT | ST_HTTP_DELETE,
                         "/loki/api/v1/delete", handle_delete, app);
}
