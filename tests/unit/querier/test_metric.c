/* test_metric.c: the LogQL metric engine against hand-computed results: a small store (chunk files
 * and ingester memory, several blocks per stream) queried through st_query_exec for every range
 * aggregation over logs, the traps of window boundaries, offset, step/end, vector aggregations,
 * binary operators, label_replace, absent_over_time, pipeline errors and the series limit; plus the
 * unwrap-based range functions over injected samples (st_metric_range_samples). */
#include "testutil.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "ingester/ingester.h"
#include "querier/metric_int.h"

#include <math.h>
#include <pthread.h>

#define T0 INT64_C(1700000000)

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

static struct {
    char *dir;
    char wal[4096], chunks[4096], idx[4096];
    st_index_t *ix;
    st_ingester_t *ing;
    st_querier_t *q;
} env;

typedef struct {
    int64_t off; /* seconds after T0 */
    const char *line;
    const char *md_name[2], *md_value[2];
} ent_t;

static void push(const char *labels, const ent_t *e, size_t n)
{
    st_push_t *p;
    assert_int_equal(st_push_new("tenant", &p), 0);
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(labels), &l, err), 0);
    size_t idx;
    assert_int_equal(st_push_stream(p, &l, &idx), 0);
    for (size_t i = 0; i < n; i++) {
        st_buf_t md = ST_BUF_INIT;
        st_str_t names[2], values[2];
        size_t nm = 0;
        for (; nm < 2 && e[i].md_name[nm]; nm++) {
            names[nm] = st_cstr(e[i].md_name[nm]);
            values[nm] = st_cstr(e[i].md_value[nm]);
        }
        if (nm) assert_int_equal(st_md_encode(&md, names, values, nm), 0);
        assert_int_equal(st_push_entry(p, idx, (T0 + e[i].off) * ST_NS_PER_SEC, st_cstr(e[i].line),
                                       st_str(md.data, md.len)),
                         0);
        st_buf_free(&md);
    }
    pthread_mutex_lock(&mu);
    int before = done;
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_ingester_push(env.ing, p), 0);
    pthread_mutex_lock(&mu);
    while (done == before) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_push_status(p), 0);
    st_push_free(p);
    st_labels_free(&l);
}

/* {app="r"}: RN entries at random ns times in [T0+1000s, T0+2000s), lines of 1..20 bytes, some
 * holding an "x"; flushed into chunk files with many entries per block (see test_randomized). */
#define RN 3000
static int64_t rts[RN];
static int rlen[RN];
static bool rx[RN];
static int rlevel[RN]; /* 0: no structured metadata, 1: level="a", 2: level="b" */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void push_random(void)
{
    uint64_t seed = 42;
    for (int i = 0; i < RN; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        rts[i] = (T0 + 1000) * ST_NS_PER_SEC + (int64_t)((seed >> 20) % (uint64_t)(1000 * ST_NS_PER_SEC));
    }
    qsort(rts, RN, sizeof *rts, cmp_i64);
    st_push_t *p;
    assert_int_equal(st_push_new("tenant", &p), 0);
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr("{app=\"r\"}"), &l, err), 0);
    size_t idx;
    assert_int_equal(st_push_stream(p, &l, &idx), 0);
    for (int i = 0; i < RN; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        rlen[i] = 1 + (int)((seed >> 33) % 20);
        rx[i] = (seed >> 13) % 3 == 0;
        rlevel[i] = (int)((seed >> 40) % 3);
        char line[32];
        memset(line, 'a', sizeof line);
        if (rx[i]) line[rlen[i] / 2] = 'x';
        st_buf_t md = ST_BUF_INIT;
        st_str_t name = ST_STR("level"), value = rlevel[i] == 1 ? ST_STR("a") : ST_STR("b");
        if (rlevel[i]) assert_int_equal(st_md_encode(&md, &name, &value, 1), 0);
        assert_int_equal(
            st_push_entry(p, idx, rts[i], st_str(line, (size_t)rlen[i]), st_str(md.data, md.len)), 0);
        st_buf_free(&md);
    }
    pthread_mutex_lock(&mu);
    int before = done;
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_ingester_push(env.ing, p), 0);
    pthread_mutex_lock(&mu);
    while (done == before) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(st_push_status(p), 0);
    st_push_free(p);
    st_labels_free(&l);
}

static st_querier_t *new_querier(int max_series)
{
    st_querier_opts_t o = {.index = env.ix,
                           .ingester = env.ing,
                           .chunks_dir = env.chunks,
                           .max_query_series = max_series,
                           .query_timeout_ns = 60 * ST_NS_PER_SEC,
                           .threads = 2};
    st_querier_t *q;
    assert_int_equal(st_querier_new(&o, &q), 0);
    return q;
}

static int setup(void **state)
{
    (void)state;
    env.dir = st_test_tmpdir("metric");
    snprintf(env.wal, sizeof env.wal, "%s/wal", env.dir);
    snprintf(env.chunks, sizeof env.chunks, "%s/chunks", env.dir);
    snprintf(env.idx, sizeof env.idx, "%s/index", env.dir);
    assert_int_equal(st_index_open(env.idx, 1 << 26, &env.ix), 0);
    st_ingester_opts_t o = {.wal_dir = env.wal,
                            .chunks_dir = env.chunks,
                            .block_size = 1024, /* ~100 entries per block of {app="r"}: many blocks */
                            .target_size = 1 << 20,
                            .zstd_level = 3, .block_filters = true,
                            .max_chunk_age_ns = 3600 * ST_NS_PER_SEC,
                            .idle_period_ns = 3600 * ST_NS_PER_SEC,
                            .flush_check_period_ns = 3600 * ST_NS_PER_SEC,
                            .wal_segment_size = 1 << 20,
                            .wal_max_pending = 64 << 20,
                            .wal_max_size = 1 << 30,
                            .index = env.ix,
                            .on_complete = on_complete};
    assert_int_equal(st_ingester_open(&o, &env.ing), 0);
    /* a and b end up in chunk files, the rest stays in memory */
    static const ent_t a[] = {{10, "aaaa", {0}, {0}},   {20, "bb", {0}, {0}}, {30, "c", {0}, {0}},
                              {60, "dddddd", {0}, {0}}, {61, "ee", {0}, {0}}, {90, "f", {0}, {0}},
                              {120, "ggg", {0}, {0}}};
    static const ent_t b[] = {{30, "xx", {0}, {0}}, {60, "yyyy", {0}, {0}}, {120, "z", {0}, {0}}};
    push("{app=\"a\", env=\"prod\"}", a, 7);
    push("{app=\"b\", env=\"dev\"}", b, 3);
    push_random();
    assert_int_equal(st_ingester_flush(env.ing), 0);
    static const ent_t c[] = {
        {15, "l1", {"level"}, {"error"}}, {45, "l2", {"level"}, {"info"}}, {50, "l3", {"level"}, {"error"}}};
    static const ent_t e[] = {{30, "boom", {"__error__"}, {"JSONParserErr"}}};
    static const ent_t p[] = {{30, "kept", {"__error__", "__preserve_error__"}, {"JSONParserErr", "true"}}};
    static const ent_t l[] = {{10, "level=error status=500", {0}, {0}},
                              {20, "level=info status=200", {0}, {0}},
                              {30, "level=error status=404", {0}, {0}}};
    push("{app=\"c\", env=\"prod\"}", c, 3);
    push("{app=\"e\", kind=\"err\"}", e, 1);
    push("{app=\"p\", kind=\"err\"}", p, 1);
    push("{app=\"l\", kind=\"fmt\"}", l, 3);
    env.q = new_querier(500);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_querier_free(env.q);
    assert_int_equal(st_ingester_close(env.ing, false), 0);
    st_index_close(env.ix);
    st_test_rmrf(env.dir);
    free(env.dir);
    return 0;
}

/* ---- running queries ------------------------------------------------------------------------------ */

typedef struct {
    int rc;
    int status;
    char *body;   /* whole response, or the error text */
    char *result; /* "resultType":...,"result":[...] (success only) */
} res_t;

static void res_free(res_t *r)
{
    free(r->body);
    free(r->result);
}

static res_t run_q(st_querier_t *q, const char *query, int64_t start, int64_t end, int64_t step, bool instant)
{
    st_query_t req = {.tenant = "tenant",
                      .query = st_cstr(query),
                      .start = (T0 + start) * ST_NS_PER_SEC,
                      .end = (T0 + end) * ST_NS_PER_SEC,
                      .step_ns = step * ST_NS_PER_SEC,
                      .limit = 100,
                      .instant = instant};
    st_buf_t out = ST_BUF_INIT;
    st_query_error_t err;
    memset(&err, 0, sizeof err);
    res_t r;
    memset(&r, 0, sizeof r);
    r.rc = st_query_exec(q, &req, &out, &err);
    if (r.rc < 0) {
        r.status = err.status;
        r.body = strdup(st_buf_cstr(&err.msg));
    } else {
        r.status = 200;
        r.body = strdup(st_buf_cstr(&out));
        const char *a = strstr(r.body, "\"resultType\"");
        const char *b = strstr(r.body, ",\"stats\":{");
        assert_non_null(a);
        assert_non_null(b);
        r.result = strndup(a, (size_t)(b - a));
    }
    st_buf_free(&out);
    st_query_error_free(&err);
    return r;
}

#define RANGE(query, s, e, st) run_q(env.q, query, s, e, st, false)
#define INSTANT(query, t)      run_q(env.q, query, t, t, 0, true)

static void expect(res_t r, const char *type, const char *result)
{
    if (r.rc != 0) fail_msg("query failed (%d): %s", r.status, r.body);
    char want[8192];
    snprintf(want, sizeof want, "\"resultType\":\"%s\",\"result\":%s", type, result);
    if (strcmp(r.result, want) != 0) fail_msg("\n got: %s\nwant: %s", r.result, want);
    res_free(&r);
}

static void expect_error(res_t r, int status, const char *text)
{
    if (r.rc == 0) fail_msg("expected an error, got %s", r.result);
    assert_int_equal(r.status, status);
    if (strcmp(r.body, text) != 0) fail_msg("\n got: %s\nwant: %s", r.body, text);
    res_free(&r);
}

/* Stages of the pipeline engineer's work (parsers, unwrap, label filters) that may not exist yet. */
static bool unsupported(res_t r)
{
    bool u = r.rc < 0 && r.status == 400 && strstr(r.body, "not supported yet") != NULL;
    if (u) res_free(&r);
    return u;
}

/* ---- range aggregations over logs ----------------------------------------------------------------- */

#define A  "{\"metric\":{\"app\":\"a\",\"env\":\"prod\"},"
#define B  "{\"metric\":{\"app\":\"b\",\"env\":\"dev\"},"
#define CE "{\"metric\":{\"app\":\"c\",\"env\":\"prod\",\"level\":\"error\"},"
#define CI "{\"metric\":{\"app\":\"c\",\"env\":\"prod\",\"level\":\"info\"},"

static void test_windows(void **state)
{
    (void)state;
    /* (t-30s, t]: the entry at 30 belongs to t=30 only, the one at 60 to t=60 only */
    expect(RANGE("count_over_time({app=\"a\"}[30s])", 30, 120, 30), "matrix",
           "[" A
           "\"values\":[[1700000030,\"3\"],[1700000060,\"1\"],[1700000090,\"2\"],[1700000120,\"1\"]]}]");
    /* end is inclusive only when a step lands on it */
    expect(RANGE("count_over_time({app=\"a\"}[30s])", 30, 119, 30), "matrix",
           "[" A "\"values\":[[1700000030,\"3\"],[1700000060,\"1\"],[1700000090,\"2\"]]}]");
    /* overlapping windows (range > step) */
    expect(RANGE("count_over_time({app=\"a\"}[1m])", 30, 120, 30), "matrix",
           "[" A
           "\"values\":[[1700000030,\"3\"],[1700000060,\"4\"],[1700000090,\"3\"],[1700000120,\"3\"]]}]");
    /* gaps (range < step): 10, 20 and 61 fall in no window */
    expect(RANGE("count_over_time({app=\"a\"}[10s])", 30, 120, 30), "matrix",
           "[" A
           "\"values\":[[1700000030,\"1\"],[1700000060,\"1\"],[1700000090,\"1\"],[1700000120,\"1\"]]}]");
    /* offset moves the window, not the output timestamp */
    expect(RANGE("count_over_time({app=\"a\"}[30s] offset 30s)", 60, 120, 30), "matrix",
           "[" A "\"values\":[[1700000060,\"3\"],[1700000090,\"1\"],[1700000120,\"2\"]]}]");
    /* steps without samples are left out */
    expect(RANGE("count_over_time({app=\"b\"}[30s])", 30, 150, 30), "matrix",
           "[" B "\"values\":[[1700000030,\"1\"],[1700000060,\"1\"],[1700000120,\"1\"]]}]");
    /* instant queries: one window ending at time */
    expect(INSTANT("count_over_time({app=\"a\"}[1m])", 60), "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m])", 200), "vector", "[]");
    /* only the blocks of (start-range, end] are read: the 7 lines of a */
    res_t r = RANGE("count_over_time({app=\"a\"}[30s])", 30, 120, 30);
    assert_non_null(strstr(r.body, "\"totalLinesProcessed\":7,"));
    res_free(&r);
    r = RANGE("count_over_time({app=\"a\"}[5s])", 90, 90, 30);
    assert_non_null(strstr(r.body, "\"totalLinesProcessed\":1,"));
    res_free(&r);
}

static void test_rates_and_bytes(void **state)
{
    (void)state;
    /* no extrapolation: count / range seconds */
    expect(RANGE("rate({app=\"a\"}[30s])", 30, 120, 30), "matrix",
           "[" A "\"values\":[[1700000030,\"0.1\"],[1700000060,\"0.03333333333333333\"],[1700000090,"
           "\"0.06666666666666667\"],[1700000120,\"0.03333333333333333\"]]}]");
    expect(RANGE("bytes_over_time({app=\"a\"}[30s])", 30, 120, 30), "matrix",
           "[" A
           "\"values\":[[1700000030,\"7\"],[1700000060,\"6\"],[1700000090,\"3\"],[1700000120,\"3\"]]}]");
    expect(RANGE("bytes_rate({app=\"a\"}[30s])", 30, 120, 30), "matrix",
           "[" A "\"values\":[[1700000030,\"0.23333333333333334\"],[1700000060,\"0.2\"],[1700000090,\"0.1\"],"
           "[1700000120,\"0.1\"]]}]");
    /* line filters run before counting; bytes are those of kept lines */
    expect(INSTANT("count_over_time({app=\"a\"} |= \"d\" [2m])", 120), "vector",
           "[" A "\"value\":[1700000120,\"1\"]}]");
    expect(INSTANT("bytes_over_time({app=\"a\"} != \"d\" [2m])", 120), "vector",
           "[" A "\"value\":[1700000120,\"13\"]}]");
}

static void test_series_identity(void **state)
{
    (void)state;
    /* structured metadata is part of a series' labels */
    expect(INSTANT("count_over_time({app=\"c\"}[1m])", 60), "vector",
           "[" CE "\"value\":[1700000060,\"2\"]}," CI "\"value\":[1700000060,\"1\"]}]");
    /* sum by pushed into extraction, merging streams */
    expect(INSTANT("sum by (env) (count_over_time({env=~\".+\"}[1m]))", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"2\"]},"
           "{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"7\"]}]");
    expect(INSTANT("sum by (level) (count_over_time({env=\"prod\"}[1m]))", 60), "vector",
           "[{\"metric\":{},\"value\":[1700000060,\"4\"]},{\"metric\":{\"level\":\"error\"},\"value\":["
           "1700000060,\"2\"]},"
           "{\"metric\":{\"level\":\"info\"},\"value\":[1700000060,\"1\"]}]");
    expect(RANGE("sum(rate({env=~\".+\"}[1m]))", 60, 120, 60), "matrix",
           "[{\"metric\":{},\"values\":[[1700000060,\"0.15\"],[1700000120,\"0.06666666666666667\"]]}]");
    expect(INSTANT("sum without (app, level) (bytes_over_time({env=~\".+\"}[1m]))", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"6\"]},"
           "{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"19\"]}]");
    /* parsers multiply series (needs the logfmt stage) */
    res_t r = INSTANT("sum by (level) (count_over_time({app=\"l\"} | logfmt [1m]))", 60);
    if (!unsupported(r))
        expect(r, "vector",
               "[{\"metric\":{\"level\":\"error\"},\"value\":[1700000060,\"2\"]},"
               "{\"metric\":{\"level\":\"info\"},\"value\":[1700000060,\"1\"]}]");
    r = INSTANT("count_over_time({app=\"l\"} | logfmt [1m])", 60);
    if (!unsupported(r))
        expect(r, "vector",
               "[{\"metric\":{\"app\":\"l\",\"kind\":\"fmt\",\"level\":\"error\",\"status\":\"404\"},"
               "\"value\":[1700000060,\"1\"]},"
               "{\"metric\":{\"app\":\"l\",\"kind\":\"fmt\",\"level\":\"error\",\"status\":\"500\"},"
               "\"value\":[1700000060,\"1\"]},"
               "{\"metric\":{\"app\":\"l\",\"kind\":\"fmt\",\"level\":\"info\",\"status\":\"200\"},\"value\":"
               "[1700000060,\"1\"]}]");
    r = INSTANT("max_over_time({app=\"l\"} | logfmt | unwrap status [1m]) by (level)", 60);
    if (!unsupported(r))
        expect(r, "vector",
               "[{\"metric\":{\"level\":\"error\"},\"value\":[1700000060,\"500\"]},"
               "{\"metric\":{\"level\":\"info\"},\"value\":[1700000060,\"200\"]}]");
    r = INSTANT("sum by (app) (sum_over_time({app=\"l\"} | logfmt | unwrap status [1m]))", 60);
    if (!unsupported(r))
        expect(r, "vector", "[{\"metric\":{\"app\":\"l\"},\"value\":[1700000060,\"1104\"]}]");
}

static void test_absent(void **state)
{
    (void)state;
    expect(INSTANT("absent_over_time({app=\"zzz\", env=\"prod\", x=~\"y\"}[1m])", 60), "vector",
           "[{\"metric\":{\"app\":\"zzz\",\"env\":\"prod\"},\"value\":[1700000060,\"1\"]}]");
    /* a name matched twice is left out */
    expect(INSTANT("absent_over_time({app=\"zzz\", app!=\"y\", env=\"prod\"}[1m])", 60), "vector",
           "[{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"1\"]}]");
    expect(INSTANT("absent_over_time({app=\"a\"}[1m])", 60), "vector", "[]");
    expect(RANGE("absent_over_time({app=\"a\"}[30s])", 120, 180, 30), "matrix",
           "[{\"metric\":{\"app\":\"a\"},\"values\":[[1700000150,\"1\"],[1700000180,\"1\"]]}]");
    expect(INSTANT("absent_over_time({app=\"a\"} |= \"nothing like this\" [1m])", 60), "vector",
           "[{\"metric\":{\"app\":\"a\"},\"value\":[1700000060,\"1\"]}]");
}

static void test_pipeline_errors(void **state)
{
    (void)state;
    static const char *msg =
        "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", app=\"e\", "
        "kind=\"err\"}'.\n"
        "Use a label filter to intentionally skip this error. (e.g | __error__!=\"JSONParserErr\").\n"
        "To skip all potential errors you can match empty errors.(e.g __error__=\"\")\n"
        "The label filter can also be specified after unwrap. (e.g | unwrap latency | __error__=\"\" )\n";
    expect_error(INSTANT("count_over_time({app=\"e\"}[1m])", 60), 400, msg);
    /* groupings keep every label of an erroring series */
    expect_error(INSTANT("sum by (kind) (count_over_time({kind=\"err\"}[1m]))", 60), 400, msg);
    /* outside every window: no error */
    expect(INSTANT("count_over_time({app=\"e\"}[1m])", 200), "vector", "[]");
    /* __preserve_error__="true" keeps the series */
    expect(INSTANT("count_over_time({app=\"p\"}[1m])", 60), "vector",
           "[{\"metric\":{\"__error__\":\"JSONParserErr\",\"__preserve_error__\":\"true\",\"app\":\"p\","
           "\"kind\":\"err\"},"
           "\"value\":[1700000060,\"1\"]}]");
    /* users skip errors with a label filter (needs label filter stages) */
    res_t r = INSTANT("sum(count_over_time({kind=\"err\"} | __error__=\"\" [1m]))", 60);
    if (!unsupported(r)) expect(r, "vector", "[]");
    r = INSTANT("count_over_time({app=\"a\"} | json [1m])", 60);
    if (!unsupported(r)) {
        assert_int_equal(r.status, 400);
        assert_non_null(strstr(r.body, "pipeline error: 'JSONParserErr'"));
        res_free(&r);
    }
}

/* ---- vector aggregations -------------------------------------------------------------------------- */

#define V "count_over_time({env=~\".+\"}[1m])"

static void test_vector_aggregations(void **state)
{
    (void)state;
    /* V at 60: a 4, b 2, c/error 2, c/info 1 */
    expect(INSTANT("sum(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"9\"]}]");
    expect(INSTANT("avg(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"2.25\"]}]");
    expect(INSTANT("count(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("max(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("min(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"1\"]}]");
    expect(INSTANT("stdvar(" V ")", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"1.1875\"]}]");
    expect(INSTANT("stddev(" V ")", 60), "vector",
           "[{\"metric\":{},\"value\":[1700000060,\"1.0897247358851685\"]}]");
    expect(INSTANT("count by (env) (" V ")", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"1\"]},{\"metric\":{\"env\":\"prod\"},"
           "\"value\":[1700000060,\"3\"]}]");
    expect(INSTANT("avg by (env) (" V ")", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"2\"]},"
           "{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"2.3333333333333335\"]}]");
    expect(INSTANT("min by (env) (" V ")", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"2\"]},{\"metric\":{\"env\":\"prod\"},"
           "\"value\":[1700000060,\"1\"]}]");
    expect(INSTANT("sum without (app) (" V ")", 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"2\"]},{\"metric\":{\"env\":\"prod\"},"
           "\"value\":[1700000060,\"4\"]},"
           "{\"metric\":{\"env\":\"prod\",\"level\":\"error\"},\"value\":[1700000060,\"2\"]},"
           "{\"metric\":{\"env\":\"prod\",\"level\":\"info\"},\"value\":[1700000060,\"1\"]}]");
    /* topk/bottomk keep the series' labels; instant results are ordered by labels */
    expect(INSTANT("topk(1, " V ")", 60), "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("topk by (env) (1, " V ")", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT("bottomk(1, " V ")", 60), "vector", "[" CI "\"value\":[1700000060,\"1\"]}]");
    expect(INSTANT("bottomk(1, " V ") by (env)", 60), "vector",
           "[" B "\"value\":[1700000060,\"2\"]}," CI "\"value\":[1700000060,\"1\"]}]");
    /* sort and sort_desc order instant results by value (ties by labels) */
    expect(INSTANT("sort(" V ")", 60), "vector",
           "[" CI "\"value\":[1700000060,\"1\"]}," B "\"value\":[1700000060,\"2\"]}," CE
           "\"value\":[1700000060,\"2\"]}," A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("sort_desc(" V ")", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}," CE
           "\"value\":[1700000060,\"2\"]}," CI "\"value\":[1700000060,\"1\"]}]");
    /* over a range: topk picks per step */
    expect(RANGE("bottomk(1, bytes_over_time({env=~\".+\"}[30s]))", 30, 60, 30), "matrix",
           "[" B "\"values\":[[1700000030,\"2\"]]}," CE "\"values\":[[1700000060,\"2\"]]}]");
    expect(INSTANT("approx_topk(1, " V ")", 60), "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    expect_error(RANGE("approx_topk(1, " V ")", 0, 60, 30), 400,
                 "count min sketches are only supported on instant queries");
}

/* ---- binary operators ------------------------------------------------------------------------------ */

#define SA "sum(count_over_time({app=\"a\"}[1m]))"
#define SB "sum(count_over_time({app=\"b\"}[1m]))"
#define L  "sum by (env, app) (" V ")"
#define R  "sum by (env) (" V ")"

static void test_binary_operators(void **state)
{
    (void)state;
    expect(INSTANT(SA " + " SB, 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"6\"]}]");
    expect(INSTANT(SA " / " SB, 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT(SA " + " SB " * 2", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"8\"]}]");
    expect(INSTANT("(" SA " + " SB ") * 2", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"12\"]}]");
    expect(INSTANT(SA " - " SB " - 1", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"1\"]}]");
    expect(
        INSTANT("2 ^ " SB " ^ 0.5", 60), "vector",
        "[{\"metric\":{},\"value\":[1700000060,\"2.665144142690225\"]}]"); /* right-associative: 2^(2^0.5) */
    expect(INSTANT(SA " / 0", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"NaN\"]}]");
    expect(INSTANT(SA " % 0", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"NaN\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) * 2", 60), "vector",
           "[" A "\"value\":[1700000060,\"8\"]}]");
    expect(INSTANT("2 - count_over_time({app=\"a\"}[1m])", 60), "vector",
           "[" A "\"value\":[1700000060,\"-2\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) % 3", 60), "vector",
           "[" A "\"value\":[1700000060,\"1\"]}]");
    /* comparisons filter (keeping the vector's value) unless bool */
    expect(INSTANT(V " > 1", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}," CE
           "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT("1 < " V, 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}," CE
           "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT(V " > bool 1", 60), "vector",
           "[" A "\"value\":[1700000060,\"1\"]}," B "\"value\":[1700000060,\"1\"]}," CE
           "\"value\":[1700000060,\"1\"]}," CI "\"value\":[1700000060,\"0\"]}]");
    expect(INSTANT(V " == 2", 60), "vector",
           "[" B "\"value\":[1700000060,\"2\"]}," CE "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT(R " >= bool " R, 60), "vector",
           "[{\"metric\":{\"env\":\"dev\"},\"value\":[1700000060,\"1\"]},{\"metric\":{\"env\":\"prod\"},"
           "\"value\":[1700000060,\"1\"]}]");
    expect(INSTANT(R " > " R, 60), "vector", "[]");
    /* one-to-one matching needs equal label sets unless on/ignoring */
    expect(INSTANT("vector(2) * count_over_time({app=\"a\"}[1m])", 60), "vector", "[]");
    expect(INSTANT("vector(2) * on() " SA, 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"8\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) - ignoring(app) sum by (env) "
                   "(count_over_time({app=\"a\"}[1m]))",
                   60),
           "vector", "[{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"0\"]}]");
    /* many-to-one and one-to-many */
    const char *ratio =
        "[{\"metric\":{\"app\":\"a\",\"env\":\"prod\"},\"value\":[1700000060,\"0.5714285714285714\"]},"
        "{\"metric\":{\"app\":\"b\",\"env\":\"dev\"},\"value\":[1700000060,\"1\"]},"
        "{\"metric\":{\"app\":\"c\",\"env\":\"prod\"},\"value\":[1700000060,\"0.42857142857142855\"]}]";
    expect(INSTANT(L " / on(env) group_left " R, 60), "vector", ratio);
    expect(INSTANT(L " / ignoring(app) group_left " R, 60), "vector", ratio);
    expect(INSTANT(R " / on(env) group_right " L, 60), "vector",
           "[{\"metric\":{\"app\":\"a\",\"env\":\"prod\"},\"value\":[1700000060,\"1.75\"]},"
           "{\"metric\":{\"app\":\"b\",\"env\":\"dev\"},\"value\":[1700000060,\"1\"]},"
           "{\"metric\":{\"app\":\"c\",\"env\":\"prod\"},\"value\":[1700000060,\"2.3333333333333335\"]}]");
    expect(INSTANT("sum by (env, level) (" V
                   ") * on(env) group_left(app) max by (env, app) (count_over_time({app=\"b\"}[1m]))",
                   60),
           "vector", "[{\"metric\":{\"app\":\"b\",\"env\":\"dev\"},\"value\":[1700000060,\"4\"]}]");
    /* cardinality errors, with Loki's texts */
    expect_error(
        INSTANT(L " / on(env) " R, 60), 500,
        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
    expect_error(INSTANT(R " / on(env) group_left " L, 60), 500,
                 "found duplicate series on the right hand-side;many-to-many matching not allowed: matching "
                 "labels must be "
                 "unique on one side");
    expect_error(INSTANT(L " / on(env) group_right " R, 60), 500,
                 "found duplicate series on the left hand-side;many-to-many matching not allowed: matching "
                 "labels must be "
                 "unique on one side");
    expect_error(INSTANT(L " / on(env) group_left " L, 60), 500,
                 "found duplicate series on the right hand-side;many-to-many matching not allowed: matching "
                 "labels must be "
                 "unique on one side");
    /* set operators */
    expect(INSTANT(V " and count_over_time({app=\"a\"}[1m])", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) or count_over_time({app=\"b\"}[1m])", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) or on(env) " V, 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT(V " unless on(app) count_over_time({app=\"c\"}[1m])", 60), "vector",
           "[" A "\"value\":[1700000060,\"4\"]}," B "\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) unless count_over_time({app=\"nope\"}[1m])", 60),
           "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("count_over_time({app=\"a\"}[1m]) and count_over_time({app=\"nope\"}[1m])", 60), "vector",
           "[]");
    /* per step over a range */
    expect(
        RANGE(
            "count_over_time({app=\"b\"}[30s]) + on(env) sum by (env) (count_over_time({env=\"dev\"}[30s]))",
            30, 90, 30),
        "matrix", "[{\"metric\":{\"env\":\"dev\"},\"values\":[[1700000030,\"2\"],[1700000060,\"2\"]]}]");
}

static void test_literals_and_label_replace(void **state)
{
    (void)state;
    expect(INSTANT("vector(1)+vector(1)", 60), "vector", "[{\"metric\":{},\"value\":[1700000060,\"2\"]}]");
    expect(INSTANT("1+1", 60), "scalar", "[1700000060,\"2\"]");
    expect(INSTANT("-1.5", 60), "scalar", "[1700000060,\"-1.5\"]");
    expect(INSTANT("vector(1) > 2", 60), "vector", "[]");
    expect(RANGE("vector(3)", 0, 60, 30), "matrix",
           "[{\"metric\":{},\"values\":[[1700000000,\"3\"],[1700000030,\"3\"],[1700000060,\"3\"]]}]");
    expect(RANGE("2*2", 0, 60, 30), "matrix",
           "[{\"metric\":{},\"values\":[[1700000000,\"4\"],[1700000030,\"4\"],[1700000060,\"4\"]]}]");
    expect(
        INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"x-$1\", \"app\", \"(.*)\")", 60),
        "vector",
        "[{\"metric\":{\"app\":\"a\",\"dst\":\"x-a\",\"env\":\"prod\"},\"value\":[1700000060,\"4\"]}]");
    /* anchored: "b" does not match "a"; no replacement */
    expect(INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"$1\", \"app\", \"b\")", 60),
           "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    /* an empty replacement removes the label */
    expect(INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"app\", \"\", \"app\", \".*\")", 60),
           "vector", "[{\"metric\":{\"env\":\"prod\"},\"value\":[1700000060,\"4\"]}]");
    /* ${1}, ${2}, $$; and $2y names a group "2y" (empty) as in Go */
    expect(INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"${1}x${2}y$$\", \"env\", "
                   "\"(p)(r)od\")",
                   60),
           "vector",
           "[{\"metric\":{\"app\":\"a\",\"dst\":\"pxry$\",\"env\":\"prod\"},\"value\":[1700000060,\"4\"]}]");
    expect(
        INSTANT(
            "label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"${1}x$2y$$\", \"env\", \"(p)(r)od\")",
            60),
        "vector",
        "[{\"metric\":{\"app\":\"a\",\"dst\":\"px$\",\"env\":\"prod\"},\"value\":[1700000060,\"4\"]}]");
    expect(
        INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"$1x\", \"env\", \"(p)rod\")", 60),
        "vector", "[" A "\"value\":[1700000060,\"4\"]}]");
    expect(INSTANT("label_replace(count_over_time({app=\"a\"}[1m]), \"dst\", \"$name-${n2}\", \"env\", "
                   "\"([(]?)(?P<name>p)[r)](?:x)?(?<n2>o)d\")",
                   60),
           "vector",
           "[{\"metric\":{\"app\":\"a\",\"dst\":\"p-o\",\"env\":\"prod\"},\"value\":[1700000060,\"4\"]}]");
}

static void test_series_limit(void **state)
{
    (void)state;
    st_querier_t *q = new_querier(2);
    res_t r = run_q(q, V, 60, 60, 0, true);
    expect_error(
        r, 400,
        "maximum number of series (2) reached for a single query; consider reducing query cardinality by "
        "adding "
        "more specific stream selectors, reducing the time range, or aggregating results with functions like "
        "sum(), count() or topk()");
    r = run_q(q, "sum by (env) (" V ")", 0, 60, 30, false);
    assert_int_equal(r.rc, 0);
    res_free(&r);
    r = run_q(q, "sum by (app) (" V ")", 0, 120, 30, false);
    assert_int_equal(r.status, 400);
    res_free(&r);
    /* under a vector aggregation that is not pushed down, the inner series are not limited by 2 */
    r = run_q(q, "max(" V ")", 60, 60, 0, true);
    assert_int_equal(r.rc, 0);
    res_free(&r);
    st_querier_free(q);
}

/* ---- unwrapped range functions over injected samples ---------------------------------------------- */

typedef struct {
    st_mctx_t c;
    st_query_error_t err;
    st_logql_expr_t *e;
    st_matrix_t m;
} sctx_t;

static int eval_samples(sctx_t *s, const char *query, int64_t start, int64_t end, int64_t step,
                        const st_msample_t *smp, size_t n)
{
    memset(s, 0, sizeof *s);
    char err[512];
    if (st_logql_parse(query, strlen(query), &s->e, err, sizeof err) != 0)
        fail_msg("parse %s: %s", query, err);
    s->c.err = &s->err;
    s->c.deadline = INT64_MAX;
    s->c.max_series = 500;
    s->c.steps.start = (T0 + start) * ST_NS_PER_SEC;
    s->c.steps.step = step * ST_NS_PER_SEC;
    s->c.steps.n = step ? (size_t)((end - start) / step) + 1 : 1;
    const st_logql_expr_t *e = s->e;
    const st_logql_grouping_t *outer = NULL;
    if (e->kind == ST_LOGQL_EXPR_VECTOR_AGG) {
        outer = &e->vec_agg.grouping;
        e = e->vec_agg.inner;
    }
    return st_metric_range_samples(&s->c, e, outer, smp, n, &s->m);
}

static void sctx_free(sctx_t *s)
{
    st_matrix_free(&s->m);
    st_query_error_free(&s->err);
    st_buf_free(&s->c.scratch);
    st_logql_free(s->e);
}

/* The value of the only series at step i ("-" when absent). */
static void expect_values(const char *query, int64_t start, int64_t end, int64_t step,
                          const st_msample_t *smp, size_t n, const char *want)
{
    sctx_t s;
    int rc = eval_samples(&s, query, start, end, step, smp, n);
    if (rc < 0) fail_msg("%s: %s", query, st_buf_cstr(&s.err.msg));
    st_buf_t got = ST_BUF_INIT;
    for (size_t k = 0; k < s.m.n; k++) {
        if (k) st_buf_puts(&got, " | ");
        st_labels_format(&s.m.s[k].labels, &got);
        for (size_t i = 0; i < s.m.nsteps; i++) {
            st_buf_putc(&got, ' ');
            if (st_mseries_has(&s.m.s[k], i))
                st_json_put_float_str(&got, s.m.s[k].v[i]);
            else
                st_buf_putc(&got, '-');
        }
    }
    if (strcmp(st_buf_cstr(&got), want) != 0)
        fail_msg("%s\n got: %s\nwant: %s", query, st_buf_cstr(&got), want);
    st_buf_free(&got);
    sctx_free(&s);
}

static void test_unwrapped_ranges(void **state)
{
    (void)state;
    st_labels_t l1, l2, le;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr("{a=\"1\", g=\"x\"}"), &l1, err), 0);
    assert_int_equal(st_labels_parse(st_cstr("{a=\"2\", g=\"x\"}"), &l2, err), 0);
    assert_int_equal(st_labels_parse(st_cstr("{__error__=\"SampleExtractionErr\", a=\"3\"}"), &le, err), 0);
    int64_t s = ST_NS_PER_SEC;
    /* a counter with a reset at 30s */
    const st_msample_t v[] = {
        {&l1, (T0 + 10) * s, 1}, {&l1, (T0 + 20) * s, 3}, {&l1, (T0 + 30) * s, 0}, {&l1, (T0 + 40) * s, 2}};
#define U(fn) fn "({a=\"1\"} | unwrap x [40s])"
    const char *S = "{a=\"1\", g=\"x\"}";
    char want[256];
#define EXPECT1(q, vals)                                                                                     \
    do {                                                                                                     \
        snprintf(want, sizeof want, "%s %s", S, vals);                                                       \
        expect_values(q, 40, 40, 0, v, 4, want);                                                             \
    } while (0)
    EXPECT1(U("sum_over_time"), "6");
    EXPECT1(U("avg_over_time"), "1.5");
    EXPECT1(U("min_over_time"), "0");
    EXPECT1(U("max_over_time"), "3");
    EXPECT1(U("stdvar_over_time"), "1.25");
    EXPECT1(U("stddev_over_time"), "1.118033988749895");
    EXPECT1(U("first_over_time"), "1");
    EXPECT1(U("last_over_time"), "2");
    EXPECT1(U("rate"), "0.15"); /* sum / range */
    EXPECT1("quantile_over_time(0.5, {a=\"1\"} | unwrap x [40s])", "1.5");
    EXPECT1("quantile_over_time(0.9, {a=\"1\"} | unwrap x [40s])", "2.7");
    /* extrapolated counter rate: increase 1 + 3 (reset) = 4, extrapolated to the zero point 7.5s before
     * the first sample: 4 * 37.5 / 30 = 5 over 40s */
    EXPECT1(U("rate_counter"), "0.125");
    /* windows of a range query: (0,20] and (20,40] */
#define U20(fn) fn "({a=\"1\"} | unwrap x [20s])"
    snprintf(want, sizeof want, "%s 4 2", S);
    expect_values(U20("sum_over_time"), 20, 40, 20, v, 4, want);
    snprintf(want, sizeof want, "%s 1 0", S);
    expect_values(U20("first_over_time"), 20, 40, 20, v, 4, want);
    expect_values(U20("min_over_time"), 20, 40, 20, v, 4, want);
    snprintf(want, sizeof want, "%s 3 2", S);
    expect_values(U20("last_over_time"), 20, 40, 20, v, 4, want);
    expect_values(U20("max_over_time"), 20, 40, 20, v, 4, want);
    snprintf(want, sizeof want, "%s 1 1", S);
    expect_values(U20("stdvar_over_time"), 20, 40, 20, v, 4, want);
    /* (0,20]: 1 -> 3 extrapolated to its zero point: 3 over 20s; (20,40]: 0 -> 2, no extrapolation */
    snprintf(want, sizeof want, "%s 0.15 0.1", S);
    expect_values(U20("rate_counter"), 20, 40, 20, v, 4, want);
    /* grouping merges series; the order of samples does not matter */
    const st_msample_t two[] = {
        {&l2, (T0 + 35) * s, 10}, {&l1, (T0 + 10) * s, 1}, {&l2, (T0 + 5) * s, 7}, {&l1, (T0 + 40) * s, 2}};
    expect_values("max_over_time({a=~\"1|2\"} | unwrap x [40s]) by (g)", 40, 40, 0, two, 4, "{g=\"x\"} 10");
    expect_values("first_over_time({a=~\"1|2\"} | unwrap x [40s]) by (g)", 40, 40, 0, two, 4, "{g=\"x\"} 7");
    expect_values("last_over_time({a=~\"1|2\"} | unwrap x [40s]) by (g)", 40, 40, 0, two, 4, "{g=\"x\"} 2");
    expect_values("avg_over_time({a=~\"1|2\"} | unwrap x [40s]) without (a)", 40, 40, 0, two, 4,
                  "{g=\"x\"} 5");
    expect_values("sum by (g) (sum_over_time({a=~\"1|2\"} | unwrap x [40s]))", 40, 40, 0, two, 4,
                  "{g=\"x\"} 20");
    expect_values("sum(rate({a=~\"1|2\"} | unwrap x [40s]))", 40, 40, 0, two, 4, "{} 0.5");
    expect_values("quantile_over_time(0.5, {a=~\"1|2\"} | unwrap x [40s]) by (g)", 40, 40, 0, two, 4,
                  "{g=\"x\"} 4.5");
    /* an erroring series fails the query */
    const st_msample_t bad[] = {{&l1, (T0 + 10) * s, 1}, {&le, (T0 + 20) * s, 0}};
    sctx_t sc;
    assert_int_equal(
        eval_samples(&sc, "max_over_time({a=~\".+\"} | unwrap x [40s]) by (a)", 40, 40, 0, bad, 2),
        ST_EPARSE);
    assert_int_equal(sc.err.status, 400);
    assert_non_null(strstr(
        st_buf_cstr(&sc.err.msg),
        "pipeline error: 'SampleExtractionErr' for series: '{__error__=\"SampleExtractionErr\", a=\"3\"}'"));
    sctx_free(&sc);
    st_labels_free(&l1);
    st_labels_free(&l2);
    st_labels_free(&le);
}

static void test_pure_functions(void **state)
{
    (void)state;
    double q[] = {3, 1, 2};
    assert_true(st_metric_quantile(0.5, q, 3) == 2);
    assert_true(isnan(st_metric_quantile(0.5, q, 0)));
    assert_true(isinf(st_metric_quantile(-1, q, 3)) && st_metric_quantile(-1, q, 3) < 0);
    assert_true(isinf(st_metric_quantile(2, q, 3)) && st_metric_quantile(2, q, 3) > 0);
    /* a plain counter sampled every 10s in a 60s window, samples 5s from both edges: extrapolated
     * half an interval on each side: increase 50 over 50s -> 60 over 60s = 1/s */
    int64_t ts[] = {5, 15, 25, 35, 45, 55};
    double v[] = {10, 20, 30, 40, 50, 60};
    for (int i = 0; i < 6; i++) ts[i] *= ST_NS_PER_SEC;
    double r = st_metric_extrapolated_rate(ts, v, 6, 60 * ST_NS_PER_SEC, 60 * ST_NS_PER_SEC, true, true);
    assert_true(fabs(r - 1.0) < 1e-12);
    assert_true(st_metric_apply(ST_LOGQL_BIN_DIV, 1, 0) != st_metric_apply(ST_LOGQL_BIN_DIV, 1, 0)); /* NaN */
    assert_true(st_metric_apply(ST_LOGQL_BIN_POW, 2, 10) == 1024);
    assert_true(st_metric_apply(ST_LOGQL_BIN_MOD, -7, 3) == -1);
    /* the fast float formatter agrees with st_json_put_float_str */
    uint64_t seed = 7;
    st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT;
    for (int i = 0; i < 200000; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        double x;
        switch (i % 4) {
        case 0: memcpy(&x, &seed, sizeof x); break;                              /* any bit pattern */
        case 1: x = (double)(seed >> 11) / (double)(1 + (seed & 0xffff)); break; /* ratios */
        case 2: x = (double)(int64_t)(seed >> 20) / 1000.0; break;               /* decimals */
        default: x = (double)(seed % 1000) * 1e-7 + (double)(seed >> 54); break;
        }
        if (isnan(x)) continue;
        st_buf_reset(&a);
        st_buf_reset(&b);
        st_metric_put_float(&a, x);
        st_json_put_float_str(&b, x);
        if (strcmp(st_buf_cstr(&a), st_buf_cstr(&b)) != 0)
            fail_msg("%a: %s vs %s", x, st_buf_cstr(&a), st_buf_cstr(&b));
    }
    st_buf_free(&a);
    st_buf_free(&b);
}

/* Sample times as Prometheus prints them, negative ones included (-2 ms is -0.002, not -1.998). */
static void test_put_time(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } c[] = {{0, "0"}, {1500, "1.5"}, {1234567, "1234.567"}, {1700000000120, "1700000000.12"},
             {-2, "-0.002"}, {-1500, "-1.5"}, {-3000, "-3"}, {999, "0.999"}, {10, "0.01"}};
    st_buf_t b = ST_BUF_INIT;
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        st_buf_reset(&b);
        st_metric_put_time(&b, c[i].ms * ST_NS_PER_MS);
        assert_string_equal(st_buf_cstr(&b), c[i].want);
    }
    st_buf_reset(&b);
    st_metric_put_time(&b, 1999999); /* 1.999999 ms: truncated to 1 ms */
    assert_string_equal(st_buf_cstr(&b), "0.001");
    st_buf_free(&b);
}

/* count/bytes over many entries per block against brute force, for ranges shorter and longer than
 * the step, offsets, unaligned starts, line filters (one, and two where the first one's prefilter
 * marks lines the second drops) and series split by structured metadata. */
static void test_randomized(void **state)
{
    (void)state;
    static const struct {
        int64_t range_ms, step_ms, offset_ms, start_ms, end_ms;
    } cases[] = {
        {60000, 60000, 0, 1000000, 2000000},  {60000, 15000, 0, 1000000, 2000000},
        {10000, 60000, 0, 999999, 2010000},   {300000, 7000, 0, 1100000, 1900000},
        {1, 1, 0, 1500000, 1500999},          {60000, 30000, 45000, 1040001, 2000000},
        {3600000, 60000, 0, 900000, 2100000}, {59999, 60000, -30000, 1000000, 2000000},
        {60000, 0, 0, 1500000, 1500000}, /* instant */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int variant = 0; variant < 5; variant++) {
            const char *fn = variant == 1 ? "bytes_over_time" : "count_over_time";
            /* variant 4: a second filter drops most lines the first one's literal marks (only the
             * one-byte line "x" has no "ax") */
            const char *filter = variant == 2 ? " |= \"x\"" : variant == 4 ? " |= \"x\" != \"ax\"" : "";
            char q[256];
            snprintf(q, sizeof q, "%s%s({app=\"r\"}%s [%lldms] offset %lldms)%s",
                     variant == 3 ? "" : "sum by (level) (", fn, filter, (long long)cases[c].range_ms,
                     (long long)cases[c].offset_ms, variant == 3 ? "" : ")");
            st_logql_expr_t *e;
            char err[512];
            if (st_logql_parse(q, strlen(q), &e, err, sizeof err) != 0) fail_msg("%s: %s", q, err);
            st_query_error_t qe;
            memset(&qe, 0, sizeof qe);
            st_mctx_t mc;
            memset(&mc, 0, sizeof mc);
            mc.q = env.q;
            mc.tenant = "tenant";
            mc.err = &qe;
            mc.deadline = INT64_MAX;
            mc.max_series = 500;
            mc.steps.start = T0 * ST_NS_PER_SEC + cases[c].start_ms * ST_NS_PER_MS;
            mc.steps.step = cases[c].step_ms * ST_NS_PER_MS;
            mc.steps.n =
                cases[c].step_ms ? (size_t)((cases[c].end_ms - cases[c].start_ms) / cases[c].step_ms) + 1 : 1;
            mc.instant = cases[c].step_ms == 0;
            st_matrix_t m;
            if (st_metric_eval(&mc, e, &m) < 0) fail_msg("%s: %s", q, st_buf_cstr(&qe.msg));
            assert_true(m.n <= 3);
            for (int level = 0; level < 3; level++) {
                const st_mseries_t *ser = NULL;
                for (size_t x = 0; x < m.n; x++) {
                    st_str_t v;
                    bool has = st_labels_get(&m.s[x].labels, ST_STR("level"), &v);
                    if ((level == 0 && !has) || (level && has && v.p[0] == "-ab"[level])) ser = &m.s[x];
                }
                for (size_t i = 0; i < mc.steps.n; i++) {
                    int64_t t = st_msteps_at(&mc.steps, i) - cases[c].offset_ms * ST_NS_PER_MS;
                    int64_t cnt = 0, bytes = 0;
                    for (int k = 0; k < RN; k++) {
                        if (rts[k] <= t - cases[c].range_ms * ST_NS_PER_MS || rts[k] > t ||
                            rlevel[k] != level)
                            continue;
                        if (variant == 2 && !rx[k]) continue;
                        if (variant == 4 && !(rx[k] && rlen[k] == 1)) continue;
                        cnt++;
                        bytes += rlen[k];
                    }
                    bool has = ser && st_mseries_has(ser, i);
                    if (has != (cnt > 0))
                        fail_msg("%s level %d step %zu: present %d, want %lld entries", q, level, i, has,
                                 (long long)cnt);
                    double want = variant == 1 ? (double)bytes : (double)cnt;
                    if (has && ser->v[i] != want)
                        fail_msg("%s level %d step %zu: %g, want %g", q, level, i, ser->v[i], want);
                }
            }
            st_matrix_free(&m);
            st_query_error_free(&qe);
            st_buf_free(&mc.scratch);
            st_logql_free(e);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pure_functions),   cmocka_unit_test(test_put_time),   cmocka_unit_test(test_unwrapped_ranges),
        cmocka_unit_test(test_windows),          cmocka_unit_test(test_rates_and_bytes),
        cmocka_unit_test(test_series_identity),  cmocka_unit_test(test_absent),
        cmocka_unit_test(test_pipeline_errors),  cmocka_unit_test(test_vector_aggregations),
        cmocka_unit_test(test_binary_operators), cmocka_unit_test(test_literals_and_label_replace),
        cmocka_unit_test(test_series_limit),     cmocka_unit_test(test_randomized),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
