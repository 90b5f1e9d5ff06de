/* report_int.h: the retention report's model, built by report.c and rendered as JSON and CSV there and
 * as HTML by html.c. */
#ifndef ST_AUDIT_REPORT_INT_H
#define ST_AUDIT_REPORT_INT_H

#include "audit/audit_int.h"
#include "lifecycle/lifecycle_int.h"

typedef struct {
    uint64_t chunks, bytes;
} rtb_t;

typedef struct {
    char tenant[152];
    uint64_t stream_id;
    char *labels; /* owned canonical label text */
    int policy;   /* index into lc->policies, -1: none */
    rtb_t tier[ST_TIER_COUNT];
    uint64_t chunks, bytes, entries, raw_bytes;
    int64_t oldest, newest;  /* entries' time range */
    int64_t next_transition; /* 0: none */
    int next_tier;
    int64_t next_deletion; /* 0: never */
    int64_t all_deleted;   /* when the newest chunk is deleted; 0: never */
    uint64_t violations;
} rstream_t;

typedef struct {
    rtb_t tier[ST_TIER_COUNT];
    uint64_t streams, chunks, bytes, entries, raw_bytes;
    int64_t oldest, newest, next_deletion;
    uint64_t objects[ST_TIER_COUNT], object_bytes[ST_TIER_COUNT];
    uint64_t locked_objects;
    int64_t min_retain_until; /* ns; 0: none */
    uint64_t violations;
} rpolicy_t;

typedef struct {
    char kind[24]; /* past_deletion, tier_not_allowed, missing_object, corrupt_object, object_lock,
                      cloudwatch_retention, audit_chain */
    char policy[64];
    char tenant[152];
    char stream[512];
    char tier[16];
    char key[512];
    uint64_t chunks, bytes;
    int64_t since; /* e.g. the deletion date that passed; 0: none */
    char message[512];
} rviolation_t;

typedef struct {
    st_pack_state_t ps;
    char status[96]; /* ok, missing, ... ("not checked" with skip_objects) */
} robject_t;

typedef struct {
    char tenant[152];
    char id[16];
    char query[512];
    char status[16];
    char message[512];
    int64_t start, end, created, finished;
    uint64_t lines;
} rerasure_t;

typedef struct {
    char name[520];
    int retention_days; /* 0: never expires */
    int expected_days;  /* 0: no expectation (no deleting policy ships here) */
    uint64_t stored_bytes;
    char policy[64];
} rcwgroup_t;

typedef struct {
    int64_t t;
    uint64_t bytes[ST_TIER_COUNT];
} rpoint_t;

typedef struct {
    char tier[16];
    int64_t at; /* when the drill ran */
    double seconds;
    char outcome[32];
    char key[512];
} rdrill_t;

typedef struct {
    const st_config_t *cfg;
    const st_lc_config_t *lc;
    const st_audit_config_t *ac;
    st_report_opts_t o;
    int64_t as_of, generated;
    int64_t grace;
    rstream_t *streams;
    size_t nstreams, capstreams;
    rpolicy_t *policies; /* lc->npolicies + 1 (the last: streams without a policy) */
    rviolation_t *viol;
    size_t nviol, capviol;
    robject_t *objects;
    size_t nobjects, capobjects;
    rerasure_t *erasures;
    size_t nerasures, caperasures;
    rcwgroup_t *cw;
    size_t ncw, capcw;
    bool cw_checked;
    char cw_error[256];
    rpoint_t *hist;
    size_t nhist;
    rdrill_t drills[ST_TIER_COUNT];
    /* totals */
    rtb_t tier[ST_TIER_COUNT];
    uint64_t objects_per_tier[ST_TIER_COUNT], object_bytes[ST_TIER_COUNT];
    uint64_t chunks, bytes, raw_bytes, entries;
    /* cost (USD per month) */
    double storage_cost[ST_TIER_COUNT], request_cost[ST_TIER_COUNT];
    uint64_t requests_30d[ST_TIER_COUNT];
    double total_cost, cost_all_hot, cost_all_standard, cost_cloudwatch_month, cost_cloudwatch_ingest;
    uint64_t cw_stored_bytes;
    /* audit */
    bool audit_enabled, audit_present, audit_ok;
    char audit_dir[1100];
    uint64_t audit_segments, audit_records, audit_last_seq, audit_seals, audit_unsealed;
    char audit_last_hash[ST_AUDIT_HASH_HEX];
    int64_t audit_last_seal;
    st_audit_break_t audit_break;
} report_t;

/* Renders the report as one self-contained HTML page (html.c). */
int st_report_html(const report_t *r, st_buf_t *out);
/* Display helpers shared by the renderers. */
void st_report_time(int64_t ns, char out[40]);  /* RFC3339 seconds, "" for 0 */
void st_report_bytes(uint64_t b, char out[32]); /* "1.5 GiB" */
const char *st_report_policy_name(const report_t *r, int policy);

#endif
