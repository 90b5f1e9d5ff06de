/* audit.h: compliance: a tamper-evident audit trail, its verification, and the reports auditors check
 * (docs/compliance.md; the trail's format is in docs/formats.md).
 *
 * The trail is a sequence of records, one JSON object per line, in segment files under
 * <path_prefix>/audit (lifecycle.audit.dir). Each record carries the SHA-256 of the previous record's
 * bytes ("prev"), so editing, removing, inserting or reordering any record breaks the chain. Segments are
 * closed by size or age and sealed: uploaded to the lifecycle bucket under <prefix>audit/ (with S3 Object
 * Lock where configured), the seal itself being a record of the chain. Several processes append to the
 * same trail (strata serve, `strata lifecycle run` from cron): every write holds an exclusive flock on
 * <dir>/lock and first re-reads the tail, so sequence numbers and hashes never fork.
 *
 * Two libraries share this header:
 *   st_audit       the trail (open, append, batch, seal, read, chain verification), the lifecycle.audit
 *                  and lifecycle.prices configuration, and the hooks other modules call (ingester,
 *                  lifecycle, server). It calls nothing in the lifecycle library (the lifecycle calls it;
 *                  it only reads lifecycle structures).
 *   st_compliance  process setup (st_audit_start), `strata audit verify` (chain from the sealed copies,
 *                  stored objects against their recorded checksums), the retention and deletion reports
 *                  (JSON, CSV, self-contained HTML), and the retrievability drill.
 *
 * Hooks never make a 2xx path fail silently: a record that cannot be written is logged and counted
 * (strata_audit_append_failures_total). Records of pushes' chunks and of queries never block or fail
 * the operation; deletions (end of retention, erasure) fail their lifecycle step when their record
 * cannot be written durably, so nothing is deleted without evidence. Without an open trail (audit
 * disabled) every hook is a no-op. Errors follow common/err.h. */
#ifndef ST_AUDIT_AUDIT_H
#define ST_AUDIT_AUDIT_H

#include "common/buf.h"
#include "common/vec.h"
#include "config/config.h"
#include "index/index.h"
#include "lifecycle/lifecycle.h"
#include "objstore/objstore.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* ==== configuration: lifecycle.audit and lifecycle.prices ============================================ */

#define ST_AUDIT_NTIERS                                                                                      \
    6 /* prices per class, in st_tier_t order: hot, STANDARD, STANDARD_IA, GLACIER_IR,                       \
         GLACIER, DEEP_ARCHIVE */

typedef struct {
    double storage_gb_month[ST_AUDIT_NTIERS];  /* USD per GB-month (GB = 2^30 bytes); hot: local disk */
    double requests_per_1000[ST_AUDIT_NTIERS]; /* USD per 1,000 PUT/COPY/transition requests */
    double archive_overhead_bytes;             /* billed extra per GLACIER / DEEP_ARCHIVE object */
    double cloudwatch_ingest_gb;               /* CloudWatch Logs ingestion, USD per GB */
    double cloudwatch_storage_gb_month;        /* CloudWatch Logs storage, USD per GB-month */
} st_audit_prices_t;

typedef struct st_audit_config {
    bool enabled;               /* default false */
    char dir[1024];             /* "" = <common.path_prefix>/audit */
    int64_t seal_interval_ns;   /* a segment with records is closed and sealed at least this often (1h) */
    uint64_t segment_max_bytes; /* a segment is closed at this size (64 MiB) */
    int64_t flush_interval_ns;  /* batched records (queries) reach the disk within this (1s) */
    bool record_queries;        /* a record per query of a tenant's data (true) */
    char lock_mode[16];         /* "", "GOVERNANCE" or "COMPLIANCE": Object Lock of sealed segments */
    int64_t lock_retain_ns;     /* retain-until = seal time + this (required with lock_mode) */
    int64_t deletion_grace_ns;  /* the retention report flags data this long past its deletion date (24h) */
    st_audit_prices_t prices;
} st_audit_config_t;

/* The defaults (us-east-1 list prices: see docs/compliance.md). */
void st_audit_config_defaults(st_audit_config_t *c);
/* The configuration of a parsed lifecycle section (defaults when it has no audit/prices keys). */
const st_audit_config_t *st_audit_config_of(const st_lc_config_t *lc);

struct yaml_document_s;
struct yaml_node_s;
/* Parses the lifecycle.<section> mapping (section "audit" or "prices") into *out, allocated with the
 * defaults on first use. Each problem is appended to err as "<file>:<line>: lifecycle.<section>.<key>:
 * <message>", '\n'-separated, counted in *nerr. Returns 0 or -ENOMEM. */
int st_audit_config_parse(const st_config_t *cfg, struct yaml_document_s *doc, struct yaml_node_s *node,
                          const char *section, struct st_audit_config **out, st_buf_t *err, int *nerr);
void st_audit_config_free(struct st_audit_config *c); /* NULL-safe */

/* ==== records ========================================================================================== */

#define ST_AUDIT_HASH_HEX 65 /* 64 lowercase hex digits and a NUL */

/* One parsed record. The hash is the SHA-256 of the line's bytes (without its newline). */
typedef struct {
    uint64_t seq;
    int64_t time_ns;
    char type[48];
    char actor[256];
    char tenant[160];
    st_str_t details; /* the raw JSON object, a view into the line */
    char prev[ST_AUDIT_HASH_HEX];
    char hash[ST_AUDIT_HASH_HEX];
    st_str_t line; /* view */
} st_audit_rec_t;

/* Parses one record line strictly: the keys seq, time, type, actor, tenant, details, prev in this order,
 * seq a decimal integer, time RFC3339 UTC, details an object, prev 64 lowercase hex digits. Returns 0
 * or ST_EPARSE with the reason in why. Views point into line. */
int st_audit_record_parse(st_str_t line, st_audit_rec_t *out, char *why, size_t whysz);

/* Appends one record line (no newline) to out. details must be a JSON object. */
int st_audit_record_render(st_buf_t *out, uint64_t seq, int64_t time_ns, const char *type, const char *actor,
                           const char *tenant, st_str_t details, const char *prev_hex);

/* Lowercase hex SHA-256 of p[0..n). */
void st_audit_sha256_hex(const void *p, size_t n, char out[ST_AUDIT_HASH_HEX]);

/* Top-level member `key` of a JSON object: *raw views its value's text. Returns 0 or ST_ENOTFOUND. */
int st_audit_json_get(st_str_t obj, const char *key, st_str_t *raw);
/* Convenience readers over st_audit_json_get: a string (decoded, NUL-terminated, cut to cap) or an
 * integer. Return 0, ST_ENOTFOUND or ST_EPARSE. */
int st_audit_json_str(st_str_t obj, const char *key, char *out, size_t cap);
int st_audit_json_i64(st_str_t obj, const char *key, int64_t *out);

/* ---- chain verification over segment bytes -------------------------------------------------------- */

/* Where and why the chain broke. */
typedef struct {
    uint64_t segment; /* segment number */
    uint64_t line;    /* 1-based line within the segment */
    uint64_t offset;  /* byte offset of that line */
    uint64_t seq;     /* the record's seq (0 when it could not be parsed) */
    char what[512];
} st_audit_break_t;

/* State carried from segment to segment. Zero-initialise, then feed segments 1, 2, ... in order. */
typedef struct {
    uint64_t next_seq; /* 0 before the first record (then it must be 1) */
    char last_hash[ST_AUDIT_HASH_HEX];
    uint64_t segments, records;
    int64_t last_time_ns;
} st_audit_chain_t;

/* Checks one segment's bytes: every line parses, seqs follow each other, every prev is the hash of the
 * record before (the first record of the trail has 64 zeros), the first record of each segment is its
 * "segment.open" naming this segment number, and the bytes end with a newline. cb (optional) sees each
 * record in order; a negative return stops and is returned. Returns 0, or ST_ECORRUPT with *brk filled
 * (the first break). */
int st_audit_chain_segment(st_audit_chain_t *c, uint64_t segno, st_str_t bytes,
                           int (*cb)(void *arg, uint64_t segno, const st_audit_rec_t *rec), void *arg,
                           st_audit_break_t *brk);

/* Reads every local segment of dir in order and checks the chain (as above). Returns 0, ST_ECORRUPT
 * (*brk filled), ST_ENOTFOUND (no segment at all), or -errno. */
int st_audit_scan(const char *dir, int (*cb)(void *arg, uint64_t segno, const st_audit_rec_t *rec), void *arg,
                  st_audit_chain_t *chain, st_audit_break_t *brk);

/* Segment numbers present in dir (sorted). */
int st_audit_list_segments(const char *dir, st_u64vec_t *out);
/* "<dir>/<segment as 16 hex>.jsonl" */
void st_audit_segment_path(const char *dir, uint64_t segno, char *out, size_t cap);
/* The object key of a sealed segment: "<prefix>audit/<segment as 16 hex>.jsonl". */
void st_audit_seal_key(const char *prefix, uint64_t segno, char *out, size_t cap);

/* ==== the trail ======================================================================================== */

typedef struct st_audit st_audit_t;

typedef struct {
    const st_audit_config_t *cfg; /* copied; NULL: defaults */
    const char *dir;              /* the segments directory (created); required */
    st_s3_client_t *s3;           /* where seals go (NULL: sealed locally only); owned by the trail after a
                                     successful open */
    const char *bucket;
    const char *prefix; /* the lifecycle prefix; sealed segments go under <prefix>audit/ */
    const char *actor;  /* this process in records, e.g. "serve" (user@host is appended) */
    bool background;    /* a thread writes batched records every flush_interval and seals */
} st_audit_opts_t;

/* Opens (creating the directory and, for a new trail, segment 1). Returns 0 or an error. */
int st_audit_open(const st_audit_opts_t *o, st_audit_t **out);
/* Writes what is queued, seals when due, stops the thread, frees. Returns the first error of the final
 * writes. NULL-safe. */
int st_audit_close(st_audit_t *a);

typedef struct {
    uint64_t seq;
    char hash[ST_AUDIT_HASH_HEX];
} st_audit_ref_t;

/* Appends one record now (after everything queued), fsynced when durable. actor NULL: the trail's.
 * ref (optional) gets its seq and hash. Returns 0 or an error (logged and counted). Thread safe. */
int st_audit_append(st_audit_t *a, const char *type, const char *tenant, const char *actor, st_str_t details,
                    bool durable, st_audit_ref_t *ref);
/* Queues a record for the next batched write (never blocks on I/O; the time is taken now). When the
 * queue is full the record is dropped and counted; the next write records the gap ("trail.gap"). */
void st_audit_enqueue(st_audit_t *a, const char *type, const char *tenant, const char *actor,
                      st_str_t details);
/* Writes the queue (one fsync). */
int st_audit_flush(st_audit_t *a);
/* Closes the active segment when it is due (or, with force, whenever it holds records besides its
 * opening and seals), then seals every closed segment not sealed yet: upload (If-None-Match, Object Lock
 * when configured), then a "seal" record. Returns 0 or the first error (retried at the next call). */
int st_audit_seal(st_audit_t *a, bool force);
const char *st_audit_dir(const st_audit_t *a);
const char *st_audit_actor(const st_audit_t *a);

/* The process-wide trail the hooks write to (NULL: audit off). Set once at start-up and cleared before
 * st_audit_close. */
void st_audit_set_global(st_audit_t *a);
st_audit_t *st_audit_global(void);

/* ==== hooks (no-ops without a global trail) ============================================================ */

/* Chunks of one ingester flush cycle: each chunk's bytes are read back (page cache) and hashed with
 * SHA-256 when added; end(commit) writes one "chunk.write" record per chunk with one fsync, or drops
 * them when the index transaction did not commit. begin returns NULL when audit is off; the others
 * accept NULL. Failures are logged and counted, never returned to the ingester. */
typedef struct st_audit_batch st_audit_batch_t;
st_audit_batch_t *st_audit_batch_begin(void);
void st_audit_batch_chunk(st_audit_batch_t *b, const char *tenant, st_str_t labels, const st_chunk_ref_t *ref,
                          const char *chunks_dir);
void st_audit_batch_end(st_audit_batch_t *b, bool commit);

/* Lifecycle (lifecycle/run.c, erase.c): they read the run's structures (lifecycle_int.h). Tier moves are
 * recorded after their index commit (a failure is logged and counted; verify reports an object without
 * a record); deletions before it, durably, and an error fails the step. */
struct lc_run;
struct lc_chunk;
struct st_pack_state;
void st_audit_lc_upload(struct lc_run *r, const struct st_pack_state *ps, struct lc_chunk *const *g,
                        size_t n);
void st_audit_lc_repack(struct lc_run *r, const struct st_pack_state *ps, struct st_pack_state *const *src,
                        size_t nsrc);
void st_audit_lc_transition(struct lc_run *r, const struct st_pack_state *ps, st_tier_t from,
                            const char *old_version);
int st_audit_lc_delete_object(struct lc_run *r, const struct st_pack_state *ps, const st_lc_policy_t *p);
/* The hot chunks the run deletes at the end of their retention (policy set, local, target "delete"). */
int st_audit_lc_delete_hot(struct lc_run *r);

/* Erasure (delete) requests: received or refused at the API (refused non-NULL: the reason), their
 * outcome when a run finishes them (status processed or refused; other statuses are not recorded), and
 * each chunk or object they rewrite (before the index commit; an error fails that rewrite). */
void st_audit_erasure_request(const char *tenant, const char *id, st_str_t query, int64_t start, int64_t end,
                              int64_t now, const char *refused);
void st_audit_erasure_cancel(const char *tenant, const char *id);
void st_audit_erasure_outcome(const char *tenant, const char *id, const char *query, int64_t start,
                              int64_t end, const char *status, const char *message, uint64_t lines,
                              uint64_t chunks_deleted, uint64_t chunks_rewritten, int64_t now);
int st_audit_erasure_chunk(struct lc_run *r, const char *tenant, const char *request,
                           const st_chunk_ref_t *old, const st_chunk_ref_t *nw, uint64_t lines_removed);
int st_audit_erasure_object(struct lc_run *r, const char *tenant, const char *request,
                            const struct st_pack_state *old, const char *new_key, const char *new_version,
                            uint64_t new_size, uint64_t lines_removed, uint64_t chunks_rewritten,
                            uint64_t chunks_dropped);

/* Restores (lifecycle/reader.c): a request, and its completion the first time a status check sees
 * every object readable (key "restore/<tenant>/<id>", value: the request record). */
void st_audit_restore_requested(const char *tenant, const st_lc_restore_t *q, const st_strvec_t *keys);
void st_audit_restore_status(st_str_t key, st_str_t value, int done, int total);

/* A read of a tenant's data (queued; flushed every flush_interval). identity: the authenticated
 * credential ("basic:<user>", "bearer:<sha256 prefix>") or "" (no authentication). */
void st_audit_query(const char *tenant, const char *identity, const char *endpoint, const char *query,
                    int64_t start, int64_t end, const char *remote);

/* ==== st_compliance: process set-up ===================================================================== */

/* Opens the trail of cfg (when lifecycle.audit.enabled) as the global one for this process, with the
 * lifecycle bucket for seals, and records a "config.change" when the effective lifecycle configuration
 * (canonical JSON of policies, rules, S3 target, audit settings and prices) differs from the last one
 * recorded. actor: "serve", "lifecycle", ... Returns 0 (also when audit is off) or an error. */
int st_audit_start(const st_config_t *cfg, const char *actor, bool background);
/* Clears the global trail and closes it (flush, seal when due). */
int st_audit_stop(void);
/* The canonical JSON of a lifecycle configuration and its SHA-256 (what config.change records). */
int st_audit_config_canonical(const st_config_t *cfg, const st_lc_config_t *lc, st_buf_t *out,
                              char sha[ST_AUDIT_HASH_HEX]);
/* The trail directory of cfg. */
void st_audit_dir_of(const st_config_t *cfg, const st_lc_config_t *lc, char *out, size_t cap);

/* ==== st_compliance: verification ======================================================================= */

typedef struct {
    bool all;           /* every stored object */
    size_t sample;      /* else this many (0: sized by confidence and min_corrupt) */
    double confidence;  /* default 0.99 */
    double min_corrupt; /* the corrupt fraction the sample must detect, default 0.01 */
    uint64_t seed;      /* 0: random (the seed used is reported) */
    bool skip_objects;  /* the chain only */
} st_audit_verify_opts_t;

/* Verifies the trail of cfg: the chain over every segment (the sealed copy where there is one, else the
 * local file), local against sealed copies, every seal record against the bytes it seals, closed
 * segments left unsealed, and stored data against its recorded checksums: local chunks (SHA-256 of
 * their chunk.write record, CRC-32 of the index) and S3 objects (CRC-32 of the whole object, SHA-256 of
 * each chunk in it; archived objects: existence, size and class). json (optional) gets the result as
 * JSON, text (optional) as lines for people. Returns 0 when nothing is wrong, 1 when a problem was
 * found, or an error (nothing verified). */
int st_audit_verify(const st_config_t *cfg, st_index_t *ix, const st_audit_verify_opts_t *o, st_buf_t *json,
                    st_buf_t *text);

/* The smallest sample of a population of n objects that contains at least one of ceil(min_corrupt * n)
 * corrupt ones with probability >= confidence (hypergeometric; n when none smaller does). */
size_t st_audit_sample_size(size_t n, double confidence, double min_corrupt);

/* ==== st_compliance: reports ============================================================================ */

typedef enum { ST_REPORT_JSON = 0, ST_REPORT_CSV, ST_REPORT_HTML } st_report_format_t;
int st_report_format_parse(const char *s, st_report_format_t *out); /* 0 or ST_EPARSE */

typedef struct {
    const char *tenant;   /* NULL: every tenant */
    const char *policy;   /* NULL: every policy */
    int64_t as_of;        /* 0: now */
    int64_t grace_ns;     /* < 0: lifecycle.audit.deletion_grace */
    bool skip_objects;    /* no HEAD per S3 object / stat per local file */
    bool skip_cloudwatch; /* no CloudWatch Logs calls */
} st_report_opts_t;

/* The retention report (docs/compliance.md) in the given format. *violations gets the number of
 * violations. Returns 0 or an error. */
int st_report_retention(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix,
                        const st_report_opts_t *o, st_report_format_t fmt, st_buf_t *out, size_t *violations);

/* Deletion evidence: every deletion recorded in the trail whose time (its run's as-of time when it has
 * one) is in [from, to]: what (streams, time ranges, keys, versions, bytes), when, under which rule or
 * request, with the record's seq and hash. tenant NULL: all. JSON or CSV. *count gets the rows. */
int st_report_deletions(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix, const char *tenant,
                        int64_t from, int64_t to, st_report_format_t fmt, st_buf_t *out, size_t *count);

/* ==== st_compliance: retrievability drill ============================================================== */

typedef struct {
    int per_tier;       /* objects per archive class (default 1) */
    const char *tier;   /* retrieval tier: Standard (default), Bulk, Expedited */
    int days;           /* restored copy lifetime (default 1) */
    int64_t timeout_ns; /* give up waiting after this (default 12h) */
    int64_t poll_ns;    /* between status checks (default 60s) */
    uint64_t seed;      /* 0: random */
    FILE *progress;     /* NULL: quiet */
} st_drill_opts_t;

/* Restores a random sample of the archived objects of each archive class (GLACIER, DEEP_ARCHIVE), polls
 * until each is readable, reads it back and checks its CRC-32, and records a "drill.restore" per object
 * (requested, completed, seconds, outcome). json gets the results. Returns 0 when every restore
 * succeeded in time, 1 when one failed or timed out, or an error. */
int st_audit_restore_drill(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix,
                           const st_drill_opts_t *o, st_buf_t *json);

#endif
