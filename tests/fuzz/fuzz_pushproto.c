/* fuzz_pushproto.c: libFuzzer target for the Loki protobuf push decoder (snappy block + logproto
 * PushRequest) and the validation and decorations behind it. First byte: bit 0 set = the rest is a
 * raw PushRequest that the harness snappy-compresses first (so the protobuf layer is reached), clear
 * = the rest is the body as sent (the snappy layer is fuzzed); bits 1-3 toggle discovery, level
 * detection and line truncation. */
#include "common/err.h"
#include "ingester/ingester.h"

#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    uint8_t mode = data[0];
    st_str_t body = st_str((const char *)data + 1, size - 1);
    char *comp = NULL;
    if (mode & 1) {
        size_t cn = snappy_max_compressed_length(body.n);
        comp = malloc(cn ? cn : 1);
        if (comp == NULL || snappy_compress(body.p, body.n, comp, &cn) != SNAPPY_OK) {
            free(comp);
            return 0;
        }
        body = st_str(comp, cn);
    }
    static const st_str_t names[] = {ST_STR("service"), ST_STR("app"), ST_STR("job")};
    st_push_limits_t lim = {.now_ns = INT64_C(1724240000000000000),
                            .reject_old_samples = true,
                            .reject_old_samples_max_age_ns = INT64_C(604800000000000),
                            .creation_grace_period_ns = INT64_C(600000000000),
                            .max_line_size = 256,
                            .max_line_size_truncate = mode & 8,
                            .max_label_names_per_series = 15,
                            .max_label_name_length = 64,
                            .max_label_value_length = 64,
                            .allow_structured_metadata = true,
                            .max_structured_metadata_size = 256,
                            .max_structured_metadata_entries = 8,
                            .discover_service_name = names,
                            .discover_service_name_n = mode & 2 ? 3 : 0,
                            .discover_log_levels = mode & 4};
    st_push_t *p;
    if (st_push_new("fuzz", &p) == 0) {
        st_push_errors_t errs = {0};
        (void)st_push_decode_proto(body, 1 << 20, &lim, p, &errs);
        for (size_t i = 0; i < st_push_nstreams(p); i++) (void)st_push_stream_labels(p, i);
        st_push_errors_free(&errs);
        st_push_free(p);
    }
    free(comp);
    return 0;
}
