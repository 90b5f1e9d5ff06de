/* logquery.c: log (stream) queries: a lazy k-way merge over time-sorted blocks of all selected
 * streams in the requested direction, with the pipeline applied while scanning, stopping at the
 * limit; then Loki's "streams" result with stats. Blocks are decompressed only when the merge is about
 * to reach their time range, so limit-bound queries read little; the next few blocks in merge order are
 * decompressed and prefiltered on the worker pool (running the whole pipeline there, on per-slot
 * clones, when it has parsers or label filters) while the merge consumes the current ones. Results are
 * grouped by the final label set (or, with categorize-labels, by the stream labels, each entry
 * carrying its structured metadata and parsed labels). */
#include "querier/querier_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/search.h"
#include "common/timeutil.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct {
    qblock_t *b;
    st_block_t blk;      /* decoded block (file blocks) */
    const st_entry_t *e; /* memory entries */
    int64_t pos, end;    /* current index and one-past-last (direction-aware bounds) */
    int dir;             /* +1 forward, -1 backward */
    st_entry_t cur;
    uint32_t stream;
    uint8_t *hit;        /* per-entry prefilter result (required literal present) */
    size_t hitcap;
    bool use_hit;
    bool full_hit;       /* hit[] is the whole pipeline's verdict (computed on the pool) */
    bool inrange;        /* the whole block lies in [start, end): counted at open, no per-entry checks */
} cursor_t;

/* A block being decompressed and prefiltered ahead of the merge, on the worker pool. */
typedef struct {
    st_task_t task;
    struct run *r;
    qblock_t *b;
    st_block_t blk;
    uint8_t *hit;
    size_t hitcap;
    uint8_t *vhit;       /* lines holding the value literal or a backslash (value prefilter) */
    size_t vhitcap;
    bool use_hit;
    bool full_hit;
    st_pipeline_t *pl;   /* this slot's clone of the pipeline (full pipelines only) */
    st_buf_t scratch;
    int rc;
    bool busy;
} pf_t;

#define PF_MAX 16

typedef struct run {
    st_querier_t *q;
    const st_query_t *req;
    st_pipeline_t *pl;
    qsel_t sel;
    st_qstats_t stats;
    cursor_t **heap;
    size_t nheap;
    st_buf_t scratch;
    bool forward;
    bool has_lit;
    bool lit_only; /* st_pipeline_literal_only: a line the prefilter marked passes */
    st_str_t lit;
    st_finder_t finder;
    bool has_vlit;       /* st_pipeline_value_literal */
    st_str_t vname, vlit;
    st_finder_t vfinder;
    cursor_t *free_list[64];
    size_t nfree;
    pf_t pf[PF_MAX];
    size_t npf;          /* prefetch window (slots in use: block i uses pf[i % npf]) */
    size_t submitted;    /* blocks [0, submitted) have been handed to the pool */
    bool full;           /* the pipeline changes labels or lines: st_pipeline_run decides */
    int fail;            /* first error of the pipeline while scanning */
    st_pipeline_result_t pres;
} run_t;

/* Heap order: earliest (forward) / latest (backward) entry first; ties by stream labels. */
static bool before(const run_t *r, const cursor_t *a, const cursor_t *b)
{
    if (a->cur.ts != b->cur.ts) return r->forward ? a->cur.ts < b->cur.ts : a->cur.ts > b->cur.ts;
    if (a->stream != b->stream) return strcmp(r->sel.streams[a->stream].canon, r->sel.streams[b->stream].canon) < 0;
    return a < b;
}

static void heap_push(run_t *r, cursor_t *c)
{
    size_t i = r->nheap++;
    r->heap[i] = c;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(r, r->heap[i], r->heap[p])) break;
        cursor_t *t = r->heap[i];
        r->heap[i] = r->heap[p];
        r->heap[p] = t;
        i = p;
    }
}

static cursor_t *heap_pop(run_t *r)
{
    cursor_t *top = r->heap[0];
    r->heap[0] = r->heap[--r->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < r->nheap && before(r, r->heap[l], r->heap[m])) m = l;
        if (rr < r->nheap && before(r, r->heap[rr], r->heap[m])) m = rr;
        if (m == i) break;
        cursor_t *t = r->heap[i];
        r->heap[i] = r->heap[m];
        r->heap[m] = t;
        i = m;
    }
    return top;
}

static st_entry_t cursor_entry(const cursor_t *c, int64_t i)
{
    return c->b->is_mem ? c->e[i] : st_block_entry(&c->blk, (uint32_t)i);
}

/* Advances to the next entry in range that passes the pipeline; false when the block is done. */
static bool cursor_next(run_t *r, cursor_t *c)
{
    const st_query_t *req = r->req;
    while (c->pos != c->end) {
        int64_t i = c->pos;
        if (c->inrange && c->use_hit) {
            /* jump straight to the next entry holding the required literal */
            const uint8_t *h = c->dir > 0 ? memchr(c->hit + i, 1, (size_t)(c->end - i)) : memrchr(c->hit, 1, (size_t)(i + 1));
            if (h == NULL) {
                c->pos = c->end;
                return false;
            }
            i = h - c->hit;
        }
        c->pos = i + c->dir;
        st_entry_t e = cursor_entry(c, i);
        if (!c->inrange) {
            if (e.ts < req->start || e.ts >= req->end) continue;
            r->stats.lines++;
            r->stats.bytes += e.line.n;
            r->stats.md_bytes += e.md.n;
            if (c->b->is_mem) {
                r->stats.head_lines++;
                r->stats.head_bytes += e.line.n;
            }
        }
        if (c->use_hit && !c->hit[i]) continue;
        if (!c->full_hit) {
            if (!(c->use_hit && r->lit_only) && !st_pipeline_keep_line(r->pl, e.line)) continue;
            if (r->full) {
                int rc = st_pipeline_test_kept(r->pl, e.ts, e.line, &r->sel.streams[c->stream].labels, e.md);
                if (rc < 0) {
                    r->fail = rc;
                    c->pos = c->end;
                    return false;
                }
                if (rc == 0) continue;
            }
        }
        r->stats.post_filter_lines++;
        c->cur = e;
        return true;
    }
    return false;
}

/* Marks the entries whose line contains the required literal. */
static int prefilter(const run_t *r, const st_block_t *b, uint8_t **hitp, size_t *hitcap)
{
    ST_TRY(st_qhits_zero(hitp, hitcap, b->n));
    st_qmark_lines(&r->finder, r->lit.n, b, *hitp);
    return 0;
}

/* Value prefilter (st_pipeline_value_literal): marks the lines that may pass the parser's label
 * filter, those holding the value or a backslash. */
static int vprefilter(const run_t *r, pf_t *s)
{
    const st_block_t *b = &s->blk;
    ST_TRY(st_qhits_zero(&s->vhit, &s->vhitcap, b->n));
    st_qmark_lines(&r->vfinder, r->vlit.n, b, s->vhit);
    const char *text = b->lines, *end = text + b->line_off[b->n], *p = text;
    uint32_t idx = 0;
    while (p < end && (p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        size_t at = (size_t)(p - text);
        while (b->line_off[idx + 1] <= at) idx++;
        s->vhit[idx] = 1;
        p = text + b->line_off[idx + 1];
        idx++;
    }
    return 0;
}

/* Whether entry i of the block carries structured metadata named name. */
static bool md_has(const st_block_t *b, uint32_t i, st_str_t name)
{
    if (b->md_off == NULL || b->md_off[i] == b->md_off[i + 1]) return false;
    st_md_iter_t it;
    st_md_iter_init(&it, st_str(b->md + b->md_off[i], b->md_off[i + 1] - b->md_off[i]));
    st_str_t n, v;
    int rc;
    while ((rc = st_md_next(&it, &n, &v)) == 1)
        if (st_str_eq(n, name)) return true;
    return rc < 0; /* malformed: let the full pipeline see it */
}

/* Runs the whole pipeline over a decoded block on a pool thread: hit[i] = 1 when entry i is kept.
 * Entries outside the query's range are skipped (the merge never looks at their verdict). */
static int fullfilter(const run_t *r, pf_t *s)
{
    const st_block_t *b = &s->blk;
    if (!s->use_hit) {
        if (b->n > s->hitcap) {
            uint8_t *h = realloc(s->hit, b->n);
            if (h == NULL) return -ENOMEM;
            s->hit = h;
            s->hitcap = b->n;
        }
        memset(s->hit, 1, b->n);
    }
    const st_labels_t *labels = &r->sel.streams[s->b->stream].labels;
    st_str_t unused;
    bool vpf = r->has_vlit && !st_labels_get(labels, r->vname, &unused);
    if (vpf) ST_TRY(vprefilter(r, s));
    for (uint32_t i = 0; i < b->n; i++) {
        if (!s->hit[i]) continue;
        if (vpf && !s->vhit[i] && !md_has(b, i, r->vname)) {
            s->hit[i] = 0; /* the parse could not produce name="value" */
            continue;
        }
        st_entry_t e = st_block_entry(b, i);
        if (e.ts < r->req->start || e.ts >= r->req->end || !st_pipeline_keep_line(s->pl, e.line)) {
            s->hit[i] = 0;
            continue;
        }
        int rc = st_pipeline_test_kept(s->pl, e.ts, e.line, labels, e.md);
        if (rc < 0) return rc;
        s->hit[i] = (uint8_t)rc;
    }
    s->use_hit = true;
    s->full_hit = true;
    return 0;
}

/* Pool task: read, verify, decompress and prefilter one chunk block. */
static void pf_run(st_task_t *t)
{
    pf_t *s = (pf_t *)(void *)t;
    const run_t *r = s->r;
    const qfile_t *f = &r->sel.files[s->b->file];
    int fd = f->borrowed ? f->fd : open(f->path, O_RDONLY | O_CLOEXEC);
    s->use_hit = false;
    s->full_hit = false;
    if (fd < 0) {
        s->rc = -errno;
        return;
    }
    s->rc = st_block_read_for(fd, f->base, &s->b->meta, r->has_lit ? r->lit.p : NULL, r->lit.n, &s->scratch,
                              &s->blk);
    if (!f->borrowed) close(fd);
    if (s->rc == 1) { /* its trigram filter proves no line holds the literal */
        s->rc = 0;
        return;
    }
    if (s->rc == 0) s->rc = st_qsel_filter_block(&r->sel, s->b->stream, &s->blk);
    if (s->rc == 0 && r->has_lit && (s->rc = prefilter(r, &s->blk, &s->hit, &s->hitcap)) == 0) s->use_hit = true;
    if (s->rc == 0 && r->full && s->pl != NULL) s->rc = fullfilter(r, s);
}

/* Hands blocks [submitted, upto) that live in files to the pool. */
static void pf_submit_upto(run_t *r, size_t upto)
{
    if (upto > r->sel.nblocks) upto = r->sel.nblocks;
    while (r->submitted < upto) {
        size_t i = r->submitted;
        qblock_t *b = &r->sel.blocks[i];
        if (!b->is_mem) {
            pf_t *s = &r->pf[i % r->npf];
            if (s->busy) break; /* slot still owned by an unconsumed block */
            s->r = r;
            s->b = b;
            s->rc = 0;
            s->busy = true;
            s->task.fn = pf_run;
            if (st_pool_submit(r->q->pool, &s->task) < 0) pf_run(&s->task);
        }
        r->submitted++;
    }
}

static int cursor_open(run_t *r, size_t idx, cursor_t **out)
{
    qblock_t *b = &r->sel.blocks[idx];
    *out = NULL;
    cursor_t *c = r->nfree ? r->free_list[--r->nfree] : calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->b = b;
    c->stream = b->stream;
    c->dir = r->forward ? 1 : -1;
    c->use_hit = false;
    c->full_hit = false;
    c->inrange = false;
    int rc = 0;
    int64_t n;
    if (b->is_mem) {
        c->e = b->e;
        n = (int64_t)b->n;
    } else {
        pf_submit_upto(r, idx + 1);
        pf_t *s = &r->pf[idx % r->npf];
        st_pool_wait(r->q->pool, &s->task);
        rc = s->rc;
        /* take the decoded block; the slot keeps the cursor's old buffers for its next block */
        st_block_t tb = c->blk;
        c->blk = s->blk;
        s->blk = tb;
        uint8_t *th = c->hit;
        size_t tc = c->hitcap;
        c->hit = s->hit;
        c->hitcap = s->hitcap;
        s->hit = th;
        s->hitcap = tc;
        c->use_hit = s->use_hit;
        c->full_hit = s->full_hit;
        s->busy = false;
        qfile_t *f = &r->sel.files[b->file];
        if (f->pending >= 0) {
            r->stats.chunks_downloaded++;
            f->pending = -1; /* counted */
        }
        if (rc == 0) {
            r->stats.compressed_bytes += b->meta.clen;
            r->stats.decompressed_lines += c->blk.n;
            r->stats.decompressed_bytes += c->blk.line_off[c->blk.n];
            c->inrange = b->min_ts >= r->req->start && b->max_ts < r->req->end;
            if (c->inrange) {
                r->stats.lines += c->blk.n;
                r->stats.bytes += c->blk.line_off[c->blk.n];
                if (c->blk.md_off) r->stats.md_bytes += c->blk.md_off[c->blk.n];
            }
        }
        n = c->blk.n;
        pf_submit_upto(r, idx + r->npf);
    }
    if (rc < 0) {
        *out = c;
        return rc;
    }
    c->pos = r->forward ? 0 : n - 1;
    c->end = r->forward ? n : -1;
    *out = c;
    return 0;
}

static void cursor_release(run_t *r, cursor_t *c)
{
    if (c == NULL) return;
    if (r->nfree < 64) {
        r->free_list[r->nfree++] = c; /* keeps its decode buffers for reuse */
        return;
    }
    st_block_free(&c->blk);
    free(c->hit);
    free(c);
}

static int cmp_blocks_fwd(const void *a, const void *b)
{
    const qblock_t *x = a, *y = b;
    return x->min_ts < y->min_ts ? -1 : x->min_ts > y->min_ts;
}

static int cmp_blocks_bwd(const void *a, const void *b)
{
    const qblock_t *x = a, *y = b;
    return x->max_ts > y->max_ts ? -1 : x->max_ts < y->max_ts;
}

/* ---- result collection --------------------------------------------------------------------------- */

typedef struct {
    uint32_t group;
    int64_t ts;
    size_t line_off, line_len;
    size_t md_off, md_len; /* raw structured metadata, or (encoded) the categorize-labels object */
    bool encoded;
} outent_t;

typedef struct {
    char *key;            /* label text of the group: the sort and identity key */
    char *json;           /* the "stream" object */
    uint64_t hash;
    uint32_t stream;
} group_t;

typedef struct {
    outent_t *v;
    size_t n, cap;
    st_buf_t bytes;       /* copies of lines and metadata */
    group_t *g;
    size_t ng, capg;
    uint32_t *slots;      /* open addressing over g: index + 1, 0 = empty */
    size_t nslots;
    st_buf_t key, json, tmp;
    st_label_t *lv;       /* scratch label arrays */
    size_t caplv;
} result_t;

static void result_free(result_t *res)
{
    free(res->v);
    st_buf_free(&res->bytes);
    for (size_t i = 0; i < res->ng; i++) {
        free(res->g[i].key);
        free(res->g[i].json);
    }
    free(res->g);
    free(res->slots);
    st_buf_free(&res->key);
    st_buf_free(&res->json);
    st_buf_free(&res->tmp);
    free(res->lv);
}

/* Appends {"name":"value",...} for labels in order. */
static int put_labels_json(st_buf_t *out, const st_label_t *v, size_t n)
{
    ST_TRY(st_buf_putc(out, '{'));
    for (size_t i = 0; i < n; i++) {
        if (i) ST_TRY(st_buf_putc(out, ','));
        ST_TRY(st_json_put_str(out, v[i].name));
        ST_TRY(st_buf_putc(out, ':'));
        ST_TRY(st_json_put_str(out, v[i].value));
    }
    return st_buf_putc(out, '}');
}

static int slots_grow(result_t *res)
{
    size_t n = res->nslots ? res->nslots * 2 : 64;
    uint32_t *s = calloc(n, sizeof *s);
    if (s == NULL) return -ENOMEM;
    for (size_t i = 0; i < res->ng; i++) {
        size_t k = res->g[i].hash & (n - 1);
        while (s[k]) k = (k + 1) & (n - 1);
        s[k] = (uint32_t)i + 1;
    }
    free(res->slots);
    res->slots = s;
    res->nslots = n;
    return 0;
}

/* Finds or adds the group whose key is res->key (its stream object in res->json). */
static int group_find(result_t *res, uint32_t stream, uint32_t *out)
{
    const char *key = st_buf_cstr(&res->key);
    uint64_t h = st_hash64(res->key.data, res->key.len);
    if (res->nslots == 0 || (res->ng + 1) * 2 > res->nslots) ST_TRY(slots_grow(res));
    size_t k = h & (res->nslots - 1);
    while (res->slots[k]) {
        group_t *g = &res->g[res->slots[k] - 1];
        if (g->hash == h && strcmp(g->key, key) == 0) {
            *out = res->slots[k] - 1;
            return 0;
        }
        k = (k + 1) & (res->nslots - 1);
    }
    if (res->ng == res->capg) {
        size_t cap = res->capg ? res->capg * 2 : 16;
        group_t *g = realloc(res->g, cap * sizeof *g);
        if (g == NULL) return -ENOMEM;
        res->g = g;
        res->capg = cap;
    }
    group_t *g = &res->g[res->ng];
    g->key = strdup(key);
    g->json = strdup(st_buf_cstr(&res->json));
    if (g->key == NULL || g->json == NULL) {
        free(g->key);
        free(g->json);
        return -ENOMEM;
    }
    g->hash = h;
    g->stream = stream;
    res->slots[k] = (uint32_t)res->ng + 1;
    *out = (uint32_t)res->ng++;
    return 0;
}

static int lv_reserve(result_t *res, size_t n)
{
    if (n <= res->caplv) return 0;
    size_t cap = res->caplv ? res->caplv : 32;
    while (cap < n) cap *= 2;
    st_label_t *v = realloc(res->lv, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    res->lv = v;
    res->caplv = cap;
    return 0;
}

/* Group of a line-only pipeline's entry: the stream's labels, or with structured metadata
 * (2-tuple encoding) the merged set. */
static int group_of(run_t *r, result_t *res, uint32_t stream, st_str_t md, uint32_t *out)
{
    const qstream_t *s = &r->sel.streams[stream];
    st_buf_reset(&res->key);
    st_buf_reset(&res->json);
    if (md.n == 0 || r->req->categorize_labels) {
        ST_TRY(st_buf_puts(&res->key, s->canon));
        ST_TRY(put_labels_json(&res->json, s->labels.v, s->labels.n));
        return group_find(res, stream, out);
    }
    size_t n = 0;
    ST_TRY(lv_reserve(res, s->labels.n + 16));
    for (size_t i = 0; i < s->labels.n; i++) res->lv[n++] = s->labels.v[i];
    st_md_iter_t it;
    st_md_iter_init(&it, md);
    st_str_t mn, mv;
    /* as Loki's LabelsBuilder.Add: metadata named like a stream label becomes <name>_extracted;
     * the renamed names are built first so the buffer no longer moves when they are referenced */
    st_buf_t *names = &res->tmp;
    st_buf_reset(names);
    while (st_md_next(&it, &mn, &mv) == 1) {
        if (!st_labels_get(&s->labels, mn, NULL)) continue;
        ST_TRY(st_buf_append(names, mn.p, mn.n));
        ST_TRY(st_buf_puts(names, "_extracted"));
    }
    size_t off = 0;
    st_md_iter_init(&it, md);
    while (st_md_next(&it, &mn, &mv) == 1) {
        ST_TRY(lv_reserve(res, n + 1));
        if (st_labels_get(&s->labels, mn, NULL)) {
            size_t len = mn.n + 10;
            mn = st_str(names->data + off, len);
            off += len;
        }
        res->lv[n++] = (st_label_t){mn, mv};
    }
    st_labels_t merged;
    ST_TRY(st_labels_from_pairs(res->lv, n, &merged));
    int rc = st_labels_format(&merged, &res->key);
    if (rc == 0) rc = put_labels_json(&res->json, merged.v, merged.n);
    st_labels_free(&merged);
    ST_TRY(rc);
    return group_find(res, stream, out);
}

static int push_ent(result_t *res, outent_t **o)
{
    if (res->n == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 256;
        outent_t *v = realloc(res->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        res->v = v;
        res->cap = cap;
    }
    *o = &res->v[res->n++];
    memset(*o, 0, sizeof **o);
    return 0;
}

/* An entry of a pipeline that changes labels or lines: runs it again for the final labels and line. */
static int result_add_full(run_t *r, result_t *res, uint32_t stream, const st_entry_t *e)
{
    st_pipeline_result_t *p = &r->pres;
    ST_TRY(st_pipeline_run_kept(r->pl, e->ts, e->line, &r->sel.streams[stream].labels, e->md, p));
    if (!p->keep) return 0; /* cannot happen: the scan kept it */
    const st_labels_t *l = p->labels;
    st_buf_reset(&res->key);
    st_buf_reset(&res->json);
    outent_t *o;
    if (!r->req->categorize_labels) {
        ST_TRY(st_labels_format(l, &res->key));
        ST_TRY(put_labels_json(&res->json, l->v, l->n));
        uint32_t g;
        ST_TRY(group_find(res, stream, &g));
        ST_TRY(push_ent(res, &o));
        o->group = g;
    } else {
        ST_TRY(lv_reserve(res, l->n + 1));
        size_t n = 0;
        for (size_t i = 0; i < l->n; i++)
            if (p->cats[i] == ST_PIPELINE_CAT_STREAM) res->lv[n++] = l->v[i];
        st_labels_t sl = {res->lv, n, NULL};
        ST_TRY(st_labels_format(&sl, &res->key));
        ST_TRY(put_labels_json(&res->json, res->lv, n));
        uint32_t g;
        ST_TRY(group_find(res, stream, &g));
        ST_TRY(push_ent(res, &o));
        o->group = g;
        /* {"structuredMetadata":{...},"parsed":{...}}, each only when non-empty */
        st_buf_t *t = &res->tmp;
        st_buf_reset(t);
        ST_TRY(st_buf_putc(t, '{'));
        bool first = true;
        for (int cat = ST_PIPELINE_CAT_MD; cat <= ST_PIPELINE_CAT_PARSED; cat++) {
            n = 0;
            for (size_t i = 0; i < l->n; i++)
                if (p->cats[i] == cat) res->lv[n++] = l->v[i];
            if (n == 0) continue;
            if (!first) ST_TRY(st_buf_putc(t, ','));
            first = false;
            ST_TRY(st_buf_puts(t, cat == ST_PIPELINE_CAT_MD ? "\"structuredMetadata\":" : "\"parsed\":"));
            ST_TRY(put_labels_json(t, res->lv, n));
        }
        ST_TRY(st_buf_putc(t, '}'));
        o->md_off = res->bytes.len;
        o->md_len = t->len;
        o->encoded = true;
        ST_TRY(st_buf_append(&res->bytes, t->data, t->len));
    }
    o->ts = e->ts;
    o->line_off = res->bytes.len;
    o->line_len = p->line.n;
    return st_buf_append(&res->bytes, p->line.p, p->line.n);
}

static int result_add(run_t *r, result_t *res, uint32_t stream, const st_entry_t *e)
{
    if (r->full) return result_add_full(r, res, stream, e);
    uint32_t g;
    ST_TRY(group_of(r, res, stream, e->md, &g));
    outent_t *o;
    ST_TRY(push_ent(res, &o));
    o->group = g;
    o->ts = e->ts;
    o->md_off = res->bytes.len;
    o->md_len = e->md.n;
    ST_TRY(st_buf_append(&res->bytes, e->md.p, e->md.n));
    o->line_off = res->bytes.len;
    o->line_len = e->line.n;
    return st_buf_append(&res->bytes, e->line.p, e->line.n);
}

static int put_md_obj(st_buf_t *out, st_str_t md)
{
    st_buf_putc(out, '{');
    if (md.n) {
        st_buf_puts(out, "\"structuredMetadata\":{");
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t n, v;
        bool first = true;
        while (st_md_next(&it, &n, &v) == 1) {
            if (!first) st_buf_putc(out, ',');
            first = false;
            st_json_put_str(out, n);
            st_buf_putc(out, ':');
            st_json_put_str(out, v);
        }
        st_buf_putc(out, '}');
    }
    return st_buf_putc(out, '}');
}

static int cmp_group_keys(const void *a, const void *b, void *arg)
{
    const group_t *g = arg;
    return strcmp(g[*(const uint32_t *)a].key, g[*(const uint32_t *)b].key);
}

static int encode(run_t *r, result_t *res, st_buf_t *out)
{
    /* groups sorted by labels; entries of each group in output (direction) order */
    size_t ng = res->ng ? res->ng : 1;
    uint32_t *order = malloc(ng * sizeof *order);
    size_t *first = malloc(ng * sizeof *first);  /* first entry of each group */
    size_t *next = malloc((res->n ? res->n : 1) * sizeof *next); /* next entry of the same group */
    size_t *last = malloc(ng * sizeof *last);
    if (order == NULL || first == NULL || next == NULL || last == NULL) {
        free(order);
        free(first);
        free(next);
        free(last);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < res->ng; i++) {
        order[i] = i;
        first[i] = last[i] = SIZE_MAX;
    }
    for (size_t i = 0; i < res->n; i++) {
        uint32_t g = res->v[i].group;
        next[i] = SIZE_MAX;
        if (first[g] == SIZE_MAX) first[g] = i;
        else next[last[g]] = i;
        last[g] = i;
    }
    qsort_r(order, res->ng, sizeof *order, cmp_group_keys, res->g);
    st_buf_puts(out, "{\"status\":\"success\",");
    st_strvec_t warn = ST_STRVEC_INIT;
    st_qsel_warnings(&r->sel, &warn);
    st_put_warnings(out, &warn);
    st_strvec_free(&warn);
    st_buf_puts(out, "\"data\":{\"resultType\":\"streams\",");
    if (r->req->categorize_labels) st_buf_puts(out, "\"encodingFlags\":[\"categorize-labels\"],");
    st_buf_puts(out, "\"result\":[");
    char ts[32];
    for (size_t gi = 0; gi < res->ng; gi++) {
        uint32_t g = order[gi];
        if (gi) st_buf_putc(out, ',');
        st_buf_puts(out, "{\"stream\":");
        st_buf_puts(out, res->g[g].json);
        st_buf_puts(out, ",\"values\":[");
        for (size_t i = first[g]; i != SIZE_MAX; i = next[i]) {
            const outent_t *o = &res->v[i];
            if (i != first[g]) st_buf_putc(out, ',');
            snprintf(ts, sizeof ts, "[\"%lld\",", (long long)o->ts);
            st_buf_puts(out, ts);
            st_json_put_str(out, st_str(res->bytes.data + o->line_off, o->line_len));
            if (r->req->categorize_labels) {
                st_buf_putc(out, ',');
                if (o->encoded) st_buf_append(out, res->bytes.data + o->md_off, o->md_len);
                else put_md_obj(out, st_str(res->bytes.data + o->md_off, o->md_len));
            }
            st_buf_putc(out, ']');
        }
        st_buf_puts(out, "]}");
    }
    free(order);
    free(first);
    free(next);
    free(last);
    st_buf_puts(out, "],");
    r->stats.entries_returned = res->n;
    st_qstats_json(&r->stats, out);
    return st_buf_puts(out, "}}");
}

int st_exec_log_query(st_querier_t *q, const st_query_t *req, const st_logql_expr_t *e, st_buf_t *out,
                      st_query_error_t *err)
{
    run_t r;
    memset(&r, 0, sizeof r);
    r.q = q;
    r.req = req;
    r.forward = req->forward;
    r.stats.start_mono = st_mono_ns();
    result_t res;
    memset(&res, 0, sizeof res);
    char perr[256];
    int rc = st_pipeline_compile(&e->log.pipeline, NULL, &r.pl, perr);
    if (rc == ST_EPARSE) return st_qerr(err, 400, rc, "%s", perr);
    if (rc < 0) return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    r.has_lit = st_pipeline_required_literal(r.pl, &r.lit);
    if (r.has_lit) st_finder_init(&r.finder, r.lit.p, r.lit.n);
    r.lit_only = r.has_lit && st_pipeline_literal_only(r.pl);
    r.has_vlit = st_pipeline_value_literal(r.pl, &r.vname, &r.vlit);
    if (r.has_vlit) st_finder_init(&r.vfinder, r.vlit.p, r.vlit.n);
    r.npf = (size_t)(2 * st_querier_threads(q) + 2);
    if (r.npf > PF_MAX) r.npf = PF_MAX;
    r.full = !st_pipeline_line_only(r.pl);
    if (r.full) {
        /* the pool runs the whole pipeline on each prefetched block, one clone per slot */
        for (size_t i = 0; i < r.npf; i++) {
            if ((rc = st_pipeline_clone(r.pl, &r.pf[i].pl)) < 0) {
                st_qerr(err, 500, rc, "%s", st_strerror(rc));
                goto out;
            }
        }
    }
    if (req->end <= req->start) goto encode; /* empty range */
    rc = st_qsel_build(q, req->tenant, &e->log.selector, req->start, req->end - 1, true, &r.sel, &r.stats);
    if (rc < 0) {
        st_qerr(err, 500, rc, "selecting streams: %s", st_strerror(rc));
        goto out;
    }
    if (q->o.max_query_series > 0 && r.sel.nstreams > (size_t)q->o.max_query_series) {
        /* Loki limits series of log results too (max_query_series) */
    }
    if (r.sel.nblocks > 1)
        st_qsort(r.sel.blocks, r.sel.nblocks, sizeof *r.sel.blocks, r.forward ? cmp_blocks_fwd : cmp_blocks_bwd);
    r.heap = malloc((r.sel.nblocks ? r.sel.nblocks : 1) * sizeof *r.heap);
    if (r.heap == NULL) {
        rc = st_qerr(err, 500, -ENOMEM, "out of memory");
        goto out;
    }
    size_t next = 0;
    int64_t last_out = INT64_MIN;
    bool have_last = false;
    int64_t deadline = q->o.query_timeout_ns > 0 ? r.stats.start_mono + q->o.query_timeout_ns : INT64_MAX;
    while ((size_t)res.n < (size_t)req->limit) {
        /* open every block that may hold an entry before the current heap top */
        while (next < r.sel.nblocks) {
            qblock_t *b = &r.sel.blocks[next];
            if (r.nheap > 0) {
                int64_t top = r.heap[0]->cur.ts;
                if (r.forward ? b->min_ts > top : b->max_ts < top) break;
            }
            cursor_t *c;
            rc = cursor_open(&r, next, &c);
            next++;
            if (rc < 0) {
                cursor_release(&r, c);
                st_qerr(err, 500, rc, "reading chunk: %s", st_strerror(rc));
                goto out;
            }
            if (cursor_next(&r, c)) heap_push(&r, c);
            else cursor_release(&r, c);
            if (r.fail < 0) break;
        }
        if (r.fail < 0) {
            rc = st_qerr(err, 500, r.fail, "running the pipeline: %s", st_strerror(r.fail));
            goto out;
        }
        if (r.nheap == 0) break;
        if (st_mono_ns() > deadline) {
            rc = st_qerr(err, 504, ST_ETIMEOUT, "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed");
            goto out;
        }
        cursor_t *c = heap_pop(&r);
        /* interval: at most one entry per interval, across streams (Loki's semantics) */
        bool emit = true;
        if (req->interval_ns > 0 && have_last) {
            emit = r.forward ? c->cur.ts >= last_out + req->interval_ns : c->cur.ts <= last_out - req->interval_ns;
        }
        if (emit) {
            if ((rc = result_add(&r, &res, c->stream, &c->cur)) < 0) {
                st_qerr(err, 500, rc, "out of memory");
                cursor_release(&r, c);
                goto out;
            }
            last_out = c->cur.ts;
            have_last = true;
        }
        if (cursor_next(&r, c)) heap_push(&r, c);
        else cursor_release(&r, c);
        if (r.fail < 0) {
            rc = st_qerr(err, 500, r.fail, "running the pipeline: %s", st_strerror(r.fail));
            goto out;
        }
    }
encode:
    rc = encode(&r, &res, out);
    if (rc < 0) st_qerr(err, 500, rc, "encoding result: %s", st_strerror(rc));
out:
    for (size_t i = 0; i < r.npf; i++) {
        if (r.pf[i].busy) st_pool_wait(q->pool, &r.pf[i].task);
        st_block_free(&r.pf[i].blk);
        free(r.pf[i].hit);
        free(r.pf[i].vhit);
        st_buf_free(&r.pf[i].scratch);
        st_pipeline_free(r.pf[i].pl);
    }
    while (r.nheap) {
        cursor_t *c = heap_pop(&r);
        st_block_free(&c->blk);
        free(c->hit);
        free(c);
    }
    for (size_t i = 0; i < r.nfree; i++) {
        st_block_free(&r.free_list[i]->blk);
        free(r.free_list[i]->hit);
        free(r.free_list[i]);
    }
    free(r.heap);
    st_buf_free(&r.scratch);
    st_qsel_free(&r.sel);
    st_pipeline_free(r.pl);
    result_free(&res);
    return rc;
}
