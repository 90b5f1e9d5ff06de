/* timeutil.c: time and duration parsing/formatting compatible with Loki's HTTP API. */
#include "common/timeutil.h"

#include "common/err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int64_t st_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * ST_NS_PER_SEC + ts.tv_nsec;
}

int64_t st_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * ST_NS_PER_SEC + ts.tv_nsec;
}

int64_t st_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void st_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int digits(const char *p, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i])) return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

int st_parse_rfc3339(st_str_t s, int64_t *out_ns)
{
    const char *p = s.p;
    size_t n = s.n;
    int Y, M, D, h, mi, sec;
    if (n < 20) return ST_EPARSE;
    if (digits(p, 4, &Y) || p[4] != '-' || digits(p + 5, 2, &M) || p[7] != '-' ||
        digits(p + 8, 2, &D) || (p[10] != 'T' && p[10] != 't') || digits(p + 11, 2, &h) ||
        p[13] != ':' || digits(p + 14, 2, &mi) || p[16] != ':' || digits(p + 17, 2, &sec))
        return ST_EPARSE;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || mi > 59 || sec > 59) return ST_EPARSE;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap)) return ST_EPARSE;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && p[i] == '.') {
        i++;
        size_t start = i;
        int64_t scale = 100000000;
        while (i < n && isdigit((unsigned char)p[i])) {
            if (scale > 0) {
                frac += (p[i] - '0') * scale;
                scale /= 10;
            }
            i++;
        }
        if (i == start) return ST_EPARSE;
    }
    int64_t off = 0;
    if (i < n && (p[i] == 'Z' || p[i] == 'z')) {
        i++;
    } else if (i + 6 == n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
        int oh, om;
        if (digits(p + i + 1, 2, &oh) || digits(p + i + 4, 2, &om) || oh > 23 || om > 59)
            return ST_EPARSE;
        off = (int64_t)(oh * 3600 + om * 60) * (p[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return ST_EPARSE;
    }
    if (i != n) return ST_EPARSE;
    int64_t days = st_days_from_civil(Y, (unsigned)M, (unsigned)D);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off;
    if (secs > INT64_MAX / ST_NS_PER_SEC - 1 || secs < INT64_MIN / ST_NS_PER_SEC + 1) return ST_EPARSE;
    *out_ns = secs * ST_NS_PER_SEC + frac;
    return 0;
}

static bool all_digits(st_str_t s, size_t from)
{
    if (s.n <= from) return false;
    for (size_t i = from; i < s.n; i++)
        if (!isdigit((unsigned char)s.p[i])) return false;
    return true;
}

int st_parse_query_time(st_str_t s, int64_t *out_ns)
{
    char tmp[64];
    if (s.n == 0) return ST_EPARSE;
    if (s.n < sizeof tmp && memchr(s.p, '.', s.n) != NULL) {
        memcpy(tmp, s.p, s.n);
        tmp[s.n] = '\0';
        char *end;
        double v = strtod(tmp, &end);
        if (*end == '\0' && isfinite(v)) {
            /* Go: time.Unix(s, ns) from math.Modf, rounded to ms. */
            double ip;
            double fp = modf(v, &ip);
            if (fabs(ip) > 9.2e9) return ST_EPARSE;
            int64_t ms = (int64_t)llround(fp * 1000.0);
            *out_ns = (int64_t)ip * ST_NS_PER_SEC + ms * ST_NS_PER_MS;
            return 0;
        }
    }
    size_t from = (s.p[0] == '-' || s.p[0] == '+') ? 1 : 0;
    if (all_digits(s, from) && s.n - from <= 19) {
        memcpy(tmp, s.p, s.n);
        tmp[s.n] = '\0';
        errno = 0;
        long long v = strtoll(tmp, NULL, 10);
        if (errno != 0) return ST_EPARSE;
        if (s.n <= 10) {
            *out_ns = (int64_t)v * ST_NS_PER_SEC;
        } else {
            *out_ns = (int64_t)v;
        }
        return 0;
    }
    return st_parse_rfc3339(s, out_ns);
}

int st_parse_prom_duration(st_str_t s, int64_t *out_ns)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"y", 365 * ST_NS_PER_DAY}, {"w", 7 * ST_NS_PER_DAY}, {"d", ST_NS_PER_DAY},
                 {"h", 3600 * ST_NS_PER_SEC}, {"m", 60 * ST_NS_PER_SEC}, {"s", ST_NS_PER_SEC},
                 {"ms", ST_NS_PER_MS}};
    if (s.n == 0) return ST_EPARSE;
    if (s.n == 1 && s.p[0] == '0') {
        *out_ns = 0;
        return 0;
    }
    size_t i = 0;
    int last = -1;
    int64_t total = 0;
    while (i < s.n) {
        size_t start = i;
        int64_t v = 0;
        while (i < s.n && isdigit((unsigned char)s.p[i])) {
            int d = s.p[i] - '0';
            if (v > (INT64_MAX - d) / 10) return ST_EPARSE;
            v = v * 10 + d;
            i++;
        }
        if (i == start) return ST_EPARSE;
        size_t ustart = i;
        while (i < s.n && isalpha((unsigned char)s.p[i])) i++;
        st_str_t u = st_str(s.p + ustart, i - ustart);
        int k = -1;
        for (int j = 0; j < 7; j++)
            if (st_str_eqc(u, units[j].unit)) k = j;
        if (k <= last) return ST_EPARSE;
        last = k;
        if (v != 0 && units[k].ns > INT64_MAX / v) return ST_EPARSE;
        if (total > INT64_MAX - v * units[k].ns) return ST_EPARSE;
        total += v * units[k].ns;
    }
    *out_ns = total;
    return 0;
}

int st_parse_seconds_or_duration(st_str_t s, int64_t *out_ns)
{
    char tmp[64];
    if (s.n == 0 || s.n >= sizeof tmp) return ST_EPARSE;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (*end == '\0' && end != tmp && isfinite(v) && !isalpha((unsigned char)tmp[0])) {
        double ns = v * 1e9;
        if (fabs(ns) > 9.2e18) return ST_EPARSE;
        *out_ns = (int64_t)llround(ns);
        return 0;
    }
    return st_parse_prom_duration(s, out_ns);
}

int st_parse_go_duration(st_str_t s, int64_t *out_ns)
{
    size_t i = 0;
    bool neg = false;
    if (i < s.n && (s.p[i] == '-' || s.p[i] == '+')) neg = s.p[i++] == '-';
    if (i == s.n) return ST_EPARSE;
    if (s.n - i == 1 && s.p[i] == '0') {
        *out_ns = 0;
        return 0;
    }
    double total = 0;
    while (i < s.n) {
        size_t start = i;
        double v = 0, scale = 1;
        bool any = false;
        while (i < s.n && isdigit((unsigned char)s.p[i])) {
            v = v * 10 + (s.p[i++] - '0');
            any = true;
        }
        if (i < s.n && s.p[i] == '.') {
            i++;
            while (i < s.n && isdigit((unsigned char)s.p[i])) {
                scale /= 10;
                v += (s.p[i++] - '0') * scale;
                any = true;
            }
        }
        if (!any || i == start) return ST_EPARSE;
        size_t us = i;
        while (i < s.n && !isdigit((unsigned char)s.p[i]) && s.p[i] != '.') i++;
        st_str_t u = st_str(s.p + us, i - us);
        double mult;
        if (st_str_eqc(u, "ns")) mult = 1;
        else if (st_str_eqc(u, "us") || st_str_eqc(u, "\xc2\xb5s") || st_str_eqc(u, "\xce\xbcs")) mult = 1e3;
        else if (st_str_eqc(u, "ms")) mult = 1e6;
        else if (st_str_eqc(u, "s")) mult = 1e9;
        else if (st_str_eqc(u, "m")) mult = 60e9;
        else if (st_str_eqc(u, "h")) mult = 3600e9;
        else return ST_EPARSE;
        total += v * mult;
        if (total > 9.223372036854775e18) return ST_EPARSE;
    }
    *out_ns = (int64_t)llround(neg ? -total : total);
    return 0;
}

/* Formats whole seconds and a nanosecond fraction (0..999999999) as RFC3339Nano in UTC. */
static size_t format_secs(int64_t secs, int64_t frac, char *out)
{
    int64_t days = secs / 86400;
    int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    st_civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, 40, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, m, d, (int)(rem / 3600),
                     (int)(rem / 60 % 60), (int)(rem % 60));
    if (frac) {
        char f[16];
        snprintf(f, sizeof f, "%09lld", (long long)frac);
        int k = 9;
        while (k > 0 && f[k - 1] == '0') k--;
        f[k] = '\0';
        n += snprintf(out + n, 40 - (size_t)n, ".%s", f);
    }
    out[n++] = 'Z';
    out[n] = '\0';
    return (size_t)n;
}

size_t st_format_rfc3339(int64_t ns, char *out)
{
    int64_t secs = ns / ST_NS_PER_SEC;
    int64_t frac = ns % ST_NS_PER_SEC;
    if (frac < 0) {
        frac += ST_NS_PER_SEC;
        secs--;
    }
    return format_secs(secs, frac, out);
}

size_t st_format_rfc3339_sec(int64_t ns, char *out)
{
    int64_t secs = ns / ST_NS_PER_SEC;
    if (ns % ST_NS_PER_SEC < 0) secs--;
    return format_secs(secs, 0, out);
}

/* Go's time.Duration.String(). */
size_t st_format_go_duration(int64_t ns, char *out)
{
    if (ns == 0) {
        strcpy(out, "0s");
        return 2;
    }
    char buf[64];
    int w = (int)sizeof buf;
    bool neg = ns < 0;
    uint64_t u = neg ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
    buf[--w] = '\0';
    if (u < (uint64_t)ST_NS_PER_SEC) {
        /* Sub-second: ns, us or ms with a fraction. */
        int prec;
        const char *unit;
        if (u < 1000) {
            prec = 0;
            unit = "ns";
        } else if (u < 1000000) {
            prec = 3;
            unit = "\xc2\xb5s";
        } else {
            prec = 6;
            unit = "ms";
        }
        char tmp[48];
        uint64_t ip = u, fp = 0, div = 1;
        for (int i = 0; i < prec; i++) div *= 10;
        ip = u / div;
        fp = u % div;
        int n;
        if (fp) {
            char fs[16];
            snprintf(fs, sizeof fs, "%0*llu", prec, (unsigned long long)fp);
            int k = prec;
            while (k > 0 && fs[k - 1] == '0') k--;
            fs[k] = '\0';
            n = snprintf(tmp, sizeof tmp, "%s%llu.%s%s", neg ? "-" : "", (unsigned long long)ip, fs, unit);
        } else {
            n = snprintf(tmp, sizeof tmp, "%s%llu%s", neg ? "-" : "", (unsigned long long)ip, unit);
        }
        memcpy(out, tmp, (size_t)n + 1);
        return (size_t)n;
    }
    uint64_t secs = u / (uint64_t)ST_NS_PER_SEC, fp = u % (uint64_t)ST_NS_PER_SEC;
    char tmp[64];
    int n = 0;
    uint64_t h = secs / 3600, m = secs / 60 % 60, s = secs % 60;
    if (neg) tmp[n++] = '-';
    if (h) n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%lluh", (unsigned long long)h);
    if (h || m) n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%llum", (unsigned long long)m);
    n += snprintf(tmp + n, sizeof tmp - (size_t)n, "%llu", (unsigned long long)s);
    if (fp) {
        char fs[16];
        snprintf(fs, sizeof fs, "%09llu", (unsigned long long)fp);
        int k = 9;
        while (k > 0 && fs[k - 1] == '0') k--;
        fs[k] = '\0';
        n += snprintf(tmp + n, sizeof tmp - (size_t)n, ".%s", fs);
    }
    tmp[n++] = 's';
    tmp[n] = '\0';
    memcpy(out, tmp, (size_t)n + 1);
    (void)w;
    return (size_t)n;
}

/* Prometheus model.Duration.String(): largest units first, zero units skipped, ms last; years and
 * weeks only when they divide the rest exactly ("30d1h", not "4w2d1h"). */
size_t st_format_prom_duration(int64_t ns, char *out)
{
    int64_t ms = ns / ST_NS_PER_MS;
    if (ms == 0) {
        strcpy(out, "0s");
        return 2;
    }
    static const struct {
        char u;
        int64_t ms;
    } units[] = {{'y', 365LL * 86400000}, {'w', 7LL * 86400000}, {'d', 86400000},
                 {'h', 3600000}, {'m', 60000}, {'s', 1000}};
    int n = 0;
    if (ms < 0) {
        out[n++] = '-';
        ms = -ms;
    }
    for (int i = 0; i < 6; i++) {
        if (i < 2 && ms % units[i].ms != 0) continue;
        if (ms >= units[i].ms) {
            n += sprintf(out + n, "%lld%c", (long long)(ms / units[i].ms), units[i].u);
            ms %= units[i].ms;
        }
    }
    if (ms) n += sprintf(out + n, "%lldms", (long long)ms);
    out[n] = '\0';
    return (size_t)n;
}
