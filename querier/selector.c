/* selector.c: parsing a stream selector into label matchers for callers outside the querier
 * (lifecycle rules, restores), and the queries of delete requests (a selector with line filters),
 * with regexes evaluated by PCRE2 and line filters by the query pipeline, exactly as in queries. */
#include "querier/querier_int.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int st_selector_parse(st_str_t text, st_selector_t **out, char *err, size_t errsz)
{
    st_selector_t *s = calloc(1, sizeof *s);
    if (s == NULL) return -ENOMEM;
    st_logql_expr_t *e = NULL;
    int rc = st_logql_parse(text.p, text.n, &e, err, errsz);
    if (rc < 0) {
        free(s);
        return rc;
    }
    if (!st_logql_is_log_query(e) || e->log.pipeline.n != 0) {
        if (err) snprintf(err, errsz, "expected a stream selector like {app=\"x\"}, without pipeline stages");
        st_logql_free(e);
        free(s);
        return ST_EPARSE;
    }
    s->n = e->log.selector.n;
    s->m = calloc(s->n ? s->n : 1, sizeof *s->m);
    if (s->m == NULL) {
        st_logql_free(e);
        free(s);
        return -ENOMEM;
    }
    st_qmatchers(&e->log.selector, s->m);
    s->expr = e;
    *out = s;
    return 0;
}

void st_selector_free(st_selector_t *s)
{
    if (s == NULL) return;
    st_logql_free(s->expr);
    free(s->m);
    free(s);
}

struct st_delexpr {
    st_logql_expr_t *expr; /* owned; NULL in a clone (shares the original's) */
    const st_logql_expr_t *src;
    st_matcher_t *m;
    size_t n;
    st_pipeline_t *pl; /* NULL without line filters */
};

int st_delexpr_parse(st_str_t text, st_delexpr_t **out, char *err, size_t errsz)
{
    st_logql_expr_t *e = NULL;
    char perr[512];
    int rc = st_logql_parse(text.p, text.n, &e, perr, sizeof perr);
    if (rc == -ENOMEM) return rc;
    bool ok = rc == 0 && st_logql_is_log_query(e);
    for (size_t i = 0; ok && i < e->log.pipeline.n; i++)
        ok = e->log.pipeline.v[i].kind == ST_LOGQL_STAGE_LINE_FILTER;
    if (!ok) {
        if (err) snprintf(err, errsz, "invalid query expression");
        st_logql_free(e);
        return ST_EPARSE;
    }
    st_delexpr_t *d = calloc(1, sizeof *d);
    if (d == NULL) {
        st_logql_free(e);
        return -ENOMEM;
    }
    d->expr = e;
    d->src = e;
    d->n = e->log.selector.n;
    d->m = calloc(d->n ? d->n : 1, sizeof *d->m);
    if (d->m == NULL) {
        st_delexpr_free(d);
        return -ENOMEM;
    }
    st_qmatchers(&e->log.selector, d->m);
    if (e->log.pipeline.n) {
        char pe[256];
        if ((rc = st_pipeline_compile(&e->log.pipeline, NULL, &d->pl, pe)) < 0) {
            if (err) snprintf(err, errsz, "invalid query expression");
            st_delexpr_free(d);
            return rc == -ENOMEM ? rc : ST_EPARSE;
        }
    }
    *out = d;
    return 0;
}

int st_delexpr_clone(const st_delexpr_t *d, st_delexpr_t **out)
{
    st_delexpr_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->src = d->src;
    c->n = d->n;
    c->m = calloc(d->n ? d->n : 1, sizeof *c->m);
    int rc = c->m ? 0 : -ENOMEM;
    if (rc == 0) memcpy(c->m, d->m, d->n * sizeof *c->m);
    if (rc == 0 && d->pl) rc = st_pipeline_clone(d->pl, &c->pl);
    if (rc < 0) {
        st_delexpr_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void st_delexpr_free(st_delexpr_t *d)
{
    if (d == NULL) return;
    st_pipeline_free(d->pl);
    free(d->m);
    st_logql_free(d->expr);
    free(d);
}

const st_matcher_t *st_delexpr_matchers(const st_delexpr_t *d, size_t *n)
{
    *n = d->n;
    return d->m;
}

bool st_delexpr_has_filters(const st_delexpr_t *d)
{
    return d->pl != NULL;
}

bool st_delexpr_line(st_delexpr_t *d, st_str_t line)
{
    return d->pl == NULL || st_pipeline_keep_line(d->pl, line);
}
