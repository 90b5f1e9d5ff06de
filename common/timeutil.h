/* timeutil.h: clocks and the time/duration formats of Loki's HTTP API (section 0 of the API notes).
 *
 * All timestamps are int64 Unix nanoseconds; durations are int64 nanoseconds. Parsers take a
 * borrowed slice and return 0 or ST_EPARSE, writing the out-parameter only on success. */
#ifndef ST_COMMON_TIMEUTIL_H
#define ST_COMMON_TIMEUTIL_H

#include "common/buf.h"

#include <stdint.h>

#define ST_NS_PER_SEC INT64_C(1000000000)
#define ST_NS_PER_MS INT64_C(1000000)
#define ST_NS_PER_DAY (INT64_C(86400) * ST_NS_PER_SEC)

int64_t st_now_ns(void);      /* CLOCK_REALTIME */
int64_t st_mono_ns(void);     /* CLOCK_MONOTONIC */

/* Loki's query-time rule: "<float with .>" seconds (ms precision); an integer of <= 10 digits is
 * seconds, longer is nanoseconds; else RFC3339 / RFC3339Nano. */
int st_parse_query_time(st_str_t s, int64_t *out_ns);
/* RFC3339 with optional fraction and Z or +hh:mm offset. */
int st_parse_rfc3339(st_str_t s, int64_t *out_ns);
/* Prometheus duration: [0-9]+(y|w|d|h|m|s|ms) units in that order, e.g. "1h30m". */
int st_parse_prom_duration(st_str_t s, int64_t *out_ns);
/* Loki's step/since/interval rule: a float is seconds, otherwise a Prometheus duration. */
int st_parse_seconds_or_duration(st_str_t s, int64_t *out_ns);
/* Go time.ParseDuration syntax ("1.5h", "300ms", "-2m3s", "1us"). */
int st_parse_go_duration(st_str_t s, int64_t *out_ns);

/* Formats as RFC3339Nano in UTC ("2026-08-21T10:00:00.123Z", trailing zeros trimmed as Go does).
 * out must hold 40 bytes; returns the length. */
size_t st_format_rfc3339(int64_t ns, char *out);
/* Formats as Go's time.RFC3339 in UTC, whole seconds ("2026-08-21T10:00:00Z"). out: 32 bytes. */
size_t st_format_rfc3339_sec(int64_t ns, char *out);
/* Formats a duration the way Go's time.Duration.String() does ("1h0m0s", "721h0m0s", "1.5s"). */
size_t st_format_go_duration(int64_t ns, char *out);
/* Formats a duration the way Prometheus model.Duration.String() does ("1h", "30d1h", "5m"). */
size_t st_format_prom_duration(int64_t ns, char *out);

/* Days since 1970-01-01 for a civil date, and back (proleptic Gregorian, any year). */
int64_t st_days_from_civil(int64_t y, unsigned m, unsigned d);
void st_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);
/* UTC day number of a timestamp (floor division). */
static inline int64_t st_day_of(int64_t ns)
{
    int64_t d = ns / ST_NS_PER_DAY;
    if (ns % ST_NS_PER_DAY < 0) d--;
    return d;
}

#endif
