/* deletes.c: delete requests applied at query time. A request (the lifecycle's "delete/<tenant>/..."
 * index record, lifecycle/erase.c) hides its lines from every query from the moment it is received
 * until the lifecycle run has removed them from storage ("processed"). A selection loads the tenant's
 * pending requests that overlap its range, notes which streams each one selects, filters in-memory
 * entries at once and chunk blocks as they are decoded. */
#include "querier/querier_int.h"

#include "common/err.h"
#include "common/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct qdel_req {
    st_delexpr_t *d;
    int64_t start, end;
    pthread_mutex_t mu; /* line filters keep scratch state; blocks are filtered on pool threads */
};

static int parse_record(st_str_t v, char **query, int64_t *start, int64_t *end, bool *pending)
{
    st_json_t j;
    st_json_init(&j, v.p, v.n);
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    st_str_t k, val;
    *query = NULL;
    *pending = false;
    while (rc == 0 && (rc = st_json_next_key(&j, &k, &s1)) == 1) {
        rc = 0;
        st_json_type_t t = st_json_peek(&j);
        if (t == ST_JSON_STRING && (st_str_eqc(k, "query") || st_str_eqc(k, "status"))) {
            if ((rc = st_json_string(&j, &val, &s2)) < 0) break;
            if (st_str_eqc(k, "query")) {
                free(*query);
                if ((*query = st_str_dup(val)) == NULL) rc = -ENOMEM;
            } else {
                *pending = st_str_eqc(val, "received") || st_str_eqc(val, "processing");
            }
        } else if (t == ST_JSON_NUMBER && (st_str_eqc(k, "start") || st_str_eqc(k, "end"))) {
            if ((rc = st_json_number(&j, &val)) < 0) break;
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(val.n < 31 ? val.n : 31), val.p);
            *(st_str_eqc(k, "start") ? start : end) = strtoll(tmp, NULL, 10);
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&s1);
    st_buf_free(&s2);
    if (rc < 0 || *query == NULL) {
        free(*query);
        *query = NULL;
        return rc < 0 ? rc : ST_ECORRUPT;
    }
    return 0;
}

typedef struct {
    qdel_t *out;
    int64_t from, through;
    int rc;
} load_t;

static int load_cb(void *arg, st_str_t key, st_str_t value)
{
    (void)key;
    load_t *l = arg;
    char *query;
    int64_t start = 0, end = 0;
    bool pending;
    if (parse_record(value, &query, &start, &end, &pending) < 0) return 0; /* unreadable: skip */
    if (!pending || end < l->from || start > l->through) {
        free(query);
        return 0;
    }
    st_delexpr_t *d;
    char err[128];
    int rc = st_delexpr_parse(st_cstr(query), &d, err, sizeof err);
    free(query);
    if (rc == -ENOMEM) return rc;
    if (rc < 0) return 0;
    qdel_t *o = l->out;
    struct qdel_req **v = realloc(o->v, (o->n + 1) * sizeof *v);
    struct qdel_req *r = calloc(1, sizeof *r);
    if (v == NULL || r == NULL) {
        if (v) o->v = v;
        free(r);
        st_delexpr_free(d);
        return -ENOMEM;
    }
    o->v = v;
    r->d = d;
    r->start = start;
    r->end = end;
    pthread_mutex_init(&r->mu, NULL);
    o->v[o->n++] = r;
    return 0;
}

int st_qdel_load(st_index_read_t *rd, const char *tenant, int64_t from, int64_t through, qdel_t *out)
{
    memset(out, 0, sizeof *out);
    char prefix[200];
    snprintf(prefix, sizeof prefix, "delete/%s/", tenant);
    load_t l = {out, from, through, 0};
    int rc = st_index_state_scan(rd, st_cstr(prefix), load_cb, &l);
    if (rc < 0) st_qdel_free(out);
    return rc;
}

void st_qdel_free(qdel_t *d)
{
    for (size_t i = 0; i < d->n; i++) {
        st_delexpr_free(d->v[i]->d);
        pthread_mutex_destroy(&d->v[i]->mu);
        free(d->v[i]);
    }
    free(d->v);
    memset(d, 0, sizeof *d);
}

bool st_qdel_selects(const qdel_t *d, size_t i, const st_labels_t *labels)
{
    size_t n;
    const st_matcher_t *m = st_delexpr_matchers(d->v[i]->d, &n);
    return st_matchers_match(m, n, labels);
}

bool st_qdel_hides(const qdel_t *d, const uint32_t *reqs, uint32_t nreqs, int64_t ts, st_str_t line)
{
    for (uint32_t k = 0; k < nreqs; k++) {
        struct qdel_req *r = d->v[reqs[k]];
        if (ts < r->start || ts > r->end) continue;
        if (!st_delexpr_has_filters(r->d)) return true;
        pthread_mutex_lock(&r->mu);
        bool hit = st_delexpr_line(r->d, line);
        pthread_mutex_unlock(&r->mu);
        if (hit) return true;
    }
    return false;
}
