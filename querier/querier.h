/* querier.h: LogQL evaluation over the index, chunk files and the ingester's memory, with results
 * encoded in Loki's JSON shapes.
 *
 * A query selects streams through the index (per UTC day) and the ingester's snapshot, reads only
 * the chunk blocks that overlap the time range, runs the compiled pipeline on each entry, and merges
 * streams in the requested direction, stopping at the limit. Functions run on any thread; each call
 * is independent. Parsing lives in querier/logql/logql.h. */
#ifndef ST_QUERIER_QUERIER_H
#define ST_QUERIER_QUERIER_H

#include "common/buf.h"
#include "common/labels.h"
#include "index/index.h"
#include "ingester/ingester.h"
#include "querier/logql/logql.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct st_querier st_querier_t;

typedef struct {
    st_index_t *index;        /* borrowed */
    st_ingester_t *ingester;  /* borrowed; NULL for offline use (chunks and index only) */
    const char *chunks_dir;   /* root that local chunk locations are relative to */
    int max_query_series;     /* 500: series of a metric result / streams of a log result */
    int64_t query_timeout_ns; /* 1m */
    int threads;              /* worker threads for block decompression (0 = one per CPU) */
} st_querier_opts_t;

int st_querier_new(const st_querier_opts_t *o, st_querier_t **out);
void st_querier_free(st_querier_t *q); /* NULL-safe */

/* A query_range / query request, already validated by the HTTP layer. */
typedef struct {
    const char *tenant;
    st_str_t query;
    int64_t start, end;      /* log queries: [start, end); metric: steps from start to end inclusive */
    int64_t step_ns;         /* metric range queries */
    int64_t interval_ns;     /* log queries: at most one entry per interval (0 = off) */
    int limit;               /* log queries: max entries */
    bool forward;            /* direction */
    bool instant;            /* /query: evaluate at end only */
    bool categorize_labels;  /* X-Loki-Response-Encoding-Flags: categorize-labels */
} st_query_t;

/* Outcome of a failed call: HTTP status and Loki's message text. */
typedef struct {
    int status;
    st_buf_t msg;
} st_query_error_t;

void st_query_error_free(st_query_error_t *e);

/* Runs a query and appends Loki's JSON response envelope ({"status":"success","data":{...}}).
 * Returns 0, or <0 with err filled (400 for bad queries, 504 for timeouts, 500 otherwise). */
int st_query_exec(st_querier_t *q, const st_query_t *req, st_buf_t *out, st_query_error_t *err);

/* /labels: label names in [start, end], optionally narrowed by a selector. */
int st_query_label_names(st_querier_t *q, const char *tenant, int64_t start, int64_t end, st_str_t selector,
                         st_buf_t *out, st_query_error_t *err);
/* /label/<name>/values */
int st_query_label_values(st_querier_t *q, const char *tenant, st_str_t name, int64_t start, int64_t end,
                          st_str_t selector, st_buf_t *out, st_query_error_t *err);
/* /series: label sets of streams matching any of the selectors ({} or none: all streams). */
int st_query_series(st_querier_t *q, const char *tenant, const st_str_t *selectors, size_t nsel, int64_t start,
                    int64_t end, st_buf_t *out, st_query_error_t *err);

#endif
