/* ingester.h: the write path: push requests -> WAL (group commit) -> per-stream heads -> chunks.
 *
 * A push (st_push_t) collects entries per stream; st_ingester_push hands its WAL records to the WAL
 * thread and returns at once. When the batch is durable the records are applied to in-memory heads
 * and on_complete is called (on the WAL thread) so the caller can answer 2xx. Full heads (block size)
 * are sealed; a flusher thread compresses sealed heads into the stream's open chunk file and closes
 * chunks by size, age or idleness, then indexes them in one LMDB transaction per cycle and trims the
 * WAL. Queries see everything applied: st_ingester_snapshot returns the in-memory and not yet indexed
 * parts of matching streams. After kill -9, st_ingester_open replays the WAL minus what the index
 * says is flushed, so every acknowledged entry exists exactly once. */
#ifndef ST_INGESTER_INGESTER_H
#define ST_INGESTER_INGESTER_H

#include "common/buf.h"
#include "common/labels.h"
#include "index/index.h"
#include "store/store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct st_ingester st_ingester_t;
typedef struct st_push st_push_t;

typedef struct {
    const char *wal_dir;
    const char *chunks_dir;        /* finished chunks; open chunks live in <chunks_dir>/.open */
    size_t block_size;             /* uncompressed head bytes per block */
    size_t target_size;            /* compressed bytes that close a chunk */
    int zstd_level;
    int64_t max_chunk_age_ns;      /* oldest unflushed data of a stream older than this: close chunk */
    int64_t idle_period_ns;        /* no write for this long: close chunk, later drop the stream */
    int64_t flush_check_period_ns;
    size_t wal_segment_size;
    size_t wal_max_pending;
    size_t wal_max_size;           /* WAL bigger than this: close the chunks holding it back */
    st_index_t *index;             /* borrowed; outlives the ingester */
    /* Called on the WAL thread for every completed push (status via st_push_status). Thread safe. */
    void (*on_complete)(void *arg, st_push_t *p);
    void *arg;
} st_ingester_opts_t;

/* Opens: cleans partial chunk files, replays the WAL, starts the WAL and flusher threads. */
int st_ingester_open(const st_ingester_opts_t *o, st_ingester_t **out);
/* Stops accepting pushes, drains the WAL; with flush, closes every head into an indexed chunk and
 * removes the WAL. Then frees everything. NULL-safe. */
int st_ingester_close(st_ingester_t *ing, bool flush);
/* Closes every head into an indexed chunk now (used by tests and the /flush endpoint). */
int st_ingester_flush(st_ingester_t *ing);

/* ---- pushes ---------------------------------------------------------------------------------------- */

/* A push being built for one tenant. Not thread safe; one thread builds it. */
int st_push_new(const char *tenant, st_push_t **out);
void st_push_free(st_push_t *p); /* NULL-safe */
/* Finds or adds the stream with these labels (canonical text computed here); *idx gets its index. */
int st_push_stream(st_push_t *p, const st_labels_t *labels, size_t *idx);
/* Appends one entry to stream idx. md is encoded structured metadata (st_md_encode) or empty. */
int st_push_entry(st_push_t *p, size_t idx, int64_t ts, st_str_t line, st_str_t md);
size_t st_push_nstreams(const st_push_t *p);
/* Canonical label text of stream idx. */
st_str_t st_push_stream_labels(const st_push_t *p, size_t idx);
uint64_t st_push_entries(const st_push_t *p);
uint64_t st_push_bytes(const st_push_t *p);
const char *st_push_tenant(const st_push_t *p);
/* Owner pointer for the caller (e.g. the HTTP request waiting for completion). */
void st_push_set_owner(st_push_t *p, void *owner);
void *st_push_owner(const st_push_t *p);
/* Result after completion: 0 when durable and applied. */
int st_push_status(const st_push_t *p);

/* Submits the push (its WAL records move to the WAL). Returns 0 (on_complete follows, possibly
 * before this call returns: the caller must not touch p after a 0 unless on_complete defers to it),
 * ST_EFULL (too much queued: answer 429/503 and let the client retry), ST_EBADSTATE (shutting down)
 * or an error. A push with no entries completes at once (on_complete is not called: returns 1). */
int st_ingester_push(st_ingester_t *ing, st_push_t *p);

/* ---- decoding and validating push bodies (Loki's distributor rules) --------------------------- */

typedef struct {
    int64_t now_ns;                      /* evaluation time (tests pin it) */
    bool reject_old_samples;
    int64_t reject_old_samples_max_age_ns;
    int64_t creation_grace_period_ns;
    size_t max_line_size;                /* 0 = unlimited */
    bool max_line_size_truncate;
    int max_label_names_per_series;
    int max_label_name_length;
    int max_label_value_length;
    bool allow_structured_metadata;
    size_t max_structured_metadata_size;
    int max_structured_metadata_entries;
} st_push_limits_t;

/* Collected validation failures of one request, folded the way Loki reports them. */
typedef struct {
    st_buf_t text;      /* the 400 body once st_push_errors_finish ran */
    size_t count;       /* failures recorded */
    size_t dropped;     /* entries discarded */
    void *priv;         /* internal grouping state */
} st_push_errors_t;

void st_push_errors_free(st_push_errors_t *e);
/* Folds the recorded failures into e->text ("N errors like: ..." groups joined by "; "). */
void st_push_errors_finish(st_push_errors_t *e);

/* The validated way into a push, used by every decoder. st_push_add_stream applies Loki's label
 * checks; a rejected stream is recorded in errs and *idx is SIZE_MAX (its entries must be skipped).
 * st_push_add_entry applies the entry checks (age, line size or truncation, structured metadata
 * limits) to an entry of an accepted stream; a rejected entry is recorded and skipped. Both return 0
 * or -ENOMEM. */
int st_push_add_stream(st_push_t *p, const st_push_limits_t *lim, const st_labels_t *labels, st_push_errors_t *errs,
                       size_t *idx);
int st_push_add_entry(st_push_t *p, const st_push_limits_t *lim, size_t idx, int64_t ts, st_str_t line, st_str_t md,
                      st_push_errors_t *errs);

/* Decodes a Loki JSON push body into p, validating each stream and entry against lim. Streams and
 * entries that fail validation are left out and recorded in errs (store the rest, then answer 400
 * with errs->text). Returns 0, or for a body that cannot be accepted at all ST_EPARSE (400) with the
 * message in errs->text, or -ENOMEM. legacy selects the /api/prom/push shape
 * ({"streams":[{"labels":"{..}","entries":[{"ts":"RFC3339","line":".."}]}]}). */
int st_push_decode_json(st_str_t body, bool legacy, const st_push_limits_t *lim, st_push_t *p,
                        st_push_errors_t *errs);

/* ---- queries --------------------------------------------------------------------------------------- */

/* One source of entries of an in-memory stream, each sorted by time. */
typedef struct {
    bool is_file;              /* false: entries[]; true: blocks of a chunk file */
    st_entry_t *entries;       /* owned array; views into buf or a shared head */
    size_t n;
    int fd;                    /* is_file: open read-only descriptor, owned */
    st_block_meta_t *blocks;   /* is_file: owned copy */
    uint32_t nblocks;
    uint64_t chunk_id;         /* is_file and already given an id (being indexed) */
    void *hold;                /* internal: keeps shared memory alive */
} st_mem_source_t;

typedef struct {
    uint64_t id;
    char *canon;               /* owned canonical label text */
    st_labels_t labels;        /* owned */
    int64_t min_ts, max_ts;    /* of the in-memory data */
    st_mem_source_t *src;      /* owned */
    size_t nsrc;
} st_mem_stream_t;

typedef struct {
    st_mem_stream_t *streams;
    size_t n;
    st_u64vec_t chunk_ids;     /* sorted ids of chunks also present here (skip them in the index) */
} st_mem_snapshot_t;

/* Collects the tenant's in-memory streams whose labels satisfy the matchers and whose data overlaps
 * [from, through] (inclusive). With want_data false only labels and time bounds are filled. */
int st_ingester_snapshot(st_ingester_t *ing, const char *tenant, const st_matcher_t *m, size_t nm, int64_t from,
                         int64_t through, bool want_data, st_mem_snapshot_t *out);
void st_mem_snapshot_free(st_mem_snapshot_t *s);

/* ---- introspection --------------------------------------------------------------------------------- */

typedef struct {
    uint64_t streams;          /* in memory */
    uint64_t head_bytes;       /* uncompressed bytes in heads and sealed heads */
    uint64_t open_chunks;
    uint64_t wal_bytes;
    uint64_t chunks_flushed;
} st_ingester_stats_t;

void st_ingester_stats(st_ingester_t *ing, st_ingester_stats_t *out);

#endif
