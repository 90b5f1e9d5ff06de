/* config_table.c: the one table of configuration keys (style guide c-9, fluent-bit's config_map).
 *
 * One row per key: dotted YAML path, type, field, default as text, range and a one-line description.
 * Defaults, loading, CLI overrides, /config output and docs/configuration.md all come from here.
 * Rows of one section must stay contiguous (the YAML writer relies on it; a unit test checks it). */
#include "config/config_int.h"

#include "common/err.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define FIELD(f) offsetof(st_config_t, f), sizeof(((st_config_t *)0)->f)
#define NS(x)    ((int64_t)(x))
#define SEC      INT64_C(1000000000)

#define BOOL(k, f, d, h)                                                                                     \
    {                                                                                                        \
        k, ST_CFG_BOOL, FIELD(f), d, 0, 0, NULL, NULL, h                                                     \
    }
#define INT(k, f, d, lo, hi, h)                                                                              \
    {                                                                                                        \
        k, ST_CFG_INT, FIELD(f), d, lo, hi, NULL, NULL, h                                                    \
    }
#define STR(k, f, d, minlen, chk, h)                                                                         \
    {                                                                                                        \
        k, ST_CFG_STRING, FIELD(f), d, minlen, 0, NULL, chk, h                                               \
    }
#define ENUM(k, f, d, choices, h)                                                                            \
    {                                                                                                        \
        k, ST_CFG_ENUM, FIELD(f), d, 0, 0, choices, NULL, h                                                  \
    }
#define DUR(k, f, d, lo, h)                                                                                  \
    {                                                                                                        \
        k, ST_CFG_DURATION, FIELD(f), d, lo, INT64_MAX, NULL, NULL, h                                        \
    }
#define PDUR(k, f, d, lo, h)                                                                                 \
    {                                                                                                        \
        k, ST_CFG_PDURATION, FIELD(f), d, lo, INT64_MAX, NULL, NULL, h                                       \
    }
#define FLOAT(k, f, d, lo, h)                                                                                \
    {                                                                                                        \
        k, ST_CFG_FLOAT, FIELD(f), d, lo, INT64_MAX, NULL, NULL, h                                           \
    }
#define BYTES(k, f, d, lo, h)                                                                                \
    {                                                                                                        \
        k, ST_CFG_BYTES, FIELD(f), d, lo, INT64_MAX, NULL, NULL, h                                           \
    }

const st_cfg_key_t st_cfg_keys[] = {
    BOOL("auth_enabled", auth_enabled, "false",
         "Require X-Scope-OrgID on every request; when false every request belongs to auth.no_auth_tenant."),
    STR("auth.no_auth_tenant", no_auth_tenant, "fake", 1, st_cfg_check_tenant,
        "Tenant used when auth_enabled is false (tenant ID rules: 1-150 bytes of A-Za-z0-9!-_.*'())."),
    STR("auth.credentials_file", auth_credentials_file, "", 0, NULL,
        "Basic/Bearer credentials and the tenants each may use (format in docs/security.md; hashes from "
        "`strata auth hash`). Empty: no authentication (put a proxy in front)."),

    STR("server.http_listen_address", server.http_listen_address, "127.0.0.1", 0, NULL,
        "Address the HTTP server binds to (empty: all interfaces)."),
    INT("server.http_listen_port", server.http_listen_port, "3100", 0, 65535,
        "HTTP port (0 picks a free port)."),
    DUR("server.http_server_read_timeout", server.http_server_read_timeout_ns, "30s", 1,
        "Time allowed for a whole request (headers and body) to arrive."),
    DUR("server.http_server_write_timeout", server.http_server_write_timeout_ns, "30s", 1,
        "Time allowed for a response to drain to the client."),
    DUR("server.http_server_idle_timeout", server.http_server_idle_timeout_ns, "2m", 1,
        "How long an idle keep-alive connection stays open."),
    BYTES("server.http_max_header_bytes", server.http_max_header_bytes, "1MiB", 1,
          "Largest request line plus headers accepted (431 above)."),
    INT("server.http_listen_conn_limit", server.http_listen_conn_limit, "0", 0, INT_MAX,
        "Maximum simultaneous connections (0 = unlimited)."),
    ENUM("server.log_level", server.log_level, "info", "error|warn|info|debug", "Least severe level logged."),
    ENUM("server.log_format", server.log_format, "logfmt", "logfmt", "Log line format (logfmt only)."),
    DUR("server.graceful_shutdown_timeout", server.graceful_shutdown_timeout_ns, "30s", 0,
        "On SIGTERM, how long in-flight requests may finish before connections are closed."),
    STR("server.http_tls_config.cert_file", server.http_tls_config.cert_file, "", 0, NULL,
        "PEM certificate (then any intermediates) for HTTPS on the HTTP port; with key_file. Empty: plain "
        "HTTP."),
    STR("server.http_tls_config.key_file", server.http_tls_config.key_file, "", 0, NULL,
        "PEM private key (not encrypted) of cert_file."),
    ENUM("server.http_tls_config.client_auth_type", server.http_tls_config.client_auth_type, "NoClientCert",
         "NoClientCert|RequestClientCert|RequireAnyClientCert|VerifyClientCertIfGiven|"
         "RequireAndVerifyClientCert",
         "Client certificate policy (Go's tls.ClientAuthType); the Verify types check it against "
         "client_ca_file."),
    STR("server.http_tls_config.client_ca_file", server.http_tls_config.client_ca_file, "", 0, NULL,
        "PEM CA certificates that client certificates must chain to (required by the Verify types)."),
    ENUM("server.http_tls_config.min_version", server.http_tls_config.min_version, "VersionTLS12",
         "VersionTLS12|VersionTLS13", "Oldest TLS version accepted."),

    STR("common.path_prefix", common.path_prefix, "./data", 1, NULL,
        "Directory under which the WAL (wal), chunks (chunks) and index (index) go unless set explicitly."),

    BYTES("distributor.max_recv_msg_size", distributor.max_recv_msg_size, "100MiB", 1,
          "Largest push body accepted as received (compressed); 413 above."),
    BYTES("distributor.max_decompressed_size", distributor.max_decompressed_size, "5000MiB", 1,
          "Largest push body accepted after decompression; 413 above."),
    STR("distributor.otlp_config.default_resource_attributes_as_index_labels",
        distributor.otlp_config.default_resource_attributes_as_index_labels,
        "service.name,service.namespace,service.instance.id,deployment.environment,deployment.environment.name,"
        "cloud.region,cloud.availability_zone,k8s.cluster.name,k8s.namespace.name,k8s.pod.name,k8s.container.name,"
        "container.name,k8s.replicaset.name,k8s.deployment.name,k8s.statefulset.name,k8s.daemonset.name,"
        "k8s.cronjob.name,k8s.job.name",
        0, NULL,
        "OTLP resource attributes that become stream labels (comma-separated; names sanitised, e.g. "
        "service.name -> service_name); every other attribute is stored as structured metadata."),

    BYTES("ingester.chunk_block_size", ingester.chunk_block_size, "262144", 1,
          "Uncompressed head bytes cut into one compressed block."),
    BYTES("ingester.chunk_target_size", ingester.chunk_target_size, "1572864", 1,
          "Compressed chunk size that closes a chunk (must be >= chunk_block_size)."),
    ENUM("ingester.chunk_encoding", ingester.chunk_encoding, "zstd", "zstd",
         "Chunk compression (zstd only)."),
    INT("ingester.zstd_level", ingester.zstd_level, "4", 1, 19,
        "zstd level of chunk blocks (Strata extension); one level lower while more than 16 MiB of sealed "
        "heads wait for the flusher, so a full-speed push does not outrun it."),
    BOOL("ingester.block_filters", ingester.block_filters, "true",
         "Store a filter of the 3-byte substrings of each block's lines (Strata extension; at most 260 bytes "
         "per block, ~1% of chunk bytes): line filters and regexes with a literal of 3 or more bytes skip "
         "blocks without it before decompressing them."),
    DUR("ingester.max_chunk_age", ingester.max_chunk_age_ns, "2h", 1,
        "Flush a chunk this long after its first entry; out-of-order window is half of it."),
    DUR("ingester.chunk_idle_period", ingester.chunk_idle_period_ns, "30m", 1,
        "Flush a stream's chunk after this long without new entries."),
    DUR("ingester.flush_check_period", ingester.flush_check_period_ns, "30s", 1,
        "How often chunks are checked for flushing."),
    STR("ingester.wal.dir", ingester.wal.dir, "", 0, NULL,
        "WAL directory (empty: <common.path_prefix>/wal)."),
    BOOL("ingester.wal.flush_on_shutdown", ingester.wal.flush_on_shutdown, "true",
         "On SIGTERM cut every head into a chunk and flush it."),
    BYTES("ingester.wal.segment_size", ingester.wal.segment_size, "64MiB", 1,
          "Size of one WAL segment file."),
    BYTES("ingester.wal.max_pending_bytes", ingester.wal.max_pending_bytes, "256MiB", 1,
          "Bytes queued but not yet written to the WAL before pushes get 503."),
    BYTES("ingester.wal.max_size", ingester.wal.max_size, "1GiB", 1,
          "WAL bytes on disk above which the oldest heads are flushed."),
    BYTES("ingester.memory_budget", ingester.memory_budget, "1GiB", 0,
          "Uncompressed bytes all heads plus in-flight push bodies may hold; above it pushes get 503 and retry "
          "(Strata extension; 0 = no limit)."),
    BYTES("ingester.head_memory_target", ingester.head_memory_target, "48MiB", 0,
          "Head bytes in memory above which live heads not written lately are zstd-compressed (\"frozen\": into "
          "spill files with ingester.head_spill, else on the heap), and if freezing cannot reach it the streams "
          "written longest ago close their chunks early (small chunks), so very many small streams stay far below "
          "memory_budget (Strata extension; 0 = off)."),
    BOOL("ingester.head_spill", ingester.head_spill, "true",
         "Keep the compressed frames of frozen heads in files under <chunks directory>/.spill (the kernel's page "
         "cache) instead of the process' memory; they are a cache of what the WAL holds, removed at start-up "
         "(Strata extension)."),
    BYTES("ingester.head_spill_segment_size", ingester.head_spill_segment_size, "64MiB", 4096,
          "Bytes per head spill file; files mostly holding released frames are compacted (Strata extension)."),

    STR("storage_config.filesystem.directory", storage_config.filesystem.directory, "", 0, NULL,
        "Chunk directory (empty: <common.path_prefix>/chunks)."),
    STR("storage_config.lmdb.directory", storage_config.lmdb.directory, "", 0, NULL,
        "LMDB index directory (empty: <common.path_prefix>/index)."),
    BYTES("storage_config.lmdb.map_size", storage_config.lmdb.map_size, "64GiB", 1,
          "LMDB virtual map size (the index can grow up to this)."),

    {"schema_config.configs", ST_CFG_PERIODS, FIELD(schema_config),
     "[{from: 2020-01-01, store: lmdb, object_store: filesystem, schema: v13, "
     "index: {prefix: index_, period: 24h}}]",
     0, 0, NULL, NULL,
     "Schema periods, oldest first: from (YYYY-MM-DD, ascending), store (lmdb|tsdb), "
     "object_store (filesystem), schema (v13|strata-v1), index.prefix, index.period (24h)."},

    INT("limits_config.max_entries_limit_per_query", limits_config.max_entries_limit_per_query, "5000", 0,
        INT_MAX, "Largest limit a log query may ask for (0 disables the check)."),
    PDUR("limits_config.max_query_length", limits_config.max_query_length_ns, "721h", 0,
         "Longest time range a query may cover (0 disables the check)."),
    INT("limits_config.max_query_series", limits_config.max_query_series, "500", 1, INT_MAX,
        "Most series a metric query may return."),
    PDUR("limits_config.query_timeout", limits_config.query_timeout_ns, "1m", 1,
         "Time after which a query is cancelled."),
    BOOL("limits_config.reject_old_samples", limits_config.reject_old_samples, "true",
         "Reject entries older than reject_old_samples_max_age."),
    PDUR("limits_config.reject_old_samples_max_age", limits_config.reject_old_samples_max_age_ns, "168h", 1,
         "Oldest entry age accepted when reject_old_samples is true."),
    PDUR("limits_config.creation_grace_period", limits_config.creation_grace_period_ns, "10m", 0,
         "How far in the future an entry's timestamp may be."),
    BYTES("limits_config.max_line_size", limits_config.max_line_size, "256KB", 0,
          "Longest log line accepted (0 = no limit)."),
    BOOL("limits_config.max_line_size_truncate", limits_config.max_line_size_truncate, "false",
         "Truncate lines longer than max_line_size instead of rejecting them."),
    INT("limits_config.max_label_names_per_series", limits_config.max_label_names_per_series, "15", 1,
        INT_MAX, "Most labels a stream may have."),
    INT("limits_config.max_label_name_length", limits_config.max_label_name_length, "1024", 1, INT_MAX,
        "Longest label name accepted."),
    INT("limits_config.max_label_value_length", limits_config.max_label_value_length, "2048", 1, INT_MAX,
        "Longest label value accepted."),
    FLOAT("limits_config.ingestion_rate_mb", limits_config.ingestion_rate_mb, "4", 0,
          "Per-tenant ingestion rate in MiB/s of line and structured metadata bytes (token bucket; 0 = no limit)."),
    FLOAT("limits_config.ingestion_burst_size_mb", limits_config.ingestion_burst_size_mb, "6", 0,
          "Per-tenant burst in MiB above the rate."),
    BYTES("limits_config.per_stream_rate_limit", limits_config.per_stream_rate_limit, "3MB", 0,
          "Per-stream ingestion rate in bytes/s (0 = no limit)."),
    BYTES("limits_config.per_stream_rate_limit_burst", limits_config.per_stream_rate_limit_burst, "15MB", 0,
          "Per-stream burst in bytes."),
    INT("limits_config.max_global_streams_per_user", limits_config.max_global_streams_per_user, "5000", 0, INT_MAX,
        "Most active (in-memory) streams per tenant (0 = no limit); the 429 names the labels with most values."),
    BYTES("limits_config.memory_budget_per_tenant", limits_config.memory_budget_per_tenant, "0", 0,
          "Uncompressed head bytes one tenant may hold; above it its pushes get 429 (Strata extension; 0 = no "
          "limit)."),
    STR("limits_config.discover_service_name", limits_config.discover_service_name,
        "service,app,application,app_name,name,app_kubernetes_io_name,container,container_name,k8s_container_name,"
        "component,workload,job,k8s_job_name",
        0, NULL,
        "Streams without service_name get the value of the first of these labels present, else "
        "\"unknown_service\" (comma-separated; empty disables)."),
    BOOL("limits_config.discover_log_levels", limits_config.discover_log_levels, "true",
         "Add structured metadata detected_level (from a level label, metadata or the line) to every entry."),
    BOOL("limits_config.allow_structured_metadata", limits_config.allow_structured_metadata, "true",
         "Accept structured metadata (the third element of a JSON value, protobuf/OTLP attributes); when false "
         "pushes carrying it are refused with Loki's text."),
    BYTES("limits_config.max_structured_metadata_size", limits_config.max_structured_metadata_size, "64KB", 0,
          "Largest structured metadata of one entry (names + values; 0 = no limit)."),
    INT("limits_config.max_structured_metadata_entries_count", limits_config.max_structured_metadata_entries_count,
        "128", 0, INT_MAX, "Most structured metadata pairs per entry (0 = no limit)."),
    ENUM("limits_config.deletion_mode", limits_config.deletion_mode, "filter-and-delete",
         "disabled|filter-only|filter-and-delete",
         "Delete API (/loki/api/v1/delete): disabled (403), filter-only (queries hide the lines) or "
         "filter-and-delete (and the lifecycle run removes them from storage)."),

    INT("querier.max_concurrent", querier.max_concurrent, "4", 1, 1024, "Queries evaluated at once."),
    DUR("querier.tail_max_duration", querier.tail_max_duration_ns, "1h", 1,
        "How long a live tail (/loki/api/v1/tail) may run before the server ends it with a normal close."),

    DUR("compactor.delete_request_cancel_period", compactor.delete_request_cancel_period_ns, "24h", 0,
        "Delete requests can be cancelled this long; then the lifecycle run removes the lines from storage."),
    DUR("compactor.delete_max_interval", compactor.delete_max_interval_ns, "24h", 0,
        "Largest max_interval a delete request with line filters may ask for (0 = no limit)."),
    DUR("compactor.compaction_interval", compactor.compaction_interval_ns, "10m", 1,
        "How often strata serve processes delete requests that are due."),
};

const size_t st_cfg_nkeys = sizeof st_cfg_keys / sizeof st_cfg_keys[0];
_Static_assert(sizeof st_cfg_keys / sizeof st_cfg_keys[0] <= ST_CFG_MAX_KEYS, "raise ST_CFG_MAX_KEYS");

const st_cfg_key_t *st_cfg_find(const char *key, size_t n)
{
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const char *k = st_cfg_keys[i].key;
        if (strlen(k) == n && memcmp(k, key, n) == 0) return &st_cfg_keys[i];
    }
    return NULL;
}

bool st_cfg_is_section(const char *key, size_t n)
{
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const char *k = st_cfg_keys[i].key;
        if (strlen(k) > n && memcmp(k, key, n) == 0 && k[n] == '.') return true;
    }
    return false;
}

const char *st_cfg_type_name(st_cfg_type_t t)
{
    switch (t) {
    case ST_CFG_BOOL: return "bool";
    case ST_CFG_INT: return "int";
    case ST_CFG_STRING: return "string";
    case ST_CFG_ENUM: return "string";
    case ST_CFG_DURATION: return "duration";
    case ST_CFG_PDURATION: return "duration";
    case ST_CFG_BYTES: return "size";
    case ST_CFG_FLOAT: return "float";
    case ST_CFG_PERIODS: return "list of periods";
    }
    return "?";
}

static size_t count_dots(const char *s, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += s[i] == '.';
    return d;
}

/* Candidate i at depth `depth`: the key itself or its prefix section with depth+1 components. */
static bool candidate(size_t i, size_t depth, const char **p, size_t *n)
{
    const char *k = st_cfg_keys[i].key;
    size_t len = strlen(k), dots = 0;
    for (size_t j = 0; j < len; j++) {
        if (k[j] == '.' && dots++ == depth) {
            *p = k;
            *n = j;
            return true;
        }
    }
    if (dots != depth) return false;
    *p = k;
    *n = len;
    return true;
}

const char *st_cfg_suggest(const char *key, size_t n, char *out, size_t outsz)
{
    size_t depth = count_dots(key, n);
    const char *leaf = key;
    for (size_t j = n; j > 0; j--) {
        if (key[j - 1] == '.') {
            leaf = key + j;
            break;
        }
    }
    size_t leafn = n - (size_t)(leaf - key);

    /* Same (distinctive) leaf name in exactly one place: the key is in the wrong section. */
    const char *found = NULL;
    size_t foundn = 0;
    int hits = 0;
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const char *k = st_cfg_keys[i].key;
        const char *kl = strrchr(k, '.');
        kl = kl ? kl + 1 : k;
        if (strlen(kl) == leafn && memcmp(kl, leaf, leafn) == 0) {
            found = k;
            foundn = strlen(k);
            hits++;
        }
    }
    if (hits != 1 || leafn < 6) { /* short leaves ("dir") are too ambiguous to move across sections */
        /* Closest key or section at the same depth, by edit distance over the whole path. */
        size_t best = SIZE_MAX;
        found = NULL;
        for (size_t i = 0; i < st_cfg_nkeys; i++) {
            const char *p;
            size_t pn;
            if (!candidate(i, depth, &p, &pn)) continue;
            size_t d = st_cfg_edit_distance(key, n, p, pn);
            if (d < best) {
                best = d;
                found = p;
                foundn = pn;
            }
        }
        size_t limit = 1 + leafn / 5;
        if (limit > 3) limit = 3;
        if (found == NULL || best == 0 || best > limit) return NULL;
    }
    if (foundn + 1 > outsz) return NULL;
    memcpy(out, found, foundn);
    out[foundn] = '\0';
    return out;
}

int st_cfg_check_tenant(const char *v, char *msg, size_t msgsz)
{
    size_t n = strlen(v);
    if (n == 0) {
        snprintf(msg, msgsz, "must not be empty");
        return ST_EPARSE;
    }
    if (n > 150) {
        snprintf(msg, msgsz, "tenant ID longer than 150 bytes (%zu)", n);
        return ST_EPARSE;
    }
    if (strcmp(v, ".") == 0 || strcmp(v, "..") == 0) {
        snprintf(msg, msgsz, "tenant ID must not be \".\" or \"..\"");
        return ST_EPARSE;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("!-_.*'()", ch) != NULL)
            continue;
        if (ch >= 0x20 && ch < 0x7f)
            snprintf(msg, msgsz, "invalid character '%c' in tenant ID", ch);
        else
            snprintf(msg, msgsz, "invalid byte 0x%02x in tenant ID", ch);
        return ST_EPARSE;
    }
    return 0;
}

int st_cfg_check_index_prefix(const char *v, char *msg, size_t msgsz)
{
    size_t n = strlen(v);
    if (n == 0) {
        snprintf(msg, msgsz, "must not be empty");
        return ST_EPARSE;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
            ch == '-')
            continue;
        if (ch >= 0x20 && ch < 0x7f)
            snprintf(msg, msgsz, "invalid character '%c' (allowed: A-Za-z0-9_-)", ch);
        else
            snprintf(msg, msgsz, "invalid byte 0x%02x (allowed: A-Za-z0-9_-)", ch);
        return ST_EPARSE;
    }
    return 0;
}
