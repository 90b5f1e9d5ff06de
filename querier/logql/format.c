/* format.c: prints a LogQL AST back as text: Loki's canonical one-line String() form (fully
 * parenthesised binary operations, "|= \"a\" != \"b\"" line filters, humanized bytes...) and the
 * multi-line form of Loki's prettier (/format_query). It does not parse. */
#include "querier/logql/logql_int.h"

#include "common/err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TRY(x)                                                                                               \
    do {                                                                                                     \
        if ((x) < 0) return -ENOMEM;                                                                         \
    } while (0)

static int puts_(st_buf_t *b, const char *s)
{
    return st_buf_puts(b, s);
}
static int putstr(st_buf_t *b, st_str_t s)
{
    return st_buf_append(b, s.p ? s.p : "", s.n);
}
static int quote(st_buf_t *b, st_str_t s)
{
    return lq_quote(b, s);
}

static const char *match_op(st_logql_match_t t)
{
    switch (t) {
    case ST_LOGQL_MATCH_NEQ: return "!=";
    case ST_LOGQL_MATCH_RE: return "=~";
    case ST_LOGQL_MATCH_NRE: return "!~";
    default: return "=";
    }
}

static int fmt_matcher(st_buf_t *b, const st_logql_matcher_t *m)
{
    TRY(putstr(b, m->name));
    TRY(puts_(b, match_op(m->type)));
    return quote(b, m->value);
}

int st_logql_format_selector(const st_logql_selector_t *s, st_buf_t *b)
{
    TRY(st_buf_putc(b, '{'));
    for (size_t i = 0; i < s->n; i++) {
        if (i > 0) TRY(puts_(b, ", "));
        TRY(fmt_matcher(b, &s->v[i]));
    }
    return st_buf_putc(b, '}');
}

/* ---- the label-filter regex quirk ----
 * Loki prints a positive label-filter regex that its simplifier cannot turn into literal tests
 * between backticks (LineFilterLabelFilter.String). The simplifier works on Go's parsed regex; this
 * approximates it: literals, .* / .+ wrappers and literal alternations (with Go's prefix factoring
 * and single-character merging) are simple, anything else is not. */

typedef struct {
    char s[256];
    size_t n; /* bytes */
    size_t runes;
} lit_t;

/* Parses a pure literal (escaped punctuation allowed) from p[0..n). */
static bool pure_literal(const char *p, size_t n, lit_t *out)
{
    out->n = 0;
    out->runes = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n) return false;
            char e = p[++i];
            if (isalnum((unsigned char)e) || (unsigned char)e >= 0x80) return false;
            c = e;
        } else if (strchr(".+*?()|[]{}^$", c) != NULL) {
            return false;
        }
        if (out->n >= sizeof out->s) return false;
        out->s[out->n++] = c;
        if (((unsigned char)c & 0xC0) != 0x80) out->runes++;
    }
    return true;
}

static size_t common_prefix(const lit_t *a, const lit_t *b, size_t lim)
{
    size_t k = 0;
    while (k < lim && k < a->n && k < b->n && a->s[k] == b->s[k]) k++;
    while (k > 0 && k < a->n && ((unsigned char)a->s[k] & 0xC0) == 0x80) k--; /* whole runes */
    return k;
}

static size_t rune_count(const char *s, size_t n)
{
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) r++;
    return r;
}

static bool alt_ok(lit_t *v, size_t n, int depth)
{
    if (depth > 16) return false;
    /* round 1: factor runs that share a literal prefix */
    size_t start = 0, plen = 0;
    bool prev_single = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && i > start) {
            size_t same = common_prefix(&v[start], &v[i], plen);
            if (same > 0) {
                plen = same;
                continue;
            }
        }
        if (i > start) {
            bool single;
            if (i - start >= 2) {
                /* prefix(suffixes...) */
                lit_t sub[64];
                size_t m = i - start;
                if (m > 64) return false;
                for (size_t j = 0; j < m; j++) {
                    sub[j].n = v[start + j].n - plen;
                    memcpy(sub[j].s, v[start + j].s + plen, sub[j].n);
                    sub[j].runes = rune_count(sub[j].s, sub[j].n);
                }
                if (!alt_ok(sub, m, depth + 1)) return false;
                single = false;
            } else {
                single = v[start].runes == 1;
            }
            /* round 3: adjacent single-rune literals become a character class */
            if (single && prev_single) return false;
            prev_single = single;
        }
        if (i < n) {
            start = i;
            plen = v[i].n;
        }
    }
    return true;
}

static bool regex_simplifiable(st_str_t re)
{
    const char *p = re.p;
    size_t n = re.n;
    if (n >= 4 && memcmp(p, "(?i)", 4) == 0) {
        p += 4;
        n -= 4;
    }
    /* one outer group is cleared by the simplifier */
    if (n >= 2 && p[0] == '(' && p[n - 1] == ')') {
        size_t skip = (n >= 4 && p[1] == '?' && p[2] == ':') ? 3 : 1;
        if (skip == 1 && n >= 2 && p[1] == '?') skip = 0;
        if (skip > 0) {
            int depth = 0;
            bool outer = true;
            for (size_t i = 0; i < n; i++) {
                if (p[i] == '\\') {
                    i++;
                    continue;
                }
                if (p[i] == '(') depth++;
                if (p[i] == ')') {
                    depth--;
                    if (depth == 0 && i != n - 1) outer = false;
                }
            }
            if (outer) {
                p += skip;
                n -= skip + 1;
            }
        }
    }
    if (n == 0) return true;
    if ((n == 2 && (memcmp(p, ".*", 2) == 0 || memcmp(p, ".+", 2) == 0))) return true;
    lit_t one;
    /* .*lit, lit.*, .*lit.* */
    {
        const char *q = p;
        size_t m = n;
        bool wrapped = false;
        if (m >= 2 && memcmp(q, ".*", 2) == 0) {
            q += 2;
            m -= 2;
            wrapped = true;
        }
        if (m >= 2 && memcmp(q + m - 2, ".*", 2) == 0 && !(m >= 3 && q[m - 3] == '\\')) {
            m -= 2;
            wrapped = true;
        }
        if (pure_literal(q, m, &one) && (m > 0 || !wrapped)) return true;
    }
    /* literal alternation */
    lit_t alts[64];
    size_t na = 0, st = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] == '\\') {
            i++;
            continue;
        }
        if (i == n || p[i] == '|') {
            if (na == 64 || !pure_literal(p + st, i - st, &alts[na])) return false;
            na++;
            st = i + 1;
        }
    }
    return na >= 2 && alt_ok(alts, na, 0);
}

static int fmt_float_f(st_buf_t *b, double v)
{
    char t[400];
    if (v == 0) v = 0; /* print -0 as 0 so the text parses back to a number */
    lq_fmt_float_f(v, t, sizeof t);
    return puts_(b, t);
}

int st_logql_format_label_filter(const st_logql_label_filter_t *f, st_buf_t *b)
{
    char t[64];
    switch (f->kind) {
    case ST_LOGQL_LF_AND:
    case ST_LOGQL_LF_OR:
        TRY(puts_(b, "( "));
        TRY(st_logql_format_label_filter(f->bin.left, b));
        TRY(puts_(b, f->kind == ST_LOGQL_LF_AND ? " , " : " or "));
        TRY(st_logql_format_label_filter(f->bin.right, b));
        return puts_(b, " )");
    case ST_LOGQL_LF_STRING:
        if (f->str.type == ST_LOGQL_MATCH_RE && !regex_simplifiable(f->str.value)) {
            TRY(putstr(b, f->str.name));
            TRY(puts_(b, "=~"));
            if (memchr(f->str.value.p, '`', f->str.value.n) != NULL) return quote(b, f->str.value);
            TRY(st_buf_putc(b, '`'));
            TRY(putstr(b, f->str.value));
            return st_buf_putc(b, '`');
        }
        return fmt_matcher(b, &f->str);
    case ST_LOGQL_LF_NUMBER:
        TRY(putstr(b, f->num.name));
        TRY(puts_(b, st_logql_cmp_name(f->num.op)));
        return fmt_float_f(b, f->num.value);
    case ST_LOGQL_LF_DURATION:
        TRY(putstr(b, f->dur.name));
        TRY(puts_(b, st_logql_cmp_name(f->dur.op)));
        lq_fmt_go_duration(f->dur.ns, t);
        return puts_(b, t);
    case ST_LOGQL_LF_BYTES: {
        TRY(putstr(b, f->bytes.name));
        TRY(puts_(b, st_logql_cmp_name(f->bytes.op)));
        /* Loki prints humanize.Bytes, which rounds. Where that text would not read back to a value
         * printing the same way (999999 -> "1000kB" -> "1.0MB") or not read back at all ("EB"),
         * the exact "<n>B" is printed so that formatting stays idempotent. */
        uint64_t back;
        char t2[64];
        size_t k = lq_fmt_bytes(f->bytes.bytes, t);
        if (memchr(t, 'E', k) != NULL || lq_parse_bytes(st_str(t, k), &back) != 0 ||
            lq_fmt_bytes(back, t2) != k || memcmp(t, t2, k) != 0)
            snprintf(t, sizeof t, "%lluB", (unsigned long long)f->bytes.bytes);
        /* "0B" right after an operator lexes as a binary literal in Loki's scanner */
        if (f->bytes.bytes == 0) snprintf(t, sizeof t, "0.0B");
        return puts_(b, t);
    }
    case ST_LOGQL_LF_IP:
        TRY(putstr(b, f->ip.name));
        TRY(puts_(b, f->ip.op == ST_LOGQL_CMP_NEQ ? "!=" : "="));
        TRY(puts_(b, "ip("));
        TRY(quote(b, f->ip.ip.text));
        return st_buf_putc(b, ')');
    }
    return 0;
}

static int fmt_operand(st_buf_t *b, const st_logql_line_alt_t *a)
{
    if (!a->is_ip) return quote(b, a->value);
    TRY(puts_(b, "ip("));
    TRY(quote(b, a->value));
    return st_buf_putc(b, ')');
}

static bool negative(st_logql_line_op_t op)
{
    return op == ST_LOGQL_LINE_NOT_CONTAINS || op == ST_LOGQL_LINE_NOT_REGEX ||
           op == ST_LOGQL_LINE_NOT_PATTERN;
}

static int fmt_line_filter(st_buf_t *b, const st_logql_line_filter_t *f)
{
    const char *op = st_logql_line_op_name(f->op);
    for (size_t i = 0; i < f->n_alts; i++) {
        if (i == 0 || negative(f->op)) {
            if (i > 0) TRY(st_buf_putc(b, ' '));
            TRY(puts_(b, op));
            TRY(st_buf_putc(b, ' '));
        } else {
            TRY(puts_(b, " or "));
        }
        TRY(fmt_operand(b, &f->alts[i]));
    }
    return 0;
}

static int fmt_extracts(st_buf_t *b, const st_logql_extract_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) TRY(st_buf_putc(b, ','));
        TRY(putstr(b, v[i].name));
        TRY(st_buf_putc(b, '='));
        TRY(quote(b, v[i].expr));
    }
    return 0;
}

int lq_format_stage(const st_logql_stage_t *s, st_buf_t *b)
{
    switch (s->kind) {
    case ST_LOGQL_STAGE_LINE_FILTER: return fmt_line_filter(b, &s->line);
    case ST_LOGQL_STAGE_JSON:
        if (s->json.n == 0) return puts_(b, "| json");
        TRY(puts_(b, "| json "));
        return fmt_extracts(b, s->json.v, s->json.n);
    case ST_LOGQL_STAGE_LOGFMT:
        if (s->logfmt.n == 0) {
            TRY(puts_(b, "| logfmt"));
            if (s->logfmt.strict) TRY(puts_(b, " --strict"));
            if (s->logfmt.keep_empty) TRY(puts_(b, " --keep-empty"));
            return 0;
        }
        TRY(puts_(b, "| logfmt "));
        if (s->logfmt.strict) TRY(puts_(b, "--strict "));
        if (s->logfmt.keep_empty) TRY(puts_(b, "--keep-empty "));
        return fmt_extracts(b, s->logfmt.v, s->logfmt.n);
    case ST_LOGQL_STAGE_REGEXP: TRY(puts_(b, "| regexp ")); return quote(b, s->regexp.re);
    case ST_LOGQL_STAGE_PATTERN: TRY(puts_(b, "| pattern ")); return quote(b, s->pattern.text);
    case ST_LOGQL_STAGE_UNPACK: return puts_(b, "| unpack");
    case ST_LOGQL_STAGE_LABEL_FILTER:
        TRY(puts_(b, "| "));
        return st_logql_format_label_filter(s->label_filter, b);
    case ST_LOGQL_STAGE_LINE_FORMAT: TRY(puts_(b, "| line_format ")); return quote(b, s->line_format);
    case ST_LOGQL_STAGE_LABEL_FORMAT:
        TRY(puts_(b, "| label_format "));
        for (size_t i = 0; i < s->label_format.n; i++) {
            const st_logql_label_fmt_t *f = &s->label_format.v[i];
            if (i > 0) TRY(st_buf_putc(b, ','));
            TRY(putstr(b, f->dst));
            TRY(st_buf_putc(b, '='));
            TRY(f->rename ? putstr(b, f->value) : quote(b, f->value));
        }
        return 0;
    case ST_LOGQL_STAGE_DROP:
    case ST_LOGQL_STAGE_KEEP:
        TRY(puts_(b, s->kind == ST_LOGQL_STAGE_DROP ? "| drop " : "| keep "));
        for (size_t i = 0; i < s->names.n; i++) {
            if (i > 0) TRY(st_buf_putc(b, ','));
            if (s->names.v[i].has_matcher)
                TRY(fmt_matcher(b, &s->names.v[i].matcher));
            else
                TRY(putstr(b, s->names.v[i].name));
        }
        return 0;
    case ST_LOGQL_STAGE_DECOLORIZE: return puts_(b, "| decolorize");
    }
    return 0;
}

int lq_format_line_filters(const st_logql_stage_t *const *v, size_t n, st_buf_t *b)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) TRY(st_buf_putc(b, ' '));
        TRY(lq_format_stage(v[i], b));
    }
    return 0;
}

int st_logql_format_pipeline(const st_logql_pipeline_t *p, st_buf_t *b)
{
    for (size_t i = 0; i < p->n; i++) {
        if (i > 0) TRY(st_buf_putc(b, ' '));
        TRY(lq_format_stage(&p->v[i], b));
    }
    return 0;
}

static int fmt_log(st_buf_t *b, const st_logql_selector_t *s, const st_logql_pipeline_t *p)
{
    TRY(st_logql_format_selector(s, b));
    if (p->n == 0) return 0;
    TRY(st_buf_putc(b, ' '));
    return st_logql_format_pipeline(p, b);
}

static const char *conv_name(st_logql_conv_t c)
{
    switch (c) {
    case ST_LOGQL_CONV_BYTES: return "bytes";
    case ST_LOGQL_CONV_DURATION: return "duration";
    case ST_LOGQL_CONV_DURATION_SECONDS: return "duration_seconds";
    default: return "";
    }
}

static int fmt_unwrap(st_buf_t *b, const st_logql_unwrap_t *u)
{
    if (u->conv != ST_LOGQL_CONV_NONE) {
        TRY(puts_(b, " | unwrap "));
        TRY(puts_(b, conv_name(u->conv)));
        TRY(st_buf_putc(b, '('));
        TRY(putstr(b, u->label));
        TRY(st_buf_putc(b, ')'));
    } else {
        TRY(puts_(b, " | unwrap "));
        TRY(putstr(b, u->label));
    }
    for (size_t i = 0; i < u->n_post; i++) {
        TRY(puts_(b, " | "));
        TRY(st_logql_format_label_filter(u->post[i], b));
    }
    return 0;
}

static int fmt_log_range(st_buf_t *b, const st_logql_log_range_t *r)
{
    char t[64];
    TRY(fmt_log(b, &r->selector, &r->pipeline));
    if (r->unwrap) TRY(fmt_unwrap(b, r->unwrap));
    lq_fmt_prom_duration(r->range_ns, t);
    TRY(st_buf_putc(b, '['));
    TRY(puts_(b, t));
    TRY(st_buf_putc(b, ']'));
    if (r->offset_ns != 0) {
        lq_fmt_go_duration(r->offset_ns, t);
        TRY(puts_(b, " offset "));
        TRY(puts_(b, t));
    }
    return 0;
}

static int fmt_labels(st_buf_t *b, const st_str_t *v, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        if (i > 0) TRY(puts_(b, sep));
        TRY(putstr(b, v[i]));
    }
    return 0;
}

static int fmt_grouping(st_buf_t *b, const st_logql_grouping_t *g)
{
    TRY(puts_(b, g->without ? " without (" : " by ("));
    TRY(fmt_labels(b, g->labels, g->n, ","));
    return st_buf_putc(b, ')');
}

static bool vec_grouping_shown(const st_logql_grouping_t *g)
{
    return g->present && (g->n > 0 || g->without);
}

static int fmt_literal(st_buf_t *b, double v)
{
    char t[64];
    if (v == 0) v = 0; /* -0 would read back as a duration */
    lq_fmt_float_v(v, t);
    return puts_(b, t);
}

static int fmt_binop_op(st_buf_t *b, const st_logql_expr_t *e, const char *labsep)
{
    TRY(puts_(b, st_logql_binop_name(e->binop.op)));
    if (e->binop.return_bool) TRY(puts_(b, " bool"));
    if (e->binop.on || e->binop.n_matching > 0) {
        TRY(puts_(b, e->binop.on ? " on (" : " ignoring ("));
        TRY(fmt_labels(b, e->binop.matching, e->binop.n_matching, labsep));
        TRY(puts_(b, ") "));
        if (e->binop.card == ST_LOGQL_CARD_MANY_TO_ONE) TRY(puts_(b, "group_left"));
        if (e->binop.card == ST_LOGQL_CARD_ONE_TO_MANY) TRY(puts_(b, "group_right"));
        if (e->binop.n_include > 0) {
            TRY(puts_(b, " ("));
            TRY(fmt_labels(b, e->binop.include, e->binop.n_include, labsep));
            TRY(st_buf_putc(b, ')'));
        }
    }
    return 0;
}

static int fmt_expr(st_buf_t *b, const st_logql_expr_t *e)
{
    char t[400];
    switch (e->kind) {
    case ST_LOGQL_EXPR_LOG: return fmt_log(b, &e->log.selector, &e->log.pipeline);
    case ST_LOGQL_EXPR_RANGE_AGG:
        TRY(puts_(b, st_logql_range_op_name(e->range_agg.op)));
        TRY(st_buf_putc(b, '('));
        if (e->range_agg.has_param) {
            TRY(fmt_float_f(b, e->range_agg.param));
            TRY(st_buf_putc(b, ','));
        }
        TRY(fmt_log_range(b, &e->range_agg.range));
        TRY(st_buf_putc(b, ')'));
        if (e->range_agg.grouping.present) TRY(fmt_grouping(b, &e->range_agg.grouping));
        return 0;
    case ST_LOGQL_EXPR_VECTOR_AGG:
        TRY(puts_(b, st_logql_vec_op_name(e->vec_agg.op)));
        if (vec_grouping_shown(&e->vec_agg.grouping)) TRY(fmt_grouping(b, &e->vec_agg.grouping));
        TRY(st_buf_putc(b, '('));
        if (e->vec_agg.has_param) TRY(st_buf_printf(b, "%lld,", (long long)e->vec_agg.param));
        TRY(fmt_expr(b, e->vec_agg.inner));
        return st_buf_putc(b, ')');
    case ST_LOGQL_EXPR_BINOP:
        TRY(st_buf_putc(b, '('));
        TRY(fmt_expr(b, e->binop.lhs));
        TRY(st_buf_putc(b, ' '));
        TRY(fmt_binop_op(b, e, ","));
        TRY(st_buf_putc(b, ' '));
        TRY(fmt_expr(b, e->binop.rhs));
        return st_buf_putc(b, ')');
    case ST_LOGQL_EXPR_LITERAL: return fmt_literal(b, e->literal);
    case ST_LOGQL_EXPR_VECTOR:
        if (isfinite(e->vector))
            snprintf(t, sizeof t, "%f", e->vector);
        else
            lq_fmt_float_v(e->vector, t);
        TRY(puts_(b, "vector("));
        TRY(puts_(b, t));
        return st_buf_putc(b, ')');
    case ST_LOGQL_EXPR_LABEL_REPLACE:
        TRY(puts_(b, "label_replace("));
        TRY(fmt_expr(b, e->label_replace.inner));
        TRY(st_buf_putc(b, ','));
        TRY(quote(b, e->label_replace.dst));
        TRY(st_buf_putc(b, ','));
        TRY(quote(b, e->label_replace.replacement));
        TRY(st_buf_putc(b, ','));
        TRY(quote(b, e->label_replace.src));
        TRY(st_buf_putc(b, ','));
        TRY(quote(b, e->label_replace.regex));
        return st_buf_putc(b, ')');
    }
    return 0;
}

int st_logql_format(const st_logql_expr_t *e, st_buf_t *out)
{
    size_t mark = out->len;
    int rc = fmt_expr(out, e);
    if (rc < 0) out->len = mark;
    return rc;
}

/* ---- pretty form (Loki's prettier: 2-space indents, split when a node's text exceeds 100) ---- */

#define MAX_LINE 100

static int indent(st_buf_t *b, int level)
{
    for (int i = 0; i < level; i++) TRY(puts_(b, "  "));
    return 0;
}

static size_t text_len(int (*f)(st_buf_t *, const void *), const void *x)
{
    st_buf_t t = ST_BUF_INIT;
    size_t n = f(&t, x) < 0 ? 0 : t.len;
    st_buf_free(&t);
    return n;
}

static int fx_expr(st_buf_t *b, const void *x)
{
    return fmt_expr(b, x);
}
static int fx_range(st_buf_t *b, const void *x)
{
    return fmt_log_range(b, x);
}

static int pretty_log(st_buf_t *b, const st_logql_selector_t *s, const st_logql_pipeline_t *p, int level)
{
    st_buf_t t = ST_BUF_INIT;
    int rc = fmt_log(&t, s, p);
    bool split = rc == 0 && t.len > MAX_LINE && p->n > 0;
    st_buf_free(&t);
    if (rc < 0) return rc;
    TRY(indent(b, level));
    if (!split) return fmt_log(b, s, p);
    TRY(st_logql_format_selector(s, b));
    size_t i = 0;
    while (i < p->n) {
        TRY(st_buf_putc(b, '\n'));
        if (p->v[i].kind != ST_LOGQL_STAGE_LINE_FILTER) {
            TRY(indent(b, level + 1));
            TRY(lq_format_stage(&p->v[i], b));
            i++;
            continue;
        }
        /* a run of line filters is one stage in Loki: one line, or one line per filter if long */
        size_t j = i;
        st_buf_t run = ST_BUF_INIT;
        while (j < p->n && p->v[j].kind == ST_LOGQL_STAGE_LINE_FILTER) {
            if (j > i) st_buf_putc(&run, ' ');
            lq_format_stage(&p->v[j], &run);
            j++;
        }
        bool long_run = run.len > MAX_LINE;
        st_buf_free(&run);
        for (size_t k = i; k < j; k++) {
            if (k > i) TRY(long_run ? st_buf_putc(b, '\n') : st_buf_putc(b, ' '));
            if (k == i || long_run) TRY(indent(b, level + 1));
            TRY(lq_format_stage(&p->v[k], b));
        }
        i = j;
    }
    return 0;
}

/* Loki's Grouping.Pretty, except that an empty list that matters is kept ("without ()", and
 * "by ()" of a range aggregation) so the text parses back to the same query. */
static int pretty_grouping(st_buf_t *b, const st_logql_grouping_t *g, bool range)
{
    if (g->n == 0 && (g->without || range)) return puts_(b, g->without ? " without ()" : " by ()");
    if (g->without)
        TRY(puts_(b, " without"));
    else if (g->n > 0)
        TRY(puts_(b, " by"));
    if (g->n > 0) {
        TRY(puts_(b, " ("));
        TRY(fmt_labels(b, g->labels, g->n, ", "));
        TRY(st_buf_putc(b, ')'));
    }
    return 0;
}

static int pretty_expr(st_buf_t *b, const st_logql_expr_t *e, int level);
static int pretty_operand(st_buf_t *b, const st_logql_expr_t *e, int level);

static int pretty_log_range(st_buf_t *b, const st_logql_log_range_t *r, int level)
{
    char t[64];
    TRY(pretty_log(b, &r->selector, &r->pipeline, level));
    if (r->unwrap) {
        const st_logql_unwrap_t *u = r->unwrap;
        TRY(st_buf_putc(b, '\n'));
        TRY(indent(b, level + 1));
        if (u->conv != ST_LOGQL_CONV_NONE) {
            TRY(st_buf_printf(b, "| unwrap %s(", conv_name(u->conv)));
            TRY(putstr(b, u->label));
            TRY(st_buf_putc(b, ')'));
        } else {
            TRY(puts_(b, "| unwrap "));
            TRY(putstr(b, u->label));
        }
        for (size_t i = 0; i < u->n_post; i++) {
            TRY(st_buf_putc(b, '\n'));
            TRY(indent(b, level + 1));
            TRY(puts_(b, "| "));
            TRY(st_logql_format_label_filter(u->post[i], b));
        }
    }
    lq_fmt_prom_duration(r->range_ns, t);
    TRY(st_buf_printf(b, " [%s]", t));
    if (r->offset_ns != 0) {
        lq_fmt_prom_duration(r->offset_ns, t);
        TRY(st_buf_printf(b, " offset %s", t));
    }
    return 0;
}

/* Loki's prettier prints a split binary operation without parentheses, which changes the meaning
 * of "a - (b - c)"; a split operand that is itself a binary operation gets them here. */
static int pretty_operand(st_buf_t *b, const st_logql_expr_t *e, int level)
{
    if (e->kind != ST_LOGQL_EXPR_BINOP || text_len(fx_expr, e) <= MAX_LINE) return pretty_expr(b, e, level);
    TRY(indent(b, level));
    TRY(puts_(b, "(\n"));
    TRY(pretty_expr(b, e, level + 1));
    TRY(st_buf_putc(b, '\n'));
    TRY(indent(b, level));
    return st_buf_putc(b, ')');
}

static int pretty_expr(st_buf_t *b, const st_logql_expr_t *e, int level)
{
    bool split = text_len(fx_expr, e) > MAX_LINE;
    char t[64];
    switch (e->kind) {
    case ST_LOGQL_EXPR_LOG: return pretty_log(b, &e->log.selector, &e->log.pipeline, level);
    case ST_LOGQL_EXPR_RANGE_AGG:
        TRY(indent(b, level));
        if (!split) return fmt_expr(b, e);
        TRY(puts_(b, st_logql_range_op_name(e->range_agg.op)));
        TRY(puts_(b, "(\n"));
        if (e->range_agg.has_param) {
            TRY(indent(b, level + 1));
            lq_fmt_float_v(e->range_agg.param, t);
            TRY(st_buf_printf(b, "%s,\n", t));
        }
        TRY(pretty_log_range(b, &e->range_agg.range, level + 1));
        TRY(st_buf_putc(b, '\n'));
        TRY(indent(b, level));
        TRY(st_buf_putc(b, ')'));
        if (e->range_agg.grouping.present) TRY(pretty_grouping(b, &e->range_agg.grouping, true));
        (void)fx_range;
        return 0;
    case ST_LOGQL_EXPR_VECTOR_AGG:
        TRY(indent(b, level));
        if (!split) return fmt_expr(b, e);
        TRY(puts_(b, st_logql_vec_op_name(e->vec_agg.op)));
        if (e->vec_agg.grouping.present) TRY(pretty_grouping(b, &e->vec_agg.grouping, false));
        TRY(puts_(b, "(\n"));
        if (e->vec_agg.has_param) {
            TRY(indent(b, level + 1));
            TRY(st_buf_printf(b, "%lld,\n", (long long)e->vec_agg.param));
        }
        TRY(pretty_expr(b, e->vec_agg.inner, level + 1));
        TRY(st_buf_putc(b, '\n'));
        TRY(indent(b, level));
        return st_buf_putc(b, ')');
    case ST_LOGQL_EXPR_BINOP:
        if (!split) {
            TRY(indent(b, level));
            return fmt_expr(b, e);
        }
        TRY(pretty_operand(b, e->binop.lhs, level + 1));
        TRY(st_buf_putc(b, '\n'));
        TRY(indent(b, level));
        TRY(fmt_binop_op(b, e, ", "));
        TRY(st_buf_putc(b, '\n'));
        return pretty_operand(b, e->binop.rhs, level + 1);
    case ST_LOGQL_EXPR_LABEL_REPLACE: {
        TRY(indent(b, level));
        if (!split) return fmt_expr(b, e);
        TRY(puts_(b, "label_replace(\n"));
        TRY(pretty_expr(b, e->label_replace.inner, level + 1));
        const st_str_t *args[] = {&e->label_replace.dst, &e->label_replace.replacement, &e->label_replace.src,
                                  &e->label_replace.regex};
        for (int i = 0; i < 4; i++) {
            TRY(puts_(b, ",\n"));
            TRY(indent(b, level + 1));
            TRY(quote(b, *args[i]));
        }
        TRY(st_buf_putc(b, '\n'));
        TRY(indent(b, level));
        return st_buf_putc(b, ')');
    }
    default: TRY(indent(b, level)); return fmt_expr(b, e);
    }
}

int st_logql_format_pretty(const st_logql_expr_t *e, st_buf_t *out)
{
    size_t mark = out->len;
    int rc = pretty_expr(out, e, 0);
    if (rc < 0) out->len = mark;
    return rc;
}
