/* capture.h: a test seam for the push decoders: linked with -Wl,--wrap=st_push_entry, it records
 * every entry a decoder adds (stream labels, timestamp, line, structured metadata as "n=v;n=v")
 * before passing it on to the real st_push_entry. Include from exactly one test source. */
#ifndef ST_TESTS_INGESTER_CAPTURE_H
#define ST_TESTS_INGESTER_CAPTURE_H

#include "ingester/ingester.h"
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *labels;
    int64_t ts;
    char *line;
    size_t line_n;
    char *md; /* "name=value;name=value" */
} cap_entry_t;

#define CAP_MAX 4096
static cap_entry_t cap[CAP_MAX];
static size_t ncap;

int __real_st_push_entry(st_push_t *p, size_t idx, int64_t ts, st_str_t line, st_str_t md);
int __wrap_st_push_entry(st_push_t *p, size_t idx, int64_t ts, st_str_t line, st_str_t md);

static char *cap_dup(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

int __wrap_st_push_entry(st_push_t *p, size_t idx, int64_t ts, st_str_t line, st_str_t md)
{
    if (ncap < CAP_MAX) {
        cap_entry_t *c = &cap[ncap++];
        st_str_t l = st_push_stream_labels(p, idx);
        c->labels = cap_dup(l.p, l.n);
        c->ts = ts;
        c->line = cap_dup(line.p, line.n);
        c->line_n = line.n;
        st_buf_t b = ST_BUF_INIT;
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t n, v;
        while (md.n && st_md_next(&it, &n, &v) == 1) {
            if (b.len) st_buf_putc(&b, ';');
            st_buf_append(&b, n.p, n.n);
            st_buf_putc(&b, '=');
            st_buf_append(&b, v.p, v.n);
        }
        c->md = cap_dup(b.data ? b.data : "", b.len);
        st_buf_free(&b);
    }
    return __real_st_push_entry(p, idx, ts, line, md);
}

static void cap_reset(void)
{
    for (size_t i = 0; i < ncap; i++) {
        free(cap[i].labels);
        free(cap[i].line);
        free(cap[i].md);
    }
    ncap = 0;
}

#endif
