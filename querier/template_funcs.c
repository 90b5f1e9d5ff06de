/* template_funcs.c: the functions a LogQL template can call, with the semantics of Loki's function
 * map: Loki's own (ToUpper, regexReplaceAll, unixToTime, alignLeft, ...), the Sprig subset Loki
 * registers (default, date, add/div/addf..., trunc, substr, b64enc, ...), and Go's text/template
 * built-ins (and, or, not, eq/ne/lt/le/gt/ge, len, index, slice, print, printf, println, html, js,
 * urlquery). printf follows Go's fmt verbs and its %!verb(type=value) error forms. */
#include "querier/template_int.h"

#include "common/err.h"
#include "common/labels.h"
#include "common/timeutil.h"
#include "querier/logql/logql_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FN(name) static int name(tx_t *x, tnode_t *call, const tval_t *a, size_t n, tval_t *out)
#define UNUSED_ARGS                                                                                          \
    (void)x;                                                                                                 \
    (void)call;                                                                                              \
    (void)a;                                                                                                 \
    (void)n

static void ret_str(tval_t *out, st_str_t s)
{
    out->k = V_STR;
    out->s = s;
}
static void ret_int(tval_t *out, int64_t i, uint8_t k)
{
    out->k = k;
    out->i = i;
}
static void ret_float(tval_t *out, double f)
{
    out->k = V_FLOAT;
    out->f = f;
}
static void ret_bool(tval_t *out, bool b)
{
    out->k = V_BOOL;
    out->b = b;
}

/* A string under construction in x->tmp; limited to TX_MAX_STR. */
static void sb_reset(tx_t *x)
{
    st_buf_reset(&x->tmp);
}
static void sb_add(tx_t *x, const char *p, size_t len)
{
    if (x->tmp.len + len > TX_MAX_STR) {
        tx_fn_fail(x, "string too long");
        return;
    }
    if (st_buf_append(&x->tmp, p, len) < 0) tx_oom(x);
}
static void sb_rune(tx_t *x, int32_t r)
{
    if (st_go_put_rune(&x->tmp, r) < 0) tx_oom(x);
}
static st_str_t sb_done(tx_t *x)
{
    return tx_buf_str(x, &x->tmp);
}
static bool sb_over(tx_t *x)
{
    return x->fnerr.len > 0;
}

/* ---- Go's strings package ---------------------------------------------------------------------- */

/* strings.Map with a rune mapping (invalid bytes come out as U+FFFD, as in Go). */
static st_str_t map_runes(tx_t *x, st_str_t s, int32_t (*f)(int32_t, void *), void *arg)
{
    bool ascii = true;
    for (size_t i = 0; i < s.n && ascii; i++) ascii = (unsigned char)s.p[i] < 0x80;
    sb_reset(x);
    for (size_t i = 0; i < s.n;) {
        int w;
        int32_t r = ascii ? (int32_t)(unsigned char)s.p[i] : st_go_rune(s.p + i, s.n - i, &w);
        if (ascii) w = 1;
        int32_t m = f(r, arg);
        if (m >= 0) sb_rune(x, m);
        i += (size_t)w;
    }
    return sb_done(x);
}

static int32_t m_upper(int32_t r, void *a)
{
    (void)a;
    return st_go_upper(r);
}
static int32_t m_lower(int32_t r, void *a)
{
    (void)a;
    return st_go_lower(r);
}

static bool is_separator(int32_t r)
{
    if (r <= 0x7F) {
        if ((r >= '0' && r <= '9') || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || r == '_')
            return false;
        return true;
    }
    if (st_go_is_letter(r) || st_go_is_digit(r)) return false;
    return st_go_is_space(r);
}

static int32_t m_title(int32_t r, void *a)
{
    int32_t *prev = a;
    int32_t out = is_separator(*prev) ? st_go_title(r) : r;
    *prev = r;
    return out;
}

static const char *find(st_str_t s, st_str_t sub)
{
    if (sub.n == 0) return s.p ? s.p : "";
    if (s.n < sub.n) return NULL;
    return memmem(s.p, s.n, sub.p, sub.n);
}

static size_t rune_count(st_str_t s)
{
    size_t c = 0;
    for (size_t i = 0; i < s.n;) {
        int w;
        st_go_rune(s.p + i, s.n - i, &w);
        i += (size_t)w;
        c++;
    }
    return c;
}

/* strings.Replace(s, old, new, n) */
static st_str_t replace(tx_t *x, st_str_t s, st_str_t old, st_str_t nw, int64_t lim)
{
    if (st_str_eq(old, nw) || lim == 0) return s;
    size_t m = 0;
    if (old.n == 0) {
        m = rune_count(s) + 1;
    } else {
        for (const char *p = s.p; (p = find(st_str(p, s.n - (size_t)(p - s.p)), old)) != NULL; p += old.n)
            m++;
    }
    if (m == 0) return s;
    if (lim < 0 || (uint64_t)lim > m) lim = (int64_t)m;
    sb_reset(x);
    size_t start = 0;
    for (int64_t i = 0; i < lim && !sb_over(x); i++) {
        size_t j = start;
        if (old.n == 0) {
            if (i > 0 && start < s.n) {
                int w;
                st_go_rune(s.p + start, s.n - start, &w);
                j += (size_t)w;
            }
        } else {
            j += (size_t)(find(st_str(s.p + start, s.n - start), old) - (s.p + start));
        }
        sb_add(x, s.p + start, j - start);
        sb_add(x, nw.p, nw.n);
        start = j + old.n;
    }
    if (start < s.n) sb_add(x, s.p + start, s.n - start);
    return sb_done(x);
}

static bool in_cutset(st_str_t cut, int32_t r)
{
    for (size_t i = 0; i < cut.n;) {
        int w;
        int32_t c = st_go_rune(cut.p + i, cut.n - i, &w);
        if (c == r) return true;
        i += (size_t)w;
    }
    return false;
}

static st_str_t trim_left(st_str_t s, st_str_t cut)
{
    if (s.n == 0 || cut.n == 0) return s;
    while (s.n > 0) {
        int w;
        int32_t r = st_go_rune(s.p, s.n, &w);
        if (!in_cutset(cut, r)) break;
        s.p += w;
        s.n -= (size_t)w;
    }
    return s;
}

static st_str_t trim_right(st_str_t s, st_str_t cut)
{
    if (s.n == 0 || cut.n == 0) return s;
    while (s.n > 0) {
        size_t k = s.n - 1;
        while (k > 0 && ((unsigned char)s.p[k] & 0xC0) == 0x80 && s.n - k < 4) k--;
        int w;
        int32_t r = st_go_rune(s.p + k, s.n - k, &w);
        if ((size_t)w != s.n - k) {
            k = s.n - 1;
            r = st_go_rune(s.p + k, 1, &w);
        }
        if (!in_cutset(cut, r)) break;
        s.n = k;
    }
    return s;
}

static st_str_t trim_prefix(st_str_t s, st_str_t p)
{
    if (s.n >= p.n && (p.n == 0 || memcmp(s.p, p.p, p.n) == 0)) return st_str(s.p + p.n, s.n - p.n);
    return s;
}

static st_str_t trim_suffix(st_str_t s, st_str_t p)
{
    if (s.n >= p.n && (p.n == 0 || memcmp(s.p + s.n - p.n, p.p, p.n) == 0)) return st_str(s.p, s.n - p.n);
    return s;
}

static bool has_prefix(st_str_t s, st_str_t p)
{
    return s.n >= p.n && (p.n == 0 || memcmp(s.p, p.p, p.n) == 0);
}
static bool has_suffix(st_str_t s, st_str_t p)
{
    return s.n >= p.n && (p.n == 0 || memcmp(s.p + s.n - p.n, p.p, p.n) == 0);
}

static int repeat_into(tx_t *x, st_str_t s, int64_t count)
{
    if (count < 0) return tx_fn_fail(x, "strings: negative Repeat count");
    if (s.n > 0 && (uint64_t)count > TX_MAX_STR / s.n)
        return tx_fn_fail(x, "strings: Repeat output length overflow");
    for (int64_t i = 0; i < count; i++) sb_add(x, s.p, s.n);
    return 0;
}

/* ---- string functions ---------------------------------------------------------------------------- */

FN(f_upper)
{
    UNUSED_ARGS;
    ret_str(out, map_runes(x, a[0].s, m_upper, NULL));
    return 0;
}
FN(f_lower)
{
    UNUSED_ARGS;
    ret_str(out, map_runes(x, a[0].s, m_lower, NULL));
    return 0;
}
FN(f_title)
{
    UNUSED_ARGS;
    int32_t prev = ' ';
    ret_str(out, map_runes(x, a[0].s, m_title, &prev));
    return 0;
}
FN(f_Replace)
{
    UNUSED_ARGS;
    st_str_t r = replace(x, a[0].s, a[1].s, a[2].s, a[3].i);
    if (sb_over(x)) return -1;
    ret_str(out, r);
    return 0;
}
FN(f_replace)
{
    UNUSED_ARGS;
    st_str_t r = replace(x, a[2].s, a[0].s, a[1].s, -1);
    if (sb_over(x)) return -1;
    ret_str(out, r);
    return 0;
}
FN(f_Trim)
{
    UNUSED_ARGS;
    ret_str(out, trim_right(trim_left(a[0].s, a[1].s), a[1].s));
    return 0;
}
FN(f_TrimLeft)
{
    UNUSED_ARGS;
    ret_str(out, trim_left(a[0].s, a[1].s));
    return 0;
}
FN(f_TrimRight)
{
    UNUSED_ARGS;
    ret_str(out, trim_right(a[0].s, a[1].s));
    return 0;
}
FN(f_TrimPrefix)
{
    UNUSED_ARGS;
    ret_str(out, trim_prefix(a[0].s, a[1].s));
    return 0;
}
FN(f_TrimSuffix)
{
    UNUSED_ARGS;
    ret_str(out, trim_suffix(a[0].s, a[1].s));
    return 0;
}
FN(f_TrimSpace)
{
    UNUSED_ARGS;
    ret_str(out, st_go_trim_space(a[0].s));
    return 0;
}
FN(f_trimAll)
{
    UNUSED_ARGS;
    ret_str(out, trim_right(trim_left(a[1].s, a[0].s), a[0].s));
    return 0;
}
FN(f_trimPrefix)
{
    UNUSED_ARGS;
    ret_str(out, trim_prefix(a[1].s, a[0].s));
    return 0;
}
FN(f_trimSuffix)
{
    UNUSED_ARGS;
    ret_str(out, trim_suffix(a[1].s, a[0].s));
    return 0;
}
FN(f_contains)
{
    UNUSED_ARGS;
    ret_bool(out, find(a[1].s, a[0].s) != NULL);
    return 0;
}
FN(f_hasPrefix)
{
    UNUSED_ARGS;
    ret_bool(out, has_prefix(a[1].s, a[0].s));
    return 0;
}
FN(f_hasSuffix)
{
    UNUSED_ARGS;
    ret_bool(out, has_suffix(a[1].s, a[0].s));
    return 0;
}
FN(f_repeat)
{
    UNUSED_ARGS;
    sb_reset(x);
    if (repeat_into(x, a[1].s, a[0].i) != 0) return -1;
    ret_str(out, sb_done(x));
    return 0;
}
FN(f_indent)
{
    UNUSED_ARGS;
    bool nl = strcmp(call && call->n && call->v[0]->fn ? call->v[0]->fn->name : "", "nindent") == 0;
    /* the pad, then the text with every newline followed by the pad */
    st_buf_t pad = ST_BUF_INIT;
    sb_reset(x);
    if (repeat_into(x, ST_STR(" "), a[0].i) != 0) return -1;
    if (st_buf_append(&pad, x->tmp.data, x->tmp.len) < 0) tx_oom(x);
    sb_reset(x);
    if (nl) sb_add(x, "\n", 1);
    sb_add(x, pad.data, pad.len);
    st_str_t v = a[1].s;
    for (size_t i = 0; i < v.n && !sb_over(x); i++) {
        sb_add(x, v.p + i, 1);
        if (v.p[i] == '\n') sb_add(x, pad.data, pad.len);
    }
    st_buf_free(&pad);
    if (sb_over(x)) return -1;
    ret_str(out, sb_done(x));
    return 0;
}

/* Byte offset of rune index k (clamped to the end). */
static size_t rune_off(st_str_t s, int64_t k)
{
    size_t i = 0;
    for (int64_t c = 0; c < k && i < s.n; c++) {
        int w;
        st_go_rune(s.p + i, s.n - i, &w);
        i += (size_t)w;
    }
    return i;
}

/* The runes [from, to) of s, with invalid bytes turned into U+FFFD as Go's []rune conversion does. */
static st_str_t rune_slice(tx_t *x, st_str_t s, int64_t from, int64_t to)
{
    size_t a0 = rune_off(s, from), a1 = rune_off(s, to);
    st_str_t v = st_str(s.p + a0, a1 - a0);
    bool clean = true;
    for (size_t i = 0; i < v.n && clean;) {
        int w;
        int32_t r = st_go_rune(v.p + i, v.n - i, &w);
        if (r == 0xFFFD && w == 1) clean = false;
        i += (size_t)w;
    }
    if (clean) return v;
    sb_reset(x);
    for (size_t i = 0; i < v.n;) {
        int w;
        sb_rune(x, st_go_rune(v.p + i, v.n - i, &w));
        i += (size_t)w;
    }
    return sb_done(x);
}

FN(f_trunc)
{
    UNUSED_ARGS;
    int64_t c = a[0].i, l = (int64_t)rune_count(a[1].s);
    if (c < 0 && l + c > 0)
        ret_str(out, rune_slice(x, a[1].s, l + c, l));
    else if (c >= 0 && l > c)
        ret_str(out, rune_slice(x, a[1].s, 0, c));
    else
        ret_str(out, a[1].s);
    return 0;
}
FN(f_substr)
{
    UNUSED_ARGS;
    int64_t start = a[0].i, end = a[1].i, l = (int64_t)rune_count(a[2].s);
    if (end > l) end = l;
    if (start > l) start = l;
    if (start < 0) {
        if (end < 0)
            ret_str(out, st_str("", 0));
        else
            ret_str(out, rune_slice(x, a[2].s, 0, end));
        return 0;
    }
    if (end < 0) {
        ret_str(out, rune_slice(x, a[2].s, start, l));
        return 0;
    }
    if (start > end) {
        ret_str(out, st_str("", 0));
        return 0;
    }
    ret_str(out, rune_slice(x, a[2].s, start, end));
    return 0;
}
static int align(tx_t *x, const tval_t *a, tval_t *out, bool left)
{
    int64_t count = a[0].i, l = (int64_t)rune_count(a[1].s);
    if (count < 0 || count == l) {
        ret_str(out, a[1].s);
        return 0;
    }
    if (count > l) {
        sb_reset(x);
        if (!left && repeat_into(x, ST_STR(" "), count - l) != 0) return -1;
        sb_add(x, a[1].s.p, a[1].s.n);
        if (left && repeat_into(x, ST_STR(" "), count - l) != 0) return -1;
        if (sb_over(x)) return -1;
        ret_str(out, sb_done(x));
        return 0;
    }
    ret_str(out, left ? rune_slice(x, a[1].s, 0, count) : rune_slice(x, a[1].s, l - count, l));
    return 0;
}
FN(f_alignLeft)
{
    UNUSED_ARGS;
    return align(x, a, out, true);
}
FN(f_alignRight)
{
    UNUSED_ARGS;
    return align(x, a, out, false);
}

/* ---- encodings ------------------------------------------------------------------------------------ */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

FN(f_b64enc)
{
    UNUSED_ARGS;
    st_str_t s = a[0].s;
    sb_reset(x);
    for (size_t i = 0; i < s.n && !sb_over(x); i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s.p[i] << 16;
        size_t k = s.n - i;
        if (k > 1) v |= (uint32_t)(unsigned char)s.p[i + 1] << 8;
        if (k > 2) v |= (unsigned char)s.p[i + 2];
        char q[4] = {B64[v >> 18], B64[(v >> 12) & 63], k > 1 ? B64[(v >> 6) & 63] : '=',
                     k > 2 ? B64[v & 63] : '='};
        sb_add(x, q, 4);
    }
    if (sb_over(x)) return -1;
    ret_str(out, sb_done(x));
    return 0;
}

static int b64val(unsigned char c)
{
    const char *p = c ? strchr(B64, c) : NULL;
    return p ? (int)(p - B64) : -1;
}

/* encoding/base64 StdEncoding.DecodeString; false with the failing offset in *bad. */
static bool b64_decode(tx_t *x, st_str_t src, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)src.p;
    size_t n = src.n, si = 0;
    sb_reset(x);
    while (si < n) {
        int dbuf[4] = {0, 0, 0, 0};
        size_t dlen = 4, j;
        bool end = false;
        for (j = 0; j < 4; j++) {
            if (si == n) {
                if (j == 0) return true;
                *bad = si - j;
                return false;
            }
            unsigned char in = s[si++];
            int v = b64val(in);
            if (v >= 0) {
                dbuf[j] = v;
                continue;
            }
            if (in == '\n' || in == '\r') {
                j--;
                continue;
            }
            if (in != '=' || j < 2) {
                *bad = si - 1;
                return false;
            }
            if (j == 2) {
                while (si < n && (s[si] == '\n' || s[si] == '\r')) si++;
                if (si == n) {
                    *bad = n;
                    return false;
                }
                if (s[si] != '=') {
                    *bad = si - 1;
                    return false;
                }
                si++;
            }
            while (si < n && (s[si] == '\n' || s[si] == '\r')) si++;
            dlen = j;
            end = true;
            break;
        }
        uint32_t val =
            (uint32_t)dbuf[0] << 18 | (uint32_t)dbuf[1] << 12 | (uint32_t)dbuf[2] << 6 | (uint32_t)dbuf[3];
        char o[3] = {(char)(val >> 16), (char)(val >> 8), (char)val};
        sb_add(x, o, dlen - 1);
        if (end) {
            if (si < n) {
                *bad = si;
                return false;
            }
            return true;
        }
    }
    return true;
}

FN(f_b64dec)
{
    UNUSED_ARGS;
    st_str_t v = a[0].s;
    size_t rem = v.n % 4;
    st_buf_t padded = ST_BUF_INIT;
    if (rem != 0 && rem != 1) {
        if (st_buf_append(&padded, v.p, v.n) < 0 || st_buf_append(&padded, "===", 4 - rem) < 0) tx_oom(x);
        v = st_str(padded.data, padded.len);
    }
    size_t bad = 0;
    bool ok = b64_decode(x, v, &bad);
    st_buf_free(&padded);
    if (sb_over(x)) return -1;
    if (!ok) {
        char m[64];
        int k = snprintf(m, sizeof m, "illegal base64 data at input byte %zu", bad);
        ret_str(out, tx_strdup(x, m, (size_t)k));
        return 0;
    }
    ret_str(out, sb_done(x));
    return 0;
}

static void query_escape(tx_t *x, st_str_t s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < s.n && !sb_over(x); i++) {
        unsigned char c = (unsigned char)s.p[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            sb_add(x, (const char *)&c, 1);
        } else if (c == ' ') {
            sb_add(x, "+", 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            sb_add(x, e, 3);
        }
    }
}

FN(f_urlencode)
{
    UNUSED_ARGS;
    sb_reset(x);
    query_escape(x, a[0].s);
    if (sb_over(x)) return -1;
    ret_str(out, sb_done(x));
    return 0;
}

static int hexd(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

FN(f_urldecode)
{
    UNUSED_ARGS;
    st_str_t s = a[0].s;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] != '%') continue;
        if (i + 2 >= s.n || hexd(s.p[i + 1]) < 0 || hexd(s.p[i + 2]) < 0) {
            size_t k = s.n - i > 3 ? 3 : s.n - i;
            st_buf_t q = ST_BUF_INIT;
            st_go_quote(&q, st_str(s.p + i, k));
            tx_fn_fail(x, "invalid URL escape %s", st_buf_cstr(&q));
            st_buf_free(&q);
            return -1;
        }
        i += 2;
    }
    sb_reset(x);
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i];
        if (c == '%') {
            c = (char)(hexd(s.p[i + 1]) * 16 + hexd(s.p[i + 2]));
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        sb_add(x, &c, 1);
    }
    ret_str(out, sb_done(x));
    return 0;
}

/* ---- regular expressions -------------------------------------------------------------------------- */

struct tx_re {
    lq_arena_t arena;
    char *src;
    size_t srcn;
    pcre2_code *code;
    pcre2_match_data *md;
    st_str_t *names;
    size_t nnames;
};

void tx_re_free(tx_re_t *r)
{
    if (r == NULL) return;
    if (r->md) pcre2_match_data_free(r->md);
    lq_arena_release(&r->arena);
    free(r->src);
    free(r);
}

const void *tx_regex(tx_t *x, tnode_t *call, st_str_t re, void **md, const st_str_t **names, size_t *nnames)
{
    if (call == NULL) {
        tx_fn_fail(x, "regular expression without a call site");
        return NULL;
    }
    tx_re_t *r = call->re;
    if (r != NULL && r->code != NULL && r->srcn == re.n && (re.n == 0 || memcmp(r->src, re.p, re.n) == 0)) {
        *md = r->md;
        *names = r->names;
        *nnames = r->nnames;
        return r->code;
    }
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) tx_oom(x);
        lq_arena_init(&r->arena);
        call->re = r;
    } else {
        if (r->md) pcre2_match_data_free(r->md);
        lq_arena_release(&r->arena);
        lq_arena_init(&r->arena);
        r->md = NULL;
        r->code = NULL;
    }
    free(r->src);
    r->src = malloc(re.n + 1);
    if (r->src == NULL) tx_oom(x);
    if (re.n) memcpy(r->src, re.p, re.n);
    r->srcn = re.n;
    char msg[300];
    pcre2_code *code;
    int rc = lq_regex_compile_named(&r->arena, re, &code, &r->names, &r->nnames, msg, sizeof msg);
    if (rc == -ENOMEM) tx_oom(x);
    if (rc != 0) {
        r->srcn = (size_t)-1; /* never matches the cache */
        tx_fn_fail(x, "%s", msg);
        return NULL;
    }
    r->md = pcre2_match_data_create_from_pattern(code, NULL);
    if (r->md == NULL) tx_oom(x);
    r->code = code;
    *md = r->md;
    *names = r->names;
    *nnames = r->nnames;
    return code;
}

static int re_exec(const pcre2_code *code, pcre2_match_data *md, st_str_t s, size_t pos)
{
    int rc = pcre2_jit_match(code, (PCRE2_SPTR)(s.p ? s.p : ""), s.n, pos, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(code, (PCRE2_SPTR)(s.p ? s.p : ""), s.n, pos, 0, md, NULL);
    return rc;
}

static size_t rune_width_at(st_str_t s, size_t i)
{
    if (i >= s.n) return 1;
    int w;
    st_go_rune(s.p + i, s.n - i, &w);
    return (size_t)w;
}

/* regexp.Expand of template for one match. */
static void expand(tx_t *x, const st_str_t *names, size_t nnames, st_str_t src, const PCRE2_SIZE *ov,
                   int ngroups, st_str_t tpl)
{
    size_t i = 0;
    while (i < tpl.n) {
        const char *d = memchr(tpl.p + i, '$', tpl.n - i);
        if (d == NULL) break;
        size_t at = (size_t)(d - tpl.p);
        sb_add(x, tpl.p + i, at - i);
        i = at + 1;
        if (i < tpl.n && tpl.p[i] == '$') {
            sb_add(x, "$", 1);
            i++;
            continue;
        }
        /* extract */
        size_t j = i;
        bool brace = false;
        if (j < tpl.n && tpl.p[j] == '{') {
            brace = true;
            j++;
        }
        size_t ns = j;
        while (j < tpl.n) {
            int w;
            int32_t r = st_go_rune(tpl.p + j, tpl.n - j, &w);
            if (!(r == '_' || st_go_is_letter(r) || st_go_is_digit(r))) break;
            j += (size_t)w;
        }
        st_str_t name = st_str(tpl.p + ns, j - ns);
        bool ok = name.n > 0;
        if (ok && brace) {
            if (j >= tpl.n || tpl.p[j] != '}')
                ok = false;
            else
                j++;
        }
        if (!ok) {
            sb_add(x, "$", 1);
            continue;
        }
        i = j;
        long num = 0;
        for (size_t k = 0; k < name.n; k++) {
            if (name.p[k] < '0' || name.p[k] > '9' || num >= 100000000) {
                num = -1;
                break;
            }
            num = num * 10 + (name.p[k] - '0');
        }
        if (name.p[0] == '0' && name.n > 1) num = -1;
        if (num < 0) {
            for (size_t g = 1; g < nnames && num < 0; g++)
                if (st_str_eq(names[g], name)) num = (long)g;
            if (num < 0) continue;
        }
        if (num < ngroups && ov[2 * num] != PCRE2_UNSET)
            sb_add(x, src.p + ov[2 * num], ov[2 * num + 1] - ov[2 * num]);
    }
    if (i < tpl.n) sb_add(x, tpl.p + i, tpl.n - i);
}

static int replace_all(tx_t *x, tnode_t *call, const tval_t *a, tval_t *out, bool literal)
{
    void *mdv;
    const st_str_t *names;
    size_t nnames;
    const pcre2_code *code = tx_regex(x, call, a[0].s, &mdv, &names, &nnames);
    if (code == NULL) return -1;
    pcre2_match_data *md = mdv;
    st_str_t src = a[1].s, repl = a[2].s;
    sb_reset(x);
    size_t last = 0, pos = 0;
    bool any = false;
    while (pos <= src.n && !sb_over(x)) {
        int rc = re_exec(code, md, src, pos);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[0], m1 = ov[1];
        any = true;
        sb_add(x, src.p + last, m0 - last);
        if (m1 > last || m0 == 0) {
            if (literal)
                sb_add(x, repl.p, repl.n);
            else
                expand(x, names, nnames, src, ov, rc, repl);
        }
        last = m1;
        size_t w = rune_width_at(src, pos);
        if (pos + w > m1)
            pos += w;
        else if (pos + 1 > m1)
            pos++;
        else
            pos = m1;
    }
    if (sb_over(x)) return -1;
    if (!any) {
        ret_str(out, src);
        return 0;
    }
    sb_add(x, src.p + last, src.n - last);
    ret_str(out, sb_done(x));
    return 0;
}

FN(f_regexReplaceAll)
{
    UNUSED_ARGS;
    return replace_all(x, call, a, out, false);
}
FN(f_regexReplaceAllLiteral)
{
    UNUSED_ARGS;
    return replace_all(x, call, a, out, true);
}
FN(f_count)
{
    UNUSED_ARGS;
    void *mdv;
    const st_str_t *names;
    size_t nnames;
    const pcre2_code *code = tx_regex(x, call, a[0].s, &mdv, &names, &nnames);
    if (code == NULL) return -1;
    pcre2_match_data *md = mdv;
    st_str_t s = a[1].s;
    int64_t c = 0;
    size_t pos = 0;
    size_t prev_end = (size_t)-1;
    while (pos <= s.n) {
        int rc = re_exec(code, md, s, pos);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        bool accept = true;
        if (ov[1] == pos) {
            if (ov[0] == prev_end) accept = false;
            pos += pos < s.n ? rune_width_at(s, pos) : 1;
        } else {
            pos = ov[1];
        }
        prev_end = ov[1];
        if (accept) c++;
    }
    ret_int(out, c, V_INT);
    return 0;
}

/* ---- numbers -------------------------------------------------------------------------------------- */

static int64_t f2i(double f)
{
    if (!(f >= -9223372036854775808.0 && f < 9223372036854775808.0)) return INT64_MIN;
    return (int64_t)f;
}

/* cast.ToInt64 (errors become 0). */
static int64_t to_int64(const tval_t *v)
{
    switch (v->k) {
    case V_INT:
    case V_INT64: return v->i;
    case V_FLOAT: return f2i(v->f);
    case V_BOOL: return v->b ? 1 : 0;
    case V_STR: {
        st_str_t s = v->s;
        /* trimZeroDecimal */
        bool zero = false;
        for (size_t i = s.n; i > 0; i--) {
            char c = s.p[i - 1];
            if (c == '.') {
                if (zero) s.n = i - 1;
                break;
            }
            if (c == '0') {
                zero = true;
                continue;
            }
            break;
        }
        int64_t r;
        return st_go_parse_int(s, 0, &r) == 0 ? r : 0;
    }
    default: return 0;
    }
}

/* cast.ToFloat64 (errors become 0). */
static double to_float(const tval_t *v)
{
    switch (v->k) {
    case V_INT:
    case V_INT64: return (double)v->i;
    case V_FLOAT: return v->f;
    case V_BOOL: return v->b ? 1 : 0;
    case V_STR: {
        double f;
        return st_go_parse_float(v->s, &f, NULL, 0) == 0 ? f : 0;
    }
    default: return 0;
    }
}

FN(f_int)
{
    UNUSED_ARGS;
    ret_int(out, to_int64(&a[0]), V_INT);
    return 0;
}
FN(f_float64)
{
    UNUSED_ARGS;
    ret_float(out, to_float(&a[0]));
    return 0;
}
FN(f_add)
{
    UNUSED_ARGS;
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint64_t)to_int64(&a[i]);
    ret_int(out, (int64_t)s, V_INT64);
    return 0;
}
FN(f_sub)
{
    UNUSED_ARGS;
    ret_int(out, (int64_t)((uint64_t)to_int64(&a[0]) - (uint64_t)to_int64(&a[1])), V_INT64);
    return 0;
}
FN(f_mul)
{
    UNUSED_ARGS;
    uint64_t v = (uint64_t)to_int64(&a[0]);
    for (size_t i = 1; i < n; i++) v *= (uint64_t)to_int64(&a[i]);
    ret_int(out, (int64_t)v, V_INT64);
    return 0;
}
FN(f_div)
{
    UNUSED_ARGS;
    int64_t p = to_int64(&a[0]), q = to_int64(&a[1]);
    if (q == 0) return tx_fn_fail(x, "runtime error: integer divide by zero");
    ret_int(out, q == -1 ? (int64_t)(0 - (uint64_t)p) : p / q, V_INT64);
    return 0;
}
FN(f_mod)
{
    UNUSED_ARGS;
    int64_t p = to_int64(&a[0]), q = to_int64(&a[1]);
    if (q == 0) return tx_fn_fail(x, "runtime error: integer divide by zero");
    ret_int(out, q == -1 ? 0 : p % q, V_INT64);
    return 0;
}
FN(f_max)
{
    UNUSED_ARGS;
    int64_t m = to_int64(&a[0]);
    for (size_t i = 1; i < n; i++) {
        int64_t v = to_int64(&a[i]);
        if (v > m) m = v;
    }
    ret_int(out, m, V_INT64);
    return 0;
}
FN(f_min)
{
    UNUSED_ARGS;
    int64_t m = to_int64(&a[0]);
    for (size_t i = 1; i < n; i++) {
        int64_t v = to_int64(&a[i]);
        if (v < m) m = v;
    }
    ret_int(out, m, V_INT64);
    return 0;
}
static double go_max(double a, double b)
{
    if (isinf(a) && a > 0) return a;
    if (isinf(b) && b > 0) return b;
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && a == b) return signbit(a) ? b : a;
    return a > b ? a : b;
}
static double go_min(double a, double b)
{
    if (isinf(a) && a < 0) return a;
    if (isinf(b) && b < 0) return b;
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && a == b) return signbit(a) ? a : b;
    return a < b ? a : b;
}
FN(f_maxf)
{
    UNUSED_ARGS;
    double m = to_float(&a[0]);
    for (size_t i = 1; i < n; i++) m = go_max(m, to_float(&a[i]));
    ret_float(out, m);
    return 0;
}
FN(f_minf)
{
    UNUSED_ARGS;
    double m = to_float(&a[0]);
    for (size_t i = 1; i < n; i++) m = go_min(m, to_float(&a[i]));
    ret_float(out, m);
    return 0;
}
FN(f_ceil)
{
    UNUSED_ARGS;
    ret_float(out, ceil(to_float(&a[0])));
    return 0;
}
FN(f_floor)
{
    UNUSED_ARGS;
    ret_float(out, floor(to_float(&a[0])));
    return 0;
}
FN(f_round)
{
    UNUSED_ARGS;
    double on = n > 2 ? a[2].f : .5;
    double val = to_float(&a[0]), pw = pow(10, (double)a[1].i);
    double digit = pw * val, ip;
    double frac = modf(digit, &ip);
    double r = frac >= on ? ceil(digit) : floor(digit);
    ret_float(out, r / pw);
    return 0;
}

/* shopspring/decimal arithmetic as Sprig's addf/subf/mulf/divf use it: every operand is the shortest
 * decimal of its float64, sums and products are exact, quotients keep 16 decimal places (half away
 * from zero); the result is the nearest float64. */
typedef struct {
    __int128 m;
    int e;
} dec_t;

static bool dec_from_float(double f, dec_t *d)
{
    if (!isfinite(f)) return false;
    if (f == 0) {
        d->m = 0;
        d->e = 0;
        return true;
    }
    char buf[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, f);
        if (strtod(buf, NULL) == f) break;
    }
    bool neg = buf[0] == '-';
    const char *q = buf + (neg ? 1 : 0);
    __int128 m = 0;
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') {
            m = m * 10 + (*q - '0');
            nd++;
        }
    int e10 = atoi(q + 1);
    d->m = neg ? -m : m;
    d->e = e10 - (nd - 1);
    while (d->m != 0 && d->m % 10 == 0) {
        d->m /= 10;
        d->e++;
    }
    return true;
}

static const __int128 I128_MAX = (__int128)(((unsigned __int128)1 << 127) - 1);

static bool mul10(__int128 *m, int k)
{
    for (int i = 0; i < k; i++) {
        if (*m > I128_MAX / 10 || *m < -(I128_MAX / 10)) return false;
        *m *= 10;
    }
    return true;
}

static double dec_to_float(dec_t d)
{
    char buf[80];
    unsigned __int128 u = d.m < 0 ? (unsigned __int128)(-d.m) : (unsigned __int128)d.m;
    char dig[48];
    int k = 0;
    do {
        dig[k++] = (char)('0' + (int)(u % 10));
        u /= 10;
    } while (u && k < 47);
    int n = 0;
    if (d.m < 0) buf[n++] = '-';
    while (k > 0) buf[n++] = dig[--k];
    snprintf(buf + n, sizeof buf - (size_t)n, "e%d", d.e);
    return strtod(buf, NULL);
}

enum { DEC_ADD, DEC_SUB, DEC_MUL, DEC_DIV };

static bool dec_op(dec_t a, dec_t b, int op, dec_t *r)
{
    switch (op) {
    case DEC_ADD:
    case DEC_SUB: {
        if (op == DEC_SUB) b.m = -b.m;
        int e = a.e < b.e ? a.e : b.e;
        if (a.e - e > 38 || b.e - e > 38) return false;
        if (!mul10(&a.m, a.e - e) || !mul10(&b.m, b.e - e)) return false;
        if ((b.m > 0 && a.m > I128_MAX - b.m) || (b.m < 0 && a.m < -I128_MAX - b.m)) return false;
        r->m = a.m + b.m;
        r->e = e;
        return true;
    }
    case DEC_MUL: {
        __int128 am = a.m < 0 ? -a.m : a.m, bm = b.m < 0 ? -b.m : b.m;
        if (am != 0 && bm > I128_MAX / am) return false;
        r->m = a.m * b.m;
        r->e = a.e + b.e;
        return true;
    }
    default: {
        /* q = trunc(a / b * 10^16), rounded half away from zero */
        int s = a.e - b.e + 16;
        __int128 num = a.m, den = b.m;
        if (s >= 0) {
            if (s > 38 || !mul10(&num, s)) return false;
        } else {
            if (-s > 38 || !mul10(&den, -s)) return false;
        }
        __int128 q = num / den, rem = num % den;
        __int128 r2 = rem < 0 ? -rem : rem, ad = den < 0 ? -den : den;
        if (r2 > I128_MAX / 2) return false;
        if (2 * r2 >= ad) q += ((num < 0) != (den < 0)) ? -1 : 1;
        r->m = q;
        r->e = -16;
        return true;
    }
    }
}

static int decimal_op(tx_t *x, double first, const tval_t *v, size_t nv, int op, tval_t *out)
{
    dec_t acc, d;
    double facc = first;
    bool exact = dec_from_float(first, &acc);
    if (!exact)
        return tx_fn_fail(x, "Cannot create a Decimal from %s",
                          isnan(first) ? "NaN"
                          : first > 0  ? "+Inf"
                                       : "-Inf");
    for (size_t i = 0; i < nv; i++) {
        double f = to_float(&v[i]);
        if (!dec_from_float(f, &d))
            return tx_fn_fail(x, "Cannot create a Decimal from %s",
                              isnan(f) ? "NaN"
                              : f > 0  ? "+Inf"
                                       : "-Inf");
        if (op == DEC_DIV && d.m == 0) return tx_fn_fail(x, "decimal division by 0");
        switch (op) {
        case DEC_ADD: facc += f; break;
        case DEC_SUB: facc -= f; break;
        case DEC_MUL: facc *= f; break;
        default: facc /= f; break;
        }
        if (exact && !dec_op(acc, d, op, &acc)) exact = false;
    }
    ret_float(out, exact ? dec_to_float(acc) : facc);
    return 0;
}

FN(f_addf)
{
    UNUSED_ARGS;
    return decimal_op(x, 0, a, n, DEC_ADD, out);
}
FN(f_subf)
{
    UNUSED_ARGS;
    return decimal_op(x, to_float(&a[0]), a + 1, n - 1, DEC_SUB, out);
}
FN(f_mulf)
{
    UNUSED_ARGS;
    return decimal_op(x, to_float(&a[0]), a + 1, n - 1, DEC_MUL, out);
}
FN(f_divf)
{
    UNUSED_ARGS;
    return decimal_op(x, to_float(&a[0]), a + 1, n - 1, DEC_DIV, out);
}

FN(f_bytes)
{
    UNUSED_ARGS;
    uint64_t b;
    char msg[300];
    if (st_go_parse_bytes(a[0].s, &b, msg, sizeof msg) != 0) return tx_fn_fail(x, "%s", msg);
    ret_float(out, (double)b);
    return 0;
}
FN(f_duration)
{
    UNUSED_ARGS;
    int64_t ns;
    char msg[300];
    if (st_go_parse_duration(a[0].s, &ns, msg, sizeof msg) != 0) return tx_fn_fail(x, "%s", msg);
    ret_float(out, (double)(ns / 1000000000) + (double)(ns % 1000000000) / 1e9);
    return 0;
}

/* ---- time ---------------------------------------------------------------------------------------- */

static void ret_time(tval_t *out, st_go_time_t t)
{
    out->k = V_TIME;
    out->t = t;
}

FN(f_line)
{
    UNUSED_ARGS;
    ret_str(out, x->d->line);
    return 0;
}
FN(f_timestamp)
{
    UNUSED_ARGS;
    ret_time(out, st_go_time_from_ns(x->d->ts));
    return 0;
}
FN(f_now)
{
    UNUSED_ARGS;
    ret_time(out, st_go_time_from_ns(st_now_ns()));
    return 0;
}
FN(f_unixEpoch)
{
    UNUSED_ARGS;
    char b[32];
    int k = snprintf(b, sizeof b, "%lld", (long long)a[0].t.sec);
    ret_str(out, tx_strdup(x, b, (size_t)k));
    return 0;
}
FN(f_unixEpochMillis)
{
    UNUSED_ARGS;
    char b[32];
    int k = snprintf(b, sizeof b, "%lld", (long long)(a[0].t.sec * 1000 + a[0].t.nsec / 1000000));
    ret_str(out, tx_strdup(x, b, (size_t)k));
    return 0;
}
FN(f_unixEpochNanos)
{
    UNUSED_ARGS;
    char b[32];
    int k = snprintf(b, sizeof b, "%lld", (long long)st_go_time_unix_nano(&a[0].t));
    ret_str(out, tx_strdup(x, b, (size_t)k));
    return 0;
}
FN(f_date)
{
    UNUSED_ARGS;
    st_go_time_t t;
    switch (a[1].k) {
    case V_TIME: t = a[1].t; break;
    case V_INT:
    case V_INT64: t = st_go_time_from_unix(a[1].i, 0); break;
    default: t = st_go_time_from_ns(st_now_ns()); break;
    }
    /* In(time.Local): Strata's local zone is UTC */
    t.off = 0;
    memcpy(t.zone, "UTC", 4);
    sb_reset(x);
    if (st_go_time_format(&t, a[0].s, &x->tmp) < 0) tx_oom(x);
    ret_str(out, sb_done(x));
    return 0;
}
FN(f_toDate)
{
    UNUSED_ARGS;
    st_go_time_t t;
    if (st_go_time_parse(a[0].s, a[1].s, &t) != 0) t = st_go_time_zero();
    ret_time(out, t);
    return 0;
}
FN(f_toDateInZone)
{
    UNUSED_ARGS;
    /* named zones other than UTC are not loaded: Go falls back to UTC when a zone is unknown */
    st_go_time_t t;
    if (st_go_time_parse(a[0].s, a[2].s, &t) != 0) t = st_go_time_zero();
    ret_time(out, t);
    return 0;
}
FN(f_unixToTime)
{
    UNUSED_ARGS;
    st_str_t s = a[0].s;
    int64_t v;
    st_buf_t q = ST_BUF_INIT;
    st_go_quote(&q, s);
    if (st_go_parse_int(s, 10, &v) != 0) {
        bool digits = s.n > 0;
        size_t i = s.n > 0 && (s.p[0] == '+' || s.p[0] == '-') ? 1 : 0;
        if (i == s.n) digits = false;
        for (; i < s.n; i++)
            if (s.p[i] < '0' || s.p[i] > '9') digits = false;
        tx_fn_fail(x, "unable to parse time '%.*s': strconv.ParseInt: parsing %.*s: %s", (int)s.n, s.p,
                   (int)q.len, q.data ? q.data : "", digits ? "value out of range" : "invalid syntax");
        st_buf_free(&q);
        return -1;
    }
    st_buf_free(&q);
    st_go_time_t t;
    switch (s.n) {
    case 5: t = st_go_time_from_unix(v * 86400, 0); break;
    case 10: t = st_go_time_from_unix(v, 0); break;
    case 13: t = st_go_time_from_unix(v / 1000, (v % 1000) * 1000000); break;
    case 16: t = st_go_time_from_unix(v / 1000000, (v % 1000000) * 1000); break;
    case 19: t = st_go_time_from_unix(0, v); break;
    default: return tx_fn_fail(x, "unable to parse time '%.*s': %%!w(<nil>)", (int)s.n, s.p);
    }
    ret_time(out, t);
    return 0;
}

/* ---- default, logic, comparison ------------------------------------------------------------------ */

static bool empty(const tval_t *v)
{
    switch (v->k) {
    case V_NIL: return true;
    case V_STR: return v->s.n == 0;
    case V_INT:
    case V_INT64: return v->i == 0;
    case V_FLOAT: return v->f == 0;
    case V_BOOL: return !v->b;
    case V_TIME: return false;
    case V_MAP: return v->i == 0;
    default: return true;
    }
}

FN(f_default)
{
    UNUSED_ARGS;
    *out = (n < 2 || empty(&a[1])) ? a[0] : a[1];
    return 0;
}
FN(f_not)
{
    UNUSED_ARGS;
    bool ok;
    ret_bool(out, !tx_truth(&a[0], &ok));
    return 0;
}
FN(f_and)
{
    UNUSED_ARGS; /* handled by the evaluator (short-circuit) */
    *out = a[n - 1];
    return 0;
}

enum { K_INVALID, K_BOOL, K_INT, K_FLOAT, K_STRING, K_OTHER };
static int basic_kind(const tval_t *v)
{
    switch (v->k) {
    case V_BOOL: return K_BOOL;
    case V_INT:
    case V_INT64: return K_INT;
    case V_FLOAT: return K_FLOAT;
    case V_STR: return K_STRING;
    case V_NIL: return K_INVALID;
    default: return K_OTHER;
    }
}

static int eq2(tx_t *x, const tval_t *a1, const tval_t *a2, bool *truth)
{
    int k1 = basic_kind(a1), k2 = basic_kind(a2);
    *truth = false;
    if (k1 != k2) {
        if (a1->k != V_NIL && a2->k != V_NIL) return tx_fn_fail(x, "incompatible types for comparison");
        return 0;
    }
    switch (k1) {
    case K_BOOL: *truth = a1->b == a2->b; break;
    case K_INT: *truth = a1->i == a2->i; break;
    case K_FLOAT: *truth = a1->f == a2->f; break;
    case K_STRING: *truth = st_str_eq(a1->s, a2->s); break;
    case K_INVALID: *truth = true; break;
    default:
        if (a1->k != a2->k) return tx_fn_fail(x, "incompatible types for comparison");
        if (a1->k == V_MAP) return tx_fn_fail(x, "non-comparable type map[string]string: map[string]string");
        *truth = a1->t.sec == a2->t.sec && a1->t.nsec == a2->t.nsec && a1->t.off == a2->t.off;
        break;
    }
    return 0;
}

FN(f_eq)
{
    UNUSED_ARGS;
    if (n < 2) return tx_fn_fail(x, "missing argument for comparison");
    for (size_t i = 1; i < n; i++) {
        bool t;
        if (eq2(x, &a[0], &a[i], &t) != 0) return -1;
        if (t) {
            ret_bool(out, true);
            return 0;
        }
    }
    ret_bool(out, false);
    return 0;
}
FN(f_ne)
{
    UNUSED_ARGS;
    bool t;
    if (eq2(x, &a[0], &a[1], &t) != 0) return -1;
    ret_bool(out, !t);
    return 0;
}

static int lt2(tx_t *x, const tval_t *a1, const tval_t *a2, bool *truth)
{
    int k1 = basic_kind(a1), k2 = basic_kind(a2);
    if (k1 == K_INVALID || k1 == K_OTHER || k2 == K_INVALID || k2 == K_OTHER)
        return tx_fn_fail(x, "invalid type for comparison");
    if (k1 != k2) return tx_fn_fail(x, "incompatible types for comparison");
    switch (k1) {
    case K_BOOL: return tx_fn_fail(x, "invalid type for comparison");
    case K_INT: *truth = a1->i < a2->i; break;
    case K_FLOAT: *truth = a1->f < a2->f; break;
    default: *truth = st_str_cmp(a1->s, a2->s) < 0; break;
    }
    return 0;
}

static int cmp_fn(tx_t *x, const tval_t *a, tval_t *out, int which)
{
    bool lt, eq;
    if (lt2(x, &a[0], &a[1], &lt) != 0) return -1;
    switch (which) {
    case 0: ret_bool(out, lt); return 0;  /* lt */
    case 3: ret_bool(out, !lt); return 0; /* ge */
    default: break;
    }
    if (eq2(x, &a[0], &a[1], &eq) != 0) return -1;
    ret_bool(out, which == 1 ? (lt || eq) : !(lt || eq)); /* le / gt */
    return 0;
}
FN(f_lt)
{
    UNUSED_ARGS;
    return cmp_fn(x, a, out, 0);
}
FN(f_le)
{
    UNUSED_ARGS;
    return cmp_fn(x, a, out, 1);
}
FN(f_gt)
{
    UNUSED_ARGS;
    return cmp_fn(x, a, out, 2);
}
FN(f_ge)
{
    UNUSED_ARGS;
    return cmp_fn(x, a, out, 3);
}

FN(f_len)
{
    UNUSED_ARGS;
    switch (a[0].k) {
    case V_STR: ret_int(out, (int64_t)a[0].s.n, V_INT); return 0;
    case V_MAP: ret_int(out, a[0].i, V_INT); return 0;
    case V_NIL: return tx_fn_fail(x, "len of untyped nil");
    default: return tx_fn_fail(x, "len of type %s", tx_type_name(&a[0]));
    }
}

static int index_arg(tx_t *x, const tval_t *v, int64_t cap, int64_t *out)
{
    if (v->k != V_INT && v->k != V_INT64) {
        if (v->k == V_NIL) return tx_fn_fail(x, "cannot index slice/array with nil");
        return tx_fn_fail(x, "cannot index slice/array with type %s", tx_type_name(v));
    }
    if (v->i < 0 || v->i > cap) return tx_fn_fail(x, "index out of range: %lld", (long long)v->i);
    *out = v->i;
    return 0;
}

FN(f_index)
{
    UNUSED_ARGS;
    tval_t item = a[0];
    if (item.k == V_NIL) return tx_fn_fail(x, "index of untyped nil");
    for (size_t i = 1; i < n; i++) {
        switch (item.k) {
        case V_STR: {
            int64_t k = 0;
            if (index_arg(x, &a[i], (int64_t)item.s.n, &k) != 0) return -1;
            if (k == (int64_t)item.s.n) return tx_fn_fail(x, "index out of range: %lld", (long long)k);
            ret_int(&item, (unsigned char)item.s.p[k], V_INT);
            break;
        }
        case V_MAP:
            if (a[i].k != V_STR) {
                if (a[i].k == V_NIL) return tx_fn_fail(x, "value is nil; should be of type string");
                return tx_fn_fail(x, "value has type %s; should be string", tx_type_name(&a[i]));
            }
            ret_str(&item, tx_map_get(x, a[i].s, NULL));
            break;
        default: return tx_fn_fail(x, "can't index item of type %s", tx_type_name(&item));
        }
    }
    *out = item;
    return 0;
}

FN(f_slice)
{
    UNUSED_ARGS;
    if (a[0].k == V_NIL) return tx_fn_fail(x, "slice of untyped nil");
    if (n - 1 > 3) return tx_fn_fail(x, "too many slice indexes: %zu", n - 1);
    if (a[0].k != V_STR) return tx_fn_fail(x, "can't slice item of type %s", tx_type_name(&a[0]));
    if (n - 1 == 3) return tx_fn_fail(x, "cannot 3-index slice a string");
    int64_t cap = (int64_t)a[0].s.n, idx[2] = {0, cap};
    for (size_t i = 1; i < n; i++)
        if (index_arg(x, &a[i], cap, &idx[i - 1]) != 0) return -1;
    if (idx[0] > idx[1])
        return tx_fn_fail(x, "invalid slice index: %lld > %lld", (long long)idx[0], (long long)idx[1]);
    ret_str(out, st_str(a[0].s.p + idx[0], (size_t)(idx[1] - idx[0])));
    return 0;
}

/* ---- fmt ---------------------------------------------------------------------------------------------- */

static void sprint_value(tx_t *x, const tval_t *v)
{
    if (v->k == V_NIL) {
        sb_add(x, "<nil>", 5);
        return;
    }
    tx_print(x, &x->tmp, v);
}

/* fmt.Sprint / fmt.Sprintln */
static st_str_t sprint(tx_t *x, const tval_t *a, size_t n, bool ln)
{
    sb_reset(x);
    bool prev_str = false;
    for (size_t i = 0; i < n; i++) {
        bool is_str = a[i].k == V_STR;
        if (i > 0 && (ln || (!is_str && !prev_str))) sb_add(x, " ", 1);
        sprint_value(x, &a[i]);
        prev_str = is_str;
    }
    if (ln) sb_add(x, "\n", 1);
    return sb_done(x);
}

FN(f_print)
{
    UNUSED_ARGS;
    ret_str(out, sprint(x, a, n, false));
    return sb_over(x) ? -1 : 0;
}
FN(f_println)
{
    UNUSED_ARGS;
    ret_str(out, sprint(x, a, n, true));
    return sb_over(x) ? -1 : 0;
}

static st_str_t eval_args(tx_t *x, const tval_t *a, size_t n)
{
    if (n == 1 && a[0].k == V_STR) return a[0].s;
    return sprint(x, a, n, false);
}

FN(f_html)
{
    UNUSED_ARGS;
    st_str_t s = eval_args(x, a, n);
    st_buf_t in = ST_BUF_INIT;
    if (st_buf_append(&in, s.p, s.n) < 0) tx_oom(x);
    sb_reset(x);
    for (size_t i = 0; i < in.len; i++) {
        switch (in.data[i]) {
        case '"': sb_add(x, "&#34;", 5); break;
        case '\'': sb_add(x, "&#39;", 5); break;
        case '&': sb_add(x, "&amp;", 5); break;
        case '<': sb_add(x, "&lt;", 4); break;
        case '>': sb_add(x, "&gt;", 4); break;
        case '\0': sb_add(x, "\xef\xbf\xbd", 3); break;
        default: sb_add(x, in.data + i, 1); break;
        }
    }
    st_buf_free(&in);
    ret_str(out, sb_done(x));
    return sb_over(x) ? -1 : 0;
}
FN(f_js)
{
    UNUSED_ARGS;
    st_str_t s = eval_args(x, a, n);
    st_buf_t in = ST_BUF_INIT;
    if (st_buf_append(&in, s.p, s.n) < 0) tx_oom(x);
    sb_reset(x);
    for (size_t i = 0; i < in.len;) {
        unsigned char c = (unsigned char)in.data[i];
        char e[16];
        if (c < 0x80) {
            switch (c) {
            case '\\': sb_add(x, "\\\\", 2); break;
            case '\'': sb_add(x, "\\'", 2); break;
            case '"': sb_add(x, "\\\"", 2); break;
            case '<': sb_add(x, "\\u003C", 6); break;
            case '>': sb_add(x, "\\u003E", 6); break;
            case '&': sb_add(x, "\\u0026", 6); break;
            case '=': sb_add(x, "\\u003D", 6); break;
            case '`': sb_add(x, "\\u0060", 6); break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    snprintf(e, sizeof e, "\\u%04X", c);
                    sb_add(x, e, 6);
                } else {
                    sb_add(x, (const char *)&c, 1);
                }
            }
            i++;
            continue;
        }
        int w;
        int32_t r = st_go_rune(in.data + i, in.len - i, &w);
        if (st_go_is_letter(r) || st_go_is_digit(r) || r > 0x9F) {
            sb_rune(x, r);
        } else {
            snprintf(e, sizeof e, "\\u%04X", (unsigned)r);
            sb_add(x, e, strlen(e));
        }
        i += (size_t)w;
    }
    st_buf_free(&in);
    ret_str(out, sb_done(x));
    return sb_over(x) ? -1 : 0;
}
FN(f_urlquery)
{
    UNUSED_ARGS;
    st_str_t s = eval_args(x, a, n);
    st_buf_t in = ST_BUF_INIT;
    if (st_buf_append(&in, s.p, s.n) < 0) tx_oom(x);
    sb_reset(x);
    query_escape(x, st_str(in.data, in.len));
    st_buf_free(&in);
    ret_str(out, sb_done(x));
    return sb_over(x) ? -1 : 0;
}

typedef struct {
    bool minus, plus, sharp, space, zero;
    int width, prec; /* -1: absent */
} fmtspec_t;

static void pad(tx_t *x, const char *s, size_t n, const fmtspec_t *f, bool zero_ok)
{
    size_t runes = rune_count(st_str(s, n));
    size_t w = f->width > 0 ? (size_t)f->width : 0;
    if (runes >= w) {
        sb_add(x, s, n);
        return;
    }
    size_t padn = w - runes;
    if (f->minus) {
        sb_add(x, s, n);
        for (size_t i = 0; i < padn && !sb_over(x); i++) sb_add(x, " ", 1);
        return;
    }
    if (f->zero && zero_ok) {
        /* zeros after the sign */
        size_t sign = n > 0 && (s[0] == '-' || s[0] == '+' || s[0] == ' ') ? 1 : 0;
        sb_add(x, s, sign);
        for (size_t i = 0; i < padn && !sb_over(x); i++) sb_add(x, "0", 1);
        sb_add(x, s + sign, n - sign);
        return;
    }
    for (size_t i = 0; i < padn && !sb_over(x); i++) sb_add(x, " ", 1);
    sb_add(x, s, n);
}

static void fmt_int(tx_t *x, int64_t v, char verb, const fmtspec_t *f)
{
    char digs[80];
    int base = 10;
    bool upper = false;
    switch (verb) {
    case 'b': base = 2; break;
    case 'o':
    case 'O': base = 8; break;
    case 'x': base = 16; break;
    case 'X':
        base = 16;
        upper = true;
        break;
    default: break;
    }
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int k = 0;
    const char *dset = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    if (!(f->prec == 0 && u == 0)) {
        do {
            digs[k++] = dset[u % (uint64_t)base];
            u /= (uint64_t)base;
        } while (u);
    }
    int prec = f->prec;
    if (prec < 0 && f->zero && !f->minus && f->width > 0) {
        /* zero padding to the width counts the sign and prefix */
        prec = f->width;
        if (v < 0 || f->plus || f->space) prec--;
        if (f->sharp && (base == 16 || base == 2))
            prec -= 2;
        else if (f->sharp && base == 8)
            prec -= 1;
        if (verb == 'O') prec -= 2;
    }
    while (k < prec && k < 70) digs[k++] = '0';
    char buf[96];
    int n = 0;
    if (v < 0)
        buf[n++] = '-';
    else if (f->plus)
        buf[n++] = '+';
    else if (f->space)
        buf[n++] = ' ';
    if (verb == 'O') {
        buf[n++] = '0';
        buf[n++] = 'o';
    } else if (f->sharp) {
        if (base == 16) {
            buf[n++] = '0';
            buf[n++] = upper ? 'X' : 'x';
        } else if (base == 2) {
            buf[n++] = '0';
            buf[n++] = 'b';
        } else if (base == 8 && (k == 0 || digs[k - 1] != '0')) {
            buf[n++] = '0';
        }
    }
    while (k > 0) buf[n++] = digs[--k];
    fmtspec_t g = *f;
    g.zero = false;
    pad(x, buf, (size_t)n, &g, false);
}

static void fmt_float(tx_t *x, double v, char verb, const fmtspec_t *f)
{
    char buf[512];
    int n;
    if (!isfinite(v)) {
        n = snprintf(buf, sizeof buf, "%s",
                     isnan(v) ? (f->plus    ? "+NaN"
                                 : f->space ? " NaN"
                                            : "NaN")
                     : v > 0  ? (f->space && !f->plus ? " Inf" : "+Inf")
                              : "-Inf");
        if (isinf(v) && v > 0 && !f->plus && !f->space) n = snprintf(buf, sizeof buf, "+Inf");
        fmtspec_t g = *f;
        g.zero = false;
        pad(x, buf, (size_t)n, &g, false);
        return;
    }
    int prec = f->prec;
    if ((verb == 'v' || verb == 'g' || verb == 'G') && prec < 0) {
        n = (int)st_go_fmt_float(v, buf);
        if (verb == 'G')
            for (int i = 0; i < n; i++)
                if (buf[i] == 'e') buf[i] = 'E';
    } else {
        char cv = verb == 'v' ? 'g' : verb == 'F' ? 'f' : verb;
        int p = prec < 0 ? 6 : (prec > 300 ? 300 : prec);
        size_t bs = sizeof buf - 1;
        switch (cv) {
        case 'e': n = f->sharp ? snprintf(buf, bs, "%#.*e", p, v) : snprintf(buf, bs, "%.*e", p, v); break;
        case 'E': n = f->sharp ? snprintf(buf, bs, "%#.*E", p, v) : snprintf(buf, bs, "%.*E", p, v); break;
        case 'f': n = f->sharp ? snprintf(buf, bs, "%#.*f", p, v) : snprintf(buf, bs, "%.*f", p, v); break;
        case 'G': n = f->sharp ? snprintf(buf, bs, "%#.*G", p, v) : snprintf(buf, bs, "%.*G", p, v); break;
        default: n = f->sharp ? snprintf(buf, bs, "%#.*g", p, v) : snprintf(buf, bs, "%.*g", p, v); break;
        }
        if (n < 0 || n >= (int)sizeof buf - 1) n = (int)strlen(buf);
    }
    char sbuf[520];
    int m = 0;
    if (buf[0] != '-') {
        if (f->plus)
            sbuf[m++] = '+';
        else if (f->space)
            sbuf[m++] = ' ';
    }
    memcpy(sbuf + m, buf, (size_t)n);
    m += n;
    pad(x, sbuf, (size_t)m, f, true);
}

static void fmt_str(tx_t *x, st_str_t s, char verb, const fmtspec_t *f)
{
    if (verb == 'x' || verb == 'X') {
        static const char lo[] = "0123456789abcdef", up[] = "0123456789ABCDEF";
        const char *h = verb == 'x' ? lo : up;
        st_buf_t b = ST_BUF_INIT;
        size_t lim = f->prec >= 0 && (size_t)f->prec < s.n ? (size_t)f->prec : s.n;
        for (size_t i = 0; i < lim; i++) {
            unsigned char c = (unsigned char)s.p[i];
            if (f->space && i > 0) st_buf_putc(&b, ' ');
            if (f->sharp && (f->space || i == 0)) st_buf_puts(&b, verb == 'x' ? "0x" : "0X");
            st_buf_putc(&b, h[c >> 4]);
            st_buf_putc(&b, h[c & 15]);
        }
        pad(x, b.data ? b.data : "", b.len, f, true);
        st_buf_free(&b);
        return;
    }
    if (f->prec >= 0) s.n = rune_off(s, f->prec);
    if (verb == 'q') {
        st_buf_t b = ST_BUF_INIT;
        if (f->sharp && memchr(s.p, '`', s.n) == NULL) {
            st_buf_putc(&b, '`');
            st_buf_append(&b, s.p, s.n);
            st_buf_putc(&b, '`');
        } else {
            st_go_quote(&b, s);
        }
        pad(x, b.data ? b.data : "", b.len, f, true);
        st_buf_free(&b);
        return;
    }
    pad(x, s.p ? s.p : "", s.n, f, true);
}

static void bad_verb(tx_t *x, char verb, const tval_t *v)
{
    char t[4] = {'%', '!', verb, '('};
    sb_add(x, t, 4);
    if (v == NULL) {
        sb_add(x, "MISSING", 7);
    } else if (v->k == V_NIL) {
        sb_add(x, "<nil>", 5);
    } else {
        const char *tn = tx_type_name(v);
        sb_add(x, tn, strlen(tn));
        sb_add(x, "=", 1);
        tx_print(x, &x->tmp, v);
    }
    sb_add(x, ")", 1);
}

static void fmt_value(tx_t *x, const tval_t *v, char verb, const fmtspec_t *f)
{
    if (verb == 'T') {
        const char *tn = v->k == V_NIL ? "<nil>" : tx_type_name(v);
        pad(x, tn, strlen(tn), f, false);
        return;
    }
    switch (v->k) {
    case V_NIL:
        if (verb == 'v')
            pad(x, "<nil>", 5, f, false);
        else
            bad_verb(x, verb, v);
        return;
    case V_BOOL:
        if (verb == 'v' || verb == 't')
            pad(x, v->b ? "true" : "false", v->b ? 4 : 5, f, false);
        else
            bad_verb(x, verb, v);
        return;
    case V_INT:
    case V_INT64:
        switch (verb) {
        case 'v':
        case 'd':
        case 'b':
        case 'o':
        case 'O':
        case 'x':
        case 'X': fmt_int(x, v->i, verb == 'v' ? 'd' : verb, f); return;
        case 'c':
        case 'q':
        case 'U': {
            st_buf_t b = ST_BUF_INIT;
            int32_t r = v->i < 0 || v->i > 0x10FFFF ? 0xFFFD : (int32_t)v->i;
            if (verb == 'c') {
                st_go_put_rune(&b, r);
            } else if (verb == 'U') {
                st_buf_printf(&b, "U+%04X", (unsigned)v->i);
                if (f->sharp && r >= 0x20) {
                    st_buf_puts(&b, " '");
                    st_go_put_rune(&b, r);
                    st_buf_putc(&b, '\'');
                }
            } else {
                st_buf_t q = ST_BUF_INIT;
                st_go_put_rune(&q, r);
                st_buf_t qq = ST_BUF_INIT;
                st_go_quote(&qq, st_str(q.data, q.len));
                st_buf_putc(&b, '\'');
                if (qq.len >= 2) {
                    if (r == '\'')
                        st_buf_puts(&b, "\\'");
                    else if (r == '"')
                        st_buf_putc(&b, '"');
                    else
                        st_buf_append(&b, qq.data + 1, qq.len - 2);
                }
                st_buf_putc(&b, '\'');
                st_buf_free(&q);
                st_buf_free(&qq);
            }
            pad(x, b.data ? b.data : "", b.len, f, false);
            st_buf_free(&b);
            return;
        }
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
        case 's':
        default: bad_verb(x, verb, v); return;
        }
    case V_FLOAT:
        switch (verb) {
        case 'v':
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G': fmt_float(x, v->f, verb, f); return;
        default: bad_verb(x, verb, v); return;
        }
    case V_STR:
        switch (verb) {
        case 'v':
        case 's':
        case 'q':
        case 'x':
        case 'X': fmt_str(x, v->s, verb, f); return;
        default: bad_verb(x, verb, v); return;
        }
    case V_TIME:
    case V_MAP:
        if (verb == 'v' || verb == 's' || (v->k == V_TIME && (verb == 'q' || verb == 'x' || verb == 'X'))) {
            st_buf_t b = ST_BUF_INIT;
            tx_print(x, &b, v);
            fmt_str(x, st_str(b.data ? b.data : "", b.len), verb == 'v' ? 's' : verb, f);
            st_buf_free(&b);
            return;
        }
        bad_verb(x, verb, v);
        return;
    default: bad_verb(x, verb, v); return;
    }
}

FN(f_printf)
{
    UNUSED_ARGS;
    st_str_t fm = a[0].s;
    const tval_t *args = a + 1;
    size_t nargs = n - 1, ai = 0;
    st_buf_t *keep = &x->tmp;
    sb_reset(x);
    for (size_t i = 0; i < fm.n && !sb_over(x);) {
        size_t j = i;
        while (j < fm.n && fm.p[j] != '%') j++;
        if (j > i) sb_add(x, fm.p + i, j - i);
        if (j >= fm.n) break;
        i = j + 1;
        fmtspec_t f = {false, false, false, false, false, -1, -1};
        for (; i < fm.n; i++) {
            char c = fm.p[i];
            if (c == '-') {
                f.minus = true;
                f.zero = false;
            } else if (c == '+') {
                f.plus = true;
            } else if (c == '#') {
                f.sharp = true;
            } else if (c == ' ') {
                f.space = true;
            } else if (c == '0') {
                f.zero = !f.minus;
            } else {
                break;
            }
        }
        if (i < fm.n && fm.p[i] == '*') {
            i++;
            if (ai < nargs && (args[ai].k == V_INT || args[ai].k == V_INT64) && args[ai].i > -1000000 &&
                args[ai].i < 1000000) {
                f.width = (int)args[ai].i;
                if (f.width < 0) {
                    f.minus = true;
                    f.width = -f.width;
                }
            } else {
                sb_add(x, "%!(BADWIDTH)", 12);
            }
            ai++;
        } else {
            int w = 0;
            bool any = false;
            while (i < fm.n && fm.p[i] >= '0' && fm.p[i] <= '9') {
                if (w < 1000000) w = w * 10 + (fm.p[i] - '0');
                i++;
                any = true;
            }
            if (any) f.width = w;
        }
        if (i < fm.n && fm.p[i] == '.') {
            i++;
            if (i < fm.n && fm.p[i] == '*') {
                i++;
                if (ai < nargs && (args[ai].k == V_INT || args[ai].k == V_INT64) && args[ai].i >= 0 &&
                    args[ai].i < 1000000) {
                    f.prec = (int)args[ai].i;
                } else {
                    sb_add(x, "%!(BADPREC)", 11);
                }
                ai++;
            } else {
                int p = 0;
                while (i < fm.n && fm.p[i] >= '0' && fm.p[i] <= '9') {
                    if (p < 1000000) p = p * 10 + (fm.p[i] - '0');
                    i++;
                }
                f.prec = p;
            }
        }
        if (i >= fm.n) {
            sb_add(x, "%!(NOVERB)", 10);
            break;
        }
        int w;
        int32_t verb = st_go_rune(fm.p + i, fm.n - i, &w);
        i += (size_t)w;
        if (verb == '%') {
            sb_add(x, "%", 1);
            continue;
        }
        if (verb >= 0x80) verb = '?';
        if (ai >= nargs) {
            bad_verb(x, (char)verb, NULL);
            continue;
        }
        fmt_value(x, &args[ai++], (char)verb, &f);
    }
    if (ai < nargs && !sb_over(x)) {
        sb_add(x, "%!(EXTRA ", 9);
        for (size_t k = ai; k < nargs; k++) {
            if (k > ai) sb_add(x, ", ", 2);
            if (args[k].k == V_NIL) {
                sb_add(x, "<nil>", 5);
                continue;
            }
            const char *tn = tx_type_name(&args[k]);
            sb_add(x, tn, strlen(tn));
            sb_add(x, "=", 1);
            tx_print(x, keep, &args[k]);
        }
        sb_add(x, ")", 1);
    }
    if (sb_over(x)) return -1;
    ret_str(out, sb_done(x));
    return 0;
}

/* ---- the map ------------------------------------------------------------------------------------------ */

static const tfunc_t FUNCS[] = {
    /* Go built-ins */
    {"and", "vv*", f_and},
    {"or", "vv*", f_and},
    {"not", "v", f_not},
    {"len", "v", f_len},
    {"index", "vv*", f_index},
    {"slice", "vv*", f_slice},
    {"print", "a*", f_print},
    {"printf", "sa*", f_printf},
    {"println", "a*", f_println},
    {"eq", "vv*", f_eq},
    {"ne", "vv", f_ne},
    {"lt", "vv", f_lt},
    {"le", "vv", f_le},
    {"gt", "vv", f_gt},
    {"ge", "vv", f_ge},
    {"html", "a*", f_html},
    {"js", "a*", f_js},
    {"urlquery", "a*", f_urlquery},
    /* Loki */
    {"__line__", "", f_line},
    {"__timestamp__", "", f_timestamp},
    {"ToLower", "s", f_lower},
    {"ToUpper", "s", f_upper},
    {"Replace", "sssi", f_Replace},
    {"Trim", "ss", f_Trim},
    {"TrimLeft", "ss", f_TrimLeft},
    {"TrimRight", "ss", f_TrimRight},
    {"TrimPrefix", "ss", f_TrimPrefix},
    {"TrimSuffix", "ss", f_TrimSuffix},
    {"TrimSpace", "s", f_TrimSpace},
    {"regexReplaceAll", "sss", f_regexReplaceAll},
    {"regexReplaceAllLiteral", "sss", f_regexReplaceAllLiteral},
    {"count", "ss", f_count},
    {"urldecode", "s", f_urldecode},
    {"urlencode", "s", f_urlencode},
    {"bytes", "s", f_bytes},
    {"duration", "s", f_duration},
    {"duration_seconds", "s", f_duration},
    {"unixEpochMillis", "t", f_unixEpochMillis},
    {"unixEpochNanos", "t", f_unixEpochNanos},
    {"toDateInZone", "sss", f_toDateInZone},
    {"unixToTime", "s", f_unixToTime},
    {"alignLeft", "is", f_alignLeft},
    {"alignRight", "is", f_alignRight},
    {"b64dec", "s", f_b64dec},
    /* Sprig */
    {"b64enc", "s", f_b64enc},
    {"lower", "s", f_lower},
    {"upper", "s", f_upper},
    {"title", "s", f_title},
    {"trunc", "is", f_trunc},
    {"substr", "iis", f_substr},
    {"contains", "ss", f_contains},
    {"hasPrefix", "ss", f_hasPrefix},
    {"hasSuffix", "ss", f_hasSuffix},
    {"indent", "is", f_indent},
    {"nindent", "is", f_indent},
    {"replace", "sss", f_replace},
    {"repeat", "is", f_repeat},
    {"trim", "s", f_TrimSpace},
    {"trimAll", "ss", f_trimAll},
    {"trimSuffix", "ss", f_trimSuffix},
    {"trimPrefix", "ss", f_trimPrefix},
    {"int", "a", f_int},
    {"float64", "a", f_float64},
    {"add", "a*", f_add},
    {"sub", "aa", f_sub},
    {"mul", "aa*", f_mul},
    {"div", "aa", f_div},
    {"mod", "aa", f_mod},
    {"addf", "a*", f_addf},
    {"subf", "aa*", f_subf},
    {"mulf", "aa*", f_mulf},
    {"divf", "aa*", f_divf},
    {"max", "aa*", f_max},
    {"min", "aa*", f_min},
    {"maxf", "aa*", f_maxf},
    {"minf", "aa*", f_minf},
    {"ceil", "a", f_ceil},
    {"floor", "a", f_floor},
    {"round", "aif*", f_round},
    {"date", "sa", f_date},
    {"toDate", "ss", f_toDate},
    {"now", "", f_now},
    {"unixEpoch", "t", f_unixEpoch},
    {"default", "aa*", f_default},
};

const tfunc_t *tx_func(st_str_t name)
{
    for (size_t i = 0; i < sizeof FUNCS / sizeof FUNCS[0]; i++)
        if (st_str_eqc(name, FUNCS[i].name)) return &FUNCS[i];
    return NULL;
}
