/* lifecycle_int.h: internals shared by the lifecycle files (pack format, state records, prices). */
#ifndef ST_LIFECYCLE_INT_H
#define ST_LIFECYCLE_INT_H

#include "lifecycle/lifecycle.h"
#include "common/metrics.h"
#include "objstore/objstore.h"

/* ---- pack objects: chunks back to back, then a footer indexing them (docs/formats.md) ---------- */

typedef struct {
    uint64_t chunk_id;
    uint64_t offset, length;
    uint32_t crc32;
    int64_t min_ts, max_ts;
    uint64_t stream_id;
} st_pack_entry_t;

/* Appends the footer for entries (offsets relative to the pack start; footer_off = bytes before it). */
int st_pack_footer_encode(st_buf_t *out, const char *tenant, const char *policy, const st_pack_entry_t *e,
                          size_t n, uint64_t footer_off);

/* ---- state records kept in the index (st_index_state_*) ------------------------------------------ */

/* "pack/<key>": one S3 object. */
typedef struct st_pack_state {
    char key[512];
    char tenant[151];
    char policy[64];
    st_tier_t tier;
    char version_id[128];
    uint64_t size;
    uint32_t crc32;
    int64_t min_ts, max_ts;
    uint64_t chunks;
    int64_t delete_at; /* INT64_MAX: never */
    char lock_mode[16];
    int64_t retain_until;
    int64_t created;
} st_pack_state_t;

int st_pack_state_encode(const st_pack_state_t *s, st_buf_t *out);
int st_pack_state_decode(st_str_t v, st_pack_state_t *s);

/* Price table (USD, us-east-1 list prices; docs/lifecycle.md). */
typedef struct {
    double storage_gb_month[ST_TIER_COUNT];
    double put_per_1000[ST_TIER_COUNT];
    double archive_overhead_bytes; /* billable extra per object in GLACIER / DEEP_ARCHIVE */
} st_prices_t;
extern const st_prices_t st_default_prices;

/* Whether a rule's tenant pattern ("*", "team-*" or an exact id) covers tenant. */
bool st_lc_glob_tenant(const char *pattern, const char *tenant);

/* Creates the S3 client for the lifecycle configuration. */
int st_lc_s3_client(const st_lc_config_t *lc, st_s3_client_t **out);

/* ---- one run (run.c) ----------------------------------------------------------------------------- */

/* A chunk as the run sees it. */
typedef struct lc_chunk {
    st_chunk_ref_t ref;
    char tenant[151];
    int policy;        /* -1: no policy */
    st_tier_t target;  /* ST_TIER_COUNT: delete */
    int64_t delete_at; /* INT64_MAX: never */
    bool done;         /* deleted or moved by this run */
} lc_chunk_t;

typedef struct lc_run {
    const st_lc_run_opts_t *o;
    st_lc_report_t *rep;
    st_s3_client_t *s3; /* NULL in a dry run */
    lc_chunk_t *c;      /* every indexed chunk once, sorted by chunk id */
    size_t n, cap;
    lc_chunk_t **by_path; /* chunks stored in S3, sorted by (object key, offset) */
    size_t nby_path;
    char chunks_dir[1024];
    char work_dir[1100]; /* <path_prefix>/lifecycle: lease, temporary pack files */
    st_metric_t *m_bytes[ST_TIER_COUNT], *m_objects[ST_TIER_COUNT], *m_fail, *m_last_ok, *m_runs;
} lc_run_t;

/* Carries out the delete requests that are due (erase.c). */
int st_lc_erase_run(lc_run_t *r);

/* A progress line (nothing when the run is quiet). */
void st_lc_progress(lc_run_t *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fault injection for the crash tests: when STRATA_TEST_CRASH_AT is "<point>" or "<point>:<n>", the
 * process kills itself with SIGKILL the n-th time (default 1st) it reaches that point. */
void st_lc_crash_point(const char *point);

/* ---- CloudWatch Logs (cloudwatch.c) -------------------------------------------------------------- */

struct yaml_document_s;
struct yaml_node_s;
/* Parses the lifecycle.cloudwatch mapping (node) into out (zeroed by the caller). Each problem is
 * appended to err as "<file>:<line>: lifecycle.cloudwatch.<key>: <message>", '\n'-separated, counted
 * in *nerr. Returns 0 or -ENOMEM. */
int st_lc_cloudwatch_parse(const st_config_t *cfg, struct yaml_document_s *doc, struct yaml_node_s *node,
                           st_lc_cloudwatch_t *out, st_buf_t *err, int *nerr);
void st_lc_cloudwatch_free(st_lc_cloudwatch_t *cw);
/* The CloudWatch step of a run (after the lease; r->c loaded): resume interrupted batches, ship,
 * import (through r->o->ingest), retention. Honours dry_run. CloudWatch failures are counted in the
 * report and retried next run; returns 0, or -ENOMEM / an index error. */
int st_lc_cloudwatch_run(lc_run_t *r);

#endif
