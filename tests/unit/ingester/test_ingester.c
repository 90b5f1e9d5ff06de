/* test_ingester.c: pushes through the WAL into heads and chunks; restart replays exactly once. */
#include "testutil.h"

#include "common/err.h"
#include "common/timeutil.h"
#include "ingester/ingester.h"

#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int done;

static void on_complete(void *arg, st_push_t *p)
{
    (void)arg;
    (void)p;
    pthread_mutex_lock(&mu);
    done++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

typedef struct {
    char *dir;
    char wal[4096], chunks[4096], idx[4096];
    st_index_t *ix;
    st_ingester_t *ing;
} env_t;

/* head memory options for the next env_open (0 / false: off) */
static size_t g_target, g_segment;
static bool g_spill;
static int64_t g_period_ns;

static void env_open(env_t *e, size_t block_size)
{
    snprintf(e->wal, sizeof e->wal, "%s/wal", e->dir);
    snprintf(e->chunks, sizeof e->chunks, "%s/chunks", e->dir);
    snprintf(e->idx, sizeof e->idx, "%s/index", e->dir);
    assert_int_equal(st_index_open(e->idx, 1 << 26, &e->ix), 0);
    st_ingester_opts_t o = {.wal_dir = e->wal,
                            .chunks_dir = e->chunks,
                            .block_size = block_size,
                            .target_size = 1 << 20,
                            .zstd_level = 3,
                            .max_chunk_age_ns = 3600 * ST_NS_PER_SEC,
                            .idle_period_ns = 3600 * ST_NS_PER_SEC,
                            .flush_check_period_ns = g_period_ns ? g_period_ns : 3600 * ST_NS_PER_SEC,
                            .head_memory_target = g_target,
                            .head_spill = g_spill,
                            .spill_segment_size = g_segment,
                            .wal_segment_size = 1 << 20,
                            .wal_max_pending = 64 << 20,
                            .wal_max_size = 1 << 30,
                            .index = e->ix,
                            .on_complete = on_complete};
    assert_int_equal(st_ingester_open(&o, &e->ing), 0);
}

static void env_close(env_t *e, bool flush)
{
    assert_int_equal(st_ingester_close(e->ing, flush), 0);
    st_index_close(e->ix);
}

static void push_n(env_t *e, const char *app, int from, int n)
{
    st_push_t *p;
    assert_int_equal(st_push_new("tenant", &p), 0);
    st_labels_t l;
    char text[64], err[256];
    snprintf(text, sizeof text, "{app=\"%s\"}", app);
    assert_int_equal(st_labels_parse(st_cstr(text), &l, err), 0);
    size_t idx;
    assert_int_equal(st_push_stream(p, &l, &idx), 0);
    for (int i = from; i < from + n; i++) {
        char line[64];
        snprintf(line, sizeof line, "line %06d of %s", i, app);
        /* out of order on purpose: odd entries go back in time */
        int64_t ts = INT64_C(1700000000000000000) + (int64_t)(i % 2 ? i - 1 : i) * 1000;
        assert_int_equal(st_push_entry(p, idx, ts, st_cstr(line), st_str("", 0)), 0);
    }
    int before;
    pthread_mutex_lock(&mu);
    before = done;
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_ingester_push(e->ing, p), 0);
    pthread_mutex_lock(&mu);
    while (done == before) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_push_status(p), 0);
    st_push_free(p);
    st_labels_free(&l);
}

typedef struct {
    const st_u64vec_t *skip;
    size_t total;
} count_ctx_t;

static int count_chunk(void *arg, const st_chunk_ref_t *ref)
{
    count_ctx_t *c = arg;
    if (!st_u64vec_contains(c->skip, ref->chunk_id)) c->total += ref->entries;
    return 0;
}

/* Counts entries of app visible in memory plus the index (chunks seen in memory counted once). */
static size_t count_entries(env_t *e, const char *app)
{
    st_matcher_t m = {ST_MATCH_EQ, ST_STR("app"), st_cstr(app), NULL, NULL};
    st_mem_snapshot_t snap;
    assert_int_equal(st_ingester_snapshot(e->ing, "tenant", &m, 1, INT64_MIN, INT64_MAX, true, &snap), 0);
    size_t total = 0;
    st_block_t b;
    memset(&b, 0, sizeof b);
    st_buf_t scratch = ST_BUF_INIT;
    for (size_t i = 0; i < snap.n; i++) {
        for (size_t j = 0; j < snap.streams[i].nsrc; j++) {
            st_mem_source_t *s = &snap.streams[i].src[j];
            if (!s->is_file) {
                total += s->n;
                for (size_t k = 1; k < s->n; k++) assert_true(s->entries[k - 1].ts <= s->entries[k].ts);
                for (size_t k = 0; k < s->n;
                     k++) { /* "line NNNNNN of <app>": frozen bytes came back intact */
                    st_str_t l = s->entries[k].line;
                    assert_true(l.n == 15 + strlen(app) && memcmp(l.p, "line ", 5) == 0 &&
                                memcmp(l.p + 15, app, strlen(app)) == 0);
                }
                continue;
            }
            for (uint32_t k = 0; k < s->nblocks; k++) {
                assert_int_equal(st_block_read(s->fd, 0, &s->blocks[k], &scratch, &b), 0);
                total += b.n;
            }
        }
    }
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(e->ix, &r), 0);
    st_u64vec_t ids = ST_U64VEC_INIT;
    int64_t day = st_day_of(INT64_C(1700000000000000000));
    assert_int_equal(st_index_select(r, "tenant", day, day, &m, 1, &ids), 0);
    for (size_t i = 0; i < ids.n; i++) {
        count_ctx_t c = {&snap.chunk_ids, 0};
        assert_int_equal(st_index_chunks(r, "tenant", day, ids.v[i], INT64_MIN, INT64_MAX, count_chunk, &c), 0);
        total += c.total;
    }
    st_u64vec_free(&ids);
    st_index_read_end(r);
    st_block_free(&b);
    st_buf_free(&scratch);
    st_mem_snapshot_free(&snap);
    return total;
}

static void test_push_query_restart(void **state)
{
    (void)state;
    env_t e;
    e.dir = st_test_tmpdir("ingester");
    env_open(&e, 4096); /* tiny blocks: many seals */
    push_n(&e, "a", 0, 1000);
    push_n(&e, "b", 0, 10);
    push_n(&e, "a", 1000, 500);
    assert_int_equal(count_entries(&e, "a"), 1500);
    assert_int_equal(count_entries(&e, "b"), 10);
    /* an exact duplicate of the last entry is dropped */
    push_n(&e, "b", 9, 1);
    assert_int_equal(count_entries(&e, "b"), 10);

    /* simulate a crash: no flush; the WAL replays everything */
    env_close(&e, false);
    env_open(&e, 4096);
    assert_int_equal(count_entries(&e, "a"), 1500);
    assert_int_equal(count_entries(&e, "b"), 10);

    /* flush part, crash, replay: each entry exactly once */
    assert_int_equal(st_ingester_flush(e.ing), 0);
    assert_int_equal(count_entries(&e, "a"), 1500);
    push_n(&e, "a", 2000, 100);
    env_close(&e, false);
    env_open(&e, 4096);
    assert_int_equal(count_entries(&e, "a"), 1600);

    /* clean shutdown with flush: WAL removed, everything in chunks */
    env_close(&e, true);
    env_open(&e, 4096);
    assert_int_equal(count_entries(&e, "a"), 1600);
    assert_int_equal(count_entries(&e, "b"), 10);
    st_ingester_stats_t st;
    st_ingester_stats(e.ing, &st);
    assert_true(st.wal_bytes < 100); /* only a fresh segment header */
    env_close(&e, true);
    st_test_rmrf(e.dir);
    free(e.dir);
}

static int find_pack(void *arg, const st_chunk_ref_t *ref)
{
    int *packs = arg;
    if (strstr(ref->loc.path, ".pack") != NULL) (*packs)++;
    return 0;
}

static void test_small_streams_pack(void **state)
{
    (void)state;
    env_t e;
    e.dir = st_test_tmpdir("ingpack");
    env_open(&e, 1 << 20);
    char app[32];
    for (int i = 0; i < 50; i++) {
        snprintf(app, sizeof app, "small-%02d", i);
        push_n(&e, app, 0, 3);
    }
    assert_int_equal(st_ingester_flush(e.ing), 0);
    /* every small stream's chunk lives in one shared pack file */
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(e.ix, &r), 0);
    st_u64vec_t ids = ST_U64VEC_INIT;
    int64_t day = st_day_of(INT64_C(1700000000000000000));
    assert_int_equal(st_index_select(r, "tenant", day, day, NULL, 0, &ids), 0);
    assert_int_equal(ids.n, 50);
    int packs = 0;
    for (size_t i = 0; i < ids.n; i++)
        assert_int_equal(st_index_chunks(r, "tenant", day, ids.v[i], INT64_MIN, INT64_MAX, find_pack, &packs), 0);
    assert_int_equal(packs, 50);
    st_u64vec_free(&ids);
    st_index_read_end(r);
    for (int i = 0; i < 50; i += 7) {
        snprintf(app, sizeof app, "small-%02d", i);
        assert_int_equal(count_entries(&e, app), 3);
    }
    env_close(&e, false);
    env_open(&e, 1 << 20);
    assert_int_equal(count_entries(&e, "small-49"), 3);
    env_close(&e, true);
    st_test_rmrf(e.dir);
    free(e.dir);
}

static st_ingester_stats_t stats(env_t *e);

typedef struct {
    char packs[8][256];
    int npacks, chunks;
} packs_t;

static int note_pack(void *arg, const st_chunk_ref_t *ref)
{
    packs_t *p = arg;
    p->chunks++;
    int i = 0;
    while (i < p->npacks && strcmp(p->packs[i], ref->loc.path) != 0) i++;
    if (i == p->npacks && p->npacks < 8) snprintf(p->packs[p->npacks++], sizeof p->packs[0], "%s", ref->loc.path);
    return 0;
}

/* One flush closing more chunks than one index transaction takes (4,096): every chunk is indexed,
 * in one pack per slice, and the WAL is no longer needed for any of them. */
static void test_flush_slices(void **state)
{
    (void)state;
    env_t e;
    e.dir = st_test_tmpdir("ingslices");
    env_open(&e, 1 << 20);
    enum { N = 9000 };
    st_push_t *p;
    assert_int_equal(st_push_new("tenant", &p), 0);
    for (int i = 0; i < N; i++) {
        char text[64], err[256], line[64];
        snprintf(text, sizeof text, "{app=\"slice-%04d\"}", i);
        st_labels_t l;
        assert_int_equal(st_labels_parse(st_cstr(text), &l, err), 0);
        size_t idx;
        assert_int_equal(st_push_stream(p, &l, &idx), 0);
        st_labels_free(&l);
        snprintf(line, sizeof line, "line %06d of slice-%04d", 0, i);
        assert_int_equal(st_push_entry(p, idx, INT64_C(1700000000000000000) + i, st_cstr(line), st_str("", 0)), 0);
    }
    pthread_mutex_lock(&mu);
    int before = done;
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_ingester_push(e.ing, p), 0);
    pthread_mutex_lock(&mu);
    while (done == before) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_push_status(p), 0);
    st_push_free(p);
    assert_int_equal(st_ingester_flush(e.ing), 0);

    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(e.ix, &r), 0);
    st_u64vec_t ids = ST_U64VEC_INIT;
    int64_t day = st_day_of(INT64_C(1700000000000000000));
    assert_int_equal(st_index_select(r, "tenant", day, day, NULL, 0, &ids), 0);
    assert_int_equal(ids.n, N);
    packs_t pk = {.npacks = 0};
    for (size_t i = 0; i < ids.n; i++)
        assert_int_equal(st_index_chunks(r, "tenant", day, ids.v[i], INT64_MIN, INT64_MAX, note_pack, &pk), 0);
    assert_int_equal(pk.chunks, N);
    assert_int_equal(pk.npacks, 3); /* 4,096 + 4,096 + 808 */
    st_u64vec_free(&ids);
    st_index_read_end(r);
    assert_int_equal(count_entries(&e, "slice-0000"), 1);
    assert_int_equal(count_entries(&e, "slice-8999"), 1);
    /* a crash now replays nothing twice: every slice recorded its flushed sequence */
    env_close(&e, false);
    env_open(&e, 1 << 20);
    assert_int_equal(count_entries(&e, "slice-4095"), 1);
    assert_int_equal(count_entries(&e, "slice-4096"), 1);
    assert_int_equal(stats(&e).head_bytes, 0);
    env_close(&e, true);
    st_test_rmrf(e.dir);
    free(e.dir);
}

static st_ingester_stats_t stats(env_t *e)
{
    st_ingester_stats_t st;
    st_ingester_stats(e->ing, &st);
    return st;
}

/* Heads over head_memory_target are frozen into spill files. Streams that freeze once and go quiet
 * would pin one old spill segment each while busy streams fill new ones: compaction keeps the
 * files within twice the live frames (plus two segments), and every line reads back exactly. */
static void test_freeze_spill_compaction(void **state)
{
    (void)state;
    env_t e;
    e.dir = st_test_tmpdir("ingspill");
    g_target = 1024; /* every head with a tail of 64 bytes or more freezes */
    g_spill = true;
    g_segment = 4096;
    g_period_ns = 5 * ST_NS_PER_SEC / 1000;
    env_open(&e, 16384);
    char app[32];
    for (int round = 0; round < 60; round++) {
        snprintf(app, sizeof app, "quiet-%02d", round);
        push_n(&e, app, 0, 8);
        for (int b = 0; b < 4; b++) {
            snprintf(app, sizeof app, "busy-%d", b);
            push_n(&e, app, round * 40, 40);
        }
        /* the flusher (every 5 ms) freezes until the heads are under the target again (<= 10 s) */
        for (int i = 0; i < 2000 && stats(&e).head_resident > g_target; i++) usleep(5000);
    }
    st_ingester_stats_t st = stats(&e);
    assert_true(st.head_freezes >= 60);
    assert_true(st.head_resident < st.head_bytes);
    for (int i = 0; i < 400; i++) {
        st = stats(&e);
        if (st.spill_bytes <= 2 * st.spill_live_bytes + 3 * 4096) break;
        usleep(5000);
    }
    assert_true(st.spill_live_bytes > 0);
    assert_true(st.spill_bytes <= 2 * st.spill_live_bytes + 3 * 4096);
    for (int round = 0; round < 60; round++) {
        snprintf(app, sizeof app, "quiet-%02d", round);
        assert_int_equal(count_entries(&e, app), 8);
    }
    for (int b = 0; b < 4; b++) {
        snprintf(app, sizeof app, "busy-%d", b);
        assert_int_equal(count_entries(&e, app), 60 * 40);
    }
    /* crash: the spill files are only a cache; the WAL replays every line */
    env_close(&e, false);
    env_open(&e, 16384);
    assert_int_equal(count_entries(&e, "quiet-07"), 8);
    assert_int_equal(count_entries(&e, "busy-3"), 60 * 40);
    env_close(&e, true);
    env_open(&e, 16384);
    assert_int_equal(count_entries(&e, "quiet-59"), 8);
    assert_int_equal(count_entries(&e, "busy-0"), 60 * 40);
    assert_int_equal(stats(&e).spill_bytes, 0);
    env_close(&e, true);
    g_target = g_segment = 0;
    g_spill = false;
    g_period_ns = 0;
    st_test_rmrf(e.dir);
    free(e.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_push_query_restart),
                                       cmocka_unit_test(test_small_streams_pack),
                                       cmocka_unit_test(test_freeze_spill_compaction), cmocka_unit_test(test_flush_slices)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
