/* querier_int.h: internals shared by the querier's files (not part of the module's API).
 *
 * pipeline.c compiles a LogQL pipeline into filters run per entry; select.c gathers the streams and
 * time-sorted entry sources (memory, chunk blocks) of a selector; logquery.c merges and encodes log
 * query results; meta.c answers labels/series. */
#ifndef ST_QUERIER_QUERIER_INT_H
#define ST_QUERIER_QUERIER_INT_H

#include "querier/querier.h"
#include "store/store.h"

/* ---- compiled pipelines ------------------------------------------------------------------------ */

typedef struct st_pipeline st_pipeline_t;

/* Compiles a log pipeline (and, for metric queries, the log range's unwrap) into stages run per
 * entry. Bad templates or unsupported constructs fail with ST_EPARSE and Loki's text in err (256
 * bytes). unwrap may be NULL. A compiled pipeline is used by one thread at a time. */
int st_pipeline_compile(const st_logql_pipeline_t *p, const st_logql_unwrap_t *unwrap, st_pipeline_t **out,
                        char *err);
void st_pipeline_free(st_pipeline_t *p);
/* A copy for another thread (same stages, own scratch state). */
int st_pipeline_clone(const st_pipeline_t *p, st_pipeline_t **out);
/* True when the pipeline only filters lines (no stage changes labels or the line): then
 * st_pipeline_keep_line decides everything and st_pipeline_run is not needed. */
bool st_pipeline_line_only(const st_pipeline_t *p);
/* Runs the line filters on one line (valid for any pipeline: the filters before the first stage that
 * changes labels or the line; true means "may be kept"). */
bool st_pipeline_keep_line(st_pipeline_t *p, st_str_t line);
/* The literal every kept line must contain (first positive single-literal |= stage), if any:
 * lets a scan search a whole block's text at once. */
bool st_pipeline_required_literal(const st_pipeline_t *p, st_str_t *lit);

/* Result of the full pipeline on one entry. Views are valid until the next st_pipeline_run on the
 * same pipeline. */
typedef struct {
    bool keep;                 /* false: the entry is filtered out */
    st_str_t line;             /* the line after line_format (else the input line) */
    const st_labels_t *labels; /* final labels: stream labels, structured metadata, extracted labels,
                                  after label_format/drop/keep; includes __error__/__error__details__ */
    uint64_t hash;             /* st_hash64 of the canonical text of labels (series identity) */
    bool has_error;            /* an __error__ label is present */
    bool has_value;            /* an unwrap was compiled and produced a value */
    double value;              /* the unwrapped (converted) sample value */
} st_pipeline_result_t;

/* Runs every stage on one entry. stream: the stream's labels; md: its encoded structured metadata. */
int st_pipeline_run(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                    st_pipeline_result_t *out);

/* ---- statistics --------------------------------------------------------------------------------- */

typedef struct {
    uint64_t lines, bytes;              /* processed (decompressed) */
    uint64_t post_filter_lines;
    uint64_t md_bytes;
    uint64_t head_lines, head_bytes;    /* from memory */
    uint64_t chunks_ref, chunks_downloaded;
    uint64_t compressed_bytes;
    uint64_t decompressed_lines, decompressed_bytes;
    uint64_t entries_returned;
    int64_t start_mono;
} st_qstats_t;

/* ---- selection ---------------------------------------------------------------------------------- */

/* A file of chunk blocks, opened lazily and closed when its last block is done. */
typedef struct {
    char *path;     /* owned; NULL when fd came from a snapshot */
    int fd;
    uint64_t base;  /* chunk offset inside the file */
    int pending;    /* blocks not yet finished */
    bool borrowed;  /* fd owned by the snapshot */
} qfile_t;

typedef struct {
    int64_t min_ts, max_ts;
    uint32_t stream;          /* index into qsel_t.streams */
    bool is_mem;
    const st_entry_t *e;      /* is_mem: sorted entries */
    size_t n;
    uint32_t file;            /* !is_mem: index into files */
    st_block_meta_t meta;
} qblock_t;

typedef struct {
    char *canon;              /* owned canonical label text */
    st_labels_t labels;
} qstream_t;

typedef struct {
    qstream_t *streams;
    size_t nstreams, capstreams;
    qblock_t *blocks;
    size_t nblocks, capblocks;
    qfile_t *files;
    size_t nfiles, capfiles;
    st_mem_snapshot_t snap;
} qsel_t;

/* Converts LogQL matchers to index matchers (regexes evaluated with PCRE2). m must hold sel->n. */
void st_qmatchers(const st_logql_selector_t *sel, st_matcher_t *m);

/* Collects streams and blocks overlapping [from, through] (inclusive) for a selector. With
 * want_blocks false only streams are gathered (for series/labels). */
int st_qsel_build(st_querier_t *q, const char *tenant, const st_logql_selector_t *sel, int64_t from,
                  int64_t through, bool want_blocks, qsel_t *out, st_qstats_t *stats);
void st_qsel_free(qsel_t *s);

struct st_querier {
    st_querier_opts_t o;
    struct st_pool *pool; /* decompresses and scans blocks ahead of the merge */
    int threads;
};

static inline int st_querier_threads(const st_querier_t *q) { return q->threads; }

/* Appends the stats object ("stats":{...}) of Loki's response. */
int st_qstats_json(const st_qstats_t *s, st_buf_t *out);

/* Sets err and returns ST_EPARSE etc. */
int st_qerr(st_query_error_t *err, int status, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Log query evaluation (logquery.c). */
int st_exec_log_query(st_querier_t *q, const st_query_t *req, const st_logql_expr_t *e, st_buf_t *out,
                      st_query_error_t *err);

#endif
