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
    /* Chunks not on local disk (S3): makes one available as a local file region (path, *base) or
     * returns ST_EARCHIVED (then the query answers with a warning instead of the data). NULL: such
     * chunks are reported as unavailable in a warning. */
    int (*fetch)(void *arg, const st_chunk_ref_t *ref, char *path, size_t pathsz, uint64_t *base);
    void *fetch_arg;
    bool apply_deletes;       /* hide the lines of pending delete requests (deletion_mode != disabled) */
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

/* A parsed stream selector ({a="b", c=~"d.*"}) as label matchers, for rules outside queries. */
typedef struct {
    st_matcher_t *m; /* n matchers; regexes compiled (PCRE2), views valid while the selector lives */
    size_t n;
    struct st_logql_expr *expr; /* owned */
} st_selector_t;

/* Parses a selector without pipeline stages. Returns 0, ST_EPARSE (Loki's text in err) or -ENOMEM. */
int st_selector_parse(st_str_t text, st_selector_t **out, char *err, size_t errsz);
void st_selector_free(st_selector_t *s); /* NULL-safe */

/* The query of a delete request: a stream selector with optional line filters only
 * ({app="x"} |= "secret" != "public" |~ "card=[0-9]+"), as Loki's compactor accepts. */
typedef struct st_delexpr st_delexpr_t;
/* Parses; anything else (parsers, label filters, metric queries, bad syntax) is ST_EPARSE with
 * Loki's text "invalid query expression" in err. */
int st_delexpr_parse(st_str_t text, st_delexpr_t **out, char *err, size_t errsz);
void st_delexpr_free(st_delexpr_t *d); /* NULL-safe */
/* A copy for another thread (line filters keep scratch state); it borrows d's matchers, so free it first. */
int st_delexpr_clone(const st_delexpr_t *d, st_delexpr_t **out);
const st_matcher_t *st_delexpr_matchers(const st_delexpr_t *d, size_t *n);
bool st_delexpr_has_filters(const st_delexpr_t *d);
/* True when the line passes every line filter (so a delete request removes it); always true
 * without filters. One thread at a time per st_delexpr_t. */
bool st_delexpr_line(st_delexpr_t *d, st_str_t line);

/* ---- index and Drilldown-era endpoints (meta.c) ------------------------------------------------------
 * Queries are log queries (their pipelines are ignored where only streams matter); the index
 * endpoints and detected_labels also take "" or "{}" for every stream. Ranges are inclusive. Each call
 * appends the whole response body; on failure err says what to answer (400 for bad queries). */

/* /index/stats: {"streams":N,"chunks":N,"bytes":N,"entries":N} over chunks overlapping the range (whole
 * chunks, uncompressed line + metadata bytes) and the in-memory data. */
int st_query_index_stats(st_querier_t *q, const char *tenant, st_str_t query, int64_t start, int64_t end,
                         st_buf_t *out, st_query_error_t *err);

typedef struct {
    const char *tenant;
    st_str_t query;
    int64_t start, end;
    int64_t step_ns;               /* 0: /index/volume (one vector sample at end); else volume_range buckets */
    int limit;                     /* series per bucket (<= 0: 100) */
    const st_str_t *target_labels; /* aggregate into these names (must exist) instead of the matchers' */
    size_t ntarget;
    bool by_labels;                /* aggregateBy=labels: one series per label name {"<name>":""} */
} st_volume_req_t;

/* /index/volume(_range): bytes per series (or label), largest first, as a Prometheus vector or
 * matrix ({"status":"success","data":{"resultType":...,"result":[...]}}). */
int st_query_volume(st_querier_t *q, const st_volume_req_t *r, st_buf_t *out, st_query_error_t *err);

/* /detected_labels: {"detectedLabels":[{"label","cardinality"}]} of stream labels in range, without
 * labels whose values are all numbers or UUIDs (Loki's rule; cluster/namespace/instance/pod stay). */
int st_query_detected_labels(st_querier_t *q, const char *tenant, st_str_t query, int64_t start, int64_t end,
                             st_buf_t *out, st_query_error_t *err);

typedef struct {
    const char *tenant;
    st_str_t query;
    int64_t start, end; /* [start, end) as a log query */
    int line_limit;     /* lines sampled (newest first) */
    int limit;          /* fields (or values) returned */
    bool values;        /* /detected_field/<field>/values */
    st_str_t field;
} st_fields_req_t;

/* /detected_fields: {"fields":[{"label","type","cardinality","parsers","jsonPath"}],"limit":N} from
 * structured metadata (parsers null) and the lines parsed as JSON or else logfmt; with values set,
 * {"values":[...],"limit":N} of one field. */
int st_query_detected_fields(st_querier_t *q, const st_fields_req_t *r, st_buf_t *out, st_query_error_t *err);

typedef struct {
    const char *tenant;
    st_str_t query;
    int64_t start, end;
    int64_t step_ns; /* sample buckets */
} st_patterns_req_t;

/* /patterns: {"status":"success","data":[{"pattern","level","samples":[[<unix s>,<count>],...]}]} mined
 * with Drain from up to 10000 lines sampled across the range (counts are of sampled lines). */
int st_query_patterns(st_querier_t *q, const st_patterns_req_t *r, st_buf_t *out, st_query_error_t *err);

/* /api/prom/query: a log query in the legacy shape {"streams":[{"labels":"{..}","entries":[{"ts":
 * "<RFC3339Nano>","line":".."}]}],"stats":{...}}; metric queries are refused (400). */
int st_query_legacy(st_querier_t *q, const st_query_t *req, st_buf_t *out, st_query_error_t *err);

/* /format_query: appends {"status":"success","data":"<pretty query>"} and returns 0, or appends
 * {"status":"invalid-query","error":"parse error ..."} and returns ST_EPARSE (answer err->status 400
 * with that body). */
int st_query_format(st_str_t query, st_buf_t *out, st_query_error_t *err);

/* ---- live tail (tail.c) ------------------------------------------------------------------------------
 * A tailer follows one log query: it subscribes to the ingester (entries arrive on the WAL thread and
 * are only copied there, into a bounded buffer), and st_tailer_process, run on one thread at a time,
 * filters the buffered entries with the query's selector and compiled pipeline, holds entries for
 * delay_for, and returns them as tail items in time order. st_tail_encode builds Loki's messages. */

typedef struct st_tailer st_tailer_t;

typedef struct {
    const char *tenant;
    st_str_t query;
    int64_t delay_ns;        /* hold each entry until its timestamp + delay_ns has passed */
    bool categorize_labels;  /* third element per value (and encodingFlags in messages) */
    size_t max_buffer_bytes; /* entries waiting for st_tailer_process (0: 16 MiB); beyond: dropped */
    /* Called on the WAL thread when entries were buffered (or dropped); must be quick and thread safe. */
    void (*notify)(void *arg);
    void *arg;
} st_tail_opts_t;

/* One entry ready to send: labels and extra are JSON texts (the "stream" object; the categorize-labels
 * third element or empty), line the raw line; all three view mem, which the item owns. */
typedef struct {
    int64_t ts;
    st_str_t labels;
    st_str_t line;
    st_str_t extra;
    bool dropped; /* a marker only: the entry was dropped (labels and ts are valid) */
    void *mem;    /* owned */
} st_tail_item_t;

/* A growable array of items; moving an item (struct copy) moves its memory. */
typedef struct {
    st_tail_item_t *v;
    size_t n, cap;
} st_tail_batch_t;

void st_tail_batch_reset(st_tail_batch_t *b); /* frees the items, keeps the array */
void st_tail_batch_free(st_tail_batch_t *b);
/* Appends an item (texts copied). Returns 0 or -ENOMEM. */
int st_tail_batch_add(st_tail_batch_t *b, int64_t ts, st_str_t labels, st_str_t line, st_str_t extra, bool dropped);

/* Parses and compiles the query (log queries only). Returns 0, or ST_EPARSE with err 400 and Loki's
 * text. Nothing is subscribed yet. */
int st_tailer_new(st_querier_t *q, const st_tail_opts_t *o, st_tailer_t **out, st_query_error_t *err);
/* Sets delay_for (before st_tailer_start). */
void st_tailer_set_delay(st_tailer_t *t, int64_t delay_ns);
/* Subscribes to the ingester: entries applied from now on are buffered. */
int st_tailer_start(st_tailer_t *t);
/* Unsubscribes (when it returns, notify is not running and never runs again). Idempotent. */
void st_tailer_stop(st_tailer_t *t);
void st_tailer_free(st_tailer_t *t); /* stops first; NULL-safe */
/* Best-effort backfill: the newest `limit` entries of [start, end), oldest first, appended to out.
 * Live entries equal to one of these are not returned again by st_tailer_process. */
int st_tailer_backfill(st_tailer_t *t, int64_t start, int64_t end, int limit, st_tail_batch_t *out,
                       st_query_error_t *err);
/* Filters what was buffered and appends the items that are due (ts + delay <= now) in time order,
 * plus dropped markers for entries the buffer had to refuse. *held (optional) tells whether entries
 * are still held back by delay_for. One thread at a time. */
int st_tailer_process(st_tailer_t *t, int64_t now, st_tail_batch_t *out, bool *held);

/* Appends one tail message for items[0..n) (dropped markers, at most 1000, go to dropped_entries):
 * {"streams":[{"stream":{..},"values":[["<ns>","<line>"(,{...})]]},...],"dropped_entries":[{"labels":
 * {..},"timestamp":"<ns>"}],"encodingFlags":["categorize-labels"]}; dropped_entries only with markers,
 * encodingFlags only with categorize. Consecutive items of one stream share a stream object. */
int st_tail_encode(const st_tail_item_t *items, size_t n, bool categorize, st_buf_t *out);

#endif
