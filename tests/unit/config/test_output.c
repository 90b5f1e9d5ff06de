/* test_output.c: unit tests for config/output.c: the /config YAML layout, the plain-text reference,
 * and that the committed docs/configuration.md equals what strata-config-docs prints from the table
 * (regenerate with `make -C <build dir> config-docs` when this fails). */
#include "config/config_int.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef ST_DOCS_PATH
#error "ST_DOCS_PATH must name docs/configuration.md"
#endif

/* Runs a printer into a malloc'd string. */
static char *capture(void (*print)(FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    print(f);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got + 1 > cap) {
            cap = (len + got + 1) * 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    if (buf == NULL) buf = calloc(1, 1);
    buf[len] = '\0';
    return buf;
}

static void test_yaml_layout(void **state)
{
    (void)state;
    st_config_t c;
    st_config_defaults(&c);
    char *y = st_config_to_yaml(&c);
    assert_non_null(y);
    /* Loki-style nesting and value forms. */
    assert_non_null(strstr(y, "auth_enabled: false\n\nauth:\n  no_auth_tenant: fake\n  credentials_file: \"\"\n\nserver:\n"
                              "  http_listen_address: 127.0.0.1\n  http_listen_port: 3100\n"));
    assert_non_null(strstr(y, "  http_server_idle_timeout: 2m0s\n"));
    assert_non_null(strstr(y, "ingester:\n  chunk_block_size: 256KB\n  chunk_target_size: 1.5MB\n"));
    assert_non_null(strstr(y, "  max_chunk_age: 2h0m0s\n"));
    assert_non_null(strstr(y, "  wal:\n    dir: ./data/wal\n    flush_on_shutdown: true\n"));
    assert_non_null(strstr(y, "storage_config:\n  filesystem:\n    directory: ./data/chunks\n  lmdb:\n"
                              "    directory: ./data/index\n    map_size: 64GB\n"));
    assert_non_null(strstr(y, "schema_config:\n  configs:\n    - from: 2020-01-01\n      store: lmdb\n"
                              "      object_store: filesystem\n      schema: v13\n      index:\n"
                              "        prefix: index_\n        period: 24h\n"));
    assert_non_null(strstr(y, "  max_query_length: 30d1h\n"));
    assert_non_null(strstr(y, "  reject_old_samples_max_age: 1w\n"));
    assert_non_null(strstr(y, "  max_line_size: 256KB\n"));
    assert_non_null(strstr(y, "querier:\n  max_concurrent: 4\n"));
    /* Every key appears once, as its leaf name. */
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const char *leaf = strrchr(st_cfg_keys[i].key, '.');
        char pat[128];
        snprintf(pat, sizeof pat, " %s:", leaf ? leaf + 1 : st_cfg_keys[i].key);
        if (leaf == NULL) snprintf(pat, sizeof pat, "%s:", st_cfg_keys[i].key);
        assert_non_null(strstr(y, pat));
    }
    free(y);
}

static void test_reference(void **state)
{
    (void)state;
    char *ref = capture(st_config_print_reference);
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        char line[256];
        snprintf(line, sizeof line, "\n%s (", st_cfg_keys[i].key);
        if (strstr(ref, line) == NULL) fail_msg("reference misses %s", st_cfg_keys[i].key);
        assert_non_null(strstr(ref, st_cfg_keys[i].help));
    }
    assert_non_null(strstr(ref, "\nserver.http_listen_port (int, 0..65535; default 3100)\n    HTTP port"));
    assert_non_null(strstr(ref, "\nserver.log_level (one of: error, warn, info, debug; default info)\n"));
    assert_non_null(strstr(ref, "\ningester.wal.dir (string; default \"\")\n"));
    free(ref);
}

static void test_docs_up_to_date(void **state)
{
    (void)state;
    char *want = capture(st_config_print_markdown);
    char *have = read_all(ST_DOCS_PATH);
    if (have == NULL) fail_msg("%s missing: run `make -C <build dir> config-docs`", ST_DOCS_PATH);
    if (strcmp(want, have) != 0) {
        size_t i = 0, line = 1;
        while (want[i] && want[i] == have[i]) line += want[i++] == '\n';
        fail_msg("%s is out of date with config/config_table.c (first difference on line %zu); run "
                 "`make -C <build dir> config-docs` and commit the result",
                 ST_DOCS_PATH, line);
    }
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        char cell[160];
        snprintf(cell, sizeof cell, "| `%s` |", st_cfg_keys[i].key);
        assert_non_null(strstr(want, cell));
    }
    free(want);
    free(have);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_yaml_layout),
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_docs_up_to_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
