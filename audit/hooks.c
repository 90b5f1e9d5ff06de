/* hooks.c: the records other modules write through the process-wide trail: chunks the ingester wrote
 * (with their SHA-256), the lifecycle's uploads, repacks, transitions and deletions (it reads the run's
 * structures from lifecycle/lifecycle_int.h but calls nothing of the lifecycle), erasure requests and
 * their rewrites, restores, and queries. Every function is a no-op without a global trail. Record
 * details are documented in docs/compliance.md; timestamps in details are Unix nanoseconds. */
#include "audit/audit_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "lifecycle/lifecycle_int.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "audit"

static const char *const tier_names[ST_AUDIT_NTIERS] = {"hot",        "STANDARD", "STANDARD_IA",
                                                        "GLACIER_IR", "GLACIER",  "DEEP_ARCHIVE"};
_Static_assert(ST_TIER_COUNT == ST_AUDIT_NTIERS, "one price and name per storage tier");

const char *st_audit_tier_name(int tier)
{
    return tier >= 0 && tier < ST_AUDIT_NTIERS ? tier_names[tier] : "deleted";
}

int st_audit_sha256_file(const char *path, uint64_t off, uint64_t len, char out[ST_AUDIT_HASH_HEX])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t cap = 1u << 18;
    char *buf = malloc(cap);
    int rc = ctx && buf && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;
    while (rc == 0 && len > 0) {
        size_t n = len < cap ? (size_t)len : cap;
        ssize_t k = pread(fd, buf, n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            rc = k < 0 ? -errno : ST_ECORRUPT; /* shorter than recorded */
        else {
            EVP_DigestUpdate(ctx, buf, (size_t)k);
            off += (uint64_t)k;
            len -= (uint64_t)k;
        }
    }
    unsigned char md[32];
    unsigned mdlen = sizeof md;
    if (rc == 0 && !EVP_DigestFinal_ex(ctx, md, &mdlen)) rc = -EIO;
    if (rc == 0) {
        static const char hx[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            out[2 * i] = hx[md[i] >> 4];
            out[2 * i + 1] = hx[md[i] & 15];
        }
        out[64] = '\0';
    }
    EVP_MD_CTX_free(ctx);
    free(buf);
    close(fd);
    return rc;
}

static void put_kstr(st_buf_t *b, const char *key, const char *v)
{
    st_buf_printf(b, ",\"%s\":", key);
    st_json_put_cstr(b, v ? v : "");
}

/* Appends durably; failures are logged and counted by the trail. */
static int record(const char *type, const char *tenant, const char *actor, st_buf_t *d)
{
    st_audit_t *a = st_audit_global();
    if (a == NULL) return 0;
    int rc = d->len ? st_audit_append(a, type, tenant, actor, st_str(d->data, d->len), true, NULL) : -ENOMEM;
    st_buf_free(d);
    return rc;
}

/* ---- chunks written by the ingester ----------------------------------------------------------------- */

struct st_audit_batch {
    st_audit_t *a;
    st_buf_t recs; /* lstr tenant, lstr details per record */
};

st_audit_batch_t *st_audit_batch_begin(void)
{
    st_audit_t *a = st_audit_global();
    if (a == NULL) return NULL;
    st_audit_batch_t *b = calloc(1, sizeof *b);
    if (b) b->a = a;
    return b;
}

static void put_chunk_ref(st_buf_t *d, const st_chunk_ref_t *ref)
{
    st_buf_printf(d, "\"chunk_id\":\"%016llx\",\"stream_id\":\"%016llx\",\"path\":",
                  (unsigned long long)ref->chunk_id, (unsigned long long)ref->stream_id);
    st_json_put_cstr(d, ref->loc.path);
    st_buf_printf(
        d,
        ",\"offset\":%llu,\"length\":%llu,\"min_ts\":%lld,\"max_ts\":%lld,\"entries\":%u,\"raw_bytes\":%llu,"
        "\"crc32\":%u",
        (unsigned long long)ref->loc.offset, (unsigned long long)ref->loc.length, (long long)ref->min_ts,
        (long long)ref->max_ts, ref->entries, (unsigned long long)ref->raw_bytes, ref->crc32);
}

void st_audit_batch_chunk(st_audit_batch_t *b, const char *tenant, st_str_t labels, const st_chunk_ref_t *ref,
                          const char *chunks_dir)
{
    if (b == NULL) return;
    char path[4200], sha[ST_AUDIT_HASH_HEX];
    snprintf(path, sizeof path, "%s/%s", chunks_dir, ref->loc.path);
    int rc = st_audit_sha256_file(path, ref->loc.offset, ref->loc.length, sha);
    if (rc < 0) {
        ST_LOG_ERROR(MOD, "msg=\"cannot hash a chunk for its audit record\" path=%s err=\"%s\"", path,
                     st_strerror(rc));
        snprintf(sha, sizeof sha, "unreadable");
    }
    st_buf_t d = ST_BUF_INIT;
    st_buf_putc(&d, '{');
    put_chunk_ref(&d, ref);
    st_buf_puts(&d, ",\"labels\":");
    st_json_put_str(&d, labels);
    st_buf_printf(&d, ",\"sha256\":\"%s\"}", sha);
    if (st_buf_put_lstr(&b->recs, tenant, strlen(tenant)) == 0) st_buf_put_lstr(&b->recs, d.data, d.len);
    st_buf_free(&d);
}

void st_audit_batch_end(st_audit_batch_t *b, bool commit)
{
    if (b == NULL) return;
    if (commit && b->recs.len) {
        st_reader_t rd = st_reader(b->recs.data, b->recs.len);
        while (st_reader_left(&rd) > 0) {
            st_str_t t = st_read_lstr(&rd), d = st_read_lstr(&rd);
            if (rd.err) break;
            char tenant[160];
            snprintf(tenant, sizeof tenant, "%.*s", (int)t.n, t.p);
            st_audit_enqueue(b->a, "chunk.write", tenant, NULL, d);
        }
        st_audit_flush(b->a); /* one write and one fsync for the cycle (retried with the queue on failure) */
    }
    st_buf_free(&b->recs);
    free(b);
}

/* ---- the lifecycle ------------------------------------------------------------------------------------ */

static void put_object(st_buf_t *d, const st_pack_state_t *ps)
{
    st_buf_puts(d, "{\"key\":");
    st_json_put_cstr(d, ps->key);
    put_kstr(d, "policy", ps->policy);
    put_kstr(d, "class", st_audit_tier_name(ps->tier));
    put_kstr(d, "version_id", ps->version_id);
    st_buf_printf(
        d,
        ",\"size\":%llu,\"crc32\":%u,\"min_ts\":%lld,\"max_ts\":%lld,\"chunks\":%llu,\"delete_at\":%lld,"
        "\"lock_mode\":\"%s\",\"retain_until\":%lld",
        (unsigned long long)ps->size, ps->crc32, (long long)ps->min_ts, (long long)ps->max_ts,
        (unsigned long long)ps->chunks, (long long)(ps->delete_at == INT64_MAX ? 0 : ps->delete_at),
        ps->lock_mode, (long long)ps->retain_until);
}

static void lc_fail(lc_run_t *r, const char *what, const char *key, int rc)
{
    (void)r;
    ST_LOG_ERROR(
        MOD,
        "msg=\"cannot record %s in the audit trail (the move itself is done; verify reports the object "
        "as unaudited)\" key=%s err=\"%s\"",
        what, key, st_strerror(rc));
}

void st_audit_lc_upload(struct lc_run *r, const struct st_pack_state *ps, struct lc_chunk *const *g, size_t n)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    put_object(&d, ps);
    uint64_t bytes = 0;
    st_buf_puts(&d, ",\"from\":\"hot\",\"chunk_ids\":[");
    for (size_t i = 0; i < n; i++) {
        bytes += g[i]->ref.loc.length;
        st_buf_printf(&d, "%s\"%016llx\"", i ? "," : "", (unsigned long long)g[i]->ref.chunk_id);
    }
    st_buf_printf(&d, "],\"chunk_bytes\":%llu,\"as_of\":%lld}", (unsigned long long)bytes,
                  (long long)r->o->now_ns);
    int rc = record("object.upload", ps->tenant, NULL, &d);
    if (rc < 0) lc_fail(r, "an upload", ps->key, rc);
}

void st_audit_lc_repack(struct lc_run *r, const struct st_pack_state *ps, struct st_pack_state *const *src,
                        size_t nsrc)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    put_object(&d, ps);
    put_kstr(&d, "from", nsrc ? st_audit_tier_name(src[0]->tier) : "");
    st_buf_puts(&d, ",\"sources\":[");
    for (size_t i = 0; i < nsrc; i++) {
        st_buf_puts(&d, i ? ",{\"key\":" : "{\"key\":");
        st_json_put_cstr(&d, src[i]->key);
        put_kstr(&d, "version_id", src[i]->version_id);
        put_kstr(&d, "class", st_audit_tier_name(src[i]->tier));
        st_buf_printf(&d, ",\"size\":%llu,\"chunks\":%llu}", (unsigned long long)src[i]->size,
                      (unsigned long long)src[i]->chunks);
    }
    st_buf_printf(&d, "],\"as_of\":%lld}", (long long)r->o->now_ns);
    int rc = record("object.repack", ps->tenant, NULL, &d);
    if (rc < 0) lc_fail(r, "a repack", ps->key, rc);
}

void st_audit_lc_transition(struct lc_run *r, const struct st_pack_state *ps, st_tier_t from,
                            const char *old_version)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    put_object(&d, ps);
    put_kstr(&d, "from", st_audit_tier_name(from));
    put_kstr(&d, "old_version_id", old_version);
    st_buf_printf(&d, ",\"as_of\":%lld}", (long long)r->o->now_ns);
    int rc = record("object.transition", ps->tenant, NULL, &d);
    if (rc < 0) lc_fail(r, "a transition", ps->key, rc);
}

static void put_rule(st_buf_t *d, const st_lc_policy_t *p)
{
    char dur[40];
    st_format_prom_duration(p->delete_after_ns, dur);
    put_kstr(d, "policy", p->name);
    char rule[96];
    snprintf(rule, sizeof rule, "delete_after %s", dur);
    put_kstr(d, "rule", rule);
    put_kstr(d, "legal_basis", p->legal_basis);
}

int st_audit_lc_delete_object(struct lc_run *r, const struct st_pack_state *ps, const st_lc_policy_t *p)
{
    if (st_audit_global() == NULL) return 0;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"kind\":\"object\",\"object\":");
    put_object(&d, ps);
    st_buf_putc(&d, '}');
    put_rule(&d, p);
    /* the chunks the index places in the object */
    size_t lo = 0, hi = r->nby_path;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->by_path[mid]->ref.loc.path, ps->key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t bytes = 0, n = 0;
    st_buf_puts(&d, ",\"chunks\":[");
    for (size_t i = lo; i < r->nby_path && strcmp(r->by_path[i]->ref.loc.path, ps->key) == 0; i++, n++) {
        const st_chunk_ref_t *c = &r->by_path[i]->ref;
        bytes += c->size;
        st_buf_printf(
            &d,
            "%s{\"id\":\"%016llx\",\"stream_id\":\"%016llx\",\"min_ts\":%lld,\"max_ts\":%lld,\"size\":%llu}",
            n ? "," : "", (unsigned long long)c->chunk_id, (unsigned long long)c->stream_id,
            (long long)c->min_ts, (long long)c->max_ts, (unsigned long long)c->size);
    }
    st_buf_printf(&d, "],\"count\":%llu,\"bytes\":%llu,\"as_of\":%lld}", (unsigned long long)n,
                  (unsigned long long)bytes, (long long)r->o->now_ns);
    int rc = record("delete.retention", ps->tenant, NULL, &d);
    if (rc < 0)
        ST_LOG_ERROR(
            MOD,
            "msg=\"cannot record a deletion in the audit trail; the deletion step fails and is retried\" "
            "key=%s err=\"%s\"",
            ps->key, st_strerror(rc));
    return rc;
}

static bool hot_deleted(const lc_chunk_t *c)
{
    return c->policy >= 0 && c->ref.loc.kind == ST_LOC_LOCAL && c->target == ST_TIER_COUNT;
}

int st_audit_lc_delete_hot(struct lc_run *r)
{
    if (st_audit_global() == NULL) return 0;
    const size_t max_per_record = 2000;
    int rc = 0;
    /* one record per (tenant, policy), cut every max_per_record chunks */
    bool *seen = calloc(r->n ? r->n : 1, 1);
    if (seen == NULL) return -ENOMEM;
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        if (seen[i] || !hot_deleted(&r->c[i])) continue;
        const char *tenant = r->c[i].tenant;
        int pol = r->c[i].policy;
        const st_lc_policy_t *p = &r->o->lc->policies[pol];
        size_t j = i;
        while (rc == 0 && j < r->n) {
            st_buf_t d = ST_BUF_INIT;
            st_buf_puts(&d, "{\"kind\":\"hot\"");
            put_rule(&d, p);
            st_buf_puts(&d, ",\"chunks\":[");
            uint64_t n = 0, bytes = 0;
            int64_t lo = INT64_MAX, hi = INT64_MIN;
            for (; j < r->n && n < max_per_record; j++) {
                const lc_chunk_t *c = &r->c[j];
                if (seen[j] || !hot_deleted(c) || c->policy != pol || strcmp(c->tenant, tenant) != 0)
                    continue;
                seen[j] = true;
                bytes += c->ref.size;
                if (c->ref.min_ts < lo) lo = c->ref.min_ts;
                if (c->ref.max_ts > hi) hi = c->ref.max_ts;
                st_buf_printf(&d, "%s{\"id\":\"%016llx\",\"stream_id\":\"%016llx\",\"path\":", n++ ? "," : "",
                              (unsigned long long)c->ref.chunk_id, (unsigned long long)c->ref.stream_id);
                st_json_put_cstr(&d, c->ref.loc.path);
                st_buf_printf(
                    &d, ",\"offset\":%llu,\"length\":%llu,\"min_ts\":%lld,\"max_ts\":%lld,\"size\":%llu}",
                    (unsigned long long)c->ref.loc.offset, (unsigned long long)c->ref.loc.length,
                    (long long)c->ref.min_ts, (long long)c->ref.max_ts, (unsigned long long)c->ref.size);
            }
            st_buf_printf(&d,
                          "],\"count\":%llu,\"bytes\":%llu,\"min_ts\":%lld,\"max_ts\":%lld,\"as_of\":%lld}",
                          (unsigned long long)n, (unsigned long long)bytes, (long long)lo, (long long)hi,
                          (long long)r->o->now_ns);
            if (n == 0) {
                st_buf_free(&d);
                break;
            }
            rc = record("delete.retention", tenant, NULL, &d);
        }
    }
    free(seen);
    if (rc < 0)
        ST_LOG_ERROR(
            MOD,
            "msg=\"cannot record hot deletions in the audit trail; the deletion step fails and is retried\" "
            "err=\"%s\"",
            st_strerror(rc));
    return rc;
}

/* ---- erasure requests --------------------------------------------------------------------------------- */

void st_audit_erasure_request(const char *tenant, const char *id, st_str_t query, int64_t start, int64_t end,
                              int64_t now, const char *refused)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"id\":");
    st_json_put_cstr(&d, id ? id : "");
    st_buf_puts(&d, ",\"query\":");
    st_json_put_str(&d, query);
    st_buf_printf(&d, ",\"start\":%lld,\"end\":%lld,\"created\":%lld", (long long)start, (long long)end,
                  (long long)now);
    if (refused) put_kstr(&d, "reason", refused);
    st_buf_putc(&d, '}');
    record(refused ? "erasure.refused" : "erasure.received", tenant, NULL, &d);
}

void st_audit_erasure_cancel(const char *tenant, const char *id)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"id\":");
    st_json_put_cstr(&d, id);
    st_buf_putc(&d, '}');
    record("erasure.cancelled", tenant, NULL, &d);
}

void st_audit_erasure_outcome(const char *tenant, const char *id, const char *query, int64_t start,
                              int64_t end, const char *status, const char *message, uint64_t lines,
                              uint64_t chunks_deleted, uint64_t chunks_rewritten, int64_t now)
{
    bool processed = strcmp(status, "processed") == 0, refused = strcmp(status, "refused") == 0;
    if (st_audit_global() == NULL || (!processed && !refused)) return;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"id\":");
    st_json_put_cstr(&d, id);
    put_kstr(&d, "query", query);
    st_buf_printf(&d, ",\"start\":%lld,\"end\":%lld", (long long)start, (long long)end);
    put_kstr(&d, refused ? "reason" : "message", message);
    st_buf_printf(&d, ",\"lines\":%llu,\"chunks_deleted\":%llu,\"chunks_rewritten\":%llu,\"as_of\":%lld}",
                  (unsigned long long)lines, (unsigned long long)chunks_deleted,
                  (unsigned long long)chunks_rewritten, (long long)now);
    record(processed ? "erasure.processed" : "erasure.refused", tenant, NULL, &d);
}

int st_audit_erasure_chunk(struct lc_run *r, const char *tenant, const char *request,
                           const st_chunk_ref_t *old, const st_chunk_ref_t *nw, uint64_t lines_removed)
{
    if (st_audit_global() == NULL) return 0;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"request\":");
    st_json_put_cstr(&d, request);
    st_buf_puts(&d, ",\"old\":{");
    put_chunk_ref(&d, old);
    st_buf_puts(&d, "},\"new\":");
    if (nw) {
        char path[2400], sha[ST_AUDIT_HASH_HEX];
        snprintf(path, sizeof path, "%s/%s", r->chunks_dir, nw->loc.path);
        int rc = st_audit_sha256_file(path, nw->loc.offset, nw->loc.length, sha);
        if (rc < 0) {
            st_buf_free(&d);
            return rc;
        }
        st_buf_putc(&d, '{');
        put_chunk_ref(&d, nw);
        st_buf_printf(&d, ",\"sha256\":\"%s\"}", sha);
    } else {
        st_buf_puts(&d, "null");
    }
    st_buf_printf(&d, ",\"lines_removed\":%llu,\"bytes\":%llu,\"as_of\":%lld}",
                  (unsigned long long)lines_removed, (unsigned long long)old->size, (long long)r->o->now_ns);
    return record("erasure.chunk", tenant, NULL, &d);
}

int st_audit_erasure_object(struct lc_run *r, const char *tenant, const char *request,
                            const struct st_pack_state *old, const char *new_key, const char *new_version,
                            uint64_t new_size, uint64_t lines_removed, uint64_t chunks_rewritten,
                            uint64_t chunks_dropped)
{
    if (st_audit_global() == NULL) return 0;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"request\":");
    st_json_put_cstr(&d, request);
    st_buf_puts(&d, ",\"object\":{\"key\":");
    st_json_put_cstr(&d, old->key);
    put_kstr(&d, "version_id", old->version_id);
    put_kstr(&d, "class", st_audit_tier_name(old->tier));
    put_kstr(&d, "policy", old->policy);
    st_buf_printf(&d, ",\"min_ts\":%lld,\"max_ts\":%lld},\"new_key\":", (long long)old->min_ts,
                  (long long)old->max_ts);
    st_json_put_cstr(&d, new_key ? new_key : "");
    put_kstr(&d, "new_version_id", new_version);
    st_buf_printf(
        &d,
        ",\"new_size\":%llu,\"lines_removed\":%llu,\"chunks_rewritten\":%llu,\"chunks_dropped\":%llu,"
        "\"as_of\":%lld}",
        (unsigned long long)new_size, (unsigned long long)lines_removed, (unsigned long long)chunks_rewritten,
        (unsigned long long)chunks_dropped, (long long)r->o->now_ns);
    return record("erasure.object", tenant, NULL, &d);
}

/* ---- restores ----------------------------------------------------------------------------------------- */

void st_audit_restore_requested(const char *tenant, const st_lc_restore_t *q, const st_strvec_t *keys)
{
    if (st_audit_global() == NULL) return;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"id\":");
    st_json_put_cstr(&d, q->id);
    put_kstr(&d, "selector", q->selector);
    st_buf_printf(&d, ",\"start\":%lld,\"end\":%lld", (long long)q->start, (long long)q->end);
    put_kstr(&d, "tier", q->tier);
    st_buf_printf(&d, ",\"days\":%d,\"failed\":%d,\"objects\":[", q->days, q->failed);
    for (size_t i = 0; keys && i < keys->n; i++) {
        if (i) st_buf_putc(&d, ',');
        st_json_put_str(&d, st_strvec_at(keys, i));
    }
    st_buf_puts(&d, "]}");
    record("restore.request", tenant, NULL, &d);
}

void st_audit_restore_status(st_str_t key, st_str_t value, int done, int total)
{
    st_audit_t *a = st_audit_global();
    if (a == NULL || done != total || total == 0) return;
    /* restore/<tenant>/<id>; recorded once: the ids already recorded are kept in <dir>/restores.done */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    char k[400], path[1200];
    snprintf(k, sizeof k, "%.*s", (int)(key.n < 399 ? key.n : 399), key.p);
    const char *t = strncmp(k, "restore/", 8) == 0 ? k + 8 : k, *slash = strrchr(t, '/');
    if (slash == NULL) return;
    snprintf(path, sizeof path, "%s/restores.done", st_audit_dir(a));
    pthread_mutex_lock(&mu);
    bool seen = false;
    FILE *f = fopen(path, "r");
    char line[512];
    while (f && !seen && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        seen = strcmp(line, t) == 0;
    }
    if (f) fclose(f);
    if (!seen) {
        int64_t created = 0, now = st_now_ns();
        st_audit_json_i64(value, "created", &created);
        st_buf_t d = ST_BUF_INIT;
        st_buf_puts(&d, "{\"id\":");
        st_json_put_str(&d, st_cstr(slash + 1));
        st_buf_printf(&d, ",\"objects\":%d,\"requested\":%lld,\"completed\":%lld,\"seconds\":%.3f}", total,
                      (long long)created, (long long)now, created ? (double)(now - created) / 1e9 : 0.0);
        char tenant[160];
        snprintf(tenant, sizeof tenant, "%.*s", (int)(slash - t), t);
        if (record("restore.complete", tenant, NULL, &d) == 0 && (f = fopen(path, "a")) != NULL) {
            fprintf(f, "%s\n", t);
            fclose(f);
        }
    }
    pthread_mutex_unlock(&mu);
}

/* ---- queries ------------------------------------------------------------------------------------------ */

void st_audit_query(const char *tenant, const char *identity, const char *endpoint, const char *query,
                    int64_t start, int64_t end, const char *remote)
{
    st_audit_t *a = st_audit_global();
    if (a == NULL || !st_audit_cfg(a)->record_queries) return;
    st_buf_t d = ST_BUF_INIT;
    st_buf_puts(&d, "{\"endpoint\":");
    st_json_put_cstr(&d, endpoint ? endpoint : "");
    put_kstr(&d, "query", query);
    st_buf_printf(&d, ",\"start\":%lld,\"end\":%lld", (long long)start, (long long)end);
    put_kstr(&d, "identity", identity);
    put_kstr(&d, "remote", remote);
    if (st_buf_putc(&d, '}') == 0)
        st_audit_enqueue(a, "query", tenant, identity && identity[0] ? identity : "anonymous",
                         st_str(d.data, d.len));
    st_buf_free(&d);
}
