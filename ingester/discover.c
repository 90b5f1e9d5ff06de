/* discover.c: Loki's stream decorations shared by every push decoder: service_name discovery,
 * detected_level (from labels, structured metadata, OTLP severity or a cheap look at the line) and
 * the OTLP attribute-name sanitising. Pure functions; validate.c applies them to pushes. Level
 * detection never parses a whole line: it looks at the first ST_LEVEL_SCAN_BYTES only. */
#include "ingester/ingester.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

/* Loki's defaultAllowedLevelFields, in priority order. */
static const st_str_t level_fields[] = {
    ST_STR("level"),         ST_STR("LEVEL"),         ST_STR("Level"),    ST_STR("log.level"),
    ST_STR("severity"),      ST_STR("SEVERITY"),      ST_STR("Severity"), ST_STR("SeverityText"),
    ST_STR("lvl"),           ST_STR("LVL"),           ST_STR("Lvl"),      ST_STR("severity_text"),
    ST_STR("Severity_Text"), ST_STR("SEVERITY_TEXT"),
};
#define NLEVEL_FIELDS (sizeof level_fields / sizeof level_fields[0])

static const st_str_t detected_level = ST_STR("detected_level");
static const st_str_t service_name = ST_STR("service_name");

/* ---- lists ----------------------------------------------------------------------------------------- */

int st_str_split_list(st_str_t s, st_str_t **out, size_t *n)
{
    size_t cap = 1;
    for (size_t i = 0; i < s.n; i++) cap += s.p[i] == ',';
    st_str_t *v = malloc(cap * sizeof *v);
    if (v == NULL) return -ENOMEM;
    size_t k = 0, i = 0;
    while (i <= s.n) {
        size_t j = i;
        while (j < s.n && s.p[j] != ',') j++;
        size_t a = i, b = j;
        while (a < b && (s.p[a] == ' ' || s.p[a] == '\t')) a++;
        while (b > a && (s.p[b - 1] == ' ' || s.p[b - 1] == '\t')) b--;
        if (b > a) v[k++] = st_str(s.p + a, b - a);
        i = j + 1;
    }
    *out = v;
    *n = k;
    return 0;
}

/* ---- service_name ------------------------------------------------------------------------------- */

int st_discover_service_name(const st_push_limits_t *lim, const st_labels_t *in, st_labels_t *out)
{
    if (lim->discover_service_name_n == 0 || st_labels_get(in, service_name, NULL)) return 0;
    /* Loki's internal streams (aggregated metrics, patterns) are left alone. */
    if (st_labels_get(in, st_cstr("__aggregated_metric__"), NULL) ||
        st_labels_get(in, st_cstr("__pattern__"), NULL))
        return 0;
    st_str_t value = ST_STR("unknown_service");
    for (size_t i = 0; i < lim->discover_service_name_n; i++) {
        st_str_t v;
        if (st_labels_get(in, lim->discover_service_name[i], &v) && v.n > 0) {
            value = v;
            break;
        }
    }
    st_label_t stack[32];
    st_label_t *pairs = in->n + 1 <= 32 ? stack : malloc((in->n + 1) * sizeof *pairs);
    if (pairs == NULL) return -ENOMEM;
    if (in->n) memcpy(pairs, in->v, in->n * sizeof *pairs);
    pairs[in->n] = (st_label_t){service_name, value};
    int rc = st_labels_from_pairs(pairs, in->n + 1, out);
    if (pairs != stack) free(pairs);
    return rc < 0 ? rc : 1;
}

/* ---- levels --------------------------------------------------------------------------------------- */

static bool eqfold(st_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && strncasecmp(a.p, b, n) == 0;
}

/* The known spellings, or NULL. */
static const char *level_word(st_str_t v)
{
    if (v.n < 3 || v.n > 11) return NULL;
    if (eqfold(v, "trace") || eqfold(v, "trc")) return "trace";
    if (eqfold(v, "debug") || eqfold(v, "dbg")) return "debug";
    if (eqfold(v, "info") || eqfold(v, "inf") || eqfold(v, "information")) return "info";
    if (eqfold(v, "warn") || eqfold(v, "wrn") || eqfold(v, "warning")) return "warn";
    if (eqfold(v, "error") || eqfold(v, "err")) return "error";
    if (eqfold(v, "critical")) return "critical";
    if (eqfold(v, "fatal")) return "fatal";
    return NULL;
}

st_str_t st_level_normalize(st_str_t v)
{
    const char *w = level_word(v);
    return w ? st_cstr(w) : v;
}

bool st_level_from_labels(const st_labels_t *l, st_str_t *value)
{
    for (size_t i = 0; i < NLEVEL_FIELDS; i++)
        if (st_labels_get(l, level_fields[i], value)) return true;
    return false;
}

static int level_field_index(st_str_t name)
{
    for (size_t i = 0; i < NLEVEL_FIELDS; i++)
        if (st_str_eq(name, level_fields[i])) return (int)i;
    return -1;
}

/* Whether the literal lit starts at p (left bytes available). */
static bool at(const char *p, size_t left, const char *lit)
{
    size_t n = strlen(lit);
    return left >= n && memcmp(p, lit, n) == 0;
}

/* Loki's detectLevelFromLogLine: words anywhere in the (scanned part of the) line, checked in its
 * order (info, error, warn, critical, debug). One pass that notes which words occur, instead of up
 * to 22 memmem scans of the line (12% of the push CPU on lines without a level). */
static const char *level_from_words(st_str_t s)
{
    /* the bytes a word can start with */
    static const bool first[256] = {['i'] = 1, ['I'] = 1, ['e'] = 1, ['E'] = 1, ['['] = 1, ['w'] = 1,
                                    ['W'] = 1, ['c'] = 1, ['C'] = 1, ['d'] = 1, ['D'] = 1};
    bool err = false, warn = false, crit = false, debug = false;
    for (size_t i = 0; i < s.n; i++) {
        if (!first[(unsigned char)s.p[i]]) continue;
        const char *p = s.p + i;
        size_t left = s.n - i;
        switch (*p) {
        case 'i':
            if (at(p, left, "info")) return "info";
            break;
        case 'I':
            if (at(p, left, "INFO")) return "info";
            break;
        case 'e':
            err = err || at(p, left, "err:");
            break;
        case 'E':
            err = err || at(p, left, "ERR:");
            break;
        case '[':
            err = err || at(p, left, "[err]") || at(p, left, "[ERR]") || at(p, left, "[error]") || at(p, left, "[ERROR]");
            warn = warn || at(p, left, "[warn]") || at(p, left, "[WARN]");
            crit = crit || at(p, left, "[critical]") || at(p, left, "[CRITICAL]");
            break;
        case 'w':
            warn = warn || at(p, left, "warn:") || at(p, left, "warning");
            break;
        case 'W':
            warn = warn || at(p, left, "WARN:") || at(p, left, "WARNING");
            break;
        case 'c':
            crit = crit || at(p, left, "critical:");
            break;
        case 'C':
            crit = crit || at(p, left, "CRITICAL:");
            break;
        case 'd':
            debug = debug || at(p, left, "debug");
            break;
        case 'D':
            debug = debug || at(p, left, "DEBUG");
            break;
        default:
            break;
        }
    }
    if (err) return "error";
    if (warn) return "warn";
    if (crit) return "critical";
    if (debug) return "debug";
    return "unknown";
}

static bool is_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* A bounded cursor over the scanned prefix of a line. */
typedef struct {
    const char *p, *end;
} scan_t;

static void js_ws(scan_t *s)
{
    while (s->p < s->end && is_space((unsigned char)*s->p)) s->p++;
}

/* At '"': the raw text between the quotes (escapes left as they are). */
static bool js_string(scan_t *s, st_str_t *raw)
{
    const char *a = ++s->p;
    while (s->p < s->end) {
        if (*s->p == '\\') {
            if (s->end - s->p < 2) break;
            s->p += 2;
            continue;
        }
        if (*s->p == '"') {
            *raw = st_str(a, (size_t)(s->p - a));
            s->p++;
            return true;
        }
        s->p++;
    }
    return false;
}

/* Skips one value of any type without recursion. */
static bool js_skip(scan_t *s)
{
    int depth = 0;
    do {
        js_ws(s);
        if (s->p >= s->end) return false;
        char c = *s->p;
        st_str_t raw;
        if (c == '"') {
            if (!js_string(s, &raw)) return false;
        } else if (c == '{' || c == '[') {
            depth++;
            s->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return false;
            depth--;
            s->p++;
        } else if (c == ',' || c == ':') {
            if (depth == 0) return false;
            s->p++;
        } else {
            while (s->p < s->end && !is_space((unsigned char)*s->p) && *s->p != ',' && *s->p != '}' &&
                   *s->p != ']' && *s->p != ':')
                s->p++;
        }
    } while (depth > 0);
    return true;
}

/* Loki's getLevelUsingJSONParser (max depth 2): the first string value, in document order, under a
 * level field name, searching nested objects depth first. At '{'. 1 found, 0 not found, -1 cut or
 * malformed. */
static int js_find_level(scan_t *s, int depth, st_str_t *out)
{
    s->p++; /* '{' */
    js_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        js_ws(s);
        st_str_t key;
        if (s->p >= s->end || *s->p != '"' || !js_string(s, &key)) return -1;
        js_ws(s);
        if (s->p >= s->end || *s->p != ':') return -1;
        s->p++;
        js_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == '"') {
            st_str_t v;
            if (!js_string(s, &v)) return -1;
            if (level_field_index(key) >= 0) {
                *out = v;
                return 1;
            }
        } else if (*s->p == '{' && depth + 1 < 2) {
            int r = js_find_level(s, depth + 1, out);
            if (r != 0) return r;
        } else if (!js_skip(s)) {
            return -1;
        }
        js_ws(s);
        if (s->p >= s->end) return -1;
        if (*s->p == '}') {
            s->p++;
            return 0;
        }
        if (*s->p != ',') return -1;
        s->p++;
    }
}

/* Loki's getValueUsingLogfmtParser over the level fields: keys compared case-insensitively, the
 * earliest field of the list wins, "level" stops the scan at once. */
static bool logfmt_find_level(st_str_t line, st_str_t *out)
{
    const char *p = line.p, *end = line.p + line.n;
    int best = (int)NLEVEL_FIELDS;
    bool found = false;
    while (p < end) {
        while (p < end && (unsigned char)*p <= ' ') p++;
        if (p >= end) break;
        const char *k = p;
        while (p < end && (unsigned char)*p > ' ' && *p != '=' && *p != '"') p++;
        st_str_t key = st_str(k, (size_t)(p - k));
        st_str_t val = st_str("", 0);
        if (p < end && *p == '"') break; /* syntax error: stop */
        if (p < end && *p == '=') {
            if (key.n == 0) break;
            p++;
            if (p < end && *p == '"') {
                const char *v = ++p;
                bool esc = false;
                while (p < end && *p != '"') {
                    if (*p == '\\') {
                        esc = true;
                        if (end - p < 2) {
                            p = end;
                            break;
                        }
                        p++;
                    }
                    p++;
                }
                if (p >= end) break; /* unterminated */
                /* escaped values never spell a level word; keep them unmatchable */
                val = esc ? st_str("\\", 1) : st_str(v, (size_t)(p - v));
                p++;
            } else {
                const char *v = p;
                while (p < end && (unsigned char)*p > ' ' && *p != '=' && *p != '"') p++;
                if (p < end && (*p == '=' || *p == '"')) break;
                val = st_str(v, (size_t)(p - v));
            }
        }
        for (int x = 0; x < best; x++) {
            if (key.n == level_fields[x].n && strncasecmp(key.p, level_fields[x].p, key.n) == 0) {
                best = x;
                *out = val;
                found = true;
                if (x == 0) return true;
                break;
            }
        }
    }
    return found;
}

/* Loki's isJSON: first non-space character '{' and last one '}' (over the whole line). */
static bool looks_json(st_str_t line)
{
    size_t a = 0, b = line.n;
    while (a < b && is_space((unsigned char)line.p[a])) a++;
    while (b > a && is_space((unsigned char)line.p[b - 1])) b--;
    return b > a && line.p[a] == '{' && line.p[b - 1] == '}';
}

static const char *level_from_line(st_str_t line)
{
    st_str_t head = st_str(line.p, line.n > ST_LEVEL_SCAN_BYTES ? ST_LEVEL_SCAN_BYTES : line.n);
    st_str_t v = st_str("", 0);
    if (looks_json(line)) {
        scan_t s = {head.p, head.p + head.n};
        js_ws(&s);
        if (js_find_level(&s, 0, &v) != 1) v = st_str("", 0);
    } else if (memchr(head.p, '=', head.n) != NULL) {
        if (!logfmt_find_level(head, &v)) v = st_str("", 0);
    } else {
        return level_from_words(head);
    }
    const char *w = level_word(v);
    return w ? w : level_from_words(head);
}

/* Go's strconv.Atoi. */
static bool atoi_go(st_str_t s, long long *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '+' || s.p[0] == '-')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (i == s.n || s.n - i > 18) return false;
    long long v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return false;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

static const char *level_from_severity(st_str_t num)
{
    long long n;
    if (!atoi_go(num, &n)) return "info";
    if (n == 0) return "unknown";
    if (n <= 4) return "trace";
    if (n <= 8) return "debug";
    if (n <= 12) return "info";
    if (n <= 16) return "warn";
    if (n <= 20) return "error";
    if (n <= 24) return "fatal";
    return "unknown";
}

int st_discover_level(st_str_t label_level, st_str_t line, st_str_t md, st_str_t *out)
{
    if (line.p == NULL) line = st_str("", 0);
    int best = (int)NLEVEL_FIELDS;
    st_str_t md_level = {NULL, 0}, severity = {NULL, 0};
    bool have_sev = false;
    if (md.n) {
        st_md_iter_t it;
        st_md_iter_init(&it, md);
        st_str_t n, v;
        while (st_md_next(&it, &n, &v) == 1) {
            if (st_str_eq(n, detected_level)) {
                st_str_t norm = st_level_normalize(v);
                if (st_str_eq(norm, v)) return 0;
                *out = norm;
                return 2;
            }
            int x = level_field_index(n);
            if (x >= 0 && x < best) {
                best = x;
                md_level = v;
            }
            if (!have_sev && st_str_eqc(n, "severity_number") && v.n > 0) {
                have_sev = true;
                severity = v;
            }
        }
    }
    if (label_level.n > 0) {
        *out = label_level;
    } else if (best < (int)NLEVEL_FIELDS) {
        *out = st_level_normalize(md_level);
    } else if (have_sev) {
        *out = st_cstr(level_from_severity(severity));
    } else {
        *out = st_cstr(level_from_line(line));
    }
    return out->n > 0 ? 1 : 0;
}

/* ---- label names ---------------------------------------------------------------------------------- */

static bool alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int st_label_name_sanitize(st_str_t in, st_buf_t *out, char *err)
{
    if (in.n == 0) {
        if (err) snprintf(err, 256, "label name is empty");
        return ST_EPARSE;
    }
    bool reserved =
        in.n >= 4 && in.p[0] == '_' && in.p[1] == '_' && in.p[in.n - 2] == '_' && in.p[in.n - 1] == '_';
    st_str_t body = reserved ? st_str(in.p + 2, in.n - 4) : in;
    size_t start = out->len;
    ST_TRY(st_buf_reserve(out, in.n + 8));
    if (reserved) st_buf_append(out, "__", 2);
    bool prev = false;
    /* Every byte outside [A-Za-z0-9] (including each byte of a multi-byte character) maps to '_';
     * runs collapse, so byte-wise equals Go's rune-wise loop. */
    for (size_t i = 0; i < body.n; i++) {
        unsigned char c = (unsigned char)body.p[i];
        if (alnum(c)) {
            out->data[out->len++] = (char)c;
            prev = false;
        } else if (!prev) {
            out->data[out->len++] = '_';
            prev = true;
        }
    }
    if (reserved) st_buf_append(out, "__", 2);
    if (out->len > start && out->data[start] >= '0' && out->data[start] <= '9') {
        ST_TRY(st_buf_reserve(out, 4));
        memmove(out->data + start + 4, out->data + start, out->len - start);
        memcpy(out->data + start, "key_", 4);
        out->len += 4;
    }
    bool only_us = true;
    for (size_t i = start; i < out->len; i++) only_us &= out->data[i] == '_';
    if (only_us) {
        if (err) {
            st_buf_t q1 = ST_BUF_INIT, q2 = ST_BUF_INIT;
            st_go_quote(&q1, st_str(in.n > 100 ? in.p : in.p, in.n > 100 ? 100 : in.n));
            st_go_quote(&q2, st_str(out->data + start, out->len - start > 100 ? 100 : out->len - start));
            snprintf(err, 256, "normalization for label name %s resulted in invalid name %s",
                     st_buf_cstr(&q1), st_buf_cstr(&q2));
            st_buf_free(&q1);
            st_buf_free(&q2);
        }
        out->len = start;
        return ST_EPARSE;
    }
    return 0;
}
