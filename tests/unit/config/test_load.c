/* test_load.c: unit tests for config loading: documented defaults, a file that sets every key, the
 * exact error messages (file:line: key: message) for each error class, error collection, CLI
 * overrides, ${VAR} expansion, derived directories, schema_config validation and YAML round trips. */
#include "config/config_int.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define SEC  ST_NS_PER_SEC
#define MIN  (60 * SEC)
#define HOUR (3600 * SEC)

static char err[8192];

static int load(st_config_t *c, const char *yaml)
{
    return st_config_load_string(c, "strata.yaml", yaml, strlen(yaml), 0, err, sizeof err);
}

/* Loads yaml expecting failure with exactly `want` as the error text. */
static void expect_error(const char *yaml, const char *want)
{
    st_config_t *c = malloc(sizeof *c);
    st_config_defaults(c);
    c->server.http_listen_port = 4242; /* must survive a failed load */
    int rc = load(c, yaml);
    if (rc != ST_EPARSE) fail_msg("rc %d for:\n%s", rc, yaml);
    if (strcmp(err, want) != 0) fail_msg("for:\n%s\nwant: %s\ngot:  %s", yaml, want, err);
    assert_int_equal(c->server.http_listen_port, 4242);
    free(c);
}

static void test_defaults(void **state)
{
    (void)state;
    st_config_t c;
    st_config_defaults(&c);
    assert_false(c.auth_enabled);
    assert_string_equal(c.no_auth_tenant, "fake");
    assert_string_equal(c.server.http_listen_address, "127.0.0.1");
    assert_int_equal(c.server.http_listen_port, 3100);
    assert_true(c.server.http_server_read_timeout_ns == 30 * SEC);
    assert_true(c.server.http_server_write_timeout_ns == 30 * SEC);
    assert_true(c.server.http_server_idle_timeout_ns == 120 * SEC);
    assert_int_equal(c.server.http_max_header_bytes, 1 << 20);
    assert_int_equal(c.server.http_listen_conn_limit, 0);
    assert_string_equal(c.server.log_level, "info");
    assert_string_equal(c.server.log_format, "logfmt");
    assert_true(c.server.graceful_shutdown_timeout_ns == 30 * SEC);
    assert_string_equal(c.common.path_prefix, "./data");
    assert_int_equal(c.distributor.max_recv_msg_size, 100u << 20);
    assert_true(c.distributor.max_decompressed_size == (size_t)5000 << 20);
    assert_int_equal(c.ingester.chunk_block_size, 262144);
    assert_int_equal(c.ingester.chunk_target_size, 1572864);
    assert_string_equal(c.ingester.chunk_encoding, "zstd");
    assert_int_equal(c.ingester.zstd_level, 4);
    assert_true(c.ingester.block_filters);
    assert_int_equal(c.ingester.head_memory_target, 48u << 20);
    assert_true(c.ingester.head_spill);
    assert_int_equal(c.ingester.head_spill_segment_size, 64u << 20);
    assert_true(c.ingester.max_chunk_age_ns == 2 * HOUR);
    assert_true(c.ingester.chunk_idle_period_ns == 30 * MIN);
    assert_true(c.ingester.flush_check_period_ns == 30 * SEC);
    assert_string_equal(c.ingester.wal.dir, "./data/wal");
    assert_true(c.ingester.wal.flush_on_shutdown);
    assert_int_equal(c.ingester.wal.segment_size, 64u << 20);
    assert_int_equal(c.ingester.wal.max_pending_bytes, 256u << 20);
    assert_int_equal(c.ingester.wal.max_size, 1u << 30);
    assert_string_equal(c.storage_config.filesystem.directory, "./data/chunks");
    assert_string_equal(c.storage_config.lmdb.directory, "./data/index");
    assert_true(c.storage_config.lmdb.map_size == (size_t)64 << 30);
    assert_int_equal(c.schema_config.nconfigs, 1);
    const st_period_config_t *p = &c.schema_config.configs[0];
    assert_int_equal(p->from_day, st_days_from_civil(2020, 1, 1));
    assert_string_equal(p->store, "lmdb");
    assert_string_equal(p->object_store, "filesystem");
    assert_string_equal(p->schema, "v13");
    assert_string_equal(p->index_prefix, "index_");
    assert_true(p->index_period_ns == 24 * HOUR);
    assert_int_equal(c.limits_config.max_entries_limit_per_query, 5000);
    assert_true(c.limits_config.max_query_length_ns == 721 * HOUR);
    assert_int_equal(c.limits_config.max_query_series, 500);
    assert_true(c.limits_config.query_timeout_ns == MIN);
    assert_true(c.limits_config.reject_old_samples);
    assert_true(c.limits_config.reject_old_samples_max_age_ns == 168 * HOUR);
    assert_true(c.limits_config.creation_grace_period_ns == 10 * MIN);
    assert_int_equal(c.limits_config.max_line_size, 262144); /* "256KB": Loki's KB = 1024 */
    assert_false(c.limits_config.max_line_size_truncate);
    assert_int_equal(c.limits_config.max_label_names_per_series, 15);
    assert_int_equal(c.limits_config.max_label_name_length, 1024);
    assert_int_equal(c.limits_config.max_label_value_length, 2048);
    assert_int_equal(c.querier.max_concurrent, 4);
    assert_true(c.querier.tail_max_duration_ns == HOUR);
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);

    /* An empty file, a comment-only file and an explicit null document all give the defaults. */
    static const char *const empties[] = {"", "# nothing\n", "~\n", "---\n"};
    for (size_t i = 0; i < 4; i++) {
        st_config_t d;
        memset(&d, 0xa5, sizeof d);
        assert_int_equal(load(&d, empties[i]), 0);
        assert_memory_equal(&c, &d, sizeof c);
    }
}

/* The key table is well formed: field sizes match types, keys unique, sections contiguous. */
static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        switch (k->type) {
        case ST_CFG_BOOL: assert_int_equal(k->size, sizeof(bool)); break;
        case ST_CFG_INT: assert_int_equal(k->size, sizeof(int)); break;
        case ST_CFG_DURATION:
        case ST_CFG_PDURATION: assert_int_equal(k->size, sizeof(int64_t)); break;
        case ST_CFG_BYTES: assert_int_equal(k->size, sizeof(size_t)); break;
        case ST_CFG_FLOAT: assert_int_equal(k->size, sizeof(double)); break;
        case ST_CFG_STRING:
        case ST_CFG_ENUM: assert_true(k->size > 1); break;
        case ST_CFG_PERIODS: break;
        }
        assert_true(k->off + k->size <= sizeof(st_config_t));
        assert_non_null(k->help);
        assert_true(strlen(k->help) > 0 && strchr(k->help, '\n') == NULL);
        assert_ptr_equal(st_cfg_find(k->key, strlen(k->key)), k);
        for (size_t j = 0; j < i; j++) assert_string_not_equal(st_cfg_keys[j].key, k->key);
        /* Sections contiguous: once a top-level block ends it never comes back. */
        const char *dot = strchr(k->key, '.');
        size_t top = dot ? (size_t)(dot - k->key) : strlen(k->key);
        for (size_t j = 0; j + 1 < i; j++) {
            const char *a = st_cfg_keys[j].key, *b = st_cfg_keys[j + 1].key;
            if (strncmp(a, k->key, top) == 0 && (a[top] == '.' || a[top] == '\0') &&
                !(strncmp(b, k->key, top) == 0 && (b[top] == '.' || b[top] == '\0')) && dot != NULL)
                fail_msg("section of %s is split", k->key);
        }
    }
    assert_true(st_cfg_is_section("server", 6));
    assert_true(st_cfg_is_section("ingester.wal", 12));
    assert_false(st_cfg_is_section("server.http_listen_port", 23));
    assert_false(st_cfg_is_section("serv", 4));
}

static const char full_yaml[] = "auth_enabled: true\n"
                                "auth:\n"
                                "  no_auth_tenant: tenant-1\n"
                                "  credentials_file: /etc/strata/credentials\n"
                                "server:\n"
                                "  http_listen_address: 0.0.0.0\n"
                                "  http_listen_port: 3200\n"
                                "  http_server_read_timeout: 1m\n"
                                "  http_server_write_timeout: 45s\n"
                                "  http_server_idle_timeout: 5m\n"
                                "  http_max_header_bytes: 64KiB\n"
                                "  http_listen_conn_limit: 512\n"
                                "  log_level: debug\n"
                                "  log_format: logfmt\n"
                                "  graceful_shutdown_timeout: 10s\n"
                                "  http_tls_config:\n"
                                "    cert_file: tls/server.crt\n"
                                "    key_file: tls/server.key\n"
                                "    client_auth_type: RequireAndVerifyClientCert\n"
                                "    client_ca_file: tls/ca.crt\n"
                                "    min_version: VersionTLS13\n"
                                "common:\n"
                                "  path_prefix: /var/lib/strata\n"
                                "distributor:\n"
                                "  max_recv_msg_size: 50MiB\n"
                                "  max_decompressed_size: 1GB\n"
                                "  otlp_config:\n"
                                "    default_resource_attributes_as_index_labels: service.name,k8s.pod.name\n"
                                "ingester:\n"
                                "  chunk_block_size: 128KiB\n"
                                "  chunk_target_size: 2MiB\n"
                                "  chunk_encoding: zstd\n"
                                "  zstd_level: 9\n"
                                "  block_filters: false\n"
                                "  max_chunk_age: 1.5h\n"
                                "  chunk_idle_period: 15m\n"
                                "  flush_check_period: 10s\n"
                                "  wal:\n"
                                "    dir: /wal\n"
                                "    flush_on_shutdown: false\n"
                                "    segment_size: 32MiB\n"
                                "    max_pending_bytes: 128MiB\n"
                                "    max_size: 2GiB\n"
                                "  memory_budget: 512MiB\n"
                                "  head_memory_target: 32MB\n"
                                "  head_spill: false\n"
                                "  head_spill_segment_size: 1MB\n"
                                "storage_config:\n"
                                "  filesystem:\n"
                                "    directory: /chunks\n"
                                "  lmdb:\n"
                                "    directory: /index\n"
                                "    map_size: 16GiB\n"
                                "schema_config:\n"
                                "  configs:\n"
                                "    - from: 2023-01-01\n"
                                "      store: tsdb\n"
                                "      object_store: filesystem\n"
                                "      schema: v13\n"
                                "      index:\n"
                                "        prefix: loki_index_\n"
                                "        period: 24h\n"
                                "    - from: \"2025-06-15\"\n"
                                "      store: lmdb\n"
                                "      schema: strata-v1\n"
                                "limits_config:\n"
                                "  max_entries_limit_per_query: 10000\n"
                                "  max_query_length: 30d\n"
                                "  max_query_series: 1000\n"
                                "  query_timeout: 2m\n"
                                "  reject_old_samples: no\n"
                                "  reject_old_samples_max_age: 2w\n"
                                "  creation_grace_period: 0s\n"
                                "  max_line_size: 0\n"
                                "  max_line_size_truncate: true\n"
                                "  max_label_names_per_series: 30\n"
                                "  max_label_name_length: 512\n"
                                "  max_label_value_length: 4096\n"
                                "  ingestion_rate_mb: 0.5\n"
                                "  ingestion_burst_size_mb: 1.5\n"
                                "  per_stream_rate_limit: 1MB\n"
                                "  per_stream_rate_limit_burst: 2MB\n"
                                "  max_global_streams_per_user: 100\n"
                                "  memory_budget_per_tenant: 64MiB\n"
                                "  discover_service_name: \"app, job\"\n"
                                "  discover_log_levels: false\n"
                                "  deletion_mode: filter-only\n"
                                "  allow_structured_metadata: false\n"
                                "  max_structured_metadata_size: 16KB\n"
                                "  max_structured_metadata_entries_count: 32\n"
                                "querier:\n"
                                "  max_concurrent: 8\n"
                                "  tail_max_duration: 30m\n"
                                "compactor:\n"
                                "  delete_request_cancel_period: 1h\n"
                                "  delete_max_interval: 12h\n"
                                "  compaction_interval: 5m\n";

static void test_full_file(void **state)
{
    (void)state;
    st_config_t c, d;
    int rc = load(&c, full_yaml);
    if (rc != 0) fail_msg("%s", err);
    assert_true(c.auth_enabled);
    assert_string_equal(c.no_auth_tenant, "tenant-1");
    assert_string_equal(c.server.http_listen_address, "0.0.0.0");
    assert_int_equal(c.server.http_listen_port, 3200);
    assert_true(c.server.http_server_read_timeout_ns == MIN);
    assert_true(c.server.http_server_write_timeout_ns == 45 * SEC);
    assert_true(c.server.http_server_idle_timeout_ns == 5 * MIN);
    assert_int_equal(c.server.http_max_header_bytes, 65536);
    assert_int_equal(c.server.http_listen_conn_limit, 512);
    assert_string_equal(c.server.log_level, "debug");
    assert_true(c.server.graceful_shutdown_timeout_ns == 10 * SEC);
    assert_string_equal(c.server.http_tls_config.cert_file, "tls/server.crt");
    assert_string_equal(c.server.http_tls_config.key_file, "tls/server.key");
    assert_string_equal(c.server.http_tls_config.client_auth_type, "RequireAndVerifyClientCert");
    assert_string_equal(c.server.http_tls_config.client_ca_file, "tls/ca.crt");
    assert_string_equal(c.server.http_tls_config.min_version, "VersionTLS13");
    assert_string_equal(c.common.path_prefix, "/var/lib/strata");
    assert_int_equal(c.distributor.max_recv_msg_size, 50u << 20);
    assert_int_equal(c.distributor.max_decompressed_size, 1u << 30);
    assert_int_equal(c.ingester.chunk_block_size, 131072);
    assert_int_equal(c.ingester.zstd_level, 9);
    assert_false(c.ingester.block_filters);
    assert_int_equal(c.ingester.zstd_level, 9);
    assert_true(c.ingester.max_chunk_age_ns == 90 * MIN);
    assert_true(c.ingester.chunk_idle_period_ns == 15 * MIN);
    assert_true(c.ingester.flush_check_period_ns == 10 * SEC);
    assert_string_equal(c.ingester.wal.dir, "/wal");
    assert_false(c.ingester.wal.flush_on_shutdown);
    assert_int_equal(c.ingester.wal.segment_size, 32u << 20);
    assert_int_equal(c.ingester.wal.max_pending_bytes, 128u << 20);
    assert_int_equal(c.ingester.wal.max_size, 2u << 30);
    assert_int_equal(c.ingester.memory_budget, 512u << 20);
    assert_int_equal(c.ingester.head_memory_target, 32u << 20);
    assert_false(c.ingester.head_spill);
    assert_int_equal(c.ingester.head_spill_segment_size, 1u << 20);
    assert_true(c.limits_config.ingestion_rate_mb == 0.5 && c.limits_config.ingestion_burst_size_mb == 1.5);
    assert_int_equal(c.limits_config.per_stream_rate_limit, 1u << 20);
    assert_int_equal(c.limits_config.per_stream_rate_limit_burst, 2u << 20);
    assert_int_equal(c.limits_config.max_global_streams_per_user, 100);
    assert_int_equal(c.limits_config.memory_budget_per_tenant, 64u << 20);
    assert_string_equal(c.distributor.otlp_config.default_resource_attributes_as_index_labels,
                        "service.name,k8s.pod.name");
    assert_string_equal(c.limits_config.discover_service_name, "app, job");
    assert_false(c.limits_config.discover_log_levels);
    assert_string_equal(c.storage_config.filesystem.directory, "/chunks");
    assert_string_equal(c.storage_config.lmdb.directory, "/index");
    assert_true(c.storage_config.lmdb.map_size == (size_t)16 << 30);
    assert_int_equal(c.schema_config.nconfigs, 2);
    const st_period_config_t *p = c.schema_config.configs;
    assert_int_equal(p[0].from_day, st_days_from_civil(2023, 1, 1));
    assert_string_equal(p[0].store, "lmdb"); /* tsdb is an alias */
    assert_string_equal(p[0].object_store, "filesystem");
    assert_string_equal(p[0].schema, "v13");
    assert_string_equal(p[0].index_prefix, "loki_index_");
    assert_true(p[0].index_period_ns == 24 * HOUR);
    assert_int_equal(p[1].from_day, st_days_from_civil(2025, 6, 15));
    assert_string_equal(p[1].store, "lmdb");
    assert_string_equal(p[1].object_store, "filesystem");
    assert_string_equal(p[1].schema, "strata-v1");
    assert_string_equal(p[1].index_prefix, "index_");
    assert_true(p[1].index_period_ns == 24 * HOUR);
    assert_int_equal(c.limits_config.max_entries_limit_per_query, 10000);
    assert_true(c.limits_config.max_query_length_ns == 30 * ST_NS_PER_DAY);
    assert_int_equal(c.limits_config.max_query_series, 1000);
    assert_true(c.limits_config.query_timeout_ns == 2 * MIN);
    assert_false(c.limits_config.reject_old_samples);
    assert_true(c.limits_config.reject_old_samples_max_age_ns == 14 * ST_NS_PER_DAY);
    assert_true(c.limits_config.creation_grace_period_ns == 0);
    assert_int_equal(c.limits_config.max_line_size, 0);
    assert_true(c.limits_config.max_line_size_truncate);
    assert_int_equal(c.limits_config.max_label_names_per_series, 30);
    assert_int_equal(c.limits_config.max_label_name_length, 512);
    assert_int_equal(c.limits_config.max_label_value_length, 4096);
    assert_int_equal(c.querier.max_concurrent, 8);
    assert_true(c.querier.tail_max_duration_ns == 30 * MIN);
    assert_string_equal(c.limits_config.deletion_mode, "filter-only");
    assert_false(c.limits_config.allow_structured_metadata);
    assert_int_equal(c.limits_config.max_structured_metadata_size, 16384);
    assert_int_equal(c.limits_config.max_structured_metadata_entries_count, 32);
    assert_string_equal(c.auth_credentials_file, "/etc/strata/credentials");
    assert_true(c.compactor.delete_request_cancel_period_ns == 60 * MIN);
    assert_true(c.compactor.delete_max_interval_ns == 12 * 60 * MIN);
    assert_true(c.compactor.compaction_interval_ns == 5 * MIN);

    /* Every key of the table differs from its default, i.e. the file really sets every key
     * (log_format and chunk_encoding have a single legal value). */
    st_config_defaults(&d);
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        if (strcmp(k->key, "server.log_format") == 0 || strcmp(k->key, "ingester.chunk_encoding") == 0)
            continue;
        if (memcmp((char *)&c + k->off, (char *)&d + k->off, k->size) == 0) fail_msg("%s not set", k->key);
        assert_non_null(strstr(full_yaml, strrchr(k->key, '.') ? strrchr(k->key, '.') + 1 : k->key));
    }
}

static void test_error_classes(void **state)
{
    (void)state;
    expect_error("server:\n  http_listen_port: abc\n",
                 "strata.yaml:2: server.http_listen_port: invalid integer \"abc\"");
    expect_error("server:\n  http_listen_port: 70000\n",
                 "strata.yaml:2: server.http_listen_port: value \"70000\" out of range (0..65535)");
    expect_error("server:\n  http_listen_port: -1\n",
                 "strata.yaml:2: server.http_listen_port: value \"-1\" out of range (0..65535)");
    expect_error(
        "server:\n  http_listen_port: 99999999999999999999\n",
        "strata.yaml:2: server.http_listen_port: value \"99999999999999999999\" out of range (0..65535)");
    expect_error(
        "# comment\n\nserver:\n  http_lisen_port: 3100\n",
        "strata.yaml:4: server.http_lisen_port: unknown key (did you mean \"server.http_listen_port\"?)");
    expect_error("sever:\n  http_listen_port: 3100\n",
                 "strata.yaml:1: sever: unknown key (did you mean \"server\"?)");
    expect_error(
        "server:\n  max_line_size: 1KB\n",
        "strata.yaml:2: server.max_line_size: unknown key (did you mean \"limits_config.max_line_size\"?)");
    expect_error("frobnicate: 1\n", "strata.yaml:1: frobnicate: unknown key");
    expect_error(
        "server.http_listen_port: 1\n",
        "strata.yaml:1: server.http_listen_port: unknown key (dotted keys are not supported: nest the "
        "mapping)");
    expect_error(
        "server:\n  log_level: verbose\n",
        "strata.yaml:2: server.log_level: invalid value \"verbose\" (expected one of: error, warn, info, "
        "debug)");
    expect_error("ingester:\n  chunk_encoding: gzip\n",
                 "strata.yaml:2: ingester.chunk_encoding: invalid value \"gzip\" (expected one of: zstd)");
    expect_error("ingester:\n  zstd_level: 20\n",
                 "strata.yaml:2: ingester.zstd_level: value \"20\" out of range (1..19)");
    expect_error("ingester:\n  zstd_level: 0\n",
                 "strata.yaml:2: ingester.zstd_level: value \"0\" out of range (1..19)");
    expect_error("ingester:\n  chunk_block_size: 0\n",
                 "strata.yaml:2: ingester.chunk_block_size: value \"0\" out of range (must be > 0)");
    expect_error("ingester:\n  chunk_block_size: 10EiB\n",
                 "strata.yaml:2: ingester.chunk_block_size: value \"10EiB\" out of range (must be <= "
                 "9223372036854775807)");
    expect_error("ingester:\n  chunk_block_size: 12QB\n",
                 "strata.yaml:2: ingester.chunk_block_size: invalid size \"12QB\"");
    expect_error("ingester:\n  max_chunk_age: 5x\n",
                 "strata.yaml:2: ingester.max_chunk_age: invalid duration \"5x\"");
    expect_error("ingester:\n  max_chunk_age: 0s\n",
                 "strata.yaml:2: ingester.max_chunk_age: value \"0s\" out of range (must be > 0)");
    expect_error(
        "server:\n  graceful_shutdown_timeout: -1s\n",
        "strata.yaml:2: server.graceful_shutdown_timeout: value \"-1s\" out of range (must be >= 0)");
    expect_error("ingester:\n  wal:\n    flush_on_shutdown: maybe\n",
                 "strata.yaml:3: ingester.wal.flush_on_shutdown: invalid boolean \"maybe\"");
    expect_error("auth_enabled:\n", "strata.yaml:1: auth_enabled: missing value");
    expect_error("server:\n  http_listen_port: [1, 2]\n",
                 "strata.yaml:2: server.http_listen_port: expected a single value (int), got a list");
    expect_error("server:\n  http_listen_port:\n    a: 1\n",
                 "strata.yaml:3: server.http_listen_port: expected a single value (int), got a mapping");
    expect_error("server: 5\n", "strata.yaml:1: server: expected a mapping");
    expect_error("- a\n- b\n", "strata.yaml:1: expected a mapping of keys at the top level");
    expect_error("server:\n  http_listen_port: 1\n  http_listen_port: 2\n",
                 "strata.yaml:3: server.http_listen_port: duplicate key (first set on line 2)");
    expect_error("server:\n  http_listen_port: 1\nserver:\n  log_level: info\n",
                 "strata.yaml:3: server: duplicate key (first set on line 1)");
    expect_error("server: {}\n---\nserver: {}\n", "strata.yaml:3: only one YAML document is supported");
    expect_error("? [a]\n: 1\n", "strata.yaml:1: mapping keys must be scalars");
    /* Strings: length, NUL, tenant rules. */
    char long_tenant[200];
    snprintf(long_tenant, sizeof long_tenant, "auth:\n  no_auth_tenant: %0151d\n", 0);
    expect_error(long_tenant, "strata.yaml:2: auth.no_auth_tenant: value too long (151 bytes, max 150)");
    expect_error(
        "auth:\n  no_auth_tenant: \"a/b\"\n",
        "strata.yaml:2: auth.no_auth_tenant: invalid value \"a/b\": invalid character '/' in tenant ID");
    expect_error(
        "auth:\n  no_auth_tenant: \"..\"\n",
        "strata.yaml:2: auth.no_auth_tenant: invalid value \"..\": tenant ID must not be \".\" or \"..\"");
    expect_error(
        "auth:\n  no_auth_tenant: .\n",
        "strata.yaml:2: auth.no_auth_tenant: invalid value \".\": tenant ID must not be \".\" or \"..\"");
    expect_error("auth:\n  no_auth_tenant: \"\"\n", "strata.yaml:2: auth.no_auth_tenant: must not be empty");
    expect_error(
        "auth:\n  no_auth_tenant: \"t\\u00e9\"\n",
        "strata.yaml:2: auth.no_auth_tenant: invalid value \"t\xc3\xa9\": invalid byte 0xc3 in tenant ID");
    expect_error("server:\n  http_listen_address: \"a\\0b\"\n",
                 "strata.yaml:2: server.http_listen_address: value contains a NUL byte");
    expect_error("common:\n  path_prefix: \"\"\n", "strata.yaml:2: common.path_prefix: must not be empty");
    /* Cross-field rule, reported on the line of the key that was set. */
    expect_error("ingester:\n  chunk_block_size: 2MiB\n",
                 "strata.yaml:2: ingester.chunk_target_size: must be >= ingester.chunk_block_size (1572864 < "
                 "2097152)");
    expect_error(
        "ingester:\n  chunk_block_size: 1MiB\n  chunk_target_size: 1000\n",
        "strata.yaml:3: ingester.chunk_target_size: must be >= ingester.chunk_block_size (1000 < 1048576)");
    /* Deep nesting is refused before libyaml builds the document (its scanner is quadratic in it). */
    char deep[200000];
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 99999);
    deep[199999] = '\0';
    expect_error(deep, "strata.yaml:1: nested deeper than 32 levels");
    expect_error(
        "a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i:\n         j:\n          k:\n"
        "           l:\n            m:\n             n:\n              o:\n               p:\n"
        "                q:\n                 r:\n                  s:\n                   t:\n"
        "                    u:\n                     v:\n                      w:\n"
        "                       x:\n                        y:\n                         z:\n"
        "                          A:\n                           B:\n                            C:\n"
        "                             D:\n                              E:\n"
        "                               F:\n                                G: 1\n",
        "strata.yaml:33: nested deeper than 32 levels");
    /* Keys are only type-checked when the YAML itself parses. */
    expect_error("server:\n  http_listen_port: 1\n bad: [\n",
                 "strata.yaml:3: while parsing a block mapping: did not find expected key");
}

/* server.http_tls_config: the files of full_yaml exist (see main), each rule names its key. */
static void test_tls_rules(void **state)
{
    (void)state;
    expect_error("server:\n  http_tls_config:\n    cert_file: tls/server.crt\n",
                 "strata.yaml:3: server.http_tls_config.key_file: required when "
                 "server.http_tls_config.cert_file is set");
    expect_error("server:\n  http_tls_config:\n    key_file: tls/server.key\n",
                 "strata.yaml:3: server.http_tls_config.cert_file: required when "
                 "server.http_tls_config.key_file is set");
    expect_error(
        "server:\n  http_tls_config:\n    cert_file: tls/none.crt\n    key_file: tls/server.key\n",
        "strata.yaml:3: server.http_tls_config.cert_file: cannot read \"tls/none.crt\": No such file or "
        "directory");
    expect_error("server:\n  http_tls_config:\n    cert_file: tls/server.crt\n    key_file: tls/server.key\n"
                 "    client_auth_type: VerifyClientCertIfGiven\n",
                 "strata.yaml:5: server.http_tls_config.client_ca_file: required when client_auth_type is "
                 "VerifyClientCertIfGiven");
    expect_error(
        "server:\n  http_tls_config:\n    cert_file: tls/server.crt\n    key_file: tls/server.key\n"
        "    client_auth_type: RequireAndVerifyClientCert\n    client_ca_file: tls/missing-ca.crt\n",
        "strata.yaml:6: server.http_tls_config.client_ca_file: cannot read \"tls/missing-ca.crt\": No "
        "such file or directory");
    expect_error("server:\n  http_tls_config:\n    client_auth_type: RequireAnyClientCert\n",
                 "strata.yaml:3: server.http_tls_config.client_auth_type: RequireAnyClientCert needs TLS "
                 "(server.http_tls_config.cert_file and key_file)");
    expect_error("server:\n  http_tls_config:\n    client_ca_file: tls/ca.crt\n",
                 "strata.yaml:3: server.http_tls_config.client_ca_file: needs TLS "
                 "(server.http_tls_config.cert_file and key_file)");
    expect_error(
        "server:\n  http_tls_config:\n    min_version: VersionTLS11\n",
        "strata.yaml:3: server.http_tls_config.min_version: invalid value \"VersionTLS11\" (expected "
        "one of: VersionTLS12, VersionTLS13)");
    /* Unverified client certificates need no CA file; CLI overrides go through the same checks. */
    st_config_t c;
    assert_int_equal(load(&c, "server:\n  http_tls_config:\n    cert_file: tls/server.crt\n"
                              "    key_file: tls/server.key\n    client_auth_type: RequireAnyClientCert\n"),
                     0);
    st_config_defaults(&c);
    assert_int_equal(st_config_set(&c, "server.http_tls_config.cert_file", "tls/server.crt", err, sizeof err),
                     0);
    assert_int_equal(st_config_finish(&c, err, sizeof err), ST_EPARSE);
    assert_string_equal(err,
                        "server.http_tls_config.key_file: required when server.http_tls_config.cert_file "
                        "is set");
    assert_int_equal(st_config_set(&c, "server.http_tls_config.key_file", "tls/server.key", err, sizeof err),
                     0);
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);
}

static void test_multiple_errors(void **state)
{
    (void)state;
    expect_error(
        "server:\n"                        /* 1 */
        "  http_listen_port: abc\n"        /* 2 */
        "  http_lisen_port: 3100\n"        /* 3 */
        "  log_level: verbose\n"           /* 4 */
        "  http_server_read_timeout: 5x\n" /* 5 */
        "ingester:\n"                      /* 6 */
        "  zstd_level: 22\n"               /* 7 */
        "  chunk_encoding: gzip\n"         /* 8 */
        "  wal:\n"                         /* 9 */
        "    segment_size: 12QB\n"         /* 10 */
        "    flush_on_shutdown: maybe\n"   /* 11 */
        "auth:\n"                          /* 12 */
        "  no_auth_tenant: \"a/b\"\n"      /* 13 */
        "limits_config:\n"                 /* 14 */
        "  max_line_size: -1\n",           /* 15 */
        "strata.yaml:2: server.http_listen_port: invalid integer \"abc\"\n"
        "strata.yaml:3: server.http_lisen_port: unknown key (did you mean \"server.http_listen_port\"?)\n"
        "strata.yaml:4: server.log_level: invalid value \"verbose\" (expected one of: error, warn, info, "
        "debug)\n"
        "strata.yaml:5: server.http_server_read_timeout: invalid duration \"5x\"\n"
        "strata.yaml:7: ingester.zstd_level: value \"22\" out of range (1..19)\n"
        "strata.yaml:8: ingester.chunk_encoding: invalid value \"gzip\" (expected one of: zstd)\n"
        "strata.yaml:10: ingester.wal.segment_size: invalid size \"12QB\"\n"
        "strata.yaml:11: ingester.wal.flush_on_shutdown: invalid boolean \"maybe\"\n"
        "strata.yaml:13: auth.no_auth_tenant: invalid value \"a/b\": invalid character '/' in tenant ID\n"
        "strata.yaml:15: limits_config.max_line_size: invalid size \"-1\"");

    /* More than 100 errors: the first 100 and a count. */
    char *yaml = malloc(150 * 16 + 1);
    size_t n = 0;
    for (int i = 0; i < 150; i++) n += (size_t)sprintf(yaml + n, "unknown_%03d: 1\n", i);
    st_config_t c;
    char big[16384];
    assert_int_equal(st_config_load_string(&c, "x.yaml", yaml, n, 0, big, sizeof big), ST_EPARSE);
    assert_non_null(strstr(big, "x.yaml:100: unknown_099: unknown key\n... and 50 more errors"));
    assert_null(strstr(big, "unknown_100"));
    /* Oversized input. */
    char *huge = malloc((4u << 20) + 2);
    memset(huge, '#', (4u << 20) + 1);
    assert_int_equal(st_config_load_string(&c, "x.yaml", huge, (4u << 20) + 1, 0, big, sizeof big),
                     ST_EPARSE);
    assert_string_equal(big, "x.yaml: larger than 4194304 bytes");
    free(huge);
    /* A small err buffer is cut but stays NUL-terminated. */
    char small[20];
    assert_int_equal(st_config_load_string(&c, "x.yaml", yaml, n, 0, small, sizeof small), ST_EPARSE);
    assert_string_equal(small, "x.yaml:1: unknown_0");
    free(yaml);
}

static void test_schema_config(void **state)
{
    (void)state;
#define PERIOD(from, extra) "  - from: " from "\n    store: lmdb\n    schema: v13\n" extra
    expect_error("schema_config:\n  configs:\n" PERIOD("2024-01-01", "    index:\n      period: 12h\n"),
                 "strata.yaml:7: schema_config.configs[0].index.period: must be 24h (got \"12h\")");
    expect_error(
        "schema_config:\n  configs:\n" PERIOD("2024-05-01", "") PERIOD("2024-01-01", ""),
        "strata.yaml:6: schema_config.configs[1].from: dates must be ascending (2024-01-01 is not after "
        "2024-05-01)");
    expect_error(
        "schema_config:\n  configs:\n" PERIOD("2024-05-01", "") PERIOD("2024-05-01", ""),
        "strata.yaml:6: schema_config.configs[1].from: dates must be ascending (2024-05-01 is not after "
        "2024-05-01)");
    expect_error(
        "schema_config:\n  configs:\n  - from: 2024-01-01\n    store: boltdb-shipper\n    schema: v11\n"
        "    object_store: s3\n",
        "strata.yaml:4: schema_config.configs[0].store: invalid value \"boltdb-shipper\" (expected one of: "
        "lmdb, tsdb)\n"
        "strata.yaml:5: schema_config.configs[0].schema: invalid value \"v11\" (expected one of: v13, "
        "strata-v1)\n"
        "strata.yaml:6: schema_config.configs[0].object_store: invalid value \"s3\" (expected one of: "
        "filesystem)");
    expect_error("schema_config:\n  configs:\n  - store: lmdb\n",
                 "strata.yaml:3: schema_config.configs[0]: missing required key \"from\"\n"
                 "strata.yaml:3: schema_config.configs[0]: missing required key \"schema\"");
    expect_error(
        "schema_config:\n  configs:\n" PERIOD("2024-02-30", ""),
        "strata.yaml:3: schema_config.configs[0].from: invalid date \"2024-02-30\" (expected YYYY-MM-DD)");
    expect_error("schema_config:\n  configs:\n" PERIOD("2024-01-01", "    stor: lmdb\n"),
                 "strata.yaml:6: schema_config.configs[0].stor: unknown key (did you mean \"store\"?)");
    expect_error(
        "schema_config:\n  configs:\n" PERIOD("2024-01-01", "    index:\n      prefix: \"a b\"\n"),
        "strata.yaml:7: schema_config.configs[0].index.prefix: invalid value \"a b\": invalid character ' ' "
        "(allowed: A-Za-z0-9_-)");
    expect_error(
        "schema_config:\n  configs:\n" PERIOD("2024-01-01", "    index:\n      shards: 2\n"),
        "strata.yaml:7: schema_config.configs[0].index.shards: unknown key (expected prefix or period)");
    expect_error("schema_config:\n  configs: []\n",
                 "strata.yaml:2: schema_config.configs: at least one period is required");
    expect_error(
        "schema_config:\n  configs:\n  - 5\n",
        "strata.yaml:3: schema_config.configs[0]: expected a mapping (from, store, object_store, schema, "
        "index)");
    expect_error("schema_config:\n  configs: lmdb\n",
                 "strata.yaml:2: schema_config.configs: expected a list of periods");
    expect_error("schema_config:\n  configs:\n" PERIOD("2024-01-01", "    from: 2024-01-02\n"),
                 "strata.yaml:6: schema_config.configs[0].from: duplicate key");

    /* 16 periods are fine, 17 are not. */
    char yaml[4096];
    size_t n = (size_t)sprintf(yaml, "schema_config:\n  configs:\n");
    for (int i = 0; i < 17; i++)
        n += (size_t)sprintf(yaml + n, "  - {from: 2024-01-%02d, store: lmdb, schema: v13}\n", i + 1);
    st_config_t c;
    assert_int_equal(load(&c, yaml), ST_EPARSE);
    assert_string_equal(err, "strata.yaml:19: schema_config.configs: too many periods (max 16)");
    yaml[n - 48] = '\0'; /* drop the 17th line */
    assert_int_equal(load(&c, yaml), 0);
    assert_int_equal(c.schema_config.nconfigs, 16);
    assert_int_equal(c.schema_config.configs[15].from_day, st_days_from_civil(2024, 1, 16));

    /* st_config_finish checks a struct built in code. */
    st_config_defaults(&c);
    c.schema_config.nconfigs = 2;
    c.schema_config.configs[1] = c.schema_config.configs[0];
    assert_int_equal(st_config_finish(&c, err, sizeof err), ST_EPARSE);
    assert_string_equal(err,
                        "schema_config.configs[1].from: dates must be ascending (2020-01-01 is not after "
                        "2020-01-01)");
    c.schema_config.nconfigs = 0;
    assert_int_equal(st_config_finish(&c, err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "schema_config.configs: at least one period is required");
#undef PERIOD
}

static void test_overrides(void **state)
{
    (void)state;
    st_config_t c;
    st_config_defaults(&c);
    assert_int_equal(st_config_set(&c, "server.http_listen_port", "3101", err, sizeof err), 0);
    assert_int_equal(c.server.http_listen_port, 3101);
    assert_int_equal(st_config_set(&c, "limits_config.max_line_size", "1.5MiB", err, sizeof err), 0);
    assert_int_equal(c.limits_config.max_line_size, 1572864);
    assert_int_equal(st_config_set(&c, "limits_config.query_timeout", "90s", err, sizeof err), 0);
    assert_true(c.limits_config.query_timeout_ns == 90 * SEC);
    assert_int_equal(st_config_set(&c, "auth_enabled", "true", err, sizeof err), 0);
    assert_true(c.auth_enabled);
    assert_int_equal(st_config_set(&c, "server.log_level", "warn", err, sizeof err), 0);
    assert_string_equal(c.server.log_level, "warn");

    assert_int_equal(st_config_set(&c, "server.http_listen_port", "x", err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "server.http_listen_port: invalid integer \"x\"");
    assert_int_equal(c.server.http_listen_port, 3101);
    assert_int_equal(st_config_set(&c, "server.http_lisen_port", "1", err, sizeof err), ST_EPARSE);
    assert_string_equal(err,
                        "server.http_lisen_port: unknown key (did you mean \"server.http_listen_port\"?)");
    assert_int_equal(st_config_set(&c, "nope", "1", err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "nope: unknown key");
    assert_int_equal(st_config_set(&c, "server", "1", err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "server: is a section, not a key (set one of its keys)");
    assert_int_equal(st_config_set(&c, "auth.no_auth_tenant", "x y", err, sizeof err), ST_EPARSE);
    assert_string_equal(err,
                        "auth.no_auth_tenant: invalid value \"x y\": invalid character ' ' in tenant ID");
    assert_int_equal(st_config_set(&c, "server.http_listen_address", "\xff", err, sizeof err), ST_EPARSE);
    assert_string_equal(err, "server.http_listen_address: value is not valid UTF-8");

    /* schema_config.configs takes a YAML flow list. */
    assert_int_equal(
        st_config_set(&c, "schema_config.configs",
                      "[{from: 2024-01-01, store: lmdb, schema: v13}, {from: 2025-01-01, store: tsdb, "
                      "schema: strata-v1, index: {prefix: i_, period: 24h}}]",
                      err, sizeof err),
        0);
    assert_int_equal(c.schema_config.nconfigs, 2);
    assert_string_equal(c.schema_config.configs[1].schema, "strata-v1");
    assert_string_equal(c.schema_config.configs[1].index_prefix, "i_");
    assert_int_equal(st_config_set(&c, "schema_config.configs", "[{from: 2024-01-01, store: x, schema: v13}]",
                                   err, sizeof err),
                     ST_EPARSE);
    assert_string_equal(err,
                        "schema_config.configs[0].store: invalid value \"x\" (expected one of: lmdb, tsdb)");
    assert_int_equal(c.schema_config.nconfigs, 2);
    assert_int_equal(st_config_set(&c, "schema_config.configs", "[{", err, sizeof err), ST_EPARSE);
    assert_non_null(strstr(err, "schema_config.configs: "));
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);
}

static void test_env_expansion(void **state)
{
    (void)state;
    setenv("ST_CFG_T_PORT", "3300", 1);
    setenv("ST_CFG_T_LEVEL", "", 1);
    unsetenv("ST_CFG_T_ADDR");
    const char *yaml = "server:\n"
                       "  http_listen_port: ${ST_CFG_T_PORT}\n"
                       "  http_listen_address: ${ST_CFG_T_ADDR:-0.0.0.0}\n"
                       "  log_level: ${ST_CFG_T_LEVEL:-debug}\n";
    st_config_t c;
    assert_int_equal(
        st_config_load_string(&c, "strata.yaml", yaml, strlen(yaml), ST_CONFIG_EXPAND_ENV, err, sizeof err),
        0);
    assert_int_equal(c.server.http_listen_port, 3300);
    assert_string_equal(c.server.http_listen_address, "0.0.0.0");
    assert_string_equal(c.server.log_level, "debug");
    /* Without the flag the text is taken literally. */
    assert_int_equal(load(&c, yaml), ST_EPARSE);
    assert_non_null(
        strstr(err, "strata.yaml:2: server.http_listen_port: invalid integer \"${ST_CFG_T_PORT}\""));
}

static void test_derived_paths(void **state)
{
    (void)state;
    st_config_t c;
    assert_int_equal(
        load(&c, "common:\n  path_prefix: /var/lib/strata/\ningester:\n  wal:\n    dir: /fast/wal\n"), 0);
    assert_string_equal(c.ingester.wal.dir, "/fast/wal");
    assert_string_equal(c.storage_config.filesystem.directory, "/var/lib/strata/chunks");
    assert_string_equal(c.storage_config.lmdb.directory, "/var/lib/strata/index");
    assert_int_equal(load(&c, "common:\n  path_prefix: /\n"), 0);
    assert_string_equal(c.ingester.wal.dir, "/wal");
    /* An explicit empty directory also derives. */
    assert_int_equal(load(&c, "storage_config:\n  lmdb:\n    directory: \"\"\n"), 0);
    assert_string_equal(c.storage_config.lmdb.directory, "./data/index");
    /* Too long to derive. */
    char yaml[1200];
    snprintf(yaml, sizeof yaml, "common:\n  path_prefix: /%01020d\n", 0);
    assert_int_equal(load(&c, yaml), ST_EPARSE);
    assert_string_equal(
        err, "strata.yaml:2: common.path_prefix: too long to derive ingester.wal.dir\n"
             "strata.yaml:2: common.path_prefix: too long to derive "
             "storage_config.filesystem.directory\n"
             "strata.yaml:2: common.path_prefix: too long to derive storage_config.lmdb.directory");

    /* CLI: a new prefix moves the directories that were derived, not the explicit ones. */
    assert_int_equal(load(&c, "ingester:\n  wal:\n    dir: /fast/wal\n"), 0);
    assert_int_equal(st_config_set(&c, "common.path_prefix", "/srv/strata", err, sizeof err), 0);
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.ingester.wal.dir, "/fast/wal");
    assert_string_equal(c.storage_config.filesystem.directory, "/srv/strata/chunks");
    assert_string_equal(c.storage_config.lmdb.directory, "/srv/strata/index");
    assert_int_equal(st_config_set(&c, "storage_config.lmdb.directory", "", err, sizeof err), 0);
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);
    assert_string_equal(c.storage_config.lmdb.directory, "/srv/strata/index");
}

static void roundtrip(const st_config_t *c)
{
    char *yaml = st_config_to_yaml(c);
    assert_non_null(yaml);
    st_config_t *d = malloc(sizeof *d);
    if (load(d, yaml) != 0) fail_msg("%s\n---\n%s", err, yaml);
    if (memcmp(c, d, sizeof *c) != 0) {
        char *y2 = st_config_to_yaml(d);
        fail_msg("round trip differs:\n%s\n---\n%s", yaml, y2);
    }
    free(d);
    free(yaml);
}

static void test_roundtrip(void **state)
{
    (void)state;
    st_config_t c;
    st_config_defaults(&c);
    roundtrip(&c);
    assert_int_equal(load(&c, full_yaml), 0);
    roundtrip(&c);
    /* Awkward values: quoting, control characters, odd sizes and durations. */
    st_config_defaults(&c);
    static const char *const kv[][2] = {
        {"server.http_listen_address", ""},
        {"common.path_prefix", "/data dir/with \"quotes\" and \\ and: colon # hash"},
        {"ingester.wal.dir", "-dash"},
        {"storage_config.filesystem.directory", "null"},
        {"storage_config.lmdb.directory", "tab\there\nnewline \xc2\x85 \xe2\x80\xa8 \xef\xbb\xbf \xc3\xa9"},
        {"auth.no_auth_tenant", "a!-_.*'()Z9"},
        {"server.http_max_header_bytes", "1234567"},
        {"server.http_server_idle_timeout", "1ns"},
        {"server.http_server_read_timeout", "2562047h47m16.854775807s"},
        {"limits_config.query_timeout", "1.5ms"},
        {"limits_config.max_query_length", "1000d"},
        {"limits_config.creation_grace_period", "0"},
        {"ingester.wal.max_size", "9223372036854775807"},
        {"schema_config.configs",
         "[{from: 2020-01-01, store: lmdb, schema: v13, index: {prefix: -x-, period: 24h}}]"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (st_config_set(&c, kv[i][0], kv[i][1], err, sizeof err) != 0) fail_msg("%s", err);
    }
    assert_int_equal(st_config_finish(&c, err, sizeof err), 0);
    roundtrip(&c);
}

static void test_load_file(void **state)
{
    (void)state;
    const char *dir = getenv("ST_TEST_TMPDIR");
    char path[4096];
    if (dir == NULL) dir = "/tmp";
    if (mkdir(dir, 0755) != 0) assert_int_equal(errno, EEXIST);
    snprintf(path, sizeof path, "%s/config-test-%d.yaml", dir, (int)getpid());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("server:\n  http_listen_port: ${ST_CFG_T_FILEPORT:-3400}\n", f);
    fclose(f);
    st_config_t c;
    unsetenv("ST_CFG_T_FILEPORT");
    assert_int_equal(st_config_load_file(&c, path, ST_CONFIG_EXPAND_ENV, err, sizeof err), 0);
    assert_int_equal(c.server.http_listen_port, 3400);
    assert_int_equal(st_config_load(&c, path, err, sizeof err), ST_EPARSE);
    char want[4300];
    snprintf(want, sizeof want,
             "%s:2: server.http_listen_port: invalid integer \"${ST_CFG_T_FILEPORT:-3400}\"", path);
    assert_string_equal(err, want);
    unlink(path);
    assert_int_equal(st_config_load(&c, path, err, sizeof err), -ENOENT);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    assert_string_equal(err, want);
}

/* full_yaml and test_tls_rules name TLS files relative to the working directory: run in a scratch
 * directory that has them (their contents do not matter to the config module). */
static char scratch[4096];

static int in_scratch_dir(void **state)
{
    (void)state;
    const char *base = getenv("ST_TEST_TMPDIR");
    if (base == NULL) base = "/tmp";
    mkdir(base, 0755);
    snprintf(scratch, sizeof scratch, "%s/config-tls-%d", base, (int)getpid());
    char tls[4200];
    snprintf(tls, sizeof tls, "%s/tls", scratch);
    if (mkdir(scratch, 0755) != 0 || mkdir(tls, 0755) != 0 || chdir(scratch) != 0) return -1;
    static const char *const files[] = {"tls/server.crt", "tls/server.key", "tls/ca.crt"};
    for (size_t i = 0; i < 3; i++) {
        FILE *f = fopen(files[i], "w");
        if (f == NULL) return -1;
        fputs("-----BEGIN PLACEHOLDER-----\n", f);
        fclose(f);
    }
    return 0;
}

static int out_of_scratch_dir(void **state)
{
    (void)state;
    unlink("tls/server.crt");
    unlink("tls/server.key");
    unlink("tls/ca.crt");
    rmdir("tls");
    if (chdir("/") != 0) return -1;
    rmdir(scratch);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_table),
        cmocka_unit_test(test_full_file),       cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_multiple_errors), cmocka_unit_test(test_schema_config),
        cmocka_unit_test(test_overrides),       cmocka_unit_test(test_env_expansion),
        cmocka_unit_test(test_derived_paths),   cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_load_file),       cmocka_unit_test(test_tls_rules),
    };
    return cmocka_run_group_tests(tests, in_scratch_dir, out_of_scratch_dir);
}
