/* golike.h: the Go standard-library behaviours that LogQL pipelines and line/label templates must
 * reproduce byte for byte: strconv.ParseFloat, time.ParseDuration and go-humanize ParseBytes with
 * Go's error texts, %v of a float64, Unicode case mapping, and time.Time with Go's reference-time
 * layouts (Format, Parse, String). Internal to the querier. */
#ifndef ST_QUERIER_GOLIKE_H
#define ST_QUERIER_GOLIKE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* strconv.ParseFloat(s, 64). On failure returns ST_EPARSE and writes Go's message
 * ("strconv.ParseFloat: parsing \"x\": invalid syntax") into msg (may be NULL). */
int st_go_parse_float(st_str_t s, double *out, char *msg, size_t msgsz);
/* time.ParseDuration: "time: invalid duration \"x\"", "time: missing unit in duration ...",
 * "time: unknown unit \"u\" in duration ...". */
int st_go_parse_duration(st_str_t s, int64_t *out_ns, char *msg, size_t msgsz);
/* humanize.ParseBytes: "unhandled size name: x", "too large: x" or ParseFloat's message. */
int st_go_parse_bytes(st_str_t s, uint64_t *out, char *msg, size_t msgsz);
/* fmt's %v of a float64 (strconv 'g', shortest): "3", "0.5", "1e+06", "NaN", "+Inf". out: 32 bytes. */
size_t st_go_fmt_float(double v, char *out);
/* strconv.ParseInt(s, base, 64) with base 0 prefixes (0x, 0o, 0b, 0) and underscores. */
int st_go_parse_int(st_str_t s, int base, int64_t *out);
/* strconv.ParseUint(s, base, 64) (no sign allowed). */
int st_go_parse_uint(st_str_t s, int base, uint64_t *out);

/* Decodes one UTF-8 rune like Go (invalid byte -> U+FFFD, width 1). n must be > 0. */
int32_t st_go_rune(const char *p, size_t n, int *width);
/* Appends the UTF-8 encoding of r (invalid runes become U+FFFD). */
int st_go_put_rune(st_buf_t *b, int32_t r);
/* Unicode simple case mapping (C.UTF-8 tables), as unicode.ToUpper/ToLower/ToTitle. */
int32_t st_go_upper(int32_t r);
int32_t st_go_lower(int32_t r);
int32_t st_go_title(int32_t r);
bool st_go_is_letter(int32_t r);
bool st_go_is_digit(int32_t r);
bool st_go_is_space(int32_t r);
/* strings.TrimSpace bounds of s. */
st_str_t st_go_trim_space(st_str_t s);

/* ---- time.Time ---------------------------------------------------------------------------------- */

typedef struct {
    int64_t sec;  /* seconds since the Unix epoch (any year) */
    int32_t nsec; /* [0, 1e9) */
    int32_t off;  /* zone offset, seconds east of UTC */
    char zone[8]; /* zone abbreviation ("UTC"); empty for a fixed zone without a name */
} st_go_time_t;

/* Go's zero time.Time (0001-01-01 00:00:00 UTC). */
st_go_time_t st_go_time_zero(void);
/* time.Unix(0, ns) in UTC (Strata's local zone is UTC). */
st_go_time_t st_go_time_from_ns(int64_t ns);
st_go_time_t st_go_time_from_unix(int64_t sec, int64_t nsec);
/* Nanoseconds since the epoch (saturating, like Go's UnixNano for out-of-range years). */
int64_t st_go_time_unix_nano(const st_go_time_t *t);
/* t.Format(layout), appended. */
int st_go_time_format(const st_go_time_t *t, st_str_t layout, st_buf_t *out);
/* t.String(): "2006-01-02 15:04:05.999999999 -0700 MST". */
int st_go_time_string(const st_go_time_t *t, st_buf_t *out);
/* time.ParseInLocation(layout, value, UTC). Returns 0 or ST_EPARSE. */
int st_go_time_parse(st_str_t layout, st_str_t value, st_go_time_t *out);

#endif
