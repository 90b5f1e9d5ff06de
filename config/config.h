/* config.h: Strata's configuration: one immutable struct, loaded from YAML over built-in defaults.
 *
 * Key names follow Loki's where the concept is the same (server.http_listen_port, limits_config.*,
 * schema_config, ...). Every key has a documented default (st_config_print_reference prints them
 * all; docs/configuration.md is generated from the same table). Sizes accept plain integers or
 * byte sizes with binary units as Loki ("256KB" = 262144); durations accept Prometheus ("1h30m", "7d") and Go
 * ("1.5h", "300ms") forms. Loading never exits: errors name the file, line and key. */
#ifndef ST_CONFIG_CONFIG_H
#define ST_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ST_CONFIG_MAX_PERIODS 16

typedef struct {
    int64_t from_day;        /* UTC day number the period starts at (from: "YYYY-MM-DD") */
    char store[16];          /* "lmdb" (also accepts "tsdb" as an alias, stored as "lmdb") */
    char object_store[16];   /* "filesystem" (later: "s3") */
    char schema[16];         /* "v13" or "strata-v1" */
    char index_prefix[32];   /* "index_" */
    int64_t index_period_ns; /* must be 24h */
} st_period_config_t;

typedef struct {
    /* top level */
    bool auth_enabled;        /* auth_enabled: false -> every request is tenant auth.no_auth_tenant */
    char no_auth_tenant[151]; /* default "fake" */
    char auth_credentials_file[1024]; /* "" = no HTTP authentication */

    struct {
        char http_listen_address[256];        /* default "127.0.0.1" */
        int http_listen_port;                 /* default 3100 */
        int64_t http_server_read_timeout_ns;  /* 30s: whole request (headers + body) must arrive */
        int64_t http_server_write_timeout_ns; /* 30s: response must drain */
        int64_t http_server_idle_timeout_ns;  /* 120s: keep-alive idle */
        size_t http_max_header_bytes;         /* 1MiB */
        int http_listen_conn_limit;           /* 0 = unlimited */
        char log_level[8];                    /* error|warn|info|debug, default info */
        char log_format[8];                   /* logfmt (only) */
        int64_t graceful_shutdown_timeout_ns; /* 30s */
        struct {
            char cert_file[1024];      /* "" = plain HTTP; set together with key_file */
            char key_file[1024];       /* PEM private key of cert_file */
            char client_auth_type[32]; /* Go's tls.ClientAuthType name, default "NoClientCert" */
            char client_ca_file[1024]; /* CAs for client certificates (required by the Verify* types) */
            char min_version[16];      /* "VersionTLS12" (default) | "VersionTLS13" */
        } http_tls_config;
    } server;

    struct {
        char path_prefix[1024]; /* default "./data" */
    } common;

    struct {
        size_t max_recv_msg_size;     /* 100MiB compressed body limit (413 above) */
        size_t max_decompressed_size; /* 5000MiB decompressed body limit (413 above) */
        struct {
            /* comma-separated OTLP resource attributes indexed as stream labels (Loki's list) */
            char default_resource_attributes_as_index_labels[1024];
        } otlp_config;
    } distributor;

    struct {
        size_t chunk_block_size;       /* 262144: head bytes (uncompressed) cut into one block */
        size_t chunk_target_size;      /* 1572864: compressed chunk size that closes a chunk */
        char chunk_encoding[16];       /* "zstd" (only) */
        int zstd_level;                /* strata extension: 4 (3 under flusher backlog) */
        bool block_filters;            /* strata extension: true (trigram filter per block) */
        int64_t max_chunk_age_ns;      /* 2h */
        int64_t chunk_idle_period_ns;  /* 30m */
        int64_t flush_check_period_ns; /* 30s */
        struct {
            char dir[1024];           /* default <path_prefix>/wal */
            bool flush_on_shutdown;   /* true: SIGTERM cuts every head into a chunk */
            size_t segment_size;      /* strata: 64MiB WAL segment files */
            size_t max_pending_bytes; /* strata: 256MiB queued but not yet written -> 503 */
            size_t max_size;          /* strata: 1GiB on disk -> force flush of the oldest heads */
        } wal;
        size_t memory_budget;      /* strata: 1GiB of heads + in-flight push bodies (0 = none) */
        size_t head_memory_target; /* strata: above this, live heads are compressed, then the oldest streams close early (0 = off) */
        bool head_spill;           /* strata: true: compressed head frames in spill files, not on the heap */
        size_t head_spill_segment_size; /* strata: 64MiB per spill file */
    } ingester;

    struct {
        struct {
            char directory[1024]; /* default <path_prefix>/chunks */
        } filesystem;
        struct {
            char directory[1024]; /* default <path_prefix>/index */
            size_t map_size;      /* 64GiB virtual map size */
        } lmdb;
    } storage_config;

    struct {
        st_period_config_t configs[ST_CONFIG_MAX_PERIODS];
        int nconfigs; /* default: one period from 2020-01-01, lmdb, v13, 24h */
    } schema_config;

    struct {
        int max_entries_limit_per_query;       /* 5000 */
        int64_t max_query_length_ns;           /* 721h */
        int max_query_series;                  /* 500 */
        int64_t query_timeout_ns;              /* 1m */
        bool reject_old_samples;               /* true */
        int64_t reject_old_samples_max_age_ns; /* 168h */
        int64_t creation_grace_period_ns;      /* 10m */
        size_t max_line_size;                  /* 256KB = 262144 (Loki's binary KB; 0 = none) */
        bool max_line_size_truncate;           /* false */
        int max_label_names_per_series;        /* 15 */
        int max_label_name_length;             /* 1024 */
        int max_label_value_length;            /* 2048 */
        double ingestion_rate_mb;              /* 4 MiB/s per tenant (0 = none) */
        double ingestion_burst_size_mb;        /* 6 MiB */
        size_t per_stream_rate_limit;          /* 3MB/s */
        size_t per_stream_rate_limit_burst;    /* 15MB */
        int max_global_streams_per_user;       /* 5000 (0 = none) */
        size_t memory_budget_per_tenant;       /* 0 = none */
        char discover_service_name[1024];      /* comma-separated label names ("" disables) */
        bool discover_log_levels;              /* true: detected_level structured metadata */
        char deletion_mode[24];                /* disabled | filter-only | filter-and-delete */
        bool allow_structured_metadata;        /* true */
        size_t max_structured_metadata_size;   /* 64KB */
        int max_structured_metadata_entries_count; /* 128 */
    } limits_config;

    struct {
        int max_concurrent; /* 4: queries evaluated at once */
        int64_t tail_max_duration_ns; /* 1h: a live tail is closed (normally) after this long */
    } querier;

    struct {
        int64_t delete_request_cancel_period_ns; /* 24h */
        int64_t delete_max_interval_ns;          /* 24h (0 = none) */
        int64_t compaction_interval_ns;          /* 10m: delete processing inside serve */
    } compactor;

    /* The "lifecycle:" section verbatim (after ${VAR} expansion): tiers, policies and rules are
     * nested lists the lifecycle module parses and validates itself (st_lifecycle_config_parse),
     * reporting errors against the original file lines. Empty when the section is absent. */
    struct {
        char text[32768]; /* the section's value, first line padded to its original column */
        int line;         /* 1-based file line of the first character of text */
        char file[256];   /* name used in messages */
    } lifecycle;
} st_config_t;

/* Fills every field with its default (paths derived from common.path_prefix). */
void st_config_defaults(st_config_t *c);

/* Loads path over the defaults (c is reset to them first), then derives paths and validates. On
 * failure returns ST_EPARSE (or -errno when the file cannot be read, -ENOMEM), leaves *c unchanged
 * and writes one or more human-readable lines into err (errsz bytes, '\n'-separated, always
 * NUL-terminated, cut when too long), each like
 * "strata.yaml:12: server.http_listen_port: invalid integer \"x\"". Every error is reported, not only
 * the first (up to 100); cross-field rules are checked once every key parses. Unknown keys are
 * errors; typos name the closest valid key. Files over 4 MiB (-EFBIG) and YAML nested deeper than
 * 32 collections are rejected. */
int st_config_load(st_config_t *c, const char *path, char *err, size_t errsz);

/* Flags for st_config_load_file() and st_config_load_string(). */
#define ST_CONFIG_EXPAND_ENV 1u /* Loki's -config.expand-env=true: st_config_expand_env() first */

/* st_config_load() with flags. */
int st_config_load_file(st_config_t *c, const char *path, unsigned flags, char *err, size_t errsz);

/* st_config_load() from memory: yaml[0..n) (need not be NUL-terminated); name is the file name
 * used in messages (e.g. "strata.yaml"). */
int st_config_load_string(st_config_t *c, const char *name, const char *yaml, size_t n, unsigned flags,
                          char *err, size_t errsz);

/* Expands ${VAR} and ${VAR:-default} (default when VAR is unset or empty; unset without default
 * gives "") in in[0..n), textually, before YAML parsing. VAR is [A-Za-z_][A-Za-z0-9_]*; the default
 * runs to the first '}' and is not expanded again. Anything else, including a bare $VAR, an
 * unterminated "${" and other shell forms, is copied unchanged. Returns a malloc'd NUL-terminated
 * string (length in *outn when outn is not NULL), or NULL on OOM. */
char *st_config_expand_env(const char *in, size_t n, size_t *outn);

/* Applies a -key=value override from the command line, split by the caller at the first '='
 * (e.g. key "server.http_listen_port", value "3101"), using the same keys and value syntax as the
 * YAML file (schema_config.configs takes a YAML flow list). Returns 0, or ST_EPARSE with "key: message" in
 * err and the field unchanged. Changing common.path_prefix re-derives the directories that still hold the old
 * derived value; call st_config_finish() after the last override. */
int st_config_set(st_config_t *c, const char *key, const char *value, char *err, size_t errsz);

/* Re-derives dependent defaults (empty directories under path_prefix) and checks cross-field rules
 * (chunk_target_size >= chunk_block_size, schema periods ascending, ...). Returns 0 or ST_EPARSE
 * with one "key: message" line per problem in err. */
int st_config_finish(st_config_t *c, char *err, size_t errsz);

/* Writes the effective config as YAML (for GET /config) into a malloc'd string (NULL on OOM).
 * Loading the output again yields an identical struct. */
char *st_config_to_yaml(const st_config_t *c);

/* Prints every key with its type, default and description (used by --help-config and docs). */
void st_config_print_reference(FILE *out);

/* Prints the same reference as Markdown (docs/configuration.md is this output; the target
 * strata-config-docs writes it). */
void st_config_print_markdown(FILE *out);

/* Sizes as Loki reads them (c2h5oh/datasize): digits with optional '.' and ',' then an optional unit
 * (B, K/KB/KiB = 1024, M/MB/MiB = 1024^2, ... up to E, case-insensitive, optional spaces). Exact
 * integer arithmetic; a fractional byte count is truncated. Returns 0, ST_EPARSE, or ST_ELIMIT above
 * UINT64_MAX; writes *out only on success. Every size in every Strata file (the main config, the
 * lifecycle policy file, the audit section) is read with it. */
int st_cfg_parse_bytes(const char *s, size_t n, uint64_t *out);

#endif
