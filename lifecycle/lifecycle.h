/* lifecycle.h: tiered retention: policies, the planner and the worker that moves chunks from the hot
 * tier (local disk) to S3 Standard, Glacier and Deep Archive, packs them, and deletes them at the end of
 * their retention; plus restores and reads of chunks stored in S3.
 *
 * Policies come from the "lifecycle:" config section (st_lifecycle_config_parse). A run (st_lifecycle_run)
 * holds an exclusive lease (a lock file in the data directory), plans from the index as of a given time,
 * and executes each step as an intent recorded in the index first, verified (HEAD + checksum) before any
 * source is deleted, so a run killed at any point can simply be run again. */
#ifndef ST_LIFECYCLE_LIFECYCLE_H
#define ST_LIFECYCLE_LIFECYCLE_H

#include "common/buf.h"
#include "common/labels.h"
#include "config/config.h"
#include "index/index.h"
#include "ingester/ingester.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Storage tiers, warmest first. The value is what the index stores as a chunk's storage_class. */
typedef enum {
    ST_TIER_HOT = 0,      /* local disk */
    ST_TIER_STANDARD = 1, /* S3 STANDARD */
    ST_TIER_STANDARD_IA = 2,
    ST_TIER_GLACIER_IR = 3,
    ST_TIER_GLACIER = 4, /* S3 GLACIER (Flexible Retrieval) */
    ST_TIER_DEEP_ARCHIVE = 5,
    ST_TIER_COUNT
} st_tier_t;

const char *st_tier_name(st_tier_t t);         /* "hot", "STANDARD", ... (S3 storage-class names) */
int st_tier_parse(st_str_t s, st_tier_t *out); /* 0 or ST_EPARSE */
bool st_tier_archived(st_tier_t t);            /* GLACIER and DEEP_ARCHIVE need a restore to read */
int64_t st_tier_min_days(st_tier_t t);         /* S3 minimum storage duration (0, 30, 90, 180) */

#define ST_LC_MAX_TIERS 8

struct st_audit_config;

typedef struct {
    st_tier_t tier;
    int64_t until_ns; /* data younger than this (age = now - newest entry) stays here */
} st_lc_tier_t;

typedef enum { ST_LOCK_NONE = 0, ST_LOCK_GOVERNANCE, ST_LOCK_COMPLIANCE } st_lock_mode_t;

typedef struct {
    char name[64];
    char legal_basis[512];      /* free text for reports */
    bool erasable;              /* erasure (delete API) allowed */
    bool immutable;             /* nothing deleted before delete_after; implies Object Lock if set */
    st_lock_mode_t object_lock; /* retain-until = deletion date on every object written */
    bool allow_early_delete;    /* accept tiers shorter than the class's minimum storage duration */
    st_lc_tier_t tiers[ST_LC_MAX_TIERS];
    int ntiers;
    int64_t delete_after_ns;       /* 0: never deleted */
    int cloudwatch_retention_days; /* 0: not set */
} st_lc_policy_t;

typedef struct {
    char tenant[151]; /* "*" matches every tenant */
    char *selector;   /* owned LogQL selector text ("" matches every stream) */
    st_matcher_t *m;  /* owned compiled matchers */
    size_t nm;
    void *parsed; /* owned parsed expression backing m */
    int policy;   /* index into policies */
    int line;
} st_lc_rule_t;

/* lifecycle.cloudwatch (docs/cloudwatch.md): CloudWatch Logs as a hot tier. Names are templates with
 * {tenant}, {__labels__} (the stream's label text) and {<label name>} placeholders. */
typedef struct {
    char tenant[151]; /* "*" matches every tenant (a trailing * is a prefix match) */
    char *selector;   /* owned LogQL selector text ("" matches every stream) */
    st_matcher_t *m;  /* owned compiled matchers */
    size_t nm;
    void *parsed;         /* owned parsed expression backing m */
    char log_group[513];  /* template */
    char log_stream[513]; /* template, default "{__labels__}" */
    int line;
} st_lc_cw_ship_t;

typedef struct {
    char log_group[513];         /* one group, or "" */
    char log_group_prefix[513];  /* every group with this prefix, or "" */
    char log_stream_prefix[513]; /* "" = every stream of the group */
    char tenant[151];            /* tenant the lines are stored under (default auth.no_auth_tenant) */
    st_labels_t labels;          /* owned; added to {log_group, log_stream} */
    int64_t start_ns;            /* how far back the first import of a stream reaches (default 14d) */
    int64_t delay_ns;            /* only events at least this old are imported (default 0) */
    int line;
} st_lc_cw_import_t;

typedef struct {
    bool configured;       /* the section is present */
    char region[64];       /* "" = $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1 */
    char endpoint[256];    /* "" = https://logs.<region>.amazonaws.com */
    bool manage_retention; /* keep each group's retention in line with its data's policy */
    int max_attempts;      /* per request; 0 = the client's default (5) */
    st_lc_cw_ship_t *ship; /* owned */
    int nship;
    st_lc_cw_import_t *import; /* owned */
    int nimport;
} st_lc_cloudwatch_t;

typedef struct {
    bool enabled;              /* run inside strata serve */
    int64_t interval_ns;       /* between runs inside serve */
    uint64_t hot_max_bytes;    /* 0: no size limit on the hot tier */
    uint64_t pack_target_size; /* archive packs are cut at this size */
    struct {
        char endpoint[256]; /* "" = AWS */
        char region[64];
        char bucket[64];
        char prefix[256]; /* at most 64 characters */
        bool path_style;
        int max_attempts;      /* per request; 0: the client's default (5) */
        int64_t retry_base_ns; /* backoff base; 0: default (100ms) */
        int64_t connect_timeout_ns, request_timeout_ns, low_speed_time_ns; /* 0: client defaults */
    } s3;
    st_lc_policy_t *policies;
    int npolicies;
    st_lc_rule_t *rules;
    int nrules;
    int default_policy;            /* -1: streams no rule matches stay hot forever */
    st_lc_cloudwatch_t cloudwatch; /* ship to / import from CloudWatch Logs (cloudwatch.c) */
    struct st_audit_config *audit; /* lifecycle.audit and lifecycle.prices (audit/audit.h); NULL: defaults */
} st_lc_config_t;

/* Parses and validates the section kept by the config loader (st_config_t.lifecycle). An empty
 * section gives a disabled configuration with no policies. Errors are one per line,
 * "<file>:<line>: lifecycle.<path>: <message>"; returns 0, ST_EPARSE or -ENOMEM. */
int st_lifecycle_config_parse(const st_config_t *cfg, st_lc_config_t **out, char *err, size_t errsz);
void st_lifecycle_config_free(st_lc_config_t *c); /* NULL-safe */

/* True when a run writes imported data (CloudWatch import configured): st_lc_run_opts_t.ingest. */
bool st_lc_wants_ingest(const st_lc_config_t *c);

/* The policy of a stream (first matching rule, else the default); -1 for none. */
int st_lc_policy_for(const st_lc_config_t *c, const char *tenant, const st_labels_t *labels);
/* Where data of this age belongs under policy p; ST_TIER_COUNT means "delete". */
st_tier_t st_lc_target(const st_lc_policy_t *p, int64_t age_ns);

/* ---- runs ------------------------------------------------------------------------------------------ */

typedef struct {
    const st_config_t *cfg;
    const st_lc_config_t *lc;
    st_index_t *index;
    int64_t now_ns;  /* evaluate as of this time (--now) */
    bool dry_run;    /* plan and price only */
    bool erase_only; /* only carry out due delete requests (no tier moves) */
    FILE *progress;  /* progress lines (NULL: quiet) */
    FILE *plan;      /* the plan as text (NULL: none) */
    /* Stores imported data durably, blocking until it is (the CloudWatch import); NULL: the import is
     * skipped (an offline run while strata serve holds the data directory: the server imports). */
    int (*ingest)(void *arg, st_push_t *p);
    void *ingest_arg;
} st_lc_run_opts_t;

typedef struct {
    uint64_t chunks, chunk_bytes;     /* examined */
    uint64_t to_upload, upload_bytes; /* hot -> S3 */
    uint64_t to_transition, transition_bytes;
    uint64_t to_delete, delete_bytes;
    uint64_t packs_written, objects_deleted, requests;
    uint64_t failures;
    double one_time_cost_usd;         /* requests and transitions of this run */
    double monthly_storage_usd_after; /* storage per month once the plan is done */
    /* CloudWatch Logs (dry run: planned): events and bytes (message + 26 each) accepted by
     * PutLogEvents, events left out (outside the 14 d / 2 h window, too large, rejected), imported
     * events and message bytes, PutRetentionPolicy calls, PutLogEvents requests. The ingestion price
     * ($0.50/GB) is part of one_time_cost_usd. */
    uint64_t cw_shipped_events, cw_shipped_bytes, cw_skipped_events;
    uint64_t cw_imported_events, cw_imported_bytes;
    uint64_t cw_retention_changes, cw_requests;
} st_lc_report_t;

/* Runs the lifecycle once (see the file comment). Returns 0, ST_EBADSTATE when another run holds the
 * lease, or an error (the report says what was done before it). */
int st_lifecycle_run(const st_lc_run_opts_t *o, st_lc_report_t *rep);

/* ---- reading chunks that live in S3, and restores ----------------------------------------------- */

typedef struct st_lc_reader st_lc_reader_t;

/* A reader caches the byte ranges of chunks read from S3 under cache_dir (bounded by max_bytes,
 * least recently used files evicted). Thread safe. */
int st_lc_reader_new(const st_lc_config_t *lc, const char *cache_dir, uint64_t max_bytes,
                     st_lc_reader_t **out);
void st_lc_reader_free(st_lc_reader_t *r); /* NULL-safe */
/* Makes the chunk available as a local file region: path (pathsz bytes) and *base (offset of the
 * chunk in that file). Returns 0, ST_EARCHIVED for a chunk in Glacier/Deep Archive that is not
 * restored, or another error. Matches the querier's chunk fetch callback. */
int st_lc_reader_fetch(void *reader, const st_chunk_ref_t *ref, char *path, size_t pathsz, uint64_t *base);

typedef struct {
    char id[40];
    int64_t created;
    int64_t start, end;
    char selector[512];
    char tier[16]; /* Standard | Bulk | Expedited */
    int days;
    int objects; /* archive objects the restore covers */
    int done;    /* restored so far (HEAD says ongoing-request="false") */
    int failed;
} st_lc_restore_t;

/* Issues RestoreObject for every archived object holding chunks of the selector's streams in
 * [start, end]. The request is recorded (GET lists it). Returns 0 (out filled), ST_ENOTFOUND when
 * nothing archived matches, or an error. */
int st_lc_restore_request(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t selector,
                          int64_t start, int64_t end, const char *tier, int days, int64_t now,
                          st_lc_restore_t *out, char *err, size_t errsz);
/* Lists the tenant's restore requests with fresh progress (one HEAD per object); JSON array into out. */
int st_lc_restore_status(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_buf_t *out);

/* ---- delete requests (Loki's /loki/api/v1/delete; erase.c) ------------------------------------- */

/* Records a delete request: query is a selector with optional line filters, [start, end] in ns
 * (inclusive). The lines are hidden from queries at once; a lifecycle run removes them from storage
 * once compactor.delete_request_cancel_period (and the ingester's max_chunk_age) has passed. Returns
 * 0 (id gets the 8-hex request id), ST_EPARSE ("invalid query expression" in err), ST_EBADSTATE when a
 * selected stream's policy is immutable or under Object Lock (the reason in err) or an error. */
int st_lc_delete_add(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t query,
                     int64_t start, int64_t end, int64_t now, char id[16], char *err, size_t errsz);
/* What a request would touch (streams, chunks per tier, entries and bytes in them), as JSON. */
int st_lc_delete_preview(const st_lc_config_t *lc, st_index_t *ix, const char *tenant, st_str_t query,
                         int64_t start, int64_t end, st_buf_t *out, char *err, size_t errsz);
/* The tenant's requests as Loki's JSON array (request_id, start_time, end_time, query, status,
 * created_at), oldest first, plus deleted_lines and message. */
int st_lc_delete_list(st_index_t *ix, const char *tenant, st_buf_t *out);
/* Cancels a request still "received". Returns 0, ST_ENOTFOUND or ST_EBADSTATE (Loki's text in err). */
int st_lc_delete_cancel(st_index_t *ix, const char *tenant, const char *id, bool force, char *err,
                        size_t errsz);

#endif
