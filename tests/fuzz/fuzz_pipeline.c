/* fuzz_pipeline.c: libFuzzer target for the LogQL pipeline's parsers and stages. The input is a log
 * line (and, after a NUL, structured metadata as "name=value" lines); it runs through a fixed set of
 * compiled pipelines covering json (flat and paths), logfmt (--strict, --keep-empty, keys), regexp,
 * pattern, unpack, label filters of every type, line_format/label_format, drop/keep, decolorize and
 * unwrap. Results must be self-consistent: the hash is the hash of the canonical labels, labels are
 * sorted and unique, the verdict-only run agrees with the full run, and a line kept by a parser's
 * name="value" filter holds the value (what the scans' value prefilter relies on). */
#include "common/hash.h"
#include "querier/querier_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const queries[] = {
    "{a=\"b\"} | json",
    "{a=\"b\"} | json | level=\"error\" or status >= 500",
    "{a=\"b\"} | json x=\"a.b[0]\", y=`[\"c\"][\"d\"]`, z=\"e[1].f\"",
    "{a=\"b\"} | logfmt",
    "{a=\"b\"} | logfmt --strict --keep-empty | __error__=\"\"",
    "{a=\"b\"} | logfmt level, d=\"duration\" | d > 1s",
    "{a=\"b\"} | logfmt | level=~\"err.*\" | size > 1KB",
    "{a=\"b\"} | regexp \"(?P<first>\\\\w+) (?P<second>\\\\S*)\"",
    "{a=\"b\"} | pattern \"<ip> - <_> [<ts>] \\\"<method> <path> <_>\\\" <status>\"",
    "{a=\"b\"} | unpack | json",
    "{a=\"b\"} | logfmt | json | line_format \"{{.level}} {{ __line__ | trunc 20 }}\" |= \"e\"",
    "{a=\"b\"} | json | label_format lvl=level, both=\"{{.a}}-{{.level}}\" | drop msg | keep lvl, both, a",
    "{a=\"b\"} | decolorize | logfmt | addr = ip(\"10.0.0.0/8\")",
    "{a=\"b\"} |= \"a\" | json | logfmt | drop __error__",
    /* value prefilter (st_pipeline_value_literal): a kept line must hold the value */
    "{a=\"b\"} | json | status=\"500\"",
    "{a=\"b\"} | logfmt | user=\"admin\", code=~\"4..\"",
    "{a=\"b\"} |= \"m\" | json | msg=\"ok\" | line_format \"{{.msg}}\"",
};

static const char *const metrics[] = {
    "sum_over_time({a=\"b\"} | logfmt | unwrap latency [1m])",
    "sum_over_time({a=\"b\"} | json | unwrap bytes(size) [1m])",
    "sum_over_time({a=\"b\"} | logfmt | unwrap duration(d) | __error__=\"\" [1m])",
};

#define NQ (sizeof queries / sizeof queries[0])
#define NM (sizeof metrics / sizeof metrics[0])

static st_logql_expr_t *exprs[NQ + NM];
static st_pipeline_t *pls[NQ + NM];
static st_labels_t stream;

static void init(void)
{
    char err[512];
    if (st_labels_parse(ST_STR("{a=\"b\", level=\"stream\"}"), &stream, err) != 0) abort();
    for (size_t i = 0; i < NQ + NM; i++) {
        const char *q = i < NQ ? queries[i] : metrics[i - NQ];
        if (st_logql_parse(q, strlen(q), &exprs[i], err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", q, err);
            abort();
        }
        const st_logql_expr_t *e = exprs[i];
        const st_logql_pipeline_t *pl = i < NQ ? &e->log.pipeline : &e->range_agg.range.pipeline;
        const st_logql_unwrap_t *u = i < NQ ? NULL : e->range_agg.range.unwrap;
        char perr[256];
        if (st_pipeline_compile(pl, u, &pls[i], perr) != 0) {
            fprintf(stderr, "%s: %s\n", q, perr);
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (pls[0] == NULL) init();
    const char *p = (const char *)data;
    const char *z = memchr(p, '\0', size);
    st_str_t line = st_str(p, z ? (size_t)(z - p) : size);
    st_buf_t md = ST_BUF_INIT;
    if (z != NULL) {
        st_str_t names[8], values[8];
        size_t n = 0;
        const char *q = z + 1, *end = p + size;
        while (q < end && n < 8) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            const char *e = nl ? nl : end;
            const char *eq = memchr(q, '=', (size_t)(e - q));
            if (eq != NULL && eq > q) {
                names[n] = st_str(q, (size_t)(eq - q));
                values[n] = st_str(eq + 1, (size_t)(e - eq - 1));
                n++;
            }
            q = e + 1;
        }
        if (st_md_encode(&md, names, values, n) != 0) abort();
    }
    st_buf_t text = ST_BUF_INIT;
    for (size_t i = 0; i < NQ + NM; i++) {
        st_pipeline_result_t r;
        if (st_pipeline_run(pls[i], 1, line, &stream, st_str(md.data, md.len), &r) != 0) abort();
        bool kept = st_pipeline_keep_line(pls[i], line) &&
                    st_pipeline_test_kept(pls[i], 1, line, &stream, st_str(md.data, md.len)) == 1;
        if (kept != r.keep) abort();
        st_str_t vn, vv, unused;
        if (r.keep && st_pipeline_value_literal(pls[i], &vn, &vv) &&
            (line.n < vv.n || memmem(line.p, line.n, vv.p, vv.n) == NULL) && memchr(line.p, '\\', line.n) == NULL &&
            !st_labels_get(&stream, vn, &unused)) {
            /* kept without the value: only metadata named vn may explain it */
            st_md_iter_t it;
            st_md_iter_init(&it, st_str(md.data, md.len));
            st_str_t mn, mv;
            bool has = false;
            while (!has && st_md_next(&it, &mn, &mv) == 1) has = st_str_eq(mn, vn);
            if (!has) abort();
        }
        /* the verdict-only run must not disturb a following full run */
        if (st_pipeline_run(pls[i], 1, line, &stream, st_str(md.data, md.len), &r) != 0) abort();
        if (!r.keep) continue;
        st_buf_reset(&text);
        if (st_labels_format(r.labels, &text) != 0) abort();
        if (r.hash != st_hash64(text.data, text.len)) abort();
        for (size_t k = 1; k < r.labels->n; k++)
            if (st_str_cmp(r.labels->v[k - 1].name, r.labels->v[k].name) >= 0) abort();
        if (r.has_value != (i >= NQ)) abort();
    }
    st_buf_free(&text);
    st_buf_free(&md);
    return 0;
}
