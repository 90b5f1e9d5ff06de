/* api_query.c: Loki's read endpoints: query_range, query, labels, label values, series (and their
 * legacy /api/prom aliases). Parameters are parsed and checked on the loop with Loki's rules and
 * texts; evaluation runs on the thread pool. GET and form POST are both accepted. */
#include "server/app.h"

#include "common/err.h"
#include "common/metrics.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

typedef enum { Q_RANGE, Q_INSTANT, Q_LABELS, Q_VALUES, Q_SERIES } qkind_t;

typedef struct {
    st_app_t *app;
    qkind_t kind;
    char tenant[151];
    st_query_t q;
    char *query;         /* owned text of query (or selector for labels) */
    char *name;          /* label name */
    st_str_t *selectors; /* series match[] */
    char **selbuf;
    size_t nsel;
    int64_t start, end;
    st_buf_t out;
    st_query_error_t err;
    int rc;
} qctx_t;

static st_metric_t *m_queries;

static void qctx_free(qctx_t *c)
{
    free(c->query);
    free(c->name);
    for (size_t i = 0; i < c->nsel; i++) free(c->selbuf[i]);
    free(c->selbuf);
    free(c->selectors);
    st_buf_free(&c->out);
    st_query_error_free(&c->err);
    free(c);
}

/* Go's strconv error text, which Loki returns for unparsable numbers and times. */
static void bad_number(st_http_req_t *r, const char *fn, const char *v)
{
    char msg[512];
    snprintf(msg, sizeof msg, "strconv.%s: parsing \"%.200s\": invalid syntax", fn, v);
    st_http_respond_error(r, 400, msg, false);
}

static bool get_time(st_http_req_t *r, const char *v, int64_t def, int64_t *out)
{
    if (v == NULL || v[0] == '\0') {
        *out = def;
        return true;
    }
    if (st_parse_query_time(st_cstr(v), out) == 0) return true;
    bad_number(r, "ParseInt", v);
    return false;
}

static bool get_duration(st_http_req_t *r, const char *v, int64_t *out)
{
    if (st_parse_seconds_or_duration(st_cstr(v), out) == 0) return true;
    char msg[512];
    snprintf(msg, sizeof msg, "cannot parse \"%.200s\" to a valid duration", v);
    st_http_respond_error(r, 400, msg, false);
    return false;
}

/* start/end/since with Loki's defaults: end = now, start = min(end, now) - since (1h). */
static bool get_bounds(st_http_req_t *r, const st_http_form_t *f, int64_t *start, int64_t *end)
{
    int64_t now = st_now_ns();
    if (!get_time(r, st_http_form_get(f, "end"), now, end)) return false;
    int64_t since = 3600 * ST_NS_PER_SEC;
    const char *s = st_http_form_get(f, "since");
    if (s && s[0] && st_parse_prom_duration(st_cstr(s), &since) < 0 && !get_duration(r, s, &since)) return false;
    int64_t base = *end < now ? *end : now;
    return get_time(r, st_http_form_get(f, "start"), base - since, start);
}

static void work(st_http_req_t *r, void *arg)
{
    (void)r;
    qctx_t *c = arg;
    st_querier_t *q = c->app->querier;
    switch (c->kind) {
    case Q_RANGE:
    case Q_INSTANT: c->rc = st_query_exec(q, &c->q, &c->out, &c->err); break;
    case Q_LABELS:
        c->rc = st_query_label_names(q, c->tenant, c->start, c->end, st_cstr(c->query ? c->query : ""), &c->out, &c->err);
        break;
    case Q_VALUES:
        c->rc = st_query_label_values(q, c->tenant, st_cstr(c->name), c->start, c->end, st_cstr(c->query ? c->query : ""),
                                      &c->out, &c->err);
        break;
    case Q_SERIES:
        c->rc = st_query_series(q, c->tenant, c->selectors, c->nsel, c->start, c->end, &c->out, &c->err);
        break;
    }
}

static void done(st_http_req_t *r, void *arg)
{
    qctx_t *c = arg;
    if (c->rc < 0) {
        int status = c->err.status ? c->err.status : 500;
        st_http_respond_error(r, status, st_buf_cstr(&c->err.msg), false);
    } else {
        st_http_respond_buf(r, 200, "application/json; charset=utf-8", &c->out);
    }
    qctx_free(c);
}

static void run(st_http_req_t *r, qctx_t *c)
{
    st_counter_inc(m_queries);
    st_api_audit_query(c->app, r, c->tenant, c->query ? c->query : c->nsel ? c->selbuf[0] : "", /* audit trail */
                       c->kind <= Q_INSTANT ? c->q.start : c->start, c->kind <= Q_INSTANT ? c->q.end : c->end);
    if (st_http_queue_work(r, work, done, c) != 0) {
        st_http_respond_error(r, 503, "server busy; retry later", false);
        qctx_free(c);
    }
}

static qctx_t *new_ctx(st_app_t *app, st_http_req_t *r, qkind_t kind, st_http_form_t *f)
{
    qctx_t *c = calloc(1, sizeof *c);
    if (c == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        return NULL;
    }
    c->app = app;
    c->kind = kind;
    if (!st_api_tenant(app, r, c->tenant)) {
        free(c);
        return NULL;
    }
    if (st_http_form_parse(r, f) < 0) {
        st_http_respond_error(r, 400, "invalid query string or form body", false);
        free(c);
        return NULL;
    }
    return c;
}

static bool get_limit(st_app_t *app, st_http_req_t *r, const st_http_form_t *f, int *out)
{
    const char *v = st_http_form_get(f, "limit");
    long l = 100;
    if (v && v[0]) {
        char *end;
        errno = 0;
        l = strtol(v, &end, 10);
        if (*end != '\0' || errno != 0 || end == v) {
            bad_number(r, "Atoi", v);
            return false;
        }
    }
    if (l <= 0) {
        st_http_respond_error(r, 400, "limit must be a positive value", false);
        return false;
    }
    int max = app->cfg.limits_config.max_entries_limit_per_query;
    if (max > 0 && l > max) {
        char msg[256];
        snprintf(msg, sizeof msg, "max entries limit per query exceeded, limit > max_entries_limit_per_query (%ld > %d)",
                 l, max);
        st_http_respond_error(r, 400, msg, false);
        return false;
    }
    *out = (int)l;
    return true;
}

static bool get_direction(st_http_req_t *r, const st_http_form_t *f, bool *forward)
{
    const char *v = st_http_form_get(f, "direction");
    *forward = false;
    if (v == NULL || v[0] == '\0' || strcasecmp(v, "backward") == 0) return true;
    if (strcasecmp(v, "forward") == 0) {
        *forward = true;
        return true;
    }
    char msg[256];
    snprintf(msg, sizeof msg, "invalid direction '%.100s'", v);
    st_http_respond_error(r, 400, msg, false);
    return false;
}

static bool check_length(st_app_t *app, st_http_req_t *r, int64_t start, int64_t end)
{
    int64_t max = app->cfg.limits_config.max_query_length_ns;
    if (max > 0 && end - start > max) {
        char a[64], b[64], msg[256];
        st_format_go_duration(end - start, a);
        st_format_prom_duration(max, b);
        snprintf(msg, sizeof msg, "the query time range exceeds the limit (query length: %s, limit: %s)", a, b);
        st_http_respond_error(r, 400, msg, false);
        return false;
    }
    return true;
}

static bool categorize(st_http_req_t *r)
{
    st_str_t v;
    if (!st_http_header(r, "X-Loki-Response-Encoding-Flags", &v)) return false;
    /* comma-separated flags, exact match */
    size_t i = 0;
    while (i < v.n) {
        size_t j = i;
        while (j < v.n && v.p[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && v.p[a] == ' ') a++;
        while (b > a && v.p[b - 1] == ' ') b--;
        if (b - a == 17 && memcmp(v.p + a, "categorize-labels", 17) == 0) return true;
        i = j + 1;
    }
    return false;
}

static void handle_range(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    qctx_t *c = new_ctx(app, r, Q_RANGE, &f);
    if (c == NULL) {
        st_http_form_free(&f);
        return;
    }
    const char *query = st_http_form_get(&f, "query");
    c->query = strdup(query ? query : "");
    int64_t start, end;
    bool ok = c->query != NULL && get_bounds(r, &f, &start, &end);
    if (ok && end < start) {
        st_http_respond_error(r, 400, "end timestamp must not be before or equal to start time", false);
        ok = false;
    }
    int limit = 100;
    bool forward = false;
    ok = ok && get_limit(app, r, &f, &limit) && get_direction(r, &f, &forward);
    int64_t step = 0, interval = 0;
    if (ok) {
        const char *s = st_http_form_get(&f, "step");
        if (s && s[0]) {
            ok = get_duration(r, s, &step);
        } else {
            int64_t secs = (end - start) / ST_NS_PER_SEC / 250;
            step = (secs > 1 ? secs : 1) * ST_NS_PER_SEC;
        }
        if (ok && step <= 0) {
            st_http_respond_error(r, 400,
                                  "zero or negative query resolution step widths are not accepted. Try a positive integer",
                                  false);
            ok = false;
        }
        if (ok && (end - start) / step > 11000) {
            st_http_respond_error(r, 400,
                                  "exceeded maximum resolution of 11,000 points per time series. Try increasing the value "
                                  "of the step parameter",
                                  false);
            ok = false;
        }
    }
    if (ok) {
        const char *iv = st_http_form_get(&f, "interval");
        if (iv && iv[0]) ok = get_duration(r, iv, &interval);
        if (ok && interval < 0) {
            st_http_respond_error(r, 400, "interval must be >= 0", false);
            ok = false;
        }
    }
    ok = ok && check_length(app, r, start, end);
    st_http_form_free(&f);
    if (!ok) {
        qctx_free(c);
        return;
    }
    c->q = (st_query_t){.tenant = c->tenant,
                        .query = st_cstr(c->query),
                        .start = start,
                        .end = end,
                        .step_ns = step,
                        .interval_ns = interval,
                        .limit = limit,
                        .forward = forward,
                        .instant = false,
                        .categorize_labels = categorize(r)};
    run(r, c);
}

static void handle_instant(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    qctx_t *c = new_ctx(app, r, Q_INSTANT, &f);
    if (c == NULL) {
        st_http_form_free(&f);
        return;
    }
    const char *query = st_http_form_get(&f, "query");
    c->query = strdup(query ? query : "");
    int limit = 100;
    bool forward = false;
    int64_t t = 0;
    bool ok = c->query != NULL && get_limit(app, r, &f, &limit) && get_time(r, st_http_form_get(&f, "time"), st_now_ns(), &t) &&
              get_direction(r, &f, &forward);
    st_http_form_free(&f);
    if (!ok) {
        qctx_free(c);
        return;
    }
    c->q = (st_query_t){.tenant = c->tenant,
                        .query = st_cstr(c->query),
                        .start = t,
                        .end = t,
                        .limit = limit,
                        .forward = forward,
                        .instant = true,
                        .categorize_labels = categorize(r)};
    run(r, c);
}

static bool meta_common(st_app_t *app, st_http_req_t *r, st_http_form_t *f, qctx_t *c)
{
    int64_t start, end;
    if (!get_bounds(r, f, &start, &end)) return false;
    if (end < start) {
        st_http_respond_error(r, 400, "end timestamp must not be before or equal to start time", false);
        return false;
    }
    if (!check_length(app, r, start, end)) return false;
    c->start = start;
    c->end = end;
    const char *q = st_http_form_get(f, "query");
    if (q && q[0] && (c->query = strdup(q)) == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        return false;
    }
    return true;
}

static void handle_labels(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    qctx_t *c = new_ctx(app, r, Q_LABELS, &f);
    if (c == NULL || !meta_common(app, r, &f, c)) {
        st_http_form_free(&f);
        if (c) qctx_free(c);
        return;
    }
    st_http_form_free(&f);
    run(r, c);
}

static void handle_values(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    qctx_t *c = new_ctx(app, r, Q_VALUES, &f);
    if (c == NULL || !meta_common(app, r, &f, c)) {
        st_http_form_free(&f);
        if (c) qctx_free(c);
        return;
    }
    st_http_form_free(&f);
    st_str_t name = st_http_path_param(r);
    c->name = st_str_dup(name);
    if (c->name == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        qctx_free(c);
        return;
    }
    run(r, c);
}

static void handle_series(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    qctx_t *c = new_ctx(app, r, Q_SERIES, &f);
    if (c == NULL || !meta_common(app, r, &f, c)) {
        st_http_form_free(&f);
        if (c) qctx_free(c);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < f.n; i++)
        if (strcmp(f.v[i].key, "match[]") == 0 || strcmp(f.v[i].key, "match") == 0) n++;
    c->selectors = calloc(n ? n : 1, sizeof *c->selectors);
    c->selbuf = calloc(n ? n : 1, sizeof *c->selbuf);
    bool ok = c->selectors && c->selbuf;
    for (size_t i = 0; i < f.n && ok; i++) {
        if (strcmp(f.v[i].key, "match[]") != 0 && strcmp(f.v[i].key, "match") != 0) continue;
        c->selbuf[c->nsel] = st_str_dup(st_str(f.v[i].value, f.v[i].value_len));
        if (c->selbuf[c->nsel] == NULL) ok = false;
        else {
            c->selectors[c->nsel] = st_str(c->selbuf[c->nsel], f.v[i].value_len);
            c->nsel++;
        }
    }
    st_http_form_free(&f);
    if (!ok) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        qctx_free(c);
        return;
    }
    run(r, c);
}

int st_api_register_query(st_app_t *app);
int st_api_register_query(st_app_t *app)
{
    m_queries = st_counter("strata_querier_requests_total", "Read requests evaluated.", NULL);
    unsigned gp = ST_HTTP_GET | ST_HTTP_POST;
    st_http_server_t *h = app->http;
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/query_range", handle_range, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/query", handle_instant, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/labels", handle_labels, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/label", handle_labels, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/label/*/values", handle_values, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/series", handle_series, app));
    return 0;
}
