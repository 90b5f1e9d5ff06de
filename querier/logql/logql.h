/* logql.h: the LogQL front end (Loki 3 dialect): lexer, parser, Loki's post-parse checks, formatter.
 *
 * st_logql_parse() turns query text into an AST of tagged unions that one arena owns; regexes are
 * compiled with PCRE2 at parse time and freed with the tree. The AST is read-only for callers.
 * Evaluation lives elsewhere; this module never touches logs. */
#ifndef ST_QUERIER_LOGQL_LOGQL_H
#define ST_QUERIER_LOGQL_LOGQL_H

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Loki refuses queries of this many bytes or more ("input size too long"). */
#define ST_LOGQL_MAX_INPUT 131072

typedef struct st_logql_expr st_logql_expr_t;
typedef struct st_logql_label_filter st_logql_label_filter_t;

/* ---- Matchers and selectors ------------------------------------------------------------------ */

typedef enum {
    ST_LOGQL_MATCH_EQ,  /* =  */
    ST_LOGQL_MATCH_NEQ, /* != */
    ST_LOGQL_MATCH_RE,  /* =~ */
    ST_LOGQL_MATCH_NRE, /* !~ */
} st_logql_match_t;

/* A Prometheus-style label matcher. name and value are NUL-terminated and point into the arena.
 * Regexes use Go RE2 syntax (checked as Go does) translated to PCRE2. Selector and drop/keep
 * matchers are compiled like Prometheus matchers, "^(?s:value)$" (dot matches newline); label
 * filter matchers like Loki's label filters, "^(?:value)$". */
typedef struct {
    st_logql_match_t type;
    st_str_t name;
    st_str_t value;     /* decoded string (Go escapes resolved) */
    pcre2_code *re;     /* RE/NRE: the anchored regex (UTF, MATCH_INVALID_UTF, DOLLAR_ENDONLY), JIT
                           compiled when the platform allows; NULL for EQ/NEQ */
    bool matches_empty; /* the matcher accepts the empty string (so it also selects absent labels) */
} st_logql_matcher_t;

/* "{a="b", c=~"d"}". Loki requires at least one matcher with !matches_empty (checked at parse). */
typedef struct {
    st_logql_matcher_t *v;
    size_t n;
} st_logql_selector_t;

/* ---- Values shared by filters -------------------------------------------------------------- */

/* An ip("...") operand: one address, a range "a-b" or a CIDR "a/n", as an inclusive range of
 * 16-byte big-endian addresses. IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) with v4 set; an IPv4
 * range only matches IPv4 values and an IPv6 range only IPv6 values, as Go's netip does. */
typedef struct {
    st_str_t text; /* the decoded string as written */
    bool v4;
    uint8_t lo[16];
    uint8_t hi[16];
} st_logql_ip_t;

/* A parsed pattern ("<ip> - <_> [<ts>] ..."): literals alternate with captures. */
typedef struct {
    bool capture;  /* true: <name> capture ("_" for the unnamed <_>); false: literal bytes */
    st_str_t text; /* literal bytes, or the capture name without <> */
} st_logql_pattern_part_t;

typedef struct {
    st_logql_pattern_part_t *v;
    size_t n;
} st_logql_pattern_t;

/* ---- Line filters -------------------------------------------------------------------------- */

typedef enum {
    ST_LOGQL_LINE_CONTAINS,     /* |= */
    ST_LOGQL_LINE_NOT_CONTAINS, /* != */
    ST_LOGQL_LINE_REGEX,        /* |~ */
    ST_LOGQL_LINE_NOT_REGEX,    /* !~ */
    ST_LOGQL_LINE_PATTERN,      /* |> */
    ST_LOGQL_LINE_NOT_PATTERN,  /* !> */
} st_logql_line_op_t;

/* One operand of a line filter. */
typedef struct {
    bool is_ip;                 /* ip("...") operand; ip is set, re/pattern unused */
    st_str_t value;             /* decoded string */
    pcre2_code *re;             /* REGEX/NOT_REGEX string operand: unanchored, JIT; else NULL */
    st_logql_pattern_t pattern; /* PATTERN/NOT_PATTERN: literals and <_> only (validated) */
    st_logql_ip_t ip;
} st_logql_line_alt_t;

/* `|= "a" or "b" or ip("10.0.0.0/8")`. A positive op passes a line when any alternative matches;
 * a negative op passes it only when no alternative matches (Loki rewrites `!= "a" or "b"` into
 * `!= "a" != "b"`, which is what st_logql_format prints). */
typedef struct {
    st_logql_line_op_t op;
    st_logql_line_alt_t *alts;
    size_t n_alts; /* >= 1 */
} st_logql_line_filter_t;

/* ---- Label filters (a boolean tree) -------------------------------------------------------- */

typedef enum {
    ST_LOGQL_LF_AND,      /* "a, b", "a and b" or "a b" */
    ST_LOGQL_LF_OR,       /* "a or b" */
    ST_LOGQL_LF_STRING,   /* name =|!=|=~|!~ "string" */
    ST_LOGQL_LF_NUMBER,   /* name cmp 1.5 */
    ST_LOGQL_LF_DURATION, /* name cmp 250ms */
    ST_LOGQL_LF_BYTES,    /* name cmp 20MB */
    ST_LOGQL_LF_IP,       /* name = ip("...") or name != ip("...") */
} st_logql_lf_kind_t;

typedef enum {
    ST_LOGQL_CMP_EQ, /* = or == */
    ST_LOGQL_CMP_NEQ,
    ST_LOGQL_CMP_GT,
    ST_LOGQL_CMP_GTE,
    ST_LOGQL_CMP_LT,
    ST_LOGQL_CMP_LTE,
} st_logql_cmp_t;

struct st_logql_label_filter {
    st_logql_lf_kind_t kind;
    union {
        struct {
            st_logql_label_filter_t *left, *right;
        } bin;                  /* AND, OR */
        st_logql_matcher_t str; /* STRING: a matcher; RE/NRE compiled anchored */
        struct {
            st_str_t name;
            st_logql_cmp_t op;
            double value;
        } num; /* NUMBER */
        struct {
            st_str_t name;
            st_logql_cmp_t op;
            int64_t ns;
        } dur; /* DURATION */
        struct {
            st_str_t name;
            st_logql_cmp_t op;
            uint64_t bytes;
        } bytes; /* BYTES (humanized units: B kB KB MB GB TB PB KiB MiB GiB TiB PiB) */
        struct {
            st_str_t name;
            st_logql_cmp_t op; /* EQ or NEQ */
            st_logql_ip_t ip;
        } ip; /* IP */
    };
};

/* ---- Pipeline stages ----------------------------------------------------------------------- */

typedef enum {
    ST_LOGQL_STAGE_LINE_FILTER,
    ST_LOGQL_STAGE_JSON,
    ST_LOGQL_STAGE_LOGFMT,
    ST_LOGQL_STAGE_REGEXP,
    ST_LOGQL_STAGE_PATTERN,
    ST_LOGQL_STAGE_UNPACK,
    ST_LOGQL_STAGE_LABEL_FILTER,
    ST_LOGQL_STAGE_LINE_FORMAT,
    ST_LOGQL_STAGE_LABEL_FORMAT,
    ST_LOGQL_STAGE_DROP,
    ST_LOGQL_STAGE_KEEP,
    ST_LOGQL_STAGE_DECOLORIZE,
} st_logql_stage_kind_t;

/* One step of a json/logfmt extraction path: a key ("a", a["b"]) or an array index ([0]). */
typedef struct {
    bool is_index;
    st_str_t key;
    int64_t index;
} st_logql_json_step_t;

/* A json/logfmt parameter `name="expr"` or bare `name` (then expr == name). For json the
 * expression is parsed into steps (a.b[0]["c"]); for logfmt it is a plain key (n_steps == 0). */
typedef struct {
    st_str_t name;
    st_str_t expr;
    st_logql_json_step_t *steps;
    size_t n_steps;
} st_logql_extract_t;

/* One label_format entry: dst=src (rename: value is the source label name) or dst="template". */
typedef struct {
    st_str_t dst;
    st_str_t value;
    bool rename;
} st_logql_label_fmt_t;

/* One drop/keep entry: a bare name, or a matcher (drop b="v" only drops b when it matches). */
typedef struct {
    st_str_t name;
    bool has_matcher;
    st_logql_matcher_t matcher; /* valid when has_matcher; matcher.name == name */
} st_logql_named_t;

typedef struct {
    st_logql_stage_kind_t kind;
    union {
        st_logql_line_filter_t line; /* LINE_FILTER */
        struct {
            st_logql_extract_t *v;
            size_t n; /* 0: extract every field */
        } json;       /* JSON */
        struct {
            bool strict;     /* --strict */
            bool keep_empty; /* --keep-empty */
            st_logql_extract_t *v;
            size_t n; /* 0: extract every key */
        } logfmt;     /* LOGFMT */
        struct {
            st_str_t re;      /* the expression as written (decoded) */
            pcre2_code *code; /* unanchored, JIT */
            st_str_t *names;  /* names[i] = name of capture group i (empty when unnamed), i < n */
            size_t n;         /* capture groups + 1 (index 0 is the whole match, unnamed) */
        } regexp;             /* REGEXP: at least one named group, names valid and unique */
        struct {
            st_str_t text;                     /* decoded pattern string */
            st_logql_pattern_t pattern;        /* at least one named capture, no adjacent captures */
        } pattern;                             /* PATTERN */
        st_logql_label_filter_t *label_filter; /* LABEL_FILTER */
        st_str_t line_format;                  /* LINE_FORMAT: Go text/template source */
        struct {
            st_logql_label_fmt_t *v;
            size_t n;
        } label_format; /* LABEL_FORMAT: destinations are unique within one stage */
        struct {
            st_logql_named_t *v;
            size_t n;
        } names; /* DROP, KEEP */
    };
} st_logql_stage_t;

/* Stages in query order (UNPACK and DECOLORIZE have no payload). */
typedef struct {
    st_logql_stage_t *v;
    size_t n;
} st_logql_pipeline_t;

/* ---- Metric expressions -------------------------------------------------------------------- */

typedef enum {
    ST_LOGQL_CONV_NONE,             /* | unwrap x             (float parse) */
    ST_LOGQL_CONV_BYTES,            /* | unwrap bytes(x)      (humanized bytes) */
    ST_LOGQL_CONV_DURATION,         /* | unwrap duration(x)   (Go duration, seconds) */
    ST_LOGQL_CONV_DURATION_SECONDS, /* | unwrap duration_seconds(x) */
} st_logql_conv_t;

typedef struct {
    st_logql_conv_t conv;
    st_str_t label;
    st_logql_label_filter_t **post; /* label filters after the unwrap: `| unwrap x | __error__=""` */
    size_t n_post;
} st_logql_unwrap_t;

/* selector + pipeline + [range] + offset + optional unwrap, in any of the orders Loki accepts. */
typedef struct {
    st_logql_selector_t selector;
    st_logql_pipeline_t pipeline;
    int64_t range_ns;
    int64_t offset_ns;         /* 0 when absent; may be negative (offset -5m) */
    st_logql_unwrap_t *unwrap; /* NULL when absent */
} st_logql_log_range_t;

typedef enum {
    ST_LOGQL_RANGE_COUNT_OVER_TIME,
    ST_LOGQL_RANGE_RATE,
    ST_LOGQL_RANGE_RATE_COUNTER,
    ST_LOGQL_RANGE_BYTES_OVER_TIME,
    ST_LOGQL_RANGE_BYTES_RATE,
    ST_LOGQL_RANGE_AVG_OVER_TIME,
    ST_LOGQL_RANGE_SUM_OVER_TIME,
    ST_LOGQL_RANGE_MIN_OVER_TIME,
    ST_LOGQL_RANGE_MAX_OVER_TIME,
    ST_LOGQL_RANGE_STDVAR_OVER_TIME,
    ST_LOGQL_RANGE_STDDEV_OVER_TIME,
    ST_LOGQL_RANGE_QUANTILE_OVER_TIME,
    ST_LOGQL_RANGE_FIRST_OVER_TIME,
    ST_LOGQL_RANGE_LAST_OVER_TIME,
    ST_LOGQL_RANGE_ABSENT_OVER_TIME,
} st_logql_range_op_t;

typedef enum {
    ST_LOGQL_VEC_SUM,
    ST_LOGQL_VEC_AVG,
    ST_LOGQL_VEC_COUNT,
    ST_LOGQL_VEC_MAX,
    ST_LOGQL_VEC_MIN,
    ST_LOGQL_VEC_STDDEV,
    ST_LOGQL_VEC_STDVAR,
    ST_LOGQL_VEC_TOPK,
    ST_LOGQL_VEC_BOTTOMK,
    ST_LOGQL_VEC_SORT,
    ST_LOGQL_VEC_SORT_DESC,
    ST_LOGQL_VEC_APPROX_TOPK,
} st_logql_vec_op_t;

/* by (a, b) / without (a). present == false: no clause was written (for vector aggregations that
 * means the same as "by ()": aggregate everything into one series). */
typedef struct {
    bool present;
    bool without;
    st_str_t *labels;
    size_t n;
} st_logql_grouping_t;

typedef enum {
    ST_LOGQL_BIN_OR,
    ST_LOGQL_BIN_AND,
    ST_LOGQL_BIN_UNLESS,
    ST_LOGQL_BIN_EQ, /* == */
    ST_LOGQL_BIN_NEQ,
    ST_LOGQL_BIN_GT,
    ST_LOGQL_BIN_GTE,
    ST_LOGQL_BIN_LT,
    ST_LOGQL_BIN_LTE,
    ST_LOGQL_BIN_ADD,
    ST_LOGQL_BIN_SUB,
    ST_LOGQL_BIN_MUL,
    ST_LOGQL_BIN_DIV,
    ST_LOGQL_BIN_MOD,
    ST_LOGQL_BIN_POW,
} st_logql_binop_t;

typedef enum {
    ST_LOGQL_CARD_ONE_TO_ONE,
    ST_LOGQL_CARD_MANY_TO_ONE, /* group_left */
    ST_LOGQL_CARD_ONE_TO_MANY, /* group_right */
} st_logql_card_t;

typedef enum {
    ST_LOGQL_EXPR_LOG,           /* selector + pipeline (a log query) */
    ST_LOGQL_EXPR_RANGE_AGG,     /* rate({...}[5m]) ... */
    ST_LOGQL_EXPR_VECTOR_AGG,    /* sum by (a) (...) ... */
    ST_LOGQL_EXPR_BINOP,         /* a + b, a or b, ... */
    ST_LOGQL_EXPR_LITERAL,       /* 1.5 (literal op literal is folded into one literal) */
    ST_LOGQL_EXPR_VECTOR,        /* vector(1) */
    ST_LOGQL_EXPR_LABEL_REPLACE, /* label_replace(expr, dst, replacement, src, regex) */
} st_logql_expr_kind_t;

/* Parenthesised expressions are collapsed: there is no PAREN node. */
struct st_logql_expr {
    st_logql_expr_kind_t kind;
    union {
        struct {
            st_logql_selector_t selector;
            st_logql_pipeline_t pipeline; /* n == 0 for a bare selector */
        } log;
        struct {
            st_logql_range_op_t op;
            bool has_param; /* only quantile_over_time, which requires it */
            double param;
            st_logql_log_range_t range;
            st_logql_grouping_t grouping; /* allowed for avg/min/max/stddev/stdvar/quantile/first/last */
        } range_agg;
        struct {
            st_logql_vec_op_t op;
            bool has_param; /* topk, bottomk, approx_topk: required, integer > 0 */
            int64_t param;
            st_logql_grouping_t grouping;
            st_logql_expr_t *inner;
        } vec_agg;
        struct {
            st_logql_binop_t op;
            bool return_bool;   /* "bool" modifier */
            bool on;            /* on(...) was written (else ignoring(...) or nothing) */
            bool has_matching;  /* on(...) or ignoring(...) was written, even with no labels */
            st_str_t *matching; /* labels of on/ignoring */
            size_t n_matching;
            st_logql_card_t card;
            st_str_t *include; /* labels of group_left(...)/group_right(...) */
            size_t n_include;
            st_logql_expr_t *lhs, *rhs;
        } binop;
        double literal; /* LITERAL */
        double vector;  /* VECTOR */
        struct {
            st_logql_expr_t *inner;
            st_str_t dst, replacement, src, regex;
            pcre2_code *re; /* "^(?:regex)$", JIT */
        } label_replace;
    };
};

/* ---- API ----------------------------------------------------------------------------------- */

/* A parse error as Loki reports it. line/col are 1-based and copy Loki's quirks: a token that the
 * lexer finished with look-ahead (two-character operators, durations, ranges, flags) reports
 * line 0 with its column, and errors found after parsing (checks, bad regexes) carry no position
 * at all (line == col == 0). */
typedef struct {
    int line;
    int col;
    char msg[512]; /* the message without the "parse error ..." prefix */
} st_logql_error_t;

/* Parses q[0..n) (n < ST_LOGQL_MAX_INPUT) and applies Loki's post-parse checks. On success *out gets
 * a tree that the caller frees with st_logql_free. Returns 0, ST_EPARSE (err gets Loki's full text,
 * e.g. "parse error at line 1, col 7: syntax error: unexpected IDENTIFIER, expecting STRING"; err may
 * be NULL, errsz bytes including the NUL) or -ENOMEM. *out is untouched on failure. */
int st_logql_parse(const char *q, size_t n, st_logql_expr_t **out, char *err, size_t errsz);

/* Same as st_logql_parse, with the error split into position and message (e may be NULL). */
int st_logql_parse_ex(const char *q, size_t n, st_logql_expr_t **out, st_logql_error_t *e);

/* Writes Loki's full text for e into buf: "parse error at line L, col C: msg", or
 * "parse error : msg" when line and col are 0. Returns the length snprintf would produce. */
int st_logql_error_text(const st_logql_error_t *e, char *buf, size_t bufsz);

/* Frees a tree returned by st_logql_parse (only roots; NULL is allowed). */
void st_logql_free(st_logql_expr_t *e);

/* True for log (stream) queries, false for metric queries. */
bool st_logql_is_log_query(const st_logql_expr_t *e);

/* Called once per selector in the tree, left to right. range is NULL for the selector of a log
 * query (then pipeline is the query's pipeline), else the log range of a range aggregation
 * (selector/pipeline are &range->selector/&range->pipeline). A nonzero return stops the walk and is
 * returned by st_logql_walk_selectors. */
typedef int (*st_logql_selector_cb)(const st_logql_selector_t *selector, const st_logql_pipeline_t *pipeline,
                                    const st_logql_log_range_t *range, void *arg);
int st_logql_walk_selectors(const st_logql_expr_t *e, st_logql_selector_cb cb, void *arg);

/* Appends Loki's canonical single-line String() form, e.g.
 * `{app="foo", env=~"p.*"} |= "x" or "y" | json | level="error"`, `(sum by (a)(rate({a="b"}[5m])) / 2)`.
 * Where Loki's text would not parse back, Strata prints a form that does: label names unquoted,
 * -0 as 0, byte sizes whose humanized form is lossy or reads differently ("0B", "1000kB", "EB") as
 * exact "<n>B"/"0.0B". NaN and Inf literals print as Loki prints them ("NaN", "+Inf"), which LogQL
 * cannot read. Returns 0 or -ENOMEM (out unchanged on failure). */
int st_logql_format(const st_logql_expr_t *e, st_buf_t *out);

/* Appends the multi-line form of Loki's prettier (/format_query): nodes whose one-line text exceeds
 * 100 characters are split, two-space indentation, one pipeline stage per line. Unlike Loki it keeps
 * "or" alternatives of split line filters, empty "without ()" / range "by ()" groupings and the
 * parentheses of a split operand that is itself a binary operation, so the output always parses
 * back to the same query. Returns 0 or -ENOMEM. */
int st_logql_format_pretty(const st_logql_expr_t *e, st_buf_t *out);

/* Pieces of the canonical form, for callers that print parts of a query. */
int st_logql_format_selector(const st_logql_selector_t *s, st_buf_t *out);
int st_logql_format_pipeline(const st_logql_pipeline_t *p, st_buf_t *out); /* "| json | a="b"" */
int st_logql_format_label_filter(const st_logql_label_filter_t *f, st_buf_t *out);

/* Operator names as LogQL spells them ("count_over_time", "topk", "+", "group_left" ...). */
const char *st_logql_range_op_name(st_logql_range_op_t op);
const char *st_logql_vec_op_name(st_logql_vec_op_t op);
const char *st_logql_binop_name(st_logql_binop_t op);
const char *st_logql_line_op_name(st_logql_line_op_t op); /* "|=", "!=", "|~", "!~", "|>", "!>" */
const char *st_logql_cmp_name(st_logql_cmp_t op);         /* "==", "!=", ">", ">=", "<", "<=" */

/* Parses a Go/Loki duration as the LogQL lexer does (Prometheus units first, then Go units such as
 * 1.5h, 300us). Returns 0 or ST_EPARSE. */
int st_logql_parse_duration(st_str_t s, int64_t *out_ns);
/* Parses a go-humanize byte size ("20MB", "1.5 KiB", "42"). Returns 0 or ST_EPARSE. */
int st_logql_parse_bytes(st_str_t s, uint64_t *out);

#endif
