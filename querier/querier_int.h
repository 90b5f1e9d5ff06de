/* querier_int.h: internals shared by the querier's files (not part of the module's API).
 *
 * pipeline.c compiles a LogQL pipeline into filters run per entry; select.c gathers the streams and
 * time-sorted entry sources (memory, chunk blocks) of a selector; logquery.c merges and encodes log
 * query results; meta.c answers labels/series. */
#ifndef ST_QUERIER_QUERIER_INT_H
#define ST_QUERIER_QUERIER_INT_H

#include "querier/querier.h"
#include "common/search.h"
#include "store/store.h"

/* ---- compiled pipelines ------------------------------------------------------------------------ */

typedef struct st_pipeline st_pipeline_t;

/* Compiles a log pipeline (and, for metric queries, the log range's unwrap) into stages run per
 * entry, in Loki's order (line filters move to the front of their segment; a label filter,
 * line_format or unpack ends a segment). Bad templates fail with ST_EPARSE and Loki's text in err
 * (256 bytes), e.g. "invalid line template: template: line:1: function \"x\" not defined". unwrap
 * may be NULL. The pipeline (and its clones) keeps pointers into p and unwrap: the AST must outlive
 * them. A compiled pipeline is used by one thread at a time; steady-state runs do not allocate. */
int st_pipeline_compile(const st_logql_pipeline_t *p, const st_logql_unwrap_t *unwrap, st_pipeline_t **out,
                        char *err);
void st_pipeline_free(st_pipeline_t *p);
/* A copy for another thread (same stages, own scratch state). */
int st_pipeline_clone(const st_pipeline_t *p, st_pipeline_t **out);
/* True when the pipeline only filters lines (no stage changes labels or the line): then
 * st_pipeline_keep_line decides everything and st_pipeline_run is not needed. */
bool st_pipeline_line_only(const st_pipeline_t *p);
/* Runs the line filters on one line (valid for any pipeline: the filters before the first stage that
 * changes labels or the line, after Loki's reordering; true means "may be kept"). */
bool st_pipeline_keep_line(st_pipeline_t *p, st_str_t line);
/* The literal every kept line must contain (first positive single-literal |= stage), if any:
 * lets a scan search a whole block's text at once. */
bool st_pipeline_required_literal(const st_pipeline_t *p, st_str_t *lit);
/* True when the pipeline's line filters are exactly one |= "literal" (the required literal): a line
 * passes them if and only if it contains the literal, so lines marked by st_qmark_lines need no
 * second check. */
bool st_pipeline_literal_only(const st_pipeline_t *p);
/* Sets hit[i] for the entries of a decoded block whose line contains the literal (litn bytes, the
 * finder's needle), with one search over the block's contiguous text instead of one per line. */
void st_qmark_lines(const st_finder_t *finder, size_t litn, const st_block_t *b, uint8_t *hit);
/* Makes *hitp hold n zeroed flags (growing it, capacity in *hitcap). 0 or -ENOMEM. */
int st_qhits_zero(uint8_t **hitp, size_t *hitcap, uint32_t n);
/* A label filter right after a json or logfmt parser that needs name="value": a line can only be
 * kept if it contains value, or a backslash (escapes), or the stream labels or the entry's
 * structured metadata hold name (then the filter reads that, not the parsed label). */
bool st_pipeline_value_literal(const st_pipeline_t *p, st_str_t *name, st_str_t *value);
/* The longest run of bytes every match of a Go (RE2) regex must contain, written to out (at most cap
 * bytes); 0 when none can be proven (top-level alternation, flag groups, \p/\x/\Q escapes...). */
size_t st_regex_required_literal(st_str_t regex, char *out, size_t cap);

/* Category of a result label (st_pipeline_result_t.cats): a stream (index) label, structured
 * metadata, or a label added by the pipeline (parsers, label_format, __error__/__error_details__). */
enum { ST_PIPELINE_CAT_STREAM = 0, ST_PIPELINE_CAT_MD = 1, ST_PIPELINE_CAT_PARSED = 2 };

/* Result of the full pipeline on one entry. Views point into the input line, the stream labels, the
 * metadata or the pipeline's own buffers: valid until the next run on the same pipeline (and while
 * the inputs are). Labels are sorted by name and unique. Unlike other label sets, result labels may
 * have empty values (Loki keeps a parsed `a=""`); with an unwrap the unwrapped label is left out
 * (Loki's default `without` grouping) unless the entry carries __error__. */
typedef struct {
    bool keep;                 /* false: the entry is filtered out */
    st_str_t line;             /* the line after line_format (else the input line) */
    const st_labels_t *labels; /* final labels: stream labels, structured metadata, extracted labels,
                                  after label_format/drop/keep; includes __error__/__error_details__ */
    uint64_t hash;             /* st_hash64 of the canonical text of labels (series identity) */
    bool has_error;            /* an __error__ label is present */
    bool has_value;            /* an unwrap was compiled and produced a value */
    double value;              /* the unwrapped (converted) sample value */
    const uint8_t *cats;       /* per label of *labels: ST_PIPELINE_CAT_* */
} st_pipeline_result_t;

/* Runs every stage on one entry. stream: the stream's labels; md: its encoded structured metadata.
 * Returns 0 or -ENOMEM (out->keep says whether the entry survived). */
int st_pipeline_run(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                    st_pipeline_result_t *out);
/* Same for an entry whose line already passed st_pipeline_keep_line (skips those filters). */
int st_pipeline_run_kept(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                         st_pipeline_result_t *out);
/* Only the verdict of st_pipeline_run_kept (no result labels, line or hash are built): 1 when the
 * entry is kept, 0 when it is filtered out, -ENOMEM. */
int st_pipeline_test_kept(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream,
                          st_str_t md);

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
    bool borrowed;  /* readers use fd (it stays open while the selection lives) */
    bool owned;     /* fd opened by the selection and closed by st_qsel_free (else: the snapshot's) */
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
    uint32_t del_first, del_n; /* pending delete requests selecting it: qsel_t.del_reqs[first, +n) */
} qstream_t;

/* Pending delete requests (deletes.c): requests "received" or "processing" hide their lines. */
typedef struct {
    struct qdel_req **v;
    size_t n;
} qdel_t;

/* Loads the tenant's pending requests overlapping [from, through]. */
int st_qdel_load(st_index_read_t *rd, const char *tenant, int64_t from, int64_t through, qdel_t *out);
void st_qdel_free(qdel_t *d);
/* Whether request i selects a stream with these labels. */
bool st_qdel_selects(const qdel_t *d, size_t i, const st_labels_t *labels);
/* Whether one of the requests reqs[0..n) hides the entry. Thread safe. */
bool st_qdel_hides(const qdel_t *d, const uint32_t *reqs, uint32_t nreqs, int64_t ts, st_str_t line);

typedef struct {
    qstream_t *streams;
    size_t nstreams, capstreams;
    /* chunks that could not be read (archived or no S3 reader): summarised into warnings */
    uint64_t archived_chunks, unavailable_chunks;
    int64_t archived_min, archived_max;
    int64_t *arch_ranges;     /* [min, max] pairs of those chunks (merged into the warnings) */
    size_t narch, caparch;
    qblock_t *blocks;
    size_t nblocks, capblocks;
    qfile_t *files;
    size_t nfiles, capfiles;
    st_mem_snapshot_t snap;
    qdel_t del;               /* pending delete requests (st_querier_opts_t.apply_deletes) */
    uint32_t *del_reqs;       /* request indexes per stream (qstream_t.del_first/del_n) */
    st_entry_t **mem_copies;  /* in-memory entries with deleted ones left out (owned) */
    size_t nmem_copies;
    uint32_t *fd_tab;         /* open addressing by path: index+1 of the file owning the descriptor */
    size_t fd_tabcap, nowned;
} qsel_t;

/* Removes the entries pending delete requests hide from a block of stream `stream` just decoded
 * from a chunk (in-memory blocks are filtered by st_qsel_build). Thread safe. */
int st_qsel_filter_block(const qsel_t *s, uint32_t stream, st_block_t *blk);

/* Converts LogQL matchers to index matchers (regexes evaluated with PCRE2). m must hold sel->n. */
void st_qmatchers(const st_logql_selector_t *sel, st_matcher_t *m);

/* Collects streams and blocks overlapping [from, through] (inclusive) for a selector. With
 * want_blocks false only streams are gathered (for series/labels). */
int st_qsel_build(st_querier_t *q, const char *tenant, const st_logql_selector_t *sel, int64_t from,
                  int64_t through, bool want_blocks, qsel_t *out, st_qstats_t *stats);
void st_qsel_free(qsel_t *s);
/* Appends the "warnings" of a selection as JSON string elements (nothing when there are none). */
int st_qsel_warnings(const qsel_t *s, st_strvec_t *out);
/* Writes "warnings":[...], (nothing when w is empty), to follow "status" in a response. */
int st_put_warnings(st_buf_t *out, const st_strvec_t *w);

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
