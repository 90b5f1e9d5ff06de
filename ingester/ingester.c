/* ingester.c: streams, heads, apply, flusher and snapshots (see ingester.h for the life of an entry).
 *
 * Locking: ing->mu guards the stream table and every stream/chunk field that queries read. The WAL
 * thread applies records under mu; the flusher thread compresses and writes chunk files outside mu
 * (chunk writers are flusher-only) and takes mu only to publish results. Sealed heads are immutable
 * and reference-counted so snapshots can share them without copying. Live heads may be frozen by the
 * flusher (their older bytes zstd-compressed into one frame) when heads hold more than
 * head_memory_target; only the flusher freezes, so it can read a head's frozen frame outside mu. With
 * ingester.head_spill the frames are kept in spill files (spill.h) instead of on the heap, and the
 * flusher may move a frame, sealed heads' too, to another spill segment (under mu: snapshots read
 * frames under mu). */
#include "ingester/ingester.h"

#include "audit/audit.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "ingester/spill.h"
#include "ingester/wal.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#define REC_ENTRIES 1
#define HEAD_ENTRY_MAX_HDR 30 /* uvarint zigzag ts delta (10), uvarint line length (10), md length (10) */

/* ---- heads ---------------------------------------------------------------------------------------- */

typedef struct head {
    /* Entries in arrival order, each: uvarint zigzag(ts - previous entry's ts), uvarint line length,
     * uvarint metadata length, line, metadata (~3 header bytes instead of 16: at 100,000 streams of a
     * few lines each the headers were a tenth of the heads). The first entry of the frozen part is
     * relative to 0, the first of buf to tail_base: the frozen part's last timestamp. */
    st_buf_t buf;
    st_buf_t z;        /* frozen: one zstd frame holding the first zraw bytes of the same layout, */
    st_spill_ref_t zs; /* or that frame in a spill file (z empty) */
    uint64_t zraw;
    uint64_t zlines; /* line + metadata bytes in the frozen part */
    uint64_t saved; /* frozen line bytes - z.len: in ing->head_saved while h->bytes is in head_bytes */
    int64_t tail_base; /* timestamp the first entry of buf is relative to */
    int64_t last_ts;   /* timestamp of the last entry appended */
    uint32_t zn;    /* entries in the frozen part */
    uint32_t n;
    int64_t min_ts, max_ts;
    bool sorted;  /* arrival order is time order */
    uint64_t bytes;
    _Atomic int refs;
} head_t;

static head_t *head_new(void)
{
    head_t *h = calloc(1, sizeof *h);
    if (h == NULL) return NULL;
    h->min_ts = INT64_MAX;
    h->max_ts = INT64_MIN;
    h->sorted = true;
    atomic_init(&h->refs, 1);
    return h;
}

static void head_unref(head_t *h)
{
    if (h && atomic_fetch_sub(&h->refs, 1) == 1) {
        st_buf_free(&h->buf);
        st_buf_free(&h->z);
        st_spill_release(&h->zs);
        free(h);
    }
}

static int head_append(head_t *h, int64_t ts, st_str_t line, st_str_t md)
{
    ST_TRY(st_buf_reserve_lean(&h->buf, HEAD_ENTRY_MAX_HDR + line.n + md.n));
    uint8_t *p = (uint8_t *)h->buf.data + h->buf.len, *q = p;
    int64_t prev = h->last_ts; /* == tail_base while buf is empty */
    q += st_uvarint_encode(q, st_zigzag((int64_t)((uint64_t)ts - (uint64_t)prev)));
    q += st_uvarint_encode(q, line.n);
    q += st_uvarint_encode(q, md.n);
    memcpy(q, line.p, line.n);
    if (md.n) memcpy(q + line.n, md.p, md.n);
    h->buf.len += (size_t)(q - p) + line.n + md.n;
    h->last_ts = ts;
    if (h->n > 0 && ts < h->max_ts) h->sorted = false;
    if (ts < h->min_ts) h->min_ts = ts;
    if (ts > h->max_ts) h->max_ts = ts;
    h->n++;
    h->bytes += line.n + md.n;
    return 0;
}

typedef struct {
    int64_t ts;
    uint32_t idx;
} sort_key_t;

static int cmp_key(const void *a, const void *b)
{
    const sort_key_t *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Our own bytes: well-formed by construction (head_append), so no bounds checks per field. */
static inline uint64_t head_uvarint(const uint8_t **pp)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (b < 0x80) break;
    }
    *pp = p;
    return v;
}

/* Appends the entries of p[0..len) with from <= ts <= through to e[n..]; *ts is the timestamp the
 * first entry is relative to and becomes the last one's. Returns the new n. */
static size_t head_scan(const uint8_t *p, size_t len, int64_t *ts, int64_t from, int64_t through,
                        st_entry_t *e, size_t n)
{
    if (len == 0) return n; /* p may be NULL: a fully frozen head's tail */
    const uint8_t *end = p + len;
    int64_t t = *ts;
    while (p < end) {
        t = (int64_t)((uint64_t)t + (uint64_t)st_unzigzag(head_uvarint(&p)));
        size_t ll = (size_t)head_uvarint(&p), ml = (size_t)head_uvarint(&p);
        if (t >= from && t <= through) {
            e[n].ts = t;
            e[n].line = st_str((const char *)p, ll);
            e[n].md = st_str((const char *)p + ll, ml);
            n++;
        }
        p += ll + ml;
    }
    *ts = t;
    return n;
}

/* Decompresses the head's frozen frame (h->zraw bytes) into raw: from memory, or read from its spill
 * file into tmp first. Returns 0, -EIO (a frame that does not decompress to its size: a spill file
 * damaged on disk, or memory corruption) or a read error. */
static int head_unfreeze(const head_t *h, ZSTD_DCtx *dc, st_buf_t *tmp, uint8_t *raw)
{
    const char *z = h->z.data;
    size_t zn = h->z.len;
    if (h->zs.seg) {
        tmp->len = 0;
        ST_TRY(st_buf_reserve(tmp, h->zs.len));
        ST_TRY(st_spill_read(h->zs, tmp->data));
        z = tmp->data;
        zn = h->zs.len;
    }
    size_t got = dc ? ZSTD_decompressDCtx(dc, raw, h->zraw, z, zn) : 0;
    return dc == NULL || ZSTD_isError(got) || got != h->zraw ? -EIO : 0;
}

/* Builds a time-sorted array of views into the head's bytes (stable for equal timestamps). A frozen
 * part is decompressed into the same allocation, after the array: one free() releases both. */
static int head_entries(const head_t *h, int64_t from, int64_t through, st_entry_t **out, size_t *nout)
{
    size_t arr = (h->n ? h->n : 1) * sizeof(st_entry_t);
    st_entry_t *e = malloc(arr + h->zraw);
    if (e == NULL) return -ENOMEM;
    size_t n = 0;
    if (h->zraw) {
        uint8_t *raw = (uint8_t *)e + arr;
        st_buf_t tmp = ST_BUF_INIT;
        int rc = head_unfreeze(h, st_zstd_dctx(), &tmp, raw);
        st_buf_free(&tmp);
        if (rc < 0) {
            free(e);
            return rc;
        }
        int64_t t = 0;
        n = head_scan(raw, h->zraw, &t, from, through, e, n);
    }
    int64_t t = h->tail_base;
    n = head_scan((const uint8_t *)h->buf.data, h->buf.len, &t, from, through, e, n);
    if (!h->sorted && n > 1) {
        sort_key_t *k = malloc(n * sizeof *k);
        st_entry_t *s = malloc(n * sizeof *s);
        if (k == NULL || s == NULL) {
            free(k);
            free(s);
            free(e);
            return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) k[i] = (sort_key_t){e[i].ts, (uint32_t)i};
        st_qsort(k, n, sizeof *k, cmp_key);
        for (size_t i = 0; i < n; i++) s[i] = e[k[i].idx];
        memcpy(e, s, n * sizeof *e);
        free(k);
        free(s);
    }
    *out = e;
    *nout = n;
    return 0;
}

/* ---- chunks being built ------------------------------------------------------------------------- */

typedef struct ochunk {
    st_chunk_writer_t *w;   /* flusher only */
    char *path;             /* current file path (NULL before the first block); under mu */
    st_block_meta_t *blocks;/* published copy; under mu */
    uint32_t nblocks;
    head_t **pending;       /* sealed heads waiting to be written; under mu */
    size_t npending, cappending;
    uint64_t chunk_id;      /* assigned when finishing */
    bool finalizing, finished, renamed; /* finished/chunk_id change under mu (snapshots read them) */
    bool packed;            /* written into this cycle's pack file instead of a file of its own */
    uint64_t pack_id, pack_off;
    uint64_t min_seq, max_seq;
    uint64_t written;       /* compressed bytes so far */
    int64_t min_ts, max_ts;
    uint64_t entries, raw_bytes;
    uint32_t crc;
    uint64_t size;
} ochunk_t;

typedef struct stream {
    uint64_t id;
    char *tenant; /* tenant and canon: in the stream's own allocation, after the struct */
    char *canon;
    size_t canon_len;
    st_labels_t labels;
    head_t *head;
    ochunk_t *open;
    ochunk_t **fin;
    size_t nfin, capfin;
    uint64_t flushed_seq;
    uint64_t last_seq;
    uint64_t min_unflushed_seq; /* first seq not in any finalizing/committed chunk; 0 = none */
    int64_t first_write_mono, last_write_mono;
    int64_t last_ts;
    uint64_t last_hash;
    bool has_last;
    uint64_t recent[4];  /* hashes of the last records applied: an exact retry of one is dropped */
    unsigned nrecent;
    double tokens;       /* per-stream rate bucket (bytes) */
    int64_t tokens_ns;
    bool mem_close;      /* chosen to close early: head memory above head_memory_target (flusher) */
    struct tenant *tenant_st;
    struct stream *next; /* hash chain */
} stream_t;

/* Per-tenant accounting, under ing->mu. */
typedef struct tenant {
    char *id;
    size_t streams;      /* in memory */
    uint64_t head_bytes;
    double tokens;       /* tenant rate bucket (bytes) */
    int64_t tokens_ns;
    struct tenant *next;
} tenant_t;

struct st_ingester {
    st_ingester_opts_t o;
    char *open_dir;
    pthread_mutex_t mu;
    stream_t **tab;
    size_t tabcap, nstreams;
    tenant_t *tenants;
    st_wal_t *wal;
    st_spill_t *spill; /* frozen head frames (NULL: ingester.head_spill off, frames on the heap) */
    _Atomic bool replaying;
    _Atomic uint64_t head_bytes;
    _Atomic uint64_t head_saved; /* bytes of head_bytes not resident: frozen heads' compression savings */
    _Atomic uint64_t sealed_bytes; /* line bytes of sealed heads waiting for the flusher */
    _Atomic bool mem_signaled; /* the flusher was woken for head memory (reset by each cycle) */
    _Atomic uint64_t freezes;  /* heads frozen (st_ingester_stats) */
    /* flusher */
    pthread_t flusher;
    bool flusher_running;
    pthread_mutex_t fmu;
    pthread_cond_t fcv;
    bool fstop, fwake, fforce;
    uint64_t force_gen, force_done; /* st_ingester_flush waits for its generation */
    pthread_cond_t fdone;
    uint64_t next_chunk_id;
    uint64_t committed_seq; /* highest WAL seq recorded as flushed in the index (flusher only) */
    uint64_t open_counter;
    uint64_t chunks_flushed;
    uint64_t nopen;
    /* metrics */
    st_metric_t *m_entries, *m_bytes, *m_dups, *m_chunks, *m_chunk_bytes, *m_chunk_raw, *m_flush_fail,
        *m_streams_created, *m_flush_lat, *m_dup_records, *m_rejected[4], *m_mem_closes, *m_freezes;
    /* live tail subscribers (see "tail subscribers" below) */
    pthread_mutex_t tail_mu;
    struct st_tail_sub *tail_subs; /* under tail_mu */
    _Atomic int tail_n;            /* subscriptions: the WAL thread skips all work at 0 */
    st_entry_t *tail_scratch;      /* WAL thread only */
    size_t tail_cap;
};

/* ---- stream table (chained hash on the stream id) ------------------------------------------------ */

static stream_t *table_get(st_ingester_t *ing, uint64_t id)
{
    for (stream_t *s = ing->tab[id & (ing->tabcap - 1)]; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

static int table_put(st_ingester_t *ing, stream_t *s)
{
    if (ing->nstreams + 1 > ing->tabcap) {
        size_t cap = ing->tabcap * 2;
        stream_t **t = calloc(cap, sizeof *t);
        if (t == NULL) return -ENOMEM;
        for (size_t i = 0; i < ing->tabcap; i++) {
            stream_t *x = ing->tab[i];
            while (x) {
                stream_t *n = x->next;
                x->next = t[x->id & (cap - 1)];
                t[x->id & (cap - 1)] = x;
                x = n;
            }
        }
        free(ing->tab);
        ing->tab = t;
        ing->tabcap = cap;
    }
    size_t b = s->id & (ing->tabcap - 1);
    s->next = ing->tab[b];
    ing->tab[b] = s;
    ing->nstreams++;
    return 0;
}

/* The tenant's accounting record, created on first use. Under mu. */
static tenant_t *tenant_get(st_ingester_t *ing, const char *id, size_t n)
{
    for (tenant_t *t = ing->tenants; t; t = t->next)
        if (strlen(t->id) == n && memcmp(t->id, id, n) == 0) return t;
    tenant_t *t = calloc(1, sizeof *t);
    if (t == NULL) return NULL;
    t->id = st_str_dup(st_str(id, n));
    if (t->id == NULL) {
        free(t);
        return NULL;
    }
    t->tokens = -1; /* full on first use */
    t->next = ing->tenants;
    ing->tenants = t;
    return t;
}

/* Token bucket: refills at rate up to burst, then takes n if available. */
static bool bucket_take(double *tokens, int64_t *last_ns, double rate, double burst, double n, int64_t now)
{
    if (*tokens < 0) {
        *tokens = burst;
        *last_ns = now;
    }
    double t = *tokens + rate * (double)(now - *last_ns) / 1e9;
    if (t > burst) t = burst;
    *last_ns = now;
    if (n > t) {
        *tokens = t;
        return false;
    }
    *tokens = t - n;
    return true;
}

static void ochunk_free(ochunk_t *c)
{
    if (c == NULL) return;
    st_chunk_writer_free(c->w);
    for (size_t i = 0; i < c->npending; i++) head_unref(c->pending[i]);
    free(c->pending);
    free(c->blocks);
    free(c->path);
    free(c);
}

static void stream_free(stream_t *s)
{
    if (s == NULL) return;
    if (s->tenant_st) s->tenant_st->streams--;
    head_unref(s->head);
    ochunk_free(s->open);
    for (size_t i = 0; i < s->nfin; i++) ochunk_free(s->fin[i]);
    free(s->fin);
    st_labels_free(&s->labels);
    free(s); /* tenant and canon live in the same allocation */
}

/* ---- pushes ---------------------------------------------------------------------------------------- */

typedef struct {
    st_buf_t canon;
    st_buf_t rec;
    uint64_t id;
    uint32_t n;
    uint64_t bytes;  /* line + metadata bytes of its entries */
    size_t count_off;
    bool rejected;   /* refused by admission: not submitted */
} push_stream_t;

struct st_push {
    char *tenant;
    push_stream_t *s;
    size_t n, cap;
    uint32_t *tab; /* open addressing: index+1 of a stream, by canonical-label hash */
    size_t tabcap;
    uint64_t entries, bytes;
    st_wal_ticket_t ticket;
    void *owner;
    int status;
    int limit_status;     /* 0, 429 or 503 */
    st_push_errors_t limit_errs;
    struct push_waiter *waiter; /* st_ingester_push_wait: signalled instead of on_complete */
};

typedef struct push_waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
} push_waiter_t;

int st_push_new(const char *tenant, st_push_t **out)
{
    st_push_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->tenant = strdup(tenant);
    if (p->tenant == NULL) {
        free(p);
        return -ENOMEM;
    }
    p->ticket.owner = p;
    *out = p;
    return 0;
}

void st_push_free(st_push_t *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->n; i++) {
        st_buf_free(&p->s[i].canon);
        st_buf_free(&p->s[i].rec);
    }
    free(p->s);
    free(p->tab);
    free(p->tenant);
    st_push_errors_free(&p->limit_errs);
    free(p);
}

int st_push_limit_status(const st_push_t *p, const char **msg)
{
    if (msg) *msg = p->limit_status ? st_buf_cstr((st_buf_t *)(uintptr_t)&p->limit_errs.text) : NULL;
    return p->limit_status;
}

static uint64_t stream_id_of(const char *tenant, st_str_t canon)
{
    /* hash(tenant \xff labels): two-step to avoid a copy */
    uint64_t ht = st_hash64(tenant, strlen(tenant));
    uint64_t hl = st_hash64(canon.p, canon.n);
    uint64_t x = ht * 0x9E3779B97F4A7C15ULL ^ hl;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x ? x : 1;
}

static int push_grow_tab(st_push_t *p)
{
    size_t cap = p->tabcap ? p->tabcap * 2 : 64;
    uint32_t *t = calloc(cap, sizeof *t);
    if (t == NULL) return -ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        size_t b = p->s[i].id & (cap - 1);
        while (t[b]) b = (b + 1) & (cap - 1);
        t[b] = (uint32_t)i + 1;
    }
    free(p->tab);
    p->tab = t;
    p->tabcap = cap;
    return 0;
}

int st_push_stream(st_push_t *p, const st_labels_t *labels, size_t *idx)
{
    st_buf_t canon = ST_BUF_INIT;
    ST_TRY(st_labels_format(labels, &canon));
    uint64_t id = stream_id_of(p->tenant, st_str(canon.data, canon.len));
    if (p->tabcap == 0 || (p->n + 1) * 2 > p->tabcap) {
        int rc = push_grow_tab(p);
        if (rc < 0) {
            st_buf_free(&canon);
            return rc;
        }
    }
    size_t b = id & (p->tabcap - 1);
    while (p->tab[b]) {
        push_stream_t *s = &p->s[p->tab[b] - 1];
        if (s->id == id && s->canon.len == canon.len && memcmp(s->canon.data, canon.data, canon.len) == 0) {
            st_buf_free(&canon);
            *idx = p->tab[b] - 1;
            return 0;
        }
        b = (b + 1) & (p->tabcap - 1);
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        push_stream_t *s = realloc(p->s, cap * sizeof *s);
        if (s == NULL) {
            st_buf_free(&canon);
            return -ENOMEM;
        }
        p->s = s;
        p->cap = cap;
    }
    push_stream_t *s = &p->s[p->n];
    memset(s, 0, sizeof *s);
    s->canon = canon;
    s->id = id;
    int rc = st_wal_record_begin(&s->rec, REC_ENTRIES);
    if (rc == 0) rc = st_buf_put_lstr(&s->rec, p->tenant, strlen(p->tenant));
    if (rc == 0) rc = st_buf_put_lstr(&s->rec, canon.data, canon.len);
    if (rc == 0) rc = st_buf_put_u64le(&s->rec, id);
    s->count_off = s->rec.len;
    if (rc == 0) rc = st_buf_put_u32le(&s->rec, 0);
    if (rc < 0) {
        st_buf_free(&s->canon);
        st_buf_free(&s->rec);
        return rc;
    }
    p->tab[b] = (uint32_t)p->n + 1;
    *idx = p->n++;
    return 0;
}

int st_push_entry(st_push_t *p, size_t idx, int64_t ts, st_str_t line, st_str_t md)
{
    push_stream_t *s = &p->s[idx];
    st_buf_t *r = &s->rec;
    ST_TRY(st_buf_reserve(r, 30 + line.n + md.n));
    st_buf_put_uvarint(r, st_zigzag(ts));
    st_buf_put_lstr(r, line.p, line.n);
    st_buf_put_lstr(r, md.p, md.n);
    /* rate and size accounting as Loki's: line bytes plus metadata name and value bytes (not the
     * encoding's counts and lengths) */
    uint64_t mdb = 0;
    if (md.n) {
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t n, v;
        while (st_md_next(&it, &n, &v) == 1) mdb += n.n + v.n;
    }
    s->n++;
    s->bytes += line.n + mdb;
    p->entries++;
    p->bytes += line.n + mdb;
    return 0;
}

size_t st_push_nstreams(const st_push_t *p) { return p->n; }
st_str_t st_push_stream_labels(const st_push_t *p, size_t idx) { return st_str(p->s[idx].canon.data, p->s[idx].canon.len); }
uint64_t st_push_entries(const st_push_t *p) { return p->entries; }
uint64_t st_push_bytes(const st_push_t *p) { return p->bytes; }
const char *st_push_tenant(const st_push_t *p) { return p->tenant; }
void st_push_set_owner(st_push_t *p, void *owner) { p->owner = owner; }
void *st_push_owner(const st_push_t *p) { return p->owner; }
int st_push_status(const st_push_t *p) { return p->status; }

/* "pod (4211), instance (12)": the tenant's label names with the most distinct values among its
 * in-memory streams, to say which label blows up the stream count. Under mu. */
static void top_cardinality(st_ingester_t *ing, const tenant_t *t, const st_push_t *p, size_t upto, char *out,
                            size_t outsz)
{
    typedef struct {
        st_str_t name;
        st_u64vec_t values;
    } card_t;
    card_t cards[64];
    size_t nc = 0;
    /* the tenant's streams in memory plus those this push creates before index upto */
    st_labels_t *extra = calloc(upto ? upto : 1, sizeof *extra);
    size_t nextra = 0;
    for (size_t i = 0; extra && i < upto; i++) {
        char err[256];
        if (!p->s[i].rejected && p->s[i].n && table_get(ing, p->s[i].id) == NULL &&
            st_labels_parse(st_str(p->s[i].canon.data, p->s[i].canon.len), &extra[nextra], err) == 0)
            nextra++;
    }
    stream_t *s = NULL;
    size_t b = 0, x = 0;
    for (;;) {
        const st_labels_t *l;
        if (b < ing->tabcap) {
            s = s ? s->next : ing->tab[b];
            if (s == NULL) {
                b++;
                continue;
            }
            if (s->tenant_st != t) continue;
            l = &s->labels;
        } else if (x < nextra) {
            l = &extra[x++];
        } else {
            break;
        }
        for (size_t i = 0; i < l->n; i++) {
            size_t k = 0;
            while (k < nc && !st_str_eq(cards[k].name, l->v[i].name)) k++;
            if (k == nc) {
                if (nc == 64) continue;
                cards[nc].name = l->v[i].name;
                cards[nc].values = ST_U64VEC_INIT;
                nc++;
            }
            st_u64vec_push(&cards[k].values, st_hash64(l->v[i].value.p, l->v[i].value.n));
        }
    }
    size_t best[2] = {SIZE_MAX, SIZE_MAX};
    for (size_t k = 0; k < nc; k++) {
        st_u64vec_sort_unique(&cards[k].values);
        if (best[0] == SIZE_MAX || cards[k].values.n > cards[best[0]].values.n) {
            best[1] = best[0];
            best[0] = k;
        } else if (best[1] == SIZE_MAX || cards[k].values.n > cards[best[1]].values.n) {
            best[1] = k;
        }
    }
    int n = 0;
    out[0] = '\0';
    for (int i = 0; i < 2 && best[i] != SIZE_MAX; i++)
        n += snprintf(out + n, outsz - (size_t)n, "%s%.*s (%zu)", i ? ", " : "", (int)cards[best[i]].name.n,
                      cards[best[i]].name.p, cards[best[i]].values.n);
    for (size_t k = 0; k < nc; k++) st_u64vec_free(&cards[k].values);
    for (size_t i = 0; i < nextra; i++) st_labels_free(&extra[i]);
    free(extra);
}

/* Go's time.Time.String() in UTC ("2026-08-21 10:00:00.5 +0000 UTC": fraction without trailing
 * zeros, none when zero), as Loki's ingester prints an ignored entry's timestamp. out: 64 bytes. */
static void go_time_string(int64_t ns, char *out)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 64, "%Y-%m-%d %H:%M:%S", &tm);
    if (frac) {
        char f[16];
        snprintf(f, sizeof f, "%09lld", (long long)frac);
        size_t k = 9;
        while (k > 0 && f[k - 1] == '0') k--;
        n += (size_t)snprintf(out + n, 64 - n, ".%.*s", (int)k, f);
    }
    snprintf(out + n, 64 - n, " +0000 UTC");
}

/* flagext.ByteSize's String() (c2h5oh/datasize): the largest binary unit that divides v exactly. */
static void datasize_string(uint64_t v, char *out)
{
    static const char *const unit[] = {"EB", "PB", "TB", "GB", "MB", "KB"};
    for (int i = 0; i < 6 && v; i++) {
        uint64_t m = 1ULL << (10 * (6 - i));
        if (v % m == 0) {
            snprintf(out, 32, "%llu%s", (unsigned long long)(v / m), unit[i]);
            return;
        }
    }
    snprintf(out, 32, "%lluB", (unsigned long long)v);
}

/* Loki's ingester answer for a stream over its rate limit: every entry of the stream in this push is
 * ignored, at most 10 listed, each with the per-stream text (naming the entry's line length), then
 * "user '<tenant>', total ignored: N out of N for stream: <labels>". */
static void stream_rate_error(st_push_t *p, const push_stream_t *ps, double rate)
{
    st_buf_t b = ST_BUF_INIT;
    char lim[32], sz[32], when[64];
    datasize_string((uint64_t)rate, lim);
    st_reader_t r = st_reader(ps->rec.data + ps->count_off + 4, ps->rec.len - ps->count_off - 4);
    for (uint32_t i = 0; i < ps->n && i < 10; i++) {
        int64_t ts = st_unzigzag(st_read_uvarint(&r));
        st_str_t line = st_read_lstr(&r);
        st_read_lstr(&r); /* metadata */
        if (r.err) break;
        go_time_string(ts, when);
        datasize_string(line.n, sz);
        st_buf_printf(&b,
                      "entry with timestamp %s ignored, reason: 'Per stream rate limit exceeded (limit: %s/sec) while "
                      "attempting to ingest for stream '%.*s' totaling %s, consider splitting a stream via additional "
                      "labels or contact your Loki administrator to see if the limit can be increased',\n",
                      when, lim, (int)ps->canon.len, ps->canon.data, sz);
    }
    st_buf_printf(&b, "user '%s', total ignored: %u out of %u for stream: %.*s", p->tenant, ps->n, ps->n,
                  (int)ps->canon.len, ps->canon.data);
    st_push_errors_add(&p->limit_errs, st_buf_cstr(&b));
    st_buf_free(&b);
}

/* Bytes the heads hold in memory: their line bytes less what freezing saved. */
static uint64_t head_resident(st_ingester_t *ing)
{
    uint64_t b = atomic_load(&ing->head_bytes), sv = atomic_load(&ing->head_saved);
    return b > sv ? b - sv : 0;
}

/* Applies the admission limits (see st_ingester_push). Returns 0 or ST_ELIMIT. */
static int admit(st_ingester_t *ing, st_push_t *p)
{
    const st_ingest_limits_t *lim = &ing->o.limits;
    char msg[1024];
    int64_t now = st_mono_ns();
    int rc = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < p->n; i++) bytes += p->s[i].bytes;
    if (lim->memory_budget && head_resident(ing) + bytes > lim->memory_budget) {
        snprintf(msg, sizeof msg, "ingester memory budget exceeded (%llu of %zu bytes of unflushed data); retry later",
                 (unsigned long long)head_resident(ing), lim->memory_budget);
        st_push_errors_add(&p->limit_errs, msg);
        p->limit_status = 503;
        st_counter_inc(ing->m_rejected[3]);
        rc = ST_ELIMIT;
        goto out;
    }
    pthread_mutex_lock(&ing->mu);
    tenant_t *t = tenant_get(ing, p->tenant, strlen(p->tenant));
    if (t == NULL) {
        pthread_mutex_unlock(&ing->mu);
        return -ENOMEM;
    }
    if (lim->tenant_memory_budget && t->head_bytes + bytes > lim->tenant_memory_budget) {
        snprintf(msg, sizeof msg, "memory budget of tenant %s exceeded (%llu of %zu bytes of unflushed data); retry later",
                 p->tenant, (unsigned long long)t->head_bytes, lim->tenant_memory_budget);
        st_push_errors_add(&p->limit_errs, msg);
        p->limit_status = 429;
        st_counter_inc(ing->m_rejected[3]);
        rc = ST_ELIMIT;
    } else if (lim->tenant_rate > 0 &&
               !bucket_take(&t->tokens, &t->tokens_ns, lim->tenant_rate, lim->tenant_burst, (double)bytes, now)) {
        snprintf(msg, sizeof msg,
                 "ingestion rate limit exceeded for user %s (limit: %lld bytes/sec) while attempting to ingest '%llu' lines "
                 "totaling '%llu' bytes, reduce log volume or contact your Loki administrator to see if the limit can be "
                 "increased",
                 p->tenant, (long long)lim->tenant_rate, (unsigned long long)p->entries, (unsigned long long)bytes);
        st_push_errors_add(&p->limit_errs, msg);
        p->limit_status = 429;
        st_counter_inc(ing->m_rejected[0]);
        rc = ST_ELIMIT;
    }
    size_t new_streams = 0;
    for (size_t i = 0; rc == 0 && i < p->n; i++) {
        push_stream_t *ps = &p->s[i];
        if (ps->n == 0) continue;
        stream_t *s = table_get(ing, ps->id);
        if (s == NULL) {
            if (lim->max_streams > 0 && t->streams + new_streams >= (size_t)lim->max_streams) {
                char top[256];
                top_cardinality(ing, t, p, i, top, sizeof top);
                snprintf(msg, sizeof msg,
                         "maximum active stream limit exceeded when trying to create stream %.*s, reduce the number of "
                         "active streams (reduce labels or reduce label values), or contact your Loki administrator to "
                         "see if the limit can be increased, user: '%s' (labels with the most values among the %zu "
                         "active streams: %s)",
                         (int)ps->canon.len, ps->canon.data, p->tenant, t->streams + new_streams, top);
                st_push_errors_add(&p->limit_errs, msg);
                ps->rejected = true;
                p->limit_status = 429;
                st_counter_inc(ing->m_rejected[2]);
                continue;
            }
            new_streams++;
        } else if (lim->stream_rate > 0 &&
                   !bucket_take(&s->tokens, &s->tokens_ns, lim->stream_rate, lim->stream_burst, (double)ps->bytes, now)) {
            stream_rate_error(p, ps, lim->stream_rate);
            ps->rejected = true;
            p->limit_status = 429;
            st_counter_inc(ing->m_rejected[1]);
        }
    }
    pthread_mutex_unlock(&ing->mu);
out:
    if (p->limit_status) st_push_errors_finish(&p->limit_errs);
    return rc;
}

int st_ingester_push(st_ingester_t *ing, st_push_t *p)
{
    int arc = admit(ing, p);
    if (arc < 0) return arc;
    st_buf_t *recs = malloc((p->n ? p->n : 1) * sizeof *recs);
    if (recs == NULL) return -ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->s[i].n == 0 || p->s[i].rejected) continue;
        st_put_u32le((uint8_t *)p->s[i].rec.data + p->s[i].count_off, p->s[i].n);
        recs[n++] = p->s[i].rec;
    }
    if (n == 0) {
        free(recs);
        p->status = 0;
        return 1;
    }
    /* Hand the record bytes over before submitting: once submitted, the WAL thread may complete the
     * push (and its owner free it) before st_wal_submit even returns, so p is not touched after. */
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i].n && !p->s[i].rejected) p->s[i].rec = ST_BUF_INIT;
    int rc = st_wal_submit(ing->wal, recs, n, &p->ticket);
    if (rc < 0) {
        size_t k = 0; /* not submitted: give the bytes back */
        for (size_t i = 0; i < p->n; i++)
            if (p->s[i].n && !p->s[i].rejected) p->s[i].rec = recs[k++];
    }
    free(recs);
    return rc;
}

int st_ingester_push_wait(st_ingester_t *ing, st_push_t *p)
{
    push_waiter_t w = {.done = false};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    p->waiter = &w;
    int rc = st_ingester_push(ing, p);
    if (rc == 0) {
        pthread_mutex_lock(&w.mu);
        while (!w.done) pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        rc = p->status;
    } else if (rc == 1) {
        rc = 0;
    }
    p->waiter = NULL;
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    if (rc == 0 && p->limit_status) rc = ST_ELIMIT;
    return rc;
}

/* ---- apply (WAL thread, and replay at start-up) -------------------------------------------------- */

static stream_t *stream_create(st_ingester_t *ing, uint64_t id, st_str_t tenant, st_str_t canon)
{
    /* one allocation: the record, then its tenant and canonical label string */
    stream_t *s = calloc(1, sizeof *s + tenant.n + 1 + canon.n + 1);
    if (s == NULL) return NULL;
    s->id = id;
    s->tenant = (char *)(s + 1);
    memcpy(s->tenant, tenant.p, tenant.n);
    s->canon = s->tenant + tenant.n + 1;
    memcpy(s->canon, canon.p, canon.n);
    s->canon_len = canon.n;
    char err[256];
    if (st_labels_parse(canon, &s->labels, err) < 0) {
        stream_free(s);
        return NULL;
    }
    /* What is already flushed (the stream may have been dropped from memory, or this is replay). */
    st_index_read_t *r;
    if (st_index_read_begin(ing->o.index, &r) == 0) {
        st_str_t lt;
        uint64_t seq;
        if (st_index_stream(r, s->tenant, id, &lt, &seq) == 0) s->flushed_seq = seq;
        st_index_read_end(r);
    }
    s->tokens = -1;
    if ((s->tenant_st = tenant_get(ing, tenant.p, tenant.n)) == NULL || table_put(ing, s) < 0) {
        s->tenant_st = NULL;
        stream_free(s);
        return NULL;
    }
    s->tenant_st->streams++;
    st_counter_inc(ing->m_streams_created);
    return s;
}

static void flusher_wake(st_ingester_t *ing)
{
    pthread_mutex_lock(&ing->fmu);
    ing->fwake = true;
    pthread_cond_signal(&ing->fcv);
    pthread_mutex_unlock(&ing->fmu);
}

/* Moves the stream's head to its open chunk's pending list. Under mu. */
static int seal_head(st_ingester_t *ing, stream_t *s)
{
    if (s->head == NULL || s->head->n == 0) return 0;
    if (s->open == NULL) {
        s->open = calloc(1, sizeof *s->open);
        if (s->open == NULL) return -ENOMEM;
        s->open->min_ts = INT64_MAX;
        s->open->max_ts = INT64_MIN;
        ing->nopen++;
    }
    ochunk_t *c = s->open;
    if (c->npending == c->cappending) {
        size_t cap = c->cappending ? c->cappending * 2 : 4;
        head_t **p = realloc(c->pending, cap * sizeof *p);
        if (p == NULL) return -ENOMEM;
        c->pending = p;
        c->cappending = cap;
    }
    c->pending[c->npending++] = s->head;
    atomic_fetch_add(&ing->sealed_bytes, s->head->bytes);
    s->head = NULL;
    return 0;
}

/* The zstd level for the next block: one below ingester.zstd_level while more than 16 MiB of sealed
 * heads wait, so a flusher that falls behind a full-speed push catches up instead of letting heads
 * grow towards memory_budget (adaptive, like zstd --adapt). */
#define FLUSH_BACKLOG (16u << 20)
static int flush_level(st_ingester_t *ing)
{
    int l = ing->o.zstd_level;
    return atomic_load(&ing->sealed_bytes) > FLUSH_BACKLOG && l > 1 ? l - 1 : l;
}

static void apply_record(st_ingester_t *ing, uint64_t seq, const uint8_t *payload, size_t n)
{
    st_reader_t r = st_reader(payload, n);
    uint8_t type = st_read_u8(&r);
    st_read_u64le(&r);
    if (type != REC_ENTRIES) {
        ST_LOG_WARN("ingester", "msg=\"unknown WAL record type skipped\" type=%u seq=%llu", type, (unsigned long long)seq);
        return;
    }
    st_str_t tenant = st_read_lstr(&r), canon = st_read_lstr(&r);
    uint64_t id = st_read_u64le(&r);
    uint32_t count = st_read_u32le(&r);
    if (r.err || tenant.n == 0 || tenant.n > 150) {
        ST_LOG_ERROR("ingester", "msg=\"malformed WAL record skipped\" seq=%llu", (unsigned long long)seq);
        return;
    }
    pthread_mutex_lock(&ing->mu);
    stream_t *s = table_get(ing, id);
    if (s && (strlen(s->tenant) != tenant.n || memcmp(s->tenant, tenant.p, tenant.n) != 0 || s->canon_len != canon.n ||
              memcmp(s->canon, canon.p, canon.n) != 0)) {
        /* 64-bit id collision between different streams: astronomically rare; refuse to mix them. */
        ST_LOG_ERROR("ingester", "msg=\"stream id collision; record dropped\" id=%016llx", (unsigned long long)id);
        pthread_mutex_unlock(&ing->mu);
        return;
    }
    if (s == NULL && (s = stream_create(ing, id, tenant, canon)) == NULL) {
        pthread_mutex_unlock(&ing->mu);
        ST_LOG_ERROR("ingester", "msg=\"cannot create stream; record dropped\" seq=%llu", (unsigned long long)seq);
        return;
    }
    if (seq <= s->flushed_seq) {
        pthread_mutex_unlock(&ing->mu);
        return; /* replay: already in an indexed chunk */
    }
    /* A client that retries a request after a partial rejection (429) sends the same entries again:
     * a record identical to a recent one of this stream is dropped as a whole. */
    uint64_t rh = st_hash64(r.p, st_reader_left(&r)) ^ (uint64_t)count * 0x9E3779B97F4A7C15ULL;
    for (unsigned k = 0; k < s->nrecent && k < 4; k++) {
        if (s->recent[k] == rh) {
            s->last_seq = seq;
            pthread_mutex_unlock(&ing->mu);
            st_counter_inc(ing->m_dup_records);
            st_counter_add(ing->m_dups, count);
            return;
        }
    }
    s->recent[s->nrecent++ % 4] = rh;
    int64_t now = st_mono_ns();
    uint64_t added = 0, dups = 0, bytes = 0;
    bool wake = false;
    for (uint32_t i = 0; i < count; i++) {
        int64_t ts = st_unzigzag(st_read_uvarint(&r));
        st_str_t line = st_read_lstr(&r), md = st_read_lstr(&r);
        if (r.err) break;
        /* Exact duplicate of the last accepted entry (same time, line and metadata): drop. */
        uint64_t h = st_hash64(line.p, line.n) ^ (md.n ? st_hash64(md.p, md.n) * 31 : 0);
        if (s->has_last && s->last_ts == ts && s->last_hash == h) {
            dups++;
            continue;
        }
        if (s->head == NULL && (s->head = head_new()) == NULL) break;
        if (head_append(s->head, ts, line, md) < 0) break;
        s->has_last = true;
        s->last_ts = ts;
        s->last_hash = h;
        added++;
        bytes += line.n + md.n;
        if (s->head->zraw + s->head->buf.len >= ing->o.block_size) {
            if (seal_head(ing, s) == 0) wake = true;
        }
    }
    if (added) {
        if (s->min_unflushed_seq == 0) s->min_unflushed_seq = seq;
        if (s->first_write_mono == 0) s->first_write_mono = now;
        s->last_write_mono = now;
    }
    s->last_seq = seq;
    s->tenant_st->head_bytes += bytes;
    pthread_mutex_unlock(&ing->mu);
    atomic_fetch_add(&ing->head_bytes, bytes);
    st_counter_add(ing->m_entries, added);
    st_counter_add(ing->m_bytes, bytes);
    st_counter_add(ing->m_dups, dups);
    if (ing->o.head_memory_target && head_resident(ing) > ing->o.head_memory_target &&
        !atomic_exchange(&ing->mem_signaled, true))
        wake = true;
    if (wake) flusher_wake(ing);
}

/* ---- tail subscribers (live tail: st_ingester_tail_subscribe) ----------------------------------- */

struct st_tail_sub {
    char *tenant;
    st_tail_fn fn;
    void *arg;
    struct st_tail_sub *next;
};

int st_ingester_tail_subscribe(st_ingester_t *ing, const char *tenant, st_tail_fn fn, void *arg,
                               st_tail_sub_t **out)
{
    st_tail_sub_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->tenant = strdup(tenant)) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_lock(&ing->tail_mu);
    s->next = ing->tail_subs;
    ing->tail_subs = s;
    atomic_fetch_add(&ing->tail_n, 1);
    pthread_mutex_unlock(&ing->tail_mu);
    *out = s;
    return 0;
}

void st_ingester_tail_unsubscribe(st_ingester_t *ing, st_tail_sub_t *sub)
{
    if (sub == NULL) return;
    pthread_mutex_lock(&ing->tail_mu); /* waits for a callback in progress */
    for (st_tail_sub_t **pp = &ing->tail_subs; *pp; pp = &(*pp)->next) {
        if (*pp == sub) {
            *pp = sub->next;
            atomic_fetch_sub(&ing->tail_n, 1);
            break;
        }
    }
    pthread_mutex_unlock(&ing->tail_mu);
    free(sub->tenant);
    free(sub);
}

/* Hands an applied WAL record to the subscribers of its tenant (WAL thread). */
static void tail_publish(st_ingester_t *ing, const uint8_t *payload, size_t n)
{
    st_reader_t r = st_reader(payload, n);
    if (st_read_u8(&r) != REC_ENTRIES) return;
    st_read_u64le(&r);
    st_str_t tenant = st_read_lstr(&r), canon = st_read_lstr(&r);
    uint64_t id = st_read_u64le(&r);
    uint32_t count = st_read_u32le(&r);
    if (r.err || count == 0) return;
    pthread_mutex_lock(&ing->tail_mu);
    bool any = false;
    for (st_tail_sub_t *s = ing->tail_subs; s && !any; s = s->next)
        any = strlen(s->tenant) == tenant.n && memcmp(s->tenant, tenant.p, tenant.n) == 0;
    if (any && count > ing->tail_cap) {
        st_entry_t *e = realloc(ing->tail_scratch, count * sizeof *e);
        if (e == NULL) any = false;
        else {
            ing->tail_scratch = e;
            ing->tail_cap = count;
        }
    }
    size_t ne = 0;
    for (uint32_t i = 0; any && i < count; i++) {
        st_entry_t *e = &ing->tail_scratch[ne];
        e->ts = st_unzigzag(st_read_uvarint(&r));
        e->line = st_read_lstr(&r);
        e->md = st_read_lstr(&r);
        if (r.err) break;
        ne++;
    }
    for (st_tail_sub_t *s = ing->tail_subs; any && ne && s; s = s->next)
        if (strlen(s->tenant) == tenant.n && memcmp(s->tenant, tenant.p, tenant.n) == 0)
            s->fn(s->arg, tenant, id, canon, ing->tail_scratch, ne);
    pthread_mutex_unlock(&ing->tail_mu);
}

static void wal_apply(void *arg, const uint8_t *payload, size_t n)
{
    st_ingester_t *ing = arg;
    apply_record(ing, st_get_u64le(payload + ST_WAL_SEQ_OFFSET), payload, n);
    if (atomic_load_explicit(&ing->tail_n, memory_order_relaxed) > 0) tail_publish(ing, payload, n);
}

static void wal_complete(void *arg, st_wal_ticket_t *list)
{
    st_ingester_t *ing = arg;
    while (list) {
        st_wal_ticket_t *next = list->next;
        st_push_t *p = list->owner;
        p->status = list->status;
        if (p->waiter) {
            push_waiter_t *w = p->waiter;
            pthread_mutex_lock(&w->mu);
            w->done = true;
            pthread_cond_signal(&w->cv);
            pthread_mutex_unlock(&w->mu);
        } else if (ing->o.on_complete) {
            ing->o.on_complete(ing->o.arg, p);
        }
        list = next;
    }
}

static void replay_cb(void *arg, uint64_t seq, const uint8_t *payload, size_t n)
{
    apply_record(arg, seq, payload, n);
}

/* ---- flusher ------------------------------------------------------------------------------------ */

typedef struct {
    stream_t *s;
    ochunk_t *c;
    size_t seq; /* position found in */
} work_t;

static int work_push(work_t **w, size_t *n, size_t *cap, stream_t *s, ochunk_t *c)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        work_t *x = realloc(*w, nc * sizeof *x);
        if (x == NULL) return -ENOMEM;
        *w = x;
        *cap = nc;
    }
    (*w)[*n] = (work_t){s, c, *n};
    (*n)++;
    return 0;
}

/* Detaches the stream's open chunk (with the current head) for closing. Under mu. */
static int detach_for_finalize(st_ingester_t *ing, stream_t *s)
{
    ST_TRY(seal_head(ing, s));
    if (s->open == NULL) return 0;
    if (s->nfin == s->capfin) {
        size_t cap = s->capfin ? s->capfin * 2 : 2;
        ochunk_t **f = realloc(s->fin, cap * sizeof *f);
        if (f == NULL) return -ENOMEM;
        s->fin = f;
        s->capfin = cap;
    }
    ochunk_t *c = s->open;
    c->finalizing = true;
    c->min_seq = s->min_unflushed_seq;
    c->max_seq = s->last_seq;
    s->fin[s->nfin++] = c;
    s->open = NULL;
    s->min_unflushed_seq = 0;
    s->first_write_mono = 0;
    return 0;
}

/* Writes one pending head of c as a block (flusher thread, outside mu). */
static int write_pending(st_ingester_t *ing, stream_t *s, ochunk_t *c, head_t *h)
{
    if (c->w == NULL) {
        char path[4096];
        pthread_mutex_lock(&ing->mu);
        uint64_t n = ++ing->open_counter;
        pthread_mutex_unlock(&ing->mu);
        snprintf(path, sizeof path, "%s/%016llx-%08llx.chunk", ing->open_dir, (unsigned long long)s->id,
                 (unsigned long long)n);
        ST_TRY(st_chunk_writer_open(path, s->tenant, st_str(s->canon, s->canon_len), s->id, ing->o.zstd_level, &c->w));
        st_chunk_writer_set_filters(c->w, ing->o.block_filters);
        char *p = strdup(path);
        pthread_mutex_lock(&ing->mu);
        free(c->path);
        c->path = p;
        pthread_mutex_unlock(&ing->mu);
        if (p == NULL) return -ENOMEM;
    }
    st_entry_t *e;
    size_t n;
    ST_TRY(head_entries(h, INT64_MIN, INT64_MAX, &e, &n));
    st_chunk_writer_set_level(c->w, flush_level(ing));
    int rc = st_chunk_writer_add(c->w, e, n);
    free(e);
    if (rc < 0) return rc;
    uint32_t nb;
    const st_block_meta_t *bm = st_chunk_writer_blocks(c->w, &nb);
    st_block_meta_t *copy = malloc(nb * sizeof *copy);
    if (copy == NULL) return -ENOMEM;
    memcpy(copy, bm, nb * sizeof *copy);
    pthread_mutex_lock(&ing->mu);
    free(c->blocks);
    c->blocks = copy;
    c->nblocks = nb;
    /* drop the head we just wrote (always the first pending one) */
    memmove(c->pending, c->pending + 1, (c->npending - 1) * sizeof *c->pending);
    c->npending--;
    c->written = st_chunk_writer_size(c->w);
    if (h->min_ts < c->min_ts) c->min_ts = h->min_ts;
    if (h->max_ts > c->max_ts) c->max_ts = h->max_ts;
    c->entries += h->n;
    c->raw_bytes += h->bytes;
    s->tenant_st->head_bytes -= h->bytes;
    pthread_mutex_unlock(&ing->mu);
    atomic_fetch_sub(&ing->head_saved, h->saved);
    atomic_fetch_sub(&ing->sealed_bytes, h->bytes);
    atomic_fetch_sub(&ing->head_bytes, h->bytes);
    head_unref(h);
    return 0;
}

/* Finishes a closing chunk's file: footer, fsync, id, rename into place (flusher, outside mu). */
static int finish_chunk(st_ingester_t *ing, ochunk_t *c)
{
    if (!c->finished) {
        uint64_t id = c->chunk_id ? c->chunk_id : ing->next_chunk_id++;
        ST_TRY(st_chunk_writer_finish(c->w, &c->crc, &c->size));
        pthread_mutex_lock(&ing->mu);
        c->chunk_id = id;
        c->finished = true;
        pthread_mutex_unlock(&ing->mu);
    }
    if (!c->renamed) {
        char rel[64], path[4096], dir[4096];
        st_chunk_local_path(c->chunk_id, rel, sizeof rel);
        snprintf(path, sizeof path, "%s/%s", ing->o.chunks_dir, rel);
        snprintf(dir, sizeof dir, "%s/%.6s", ing->o.chunks_dir, rel);
        ST_TRY(st_mkdirs(dir, 0755));
        char *np = strdup(path);
        if (np == NULL) return -ENOMEM;
        pthread_mutex_lock(&ing->mu);
        int rc = st_chunk_writer_rename(c->w, path);
        if (rc == 0) {
            free(c->path);
            c->path = np;
            c->renamed = true;
        }
        pthread_mutex_unlock(&ing->mu);
        if (rc < 0) {
            free(np);
            return rc;
        }
        ST_TRY(st_fsync_dir(dir));
        ST_TRY(st_fsync_dir(ing->open_dir));
    }
    return 0;
}

/* Builds one closing chunk that never got a file of its own (a small stream) in memory from its
 * pending heads and appends it to the cycle's pack file (flusher thread, outside mu). */
static int pack_chunk(st_ingester_t *ing, stream_t *s, ochunk_t *c, int fd, uint64_t *off)
{
    st_chunk_writer_t *w;
    ST_TRY(st_chunk_writer_open(NULL, s->tenant, st_str(s->canon, s->canon_len), s->id, flush_level(ing), &w));
    st_chunk_writer_set_filters(w, ing->o.block_filters);
    int rc = 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    uint64_t entries = 0, raw = 0;
    for (size_t i = 0; i < c->npending && rc == 0; i++) {
        head_t *h = c->pending[i]; /* immutable once sealed; the list only changes on this thread */
        st_entry_t *e;
        size_t n;
        if ((rc = head_entries(h, INT64_MIN, INT64_MAX, &e, &n)) < 0) break;
        rc = st_chunk_writer_add(w, e, n);
        free(e);
        if (h->min_ts < lo) lo = h->min_ts;
        if (h->max_ts > hi) hi = h->max_ts;
        entries += h->n;
        raw += h->bytes;
    }
    uint32_t crc = 0;
    uint64_t size = 0;
    if (rc == 0) rc = st_chunk_writer_finish(w, &crc, &size);
    if (rc == 0) {
        st_str_t bytes = st_chunk_writer_bytes(w);
        rc = st_pwrite_full(fd, bytes.p, bytes.n, *off);
    }
    if (rc == 0) {
        c->pack_off = *off;
        c->size = size;
        c->crc = crc;
        c->min_ts = lo;
        c->max_ts = hi;
        c->entries = entries;
        c->raw_bytes = raw;
        *off += size;
    }
    st_chunk_writer_free(w);
    return rc;
}

typedef struct {
    stream_t *s;
    int64_t first;
    uint64_t bytes;
} memc_t;

static int cmp_memc(const void *a, const void *b)
{
    int64_t x = ((const memc_t *)a)->first, y = ((const memc_t *)b)->first;
    return x < y ? -1 : x > y;
}

/* ---- freezing heads --------------------------------------------------------------------------- */

typedef struct {
    stream_t *s;
    head_t *h;
    int64_t last;
    size_t len;    /* tail bytes copied */
    uint32_t n;    /* entries in the copy */
    size_t off;    /* the tail, copied under mu into the batch buffer at off (len bytes); */
    bool copied;
    st_buf_t z;        /* the new frame, */
    st_spill_ref_t zs; /* or where it was spilled */
    uint64_t zraw;
    int64_t copy_last;   /* timestamp of the copy's last entry */
    uint64_t copy_lines; /* line + metadata bytes in the copy */
} frz_t;

/* A tail shorter than this is not worth a new frame in memory; spilled, any tail is worth it */
#define FREEZE_MIN_TAIL         256
#define FREEZE_MIN_TAIL_SPILLED 64
#define FREEZE_BATCH            (4u << 20) /* tail bytes copied per lock hold, */
#define FREEZE_BATCH_N          4096       /* and heads */

typedef struct {
    stream_t *s;
    head_t *h;
    int64_t last;
} frz_cand_t;

static int cmp_frz(const void *a, const void *b)
{
    int64_t x = ((const frz_cand_t *)a)->last, y = ((const frz_cand_t *)b)->last;
    return x < y ? -1 : x > y;
}

/* Compresses v->h's frozen part and the copied tail into one frame (outside mu: only the flusher
 * changes a head's frozen frame, so reading it here is safe). The frame is compressed into the
 * scratch buffer zs and then written to the spill files, or (spill off or failing) copied into an
 * allocation of exactly its size: allocating the bound and shrinking it left a hole of about twice
 * the frame behind every frozen head. */
static int freeze_one(st_ingester_t *ing, ZSTD_CCtx *cc, ZSTD_DCtx *dc, st_buf_t *raw, st_buf_t *zs,
                      st_buf_t *tmp, const uint8_t *copy, frz_t *v)
{
    head_t *h = v->h;
    raw->len = 0;
    ST_TRY(st_buf_reserve(raw, h->zraw + v->len));
    if (h->zraw) ST_TRY(head_unfreeze(h, dc, tmp, (uint8_t *)raw->data));
    memcpy(raw->data + h->zraw, copy, v->len);
    raw->len = h->zraw + v->len;
    size_t bound = ZSTD_compressBound(raw->len);
    zs->len = 0;
    ST_TRY(st_buf_reserve(zs, bound));
    size_t zn = ZSTD_compressCCtx(cc, zs->data, bound, raw->data, raw->len, 1);
    if (ZSTD_isError(zn)) return -EIO;
    v->zraw = raw->len;
    if (ing->spill && st_spill_write(ing->spill, zs->data, zn, &v->zs) == 0) return 0;
    if ((v->z.data = malloc(zn ? zn : 1)) == NULL) return -ENOMEM;
    memcpy(v->z.data, zs->data, zn);
    v->z.len = zn;
    v->z.cap = zn ? zn : 1;
    return 0;
}

/* Heads holding more than ingester.head_memory_target (very many streams, each with a little data,
 * so no head fills a block): the older bytes of live heads are zstd-compressed (spilled), streams
 * written longest ago first, until the resident head bytes are under three quarters of the target.
 * Queries and block writes decompress them (head_entries). Flusher thread; takes mu in batches.
 * Returns false when every candidate was frozen and the heads are still above the target (then
 * closing chunks early is what is left), true otherwise. */
static bool freeze_heads(st_ingester_t *ing)
{
    uint64_t target = ing->o.head_memory_target;
    if (target == 0 || head_resident(ing) <= target) return true;
    size_t min_tail = ing->spill ? FREEZE_MIN_TAIL_SPILLED : FREEZE_MIN_TAIL;
    pthread_mutex_lock(&ing->mu);
    frz_cand_t *c = malloc((ing->nstreams ? ing->nstreams : 1) * sizeof *c); /* 24 bytes a stream */
    size_t n = 0;
    for (size_t b = 0; c && b < ing->tabcap; b++)
        for (stream_t *s = ing->tab[b]; s; s = s->next)
            if (s->head && s->head->buf.len >= min_tail && n < ing->nstreams)
                c[n++] = (frz_cand_t){s, s->head, s->last_write_mono};
    pthread_mutex_unlock(&ing->mu);
    ZSTD_CCtx *cc = st_zstd_cctx(); /* the flusher's own, also used for its chunk blocks */
    ZSTD_DCtx *dc = st_zstd_dctx();
    frz_t *v = calloc(FREEZE_BATCH_N, sizeof *v); /* one batch's work */
    if (c == NULL || v == NULL || cc == NULL || dc == NULL) {
        free(c);
        free(v);
        return false;
    }
    st_qsort(c, n, sizeof *c, cmp_frz);
    st_buf_t raw = {0}, zs = {0}, tmp = {0}, batch = {0}; /* batch: the tails copied under one lock hold */
    uint64_t goal = target / 4 * 3, frozen = 0;
    size_t i = 0;
    while (i < n && head_resident(ing) > goal) {
        size_t nv = 0;
        batch.len = 0;
        pthread_mutex_lock(&ing->mu);
        for (; i < n && nv < FREEZE_BATCH_N && batch.len < FREEZE_BATCH; i++) {
            head_t *h = c[i].h;
            if (c[i].s->head != h) continue; /* sealed since: immutable now */
            frz_t *w = &v[nv];
            *w = (frz_t){.s = c[i].s, .h = h, .off = batch.len};
            if (st_buf_append(&batch, h->buf.data, h->buf.len) < 0) continue;
            w->copied = true;
            w->len = h->buf.len;
            w->n = h->n - h->zn;
            w->copy_lines = h->bytes - h->zlines; /* the tail holds every entry not frozen */
            w->copy_last = h->last_ts;            /* and the last one appended */
            nv++;
        }
        pthread_mutex_unlock(&ing->mu);
        for (size_t k = 0; k < nv; k++)
            if (freeze_one(ing, cc, dc, &raw, &zs, &tmp, (const uint8_t *)batch.data + v[k].off, &v[k]) < 0) {
                st_buf_free(&v[k].z);
                st_spill_release(&v[k].zs);
            }
        pthread_mutex_lock(&ing->mu);
        for (size_t k = 0; k < nv; k++) {
            head_t *h = v[k].h;
            if ((v[k].z.len || v[k].zs.seg) && v[k].s->head == h) {
                /* entries appended since the copy stay in the tail */
                size_t extra = h->buf.len - v[k].len;
                memmove(h->buf.data, h->buf.data + v[k].len, extra);
                h->buf.len = extra;
                if (extra == 0) {
                    st_buf_free(&h->buf);
                } else { /* give the rest of the old tail's capacity back */
                    char *shrunk = realloc(h->buf.data, extra);
                    if (shrunk) {
                        h->buf.data = shrunk;
                        h->buf.cap = extra;
                    }
                }
                st_buf_free(&h->z);
                st_spill_release(&h->zs);
                h->z = v[k].z;
                h->zs = v[k].zs;
                v[k].z = (st_buf_t){0};
                v[k].zs = (st_spill_ref_t){0};
                h->zraw = v[k].zraw;
                h->zn += v[k].n;
                h->zlines += v[k].copy_lines;
                h->tail_base = v[k].copy_last; /* what the rest of the tail is relative to */
                uint64_t lines = h->zlines;
                uint64_t saved = lines > h->z.len ? lines - h->z.len : 0; /* a spilled frame: all */
                atomic_fetch_add(&ing->head_saved, saved);
                atomic_fetch_sub(&ing->head_saved, h->saved);
                h->saved = saved;
                frozen++;
            }
            st_buf_free(&v[k].z);
            st_spill_release(&v[k].zs);
        }
        pthread_mutex_unlock(&ing->mu);
    }
    st_buf_free(&raw);
    st_buf_free(&zs);
    st_buf_free(&tmp);
    st_buf_free(&batch);
    free(v);
    free(c);
    st_counter_add(ing->m_freezes, frozen);
    atomic_fetch_add(&ing->freezes, frozen);
    if (i < n || head_resident(ing) <= target) return true; /* stopped at the goal */
    /* Every candidate done and still above the target: lines pushed meanwhile, which the next cycle
     * freezes, or what freezing cannot reach (short tails, sealed heads), which closing can. */
    uint64_t freezable = 0;
    pthread_mutex_lock(&ing->mu);
    for (size_t b = 0; b < ing->tabcap; b++)
        for (stream_t *s = ing->tab[b]; s; s = s->next)
            if (s->head && s->head->buf.len >= min_tail) freezable += s->head->buf.len;
    pthread_mutex_unlock(&ing->mu);
    uint64_t res = head_resident(ing);
    return res <= target || res - target <= freezable;
}

/* Adds h to v if its frozen frame is in segment g, taking a reference. Under mu. */
static int compact_push(head_t ***v, size_t *n, size_t *cap, head_t *h, const st_spill_seg_t *g)
{
    if (h == NULL || h->zs.seg != g) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        head_t **x = realloc(*v, nc * sizeof *x);
        if (x == NULL) return -ENOMEM;
        *v = x;
        *cap = nc;
    }
    atomic_fetch_add(&h->refs, 1);
    (*v)[(*n)++] = h;
    return 0;
}

/* Spill files holding more than twice the frames still referenced (streams that froze once and then
 * went quiet pin old segments): the frames still referenced in the emptiest old segment are
 * rewritten to the current one, so that segment can go. Flusher thread; a few segments per cycle. */
static void compact_spill(st_ingester_t *ing)
{
    st_spill_seg_t *g;
    for (int round = 0; ing->spill && round < 4 && (g = st_spill_victim(ing->spill)) != NULL; round++) {
        head_t **v = NULL;
        size_t n = 0, cap = 0;
        int rc = 0;
        /* (g may be freed meanwhile by a query dropping the last head in it; a new segment at the same
         * address only means some frames are rewritten once more) */
        pthread_mutex_lock(&ing->mu);
        for (size_t b = 0; b < ing->tabcap && rc == 0; b++)
            for (stream_t *s = ing->tab[b]; s && rc == 0; s = s->next) {
                rc = compact_push(&v, &n, &cap, s->head, g);
                for (size_t k = 0; k <= s->nfin && rc == 0; k++) { /* the closing chunks, then the open one */
                    ochunk_t *c = k < s->nfin ? s->fin[k] : s->open;
                    for (size_t i = 0; c && i < c->npending && rc == 0; i++)
                        rc = compact_push(&v, &n, &cap, c->pending[i], g);
                }
            }
        pthread_mutex_unlock(&ing->mu);
        st_buf_t tmp = ST_BUF_INIT;
        for (size_t i = 0; i < n; i++) {
            head_t *h = v[i];
            st_spill_ref_t old = h->zs, nw; /* only this thread changes frames */
            if (rc == 0 && (rc = st_buf_reserve(&tmp, old.len)) == 0 &&
                (rc = st_spill_read(old, tmp.data)) == 0 &&
                (rc = st_spill_write(ing->spill, tmp.data, old.len, &nw)) == 0) {
                pthread_mutex_lock(&ing->mu);
                h->zs = nw;
                pthread_mutex_unlock(&ing->mu);
                st_spill_release(&old);
            }
            head_unref(h);
        }
        st_buf_free(&tmp);
        free(v);
        if (rc < 0) {
            ST_LOG_WARN("ingester", "msg=\"compacting head spill files failed; will retry\" err=\"%s\"",
                        st_strerror(rc));
            break;
        }
    }
}

/* Live heads still holding more than ingester.head_memory_target after freezing everything it could: the
 * streams written longest ago close their chunks now, until the heads would be back under half the target.
 * Sealed heads waiting for the flusher do not count: closing chunks would only add to them. Under mu. */
static void choose_mem_close(st_ingester_t *ing)
{
    uint64_t target = ing->o.head_memory_target, hb = head_resident(ing),
             sealed = atomic_load(&ing->sealed_bytes);
    hb = hb > sealed ? hb - sealed : 0;
    if (target == 0 || hb <= target) return;
    memc_t *v = malloc(ing->nstreams * sizeof *v);
    if (v == NULL) return;
    size_t n = 0;
    for (size_t b = 0; b < ing->tabcap; b++)
        for (stream_t *s = ing->tab[b]; s; s = s->next)
            if (s->head && s->head->n && n < ing->nstreams)
                v[n++] = (memc_t){s, s->first_write_mono, s->head->bytes - s->head->saved};
    st_qsort(v, n, sizeof *v, cmp_memc);
    uint64_t need = hb - target / 2, freed = 0;
    size_t k = 0;
    for (; k < n && freed < need; k++) {
        v[k].s->mem_close = true;
        freed += v[k].bytes;
    }
    free(v);
    st_counter_add(ing->m_mem_closes, k);
}

#define FLUSH_SLICE 4096 /* closing chunks per index transaction */

static int cmp_work(const void *a, const void *b)
{
    const work_t *x = a, *y = b;
    int c = x->s == y->s ? 0 : strcmp(x->s->tenant, y->s->tenant);
    if (c == 0 && x->s->id != y->s->id) c = x->s->id < y->s->id ? -1 : 1;
    if (c == 0) c = x->seq < y->seq ? -1 : x->seq > y->seq; /* a stream's chunks in the order found */
    return c;
}

/* Steps 3 to 5a of a flush cycle for the closing chunks among work[lo, hi): pack the small ones,
 * finish the others, index them all in one transaction (with their audit records), publish. Slices
 * keep a cycle that closes very many chunks at once (100,000 idle streams) from building one huge
 * transaction: LMDB keeps a transaction's dirty pages in memory (44 MB for 100,000 chunks). Returns
 * whether the transaction committed; adds the chunks indexed to *nindexed. */
static bool close_slice(st_ingester_t *ing, work_t *work, bool *failed, size_t lo, size_t hi,
                        size_t *nindexed)
{
    /* 3a. small closing chunks (no file of their own) go into one pack file, synced once */
    int pack_fd = -1;
    uint64_t pack_id = 0, pack_off = 0;
    char pack_tmp[4096] = "", pack_rel[64] = "";
    bool pack_ok = true;
    for (size_t i = lo; i < hi; i++) {
        ochunk_t *c = work[i].c;
        if (!c->finalizing || c->w != NULL || c->npending == 0 || c->finished || failed[i]) continue;
        int rc = 0;
        if (pack_fd < 0) {
            pack_id = ing->next_chunk_id;
            snprintf(pack_tmp, sizeof pack_tmp, "%s/%016llx.pack", ing->open_dir, (unsigned long long)pack_id);
            pack_fd = open(pack_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (pack_fd < 0) rc = -errno;
        }
        if (rc == 0) {
            c->chunk_id = ing->next_chunk_id++;
            rc = pack_chunk(ing, work[i].s, c, pack_fd, &pack_off);
        }
        if (rc < 0) {
            failed[i] = true;
            pack_ok = rc != -EIO && rc != -ENOSPC ? pack_ok : false;
            st_counter_inc(ing->m_flush_fail);
            ST_LOG_ERROR("ingester", "msg=\"packing chunk failed; will retry\" stream=%016llx err=\"%s\"",
                         (unsigned long long)work[i].s->id, st_strerror(rc));
            if (pack_fd < 0) break;
            continue;
        }
        c->packed = true;
        c->pack_id = pack_id;
    }
    if (pack_fd >= 0) {
        int rc = pack_ok ? 0 : -EIO;
        if (rc == 0 && fsync(pack_fd) < 0) rc = -errno;
        close(pack_fd);
        char dir[4096], path[4096];
        st_chunk_local_path(pack_id, pack_rel, sizeof pack_rel);
        memcpy(pack_rel + strlen(pack_rel) - 6, ".pack", 6); /* "....chunk" -> "....pack" */
        snprintf(dir, sizeof dir, "%s/%.6s", ing->o.chunks_dir, pack_rel);
        snprintf(path, sizeof path, "%s/%s", ing->o.chunks_dir, pack_rel);
        if (rc == 0) rc = st_mkdirs(dir, 0755);
        if (rc == 0 && rename(pack_tmp, path) < 0) rc = -errno;
        if (rc == 0) rc = st_fsync_dir(dir);
        if (rc < 0) {
            ST_LOG_ERROR("ingester", "msg=\"writing pack failed; will retry\" path=%s err=\"%s\"", pack_tmp, st_strerror(rc));
            unlink(pack_tmp);
            st_counter_inc(ing->m_flush_fail);
        }
        pthread_mutex_lock(&ing->mu);
        for (size_t i = lo; i < hi; i++) {
            ochunk_t *c = work[i].c;
            if (!c->packed || c->pack_id != pack_id || c->finished) continue;
            if (rc < 0) {
                failed[i] = true;
                c->packed = false;
                c->chunk_id = 0;
                continue;
            }
            c->finished = true; /* snapshots now skip this id in the index */
            c->renamed = true;
        }
        pthread_mutex_unlock(&ing->mu);
    }

    /* 3b. finish chunks with files of their own, and 4. index everything in one transaction */
    st_index_write_t *w = NULL;
    size_t ncommit = 0;
    uint64_t max_seq = 0;
    st_audit_batch_t *audit = st_audit_batch_begin(); /* chunk.write records (audit/audit.h) */
    for (size_t i = lo; i < hi; i++) {
        ochunk_t *c = work[i].c;
        stream_t *s = work[i].s;
        if (!c->finalizing || failed[i]) continue;
        if (!c->packed && (c->npending || c->w == NULL)) continue;
        int rc = c->packed ? 0 : finish_chunk(ing, c);
        if (rc == 0 && w == NULL) rc = st_index_write_begin(ing->o.index, &w);
        if (rc == 0) {
            st_chunk_ref_t ref;
            memset(&ref, 0, sizeof ref);
            ref.chunk_id = c->chunk_id;
            ref.stream_id = s->id;
            ref.min_ts = c->min_ts;
            ref.max_ts = c->max_ts;
            ref.entries = (uint32_t)c->entries;
            ref.raw_bytes = c->raw_bytes;
            ref.size = c->size;
            ref.crc32 = c->crc;
            ref.loc.kind = ST_LOC_LOCAL;
            if (c->packed) {
                char rel[64];
                st_chunk_local_path(c->pack_id, rel, sizeof rel);
                memcpy(rel + strlen(rel) - 6, ".pack", 6);
                snprintf(ref.loc.path, sizeof ref.loc.path, "%s", rel);
                ref.loc.offset = c->pack_off;
            } else {
                st_chunk_local_path(c->chunk_id, ref.loc.path, sizeof ref.loc.path);
                ref.loc.offset = 0;
            }
            ref.loc.length = c->size;
            rc = st_index_put_chunk(w, s->tenant, &s->labels, st_str(s->canon, s->canon_len), &ref);
            if (rc == 0) rc = st_index_set_flushed_seq(w, s->tenant, s->id, st_str(s->canon, s->canon_len), c->max_seq);
            if (rc == 0) st_audit_batch_chunk(audit, s->tenant, st_str(s->canon, s->canon_len), &ref, ing->o.chunks_dir);
            if (rc == 0) {
                ncommit++;
                if (c->max_seq > max_seq) max_seq = c->max_seq;
            }
        }
        if (rc < 0) {
            failed[i] = true;
            st_counter_inc(ing->m_flush_fail);
            ST_LOG_ERROR("ingester", "msg=\"closing chunk failed; will retry\" stream=%016llx err=\"%s\"",
                         (unsigned long long)s->id, st_strerror(rc));
            if (w) {
                /* the transaction may be half-written: drop everything of this cycle, retry later */
                st_index_write_abort(w);
                w = NULL;
                ncommit = 0;
                for (size_t j = lo; j < hi; j++) failed[j] = true;
                break;
            }
        }
    }
    bool committed = false;
    if (w) {
        int rc = st_index_set_meta(w, "next_chunk_id", ing->next_chunk_id);
        if (rc == 0 && max_seq > ing->committed_seq) rc = st_index_set_meta(w, "last_seq", max_seq);
        if (rc == 0) rc = st_index_write_commit(w);
        else st_index_write_abort(w);
        if (rc < 0) {
            ST_LOG_ERROR("ingester", "msg=\"index commit failed; will retry\" err=\"%s\"", st_strerror(rc));
            st_counter_inc(ing->m_flush_fail);
        } else {
            committed = true;
            if (max_seq > ing->committed_seq) ing->committed_seq = max_seq;
        }
    }

    st_audit_batch_end(audit, committed);

    /* 5a. publish: drop indexed chunks */
    pthread_mutex_lock(&ing->mu);
    for (size_t i = lo; i < hi; i++) {
        ochunk_t *c = work[i].c;
        stream_t *s = work[i].s;
        bool written = c->packed || (c->w != NULL && c->npending == 0);
        bool done = c->finalizing && committed && written && c->finished && c->renamed && !failed[i];
        if (!done) continue;
        {
            if (c->max_seq > s->flushed_seq) s->flushed_seq = c->max_seq;
            ing->chunks_flushed++;
            st_counter_inc(ing->m_chunks);
            st_counter_add(ing->m_chunk_bytes, c->size);
            st_counter_add(ing->m_chunk_raw, c->raw_bytes);
        }
        for (size_t j = 0; j < s->nfin; j++) {
            if (s->fin[j] == c) {
                memmove(s->fin + j, s->fin + j + 1, (s->nfin - j - 1) * sizeof *s->fin);
                s->nfin--;
                break;
            }
        }
        if (c->packed) {
            uint64_t b = 0, sv = 0;
            for (size_t k = 0; k < c->npending; k++) {
                b += c->pending[k]->bytes;
                sv += c->pending[k]->saved;
            }
            atomic_fetch_sub(&ing->head_saved, sv);
            atomic_fetch_sub(&ing->sealed_bytes, b);
            atomic_fetch_sub(&ing->head_bytes, b);
            s->tenant_st->head_bytes -= b;
        }
        ochunk_free(c);
        ing->nopen--;
        work[i].c = NULL;
    }
    pthread_mutex_unlock(&ing->mu);
    *nindexed += ncommit;
    return committed;
}

static void flush_cycle(st_ingester_t *ing, bool force)
{
    int64_t t0 = st_mono_ns();
    bool pressure = ing->wal && st_wal_disk_bytes(ing->wal) > ing->o.wal_max_size;
    work_t *work = NULL;
    size_t nwork = 0, capwork = 0;

    /* 1. decide what closes; collect chunks with pending heads or waiting to be indexed */
    atomic_store(&ing->mem_signaled, false);
    bool frozen_enough = freeze_heads(ing);
    compact_spill(ing);
    pthread_mutex_lock(&ing->mu);
    if (!frozen_enough) choose_mem_close(ing);
    for (size_t b = 0; b < ing->tabcap; b++) {
        for (stream_t *s = ing->tab[b]; s; s = s->next) {
            bool has_data = (s->head && s->head->n) || s->open;
            if (has_data) {
                bool close = force || pressure || s->mem_close || (s->open && s->open->written >= ing->o.target_size) ||
                             (s->first_write_mono && t0 - s->first_write_mono >= ing->o.max_chunk_age_ns) ||
                             (t0 - s->last_write_mono >= ing->o.idle_period_ns);
                s->mem_close = false;
                if (close && detach_for_finalize(ing, s) < 0) continue;
            }
            if (s->open && s->open->npending) work_push(&work, &nwork, &capwork, s, s->open);
            for (size_t i = 0; i < s->nfin; i++) work_push(&work, &nwork, &capwork, s, s->fin[i]);
        }
    }
    pthread_mutex_unlock(&ing->mu);

    /* 2. compress and write pending heads; a failure only skips that chunk for this cycle */
    bool *failed = calloc(nwork ? nwork : 1, sizeof *failed);
    if (failed == NULL) {
        free(work);
        return;
    }
    for (size_t i = 0; i < nwork; i++) {
        ochunk_t *c = work[i].c;
        if (c->finalizing && c->w == NULL) continue; /* closes without ever having a file: packed below */
        for (;;) {
            pthread_mutex_lock(&ing->mu);
            head_t *h = c->npending ? c->pending[0] : NULL;
            pthread_mutex_unlock(&ing->mu);
            if (h == NULL) break;
            int rc = write_pending(ing, work[i].s, c, h);
            if (rc < 0) {
                failed[i] = true;
                st_counter_inc(ing->m_flush_fail);
                ST_LOG_ERROR("ingester", "msg=\"writing chunk block failed; will retry\" stream=%016llx err=\"%s\"",
                             (unsigned long long)work[i].s->id, st_strerror(rc));
                break;
            }
        }
    }

    /* 3.-5a. close, index and publish in slices of at most FLUSH_SLICE closing chunks, in index key
     * order (tenant, stream) so that each slice's transaction touches its own range of pages */
    if (nwork > FLUSH_SLICE) st_qsort(work, nwork, sizeof *work, cmp_work);
    bool committed = false;
    size_t ncommit = 0;
    for (size_t lo = 0, hi; lo < nwork; lo = hi) {
        size_t closing = 0;
        for (hi = lo; hi < nwork && closing < FLUSH_SLICE; hi++) closing += work[hi].c->finalizing;
        if (close_slice(ing, work, failed, lo, hi, &ncommit)) committed = true;
    }

    /* 5b. evict idle empty streams, find what the WAL still needs */
    uint64_t min_needed = UINT64_MAX;
    pthread_mutex_lock(&ing->mu);
    for (size_t b = 0; b < ing->tabcap; b++) {
        stream_t **pp = &ing->tab[b];
        while (*pp) {
            stream_t *s = *pp;
            if (s->head == NULL && s->open == NULL && s->nfin == 0 && t0 - s->last_write_mono >= ing->o.idle_period_ns) {
                *pp = s->next;
                ing->nstreams--;
                stream_free(s);
                continue;
            }
            if (s->min_unflushed_seq && s->min_unflushed_seq < min_needed) min_needed = s->min_unflushed_seq;
            for (size_t j = 0; j < s->nfin; j++)
                if (s->fin[j]->min_seq && s->fin[j]->min_seq < min_needed) min_needed = s->fin[j]->min_seq;
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&ing->mu);
    free(work);
    free(failed);
    /* (the replay loop walks the segment list: never trim while it runs) */
    if (ing->wal && committed && !atomic_load(&ing->replaying)) st_wal_truncate(ing->wal, min_needed);
    if (ncommit) st_histogram_observe(ing->m_flush_lat, (double)(st_mono_ns() - t0) / 1e9);
}

static void *flusher_main(void *arg)
{
    st_ingester_t *ing = arg;
    pthread_mutex_lock(&ing->fmu);
    for (;;) {
        if (!ing->fwake && !ing->fstop && ing->force_done == ing->force_gen) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            int64_t ns = ts.tv_nsec + ing->o.flush_check_period_ns;
            ts.tv_sec += ns / ST_NS_PER_SEC;
            ts.tv_nsec = ns % ST_NS_PER_SEC;
            pthread_cond_timedwait(&ing->fcv, &ing->fmu, &ts);
        }
        if (ing->fstop) break;
        uint64_t gen = ing->force_gen;
        bool force = gen != ing->force_done;
        ing->fwake = false;
        pthread_mutex_unlock(&ing->fmu);
        uint64_t before = head_resident(ing);
        flush_cycle(ing, force);
#ifdef __GLIBC__
        /* heads freed or frozen in bulk (many streams closed at once) go back to the system, so RSS
         * follows the heads instead of staying at its peak */
        if (before > head_resident(ing) + (16u << 20)) malloc_trim(0);
#endif
        pthread_mutex_lock(&ing->fmu);
        if (force) {
            ing->force_done = gen;
            pthread_cond_broadcast(&ing->fdone);
        }
    }
    pthread_mutex_unlock(&ing->fmu);
    return NULL;
}

/* ---- open / close ------------------------------------------------------------------------------- */

static int rm_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return 0;
}

/* Deletes chunk files with ids >= next_id: renamed into place by a crashed run before being indexed.
 * Only the directories that can hold such ids are listed. */
static void sweep_orphans(st_ingester_t *ing, uint64_t next_id)
{
    DIR *d = opendir(ing->o.chunks_dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long hi;
        if (strlen(e->d_name) != 6 || sscanf(e->d_name, "%6llx", &hi) != 1) continue;
        if ((hi << 16) + 0xFFFF < next_id) continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", ing->o.chunks_dir, e->d_name);
        DIR *sd = opendir(sub);
        if (sd == NULL) continue;
        struct dirent *f;
        while ((f = readdir(sd)) != NULL) {
            unsigned long long id;
            char ext[8] = "";
            if (sscanf(f->d_name, "%16llx.%5s", &id, ext) != 2 || (strcmp(ext, "chunk") != 0 && strcmp(ext, "pack") != 0))
                continue;
            if (id >= next_id) {
                char p[8192];
                snprintf(p, sizeof p, "%s/%s", sub, f->d_name);
                ST_LOG_WARN("ingester", "msg=\"removing unindexed chunk left by a crash\" path=%s", p);
                unlink(p);
            }
        }
        closedir(sd);
    }
    closedir(d);
}

static double gauge_streams(void *arg)
{
    st_ingester_t *ing = arg;
    pthread_mutex_lock(&ing->mu);
    double v = (double)ing->nstreams;
    pthread_mutex_unlock(&ing->mu);
    return v;
}

static double gauge_head_bytes(void *arg) { return (double)atomic_load(&((st_ingester_t *)arg)->head_bytes); }
static double gauge_head_resident(void *arg) { return (double)head_resident(arg); }
static double gauge_spill_bytes(void *arg)
{
    st_ingester_t *ing = arg;
    st_spill_stats_t st = {0};
    if (ing->spill) st_spill_stats(ing->spill, &st);
    return (double)st.disk_bytes;
}
static double gauge_wal_bytes(void *arg)
{
    st_ingester_t *ing = arg;
    return ing->wal ? (double)st_wal_disk_bytes(ing->wal) : 0;
}

int st_ingester_open(const st_ingester_opts_t *o, st_ingester_t **out)
{
    st_ingester_t *ing = calloc(1, sizeof *ing);
    if (ing == NULL) return -ENOMEM;
    ing->o = *o;
    pthread_mutex_init(&ing->mu, NULL);
    pthread_mutex_init(&ing->fmu, NULL);
    pthread_mutex_init(&ing->tail_mu, NULL);
    pthread_cond_init(&ing->fcv, NULL);
    pthread_cond_init(&ing->fdone, NULL);
    ing->tabcap = 1024;
    ing->tab = calloc(ing->tabcap, sizeof *ing->tab);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s/.open", o->chunks_dir);
    ing->open_dir = strdup(buf);
    int rc = -ENOMEM;
    if (ing->tab == NULL || ing->open_dir == NULL) goto fail;
    ing->m_entries = st_counter("strata_ingester_entries_total", "Entries applied to heads after WAL commit.", NULL);
    ing->m_bytes = st_counter("strata_ingester_bytes_total", "Line and structured metadata bytes applied.", NULL);
    ing->m_dups = st_counter("strata_ingester_duplicate_entries_total", "Exact duplicate entries dropped.", NULL);
    ing->m_chunks = st_counter("strata_ingester_chunks_flushed_total", "Chunks written and indexed.", NULL);
    ing->m_chunk_bytes = st_counter("strata_ingester_chunk_stored_bytes_total", "Compressed bytes of flushed chunks.", NULL);
    ing->m_chunk_raw = st_counter("strata_ingester_chunk_raw_bytes_total", "Uncompressed bytes of flushed chunks.", NULL);
    ing->m_flush_fail = st_counter("strata_ingester_flush_failures_total", "Failed chunk writes or index commits (retried).", NULL);
    ing->m_streams_created = st_counter("strata_ingester_streams_created_total", "Streams created in memory.", NULL);
    ing->m_dup_records = st_counter("strata_ingester_duplicate_records_total",
                                    "Records identical to a recent one of the same stream (client retries) dropped.", NULL);
    ing->m_freezes = st_counter("strata_ingester_head_freezes_total",
                                "Live heads compressed in memory because head memory was above ingester.head_memory_target.", NULL);
    ing->m_mem_closes = st_counter("strata_ingester_memory_closes_total",
                                   "Chunks closed early because head memory was above ingester.head_memory_target.", NULL);
    ing->m_rejected[0] = st_counter("strata_limit_rejections_total", "Pushes or streams refused by a limit.", "reason=\"rate_limited\"");
    ing->m_rejected[1] = st_counter("strata_limit_rejections_total", "Pushes or streams refused by a limit.", "reason=\"per_stream_rate_limit\"");
    ing->m_rejected[2] = st_counter("strata_limit_rejections_total", "Pushes or streams refused by a limit.", "reason=\"stream_limit\"");
    ing->m_rejected[3] = st_counter("strata_limit_rejections_total", "Pushes or streams refused by a limit.", "reason=\"memory_budget\"");
    ing->m_flush_lat = st_histogram("strata_ingester_flush_duration_seconds", "Duration of flush cycles that indexed chunks.",
                                    NULL, st_latency_buckets, st_latency_nbuckets);
    st_gauge_fn("strata_ingester_memory_streams", "Streams held in memory.", NULL, gauge_streams, ing);
    st_gauge_fn("strata_ingester_head_bytes", "Uncompressed bytes in heads not yet written to chunk blocks.", NULL,
                gauge_head_bytes, ing);
    st_gauge_fn("strata_ingester_head_resident_bytes",
                "Line bytes heads hold in memory: head_bytes less what compressing frozen heads saved.", NULL,
                gauge_head_resident, ing);
    st_gauge_fn("strata_ingester_head_spill_bytes",
                "Bytes of frozen head frames in spill files (page cache instead of resident memory).", NULL,
                gauge_spill_bytes, ing);
    st_gauge_fn("strata_wal_disk_bytes", "Bytes of WAL segments on disk.", NULL, gauge_wal_bytes, ing);

    if ((rc = st_mkdirs(o->chunks_dir, 0755)) < 0 || (rc = st_mkdirs(ing->open_dir, 0755)) < 0) goto fail;
    rm_dir_files(ing->open_dir);
    if (o->head_spill) {
        snprintf(buf, sizeof buf, "%s/.spill", o->chunks_dir);
        if ((rc = st_spill_open(buf, o->spill_segment_size ? o->spill_segment_size : (64u << 20),
                                &ing->spill)) < 0)
            goto fail;
    }
    uint64_t next_id = 1, last_seq = 0;
    st_index_read_t *r;
    if ((rc = st_index_read_begin(o->index, &r)) < 0) goto fail;
    st_index_get_meta(r, "next_chunk_id", &next_id);
    st_index_get_meta(r, "last_seq", &last_seq);
    st_index_read_end(r);
    if (next_id == 0) next_id = 1;
    ing->next_chunk_id = next_id;
    ing->committed_seq = last_seq;
    sweep_orphans(ing, next_id);

    if ((rc = pthread_create(&ing->flusher, NULL, flusher_main, ing)) != 0) {
        rc = -rc;
        goto fail;
    }
    ing->flusher_running = true;

    st_wal_opts_t wo = {.dir = o->wal_dir,
                        .segment_size = o->wal_segment_size,
                        .max_pending = o->wal_max_pending,
                        .apply = wal_apply,
                        .complete = wal_complete,
                        .arg = ing};
    if ((rc = st_wal_open(&wo, &ing->wal)) < 0) goto fail;
    uint64_t max_seq = 0;
    int64_t t0 = st_mono_ns();
    ing->replaying = true;
    rc = st_wal_replay(ing->wal, replay_cb, ing, &max_seq);
    ing->replaying = false;
    if (rc < 0) goto fail;
    if (max_seq)
        ST_LOG_INFO("ingester", "msg=\"WAL replayed\" last_seq=%llu streams=%zu duration=%.3fs",
                    (unsigned long long)max_seq, ing->nstreams, (double)(st_mono_ns() - t0) / 1e9);
    if (last_seq > max_seq) max_seq = last_seq;
    if ((rc = st_wal_start(ing->wal, max_seq + 1)) < 0) goto fail;
    *out = ing;
    return 0;
fail:
    st_ingester_close(ing, false);
    return rc;
}

int st_ingester_flush(st_ingester_t *ing)
{
    pthread_mutex_lock(&ing->fmu);
    uint64_t gen = ++ing->force_gen;
    pthread_cond_signal(&ing->fcv);
    while (ing->force_done < gen && ing->flusher_running) pthread_cond_wait(&ing->fdone, &ing->fmu);
    pthread_mutex_unlock(&ing->fmu);
    /* a failed cycle leaves work behind: report it */
    pthread_mutex_lock(&ing->mu);
    int rc = 0;
    for (size_t b = 0; b < ing->tabcap && rc == 0; b++)
        for (stream_t *s = ing->tab[b]; s && rc == 0; s = s->next)
            if (s->nfin || s->open || (s->head && s->head->n)) rc = -EAGAIN;
    pthread_mutex_unlock(&ing->mu);
    return rc;
}

int st_ingester_close(st_ingester_t *ing, bool flush)
{
    if (ing == NULL) return 0;
    int rc = 0;
    if (ing->wal) st_wal_stop(ing->wal); /* completes everything pending; no new pushes */
    if (flush && ing->flusher_running) {
        for (int attempt = 0; attempt < 3; attempt++) {
            rc = st_ingester_flush(ing);
            if (rc == 0) break;
        }
        if (rc == 0 && ing->wal) rc = st_wal_reset(ing->wal);
        if (rc < 0) ST_LOG_ERROR("ingester", "msg=\"flush on shutdown incomplete; WAL kept for replay\" err=\"%s\"", st_strerror(rc));
    }
    if (ing->flusher_running) {
        pthread_mutex_lock(&ing->fmu);
        ing->fstop = true;
        pthread_cond_signal(&ing->fcv);
        pthread_mutex_unlock(&ing->fmu);
        pthread_join(ing->flusher, NULL);
        ing->flusher_running = false;
    }
    st_wal_close(ing->wal);
    if (ing->tab) {
        for (size_t b = 0; b < ing->tabcap; b++) {
            stream_t *s = ing->tab[b];
            while (s) {
                stream_t *n = s->next;
                stream_free(s);
                s = n;
            }
        }
    }
    free(ing->tab);
    st_spill_close(ing->spill); /* after the heads: their frames are released */
    while (ing->tenants) {
        tenant_t *t = ing->tenants->next;
        free(ing->tenants->id);
        free(ing->tenants);
        ing->tenants = t;
    }
    free(ing->open_dir);
    pthread_mutex_destroy(&ing->mu);
    pthread_mutex_destroy(&ing->fmu);
    while (ing->tail_subs) { /* subscribers should be gone; do not leak them */
        st_tail_sub_t *t = ing->tail_subs->next;
        free(ing->tail_subs->tenant);
        free(ing->tail_subs);
        ing->tail_subs = t;
    }
    pthread_mutex_destroy(&ing->tail_mu);
    free(ing->tail_scratch);
    pthread_cond_destroy(&ing->fcv);
    pthread_cond_destroy(&ing->fdone);
    free(ing);
    return rc;
}

void st_ingester_stats(st_ingester_t *ing, st_ingester_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&ing->mu);
    out->streams = ing->nstreams;
    out->open_chunks = ing->nopen;
    out->chunks_flushed = ing->chunks_flushed;
    pthread_mutex_unlock(&ing->mu);
    out->head_bytes = atomic_load(&ing->head_bytes);
    out->head_resident = head_resident(ing);
    out->wal_bytes = ing->wal ? st_wal_disk_bytes(ing->wal) : 0;
    if (ing->spill) {
        st_spill_stats_t sp;
        st_spill_stats(ing->spill, &sp);
        out->spill_bytes = sp.disk_bytes;
        out->spill_live_bytes = sp.live_bytes;
    }
    out->head_freezes = atomic_load(&ing->freezes);
}

/* ---- snapshots ---------------------------------------------------------------------------------- */

static void source_free(st_mem_source_t *src)
{
    free(src->entries);
    if (src->is_file && src->fd >= 0) close(src->fd);
    free(src->blocks);
    head_unref(src->hold);
}

void st_mem_snapshot_free(st_mem_snapshot_t *s)
{
    if (s == NULL) return;
    for (size_t i = 0; i < s->n; i++) {
        st_mem_stream_t *m = &s->streams[i];
        for (size_t j = 0; j < m->nsrc; j++) source_free(&m->src[j]);
        free(m->src);
        free(m->canon);
        st_labels_free(&m->labels);
    }
    free(s->streams);
    st_u64vec_free(&s->chunk_ids);
    memset(s, 0, sizeof *s);
}

static int add_source(st_mem_stream_t *m, size_t *cap, st_mem_source_t src)
{
    if (m->nsrc == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        st_mem_source_t *x = realloc(m->src, nc * sizeof *x);
        if (x == NULL) return -ENOMEM;
        m->src = x;
        *cap = nc;
    }
    m->src[m->nsrc++] = src;
    return 0;
}

/* Adds a head (shared when sealed, copied when it is the live head) as an entries source. */
static int snap_head(st_mem_stream_t *m, size_t *cap, head_t *h, bool live, int64_t from, int64_t through)
{
    if (h == NULL || h->n == 0 || h->max_ts < from || h->min_ts > through) return 0;
    head_t *use = h;
    if (live) {
        use = head_new();
        if (use == NULL) return -ENOMEM;
        if (st_buf_append(&use->buf, h->buf.data, h->buf.len) < 0 || st_buf_append(&use->z, h->z.data, h->z.len) < 0) {
            head_unref(use);
            return -ENOMEM;
        }
        use->zs = h->zs; /* borrowed: read below under mu, then dropped from the copy */
        use->zraw = h->zraw;
        use->zlines = h->zlines;
        use->tail_base = h->tail_base;
        use->last_ts = h->last_ts;
        use->zn = h->zn;
        use->n = h->n;
        use->sorted = h->sorted;
        use->min_ts = h->min_ts;
        use->max_ts = h->max_ts;
        use->bytes = h->bytes;
    } else {
        atomic_fetch_add(&h->refs, 1);
    }
    st_mem_source_t src;
    memset(&src, 0, sizeof src);
    src.fd = -1;
    src.hold = use;
    int rc = head_entries(use, from, through, &src.entries, &src.n);
    if (live) use->zs = (st_spill_ref_t){0}; /* the live head keeps the reference */
    if (rc == 0 && src.n == 0) {
        source_free(&src);
        return 0;
    }
    if (rc == 0) rc = add_source(m, cap, src);
    if (rc < 0) source_free(&src);
    return rc;
}

static int snap_chunk(st_mem_snapshot_t *out, st_mem_stream_t *m, size_t *cap, ochunk_t *c, int64_t from, int64_t through)
{
    /* a chunk with an id may already be indexed: the querier skips that id in the index */
    if (c->finished && c->chunk_id) ST_TRY(st_u64vec_push(&out->chunk_ids, c->chunk_id));
    for (size_t i = 0; i < c->npending; i++) ST_TRY(snap_head(m, cap, c->pending[i], false, from, through));
    if (c->nblocks == 0 || c->path == NULL) return 0;
    if (c->max_ts < from || c->min_ts > through) return 0;
    st_mem_source_t src;
    memset(&src, 0, sizeof src);
    src.is_file = true;
    src.fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (src.fd < 0) return -errno;
    src.blocks = malloc(c->nblocks * sizeof *src.blocks);
    if (src.blocks == NULL) {
        close(src.fd);
        return -ENOMEM;
    }
    memcpy(src.blocks, c->blocks, c->nblocks * sizeof *src.blocks);
    src.nblocks = c->nblocks;
    src.chunk_id = c->finished ? c->chunk_id : 0;
    int rc = add_source(m, cap, src);
    if (rc < 0) source_free(&src);
    return rc;
}

static void stream_bounds(const stream_t *s, int64_t *lo, int64_t *hi)
{
    int64_t a = INT64_MAX, b = INT64_MIN;
#define WIDEN(x, y) do { if ((x) < a) a = (x); if ((y) > b) b = (y); } while (0)
    if (s->head && s->head->n) WIDEN(s->head->min_ts, s->head->max_ts);
    const ochunk_t *cs[1 + 8];
    size_t nc = 0;
    if (s->open) cs[nc++] = s->open;
    for (size_t i = 0; i < s->nfin && nc < 9; i++) cs[nc++] = s->fin[i];
    for (size_t k = 0; k < nc; k++) {
        const ochunk_t *c = cs[k];
        if (c->nblocks) WIDEN(c->min_ts, c->max_ts);
        for (size_t i = 0; i < c->npending; i++) WIDEN(c->pending[i]->min_ts, c->pending[i]->max_ts);
    }
#undef WIDEN
    *lo = a;
    *hi = b;
}

int st_ingester_snapshot(st_ingester_t *ing, const char *tenant, const st_matcher_t *m, size_t nm, int64_t from,
                         int64_t through, bool want_data, st_mem_snapshot_t *out)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    int rc = 0;
    pthread_mutex_lock(&ing->mu);
    for (size_t b = 0; b < ing->tabcap && rc == 0; b++) {
        for (stream_t *s = ing->tab[b]; s && rc == 0; s = s->next) {
            if (strcmp(s->tenant, tenant) != 0) continue;
            int64_t lo, hi;
            stream_bounds(s, &lo, &hi);
            if (lo > hi || hi < from || lo > through) continue;
            if (!st_matchers_match(m, nm, &s->labels)) continue;
            if (out->n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                st_mem_stream_t *x = realloc(out->streams, nc * sizeof *x);
                if (x == NULL) {
                    rc = -ENOMEM;
                    break;
                }
                out->streams = x;
                cap = nc;
            }
            st_mem_stream_t *ms = &out->streams[out->n];
            memset(ms, 0, sizeof *ms);
            ms->id = s->id;
            ms->min_ts = lo;
            ms->max_ts = hi;
            ms->canon = strdup(s->canon);
            if (ms->canon == NULL || st_labels_copy(&s->labels, &ms->labels) < 0) {
                free(ms->canon);
                rc = -ENOMEM;
                break;
            }
            out->n++;
            if (!want_data) continue;
            size_t scap = 0;
            for (size_t i = 0; i < s->nfin && rc == 0; i++) rc = snap_chunk(out, ms, &scap, s->fin[i], from, through);
            if (rc == 0 && s->open) rc = snap_chunk(out, ms, &scap, s->open, from, through);
            if (rc == 0) rc = snap_head(ms, &scap, s->head, true, from, through);
        }
    }
    pthread_mutex_unlock(&ing->mu);
    st_u64vec_sort_unique(&out->chunk_ids);
    if (rc < 0) st_mem_snapshot_free(out);
    return rc;
}
