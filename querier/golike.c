/* golike.c: Go standard-library behaviours reproduced for LogQL pipelines and templates (see
 * golike.h): number/duration/byte-size parsing with Go's error texts, Unicode helpers, and Go's
 * reference-time layouts for time.Time formatting and parsing (UTC is the local zone). */
#include "querier/golike.h"

#include "common/err.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "querier/logql/logql_int.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* ---- numbers ------------------------------------------------------------------------------------ */

int st_go_parse_float(st_str_t s, double *out, char *msg, size_t msgsz)
{
    if (msg != NULL && msgsz > 0) msg[0] = '\0';
    return lq_parse_float(s, out, msg, msgsz);
}

size_t st_go_fmt_float(double v, char *out)
{
    return lq_fmt_float_v(v, out);
}

/* time's quote(): like strconv.Quote for ASCII, \xNN for everything else. */
static void time_quote(st_buf_t *b, st_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    st_buf_putc(b, '"');
    for (size_t i = 0; i < s.n;) {
        int w;
        int32_t r = st_go_rune(s.p + i, s.n - i, &w);
        if (r >= 0x80 || r < ' ') {
            size_t width = (size_t)w;
            if (r == 0xFFFD) {
                width = 1;
                if (i + 2 < s.n && memcmp(s.p + i, "\xef\xbf\xbd", 3) == 0) width = 3;
            }
            for (size_t j = 0; j < width && i + j < s.n; j++) {
                unsigned char c = (unsigned char)s.p[i + j];
                char t[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
                st_buf_append(b, t, 4);
            }
            i += width;
        } else {
            if (r == '"' || r == '\\') st_buf_putc(b, '\\');
            st_buf_putc(b, (char)r);
            i++;
        }
    }
    st_buf_putc(b, '"');
}

static int dur_fail(char *msg, size_t msgsz, const char *what, st_str_t unit, st_str_t orig)
{
    if (msg == NULL || msgsz == 0) return ST_EPARSE;
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "time: ");
    st_buf_puts(&b, what);
    if (unit.p != NULL) {
        time_quote(&b, unit);
        st_buf_puts(&b, " in duration ");
    }
    time_quote(&b, orig);
    snprintf(msg, msgsz, "%s", st_buf_cstr(&b));
    st_buf_free(&b);
    return ST_EPARSE;
}

int st_go_parse_duration(st_str_t orig, int64_t *out_ns, char *msg, size_t msgsz)
{
    const st_str_t none = {NULL, 0};
    st_str_t s = orig;
    uint64_t d = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '-' || s.p[0] == '+')) {
        neg = s.p[0] == '-';
        s.p++;
        s.n--;
    }
    if (s.n == 1 && s.p[0] == '0') {
        *out_ns = 0;
        return 0;
    }
    if (s.n == 0) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
    const uint64_t lim = UINT64_C(1) << 63;
    while (s.n > 0) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(s.p[0] == '.' || (s.p[0] >= '0' && s.p[0] <= '9')))
            return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        size_t i = 0;
        for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
            if (v > lim / 10) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
            v = v * 10 + (uint64_t)(s.p[i] - '0');
            if (v > lim) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        }
        bool pre = i > 0, post = false;
        if (i < s.n && s.p[i] == '.') {
            i++;
            size_t st = i;
            bool overflow = false;
            for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
                if (overflow) continue;
                if (f > (lim - 1) / 10) {
                    overflow = true;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(s.p[i] - '0');
                if (y > lim) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = i > st;
        }
        if (!pre && !post) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        size_t us = i;
        while (i < s.n && !(s.p[i] == '.' || (s.p[i] >= '0' && s.p[i] <= '9'))) i++;
        if (i == us) return dur_fail(msg, msgsz, "missing unit in duration ", none, orig);
        st_str_t u = st_str(s.p + us, i - us);
        uint64_t unit;
        if (st_str_eqc(u, "ns"))
            unit = 1;
        else if (st_str_eqc(u, "us") || st_str_eqc(u, "\xc2\xb5s") || st_str_eqc(u, "\xce\xbcs"))
            unit = 1000;
        else if (st_str_eqc(u, "ms"))
            unit = 1000000;
        else if (st_str_eqc(u, "s"))
            unit = 1000000000;
        else if (st_str_eqc(u, "m"))
            unit = UINT64_C(60000000000);
        else if (st_str_eqc(u, "h"))
            unit = UINT64_C(3600000000000);
        else
            return dur_fail(msg, msgsz, "unknown unit ", u, orig);
        if (v > lim / unit) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > lim) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        }
        d += v;
        if (d > lim) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
        s.p += i;
        s.n -= i;
    }
    if (neg) {
        *out_ns = d == lim ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > lim - 1) return dur_fail(msg, msgsz, "invalid duration ", none, orig);
    *out_ns = (int64_t)d;
    return 0;
}

int st_go_parse_bytes(st_str_t s, uint64_t *out, char *msg, size_t msgsz)
{
    static const struct {
        const char *name;
        double mult;
    } table[] = {
        {"b", 1},
        {"kib", 1024.0},
        {"kb", 1e3},
        {"mib", 1048576.0},
        {"mb", 1e6},
        {"gib", 1073741824.0},
        {"gb", 1e9},
        {"tib", 1099511627776.0},
        {"tb", 1e12},
        {"pib", 1125899906842624.0},
        {"pb", 1e15},
        {"eib", 1152921504606846976.0},
        {"eb", 1e18},
        {"", 1},
        {"ki", 1024.0},
        {"k", 1e3},
        {"mi", 1048576.0},
        {"m", 1e6},
        {"gi", 1073741824.0},
        {"g", 1e9},
        {"ti", 1099511627776.0},
        {"t", 1e12},
        {"pi", 1125899906842624.0},
        {"p", 1e15},
        {"ei", 1152921504606846976.0},
        {"e", 1e18},
    };
    if (msg != NULL && msgsz > 0) msg[0] = '\0';
    size_t last = 0;
    bool comma = false;
    while (last < s.n && ((s.p[last] >= '0' && s.p[last] <= '9') || s.p[last] == '.' || s.p[last] == ',')) {
        comma |= s.p[last] == ',';
        last++;
    }
    char num[128];
    size_t nn = 0;
    for (size_t i = 0; i < last && nn < sizeof num; i++)
        if (!comma || s.p[i] != ',') num[nn++] = s.p[i];
    double f;
    if (last >= sizeof num) {
        if (msg) snprintf(msg, msgsz, "strconv.ParseFloat: parsing \"%.*s\": invalid syntax", (int)nn, num);
        return ST_EPARSE;
    }
    if (st_go_parse_float(st_str(num, nn), &f, msg, msgsz) != 0) return ST_EPARSE;
    st_str_t extra = st_go_trim_space(st_str(s.p + last, s.n - last));
    char low[16];
    if (extra.n < sizeof low) {
        for (size_t i = 0; i < extra.n; i++) low[i] = (char)tolower((unsigned char)extra.p[i]);
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
            if (strlen(table[i].name) == extra.n && memcmp(table[i].name, low, extra.n) == 0) {
                f *= table[i].mult;
                if (f >= 18446744073709551615.0) {
                    if (msg) snprintf(msg, msgsz, "too large: %.*s", (int)s.n, s.p);
                    return ST_EPARSE;
                }
                *out = (uint64_t)f;
                return 0;
            }
        }
    }
    if (msg) {
        st_buf_t b = ST_BUF_INIT;
        st_buf_puts(&b, "unhandled size name: ");
        for (size_t i = 0; i < extra.n;) {
            int w;
            int32_t r = st_go_rune(extra.p + i, extra.n - i, &w);
            st_go_put_rune(&b, st_go_lower(r));
            i += (size_t)w;
        }
        snprintf(msg, msgsz, "%s", st_buf_cstr(&b));
        st_buf_free(&b);
    }
    return ST_EPARSE;
}

/* Digits of s (after any sign) in base (0: Go's prefixes and underscores) into *out. */
static int parse_digits(st_str_t s, size_t i, int base, uint64_t *out)
{
    bool prefixed = false, base0 = base == 0;
    if (base == 0) {
        base = 10;
        if (i < s.n && s.p[i] == '0') {
            char c = i + 1 < s.n ? s.p[i + 1] : '\0';
            if (c == 'x' || c == 'X') {
                base = 16;
                i += 2;
            } else if (c == 'b' || c == 'B') {
                base = 2;
                i += 2;
            } else if (c == 'o' || c == 'O') {
                base = 8;
                i += 2;
            } else {
                base = 8;
                i += 1;
                if (i == s.n) {
                    *out = 0;
                    return 0;
                }
            }
            prefixed = true;
        }
    }
    if (i >= s.n) return ST_EPARSE;
    uint64_t v = 0;
    bool any = false;
    char prev = prefixed ? '0' : '^';
    for (; i < s.n; i++) {
        char c = s.p[i];
        if (c == '_') {
            /* only with base 0, and only between digits (a base prefix counts as a digit) */
            if (!base0 || prev != '0') return ST_EPARSE;
            prev = '_';
            continue;
        }
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'z')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'Z')
            d = c - 'A' + 10;
        else
            return ST_EPARSE;
        if (d >= base) return ST_EPARSE;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return ST_EPARSE;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
        prev = '0';
    }
    if (!any || prev == '_') return ST_EPARSE;
    *out = v;
    return 0;
}

int st_go_parse_uint(st_str_t s, int base, uint64_t *out)
{
    return parse_digits(s, 0, base, out);
}

int st_go_parse_int(st_str_t s, int base, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '+' || s.p[0] == '-')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    uint64_t v;
    if (parse_digits(s, i, base, &v) != 0) return ST_EPARSE;
    if (neg) {
        if (v > (UINT64_C(1) << 63)) return ST_EPARSE;
        *out = v == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return ST_EPARSE;
        *out = (int64_t)v;
    }
    return 0;
}

/* ---- runes -------------------------------------------------------------------------------------- */

int32_t st_go_rune(const char *p, size_t n, int *width)
{
    return lq_decode_rune((const unsigned char *)p, n, width);
}

int st_go_put_rune(st_buf_t *b, int32_t r)
{
    char t[4];
    size_t n;
    if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r < 0xE000)) r = 0xFFFD;
    if (r < 0x80) {
        t[0] = (char)r;
        n = 1;
    } else if (r < 0x800) {
        t[0] = (char)(0xC0 | (r >> 6));
        t[1] = (char)(0x80 | (r & 0x3F));
        n = 2;
    } else if (r < 0x10000) {
        t[0] = (char)(0xE0 | (r >> 12));
        t[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        t[2] = (char)(0x80 | (r & 0x3F));
        n = 3;
    } else {
        t[0] = (char)(0xF0 | (r >> 18));
        t[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        t[3] = (char)(0x80 | (r & 0x3F));
        n = 4;
    }
    return st_buf_append(b, t, n);
}

static locale_t u8loc;
static pthread_once_t u8once = PTHREAD_ONCE_INIT;
static void u8init(void)
{
    u8loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

int32_t st_go_upper(int32_t r)
{
    if (r < 0x80) return (r >= 'a' && r <= 'z') ? r - 32 : r;
    pthread_once(&u8once, u8init);
    return u8loc ? (int32_t)towupper_l((wint_t)r, u8loc) : r;
}

int32_t st_go_lower(int32_t r)
{
    if (r < 0x80) return (r >= 'A' && r <= 'Z') ? r + 32 : r;
    pthread_once(&u8once, u8init);
    return u8loc ? (int32_t)towlower_l((wint_t)r, u8loc) : r;
}

int32_t st_go_title(int32_t r)
{
    /* title case differs from upper case only for a few digraphs (Dž, Lj, Nj, Dz) */
    switch (r) {
    case 0x01C4:
    case 0x01C5:
    case 0x01C6: return 0x01C5;
    case 0x01C7:
    case 0x01C8:
    case 0x01C9: return 0x01C8;
    case 0x01CA:
    case 0x01CB:
    case 0x01CC: return 0x01CB;
    case 0x01F1:
    case 0x01F2:
    case 0x01F3: return 0x01F2;
    default: return st_go_upper(r);
    }
}

bool st_go_is_letter(int32_t r)
{
    return lq_is_letter(r);
}
bool st_go_is_digit(int32_t r)
{
    return lq_is_digit(r);
}
bool st_go_is_space(int32_t r)
{
    return lq_is_space(r);
}

st_str_t st_go_trim_space(st_str_t s)
{
    size_t a = 0, b = s.n;
    while (a < b) {
        int w;
        int32_t r = st_go_rune(s.p + a, b - a, &w);
        if (!st_go_is_space(r)) break;
        a += (size_t)w;
    }
    while (b > a) {
        /* find the start of the last rune */
        size_t k = b - 1;
        while (k > a && ((unsigned char)s.p[k] & 0xC0) == 0x80 && b - k < 4) k--;
        int w;
        int32_t r = st_go_rune(s.p + k, b - k, &w);
        if ((size_t)w != b - k) {
            k = b - 1;
            r = st_go_rune(s.p + k, 1, &w);
        }
        if (!st_go_is_space(r)) break;
        b = k;
    }
    return st_str(s.p + a, b - a);
}

/* ---- time --------------------------------------------------------------------------------------- */

static const char *const long_months[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
static const char *const long_days[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};
static const int days_before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};

static bool is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}
static int days_in(int m, int64_t y)
{
    return m == 2 && is_leap(y) ? 29 : days_before[m] - days_before[m - 1];
}

st_go_time_t st_go_time_from_unix(int64_t sec, int64_t nsec)
{
    st_go_time_t t;
    memset(&t, 0, sizeof t);
    sec += nsec / 1000000000;
    nsec %= 1000000000;
    if (nsec < 0) {
        nsec += 1000000000;
        sec--;
    }
    t.sec = sec;
    t.nsec = (int32_t)nsec;
    memcpy(t.zone, "UTC", 4);
    return t;
}

st_go_time_t st_go_time_from_ns(int64_t ns)
{
    return st_go_time_from_unix(0, ns);
}

st_go_time_t st_go_time_zero(void)
{
    /* 0001-01-01T00:00:00Z */
    return st_go_time_from_unix(st_days_from_civil(1, 1, 1) * 86400, 0);
}

int64_t st_go_time_unix_nano(const st_go_time_t *t)
{
    if (t->sec > INT64_MAX / 1000000000 - 1) return INT64_MAX;
    if (t->sec < INT64_MIN / 1000000000 + 1) return INT64_MIN;
    return t->sec * 1000000000 + t->nsec;
}

typedef struct {
    int64_t year;
    int month, day, hour, min, sec, yday, wday;
} civil_t;

static civil_t civil_of(const st_go_time_t *t)
{
    civil_t c;
    int64_t s = t->sec + t->off;
    int64_t days = s / 86400, rem = s % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    unsigned m, d;
    st_civil_from_days(days, &c.year, &m, &d);
    c.month = (int)m;
    c.day = (int)d;
    c.hour = (int)(rem / 3600);
    c.min = (int)(rem % 3600 / 60);
    c.sec = (int)(rem % 60);
    c.yday = days_before[c.month - 1] + c.day + (c.month > 2 && is_leap(c.year) ? 1 : 0);
    int64_t w = (days + 4) % 7;
    c.wday = (int)(w < 0 ? w + 7 : w);
    return c;
}

enum {
    STD_NONE = 0,
    STD_LONG_MONTH,
    STD_MONTH,
    STD_NUM_MONTH,
    STD_ZERO_MONTH,
    STD_LONG_WEEKDAY,
    STD_WEEKDAY,
    STD_DAY,
    STD_UNDER_DAY,
    STD_ZERO_DAY,
    STD_UNDER_YEARDAY,
    STD_ZERO_YEARDAY,
    STD_HOUR,
    STD_HOUR12,
    STD_ZERO_HOUR12,
    STD_MINUTE,
    STD_ZERO_MINUTE,
    STD_SECOND,
    STD_ZERO_SECOND,
    STD_LONG_YEAR,
    STD_YEAR,
    STD_PM,
    STD_pm,
    STD_TZ,
    STD_ISO_TZ,           /* Z0700 */
    STD_ISO_SECONDS_TZ,   /* Z070000 */
    STD_ISO_SHORT_TZ,     /* Z07 */
    STD_ISO_COLON_TZ,     /* Z07:00 */
    STD_ISO_COLON_SEC_TZ, /* Z07:00:00 */
    STD_NUM_TZ,           /* -0700 */
    STD_NUM_SECONDS_TZ,   /* -070000 */
    STD_NUM_SHORT_TZ,     /* -07 */
    STD_NUM_COLON_TZ,     /* -07:00 */
    STD_NUM_COLON_SEC_TZ, /* -07:00:00 */
    STD_FRAC0,            /* .000 */
    STD_FRAC9,            /* .999 */
};

typedef struct {
    size_t prefix; /* literal bytes before the chunk */
    int std;
    size_t len; /* bytes of the chunk */
    int ndig;   /* fractional digits */
    char sep;   /* '.' or ',' */
} chunk_t;

static bool starts_lower(const char *p, size_t n)
{
    return n > 0 && p[0] >= 'a' && p[0] <= 'z';
}
static bool has(const char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && memcmp(p, lit, k) == 0;
}

/* Go's nextStdChunk over l[0..n). */
static chunk_t next_chunk(const char *l, size_t n)
{
    chunk_t c = {n, STD_NONE, 0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const char *p = l + i;
        size_t r = n - i;
#define RET(s, k)                                                                                            \
    do {                                                                                                     \
        c.prefix = i;                                                                                        \
        c.std = (s);                                                                                         \
        c.len = (k);                                                                                         \
        return c;                                                                                            \
    } while (0)
        switch (p[0]) {
        case 'J':
            if (has(p, r, "Jan")) {
                if (has(p, r, "January")) RET(STD_LONG_MONTH, 7);
                if (!starts_lower(p + 3, r - 3)) RET(STD_MONTH, 3);
            }
            break;
        case 'M':
            if (has(p, r, "Mon")) {
                if (has(p, r, "Monday")) RET(STD_LONG_WEEKDAY, 6);
                if (!starts_lower(p + 3, r - 3)) RET(STD_WEEKDAY, 3);
            }
            if (has(p, r, "MST")) RET(STD_TZ, 3);
            break;
        case '0':
            if (r >= 2 && p[1] >= '1' && p[1] <= '6') {
                static const int z[] = {STD_ZERO_MONTH,  STD_ZERO_DAY,    STD_ZERO_HOUR12,
                                        STD_ZERO_MINUTE, STD_ZERO_SECOND, STD_YEAR};
                RET(z[p[1] - '1'], 2);
            }
            if (r >= 3 && p[1] == '0' && p[2] == '2') RET(STD_ZERO_YEARDAY, 3);
            break;
        case '1':
            if (r >= 2 && p[1] == '5') RET(STD_HOUR, 2);
            RET(STD_NUM_MONTH, 1);
        case '2':
            if (has(p, r, "2006")) RET(STD_LONG_YEAR, 4);
            RET(STD_DAY, 1);
        case '_':
            if (r >= 2 && p[1] == '2') {
                if (r >= 5 && memcmp(p + 1, "2006", 4) == 0) {
                    c.prefix = i + 1;
                    c.std = STD_LONG_YEAR;
                    c.len = 4;
                    return c;
                }
                RET(STD_UNDER_DAY, 2);
            }
            if (r >= 3 && p[1] == '_' && p[2] == '2') RET(STD_UNDER_YEARDAY, 3);
            break;
        case '3': RET(STD_HOUR12, 1);
        case '4': RET(STD_MINUTE, 1);
        case '5': RET(STD_SECOND, 1);
        case 'P':
            if (r >= 2 && p[1] == 'M') RET(STD_PM, 2);
            break;
        case 'p':
            if (r >= 2 && p[1] == 'm') RET(STD_pm, 2);
            break;
        case '-':
            if (has(p, r, "-070000")) RET(STD_NUM_SECONDS_TZ, 7);
            if (has(p, r, "-07:00:00")) RET(STD_NUM_COLON_SEC_TZ, 9);
            if (has(p, r, "-0700")) RET(STD_NUM_TZ, 5);
            if (has(p, r, "-07:00")) RET(STD_NUM_COLON_TZ, 6);
            if (has(p, r, "-07")) RET(STD_NUM_SHORT_TZ, 3);
            break;
        case 'Z':
            if (has(p, r, "Z070000")) RET(STD_ISO_SECONDS_TZ, 7);
            if (has(p, r, "Z07:00:00")) RET(STD_ISO_COLON_SEC_TZ, 9);
            if (has(p, r, "Z0700")) RET(STD_ISO_TZ, 5);
            if (has(p, r, "Z07:00")) RET(STD_ISO_COLON_TZ, 6);
            if (has(p, r, "Z07")) RET(STD_ISO_SHORT_TZ, 3);
            break;
        case '.':
        case ',':
            if (r >= 2 && (p[1] == '0' || p[1] == '9')) {
                char ch = p[1];
                size_t j = 1;
                while (j < r && p[j] == ch) j++;
                if (!(j < r && p[j] >= '0' && p[j] <= '9')) {
                    c.prefix = i;
                    c.std = ch == '0' ? STD_FRAC0 : STD_FRAC9;
                    c.len = j;
                    c.ndig = (int)(j - 1);
                    c.sep = p[0];
                    return c;
                }
            }
            break;
        default: break;
        }
#undef RET
    }
    return c;
}

static void put_int(st_buf_t *b, int64_t x, int width)
{
    char t[32];
    if (x < 0) {
        st_buf_putc(b, '-');
        x = -x;
    }
    int n = snprintf(t, sizeof t, "%0*lld", width, (long long)x);
    st_buf_append(b, t, (size_t)n);
}

static void put_zone_num(st_buf_t *b, int off, bool colon, bool seconds, bool shorty)
{
    int zone = off / 60;
    int absoff = off;
    if (zone < 0) {
        st_buf_putc(b, '-');
        zone = -zone;
        absoff = -absoff;
    } else {
        st_buf_putc(b, '+');
    }
    put_int(b, zone / 60, 2);
    if (!shorty) {
        if (colon) st_buf_putc(b, ':');
        put_int(b, zone % 60, 2);
    }
    if (seconds) {
        if (colon) st_buf_putc(b, ':');
        put_int(b, absoff % 60, 2);
    }
}

int st_go_time_format(const st_go_time_t *t, st_str_t layout, st_buf_t *b)
{
    civil_t c = civil_of(t);
    const char *l = layout.p;
    size_t n = layout.n;
    while (n > 0) {
        chunk_t k = next_chunk(l, n);
        if (k.prefix) st_buf_append(b, l, k.prefix);
        if (k.std == STD_NONE) break;
        l += k.prefix + k.len;
        n -= k.prefix + k.len;
        switch (k.std) {
        case STD_YEAR: {
            int64_t y = c.year % 100;
            if (y < 0) y = -y;
            put_int(b, y, 2);
            break;
        }
        case STD_LONG_YEAR: put_int(b, c.year, 4); break;
        case STD_MONTH: st_buf_append(b, long_months[c.month - 1], 3); break;
        case STD_LONG_MONTH: st_buf_puts(b, long_months[c.month - 1]); break;
        case STD_NUM_MONTH: put_int(b, c.month, 0); break;
        case STD_ZERO_MONTH: put_int(b, c.month, 2); break;
        case STD_WEEKDAY: st_buf_append(b, long_days[c.wday], 3); break;
        case STD_LONG_WEEKDAY: st_buf_puts(b, long_days[c.wday]); break;
        case STD_DAY: put_int(b, c.day, 0); break;
        case STD_UNDER_DAY:
            if (c.day < 10) st_buf_putc(b, ' ');
            put_int(b, c.day, 0);
            break;
        case STD_ZERO_DAY: put_int(b, c.day, 2); break;
        case STD_UNDER_YEARDAY:
            if (c.yday < 100) {
                st_buf_putc(b, ' ');
                if (c.yday < 10) st_buf_putc(b, ' ');
            }
            put_int(b, c.yday, 0);
            break;
        case STD_ZERO_YEARDAY: put_int(b, c.yday, 3); break;
        case STD_HOUR: put_int(b, c.hour, 2); break;
        case STD_HOUR12: {
            int h = c.hour % 12;
            put_int(b, h == 0 ? 12 : h, 0);
            break;
        }
        case STD_ZERO_HOUR12: {
            int h = c.hour % 12;
            put_int(b, h == 0 ? 12 : h, 2);
            break;
        }
        case STD_MINUTE: put_int(b, c.min, 0); break;
        case STD_ZERO_MINUTE: put_int(b, c.min, 2); break;
        case STD_SECOND: put_int(b, c.sec, 0); break;
        case STD_ZERO_SECOND: put_int(b, c.sec, 2); break;
        case STD_PM: st_buf_puts(b, c.hour >= 12 ? "PM" : "AM"); break;
        case STD_pm: st_buf_puts(b, c.hour >= 12 ? "pm" : "am"); break;
        case STD_ISO_TZ:
        case STD_ISO_SECONDS_TZ:
        case STD_ISO_SHORT_TZ:
        case STD_ISO_COLON_TZ:
        case STD_ISO_COLON_SEC_TZ:
            if (t->off == 0) {
                st_buf_putc(b, 'Z');
                break;
            }
            /* fallthrough */
        case STD_NUM_TZ:
        case STD_NUM_SECONDS_TZ:
        case STD_NUM_SHORT_TZ:
        case STD_NUM_COLON_TZ:
        case STD_NUM_COLON_SEC_TZ: {
            bool colon = k.std == STD_ISO_COLON_TZ || k.std == STD_NUM_COLON_TZ ||
                         k.std == STD_ISO_COLON_SEC_TZ || k.std == STD_NUM_COLON_SEC_TZ;
            bool secs = k.std == STD_ISO_SECONDS_TZ || k.std == STD_NUM_SECONDS_TZ ||
                        k.std == STD_ISO_COLON_SEC_TZ || k.std == STD_NUM_COLON_SEC_TZ;
            bool shorty = k.std == STD_ISO_SHORT_TZ || k.std == STD_NUM_SHORT_TZ;
            put_zone_num(b, t->off, colon, secs, shorty);
            break;
        }
        case STD_TZ:
            if (t->zone[0] != '\0') {
                st_buf_puts(b, t->zone);
            } else {
                int zone = t->off / 60;
                if (zone < 0) {
                    st_buf_putc(b, '-');
                    zone = -zone;
                } else {
                    st_buf_putc(b, '+');
                }
                put_int(b, zone / 60, 2);
                put_int(b, zone % 60, 2);
            }
            break;
        case STD_FRAC0:
        case STD_FRAC9: {
            char d[16];
            snprintf(d, sizeof d, "%09d", (int)t->nsec);
            int nd = k.ndig > 9 ? 9 : k.ndig;
            if (k.std == STD_FRAC9) {
                while (nd > 0 && d[nd - 1] == '0') nd--;
                if (nd == 0) break;
            }
            st_buf_putc(b, k.sep);
            st_buf_append(b, d, (size_t)nd);
            break;
        }
        default: break;
        }
    }
    return st_buf_reserve(b, 0);
}

int st_go_time_string(const st_go_time_t *t, st_buf_t *out)
{
    return st_go_time_format(t, ST_STR("2006-01-02 15:04:05.999999999 -0700 MST"), out);
}

/* ---- parsing ---- */

static bool dig(st_str_t v, size_t i)
{
    return i < v.n && v.p[i] >= '0' && v.p[i] <= '9';
}

static int getnum(st_str_t *v, bool fixed, int *out)
{
    if (!dig(*v, 0)) return -1;
    if (!dig(*v, 1)) {
        if (fixed) return -1;
        *out = v->p[0] - '0';
        v->p++;
        v->n--;
        return 0;
    }
    *out = (v->p[0] - '0') * 10 + (v->p[1] - '0');
    v->p += 2;
    v->n -= 2;
    return 0;
}

static int getnum3(st_str_t *v, bool fixed, int *out)
{
    int n = 0, i = 0;
    for (; i < 3 && dig(*v, (size_t)i); i++) n = n * 10 + (v->p[i] - '0');
    if (i == 0 || (fixed && i != 3)) return -1;
    *out = n;
    v->p += i;
    v->n -= (size_t)i;
    return 0;
}

static int lookup_name(st_str_t *v, const char *const *tab, size_t ntab, size_t len, int *out)
{
    for (size_t i = 0; i < ntab; i++) {
        size_t k = len ? len : strlen(tab[i]);
        if (v->n >= k && strncasecmp(v->p, tab[i], k) == 0) {
            *out = (int)i;
            v->p += k;
            v->n -= k;
            return 0;
        }
    }
    return -1;
}

static void cutspace(st_str_t *s)
{
    while (s->n > 0 && s->p[0] == ' ') {
        s->p++;
        s->n--;
    }
}

static int skip_prefix(st_str_t *v, st_str_t prefix)
{
    while (prefix.n > 0) {
        if (prefix.p[0] == ' ') {
            if (v->n > 0 && v->p[0] != ' ') return -1;
            cutspace(&prefix);
            cutspace(v);
            continue;
        }
        if (v->n == 0 || v->p[0] != prefix.p[0]) return -1;
        prefix.p++;
        prefix.n--;
        v->p++;
        v->n--;
    }
    return 0;
}

static int parse_nanos(st_str_t v, size_t nbytes, int32_t *out)
{
    if (v.n < nbytes || (v.p[0] != '.' && v.p[0] != ',')) return -1;
    if (nbytes > 10) nbytes = 10;
    int64_t ns = 0;
    for (size_t i = 1; i < nbytes; i++) {
        if (!dig(v, i)) return -1;
        ns = ns * 10 + (v.p[i] - '0');
    }
    for (size_t i = nbytes; i < 10; i++) ns *= 10;
    *out = (int32_t)ns;
    return 0;
}

/* Length of a time zone abbreviation at v (Go's parseTimeZone), 0 if none. */
static size_t zone_len(st_str_t v)
{
    if (v.n < 3) return 0;
    if (v.n >= 4 && (memcmp(v.p, "ChST", 4) == 0 || memcmp(v.p, "MeST", 4) == 0)) return 4;
    if (memcmp(v.p, "GMT", 3) == 0) {
        size_t i = 3;
        if (i < v.n && (v.p[i] == '+' || v.p[i] == '-')) {
            size_t j = i + 1;
            int64_t x = 0;
            while (j < v.n && dig(v, j) && j - i <= 3) x = x * 10 + (v.p[j++] - '0');
            if (j > i + 1 && x <= 23) return j;
        }
        return 3;
    }
    if (v.p[0] == '+' || v.p[0] == '-') {
        size_t j = 1;
        int64_t x = 0;
        while (j < v.n && dig(v, j) && j <= 3) x = x * 10 + (v.p[j++] - '0');
        if (j == 1 || x > 23) return 0;
        return j;
    }
    size_t up = 0;
    while (up < 6 && up < v.n && v.p[up] >= 'A' && v.p[up] <= 'Z') up++;
    switch (up) {
    case 5: return v.p[4] == 'T' ? 5 : 0;
    case 4: return (v.p[3] == 'T' || memcmp(v.p, "WITA", 4) == 0) ? 4 : 0;
    case 3: return 3;
    default: return 0;
    }
}

int st_go_time_parse(st_str_t layout, st_str_t value, st_go_time_t *out)
{
    static const char *const short_months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    static const char *const short_days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    int64_t year = 0;
    int month = -1, day = -1, yday = -1, hour = 0, min = 0, sec = 0;
    int32_t nsec = 0;
    bool utc = false, pm = false, am = false;
    int zone_off = -1;
    st_str_t zone_name = {NULL, 0};
    const char *l = layout.p;
    size_t ln = layout.n;
    st_str_t v = value;
    for (;;) {
        chunk_t k = next_chunk(l, ln);
        if (skip_prefix(&v, st_str(l, k.prefix)) != 0) return ST_EPARSE;
        if (k.std == STD_NONE) {
            if (v.n != 0) return ST_EPARSE;
            break;
        }
        l += k.prefix + k.len;
        ln -= k.prefix + k.len;
        int x, rc = 0;
        switch (k.std) {
        case STD_YEAR:
            if (!dig(v, 0) || !dig(v, 1)) return ST_EPARSE;
            year = (v.p[0] - '0') * 10 + (v.p[1] - '0');
            year += year >= 69 ? 1900 : 2000;
            v.p += 2;
            v.n -= 2;
            break;
        case STD_LONG_YEAR:
            if (v.n < 4 || !dig(v, 0)) return ST_EPARSE;
            year = 0;
            for (int i = 0; i < 4; i++) {
                if (!dig(v, (size_t)i)) return ST_EPARSE;
                year = year * 10 + (v.p[i] - '0');
            }
            v.p += 4;
            v.n -= 4;
            break;
        case STD_MONTH:
            rc = lookup_name(&v, short_months, 12, 3, &x);
            month = x + 1;
            break;
        case STD_LONG_MONTH:
            rc = lookup_name(&v, long_months, 12, 0, &x);
            month = x + 1;
            break;
        case STD_NUM_MONTH:
        case STD_ZERO_MONTH:
            rc = getnum(&v, k.std == STD_ZERO_MONTH, &month);
            if (rc == 0 && (month <= 0 || month > 12)) return ST_EPARSE;
            break;
        case STD_WEEKDAY: rc = lookup_name(&v, short_days, 7, 3, &x); break;
        case STD_LONG_WEEKDAY: rc = lookup_name(&v, long_days, 7, 0, &x); break;
        case STD_DAY:
        case STD_UNDER_DAY:
        case STD_ZERO_DAY:
            if (k.std == STD_UNDER_DAY && v.n > 0 && v.p[0] == ' ') {
                v.p++;
                v.n--;
            }
            rc = getnum(&v, k.std == STD_ZERO_DAY, &day);
            break;
        case STD_UNDER_YEARDAY:
        case STD_ZERO_YEARDAY:
            for (int i = 0; i < 2; i++)
                if (k.std == STD_UNDER_YEARDAY && v.n > 0 && v.p[0] == ' ') {
                    v.p++;
                    v.n--;
                }
            rc = getnum3(&v, k.std == STD_ZERO_YEARDAY, &yday);
            break;
        case STD_HOUR:
            rc = getnum(&v, false, &hour);
            if (rc == 0 && (hour < 0 || hour >= 24)) return ST_EPARSE;
            break;
        case STD_HOUR12:
        case STD_ZERO_HOUR12:
            rc = getnum(&v, k.std == STD_ZERO_HOUR12, &hour);
            if (rc == 0 && (hour < 0 || hour > 12)) return ST_EPARSE;
            break;
        case STD_MINUTE:
        case STD_ZERO_MINUTE:
            rc = getnum(&v, k.std == STD_ZERO_MINUTE, &min);
            if (rc == 0 && (min < 0 || min >= 60)) return ST_EPARSE;
            break;
        case STD_SECOND:
        case STD_ZERO_SECOND:
            rc = getnum(&v, k.std == STD_ZERO_SECOND, &sec);
            if (rc != 0) break;
            if (sec < 0 || sec >= 60) return ST_EPARSE;
            if (v.n >= 2 && (v.p[0] == '.' || v.p[0] == ',') && dig(v, 1)) {
                chunk_t nk = next_chunk(l, ln);
                if (nk.std == STD_FRAC0 || nk.std == STD_FRAC9) break;
                size_t nn = 2;
                while (nn < v.n && dig(v, nn)) nn++;
                if (parse_nanos(v, nn, &nsec) != 0) return ST_EPARSE;
                v.p += nn;
                v.n -= nn;
            }
            break;
        case STD_PM:
        case STD_pm: {
            if (v.n < 2) return ST_EPARSE;
            bool up = k.std == STD_PM;
            if (memcmp(v.p, up ? "PM" : "pm", 2) == 0)
                pm = true;
            else if (memcmp(v.p, up ? "AM" : "am", 2) == 0)
                am = true;
            else
                return ST_EPARSE;
            v.p += 2;
            v.n -= 2;
            break;
        }
        case STD_ISO_TZ:
        case STD_ISO_SECONDS_TZ:
        case STD_ISO_SHORT_TZ:
        case STD_ISO_COLON_TZ:
        case STD_ISO_COLON_SEC_TZ:
            if (v.n >= 1 && v.p[0] == 'Z') {
                v.p++;
                v.n--;
                utc = true;
                break;
            }
            /* fallthrough */
        case STD_NUM_TZ:
        case STD_NUM_SECONDS_TZ:
        case STD_NUM_SHORT_TZ:
        case STD_NUM_COLON_TZ:
        case STD_NUM_COLON_SEC_TZ: {
            char sign;
            char hh[2], mm[2] = {'0', '0'}, ss[2] = {'0', '0'};
            size_t used;
            if (k.std == STD_ISO_COLON_TZ || k.std == STD_NUM_COLON_TZ) {
                if (v.n < 6 || v.p[3] != ':') return ST_EPARSE;
                memcpy(hh, v.p + 1, 2);
                memcpy(mm, v.p + 4, 2);
                used = 6;
            } else if (k.std == STD_NUM_SHORT_TZ || k.std == STD_ISO_SHORT_TZ) {
                if (v.n < 3) return ST_EPARSE;
                memcpy(hh, v.p + 1, 2);
                used = 3;
            } else if (k.std == STD_ISO_COLON_SEC_TZ || k.std == STD_NUM_COLON_SEC_TZ) {
                if (v.n < 9 || v.p[3] != ':' || v.p[6] != ':') return ST_EPARSE;
                memcpy(hh, v.p + 1, 2);
                memcpy(mm, v.p + 4, 2);
                memcpy(ss, v.p + 7, 2);
                used = 9;
            } else if (k.std == STD_ISO_SECONDS_TZ || k.std == STD_NUM_SECONDS_TZ) {
                if (v.n < 7) return ST_EPARSE;
                memcpy(hh, v.p + 1, 2);
                memcpy(mm, v.p + 3, 2);
                memcpy(ss, v.p + 5, 2);
                used = 7;
            } else {
                if (v.n < 5) return ST_EPARSE;
                memcpy(hh, v.p + 1, 2);
                memcpy(mm, v.p + 3, 2);
                used = 5;
            }
            sign = v.p[0];
            for (int i = 0; i < 2; i++)
                if (hh[i] < '0' || hh[i] > '9' || mm[i] < '0' || mm[i] > '9' || ss[i] < '0' || ss[i] > '9')
                    return ST_EPARSE;
            int h = (hh[0] - '0') * 10 + hh[1] - '0', m = (mm[0] - '0') * 10 + mm[1] - '0',
                s = (ss[0] - '0') * 10 + ss[1] - '0';
            if (h > 24 || m > 60 || s > 60) return ST_EPARSE;
            zone_off = (h * 60 + m) * 60 + s;
            if (sign == '-')
                zone_off = -zone_off;
            else if (sign != '+')
                return ST_EPARSE;
            v.p += used;
            v.n -= used;
            break;
        }
        case STD_TZ: {
            if (v.n >= 3 && memcmp(v.p, "UTC", 3) == 0) {
                utc = true;
                v.p += 3;
                v.n -= 3;
                break;
            }
            size_t zl = zone_len(v);
            if (zl == 0) return ST_EPARSE;
            zone_name = st_str(v.p, zl);
            v.p += zl;
            v.n -= zl;
            break;
        }
        case STD_FRAC0: {
            size_t nd = 1 + (size_t)k.ndig;
            if (v.n < nd || parse_nanos(v, nd, &nsec) != 0) return ST_EPARSE;
            v.p += nd;
            v.n -= nd;
            break;
        }
        case STD_FRAC9: {
            if (v.n < 2 || (v.p[0] != '.' && v.p[0] != ',') || !dig(v, 1)) break;
            size_t i = 0;
            while (i + 1 < v.n && dig(v, i + 1)) i++;
            if (parse_nanos(v, 1 + i, &nsec) != 0) return ST_EPARSE;
            v.p += 1 + i;
            v.n -= 1 + i;
            break;
        }
        default: break;
        }
        if (rc != 0) return ST_EPARSE;
    }
    if (pm && hour < 12)
        hour += 12;
    else if (am && hour == 12)
        hour = 0;
    if (yday >= 0) {
        int m = 0, d = 0;
        if (is_leap(year)) {
            if (yday == 31 + 29) {
                m = 2;
                d = 29;
            } else if (yday > 31 + 29) {
                yday--;
            }
        }
        if (yday < 1 || yday > 365) return ST_EPARSE;
        if (m == 0) {
            m = (yday - 1) / 31 + 1;
            if (days_before[m] < yday) m++;
            d = yday - days_before[m - 1];
        }
        if (month >= 0 && month != m) return ST_EPARSE;
        month = m;
        if (day >= 0 && day != d) return ST_EPARSE;
        day = d;
    } else {
        if (month < 0) month = 1;
        if (day < 0) day = 1;
    }
    if (day < 1 || day > days_in(month, year)) return ST_EPARSE;
    int64_t secs =
        st_days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 + hour * 3600 + min * 60 + sec;
    st_go_time_t t = st_go_time_from_unix(secs, nsec);
    if (utc) {
        *out = t;
        return 0;
    }
    if (zone_off != -1) {
        t.sec -= zone_off;
        t.off = zone_off;
        if (zone_off == 0 && (zone_name.n == 0 || st_str_eqc(zone_name, "UTC"))) {
            memcpy(t.zone, "UTC", 4);
        } else {
            size_t zn = zone_name.n < sizeof t.zone - 1 ? zone_name.n : sizeof t.zone - 1;
            memcpy(t.zone, zone_name.p ? zone_name.p : "", zn);
            t.zone[zn] = '\0';
        }
        *out = t;
        return 0;
    }
    if (zone_name.n > 0) {
        int off = 0;
        if (zone_name.n > 3 && memcmp(zone_name.p, "GMT", 3) == 0) {
            int64_t h = 0;
            bool neg = zone_name.p[3] == '-';
            for (size_t i = 4; i < zone_name.n; i++) h = h * 10 + (zone_name.p[i] - '0');
            off = (int)(neg ? -h : h) * 3600;
        }
        t.sec -= off;
        t.off = off;
        size_t zn = zone_name.n < sizeof t.zone - 1 ? zone_name.n : sizeof t.zone - 1;
        memcpy(t.zone, zone_name.p, zn);
        t.zone[zn] = '\0';
        *out = t;
        return 0;
    }
    *out = t;
    return 0;
}
