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

/* Admission limits (Loki's limits_config rate and stream limits plus Strata's memory budgets). */
typedef struct {
    double tenant_rate;          /* bytes/s of line + metadata per tenant (0 = none) */
    double tenant_burst;         /* bytes */
    double stream_rate;          /* bytes/s per stream (0 = none) */
    double stream_burst;
    int max_streams;             /* active (in-memory) streams per tenant (0 = none) */
    size_t memory_budget;        /* head bytes of all tenants (0 = none): 503 above it */
    size_t tenant_memory_budget; /* head bytes of one tenant (0 = none): 429 above it */
} st_ingest_limits_t;

typedef struct {
    const char *wal_dir;
    const char *chunks_dir;        /* finished chunks; open chunks live in <chunks_dir>/.open */
    size_t block_size;             /* uncompressed head bytes per block */
    size_t target_size;            /* compressed bytes that close a chunk */
    int zstd_level;
    bool block_filters;            /* trigram filter per block (st_chunk_writer_set_filters) */
    int64_t max_chunk_age_ns;      /* oldest unflushed data of a stream older than this: close chunk */
    int64_t idle_period_ns;        /* no write for this long: close chunk, later drop the stream */
    int64_t flush_check_period_ns;
    size_t wal_segment_size;
    size_t wal_max_pending;
    size_t wal_max_size;           /* WAL bigger than this: close the chunks holding it back */
    size_t head_memory_target;     /* heads above this: live heads compressed, then the oldest streams close (0 = off) */
    bool head_spill;               /* frozen head frames in files (<chunks_dir>/.spill), not on the heap */
    size_t spill_segment_size;     /* bytes per spill file (0: 64 MiB) */
    st_index_t *index;             /* borrowed; outlives the ingester */
    st_ingest_limits_t limits;
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

/* Admits and submits the push (its WAL records move to the WAL). Admission applies the limits:
 * memory budgets and the tenant's rate reject the whole push (ST_ELIMIT); the tenant's stream limit
 * and per-stream rates reject single streams, which are left out while the rest is stored. Rejections
 * are reported by st_push_limit_status. Returns 0 (on_complete follows, possibly before this call
 * returns: the caller must not touch p after a 0 unless on_complete defers to it), 1 when nothing is
 * left to store (completes at once, on_complete is not called), ST_ELIMIT, ST_EFULL (too much queued:
 * answer 503 and let the client retry), ST_EBADSTATE (shutting down) or an error. */
int st_ingester_push(st_ingester_t *ing, st_push_t *p);
/* Like st_ingester_push but blocks until the push is durable (never calls on_complete); for callers
 * off the event loop (the CloudWatch import). Returns 0, ST_ELIMIT when admission rejected some or all
 * of it (st_push_limit_status says what), ST_EFULL, ST_EBADSTATE or an error. p stays the caller's. */
int st_ingester_push_wait(st_ingester_t *ing, st_push_t *p);
/* 0 when admission rejected nothing; else the HTTP status to answer (429, or 503 for the global memory
 * budget) and *msg the rejection text (valid while p lives). */
int st_push_limit_status(const st_push_t *p, const char **msg);

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
    /* Stream decorations (Loki's distributor, applied by st_push_add_stream / st_push_add_entry;
     * zero values switch them off). discover_service_name: label names tried in order for a missing
     * service_name (none present: "unknown_service"); n == 0 disables the discovery. */
    const st_str_t *discover_service_name;
    size_t discover_service_name_n;
    bool discover_log_levels;            /* add metadata detected_level (needs allow_structured_metadata) */
    /* OTLP: resource attributes that become stream labels. NULL = Loki's default list
     * (st_otlp_default_index_labels); a non-NULL list with n == 0 indexes nothing. */
    const st_str_t *otlp_index_labels;
    size_t otlp_index_labels_n;
} st_push_limits_t;

/* Collected validation failures of one request, folded the way Loki reports them. */
typedef struct {
    st_buf_t text;      /* the 400 body once st_push_errors_finish ran */
    size_t count;       /* failures recorded */
    size_t dropped;     /* entries discarded */
    void *priv;         /* internal: grouping state and per-stream discovery cache (validate.c) */
} st_push_errors_t;

void st_push_errors_free(st_push_errors_t *e);
/* Records one failure message (identical messages are counted together). */
void st_push_errors_add(st_push_errors_t *e, const char *msg);
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

/* st_push_add_stream with flags. ST_PUSH_NO_DISCOVERY: the caller already decided service_name (the
 * OTLP mapping does, from resource attributes), so no service_name is added here. */
#define ST_PUSH_NO_DISCOVERY 1u
int st_push_add_stream_flags(st_push_t *p, const st_push_limits_t *lim, const st_labels_t *labels,
                             unsigned flags, st_push_errors_t *errs, size_t *idx);

/* Decodes a Loki protobuf push body: a snappy block (not framed) holding a logproto PushRequest.
 * The uncompressed length recorded in the snappy header is checked against max_decompressed before
 * anything is decompressed. Results as st_push_decode_json, plus ST_ELIMIT (413, message in
 * errs->text) and ST_ENOTFOUND (422: no streams). A labels string that does not parse rejects the
 * whole request (ST_EPARSE, "couldn't parse labels: ..."), as do timestamps outside years 1..9999 or
 * nanos outside [0, 1e9). Entries of timestamps beyond int64 nanoseconds (before 1677 or after 2262)
 * are clamped to that range and then meet the age checks. */
int st_push_decode_proto(st_str_t body, size_t max_decompressed, const st_push_limits_t *lim, st_push_t *p,
                         st_push_errors_t *errs);

/* ---- OTLP/HTTP logs (POST /otlp/v1/logs) ----------------------------------------------------- */

typedef enum { ST_OTLP_PROTOBUF, ST_OTLP_JSON } st_otlp_format_t;

/* Decodes an ExportLogsServiceRequest (protobuf, or OTLP JSON) and maps it the way Loki 3 does:
 * indexed resource attributes (lim->otlp_index_labels) become stream labels, everything else
 * structured metadata; line = body as a string (non-strings JSON-encoded); timestamp =
 * time_unix_nano, else observed_time_unix_nano, else lim->now_ns. Results as st_push_decode_json
 * (ST_EPARSE 400 with errs->text, ST_ENOTFOUND 422 when there are no log records, -ENOMEM). */
int st_push_decode_otlp(st_str_t body, st_otlp_format_t fmt, const st_push_limits_t *lim, st_push_t *p,
                        st_push_errors_t *errs);
/* Loki's default_resource_attributes_as_index_labels. */
extern const st_str_t st_otlp_default_index_labels[];
extern const size_t st_otlp_default_index_labels_n;
/* Bounded zstd (any number of frames) and LZ4 frame decompression of request bodies: appends to out,
 * ST_ELIMIT as soon as more than max_out bytes would be produced, ST_EPARSE for corrupt input,
 * -ENOTSUP for lz4 when built without liblz4. */
int st_zstd_decompress_bounded(const void *in, size_t n, size_t max_out, st_buf_t *out);
int st_lz4_decompress_bounded(const void *in, size_t n, size_t max_out, st_buf_t *out);
/* Appends a google.rpc.Status protobuf with only message (field 2) set: the OTLP error body. */
int st_otlp_status_encode(st_buf_t *out, st_str_t message);

/* ---- discovery helpers (discover.c), exposed for tests ------------------------------------------ */

/* Loki's service_name discovery for labels `in`. Returns 1 with *out set to in plus service_name,
 * 0 when nothing is added (disabled, service_name present, internal stream), or -ENOMEM. */
int st_discover_service_name(const st_push_limits_t *lim, const st_labels_t *in, st_labels_t *out);
/* Loki's detected_level for one entry: from `label_level` (the normalised value of the first
 * level-like stream label; empty if none), else a level-like structured metadata field (normalised),
 * else OTLP severity_number, else the line (JSON / logfmt level keys, then level words; only the
 * first ST_LEVEL_SCAN_BYTES of the line are examined). Returns 1 with *out the level to add, 2 when md
 * already has a detected_level whose value must be replaced by its normalised form *out, 0 when
 * there is nothing to do. *out is a static string or a view into label_level or md. */
#define ST_LEVEL_SCAN_BYTES 512
int st_discover_level(st_str_t label_level, st_str_t line, st_str_t md, st_str_t *out);
/* Loki's normalisation of a level value: trace/debug/info/warn/error/critical/fatal for the known
 * spellings (case-insensitive: trc, dbg, inf, information, wrn, warning, err), else v unchanged. */
st_str_t st_level_normalize(st_str_t v);
/* First stream label among Loki's level fields (level, LEVEL, Level, log.level, severity, ...), or
 * false. */
bool st_level_from_labels(const st_labels_t *l, st_str_t *value);
/* OTLP attribute name -> label name (Prometheus otlptranslator rules): every byte outside
 * [A-Za-z0-9] becomes '_' with runs collapsed (a multi-byte UTF-8 character counts as one), a
 * leading digit gets "key_", "__x__" keeps its underscores. Appends to out; ST_EPARSE (message in
 * err, 256 bytes) for an empty name or one that ends up only underscores. */
int st_label_name_sanitize(st_str_t in, st_buf_t *out, char *err);
/* Splits a comma-separated list (spaces around items trimmed, empty items skipped) into views of s.
 * *out is malloc'd (free it); returns 0 or -ENOMEM. */
int st_str_split_list(st_str_t s, st_str_t **out, size_t *n);

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
    uint64_t head_resident;    /* head_bytes less what frozen heads no longer hold in memory */
    uint64_t spill_bytes;      /* in head spill files (ingester.head_spill) */
    uint64_t spill_live_bytes; /* of frames still referenced there */
    uint64_t head_freezes;     /* live heads frozen so far */
} st_ingester_stats_t;

void st_ingester_stats(st_ingester_t *ing, st_ingester_stats_t *out);

/* ---- live tail subscribers ------------------------------------------------------------------------- */

/* Called on the WAL thread right after a durable record was applied to memory (never during start-up
 * replay): the tenant, the stream's id and canonical labels, and the record's entries in push order
 * (views valid during the call only; an exact retry that apply dropped as a duplicate is passed on
 * too). It runs while the ingester's subscriber lock is held: it must be quick (copy and hand off),
 * must not block, and must not call back into the ingester. */
typedef void (*st_tail_fn)(void *arg, st_str_t tenant, uint64_t stream_id, st_str_t labels, const st_entry_t *e,
                           size_t n);
typedef struct st_tail_sub st_tail_sub_t;

/* Registers fn for the entries of one tenant. Returns 0 or -ENOMEM. Thread safe. With no subscriber
 * the WAL thread pays one atomic load per record. */
int st_ingester_tail_subscribe(st_ingester_t *ing, const char *tenant, st_tail_fn fn, void *arg,
                               st_tail_sub_t **out);
/* Removes a subscription (NULL-safe). When it returns fn is not running and never runs again for it.
 * Thread safe; must not be called from fn. Call it before st_ingester_close. */
void st_ingester_tail_unsubscribe(st_ingester_t *ing, st_tail_sub_t *sub);

#endif
