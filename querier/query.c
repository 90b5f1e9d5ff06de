/* query.c: the querier's entry points: query dispatch (log vs metric), labels, label values and
 * series, and Loki's stats object. */
#include "querier/querier_int.h"
#include "querier/metric_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/pool.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int st_querier_new(const st_querier_opts_t *o, st_querier_t **out)
{
    st_querier_t *q = calloc(1, sizeof *q);
    if (q == NULL) return -ENOMEM;
    q->o = *o;
    q->threads = o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (q->threads <= 0) q->threads = 1;
    int rc = st_pool_new(q->threads, &q->pool);
    if (rc < 0) {
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

void st_querier_free(st_querier_t *q)
{
    if (q == NULL) return;
    st_pool_free(q->pool);
    free(q);
}

int st_qstats_json(const st_qstats_t *s, st_buf_t *out)
{
    double exec = (double)(st_mono_ns() - s->start_mono) / 1e9;
    if (exec <= 0) exec = 1e-9;
    uint64_t store_lines = s->lines - s->head_lines, store_bytes = s->bytes - s->head_bytes;
    st_buf_printf(out,
                  "\"stats\":{\"summary\":{\"bytesProcessedPerSecond\":%llu,\"linesProcessedPerSecond\":%llu,"
                  "\"totalBytesProcessed\":%llu,\"totalLinesProcessed\":%llu,\"execTime\":%.9f,\"queueTime\":0,"
                  "\"subqueries\":0,\"totalEntriesReturned\":%llu,\"splits\":0,\"shards\":0,"
                  "\"totalPostFilterLines\":%llu,\"totalStructuredMetadataBytesProcessed\":%llu},",
                  (unsigned long long)((double)(s->bytes + s->md_bytes) / exec), (unsigned long long)((double)s->lines / exec),
                  (unsigned long long)(s->bytes + s->md_bytes), (unsigned long long)s->lines, exec,
                  (unsigned long long)s->entries_returned, (unsigned long long)s->post_filter_lines,
                  (unsigned long long)s->md_bytes);
    st_buf_printf(out,
                  "\"querier\":{\"store\":{\"totalChunksRef\":%llu,\"totalChunksDownloaded\":%llu,"
                  "\"chunksDownloadTime\":0,\"queryReferencedStructuredMetadata\":false,\"chunkRefsFetchTime\":0,"
                  "\"congestionControlLatency\":0,\"pipelineWrapperFilteredLines\":0,"
                  "\"chunk\":{\"headChunkBytes\":0,\"headChunkLines\":0,\"decompressedBytes\":%llu,"
                  "\"decompressedLines\":%llu,\"compressedBytes\":%llu,\"totalDuplicates\":0,"
                  "\"postFilterLines\":%llu,\"headChunkStructuredMetadataBytes\":0,"
                  "\"decompressedStructuredMetadataBytes\":0},\"dataobj\":{}}},",
                  (unsigned long long)s->chunks_ref, (unsigned long long)s->chunks_downloaded,
                  (unsigned long long)store_bytes, (unsigned long long)store_lines,
                  (unsigned long long)s->compressed_bytes, (unsigned long long)(s->post_filter_lines));
    st_buf_printf(out,
                  "\"ingester\":{\"totalReached\":%d,\"totalChunksMatched\":0,\"totalBatches\":0,"
                  "\"totalLinesSent\":0,\"store\":{\"totalChunksRef\":0,\"totalChunksDownloaded\":0,"
                  "\"chunksDownloadTime\":0,\"queryReferencedStructuredMetadata\":false,\"chunkRefsFetchTime\":0,"
                  "\"congestionControlLatency\":0,\"pipelineWrapperFilteredLines\":0,"
                  "\"chunk\":{\"headChunkBytes\":%llu,\"headChunkLines\":%llu,\"decompressedBytes\":0,"
                  "\"decompressedLines\":0,\"compressedBytes\":0,\"totalDuplicates\":0,\"postFilterLines\":0,"
                  "\"headChunkStructuredMetadataBytes\":0,\"decompressedStructuredMetadataBytes\":0},"
                  "\"dataobj\":{}}},",
                  s->head_lines ? 1 : 0, (unsigned long long)s->head_bytes, (unsigned long long)s->head_lines);
    st_buf_puts(out, "\"cache\":{");
    static const char *const caches[] = {"chunk", "index", "result", "statsResult", "volumeResult",
                                         "seriesResult", "labelResult", "instantMetricResult"};
    for (int i = 0; i < 8; i++) {
        st_buf_printf(out,
                      "%s\"%s\":{\"entriesFound\":0,\"entriesRequested\":0,\"entriesStored\":0,\"bytesReceived\":0,"
                      "\"bytesSent\":0,\"requests\":0,\"downloadTime\":0,\"queryLengthServed\":0}",
                      i ? "," : "", caches[i]);
    }
    st_buf_puts(out, "},\"index\":{\"totalChunks\":");
    st_buf_printf(out, "%llu,\"postFilterChunks\":%llu,\"shardsDuration\":0,\"usedBloomFilters\":false}}",
                  (unsigned long long)s->chunks_ref, (unsigned long long)s->chunks_ref);
    return 0;
}

static int parse_query(st_str_t text, st_logql_expr_t **e, st_query_error_t *err)
{
    char msg[1024];
    int rc = st_logql_parse(text.p, text.n, e, msg, sizeof msg);
    if (rc == ST_EPARSE) return st_qerr(err, 400, rc, "%s", msg);
    if (rc < 0) return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    return 0;
}

int st_query_exec(st_querier_t *q, const st_query_t *req, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e = NULL;
    ST_TRY(parse_query(req->query, &e, err));
    int rc;
    if (st_logql_is_log_query(e)) {
        if (req->instant)
            rc = st_qerr(err, 400, ST_EPARSE,
                         "log queries are not supported as an instant query type, please change your query to a range "
                         "query type");
        else
            rc = st_exec_log_query(q, req, e, out, err);
    } else {
        rc = st_exec_metric_query(q, req, e, out, err);
    }
    st_logql_free(e);
    return rc;
}

/* ---- labels and series -------------------------------------------------------------------------- */

/* Parses an optional selector given to a metadata endpoint (a log query; its pipeline is ignored). */
static int parse_selector(st_str_t text, st_logql_expr_t **e, const st_logql_selector_t **sel, st_query_error_t *err)
{
    *e = NULL;
    *sel = NULL;
    if (text.n == 0) return 0;
    ST_TRY(parse_query(text, e, err));
    if (!st_logql_is_log_query(*e)) {
        st_logql_free(*e);
        *e = NULL;
        return st_qerr(err, 400, ST_EPARSE, "parse error : only log queries are supported as selectors");
    }
    *sel = &(*e)->log.selector;
    return 0;
}

static void put_strvec(st_buf_t *out, const st_strvec_t *v)
{
    st_buf_puts(out, "{\"status\":\"success\",\"data\":[");
    for (size_t i = 0; i < v->n; i++) {
        if (i) st_buf_putc(out, ',');
        st_json_put_str(out, st_strvec_at(v, i));
    }
    st_buf_puts(out, "]}");
}

/* Streams of the tenant overlapping [start, end]: from the selector, or every stream. */
static int streams_in_range(st_querier_t *q, const char *tenant, const st_logql_selector_t *sel, int64_t start,
                            int64_t end, qsel_t *out)
{
    st_logql_selector_t none = {NULL, 0};
    st_qstats_t stats;
    memset(&stats, 0, sizeof stats);
    return st_qsel_build(q, tenant, sel ? sel : &none, start, end, false, out, &stats);
}

int st_query_label_names(st_querier_t *q, const char *tenant, int64_t start, int64_t end, st_str_t selector,
                         st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    const st_logql_selector_t *sel;
    ST_TRY(parse_selector(selector, &e, &sel, err));
    qsel_t s;
    int rc = streams_in_range(q, tenant, sel, start, end, &s);
    if (rc < 0) {
        st_logql_free(e);
        return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    }
    st_strvec_t names = ST_STRVEC_INIT;
    for (size_t i = 0; i < s.nstreams && rc == 0; i++)
        for (size_t k = 0; k < s.streams[i].labels.n && rc == 0; k++)
            rc = st_strvec_push(&names, s.streams[i].labels.v[k].name);
    st_strvec_sort_unique(&names);
    if (rc == 0) put_strvec(out, &names);
    else st_qerr(err, 500, rc, "%s", st_strerror(rc));
    st_strvec_free(&names);
    st_qsel_free(&s);
    st_logql_free(e);
    return rc;
}

int st_query_label_values(st_querier_t *q, const char *tenant, st_str_t name, int64_t start, int64_t end,
                          st_str_t selector, st_buf_t *out, st_query_error_t *err)
{
    st_logql_expr_t *e;
    const st_logql_selector_t *sel;
    ST_TRY(parse_selector(selector, &e, &sel, err));
    qsel_t s;
    int rc = streams_in_range(q, tenant, sel, start, end, &s);
    if (rc < 0) {
        st_logql_free(e);
        return st_qerr(err, 500, rc, "%s", st_strerror(rc));
    }
    st_strvec_t vals = ST_STRVEC_INIT;
    for (size_t i = 0; i < s.nstreams && rc == 0; i++) {
        st_str_t v;
        if (st_labels_get(&s.streams[i].labels, name, &v)) rc = st_strvec_push(&vals, v);
    }
    st_strvec_sort_unique(&vals);
    if (rc == 0) put_strvec(out, &vals);
    else st_qerr(err, 500, rc, "%s", st_strerror(rc));
    st_strvec_free(&vals);
    st_qsel_free(&s);
    st_logql_free(e);
    return rc;
}

int st_query_series(st_querier_t *q, const char *tenant, const st_str_t *selectors, size_t nsel, int64_t start,
                    int64_t end, st_buf_t *out, st_query_error_t *err)
{
    st_strvec_t all = ST_STRVEC_INIT;
    int rc = 0;
    size_t loops = nsel ? nsel : 1;
    for (size_t i = 0; i < loops && rc == 0; i++) {
        st_logql_expr_t *e = NULL;
        const st_logql_selector_t *sel = NULL;
        st_str_t text = nsel ? selectors[i] : st_str("", 0);
        /* "{}" means every stream (Loki allows it here, unlike in queries) */
        bool all_streams = text.n == 0;
        if (!all_streams) {
            size_t a = 0, b = text.n;
            while (a < b && (text.p[a] == ' ' || text.p[a] == '\t')) a++;
            while (b > a && (text.p[b - 1] == ' ' || text.p[b - 1] == '\t')) b--;
            if (b - a >= 2 && text.p[a] == '{' && text.p[b - 1] == '}') {
                bool empty = true;
                for (size_t k = a + 1; k < b - 1; k++)
                    if (text.p[k] != ' ' && text.p[k] != '\t') empty = false;
                all_streams = empty;
            }
        }
        if (!all_streams && (rc = parse_selector(text, &e, &sel, err)) < 0) break;
        qsel_t s;
        rc = streams_in_range(q, tenant, sel, start, end, &s);
        st_logql_free(e);
        if (rc < 0) {
            st_qerr(err, 500, rc, "%s", st_strerror(rc));
            break;
        }
        for (size_t k = 0; k < s.nstreams && rc == 0; k++) rc = st_strvec_push(&all, st_cstr(s.streams[k].canon));
        st_qsel_free(&s);
    }
    if (rc == 0) {
        st_strvec_sort_unique(&all);
        st_buf_puts(out, "{\"status\":\"success\",\"data\":[");
        for (size_t i = 0; i < all.n && rc == 0; i++) {
            st_labels_t l;
            char perr[256];
            if ((rc = st_labels_parse(st_strvec_at(&all, i), &l, perr)) < 0) break;
            if (i) st_buf_putc(out, ',');
            st_buf_putc(out, '{');
            for (size_t k = 0; k < l.n; k++) {
                if (k) st_buf_putc(out, ',');
                st_json_put_str(out, l.v[k].name);
                st_buf_putc(out, ':');
                st_json_put_str(out, l.v[k].value);
            }
            st_buf_putc(out, '}');
            st_labels_free(&l);
        }
        st_buf_puts(out, "]}");
    }
    st_strvec_free(&all);
    return rc;
}
