/* json.c: strict pull parser and escaping writer (see json.h). */
#include "common/json.h"

#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void st_json_init(st_json_t *j, const char *p, size_t n)
{
    j->start = p;
    j->p = p;
    j->end = p + n;
    j->depth = 0;
    j->first[0] = true;
    j->err = NULL;
    j->err_off = 0;
}

int st_json_fail(st_json_t *j, const char *msg)
{
    if (j->err == NULL) {
        j->err = msg;
        j->err_off = (size_t)(j->p - j->start);
    }
    return ST_EPARSE;
}

const char *st_json_error(const st_json_t *j, size_t *offset)
{
    if (offset) *offset = j->err_off;
    return j->err;
}

static inline void skip_ws(st_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

st_json_type_t st_json_peek(st_json_t *j)
{
    if (j->err) return ST_JSON_ERROR;
    skip_ws(j);
    if (j->p >= j->end) return ST_JSON_END;
    switch (*j->p) {
    case '{': return ST_JSON_OBJECT;
    case '[': return ST_JSON_ARRAY;
    case '"': return ST_JSON_STRING;
    case 't': return ST_JSON_TRUE;
    case 'f': return ST_JSON_FALSE;
    case 'n': return ST_JSON_NULL;
    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return ST_JSON_NUMBER;
        st_json_fail(j, "invalid character looking for beginning of value");
        return ST_JSON_ERROR;
    }
}

static int open_container(st_json_t *j, char c, const char *what)
{
    if (st_json_peek(j) == ST_JSON_ERROR) return ST_EPARSE;
    if (j->p >= j->end || *j->p != c) return st_json_fail(j, what);
    if (j->depth >= ST_JSON_MAX_DEPTH) return st_json_fail(j, "exceeded max depth");
    j->p++;
    j->depth++;
    j->first[j->depth] = true;
    return 0;
}

int st_json_object_begin(st_json_t *j) { return open_container(j, '{', "expected object"); }
int st_json_array_begin(st_json_t *j) { return open_container(j, '[', "expected array"); }

/* Handles the separator before the next member/element: returns 1 if one follows, 0 at close. */
static int next_item(st_json_t *j, char close)
{
    if (j->err) return ST_EPARSE;
    skip_ws(j);
    if (j->p >= j->end) return st_json_fail(j, "unexpected end of JSON input");
    if (*j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    if (!j->first[j->depth]) {
        if (*j->p != ',') return st_json_fail(j, close == '}' ? "expected , or } after object member"
                                                             : "expected , or ] after array element");
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) return st_json_fail(j, "trailing comma");
    }
    j->first[j->depth] = false;
    return 1;
}

int st_json_next_key(st_json_t *j, st_str_t *key, st_buf_t *scratch)
{
    int rc = next_item(j, '}');
    if (rc <= 0) return rc;
    if (j->p >= j->end || *j->p != '"') return st_json_fail(j, "expected string object key");
    if (st_json_string(j, key, scratch) < 0) return ST_EPARSE;
    skip_ws(j);
    if (j->p >= j->end || *j->p != ':') return st_json_fail(j, "expected : after object key");
    j->p++;
    return 1;
}

int st_json_next_elem(st_json_t *j) { return next_item(j, ']'); }

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(st_buf_t *b, unsigned cp)
{
    char t[4];
    size_t n;
    if (cp < 0x80) {
        t[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        t[0] = (char)(0xC0 | (cp >> 6));
        t[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12));
        t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        t[0] = (char)(0xF0 | (cp >> 18));
        t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return st_buf_append(b, t, n);
}

/* Finds the first '"', '\\' or control byte at or after p (word-at-a-time). */
static inline const char *scan_string(const char *p, const char *end)
{
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t q = w ^ 0x2222222222222222ULL;  /* zero byte where '"' */
        uint64_t bs = w ^ 0x5C5C5C5C5C5C5C5CULL; /* zero byte where '\\' */
        uint64_t hasq = (q - 0x0101010101010101ULL) & ~q;
        uint64_t hasb = (bs - 0x0101010101010101ULL) & ~bs;
        uint64_t ctl = (w - 0x2020202020202020ULL) & ~w; /* byte < 0x20 */
        if ((hasq | hasb | ctl) & 0x8080808080808080ULL) break;
        p += 8;
    }
    while (p < end && *p != '"' && *p != '\\' && (unsigned char)*p >= 0x20) p++;
    return p;
}

int st_json_string(st_json_t *j, st_str_t *out, st_buf_t *scratch)
{
    if (st_json_peek(j) != ST_JSON_STRING) return j->err ? ST_EPARSE : st_json_fail(j, "expected string");
    const char *p = j->p + 1;
    const char *s = scan_string(p, j->end);
    if (s < j->end && *s == '"') {
        *out = st_str(p, (size_t)(s - p));
        j->p = s + 1;
        return 0;
    }
    st_buf_reset(scratch);
    for (;;) {
        if (s >= j->end) {
            j->p = s;
            return st_json_fail(j, "unexpected end of JSON input in string");
        }
        if (st_buf_append(scratch, p, (size_t)(s - p)) < 0) return st_json_fail(j, "out of memory");
        if (*s == '"') break;
        if ((unsigned char)*s < 0x20) {
            j->p = s;
            return st_json_fail(j, "invalid character in string literal");
        }
        /* backslash */
        if (s + 1 >= j->end) {
            j->p = s;
            return st_json_fail(j, "unexpected end of JSON input in string escape");
        }
        char c = s[1];
        char r;
        s += 2;
        switch (c) {
        case '"': r = '"'; break;
        case '\\': r = '\\'; break;
        case '/': r = '/'; break;
        case 'b': r = '\b'; break;
        case 'f': r = '\f'; break;
        case 'n': r = '\n'; break;
        case 'r': r = '\r'; break;
        case 't': r = '\t'; break;
        case 'u': {
            unsigned cp;
            if (j->end - s < 4 || hex4(s, &cp) < 0) {
                j->p = s;
                return st_json_fail(j, "invalid \\u escape in string literal");
            }
            s += 4;
            if (cp >= 0xD800 && cp < 0xDC00) {
                unsigned lo;
                if (j->end - s >= 6 && s[0] == '\\' && s[1] == 'u' && hex4(s + 2, &lo) == 0 &&
                    lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp < 0xE000) {
                cp = 0xFFFD;
            }
            if (put_utf8(scratch, cp) < 0) return st_json_fail(j, "out of memory");
            p = s;
            s = scan_string(p, j->end);
            continue;
        }
        default:
            j->p = s - 2;
            return st_json_fail(j, "invalid escape in string literal");
        }
        if (st_buf_putc(scratch, r) < 0) return st_json_fail(j, "out of memory");
        p = s;
        s = scan_string(p, j->end);
    }
    j->p = s + 1;
    *out = st_str(scratch->data ? scratch->data : "", scratch->len);
    return 0;
}

int st_json_number(st_json_t *j, st_str_t *out)
{
    if (st_json_peek(j) != ST_JSON_NUMBER) return j->err ? ST_EPARSE : st_json_fail(j, "expected number");
    const char *p = j->p, *s = p;
    if (s < j->end && *s == '-') s++;
    if (s < j->end && *s == '0') {
        s++;
    } else if (s < j->end && *s >= '1' && *s <= '9') {
        while (s < j->end && *s >= '0' && *s <= '9') s++;
    } else {
        return st_json_fail(j, "invalid number literal");
    }
    if (s < j->end && *s == '.') {
        s++;
        const char *d = s;
        while (s < j->end && *s >= '0' && *s <= '9') s++;
        if (s == d) return st_json_fail(j, "invalid number literal");
    }
    if (s < j->end && (*s == 'e' || *s == 'E')) {
        s++;
        if (s < j->end && (*s == '+' || *s == '-')) s++;
        const char *d = s;
        while (s < j->end && *s >= '0' && *s <= '9') s++;
        if (s == d) return st_json_fail(j, "invalid number literal");
    }
    *out = st_str(p, (size_t)(s - p));
    j->p = s;
    return 0;
}

int st_json_literal(st_json_t *j, st_json_type_t *out)
{
    st_json_type_t t = st_json_peek(j);
    const char *lit = t == ST_JSON_TRUE ? "true" : t == ST_JSON_FALSE ? "false" : t == ST_JSON_NULL ? "null" : NULL;
    if (lit == NULL) return j->err ? ST_EPARSE : st_json_fail(j, "expected literal");
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return st_json_fail(j, "invalid literal");
    j->p += n;
    *out = t;
    return 0;
}

int st_json_skip(st_json_t *j, st_str_t *raw)
{
    st_buf_t scratch = ST_BUF_INIT;
    st_json_type_t t = st_json_peek(j);
    const char *from = j->p;
    int rc = 0;
    st_str_t tmp;
    switch (t) {
    case ST_JSON_OBJECT:
        if ((rc = st_json_object_begin(j)) < 0) break;
        while ((rc = st_json_next_key(j, &tmp, &scratch)) == 1)
            if ((rc = st_json_skip(j, NULL)) < 0) break;
        break;
    case ST_JSON_ARRAY:
        if ((rc = st_json_array_begin(j)) < 0) break;
        while ((rc = st_json_next_elem(j)) == 1)
            if ((rc = st_json_skip(j, NULL)) < 0) break;
        break;
    case ST_JSON_STRING: rc = st_json_string(j, &tmp, &scratch); break;
    case ST_JSON_NUMBER: rc = st_json_number(j, &tmp); break;
    case ST_JSON_TRUE:
    case ST_JSON_FALSE:
    case ST_JSON_NULL: rc = st_json_literal(j, &t); break;
    case ST_JSON_END: rc = st_json_fail(j, "unexpected end of JSON input"); break;
    default: rc = ST_EPARSE; break;
    }
    st_buf_free(&scratch);
    if (rc < 0) return ST_EPARSE;
    if (raw) *raw = st_str(from, (size_t)(j->p - from));
    return 0;
}

int st_json_finish(st_json_t *j)
{
    if (j->err) return ST_EPARSE;
    skip_ws(j);
    if (j->p != j->end) return st_json_fail(j, "invalid character after top-level value");
    return 0;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

bool st_utf8_valid(st_str_t s)
{
    const unsigned char *p = (const unsigned char *)s.p, *end = p + s.n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = utf8_seq(p, end);
        if (n == 0) return false;
        p += n;
    }
    return true;
}

int st_json_put_str(st_buf_t *b, st_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    if (st_buf_reserve(b, s.n + 2) < 0) return -ENOMEM;
    b->data[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)s.p, *end = p + s.n;
    const unsigned char *run = p;
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        size_t n = 1;
        if (c >= 0x80) {
            n = utf8_seq(p, end);
            if (n > 0) {
                p += n;
                continue;
            }
        }
        if (st_buf_append(b, run, (size_t)(p - run)) < 0) return -ENOMEM;
        char esc[8];
        size_t en = 2;
        esc[0] = '\\';
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (c < 0x20) {
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                en = 6;
            } else {
                memcpy(esc, "\\ufffd", 6); /* invalid UTF-8 byte */
                en = 6;
            }
        }
        if (st_buf_append(b, esc, en) < 0) return -ENOMEM;
        p++;
        run = p;
    }
    if (st_buf_append(b, run, (size_t)(p - run)) < 0) return -ENOMEM;
    return st_buf_putc(b, '"');
}

int st_json_put_float_str(st_buf_t *b, double v)
{
    if (isnan(v)) return st_buf_puts(b, "NaN");
    if (isinf(v)) return st_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    if (v == 0) return st_buf_puts(b, signbit(v) ? "-0" : "0");
    /* Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits that round-trip, never an
     * exponent. Find the shortest %e form first, then place its digits in fixed notation. */
    char tmp[64];
    int prec;
    for (prec = 0; prec <= 16; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    int exp = atoi(strchr(tmp, 'e') + 1);
    int frac = prec - exp;
    if (frac < 0) frac = 0;
    if (frac > 340) frac = 340;
    char out[400];
    snprintf(out, sizeof out, "%.*f", frac, v);
    return st_buf_puts(b, out);
}
