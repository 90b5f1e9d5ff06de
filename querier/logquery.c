/* logquery.c: log (stream) queries: a lazy k-way merge over time-sorted blocks of all selected
 * streams in the requested direction, with the pipeline applied while scanning, stopping at the
 * limit; then Loki's "streams" result with stats. Blocks are decompressed only when the merge is about
 * to reach their time range, so limit-bound queries read little; the next few blocks in merge order are
 * decompressed and prefiltered on the worker pool while the merge consumes the current ones. */
#include "querier/querier_int.h"

#include "common/err.h"
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
    bool use_hit;
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
    st_str_t lit;
    st_finder_t finder;
    cursor_t *free_list[64];
    size_t nfree;
    pf_t pf[PF_MAX];
    size_t npf;          /* prefetch window (slots in use: block i uses pf[i % npf]) */
    size_t submitted;    /* blocks [0, submitted) have been handed to the pool */
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
        if (!st_pipeline_keep_line(r->pl, e.line)) continue;
        r->stats.post_filter_lines++;
        c->cur = e;
        return true;
    }
    return false;
}

/* Marks the entries of a decoded block whose line contains the required literal, with one search
 * over the block's contiguous text instead of one per line. */
static int prefilter(const run_t *r, const st_block_t *b, uint8_t **hitp, size_t *hitcap)
{
    if (b->n > *hitcap) {
        uint8_t *h = realloc(*hitp, b->n);
        if (h == NULL) return -ENOMEM;
        *hitp = h;
        *hitcap = b->n;
    }
    uint8_t *hit = *hitp;
    memset(hit, 0, b->n);
    const char *text = b->lines;
    size_t len = b->line_off[b->n];
    size_t pos = 0;
    uint32_t idx = 0;
    while (pos < len) {
        const char *m = st_finder_find(&r->finder, text + pos, len - pos);
        if (m == NULL) break;
        size_t at = (size_t)(m - text);
        /* the entry holding offset at: first idx with line_off[idx+1] > at */
        uint32_t lo = idx, hi = b->n - 1;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (b->line_off[mid + 1] > at) hi = mid;
            else lo = mid + 1;
        }
        idx = lo;
        if (at + r->lit.n <= b->line_off[idx + 1]) {
            hit[idx] = 1; /* whole match inside this line */
            pos = b->line_off[idx + 1];
            idx++;
        } else {
            pos = at + 1; /* match crossed into the next line: keep looking */
        }
    }
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
    if (fd < 0) {
        s->rc = -errno;
        return;
    }
    s->rc = st_block_read(fd, f->base, &s->b->meta, &s->scratch, &s->blk);
    if (!f->borrowed) close(fd);
    if (s->rc == 0 && r->has_lit && (s->rc = prefilter(r, &s->blk, &s->hit, &s->hitcap)) == 0) s->use_hit = true;
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
    size_t md_off, md_len;
} outent_t;

typedef struct {
    char *key;            /* label text of the group (stream labels + structured metadata) */
    uint32_t stream;
} group_t;

typedef struct {
    outent_t *v;
    size_t n, cap;
    st_buf_t bytes;       /* copies of lines and metadata */
    group_t *g;
    size_t ng, capg;
} result_t;

static void result_free(result_t *res)
{
    free(res->v);
    st_buf_free(&res->bytes);
    for (size_t i = 0; i < res->ng; i++) free(res->g[i].key);
    free(res->g);
}

/* Group key: the stream's labels, or with structured metadata (2-tuple encoding) the merged set. */
static int group_of(run_t *r, result_t *res, uint32_t stream, st_str_t md, uint32_t *out)
{
    const qstream_t *s = &r->sel.streams[stream];
    st_buf_t key = ST_BUF_INIT;
    int rc = 0;
    if (md.n == 0 || r->req->categorize_labels) {
        rc = st_buf_puts(&key, s->canon);
    } else {
        st_label_t pairs[256];
        size_t n = 0;
        for (size_t i = 0; i < s->labels.n && n < 256; i++) pairs[n++] = s->labels.v[i];
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t mn, mv;
        while (n < 256 && st_md_next(&it, &mn, &mv) == 1) {
            /* metadata never overrides a stream label of the same name */
            bool dup = false;
            for (size_t i = 0; i < s->labels.n; i++)
                if (st_str_eq(s->labels.v[i].name, mn)) dup = true;
            if (!dup) pairs[n++] = (st_label_t){mn, mv};
        }
        st_labels_t merged;
        rc = st_labels_from_pairs(pairs, n, &merged);
        if (rc == 0) {
            rc = st_labels_format(&merged, &key);
            st_labels_free(&merged);
        }
    }
    if (rc < 0) {
        st_buf_free(&key);
        return rc;
    }
    const char *k = st_buf_cstr(&key);
    for (size_t i = res->ng; i > 0; i--) {
        if (strcmp(res->g[i - 1].key, k) == 0) {
            st_buf_free(&key);
            *out = (uint32_t)(i - 1);
            return 0;
        }
    }
    if (res->ng == res->capg) {
        size_t cap = res->capg ? res->capg * 2 : 16;
        group_t *g = realloc(res->g, cap * sizeof *g);
        if (g == NULL) {
            st_buf_free(&key);
            return -ENOMEM;
        }
        res->g = g;
        res->capg = cap;
    }
    memset(&res->g[res->ng], 0, sizeof res->g[0]);
    res->g[res->ng].key = st_buf_steal(&key, NULL);
    res->g[res->ng].stream = stream;
    *out = (uint32_t)res->ng++;
    return 0;
}

static int result_add(run_t *r, result_t *res, uint32_t stream, const st_entry_t *e)
{
    uint32_t g;
    ST_TRY(group_of(r, res, stream, e->md, &g));
    if (res->n == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 256;
        outent_t *v = realloc(res->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        res->v = v;
        res->cap = cap;
    }
    outent_t *o = &res->v[res->n++];
    o->group = g;
    o->ts = e->ts;
    o->line_off = res->bytes.len;
    o->line_len = e->line.n;
    ST_TRY(st_buf_append(&res->bytes, e->line.p, e->line.n));
    o->md_off = res->bytes.len;
    o->md_len = e->md.n;
    return st_buf_append(&res->bytes, e->md.p, e->md.n);
}

static int put_labels_obj(st_buf_t *out, const char *canon)
{
    st_labels_t l;
    char err[256];
    ST_TRY(st_labels_parse(st_cstr(canon), &l, err));
    st_buf_putc(out, '{');
    for (size_t i = 0; i < l.n; i++) {
        if (i) st_buf_putc(out, ',');
        st_json_put_str(out, l.v[i].name);
        st_buf_putc(out, ':');
        st_json_put_str(out, l.v[i].value);
    }
    st_labels_free(&l);
    return st_buf_putc(out, '}');
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
    uint32_t *order = malloc((res->ng ? res->ng : 1) * sizeof *order);
    size_t *count = calloc(res->ng ? res->ng : 1, sizeof *count);
    if (order == NULL || count == NULL) {
        free(order);
        free(count);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < res->ng; i++) order[i] = i;
    qsort_r(order, res->ng, sizeof *order, cmp_group_keys, res->g);
    for (size_t i = 0; i < res->n; i++) count[res->v[i].group]++;
    st_buf_puts(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"streams\",");
    if (r->req->categorize_labels) st_buf_puts(out, "\"encodingFlags\":[\"categorize-labels\"],");
    st_buf_puts(out, "\"result\":[");
    char ts[32];
    for (size_t gi = 0; gi < res->ng; gi++) {
        uint32_t g = order[gi];
        if (gi) st_buf_putc(out, ',');
        st_buf_puts(out, "{\"stream\":");
        ST_TRY(put_labels_obj(out, res->g[g].key));
        st_buf_puts(out, ",\"values\":[");
        bool first = true;
        for (size_t i = 0; i < res->n; i++) {
            const outent_t *o = &res->v[i];
            if (o->group != g) continue;
            if (!first) st_buf_putc(out, ',');
            first = false;
            snprintf(ts, sizeof ts, "[\"%lld\",", (long long)o->ts);
            st_buf_puts(out, ts);
            st_json_put_str(out, st_str(res->bytes.data + o->line_off, o->line_len));
            if (r->req->categorize_labels) {
                st_buf_putc(out, ',');
                put_md_obj(out, st_str(res->bytes.data + o->md_off, o->md_len));
            }
            st_buf_putc(out, ']');
        }
        st_buf_puts(out, "]}");
    }
    free(order);
    free(count);
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
    r.npf = (size_t)(2 * st_querier_threads(q) + 2);
    if (r.npf > PF_MAX) r.npf = PF_MAX;
    if (req->end <= req->start) goto encode; /* empty range */
    rc = st_qsel_build(q, req->tenant, &e->log.selector, req->start, req->end - 1, true, &r.sel, &r.stats);
    if (rc < 0) {
        st_qerr(err, 500, rc, "selecting streams: %s", st_strerror(rc));
        goto out;
    }
    if (q->o.max_query_series > 0 && r.sel.nstreams > (size_t)q->o.max_query_series) {
        /* Loki limits series of log results too (max_query_series) */
    }
    qsort(r.sel.blocks, r.sel.nblocks, sizeof *r.sel.blocks, r.forward ? cmp_blocks_fwd : cmp_blocks_bwd);
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
    }
encode:
    rc = encode(&r, &res, out);
    if (rc < 0) st_qerr(err, 500, rc, "encoding result: %s", st_strerror(rc));
out:
    for (size_t i = 0; i < r.npf; i++) {
        if (r.pf[i].busy) st_pool_wait(q->pool, &r.pf[i].task);
        st_block_free(&r.pf[i].blk);
        free(r.pf[i].hit);
        st_buf_free(&r.pf[i].scratch);
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
