/* verify.c: `strata audit verify`: recomputes the chain from the sealed copies of the segments (the
 * local file where a segment is not sealed yet), compares local and sealed copies, checks every seal
 * record against the bytes it seals, and checks stored data against the checksums recorded for it:
 * local chunks (SHA-256 from their chunk.write record, CRC-32 from the index) and S3 objects (CRC-32 of
 * the whole object, SHA-256 of each chunk inside; archived ones: existence, size and class), all of them
 * or a random sample sized for a stated confidence. Every finding names its place. */
#include "audit/audit_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "lifecycle/lifecycle_int.h"
#include "store/store.h"

#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

size_t st_audit_sample_size(size_t n, double confidence, double min_corrupt)
{
    if (n == 0) return 0;
    if (!(confidence > 0 && confidence < 1) || !(min_corrupt > 0 && min_corrupt <= 1)) return n;
    size_t k = (size_t)ceil(min_corrupt * (double)n);
    if (k < 1) k = 1;
    double miss = 1.0;
    for (size_t m = 1; m <= n; m++) {
        if (n - k < m) return m;
        miss *= (double)(n - k - (m - 1)) / (double)(n - (m - 1));
        if (miss <= 1.0 - confidence) return m;
    }
    return n;
}

/* ---- findings ---------------------------------------------------------------------------------------- */

typedef struct {
    st_buf_t json; /* comma-separated objects */
    st_buf_t text;
    size_t problems, warnings;
} findings_t;

static void finding(findings_t *f, bool problem, const char *kind, uint64_t segment, uint64_t line,
                    uint64_t seq, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));
static void finding(findings_t *f, bool problem, const char *kind, uint64_t segment, uint64_t line,
                    uint64_t seq, const char *key, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (problem)
        f->problems++;
    else
        f->warnings++;
    if (f->json.len) st_buf_putc(&f->json, ',');
    st_buf_printf(&f->json, "{\"severity\":\"%s\",\"kind\":\"%s\"", problem ? "problem" : "warning", kind);
    if (segment) st_buf_printf(&f->json, ",\"segment\":%llu", (unsigned long long)segment);
    if (line) st_buf_printf(&f->json, ",\"line\":%llu", (unsigned long long)line);
    if (seq) st_buf_printf(&f->json, ",\"seq\":%llu", (unsigned long long)seq);
    if (key) {
        st_buf_puts(&f->json, ",\"key\":");
        st_json_put_cstr(&f->json, key);
    }
    st_buf_puts(&f->json, ",\"message\":");
    st_json_put_cstr(&f->json, msg);
    st_buf_putc(&f->json, '}');
    st_buf_printf(&f->text, "%s %s", problem ? "PROBLEM" : "warning", kind);
    if (segment) st_buf_printf(&f->text, " segment %llu", (unsigned long long)segment);
    if (line) st_buf_printf(&f->text, " line %llu", (unsigned long long)line);
    if (seq) st_buf_printf(&f->text, " seq %llu", (unsigned long long)seq);
    if (key) st_buf_printf(&f->text, " %s", key);
    st_buf_printf(&f->text, ": %s\n", msg);
}

/* ---- what the trail says ------------------------------------------------------------------------------ */

typedef struct {
    uint64_t id, seq;
    char sha[ST_AUDIT_HASH_HEX];
} chunk_sum_t;

typedef struct {
    char key[512];
    char version[160];
    uint64_t seq;
    uint32_t crc32;
} obj_rec_t;

typedef struct {
    uint64_t segment, seq;
    char sha[ST_AUDIT_HASH_HEX];
    char stored[8];
    char key[512];
    char version[160];
} seal_t;

typedef struct {
    chunk_sum_t *chunks;
    size_t nchunks, capchunks;
    obj_rec_t *objs;
    size_t nobjs, capobjs;
    seal_t *seals;
    size_t nseals, capseals;
    uint64_t first_seq;
} trail_t;

static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    void *p = realloc(*v, c * sz);
    if (p == NULL) return -ENOMEM;
    *v = p;
    *cap = c;
    return 0;
}

static int add_chunk_sum(trail_t *t, const char *hexid, const char *sha, uint64_t seq)
{
    if (strlen(sha) != 64) return 0;
    ST_TRY(grow((void **)&t->chunks, &t->capchunks, t->nchunks, sizeof *t->chunks));
    chunk_sum_t *c = &t->chunks[t->nchunks++];
    c->id = strtoull(hexid, NULL, 16);
    c->seq = seq;
    memcpy(c->sha, sha, sizeof c->sha);
    return 0;
}

static int add_obj(trail_t *t, const char *key, const char *version, uint32_t crc, uint64_t seq)
{
    ST_TRY(grow((void **)&t->objs, &t->capobjs, t->nobjs, sizeof *t->objs));
    obj_rec_t *o = &t->objs[t->nobjs++];
    snprintf(o->key, sizeof o->key, "%s", key);
    snprintf(o->version, sizeof o->version, "%s", version);
    o->crc32 = crc;
    o->seq = seq;
    return 0;
}

static int collect_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    trail_t *t = arg;
    if (t->first_seq == 0) t->first_seq = rec->seq;
    char id[40], sha[80], key[512], ver[160];
    int64_t v;
    if (strcmp(rec->type, "chunk.write") == 0) {
        if (st_audit_json_str(rec->details, "chunk_id", id, sizeof id) == 0 &&
            st_audit_json_str(rec->details, "sha256", sha, sizeof sha) == 0)
            return add_chunk_sum(t, id, sha, rec->seq);
    } else if (strcmp(rec->type, "erasure.chunk") == 0) {
        st_str_t nw;
        if (st_audit_json_get(rec->details, "new", &nw) == 0 && nw.n && nw.p[0] == '{' &&
            st_audit_json_str(nw, "chunk_id", id, sizeof id) == 0 &&
            st_audit_json_str(nw, "sha256", sha, sizeof sha) == 0)
            return add_chunk_sum(t, id, sha, rec->seq);
    } else if (strcmp(rec->type, "object.upload") == 0 || strcmp(rec->type, "object.repack") == 0 ||
               strcmp(rec->type, "object.transition") == 0) {
        if (st_audit_json_str(rec->details, "key", key, sizeof key) == 0 &&
            st_audit_json_str(rec->details, "version_id", ver, sizeof ver) == 0 &&
            st_audit_json_i64(rec->details, "crc32", &v) == 0)
            return add_obj(t, key, ver, (uint32_t)v, rec->seq);
    } else if (strcmp(rec->type, "erasure.object") == 0) {
        st_str_t o;
        if (st_audit_json_str(rec->details, "new_key", key, sizeof key) == 0 && key[0] &&
            st_audit_json_str(rec->details, "new_version_id", ver, sizeof ver) == 0 &&
            st_audit_json_get(rec->details, "object", &o) == 0)
            return add_obj(t, key, ver, 0, rec->seq); /* the rewritten object's CRC is the index's */
    } else if (strcmp(rec->type, "seal") == 0) {
        ST_TRY(grow((void **)&t->seals, &t->capseals, t->nseals, sizeof *t->seals));
        seal_t *s = &t->seals[t->nseals];
        memset(s, 0, sizeof *s);
        s->seq = rec->seq;
        if (st_audit_json_i64(rec->details, "segment", &v) == 0) s->segment = (uint64_t)v;
        st_audit_json_str(rec->details, "sha256", s->sha, sizeof s->sha);
        st_audit_json_str(rec->details, "stored", s->stored, sizeof s->stored);
        st_audit_json_str(rec->details, "key", s->key, sizeof s->key);
        st_audit_json_str(rec->details, "version_id", s->version, sizeof s->version);
        t->nseals++;
    }
    return 0;
}

static int cmp_chunk_sum(const void *a, const void *b)
{
    const chunk_sum_t *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The latest recorded SHA-256 of a chunk (t->chunks sorted), or NULL. */
static const chunk_sum_t *chunk_sum(const trail_t *t, uint64_t id)
{
    size_t lo = 0, hi = t->nchunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t->chunks[mid].id <= id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo > 0 && t->chunks[lo - 1].id == id ? &t->chunks[lo - 1] : NULL;
}

static const obj_rec_t *obj_rec(const trail_t *t, const char *key, const char *version)
{
    const obj_rec_t *best = NULL;
    for (size_t i = 0; i < t->nobjs; i++)
        if (strcmp(t->objs[i].key, key) == 0 && strcmp(t->objs[i].version, version) == 0) best = &t->objs[i];
    return best;
}

/* ---- segments: local and sealed copies ---------------------------------------------------------------- */

static int read_file(const char *path, st_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    char tmp[65536];
    int rc = 0;
    for (;;) {
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = -errno;
        if (k <= 0) break;
        if ((rc = st_buf_append(out, tmp, (size_t)k)) < 0) break;
    }
    close(fd);
    return rc;
}

typedef struct {
    const char *prefix;
    st_u64vec_t *segs;
} list_ctx_t;

static int list_cb(const st_s3_list_entry_t *e, void *arg)
{
    list_ctx_t *c = arg;
    size_t pl = strlen(c->prefix);
    const char *n = e->key + pl;
    if (strncmp(e->key, c->prefix, pl) != 0 || strlen(n) != 22 || strcmp(n + 16, ".jsonl") != 0 ||
        strspn(n, "0123456789abcdef") != 16)
        return 0;
    return st_u64vec_push(c->segs, strtoull(n, NULL, 16));
}

/* Line number and seq of the first difference between two segment copies. */
static void first_difference(st_str_t a, st_str_t b, uint64_t *line, uint64_t *seq, char *what, size_t cap)
{
    size_t i = 0, ln = 1, start = 0;
    while (i < a.n && i < b.n && a.p[i] == b.p[i]) {
        if (a.p[i] == '\n') {
            ln++;
            start = i + 1;
        }
        i++;
    }
    *line = ln;
    *seq = 0;
    const char *ea = memchr(a.p + start, '\n', a.n - start), *eb = memchr(b.p + start, '\n', b.n - start);
    st_str_t la = st_str(a.p + start, ea ? (size_t)(ea - (a.p + start)) : a.n - start);
    st_str_t lb = st_str(b.p + start, eb ? (size_t)(eb - (b.p + start)) : b.n - start);
    st_audit_rec_t r;
    char why[64];
    if (st_audit_record_parse(lb, &r, why, sizeof why) == 0)
        *seq = r.seq;
    else if (st_audit_record_parse(la, &r, why, sizeof why) == 0)
        *seq = r.seq;
    if (start >= a.n)
        snprintf(what, cap, "the local copy ends here; the sealed copy has more records");
    else if (start >= b.n)
        snprintf(what, cap, "the sealed copy ends here; the local copy has records after it");
    else {
        size_t ra = (size_t)(la.p + la.n - (a.p + i)), rb = (size_t)(lb.p + lb.n - (b.p + i));
        snprintf(what, cap, "byte %zu of the line differs: local \"%.*s\" vs sealed \"%.*s\"", i - start,
                 (int)(ra < 60 ? ra : 60), a.p + i, (int)(rb < 60 ? rb : 60), b.p + i);
    }
}

/* ---- stored objects ------------------------------------------------------------------------------------ */

typedef struct {
    st_chunk_ref_t *v;
    char (*tenant)[152];
    size_t n, cap;
} refs_t;

static int ref_cb(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    (void)day;
    refs_t *r = arg;
    if (r->n == r->cap) {
        size_t c = r->cap ? r->cap * 2 : 1024;
        st_chunk_ref_t *v = realloc(r->v, c * sizeof *v);
        if (v == NULL) return -ENOMEM;
        r->v = v;
        char(*t)[152] = realloc(r->tenant, c * sizeof *t);
        if (t == NULL) return -ENOMEM;
        r->tenant = t;
        r->cap = c;
    }
    r->v[r->n] = *ref;
    snprintf(r->tenant[r->n], 152, "%s", tenant);
    r->n++;
    return 0;
}

typedef struct {
    st_pack_state_t *v;
    size_t n, cap;
} packs_t;

static int pack_cb(void *arg, st_str_t key, st_str_t value)
{
    (void)key;
    packs_t *p = arg;
    ST_TRY(grow((void **)&p->v, &p->cap, p->n, sizeof *p->v));
    if (st_pack_state_decode(value, &p->v[p->n]) == 0) p->n++;
    return 0;
}

static int cmp_ref_id(const void *a, const void *b)
{
    uint64_t x = ((const st_chunk_ref_t *)a)->chunk_id, y = ((const st_chunk_ref_t *)b)->chunk_id;
    return x < y ? -1 : x > y;
}

/* SHA-256 and CRC-32 of a byte range of fd. */
static int hash_range(int fd, uint64_t off, uint64_t len, char sha[ST_AUDIT_HASH_HEX], uint32_t *crc)
{
    char *buf = malloc(len ? len : 1);
    if (buf == NULL) return -ENOMEM;
    int rc = st_pread_full(fd, buf, len, off);
    if (rc == 0) {
        if (sha) st_audit_sha256_hex(buf, len, sha);
        if (crc) *crc = st_crc32(0, buf, len);
    }
    free(buf);
    return rc;
}

typedef struct {
    const st_config_t *cfg;
    const st_lc_config_t *lc;
    st_s3_client_t *s3;
    const trail_t *t;
    findings_t *f;
    refs_t *refs; /* every chunk once, sorted by id */
    uint64_t checked_chunks, checked_objects, archived, unaudited_chunks, unaudited_objects;
} ocheck_t;

static void check_chunk_bytes(ocheck_t *c, const st_chunk_ref_t *ref, int fd, uint64_t off, const char *where)
{
    char sha[ST_AUDIT_HASH_HEX];
    uint32_t crc;
    int rc = hash_range(fd, off, ref->loc.length, sha, &crc);
    char id[20];
    snprintf(id, sizeof id, "%016llx", (unsigned long long)ref->chunk_id);
    if (rc < 0) {
        finding(c->f, true, "chunk", 0, 0, 0, where,
                "chunk %s at offset %llu (%llu bytes): cannot read it: %s", id, (unsigned long long)off,
                (unsigned long long)ref->loc.length,
                rc == ST_ECORRUPT ? "the file or object is shorter than recorded" : st_strerror(rc));
        return;
    }
    c->checked_chunks++;
    if (crc != ref->crc32)
        finding(c->f, true, "chunk", 0, 0, 0, where,
                "chunk %s at offset %llu: CRC-32 %08x, the index records %08x (the stored bytes changed)", id,
                (unsigned long long)off, crc, ref->crc32);
    const chunk_sum_t *s = chunk_sum(c->t, ref->chunk_id);
    if (s == NULL)
        c->unaudited_chunks++;
    else if (strcmp(s->sha, sha) != 0)
        finding(c->f, true, "chunk", 0, 0, s->seq, where,
                "chunk %s at offset %llu: SHA-256 %.16s... differs from %.16s... recorded at seq %llu", id,
                (unsigned long long)off, sha, s->sha, (unsigned long long)s->seq);
}

static void check_local(ocheck_t *c, const st_chunk_ref_t *ref)
{
    char path[2400];
    snprintf(path, sizeof path, "%s/%s", c->cfg->storage_config.filesystem.directory, ref->loc.path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        finding(c->f, true, "chunk", 0, 0, 0, ref->loc.path, "chunk %016llx: local file missing (%s)",
                (unsigned long long)ref->chunk_id, strerror(errno));
        return;
    }
    check_chunk_bytes(c, ref, fd, ref->loc.offset, ref->loc.path);
    close(fd);
}

static void check_object(ocheck_t *c, const st_pack_state_t *ps, bool *found)
{
    const char *bucket = c->lc->s3.bucket;
    st_s3_object_info_t info;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc =
        st_s3_head_object(c->s3, bucket, ps->key, ps->version_id[0] ? ps->version_id : NULL, &info, &err);
    c->checked_objects++;
    const obj_rec_t *orc = obj_rec(c->t, ps->key, ps->version_id);
    if (orc == NULL) c->unaudited_objects++;
    if (rc == ST_ENOTFOUND) {
        finding(c->f, true, "object", 0, 0, 0, ps->key, "missing from s3://%s (version %s)", bucket,
                ps->version_id[0] ? ps->version_id : "latest");
        return;
    }
    if (rc < 0) {
        finding(c->f, true, "object", 0, 0, 0, ps->key, "cannot be checked: %s %s", st_s3_strerror(rc),
                err.code);
        return;
    }
    if (info.size != ps->size)
        finding(c->f, true, "object", 0, 0, 0, ps->key, "size %llu, recorded %llu",
                (unsigned long long)info.size, (unsigned long long)ps->size);
    if (ps->version_id[0]) {
        /* readers get the latest version: it must be the recorded one */
        st_s3_object_info_t latest;
        int lrc = st_s3_head_object(c->s3, bucket, ps->key, NULL, &latest, NULL);
        if (lrc == ST_ENOTFOUND)
            finding(c->f, true, "object", 0, 0, 0, ps->key,
                    "the recorded version %s exists, but the key reads as deleted (a delete marker hides it)",
                    ps->version_id);
        else if (lrc == 0 && strcmp(latest.version_id, ps->version_id) != 0)
            finding(c->f, true, "object", 0, 0, 0, ps->key,
                    "a newer version %s (%llu bytes) replaced the recorded version %s", latest.version_id,
                    (unsigned long long)latest.size, ps->version_id);
    }
    if (strcmp(info.storage_class, st_audit_tier_name(ps->tier)) != 0)
        finding(c->f, true, "object", 0, 0, 0, ps->key, "storage class %s, recorded %s", info.storage_class,
                st_audit_tier_name(ps->tier));
    bool archived = st_tier_archived(ps->tier) && !(info.restore.present && !info.restore.ongoing);
    if (archived) {
        c->archived++;
        return;
    }
    char tmpl[] = "/tmp/strata-verify-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        finding(c->f, true, "object", 0, 0, 0, ps->key, "cannot be read into a temporary file: %s",
                strerror(errno));
        return;
    }
    unlink(tmpl);
    st_s3_get_opts_t go = {.version_id = ps->version_id[0] ? ps->version_id : NULL};
    uint64_t got = 0;
    rc = st_s3_get_object_fd(c->s3, bucket, ps->key, &go, fd, 0, &got, NULL, &err);
    if (rc < 0) {
        finding(c->f, true, "object", 0, 0, 0, ps->key, "cannot be read: %s %s", st_s3_strerror(rc),
                err.code);
        close(fd);
        return;
    }
    uint32_t crc;
    if (hash_range(fd, 0, got, NULL, &crc) == 0) {
        if (crc != ps->crc32)
            finding(c->f, true, "object", 0, 0, 0, ps->key, "CRC-32 %08x, the index records %08x", crc,
                    ps->crc32);
        if (orc && orc->crc32 && crc != orc->crc32)
            finding(c->f, true, "object", 0, 0, orc->seq, ps->key,
                    "CRC-32 %08x differs from %08x recorded at seq %llu", crc, orc->crc32,
                    (unsigned long long)orc->seq);
    }
    /* every chunk the index places in the object */
    for (size_t i = 0; i < c->refs->n; i++) {
        const st_chunk_ref_t *ref = &c->refs->v[i];
        if (ref->loc.kind != ST_LOC_S3 || strcmp(ref->loc.path, ps->key) != 0) continue;
        *found = true;
        check_chunk_bytes(c, ref, fd, ref->loc.offset, ps->key);
    }
    close(fd);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* ---- the whole verification -----------------------------------------------------------------------------
 */

int st_audit_verify(const st_config_t *cfg, st_index_t *ix, const st_audit_verify_opts_t *o, st_buf_t *json,
                    st_buf_t *text)
{
    st_lc_config_t *lc = NULL;
    char err[4096];
    int rc = st_lifecycle_config_parse(cfg, &lc, err, sizeof err);
    if (rc < 0) return rc;
    findings_t f = {ST_BUF_INIT, ST_BUF_INIT, 0, 0};
    trail_t t;
    memset(&t, 0, sizeof t);
    char(*shas)[ST_AUDIT_HASH_HEX] = NULL;
    bool *is_sealed_copy = NULL;
    refs_t refs = {0};
    packs_t packs = {0};
    ocheck_t oc = {cfg, lc, NULL, &t, &f, &refs, 0, 0, 0, 0, 0};
    size_t population = 0, nlocal = 0, want = 0;
    uint64_t seed = o->seed;
    st_audit_chain_t chain;
    memset(&chain, 0, sizeof chain);
    st_audit_break_t brk;
    memset(&brk, 0, sizeof brk);
    bool broken = false;
    char dir[1100], prefix[600] = "";
    st_audit_dir_of(cfg, lc, dir, sizeof dir);
    st_s3_client_t *s3 = NULL;
    if (lc->s3.bucket[0] && st_lc_s3_client(lc, &s3) < 0) s3 = NULL;
    snprintf(prefix, sizeof prefix, "%saudit/", lc->s3.prefix);

    /* segments: local files and sealed copies */
    st_u64vec_t local = ST_U64VEC_INIT, sealed = ST_U64VEC_INIT, all = ST_U64VEC_INIT;
    rc = st_audit_list_segments(dir, &local);
    if (rc == 0 && s3) {
        list_ctx_t lcx = {prefix, &sealed};
        st_s3_list_opts_t lo = {.prefix = prefix};
        st_s3_error_t e;
        memset(&e, 0, sizeof e);
        int lrc = st_s3_list_all(s3, lc->s3.bucket, &lo, list_cb, &lcx, &e);
        if (lrc < 0)
            finding(&f, true, "seal", 0, 0, 0, prefix, "cannot list the sealed segments in s3://%s: %s %s",
                    lc->s3.bucket, st_s3_strerror(lrc), e.code);
        st_u64vec_sort_unique(&sealed);
    }
    for (size_t i = 0; rc == 0 && i < local.n; i++) rc = st_u64vec_push(&all, local.v[i]);
    for (size_t i = 0; rc == 0 && i < sealed.n; i++) rc = st_u64vec_push(&all, sealed.v[i]);
    st_u64vec_sort_unique(&all);
    if (rc < 0) goto out;
    if (all.n == 0)
        finding(&f, true, "trail", 0, 0, 0, NULL, "no audit trail in %s%s%s", dir, s3 ? " or s3://" : "",
                s3 ? lc->s3.bucket : "");

    uint64_t last = all.n ? all.v[all.n - 1] : 0;
    if (last > all.n + 1) last = all.n + 1; /* numbers with gaps: the chain stops at the first missing one */
    shas = calloc(last + 1, sizeof *shas);
    is_sealed_copy = calloc(last + 1, sizeof *is_sealed_copy);
    if ((last && shas == NULL) || (last && is_sealed_copy == NULL)) {
        rc = -ENOMEM;
        goto out;
    }
    st_buf_t lb = ST_BUF_INIT, sb = ST_BUF_INIT;
    for (uint64_t k = 1; k <= last && !broken; k++) {
        bool has_local = st_u64vec_contains(&local, k), has_sealed = st_u64vec_contains(&sealed, k);
        if (!has_local && !has_sealed) {
            finding(&f, true, "chain", k, 0, 0, NULL,
                    "segment %llu is missing (locally and sealed); segments 1..%llu "
                    "exist otherwise",
                    (unsigned long long)k, (unsigned long long)last);
            broken = true;
            break;
        }
        st_buf_reset(&lb);
        st_buf_reset(&sb);
        if (has_local) {
            char path[1200];
            st_audit_segment_path(dir, k, path, sizeof path);
            if ((rc = read_file(path, &lb)) < 0) {
                finding(&f, true, "local_copy", k, 0, 0, path, "cannot read: %s", st_strerror(rc));
                rc = 0;
                has_local = false;
            }
        }
        if (has_sealed) {
            char key[700];
            st_audit_seal_key(lc->s3.prefix, k, key, sizeof key);
            st_s3_error_t e;
            memset(&e, 0, sizeof e);
            int grc = st_s3_get_object(s3, lc->s3.bucket, key, NULL, &sb, NULL, &e);
            if (grc < 0) {
                finding(&f, true, "seal", k, 0, 0, key, "cannot read the sealed copy: %s %s",
                        st_s3_strerror(grc), e.code);
                has_sealed = false;
            }
        }
        st_str_t ls = st_str(lb.data ? lb.data : "", lb.len), ss = st_str(sb.data ? sb.data : "", sb.len);
        if (has_local && has_sealed && !st_str_eq(ls, ss)) {
            uint64_t line, seq;
            char what[300];
            first_difference(ls, ss, &line, &seq, what, sizeof what);
            finding(&f, true, "local_copy", k, line, seq, NULL,
                    "the local copy differs from the sealed copy (the sealed copy is used): %s", what);
        } else if (!has_local && has_sealed) {
            finding(&f, false, "local_copy", k, 0, 0, NULL, "no local copy (the sealed copy is used)");
        }
        st_str_t use = has_sealed ? ss : ls;
        is_sealed_copy[k] = has_sealed;
        if (!has_local && !has_sealed) {
            broken = true;
            break;
        }
        st_audit_sha256_hex(use.p, use.n, shas[k]);
        if (st_audit_chain_segment(&chain, k, use, collect_cb, &t, &brk) < 0) {
            finding(&f, true, "chain", brk.segment, brk.line, brk.seq, NULL, "%s (byte offset %llu, %s copy)",
                    brk.what, (unsigned long long)brk.offset, has_sealed ? "sealed" : "local");
            broken = true;
        }
    }
    st_buf_free(&lb);
    st_buf_free(&sb);

    /* seals against what they seal */
    bool *seal_seen = calloc(last + 2, sizeof *seal_seen);
    for (size_t i = 0; seal_seen && i < t.nseals; i++) {
        const seal_t *s = &t.seals[i];
        if (s->segment == 0 || s->segment > last) {
            finding(&f, true, "seal", s->segment, 0, s->seq, NULL,
                    "seal record for a segment that does not exist");
            continue;
        }
        seal_seen[s->segment] = true;
        if (shas[s->segment][0] && strcmp(shas[s->segment], s->sha) != 0)
            finding(&f, true, "seal", s->segment, 0, s->seq, NULL,
                    "segment %llu hashes to %.16s..., its seal record (seq %llu) says %.16s...: changed "
                    "after sealing",
                    (unsigned long long)s->segment, shas[s->segment], (unsigned long long)s->seq, s->sha);
        if (strcmp(s->stored, "s3") == 0) {
            if (s3 == NULL) {
                finding(&f, false, "seal", s->segment, 0, s->seq, s->key,
                        "sealed to object storage, but no lifecycle.s3 is configured here to check it");
            } else if (!st_u64vec_contains(&sealed, s->segment)) {
                finding(&f, true, "seal", s->segment, 0, s->seq, s->key,
                        "the sealed copy is missing from s3://%s", lc->s3.bucket);
            } else if (s->version[0]) {
                /* the version the seal recorded must hold these bytes (a newer version is an overwrite) */
                st_buf_t vb = ST_BUF_INIT;
                st_s3_get_opts_t go = {.version_id = s->version};
                int grc = st_s3_get_object(s3, lc->s3.bucket, s->key, &go, &vb, NULL, NULL);
                char vsha[ST_AUDIT_HASH_HEX] = "";
                if (grc == 0) st_audit_sha256_hex(vb.data ? vb.data : "", vb.len, vsha);
                if (grc < 0)
                    finding(&f, true, "seal", s->segment, 0, s->seq, s->key,
                            "the sealed version %s cannot be read: %s", s->version, st_s3_strerror(grc));
                else if (strcmp(vsha, s->sha) != 0)
                    finding(&f, true, "seal", s->segment, 0, s->seq, s->key,
                            "the sealed version %s does not hold the sealed bytes", s->version);
                else if (is_sealed_copy[s->segment] && strcmp(shas[s->segment], s->sha) != 0)
                    finding(&f, true, "seal", s->segment, 0, s->seq, s->key,
                            "a newer version replaced the sealed copy (the sealed version %s is intact)",
                            s->version);
                st_buf_free(&vb);
            }
        } else if (s3) {
            finding(&f, false, "seal", s->segment, 0, s->seq, NULL,
                    "sealed locally only (no object storage then)");
        }
    }
    for (uint64_t k = 1; seal_seen && k < last && !broken; k++)
        if (!seal_seen[k])
            finding(&f, false, "seal", k, 0, 0, NULL, "segment %llu is closed but not sealed yet",
                    (unsigned long long)k);
    free(seal_seen);
    st_qsort(t.chunks, t.nchunks, sizeof *t.chunks, cmp_chunk_sum);

    /* stored objects */
    oc.s3 = s3;
    if (!o->skip_objects && ix) {
        st_index_read_t *rd;
        if ((rc = st_index_read_begin(ix, &rd)) == 0) {
            rc = st_index_scan_chunks(rd, ref_cb, &refs);
            if (rc == 0) rc = st_index_state_scan(rd, ST_STR("pack/"), pack_cb, &packs);
            st_index_read_end(rd);
        }
        if (rc < 0) goto objs_done;
        st_qsort(refs.v, refs.n, sizeof *refs.v, cmp_ref_id); /* (tenants are not needed past here) */
        size_t w = 0;
        for (size_t i = 0; i < refs.n; i++)
            if (w == 0 || refs.v[i].chunk_id != refs.v[w - 1].chunk_id) refs.v[w++] = refs.v[i];
        refs.n = w;
        /* units: local chunks and S3 objects */
        for (size_t i = 0; i < refs.n; i++) nlocal += refs.v[i].loc.kind == ST_LOC_LOCAL;
        population = nlocal + packs.n;
        want = o->all      ? population
               : o->sample ? (o->sample < population ? o->sample : population)
                           : st_audit_sample_size(population, o->confidence > 0 ? o->confidence : 0.99,
                                                  o->min_corrupt > 0 ? o->min_corrupt : 0.01);
        if (seed == 0 && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
            seed = (uint64_t)st_now_ns();
        size_t *units = malloc((population ? population : 1) * sizeof *units);
        if (units == NULL) {
            rc = -ENOMEM;
            goto objs_done;
        }
        for (size_t i = 0; i < population; i++) units[i] = i;
        uint64_t s = seed;
        for (size_t i = 0; i < want; i++) { /* partial Fisher-Yates */
            size_t j = i + (size_t)(splitmix(&s) % (population - i));
            size_t tmp = units[i];
            units[i] = units[j];
            units[j] = tmp;
        }
        /* local units are numbered in chunk order, then the objects */
        size_t *locals = malloc((nlocal ? nlocal : 1) * sizeof *locals);
        if (locals == NULL) {
            free(units);
            rc = -ENOMEM;
            goto objs_done;
        }
        for (size_t i = 0, k = 0; i < refs.n; i++)
            if (refs.v[i].loc.kind == ST_LOC_LOCAL) locals[k++] = i;
        for (size_t i = 0; i < want; i++) {
            size_t u = units[i];
            if (u < nlocal) {
                check_local(&oc, &refs.v[locals[u]]);
            } else if (s3 == NULL) {
                finding(&f, true, "object", 0, 0, 0, packs.v[u - nlocal].key,
                        "cannot be checked: no lifecycle.s3");
            } else {
                bool found = false;
                check_object(&oc, &packs.v[u - nlocal], &found);
            }
        }
        free(locals);
        free(units);
    }
objs_done:
    if (rc < 0) goto out;
    if (oc.unaudited_objects)
        finding(&f, false, "coverage", 0, 0, 0, NULL,
                "%llu checked object(s) have no upload/repack/transition record for their version (written "
                "before "
                "the trail existed, or a record lost in a crash)",
                (unsigned long long)oc.unaudited_objects);
    if (oc.unaudited_chunks)
        finding(&f, false, "coverage", 0, 0, 0, NULL,
                "%llu checked chunk(s) have no chunk.write record (written before the trail existed); their "
                "CRC-32 "
                "was checked against the index",
                (unsigned long long)oc.unaudited_chunks);

    /* the result */
    if (json) {
        st_buf_printf(json, "{\"ok\":%s,\"problems\":%zu,\"warnings\":%zu,\"trail\":{\"dir\":",
                      f.problems ? "false" : "true", f.problems, f.warnings);
        st_json_put_cstr(json, dir);
        st_buf_printf(
            json,
            ",\"segments\":%zu,\"local_segments\":%zu,\"sealed_segments\":%zu,\"records\":%llu,"
            "\"first_seq\":%llu,\"last_seq\":%llu,\"last_hash\":\"%s\",\"seal_records\":%zu,\"bucket\":",
            all.n, local.n, sealed.n, (unsigned long long)chain.records, (unsigned long long)t.first_seq,
            (unsigned long long)(chain.next_seq ? chain.next_seq - 1 : 0), chain.last_hash, t.nseals);
        st_json_put_cstr(json, s3 ? lc->s3.bucket : "");
        st_buf_puts(json, ",\"prefix\":");
        st_json_put_cstr(json, s3 ? prefix : "");
        st_buf_printf(json, "},\"chain\":{\"ok\":%s,\"break\":", broken ? "false" : "true");
        if (broken && brk.what[0]) {
            st_buf_printf(json, "{\"segment\":%llu,\"line\":%llu,\"offset\":%llu,\"seq\":%llu,\"what\":",
                          (unsigned long long)brk.segment, (unsigned long long)brk.line,
                          (unsigned long long)brk.offset, (unsigned long long)brk.seq);
            st_json_put_cstr(json, brk.what);
            st_buf_putc(json, '}');
        } else {
            st_buf_puts(json, "null");
        }
        st_buf_printf(json, "},\"objects\":{\"checked\":%s",
                      o->skip_objects || ix == NULL ? "false" : "true");
        if (!o->skip_objects && ix)
            st_buf_printf(
                json,
                ",\"population\":%zu,\"local_chunks\":%zu,\"s3_objects\":%zu,\"sampled\":%zu,\"mode\":\"%s\","
                "\"seed\":%llu,\"confidence\":%g,\"min_corrupt\":%g,\"chunks_checked\":%llu,"
                "\"objects_checked\":%llu,\"archived_not_read\":%llu,\"unaudited_chunks\":%llu,"
                "\"unaudited_objects\":%llu",
                population, nlocal, packs.n, want,
                o->all      ? "all"
                : o->sample ? "sample"
                            : "confidence",
                (unsigned long long)seed, o->confidence > 0 ? o->confidence : 0.99,
                o->min_corrupt > 0 ? o->min_corrupt : 0.01, (unsigned long long)oc.checked_chunks,
                (unsigned long long)oc.checked_objects, (unsigned long long)oc.archived,
                (unsigned long long)oc.unaudited_chunks, (unsigned long long)oc.unaudited_objects);
        st_buf_puts(json, "},\"findings\":[");
        st_buf_append(json, f.json.data ? f.json.data : "", f.json.len);
        st_buf_puts(json, "]}\n");
    }
    if (text) {
        st_buf_printf(text, "audit trail %s: %zu segments (%zu local, %zu sealed in %s%s), %llu records", dir,
                      all.n, local.n, sealed.n, s3 ? "s3://" : "no object storage", s3 ? lc->s3.bucket : "",
                      (unsigned long long)chain.records);
        if (chain.records)
            st_buf_printf(text, " (seq %llu..%llu, last hash %.16s...)", (unsigned long long)t.first_seq,
                          (unsigned long long)(chain.next_seq - 1), chain.last_hash);
        st_buf_printf(text, "\nchain: %s\n", broken ? "BROKEN" : "intact");
        if (!o->skip_objects && ix) {
            st_buf_printf(text,
                          "stored data: %zu of %zu checked (%zu local chunks, %zu S3 objects; %s, seed %llu)",
                          want, population, nlocal, packs.n, o->all ? "all" : "random sample",
                          (unsigned long long)seed);
            if (!o->all && population) {
                double conf = o->confidence > 0 ? o->confidence : 0.99,
                       p = o->min_corrupt > 0 ? o->min_corrupt : 0.01;
                if (o->sample == 0)
                    st_buf_printf(
                        text,
                        ": if %g%% or more were corrupt, a sample this size finds one with %g%% probability",
                        p * 100, conf * 100);
            }
            st_buf_printf(text, "; %llu archived objects checked for existence, size and class only\n",
                          (unsigned long long)oc.archived);
        }
        st_buf_append(text, f.text.data ? f.text.data : "", f.text.len);
        st_buf_printf(text, "result: %s (%zu problems, %zu warnings)\n", f.problems ? "FAILED" : "OK",
                      f.problems, f.warnings);
    }
    rc = f.problems ? 1 : 0;
out:
    free(shas);
    free(is_sealed_copy);
    free(refs.v);
    free(refs.tenant);
    free(packs.v);
    free(t.chunks);
    free(t.objs);
    free(t.seals);
    st_u64vec_free(&local);
    st_u64vec_free(&sealed);
    st_u64vec_free(&all);
    st_buf_free(&f.json);
    st_buf_free(&f.text);
    st_s3_client_destroy(s3);
    st_lifecycle_config_free(lc);
    return rc;
}
