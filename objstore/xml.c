/* xml.c: the small XML reader behind S3 and STS responses (see objstore_int.h for what it accepts).
 * It never expands user-defined entities (DOCTYPE is rejected), never recurses, and bounds depth, so
 * hostile or truncated bodies end in ST_EPARSE, not in a crash or a blow-up. */
#include "objstore/objstore_int.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool is_name_char(char c)
{
    return !(is_space(c) || c == '/' || c == '>' || c == '<' || c == '=' || c == '"' || c == '\'' ||
             c == '&' || c == '\0');
}

static int add_node(st_xml_doc_t *d, int parent, const char *name, size_t name_n)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        st_xml_node_t *nn = realloc(d->nodes, cap * sizeof *nn);
        if (nn == NULL) return -ENOMEM;
        d->nodes = nn;
        d->cap = cap;
    }
    if (d->n >= INT32_MAX || d->text.len > UINT32_MAX) return ST_ELIMIT;
    int id = (int)d->n++;
    st_xml_node_t *x = &d->nodes[id];
    /* local name: drop a namespace prefix */
    const char *colon = memchr(name, ':', name_n);
    if (colon != NULL) {
        name_n -= (size_t)(colon + 1 - name);
        name = colon + 1;
    }
    x->name = name;
    x->name_n = (uint32_t)name_n;
    x->text_off = (uint32_t)d->text.len;
    x->text_n = 0;
    x->parent = parent;
    x->first_child = x->last_child = x->next = -1;
    if (parent >= 0) {
        st_xml_node_t *p = &d->nodes[parent];
        if (p->last_child >= 0) {
            d->nodes[p->last_child].next = id;
        } else {
            p->first_child = id;
        }
        p->last_child = id;
        p->text_n = 0; /* mixed content: a parent keeps no text */
    }
    return id;
}

static void put_utf8(char *o, size_t *k, uint32_t cp)
{
    if (cp < 0x80) {
        o[(*k)++] = (char)cp;
    } else if (cp < 0x800) {
        o[(*k)++] = (char)(0xC0 | (cp >> 6));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        o[(*k)++] = (char)(0xE0 | (cp >> 12));
        o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        o[(*k)++] = (char)(0xF0 | (cp >> 18));
        o[(*k)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[(*k)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[(*k)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* Decodes character data with entities into the text buffer (if keep) or just validates it. */
static int add_text(st_xml_doc_t *d, const char *p, size_t n, bool keep)
{
    if (keep) ST_TRY(st_buf_reserve(&d->text, n));
    char *o = keep ? d->text.data + d->text.len : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        char c = p[i];
        if (c != '&') {
            if (keep) o[k++] = c;
            i++;
            continue;
        }
        const char *semi = memchr(p + i, ';', n - i < 12 ? n - i : 12);
        if (semi == NULL) return ST_EPARSE;
        const char *e = p + i + 1;
        size_t en = (size_t)(semi - e);
        char buf[4];
        size_t bn = 0;
        if (en == 2 && memcmp(e, "lt", 2) == 0) {
            buf[bn++] = '<';
        } else if (en == 2 && memcmp(e, "gt", 2) == 0) {
            buf[bn++] = '>';
        } else if (en == 3 && memcmp(e, "amp", 3) == 0) {
            buf[bn++] = '&';
        } else if (en == 4 && memcmp(e, "quot", 4) == 0) {
            buf[bn++] = '"';
        } else if (en == 4 && memcmp(e, "apos", 4) == 0) {
            buf[bn++] = '\'';
        } else if (en >= 2 && e[0] == '#') {
            uint32_t cp = 0;
            bool hex = e[1] == 'x' || e[1] == 'X';
            size_t j = hex ? 2 : 1;
            if (j >= en) return ST_EPARSE;
            for (; j < en; j++) {
                char h = e[j];
                uint32_t v;
                if (h >= '0' && h <= '9') {
                    v = (uint32_t)(h - '0');
                } else if (hex && h >= 'a' && h <= 'f') {
                    v = (uint32_t)(h - 'a' + 10);
                } else if (hex && h >= 'A' && h <= 'F') {
                    v = (uint32_t)(h - 'A' + 10);
                } else {
                    return ST_EPARSE;
                }
                cp = cp * (hex ? 16 : 10) + v;
                if (cp > 0x10FFFF) return ST_EPARSE;
            }
            if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return ST_EPARSE;
            put_utf8(buf, &bn, cp);
        } else {
            return ST_EPARSE;
        }
        /* an entity's expansion (<= 4 bytes) is never longer than the entity itself (>= 4 bytes) */
        if (keep) {
            memcpy(o + k, buf, bn);
            k += bn;
        }
        i = (size_t)(semi - p) + 1;
    }
    if (keep) d->text.len += k;
    return 0;
}

static const char *find(const char *p, const char *end, const char *pat)
{
    size_t m = strlen(pat);
    while ((size_t)(end - p) >= m) {
        const char *q = memchr(p, pat[0], (size_t)(end - p) - m + 1);
        if (q == NULL) return NULL;
        if (memcmp(q, pat, m) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

int st_xml_parse(st_xml_doc_t *d, const char *p, size_t n)
{
    const char *end = p + n;
    int rc;
    d->n = 0;
    st_buf_reset(&d->text);
    if ((rc = add_node(d, -1, "", 0)) < 0) return rc;
    int cur = 0, depth = 0, roots = 0;
    /* full (prefixed) names of open elements, to match end tags exactly */
    const char *open_name[ST_XML_MAX_DEPTH + 1];
    size_t open_n[ST_XML_MAX_DEPTH + 1];
    if (memchr(p, '\0', n) != NULL) return ST_EPARSE; /* never valid XML; would cut C strings */
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    while (p < end) {
        if (*p != '<') {
            const char *lt = memchr(p, '<', (size_t)(end - p));
            if (lt == NULL) lt = end;
            if (cur == 0) {
                for (const char *q = p; q < lt; q++)
                    if (!is_space(*q)) return ST_EPARSE;
            } else {
                bool leaf = d->nodes[cur].first_child < 0;
                size_t before = d->text.len;
                if ((rc = add_text(d, p, (size_t)(lt - p), leaf)) < 0) return rc;
                if (leaf) d->nodes[cur].text_n += (uint32_t)(d->text.len - before);
            }
            p = lt;
            continue;
        }
        if (end - p >= 2 && p[1] == '?') {
            const char *q = find(p + 2, end, "?>");
            if (q == NULL) return ST_EPARSE;
            p = q + 2;
        } else if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            const char *q = find(p + 4, end, "-->");
            if (q == NULL) return ST_EPARSE;
            p = q + 3;
        } else if (end - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            const char *q = find(p + 9, end, "]]>");
            if (q == NULL || cur == 0) return ST_EPARSE;
            if (d->nodes[cur].first_child < 0) {
                if ((rc = st_buf_append(&d->text, p + 9, (size_t)(q - p - 9))) < 0) return rc;
                d->nodes[cur].text_n += (uint32_t)(q - p - 9);
            }
            p = q + 3;
        } else if (end - p >= 2 && p[1] == '!') {
            return ST_EPARSE; /* DOCTYPE and friends: never needed, never expanded */
        } else if (end - p >= 2 && p[1] == '/') {
            const char *q = p + 2, *s = q;
            while (q < end && is_name_char(*q)) q++;
            size_t nn = (size_t)(q - s);
            while (q < end && is_space(*q)) q++;
            if (q >= end || *q != '>' || depth == 0) return ST_EPARSE;
            if (nn != open_n[depth] || memcmp(s, open_name[depth], nn) != 0) return ST_EPARSE;
            depth--;
            cur = d->nodes[cur].parent;
            p = q + 1;
        } else {
            const char *q = p + 1, *s = q;
            while (q < end && is_name_char(*q)) q++;
            size_t nn = (size_t)(q - s);
            if (nn == 0) return ST_EPARSE;
            /* attributes: name = "value" | 'value', skipped */
            bool self_close = false;
            for (;;) {
                while (q < end && is_space(*q)) q++;
                if (q >= end) return ST_EPARSE;
                if (*q == '>') {
                    q++;
                    break;
                }
                if (*q == '/') {
                    if (q + 1 >= end || q[1] != '>') return ST_EPARSE;
                    self_close = true;
                    q += 2;
                    break;
                }
                const char *an = q;
                while (q < end && is_name_char(*q)) q++;
                if (q == an) return ST_EPARSE;
                while (q < end && is_space(*q)) q++;
                if (q >= end || *q != '=') return ST_EPARSE;
                q++;
                while (q < end && is_space(*q)) q++;
                if (q >= end || (*q != '"' && *q != '\'')) return ST_EPARSE;
                char quote = *q++;
                const char *qe = memchr(q, quote, (size_t)(end - q));
                if (qe == NULL || memchr(q, '<', (size_t)(qe - q)) != NULL) return ST_EPARSE;
                if ((rc = add_text(d, q, (size_t)(qe - q), false)) < 0) return rc;
                q = qe + 1;
            }
            if (cur == 0 && roots++ > 0) return ST_EPARSE; /* one root element */
            int id = add_node(d, cur, s, nn);
            if (id < 0) return id;
            if (!self_close) {
                if (depth == ST_XML_MAX_DEPTH) return ST_EPARSE;
                depth++;
                open_name[depth] = s;
                open_n[depth] = nn;
                cur = id;
            }
            p = q;
        }
    }
    if (depth != 0 || roots != 1) return ST_EPARSE;
    return 0;
}

void st_xml_free(st_xml_doc_t *d)
{
    if (d == NULL) return;
    free(d->nodes);
    st_buf_free(&d->text);
    memset(d, 0, sizeof *d);
}

static bool name_is(const st_xml_node_t *x, const char *name, size_t nn)
{
    return x->name_n == nn && memcmp(x->name, name, nn) == 0;
}

int st_xml_child(const st_xml_doc_t *d, int node, const char *name)
{
    if (node < 0 || (size_t)node >= d->n) return -1;
    size_t nn = strlen(name);
    for (int c = d->nodes[node].first_child; c >= 0; c = d->nodes[c].next)
        if (name_is(&d->nodes[c], name, nn)) return c;
    return -1;
}

int st_xml_next(const st_xml_doc_t *d, int node, const char *name)
{
    if (node < 0 || (size_t)node >= d->n) return -1;
    size_t nn = strlen(name);
    for (int c = d->nodes[node].next; c >= 0; c = d->nodes[c].next)
        if (name_is(&d->nodes[c], name, nn)) return c;
    return -1;
}

int st_xml_path(const st_xml_doc_t *d, int node, const char *path)
{
    while (node >= 0 && *path) {
        const char *slash = strchr(path, '/');
        size_t nn = slash ? (size_t)(slash - path) : strlen(path);
        int found = -1;
        for (int c = d->nodes[node].first_child; c >= 0; c = d->nodes[c].next) {
            if (name_is(&d->nodes[c], path, nn)) {
                found = c;
                break;
            }
        }
        node = found;
        path += nn;
        if (*path == '/') path++;
    }
    return node;
}

st_str_t st_xml_text(const st_xml_doc_t *d, int node)
{
    if (node < 0 || (size_t)node >= d->n || d->nodes[node].first_child >= 0 || d->nodes[node].text_n == 0)
        return st_str("", 0);
    return st_str(d->text.data + d->nodes[node].text_off, d->nodes[node].text_n);
}

bool st_xml_copy(const st_xml_doc_t *d, int node, const char *path, char *out, size_t cap)
{
    int x = st_xml_path(d, node, path);
    st_copy_str(out, cap, st_xml_text(d, x));
    return x >= 0;
}

int st_xml_escape(st_buf_t *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        char num[16];
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&apos;"; break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n') {
                /* S3 accepts character references for control characters in keys */
                snprintf(num, sizeof num, "&#x%X;", c);
                rep = num;
            }
            break;
        }
        if (rep != NULL) {
            ST_TRY(st_buf_append(b, s + start, i - start));
            ST_TRY(st_buf_puts(b, rep));
            start = i + 1;
        }
    }
    return st_buf_append(b, s + start, n - start);
}
