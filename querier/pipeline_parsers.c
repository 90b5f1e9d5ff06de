/* pipeline_parsers.c: the label-extracting stages of a LogQL pipeline with Loki's semantics: json
 * (flatten every scalar, or extract paths), logfmt (go-logfmt's decoder, --strict, --keep-empty, or
 * listed keys), regexp (named groups), pattern (captures between literals) and unpack (Promtail's
 * pack format). JSON is walked with common/json.h's pull parser; values are views into the line
 * unless they had to be decoded, in which case they are copied into the per-entry arena. */
#include "querier/pipeline_int.h"

#include "common/err.h"
#include "common/json.h"
#include "querier/golike.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static const char ERR_JSON[] = "JSONParserErr";
static const char ERR_LOGFMT[] = "LogfmtParserErr";

/* jsonparser's message for a failure of our strict parser. */
static const char *json_details(const st_json_t *j, bool in_value)
{
    const char *e = j->err ? j->err : "";
    if (strcmp(e, "expected object") == 0 || strcmp(e, "expected string object key") == 0 ||
        strcmp(e, "expected , or } after object member") == 0)
        return "Value looks like object, but can't find closing '}' symbol";
    if (strcmp(e, "unexpected end of JSON input") == 0)
        return j->first[j->depth] || in_value ? "Malformed JSON error"
                                              : "Value is array, but can't find closing ']' symbol";
    if (strncmp(e, "unexpected end of JSON input in string", 38) == 0)
        return "Value is string, but can't find closing '\"' symbol";
    if (strstr(e, "escape") != NULL) return "Encountered an invalid escape sequence in a string";
    if (strstr(e, "literal") != NULL || strstr(e, "beginning of value") != NULL) return "Unknown value type";
    return "Malformed JSON error";
}

static void json_fail(st_pipeline_t *p, const st_json_t *j, bool in_value)
{
    p->lb.err = st_cstr(ERR_JSON);
    p->lb.details = st_cstr(json_details(j, in_value));
}

static bool in_buf(const st_buf_t *b, st_str_t s)
{
    return b->data != NULL && s.p >= b->data && s.p < b->data + b->cap;
}

/* Skips one value without allocating (st_json_skip would allocate for escaped strings). */
static int js_skip(st_json_t *j, st_buf_t *scratch, st_str_t *raw)
{
    const char *from;
    st_json_type_t t = st_json_peek(j);
    from = j->p;
    st_str_t tmp;
    int rc;
    switch (t) {
    case ST_JSON_OBJECT:
        if ((rc = st_json_object_begin(j)) < 0) return rc;
        while ((rc = st_json_next_key(j, &tmp, scratch)) == 1)
            if ((rc = js_skip(j, scratch, NULL)) < 0) return rc;
        break;
    case ST_JSON_ARRAY:
        if ((rc = st_json_array_begin(j)) < 0) return rc;
        while ((rc = st_json_next_elem(j)) == 1)
            if ((rc = js_skip(j, scratch, NULL)) < 0) return rc;
        break;
    case ST_JSON_STRING: rc = st_json_string(j, &tmp, scratch); break;
    case ST_JSON_NUMBER: rc = st_json_number(j, &tmp); break;
    case ST_JSON_TRUE:
    case ST_JSON_FALSE:
    case ST_JSON_NULL: rc = st_json_literal(j, &t); break;
    case ST_JSON_END: rc = st_json_fail(j, "unexpected end of JSON input"); break;
    default: rc = ST_EPARSE; break;
    }
    if (rc < 0) return rc;
    if (raw) *raw = st_str(from, (size_t)(j->p - from));
    return 0;
}

/* ---- json (every field) -------------------------------------------------------------------------------- */

/* Appends the sanitized key to the joined prefix in out (Loki's buildSanitizedPrefixFromBuffer). */
static int join_key(st_buf_t *out, st_str_t key)
{
    st_str_t t = st_go_trim_space(key);
    if (t.n == 0) return 0;
    bool empty = out->len == 0;
    if (!empty) ST_TRY(st_buf_putc(out, '_'));
    return pl_sanitize(out, t, empty);
}

/* The label a JSON scalar at key (under the current prefix) becomes: 1 with *name and *idx (for
 * pl_lb_set_at) when it is to be set, 0 when skipped (blank name, already extracted, not wanted). */
static int json_name(st_pipeline_t *p, st_str_t key, bool key_scratch, st_str_t *out, int *idx)
{
    pl_lb_t *lb = &p->lb;
    st_str_t name;
    bool top = p->pfx.len == 0;
    if (top && pl_name_clean(key)) {
        name = key;
    } else {
        st_buf_reset(&p->keybuf);
        ST_TRY(st_buf_append(&p->keybuf, p->pfx.data, p->pfx.len));
        ST_TRY(join_key(&p->keybuf, key));
        if (p->keybuf.len == 0) return 0; /* blank name: Loki would add a label named "" */
        name = st_str(p->keybuf.data, p->keybuf.len);
    }
    if (pl_lb_base_has(lb, name) || pl_lb_md_has(lb, name)) {
        if (p->want != NULL && !p->want->want_ext) return 0;
        st_buf_reset(&p->keybuf);
        ST_TRY(st_buf_append(&p->keybuf, p->pfx.data, p->pfx.len));
        st_buf_t *k2 = &p->tmpl_out;
        st_buf_reset(k2);
        ST_TRY(st_buf_append(k2, key.p, key.n));
        ST_TRY(st_buf_puts(k2, "_extracted"));
        ST_TRY(join_key(&p->keybuf, st_str(k2->data, k2->len)));
        name = st_str(p->keybuf.data, p->keybuf.len);
    }
    if (p->want != NULL && !pl_wanted(p, name)) return 0;
    int i = pl_lb_find(lb, name);
    if (i >= 0 ? (lb->v[i].flags & PL_EXTRACTED) != 0 : pl_lb_ext_deleted(lb, name)) return 0;
    if (in_buf(&p->keybuf, name) || key_scratch) {
        name = pl_dup(p, name);
        if (name.p == NULL) return -ENOMEM;
    }
    *out = name;
    *idx = i;
    return 1;
}

static int json_set(st_pipeline_t *p, st_str_t name, int idx, st_str_t value)
{
    ST_TRY(pl_lb_set_at(&p->lb, idx, name, value));
    if (p->want != NULL) p->found++;
    return 0;
}

/* Walks one object; returns 0, -ENOMEM, 1 after recording a parse error, 2 when a targeted parse
 * has found every wanted name. */
static int json_object(st_pipeline_t *p, st_json_t *j)
{
    st_str_t key, v, name;
    int rc, idx;
    if (st_json_object_begin(j) < 0) goto bad;
    while ((rc = st_json_next_key(j, &key, &p->scratch2)) == 1) {
        bool ks = in_buf(&p->scratch2, key);
        st_json_type_t t = st_json_peek(j);
        switch (t) {
        case ST_JSON_STRING: {
            int e = json_name(p, key, ks, &name, &idx);
            if (e < 0) return e;
            if (st_json_string(j, &v, &p->scratch) < 0) goto bad_value;
            if (e == 0) break;
            v = pl_fix_runes(p, v);
            if (v.p == NULL) return -ENOMEM;
            if (in_buf(&p->scratch, v) && (v = pl_dup(p, v)).p == NULL) return -ENOMEM;
            ST_TRY(json_set(p, name, idx, v));
            break;
        }
        case ST_JSON_NUMBER: {
            if (st_json_number(j, &v) < 0) goto bad_value;
            int e = json_name(p, key, ks, &name, &idx);
            if (e < 0) return e;
            if (e == 1) ST_TRY(json_set(p, name, idx, v));
            break;
        }
        case ST_JSON_TRUE:
        case ST_JSON_FALSE: {
            if (st_json_literal(j, &t) < 0) goto bad_value;
            int e = json_name(p, key, ks, &name, &idx);
            if (e < 0) return e;
            if (e == 1) ST_TRY(json_set(p, name, idx, t == ST_JSON_TRUE ? ST_STR("true") : ST_STR("false")));
            break;
        }
        case ST_JSON_NULL:
            if (st_json_literal(j, &t) < 0) goto bad_value;
            break;
        case ST_JSON_OBJECT: {
            size_t save = p->pfx.len;
            ST_TRY(join_key(&p->pfx, key));
            rc = json_object(p, j);
            p->pfx.len = save;
            if (rc != 0) return rc;
            break;
        }
        case ST_JSON_ARRAY:
            if (js_skip(j, &p->scratch, NULL) < 0) goto bad_value;
            break;
        case ST_JSON_END: st_json_fail(j, "unexpected end of JSON input"); goto bad_value;
        default: goto bad_value;
        }
        if (pl_all_found(p)) return 2;
    }
    if (rc == 0) return 0;
bad:
    json_fail(p, j, false);
    return 1;
bad_value:
    json_fail(p, j, true);
    return 1;
}

int pl_json(st_pipeline_t *p, const st_logql_stage_t *s)
{
    (void)s;
    st_json_t j;
    st_json_init(&j, p->line.p, p->line.n);
    st_buf_reset(&p->pfx);
    if (st_json_peek(&j) != ST_JSON_OBJECT) {
        p->lb.err = st_cstr(ERR_JSON);
        p->lb.details = st_cstr("Value looks like object, but can't find closing '}' symbol");
        return 0;
    }
    int rc = json_object(p, &j);
    return rc < 0 ? rc : 0;
}

/* ---- json with parameters -------------------------------------------------------------------------------
 */

/* Follows steps from the current value; 1 with *out set when found, 0 when absent, <0 on a syntax
 * error (treated as absent, like jsonparser.EachKey). */
static int json_path(st_pipeline_t *p, st_json_t *j, const st_logql_json_step_t *steps, size_t n,
                     st_str_t *out)
{
    st_json_type_t t = st_json_peek(j);
    if (n == 0) {
        st_str_t v;
        switch (t) {
        case ST_JSON_STRING:
            if (st_json_string(j, &v, &p->scratch) < 0) return -1;
            v = pl_fix_runes(p, v);
            if (v.p == NULL) return -ENOMEM;
            if (in_buf(&p->scratch, v) && (v = pl_dup(p, v)).p == NULL) return -ENOMEM;
            *out = v;
            return 1;
        case ST_JSON_NUMBER:
            if (st_json_number(j, out) < 0) return -1;
            return 1;
        case ST_JSON_TRUE:
        case ST_JSON_FALSE:
            if (st_json_literal(j, &t) < 0) return -1;
            *out = t == ST_JSON_TRUE ? ST_STR("true") : ST_STR("false");
            return 1;
        case ST_JSON_NULL:
            if (st_json_literal(j, &t) < 0) return -1;
            *out = st_str("", 0);
            return 1;
        case ST_JSON_OBJECT:
        case ST_JSON_ARRAY:
            if (js_skip(j, &p->scratch, out) < 0) return -1;
            return 1;
        default: return -1;
        }
    }
    if (steps[0].is_index) {
        if (t != ST_JSON_ARRAY || st_json_array_begin(j) < 0) return 0;
        int64_t i = 0;
        int rc;
        while ((rc = st_json_next_elem(j)) == 1) {
            if (i++ == steps[0].index) return json_path(p, j, steps + 1, n - 1, out);
            if (js_skip(j, &p->scratch, NULL) < 0) return -1;
        }
        return rc < 0 ? -1 : 0;
    }
    if (t != ST_JSON_OBJECT || st_json_object_begin(j) < 0) return 0;
    st_str_t key;
    int rc;
    while ((rc = st_json_next_key(j, &key, &p->scratch2)) == 1) {
        if (st_str_eq(key, steps[0].key)) return json_path(p, j, steps + 1, n - 1, out);
        if (js_skip(j, &p->scratch, NULL) < 0) return -1;
    }
    return rc < 0 ? -1 : 0;
}

int pl_json_expr(st_pipeline_t *p, const st_logql_stage_t *s)
{
    st_str_t line = p->line;
    if (line.n == 0) return 0;
    if (line.p[0] != '"' && line.p[0] != '{' && line.p[0] != '[') {
        p->lb.err = st_cstr(ERR_JSON);
        return 0;
    }
    size_t matches = 0;
    for (size_t i = 0; i < s->json.n; i++) {
        const st_logql_extract_t *x = &s->json.v[i];
        st_json_t j;
        st_json_init(&j, line.p, line.n);
        st_str_t v;
        int rc = json_path(p, &j, x->steps, x->n_steps, &v);
        if (rc == -ENOMEM) return rc;
        if (rc != 1) continue;
        st_str_t key = x->name;
        if (pl_lb_base_has(&p->lb, key) || pl_lb_md_has(&p->lb, key)) {
            char *d = pl_alloc(&p->arena, key.n + 10);
            if (d == NULL) return -ENOMEM;
            memcpy(d, key.p, key.n);
            memcpy(d + key.n, "_extracted", 10);
            key = st_str(d, key.n + 10);
        }
        ST_TRY(pl_lb_set_parsed(&p->lb, key, v));
        matches++;
    }
    if (matches < s->json.n)
        for (size_t i = 0; i < s->json.n; i++)
            if (!pl_lb_get(&p->lb, s->json.v[i].name, NULL))
                ST_TRY(pl_lb_set_parsed(&p->lb, s->json.v[i].name, st_str("", 0)));
    return 0;
}

/* ---- unpack -------------------------------------------------------------------------------------------- */

int pl_unpack(st_pipeline_t *p)
{
    st_str_t line = p->line;
    if (line.n == 0) return 0;
    if (line.p[0] != '{') {
        p->lb.err = st_cstr(ERR_JSON);
        p->lb.details = st_cstr("expecting json object(6), but it is not");
        return 0;
    }
    st_json_t j;
    st_json_init(&j, line.p, line.n);
    bool packed = false;
    st_str_t entry = line, key, v;
    p->nsnap = 0;
    int rc;
    if (st_json_object_begin(&j) < 0) goto bad;
    while ((rc = st_json_next_key(&j, &key, &p->scratch2)) == 1) {
        if (st_json_peek(&j) != ST_JSON_STRING) {
            if (js_skip(&j, &p->scratch, NULL) < 0) goto bad_value;
            continue;
        }
        if (in_buf(&p->scratch2, key) && (key = pl_dup(p, key)).p == NULL) return -ENOMEM;
        if (st_json_string(&j, &v, &p->scratch) < 0) goto bad_value;
        if (st_str_eqc(key, "_entry")) {
            entry = pl_dup(p, v);
            if (entry.p == NULL) return -ENOMEM;
            packed = true;
            continue;
        }
        if (pl_lb_base_has(&p->lb, key) || pl_lb_md_has(&p->lb, key)) {
            char *d = pl_alloc(&p->arena, key.n + 10);
            if (d == NULL) return -ENOMEM;
            memcpy(d, key.p, key.n);
            memcpy(d + key.n, "_extracted", 10);
            key = st_str(d, key.n + 10);
        }
        if (pl_lb_extracted(&p->lb, key)) continue;
        st_str_t name = key;
        if (!pl_name_clean(key)) {
            st_buf_reset(&p->keybuf);
            ST_TRY(pl_sanitize(&p->keybuf, key, true));
            if (p->keybuf.len == 0) continue;
            name = pl_dup(p, st_str(p->keybuf.data, p->keybuf.len));
            if (name.p == NULL) return -ENOMEM;
        }
        v = pl_fix_runes(p, v);
        if (v.p == NULL) return -ENOMEM;
        if (in_buf(&p->scratch, v) && (v = pl_dup(p, v)).p == NULL) return -ENOMEM;
        if (p->nsnap == p->capsnap) {
            size_t cap = p->capsnap ? p->capsnap * 2 : 32;
            st_label_t *nv = realloc(p->snap, cap * sizeof *nv);
            if (nv == NULL) return -ENOMEM;
            p->snap = nv;
            p->capsnap = cap;
        }
        p->snap[p->nsnap++] = (st_label_t){name, v};
    }
    if (rc < 0) goto bad;
    if (packed) {
        for (size_t i = 0; i < p->nsnap; i++)
            ST_TRY(pl_lb_set_parsed(&p->lb, p->snap[i].name, p->snap[i].value));
        p->line = entry;
    }
    p->nsnap = 0;
    return 0;
bad:
    p->nsnap = 0;
    json_fail(p, &j, false);
    return 0;
bad_value:
    p->nsnap = 0;
    json_fail(p, &j, true);
    return 0;
}

/* ---- logfmt ------------------------------------------------------------------------------------------- */

/* go-logfmt's decoder as Loki adapted it (logfmt/decode.go). */
typedef struct {
    const char *line;
    size_t n, pos;
    st_str_t key, value; /* key.p == NULL: no key; value may live in buf */
    bool key_clean;      /* the key is a valid label name as is */
    bool value_hi;       /* the value has bytes >= 0x80 (U+FFFD possible) */
    bool err;
    size_t err_pos;
    char err_msg[40];
} lfdec_t;

static void lf_syntax(lfdec_t *d, const char *msg)
{
    d->err = true;
    d->err_pos = d->pos + 1;
    snprintf(d->err_msg, sizeof d->err_msg, "%s", msg);
}

static void lf_unexpected(lfdec_t *d, char c)
{
    d->err = true;
    d->err_pos = d->pos + 1;
    if (c == '\'')
        snprintf(d->err_msg, sizeof d->err_msg, "unexpected '\\''");
    else
        snprintf(d->err_msg, sizeof d->err_msg, "unexpected '%c'", c);
}

static bool has_rune_error(st_str_t s)
{
    for (size_t i = 0; i < s.n;) {
        if ((unsigned char)s.p[i] < 0x80) {
            i++;
            continue;
        }
        int w;
        if (st_go_rune(s.p + i, s.n - i, &w) == 0xFFFD) return true;
        i += (size_t)w;
    }
    return false;
}

static int hexv(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int32_t getu4(const char *s, size_t n)
{
    if (n < 6 || s[0] != '\\' || s[1] != 'u') return -1;
    int32_t r = 0;
    for (int i = 2; i < 6; i++) {
        int h = hexv(s[i]);
        if (h < 0) return -1;
        r = r * 16 + h;
    }
    return r;
}

/* encoding/json's unquote of s (with the quotes) into b; false if malformed. */
static bool lf_unquote(st_str_t s, st_buf_t *b)
{
    st_buf_reset(b);
    if (s.n < 2 || s.p[0] != '"' || s.p[s.n - 1] != '"') return false;
    const char *q = s.p + 1;
    size_t n = s.n - 2, r = 0;
    while (r < n) {
        unsigned char c = (unsigned char)q[r];
        if (c == '\\') {
            r++;
            if (r >= n) return false;
            char e = q[r];
            char out;
            switch (e) {
            case '"':
            case '\\':
            case '/':
            case '\'': out = e; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u': {
                r--;
                int32_t rr = getu4(q + r, n - r);
                if (rr < 0) return false;
                r += 6;
                if (rr >= 0xD800 && rr < 0xE000) {
                    int32_t r1 = getu4(q + r, n - r);
                    if (rr < 0xDC00 && r1 >= 0xDC00 && r1 < 0xE000) {
                        r += 6;
                        if (st_go_put_rune(b, 0x10000 + ((rr - 0xD800) << 10) + (r1 - 0xDC00)) < 0)
                            return false;
                        continue;
                    }
                    rr = 0xFFFD;
                }
                if (st_go_put_rune(b, rr) < 0) return false;
                continue;
            }
            default: return false;
            }
            if (st_buf_putc(b, out) < 0) return false;
            r++;
        } else if (c == '"') {
            return false;
        } else if (c < 0x80) {
            if (st_buf_putc(b, (char)c) < 0) return false;
            r++;
        } else {
            int w;
            int32_t rr = st_go_rune(q + r, n - r, &w);
            if (st_go_put_rune(b, rr) < 0) return false;
            r += (size_t)w;
        }
    }
    return true;
}

/* Byte classes of the logfmt scanner. */
enum { C_SP = 1, C_EQ = 2, C_QU = 4, C_HI = 8, C_NN = 16, C_DG = 32 };
static uint8_t lf_class[256];
static pthread_once_t lf_once = PTHREAD_ONCE_INIT;
static void lf_class_init(void)
{
    for (int c = 0; c < 256; c++) {
        uint8_t k = 0;
        if (c <= ' ') k |= C_SP;
        if (c == '=') k |= C_EQ;
        if (c == '"') k |= C_QU;
        if (c >= 0x80) k |= C_HI;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            k |= C_NN;
        if (c >= '0' && c <= '9') k |= C_DG;
        lf_class[c] = k;
    }
}

/* One key/value pair (go-logfmt's ScanKeyval); also reports whether the key is already a clean
 * label name (d->key_clean) and whether the value has non-ASCII bytes (d->value_hi). */
static bool lf_scan(lfdec_t *d, st_buf_t *ubuf)
{
    const unsigned char *line = (const unsigned char *)d->line;
    const uint8_t *cls = lf_class;
    size_t n = d->n, p, start;
    d->key = st_str(NULL, 0);
    d->value = st_str(NULL, 0);
    d->value_hi = false;
    p = d->pos;
    while (p < n && (cls[line[p]] & C_SP)) p++;
    if (p >= n) {
        d->pos = n;
        return false;
    }
    d->pos = p;
    start = p;
    uint8_t acc = cls[line[p]] & C_DG ? C_NN : 0; /* a leading digit makes the key unclean */
    for (;;) {
        if (p >= n) {
            d->pos = n;
            d->key = st_str((const char *)line + start, n - start);
            d->key_clean = !(acc & C_NN);
            if ((acc & C_HI) && has_rune_error(d->key)) {
                lf_syntax(d, "invalid key");
                return false;
            }
            return true;
        }
        uint8_t k = cls[line[p]];
        if (k & (C_SP | C_EQ | C_QU)) break;
        acc |= k;
        p++;
    }
    unsigned char c = line[p];
    d->pos = p;
    if (c == '=') {
        if (p > start) {
            d->key = st_str((const char *)line + start, p - start);
            d->key_clean = !(acc & C_NN);
            if ((acc & C_HI) && has_rune_error(d->key)) {
                lf_syntax(d, "invalid key");
                goto skip_value;
            }
        }
        if (d->key.p == NULL) {
            lf_unexpected(d, (char)c);
            goto skip_value;
        }
        goto equal;
    }
    if (c == '"') {
        lf_unexpected(d, (char)c);
        goto skip_value;
    }
    /* a space: a key without a value */
    if (p > start) {
        d->key = st_str((const char *)line + start, p - start);
        d->key_clean = !(acc & C_NN);
        if ((acc & C_HI) && has_rune_error(d->key)) {
            lf_syntax(d, "invalid key");
            return false;
        }
    }
    return true;

equal:
    d->pos++;
    if (d->pos >= n) return true;
    c = line[d->pos];
    if (cls[c] & C_SP) return true;
    if (c == '"') goto qvalue;
    start = d->pos;
    acc = 0;
    for (p = d->pos; p < n; p++) {
        uint8_t k = cls[line[p]];
        if (k & (C_SP | C_EQ | C_QU)) {
            if (k & (C_EQ | C_QU)) {
                d->pos = p;
                lf_unexpected(d, (char)line[p]);
                goto skip_value;
            }
            d->pos = p;
            if (p > start) d->value = st_str((const char *)line + start, p - start);
            d->value_hi = (acc & C_HI) != 0;
            return true;
        }
        acc |= k;
    }
    d->pos = n;
    if (n > start) d->value = st_str((const char *)line + start, n - start);
    d->value_hi = (acc & C_HI) != 0;
    return true;

skip_value:
    for (p = d->pos; p < n; p++) {
        if (cls[line[p]] & C_SP) {
            d->pos = p;
            return false;
        }
    }
    d->pos = n;
    return false;

qvalue : {
    /* find the closing quote; escapes send the value through the unquoter */
    start = d->pos;
    bool has_esc = false;
    p = d->pos + 1;
    for (;;) {
        const unsigned char *q = memchr(line + p, '"', n - p);
        const unsigned char *b = memchr(line + p, '\\', (q ? (size_t)(q - line) : n) - p);
        if (b != NULL) {
            /* an escape before the next quote: skip the escaped byte and go on */
            has_esc = true;
            p = (size_t)(b - line) + 2;
            if (p >= n) break;
            continue;
        }
        if (q == NULL) break;
        d->pos = (size_t)(q - line) + 1;
        if (has_esc) {
            if (!lf_unquote(st_str((const char *)line + start, d->pos - start), ubuf)) {
                lf_syntax(d, "invalid quoted value");
                return false;
            }
            d->value = st_str(ubuf->data ? ubuf->data : "", ubuf->len);
            d->value_hi = true; /* the unquoter may have produced U+FFFD */
        } else {
            size_t s0 = start + 1, e = d->pos - 1;
            if (e > s0) {
                d->value = st_str((const char *)line + s0, e - s0);
                for (size_t i = s0; i < e; i++)
                    if (line[i] >= 0x80) {
                        d->value_hi = true;
                        break;
                    }
            }
        }
        return true;
    }
    d->pos = n;
    lf_syntax(d, "unterminated quoted value");
    return false;
}
}

static void lf_error(st_pipeline_t *p, const lfdec_t *d)
{
    char msg[96];
    int k = snprintf(msg, sizeof msg, "logfmt syntax error at pos %zu : %s", d->err_pos, d->err_msg);
    p->lb.err = st_cstr(ERR_LOGFMT);
    p->lb.details = pl_dup(p, st_str(msg, (size_t)k));
}

/* The label name of a logfmt key: a view when already clean, else sanitized into the arena. */
static int lf_name(st_pipeline_t *p, st_str_t key, st_str_t *name)
{
    if (pl_name_clean(key)) {
        *name = key;
        return 0;
    }
    st_buf_reset(&p->keybuf);
    ST_TRY(pl_sanitize(&p->keybuf, key, true));
    if (p->keybuf.len == 0) {
        *name = st_str(NULL, 0);
        return 0;
    }
    *name = pl_dup(p, st_str(p->keybuf.data, p->keybuf.len));
    return name->p == NULL ? -ENOMEM : 0;
}

int pl_logfmt(st_pipeline_t *p, const st_logql_stage_t *s)
{
    pthread_once(&lf_once, lf_class_init);
    bool strict = s->logfmt.strict, keep_empty = s->logfmt.keep_empty;
    lfdec_t d;
    d.line = p->line.p;
    d.n = p->line.n;
    d.pos = 0;
    d.err = false;
    const pl_stage_t *want = p->want;
    while (d.pos < d.n) {
        if (!lf_scan(&d, &p->scratch)) {
            if (strict) break;
            continue;
        }
        st_str_t name;
        st_str_t v = d.value.p ? d.value : st_str("", 0);
        /* Loki checks "already extracted" before the empty value; the outcome is the same (and
         * bare words, common in lines that are not logfmt, are dropped before any sanitizing) */
        if (v.n == 0 && !keep_empty) continue;
        if (d.key_clean) {
            name = d.key;
            /* a targeted parse skips unwanted keys before looking at their values */
            if (want != NULL && !want->want_ext && !pl_wanted(p, name)) continue;
        } else {
            ST_TRY(lf_name(p, d.key, &name));
            if (name.p == NULL) continue;
        }
        if (d.value_hi) {
            v = pl_fix_runes(p, v);
            if (v.p == NULL) return -ENOMEM;
        }
        if (in_buf(&p->scratch, v) && (v = pl_dup(p, v)).p == NULL) return -ENOMEM;
        ST_TRY(pl_emit(p, name, v));
        if (pl_all_found(p)) return 0;
    }
    if (strict && d.err) lf_error(p, &d);
    return 0;
}

int pl_logfmt_expr(st_pipeline_t *p, const st_logql_stage_t *s)
{
    pthread_once(&lf_once, lf_class_init);
    const st_logql_extract_t *x = s->logfmt.v;
    size_t nx = s->logfmt.n;
    for (size_t i = 0; i < nx; i++)
        if (!pl_lb_base_has(&p->lb, x[i].name) && !pl_lb_md_has(&p->lb, x[i].name))
            ST_TRY(pl_lb_set_parsed(&p->lb, x[i].name, st_str("", 0)));
    lfdec_t d;
    d.line = p->line.p;
    d.n = p->line.n;
    d.pos = 0;
    d.err = false;
    while (d.pos < d.n) {
        if (!lf_scan(&d, &p->scratch)) {
            if (s->logfmt.strict) break;
            continue;
        }
        st_str_t key;
        ST_TRY(lf_name(p, d.key, &key));
        if (key.p == NULL) continue;
        bool always = false;
        for (size_t i = 0; i < nx && !always; i++) always = st_str_eq(x[i].expr, key);
        if (!always && pl_lb_extracted(&p->lb, key)) continue;
        st_str_t v = d.value.p ? d.value : st_str("", 0);
        if (has_rune_error(v)) v = st_str("", 0);
        if (in_buf(&p->scratch, v) && (v = pl_dup(p, v)).p == NULL) return -ENOMEM;
        for (size_t i = 0; i < nx; i++) {
            if (st_str_eq(key, x[i].expr)) {
                key = x[i].name;
                break;
            }
        }
        bool known = false;
        for (size_t i = 0; i < nx && !known; i++) known = st_str_eq(x[i].name, key);
        if (!known) continue;
        if (pl_lb_base_has(&p->lb, key) || pl_lb_md_has(&p->lb, key)) {
            char *dd = pl_alloc(&p->arena, key.n + 10);
            if (dd == NULL) return -ENOMEM;
            memcpy(dd, key.p, key.n);
            memcpy(dd + key.n, "_extracted", 10);
            key = st_str(dd, key.n + 10);
        }
        ST_TRY(pl_lb_set_parsed(&p->lb, key, v));
    }
    if (s->logfmt.strict && d.err) lf_error(p, &d);
    return 0;
}

/* ---- regexp and pattern ------------------------------------------------------------------------------ */

int pl_regexp(st_pipeline_t *p, const st_logql_stage_t *s, pcre2_match_data *md)
{
    st_str_t line = p->line;
    const pcre2_code *re = s->regexp.code;
    int rc = pcre2_jit_match(re, (PCRE2_SPTR)(line.p ? line.p : ""), line.n, 0, 0, md, NULL);
    if (rc == PCRE2_ERROR_JIT_BADOPTION)
        rc = pcre2_match(re, (PCRE2_SPTR)(line.p ? line.p : ""), line.n, 0, 0, md, NULL);
    if (rc < 0) return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    for (size_t i = 1; i < s->regexp.n; i++) {
        st_str_t name = s->regexp.names[i];
        if (name.n == 0) continue;
        st_str_t v = st_str("", 0);
        if ((int)i < rc && ov[2 * i] != PCRE2_UNSET)
            v = st_str(line.p + ov[2 * i], ov[2 * i + 1] - ov[2 * i]);
        ST_TRY(pl_emit(p, name, v));
    }
    return 0;
}

int pl_pattern(st_pipeline_t *p, const st_logql_stage_t *s)
{
    const st_logql_pattern_part_t *v = s->pattern.pattern.v;
    size_t n = s->pattern.pattern.n, i = 0;
    st_str_t in = p->line;
    if (in.n == 0 || n == 0) return 0;
    if (!v[0].capture) {
        if (in.n < v[0].text.n || memcmp(in.p, v[0].text.p, v[0].text.n) != 0) return 0;
        in.p += v[0].text.n;
        in.n -= v[0].text.n;
        i = 1;
    }
    if (i == n) return 0;
    while (i < n) {
        const st_logql_pattern_part_t *cap = &v[i];
        bool named = !st_str_eqc(cap->text, "_");
        if (i == n - 1) {
            if (named) ST_TRY(pl_emit(p, cap->text, in));
            return 0;
        }
        st_str_t lit = v[i + 1].text;
        i += 2;
        const char *hit = lit.n == 0 ? in.p : memmem(in.p, in.n, lit.p, lit.n);
        if (hit == NULL) {
            if (named) ST_TRY(pl_emit(p, cap->text, in));
            return 0;
        }
        size_t at = (size_t)(hit - in.p);
        if (named) ST_TRY(pl_emit(p, cap->text, st_str(in.p, at)));
        in.p += at + lit.n;
        in.n -= at + lit.n;
    }
    return 0;
}
