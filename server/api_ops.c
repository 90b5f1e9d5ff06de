/* api_ops.c: operational endpoints (/ready, /metrics, buildinfo, /flush) and the tenant rule shared
 * by every API handler. */
#include "server/app.h"

#include "common/err.h"
#include "common/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ST_REVISION
#define ST_REVISION "unknown"
#endif

int st_api_register_push(st_app_t *app);
int st_api_register_query(st_app_t *app);
int st_api_register_meta(st_app_t *app);

static bool tenant_char_ok(unsigned char c)
{
    /* Loki/dskit: [A-Za-z0-9] and !-_.*'() */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!-_.*'()", c) != NULL;
}

static void unauthorized(st_http_req_t *r)
{
    st_http_add_header(r, "WWW-Authenticate", "Basic realm=\"strata\", charset=\"UTF-8\"");
    st_http_respond_error(r, 401, "unauthorized", true);
}

/* The credentials' tenant list, or NULL when no authentication is configured; false after a 401. */
static bool authenticate(st_app_t *app, st_http_req_t *r, const char **tenants)
{
    *tenants = NULL;
    if (app->auth == NULL) return true;
    st_str_t h;
    if (!st_http_header(r, "Authorization", &h) || st_auth_check(app->auth, h, tenants) < 0) {
        unauthorized(r);
        return false;
    }
    return true;
}

bool st_api_authorized(st_app_t *app, st_http_req_t *r)
{
    const char *tenants;
    return authenticate(app, r, &tenants);
}

bool st_api_tenant(st_app_t *app, st_http_req_t *r, char *out)
{
    const char *allowed;
    if (!authenticate(app, r, &allowed)) return false;
    bool single = false;
    char first[151] = "";
    if (!app->cfg.auth_enabled) {
        snprintf(out, 151, "%s", app->cfg.no_auth_tenant);
        if (allowed && !st_auth_allows(allowed, st_cstr(out), &single, first, sizeof first)) {
            st_http_respond_error(r, 403, "these credentials are not allowed for this tenant", true);
            return false;
        }
        return true;
    }
    st_str_t v;
    if (!st_http_header(r, "X-Scope-OrgID", &v) || v.n == 0) {
        /* credentials that name exactly one tenant imply it */
        if (allowed) {
            st_auth_allows(allowed, ST_STR(""), &single, first, sizeof first);
            if (single) {
                snprintf(out, 151, "%s", first);
                return true;
            }
        }
        st_http_respond_error(r, 401, "no org id", true);
        return false;
    }
    /* Loki's (dskit's) checks and texts, in its order: each '|'-separated ID is checked for
     * characters, then length, then "." and ".."; more than one ID is "multiple org IDs present". */
    char msg[1200] = "";
    size_t parts = 0;
    for (size_t a = 0, b; a <= v.n && msg[0] == '\0'; a = b + 1) {
        for (b = a; b < v.n && v.p[b] != '|'; b++) {}
        parts++;
        size_t bad = b;
        for (size_t i = a; i < b && bad == b; i++)
            if (!tenant_char_ok((unsigned char)v.p[i])) bad = i;
        if (bad < b) {
            /* Go's %c of the byte: a byte >= 0x80 prints as that code point */
            unsigned c = (unsigned char)v.p[bad];
            char ch[3] = {(char)c, 0, 0};
            if (c >= 0x80) {
                ch[0] = (char)(0xC0 | c >> 6);
                ch[1] = (char)(0x80 | (c & 0x3F));
            }
            snprintf(msg, sizeof msg, "tenant ID '%.*s' contains unsupported character '%s'",
                     (int)(b - a > 1024 ? 1024 : b - a), v.p + a, ch);
        } else if (b - a > 150) {
            snprintf(msg, sizeof msg, "tenant ID is too long: max 150 characters");
        } else if ((b - a == 1 && v.p[a] == '.') || (b - a == 2 && v.p[a] == '.' && v.p[a + 1] == '.')) {
            snprintf(msg, sizeof msg, "tenant ID is '.' or '..'");
        }
    }
    if (msg[0] == '\0' && parts > 1) snprintf(msg, sizeof msg, "multiple org IDs present");
    if (msg[0]) {
        st_http_respond_error(r, 400, msg, true);
        return false;
    }
    if (allowed && !st_auth_allows(allowed, v, &single, first, sizeof first)) {
        st_http_respond_error(r, 403, "these credentials are not allowed for this tenant", true);
        return false;
    }
    memcpy(out, v.p, v.n);
    out[v.n] = '\0';
    return true;
}

static void handle_ready(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    int s = atomic_load(&app->state);
    if (s == ST_APP_READY) st_http_respond(r, 200, "text/plain; charset=utf-8", "ready\n", 6);
    else if (s == ST_APP_STARTING) st_http_respond_error(r, 503, "Ingester not ready: starting", true);
    else st_http_respond_error(r, 503, "Ingester not ready: stopping", true);
}

static void handle_metrics(st_http_req_t *r, void *arg)
{
    (void)arg;
    st_buf_t b = ST_BUF_INIT;
    st_metrics_render(&b);
    st_http_respond_buf(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static void handle_buildinfo(st_http_req_t *r, void *arg)
{
    (void)arg;
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"version\":\"%s\",\"revision\":\"%s\",\"branch\":\"main\",\"buildUser\":\"\",\"buildDate\":\"%s\","
                     "\"goVersion\":\"\"}",
                     ST_VERSION, ST_REVISION, __DATE__);
    st_http_respond(r, 200, "application/json", body, (size_t)n);
}

typedef struct {
    st_app_t *app;
    int rc;
} flush_ctx_t;

static void flush_work(st_http_req_t *r, void *arg)
{
    (void)r;
    flush_ctx_t *c = arg;
    c->rc = st_ingester_flush(c->app->ingester);
}

static void flush_done(st_http_req_t *r, void *arg)
{
    flush_ctx_t *c = arg;
    if (c->rc < 0) st_http_respond_error(r, 503, "flush incomplete; see the server log", true);
    else st_http_respond(r, 204, NULL, NULL, 0);
    free(c);
}

/* POST /flush (as Loki's ingester): closes every head into an indexed chunk. */
static void handle_flush(st_http_req_t *r, void *arg)
{
    if (!st_api_authorized(arg, r)) return;
    flush_ctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_respond_error(r, 503, "out of memory", true);
        return;
    }
    c->app = arg;
    if (st_http_queue_work(r, flush_work, flush_done, c) != 0) {
        free(c);
        st_http_respond_error(r, 503, "server busy; retry later", true);
    }
}

int st_api_register(st_app_t *app)
{
    st_http_server_t *h = app->http;
    ST_TRY(st_api_register_meta(app)); /* index, Drilldown, legacy, tail, /config?mode= (api_meta.c) */
    ST_TRY(st_http_route(h, ST_HTTP_GET | ST_HTTP_HEAD, "/ready", handle_ready, app));
    ST_TRY(st_http_route(h, ST_HTTP_GET | ST_HTTP_HEAD, "/metrics", handle_metrics, app));
    ST_TRY(st_http_route(h, ST_HTTP_GET, "/loki/api/v1/status/buildinfo", handle_buildinfo, app));
    ST_TRY(st_http_route(h, ST_HTTP_GET | ST_HTTP_POST, "/flush", handle_flush, app));
    ST_TRY(st_api_register_push(app));
    ST_TRY(st_api_register_query(app));
    return 0;
}
