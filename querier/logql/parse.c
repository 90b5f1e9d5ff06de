/* parse.c: the LogQL parser: recursive descent for the structure and precedence climbing for
 * binary operators and label filters, following Loki's yacc grammar (syntax.y), its conflict
 * resolutions and its error texts. Errors Loki raises while reducing (bad matcher regexes, parser
 * stages, numeric label filters) fail at once; node errors are kept for the post-parse checks. */
#include "querier/logql/logql_int.h"

#include "common/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    lq_lexer_t L;
    lq_arena_t *a;
    lq_token_t tok;
    bool have;
    int depth;
    st_logql_error_t *err;
    int rc;
    jmp_buf jb;
    char msg[512];
} P;

/* ---- tokens ---- */

static lq_token_t *peek(P *p)
{
    if (!p->have) {
        lq_lex(&p->L, &p->tok);
        p->have = true;
    }
    return &p->tok;
}

static int ptype(P *p)
{
    return peek(p)->type;
}

static lq_token_t take(P *p)
{
    peek(p);
    p->have = false;
    return p->tok;
}

static _Noreturn void fail_oom(P *p)
{
    lq_fail_oom(&p->L);
}

/* A failure Loki raises as a panic while reducing: no position. */
static _Noreturn void fail_nopos(P *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void fail_nopos(P *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    lq_fail_at(&p->L, 0, 0, "%s", buf);
}

/* yacc's verbose message at the look-ahead token; at most four expected tokens are listed. */
static _Noreturn void syntax_error(P *p, const int *exp, size_t nexp)
{
    lq_token_t *t = peek(p);
    int sorted[8];
    size_t n = nexp <= 4 ? nexp : 0;
    for (size_t i = 0; i < n; i++) sorted[i] = exp[i];
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            int tmp = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = tmp;
        }
    size_t k = (size_t)snprintf(p->msg, sizeof p->msg, "syntax error: unexpected %s", lq_token_name(t->type));
    for (size_t i = 0; i < n && k < sizeof p->msg; i++)
        k += (size_t)snprintf(p->msg + k, sizeof p->msg - k, "%s%s", i == 0 ? ", expecting " : " or ",
                              lq_token_name(sorted[i]));
    lq_fail_at(&p->L, t->line, t->col, "%s", p->msg);
}

#define EXPECTING(...)                                                                                       \
    do {                                                                                                     \
        static const int e_[] = {__VA_ARGS__};                                                               \
        syntax_error(p, e_, sizeof e_ / sizeof e_[0]);                                                       \
    } while (0)
#define UNEXPECTED() syntax_error(p, NULL, 0)

/* Consumes a token of type t or fails listing the expected tokens. */
static lq_token_t expect1(P *p, int t)
{
    if (ptype(p) != t) {
        int e[1] = {t};
        syntax_error(p, e, 1);
    }
    return take(p);
}

/* ---- arena helpers ---- */

static void *alloc(P *p, size_t n)
{
    void *v = lq_alloc(p->a, n);
    if (v == NULL) fail_oom(p);
    return v;
}

static char *sdup(P *p, st_str_t s)
{
    char *d = lq_strdup(p->a, s.p ? s.p : "", s.n);
    if (d == NULL) fail_oom(p);
    return d;
}

static st_str_t sdup_str(P *p, st_str_t s)
{
    return st_str(sdup(p, s), s.n);
}

typedef struct {
    void *v;
    size_t n, cap;
} vec_t;

static void *vpush(P *p, vec_t *v, size_t elem)
{
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 4;
        void *nv = alloc(p, nc * elem);
        if (v->n) memcpy(nv, v->v, v->n * elem);
        v->v = nv;
        v->cap = nc;
    }
    return (char *)v->v + elem * v->n++;
}

static void enter(P *p)
{
    if (++p->depth > LQ_MAX_RECURSION)
        fail_nopos(p, "query is nested too deeply (more than %d levels)", LQ_MAX_DEPTH);
}
static void leave(P *p)
{
    p->depth--;
}

static lq_node_t *new_node(P *p, st_logql_expr_kind_t kind)
{
    lq_node_t *n = alloc(p, sizeof *n);
    n->e.kind = kind;
    n->height = 1;
    return n;
}

static char *errf(P *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *errf(P *p, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (k < 0) k = 0;
    if ((size_t)k >= sizeof buf) k = sizeof buf - 1;
    return sdup(p, st_str(buf, (size_t)k));
}

/* ---- matchers ---- */

static st_logql_match_t match_type(int t)
{
    switch (t) {
    case T_NEQ: return ST_LOGQL_MATCH_NEQ;
    case T_RE: return ST_LOGQL_MATCH_RE;
    case T_NRE: return ST_LOGQL_MATCH_NRE;
    default: return ST_LOGQL_MATCH_EQ;
    }
}

/* mustNewMatcher: a bad regex fails at once (Loki panics with the regexp error). */
static void build_matcher(P *p, st_logql_matcher_t *m, st_logql_match_t type, st_str_t name, st_str_t value,
                          int reflags)
{
    m->type = type;
    m->name = sdup_str(p, name);
    m->value = sdup_str(p, value);
    if (type == ST_LOGQL_MATCH_RE || type == ST_LOGQL_MATCH_NRE) {
        int rc = lq_regex_compile(p->a, m->value, LQ_RE_ANCHORED | reflags, &m->re, p->msg, sizeof p->msg);
        if (rc == -ENOMEM) fail_oom(p);
        if (rc != 0) lq_fail_at(&p->L, 0, 0, "%s", p->msg);
        bool me = lq_regex_matches_empty(m->re);
        m->matches_empty = type == ST_LOGQL_MATCH_RE ? me : !me;
    } else {
        m->matches_empty = type == ST_LOGQL_MATCH_EQ ? value.n == 0 : value.n != 0;
    }
}

static void parse_selector(P *p, st_logql_selector_t *sel)
{
    take(p); /* { */
    vec_t v = {0};
    if (ptype(p) == T_CLOSE_BRACE) {
        take(p);
        sel->v = NULL;
        sel->n = 0;
        return;
    }
    for (;;) {
        if (ptype(p) != T_IDENTIFIER) {
            if (v.n == 0) EXPECTING(T_IDENTIFIER, T_CLOSE_BRACE);
            EXPECTING(T_IDENTIFIER);
        }
        lq_token_t name = take(p);
        int op = ptype(p);
        if (op != T_EQ && op != T_NEQ && op != T_RE && op != T_NRE) EXPECTING(T_EQ, T_RE, T_NRE, T_NEQ);
        take(p);
        lq_token_t val = expect1(p, T_STRING);
        st_logql_matcher_t *m = vpush(p, &v, sizeof *m);
        build_matcher(p, m, match_type(op), name.text, val.str, LQ_RE_DOTALL);
        int t = ptype(p);
        if (t == T_COMMA) {
            take(p);
            continue;
        }
        if (t == T_CLOSE_BRACE) {
            take(p);
            break;
        }
        EXPECTING(T_CLOSE_BRACE, T_COMMA);
    }
    sel->v = v.v;
    sel->n = v.n;
}

/* ---- label filters ---- */

static st_logql_cmp_t cmp_of(int t)
{
    switch (t) {
    case T_NEQ: return ST_LOGQL_CMP_NEQ;
    case T_GT: return ST_LOGQL_CMP_GT;
    case T_GTE: return ST_LOGQL_CMP_GTE;
    case T_LT: return ST_LOGQL_CMP_LT;
    case T_LTE: return ST_LOGQL_CMP_LTE;
    default: return ST_LOGQL_CMP_EQ;
    }
}

/* literalExpr in a numeric label filter: NUMBER | + NUMBER | - NUMBER. */
static double label_number(P *p)
{
    bool neg = false;
    if (ptype(p) == T_ADD || ptype(p) == T_SUB) {
        neg = take(p).type == T_SUB;
        if (ptype(p) != T_NUMBER) EXPECTING(T_NUMBER);
    }
    lq_token_t n = take(p);
    double v;
    char m[300];
    if (lq_parse_float(n.text, &v, m, sizeof m) != 0)
        fail_nopos(p, "unable to parse literal as a float: %s", m);
    return neg ? -v : v;
}

/* Label filter nodes carry their tree height behind the public struct. */
typedef struct {
    st_logql_label_filter_t f; /* must stay first */
    int height;
} lf_node_t;

static st_logql_label_filter_t *lf_new(P *p, st_logql_lf_kind_t k)
{
    lf_node_t *n = alloc(p, sizeof *n);
    n->f.kind = k;
    n->height = 1;
    return &n->f;
}

static int lf_height(const st_logql_label_filter_t *f)
{
    return ((const lf_node_t *)(const void *)f)->height;
}

static st_logql_label_filter_t *parse_lf(P *p, int minp);

static st_logql_label_filter_t *parse_lf_primary(P *p)
{
    int t = ptype(p);
    if (t == T_OPEN_PAREN) {
        take(p);
        enter(p);
        st_logql_label_filter_t *f = parse_lf(p, 0);
        leave(p);
        if (ptype(p) != T_CLOSE_PAREN) UNEXPECTED();
        take(p);
        return f;
    }
    if (t != T_IDENTIFIER) EXPECTING(T_IDENTIFIER, T_OPEN_PAREN);
    lq_token_t name = take(p);
    int op = ptype(p);
    st_logql_label_filter_t *f;
    switch (op) {
    case T_RE:
    case T_NRE: {
        take(p);
        lq_token_t v = expect1(p, T_STRING);
        f = lf_new(p, ST_LOGQL_LF_STRING);
        build_matcher(p, &f->str, match_type(op), name.text, v.str, 0);
        return f;
    }
    case T_EQ:
    case T_NEQ:
    case T_GT:
    case T_GTE:
    case T_LT:
    case T_LTE:
    case T_CMP_EQ: {
        take(p);
        int vt = ptype(p);
        if ((op == T_EQ || op == T_NEQ) && vt == T_STRING) {
            lq_token_t v = take(p);
            f = lf_new(p, ST_LOGQL_LF_STRING);
            build_matcher(p, &f->str, match_type(op), name.text, v.str, 0);
            return f;
        }
        if ((op == T_EQ || op == T_NEQ) && vt == T_IP) {
            take(p);
            expect1(p, T_OPEN_PAREN);
            lq_token_t v = expect1(p, T_STRING);
            expect1(p, T_CLOSE_PAREN);
            f = lf_new(p, ST_LOGQL_LF_IP);
            f->ip.name = sdup_str(p, name.text);
            f->ip.op = cmp_of(op);
            f->ip.ip.text = sdup_str(p, v.str);
            return f;
        }
        if (vt == T_DURATION) {
            lq_token_t v = take(p);
            f = lf_new(p, ST_LOGQL_LF_DURATION);
            f->dur.name = sdup_str(p, name.text);
            f->dur.op = cmp_of(op);
            f->dur.ns = v.dur;
            return f;
        }
        if (vt == T_BYTES) {
            lq_token_t v = take(p);
            f = lf_new(p, ST_LOGQL_LF_BYTES);
            f->bytes.name = sdup_str(p, name.text);
            f->bytes.op = cmp_of(op);
            f->bytes.bytes = v.bytes;
            return f;
        }
        if (vt == T_NUMBER || vt == T_ADD || vt == T_SUB) {
            double v = label_number(p);
            f = lf_new(p, ST_LOGQL_LF_NUMBER);
            f->num.name = sdup_str(p, name.text);
            f->num.op = cmp_of(op);
            f->num.value = v;
            return f;
        }
        UNEXPECTED();
    }
    default: UNEXPECTED();
    }
}

/* Loki's label filter grammar resolves its conflicts so that "and" (2) binds tighter than "or" (1),
 * both left-associative, while "," and juxtaposition always shift: their right side takes the rest
 * of the filter. */
static int lf_op(P *p)
{
    switch (ptype(p)) {
    case T_AND: return T_AND;
    case T_OR: return T_OR;
    case T_COMMA: return T_COMMA;
    case T_IDENTIFIER:
    case T_OPEN_PAREN: return T_IDENTIFIER; /* juxtaposition */
    default: return 0;
    }
}

static st_logql_label_filter_t *lf_bin(P *p, st_logql_lf_kind_t k, st_logql_label_filter_t *l,
                                       st_logql_label_filter_t *r)
{
    st_logql_label_filter_t *f = lf_new(p, k);
    f->bin.left = l;
    f->bin.right = r;
    int h = (lf_height(l) > lf_height(r) ? lf_height(l) : lf_height(r)) + 1;
    ((lf_node_t *)(void *)f)->height = h;
    if (h > LQ_MAX_DEPTH) fail_nopos(p, "query is nested too deeply (more than %d levels)", LQ_MAX_DEPTH);
    return f;
}

static st_logql_label_filter_t *parse_lf(P *p, int minp)
{
    enter(p);
    st_logql_label_filter_t *lhs = parse_lf_primary(p);
    for (;;) {
        int op = lf_op(p);
        if (op == 0) break;
        if (op == T_COMMA || op == T_IDENTIFIER) {
            if (op == T_COMMA) take(p);
            st_logql_label_filter_t *rhs = parse_lf(p, 0);
            lhs = lf_bin(p, ST_LOGQL_LF_AND, lhs, rhs);
            continue;
        }
        int prec = op == T_AND ? 2 : 1;
        if (prec < minp) break;
        take(p);
        st_logql_label_filter_t *rhs = parse_lf(p, prec == 2 ? 3 : 2);
        lhs = lf_bin(p, op == T_AND ? ST_LOGQL_LF_AND : ST_LOGQL_LF_OR, lhs, rhs);
    }
    leave(p);
    return lhs;
}

/* ---- pipeline ---- */

typedef enum { CTX_LOG, CTX_RANGE } ctx_t;

static void parse_line_operand(P *p, st_logql_line_alt_t *alt)
{
    int t = ptype(p);
    if (t == T_STRING) {
        alt->value = sdup_str(p, take(p).str);
        return;
    }
    if (t == T_IP) {
        take(p);
        expect1(p, T_OPEN_PAREN);
        lq_token_t v = expect1(p, T_STRING);
        expect1(p, T_CLOSE_PAREN);
        alt->is_ip = true;
        alt->value = sdup_str(p, v.str);
        alt->ip.text = alt->value;
        return;
    }
    EXPECTING(T_STRING, T_IP);
}

static void parse_line_filter(P *p, st_logql_stage_t *s)
{
    int t = take(p).type;
    s->kind = ST_LOGQL_STAGE_LINE_FILTER;
    switch (t) {
    case T_PIPE_EXACT: s->line.op = ST_LOGQL_LINE_CONTAINS; break;
    case T_NEQ: s->line.op = ST_LOGQL_LINE_NOT_CONTAINS; break;
    case T_PIPE_MATCH: s->line.op = ST_LOGQL_LINE_REGEX; break;
    case T_NRE: s->line.op = ST_LOGQL_LINE_NOT_REGEX; break;
    case T_PIPE_PATTERN: s->line.op = ST_LOGQL_LINE_PATTERN; break;
    default: s->line.op = ST_LOGQL_LINE_NOT_PATTERN; break;
    }
    vec_t v = {0};
    parse_line_operand(p, vpush(p, &v, sizeof(st_logql_line_alt_t)));
    while (ptype(p) == T_OR) {
        take(p);
        parse_line_operand(p, vpush(p, &v, sizeof(st_logql_line_alt_t)));
    }
    s->line.alts = v.v;
    s->line.n_alts = v.n;
}

static void parse_extract_list(P *p, st_logql_extract_t **out, size_t *n)
{
    vec_t v = {0};
    for (;;) {
        lq_token_t id = expect1(p, T_IDENTIFIER);
        st_logql_extract_t *e = vpush(p, &v, sizeof *e);
        e->name = sdup_str(p, id.text);
        e->expr = e->name;
        if (ptype(p) == T_EQ) {
            take(p);
            e->expr = sdup_str(p, expect1(p, T_STRING).str);
        }
        if (ptype(p) != T_COMMA) break;
        take(p);
    }
    *out = v.v;
    *n = v.n;
}

static void parse_named_list(P *p, st_logql_stage_t *s)
{
    vec_t v = {0};
    for (;;) {
        lq_token_t id = expect1(p, T_IDENTIFIER);
        st_logql_named_t *nm = vpush(p, &v, sizeof *nm);
        nm->name = sdup_str(p, id.text);
        int op = ptype(p);
        if (op == T_EQ || op == T_NEQ || op == T_RE || op == T_NRE) {
            take(p);
            lq_token_t val = expect1(p, T_STRING);
            nm->has_matcher = true;
            build_matcher(p, &nm->matcher, match_type(op), id.text, val.str, LQ_RE_DOTALL);
            nm->name = nm->matcher.name;
        }
        if (ptype(p) != T_COMMA) break;
        take(p);
    }
    s->names.v = v.v;
    s->names.n = v.n;
}

static void parse_label_format(P *p, st_logql_stage_t *s)
{
    vec_t v = {0};
    for (;;) {
        lq_token_t id = expect1(p, T_IDENTIFIER);
        expect1(p, T_EQ);
        st_logql_label_fmt_t *f = vpush(p, &v, sizeof *f);
        f->dst = sdup_str(p, id.text);
        int t = ptype(p);
        if (t == T_IDENTIFIER) {
            f->rename = true;
            f->value = sdup_str(p, take(p).text);
        } else if (t == T_STRING) {
            f->value = sdup_str(p, take(p).str);
        } else {
            EXPECTING(T_IDENTIFIER, T_STRING);
        }
        if (ptype(p) != T_COMMA) break;
        take(p);
    }
    s->label_format.v = v.v;
    s->label_format.n = v.n;
}

/* newLabelParserExpr for regexp: Loki compiles at parse time and panics on failure. */
static void build_regexp_stage(P *p, st_logql_stage_t *s, st_str_t re)
{
    s->regexp.re = sdup_str(p, re);
    st_str_t *names = NULL;
    size_t n = 0;
    int rc = lq_regex_compile_named(p->a, s->regexp.re, &s->regexp.code, &names, &n, p->msg, sizeof p->msg);
    if (rc == -ENOMEM) fail_oom(p);
    if (rc != 0) fail_nopos(p, "invalid regexp parser: %.400s", p->msg);
    size_t named = 0;
    for (size_t i = 1; i < n; i++) {
        if (names[i].n == 0) continue;
        for (size_t j = 1; j < i; j++)
            if (st_str_eq(names[j], names[i]))
                fail_nopos(p, "invalid regexp parser: duplicate extracted label name '%.*s'", (int)names[i].n,
                           names[i].p);
        named++;
    }
    if (named == 0) fail_nopos(p, "invalid regexp parser: at least one named capture must be supplied");
    s->regexp.names = names;
    s->regexp.n = n;
}

static void build_pattern_stage(P *p, st_logql_stage_t *s, st_str_t text)
{
    s->pattern.text = sdup_str(p, text);
    int rc = lq_parse_pattern(p->a, s->pattern.text, &s->pattern.pattern, p->msg, sizeof p->msg);
    if (rc == -ENOMEM) fail_oom(p);
    if (rc == 0) rc = lq_check_pattern_parser(&s->pattern.pattern, p->msg, sizeof p->msg);
    if (rc != 0) fail_nopos(p, "invalid pattern parser: %.400s", p->msg);
}

static st_logql_unwrap_t *parse_unwrap(P *p)
{
    take(p); /* unwrap */
    st_logql_unwrap_t *u = alloc(p, sizeof *u);
    int t = ptype(p);
    if (t == T_IDENTIFIER) {
        u->label = sdup_str(p, take(p).text);
    } else if (t == T_BYTES_CONV || t == T_DURATION_CONV || t == T_DURATION_SECONDS_CONV) {
        take(p);
        u->conv = t == T_BYTES_CONV      ? ST_LOGQL_CONV_BYTES
                  : t == T_DURATION_CONV ? ST_LOGQL_CONV_DURATION
                                         : ST_LOGQL_CONV_DURATION_SECONDS;
        expect1(p, T_OPEN_PAREN);
        u->label = sdup_str(p, expect1(p, T_IDENTIFIER).text);
        expect1(p, T_CLOSE_PAREN);
    } else {
        EXPECTING(T_IDENTIFIER, T_BYTES_CONV, T_DURATION_CONV, T_DURATION_SECONDS_CONV);
    }
    vec_t v = {0};
    while (ptype(p) == T_PIPE) {
        take(p);
        st_logql_label_filter_t **f = vpush(p, &v, sizeof *f);
        *f = parse_lf(p, 0);
    }
    u->post = v.v;
    u->n_post = v.n;
    return u;
}

static bool is_line_filter_start(int t)
{
    return t == T_PIPE_EXACT || t == T_NEQ || t == T_PIPE_MATCH || t == T_NRE || t == T_PIPE_PATTERN ||
           t == T_NPA;
}

/* Parses stages while they come. In a log range a "| unwrap" ends the pipeline and is returned. */
static void parse_pipeline(P *p, ctx_t ctx, st_logql_pipeline_t *pl, st_logql_unwrap_t **unwrap)
{
    vec_t v = {0};
    if (unwrap) *unwrap = NULL;
    for (;;) {
        int t = ptype(p);
        if (is_line_filter_start(t)) {
            parse_line_filter(p, vpush(p, &v, sizeof(st_logql_stage_t)));
            continue;
        }
        if (t != T_PIPE) break;
        take(p);
        t = ptype(p);
        if (t == T_UNWRAP && ctx == CTX_RANGE) {
            *unwrap = parse_unwrap(p);
            break;
        }
        st_logql_stage_t *s;
        switch (t) {
        case T_LOGFMT:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_LOGFMT;
            while (ptype(p) == T_FUNCTION_FLAG) {
                lq_token_t f = take(p);
                if (st_str_eqc(f.text, "--strict"))
                    s->logfmt.strict = true;
                else
                    s->logfmt.keep_empty = true;
            }
            if (ptype(p) == T_IDENTIFIER) parse_extract_list(p, &s->logfmt.v, &s->logfmt.n);
            break;
        case T_JSON:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_JSON;
            if (ptype(p) == T_IDENTIFIER) parse_extract_list(p, &s->json.v, &s->json.n);
            break;
        case T_REGEXP: {
            take(p);
            lq_token_t re = expect1(p, T_STRING);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_REGEXP;
            build_regexp_stage(p, s, re.str);
            break;
        }
        case T_PATTERN: {
            take(p);
            lq_token_t pt = expect1(p, T_STRING);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_PATTERN;
            build_pattern_stage(p, s, pt.str);
            break;
        }
        case T_UNPACK:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_UNPACK;
            break;
        case T_DECOLORIZE:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_DECOLORIZE;
            break;
        case T_LINE_FMT: {
            take(p);
            lq_token_t tm = expect1(p, T_STRING);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_LINE_FORMAT;
            s->line_format = sdup_str(p, tm.str);
            break;
        }
        case T_LABEL_FMT:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_LABEL_FORMAT;
            parse_label_format(p, s);
            break;
        case T_DROP:
        case T_KEEP:
            take(p);
            s = vpush(p, &v, sizeof *s);
            s->kind = t == T_DROP ? ST_LOGQL_STAGE_DROP : ST_LOGQL_STAGE_KEEP;
            parse_named_list(p, s);
            break;
        case T_IDENTIFIER:
        case T_OPEN_PAREN: {
            st_logql_label_filter_t *f = parse_lf(p, 0);
            s = vpush(p, &v, sizeof *s);
            s->kind = ST_LOGQL_STAGE_LABEL_FILTER;
            s->label_filter = f;
            break;
        }
        default: UNEXPECTED();
        }
    }
    pl->v = v.v;
    pl->n = v.n;
}

/* ---- metric expressions ---- */

static lq_node_t *parse_expr(P *p, int minp, lq_node_t *first);

static bool is_log(const lq_node_t *n)
{
    return n->e.kind == ST_LOGQL_EXPR_LOG;
}

static int height_of(const lq_node_t *n)
{
    return n ? n->height : 0;
}

static void set_height(P *p, lq_node_t *n, int h)
{
    n->height = h;
    if (h > LQ_MAX_DEPTH) fail_nopos(p, "query is nested too deeply (more than %d levels)", LQ_MAX_DEPTH);
}

static void parse_labels_paren(P *p, st_str_t **out, size_t *n)
{
    expect1(p, T_OPEN_PAREN);
    vec_t v = {0};
    if (ptype(p) == T_CLOSE_PAREN) {
        take(p);
        *out = NULL;
        *n = 0;
        return;
    }
    if (ptype(p) != T_IDENTIFIER) EXPECTING(T_IDENTIFIER, T_CLOSE_PAREN);
    for (;;) {
        st_str_t *s = vpush(p, &v, sizeof *s);
        *s = sdup_str(p, take(p).text);
        int t = ptype(p);
        if (t == T_CLOSE_PAREN) {
            take(p);
            break;
        }
        if (t != T_COMMA) EXPECTING(T_COMMA, T_CLOSE_PAREN);
        take(p);
        if (ptype(p) != T_IDENTIFIER) EXPECTING(T_IDENTIFIER);
    }
    *out = v.v;
    *n = v.n;
}

static void parse_grouping(P *p, st_logql_grouping_t *g)
{
    g->present = true;
    g->without = take(p).type == T_WITHOUT;
    parse_labels_paren(p, &g->labels, &g->n);
}

static void parse_offset(P *p, st_logql_log_range_t *r)
{
    if (ptype(p) != T_OFFSET) return;
    take(p);
    r->offset_ns = expect1(p, T_DURATION).dur;
}

/* logRangeExpr in all of Loki's orders. */
static void parse_log_range(P *p, st_logql_log_range_t *r, bool after_param)
{
    int t = ptype(p);
    enter(p);
    if (t == T_OPEN_PAREN) {
        take(p);
        int t2 = ptype(p);
        if (t2 == T_OPEN_PAREN) {
            parse_log_range(p, r, true);
            expect1(p, T_CLOSE_PAREN);
            leave(p);
            return;
        }
        if (t2 != T_OPEN_BRACE) EXPECTING(T_OPEN_BRACE, T_OPEN_PAREN);
        parse_selector(p, &r->selector);
        parse_pipeline(p, CTX_RANGE, &r->pipeline, &r->unwrap);
        bool inner = r->pipeline.n > 0 || r->unwrap != NULL;
        int t3 = ptype(p);
        if (t3 == T_RANGE) {
            /* ( logRangeExpr ) */
            r->range_ns = take(p).dur;
            parse_offset(p, r);
            if (!inner) parse_pipeline(p, CTX_RANGE, &r->pipeline, &r->unwrap);
            expect1(p, T_CLOSE_PAREN);
            leave(p);
            return;
        }
        if (t3 != T_CLOSE_PAREN) {
            if (r->unwrap != NULL) EXPECTING(T_RANGE, T_CLOSE_PAREN, T_PIPE);
            UNEXPECTED();
        }
        take(p);
        r->range_ns = expect1(p, T_RANGE).dur;
        parse_offset(p, r);
        if (!inner && ptype(p) == T_PIPE) {
            take(p);
            if (ptype(p) != T_UNWRAP) EXPECTING(T_UNWRAP);
            r->unwrap = parse_unwrap(p);
        }
        leave(p);
        return;
    }
    if (t != T_OPEN_BRACE) {
        if (after_param) EXPECTING(T_OPEN_BRACE, T_OPEN_PAREN);
        EXPECTING(T_NUMBER, T_OPEN_BRACE, T_OPEN_PAREN);
    }
    parse_selector(p, &r->selector);
    parse_pipeline(p, CTX_RANGE, &r->pipeline, &r->unwrap);
    bool before = r->pipeline.n > 0 || r->unwrap != NULL;
    if (ptype(p) != T_RANGE) {
        if (r->unwrap != NULL) EXPECTING(T_RANGE, T_PIPE);
        UNEXPECTED();
    }
    r->range_ns = take(p).dur;
    parse_offset(p, r);
    if (!before) parse_pipeline(p, CTX_RANGE, &r->pipeline, &r->unwrap);
    leave(p);
}

static const struct {
    int tok;
    st_logql_range_op_t op;
} range_ops[] = {
    {T_COUNT_OVER_TIME, ST_LOGQL_RANGE_COUNT_OVER_TIME},
    {T_RATE, ST_LOGQL_RANGE_RATE},
    {T_RATE_COUNTER, ST_LOGQL_RANGE_RATE_COUNTER},
    {T_BYTES_OVER_TIME, ST_LOGQL_RANGE_BYTES_OVER_TIME},
    {T_BYTES_RATE, ST_LOGQL_RANGE_BYTES_RATE},
    {T_AVG_OVER_TIME, ST_LOGQL_RANGE_AVG_OVER_TIME},
    {T_SUM_OVER_TIME, ST_LOGQL_RANGE_SUM_OVER_TIME},
    {T_MIN_OVER_TIME, ST_LOGQL_RANGE_MIN_OVER_TIME},
    {T_MAX_OVER_TIME, ST_LOGQL_RANGE_MAX_OVER_TIME},
    {T_STDVAR_OVER_TIME, ST_LOGQL_RANGE_STDVAR_OVER_TIME},
    {T_STDDEV_OVER_TIME, ST_LOGQL_RANGE_STDDEV_OVER_TIME},
    {T_QUANTILE_OVER_TIME, ST_LOGQL_RANGE_QUANTILE_OVER_TIME},
    {T_FIRST_OVER_TIME, ST_LOGQL_RANGE_FIRST_OVER_TIME},
    {T_LAST_OVER_TIME, ST_LOGQL_RANGE_LAST_OVER_TIME},
    {T_ABSENT_OVER_TIME, ST_LOGQL_RANGE_ABSENT_OVER_TIME},
};

static const struct {
    int tok;
    st_logql_vec_op_t op;
} vec_ops[] = {
    {T_SUM, ST_LOGQL_VEC_SUM},
    {T_AVG, ST_LOGQL_VEC_AVG},
    {T_COUNT, ST_LOGQL_VEC_COUNT},
    {T_MAX, ST_LOGQL_VEC_MAX},
    {T_MIN, ST_LOGQL_VEC_MIN},
    {T_STDDEV, ST_LOGQL_VEC_STDDEV},
    {T_STDVAR, ST_LOGQL_VEC_STDVAR},
    {T_TOPK, ST_LOGQL_VEC_TOPK},
    {T_BOTTOMK, ST_LOGQL_VEC_BOTTOMK},
    {T_SORT, ST_LOGQL_VEC_SORT},
    {T_SORT_DESC, ST_LOGQL_VEC_SORT_DESC},
    {T_APPROX_TOPK, ST_LOGQL_VEC_APPROX_TOPK},
};

static int range_op_of(int t)
{
    for (size_t i = 0; i < sizeof range_ops / sizeof range_ops[0]; i++)
        if (range_ops[i].tok == t) return (int)range_ops[i].op;
    return -1;
}

static int vec_op_of(int t)
{
    for (size_t i = 0; i < sizeof vec_ops / sizeof vec_ops[0]; i++)
        if (vec_ops[i].tok == t) return (int)vec_ops[i].op;
    return -1;
}

/* newRangeAggregationExpr's checks, kept on the node for the post-parse pass. */
static const char *range_agg_error(P *p, st_logql_expr_t *e, const lq_token_t *param)
{
    st_logql_range_op_t op = e->range_agg.op;
    const char *name = st_logql_range_op_name(op);
    if (param != NULL) {
        if (op != ST_LOGQL_RANGE_QUANTILE_OVER_TIME)
            return errf(p, "parameter %.*s not supported for operation %s", (int)param->text.n, param->text.p,
                        name);
        char m[300];
        if (lq_parse_float(param->text, &e->range_agg.param, m, sizeof m) != 0)
            return errf(p, "invalid parameter for operation %s: %s", name, m);
        e->range_agg.has_param = true;
    } else if (op == ST_LOGQL_RANGE_QUANTILE_OVER_TIME) {
        return errf(p, "parameter required for operation %s", name);
    }
    if (e->range_agg.grouping.present) {
        switch (op) {
        case ST_LOGQL_RANGE_AVG_OVER_TIME:
        case ST_LOGQL_RANGE_STDDEV_OVER_TIME:
        case ST_LOGQL_RANGE_STDVAR_OVER_TIME:
        case ST_LOGQL_RANGE_QUANTILE_OVER_TIME:
        case ST_LOGQL_RANGE_MAX_OVER_TIME:
        case ST_LOGQL_RANGE_MIN_OVER_TIME:
        case ST_LOGQL_RANGE_FIRST_OVER_TIME:
        case ST_LOGQL_RANGE_LAST_OVER_TIME: break;
        default: return errf(p, "grouping not allowed for %s aggregation", name);
        }
    }
    if (e->range_agg.range.unwrap != NULL) {
        switch (op) {
        case ST_LOGQL_RANGE_COUNT_OVER_TIME:
        case ST_LOGQL_RANGE_BYTES_OVER_TIME:
        case ST_LOGQL_RANGE_BYTES_RATE: return errf(p, "invalid aggregation %s with unwrap", name);
        default: return NULL;
        }
    }
    switch (op) {
    case ST_LOGQL_RANGE_BYTES_OVER_TIME:
    case ST_LOGQL_RANGE_BYTES_RATE:
    case ST_LOGQL_RANGE_COUNT_OVER_TIME:
    case ST_LOGQL_RANGE_RATE:
    case ST_LOGQL_RANGE_ABSENT_OVER_TIME: return NULL;
    default: return errf(p, "invalid aggregation %s without unwrap", name);
    }
}

static lq_node_t *parse_range_agg(P *p)
{
    lq_node_t *n = new_node(p, ST_LOGQL_EXPR_RANGE_AGG);
    st_logql_expr_t *e = &n->e;
    e->range_agg.op = (st_logql_range_op_t)range_op_of(take(p).type);
    expect1(p, T_OPEN_PAREN);
    lq_token_t param;
    bool has_param = false;
    if (ptype(p) == T_NUMBER) {
        param = take(p);
        has_param = true;
        expect1(p, T_COMMA);
    }
    parse_log_range(p, &e->range_agg.range, has_param);
    expect1(p, T_CLOSE_PAREN);
    if (ptype(p) == T_BY || ptype(p) == T_WITHOUT) parse_grouping(p, &e->range_agg.grouping);
    n->err = range_agg_error(p, e, has_param ? &param : NULL);
    return n;
}

/* mustNewVectorAggregationExpr's checks. */
static const char *vec_agg_error(P *p, st_logql_expr_t *e, const lq_token_t *param)
{
    st_logql_vec_op_t op = e->vec_agg.op;
    const char *name = st_logql_vec_op_name(op);
    if (op == ST_LOGQL_VEC_TOPK || op == ST_LOGQL_VEC_BOTTOMK || op == ST_LOGQL_VEC_APPROX_TOPK) {
        if (param == NULL) return errf(p, "parameter required for operation %s", name);
        int64_t k;
        if (lq_atoi(param->text, &k) != 0)
            return errf(p, "invalid parameter %s(%.*s,", name, (int)param->text.n, param->text.p);
        if (k <= 0)
            return errf(p, "invalid parameter (must be greater than 0) %s(%.*s", name, (int)param->text.n,
                        param->text.p);
        if (op == ST_LOGQL_VEC_APPROX_TOPK && e->vec_agg.grouping.present)
            return errf(p, "grouping not allowed for %s aggregation", name);
        e->vec_agg.has_param = true;
        e->vec_agg.param = k;
        return NULL;
    }
    if (param != NULL)
        return errf(p, "unsupported parameter for operation %s(%.*s,", name, (int)param->text.n,
                    param->text.p);
    return NULL;
}

static lq_node_t *literal_node(P *p, lq_token_t num, bool neg)
{
    lq_node_t *n = new_node(p, ST_LOGQL_EXPR_LITERAL);
    double v = 0;
    char m[300];
    if (lq_parse_float(num.text, &v, m, sizeof m) != 0)
        n->err = errf(p, "unable to parse literal as a float: %s", m);
    n->e.literal = neg ? -v : v;
    return n;
}

static void require_metric(P *p, lq_node_t *n)
{
    if (is_log(n)) UNEXPECTED();
}

static lq_node_t *parse_vec_agg(P *p)
{
    lq_node_t *n = new_node(p, ST_LOGQL_EXPR_VECTOR_AGG);
    st_logql_expr_t *e = &n->e;
    e->vec_agg.op = (st_logql_vec_op_t)vec_op_of(take(p).type);
    bool before = false;
    if (ptype(p) == T_BY || ptype(p) == T_WITHOUT) {
        parse_grouping(p, &e->vec_agg.grouping);
        before = true;
    }
    if (ptype(p) != T_OPEN_PAREN) {
        if (before) EXPECTING(T_OPEN_PAREN);
        EXPECTING(T_OPEN_PAREN, T_BY, T_WITHOUT);
    }
    take(p);
    lq_token_t param;
    bool has_param = false;
    lq_node_t *inner;
    if (ptype(p) == T_NUMBER) {
        lq_token_t num = take(p);
        if (ptype(p) == T_COMMA) {
            take(p);
            param = num;
            has_param = true;
            inner = parse_expr(p, 0, NULL);
        } else {
            inner = parse_expr(p, 0, literal_node(p, num, false));
        }
    } else {
        inner = parse_expr(p, 0, NULL);
    }
    require_metric(p, inner);
    if (ptype(p) != T_CLOSE_PAREN) UNEXPECTED();
    take(p);
    if (!before && (ptype(p) == T_BY || ptype(p) == T_WITHOUT)) parse_grouping(p, &e->vec_agg.grouping);
    e->vec_agg.inner = &inner->e;
    set_height(p, n, inner->height + 1);
    n->err = vec_agg_error(p, e, has_param ? &param : NULL);
    return n;
}

static lq_node_t *parse_label_replace(P *p)
{
    take(p);
    lq_node_t *n = new_node(p, ST_LOGQL_EXPR_LABEL_REPLACE);
    st_logql_expr_t *e = &n->e;
    expect1(p, T_OPEN_PAREN);
    lq_node_t *inner = parse_expr(p, 0, NULL);
    require_metric(p, inner);
    if (ptype(p) != T_COMMA) UNEXPECTED();
    take(p);
    e->label_replace.dst = sdup_str(p, expect1(p, T_STRING).str);
    expect1(p, T_COMMA);
    e->label_replace.replacement = sdup_str(p, expect1(p, T_STRING).str);
    expect1(p, T_COMMA);
    e->label_replace.src = sdup_str(p, expect1(p, T_STRING).str);
    expect1(p, T_COMMA);
    e->label_replace.regex = sdup_str(p, expect1(p, T_STRING).str);
    expect1(p, T_CLOSE_PAREN);
    e->label_replace.inner = &inner->e;
    set_height(p, n, inner->height + 1);
    int rc = lq_regex_compile(p->a, e->label_replace.regex, LQ_RE_ANCHORED, &e->label_replace.re, p->msg,
                              sizeof p->msg);
    if (rc == -ENOMEM) fail_oom(p);
    if (rc != 0) n->err = errf(p, "invalid regex in label_replace: %s", p->msg);
    return n;
}

static lq_node_t *parse_vector(P *p)
{
    take(p);
    lq_node_t *n = new_node(p, ST_LOGQL_EXPR_VECTOR);
    expect1(p, T_OPEN_PAREN);
    lq_token_t num = expect1(p, T_NUMBER);
    expect1(p, T_CLOSE_PAREN);
    char m[300];
    if (lq_parse_float(num.text, &n->e.vector, m, sizeof m) != 0)
        n->err = errf(p, "unable to parse vectorExpr as a float: %s", m);
    return n;
}

static lq_node_t *parse_primary(P *p)
{
    int t = ptype(p);
    if (t == T_OPEN_BRACE) {
        lq_node_t *n = new_node(p, ST_LOGQL_EXPR_LOG);
        parse_selector(p, &n->e.log.selector);
        parse_pipeline(p, CTX_LOG, &n->e.log.pipeline, NULL);
        return n;
    }
    if (t == T_OPEN_PAREN) {
        take(p);
        enter(p);
        lq_node_t *n = parse_expr(p, 0, NULL);
        leave(p);
        if (ptype(p) != T_CLOSE_PAREN) UNEXPECTED();
        take(p);
        return n;
    }
    if (t == T_NUMBER) return literal_node(p, take(p), false);
    if (t == T_ADD || t == T_SUB) {
        take(p);
        if (ptype(p) != T_NUMBER) EXPECTING(T_NUMBER);
        return literal_node(p, take(p), t == T_SUB);
    }
    if (range_op_of(t) >= 0) return parse_range_agg(p);
    if (vec_op_of(t) >= 0) {
        enter(p);
        lq_node_t *n = parse_vec_agg(p);
        leave(p);
        return n;
    }
    if (t == T_LABEL_REPLACE) {
        enter(p);
        lq_node_t *n = parse_label_replace(p);
        leave(p);
        return n;
    }
    if (t == T_VECTOR) return parse_vector(p);
    UNEXPECTED();
}

static int binop_prec(int t, st_logql_binop_t *op)
{
    switch (t) {
    case T_OR: *op = ST_LOGQL_BIN_OR; return 1;
    case T_AND: *op = ST_LOGQL_BIN_AND; return 2;
    case T_UNLESS: *op = ST_LOGQL_BIN_UNLESS; return 2;
    case T_CMP_EQ: *op = ST_LOGQL_BIN_EQ; return 3;
    case T_NEQ: *op = ST_LOGQL_BIN_NEQ; return 3;
    case T_GT: *op = ST_LOGQL_BIN_GT; return 3;
    case T_GTE: *op = ST_LOGQL_BIN_GTE; return 3;
    case T_LT: *op = ST_LOGQL_BIN_LT; return 3;
    case T_LTE: *op = ST_LOGQL_BIN_LTE; return 3;
    case T_ADD: *op = ST_LOGQL_BIN_ADD; return 4;
    case T_SUB: *op = ST_LOGQL_BIN_SUB; return 4;
    case T_MUL: *op = ST_LOGQL_BIN_MUL; return 5;
    case T_DIV: *op = ST_LOGQL_BIN_DIV; return 5;
    case T_MOD: *op = ST_LOGQL_BIN_MOD; return 5;
    case T_POW: *op = ST_LOGQL_BIN_POW; return 6;
    default: return 0;
    }
}

static void parse_binop_modifiers(P *p, st_logql_expr_t *e)
{
    if (ptype(p) == T_BOOL) {
        take(p);
        e->binop.return_bool = true;
    }
    int t = ptype(p);
    if (t != T_ON && t != T_IGNORING) return;
    take(p);
    e->binop.on = t == T_ON;
    e->binop.has_matching = true;
    parse_labels_paren(p, &e->binop.matching, &e->binop.n_matching);
    t = ptype(p);
    if (t != T_GROUP_LEFT && t != T_GROUP_RIGHT) return;
    take(p);
    e->binop.card = t == T_GROUP_LEFT ? ST_LOGQL_CARD_MANY_TO_ONE : ST_LOGQL_CARD_ONE_TO_MANY;
    if (ptype(p) == T_OPEN_PAREN) parse_labels_paren(p, &e->binop.include, &e->binop.n_include);
}

static double fold(st_logql_binop_t op, double l, double r)
{
    switch (op) {
    case ST_LOGQL_BIN_ADD: return l + r;
    case ST_LOGQL_BIN_SUB: return l - r;
    case ST_LOGQL_BIN_MUL: return l * r;
    case ST_LOGQL_BIN_DIV: return r == 0 ? NAN : l / r;
    case ST_LOGQL_BIN_MOD: return r == 0 ? NAN : fmod(l, r);
    case ST_LOGQL_BIN_POW: return pow(l, r);
    case ST_LOGQL_BIN_EQ: return l == r ? 1 : 0;
    case ST_LOGQL_BIN_NEQ: return l != r ? 1 : 0;
    case ST_LOGQL_BIN_GT: return l > r ? 1 : 0;
    case ST_LOGQL_BIN_GTE: return l >= r ? 1 : 0;
    case ST_LOGQL_BIN_LT: return l < r ? 1 : 0;
    case ST_LOGQL_BIN_LTE: return l <= r ? 1 : 0;
    default: return 0;
    }
}

static const char *go_type(const lq_node_t *n)
{
    return n->e.log.pipeline.n > 0 ? "*syntax.PipelineExpr" : "*syntax.MatchersExpr";
}

/* mustNewBinOpExpr: leg type checks, literal checks and folding. */
static lq_node_t *make_binop(P *p, lq_node_t *b, lq_node_t *l, lq_node_t *r)
{
    st_logql_binop_t op = b->e.binop.op;
    const char *name = st_logql_binop_name(op);
    if (is_log(l)) {
        b->err = errf(p, "unexpected type for left leg of binary operation (%s): %s", name, go_type(l));
        return b;
    }
    if (is_log(r)) {
        b->err = errf(p, "unexpected type for right leg of binary operation (%s): %s", name, go_type(r));
        return b;
    }
    bool ll = l->e.kind == ST_LOGQL_EXPR_LITERAL, rl = r->e.kind == ST_LOGQL_EXPR_LITERAL;
    char v[64];
    if (ll && l->err) {
        b->err = l->err;
        return b;
    }
    if (rl && r->err) {
        b->err = r->err;
        return b;
    }
    if (op == ST_LOGQL_BIN_OR || op == ST_LOGQL_BIN_AND || op == ST_LOGQL_BIN_UNLESS) {
        if (ll) {
            snprintf(v, sizeof v, "%f", l->e.literal);
            if (!isfinite(l->e.literal)) lq_fmt_float_v(l->e.literal, v);
            b->err =
                errf(p, "unexpected literal for left leg of logical/set binary operation (%s): %s", name, v);
            return b;
        }
        if (rl) {
            snprintf(v, sizeof v, "%f", r->e.literal);
            if (!isfinite(r->e.literal)) lq_fmt_float_v(r->e.literal, v);
            b->err =
                errf(p, "unexpected literal for right leg of logical/set binary operation (%s): %s", name, v);
            return b;
        }
    }
    if (ll && rl) {
        lq_node_t *n = new_node(p, ST_LOGQL_EXPR_LITERAL);
        n->e.literal = fold(op, l->e.literal, r->e.literal);
        return n;
    }
    b->e.binop.lhs = &l->e;
    b->e.binop.rhs = &r->e;
    set_height(p, b, (l->height > r->height ? l->height : r->height) + 1);
    return b;
}

static lq_node_t *parse_expr(P *p, int minp, lq_node_t *first)
{
    enter(p);
    lq_node_t *lhs = first ? first : parse_primary(p);
    for (;;) {
        st_logql_binop_t op;
        int prec = binop_prec(ptype(p), &op);
        if (prec == 0 || prec < minp) break;
        take(p);
        lq_node_t *b = new_node(p, ST_LOGQL_EXPR_BINOP);
        b->e.binop.op = op;
        parse_binop_modifiers(p, &b->e);
        lq_node_t *rhs = parse_expr(p, op == ST_LOGQL_BIN_POW ? prec : prec + 1, NULL);
        lhs = make_binop(p, b, lhs, rhs);
    }
    leave(p);
    (void)height_of;
    return lhs;
}

/* ---- public entry points ---- */

typedef struct {
    st_logql_expr_t e; /* the root, copied here so that free can find the arena */
    lq_arena_t arena;
} lq_root_t;

/* Roots are lq_root_t; st_logql_free recognises them by this tag in a header before the expr. */
typedef struct {
    uint64_t magic;
    lq_arena_t arena;
    lq_node_t node;
} lq_owner_t;

#define LQ_MAGIC UINT64_C(0x4c6f67514c415354)

static int do_parse_into(const char *q, size_t n, st_logql_expr_t **out, st_logql_error_t *const err);

static int do_parse(const char *q, size_t n, st_logql_expr_t **out, st_logql_error_t *err)
{
    /* err is never reassigned in do_parse_into, so it survives the longjmp there */
    st_logql_error_t dummy;
    return do_parse_into(q, n, out, err ? err : &dummy);
}

static int do_parse_into(const char *q, size_t n, st_logql_expr_t **out, st_logql_error_t *const err)
{
    memset(err, 0, sizeof *err);
    if (n >= ST_LOGQL_MAX_INPUT) {
        snprintf(err->msg, sizeof err->msg, "input size too long (%zu > %d)", n, ST_LOGQL_MAX_INPUT);
        return ST_EPARSE;
    }
    lq_arena_t arena;
    lq_arena_init(&arena);
    P *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->a = &arena;
    lq_lexer_init(&p->L, q ? q : "", n, &arena);
    p->L.err = err;
    p->L.rc = &p->rc;
    p->L.jb = &p->jb;
    int rc;
    lq_node_t *volatile root = NULL;
    if (setjmp(p->jb) == 0) {
        lq_node_t *r = parse_expr(p, 0, NULL);
        if (ptype(p) != T_EOF) UNEXPECTED();
        root = r;
        rc = 0;
    } else {
        rc = p->rc;
    }
    lq_lexer_dispose(&p->L);
    free(p);
    if (rc == 0) rc = lq_validate(&root->e, err);
    if (rc == 0) rc = lq_check_stages(&arena, &root->e, err);
    if (rc != 0) {
        lq_arena_release(&arena);
        return rc;
    }
    lq_owner_t *own = malloc(sizeof *own);
    if (own == NULL) {
        lq_arena_release(&arena);
        return -ENOMEM;
    }
    own->magic = LQ_MAGIC;
    own->arena = arena;
    own->node = *root;
    *out = &own->node.e;
    return 0;
}

int st_logql_parse_ex(const char *q, size_t n, st_logql_expr_t **out, st_logql_error_t *e)
{
    return do_parse(q, n, out, e);
}

int st_logql_error_text(const st_logql_error_t *e, char *buf, size_t bufsz)
{
    if (e->line == 0 && e->col == 0) return snprintf(buf, bufsz, "parse error : %s", e->msg);
    return snprintf(buf, bufsz, "parse error at line %d, col %d: %s", e->line, e->col, e->msg);
}

int st_logql_parse(const char *q, size_t n, st_logql_expr_t **out, char *err, size_t errsz)
{
    st_logql_error_t e;
    int rc = do_parse(q, n, out, &e);
    if (err != NULL && errsz > 0) {
        if (rc == ST_EPARSE)
            st_logql_error_text(&e, err, errsz);
        else if (rc != 0)
            snprintf(err, errsz, "%s", st_strerror(rc));
        else
            err[0] = '\0';
    }
    return rc;
}

void st_logql_free(st_logql_expr_t *e)
{
    if (e == NULL) return;
    lq_owner_t *own = (lq_owner_t *)(void *)((char *)e - offsetof(lq_owner_t, node));
    ST_ASSERT(own->magic == LQ_MAGIC);
    own->magic = 0;
    lq_arena_release(&own->arena);
    free(own);
}

bool st_logql_is_log_query(const st_logql_expr_t *e)
{
    return e != NULL && e->kind == ST_LOGQL_EXPR_LOG;
}

int st_logql_walk_selectors(const st_logql_expr_t *e, st_logql_selector_cb cb, void *arg)
{
    if (e == NULL) return 0;
    switch (e->kind) {
    case ST_LOGQL_EXPR_LOG: return cb(&e->log.selector, &e->log.pipeline, NULL, arg);
    case ST_LOGQL_EXPR_RANGE_AGG:
        return cb(&e->range_agg.range.selector, &e->range_agg.range.pipeline, &e->range_agg.range, arg);
    case ST_LOGQL_EXPR_VECTOR_AGG: return st_logql_walk_selectors(e->vec_agg.inner, cb, arg);
    case ST_LOGQL_EXPR_LABEL_REPLACE: return st_logql_walk_selectors(e->label_replace.inner, cb, arg);
    case ST_LOGQL_EXPR_BINOP: {
        int rc = st_logql_walk_selectors(e->binop.lhs, cb, arg);
        if (rc != 0) return rc;
        return st_logql_walk_selectors(e->binop.rhs, cb, arg);
    }
    default: return 0;
    }
}

const char *st_logql_range_op_name(st_logql_range_op_t op)
{
    static const char *const n[] = {"count_over_time",  "rate",
                                    "rate_counter",     "bytes_over_time",
                                    "bytes_rate",       "avg_over_time",
                                    "sum_over_time",    "min_over_time",
                                    "max_over_time",    "stdvar_over_time",
                                    "stddev_over_time", "quantile_over_time",
                                    "first_over_time",  "last_over_time",
                                    "absent_over_time"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

const char *st_logql_vec_op_name(st_logql_vec_op_t op)
{
    static const char *const n[] = {"sum",    "avg",  "count",   "max",  "min",       "stddev",
                                    "stdvar", "topk", "bottomk", "sort", "sort_desc", "approx_topk"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

const char *st_logql_binop_name(st_logql_binop_t op)
{
    static const char *const n[] = {"or", "and", "unless", "==", "!=", ">", ">=", "<",
                                    "<=", "+",   "-",      "*",  "/",  "%", "^"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

const char *st_logql_line_op_name(st_logql_line_op_t op)
{
    static const char *const n[] = {"|=", "!=", "|~", "!~", "|>", "!>"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

const char *st_logql_cmp_name(st_logql_cmp_t op)
{
    static const char *const n[] = {"==", "!=", ">", ">=", "<", "<="};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}
