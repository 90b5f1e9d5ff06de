/* fuzz_otlp.c: libFuzzer target for the OTLP logs decoders and Loki's OTLP mapping. First byte: bit 0
 * selects JSON (set) or protobuf (clear); bit 1 also runs the bounded zstd and lz4 body decoders over
 * the rest; bits 2-3 toggle service_name discovery and level detection; bit 4 indexes a short custom
 * attribute list instead of Loki's default one. */
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
    if (mode & 2) {
        st_buf_t out = ST_BUF_INIT;
        (void)st_zstd_decompress_bounded(body.p, body.n, 1 << 20, &out);
        st_buf_reset(&out);
        (void)st_lz4_decompress_bounded(body.p, body.n, 1 << 20, &out);
        st_buf_free(&out);
    }
    static const st_str_t names[] = {ST_STR("service"), ST_STR("app"), ST_STR("k8s_container_name")};
    static const st_str_t index[] = {ST_STR("a"), ST_STR("a.b"), ST_STR("service.name")};
    st_push_limits_t lim = {.now_ns = INT64_C(1724240000000000000),
                            .reject_old_samples = true,
                            .reject_old_samples_max_age_ns = INT64_C(604800000000000),
                            .creation_grace_period_ns = INT64_C(600000000000),
                            .max_line_size = 256,
                            .max_label_names_per_series = 15,
                            .max_label_name_length = 64,
                            .max_label_value_length = 64,
                            .allow_structured_metadata = true,
                            .max_structured_metadata_size = 1024,
                            .max_structured_metadata_entries = 16,
                            .discover_service_name = names,
                            .discover_service_name_n = mode & 4 ? 3 : 0,
                            .discover_log_levels = mode & 8,
                            .otlp_index_labels = mode & 16 ? index : NULL,
                            .otlp_index_labels_n = mode & 16 ? 3 : 0};
    st_push_t *p;
    if (st_push_new("fuzz", &p) == 0) {
        st_push_errors_t errs = {0};
        (void)st_push_decode_otlp(body, mode & 1 ? ST_OTLP_JSON : ST_OTLP_PROTOBUF, &lim, p, &errs);
        for (size_t i = 0; i < st_push_nstreams(p); i++) (void)st_push_stream_labels(p, i);
        st_push_errors_free(&errs);
        st_push_free(p);
    }
    return 0;
}
