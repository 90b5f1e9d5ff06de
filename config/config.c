/* config.c: defaults, YAML loading (libyaml document API), -key=value overrides, path derivation and
 * validation, all driven by the key table in config_table.c.
 *
 * Loading works on a private copy and only replaces the caller's struct on success. Every problem is
 * collected as one "file:line: key: message" line; nothing is fatal until the end. */
#include "config/config_int.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#define MAX_ERRORS     100
#define MAX_FILE_BYTES (4u << 20)               /* config files are a few KB; this bounds libyaml's memory */
#define MSG_VALUE_MAX  64                       /* bytes of an offending value quoted in a message */
#define QV_SIZE        (MSG_VALUE_MAX * 4 + 16) /* its quoted form: at most 4 chars a byte ("\x01") */
#define MAX_DEPTH      32                       /* nested YAML collections; the deepest key needs 5 */

/* ---- error collection ---- */

typedef struct {
    const char *file; /* NULL: lines start with the key */
    st_buf_t buf;
    int n;
    bool oom;
} errs_t;

static void errs_addv(errs_t *e, size_t line, const char *key, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void errs_addv(errs_t *e, size_t line, const char *key, const char *fmt, va_list ap)
{
    e->n++;
    if (e->n > MAX_ERRORS) return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int rc = 0;
    if (e->buf.len > 0) rc |= st_buf_putc(&e->buf, '\n');
    if (e->file != NULL) {
        if (line > 0)
            rc |= st_buf_printf(&e->buf, "%s:%zu: ", e->file, line);
        else
            rc |= st_buf_printf(&e->buf, "%s: ", e->file);
    }
    if (key != NULL) rc |= st_buf_printf(&e->buf, "%s: ", key);
    rc |= st_buf_puts(&e->buf, msg);
    if (rc != 0) e->oom = true;
}

static void errs_add(errs_t *e, size_t line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void errs_add(errs_t *e, size_t line, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    errs_addv(e, line, key, fmt, ap);
    va_end(ap);
}

/* Copies the collected lines into err (always NUL-terminated) and returns the status. */
static int errs_finish(errs_t *e, char *err, size_t errsz)
{
    int rc = e->oom ? -ENOMEM : e->n > 0 ? ST_EPARSE : 0;
    if (e->n > MAX_ERRORS && !e->oom) {
        if (st_buf_printf(&e->buf, "\n... and %d more errors", e->n - MAX_ERRORS) < 0) rc = -ENOMEM;
    }
    if (err != NULL && errsz > 0) {
        err[0] = '\0';
        if (rc == -ENOMEM) {
            snprintf(err, errsz, "out of memory");
        } else if (rc != 0) {
            size_t n = e->buf.len < errsz - 1 ? e->buf.len : errsz - 1;
            memcpy(err, e->buf.data, n);
            err[n] = '\0';
        }
    }
    st_buf_free(&e->buf);
    return rc;
}

/* Quotes (at most MSG_VALUE_MAX bytes of) a value for a message into tmp. */
static const char *qv(char *tmp, size_t tmpsz, const char *s, size_t n)
{
    st_buf_t b = ST_BUF_INIT;
    if (st_cfg_quote(&b, s, n, MSG_VALUE_MAX) < 0) {
        snprintf(tmp, tmpsz, "\"?\"");
    } else {
        snprintf(tmp, tmpsz, "%s", st_buf_cstr(&b));
    }
    st_buf_free(&b);
    return tmp;
}

/* ---- scalar values ---- */

static void put_string(char *dst, size_t cap, const char *s, size_t n)
{
    memset(dst, 0, cap);
    memcpy(dst, s, n);
}

static void range_msg(const st_cfg_key_t *k, const char *qval, char *msg, size_t msz, bool low)
{
    int64_t umax = k->type == ST_CFG_INT ? INT_MAX : INT64_MAX;
    if (k->max != umax) {
        snprintf(msg, msz, "value %s out of range (%lld..%lld)", qval, (long long)k->min, (long long)k->max);
    } else if (low && k->min == 1) {
        snprintf(msg, msz, "value %s out of range (must be > 0)", qval);
    } else if (low) {
        snprintf(msg, msz, "value %s out of range (must be >= %lld)", qval, (long long)k->min);
    } else {
        snprintf(msg, msz, "value %s out of range (must be <= %lld)", qval, (long long)k->max);
    }
}

/* Parses text for a scalar key and stores it into base (a st_config_t). null is a YAML null (plain
 * "", "~", "null"). Returns 0, or ST_EPARSE with the reason in msg; the field is untouched then. */
static int apply_scalar(const st_cfg_key_t *k, void *base, const char *s, size_t n, bool null, char *msg,
                        size_t msz)
{
    char *field = (char *)base + k->off;
    char q[QV_SIZE];
    qv(q, sizeof q, s, n);
    if (null && k->type != ST_CFG_STRING) {
        snprintf(msg, msz, "missing value");
        return ST_EPARSE;
    }
    switch (k->type) {
    case ST_CFG_BOOL: {
        bool v;
        if (st_cfg_parse_bool(s, n, &v) < 0) {
            snprintf(msg, msz, "invalid boolean %s", q);
            return ST_EPARSE;
        }
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case ST_CFG_INT: {
        int64_t v;
        int rc = st_cfg_parse_int(s, n, &v);
        if (rc == ST_EPARSE) {
            snprintf(msg, msz, "invalid integer %s", q);
            return ST_EPARSE;
        }
        if (rc < 0 || v < k->min || v > k->max) {
            range_msg(k, q, msg, msz, rc == 0 ? v < k->min : s[0] == '-');
            return ST_EPARSE;
        }
        int iv = (int)v;
        memcpy(field, &iv, sizeof iv);
        return 0;
    }
    case ST_CFG_DURATION:
    case ST_CFG_PDURATION: {
        int64_t v;
        if (st_cfg_parse_duration(s, n, &v) < 0) {
            snprintf(msg, msz, "invalid duration %s", q);
            return ST_EPARSE;
        }
        if (v < k->min || v > k->max) {
            range_msg(k, q, msg, msz, v < k->min);
            return ST_EPARSE;
        }
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case ST_CFG_BYTES: {
        uint64_t v;
        int rc = st_cfg_parse_bytes(s, n, &v);
        if (rc == ST_EPARSE) {
            snprintf(msg, msz, "invalid size %s", q);
            return ST_EPARSE;
        }
        if (rc < 0 || v < (uint64_t)k->min || v > (uint64_t)k->max || v > SIZE_MAX) {
            range_msg(k, q, msg, msz, rc == 0 && v < (uint64_t)k->min);
            return ST_EPARSE;
        }
        size_t sv = (size_t)v;
        memcpy(field, &sv, sizeof sv);
        return 0;
    }
    case ST_CFG_FLOAT: {
        char tmp[64];
        if (n == 0 || n >= sizeof tmp) {
            snprintf(msg, msz, "invalid number %s", q);
            return ST_EPARSE;
        }
        memcpy(tmp, s, n);
        tmp[n] = '\0';
        char *end;
        double v = strtod(tmp, &end);
        if (*end != '\0' || !isfinite(v)) {
            snprintf(msg, msz, "invalid number %s", q);
            return ST_EPARSE;
        }
        if (v < (double)k->min) {
            range_msg(k, q, msg, msz, true);
            return ST_EPARSE;
        }
        memcpy(field, &v, sizeof v);
        return 0;
    }
    case ST_CFG_ENUM: {
        const char *c = k->choices;
        while (*c) {
            size_t len = strcspn(c, "|");
            if (len == n && memcmp(c, s, n) == 0 && n < k->size) {
                put_string(field, k->size, s, n);
                return 0;
            }
            c += len + (c[len] == '|');
        }
        char list[128];
        size_t j = 0;
        for (c = k->choices; *c && j + 3 < sizeof list; c++) {
            if (*c == '|') {
                list[j++] = ',';
                list[j++] = ' ';
            } else {
                list[j++] = *c;
            }
        }
        list[j] = '\0';
        snprintf(msg, msz, "invalid value %s (expected one of: %s)", q, list);
        return ST_EPARSE;
    }
    case ST_CFG_STRING: {
        if (null) n = 0;
        if (memchr(s, '\0', n) != NULL) {
            snprintf(msg, msz, "value contains a NUL byte");
            return ST_EPARSE;
        }
        if (n >= k->size) {
            snprintf(msg, msz, "value too long (%zu bytes, max %zu)", n, k->size - 1);
            return ST_EPARSE;
        }
        if (!st_cfg_utf8_valid(s, n)) {
            snprintf(msg, msz, "value is not valid UTF-8");
            return ST_EPARSE;
        }
        if ((int64_t)n < k->min) {
            snprintf(msg, msz, "must not be empty");
            return ST_EPARSE;
        }
        if (k->check != NULL) {
            char tmp[1024], why[256];
            memcpy(tmp, s, n);
            tmp[n] = '\0';
            if (k->check(tmp, why, sizeof why) < 0) {
                int w = snprintf(msg, msz, "invalid value %s: %s", q, why);
                (void)w; /* a long value may be cut; the message stays readable */
                return ST_EPARSE;
            }
        }
        put_string(field, k->size, s, n);
        return 0;
    }
    case ST_CFG_PERIODS: break;
    }
    snprintf(msg, msz, "internal error: key type");
    return ST_EPARSE;
}

/* ---- YAML helpers ---- */

static size_t line_of(const yaml_node_t *n)
{
    return n->start_mark.line + 1;
}

static bool is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
    const char *v = (const char *)n->data.scalar.value;
    size_t len = n->data.scalar.length;
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    for (int i = 0; i < 5; i++)
        if (strlen(nulls[i]) == len && memcmp(nulls[i], v, len) == 0) return true;
    return false;
}

/* Builds "prefix.key" for messages and lookups; keys are shown quoted when not plain ASCII words. */
static void join_path(char *out, size_t outsz, const char *prefix, const char *k, size_t kn)
{
    bool plain = kn > 0 && kn <= 100;
    for (size_t i = 0; i < kn && plain; i++) {
        unsigned char ch = (unsigned char)k[i];
        plain = ch > 0x20 && ch < 0x7f && ch != '"';
    }
    size_t len = 0;
    if (prefix != NULL && prefix[0] != '\0') len = (size_t)snprintf(out, outsz, "%s.", prefix);
    if (len >= outsz) len = outsz - 1;
    if (plain) {
        snprintf(out + len, outsz - len, "%.*s", (int)kn, k);
    } else {
        char q[QV_SIZE];
        snprintf(out + len, outsz - len, "%s", qv(q, sizeof q, k, kn));
    }
}

/* ---- loader ---- */

typedef struct {
    errs_t *e;
    yaml_document_t *doc;
    st_config_t *c;
    const char *src; /* the parsed text, for sections kept verbatim */
    size_t srcn;
    size_t key_line[ST_CFG_MAX_KEYS]; /* by row index: line the key was set on (0: not set) */
    size_t period_line[ST_CONFIG_MAX_PERIODS];
    struct {
        char path[64];
        size_t line;
    } sections[32];
    int nsections;
} loader_t;

static void load_periods(loader_t *L, yaml_node_t *seq, const char *key, st_period_config_t *out, int *nout);

static bool known_store(char *v)
{
    if (strcmp(v, "tsdb") == 0) strcpy(v, "lmdb");
    return strcmp(v, "lmdb") == 0;
}

/* Reads one scalar of a period map into a fixed string; reports errors itself. */
static bool period_str(loader_t *L, yaml_node_t *v, const char *path, char *dst, size_t cap)
{
    if (v->type != YAML_SCALAR_NODE) {
        errs_add(L->e, line_of(v), path, "expected a scalar value");
        return false;
    }
    const char *s = (const char *)v->data.scalar.value;
    size_t n = v->data.scalar.length;
    if (is_null(v)) {
        errs_add(L->e, line_of(v), path, "missing value");
        return false;
    }
    if (n >= cap || memchr(s, '\0', n) != NULL) {
        char q[QV_SIZE];
        errs_add(L->e, line_of(v), path, "invalid value %s", qv(q, sizeof q, s, n));
        return false;
    }
    memcpy(dst, s, n);
    dst[n] = '\0';
    return true;
}

static void load_period_index(loader_t *L, yaml_node_t *m, const char *ppath, st_period_config_t *p)
{
    char path[160];
    snprintf(path, sizeof path, "%s.index", ppath);
    if (is_null(m)) return;
    if (m->type != YAML_MAPPING_NODE) {
        errs_add(L->e, line_of(m), path, "expected a mapping");
        return;
    }
    unsigned seen = 0;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        if (k == NULL || v == NULL) continue;
        if (k->type != YAML_SCALAR_NODE) {
            errs_add(L->e, line_of(k), path, "mapping keys must be scalars");
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        size_t kn = k->data.scalar.length;
        char kpath[224];
        join_path(kpath, sizeof kpath, path, ks, kn);
        unsigned bit = kn == 6 && memcmp(ks, "prefix", 6) == 0   ? 1u
                       : kn == 6 && memcmp(ks, "period", 6) == 0 ? 2u
                                                                 : 0u;
        if (bit == 0) {
            errs_add(L->e, line_of(k), kpath, "unknown key (expected prefix or period)");
            continue;
        }
        if (seen & bit) {
            errs_add(L->e, line_of(k), kpath, "duplicate key");
            continue;
        }
        seen |= bit;
        if (bit == 1) {
            char tmp[64], why[128];
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) continue;
            if (strlen(tmp) >= sizeof p->index_prefix) {
                errs_add(L->e, line_of(v), kpath, "value too long (%zu bytes, max %zu)", strlen(tmp),
                         sizeof p->index_prefix - 1);
            } else if (st_cfg_check_index_prefix(tmp, why, sizeof why) < 0) {
                char q[QV_SIZE];
                errs_add(L->e, line_of(v), kpath, "invalid value %s: %s", qv(q, sizeof q, tmp, strlen(tmp)),
                         why);
            } else {
                put_string(p->index_prefix, sizeof p->index_prefix, tmp, strlen(tmp));
            }
        } else {
            char tmp[64], q[QV_SIZE];
            int64_t ns;
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) continue;
            if (st_cfg_parse_duration(tmp, strlen(tmp), &ns) < 0) {
                errs_add(L->e, line_of(v), kpath, "invalid duration %s", qv(q, sizeof q, tmp, strlen(tmp)));
            } else if (ns != 24 * 3600 * ST_NS_PER_SEC) {
                errs_add(L->e, line_of(v), kpath, "must be 24h (got %s)", qv(q, sizeof q, tmp, strlen(tmp)));
            } else {
                p->index_period_ns = ns;
            }
        }
    }
}

static void load_period(loader_t *L, yaml_node_t *m, const char *ppath, st_period_config_t *p,
                        size_t *from_line)
{
    static const char *const names[] = {"from", "store", "object_store", "schema", "index"};
    memset(p, 0, sizeof *p);
    strcpy(p->object_store, "filesystem");
    strcpy(p->index_prefix, "index_");
    p->index_period_ns = 24 * 3600 * ST_NS_PER_SEC;
    p->from_day = INT64_MIN;
    if (m->type != YAML_MAPPING_NODE) {
        errs_add(L->e, line_of(m), ppath, "expected a mapping (from, store, object_store, schema, index)");
        return;
    }
    unsigned seen = 0;
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        if (k == NULL || v == NULL) continue;
        if (k->type != YAML_SCALAR_NODE) {
            errs_add(L->e, line_of(k), ppath, "mapping keys must be scalars");
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        size_t kn = k->data.scalar.length;
        char kpath[224];
        join_path(kpath, sizeof kpath, ppath, ks, kn);
        int idx = -1;
        for (int i = 0; i < 5; i++)
            if (strlen(names[i]) == kn && memcmp(names[i], ks, kn) == 0) idx = i;
        if (idx < 0) {
            size_t best = SIZE_MAX;
            int bi = 0;
            for (int i = 0; i < 5; i++) {
                size_t d = st_cfg_edit_distance(ks, kn, names[i], strlen(names[i]));
                if (d < best) {
                    best = d;
                    bi = i;
                }
            }
            if (best <= 2)
                errs_add(L->e, line_of(k), kpath, "unknown key (did you mean \"%s\"?)", names[bi]);
            else
                errs_add(L->e, line_of(k), kpath, "unknown key");
            continue;
        }
        if (seen & (1u << idx)) {
            errs_add(L->e, line_of(k), kpath, "duplicate key");
            continue;
        }
        seen |= 1u << idx;
        char tmp[64], q[QV_SIZE];
        switch (idx) {
        case 0:
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) break;
            if (st_cfg_parse_date(tmp, strlen(tmp), &p->from_day) < 0) {
                errs_add(L->e, line_of(v), kpath, "invalid date %s (expected YYYY-MM-DD)",
                         qv(q, sizeof q, tmp, strlen(tmp)));
                break;
            }
            *from_line = line_of(v);
            break;
        case 1:
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) break;
            if (strlen(tmp) >= sizeof p->store || !known_store(tmp)) {
                errs_add(L->e, line_of(v), kpath, "invalid value %s (expected one of: lmdb, tsdb)",
                         qv(q, sizeof q, tmp, strlen(tmp)));
                break;
            }
            strcpy(p->store, tmp);
            break;
        case 2:
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) break;
            if (strcmp(tmp, "filesystem") != 0) {
                errs_add(L->e, line_of(v), kpath, "invalid value %s (expected one of: filesystem)",
                         qv(q, sizeof q, tmp, strlen(tmp)));
                break;
            }
            strcpy(p->object_store, tmp);
            break;
        case 3:
            if (!period_str(L, v, kpath, tmp, sizeof tmp)) break;
            if (strcmp(tmp, "v13") != 0 && strcmp(tmp, "strata-v1") != 0) {
                errs_add(L->e, line_of(v), kpath, "invalid value %s (expected one of: v13, strata-v1)",
                         qv(q, sizeof q, tmp, strlen(tmp)));
                break;
            }
            strcpy(p->schema, tmp);
            break;
        case 4: load_period_index(L, v, ppath, p); break;
        }
    }
    /* Required keys that are absent (invalid ones were reported above). */
    for (int i = 0; i < 4; i++) {
        static const unsigned req[] = {1, 2, 0, 4};
        if (req[i] != 0 && !(seen & (1u << i)))
            errs_add(L->e, line_of(m), ppath, "missing required key \"%s\"", names[i]);
    }
}

static void load_periods(loader_t *L, yaml_node_t *seq, const char *key, st_period_config_t *out, int *nout)
{
    *nout = 0;
    if (is_null(seq)) return;
    if (seq->type != YAML_SEQUENCE_NODE) {
        errs_add(L->e, line_of(seq), key, "expected a list of periods");
        return;
    }
    int n = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++, n++) {
        yaml_node_t *m = yaml_document_get_node(L->doc, *it);
        if (m == NULL) continue;
        if (n >= ST_CONFIG_MAX_PERIODS) {
            errs_add(L->e, line_of(m), key, "too many periods (max %d)", ST_CONFIG_MAX_PERIODS);
            break;
        }
        char ppath[96];
        snprintf(ppath, sizeof ppath, "%s[%d]", key, n);
        L->period_line[n] = line_of(m);
        load_period(L, m, ppath, &out[n], &L->period_line[n]);
    }
    *nout = n > ST_CONFIG_MAX_PERIODS ? ST_CONFIG_MAX_PERIODS : n;
}

static void apply_node(loader_t *L, const st_cfg_key_t *k, yaml_node_t *v)
{
    if (k->type == ST_CFG_PERIODS) {
        st_period_config_t tmp[ST_CONFIG_MAX_PERIODS];
        int n = 0, before = L->e->n;
        load_periods(L, v, k->key, tmp, &n);
        if (L->e->n != before) return;
        memset(L->c->schema_config.configs, 0, sizeof L->c->schema_config.configs);
        memcpy(L->c->schema_config.configs, tmp, (size_t)n * sizeof tmp[0]);
        L->c->schema_config.nconfigs = n;
        return;
    }
    if (v->type != YAML_SCALAR_NODE) {
        errs_add(L->e, line_of(v), k->key, "expected a single value (%s), got a %s",
                 st_cfg_type_name(k->type), v->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return;
    }
    char msg[512];
    if (apply_scalar(k, L->c, (const char *)v->data.scalar.value, v->data.scalar.length, is_null(v), msg,
                     sizeof msg) < 0)
        errs_add(L->e, line_of(v), k->key, "%s", msg);
}

/* Byte offset of a libyaml mark (its index counts characters, so walk lines and UTF-8 columns). */
static size_t mark_offset(const char *s, size_t n, yaml_mark_t m)
{
    size_t off = 0, line = 0;
    while (off < n && line < m.line) {
        if (s[off] == '\n') line++;
        off++;
    }
    for (size_t col = 0; off < n && col < m.column; col++) {
        unsigned char ch = (unsigned char)s[off++];
        if (ch >= 0xC0)
            while (off < n && ((unsigned char)s[off] & 0xC0) == 0x80) off++;
    }
    return off;
}

/* Keeps "lifecycle:" verbatim for the lifecycle module (see config.h). */
static void keep_lifecycle(loader_t *L, yaml_node_t *k, yaml_node_t *v)
{
    size_t a = mark_offset(L->src, L->srcn, v->start_mark), b = mark_offset(L->src, L->srcn, v->end_mark);
    size_t pad = v->start_mark.column;
    if (is_null(v)) return;
    if (b < a || b - a + pad >= sizeof L->c->lifecycle.text) {
        errs_add(L->e, line_of(k), "lifecycle", "section too large (max %zu bytes)", sizeof L->c->lifecycle.text - 1);
        return;
    }
    memset(L->c->lifecycle.text, ' ', pad);
    memcpy(L->c->lifecycle.text + pad, L->src + a, b - a);
    L->c->lifecycle.text[pad + b - a] = '\0';
    L->c->lifecycle.line = (int)v->start_mark.line + 1;
    snprintf(L->c->lifecycle.file, sizeof L->c->lifecycle.file, "%s", L->e->file ? L->e->file : "config");
}

static void walk_mapping(loader_t *L, yaml_node_t *m, const char *prefix)
{
    for (yaml_node_pair_t *pr = m->data.mapping.pairs.start; pr < m->data.mapping.pairs.top; pr++) {
        yaml_node_t *k = yaml_document_get_node(L->doc, pr->key);
        yaml_node_t *v = yaml_document_get_node(L->doc, pr->value);
        if (k == NULL || v == NULL) continue;
        if (k->type != YAML_SCALAR_NODE) {
            errs_add(L->e, line_of(k), prefix[0] ? prefix : NULL, "mapping keys must be scalars");
            continue;
        }
        const char *ks = (const char *)k->data.scalar.value;
        size_t kn = k->data.scalar.length;
        if (prefix[0] == '\0' && kn == 9 && memcmp(ks, "lifecycle", 9) == 0) {
            if (L->c->lifecycle.line != 0) {
                errs_add(L->e, line_of(k), "lifecycle", "duplicate key");
                continue;
            }
            keep_lifecycle(L, k, v);
            continue;
        }
        char path[224];
        join_path(path, sizeof path, prefix, ks, kn);
        bool dotted = memchr(ks, '.', kn) != NULL;
        size_t pn = strlen(path);
        const st_cfg_key_t *row = dotted ? NULL : st_cfg_find(path, pn);
        if (row != NULL) {
            size_t idx = (size_t)(row - st_cfg_keys);
            if (L->key_line[idx] != 0) {
                errs_add(L->e, line_of(k), path, "duplicate key (first set on line %zu)", L->key_line[idx]);
                continue;
            }
            L->key_line[idx] = line_of(k);
            apply_node(L, row, v);
            continue;
        }
        if (!dotted && st_cfg_is_section(path, pn)) {
            int i;
            for (i = 0; i < L->nsections; i++)
                if (strcmp(L->sections[i].path, path) == 0) break;
            if (i < L->nsections) {
                errs_add(L->e, line_of(k), path, "duplicate key (first set on line %zu)",
                         L->sections[i].line);
                continue;
            }
            if (L->nsections < (int)(sizeof L->sections / sizeof L->sections[0]) &&
                pn < sizeof L->sections[0].path) {
                strcpy(L->sections[L->nsections].path, path);
                L->sections[L->nsections++].line = line_of(k);
            }
            if (v->type == YAML_MAPPING_NODE)
                walk_mapping(L, v, path);
            else if (!is_null(v))
                errs_add(L->e, line_of(v), path, "expected a mapping");
            continue;
        }
        if (dotted) {
            errs_add(L->e, line_of(k), path, "unknown key (dotted keys are not supported: nest the mapping)");
            continue;
        }
        char sug[128];
        if (L->e->n < MAX_ERRORS && st_cfg_suggest(path, pn, sug, sizeof sug) != NULL)
            errs_add(L->e, line_of(k), path, "unknown key (did you mean \"%s\"?)", sug);
        else
            errs_add(L->e, line_of(k), path, "unknown key");
    }
}

/* ---- derivation and cross-field checks ---- */

static const struct {
    size_t off;
    const char *key;
    const char *sub;
} derived_dirs[] = {
    {offsetof(st_config_t, ingester.wal.dir), "ingester.wal.dir", "wal"},
    {offsetof(st_config_t, storage_config.filesystem.directory), "storage_config.filesystem.directory",
     "chunks"},
    {offsetof(st_config_t, storage_config.lmdb.directory), "storage_config.lmdb.directory", "index"},
};
_Static_assert(sizeof(((st_config_t *)0)->ingester.wal.dir) == 1024, "dir size");

/* Writes "<prefix>/<sub>" into out (1024 bytes); false when it does not fit. */
static bool derive_dir(const char *prefix, const char *sub, char *out)
{
    size_t pl = strlen(prefix);
    while (pl > 1 && prefix[pl - 1] == '/') pl--;
    bool slash = !(pl == 1 && prefix[0] == '/');
    size_t need = pl + (slash ? 1 : 0) + strlen(sub);
    if (need >= 1024) return false;
    memset(out, 0, 1024);
    memcpy(out, prefix, pl);
    if (slash) out[pl] = '/';
    strcpy(out + pl + (slash ? 1 : 0), sub);
    return true;
}

static size_t line_for(const size_t *key_line, const char *key)
{
    if (key_line == NULL) return 0;
    const st_cfg_key_t *k = st_cfg_find(key, strlen(key));
    return k ? key_line[k - st_cfg_keys] : 0;
}

/* server.http_tls_config: cert and key together, files readable, a CA file for the Verify types. */
static void check_tls(const st_config_t *c, errs_t *e, const size_t *key_line)
{
    static const char *const keys[] = {"server.http_tls_config.cert_file", "server.http_tls_config.key_file",
                                       "server.http_tls_config.client_ca_file"};
    const char *const vals[] = {c->server.http_tls_config.cert_file, c->server.http_tls_config.key_file,
                                c->server.http_tls_config.client_ca_file};
    const char *auth = c->server.http_tls_config.client_auth_type;
    bool on = vals[0][0] || vals[1][0];
    /* a missing key has no line: report at the line of the one that is set */
    if (on && !vals[0][0])
        errs_add(e, line_for(key_line, keys[1]), keys[0], "required when %s is set", keys[1]);
    if (on && !vals[1][0])
        errs_add(e, line_for(key_line, keys[0]), keys[1], "required when %s is set", keys[0]);
    for (size_t i = 0; i < 3; i++) {
        if (vals[i][0] && access(vals[i], R_OK) != 0)
            errs_add(e, line_for(key_line, keys[i]), keys[i], "cannot read \"%s\": %s", vals[i],
                     strerror(errno));
    }
    const char *ak = "server.http_tls_config.client_auth_type";
    if (strcmp(auth, "NoClientCert") != 0 && !on)
        errs_add(e, line_for(key_line, ak), ak,
                 "%s needs TLS (server.http_tls_config.cert_file and key_file)", auth);
    else if (vals[2][0] && !on)
        errs_add(e, line_for(key_line, keys[2]), keys[2],
                 "needs TLS (server.http_tls_config.cert_file and key_file)");
    bool verify =
        strcmp(auth, "VerifyClientCertIfGiven") == 0 || strcmp(auth, "RequireAndVerifyClientCert") == 0;
    if (on && verify && !vals[2][0])
        errs_add(e, line_for(key_line, ak), keys[2], "required when client_auth_type is %s", auth);
}

static void finish_int(st_config_t *c, errs_t *e, const size_t *key_line, const size_t *period_line)
{
    check_tls(c, e, key_line);
    for (size_t i = 0; i < sizeof derived_dirs / sizeof derived_dirs[0]; i++) {
        char *dir = (char *)c + derived_dirs[i].off;
        if (dir[0] != '\0') continue;
        if (!derive_dir(c->common.path_prefix, derived_dirs[i].sub, dir))
            errs_add(e, line_for(key_line, "common.path_prefix"), "common.path_prefix",
                     "too long to derive %s", derived_dirs[i].key);
    }
    if (c->ingester.chunk_target_size < c->ingester.chunk_block_size) {
        size_t line = line_for(key_line, "ingester.chunk_target_size");
        if (line == 0) line = line_for(key_line, "ingester.chunk_block_size");
        errs_add(e, line, "ingester.chunk_target_size", "must be >= ingester.chunk_block_size (%zu < %zu)",
                 c->ingester.chunk_target_size, c->ingester.chunk_block_size);
    }
    int n = c->schema_config.nconfigs;
    if (n < 1 || n > ST_CONFIG_MAX_PERIODS) {
        if (n < 1)
            errs_add(e, line_for(key_line, "schema_config.configs"), "schema_config.configs",
                     "at least one period is required");
        else
            errs_add(e, line_for(key_line, "schema_config.configs"), "schema_config.configs",
                     "too many periods (max %d)", ST_CONFIG_MAX_PERIODS);
        return;
    }
    for (int i = 1; i < n; i++) {
        const st_period_config_t *a = &c->schema_config.configs[i - 1], *b = &c->schema_config.configs[i];
        if (b->from_day > a->from_day) continue;
        char da[32], db[32], key[64];
        st_cfg_format_date(a->from_day, da);
        st_cfg_format_date(b->from_day, db);
        snprintf(key, sizeof key, "schema_config.configs[%d].from", i);
        errs_add(e, period_line ? period_line[i] : 0, key, "dates must be ascending (%s is not after %s)", db,
                 da);
    }
}

/* ---- public API ---- */

/* Table defaults only: derived directories stay empty. */
static void defaults_raw(st_config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        char msg[512];
        int rc;
        if (k->type == ST_CFG_PERIODS) {
            rc = st_config_set(c, k->key, k->def, msg, sizeof msg);
        } else {
            rc = apply_scalar(k, c, k->def, strlen(k->def), false, msg, sizeof msg);
        }
        if (rc != 0) fprintf(stderr, "config: default of %s: %s\n", k->key, msg);
        ST_ASSERT(rc == 0);
    }
}

void st_config_defaults(st_config_t *c)
{
    defaults_raw(c);
    for (size_t i = 0; i < sizeof derived_dirs / sizeof derived_dirs[0]; i++)
        ST_ASSERT(derive_dir(c->common.path_prefix, derived_dirs[i].sub, (char *)c + derived_dirs[i].off));
}

int st_config_finish(st_config_t *c, char *err, size_t errsz)
{
    errs_t e = {NULL, ST_BUF_INIT, 0, false};
    finish_int(c, &e, NULL, NULL);
    return errs_finish(&e, err, errsz);
}

/* Parses text (n bytes) with libyaml into doc; on failure reports the problem and returns false. */
static bool parse_doc(yaml_parser_t *p, yaml_document_t *doc, const char *text, size_t n, errs_t *e,
                      const char *key)
{
    if (yaml_parser_load(p, doc)) return true;
    size_t line = p->problem_mark.line + 1;
    if (p->error == YAML_READER_ERROR) {
        line = 1;
        for (size_t i = 0; i < p->problem_offset && i < n; i++) line += text[i] == '\n';
    }
    if (p->error == YAML_MEMORY_ERROR) {
        e->oom = true;
    } else if (p->context != NULL) {
        errs_add(e, line, key, "%s: %s", p->context, p->problem ? p->problem : "syntax error");
    } else {
        errs_add(e, line, key, "%s", p->problem ? p->problem : "syntax error");
    }
    return false;
}

/* libyaml's scanner does O(flow depth) work per token, so "[[[[..." is quadratic; a first pass over
 * events stops at MAX_DEPTH nested collections before yaml_parser_load builds anything. Syntax errors
 * are left to the real load. Returns false (error added) when too deep. */
static bool check_depth(const char *text, size_t n, errs_t *e)
{
    yaml_parser_t p;
    yaml_event_t ev;
    bool ok = true;
    int depth = 0;
    if (!yaml_parser_initialize(&p)) {
        e->oom = true;
        return false;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, n);
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) break;
        yaml_event_type_t t = ev.type;
        size_t line = ev.start_mark.line + 1;
        yaml_event_delete(&ev);
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > MAX_DEPTH) {
                errs_add(e, line, NULL, "nested deeper than %d levels", MAX_DEPTH);
                ok = false;
                break;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        } else if (t == YAML_STREAM_END_EVENT) {
            break;
        }
    }
    yaml_parser_delete(&p);
    return ok;
}

int st_config_load_string(st_config_t *c, const char *name, const char *yaml, size_t n, unsigned flags,
                          char *err, size_t errsz)
{
    errs_t e = {name ? name : "config", ST_BUF_INIT, 0, false};
    char *expanded = NULL;
    loader_t *L = calloc(1, sizeof *L);
    st_config_t *t = malloc(sizeof *t);
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    if (L == NULL || t == NULL) {
        e.oom = true;
        goto out;
    }
    if (n > MAX_FILE_BYTES) {
        errs_add(&e, 0, NULL, "larger than %u bytes", MAX_FILE_BYTES);
        goto out;
    }
    if (flags & ST_CONFIG_EXPAND_ENV) {
        expanded = st_config_expand_env(yaml, n, &n);
        if (expanded == NULL) {
            e.oom = true;
            goto out;
        }
        yaml = expanded;
        if (n > MAX_FILE_BYTES) {
            errs_add(&e, 0, NULL, "larger than %u bytes after ${VAR} expansion", MAX_FILE_BYTES);
            goto out;
        }
    }
    defaults_raw(t);
    L->e = &e;
    L->doc = &doc;
    L->c = t;
    L->src = yaml;
    L->srcn = n;
    if (!check_depth(yaml, n, &e)) goto out;
    if (!yaml_parser_initialize(&parser)) {
        e.oom = true;
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, n);
    if (!parse_doc(&parser, &doc, yaml, n, &e, NULL)) goto out;
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL && root->type == YAML_MAPPING_NODE) {
        walk_mapping(L, root, "");
    } else if (root != NULL && !is_null(root)) {
        errs_add(&e, line_of(root), NULL, "expected a mapping of keys at the top level");
    }
    if (root != NULL) {
        yaml_document_t doc2;
        if (parse_doc(&parser, &doc2, yaml, n, &e, NULL)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
            if (r2 != NULL) errs_add(&e, line_of(r2), NULL, "only one YAML document is supported");
            yaml_document_delete(&doc2);
        }
    }
    if (e.n == 0) finish_int(t, &e, L->key_line, L->period_line);
out:
    if (have_doc) yaml_document_delete(&doc);
    if (have_parser) yaml_parser_delete(&parser);
    int rc = errs_finish(&e, err, errsz);
    if (rc == 0) memcpy(c, t, sizeof *t);
    free(t);
    free(L);
    free(expanded);
    return rc;
}

int st_config_load_file(st_config_t *c, const char *path, unsigned flags, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int rc = -errno;
        if (err != NULL && errsz > 0) snprintf(err, errsz, "%s: %s", path, strerror(-rc));
        return rc;
    }
    st_buf_t b = ST_BUF_INIT;
    char chunk[8192];
    size_t got;
    int rc = 0;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + got > MAX_FILE_BYTES) {
            rc = -EFBIG;
            break;
        }
        if (st_buf_append(&b, chunk, got) < 0) {
            rc = -ENOMEM;
            break;
        }
    }
    if (rc == 0 && ferror(f)) rc = -EIO;
    fclose(f);
    if (rc != 0) {
        if (err != NULL && errsz > 0) snprintf(err, errsz, "%s: %s", path, strerror(-rc));
        st_buf_free(&b);
        return rc;
    }
    rc = st_config_load_string(c, path, b.data ? b.data : "", b.len, flags, err, errsz);
    st_buf_free(&b);
    return rc;
}

int st_config_load(st_config_t *c, const char *path, char *err, size_t errsz)
{
    return st_config_load_file(c, path, 0, err, errsz);
}

/* Parses a YAML flow value (schema_config.configs) for st_config_set. */
static void set_periods(st_config_t *c, const st_cfg_key_t *k, const char *value, errs_t *e)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    loader_t *L = calloc(1, sizeof *L);
    if (L == NULL || !yaml_parser_initialize(&parser)) {
        free(L);
        e->oom = true;
        return;
    }
    size_t n = strlen(value);
    yaml_parser_set_input_string(&parser, (const unsigned char *)value, n);
    if (check_depth(value, n, e) && parse_doc(&parser, &doc, value, n, e, k->key)) {
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        st_period_config_t tmp[ST_CONFIG_MAX_PERIODS];
        int np = 0, before = e->n;
        L->e = e;
        L->doc = &doc;
        L->c = c;
        if (root == NULL)
            errs_add(e, 0, k->key, "missing value");
        else
            load_periods(L, root, k->key, tmp, &np);
        if (e->n == before && !e->oom) {
            memset(c->schema_config.configs, 0, sizeof c->schema_config.configs);
            memcpy(c->schema_config.configs, tmp, (size_t)np * sizeof tmp[0]);
            c->schema_config.nconfigs = np;
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    free(L);
}

int st_config_set(st_config_t *c, const char *key, const char *value, char *err, size_t errsz)
{
    errs_t e = {NULL, ST_BUF_INIT, 0, false};
    size_t kn = strlen(key);
    const st_cfg_key_t *k = st_cfg_find(key, kn);
    if (k == NULL) {
        char sug[128], shown[224];
        join_path(shown, sizeof shown, NULL, key, kn);
        if (st_cfg_is_section(key, kn))
            errs_add(&e, 0, shown, "is a section, not a key (set one of its keys)");
        else if (st_cfg_suggest(key, kn, sug, sizeof sug) != NULL)
            errs_add(&e, 0, shown, "unknown key (did you mean \"%s\"?)", sug);
        else
            errs_add(&e, 0, shown, "unknown key");
        return errs_finish(&e, err, errsz);
    }
    if (k->type == ST_CFG_PERIODS) {
        set_periods(c, k, value, &e);
        return errs_finish(&e, err, errsz);
    }
    char old_dirs[3][1024];
    bool prefix = strcmp(k->key, "common.path_prefix") == 0;
    if (prefix) {
        for (int i = 0; i < 3; i++)
            if (!derive_dir(c->common.path_prefix, derived_dirs[i].sub, old_dirs[i])) old_dirs[i][0] = '\0';
    }
    char msg[512];
    if (apply_scalar(k, c, value, strlen(value), false, msg, sizeof msg) < 0) {
        errs_add(&e, 0, k->key, "%s", msg);
        return errs_finish(&e, err, errsz);
    }
    if (prefix) {
        for (int i = 0; i < 3; i++) {
            char *dir = (char *)c + derived_dirs[i].off;
            if (old_dirs[i][0] != '\0' && strcmp(dir, old_dirs[i]) == 0 &&
                !derive_dir(c->common.path_prefix, derived_dirs[i].sub, dir))
                memset(dir, 0, 1024); /* too long: st_config_finish reports it */
        }
    }
    return errs_finish(&e, err, errsz);
}
