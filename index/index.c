/* index.c: the LMDB label/chunk index (see index.h; key layouts in docs/formats.md).
 *
 * Sub-databases: meta (name -> u64), streams (tenant\0 id -> flushed seq + labels), postings
 * (tenant\0 day name\0 value -> ids, DUPSORT|DUPFIXED), daystreams (tenant\0 day -> ids),
 * chunks (tenant\0 day id min_ts chunk_id -> ref) and longstr (hash -> a name or value too long to
 * sit in a key). Days are u32 big-endian with a 2^31 bias so negative days still sort. */
#include "index/index.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/timeutil.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define NAME_KEY_MAX  200
#define VALUE_KEY_MAX 240
#define LONG_KEEP     180
#define LONG_LEN      (LONG_KEEP + 1 + 16)

struct st_index {
    MDB_env *env;
    MDB_dbi meta, streams, postings, daystreams, chunks, longstr, state;
};

struct st_index_read {
    st_index_t *ix;
    MDB_txn *txn;
    st_buf_t kbuf;
    st_buf_t scratch;
};

struct st_index_write {
    st_index_t *ix;
    MDB_txn *txn;
    st_buf_t kbuf;
    st_buf_t vbuf;
};

static int lmdb_err(int rc)
{
    switch (rc) {
    case 0: return 0;
    case MDB_NOTFOUND: return ST_ENOTFOUND;
    case MDB_MAP_FULL: return -ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND: return ST_ECORRUPT;
    case MDB_VERSION_MISMATCH:
    case MDB_INVALID: return ST_EVERSION;
    default: return rc > 0 ? -rc : -EIO;
    }
}

int st_index_open(const char *dir, size_t map_size, st_index_t **out)
{
    st_index_t *ix = calloc(1, sizeof *ix);
    if (ix == NULL) return -ENOMEM;
    int rc;
    MDB_txn *txn = NULL;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        rc = -errno;
        free(ix);
        return rc;
    }
    if ((rc = mdb_env_create(&ix->env)) != 0) goto fail;
    if ((rc = mdb_env_set_maxdbs(ix->env, 8)) != 0) goto fail;
    if ((rc = mdb_env_set_mapsize(ix->env, map_size)) != 0) goto fail;
    if ((rc = mdb_env_set_maxreaders(ix->env, 512)) != 0) goto fail;
    if ((rc = mdb_env_open(ix->env, dir, MDB_NOTLS, 0644)) != 0) goto fail;
    if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0) goto fail;
    if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &ix->meta)) != 0 ||
        (rc = mdb_dbi_open(txn, "streams", MDB_CREATE, &ix->streams)) != 0 ||
        (rc = mdb_dbi_open(txn, "postings", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &ix->postings)) != 0 ||
        (rc = mdb_dbi_open(txn, "daystreams", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &ix->daystreams)) !=
            0 ||
        (rc = mdb_dbi_open(txn, "chunks", MDB_CREATE, &ix->chunks)) != 0 ||
        (rc = mdb_dbi_open(txn, "longstr", MDB_CREATE, &ix->longstr)) != 0 ||
        (rc = mdb_dbi_open(txn, "state", MDB_CREATE, &ix->state)) != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    /* Record (or check) the schema version. */
    MDB_val k = {6, (void *)(uintptr_t) "schema"}, v;
    rc = mdb_get(txn, ix->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        uint8_t b[8];
        st_put_u64le(b, ST_INDEX_SCHEMA);
        MDB_val nv = {8, b};
        rc = mdb_put(txn, ix->meta, &k, &nv, 0);
    } else if (rc == 0) {
        if (v.mv_size != 8 || st_get_u64le(v.mv_data) != ST_INDEX_SCHEMA) {
            mdb_txn_abort(txn);
            rc = MDB_VERSION_MISMATCH;
            goto fail;
        }
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        goto fail;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) goto fail;
    *out = ix;
    return 0;
fail:
    if (ix->env) mdb_env_close(ix->env);
    free(ix);
    return lmdb_err(rc);
}

void st_index_close(st_index_t *ix)
{
    if (ix == NULL) return;
    mdb_env_close(ix->env);
    free(ix);
}

/* ---- keys ------------------------------------------------------------------------------------------ */

static uint32_t day_key(int64_t day)
{
    return (uint32_t)(day + 0x80000000LL);
}

static int key_tenant(st_buf_t *k, const char *tenant)
{
    st_buf_reset(k);
    return st_buf_append(k, tenant, strlen(tenant) + 1);
}

static int key_u32be(st_buf_t *k, uint32_t v)
{
    uint8_t b[4];
    st_put_u32be(b, v);
    return st_buf_append(k, b, 4);
}

static int key_u64be(st_buf_t *k, uint64_t v)
{
    uint8_t b[8];
    st_put_u64be(b, v);
    return st_buf_append(k, b, 8);
}

/* Appends s, or for long strings its truncated form with a hash marker (see file comment). */
static int key_str(st_buf_t *k, st_str_t s, size_t max, uint64_t *long_hash)
{
    *long_hash = 0;
    if (s.n <= max) return st_buf_append(k, s.p, s.n);
    uint64_t h = st_hash64(s.p, s.n);
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    ST_TRY(st_buf_append(k, s.p, LONG_KEEP));
    ST_TRY(st_buf_putc(k, '\x01'));
    *long_hash = h;
    return st_buf_append(k, hex, 16);
}

/* Turns a key component back into the full string (looking long ones up). */
static st_str_t key_str_decode(st_index_read_t *r, st_str_t s)
{
    if (s.n != LONG_LEN || s.p[LONG_KEEP] != '\x01') return s;
    char hex[17];
    memcpy(hex, s.p + LONG_KEEP + 1, 16);
    hex[16] = '\0';
    uint64_t h = strtoull(hex, NULL, 16);
    uint8_t hb[8];
    st_put_u64be(hb, h);
    MDB_val k = {8, hb}, v;
    if (mdb_get(r->txn, r->ix->longstr, &k, &v) != 0) return s;
    return st_str(v.mv_data, v.mv_size);
}

static int put_long(st_index_write_t *w, uint64_t h, st_str_t s)
{
    if (h == 0) return 0;
    uint8_t hb[8];
    st_put_u64be(hb, h);
    MDB_val k = {8, hb}, v = {s.n, (void *)s.p};
    return lmdb_err(mdb_put(w->txn, w->ix->longstr, &k, &v, 0));
}

/* ---- chunk reference values ------------------------------------------------------------------------ */

#define REF_VERSION 1

int st_chunk_ref_encode(const st_chunk_ref_t *ref, st_buf_t *out)
{
    size_t pl = strnlen(ref->loc.path, sizeof ref->loc.path);
    ST_TRY(st_buf_putc(out, REF_VERSION));
    ST_TRY(st_buf_put_u64le(out, ref->chunk_id));
    ST_TRY(st_buf_put_u64le(out, ref->stream_id));
    ST_TRY(st_buf_put_u64le(out, (uint64_t)ref->min_ts));
    ST_TRY(st_buf_put_u64le(out, (uint64_t)ref->max_ts));
    ST_TRY(st_buf_put_u32le(out, ref->entries));
    ST_TRY(st_buf_put_u64le(out, ref->raw_bytes));
    ST_TRY(st_buf_put_u64le(out, ref->size));
    ST_TRY(st_buf_put_u32le(out, ref->crc32));
    ST_TRY(st_buf_putc(out, (char)ref->storage_class));
    ST_TRY(st_buf_putc(out, (char)ref->loc.kind));
    ST_TRY(st_buf_put_u64le(out, ref->loc.offset));
    ST_TRY(st_buf_put_u64le(out, ref->loc.length));
    return st_buf_put_lstr(out, ref->loc.path, pl);
}

int st_chunk_ref_decode(st_str_t v, st_chunk_ref_t *out)
{
    st_reader_t r = st_reader(v.p, v.n);
    if (st_read_u8(&r) != REF_VERSION) return ST_EVERSION;
    st_chunk_ref_t ref;
    memset(&ref, 0, sizeof ref);
    ref.chunk_id = st_read_u64le(&r);
    ref.stream_id = st_read_u64le(&r);
    ref.min_ts = (int64_t)st_read_u64le(&r);
    ref.max_ts = (int64_t)st_read_u64le(&r);
    ref.entries = st_read_u32le(&r);
    ref.raw_bytes = st_read_u64le(&r);
    ref.size = st_read_u64le(&r);
    ref.crc32 = st_read_u32le(&r);
    ref.storage_class = st_read_u8(&r);
    ref.loc.kind = (st_loc_kind_t)st_read_u8(&r);
    ref.loc.offset = st_read_u64le(&r);
    ref.loc.length = st_read_u64le(&r);
    st_str_t path = st_read_lstr(&r);
    if (r.err || path.n >= sizeof ref.loc.path) return ST_ECORRUPT;
    memcpy(ref.loc.path, path.p, path.n);
    ref.loc.path[path.n] = '\0';
    *out = ref;
    return 0;
}

/* ---- reading -------------------------------------------------------------------------------------- */

int st_index_read_begin(st_index_t *ix, st_index_read_t **out)
{
    st_index_read_t *r = calloc(1, sizeof *r);
    if (r == NULL) return -ENOMEM;
    r->ix = ix;
    int rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        free(r);
        return lmdb_err(rc);
    }
    *out = r;
    return 0;
}

void st_index_read_end(st_index_read_t *r)
{
    if (r == NULL) return;
    mdb_txn_abort(r->txn);
    st_buf_free(&r->kbuf);
    st_buf_free(&r->scratch);
    free(r);
}

int st_index_get_meta(st_index_read_t *r, const char *key, uint64_t *out)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(r->txn, r->ix->meta, &k, &v);
    if (rc != 0) return lmdb_err(rc);
    if (v.mv_size != 8) return ST_ECORRUPT;
    *out = st_get_u64le(v.mv_data);
    return 0;
}

int st_index_stream(st_index_read_t *r, const char *tenant, uint64_t stream_id, st_str_t *labels,
                    uint64_t *flushed_seq)
{
    ST_TRY(key_tenant(&r->kbuf, tenant));
    ST_TRY(key_u64be(&r->kbuf, stream_id));
    MDB_val k = {r->kbuf.len, r->kbuf.data}, v;
    int rc = mdb_get(r->txn, r->ix->streams, &k, &v);
    if (rc != 0) return lmdb_err(rc);
    if (v.mv_size < 8) return ST_ECORRUPT;
    if (flushed_seq) *flushed_seq = st_get_u64le(v.mv_data);
    if (labels) *labels = st_str((const char *)v.mv_data + 8, v.mv_size - 8);
    return 0;
}

/* Appends every id stored under key in a DUPFIXED database. */
static int read_ids(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, st_u64vec_t *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc != 0) return lmdb_err(rc);
    MDB_val k = *key, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    if (rc == MDB_NOTFOUND) {
        mdb_cursor_close(c);
        return 0;
    }
    if (rc == 0) rc = mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
    while (rc == 0) {
        if (v.mv_size % 8 != 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        for (size_t i = 0; i < v.mv_size / 8; i++) {
            if (st_u64vec_push(out, st_get_u64be((const uint8_t *)v.mv_data + i * 8)) < 0) {
                mdb_cursor_close(c);
                return -ENOMEM;
            }
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

/* Calls cb(arg, value, key) for every distinct value of name in one (tenant, day). */
static int each_value(st_index_read_t *r, const char *tenant, int64_t day, st_str_t name,
                      int (*cb)(st_index_read_t *r, void *arg, st_str_t value, MDB_val *key), void *arg)
{
    st_buf_t prefix = ST_BUF_INIT;
    uint64_t lh;
    int rc = key_tenant(&prefix, tenant);
    if (rc == 0) rc = key_u32be(&prefix, day_key(day));
    if (rc == 0) rc = key_str(&prefix, name, NAME_KEY_MAX, &lh);
    if (rc == 0) rc = st_buf_putc(&prefix, '\0');
    if (rc < 0) {
        st_buf_free(&prefix);
        return rc;
    }
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(r->txn, r->ix->postings, &c)) != 0) {
        st_buf_free(&prefix);
        return lmdb_err(rc);
    }
    MDB_val k = {prefix.len, prefix.data}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size < prefix.len || memcmp(k.mv_data, prefix.data, prefix.len) != 0) break;
        st_str_t raw = st_str((const char *)k.mv_data + prefix.len, k.mv_size - prefix.len);
        MDB_val key = k;
        int crc = cb(r, arg, key_str_decode(r, raw), &key);
        if (crc < 0) {
            rc = crc;
            break;
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
    }
    mdb_cursor_close(c);
    st_buf_free(&prefix);
    if (rc == MDB_NOTFOUND || rc == 0) return 0;
    return rc < 0 ? rc : lmdb_err(rc);
}

typedef struct {
    const st_matcher_t *m;
    st_u64vec_t *out;
} union_arg_t;

static int union_cb(st_index_read_t *r, void *arg, st_str_t value, MDB_val *key)
{
    union_arg_t *a = arg;
    if (!st_matcher_matches(a->m, value)) return 0;
    return read_ids(r->txn, r->ix->postings, key, a->out);
}

/* Posting key of name=value in (tenant, day) into k. */
static int posting_key(st_buf_t *k, const char *tenant, int64_t day, st_str_t name, st_str_t value)
{
    uint64_t lh;
    ST_TRY(key_tenant(k, tenant));
    ST_TRY(key_u32be(k, day_key(day)));
    ST_TRY(key_str(k, name, NAME_KEY_MAX, &lh));
    ST_TRY(st_buf_putc(k, '\0'));
    return key_str(k, value, VALUE_KEY_MAX, &lh);
}

/* Number of stream ids under a posting key (0 when absent). */
static int posting_count(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, size_t *count)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc != 0) return lmdb_err(rc);
    MDB_val k = *key, v;
    *count = 0;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET);
    if (rc == 0) {
        size_t n;
        rc = mdb_cursor_count(c, &n);
        *count = n;
    }
    mdb_cursor_close(c);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

/* Keeps the candidates present under a posting key: one cursor seek per candidate. */
static int filter_by_posting(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, st_u64vec_t *cand)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc != 0) return lmdb_err(rc);
    size_t w = 0;
    for (size_t i = 0; i < cand->n; i++) {
        uint8_t id[8];
        st_put_u64be(id, cand->v[i]);
        MDB_val k = *key, v = {8, id};
        rc = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH);
        if (rc == 0) cand->v[w++] = cand->v[i];
        else if (rc != MDB_NOTFOUND) break;
        rc = 0;
    }
    mdb_cursor_close(c);
    if (rc != 0) return lmdb_err(rc);
    cand->n = w;
    return 0;
}

typedef struct {
    size_t i;     /* matcher index */
    size_t count; /* ids in its posting */
} eq_t;

static int cmp_eq(const void *a, const void *b)
{
    size_t x = ((const eq_t *)a)->count, y = ((const eq_t *)b)->count;
    return x < y ? -1 : x > y;
}

/* The streams of one day whose labels satisfy every matcher. Equality matchers go first, smallest
 * posting first; a larger posting is then probed per candidate instead of read whole, and once few
 * candidates are left the other matchers are checked on their labels instead of expanded. */
static int select_day(st_index_read_t *r, const char *tenant, int64_t day, const st_matcher_t *m, size_t nm,
                      st_u64vec_t *out)
{
    st_u64vec_t cand = ST_U64VEC_INIT, set = ST_U64VEC_INIT;
    bool have = false, need_post = false;
    int rc = 0;
    eq_t *eq = calloc(nm ? nm : 1, sizeof *eq);
    bool *done = calloc(nm ? nm : 1, sizeof *done);
    size_t neq = 0;
    if (eq == NULL || done == NULL) rc = -ENOMEM;
    for (size_t i = 0; i < nm && rc == 0; i++) {
        if (m[i].type != ST_MATCH_EQ || st_matcher_matches(&m[i], st_str("", 0))) continue;
        if ((rc = posting_key(&r->kbuf, tenant, day, m[i].name, m[i].value)) < 0) break;
        MDB_val key = {r->kbuf.len, r->kbuf.data};
        if ((rc = posting_count(r->txn, r->ix->postings, &key, &eq[neq].count)) < 0) break;
        eq[neq++].i = i;
    }
    if (rc == 0) st_qsort(eq, neq, sizeof *eq, cmp_eq);
    for (size_t e = 0; e < neq && rc == 0; e++) {
        const st_matcher_t *x = &m[eq[e].i];
        done[eq[e].i] = true;
        if ((rc = posting_key(&r->kbuf, tenant, day, x->name, x->value)) < 0) break;
        MDB_val key = {r->kbuf.len, r->kbuf.data};
        if (!have) {
            rc = read_ids(r->txn, r->ix->postings, &key, &cand); /* ids come sorted */
            have = true;
        } else if (eq[e].count > 4 * cand.n) {
            rc = filter_by_posting(r->txn, r->ix->postings, &key, &cand);
        } else {
            set.n = 0;
            rc = read_ids(r->txn, r->ix->postings, &key, &set);
            if (rc == 0) st_u64vec_intersect(&cand, &set);
        }
        if (cand.n == 0) break;
    }
    for (size_t i = 0; i < nm && rc == 0 && !(have && cand.n == 0); i++) {
        if (done[i]) continue;
        if (st_matcher_matches(&m[i], st_str("", 0)) || (have && cand.n <= 256)) {
            need_post = true; /* checked on the candidates' labels below */
            continue;
        }
        set.n = 0;
        union_arg_t a = {&m[i], &set};
        if ((rc = each_value(r, tenant, day, m[i].name, union_cb, &a)) < 0) break;
        st_u64vec_sort_unique(&set);
        if (!have) {
            st_u64vec_t t = cand;
            cand = set;
            set = t;
            have = true;
        } else {
            st_u64vec_intersect(&cand, &set);
        }
    }
    free(eq);
    free(done);
    if (rc == 0 && !have) {
        ST_TRY(key_tenant(&r->kbuf, tenant));
        ST_TRY(key_u32be(&r->kbuf, day_key(day)));
        MDB_val key = {r->kbuf.len, r->kbuf.data};
        rc = read_ids(r->txn, r->ix->daystreams, &key, &cand);
        need_post = need_post || nm > 0;
    }
    for (size_t i = 0; i < cand.n && rc == 0; i++) {
        if (need_post) {
            st_str_t text;
            if (st_index_stream(r, tenant, cand.v[i], &text, NULL) < 0) continue;
            st_labels_t l;
            char err[256];
            if (st_labels_parse(text, &l, err) < 0) continue;
            bool ok = st_matchers_match(m, nm, &l);
            st_labels_free(&l);
            if (!ok) continue;
        }
        rc = st_u64vec_push(out, cand.v[i]);
    }
    st_u64vec_free(&cand);
    st_u64vec_free(&set);
    return rc;
}

int st_index_select(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                    const st_matcher_t *m, size_t nm, st_u64vec_t *out)
{
    for (int64_t d = day_from; d <= day_to; d++) ST_TRY(select_day(r, tenant, d, m, nm, out));
    st_u64vec_sort_unique(out);
    return 0;
}

int st_index_chunks(st_index_read_t *r, const char *tenant, int64_t day, uint64_t stream_id, int64_t from,
                    int64_t through, int (*cb)(void *arg, const st_chunk_ref_t *ref), void *arg)
{
    st_buf_t prefix = ST_BUF_INIT;
    int rc = key_tenant(&prefix, tenant);
    if (rc == 0) rc = key_u32be(&prefix, day_key(day));
    if (rc == 0) rc = key_u64be(&prefix, stream_id);
    if (rc < 0) {
        st_buf_free(&prefix);
        return rc;
    }
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(r->txn, r->ix->chunks, &c)) != 0) {
        st_buf_free(&prefix);
        return lmdb_err(rc);
    }
    MDB_val k = {prefix.len, prefix.data}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0) {
        if (k.mv_size != prefix.len + 16 || memcmp(k.mv_data, prefix.data, prefix.len) != 0) break;
        st_chunk_ref_t ref;
        if ((rc = st_chunk_ref_decode(st_str(v.mv_data, v.mv_size), &ref)) < 0) break;
        if (ref.min_ts > through) break;
        if (ref.max_ts >= from) {
            int crc = cb(arg, &ref);
            if (crc != 0) {
                rc = crc < 0 ? crc : 0;
                break;
            }
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    st_buf_free(&prefix);
    if (rc == MDB_NOTFOUND || rc == 0) return 0;
    return rc < 0 ? rc : lmdb_err(rc);
}

int st_index_label_names(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                         st_strvec_t *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->ix->postings, &c);
    if (rc != 0) return lmdb_err(rc);
    st_buf_t prefix = ST_BUF_INIT, seek = ST_BUF_INIT;
    for (int64_t d = day_from; d <= day_to && rc == 0; d++) {
        if ((rc = key_tenant(&prefix, tenant)) < 0 || (rc = key_u32be(&prefix, day_key(d))) < 0) break;
        MDB_val k = {prefix.len, prefix.data}, v;
        int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        while (mrc == 0) {
            if (k.mv_size < prefix.len || memcmp(k.mv_data, prefix.data, prefix.len) != 0) break;
            const char *name = (const char *)k.mv_data + prefix.len;
            const char *nul = memchr(name, '\0', k.mv_size - prefix.len);
            if (nul == NULL) {
                mrc = MDB_CORRUPTED;
                break;
            }
            st_str_t nm = key_str_decode(r, st_str(name, (size_t)(nul - name)));
            if ((rc = st_strvec_push(out, nm)) < 0) break;
            /* Jump past every value of this name: seek to prefix + name + "\x01". */
            st_buf_reset(&seek);
            if ((rc = st_buf_append(&seek, k.mv_data, (size_t)(nul - (const char *)k.mv_data))) < 0 ||
                (rc = st_buf_putc(&seek, '\x01')) < 0)
                break;
            k.mv_size = seek.len;
            k.mv_data = seek.data;
            mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        }
        if (rc == 0 && mrc != 0 && mrc != MDB_NOTFOUND) rc = lmdb_err(mrc);
    }
    mdb_cursor_close(c);
    st_buf_free(&prefix);
    st_buf_free(&seek);
    return rc;
}

static int push_value_cb(st_index_read_t *r, void *arg, st_str_t value, MDB_val *key)
{
    (void)r;
    (void)key;
    return st_strvec_push(arg, value);
}

int st_index_label_values(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                          st_str_t name, st_strvec_t *out)
{
    for (int64_t d = day_from; d <= day_to; d++) ST_TRY(each_value(r, tenant, d, name, push_value_cb, out));
    return 0;
}

/* ---- writing -------------------------------------------------------------------------------------- */

int st_index_write_begin(st_index_t *ix, st_index_write_t **out)
{
    st_index_write_t *w = calloc(1, sizeof *w);
    if (w == NULL) return -ENOMEM;
    w->ix = ix;
    int rc = mdb_txn_begin(ix->env, NULL, 0, &w->txn);
    if (rc != 0) {
        free(w);
        return lmdb_err(rc);
    }
    *out = w;
    return 0;
}

static void write_free(st_index_write_t *w)
{
    st_buf_free(&w->kbuf);
    st_buf_free(&w->vbuf);
    free(w);
}

int st_index_write_commit(st_index_write_t *w)
{
    int rc = mdb_txn_commit(w->txn);
    write_free(w);
    return lmdb_err(rc);
}

void st_index_write_abort(st_index_write_t *w)
{
    if (w == NULL) return;
    mdb_txn_abort(w->txn);
    write_free(w);
}

int st_index_set_meta(st_index_write_t *w, const char *key, uint64_t v)
{
    uint8_t b[8];
    st_put_u64le(b, v);
    MDB_val k = {strlen(key), (void *)key}, val = {8, b};
    return lmdb_err(mdb_put(w->txn, w->ix->meta, &k, &val, 0));
}

static int put_stream(st_index_write_t *w, const char *tenant, uint64_t stream_id, st_str_t labels_text,
                      uint64_t seq, bool only_if_new)
{
    ST_TRY(key_tenant(&w->kbuf, tenant));
    ST_TRY(key_u64be(&w->kbuf, stream_id));
    MDB_val k = {w->kbuf.len, w->kbuf.data}, v;
    if (only_if_new && mdb_get(w->txn, w->ix->streams, &k, &v) == 0) return 0;
    st_buf_reset(&w->vbuf);
    ST_TRY(st_buf_put_u64le(&w->vbuf, seq));
    ST_TRY(st_buf_append(&w->vbuf, labels_text.p, labels_text.n));
    v.mv_size = w->vbuf.len;
    v.mv_data = w->vbuf.data;
    return lmdb_err(mdb_put(w->txn, w->ix->streams, &k, &v, 0));
}

int st_index_set_flushed_seq(st_index_write_t *w, const char *tenant, uint64_t stream_id,
                             st_str_t labels_text, uint64_t seq)
{
    return put_stream(w, tenant, stream_id, labels_text, seq, false);
}

int st_index_put_chunk(st_index_write_t *w, const char *tenant, const st_labels_t *labels,
                       st_str_t labels_text, const st_chunk_ref_t *ref)
{
    ST_TRY(put_stream(w, tenant, ref->stream_id, labels_text, 0, true));
    uint8_t sid[8];
    st_put_u64be(sid, ref->stream_id);
    for (int64_t d = st_day_of(ref->min_ts); d <= st_day_of(ref->max_ts); d++) {
        /* daystreams: once per (stream, day); postings only when the stream is new to the day */
        ST_TRY(key_tenant(&w->kbuf, tenant));
        ST_TRY(key_u32be(&w->kbuf, day_key(d)));
        MDB_val k = {w->kbuf.len, w->kbuf.data}, v = {8, sid};
        int rc = mdb_put(w->txn, w->ix->daystreams, &k, &v, MDB_NODUPDATA);
        if (rc == 0) {
            for (size_t i = 0; i < labels->n; i++) {
                uint64_t hn, hv;
                ST_TRY(key_tenant(&w->kbuf, tenant));
                ST_TRY(key_u32be(&w->kbuf, day_key(d)));
                ST_TRY(key_str(&w->kbuf, labels->v[i].name, NAME_KEY_MAX, &hn));
                ST_TRY(st_buf_putc(&w->kbuf, '\0'));
                ST_TRY(key_str(&w->kbuf, labels->v[i].value, VALUE_KEY_MAX, &hv));
                ST_TRY(put_long(w, hn, labels->v[i].name));
                ST_TRY(put_long(w, hv, labels->v[i].value));
                MDB_val pk = {w->kbuf.len, w->kbuf.data}, pv = {8, sid};
                int prc = mdb_put(w->txn, w->ix->postings, &pk, &pv, MDB_NODUPDATA);
                if (prc != 0 && prc != MDB_KEYEXIST) return lmdb_err(prc);
            }
        } else if (rc != MDB_KEYEXIST) {
            return lmdb_err(rc);
        }
        ST_TRY(key_tenant(&w->kbuf, tenant));
        ST_TRY(key_u32be(&w->kbuf, day_key(d)));
        ST_TRY(key_u64be(&w->kbuf, ref->stream_id));
        ST_TRY(key_u64be(&w->kbuf, (uint64_t)ref->min_ts ^ 0x8000000000000000ULL));
        ST_TRY(key_u64be(&w->kbuf, ref->chunk_id));
        st_buf_reset(&w->vbuf);
        ST_TRY(st_chunk_ref_encode(ref, &w->vbuf));
        MDB_val ck = {w->kbuf.len, w->kbuf.data}, cv = {w->vbuf.len, w->vbuf.data};
        ST_TRY(lmdb_err(mdb_put(w->txn, w->ix->chunks, &ck, &cv, 0)));
    }
    return 0;
}

/* ---- whole-index access ---------------------------------------------------------------------- */

int st_index_scan_chunks(st_index_read_t *r, int (*cb)(void *, const char *, int64_t, const st_chunk_ref_t *),
                         void *arg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->ix->chunks, &cur);
    if (rc != 0) return lmdb_err(rc);
    MDB_val k, v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        const char *kp = k.mv_data;
        const char *nul = memchr(kp, '\0', k.mv_size);
        if (nul == NULL || k.mv_size != (size_t)(nul - kp) + 1 + 4 + 24) {
            rc = MDB_CORRUPTED;
            break;
        }
        int64_t day = (int64_t)st_get_u32be((const uint8_t *)nul + 1) - 0x80000000LL;
        st_chunk_ref_t ref;
        if ((rc = st_chunk_ref_decode(st_str(v.mv_data, v.mv_size), &ref)) < 0) break;
        int crc = cb(arg, kp, day, &ref);
        if (crc != 0) {
            rc = crc < 0 ? crc : MDB_NOTFOUND;
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND || rc == 0) return 0;
    return rc < 0 ? rc : lmdb_err(rc);
}

static int chunk_key(st_buf_t *k, const char *tenant, int64_t day, const st_chunk_ref_t *ref)
{
    ST_TRY(key_tenant(k, tenant));
    ST_TRY(key_u32be(k, day_key(day)));
    ST_TRY(key_u64be(k, ref->stream_id));
    ST_TRY(key_u64be(k, (uint64_t)ref->min_ts ^ 0x8000000000000000ULL));
    return key_u64be(k, ref->chunk_id);
}

int st_index_update_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *ref)
{
    for (int64_t d = st_day_of(ref->min_ts); d <= st_day_of(ref->max_ts); d++) {
        ST_TRY(chunk_key(&w->kbuf, tenant, d, ref));
        st_buf_reset(&w->vbuf);
        ST_TRY(st_chunk_ref_encode(ref, &w->vbuf));
        MDB_val k = {w->kbuf.len, w->kbuf.data}, v = {w->vbuf.len, w->vbuf.data};
        ST_TRY(lmdb_err(mdb_put(w->txn, w->ix->chunks, &k, &v, 0)));
    }
    return 0;
}

/* Removes the chunk's reference in day d; a stream left without chunks that day leaves its postings. */
static int delete_chunk_day(st_index_write_t *w, const char *tenant, int64_t d, const st_chunk_ref_t *ref)
{
    ST_TRY(chunk_key(&w->kbuf, tenant, d, ref));
    MDB_val k = {w->kbuf.len, w->kbuf.data};
    int rc = mdb_del(w->txn, w->ix->chunks, &k, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_err(rc);
    /* any chunk of this stream left in the day? */
    st_buf_t prefix = ST_BUF_INIT;
    rc = key_tenant(&prefix, tenant);
    if (rc == 0) rc = key_u32be(&prefix, day_key(d));
    if (rc == 0) rc = key_u64be(&prefix, ref->stream_id);
    bool left = false;
    if (rc == 0) {
        MDB_cursor *cur;
        if ((rc = lmdb_err(mdb_cursor_open(w->txn, w->ix->chunks, &cur))) == 0) {
            MDB_val ck = {prefix.len, prefix.data}, cv;
            if (mdb_cursor_get(cur, &ck, &cv, MDB_SET_RANGE) == 0 && ck.mv_size >= prefix.len &&
                memcmp(ck.mv_data, prefix.data, prefix.len) == 0)
                left = true;
            mdb_cursor_close(cur);
        }
    }
    st_buf_free(&prefix);
    if (rc < 0) return rc;
    if (left) return 0;
    /* drop the stream from the day's list and postings */
    uint8_t sid[8];
    st_put_u64be(sid, ref->stream_id);
    ST_TRY(key_tenant(&w->kbuf, tenant));
    ST_TRY(key_u32be(&w->kbuf, day_key(d)));
    MDB_val dk = {w->kbuf.len, w->kbuf.data}, dv = {8, sid};
    rc = mdb_del(w->txn, w->ix->daystreams, &dk, &dv);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_err(rc);
    MDB_val sk, sv;
    st_buf_t skey = ST_BUF_INIT;
    ST_TRY(key_tenant(&skey, tenant));
    ST_TRY(key_u64be(&skey, ref->stream_id));
    sk.mv_size = skey.len;
    sk.mv_data = skey.data;
    rc = mdb_get(w->txn, w->ix->streams, &sk, &sv);
    if (rc == 0 && sv.mv_size >= 8) {
        st_labels_t l;
        char err[256];
        if (st_labels_parse(st_str((const char *)sv.mv_data + 8, sv.mv_size - 8), &l, err) == 0) {
            for (size_t i = 0; i < l.n && rc == 0; i++) {
                uint64_t hn, hv;
                rc = key_tenant(&w->kbuf, tenant);
                if (rc == 0) rc = key_u32be(&w->kbuf, day_key(d));
                if (rc == 0) rc = key_str(&w->kbuf, l.v[i].name, NAME_KEY_MAX, &hn);
                if (rc == 0) rc = st_buf_putc(&w->kbuf, '\0');
                if (rc == 0) rc = key_str(&w->kbuf, l.v[i].value, VALUE_KEY_MAX, &hv);
                if (rc == 0) {
                    MDB_val pk = {w->kbuf.len, w->kbuf.data}, pv = {8, sid};
                    int drc = mdb_del(w->txn, w->ix->postings, &pk, &pv);
                    if (drc != 0 && drc != MDB_NOTFOUND) rc = lmdb_err(drc);
                }
            }
            st_labels_free(&l);
        }
    }
    st_buf_free(&skey);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc < 0 ? rc : lmdb_err(rc);
    return 0;
}

int st_index_delete_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *ref)
{
    for (int64_t d = st_day_of(ref->min_ts); d <= st_day_of(ref->max_ts); d++)
        ST_TRY(delete_chunk_day(w, tenant, d, ref));
    return 0;
}

int st_index_replace_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *old,
                           const st_chunk_ref_t *nw)
{
    if (old->chunk_id != nw->chunk_id || old->stream_id != nw->stream_id) return -EINVAL;
    /* the new references first, so a day that keeps the chunk keeps the stream's postings */
    ST_TRY(st_index_update_chunk(w, tenant, nw));
    if (old->min_ts == nw->min_ts) {
        /* same keys in the days both cover: already overwritten; only days the new one left go */
        for (int64_t d = st_day_of(nw->max_ts) + 1; d <= st_day_of(old->max_ts); d++)
            ST_TRY(delete_chunk_day(w, tenant, d, old));
        return 0;
    }
    return st_index_delete_chunk(w, tenant, old);
}

int st_index_state_put(st_index_write_t *w, st_str_t key, st_str_t value)
{
    if (key.n == 0 || key.n > 400) return -EINVAL;
    MDB_val k = {key.n, (void *)(uintptr_t)key.p}, v = {value.n, (void *)(uintptr_t)value.p};
    return lmdb_err(mdb_put(w->txn, w->ix->state, &k, &v, 0));
}

int st_index_state_del(st_index_write_t *w, st_str_t key)
{
    MDB_val k = {key.n, (void *)(uintptr_t)key.p};
    int rc = mdb_del(w->txn, w->ix->state, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : lmdb_err(rc);
}

static int state_get(MDB_txn *txn, MDB_dbi dbi, st_str_t key, st_str_t *value)
{
    MDB_val k = {key.n, (void *)(uintptr_t)key.p}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc != 0) return lmdb_err(rc);
    *value = st_str(v.mv_data, v.mv_size);
    return 0;
}

int st_index_state_get(st_index_read_t *r, st_str_t key, st_str_t *value)
{
    return state_get(r->txn, r->ix->state, key, value);
}
int st_index_state_get_w(st_index_write_t *w, st_str_t key, st_str_t *value)
{
    return state_get(w->txn, w->ix->state, key, value);
}

int st_index_state_scan(st_index_read_t *r, st_str_t prefix, int (*cb)(void *, st_str_t, st_str_t), void *arg)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(r->txn, r->ix->state, &cur);
    if (rc != 0) return lmdb_err(rc);
    MDB_val k = {prefix.n, (void *)(uintptr_t)prefix.p}, v;
    rc = prefix.n ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (k.mv_size < prefix.n || memcmp(k.mv_data, prefix.p, prefix.n) != 0) break;
        int crc = cb(arg, st_str(k.mv_data, k.mv_size), st_str(v.mv_data, v.mv_size));
        if (crc != 0) {
            rc = crc < 0 ? crc : 0;
            mdb_cursor_close(cur);
            return rc;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : lmdb_err(rc);
}
