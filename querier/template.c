/* template.c: a Go text/template implementation for LogQL's line_format and label_format: Go's
 * lexer (delimiters, trim markers, comments), parser (pipelines, declarations, if/else if/with/range,
 * break/continue) and executor (fields of the label map, variables, function calls with Go's
 * argument typing, printing with fmt's %v), with Go's error texts. Functions are in
 * template_funcs.c. */
#include "querier/template_int.h"

#include "common/err.h"
#include "common/labels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes --------------------------------------------------------------------------------------- */

enum {
    N_TEXT,
    N_ACTION, /* child: pipe */
    N_IF,     /* child: pipe, list, else_list */
    N_RANGE,
    N_WITH,
    N_LIST, /* v */
    N_BREAK,
    N_CONTINUE,
    N_PIPE,  /* v: commands, decl */
    N_CMD,   /* v: args */
    N_FIELD, /* idents (without dots), text ".a.b" */
    N_CHAIN, /* child: term, idents */
    N_VAR,   /* idents[0] "$x", rest fields; text "$x.a" */
    N_DOT,
    N_NIL,
    N_BOOL,
    N_NUMBER, /* text as written */
    N_STRING, /* text decoded, quoted as written */
    N_IDENT,  /* text: name, fn */
    N_END,    /* parser only */
    N_ELSE,   /* parser only */
};

/* ---- template --------------------------------------------------------------------------------- */

typedef struct pblk {
    struct pblk *next;
    size_t used, cap;
    _Alignas(16) char data[];
} pblk_t;

struct tx_blk {
    struct tx_blk *next;
    size_t used, cap;
    _Alignas(16) char data[];
};

struct st_tmpl {
    char name[16];
    char *src; /* owned copy of the text */
    size_t srcn;
    pblk_t *blocks;   /* parse arena */
    tnode_t *root;    /* N_LIST */
    tnode_t *regexes; /* call sites with a regex cache */
    tx_t x;
    st_label_t *sorted;
    size_t nsorted, capsorted;
    bool sorted_ok;
};

static void *palloc(st_tmpl_t *t, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (t->blocks == NULL || t->blocks->cap - t->blocks->used < n) {
        size_t cap = n > 8192 ? n : 8192;
        pblk_t *b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->next = t->blocks;
        b->used = 0;
        b->cap = cap;
        t->blocks = b;
    }
    void *r = t->blocks->data + t->blocks->used;
    t->blocks->used += n;
    memset(r, 0, n);
    return r;
}

/* ---- lexer -------------------------------------------------------------------------------------- */

enum {
    K_ERROR,
    K_EOF,
    K_TEXT,
    K_LDELIM,
    K_RDELIM,
    K_SPACE,
    K_FIELD,
    K_IDENT,
    K_VAR,
    K_STRING,
    K_RAWSTRING,
    K_CHARCONST,
    K_NUMBER,
    K_COMPLEX,
    K_BOOL,
    K_LPAREN,
    K_RPAREN,
    K_PIPE,
    K_ASSIGN,
    K_DECLARE,
    K_CHAR,
    K_KEYWORD, /* keywords follow */
    K_BLOCK,
    K_BREAK,
    K_CONTINUE,
    K_DOT,
    K_DEFINE,
    K_ELSE,
    K_END,
    K_IF,
    K_NIL,
    K_RANGE,
    K_TEMPLATE,
    K_WITH,
};

typedef struct {
    uint8_t typ;
    uint32_t pos;
    uint32_t line;
    st_str_t val;
} tok_t;

typedef struct {
    const char *in;
    size_t n, pos, start;
    uint32_t line, start_line;
    int paren;
    tok_t *toks;
    size_t ntoks, cap;
    bool failed;
    char errbuf[160];
} lexer_t;

static bool lx_space(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int lx_emit(lexer_t *L, int typ)
{
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 64;
        tok_t *v = realloc(L->toks, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        L->toks = v;
        L->cap = cap;
    }
    L->toks[L->ntoks++] =
        (tok_t){(uint8_t)typ, (uint32_t)L->start, L->start_line, st_str(L->in + L->start, L->pos - L->start)};
    for (size_t i = L->start; i < L->pos; i++)
        if (L->in[i] == '\n') L->line++;
    L->start = L->pos;
    L->start_line = L->line;
    return 0;
}

static void lx_ignore(lexer_t *L)
{
    for (size_t i = L->start; i < L->pos; i++)
        if (L->in[i] == '\n') L->line++;
    L->start = L->pos;
    L->start_line = L->line;
}

static int lx_error(lexer_t *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lx_error(lexer_t *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->errbuf, sizeof L->errbuf, fmt, ap);
    va_end(ap);
    if (L->ntoks == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 64;
        tok_t *v = realloc(L->toks, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        L->toks = v;
        L->cap = cap;
    }
    L->toks[L->ntoks++] = (tok_t){K_ERROR, (uint32_t)L->start, L->start_line, st_cstr(L->errbuf)};
    L->failed = true;
    return 0;
}

static bool has_prefix(const char *p, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    return n >= k && memcmp(p, lit, k) == 0;
}

static bool left_trim_marker(const char *p, size_t n)
{
    return n >= 2 && p[0] == '-' && lx_space(p[1]);
}
static bool right_trim_marker(const char *p, size_t n)
{
    return n >= 2 && lx_space(p[0]) && p[1] == '-';
}

/* 0: not at "}}", 1: at "}}", 2: at " -}}" */
static int at_right_delim(const lexer_t *L)
{
    const char *p = L->in + L->pos;
    size_t r = L->n - L->pos;
    if (right_trim_marker(p, r) && has_prefix(p + 2, r - 2, "}}")) return 2;
    if (has_prefix(p, r, "}}")) return 1;
    return 0;
}

static int32_t lx_peek(const lexer_t *L, int *w)
{
    if (L->pos >= L->n) {
        *w = 0;
        return -1;
    }
    return st_go_rune(L->in + L->pos, L->n - L->pos, w);
}

static bool lx_alnum(int32_t r)
{
    return r == '_' || st_go_is_letter(r) || st_go_is_digit(r);
}

static bool at_terminator(const lexer_t *L)
{
    int w;
    int32_t r = lx_peek(L, &w);
    if (r < 0 || lx_space(r)) return true;
    switch (r) {
    case '.':
    case ',':
    case '|':
    case ':':
    case ')':
    case '(': return true;
    default: break;
    }
    return has_prefix(L->in + L->pos, L->n - L->pos, "}}");
}

static void fmt_rune(char *out, size_t sz, int32_t r)
{
    if (r < 0) {
        snprintf(out, sz, "U+FFFFFFFF");
        return;
    }
    if (r >= 0x20 && r != 0x7F && r != 0xFFFD) {
        char u[8];
        int k = 0;
        st_buf_t b = ST_BUF_INIT;
        st_go_put_rune(&b, r);
        k = b.len < sizeof u - 1 ? (int)b.len : 0;
        if (k) memcpy(u, b.data, (size_t)k);
        u[k] = '\0';
        st_buf_free(&b);
        snprintf(out, sz, "U+%04X '%s'", (unsigned)r, u);
    } else {
        snprintf(out, sz, "U+%04X", (unsigned)r);
    }
}

static bool accept(lexer_t *L, const char *set)
{
    if (L->pos < L->n && L->in[L->pos] != '\0' && strchr(set, L->in[L->pos]) != NULL) {
        L->pos++;
        return true;
    }
    return false;
}

static void accept_run(lexer_t *L, const char *set)
{
    while (accept(L, set)) {
    }
}

static bool scan_number(lexer_t *L)
{
    accept(L, "+-");
    const char *digits = "0123456789_";
    if (accept(L, "0")) {
        if (accept(L, "xX"))
            digits = "0123456789abcdefABCDEF_";
        else if (accept(L, "oO"))
            digits = "01234567_";
        else if (accept(L, "bB"))
            digits = "01_";
    }
    accept_run(L, digits);
    if (accept(L, ".")) accept_run(L, digits);
    if (strlen(digits) == 11 && accept(L, "eE")) {
        accept(L, "+-");
        accept_run(L, "0123456789_");
    }
    if (strlen(digits) == 23 && accept(L, "pP")) {
        accept(L, "+-");
        accept_run(L, "0123456789_");
    }
    accept(L, "i");
    int w;
    int32_t r = lx_peek(L, &w);
    if (r >= 0 && lx_alnum(r)) {
        L->pos += (size_t)w;
        return false;
    }
    return true;
}

static int lex_inside(lexer_t *L);

static int lex_text(lexer_t *L)
{
    for (;;) {
        const char *x = L->pos < L->n ? memmem(L->in + L->pos, L->n - L->pos, "{{", 2) : NULL;
        if (x == NULL) {
            L->pos = L->n;
            if (L->pos > L->start) ST_TRY(lx_emit(L, K_TEXT));
            return lx_emit(L, K_EOF);
        }
        size_t at = (size_t)(x - L->in);
        if (at > L->start) {
            size_t trim = 0;
            if (left_trim_marker(L->in + at + 2, L->n - at - 2)) {
                while (at - trim > L->start && lx_space(L->in[at - trim - 1])) trim++;
            }
            L->pos = at - trim;
            if (L->pos > L->start) ST_TRY(lx_emit(L, K_TEXT));
            L->pos = at;
            lx_ignore(L);
        }
        /* left delimiter */
        L->pos = at + 2;
        bool trim = left_trim_marker(L->in + L->pos, L->n - L->pos);
        size_t after = trim ? 2 : 0;
        if (has_prefix(L->in + L->pos + after, L->n - L->pos - after, "/*")) {
            L->pos += after;
            lx_ignore(L);
            L->pos += 2;
            const char *e = memmem(L->in + L->pos, L->n - L->pos, "*/", 2);
            if (e == NULL) return lx_error(L, "unclosed comment");
            L->pos = (size_t)(e - L->in) + 2;
            int d = at_right_delim(L);
            if (d == 0) return lx_error(L, "comment ends before closing delimiter");
            if (d == 2) L->pos += 2;
            L->pos += 2;
            if (d == 2)
                while (L->pos < L->n && lx_space(L->in[L->pos])) L->pos++;
            lx_ignore(L);
            continue;
        }
        ST_TRY(lx_emit(L, K_LDELIM));
        L->pos += after;
        lx_ignore(L);
        L->paren = 0;
        int rc = lex_inside(L);
        if (rc < 0 || L->failed) return rc;
    }
}

/* Lexes one action up to and including its right delimiter. */
static int lex_inside(lexer_t *L)
{
    char rb[32];
    for (;;) {
        int d = at_right_delim(L);
        if (d) {
            if (L->paren != 0) return lx_error(L, "unclosed left paren");
            if (d == 2) {
                L->pos += 2;
                lx_ignore(L);
            }
            L->pos += 2;
            ST_TRY(lx_emit(L, K_RDELIM));
            if (d == 2) {
                while (L->pos < L->n && lx_space(L->in[L->pos])) L->pos++;
                lx_ignore(L);
            }
            return 0;
        }
        int w;
        int32_t r = lx_peek(L, &w);
        if (r < 0) return lx_error(L, "unclosed action");
        if (lx_space(r)) {
            size_t sp = 0;
            while (L->pos < L->n && lx_space(L->in[L->pos])) {
                L->pos++;
                sp++;
            }
            /* a trim-marked closing delimiter starts with the last space */
            if (right_trim_marker(L->in + L->pos - 1, L->n - L->pos + 1) &&
                has_prefix(L->in + L->pos + 1, L->n - L->pos - 1, "}}")) {
                L->pos--;
                if (sp == 1) continue;
            }
            ST_TRY(lx_emit(L, K_SPACE));
            continue;
        }
        L->pos += (size_t)w;
        switch (r) {
        case '=': ST_TRY(lx_emit(L, K_ASSIGN)); continue;
        case ':':
            if (L->pos >= L->n || L->in[L->pos] != '=') return lx_error(L, "expected :=");
            L->pos++;
            ST_TRY(lx_emit(L, K_DECLARE));
            continue;
        case '|': ST_TRY(lx_emit(L, K_PIPE)); continue;
        case '"':
            for (;;) {
                if (L->pos >= L->n || L->in[L->pos] == '\n') return lx_error(L, "unterminated quoted string");
                char c = L->in[L->pos++];
                if (c == '\\') {
                    if (L->pos >= L->n || L->in[L->pos] == '\n')
                        return lx_error(L, "unterminated quoted string");
                    L->pos++;
                } else if (c == '"') {
                    break;
                }
            }
            ST_TRY(lx_emit(L, K_STRING));
            continue;
        case '`': {
            const char *e = L->pos < L->n ? memchr(L->in + L->pos, '`', L->n - L->pos) : NULL;
            if (e == NULL) return lx_error(L, "unterminated raw quoted string");
            L->pos = (size_t)(e - L->in) + 1;
            ST_TRY(lx_emit(L, K_RAWSTRING));
            continue;
        }
        case '$':
        case '.': {
            if (r == '.' && L->pos < L->n && L->in[L->pos] >= '0' && L->in[L->pos] <= '9') {
                L->pos--;
                goto number;
            }
            if (at_terminator(L)) {
                ST_TRY(lx_emit(L, r == '$' ? K_VAR : K_DOT));
                continue;
            }
            int32_t c;
            for (;;) {
                c = lx_peek(L, &w);
                if (c < 0 || !lx_alnum(c)) break;
                L->pos += (size_t)w;
            }
            if (!at_terminator(L)) {
                fmt_rune(rb, sizeof rb, c);
                return lx_error(L, "bad character %s", rb);
            }
            ST_TRY(lx_emit(L, r == '$' ? K_VAR : K_FIELD));
            continue;
        }
        case '\'':
            for (;;) {
                if (L->pos >= L->n || L->in[L->pos] == '\n')
                    return lx_error(L, "unterminated character constant");
                char c = L->in[L->pos++];
                if (c == '\\') {
                    if (L->pos >= L->n || L->in[L->pos] == '\n')
                        return lx_error(L, "unterminated character constant");
                    L->pos++;
                } else if (c == '\'') {
                    break;
                }
            }
            ST_TRY(lx_emit(L, K_CHARCONST));
            continue;
        case '(':
            ST_TRY(lx_emit(L, K_LPAREN));
            L->paren++;
            continue;
        case ')':
            ST_TRY(lx_emit(L, K_RPAREN));
            L->paren--;
            if (L->paren < 0) return lx_error(L, "unexpected right paren");
            continue;
        default: break;
        }
        if (r == '+' || r == '-' || (r >= '0' && r <= '9')) {
            L->pos -= (size_t)w;
        number:
            if (!scan_number(L)) {
                return lx_error(L, "bad number syntax: \"%.*s\"", (int)(L->pos - L->start), L->in + L->start);
            }
            if (L->pos < L->n && (L->in[L->pos] == '+' || L->in[L->pos] == '-')) {
                if (!scan_number(L) || L->in[L->pos - 1] != 'i')
                    return lx_error(L, "bad number syntax: \"%.*s\"", (int)(L->pos - L->start),
                                    L->in + L->start);
                ST_TRY(lx_emit(L, K_COMPLEX));
                continue;
            }
            ST_TRY(lx_emit(L, K_NUMBER));
            continue;
        }
        if (lx_alnum(r)) {
            int32_t c;
            for (;;) {
                c = lx_peek(L, &w);
                if (c < 0 || !lx_alnum(c)) break;
                L->pos += (size_t)w;
            }
            if (!at_terminator(L)) {
                fmt_rune(rb, sizeof rb, c);
                return lx_error(L, "bad character %s", rb);
            }
            st_str_t word = st_str(L->in + L->start, L->pos - L->start);
            static const struct {
                const char *w;
                int k;
            } kw[] = {{"block", K_BLOCK},
                      {"break", K_BREAK},
                      {"continue", K_CONTINUE},
                      {"define", K_DEFINE},
                      {"else", K_ELSE},
                      {"end", K_END},
                      {"if", K_IF},
                      {"nil", K_NIL},
                      {"range", K_RANGE},
                      {"template", K_TEMPLATE},
                      {"with", K_WITH}};
            int k = K_IDENT;
            for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
                if (st_str_eqc(word, kw[i].w)) k = kw[i].k;
            if (k == K_IDENT && (st_str_eqc(word, "true") || st_str_eqc(word, "false"))) k = K_BOOL;
            ST_TRY(lx_emit(L, k));
            continue;
        }
        if (r < 0x80 && r >= 0x20 && r < 0x7F) {
            ST_TRY(lx_emit(L, K_CHAR));
            continue;
        }
        fmt_rune(rb, sizeof rb, r);
        return lx_error(L, "unrecognized character in action: %s", rb);
    }
}

/* ---- parser ------------------------------------------------------------------------------------- */

#define MAX_NEST 200

typedef struct {
    st_tmpl_t *t;
    tok_t *toks;
    size_t ntoks, i;
    jmp_buf jb;
    int rc;
    char *err;
    size_t errsz;
    uint32_t line;  /* line of the last token read */
    st_str_t *vars; /* declared variable names in scope */
    size_t nvars, capvars;
    int range_depth;
    int depth;
    uint32_t action_line;
} parser_t;

static _Noreturn void p_oom(parser_t *p)
{
    p->rc = -ENOMEM;
    longjmp(p->jb, 1);
}

static _Noreturn void p_fail(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void p_fail(parser_t *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errsz, "template: %s:%u: %s", p->t->name, (unsigned)p->line, msg);
    p->rc = ST_EPARSE;
    longjmp(p->jb, 1);
}

static tok_t *p_next(parser_t *p)
{
    tok_t *k = &p->toks[p->i < p->ntoks ? p->i : p->ntoks - 1];
    if (p->i < p->ntoks) p->i++;
    p->line = k->line;
    return k;
}

static void p_backup(parser_t *p, size_t n)
{
    p->i -= n;
}

static tok_t *p_peek(parser_t *p)
{
    return &p->toks[p->i < p->ntoks ? p->i : p->ntoks - 1];
}

static tok_t *p_next_nonspace(parser_t *p)
{
    tok_t *k;
    do k = p_next(p);
    while (k->typ == K_SPACE);
    return k;
}

static tok_t *p_peek_nonspace(parser_t *p)
{
    size_t save = p->i;
    tok_t *k = p_next_nonspace(p);
    p->i = save;
    return k;
}

/* Go's item String(). */
static void tok_desc(const tok_t *k, char *out, size_t sz)
{
    if (k->typ == K_EOF) {
        snprintf(out, sz, "EOF");
    } else if (k->typ == K_ERROR) {
        snprintf(out, sz, "%.*s", (int)k->val.n, k->val.p);
    } else if (k->typ > K_KEYWORD) {
        snprintf(out, sz, "<%.*s>", (int)k->val.n, k->val.p);
    } else {
        st_buf_t b = ST_BUF_INIT;
        st_str_t v = k->val;
        bool cut = false;
        if (v.n > 10) {
            /* %.10q: ten runes */
            size_t n = 0, runes = 0;
            while (n < v.n && runes < 10) {
                int w;
                st_go_rune(v.p + n, v.n - n, &w);
                n += (size_t)w;
                runes++;
            }
            cut = n < v.n;
            v.n = n;
        }
        st_go_quote(&b, v);
        snprintf(out, sz, "%s%s", st_buf_cstr(&b), cut ? "..." : "");
        st_buf_free(&b);
    }
}

static _Noreturn void p_unexpected(parser_t *p, const tok_t *k, const char *context)
{
    char d[64];
    tok_desc(k, d, sizeof d);
    if (k->typ == K_ERROR) {
        if (p->action_line != 0 && p->action_line != k->line) {
            bool action = k->val.n >= 7 && memcmp(k->val.p + k->val.n - 7, " action", 7) == 0;
            p_fail(p, "%s%s started at %s:%u", d, action ? "" : " in action", p->t->name,
                   (unsigned)p->action_line);
        }
        p_fail(p, "%s", d);
    }
    p_fail(p, "unexpected %s in %s", d, context);
}

static tnode_t *p_node(parser_t *p, int kind, uint32_t pos)
{
    tnode_t *n = palloc(p->t, sizeof *n);
    if (n == NULL) p_oom(p);
    n->kind = (uint8_t)kind;
    n->pos = pos;
    return n;
}

static void p_append(parser_t *p, tnode_t ***v, size_t *n, tnode_t *x)
{
    /* arrays grow by doubling inside the arena (old blocks are simply abandoned) */
    size_t cap = 4;
    while (cap < *n) cap *= 2;
    if (*n == 0 || *n == cap) {
        size_t ncap = *n == 0 ? 4 : cap * 2;
        tnode_t **nv = palloc(p->t, ncap * sizeof *nv);
        if (nv == NULL) p_oom(p);
        if (*n) memcpy(nv, *v, *n * sizeof *nv);
        *v = nv;
    }
    (*v)[(*n)++] = x;
}

static void push_var(parser_t *p, st_str_t name)
{
    if (p->nvars == p->capvars) {
        size_t cap = p->capvars ? p->capvars * 2 : 16;
        st_str_t *v = realloc(p->vars, cap * sizeof *v);
        if (v == NULL) p_oom(p);
        p->vars = v;
        p->capvars = cap;
    }
    p->vars[p->nvars++] = name;
}

/* Splits ".a.b" / "$x.a" into identifiers (fields without the dot). */
static void split_idents(parser_t *p, tnode_t *n, st_str_t text, bool var)
{
    size_t count = 0;
    for (size_t i = 0; i < text.n; i++)
        if (text.p[i] == '.') count++;
    n->idents = palloc(p->t, (count + 1) * sizeof *n->idents);
    if (n->idents == NULL) p_oom(p);
    size_t k = 0, start = var ? 0 : 1;
    for (size_t i = start; i <= text.n; i++) {
        if (i == text.n || (text.p[i] == '.' && i > start)) {
            if (i > start || var) n->idents[k++] = st_str(text.p + start, i - start);
            start = i + 1;
        }
    }
    n->nidents = k;
    n->text = text;
}

static tnode_t *p_pipeline(parser_t *p, const char *context, int end);
static tnode_t *p_list_until(parser_t *p, tnode_t **end_node);
static tnode_t *p_text_or_action(parser_t *p);

/* strconv.UnquoteChar for a character constant 'x' (Go's escapes); false if malformed. */
static bool char_constant(st_str_t t, int32_t *out)
{
    if (t.n < 3 || t.p[0] != '\'' || t.p[t.n - 1] != '\'') return false;
    const char *s = t.p + 1;
    size_t n = t.n - 2, used;
    int32_t r;
    if (s[0] != '\\') {
        int w;
        r = st_go_rune(s, n, &w);
        if (r == 0xFFFD && w == 1) return false;
        used = (size_t)w;
    } else {
        if (n < 2) return false;
        char c = s[1];
        used = 2;
        switch (c) {
        case 'a': r = 7; break;
        case 'b': r = 8; break;
        case 'f': r = 12; break;
        case 'n': r = 10; break;
        case 'r': r = 13; break;
        case 't': r = 9; break;
        case 'v': r = 11; break;
        case '\\': r = '\\'; break;
        case '\'': r = '\''; break;
        case 'x':
        case 'u':
        case 'U': {
            size_t k = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            if (n < 2 + k) return false;
            r = 0;
            for (size_t i = 0; i < k; i++) {
                char h = s[2 + i];
                int v = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (v < 0) return false;
                r = r * 16 + v;
                if (r > 0x10FFFF) return false;
            }
            if (c != 'x' && r >= 0xD800 && r < 0xE000) return false;
            used = 2 + k;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                if (n < 4) return false;
                r = 0;
                for (size_t i = 1; i < 4; i++) {
                    if (s[i] < '0' || s[i] > '7') return false;
                    r = r * 8 + (s[i] - '0');
                }
                if (r > 255) return false;
                used = 4;
                break;
            }
            return false;
        }
    }
    if (used != n) return false;
    *out = r;
    return true;
}

/* Go's parse.newNumber: which of int/uint/float the literal can be. */
static tnode_t *p_number(parser_t *p, const tok_t *k)
{
    tnode_t *n = p_node(p, N_NUMBER, k->pos);
    n->text = k->val;
    st_str_t t = k->val;
    if (k->typ == K_CHARCONST) {
        int32_t r;
        if (!char_constant(t, &r)) p_fail(p, "malformed character constant: %.*s", (int)t.n, t.p);
        n->is_int = n->is_uint = n->is_float = true;
        n->i = r;
        n->f = r;
        return n;
    }
    if (k->typ == K_COMPLEX || (t.n > 0 && t.p[t.n - 1] == 'i'))
        p_fail(p, "complex constants are not supported: %.*s", (int)t.n, t.p);
    uint64_t u;
    if (st_go_parse_uint(t, 0, &u) == 0) {
        n->is_uint = true;
        n->is_float = true;
        n->f = (double)u;
    }
    int64_t iv;
    if (st_go_parse_int(t, 0, &iv) == 0) {
        n->is_int = true;
        n->i = iv;
        n->is_float = true;
        n->f = (double)iv;
        if (iv == 0) n->is_uint = true;
        return n;
    }
    if (n->is_uint) return n;
    double f;
    char tmp[8];
    if (st_go_parse_float(t, &f, tmp, sizeof tmp) == 0) {
        bool floaty = false;
        for (size_t i = 0; i < t.n; i++)
            if (strchr(".eEpP", t.p[i]) != NULL) floaty = true;
        if (!floaty) p_fail(p, "integer overflow: \"%.*s\"", (int)t.n, t.p);
        n->is_float = true;
        n->f = f;
        if (f >= -9223372036854775808.0 && f < 9223372036854775808.0 && (double)(int64_t)f == f) {
            n->is_int = true;
            n->i = (int64_t)f;
        }
        if (f >= 0 && f < 18446744073709551616.0 && (double)(uint64_t)f == f) n->is_uint = true;
        return n;
    }
    p_fail(p, "illegal number syntax: \"%.*s\"", (int)t.n, t.p);
}

static tnode_t *p_term(parser_t *p)
{
    tok_t *k = p_next_nonspace(p);
    switch (k->typ) {
    case K_IDENT: {
        const tfunc_t *fn = tx_func(k->val);
        if (fn == NULL) p_fail(p, "function \"%.*s\" not defined", (int)k->val.n, k->val.p);
        tnode_t *n = p_node(p, N_IDENT, k->pos);
        n->text = k->val;
        n->fn = fn;
        return n;
    }
    case K_DOT: return p_node(p, N_DOT, k->pos);
    case K_NIL: return p_node(p, N_NIL, k->pos);
    case K_VAR: {
        bool found = false;
        for (size_t i = 0; i < p->nvars && !found; i++) found = st_str_eq(p->vars[i], k->val);
        if (!found) p_fail(p, "undefined variable \"%.*s\"", (int)k->val.n, k->val.p);
        tnode_t *n = p_node(p, N_VAR, k->pos);
        split_idents(p, n, k->val, true);
        return n;
    }
    case K_FIELD: {
        tnode_t *n = p_node(p, N_FIELD, k->pos);
        split_idents(p, n, k->val, false);
        return n;
    }
    case K_BOOL: {
        tnode_t *n = p_node(p, N_BOOL, k->pos);
        n->b = st_str_eqc(k->val, "true");
        n->text = k->val;
        return n;
    }
    case K_NUMBER:
    case K_CHARCONST:
    case K_COMPLEX: return p_number(p, k);
    case K_LPAREN: {
        if (++p->depth > MAX_NEST) p_fail(p, "expression nested too deeply");
        tnode_t *n = p_pipeline(p, "parenthesized pipeline", K_RPAREN);
        p->depth--;
        return n;
    }
    case K_STRING:
    case K_RAWSTRING: {
        st_buf_t b = ST_BUF_INIT;
        size_t used;
        int rc = st_go_unquote(k->val, &b, &used);
        if (rc != 0 || used != k->val.n) {
            st_buf_free(&b);
            p_fail(p, "invalid syntax");
        }
        tnode_t *n = p_node(p, N_STRING, k->pos);
        char *d = palloc(p->t, b.len + 1);
        if (d == NULL) {
            st_buf_free(&b);
            p_oom(p);
        }
        if (b.len) memcpy(d, b.data, b.len);
        n->text = st_str(d, b.len);
        n->quoted = k->val;
        st_buf_free(&b);
        return n;
    }
    default: p_backup(p, 1); return NULL;
    }
}

static tnode_t *p_operand(parser_t *p)
{
    tnode_t *node = p_term(p);
    if (node == NULL) return NULL;
    if (p_peek(p)->typ == K_FIELD) {
        size_t start = p->i, count = 0;
        while (p_peek(p)->typ == K_FIELD) {
            p_next(p);
            count++;
        }
        switch (node->kind) {
        case N_FIELD:
        case N_VAR: {
            /* more fields on the original node */
            const char *b = node->text.p;
            const tok_t *last = &p->toks[p->i - 1];
            st_str_t text = st_str(b, (size_t)(last->val.p + last->val.n - b));
            split_idents(p, node, text, node->kind == N_VAR);
            return node;
        }
        case N_BOOL:
        case N_STRING:
        case N_NUMBER:
        case N_NIL:
        case N_DOT: {
            const char *s = node->kind == N_BOOL  ? (node->b ? "true" : "false")
                            : node->kind == N_NIL ? "nil"
                            : node->kind == N_DOT ? "."
                                                  : NULL;
            st_buf_t q = ST_BUF_INIT;
            st_str_t txt = node->kind == N_STRING   ? node->quoted
                           : node->kind == N_NUMBER ? node->text
                                                    : st_cstr(s);
            st_go_quote(&q, txt);
            char msg[200];
            snprintf(msg, sizeof msg, "%s", st_buf_cstr(&q));
            st_buf_free(&q);
            p_fail(p, "unexpected . after term %s", msg);
        }
        default: {
            tnode_t *c = p_node(p, N_CHAIN, p->toks[start].pos);
            c->child = node;
            c->idents = palloc(p->t, count * sizeof *c->idents);
            if (c->idents == NULL) p_oom(p);
            for (size_t i = 0; i < count; i++) {
                st_str_t f = p->toks[start + i].val;
                c->idents[i] = st_str(f.p + 1, f.n - 1);
            }
            c->nidents = count;
            return c;
        }
        }
    }
    return node;
}

static tnode_t *p_command(parser_t *p)
{
    tnode_t *cmd = p_node(p, N_CMD, p_peek_nonspace(p)->pos);
    for (;;) {
        p_peek_nonspace(p);
        tnode_t *op = p_operand(p);
        if (op != NULL) p_append(p, &cmd->v, &cmd->n, op);
        tok_t *k = p_next(p);
        if (k->typ == K_SPACE) continue;
        if (k->typ == K_RDELIM || k->typ == K_RPAREN)
            p_backup(p, 1);
        else if (k->typ != K_PIPE)
            p_unexpected(p, k, "operand");
        break;
    }
    if (cmd->n == 0) p_fail(p, "empty command");
    return cmd;
}

static tnode_t *p_pipeline(parser_t *p, const char *context, int end)
{
    tok_t *first = p_peek_nonspace(p);
    tnode_t *pipe = p_node(p, N_PIPE, first->pos);
decls:
    if (p_peek_nonspace(p)->typ == K_VAR) {
        tok_t *v = p_next_nonspace(p);
        tok_t *after = p_peek(p);
        tok_t *next = p_peek_nonspace(p);
        if (next->typ == K_ASSIGN || next->typ == K_DECLARE) {
            pipe->is_assign = next->typ == K_ASSIGN;
            p_next_nonspace(p);
            tnode_t *vn = p_node(p, N_VAR, v->pos);
            split_idents(p, vn, v->val, true);
            p_append(p, &pipe->decl, &pipe->ndecl, vn);
            push_var(p, v->val);
        } else if (next->typ == K_CHAR && st_str_eqc(next->val, ",")) {
            p_next_nonspace(p);
            tnode_t *vn = p_node(p, N_VAR, v->pos);
            split_idents(p, vn, v->val, true);
            p_append(p, &pipe->decl, &pipe->ndecl, vn);
            push_var(p, v->val);
            if (strcmp(context, "range") == 0 && pipe->ndecl < 2) {
                int t = p_peek_nonspace(p)->typ;
                if (t == K_VAR || t == K_RDELIM || t == K_RPAREN) goto decls;
                p_fail(p, "range can only initialize variables");
            }
            p_fail(p, "too many declarations in %s", context);
        } else {
            (void)after;
            p_backup(p, 1); /* back to the variable: it is an operand */
        }
    }
    for (;;) {
        tok_t *k = p_next_nonspace(p);
        if (k->typ == end) {
            if (pipe->n == 0) p_fail(p, "missing value for %s", context);
            for (size_t i = 1; i < pipe->n; i++) {
                int kind = pipe->v[i]->v[0]->kind;
                if (kind == N_BOOL || kind == N_DOT || kind == N_NIL || kind == N_NUMBER || kind == N_STRING)
                    p_fail(p, "non executable command in pipeline stage %zu", i + 1);
            }
            return pipe;
        }
        switch (k->typ) {
        case K_BOOL:
        case K_CHARCONST:
        case K_COMPLEX:
        case K_DOT:
        case K_FIELD:
        case K_IDENT:
        case K_NUMBER:
        case K_NIL:
        case K_RAWSTRING:
        case K_STRING:
        case K_VAR:
        case K_LPAREN:
            p_backup(p, 1);
            p_append(p, &pipe->v, &pipe->n, p_command(p));
            break;
        default: p_unexpected(p, k, context);
        }
    }
}

static tnode_t *p_control(parser_t *p, int kind, const char *context)
{
    size_t nvars = p->nvars;
    if (++p->depth > MAX_NEST) p_fail(p, "%s nested too deeply", context);
    tnode_t *n = p_node(p, kind, 0);
    tnode_t *pipe = p_pipeline(p, context, K_RDELIM);
    n->pos = pipe->pos;
    n->child = pipe;
    if (kind == N_RANGE) p->range_depth++;
    tnode_t *end;
    n->list = p_list_until(p, &end);
    if (kind == N_RANGE) p->range_depth--;
    if (end->kind == N_ELSE) {
        int t = p_peek(p)->typ;
        if (kind == N_IF && t == K_IF) {
            p_next(p);
            tnode_t *l = p_node(p, N_LIST, end->pos);
            p_append(p, &l->v, &l->n, p_control(p, N_IF, "if"));
            n->else_list = l;
        } else if (kind == N_WITH && t == K_WITH) {
            p_next(p);
            tnode_t *l = p_node(p, N_LIST, end->pos);
            p_append(p, &l->v, &l->n, p_control(p, N_WITH, "with"));
            n->else_list = l;
        } else {
            tnode_t *e2;
            n->else_list = p_list_until(p, &e2);
            if (e2->kind != N_END) p_fail(p, "expected end; found {{else}}");
        }
    }
    p->nvars = nvars;
    p->depth--;
    return n;
}

static tnode_t *p_action(parser_t *p)
{
    tok_t *k = p_next_nonspace(p);
    switch (k->typ) {
    case K_BLOCK:
    case K_TEMPLATE:
    case K_DEFINE: p_fail(p, "{{%.*s}} is not supported", (int)k->val.n, k->val.p);
    case K_BREAK:
    case K_CONTINUE: {
        bool brk = k->typ == K_BREAK;
        tok_t *e = p_next_nonspace(p);
        if (e->typ != K_RDELIM) p_unexpected(p, e, brk ? "{{break}}" : "{{continue}}");
        if (p->range_depth == 0) p_fail(p, "{{%s}} outside {{range}}", brk ? "break" : "continue");
        return p_node(p, brk ? N_BREAK : N_CONTINUE, k->pos);
    }
    case K_ELSE: {
        tok_t *pk = p_peek_nonspace(p);
        if (pk->typ == K_IF || pk->typ == K_WITH) {
            /* "{{else if" is "{{else}}{{if": leave the if pending */
            size_t save = p->i;
            while (p->toks[p->i].typ == K_SPACE) p->i++;
            (void)save;
            return p_node(p, N_ELSE, pk->pos);
        }
        tok_t *e = p_next_nonspace(p);
        if (e->typ != K_RDELIM) p_unexpected(p, e, "else");
        return p_node(p, N_ELSE, e->pos);
    }
    case K_END: {
        tok_t *e = p_next_nonspace(p);
        if (e->typ != K_RDELIM) p_unexpected(p, e, "end");
        return p_node(p, N_END, e->pos);
    }
    case K_IF: return p_control(p, N_IF, "if");
    case K_RANGE: return p_control(p, N_RANGE, "range");
    case K_WITH: return p_control(p, N_WITH, "with");
    default: break;
    }
    p_backup(p, 1);
    tok_t *pk = p_peek(p);
    tnode_t *a = p_node(p, N_ACTION, pk->pos);
    a->child = p_pipeline(p, "command", K_RDELIM);
    return a;
}

static tnode_t *p_text_or_action(parser_t *p)
{
    tok_t *k = p_next_nonspace(p);
    switch (k->typ) {
    case K_TEXT: {
        tnode_t *n = p_node(p, N_TEXT, k->pos);
        n->text = k->val;
        return n;
    }
    case K_LDELIM: {
        uint32_t saved = p->action_line;
        p->action_line = k->line;
        tnode_t *n = p_action(p);
        p->action_line = saved;
        return n;
    }
    default: p_unexpected(p, k, "input");
    }
}

static tnode_t *p_list_until(parser_t *p, tnode_t **end_node)
{
    tnode_t *list = p_node(p, N_LIST, p_peek_nonspace(p)->pos);
    while (p_peek_nonspace(p)->typ != K_EOF) {
        tnode_t *n = p_text_or_action(p);
        if (n->kind == N_END || n->kind == N_ELSE) {
            *end_node = n;
            return list;
        }
        p_append(p, &list->v, &list->n, n);
    }
    p_fail(p, "unexpected EOF");
}

/* Records call sites that keep a regex cache, so st_tmpl_free can release them. */
static void collect_regex_sites(st_tmpl_t *t, tnode_t *n)
{
    if (n == NULL) return;
    if (n->kind == N_CMD && n->n > 0 && n->v[0]->kind == N_IDENT && n->v[0]->fn != NULL) {
        const char *nm = n->v[0]->fn->name;
        if (strcmp(nm, "regexReplaceAll") == 0 || strcmp(nm, "regexReplaceAllLiteral") == 0 ||
            strcmp(nm, "count") == 0) {
            n->next_re = t->regexes;
            t->regexes = n;
        }
    }
    collect_regex_sites(t, n->child);
    collect_regex_sites(t, n->list);
    collect_regex_sites(t, n->else_list);
    for (size_t i = 0; i < n->n; i++) collect_regex_sites(t, n->v[i]);
}

int st_tmpl_parse(const char *name, st_str_t src, st_tmpl_t **out, char *err, size_t errsz)
{
    /* execution state is written on every entry: keep it off other objects' cache lines */
    st_tmpl_t *t = aligned_alloc(64, (sizeof *t + 63) & ~(size_t)63);
    if (t == NULL) return -ENOMEM;
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->src = malloc(src.n + 1);
    if (t->src == NULL) {
        free(t);
        return -ENOMEM;
    }
    if (src.n) memcpy(t->src, src.p, src.n);
    t->src[src.n] = '\0';
    t->srcn = src.n;
    t->x.t = t;
    lexer_t L;
    memset(&L, 0, sizeof L);
    L.in = t->src;
    L.n = src.n;
    L.line = L.start_line = 1;
    int rc = lex_text(&L);
    if (rc == 0 && L.failed) {
        /* make sure an EOF follows the error token */
        rc = lx_emit(&L, K_EOF);
    }
    if (rc < 0) {
        free(L.toks);
        st_tmpl_free(t);
        return rc;
    }
    parser_t P;
    memset(&P, 0, sizeof P);
    P.t = t;
    P.toks = L.toks;
    P.ntoks = L.ntoks;
    P.err = err;
    P.errsz = errsz;
    P.line = 1;
    if (setjmp(P.jb) == 0) {
        push_var(&P, ST_STR("$"));
        t->root = p_node(&P, N_LIST, 0);
        while (p_peek(&P)->typ != K_EOF) {
            tnode_t *n = p_text_or_action(&P);
            if (n->kind == N_END) p_fail(&P, "unexpected {{end}}");
            if (n->kind == N_ELSE) p_fail(&P, "unexpected {{else}}");
            p_append(&P, &t->root->v, &t->root->n, n);
        }
        rc = 0;
    } else {
        rc = P.rc;
    }
    free(P.vars);
    free(L.toks);
    if (rc < 0) {
        st_tmpl_free(t);
        return rc;
    }
    collect_regex_sites(t, t->root);
    *out = t;
    return 0;
}

static void tx_arena_free(tx_t *x)
{
    struct tx_blk *b = x->blk_head;
    while (b) {
        struct tx_blk *n = b->next;
        free(b);
        b = n;
    }
    x->blk_head = x->blk_cur = NULL;
}

void st_tmpl_free(st_tmpl_t *t)
{
    if (t == NULL) return;
    for (tnode_t *n = t->regexes; n; n = n->next_re) tx_re_free(n->re);
    pblk_t *b = t->blocks;
    while (b) {
        pblk_t *n = b->next;
        free(b);
        b = n;
    }
    tx_arena_free(&t->x);
    free(t->x.vars);
    st_buf_free(&t->x.fnerr);
    st_buf_free(&t->x.msg);
    st_buf_free(&t->x.tmp);
    free(t->sorted);
    free(t->src);
    free(t);
}

bool st_tmpl_simple_field(const st_tmpl_t *t, st_str_t *name)
{
    if (t->root == NULL || t->root->n != 1) return false;
    const tnode_t *a = t->root->v[0];
    if (a->kind != N_ACTION || a->child->ndecl != 0 || a->child->n != 1) return false;
    const tnode_t *cmd = a->child->v[0];
    if (cmd->n != 1 || cmd->v[0]->kind != N_FIELD || cmd->v[0]->nidents != 1) return false;
    *name = cmd->v[0]->idents[0];
    return true;
}

/* ---- execution ------------------------------------------------------------------------------------ */

_Noreturn void tx_oom(tx_t *x)
{
    x->rc = -ENOMEM;
    longjmp(x->jb, 1);
}

char *tx_alloc(tx_t *x, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    while (x->blk_cur && x->blk_cur->cap - x->blk_cur->used < n) {
        x->blk_cur = x->blk_cur->next;
        if (x->blk_cur) x->blk_cur->used = 0;
    }
    if (x->blk_cur == NULL) {
        size_t cap = n > 16384 ? n : 16384;
        struct tx_blk *b = malloc(sizeof *b + cap);
        if (b == NULL) tx_oom(x);
        b->next = NULL;
        b->used = 0;
        b->cap = cap;
        struct tx_blk **pp = &x->blk_head;
        while (*pp) pp = &(*pp)->next;
        *pp = b;
        x->blk_cur = b;
    }
    char *r = x->blk_cur->data + x->blk_cur->used;
    x->blk_cur->used += n;
    return r;
}

st_str_t tx_strdup(tx_t *x, const char *p, size_t n)
{
    if (n == 0) return st_str("", 0);
    char *d = tx_alloc(x, n);
    memcpy(d, p, n);
    return st_str(d, n);
}

st_str_t tx_buf_str(tx_t *x, const st_buf_t *b)
{
    return tx_strdup(x, b->data, b->len);
}

int tx_fn_fail(tx_t *x, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_buf_reset(&x->fnerr);
    if (st_buf_puts(&x->fnerr, msg) < 0) tx_oom(x);
    return -1;
}

/* Appends a node's text form (Go's Node.String()). */
static void node_string(st_buf_t *b, const tnode_t *n)
{
    switch (n->kind) {
    case N_FIELD:
    case N_VAR:
    case N_IDENT:
    case N_NUMBER:
    case N_BOOL: st_buf_append(b, n->text.p, n->text.n); break;
    case N_STRING: st_buf_append(b, n->quoted.p, n->quoted.n); break;
    case N_DOT: st_buf_putc(b, '.'); break;
    case N_NIL: st_buf_puts(b, "nil"); break;
    case N_CHAIN:
        if (n->child->kind == N_PIPE) st_buf_putc(b, '(');
        node_string(b, n->child);
        if (n->child->kind == N_PIPE) st_buf_putc(b, ')');
        for (size_t i = 0; i < n->nidents; i++) {
            st_buf_putc(b, '.');
            st_buf_append(b, n->idents[i].p, n->idents[i].n);
        }
        break;
    case N_PIPE:
        for (size_t i = 0; i < n->ndecl; i++) {
            if (i) st_buf_puts(b, ", ");
            node_string(b, n->decl[i]);
        }
        if (n->ndecl) st_buf_puts(b, n->is_assign ? " = " : " := ");
        for (size_t i = 0; i < n->n; i++) {
            if (i) st_buf_puts(b, " | ");
            node_string(b, n->v[i]);
        }
        break;
    case N_CMD:
        for (size_t i = 0; i < n->n; i++) {
            if (i) st_buf_putc(b, ' ');
            if (n->v[i]->kind == N_PIPE) {
                st_buf_putc(b, '(');
                node_string(b, n->v[i]);
                st_buf_putc(b, ')');
            } else {
                node_string(b, n->v[i]);
            }
        }
        break;
    case N_ACTION:
        st_buf_puts(b, "{{");
        node_string(b, n->child);
        st_buf_puts(b, "}}");
        break;
    case N_IF:
    case N_RANGE:
    case N_WITH:
        st_buf_puts(b, n->kind == N_IF ? "{{if " : n->kind == N_RANGE ? "{{range " : "{{with ");
        node_string(b, n->child);
        st_buf_puts(b, "}}");
        break;
    default: break;
    }
}

static _Noreturn void tx_fail(tx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void tx_fail(tx_t *x, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_buf_t *m = &x->msg;
    st_buf_reset(m);
    const st_tmpl_t *t = x->t;
    if (x->at == NULL) {
        st_buf_printf(m, "template: %s: %s", t->name, msg);
    } else {
        size_t pos = x->at->pos <= t->srcn ? x->at->pos : t->srcn;
        size_t line = 1, last_nl = (size_t)-1;
        for (size_t i = 0; i < pos; i++)
            if (t->src[i] == '\n') {
                line++;
                last_nl = i;
            }
        size_t col = last_nl == (size_t)-1 ? pos : pos - last_nl - 1;
        st_buf_printf(m, "template: %s:%zu:%zu: executing \"%s\" at <", t->name, line, col, t->name);
        node_string(m, x->at);
        st_buf_printf(m, ">: %s", msg);
    }
    x->rc = ST_EPARSE;
    longjmp(x->jb, 1);
}

const char *tx_type_name(const tval_t *v)
{
    switch (v->k) {
    case V_STR: return "string";
    case V_INT: return "int";
    case V_INT64: return "int64";
    case V_FLOAT: return "float64";
    case V_BOOL: return "bool";
    case V_TIME: return "time.Time";
    case V_MAP: return "map[string]string";
    default: return "<nil>";
    }
}

bool tx_truth(const tval_t *v, bool *ok)
{
    *ok = true;
    switch (v->k) {
    case V_NIL: return false;
    case V_STR: return v->s.n > 0;
    case V_INT:
    case V_INT64: return v->i != 0;
    case V_FLOAT: return v->f != 0;
    case V_BOOL: return v->b;
    case V_TIME: return true;
    case V_MAP: return v->i > 0;
    default: *ok = false; return false;
    }
}

static int cmp_label(const void *a, const void *b)
{
    return st_str_cmp(((const st_label_t *)a)->name, ((const st_label_t *)b)->name);
}

const st_label_t *tx_sorted_labels(tx_t *x, size_t *n)
{
    st_tmpl_t *t = x->t;
    if (!t->sorted_ok) {
        if (x->d->n > t->capsorted) {
            st_label_t *v = realloc(t->sorted, x->d->n * sizeof *v);
            if (v == NULL) tx_oom(x);
            t->sorted = v;
            t->capsorted = x->d->n;
        }
        if (x->d->n) memcpy(t->sorted, x->d->labels, x->d->n * sizeof *t->sorted);
        if (x->d->n > 1) qsort(t->sorted, x->d->n, sizeof *t->sorted, cmp_label);
        t->nsorted = x->d->n;
        t->sorted_ok = true;
    }
    *n = t->nsorted;
    return t->sorted;
}

st_str_t tx_map_get(tx_t *x, st_str_t key, bool *found)
{
    for (size_t i = 0; i < x->d->n; i++) {
        if (st_str_eq(x->d->labels[i].name, key)) {
            if (found) *found = true;
            return x->d->labels[i].value;
        }
    }
    if (found) *found = false;
    return st_str("", 0);
}

/* Counts work against TX_MAX_WORK. */
static void charge(tx_t *x, uint64_t n)
{
    x->work += n;
    if (x->work > TX_MAX_WORK) tx_fail(x, "template execution is too expensive");
}

static void put_checked(tx_t *x, st_buf_t *b, const void *p, size_t n)
{
    charge(x, n);
    if (b->len + n > TX_MAX_STR + x->out_start) tx_fail(x, "output too large");
    if (st_buf_append(b, p, n) < 0) tx_oom(x);
}

void tx_print(tx_t *x, st_buf_t *b, const tval_t *v)
{
    char t[64];
    size_t n;
    int rc = 0;
    switch (v->k) {
    case V_STR: rc = st_buf_append(b, v->s.p, v->s.n); break;
    case V_INT:
    case V_INT64:
        n = (size_t)snprintf(t, sizeof t, "%lld", (long long)v->i);
        rc = st_buf_append(b, t, n);
        break;
    case V_FLOAT:
        n = st_go_fmt_float(v->f, t);
        rc = st_buf_append(b, t, n);
        break;
    case V_BOOL: rc = st_buf_puts(b, v->b ? "true" : "false"); break;
    case V_TIME: rc = st_go_time_string(&v->t, b); break;
    case V_MAP: {
        size_t cnt;
        const st_label_t *l = tx_sorted_labels(x, &cnt);
        rc = st_buf_puts(b, "map[");
        for (size_t i = 0; i < cnt && rc == 0; i++) {
            if (i) rc = st_buf_putc(b, ' ');
            if (rc == 0) rc = st_buf_append(b, l[i].name.p, l[i].name.n);
            if (rc == 0) rc = st_buf_putc(b, ':');
            if (rc == 0) rc = st_buf_append(b, l[i].value.p, l[i].value.n);
        }
        if (rc == 0) rc = st_buf_putc(b, ']');
        break;
    }
    default: rc = st_buf_puts(b, "<no value>"); break;
    }
    if (rc < 0) tx_oom(x);
}

/* ---- variables ---- */

static void var_push(tx_t *x, st_str_t name, tval_t v)
{
    if (x->nvars == x->capvars) {
        size_t cap = x->capvars ? x->capvars * 2 : 16;
        tvar_t *nv = realloc(x->vars, cap * sizeof *nv);
        if (nv == NULL) tx_oom(x);
        x->vars = nv;
        x->capvars = cap;
    }
    x->vars[x->nvars++] = (tvar_t){name, v};
}

static tval_t var_value(tx_t *x, st_str_t name)
{
    for (size_t i = x->nvars; i > 0; i--)
        if (st_str_eq(x->vars[i - 1].name, name)) return x->vars[i - 1].v;
    tx_fail(x, "undefined variable: %.*s", (int)name.n, name.p);
}

static void var_set(tx_t *x, st_str_t name, tval_t v)
{
    for (size_t i = x->nvars; i > 0; i--) {
        if (st_str_eq(x->vars[i - 1].name, name)) {
            x->vars[i - 1].v = v;
            return;
        }
    }
    tx_fail(x, "undefined variable: %.*s", (int)name.n, name.p);
}

/* ---- evaluation ---- */

static const tval_t NIL = {V_NIL, {{NULL, 0}}};
static const tval_t MISSING = {0xFF, {{NULL, 0}}}; /* no final (piped) value */

static bool missing(const tval_t *v)
{
    return v->k == 0xFF;
}

static tval_t eval_pipeline(tx_t *x, tval_t dot, tnode_t *pipe);
static tval_t ideal_number(tx_t *x, tnode_t *n);
static tval_t eval_arg(tx_t *x, tval_t dot, char ptype, tnode_t *n);

static void not_a_function(tx_t *x, tnode_t *cmd, const tval_t *final)
{
    if (cmd->n > 1 || !missing(final)) {
        st_buf_t b = ST_BUF_INIT;
        node_string(&b, cmd->v[0]);
        char s[256];
        snprintf(s, sizeof s, "%s", st_buf_cstr(&b));
        st_buf_free(&b);
        tx_fail(x, "can't give argument to non-function %s", s);
    }
}

static tval_t time_method(tx_t *x, tval_t recv, st_str_t name, tnode_t *cmd, const tval_t *final, bool *ok);

/* Go's evalField: receiver.name (map key, or a time.Time method). */
static tval_t eval_field(tx_t *x, st_str_t name, tnode_t *cmd, const tval_t *final, tval_t recv)
{
    bool has_args = (cmd != NULL && cmd->n > 1) || !missing(final);
    if (recv.k == V_NIL) return NIL;
    if (recv.k == V_TIME) {
        bool ok;
        tval_t r = time_method(x, recv, name, cmd, final, &ok);
        if (ok) return r;
    }
    if (recv.k == V_MAP) {
        if (has_args) tx_fail(x, "%.*s is not a method but has arguments", (int)name.n, name.p);
        tval_t r;
        r.k = V_STR;
        r.s = tx_map_get(x, name, NULL);
        return r;
    }
    tx_fail(x, "can't evaluate field %.*s in type %s", (int)name.n, name.p, tx_type_name(&recv));
}

static tval_t eval_field_chain(tx_t *x, tval_t recv, const st_str_t *idents, size_t n, tnode_t *cmd,
                               const tval_t *final)
{
    for (size_t i = 0; i + 1 < n; i++) recv = eval_field(x, idents[i], NULL, &MISSING, recv);
    return eval_field(x, idents[n - 1], cmd, final, recv);
}

static tval_t eval_call(tx_t *x, tval_t dot, const tfunc_t *fn, tnode_t *ident, tnode_t *cmd,
                        const tval_t *final)
{
    const char *ps = fn->params;
    size_t np = strlen(ps);
    bool variadic = np > 0 && ps[np - 1] == '*';
    if (variadic) np--;
    size_t nargs = cmd != NULL && cmd->n > 0 ? cmd->n - 1 : 0;
    tnode_t **args = cmd != NULL ? cmd->v + 1 : NULL;
    size_t num_in = nargs + (missing(final) ? 0 : 1);
    size_t nfixed = variadic ? np - 1 : np;
    if (variadic) {
        if (num_in < nfixed)
            tx_fail(x, "wrong number of args for %s: want at least %zu got %zu", fn->name, nfixed, nargs);
    } else if (num_in != np) {
        tx_fail(x, "wrong number of args for %s: want %zu got %zu", fn->name, np, num_in);
    }
    /* and/or short-circuit and return one of their arguments */
    if (strcmp(fn->name, "and") == 0 || strcmp(fn->name, "or") == 0) {
        bool is_or = fn->name[0] == 'o';
        tval_t v = NIL;
        for (size_t i = 0; i < nargs; i++) {
            v = eval_arg(x, dot, P_VAL, args[i]);
            bool ok;
            if (tx_truth(&v, &ok) == is_or) return v;
        }
        if (!missing(final)) v = *final;
        return v;
    }
    tval_t stackv[8];
    tval_t *argv = num_in <= 8 ? stackv : (tval_t *)(void *)tx_alloc(x, num_in * sizeof *argv);
    size_t i = 0;
    for (; i < nfixed && i < nargs; i++) argv[i] = eval_arg(x, dot, ps[i], args[i]);
    if (variadic)
        for (; i < nargs; i++) argv[i] = eval_arg(x, dot, ps[np - 1], args[i]);
    if (!missing(final)) {
        char pt = variadic ? (num_in - 1 < nfixed ? ps[num_in - 1] : ps[np - 1]) : ps[np - 1];
        tval_t f = *final;
        /* validateType */
        if (pt != P_ANY && pt != P_VAL) {
            static const struct {
                char p;
                uint8_t k;
                const char *name;
            } want[] = {{P_STR, V_STR, "string"},
                        {P_INT, V_INT, "int"},
                        {P_FLOAT, V_FLOAT, "float64"},
                        {P_BOOL, V_BOOL, "bool"},
                        {P_TIME, V_TIME, "time.Time"}};
            for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
                if (want[k].p != pt) continue;
                if (f.k == V_NIL) tx_fail(x, "invalid value; expected %s", want[k].name);
                if (f.k != want[k].k)
                    tx_fail(x, "wrong type for value; expected %s; got %s", want[k].name, tx_type_name(&f));
            }
        }
        argv[i++] = f;
    }
    uint64_t cost = 16;
    for (size_t k = 0; k < i; k++)
        if (argv[k].k == V_STR) cost += argv[k].s.n;
    charge(x, cost);
    tval_t out = NIL;
    st_buf_reset(&x->fnerr);
    if (fn->fn(x, cmd, argv, i, &out) != 0) {
        x->at = cmd != NULL ? cmd : ident;
        tx_fail(x, "error calling %s: %.*s", fn->name, (int)x->fnerr.len, x->fnerr.data ? x->fnerr.data : "");
    }
    if (out.k == V_STR) charge(x, out.s.n);
    return out;
}

static tval_t eval_function(tx_t *x, tval_t dot, tnode_t *ident, tnode_t *cmd, const tval_t *final)
{
    x->at = ident;
    if (ident->fn == NULL)
        tx_fail(x, "\"%.*s\" is not a defined function", (int)ident->text.n, ident->text.p);
    return eval_call(x, dot, ident->fn, ident, cmd, final);
}

static tval_t eval_command(tx_t *x, tval_t dot, tnode_t *cmd, const tval_t *final)
{
    tnode_t *first = cmd->v[0];
    switch (first->kind) {
    case N_FIELD: x->at = first; return eval_field_chain(x, dot, first->idents, first->nidents, cmd, final);
    case N_CHAIN: {
        x->at = first;
        if (first->child->kind == N_FIELD) tx_fail(x, "internal error: chained field");
        tval_t pv = first->child->kind == N_PIPE ? eval_pipeline(x, dot, first->child)
                                                 : eval_arg(x, dot, P_ANY, first->child);
        x->at = first;
        return eval_field_chain(x, pv, first->idents, first->nidents, cmd, final);
    }
    case N_IDENT: return eval_function(x, dot, first, cmd, final);
    case N_PIPE:
        x->at = first;
        not_a_function(x, cmd, final);
        return eval_pipeline(x, dot, first);
    case N_VAR: {
        x->at = first;
        tval_t v = var_value(x, first->idents[0]);
        if (first->nidents == 1) {
            not_a_function(x, cmd, final);
            return v;
        }
        return eval_field_chain(x, v, first->idents + 1, first->nidents - 1, cmd, final);
    }
    default: break;
    }
    x->at = first;
    not_a_function(x, cmd, final);
    tval_t r = NIL;
    switch (first->kind) {
    case N_BOOL:
        r.k = V_BOOL;
        r.b = first->b;
        return r;
    case N_DOT: return dot;
    case N_NIL: tx_fail(x, "nil is not a command");
    case N_NUMBER: return ideal_number(x, first);
    case N_STRING:
        r.k = V_STR;
        r.s = first->text;
        return r;
    default: break;
    }
    tx_fail(x, "can't evaluate command");
}

/* idealConstant for an untyped number in an interface{} position. */
static tval_t ideal_number(tx_t *x, tnode_t *n)
{
    tval_t r = NIL;
    st_str_t t = n->text;
    bool hex_int = t.n > 2 && t.p[0] == '0' && (t.p[1] == 'x' || t.p[1] == 'X') && !memchr(t.p, 'p', t.n) &&
                   !memchr(t.p, 'P', t.n);
    if (t.n > 3 && (t.p[0] == '-' || t.p[0] == '+') && t.p[1] == '0' && (t.p[2] == 'x' || t.p[2] == 'X') &&
        !memchr(t.p, 'p', t.n) && !memchr(t.p, 'P', t.n))
        hex_int = true;
    bool rune_int = t.n > 0 && t.p[0] == '\'';
    bool floaty = false;
    for (size_t i = 0; i < t.n; i++)
        if (strchr(".eEpP", t.p[i]) != NULL) floaty = true;
    if (n->is_float && !hex_int && !rune_int && floaty) {
        r.k = V_FLOAT;
        r.f = n->f;
        return r;
    }
    if (n->is_int) {
        r.k = V_INT;
        r.i = n->i;
        return r;
    }
    if (n->is_uint) tx_fail(x, "%.*s overflows int", (int)t.n, t.p);
    return NIL;
}

static tval_t eval_arg(tx_t *x, tval_t dot, char ptype, tnode_t *n)
{
    x->at = n;
    tval_t v;
    bool dynamic = true;
    switch (n->kind) {
    case N_DOT: v = dot; break;
    case N_NIL:
        if (ptype == P_ANY) return NIL;
        tx_fail(x, "cannot assign nil to %s",
                ptype == P_STR     ? "string"
                : ptype == P_INT   ? "int"
                : ptype == P_FLOAT ? "float64"
                : ptype == P_BOOL  ? "bool"
                : ptype == P_TIME  ? "time.Time"
                                   : "reflect.Value");
    case N_FIELD: v = eval_field_chain(x, dot, n->idents, n->nidents, NULL, &MISSING); break;
    case N_VAR:
        v = var_value(x, n->idents[0]);
        if (n->nidents > 1) v = eval_field_chain(x, v, n->idents + 1, n->nidents - 1, NULL, &MISSING);
        break;
    case N_PIPE: v = eval_pipeline(x, dot, n); break;
    case N_IDENT: v = eval_function(x, dot, n, NULL, &MISSING); break;
    case N_CHAIN: {
        tval_t pv =
            n->child->kind == N_PIPE ? eval_pipeline(x, dot, n->child) : eval_arg(x, dot, P_ANY, n->child);
        x->at = n;
        v = eval_field_chain(x, pv, n->idents, n->nidents, NULL, &MISSING);
        break;
    }
    default: dynamic = false; break;
    }
    x->at = n;
    if (dynamic) {
        static const struct {
            char p;
            uint8_t k;
            const char *name;
        } want[] = {{P_STR, V_STR, "string"},
                    {P_INT, V_INT, "int"},
                    {P_FLOAT, V_FLOAT, "float64"},
                    {P_BOOL, V_BOOL, "bool"},
                    {P_TIME, V_TIME, "time.Time"}};
        for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
            if (want[k].p != ptype) continue;
            if (v.k == V_NIL) tx_fail(x, "invalid value; expected %s", want[k].name);
            if (v.k != want[k].k)
                tx_fail(x, "wrong type for value; expected %s; got %s", want[k].name, tx_type_name(&v));
        }
        return v;
    }
    st_buf_t b = ST_BUF_INIT;
    node_string(&b, n);
    char s[200];
    snprintf(s, sizeof s, "%s", st_buf_cstr(&b));
    st_buf_free(&b);
    tval_t r = NIL;
    switch (ptype) {
    case P_STR:
        if (n->kind == N_STRING) {
            r.k = V_STR;
            r.s = n->text;
            return r;
        }
        tx_fail(x, "expected string; found %s", s);
    case P_INT:
        if (n->kind == N_NUMBER && n->is_int) {
            r.k = V_INT;
            r.i = n->i;
            return r;
        }
        tx_fail(x, "expected integer; found %s", s);
    case P_FLOAT:
        if (n->kind == N_NUMBER && n->is_float) {
            r.k = V_FLOAT;
            r.f = n->f;
            return r;
        }
        tx_fail(x, "expected float; found %s", s);
    case P_BOOL:
        if (n->kind == N_BOOL) {
            r.k = V_BOOL;
            r.b = n->b;
            return r;
        }
        tx_fail(x, "expected bool; found %s", s);
    case P_TIME: tx_fail(x, "can't handle %s for arg of type time.Time", s);
    default: break;
    }
    /* interface{} */
    switch (n->kind) {
    case N_BOOL:
        r.k = V_BOOL;
        r.b = n->b;
        return r;
    case N_NUMBER: return ideal_number(x, n);
    case N_STRING:
        r.k = V_STR;
        r.s = n->text;
        return r;
    default: break;
    }
    tx_fail(x, "can't handle %s for arg of type interface {}", s);
}

static tval_t eval_pipeline(tx_t *x, tval_t dot, tnode_t *pipe)
{
    x->at = pipe;
    tval_t v = MISSING;
    for (size_t i = 0; i < pipe->n; i++) v = eval_command(x, dot, pipe->v[i], &v);
    for (size_t i = 0; i < pipe->ndecl; i++) {
        if (pipe->is_assign)
            var_set(x, pipe->decl[i]->idents[0], v);
        else
            var_push(x, pipe->decl[i]->idents[0], v);
    }
    return v;
}

enum { W_OK = 0, W_BREAK = 1, W_CONTINUE = 2 };

static int walk(tx_t *x, tval_t dot, tnode_t *n);

static int walk_list(tx_t *x, tval_t dot, tnode_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        int rc = walk(x, dot, l->v[i]);
        if (rc != W_OK) return rc;
    }
    return W_OK;
}

static int walk_range(tx_t *x, tval_t dot, tnode_t *r)
{
    size_t mark = x->nvars;
    tval_t val = eval_pipeline(x, dot, r->child);
    tnode_t *pipe = r->child;
    size_t inner = x->nvars;
    int rc = W_OK;
    bool ran = false;
#define ONE(IDX, ELEM)                                                                                       \
    do {                                                                                                     \
        if (++x->iters > TX_MAX_ITER) tx_fail(x, "too many range iterations");                               \
        charge(x, 16);                                                                                       \
        ran = true;                                                                                          \
        if (pipe->ndecl > 0) {                                                                               \
            if (pipe->is_assign)                                                                             \
                var_set(x, pipe->decl[0]->idents[0], pipe->ndecl > 1 ? (IDX) : (ELEM));                      \
            else                                                                                             \
                x->vars[inner - 1].v = (ELEM);                                                               \
        }                                                                                                    \
        if (pipe->ndecl > 1) {                                                                               \
            if (pipe->is_assign)                                                                             \
                var_set(x, pipe->decl[1]->idents[0], (ELEM));                                                \
            else                                                                                             \
                x->vars[inner - 2].v = (IDX);                                                                \
        }                                                                                                    \
        rc = walk_list(x, (ELEM), r->list);                                                                  \
        x->nvars = inner;                                                                                    \
    } while (0)
    switch (val.k) {
    case V_MAP: {
        size_t cnt;
        const st_label_t *l = tx_sorted_labels(x, &cnt);
        for (size_t i = 0; i < cnt; i++) {
            tval_t k = {V_STR, {{NULL, 0}}}, e = {V_STR, {{NULL, 0}}};
            k.s = l[i].name;
            e.s = l[i].value;
            ONE(k, e);
            if (rc == W_BREAK) break;
        }
        break;
    }
    case V_INT:
    case V_INT64:
        if (pipe->ndecl > 1)
            tx_fail(x, "can't use %lld to iterate over more than one variable", (long long)val.i);
        for (int64_t i = 0; i < val.i; i++) {
            tval_t e = val;
            e.i = i;
            ONE(e, e);
            if (rc == W_BREAK) break;
        }
        break;
    case V_NIL: break;
    default: {
        st_buf_t b = ST_BUF_INIT;
        tx_print(x, &b, &val);
        char s[200];
        snprintf(s, sizeof s, "%.*s", (int)b.len, b.data ? b.data : "");
        st_buf_free(&b);
        tx_fail(x, "range can't iterate over %s", s);
    }
    }
#undef ONE
    x->nvars = mark;
    if (!ran && r->else_list) {
        rc = walk_list(x, dot, r->else_list);
        x->nvars = mark;
        return rc;
    }
    return W_OK;
}

static int walk(tx_t *x, tval_t dot, tnode_t *n)
{
    switch (n->kind) {
    case N_TEXT: put_checked(x, x->out, n->text.p, n->text.n); return W_OK;
    case N_ACTION: {
        tval_t v = eval_pipeline(x, dot, n->child);
        if (n->child->ndecl == 0) {
            x->at = n;
            size_t before = x->out->len;
            tx_print(x, x->out, &v);
            charge(x, x->out->len - before + 1);
            if (x->out->len - x->out_start > TX_MAX_STR) {
                x->out->len = before;
                tx_fail(x, "output too large");
            }
        }
        return W_OK;
    }
    case N_IF:
    case N_WITH: {
        size_t mark = x->nvars;
        tval_t v = eval_pipeline(x, dot, n->child);
        bool ok;
        bool truth = tx_truth(&v, &ok);
        if (!ok) tx_fail(x, "if/with can't use %s", tx_type_name(&v));
        int rc = W_OK;
        if (truth)
            rc = walk_list(x, n->kind == N_WITH ? v : dot, n->list);
        else if (n->else_list)
            rc = walk_list(x, dot, n->else_list);
        x->nvars = mark;
        return rc;
    }
    case N_RANGE: return walk_range(x, dot, n);
    case N_LIST: return walk_list(x, dot, n);
    case N_BREAK: return W_BREAK;
    case N_CONTINUE: return W_CONTINUE;
    default: return W_OK;
    }
}

/* ---- time.Time methods -------------------------------------------------------------------------- */

static tval_t time_method(tx_t *x, tval_t recv, st_str_t name, tnode_t *cmd, const tval_t *final, bool *ok)
{
    *ok = true;
    tval_t r = NIL;
    const st_go_time_t *t = &recv.t;
    size_t nargs = (cmd ? cmd->n - 1 : 0) + (missing(final) ? 0 : 1);
    static const char *const noarg[] = {"Unix",   "UnixMilli",  "UnixMicro", "UnixNano", "String", "UTC",
                                        "Local",  "Year",       "YearDay",   "Day",      "Hour",   "Minute",
                                        "Second", "Nanosecond", "Month",     "Weekday"};
    for (size_t i = 0; i < sizeof noarg / sizeof noarg[0]; i++) {
        if (!st_str_eqc(name, noarg[i])) continue;
        if (nargs != 0) tx_fail(x, "wrong number of args for %s: want 0 got %zu", noarg[i], nargs);
        st_buf_t *b = &x->tmp;
        st_buf_reset(b);
        r.k = V_INT64;
        switch (i) {
        case 0: r.i = t->sec; break;
        case 1: r.i = t->sec * 1000 + t->nsec / 1000000; break;
        case 2: r.i = t->sec * 1000000 + t->nsec / 1000; break;
        case 3: r.i = st_go_time_unix_nano(t); break;
        case 4:
            if (st_go_time_string(t, b) < 0) tx_oom(x);
            r.k = V_STR;
            r.s = tx_buf_str(x, b);
            break;
        case 5:
        case 6:
            r = recv;
            r.t.off = 0;
            memcpy(r.t.zone, "UTC", 4);
            break;
        default: {
            static const char *const lay[] = {"2006", "002",        "2",       "15",    "4",
                                              "5",    ".000000000", "January", "Monday"};
            if (st_go_time_format(t, st_cstr(lay[i - 7]), b) < 0) tx_oom(x);
            if (i >= 14) {
                r.k = V_STR;
                r.s = tx_buf_str(x, b);
            } else {
                st_str_t s = st_str(b->data, b->len);
                if (i == 13) s = st_str(b->data + 1, b->len - 1);
                int64_t v = 0;
                st_go_parse_int(s, 10, &v);
                r.k = V_INT;
                r.i = v;
            }
            break;
        }
        }
        return r;
    }
    if (st_str_eqc(name, "Format")) {
        if (nargs != 1) tx_fail(x, "wrong number of args for Format: want 1 got %zu", nargs);
        tval_t lay = missing(final) ? eval_arg(x, NIL, P_STR, cmd->v[1]) : *final;
        if (lay.k != V_STR) tx_fail(x, "wrong type for value; expected string; got %s", tx_type_name(&lay));
        st_buf_reset(&x->tmp);
        if (st_go_time_format(t, lay.s, &x->tmp) < 0) tx_oom(x);
        r.k = V_STR;
        r.s = tx_buf_str(x, &x->tmp);
        return r;
    }
    *ok = false;
    return r;
}

int st_tmpl_exec(st_tmpl_t *t, const st_tmpl_data_t *d, st_buf_t *out, st_str_t *errmsg)
{
    tx_t *x = &t->x;
    x->d = d;
    x->out = out;
    x->out_start = out->len;
    x->at = NULL;
    x->rc = 0;
    x->nvars = 0;
    x->iters = 0;
    x->work = 0;
    x->blk_cur = x->blk_head;
    if (x->blk_head) x->blk_head->used = 0;
    t->sorted_ok = false;
    if (setjmp(x->jb) != 0) {
        if (x->rc == ST_EPARSE && errmsg) *errmsg = st_str(x->msg.data ? x->msg.data : "", x->msg.len);
        return x->rc;
    }
    tval_t dot = NIL;
    dot.k = V_MAP;
    dot.i = (int64_t)d->n;
    var_push(x, ST_STR("$"), dot);
    (void)walk(x, dot, t->root);
    return 0;
}
