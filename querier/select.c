/* select.c: from a selector and a time range to streams and time-sorted entry sources: the
 * ingester's snapshot (heads, open chunks) plus indexed chunks of every UTC day in range, with chunks
 * present in both counted once. Chunk footers are read here; block contents are read later. */
#include "querier/querier_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Notes which pending delete requests select each stream and filters the in-memory entries; chunk
 * blocks are filtered as they are decoded (st_qsel_filter_block). */
static int apply_deletes(st_index_read_t *rd, const char *tenant, int64_t from, int64_t through, qsel_t *s)
{
    ST_TRY(st_qdel_load(rd, tenant, from, through, &s->del));
    if (s->del.n == 0 || s->nstreams == 0) return 0;
    s->del_reqs = malloc(s->nstreams * s->del.n * sizeof *s->del_reqs);
    if (s->del_reqs == NULL) return -ENOMEM;
    uint32_t k = 0;
    for (size_t i = 0; i < s->nstreams; i++) {
        s->streams[i].del_first = k;
        for (size_t j = 0; j < s->del.n; j++)
            if (st_qdel_selects(&s->del, j, &s->streams[i].labels)) s->del_reqs[k++] = (uint32_t)j;
        s->streams[i].del_n = k - s->streams[i].del_first;
    }
    if (k == 0) return 0;
    size_t w = 0;
    for (size_t i = 0; i < s->nblocks; i++) {
        qblock_t *b = &s->blocks[i];
        const qstream_t *st = &s->streams[b->stream];
        if (b->is_mem && st->del_n) {
            st_entry_t *copy = malloc((b->n ? b->n : 1) * sizeof *copy);
            st_entry_t **mc = realloc(s->mem_copies, (s->nmem_copies + 1) * sizeof *mc);
            if (copy == NULL || mc == NULL) {
                free(copy);
                if (mc) s->mem_copies = mc;
                return -ENOMEM;
            }
            s->mem_copies = mc;
            s->mem_copies[s->nmem_copies++] = copy;
            size_t n = 0;
            for (size_t e = 0; e < b->n; e++)
                if (!st_qdel_hides(&s->del, s->del_reqs + st->del_first, st->del_n, b->e[e].ts, b->e[e].line))
                    copy[n++] = b->e[e];
            b->e = copy;
            b->n = n;
            if (n == 0) continue; /* nothing left: drop the block */
            b->min_ts = copy[0].ts;
            b->max_ts = copy[n - 1].ts;
        }
        s->blocks[w++] = *b;
    }
    s->nblocks = w;
    return 0;
}

int st_qsel_filter_block(const qsel_t *s, uint32_t stream, st_block_t *blk)
{
    const qstream_t *st = &s->streams[stream];
    if (st->del_n == 0 || blk->n == 0) return 0;
    uint8_t *drop = NULL;
    for (uint32_t i = 0; i < blk->n; i++) {
        st_entry_t e = st_block_entry(blk, i);
        if (!st_qdel_hides(&s->del, s->del_reqs + st->del_first, st->del_n, e.ts, e.line)) continue;
        if (drop == NULL && (drop = calloc(blk->n, 1)) == NULL) return -ENOMEM;
        drop[i] = 1;
    }
    if (drop) st_block_drop(blk, drop);
    free(drop);
    return 0;
}

static bool pcre_full_match(const void *re, st_str_t s)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL) return false;
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)s.p, s.n, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_BADOPTION) rc = pcre2_match(re, (PCRE2_SPTR)s.p, s.n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

void st_qmatchers(const st_logql_selector_t *sel, st_matcher_t *m)
{
    for (size_t i = 0; i < sel->n; i++) {
        const st_logql_matcher_t *x = &sel->v[i];
        m[i].name = x->name;
        m[i].value = x->value;
        m[i].re = x->re;
        m[i].re_match = pcre_full_match;
        switch (x->type) {
        case ST_LOGQL_MATCH_EQ: m[i].type = ST_MATCH_EQ; break;
        case ST_LOGQL_MATCH_NEQ: m[i].type = ST_MATCH_NEQ; break;
        case ST_LOGQL_MATCH_RE: m[i].type = ST_MATCH_RE; break;
        case ST_LOGQL_MATCH_NRE: m[i].type = ST_MATCH_NRE; break;
        }
    }
}

int st_qerr(st_query_error_t *err, int status, int rc, const char *fmt, ...)
{
    if (err) {
        err->status = status;
        st_buf_reset(&err->msg);
        va_list ap;
        va_start(ap, fmt);
        char tmp[2048];
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        st_buf_puts(&err->msg, tmp);
    }
    return rc;
}

void st_query_error_free(st_query_error_t *e)
{
    if (e) st_buf_free(&e->msg);
}

static int add_stream(qsel_t *s, const char *canon, size_t n, uint32_t *idx)
{
    if (s->nstreams == s->capstreams) {
        size_t cap = s->capstreams ? s->capstreams * 2 : 16;
        qstream_t *x = realloc(s->streams, cap * sizeof *x);
        if (x == NULL) return -ENOMEM;
        s->streams = x;
        s->capstreams = cap;
    }
    qstream_t *q = &s->streams[s->nstreams];
    memset(q, 0, sizeof *q);
    q->canon = st_str_dup(st_str(canon, n));
    char err[256];
    if (q->canon == NULL) return -ENOMEM;
    int rc = st_labels_parse(st_str(canon, n), &q->labels, err);
    if (rc < 0) {
        free(q->canon);
        return rc;
    }
    *idx = (uint32_t)s->nstreams++;
    return 0;
}

static int add_block(qsel_t *s, qblock_t b)
{
    if (s->nblocks == s->capblocks) {
        size_t cap = s->capblocks ? s->capblocks * 2 : 64;
        qblock_t *x = realloc(s->blocks, cap * sizeof *x);
        if (x == NULL) return -ENOMEM;
        s->blocks = x;
        s->capblocks = cap;
    }
    s->blocks[s->nblocks++] = b;
    return 0;
}

#define QSEL_MAX_FDS 1024

/* The descriptor of path if this selection already holds one (*shared = true), else a new one. */
static int shared_fd(qsel_t *s, const char *path, bool *shared)
{
    *shared = false;
    if (s->fd_tabcap) {
        size_t mask = s->fd_tabcap - 1;
        for (size_t i = st_hash64(path, strlen(path)) & mask;; i = (i + 1) & mask) {
            uint32_t f = s->fd_tab[i];
            if (f == 0) break;
            if (strcmp(s->files[f - 1].path, path) == 0) {
                *shared = true;
                return s->files[f - 1].fd;
            }
        }
    }
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Records that files[file_plus1 - 1] owns the descriptor of path. */
static int fd_tab_put(qsel_t *s, const char *path, uint32_t file_plus1)
{
    if ((s->nowned + 1) * 2 > s->fd_tabcap) {
        size_t cap = s->fd_tabcap ? s->fd_tabcap * 2 : 64;
        uint32_t *t = calloc(cap, sizeof *t);
        if (t == NULL) return -ENOMEM;
        for (size_t i = 0; i < s->fd_tabcap; i++) {
            uint32_t f = s->fd_tab[i];
            if (f == 0) continue;
            size_t j = st_hash64(s->files[f - 1].path, strlen(s->files[f - 1].path)) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = f;
        }
        free(s->fd_tab);
        s->fd_tab = t;
        s->fd_tabcap = cap;
    }
    size_t j = st_hash64(path, strlen(path)) & (s->fd_tabcap - 1);
    while (s->fd_tab[j]) j = (j + 1) & (s->fd_tabcap - 1);
    s->fd_tab[j] = file_plus1;
    return 0;
}

static int add_file(qsel_t *s, qfile_t f, uint32_t *idx)
{
    if (s->nfiles == s->capfiles) {
        size_t cap = s->capfiles ? s->capfiles * 2 : 16;
        qfile_t *x = realloc(s->files, cap * sizeof *x);
        if (x == NULL) return -ENOMEM;
        s->files = x;
        s->capfiles = cap;
    }
    s->files[s->nfiles] = f;
    *idx = (uint32_t)s->nfiles++;
    return 0;
}

/* Adds the blocks of a chunk file region that overlap [from, through]. */
static int add_chunk_blocks(qsel_t *s, uint32_t stream, qfile_t f, const st_block_meta_t *blocks, uint32_t nb,
                            int64_t from, int64_t through)
{
    uint32_t fi;
    ST_TRY(add_file(s, f, &fi));
    int cnt = 0;
    for (uint32_t i = 0; i < nb; i++) {
        if (blocks[i].max_ts < from || blocks[i].min_ts > through || blocks[i].entries == 0) continue;
        qblock_t b;
        memset(&b, 0, sizeof b);
        b.min_ts = blocks[i].min_ts;
        b.max_ts = blocks[i].max_ts;
        b.stream = stream;
        b.file = fi;
        b.meta = blocks[i];
        ST_TRY(add_block(s, b));
        cnt++;
    }
    s->files[fi].pending = cnt;
    return 0;
}

/* A set of chunk ids (open addressing; id + 1 stored so 0 means empty). */
typedef struct {
    uint64_t *v;
    size_t cap, n;
} idset_t;

/* 1 when added, 0 when already present, -ENOMEM. */
static int idset_add(idset_t *s, uint64_t id)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint64_t *v = calloc(cap, sizeof *v);
        if (v == NULL) return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->v[i] == 0) continue;
            size_t j = (size_t)st_hash64(&s->v[i], 8) & (cap - 1);
            while (v[j]) j = (j + 1) & (cap - 1);
            v[j] = s->v[i];
        }
        free(s->v);
        s->v = v;
        s->cap = cap;
    }
    uint64_t key = id + 1;
    size_t j = (size_t)st_hash64(&key, 8) & (s->cap - 1);
    for (; s->v[j]; j = (j + 1) & (s->cap - 1))
        if (s->v[j] == key) return 0;
    s->v[j] = key;
    s->n++;
    return 1;
}

typedef struct {
    st_querier_t *q;
    qsel_t *s;
    uint32_t stream;
    int64_t from, through;
    st_qstats_t *stats;
    idset_t *seen; /* chunk ids already taken (snapshot, or earlier days) */
    bool want_blocks;
    bool any;
    bool raced; /* a local chunk file was gone (moved after the index snapshot) */
} chunk_ctx_t;

static int chunk_cb(void *arg, const st_chunk_ref_t *ref)
{
    chunk_ctx_t *c = arg;
    c->any = true;
    if (!c->want_blocks) return 1; /* one overlapping chunk proves the stream is in range */
    int fresh = idset_add(c->seen, ref->chunk_id);
    if (fresh < 0) return fresh;
    if (fresh == 0) return 0; /* in memory, or seen on an earlier day */
    char path[4096];
    uint64_t base = ref->loc.offset;
    if (ref->loc.kind != ST_LOC_LOCAL) {
        int frc =
            c->q->o.fetch ? c->q->o.fetch(c->q->o.fetch_arg, ref, path, sizeof path, &base) : ST_EARCHIVED;
        if (frc == ST_EARCHIVED || (frc < 0 && c->q->o.fetch == NULL)) {
            if (c->q->o.fetch)
                c->s->archived_chunks++;
            else
                c->s->unavailable_chunks++;
            if (c->s->archived_min == 0 || ref->min_ts < c->s->archived_min) c->s->archived_min = ref->min_ts;
            if (ref->max_ts > c->s->archived_max) c->s->archived_max = ref->max_ts;
            if (c->s->narch == c->s->caparch) {
                size_t cap = c->s->caparch ? c->s->caparch * 2 : 16;
                int64_t *v = realloc(c->s->arch_ranges, cap * 2 * sizeof *v);
                if (v == NULL) return -ENOMEM;
                c->s->arch_ranges = v;
                c->s->caparch = cap;
            }
            c->s->arch_ranges[2 * c->s->narch] = ref->min_ts;
            c->s->arch_ranges[2 * c->s->narch + 1] = ref->max_ts;
            c->s->narch++;
            return 0;
        }
        if (frc == ST_ENOTFOUND) {
            /* the object was replaced (repacked, rewritten) after this index snapshot */
            c->raced = true;
            return 1;
        }
        if (frc < 0) return frc;
    } else {
        snprintf(path, sizeof path, "%s/%s", c->q->o.chunks_dir, ref->loc.path);
    }
    /* The file stays open while the selection lives (one descriptor per file, shared by its chunks,
     * up to QSEL_MAX_FDS): the lifecycle may move the chunk to S3 and unlink the file before its
     * blocks are read. A file already gone was moved after this index snapshot was taken: the
     * caller selects again from a fresh one. */
    bool shared;
    int fd = shared_fd(c->s, path, &shared);
    if (fd < 0 && errno == ENOENT && ref->loc.kind == ST_LOC_LOCAL) {
        c->raced = true;
        return 1;
    }
    if (fd < 0) return -errno;
    st_chunk_info_t ci;
    int rc = st_chunk_read_info(fd, base, ref->loc.length, &ci);
    bool keep = shared || c->s->nowned < QSEL_MAX_FDS;
    qfile_t f = {st_str_dup(st_cstr(path)), keep ? fd : -1, base, 0, keep, keep && !shared};
    if (rc == 0 && f.path == NULL) rc = -ENOMEM;
    size_t nfiles = c->s->nfiles;
    if (rc == 0) {
        c->stats->chunks_ref++;
        rc = add_chunk_blocks(c->s, c->stream, f, ci.blocks, ci.nblocks, c->from, c->through);
    }
    bool added = c->s->nfiles > nfiles; /* the file entry owns path (and the descriptor when owned) */
    if (!added) free(f.path);
    if (rc == 0 && f.owned) {
        c->s->nowned++;
        rc = fd_tab_put(c->s, path, (uint32_t)c->s->nfiles);
    }
    if (!shared && !(added && f.owned)) close(fd); /* not kept, or kept by nobody */
    st_chunk_info_free(&ci);
    return rc;
}

static int qsel_build_once(st_querier_t *q, const char *tenant, const st_logql_selector_t *sel, int64_t from,
                           int64_t through, bool want_blocks, qsel_t *out, st_qstats_t *stats, bool *raced)
{
    memset(out, 0, sizeof *out);
    st_matcher_t *m = calloc(sel->n ? sel->n : 1, sizeof *m);
    if (m == NULL) return -ENOMEM;
    st_qmatchers(sel, m);
    int rc = 0;
    idset_t seen = {NULL, 0, 0};
    st_index_read_t *r = NULL;
    /* 1. memory first: a chunk indexed after this snapshot is then found by the index read below */
    if (q->o.ingester) {
        rc = st_ingester_snapshot(q->o.ingester, tenant, m, sel->n, from, through, want_blocks, &out->snap);
        if (rc < 0) goto done;
        for (size_t i = 0; i < out->snap.n && rc == 0; i++) {
            st_mem_stream_t *ms = &out->snap.streams[i];
            uint32_t si;
            if ((rc = add_stream(out, ms->canon, strlen(ms->canon), &si)) < 0) break;
            for (size_t j = 0; j < ms->nsrc && rc == 0; j++) {
                st_mem_source_t *src = &ms->src[j];
                if (src->is_file) {
                    qfile_t f = {NULL, src->fd, 0, 0, true, false};
                    rc = add_chunk_blocks(out, si, f, src->blocks, src->nblocks, from, through);
                } else if (src->n) {
                    qblock_t b;
                    memset(&b, 0, sizeof b);
                    b.is_mem = true;
                    b.e = src->entries;
                    b.n = src->n;
                    b.min_ts = src->entries[0].ts;
                    b.max_ts = src->entries[src->n - 1].ts;
                    b.stream = si;
                    rc = add_block(out, b);
                }
            }
        }
        if (rc < 0) goto done;
        for (size_t i = 0; i < out->snap.chunk_ids.n; i++)
            if ((rc = idset_add(&seen, out->snap.chunk_ids.v[i])) < 0) goto done;
    }
    /* 2. the index, day by day */
    if ((rc = st_index_read_begin(q->o.index, &r)) < 0) goto done;
    int64_t d0 = st_day_of(from), d1 = st_day_of(through);
    st_u64vec_t ids = ST_U64VEC_INIT;
    if ((rc = st_index_select(r, tenant, d0, d1, m, sel->n, &ids)) < 0) goto done;
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        st_str_t text;
        if (st_index_stream(r, tenant, ids.v[i], &text, NULL) < 0) continue;
        /* the stream may already be known from memory */
        uint32_t si = UINT32_MAX;
        for (size_t k = 0; k < out->snap.n; k++)
            if (out->snap.streams[k].id == ids.v[i]) si = (uint32_t)k;
        bool is_new = si == UINT32_MAX;
        if (is_new && (rc = add_stream(out, text.p, text.n, &si)) < 0) break;
        chunk_ctx_t c = {q, out, si, from, through, stats, &seen, want_blocks, false, false};
        for (int64_t d = d0; d <= d1 && rc == 0; d++) {
            rc = st_index_chunks(r, tenant, d, ids.v[i], from, through, chunk_cb, &c);
            if (c.raced) {
                *raced = true;
                rc = ST_EBADSTATE;
                break;
            }
            if (!want_blocks && c.any) break;
        }
        if (rc == 0 && is_new && !c.any) {
            /* no chunk overlaps the range: drop the stream again */
            out->nstreams--;
            free(out->streams[out->nstreams].canon);
            st_labels_free(&out->streams[out->nstreams].labels);
        }
    }
    st_u64vec_free(&ids);
    if (rc == 0 && want_blocks && q->o.apply_deletes) rc = apply_deletes(r, tenant, from, through, out);
done:
    st_index_read_end(r);
    free(seen.v);
    free(m);
    if (rc < 0) st_qsel_free(out);
    return rc;
}

int st_qsel_build(st_querier_t *q, const char *tenant, const st_logql_selector_t *sel, int64_t from,
                  int64_t through, bool want_blocks, qsel_t *out, st_qstats_t *stats)
{
    for (int attempt = 0;; attempt++) {
        bool raced = false;
        st_qstats_t saved = *stats;
        int rc = qsel_build_once(q, tenant, sel, from, through, want_blocks, out, stats, &raced);
        if (!raced || attempt == 4) return raced ? -ENOENT : rc;
        *stats = saved; /* a chunk moved while we looked: select again from a newer snapshot */
    }
}

void st_qsel_free(qsel_t *s)
{
    for (size_t i = 0; i < s->nstreams; i++) {
        free(s->streams[i].canon);
        st_labels_free(&s->streams[i].labels);
    }
    free(s->streams);
    free(s->blocks);
    for (size_t i = 0; i < s->nfiles; i++) {
        if (s->files[i].owned && s->files[i].fd >= 0) close(s->files[i].fd);
        free(s->files[i].path);
    }
    free(s->files);
    free(s->arch_ranges);
    free(s->fd_tab);
    st_qdel_free(&s->del);
    free(s->del_reqs);
    for (size_t i = 0; i < s->nmem_copies; i++) free(s->mem_copies[i]);
    free(s->mem_copies);
    st_mem_snapshot_free(&s->snap);
    memset(s, 0, sizeof *s);
}

static int cmp_range(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int st_qsel_warnings(const qsel_t *s, st_strvec_t *out)
{
    if (s->archived_chunks == 0 && s->unavailable_chunks == 0) return 0;
    /* the chunks' time ranges, merged where they touch (within an hour), at most 5 named */
    int64_t *r = malloc((s->narch ? s->narch : 1) * 2 * sizeof *r);
    if (r == NULL) return -ENOMEM;
    memcpy(r, s->arch_ranges, s->narch * 2 * sizeof *r);
    st_qsort(r, s->narch, 2 * sizeof *r, cmp_range);
    size_t n = 0;
    for (size_t i = 0; i < s->narch; i++) {
        if (n && r[2 * i] <= r[2 * (n - 1) + 1] + 3600 * ST_NS_PER_SEC) {
            if (r[2 * i + 1] > r[2 * (n - 1) + 1]) r[2 * (n - 1) + 1] = r[2 * i + 1];
            continue;
        }
        r[2 * n] = r[2 * i];
        r[2 * n + 1] = r[2 * i + 1];
        n++;
    }
    st_buf_t ranges = ST_BUF_INIT;
    for (size_t i = 0; i < n && i < 5; i++) {
        char a[40], b[40];
        st_format_rfc3339_sec(r[2 * i], a);
        st_format_rfc3339_sec(r[2 * i + 1], b);
        st_buf_printf(&ranges, "%s%s to %s", i == 0 ? "" : i + 1 == n ? " and " : ", ", a, b);
    }
    if (n > 5) st_buf_printf(&ranges, " and %zu more ranges", n - 5);
    free(r);
    char msg[1024];
    int rc = 0;
    if (s->archived_chunks)
        snprintf(msg, sizeof msg,
                 "%llu chunks with data from %s are archived (Glacier or Deep Archive) and were not read; "
                 "restore them with POST /strata/api/v1/restore",
                 (unsigned long long)s->archived_chunks, st_buf_cstr(&ranges));
    else
        snprintf(msg, sizeof msg,
                 "%llu chunks with data from %s are in object storage and this server has no lifecycle.s3 "
                 "configuration to read them",
                 (unsigned long long)s->unavailable_chunks, st_buf_cstr(&ranges));
    rc = st_strvec_push(out, st_cstr(msg));
    st_buf_free(&ranges);
    return rc;
}

int st_put_warnings(st_buf_t *out, const st_strvec_t *w)
{
    if (w->n == 0) return 0;
    st_buf_puts(out, "\"warnings\":[");
    for (size_t i = 0; i < w->n; i++) {
        if (i) st_buf_putc(out, ',');
        st_json_put_str(out, st_strvec_at(w, i));
    }
    return st_buf_puts(out, "],");
}

/* ---- literal prefilter over a decoded block (log and metric scans) ---- */

void st_qmark_lines(const st_finder_t *finder, size_t litn, const st_block_t *b, uint8_t *hit)
{
    const char *text = b->lines;
    size_t len = b->line_off[b->n];
    size_t pos = 0;
    uint32_t idx = 0;
    while (pos < len) {
        const char *m = st_finder_find(finder, text + pos, len - pos);
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
        if (at + litn <= b->line_off[idx + 1]) {
            hit[idx] = 1; /* whole match inside this line */
            pos = b->line_off[idx + 1];
            idx++;
        } else {
            pos = at + 1; /* match crossed into the next line: keep looking */
        }
    }
}

int st_qhits_zero(uint8_t **hitp, size_t *hitcap, uint32_t n)
{
    if (n > *hitcap) {
        uint8_t *h = realloc(*hitp, n);
        if (h == NULL) return -ENOMEM;
        *hitp = h;
        *hitcap = n;
    }
    if (n) memset(*hitp, 0, n); /* *hitp may still be NULL for a block of no entries */
    return 0;
}
