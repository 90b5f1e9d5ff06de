/* logql_int.h: internals shared by the LogQL lexer, parser, checks and formatter.
 *
 * Not part of the public API: the arena, the token set (ordered like Loki's yacc declarations so
 * "expecting" lists come out in Loki's order), the scanner state and the value helpers. */
#ifndef ST_QUERIER_LOGQL_LOGQL_INT_H
#define ST_QUERIER_LOGQL_LOGQL_INT_H

#include "querier/logql/logql.h"

#include <setjmp.h>
#include <stdarg.h>

/* ---- Arena: every AST byte of one query; pcre2 codes are registered for freeing. ---------- */

typedef struct lq_block lq_block_t;
typedef struct {
    lq_block_t *head;
    pcre2_code **codes; /* owned (malloc) */
    size_t ncodes, capcodes;
} lq_arena_t;

void lq_arena_init(lq_arena_t *a);
void lq_arena_release(lq_arena_t *a);
void *lq_alloc(lq_arena_t *a, size_t n);                 /* zeroed, 16-aligned; NULL on OOM */
char *lq_strdup(lq_arena_t *a, const char *p, size_t n); /* NUL-terminated copy */
int lq_arena_own_code(lq_arena_t *a, pcre2_code *c);

/* ---- Tokens, in the declaration order of Loki's grammar (token numbers drive messages). ---- */

enum {
    T_EOF = 0,
    T_BYTES,
    T_IDENTIFIER,
    T_STRING,
    T_NUMBER,
    T_FUNCTION_FLAG,
    T_DURATION,
    T_RANGE,
    T_MATCHERS,
    T_LABELS,
    T_EQ,
    T_RE,
    T_NRE,
    T_NPA,
    T_OPEN_BRACE,
    T_CLOSE_BRACE,
    T_OPEN_BRACKET,
    T_CLOSE_BRACKET,
    T_COMMA,
    T_DOT,
    T_PIPE_MATCH,
    T_PIPE_EXACT,
    T_PIPE_PATTERN,
    T_OPEN_PAREN,
    T_CLOSE_PAREN,
    T_BY,
    T_WITHOUT,
    T_COUNT_OVER_TIME,
    T_RATE,
    T_RATE_COUNTER,
    T_SUM,
    T_SORT,
    T_SORT_DESC,
    T_AVG,
    T_MAX,
    T_MIN,
    T_COUNT,
    T_STDDEV,
    T_STDVAR,
    T_BOTTOMK,
    T_TOPK,
    T_APPROX_TOPK,
    T_BYTES_OVER_TIME,
    T_BYTES_RATE,
    T_BOOL,
    T_JSON,
    T_REGEXP,
    T_LOGFMT,
    T_PIPE,
    T_LINE_FMT,
    T_LABEL_FMT,
    T_UNWRAP,
    T_AVG_OVER_TIME,
    T_SUM_OVER_TIME,
    T_MIN_OVER_TIME,
    T_MAX_OVER_TIME,
    T_STDVAR_OVER_TIME,
    T_STDDEV_OVER_TIME,
    T_QUANTILE_OVER_TIME,
    T_BYTES_CONV,
    T_DURATION_CONV,
    T_DURATION_SECONDS_CONV,
    T_FIRST_OVER_TIME,
    T_LAST_OVER_TIME,
    T_ABSENT_OVER_TIME,
    T_VECTOR,
    T_LABEL_REPLACE,
    T_UNPACK,
    T_OFFSET,
    T_PATTERN,
    T_IP,
    T_ON,
    T_IGNORING,
    T_GROUP_LEFT,
    T_GROUP_RIGHT,
    T_DECOLORIZE,
    T_DROP,
    T_KEEP,
    T_OR,
    T_AND,
    T_UNLESS,
    T_CMP_EQ,
    T_NEQ,
    T_LT,
    T_LTE,
    T_GT,
    T_GTE,
    T_ADD,
    T_SUB,
    T_MUL,
    T_DIV,
    T_MOD,
    T_POW,
    /* Loki turns any unknown character (!, @, 'x', ...) into an IDENTIFIER; such names cannot be
     * printed back as LogQL, so Strata keeps them apart and accepts them nowhere. */
    T_BOGUS_IDENT,
    T_COUNT_ /* number of token kinds */
};

/* The name yacc prints for a token ("$end", "IDENTIFIER", "|=", "by" ...). */
const char *lq_token_name(int t);

typedef struct {
    int type;
    int line, col;  /* Loki's error position for this token (line 0 after look-ahead consumption) */
    size_t off;     /* byte offset of the token start */
    st_str_t text;  /* raw text (identifiers, numbers, flags) */
    st_str_t str;   /* STRING: decoded (arena, NUL-terminated) */
    int64_t dur;    /* DURATION, RANGE */
    uint64_t bytes; /* BYTES */
} lq_token_t;

/* ---- Scanner (a faithful model of Loki's copy of Go's text/scanner) ------------------------ */

typedef struct {
    const char *src;
    size_t n;
    size_t pos;       /* next byte to decode */
    int32_t ch;       /* one-rune look-ahead; -2 before the first read */
    int line, column; /* position of the last decoded rune */
    int last_line_len, last_char_len;
    long tok_pos; /* start of the current token text, -1 when none */
    size_t tok_end;
    int tline, tcol; /* Position of the last scanned token (tline 0 = invalidated) */
} lq_scanner_t;

typedef struct lq_error_sink lq_error_sink_t;

typedef struct {
    lq_scanner_t s;
    lq_arena_t *arena;
    size_t bad_off; /* offset of the first invalid UTF-8 byte or NUL, or n */
    bool bad_is_nul;
    /* error reporting: set by the first error, then control leaves through jb */
    st_logql_error_t *err;
    int *rc;
    jmp_buf *jb;
    st_buf_t tmp;
} lq_lexer_t;

void lq_lexer_init(lq_lexer_t *L, const char *q, size_t n, lq_arena_t *arena);
void lq_lexer_dispose(lq_lexer_t *L);
/* Reads the next token. Errors leave through L->jb. */
void lq_lex(lq_lexer_t *L, lq_token_t *t);
/* Records an error at (line, col) and leaves through L->jb. */
_Noreturn void lq_fail_at(lq_lexer_t *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
_Noreturn void lq_fail_oom(lq_lexer_t *L);

/* ---- Value helpers (values.c) -------------------------------------------------------------- */

/* Prometheus model.ParseDuration; on error writes Go's message to msg. */
int lq_parse_prom_duration(st_str_t s, int64_t *out, char *msg, size_t msgsz);
/* Go time.ParseDuration (exact integer arithmetic). */
int lq_parse_go_duration(st_str_t s, int64_t *out);
/* go-humanize ParseBytes. */
int lq_parse_bytes(st_str_t s, uint64_t *out);
/* strconv.ParseFloat(s, 64) and strconv.Atoi with Go's error texts ("strconv.ParseFloat: parsing
 * \"x\": invalid syntax"). */
int lq_parse_float(st_str_t s, double *out, char *msg, size_t msgsz);
int lq_atoi(st_str_t s, int64_t *out);
/* Prometheus' Unquote of a STRING token (double-quoted or backquoted). */
int lq_unquote(st_str_t tok, st_buf_t *out);

/* Formats like Go: %v of a float64, FormatFloat(f, 'f', -1, 64), time.Duration.String(),
 * model.Duration.String(), humanize.Bytes without spaces. Return the length; out holds 64 bytes
 * (400 for 'f' formatting). */
size_t lq_fmt_float_v(double v, char *out);
size_t lq_fmt_float_f(double v, char *out, size_t outsz);
size_t lq_fmt_go_duration(int64_t ns, char *out);
size_t lq_fmt_prom_duration(int64_t ns, char *out);
size_t lq_fmt_bytes(uint64_t b, char *out);

/* ip("...") operand: Go netip.ParseAddr / ParsePrefix / netipx.ParseIPRange. */
int lq_parse_ip(st_str_t s, st_logql_ip_t *out);

/* Pattern syntax (literals and <name> captures). Returns 0 or ST_EPARSE with Loki's message. */
int lq_parse_pattern(lq_arena_t *a, st_str_t s, st_logql_pattern_t *out, char *msg, size_t msgsz);
/* Checks for a line filter pattern: no adjacent captures, only <_>. */
int lq_check_pattern_filter(const st_logql_pattern_t *p, char *msg, size_t msgsz);
/* Checks for the pattern parser: a named capture, no adjacent captures, unique names. */
int lq_check_pattern_parser(const st_logql_pattern_t *p, char *msg, size_t msgsz);

/* json parameter path (a.b[0]["c"]). Returns 0, ST_EPARSE (msg) or -ENOMEM. */
int lq_parse_json_path(lq_arena_t *a, st_str_t s, st_logql_json_step_t **steps, size_t *n, char *msg,
                       size_t msgsz);

/* Go-style quoting (strconv.Quote) into b. */
int lq_quote(st_buf_t *b, st_str_t s);

/* Unicode classes used by Go's scanner. */
bool lq_is_letter(int32_t r);
bool lq_is_digit(int32_t r);
bool lq_is_number(int32_t r);
bool lq_is_space(int32_t r);
/* Decodes one UTF-8 rune like Go's utf8.DecodeRune: invalid -> 0xFFFD with *w = 1. */
int32_t lq_decode_rune(const unsigned char *p, size_t n, int *w);

/* ---- Regexes (regex.c) --------------------------------------------------------------------- */

enum {
    LQ_RE_ANCHORED = 1, /* ^(?:re)$ */
    LQ_RE_DOTALL = 2,   /* Prometheus matchers: (?s) */
};

/* Checks RE2 (Go regexp/syntax, Perl flags) syntax and compiles with PCRE2 (UTF,
 * MATCH_INVALID_UTF, DOLLAR_ENDONLY, JIT). On a bad expression returns ST_EPARSE with Go's message
 * ("error parsing regexp: missing closing ): `(`"). -ENOMEM on OOM. The code is owned by arena. */
int lq_regex_compile(lq_arena_t *a, st_str_t re, int flags, pcre2_code **out, char *msg, size_t msgsz);
/* Same with capture group names by index (names[0] is the whole match; unnamed groups are empty). */
int lq_regex_compile_named(lq_arena_t *a, st_str_t re, pcre2_code **out, st_str_t **names, size_t *n,
                           char *msg, size_t msgsz);
/* True if code matches the empty string. */
bool lq_regex_matches_empty(const pcre2_code *code);

/* ---- Expression wrappers (deferred post-parse errors ride along) -------------------------- */

typedef struct {
    st_logql_expr_t e; /* must stay first */
    const char *err;   /* Loki's node error, reported by the checks (arena) */
    int height;        /* tree height, bounded to keep every recursive walk shallow */
} lq_node_t;

/* Loki has no nesting limit; Strata bounds tree height (so every recursive walk, including the
 * evaluator's, stays shallow) and parser recursion (a formatted tree of height LQ_MAX_DEPTH must
 * parse back: each level costs at most four recursive calls). */
#define LQ_MAX_DEPTH     512
#define LQ_MAX_RECURSION (4 * LQ_MAX_DEPTH)

static inline lq_node_t *lq_node(const st_logql_expr_t *e)
{
    return (lq_node_t *)(void *)e;
}

/* Post-parse checks (check.c). Return 0, ST_EPARSE with e filled (no position) or -ENOMEM.
 * lq_check_stages also compiles what Loki builds with the pipeline (line filter regexes,
 * patterns, ip ranges, json paths). */
int lq_validate(const st_logql_expr_t *root, st_logql_error_t *e);
int lq_check_stages(lq_arena_t *a, st_logql_expr_t *root, st_logql_error_t *e);

/* Canonical text of one stage (format.c), used in "stage '...'" messages. */
int lq_format_stage(const st_logql_stage_t *s, st_buf_t *out);
int lq_format_line_filters(const st_logql_stage_t *const *v, size_t n, st_buf_t *out);

#endif
