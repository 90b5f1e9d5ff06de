/* lex.c: the LogQL lexer, modelled rune for rune on Loki's lexer (lex.go) and its copy of Go's
 * text/scanner, so token boundaries, contextual keywords and error positions (including the
 * "line 0" quirk after look-ahead consumption) match Loki. It does not parse. */
#include "querier/logql/logql_int.h"

#include "common/err.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LQ_EOF (-1)
/* text/scanner token classes */
enum { SC_IDENT = -2, SC_INT = -3, SC_FLOAT = -4, SC_CHAR = -5, SC_STRING = -6, SC_RAW = -7 };

static const char *const token_names[T_COUNT_] = {
    [T_EOF] = "$end",
    [T_BYTES] = "BYTES",
    [T_IDENTIFIER] = "IDENTIFIER",
    [T_STRING] = "STRING",
    [T_NUMBER] = "NUMBER",
    [T_FUNCTION_FLAG] = "FUNCTION_FLAG",
    [T_DURATION] = "DURATION",
    [T_RANGE] = "RANGE",
    [T_MATCHERS] = "MATCHERS",
    [T_LABELS] = "LABELS",
    [T_EQ] = "=",
    [T_RE] = "=~",
    [T_NRE] = "!~",
    [T_NPA] = "!>",
    [T_OPEN_BRACE] = "{",
    [T_CLOSE_BRACE] = "}",
    [T_OPEN_BRACKET] = "[",
    [T_CLOSE_BRACKET] = "]",
    [T_COMMA] = ",",
    [T_DOT] = ".",
    [T_PIPE_MATCH] = "|~",
    [T_PIPE_EXACT] = "|=",
    [T_PIPE_PATTERN] = "|>",
    [T_OPEN_PAREN] = "(",
    [T_CLOSE_PAREN] = ")",
    [T_BY] = "by",
    [T_WITHOUT] = "without",
    [T_COUNT_OVER_TIME] = "COUNT_OVER_TIME",
    [T_RATE] = "RATE",
    [T_RATE_COUNTER] = "RATE_COUNTER",
    [T_SUM] = "SUM",
    [T_SORT] = "SORT",
    [T_SORT_DESC] = "SORT_DESC",
    [T_AVG] = "AVG",
    [T_MAX] = "MAX",
    [T_MIN] = "MIN",
    [T_COUNT] = "COUNT",
    [T_STDDEV] = "STDDEV",
    [T_STDVAR] = "STDVAR",
    [T_BOTTOMK] = "BOTTOMK",
    [T_TOPK] = "TOPK",
    [T_APPROX_TOPK] = "APPROX_TOPK",
    [T_BYTES_OVER_TIME] = "BYTES_OVER_TIME",
    [T_BYTES_RATE] = "BYTES_RATE",
    [T_BOOL] = "bool",
    [T_JSON] = "json",
    [T_REGEXP] = "regexp",
    [T_LOGFMT] = "logfmt",
    [T_PIPE] = "|",
    [T_LINE_FMT] = "line_format",
    [T_LABEL_FMT] = "label_format",
    [T_UNWRAP] = "unwrap",
    [T_AVG_OVER_TIME] = "AVG_OVER_TIME",
    [T_SUM_OVER_TIME] = "SUM_OVER_TIME",
    [T_MIN_OVER_TIME] = "MIN_OVER_TIME",
    [T_MAX_OVER_TIME] = "MAX_OVER_TIME",
    [T_STDVAR_OVER_TIME] = "STDVAR_OVER_TIME",
    [T_STDDEV_OVER_TIME] = "STDDEV_OVER_TIME",
    [T_QUANTILE_OVER_TIME] = "QUANTILE_OVER_TIME",
    [T_BYTES_CONV] = "BYTES_CONV",
    [T_DURATION_CONV] = "DURATION_CONV",
    [T_DURATION_SECONDS_CONV] = "DURATION_SECONDS_CONV",
    [T_FIRST_OVER_TIME] = "FIRST_OVER_TIME",
    [T_LAST_OVER_TIME] = "LAST_OVER_TIME",
    [T_ABSENT_OVER_TIME] = "ABSENT_OVER_TIME",
    [T_VECTOR] = "VECTOR",
    [T_LABEL_REPLACE] = "label_replace",
    [T_UNPACK] = "unpack",
    [T_OFFSET] = "offset",
    [T_PATTERN] = "pattern",
    [T_IP] = "ip",
    [T_ON] = "on",
    [T_IGNORING] = "ignoring",
    [T_GROUP_LEFT] = "group_left",
    [T_GROUP_RIGHT] = "group_right",
    [T_DECOLORIZE] = "decolorize",
    [T_DROP] = "drop",
    [T_KEEP] = "keep",
    [T_OR] = "or",
    [T_AND] = "and",
    [T_UNLESS] = "unless",
    [T_CMP_EQ] = "==",
    [T_NEQ] = "!=",
    [T_LT] = "<",
    [T_LTE] = "<=",
    [T_GT] = ">",
    [T_GTE] = ">=",
    [T_ADD] = "+",
    [T_SUB] = "-",
    [T_MUL] = "*",
    [T_DIV] = "/",
    [T_MOD] = "%",
    [T_POW] = "^",
    [T_BOGUS_IDENT] = "IDENTIFIER",
};

const char *lq_token_name(int t)
{
    if (t < 0 || t >= T_COUNT_ || token_names[t] == NULL) return "$unk";
    return token_names[t];
}

typedef struct {
    const char *word;
    int tok;
} kw_t;

/* Keywords only when followed by "(" or "by (" / "without (" (lex.go functionTokens). */
static const kw_t function_tokens[] = {
    {"rate", T_RATE},
    {"rate_counter", T_RATE_COUNTER},
    {"count_over_time", T_COUNT_OVER_TIME},
    {"bytes_rate", T_BYTES_RATE},
    {"bytes_over_time", T_BYTES_OVER_TIME},
    {"avg_over_time", T_AVG_OVER_TIME},
    {"sum_over_time", T_SUM_OVER_TIME},
    {"min_over_time", T_MIN_OVER_TIME},
    {"max_over_time", T_MAX_OVER_TIME},
    {"stdvar_over_time", T_STDVAR_OVER_TIME},
    {"stddev_over_time", T_STDDEV_OVER_TIME},
    {"quantile_over_time", T_QUANTILE_OVER_TIME},
    {"first_over_time", T_FIRST_OVER_TIME},
    {"last_over_time", T_LAST_OVER_TIME},
    {"absent_over_time", T_ABSENT_OVER_TIME},
    {"vector", T_VECTOR},
    {"sum", T_SUM},
    {"avg", T_AVG},
    {"max", T_MAX},
    {"min", T_MIN},
    {"count", T_COUNT},
    {"stddev", T_STDDEV},
    {"stdvar", T_STDVAR},
    {"bottomk", T_BOTTOMK},
    {"topk", T_TOPK},
    {"sort", T_SORT},
    {"sort_desc", T_SORT_DESC},
    {"label_replace", T_LABEL_REPLACE},
    {"approx_topk", T_APPROX_TOPK},
    {"bytes", T_BYTES_CONV},
    {"duration", T_DURATION_CONV},
    {"duration_seconds", T_DURATION_SECONDS_CONV},
    {"ip", T_IP},
};

/* Always keywords (lex.go tokens), matched on the lower-cased text. */
static const kw_t plain_tokens[] = {
    {",", T_COMMA},
    {".", T_DOT},
    {"{", T_OPEN_BRACE},
    {"}", T_CLOSE_BRACE},
    {"=", T_EQ},
    {"!=", T_NEQ},
    {"=~", T_RE},
    {"!~", T_NRE},
    {"!>", T_NPA},
    {"|=", T_PIPE_EXACT},
    {"|~", T_PIPE_MATCH},
    {"|>", T_PIPE_PATTERN},
    {"|", T_PIPE},
    {"unwrap", T_UNWRAP},
    {"(", T_OPEN_PAREN},
    {")", T_CLOSE_PAREN},
    {"by", T_BY},
    {"without", T_WITHOUT},
    {"bool", T_BOOL},
    {"[", T_OPEN_BRACKET},
    {"]", T_CLOSE_BRACKET},
    {"label_replace", T_LABEL_REPLACE},
    {"offset", T_OFFSET},
    {"on", T_ON},
    {"ignoring", T_IGNORING},
    {"group_left", T_GROUP_LEFT},
    {"group_right", T_GROUP_RIGHT},
    {"or", T_OR},
    {"and", T_AND},
    {"unless", T_UNLESS},
    {"+", T_ADD},
    {"-", T_SUB},
    {"*", T_MUL},
    {"/", T_DIV},
    {"%", T_MOD},
    {"^", T_POW},
    {"==", T_CMP_EQ},
    {">", T_GT},
    {">=", T_GTE},
    {"<", T_LT},
    {"<=", T_LTE},
    {"json", T_JSON},
    {"regexp", T_REGEXP},
    {"logfmt", T_LOGFMT},
    {"unpack", T_UNPACK},
    {"pattern", T_PATTERN},
    {"label_format", T_LABEL_FMT},
    {"line_format", T_LINE_FMT},
    {"ip", T_IP},
    {"decolorize", T_DECOLORIZE},
    {"drop", T_DROP},
    {"keep", T_KEEP},
};

static int kw_lookup(const kw_t *tab, size_t n, const char *w, size_t wn)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(tab[i].word) == wn && memcmp(tab[i].word, w, wn) == 0) return tab[i].tok;
    return -1;
}

/* ---- errors ---- */

void lq_fail_at(lq_lexer_t *L, int line, int col, const char *fmt, ...)
{
    if (L->err != NULL) {
        L->err->line = line;
        L->err->col = col;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(L->err->msg, sizeof L->err->msg, fmt, ap);
        va_end(ap);
    }
    *L->rc = ST_EPARSE;
    longjmp(*L->jb, 1);
}

void lq_fail_oom(lq_lexer_t *L)
{
    *L->rc = -ENOMEM;
    longjmp(*L->jb, 1);
}

/* An error seen by the scanner is reported at the lexer's current token position (Loki passes the
 * scanner's messages to lexer.Error, which reads the real scanner's Position). */
static _Noreturn void sc_error(lq_lexer_t *L, const char *msg)
{
    lq_fail_at(L, L->s.tline, L->s.tcol, "%s", msg);
}

/* ---- scanner ---- */

static int32_t sc_next(lq_lexer_t *L, lq_scanner_t *s)
{
    if (s->pos >= s->n) {
        if (s->last_char_len > 0) s->column++;
        s->last_char_len = 0;
        return LQ_EOF;
    }
    const unsigned char *p = (const unsigned char *)s->src + s->pos;
    int32_t ch = p[0];
    int w = 1;
    if (ch >= 0x80) {
        ch = lq_decode_rune(p, s->n - s->pos, &w);
        if (ch == 0xFFFD && w == 1) {
            s->pos += 1;
            s->last_char_len = 1;
            s->column++;
            s->tok_end = s->pos - 1;
            sc_error(L, "invalid UTF-8 encoding");
        }
    }
    s->pos += (size_t)w;
    s->last_char_len = w;
    s->column++;
    if (ch == 0) {
        s->tok_end = s->pos - (size_t)s->last_char_len;
        sc_error(L, "invalid character NUL");
    }
    if (ch == '\n') {
        s->line++;
        s->last_line_len = s->column;
        s->column = 0;
    }
    return ch;
}

static int32_t sc_peek(lq_lexer_t *L, lq_scanner_t *s)
{
    if (s->ch == -2) {
        s->ch = sc_next(L, s);
        if (s->ch == 0xFEFF) s->ch = sc_next(L, s);
    }
    return s->ch;
}

static int32_t sc_Next(lq_lexer_t *L, lq_scanner_t *s)
{
    s->tok_pos = -1;
    s->tline = 0;
    int32_t ch = sc_peek(L, s);
    if (ch != LQ_EOF) s->ch = sc_next(L, s);
    return ch;
}

static bool is_ident_rune(int32_t ch, int i)
{
    if (ch < 0) return false;
    if (ch == '_' || (ch < 0x80 && isalpha(ch))) return true;
    if (ch < 0x80) return i > 0 && ch >= '0' && ch <= '9';
    return lq_is_letter(ch) || (lq_is_digit(ch) && i > 0);
}

static bool is_decimal(int32_t ch)
{
    return ch >= '0' && ch <= '9';
}
static int32_t lower_ascii(int32_t ch)
{
    return ('a' - 'A') | ch;
}
static bool is_hex(int32_t ch)
{
    return is_decimal(ch) || (lower_ascii(ch) >= 'a' && lower_ascii(ch) <= 'f');
}

static const char *litname(int32_t prefix)
{
    switch (prefix) {
    case 'x': return "hexadecimal literal";
    case 'o':
    case '0': return "octal literal";
    case 'b': return "binary literal";
    default: return "decimal literal";
    }
}

/* Go's %q of a rune, for scanner messages. */
static void quote_rune(int32_t r, char *out, size_t n)
{
    if (r >= 0x20 && r < 0x7f && r != '\'' && r != '\\')
        snprintf(out, n, "'%c'", (char)r);
    else if (r == '\'')
        snprintf(out, n, "'\\''");
    else if (r == '\\')
        snprintf(out, n, "'\\\\'");
    else if (r < 0x80)
        snprintf(out, n, "'\\x%02x'", (unsigned)r);
    else {
        unsigned char b[4];
        int k;
        if (r < 0x800) {
            b[0] = (unsigned char)(0xC0 | (r >> 6));
            b[1] = (unsigned char)(0x80 | (r & 0x3F));
            k = 2;
        } else if (r < 0x10000) {
            b[0] = (unsigned char)(0xE0 | (r >> 12));
            b[1] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
            b[2] = (unsigned char)(0x80 | (r & 0x3F));
            k = 3;
        } else {
            b[0] = (unsigned char)(0xF0 | (r >> 18));
            b[1] = (unsigned char)(0x80 | ((r >> 12) & 0x3F));
            b[2] = (unsigned char)(0x80 | ((r >> 6) & 0x3F));
            b[3] = (unsigned char)(0x80 | (r & 0x3F));
            k = 4;
        }
        snprintf(out, n, "'%.*s'", k, (const char *)b);
    }
}

static int32_t sc_digits(lq_lexer_t *L, lq_scanner_t *s, int32_t ch, int base, int32_t *invalid, int *digsep)
{
    *digsep = 0;
    if (base <= 10) {
        int32_t max = '0' + base;
        while (is_decimal(ch) || ch == '_') {
            int ds = 1;
            if (ch == '_')
                ds = 2;
            else if (ch >= max && *invalid == 0)
                *invalid = ch;
            *digsep |= ds;
            ch = sc_next(L, s);
        }
    } else {
        while (is_hex(ch) || ch == '_') {
            *digsep |= ch == '_' ? 2 : 1;
            ch = sc_next(L, s);
        }
    }
    return ch;
}

/* Index of the first misplaced '_' in a number literal, or -1 (Go's invalidSep). */
static long invalid_sep(const char *x, size_t n)
{
    int32_t x1 = ' ', d = '.';
    size_t i = 0;
    if (n >= 2 && x[0] == '0') {
        x1 = lower_ascii((unsigned char)x[1]);
        if (x1 == 'x' || x1 == 'o' || x1 == 'b') {
            d = '0';
            i = 2;
        }
    }
    for (; i < n; i++) {
        int32_t p = d;
        d = (unsigned char)x[i];
        if (d == '_') {
            if (p != '0') return (long)i;
        } else if (is_decimal(d) || (x1 == 'x' && is_hex(d))) {
            d = '0';
        } else {
            if (p == '_') return (long)i - 1;
            d = '.';
        }
    }
    if (d == '_') return (long)n - 1;
    return -1;
}

static int32_t sc_number(lq_lexer_t *L, lq_scanner_t *s, int32_t ch, bool seen_dot, int *tok)
{
    int base = 10;
    int32_t prefix = 0;
    int digsep = 0, ds;
    int32_t invalid = 0;
    char m[96];
    if (!seen_dot) {
        *tok = SC_INT;
        if (ch == '0') {
            ch = sc_next(L, s);
            switch (lower_ascii(ch)) {
            case 'x':
                ch = sc_next(L, s);
                base = 16;
                prefix = 'x';
                break;
            case 'o':
                ch = sc_next(L, s);
                base = 8;
                prefix = 'o';
                break;
            case 'b': {
                /* Loki's scanner tests the stale one-rune look-ahead here. */
                int32_t pk = sc_peek(L, s);
                if (pk == '0' || pk == '1') {
                    ch = sc_next(L, s);
                    base = 2;
                    prefix = 'b';
                }
                break;
            }
            default:
                base = 8;
                prefix = '0';
                digsep = 1;
            }
        }
        ch = sc_digits(L, s, ch, base, &invalid, &ds);
        digsep |= ds;
        if (ch == '.') {
            ch = sc_next(L, s);
            seen_dot = true;
        }
    }
    if (seen_dot) {
        *tok = SC_FLOAT;
        if (prefix == 'o' || prefix == 'b') {
            snprintf(m, sizeof m, "invalid radix point in %s", litname(prefix));
            s->tok_end = s->pos - (size_t)s->last_char_len;
            sc_error(L, m);
        }
        ch = sc_digits(L, s, ch, base, &invalid, &ds);
        digsep |= ds;
    }
    if ((digsep & 1) == 0) {
        snprintf(m, sizeof m, "%s has no digits", litname(prefix));
        sc_error(L, m);
    }
    int32_t e = lower_ascii(ch);
    if (e == 'e' || (e == 'p' && prefix == 'x')) {
        if (e == 'e' && prefix != 0 && prefix != '0') {
            char q[16];
            quote_rune(ch, q, sizeof q);
            snprintf(m, sizeof m, "%s exponent requires decimal mantissa", q);
            sc_error(L, m);
        }
        ch = sc_next(L, s);
        *tok = SC_FLOAT;
        if (ch == '+' || ch == '-') ch = sc_next(L, s);
        int32_t dummy = 0;
        ch = sc_digits(L, s, ch, 10, &dummy, &ds);
        digsep |= ds;
        if ((ds & 1) == 0) sc_error(L, "exponent has no digits");
    } else if (prefix == 'x' && *tok == SC_FLOAT) {
        sc_error(L, "hexadecimal mantissa requires a 'p' exponent");
    }
    if (*tok == SC_INT && invalid != 0) {
        char q[16];
        quote_rune(invalid, q, sizeof q);
        snprintf(m, sizeof m, "invalid digit %s in %s", q, litname(prefix));
        sc_error(L, m);
    }
    if (digsep & 2) {
        s->tok_end = s->pos - (size_t)s->last_char_len;
        if (s->tok_pos >= 0 && invalid_sep(s->src + s->tok_pos, s->tok_end - (size_t)s->tok_pos) >= 0)
            sc_error(L, "'_' must separate successive digits");
    }
    return ch;
}

static int digit_val(int32_t ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (lower_ascii(ch) >= 'a' && lower_ascii(ch) <= 'f') return lower_ascii(ch) - 'a' + 10;
    return 16;
}

static int32_t sc_scan_digits(lq_lexer_t *L, lq_scanner_t *s, int32_t ch, int base, int n)
{
    while (n > 0 && digit_val(ch) < base) {
        ch = sc_next(L, s);
        n--;
    }
    if (n > 0) sc_error(L, "invalid char escape");
    return ch;
}

static int32_t sc_escape(lq_lexer_t *L, lq_scanner_t *s, int32_t quote)
{
    int32_t ch = sc_next(L, s);
    switch (ch) {
    case 'a':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
    case 'v':
    case '\\': ch = sc_next(L, s); break;
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7': ch = sc_scan_digits(L, s, ch, 8, 3); break;
    case 'x': ch = sc_scan_digits(L, s, sc_next(L, s), 16, 2); break;
    case 'u': ch = sc_scan_digits(L, s, sc_next(L, s), 16, 4); break;
    case 'U': ch = sc_scan_digits(L, s, sc_next(L, s), 16, 8); break;
    default:
        if (ch == quote) {
            ch = sc_next(L, s);
            break;
        }
        sc_error(L, "invalid char escape");
    }
    return ch;
}

static int sc_string(lq_lexer_t *L, lq_scanner_t *s, int32_t quote)
{
    int32_t ch = sc_next(L, s);
    int n = 0;
    while (ch != quote) {
        if (ch == '\n' || ch < 0) {
            s->tok_end = s->pos - (size_t)s->last_char_len;
            sc_error(L, "literal not terminated");
        }
        if (ch == '\\')
            ch = sc_escape(L, s, quote);
        else
            ch = sc_next(L, s);
        n++;
    }
    return n;
}

static void sc_raw_string(lq_lexer_t *L, lq_scanner_t *s)
{
    int32_t ch = sc_next(L, s);
    while (ch != '`') {
        if (ch < 0) sc_error(L, "literal not terminated");
        ch = sc_next(L, s);
    }
}

static int32_t sc_comment(lq_lexer_t *L, lq_scanner_t *s, int32_t ch)
{
    if (ch == '/') {
        ch = sc_next(L, s);
        while (ch != '\n' && ch >= 0) ch = sc_next(L, s);
        return ch;
    }
    ch = sc_next(L, s);
    for (;;) {
        if (ch < 0) sc_error(L, "comment not terminated");
        int32_t ch0 = ch;
        ch = sc_next(L, s);
        if (ch0 == '*' && ch == '/') {
            ch = sc_next(L, s);
            break;
        }
    }
    return ch;
}

static bool is_ws(int32_t ch)
{
    return ch == '\t' || ch == '\n' || ch == '\r' || ch == ' ';
}

/* Go's Scanner.Scan with the GoTokens mode Loki uses. */
static int sc_scan(lq_lexer_t *L, lq_scanner_t *s)
{
    int32_t ch = sc_peek(L, s);
    s->tok_pos = -1;
    s->tline = 0;
redo:
    while (is_ws(ch)) ch = sc_next(L, s);
    s->tok_pos = (long)(s->pos - (size_t)s->last_char_len);
    if (s->column > 0) {
        s->tline = s->line;
        s->tcol = s->column;
    } else {
        s->tline = s->line - 1;
        s->tcol = s->last_line_len;
    }
    int tok = ch;
    if (is_ident_rune(ch, 0)) {
        tok = SC_IDENT;
        ch = sc_next(L, s);
        for (int i = 1; is_ident_rune(ch, i); i++) ch = sc_next(L, s);
    } else if (is_decimal(ch)) {
        ch = sc_number(L, s, ch, false, &tok);
    } else {
        switch (ch) {
        case LQ_EOF: break;
        case '"':
            sc_string(L, s, '"');
            tok = SC_STRING;
            ch = sc_next(L, s);
            break;
        case '\'':
            if (sc_string(L, s, '\'') != 1) sc_error(L, "invalid char literal");
            tok = SC_CHAR;
            ch = sc_next(L, s);
            break;
        case '.':
            ch = sc_next(L, s);
            if (is_decimal(ch)) ch = sc_number(L, s, ch, true, &tok);
            break;
        case '/':
            ch = sc_next(L, s);
            if (ch == '/' || ch == '*') {
                s->tok_pos = -1;
                ch = sc_comment(L, s, ch);
                goto redo;
            }
            break;
        case '`':
            sc_raw_string(L, s);
            tok = SC_RAW;
            ch = sc_next(L, s);
            break;
        default: ch = sc_next(L, s);
        }
    }
    s->tok_end = s->pos - (size_t)s->last_char_len;
    s->ch = ch;
    return tok;
}

static st_str_t sc_text(const lq_scanner_t *s)
{
    if (s->tok_pos < 0) return st_str(s->src, 0);
    size_t end = s->tok_end < (size_t)s->tok_pos ? (size_t)s->tok_pos : s->tok_end;
    return st_str(s->src + s->tok_pos, end - (size_t)s->tok_pos);
}

/* ---- Lex ---- */

static bool is_duration_rune(int32_t r)
{
    switch (r) {
    case 'n':
    case 'u':
    case 0xB5:
    case 'm':
    case 's':
    case 'h':
    case 'd':
    case 'w':
    case 'y': return true;
    default: return false;
    }
}

static bool is_bytes_rune(int32_t r)
{
    switch (r) {
    case 'B':
    case 'i':
    case 'k':
    case 'K':
    case 'M':
    case 'G':
    case 'T':
    case 'P': return true;
    default: return false;
    }
}

static int put_rune(st_buf_t *b, int32_t r)
{
    char tmp[4];
    int k;
    if (r < 0x80) {
        tmp[0] = (char)r;
        k = 1;
    } else if (r < 0x800) {
        tmp[0] = (char)(0xC0 | (r >> 6));
        tmp[1] = (char)(0x80 | (r & 0x3F));
        k = 2;
    } else if (r < 0x10000) {
        tmp[0] = (char)(0xE0 | (r >> 12));
        tmp[1] = (char)(0x80 | ((r >> 6) & 0x3F));
        tmp[2] = (char)(0x80 | (r & 0x3F));
        k = 3;
    } else {
        tmp[0] = (char)(0xF0 | (r >> 18));
        tmp[1] = (char)(0x80 | ((r >> 12) & 0x3F));
        tmp[2] = (char)(0x80 | ((r >> 6) & 0x3F));
        tmp[3] = (char)(0x80 | (r & 0x3F));
        k = 4;
    }
    return st_buf_append(b, tmp, (size_t)k);
}

/* Collects the runes after a number that could belong to a duration or byte size (tryScanDuration
 * and tryScanBytes scan a copy of the scanner up to the next space). */
static int scan_suffix(lq_lexer_t *L, st_str_t number, bool bytes, st_buf_t *sb)
{
    lq_scanner_t c = L->s;
    int consumed = 0;
    st_buf_reset(sb);
    if (st_buf_append(sb, number.p, number.n) < 0) lq_fail_oom(L);
    for (int32_t r = sc_peek(L, &c); r != LQ_EOF && !lq_is_space(r); r = sc_peek(L, &c)) {
        bool ok = lq_is_number(r) || r == '.' || (bytes ? is_bytes_rune(r) : is_duration_rune(r));
        if (!ok) break;
        if (put_rune(sb, r) < 0) lq_fail_oom(L);
        sc_Next(L, &c);
        consumed++;
    }
    return consumed;
}

static void consume(lq_lexer_t *L, int k)
{
    for (int i = 0; i < k; i++) sc_Next(L, &L->s);
}

/* Loki's parseDuration: Prometheus units first, then Go's. */
int st_logql_parse_duration(st_str_t s, int64_t *out_ns)
{
    char msg[8];
    if (lq_parse_prom_duration(s, out_ns, msg, sizeof msg) == 0) return 0;
    return lq_parse_go_duration(s, out_ns);
}

int st_logql_parse_bytes(st_str_t s, uint64_t *out)
{
    return lq_parse_bytes(s, out);
}

static bool try_duration(lq_lexer_t *L, st_str_t number, int64_t *d)
{
    int k = scan_suffix(L, number, false, &L->tmp);
    if (k == 0) return false;
    if (st_logql_parse_duration(st_str(L->tmp.data, L->tmp.len), d) != 0) return false;
    consume(L, k);
    return true;
}

static bool try_bytes(lq_lexer_t *L, st_str_t number, uint64_t *b)
{
    int k = scan_suffix(L, number, true, &L->tmp);
    if (k == 0) return false;
    if (lq_parse_bytes(st_str(L->tmp.data, L->tmp.len), b) != 0) return false;
    consume(L, k);
    return true;
}

static bool try_flag(lq_lexer_t *L, st_str_t *flag)
{
    lq_scanner_t c = L->s;
    int consumed = 0;
    size_t start = (size_t)L->s.tok_pos;
    st_buf_t *sb = &L->tmp;
    st_buf_reset(sb);
    if (st_buf_append(sb, "-", 1) < 0) lq_fail_oom(L);
    for (int32_t r = sc_peek(L, &c); lq_is_letter(r) || r == '-'; r = sc_peek(L, &c)) {
        if (put_rune(sb, r) < 0) lq_fail_oom(L);
        sc_Next(L, &c);
        consumed++;
    }
    st_str_t f = st_str(sb->data, sb->len);
    if (!st_str_eqc(f, "--strict") && !st_str_eqc(f, "--keep-empty")) return false;
    consume(L, consumed);
    *flag = st_str(L->s.src + start, f.n);
    return true;
}

/* Skips Unicode white space on a scanner copy (lex.go trimSpace). */
static void trim_space(lq_lexer_t *L, lq_scanner_t *c)
{
    for (int32_t r = sc_peek(L, c); r != LQ_EOF; r = sc_peek(L, c)) {
        if (!lq_is_space(r)) return;
        sc_Next(L, c);
    }
}

/* lex.go isFunction: the next non-space text is "(" or "by (" / "without (" (any case). Loki keeps
 * reading to the end of the input when nothing matches, which surfaces a later invalid byte as an
 * error at this token; that is reproduced through bad_off. */
static bool is_function(lq_lexer_t *L)
{
    lq_scanner_t c = L->s;
    trim_space(L, &c);
    static const char *const words[] = {"(", "by", "without"};
    char sb[8];
    size_t n = 0;
    for (;;) {
        int32_t r = sc_Next(L, &c);
        if (r == LQ_EOF) return false;
        if (r >= 0x80 || n == sizeof sb) break;
        sb[n++] = (char)tolower(r);
        bool prefix = false;
        for (int i = 0; i < 3; i++) {
            size_t wl = strlen(words[i]);
            if (wl == n && memcmp(words[i], sb, n) == 0) {
                if (i == 0) return true;
                trim_space(L, &c);
                return sc_Next(L, &c) == '(';
            }
            if (wl > n && memcmp(words[i], sb, n) == 0) prefix = true;
        }
        if (!prefix) break;
    }
    /* No match possible any more: Go scans on to EOF. */
    if (L->bad_off < L->s.n && L->bad_off >= c.pos)
        sc_error(L, L->bad_is_nul ? "invalid character NUL" : "invalid UTF-8 encoding");
    return false;
}

/* Lower-cases a token for keyword lookup (ASCII, plus the Kelvin sign that Go maps to 'k'). */
static size_t lower_token(st_str_t t, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < t.n && n < cap; i++) {
        unsigned char c = (unsigned char)t.p[i];
        if (c == 0xE2 && i + 2 < t.n && (unsigned char)t.p[i + 1] == 0x84 &&
            (unsigned char)t.p[i + 2] == 0xAA) {
            out[n++] = 'k';
            i += 2;
            continue;
        }
        out[n++] = (char)tolower(c);
    }
    return n;
}

void lq_lexer_init(lq_lexer_t *L, const char *q, size_t n, lq_arena_t *arena)
{
    memset(L, 0, sizeof *L);
    L->s.src = q;
    L->s.n = n;
    L->s.ch = -2;
    L->s.line = 1;
    L->s.tok_pos = -1;
    L->arena = arena;
    L->tmp = ST_BUF_INIT;
    /* First byte that the scanner will complain about (invalid UTF-8 or NUL). */
    L->bad_off = n;
    for (size_t i = 0; i < n;) {
        const unsigned char *p = (const unsigned char *)q + i;
        if (*p == 0) {
            L->bad_off = i;
            L->bad_is_nul = true;
            break;
        }
        int w = 1;
        if (*p >= 0x80) {
            int32_t r = lq_decode_rune(p, n - i, &w);
            if (r == 0xFFFD && w == 1) {
                L->bad_off = i;
                break;
            }
        }
        i += (size_t)w;
    }
}

void lq_lexer_dispose(lq_lexer_t *L)
{
    st_buf_free(&L->tmp);
}

static void set_pos(lq_lexer_t *L, lq_token_t *t)
{
    t->line = L->s.tline;
    t->col = L->s.tcol;
}

void lq_lex(lq_lexer_t *L, lq_token_t *t)
{
    memset(t, 0, sizeof *t);
again:;
    int r = sc_scan(L, &L->s);
    t->off = L->s.tok_pos >= 0 ? (size_t)L->s.tok_pos : L->s.pos;
    switch (r) {
    case '#':
        for (int32_t nx = sc_peek(L, &L->s); nx != '\n' && nx != LQ_EOF; nx = sc_Next(L, &L->s)) {
        }
        goto again;
    case LQ_EOF:
        t->type = T_EOF;
        set_pos(L, t);
        return;
    case SC_INT:
    case SC_FLOAT: {
        st_str_t num = sc_text(&L->s);
        t->text = num;
        if (try_duration(L, num, &t->dur)) {
            t->type = T_DURATION;
        } else if (try_bytes(L, num, &t->bytes)) {
            t->type = T_BYTES;
        } else {
            t->type = T_NUMBER;
        }
        set_pos(L, t);
        return;
    }
    case '-':
        if (sc_peek(L, &L->s) == '-') {
            st_str_t flag;
            if (try_flag(L, &flag)) {
                t->type = T_FUNCTION_FLAG;
                t->text = flag;
                set_pos(L, t);
                return;
            }
        }
        if (try_duration(L, st_str("-", 1), &t->dur)) {
            t->type = T_DURATION;
            set_pos(L, t);
            return;
        }
        break;
    case SC_STRING:
    case SC_RAW: {
        st_str_t text = sc_text(&L->s);
        st_buf_reset(&L->tmp);
        int rc = lq_unquote(text, &L->tmp);
        if (rc == -ENOMEM) lq_fail_oom(L);
        if (rc != 0) lq_fail_at(L, L->s.tline, L->s.tcol, "invalid syntax");
        char *p = lq_strdup(L->arena, L->tmp.data ? L->tmp.data : "", L->tmp.len);
        if (p == NULL) lq_fail_oom(L);
        t->type = T_STRING;
        t->str = st_str(p, L->tmp.len);
        t->text = text;
        set_pos(L, t);
        return;
    }
    default: break;
    }

    if (r == '[') {
        st_buf_t *sb = &L->tmp;
        st_buf_reset(sb);
        for (int32_t c = sc_Next(L, &L->s); c != LQ_EOF; c = sc_Next(L, &L->s)) {
            if (c == ']') {
                char msg[300];
                int64_t d;
                if (lq_parse_prom_duration(st_str(sb->data ? sb->data : "", sb->len), &d, msg, sizeof msg) !=
                    0)
                    lq_fail_at(L, L->s.tline, L->s.tcol, "%s", msg);
                t->type = T_RANGE;
                t->dur = d;
                set_pos(L, t);
                return;
            }
            if (put_rune(sb, c) < 0) lq_fail_oom(L);
        }
        lq_fail_at(L, L->s.tline, L->s.tcol, "missing closing ']' in duration");
    }

    st_str_t text = sc_text(&L->s);
    char low[64];
    size_t ln = text.n < sizeof low - 4 ? lower_token(text, low, sizeof low - 4) : 0;
    t->text = text;
    if (ln > 0) {
        int ft = kw_lookup(function_tokens, sizeof function_tokens / sizeof function_tokens[0], low, ln);
        if (ft >= 0) {
            if (!is_function(L)) {
                t->type = T_IDENTIFIER;
                set_pos(L, t);
                return;
            }
            t->type = ft;
            set_pos(L, t);
            return;
        }
        /* two-character operators: the token plus the next rune */
        int32_t pk = sc_peek(L, &L->s);
        if (pk > 0 && pk < 0x80 && ln + 1 < sizeof low) {
            low[ln] = (char)tolower(pk);
            int tt = kw_lookup(plain_tokens, sizeof plain_tokens / sizeof plain_tokens[0], low, ln + 1);
            if (tt >= 0) {
                sc_Next(L, &L->s);
                t->type = tt;
                set_pos(L, t);
                return;
            }
        }
        int tt = kw_lookup(plain_tokens, sizeof plain_tokens / sizeof plain_tokens[0], low, ln);
        if (tt >= 0) {
            t->type = tt;
            set_pos(L, t);
            return;
        }
    }
    t->type = r == SC_IDENT ? T_IDENTIFIER : T_BOGUS_IDENT;
    set_pos(L, t);
}
