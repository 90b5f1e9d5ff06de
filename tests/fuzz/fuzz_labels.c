/* fuzz_labels.c: libFuzzer target for the label-set syntax and label-name helpers. A set that parses
 * must format to text that parses again to the same formatted text (a stable round trip); the OTLP
 * name sanitiser must yield a valid label name or refuse; service_name discovery and level detection
 * run over the parsed set. Any instability aborts. */
#include "common/err.h"
#include "common/labels.h"
#include "ingester/ingester.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_str_t in = st_str((const char *)data, size);
    char err[256];
    st_labels_t l = ST_LABELS_INIT;
    if (st_labels_parse(in, &l, err) == 0) {
        st_buf_t a = ST_BUF_INIT, b = ST_BUF_INIT;
        st_labels_t l2 = ST_LABELS_INIT;
        if (st_labels_format(&l, &a) == 0) {
            int rc = st_labels_parse(st_str(a.data, a.len), &l2, err);
            if (rc == -ENOMEM) goto done;
            if (rc != 0) {
                fprintf(stderr, "formatted labels do not parse: %s: %.*s\n", err, (int)a.len, a.data);
                abort();
            }
            if (st_labels_format(&l2, &b) == 0 && !st_str_eq(st_str(a.data, a.len), st_str(b.data, b.len))) {
                fprintf(stderr, "unstable round trip: %.*s -> %.*s\n", (int)a.len, a.data, (int)b.len,
                        b.data);
                abort();
            }
            if (l2.n != l.n) abort();
        }
        static const st_str_t names[] = {ST_STR("service"), ST_STR("app"), ST_STR("job")};
        st_push_limits_t lim = {.discover_service_name = names, .discover_service_name_n = 3};
        st_labels_t d = ST_LABELS_INIT;
        if (st_discover_service_name(&lim, &l, &d) == 1 && !st_labels_get(&d, st_cstr("service_name"), NULL))
            abort();
        st_labels_free(&d);
        st_str_t lv;
        if (st_level_from_labels(&l, &lv)) (void)st_level_normalize(lv);
    done:
        st_labels_free(&l2);
        st_buf_free(&a);
        st_buf_free(&b);
    }
    st_labels_free(&l);
    /* the same bytes as an OTLP attribute name */
    st_buf_t n = ST_BUF_INIT;
    int rc = st_label_name_sanitize(in, &n, err);
    if (rc == 0 && !st_label_name_valid(st_str(n.data, n.len))) {
        fprintf(stderr, "sanitised name invalid: %.*s\n", (int)n.len, n.data);
        abort();
    }
    st_buf_free(&n);
    /* and as a log line */
    st_str_t lv;
    (void)st_discover_level(st_str("", 0), in, st_str("", 0), &lv);
    return 0;
}
