/* api_reports.c: the compliance API (docs/compliance.md): GET /strata/api/v1/reports/retention and
 * GET /strata/api/v1/reports/deletions, scoped to the request's tenant (st_api_tenant), evaluated on the
 * thread pool; and st_api_audit_query, the audit record of a read of a tenant's data, which the query,
 * meta and tail handlers call. */
#include "server/app.h"

#include "audit/audit.h"
#include "common/err.h"
#include "common/timeutil.h"
#include "objstore/objstore.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Who sent the request: the user of a Basic credential, a short hash of a Bearer token (never the
 * secret), or "" without authentication. */
static void identity_of(st_app_t *app, st_http_req_t *r, char *out, size_t cap)
{
    out[0] = '\0';
    st_str_t h;
    if (app->auth == NULL || !st_http_header(r, "Authorization", &h)) return;
    if (h.n > 6 && strncasecmp(h.p, "Basic ", 6) == 0 && h.n - 6 < 1024) {
        unsigned char dec[800];
        int n = EVP_DecodeBlock(dec, (const unsigned char *)h.p + 6, (int)(h.n - 6));
        if (n <= 0) return;
        const unsigned char *colon = memchr(dec, ':', (size_t)n);
        if (colon) snprintf(out, cap, "basic:%.*s", (int)(colon - dec), (const char *)dec);
    } else if (h.n > 7 && strncasecmp(h.p, "Bearer ", 7) == 0) {
        char sha[ST_AUDIT_HASH_HEX];
        st_audit_sha256_hex(h.p + 7, h.n - 7, sha);
        snprintf(out, cap, "bearer:sha256:%.16s", sha);
    }
}

void st_api_audit_query(st_app_t *app, st_http_req_t *r, const char *tenant, const char *query, int64_t start,
                        int64_t end)
{
    if (st_audit_global() == NULL) return;
    char who[200], path[512];
    identity_of(app, r, who, sizeof who);
    snprintf(path, sizeof path, "%.*s", (int)r->path.n, r->path.p);
    st_audit_query(tenant, who, path, query ? query : "", start, end, r->remote_addr ? r->remote_addr : "");
}

typedef struct {
    st_app_t *app;
    char tenant[151];
    char policy[64];
    bool deletions;
    st_report_opts_t o;
    st_report_format_t fmt;
    int64_t from, to;
    st_buf_t out;
    size_t count;
    int status;
    char err[256];
} rctx_t;

static void report_work(st_http_req_t *r, void *arg)
{
    (void)r;
    rctx_t *c = arg;
    int rc = c->deletions ? st_report_deletions(&c->app->cfg, c->app->lc, c->app->index, c->tenant, c->from,
                                                c->to, c->fmt, &c->out, &c->count)
                          : st_report_retention(&c->app->cfg, c->app->lc, c->app->index, &c->o, c->fmt,
                                                &c->out, &c->count);
    if (rc < 0) {
        c->status = 500;
        snprintf(c->err, sizeof c->err, "report failed: %s", st_s3_strerror(rc));
    } else {
        c->status = 200;
    }
}

static void report_done(st_http_req_t *r, void *arg)
{
    rctx_t *c = arg;
    if (c->status != 200) {
        st_http_respond_error(r, c->status, c->err, true);
    } else {
        char n[32];
        snprintf(n, sizeof n, "%zu", c->count);
        st_http_add_header(r, c->deletions ? "X-Strata-Deletions" : "X-Strata-Violations", n);
        const char *ct = c->fmt == ST_REPORT_CSV    ? "text/csv; charset=utf-8"
                         : c->fmt == ST_REPORT_HTML ? "text/html; charset=utf-8"
                                                    : "application/json";
        st_http_respond_buf(r, 200, ct, &c->out);
    }
    st_buf_free(&c->out);
    free(c);
}

static void handle_report(st_http_req_t *r, void *arg, bool deletions)
{
    st_app_t *app = arg;
    rctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_respond_error(r, 503, "out of memory", true);
        return;
    }
    c->app = app;
    c->deletions = deletions;
    if (!st_api_tenant(app, r, c->tenant)) {
        free(c);
        return;
    }
    st_http_form_t f = {0};
    const char *bad = NULL;
    if (st_http_form_parse(r, &f) < 0) bad = "invalid query string";
    const char *fmt = bad ? NULL : st_http_form_get(&f, "format");
    if (!bad && fmt && fmt[0] &&
        (st_report_format_parse(fmt, &c->fmt) < 0 || (deletions && c->fmt == ST_REPORT_HTML)))
        bad = deletions ? "format must be json or csv" : "format must be json, csv or html";
    c->o.tenant = c->tenant;
    c->o.grace_ns = -1;
    if (!bad && !deletions) {
        const char *asof = st_http_form_get(&f, "as_of"), *pol = st_http_form_get(&f, "policy"),
                   *grace = st_http_form_get(&f, "grace"), *checks = st_http_form_get(&f, "object_checks");
        if (asof && asof[0] && st_parse_query_time(st_cstr(asof), &c->o.as_of) < 0) bad = "invalid as_of";
        if (!bad && grace && grace[0] && st_parse_prom_duration(st_cstr(grace), &c->o.grace_ns) < 0)
            bad = "invalid grace (e.g. 24h)";
        if (!bad && pol && pol[0]) {
            bool known = false;
            for (int i = 0; app->lc && i < app->lc->npolicies; i++)
                known |= strcmp(app->lc->policies[i].name, pol) == 0;
            if (!known) bad = "no such policy";
            snprintf(c->policy, sizeof c->policy, "%s", pol);
            c->o.policy = c->policy;
        }
        c->o.skip_objects = checks && strcmp(checks, "false") == 0;
        c->o.skip_cloudwatch = c->o.skip_objects;
    } else if (!bad) {
        const char *from = st_http_form_get(&f, "from"), *to = st_http_form_get(&f, "to");
        c->to = st_now_ns();
        if (from == NULL || st_parse_query_time(st_cstr(from), &c->from) < 0)
            bad = "from is required (RFC3339 or Unix time)";
        else if (to && to[0] && st_parse_query_time(st_cstr(to), &c->to) < 0)
            bad = "invalid to";
    }
    st_http_form_free(&f);
    if (bad) {
        free(c);
        st_http_respond_error(r, 400, bad, true);
        return;
    }
    st_api_audit_query(app, r, c->tenant, deletions ? "report:deletions" : "report:retention",
                       deletions ? c->from : c->o.as_of, deletions ? c->to : c->o.as_of);
    if (st_http_queue_work(r, report_work, report_done, c) != 0) {
        free(c);
        st_http_respond_error(r, 503, "server busy; retry later", true);
    }
}

static void handle_retention(st_http_req_t *r, void *arg)
{
    handle_report(r, arg, false);
}
static void handle_deletions(st_http_req_t *r, void *arg)
{
    handle_report(r, arg, true);
}

int st_api_register_reports(st_app_t *app)
{
    ST_TRY(st_http_route(app->http, ST_HTTP_GET, "/strata/api/v1/reports/retention", handle_retention, app));
    return st_http_route(app->http, ST_HTTP_GET, "/strata/api/v1/reports/deletions", handle_deletions, app);
}
