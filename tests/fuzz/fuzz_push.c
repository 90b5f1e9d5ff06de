/* fuzz_push.c: libFuzzer target for the Loki JSON push decoder and validator (v1 and legacy shapes).
 * The first input byte picks the shape and whether the rest is gzip-decoded first (bounded). */
#include "common/codec.h"
#include "common/err.h"
#include "ingester/ingester.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    st_str_t body = st_str((const char *)data + 1, size - 1);
    st_buf_t plain = ST_BUF_INIT;
    if (mode & 2) {
        if (st_inflate(ST_INFLATE_GZIP, body.p, body.n, 1 << 20, &plain) < 0) {
            st_buf_free(&plain);
            return 0;
        }
        body = st_str(plain.data ? plain.data : "", plain.len);
    }
    st_push_limits_t lim = {.now_ns = INT64_C(1724240000000000000),
                            .reject_old_samples = true,
                            .reject_old_samples_max_age_ns = INT64_C(604800000000000),
                            .creation_grace_period_ns = INT64_C(600000000000),
                            .max_line_size = 256,
                            .max_line_size_truncate = mode & 4,
                            .max_label_names_per_series = 15,
                            .max_label_name_length = 64,
                            .max_label_value_length = 64,
                            .allow_structured_metadata = !(mode & 8),
                            .max_structured_metadata_size = 128,
                            .max_structured_metadata_entries = 4};
    st_push_t *p;
    if (st_push_new("fuzz", &p) == 0) {
        st_push_errors_t errs = {0};
        int rc = st_push_decode_json(body, mode & 1, &lim, p, &errs);
        (void)rc;
        for (size_t i = 0; i < st_push_nstreams(p); i++) (void)st_push_stream_labels(p, i);
        st_push_errors_free(&errs);
        st_push_free(p);
    }
    st_buf_free(&plain);
    return 0;
}
