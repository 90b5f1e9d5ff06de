/* api_meta.c: Loki's index and Drilldown-era read endpoints (index/stats, index/volume(_range),
 * detected_labels, detected_fields, detected_field values, patterns, drilldown-limits, format_query),
 * the legacy /api/prom query/label/series aliases and /config with ?mode=defaults|diff(s). Parameters
 * are checked on the loop with Loki's rules and texts; evaluation runs on the thread pool. */
#include "server/app.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int st_api_register_meta(st_app_t *app);
int st_api_register_tail(st_app_t *app);
bool st_api_categorize(const st_http_req_t *r);
bool st_api_bounds(st_http_req_t *r, const st_http_form_t *f, int64_t *start, int64_t *end);
bool st_api_int(st_http_req_t *r, const char *v, long def, long *out);

/* ---- parameters (shared with api_tail.c) ------------------------------------------------------------ */

bool st_api_categorize(const st_http_req_t *r)
{
    st_str_t v;
    if (!st_http_header(r, "X-Loki-Response-Encoding-Flags", &v)) return false;
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

/* Go's strconv.Atoi, with its error text on failure (400). */
bool st_api_int(st_http_req_t *r, const char *v, long def, long *out)
{
    if (v == NULL || v[0] == '\0') {
        *out = def;
        return true;
    }
    char *end;
    errno = 0;
    long l = strtol(v, &end, 10);
    if (*end != '\0' || end == v || errno != 0 || v[0] == ' ' || v[0] == '\t') {
        char msg[512];
        snprintf(msg, sizeof msg, "strconv.Atoi: parsing \"%.200s\": %s", v,
                 errno == ERANGE ? "value out of range" : "invalid syntax");
        st_http_respond_error(r, 400, msg, false);
        return false;
    }
    *out = l;
    return true;
}

static bool parse_time(st_http_req_t *r, const char *v, int64_t def, const char *what, int64_t *out)
{
    if (v == NULL || v[0] == '\0') {
        *out = def;
        return true;
    }
    if (st_parse_query_time(st_cstr(v), out) == 0) return true;
    char msg[512];
    snprintf(msg, sizeof msg,
             "could not parse '%s' parameter: strconv.ParseInt: parsing \"%.200s\": invalid syntax", what, v);
    st_http_respond_error(r, 400, msg, false);
    return false;
}

/* Loki's determineBounds: end = now, start = min(end, now) - since (1h); texts of its errors. */
bool st_api_bounds(st_http_req_t *r, const st_http_form_t *f, int64_t *start, int64_t *end)
{
    int64_t now = st_now_ns();
    int64_t since = 3600 * ST_NS_PER_SEC;
    const char *s = st_http_form_get(f, "since");
    if (s && s[0] && st_parse_prom_duration(st_cstr(s), &since) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "could not parse 'since' parameter: not a valid duration string: \"%.200s\"", s);
        st_http_respond_error(r, 400, msg, false);
        return false;
    }
    if (!parse_time(r, st_http_form_get(f, "end"), now, "end", end)) return false;
    int64_t base = *end < now ? *end : now;
    return parse_time(r, st_http_form_get(f, "start"), base - since, "start", start);
}

static bool check_order(st_http_req_t *r, int64_t start, int64_t end)
{
    if (end >= start) return true;
    st_http_respond_error(r, 400, "end timestamp must not be before or equal to start time", false);
    return false;
}

static bool check_length(st_app_t *app, st_http_req_t *r, int64_t start, int64_t end)
{
    int64_t max = app->cfg.limits_config.max_query_length_ns;
    if (max <= 0 || end - start <= max) return true;
    char a[64], b[64], msg[256];
    st_format_go_duration(end - start, a);
    st_format_prom_duration(max, b);
    snprintf(msg, sizeof msg, "the query time range exceeds the limit (query length: %s, limit: %s)", a, b);
    st_http_respond_error(r, 400, msg, false);
    return false;
}

/* step: a float of seconds or a Prometheus duration; default max(floor(range / 250 s), 1 s). */
static bool parse_step(st_http_req_t *r, const st_http_form_t *f, int64_t start, int64_t end, int64_t *step)
{
    const char *s = st_http_form_get(f, "step");
    if (s == NULL || s[0] == '\0') {
        int64_t secs = (end - start) / ST_NS_PER_SEC / 250;
        *step = (secs > 1 ? secs : 1) * ST_NS_PER_SEC;
        return true;
    }
    if (st_parse_seconds_or_duration(st_cstr(s), step) < 0) {
        char msg[512];
        snprintf(msg, sizeof msg, "cannot parse \"%.200s\" to a valid duration", s);
        st_http_respond_error(r, 400, msg, false);
        return false;
    }
    if (*step <= 0) {
        st_http_respond_error(
            r, 400, "zero or negative query resolution step widths are not accepted. Try a positive integer",
            false);
        return false;
    }
    if ((end - start) / *step > 11000) {
        st_http_respond_error(
            r, 400,
            "exceeded maximum resolution of 11,000 points per time series. Try increasing the value of "
            "the step parameter",
            false);
        return false;
    }
    return true;
}

static bool positive_limit(st_http_req_t *r, const char *v, long def, long *out)
{
    if (!st_api_int(r, v, def, out)) return false;
    if (*out > 0) return true;
    st_http_respond_error(r, 400, "limit must be a positive value", false);
    return false;
}

/* ---- requests ------------------------------------------------------------------------------------- */

typedef enum {
    M_STATS,
    M_VOLUME,
    M_DLABELS,
    M_DFIELDS,
    M_PATTERNS,
    M_LEGACY_QUERY,
    M_LEGACY_LABELS,
    M_LEGACY_VALUES,
    M_LEGACY_SERIES,
} mkind_t;

typedef struct {
    st_app_t *app;
    mkind_t kind;
    char tenant[151];
    char *query; /* owned */
    char *name;  /* owned: label or field name */
    int64_t start, end, step;
    long limit, line_limit;
    bool by_labels;
    st_str_t *targets;
    size_t ntargets;
    char *targets_text; /* owned backing of targets */
    st_str_t *sel;
    char **selbuf;
    size_t nsel;
    st_query_t q;
    st_buf_t out;
    st_query_error_t err;
    int rc;
} mctx_t;

static void mctx_free(mctx_t *c)
{
    free(c->query);
    free(c->name);
    free(c->targets);
    free(c->targets_text);
    for (size_t i = 0; i < c->nsel; i++) free(c->selbuf[i]);
    free(c->selbuf);
    free(c->sel);
    st_buf_free(&c->out);
    st_query_error_free(&c->err);
    free(c);
}

/* Copies a JSON response's "data" member as {"values": data} (legacy label responses). */
static int legacy_values(st_buf_t *in, st_buf_t *out)
{
    st_json_t j;
    st_json_init(&j, in->data, in->len);
    st_buf_t ks = ST_BUF_INIT;
    st_str_t k, raw = st_str("[]", 2);
    int rc = st_json_object_begin(&j);
    while (rc >= 0 && (rc = st_json_next_key(&j, &k, &ks)) == 1)
        rc = st_str_eqc(k, "data") ? st_json_skip(&j, &raw) : st_json_skip(&j, NULL);
    st_buf_free(&ks);
    if (rc < 0) return rc;
    st_buf_puts(out, "{\"values\":");
    st_buf_append(out, raw.p, raw.n);
    return st_buf_puts(out, "}");
}

static void work(st_http_req_t *r, void *arg)
{
    (void)r;
    mctx_t *c = arg;
    st_querier_t *q = c->app->querier;
    st_str_t query = st_cstr(c->query ? c->query : "");
    switch (c->kind) {
    case M_STATS:
        c->rc = st_query_index_stats(q, c->tenant, query, c->start, c->end, &c->out, &c->err);
        break;
    case M_VOLUME: {
        st_volume_req_t v = {.tenant = c->tenant,
                             .query = query,
                             .start = c->start,
                             .end = c->end,
                             .step_ns = c->step,
                             .limit = (int)c->limit,
                             .target_labels = c->targets,
                             .ntarget = c->ntargets,
                             .by_labels = c->by_labels};
        c->rc = st_query_volume(q, &v, &c->out, &c->err);
        break;
    }
    case M_DLABELS:
        c->rc = st_query_detected_labels(q, c->tenant, query, c->start, c->end, &c->out, &c->err);
        break;
    case M_DFIELDS: {
        st_fields_req_t f = {.tenant = c->tenant,
                             .query = query,
                             .start = c->start,
                             .end = c->end,
                             .line_limit = (int)c->line_limit,
                             .limit = (int)c->limit,
                             .values = c->name != NULL,
                             .field = st_cstr(c->name ? c->name : "")};
        c->rc = st_query_detected_fields(q, &f, &c->out, &c->err);
        break;
    }
    case M_PATTERNS: {
        st_patterns_req_t p = {
            .tenant = c->tenant, .query = query, .start = c->start, .end = c->end, .step_ns = c->step};
        c->rc = st_query_patterns(q, &p, &c->out, &c->err);
        break;
    }
    case M_LEGACY_QUERY: c->rc = st_query_legacy(q, &c->q, &c->out, &c->err); break;
    case M_LEGACY_LABELS:
    case M_LEGACY_VALUES: {
        st_buf_t v1 = ST_BUF_INIT;
        c->rc = c->kind == M_LEGACY_LABELS
                    ? st_query_label_names(q, c->tenant, c->start, c->end, query, &v1, &c->err)
                    : st_query_label_values(q, c->tenant, st_cstr(c->name), c->start, c->end, query, &v1,
                                            &c->err);
        if (c->rc == 0 && (c->rc = legacy_values(&v1, &c->out)) < 0) c->err.status = 500;
        st_buf_free(&v1);
        break;
    }
    case M_LEGACY_SERIES:
        c->rc = st_query_series(q, c->tenant, c->sel, c->nsel, c->start, c->end, &c->out, &c->err);
        break;
    }
}

static void done(st_http_req_t *r, void *arg)
{
    mctx_t *c = arg;
    if (c->rc < 0) {
        int status = c->err.status ? c->err.status : 500;
        st_http_respond_error(r, status, c->err.msg.len ? st_buf_cstr(&c->err.msg) : st_strerror(c->rc),
                              false);
    } else {
        st_http_respond_buf(r, 200, "application/json; charset=utf-8", &c->out);
    }
    mctx_free(c);
}

static void run(st_http_req_t *r, mctx_t *c)
{
    st_api_audit_query(c->app, r, c->tenant, c->query, c->start, c->end); /* audit trail */
    if (st_http_queue_work(r, work, done, c) != 0) {
        st_http_respond_error(r, 503, "server busy; retry later", false);
        mctx_free(c);
    }
}

/* Tenant, form and the common range parameters. Returns NULL after answering. */
static mctx_t *begin(st_app_t *app, st_http_req_t *r, mkind_t kind, st_http_form_t *f, bool range)
{
    mctx_t *c = calloc(1, sizeof *c);
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
    const char *q = st_http_form_get(f, "query");
    if ((c->query = strdup(q ? q : "")) == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        mctx_free(c);
        return NULL;
    }
    if (range && (!st_api_bounds(r, f, &c->start, &c->end) || !check_order(r, c->start, c->end) ||
                  !check_length(app, r, c->start, c->end))) {
        mctx_free(c);
        return NULL;
    }
    return c;
}

static void handle_stats(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_STATS, &f, true);
    st_http_form_free(&f);
    if (c) run(r, c);
}

static bool volume_params(st_http_req_t *r, const st_http_form_t *f, mctx_t *c)
{
    long l;
    if (!st_api_int(r, st_http_form_get(f, "limit"), 100, &l)) return false;
    if (l == 0) l = 100;
    if (l < 0) {
        st_http_respond_error(r, 400, "limit must be a positive value", false);
        return false;
    }
    c->limit = l;
    const char *agg = st_http_form_get(f, "aggregateBy");
    if (agg && agg[0] && strcmp(agg, "series") != 0 && strcmp(agg, "labels") != 0) {
        st_http_respond_error(r, 400, "invalid aggregation option", false);
        return false;
    }
    c->by_labels = agg && strcmp(agg, "labels") == 0;
    const char *tl = st_http_form_get(f, "targetLabels");
    if (tl && tl[0]) {
        if ((c->targets_text = strdup(tl)) == NULL) return false;
        size_t n = 1;
        for (const char *p = tl; *p; p++) n += *p == ',';
        c->targets = calloc(n, sizeof *c->targets);
        if (c->targets == NULL) return false;
        char *save = NULL;
        for (char *t = strtok_r(c->targets_text, ",", &save); t; t = strtok_r(NULL, ",", &save))
            c->targets[c->ntargets++] = st_cstr(t);
    }
    return true;
}

static void handle_volume_common(st_http_req_t *r, st_app_t *app, bool range)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(app, r, M_VOLUME, &f, true);
    bool ok = c != NULL && volume_params(r, &f, c);
    if (ok && range) ok = parse_step(r, &f, c->start, c->end, &c->step);
    if (ok && c->query[0] == '\0') {
        /* the matchers are required: the parser's own text for an empty query */
        ok = false;
        st_http_respond_error(r, 400, "parse error : syntax error: unexpected $end", false);
    }
    st_http_form_free(&f);
    if (!ok) {
        if (c) mctx_free(c);
        return;
    }
    run(r, c);
}

static void handle_volume(st_http_req_t *r, void *arg)
{
    handle_volume_common(r, arg, false);
}

static void handle_volume_range(st_http_req_t *r, void *arg)
{
    handle_volume_common(r, arg, true);
}

static void handle_dlabels(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_DLABELS, &f, true);
    st_http_form_free(&f);
    if (c) run(r, c);
}

static void handle_dfields_common(st_http_req_t *r, st_app_t *app, bool values)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(app, r, M_DFIELDS, &f, true);
    bool ok = c != NULL && positive_limit(r, st_http_form_get(&f, "line_limit"), 100, &c->line_limit);
    if (ok) {
        const char *lim = st_http_form_get(&f, "limit");
        if (lim == NULL || lim[0] == '\0') lim = st_http_form_get(&f, "field_limit");
        ok = positive_limit(r, lim, 1000, &c->limit);
    }
    int64_t step;
    if (ok) ok = parse_step(r, &f, c->start, c->end, &step);
    long maxl = app->cfg.limits_config.max_entries_limit_per_query;
    if (ok && maxl > 0 && c->line_limit > maxl) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "max entries limit per query exceeded, limit > max_entries_limit_per_query (%ld > %ld)",
                 c->line_limit, maxl);
        st_http_respond_error(r, 400, msg, false);
        ok = false;
    }
    if (ok && values && (c->name = st_str_dup(st_http_path_param(r))) == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        ok = false;
    }
    st_http_form_free(&f);
    if (!ok) {
        if (c) mctx_free(c);
        return;
    }
    run(r, c);
}

static void handle_dfields(st_http_req_t *r, void *arg)
{
    handle_dfields_common(r, arg, false);
}

static void handle_dfield_values(st_http_req_t *r, void *arg)
{
    handle_dfields_common(r, arg, true);
}

static void handle_patterns(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_PATTERNS, &f, true);
    bool ok = c != NULL && parse_step(r, &f, c->start, c->end, &c->step);
    st_http_form_free(&f);
    if (!ok) {
        if (c) mctx_free(c);
        return;
    }
    run(r, c);
}

/* GET /loki/api/v1/drilldown-limits: the limits Logs Drilldown reads, as Loki's tenant limits JSON. */
static void handle_drilldown_limits(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    char tenant[151];
    if (!st_api_tenant(app, r, tenant)) return;
    const st_config_t *c = &app->cfg;
    char mql[64], qt[64], rma[64], cgp[64];
    st_format_prom_duration(c->limits_config.max_query_length_ns, mql);
    st_format_prom_duration(c->limits_config.query_timeout_ns, qt);
    st_format_prom_duration(c->limits_config.reject_old_samples_max_age_ns, rma);
    st_format_prom_duration(c->limits_config.creation_grace_period_ns, cgp);
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "{\"limits\":{\"discover_log_levels\":");
    st_buf_puts(&b, c->limits_config.discover_log_levels ? "true" : "false");
    st_buf_puts(&b, ",\"discover_service_name\":[");
    char names[sizeof c->limits_config.discover_service_name];
    snprintf(names, sizeof names, "%s", c->limits_config.discover_service_name);
    char *save = NULL;
    bool first = true;
    for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') t++;
        size_t n = strlen(t);
        while (n && t[n - 1] == ' ') t[--n] = '\0';
        if (n == 0) continue;
        if (!first) st_buf_putc(&b, ',');
        first = false;
        st_json_put_cstr(&b, t);
    }
    st_buf_puts(
        &b, "],\"log_level_fields\":[\"level\",\"LEVEL\",\"Level\",\"severity\",\"SEVERITY\",\"Severity\","
            "\"lvl\",\"LVL\",\"Lvl\"]");
    st_buf_printf(&b, ",\"max_entries_limit_per_query\":%d", c->limits_config.max_entries_limit_per_query);
    st_buf_printf(&b, ",\"max_line_size\":%zu,\"max_line_size_truncate\":%s", c->limits_config.max_line_size,
                  c->limits_config.max_line_size_truncate ? "true" : "false");
    st_buf_printf(
        &b,
        ",\"max_query_bytes_read\":\"0B\",\"max_query_length\":\"%s\",\"max_query_lookback\":\"0s\","
        "\"max_query_range\":\"0s\",\"max_query_series\":%d",
        mql, c->limits_config.max_query_series);
    st_buf_puts(&b, ",\"metric_aggregation_enabled\":false,\"pattern_persistence_enabled\":false");
    st_buf_printf(&b,
                  ",\"query_timeout\":\"%s\",\"reject_old_samples\":%s,\"reject_old_samples_max_age\":\"%s\"",
                  qt, c->limits_config.reject_old_samples ? "true" : "false", rma);
    st_buf_printf(&b, ",\"creation_grace_period\":\"%s\",\"retention_period\":\"0s\"", cgp);
    st_buf_printf(
        &b, ",\"max_label_names_per_series\":%d,\"max_label_name_length\":%d,\"max_label_value_length\":%d",
        c->limits_config.max_label_names_per_series, c->limits_config.max_label_name_length,
        c->limits_config.max_label_value_length);
    st_buf_printf(&b, ",\"max_global_streams_per_user\":%d,\"ingestion_rate_mb\":",
                  c->limits_config.max_global_streams_per_user);
    st_json_put_float_str(&b, c->limits_config.ingestion_rate_mb);
    st_buf_puts(&b, ",\"ingestion_burst_size_mb\":");
    st_json_put_float_str(&b, c->limits_config.ingestion_burst_size_mb);
    st_buf_puts(&b, ",\"volume_enabled\":true,\"volume_max_series\":1000}");
    st_buf_puts(&b, ",\"pattern_ingester_enabled\":true,\"version\":\"" ST_VERSION "\"}");
    st_http_respond_buf(r, 200, "application/json", &b);
    st_buf_free(&b);
}

/* GET|POST /loki/api/v1/format_query (no tenant, as in Loki). */
static void handle_format(st_http_req_t *r, void *arg)
{
    (void)arg;
    st_http_form_t f = {0};
    if (st_http_form_parse(r, &f) < 0) {
        st_http_respond_error(r, 400, "invalid query string or form body", false);
        return;
    }
    const char *q = st_http_form_get(&f, "query");
    st_buf_t out = ST_BUF_INIT;
    st_query_error_t err = {0};
    int rc = st_query_format(st_cstr(q ? q : ""), &out, &err);
    st_http_form_free(&f);
    if (rc < 0 && out.len == 0) {
        st_http_respond_error(r, err.status ? err.status : 500, st_buf_cstr(&err.msg), false);
    } else {
        st_buf_putc(&out, '\n'); /* json.Encoder */
        st_http_respond_buf(r, rc < 0 ? 400 : 200, "application/json; charset=utf-8", &out);
    }
    st_buf_free(&out);
    st_query_error_free(&err);
}

/* ---- legacy /api/prom ------------------------------------------------------------------------------ */

static void handle_legacy_query(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    st_http_form_t f = {0};
    mctx_t *c = begin(app, r, M_LEGACY_QUERY, &f, true);
    bool ok = c != NULL && check_order(r, c->start, c->end);
    long limit = 100;
    if (ok) ok = positive_limit(r, st_http_form_get(&f, "limit"), 100, &limit);
    long maxl = app->cfg.limits_config.max_entries_limit_per_query;
    if (ok && maxl > 0 && limit > maxl) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "max entries limit per query exceeded, limit > max_entries_limit_per_query (%ld > %ld)",
                 limit, maxl);
        st_http_respond_error(r, 400, msg, false);
        ok = false;
    }
    bool forward = false;
    if (ok) {
        const char *d = st_http_form_get(&f, "direction");
        if (d && d[0] && strcasecmp(d, "forward") == 0)
            forward = true;
        else if (d && d[0] && strcasecmp(d, "backward") != 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "invalid direction '%.100s'", d);
            st_http_respond_error(r, 400, msg, false);
            ok = false;
        }
    }
    const char *re = ok ? st_http_form_get(&f, "regexp") : NULL;
    if (ok && re && re[0]) {
        /* the deprecated regexp parameter becomes a |~ line filter */
        st_buf_t q = ST_BUF_INIT;
        st_buf_puts(&q, c->query);
        st_buf_puts(&q, " |~ ");
        st_json_put_cstr(&q, re);
        free(c->query);
        st_buf_cstr(&q);
        c->query = st_buf_steal(&q, NULL);
        if (c->query == NULL) ok = false;
    }
    st_http_form_free(&f);
    if (!ok) {
        if (c) mctx_free(c);
        return;
    }
    c->q = (st_query_t){.tenant = c->tenant,
                        .query = st_cstr(c->query),
                        .start = c->start,
                        .end = c->end,
                        .limit = (int)limit,
                        .forward = forward};
    run(r, c);
}

static void handle_legacy_labels(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_LEGACY_LABELS, &f, true);
    st_http_form_free(&f);
    if (c) run(r, c);
}

static void handle_legacy_values(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_LEGACY_VALUES, &f, true);
    st_http_form_free(&f);
    if (c == NULL) return;
    if ((c->name = st_str_dup(st_http_path_param(r))) == NULL) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        mctx_free(c);
        return;
    }
    run(r, c);
}

static void handle_legacy_series(st_http_req_t *r, void *arg)
{
    st_http_form_t f = {0};
    mctx_t *c = begin(arg, r, M_LEGACY_SERIES, &f, true);
    if (c == NULL) {
        st_http_form_free(&f);
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < f.n; i++)
        n += strcmp(f.v[i].key, "match[]") == 0 || strcmp(f.v[i].key, "match") == 0;
    c->sel = calloc(n ? n : 1, sizeof *c->sel);
    c->selbuf = calloc(n ? n : 1, sizeof *c->selbuf);
    bool ok = c->sel && c->selbuf;
    for (size_t i = 0; i < f.n && ok; i++) {
        if (strcmp(f.v[i].key, "match[]") != 0 && strcmp(f.v[i].key, "match") != 0) continue;
        if ((c->selbuf[c->nsel] = st_str_dup(st_str(f.v[i].value, f.v[i].value_len))) == NULL)
            ok = false;
        else {
            c->sel[c->nsel] = st_str(c->selbuf[c->nsel], f.v[i].value_len);
            c->nsel++;
        }
    }
    st_http_form_free(&f);
    if (!ok) {
        st_http_respond_error(r, 503, "out of memory; retry later", false);
        mctx_free(c);
        return;
    }
    run(r, c);
}

/* ---- /config -------------------------------------------------------------------------------------- */

/* One leaf of the YAML that st_config_to_yaml writes: "key: value", or a header whose block is a list
 * (kept whole), with the path of its ancestors' keys. */
typedef struct {
    char path[512];
    const char *text; /* the leaf's lines */
    size_t len;
    int anc[8]; /* line index of each ancestor header, -1 when none */
    int nanc;
} yleaf_t;

typedef struct {
    yleaf_t *v;
    size_t n, cap;
    const char **lines;
    size_t *lens, nlines;
} ydoc_t;

static int indent_of(const char *l, size_t n)
{
    int i = 0;
    while ((size_t)i < n && l[i] == ' ') i++;
    return i;
}

static void ydoc_free(ydoc_t *d)
{
    free(d->v);
    free(d->lines);
    free(d->lens);
}

static int ydoc_parse(const char *y, ydoc_t *d)
{
    memset(d, 0, sizeof *d);
    size_t cap = 16;
    for (const char *p = y; *p; p++) cap += *p == '\n';
    d->lines = malloc(cap * sizeof *d->lines);
    d->lens = malloc(cap * sizeof *d->lens);
    d->v = malloc(cap * sizeof *d->v);
    if (d->lines == NULL || d->lens == NULL || d->v == NULL) return -ENOMEM;
    for (const char *p = y; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        d->lines[d->nlines] = p;
        d->lens[d->nlines++] = n;
        p += n + (e ? 1 : 0);
    }
    int stack_line[8], stack_ind[8], depth = 0;
    for (size_t i = 0; i < d->nlines; i++) {
        const char *l = d->lines[i];
        size_t n = d->lens[i];
        if (n == 0 || l[indent_of(l, n)] == '#') continue;
        int ind = indent_of(l, n);
        while (depth > 0 && stack_ind[depth - 1] >= ind) depth--;
        const char *colon = memchr(l, ':', n);
        bool header = n > 0 && l[n - 1] == ':';
        bool list = header && i + 1 < d->nlines && indent_of(d->lines[i + 1], d->lens[i + 1]) > ind &&
                    d->lines[i + 1][indent_of(d->lines[i + 1], d->lens[i + 1])] == '-';
        if (header && !list) {
            if (depth < 8) {
                stack_line[depth] = (int)i;
                stack_ind[depth++] = ind;
            }
            continue;
        }
        yleaf_t *lf = &d->v[d->n++];
        memset(lf, 0, sizeof *lf);
        size_t pl = 0;
        for (int k = 0; k < depth; k++) {
            const char *h = d->lines[stack_line[k]];
            pl +=
                (size_t)snprintf(lf->path + pl, sizeof lf->path - pl, "%.*s/",
                                 (int)(d->lens[stack_line[k]] - 1 - (size_t)stack_ind[k]), h + stack_ind[k]);
            if (pl >= sizeof lf->path) pl = sizeof lf->path - 1;
            lf->anc[lf->nanc++] = stack_line[k];
        }
        size_t kl = colon ? (size_t)(colon - l) - (size_t)ind : n - (size_t)ind;
        snprintf(lf->path + pl, sizeof lf->path - pl, "%.*s", (int)kl, l + ind);
        lf->text = l;
        lf->len = n;
        if (list) { /* the header and every deeper line */
            size_t j = i + 1;
            while (j < d->nlines && d->lens[j] > 0 && indent_of(d->lines[j], d->lens[j]) > ind) j++;
            lf->len = (size_t)(d->lines[j - 1] + d->lens[j - 1] - l);
            i = j - 1;
        }
    }
    return 0;
}

/* The leaves of cur that differ from def (or that def lacks), each under its ancestor headers. */
static int yaml_diff(const char *cur, const char *def, st_buf_t *out)
{
    ydoc_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    int rc = ydoc_parse(cur, &a);
    if (rc == 0) rc = ydoc_parse(def, &b);
    bool *printed = rc == 0 ? calloc(a.nlines ? a.nlines : 1, sizeof *printed) : NULL;
    if (printed == NULL) rc = -ENOMEM;
    for (size_t i = 0; rc == 0 && i < a.n; i++) {
        const yleaf_t *x = &a.v[i];
        bool same = false;
        for (size_t k = 0; k < b.n && !same; k++)
            same = strcmp(b.v[k].path, x->path) == 0 && b.v[k].len == x->len &&
                   memcmp(b.v[k].text, x->text, x->len) == 0;
        if (same) continue;
        for (int k = 0; k < x->nanc; k++) {
            int li = x->anc[k];
            if (printed[li]) continue;
            printed[li] = true;
            st_buf_append(out, a.lines[li], a.lens[li]);
            st_buf_putc(out, '\n');
        }
        st_buf_append(out, x->text, x->len);
        rc = st_buf_putc(out, '\n');
    }
    free(printed);
    ydoc_free(&a);
    ydoc_free(&b);
    return rc;
}

static void handle_config(st_http_req_t *r, void *arg)
{
    st_app_t *app = arg;
    if (!st_api_authorized(app, r)) return; /* as api_ops.c's /config */
    st_http_form_t f = {0};
    st_http_form_parse(r, &f);
    const char *mode = st_http_form_get(&f, "mode");
    st_config_t def;
    st_config_defaults(&def);
    char *y = NULL;
    if (mode && strcmp(mode, "defaults") == 0) {
        y = st_config_to_yaml(&def);
    } else if (mode && (strcmp(mode, "diff") == 0 || strcmp(mode, "diffs") == 0)) {
        char *cur = st_config_to_yaml(&app->cfg), *d = st_config_to_yaml(&def);
        if (cur && d) {
            st_buf_t b = ST_BUF_INIT;
            yaml_diff(cur, d, &b);
            y = b.len && st_buf_cstr(&b) ? st_buf_steal(&b, NULL) : strdup("{}\n");
            st_buf_free(&b);
        }
        free(cur);
        free(d);
    } else {
        y = st_config_to_yaml(&app->cfg);
    }
    st_http_form_free(&f);
    if (y == NULL) {
        st_http_respond_error(r, 500, "out of memory", true);
        return;
    }
    st_http_respond(r, 200, "text/plain; charset=utf-8", y, strlen(y));
    free(y);
}

int st_api_register_meta(st_app_t *app)
{
    unsigned gp = ST_HTTP_GET | ST_HTTP_POST;
    st_http_server_t *h = app->http;
    /* before api_ops.c's /config: this one also serves ?mode=defaults|diff */
    ST_TRY(st_http_route(h, ST_HTTP_GET, "/config", handle_config, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/index/stats", handle_stats, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/index/volume", handle_volume, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/index/volume_range", handle_volume_range, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/detected_labels", handle_dlabels, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/detected_fields", handle_dfields, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/detected_field/*/values", handle_dfield_values, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/patterns", handle_patterns, app));
    ST_TRY(st_http_route(h, ST_HTTP_GET, "/loki/api/v1/drilldown-limits", handle_drilldown_limits, app));
    ST_TRY(st_http_route(h, gp, "/loki/api/v1/format_query", handle_format, app));
    ST_TRY(st_http_route(h, gp, "/api/prom/query", handle_legacy_query, app));
    ST_TRY(st_http_route(h, gp, "/api/prom/label", handle_legacy_labels, app));
    ST_TRY(st_http_route(h, gp, "/api/prom/label/*/values", handle_legacy_values, app));
    ST_TRY(st_http_route(h, gp, "/api/prom/series", handle_legacy_series, app));
    return st_api_register_tail(app);
}
