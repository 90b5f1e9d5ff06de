/* pack.c: pack objects (many chunks in one S3 object, with an index footer so one chunk can be read by
 * byte range and the object is readable without Strata's index) and the lifecycle state records. */
#include "lifecycle/lifecycle_int.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <stdlib.h>
#include <string.h>

#define PACK_MAGIC   "STPK"
#define PACK_VERSION 1

const st_prices_t st_default_prices = {
    /* hot: local disk is not billed here */
    .storage_gb_month = {0, 0.023, 0.0125, 0.004, 0.004, 0.00099},
    .put_per_1000 = {0, 0.005, 0.01, 0.02, 0.03, 0.05},
    .archive_overhead_bytes = 40960,
};

int st_pack_footer_encode(st_buf_t *out, const char *tenant, const char *policy, const st_pack_entry_t *e,
                          size_t n, uint64_t footer_off)
{
    st_buf_t f = ST_BUF_INIT;
    int rc = st_buf_put_lstr(&f, tenant, strlen(tenant));
    if (rc == 0) rc = st_buf_put_lstr(&f, policy, strlen(policy));
    if (rc == 0) rc = st_buf_put_uvarint(&f, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = st_buf_put_u64le(&f, e[i].chunk_id);
        if (rc == 0) rc = st_buf_put_uvarint(&f, e[i].offset);
        if (rc == 0) rc = st_buf_put_uvarint(&f, e[i].length);
        if (rc == 0) rc = st_buf_put_u32le(&f, e[i].crc32);
        if (rc == 0) rc = st_buf_put_uvarint(&f, st_zigzag(e[i].min_ts));
        if (rc == 0) rc = st_buf_put_uvarint(&f, (uint64_t)(e[i].max_ts - e[i].min_ts));
        if (rc == 0) rc = st_buf_put_u64le(&f, e[i].stream_id);
    }
    if (rc == 0) {
        uint8_t tail[24];
        st_put_u64le(tail, footer_off);
        st_put_u32le(tail + 8, (uint32_t)f.len);
        st_put_u32le(tail + 12, st_crc32(0, f.data, f.len));
        st_put_u32le(tail + 16, PACK_VERSION);
        memcpy(tail + 20, PACK_MAGIC, 4);
        rc = st_buf_append(out, f.data, f.len);
        if (rc == 0) rc = st_buf_append(out, tail, sizeof tail);
    }
    st_buf_free(&f);
    return rc;
}

int st_pack_state_encode(const st_pack_state_t *s, st_buf_t *out)
{
    st_buf_puts(out, "{\"key\":");
    st_json_put_cstr(out, s->key);
    st_buf_puts(out, ",\"tenant\":");
    st_json_put_cstr(out, s->tenant);
    st_buf_puts(out, ",\"policy\":");
    st_json_put_cstr(out, s->policy);
    st_buf_printf(out, ",\"tier\":\"%s\",\"version_id\":", st_tier_name(s->tier));
    st_json_put_cstr(out, s->version_id);
    st_buf_printf(
        out,
        ",\"size\":%llu,\"crc32\":%u,\"min_ts\":%lld,\"max_ts\":%lld,\"chunks\":%llu,\"delete_at\":%lld,"
        "\"lock_mode\":\"%s\",\"retain_until\":%lld,\"created\":%lld}",
        (unsigned long long)s->size, s->crc32, (long long)s->min_ts, (long long)s->max_ts,
        (unsigned long long)s->chunks, (long long)s->delete_at, s->lock_mode, (long long)s->retain_until,
        (long long)s->created);
    return 0;
}

static void copy_str(char *dst, size_t cap, st_str_t s)
{
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    memcpy(dst, s.p, n);
    dst[n] = '\0';
}

int st_pack_state_decode(st_str_t v, st_pack_state_t *s)
{
    memset(s, 0, sizeof *s);
    st_json_t j;
    st_json_init(&j, v.p, v.n);
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    st_str_t k, val;
    while (rc == 0 && (rc = st_json_next_key(&j, &k, &s1)) == 1) {
        rc = 0;
        st_json_type_t t = st_json_peek(&j);
        if (t == ST_JSON_STRING) {
            if ((rc = st_json_string(&j, &val, &s2)) < 0) break;
            if (st_str_eqc(k, "key"))
                copy_str(s->key, sizeof s->key, val);
            else if (st_str_eqc(k, "tenant"))
                copy_str(s->tenant, sizeof s->tenant, val);
            else if (st_str_eqc(k, "policy"))
                copy_str(s->policy, sizeof s->policy, val);
            else if (st_str_eqc(k, "version_id"))
                copy_str(s->version_id, sizeof s->version_id, val);
            else if (st_str_eqc(k, "lock_mode"))
                copy_str(s->lock_mode, sizeof s->lock_mode, val);
            else if (st_str_eqc(k, "tier"))
                st_tier_parse(val, &s->tier);
        } else if (t == ST_JSON_NUMBER) {
            if ((rc = st_json_number(&j, &val)) < 0) break;
            char tmp[32];
            copy_str(tmp, sizeof tmp, val);
            long long x = strtoll(tmp, NULL, 10);
            unsigned long long u = strtoull(tmp, NULL, 10);
            if (st_str_eqc(k, "size"))
                s->size = u;
            else if (st_str_eqc(k, "crc32"))
                s->crc32 = (uint32_t)u;
            else if (st_str_eqc(k, "min_ts"))
                s->min_ts = x;
            else if (st_str_eqc(k, "max_ts"))
                s->max_ts = x;
            else if (st_str_eqc(k, "chunks"))
                s->chunks = u;
            else if (st_str_eqc(k, "delete_at"))
                s->delete_at = x;
            else if (st_str_eqc(k, "retain_until"))
                s->retain_until = x;
            else if (st_str_eqc(k, "created"))
                s->created = x;
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&s1);
    st_buf_free(&s2);
    return rc < 0 ? ST_ECORRUPT : 0;
}

int st_lc_s3_client(const st_lc_config_t *lc, st_s3_client_t **out)
{
    st_s3_config_t sc;
    memset(&sc, 0, sizeof sc);
    sc.region = lc->s3.region[0] ? lc->s3.region : NULL;
    sc.endpoint = lc->s3.endpoint[0] ? lc->s3.endpoint : NULL;
    sc.addressing = lc->s3.path_style ? ST_S3_ADDR_PATH : ST_S3_ADDR_AUTO;
    sc.max_attempts = lc->s3.max_attempts;
    sc.retry_base_ms = (long)(lc->s3.retry_base_ns / ST_NS_PER_MS);
    sc.connect_timeout_ms = (long)(lc->s3.connect_timeout_ns / ST_NS_PER_MS);
    sc.request_timeout_ms = (long)(lc->s3.request_timeout_ns / ST_NS_PER_MS);
    sc.low_speed_time_s = (long)(lc->s3.low_speed_time_ns / ST_NS_PER_SEC);
    return st_s3_client_create(&sc, out);
}
