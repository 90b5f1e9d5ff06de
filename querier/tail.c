/* tail.c: live tail of a log query. The ingester hands every applied record to the tailer on the WAL
 * thread, where it only checks the stream against the selector (cached per stream) and copies the
 * entries into a bounded buffer; st_tailer_process, on a worker thread, runs the compiled pipeline,
 * holds entries for delay_for and returns items in time order; st_tail_encode writes Loki's tail
 * messages. A backfill query seeds the tail, and live entries it already returned are skipped. */
#include "querier/meta_int.h"

#include "common/vec.h"
#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_BUFFER ((size_t)16 << 20)
#define MAX_DROPPED    1000
#define CACHE_MAX      65536

/* id -> small value, open addressing (0 = empty slot; ids are never 0 in practice, else uncached) */
typedef struct {
    uint64_t *id;
    uint32_t *val;
    size_t n, cap;
} idmap_t;

static void idmap_free(idmap_t *m)
{
    free(m->id);
    free(m->val);
    memset(m, 0, sizeof *m);
}

static bool idmap_get(const idmap_t *m, uint64_t id, uint32_t *val)
{
    if (m->cap == 0 || id == 0) return false;
    for (size_t k = id & (m->cap - 1);; k = (k + 1) & (m->cap - 1)) {
        if (m->id[k] == 0) return false;
        if (m->id[k] == id) {
            *val = m->val[k];
            return true;
        }
    }
}

/* Returns 0, or -ENOMEM (then the caller just does not cache). A full map is cleared. */
static int idmap_put(idmap_t *m, uint64_t id, uint32_t val)
{
    if (id == 0) return 0;
    if (m->n >= CACHE_MAX) idmap_free(m);
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        uint64_t *ids = calloc(cap, sizeof *ids);
        uint32_t *vals = calloc(cap, sizeof *vals);
        if (ids == NULL || vals == NULL) {
            free(ids);
            free(vals);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->id[i] == 0) continue;
            size_t k = m->id[i] & (cap - 1);
            while (ids[k]) k = (k + 1) & (cap - 1);
            ids[k] = m->id[i];
            vals[k] = m->val[i];
        }
        free(m->id);
        free(m->val);
        m->id = ids;
        m->val = vals;
        m->cap = cap;
    }
    size_t k = id & (m->cap - 1);
    while (m->id[k] && m->id[k] != id) k = (k + 1) & (m->cap - 1);
    if (m->id[k] == 0) m->n++;
    m->id[k] = id;
    m->val[k] = val;
    return 0;
}

typedef struct {
    st_labels_t labels;
    st_buf_t json; /* the stream labels as a JSON object */
} pstream_t;

struct st_tailer {
    st_querier_t *q;
    st_tail_opts_t o;
    char *tenant, *query;
    st_logql_expr_t *expr;
    st_pipeline_t *pl;
    st_matcher_t *m;
    size_t nm;
    st_tail_sub_t *sub;
    bool started;
    /* WAL thread only */
    idmap_t match; /* stream id -> 1 matches, 2 does not */
    /* shared with the WAL thread, under mu */
    pthread_mutex_t mu;
    st_buf_t in;    /* records: id u64, canon lstr, count u32, then ts u64, line lstr, md lstr per entry */
    st_buf_t drops; /* markers: id u64, ts u64, canon lstr */
    size_t ndrops;
    /* processing thread */
    idmap_t pidx; /* stream id -> index + 1 into ps */
    pstream_t *ps;
    size_t nps, capps;
    st_tail_batch_t held; /* kept, waiting for delay_for */
    st_u64vec_t seen;     /* keys of backfilled entries */
    int64_t backfill_end;
    st_buf_t json, extra;
};

/* ---- batches and messages ------------------------------------------------------------------------ */

void st_tail_batch_reset(st_tail_batch_t *b)
{
    for (size_t i = 0; i < b->n; i++) free(b->v[i].mem);
    b->n = 0;
}

void st_tail_batch_free(st_tail_batch_t *b)
{
    st_tail_batch_reset(b);
    free(b->v);
    memset(b, 0, sizeof *b);
}

int st_tail_batch_add(st_tail_batch_t *b, int64_t ts, st_str_t labels, st_str_t line, st_str_t extra,
                      bool dropped)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        st_tail_item_t *v = realloc(b->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    char *mem = malloc(labels.n + line.n + extra.n + 1);
    if (mem == NULL) return -ENOMEM;
    if (labels.n) memcpy(mem, labels.p, labels.n);
    if (line.n) memcpy(mem + labels.n, line.p, line.n);
    if (extra.n) memcpy(mem + labels.n + line.n, extra.p, extra.n);
    b->v[b->n++] = (st_tail_item_t){ts,
                                    st_str(mem, labels.n),
                                    st_str(mem + labels.n, line.n),
                                    st_str(mem + labels.n + line.n, extra.n),
                                    dropped,
                                    mem};
    return 0;
}

int st_tail_encode(const st_tail_item_t *items, size_t n, bool categorize, st_buf_t *out)
{
    ST_TRY(st_buf_puts(out, "{\"streams\":["));
    const st_tail_item_t *prev = NULL;
    size_t ndrop = 0;
    for (size_t i = 0; i < n; i++) {
        const st_tail_item_t *it = &items[i];
        if (it->dropped) {
            ndrop++;
            continue;
        }
        if (prev == NULL || !st_str_eq(prev->labels, it->labels)) {
            if (prev) ST_TRY(st_buf_puts(out, "]},"));
            ST_TRY(st_buf_puts(out, "{\"stream\":"));
            ST_TRY(st_buf_append(out, it->labels.p, it->labels.n));
            ST_TRY(st_buf_puts(out, ",\"values\":["));
        } else {
            ST_TRY(st_buf_putc(out, ','));
        }
        ST_TRY(st_buf_printf(out, "[\"%lld\",", (long long)it->ts));
        ST_TRY(st_json_put_str(out, it->line));
        if (categorize) {
            ST_TRY(st_buf_putc(out, ','));
            if (it->extra.n)
                ST_TRY(st_buf_append(out, it->extra.p, it->extra.n));
            else
                ST_TRY(st_buf_puts(out, "{}"));
        }
        ST_TRY(st_buf_putc(out, ']'));
        prev = it;
    }
    if (prev) ST_TRY(st_buf_puts(out, "]}"));
    ST_TRY(st_buf_putc(out, ']'));
    if (ndrop) {
        ST_TRY(st_buf_puts(out, ",\"dropped_entries\":["));
        size_t k = 0;
        for (size_t i = 0; i < n && k < MAX_DROPPED; i++) {
            if (!items[i].dropped) continue;
            if (k++) ST_TRY(st_buf_putc(out, ','));
            ST_TRY(st_buf_puts(out, "{\"labels\":"));
            ST_TRY(st_buf_append(out, items[i].labels.p, items[i].labels.n));
            ST_TRY(st_buf_printf(out, ",\"timestamp\":\"%lld\"}", (long long)items[i].ts));
        }
        ST_TRY(st_buf_putc(out, ']'));
    }
    if (categorize) ST_TRY(st_buf_puts(out, ",\"encodingFlags\":[\"categorize-labels\"]"));
    return st_buf_putc(out, '}');
}

/* ---- setup --------------------------------------------------------------------------------------- */

int st_tailer_new(st_querier_t *q, const st_tail_opts_t *o, st_tailer_t **out, st_query_error_t *err)
{
    st_tailer_t *t = calloc(1, sizeof *t);
    if (t == NULL) return st_qerr(err, 500, -ENOMEM, "out of memory");
    t->q = q;
    t->o = *o;
    if (t->o.max_buffer_bytes == 0) t->o.max_buffer_bytes = DEFAULT_BUFFER;
    pthread_mutex_init(&t->mu, NULL);
    t->tenant = strdup(o->tenant);
    t->query = st_str_dup(o->query);
    int rc = t->tenant && t->query ? 0 : -ENOMEM;
    if (rc < 0) {
        st_qerr(err, 500, rc, "out of memory");
        goto fail;
    }
    t->o.query = st_cstr(t->query);
    t->o.tenant = t->tenant;
    char msg[1024];
    rc = st_logql_parse(t->o.query.p, t->o.query.n, &t->expr, msg, sizeof msg);
    if (rc == ST_EPARSE) {
        st_qerr(err, 400, rc, "%s", msg);
        goto fail;
    }
    if (rc < 0) {
        st_qerr(err, 500, rc, "%s", st_strerror(rc));
        goto fail;
    }
    if (!st_logql_is_log_query(t->expr)) {
        rc = st_qerr(err, 400, ST_EPARSE, "only log queries can be tailed");
        goto fail;
    }
    rc = st_pipeline_compile(&t->expr->log.pipeline, NULL, &t->pl, msg);
    if (rc == ST_EPARSE) {
        st_qerr(err, 400, rc, "%s", msg);
        goto fail;
    }
    if (rc < 0) {
        st_qerr(err, 500, rc, "%s", st_strerror(rc));
        goto fail;
    }
    t->nm = t->expr->log.selector.n;
    t->m = calloc(t->nm ? t->nm : 1, sizeof *t->m);
    if (t->m == NULL) {
        rc = st_qerr(err, 500, -ENOMEM, "out of memory");
        goto fail;
    }
    st_qmatchers(&t->expr->log.selector, t->m);
    t->backfill_end = INT64_MIN;
    *out = t;
    return 0;
fail:
    st_tailer_free(t);
    return rc;
}

/* WAL thread: keep the entries of matching streams, or drop markers when the buffer is full. */
static void on_entries(void *arg, st_str_t tenant, uint64_t id, st_str_t canon, const st_entry_t *e, size_t n)
{
    st_tailer_t *t = arg;
    uint32_t v = 0;
    if (!idmap_get(&t->match, id, &v)) {
        st_labels_t l;
        char perr[256];
        v = 2;
        if (st_labels_parse(canon, &l, perr) == 0) {
            if (st_matchers_match(t->m, t->nm, &l)) v = 1;
            st_labels_free(&l);
        }
        idmap_put(&t->match, id, v);
    }
    if (v != 1) return;
    size_t need = 8 + 10 + canon.n + 4;
    for (size_t i = 0; i < n; i++) need += 8 + 20 + e[i].line.n + e[i].md.n;
    pthread_mutex_lock(&t->mu);
    if (t->in.len + need <= t->o.max_buffer_bytes && st_buf_reserve(&t->in, need) == 0) {
        st_buf_put_u64le(&t->in, id);
        st_buf_put_lstr(&t->in, canon.p, canon.n);
        st_buf_put_u32le(&t->in, (uint32_t)n);
        for (size_t i = 0; i < n; i++) {
            st_buf_put_u64le(&t->in, (uint64_t)e[i].ts);
            st_buf_put_lstr(&t->in, e[i].line.p, e[i].line.n);
            st_buf_put_lstr(&t->in, e[i].md.p, e[i].md.n);
        }
    } else {
        for (size_t i = 0; i < n && t->ndrops < MAX_DROPPED; i++) {
            st_buf_put_u64le(&t->drops, id);
            st_buf_put_u64le(&t->drops, (uint64_t)e[i].ts);
            st_buf_put_lstr(&t->drops, canon.p, canon.n);
            t->ndrops++;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (t->o.notify) t->o.notify(t->o.arg);
}

void st_tailer_set_delay(st_tailer_t *t, int64_t delay_ns)
{
    t->o.delay_ns = delay_ns;
}

int st_tailer_start(st_tailer_t *t)
{
    if (t->started || t->q->o.ingester == NULL) return 0;
    ST_TRY(st_ingester_tail_subscribe(t->q->o.ingester, t->tenant, on_entries, t, &t->sub));
    t->started = true;
    return 0;
}

void st_tailer_stop(st_tailer_t *t)
{
    if (t->sub) st_ingester_tail_unsubscribe(t->q->o.ingester, t->sub);
    t->sub = NULL;
}

void st_tailer_free(st_tailer_t *t)
{
    if (t == NULL) return;
    st_tailer_stop(t);
    idmap_free(&t->match);
    idmap_free(&t->pidx);
    for (size_t i = 0; i < t->nps; i++) {
        st_labels_free(&t->ps[i].labels);
        st_buf_free(&t->ps[i].json);
    }
    free(t->ps);
    st_tail_batch_free(&t->held);
    st_u64vec_free(&t->seen);
    st_buf_free(&t->in);
    st_buf_free(&t->drops);
    st_buf_free(&t->json);
    st_buf_free(&t->extra);
    st_pipeline_free(t->pl);
    st_logql_free(t->expr);
    free(t->m);
    free(t->tenant);
    free(t->query);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- processing ------------------------------------------------------------------------------------ */

static uint64_t entry_key(st_str_t labels, int64_t ts, st_str_t line)
{
    return st_hash64(labels.p, labels.n) * 31 ^ st_hash64(line.p, line.n) ^
           (uint64_t)ts * 0x9E3779B97F4A7C15ULL;
}

static int put_labels(st_buf_t *out, const st_label_t *v, size_t n)
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

static pstream_t *pstream(st_tailer_t *t, uint64_t id, st_str_t canon)
{
    uint32_t v;
    if (idmap_get(&t->pidx, id, &v)) return &t->ps[v - 1];
    if (t->pidx.n + 1 >= CACHE_MAX) { /* the map is about to be cleared: drop the streams too */
        for (size_t i = 0; i < t->nps; i++) {
            st_labels_free(&t->ps[i].labels);
            st_buf_free(&t->ps[i].json);
        }
        t->nps = 0;
        idmap_free(&t->pidx);
    }
    if (t->nps == t->capps) {
        size_t cap = t->capps ? t->capps * 2 : 16;
        pstream_t *x = realloc(t->ps, cap * sizeof *x);
        if (x == NULL) return NULL;
        t->ps = x;
        t->capps = cap;
    }
    pstream_t *p = &t->ps[t->nps];
    memset(p, 0, sizeof *p);
    char perr[256];
    if (st_labels_parse(canon, &p->labels, perr) < 0) return NULL;
    if (put_labels(&p->json, p->labels.v, p->labels.n) < 0 ||
        idmap_put(&t->pidx, id, (uint32_t)t->nps + 1) < 0) {
        st_labels_free(&p->labels);
        st_buf_free(&p->json);
        return NULL;
    }
    t->nps++;
    return p;
}

/* Runs the pipeline on one entry and keeps it in held when it survives. */
static int keep_entry(st_tailer_t *t, const pstream_t *s, int64_t ts, st_str_t line, st_str_t md)
{
    st_pipeline_result_t res;
    ST_TRY(st_pipeline_run(t->pl, ts, line, &s->labels, md, &res));
    if (!res.keep) return 0;
    const st_labels_t *l = res.labels;
    st_buf_reset(&t->json);
    st_buf_reset(&t->extra);
    if (!t->o.categorize_labels) {
        ST_TRY(put_labels(&t->json, l->v, l->n));
    } else {
        /* stream labels in "stream"; metadata and parsed labels in the third element */
        st_label_t tmp[256];
        size_t n = 0;
        for (size_t i = 0; i < l->n && n < 256; i++)
            if (res.cats[i] == ST_PIPELINE_CAT_STREAM) tmp[n++] = l->v[i];
        ST_TRY(put_labels(&t->json, tmp, n));
        ST_TRY(st_buf_putc(&t->extra, '{'));
        bool first = true;
        for (int cat = ST_PIPELINE_CAT_MD; cat <= ST_PIPELINE_CAT_PARSED; cat++) {
            n = 0;
            for (size_t i = 0; i < l->n && n < 256; i++)
                if (res.cats[i] == cat) tmp[n++] = l->v[i];
            if (n == 0) continue;
            if (!first) ST_TRY(st_buf_putc(&t->extra, ','));
            first = false;
            ST_TRY(st_buf_puts(&t->extra,
                               cat == ST_PIPELINE_CAT_MD ? "\"structuredMetadata\":" : "\"parsed\":"));
            ST_TRY(put_labels(&t->extra, tmp, n));
        }
        ST_TRY(st_buf_putc(&t->extra, '}'));
    }
    st_str_t lj = st_str(t->json.data, t->json.len);
    if (ts <= t->backfill_end && t->seen.n && st_u64vec_contains(&t->seen, entry_key(lj, ts, res.line)))
        return 0; /* already sent by the backfill */
    return st_tail_batch_add(&t->held, ts, lj, res.line, st_str(t->extra.data, t->extra.len), false);
}

static int cmp_item(const void *a, const void *b)
{
    const st_tail_item_t *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return x->mem < y->mem ? -1 : x->mem > y->mem; /* stable enough: arrival order is not needed */
}

int st_tailer_process(st_tailer_t *t, int64_t now, st_tail_batch_t *out, bool *heldp)
{
    pthread_mutex_lock(&t->mu);
    st_buf_t in = t->in, drops = t->drops;
    t->in = (st_buf_t)ST_BUF_INIT;
    t->drops = (st_buf_t)ST_BUF_INIT;
    t->ndrops = 0;
    pthread_mutex_unlock(&t->mu);
    int rc = 0;
    /* markers for entries the buffer refused (stream labels only: the pipeline never saw them) */
    st_reader_t r = st_reader(drops.data ? drops.data : "", drops.len);
    while (rc == 0 && st_reader_left(&r) > 0) {
        uint64_t id = st_read_u64le(&r);
        int64_t ts = (int64_t)st_read_u64le(&r);
        st_str_t canon = st_read_lstr(&r);
        if (r.err) break;
        pstream_t *s = pstream(t, id, canon);
        if (s == NULL) continue;
        rc =
            st_tail_batch_add(out, ts, st_str(s->json.data, s->json.len), st_str("", 0), st_str("", 0), true);
    }
    r = st_reader(in.data ? in.data : "", in.len);
    while (rc == 0 && st_reader_left(&r) > 0) {
        uint64_t id = st_read_u64le(&r);
        st_str_t canon = st_read_lstr(&r);
        uint32_t n = st_read_u32le(&r);
        if (r.err) break;
        pstream_t *s = pstream(t, id, canon);
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            int64_t ts = (int64_t)st_read_u64le(&r);
            st_str_t line = st_read_lstr(&r), md = st_read_lstr(&r);
            if (r.err) break;
            if (s) rc = keep_entry(t, s, ts, line, md);
        }
    }
    st_buf_free(&in);
    st_buf_free(&drops);
    /* hand out what is due, oldest first */
    if (t->held.n) st_qsort(t->held.v, t->held.n, sizeof *t->held.v, cmp_item);
    size_t k = 0;
    for (size_t i = 0; i < t->held.n; i++) {
        st_tail_item_t *it = &t->held.v[i];
        bool due = rc == 0 && (t->o.delay_ns <= 0 || it->ts <= now - t->o.delay_ns);
        if (due && out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 64;
            st_tail_item_t *v = realloc(out->v, cap * sizeof *v);
            if (v == NULL) {
                rc = -ENOMEM;
                due = false;
            } else {
                out->v = v;
                out->cap = cap;
            }
        }
        if (due)
            out->v[out->n++] = *it;
        else
            t->held.v[k++] = *it;
    }
    t->held.n = k;
    if (heldp) *heldp = k > 0;
    return rc;
}

/* ---- backfill -------------------------------------------------------------------------------------- */

static int backfill_entry(void *arg, const st_logent_t *e)
{
    st_tail_batch_t *b = arg;
    return st_tail_batch_add(b, e->ts, e->stream, e->line, e->extra, false);
}

int st_tailer_backfill(st_tailer_t *t, int64_t start, int64_t end, int limit, st_tail_batch_t *out,
                       st_query_error_t *err)
{
    if (end <= start || limit <= 0) return 0;
    st_query_t qr = {.tenant = t->tenant,
                     .query = t->o.query,
                     .start = start,
                     .end = end,
                     .limit = limit,
                     .forward = false,
                     .categorize_labels = t->o.categorize_labels};
    st_tail_batch_t b = {0};
    int rc = st_log_query_each(t->q, &qr, backfill_entry, &b, NULL, err);
    if (rc == 0) {
        /* the newest `limit` entries, sent oldest first */
        if (b.n) st_qsort(b.v, b.n, sizeof *b.v, cmp_item);
        for (size_t i = 0; i < b.n && rc == 0; i++) {
            rc = st_u64vec_push(&t->seen, entry_key(b.v[i].labels, b.v[i].ts, b.v[i].line));
            if (rc == 0)
                rc = st_tail_batch_add(out, b.v[i].ts, b.v[i].labels, b.v[i].line, b.v[i].extra, false);
        }
        st_u64vec_sort_unique(&t->seen);
        t->backfill_end = end;
        if (rc < 0) st_qerr(err, 500, rc, "out of memory");
    }
    st_tail_batch_free(&b);
    return rc;
}
