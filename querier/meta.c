/* meta.c: the querier side of Loki's index and Drilldown-era endpoints: index/stats and
 * index/volume(_range) from chunk references and in-memory data, detected_labels from stream label
 * values, detected_fields and detected_field values from a sample of the query's lines, patterns
 * from a Drain miner over lines sampled across the range, the legacy /api/prom/query shape and
 * format_query. Results are Loki's JSON shapes. */
#include "querier/meta_int.h"
#include "querier/metric_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* ---- small helpers ---------------------------------------------------------------------------- */

static int oom(st_query_error_t *err)
{
    return st_qerr(err, 500, -ENOMEM, "out of memory");
}

static int put_pairs_json(st_buf_t *out, const st_labels_t *l)
{
    ST_TRY(st_buf_putc(out, '{'));
    for (size_t i = 0; i < l->n; i++) {
        if (i) ST_TRY(st_buf_putc(out, ','));
        ST_TRY(st_json_put_str(out, l->v[i].name));
        ST_TRY(st_buf_putc(out, ':'));
        ST_TRY(st_json_put_str(out, l->v[i].value));
    }
    return st_buf_putc(out, '}');
}

/* True for "{}" (with optional blanks): Loki's match-everything selector of the index endpoints. */
static bool match_all(st_str_t t)
{
    size_t a = 0, b = t.n;
    while (a < b && (t.p[a] == ' ' || t.p[a] == '\t')) a++;
    while (b > a && (t.p[b - 1] == ' ' || t.p[b - 1] == '\t')) b--;
    if (b - a < 2 || t.p[a] != '{' || t.p[b - 1] != '}') return false;
    for (size_t k = a + 1; k < b - 1; k++)
        if (t.p[k] != ' ' && t.p[k] != '\t') return false;
    return true;
}

/* Parses a log query given to a metadata endpoint. With allow_all, "" and "{}" mean every stream
 * (*e stays NULL). */
static int parse_log(st_str_t text, bool allow_all, st_logql_expr_t **e, st_query_error_t *err)
{
    *e = NULL;
    if (allow_all && (text.n == 0 || match_all(text))) return 0;
    char msg[1024];
    int rc = st_logql_parse(text.p, text.n, e, msg, sizeof msg);
    if (rc == ST_EPARSE) return st_qerr(err, 400, rc, "%s", msg);
    if (rc < 0) return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    if (!st_logql_is_log_query(*e)) {
        st_logql_free(*e);
        *e = NULL;
        return st_qerr(err, 400, ST_EPARSE, "parse error : only log queries are supported");
    }
    return 0;
}

/* ---- walking a log query's JSON result ------------------------------------------------------------ */

static int walk_values(st_json_t *j, st_logent_t *e, st_buf_t *line, int (*cb)(void *, const st_logent_t *),
                       void *arg)
{
    ST_TRY(st_json_array_begin(j));
    int rc;
    while ((rc = st_json_next_elem(j)) == 1) {
        ST_TRY(st_json_array_begin(j));
        st_str_t ts, l;
        if (st_json_next_elem(j) != 1 || st_json_string(j, &ts, line) < 0) return ST_EPARSE;
        char tb[32];
        if (ts.n == 0 || ts.n >= sizeof tb) return ST_EPARSE;
        memcpy(tb, ts.p, ts.n);
        tb[ts.n] = '\0';
        e->ts = strtoll(tb, NULL, 10);
        if (st_json_next_elem(j) != 1 || st_json_string(j, &l, line) < 0) return ST_EPARSE;
        e->line = l;
        e->extra = st_str("", 0);
        while ((rc = st_json_next_elem(j)) == 1) ST_TRY(st_json_skip(j, &e->extra));
        if (rc < 0) return rc;
        if ((rc = cb(arg, e)) != 0) return rc;
    }
    return rc;
}

int st_log_query_each(st_querier_t *q, const st_query_t *req, int (*cb)(void *arg, const st_logent_t *e),
                      void *arg, char **stats_raw, st_query_error_t *err)
{
    st_buf_t out = ST_BUF_INIT, key = ST_BUF_INIT, line = ST_BUF_INIT;
    if (stats_raw) *stats_raw = NULL;
    int rc = st_query_exec(q, req, &out, err);
    if (rc < 0) {
        st_buf_free(&out);
        return rc;
    }
    st_json_t j;
    st_json_init(&j, out.data, out.len);
    st_logent_t e;
    memset(&e, 0, sizeof e);
    rc = st_json_object_begin(&j);
    st_str_t k;
    while (rc >= 0 && (rc = st_json_next_key(&j, &k, &key)) == 1) {
        if (!st_str_eqc(k, "data")) {
            rc = st_json_skip(&j, NULL);
            continue;
        }
        if ((rc = st_json_object_begin(&j)) < 0) break;
        while ((rc = st_json_next_key(&j, &k, &key)) == 1) {
            if (st_str_eqc(k, "stats")) {
                st_str_t raw;
                if ((rc = st_json_skip(&j, &raw)) < 0) break;
                if (stats_raw && (*stats_raw = st_str_dup(raw)) == NULL) rc = -ENOMEM;
                if (rc < 0) break;
                continue;
            }
            if (!st_str_eqc(k, "result")) {
                if ((rc = st_json_skip(&j, NULL)) < 0) break;
                continue;
            }
            if ((rc = st_json_array_begin(&j)) < 0) break;
            while ((rc = st_json_next_elem(&j)) == 1) {
                if ((rc = st_json_object_begin(&j)) < 0) break;
                e.stream = st_str("{}", 2);
                while ((rc = st_json_next_key(&j, &k, &key)) == 1) {
                    if (st_str_eqc(k, "stream"))
                        rc = st_json_skip(&j, &e.stream);
                    else if (st_str_eqc(k, "values"))
                        rc = walk_values(&j, &e, &line, cb, arg);
                    else
                        rc = st_json_skip(&j, NULL);
                    if (rc != 0) break;
                }
                if (rc != 0) break;
                e.stream_index++;
            }
            if (rc != 0) break;
        }
        if (rc != 0) break;
    }
    if (rc > 0) rc = 0; /* the callback stopped the walk */
    if (rc == ST_EPARSE)
        rc = st_qerr(err, 500, rc, "decoding the query result");
    else if (rc < 0 && (err == NULL || err->status == 0))
        rc = st_qerr(err, 500, rc, "%s", st_strerror(rc));
    if (rc < 0 && stats_raw) {
        free(*stats_raw);
        *stats_raw = NULL;
    }
    st_buf_free(&out);
    st_buf_free(&key);
    st_buf_free(&line);
    return rc;
}

int st_json_pairs(st_str_t obj, int (*cb)(void *arg, st_str_t name, st_str_t value), void *arg)
{
    st_json_t j;
    st_json_init(&j, obj.p, obj.n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    st_str_t k, v;
    while (rc >= 0 && (rc = st_json_next_key(&j, &k, &ks)) == 1) {
        if (st_json_peek(&j) != ST_JSON_STRING) {
            rc = st_json_skip(&j, NULL);
            continue;
        }
        if ((rc = st_json_string(&j, &v, &vs)) < 0) break;
        if ((rc = cb(arg, k, v)) < 0) break;
    }
    st_buf_free(&ks);
    st_buf_free(&vs);
    return rc < 0 ? rc : 0;
}

typedef struct {
    st_label_t *v;
    size_t n, cap;
    st_buf_t arena;
} pairs_t;

static int pairs_add(void *arg, st_str_t name, st_str_t value)
{
    pairs_t *p = arg;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        st_label_t *v = realloc(p->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        p->v = v;
        p->cap = cap;
    }
    /* offsets into the arena for now (it may move); fixed up by pairs_labels */
    size_t no = p->arena.len;
    ST_TRY(st_buf_append(&p->arena, name.p, name.n));
    size_t vo = p->arena.len;
    ST_TRY(st_buf_append(&p->arena, value.p, value.n));
    p->v[p->n++] = (st_label_t){st_str((const char *)(uintptr_t)no, name.n),
                                st_str((const char *)(uintptr_t)vo, value.n)};
    return 0;
}

/* Parses a raw JSON object of strings into a label set (sorted, empty values dropped). */
static int pairs_labels(st_str_t obj, st_labels_t *out)
{
    pairs_t p;
    memset(&p, 0, sizeof p);
    int rc = st_json_pairs(obj, pairs_add, &p);
    if (rc == 0) {
        for (size_t i = 0; i < p.n; i++) {
            p.v[i].name.p = p.arena.data + (uintptr_t)p.v[i].name.p;
            p.v[i].value.p = p.arena.data + (uintptr_t)p.v[i].value.p;
        }
        rc = st_labels_from_pairs(p.v, p.n, out);
    }
    free(p.v);
    st_buf_free(&p.arena);
    return rc;
}

/* ---- per-stream volumes from memory and the index ---------------------------------------------- */

typedef struct {
    uint64_t id;
    st_labels_t labels;
    uint64_t *bytes; /* nb, then entries: nb */
    uint64_t chunks;
} acc_t;

typedef struct {
    st_querier_t *q;
    const char *tenant;
    int64_t start, end; /* inclusive */
    int64_t step;       /* 0: one bucket */
    size_t nb;
    acc_t *a;
    size_t n, cap;
    uint32_t *slots; /* index + 1 by stream id */
    size_t nslots;
    st_u64vec_t seen; /* chunk ids taken */
    size_t cur;       /* accumulator of the stream whose index chunks are read */
    st_str_t cur_text;
    bool cur_made;
} gather_t;

static void gather_free(gather_t *g)
{
    for (size_t i = 0; i < g->n; i++) {
        st_labels_free(&g->a[i].labels);
        free(g->a[i].bytes);
    }
    free(g->a);
    free(g->slots);
    st_u64vec_free(&g->seen);
}

static int acc_get(gather_t *g, uint64_t id, st_str_t canon, size_t *out)
{
    if (g->nslots == 0 || (g->n + 1) * 2 > g->nslots) {
        size_t ns = g->nslots ? g->nslots * 2 : 64;
        uint32_t *s = calloc(ns, sizeof *s);
        if (s == NULL) return -ENOMEM;
        for (size_t i = 0; i < g->n; i++) {
            size_t k = g->a[i].id & (ns - 1);
            while (s[k]) k = (k + 1) & (ns - 1);
            s[k] = (uint32_t)i + 1;
        }
        free(g->slots);
        g->slots = s;
        g->nslots = ns;
    }
    size_t k = id & (g->nslots - 1);
    while (g->slots[k]) {
        if (g->a[g->slots[k] - 1].id == id) {
            *out = g->slots[k] - 1;
            return 0;
        }
        k = (k + 1) & (g->nslots - 1);
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 32;
        acc_t *a = realloc(g->a, cap * sizeof *a);
        if (a == NULL) return -ENOMEM;
        g->a = a;
        g->cap = cap;
    }
    acc_t *a = &g->a[g->n];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->bytes = calloc(2 * g->nb, sizeof *a->bytes);
    char perr[256];
    if (a->bytes == NULL) return -ENOMEM;
    int rc = st_labels_parse(canon, &a->labels, perr);
    if (rc < 0) {
        free(a->bytes);
        return rc;
    }
    g->slots[k] = (uint32_t)g->n + 1;
    *out = g->n++;
    return 0;
}

static size_t bucket_of(const gather_t *g, int64_t ts)
{
    if (g->step <= 0 || ts <= g->start) return 0;
    size_t b = (size_t)((ts - g->start) / g->step);
    return b < g->nb ? b : g->nb - 1;
}

/* Adds data spread over [lo, hi]: split over the buckets it overlaps in proportion to time. */
static void acc_add(gather_t *g, acc_t *a, int64_t lo, int64_t hi, uint64_t bytes, uint64_t entries)
{
    uint64_t *eb = a->bytes + g->nb;
    if (g->nb == 1 || hi <= lo) {
        size_t b = bucket_of(g, lo > g->start ? lo : g->start);
        a->bytes[b] += bytes;
        eb[b] += entries;
        return;
    }
    double span = (double)(hi - lo) + 1;
    for (size_t b = bucket_of(g, lo > g->start ? lo : g->start); b < g->nb; b++) {
        int64_t bs = g->start + (int64_t)b * g->step, be = bs + g->step - 1;
        if (b == 0) bs = INT64_MIN;
        if (b == g->nb - 1) be = INT64_MAX;
        int64_t ol = lo > bs ? lo : bs, oh = hi < be ? hi : be;
        if (ol > oh) {
            if (bs > hi) break;
            continue;
        }
        double f = ((double)(oh - ol) + 1) / span;
        a->bytes[b] += (uint64_t)llround((double)bytes * f);
        eb[b] += (uint64_t)llround((double)entries * f);
    }
}

static int index_chunk_cb(void *arg, const st_chunk_ref_t *ref)
{
    gather_t *g = arg;
    if (st_u64vec_contains(&g->seen, ref->chunk_id)) return 0;
    ST_TRY(st_u64vec_push(&g->seen, ref->chunk_id));
    for (size_t i = g->seen.n - 1; i > 0 && g->seen.v[i - 1] > g->seen.v[i]; i--) {
        uint64_t t = g->seen.v[i];
        g->seen.v[i] = g->seen.v[i - 1];
        g->seen.v[i - 1] = t;
    }
    if (!g->cur_made) {
        ST_TRY(acc_get(g, ref->stream_id, g->cur_text, &g->cur));
        g->cur_made = true;
    }
    acc_t *a = &g->a[g->cur];
    a->chunks++;
    acc_add(g, a, ref->min_ts, ref->max_ts, ref->raw_bytes, ref->entries);
    return 0;
}

/* Collects per-stream bytes/entries per bucket of the streams matching m over [start, end]. */
static int gather(gather_t *g, const st_matcher_t *m, size_t nm)
{
    st_querier_t *q = g->q;
    st_mem_snapshot_t snap;
    memset(&snap, 0, sizeof snap);
    int rc = 0;
    if (q->o.ingester) {
        ST_TRY(st_ingester_snapshot(q->o.ingester, g->tenant, m, nm, g->start, g->end, true, &snap));
        for (size_t i = 0; i < snap.n && rc == 0; i++) {
            st_mem_stream_t *ms = &snap.streams[i];
            size_t ai;
            if ((rc = acc_get(g, ms->id, st_cstr(ms->canon), &ai)) < 0) break;
            acc_t *a = &g->a[ai];
            for (size_t s = 0; s < ms->nsrc; s++) {
                st_mem_source_t *src = &ms->src[s];
                if (src->is_file) {
                    bool any = false;
                    for (uint32_t b = 0; b < src->nblocks; b++) {
                        const st_block_meta_t *bm = &src->blocks[b];
                        if (bm->max_ts < g->start || bm->min_ts > g->end || bm->entries == 0) continue;
                        acc_add(g, a, bm->min_ts, bm->max_ts, bm->ulen, bm->entries);
                        any = true;
                    }
                    if (any) a->chunks++;
                } else {
                    bool any = false;
                    uint64_t *eb = a->bytes + g->nb;
                    for (size_t k = 0; k < src->n; k++) {
                        const st_entry_t *e = &src->entries[k];
                        if (e->ts < g->start || e->ts > g->end) continue;
                        size_t b = bucket_of(g, e->ts);
                        a->bytes[b] += e->line.n + e->md.n;
                        eb[b]++;
                        any = true;
                    }
                    if (any) a->chunks++;
                }
            }
        }
        for (size_t i = 0; i < snap.chunk_ids.n && rc == 0; i++)
            rc = st_u64vec_push(&g->seen, snap.chunk_ids.v[i]);
        st_u64vec_sort_unique(&g->seen);
        st_mem_snapshot_free(&snap);
        ST_TRY(rc);
    }
    st_index_read_t *r = NULL;
    ST_TRY(st_index_read_begin(q->o.index, &r));
    int64_t d0 = st_day_of(g->start), d1 = st_day_of(g->end);
    st_u64vec_t ids = ST_U64VEC_INIT;
    rc = st_index_select(r, g->tenant, d0, d1, m, nm, &ids);
    for (size_t i = 0; i < ids.n && rc == 0; i++) {
        if (st_index_stream(r, g->tenant, ids.v[i], &g->cur_text, NULL) < 0) continue;
        g->cur_made = false;
        for (int64_t d = d0; d <= d1 && rc == 0; d++)
            rc = st_index_chunks(r, g->tenant, d, ids.v[i], g->start, g->end, index_chunk_cb, g);
    }
    st_u64vec_free(&ids);
    st_index_read_end(r);
    return rc;
}

static int gather_run(gather_t *g, const st_logql_expr_t *e)
{
    size_t nm = e ? e->log.selector.n : 0;
    st_matcher_t *m = calloc(nm ? nm : 1, sizeof *m);
    if (m == NULL) return -ENOMEM;
    if (e) st_qmatchers(&e->log.selector, m);
    int rc = gather(g, m, nm);
    free(m);
    return rc;
}

int st_query_index_stats(st_querier_t *q, const char *tenant, st_str_t query, int64_t start, int64_t end,
                         st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    ST_TRY(parse_log(query, true, &e, err));
    gather_t g;
    memset(&g, 0, sizeof g);
    g.q = q;
    g.tenant = tenant;
    g.start = start;
    g.end = end;
    g.nb = 1;
    int rc = gather_run(&g, e);
    if (rc < 0) {
        st_qerr(err, 500, rc, "index stats: %s", st_strerror(rc));
    } else {
        uint64_t streams = 0, chunks = 0, bytes = 0, entries = 0;
        for (size_t i = 0; i < g.n; i++) {
            if (g.a[i].chunks == 0) continue;
            streams++;
            chunks += g.a[i].chunks;
            bytes += g.a[i].bytes[0];
            entries += g.a[i].bytes[1];
        }
        rc = st_buf_printf(out, "{\"streams\":%llu,\"chunks\":%llu,\"bytes\":%llu,\"entries\":%llu}",
                           (unsigned long long)streams, (unsigned long long)chunks, (unsigned long long)bytes,
                           (unsigned long long)entries);
        if (rc < 0) oom(err);
    }
    gather_free(&g);
    st_logql_free(e);
    return rc;
}

/* ---- volume --------------------------------------------------------------------------------------- */

typedef struct {
    char *name; /* series label text, or a label name */
    uint64_t *v;
} vol_t;

typedef struct {
    vol_t *v;
    size_t n, cap;
    size_t nb;
    uint32_t *slots; /* index + 1 by name hash */
    size_t nslots;
} vols_t;

static int vols_add(vols_t *vs, const char *name, size_t b, uint64_t bytes)
{
    if (vs->nslots == 0 || (vs->n + 1) * 2 > vs->nslots) {
        size_t ns = vs->nslots ? vs->nslots * 2 : 64;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (sl == NULL) return -ENOMEM;
        for (size_t i = 0; i < vs->n; i++) {
            size_t k = st_hash64(vs->v[i].name, strlen(vs->v[i].name)) & (ns - 1);
            while (sl[k]) k = (k + 1) & (ns - 1);
            sl[k] = (uint32_t)i + 1;
        }
        free(vs->slots);
        vs->slots = sl;
        vs->nslots = ns;
    }
    size_t k = st_hash64(name, strlen(name)) & (vs->nslots - 1);
    while (vs->slots[k]) {
        vol_t *x = &vs->v[vs->slots[k] - 1];
        if (strcmp(x->name, name) == 0) {
            x->v[b] += bytes;
            return 0;
        }
        k = (k + 1) & (vs->nslots - 1);
    }
    if (vs->n == vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 32;
        vol_t *x = realloc(vs->v, cap * sizeof *x);
        if (x == NULL) return -ENOMEM;
        vs->v = x;
        vs->cap = cap;
    }
    vol_t *x = &vs->v[vs->n];
    x->name = strdup(name);
    x->v = calloc(vs->nb, sizeof *x->v);
    if (x->name == NULL || x->v == NULL) {
        free(x->name);
        free(x->v);
        return -ENOMEM;
    }
    x->v[b] = bytes;
    vs->slots[k] = (uint32_t)vs->n + 1;
    vs->n++;
    return 0;
}

static void vols_free(vols_t *vs)
{
    for (size_t i = 0; i < vs->n; i++) {
        free(vs->v[i].name);
        free(vs->v[i].v);
    }
    free(vs->v);
    free(vs->slots);
}

static bool in_list(const st_str_t *l, size_t n, st_str_t s)
{
    for (size_t i = 0; i < n; i++)
        if (st_str_eq(l[i], s)) return true;
    return false;
}

typedef struct {
    const vol_t *v;
    uint64_t key; /* the first sample's value */
} vsort_t;

static int cmp_vsort(const void *a, const void *b)
{
    const vsort_t *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return strcmp(x->v->name, y->v->name);
}

/* Keeps the top `limit` series of each bucket and writes the Prometheus-style envelope: a vector
 * when no series has more than one sample, else a matrix; series by their first sample, largest
 * first (as Loki's volume middleware sorts them). */
static int put_volumes(const st_volume_req_t *r, const gather_t *g, vols_t *vs, st_buf_t *out,
                       st_query_error_t *err)
{
    size_t limit = r->limit > 0 ? (size_t)r->limit : 100;
    bool *keep = calloc(vs->n ? vs->n : 1, sizeof *keep);
    vsort_t *srt = malloc((vs->n ? vs->n : 1) * sizeof *srt);
    if (keep == NULL || srt == NULL) {
        free(keep);
        free(srt);
        return oom(err);
    }
    for (size_t b = 0; b < g->nb; b++) {
        for (size_t i = 0; i < vs->n; i++) srt[i] = (vsort_t){&vs->v[i], vs->v[i].v[b]};
        st_qsort(srt, vs->n, sizeof *srt, cmp_vsort);
        for (size_t i = 0; i < vs->n && i < limit && srt[i].key > 0; i++) keep[srt[i].v - vs->v] = true;
    }
    size_t n = 0;
    bool matrix = false;
    for (size_t i = 0; i < vs->n; i++) {
        if (!keep[i]) continue;
        size_t samples = 0, b0 = SIZE_MAX;
        for (size_t b = 0; b < g->nb; b++)
            if (vs->v[i].v[b]) {
                samples++;
                if (b0 == SIZE_MAX) b0 = b;
            }
        if (samples > 1) matrix = true;
        srt[n++] = (vsort_t){&vs->v[i], vs->v[i].v[b0]};
    }
    st_qsort(srt, n, sizeof *srt, cmp_vsort);
    st_buf_printf(out, "{\"status\":\"success\",\"data\":{\"resultType\":\"%s\",\"result\":[",
                  matrix ? "matrix" : "vector");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const vol_t *v = srt[i].v;
        if (i) st_buf_putc(out, ',');
        st_buf_puts(out, "{\"metric\":");
        if (r->by_labels) {
            st_buf_putc(out, '{');
            st_json_put_cstr(out, v->name);
            st_buf_puts(out, ":\"\"}");
        } else {
            st_labels_t l;
            char perr[256];
            if ((rc = st_labels_parse(st_cstr(v->name), &l, perr)) < 0) break;
            put_pairs_json(out, &l);
            st_labels_free(&l);
        }
        st_buf_puts(out, matrix ? ",\"values\":[" : ",\"value\":");
        bool first = true;
        for (size_t b = 0; b < g->nb; b++) {
            if (v->v[b] == 0) continue;
            int64_t t = g->step > 0 ? g->start + ((int64_t)b + 1) * g->step : g->end;
            if (t > g->end) t = g->end;
            if (!first) st_buf_putc(out, ',');
            first = false;
            st_buf_putc(out, '[');
            st_metric_put_time(out, t);
            st_buf_printf(out, ",\"%llu\"]", (unsigned long long)v->v[b]);
        }
        st_buf_puts(out, matrix ? "]}" : "}");
    }
    rc = rc < 0 ? st_qerr(err, 500, rc, "volume: %s", st_strerror(rc)) : st_buf_puts(out, "]}}");
    free(keep);
    free(srt);
    return rc;
}

int st_query_volume(st_querier_t *q, const st_volume_req_t *r, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    ST_TRY(parse_log(r->query, true, &e, err));
    /* names to aggregate into: the matchers' names, or the target labels (which must exist) */
    st_str_t names[64];
    size_t nnames = 0;
    bool include_all = false;
    size_t extra = 0; /* target labels missing from the matchers get a `=~".+"` matcher */
    if (r->ntarget > 0) {
        for (size_t i = 0; i < r->ntarget && nnames < 64; i++) names[nnames++] = r->target_labels[i];
        for (size_t i = 0; i < r->ntarget; i++) {
            bool found = false;
            for (size_t k = 0; e && k < e->log.selector.n; k++)
                if (st_str_eq(e->log.selector.v[k].name, r->target_labels[i])) found = true;
            if (!found) extra++;
        }
    } else if (e == NULL) {
        include_all = true;
    } else {
        for (size_t k = 0; k < e->log.selector.n && nnames < 64; k++)
            if (!in_list(names, nnames, e->log.selector.v[k].name))
                names[nnames++] = e->log.selector.v[k].name;
    }
    size_t nm = (e ? e->log.selector.n : 0) + extra;
    st_matcher_t *m = calloc(nm ? nm : 1, sizeof *m);
    if (m == NULL) {
        st_logql_free(e);
        return oom(err);
    }
    if (e) st_qmatchers(&e->log.selector, m);
    size_t mi = e ? e->log.selector.n : 0;
    for (size_t i = 0; i < r->ntarget && mi < nm; i++) {
        bool found = false;
        for (size_t k = 0; e && k < e->log.selector.n; k++)
            if (st_str_eq(e->log.selector.v[k].name, r->target_labels[i])) found = true;
        if (!found) m[mi++] = (st_matcher_t){ST_MATCH_NEQ, r->target_labels[i], st_str("", 0), NULL, NULL};
    }
    gather_t g;
    memset(&g, 0, sizeof g);
    g.q = q;
    g.tenant = r->tenant;
    g.start = r->start;
    g.end = r->end;
    g.step = r->step_ns;
    g.nb = r->step_ns > 0 ? (size_t)((r->end - r->start) / r->step_ns) + 1 : 1;
    int rc = g.nb > 11001
                 ? st_qerr(err, 400, ST_ELIMIT,
                           "exceeded maximum resolution of 11,000 points per time series. Try increasing "
                           "the value of the step parameter")
                 : gather(&g, m, nm);
    if (rc < 0 && err->status == 0) st_qerr(err, 500, rc, "volume: %s", st_strerror(rc));
    vols_t vs;
    memset(&vs, 0, sizeof vs);
    vs.nb = g.nb;
    st_buf_t name = ST_BUF_INIT;
    for (size_t i = 0; i < g.n && rc == 0; i++) {
        const acc_t *a = &g.a[i];
        for (size_t b = 0; b < g.nb && rc == 0; b++) {
            if (a->bytes[g.nb + b] == 0) continue; /* no entries in this bucket */
            if (!r->by_labels) {
                st_label_t sub[128];
                size_t ns = 0;
                for (size_t k = 0; k < a->labels.n && ns < 128; k++)
                    if (include_all || in_list(names, nnames, a->labels.v[k].name))
                        sub[ns++] = a->labels.v[k];
                st_labels_t l = {sub, ns, NULL};
                st_buf_reset(&name);
                if ((rc = st_labels_format(&l, &name)) == 0)
                    rc = vols_add(&vs, st_buf_cstr(&name), b, a->bytes[b]);
            } else {
                for (size_t k = 0; k < a->labels.n && rc == 0; k++) {
                    if (r->ntarget > 0 && !in_list(names, nnames, a->labels.v[k].name)) continue;
                    st_buf_reset(&name);
                    if ((rc = st_buf_append(&name, a->labels.v[k].name.p, a->labels.v[k].name.n)) == 0)
                        rc = vols_add(&vs, st_buf_cstr(&name), b, a->bytes[b]);
                }
            }
        }
    }
    if (rc == -ENOMEM && err->status == 0) oom(err);
    if (rc == 0) rc = put_volumes(r, &g, &vs, out, err);
    st_buf_free(&name);
    gather_free(&g);
    free(m);
    st_logql_free(e);
    vols_free(&vs);
    return rc;
}

/* ---- detected_labels ------------------------------------------------------------------------------- */

static bool is_uuid(st_str_t v)
{
    char h[40];
    size_t n = 0;
    st_str_t s = v;
    if (s.n == 45 && strncasecmp(s.p, "urn:uuid:", 9) == 0)
        s = st_str(s.p + 9, 36);
    else if (s.n == 38 && s.p[0] == '{' && s.p[37] == '}')
        s = st_str(s.p + 1, 36);
    if (s.n == 36) {
        for (size_t i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23) {
                if (s.p[i] != '-') return false;
            } else {
                h[n++] = s.p[i];
            }
        }
    } else if (s.n == 32) {
        memcpy(h, s.p, 32);
        n = 32;
    } else {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
    }
    return true;
}

/* Loki's shouldRejectLabel: no values, or values that are all numbers or UUIDs (except 0/1 flags). */
static bool reject_label(const st_strvec_t *vals)
{
    if (vals->n == 0) return true;
    if (vals->n <= 2) {
        bool flags = true;
        for (size_t i = 0; i < vals->n; i++)
            if (!st_str_eqc(st_strvec_at(vals, i), "0") && !st_str_eqc(st_strvec_at(vals, i), "1"))
                flags = false;
        if (flags) return false;
    }
    for (size_t i = 0; i < vals->n; i++) {
        st_str_t v = st_strvec_at(vals, i);
        if (st_field_type_of(v) == ST_FIELD_INT || st_field_type_of(v) == ST_FIELD_FLOAT) continue;
        if (!is_uuid(v)) return false;
    }
    return true;
}

int st_query_detected_labels(st_querier_t *q, const char *tenant, st_str_t query, int64_t start, int64_t end,
                             st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    ST_TRY(parse_log(query, true, &e, err));
    st_logql_selector_t none = {NULL, 0};
    qsel_t s;
    st_qstats_t stats;
    memset(&stats, 0, sizeof stats);
    int rc = st_qsel_build(q, tenant, e ? &e->log.selector : &none, start, end, false, &s, &stats);
    st_logql_free(e);
    if (rc < 0) return st_qerr(err, 500, rc, "detected labels: %s", st_strerror(rc));
    /* (name, value) pairs, sorted: runs give each name's distinct values */
    st_strvec_t pairs = ST_STRVEC_INIT;
    st_buf_t t = ST_BUF_INIT;
    for (size_t i = 0; i < s.nstreams && rc == 0; i++) {
        const st_labels_t *l = &s.streams[i].labels;
        for (size_t k = 0; k < l->n && rc == 0; k++) {
            st_buf_reset(&t);
            st_buf_append(&t, l->v[k].name.p, l->v[k].name.n);
            st_buf_putc(&t, '\0');
            rc = st_buf_append(&t, l->v[k].value.p, l->v[k].value.n);
            if (rc == 0) rc = st_strvec_push(&pairs, st_str(t.data, t.len));
        }
    }
    st_qsel_free(&s);
    st_strvec_sort_unique(&pairs);
    static const char *const statics[] = {"cluster", "namespace", "instance", "pod"};
    st_buf_puts(out, "{\"detectedLabels\":[");
    bool first = true;
    st_strvec_t vals = ST_STRVEC_INIT;
    for (size_t i = 0; i < pairs.n && rc == 0;) {
        const char *name = pairs.v[i];
        size_t nl = strlen(name);
        st_strvec_free(&vals);
        vals = (st_strvec_t)ST_STRVEC_INIT;
        size_t j = i;
        while (j < pairs.n && strcmp(pairs.v[j], name) == 0 && rc == 0) {
            rc = st_strvec_push(&vals, st_str(pairs.v[j] + nl + 1, pairs.len[j] - nl - 1));
            j++;
        }
        bool is_static = false;
        for (size_t k = 0; k < 4; k++)
            if (strcmp(name, statics[k]) == 0) is_static = true;
        if (rc == 0 && ((is_static && vals.n > 0) || !reject_label(&vals))) {
            if (!first) st_buf_putc(out, ',');
            first = false;
            st_buf_puts(out, "{\"label\":");
            st_json_put_cstr(out, name);
            st_buf_printf(out, ",\"cardinality\":%zu}", vals.n);
        }
        i = j;
    }
    st_strvec_free(&vals);
    st_strvec_free(&pairs);
    st_buf_free(&t);
    if (rc < 0) return oom(err);
    return st_buf_puts(out, "]}");
}

/* ---- detected_fields --------------------------------------------------------------------------------- */

#define FIELD_PARSER_JSON   1u
#define FIELD_PARSER_LOGFMT 2u

typedef struct {
    char *name;
    int type;           /* st_field_type_t, -1 before the first value */
    unsigned parsers;   /* FIELD_PARSER_* bits; 0: structured metadata */
    st_u64vec_t hashes; /* distinct value hashes */
    st_strvec_t path;   /* JSON path */
} field_t;

typedef struct {
    const st_fields_req_t *r;
    field_t *f;
    size_t n, cap;
    st_strvec_t values; /* detected_field/<name>/values */
    st_labels_t stream;
    st_labels_t md;
    size_t stream_index;
    bool have_stream;
    unsigned cur_parser;
    int rc;
} fctx_t;

static field_t *field_get(fctx_t *c, st_str_t name)
{
    for (size_t i = 0; i < c->n; i++)
        if (strlen(c->f[i].name) == name.n && memcmp(c->f[i].name, name.p, name.n) == 0) return &c->f[i];
    if (c->n >= (size_t)c->r->limit) return NULL;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 32;
        field_t *x = realloc(c->f, cap * sizeof *x);
        if (x == NULL) {
            c->rc = -ENOMEM;
            return NULL;
        }
        c->f = x;
        c->cap = cap;
    }
    field_t *f = &c->f[c->n];
    memset(f, 0, sizeof *f);
    f->type = -1;
    if ((f->name = st_str_dup(name)) == NULL) {
        c->rc = -ENOMEM;
        return NULL;
    }
    c->n++;
    return f;
}

static void field_value(fctx_t *c, field_t *f, st_str_t v)
{
    int t = (int)st_field_type_of(v);
    if (f->type < 0)
        f->type = t;
    else if (f->type != t) {
        bool numeric = (f->type == ST_FIELD_INT || f->type == ST_FIELD_FLOAT) &&
                       (t == ST_FIELD_INT || t == ST_FIELD_FLOAT);
        f->type = numeric ? ST_FIELD_FLOAT : ST_FIELD_STRING;
    }
    uint64_t h = st_hash64(v.p, v.n);
    if (f->hashes.n < 100000 && st_u64vec_push(&f->hashes, h) < 0) c->rc = -ENOMEM;
    if (f->hashes.n % 1024 == 0) st_u64vec_sort_unique(&f->hashes);
}

/* humanize.Bytes without the space: "83MB", "1.5kB", "9B". */
static void humanize_bytes(uint64_t s, st_buf_t *out)
{
    static const char *const sizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (s < 10) {
        st_buf_printf(out, "%lluB", (unsigned long long)s);
        return;
    }
    int e = (int)floor(log((double)s) / log(1000.0));
    if (e > 6) e = 6;
    double val = floor((double)s / pow(1000.0, e) * 10 + 0.5) / 10;
    st_buf_printf(out, val < 10 ? "%.1f%s" : "%.0f%s", val, sizes[e]);
}

static bool has_bytes_unit(st_str_t v)
{
    static const char *const units[] = {"b",   "kib", "kb",  "mib", "mb", "gib", "gb", "tib", "tb",
                                        "pib", "pb",  "eib", "eb",  "ki", "k",   "mi", "m",   "gi",
                                        "g",   "ti",  "t",   "pi",  "p",  "ei",  "e"};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        size_t n = strlen(units[i]);
        if (v.n >= n && strncasecmp(v.p + v.n - n, units[i], n) == 0) return true;
    }
    return false;
}

static void value_seen(fctx_t *c, st_str_t v, bool parsed)
{
    if (c->values.n >= (size_t)c->r->limit) return;
    uint64_t b;
    if (parsed && st_logql_parse_bytes(v, &b) == 0 && has_bytes_unit(v)) {
        st_buf_t h = ST_BUF_INIT;
        humanize_bytes(b, &h);
        if (st_strvec_push(&c->values, st_str(h.data, h.len)) < 0) c->rc = -ENOMEM;
        st_buf_free(&h);
    } else if (st_strvec_push(&c->values, v) < 0) {
        c->rc = -ENOMEM;
    }
    if (c->values.n % 256 == 0) st_strvec_sort_unique(&c->values);
}

static int md_field(void *arg, st_str_t name, st_str_t value)
{
    fctx_t *c = arg;
    if (c->r->values) {
        if (st_str_eq(name, c->r->field)) value_seen(c, value, false);
        return c->rc;
    }
    field_t *f = field_get(c, name);
    if (f) field_value(c, f, value);
    return c->rc;
}

static bool internal_label(st_str_t name)
{
    return st_str_eqc(name, "__error__") || st_str_eqc(name, "__error_details__") ||
           st_str_eqc(name, "__preserve_error__");
}

static int line_field(void *arg, st_str_t name, st_str_t value, const st_str_t *path, size_t npath)
{
    fctx_t *c = arg;
    if (internal_label(name)) return 0;
    if (c->r->values) {
        if (st_str_eq(name, c->r->field)) value_seen(c, value, true);
        return c->rc;
    }
    field_t *f = field_get(c, name);
    if (f == NULL) return c->rc;
    /* st_fields_extract gives JSON fields their key path; logfmt fields have none */
    unsigned parser = path ? (npath > 0 ? FIELD_PARSER_JSON : FIELD_PARSER_LOGFMT) : c->cur_parser;
    f->parsers |= parser;
    if (parser == FIELD_PARSER_JSON && npath > 0) {
        st_strvec_free(&f->path);
        f->path = (st_strvec_t)ST_STRVEC_INIT;
        for (size_t i = 0; i < npath; i++)
            if (st_strvec_push(&f->path, path[i]) < 0) c->rc = -ENOMEM;
    }
    field_value(c, f, value);
    return c->rc;
}

static int parsed_field(void *arg, st_str_t name, st_str_t value)
{
    return line_field(arg, name, value, NULL, 0);
}

static int md_collect(void *arg, st_str_t name, st_str_t value)
{
    return st_strvec_push(arg, name);
}

static int field_entry(void *arg, const st_logent_t *e)
{
    fctx_t *c = arg;
    if (!c->have_stream || e->stream_index != c->stream_index) {
        st_labels_free(&c->stream);
        ST_TRY(pairs_labels(e->stream, &c->stream));
        c->stream_index = e->stream_index;
        c->have_stream = true;
    }
    /* structured metadata and labels of the query's own parsers, from the categorize-labels element */
    st_str_t md = st_str("", 0), parsed = st_str("", 0);
    if (e->extra.n) {
        st_json_t j;
        st_json_init(&j, e->extra.p, e->extra.n);
        st_buf_t ks = ST_BUF_INIT;
        st_str_t k;
        int rc = st_json_object_begin(&j);
        while (rc >= 0 && (rc = st_json_next_key(&j, &k, &ks)) == 1) {
            if (st_str_eqc(k, "structuredMetadata"))
                rc = st_json_skip(&j, &md);
            else if (st_str_eqc(k, "parsed"))
                rc = st_json_skip(&j, &parsed);
            else
                rc = st_json_skip(&j, NULL);
        }
        st_buf_free(&ks);
    }
    if (md.n) ST_TRY(st_json_pairs(md, md_field, c));
    /* names taken by stream labels or metadata get "_extracted" from the parsers */
    st_labels_t taken = ST_LABELS_INIT;
    const st_labels_t *tk = &c->stream;
    if (md.n) {
        st_strvec_t names = ST_STRVEC_INIT;
        int rc = st_json_pairs(md, md_collect, &names);
        size_t n = c->stream.n + names.n;
        st_label_t *v = calloc(n ? n : 1, sizeof *v);
        if (v && rc == 0) {
            for (size_t i = 0; i < c->stream.n; i++) v[i] = c->stream.v[i];
            for (size_t i = 0; i < names.n; i++)
                v[c->stream.n + i] = (st_label_t){st_strvec_at(&names, i), st_str("x", 1)};
            if (st_labels_from_pairs(v, n, &taken) == 0) tk = &taken;
        }
        free(v);
        st_strvec_free(&names);
    }
    c->cur_parser = 0;
    int kind = st_fields_extract(e->line, tk, line_field, c);
    st_labels_free(&taken);
    if (kind < 0) return kind;
    if (parsed.n) {
        c->cur_parser = kind == ST_FIELDS_JSON     ? FIELD_PARSER_JSON
                        : kind == ST_FIELDS_LOGFMT ? FIELD_PARSER_LOGFMT
                                                   : 0;
        ST_TRY(st_json_pairs(parsed, parsed_field, c));
    }
    return c->rc;
}

static int cmp_field(const void *a, const void *b)
{
    return strcmp(((const field_t *)a)->name, ((const field_t *)b)->name);
}

int st_query_detected_fields(st_querier_t *q, const st_fields_req_t *r, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    ST_TRY(parse_log(r->query, false, &e, err));
    st_logql_free(e);
    fctx_t c;
    memset(&c, 0, sizeof c);
    c.r = r;
    st_query_t qr = {.tenant = r->tenant,
                     .query = r->query,
                     .start = r->start,
                     .end = r->end,
                     .limit = r->line_limit > 0 ? r->line_limit : 1000,
                     .forward = false,
                     .categorize_labels = true};
    int rc = st_log_query_each(q, &qr, field_entry, &c, NULL, err);
    if (rc == 0 && c.rc < 0) rc = oom(err);
    if (rc == 0 && r->values) {
        st_strvec_sort_unique(&c.values);
        st_buf_puts(out, "{\"values\":[");
        for (size_t i = 0; i < c.values.n; i++) {
            if (i) st_buf_putc(out, ',');
            st_json_put_str(out, st_strvec_at(&c.values, i));
        }
        rc = st_buf_printf(out, "],\"limit\":%d}", r->limit);
    } else if (rc == 0) {
        if (c.n) st_qsort(c.f, c.n, sizeof *c.f, cmp_field);
        st_buf_puts(out, "{\"fields\":[");
        for (size_t i = 0; i < c.n; i++) {
            field_t *f = &c.f[i];
            st_u64vec_sort_unique(&f->hashes);
            if (i) st_buf_putc(out, ',');
            st_buf_puts(out, "{\"label\":");
            st_json_put_cstr(out, f->name);
            st_buf_printf(out, ",\"type\":\"%s\",\"cardinality\":%zu,\"parsers\":",
                          st_field_type_name(f->type < 0 ? ST_FIELD_STRING : (st_field_type_t)f->type),
                          f->hashes.n);
            if (f->parsers == 0) {
                st_buf_puts(out, "null");
            } else {
                st_buf_putc(out, '[');
                if (f->parsers & FIELD_PARSER_JSON) st_buf_puts(out, "\"json\"");
                if (f->parsers == (FIELD_PARSER_JSON | FIELD_PARSER_LOGFMT)) st_buf_putc(out, ',');
                if (f->parsers & FIELD_PARSER_LOGFMT) st_buf_puts(out, "\"logfmt\"");
                st_buf_putc(out, ']');
            }
            if (f->path.n) {
                st_buf_puts(out, ",\"jsonPath\":[");
                for (size_t k = 0; k < f->path.n; k++) {
                    if (k) st_buf_putc(out, ',');
                    st_json_put_str(out, st_strvec_at(&f->path, k));
                }
                st_buf_putc(out, ']');
            }
            st_buf_putc(out, '}');
        }
        rc = st_buf_printf(out, "],\"limit\":%d}", r->limit);
    }
    for (size_t i = 0; i < c.n; i++) {
        free(c.f[i].name);
        st_u64vec_free(&c.f[i].hashes);
        st_strvec_free(&c.f[i].path);
    }
    free(c.f);
    st_strvec_free(&c.values);
    st_labels_free(&c.stream);
    return rc;
}

/* ---- patterns --------------------------------------------------------------------------------------- */

#define PATTERN_MAX_LINES 10000
#define PATTERN_WINDOWS   20

typedef struct {
    int cluster;
    uint32_t level;
    int64_t bucket;
} hit_t;

typedef struct {
    st_drain_t *d;
    hit_t *h;
    size_t n, cap;
    st_strvec_t levels; /* unsorted, distinct */
    int64_t step;
    st_str_t stream;
    size_t stream_index;
    bool have_stream;
    st_buf_t level; /* level of the current stream (labels), "" when none */
    int rc;
} pctx_t;

static int level_of_md(void *arg, st_str_t name, st_str_t value)
{
    if (st_str_eqc(name, "detected_level") || st_str_eqc(name, "level")) {
        st_buf_t *b = arg;
        st_buf_reset(b);
        ST_TRY(st_buf_append(b, value.p, value.n));
        return 1; /* stop at the first */
    }
    return 0;
}

static int pattern_entry(void *arg, const st_logent_t *e)
{
    pctx_t *c = arg;
    if (!c->have_stream || e->stream_index != c->stream_index) {
        st_buf_reset(&c->level);
        st_labels_t l;
        if (pairs_labels(e->stream, &l) == 0) {
            st_str_t v;
            if (st_labels_get(&l, st_cstr("detected_level"), &v) || st_labels_get(&l, st_cstr("level"), &v))
                st_buf_append(&c->level, v.p, v.n);
            st_labels_free(&l);
        }
        c->stream_index = e->stream_index;
        c->have_stream = true;
    }
    st_buf_t lv = ST_BUF_INIT;
    st_buf_append(&lv, c->level.data, c->level.len);
    if (e->extra.n) {
        /* structured metadata of the categorize-labels element */
        st_json_t j;
        st_json_init(&j, e->extra.p, e->extra.n);
        st_buf_t ks = ST_BUF_INIT;
        st_str_t k, md = st_str("", 0);
        int rc = st_json_object_begin(&j);
        while (rc >= 0 && (rc = st_json_next_key(&j, &k, &ks)) == 1)
            rc = st_str_eqc(k, "structuredMetadata") ? st_json_skip(&j, &md) : st_json_skip(&j, NULL);
        st_buf_free(&ks);
        st_buf_t mdl = ST_BUF_INIT;
        if (md.n && st_json_pairs(md, level_of_md, &mdl) >= 0 && mdl.len) {
            st_buf_reset(&lv);
            st_buf_append(&lv, mdl.data, mdl.len);
        }
        st_buf_free(&mdl);
    }
    if (lv.len == 0) st_buf_puts(&lv, "unknown");
    int cluster;
    int rc = st_drain_train(c->d, e->line, &cluster);
    if (rc == 0 && cluster >= 0) {
        uint32_t li = UINT32_MAX;
        for (size_t i = 0; i < c->levels.n; i++)
            if (st_str_eq(st_strvec_at(&c->levels, i), st_str(lv.data, lv.len))) li = (uint32_t)i;
        if (li == UINT32_MAX) {
            li = (uint32_t)c->levels.n;
            rc = st_strvec_push(&c->levels, st_str(lv.data, lv.len));
        }
        if (rc == 0 && c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 1024;
            hit_t *h = realloc(c->h, cap * sizeof *h);
            if (h == NULL)
                rc = -ENOMEM;
            else {
                c->h = h;
                c->cap = cap;
            }
        }
        if (rc == 0) {
            int64_t b = e->ts / c->step;
            if (e->ts % c->step < 0) b--;
            c->h[c->n++] = (hit_t){cluster, li, b * c->step};
        }
    }
    st_buf_free(&lv);
    return rc;
}

static int cmp_hit(const void *a, const void *b)
{
    const hit_t *x = a, *y = b;
    if (x->cluster != y->cluster) return x->cluster < y->cluster ? -1 : 1;
    if (x->level != y->level) return x->level < y->level ? -1 : 1;
    return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

typedef struct {
    size_t from, to; /* hits of one (cluster, level) */
    uint64_t total;
} pgroup_t;

static int cmp_pgroup(const void *a, const void *b)
{
    const pgroup_t *x = a, *y = b;
    if (x->total != y->total) return x->total > y->total ? -1 : 1;
    return x->from < y->from ? -1 : 1;
}

int st_query_patterns(st_querier_t *q, const st_patterns_req_t *r, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    ST_TRY(parse_log(r->query, false, &e, err));
    st_logql_free(e);
    pctx_t c;
    memset(&c, 0, sizeof c);
    c.step = r->step_ns > 0 ? r->step_ns : ST_NS_PER_SEC;
    int rc = st_drain_new(&c.d);
    if (rc < 0) return oom(err);
    /* lines sampled evenly: the newest lines of each of up to 20 windows across the range */
    int64_t span = r->end - r->start;
    int64_t nw = span / c.step;
    if (nw < 1) nw = 1;
    if (nw > PATTERN_WINDOWS) nw = PATTERN_WINDOWS;
    int per = PATTERN_MAX_LINES / (int)nw;
    for (int64_t w = 0; w < nw && rc == 0; w++) {
        st_query_t qr = {.tenant = r->tenant,
                         .query = r->query,
                         .start = r->start + span * w / nw,
                         .end = w == nw - 1 ? r->end : r->start + span * (w + 1) / nw,
                         .limit = per,
                         .forward = false,
                         .categorize_labels = true};
        if (qr.end <= qr.start) continue;
        c.have_stream = false;
        rc = st_log_query_each(q, &qr, pattern_entry, &c, NULL, err);
    }
    if (rc < 0 && err->status == 0) st_qerr(err, 500, rc, "patterns: %s", st_strerror(rc));
    pgroup_t *g = NULL;
    size_t ng = 0;
    if (rc == 0) {
        if (c.n) st_qsort(c.h, c.n, sizeof *c.h, cmp_hit);
        g = malloc((c.n ? c.n : 1) * sizeof *g);
        if (g == NULL) rc = oom(err);
        for (size_t i = 0; rc == 0 && i < c.n;) {
            size_t j = i;
            while (j < c.n && c.h[j].cluster == c.h[i].cluster && c.h[j].level == c.h[i].level) j++;
            if (st_drain_alive(c.d, c.h[i].cluster)) g[ng++] = (pgroup_t){i, j, (uint64_t)(j - i)};
            i = j;
        }
        if (rc == 0) st_qsort(g, ng, sizeof *g, cmp_pgroup);
    }
    if (rc == 0) {
        st_buf_t pat = ST_BUF_INIT;
        st_buf_puts(out, "{\"status\":\"success\",\"data\":[");
        for (size_t gi = 0; gi < ng; gi++) {
            const hit_t *h = &c.h[g[gi].from];
            st_buf_reset(&pat);
            st_drain_pattern(c.d, h->cluster, &pat);
            if (gi) st_buf_putc(out, ',');
            st_buf_puts(out, "{\"pattern\":");
            st_json_put_str(out, st_str(pat.data, pat.len));
            st_buf_puts(out, ",\"level\":");
            st_json_put_str(out, st_strvec_at(&c.levels, h->level));
            st_buf_puts(out, ",\"samples\":[");
            for (size_t i = g[gi].from; i < g[gi].to;) {
                size_t j = i;
                while (j < g[gi].to && c.h[j].bucket == c.h[i].bucket) j++;
                if (i != g[gi].from) st_buf_putc(out, ',');
                int64_t sec = c.h[i].bucket / ST_NS_PER_SEC;
                st_buf_printf(out, "[%lld,%zu]", (long long)sec, j - i);
                i = j;
            }
            st_buf_puts(out, "]}");
        }
        rc = st_buf_puts(out, "]}");
        st_buf_free(&pat);
    }
    free(g);
    free(c.h);
    st_strvec_free(&c.levels);
    st_buf_free(&c.level);
    st_drain_free(c.d);
    return rc;
}

/* ---- legacy /api/prom/query --------------------------------------------------------------------------- */

typedef struct {
    st_buf_t *out;
    size_t stream_index;
    bool any;
    int rc;
} lctx_t;

static int legacy_entry(void *arg, const st_logent_t *e)
{
    lctx_t *c = arg;
    st_buf_t *out = c->out;
    if (!c->any || e->stream_index != c->stream_index) {
        if (c->any) st_buf_puts(out, "]},");
        st_labels_t l;
        ST_TRY(pairs_labels(e->stream, &l));
        st_buf_t t = ST_BUF_INIT;
        int rc = st_labels_format(&l, &t);
        st_labels_free(&l);
        st_buf_puts(out, "{\"labels\":");
        if (rc == 0) rc = st_json_put_str(out, st_str(t.data, t.len));
        st_buf_free(&t);
        ST_TRY(rc);
        st_buf_puts(out, ",\"entries\":[");
        c->any = true;
        c->stream_index = e->stream_index;
    } else {
        st_buf_putc(out, ',');
    }
    char ts[40];
    size_t n = st_format_rfc3339(e->ts, ts);
    st_buf_puts(out, "{\"ts\":\"");
    st_buf_append(out, ts, n);
    st_buf_puts(out, "\",\"line\":");
    st_json_put_str(out, e->line);
    return st_buf_putc(out, '}');
}

int st_query_legacy(st_querier_t *q, const st_query_t *req, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e = NULL;
    char msg[1024];
    int rc = st_logql_parse(req->query.p, req->query.n, &e, msg, sizeof msg);
    if (rc == ST_EPARSE) return st_qerr(err, 400, rc, "%s", msg);
    if (rc < 0) return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    bool log = st_logql_is_log_query(e);
    st_logql_free(e);
    if (!log)
        return st_qerr(err, 400, ST_EPARSE,
                       "legacy endpoints only support streams result type, current type is matrix");
    st_query_t qr = *req;
    qr.categorize_labels = false;
    qr.instant = false;
    lctx_t c = {out, 0, false, 0};
    char *stats = NULL;
    st_buf_puts(out, "{\"streams\":[");
    rc = st_log_query_each(q, &qr, legacy_entry, &c, &stats, err);
    if (rc == 0) {
        if (c.any) st_buf_puts(out, "]}");
        st_buf_puts(out, "],\"stats\":");
        st_buf_puts(out, stats ? stats : "{}");
        rc = st_buf_puts(out, "}");
    }
    free(stats);
    return rc;
}

/* ---- format_query -------------------------------------------------------------------------------------- */

int st_query_format(st_str_t query, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e = NULL;
    char msg[1024];
    int rc =
        query.n >= ST_LOGQL_MAX_INPUT ? ST_EPARSE : st_logql_parse(query.p, query.n, &e, msg, sizeof msg);
    if (query.n >= ST_LOGQL_MAX_INPUT)
        snprintf(msg, sizeof msg, "parse error : input size too long (%zu > %d)", query.n,
                 ST_LOGQL_MAX_INPUT);
    if (rc == ST_EPARSE) {
        st_buf_puts(out, "{\"status\":\"invalid-query\",\"error\":");
        st_json_put_cstr(out, msg);
        st_buf_puts(out, "}");
        st_qerr(err, 400, rc, "%s", msg);
        return rc;
    }
    if (rc < 0) return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    st_buf_t pretty = ST_BUF_INIT;
    rc = st_logql_format_pretty(e, &pretty);
    st_logql_free(e);
    if (rc == 0) {
        st_buf_puts(out, "{\"status\":\"success\",\"data\":");
        st_json_put_str(out, st_str(pretty.data, pretty.len));
        rc = st_buf_puts(out, "}");
    }
    st_buf_free(&pretty);
    if (rc < 0) return oom(err);
    return 0;
}
