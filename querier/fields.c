/* fields.c: field extraction and type detection for /loki/api/v1/detected_fields: a line is read as
 * a JSON object (nested keys flattened with '_' the way Loki's `| json` names them, with the original
 * key path kept) or else as logfmt, and each value is typed with Loki's order of Go parsers (int,
 * float, boolean, duration, bytes, string). */
#include "querier/meta_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- types --------------------------------------------------------------------------------------- */

static bool go_parse_int(st_str_t v)
{
    size_t i = v.n && (v.p[0] == '+' || v.p[0] == '-') ? 1 : 0;
    if (i == v.n) return false;
    uint64_t acc = 0;
    for (size_t k = i; k < v.n; k++) {
        if (v.p[k] < '0' || v.p[k] > '9') return false;
        uint64_t d = (uint64_t)(v.p[k] - '0');
        if (acc > (UINT64_MAX - d) / 10) return false;
        acc = acc * 10 + d;
    }
    uint64_t lim = v.p[0] == '-' ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    return acc <= lim;
}

static bool go_parse_float(st_str_t v)
{
    if (v.n == 0 || v.n > 64) return false;
    char buf[72];
    memcpy(buf, v.p, v.n);
    buf[v.n] = '\0';
    /* strtod skips leading space and reads hex without an exponent; Go's ParseFloat does neither */
    if (isspace((unsigned char)buf[0])) return false;
    const char *s = buf + (buf[0] == '+' || buf[0] == '-');
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    if (hex && strpbrk(s, "pP") == NULL) return false;
    if (strncasecmp(s, "inf", 3) == 0 || strncasecmp(s, "nan", 3) == 0) {
        return strcasecmp(s, "inf") == 0 || strcasecmp(s, "infinity") == 0 || strcasecmp(s, "nan") == 0;
    }
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    (void)d;
    if (*end != '\0' || end == buf) return false;
    return errno != ERANGE || d == 0 || !isinf(d);
}

static bool go_parse_bool(st_str_t v)
{
    static const char *const ok[] = {"1", "t", "T", "TRUE",  "true",  "True",
                                     "0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (st_str_eqc(v, ok[i])) return true;
    return false;
}

st_field_type_t st_field_type_of(st_str_t v)
{
    if (go_parse_int(v)) return ST_FIELD_INT;
    if (go_parse_float(v)) return ST_FIELD_FLOAT;
    if (go_parse_bool(v)) return ST_FIELD_BOOLEAN;
    int64_t ns;
    if (st_parse_go_duration(v, &ns) == 0) return ST_FIELD_DURATION;
    uint64_t b;
    if (v.n && st_logql_parse_bytes(v, &b) == 0) return ST_FIELD_BYTES;
    return ST_FIELD_STRING;
}

const char *st_field_type_name(st_field_type_t t)
{
    switch (t) {
    case ST_FIELD_INT: return "int";
    case ST_FIELD_FLOAT: return "float";
    case ST_FIELD_BOOLEAN: return "boolean";
    case ST_FIELD_DURATION: return "duration";
    case ST_FIELD_BYTES: return "bytes";
    case ST_FIELD_STRING: break;
    }
    return "string";
}

/* ---- names ---------------------------------------------------------------------------------------- */

static st_str_t trim_space(st_str_t s)
{
    while (s.n && isspace((unsigned char)s.p[0])) s.p++, s.n--;
    while (s.n && isspace((unsigned char)s.p[s.n - 1])) s.n--;
    return s;
}

/* Loki's appendSanitized: '_' before a leading digit (first part only), every rune outside
 * [A-Za-z0-9_] becomes one '_'. */
static int append_sanitized(st_buf_t *out, st_str_t key)
{
    key = trim_space(key);
    if (key.n == 0) return 0;
    if (out->len == 0 && key.p[0] >= '0' && key.p[0] <= '9') ST_TRY(st_buf_putc(out, '_'));
    for (size_t i = 0; i < key.n; i++) {
        unsigned char c = (unsigned char)key.p[i];
        if (isalnum(c) || c == '_') {
            ST_TRY(st_buf_putc(out, (char)c));
        } else {
            ST_TRY(st_buf_putc(out, '_'));
            if (c >= 0xc0) /* skip the continuation bytes of a multi-byte rune */
                while (i + 1 < key.n && ((unsigned char)key.p[i + 1] & 0xc0) == 0x80) i++;
        }
    }
    return 0;
}

/* ---- JSON --------------------------------------------------------------------------------------- */

typedef struct {
    st_buf_t names; /* NUL-separated */
    st_buf_t values;
    st_buf_t paths; /* per field: "\x01"-joined original keys */
    size_t n;
    size_t *off; /* 3 offsets per field */
    size_t cap;
} collected_t;

static void collected_free(collected_t *c)
{
    st_buf_free(&c->names);
    st_buf_free(&c->values);
    st_buf_free(&c->paths);
    free(c->off);
}

#define MAX_PATH 64

typedef struct {
    st_json_t j;
    st_buf_t key, val, tmp;
    st_buf_t *parts; /* original keys of the current path */
    size_t depth;
    const st_labels_t *stream;
    collected_t *out;
} jctx_t;

static int collect(jctx_t *x, st_str_t value)
{
    collected_t *c = x->out;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        size_t *o = realloc(c->off, cap * 3 * sizeof *o);
        if (o == NULL) return -ENOMEM;
        c->off = o;
        c->cap = cap;
    }
    /* name: sanitized parts joined by '_' */
    st_buf_t *t = &x->tmp;
    st_buf_reset(t);
    for (size_t i = 0; i < x->depth; i++) {
        st_str_t part = st_str(x->parts[i].data, x->parts[i].len);
        if (trim_space(part).n == 0) continue;
        if (t->len) ST_TRY(st_buf_putc(t, '_'));
        ST_TRY(append_sanitized(t, part));
    }
    if (t->len == 0) return 0;
    if (x->stream && st_labels_get(x->stream, st_str(t->data, t->len), NULL))
        ST_TRY(st_buf_puts(t, "_extracted"));
    c->off[c->n * 3] = c->names.len;
    ST_TRY(st_buf_append(&c->names, t->data, t->len));
    ST_TRY(st_buf_putc(&c->names, '\0'));
    c->off[c->n * 3 + 1] = c->values.len;
    ST_TRY(st_buf_append(&c->values, value.p, value.n));
    ST_TRY(st_buf_putc(&c->values, '\0'));
    c->off[c->n * 3 + 2] = c->paths.len;
    for (size_t i = 0; i < x->depth; i++) {
        if (i) ST_TRY(st_buf_putc(&c->paths, '\x01'));
        ST_TRY(st_buf_append(&c->paths, x->parts[i].data, x->parts[i].len));
    }
    ST_TRY(st_buf_putc(&c->paths, '\0'));
    c->n++;
    return 0;
}

static int walk_object(jctx_t *x)
{
    ST_TRY(st_json_object_begin(&x->j));
    for (;;) {
        st_str_t key;
        int rc = st_json_next_key(&x->j, &key, &x->key);
        if (rc < 0) return rc;
        if (rc == 0) return 0;
        if (x->depth >= MAX_PATH) return ST_EPARSE;
        st_buf_reset(&x->parts[x->depth]);
        ST_TRY(st_buf_append(&x->parts[x->depth], key.p, key.n));
        x->depth++;
        st_str_t v;
        st_json_type_t lit;
        switch (st_json_peek(&x->j)) {
        case ST_JSON_OBJECT: rc = walk_object(x); break;
        case ST_JSON_STRING:
            rc = st_json_string(&x->j, &v, &x->val);
            if (rc == 0) rc = collect(x, v);
            break;
        case ST_JSON_NUMBER:
            rc = st_json_number(&x->j, &v);
            if (rc == 0) rc = collect(x, v);
            break;
        case ST_JSON_TRUE:
        case ST_JSON_FALSE:
            rc = st_json_literal(&x->j, &lit);
            if (rc == 0) rc = collect(x, lit == ST_JSON_TRUE ? st_cstr("true") : st_cstr("false"));
            break;
        default: rc = st_json_skip(&x->j, NULL); break; /* arrays and nulls are not extracted */
        }
        x->depth--;
        if (rc < 0) return rc;
    }
}

static int parse_json(st_str_t line, const st_labels_t *stream, collected_t *out)
{
    jctx_t x;
    memset(&x, 0, sizeof x);
    x.stream = stream;
    x.out = out;
    x.parts = calloc(MAX_PATH, sizeof *x.parts);
    if (x.parts == NULL) return -ENOMEM;
    st_json_init(&x.j, line.p, line.n);
    int rc = st_json_peek(&x.j) == ST_JSON_OBJECT ? walk_object(&x) : ST_EPARSE;
    if (rc == 0) rc = st_json_finish(&x.j);
    for (size_t i = 0; i < MAX_PATH; i++) st_buf_free(&x.parts[i]);
    free(x.parts);
    st_buf_free(&x.key);
    st_buf_free(&x.val);
    st_buf_free(&x.tmp);
    return rc;
}

/* ---- logfmt ------------------------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a quoted logfmt value starting at s[*i] == '"'. */
static int unquote(st_str_t s, size_t *i, st_buf_t *out)
{
    size_t k = *i + 1;
    while (k < s.n) {
        char c = s.p[k];
        if (c == '"') {
            *i = k + 1;
            return 0;
        }
        if (c != '\\') {
            ST_TRY(st_buf_putc(out, c));
            k++;
            continue;
        }
        if (k + 1 >= s.n) return ST_EPARSE;
        char e = s.p[k + 1];
        k += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/': ST_TRY(st_buf_putc(out, e)); break;
        case 'n': ST_TRY(st_buf_putc(out, '\n')); break;
        case 't': ST_TRY(st_buf_putc(out, '\t')); break;
        case 'r': ST_TRY(st_buf_putc(out, '\r')); break;
        case 'b': ST_TRY(st_buf_putc(out, '\b')); break;
        case 'f': ST_TRY(st_buf_putc(out, '\f')); break;
        case 'u': {
            if (k + 4 > s.n) return ST_EPARSE;
            unsigned cp = 0;
            for (int q = 0; q < 4; q++) {
                int h = hexval(s.p[k + q]);
                if (h < 0) return ST_EPARSE;
                cp = cp << 4 | (unsigned)h;
            }
            k += 4;
            char u[4];
            size_t un = 0;
            if (cp < 0x80)
                u[un++] = (char)cp;
            else if (cp < 0x800) {
                u[un++] = (char)(0xc0 | cp >> 6);
                u[un++] = (char)(0x80 | (cp & 0x3f));
            } else {
                u[un++] = (char)(0xe0 | cp >> 12);
                u[un++] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[un++] = (char)(0x80 | (cp & 0x3f));
            }
            ST_TRY(st_buf_append(out, u, un));
            break;
        }
        default: return ST_EPARSE;
        }
    }
    return ST_EPARSE; /* unterminated */
}

static int parse_logfmt(st_str_t s, const st_labels_t *stream, collected_t *out)
{
    jctx_t x; /* only its buffers and collect() are used */
    memset(&x, 0, sizeof x);
    x.stream = stream;
    x.out = out;
    st_buf_t part = ST_BUF_INIT;
    x.parts = &part;
    int rc = 0;
    size_t i = 0;
    while (i < s.n && rc == 0) {
        while (i < s.n && (unsigned char)s.p[i] <= ' ') i++;
        size_t ks = i;
        while (i < s.n && (unsigned char)s.p[i] > ' ' && s.p[i] != '=') {
            if (s.p[i] == '"') {
                rc = ST_EPARSE;
                break;
            }
            i++;
        }
        if (rc < 0) break;
        st_str_t key = st_str(s.p + ks, i - ks);
        if (i >= s.n || s.p[i] != '=') {
            if (key.n == 0 && i < s.n) i++; /* a stray '=' */
            continue;                       /* a key without a value is not extracted */
        }
        i++; /* '=' */
        st_buf_reset(&x.val);
        if (i < s.n && s.p[i] == '"') {
            rc = unquote(s, &i, &x.val);
        } else {
            size_t vs = i;
            while (i < s.n && (unsigned char)s.p[i] > ' ') i++;
            rc = st_buf_append(&x.val, s.p + vs, i - vs);
        }
        if (rc < 0 || x.val.len == 0 || key.n == 0) continue;
        st_buf_reset(&part);
        if ((rc = st_buf_append(&part, key.p, key.n)) < 0) break;
        x.depth = 1;
        rc = collect(&x, st_str(x.val.data, x.val.len));
    }
    st_buf_free(&part);
    st_buf_free(&x.val);
    st_buf_free(&x.tmp);
    return rc;
}

int st_fields_extract(st_str_t line, const st_labels_t *stream, st_field_cb cb, void *arg)
{
    collected_t c;
    memset(&c, 0, sizeof c);
    int kind = ST_FIELDS_JSON;
    int rc = parse_json(line, stream, &c);
    if (rc == -ENOMEM) goto out;
    if (rc < 0) {
        collected_free(&c);
        memset(&c, 0, sizeof c);
        kind = ST_FIELDS_LOGFMT;
        rc = parse_logfmt(line, stream, &c);
        if (rc == -ENOMEM) goto out;
        if (rc < 0) {
            rc = ST_FIELDS_NONE;
            goto out;
        }
    }
    for (size_t i = 0; i < c.n; i++) {
        const char *name = c.names.data + c.off[i * 3];
        const char *val = c.values.data + c.off[i * 3 + 1];
        size_t vlen = strlen(val); /* values never hold NUL: JSON \u0000 is cut here, harmlessly */
        st_str_t path[MAX_PATH];
        size_t np = 0;
        if (kind == ST_FIELDS_JSON) {
            const char *p = c.paths.data + c.off[i * 3 + 2];
            while (np < MAX_PATH) {
                const char *e = strchr(p, '\x01');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                path[np++] = st_str(p, n);
                if (e == NULL) break;
                p = e + 1;
            }
        }
        if ((rc = cb(arg, st_cstr(name), st_str(val, vlen), path, np)) < 0) goto out;
    }
    rc = kind;
out:
    collected_free(&c);
    return rc;
}
