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

/* Compiles stages; unsupported stages fail with ST_EPARSE and a message in err (256 bytes). */
int st_pipeline_compile(const st_logql_pipeline_t *p, st_pipeline_t **out, char *err);
void st_pipeline_free(st_pipeline_t *p);
/* True when the pipeline only filters lines (no stage changes labels or the line). */
bool st_pipeline_line_only(const st_pipeline_t *p);
/* Runs the line filters on one line. */
bool st_pipeline_keep_line(st_pipeline_t *p, st_str_t line);
/* The literal every kept line must contain (first positive single-literal |= stage), if any:
 * lets a scan search a whole block's text at once. */
bool st_pipeline_required_literal(const st_pipeline_t *p, st_str_t *lit);

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
