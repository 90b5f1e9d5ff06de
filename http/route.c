/* route.c: the router of the http module: pattern validation, matching of exact patterns and
 * patterns with one '*' segment against a decoded path, the 404/405 decision, and the per-route
 * metric handles (created lazily per label set). It does not parse or send anything. */
#include "http/http_int.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Escapes a label value for the exposition format (backslash, quote, newline). */
static char *label_escape(const char *s)
{
    st_buf_t b = ST_BUF_INIT;
    for (; *s; s++) {
        int rc = 0;
        if (*s == '\\' || *s == '"') {
            rc = st_buf_putc(&b, '\\');
            if (rc == 0) rc = st_buf_putc(&b, *s);
        } else if (*s == '\n') {
            rc = st_buf_puts(&b, "\\n");
        } else {
            rc = st_buf_putc(&b, *s);
        }
        if (rc < 0) {
            st_buf_free(&b);
            return NULL;
        }
    }
    if (st_buf_cstr(&b) == NULL) return NULL;
    return b.data;
}

/* A pattern is "/" followed by segments; '*' may only be a whole segment, at most once. */
static bool pattern_valid(const char *p)
{
    if (p == NULL || p[0] != '/') return false;
    int stars = 0;
    for (size_t i = 0; p[i]; i++) {
        if (p[i] != '*') continue;
        if (p[i - 1] != '/' || (p[i + 1] != '/' && p[i + 1] != '\0')) return false;
        stars++;
    }
    return stars <= 1;
}

int st__http_route_init(st__http_route_t *rt, unsigned methods, const char *pattern, st_http_handler_fn fn,
                        void *arg)
{
    memset(rt, 0, sizeof *rt);
    rt->methods = methods;
    rt->fn = fn;
    rt->arg = arg;
    rt->pattern = strdup(pattern);
    rt->label = label_escape(pattern);
    if (rt->pattern == NULL || rt->label == NULL) {
        st__http_route_dispose(rt);
        return -ENOMEM;
    }
    rt->npattern = strlen(pattern);
    char labels[512];
    snprintf(labels, sizeof labels, "route=\"%.400s\"", rt->label);
    rt->duration = st_histogram("strata_http_request_duration_seconds",
                                "Time from the first byte of an HTTP request to its response being queued.",
                                labels, st_latency_buckets, st_latency_nbuckets);
    return 0;
}

void st__http_route_dispose(st__http_route_t *rt)
{
    free(rt->pattern);
    free(rt->label);
    free(rt->ctr);
    memset(rt, 0, sizeof *rt);
}

int st_http_route(st_http_server_t *s, unsigned methods, const char *pattern, st_http_handler_fn fn,
                  void *arg)
{
    if (s == NULL || fn == NULL || methods == 0 || !pattern_valid(pattern)) return -EINVAL;
    if (s->nroutes == s->caproutes) {
        size_t cap = s->caproutes ? s->caproutes * 2 : 16;
        st__http_route_t **r = realloc(s->routes, cap * sizeof *r);
        if (r == NULL) return -ENOMEM;
        s->routes = r;
        s->caproutes = cap;
    }
    st__http_route_t *rt = malloc(sizeof *rt);
    if (rt == NULL) return -ENOMEM;
    int rc = st__http_route_init(rt, methods, pattern, fn, arg);
    if (rc < 0) {
        free(rt);
        return rc;
    }
    s->routes[s->nroutes++] = rt;
    return 0;
}

/* Matches path against pattern; on success reports the '*' segment (offsets into path). */
static bool match(const st__http_route_t *rt, st_str_t path, size_t *param_off, size_t *param_len,
                  bool *has_param)
{
    const char *pat = rt->pattern;
    size_t pn = rt->npattern, i = 0, j = 0;
    *has_param = false;
    while (i < pn) {
        if (pat[i] == '*') { /* validated: a whole segment */
            size_t k = j;
            while (k < path.n && path.p[k] != '/') k++;
            if (k == j) return false;
            *param_off = j;
            *param_len = k - j;
            *has_param = true;
            j = k;
            i++;
            continue;
        }
        if (j >= path.n || path.p[j] != pat[i]) return false;
        i++;
        j++;
    }
    return j == path.n;
}

st__http_route_t *st__http_route_find(st_http_server_t *s, st_str_t path, st_http_method_t method,
                                      size_t *param_off, size_t *param_len, bool *has_param,
                                      unsigned *allowed, st__http_route_t **path_match)
{
    *allowed = 0;
    *path_match = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        st__http_route_t *rt = s->routes[i];
        size_t off = 0, len = 0;
        bool hp = false;
        if (!match(rt, path, &off, &len, &hp)) continue;
        if (rt->methods & (unsigned)method) {
            *param_off = off;
            *param_len = len;
            *has_param = hp;
            return rt;
        }
        *allowed |= rt->methods;
        if (*path_match == NULL) *path_match = rt;
    }
    return NULL;
}

st_metric_t *st__http_route_counter(st__http_route_t *rt, unsigned pmethod, int code)
{
    for (size_t i = 0; i < rt->nctr; i++)
        if (rt->ctr[i].method == pmethod && rt->ctr[i].code == code) return rt->ctr[i].m;
    char labels[600];
    const char *mname =
        pmethod == ST__HTTP_METHOD_UNKNOWN ? "unknown" : http_method_str((enum http_method)pmethod);
    snprintf(labels, sizeof labels, "route=\"%.400s\",method=\"%s\",code=\"%d\"", rt->label, mname, code);
    st_metric_t *m =
        st_counter("strata_http_requests_total", "HTTP requests by route, method and status code.", labels);
    if (rt->nctr == rt->capctr) {
        size_t cap = rt->capctr ? rt->capctr * 2 : 8;
        st__http_counter_t *c = realloc(rt->ctr, cap * sizeof *c);
        if (c == NULL) return m; /* still counted, just not cached */
        rt->ctr = c;
        rt->capctr = cap;
    }
    rt->ctr[rt->nctr++] = (st__http_counter_t){pmethod, code, m};
    return m;
}

st_str_t st_http_path_param(const st_http_req_t *r)
{
    const st__http_req_t *ri = (const st__http_req_t *)r;
    if (!ri->has_param) return st_str("", 0);
    return st_str(ri->path.data + ri->param_off, ri->param_len);
}
