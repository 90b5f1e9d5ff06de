/* fuzz_config.c: libFuzzer target for the config loader. Any input must load or fail cleanly with a
 * NUL-terminated message, and a config that loads must survive st_config_to_yaml -> load unchanged
 * (byte-identical struct). Inputs containing "${" also go through ${VAR} expansion; a first line
 * "#-key=value" is applied with st_config_set before the round trip. */
#include "config/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int cond, const char *what, const char *detail)
{
    if (!cond) {
        fprintf(stderr, "fuzz_config: %s\n%s\n", what, detail ? detail : "");
        abort();
    }
}

/* A first line "#-key=value" (a YAML comment) is also applied with st_config_set after loading. */
static void apply_override(st_config_t *c, const char *data, size_t size, char *err, size_t errsz)
{
    if (size < 2 || data[0] != '#' || data[1] != '-') return;
    const char *end = memchr(data, '\n', size);
    size_t n = end ? (size_t)(end - data) : size;
    char line[4096];
    if (n - 2 >= sizeof line) return;
    memcpy(line, data + 2, n - 2);
    line[n - 2] = '\0';
    char *eq = strchr(line, '=');
    if (eq == NULL) return;
    *eq = '\0';
    if (st_config_set(c, line, eq + 1, err, errsz) == 0) (void)st_config_finish(c, err, errsz);
    check(memchr(err, '\0', errsz) != NULL, "set: err not NUL-terminated", NULL);
}

static void run(const char *data, size_t size, unsigned flags)
{
    static char err[4096];
    st_config_t *c = malloc(sizeof *c), *d = malloc(sizeof *d);
    char *yaml = NULL;
    if (c == NULL || d == NULL) goto out;
    memset(err, 'x', sizeof err);
    int rc = st_config_load_string(c, "fuzz.yaml", data, size, flags, err, sizeof err);
    check(memchr(err, '\0', sizeof err) != NULL, "err not NUL-terminated", NULL);
    if (rc != 0) {
        check(err[0] != '\0', "failure without a message", NULL);
        goto out;
    }
    apply_override(c, data, size, err, sizeof err);
    if (st_config_finish(c, err, sizeof err) != 0) goto out; /* an override broke a cross-field rule */
    yaml = st_config_to_yaml(c);
    if (yaml == NULL) goto out;
    rc = st_config_load_string(d, "roundtrip.yaml", yaml, strlen(yaml), 0, err, sizeof err);
    check(rc == 0, "to_yaml output does not load", err);
    check(memcmp(c, d, sizeof *c) == 0, "to_yaml round trip changed the config", yaml);
out:
    free(yaml);
    free(c);
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        setenv("STRATA_FUZZ_PORT", "3100", 1);
        setenv("STRATA_FUZZ_EMPTY", "", 1);
        init = 1;
    }
    const char *p = (const char *)data;
    run(p, size, 0);
    for (size_t i = 0; i + 1 < size; i++) {
        if (p[i] == '$' && p[i + 1] == '{') {
            run(p, size, ST_CONFIG_EXPAND_ENV);
            break;
        }
    }
    return 0;
}
