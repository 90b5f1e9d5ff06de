/* pipeline_bench.c: throughput of compiled LogQL pipelines (parsers, label filters, formatting) over
 * generated logfmt and JSON lines, as the log and metric queries run them: st_pipeline_keep_line
 * then st_pipeline_run on every entry. Reports MB/s and lines/s for one thread and for N threads
 * (one pipeline clone each). Usage: strata-pipeline-bench [lines] [threads] [query substring, or =query] */
#include "common/err.h"
#include "common/timeutil.h"
#include "querier/querier_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *text;  /* all lines back to back */
    size_t *off; /* n + 1 offsets */
    size_t n;
} lines_t;

static uint64_t rnd_state = 42;
static uint32_t rnd(void)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rnd_state >> 33);
}

static void gen(lines_t *l, size_t n, bool json)
{
    static const char *const levels[] = {"debug", "info", "info", "info", "warn", "error"};
    static const char *const paths[] = {
        "/", "/login", "/api/v1/users", "/api/v1/orders", "/static/app.js", "/health"};
    st_buf_t b = ST_BUF_INIT;
    l->off = malloc((n + 1) * sizeof *l->off);
    l->n = n;
    for (size_t i = 0; i < n; i++) {
        l->off[i] = b.len;
        const char *lvl = levels[rnd() % 6];
        unsigned status = (unsigned[]){200, 200, 201, 404, 500}[rnd() % 5];
        if (json) {
            st_buf_printf(
                &b,
                "{\"ts\":\"2024-05-01T10:%02u:%02u.%06uZ\",\"level\":\"%s\",\"caller\":\"handler.go:%u\","
                "\"msg\":\"request done\",\"method\":\"GET\",\"path\":\"%s\",\"status\":%u,"
                "\"duration_ms\":%u.%u,\"user\":{\"id\":\"u%u\",\"org\":\"o%u\"},\"trace_id\":\"%08x%08x\"}",
                rnd() % 60, rnd() % 60, rnd() % 1000000, lvl, rnd() % 300, paths[rnd() % 6], status,
                rnd() % 2000, rnd() % 10, rnd() % 100, rnd() % 10, rnd(), rnd());
        } else {
            st_buf_printf(
                &b,
                "ts=2024-05-01T10:%02u:%02u.%06uZ level=%s caller=handler.go:%u msg=\"request done\" "
                "method=GET path=%s status=%u duration=%u.%ums user=u%u org=o%u trace_id=%08x%08x",
                rnd() % 60, rnd() % 60, rnd() % 1000000, lvl, rnd() % 300, paths[rnd() % 6], status,
                rnd() % 2000, rnd() % 10, rnd() % 100, rnd() % 10, rnd(), rnd());
        }
    }
    l->off[n] = b.len;
    l->text = st_buf_steal(&b, NULL);
}

typedef struct {
    _Alignas(64) st_pipeline_t *p; /* one cache line per job: no false sharing */
    const lines_t *l;
    const st_labels_t *stream;
    size_t from, to;
    size_t kept;
    bool verdict; /* st_pipeline_test_kept instead of st_pipeline_run_kept */
} job_t;

static void *work(void *arg)
{
    job_t *j = arg;
    st_pipeline_result_t res;
    st_pipeline_t *p = j->p;
    const lines_t *l = j->l;
    size_t kept = 0;
    for (size_t i = j->from; i < j->to; i++) {
        st_str_t line = st_str(l->text + l->off[i], l->off[i + 1] - l->off[i]);
        if (!st_pipeline_keep_line(p, line)) continue;
        if (j->verdict) {
            int rc = st_pipeline_test_kept(p, (int64_t)i, line, j->stream, st_str("", 0));
            if (rc < 0) abort();
            kept += (size_t)rc;
            continue;
        }
        if (st_pipeline_run_kept(p, (int64_t)i, line, j->stream, st_str("", 0), &res) < 0) abort();
        kept += res.keep;
    }
    j->kept = kept;
    return NULL;
}

static const char *only; /* run only queries containing this text */

static void bench1(const char *q, const lines_t *l, int threads, bool verdict);

/* Each query twice: building the result labels (metric queries), and the verdict only (what the log
 * query's workers compute). */
static void bench(const char *q, const lines_t *l, int threads)
{
    bench1(q, l, threads, false);
    bench1(q, l, threads, true);
}

static void bench1(const char *q, const lines_t *l, int threads, bool verdict)
{
    if (only != NULL && (only[0] == '=' ? strcmp(q, only + 1) != 0 : strstr(q, only) == NULL)) return;
    st_logql_expr_t *e;
    char err[512];
    if (st_logql_parse(q, strlen(q), &e, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", q, err);
        exit(1);
    }
    const st_logql_pipeline_t *pl = &e->log.pipeline;
    const st_logql_unwrap_t *u = NULL;
    if (e->kind == ST_LOGQL_EXPR_RANGE_AGG) {
        pl = &e->range_agg.range.pipeline;
        u = e->range_agg.range.unwrap;
    }
    st_labels_t stream;
    if (st_labels_parse(ST_STR("{app=\"api\", env=\"prod\", host=\"web-1\"}"), &stream, err) != 0) abort();
    size_t bytes = l->off[l->n];
    for (int t = 1; t <= threads; t = t == threads ? threads + 1 : (t * 2 > threads ? threads : t * 2)) {
        job_t jobs[16];
        pthread_t th[16];
        for (int k = 0; k < t; k++) {
            char perr[256];
            if (st_pipeline_compile(pl, u, &jobs[k].p, perr) != 0) {
                fprintf(stderr, "%s: %s\n", q, perr);
                exit(1);
            }
            jobs[k].l = l;
            jobs[k].stream = &stream;
            jobs[k].from = l->n * (size_t)k / (size_t)t;
            jobs[k].to = l->n * (size_t)(k + 1) / (size_t)t;
            jobs[k].verdict = verdict;
        }
        /* warm up, then the best of three */
        double best = 1e30;
        size_t kept = 0;
        for (int rep = 0; rep < 4; rep++) {
            int64_t t0 = st_mono_ns();
            for (int k = 0; k < t; k++) pthread_create(&th[k], NULL, work, &jobs[k]);
            kept = 0;
            for (int k = 0; k < t; k++) {
                pthread_join(th[k], NULL);
                kept += jobs[k].kept;
            }
            double s = (double)(st_mono_ns() - t0) / 1e9;
            if (rep > 0 && s < best) best = s;
        }
        printf("%-70s %-7s %d thr %6.0f MB/s %6.2f M lines/s  kept %5.1f%%\n", q,
               verdict ? "verdict" : "labels", t, (double)bytes / best / 1e6, (double)l->n / best / 1e6,
               100.0 * (double)kept / (double)l->n);
        for (int k = 0; k < t; k++) st_pipeline_free(jobs[k].p);
    }
    st_labels_free(&stream);
    st_logql_free(e);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 400000;
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    if (threads < 1) threads = 1;
    if (threads > 16) threads = 16;
    only = argc > 3 ? argv[3] : NULL;
    lines_t lf, js;
    gen(&lf, n, false);
    gen(&js, n, true);
    printf("%zu logfmt lines (%.1f MB, %.0f B/line), %zu JSON lines (%.1f MB, %.0f B/line)\n", n,
           (double)lf.off[n] / 1e6, (double)lf.off[n] / (double)n, n, (double)js.off[n] / 1e6,
           (double)js.off[n] / (double)n);
    bench("{app=\"api\"} |= \"level=error\"", &lf, threads);
    bench("{app=\"api\"} | logfmt", &lf, threads);
    bench("{app=\"api\"} | logfmt | level=\"error\"", &lf, threads);
    bench("{app=\"api\"} | logfmt | status >= 500 | duration > 1s", &lf, threads);
    bench("{app=\"api\"} |= \"error\" | logfmt | level=\"error\"", &lf, threads);
    bench("{app=\"api\"} | logfmt level, status | level=\"error\"", &lf, threads);
    bench("{app=\"api\"} | logfmt | line_format \"{{.level}} {{.msg}} {{.path}}\"", &lf, threads);
    bench("{app=\"api\"} | logfmt | label_format lvl=level | drop ts, trace_id", &lf, threads);
    bench("sum_over_time({app=\"api\"} | logfmt | unwrap duration(duration) [1m])", &lf, threads);
    bench("{app=\"api\"} | pattern \"<_> level=<level> <_> status=<status> <_>\"", &lf, threads);
    bench("{app=\"api\"} | regexp \"level=(?P<level>\\\\w+).*status=(?P<status>\\\\d+)\"", &lf, threads);
    bench("{app=\"api\"} | json", &js, threads);
    bench("{app=\"api\"} | json | level=\"error\"", &js, threads);
    bench("{app=\"api\"} | json level, status | status >= 500", &js, threads);
    bench("{app=\"api\"} | json | line_format \"{{.level | ToUpper}}: {{.msg}}\"", &js, threads);
    free(lf.text);
    free(lf.off);
    free(js.text);
    free(js.off);
    return 0;
}
