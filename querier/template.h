/* template.h: Go text/template as LogQL's line_format and label_format use it (missingkey=zero,
 * Loki's function map). Supports text, comments and trim markers, actions with fields, variables,
 * literals, function calls, parenthesised pipelines and pipes, if/else if/else, with, range (over
 * the label map or an integer, with break/continue), and the built-ins and/or/not/eq/ne/lt/le/gt/ge/
 * len/index/print/printf/println. Errors carry Go's texts ("template: line:1:2: executing \"line\" at
 * <.foo>: ..."). A parsed template is used by one thread at a time; execution reuses its buffers. */
#ifndef ST_QUERIER_TEMPLATE_H
#define ST_QUERIER_TEMPLATE_H

#include "common/buf.h"
#include "common/labels.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct st_tmpl st_tmpl_t;

/* Parses src. name is the template's name in messages ("line", "label"). Returns 0, ST_EPARSE with
 * Go's message in err ("template: line:1: function \"foo\" not defined"; errsz bytes) or -ENOMEM. */
int st_tmpl_parse(const char *name, st_str_t src, st_tmpl_t **out, char *err, size_t errsz);
void st_tmpl_free(st_tmpl_t *t); /* NULL-safe */

/* True when the whole template is a single {{.name}} action (Loki copies the label instead). */
bool st_tmpl_simple_field(const st_tmpl_t *t, st_str_t *name);

typedef struct {
    const st_label_t *labels; /* the dot: a map[string]string of unique names, any order */
    size_t n;
    st_str_t line; /* {{ __line__ }} */
    int64_t ts;    /* {{ __timestamp__ }}, Unix ns */
} st_tmpl_data_t;

/* Executes t and appends the output to out. Returns 0, ST_EPARSE when execution failed (then *errmsg
 * holds Go's message, valid until the next call; out holds partial output) or -ENOMEM. */
int st_tmpl_exec(st_tmpl_t *t, const st_tmpl_data_t *d, st_buf_t *out, st_str_t *errmsg);

#endif
