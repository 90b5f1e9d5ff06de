/* values.c: value syntaxes inside LogQL and Go-compatible number/duration formatting: the arena,
 * Prometheus and Go durations, humanized byte sizes, Go float parsing and printing, string
 * unquoting, ip() ranges, pattern expressions and json parameter paths. Parsing of queries is not
 * here. */
#include "querier/logql/logql_int.h"

#include "common/err.h"
#include "common/labels.h"
#include "common/timeutil.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

/* ---- arena ---- */

struct lq_block {
    lq_block_t *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void lq_arena_init(lq_arena_t *a)
{
    memset(a, 0, sizeof *a);
}

void lq_arena_release(lq_arena_t *a)
{
    for (size_t i = 0; i < a->ncodes; i++) pcre2_code_free(a->codes[i]);
    free(a->codes);
    lq_block_t *b = a->head;
    while (b != NULL) {
        lq_block_t *nx = b->next;
        free(b);
        b = nx;
    }
    memset(a, 0, sizeof *a);
}

void *lq_alloc(lq_arena_t *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    lq_block_t *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *lq_strdup(lq_arena_t *a, const char *p, size_t n)
{
    char *d = lq_alloc(a, n + 1);
    if (d == NULL) return NULL;
    if (n > 0) memcpy(d, p, n);
    d[n] = '\0';
    return d;
}

int lq_arena_own_code(lq_arena_t *a, pcre2_code *c)
{
    if (a->ncodes == a->capcodes) {
        size_t nc = a->capcodes ? a->capcodes * 2 : 8;
        pcre2_code **v = realloc(a->codes, nc * sizeof *v);
        if (v == NULL) return -ENOMEM;
        a->codes = v;
        a->capcodes = nc;
    }
    a->codes[a->ncodes++] = c;
    return 0;
}

/* ---- Unicode classes ---- */

int32_t lq_decode_rune(const unsigned char *p, size_t n, int *w)
{
    *w = 1;
    if (n == 0) return 0xFFFD;
    unsigned c = p[0];
    if (c < 0x80) return (int32_t)c;
    int len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0xFFFD;
    }
    if ((size_t)len > n) return 0xFFFD;
    for (int k = 1; k < len; k++) {
        if ((p[k] & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (p[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0xFFFD;
    *w = len;
    return (int32_t)cp;
}

/* Starts of the Unicode Nd (decimal digit) blocks of ten outside ASCII (the common ones). */
static const uint32_t nd_blocks[] = {
    0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,  0x0C66,  0x0CE6,  0x0D66,
    0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,  0x1810,  0x1946,  0x19D0,  0x1A80,  0x1A90,
    0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,  0xA900,  0xA9D0,  0xA9F0,  0xAA50,  0xABF0,  0xFF10,
    0x104A0, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6,
};

bool lq_is_digit(int32_t r)
{
    if (r < 0x80) return r >= '0' && r <= '9';
    for (size_t i = 0; i < sizeof nd_blocks / sizeof nd_blocks[0]; i++)
        if ((uint32_t)r >= nd_blocks[i] && (uint32_t)r < nd_blocks[i] + 10) return true;
    return false;
}

bool lq_is_number(int32_t r)
{
    if (lq_is_digit(r)) return true;
    if (r < 0x80) return false;
    /* a few No/Nl ranges: superscripts, fractions, roman numerals, circled numbers */
    return r == 0xB2 || r == 0xB3 || r == 0xB9 || (r >= 0xBC && r <= 0xBE) || (r >= 0x2070 && r <= 0x2079) ||
           (r >= 0x2080 && r <= 0x2089) || (r >= 0x2150 && r <= 0x2189) || (r >= 0x2460 && r <= 0x249B) ||
           (r >= 0x24EA && r <= 0x24FF) || (r >= 0x2776 && r <= 0x2793) || r == 0x3007 ||
           (r >= 0x3021 && r <= 0x3029);
}

bool lq_is_space(int32_t r)
{
    switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return r >= 0x2000 && r <= 0x200A;
    }
}

static locale_t utf8_locale;
static pthread_once_t utf8_once = PTHREAD_ONCE_INIT;
static void utf8_locale_init(void)
{
    utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
}

bool lq_is_letter(int32_t r)
{
    if (r < 0) return false;
    if (r < 0x80) return isalpha(r) != 0;
    if (lq_is_digit(r) || lq_is_number(r)) return false;
    pthread_once(&utf8_once, utf8_locale_init);
    if (utf8_locale == (locale_t)0) return r >= 0xC0 && r != 0xD7 && r != 0xF7;
    return iswalpha_l((wint_t)r, utf8_locale) != 0;
}

/* ---- quoting ---- */

int lq_quote(st_buf_t *b, st_str_t s)
{
    return st_go_quote(b, s);
}

static void quote_into(char *out, size_t outsz, st_str_t s)
{
    st_buf_t b = ST_BUF_INIT;
    if (lq_quote(&b, s) == 0 && b.len < outsz) {
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    } else if (outsz > 0) {
        snprintf(out, outsz, "\"...\"");
    }
    st_buf_free(&b);
}

/* ---- durations ---- */

int lq_parse_prom_duration(st_str_t s, int64_t *out, char *msg, size_t msgsz)
{
    static const struct {
        const char *u;
        int pos;
        uint64_t mult;
    } units[] = {
        {"ms", 7, 1000000ULL},          {"s", 6, 1000000000ULL},     {"m", 5, 60000000000ULL},
        {"h", 4, 3600000000000ULL},     {"d", 3, 86400000000000ULL}, {"w", 2, 604800000000000ULL},
        {"y", 1, 31536000000000000ULL},
    };
    char q[300];
    if (s.n == 1 && s.p[0] == '0') {
        *out = 0;
        return 0;
    }
    if (s.n == 0) {
        snprintf(msg, msgsz, "empty duration string");
        return ST_EPARSE;
    }
    uint64_t dur = 0;
    int last = 0;
    size_t i = 0;
    while (i < s.n) {
        if (!isdigit((unsigned char)s.p[i])) goto invalid;
        size_t st = i;
        uint64_t v = 0;
        bool ovf = false;
        while (i < s.n && isdigit((unsigned char)s.p[i])) {
            unsigned d = (unsigned)(s.p[i] - '0');
            if (v > (UINT64_MAX - d) / 10)
                ovf = true;
            else
                v = v * 10 + d;
            i++;
        }
        (void)st;
        if (ovf) goto invalid;
        size_t us = i;
        while (i < s.n && !isdigit((unsigned char)s.p[i])) i++;
        if (i == us) goto invalid;
        st_str_t u = st_str(s.p + us, i - us);
        int k = -1;
        for (int j = 0; j < 7; j++)
            if (st_str_eqc(u, units[j].u)) k = j;
        if (k < 0) {
            char qu[300];
            quote_into(qu, sizeof qu, u);
            quote_into(q, sizeof q, s);
            snprintf(msg, msgsz, "unknown unit %s in duration %s", qu, q);
            return ST_EPARSE;
        }
        if (units[k].pos <= last) goto invalid;
        last = units[k].pos;
        if (v > (UINT64_C(1) << 63) / units[k].mult) {
            snprintf(msg, msgsz, "duration out of range");
            return ST_EPARSE;
        }
        dur += v * units[k].mult;
        if (dur > (uint64_t)INT64_MAX) {
            snprintf(msg, msgsz, "duration out of range");
            return ST_EPARSE;
        }
    }
    *out = (int64_t)dur;
    return 0;
invalid:
    quote_into(q, sizeof q, s);
    snprintf(msg, msgsz, "not a valid duration string: %s", q);
    return ST_EPARSE;
}

int lq_parse_go_duration(st_str_t s, int64_t *out)
{
    static const struct {
        const char *u;
        uint64_t mult;
    } units[] = {
        {"ns", 1},       {"us", 1000},      {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000}, {"m", 60000000000ULL}, {"h", 3600000000000ULL},
    };
    const uint64_t lim = UINT64_C(1) << 63;
    size_t i = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '-' || s.p[0] == '+')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (s.n - i == 1 && s.p[i] == '0') {
        *out = 0;
        return 0;
    }
    if (i == s.n) return ST_EPARSE;
    uint64_t d = 0;
    while (i < s.n) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        char c = s.p[i];
        if (!(c == '.' || (c >= '0' && c <= '9'))) return ST_EPARSE;
        size_t pl = i;
        while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
            if (v > lim / 10) return ST_EPARSE;
            v = v * 10 + (uint64_t)(s.p[i] - '0');
            if (v > lim) return ST_EPARSE;
            i++;
        }
        bool pre = i != pl, post = false;
        if (i < s.n && s.p[i] == '.') {
            i++;
            size_t fl = i;
            bool ovf = false;
            while (i < s.n && s.p[i] >= '0' && s.p[i] <= '9') {
                if (!ovf) {
                    if (f > (lim - 1) / 10) {
                        ovf = true;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(s.p[i] - '0');
                        if (y > lim)
                            ovf = true;
                        else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                i++;
            }
            post = i != fl;
        }
        if (!pre && !post) return ST_EPARSE;
        size_t us = i;
        while (i < s.n && s.p[i] != '.' && !(s.p[i] >= '0' && s.p[i] <= '9')) i++;
        if (i == us) return ST_EPARSE;
        st_str_t u = st_str(s.p + us, i - us);
        uint64_t unit = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
            if (st_str_eqc(u, units[k].u)) unit = units[k].mult;
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
    if (d > (uint64_t)INT64_MAX) return ST_EPARSE;
    *out = (int64_t)d;
    return 0;
}

/* go-humanize ParseBytes */
int lq_parse_bytes(st_str_t s, uint64_t *out)
{
    static const struct {
        const char *u;
        double m;
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
    /* count runes that are digits, '.' or ','; Go then slices that many bytes */
    size_t runes = 0, i = 0;
    bool comma = false;
    while (i < s.n) {
        int w;
        int32_t r = lq_decode_rune((const unsigned char *)s.p + i, s.n - i, &w);
        if (!(lq_is_digit(r) || r == '.' || r == ',')) break;
        if (r == ',') comma = true;
        runes++;
        i += (size_t)w;
    }
    if (runes > s.n) runes = s.n;
    char num[128];
    size_t nn = 0;
    for (size_t k = 0; k < runes && nn < sizeof num - 1; k++)
        if (!(comma && s.p[k] == ',')) num[nn++] = s.p[k];
    num[nn] = '\0';
    double f;
    char m[8];
    if (lq_parse_float(st_str(num, nn), &f, m, sizeof m) != 0) return ST_EPARSE;
    /* extra: lower(trim(rest)) */
    size_t a = runes, b = s.n;
    while (a < b) {
        int w;
        int32_t r = lq_decode_rune((const unsigned char *)s.p + a, b - a, &w);
        if (!lq_is_space(r)) break;
        a += (size_t)w;
    }
    while (b > a && (s.p[b - 1] == ' ' || s.p[b - 1] == '\t' || s.p[b - 1] == '\n' || s.p[b - 1] == '\r' ||
                     s.p[b - 1] == '\v' || s.p[b - 1] == '\f'))
        b--;
    char ex[16];
    if (b - a >= sizeof ex) return ST_EPARSE;
    for (size_t k = a; k < b; k++) ex[k - a] = (char)tolower((unsigned char)s.p[k]);
    ex[b - a] = '\0';
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        if (strcmp(ex, table[k].u) == 0) {
            f *= table[k].m;
            if (f >= 18446744073709551615.0) return ST_EPARSE;
            if (!(f >= 0)) return ST_EPARSE;
            *out = (uint64_t)f;
            return 0;
        }
    }
    return ST_EPARSE;
}

/* ---- Go float parsing ---- */

/* strconv's underscoreOK */
static bool underscore_ok(const char *s, size_t n)
{
    char saw = '^';
    size_t i = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+')) {
        s++;
        n--;
    }
    bool hex = false;
    if (n >= 2 && s[0] == '0' &&
        (tolower((unsigned char)s[1]) == 'b' || tolower((unsigned char)s[1]) == 'o' ||
         tolower((unsigned char)s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = tolower((unsigned char)s[1]) == 'x';
    }
    for (; i < n; i++) {
        char c = s[i];
        if ((c >= '0' && c <= '9') || (hex && isxdigit((unsigned char)c))) {
            saw = '0';
            continue;
        }
        if (c == '_') {
            if (saw != '0') return false;
            saw = '_';
            continue;
        }
        if (saw == '_') return false;
        saw = '!';
    }
    return saw != '_';
}

int lq_parse_float(st_str_t s, double *out, char *msg, size_t msgsz)
{
    char buf[400];
    char q[420];
    size_t n = 0;
    bool unders = false;
    const char *why = "invalid syntax";
    if (s.n == 0 || s.n >= sizeof buf) goto bad;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] == '_') {
            unders = true;
            continue;
        }
        buf[n++] = s.p[i];
    }
    buf[n] = '\0';
    if (unders && !underscore_ok(s.p, s.n)) goto bad;
    /* validate Go float syntax before strtod, which accepts more */
    size_t i = 0;
    if (buf[i] == '+' || buf[i] == '-') i++;
    bool hex = false;
    if (buf[i] == '0' && (buf[i + 1] == 'x' || buf[i + 1] == 'X')) {
        hex = true;
        i += 2;
    } else if (unders) {
        /* underscores in a decimal literal are only valid without a base prefix: fine */
    }
    {
        size_t digits = 0;
        while (hex ? isxdigit((unsigned char)buf[i]) : isdigit((unsigned char)buf[i])) {
            i++;
            digits++;
        }
        if (buf[i] == '.') {
            i++;
            while (hex ? isxdigit((unsigned char)buf[i]) : isdigit((unsigned char)buf[i])) {
                i++;
                digits++;
            }
        }
        if (digits == 0) {
            /* inf / nan spellings */
            const char *rest = buf + (buf[0] == '+' || buf[0] == '-' ? 1 : 0);
            if (strcasecmp(rest, "inf") == 0 || strcasecmp(rest, "infinity") == 0) {
                *out = buf[0] == '-' ? -INFINITY : INFINITY;
                return 0;
            }
            if (strcasecmp(rest, "nan") == 0) {
                *out = NAN;
                return 0;
            }
            goto bad;
        }
        char e = (char)tolower((unsigned char)buf[i]);
        if ((hex && e == 'p') || (!hex && e == 'e')) {
            i++;
            if (buf[i] == '+' || buf[i] == '-') i++;
            size_t ed = 0;
            while (isdigit((unsigned char)buf[i])) {
                i++;
                ed++;
            }
            if (ed == 0) goto bad;
        } else if (hex) {
            goto bad; /* hexadecimal mantissa requires a 'p' exponent */
        }
        if (i != n) goto bad;
    }
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (*end != '\0') goto bad;
    if (isinf(v)) {
        why = "value out of range";
        *out = v;
        goto bad;
    }
    *out = v;
    return 0;
bad:
    quote_into(q, sizeof q, s);
    if (msg != NULL && msgsz > 0) snprintf(msg, msgsz, "strconv.ParseFloat: parsing %s: %s", q, why);
    return ST_EPARSE;
}

int lq_atoi(st_str_t s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n == 0) return ST_EPARSE;
    if (s.p[0] == '+' || s.p[0] == '-') {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (i == s.n) return ST_EPARSE;
    uint64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return ST_EPARSE;
        unsigned d = (unsigned)(s.p[i] - '0');
        if (v > (UINT64_C(1) << 63) / 10) return ST_EPARSE;
        v = v * 10 + d;
        if (v > (UINT64_C(1) << 63)) return ST_EPARSE;
    }
    if (!neg && v > (uint64_t)INT64_MAX) return ST_EPARSE;
    *out = neg ? (v == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return 0;
}

/* ---- unquoting (Prometheus strutil.Unquote) ---- */

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int put_utf8(st_buf_t *b, uint32_t r)
{
    char t[4];
    int k;
    if (r >= 0xD800 && r < 0xE000) r = 0xFFFD;
    if (r < 0x80) {
        t[0] = (char)r;
        k = 1;
    } else if (r < 0x800) {
        t[0] = (char)(0xC0 | (r >> 6));
        t[1] = (char)(0x80 | (r & 0x3F));
        k = 2;
    } else if (r < 0x10000) {
        t[0] = (char)(0xE0 | (r >> 12));
        t[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        t[2] = (char)(0x80 | (r & 0x3F));
        k = 3;
    } else {
        t[0] = (char)(0xF0 | (r >> 18));
        t[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        t[3] = (char)(0x80 | (r & 0x3F));
        k = 4;
    }
    return st_buf_append(b, t, (size_t)k);
}

int lq_unquote(st_str_t tok, st_buf_t *out)
{
    if (tok.n < 2) return ST_EPARSE;
    char q = tok.p[0];
    if (q != tok.p[tok.n - 1]) return ST_EPARSE;
    const char *s = tok.p + 1;
    size_t n = tok.n - 2;
    if (q == '`') {
        if (memchr(s, '`', n) != NULL) return ST_EPARSE;
        return st_buf_append(out, s, n) < 0 ? -ENOMEM : 0;
    }
    if (q != '"' && q != '\'') return ST_EPARSE;
    if (memchr(s, '\n', n) != NULL) return ST_EPARSE;
    size_t i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q) return ST_EPARSE;
        if (c != '\\') {
            size_t j = i;
            while (j < n && s[j] != '\\' && s[j] != q) j++;
            if (st_buf_append(out, s + i, j - i) < 0) return -ENOMEM;
            i = j;
            continue;
        }
        if (i + 1 >= n) return ST_EPARSE;
        char e = s[i + 1];
        i += 2;
        int rc = 0;
        switch (e) {
        case 'a': rc = st_buf_putc(out, '\a'); break;
        case 'b': rc = st_buf_putc(out, '\b'); break;
        case 'f': rc = st_buf_putc(out, '\f'); break;
        case 'n': rc = st_buf_putc(out, '\n'); break;
        case 'r': rc = st_buf_putc(out, '\r'); break;
        case 't': rc = st_buf_putc(out, '\t'); break;
        case 'v': rc = st_buf_putc(out, '\v'); break;
        case '\\': rc = st_buf_putc(out, '\\'); break;
        case 'x':
        case 'u':
        case 'U': {
            size_t k = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            if (n - i < k) return ST_EPARSE;
            uint32_t v = 0;
            for (size_t j = 0; j < k; j++) {
                int h = hexv(s[i + j]);
                if (h < 0) return ST_EPARSE;
                v = v << 4 | (uint32_t)h;
            }
            i += k;
            if (e == 'x') {
                rc = st_buf_putc(out, (char)v);
            } else {
                if (v > 0x10FFFF) return ST_EPARSE;
                rc = put_utf8(out, v);
            }
            break;
        }
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
            if (n - i < 2) return ST_EPARSE;
            uint32_t v = (uint32_t)(e - '0');
            for (int j = 0; j < 2; j++) {
                int x = s[i + (size_t)j] - '0';
                if (x < 0 || x > 7) return ST_EPARSE;
                v = (v << 3) | (uint32_t)x;
            }
            i += 2;
            if (v > 255) return ST_EPARSE;
            rc = st_buf_putc(out, (char)v);
            break;
        }
        case '\'':
        case '"':
            if (e != q) return ST_EPARSE;
            rc = st_buf_putc(out, e);
            break;
        default: return ST_EPARSE;
        }
        if (rc < 0) return -ENOMEM;
    }
    return 0;
}

/* ---- Go float formatting ---- */

/* Shortest decimal digits that round-trip: digits (no dot) and the decimal exponent of the first
 * digit, as Go's strconv shortest mode produces. */
static int shortest_digits(double v, char *digs, int *exp10)
{
    char tmp[40];
    for (int p = 0; p < 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p, v);
        if (strtod(tmp, NULL) == v || p == 16) {
            int nd = 0;
            const char *q = tmp;
            for (; *q && *q != 'e'; q++)
                if (isdigit((unsigned char)*q)) digs[nd++] = *q;
            digs[nd] = '\0';
            *exp10 = atoi(q + 1);
            while (nd > 1 && digs[nd - 1] == '0') digs[--nd] = '\0';
            return nd;
        }
    }
    return 0;
}

static size_t fmt_special(double v, char *out)
{
    if (isnan(v)) return (size_t)sprintf(out, "NaN");
    return (size_t)sprintf(out, v > 0 ? "+Inf" : "-Inf");
}

/* %f layout of shortest digits */
static size_t layout_f(bool neg, const char *digs, int nd, int e, char *out, size_t outsz)
{
    st_buf_t b = ST_BUF_INIT;
    if (neg) st_buf_putc(&b, '-');
    int dp = e + 1; /* digits before the decimal point */
    if (dp <= 0) {
        st_buf_puts(&b, "0");
        if (nd > 0 && !(nd == 1 && digs[0] == '0')) {
            st_buf_putc(&b, '.');
            for (int k = 0; k < -dp; k++) st_buf_putc(&b, '0');
            st_buf_append(&b, digs, (size_t)nd);
        }
    } else {
        for (int k = 0; k < dp; k++) st_buf_putc(&b, k < nd ? digs[k] : '0');
        if (nd > dp) {
            st_buf_putc(&b, '.');
            st_buf_append(&b, digs + dp, (size_t)(nd - dp));
        }
    }
    size_t n = b.len < outsz - 1 ? b.len : outsz - 1;
    if (b.data) memcpy(out, b.data, n);
    out[n] = '\0';
    st_buf_free(&b);
    return n;
}

size_t lq_fmt_float_f(double v, char *out, size_t outsz)
{
    if (!isfinite(v)) return fmt_special(v, out);
    if (v == 0) return (size_t)snprintf(out, outsz, signbit(v) ? "-0" : "0");
    char digs[40];
    int e;
    int nd = shortest_digits(fabs(v), digs, &e);
    return layout_f(v < 0, digs, nd, e, out, outsz);
}

size_t lq_fmt_float_v(double v, char *out)
{
    if (!isfinite(v)) return fmt_special(v, out);
    if (v == 0) return (size_t)sprintf(out, signbit(v) ? "-0" : "0");
    char digs[40];
    int e;
    int nd = shortest_digits(fabs(v), digs, &e);
    if (e < -4 || e >= 6) {
        size_t n = 0;
        if (v < 0) out[n++] = '-';
        out[n++] = digs[0];
        if (nd > 1) {
            out[n++] = '.';
            memcpy(out + n, digs + 1, (size_t)nd - 1);
            n += (size_t)nd - 1;
        }
        n += (size_t)sprintf(out + n, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return n;
    }
    return layout_f(v < 0, digs, nd, e, out, 64);
}

size_t lq_fmt_go_duration(int64_t ns, char *out)
{
    return st_format_go_duration(ns, out);
}

size_t lq_fmt_prom_duration(int64_t ns, char *out)
{
    int64_t ms = ns / 1000000;
    if (ms == 0) return (size_t)sprintf(out, "0s");
    size_t n = 0;
    if (ms < 0) {
        out[n++] = '-';
        ms = -ms;
    }
    static const struct {
        const char *u;
        int64_t mult;
        bool exact;
    } f[] = {
        {"y", INT64_C(31536000000), true},
        {"w", INT64_C(604800000), true},
        {"d", INT64_C(86400000), false},
        {"h", INT64_C(3600000), false},
        {"m", INT64_C(60000), false},
        {"s", INT64_C(1000), false},
        {"ms", 1, false},
    };
    for (int i = 0; i < 7; i++) {
        if (f[i].exact && ms % f[i].mult != 0) continue;
        int64_t v = ms / f[i].mult;
        if (v > 0) {
            n += (size_t)sprintf(out + n, "%lld%s", (long long)v, f[i].u);
            ms -= v * f[i].mult;
        }
    }
    out[n] = '\0';
    return n;
}

/* humanize.Bytes with the spaces removed (BytesLabelFilter.String) */
size_t lq_fmt_bytes(uint64_t s, char *out)
{
    static const char *const sizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (s < 10) return (size_t)sprintf(out, "%lluB", (unsigned long long)s);
    int e = 0;
    double p = 1;
    while (e < 6 && (double)s >= p * 1000) {
        p *= 1000;
        e++;
    }
    double val = floor((double)s / p * 10 + 0.5) / 10;
    if (val < 10) return (size_t)sprintf(out, "%.1f%s", val, sizes[e]);
    return (size_t)sprintf(out, "%.0f%s", val, sizes[e]);
}

/* ---- ip("...") ---- */

static int parse_v4(const char *s, size_t n, uint8_t out[4])
{
    int field = 0, val = -1, digits = 0;
    for (size_t i = 0; i <= n; i++) {
        char c = i < n ? s[i] : '.';
        if (c >= '0' && c <= '9') {
            if (digits == 1 && val == 0) return -1; /* leading zero */
            val = (val < 0 ? 0 : val) * 10 + (c - '0');
            digits++;
            if (val > 255) return -1;
        } else if (c == '.') {
            if (digits == 0 || field > 3) return -1;
            out[field++] = (uint8_t)val;
            val = -1;
            digits = 0;
        } else {
            return -1;
        }
    }
    return field == 4 ? 0 : -1;
}

static int parse_v6(const char *s, size_t n, uint8_t out[16])
{
    /* strip a zone */
    const char *pct = memchr(s, '%', n);
    if (pct != NULL) {
        if ((size_t)(pct - s) + 1 == n) return -1;
        n = (size_t)(pct - s);
    }
    uint8_t ip[16] = {0};
    int ellipsis = -1, i = 0;
    size_t k = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        ellipsis = 0;
        k = 2;
        if (k == n) {
            memset(out, 0, 16);
            return 0;
        }
    }
    while (i < 16) {
        size_t st = k;
        unsigned v = 0;
        int nd = 0;
        while (k < n && hexv(s[k]) >= 0 && nd < 5) {
            v = v * 16 + (unsigned)hexv(s[k]);
            k++;
            nd++;
        }
        if (nd == 0 || nd > 4) return -1;
        if (k < n && s[k] == '.') {
            /* embedded IPv4 */
            if (ellipsis < 0 && i != 12) return -1;
            if (i + 4 > 16) return -1;
            uint8_t v4[4];
            if (parse_v4(s + st, n - st, v4) != 0) return -1;
            memcpy(ip + i, v4, 4);
            i += 4;
            k = n;
            break;
        }
        ip[i] = (uint8_t)(v >> 8);
        ip[i + 1] = (uint8_t)v;
        i += 2;
        if (k == n) break;
        if (s[k] != ':' || k + 1 == n) return -1;
        k++;
        if (s[k] == ':') {
            if (ellipsis >= 0) return -1;
            ellipsis = i;
            k++;
            if (k == n) break;
        }
    }
    if (k != n) return -1;
    if (i < 16) {
        if (ellipsis < 0) return -1;
        int nn = 16 - i;
        for (int j = i - 1; j >= ellipsis; j--) ip[j + nn] = ip[j];
        for (int j = ellipsis + nn - 1; j >= ellipsis; j--) ip[j] = 0;
    } else if (ellipsis >= 0) {
        return -1;
    }
    memcpy(out, ip, 16);
    return 0;
}

/* netip.ParseAddr: returns 4 or 6, or -1 */
static int parse_addr(const char *s, size_t n, uint8_t out[16], bool allow_zone)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            uint8_t v4[4];
            if (parse_v4(s, n, v4) != 0) return -1;
            memset(out, 0, 10);
            out[10] = out[11] = 0xFF;
            memcpy(out + 12, v4, 4);
            return 4;
        }
        if (s[i] == ':') {
            if (!allow_zone && memchr(s, '%', n) != NULL) return -1;
            return parse_v6(s, n, out) == 0 ? 6 : -1;
        }
        if (s[i] == '%') return -1;
    }
    return -1;
}

int lq_parse_ip(st_str_t s, st_logql_ip_t *o)
{
    uint8_t a[16], b[16];
    int fa = parse_addr(s.p, s.n, a, true);
    if (fa > 0) {
        o->v4 = fa == 4;
        memcpy(o->lo, a, 16);
        memcpy(o->hi, a, 16);
        return 0;
    }
    const char *slash = NULL;
    for (size_t i = s.n; i > 0; i--)
        if (s.p[i - 1] == '/') {
            slash = s.p + i - 1;
            break;
        }
    if (slash != NULL) {
        size_t an = (size_t)(slash - s.p);
        int f = parse_addr(s.p, an, a, false);
        const char *bits = slash + 1;
        size_t bn = s.n - an - 1;
        int maxb = f == 4 ? 32 : 128;
        bool ok = f > 0 && bn > 0 && bn <= 3 && !(bn > 1 && bits[0] == '0');
        int v = 0;
        for (size_t i = 0; ok && i < bn; i++) {
            if (bits[i] < '0' || bits[i] > '9')
                ok = false;
            else
                v = v * 10 + (bits[i] - '0');
        }
        if (ok && v <= maxb) {
            int total = f == 4 ? 96 + v : v;
            for (int i = 0; i < 16; i++) {
                int keep = total - i * 8;
                uint8_t mask = keep >= 8 ? 0xFF : keep <= 0 ? 0 : (uint8_t)(0xFF << (8 - keep));
                o->lo[i] = a[i] & mask;
                o->hi[i] = (uint8_t)(a[i] | (uint8_t)~mask);
            }
            o->v4 = f == 4;
            return 0;
        }
    }
    const char *dash = memchr(s.p, '-', s.n);
    if (dash != NULL) {
        size_t an = (size_t)(dash - s.p);
        int f1 = parse_addr(s.p, an, a, false);
        int f2 = parse_addr(dash + 1, s.n - an - 1, b, false);
        if (f1 > 0 && f1 == f2 && memcmp(a, b, 16) <= 0) {
            o->v4 = f1 == 4;
            memcpy(o->lo, a, 16);
            memcpy(o->hi, b, 16);
            return 0;
        }
    }
    return ST_EPARSE;
}

/* ---- patterns ---- */

int lq_parse_pattern(lq_arena_t *ar, st_str_t s, st_logql_pattern_t *out, char *msg, size_t msgsz)
{
    if (s.n == 0) {
        snprintf(
            msg, msgsz,
            "parse error at line 1, col 1: syntax error: unexpected $end, expecting IDENTIFIER or LITERAL");
        return ST_EPARSE;
    }
    size_t cap = 8, n = 0;
    st_logql_pattern_part_t *v = lq_alloc(ar, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    size_t i = 0;
    while (i < s.n) {
        /* <ident> capture? */
        if (s.p[i] == '<' && i + 2 < s.n && (isalpha((unsigned char)s.p[i + 1]) || s.p[i + 1] == '_')) {
            size_t j = i + 2;
            while (j < s.n && (isalnum((unsigned char)s.p[j]) || s.p[j] == '_')) j++;
            if (j < s.n && s.p[j] == '>') {
                if (n == cap) {
                    st_logql_pattern_part_t *nv = lq_alloc(ar, cap * 2 * sizeof *nv);
                    if (nv == NULL) return -ENOMEM;
                    memcpy(nv, v, n * sizeof *v);
                    v = nv;
                    cap *= 2;
                }
                char *name = lq_strdup(ar, s.p + i + 1, j - i - 1);
                if (name == NULL) return -ENOMEM;
                v[n].capture = true;
                v[n].text = st_str(name, j - i - 1);
                n++;
                i = j + 1;
                continue;
            }
        }
        /* literal run up to the next possible capture */
        size_t j = i + 1;
        while (j < s.n && s.p[j] != '<') j++;
        if (n > 0 && !v[n - 1].capture) {
            st_str_t prev = v[n - 1].text;
            char *t = lq_alloc(ar, prev.n + (j - i) + 1);
            if (t == NULL) return -ENOMEM;
            memcpy(t, prev.p, prev.n);
            memcpy(t + prev.n, s.p + i, j - i);
            v[n - 1].text = st_str(t, prev.n + (j - i));
        } else {
            if (n == cap) {
                st_logql_pattern_part_t *nv = lq_alloc(ar, cap * 2 * sizeof *nv);
                if (nv == NULL) return -ENOMEM;
                memcpy(nv, v, n * sizeof *v);
                v = nv;
                cap *= 2;
            }
            char *t = lq_strdup(ar, s.p + i, j - i);
            if (t == NULL) return -ENOMEM;
            v[n].capture = false;
            v[n].text = st_str(t, j - i);
            n++;
        }
        i = j;
    }
    out->v = v;
    out->n = n;
    return 0;
}

static int consecutive(const st_logql_pattern_t *p, char *msg, size_t msgsz)
{
    for (size_t i = 0; i + 1 < p->n; i++) {
        if (p->v[i].capture && p->v[i + 1].capture) {
            snprintf(msg, msgsz, "found consecutive capture '<%.*s><%.*s>': invalid expression",
                     (int)p->v[i].text.n, p->v[i].text.p, (int)p->v[i + 1].text.n, p->v[i + 1].text.p);
            return ST_EPARSE;
        }
    }
    return 0;
}

static bool is_unnamed(const st_logql_pattern_part_t *c)
{
    return c->capture && st_str_eqc(c->text, "_");
}

int lq_check_pattern_filter(const st_logql_pattern_t *p, char *msg, size_t msgsz)
{
    if (consecutive(p, msg, msgsz) != 0) return ST_EPARSE;
    for (size_t i = 0; i < p->n; i++) {
        if (p->v[i].capture && !is_unnamed(&p->v[i])) {
            snprintf(msg, msgsz, "named captures are not allowed: found '<%.*s>'", (int)p->v[i].text.n,
                     p->v[i].text.p);
            return ST_EPARSE;
        }
    }
    return 0;
}

int lq_check_pattern_parser(const st_logql_pattern_t *p, char *msg, size_t msgsz)
{
    size_t named = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->v[i].capture && !is_unnamed(&p->v[i])) named++;
    if (named == 0) {
        snprintf(msg, msgsz, "at least one capture is required");
        return ST_EPARSE;
    }
    if (consecutive(p, msg, msgsz) != 0) return ST_EPARSE;
    for (size_t i = 0; i < p->n; i++) {
        if (!p->v[i].capture || is_unnamed(&p->v[i])) continue;
        for (size_t j = 0; j < i; j++) {
            if (p->v[j].capture && st_str_eq(p->v[j].text, p->v[i].text)) {
                snprintf(msg, msgsz, "duplicate capture name (%.*s): invalid expression", (int)p->v[i].text.n,
                         p->v[i].text.p);
                return ST_EPARSE;
            }
        }
    }
    return 0;
}

/* ---- json paths (jsonexpr) ---- */

int lq_parse_json_path(lq_arena_t *ar, st_str_t s, st_logql_json_step_t **steps, size_t *nsteps, char *msg,
                       size_t msgsz)
{
    size_t cap = 4, n = 0;
    st_logql_json_step_t *v = lq_alloc(ar, cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    size_t i = 0;
    bool expect_field = true, first = true;
    while (i < s.n) {
        char c = s.p[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            i++;
            continue;
        }
        if (n == cap) {
            st_logql_json_step_t *nv = lq_alloc(ar, cap * 2 * sizeof *nv);
            if (nv == NULL) return -ENOMEM;
            memcpy(nv, v, n * sizeof *v);
            v = nv;
            cap *= 2;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            if (!expect_field) goto bad;
            size_t j = i;
            while (j < s.n && (isalnum((unsigned char)s.p[j]) || s.p[j] == '_')) j++;
            char *k = lq_strdup(ar, s.p + i, j - i);
            if (k == NULL) return -ENOMEM;
            v[n].is_index = false;
            v[n].key = st_str(k, j - i);
            n++;
            i = j;
            expect_field = false;
            first = false;
            continue;
        }
        if (c == '.') {
            if (first || expect_field) goto bad;
            expect_field = true;
            i++;
            continue;
        }
        if (c == '[') {
            if (expect_field && !first) goto bad;
            i++;
            while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\n')) i++;
            if (i < s.n && s.p[i] == '"') {
                size_t j = i + 1;
                while (j < s.n && s.p[j] != '"' && s.p[j] != ']') j++;
                char *k = lq_strdup(ar, s.p + i + 1, j - i - 1);
                if (k == NULL) return -ENOMEM;
                v[n].is_index = false;
                v[n].key = st_str(k, j - i - 1);
                i = j;
                if (i < s.n && s.p[i] == '"') i++;
            } else if (i < s.n && isdigit((unsigned char)s.p[i])) {
                int64_t x = 0;
                while (i < s.n && isdigit((unsigned char)s.p[i])) {
                    if (x > INT64_MAX / 10) goto bad;
                    x = x * 10 + (s.p[i] - '0');
                    i++;
                }
                if (i < s.n && s.p[i] == '.') {
                    snprintf(msg, msgsz, "cannot parse expression [%.*s]: cannot use float as array index",
                             (int)s.n, s.p);
                    return ST_EPARSE;
                }
                v[n].is_index = true;
                v[n].index = x;
            } else {
                goto bad;
            }
            while (i < s.n && (s.p[i] == ' ' || s.p[i] == '\t' || s.p[i] == '\n')) i++;
            if (i >= s.n || s.p[i] != ']') goto bad;
            i++;
            n++;
            expect_field = false;
            first = false;
            continue;
        }
        goto bad;
    }
    if (n == 0 || expect_field) goto bad;
    *steps = v;
    *nsteps = n;
    return 0;
bad:
    snprintf(msg, msgsz, "cannot parse expression [%.*s]: syntax error", (int)(s.n > 200 ? 200 : s.n), s.p);
    return ST_EPARSE;
}
