/* labels.h: label sets (a stream's identity) and the Prometheus label-string syntax.
 *
 * A st_labels_t is an owned, name-sorted array of (name, value) pairs with unique names and no empty
 * values. Its canonical text is Prometheus' Labels.String(): {a="b", c="d"} with Go-quoted values;
 * that text plus the tenant is what identifies a stream. */
#ifndef ST_COMMON_LABELS_H
#define ST_COMMON_LABELS_H

#include "common/buf.h"

#include <stdbool.h>

typedef struct {
    st_str_t name;
    st_str_t value;
} st_label_t;

typedef struct {
    st_label_t *v; /* owned array; names/values point into arena, or after v[n-1] in v's allocation */
    size_t n;
    char *arena;   /* owned; NULL when the strings share v's allocation (st_labels_parse and friends) */
} st_labels_t;

#define ST_LABELS_INIT ((st_labels_t){NULL, 0, NULL})

void st_labels_free(st_labels_t *l);

/* Parses "{name="value", ...}" (Go escapes in values; whitespace allowed). Empty values are dropped,
 * the result is sorted. Returns 0, ST_EPARSE (message in err, which must hold 256 bytes) or -ENOMEM.
 * Duplicate names are kept adjacent so the caller can report them (st_labels_first_dup). */
int st_labels_parse(st_str_t s, st_labels_t *out, char *err);
/* Builds a sorted set from pairs (copied). Empty values are dropped. */
int st_labels_from_pairs(const st_label_t *pairs, size_t n, st_labels_t *out);
int st_labels_copy(const st_labels_t *src, st_labels_t *out);
/* Returns the index of the first name that repeats, or -1. */
int st_labels_first_dup(const st_labels_t *l);
/* Finds a label value by name; returns false if absent. */
bool st_labels_get(const st_labels_t *l, st_str_t name, st_str_t *value);
/* Appends the canonical text {a="b", c="d"} ("{}" when empty). */
int st_labels_format(const st_labels_t *l, st_buf_t *out);
/* Appends s quoted with Go's strconv.Quote rules. */
int st_go_quote(st_buf_t *out, st_str_t s);
/* Decodes a Go double-quoted or backquoted string literal at s (including the quotes).
 * *used gets the bytes consumed. Returns 0 or ST_EPARSE. */
int st_go_unquote(st_str_t s, st_buf_t *out, size_t *used);
/* [a-zA-Z_][a-zA-Z0-9_]* */
bool st_label_name_valid(st_str_t name);

/* A label matcher as in a LogQL/Prometheus selector. Regex matchers carry a full-match test supplied
 * by the caller (the query layer owns the regex engine); re is passed back to it. */
typedef enum { ST_MATCH_EQ, ST_MATCH_NEQ, ST_MATCH_RE, ST_MATCH_NRE } st_match_type_t;

typedef struct {
    st_match_type_t type;
    st_str_t name;
    st_str_t value;
    bool (*re_match)(const void *re, st_str_t s); /* RE/NRE only: true if re matches all of s */
    const void *re;
} st_matcher_t;

/* Applies one matcher to a value (an absent label is the empty string). */
bool st_matcher_matches(const st_matcher_t *m, st_str_t value);
/* True if every matcher accepts the corresponding label of l. */
bool st_matchers_match(const st_matcher_t *m, size_t n, const st_labels_t *l);

#endif
