/* pipeline.c: compiled LogQL pipelines with Loki's semantics. Stages are reordered as Loki does (line
 * filters move to the front of their segment), line filters become substring tests where possible,
 * and every other stage (parsers in pipeline_parsers.c, label filters, line_format/label_format,
 * drop/keep, decolorize, unwrap) runs over a per-entry label builder and arena that are reused, so
 * the steady state allocates nothing. Failing stages never drop an entry: they set __error__. */
#include "querier/pipeline_int.h"

#include "common/err.h"
#include "common/hash.h"
#include "querier/golike.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- allocation ------------------------------------------------------------------------------------- */

/* Objects written on every entry (the pipeline, PCRE2 match data) get cache lines of their own:
 * clones compiled on one thread and run on others must not share lines (false sharing halved the
 * two-thread throughput). */
static void *cl_alloc(PCRE2_SIZE n, void *arg)
{
    (void)arg;
    size_t sz = (n + 63) & ~(size_t)63;
    return aligned_alloc(64, sz ? sz : 64);
}

static void cl_free(void *p, void *arg)
{
    (void)arg;
    free(p);
}

static pcre2_general_context *g_ctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void gctx_init(void)
{
    g_ctx = pcre2_general_context_create(cl_alloc, cl_free, NULL);
}

/* Match data on cache lines of its own (NULL context on failure: PCRE2's malloc). */
static pcre2_general_context *gctx(void)
{
    pthread_once(&g_once, gctx_init);
    return g_ctx;
}

/* ---- arena ------------------------------------------------------------------------------------------ */

void pl_arena_reset(pl_arena_t *a)
{
    a->cur = a->head;
    if (a->head) a->head->used = 0;
}

void pl_arena_free(pl_arena_t *a)
{
    pl_blk_t *b = a->head;
    while (b) {
        pl_blk_t *n = b->next;
        free(b);
        b = n;
    }
    a->head = a->cur = NULL;
}

char *pl_alloc(pl_arena_t *a, size_t n)
{
    while (a->cur && a->cur->cap - a->cur->used < n) {
        a->cur = a->cur->next;
        if (a->cur) a->cur->used = 0;
    }
    if (a->cur == NULL) {
        size_t cap = n > 60000 ? n : 60000;
        pl_blk_t *b = malloc(sizeof *b + cap);
        if (b == NULL) return NULL;
        b->next = NULL;
        b->cap = cap;
        b->used = 0;
        /* append at the end of the chain so reset walks every block again */
        pl_blk_t **pp = &a->head;
        while (*pp) pp = &(*pp)->next;
        *pp = b;
        a->cur = b;
    }
    char *r = a->cur->data + a->cur->used;
    a->cur->used += n;
    return r;
}

st_str_t pl_dup(st_pipeline_t *p, st_str_t s)
{
    if (s.n == 0) return st_str("", 0);
    char *d = pl_alloc(&p->arena, s.n);
    if (d == NULL) return st_str(NULL, 0);
    memcpy(d, s.p, s.n);
    return st_str(d, s.n);
}

/* ---- label builder ------------------------------------------------------------------------------ */

int pl_lb_find(const pl_lb_t *lb, st_str_t name)
{
    if (!(lb->mask & pl_bit(name))) return -1;
    for (size_t i = 0; i < lb->n; i++)
        if (st_str_eq(lb->v[i].name, name)) return (int)i;
    return -1;
}

bool pl_lb_get(const pl_lb_t *lb, st_str_t name, st_str_t *value)
{
    int i = pl_lb_find(lb, name);
    if (i < 0) return false;
    if (value) *value = lb->v[i].value;
    return true;
}

bool pl_lb_base_has(const pl_lb_t *lb, st_str_t name)
{
    if (!(lb->base_mask & pl_bit(name))) return false;
    for (size_t i = 0; i < lb->nbase; i++)
        if (st_str_eq(lb->base[i].name, name)) return true;
    return false;
}

bool pl_lb_md_has(const pl_lb_t *lb, st_str_t name)
{
    if (lb->nmd == 0) return false;
    int i = pl_lb_find(lb, name);
    return i >= 0 && lb->v[i].cat == PL_CAT_MD;
}

/* Extracted names whose labels were deleted. */
bool pl_lb_ext_deleted(const pl_lb_t *lb, st_str_t name)
{
    if (!(lb->ext_mask & pl_bit(name))) return false;
    for (size_t i = 0; i < lb->next; i++)
        if (st_str_eq(lb->ext[i], name)) return true;
    return false;
}

bool pl_lb_extracted(const pl_lb_t *lb, st_str_t name)
{
    int i = pl_lb_find(lb, name);
    if (i >= 0 && (lb->v[i].flags & PL_EXTRACTED)) return true;
    return pl_lb_ext_deleted(lb, name);
}

static int lb_push(pl_lb_t *lb, st_str_t name, st_str_t value, uint8_t cat)
{
    if (lb->n == lb->cap) {
        size_t cap = lb->cap ? lb->cap * 2 : 32;
        pl_label_t *v = realloc(lb->v, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        lb->v = v;
        lb->cap = cap;
    }
    lb->v[lb->n++] = (pl_label_t){name, value, cat, cat == PL_CAT_PARSED ? PL_EXTRACTED : 0};
    lb->mask |= pl_bit(name);
    return 0;
}

/* Removes v[i], remembering an extracted name (parsers keep skipping it on this entry). */
static int lb_remove_at(pl_lb_t *lb, size_t i)
{
    if ((lb->v[i].flags & PL_EXTRACTED) && !pl_lb_ext_deleted(lb, lb->v[i].name)) {
        if (lb->next == lb->capext) {
            size_t cap = lb->capext ? lb->capext * 2 : 16;
            st_str_t *e = realloc(lb->ext, cap * sizeof *e);
            if (e == NULL) return -ENOMEM;
            lb->ext = e;
            lb->capext = cap;
        }
        lb->ext[lb->next++] = lb->v[i].name;
        lb->ext_mask |= pl_bit(lb->v[i].name);
    }
    lb->v[i] = lb->v[--lb->n];
    return 0;
}

/* Sets a parsed label at index i (from pl_lb_find) or appends it. */
int pl_lb_set_at(pl_lb_t *lb, int i, st_str_t name, st_str_t value)
{
    if (i < 0) return lb_push(lb, name, value, PL_CAT_PARSED);
    lb->v[i].value = value;
    lb->v[i].cat = PL_CAT_PARSED;
    lb->v[i].flags |= PL_EXTRACTED;
    return 0;
}

int pl_lb_set_parsed(pl_lb_t *lb, st_str_t name, st_str_t value)
{
    return pl_lb_set_at(lb, pl_lb_find(lb, name), name, value);
}

void pl_lb_del(pl_lb_t *lb, st_str_t name)
{
    int i = pl_lb_find(lb, name);
    if (i >= 0) (void)lb_remove_at(lb, (size_t)i);
}

/* Loki's LabelsBuilder.Add(StructuredMetadataLabel, ...) for one pair. */
static int lb_add_md(st_pipeline_t *p, st_str_t name, st_str_t value)
{
    pl_lb_t *lb = &p->lb;
    if (pl_lb_base_has(lb, name)) {
        char *d = pl_alloc(&p->arena, name.n + 10);
        if (d == NULL) return -ENOMEM;
        memcpy(d, name.p, name.n);
        memcpy(d + name.n, "_extracted", 10);
        name = st_str(d, name.n + 10);
    }
    if (st_str_eqc(name, "__error__")) {
        lb->err = value;
        return 0;
    }
    if (st_str_eqc(name, "__error_details__")) {
        lb->details = value;
        return 0;
    }
    int i = pl_lb_find(lb, name);
    if (i >= 0) {
        if (lb->v[i].cat == PL_CAT_PARSED) return 0;
        lb->v[i].value = value;
        lb->v[i].cat = PL_CAT_MD;
    } else {
        ST_TRY(lb_push(lb, name, value, PL_CAT_MD));
    }
    lb->nmd++;
    return 0;
}

/* ---- names and values ------------------------------------------------------------------------------ */

static inline bool name_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool pl_name_clean(st_str_t key)
{
    if (key.n == 0 || (key.p[0] >= '0' && key.p[0] <= '9')) return false;
    for (size_t i = 0; i < key.n; i++)
        if (!name_byte((unsigned char)key.p[i])) return false;
    return true;
}

int pl_sanitize(st_buf_t *out, st_str_t key, bool to_empty)
{
    key = st_go_trim_space(key);
    if (key.n == 0) return 0;
    ST_TRY(st_buf_reserve(out, key.n + 1)); /* a rune becomes one '_': never longer than key + 1 */
    char *d = out->data + out->len;
    if (to_empty && key.p[0] >= '0' && key.p[0] <= '9') *d++ = '_';
    for (size_t i = 0; i < key.n;) {
        unsigned char c = (unsigned char)key.p[i];
        if (c < 0x80) {
            *d++ = name_byte(c) ? (char)c : '_';
            i++;
        } else {
            int w;
            (void)st_go_rune(key.p + i, key.n - i, &w);
            *d++ = '_';
            i += (size_t)w;
        }
    }
    out->len = (size_t)(d - out->data);
    return 0;
}

st_str_t pl_fix_runes(st_pipeline_t *p, st_str_t v)
{
    size_t i = 0;
    while (i < v.n && (unsigned char)v.p[i] < 0x80) i++;
    if (i == v.n) return v;
    /* any U+FFFD or invalid byte? */
    bool bad = false;
    for (size_t k = i; k < v.n && !bad;) {
        if ((unsigned char)v.p[k] < 0x80) {
            k++;
            continue;
        }
        int w;
        int32_t r = st_go_rune(v.p + k, v.n - k, &w);
        if (r == 0xFFFD) bad = true;
        k += (size_t)w;
    }
    if (!bad) return v;
    char *d = pl_alloc(&p->arena, v.n);
    if (d == NULL) return st_str(NULL, 0);
    size_t n = 0;
    for (size_t k = 0; k < v.n;) {
        if ((unsigned char)v.p[k] < 0x80) {
            d[n++] = v.p[k++];
            continue;
        }
        int w;
        int32_t r = st_go_rune(v.p + k, v.n - k, &w);
        if (r == 0xFFFD) {
            d[n++] = ' ';
        } else {
            memcpy(d + n, v.p + k, (size_t)w);
            n += (size_t)w;
        }
        k += (size_t)w;
    }
    return st_str(d, n);
}

int pl_emit(st_pipeline_t *p, st_str_t name, st_str_t value)
{
    pl_lb_t *lb = &p->lb;
    if (pl_lb_base_has(lb, name) || pl_lb_md_has(lb, name)) {
        if (p->want != NULL && !p->want->want_ext) return 0;
        char *d = pl_alloc(&p->arena, name.n + 10);
        if (d == NULL) return -ENOMEM;
        memcpy(d, name.p, name.n);
        memcpy(d + name.n, "_extracted", 10);
        name = st_str(d, name.n + 10);
    }
    if (p->want != NULL && !pl_wanted(p, name)) return 0;
    int i = pl_lb_find(lb, name);
    if (i >= 0 ? (lb->v[i].flags & PL_EXTRACTED) != 0 : pl_lb_ext_deleted(lb, name)) return 0;
    ST_TRY(pl_lb_set_at(lb, i, name, value));
    if (p->want != NULL) p->found++;
    return 1;
}

/* ---- line filters ------------------------------------------------------------------------------------ */

static bool is_plain_literal(st_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if (strchr("\\.+*?()|[]{}^$", s.p[i]) != NULL) return false;
    return true;
}

static bool is_ascii(st_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if ((unsigned char)s.p[i] >= 0x80) return false;
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

/* Skips a [...] class starting at re[i] == '['; returns the index after ']', or n when unterminated. */
static size_t skip_class(const char *re, size_t n, size_t i)
{
    i++;
    if (i < n && re[i] == '^') i++;
    if (i < n && re[i] == ']') i++; /* a leading ']' is literal */
    while (i < n && re[i] != ']') {
        if (re[i] == '\\' && i + 1 < n) i += 2;
        else if (re[i] == '[' && i + 1 < n && re[i + 1] == ':') { /* [:alpha:] */
            size_t k = i + 2;
            while (k + 1 < n && !(re[k] == ':' && re[k + 1] == ']')) k++;
            i = k + 1 < n ? k + 2 : i + 1;
        } else i++;
    }
    return i < n ? i + 1 : n;
}

size_t st_regex_required_literal(st_str_t regex, char *out, size_t cap)
{
    const char *re = regex.p;
    size_t n = regex.n, best = 0, run = 0, lastw = 0; /* lastw: bytes of the run's last character */
    char cur[256];
    int depth = 0;
    /* top-level alternation: no literal is required */
    for (size_t i = 0; i < n; i++) {
        if (re[i] == '\\') i++;
        else if (re[i] == '[') i = skip_class(re, n, i) - 1;
        else if (re[i] == '(') depth++;
        else if (re[i] == ')') depth--;
        else if (re[i] == '|' && depth == 0) return 0;
    }
#define END_RUN()                                                                                            \
    do {                                                                                                     \
        if (run > best && run <= cap) {                                                                      \
            memcpy(out, cur, run);                                                                           \
            best = run;                                                                                      \
        }                                                                                                    \
        run = lastw = 0;                                                                                     \
    } while (0)
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)re[i];
        if (c == '(') {
            if (i + 1 < n && re[i + 1] == '?') return 0; /* flags (?i), named groups: give up */
            END_RUN();
            int d = 0;
            for (; i < n; i++) {
                if (re[i] == '\\') i++;
                else if (re[i] == '[') i = skip_class(re, n, i) - 1;
                else if (re[i] == '(') d++;
                else if (re[i] == ')' && --d == 0) break;
            }
            i++;
        } else if (c == '[') {
            END_RUN();
            i = skip_class(re, n, i);
        } else if (c == '.' || c == '^' || c == '$') {
            END_RUN();
            i++;
        } else if (c == '*' || c == '?' || c == '{') {
            if (c == '{') { /* a repeat only when it reads {n}, {n,} or {n,m}; else a literal '{' */
                size_t k = i + 1;
                while (k < n && isdigit((unsigned char)re[k])) k++;
                bool rep = k > i + 1;
                if (rep && k < n && re[k] == ',') {
                    k++;
                    while (k < n && isdigit((unsigned char)re[k])) k++;
                }
                if (!rep || k >= n || re[k] != '}') goto literal;
                i = k;
            }
            run -= lastw; /* the quantified character may be absent */
            END_RUN();
            i++;
        } else if (c == '+') {
            END_RUN(); /* at least one: the character stays, the run cannot go on past it */
            i++;
        } else if (c == '\\') {
            if (i + 1 >= n) return 0;
            unsigned char e = (unsigned char)re[i + 1];
            if (e < 0x80 && ispunct(e)) {
                c = e;
                i++;
                goto literal_char;
            }
            if (strchr("dDwWsSbBAzntrfva", e) == NULL || e == 0) return 0; /* \p{..}, \x.., \Q, octal... */
            END_RUN();
            i += 2;
        } else {
        literal:
            c = (unsigned char)re[i];
        literal_char: {
            size_t w = 1;
            if (c >= 0xC0) /* a whole UTF-8 character (at most 4 bytes), so a quantifier drops all of it */
                while (w < 4 && i + w < n && ((unsigned char)re[i + w] & 0xC0) == 0x80) w++;
            if (run + w > sizeof cur) END_RUN();
            memcpy(cur + run, c >= 0x80 ? re + i : (const char *)&c, w);
            run += w;
            lastw = w;
            i += w;
        }
        }
    }
    END_RUN();
#undef END_RUN
    /* a U+FFFD in the pattern may stand for an invalid byte of the line */
    if (best >= 3 && memmem(out, best, "\xEF\xBF\xBD", 3) != NULL) return 0;
    return best;
}

static int add_alt(lfilter_t *f, alt_t a)
{
    alt_t *x = realloc(f->alts, (f->n + 1) * sizeof *x);
    if (x == NULL) {
        free(a.owned);
        return -ENOMEM;
    }
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
                       is_ascii(st_str(v.p + 4, v.n - 4))) { /* non-ASCII case folding: PCRE2 */
                c.kind = ALT_LIT_CI;
                c.owned = malloc(v.n - 4 + 1);
                if (c.owned == NULL) return -ENOMEM;
                for (size_t k = 4; k < v.n; k++) c.owned[k - 4] = (char)tolower((unsigned char)v.p[k]);
                c.lit = st_str(c.owned, v.n - 4);
                ST_TRY(add_alt(out, c));
            } else if (split_alternation(v, parts, 16, &np)) {
                for (size_t k = 0; k < np; k++) {
                    alt_t pa;
                    memset(&pa, 0, sizeof pa);
                    pa.kind = ALT_LIT;
                    pa.lit = parts[k];
                    ST_TRY(add_alt(out, pa));
                }
            } else {
                c.kind = ALT_RE;
                c.re = a->re;
                /* a literal every match contains: lines without it skip PCRE2, and scans search
                 * blocks for it (st_pipeline_required_literal) */
                char req[256];
                size_t rn = st_regex_required_literal(v, req, sizeof req);
                if (rn >= 3) {
                    if ((c.owned = malloc(rn)) == NULL) return -ENOMEM;
                    memcpy(c.owned, req, rn);
                    c.lit = st_str(c.owned, rn);
                }
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
        while (k < lower_needle.n && tolower((unsigned char)hay.p[i + k]) == (unsigned char)lower_needle.p[k])
            k++;
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
            if (try_v6(ip, s + i, j - i)) return true;
        }
        if (ip->v4) {
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

static bool re_match(pcre2_match_data *md, const pcre2_code *re, st_str_t s)
{
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)(s.p ? s.p : ""), s.n, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(re, (PCRE2_SPTR)(s.p ? s.p : ""), s.n, 0, 0, md, NULL);
    return rc >= 0;
}

static bool alt_match(st_pipeline_t *p, const alt_t *a, st_str_t line)
{
    switch (a->kind) {
    case ALT_LIT:
        return a->lit.n == 0 || (line.n >= a->lit.n && memmem(line.p, line.n, a->lit.p, a->lit.n) != NULL);
    case ALT_LIT_CI: return contains_ci(line, a->lit);
    case ALT_RE:
        if (a->lit.n && (line.n < a->lit.n || memmem(line.p, line.n, a->lit.p, a->lit.n) == NULL)) return false;
        return re_match(p->md, a->re, line);
    case ALT_PATTERN: return pattern_match(a->pat, line);
    case ALT_IP: return ip_match(a->ip, line);
    }
    return false;
}

static bool lines_pass(st_pipeline_t *p, const pl_stage_t *s, st_str_t line)
{
    for (size_t i = 0; i < s->nf; i++) {
        const lfilter_t *f = &s->f[i];
        bool any = false;
        for (size_t k = 0; k < f->n && !any; k++) any = alt_match(p, &f->alts[k], line);
        if (any == f->negate) return false;
    }
    return true;
}

/* ---- compilation ----------------------------------------------------------------------------------- */

static const char ANSI_RE[] = "[\\x{1b}\\x{9b}][[\\]()#;?]*(?:(?:(?:[a-zA-Z\\d]*(?:;[a-zA-Z\\d]*)*)?\\x{07})|"
                              "(?:(?:\\d{1,4}(?:;\\d{0,4})*)?[\\dA-PRZcf-ntqry=><~]))";

static int push_stage(st_pipeline_t *pl, pl_stage_t s)
{
    pl_stage_t *v = realloc(pl->st, (pl->nst + 1) * sizeof *v);
    if (v == NULL) return -ENOMEM;
    pl->st = v;
    pl->st[pl->nst++] = s;
    return 0;
}

static int compile_line_group(st_pipeline_t *pl, const st_logql_stage_t *const *g, size_t n)
{
    if (n == 0) return 0;
    pl_stage_t s;
    memset(&s, 0, sizeof s);
    s.kind = PS_LINE;
    s.f = calloc(n, sizeof *s.f);
    if (s.f == NULL) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = compile_line_filter(&g[i]->line, &s.f[i]);
        s.nf = i + 1;
    }
    if (rc == 0) rc = push_stage(pl, s);
    if (rc < 0) {
        for (size_t i = 0; i < s.nf; i++) {
            for (size_t k = 0; k < s.f[i].n; k++) free(s.f[i].alts[k].owned);
            free(s.f[i].alts);
        }
        free(s.f);
    }
    return rc;
}

static int compile_stage(st_pipeline_t *pl, const st_logql_stage_t *src, char *err)
{
    pl_stage_t s;
    memset(&s, 0, sizeof s);
    s.src = src;
    char msg[512];
    switch (src->kind) {
    case ST_LOGQL_STAGE_JSON: s.kind = src->json.n ? PS_JSON_EXPR : PS_JSON; break;
    case ST_LOGQL_STAGE_LOGFMT: s.kind = src->logfmt.n ? PS_LOGFMT_EXPR : PS_LOGFMT; break;
    case ST_LOGQL_STAGE_REGEXP:
        s.kind = PS_REGEXP;
        s.md = pcre2_match_data_create_from_pattern(src->regexp.code, gctx());
        if (s.md == NULL) return -ENOMEM;
        break;
    case ST_LOGQL_STAGE_PATTERN: s.kind = PS_PATTERN; break;
    case ST_LOGQL_STAGE_UNPACK: s.kind = PS_UNPACK; break;
    case ST_LOGQL_STAGE_LABEL_FILTER: s.kind = PS_LABEL_FILTER; break;
    case ST_LOGQL_STAGE_DROP: s.kind = PS_DROP; break;
    case ST_LOGQL_STAGE_KEEP: s.kind = PS_KEEP; break;
    case ST_LOGQL_STAGE_DECOLORIZE:
        s.kind = PS_DECOLORIZE;
        if (pl->ansi == NULL) {
            int ec;
            PCRE2_SIZE eo;
            pl->ansi = pcre2_compile((PCRE2_SPTR)ANSI_RE, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &eo, NULL);
            if (pl->ansi == NULL) return -ENOMEM;
            (void)pcre2_jit_compile(pl->ansi, PCRE2_JIT_COMPLETE);
            pl->ansi_md = pcre2_match_data_create_from_pattern(pl->ansi, gctx());
            if (pl->ansi_md == NULL) return -ENOMEM;
        }
        break;
    case ST_LOGQL_STAGE_LINE_FORMAT: {
        s.kind = PS_LINE_FORMAT;
        int rc = st_tmpl_parse("line", src->line_format, &s.tmpl, msg, sizeof msg);
        if (rc == ST_EPARSE) {
            snprintf(err, 256, "invalid line template: %s", msg);
            return rc;
        }
        if (rc < 0) return rc;
        st_str_t name;
        if (st_tmpl_simple_field(s.tmpl, &name)) s.simple = name;
        break;
    }
    case ST_LOGQL_STAGE_LABEL_FORMAT: {
        s.kind = PS_LABEL_FORMAT;
        s.tmpls = calloc(src->label_format.n ? src->label_format.n : 1, sizeof *s.tmpls);
        if (s.tmpls == NULL) return -ENOMEM;
        for (size_t i = 0; i < src->label_format.n; i++) {
            const st_logql_label_fmt_t *f = &src->label_format.v[i];
            if (f->rename) continue;
            int rc = st_tmpl_parse("label", f->value, &s.tmpls[i], msg, sizeof msg);
            if (rc < 0) {
                if (rc == ST_EPARSE)
                    snprintf(err, 256, "invalid template for label '%.*s': %s", (int)f->dst.n, f->dst.p, msg);
                for (size_t k = 0; k < i; k++) st_tmpl_free(s.tmpls[k]);
                free(s.tmpls);
                return rc;
            }
        }
        break;
    }
    case ST_LOGQL_STAGE_LINE_FILTER: return 0; /* grouped by the caller */
    }
    int rc = push_stage(pl, s);
    if (rc < 0) {
        if (s.md) pcre2_match_data_free(s.md);
        st_tmpl_free(s.tmpl);
        if (s.tmpls) {
            for (size_t i = 0; i < src->label_format.n; i++) st_tmpl_free(s.tmpls[i]);
            free(s.tmpls);
        }
    }
    return rc;
}

/* Loki's reorderStages: line filters move to the front of their segment; a label filter, line_format
 * or unpack ends the segment (the filters after them keep seeing the changed line). */
static int compile_stages(st_pipeline_t *pl, const st_logql_pipeline_t *p, char *err)
{
    const st_logql_stage_t **lf = calloc(p->n ? p->n : 1, sizeof *lf);
    const st_logql_stage_t **other = calloc(p->n ? p->n : 1, sizeof *other);
    int rc = (lf && other) ? 0 : -ENOMEM;
    size_t nlf = 0, nother = 0;
#define FLUSH()                                                                                              \
    do {                                                                                                     \
        if (rc == 0) rc = compile_line_group(pl, lf, nlf);                                                   \
        for (size_t k_ = 0; k_ < nother && rc == 0; k_++) rc = compile_stage(pl, other[k_], err);            \
        nlf = nother = 0;                                                                                    \
    } while (0)
    for (size_t i = 0; i < p->n && rc == 0; i++) {
        const st_logql_stage_t *s = &p->v[i];
        switch (s->kind) {
        case ST_LOGQL_STAGE_LABEL_FILTER:
            FLUSH();
            if (rc == 0) rc = compile_stage(pl, s, err);
            break;
        case ST_LOGQL_STAGE_LINE_FILTER: lf[nlf++] = s; break;
        case ST_LOGQL_STAGE_LINE_FORMAT:
        case ST_LOGQL_STAGE_UNPACK:
            other[nother++] = s;
            FLUSH();
            break;
        default: other[nother++] = s; break;
        }
    }
    FLUSH();
#undef FLUSH
    free(lf);
    free(other);
    return rc;
}

/* Collects the label names a filter reads; false when it cannot be decided on a targeted parse
 * (__error__ tests and ip() filters depend on errors the full parse may record). */
static bool filter_names(const st_logql_label_filter_t *f, pl_stage_t *s)
{
    st_str_t name;
    switch (f->kind) {
    case ST_LOGQL_LF_AND:
    case ST_LOGQL_LF_OR: return filter_names(f->bin.left, s) && filter_names(f->bin.right, s);
    case ST_LOGQL_LF_STRING: name = f->str.name; break;
    case ST_LOGQL_LF_NUMBER: name = f->num.name; break;
    case ST_LOGQL_LF_DURATION: name = f->dur.name; break;
    case ST_LOGQL_LF_BYTES: name = f->bytes.name; break;
    default: return false;
    }
    if (st_str_eqc(name, "__error__") || st_str_eqc(name, "__error_details__")) return false;
    for (size_t i = 0; i < s->nwant; i++)
        if (st_str_eq(s->want[i], name)) return true;
    if (s->nwant == sizeof s->want / sizeof s->want[0]) return false;
    s->want[s->nwant++] = name;
    s->want_mask |= pl_bit(name);
    if (name.n > 10 && memcmp(name.p + name.n - 10, "_extracted", 10) == 0) s->want_ext = true;
    return true;
}

/* A json or logfmt stage directly followed by label filters gets the filters' names, for parsing
 * those names first and dropping rejected entries before the full parse. */
static void plan_pushdown(st_pipeline_t *pl)
{
    for (size_t i = 0; i + 1 < pl->nst; i++) {
        pl_stage_t *s = &pl->st[i];
        if (s->kind != PS_JSON && s->kind != PS_LOGFMT) continue;
        size_t k = i + 1;
        bool ok = true;
        while (k < pl->nst && pl->st[k].kind == PS_LABEL_FILTER && ok)
            ok = filter_names(pl->st[k++].src->label_filter, s);
        if (!ok || k == i + 1) {
            s->nwant = 0;
            s->want_mask = 0;
            s->want_ext = false;
            continue;
        }
        s->nfilters = k - i - 1;
    }
}

/* A top-level conjunct `name = "value"` of a label filter that can only hold for a parsed label whose
 * value appears verbatim in the line: value non-empty and without spaces (parsers turn invalid UTF-8
 * into spaces), name not __error__-like. */
static bool find_value_eq(const st_logql_label_filter_t *f, st_str_t *name, st_str_t *value)
{
    if (f->kind == ST_LOGQL_LF_AND) return find_value_eq(f->bin.left, name, value) || find_value_eq(f->bin.right, name, value);
    if (f->kind != ST_LOGQL_LF_STRING || f->str.type != ST_LOGQL_MATCH_EQ || f->str.value.n == 0) return false;
    if (memchr(f->str.value.p, ' ', f->str.value.n) || (f->str.name.n >= 2 && f->str.name.p[0] == '_' && f->str.name.p[1] == '_'))
        return false;
    *name = f->str.name;
    *value = f->str.value;
    return true;
}

/* Line filters, then `| json` or `| logfmt` (no parameters) on the unchanged line, then label filters
 * requiring name="value": a kept line contains value literally, because both parsers copy values
 * out of the line unchanged unless an escape (a backslash) is involved -- as long as the label is
 * the parsed one, not a stream label or structured metadata of the same name (the parsed label is
 * then name_extracted). st_pipeline_value_literal hands this to scans, which skip the parse of lines
 * without the value. */
static void plan_value_literal(st_pipeline_t *pl)
{
    size_t i = 0;
    while (i < pl->nst && pl->st[i].kind == PS_LINE) i++;
    if (i >= pl->nst || (pl->st[i].kind != PS_JSON && pl->st[i].kind != PS_LOGFMT)) return;
    for (size_t k = i + 1; k < pl->nst && pl->st[k].kind == PS_LABEL_FILTER; k++) {
        if (find_value_eq(pl->st[k].src->label_filter, &pl->vname, &pl->vvalue)) {
            pl->has_vlit = true;
            return;
        }
    }
}

bool st_pipeline_value_literal(const st_pipeline_t *p, st_str_t *name, st_str_t *value)
{
    if (!p->has_vlit) return false;
    *name = p->vname;
    *value = p->vvalue;
    return true;
}

int st_pipeline_compile(const st_logql_pipeline_t *p, const st_logql_unwrap_t *unwrap, st_pipeline_t **out,
                        char *err)
{
    st_pipeline_t *pl = cl_alloc(sizeof *pl, NULL);
    if (pl == NULL) return -ENOMEM;
    memset(pl, 0, sizeof *pl);
    pl->src = p;
    pl->unwrap = unwrap;
    snprintf(err, 256, "invalid pipeline");
    int rc = compile_stages(pl, p, err);
    if (rc == 0) {
        pl->md = pcre2_match_data_create(1, gctx());
        if (pl->md == NULL) rc = -ENOMEM;
    }
    if (rc < 0) {
        st_pipeline_free(pl);
        return rc;
    }
    pl->line_only = unwrap == NULL;
    for (size_t i = 0; i < pl->nst; i++)
        if (pl->st[i].kind != PS_LINE) pl->line_only = false;
    plan_pushdown(pl);
    plan_value_literal(pl);
    *out = pl;
    return 0;
}

void st_pipeline_free(st_pipeline_t *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->nst; i++) {
        pl_stage_t *s = &p->st[i];
        for (size_t k = 0; k < s->nf; k++) {
            for (size_t j = 0; j < s->f[k].n; j++) free(s->f[k].alts[j].owned);
            free(s->f[k].alts);
        }
        free(s->f);
        st_tmpl_free(s->tmpl);
        if (s->tmpls) {
            for (size_t k = 0; k < s->src->label_format.n; k++) st_tmpl_free(s->tmpls[k]);
            free(s->tmpls);
        }
        if (s->md) pcre2_match_data_free(s->md);
    }
    free(p->st);
    if (p->md) pcre2_match_data_free(p->md);
    if (p->ansi_md) pcre2_match_data_free(p->ansi_md);
    if (p->ansi) pcre2_code_free(p->ansi);
    pl_arena_free(&p->arena);
    free(p->lb.v);
    free(p->lb.ext);
    st_buf_free(&p->scratch);
    st_buf_free(&p->scratch2);
    st_buf_free(&p->keybuf);
    st_buf_free(&p->pfx);
    st_buf_free(&p->tmpl_out);
    st_buf_free(&p->text);
    free(p->snap);
    free(p->saved);
    free(p->base);
    free(p->out);
    free(p->outcat);
    free(p);
}

int st_pipeline_clone(const st_pipeline_t *p, st_pipeline_t **out)
{
    char err[256];
    return st_pipeline_compile(p->src, p->unwrap, out, err);
}

bool st_pipeline_line_only(const st_pipeline_t *p)
{
    return p->line_only;
}

bool st_pipeline_required_literal(const st_pipeline_t *p, st_str_t *lit)
{
    if (p->nst == 0 || p->st[0].kind != PS_LINE || p->st[0].nf == 0) return false;
    const lfilter_t *f = &p->st[0].f[0];
    if (f->negate || f->n != 1 || (f->alts[0].kind != ALT_LIT && f->alts[0].kind != ALT_RE) ||
        f->alts[0].lit.n == 0)
        return false;
    *lit = f->alts[0].lit; /* ALT_RE: the regex's required literal */
    return true;
}

bool st_pipeline_literal_only(const st_pipeline_t *p)
{
    st_str_t lit; /* the required literal of a |= (not of a regex), and no other line filter */
    return st_pipeline_required_literal(p, &lit) && p->st[0].nf == 1 && p->st[0].f[0].alts[0].kind == ALT_LIT;
}

bool st_pipeline_keep_line(st_pipeline_t *p, st_str_t line)
{
    if (p->nst == 0 || p->st[0].kind != PS_LINE) return true;
    return lines_pass(p, &p->st[0], line);
}

/* ---- label filters ---------------------------------------------------------------------------------- */

static bool cmp_f(st_logql_cmp_t op, double a, double b)
{
    switch (op) {
    case ST_LOGQL_CMP_EQ: return a == b;
    case ST_LOGQL_CMP_NEQ: return a != b;
    case ST_LOGQL_CMP_GT: return a > b;
    case ST_LOGQL_CMP_GTE: return a >= b;
    case ST_LOGQL_CMP_LT: return a < b;
    case ST_LOGQL_CMP_LTE: return a <= b;
    }
    return false;
}

static bool cmp_i(st_logql_cmp_t op, int64_t a, int64_t b)
{
    switch (op) {
    case ST_LOGQL_CMP_EQ: return a == b;
    case ST_LOGQL_CMP_NEQ: return a != b;
    case ST_LOGQL_CMP_GT: return a > b;
    case ST_LOGQL_CMP_GTE: return a >= b;
    case ST_LOGQL_CMP_LT: return a < b;
    case ST_LOGQL_CMP_LTE: return a <= b;
    }
    return false;
}

static bool cmp_u(st_logql_cmp_t op, uint64_t a, uint64_t b)
{
    switch (op) {
    case ST_LOGQL_CMP_EQ: return a == b;
    case ST_LOGQL_CMP_NEQ: return a != b;
    case ST_LOGQL_CMP_GT: return a > b;
    case ST_LOGQL_CMP_GTE: return a >= b;
    case ST_LOGQL_CMP_LT: return a < b;
    case ST_LOGQL_CMP_LTE: return a <= b;
    }
    return false;
}

static bool matcher_ok(st_pipeline_t *p, const st_logql_matcher_t *m, st_str_t v)
{
    switch (m->type) {
    case ST_LOGQL_MATCH_EQ: return st_str_eq(v, m->value);
    case ST_LOGQL_MATCH_NEQ: return !st_str_eq(v, m->value);
    case ST_LOGQL_MATCH_RE: return re_match(p->md, m->re, v);
    case ST_LOGQL_MATCH_NRE: return !re_match(p->md, m->re, v);
    }
    return false;
}

/* A conversion failure keeps the entry and records LabelFilterErr unless an error is already set. */
static bool conv_failed(st_pipeline_t *p, const char *msg)
{
    pl_lb_t *lb = &p->lb;
    if (lb->err.n == 0) {
        lb->err = st_cstr("LabelFilterErr");
        lb->details = pl_dup(p, st_cstr(msg));
    }
    return true;
}

static bool label_filter(st_pipeline_t *p, const st_logql_label_filter_t *f)
{
    pl_lb_t *lb = &p->lb;
    st_str_t v;
    char msg[300];
    switch (f->kind) {
    case ST_LOGQL_LF_AND: {
        bool l = label_filter(p, f->bin.left);
        bool r = label_filter(p, f->bin.right);
        return l && r;
    }
    case ST_LOGQL_LF_OR:
        if (label_filter(p, f->bin.left)) return true;
        return label_filter(p, f->bin.right);
    case ST_LOGQL_LF_STRING:
        if (st_str_eqc(f->str.name, "__error__"))
            v = lb->err;
        else if (!pl_lb_get(lb, f->str.name, &v))
            v = st_str("", 0);
        return matcher_ok(p, &f->str, v);
    case ST_LOGQL_LF_NUMBER: {
        if (!pl_lb_get(lb, f->num.name, &v)) return false;
        double x;
        if (st_go_parse_float(v, &x, msg, sizeof msg) != 0) return conv_failed(p, msg);
        return cmp_f(f->num.op, x, f->num.value);
    }
    case ST_LOGQL_LF_DURATION: {
        if (!pl_lb_get(lb, f->dur.name, &v)) return false;
        int64_t ns;
        if (st_go_parse_duration(v, &ns, msg, sizeof msg) != 0) return conv_failed(p, msg);
        return cmp_i(f->dur.op, ns, f->dur.ns);
    }
    case ST_LOGQL_LF_BYTES: {
        if (!pl_lb_get(lb, f->bytes.name, &v)) return false;
        uint64_t b;
        if (st_go_parse_bytes(v, &b, msg, sizeof msg) != 0) return conv_failed(p, msg);
        return cmp_u(f->bytes.op, b, f->bytes.bytes);
    }
    case ST_LOGQL_LF_IP:
        if (lb->err.n > 0) return true; /* only string matchers filter entries with errors */
        if (!pl_lb_get(lb, f->ip.name, &v)) return false;
        {
            bool in = v.n > 0 && ip_match(&f->ip.ip, v);
            return f->ip.op == ST_LOGQL_CMP_NEQ ? !in : in;
        }
    }
    return false;
}

/* ---- drop / keep ---------------------------------------------------------------------------------- */

static void stage_drop(st_pipeline_t *p, const st_logql_stage_t *s)
{
    pl_lb_t *lb = &p->lb;
    for (size_t i = 0; i < s->names.n; i++) {
        const st_logql_named_t *d = &s->names.v[i];
        bool is_err = st_str_eqc(d->name, "__error__"), is_det = st_str_eqc(d->name, "__error_details__");
        if (d->has_matcher) {
            st_str_t v = st_str("", 0);
            if (is_err)
                v = lb->err;
            else if (is_det)
                v = lb->details;
            else
                pl_lb_get(lb, d->name, &v);
            if (!matcher_ok(p, &d->matcher, v)) continue;
        }
        if (is_err)
            lb->err = st_str("", 0);
        else if (is_det)
            lb->details = st_str("", 0);
        else
            pl_lb_del(lb, d->name);
    }
}

static void stage_keep(st_pipeline_t *p, const st_logql_stage_t *s)
{
    pl_lb_t *lb = &p->lb;
    for (size_t i = 0; i < lb->n;) {
        const pl_label_t *l = &lb->v[i];
        bool keep = st_str_eqc(l->name, "__error__") || st_str_eqc(l->name, "__error_details__") ||
                    st_str_eqc(l->name, "__preserve_error__");
        for (size_t k = 0; k < s->names.n && !keep; k++) {
            const st_logql_named_t *d = &s->names.v[k];
            if (!st_str_eq(d->name, l->name)) continue;
            keep = !d->has_matcher || matcher_ok(p, &d->matcher, l->value);
        }
        if (keep)
            i++;
        else
            (void)lb_remove_at(lb, i);
    }
}

/* ---- formatting ------------------------------------------------------------------------------------- */

static int snap_push(st_pipeline_t *p, st_str_t name, st_str_t value)
{
    if (p->nsnap == p->capsnap) {
        size_t cap = p->capsnap ? p->capsnap * 2 : 32;
        st_label_t *v = realloc(p->snap, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        p->snap = v;
        p->capsnap = cap;
    }
    p->snap[p->nsnap++] = (st_label_t){name, value};
    return 0;
}

/* The label map a template sees (Loki's LabelsBuilder.Map: current labels plus the error labels). */
static int snapshot(st_pipeline_t *p)
{
    p->nsnap = 0;
    for (size_t i = 0; i < p->lb.n; i++) {
        const pl_label_t *l = &p->lb.v[i];
        if ((p->lb.err.n && st_str_eqc(l->name, "__error__")) ||
            (p->lb.details.n && st_str_eqc(l->name, "__error_details__")))
            continue;
        ST_TRY(snap_push(p, l->name, l->value));
    }
    if (p->lb.err.n) ST_TRY(snap_push(p, ST_STR("__error__"), p->lb.err));
    if (p->lb.details.n) ST_TRY(snap_push(p, ST_STR("__error_details__"), p->lb.details));
    return 0;
}

static int run_template(st_pipeline_t *p, st_tmpl_t *t, st_str_t *out, bool *failed)
{
    st_tmpl_data_t d = {p->snap, p->nsnap, p->line, p->ts};
    st_buf_reset(&p->tmpl_out);
    st_str_t emsg;
    int rc = st_tmpl_exec(t, &d, &p->tmpl_out, &emsg);
    *failed = false;
    if (rc == ST_EPARSE) {
        *failed = true;
        p->lb.err = st_cstr("TemplateFormatErr");
        p->lb.details = pl_dup(p, emsg);
        return 0;
    }
    if (rc < 0) return rc;
    *out = pl_dup(p, st_str(p->tmpl_out.data, p->tmpl_out.len));
    if (out->p == NULL) return -ENOMEM;
    return 0;
}

static int stage_line_format(st_pipeline_t *p, const pl_stage_t *s)
{
    if (s->simple.p != NULL) {
        st_str_t v;
        p->line = pl_lb_get(&p->lb, s->simple, &v) ? v : st_str("", 0);
        return 0;
    }
    ST_TRY(snapshot(p));
    st_str_t out;
    bool failed;
    ST_TRY(run_template(p, s->tmpl, &out, &failed));
    if (!failed) p->line = out;
    return 0;
}

static int stage_label_format(st_pipeline_t *p, const pl_stage_t *s)
{
    const st_logql_stage_t *src = s->src;
    bool have_snap = false;
    for (size_t i = 0; i < src->label_format.n; i++) {
        const st_logql_label_fmt_t *f = &src->label_format.v[i];
        if (f->rename) {
            st_str_t v;
            if (pl_lb_get(&p->lb, f->value, &v)) {
                ST_TRY(pl_lb_set_parsed(&p->lb, f->dst, v));
                pl_lb_del(&p->lb, f->value);
            }
            continue;
        }
        if (!have_snap) {
            ST_TRY(snapshot(p));
            have_snap = p->nsnap > 0; /* Loki refills an empty map before every template */
        }
        st_str_t out;
        bool failed;
        ST_TRY(run_template(p, s->tmpls[i], &out, &failed));
        if (!failed) ST_TRY(pl_lb_set_parsed(&p->lb, f->dst, out));
    }
    return 0;
}

static int stage_decolorize(st_pipeline_t *p)
{
    st_str_t l = p->line;
    size_t pos = 0, last = 0;
    st_buf_t *b = &p->scratch;
    st_buf_reset(b);
    bool any = false;
    while (pos <= l.n) {
        int rc = pcre2_jit_match(p->ansi, (PCRE2_SPTR)(l.p ? l.p : ""), l.n, pos, 0, p->ansi_md, NULL);
        if (rc == PCRE2_ERROR_JIT_BADOPTION)
            rc = pcre2_match(p->ansi, (PCRE2_SPTR)(l.p ? l.p : ""), l.n, pos, 0, p->ansi_md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(p->ansi_md);
        size_t a = ov[0], e = ov[1];
        ST_TRY(st_buf_append(b, l.p + last, a - last));
        any = true;
        last = e;
        pos = e > a ? e : a + 1;
    }
    if (!any) return 0;
    ST_TRY(st_buf_append(b, l.p + last, l.n - last));
    p->line = pl_dup(p, st_str(b->data, b->len));
    return p->line.p == NULL ? -ENOMEM : 0;
}

/* ---- unwrap -------------------------------------------------------------------------------------------- */

static bool unwrap(st_pipeline_t *p, double *value)
{
    const st_logql_unwrap_t *u = p->unwrap;
    st_str_t v;
    if (!pl_lb_get(&p->lb, u->label, &v) || v.n == 0) return false;
    char msg[300];
    int rc;
    double x = 0;
    switch (u->conv) {
    case ST_LOGQL_CONV_NONE: rc = st_go_parse_float(v, &x, msg, sizeof msg); break;
    case ST_LOGQL_CONV_BYTES: {
        uint64_t b;
        rc = st_go_parse_bytes(v, &b, msg, sizeof msg);
        x = (double)b;
        break;
    }
    default: {
        int64_t ns;
        rc = st_go_parse_duration(v, &ns, msg, sizeof msg);
        x = (double)(ns / 1000000000) + (double)(ns % 1000000000) / 1e9;
        break;
    }
    }
    if (rc != 0) {
        x = 0;
        p->lb.err = st_cstr("SampleExtractionErr");
        p->lb.details = pl_dup(p, st_cstr(msg));
    }
    for (size_t i = 0; i < u->n_post; i++)
        if (!label_filter(p, u->post[i])) return false;
    *value = x;
    return true;
}

/* ---- running --------------------------------------------------------------------------------------------
 */

/* Parses only the names the label filters after stage i read and runs those filters: 0 when they
 * reject the entry, 1 when it goes on (the builder is restored for the full parse), -ENOMEM. */
static int prefilter(st_pipeline_t *p, const pl_stage_t *s, size_t i)
{
    pl_lb_t *lb = &p->lb;
    if (lb->n > p->capsaved) {
        pl_label_t *v = realloc(p->saved, lb->cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        p->saved = v;
        p->capsaved = lb->cap;
    }
    size_t n = lb->n, next = lb->next;
    uint64_t mask = lb->mask, ext_mask = lb->ext_mask;
    st_str_t err = lb->err, details = lb->details;
    memcpy(p->saved, lb->v, n * sizeof *lb->v);
    p->want = s;
    p->found = 0;
    int rc = s->kind == PS_JSON ? pl_json(p, s->src) : pl_logfmt(p, s->src);
    p->want = NULL;
    if (rc < 0) return rc;
    for (size_t k = 1; k <= s->nfilters; k++)
        if (!label_filter(p, p->st[i + k].src->label_filter)) return 0;
    memcpy(lb->v, p->saved, n * sizeof *lb->v);
    lb->n = n;
    lb->next = next;
    lb->mask = mask;
    lb->ext_mask = ext_mask;
    lb->err = err;
    lb->details = details;
    return 1;
}

static int ensure_out(st_pipeline_t *p, size_t n)
{
    if (n <= p->outcap) return 0;
    size_t cap = p->outcap ? p->outcap : 32;
    while (cap < n) cap *= 2;
    st_label_t *o = realloc(p->out, cap * sizeof *o);
    if (o == NULL) return -ENOMEM;
    p->out = o;
    uint8_t *c = realloc(p->outcat, cap);
    if (c == NULL) return -ENOMEM;
    p->outcat = c;
    p->outcap = cap;
    return 0;
}

/* First 8 bytes of a name, big-endian: orders like memcmp on those bytes. */
static inline uint64_t name_key(st_str_t s)
{
    uint64_t k = 0;
    size_t n = s.n < 8 ? s.n : 8;
    for (size_t i = 0; i < n; i++) k |= (uint64_t)(unsigned char)s.p[i] << (56 - 8 * i);
    return k;
}

static inline bool name_less(uint64_t ka, st_str_t a, uint64_t kb, st_str_t b)
{
    if (ka != kb) return ka < kb;
    if (a.n <= 8 || b.n <= 8) return a.n < b.n;
    size_t n = (a.n < b.n ? a.n : b.n) - 8;
    int c = memcmp(a.p + 8, b.p + 8, n);
    return c != 0 ? c < 0 : a.n < b.n;
}

/* Bytes that Go's strconv.Quote copies as they are. */
static bool plain_byte[256];
static pthread_once_t plain_once = PTHREAD_ONCE_INIT;
static void plain_init(void)
{
    for (int c = 0x20; c < 0x7F; c++) plain_byte[c] = c != '"' && c != '\\';
}

/* Appends the canonical text {a="b", c="d"} (st_labels_format's output) with one reservation. */
static int fmt_canon(st_buf_t *b, const st_label_t *v, size_t n)
{
    size_t need = 2;
    for (size_t i = 0; i < n; i++) need += v[i].name.n + v[i].value.n + 5;
    ST_TRY(st_buf_reserve(b, need));
    char *o = b->data + b->len;
    *o++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) {
            *o++ = ',';
            *o++ = ' ';
        }
        memcpy(o, v[i].name.p, v[i].name.n);
        o += v[i].name.n;
        *o++ = '=';
        const unsigned char *q = (const unsigned char *)v[i].value.p;
        size_t k = 0, vn = v[i].value.n;
        /* 8 bytes at a time: none below 0x20, none from 0x7F, no '"' or '\\' */
        while (vn - k >= 8) {
            uint64_t w;
            memcpy(&w, q + k, 8);
            const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
            uint64_t lo = (w - ones * 0x20) & ~w;
            uint64_t hi = w | (w + ones);
            uint64_t qu = w ^ (ones * '"'), bs = w ^ (ones * '\\');
            uint64_t z = ((qu - ones) & ~qu) | ((bs - ones) & ~bs);
            if ((lo | hi | z) & highs) break;
            k += 8;
        }
        while (k < vn && plain_byte[q[k]]) k++;
        if (k == vn) {
            *o++ = '"';
            memcpy(o, q, vn);
            o += vn;
            *o++ = '"';
            continue;
        }
        /* escapes needed: Go's quoting, then continue with a fresh reservation */
        b->len = (size_t)(o - b->data);
        ST_TRY(st_go_quote(b, v[i].value));
        size_t rest = 1;
        for (size_t j = i + 1; j < n; j++) rest += v[j].name.n + v[j].value.n + 5;
        ST_TRY(st_buf_reserve(b, rest));
        o = b->data + b->len;
    }
    *o++ = '}';
    b->len = (size_t)(o - b->data);
    return 0;
}

static int finish(st_pipeline_t *p, st_pipeline_result_t *out)
{
    pl_lb_t *lb = &p->lb;
    ST_TRY(ensure_out(p, lb->n + 2));
    bool drop_unwrapped = p->unwrap != NULL && lb->err.n == 0;
    uint64_t keys[128], *kp = keys;
    if (lb->n + 2 > 128) {
        kp = (uint64_t *)(void *)pl_alloc(&p->arena, (lb->n + 2) * sizeof *kp);
        if (kp == NULL) return -ENOMEM;
    }
    size_t n = 0;
    st_str_t errs[2][2] = {{ST_STR("__error__"), lb->err}, {ST_STR("__error_details__"), lb->details}};
    for (size_t i = 0; i < lb->n + 2; i++) {
        st_str_t name, value;
        uint8_t cat;
        if (i < lb->n) {
            const pl_label_t *l = &lb->v[i];
            if (drop_unwrapped && st_str_eq(l->name, p->unwrap->label)) continue;
            if ((lb->err.n && st_str_eqc(l->name, "__error__")) ||
                (lb->details.n && st_str_eqc(l->name, "__error_details__")))
                continue;
            name = l->name;
            value = l->value;
            cat = l->cat;
        } else {
            name = errs[i - lb->n][0];
            value = errs[i - lb->n][1];
            if (value.n == 0) continue;
            cat = PL_CAT_PARSED;
        }
        /* insertion into name order */
        uint64_t key = name_key(name);
        size_t k = n;
        while (k > 0 && name_less(key, name, kp[k - 1], p->out[k - 1].name)) {
            p->out[k] = p->out[k - 1];
            p->outcat[k] = p->outcat[k - 1];
            kp[k] = kp[k - 1];
            k--;
        }
        p->out[k] = (st_label_t){name, value};
        p->outcat[k] = cat;
        kp[k] = key;
        n++;
    }
    p->result.v = p->out;
    p->result.n = n;
    p->result.arena = NULL;
    st_buf_reset(&p->text);
    pthread_once(&plain_once, plain_init);
    ST_TRY(fmt_canon(&p->text, p->out, n));
    out->labels = &p->result;
    out->cats = p->outcat;
    out->hash = st_hash64(p->text.data, p->text.len);
    out->has_error = lb->err.n > 0;
    out->line = p->line;
    out->keep = true;
    return 0;
}

/* Runs the stages; out == NULL: only the verdict (returns 1 when kept). */
static int run(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
               st_pipeline_result_t *out, bool kept)
{
    if (out != NULL) {
        memset(out, 0, sizeof *out);
        out->line = line;
    }
    size_t first = 0;
    if (p->nst > 0 && p->st[0].kind == PS_LINE) {
        if (!kept && !lines_pass(p, &p->st[0], line)) return 0;
        first = 1;
    }
    pl_arena_reset(&p->arena);
    p->line = line;
    p->ts = ts;
    pl_lb_t *lb = &p->lb;
    lb->n = 0;
    lb->mask = 0;
    lb->nmd = 0;
    lb->next = 0;
    lb->ext_mask = 0;
    lb->err = lb->details = st_str("", 0);
    lb->base = NULL;
    lb->nbase = 0;
    lb->base_mask = 0;
    if (stream != NULL) {
        if (stream->n > p->capbase) {
            pl_label_t *b = realloc(p->base, stream->n * sizeof *b);
            if (b == NULL) return -ENOMEM;
            p->base = b;
            p->capbase = stream->n;
        }
        for (size_t i = 0; i < stream->n; i++) {
            p->base[i] = (pl_label_t){stream->v[i].name, stream->v[i].value, PL_CAT_STREAM, 0};
            lb->base_mask |= pl_bit(stream->v[i].name);
        }
        lb->base = p->base;
        lb->nbase = stream->n;
        if (stream->n > lb->cap) {
            size_t cap = lb->cap ? lb->cap : 32;
            while (cap < stream->n) cap *= 2;
            pl_label_t *v = realloc(lb->v, cap * sizeof *v);
            if (v == NULL) return -ENOMEM;
            lb->v = v;
            lb->cap = cap;
        }
        memcpy(lb->v, p->base, stream->n * sizeof *lb->v);
        lb->n = stream->n;
        lb->mask = lb->base_mask;
    }
    if (md.n > 0) {
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t mn, mv;
        while (st_md_next(&it, &mn, &mv) == 1) ST_TRY(lb_add_md(p, mn, mv));
    }
    for (size_t i = first; i < p->nst; i++) {
        const pl_stage_t *s = &p->st[i];
        if (s->nfilters > 0) {
            int rc = prefilter(p, s, i);
            if (rc <= 0) return rc; /* dropped (0) or -ENOMEM */
        }
        switch (s->kind) {
        case PS_LINE:
            if (!lines_pass(p, s, p->line)) return 0;
            break;
        case PS_JSON: ST_TRY(pl_json(p, s->src)); break;
        case PS_JSON_EXPR: ST_TRY(pl_json_expr(p, s->src)); break;
        case PS_LOGFMT: ST_TRY(pl_logfmt(p, s->src)); break;
        case PS_LOGFMT_EXPR: ST_TRY(pl_logfmt_expr(p, s->src)); break;
        case PS_REGEXP: ST_TRY(pl_regexp(p, s->src, s->md)); break;
        case PS_PATTERN: ST_TRY(pl_pattern(p, s->src)); break;
        case PS_UNPACK: ST_TRY(pl_unpack(p)); break;
        case PS_LABEL_FILTER:
            if (!label_filter(p, s->src->label_filter)) return 0;
            break;
        case PS_LINE_FORMAT: ST_TRY(stage_line_format(p, s)); break;
        case PS_LABEL_FORMAT: ST_TRY(stage_label_format(p, s)); break;
        case PS_DROP: stage_drop(p, s->src); break;
        case PS_KEEP: stage_keep(p, s->src); break;
        case PS_DECOLORIZE: ST_TRY(stage_decolorize(p)); break;
        }
    }
    if (p->unwrap != NULL) {
        double v;
        if (!unwrap(p, &v)) return 0;
        if (out == NULL) return 1;
        out->has_value = true;
        out->value = v;
    }
    if (out == NULL) return 1;
    return finish(p, out);
}

int st_pipeline_run(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                    st_pipeline_result_t *out)
{
    return run(p, ts, line, stream, md, out, false);
}

int st_pipeline_run_kept(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md,
                         st_pipeline_result_t *out)
{
    return run(p, ts, line, stream, md, out, true);
}

int st_pipeline_test_kept(st_pipeline_t *p, int64_t ts, st_str_t line, const st_labels_t *stream, st_str_t md)
{
    return run(p, ts, line, stream, md, NULL, true);
}
