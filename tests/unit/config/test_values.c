/* test_values.c: unit tests for config/values.c and the table helpers: integers, booleans,
 * sizes (Loki's binary units, KB = 1024), Prometheus/Go durations (exact Go algorithm), dates,
 * size formatting, quoting, UTF-8 checks, key suggestions and ${VAR} expansion. */
#include "config/config_int.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static int bytes(const char *s, uint64_t *v)
{
    return st_cfg_parse_bytes(s, strlen(s), v);
}
static int dur(const char *s, int64_t *v)
{
    return st_cfg_parse_duration(s, strlen(s), v);
}

static void test_int(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(st_cfg_parse_int("3100", 4, &v), 0);
    assert_int_equal(v, 3100);
    assert_int_equal(st_cfg_parse_int("-7", 2, &v), 0);
    assert_int_equal(v, -7);
    assert_int_equal(st_cfg_parse_int("+7", 2, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(st_cfg_parse_int("9223372036854775807", 19, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(st_cfg_parse_int("-9223372036854775808", 20, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(st_cfg_parse_int("9223372036854775808", 19, &v), ST_ELIMIT);
    assert_int_equal(st_cfg_parse_int("99999999999999999999999", 23, &v), ST_ELIMIT);
    assert_int_equal(st_cfg_parse_int("", 0, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_int("-", 1, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_int("abc", 3, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_int("1.5", 3, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_int("1 ", 2, &v), ST_EPARSE);
}

static void test_bool(void **state)
{
    (void)state;
    static const char *const t[] = {"true", "True", "TRUE", "yes", "Yes", "on", "ON"};
    static const char *const f[] = {"false", "False", "no", "NO", "off", "Off"};
    bool v;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        v = false;
        assert_int_equal(st_cfg_parse_bool(t[i], strlen(t[i]), &v), 0);
        assert_true(v);
    }
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        v = true;
        assert_int_equal(st_cfg_parse_bool(f[i], strlen(f[i]), &v), 0);
        assert_false(v);
    }
    assert_int_equal(st_cfg_parse_bool("1", 1, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_bool("maybe", 5, &v), ST_EPARSE);
    assert_int_equal(st_cfg_parse_bool("", 0, &v), ST_EPARSE);
}

static void test_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        uint64_t want;
    } ok[] = {
        {"0", 0},
        {"262144", 262144},
        {"256KB", 262144}, /* Loki's sizes are binary: KB = 1024 */
        {"256kb", 262144},
        {"256K", 262144},
        {"256KiB", 262144},
        {"256ki", 262144},
        {"1.5MiB", 1572864},
        {"1.5MB", 1572864},
        {"64GiB", 68719476736ULL},
        {"100MB", 104857600},
        {"5000MiB", 5242880000ULL},
        {"1 GiB", 1073741824},
        {"256 kB", 262144},
        {"1,000KB", 1024000},
        {"10B", 10},
        {".5KiB", 512},
        {"1.KB", 1024},
        {"1.0005KB", 1024}, /* fractional byte truncated, like uint64(f) in Go */
        {"16EiB", 0},       /* placeholder, checked below as too large */
        {"15EiB", 15ULL << 60},
        {"18446744073709551615", UINT64_MAX},
        {"1TB", 1ULL << 40},
        {"2PiB", 2ULL << 50},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint64_t v = 12345;
        if (strcmp(ok[i].in, "16EiB") == 0) {
            assert_int_equal(bytes(ok[i].in, &v), ST_ELIMIT);
            continue;
        }
        if (bytes(ok[i].in, &v) != 0 || v != ok[i].want)
            fail_msg("%s -> %llu", ok[i].in, (unsigned long long)v);
    }
    static const char *const bad[] = {"",    "abc",  "-1",  "KB",    "1.2.3KB",
                                      "1XB", " 1KB", "1e3", "1_000", "1 2KB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v;
        if (bytes(bad[i], &v) != ST_EPARSE) fail_msg("accepted %s", bad[i]);
    }
    uint64_t v;
    assert_int_equal(bytes("18446744073709551616", &v), ST_ELIMIT);
    assert_int_equal(bytes("99999999999999999999999999KB", &v), ST_ELIMIT);
}

static void test_format_bytes(void **state)
{
    (void)state;
    static const struct {
        uint64_t v;
        const char *want;
    } cases[] = {
        {0, "0"},
        {1, "1"},
        {999, "999"},
        {1000, "1000"},
        {1024, "1KB"},
        {256000, "250KB"},
        {262144, "256KB"},
        {1572864, "1.5MB"},
        {1500000, "1500000"},
        {1048576, "1MB"},
        {104857600, "100MB"},
        {5242880000ULL, "5000MB"},
        {68719476736ULL, "64GB"},
        {1073741824, "1GB"},
        {1234567, "1234567"},
        {1025, "1025"},
        {1536, "1.5KB"},
        {UINT64_MAX, "18446744073709551615"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[32];
        st_cfg_format_bytes(cases[i].v, out);
        if (strcmp(out, cases[i].want) != 0) fail_msg("%llu -> %s", (unsigned long long)cases[i].v, out);
    }
    /* Every formatted size reads back exactly. */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = i < 10000 ? x >> (x & 63) : (x & 0xffff) << ((x >> 16) % 50);
        char out[32];
        uint64_t back;
        st_cfg_format_bytes(v, out);
        if (bytes(out, &back) != 0 || back != v) fail_msg("%llu -> %s", (unsigned long long)v, out);
    }
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t want;
    } ok[] = {
        {"0", 0},
        {"7d", 7 * ST_NS_PER_DAY},
        {"1w", 7 * ST_NS_PER_DAY},
        {"1h30m", 5400 * ST_NS_PER_SEC},
        {"721h", INT64_C(721) * 3600 * ST_NS_PER_SEC},
        {"300ms", 300 * ST_NS_PER_MS},
        {"1.5h", 5400 * ST_NS_PER_SEC},
        {"30m1h", 5400 * ST_NS_PER_SEC}, /* Go accepts any unit order */
        {"2h0m0s", 7200 * ST_NS_PER_SEC},
        {"1us", 1000},
        {"1\xc2\xb5s", 1000},
        {"1.5\xc2\xb5s", 1500},
        {"1ns", 1},
        {"0s", 0},
        {"-1s", -ST_NS_PER_SEC},
        {"2562047h47m16.854775807s", INT64_MAX},
        {"0.000000001s", 1},
        {"1y", 365 * ST_NS_PER_DAY},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v = 42;
        if (dur(ok[i].in, &v) != 0 || v != ok[i].want) fail_msg("%s -> %lld", ok[i].in, (long long)v);
    }
    static const char *const bad[] = {
        "",       "5", "5x", "h", "1h 30m", "1.h.", ".s", "2562047h47m16.854775808s", "9223372036854775808ns",
        "1d1.5h", "-", "+"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        if (dur(bad[i], &v) == 0) fail_msg("accepted %s -> %lld", bad[i], (long long)v);
    }
    /* Go's own output form reads back exactly over the whole range. */
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v = (int64_t)((x >> 1) >> (x % 63));
        char out[64];
        int64_t back;
        st_format_go_duration(v, out);
        if (st_cfg_parse_go_duration(out, strlen(out), &back) != 0 || back != v)
            fail_msg("%lld -> %s -> %lld", (long long)v, out, (long long)back);
    }
}

static void test_dates(void **state)
{
    (void)state;
    int64_t d;
    char out[32];
    assert_int_equal(st_cfg_parse_date("1970-01-01", 10, &d), 0);
    assert_int_equal(d, 0);
    assert_int_equal(st_cfg_parse_date("2020-01-01", 10, &d), 0);
    assert_int_equal(d, 18262);
    st_cfg_format_date(d, out);
    assert_string_equal(out, "2020-01-01");
    assert_int_equal(st_cfg_parse_date("2024-02-29", 10, &d), 0);
    st_cfg_format_date(d, out);
    assert_string_equal(out, "2024-02-29");
    assert_int_equal(st_cfg_parse_date("2023-02-29", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024-02-30", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024-13-01", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024-00-10", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024-1-10", 9, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024/01/10", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("2024-01-1x", 10, &d), ST_EPARSE);
    assert_int_equal(st_cfg_parse_date("0000-01-01", 10, &d), 0);
    st_cfg_format_date(d, out);
    assert_string_equal(out, "0000-01-01");
}

static void test_quote_utf8(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    const char in[] = "a\"b\\c\nd\te\x01\xc2\x85\xe2\x80\xa8\xc3\xa9";
    assert_int_equal(st_cfg_quote(&b, in, sizeof in - 1, 0), 0);
    assert_string_equal(st_buf_cstr(&b), "\"a\\\"b\\\\c\\nd\\te\\x01\\x85\\u2028\xc3\xa9\"");
    st_buf_reset(&b);
    assert_int_equal(st_cfg_quote(&b, "abcdef", 6, 3), 0);
    assert_string_equal(st_buf_cstr(&b), "\"abc\"...");
    st_buf_reset(&b);
    assert_int_equal(st_cfg_quote(&b, "\xff", 1, 0), 0);
    assert_string_equal(st_buf_cstr(&b), "\"\\xff\"");
    st_buf_free(&b);

    assert_true(st_cfg_utf8_valid("abc\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 12));
    assert_false(st_cfg_utf8_valid("\xc3", 1));
    assert_false(st_cfg_utf8_valid("\xc0\x80", 2));         /* overlong */
    assert_false(st_cfg_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(st_cfg_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(st_cfg_utf8_valid("\xff", 1));
}

static void test_suggest(void **state)
{
    (void)state;
    char out[128];
    const char *k;
    k = st_cfg_suggest("server.http_lisen_port", 22, out, sizeof out);
    assert_non_null(k);
    assert_string_equal(k, "server.http_listen_port");
    k = st_cfg_suggest("sever", 5, out, sizeof out);
    assert_non_null(k);
    assert_string_equal(k, "server");
    k = st_cfg_suggest("server.max_line_size", 20, out, sizeof out);
    assert_non_null(k);
    assert_string_equal(k, "limits_config.max_line_size");
    k = st_cfg_suggest("limits_config.max_line_sise", 27, out, sizeof out);
    assert_non_null(k);
    assert_string_equal(k, "limits_config.max_line_size");
    assert_null(st_cfg_suggest("foo", 3, out, sizeof out));
    assert_null(st_cfg_suggest("storage_config.filesystem.dir", 29, out, sizeof out));
    assert_null(st_cfg_suggest("server.grpc_listen_port", 23, out, sizeof out));
    k = st_cfg_suggest("ingester.wall", 13, out, sizeof out);
    assert_non_null(k);
    assert_string_equal(k, "ingester.wal");
    assert_null(st_cfg_suggest("server.completely_different", 27, out, sizeof out));
    assert_int_equal(st_cfg_edit_distance("kitten", 6, "sitting", 7), 3);
    assert_int_equal(st_cfg_edit_distance("", 0, "abc", 3), 3);
}

static void test_expand_env(void **state)
{
    (void)state;
    setenv("ST_CFG_T_A", "alpha", 1);
    setenv("ST_CFG_T_EMPTY", "", 1);
    unsetenv("ST_CFG_T_UNSET");
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"x: ${ST_CFG_T_A}", "x: alpha"},
        {"${ST_CFG_T_A}${ST_CFG_T_A}", "alphaalpha"},
        {"x: ${ST_CFG_T_UNSET}", "x: "},
        {"x: ${ST_CFG_T_UNSET:-dflt}", "x: dflt"},
        {"x: ${ST_CFG_T_EMPTY:-dflt}", "x: dflt"},
        {"x: ${ST_CFG_T_EMPTY}", "x: "},
        {"x: ${ST_CFG_T_A:-dflt}", "x: alpha"},
        {"x: ${ST_CFG_T_UNSET:-}", "x: "},
        {"x: ${ST_CFG_T_UNSET:-a b:c}", "x: a b:c"},
        {"x: $ST_CFG_T_A", "x: $ST_CFG_T_A"},
        {"x: ${ST_CFG_T_A", "x: ${ST_CFG_T_A"},
        {"x: ${1abc}", "x: ${1abc}"},
        {"x: ${ST_CFG_T_A-dflt}", "x: ${ST_CFG_T_A-dflt}"},
        {"x: ${ST_CFG_T_UNSET:-dflt", "x: ${ST_CFG_T_UNSET:-dflt"},
        {"x: ${}", "x: ${}"},
        {"$$ $ ${", "$$ $ ${"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 99;
        char *out = st_config_expand_env(cases[i].in, strlen(cases[i].in), &n);
        assert_non_null(out);
        if (strcmp(out, cases[i].want) != 0) fail_msg("%s -> %s", cases[i].in, out);
        assert_int_equal(n, strlen(cases[i].want));
        free(out);
    }
    /* Not NUL-terminated input. */
    char *out = st_config_expand_env("${ST_CFG_T_A}zzz", 13, NULL);
    assert_string_equal(out, "alpha");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_bytes),      cmocka_unit_test(test_format_bytes),
        cmocka_unit_test(test_durations),  cmocka_unit_test(test_dates),
        cmocka_unit_test(test_quote_utf8), cmocka_unit_test(test_suggest),
        cmocka_unit_test(test_expand_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
