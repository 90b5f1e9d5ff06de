/* values.c: text <-> value conversions for config keys: integers, booleans, humanized byte sizes
 * (Loki's binary units: KB = 1024), durations (Prometheus and Go forms), dates, quoting for messages and YAML
 * output, UTF-8 validation, edit distance for key suggestions, and ${VAR} expansion. */
#include "config/config_int.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_cfg_parse_int(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (i == n) return ST_EPARSE;
    uint64_t v = 0;
    bool big = false;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return ST_EPARSE;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            big = true;
        else
            v = v * 10 + d;
    }
    if (big || v > (uint64_t)INT64_MAX + neg) return ST_ELIMIT;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

static bool eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t ln = strlen(lit);
    if (n != ln) return false;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != lit[i]) return false;
    return true;
}

int st_cfg_parse_bool(const char *s, size_t n, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"};
    static const char *const no[] = {"false", "no", "off"};
    for (int i = 0; i < 3; i++) {
        if (eq_nocase(s, n, yes[i])) {
            *out = true;
            return 0;
        }
        if (eq_nocase(s, n, no[i])) {
            *out = false;
            return 0;
        }
    }
    return ST_EPARSE;
}

/* Loki's sizes (dskit flagext.ByteSize, c2h5oh/datasize): every unit is binary, KB = KiB = 1024. */
static const struct {
    const char *name;
    uint64_t mult;
} size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ULL << 10},
    {"kb", 1ULL << 10},
    {"ki", 1ULL << 10},
    {"kib", 1ULL << 10},
    {"m", 1ULL << 20},
    {"mb", 1ULL << 20},
    {"mi", 1ULL << 20},
    {"mib", 1ULL << 20},
    {"g", 1ULL << 30},
    {"gb", 1ULL << 30},
    {"gi", 1ULL << 30},
    {"gib", 1ULL << 30},
    {"t", 1ULL << 40},
    {"tb", 1ULL << 40},
    {"ti", 1ULL << 40},
    {"tib", 1ULL << 40},
    {"p", 1ULL << 50},
    {"pb", 1ULL << 50},
    {"pi", 1ULL << 50},
    {"pib", 1ULL << 50},
    {"e", 1ULL << 60},
    {"eb", 1ULL << 60},
    {"ei", 1ULL << 60},
    {"eib", 1ULL << 60},
};

__extension__ typedef unsigned __int128 u128;

int st_cfg_parse_bytes(const char *s, size_t n, uint64_t *out)
{
    /* Number: the leading run of digits, '.' and ',' (commas dropped), as strconv.ParseFloat sees
     * it: at least one digit, at most one '.'. */
    size_t i = 0;
    u128 ip = 0, fp = 0, fscale = 1;
    bool dot = false, any = false, big = false;
    for (; i < n; i++) {
        char ch = s[i];
        if (ch == ',') continue;
        if (ch == '.') {
            if (dot) return ST_EPARSE;
            dot = true;
            continue;
        }
        if (ch < '0' || ch > '9') break;
        any = true;
        unsigned d = (unsigned)(ch - '0');
        if (!dot) {
            if (ip > UINT64_MAX)
                big = true;
            else
                ip = ip * 10 + d;
        } else if (fscale < (u128)10000000000000000000ULL) {
            fp = fp * 10 + d;
            fscale *= 10;
        }
    }
    if (!any) return ST_EPARSE;
    /* Unit: the rest, trimmed, case-insensitive. */
    size_t a = i, b = n;
    while (a < b && isspace((unsigned char)s[a])) a++;
    while (b > a && isspace((unsigned char)s[b - 1])) b--;
    uint64_t mult = 0;
    for (size_t k = 0; k < sizeof size_units / sizeof size_units[0]; k++) {
        if (eq_nocase(s + a, b - a, size_units[k].name)) {
            mult = size_units[k].mult;
            break;
        }
    }
    if (mult == 0) return ST_EPARSE;
    if (big || ip > UINT64_MAX) return ST_ELIMIT;
    u128 v = ip * mult + fp * mult / fscale;
    if (v > UINT64_MAX) return ST_ELIMIT;
    *out = (uint64_t)v;
    return 0;
}

/* Go's time.ParseDuration, ported as-is (uint64 accumulation; the fraction goes through float64
 * exactly as Go does, which is exact to the nanosecond for every unit). */
int st_cfg_parse_go_duration(const char *s, size_t n, int64_t *out)
{
    static const struct {
        const char *u;
        uint64_t ns;
    } units[] = {{"ns", 1},
                 {"us", 1000},
                 {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
                 {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
                 {"ms", 1000000},
                 {"s", 1000000000ULL},
                 {"m", 60ULL * 1000000000ULL},
                 {"h", 3600ULL * 1000000000ULL}};
    const uint64_t lim = 1ULL << 63;
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) neg = s[i++] == '-';
    if (n - i == 1 && s[i] == '0') {
        *out = 0;
        return 0;
    }
    if (i == n) return ST_EPARSE;
    uint64_t d = 0;
    while (i < n) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        size_t start = i;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (v > lim / 10) return ST_EPARSE; /* overflow */
            v = v * 10 + (uint64_t)(s[i] - '0');
            if (v > lim) return ST_EPARSE;
        }
        bool pre = i != start, post = false;
        if (i < n && s[i] == '.') {
            i++;
            size_t fstart = i;
            bool overflow = false;
            for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
                if (overflow) continue;
                if (f > (lim - 1) / 10) {
                    overflow = true; /* Go: ignore the remaining digits */
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(s[i] - '0');
                if (y > lim) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = i != fstart;
        }
        if (!pre && !post) return ST_EPARSE;
        size_t us = i;
        while (i < n && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9')) i++;
        if (i == us) return ST_EPARSE; /* missing unit */
        uint64_t unit = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
            if (strlen(units[k].u) == i - us && memcmp(units[k].u, s + us, i - us) == 0) {
                unit = units[k].ns;
                break;
            }
        }
        if (unit == 0) return ST_EPARSE;
        if (v > lim / unit) return ST_EPARSE;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > lim) return ST_EPARSE;
        }
        d += v;
        if (d > lim) return ST_EPARSE;
    }
    if (neg) {
        *out = d == lim ? INT64_MIN : -(int64_t)d;
        return 0;
    }
    if (d > lim - 1) return ST_EPARSE;
    *out = (int64_t)d;
    return 0;
}

int st_cfg_parse_duration(const char *s, size_t n, int64_t *out)
{
    /* st_parse_prom_duration's digit loop overflows int64 (UB) on a 19-digit run; such a run can
     * never be a valid Prometheus duration (the smallest unit is 1ms), so skip it then. */
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        run = s[i] >= '0' && s[i] <= '9' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    if (longest <= 18 && st_parse_prom_duration(st_str(s, n), out) == 0) return 0;
    return st_cfg_parse_go_duration(s, n, out);
}

int st_cfg_parse_date(const char *s, size_t n, int64_t *out_day)
{
    if (n != 10 || s[4] != '-' || s[7] != '-') return ST_EPARSE;
    int v[3] = {0, 0, 0};
    static const int pos[3][2] = {{0, 4}, {5, 2}, {8, 2}};
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < pos[k][1]; j++) {
            char ch = s[pos[k][0] + j];
            if (ch < '0' || ch > '9') return ST_EPARSE;
            v[k] = v[k] * 10 + (ch - '0');
        }
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = v[0], m = v[1], d = v[2];
    if (m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return ST_EPARSE;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap) return ST_EPARSE;
    *out_day = st_days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

void st_cfg_format_date(int64_t day, char *out)
{
    int64_t y;
    unsigned m, d;
    st_civil_from_days(day, &y, &m, &d);
    snprintf(out, 32, "%04lld-%02u-%02u", (long long)y, m, d);
}

/* Decimals (0..3) needed to write v in unit m exactly, or -1. m <= 2^50, so r * 1000 fits. */
static int exact_decimals(uint64_t v, uint64_t m)
{
    uint64_t r = v % m;
    if (r == 0) return 0;
    if (r * 10 % m == 0) return 1;
    if (r * 100 % m == 0) return 2;
    if (r * 1000 % m == 0) return 3;
    return -1;
}

void st_cfg_format_bytes(uint64_t v, char *out)
{
    /* The largest binary unit that writes v exactly with at most three decimals, named as Loki
     * prints sizes ("256KB" = 262144); else the plain byte count. */
    static const struct {
        const char *name;
        uint64_t m;
    } mag[] = {{"PB", 1ULL << 50}, {"TB", 1ULL << 40}, {"GB", 1ULL << 30}, {"MB", 1ULL << 20}, {"KB", 1ULL << 10}};
    for (size_t k = 0; k < sizeof mag / sizeof mag[0]; k++) {
        int nd = v >= mag[k].m ? exact_decimals(v, mag[k].m) : -1;
        if (nd > 0 && v / mag[k].m >= 1000) nd = -1; /* "1234.567KB" reads worse than the integer */
        if (nd < 0) continue;
        uint64_t q = v / mag[k].m, r = v % mag[k].m;
        if (nd == 0) {
            snprintf(out, 32, "%llu%s", (unsigned long long)q, mag[k].name);
        } else {
            static const uint64_t p10[] = {1, 10, 100, 1000};
            snprintf(out, 32, "%llu.%0*llu%s", (unsigned long long)q, nd,
                     (unsigned long long)(r * p10[nd] / mag[k].m), mag[k].name);
        }
        return;
    }
    snprintf(out, 32, "%llu", (unsigned long long)v);
}

bool st_cfg_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length, or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
                 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
                 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                                : 0;
    if (len == 0 || !st_cfg_utf8_valid((const char *)s, len > n ? n : len) || len > n) return 0;
    uint32_t v = s[0] & (0x7f >> len);
    for (size_t k = 1; k < len; k++) v = v << 6 | (s[k] & 0x3f);
    *cp = v;
    return len;
}

int st_cfg_quote(st_buf_t *b, const char *s, size_t n, size_t max)
{
    bool cut = max > 0 && n > max;
    if (cut) n = max;
    const unsigned char *p = (const unsigned char *)s;
    ST_TRY(st_buf_putc(b, '"'));
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_decode(p + i, n - i, &cp);
        if (len == 0) { /* not UTF-8 (messages only): show the byte */
            ST_TRY(st_buf_printf(b, "\\x%02x", p[i]));
            i++;
            continue;
        }
        if (cp == '"')
            ST_TRY(st_buf_puts(b, "\\\""));
        else if (cp == '\\')
            ST_TRY(st_buf_puts(b, "\\\\"));
        else if (cp == '\n')
            ST_TRY(st_buf_puts(b, "\\n"));
        else if (cp == '\t')
            ST_TRY(st_buf_puts(b, "\\t"));
        /* YAML's reader rejects C0/C1 controls, U+FFFE/U+FFFF; NEL, LS and PS are line breaks and
         * U+FEFF is a BOM: escape them all so the text survives a reload. */
        else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            ST_TRY(st_buf_printf(b, "\\x%02x", (unsigned)cp));
        else if (cp == 0x2028 || cp == 0x2029 || cp == 0xfeff || cp == 0xfffe || cp == 0xffff)
            ST_TRY(st_buf_printf(b, "\\u%04x", (unsigned)cp));
        else
            ST_TRY(st_buf_append(b, p + i, len));
        i += len;
    }
    ST_TRY(st_buf_putc(b, '"'));
    if (cut) ST_TRY(st_buf_puts(b, "..."));
    return 0;
}

size_t st_cfg_edit_distance(const char *a, size_t an, const char *b, size_t bn)
{
    enum { MAXN = 64 };
    if (an > MAXN || bn > MAXN) return SIZE_MAX;
    size_t row[MAXN + 1];
    for (size_t j = 0; j <= bn; j++) row[j] = j;
    for (size_t i = 1; i <= an; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= bn; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[bn];
}

static bool is_var_start(char ch)
{
    return ch == '_' || isalpha((unsigned char)ch);
}
static bool is_var_char(char ch)
{
    return ch == '_' || isalnum((unsigned char)ch);
}

char *st_config_expand_env(const char *in, size_t n, size_t *outn)
{
    st_buf_t b = ST_BUF_INIT;
    char name[256];
    size_t i = 0;
    if (st_buf_reserve(&b, n) < 0) return NULL;
    while (i < n) {
        const char *d = memchr(in + i, '$', n - i);
        size_t lit = d ? (size_t)(d - (in + i)) : n - i;
        if (st_buf_append(&b, in + i, lit) < 0) goto oom;
        i += lit;
        if (i == n) break;
        /* in[i] == '$': recognise ${NAME} or ${NAME:-default} */
        size_t j = i + 1;
        if (j < n && in[j] == '{' && j + 1 < n && is_var_start(in[j + 1])) {
            size_t ns = j + 1, ne = ns;
            while (ne < n && is_var_char(in[ne])) ne++;
            const char *def = NULL;
            size_t defn = 0, end = 0;
            if (ne < n && in[ne] == '}') {
                end = ne + 1;
            } else if (ne + 1 < n && in[ne] == ':' && in[ne + 1] == '-') {
                const char *close = memchr(in + ne + 2, '}', n - (ne + 2));
                if (close != NULL) {
                    def = in + ne + 2;
                    defn = (size_t)(close - def);
                    end = (size_t)(close - in) + 1;
                }
            }
            if (end != 0 && ne - ns < sizeof name) {
                memcpy(name, in + ns, ne - ns);
                name[ne - ns] = '\0';
                const char *v = getenv(name);
                int rc = 0;
                if (v != NULL && (v[0] != '\0' || def == NULL))
                    rc = st_buf_puts(&b, v);
                else if (def != NULL)
                    rc = st_buf_append(&b, def, defn);
                if (rc < 0) goto oom;
                i = end;
                continue;
            }
        }
        if (st_buf_putc(&b, '$') < 0) goto oom;
        i++;
    }
    if (st_buf_reserve(&b, 0) < 0) goto oom;
    b.data[b.len] = '\0';
    if (outn != NULL) *outn = b.len;
    return b.data;
oom:
    st_buf_free(&b);
    return NULL;
}
