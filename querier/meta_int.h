/* meta_int.h: internals of the querier's Drilldown-era endpoints, exposed for unit tests: the Drain
 * pattern miner (drain.c), field extraction and type detection for detected_fields (fields.c), and
 * the walker over a log query's JSON result that meta.c and tail.c share (meta.c). Not part of the
 * module's API. */
#ifndef ST_QUERIER_META_INT_H
#define ST_QUERIER_META_INT_H

#include "querier/querier_int.h"

/* ---- Drain (drain.c) ------------------------------------------------------------------------------
 * A fixed-depth prefix tree of token sequences (He et al., ICWS 2017) with Loki's pattern-ingester
 * settings: punctuation tokenizer (spaces split and are remembered, '=' and other ASCII punctuation
 * are tokens of their own, letters, digits, bytes >= 0x80 and "_-.:/" stay inside tokens), lines of
 * 4..80 tokens and at most 3000 bytes, tree depth 30, similarity threshold 0.3, 15 children per node
 * (tokens with digits go to the "<_>" child), at most 300 clusters (least recently used evicted).
 * Variable positions print as "<_>"; adjacent placeholders with nothing between them collapse. */

typedef struct st_drain st_drain_t;

int st_drain_new(st_drain_t **out);
void st_drain_free(st_drain_t *d); /* NULL-safe */
/* Adds a line. *cluster gets the id of the cluster it joined or created, or -1 when the line was
 * skipped (too short, too long, too many tokens). Returns 0 or -ENOMEM. */
int st_drain_train(st_drain_t *d, st_str_t line, int *cluster);
/* Ids of the live clusters are 0 .. st_drain_cap()-1; a slot may be empty (evicted). */
size_t st_drain_cap(const st_drain_t *d);
bool st_drain_alive(const st_drain_t *d, int cluster);
/* Appends the cluster's pattern ("<_> level=info msg=<_>"). */
int st_drain_pattern(const st_drain_t *d, int cluster, st_buf_t *out);

/* ---- fields (fields.c) ----------------------------------------------------------------------------- */

typedef enum {
    ST_FIELD_STRING,
    ST_FIELD_INT,
    ST_FIELD_FLOAT,
    ST_FIELD_BOOLEAN,
    ST_FIELD_DURATION,
    ST_FIELD_BYTES
} st_field_type_t;

/* Loki's detection order: int (strconv.ParseInt), float (ParseFloat), boolean (ParseBool), duration
 * (time.ParseDuration), bytes (go-humanize ParseBytes), else string. */
st_field_type_t st_field_type_of(st_str_t v);
const char *st_field_type_name(st_field_type_t t); /* "string", "int", ... */

enum { ST_FIELDS_NONE = 0, ST_FIELDS_JSON = 1, ST_FIELDS_LOGFMT = 2 };

/* One extracted field: name as Loki's parsers name it (sanitized; nested JSON keys joined with '_';
 * "_extracted" appended when a stream label has the name), value, and for JSON the original key path. */
typedef int (*st_field_cb)(void *arg, st_str_t name, st_str_t value, const st_str_t *path, size_t npath);

/* Parses a line as a JSON object (arrays and nulls skipped), else as logfmt (empty values skipped),
 * calling cb per field. stream: labels whose names get the "_extracted" suffix (may be NULL). Returns
 * ST_FIELDS_JSON, ST_FIELDS_LOGFMT (also for a line with no key=value pair), ST_FIELDS_NONE (neither
 * parses) or a negative error from cb / -ENOMEM. */
int st_fields_extract(st_str_t line, const st_labels_t *stream, st_field_cb cb, void *arg);

/* ---- log query results (meta.c) ------------------------------------------------------------------ */

/* One entry of a log query result. stream and extra are raw JSON texts (the "stream" object; the
 * categorize-labels third element or ""), line is decoded. Views valid during the callback. */
typedef struct {
    size_t stream_index; /* position of the stream in the result (entries come grouped by stream) */
    st_str_t stream;
    int64_t ts;
    st_str_t line;
    st_str_t extra;
} st_logent_t;

/* Runs a log query (st_query_exec) and calls cb for each entry of the result in result order.
 * *stats_raw (optional) gets a malloc'd copy of the "stats" object's text. cb returns 0 to go on,
 * >0 to stop, <0 to fail. Returns 0 or <0 with err filled. */
int st_log_query_each(st_querier_t *q, const st_query_t *req, int (*cb)(void *arg, const st_logent_t *e),
                      void *arg, char **stats_raw, st_query_error_t *err);
/* Calls cb for each "name":"value" member of a raw JSON object (values that are not strings are
 * skipped). Returns 0, cb's negative result, or ST_EPARSE. */
int st_json_pairs(st_str_t obj, int (*cb)(void *arg, st_str_t name, st_str_t value), void *arg);

#endif
