/* policy.c: the lifecycle configuration (tiers, policies, rules, S3 target) parsed from the verbatim
 * "lifecycle:" config section with libyaml, validated (tier order, S3 minimum storage durations,
 * CloudWatch retention values), and evaluated per stream and chunk age. */
#include "lifecycle/lifecycle_int.h"

#include "audit/audit.h"

#include "common/err.h"
#include "common/timeutil.h"
#include "config/config.h"
#include "querier/querier.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const char *const tier_names[ST_TIER_COUNT] = {"hot",        "STANDARD", "STANDARD_IA",
                                                      "GLACIER_IR", "GLACIER",  "DEEP_ARCHIVE"};

const char *st_tier_name(st_tier_t t)
{
    return t < ST_TIER_COUNT ? tier_names[t] : "deleted";
}

int st_tier_parse(st_str_t s, st_tier_t *out)
{
    for (int i = 0; i < ST_TIER_COUNT; i++) {
        if (st_str_eqc(s, tier_names[i])) {
            *out = (st_tier_t)i;
            return 0;
        }
    }
    return ST_EPARSE;
}

bool st_tier_archived(st_tier_t t)
{
    return t == ST_TIER_GLACIER || t == ST_TIER_DEEP_ARCHIVE;
}

int64_t st_tier_min_days(st_tier_t t)
{
    switch (t) {
    case ST_TIER_STANDARD_IA: return 30;
    case ST_TIER_GLACIER_IR:
    case ST_TIER_GLACIER: return 90;
    case ST_TIER_DEEP_ARCHIVE: return 180;
    default: return 0;
    }
}

/* ---- parsing ------------------------------------------------------------------------------------ */

typedef struct {
    yaml_document_t doc;
    const st_config_t *cfg;
    st_buf_t err;
    int nerr;
    st_lc_config_t *c;
} P;

static int line_of(P *p, yaml_node_t *n)
{
    return p->cfg->lifecycle.line + (int)n->start_mark.line;
}

static void perr(P *p, yaml_node_t *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void perr(P *p, yaml_node_t *n, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->nerr++ > 0) st_buf_putc(&p->err, '\n');
    st_buf_printf(&p->err, "%s:%d: lifecycle%s%s: %s",
                  p->cfg->lifecycle.file[0] ? p->cfg->lifecycle.file : "config",
                  n ? line_of(p, n) : p->cfg->lifecycle.line, path[0] ? "." : "", path, msg);
}

static yaml_node_t *node(P *p, int id)
{
    return yaml_document_get_node(&p->doc, id);
}

static bool is_scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE;
}

static st_str_t sval(yaml_node_t *n)
{
    return st_str((const char *)n->data.scalar.value, n->data.scalar.length);
}

static bool get_str(P *p, yaml_node_t *n, const char *path, char *dst, size_t cap)
{
    if (!is_scalar(n)) {
        perr(p, n, path, "expected a string");
        return false;
    }
    st_str_t s = sval(n);
    if (s.n >= cap) {
        perr(p, n, path, "longer than %zu bytes", cap - 1);
        return false;
    }
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return true;
}

static bool get_bool(P *p, yaml_node_t *n, const char *path, bool *out)
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
    perr(p, n, path, "expected true or false");
    return false;
}

static bool get_duration(P *p, yaml_node_t *n, const char *path, int64_t *out)
{
    if (is_scalar(n) &&
        (st_parse_prom_duration(sval(n), out) == 0 || st_parse_go_duration(sval(n), out) == 0) && *out >= 0)
        return true;
    perr(p, n, path, "invalid duration \"%.*s\" (e.g. 7d, 720h, 1y)", is_scalar(n) ? (int)sval(n).n : 0,
         is_scalar(n) ? sval(n).p : "");
    return false;
}

static bool get_int(P *p, yaml_node_t *n, const char *path, int lo, int hi, int *out)
{
    if (is_scalar(n)) {
        char tmp[32];
        st_str_t s = sval(n);
        if (s.n > 0 && s.n < sizeof tmp) {
            memcpy(tmp, s.p, s.n);
            tmp[s.n] = '\0';
            char *end;
            long v = strtol(tmp, &end, 10);
            if (*end == '\0' && v >= lo && v <= hi) {
                *out = (int)v;
                return true;
            }
        }
    }
    perr(p, n, path, "expected an integer from %d to %d", lo, hi);
    return false;
}

static bool get_bytes(P *p, yaml_node_t *n, const char *path, uint64_t *out)
{
    if (is_scalar(n) && st_cfg_parse_bytes(sval(n).p, sval(n).n, out) == 0) return true;
    perr(p, n, path, "invalid size (e.g. 45GB, 128MiB)");
    return false;
}

static const int cw_retention[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                   365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};

static void parse_tiers(P *p, yaml_node_t *seq, const char *ppath, st_lc_policy_t *pol)
{
    char path[256];
    snprintf(path, sizeof path, "%s.tiers", ppath);
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE) {
        perr(p, seq, path, "expected a list of {class, until}");
        return;
    }
    int i = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, i++) {
        yaml_node_t *m = node(p, *it);
        char ip[288];
        snprintf(ip, sizeof ip, "%s[%d]", path, i);
        if (m == NULL || m->type != YAML_MAPPING_NODE) {
            perr(p, m, ip, "expected a mapping {class: ..., until: ...}");
            continue;
        }
        if (pol->ntiers == ST_LC_MAX_TIERS) {
            perr(p, m, ip, "too many tiers (max %d)", ST_LC_MAX_TIERS);
            break;
        }
        st_lc_tier_t t = {ST_TIER_COUNT, -1};
        yaml_node_t *cls = NULL;
        for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
            if (!is_scalar(k)) continue;
            char kp[320];
            snprintf(kp, sizeof kp, "%s.%.*s", ip, (int)sval(k).n, sval(k).p);
            if (st_str_eqc(sval(k), "class") || st_str_eqc(sval(k), "storage")) {
                cls = v;
                if (!is_scalar(v) || st_tier_parse(sval(v), &t.tier) < 0)
                    perr(p, v, kp,
                         "unknown storage class \"%.*s\" (one of hot, STANDARD, STANDARD_IA, GLACIER_IR, "
                         "GLACIER, "
                         "DEEP_ARCHIVE)",
                         is_scalar(v) ? (int)sval(v).n : 0, is_scalar(v) ? sval(v).p : "");
            } else if (st_str_eqc(sval(k), "until")) {
                get_duration(p, v, kp, &t.until_ns);
            } else {
                perr(p, k, kp, "unknown key (expected class, until)");
            }
        }
        if (cls == NULL) perr(p, m, ip, "class is required");
        if (t.until_ns < 0) perr(p, m, ip, "until is required");
        if (t.tier != ST_TIER_COUNT && t.until_ns >= 0) pol->tiers[pol->ntiers++] = t;
    }
}

static void check_policy(P *p, yaml_node_t *m, const char *ppath, st_lc_policy_t *pol)
{
    char path[288];
    for (int i = 0; i < pol->ntiers; i++) {
        const st_lc_tier_t *t = &pol->tiers[i];
        snprintf(path, sizeof path, "%s.tiers[%d]", ppath, i);
        if (i > 0 && t->tier <= pol->tiers[i - 1].tier)
            perr(p, m, path, "tiers must go from warmer to colder classes (%s after %s)",
                 st_tier_name(t->tier), st_tier_name(pol->tiers[i - 1].tier));
        if (t->tier == ST_TIER_HOT && i > 0) perr(p, m, path, "hot can only be the first tier");
        if (i > 0 && t->until_ns <= pol->tiers[i - 1].until_ns)
            perr(p, m, path, "until must grow from tier to tier");
        int64_t from = i > 0 ? pol->tiers[i - 1].until_ns : 0;
        int64_t stay = t->until_ns - from, min = st_tier_min_days(t->tier) * ST_NS_PER_DAY;
        if (!pol->allow_early_delete && stay < min) {
            char a[40], b[40];
            st_format_prom_duration(stay, a);
            st_format_prom_duration(min, b);
            perr(p, m, path,
                 "data stays %s in %s, less than its %s minimum storage duration (billed anyway); lengthen "
                 "the tier "
                 "or set allow_early_delete: true",
                 a, st_tier_name(t->tier), b);
        }
    }
    snprintf(path, sizeof path, "%s.delete_after", ppath);
    if (pol->ntiers == 0) perr(p, m, ppath, "at least one tier is required");
    if (pol->delete_after_ns && pol->ntiers && pol->delete_after_ns < pol->tiers[pol->ntiers - 1].until_ns)
        perr(p, m, path, "must not be shorter than the last tier's until");
    if (pol->delete_after_ns == 0 && pol->erasable)
        perr(p, m, path, "an erasable policy needs a deletion age");
    if (pol->object_lock != ST_LOCK_NONE && pol->delete_after_ns == 0)
        perr(p, m, path, "object_lock needs delete_after (the retain-until date)");
    if (pol->immutable && pol->erasable) perr(p, m, ppath, "a policy cannot be both immutable and erasable");
    if (pol->cloudwatch_retention_days) {
        bool ok = false;
        for (size_t i = 0; i < sizeof cw_retention / sizeof cw_retention[0]; i++)
            ok |= cw_retention[i] == pol->cloudwatch_retention_days;
        if (!ok) {
            int best = cw_retention[0];
            for (size_t i = 0; i < sizeof cw_retention / sizeof cw_retention[0]; i++)
                if (cw_retention[i] >= pol->cloudwatch_retention_days) {
                    best = cw_retention[i];
                    break;
                }
            snprintf(path, sizeof path, "%s.cloudwatch_retention_days", ppath);
            perr(p, m, path, "%d is not a CloudWatch Logs retention value (nearest allowed above: %d)",
                 pol->cloudwatch_retention_days, best);
        }
    }
}

static void parse_policy(P *p, yaml_node_t *m, int idx, st_lc_policy_t *pol)
{
    char ppath[64];
    snprintf(ppath, sizeof ppath, "policies[%d]", idx);
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        perr(p, m, ppath, "expected a mapping");
        return;
    }
    memset(pol, 0, sizeof *pol);
    bool has_name = false;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[160];
        snprintf(kp, sizeof kp, "%s.%.*s", ppath, (int)key.n, key.p);
        if (st_str_eqc(key, "name"))
            has_name = get_str(p, v, kp, pol->name, sizeof pol->name);
        else if (st_str_eqc(key, "legal_basis"))
            get_str(p, v, kp, pol->legal_basis, sizeof pol->legal_basis);
        else if (st_str_eqc(key, "erasable"))
            get_bool(p, v, kp, &pol->erasable);
        else if (st_str_eqc(key, "immutable"))
            get_bool(p, v, kp, &pol->immutable);
        else if (st_str_eqc(key, "allow_early_delete"))
            get_bool(p, v, kp, &pol->allow_early_delete);
        else if (st_str_eqc(key, "delete_after"))
            get_duration(p, v, kp, &pol->delete_after_ns);
        else if (st_str_eqc(key, "tiers"))
            parse_tiers(p, v, ppath, pol);
        else if (st_str_eqc(key, "object_lock")) {
            if (is_scalar(v) && st_str_eqc(sval(v), "COMPLIANCE"))
                pol->object_lock = ST_LOCK_COMPLIANCE;
            else if (is_scalar(v) && st_str_eqc(sval(v), "GOVERNANCE"))
                pol->object_lock = ST_LOCK_GOVERNANCE;
            else if (is_scalar(v) && (st_str_eqc(sval(v), "none") || st_str_eqc(sval(v), "")))
                pol->object_lock = ST_LOCK_NONE;
            else
                perr(p, v, kp, "expected COMPLIANCE, GOVERNANCE or none");
        } else if (st_str_eqc(key, "cloudwatch_retention_days")) {
            char tmp[16];
            if (get_str(p, v, kp, tmp, sizeof tmp)) {
                char *end;
                long d = strtol(tmp, &end, 10);
                if (*end || d <= 0)
                    perr(p, v, kp, "expected a number of days");
                else
                    pol->cloudwatch_retention_days = (int)d;
            }
        } else {
            perr(p, k, kp,
                 "unknown key (expected name, legal_basis, erasable, immutable, object_lock, tiers, "
                 "delete_after, allow_early_delete, cloudwatch_retention_days)");
        }
    }
    if (!has_name) perr(p, m, ppath, "name is required");
    check_policy(p, m, ppath, pol);
}

static int policy_index(const st_lc_config_t *c, st_str_t name)
{
    for (int i = 0; i < c->npolicies; i++)
        if (st_str_eqc(name, c->policies[i].name)) return i;
    return -1;
}

static void parse_rule(P *p, yaml_node_t *m, int idx, st_lc_rule_t *r)
{
    char rpath[64];
    snprintf(rpath, sizeof rpath, "rules[%d]", idx);
    memset(r, 0, sizeof *r);
    strcpy(r->tenant, "*");
    r->policy = -1;
    r->line = m ? line_of(p, m) : 0;
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        perr(p, m, rpath, "expected a mapping {tenant, selector, policy}");
        return;
    }
    yaml_node_t *polnode = NULL;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[160];
        snprintf(kp, sizeof kp, "%s.%.*s", rpath, (int)key.n, key.p);
        if (st_str_eqc(key, "tenant"))
            get_str(p, v, kp, r->tenant, sizeof r->tenant);
        else if (st_str_eqc(key, "selector")) {
            if (!is_scalar(v)) {
                perr(p, v, kp, "expected a selector string");
                continue;
            }
            free(r->selector);
            r->selector = st_str_dup(sval(v));
            if (r->selector && r->selector[0]) {
                char err[512];
                st_selector_t *s = NULL;
                if (st_selector_parse(st_cstr(r->selector), &s, err, sizeof err) < 0) {
                    perr(p, v, kp, "%s", err);
                } else {
                    r->m = s->m;
                    r->nm = s->n;
                    r->parsed = s;
                }
            }
        } else if (st_str_eqc(key, "policy")) {
            polnode = v;
        } else {
            perr(p, k, kp, "unknown key (expected tenant, selector, policy)");
        }
    }
    char pp[96];
    snprintf(pp, sizeof pp, "%s.policy", rpath);
    if (polnode == NULL)
        perr(p, m, pp, "is required");
    else if (!is_scalar(polnode) || (r->policy = policy_index(p->c, sval(polnode))) < 0)
        perr(p, polnode, pp, "no policy named \"%.*s\"", is_scalar(polnode) ? (int)sval(polnode).n : 0,
             is_scalar(polnode) ? sval(polnode).p : "");
}

static void parse_s3(P *p, yaml_node_t *m)
{
    if (m == NULL || m->type != YAML_MAPPING_NODE) {
        perr(p, m, "s3", "expected a mapping");
        return;
    }
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = node(p, pr->key), *v = node(p, pr->value);
        if (!is_scalar(k)) continue;
        st_str_t key = sval(k);
        char kp[96];
        snprintf(kp, sizeof kp, "s3.%.*s", (int)key.n, key.p);
        if (st_str_eqc(key, "endpoint"))
            get_str(p, v, kp, p->c->s3.endpoint, sizeof p->c->s3.endpoint);
        else if (st_str_eqc(key, "region"))
            get_str(p, v, kp, p->c->s3.region, sizeof p->c->s3.region);
        else if (st_str_eqc(key, "bucket"))
            get_str(p, v, kp, p->c->s3.bucket, sizeof p->c->s3.bucket);
        else if (st_str_eqc(key, "prefix"))
            get_str(p, v, kp, p->c->s3.prefix, sizeof p->c->s3.prefix);
        else if (st_str_eqc(key, "path_style"))
            get_bool(p, v, kp, &p->c->s3.path_style);
        else if (st_str_eqc(key, "max_attempts"))
            get_int(p, v, kp, 1, 100, &p->c->s3.max_attempts);
        else if (st_str_eqc(key, "retry_base"))
            get_duration(p, v, kp, &p->c->s3.retry_base_ns);
        else if (st_str_eqc(key, "connect_timeout"))
            get_duration(p, v, kp, &p->c->s3.connect_timeout_ns);
        else if (st_str_eqc(key, "request_timeout"))
            get_duration(p, v, kp, &p->c->s3.request_timeout_ns);
        else if (st_str_eqc(key, "low_speed_time"))
            get_duration(p, v, kp, &p->c->s3.low_speed_time_ns);
        else
            perr(p, k, kp,
                 "unknown key (expected endpoint, region, bucket, prefix, path_style, max_attempts, "
                 "retry_base, connect_timeout, request_timeout, low_speed_time)");
        if (st_str_eqc(key, "prefix") && strlen(p->c->s3.prefix) > 64)
            perr(p, v, kp, "at most 64 characters (object keys must fit in 255 bytes)");
    }
}

int st_lifecycle_config_parse(const st_config_t *cfg, st_lc_config_t **out, char *err, size_t errsz)
{
    st_lc_config_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->default_policy = -1;
    c->interval_ns = 3600 * ST_NS_PER_SEC;
    c->pack_target_size = 128u << 20;
    strcpy(c->s3.region, "us-east-1");
    strcpy(c->s3.prefix, "strata/");
    if (cfg->lifecycle.text[0] == '\0') {
        *out = c;
        return 0;
    }
    P p;
    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    p.c = c;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(c);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)cfg->lifecycle.text,
                                 strlen(cfg->lifecycle.text));
    int rc = 0;
    if (!yaml_parser_load(&parser, &p.doc)) {
        snprintf(err, errsz, "%s:%d: lifecycle: %s", cfg->lifecycle.file,
                 cfg->lifecycle.line + (int)parser.problem_mark.line,
                 parser.problem ? parser.problem : "YAML error");
        yaml_parser_delete(&parser);
        free(c);
        return ST_EPARSE;
    }
    yaml_parser_delete(&parser);
    yaml_node_t *root = yaml_document_get_root_node(&p.doc);
    yaml_node_t *policies = NULL, *rules = NULL, *defpol = NULL, *cwnode = NULL;
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        perr(&p, root, "", "expected a mapping");
    } else {
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top; pr++) {
            yaml_node_t *k = node(&p, pr->key), *v = node(&p, pr->value);
            if (!is_scalar(k)) continue;
            st_str_t key = sval(k);
            char kp[64];
            snprintf(kp, sizeof kp, "%.*s", (int)(key.n > 40 ? 40 : key.n), key.p);
            if (st_str_eqc(key, "enabled"))
                get_bool(&p, v, kp, &c->enabled);
            else if (st_str_eqc(key, "interval"))
                get_duration(&p, v, kp, &c->interval_ns);
            else if (st_str_eqc(key, "hot_max_bytes"))
                get_bytes(&p, v, kp, &c->hot_max_bytes);
            else if (st_str_eqc(key, "pack_target_size"))
                get_bytes(&p, v, kp, &c->pack_target_size);
            else if (st_str_eqc(key, "s3"))
                parse_s3(&p, v);
            else if (st_str_eqc(key, "policies"))
                policies = v;
            else if (st_str_eqc(key, "rules"))
                rules = v;
            else if (st_str_eqc(key, "default_policy"))
                defpol = v;
            else if (st_str_eqc(key, "cloudwatch"))
                cwnode = v;
            else if (st_str_eqc(key, "audit") || st_str_eqc(key, "prices")) /* audit/config.c */
                rc = st_audit_config_parse(cfg, &p.doc, v, kp, &c->audit, &p.err, &p.nerr);
            else
                perr(
                    &p, k, kp,
                    "unknown key (expected enabled, interval, hot_max_bytes, pack_target_size, s3, policies, "
                    "rules, default_policy, cloudwatch, audit, prices)");
        }
    }
    if (policies) {
        if (policies->type != YAML_SEQUENCE_NODE) {
            perr(&p, policies, "policies", "expected a list of policies");
        } else {
            size_t n = (size_t)(policies->data.sequence.items.top - policies->data.sequence.items.start);
            c->policies = calloc(n ? n : 1, sizeof *c->policies);
            if (c->policies == NULL) rc = -ENOMEM;
            for (size_t i = 0; rc == 0 && i < n; i++) {
                parse_policy(&p, node(&p, policies->data.sequence.items.start[i]), (int)i,
                             &c->policies[c->npolicies]);
                for (int j = 0; j < c->npolicies; j++)
                    if (c->policies[c->npolicies].name[0] &&
                        strcmp(c->policies[j].name, c->policies[c->npolicies].name) == 0)
                        perr(&p, node(&p, policies->data.sequence.items.start[i]), "policies",
                             "duplicate policy name \"%s\"", c->policies[j].name);
                c->npolicies++;
            }
        }
    }
    if (rules && rc == 0) {
        if (rules->type != YAML_SEQUENCE_NODE) {
            perr(&p, rules, "rules", "expected a list of rules");
        } else {
            size_t n = (size_t)(rules->data.sequence.items.top - rules->data.sequence.items.start);
            c->rules = calloc(n ? n : 1, sizeof *c->rules);
            if (c->rules == NULL) rc = -ENOMEM;
            for (size_t i = 0; rc == 0 && i < n; i++)
                parse_rule(&p, node(&p, rules->data.sequence.items.start[i]), (int)i, &c->rules[c->nrules++]);
        }
    }
    if (defpol && rc == 0) {
        if (!is_scalar(defpol))
            perr(&p, defpol, "default_policy", "expected a policy name");
        else if (sval(defpol).n && (c->default_policy = policy_index(c, sval(defpol))) < 0)
            perr(&p, defpol, "default_policy", "no policy named \"%.*s\"", (int)sval(defpol).n,
                 sval(defpol).p);
    }
    bool moves_to_s3 = false;
    for (int i = 0; i < c->npolicies; i++)
        for (int t = 0; t < c->policies[i].ntiers; t++)
            moves_to_s3 |= c->policies[i].tiers[t].tier != ST_TIER_HOT;
    if (moves_to_s3 && c->s3.bucket[0] == '\0')
        perr(&p, root, "s3.bucket", "is required when a policy uses S3 tiers");
    if (cwnode && rc == 0) rc = st_lc_cloudwatch_parse(cfg, &p.doc, cwnode, &c->cloudwatch, &p.err, &p.nerr);
    yaml_document_delete(&p.doc);
    if (rc == 0 && p.nerr) rc = ST_EPARSE;
    if (rc < 0) {
        snprintf(err, errsz, "%s", rc == -ENOMEM ? "out of memory" : st_buf_cstr(&p.err));
        st_buf_free(&p.err);
        st_lifecycle_config_free(c);
        return rc;
    }
    st_buf_free(&p.err);
    *out = c;
    return 0;
}

void st_lifecycle_config_free(st_lc_config_t *c)
{
    if (c == NULL) return;
    for (int i = 0; i < c->nrules; i++) {
        free(c->rules[i].selector);
        st_selector_free(c->rules[i].parsed);
    }
    free(c->rules);
    free(c->policies);
    st_lc_cloudwatch_free(&c->cloudwatch);
    st_audit_config_free(c->audit);
    free(c);
}

bool st_lc_glob_tenant(const char *pattern, const char *tenant)
{
    if (strcmp(pattern, "*") == 0) return true;
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') return strncmp(pattern, tenant, n - 1) == 0;
    return strcmp(pattern, tenant) == 0;
}

bool st_lc_wants_ingest(const st_lc_config_t *c)
{
    return c != NULL && c->cloudwatch.configured && c->cloudwatch.nimport > 0;
}

int st_lc_policy_for(const st_lc_config_t *c, const char *tenant, const st_labels_t *labels)
{
    for (int i = 0; i < c->nrules; i++) {
        const st_lc_rule_t *r = &c->rules[i];
        if (r->policy < 0 || !st_lc_glob_tenant(r->tenant, tenant)) continue;
        if (st_matchers_match(r->m, r->nm, labels)) return r->policy;
    }
    return c->default_policy;
}

st_tier_t st_lc_target(const st_lc_policy_t *p, int64_t age_ns)
{
    if (p->delete_after_ns > 0 && age_ns >= p->delete_after_ns) return ST_TIER_COUNT;
    for (int i = 0; i < p->ntiers; i++)
        if (age_ns < p->tiers[i].until_ns) return p->tiers[i].tier;
    return p->ntiers ? p->tiers[p->ntiers - 1].tier : ST_TIER_HOT;
}
