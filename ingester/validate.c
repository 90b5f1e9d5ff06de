/* validate.c: the distributor's rules shared by every push decoder: Loki's per-stream and per-entry
 * checks with Loki's message texts, the grouping of failures into one 400 body, and Loki's stream
 * decorations (service_name, detected_level; see discover.c) applied on the way in. */
#include "ingester/ingester.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- grouped errors ---------------------------------------------------------------------------- */

typedef struct {
    char **msg;
    size_t *count;
    size_t n, cap;
    /* per-request discovery state: normalised level of each stream's level-like label (NULL: none),
     * indexed by the push's stream index, and a scratch buffer for re-encoded metadata */
    char **lvl;
    size_t nlvl;
    st_buf_t md;
} groups_t;

void st_push_errors_free(st_push_errors_t *e)
{
    if (e == NULL) return;
    groups_t *g = e->priv;
    if (g) {
        for (size_t i = 0; i < g->n; i++) free(g->msg[i]);
        free(g->msg);
        free(g->count);
        for (size_t i = 0; i < g->nlvl; i++) free(g->lvl[i]);
        free(g->lvl);
        st_buf_free(&g->md);
        free(g);
    }
    st_buf_free(&e->text);
    memset(e, 0, sizeof *e);
}

void st_push_errors_add(st_push_errors_t *e, const char *msg)
{
    e->count++;
    groups_t *g = e->priv;
    if (g == NULL && (g = e->priv = calloc(1, sizeof *g)) == NULL) return;
    for (size_t i = 0; i < g->n; i++) {
        if (strcmp(g->msg[i], msg) == 0) {
            g->count[i]++;
            return;
        }
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 8;
        char **m = realloc(g->msg, cap * sizeof *m);
        if (m) g->msg = m;
        size_t *c = realloc(g->count, cap * sizeof *c);
        if (c) g->count = c;
        if (!m || !c) return;
        g->cap = cap;
    }
    if ((g->msg[g->n] = strdup(msg)) == NULL) return;
    g->count[g->n++] = 1;
}

/* Loki's GroupedErrors: "N errors like: msg" per distinct message, joined by "; " (a single
 * failure is just its message). */
void st_push_errors_finish(st_push_errors_t *e)
{
    groups_t *g = e->priv;
    st_buf_reset(&e->text);
    if (g == NULL) return;
    for (size_t i = 0; i < g->n; i++) {
        if (i) st_buf_puts(&e->text, "; ");
        if (g->n > 1 || g->count[i] > 1) st_buf_printf(&e->text, "%zu errors like: ", g->count[i]);
        st_buf_puts(&e->text, g->msg[i]);
    }
}


/* ---- validation -------------------------------------------------------------------------------- */

/* st_push_errors_add with a formatted message of any length (label strings can be long: a 4 KiB
 * buffer cut "label value too long" messages short). */
static void add_errf(st_push_errors_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_errf(st_push_errors_t *e, const char *fmt, ...)
{
    st_buf_t b = ST_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || st_buf_reserve(&b, (size_t)n + 1) < 0) {
        e->count++; /* still counted as a failure */
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    st_push_errors_add(e, b.data);
    st_buf_free(&b);
}

/* Checks a stream's labels; on failure records the message and returns false. */
static bool validate_stream(const st_push_limits_t *lim, const st_labels_t *l, st_str_t text, st_push_errors_t *e)
{
    if (l->n == 0) {
        st_push_errors_add(e, "error at least one label pair is required per stream");
        return false;
    }
    /* service_name (often added by discovery) does not count, as in Loki */
    size_t nnames = l->n - (st_labels_get(l, st_cstr("service_name"), NULL) ? 1 : 0);
    if (lim->max_label_names_per_series > 0 && nnames > (size_t)lim->max_label_names_per_series) {
        add_errf(e, "entry for stream '%.*s' has %zu label names; limit %d", (int)text.n, text.p,
                 nnames, lim->max_label_names_per_series);
        return false;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (lim->max_label_name_length > 0 && l->v[i].name.n > (size_t)lim->max_label_name_length) {
            add_errf(e, "stream '%.*s' has label name too long: '%.*s'", (int)text.n, text.p,
                     (int)l->v[i].name.n, l->v[i].name.p);
            return false;
        }
        if (lim->max_label_value_length > 0 && l->v[i].value.n > (size_t)lim->max_label_value_length) {
            add_errf(e, "stream '%.*s' has label value too long: '%.*s'", (int)text.n, text.p,
                     (int)l->v[i].value.n, l->v[i].value.p);
            return false;
        }
        if (i > 0 && st_str_eq(l->v[i].name, l->v[i - 1].name)) {
            add_errf(e, "stream '%.*s' has duplicate label name: '%.*s'", (int)text.n, text.p,
                     (int)l->v[i].name.n, l->v[i].name.p);
            return false;
        }
    }
    return true;
}

/* st_format_rfc3339_sec for any int64 (its floor to whole seconds overflows below
 * -9223372036000000000 ns, 1677-09-21T00:12:44Z). */
static void fmt_sec(int64_t ts, char *out)
{
    const int64_t lo = INT64_MIN / 1000000000 * 1000000000;
    st_format_rfc3339_sec(ts < lo ? lo : ts, out);
}

/* Checks one entry; may shorten *line when truncation is configured. */
static bool validate_entry(const st_push_limits_t *lim, st_str_t text, int64_t ts, st_str_t *line, size_t md_bytes,
                           size_t md_count, st_push_errors_t *e)
{
    char t1[40], t2[40];
    if (lim->reject_old_samples && ts < lim->now_ns - lim->reject_old_samples_max_age_ns) {
        fmt_sec(ts, t1);
        st_format_rfc3339_sec(lim->now_ns - lim->reject_old_samples_max_age_ns, t2);
        add_errf(e, "entry for stream '%.*s' has timestamp too old: %s, oldest acceptable timestamp is: %s",
                 (int)text.n, text.p, t1, t2);
        return false;
    }
    if (ts > lim->now_ns + lim->creation_grace_period_ns) {
        fmt_sec(ts, t1);
        add_errf(e, "entry for stream '%.*s' has timestamp too new: %s", (int)text.n, text.p, t1);
        return false;
    }
    if (lim->max_line_size > 0 && line->n > lim->max_line_size) {
        if (lim->max_line_size_truncate) {
            line->n = lim->max_line_size;
        } else {
            add_errf(e,
                     "max entry size '%zu' bytes exceeded for stream '%.*s' while adding an entry with length '%zu' bytes",
                     lim->max_line_size, (int)text.n, text.p, line->n);
            return false;
        }
    }
    if (md_count > 0) {
        if (!lim->allow_structured_metadata) {
            add_errf(e,
                     "stream '%.*s' includes structured metadata, but this feature is disallowed. Please see "
                     "`limits_config.allow_structured_metadata` or contact your Loki administrator to enable it.",
                     (int)text.n, text.p);
            return false;
        }
        if (lim->max_structured_metadata_size > 0 && md_bytes > lim->max_structured_metadata_size) {
            add_errf(e,
                     "stream '%.*s' has structured metadata too large: '%zu' bytes, limit: '%zu' bytes. Please see "
                     "`limits_config.max_structured_metadata_size` or contact your Loki administrator to increase it.",
                     (int)text.n, text.p, md_bytes, lim->max_structured_metadata_size);
            return false;
        }
        if (lim->max_structured_metadata_entries > 0 && md_count > (size_t)lim->max_structured_metadata_entries) {
            add_errf(e,
                     "stream '%.*s' has too many structured metadata labels: '%zu', limit: '%d'. Please see "
                     "`limits_config.max_structured_metadata_entries_count` or contact your Loki administrator to "
                     "increase it.",
                     (int)text.n, text.p, md_count, lim->max_structured_metadata_entries);
            return false;
        }
    }
    return true;
}


/* The discovery state, created on first use (NULL on OOM). */
static groups_t *state_of(st_push_errors_t *e)
{
    if (e->priv == NULL) e->priv = calloc(1, sizeof(groups_t));
    return e->priv;
}

/* Remembers the normalised level label of stream idx for st_push_add_entry. */
static int cache_level(st_push_errors_t *e, size_t idx, const st_labels_t *labels)
{
    groups_t *g = state_of(e);
    if (g == NULL) return -ENOMEM;
    if (idx >= g->nlvl) {
        size_t n = g->nlvl ? g->nlvl : 8;
        while (n <= idx) n *= 2;
        char **v = realloc(g->lvl, n * sizeof *v);
        if (v == NULL) return -ENOMEM;
        memset(v + g->nlvl, 0, (n - g->nlvl) * sizeof *v);
        g->lvl = v;
        g->nlvl = n;
    }
    free(g->lvl[idx]);
    g->lvl[idx] = NULL;
    st_str_t v;
    if (st_level_from_labels(labels, &v)) {
        g->lvl[idx] = st_str_dup(st_level_normalize(v));
        if (g->lvl[idx] == NULL) return -ENOMEM;
    }
    return 0;
}

int st_push_add_stream_flags(st_push_t *p, const st_push_limits_t *lim, const st_labels_t *labels,
                             unsigned flags, st_push_errors_t *errs, size_t *idx)
{
    st_labels_t found = ST_LABELS_INIT;
    if (!(flags & ST_PUSH_NO_DISCOVERY)) {
        int d = st_discover_service_name(lim, labels, &found);
        if (d < 0) return d;
        if (d == 1) labels = &found;
    }
    st_buf_t text = ST_BUF_INIT;
    int rc = st_labels_format(labels, &text);
    if (rc == 0) {
        if (validate_stream(lim, labels, st_str(text.data, text.len), errs)) rc = st_push_stream(p, labels, idx);
        else *idx = SIZE_MAX;
    }
    if (rc == 0 && *idx != SIZE_MAX && lim->discover_log_levels && lim->allow_structured_metadata)
        rc = cache_level(errs, *idx, labels);
    st_buf_free(&text);
    st_labels_free(&found);
    return rc;
}

int st_push_add_stream(st_push_t *p, const st_push_limits_t *lim, const st_labels_t *labels, st_push_errors_t *errs,
                       size_t *idx)
{
    return st_push_add_stream_flags(p, lim, labels, 0, errs, idx);
}

/* md with detected_level added (what == 1) or its value replaced (what == 2), into g->md. */
static int md_with_level(groups_t *g, st_str_t md, int what, st_str_t level)
{
    st_buf_reset(&g->md);
    st_md_iter_t it;
    st_md_iter_init(&it, md);
    uint64_t count = md.n ? it.left : 0;
    ST_TRY(st_buf_put_uvarint(&g->md, count + (what == 1)));
    st_str_t n, v;
    int r;
    while (md.n && (r = st_md_next(&it, &n, &v)) == 1) {
        if (what == 2 && st_str_eqc(n, "detected_level")) v = level;
        ST_TRY(st_buf_put_lstr(&g->md, n.p, n.n));
        ST_TRY(st_buf_put_lstr(&g->md, v.p, v.n));
    }
    if (what == 1) {
        ST_TRY(st_buf_put_lstr(&g->md, "detected_level", 14));
        ST_TRY(st_buf_put_lstr(&g->md, level.p, level.n));
    }
    return 0;
}

int st_push_add_entry(st_push_t *p, const st_push_limits_t *lim, size_t idx, int64_t ts, st_str_t line, st_str_t md,
                      st_push_errors_t *errs)
{
    size_t md_bytes = 0, md_count = 0;
    if (md.n) {
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t n, v;
        int r;
        while ((r = st_md_next(&it, &n, &v)) == 1) {
            md_bytes += n.n + v.n;
            md_count++;
        }
        if (r < 0) return r;
    }
    if (!validate_entry(lim, st_push_stream_labels(p, idx), ts, &line, md_bytes, md_count, errs)) {
        errs->dropped++;
        return 0;
    }
    /* detected_level is added after validation, as Loki does: it never counts against the limits */
    if (lim->discover_log_levels && lim->allow_structured_metadata) {
        groups_t *g = state_of(errs);
        if (g == NULL) return -ENOMEM;
        const char *ll = idx < g->nlvl ? g->lvl[idx] : NULL;
        st_str_t level;
        int what = st_discover_level(st_cstr(ll), line, md, &level);
        if (what) {
            ST_TRY(md_with_level(g, md, what, level));
            md = st_str(g->md.data, g->md.len);
        }
    }
    return st_push_entry(p, idx, ts, line, md);
}
