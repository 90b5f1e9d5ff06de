/* pipeline.c: compiled LogQL pipelines. Line filters become substring tests where the expression
 * allows (plain literals, (?i) literals, alternations of literals), PCRE2 JIT matches otherwise,
 * pattern and ip() tests; each compiled pipeline owns its match data and is used by one thread. */
#include "querier/querier_int.h"

#include "common/err.h"
#include "common/hash.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum { ALT_LIT, ALT_LIT_CI, ALT_RE, ALT_PATTERN, ALT_IP } alt_kind_t;

typedef struct {
    alt_kind_t kind;
    st_str_t lit;            /* LIT; LIT_CI: lower-cased copy (owned) */
    char *owned;
    const pcre2_code *re;
    const st_logql_pattern_t *pat;
    const st_logql_ip_t *ip;
} alt_t;

typedef struct {
    bool negate;
    alt_t *alts;
    size_t n;
} lfilter_t;

struct st_pipeline {
    lfilter_t *f;
    size_t nf;
    pcre2_match_data *md;
    bool line_only;
    const st_logql_pipeline_t *src; /* for clones */
    st_labels_t merged;             /* st_pipeline_run result labels (stream + metadata) */
    st_buf_t text;
};

static bool is_plain_literal(st_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if (strchr("\\.+*?()|[]{}^$", s.p[i]) != NULL) return false;
    return true;
}

/* Splits a|b|c into plain literals; false if any part is not plain (or empty). */
static bool split_alternation(st_str_t s, st_str_t *parts, size_t max, size_t *n)
{
    *n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= s.n; i++) {
        if (i == s.n || s.p[i] == '|') {
            st_str_t part = st_str(s.p + start, i - start);
            if (part.n == 0 || !is_plain_literal(part) || *n == max) return false;
            parts[(*n)++] = part;
            start = i + 1;
        }
    }
    return *n > 1;
}

static int add_alt(lfilter_t *f, alt_t a)
{
    alt_t *x = realloc(f->alts, (f->n + 1) * sizeof *x);
    if (x == NULL) return -ENOMEM;
    f->alts = x;
    f->alts[f->n++] = a;
    return 0;
}

static int compile_line_filter(const st_logql_line_filter_t *lf, lfilter_t *out)
{
    memset(out, 0, sizeof *out);
    out->negate = lf->op == ST_LOGQL_LINE_NOT_CONTAINS || lf->op == ST_LOGQL_LINE_NOT_REGEX ||
                  lf->op == ST_LOGQL_LINE_NOT_PATTERN;
    for (size_t i = 0; i < lf->n_alts; i++) {
        const st_logql_line_alt_t *a = &lf->alts[i];
        alt_t c;
        memset(&c, 0, sizeof c);
        if (a->is_ip) {
            c.kind = ALT_IP;
            c.ip = &a->ip;
            ST_TRY(add_alt(out, c));
            continue;
        }
        switch (lf->op) {
        case ST_LOGQL_LINE_CONTAINS:
        case ST_LOGQL_LINE_NOT_CONTAINS:
            c.kind = ALT_LIT;
            c.lit = a->value;
            ST_TRY(add_alt(out, c));
            break;
        case ST_LOGQL_LINE_REGEX:
        case ST_LOGQL_LINE_NOT_REGEX: {
            st_str_t v = a->value;
            st_str_t parts[16];
            size_t np;
            if (is_plain_literal(v)) {
                c.kind = ALT_LIT;
                c.lit = v;
                ST_TRY(add_alt(out, c));
            } else if (v.n > 4 && memcmp(v.p, "(?i)", 4) == 0 && is_plain_literal(st_str(v.p + 4, v.n - 4)) &&
                       v.n > 4) {
                c.kind = ALT_LIT_CI;
                c.owned = malloc(v.n - 4 + 1);
                if (c.owned == NULL) return -ENOMEM;
                for (size_t k = 4; k < v.n; k++) c.owned[k - 4] = (char)tolower((unsigned char)v.p[k]);
                c.lit = st_str(c.owned, v.n - 4);
                ST_TRY(add_alt(out, c));
            } else if (split_alternation(v, parts, 16, &np)) {
                for (size_t k = 0; k < np; k++) {
                    alt_t p;
                    memset(&p, 0, sizeof p);
                    p.kind = ALT_LIT;
                    p.lit = parts[k];
                    ST_TRY(add_alt(out, p));
                }
            } else {
                c.kind = ALT_RE;
                c.re = a->re;
                ST_TRY(add_alt(out, c));
            }
            break;
        }
        case ST_LOGQL_LINE_PATTERN:
        case ST_LOGQL_LINE_NOT_PATTERN:
            c.kind = ALT_PATTERN;
            c.pat = &a->pattern;
            ST_TRY(add_alt(out, c));
            break;
        }
    }
    return 0;
}

int st_pipeline_compile(const st_logql_pipeline_t *p, const st_logql_unwrap_t *unwrap, st_pipeline_t **out, char *err)
{
    if (unwrap != NULL) {
        snprintf(err, 256, "unwrap is not supported yet");
        return ST_EPARSE;
    }
    st_pipeline_t *pl = calloc(1, sizeof *pl);
    if (pl == NULL) return -ENOMEM;
    pl->line_only = true;
    int rc = 0;
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        const st_logql_stage_t *s = &p->v[i];
        if (s->kind != ST_LOGQL_STAGE_LINE_FILTER) {
            snprintf(err, 256, "this pipeline stage is not supported yet");
            rc = ST_EPARSE;
            break;
        }
        lfilter_t *f = realloc(pl->f, (pl->nf + 1) * sizeof *f);
        if (f == NULL) {
            rc = -ENOMEM;
            break;
        }
        pl->f = f;
        rc = compile_line_filter(&s->line, &pl->f[pl->nf]);
        pl->nf++;
    }
    if (rc == 0) {
        pl->md = pcre2_match_data_create(1, NULL);
        if (pl->md == NULL) rc = -ENOMEM;
    }
    pl->src = p;
    if (rc < 0) {
        st_pipeline_free(pl);
        return rc;
    }
    *out = pl;
    return 0;
}

void st_pipeline_free(st_pipeline_t *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->nf; i++) {
        for (size_t k = 0; k < p->f[i].n; k++) free(p->f[i].alts[k].owned);
        free(p->f[i].alts);
    }
    free(p->f);
    if (p->md) pcre2_match_data_free(p->md);
    st_labels_free(&p->merged);
    st_buf_free(&p->text);
    free(p);
}

int st_pipeline_clone(const st_pipeline_t *p, st_pipeline_t **out)
{
    char err[256];
    return st_pipeline_compile(p->src, NULL, out, err);
}

/* Line filters only (the stages that change labels arrive with the LogQL work): labels are the
 * stream's plus structured metadata. */
int st_pipeline_run(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                    st_pipeline_result_t *out)
{
    (void)ts;
    memset(out, 0, sizeof *out);
    out->line = line;
    out->keep = st_pipeline_keep_line(p, line);
    if (!out->keep) return 0;
    st_labels_free(&p->merged);
    if (md.n == 0) {
        ST_TRY(st_labels_copy(stream, &p->merged));
    } else {
        st_label_t pairs[256];
        size_t n = 0;
        for (size_t i = 0; i < stream->n && n < 256; i++) pairs[n++] = stream->v[i];
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t mn, mv;
        while (n < 256 && st_md_next(&it, &mn, &mv) == 1)
            if (!st_labels_get(stream, mn, NULL)) pairs[n++] = (st_label_t){mn, mv};
        ST_TRY(st_labels_from_pairs(pairs, n, &p->merged));
    }
    st_buf_reset(&p->text);
    ST_TRY(st_labels_format(&p->merged, &p->text));
    out->labels = &p->merged;
    out->hash = st_hash64(p->text.data, p->text.len);
    return 0;
}

bool st_pipeline_line_only(const st_pipeline_t *p) { return p->line_only; }

bool st_pipeline_required_literal(const st_pipeline_t *p, st_str_t *lit)
{
    if (p->nf == 0) return false;
    const lfilter_t *f = &p->f[0];
    if (f->negate || f->n != 1 || f->alts[0].kind != ALT_LIT || f->alts[0].lit.n == 0) return false;
    *lit = f->alts[0].lit;
    return true;
}

static bool contains_ci(st_str_t hay, st_str_t lower_needle)
{
    if (lower_needle.n == 0) return true;
    if (hay.n < lower_needle.n) return false;
    unsigned char f0 = (unsigned char)lower_needle.p[0];
    unsigned char f1 = (unsigned char)toupper(f0);
    for (size_t i = 0; i + lower_needle.n <= hay.n; i++) {
        unsigned char c = (unsigned char)hay.p[i];
        if (c != f0 && c != f1) continue;
        size_t k = 1;
        while (k < lower_needle.n && tolower((unsigned char)hay.p[i + k]) == (unsigned char)lower_needle.p[k]) k++;
        if (k == lower_needle.n) return true;
    }
    return false;
}

/* Literals + <_> wildcards: a leading literal is anchored at the start, a trailing literal at the
 * end, each wildcard covers at least one byte, inner literals match at their first occurrence. */
static bool pattern_match(const st_logql_pattern_t *pat, st_str_t line)
{
    size_t pos = 0;
    bool after_wild = false;
    for (size_t i = 0; i < pat->n; i++) {
        const st_logql_pattern_part_t *part = &pat->v[i];
        if (part->capture) {
            after_wild = true;
            continue;
        }
        size_t min = pos + (after_wild ? 1 : 0);
        bool last = i + 1 == pat->n;
        if (i == 0) {
            if (line.n < part->text.n || memcmp(line.p, part->text.p, part->text.n) != 0) return false;
            pos = part->text.n;
        } else if (last) {
            if (line.n < part->text.n || line.n - part->text.n < min) return false;
            if (memcmp(line.p + line.n - part->text.n, part->text.p, part->text.n) != 0) return false;
            pos = line.n;
        } else {
            if (min > line.n) return false;
            const char *hit = memmem(line.p + min, line.n - min, part->text.p, part->text.n);
            if (hit == NULL) return false;
            pos = (size_t)(hit - line.p) + part->text.n;
        }
        after_wild = false;
    }
    if (after_wild && pos >= line.n) return false; /* trailing wildcard needs a byte */
    return true;
}

static bool ip_in(const st_logql_ip_t *ip, const uint8_t a[16], bool v4)
{
    if (ip->v4 != v4) return false;
    return memcmp(a, ip->lo, 16) >= 0 && memcmp(a, ip->hi, 16) <= 0;
}

static bool try_v4(const st_logql_ip_t *ip, const char *p, size_t len)
{
    char tok[16];
    while (len > 0 && p[len - 1] == '.') len--;
    if (len < 7 || len > 15) return false;
    memcpy(tok, p, len);
    tok[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, tok, &v4) != 1) return false;
    uint8_t a[16];
    memset(a, 0, 10);
    a[10] = a[11] = 0xff;
    memcpy(a + 12, &v4, 4);
    return ip_in(ip, a, true);
}

static bool try_v6(const st_logql_ip_t *ip, const char *p, size_t len)
{
    char tok[48];
    if (len < 2 || len > 45) return false;
    memcpy(tok, p, len);
    tok[len] = '\0';
    struct in6_addr v6;
    if (inet_pton(AF_INET6, tok, &v6) != 1) return false;
    uint8_t a[16];
    memcpy(a, &v6, 16);
    return ip_in(ip, a, false);
}

/* Finds address-looking substrings (runs of digits and dots for IPv4, runs of hex digits, colons and
 * dots that contain a colon for IPv6) and tests each against the range. */
static bool ip_match(const st_logql_ip_t *ip, st_str_t line)
{
    const char *s = line.p;
    size_t n = line.n;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (!(isxdigit(c) || c == ':')) {
            i++;
            continue;
        }
        size_t j = i;
        bool colon = false;
        while (j < n && (isxdigit((unsigned char)s[j]) || s[j] == ':' || s[j] == '.')) colon |= s[j++] == ':';
        if (colon && ip->v4 == false) {
            /* trim to start at a hex digit or "::" and try the whole run */
            if (try_v6(ip, s + i, j - i)) return true;
        }
        if (ip->v4) {
            /* every maximal run of digits and dots inside the token */
            size_t k = i;
            while (k < j) {
                while (k < j && !isdigit((unsigned char)s[k])) k++;
                size_t m = k;
                while (m < j && (isdigit((unsigned char)s[m]) || s[m] == '.')) m++;
                if (m > k && try_v4(ip, s + k, m - k)) return true;
                k = m;
            }
        }
        i = j;
    }
    return false;
}

static bool alt_match(st_pipeline_t *p, const alt_t *a, st_str_t line)
{
    switch (a->kind) {
    case ALT_LIT: return a->lit.n == 0 || (line.n >= a->lit.n && memmem(line.p, line.n, a->lit.p, a->lit.n) != NULL);
    case ALT_LIT_CI: return contains_ci(line, a->lit);
    case ALT_RE: {
        int rc = pcre2_jit_match(a->re, (PCRE2_SPTR)line.p, line.n, 0, 0, p->md, NULL);
        if (rc == PCRE2_ERROR_JIT_BADOPTION)
            rc = pcre2_match(a->re, (PCRE2_SPTR)line.p, line.n, 0, 0, p->md, NULL);
        return rc >= 0;
    }
    case ALT_PATTERN: return pattern_match(a->pat, line);
    case ALT_IP: return ip_match(a->ip, line);
    }
    return false;
}

bool st_pipeline_keep_line(st_pipeline_t *p, st_str_t line)
{
    for (size_t i = 0; i < p->nf; i++) {
        const lfilter_t *f = &p->f[i];
        bool any = false;
        for (size_t k = 0; k < f->n && !any; k++) any = alt_match(p, &f->alts[k], line);
        if (any == f->negate) return false;
    }
    return true;
}
