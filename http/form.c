/* form.c: application/x-www-form-urlencoded decoding for the http module: st_url_decode, and
 * st_http_form_* which read the query string plus, for form POST/PUT/PATCH, the request body.
 * Works on the public request fields only, so it needs no connection. */
#include "http/http_int.h"

#include "common/err.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int st_url_decode(st_str_t s, bool plus, st_buf_t *out)
{
    size_t start = out->len;
    if (st_buf_reserve(out, s.n) < 0) return -ENOMEM;
    for (size_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        if (c == '%') {
            if (s.n - i < 3) goto bad;
            int h = hexval((unsigned char)s.p[i + 1]), l = hexval((unsigned char)s.p[i + 2]);
            if (h < 0 || l < 0) goto bad;
            c = (unsigned char)(h << 4 | l);
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        }
        out->data[out->len++] = (char)c; /* reserved above: decoding never grows */
    }
    out->data[out->len] = '\0';
    return 0;
bad:
    out->len = start;
    out->data[start] = '\0';
    return ST_EPARSE;
}

static int add_field(st_http_form_t *f, st_str_t key, st_str_t val, size_t *cap)
{
    st_buf_t k = ST_BUF_INIT, v = ST_BUF_INIT;
    int rc = st_url_decode(key, true, &k);
    if (rc == 0) rc = st_url_decode(val, true, &v);
    if (rc == 0 && (st_buf_cstr(&k) == NULL || st_buf_cstr(&v) == NULL)) rc = -ENOMEM;
    if (rc == 0 && f->n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        void *p = realloc(f->v, nc * sizeof f->v[0]);
        if (p == NULL) {
            rc = -ENOMEM;
        } else {
            f->v = p;
            *cap = nc;
        }
    }
    if (rc < 0) {
        st_buf_free(&k);
        st_buf_free(&v);
        return rc;
    }
    f->v[f->n].key = k.data;
    f->v[f->n].value_len = v.len;
    f->v[f->n].value = v.data;
    f->n++;
    return 0;
}

static int parse_fields(st_str_t s, st_http_form_t *f, size_t *cap)
{
    size_t i = 0;
    while (i < s.n) {
        size_t end = i;
        while (end < s.n && s.p[end] != '&') end++;
        if (end > i) {
            size_t eq = i;
            while (eq < end && s.p[eq] != '=') eq++;
            st_str_t key = st_str(s.p + i, eq - i);
            st_str_t val = eq < end ? st_str(s.p + eq + 1, end - eq - 1) : st_str("", 0);
            ST_TRY(add_field(f, key, val, cap));
        }
        i = end + 1;
    }
    return 0;
}

/* True for "application/x-www-form-urlencoded", any case, with optional parameters. */
static bool is_form_type(st_str_t ct)
{
    static const char want[] = "application/x-www-form-urlencoded";
    size_t n = 0;
    while (n < ct.n && ct.p[n] != ';') n++;
    while (n > 0 && (ct.p[n - 1] == ' ' || ct.p[n - 1] == '\t')) n--;
    return n == sizeof want - 1 && strncasecmp(ct.p, want, n) == 0;
}

int st_http_form_parse(const st_http_req_t *r, st_http_form_t *out)
{
    out->v = NULL;
    out->n = 0;
    size_t cap = 0;
    int rc = parse_fields(r->query, out, &cap);
    if (rc == 0) {
        bool body_method = r->method == ST_HTTP_POST || r->method == ST_HTTP_PUT ||
                           (r->method == ST_HTTP_OTHER && st_str_eqc(r->method_name, "PATCH"));
        st_str_t ct;
        if (body_method && st_http_header(r, "Content-Type", &ct) && is_form_type(ct))
            rc = parse_fields(st_str(r->body.data, r->body.len), out, &cap);
    }
    if (rc < 0) st_http_form_free(out);
    return rc;
}

const char *st_http_form_get(const st_http_form_t *f, const char *key)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->v[i].key, key) == 0) return f->v[i].value;
    return NULL;
}

void st_http_form_free(st_http_form_t *f)
{
    if (f == NULL) return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].key);
        free(f->v[i].value);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}
