/* report.c: the retention report: per policy and per stream, what is stored where (bytes and chunks per
 * tier, objects), the entries' time range, the next transition and deletion dates, the policy's legal
 * basis and Object Lock state, CloudWatch retention against the policy, erasure requests, the cost per
 * tier from the price table against keeping everything hot, bytes per tier over time (replayed from the
 * audit trail), and violations: data past its deletion date, data in a tier its policy does not allow,
 * missing or corrupt objects, weakened Object Locks, overdue erasures and audit chain breaks. JSON and
 * CSV here, HTML in html.c. */
#include "audit/report_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "querier/querier.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GIB              (1024.0 * 1024.0 * 1024.0)
#define MAX_POINTS       240
#define ERASURE_DEADLINE (30 * ST_NS_PER_DAY) /* GDPR Art. 12(3): one month */

int st_report_format_parse(const char *s, st_report_format_t *out)
{
    if (strcmp(s, "json") == 0)
        *out = ST_REPORT_JSON;
    else if (strcmp(s, "csv") == 0)
        *out = ST_REPORT_CSV;
    else if (strcmp(s, "html") == 0)
        *out = ST_REPORT_HTML;
    else
        return ST_EPARSE;
    return 0;
}

void st_report_time(int64_t ns, char out[40])
{
    if (ns == 0 || ns == INT64_MAX || ns == INT64_MIN)
        out[0] = '\0';
    else
        st_format_rfc3339_sec(ns, out);
}

void st_report_bytes(uint64_t b, char out[32])
{
    static const char *const u[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 5) {
        v /= 1024;
        i++;
    }
    if (i == 0)
        snprintf(out, 32, "%llu B", (unsigned long long)b);
    else
        snprintf(out, 32, "%.1f %s", v, u[i]);
}

const char *st_report_policy_name(const report_t *r, int policy)
{
    return policy >= 0 && policy < r->lc->npolicies ? r->lc->policies[policy].name : "";
}

static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * sz);
    if (p == NULL) return -ENOMEM;
    memset((char *)p + *cap * sz, 0, (c - *cap) * sz);
    *v = p;
    *cap = c;
    return 0;
}

static int violation(report_t *r, const char *kind, int policy, const char *tenant, const char *stream,
                     const char *tier, const char *key, uint64_t chunks, uint64_t bytes, int64_t since,
                     const char *fmt, ...) __attribute__((format(printf, 11, 12)));
static int violation(report_t *r, const char *kind, int policy, const char *tenant, const char *stream,
                     const char *tier, const char *key, uint64_t chunks, uint64_t bytes, int64_t since,
                     const char *fmt, ...)
{
    ST_TRY(grow((void **)&r->viol, &r->capviol, r->nviol, sizeof *r->viol));
    rviolation_t *v = &r->viol[r->nviol++];
    memset(v, 0, sizeof *v);
    snprintf(v->kind, sizeof v->kind, "%s", kind);
    snprintf(v->policy, sizeof v->policy, "%s", st_report_policy_name(r, policy));
    snprintf(v->tenant, sizeof v->tenant, "%s", tenant ? tenant : "");
    snprintf(v->stream, sizeof v->stream, "%s", stream ? stream : "");
    snprintf(v->tier, sizeof v->tier, "%s", tier ? tier : "");
    snprintf(v->key, sizeof v->key, "%s", key ? key : "");
    v->chunks = chunks;
    v->bytes = bytes;
    v->since = since;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->message, sizeof v->message, fmt, ap);
    va_end(ap);
    if (policy >= 0 && policy <= r->lc->npolicies) r->policies[policy].violations++;
    return 0;
}

/* ---- the index: chunks, streams, objects, erasure requests ------------------------------------------ */

typedef struct {
    st_chunk_ref_t ref;
    char tenant[152];
} cref_t;

typedef struct {
    cref_t *v;
    size_t n, cap;
} crefs_t;

static int chunk_cb(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    (void)day;
    crefs_t *c = arg;
    ST_TRY(grow((void **)&c->v, &c->cap, c->n, sizeof *c->v));
    c->v[c->n].ref = *ref;
    snprintf(c->v[c->n].tenant, sizeof c->v[c->n].tenant, "%s", tenant);
    c->n++;
    return 0;
}

static int cmp_chunk_id(const void *a, const void *b)
{
    uint64_t x = ((const cref_t *)a)->ref.chunk_id, y = ((const cref_t *)b)->ref.chunk_id;
    return x < y ? -1 : x > y;
}

static int cmp_stream(const void *a, const void *b)
{
    const cref_t *x = a, *y = b;
    int c = strcmp(x->tenant, y->tenant);
    if (c) return c;
    if (x->ref.stream_id != y->ref.stream_id) return x->ref.stream_id < y->ref.stream_id ? -1 : 1;
    return x->ref.chunk_id < y->ref.chunk_id ? -1 : x->ref.chunk_id > y->ref.chunk_id;
}

/* When data whose newest entry is max_ts leaves tier i of p (archive classes take whole days). */
static int64_t boundary(const st_lc_policy_t *p, int i, int64_t max_ts)
{
    int64_t b = max_ts + p->tiers[i].until_ns;
    if (i + 1 < p->ntiers && st_tier_archived(p->tiers[i + 1].tier)) {
        int64_t wd = (st_day_of(max_ts) + 1) * ST_NS_PER_DAY + p->tiers[i].until_ns;
        if (wd > b) b = wd;
    }
    return b;
}

static bool tier_allowed(const st_lc_policy_t *p, st_tier_t t)
{
    for (int i = 0; i < p->ntiers; i++)
        if (p->tiers[i].tier == t) return true;
    return false;
}

/* One stream's chunks [c, c + n) at r->as_of. */
static int add_stream(report_t *r, const cref_t *c, size_t n, const char *labels, int pol)
{
    ST_TRY(grow((void **)&r->streams, &r->capstreams, r->nstreams, sizeof *r->streams));
    rstream_t *s = &r->streams[r->nstreams++];
    memset(s, 0, sizeof *s);
    snprintf(s->tenant, sizeof s->tenant, "%s", c[0].tenant);
    s->stream_id = c[0].ref.stream_id;
    if ((s->labels = strdup(labels)) == NULL) return -ENOMEM;
    s->policy = pol;
    s->oldest = INT64_MAX;
    s->newest = INT64_MIN;
    const st_lc_policy_t *p = pol >= 0 ? &r->lc->policies[pol] : NULL;
    rpolicy_t *rp = &r->policies[pol >= 0 ? pol : r->lc->npolicies];
    uint64_t past_chunks = 0, past_bytes = 0, bad_chunks[ST_TIER_COUNT] = {0}, bad_bytes[ST_TIER_COUNT] = {0};
    int64_t past_since = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        const st_chunk_ref_t *ref = &c[i].ref;
        st_tier_t cur = ref->storage_class < ST_TIER_COUNT ? (st_tier_t)ref->storage_class : ST_TIER_HOT;
        s->tier[cur].chunks++;
        s->tier[cur].bytes += ref->size;
        s->chunks++;
        s->bytes += ref->size;
        s->entries += ref->entries;
        s->raw_bytes += ref->raw_bytes;
        if (ref->min_ts < s->oldest) s->oldest = ref->min_ts;
        if (ref->max_ts > s->newest) s->newest = ref->max_ts;
        if (p == NULL) continue;
        int64_t del = p->delete_after_ns ? ref->max_ts + p->delete_after_ns : 0;
        if (del && (s->next_deletion == 0 || del < s->next_deletion)) s->next_deletion = del;
        if (del && del > s->all_deleted) s->all_deleted = del;
        if (del && r->as_of >= del + r->grace) {
            past_chunks++;
            past_bytes += ref->size;
            if (del < past_since) past_since = del;
        }
        if (!tier_allowed(p, cur) && r->as_of - ref->max_ts > r->grace) {
            bad_chunks[cur]++;
            bad_bytes[cur] += ref->size;
        }
        /* the next move to a colder tier than the current one (an overdue move is due now) */
        int64_t next = 0;
        int to = -1;
        for (int t = 0; t + 1 < p->ntiers; t++) {
            int64_t b = boundary(p, t, ref->max_ts);
            if (p->tiers[t + 1].tier <= cur || (del && b >= del)) continue;
            next = b > r->as_of ? b : r->as_of;
            to = p->tiers[t + 1].tier;
            break;
        }
        if (next && (s->next_transition == 0 || next < s->next_transition)) {
            s->next_transition = next;
            s->next_tier = to;
        }
    }
    if (s->oldest == INT64_MAX) s->oldest = s->newest = 0;
    char tname[16];
    if (past_chunks) {
        s->violations++;
        ST_TRY(violation(r, "past_deletion", pol, s->tenant, s->labels, "", "", past_chunks, past_bytes,
                         past_since,
                         "%llu chunks (%llu bytes) past their deletion date under policy %s (delete_after)",
                         (unsigned long long)past_chunks, (unsigned long long)past_bytes, p->name));
    }
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        if (!bad_chunks[t]) continue;
        s->violations++;
        snprintf(tname, sizeof tname, "%s", st_audit_tier_name(t));
        ST_TRY(violation(r, "tier_not_allowed", pol, s->tenant, s->labels, tname, "", bad_chunks[t],
                         bad_bytes[t], 0, "%llu chunks (%llu bytes) in %s, which policy %s does not list",
                         (unsigned long long)bad_chunks[t], (unsigned long long)bad_bytes[t], tname,
                         p->name));
    }
    /* policy and report totals */
    rp->streams++;
    rp->chunks += s->chunks;
    rp->bytes += s->bytes;
    rp->entries += s->entries;
    rp->raw_bytes += s->raw_bytes;
    if (s->chunks && (rp->oldest == 0 || s->oldest < rp->oldest)) rp->oldest = s->oldest;
    if (s->newest > rp->newest) rp->newest = s->newest;
    if (s->next_deletion && (rp->next_deletion == 0 || s->next_deletion < rp->next_deletion))
        rp->next_deletion = s->next_deletion;
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        rp->tier[t].chunks += s->tier[t].chunks;
        rp->tier[t].bytes += s->tier[t].bytes;
        r->tier[t].chunks += s->tier[t].chunks;
        r->tier[t].bytes += s->tier[t].bytes;
    }
    r->chunks += s->chunks;
    r->bytes += s->bytes;
    r->raw_bytes += s->raw_bytes;
    r->entries += s->entries;
    return 0;
}

static int pack_cb(void *arg, st_str_t key, st_str_t value)
{
    (void)key;
    report_t *r = arg;
    ST_TRY(grow((void **)&r->objects, &r->capobjects, r->nobjects, sizeof *r->objects));
    robject_t *o = &r->objects[r->nobjects];
    memset(o, 0, sizeof *o);
    if (st_pack_state_decode(value, &o->ps) < 0) return 0;
    if (r->o.tenant && strcmp(o->ps.tenant, r->o.tenant) != 0) return 0;
    if (r->o.policy && strcmp(o->ps.policy, r->o.policy) != 0) return 0;
    snprintf(o->status, sizeof o->status, "%s", r->o.skip_objects ? "not checked" : "ok");
    r->nobjects++;
    return 0;
}

static int erasure_cb(void *arg, st_str_t key, st_str_t value)
{
    report_t *r = arg;
    /* delete/<tenant>/<created>-<id> */
    char k[400];
    snprintf(k, sizeof k, "%.*s", (int)(key.n < 399 ? key.n : 399), key.p);
    const char *t = k + 7, *slash = strchr(t, '/');
    if (slash == NULL) return 0;
    ST_TRY(grow((void **)&r->erasures, &r->caperasures, r->nerasures, sizeof *r->erasures));
    rerasure_t *e = &r->erasures[r->nerasures];
    memset(e, 0, sizeof *e);
    snprintf(e->tenant, sizeof e->tenant, "%.*s", (int)(slash - t), t);
    if (r->o.tenant && strcmp(e->tenant, r->o.tenant) != 0) return 0;
    st_audit_json_str(value, "id", e->id, sizeof e->id);
    st_audit_json_str(value, "query", e->query, sizeof e->query);
    st_audit_json_str(value, "status", e->status, sizeof e->status);
    st_audit_json_str(value, "message", e->message, sizeof e->message);
    st_audit_json_i64(value, "start", &e->start);
    st_audit_json_i64(value, "end", &e->end);
    st_audit_json_i64(value, "created", &e->created);
    int64_t l = 0;
    st_audit_json_i64(value, "lines", &l);
    e->lines = (uint64_t)l;
    r->nerasures++;
    return 0;
}

static int policy_by_name(const st_lc_config_t *lc, const char *name)
{
    for (int i = 0; i < lc->npolicies; i++)
        if (strcmp(lc->policies[i].name, name) == 0) return i;
    return -1;
}

static int load_index(report_t *r, st_index_t *ix)
{
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(ix, &rd));
    crefs_t c = {0};
    int rc = st_index_scan_chunks(rd, chunk_cb, &c);
    if (rc == 0 && c.n > 1) {
        st_qsort(c.v, c.n, sizeof *c.v, cmp_chunk_id);
        size_t w = 1;
        for (size_t i = 1; i < c.n; i++)
            if (c.v[i].ref.chunk_id != c.v[w - 1].ref.chunk_id) c.v[w++] = c.v[i];
        c.n = w;
        st_qsort(c.v, c.n, sizeof *c.v, cmp_stream);
    }
    for (size_t i = 0; rc == 0 && i < c.n;) {
        size_t j = i;
        while (j < c.n && c.v[j].ref.stream_id == c.v[i].ref.stream_id &&
               strcmp(c.v[j].tenant, c.v[i].tenant) == 0)
            j++;
        if (r->o.tenant && strcmp(c.v[i].tenant, r->o.tenant) != 0) {
            i = j;
            continue;
        }
        st_str_t text = ST_STR("");
        int pol = -1;
        char *labels = NULL;
        if (st_index_stream(rd, c.v[i].tenant, c.v[i].ref.stream_id, &text, NULL) == 0) {
            st_labels_t l;
            char err[256];
            if (st_labels_parse(text, &l, err) == 0) {
                pol = st_lc_policy_for(r->lc, c.v[i].tenant, &l);
                st_labels_free(&l);
            }
        }
        labels = st_str_dup(text);
        if (labels == NULL) rc = -ENOMEM;
        bool keep = r->o.policy == NULL || (pol >= 0 && strcmp(r->lc->policies[pol].name, r->o.policy) == 0);
        if (rc == 0 && keep) rc = add_stream(r, c.v + i, j - i, labels, pol);
        free(labels);
        i = j;
    }
    if (rc == 0) rc = st_index_state_scan(rd, ST_STR("pack/"), pack_cb, r);
    if (rc == 0) rc = st_index_state_scan(rd, ST_STR("delete/"), erasure_cb, r);
    st_index_read_end(rd);
    /* objects per policy and tier, and their Object Lock */
    for (size_t i = 0; rc == 0 && i < r->nobjects; i++) {
        const st_pack_state_t *ps = &r->objects[i].ps;
        int pol = policy_by_name(r->lc, ps->policy);
        rpolicy_t *rp = &r->policies[pol >= 0 ? pol : r->lc->npolicies];
        st_tier_t t = ps->tier < ST_TIER_COUNT ? ps->tier : ST_TIER_STANDARD;
        rp->objects[t]++;
        rp->object_bytes[t] += ps->size;
        r->objects_per_tier[t]++;
        r->object_bytes[t] += ps->size;
        if (ps->lock_mode[0]) {
            rp->locked_objects++;
            int64_t ru = ps->retain_until * ST_NS_PER_SEC;
            if (rp->min_retain_until == 0 || ru < rp->min_retain_until) rp->min_retain_until = ru;
        }
        const st_lc_policy_t *p = pol >= 0 ? &r->lc->policies[pol] : NULL;
        if (p && p->object_lock != ST_LOCK_NONE && ps->delete_at != INT64_MAX && ps->delete_at > r->as_of &&
            (!ps->lock_mode[0] || ps->retain_until < ps->delete_at / ST_NS_PER_SEC)) {
            char until[40];
            st_report_time(ps->retain_until * ST_NS_PER_SEC, until);
            rc = violation(
                r, "object_lock", pol, ps->tenant, "", st_audit_tier_name(t), ps->key, ps->chunks, ps->size,
                0, "policy %s requires Object Lock until the deletion date, the object records %s%s%s",
                p->name, ps->lock_mode[0] ? ps->lock_mode : "no lock", ps->lock_mode[0] ? " until " : "",
                ps->lock_mode[0] ? until : "");
        }
    }
    /* erasure requests past GDPR's one month */
    for (size_t i = 0; rc == 0 && i < r->nerasures; i++) {
        const rerasure_t *e = &r->erasures[i];
        if (strcmp(e->status, "processed") == 0 || strcmp(e->status, "refused") == 0) continue;
        if (e->created && r->as_of - e->created > ERASURE_DEADLINE)
            rc = violation(r, "erasure_overdue", -1, e->tenant, e->query, "", "", 0, 0,
                           e->created + ERASURE_DEADLINE,
                           "erasure request %s (%s) is still %s after more than a month", e->id, e->query,
                           e->status[0] ? e->status : "pending");
    }
    free(c.v);
    return rc;
}

/* ---- stored objects: HEAD per S3 object, stat per local file ------------------------------------------- */

static bool crc_b64_equals(const char *b64, uint32_t crc)
{
    /* base64 of the big-endian CRC: 8 characters ending in "==" */
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (strlen(b64) != 8 || b64[6] != '=' || b64[7] != '=')
        return true; /* multipart or absent: not comparable */
    uint64_t v = 0;
    for (int i = 0; i < 6; i++) {
        const char *p = strchr(al, b64[i]);
        if (p == NULL) return true;
        v = v << 6 | (uint64_t)(p - al);
    }
    return (uint32_t)(v >> 4) == crc;
}

static int check_objects(report_t *r, st_index_t *ix)
{
    int rc = 0;
    if (r->nobjects && r->lc->s3.bucket[0]) {
        st_s3_client_t *s3 = NULL;
        if ((rc = st_lc_s3_client(r->lc, &s3)) < 0) return rc;
        for (size_t i = 0; rc == 0 && i < r->nobjects; i++) {
            robject_t *o = &r->objects[i];
            const st_pack_state_t *ps = &o->ps;
            int pol = policy_by_name(r->lc, ps->policy);
            const char *tier = st_audit_tier_name(ps->tier);
            st_s3_object_info_t info;
            st_s3_error_t err;
            memset(&err, 0, sizeof err);
            int hrc = st_s3_head_object(s3, r->lc->s3.bucket, ps->key,
                                        ps->version_id[0] ? ps->version_id : NULL, &info, &err);
            if (hrc == ST_ENOTFOUND) {
                snprintf(o->status, sizeof o->status, "missing");
                rc = violation(r, "missing_object", pol, ps->tenant, "", tier, ps->key, ps->chunks, ps->size,
                               0, "s3://%s/%s (version %s) is gone: %llu chunks of policy %s",
                               r->lc->s3.bucket, ps->key, ps->version_id[0] ? ps->version_id : "latest",
                               (unsigned long long)ps->chunks, ps->policy);
            } else if (hrc < 0) {
                snprintf(o->status, sizeof o->status, "unchecked: %s", st_s3_strerror(hrc));
            } else if (info.size != ps->size || strcmp(info.storage_class, tier) != 0 ||
                       !crc_b64_equals(info.checksum_crc32, ps->crc32)) {
                snprintf(o->status, sizeof o->status, "differs");
                rc = violation(
                    r, "corrupt_object", pol, ps->tenant, "", tier, ps->key, ps->chunks, ps->size, 0,
                    "s3://%s/%s holds %llu bytes in %s (CRC-32 %s), the index records %llu bytes in %s",
                    r->lc->s3.bucket, ps->key, (unsigned long long)info.size, info.storage_class,
                    info.checksum_crc32[0] ? info.checksum_crc32 : "not reported",
                    (unsigned long long)ps->size, tier);
            } else if (ps->lock_mode[0] &&
                       (!info.lock_mode[0] || (int64_t)info.lock_retain_until < ps->retain_until)) {
                snprintf(o->status, sizeof o->status, "lock weakened");
                char want[40], got[40];
                st_report_time(ps->retain_until * ST_NS_PER_SEC, want);
                st_report_time((int64_t)info.lock_retain_until * ST_NS_PER_SEC, got);
                rc = violation(r, "object_lock", pol, ps->tenant, "", tier, ps->key, ps->chunks, ps->size, 0,
                               "the object's Object Lock is %s%s%s, the index records %s until %s (shortened "
                               "or removed)",
                               info.lock_mode[0] ? info.lock_mode : "absent",
                               info.lock_mode[0] ? " until " : "", info.lock_mode[0] ? got : "",
                               ps->lock_mode, want);
            }
        }
        st_s3_client_destroy(s3);
    }
    if (rc < 0) return rc;
    /* local files: every chunk's byte range must be there */
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(ix, &rd));
    crefs_t c = {0};
    rc = st_index_scan_chunks(rd, chunk_cb, &c);
    st_index_read_end(rd);
    if (rc == 0 && c.n > 1) st_qsort(c.v, c.n, sizeof *c.v, cmp_chunk_id);
    char last[260] = "";
    bool last_ok = true;
    off_t last_size = 0;
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        const cref_t *cr = &c.v[i];
        if (cr->ref.loc.kind != ST_LOC_LOCAL || (i && cr->ref.chunk_id == c.v[i - 1].ref.chunk_id)) continue;
        if (r->o.tenant && strcmp(cr->tenant, r->o.tenant) != 0) continue;
        if (strcmp(last, cr->ref.loc.path) != 0) {
            char path[2400];
            snprintf(path, sizeof path, "%s/%s", r->cfg->storage_config.filesystem.directory,
                     cr->ref.loc.path);
            struct stat st;
            last_ok = stat(path, &st) == 0;
            last_size = last_ok ? st.st_size : 0;
            snprintf(last, sizeof last, "%s", cr->ref.loc.path);
        }
        bool ok = last_ok && (uint64_t)last_size >= cr->ref.loc.offset + cr->ref.loc.length;
        if (ok) continue;
        /* the stream, for the message */
        const char *labels = "";
        int pol = -1;
        for (size_t k = 0; k < r->nstreams; k++)
            if (r->streams[k].stream_id == cr->ref.stream_id &&
                strcmp(r->streams[k].tenant, cr->tenant) == 0) {
                labels = r->streams[k].labels;
                pol = r->streams[k].policy;
                r->streams[k].violations++;
            }
        if (r->o.policy && pol < 0) continue;
        rc = violation(r, last_ok ? "corrupt_object" : "missing_object", pol, cr->tenant, labels, "hot",
                       cr->ref.loc.path, 1, cr->ref.size, 0, "chunk %016llx: local file %s %s",
                       (unsigned long long)cr->ref.chunk_id, cr->ref.loc.path,
                       last_ok ? "is shorter than the chunk's recorded range" : "is missing");
    }
    free(c.v);
    return rc;
}

/* ---- CloudWatch Logs: retention of the groups streams are shipped to ---------------------------------- */

typedef struct {
    report_t *r;
    int expected, policy;
    int64_t delete_after;
} cwctx_t;

static int cw_group_cb(void *arg, const st_cw_group_t *g)
{
    cwctx_t *c = arg;
    report_t *r = c->r;
    for (size_t i = 0; i < r->ncw; i++)
        if (strcmp(r->cw[i].name, g->name) == 0) return 0;
    ST_TRY(grow((void **)&r->cw, &r->capcw, r->ncw, sizeof *r->cw));
    rcwgroup_t *w = &r->cw[r->ncw++];
    memset(w, 0, sizeof *w);
    snprintf(w->name, sizeof w->name, "%s", g->name);
    w->retention_days = g->retention_days;
    w->expected_days = c->expected;
    w->stored_bytes = g->stored_bytes;
    r->cw_stored_bytes += g->stored_bytes;
    snprintf(w->policy, sizeof w->policy, "%s", st_report_policy_name(r, c->policy));
    int64_t limit_days = c->delete_after ? (c->delete_after + ST_NS_PER_DAY - 1) / ST_NS_PER_DAY : 0;
    if (limit_days &&
        (g->retention_days == 0 || g->retention_days > st_cw_retention_at_least((int)limit_days))) {
        char keeps[48];
        if (g->retention_days)
            snprintf(keeps, sizeof keeps, "for %d days", g->retention_days);
        else
            snprintf(keeps, sizeof keeps, "forever");
        return violation(r, "cloudwatch_retention", c->policy, "", "", "CloudWatch", g->name, 0,
                         g->stored_bytes, 0,
                         "log group %s keeps events %s, but policy %s deletes data after %lld days", g->name,
                         keeps, st_report_policy_name(r, c->policy), (long long)limit_days);
    }
    return 0;
}

static void check_cloudwatch(report_t *r)
{
    const st_lc_cloudwatch_t *cw = &r->lc->cloudwatch;
    if (!cw->configured || cw->nship == 0) return;
    st_cw_config_t cc;
    memset(&cc, 0, sizeof cc);
    cc.region = cw->region[0] ? cw->region : NULL;
    cc.endpoint = cw->endpoint[0] ? cw->endpoint : NULL;
    cc.max_attempts = cw->max_attempts > 0 ? cw->max_attempts : 3;
    st_cw_client_t *cli = NULL;
    int rc = st_cw_client_create(&cc, &cli);
    if (rc < 0) {
        snprintf(r->cw_error, sizeof r->cw_error, "no CloudWatch Logs client: %s", st_s3_strerror(rc));
        return;
    }
    r->cw_checked = true;
    for (int i = 0; i < cw->nship; i++) {
        const st_lc_cw_ship_t *sh = &cw->ship[i];
        /* the policies of the streams this rule ships: the longest hot tier and the shortest deletion */
        cwctx_t c = {r, 0, -1, 0};
        for (size_t k = 0; k < r->nstreams; k++) {
            const rstream_t *s = &r->streams[k];
            if (s->policy < 0 || !st_lc_glob_tenant(sh->tenant, s->tenant)) continue;
            st_labels_t l;
            char err[256];
            if (st_labels_parse(st_cstr(s->labels), &l, err) < 0) continue;
            bool m = st_matchers_match(sh->m, sh->nm, &l);
            st_labels_free(&l);
            if (!m) continue;
            const st_lc_policy_t *p = &r->lc->policies[s->policy];
            int64_t hot = p->ntiers > 0 && p->tiers[0].tier == ST_TIER_HOT ? p->tiers[0].until_ns : 0;
            int days = p->cloudwatch_retention_days > 0
                           ? p->cloudwatch_retention_days
                           : st_cw_retention_at_least((int)((hot + ST_NS_PER_DAY - 1) / ST_NS_PER_DAY) > 0
                                                          ? (int)((hot + ST_NS_PER_DAY - 1) / ST_NS_PER_DAY)
                                                          : 1);
            if (days > c.expected) {
                c.expected = days;
                c.policy = s->policy;
            }
            if (p->delete_after_ns && (c.delete_after == 0 || p->delete_after_ns < c.delete_after))
                c.delete_after = p->delete_after_ns;
        }
        char prefix[520];
        snprintf(prefix, sizeof prefix, "%s", sh->log_group);
        prefix[strcspn(prefix, "{")] = '\0';
        st_s3_error_t err;
        memset(&err, 0, sizeof err);
        rc = st_cw_list_log_groups(cli, prefix[0] ? prefix : NULL, cw_group_cb, &c, &err);
        if (rc < 0) {
            snprintf(r->cw_error, sizeof r->cw_error, "DescribeLogGroups %s: %s %s", prefix,
                     st_s3_strerror(rc), err.code);
            break;
        }
    }
    st_cw_client_destroy(cli);
}

/* ---- the audit trail: chain status, history, requests, drills ----------------------------------------- */

typedef struct {
    int64_t t;
    int tier;
    int64_t delta;
} hev_t;

typedef struct {
    report_t *r;
    hev_t *ev;
    size_t n, cap;
    uint64_t seals;
    int64_t last_seal;
    uint64_t last_sealed_segment;
} tscan_t;

static int hev(tscan_t *s, int64_t t, int tier, int64_t delta)
{
    if (tier < 0 || tier >= ST_TIER_COUNT || delta == 0) return 0;
    ST_TRY(grow((void **)&s->ev, &s->cap, s->n, sizeof *s->ev));
    s->ev[s->n++] = (hev_t){t, tier, delta};
    return 0;
}

static int tier_of(const char *name)
{
    for (int t = 0; t < ST_TIER_COUNT; t++)
        if (strcmp(name, st_audit_tier_name(t)) == 0) return t;
    return -1;
}

static bool in_scope(const report_t *r, const st_audit_rec_t *rec, const char *policy)
{
    if (r->o.tenant && strcmp(rec->tenant, r->o.tenant) != 0) return false;
    if (r->o.policy && policy && strcmp(policy, r->o.policy) != 0) return false;
    return true;
}

static int64_t i64(st_str_t obj, const char *key)
{
    int64_t v = 0;
    st_audit_json_i64(obj, key, &v);
    return v;
}

static int trail_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    tscan_t *s = arg;
    report_t *r = s->r;
    int64_t t = i64(rec->details, "as_of");
    if (t == 0) t = rec->time_ns;
    char cls[32] = "", from[32] = "", pol[64] = "";
    st_audit_json_str(rec->details, "class", cls, sizeof cls);
    st_audit_json_str(rec->details, "from", from, sizeof from);
    st_audit_json_str(rec->details, "policy", pol, sizeof pol);
    const char *type = rec->type;
    if (strcmp(type, "seal") == 0) {
        s->seals++;
        s->last_seal = rec->time_ns;
        return 0;
    }
    if (strcmp(type, "chunk.write") == 0) {
        if (r->o.tenant && strcmp(rec->tenant, r->o.tenant) != 0) return 0;
        if (r->o.policy) {
            char labels[2048];
            st_labels_t l;
            char err[256];
            if (st_audit_json_str(rec->details, "labels", labels, sizeof labels) < 0 ||
                st_labels_parse(st_cstr(labels), &l, err) < 0)
                return 0;
            int p = st_lc_policy_for(r->lc, rec->tenant, &l);
            st_labels_free(&l);
            if (p < 0 || strcmp(r->lc->policies[p].name, r->o.policy) != 0) return 0;
        }
        return hev(s, rec->time_ns, ST_TIER_HOT, i64(rec->details, "length"));
    }
    bool move = strcmp(type, "object.upload") == 0 || strcmp(type, "object.repack") == 0 ||
                strcmp(type, "object.transition") == 0;
    if (move && in_scope(r, rec, pol)) {
        int to = tier_of(cls);
        if (t > r->as_of - 30 * ST_NS_PER_DAY && t <= r->as_of && to >= 0) r->requests_30d[to]++;
        ST_TRY(hev(s, t, to, i64(rec->details, "size")));
        if (strcmp(type, "object.upload") == 0)
            return hev(s, t, ST_TIER_HOT, -i64(rec->details, "chunk_bytes"));
        if (strcmp(type, "object.transition") == 0)
            return hev(s, t, tier_of(from), -i64(rec->details, "size"));
        st_str_t src;
        if (st_audit_json_get(rec->details, "sources", &src) == 0) {
            /* sum of the sources' sizes, per class */
            const char *p = src.p, *end = src.p + src.n;
            while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
                const char *q = memchr(p, '}', (size_t)(end - p));
                if (q == NULL) break;
                st_str_t one = st_str(p, (size_t)(q - p + 1));
                char c2[32] = "";
                st_audit_json_str(one, "class", c2, sizeof c2);
                ST_TRY(hev(s, t, tier_of(c2), -i64(one, "size")));
                p = q + 1;
            }
        }
        return 0;
    }
    if (strcmp(type, "delete.retention") == 0 && in_scope(r, rec, pol)) {
        char kind[16] = "";
        st_audit_json_str(rec->details, "kind", kind, sizeof kind);
        if (strcmp(kind, "hot") == 0) return hev(s, t, ST_TIER_HOT, -i64(rec->details, "bytes"));
        st_str_t obj;
        if (st_audit_json_get(rec->details, "object", &obj) == 0) {
            char oc[32] = "";
            st_audit_json_str(obj, "class", oc, sizeof oc);
            return hev(s, t, tier_of(oc), -i64(obj, "size"));
        }
        return 0;
    }
    if (strcmp(type, "erasure.chunk") == 0 && in_scope(r, rec, NULL)) {
        st_str_t old, nw;
        int64_t d = 0;
        if (st_audit_json_get(rec->details, "old", &old) == 0) d -= i64(old, "length");
        if (st_audit_json_get(rec->details, "new", &nw) == 0 && nw.n && nw.p[0] == '{')
            d += i64(nw, "length");
        return hev(s, t, ST_TIER_HOT, d);
    }
    if ((strcmp(type, "erasure.processed") == 0 || strcmp(type, "erasure.refused") == 0)) {
        if (r->o.tenant && strcmp(rec->tenant, r->o.tenant) != 0) return 0;
        char id[16] = "";
        st_audit_json_str(rec->details, "id", id, sizeof id);
        bool known = false;
        for (size_t i = 0; id[0] && i < r->nerasures; i++)
            if (strcmp(r->erasures[i].id, id) == 0 && strcmp(r->erasures[i].tenant, rec->tenant) == 0) {
                r->erasures[i].finished = t;
                known = true;
            }
        if (known || id[0]) return 0;
        /* refused when it was made: only the trail knows it */
        ST_TRY(grow((void **)&r->erasures, &r->caperasures, r->nerasures, sizeof *r->erasures));
        rerasure_t *e = &r->erasures[r->nerasures++];
        memset(e, 0, sizeof *e);
        snprintf(e->tenant, sizeof e->tenant, "%s", rec->tenant);
        snprintf(e->status, sizeof e->status, "refused");
        st_audit_json_str(rec->details, "query", e->query, sizeof e->query);
        st_audit_json_str(rec->details, "reason", e->message, sizeof e->message);
        st_audit_json_i64(rec->details, "start", &e->start);
        st_audit_json_i64(rec->details, "end", &e->end);
        st_audit_json_i64(rec->details, "created", &e->created);
        e->finished = e->created;
        return 0;
    }
    if (strcmp(type, "drill.restore") == 0) {
        int ti = tier_of(cls);
        if (ti >= 0 && rec->time_ns >= r->drills[ti].at) {
            rdrill_t *d = &r->drills[ti];
            d->at = rec->time_ns;
            snprintf(d->tier, sizeof d->tier, "%s", cls);
            st_audit_json_str(rec->details, "outcome", d->outcome, sizeof d->outcome);
            st_audit_json_str(rec->details, "key", d->key, sizeof d->key);
            st_str_t sec;
            d->seconds = st_audit_json_get(rec->details, "seconds", &sec) == 0 ? strtod(sec.p, NULL) : 0;
        }
    }
    return 0;
}

static int cmp_hev(const void *a, const void *b)
{
    const hev_t *x = a, *y = b;
    return x->t < y->t ? -1 : x->t > y->t;
}

static int scan_trail(report_t *r)
{
    st_audit_dir_of(r->cfg, r->lc, r->audit_dir, sizeof r->audit_dir);
    r->audit_enabled = r->ac->enabled;
    tscan_t s = {r, NULL, 0, 0, 0, 0, 0};
    st_audit_chain_t chain;
    int rc = st_audit_scan(r->audit_dir, trail_cb, &s, &chain, &r->audit_break);
    r->audit_present = rc != ST_ENOTFOUND;
    r->audit_ok = rc == 0;
    r->audit_segments = chain.segments + (rc == ST_ECORRUPT ? 1 : 0);
    r->audit_records = chain.records;
    r->audit_last_seq = chain.next_seq ? chain.next_seq - 1 : 0;
    memcpy(r->audit_last_hash, chain.last_hash, sizeof r->audit_last_hash);
    r->audit_seals = s.seals;
    r->audit_last_seal = s.last_seal;
    if (r->audit_present && r->audit_segments > s.seals + 1)
        r->audit_unsealed = r->audit_segments - 1 - s.seals;
    if (rc == ST_ECORRUPT)
        rc = violation(r, "audit_chain", -1, "", "", "", r->audit_dir, 0, 0, 0,
                       "the audit trail is broken at segment %llu line %llu (seq %llu): %s",
                       (unsigned long long)r->audit_break.segment, (unsigned long long)r->audit_break.line,
                       (unsigned long long)r->audit_break.seq, r->audit_break.what);
    else if (rc == ST_ENOTFOUND && r->audit_enabled)
        rc = violation(r, "audit_chain", -1, "", "", "", r->audit_dir, 0, 0, 0,
                       "lifecycle.audit is enabled but there is no audit trail in %s", r->audit_dir);
    else if (rc == ST_ENOTFOUND)
        rc = 0;
    else if (rc < 0)
        rc = violation(r, "audit_chain", -1, "", "", "", r->audit_dir, 0, 0, 0,
                       "the audit trail cannot be read: %s", st_strerror(rc));
    /* bytes per tier over time: the trail's events, then the index as of now */
    if (rc == 0 && s.n) {
        st_qsort(s.ev, s.n, sizeof *s.ev, cmp_hev);
        size_t npts = 0;
        int64_t step = s.n > MAX_POINTS ? (s.ev[s.n - 1].t - s.ev[0].t) / MAX_POINTS + 1 : 0;
        r->hist = calloc(MAX_POINTS + 3, sizeof *r->hist);
        if (r->hist == NULL) rc = -ENOMEM;
        int64_t cur[ST_TIER_COUNT] = {0};
        for (size_t i = 0; rc == 0 && i < s.n; i++) {
            cur[s.ev[i].tier] += s.ev[i].delta;
            bool last_of_time = i + 1 == s.n || s.ev[i + 1].t != s.ev[i].t;
            if (step && i + 1 < s.n && s.ev[i + 1].t / step == s.ev[i].t / step) last_of_time = false;
            if (!last_of_time || s.ev[i].t > r->as_of) continue;
            if (npts == MAX_POINTS + 1) npts--;
            rpoint_t *p = &r->hist[npts++];
            p->t = s.ev[i].t;
            for (int t = 0; t < ST_TIER_COUNT; t++) p->bytes[t] = cur[t] > 0 ? (uint64_t)cur[t] : 0;
        }
        r->nhist = npts;
    }
    if (rc == 0) {
        if (r->hist == NULL && (r->hist = calloc(1, sizeof *r->hist)) == NULL) rc = -ENOMEM;
        if (rc == 0) {
            rpoint_t *p = &r->hist[r->nhist++];
            p->t = r->as_of;
            p->bytes[ST_TIER_HOT] = r->tier[ST_TIER_HOT].bytes;
            for (int t = 1; t < ST_TIER_COUNT; t++) p->bytes[t] = r->object_bytes[t];
        }
    }
    free(s.ev);
    return rc;
}

/* ---- cost -----------------------------------------------------------------------------------------------
 */

static void compute_cost(report_t *r)
{
    const st_audit_prices_t *pr = &r->ac->prices;
    uint64_t all = r->tier[ST_TIER_HOT].bytes;
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        uint64_t b = t == ST_TIER_HOT ? r->tier[t].bytes : r->object_bytes[t];
        if (t != ST_TIER_HOT) all += b;
        r->storage_cost[t] = (double)b / GIB * pr->storage_gb_month[t];
        if (st_tier_archived((st_tier_t)t))
            r->storage_cost[t] +=
                (double)r->objects_per_tier[t] * pr->archive_overhead_bytes / GIB * pr->storage_gb_month[t];
        r->request_cost[t] = (double)r->requests_30d[t] / 1000.0 * pr->requests_per_1000[t];
        r->total_cost += r->storage_cost[t] + r->request_cost[t];
    }
    r->cost_all_hot = (double)all / GIB * pr->storage_gb_month[ST_TIER_HOT];
    r->cost_all_standard = (double)all / GIB * pr->storage_gb_month[ST_TIER_STANDARD];
    r->cost_cloudwatch_month = (double)r->raw_bytes / GIB * pr->cloudwatch_storage_gb_month;
    r->cost_cloudwatch_ingest = (double)r->raw_bytes / GIB * pr->cloudwatch_ingest_gb;
    if (r->cw_stored_bytes)
        r->total_cost += (double)r->cw_stored_bytes / GIB * pr->cloudwatch_storage_gb_month;
}

/* ---- JSON and CSV -----------------------------------------------------------------------------------------
 */

static void put_time(st_buf_t *b, const char *key, int64_t ns)
{
    char t[40];
    st_report_time(ns, t);
    st_buf_printf(b, ",\"%s\":", key);
    if (t[0])
        st_buf_printf(b, "\"%s\"", t);
    else
        st_buf_puts(b, "null");
}

static void put_money(st_buf_t *b, const char *key, double v)
{
    st_buf_printf(b, ",\"%s\":", key);
    st_json_put_float_str(b, v);
}

static void put_tiers(st_buf_t *b, const rtb_t *t, const uint64_t *objects, const uint64_t *object_bytes)
{
    st_buf_puts(b, ",\"tiers\":{");
    for (int i = 0; i < ST_TIER_COUNT; i++) {
        st_buf_printf(b, "%s\"%s\":{\"chunks\":%llu,\"bytes\":%llu", i ? "," : "", st_audit_tier_name(i),
                      (unsigned long long)t[i].chunks, (unsigned long long)t[i].bytes);
        if (objects && i != ST_TIER_HOT)
            st_buf_printf(b, ",\"objects\":%llu,\"object_bytes\":%llu", (unsigned long long)objects[i],
                          (unsigned long long)object_bytes[i]);
        st_buf_putc(b, '}');
    }
    st_buf_putc(b, '}');
}

static const char *lock_name(st_lock_mode_t m)
{
    return m == ST_LOCK_COMPLIANCE ? "COMPLIANCE" : m == ST_LOCK_GOVERNANCE ? "GOVERNANCE" : "";
}

static int render_json(const report_t *r, st_buf_t *b)
{
    st_buf_puts(b, "{\"report\":\"retention\"");
    put_time(b, "generated_at", r->generated);
    put_time(b, "as_of", r->as_of);
    st_buf_puts(b, ",\"tenant\":");
    if (r->o.tenant)
        st_json_put_cstr(b, r->o.tenant);
    else
        st_buf_puts(b, "null");
    st_buf_puts(b, ",\"policy\":");
    if (r->o.policy)
        st_json_put_cstr(b, r->o.policy);
    else
        st_buf_puts(b, "null");
    char g[40];
    st_format_prom_duration(r->grace, g);
    st_buf_printf(b, ",\"deletion_grace\":\"%s\"", r->grace ? g : "0s");
    /* summary */
    st_buf_printf(
        b,
        ",\"summary\":{\"streams\":%zu,\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu,\"raw_bytes\":%llu,"
        "\"objects\":%zu,\"violations\":%zu",
        r->nstreams, (unsigned long long)r->chunks, (unsigned long long)r->bytes,
        (unsigned long long)r->entries, (unsigned long long)r->raw_bytes, r->nobjects, r->nviol);
    put_tiers(b, r->tier, r->objects_per_tier, r->object_bytes);
    put_money(b, "monthly_cost_usd", r->total_cost);
    put_money(b, "monthly_cost_if_hot_usd", r->cost_all_hot);
    st_buf_printf(b, ",\"audit_chain\":\"%s\"}",
                  !r->audit_present ? "absent"
                  : r->audit_ok     ? "intact"
                                    : "broken");
    /* violations */
    st_buf_puts(b, ",\"violations\":[");
    for (size_t i = 0; i < r->nviol; i++) {
        const rviolation_t *v = &r->viol[i];
        st_buf_printf(b, "%s{\"kind\":\"%s\",\"policy\":", i ? "," : "", v->kind);
        st_json_put_cstr(b, v->policy);
        st_buf_puts(b, ",\"tenant\":");
        st_json_put_cstr(b, v->tenant);
        st_buf_puts(b, ",\"stream\":");
        st_json_put_cstr(b, v->stream);
        st_buf_puts(b, ",\"tier\":");
        st_json_put_cstr(b, v->tier);
        st_buf_puts(b, ",\"key\":");
        st_json_put_cstr(b, v->key);
        st_buf_printf(b, ",\"chunks\":%llu,\"bytes\":%llu", (unsigned long long)v->chunks,
                      (unsigned long long)v->bytes);
        put_time(b, "since", v->since);
        st_buf_puts(b, ",\"message\":");
        st_json_put_cstr(b, v->message);
        st_buf_putc(b, '}');
    }
    /* policies */
    st_buf_puts(b, "],\"policies\":[");
    for (int i = 0; i <= r->lc->npolicies; i++) {
        const rpolicy_t *rp = &r->policies[i];
        if (i == r->lc->npolicies && rp->streams == 0) continue;
        if (r->o.policy && (i == r->lc->npolicies || strcmp(r->lc->policies[i].name, r->o.policy) != 0))
            continue;
        if (b->data[b->len - 1] != '[') st_buf_putc(b, ',');
        if (i == r->lc->npolicies) {
            st_buf_puts(b, "{\"name\":null,\"legal_basis\":\"\",\"note\":\"streams no rule matches: kept "
                           "hot, never deleted\"");
        } else {
            const st_lc_policy_t *p = &r->lc->policies[i];
            st_buf_puts(b, "{\"name\":");
            st_json_put_cstr(b, p->name);
            st_buf_puts(b, ",\"legal_basis\":");
            st_json_put_cstr(b, p->legal_basis);
            st_buf_printf(b, ",\"erasable\":%s,\"immutable\":%s,\"object_lock\":\"%s\",\"allowed_tiers\":[",
                          p->erasable ? "true" : "false", p->immutable ? "true" : "false",
                          lock_name(p->object_lock));
            for (int t = 0; t < p->ntiers; t++) {
                char u[40];
                st_format_prom_duration(p->tiers[t].until_ns, u);
                st_buf_printf(b, "%s{\"class\":\"%s\",\"until\":\"%s\"}", t ? "," : "",
                              st_audit_tier_name(p->tiers[t].tier), u);
            }
            char d[40];
            st_format_prom_duration(p->delete_after_ns, d);
            st_buf_printf(b, "],\"delete_after\":%s%s%s,\"cloudwatch_retention_days\":%d",
                          p->delete_after_ns ? "\"" : "", p->delete_after_ns ? d : "null",
                          p->delete_after_ns ? "\"" : "", p->cloudwatch_retention_days);
        }
        st_buf_printf(b, ",\"streams\":%llu,\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu",
                      (unsigned long long)rp->streams, (unsigned long long)rp->chunks,
                      (unsigned long long)rp->bytes, (unsigned long long)rp->entries);
        put_tiers(b, rp->tier, rp->objects, rp->object_bytes);
        put_time(b, "oldest", rp->oldest);
        put_time(b, "newest", rp->newest);
        put_time(b, "next_deletion", rp->next_deletion);
        st_buf_printf(b, ",\"locked_objects\":%llu", (unsigned long long)rp->locked_objects);
        put_time(b, "min_retain_until", rp->min_retain_until);
        st_buf_printf(b, ",\"violations\":%llu}", (unsigned long long)rp->violations);
    }
    /* streams */
    st_buf_puts(b, "],\"streams\":[");
    for (size_t i = 0; i < r->nstreams; i++) {
        const rstream_t *s = &r->streams[i];
        st_buf_puts(b, i ? ",{\"tenant\":" : "{\"tenant\":");
        st_json_put_cstr(b, s->tenant);
        st_buf_puts(b, ",\"labels\":");
        st_json_put_cstr(b, s->labels);
        st_buf_printf(b, ",\"stream_id\":\"%016llx\",\"policy\":", (unsigned long long)s->stream_id);
        if (s->policy >= 0)
            st_json_put_cstr(b, r->lc->policies[s->policy].name);
        else
            st_buf_puts(b, "null");
        st_buf_printf(b, ",\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu,\"raw_bytes\":%llu",
                      (unsigned long long)s->chunks, (unsigned long long)s->bytes,
                      (unsigned long long)s->entries, (unsigned long long)s->raw_bytes);
        put_tiers(b, s->tier, NULL, NULL);
        put_time(b, "oldest", s->oldest);
        put_time(b, "newest", s->newest);
        put_time(b, "next_transition", s->next_transition);
        st_buf_printf(b, ",\"next_transition_to\":%s%s%s", s->next_transition ? "\"" : "",
                      s->next_transition ? st_audit_tier_name(s->next_tier) : "null",
                      s->next_transition ? "\"" : "");
        put_time(b, "next_deletion", s->next_deletion);
        put_time(b, "deleted_entirely", s->all_deleted);
        st_buf_printf(b, ",\"violations\":%llu}", (unsigned long long)s->violations);
    }
    /* objects */
    st_buf_puts(b, "],\"objects\":[");
    for (size_t i = 0; i < r->nobjects; i++) {
        const st_pack_state_t *ps = &r->objects[i].ps;
        st_buf_puts(b, i ? ",{\"key\":" : "{\"key\":");
        st_json_put_cstr(b, ps->key);
        st_buf_puts(b, ",\"tenant\":");
        st_json_put_cstr(b, ps->tenant);
        st_buf_puts(b, ",\"policy\":");
        st_json_put_cstr(b, ps->policy);
        st_buf_printf(b, ",\"class\":\"%s\",\"version_id\":", st_audit_tier_name(ps->tier));
        st_json_put_cstr(b, ps->version_id);
        st_buf_printf(b, ",\"size\":%llu,\"chunks\":%llu,\"crc32\":%u", (unsigned long long)ps->size,
                      (unsigned long long)ps->chunks, ps->crc32);
        put_time(b, "min_ts", ps->min_ts);
        put_time(b, "max_ts", ps->max_ts);
        put_time(b, "delete_at", ps->delete_at == INT64_MAX ? 0 : ps->delete_at);
        st_buf_printf(b, ",\"lock_mode\":\"%s\"", ps->lock_mode);
        put_time(b, "retain_until", ps->retain_until * ST_NS_PER_SEC);
        st_buf_puts(b, ",\"status\":");
        st_json_put_cstr(b, r->objects[i].status);
        st_buf_putc(b, '}');
    }
    /* erasure requests */
    st_buf_puts(b, "],\"erasure_requests\":[");
    for (size_t i = 0; i < r->nerasures; i++) {
        const rerasure_t *e = &r->erasures[i];
        st_buf_puts(b, i ? ",{\"tenant\":" : "{\"tenant\":");
        st_json_put_cstr(b, e->tenant);
        st_buf_puts(b, ",\"id\":");
        st_json_put_cstr(b, e->id);
        st_buf_puts(b, ",\"query\":");
        st_json_put_cstr(b, e->query);
        st_buf_puts(b, ",\"status\":");
        st_json_put_cstr(b, e->status);
        put_time(b, "start", e->start);
        put_time(b, "end", e->end);
        put_time(b, "created", e->created);
        put_time(b, "finished", e->finished);
        st_buf_printf(b, ",\"lines_removed\":%llu,\"message\":", (unsigned long long)e->lines);
        st_json_put_cstr(b, e->message);
        st_buf_putc(b, '}');
    }
    /* CloudWatch */
    st_buf_puts(b, "],\"cloudwatch\":");
    if (!r->lc->cloudwatch.configured) {
        st_buf_puts(b, "null");
    } else {
        st_buf_printf(b, "{\"manage_retention\":%s,\"checked\":%s,\"error\":",
                      r->lc->cloudwatch.manage_retention ? "true" : "false",
                      r->cw_checked ? "true" : "false");
        st_json_put_cstr(b, r->cw_error);
        st_buf_puts(b, ",\"groups\":[");
        for (size_t i = 0; i < r->ncw; i++) {
            st_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
            st_json_put_cstr(b, r->cw[i].name);
            st_buf_printf(b, ",\"retention_days\":%d,\"policy_days\":%d,\"stored_bytes\":%llu,\"policy\":",
                          r->cw[i].retention_days, r->cw[i].expected_days,
                          (unsigned long long)r->cw[i].stored_bytes);
            st_json_put_cstr(b, r->cw[i].policy);
            st_buf_putc(b, '}');
        }
        st_buf_puts(b, "]}");
    }
    /* cost */
    const st_audit_prices_t *pr = &r->ac->prices;
    st_buf_puts(b, ",\"cost\":{\"currency\":\"USD\",\"tiers\":{");
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        uint64_t bytes = t == ST_TIER_HOT ? r->tier[t].bytes : r->object_bytes[t];
        st_buf_printf(
            b,
            "%s\"%s\":{\"bytes\":%llu,\"objects\":%llu,\"price_gb_month\":%g,\"price_per_1000_requests\":%g,"
            "\"requests_last_30d\":%llu",
            t ? "," : "", st_audit_tier_name(t), (unsigned long long)bytes,
            (unsigned long long)(t == ST_TIER_HOT ? 0 : r->objects_per_tier[t]), pr->storage_gb_month[t],
            pr->requests_per_1000[t], (unsigned long long)r->requests_30d[t]);
        put_money(b, "storage_usd_month", r->storage_cost[t]);
        put_money(b, "requests_usd_month", r->request_cost[t]);
        st_buf_putc(b, '}');
    }
    st_buf_putc(b, '}');
    put_money(b, "total_usd_month", r->total_cost);
    put_money(b, "all_hot_usd_month", r->cost_all_hot);
    put_money(b, "all_standard_usd_month", r->cost_all_standard);
    put_money(b, "cloudwatch_storage_usd_month", r->cost_cloudwatch_month);
    put_money(b, "cloudwatch_ingest_usd_once", r->cost_cloudwatch_ingest);
    st_buf_printf(b, ",\"cloudwatch_stored_bytes\":%llu,\"archive_overhead_bytes\":%g}",
                  (unsigned long long)r->cw_stored_bytes, pr->archive_overhead_bytes);
    /* retrievability drills */
    st_buf_puts(b, ",\"retrievability\":[");
    bool first = true;
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        const rdrill_t *d = &r->drills[t];
        if (d->at == 0) continue;
        st_buf_printf(b, "%s{\"class\":\"%s\"", first ? "" : ",", d->tier);
        put_time(b, "tested_at", d->at);
        st_buf_printf(b, ",\"seconds\":%.3f,\"outcome\":", d->seconds);
        st_json_put_cstr(b, d->outcome);
        st_buf_puts(b, ",\"key\":");
        st_json_put_cstr(b, d->key);
        st_buf_putc(b, '}');
        first = false;
    }
    /* the audit trail */
    st_buf_printf(b, "],\"audit\":{\"enabled\":%s,\"present\":%s,\"intact\":%s,\"dir\":",
                  r->audit_enabled ? "true" : "false", r->audit_present ? "true" : "false",
                  r->audit_ok ? "true" : "false");
    st_json_put_cstr(b, r->audit_dir);
    st_buf_printf(b,
                  ",\"segments\":%llu,\"records\":%llu,\"last_seq\":%llu,\"last_hash\":\"%s\",\"seals\":%llu,"
                  "\"unsealed_closed_segments\":%llu",
                  (unsigned long long)r->audit_segments, (unsigned long long)r->audit_records,
                  (unsigned long long)r->audit_last_seq, r->audit_present ? r->audit_last_hash : "",
                  (unsigned long long)r->audit_seals, (unsigned long long)r->audit_unsealed);
    put_time(b, "last_seal", r->audit_last_seal);
    st_buf_puts(b, ",\"break\":");
    if (r->audit_present && !r->audit_ok) {
        st_buf_printf(b, "{\"segment\":%llu,\"line\":%llu,\"seq\":%llu,\"what\":",
                      (unsigned long long)r->audit_break.segment, (unsigned long long)r->audit_break.line,
                      (unsigned long long)r->audit_break.seq);
        st_json_put_cstr(b, r->audit_break.what);
        st_buf_putc(b, '}');
    } else {
        st_buf_puts(b, "null");
    }
    /* history */
    st_buf_puts(b, "},\"history\":[");
    for (size_t i = 0; i < r->nhist; i++) {
        char t[40];
        st_report_time(r->hist[i].t, t);
        st_buf_printf(b, "%s{\"time\":\"%s\"", i ? "," : "", t);
        for (int k = 0; k < ST_TIER_COUNT; k++)
            st_buf_printf(b, ",\"%s\":%llu", st_audit_tier_name(k), (unsigned long long)r->hist[i].bytes[k]);
        st_buf_putc(b, '}');
    }
    return st_buf_puts(b, "]}\n");
}

static void csv_field(st_buf_t *b, const char *s)
{
    bool quote = strpbrk(s, ",\"\n\r") != NULL;
    if (!quote) {
        st_buf_puts(b, s);
        return;
    }
    st_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"') st_buf_putc(b, '"');
        st_buf_putc(b, *s);
    }
    st_buf_putc(b, '"');
}

static void csv_row(st_buf_t *b, const char *const *f, int n)
{
    for (int i = 0; i < n; i++) {
        if (i) st_buf_putc(b, ',');
        csv_field(b, f[i] ? f[i] : "");
    }
    st_buf_puts(b, "\r\n");
}

static int render_csv(const report_t *r, st_buf_t *b)
{
    static const char *const head[] = {"record",      "policy",          "tenant",    "stream",
                                       "tier",        "chunks",          "bytes",     "oldest",
                                       "newest",      "next_transition", "next_tier", "next_deletion",
                                       "legal_basis", "object_lock",     "detail"};
    csv_row(b, head, 15);
    char chunks[32], bytes[32], o[40], n[40], nt[40], nd[40];
    for (size_t i = 0; i < r->nstreams; i++) {
        const rstream_t *s = &r->streams[i];
        const st_lc_policy_t *p = s->policy >= 0 ? &r->lc->policies[s->policy] : NULL;
        st_report_time(s->oldest, o);
        st_report_time(s->newest, n);
        st_report_time(s->next_transition, nt);
        st_report_time(s->next_deletion, nd);
        for (int t = 0; t < ST_TIER_COUNT; t++) {
            if (s->tier[t].chunks == 0) continue;
            snprintf(chunks, sizeof chunks, "%llu", (unsigned long long)s->tier[t].chunks);
            snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)s->tier[t].bytes);
            const char *f[] = {"stream",
                               p ? p->name : "",
                               s->tenant,
                               s->labels,
                               st_audit_tier_name(t),
                               chunks,
                               bytes,
                               o,
                               n,
                               nt,
                               s->next_transition ? st_audit_tier_name(s->next_tier) : "",
                               nd,
                               p ? p->legal_basis : "",
                               p ? lock_name(p->object_lock) : "",
                               ""};
            csv_row(b, f, 15);
        }
    }
    for (size_t i = 0; i < r->nviol; i++) {
        const rviolation_t *v = &r->viol[i];
        snprintf(chunks, sizeof chunks, "%llu", (unsigned long long)v->chunks);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)v->bytes);
        char detail[600];
        snprintf(detail, sizeof detail, "%s: %s", v->kind, v->message);
        st_report_time(v->since, nd);
        const char *f[] = {"violation", v->policy, v->tenant, v->stream[0] ? v->stream : v->key,
                           v->tier,     chunks,    bytes,     "",
                           "",          "",        "",        nd,
                           "",          "",        detail};
        csv_row(b, f, 15);
    }
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        uint64_t by = t == ST_TIER_HOT ? r->tier[t].bytes : r->object_bytes[t];
        snprintf(chunks, sizeof chunks, "%llu", (unsigned long long)r->tier[t].chunks);
        snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)by);
        char detail[200];
        snprintf(detail, sizeof detail, "storage $%.6f/month, requests $%.6f/month", r->storage_cost[t],
                 r->request_cost[t]);
        const char *f[] = {"cost", "", "", "",    st_audit_tier_name(t), chunks, bytes, "", "", "", "",
                           "",     "", "", detail};
        csv_row(b, f, 15);
    }
    char detail[300];
    snprintf(detail, sizeof detail, "total $%.6f/month; kept hot $%.6f/month; %zu violations; audit chain %s",
             r->total_cost, r->cost_all_hot, r->nviol,
             !r->audit_present ? "absent"
             : r->audit_ok     ? "intact"
                               : "broken");
    snprintf(chunks, sizeof chunks, "%llu", (unsigned long long)r->chunks);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)r->bytes);
    const char *f[] = {"summary",
                       r->o.policy ? r->o.policy : "",
                       r->o.tenant ? r->o.tenant : "",
                       "",
                       "",
                       chunks,
                       bytes,
                       "",
                       "",
                       "",
                       "",
                       "",
                       "",
                       "",
                       detail};
    csv_row(b, f, 15);
    return 0;
}

/* ---- the whole report ---------------------------------------------------------------------------------- */

static void report_free(report_t *r)
{
    for (size_t i = 0; i < r->nstreams; i++) free(r->streams[i].labels);
    free(r->streams);
    free(r->policies);
    free(r->viol);
    free(r->objects);
    free(r->erasures);
    free(r->cw);
    free(r->hist);
}

int st_report_retention(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix,
                        const st_report_opts_t *o, st_report_format_t fmt, st_buf_t *out, size_t *violations)
{
    report_t r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.lc = lc;
    r.ac = st_audit_config_of(lc);
    r.o = *o;
    r.generated = st_now_ns();
    r.as_of = o->as_of ? o->as_of : r.generated;
    r.grace = o->grace_ns >= 0 ? o->grace_ns : r.ac->deletion_grace_ns;
    r.policies = calloc((size_t)lc->npolicies + 1, sizeof *r.policies);
    int rc = r.policies ? 0 : -ENOMEM;
    if (rc == 0) rc = load_index(&r, ix);
    if (rc == 0 && !o->skip_objects) rc = check_objects(&r, ix);
    if (rc == 0 && !o->skip_cloudwatch) check_cloudwatch(&r);
    if (rc == 0) rc = scan_trail(&r);
    if (rc == 0) {
        compute_cost(&r);
        if (fmt == ST_REPORT_JSON)
            rc = render_json(&r, out);
        else if (fmt == ST_REPORT_CSV)
            rc = render_csv(&r, out);
        else
            rc = st_report_html(&r, out);
    }
    if (violations) *violations = r.nviol;
    report_free(&r);
    return rc;
}
