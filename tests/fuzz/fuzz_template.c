/* fuzz_template.c: libFuzzer target for the Go text/template engine of line_format/label_format.
 * The input is "template\0labels\0line": labels are "name=value" lines. Parses the template (as a
 * line and as a label template), renders it twice over the labels (the second run must match the
 * first, as buffers are reused), and checks the {{.x}} shape. Crashes, leaks and sanitizer reports
 * abort; errors are expected. */
#include "querier/template.h"

#include "common/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    const char *z1 = memchr(p, '\0', size);
    st_str_t src = st_str(p, z1 ? (size_t)(z1 - p) : size);
    st_str_t rest = z1 ? st_str(z1 + 1, size - src.n - 1) : st_str("", 0);
    const char *z2 = memchr(rest.p, '\0', rest.n);
    st_str_t labels = st_str(rest.p, z2 ? (size_t)(z2 - rest.p) : rest.n);
    st_str_t line = z2 ? st_str(z2 + 1, rest.n - labels.n - 1) : st_str("a line", 6);
    st_label_t l[32];
    size_t n = 0;
    for (size_t i = 0; i < labels.n && n < 32;) {
        const char *nl = memchr(labels.p + i, '\n', labels.n - i);
        size_t end = nl ? (size_t)(nl - labels.p) : labels.n;
        const char *eq = memchr(labels.p + i, '=', end - i);
        if (eq != NULL) {
            st_str_t name = st_str(labels.p + i, (size_t)(eq - labels.p) - i);
            bool dup = false;
            for (size_t k = 0; k < n; k++) dup |= st_str_eq(l[k].name, name);
            if (!dup) l[n++] = (st_label_t){name, st_str(eq + 1, end - (size_t)(eq + 1 - labels.p))};
        }
        i = end + 1;
    }
    static const char *const names[] = {"line", "label"};
    for (int k = 0; k < 2; k++) {
        st_tmpl_t *t;
        char err[512];
        int rc = st_tmpl_parse(names[k], src, &t, err, sizeof err);
        if (rc != 0) {
            if (rc != ST_EPARSE) abort();
            if (strncmp(err, "template: ", 10) != 0) abort();
            return 0;
        }
        st_str_t fld;
        (void)st_tmpl_simple_field(t, &fld);
        st_tmpl_data_t d = {l, n, line, 1656331200123456789LL};
        st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT;
        st_str_t msg;
        int r1 = st_tmpl_exec(t, &d, &a, &msg);
        if (r1 != 0 && r1 != ST_EPARSE) abort();
        bool timed =
            src.n > 0 && (memmem(src.p, src.n, "now", 3) != NULL || memmem(src.p, src.n, "date", 4) != NULL);
        int r2 = st_tmpl_exec(t, &d, &b, &msg);
        if (r1 != r2) abort();
        if (r1 == 0 && !timed && (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len) != 0))) abort();
        st_buf_free(&a);
        st_buf_free(&b);
        st_tmpl_free(t);
    }
    return 0;
}
