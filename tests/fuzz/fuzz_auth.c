/* fuzz_auth.c: libFuzzer target for the credentials file parser (auth.credentials_file): any input
 * parses or fails with a NUL-terminated message naming a line; a parsed file answers header checks
 * (Basic and Bearer forms built from the input's tail) without crashing. */
#include "server/app.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    err[0] = '\0';
    st_auth_t *a = NULL;
    int rc = st_auth_parse((const char *)data, size, "creds", &a, err, sizeof err);
    if (rc < 0) {
        if (memchr(err, '\0', sizeof err) == NULL || err[0] == '\0') abort();
        return 0;
    }
    /* headers from the last bytes of the input */
    size_t n = size < 64 ? size : 64;
    const char *tail = (const char *)data + size - n;
    char hdr[160];
    const char *tenants;
    snprintf(hdr, sizeof hdr, "Bearer %.*s", (int)n, tail);
    st_auth_check(a, st_cstr(hdr), &tenants);
    snprintf(hdr, sizeof hdr, "Basic %.*s", (int)n, tail);
    st_auth_check(a, st_cstr(hdr), &tenants);
    st_auth_free(a);
    return 0;
}
