/* json.h: a strict pull parser for JSON input and an escaping writer for JSON output.
 *
 * The parser walks a borrowed byte range without building a tree: the caller asks for the value it
 * expects (object, array, string, number) and skips the rest. Strings come back as views into the
 * input when they hold no escapes, else decoded into a caller-supplied scratch buffer (views are valid
 * until the next call that uses the same scratch). Errors are sticky: after the first one every call
 * returns ST_EPARSE and st_json_error() says what and where. Nesting depth is limited. */
#ifndef ST_COMMON_JSON_H
#define ST_COMMON_JSON_H

#include "common/buf.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum {
    ST_JSON_ERROR = 0,
    ST_JSON_OBJECT,
    ST_JSON_ARRAY,
    ST_JSON_STRING,
    ST_JSON_NUMBER,
    ST_JSON_TRUE,
    ST_JSON_FALSE,
    ST_JSON_NULL,
    ST_JSON_END /* end of input */
} st_json_type_t;

#define ST_JSON_MAX_DEPTH 128

typedef struct {
    const char *start;
    const char *p;
    const char *end;
    int depth;
    bool first[ST_JSON_MAX_DEPTH + 1]; /* first member/element pending at this depth */
    const char *err;                   /* static message, NULL while OK */
    size_t err_off;
} st_json_t;

void st_json_init(st_json_t *j, const char *p, size_t n);
/* Type of the next value without consuming it (skips whitespace). */
st_json_type_t st_json_peek(st_json_t *j);
/* Consumes '{'. Then loop: rc = st_json_next_key(j, &key, &scratch); 1 = key read (value follows),
 * 0 = '}' consumed, <0 error. */
int st_json_object_begin(st_json_t *j);
int st_json_next_key(st_json_t *j, st_str_t *key, st_buf_t *scratch);
/* Consumes '['. Then loop: rc = st_json_next_elem(j); 1 = an element follows, 0 = ']' consumed. */
int st_json_array_begin(st_json_t *j);
int st_json_next_elem(st_json_t *j);
/* Reads a string value. Escapes are decoded into scratch (reset first); *out views input or scratch. */
int st_json_string(st_json_t *j, st_str_t *out, st_buf_t *scratch);
/* Reads a number; *out views its text. */
int st_json_number(st_json_t *j, st_str_t *out);
/* Reads true/false/null; *out gets the literal's type. */
int st_json_literal(st_json_t *j, st_json_type_t *out);
/* Skips one value of any type; *raw (optional) views its exact text. */
int st_json_skip(st_json_t *j, st_str_t *raw);
/* After the top-level value: 0 if only whitespace remains, else ST_EPARSE. */
int st_json_finish(st_json_t *j);
/* Sets the sticky error (first one wins) and returns ST_EPARSE. */
int st_json_fail(st_json_t *j, const char *msg);
const char *st_json_error(const st_json_t *j, size_t *offset);

/* Writer: appends a quoted, escaped JSON string. Invalid UTF-8 becomes U+FFFD, as Go does. */
int st_json_put_str(st_buf_t *b, st_str_t s);
static inline int st_json_put_cstr(st_buf_t *b, const char *s) { return st_json_put_str(b, st_cstr(s)); }
/* Appends a number the way Go's strconv.FormatFloat(v, 'f'|'e', -1, 64) / Prometheus does:
 * shortest round-trip representation, "NaN", "+Inf", "-Inf". */
int st_json_put_float_str(st_buf_t *b, double v);
/* True if s is valid UTF-8. */
bool st_utf8_valid(st_str_t s);

#endif
