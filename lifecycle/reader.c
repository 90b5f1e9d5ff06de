/* reader.c: reads of chunks stored in S3 for the querier (ranged GETs into a bounded local cache) and
 * restores of archived objects (RestoreObject, progress via HEAD x-amz-restore). */
#include "lifecycle/lifecycle_int.h"

#include "audit/audit.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "querier/querier.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct st_lc_reader {
    const st_lc_config_t *lc;
    st_s3_client_t *s3;
    char dir[1024];
    uint64_t max_bytes;
    pthread_mutex_t mu;
    uint64_t bytes; /* cached bytes (approximate) */
};

static void evict(st_lc_reader_t *r)
{
    /* oldest access time first; runs only when the cache is over its budget */
    DIR *d = opendir(r->dir);
    if (d == NULL) return;
    struct ent {
        char name[96];
        time_t t;
        off_t size;
    } *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || strlen(e->d_name) >= 96) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", r->dir, e->d_name);
        struct stat st;
        if (stat(p, &st) < 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct ent *nv = realloc(v, cap * sizeof *nv);
            if (nv == NULL) break;
            v = nv;
        }
        snprintf(v[n].name, sizeof v[n].name, "%s", e->d_name);
        v[n].t = st.st_atime > st.st_mtime ? st.st_atime : st.st_mtime;
        v[n].size = st.st_size;
        total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j - 1].t > v[j].t; j--) {
            struct ent t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (size_t i = 0; i < n && total > r->max_bytes * 9 / 10; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", r->dir, v[i].name);
        if (unlink(p) == 0) total -= (uint64_t)v[i].size;
    }
    r->bytes = total;
    free(v);
}

int st_lc_reader_new(const st_lc_config_t *lc, const char *cache_dir, uint64_t max_bytes,
                     st_lc_reader_t **out)
{
    st_lc_reader_t *r = calloc(1, sizeof *r);
    if (r == NULL) return -ENOMEM;
    r->lc = lc;
    snprintf(r->dir, sizeof r->dir, "%s", cache_dir);
    r->max_bytes = max_bytes ? max_bytes : (1ull << 30);
    pthread_mutex_init(&r->mu, NULL);
    int rc = st_mkdirs(cache_dir, 0755);
    if (rc == 0) rc = st_lc_s3_client(lc, &r->s3);
    if (rc < 0) {
        st_lc_reader_free(r);
        return rc;
    }
    evict(r);
    *out = r;
    return 0;
}

void st_lc_reader_free(st_lc_reader_t *r)
{
    if (r == NULL) return;
    st_s3_client_destroy(r->s3);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int st_lc_reader_fetch(void *reader, const st_chunk_ref_t *ref, char *path, size_t pathsz, uint64_t *base)
{
    st_lc_reader_t *r = reader;
    if (ref->loc.kind != ST_LOC_S3) return -EINVAL;
    uint64_t h = st_hash64(ref->loc.path, strlen(ref->loc.path));
    snprintf(path, pathsz, "%s/%016llx-%llu-%llu.chunk", r->dir, (unsigned long long)h,
             (unsigned long long)ref->loc.offset, (unsigned long long)ref->loc.length);
    *base = 0;
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size == ref->loc.length) return 0;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.%lx.tmp", path, (unsigned long)pthread_self());
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    st_s3_get_opts_t go = {.range = true, .offset = ref->loc.offset, .length = ref->loc.length};
    uint64_t got = 0;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc = st_s3_get_object_fd(r->s3, r->lc->s3.bucket, ref->loc.path, &go, fd, 0, &got, NULL, &err);
    if (rc == 0 && got != ref->loc.length) rc = ST_ECORRUPT;
    if (rc == 0) {
        /* the chunk's own CRC-32, recorded when it was indexed */
        char *buf = malloc(got ? got : 1);
        if (buf == NULL)
            rc = -ENOMEM;
        else if (pread(fd, buf, got, 0) != (ssize_t)got)
            rc = -EIO;
        else if (st_crc32(0, buf, got) != ref->crc32)
            rc = ST_ECORRUPT;
        free(buf);
    }
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0) rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        if (rc == ST_S3_EARCHIVED) return ST_EARCHIVED;
        ST_LOG_WARN("lifecycle", "msg=\"reading chunk from S3 failed\" key=%s err=\"%s\"", ref->loc.path,
                    st_s3_strerror(rc));
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    r->bytes += got;
    if (r->bytes > r->max_bytes) evict(r);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* ---- restores ------------------------------------------------------------------------------------ */

typedef struct {
    const char *tenant;
    st_selector_t *sel;
    st_index_read_t *rd;
    int64_t start, end;
    st_strvec_t keys;
} rscan_t;

static int restore_scan_cb(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    (void)day;
    rscan_t *s = arg;
    if (strcmp(tenant, s->tenant) != 0 || ref->loc.kind != ST_LOC_S3 ||
        !st_tier_archived((st_tier_t)ref->storage_class))
        return 0;
    if (ref->max_ts < s->start || ref->min_ts > s->end) return 0;
    st_str_t text;
    if (st_index_stream(s->rd, tenant, ref->stream_id, &text, NULL) < 0) return 0;
    st_labels_t l;
    char err[256];
    if (st_labels_parse(text, &l, err) < 0) return 0;
    bool ok = st_matchers_match(s->sel->m, s->sel->n, &l);
    st_labels_free(&l);
    return ok ? st_strvec_push(&s->keys, st_cstr(ref->loc.path)) : 0;
}

static int encode_restore(const st_lc_restore_t *q, const st_strvec_t *keys, st_buf_t *out)
{
    st_buf_printf(out, "{\"id\":\"%s\",\"created\":%lld,\"start\":%lld,\"end\":%lld,\"selector\":", q->id,
                  (long long)q->created, (long long)q->start, (long long)q->end);
    st_json_put_cstr(out, q->selector);
    st_buf_printf(out, ",\"tier\":\"%s\",\"days\":%d,\"objects\":[", q->tier, q->days);
    for (size_t i = 0; i < keys->n; i++) {
        if (i) st_buf_putc(out, ',');
        st_json_put_str(out, st_strvec_at(keys, i));
    }
    return st_buf_puts(out, "]}");
}

int st_lc_restore_request(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t selector,
                          int64_t start, int64_t end, const char *tier, int days, int64_t now,
                          st_lc_restore_t *out, char *err, size_t errsz)
{
    st_s3_tier_t t;
    if (strcmp(tier, "Standard") == 0)
        t = ST_S3_TIER_STANDARD;
    else if (strcmp(tier, "Bulk") == 0)
        t = ST_S3_TIER_BULK;
    else if (strcmp(tier, "Expedited") == 0)
        t = ST_S3_TIER_EXPEDITED;
    else {
        snprintf(err, errsz, "invalid tier \"%s\" (Standard, Bulk or Expedited)", tier);
        return ST_EPARSE;
    }
    if (days < 1 || days > 365) {
        snprintf(err, errsz, "days must be between 1 and 365");
        return ST_EPARSE;
    }
    rscan_t s = {tenant, NULL, NULL, start, end, ST_STRVEC_INIT};
    int rc = st_selector_parse(selector, &s.sel, err, errsz);
    if (rc < 0) return rc;
    if ((rc = st_index_read_begin(ix, &s.rd)) == 0) {
        rc = st_index_scan_chunks(s.rd, restore_scan_cb, &s);
        st_index_read_end(s.rd);
    }
    st_selector_free(s.sel);
    st_strvec_sort_unique(&s.keys);
    if (rc == 0 && s.keys.n == 0) {
        snprintf(err, errsz, "no archived data matches the selector in that time range");
        rc = ST_ENOTFOUND;
    }
    st_s3_client_t *s3 = NULL;
    if (rc == 0) rc = st_lc_s3_client(lc, &s3);
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%016llx",
             (unsigned long long)(st_hash64(selector.p, selector.n) ^ (uint64_t)now));
    out->created = now;
    out->start = start;
    out->end = end;
    snprintf(out->selector, sizeof out->selector, "%.*s", (int)selector.n, selector.p);
    snprintf(out->tier, sizeof out->tier, "%s", tier);
    out->days = days;
    for (size_t i = 0; rc == 0 && i < s.keys.n; i++) {
        bool started;
        st_s3_error_t e;
        int r2 = st_s3_restore_object(s3, lc->s3.bucket, s.keys.v[i], NULL, days, t, &started, &e);
        out->objects++;
        if (r2 < 0 && r2 != ST_S3_ERESTORING) out->failed++;
    }
    if (rc == 0) {
        st_buf_t v = ST_BUF_INIT;
        encode_restore(out, &s.keys, &v);
        char key[256];
        snprintf(key, sizeof key, "restore/%s/%s", tenant, out->id);
        st_index_write_t *w;
        if ((rc = st_index_write_begin(ix, &w)) == 0) {
            rc = st_index_state_put(w, st_cstr(key), st_str(v.data, v.len));
            if (rc == 0)
                rc = st_index_write_commit(w);
            else
                st_index_write_abort(w);
        }
        if (rc == 0) st_audit_restore_requested(tenant, out, &s.keys);
        st_buf_free(&v);
    }
    st_s3_client_destroy(s3);
    st_strvec_free(&s.keys);
    return rc;
}

typedef struct {
    const st_lc_config_t *lc;
    st_s3_client_t *s3;
    st_buf_t *out;
    int n;
} rstat_t;

static int status_cb(void *arg, st_str_t key, st_str_t value)
{
    (void)key;
    rstat_t *s = arg;
    /* copy the record, replacing "objects":[keys] by per-object progress */
    st_json_t j;
    st_json_init(&j, value.p, value.n);
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    if (s->n++) st_buf_putc(s->out, ',');
    st_buf_putc(s->out, '{');
    int first = 1, done = 0, total = 0, rc = st_json_object_begin(&j);
    st_str_t k;
    while (rc == 0 && (rc = st_json_next_key(&j, &k, &s1)) == 1) {
        rc = 0;
        if (!first) st_buf_putc(s->out, ',');
        first = 0;
        st_json_put_str(s->out, k);
        st_buf_putc(s->out, ':');
        if (!st_str_eqc(k, "objects")) {
            st_str_t raw;
            if ((rc = st_json_skip(&j, &raw)) == 0) st_buf_append(s->out, raw.p, raw.n);
            continue;
        }
        st_buf_putc(s->out, '[');
        if ((rc = st_json_array_begin(&j)) < 0) break;
        while ((rc = st_json_next_elem(&j)) == 1) {
            st_str_t obj;
            if ((rc = st_json_string(&j, &obj, &s2)) < 0) break;
            char kk[600];
            snprintf(kk, sizeof kk, "%.*s", (int)obj.n, obj.p);
            st_s3_object_info_t info;
            st_s3_error_t e;
            const char *state = "unknown";
            if (s->s3 && st_s3_head_object(s->s3, s->lc->s3.bucket, kk, NULL, &info, &e) == 0) {
                if (!st_tier_archived(strcmp(info.storage_class, "GLACIER") == 0        ? ST_TIER_GLACIER
                                      : strcmp(info.storage_class, "DEEP_ARCHIVE") == 0 ? ST_TIER_DEEP_ARCHIVE
                                                                                        : ST_TIER_STANDARD))
                    state = "available";
                else if (!info.restore.present)
                    state = "not-requested";
                else if (info.restore.ongoing)
                    state = "in-progress";
                else
                    state = "restored";
            } else {
                state = "missing";
            }
            if (strcmp(state, "restored") == 0 || strcmp(state, "available") == 0) done++;
            if (total++) st_buf_putc(s->out, ',');
            st_buf_puts(s->out, "{\"key\":");
            st_json_put_cstr(s->out, kk);
            st_buf_printf(s->out, ",\"state\":\"%s\"}", state);
            rc = 0;
        }
        if (rc < 0) break;
        rc = 0;
        st_buf_putc(s->out, ']');
    }
    st_buf_printf(s->out, ",\"restored\":%d,\"total\":%d,\"status\":\"%s\"}", done, total,
                  done == total ? "done" : "in-progress");
    if (rc >= 0) st_audit_restore_status(key, value, done, total);
    st_buf_free(&s1);
    st_buf_free(&s2);
    return rc < 0 ? rc : 0;
}

int st_lc_restore_status(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_buf_t *out)
{
    rstat_t s = {lc, NULL, out, 0};
    st_lc_s3_client(lc, &s.s3);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "restore/%s/", tenant);
    st_index_read_t *rd;
    int rc = st_index_read_begin(ix, &rd);
    st_buf_putc(out, '[');
    if (rc == 0) {
        rc = st_index_state_scan(rd, st_cstr(prefix), status_cb, &s);
        st_index_read_end(rd);
    }
    st_buf_putc(out, ']');
    st_s3_client_destroy(s.s3);
    return rc;
}
