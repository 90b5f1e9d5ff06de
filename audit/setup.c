/* setup.c: opening the process-wide audit trail for strata serve and the offline commands, and the
 * "config.change" record: the canonical JSON of the effective lifecycle configuration (policies, rules,
 * S3 target, CloudWatch retention settings, audit settings, prices) is hashed at every start and
 * recorded when its hash differs from the last one recorded (kept in <dir>/config.sha256, a cache of
 * what the trail says). */
#include "audit/audit_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "lifecycle/lifecycle_int.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "audit"

void st_audit_dir_of(const st_config_t *cfg, const st_lc_config_t *lc, char *out, size_t cap)
{
    const st_audit_config_t *ac = st_audit_config_of(lc);
    if (ac->dir[0])
        snprintf(out, cap, "%s", ac->dir);
    else
        snprintf(out, cap, "%s/audit", cfg->common.path_prefix);
}

static void put_dur(st_buf_t *b, const char *key, int64_t ns)
{
    char d[40];
    st_format_prom_duration(ns, d);
    st_buf_printf(b, ",\"%s\":\"%s\"", key, ns ? d : "");
}

int st_audit_config_canonical(const st_config_t *cfg, const st_lc_config_t *lc, st_buf_t *out,
                              char sha[ST_AUDIT_HASH_HEX])
{
    const st_audit_config_t *ac = st_audit_config_of(lc);
    size_t start = out->len;
    st_buf_puts(out, "{\"policies\":[");
    for (int i = 0; i < lc->npolicies; i++) {
        const st_lc_policy_t *p = &lc->policies[i];
        st_buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        st_json_put_cstr(out, p->name);
        st_buf_puts(out, ",\"legal_basis\":");
        st_json_put_cstr(out, p->legal_basis);
        st_buf_printf(out,
                      ",\"erasable\":%s,\"immutable\":%s,\"object_lock\":\"%s\",\"allow_early_delete\":%s",
                      p->erasable ? "true" : "false", p->immutable ? "true" : "false",
                      p->object_lock == ST_LOCK_COMPLIANCE   ? "COMPLIANCE"
                      : p->object_lock == ST_LOCK_GOVERNANCE ? "GOVERNANCE"
                                                             : "",
                      p->allow_early_delete ? "true" : "false");
        st_buf_puts(out, ",\"tiers\":[");
        for (int t = 0; t < p->ntiers; t++) {
            char u[40];
            st_format_prom_duration(p->tiers[t].until_ns, u);
            st_buf_printf(out, "%s{\"class\":\"%s\",\"until\":\"%s\"}", t ? "," : "",
                          st_audit_tier_name(p->tiers[t].tier), u);
        }
        st_buf_putc(out, ']');
        put_dur(out, "delete_after", p->delete_after_ns);
        st_buf_printf(out, ",\"cloudwatch_retention_days\":%d}", p->cloudwatch_retention_days);
    }
    st_buf_puts(out, "],\"rules\":[");
    for (int i = 0; i < lc->nrules; i++) {
        const st_lc_rule_t *r = &lc->rules[i];
        st_buf_puts(out, i ? ",{\"tenant\":" : "{\"tenant\":");
        st_json_put_cstr(out, r->tenant);
        st_buf_puts(out, ",\"selector\":");
        st_json_put_cstr(out, r->selector ? r->selector : "");
        st_buf_puts(out, ",\"policy\":");
        st_json_put_cstr(out, r->policy >= 0 ? lc->policies[r->policy].name : "");
        st_buf_putc(out, '}');
    }
    st_buf_puts(out, "],\"default_policy\":");
    st_json_put_cstr(out, lc->default_policy >= 0 ? lc->policies[lc->default_policy].name : "");
    st_buf_printf(out, ",\"enabled\":%s", lc->enabled ? "true" : "false");
    put_dur(out, "interval", lc->interval_ns);
    st_buf_printf(out, ",\"hot_max_bytes\":%llu,\"pack_target_size\":%llu,\"s3\":{\"endpoint\":",
                  (unsigned long long)lc->hot_max_bytes, (unsigned long long)lc->pack_target_size);
    st_json_put_cstr(out, lc->s3.endpoint);
    st_buf_puts(out, ",\"region\":");
    st_json_put_cstr(out, lc->s3.region);
    st_buf_puts(out, ",\"bucket\":");
    st_json_put_cstr(out, lc->s3.bucket);
    st_buf_puts(out, ",\"prefix\":");
    st_json_put_cstr(out, lc->s3.prefix);
    st_buf_printf(
        out,
        "},\"cloudwatch\":{\"configured\":%s,\"manage_retention\":%s,\"ship_rules\":%d,\"import_rules\":%d}",
        lc->cloudwatch.configured ? "true" : "false", lc->cloudwatch.manage_retention ? "true" : "false",
        lc->cloudwatch.nship, lc->cloudwatch.nimport);
    st_buf_puts(out, ",\"deletion_mode\":");
    st_json_put_cstr(out, cfg->limits_config.deletion_mode);
    put_dur(out, "delete_request_cancel_period", cfg->compactor.delete_request_cancel_period_ns);
    st_buf_printf(out, ",\"audit\":{\"enabled\":%s,\"record_queries\":%s,\"object_lock\":\"%s\"",
                  ac->enabled ? "true" : "false", ac->record_queries ? "true" : "false", ac->lock_mode);
    put_dur(out, "retain", ac->lock_retain_ns);
    put_dur(out, "seal_interval", ac->seal_interval_ns);
    put_dur(out, "deletion_grace", ac->deletion_grace_ns);
    st_buf_printf(out, ",\"segment_max_bytes\":%llu},\"prices\":{\"storage_gb_month\":{",
                  (unsigned long long)ac->segment_max_bytes);
    for (int t = 0; t < ST_AUDIT_NTIERS; t++) {
        st_buf_printf(out, "%s\"%s\":", t ? "," : "", st_audit_tier_name(t));
        st_json_put_float_str(out, ac->prices.storage_gb_month[t]);
    }
    st_buf_puts(out, "},\"requests_per_1000\":{");
    for (int t = 0; t < ST_AUDIT_NTIERS; t++) {
        st_buf_printf(out, "%s\"%s\":", t ? "," : "", st_audit_tier_name(t));
        st_json_put_float_str(out, ac->prices.requests_per_1000[t]);
    }
    st_buf_puts(out, "},\"archive_overhead_bytes\":");
    st_json_put_float_str(out, ac->prices.archive_overhead_bytes);
    st_buf_puts(out, ",\"cloudwatch_ingest_gb\":");
    st_json_put_float_str(out, ac->prices.cloudwatch_ingest_gb);
    st_buf_puts(out, ",\"cloudwatch_storage_gb_month\":");
    st_json_put_float_str(out, ac->prices.cloudwatch_storage_gb_month);
    int rc = st_buf_puts(out, "}}");
    if (rc == 0) st_audit_sha256_hex(out->data + start, out->len - start, sha);
    return rc;
}

/* Records the effective configuration when it changed since the last config.change. */
static int record_config(st_audit_t *a, const st_config_t *cfg, const st_lc_config_t *lc)
{
    st_buf_t canon = ST_BUF_INIT, d = ST_BUF_INIT;
    char sha[ST_AUDIT_HASH_HEX], last[ST_AUDIT_HASH_HEX] = "", path[1200];
    int rc = st_audit_config_canonical(cfg, lc, &canon, sha);
    snprintf(path, sizeof path, "%s/config.sha256", st_audit_dir(a));
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(last, sizeof last, f) == NULL) last[0] = '\0';
        last[strcspn(last, "\n")] = '\0';
        fclose(f);
    }
    if (rc == 0 && strcmp(last, sha) != 0) {
        st_buf_printf(&d, "{\"sha256\":\"%s\",\"previous_sha256\":\"%s\",\"file\":", sha, last);
        st_json_put_cstr(&d, cfg->lifecycle.file);
        st_buf_puts(&d, ",\"effective\":");
        st_buf_append(&d, canon.data, canon.len);
        rc = st_buf_putc(&d, '}');
        if (rc == 0) rc = st_audit_append(a, "config.change", "", NULL, st_str(d.data, d.len), true, NULL);
        if (rc == 0) {
            char tmp[1300];
            snprintf(tmp, sizeof tmp, "%s.tmp", path);
            if ((f = fopen(tmp, "w")) != NULL) {
                fprintf(f, "%s\n", sha);
                bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
                fclose(f);
                if (ok) rename(tmp, path);
            }
        }
    }
    st_buf_free(&canon);
    st_buf_free(&d);
    return rc;
}

int st_audit_start(const st_config_t *cfg, const char *actor, bool background)
{
    if (st_audit_global() != NULL) return 0;
    st_lc_config_t *lc = NULL;
    char err[4096];
    int rc = st_lifecycle_config_parse(cfg, &lc, err, sizeof err);
    if (rc < 0) {
        ST_LOG_ERROR(MOD, "msg=\"invalid lifecycle configuration; audit trail not opened\" err=\"%s\"", err);
        return rc;
    }
    const st_audit_config_t *ac = st_audit_config_of(lc);
    if (!ac->enabled) {
        st_lifecycle_config_free(lc);
        return 0;
    }
    char dir[1100];
    st_audit_dir_of(cfg, lc, dir, sizeof dir);
    st_s3_client_t *s3 = NULL;
    if (lc->s3.bucket[0] && (rc = st_lc_s3_client(lc, &s3)) < 0) {
        ST_LOG_WARN(MOD, "msg=\"no S3 client for audit seals; segments are sealed locally\" err=\"%s\"",
                    st_strerror(rc));
        s3 = NULL;
    }
    st_audit_opts_t o = {.cfg = ac,
                         .dir = dir,
                         .s3 = s3,
                         .bucket = lc->s3.bucket,
                         .prefix = lc->s3.prefix,
                         .actor = actor,
                         .background = background};
    st_audit_t *a = NULL;
    rc = st_audit_open(&o, &a);
    if (rc < 0) {
        st_s3_client_destroy(s3);
        ST_LOG_ERROR(MOD, "msg=\"cannot open the audit trail\" dir=\"%s\" err=\"%s\"", dir, st_strerror(rc));
    } else {
        rc = record_config(a, cfg, lc);
        if (rc < 0)
            ST_LOG_ERROR(MOD, "msg=\"cannot record the configuration in the audit trail\" err=\"%s\"",
                         st_strerror(rc));
        st_audit_set_global(a);
    }
    st_lifecycle_config_free(lc);
    return rc;
}

int st_audit_stop(void)
{
    st_audit_t *a = st_audit_global();
    if (a == NULL) return 0;
    st_audit_set_global(NULL);
    return st_audit_close(a);
}
