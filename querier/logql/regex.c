/* regex.c: LogQL regexes. Loki uses Go's RE2 syntax; this file checks an expression the way Go's
 * regexp/syntax parser does (same error texts) and translates it into an equivalent PCRE2 pattern
 * (Go's octal and \v escapes, literal '{', \Q..\E, classes), then compiles it with JIT. */
#include "querier/logql/logql_int.h"

#include "common/err.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *whole; /* the expression as given */
    size_t n;
    st_buf_t out; /* translated PCRE2 pattern */
    char *msg;
    size_t msgsz;
    int depth;
    int oom;
} rx_t;

static int rx_err(rx_t *x, const char *code, const char *expr, size_t len)
{
    snprintf(x->msg, x->msgsz, "error parsing regexp: %s: `%.*s`", code, (int)len, expr);
    return ST_EPARSE;
}

static void emit(rx_t *x, const char *s, size_t n)
{
    if (st_buf_append(&x->out, s, n) < 0) x->oom = 1;
}
static void emits(rx_t *x, const char *s)
{
    emit(x, s, strlen(s));
}

static void emit_hex(rx_t *x, uint32_t r)
{
    char t[16];
    int k = snprintf(t, sizeof t, "\\x{%x}", (unsigned)r);
    emit(x, t, (size_t)k);
}

/* A literal rune outside a class. */
static void emit_lit(rx_t *x, uint32_t r, const char *raw, int w)
{
    if (r < 0x80) {
        if (isalnum((int)r)) {
            char c = (char)r;
            emit(x, &c, 1);
        } else if (r < 0x20 || r == 0x7F) {
            emit_hex(x, r);
        } else {
            char t[2] = {'\\', (char)r};
            emit(x, t, 2);
        }
    } else {
        emit(x, raw, (size_t)w);
    }
}

static int next_rune(rx_t *x, size_t i, uint32_t *r)
{
    int w;
    int32_t c = lq_decode_rune((const unsigned char *)x->whole + i, x->n - i, &w);
    *r = (uint32_t)c;
    return w;
}

static int unhex(uint32_t c)
{
    if (c >= '0' && c <= '9') return (int)c - '0';
    if (c >= 'a' && c <= 'f') return (int)c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return (int)c - 'A' + 10;
    return -1;
}

/* Go's parseEscape at x->whole[i] ('\\'). Gives the rune and the index after it. */
static int parse_escape(rx_t *x, size_t i, uint32_t *r, size_t *after)
{
    size_t s = i;
    size_t t = i + 1;
    if (t >= x->n) {
        snprintf(x->msg, x->msgsz, "error parsing regexp: trailing backslash at end of expression: ``");
        return ST_EPARSE;
    }
    uint32_t c;
    t += (size_t)next_rune(x, t, &c);
    switch (c) {
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
        if (t >= x->n || x->whole[t] < '0' || x->whole[t] > '7') break;
        /* fallthrough */
    case '0': {
        uint32_t v = c - '0';
        for (int k = 1; k < 3; k++) {
            if (t >= x->n || x->whole[t] < '0' || x->whole[t] > '7') break;
            v = v * 8 + (uint32_t)(x->whole[t] - '0');
            t++;
        }
        *r = v;
        *after = t;
        return 0;
    }
    case 'x': {
        if (t >= x->n) break;
        uint32_t d;
        t += (size_t)next_rune(x, t, &d);
        if (d == '{') {
            int nhex = 0;
            uint32_t v = 0;
            for (;;) {
                if (t >= x->n) goto invalid;
                t += (size_t)next_rune(x, t, &d);
                if (d == '}') break;
                int h = unhex(d);
                if (h < 0) goto invalid;
                v = v * 16 + (uint32_t)h;
                if (v > 0x10FFFF) goto invalid;
                nhex++;
            }
            if (nhex == 0) goto invalid;
            *r = v;
            *after = t;
            return 0;
        }
        int hx = unhex(d);
        if (t >= x->n) goto invalid;
        uint32_t e;
        t += (size_t)next_rune(x, t, &e);
        int hy = unhex(e);
        if (hx < 0 || hy < 0) break;
        *r = (uint32_t)(hx * 16 + hy);
        *after = t;
        return 0;
    }
    case 'a':
        *r = '\a';
        *after = t;
        return 0;
    case 'f':
        *r = '\f';
        *after = t;
        return 0;
    case 'n':
        *r = '\n';
        *after = t;
        return 0;
    case 'r':
        *r = '\r';
        *after = t;
        return 0;
    case 't':
        *r = '\t';
        *after = t;
        return 0;
    case 'v':
        *r = '\v';
        *after = t;
        return 0;
    default:
        if (c < 0x80 && !isalnum((int)c)) {
            *r = c;
            *after = t;
            return 0;
        }
    }
invalid:
    return rx_err(x, "invalid escape sequence", x->whole + s, t - s);
}

/* \d \D \s \S \w \W; Go's \s is [\t\n\f\r ]. Returns 1 if handled. */
static int perl_class(rx_t *x, size_t i, bool in_class, size_t *after)
{
    if (i + 1 >= x->n || x->whole[i] != '\\') return 0;
    char c = x->whole[i + 1];
    switch (c) {
    case 'd':
    case 'D':
    case 'w':
    case 'W': emit(x, x->whole + i, 2); break;
    case 's': emits(x, in_class ? "\\t\\n\\f\\r\\x{20}" : "[\\t\\n\\f\\r\\x{20}]"); break;
    case 'S': emits(x, in_class ? "\\S" : "[^\\t\\n\\f\\r\\x{20}]"); break;
    default: return 0;
    }
    *after = i + 2;
    return 1;
}

/* \pN, \p{Name}, \PN, \P{^Name}: passed through (PCRE2 checks the name). */
static int unicode_class(rx_t *x, size_t i, size_t *after, int *err)
{
    *err = 0;
    if (i + 1 >= x->n || x->whole[i] != '\\' || (x->whole[i + 1] != 'p' && x->whole[i + 1] != 'P')) return 0;
    size_t t = i + 2;
    if (t >= x->n) {
        *err = rx_err(x, "invalid character class range", x->whole + i, t - i);
        return 0;
    }
    if (x->whole[t] == '{') {
        const char *e = memchr(x->whole + t, '}', x->n - t);
        if (e == NULL) {
            *err = rx_err(x, "invalid character class range", x->whole + i, x->n - i);
            return 0;
        }
        t = (size_t)(e - x->whole) + 1;
    } else {
        uint32_t r;
        t += (size_t)next_rune(x, t, &r);
    }
    emit(x, x->whole + i, t - i);
    *after = t;
    return 1;
}

static const char *const posix_names[] = {"alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
                                          "lower", "print", "punct", "space", "upper", "word",  "xdigit"};

static int parse_class(rx_t *x, size_t s, size_t *after)
{
    size_t t = s + 1;
    emit(x, "[", 1);
    if (t < x->n && x->whole[t] == '^') {
        emit(x, "^", 1);
        t++;
    }
    bool first = true;
    while (t >= x->n || x->whole[t] != ']' || first) {
        first = false;
        if (t + 2 < x->n && x->whole[t] == '[' && x->whole[t + 1] == ':') {
            const char *e = NULL;
            for (size_t k = t + 2; k + 1 < x->n; k++)
                if (x->whole[k] == ':' && x->whole[k + 1] == ']') {
                    e = x->whole + k;
                    break;
                }
            if (e != NULL) {
                size_t nb = t + 2, ne = (size_t)(e - x->whole);
                size_t nlen = ne - nb;
                const char *nm = x->whole + nb;
                if (nlen > 0 && nm[0] == '^') {
                    nm++;
                    nlen--;
                }
                bool ok = false;
                for (size_t k = 0; k < sizeof posix_names / sizeof posix_names[0]; k++)
                    if (strlen(posix_names[k]) == nlen && memcmp(posix_names[k], nm, nlen) == 0) ok = true;
                if (!ok) return rx_err(x, "invalid character class range", x->whole + t, ne + 2 - t);
                emit(x, x->whole + t, ne + 2 - t);
                t = ne + 2;
                continue;
            }
        }
        int uerr;
        size_t nt;
        if (unicode_class(x, t, &nt, &uerr)) {
            t = nt;
            continue;
        }
        if (uerr) return uerr;
        if (perl_class(x, t, true, &nt)) {
            t = nt;
            continue;
        }
        size_t rng = t;
        uint32_t lo, hi;
        if (t >= x->n) return rx_err(x, "missing closing ]", x->whole + s, x->n - s);
        if (x->whole[t] == '\\') {
            int rc = parse_escape(x, t, &lo, &nt);
            if (rc) return rc;
            t = nt;
        } else {
            t += (size_t)next_rune(x, t, &lo);
        }
        hi = lo;
        if (t + 1 < x->n && x->whole[t] == '-' && x->whole[t + 1] != ']') {
            t++;
            if (t >= x->n) return rx_err(x, "missing closing ]", x->whole + s, x->n - s);
            if (x->whole[t] == '\\') {
                int rc = parse_escape(x, t, &hi, &nt);
                if (rc) return rc;
                t = nt;
            } else {
                t += (size_t)next_rune(x, t, &hi);
            }
            if (hi < lo) return rx_err(x, "invalid character class range", x->whole + rng, t - rng);
        }
        emit_hex(x, lo);
        if (hi != lo) {
            emit(x, "-", 1);
            emit_hex(x, hi);
        }
    }
    emit(x, "]", 1);
    *after = t + 1;
    return 0;
}

/* Go's parseInt for repeat counts: no leading zeros; -1 when too large. */
static bool parse_int(const char *s, size_t n, size_t *i, int *v)
{
    size_t st = *i;
    if (st >= n || !isdigit((unsigned char)s[st])) return false;
    if (n - st >= 2 && s[st] == '0' && isdigit((unsigned char)s[st + 1])) return false;
    long val = 0;
    while (*i < n && isdigit((unsigned char)s[*i])) {
        if (val < 100000000) val = val * 10 + (s[*i] - '0');
        (*i)++;
    }
    *v = (int)(*i - st > 8 ? -1 : val);
    return true;
}

static bool parse_repeat(const char *s, size_t n, size_t i, int *min, int *max, size_t *after)
{
    if (i >= n || s[i] != '{') return false;
    i++;
    if (!parse_int(s, n, &i, min)) return false;
    if (i >= n) return false;
    if (s[i] != ',') {
        *max = *min;
    } else {
        i++;
        if (i >= n) return false;
        if (s[i] == '}') {
            *max = -1;
        } else {
            if (!parse_int(s, n, &i, max)) return false;
            if (*max < 0) *min = -1;
        }
    }
    if (i >= n || s[i] != '}') return false;
    *after = i + 1;
    return true;
}

static bool is_word(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Translates x->whole into x->out, checking it like Go's regexp/syntax.Parse(Perl). names (may be
 * NULL) collects capture group names by index. */
typedef struct {
    st_str_t *v;
    size_t n, cap;
} rx_names_t;

static int rx_names_add(lq_arena_t *a, rx_names_t *nm, st_str_t name)
{
    if (nm == NULL) return 0;
    if (nm->n == nm->cap) {
        size_t nc = nm->cap ? nm->cap * 2 : 8;
        st_str_t *v = lq_alloc(a, nc * sizeof *v);
        if (v == NULL) return -ENOMEM;
        if (nm->n) memcpy(v, nm->v, nm->n * sizeof *v);
        nm->v = v;
        nm->cap = nc;
    }
    nm->v[nm->n++] = name;
    return 0;
}

static int translate(lq_arena_t *a, rx_t *x, rx_names_t *names)
{
    /* checkUTF8 */
    for (size_t i = 0; i < x->n;) {
        int w;
        int32_t r = lq_decode_rune((const unsigned char *)x->whole + i, x->n - i, &w);
        if (r == 0xFFFD && w == 1) return rx_err(x, "invalid UTF-8", x->whole, x->n);
        i += (size_t)w;
    }
    if (rx_names_add(a, names, st_str("", 0)) < 0) return -ENOMEM; /* group 0 */
    /* stack of open groups; top kind tells whether a repeat has an operand */
    int open = 0;
    bool have_operand = false; /* the item before the current position can take a repeat */
    size_t last_repeat = (size_t)-1;
    size_t i = 0;
    while (i < x->n) {
        size_t repeat = (size_t)-1;
        char c = x->whole[i];
        switch (c) {
        case '(':
            if (i + 1 < x->n && x->whole[i + 1] == '?') {
                size_t s = i;
                size_t t = i + 2;
                /* named capture */
                if ((x->n - i > 4 && x->whole[i + 2] == 'P' && x->whole[i + 3] == '<') ||
                    (x->n - i > 3 && x->whole[i + 2] == '<')) {
                    size_t begin = x->whole[i + 2] == '<' ? i + 3 : i + 4;
                    const char *e = memchr(x->whole + i, '>', x->n - i);
                    if (e == NULL) return rx_err(x, "invalid named capture", x->whole + s, x->n - s);
                    size_t end = (size_t)(e - x->whole);
                    bool ok = end > begin;
                    for (size_t k = begin; k < end; k++)
                        if (!is_word(x->whole[k])) ok = false;
                    if (!ok) return rx_err(x, "invalid named capture", x->whole + s, end + 1 - s);
                    char *nm = lq_strdup(a, x->whole + begin, end - begin);
                    if (nm == NULL) return -ENOMEM;
                    if (rx_names_add(a, names, st_str(nm, end - begin)) < 0) return -ENOMEM;
                    emit(x, "(", 1);
                    if (++x->depth > 1000) return rx_err(x, "expression nests too deeply", x->whole, x->n);
                    open++;
                    have_operand = false;
                    i = end + 1;
                    break;
                }
                /* flags: (?flags) or (?flags:re) */
                int sign = 1;
                bool saw = false;
                size_t fstart = t;
                for (;;) {
                    if (t >= x->n)
                        return rx_err(x, "invalid or unsupported Perl syntax", x->whole + s, t - s);
                    uint32_t fc;
                    t += (size_t)next_rune(x, t, &fc);
                    if (fc == 'i' || fc == 'm' || fc == 's' || fc == 'U') {
                        saw = true;
                        continue;
                    }
                    if (fc == '-') {
                        if (sign < 0)
                            return rx_err(x, "invalid or unsupported Perl syntax", x->whole + s, t - s);
                        sign = -1;
                        saw = false;
                        continue;
                    }
                    if (fc == ':' || fc == ')') {
                        if (sign < 0 && !saw)
                            return rx_err(x, "invalid or unsupported Perl syntax", x->whole + s, t - s);
                        emit(x, "(?", 2);
                        emit(x, x->whole + fstart, t - fstart);
                        if (fc == ':') {
                            if (++x->depth > 1000)
                                return rx_err(x, "expression nests too deeply", x->whole, x->n);
                            open++;
                            have_operand = false;
                        }
                        break;
                    }
                    return rx_err(x, "invalid or unsupported Perl syntax", x->whole + s, t - s);
                }
                i = t;
                break;
            }
            if (rx_names_add(a, names, st_str("", 0)) < 0) return -ENOMEM;
            emit(x, "(", 1);
            if (++x->depth > 1000) return rx_err(x, "expression nests too deeply", x->whole, x->n);
            open++;
            have_operand = false;
            i++;
            break;
        case '|':
            emit(x, "|", 1);
            have_operand = false;
            i++;
            break;
        case ')':
            if (open == 0) return rx_err(x, "unexpected )", x->whole, x->n);
            open--;
            x->depth--;
            emit(x, ")", 1);
            have_operand = true;
            i++;
            break;
        case '^':
            emits(x, "(?:^)");
            have_operand = true;
            i++;
            break;
        case '$':
            emits(x, "(?:$)");
            have_operand = true;
            i++;
            break;
        case '.':
            emit(x, ".", 1);
            have_operand = true;
            i++;
            break;
        case '[': {
            size_t nt;
            int rc = parse_class(x, i, &nt);
            if (rc) return rc;
            have_operand = true;
            i = nt;
            break;
        }
        case '*':
        case '+':
        case '?':
        case '{': {
            size_t before = i, after;
            int min = 0, max = 0;
            if (c == '{') {
                if (!parse_repeat(x->whole, x->n, i, &min, &max, &after)) {
                    emits(x, "\\{");
                    have_operand = true;
                    i++;
                    break;
                }
                if (min < 0 || min > 1000 || max > 1000 || (max >= 0 && min > max))
                    return rx_err(x, "invalid repeat count", x->whole + before, after - before);
            } else {
                after = i + 1;
            }
            size_t op_end = after;
            if (after < x->n && x->whole[after] == '?') after++;
            if (last_repeat != (size_t)-1)
                return rx_err(x, "invalid nested repetition operator", x->whole + last_repeat,
                              after - last_repeat);
            if (!have_operand)
                return rx_err(x, "missing argument to repetition operator", x->whole + before,
                              after - before);
            emit(x, x->whole + before, op_end - before);
            if (after > op_end) emit(x, "?", 1);
            repeat = before;
            i = after;
            break;
        }
        case '\\': {
            if (i + 1 < x->n) {
                char e = x->whole[i + 1];
                if (e == 'A' || e == 'b' || e == 'B' || e == 'z') {
                    emits(x, "(?:");
                    emit(x, x->whole + i, 2);
                    emits(x, ")");
                    have_operand = true;
                    i += 2;
                    break;
                }
                if (e == 'C') return rx_err(x, "invalid escape sequence", x->whole + i, 2);
                if (e == 'Q') {
                    size_t st = i + 2;
                    size_t en = x->n, nx = x->n;
                    for (size_t k = st; k + 1 < x->n; k++)
                        if (x->whole[k] == '\\' && x->whole[k + 1] == 'E') {
                            en = k;
                            nx = k + 2;
                            break;
                        }
                    for (size_t k = st; k < en;) {
                        uint32_t r;
                        int w = next_rune(x, k, &r);
                        emit_lit(x, r, x->whole + k, w);
                        have_operand = true;
                        k += (size_t)w;
                    }
                    i = nx;
                    break;
                }
            }
            size_t nt;
            int uerr;
            if (unicode_class(x, i, &nt, &uerr)) {
                have_operand = true;
                i = nt;
                break;
            }
            if (uerr) return uerr;
            if (perl_class(x, i, false, &nt)) {
                have_operand = true;
                i = nt;
                break;
            }
            uint32_t r;
            int rc = parse_escape(x, i, &r, &nt);
            if (rc) return rc;
            if (r < 0x80 || r > 0x10FFFF) {
                emit_hex(x, r);
            } else {
                emit_hex(x, r);
            }
            have_operand = true;
            i = nt;
            break;
        }
        default: {
            uint32_t r;
            int w = next_rune(x, i, &r);
            emit_lit(x, r, x->whole + i, w);
            have_operand = true;
            i += (size_t)w;
        }
        }
        last_repeat = repeat;
        if (x->oom) return -ENOMEM;
    }
    if (open != 0) return rx_err(x, "missing closing )", x->whole, x->n);
    return x->oom ? -ENOMEM : 0;
}

static int compile(lq_arena_t *a, rx_t *x, int flags, pcre2_code **out)
{
    st_buf_t pat = ST_BUF_INIT;
    int rc = 0;
    if ((flags & LQ_RE_ANCHORED) != 0) {
        if (st_buf_puts(&pat, "^(?:") < 0 ||
            st_buf_append(&pat, x->out.data ? x->out.data : "", x->out.len) < 0 ||
            st_buf_puts(&pat, ")$") < 0) {
            st_buf_free(&pat);
            return -ENOMEM;
        }
    } else if (st_buf_append(&pat, x->out.data ? x->out.data : "", x->out.len) < 0) {
        st_buf_free(&pat);
        return -ENOMEM;
    }
    uint32_t opts = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NO_UTF_CHECK;
    if ((flags & LQ_RE_DOTALL) != 0) opts |= PCRE2_DOTALL;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) {
        st_buf_free(&pat);
        return -ENOMEM;
    }
    pcre2_set_parens_nest_limit(cc, 2000);
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(pat.data ? pat.data : ""), pat.len, opts, &ec, &eo, cc);
    pcre2_compile_context_free(cc);
    st_buf_free(&pat);
    if (code == NULL) {
        if (ec == PCRE2_ERROR_NOMEMORY) return -ENOMEM;
        PCRE2_UCHAR m[256];
        pcre2_get_error_message(ec, m, sizeof m);
        if (ec == PCRE2_ERROR_UNKNOWN_UNICODE_PROPERTY || ec == PCRE2_ERROR_MALFORMED_UNICODE_PROPERTY)
            snprintf(x->msg, x->msgsz, "error parsing regexp: invalid character class range: `%.*s`",
                     (int)x->n, x->whole);
        else
            snprintf(x->msg, x->msgsz, "error parsing regexp: %s: `%.*s`", (const char *)m, (int)x->n,
                     x->whole);
        return ST_EPARSE;
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    if (lq_arena_own_code(a, code) < 0) {
        pcre2_code_free(code);
        return -ENOMEM;
    }
    *out = code;
    (void)rc;
    return 0;
}

int lq_regex_compile(lq_arena_t *a, st_str_t re, int flags, pcre2_code **out, char *msg, size_t msgsz)
{
    rx_t x = {re.p ? re.p : "", re.n, ST_BUF_INIT, msg, msgsz, 0, 0};
    int rc = translate(a, &x, NULL);
    if (rc == 0) rc = compile(a, &x, flags, out);
    st_buf_free(&x.out);
    return rc;
}

/* For the regexp parser stage: also returns capture names by group index. */
int lq_regex_compile_named(lq_arena_t *a, st_str_t re, pcre2_code **out, st_str_t **names, size_t *n,
                           char *msg, size_t msgsz)
{
    rx_t x = {re.p ? re.p : "", re.n, ST_BUF_INIT, msg, msgsz, 0, 0};
    rx_names_t nm = {NULL, 0, 0};
    int rc = translate(a, &x, &nm);
    if (rc == 0) rc = compile(a, &x, 0, out);
    st_buf_free(&x.out);
    if (rc == 0) {
        *names = nm.v;
        *n = nm.n;
    }
    return rc;
}

bool lq_regex_matches_empty(const pcre2_code *code)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (md == NULL) return false;
    int rc = pcre2_match(code, (PCRE2_SPTR) "", 0, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}
