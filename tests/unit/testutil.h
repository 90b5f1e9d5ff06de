/* testutil.h: helpers shared by the cmocka unit tests: cmocka includes, temporary directories. */
#ifndef ST_TESTS_TESTUTIL_H
#define ST_TESTS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Creates a fresh directory under $ST_TEST_TMPDIR (or /tmp) and returns its malloc'd path. */
static inline char *st_test_tmpdir(const char *name)
{
    const char *base = getenv("ST_TEST_TMPDIR");
    if (base == NULL || base[0] == '\0') base = "/tmp";
    char cmd[4200], *path = malloc(4096);
    snprintf(path, 4096, "%s/%s.%d.XXXXXX", base, name, (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    if (system(cmd) != 0) return NULL;
    if (mkdtemp(path) == NULL) return NULL;
    return path;
}

static inline void st_test_rmrf(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "rm -rf %s failed\n", path);
}

#endif
