/* cloudwatch.c: CloudWatch Logs as the lifecycle's hot tier (docs/cloudwatch.md). The
 * lifecycle.cloudwatch configuration, and one step of every run: (a) ship the chunks of chosen streams
 * to CloudWatch (PutLogEvents within its batch rules; progress per chunk in the index, an intent
 * before each request that the next run checks against CloudWatch, so no line goes twice and none is
 * skipped), (b) import chosen log groups into Strata through the run's ingest callback (a cursor per
 * CloudWatch stream, advanced only after the data is durable), (c) keep each group's retention in line
 * with the Strata policy of its data. It does not plan or move chunks between tiers (run.c does). */
#include "lifecycle/lifecycle_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "querier/querier.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

#define MOD                 "lifecycle"
#define LABELS_PLACEHOLDER  "__labels__"
#define INGEST_PRICE_PER_GB 0.50  /* CloudWatch Logs Standard ingestion, us-east-1 */
#define WINDOW_EVENTS       50000 /* events read ahead per shipped stream before sending */
#define WINDOW_BYTES        (16u << 20)
#define MAX_SAMPLES         8      /* events of a batch identified in its intent */
#define MAX_READ_PAGES      100000 /* GetLogEvents pages per stream and run (a runaway guard) */

/* ==== configuration ================================================================================== */

typedef struct {
    const st_config_t *cfg;
    yaml_document_t *doc;
    st_buf_t *err;
    int *nerr;
} cp_t;

static void cerr(cp_t *p, yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void cerr(cp_t *p, yaml_node_t *n, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if ((*p->nerr)++ > 0) st_buf_putc(p->err, '\n');
    int line = p->cfg->lifecycle.line + (n ? (int)n->start_mark.line : 0);
    st_buf_printf(p->err, "%s:%d: lifecycle.cloudwatch%s%s: %s",
                  p->cfg->lifecycle.file[0] ? p->cfg->lifecycle.file : "config", line, path[0] ? "." : "",
                  path, msg);
}

static yaml_node_t *ynode(cp_t *p, int id)
{
    return yaml_document_get_node(p->doc, id);
}
static bool is_scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}
static st_str_t sval(yaml_node_t *n)
{
    return st_str((const char *)n->data.scalar.value, n->data.scalar.length);
}

static bool get_str(cp_t *p, yaml_node_t *n, const char *path, char *dst, size_t cap)
{
    if (!is_scalar(n)) {
        cerr(p, n, path, "expected a string");
        return false;
    }
    st_str_t s = sval(n);
    if (s.n >= cap || memchr(s.p, '\0', s.n)) {
        cerr(p, n, path, "longer than %zu bytes", cap - 1);
        return false;
    }
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return true;
}

static bool get_bool(cp_t *p, yaml_node_t *n, const char *path, bool *out)
{
    if (is_scalar(n)) {
        st_str_t s = sval(n);
        if (st_str_eqc(s, "true") || st_str_eqc(s, "yes") || st_str_eqc(s, "on")) {
            *out = true;
            return true;
        }
        if (st_str_eqc(s, "false") || st_str_eqc(s, "no") || st_str_eqc(s, "off")) {
            *out = false;
            return true;
        }
    }
    cerr(p, n, path, "expected true or false");
    return false;
}

static bool get_duration(cp_t *p, yaml_node_t *n, const char *path, int64_t *out)
{
    if (is_scalar(n) &&
        (st_parse_prom_duration(sval(n), out) == 0 || st_parse_go_duration(sval(n), out) == 0) && *out >= 0)
        return true;
    cerr(p, n, path, "invalid duration \"%.*s\" (e.g. 14d, 36h)", is_scalar(n) ? (int)sval(n).n : 0,
         is_scalar(n) ? sval(n).p : "");
    return false;
}

static bool group_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '/' || c == '#' || c == '-';
}

/* Checks a name template: literal text valid in a log group (group) or log stream name, placeholders
 * {tenant}, {__labels__} and {<label name>}. Returns NULL or what is wrong (in msg). */
static const char *template_check(const char *t, bool group, char *msg, size_t cap)
{
    size_t literal = 0, places = 0;
    if (t[0] == '\0') return "must not be empty";
    for (const char *p = t; *p; p++) {
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (e == NULL) return "unclosed '{'";
            st_str_t name = st_str(p + 1, (size_t)(e - p - 1));
            if (!st_str_eqc(name, "tenant") && !st_str_eqc(name, LABELS_PLACEHOLDER) &&
                !st_label_name_valid(name)) {
                snprintf(msg, cap,
                         "placeholder {%.*s}: expected {tenant}, {" LABELS_PLACEHOLDER "} or {<label name>}",
                         (int)(name.n > 64 ? 64 : name.n), name.p);
                return msg;
            }
            places++;
            p = e;
            continue;
        }
        if (*p == '}') return "unmatched '}'";
        if (group && !group_char(*p)) {
            snprintf(msg, cap,
                     "character '%c' is not allowed in a log group name (letters, digits and . _ / # - only)",
                     *p >= 0x20 && *p < 0x7f ? *p : '?');
            return msg;
        }
        if (!group && (*p == ':' || *p == '*')) return "':' and '*' are not allowed in a log stream name";
        literal++;
    }
    if (literal > ST_CW_MAX_NAME) return "longer than 512 characters";
    (void)places;
    return NULL;
}

/* Renders a validated template; substituted values have the characters the name cannot hold replaced
 * by '_'. Returns 0, or -EINVAL when the result is not a valid name (empty, too long). */
static int template_render(const char *t, bool group, const char *tenant, const st_labels_t *l,
                           st_str_t canon, char out[ST_CW_MAX_NAME + 1])
{
    size_t n = 0;
    for (const char *p = t; *p; p++) {
        st_str_t v;
        bool sub = false;
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (e == NULL) return -EINVAL;
            st_str_t name = st_str(p + 1, (size_t)(e - p - 1));
            if (st_str_eqc(name, "tenant"))
                v = st_cstr(tenant);
            else if (st_str_eqc(name, LABELS_PLACEHOLDER))
                v = canon;
            else if (!st_labels_get(l, name, &v))
                v = st_str("", 0);
            sub = true;
            p = e;
        } else {
            v = st_str(p, 1);
        }
        for (size_t i = 0; i < v.n; i++) {
            if (n == ST_CW_MAX_NAME) return -EINVAL;
            char c = v.p[i];
            if (sub && group && !group_char(c)) c = '_';
            if (sub && !group && (c == ':' || c == '*' || c == '\0')) c = '_';
            out[n++] = c;
        }
    }
    out[n] = '\0';
    st_str_t s = st_str(out, n);
    return (group ? st_cw_group_name_valid(s) : st_cw_stream_name_valid(s)) ? 0 : -EINVAL;
}

static void parse_ship(cp_t *p, yaml_node_t *m, int idx, st_lc_cw_ship_t *s)
{
    char sp[64];
    snprintf(sp, sizeof sp, "ship[%d]", idx);
    strcpy(s->tenant, "*");
    strcpy(s->log_stream, "{" LABELS_PLACEHOLDER "}");
    s->line = p->cfg->lifecycle.line + (m ? (int)m->start_mark.line : 0);
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        cerr(p, m, sp, "expected a mapping {selector, tenant, log_group, log_stream}");
        return;
    }
    bool has_group = false;
    yaml_node_t *gnode = NULL, *snode = NULL;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ynode(p, pr->key), *v = ynode(p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[160];
        snprintf(kp, sizeof kp, "%s.%.*s", sp, (int)(key.n > 40 ? 40 : key.n), key.p);
        if (st_str_eqc(key, "tenant")) {
            get_str(p, v, kp, s->tenant, sizeof s->tenant);
        } else if (st_str_eqc(key, "selector")) {
            if (!is_scalar(v)) {
                cerr(p, v, kp, "expected a selector string");
                continue;
            }
            free(s->selector);
            st_selector_free(s->parsed);
            s->parsed = NULL;
            s->m = NULL;
            s->nm = 0;
            s->selector = st_str_dup(sval(v));
            if (s->selector && s->selector[0]) {
                char err[512];
                st_selector_t *sel = NULL;
                if (st_selector_parse(st_cstr(s->selector), &sel, err, sizeof err) < 0) {
                    cerr(p, v, kp, "%s", err);
                } else {
                    s->m = sel->m;
                    s->nm = sel->n;
                    s->parsed = sel;
                }
            }
        } else if (st_str_eqc(key, "log_group")) {
            has_group = get_str(p, v, kp, s->log_group, sizeof s->log_group);
            gnode = v;
        } else if (st_str_eqc(key, "log_stream")) {
            get_str(p, v, kp, s->log_stream, sizeof s->log_stream);
            snode = v;
        } else {
            cerr(p, k, kp, "unknown key (expected selector, tenant, log_group, log_stream)");
        }
    }
    char msg[160], kp[96];
    const char *e;
    snprintf(kp, sizeof kp, "%s.log_group", sp);
    if (!has_group) {
        if (gnode == NULL)
            cerr(p, m, kp, "is required (a name or a template such as /strata/{tenant}/{app})");
    } else if ((e = template_check(s->log_group, true, msg, sizeof msg)) != NULL) {
        cerr(p, gnode, kp, "\"%s\": %s", s->log_group, e);
    }
    snprintf(kp, sizeof kp, "%s.log_stream", sp);
    if ((e = template_check(s->log_stream, false, msg, sizeof msg)) != NULL)
        cerr(p, snode ? snode : m, kp, "\"%s\": %s", s->log_stream, e);
}

static void parse_labels(cp_t *p, yaml_node_t *m, const char *path, st_labels_t *out)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        cerr(p, m, path, "expected a mapping of label names to values");
        return;
    }
    size_t n = (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
    st_label_t *pairs = calloc(n ? n : 1, sizeof *pairs);
    if (pairs == NULL) return;
    size_t k = 0;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *kn = ynode(p, pr->key), *vn = ynode(p, pr->value);
        if (!is_scalar(kn)) continue;
        st_str_t name = sval(kn);
        char kp[160];
        snprintf(kp, sizeof kp, "%s.%.*s", path, (int)(name.n > 40 ? 40 : name.n), name.p);
        if (!st_label_name_valid(name)) {
            cerr(p, kn, kp, "invalid label name");
        } else if (st_str_eqc(name, "log_group") || st_str_eqc(name, "log_stream")) {
            cerr(p, kn, kp, "reserved: the import sets log_group and log_stream itself");
        } else if (!is_scalar(vn) || sval(vn).n == 0) {
            cerr(p, vn, kp, "expected a non-empty value");
        } else {
            pairs[k++] = (st_label_t){name, sval(vn)};
        }
    }
    st_labels_free(out);
    if (st_labels_from_pairs(pairs, k, out) == 0 && st_labels_first_dup(out) >= 0)
        cerr(p, m, path, "duplicate label name \"%.*s\"", (int)out->v[st_labels_first_dup(out)].name.n,
             out->v[st_labels_first_dup(out)].name.p);
    free(pairs);
}

static void parse_import(cp_t *p, yaml_node_t *m, int idx, st_lc_cw_import_t *im)
{
    char ip[64];
    snprintf(ip, sizeof ip, "import[%d]", idx);
    snprintf(im->tenant, sizeof im->tenant, "%s",
             p->cfg->no_auth_tenant[0] ? p->cfg->no_auth_tenant : "fake");
    im->start_ns = 14 * ST_NS_PER_DAY;
    im->line = p->cfg->lifecycle.line + (m ? (int)m->start_mark.line : 0);
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        cerr(p, m, ip, "expected a mapping {log_group_prefix, tenant, labels, start}");
        return;
    }
    yaml_node_t *gnode = NULL, *pnode = NULL, *snode = NULL, *tnode = NULL;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ynode(p, pr->key), *v = ynode(p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[160];
        snprintf(kp, sizeof kp, "%s.%.*s", ip, (int)(key.n > 40 ? 40 : key.n), key.p);
        if (st_str_eqc(key, "log_group")) {
            if (get_str(p, v, kp, im->log_group, sizeof im->log_group)) gnode = v;
        } else if (st_str_eqc(key, "log_group_prefix")) {
            if (get_str(p, v, kp, im->log_group_prefix, sizeof im->log_group_prefix)) pnode = v;
        } else if (st_str_eqc(key, "log_stream_prefix")) {
            if (get_str(p, v, kp, im->log_stream_prefix, sizeof im->log_stream_prefix)) snode = v;
        } else if (st_str_eqc(key, "tenant")) {
            if (get_str(p, v, kp, im->tenant, sizeof im->tenant)) tnode = v;
        } else if (st_str_eqc(key, "labels")) {
            parse_labels(p, v, kp, &im->labels);
        } else if (st_str_eqc(key, "start")) {
            get_duration(p, v, kp, &im->start_ns);
        } else if (st_str_eqc(key, "delay")) {
            get_duration(p, v, kp, &im->delay_ns);
        } else {
            cerr(p, k, kp,
                 "unknown key (expected log_group, log_group_prefix, log_stream_prefix, tenant, labels, "
                 "start, "
                 "delay)");
        }
    }
    char kp[96];
    if (gnode && pnode) {
        snprintf(kp, sizeof kp, "%s", ip);
        cerr(p, m, kp, "give log_group or log_group_prefix, not both");
    } else if (gnode == NULL && pnode == NULL) {
        snprintf(kp, sizeof kp, "%s.log_group_prefix", ip);
        cerr(p, m, kp, "is required (or log_group for one group)");
    }
    if (gnode && !st_cw_group_name_valid(st_cstr(im->log_group))) {
        snprintf(kp, sizeof kp, "%s.log_group", ip);
        cerr(p, gnode, kp, "\"%s\" is not a valid log group name (1-512 of letters, digits, . _ / # -)",
             im->log_group);
    }
    if (pnode && !st_cw_group_name_valid(st_cstr(im->log_group_prefix))) {
        snprintf(kp, sizeof kp, "%s.log_group_prefix", ip);
        cerr(p, pnode, kp,
             "\"%s\" is not a valid log group name prefix (1-512 of letters, digits, . _ / # -)",
             im->log_group_prefix);
    }
    if (snode && im->log_stream_prefix[0] && !st_cw_stream_name_valid(st_cstr(im->log_stream_prefix))) {
        snprintf(kp, sizeof kp, "%s.log_stream_prefix", ip);
        cerr(p, snode, kp, "\"%s\" is not a valid log stream name prefix (no ':' or '*')",
             im->log_stream_prefix);
    }
    if (im->tenant[0] == '\0' || strcmp(im->tenant, "*") == 0 || strchr(im->tenant, '|') != NULL) {
        snprintf(kp, sizeof kp, "%s.tenant", ip);
        cerr(p, tnode ? tnode : m, kp, "expected one tenant name");
    }
    if (im->start_ns == 0) {
        snprintf(kp, sizeof kp, "%s.start", ip);
        cerr(p, m, kp, "must be longer than 0");
    }
}

int st_lc_cloudwatch_parse(const st_config_t *cfg, struct yaml_document_s *doc, struct yaml_node_s *node,
                           st_lc_cloudwatch_t *out, st_buf_t *err, int *nerr)
{
    cp_t p = {cfg, doc, err, nerr};
    out->configured = true;
    if (node == NULL || node->type != YAML_MAPPING_NODE) {
        cerr(&p, node, "", "expected a mapping (region, endpoint, ship, import, manage_retention)");
        return 0;
    }
    yaml_node_t *ship = NULL, *imp = NULL;
    for (yaml_node_pair_t *pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = ynode(&p, pr->key), *v = ynode(&p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[64];
        snprintf(kp, sizeof kp, "%.*s", (int)(key.n > 40 ? 40 : key.n), key.p);
        if (st_str_eqc(key, "region")) {
            if (get_str(&p, v, kp, out->region, sizeof out->region)) {
                for (const char *c = out->region; *c; c++)
                    if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
                        cerr(&p, v, kp, "\"%s\" is not a region name (e.g. us-east-1)", out->region);
                        break;
                    }
            }
        } else if (st_str_eqc(key, "endpoint")) {
            if (get_str(&p, v, kp, out->endpoint, sizeof out->endpoint) && out->endpoint[0] &&
                strncmp(out->endpoint, "http://", 7) != 0 && strncmp(out->endpoint, "https://", 8) != 0)
                cerr(&p, v, kp, "expected an http:// or https:// URL");
        } else if (st_str_eqc(key, "manage_retention")) {
            get_bool(&p, v, kp, &out->manage_retention);
        } else if (st_str_eqc(key, "max_attempts")) {
            char tmp[16];
            if (get_str(&p, v, kp, tmp, sizeof tmp)) {
                char *end;
                long a = strtol(tmp, &end, 10);
                if (*end || a < 1 || a > 100)
                    cerr(&p, v, kp, "expected a number of attempts (1-100)");
                else
                    out->max_attempts = (int)a;
            }
        } else if (st_str_eqc(key, "ship")) {
            ship = v;
        } else if (st_str_eqc(key, "import")) {
            imp = v;
        } else {
            cerr(&p, k, kp,
                 "unknown key (expected region, endpoint, ship, import, manage_retention, max_attempts)");
        }
    }
    if (ship) {
        if (ship->type != YAML_SEQUENCE_NODE) {
            cerr(&p, ship, "ship", "expected a list of {selector, tenant, log_group, log_stream}");
        } else {
            size_t n = (size_t)(ship->data.sequence.items.top - ship->data.sequence.items.start);
            out->ship = calloc(n ? n : 1, sizeof *out->ship);
            if (out->ship == NULL) return -ENOMEM;
            for (size_t i = 0; i < n; i++)
                parse_ship(&p, ynode(&p, ship->data.sequence.items.start[i]), (int)i,
                           &out->ship[out->nship++]);
        }
    }
    if (imp) {
        if (imp->type != YAML_SEQUENCE_NODE) {
            cerr(&p, imp, "import", "expected a list of {log_group_prefix, tenant, labels, start}");
        } else {
            size_t n = (size_t)(imp->data.sequence.items.top - imp->data.sequence.items.start);
            out->import = calloc(n ? n : 1, sizeof *out->import);
            if (out->import == NULL) return -ENOMEM;
            for (size_t i = 0; i < n; i++)
                parse_import(&p, ynode(&p, imp->data.sequence.items.start[i]), (int)i,
                             &out->import[out->nimport++]);
        }
    }
    return 0;
}

void st_lc_cloudwatch_free(st_lc_cloudwatch_t *cw)
{
    for (int i = 0; i < cw->nship; i++) {
        free(cw->ship[i].selector);
        st_selector_free(cw->ship[i].parsed);
    }
    free(cw->ship);
    for (int i = 0; i < cw->nimport; i++) st_labels_free(&cw->import[i].labels);
    free(cw->import);
    memset(cw, 0, sizeof *cw);
}

/* ==== a run ============================================================================================ */

typedef struct {
    char *group; /* owned */
    int days;
} want_ret_t;

typedef struct {
    lc_run_t *r;
    const st_lc_cloudwatch_t *cw;
    st_cw_client_t *cli;    /* owned */
    st_lc_reader_t *reader; /* owned, created on the first chunk stored in S3 */
    int64_t wall_ms;        /* AWS's clock: the 14 d / 2 h acceptance window */
    want_ret_t *ret;        /* desired retention per group (the longest any of its data asks for) */
    size_t nret, capret;
    char **blocked; /* "<tenant>/<stream id>" of streams whose last batch could not be verified */
    size_t nblocked;
    uint64_t ship_events, ship_bytes, ship_requests, skipped, import_events, import_bytes, ret_changes;
    st_metric_t *m_ship_events, *m_ship_bytes, *m_import_events, *m_import_bytes, *m_retention;
    st_metric_t *m_skip[ST_CW_SKIP_COUNT + 3];
    st_metric_t *m_fail_ship, *m_fail_import, *m_fail_retention;
    st_buf_t scratch;
} cw_t;

#define progress st_lc_progress

static void fail(cw_t *w, st_metric_t *m)
{
    w->r->rep->failures++;
    st_counter_inc(m);
    if (w->r->m_fail) st_counter_inc(w->r->m_fail);
}

/* The retention a policy asks for: cloudwatch_retention_days, else the nearest allowed value >= the
 * time its data stays in the hot tier (at least one day). */
static int policy_days(const st_lc_policy_t *p)
{
    if (p->cloudwatch_retention_days > 0) return p->cloudwatch_retention_days;
    int64_t hot = p->ntiers > 0 && p->tiers[0].tier == ST_TIER_HOT ? p->tiers[0].until_ns : 0;
    int64_t days = (hot + ST_NS_PER_DAY - 1) / ST_NS_PER_DAY;
    if (days < 1) days = 1;
    if (days > 100000) days = 100000;
    return st_cw_retention_at_least((int)days);
}

static int want_retention(cw_t *w, const char *group, int policy)
{
    if (!w->cw->manage_retention || policy < 0) return 0;
    int days = policy_days(&w->r->o->lc->policies[policy]);
    for (size_t i = 0; i < w->nret; i++) {
        if (strcmp(w->ret[i].group, group) == 0) {
            if (days > w->ret[i].days) w->ret[i].days = days;
            return 0;
        }
    }
    if (w->nret == w->capret) {
        size_t cap = w->capret ? w->capret * 2 : 16;
        want_ret_t *v = realloc(w->ret, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        w->ret = v;
        w->capret = cap;
    }
    char *g = strdup(group);
    if (g == NULL) return -ENOMEM;
    w->ret[w->nret++] = (want_ret_t){g, days};
    return 0;
}

/* Identity of an event for intents: the message as CloudWatch stores it, and its time. */
static uint64_t event_hash(cw_t *w, int64_t ts_ms, st_str_t msg)
{
    st_buf_reset(&w->scratch);
    if (st_cw_message_normalize(msg, &w->scratch) < 0) return 0;
    return st_hash64(w->scratch.data ? w->scratch.data : "", w->scratch.len) ^
           ((uint64_t)ts_ms * 0x9E3779B97F4A7C15ULL);
}

static int state_put_del(lc_run_t *r, const char *put_key, const st_buf_t *val, const char *del_key)
{
    st_index_write_t *wr;
    ST_TRY(st_index_write_begin(r->o->index, &wr));
    int rc = 0;
    if (put_key) rc = st_index_state_put(wr, st_cstr(put_key), st_str(val->data ? val->data : "", val->len));
    if (rc == 0 && del_key) {
        rc = st_index_state_del(wr, st_cstr(del_key));
        if (rc == ST_ENOTFOUND) rc = 0;
    }
    if (rc == 0) return st_index_write_commit(wr);
    st_index_write_abort(wr);
    return rc;
}

/* Sampling for intents: after taking the event at idx (the taken-th sample) of n, the index of the next
 * one; MAX_SAMPLES spread evenly over the batch, its first and last event included. */
static size_t next_sample(size_t idx, size_t taken, size_t n)
{
    if (n <= 1) return SIZE_MAX;
    size_t spread = (taken * (n - 1) + MAX_SAMPLES - 2) / (MAX_SAMPLES - 1);
    return spread > idx + 1 ? spread : idx + 1;
}

/* ---- small JSON readers for our own state records ---- */

static int jr_i64(st_json_t *j, int64_t *out)
{
    st_str_t s;
    ST_TRY(st_json_number(j, &s));
    char tmp[32];
    if (s.n >= sizeof tmp) return st_json_fail(j, "number too long");
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    *out = strtoll(tmp, NULL, 10);
    return 0;
}

/* ["<hex>", ...] */
static int jr_hashes(st_json_t *j, st_buf_t *sc, st_u64vec_t *out)
{
    int rc = st_json_array_begin(j);
    while (rc >= 0 && (rc = st_json_next_elem(j)) == 1) {
        st_str_t s;
        if ((rc = st_json_string(j, &s, sc)) < 0) break;
        char tmp[24];
        snprintf(tmp, sizeof tmp, "%.*s", (int)(s.n > 20 ? 20 : s.n), s.p);
        if ((rc = st_u64vec_push(out, strtoull(tmp, NULL, 16))) < 0) break;
    }
    return rc;
}

static int jw_hashes(st_buf_t *b, const uint64_t *h, size_t n)
{
    ST_TRY(st_buf_putc(b, '['));
    for (size_t i = 0; i < n; i++)
        ST_TRY(st_buf_printf(b, "%s\"%016llx\"", i ? "," : "", (unsigned long long)h[i]));
    return st_buf_putc(b, ']');
}

/* ==== (a) ship ========================================================================================== */

/* A pending batch: written before PutLogEvents, removed with the progress it carries once it is known
 * whether CloudWatch has it. Key "cw/pending/<tenant>/<stream id>". */
typedef struct {
    char group[ST_CW_MAX_NAME + 1], stream[ST_CW_MAX_NAME + 1];
    int64_t min_ts, max_ts;
    st_u64vec_t samples;
    st_u64vec_t marks; /* chunk id, shipped count, ... (pairs) */
} intent_t;

static int intent_encode(const intent_t *in, st_buf_t *b)
{
    ST_TRY(st_buf_puts(b, "{\"group\":"));
    ST_TRY(st_json_put_cstr(b, in->group));
    ST_TRY(st_buf_puts(b, ",\"stream\":"));
    ST_TRY(st_json_put_cstr(b, in->stream));
    ST_TRY(st_buf_printf(b, ",\"min\":%lld,\"max\":%lld,\"samples\":", (long long)in->min_ts,
                         (long long)in->max_ts));
    ST_TRY(jw_hashes(b, in->samples.v, in->samples.n));
    ST_TRY(st_buf_puts(b, ",\"marks\":["));
    for (size_t i = 0; i + 1 < in->marks.n; i += 2)
        ST_TRY(st_buf_printf(b, "%s[%llu,%llu]", i ? "," : "", (unsigned long long)in->marks.v[i],
                             (unsigned long long)in->marks.v[i + 1]));
    return st_buf_puts(b, "]}");
}

static void copy_view(char *dst, size_t cap, st_str_t s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static int intent_decode(st_str_t v, intent_t *in)
{
    memset(in, 0, sizeof *in);
    st_json_t j;
    st_json_init(&j, v.p, v.n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k, s;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (st_str_eqc(k, "group") && (rc = st_json_string(&j, &s, &vs)) == 0)
            copy_view(in->group, sizeof in->group, s);
        else if (st_str_eqc(k, "stream") && (rc = st_json_string(&j, &s, &vs)) == 0)
            copy_view(in->stream, sizeof in->stream, s);
        else if (st_str_eqc(k, "min"))
            rc = jr_i64(&j, &in->min_ts);
        else if (st_str_eqc(k, "max"))
            rc = jr_i64(&j, &in->max_ts);
        else if (st_str_eqc(k, "samples"))
            rc = jr_hashes(&j, &vs, &in->samples);
        else if (st_str_eqc(k, "marks")) {
            rc = st_json_array_begin(&j);
            while (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) {
                int64_t id = 0, cnt = 0;
                rc = st_json_array_begin(&j);
                if (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) rc = jr_i64(&j, &id);
                if (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) rc = jr_i64(&j, &cnt);
                if (rc >= 0)
                    rc = st_json_next_elem(&j) == 0 ? 0 : st_json_fail(&j, "mark: expected [id, count]");
                if (rc >= 0) rc = st_u64vec_push(&in->marks, (uint64_t)id);
                if (rc >= 0) rc = st_u64vec_push(&in->marks, (uint64_t)cnt);
            }
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0 || !st_cw_group_name_valid(st_cstr(in->group)) ||
        !st_cw_stream_name_valid(st_cstr(in->stream))) {
        st_u64vec_free(&in->samples);
        st_u64vec_free(&in->marks);
        return rc == -ENOMEM ? rc : ST_ECORRUPT;
    }
    return 0;
}

static void intent_free(intent_t *in)
{
    st_u64vec_free(&in->samples);
    st_u64vec_free(&in->marks);
}

static void marker_key(uint64_t chunk_id, char out[40])
{
    snprintf(out, 40, "cw/ship/%016llx", (unsigned long long)chunk_id);
}

/* Puts "shipped count" markers (pairs in marks) in an open transaction. */
static int put_marks(st_index_write_t *wr, const uint64_t *marks, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        char k[40], v[24];
        marker_key(marks[i], k);
        snprintf(v, sizeof v, "%llu", (unsigned long long)marks[i + 1]);
        ST_TRY(st_index_state_put(wr, st_cstr(k), st_cstr(v)));
    }
    return 0;
}

typedef struct {
    cw_t *w;
    const intent_t *in;
    bool found;
} verify_t;

static int verify_cb(void *arg, const st_cw_events_t *page)
{
    verify_t *v = arg;
    for (size_t i = 0; i < page->n && !v->found; i++) {
        uint64_t h = event_hash(v->w, page->v[i].timestamp_ms, page->v[i].message);
        for (size_t k = 0; k < v->in->samples.n && !v->found; k++) v->found = v->in->samples.v[k] == h;
    }
    return v->found ? 1 : 0;
}

typedef struct {
    st_buf_t keys; /* lstr key, lstr value, ... */
} kv_list_t;

static int kv_cb(void *arg, st_str_t key, st_str_t value)
{
    kv_list_t *l = arg;
    ST_TRY(st_buf_put_lstr(&l->keys, key.p, key.n));
    return st_buf_put_lstr(&l->keys, value.p, value.n);
}

static int scan_state(lc_run_t *r, const char *prefix, kv_list_t *out)
{
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(r->o->index, &rd));
    int rc = st_index_state_scan(rd, st_cstr(prefix), kv_cb, out);
    st_index_read_end(rd);
    return rc;
}

static int block_stream(cw_t *w, const char *tenant_sid)
{
    char **v = realloc(w->blocked, (w->nblocked + 1) * sizeof *v);
    if (v == NULL) return -ENOMEM;
    w->blocked = v;
    if ((v[w->nblocked] = strdup(tenant_sid)) == NULL) return -ENOMEM;
    w->nblocked++;
    return 0;
}

static bool is_blocked(const cw_t *w, const char *tenant_sid)
{
    for (size_t i = 0; i < w->nblocked; i++)
        if (strcmp(w->blocked[i], tenant_sid) == 0) return true;
    return false;
}

/* Settles the batches a killed run left in flight: CloudWatch has the batch (any of its sample events
 * is there) -> its progress is recorded; it does not -> the intent goes and the events are sent again.
 * When CloudWatch cannot be asked, the stream is left alone this run. */
static int resume_ship(cw_t *w)
{
    kv_list_t l = {ST_BUF_INIT};
    int rc = scan_state(w->r, "cw/pending/", &l);
    st_reader_t rd = st_reader(l.keys.data ? l.keys.data : "", l.keys.len);
    while (rc == 0 && st_reader_left(&rd) > 0) {
        st_str_t k = st_read_lstr(&rd), v = st_read_lstr(&rd);
        if (rd.err) break;
        char key[600];
        snprintf(key, sizeof key, "%.*s", (int)(k.n > 590 ? 590 : k.n), k.p);
        const char *tsid = key + strlen("cw/pending/");
        intent_t in;
        int drc = intent_decode(v, &in);
        if (drc == -ENOMEM) {
            rc = drc;
            break;
        }
        if (drc < 0) {
            ST_LOG_WARN(MOD, "msg=\"unreadable CloudWatch intent removed\" key=\"%s\"", key);
            rc = state_put_del(w->r, NULL, NULL, key);
            continue;
        }
        if (w->r->o->dry_run || w->cli == NULL) {
            if (w->r->o->plan)
                fprintf(w->r->o->plan, "cloudwatch verify  %s %s: a batch of an interrupted run\n", in.group,
                        in.stream);
            rc = block_stream(w, tsid);
            intent_free(&in);
            continue;
        }
        verify_t vf = {w, &in, false};
        st_s3_error_t err;
        memset(&err, 0, sizeof err);
        int vrc = st_cw_read_stream(w->cli, in.group, in.stream, in.min_ts, in.max_ts + 1, MAX_READ_PAGES,
                                    verify_cb, &vf, &err);
        w->ship_requests++;
        if (vrc == 1 || vrc == ST_ENOTFOUND) vrc = 0;
        if (vrc < 0) {
            ST_LOG_WARN(MOD,
                        "msg=\"cannot verify an interrupted CloudWatch batch; stream left for the next run\" "
                        "group=%s stream=\"%s\" err=\"%s\" code=%s",
                        in.group, in.stream, st_s3_strerror(vrc), err.code);
            fail(w, w->m_fail_ship);
            rc = block_stream(w, tsid);
            intent_free(&in);
            continue;
        }
        st_index_write_t *wr;
        if ((rc = st_index_write_begin(w->r->o->index, &wr)) == 0) {
            rc = vf.found ? put_marks(wr, in.marks.v, in.marks.n) : 0;
            if (rc == 0) rc = st_index_state_del(wr, st_cstr(key));
            if (rc == 0)
                rc = st_index_write_commit(wr);
            else
                st_index_write_abort(wr);
        }
        if (rc == 0)
            progress(w->r, "cloudwatch: a batch to %s %s from an interrupted run %s", in.group, in.stream,
                     vf.found ? "was delivered; its progress is recorded"
                              : "was not delivered; it is sent again");
        intent_free(&in);
    }
    st_buf_free(&l.keys);
    return rc;
}

/* One chunk's part of the window: events [first, first + count) of the window, in the chunk's sorted
 * order after its first k0 events (shipped earlier); done = shipped count committed so far. */
typedef struct {
    uint64_t chunk_id;
    uint64_t k0, done, entries;
    size_t first, count;
} wchunk_t;

typedef struct {
    cw_t *w;
    const char *tenant;
    uint64_t sid;
    const char *group, *stream;
    st_buf_t arena;        /* message bytes of the window */
    st_cw_put_event_t *ev; /* message.p holds an offset into arena until the window is sent */
    size_t n, cap;
    wchunk_t *ch;
    size_t nch, capch;
    char pending_key[256];
    int failed; /* the first error of this stream */
} window_t;

/* Markers (chunk id, shipped count) as they stand once events [0, settled) of the window are done. */
static int marks_at(const window_t *wd, size_t settled, st_u64vec_t *out)
{
    for (size_t i = 0; i < wd->nch; i++) {
        const wchunk_t *c = &wd->ch[i];
        size_t in = settled <= c->first ? 0 : settled - c->first;
        if (in > c->count) in = c->count;
        uint64_t k = c->k0 + in;
        if (k == c->done) continue;
        ST_TRY(st_u64vec_push(out, c->chunk_id));
        ST_TRY(st_u64vec_push(out, k));
    }
    return 0;
}

static int ship_before(void *arg, const st_cw_batch_t *b)
{
    window_t *wd = arg;
    intent_t in;
    memset(&in, 0, sizeof in);
    snprintf(in.group, sizeof in.group, "%s", wd->group);
    snprintf(in.stream, sizeof in.stream, "%s", wd->stream);
    in.min_ts = b->min_ts;
    in.max_ts = b->max_ts;
    int rc = 0;
    /* up to MAX_SAMPLES events spread over the batch, the first and the last included */
    size_t idx = 0, next = 0, taken = 0;
    for (size_t i = b->first; rc == 0 && i <= b->last && taken < MAX_SAMPLES; i++) {
        if (b->plan[i] != b->batch) continue;
        if (idx == next) {
            rc = st_u64vec_push(&in.samples, event_hash(wd->w, wd->ev[i].timestamp_ms, wd->ev[i].message));
            taken++;
            next = next_sample(idx, taken, b->nevents);
        }
        idx++;
    }
    if (rc == 0) rc = marks_at(wd, b->settled, &in.marks);
    st_buf_t v = ST_BUF_INIT;
    if (rc == 0) rc = intent_encode(&in, &v);
    if (rc == 0) rc = state_put_del(wd->w->r, wd->pending_key, &v, NULL);
    st_buf_free(&v);
    intent_free(&in);
    if (rc == 0) st_lc_crash_point("cw-ship-after-intent");
    return rc;
}

static int ship_after(void *arg, const st_cw_batch_t *b, const st_cw_put_result_t *so_far)
{
    (void)so_far;
    window_t *wd = arg;
    if (b->batch >= 0) st_lc_crash_point("cw-ship-after-put");
    st_u64vec_t marks = ST_U64VEC_INIT;
    int rc = marks_at(wd, b->settled, &marks);
    st_index_write_t *wr = NULL;
    if (rc == 0) rc = st_index_write_begin(wd->w->r->o->index, &wr);
    if (rc == 0) rc = put_marks(wr, marks.v, marks.n);
    if (rc == 0 && b->batch >= 0) {
        rc = st_index_state_del(wr, st_cstr(wd->pending_key));
        if (rc == ST_ENOTFOUND) rc = 0;
    }
    if (wr) {
        if (rc == 0)
            rc = st_index_write_commit(wr);
        else
            st_index_write_abort(wr);
    }
    if (rc == 0) {
        for (size_t i = 0; i < wd->nch; i++) {
            wchunk_t *c = &wd->ch[i];
            size_t in = b->settled <= c->first ? 0 : b->settled - c->first;
            c->done = c->k0 + (in > c->count ? c->count : in);
        }
    }
    st_u64vec_free(&marks);
    return rc;
}

/* Sends the window and empties it. */
static int window_flush(window_t *wd)
{
    cw_t *w = wd->w;
    if (wd->n == 0 && wd->nch == 0) return 0;
    const char *base = wd->arena.data ? wd->arena.data : "";
    for (size_t i = 0; i < wd->n; i++) wd->ev[i].message.p = base + (uintptr_t)wd->ev[i].message.p;
    st_cw_put_opts_t po = {
        .now_ms = w->wall_ms, .create = true, .before = ship_before, .after = ship_after, .arg = wd};
    st_cw_put_result_t res;
    memset(&res, 0, sizeof res);
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc = st_cw_put_log_events(w->cli, wd->group, wd->stream, wd->ev, wd->n, &po, &res, &err);
    w->ship_requests += res.requests;
    w->ship_events += res.accepted;
    w->ship_bytes += res.accepted_bytes;
    st_counter_add(w->m_ship_events, res.accepted);
    st_counter_add(w->m_ship_bytes, res.accepted_bytes);
    uint64_t skipped = res.rejected_too_old + res.rejected_too_new + res.rejected_expired;
    for (int i = 1; i < ST_CW_SKIP_COUNT; i++) {
        skipped += res.skipped[i];
        st_counter_add(w->m_skip[i], res.skipped[i]);
    }
    st_counter_add(w->m_skip[ST_CW_SKIP_COUNT], res.rejected_too_old);
    st_counter_add(w->m_skip[ST_CW_SKIP_COUNT + 1], res.rejected_too_new);
    st_counter_add(w->m_skip[ST_CW_SKIP_COUNT + 2], res.rejected_expired);
    w->skipped += skipped;
    if (res.sent || skipped)
        progress(w->r,
                 "cloudwatch: shipped %llu events (%llu bytes) of tenant %s to %s %s in %llu requests%s",
                 (unsigned long long)res.accepted, (unsigned long long)res.accepted_bytes, wd->tenant,
                 wd->group, wd->stream, (unsigned long long)res.requests,
                 skipped ? " (some events skipped, see metrics)" : "");
    if (skipped)
        ST_LOG_WARN(
            MOD,
            "msg=\"CloudWatch events left out\" group=%s stream=\"%s\" too_old=%llu too_new=%llu "
            "too_large=%llu empty=%llu rejected_too_old=%llu rejected_too_new=%llu rejected_expired=%llu",
            wd->group, wd->stream, (unsigned long long)res.skipped[ST_CW_SKIP_TOO_OLD],
            (unsigned long long)res.skipped[ST_CW_SKIP_TOO_NEW],
            (unsigned long long)res.skipped[ST_CW_SKIP_TOO_LARGE],
            (unsigned long long)res.skipped[ST_CW_SKIP_EMPTY], (unsigned long long)res.rejected_too_old,
            (unsigned long long)res.rejected_too_new, (unsigned long long)res.rejected_expired);
    if (rc < 0) {
        ST_LOG_ERROR(
            MOD,
            "msg=\"shipping to CloudWatch failed; the rest is retried next run\" group=%s stream=\"%s\" "
            "err=\"%s\" code=%s status=%d attempts=%d",
            wd->group, wd->stream, st_s3_strerror(rc), err.code, err.http_status, err.attempts);
        progress(w->r, "cloudwatch: shipping to %s %s failed: %s %s", wd->group, wd->stream,
                 st_s3_strerror(rc), err.code);
    }
    wd->n = 0;
    wd->nch = 0;
    st_buf_reset(&wd->arena);
    return rc;
}

/* Reads a chunk (local file, or S3 through the reader's cache) and calls cb for every entry in the
 * chunk's order. */
static int read_chunk(cw_t *w, const st_chunk_ref_t *ref, int (*cb)(void *arg, int64_t ts, st_str_t line),
                      void *arg)
{
    char path[2048];
    uint64_t base = 0;
    if (ref->loc.kind == ST_LOC_LOCAL) {
        snprintf(path, sizeof path, "%s/%s", w->r->chunks_dir, ref->loc.path);
        base = ref->loc.offset;
    } else {
        if (st_tier_archived((st_tier_t)ref->storage_class)) return ST_EARCHIVED;
        if (w->reader == NULL) {
            char dir[1200];
            snprintf(dir, sizeof dir, "%s/cw-cache", w->r->work_dir);
            ST_TRY(st_lc_reader_new(w->r->o->lc, dir, 256u << 20, &w->reader));
        }
        ST_TRY(st_lc_reader_fetch(w->reader, ref, path, sizeof path, &base));
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    st_chunk_info_t info;
    memset(&info, 0, sizeof info);
    st_block_t blk;
    memset(&blk, 0, sizeof blk);
    st_buf_t scratch = ST_BUF_INIT;
    int rc = st_chunk_read_info(fd, base, ref->loc.length, &info);
    for (uint32_t b = 0; rc == 0 && b < info.nblocks; b++) {
        rc = st_block_read(fd, base, &info.blocks[b], &scratch, &blk);
        for (uint32_t i = 0; rc == 0 && i < blk.n; i++) {
            st_entry_t e = st_block_entry(&blk, i);
            rc = cb(arg, e.ts, e.line);
        }
    }
    st_block_free(&blk);
    st_buf_free(&scratch);
    st_chunk_info_free(&info);
    close(fd);
    return rc;
}

static int window_add_cb(void *arg, int64_t ts, st_str_t line)
{
    window_t *wd = arg;
    if (wd->n == wd->cap) {
        size_t cap = wd->cap ? wd->cap * 2 : 4096;
        st_cw_put_event_t *v = realloc(wd->ev, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        wd->ev = v;
        wd->cap = cap;
    }
    size_t off = wd->arena.len;
    ST_TRY(st_buf_append(&wd->arena, line.p, line.n));
    int64_t ms = ts / ST_NS_PER_MS - (ts % ST_NS_PER_MS < 0 ? 1 : 0);
    wd->ev[wd->n++] = (st_cw_put_event_t){ms, st_str((const char *)(uintptr_t)off, line.n)};
    return 0;
}

/* Adds chunk c (its events after the first k, in time order) to the window. */
static int window_add_chunk(window_t *wd, const lc_chunk_t *c, uint64_t k)
{
    if (wd->nch == wd->capch) {
        size_t cap = wd->capch ? wd->capch * 2 : 16;
        wchunk_t *v = realloc(wd->ch, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        wd->ch = v;
        wd->capch = cap;
    }
    size_t first = wd->n;
    int rc = read_chunk(wd->w, &c->ref, window_add_cb, wd);
    if (rc < 0) {
        wd->n = first;
        return rc;
    }
    /* a chunk's order is its time order (stable): the shipped count k is a prefix of it */
    size_t cnt = wd->n - first;
    bool sorted = true;
    for (size_t i = first + 1; i < wd->n && sorted; i++)
        sorted = wd->ev[i - 1].timestamp_ms <= wd->ev[i].timestamp_ms;
    if (!sorted && (rc = st_cw_sort_events(wd->ev + first, cnt)) < 0) return rc;
    if (cnt != c->ref.entries)
        ST_LOG_WARN(MOD, "msg=\"chunk entry count differs from the index\" chunk=%016llx index=%u read=%zu",
                    (unsigned long long)c->ref.chunk_id, c->ref.entries, cnt);
    size_t skip = k < cnt ? (size_t)k : cnt;
    memmove(wd->ev + first, wd->ev + first + skip, (cnt - skip) * sizeof *wd->ev);
    wd->n -= skip;
    wd->ch[wd->nch++] = (wchunk_t){c->ref.chunk_id, skip, skip, cnt, first, cnt - skip};
    return 0;
}

/* A stream to ship: its chunks (sorted by id) and their shipped counts. */
typedef struct {
    const char *tenant;
    uint64_t sid;
    lc_chunk_t **c;
    uint64_t *k;
    size_t n;
    int rule;
    char group[ST_CW_MAX_NAME + 1], stream[ST_CW_MAX_NAME + 1];
    char *labels; /* owned canonical text */
} sstream_t;

static int ship_stream(cw_t *w, sstream_t *s)
{
    lc_run_t *r = w->r;
    int64_t old_ns = (w->wall_ms - ST_CW_MAX_AGE_MS) * ST_NS_PER_MS;
    if (r->o->dry_run) {
        uint64_t ev = 0, bytes = 0, old = 0;
        for (size_t i = 0; i < s->n; i++) {
            const st_chunk_ref_t *ref = &s->c[i]->ref;
            if (s->k[i] >= ref->entries) continue;
            uint64_t left = ref->entries - s->k[i];
            if (ref->max_ts < old_ns) {
                old += left;
                continue;
            }
            ev += left;
            bytes += (uint64_t)((double)ref->raw_bytes * (double)left /
                                (double)(ref->entries ? ref->entries : 1)) +
                     ST_CW_EVENT_OVERHEAD * left;
        }
        if (ev || old) {
            if (r->o->plan)
                fprintf(r->o->plan, "cloudwatch ship    %-10s %s -> %s %s: %llu events, %llu bytes%s\n",
                        s->tenant, s->labels, s->group, s->stream, (unsigned long long)ev,
                        (unsigned long long)bytes, old ? " (plus events older than 14 days, skipped)" : "");
            w->ship_events += ev;
            w->ship_bytes += bytes;
            w->skipped += old;
            uint64_t req = (bytes + ST_CW_MAX_BATCH_BYTES - 1) / ST_CW_MAX_BATCH_BYTES;
            uint64_t req2 = (ev + ST_CW_MAX_BATCH_EVENTS - 1) / ST_CW_MAX_BATCH_EVENTS;
            w->ship_requests += req > req2 ? req : req2;
        }
        return 0;
    }
    window_t wd;
    memset(&wd, 0, sizeof wd);
    wd.w = w;
    wd.tenant = s->tenant;
    wd.sid = s->sid;
    wd.group = s->group;
    wd.stream = s->stream;
    snprintf(wd.pending_key, sizeof wd.pending_key, "cw/pending/%s/%016llx", s->tenant,
             (unsigned long long)s->sid);
    int rc = 0;
    /* chunks entirely older than CloudWatch accepts: done without reading them */
    st_u64vec_t old = ST_U64VEC_INIT;
    uint64_t nold = 0;
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        const st_chunk_ref_t *ref = &s->c[i]->ref;
        if (s->k[i] >= ref->entries || ref->max_ts >= old_ns) continue;
        nold += ref->entries - s->k[i];
        rc = st_u64vec_push(&old, ref->chunk_id);
        if (rc == 0) rc = st_u64vec_push(&old, ref->entries);
        s->k[i] = ref->entries;
    }
    if (rc == 0 && old.n) {
        st_index_write_t *wr;
        if ((rc = st_index_write_begin(r->o->index, &wr)) == 0) {
            rc = put_marks(wr, old.v, old.n);
            if (rc == 0)
                rc = st_index_write_commit(wr);
            else
                st_index_write_abort(wr);
        }
        w->skipped += nold;
        st_counter_add(w->m_skip[ST_CW_SKIP_TOO_OLD], nold);
        progress(r, "cloudwatch: %llu events of tenant %s %s are older than 14 days; not shipped",
                 (unsigned long long)nold, s->tenant, s->labels);
    }
    st_u64vec_free(&old);
    for (size_t i = 0; rc == 0 && i < s->n; i++) {
        const lc_chunk_t *c = s->c[i];
        if (s->k[i] >= c->ref.entries) continue;
        int arc = window_add_chunk(&wd, c, s->k[i]);
        if (arc == ST_EARCHIVED) {
            progress(r, "cloudwatch: chunk %016llx of tenant %s %s is archived (restore it to ship it)",
                     (unsigned long long)c->ref.chunk_id, s->tenant, s->labels);
            continue;
        }
        if (arc < 0) {
            ST_LOG_ERROR(MOD, "msg=\"cannot read chunk to ship it\" chunk=%016llx err=\"%s\"",
                         (unsigned long long)c->ref.chunk_id, st_s3_strerror(arc));
            rc = arc;
            break;
        }
        if (wd.n >= WINDOW_EVENTS || wd.arena.len >= WINDOW_BYTES) rc = window_flush(&wd);
    }
    if (rc == 0) rc = window_flush(&wd);
    if (rc < 0) fail(w, w->m_fail_ship);
    st_buf_free(&wd.arena);
    free(wd.ev);
    free(wd.ch);
    return rc;
}

static int cmp_stream_chunk(const void *a, const void *b)
{
    const lc_chunk_t *x = *(lc_chunk_t *const *)a, *y = *(lc_chunk_t *const *)b;
    int c = strcmp(x->tenant, y->tenant);
    if (c) return c;
    if (x->ref.stream_id != y->ref.stream_id) return x->ref.stream_id < y->ref.stream_id ? -1 : 1;
    return x->ref.chunk_id < y->ref.chunk_id ? -1 : x->ref.chunk_id > y->ref.chunk_id;
}

/* Matches a stream against the ship rules and renders its names; *rule = -1 when none applies. */
static void match_ship(cw_t *w, sstream_t *s, const st_labels_t *l)
{
    s->rule = -1;
    for (int i = 0; i < w->cw->nship; i++) {
        const st_lc_cw_ship_t *sh = &w->cw->ship[i];
        if (!st_lc_glob_tenant(sh->tenant, s->tenant) || !st_matchers_match(sh->m, sh->nm, l)) continue;
        s->rule = i;
        st_str_t canon = st_cstr(s->labels);
        if (template_render(sh->log_group, true, s->tenant, l, canon, s->group) < 0 ||
            template_render(sh->log_stream, false, s->tenant, l, canon, s->stream) < 0) {
            s->rule = -2; /* names that CloudWatch would refuse */
        }
        return;
    }
}

/* Deletes the markers of chunks that are gone from the index. */
static int prune_markers(cw_t *w)
{
    kv_list_t l = {ST_BUF_INIT};
    int rc = scan_state(w->r, "cw/ship/", &l);
    st_reader_t rd = st_reader(l.keys.data ? l.keys.data : "", l.keys.len);
    st_index_write_t *wr = NULL;
    size_t removed = 0;
    while (rc == 0 && st_reader_left(&rd) > 0) {
        st_str_t k = st_read_lstr(&rd);
        st_read_lstr(&rd);
        if (rd.err) break;
        if (k.n != strlen("cw/ship/") + 16) continue;
        char hex[17];
        memcpy(hex, k.p + strlen("cw/ship/"), 16);
        hex[16] = '\0';
        uint64_t id = strtoull(hex, NULL, 16);
        size_t lo = 0, hi = w->r->n;
        bool present = false;
        while (lo < hi && !present) {
            size_t mid = (lo + hi) / 2;
            uint64_t m = w->r->c[mid].ref.chunk_id;
            if (m == id)
                present = true;
            else if (m < id)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (present) continue;
        if (wr == NULL && (rc = st_index_write_begin(w->r->o->index, &wr)) < 0) break;
        if ((rc = st_index_state_del(wr, k)) == 0) removed++;
    }
    if (wr) {
        if (rc == 0)
            rc = st_index_write_commit(wr);
        else
            st_index_write_abort(wr);
    }
    st_buf_free(&l.keys);
    return rc;
}

static int ship_all(cw_t *w)
{
    lc_run_t *r = w->r;
    if (w->cw->nship == 0) return 0;
    int rc = 0;
    if (!r->o->dry_run && (rc = resume_ship(w)) < 0) return rc;
    lc_chunk_t **byst = malloc((r->n ? r->n : 1) * sizeof *byst);
    uint64_t *ks = calloc(r->n ? r->n : 1, sizeof *ks);
    sstream_t *ss = calloc(r->n ? r->n : 1, sizeof *ss);
    size_t nss = 0;
    if (byst == NULL || ks == NULL || ss == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < r->n; i++) byst[i] = &r->c[i];
    st_qsort(byst, r->n, sizeof *byst, cmp_stream_chunk);
    /* one read transaction: labels, rule and shipped counts of every stream */
    st_index_read_t *rd;
    if ((rc = st_index_read_begin(r->o->index, &rd)) < 0) goto out;
    for (size_t i = 0; rc == 0 && i < r->n;) {
        size_t j = i;
        while (j < r->n && byst[j]->ref.stream_id == byst[i]->ref.stream_id &&
               strcmp(byst[j]->tenant, byst[i]->tenant) == 0)
            j++;
        sstream_t *s = &ss[nss];
        memset(s, 0, sizeof *s);
        s->tenant = byst[i]->tenant;
        s->sid = byst[i]->ref.stream_id;
        s->c = byst + i;
        s->k = ks + i;
        s->n = j - i;
        s->rule = -1;
        st_str_t text;
        if (st_index_stream(rd, s->tenant, s->sid, &text, NULL) == 0) {
            st_labels_t l;
            char err[256];
            if ((s->labels = st_str_dup(text)) == NULL)
                rc = -ENOMEM;
            else if (st_labels_parse(text, &l, err) == 0) {
                match_ship(w, s, &l);
                st_labels_free(&l);
            }
        }
        if (s->rule != -1) {
            nss++;
            for (size_t x = i; s->rule >= 0 && x < j; x++) {
                char key[40];
                st_str_t v;
                marker_key(byst[x]->ref.chunk_id, key);
                if (st_index_state_get(rd, st_cstr(key), &v) == 0) {
                    char tmp[24];
                    snprintf(tmp, sizeof tmp, "%.*s", (int)(v.n > 20 ? 20 : v.n), v.p);
                    ks[x] = strtoull(tmp, NULL, 10);
                }
            }
        } else {
            free(s->labels);
            s->labels = NULL;
        }
        i = j;
    }
    st_index_read_end(rd);
    for (size_t i = 0; rc >= 0 && i < nss; i++) {
        sstream_t *s = &ss[i];
        if (s->rule == -2) {
            /* e.g. a placeholder whose label the stream lacks, leaving the name empty */
            progress(
                r,
                "cloudwatch: tenant %s %s: the ship rule's names render to a name CloudWatch refuses; not "
                "shipped",
                s->tenant, s->labels);
            ST_LOG_WARN(MOD, "msg=\"stream not shipped: invalid CloudWatch names\" tenant=%s labels=%s",
                        s->tenant, s->labels);
            continue;
        }
        if ((rc = want_retention(w, s->group, s->c[0]->policy)) < 0) break;
        char tsid[200];
        snprintf(tsid, sizeof tsid, "%s/%016llx", s->tenant, (unsigned long long)s->sid);
        if (is_blocked(w, tsid)) continue;
        int src = ship_stream(w, s);
        if (src == -ENOMEM)
            rc = src;
        else if (src == ST_S3_EAUTH || src == ST_S3_ENETWORK || src == ST_S3_EUNAVAILABLE ||
                 src == ST_ETIMEOUT) {
            progress(r, "cloudwatch: CloudWatch Logs unreachable (%s); shipping continues next run",
                     st_s3_strerror(src));
            break;
        }
    }
    if (rc >= 0 && !r->o->dry_run) rc = prune_markers(w);
out:
    for (size_t i = 0; i < nss; i++) free(ss[i].labels);
    free(ss);
    free(ks);
    free(byst);
    return rc;
}

/* ==== (b) import ======================================================================================== */

/* Cursor of one CloudWatch stream: events up to ts (ms) are imported, those at ts whose hashes are
 * listed too. While a push is in flight, `pending` says which events it carries and where the cursor
 * goes once they are stored. */
typedef struct {
    bool have;
    int64_t ts;
    st_u64vec_t h;
    bool pending;
    uint64_t p_n; /* events in the push */
    int64_t p_min, p_max;
    st_u64vec_t p_samples;
    int64_t p_ts; /* the cursor after it */
    st_u64vec_t p_h;
} cursor_t;

static void cursor_free(cursor_t *c)
{
    st_u64vec_free(&c->h);
    st_u64vec_free(&c->p_samples);
    st_u64vec_free(&c->p_h);
    memset(c, 0, sizeof *c);
}

static int cursor_encode(const cursor_t *c, const char *group, const char *stream, st_buf_t *b)
{
    ST_TRY(st_buf_puts(b, "{\"group\":"));
    ST_TRY(st_json_put_cstr(b, group));
    ST_TRY(st_buf_puts(b, ",\"stream\":"));
    ST_TRY(st_json_put_cstr(b, stream));
    ST_TRY(st_buf_printf(b, ",\"ts\":%lld,\"h\":", (long long)c->ts));
    ST_TRY(jw_hashes(b, c->h.v, c->h.n));
    if (c->pending) {
        ST_TRY(st_buf_printf(b, ",\"pending\":{\"n\":%llu,\"min\":%lld,\"max\":%lld,\"samples\":",
                             (unsigned long long)c->p_n, (long long)c->p_min, (long long)c->p_max));
        ST_TRY(jw_hashes(b, c->p_samples.v, c->p_samples.n));
        ST_TRY(st_buf_printf(b, ",\"ts\":%lld,\"h\":", (long long)c->p_ts));
        ST_TRY(jw_hashes(b, c->p_h.v, c->p_h.n));
        ST_TRY(st_buf_putc(b, '}'));
    }
    return st_buf_putc(b, '}');
}

static int cursor_decode(st_str_t v, cursor_t *c)
{
    memset(c, 0, sizeof *c);
    st_json_t j;
    st_json_init(&j, v.p, v.n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (st_str_eqc(k, "ts"))
            rc = jr_i64(&j, &c->ts);
        else if (st_str_eqc(k, "h"))
            rc = jr_hashes(&j, &vs, &c->h);
        else if (st_str_eqc(k, "pending")) {
            c->pending = true;
            rc = st_json_object_begin(&j);
            while (rc >= 0) {
                rc = st_json_next_key(&j, &k, &ks);
                if (rc <= 0) break;
                int64_t n = 0;
                if (st_str_eqc(k, "n")) {
                    rc = jr_i64(&j, &n);
                    c->p_n = n > 0 ? (uint64_t)n : 0;
                } else if (st_str_eqc(k, "min"))
                    rc = jr_i64(&j, &c->p_min);
                else if (st_str_eqc(k, "max"))
                    rc = jr_i64(&j, &c->p_max);
                else if (st_str_eqc(k, "samples"))
                    rc = jr_hashes(&j, &vs, &c->p_samples);
                else if (st_str_eqc(k, "ts"))
                    rc = jr_i64(&j, &c->p_ts);
                else if (st_str_eqc(k, "h"))
                    rc = jr_hashes(&j, &vs, &c->p_h);
                else
                    rc = st_json_skip(&j, NULL);
            }
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0) {
        cursor_free(c);
        return rc == -ENOMEM ? rc : ST_ECORRUPT;
    }
    c->have = true;
    return 0;
}

/* The state key of a CloudWatch stream: names joined by ':' (which neither may hold), hashed when long. */
static void import_key(const char *group, const char *stream, char *out, size_t cap)
{
    size_t gn = strlen(group), sn = strlen(stream);
    if (gn + sn + 12 < 400) {
        snprintf(out, cap, "cw/import/%s:%s", group, stream);
        return;
    }
    uint64_t h = st_hash64(group, gn) * 0x9E3779B97F4A7C15ULL ^ st_hash64(stream, sn);
    snprintf(out, cap, "cw/import/#%016llx", (unsigned long long)h);
}

typedef struct {
    const st_u64vec_t *h;
    cw_t *w;
    int64_t from, to;
    bool found;
} hfind_t;

static int hfind_cb(void *arg, int64_t ts, st_str_t line)
{
    hfind_t *f = arg;
    if (ts < f->from || ts > f->to) return 0;
    uint64_t h = event_hash(f->w, ts / ST_NS_PER_MS, line);
    for (size_t i = 0; i < f->h->n; i++) {
        if (f->h->v[i] == h) {
            f->found = true;
            return 1;
        }
    }
    return 0;
}

typedef struct {
    st_chunk_ref_t *v;
    size_t n, cap;
} refs_t;

static int ref_cb(void *arg, const st_chunk_ref_t *ref)
{
    refs_t *r = arg;
    for (size_t i = 0; i < r->n; i++)
        if (r->v[i].chunk_id == ref->chunk_id) return 0;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        st_chunk_ref_t *v = realloc(r->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = *ref;
    return 0;
}

/* Whether the push a killed run had in flight already sits in indexed chunks of the stream (any of its
 * sample events is there). Data still in the ingester's memory or WAL is not seen here: the caller
 * sends the identical push again, which the ingester drops as a repeated record. */
static int pushed_in_chunks(cw_t *w, const char *tenant, const st_labels_t *labels, const cursor_t *c,
                            bool *found)
{
    *found = false;
    st_buf_t canon = ST_BUF_INIT;
    ST_TRY(st_labels_format(labels, &canon));
    st_matcher_t *m = calloc(labels->n ? labels->n : 1, sizeof *m);
    if (m == NULL) {
        st_buf_free(&canon);
        return -ENOMEM;
    }
    for (size_t i = 0; i < labels->n; i++)
        m[i] = (st_matcher_t){ST_MATCH_EQ, labels->v[i].name, labels->v[i].value, NULL, NULL};
    int64_t from = c->p_min * ST_NS_PER_MS, to = c->p_max * ST_NS_PER_MS + (ST_NS_PER_MS - 1);
    refs_t refs = {NULL, 0, 0};
    st_u64vec_t ids = ST_U64VEC_INIT;
    st_index_read_t *rd;
    int rc = st_index_read_begin(w->r->o->index, &rd);
    if (rc == 0) {
        rc = st_index_select(rd, tenant, st_day_of(from), st_day_of(to), m, labels->n, &ids);
        for (size_t i = 0; rc == 0 && i < ids.n; i++) {
            st_str_t text;
            if (st_index_stream(rd, tenant, ids.v[i], &text, NULL) < 0 ||
                !st_str_eq(text, st_str(canon.data, canon.len)))
                continue;
            for (int64_t d = st_day_of(from); rc == 0 && d <= st_day_of(to); d++)
                rc = st_index_chunks(rd, tenant, d, ids.v[i], from, to, ref_cb, &refs);
        }
        st_index_read_end(rd);
    }
    for (size_t i = 0; rc == 0 && i < refs.n && !*found; i++) {
        hfind_t hf = {&c->p_samples, w, from, to, false};
        rc = read_chunk(w, &refs.v[i], hfind_cb, &hf);
        if (rc == 1 || rc == ST_EARCHIVED) rc = 0;
        *found = hf.found;
    }
    free(refs.v);
    st_u64vec_free(&ids);
    free(m);
    st_buf_free(&canon);
    return rc;
}

typedef struct {
    char **v;
    size_t n, cap;
} strlist_t;

static int strlist_add(strlist_t *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(s)) == NULL) return -ENOMEM;
    l->n++;
    return 0;
}

static bool strlist_has(const strlist_t *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0) return true;
    return false;
}

static void strlist_free(strlist_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int group_name_cb(void *arg, const st_cw_group_t *g)
{
    return strlist_add(arg, g->name);
}
static int stream_name_cb(void *arg, const st_cw_stream_t *s)
{
    return strlist_add(arg, s->name);
}

/* One CloudWatch stream being imported. */
typedef struct {
    cw_t *w;
    const st_lc_cw_import_t *im;
    const char *group, *stream;
    const st_labels_t *labels;
    char key[512];
    cursor_t cur;
    st_u64vec_t avail;    /* hashes at cur.ts imported by an earlier run and not met again yet */
    uint64_t limit_first; /* resuming an interrupted push: the first push repeats exactly this many */
    uint64_t events, bytes;
    const st_cw_event_t **sel; /* events of the current page that are new */
    size_t nsel, capsel;
} istream_t;

static int save_cursor(istream_t *is)
{
    st_buf_t v = ST_BUF_INIT;
    int rc = cursor_encode(&is->cur, is->group, is->stream, &v);
    if (rc == 0) rc = state_put_del(is->w->r, is->key, &v, NULL);
    st_buf_free(&v);
    return rc;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Stores ev[0..n) durably through the run's ingest callback, retrying admission refusals a few times. */
static int ingest_events(istream_t *is, const st_cw_event_t *const *ev, size_t n)
{
    const st_lc_run_opts_t *o = is->w->r->o;
    int rc = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        if (attempt > 0) sleep_ms(500L << (attempt - 1));
        st_push_t *p = NULL;
        size_t idx = 0;
        rc = st_push_new(is->im->tenant, &p);
        if (rc == 0) rc = st_push_stream(p, is->labels, &idx);
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = st_push_entry(p, idx, ev[i]->timestamp_ms * ST_NS_PER_MS, ev[i]->message, st_str("", 0));
        if (rc == 0) rc = o->ingest(o->ingest_arg, p);
        st_push_free(p);
        if (rc != ST_ELIMIT && rc != ST_EFULL) break;
    }
    return rc;
}

static int push_batch(istream_t *is, const st_cw_event_t *const *ev, size_t n)
{
    cw_t *w = is->w;
    cursor_t *c = &is->cur;
    /* where the cursor goes once these are stored */
    int64_t ts = c->ts;
    for (size_t i = 0; i < n; i++)
        if (ev[i]->timestamp_ms > ts) ts = ev[i]->timestamp_ms;
    st_u64vec_free(&c->p_h);
    st_u64vec_free(&c->p_samples);
    int rc = 0;
    if (ts == c->ts)
        for (size_t i = 0; rc == 0 && i < c->h.n; i++) rc = st_u64vec_push(&c->p_h, c->h.v[i]);
    c->p_min = INT64_MAX;
    c->p_max = INT64_MIN;
    size_t next = 0, taken = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint64_t h = event_hash(w, ev[i]->timestamp_ms, ev[i]->message);
        if (ev[i]->timestamp_ms == ts) rc = st_u64vec_push(&c->p_h, h);
        if (rc == 0 && i == next && taken < MAX_SAMPLES) {
            rc = st_u64vec_push(&c->p_samples, h);
            taken++;
            next = next_sample(i, taken, n);
        }
        if (ev[i]->timestamp_ms < c->p_min) c->p_min = ev[i]->timestamp_ms;
        if (ev[i]->timestamp_ms > c->p_max) c->p_max = ev[i]->timestamp_ms;
    }
    c->pending = true;
    c->p_n = n;
    c->p_ts = ts;
    if (rc == 0) rc = save_cursor(is);
    if (rc < 0) return rc;
    rc = ingest_events(is, ev, n);
    if (rc < 0) return rc; /* the pending push stays recorded: the next run settles it */
    st_lc_crash_point("cw-import-after-ingest");
    if (ts != c->ts) st_u64vec_free(&is->avail);
    c->ts = ts;
    st_u64vec_t t = c->h;
    c->h = c->p_h;
    c->p_h = t;
    st_u64vec_free(&c->p_h);
    st_u64vec_free(&c->p_samples);
    c->pending = false;
    if ((rc = save_cursor(is)) < 0) return rc;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += ev[i]->message.n;
    is->events += n;
    is->bytes += bytes;
    st_counter_add(w->m_import_events, n);
    st_counter_add(w->m_import_bytes, bytes);
    return 0;
}

static int import_page_cb(void *arg, const st_cw_events_t *page)
{
    istream_t *is = arg;
    is->nsel = 0;
    if (page->n > is->capsel) {
        const st_cw_event_t **v = realloc(is->sel, page->n * sizeof *v);
        if (v == NULL) return -ENOMEM;
        is->sel = v;
        is->capsel = page->n;
    }
    for (size_t i = 0; i < page->n; i++) {
        const st_cw_event_t *e = &page->v[i];
        if (e->timestamp_ms < is->cur.ts) continue; /* before the cursor (GetLogEvents is time-ordered) */
        if (e->timestamp_ms == is->cur.ts && is->avail.n) {
            uint64_t h = event_hash(is->w, e->timestamp_ms, e->message);
            bool seen = false;
            for (size_t k = 0; k < is->avail.n && !seen; k++) {
                if (is->avail.v[k] == h) {
                    is->avail.v[k] = is->avail.v[--is->avail.n]; /* one occurrence per imported copy */
                    seen = true;
                }
            }
            if (seen) continue;
        }
        if (e->message.n == 0) continue;
        is->sel[is->nsel++] = e;
    }
    size_t done = 0;
    int rc = 0;
    while (rc == 0 && done < is->nsel) {
        size_t n = is->nsel - done;
        if (is->limit_first && n > is->limit_first) n = (size_t)is->limit_first;
        is->limit_first = 0;
        rc = push_batch(is, is->sel + done, n);
        done += n;
    }
    return rc;
}

static int import_stream(cw_t *w, const st_lc_cw_import_t *im, const char *group, const char *stream,
                         const st_labels_t *labels)
{
    lc_run_t *r = w->r;
    istream_t is;
    memset(&is, 0, sizeof is);
    is.w = w;
    is.im = im;
    is.group = group;
    is.stream = stream;
    is.labels = labels;
    import_key(group, stream, is.key, sizeof is.key);
    st_index_read_t *rd;
    int rc = st_index_read_begin(r->o->index, &rd);
    if (rc < 0) return rc;
    st_str_t v;
    int grc = st_index_state_get(rd, st_cstr(is.key), &v);
    if (grc == 0) rc = cursor_decode(v, &is.cur);
    st_index_read_end(rd);
    if (rc == ST_ECORRUPT) {
        ST_LOG_WARN(MOD,
                    "msg=\"unreadable CloudWatch import cursor; the stream starts over at its start window\" "
                    "key=\"%s\"",
                    is.key);
        rc = 0;
    }
    if (rc < 0) return rc;
    if (!is.cur.have) is.cur.ts = r->o->now_ns / ST_NS_PER_MS - im->start_ns / ST_NS_PER_MS;
    if (is.cur.pending) {
        /* a push a killed run had in flight: already in chunks -> move on; else send it again, identical */
        bool found = false;
        if ((rc = pushed_in_chunks(w, im->tenant, labels, &is.cur, &found)) < 0) goto out;
        if (found) {
            is.cur.ts = is.cur.p_ts;
            st_u64vec_t t = is.cur.h;
            is.cur.h = is.cur.p_h;
            is.cur.p_h = t;
            is.cur.pending = false;
            if ((rc = save_cursor(&is)) < 0) goto out;
            progress(r,
                     "cloudwatch: the import of %s %s interrupted earlier had been stored; cursor moved on",
                     group, stream);
        } else {
            is.limit_first = is.cur.p_n;
        }
    }
    for (size_t i = 0; rc == 0 && i < is.cur.h.n; i++) rc = st_u64vec_push(&is.avail, is.cur.h.v[i]);
    if (rc < 0) goto out;
    int64_t end = im->delay_ns > 0 ? r->o->now_ns / ST_NS_PER_MS - im->delay_ns / ST_NS_PER_MS : 0;
    if (end != 0 && end <= is.cur.ts) goto out;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    rc = st_cw_read_stream(w->cli, group, stream, is.cur.ts > 0 ? is.cur.ts : 1, end, MAX_READ_PAGES,
                           import_page_cb, &is, &err);
    if (is.events)
        progress(r, "cloudwatch: imported %llu events (%llu bytes) from %s %s into tenant %s",
                 (unsigned long long)is.events, (unsigned long long)is.bytes, group, stream, im->tenant);
    if (rc == ST_ENOTFOUND) rc = 0; /* deleted meanwhile */
    if (rc < 0) {
        ST_LOG_ERROR(
            MOD,
            "msg=\"CloudWatch import failed; retried next run\" group=%s stream=\"%s\" err=\"%s\" code=%s",
            group, stream, st_s3_strerror(rc), err.code);
        progress(r, "cloudwatch: importing %s %s failed: %s %s", group, stream, st_s3_strerror(rc), err.code);
    }
out:
    w->import_events += is.events;
    w->import_bytes += is.bytes;
    cursor_free(&is.cur);
    st_u64vec_free(&is.avail);
    free(is.sel);
    return rc;
}

static bool unreachable(int rc)
{
    return rc == ST_S3_EAUTH || rc == ST_S3_ENETWORK || rc == ST_S3_EUNAVAILABLE || rc == ST_ETIMEOUT;
}

static int import_all(cw_t *w)
{
    lc_run_t *r = w->r;
    const st_lc_cloudwatch_t *cw = w->cw;
    if (cw->nimport == 0) return 0;
    bool dry = r->o->dry_run, can = !dry && r->o->ingest != NULL;
    if (!dry && !can)
        progress(
            r,
            "cloudwatch: import skipped: this run has no ingester (strata serve holds the data directory and "
            "imports on its own lifecycle runs)");
    strlist_t seen = {0};
    int rc = 0;
    bool stop = false;
    for (int i = 0; rc == 0 && !stop && i < cw->nimport; i++) {
        const st_lc_cw_import_t *im = &cw->import[i];
        strlist_t groups = {0};
        st_s3_error_t err;
        memset(&err, 0, sizeof err);
        int lrc;
        if (im->log_group[0]) {
            st_cw_group_t g;
            lrc = st_cw_find_log_group(w->cli, im->log_group, &g, &err);
            if (lrc == 0) lrc = strlist_add(&groups, g.name);
            st_cw_group_clear(&g);
            if (lrc == ST_ENOTFOUND) {
                progress(r, "cloudwatch: no log group %s to import", im->log_group);
                lrc = 0;
            }
        } else {
            lrc = st_cw_list_log_groups(w->cli, im->log_group_prefix, group_name_cb, &groups, &err);
        }
        if (lrc == -ENOMEM) rc = lrc;
        if (lrc < 0) {
            progress(r, "cloudwatch: listing log groups failed: %s %s", st_s3_strerror(lrc), err.code);
            if (!dry) fail(w, w->m_fail_import);
            stop = unreachable(lrc);
        }
        for (size_t g = 0; rc == 0 && !stop && lrc == 0 && g < groups.n; g++) {
            const char *group = groups.v[g];
            if (strlist_has(&seen, group)) continue; /* an earlier import rule has it */
            if ((rc = strlist_add(&seen, group)) < 0) break;
            strlist_t streams = {0};
            int src =
                st_cw_list_log_streams(w->cli, group, im->log_stream_prefix[0] ? im->log_stream_prefix : NULL,
                                       stream_name_cb, &streams, &err);
            if (src == -ENOMEM) rc = src;
            if (src < 0 && src != ST_ENOTFOUND) {
                progress(r, "cloudwatch: listing the streams of %s failed: %s %s", group, st_s3_strerror(src),
                         err.code);
                if (!dry) fail(w, w->m_fail_import);
                stop = unreachable(src);
            }
            if (dry && r->o->plan && src == 0)
                fprintf(r->o->plan, "cloudwatch import  %s (%zu streams) -> tenant %s\n", group, streams.n,
                        im->tenant);
            for (size_t s = 0; rc == 0 && !stop && src == 0 && s < streams.n; s++) {
                st_label_t *pairs = calloc(im->labels.n + 2, sizeof *pairs);
                if (pairs == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                pairs[0] = (st_label_t){ST_STR("log_group"), st_cstr(group)};
                pairs[1] = (st_label_t){ST_STR("log_stream"), st_cstr(streams.v[s])};
                for (size_t k = 0; k < im->labels.n; k++) pairs[k + 2] = im->labels.v[k];
                st_labels_t l = ST_LABELS_INIT;
                rc = st_labels_from_pairs(pairs, im->labels.n + 2, &l);
                free(pairs);
                if (rc < 0) break;
                rc = want_retention(w, group, st_lc_policy_for(r->o->lc, im->tenant, &l));
                if (rc == 0 && can) {
                    int irc = import_stream(w, im, group, streams.v[s], &l);
                    if (irc == -ENOMEM)
                        rc = irc;
                    else if (irc < 0) {
                        fail(w, w->m_fail_import);
                        stop = unreachable(irc);
                        if (irc == ST_ELIMIT || irc == ST_EFULL || irc == ST_EBADSTATE) {
                            progress(r,
                                     "cloudwatch: the ingester refuses more data (%s); the import continues "
                                     "next run",
                                     st_strerror(irc));
                            stop = true;
                        }
                    }
                }
                st_labels_free(&l);
            }
            strlist_free(&streams);
        }
        strlist_free(&groups);
    }
    strlist_free(&seen);
    return rc;
}

/* ==== (c) retention ======================================================================================
 */

static int apply_retention(cw_t *w)
{
    lc_run_t *r = w->r;
    for (size_t i = 0; i < w->nret; i++) {
        const want_ret_t *want = &w->ret[i];
        st_cw_group_t g;
        st_s3_error_t err;
        memset(&err, 0, sizeof err);
        int rc = st_cw_find_log_group(w->cli, want->group, &g, &err);
        if (rc == -ENOMEM) return rc;
        if (rc == ST_ENOTFOUND) {
            if (r->o->dry_run && r->o->plan)
                fprintf(r->o->plan, "cloudwatch retention %s: %d days once the group exists\n", want->group,
                        want->days);
            continue;
        }
        if (rc < 0) {
            progress(r, "cloudwatch: reading the retention of %s failed: %s %s", want->group,
                     st_s3_strerror(rc), err.code);
            if (!r->o->dry_run) fail(w, w->m_fail_retention);
            if (unreachable(rc)) return 0;
            continue;
        }
        int cur = g.retention_days;
        st_cw_group_clear(&g);
        if (cur == want->days) continue;
        char was[32];
        if (cur)
            snprintf(was, sizeof was, "%d days", cur);
        else
            snprintf(was, sizeof was, "never expire");
        if (r->o->dry_run) {
            if (r->o->plan)
                fprintf(r->o->plan, "cloudwatch retention %s: %s -> %d days\n", want->group, was, want->days);
            w->ret_changes++;
            continue;
        }
        rc = st_cw_put_retention_policy(w->cli, want->group, want->days, &err);
        if (rc == -ENOMEM) return rc;
        if (rc < 0) {
            progress(r, "cloudwatch: setting the retention of %s failed: %s %s", want->group,
                     st_s3_strerror(rc), err.code);
            fail(w, w->m_fail_retention);
            if (unreachable(rc)) return 0;
            continue;
        }
        w->ret_changes++;
        st_counter_inc(w->m_retention);
        progress(r, "cloudwatch: retention of %s set to %d days (was %s)", want->group, want->days, was);
    }
    return 0;
}

/* ==== the step ============================================================================================
 */

int st_lc_cloudwatch_run(lc_run_t *r)
{
    const st_lc_cloudwatch_t *cw = &r->o->lc->cloudwatch;
    if (!cw->configured || (cw->nship == 0 && cw->nimport == 0)) return 0;
    cw_t w;
    memset(&w, 0, sizeof w);
    w.r = r;
    w.cw = cw;
    w.wall_ms = st_now_ns() / ST_NS_PER_MS;
    w.m_ship_events =
        st_counter("strata_cloudwatch_shipped_events_total", "Events accepted by CloudWatch Logs.", NULL);
    w.m_ship_bytes =
        st_counter("strata_cloudwatch_shipped_bytes_total",
                   "Bytes accepted by CloudWatch Logs (message + 26 per event, as billed).", NULL);
    w.m_import_events =
        st_counter("strata_cloudwatch_imported_events_total", "Events imported from CloudWatch Logs.", NULL);
    w.m_import_bytes = st_counter("strata_cloudwatch_imported_bytes_total",
                                  "Message bytes imported from CloudWatch Logs.", NULL);
    w.m_retention =
        st_counter("strata_cloudwatch_retention_changes_total", "PutRetentionPolicy calls made.", NULL);
    static const char *const extra[3] = {"rejected_too_old", "rejected_too_new", "rejected_expired"};
    for (int i = 1; i < ST_CW_SKIP_COUNT + 3; i++) {
        char l[64];
        snprintf(l, sizeof l, "reason=\"%s\"",
                 i < ST_CW_SKIP_COUNT ? st_cw_skip_name(i) : extra[i - ST_CW_SKIP_COUNT]);
        w.m_skip[i] =
            st_counter("strata_cloudwatch_skipped_events_total",
                       "Events not shipped: outside CloudWatch's window or limits, or rejected by it.", l);
    }
    w.m_fail_ship = st_counter("strata_cloudwatch_failures_total",
                               "CloudWatch steps that failed (retried next run).", "step=\"ship\"");
    w.m_fail_import = st_counter("strata_cloudwatch_failures_total",
                                 "CloudWatch steps that failed (retried next run).", "step=\"import\"");
    w.m_fail_retention = st_counter("strata_cloudwatch_failures_total",
                                    "CloudWatch steps that failed (retried next run).", "step=\"retention\"");
    const char *attempts = getenv("STRATA_CW_MAX_ATTEMPTS"), *base = getenv("STRATA_CW_RETRY_BASE_MS");
    st_cw_config_t cc = {.region = cw->region[0] ? cw->region : NULL,
                         .endpoint = cw->endpoint[0] ? cw->endpoint : NULL,
                         .max_attempts = attempts ? atoi(attempts) : cw->max_attempts,
                         .retry_base_ms = base ? atol(base) : 0};
    int rc = st_cw_client_create(&cc, &w.cli);
    if (rc < 0) {
        progress(r, "cloudwatch: cannot create the CloudWatch Logs client: %s", st_s3_strerror(rc));
        if (!r->o->dry_run) fail(&w, w.m_fail_ship);
        return rc == -ENOMEM ? rc : 0;
    }
    rc = ship_all(&w);
    if (rc >= 0) rc = import_all(&w);
    if (rc >= 0) rc = apply_retention(&w);
    st_lc_report_t *rep = r->rep;
    rep->cw_shipped_events += w.ship_events;
    rep->cw_shipped_bytes += w.ship_bytes;
    rep->cw_skipped_events += w.skipped;
    rep->cw_imported_events += w.import_events;
    rep->cw_imported_bytes += w.import_bytes;
    rep->cw_retention_changes += w.ret_changes;
    rep->cw_requests += w.ship_requests;
    double cost = (double)w.ship_bytes / (1024.0 * 1024.0 * 1024.0) * INGEST_PRICE_PER_GB;
    rep->one_time_cost_usd += cost;
    if (r->o->plan)
        fprintf(r->o->plan,
                "cloudwatch: %s %llu events (%llu bytes) in %llu PutLogEvents requests, $%.4f ingestion; "
                "%llu events "
                "skipped; imported %llu events (%llu bytes); %llu retention changes\n",
                r->o->dry_run ? "ship" : "shipped", (unsigned long long)w.ship_events,
                (unsigned long long)w.ship_bytes, (unsigned long long)w.ship_requests, cost,
                (unsigned long long)w.skipped, (unsigned long long)w.import_events,
                (unsigned long long)w.import_bytes, (unsigned long long)w.ret_changes);
    st_cw_client_destroy(w.cli);
    st_lc_reader_free(w.reader);
    for (size_t i = 0; i < w.nret; i++) free(w.ret[i].group);
    free(w.ret);
    for (size_t i = 0; i < w.nblocked; i++) free(w.blocked[i]);
    free(w.blocked);
    st_buf_free(&w.scratch);
    return rc < 0 ? rc : 0;
}
