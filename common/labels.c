/* labels.c: label-set parsing, sorting and canonical formatting (see labels.h). */
#include "common/labels.h"

#include "common/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

void st_labels_free(st_labels_t *l)
{
    if (l == NULL) return;
    free(l->v);
    free(l->arena);
    *l = ST_LABELS_INIT;
}

bool st_label_name_valid(st_str_t name)
{
    if (name.n == 0) return false;
    for (size_t i = 0; i < name.n; i++) {
        unsigned char c = (unsigned char)name.p[i];
        if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static int label_cmp(const void *a, const void *b)
{
    const st_label_t *x = a, *y = b;
    int c = st_str_cmp(x->name, y->name);
    if (c != 0) return c;
    return st_str_cmp(x->value, y->value);
}

/* Copies pairs into one allocation (the array, then the strings; arena stays NULL) and sorts them. */
static int build(const st_label_t *pairs, size_t n, st_labels_t *out)
{
    size_t total = 0, keep = 0;
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].value.n == 0) continue;
        total += pairs[i].name.n + pairs[i].value.n + 2;
        keep++;
    }
    st_labels_t l = ST_LABELS_INIT;
    if (keep > 0) {
        l.v = malloc(keep * sizeof *l.v + total);
        if (l.v == NULL) return -ENOMEM;
    }
    char *a = keep ? (char *)(l.v + keep) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (pairs[i].value.n == 0) continue;
        memcpy(a, pairs[i].name.p, pairs[i].name.n);
        a[pairs[i].name.n] = '\0';
        l.v[l.n].name = st_str(a, pairs[i].name.n);
        a += pairs[i].name.n + 1;
        memcpy(a, pairs[i].value.p, pairs[i].value.n);
        a[pairs[i].value.n] = '\0';
        l.v[l.n].value = st_str(a, pairs[i].value.n);
        a += pairs[i].value.n + 1;
        l.n++;
    }
    if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, label_cmp);
    *out = l;
    return 0;
}

int st_labels_from_pairs(const st_label_t *pairs, size_t n, st_labels_t *out) { return build(pairs, n, out); }

int st_labels_copy(const st_labels_t *src, st_labels_t *out) { return build(src->v, src->n, out); }

int st_labels_first_dup(const st_labels_t *l)
{
    for (size_t i = 1; i < l->n; i++)
        if (st_str_eq(l->v[i].name, l->v[i - 1].name)) return (int)i;
    return -1;
}

bool st_labels_get(const st_labels_t *l, st_str_t name, st_str_t *value)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = st_str_cmp(l->v[mid].name, name);
        if (c == 0) {
            if (value) *value = l->v[mid].value;
            return true;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int put_rune(st_buf_t *b, unsigned cp)
{
    char t[4];
    size_t n;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) cp = 0xFFFD;
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

int st_go_unquote(st_str_t s, st_buf_t *out, size_t *used)
{
    if (s.n == 0) return ST_EPARSE;
    if (s.p[0] == '`') {
        const char *e = memchr(s.p + 1, '`', s.n - 1);
        if (e == NULL) return ST_EPARSE;
        size_t n = (size_t)(e - s.p - 1);
        /* Go drops carriage returns from raw strings. */
        for (size_t i = 0; i < n; i++)
            if (s.p[1 + i] != '\r' && st_buf_putc(out, s.p[1 + i]) < 0) return -ENOMEM;
        *used = n + 2;
        return 0;
    }
    if (s.p[0] != '"') return ST_EPARSE;
    size_t i = 1;
    while (i < s.n) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '"') {
            *used = i + 1;
            return 0;
        }
        if (c == '\n') return ST_EPARSE;
        if (c != '\\') {
            size_t j = i;
            while (j < s.n && s.p[j] != '"' && s.p[j] != '\\' && s.p[j] != '\n') j++;
            if (st_buf_append(out, s.p + i, j - i) < 0) return -ENOMEM;
            i = j;
            continue;
        }
        if (i + 1 >= s.n) return ST_EPARSE;
        char e = s.p[i + 1];
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
        case '"': rc = st_buf_putc(out, '"'); break;
        case 'x': {
            if (i + 2 > s.n) return ST_EPARSE;
            int h = hexval(s.p[i]), l = hexval(s.p[i + 1]);
            if (h < 0 || l < 0) return ST_EPARSE;
            rc = st_buf_putc(out, (char)(h * 16 + l));
            i += 2;
            break;
        }
        case 'u':
        case 'U': {
            size_t k = e == 'u' ? 4 : 8;
            if (i + k > s.n) return ST_EPARSE;
            unsigned cp = 0;
            for (size_t q = 0; q < k; q++) {
                int h = hexval(s.p[i + q]);
                if (h < 0) return ST_EPARSE;
                cp = cp * 16 + (unsigned)h;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return ST_EPARSE;
            rc = put_rune(out, cp);
            i += k;
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                if (i + 2 > s.n) return ST_EPARSE;
                unsigned v = (unsigned)(e - '0');
                for (int q = 0; q < 2; q++) {
                    char d = s.p[i + (size_t)q];
                    if (d < '0' || d > '7') return ST_EPARSE;
                    v = v * 8 + (unsigned)(d - '0');
                }
                if (v > 255) return ST_EPARSE;
                rc = st_buf_putc(out, (char)v);
                i += 2;
                break;
            }
            return ST_EPARSE;
        }
        if (rc < 0) return -ENOMEM;
    }
    return ST_EPARSE;
}

static void perr(char *err, const char *msg, size_t col)
{
    if (err) snprintf(err, 256, "1:%zu: parse error: %s", col + 1, msg);
}

int st_labels_parse(st_str_t s, st_labels_t *out, char *err)
{
    st_label_t pairs[64];
    st_label_t *pv = pairs;
    size_t np = 0, cap = 64;
    st_buf_t vals = ST_BUF_INIT; /* decoded values, back to back */
    size_t *voff = NULL;         /* offsets of values in vals (vals may move while growing) */
    int rc = ST_EPARSE;
    size_t i = 0;
    voff = malloc(cap * sizeof *voff);
    if (voff == NULL) return -ENOMEM;
#define SKIPWS() while (i < s.n && isspace((unsigned char)s.p[i])) i++
    SKIPWS();
    if (i >= s.n || s.p[i] != '{') {
        perr(err, "unexpected character, expected \"{\"", i);
        goto done;
    }
    i++;
    SKIPWS();
    if (i < s.n && s.p[i] == '}') {
        i++;
        goto tail;
    }
    for (;;) {
        SKIPWS();
        size_t ns = i;
        while (i < s.n && (isalnum((unsigned char)s.p[i]) || s.p[i] == '_')) i++;
        st_str_t name = st_str(s.p + ns, i - ns);
        if (!st_label_name_valid(name)) {
            perr(err, i < s.n ? "unexpected character in label matcher, expected label name" : "unexpected end of input", ns);
            goto done;
        }
        SKIPWS();
        if (i >= s.n || s.p[i] != '=') {
            perr(err, "unexpected character in label matcher, expected \"=\"", i);
            goto done;
        }
        i++;
        if (i < s.n && (s.p[i] == '~' || s.p[i] == '=')) {
            perr(err, "only equality matchers are allowed in a label set", i);
            goto done;
        }
        SKIPWS();
        if (i >= s.n || (s.p[i] != '"' && s.p[i] != '`' && s.p[i] != '\'')) {
            perr(err, "unexpected character, expected label value string", i);
            goto done;
        }
        size_t used = 0;
        size_t start = vals.len;
        int q;
        if (s.p[i] == '\'') {
            /* Prometheus also accepts single-quoted strings. */
            const char *e = memchr(s.p + i + 1, '\'', s.n - i - 1);
            if (e == NULL) {
                q = ST_EPARSE;
            } else {
                used = (size_t)(e - (s.p + i)) + 1;
                q = st_buf_append(&vals, s.p + i + 1, used - 2);
            }
        } else {
            q = st_go_unquote(st_str(s.p + i, s.n - i), &vals, &used);
        }
        if (q == -ENOMEM) {
            rc = -ENOMEM;
            goto done;
        }
        if (q < 0) {
            perr(err, "invalid quoted label value", i);
            goto done;
        }
        i += used;
        if (np == cap) {
            size_t ncap = cap * 2;
            st_label_t *nv = pv == pairs ? malloc(ncap * sizeof *nv) : realloc(pv, ncap * sizeof *nv);
            size_t *no = realloc(voff, ncap * sizeof *no);
            if (nv == NULL || no == NULL) {
                if (nv && pv == pairs) free(nv);
                if (no) voff = no;
                rc = -ENOMEM;
                goto done;
            }
            if (pv == pairs) memcpy(nv, pairs, sizeof pairs);
            pv = nv;
            voff = no;
            cap = ncap;
        }
        pv[np].name = name;
        pv[np].value = st_str(NULL, vals.len - start);
        voff[np] = start;
        np++;
        SKIPWS();
        if (i < s.n && s.p[i] == ',') {
            i++;
            SKIPWS();
            if (i < s.n && s.p[i] == '}') {
                i++;
                break;
            }
            continue;
        }
        if (i < s.n && s.p[i] == '}') {
            i++;
            break;
        }
        perr(err, i < s.n ? "unexpected character in label set, expected \",\" or \"}\"" : "unexpected end of input", i);
        goto done;
    }
tail:
    SKIPWS();
    if (i != s.n) {
        perr(err, "unexpected characters after label set", i);
        goto done;
    }
    for (size_t k = 0; k < np; k++) pv[k].value.p = vals.data ? vals.data + voff[k] : "";
    rc = build(pv, np, out);
#undef SKIPWS
done:
    if (pv != pairs) free(pv);
    free(voff);
    st_buf_free(&vals);
    return rc;
}

static bool printable(unsigned cp)
{
    /* Approximates Go's strconv.IsPrint for common cases: ASCII printable, and Unicode outside the
     * C0/C1 controls and a few invisible format characters. */
    if (cp < 0x20 || cp == 0x7F) return false;
    if (cp >= 0x80 && cp < 0xA0) return false;
    if (cp == 0xAD || cp == 0xA0) return false;
    if (cp >= 0x2028 && cp <= 0x202F) return false;
    if (cp >= 0x200B && cp <= 0x200F) return false;
    if (cp == 0xFEFF) return false;
    return true;
}

int st_go_quote(st_buf_t *out, st_str_t s)
{
    static const char hex[] = "0123456789abcdef";
    if (st_buf_putc(out, '"') < 0) return -ENOMEM;
    const unsigned char *p = (const unsigned char *)s.p, *end = p + s.n;
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            const unsigned char *r = p;
            while (r < end && *r >= 0x20 && *r < 0x7F && *r != '"' && *r != '\\') r++;
            if (st_buf_append(out, p, (size_t)(r - p)) < 0) return -ENOMEM;
            p = r;
            continue;
        }
        char t[12];
        int n = 0;
        if (c < 0x80) {
            switch (c) {
            case '"': n = sprintf(t, "\\\""); break;
            case '\\': n = sprintf(t, "\\\\"); break;
            case '\a': n = sprintf(t, "\\a"); break;
            case '\b': n = sprintf(t, "\\b"); break;
            case '\f': n = sprintf(t, "\\f"); break;
            case '\n': n = sprintf(t, "\\n"); break;
            case '\r': n = sprintf(t, "\\r"); break;
            case '\t': n = sprintf(t, "\\t"); break;
            case '\v': n = sprintf(t, "\\v"); break;
            default: t[0] = '\\'; t[1] = 'x'; t[2] = hex[c >> 4]; t[3] = hex[c & 15]; n = 4;
            }
            p++;
        } else {
            /* decode one UTF-8 sequence */
            unsigned cp = 0;
            size_t len = 0;
            if (c >= 0xC2 && c <= 0xDF) { cp = c & 0x1F; len = 2; }
            else if (c >= 0xE0 && c <= 0xEF) { cp = c & 0x0F; len = 3; }
            else if (c >= 0xF0 && c <= 0xF4) { cp = c & 0x07; len = 4; }
            bool ok = len > 0 && (size_t)(end - p) >= len;
            for (size_t k = 1; ok && k < len; k++) {
                if ((p[k] & 0xC0) != 0x80) ok = false;
                else cp = (cp << 6) | (p[k] & 0x3F);
            }
            if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
                ok = false;
            if (!ok) {
                t[0] = '\\'; t[1] = 'x'; t[2] = hex[c >> 4]; t[3] = hex[c & 15]; n = 4;
                p++;
            } else if (printable(cp)) {
                if (st_buf_append(out, p, len) < 0) return -ENOMEM;
                p += len;
                continue;
            } else {
                n = cp < 0x10000 ? sprintf(t, "\\u%04x", cp) : sprintf(t, "\\U%08x", cp);
                p += len;
            }
        }
        if (st_buf_append(out, t, (size_t)n) < 0) return -ENOMEM;
    }
    return st_buf_putc(out, '"');
}

int st_labels_format(const st_labels_t *l, st_buf_t *out)
{
    if (st_buf_putc(out, '{') < 0) return -ENOMEM;
    for (size_t i = 0; i < l->n; i++) {
        if (i > 0 && st_buf_append(out, ", ", 2) < 0) return -ENOMEM;
        if (st_buf_append(out, l->v[i].name.p, l->v[i].name.n) < 0) return -ENOMEM;
        if (st_buf_putc(out, '=') < 0) return -ENOMEM;
        if (st_go_quote(out, l->v[i].value) < 0) return -ENOMEM;
    }
    return st_buf_putc(out, '}');
}

bool st_matcher_matches(const st_matcher_t *m, st_str_t value)
{
    switch (m->type) {
    case ST_MATCH_EQ: return st_str_eq(value, m->value);
    case ST_MATCH_NEQ: return !st_str_eq(value, m->value);
    case ST_MATCH_RE: return m->re_match(m->re, value);
    case ST_MATCH_NRE: return !m->re_match(m->re, value);
    }
    return false;
}

bool st_matchers_match(const st_matcher_t *m, size_t n, const st_labels_t *l)
{
    for (size_t i = 0; i < n; i++) {
        st_str_t v = st_str("", 0);
        st_labels_get(l, m[i].name, &v);
        if (!st_matcher_matches(&m[i], v)) return false;
    }
    return true;
}
