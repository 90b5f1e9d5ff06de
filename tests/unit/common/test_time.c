/* test_time.c: Loki's query-time and duration formats (API notes section 0) and Go-style formatting. */
#include "testutil.h"

#include "common/err.h"
#include "common/timeutil.h"

static int64_t qt(const char *s)
{
    int64_t v = 0;
    assert_int_equal(st_parse_query_time(st_cstr(s), &v), 0);
    return v;
}

static void test_query_time(void **state)
{
    (void)state;
    /* integers of <= 10 digits are seconds, longer ones nanoseconds */
    assert_true(qt("1724240000") == INT64_C(1724240000000000000));
    assert_true(qt("1724240000123456789") == INT64_C(1724240000123456789));
    assert_true(qt("0") == 0);
    assert_true(qt("12345678901") == INT64_C(12345678901)); /* 11 digits: ns */
    /* float seconds, rounded to ms */
    assert_true(qt("1724240000.5") == INT64_C(1724240000500000000));
    assert_true(qt("1724240000.1234") == INT64_C(1724240000123000000));
    /* RFC3339 and RFC3339Nano, with offsets */
    assert_true(qt("2024-08-21T11:33:20Z") == INT64_C(1724240000000000000));
    assert_true(qt("2024-08-21T11:33:20.000Z") == INT64_C(1724240000000000000));
    assert_true(qt("2024-08-21T11:33:20.123456789Z") == INT64_C(1724240000123456789));
    assert_true(qt("2024-08-21T13:33:20+02:00") == INT64_C(1724240000000000000));
    assert_true(qt("1969-12-31T23:59:59Z") == -ST_NS_PER_SEC);
    int64_t v;
    const char *bad[] = {"", "yesterday", "2024-08-21", "2024-13-01T00:00:00Z", "2024-02-30T00:00:00Z",
                         "2024-08-21T11:33:20", "1.2.3", "12345678901234567890123", "2023-02-29T00:00:00Z"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(st_parse_query_time(st_cstr(bad[i]), &v), ST_EPARSE);
    assert_int_equal(st_parse_query_time(st_cstr("2024-02-29T00:00:00Z"), &v), 0); /* leap day */
}

static void test_durations(void **state)
{
    (void)state;
    int64_t v;
    assert_int_equal(st_parse_seconds_or_duration(st_cstr("15"), &v), 0);
    assert_true(v == 15 * ST_NS_PER_SEC);
    assert_int_equal(st_parse_seconds_or_duration(st_cstr("0.5"), &v), 0);
    assert_true(v == ST_NS_PER_SEC / 2);
    assert_int_equal(st_parse_seconds_or_duration(st_cstr("15000ms"), &v), 0);
    assert_true(v == 15 * ST_NS_PER_SEC);
    assert_int_equal(st_parse_seconds_or_duration(st_cstr("1h30m"), &v), 0);
    assert_true(v == 5400 * ST_NS_PER_SEC);
    assert_int_equal(st_parse_prom_duration(st_cstr("7d"), &v), 0);
    assert_true(v == 7 * ST_NS_PER_DAY);
    assert_int_equal(st_parse_prom_duration(st_cstr("1y2w"), &v), 0);
    assert_true(v == 379 * ST_NS_PER_DAY);
    assert_int_equal(st_parse_prom_duration(st_cstr("30m1h"), &v), ST_EPARSE); /* order */
    assert_int_equal(st_parse_prom_duration(st_cstr("1.5h"), &v), ST_EPARSE);
    assert_int_equal(st_parse_prom_duration(st_cstr("h"), &v), ST_EPARSE);
    assert_int_equal(st_parse_go_duration(st_cstr("1.5h"), &v), 0);
    assert_true(v == 5400 * ST_NS_PER_SEC);
    assert_int_equal(st_parse_go_duration(st_cstr("-2m3s"), &v), 0);
    assert_true(v == -123 * ST_NS_PER_SEC);
    assert_int_equal(st_parse_go_duration(st_cstr("300us"), &v), 0);
    assert_true(v == 300000);
    assert_int_equal(st_parse_go_duration(st_cstr("5"), &v), ST_EPARSE);
}

static void test_format(void **state)
{
    (void)state;
    char b[64];
    st_format_rfc3339(INT64_C(1724240000123000000), b);
    assert_string_equal(b, "2024-08-21T11:33:20.123Z");
    st_format_rfc3339(INT64_C(1724240000000000000), b);
    assert_string_equal(b, "2024-08-21T11:33:20Z");
    st_format_rfc3339_sec(INT64_C(1724240000999999999), b);
    assert_string_equal(b, "2024-08-21T11:33:20Z");
    st_format_rfc3339_sec(INT64_MIN, b); /* no overflow at the edge of int64 nanoseconds */
    assert_string_equal(b, "1677-09-21T00:12:43Z");
    st_format_go_duration(721 * 3600 * ST_NS_PER_SEC, b);
    assert_string_equal(b, "721h0m0s");
    st_format_go_duration(1500 * ST_NS_PER_MS, b);
    assert_string_equal(b, "1.5s");
    st_format_go_duration(90 * ST_NS_PER_SEC, b);
    assert_string_equal(b, "1m30s");
    st_format_go_duration(0, b);
    assert_string_equal(b, "0s");
    st_format_prom_duration(721 * 3600 * ST_NS_PER_SEC, b);
    assert_string_equal(b, "30d1h");
    st_format_prom_duration(90 * ST_NS_PER_SEC, b);
    assert_string_equal(b, "1m30s");
    assert_true(st_day_of(-1) == -1);
    assert_true(st_day_of(ST_NS_PER_DAY) == 1);
    int64_t y;
    unsigned m, d;
    st_civil_from_days(st_days_from_civil(2024, 2, 29), &y, &m, &d);
    assert_true(y == 2024 && m == 2 && d == 29);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_query_time), cmocka_unit_test(test_durations),
                                       cmocka_unit_test(test_format)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
