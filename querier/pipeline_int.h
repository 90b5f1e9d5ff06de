/* pipeline_int.h: internals shared by the pipeline's files (pipeline.c: compilation, line and label
 * filters, formatting stages, unwrap, results; pipeline_parsers.c: json, logfmt, regexp, pattern,
 * unpack). Per-entry state lives in a label builder with Loki's LabelsBuilder semantics and a
 * chunked arena that is reset, not freed, between entries. */
#ifndef ST_QUERIER_PIPELINE_INT_H
#define ST_QUERIER_PIPELINE_INT_H

#include "querier/querier_int.h"
#include "querier/template.h"

/* ---- arena: stable addresses, reset per entry ---------------------------------------------------- */

typedef struct pl_blk {
    struct pl_blk *next;
    size_t cap, used;
    char data[];
} pl_blk_t;

typedef struct {
    pl_blk_t *head, *cur;
} pl_arena_t;

void pl_arena_reset(pl_arena_t *a);
void pl_arena_free(pl_arena_t *a);
char *pl_alloc(pl_arena_t *a, size_t n); /* NULL on OOM */

/* ---- label builder --------------------------------------------------------------------------------- */

enum {
    PL_CAT_STREAM = ST_PIPELINE_CAT_STREAM,
    PL_CAT_MD = ST_PIPELINE_CAT_MD,
    PL_CAT_PARSED = ST_PIPELINE_CAT_PARSED
};

enum { PL_EXTRACTED = 1 }; /* pl_label_t.flags: set by a parser or label_format on this entry */

typedef struct {
    st_str_t name, value; /* views: stream labels, metadata bytes, the line or the arena */
    uint8_t cat;
    uint8_t flags;
} pl_label_t;

typedef struct {
    pl_label_t *v;
    size_t n, cap;
    uint64_t mask;          /* bloom bits of the names in v (stale bits allowed) */
    const pl_label_t *base; /* the stream's labels, sorted */
    size_t nbase;
    uint64_t base_mask;
    size_t nmd;    /* structured metadata entries added (0: skip md lookups) */
    st_str_t *ext; /* extracted names whose label was deleted since (Loki's "extracted" set is
                      the PL_EXTRACTED labels plus these) */
    size_t next, capext;
    uint64_t ext_mask;
    st_str_t err, details; /* __error__ / __error_details__ ("" = unset) */
} pl_lb_t;

static inline uint64_t pl_bit(st_str_t s)
{
    if (s.n == 0) return 1;
    unsigned h = (unsigned)s.n * 31u + (unsigned char)s.p[0] * 7u + (unsigned char)s.p[s.n - 1];
    return UINT64_C(1) << (h & 63);
}

int pl_lb_find(const pl_lb_t *lb, st_str_t name); /* index into v, or -1 */
bool pl_lb_get(const pl_lb_t *lb, st_str_t name, st_str_t *value);
bool pl_lb_base_has(const pl_lb_t *lb, st_str_t name);
bool pl_lb_md_has(const pl_lb_t *lb, st_str_t name);
bool pl_lb_extracted(const pl_lb_t *lb, st_str_t name);
int pl_lb_set_parsed(pl_lb_t *lb, st_str_t name, st_str_t value); /* 0 or -ENOMEM */
/* Same with the index pl_lb_find gave for name (-1: append). */
int pl_lb_set_at(pl_lb_t *lb, int i, st_str_t name, st_str_t value);
/* True for an extracted name whose label has been deleted. */
bool pl_lb_ext_deleted(const pl_lb_t *lb, st_str_t name);
void pl_lb_del(pl_lb_t *lb, st_str_t name);
static inline void pl_lb_set_err(pl_lb_t *lb, const char *err)
{
    lb->err = st_cstr(err);
}

/* ---- compiled stages ------------------------------------------------------------------------------- */

typedef enum { ALT_LIT, ALT_LIT_CI, ALT_RE, ALT_PATTERN, ALT_IP } alt_kind_t;

typedef struct {
    alt_kind_t kind;
    st_str_t lit; /* LIT; LIT_CI: lower-cased copy (owned); RE: a literal every match contains (owned) or "" */
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

typedef enum {
    PS_LINE,        /* a run of line filters (Loki moves them to the front of their segment) */
    PS_JSON,        /* | json */
    PS_JSON_EXPR,   /* | json a="b.c" */
    PS_LOGFMT,      /* | logfmt */
    PS_LOGFMT_EXPR, /* | logfmt a, b="c" */
    PS_REGEXP,
    PS_PATTERN,
    PS_UNPACK,
    PS_LABEL_FILTER,
    PS_LINE_FORMAT,
    PS_LABEL_FORMAT,
    PS_DROP,
    PS_KEEP,
    PS_DECOLORIZE,
} pl_kind_t;

typedef struct {
    pl_kind_t kind;
    const st_logql_stage_t *src; /* NULL for PS_LINE */
    lfilter_t *f;                /* PS_LINE */
    size_t nf;
    st_tmpl_t *tmpl;      /* PS_LINE_FORMAT */
    st_str_t simple;      /* PS_LINE_FORMAT: {{.x}} fast path when simple.p != NULL */
    st_tmpl_t **tmpls;    /* PS_LABEL_FORMAT: one per entry (NULL for renames) */
    pcre2_match_data *md; /* PS_REGEXP */
    /* PS_JSON/PS_LOGFMT followed by label filters: the names those filters read. An entry is first
     * parsed for these names only and dropped early when the filters reject it. */
    st_str_t want[8];
    size_t nwant, nfilters;
    uint64_t want_mask;
    bool want_ext; /* some wanted name ends in _extracted */
} pl_stage_t;

struct st_pipeline {
    pl_stage_t *st;
    size_t nst;
    bool line_only;
    const st_logql_pipeline_t *src;
    const st_logql_unwrap_t *unwrap;
    pcre2_match_data *md; /* line filters and string label filters */
    pcre2_code *ansi;     /* decolorize */
    pcre2_match_data *ansi_md;
    bool has_vlit; /* st_pipeline_value_literal */
    st_str_t vname, vvalue;
    /* per-entry state */
    pl_arena_t arena;
    pl_lb_t lb;
    st_str_t line; /* the current line */
    int64_t ts;
    const pl_stage_t *want; /* during a targeted parse: the stage whose wanted names to emit */
    size_t found;           /* wanted names set so far (a targeted parse stops when all are) */
    pl_label_t *saved;      /* builder labels saved around a targeted parse */
    size_t capsaved;
    st_buf_t scratch, scratch2, keybuf, pfx, tmpl_out;
    st_label_t *snap; /* label_format: labels as the templates of one stage see them */
    size_t nsnap, capsnap;
    /* per-stream cache */
    const st_labels_t *stream;
    pl_label_t *base;
    size_t nbase, capbase;
    /* result */
    st_label_t *out;
    uint8_t *outcat;
    size_t outcap;
    st_labels_t result;
    st_buf_t text;
};

/* Parser stages (pipeline_parsers.c); each returns 0 or -ENOMEM and records failures as
 * __error__/__error_details__ in the builder. unpack may replace p->line. */
int pl_json(st_pipeline_t *p, const st_logql_stage_t *s);
int pl_json_expr(st_pipeline_t *p, const st_logql_stage_t *s);
int pl_logfmt(st_pipeline_t *p, const st_logql_stage_t *s);
int pl_logfmt_expr(st_pipeline_t *p, const st_logql_stage_t *s);
int pl_regexp(st_pipeline_t *p, const st_logql_stage_t *s, pcre2_match_data *md);
int pl_pattern(st_pipeline_t *p, const st_logql_stage_t *s);
int pl_unpack(st_pipeline_t *p);

/* During a targeted parse, whether a final label name is one the next filters read. */
static inline bool pl_wanted(const st_pipeline_t *p, st_str_t name)
{
    const pl_stage_t *s = p->want;
    if (!(s->want_mask & pl_bit(name))) return false;
    for (size_t i = 0; i < s->nwant; i++)
        if (st_str_eq(s->want[i], name)) return true;
    return false;
}

/* Helpers shared with the parsers (pipeline.c). */
st_str_t pl_dup(st_pipeline_t *p, st_str_t s); /* copy into the arena; {NULL,0} on OOM */
/* Loki's sanitizeLabelKey(key, true) appended to out ("" when key is blank). */
int pl_sanitize(st_buf_t *out, st_str_t key, bool to_empty);
/* True when key is already a valid label name that sanitizing leaves unchanged. */
bool pl_name_clean(st_str_t key);
/* Replaces every U+FFFD (and invalid byte) with a space, as Loki does for parsed values; may return a
 * copy in the arena. */
st_str_t pl_fix_runes(st_pipeline_t *p, st_str_t v);
/* Adds a parsed label the way parsers do: the `_extracted` suffix when the name is a stream label or
 * structured metadata, then skipped if already extracted on this entry (or, in a targeted parse, not
 * wanted). Returns 1 when set, 0 when skipped, -ENOMEM. */
int pl_emit(st_pipeline_t *p, st_str_t name, st_str_t value);
/* In a targeted parse: true once every wanted name has been set. */
static inline bool pl_all_found(const st_pipeline_t *p)
{
    return p->want != NULL && p->found >= p->want->nwant;
}

#endif
