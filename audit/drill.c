/* drill.c: `strata audit restore-test`: the retrievability drill PCI DSS 10.5.1 asks for. A random sample
 * of the archived objects of each archive class is restored (RestoreObject), polled until readable, read
 * back whole and checked against its recorded CRC-32; each object's outcome and the time the restore took
 * become a "drill.restore" record of the audit trail, which the retention report shows. */
#include "audit/audit_int.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "lifecycle/lifecycle_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    st_pack_state_t *v;
    size_t n, cap;
} packs_t;

static int pack_cb(void *arg, st_str_t key, st_str_t value)
{
    (void)key;
    packs_t *p = arg;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        st_pack_state_t *v = realloc(p->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    if (st_pack_state_decode(value, &p->v[p->n]) == 0 && st_tier_archived(p->v[p->n].tier)) p->n++;
    return 0;
}

typedef struct {
    const st_pack_state_t *ps;
    int64_t requested, completed;
    char outcome[32];
    char detail[256];
    bool done;
    uint64_t bytes;
} probe_t;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / ST_NS_PER_SEC), (long)(ns % ST_NS_PER_SEC)};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) continue;
}

/* Reads the restored object back and checks its CRC-32. */
static void read_back(st_s3_client_t *s3, const char *bucket, probe_t *p)
{
    st_buf_t b = ST_BUF_INIT;
    st_s3_get_opts_t go = {.version_id = p->ps->version_id[0] ? p->ps->version_id : NULL};
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc = st_s3_get_object(s3, bucket, p->ps->key, &go, &b, NULL, &err);
    if (rc < 0) {
        snprintf(p->outcome, sizeof p->outcome, "unreadable");
        snprintf(p->detail, sizeof p->detail, "GET after the restore: %s %s", st_s3_strerror(rc), err.code);
    } else if (b.len != p->ps->size || (p->ps->crc32 && st_crc32(0, b.data, b.len) != p->ps->crc32)) {
        snprintf(p->outcome, sizeof p->outcome, "corrupt");
        snprintf(p->detail, sizeof p->detail, "%zu bytes, CRC-32 %08x; recorded %llu bytes, %08x", b.len,
                 st_crc32(0, b.data ? b.data : "", b.len), (unsigned long long)p->ps->size, p->ps->crc32);
    } else {
        snprintf(p->outcome, sizeof p->outcome, "ok");
        snprintf(p->detail, sizeof p->detail, "read back %zu bytes, CRC-32 matches", b.len);
    }
    p->bytes = b.len;
    st_buf_free(&b);
}

int st_audit_restore_drill(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix,
                           const st_drill_opts_t *o, st_buf_t *json)
{
    (void)cfg;
    const char *tier_name = o->tier && o->tier[0] ? o->tier : "Standard";
    st_s3_tier_t tier;
    if (strcmp(tier_name, "Standard") == 0)
        tier = ST_S3_TIER_STANDARD;
    else if (strcmp(tier_name, "Bulk") == 0)
        tier = ST_S3_TIER_BULK;
    else if (strcmp(tier_name, "Expedited") == 0)
        tier = ST_S3_TIER_EXPEDITED;
    else
        return ST_EPARSE;
    if (lc->s3.bucket[0] == '\0') return ST_ENOTFOUND;
    int per = o->per_tier > 0 ? o->per_tier : 1, days = o->days > 0 ? o->days : 1;
    int64_t timeout = o->timeout_ns > 0 ? o->timeout_ns : 12 * 3600 * ST_NS_PER_SEC;
    int64_t poll = o->poll_ns > 0 ? o->poll_ns : 60 * ST_NS_PER_SEC;
    packs_t packs = {0};
    st_index_read_t *rd;
    int rc = st_index_read_begin(ix, &rd);
    if (rc == 0) {
        rc = st_index_state_scan(rd, ST_STR("pack/"), pack_cb, &packs);
        st_index_read_end(rd);
    }
    st_s3_client_t *s3 = NULL;
    if (rc == 0) rc = st_lc_s3_client(lc, &s3);
    uint64_t seed = o->seed;
    if (seed == 0 && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed) seed = (uint64_t)st_now_ns();
    probe_t *pr = calloc((size_t)per * 2 + 1, sizeof *pr);
    size_t np = 0;
    if (rc == 0 && pr == NULL) rc = -ENOMEM;
    /* the sample: per archive class, a partial shuffle of its objects */
    static const st_tier_t classes[] = {ST_TIER_GLACIER, ST_TIER_DEEP_ARCHIVE};
    uint64_t s = seed;
    for (size_t c = 0; rc == 0 && c < 2; c++) {
        size_t *idx = malloc((packs.n ? packs.n : 1) * sizeof *idx), m = 0;
        if (idx == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (size_t i = 0; i < packs.n; i++)
            if (packs.v[i].tier == classes[c]) idx[m++] = i;
        for (size_t i = 0; i < m && i < (size_t)per; i++) {
            size_t j = i + (size_t)(splitmix(&s) % (m - i));
            size_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
            pr[np++].ps = &packs.v[idx[i]];
        }
        free(idx);
    }
    /* request every restore, then poll them together */
    for (size_t i = 0; rc == 0 && i < np; i++) {
        probe_t *p = &pr[i];
        bool started = false;
        st_s3_error_t err;
        memset(&err, 0, sizeof err);
        p->requested = st_now_ns();
        int r2 =
            st_s3_restore_object(s3, lc->s3.bucket, p->ps->key,
                                 p->ps->version_id[0] ? p->ps->version_id : NULL, days, tier, &started, &err);
        if (r2 < 0 && r2 != ST_S3_ERESTORING) {
            p->done = true;
            snprintf(p->outcome, sizeof p->outcome, "request-failed");
            snprintf(p->detail, sizeof p->detail, "RestoreObject: %s %s", st_s3_strerror(r2), err.code);
        }
        if (o->progress)
            fprintf(o->progress, "restore-test: %s restore of %s (%s) %s\n", tier_name, p->ps->key,
                    st_audit_tier_name(p->ps->tier),
                    p->done   ? "failed"
                    : started ? "started"
                              : "already in place");
    }
    int64_t deadline = st_mono_ns() + timeout;
    for (;;) {
        size_t open = 0;
        for (size_t i = 0; rc == 0 && i < np; i++) {
            probe_t *p = &pr[i];
            if (p->done) continue;
            st_s3_object_info_t info;
            int h = st_s3_head_object(s3, lc->s3.bucket, p->ps->key,
                                      p->ps->version_id[0] ? p->ps->version_id : NULL, &info, NULL);
            if (h == 0 && info.restore.present && !info.restore.ongoing) {
                p->completed = st_now_ns();
                p->done = true;
                read_back(s3, lc->s3.bucket, p);
                if (o->progress)
                    fprintf(o->progress, "restore-test: %s restored after %.1f s: %s\n", p->ps->key,
                            (double)(p->completed - p->requested) / 1e9, p->detail);
            } else if (h == ST_ENOTFOUND) {
                p->done = true;
                snprintf(p->outcome, sizeof p->outcome, "missing");
                snprintf(p->detail, sizeof p->detail, "the object is gone");
            } else {
                open++;
            }
        }
        if (open == 0 || rc < 0) break;
        if (st_mono_ns() + poll > deadline) {
            for (size_t i = 0; i < np; i++)
                if (!pr[i].done) {
                    pr[i].done = true;
                    snprintf(pr[i].outcome, sizeof pr[i].outcome, "timeout");
                    snprintf(pr[i].detail, sizeof pr[i].detail, "not restored within the timeout");
                }
            break;
        }
        sleep_ns(poll);
    }
    /* records and the result */
    bool ok = rc == 0;
    if (json && rc == 0) {
        st_buf_printf(json,
                      "{\"retrieval_tier\":\"%s\",\"days\":%d,\"per_class\":%d,\"seed\":%llu,\"objects\":[",
                      tier_name, days, per, (unsigned long long)seed);
    }
    for (size_t i = 0; rc == 0 && i < np; i++) {
        probe_t *p = &pr[i];
        double secs = p->completed ? (double)(p->completed - p->requested) / 1e9 : 0;
        ok &= strcmp(p->outcome, "ok") == 0;
        st_buf_t d = ST_BUF_INIT;
        st_buf_puts(&d, "{\"key\":");
        st_json_put_cstr(&d, p->ps->key);
        st_buf_puts(&d, ",\"version_id\":");
        st_json_put_cstr(&d, p->ps->version_id);
        st_buf_printf(
            &d,
            ",\"class\":\"%s\",\"retrieval_tier\":\"%s\",\"days\":%d,\"requested\":%lld,\"completed\":%lld,"
            "\"seconds\":%.3f,\"bytes\":%llu,\"outcome\":\"%s\",\"detail\":",
            st_audit_tier_name(p->ps->tier), tier_name, days, (long long)p->requested,
            (long long)p->completed, secs, (unsigned long long)p->bytes, p->outcome);
        st_json_put_cstr(&d, p->detail);
        st_buf_putc(&d, '}');
        st_audit_t *a = st_audit_global();
        int arc =
            a ? st_audit_append(a, "drill.restore", p->ps->tenant, NULL, st_str(d.data, d.len), true, NULL)
              : 0;
        if (json) {
            if (i) st_buf_putc(json, ',');
            st_buf_append(json, d.data, d.len - 1);
            st_buf_printf(json, ",\"recorded\":%s}", a && arc == 0 ? "true" : "false");
        }
        if (o->progress)
            fprintf(o->progress, "restore-test: %s %s: %s after %.1f s (%s)%s\n", st_audit_tier_name(p->ps->tier),
                    p->ps->key, p->outcome, secs, p->detail,
                    a == NULL ? "; not recorded: audit is off" : arc < 0 ? "; NOT RECORDED" : "");
        st_buf_free(&d);
    }
    if (json && rc == 0) st_buf_printf(json, "],\"ok\":%s}\n", ok ? "true" : "false");
    if (o->progress && rc == 0 && np == 0) fprintf(o->progress, "restore-test: no archived object to restore\n");
    free(pr);
    free(packs.v);
    st_s3_client_destroy(s3);
    if (rc < 0) return rc;
    return ok ? 0 : 1;
}
