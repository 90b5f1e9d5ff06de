/* push_json.c: decoding Loki's JSON push bodies (v1 and the legacy /api/prom/push shape) into a push,
 * through the shared validation of validate.c (see ingester.h). */
#include "ingester/ingester.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Replaces the error text with one fatal message (the whole body is rejected). */
static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_buf_reset(&e->text);
    st_buf_puts(&e->text, msg);
    return rc;
}

/* ---- decoding ---------------------------------------------------------------------------------- */

typedef struct {
    st_json_t j;
    st_buf_t s1, s2;     /* string scratch */
    st_buf_t md;         /* encoded structured metadata of the current entry */
    st_buf_t line;       /* a decoded line when the JSON string had escapes (stable copy) */
    st_str_t *mdn, *mdv; /* metadata pairs */
    st_buf_t mdstore;    /* their bytes */
    size_t mdcap;
} dec_t;

static void dec_free(dec_t *d)
{
    st_buf_free(&d->s1);
    st_buf_free(&d->s2);
    st_buf_free(&d->md);
    st_buf_free(&d->line);
    st_buf_free(&d->mdstore);
    free(d->mdn);
    free(d->mdv);
}

static int json_fail(dec_t *d, st_push_errors_t *e, const char *what)
{
    size_t off = 0;
    const char *m = st_json_error(&d->j, &off);
    if (m == NULL) {
        st_json_fail(&d->j, what);
        m = st_json_error(&d->j, &off);
    }
    return fatal(e, ST_EPARSE, "error parsing push request: %s: %s at offset %zu", what, m, off);
}

/* Parses a "stream" object into labels (names validated; empty values dropped). */
static int parse_stream_map(dec_t *d, st_push_errors_t *e, st_labels_t *out)
{
    st_label_t pairs[64];
    st_label_t *pv = pairs;
    size_t n = 0, cap = 64;
    st_buf_t store = ST_BUF_INIT; /* "name\0value\0" back to back */
    size_t *offs = NULL;
    int rc = ST_EPARSE;
    if (st_json_object_begin(&d->j) < 0) {
        rc = json_fail(d, e, "\"stream\" must be an object");
        goto done;
    }
    offs = malloc(2 * cap * sizeof *offs);
    if (offs == NULL) {
        rc = -ENOMEM;
        goto done;
    }
    st_str_t k, v;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        if (!st_label_name_valid(k)) {
            rc = fatal(e, ST_EPARSE, "couldn't parse labels: invalid label name \"%.*s\"", (int)k.n, k.p);
            goto done;
        }
        size_t ko = store.len;
        if (st_buf_append(&store, k.p, k.n) < 0 || st_buf_putc(&store, '\0') < 0) {
            rc = -ENOMEM;
            goto done;
        }
        if (st_json_peek(&d->j) != ST_JSON_STRING) {
            rc = fatal(e, ST_EPARSE, "couldn't parse labels: value of label \"%.*s\" must be a string", (int)k.n, k.p);
            goto done;
        }
        if (st_json_string(&d->j, &v, &d->s2) < 0) {
            rc = json_fail(d, e, "bad label value");
            goto done;
        }
        size_t vo = store.len;
        if (st_buf_append(&store, v.p, v.n) < 0 || st_buf_putc(&store, '\0') < 0) {
            rc = -ENOMEM;
            goto done;
        }
        /* duplicate JSON keys: the last one wins */
        size_t at = n;
        for (size_t i = 0; i < n; i++)
            if (strcmp(store.data + offs[2 * i], store.data + ko) == 0) at = i;
        if (at == n) {
            if (n == cap) {
                size_t nc = cap * 2;
                size_t *no = realloc(offs, 2 * nc * sizeof *no);
                if (no == NULL) {
                    rc = -ENOMEM;
                    goto done;
                }
                offs = no;
                cap = nc;
            }
            n++;
        }
        offs[2 * at] = ko;
        offs[2 * at + 1] = vo;
    }
    if (r < 0) {
        rc = json_fail(d, e, "bad \"stream\" object");
        goto done;
    }
    if (n > 64) {
        pv = malloc(n * sizeof *pv);
        if (pv == NULL) {
            rc = -ENOMEM;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        pv[i].name = st_cstr(store.data + offs[2 * i]);
        pv[i].value = st_cstr(store.data + offs[2 * i + 1]);
    }
    rc = st_labels_from_pairs(pv, n, out);
done:
    if (pv != pairs) free(pv);
    free(offs);
    st_buf_free(&store);
    return rc;
}

static int parse_ts_string(st_str_t s, int64_t *out)
{
    if (s.n == 0 || s.n > 20) return ST_EPARSE;
    size_t i = 0;
    bool neg = false;
    if (s.p[0] == '-' || s.p[0] == '+') {
        neg = s.p[0] == '-';
        i++;
    }
    if (i == s.n) return ST_EPARSE;
    uint64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return ST_EPARSE;
        if (v > (UINT64_MAX - 9) / 10) return ST_EPARSE;
        v = v * 10 + (uint64_t)(s.p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX) return ST_EPARSE;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

/* Reads a structured-metadata object into d->md (encoded); counts bytes as Loki does (name+value). */
static int parse_md(dec_t *d, st_push_errors_t *e, size_t *bytes, size_t *count)
{
    st_buf_reset(&d->md);
    st_buf_reset(&d->mdstore);
    *bytes = 0;
    *count = 0;
    if (st_json_peek(&d->j) == ST_JSON_NULL) {
        st_json_type_t t;
        return st_json_literal(&d->j, &t) < 0 ? json_fail(d, e, "bad structured metadata") : 0;
    }
    if (st_json_object_begin(&d->j) < 0) return json_fail(d, e, "structured metadata must be an object");
    size_t n = 0;
    st_buf_t offs = ST_BUF_INIT; /* pairs of size_t offsets */
    st_str_t k, v;
    int r;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        size_t ko = d->mdstore.len;
        if (st_buf_append(&d->mdstore, k.p, k.n) < 0) goto oom;
        size_t kl = k.n;
        if (st_json_peek(&d->j) != ST_JSON_STRING) {
            st_buf_free(&offs);
            return fatal(e, ST_EPARSE, "error parsing push request: structured metadata value of \"%.*s\" must be a string",
                         (int)kl, d->mdstore.data + ko);
        }
        if (st_json_string(&d->j, &v, &d->s2) < 0) {
            st_buf_free(&offs);
            return json_fail(d, e, "bad structured metadata value");
        }
        size_t vo = d->mdstore.len;
        if (st_buf_append(&d->mdstore, v.p, v.n) < 0) goto oom;
        size_t rec[4] = {ko, kl, vo, v.n};
        if (st_buf_append(&offs, rec, sizeof rec) < 0) goto oom;
        n++;
        *bytes += kl + v.n;
    }
    if (r < 0) {
        st_buf_free(&offs);
        return json_fail(d, e, "bad structured metadata object");
    }
    if (n > d->mdcap) {
        st_str_t *a = realloc(d->mdn, n * sizeof *a), *b = a ? realloc(d->mdv, n * sizeof *b) : NULL;
        if (a) d->mdn = a;
        if (b) d->mdv = b;
        if (!a || !b) goto oom;
        d->mdcap = n;
    }
    const size_t *rec = (const size_t *)(void *)offs.data;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (rec[4 * i + 3] == 0) continue; /* empty values are dropped, like empty labels */
        d->mdn[kept] = st_str(d->mdstore.data + rec[4 * i], rec[4 * i + 1]);
        d->mdv[kept] = st_str(d->mdstore.data + rec[4 * i + 2], rec[4 * i + 3]);
        kept++;
    }
    st_buf_free(&offs);
    *count = kept;
    return st_md_encode(&d->md, d->mdn, d->mdv, kept);
oom:
    st_buf_free(&offs);
    return -ENOMEM;
}

static int parse_values(dec_t *d, st_push_t *p, size_t idx, bool valid, const st_push_limits_t *lim,
                        st_push_errors_t *e)
{
    if (st_json_peek(&d->j) == ST_JSON_NULL) {
        st_json_type_t t;
        return st_json_literal(&d->j, &t) < 0 ? json_fail(d, e, "bad values") : 0;
    }
    if (st_json_array_begin(&d->j) < 0) return json_fail(d, e, "\"values\" must be an array");
    int r;
    while ((r = st_json_next_elem(&d->j)) == 1) {
        if (st_json_array_begin(&d->j) < 0) return json_fail(d, e, "each value must be an array");
        if (st_json_next_elem(&d->j) != 1) return json_fail(d, e, "value needs a timestamp");
        if (st_json_peek(&d->j) != ST_JSON_STRING)
            return fatal(e, ST_EPARSE, "error parsing push request: timestamp must be a string of Unix epoch nanoseconds");
        st_str_t tss;
        int64_t ts;
        if (st_json_string(&d->j, &tss, &d->s1) < 0) return json_fail(d, e, "bad timestamp");
        if (parse_ts_string(tss, &ts) < 0)
            return fatal(e, ST_EPARSE, "error parsing push request: invalid timestamp \"%.*s\"", (int)(tss.n > 64 ? 64 : tss.n), tss.p);
        if (st_json_next_elem(&d->j) != 1) return json_fail(d, e, "value needs a line");
        if (st_json_peek(&d->j) != ST_JSON_STRING)
            return fatal(e, ST_EPARSE, "error parsing push request: log line must be a string");
        st_str_t line;
        if (st_json_string(&d->j, &line, &d->line) < 0) return json_fail(d, e, "bad log line");
        size_t md_bytes = 0, md_count = 0;
        st_buf_reset(&d->md);
        r = st_json_next_elem(&d->j);
        if (r == 1) {
            /* parse_md reuses s1/s2, never d->line, so line stays valid */
            int mrc = parse_md(d, e, &md_bytes, &md_count);
            if (mrc < 0) return mrc;
            r = st_json_next_elem(&d->j);
            if (r == 1) return fatal(e, ST_EPARSE, "error parsing push request: a value has more than 3 elements");
        }
        if (r < 0) return json_fail(d, e, "bad value array");
        (void)md_bytes;
        (void)md_count;
        if (valid) {
            int arc = st_push_add_entry(p, lim, idx, ts, line, st_str(d->md.data ? d->md.data : "", d->md.len), e);
            if (arc < 0) return arc;
        }
    }
    return r < 0 ? json_fail(d, e, "bad \"values\" array") : 0;
}

/* Legacy entries: [{"ts": "<RFC3339>", "line": "..."}] */
static int parse_legacy_entries(dec_t *d, st_push_t *p, size_t idx, bool valid, const st_push_limits_t *lim,
                                st_push_errors_t *e)
{
    if (st_json_peek(&d->j) == ST_JSON_NULL) {
        st_json_type_t t;
        return st_json_literal(&d->j, &t) < 0 ? json_fail(d, e, "bad entries") : 0;
    }
    if (st_json_array_begin(&d->j) < 0) return json_fail(d, e, "\"entries\" must be an array");
    int r;
    while ((r = st_json_next_elem(&d->j)) == 1) {
        if (st_json_object_begin(&d->j) < 0) return json_fail(d, e, "each entry must be an object");
        int64_t ts = 0;
        bool have_ts = false;
        st_buf_t linebuf = ST_BUF_INIT;
        st_str_t k, v;
        int kr;
        while ((kr = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
            if (st_str_eqc(k, "ts") || st_str_eqc(k, "timestamp")) {
                if (st_json_string(&d->j, &v, &d->s2) < 0 || st_parse_rfc3339(v, &ts) < 0) {
                    st_buf_free(&linebuf);
                    return fatal(e, ST_EPARSE, "error parsing push request: entry timestamp must be an RFC3339 string");
                }
                have_ts = true;
            } else if (st_str_eqc(k, "line")) {
                if (st_json_string(&d->j, &v, &d->s2) < 0) {
                    st_buf_free(&linebuf);
                    return json_fail(d, e, "bad line");
                }
                st_buf_reset(&linebuf);
                if (st_buf_append(&linebuf, v.p, v.n) < 0) {
                    st_buf_free(&linebuf);
                    return -ENOMEM;
                }
            } else if (st_json_skip(&d->j, NULL) < 0) {
                st_buf_free(&linebuf);
                return json_fail(d, e, "bad entry");
            }
        }
        if (kr < 0 || !have_ts) {
            st_buf_free(&linebuf);
            return kr < 0 ? json_fail(d, e, "bad entry") : fatal(e, ST_EPARSE, "error parsing push request: entry without timestamp");
        }
        int arc = 0;
        if (valid)
            arc = st_push_add_entry(p, lim, idx, ts, st_str(linebuf.data ? linebuf.data : "", linebuf.len), st_str("", 0), e);
        st_buf_free(&linebuf);
        if (arc < 0) return arc;
    }
    return r < 0 ? json_fail(d, e, "bad \"entries\" array") : 0;
}

static int parse_one_stream(dec_t *d, bool legacy, const st_push_limits_t *lim, st_push_t *p, st_push_errors_t *e)
{
    if (st_json_object_begin(&d->j) < 0) return json_fail(d, e, "each stream must be an object");
    /* The labels must be known before entries can be added; JSON objects are unordered, so when
     * "values" precedes "stream" the values are parsed in a second pass. */
    st_labels_t labels = ST_LABELS_INIT;
    bool have_labels = false, values_seen = false;
    st_str_t k;
    int r, rc = 0;
    const char *values_at = NULL;
    while ((r = st_json_next_key(&d->j, &k, &d->s1)) == 1) {
        bool is_labels = legacy ? st_str_eqc(k, "labels") : st_str_eqc(k, "stream");
        bool is_values = legacy ? st_str_eqc(k, "entries") : st_str_eqc(k, "values");
        if (is_labels) {
            st_labels_free(&labels);
            if (legacy) {
                st_str_t text;
                char err[256];
                if (st_json_string(&d->j, &text, &d->s2) < 0) {
                    rc = json_fail(d, e, "\"labels\" must be a string");
                    break;
                }
                int prc = st_labels_parse(text, &labels, err);
                if (prc == -ENOMEM) {
                    rc = prc;
                    break;
                }
                if (prc < 0) {
                    rc = fatal(e, ST_EPARSE, "couldn't parse labels: %s", err);
                    break;
                }
            } else if ((rc = parse_stream_map(d, e, &labels)) < 0) {
                break;
            }
            have_labels = true;
        } else if (is_values) {
            values_seen = true;
            values_at = d->j.p;
            if (st_json_skip(&d->j, NULL) < 0) {
                rc = json_fail(d, e, "bad values");
                break;
            }
        } else if (st_json_skip(&d->j, NULL) < 0) {
            rc = json_fail(d, e, "bad stream object");
            break;
        }
    }
    if (rc == 0 && r < 0) rc = json_fail(d, e, "bad stream object");
    if (rc == 0 && values_seen) {
        size_t idx = 0;
        rc = st_push_add_stream(p, lim, &labels, e, &idx);
        if (rc == 0) {
            /* second pass over the values with a sub-parser */
            bool valid = idx != SIZE_MAX;
            st_json_t saved = d->j;
            st_json_init(&d->j, values_at, (size_t)(saved.end - values_at));
            rc = legacy ? parse_legacy_entries(d, p, idx, valid, lim, e) : parse_values(d, p, idx, valid, lim, e);
            d->j = saved;
        }
    }
    (void)have_labels;
    st_labels_free(&labels);
    return rc;
}

int st_push_decode_json(st_str_t body, bool legacy, const st_push_limits_t *lim, st_push_t *p, st_push_errors_t *errs)
{
    dec_t d;
    memset(&d, 0, sizeof d);
    st_json_init(&d.j, body.p, body.n);
    int rc = 0;
    size_t nstreams = 0;
    if (st_json_object_begin(&d.j) < 0) {
        rc = json_fail(&d, errs, "body must be a JSON object");
        goto done;
    }
    st_str_t k;
    int r;
    while ((r = st_json_next_key(&d.j, &k, &d.s1)) == 1) {
        if (!st_str_eqc(k, "streams")) {
            if (st_json_skip(&d.j, NULL) < 0) {
                rc = json_fail(&d, errs, "bad push request");
                goto done;
            }
            continue;
        }
        if (st_json_peek(&d.j) == ST_JSON_NULL) {
            st_json_type_t t;
            st_json_literal(&d.j, &t);
            continue;
        }
        if (st_json_array_begin(&d.j) < 0) {
            rc = json_fail(&d, errs, "\"streams\" must be an array");
            goto done;
        }
        while ((r = st_json_next_elem(&d.j)) == 1) {
            if ((rc = parse_one_stream(&d, legacy, lim, p, errs)) < 0) goto done;
            nstreams++;
        }
        if (r < 0) {
            rc = json_fail(&d, errs, "bad \"streams\" array");
            goto done;
        }
    }
    if (r < 0 || st_json_finish(&d.j) < 0) {
        rc = json_fail(&d, errs, "bad push request");
        goto done;
    }
    if (nstreams == 0) {
        rc = fatal(errs, ST_ENOTFOUND, "error at least one valid stream is required for ingestion");
        goto done;
    }
    st_push_errors_finish(errs);
done:
    dec_free(&d);
    return rc;
}
