/* erase.c: delete requests (Loki's /loki/api/v1/delete): recording, listing and cancelling them, and
 * carrying them out inside a lifecycle run once their cancel period is over: every chunk of the
 * selected streams that holds matching lines in the range is rewritten without them (or dropped when
 * nothing is left), on local disk or, for chunks in S3, by rewriting their object (archived objects
 * are restored first). Requests on streams whose policy is immutable or under Object Lock are refused.
 *
 * A request is the index state record "delete/<tenant>/<created, 16 hex>-<id>" (JSON). Queries hide
 * the lines of requests not yet processed (querier/deletes.c reads the same records). */
#include "lifecycle/lifecycle_int.h"

#include "audit/audit.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "querier/querier.h"
#include "store/store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char key[300]; /* state key */
    char id[16];
    char tenant[151];
    char *query;          /* owned */
    int64_t start, end;   /* ns, inclusive */
    int64_t created;      /* ns */
    char status[16];      /* received | processing | processed | refused */
    uint64_t done, total; /* chunks handled / selected in the last pass */
    uint64_t lines;       /* lines removed from storage */
    uint64_t chunks_deleted, chunks_rewritten;
    char message[512];
} delreq_t;

static void delreq_free(delreq_t *q)
{
    free(q->query);
}

static int delreq_encode(const delreq_t *q, st_buf_t *out)
{
    st_buf_puts(out, "{\"id\":");
    st_json_put_cstr(out, q->id);
    st_buf_puts(out, ",\"query\":");
    st_json_put_cstr(out, q->query);
    st_buf_printf(
        out,
        ",\"start\":%lld,\"end\":%lld,\"created\":%lld,\"status\":\"%s\",\"done\":%llu,\"total\":%llu,"
        "\"lines\":%llu,\"chunks_deleted\":%llu,\"chunks_rewritten\":%llu,\"message\":",
        (long long)q->start, (long long)q->end, (long long)q->created, q->status, (unsigned long long)q->done,
        (unsigned long long)q->total, (unsigned long long)q->lines, (unsigned long long)q->chunks_deleted,
        (unsigned long long)q->chunks_rewritten);
    st_json_put_cstr(out, q->message);
    return st_buf_putc(out, '}');
}

static void copy_str(char *dst, size_t cap, st_str_t s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

static int delreq_decode(st_str_t key, st_str_t v, delreq_t *q)
{
    memset(q, 0, sizeof *q);
    copy_str(q->key, sizeof q->key, key);
    /* tenant from the key: delete/<tenant>/... */
    const char *t = q->key + 7, *slash = strchr(t, '/');
    if (strncmp(q->key, "delete/", 7) != 0 || slash == NULL) return ST_ECORRUPT;
    snprintf(q->tenant, sizeof q->tenant, "%.*s", (int)(slash - t), t);
    st_json_t j;
    st_json_init(&j, v.p, v.n);
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    st_str_t k, val;
    while (rc == 0 && (rc = st_json_next_key(&j, &k, &s1)) == 1) {
        rc = 0;
        st_json_type_t ty = st_json_peek(&j);
        if (ty == ST_JSON_STRING) {
            if ((rc = st_json_string(&j, &val, &s2)) < 0) break;
            if (st_str_eqc(k, "id"))
                copy_str(q->id, sizeof q->id, val);
            else if (st_str_eqc(k, "status"))
                copy_str(q->status, sizeof q->status, val);
            else if (st_str_eqc(k, "message"))
                copy_str(q->message, sizeof q->message, val);
            else if (st_str_eqc(k, "query")) {
                free(q->query);
                q->query = st_str_dup(val);
                if (q->query == NULL) rc = -ENOMEM;
            }
        } else if (ty == ST_JSON_NUMBER) {
            if ((rc = st_json_number(&j, &val)) < 0) break;
            char tmp[32];
            copy_str(tmp, sizeof tmp, val);
            long long x = strtoll(tmp, NULL, 10);
            if (st_str_eqc(k, "start"))
                q->start = x;
            else if (st_str_eqc(k, "end"))
                q->end = x;
            else if (st_str_eqc(k, "created"))
                q->created = x;
            else if (st_str_eqc(k, "done"))
                q->done = (uint64_t)x;
            else if (st_str_eqc(k, "total"))
                q->total = (uint64_t)x;
            else if (st_str_eqc(k, "lines"))
                q->lines = (uint64_t)x;
            else if (st_str_eqc(k, "chunks_deleted"))
                q->chunks_deleted = (uint64_t)x;
            else if (st_str_eqc(k, "chunks_rewritten"))
                q->chunks_rewritten = (uint64_t)x;
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&s1);
    st_buf_free(&s2);
    if (rc >= 0 && q->query == NULL) q->query = strdup("");
    return rc < 0 ? ST_ECORRUPT : 0;
}

static int delreq_put(st_index_write_t *w, const delreq_t *q)
{
    st_buf_t b = ST_BUF_INIT;
    int rc = delreq_encode(q, &b);
    if (rc == 0) rc = st_index_state_put(w, st_cstr(q->key), st_str(b.data, b.len));
    st_buf_free(&b);
    return rc;
}

static int delreq_save(st_index_t *ix, const delreq_t *q)
{
    st_index_write_t *w;
    ST_TRY(st_index_write_begin(ix, &w));
    int rc = delreq_put(w, q);
    if (rc == 0) return st_index_write_commit(w);
    st_index_write_abort(w);
    return rc;
}

typedef struct {
    delreq_t *v;
    size_t n, cap;
} delreqs_t;

static void delreqs_free(delreqs_t *a)
{
    for (size_t i = 0; i < a->n; i++) delreq_free(&a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

static int collect_cb(void *arg, st_str_t key, st_str_t value)
{
    delreqs_t *a = arg;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        delreq_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    if (delreq_decode(key, value, &a->v[a->n]) == 0)
        a->n++;
    else
        delreq_free(&a->v[a->n]);
    return 0;
}

/* Requests of one tenant (NULL: all), in creation order (the key order). */
static int load_requests(st_index_t *ix, const char *tenant, delreqs_t *out)
{
    char prefix[200];
    snprintf(prefix, sizeof prefix, "delete/%s%s", tenant ? tenant : "", tenant ? "/" : "");
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(ix, &rd));
    int rc = st_index_state_scan(rd, st_cstr(prefix), collect_cb, out);
    st_index_read_end(rd);
    return rc;
}

/* ---- selecting what a request touches -------------------------------------------------------------- */

typedef struct {
    st_chunk_ref_t *v;
    size_t n, cap;
} refs_t;

static int ref_cb(void *arg, const st_chunk_ref_t *ref)
{
    refs_t *a = arg;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        st_chunk_ref_t *v = realloc(a->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = *ref;
    return 0;
}

static int cmp_ref(const void *a, const void *b)
{
    uint64_t x = ((const st_chunk_ref_t *)a)->chunk_id, y = ((const st_chunk_ref_t *)b)->chunk_id;
    return x < y ? -1 : x > y;
}

/* The chunks of the streams the expression selects that overlap [start, end], once each; a stream
 * under an immutable or locked policy makes it a refusal (reason in why). */
static int select_chunks(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, const st_delexpr_t *d,
                         int64_t start, int64_t end, refs_t *out, uint64_t *streams, char *why, size_t whysz)
{
    size_t nm;
    const st_matcher_t *m = st_delexpr_matchers(d, &nm);
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(ix, &rd));
    st_u64vec_t ids = ST_U64VEC_INIT;
    int rc = st_index_select(rd, tenant, st_day_of(start), st_day_of(end), m, nm, &ids);
    *streams = 0;
    for (size_t i = 0; rc == 0 && i < ids.n; i++) {
        st_str_t text;
        if (st_index_stream(rd, tenant, ids.v[i], &text, NULL) < 0) continue;
        st_labels_t l;
        char err[256];
        if (st_labels_parse(text, &l, err) < 0) continue;
        bool ok = st_matchers_match(m, nm, &l);
        int pol = ok && lc ? st_lc_policy_for(lc, tenant, &l) : -1;
        st_labels_free(&l);
        if (!ok) continue;
        size_t before = out->n;
        for (int64_t day = st_day_of(start); rc == 0 && day <= st_day_of(end); day++)
            rc = st_index_chunks(rd, tenant, day, ids.v[i], start, end, ref_cb, out);
        if (out->n == before) continue;
        (*streams)++;
        if (pol >= 0) {
            const st_lc_policy_t *p = &lc->policies[pol];
            if (p->immutable || p->object_lock != ST_LOCK_NONE) {
                snprintf(why, whysz,
                         "deletion refused: stream %.*s is kept under policy \"%s\", which is %s; its data "
                         "cannot be "
                         "deleted before the end of its retention",
                         (int)(text.n > 200 ? 200 : text.n), text.p, p->name,
                         p->object_lock == ST_LOCK_COMPLIANCE   ? "under S3 Object Lock (COMPLIANCE)"
                         : p->object_lock == ST_LOCK_GOVERNANCE ? "under S3 Object Lock (GOVERNANCE)"
                                                                : "immutable");
                rc = ST_EBADSTATE;
            }
        }
    }
    st_u64vec_free(&ids);
    st_index_read_end(rd);
    if (rc == 0 && out->n > 1) {
        st_qsort(out->v, out->n, sizeof *out->v, cmp_ref);
        size_t w = 1;
        for (size_t i = 1; i < out->n; i++)
            if (out->v[i].chunk_id != out->v[w - 1].chunk_id) out->v[w++] = out->v[i];
        out->n = w;
    }
    return rc;
}

/* ---- the API's operations --------------------------------------------------------------------------- */

int st_lc_delete_add(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t query,
                     int64_t start, int64_t end, int64_t now, char id[16], char *err, size_t errsz)
{
    st_delexpr_t *d;
    int rc = st_delexpr_parse(query, &d, err, errsz);
    if (rc < 0) return rc;
    refs_t refs = {0};
    uint64_t streams;
    rc = select_chunks(lc, ix, tenant, d, start, end, &refs, &streams, err, errsz);
    free(refs.v);
    st_delexpr_free(d);
    if (rc == ST_EBADSTATE) st_audit_erasure_request(tenant, NULL, query, start, end, now, err);
    if (rc < 0) return rc;
    delreq_t q;
    memset(&q, 0, sizeof q);
    uint64_t h = st_hash64(query.p, query.n) ^ st_hash64(tenant, strlen(tenant)) ^ (uint64_t)now;
    snprintf(q.id, sizeof q.id, "%08x", (unsigned)(h ^ (h >> 32)));
    snprintf(q.tenant, sizeof q.tenant, "%s", tenant);
    snprintf(q.key, sizeof q.key, "delete/%s/%016llx-%s", tenant, (unsigned long long)now, q.id);
    q.query = st_str_dup(query);
    if (q.query == NULL) return -ENOMEM;
    q.start = start;
    q.end = end;
    q.created = now;
    strcpy(q.status, "received");
    rc = delreq_save(ix, &q);
    if (rc == 0) st_audit_erasure_request(tenant, q.id, query, start, end, now, NULL);
    if (rc == 0) memcpy(id, q.id, sizeof q.id);
    delreq_free(&q);
    return rc;
}

/* Loki's status text: received, "NN% Complete", processed. */
static void status_text(const delreq_t *q, char *out, size_t cap)
{
    if (strcmp(q->status, "processing") == 0 && q->done > 0 && q->done < q->total)
        snprintf(out, cap, "%d%% Complete", (int)(100.0 * (double)q->done / (double)q->total));
    else if (strcmp(q->status, "processing") == 0)
        snprintf(out, cap, "received");
    else
        snprintf(out, cap, "%s", q->status);
}

static void put_seconds(st_buf_t *out, int64_t ns)
{
    /* seconds with millisecond precision, as Loki's model.Time */
    int64_t ms = ns / 1000000;
    if (ms % 1000 == 0)
        st_buf_printf(out, "%lld", (long long)(ms / 1000));
    else {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld.%03lld", (long long)(ms / 1000),
                 (long long)(ms % 1000 < 0 ? -(ms % 1000) : ms % 1000));
        size_t n = strlen(tmp);
        while (tmp[n - 1] == '0') tmp[--n] = '\0';
        st_buf_puts(out, tmp);
    }
}

int st_lc_delete_list(st_index_t *ix, const char *tenant, st_buf_t *out)
{
    delreqs_t a = {0};
    int rc = load_requests(ix, tenant, &a);
    st_buf_putc(out, '[');
    for (size_t i = 0; rc == 0 && i < a.n; i++) {
        const delreq_t *q = &a.v[i];
        char st[32];
        status_text(q, st, sizeof st);
        if (i) st_buf_putc(out, ',');
        st_buf_puts(out, "{\"request_id\":");
        st_json_put_cstr(out, q->id);
        st_buf_puts(out, ",\"start_time\":");
        put_seconds(out, q->start);
        st_buf_puts(out, ",\"end_time\":");
        put_seconds(out, q->end);
        st_buf_puts(out, ",\"query\":");
        st_json_put_cstr(out, q->query);
        st_buf_puts(out, ",\"status\":");
        st_json_put_cstr(out, st);
        st_buf_puts(out, ",\"created_at\":");
        put_seconds(out, q->created);
        st_buf_printf(out, ",\"deleted_lines\":%llu", (unsigned long long)q->lines);
        if (q->message[0]) {
            st_buf_puts(out, ",\"message\":");
            st_json_put_cstr(out, q->message);
        }
        st_buf_putc(out, '}');
    }
    st_buf_putc(out, ']');
    delreqs_free(&a);
    return rc;
}

int st_lc_delete_cancel(st_index_t *ix, const char *tenant, const char *id, bool force, char *err,
                        size_t errsz)
{
    (void)force; /* one record per request: nothing is ever partially processed and cancellable */
    delreqs_t a = {0};
    int rc = load_requests(ix, tenant, &a);
    const delreq_t *q = NULL;
    for (size_t i = 0; rc == 0 && i < a.n; i++)
        if (strcmp(a.v[i].id, id) == 0) q = &a.v[i];
    if (rc == 0 && q == NULL) {
        snprintf(err, errsz, "could not find delete request with given id");
        rc = ST_ENOTFOUND;
    } else if (rc == 0 && strcmp(q->status, "received") != 0) {
        snprintf(err, errsz, "deletion of request which is in process or already processed is not allowed");
        rc = ST_EBADSTATE;
    } else if (rc == 0) {
        st_index_write_t *w;
        if ((rc = st_index_write_begin(ix, &w)) == 0) {
            rc = st_index_state_del(w, st_cstr(q->key));
            if (rc == 0)
                rc = st_index_write_commit(w);
            else
                st_index_write_abort(w);
            if (rc == 0) st_audit_erasure_cancel(tenant, id);
        }
    }
    delreqs_free(&a);
    return rc;
}

/* ---- rewriting chunks ------------------------------------------------------------------------------ */

typedef struct {
    st_buf_t bytes; /* the new chunk (empty: nothing left) */
    uint64_t removed, kept, raw_bytes;
    int64_t min_ts, max_ts;
    uint32_t crc;
} rewrite_t;

/* Rewrites one chunk held in memory without the entries the request removes. */
static int rewrite_chunk(const void *p, size_t n, st_delexpr_t *d, int64_t start, int64_t end, int level,
                         rewrite_t *out)
{
    memset(out, 0, sizeof *out);
    out->min_ts = INT64_MAX;
    out->max_ts = INT64_MIN;
    st_chunk_info_t ci;
    ST_TRY(st_chunk_parse(p, n, &ci));
    st_chunk_writer_t *w = NULL;
    int rc = st_chunk_writer_open(NULL, ci.tenant, st_cstr(ci.labels), ci.stream_id, level, &w);
    st_block_t blk;
    memset(&blk, 0, sizeof blk);
    st_entry_t *keep = NULL;
    size_t keepcap = 0;
    for (uint32_t b = 0; rc == 0 && b < ci.nblocks; b++) {
        const st_block_meta_t *m = &ci.blocks[b];
        if ((rc = st_block_load(&blk, m, (const char *)p + m->offset)) < 0) break;
        if (blk.n > keepcap) {
            st_entry_t *k = realloc(keep, blk.n * sizeof *k);
            if (k == NULL) {
                rc = -ENOMEM;
                break;
            }
            keep = k;
            keepcap = blk.n;
        }
        size_t nk = 0;
        for (uint32_t i = 0; i < blk.n; i++) {
            st_entry_t e = st_block_entry(&blk, i);
            if (e.ts >= start && e.ts <= end && st_delexpr_line(d, e.line)) {
                out->removed++;
                continue;
            }
            keep[nk++] = e;
            out->raw_bytes += e.line.n + e.md.n;
            if (e.ts < out->min_ts) out->min_ts = e.ts;
            if (e.ts > out->max_ts) out->max_ts = e.ts;
        }
        out->kept += nk;
        if (nk) rc = st_chunk_writer_add(w, keep, nk);
    }
    if (rc == 0 && out->removed && out->kept) {
        uint64_t size;
        rc = st_chunk_writer_finish(w, &out->crc, &size);
        if (rc == 0) {
            st_str_t bytes = st_chunk_writer_bytes(w);
            rc = st_buf_append(&out->bytes, bytes.p, bytes.n);
        }
    }
    free(keep);
    st_block_free(&blk);
    st_chunk_writer_free(w);
    st_chunk_info_free(&ci);
    if (rc < 0) st_buf_free(&out->bytes);
    return rc;
}

static int write_file_synced(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    int rc = st_write_full(fd, p, n);
    if (rc == 0 && fsync(fd) < 0) rc = -errno;
    close(fd);
    return rc;
}

static void new_ref(st_chunk_ref_t *nr, const st_chunk_ref_t *old, const rewrite_t *rw)
{
    *nr = *old;
    nr->min_ts = rw->min_ts;
    nr->max_ts = rw->max_ts;
    nr->entries = (uint32_t)rw->kept;
    nr->raw_bytes = rw->raw_bytes;
    nr->size = rw->bytes.len;
    nr->crc32 = rw->crc;
    nr->loc.offset = 0;
    nr->loc.length = rw->bytes.len;
}

/* A local chunk: the rewritten chunk goes to "<dir>/<id>.d<request>.chunk", then one transaction
 * switches the index, records the old file as a to-do and saves the request's progress. */
static int erase_local(lc_run_t *r, delreq_t *q, st_delexpr_t *d, const st_chunk_ref_t *ref)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", r->chunks_dir, ref->loc.path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char *buf = malloc(ref->loc.length ? ref->loc.length : 1);
    int rc = buf ? st_pread_full(fd, buf, ref->loc.length, ref->loc.offset) : -ENOMEM;
    close(fd);
    if (rc == 0 && st_crc32(0, buf, ref->loc.length) != ref->crc32) rc = ST_ECORRUPT;
    rewrite_t rw;
    memset(&rw, 0, sizeof rw);
    if (rc == 0)
        rc = rewrite_chunk(buf, ref->loc.length, d, q->start, q->end, r->o->cfg->ingester.zstd_level, &rw);
    free(buf);
    if (rc < 0 || rw.removed == 0) {
        st_buf_free(&rw.bytes);
        return rc;
    }
    st_chunk_ref_t nr;
    memset(&nr, 0, sizeof nr);
    if (rw.kept) {
        char rel[300], full[1400];
        char dir[16];
        snprintf(dir, sizeof dir, "%.6s", ref->loc.path);
        snprintf(rel, sizeof rel, "%s/%016llx.d%s.chunk", dir, (unsigned long long)ref->chunk_id, q->id);
        snprintf(full, sizeof full, "%s/%s", r->chunks_dir, rel);
        rc = write_file_synced(full, rw.bytes.data, rw.bytes.len);
        if (rc == 0) {
            char dpath[1100];
            snprintf(dpath, sizeof dpath, "%s/%s", r->chunks_dir, dir);
            rc = st_fsync_dir(dpath);
        }
        new_ref(&nr, ref, &rw);
        snprintf(nr.loc.path, sizeof nr.loc.path, "%s", rel);
    }
    st_lc_crash_point("erase-after-write");
    q->lines += rw.removed;
    if (rw.kept)
        q->chunks_rewritten++;
    else
        q->chunks_deleted++;
    st_index_write_t *w = NULL;
    if (rc == 0) rc = st_index_write_begin(r->o->index, &w);
    if (rc == 0)
        rc = rw.kept ? st_index_replace_chunk(w, q->tenant, ref, &nr)
                     : st_index_delete_chunk(w, q->tenant, ref);
    if (rc == 0 && (rw.kept == 0 || strcmp(nr.loc.path, ref->loc.path) != 0)) {
        char k[400];
        snprintf(k, sizeof k, "todo/unlink/%s", ref->loc.path);
        rc = st_index_state_put(w, st_cstr(k), ST_STR(""));
    }
    if (rc == 0) rc = st_audit_erasure_chunk(r, q->tenant, q->id, ref, rw.kept ? &nr : NULL, rw.removed);
    if (rc == 0) rc = delreq_put(w, q);
    if (w && rc == 0)
        rc = st_index_write_commit(w);
    else if (w)
        st_index_write_abort(w);
    st_buf_free(&rw.bytes);
    if (rc < 0) {
        q->lines -= rw.removed;
        if (rw.kept)
            q->chunks_rewritten--;
        else
            q->chunks_deleted--;
    }
    return rc;
}

static int load_pack_state(st_index_t *ix, const char *key, st_pack_state_t *ps)
{
    char pk[640];
    snprintf(pk, sizeof pk, "pack/%s", key);
    st_index_read_t *rd;
    ST_TRY(st_index_read_begin(ix, &rd));
    st_str_t v;
    int rc = st_index_state_get(rd, st_cstr(pk), &v);
    if (rc == 0) rc = st_pack_state_decode(v, ps);
    st_index_read_end(rd);
    return rc;
}

static bool want(const refs_t *targets, uint64_t chunk_id)
{
    size_t lo = 0, hi = targets->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (targets->v[mid].chunk_id < chunk_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < targets->n && targets->v[lo].chunk_id == chunk_id;
}

/* A chunk in S3: its whole object is rewritten (archived objects are restored first; a locked object
 * is refused). Returns 1 when the object is waiting for a restore. */
static int erase_object(lc_run_t *r, delreq_t *q, st_delexpr_t *d, const char *key, const refs_t *targets)
{
    const char *bucket = r->o->lc->s3.bucket;
    st_pack_state_t ps;
    int rc = load_pack_state(r->o->index, key, &ps);
    if (rc < 0) return rc == ST_ENOTFOUND ? 0 : rc; /* moved or deleted since the index was read */
    if (ps.lock_mode[0] && ps.retain_until * ST_NS_PER_SEC > r->o->now_ns) {
        char until[40];
        st_format_rfc3339_sec(ps.retain_until * ST_NS_PER_SEC, until);
        snprintf(q->message, sizeof q->message,
                 "deletion refused: object %s is under S3 Object Lock (%s) until %s", key, ps.lock_mode,
                 until);
        return ST_EBADSTATE;
    }
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    if (st_tier_archived(ps.tier)) {
        st_s3_object_info_t info;
        rc = st_s3_head_object(r->s3, bucket, key, ps.version_id[0] ? ps.version_id : NULL, &info, &err);
        if (rc < 0) return rc;
        if (!info.restore.present || info.restore.ongoing) {
            if (!info.restore.present) {
                bool started;
                rc = st_s3_restore_object(r->s3, bucket, key, ps.version_id[0] ? ps.version_id : NULL, 7,
                                          ST_S3_TIER_BULK, &started, &err);
                if (rc < 0 && rc != ST_S3_ERESTORING) return rc;
                st_lc_progress(
                    r, "delete request %s: restore (bulk) of %s requested; it is rewritten once restored",
                    q->id, key);
            }
            return 1;
        }
    }
    /* the object, and the chunks the index places in it */
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s/erase-src.tmp", r->work_dir);
    int sfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (sfd < 0) return -errno;
    unlink(tmp);
    st_s3_get_opts_t go = {.version_id = ps.version_id[0] ? ps.version_id : NULL};
    uint64_t got = 0;
    rc = st_s3_get_object_fd(r->s3, bucket, key, &go, sfd, 0, &got, NULL, &err);
    if (rc == 0 && got != ps.size) rc = ST_ECORRUPT;
    /* chunks in this object: the run's by-key view */
    size_t first = 0, nc = 0;
    {
        size_t lo = 0, hi = r->nby_path;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(r->by_path[mid]->ref.loc.path, key) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        first = lo;
        while (lo + nc < r->nby_path && strcmp(r->by_path[lo + nc]->ref.loc.path, key) == 0) nc++;
    }
    /* the new object: every chunk, rewritten where the request removes lines */
    char ntmp[1200];
    snprintf(ntmp, sizeof ntmp, "%s/erase-new.tmp", r->work_dir);
    int nfd = open(ntmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (nfd < 0) {
        close(sfd);
        return -errno;
    }
    unlink(ntmp);
    st_pack_entry_t *pe = calloc(nc ? nc : 1, sizeof *pe);
    st_chunk_ref_t *nrefs = calloc(nc ? nc : 1, sizeof *nrefs);
    uint8_t *fate = calloc(nc ? nc : 1, 1); /* 0 unchanged, 1 rewritten, 2 dropped */
    if (pe == NULL || nrefs == NULL || fate == NULL) rc = -ENOMEM;
    uint64_t off = 0, removed = 0, rewritten = 0, dropped = 0;
    size_t np = 0;
    int64_t lo_ts = INT64_MAX, hi_ts = INT64_MIN;
    uint64_t first_id = UINT64_MAX;
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        const st_chunk_ref_t *ref = &r->by_path[first + i]->ref;
        char *buf = malloc(ref->loc.length ? ref->loc.length : 1);
        if (buf == NULL) {
            rc = -ENOMEM;
            break;
        }
        rc = st_pread_full(sfd, buf, ref->loc.length, ref->loc.offset);
        if (rc == 0 && st_crc32(0, buf, ref->loc.length) != ref->crc32) rc = ST_ECORRUPT;
        rewrite_t rw;
        memset(&rw, 0, sizeof rw);
        if (rc == 0 && want(targets, ref->chunk_id))
            rc =
                rewrite_chunk(buf, ref->loc.length, d, q->start, q->end, r->o->cfg->ingester.zstd_level, &rw);
        nrefs[i] = *ref;
        if (rc == 0 && rw.removed && rw.kept == 0) {
            fate[i] = 2;
            dropped++;
            removed += rw.removed;
        } else if (rc == 0) {
            const void *p = buf;
            uint64_t len = ref->loc.length;
            uint32_t crc = ref->crc32;
            if (rw.removed) {
                fate[i] = 1;
                rewritten++;
                removed += rw.removed;
                new_ref(&nrefs[i], ref, &rw);
                p = rw.bytes.data;
                len = rw.bytes.len;
                crc = rw.crc;
            }
            if (rc == 0) rc = st_pwrite_full(nfd, p, len, off);
            snprintf(nrefs[i].loc.path, sizeof nrefs[i].loc.path, "%s", key); /* replaced below */
            nrefs[i].loc.offset = off;
            nrefs[i].loc.length = len;
            pe[np++] = (st_pack_entry_t){ref->chunk_id,   off,           len, crc, nrefs[i].min_ts,
                                         nrefs[i].max_ts, ref->stream_id};
            off += len;
            if (nrefs[i].min_ts < lo_ts) lo_ts = nrefs[i].min_ts;
            if (nrefs[i].max_ts > hi_ts) hi_ts = nrefs[i].max_ts;
            if (ref->chunk_id < first_id) first_id = ref->chunk_id;
        }
        st_buf_free(&rw.bytes);
        free(buf);
    }
    close(sfd);
    if (rc < 0 || removed == 0) {
        close(nfd);
        free(pe);
        free(nrefs);
        free(fate);
        return rc;
    }
    /* write the new object (none when nothing is left), then switch the index in one transaction */
    char nkey[512] = "";
    st_s3_put_result_t res;
    memset(&res, 0, sizeof res);
    if (np) {
        int64_t y;
        unsigned mo, dd;
        st_civil_from_days(st_day_of(hi_ts), &y, &mo, &dd);
        snprintf(nkey, sizeof nkey, "%s%s/%s/%04lld-%02u-%02u/%016llx-%zu-%s-e%s.pack", r->o->lc->s3.prefix,
                 ps.tenant, ps.policy, (long long)y, mo, dd, (unsigned long long)first_id, np,
                 st_tier_name(ps.tier), q->id);
        if (strlen(nkey) > 255)
            snprintf(nkey, sizeof nkey, "%st-%016llx/%s/%04lld-%02u-%02u/%016llx-%zu-%s-e%s.pack",
                     r->o->lc->s3.prefix, (unsigned long long)st_hash64(ps.tenant, strlen(ps.tenant)),
                     ps.policy, (long long)y, mo, dd, (unsigned long long)first_id, np, st_tier_name(ps.tier),
                     q->id);
        st_buf_t footer = ST_BUF_INIT;
        rc = st_pack_footer_encode(&footer, ps.tenant, ps.policy, pe, np, off);
        if (rc == 0) rc = st_pwrite_full(nfd, footer.data, footer.len, off);
        uint64_t size = off + footer.len;
        st_buf_free(&footer);
        char ik[640];
        snprintf(ik, sizeof ik, "intent/%s", nkey);
        st_index_write_t *w;
        if (rc == 0 && (rc = st_index_write_begin(r->o->index, &w)) == 0) {
            rc = st_index_state_put(w, st_cstr(ik), ST_STR("{\"op\":\"erase\"}"));
            if (rc == 0)
                rc = st_index_write_commit(w);
            else
                st_index_write_abort(w);
        }
        st_s3_put_opts_t po;
        memset(&po, 0, sizeof po);
        po.storage_class = ps.tier == ST_TIER_STANDARD ? NULL : st_tier_name(ps.tier);
        if (rc == 0) rc = st_s3_put_object_fd(r->s3, bucket, nkey, nfd, 0, size, &po, &res, &err);
        if (rc == 0) {
            st_s3_object_info_t info;
            rc = st_s3_head_object(r->s3, bucket, nkey, res.version_id[0] ? res.version_id : NULL, &info,
                                   &err);
            if (rc == 0 && info.size != size) rc = ST_ECORRUPT;
        }
        ps.size = size;
    }
    close(nfd);
    if (rc < 0) {
        ST_LOG_ERROR("lifecycle",
                     "msg=\"delete request: object rewrite failed\" request=%s key=%s err=\"%s\" s3_code=%s",
                     q->id, key, st_s3_strerror(rc), err.code);
        free(pe);
        free(nrefs);
        free(fate);
        return rc;
    }
    st_lc_crash_point("erase-after-put");
    q->lines += removed;
    q->chunks_rewritten += rewritten;
    q->chunks_deleted += dropped;
    st_index_write_t *w;
    rc = st_index_write_begin(r->o->index, &w);
    for (size_t i = 0; rc == 0 && i < nc; i++) {
        const st_chunk_ref_t *ref = &r->by_path[first + i]->ref;
        if (fate[i] == 2) {
            rc = st_index_delete_chunk(w, q->tenant, ref);
            continue;
        }
        snprintf(nrefs[i].loc.path, sizeof nrefs[i].loc.path, "%s", nkey);
        rc = fate[i] == 1 ? st_index_replace_chunk(w, q->tenant, ref, &nrefs[i])
                          : st_index_update_chunk(w, q->tenant, &nrefs[i]);
    }
    char pk[640];
    snprintf(pk, sizeof pk, "pack/%s", key);
    if (rc == 0) rc = st_index_state_del(w, st_cstr(pk));
    if (rc == 0) {
        char tk[640];
        const char *ver = ps.version_id;
        snprintf(tk, sizeof tk, "todo/s3del/%s#%016llx", key,
                 (unsigned long long)st_hash64(ver, strlen(ver)));
        rc = st_index_state_put(w, st_cstr(tk), st_cstr(ver));
    }
    if (rc == 0 && np) {
        st_pack_state_t nps = ps;
        snprintf(nps.key, sizeof nps.key, "%s", nkey);
        snprintf(nps.version_id, sizeof nps.version_id, "%s", res.version_id);
        nps.crc32 = res.crc32;
        nps.min_ts = lo_ts;
        nps.max_ts = hi_ts;
        nps.chunks = np;
        nps.created = r->o->now_ns;
        st_buf_t sv = ST_BUF_INIT;
        st_pack_state_encode(&nps, &sv);
        char nk[640], ik[640];
        snprintf(nk, sizeof nk, "pack/%s", nkey);
        snprintf(ik, sizeof ik, "intent/%s", nkey);
        rc = st_index_state_put(w, st_cstr(nk), st_str(sv.data, sv.len));
        if (rc == 0) rc = st_index_state_del(w, st_cstr(ik));
        st_buf_free(&sv);
    }
    if (rc == 0)
        rc = st_audit_erasure_object(r, q->tenant, q->id, &ps, nkey, res.version_id, np ? ps.size : 0, removed,
                                     rewritten, dropped);
    if (rc == 0) rc = delreq_put(w, q);
    if (rc == 0)
        rc = st_index_write_commit(w);
    else
        st_index_write_abort(w);
    free(pe);
    free(nrefs);
    free(fate);
    if (rc < 0) {
        q->lines -= removed;
        q->chunks_rewritten -= rewritten;
        q->chunks_deleted -= dropped;
        return rc;
    }
    st_lc_progress(r, "delete request %s: rewrote %s (%llu lines removed)%s%s", q->id, key,
                   (unsigned long long)removed, np ? " into " : ", nothing left", nkey);
    return 0;
}

static int cmp_ref_key(const void *a, const void *b)
{
    const st_chunk_ref_t *x = a, *y = b;
    int c = strcmp(x->loc.path, y->loc.path);
    if (c) return c;
    return x->chunk_id < y->chunk_id ? -1 : x->chunk_id > y->chunk_id;
}

/* Carries out one request: every selected chunk, then "processed" (or still "processing" while
 * archived objects are being restored, or "refused"). */
static int erase_request(lc_run_t *r, delreq_t *q)
{
    st_delexpr_t *d;
    char err[512];
    int rc = st_delexpr_parse(st_cstr(q->query), &d, err, sizeof err);
    if (rc < 0) {
        strcpy(q->status, "refused");
        snprintf(q->message, sizeof q->message, "%s", err);
        return delreq_save(r->o->index, q);
    }
    refs_t t = {0};
    uint64_t streams;
    rc = select_chunks(r->o->lc, r->o->index, q->tenant, d, q->start, q->end, &t, &streams, err, sizeof err);
    if (rc == ST_EBADSTATE) {
        strcpy(q->status, "refused");
        snprintf(q->message, sizeof q->message, "%s", err);
        st_lc_progress(r, "delete request %s refused: %s", q->id, err);
        free(t.v);
        st_delexpr_free(d);
        return delreq_save(r->o->index, q);
    }
    if (rc < 0) {
        free(t.v);
        st_delexpr_free(d);
        return rc;
    }
    strcpy(q->status, "processing");
    q->total = t.n;
    q->done = 0;
    ST_TRY(delreq_save(r->o->index, q));
    st_lc_progress(r, "delete request %s (%s): %llu chunks of %llu streams to check", q->id, q->query,
                   (unsigned long long)t.n, (unsigned long long)streams);
    uint64_t waiting = 0, failed = 0;
    /* local chunks one by one */
    for (size_t i = 0; i < t.n; i++) {
        if (t.v[i].loc.kind != ST_LOC_LOCAL) continue;
        int erc = erase_local(r, q, d, &t.v[i]);
        if (erc < 0) {
            failed++;
            ST_LOG_ERROR("lifecycle",
                         "msg=\"delete request: chunk rewrite failed\" request=%s chunk=%016llx err=\"%s\"",
                         q->id, (unsigned long long)t.v[i].chunk_id, st_strerror(erc));
        } else {
            q->done++;
        }
    }
    /* chunks in S3: one rewrite per object */
    refs_t s3 = {0};
    for (size_t i = 0; i < t.n; i++)
        if (t.v[i].loc.kind == ST_LOC_S3 && ref_cb(&s3, &t.v[i]) < 0) rc = -ENOMEM;
    st_qsort(s3.v, s3.n, sizeof *s3.v, cmp_ref_key);
    for (size_t i = 0; rc == 0 && i < s3.n;) {
        size_t j = i;
        while (j < s3.n && strcmp(s3.v[j].loc.path, s3.v[i].loc.path) == 0) j++;
        if (r->s3 == NULL) {
            waiting += j - i;
        } else {
            int erc = erase_object(r, q, d, s3.v[i].loc.path, &t);
            if (erc == 1)
                waiting += j - i;
            else if (erc == ST_EBADSTATE) {
                strcpy(q->status, "refused");
                st_lc_progress(r, "delete request %s refused: %s", q->id, q->message);
                break;
            } else if (erc < 0)
                failed += j - i;
            else
                q->done += j - i;
        }
        i = j;
    }
    free(s3.v);
    free(t.v);
    st_delexpr_free(d);
    if (strcmp(q->status, "refused") != 0 && failed == 0 && waiting == 0) {
        strcpy(q->status, "processed");
        q->message[0] = '\0';
        st_lc_progress(r,
                       "delete request %s processed: %llu lines removed, %llu chunks rewritten, %llu deleted",
                       q->id, (unsigned long long)q->lines, (unsigned long long)q->chunks_rewritten,
                       (unsigned long long)q->chunks_deleted);
    } else if (waiting) {
        snprintf(q->message, sizeof q->message, "waiting for the restore of %llu archived chunks",
                 (unsigned long long)waiting);
    }
    if (failed) {
        r->rep->failures++;
        st_counter_inc(r->m_fail);
    }
    return delreq_save(r->o->index, q);
}

int st_lc_erase_run(lc_run_t *r)
{
    const st_config_t *cfg = r->o->cfg;
    if (strcmp(cfg->limits_config.deletion_mode, "filter-and-delete") != 0) return 0;
    delreqs_t a = {0};
    int rc = load_requests(r->o->index, NULL, &a);
    /* due once it can no longer be cancelled and every line it covers has left the ingester's
     * memory (a head is cut at max_chunk_age) */
    int64_t wait = cfg->compactor.delete_request_cancel_period_ns;
    int64_t flushed = cfg->ingester.max_chunk_age_ns + cfg->ingester.flush_check_period_ns;
    if (flushed > wait) wait = flushed;
    for (size_t i = 0; rc == 0 && i < a.n; i++) {
        delreq_t *q = &a.v[i];
        if (strcmp(q->status, "received") != 0 && strcmp(q->status, "processing") != 0) continue;
        if (q->created + wait > r->o->now_ns) continue;
        if (r->o->dry_run) {
            if (r->o->plan) fprintf(r->o->plan, "erase    %s %s %s\n", q->tenant, q->id, q->query);
            continue;
        }
        int erc = erase_request(r, q);
        st_audit_erasure_outcome(q->tenant, q->id, q->query, q->start, q->end, q->status, q->message, q->lines,
                                 q->chunks_deleted, q->chunks_rewritten, r->o->now_ns);
        if (erc < 0) {
            r->rep->failures++;
            st_counter_inc(r->m_fail);
        }
    }
    delreqs_free(&a);
    return rc;
}

int st_lc_delete_preview(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t query,
                         int64_t start, int64_t end, st_buf_t *out, char *err, size_t errsz)
{
    st_delexpr_t *d;
    int rc = st_delexpr_parse(query, &d, err, errsz);
    if (rc < 0) return rc;
    refs_t t = {0};
    uint64_t streams = 0;
    char why[512] = "";
    rc = select_chunks(lc, ix, tenant, d, start, end, &t, &streams, why, sizeof why);
    if (rc < 0 && rc != ST_EBADSTATE) {
        free(t.v);
        st_delexpr_free(d);
        return rc;
    }
    uint64_t entries = 0, bytes = 0, local = 0, s3 = 0, archived = 0;
    for (size_t i = 0; i < t.n; i++) {
        entries += t.v[i].entries;
        bytes += t.v[i].raw_bytes;
        if (t.v[i].loc.kind == ST_LOC_LOCAL)
            local++;
        else if (st_tier_archived((st_tier_t)t.v[i].storage_class))
            archived++;
        else
            s3++;
    }
    st_buf_printf(out, "{\"dry_run\":true,\"query\":");
    st_json_put_str(out, query);
    st_buf_printf(
        out,
        ",\"streams\":%llu,\"chunks\":%zu,\"chunks_local\":%llu,\"chunks_s3\":%llu,\"chunks_archived\":%llu,"
        "\"entries_in_chunks\":%llu,\"bytes_in_chunks\":%llu,\"line_filters\":%s,\"refused\":",
        (unsigned long long)streams, t.n, (unsigned long long)local, (unsigned long long)s3,
        (unsigned long long)archived, (unsigned long long)entries, (unsigned long long)bytes,
        st_delexpr_has_filters(d) ? "true" : "false");
    if (why[0])
        st_json_put_cstr(out, why);
    else
        st_buf_puts(out, "null");
    st_buf_putc(out, '}');
    free(t.v);
    st_delexpr_free(d);
    return 0;
}
