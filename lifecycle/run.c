/* run.c: one lifecycle run: lease, resume what a killed run left, plan from the index as of `now`,
 * then upload (hot -> S3, packed by tenant, policy, class and day), repack small S3 objects into large
 * ones on their way into Glacier / Deep Archive, transition (S3 class changes) and delete (end of
 * retention). Every step that writes S3 records an intent in the index first and verifies the object
 * (HEAD: size, class, version) before the index changes; sources are removed only afterwards, through
 * to-do records committed in the same transaction as the index change. A run killed at any point is
 * completed by the next run, and every chunk is in exactly one place. */
#include "lifecycle/lifecycle_int.h"

#include "audit/audit.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "store/store.h"

#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

void st_lc_progress(lc_run_t *r, const char *fmt, ...)
{
    if (r->o->progress == NULL) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(r->o->progress, fmt, ap);
    va_end(ap);
    fputc('\n', r->o->progress);
    fflush(r->o->progress);
}

void st_lc_crash_point(const char *point)
{
    static int hits;
    const char *env = getenv("STRATA_TEST_CRASH_AT");
    if (env == NULL || *env == '\0') return;
    size_t n = strcspn(env, ":");
    if (strlen(point) != n || memcmp(env, point, n) != 0) return;
    int want = env[n] == ':' ? atoi(env + n + 1) : 1;
    if (++hits < (want > 0 ? want : 1)) return;
    fprintf(stderr, "level=warn module=lifecycle msg=\"test crash point reached\" point=%s\n", point);
    fflush(NULL);
    raise(SIGKILL);
}

#define progress st_lc_progress

static bool has_prefix(st_str_t s, const char *p)
{
    size_t n = strlen(p);
    return s.n >= n && memcmp(s.p, p, n) == 0;
}

/* ---- loading the index ----------------------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = ((const lc_chunk_t *)a)->ref.chunk_id, y = ((const lc_chunk_t *)b)->ref.chunk_id;
    return x < y ? -1 : x > y;
}

static int cmp_path(const void *a, const void *b)
{
    const lc_chunk_t *x = *(lc_chunk_t *const *)a, *y = *(lc_chunk_t *const *)b;
    int c = strcmp(x->ref.loc.path, y->ref.loc.path);
    if (c) return c;
    return x->ref.loc.offset < y->ref.loc.offset ? -1 : x->ref.loc.offset > y->ref.loc.offset;
}

static int collect_cb(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    (void)day;
    lc_run_t *r = arg;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        lc_chunk_t *c = realloc(r->c, cap * sizeof *c);
        if (c == NULL) return -ENOMEM;
        r->c = c;
        r->cap = cap;
    }
    lc_chunk_t *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    c->ref = *ref;
    snprintf(c->tenant, sizeof c->tenant, "%s", tenant);
    return 0;
}

/* Loads every chunk once (a chunk spanning days appears once per day) with its policy, and the
 * by-object-key view of the chunks in S3. */
static int load_chunks(lc_run_t *r)
{
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(r->o->index, &rd));
    r->n = 0;
    int rc = st_index_scan_chunks(rd, collect_cb, r);
    if (rc == 0 && r->n > 1) {
        st_qsort(r->c, r->n, sizeof *r->c, cmp_id);
        size_t w = 1;
        for (size_t i = 1; i < r->n; i++)
            if (r->c[i].ref.chunk_id != r->c[w - 1].ref.chunk_id) r->c[w++] = r->c[i];
        r->n = w;
    }
    /* policy per stream (cached: consecutive chunks often share one) */
    uint64_t last_sid = 0;
    char last_tenant[151] = "";
    int last_pol = -1;
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        lc_chunk_t *c = &r->c[i];
        if (c->ref.stream_id == last_sid && strcmp(c->tenant, last_tenant) == 0) {
            c->policy = last_pol;
            continue;
        }
        st_str_t text;
        c->policy = -1;
        if (st_index_stream(rd, c->tenant, c->ref.stream_id, &text, NULL) == 0) {
            st_labels_t l;
            char err[256];
            if (st_labels_parse(text, &l, err) == 0) {
                c->policy = st_lc_policy_for(r->o->lc, c->tenant, &l);
                st_labels_free(&l);
            }
        }
        last_sid = c->ref.stream_id;
        snprintf(last_tenant, sizeof last_tenant, "%s", c->tenant);
        last_pol = c->policy;
    }
    st_index_read_end(rd);
    free(r->by_path);
    r->by_path = NULL;
    r->nby_path = 0;
    if (rc == 0 && r->n) {
        r->by_path = malloc(r->n * sizeof *r->by_path);
        if (r->by_path == NULL) return -ENOMEM;
        for (size_t i = 0; i < r->n; i++)
            if (r->c[i].ref.loc.kind == ST_LOC_S3) r->by_path[r->nby_path++] = &r->c[i];
        st_qsort(r->by_path, r->nby_path, sizeof *r->by_path, cmp_path);
    }
    return rc;
}

/* The chunks stored in object key: *first indexes r->by_path; returns the count. */
static size_t chunks_of(lc_run_t *r, const char *key, size_t *first)
{
    size_t lo = 0, hi = r->nby_path;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(r->by_path[mid]->ref.loc.path, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    while (lo + n < r->nby_path && strcmp(r->by_path[lo + n]->ref.loc.path, key) == 0) n++;
    *first = lo;
    return n;
}

/* ---- state records: intents, packs, to-dos -------------------------------------------------------- */

static int state_put1(lc_run_t *r, const char *key, st_str_t val)
{
    st_index_write_t *w;
    ST_TRY(st_index_write_begin(r->o->index, &w));
    int rc = st_index_state_put(w, st_cstr(key), val);
    if (rc == 0) return st_index_write_commit(w);
    st_index_write_abort(w);
    return rc;
}

static int state_del1(lc_run_t *r, st_str_t key)
{
    st_index_write_t *w;
    ST_TRY(st_index_write_begin(r->o->index, &w));
    int rc = st_index_state_del(w, key);
    if (rc == 0 || rc == ST_ENOTFOUND) return st_index_write_commit(w);
    st_index_write_abort(w);
    return rc;
}

/* To-do: remove the local file rel once no index entry references it. */
static int todo_unlink(st_index_write_t *w, const char *rel)
{
    char k[400];
    snprintf(k, sizeof k, "todo/unlink/%s", rel);
    return st_index_state_put(w, st_cstr(k), ST_STR(""));
}

/* To-do: delete one version of an S3 object replaced by another (value: the version id). */
static int todo_s3del(st_index_write_t *w, const char *key, const char *version)
{
    char k[640];
    snprintf(k, sizeof k, "todo/s3del/%s#%016llx", key,
             (unsigned long long)st_hash64(version, strlen(version)));
    return st_index_state_put(w, st_cstr(k), st_cstr(version));
}

static int pack_put(st_index_write_t *w, const st_pack_state_t *ps)
{
    st_buf_t sv = ST_BUF_INIT;
    int rc = st_pack_state_encode(ps, &sv);
    char pk[640];
    snprintf(pk, sizeof pk, "pack/%s", ps->key);
    if (rc == 0) rc = st_index_state_put(w, st_cstr(pk), st_str(sv.data ? sv.data : "", sv.len));
    st_buf_free(&sv);
    return rc;
}

static int pack_del(st_index_write_t *w, const char *key)
{
    char pk[640];
    snprintf(pk, sizeof pk, "pack/%s", key);
    int rc = st_index_state_del(w, st_cstr(pk));
    return rc == ST_ENOTFOUND ? 0 : rc;
}

static int intent_del(st_index_write_t *w, const char *key)
{
    char ik[640];
    snprintf(ik, sizeof ik, "intent/%s", key);
    int rc = st_index_state_del(w, st_cstr(ik));
    return rc == ST_ENOTFOUND ? 0 : rc;
}

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
    if (st_pack_state_decode(value, &p->v[p->n]) == 0) p->n++;
    return 0;
}

static int load_packs(lc_run_t *r, packs_t *p)
{
    p->n = 0;
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(r->o->index, &rd));
    int rc = st_index_state_scan(rd, ST_STR("pack/"), pack_cb, p);
    st_index_read_end(rd);
    return rc;
}

static int kv_collect_cb(void *arg, st_str_t key, st_str_t value)
{
    st_buf_t *b = arg;
    int rc = st_buf_put_lstr(b, key.p, key.n);
    return rc == 0 ? st_buf_put_lstr(b, value.p, value.n) : rc;
}

static int scan_state(lc_run_t *r, const char *prefix, st_buf_t *out)
{
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(r->o->index, &rd));
    int rc = st_index_state_scan(rd, st_cstr(prefix), kv_collect_cb, out);
    st_index_read_end(rd);
    return rc;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Carries out the to-do records: S3 versions replaced by others are deleted, local files nobody
 * references any more are removed. Needs r->c loaded from the current index. */
static int process_todos(lc_run_t *r)
{
    st_buf_t b = ST_BUF_INIT;
    int rc = scan_state(r, "todo/", &b);
    if (rc < 0 || b.len == 0) {
        st_buf_free(&b);
        return rc;
    }
    /* local paths still referenced */
    char **used = malloc((r->n ? r->n : 1) * sizeof *used);
    size_t nused = 0;
    if (used == NULL) rc = -ENOMEM;
    for (size_t i = 0; used && i < r->n; i++)
        if (r->c[i].ref.loc.kind == ST_LOC_LOCAL) used[nused++] = r->c[i].ref.loc.path;
    if (used) st_qsort(used, nused, sizeof *used, cmp_cstr);
    uint64_t files = 0, versions = 0;
    st_reader_t rd = st_reader(b.data, b.len);
    while (rc == 0 && st_reader_left(&rd) > 0) {
        st_str_t k = st_read_lstr(&rd), v = st_read_lstr(&rd);
        if (rd.err) break;
        bool done = false;
        if (has_prefix(k, "todo/unlink/")) {
            char rel[300];
            snprintf(rel, sizeof rel, "%.*s", (int)(k.n - 12), k.p + 12);
            const char *key = rel;
            if (bsearch(&key, used, nused, sizeof *used, cmp_cstr) != NULL) {
                done = true; /* referenced again (a chunk still in it): keep the file */
            } else {
                char path[1400];
                snprintf(path, sizeof path, "%s/%s", r->chunks_dir, rel);
                if (unlink(path) == 0 || errno == ENOENT) {
                    done = true;
                    files++;
                }
            }
        } else if (has_prefix(k, "todo/s3del/") && r->s3 == NULL) {
            done = false; /* kept until S3 is configured again */
        } else if (has_prefix(k, "todo/s3del/")) {
            char key[600], ver[160];
            size_t kn = k.n - 11;
            while (kn > 0 && k.p[11 + kn - 1] != '#') kn--;
            snprintf(key, sizeof key, "%.*s", (int)(kn ? kn - 1 : 0), k.p + 11);
            snprintf(ver, sizeof ver, "%.*s", (int)v.n, v.p);
            st_s3_error_t err;
            memset(&err, 0, sizeof err);
            int drc = st_s3_delete_object(r->s3, r->o->lc->s3.bucket, key, ver[0] ? ver : NULL, true, &err);
            r->rep->requests++;
            if (drc == 0 || drc == ST_ENOTFOUND) {
                done = true;
                versions++;
            } else {
                ST_LOG_WARN("lifecycle",
                            "msg=\"cannot delete a replaced object version; retried next run\" key=%s "
                            "version=%s err=\"%s\" s3_code=%s",
                            key, ver, st_s3_strerror(drc), err.code);
                r->rep->failures++;
                st_counter_inc(r->m_fail);
            }
        } else {
            done = true; /* unknown kind: written by a newer version? drop it */
        }
        if (done) {
            st_lc_crash_point("todo-before-forget");
            rc = state_del1(r, k);
        }
    }
    free(used);
    st_buf_free(&b);
    if (files)
        progress(r, "removed %llu local chunk files now stored elsewhere or deleted",
                 (unsigned long long)files);
    if (versions) progress(r, "removed %llu replaced object versions", (unsigned long long)versions);
    return rc;
}

/* Intents left by a killed run: the object it was writing may be partial, or complete but not
 * indexed. Nothing in the index points to it, so it is removed; the plan writes it again. */
static int resume_intents(lc_run_t *r)
{
    if (r->s3 == NULL) return 0; /* no S3 configured: nothing was ever written there */
    st_buf_t b = ST_BUF_INIT;
    int rc = scan_state(r, "intent/", &b);
    st_reader_t rd = st_reader(b.data, b.len);
    while (rc == 0 && st_reader_left(&rd) > 0) {
        st_str_t k = st_read_lstr(&rd);
        st_read_lstr(&rd);
        if (rd.err) break;
        char key[600], pk[640];
        snprintf(key, sizeof key, "%.*s", (int)(k.n - 7), k.p + 7);
        snprintf(pk, sizeof pk, "pack/%s", key);
        st_index_read_t *r2;
        bool indexed = false;
        if (st_index_read_begin(r->o->index, &r2) == 0) {
            st_str_t v;
            indexed = st_index_state_get(r2, st_cstr(pk), &v) == 0;
            st_index_read_end(r2);
        }
        if (!indexed) {
            /* every version of the key: a versioned bucket keeps one per attempt */
            for (int i = 0; i < 8; i++) {
                st_s3_object_info_t info;
                int hrc = st_s3_head_object(r->s3, r->o->lc->s3.bucket, key, NULL, &info, NULL);
                r->rep->requests++;
                if (hrc == ST_ENOTFOUND) break;
                if (hrc < 0) {
                    rc = hrc;
                    break;
                }
                int drc = st_s3_delete_object(r->s3, r->o->lc->s3.bucket, key,
                                              info.version_id[0] ? info.version_id : NULL, true, NULL);
                r->rep->requests++;
                if (drc < 0 && drc != ST_ENOTFOUND) {
                    rc = drc;
                    break;
                }
                if (!info.version_id[0]) break;
            }
            if (rc < 0) break; /* try again next run; keep the intent */
            progress(r, "removed %s left unindexed by an interrupted run", key);
        }
        rc = state_del1(r, k);
    }
    st_buf_free(&b);
    return rc;
}

/* ---- object keys and pack files ----------------------------------------------------------------- */

/* "<prefix><tenant>/<policy>/<yyyy-mm-dd>/<first chunk id>-<chunks>-<class>.pack" (a long tenant
 * becomes "t-<hash>" so the key fits the index's 255-byte location). */
static void object_key(lc_run_t *r, const char *tenant, const char *policy, int64_t max_ts, uint64_t first_id,
                       size_t n, st_tier_t tier, char *out, size_t cap)
{
    int64_t y;
    unsigned mo, d;
    st_civil_from_days(st_day_of(max_ts), &y, &mo, &d);
    int len = snprintf(out, cap, "%s%s/%s/%04lld-%02u-%02u/%016llx-%zu-%s.pack", r->o->lc->s3.prefix, tenant,
                       policy, (long long)y, mo, d, (unsigned long long)first_id, n, st_tier_name(tier));
    if (len >= 255 || (size_t)len >= cap)
        snprintf(out, cap, "%st-%016llx/%s/%04lld-%02u-%02u/%016llx-%zu-%s.pack", r->o->lc->s3.prefix,
                 (unsigned long long)st_hash64(tenant, strlen(tenant)), policy, (long long)y, mo, d,
                 (unsigned long long)first_id, n, st_tier_name(tier));
}

/* Copies len bytes at src_off of src to dst_off of dst, checking their CRC-32. */
static int copy_checked(int src, uint64_t src_off, int dst, uint64_t dst_off, uint64_t len, uint32_t crc)
{
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) return -ENOMEM;
    int rc = st_pread_full(src, buf, len, src_off);
    if (rc == 0 && st_crc32(0, buf, len) != crc) rc = ST_ECORRUPT;
    if (rc == 0) rc = st_pwrite_full(dst, buf, len, dst_off);
    free(buf);
    return rc;
}

/* Object Lock of an object written for policy p into tier (retain until the deletion date).
 * Intermediate tiers use GOVERNANCE so the copy a later move leaves behind can be removed. */
static void lock_for(const st_lc_policy_t *p, st_tier_t tier, int64_t delete_at, const char **mode,
                     time_t *until)
{
    *mode = NULL;
    *until = 0;
    if (p->object_lock == ST_LOCK_NONE || delete_at == INT64_MAX) return;
    bool last = p->ntiers > 0 && p->tiers[p->ntiers - 1].tier == tier;
    *mode = p->object_lock == ST_LOCK_COMPLIANCE && last ? "COMPLIANCE" : "GOVERNANCE";
    *until = (time_t)(delete_at / ST_NS_PER_SEC);
}

/* Whether the x-amz-checksum-crc32 S3 reports (base64 of the big-endian CRC; absent, or
 * "<b64>-<parts>" for multipart uploads, which cannot be compared) agrees with crc. */
static bool crc_matches(const char *b64, uint32_t crc)
{
    if (b64[0] == '\0' || strchr(b64, '-') != NULL) return true;
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    char want[9] = {tab[be[0] >> 2], tab[(be[0] & 3) << 4 | be[1] >> 4], tab[(be[1] & 15) << 2 | be[2] >> 6],
                    tab[be[2] & 63], tab[be[3] >> 2], tab[(be[3] & 3) << 4], '=', '=', '\0'};
    return strcmp(b64, want) == 0;
}

/* Puts the finished pack file (size bytes) and checks what S3 holds: size, class and CRC-32. */
static int put_verified(lc_run_t *r, const char *key, int fd, uint64_t size, st_tier_t tier,
                        const char *lock_mode, time_t lock_until, st_s3_put_result_t *res, st_s3_error_t *err)
{
    st_s3_put_opts_t po;
    memset(&po, 0, sizeof po);
    po.storage_class = tier == ST_TIER_STANDARD ? NULL : st_tier_name(tier);
    po.lock_mode = lock_mode;
    po.lock_retain_until = lock_until;
    memset(res, 0, sizeof *res);
    int rc = st_s3_put_object_fd(r->s3, r->o->lc->s3.bucket, key, fd, 0, size, &po, res, err);
    r->rep->requests++;
    st_lc_crash_point("after-put");
    if (rc == 0) {
        st_s3_object_info_t info;
        rc = st_s3_head_object(r->s3, r->o->lc->s3.bucket, key, res->version_id[0] ? res->version_id : NULL,
                               &info, err);
        r->rep->requests++;
        if (rc == 0 && (info.size != size || strcmp(info.storage_class, st_tier_name(tier)) != 0))
            rc = ST_ECORRUPT;
        if (rc == 0 && !crc_matches(info.checksum_crc32, res->crc32)) rc = ST_S3_ECHECKSUM;
    }
    return rc;
}

static int write_intent(lc_run_t *r, const char *op, const char *key, st_tier_t tier, size_t n)
{
    st_buf_t b = ST_BUF_INIT;
    st_buf_printf(&b, "{\"op\":\"%s\",\"tier\":\"%s\",\"chunks\":%zu,\"at\":%lld}", op, st_tier_name(tier), n,
                  (long long)r->o->now_ns);
    char ik[640];
    snprintf(ik, sizeof ik, "intent/%s", key);
    int rc = state_put1(r, ik, st_str(b.data, b.len));
    st_buf_free(&b);
    return rc;
}

/* ---- upload: hot chunks of one group into one pack object ------------------------------------------- */

static int upload_group(lc_run_t *r, lc_chunk_t **g, size_t n, st_tier_t tier)
{
    const st_lc_policy_t *pol = &r->o->lc->policies[g[0]->policy];
    char key[512];
    uint64_t first = g[0]->ref.chunk_id;
    for (size_t i = 1; i < n; i++)
        if (g[i]->ref.chunk_id < first) first = g[i]->ref.chunk_id;
    object_key(r, g[0]->tenant, pol->name, g[0]->ref.max_ts, first, n, tier, key, sizeof key);
    ST_TRY(write_intent(r, "upload", key, tier, n));
    st_lc_crash_point("upload-after-intent");
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/upload-%016llx.pack", r->work_dir, (unsigned long long)first);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    st_pack_entry_t *pe = calloc(n, sizeof *pe);
    uint64_t off = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN, del = 0;
    int rc = pe ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const st_chunk_ref_t *ref = &g[i]->ref;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", r->chunks_dir, ref->loc.path);
        int src = open(path, O_RDONLY | O_CLOEXEC);
        rc = src < 0 ? -errno : copy_checked(src, ref->loc.offset, fd, off, ref->loc.length, ref->crc32);
        if (src >= 0) close(src);
        if (rc == ST_ECORRUPT)
            ST_LOG_ERROR("lifecycle", "msg=\"chunk fails its checksum; not moved\" chunk=%016llx path=%s",
                         (unsigned long long)ref->chunk_id, ref->loc.path);
        pe[i] = (st_pack_entry_t){ref->chunk_id, off,         ref->loc.length, ref->crc32,
                                  ref->min_ts,   ref->max_ts, ref->stream_id};
        off += ref->loc.length;
        if (ref->min_ts < lo) lo = ref->min_ts;
        if (ref->max_ts > hi) hi = ref->max_ts;
        if (g[i]->delete_at > del) del = g[i]->delete_at;
    }
    st_buf_t footer = ST_BUF_INIT;
    if (rc == 0) rc = st_pack_footer_encode(&footer, g[0]->tenant, pol->name, pe, n, off);
    if (rc == 0) rc = st_pwrite_full(fd, footer.data, footer.len, off);
    uint64_t size = off + footer.len;
    st_buf_free(&footer);
    const char *lock_mode;
    time_t lock_until;
    lock_for(pol, tier, del, &lock_mode, &lock_until);
    st_s3_put_result_t res;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    if (rc == 0) rc = put_verified(r, key, fd, size, tier, lock_mode, lock_until, &res, &err);
    close(fd);
    unlink(tmp);
    if (rc < 0) {
        ST_LOG_ERROR("lifecycle", "msg=\"upload failed\" key=%s err=\"%s\" s3_code=%s", key,
                     st_s3_strerror(rc), err.code);
        free(pe);
        return rc;
    }
    /* one transaction: chunk locations, the pack record, the local files to remove, the intent gone */
    st_pack_state_t ps;
    memset(&ps, 0, sizeof ps);
    snprintf(ps.key, sizeof ps.key, "%s", key);
    snprintf(ps.tenant, sizeof ps.tenant, "%s", g[0]->tenant);
    snprintf(ps.policy, sizeof ps.policy, "%s", pol->name);
    ps.tier = tier;
    snprintf(ps.version_id, sizeof ps.version_id, "%s", res.version_id);
    ps.size = size;
    ps.crc32 = res.crc32;
    ps.min_ts = lo;
    ps.max_ts = hi;
    ps.chunks = n;
    ps.delete_at = del;
    snprintf(ps.lock_mode, sizeof ps.lock_mode, "%s", lock_mode ? lock_mode : "");
    ps.retain_until = lock_until;
    ps.created = r->o->now_ns;
    st_index_write_t *w;
    rc = st_index_write_begin(r->o->index, &w);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        st_chunk_ref_t ref = g[i]->ref;
        rc = todo_unlink(w, ref.loc.path);
        ref.loc.kind = ST_LOC_S3;
        snprintf(ref.loc.path, sizeof ref.loc.path, "%s", key);
        ref.loc.offset = pe[i].offset;
        ref.loc.length = pe[i].length;
        ref.storage_class = (uint8_t)tier;
        if (rc == 0) rc = st_index_update_chunk(w, g[i]->tenant, &ref);
    }
    if (rc == 0) rc = pack_put(w, &ps);
    if (rc == 0) rc = intent_del(w, key);
    if (rc == 0)
        rc = st_index_write_commit(w);
    else
        st_index_write_abort(w);
    free(pe);
    if (rc < 0) return rc;
    st_lc_crash_point("upload-after-commit");
    st_audit_lc_upload(r, &ps, g, n);
    for (size_t i = 0; i < n; i++) g[i]->done = true;
    r->rep->packs_written++;
    st_counter_add(r->m_bytes[tier], size);
    st_counter_inc(r->m_objects[tier]);
    progress(r, "uploaded %s (%zu chunks, %llu bytes, %s)", key, n, (unsigned long long)size,
             st_tier_name(tier));
    return 0;
}

/* ---- S3 objects --------------------------------------------------------------------------------------- */

static int policy_by_name(const st_lc_config_t *lc, const char *name)
{
    for (int i = 0; i < lc->npolicies; i++)
        if (strcmp(lc->policies[i].name, name) == 0) return i;
    return -1;
}

/* Deletes a pack at the end of its retention: every version we know of, then the index entries. */
static int delete_pack(lc_run_t *r, const st_pack_state_t *ps, const st_lc_policy_t *p)
{
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc = st_s3_delete_object(r->s3, r->o->lc->s3.bucket, ps->key,
                                 ps->version_id[0] ? ps->version_id : NULL, false, &err);
    r->rep->requests++;
    if (rc == ST_ENOTFOUND) rc = 0;
    if (rc == 0 && ps->version_id[0]) {
        /* a version left by a move interrupted before its index update (see transition) */
        st_s3_object_info_t info;
        for (int i = 0; i < 4; i++) {
            if (st_s3_head_object(r->s3, r->o->lc->s3.bucket, ps->key, NULL, &info, NULL) != 0) break;
            r->rep->requests++;
            if (!info.version_id[0] || strcmp(info.version_id, ps->version_id) == 0) break;
            if (st_s3_delete_object(r->s3, r->o->lc->s3.bucket, ps->key, info.version_id, false, NULL) != 0)
                break;
            r->rep->requests++;
        }
    }
    st_lc_crash_point("delete-after-s3");
    if (rc < 0) {
        ST_LOG_ERROR("lifecycle", "msg=\"delete at end of retention failed\" key=%s err=\"%s\" s3_code=%s%s",
                     ps->key, st_s3_strerror(rc), err.code,
                     rc == ST_S3_EACCESS && ps->lock_mode[0]
                         ? " reason=\"Object Lock retention not yet expired\""
                         : "");
        return rc;
    }
    ST_TRY(st_audit_lc_delete_object(r, ps, p)); /* the evidence before the index forgets it */
    st_index_write_t *w;
    ST_TRY(st_index_write_begin(r->o->index, &w));
    size_t first, nc = chunks_of(r, ps->key, &first);
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        lc_chunk_t *c = r->by_path[first + i];
        rc = st_index_delete_chunk(w, c->tenant, &c->ref);
        c->done = true;
    }
    if (rc == 0) rc = pack_del(w, ps->key);
    if (rc == 0)
        rc = st_index_write_commit(w);
    else
        st_index_write_abort(w);
    if (rc == 0) {
        r->rep->objects_deleted++;
        progress(r, "deleted %s (%zu chunks, end of retention of policy %s)", ps->key, nc, p->name);
    }
    return rc;
}

/* Moves one pack to a colder class in place (CopyObject onto the same key: a new version). An
 * archived source needs a restore first: requested here, the copy happens on a later run. A copy
 * made by a run killed before its index update is found (newest version already in the target
 * class) and adopted instead of copied again. */
static int transition_pack(lc_run_t *r, st_pack_state_t *ps, const st_lc_policy_t *p, st_tier_t target)
{
    const char *bucket = r->o->lc->s3.bucket;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    st_s3_object_info_t cur;
    int rc = st_s3_head_object(r->s3, bucket, ps->key, NULL, &cur, &err);
    r->rep->requests++;
    if (rc < 0) return rc;
    st_s3_put_result_t res;
    memset(&res, 0, sizeof res);
    const char *lock_mode;
    time_t lock_until;
    lock_for(p, target, ps->delete_at, &lock_mode, &lock_until);
    bool adopt = strcmp(cur.storage_class, st_tier_name(target)) == 0 && cur.size == ps->size &&
                 strcmp(cur.version_id, ps->version_id) != 0;
    if (adopt) {
        snprintf(res.version_id, sizeof res.version_id, "%s", cur.version_id);
    } else {
        if (st_tier_archived(ps->tier)) {
            st_s3_object_info_t info;
            rc = st_s3_head_object(r->s3, bucket, ps->key, ps->version_id[0] ? ps->version_id : NULL, &info,
                                   &err);
            r->rep->requests++;
            if (rc < 0) return rc;
            if (!info.restore.present || info.restore.ongoing) {
                if (!info.restore.present) {
                    bool started;
                    rc = st_s3_restore_object(r->s3, bucket, ps->key,
                                              ps->version_id[0] ? ps->version_id : NULL, 1, ST_S3_TIER_BULK,
                                              &started, &err);
                    r->rep->requests++;
                    if (rc < 0 && rc != ST_S3_ERESTORING) return rc;
                    progress(r, "restore (bulk) requested to move %s to %s on a later run", ps->key,
                             st_tier_name(target));
                }
                return 0;
            }
        }
        st_s3_copy_opts_t co;
        memset(&co, 0, sizeof co);
        co.storage_class = st_tier_name(target);
        co.src_version_id = ps->version_id[0] ? ps->version_id : NULL;
        co.lock_mode = lock_mode;
        co.lock_retain_until = lock_until;
        rc = st_s3_copy_object(r->s3, bucket, ps->key, bucket, ps->key, &co, &res, &err);
        r->rep->requests++;
        st_lc_crash_point("transition-after-copy");
        if (rc == 0) {
            st_s3_object_info_t info;
            rc = st_s3_head_object(r->s3, bucket, ps->key, res.version_id[0] ? res.version_id : NULL, &info,
                                   &err);
            r->rep->requests++;
            if (rc == 0 && (strcmp(info.storage_class, st_tier_name(target)) != 0 || info.size != ps->size))
                rc = ST_ECORRUPT;
            if (rc == 0 && ps->crc32 && !crc_matches(info.checksum_crc32, ps->crc32)) rc = ST_S3_ECHECKSUM;
        }
        if (rc < 0) {
            ST_LOG_ERROR("lifecycle", "msg=\"transition failed\" key=%s to=%s err=\"%s\" s3_code=%s", ps->key,
                         st_tier_name(target), st_s3_strerror(rc), err.code);
            return rc;
        }
    }
    st_tier_t from = ps->tier;
    char old_version[128];
    snprintf(old_version, sizeof old_version, "%s", ps->version_id);
    ps->tier = target;
    snprintf(ps->version_id, sizeof ps->version_id, "%s", res.version_id);
    snprintf(ps->lock_mode, sizeof ps->lock_mode, "%s", lock_mode ? lock_mode : "");
    ps->retain_until = lock_until;
    st_index_write_t *w;
    ST_TRY(st_index_write_begin(r->o->index, &w));
    size_t first, nc = chunks_of(r, ps->key, &first);
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        lc_chunk_t *c = r->by_path[first + i];
        c->ref.storage_class = (uint8_t)target;
        rc = st_index_update_chunk(w, c->tenant, &c->ref);
    }
    if (rc == 0) rc = pack_put(w, ps);
    /* the previous version is no longer needed (its lock, if any, is GOVERNANCE) */
    if (rc == 0 && old_version[0] && res.version_id[0] && strcmp(old_version, res.version_id) != 0)
        rc = todo_s3del(w, ps->key, old_version);
    if (rc == 0)
        rc = st_index_write_commit(w);
    else
        st_index_write_abort(w);
    if (rc < 0) return rc;
    st_lc_crash_point("transition-after-commit");
    st_audit_lc_transition(r, ps, from, old_version);
    st_counter_add(r->m_bytes[target], ps->size);
    st_counter_inc(r->m_objects[target]);
    progress(r, "moved %s from %s to %s", ps->key, st_tier_name(from), st_tier_name(target));
    return 0;
}

/* Repacks several S3 objects of one tenant, policy and deletion day into one object of a colder
 * (archive) class: each source is read whole, its chunks copied out with their checksums verified,
 * the new pack written and verified, the index switched in one transaction, the sources deleted. */
static int merge_packs(lc_run_t *r, st_pack_state_t **src, size_t ns, const st_lc_policy_t *p,
                       st_tier_t target)
{
    const char *bucket = r->o->lc->s3.bucket;
    size_t total = 0;
    uint64_t first_id = UINT64_MAX;
    int64_t lo = INT64_MAX, hi = INT64_MIN, del = 0;
    for (size_t i = 0; i < ns; i++) {
        size_t f, nc = chunks_of(r, src[i]->key, &f);
        total += nc;
        for (size_t k = 0; k < nc; k++)
            if (r->by_path[f + k]->ref.chunk_id < first_id) first_id = r->by_path[f + k]->ref.chunk_id;
        if (src[i]->min_ts < lo) lo = src[i]->min_ts;
        if (src[i]->max_ts > hi) hi = src[i]->max_ts;
        if (src[i]->delete_at > del) del = src[i]->delete_at;
    }
    if (total == 0) return 0;
    char key[512];
    object_key(r, src[0]->tenant, p->name, hi, first_id, total, target, key, sizeof key);
    ST_TRY(write_intent(r, "repack", key, target, total));
    st_lc_crash_point("merge-after-intent");
    char tmp[1200], stmp[1200];
    snprintf(tmp, sizeof tmp, "%s/merge-%016llx.pack", r->work_dir, (unsigned long long)first_id);
    snprintf(stmp, sizeof stmp, "%s/merge-src.tmp", r->work_dir);
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    st_pack_entry_t *pe = calloc(total, sizeof *pe);
    lc_chunk_t **moved = calloc(total, sizeof *moved);
    int rc = pe && moved ? 0 : -ENOMEM;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    uint64_t off = 0;
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < ns; i++) {
        int sfd = open(stmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (sfd < 0) {
            rc = -errno;
            break;
        }
        st_s3_get_opts_t go = {.version_id = src[i]->version_id[0] ? src[i]->version_id : NULL};
        uint64_t got = 0;
        rc = st_s3_get_object_fd(r->s3, bucket, src[i]->key, &go, sfd, 0, &got, NULL, &err);
        r->rep->requests++;
        if (rc == 0 && got != src[i]->size) rc = ST_ECORRUPT;
        size_t f, nc = chunks_of(r, src[i]->key, &f);
        for (size_t j = 0; rc == 0 && j < nc; j++) {
            lc_chunk_t *c = r->by_path[f + j];
            rc = copy_checked(sfd, c->ref.loc.offset, fd, off, c->ref.loc.length, c->ref.crc32);
            if (rc == ST_ECORRUPT)
                ST_LOG_ERROR("lifecycle",
                             "msg=\"chunk in S3 fails its checksum; not moved\" chunk=%016llx key=%s",
                             (unsigned long long)c->ref.chunk_id, src[i]->key);
            pe[k] = (st_pack_entry_t){c->ref.chunk_id, off,           c->ref.loc.length, c->ref.crc32,
                                      c->ref.min_ts,   c->ref.max_ts, c->ref.stream_id};
            moved[k++] = c;
            off += c->ref.loc.length;
        }
        close(sfd);
    }
    unlink(stmp);
    st_buf_t footer = ST_BUF_INIT;
    if (rc == 0) rc = st_pack_footer_encode(&footer, src[0]->tenant, p->name, pe, k, off);
    if (rc == 0) rc = st_pwrite_full(fd, footer.data, footer.len, off);
    uint64_t size = off + footer.len;
    st_buf_free(&footer);
    const char *lock_mode;
    time_t lock_until;
    lock_for(p, target, del, &lock_mode, &lock_until);
    st_s3_put_result_t res;
    if (rc == 0) rc = put_verified(r, key, fd, size, target, lock_mode, lock_until, &res, &err);
    close(fd);
    unlink(tmp);
    if (rc < 0) {
        ST_LOG_ERROR("lifecycle", "msg=\"repack failed\" key=%s err=\"%s\" s3_code=%s", key,
                     st_s3_strerror(rc), err.code);
        free(pe);
        free(moved);
        return rc;
    }
    st_pack_state_t ps;
    memset(&ps, 0, sizeof ps);
    snprintf(ps.key, sizeof ps.key, "%s", key);
    snprintf(ps.tenant, sizeof ps.tenant, "%s", src[0]->tenant);
    snprintf(ps.policy, sizeof ps.policy, "%s", p->name);
    ps.tier = target;
    snprintf(ps.version_id, sizeof ps.version_id, "%s", res.version_id);
    ps.size = size;
    ps.crc32 = res.crc32;
    ps.min_ts = lo;
    ps.max_ts = hi;
    ps.chunks = k;
    ps.delete_at = del;
    snprintf(ps.lock_mode, sizeof ps.lock_mode, "%s", lock_mode ? lock_mode : "");
    ps.retain_until = lock_until;
    ps.created = r->o->now_ns;
    st_index_write_t *w;
    rc = st_index_write_begin(r->o->index, &w);
    for (size_t i = 0; rc == 0 && i < k; i++) {
        st_chunk_ref_t ref = moved[i]->ref;
        snprintf(ref.loc.path, sizeof ref.loc.path, "%s", key);
        ref.loc.offset = pe[i].offset;
        ref.loc.length = pe[i].length;
        ref.storage_class = (uint8_t)target;
        rc = st_index_update_chunk(w, moved[i]->tenant, &ref);
    }
    for (size_t i = 0; rc == 0 && i < ns; i++) {
        rc = pack_del(w, src[i]->key);
        if (rc == 0) rc = todo_s3del(w, src[i]->key, src[i]->version_id);
    }
    if (rc == 0) rc = pack_put(w, &ps);
    if (rc == 0) rc = intent_del(w, key);
    if (rc == 0)
        rc = st_index_write_commit(w);
    else
        st_index_write_abort(w);
    free(pe);
    free(moved);
    if (rc < 0) return rc;
    st_lc_crash_point("merge-after-commit");
    st_audit_lc_repack(r, &ps, src, ns);
    r->rep->packs_written++;
    st_counter_add(r->m_bytes[target], size);
    st_counter_inc(r->m_objects[target]);
    progress(r, "packed %zu objects (%zu chunks, %llu bytes) into %s (%s)", ns, k, (unsigned long long)size,
             key, st_tier_name(target));
    return 0;
}

/* ---- planning ------------------------------------------------------------------------------------- */

/* Where data whose newest entry is at max_ts belongs now. Moves into an archive class wait until the
 * whole UTC day is due, so one day's chunks go into the archive together, in large packs. */
static st_tier_t plan_target(const st_lc_policy_t *p, int64_t max_ts, int64_t now)
{
    st_tier_t t = st_lc_target(p, now - max_ts);
    if (t != ST_TIER_COUNT && st_tier_archived(t)) {
        st_tier_t whole_day = st_lc_target(p, now - (st_day_of(max_ts) + 1) * ST_NS_PER_DAY);
        if (whole_day < t) t = whole_day;
    }
    return t;
}

/* Upload groups share tenant, policy, target class and UTC day of the newest entry. */
static int cmp_group(const void *a, const void *b)
{
    const lc_chunk_t *x = *(lc_chunk_t *const *)a, *y = *(lc_chunk_t *const *)b;
    int c = strcmp(x->tenant, y->tenant);
    if (c) return c;
    if (x->policy != y->policy) return x->policy < y->policy ? -1 : 1;
    if (x->target != y->target) return x->target < y->target ? -1 : 1;
    int64_t dx = st_day_of(x->ref.max_ts), dy = st_day_of(y->ref.max_ts);
    if (dx != dy) return dx < dy ? -1 : 1;
    return x->ref.chunk_id < y->ref.chunk_id ? -1 : x->ref.chunk_id > y->ref.chunk_id;
}

static bool same_group(const lc_chunk_t *a, const lc_chunk_t *b)
{
    return strcmp(a->tenant, b->tenant) == 0 && a->policy == b->policy && a->target == b->target &&
           st_day_of(a->ref.max_ts) == st_day_of(b->ref.max_ts);
}

static int cmp_hot_age(const void *a, const void *b)
{
    const lc_chunk_t *x = *(lc_chunk_t *const *)a, *y = *(lc_chunk_t *const *)b;
    return x->ref.max_ts < y->ref.max_ts ? -1 : x->ref.max_ts > y->ref.max_ts;
}

/* A pack with its plan. */
typedef struct {
    st_pack_state_t *ps;
    int policy;
    st_tier_t target; /* ST_TIER_COUNT: delete */
    enum { P_KEEP, P_DELETE, P_COPY, P_MERGE } op;
} pplan_t;

static int cmp_merge(const void *a, const void *b)
{
    const pplan_t *x = a, *y = b;
    if (x->op != y->op) return x->op < y->op ? -1 : 1;
    int c = strcmp(x->ps->tenant, y->ps->tenant);
    if (c) return c;
    if (x->policy != y->policy) return x->policy < y->policy ? -1 : 1;
    if (x->target != y->target) return x->target < y->target ? -1 : 1;
    int64_t dx = st_day_of(x->ps->max_ts), dy = st_day_of(y->ps->max_ts);
    if (dx != dy) return dx < dy ? -1 : 1;
    return strcmp(x->ps->key, y->ps->key);
}

static bool same_merge(const pplan_t *a, const pplan_t *b)
{
    return a->op == P_MERGE && b->op == P_MERGE && strcmp(a->ps->tenant, b->ps->tenant) == 0 &&
           a->policy == b->policy && a->target == b->target &&
           st_day_of(a->ps->max_ts) == st_day_of(b->ps->max_ts);
}

/* End of the run of merge candidates starting at i that go into one object (<= pack_target_size). */
static size_t merge_batch_end(const pplan_t *pp, size_t n, size_t i, uint64_t target_size)
{
    size_t j = i + 1;
    uint64_t bytes = pp[i].ps->size;
    while (j < n && same_merge(&pp[i], &pp[j]) && bytes + pp[j].ps->size <= target_size)
        bytes += pp[j++].ps->size;
    return j;
}

static double gb(uint64_t b)
{
    return (double)b / (1024.0 * 1024.0 * 1024.0);
}

static void fail(lc_run_t *r)
{
    r->rep->failures++;
    st_counter_inc(r->m_fail);
}

int st_lifecycle_run(const st_lc_run_opts_t *o, st_lc_report_t *rep)
{
    memset(rep, 0, sizeof *rep);
    lc_run_t r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.rep = rep;
    snprintf(r.chunks_dir, sizeof r.chunks_dir, "%s", o->cfg->storage_config.filesystem.directory);
    snprintf(r.work_dir, sizeof r.work_dir, "%s/lifecycle", o->cfg->common.path_prefix);
    r.m_fail = st_counter("strata_lifecycle_failures_total",
                          "Lifecycle steps that failed (retried next run).", NULL);
    r.m_runs = st_counter("strata_lifecycle_runs_total", "Lifecycle runs completed.", NULL);
    r.m_last_ok = st_gauge("strata_lifecycle_last_success_timestamp_seconds",
                           "Time of the last lifecycle run without failures.", NULL);
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        char l[64];
        snprintf(l, sizeof l, "tier=\"%s\"", st_tier_name(t));
        r.m_bytes[t] = st_counter("strata_lifecycle_bytes_moved_total",
                                  "Bytes written into a tier by the lifecycle.", l);
        r.m_objects[t] = st_counter("strata_lifecycle_objects_written_total",
                                    "Objects written into a tier by the lifecycle.", l);
    }
    /* the lease: one run at a time on this data directory (serve's worker, cron, CronJob) */
    if (st_mkdirs(r.work_dir, 0755) < 0) return -EIO;
    char lockp[1200];
    snprintf(lockp, sizeof lockp, "%s/lease", r.work_dir);
    int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0) return -errno;
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        close(lock);
        return ST_EBADSTATE;
    }
    int rc = 0;
    packs_t packs = {NULL, 0, 0};
    pplan_t *pp = NULL;
    lc_chunk_t **up = NULL;
    if (!o->dry_run) {
        /* finish what a killed run left behind before planning anew */
        if (o->lc->s3.bucket[0] && (rc = st_lc_s3_client(o->lc, &r.s3)) < 0) goto out;
        if ((rc = resume_intents(&r)) < 0) goto out;
        if ((rc = load_chunks(&r)) < 0) goto out;
        if ((rc = process_todos(&r)) < 0) goto out;
    }
    /* delete requests that are due (erase.c) */
    if ((rc = load_chunks(&r)) < 0 || (rc = st_lc_erase_run(&r)) < 0) goto out;
    if (o->erase_only) {
        if (!o->dry_run && (rc = load_chunks(&r)) == 0) rc = process_todos(&r);
        goto out;
    }
    if ((rc = load_chunks(&r)) < 0 || (rc = load_packs(&r, &packs)) < 0) goto out;
    /* CloudWatch Logs (cloudwatch.c): ship while the chunks are still local, import, retention */
    if ((rc = st_lc_cloudwatch_run(&r)) < 0) goto out;

    /* ---- plan: chunks in the hot tier */
    uint64_t hot_bytes = 0;
    for (size_t i = 0; i < r.n; i++) {
        lc_chunk_t *c = &r.c[i];
        rep->chunks++;
        rep->chunk_bytes += c->ref.size;
        if (c->ref.loc.kind == ST_LOC_LOCAL) hot_bytes += c->ref.size;
        c->target = (st_tier_t)c->ref.storage_class;
        c->delete_at = INT64_MAX;
        if (c->policy < 0) continue;
        const st_lc_policy_t *p = &o->lc->policies[c->policy];
        c->delete_at = p->delete_after_ns ? c->ref.max_ts + p->delete_after_ns : INT64_MAX;
        c->target = plan_target(p, c->ref.max_ts, o->now_ns);
    }
    /* the hot tier's size limit moves the oldest movable chunks early */
    if (o->lc->hot_max_bytes && hot_bytes > o->lc->hot_max_bytes) {
        lc_chunk_t **hot = malloc((r.n ? r.n : 1) * sizeof *hot);
        if (hot == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        size_t nh = 0;
        for (size_t i = 0; i < r.n; i++)
            if (r.c[i].ref.loc.kind == ST_LOC_LOCAL && r.c[i].target == ST_TIER_HOT && r.c[i].policy >= 0)
                hot[nh++] = &r.c[i];
        st_qsort(hot, nh, sizeof *hot, cmp_hot_age);
        uint64_t early = 0;
        for (size_t i = 0; i < nh && hot_bytes > o->lc->hot_max_bytes; i++) {
            const st_lc_policy_t *p = &o->lc->policies[hot[i]->policy];
            for (int t = 0; t < p->ntiers; t++) {
                if (p->tiers[t].tier != ST_TIER_HOT) {
                    hot[i]->target = p->tiers[t].tier;
                    hot_bytes -= hot[i]->ref.size;
                    early++;
                    break;
                }
            }
        }
        free(hot);
        if (early)
            progress(&r, "hot tier above hot_max_bytes (%llu): moving the %llu oldest chunks early",
                     (unsigned long long)o->lc->hot_max_bytes, (unsigned long long)early);
    }
    up = malloc((r.n ? r.n : 1) * sizeof *up);
    if (up == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    size_t nup = 0, nhotdel = 0;
    for (size_t i = 0; i < r.n; i++) {
        lc_chunk_t *c = &r.c[i];
        if (c->policy < 0 || c->ref.loc.kind != ST_LOC_LOCAL) continue;
        if (c->target == ST_TIER_COUNT) {
            nhotdel++;
            rep->to_delete++;
            rep->delete_bytes += c->ref.size;
        } else if (c->target != ST_TIER_HOT) {
            up[nup++] = c;
            rep->to_upload++;
            rep->upload_bytes += c->ref.size;
        }
    }
    st_qsort(up, nup, sizeof *up, cmp_group);

    /* ---- plan: objects in S3 */
    pp = calloc(packs.n ? packs.n : 1, sizeof *pp);
    if (pp == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < packs.n; i++) {
        st_pack_state_t *ps = &packs.v[i];
        pplan_t *x = &pp[i];
        x->ps = ps;
        x->policy = policy_by_name(o->lc, ps->policy);
        x->op = P_KEEP;
        if (x->policy < 0) continue; /* policy removed from the config: leave the data alone */
        const st_lc_policy_t *p = &o->lc->policies[x->policy];
        x->target = plan_target(p, ps->max_ts, o->now_ns);
        size_t f, nc = chunks_of(&r, ps->key, &f);
        uint64_t bytes = 0;
        for (size_t k = 0; k < nc; k++) bytes += r.by_path[f + k]->ref.size;
        if (x->target == ST_TIER_COUNT && o->now_ns >= ps->delete_at) {
            x->op = P_DELETE;
            rep->to_delete += nc;
            rep->delete_bytes += bytes;
        } else if (x->target != ST_TIER_COUNT && x->target > ps->tier) {
            x->op = st_tier_archived(x->target) && !st_tier_archived(ps->tier) ? P_MERGE : P_COPY;
            rep->to_transition += nc;
            rep->transition_bytes += bytes;
        }
    }
    st_qsort(pp, packs.n, sizeof *pp, cmp_merge);
    /* a merge batch of one object is a plain copy */
    for (size_t i = 0; i < packs.n;) {
        if (pp[i].op != P_MERGE) {
            i++;
            continue;
        }
        size_t j = merge_batch_end(pp, packs.n, i, o->lc->pack_target_size);
        if (j == i + 1) pp[i].op = P_COPY;
        i = j;
    }

    /* ---- the plan as text, and its price */
    /* lifecycle.prices when configured (audit/audit.h; the hot tier is not billed in a plan) */
    st_prices_t prices = st_default_prices;
    if (o->lc->audit) {
        const st_audit_prices_t *ap = &o->lc->audit->prices;
        for (int t = ST_TIER_HOT + 1; t < ST_TIER_COUNT && t < ST_AUDIT_NTIERS; t++) {
            prices.storage_gb_month[t] = ap->storage_gb_month[t];
            prices.put_per_1000[t] = ap->requests_per_1000[t];
        }
        prices.archive_overhead_bytes = ap->archive_overhead_bytes;
    }
    const st_prices_t *pr = &prices;
    size_t nobj_up = 0;
    for (size_t i = 0; i < nup;) {
        size_t j = i;
        uint64_t bytes = 0;
        while (j < nup && same_group(up[i], up[j]) &&
               (j == i || bytes + up[j]->ref.size <= o->lc->pack_target_size))
            bytes += up[j++]->ref.size;
        nobj_up++;
        rep->one_time_cost_usd += pr->put_per_1000[up[i]->target] / 1000.0;
        if (o->plan)
            fprintf(o->plan, "upload   %-12s %-12s %-12s %6zu chunks %14llu bytes -> %s\n", up[i]->tenant,
                    o->lc->policies[up[i]->policy].name, st_tier_name(up[i]->target), j - i,
                    (unsigned long long)bytes, o->lc->s3.bucket);
        i = j;
    }
    size_t nobj_merge = 0, nsrc_merge = 0, nobj_copy = 0, nobj_del = 0;
    for (size_t i = 0; i < packs.n;) {
        pplan_t *x = &pp[i];
        if (x->op == P_MERGE) {
            size_t j = merge_batch_end(pp, packs.n, i, o->lc->pack_target_size);
            uint64_t bytes = 0;
            for (size_t k = i; k < j; k++) bytes += pp[k].ps->size;
            nobj_merge++;
            nsrc_merge += j - i;
            rep->one_time_cost_usd += pr->put_per_1000[x->target] / 1000.0;
            if (o->plan)
                fprintf(o->plan, "repack   %-12s %-12s %-12s %6zu objects %13llu bytes %s -> one %s object\n",
                        x->ps->tenant, x->ps->policy, st_tier_name(x->ps->tier), j - i,
                        (unsigned long long)bytes, st_tier_name(x->ps->tier), st_tier_name(x->target));
            i = j;
            continue;
        }
        if (x->op == P_COPY) {
            nobj_copy++;
            rep->one_time_cost_usd += pr->put_per_1000[x->target] / 1000.0;
            if (o->plan)
                fprintf(o->plan, "move     %s %s -> %s (%llu bytes)\n", x->ps->key, st_tier_name(x->ps->tier),
                        st_tier_name(x->target), (unsigned long long)x->ps->size);
        } else if (x->op == P_DELETE) {
            nobj_del++;
            if (o->plan)
                fprintf(o->plan, "delete   %s (%s, %llu bytes, policy %s)\n", x->ps->key,
                        st_tier_name(x->ps->tier), (unsigned long long)x->ps->size, x->ps->policy);
        }
        i++;
    }
    if (nhotdel && o->plan)
        fprintf(o->plan, "delete   %zu hot chunks at the end of their retention\n", nhotdel);
    /* storage per month once the plan is done: chunk bytes per target class, plus the archive
     * classes' per-object overhead */
    for (size_t i = 0; i < r.n; i++) {
        const lc_chunk_t *c = &r.c[i];
        if (c->target == ST_TIER_COUNT || c->target == ST_TIER_HOT) continue;
        rep->monthly_storage_usd_after += gb(c->ref.size) * pr->storage_gb_month[c->target];
    }
    for (size_t i = 0; i < packs.n; i++)
        if (pp[i].op != P_DELETE && pp[i].policy >= 0 &&
            st_tier_archived(pp[i].op == P_KEEP ? pp[i].ps->tier : pp[i].target))
            rep->monthly_storage_usd_after +=
                gb((uint64_t)pr->archive_overhead_bytes) *
                pr->storage_gb_month[pp[i].op == P_KEEP ? pp[i].ps->tier : pp[i].target];
    rep->requests = nobj_up * 2 + nobj_merge * 2 + nobj_copy * 3 + nobj_del;
    if (o->plan) {
        fprintf(
            o->plan,
            "plan: %llu chunks (%llu bytes); upload %llu chunks (%llu bytes) in %zu objects; transition %llu "
            "chunks (%llu bytes): %zu objects repacked into %zu, %zu moved; delete %llu chunks (%llu bytes) "
            "in %zu "
            "objects and %zu hot chunks\n",
            (unsigned long long)rep->chunks, (unsigned long long)rep->chunk_bytes,
            (unsigned long long)rep->to_upload, (unsigned long long)rep->upload_bytes, nobj_up,
            (unsigned long long)rep->to_transition, (unsigned long long)rep->transition_bytes, nsrc_merge,
            nobj_merge, nobj_copy, (unsigned long long)rep->to_delete, (unsigned long long)rep->delete_bytes,
            nobj_del, nhotdel);
        fprintf(o->plan, "cost: $%.4f one-time (requests), $%.4f per month of S3 storage afterwards\n",
                rep->one_time_cost_usd, rep->monthly_storage_usd_after);
    }
    if (o->dry_run) goto out;

    /* ---- execute: uploads */
    rep->requests = 0;
    for (size_t i = 0; i < nup;) {
        size_t j = i;
        uint64_t bytes = 0;
        while (j < nup && same_group(up[i], up[j]) &&
               (j == i || bytes + up[j]->ref.size <= o->lc->pack_target_size))
            bytes += up[j++]->ref.size;
        if (upload_group(&r, up + i, j - i, up[i]->target) < 0) fail(&r);
        i = j;
    }
    /* hot chunks at the end of their retention: index entries go, files follow as to-dos */
    if (nhotdel) {
        st_index_write_t *w = NULL;
        int drc = st_index_write_begin(o->index, &w);
        for (size_t i = 0; drc == 0 && i < r.n; i++) {
            lc_chunk_t *c = &r.c[i];
            if (c->policy < 0 || c->ref.loc.kind != ST_LOC_LOCAL || c->target != ST_TIER_COUNT) continue;
            drc = st_index_delete_chunk(w, c->tenant, &c->ref);
            if (drc == 0) drc = todo_unlink(w, c->ref.loc.path);
            c->done = true;
        }
        if (drc == 0) drc = st_audit_lc_delete_hot(&r); /* the evidence before the commit */
        if (drc == 0)
            drc = st_index_write_commit(w);
        else
            st_index_write_abort(w);
        if (drc < 0) {
            fail(&r);
        } else {
            rep->objects_deleted += nhotdel;
            progress(&r, "deleted %zu hot chunks at the end of their retention", nhotdel);
        }
    }
    /* objects: deletes, in-place moves, repacks */
    for (size_t i = 0; i < packs.n;) {
        pplan_t *x = &pp[i];
        const st_lc_policy_t *p = x->policy >= 0 ? &o->lc->policies[x->policy] : NULL;
        if (x->op == P_MERGE) {
            size_t j = merge_batch_end(pp, packs.n, i, o->lc->pack_target_size);
            st_pack_state_t **src = malloc((j - i) * sizeof *src);
            if (src == NULL) {
                rc = -ENOMEM;
                goto out;
            }
            for (size_t k = i; k < j; k++) src[k - i] = pp[k].ps;
            if (merge_packs(&r, src, j - i, p, x->target) < 0) fail(&r);
            free(src);
            i = j;
            continue;
        }
        if (x->op == P_DELETE && delete_pack(&r, x->ps, p) < 0) fail(&r);
        if (x->op == P_COPY && transition_pack(&r, x->ps, p, x->target) < 0) fail(&r);
        i++;
    }
    /* sources of this run's moves */
    if ((rc = load_chunks(&r)) == 0) rc = process_todos(&r);
    st_counter_inc(r.m_runs);
    if (rc == 0 && rep->failures == 0) st_gauge_set(r.m_last_ok, (double)st_now_ns() / 1e9);
out:
    st_s3_client_destroy(r.s3);
    free(up);
    free(pp);
    free(packs.v);
    free(r.by_path);
    free(r.c);
    flock(lock, LOCK_UN);
    close(lock);
    return rc;
}
