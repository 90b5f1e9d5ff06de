/* config.c: the lifecycle.audit and lifecycle.prices mappings (parsed here, called from the lifecycle
 * section's parser in lifecycle/policy.c) and their defaults. */
#include "audit/audit.h"

#include "common/err.h"
#include "common/timeutil.h"
#include "config/config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void st_audit_config_defaults(st_audit_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->seal_interval_ns = 3600 * ST_NS_PER_SEC;
    c->segment_max_bytes = 64u << 20;
    c->flush_interval_ns = ST_NS_PER_SEC;
    c->record_queries = true;
    c->deletion_grace_ns = ST_NS_PER_DAY;
    /* us-east-1 list prices (docs/compliance.md); hot: EBS gp3 */
    static const double storage[ST_AUDIT_NTIERS] = {0.08, 0.023, 0.0125, 0.004, 0.004, 0.00099};
    static const double requests[ST_AUDIT_NTIERS] = {0, 0.005, 0.01, 0.02, 0.03, 0.05};
    memcpy(c->prices.storage_gb_month, storage, sizeof storage);
    memcpy(c->prices.requests_per_1000, requests, sizeof requests);
    c->prices.archive_overhead_bytes = 40960;
    c->prices.cloudwatch_ingest_gb = 0.50;
    c->prices.cloudwatch_storage_gb_month = 0.03;
}

const st_audit_config_t *st_audit_config_of(const st_lc_config_t *lc)
{
    static st_audit_config_t defaults;
    static int once;
    if (lc && lc->audit) return lc->audit;
    if (!once) {
        st_audit_config_defaults(&defaults);
        once = 1;
    }
    return &defaults;
}

void st_audit_config_free(struct st_audit_config *c)
{
    free(c);
}

/* ---- parsing ---------------------------------------------------------------------------------------- */

typedef struct {
    const st_config_t *cfg;
    yaml_document_t *doc;
    const char *section;
    st_buf_t *err;
    int *nerr;
} cp_t;

static void perr(cp_t *p, yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(cp_t *p, yaml_node_t *n, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if ((*p->nerr)++ > 0) st_buf_putc(p->err, '\n');
    int line = p->cfg->lifecycle.line + (n ? (int)n->start_mark.line : 0);
    st_buf_printf(p->err, "%s:%d: lifecycle.%s%s%s: %s",
                  p->cfg->lifecycle.file[0] ? p->cfg->lifecycle.file : "config", line, p->section,
                  key[0] ? "." : "", key, msg);
}

static bool scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}
static st_str_t sv(yaml_node_t *n)
{
    return st_str((const char *)n->data.scalar.value, n->data.scalar.length);
}

static void get_bool(cp_t *p, yaml_node_t *v, const char *key, bool *out)
{
    if (scalar(v)) {
        st_str_t s = sv(v);
        if (st_str_eqc(s, "true") || st_str_eqc(s, "yes") || st_str_eqc(s, "on")) {
            *out = true;
            return;
        }
        if (st_str_eqc(s, "false") || st_str_eqc(s, "no") || st_str_eqc(s, "off")) {
            *out = false;
            return;
        }
    }
    perr(p, v, key, "expected true or false");
}

static void get_duration(cp_t *p, yaml_node_t *v, const char *key, int64_t min, int64_t *out)
{
    int64_t d;
    if (scalar(v) && (st_parse_prom_duration(sv(v), &d) == 0 || st_parse_go_duration(sv(v), &d) == 0) &&
        d >= min) {
        *out = d;
        return;
    }
    char m[40];
    st_format_prom_duration(min, m);
    perr(p, v, key, "invalid duration \"%.*s\" (e.g. 1h, 30m, 7d; at least %s)", scalar(v) ? (int)sv(v).n : 0,
         scalar(v) ? sv(v).p : "", min ? m : "0s");
}

static bool parse_number(yaml_node_t *v, double *out)
{
    if (!scalar(v) || sv(v).n == 0 || sv(v).n >= 64) return false;
    char tmp[64];
    memcpy(tmp, sv(v).p, sv(v).n);
    tmp[sv(v).n] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (*end != '\0' || !(d >= 0) || d > 1e12) return false;
    *out = d;
    return true;
}

static void get_price(cp_t *p, yaml_node_t *v, const char *key, double *out)
{
    if (!parse_number(v, out)) perr(p, v, key, "expected a price in USD (a number >= 0)");
}

static void get_bytes(cp_t *p, yaml_node_t *v, const char *key, uint64_t min, uint64_t *out)
{
    uint64_t b;
    if (scalar(v) && st_cfg_parse_bytes(sv(v).p, sv(v).n, &b) == 0 && b >= min) {
        *out = b;
        return;
    }
    perr(p, v, key, "invalid size (e.g. 64MiB; at least %llu bytes)", (unsigned long long)min);
}

static const char *const tier_keys[ST_AUDIT_NTIERS] = {"hot",        "STANDARD", "STANDARD_IA",
                                                       "GLACIER_IR", "GLACIER",  "DEEP_ARCHIVE"};

/* {hot: 0.08, STANDARD: 0.023, ...} */
static void parse_tier_prices(cp_t *p, yaml_node_t *m, const char *key, double *out)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        perr(p, m, key, "expected a mapping of storage class to price");
        return;
    }
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, pr->key),
                    *v = yaml_document_get_node(p->doc, pr->value);
        if (!scalar(k)) continue;
        char kp[128];
        snprintf(kp, sizeof kp, "%s.%.*s", key, (int)(sv(k).n > 40 ? 40 : sv(k).n), sv(k).p);
        int t = -1;
        for (int i = 0; i < ST_AUDIT_NTIERS; i++)
            if (st_str_eqc(sv(k), tier_keys[i])) t = i;
        if (t < 0)
            perr(p, k, kp,
                 "unknown storage class (hot, STANDARD, STANDARD_IA, GLACIER_IR, GLACIER, DEEP_ARCHIVE)");
        else
            get_price(p, v, kp, &out[t]);
    }
}

static void parse_prices(cp_t *p, yaml_node_t *m, st_audit_prices_t *pr)
{
    for (yaml_node_pair_t *it = m->data.mapping.pairs.start; it < m->data.mapping.pairs.top; it++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, it->key),
                    *v = yaml_document_get_node(p->doc, it->value);
        if (!scalar(k)) continue;
        st_str_t key = sv(k);
        char kp[64];
        snprintf(kp, sizeof kp, "%.*s", (int)(key.n > 40 ? 40 : key.n), key.p);
        if (st_str_eqc(key, "storage_gb_month"))
            parse_tier_prices(p, v, kp, pr->storage_gb_month);
        else if (st_str_eqc(key, "requests_per_1000"))
            parse_tier_prices(p, v, kp, pr->requests_per_1000);
        else if (st_str_eqc(key, "archive_overhead_bytes"))
            get_price(p, v, kp, &pr->archive_overhead_bytes);
        else if (st_str_eqc(key, "cloudwatch_ingest_gb"))
            get_price(p, v, kp, &pr->cloudwatch_ingest_gb);
        else if (st_str_eqc(key, "cloudwatch_storage_gb_month"))
            get_price(p, v, kp, &pr->cloudwatch_storage_gb_month);
        else
            perr(p, k, kp,
                 "unknown key (expected storage_gb_month, requests_per_1000, archive_overhead_bytes, "
                 "cloudwatch_ingest_gb, cloudwatch_storage_gb_month)");
    }
}

static void parse_audit(cp_t *p, yaml_node_t *m, st_audit_config_t *c)
{
    yaml_node_t *lock = NULL;
    bool has_retain = false;
    for (yaml_node_pair_t *it = m->data.mapping.pairs.start; it < m->data.mapping.pairs.top; it++) {
        yaml_node_t *k = yaml_document_get_node(p->doc, it->key),
                    *v = yaml_document_get_node(p->doc, it->value);
        if (!scalar(k)) continue;
        st_str_t key = sv(k);
        char kp[64];
        snprintf(kp, sizeof kp, "%.*s", (int)(key.n > 40 ? 40 : key.n), key.p);
        if (st_str_eqc(key, "enabled"))
            get_bool(p, v, kp, &c->enabled);
        else if (st_str_eqc(key, "record_queries"))
            get_bool(p, v, kp, &c->record_queries);
        else if (st_str_eqc(key, "seal_interval"))
            get_duration(p, v, kp, ST_NS_PER_SEC, &c->seal_interval_ns);
        else if (st_str_eqc(key, "flush_interval"))
            get_duration(p, v, kp, 10 * ST_NS_PER_MS, &c->flush_interval_ns);
        else if (st_str_eqc(key, "deletion_grace"))
            get_duration(p, v, kp, 0, &c->deletion_grace_ns);
        else if (st_str_eqc(key, "segment_max_bytes"))
            get_bytes(p, v, kp, 4096, &c->segment_max_bytes);
        else if (st_str_eqc(key, "dir")) {
            if (!scalar(v) || sv(v).n >= sizeof c->dir)
                perr(p, v, kp, "expected a directory path");
            else
                snprintf(c->dir, sizeof c->dir, "%.*s", (int)sv(v).n, sv(v).p);
        } else if (st_str_eqc(key, "object_lock")) {
            lock = v;
            if (scalar(v) && (st_str_eqc(sv(v), "COMPLIANCE") || st_str_eqc(sv(v), "GOVERNANCE")))
                snprintf(c->lock_mode, sizeof c->lock_mode, "%.*s", (int)sv(v).n, sv(v).p);
            else if (scalar(v) && (st_str_eqc(sv(v), "none") || sv(v).n == 0))
                c->lock_mode[0] = '\0';
            else
                perr(p, v, kp, "expected COMPLIANCE, GOVERNANCE or none");
        } else if (st_str_eqc(key, "retain")) {
            has_retain = true;
            get_duration(p, v, kp, ST_NS_PER_DAY, &c->lock_retain_ns);
        } else {
            perr(p, k, kp,
                 "unknown key (expected enabled, dir, seal_interval, segment_max_bytes, flush_interval, "
                 "record_queries, object_lock, retain, deletion_grace)");
        }
    }
    if (c->lock_mode[0] && !has_retain) perr(p, lock, "retain", "is required with object_lock (e.g. 2557d)");
}

int st_audit_config_parse(const st_config_t *cfg, struct yaml_document_s *doc, struct yaml_node_s *node,
                          const char *section, struct st_audit_config **out, st_buf_t *err, int *nerr)
{
    if (*out == NULL) {
        if ((*out = malloc(sizeof **out)) == NULL) return -ENOMEM;
        st_audit_config_defaults(*out);
    }
    cp_t p = {cfg, doc, strcmp(section, "prices") == 0 ? "prices" : "audit", err, nerr};
    if (node == NULL || node->type != YAML_MAPPING_NODE) {
        perr(&p, node, "", "expected a mapping");
        return 0;
    }
    if (strcmp(p.section, "prices") == 0)
        parse_prices(&p, node, &(*out)->prices);
    else
        parse_audit(&p, node, *out);
    return 0;
}
