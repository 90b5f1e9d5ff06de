/* sigv4.c: AWS Signature Version 4 (header and presigned forms) on OpenSSL's SHA-256/HMAC.
 * Written from the AWS documentation and checked against the aws-c-auth test suite and botocore; the
 * S3 rules (no path normalisation, single encoding, x-amz-content-sha256) are selected by a flag.
 * Nothing here logs: signatures, keys and tokens stay in the caller's buffers. */
#include "objstore/objstore_int.h"

#include "common/err.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void st_sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t h[SHA256_DIGEST_LENGTH];
    SHA256(p, n, h);
    st_hex(h, sizeof h, out);
}

static void hmac(const void *key, size_t kn, const void *msg, size_t mn, uint8_t out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)kn, msg, mn, out, &len);
}

void st_sigv4_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                          uint8_t out[32])
{
    size_t sn = strlen(secret);
    char *k0 = malloc(sn + 5);
    uint8_t a[32], b[32];
    if (k0 == NULL) {
        memset(out, 0, 32); /* an all-zero key only yields a rejected signature */
        return;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, secret, sn + 1);
    hmac(k0, sn + 4, date8, strlen(date8), a);
    hmac(a, 32, region, strlen(region), b);
    hmac(b, 32, service, strlen(service), a);
    hmac(a, 32, "aws4_request", 12, out);
    OPENSSL_cleanse(k0, sn + 4);
    OPENSSL_cleanse(a, sizeof a);
    OPENSSL_cleanse(b, sizeof b);
    free(k0);
}

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == '~';
}

int st_sigv4_uri_encode(st_buf_t *b, const char *p, size_t n, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    ST_TRY(st_buf_reserve(b, n * 3));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (unreserved(c) || (keep_slash && c == '/')) {
            b->data[b->len++] = (char)c;
        } else {
            b->data[b->len++] = '%';
            b->data[b->len++] = hex[c >> 4];
            b->data[b->len++] = hex[c & 15];
        }
    }
    b->data[b->len] = '\0';
    return 0;
}

/* RFC 3986 dot-segment removal plus collapsing of empty segments (what the generic SigV4 rules call
 * normalisation). A path ending in '/', "." or ".." keeps a trailing slash. */
static int normalize_path(st_buf_t *out, const char *path)
{
    size_t n = strlen(path);
    const char **seg = malloc((n / 2 + 2) * sizeof *seg);
    size_t *len = malloc((n / 2 + 2) * sizeof *len);
    size_t ns = 0;
    int rc = 0;
    if (seg == NULL || len == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    bool trailing = false;
    for (size_t i = 0; i < n;) {
        while (i < n && path[i] == '/') i++;
        if (i >= n) {
            trailing = true;
            break;
        }
        size_t s = i;
        while (i < n && path[i] != '/') i++;
        size_t l = i - s;
        trailing = false;
        if (l == 1 && path[s] == '.') {
            trailing = true;
        } else if (l == 2 && path[s] == '.' && path[s + 1] == '.') {
            if (ns > 0) ns--;
            trailing = true;
        } else {
            seg[ns] = path + s;
            len[ns++] = l;
        }
    }
    for (size_t i = 0; i < ns && rc == 0; i++) {
        rc = st_buf_putc(out, '/');
        if (rc == 0) rc = st_buf_append(out, seg[i], len[i]);
    }
    if (rc == 0 && (ns == 0 || trailing)) rc = st_buf_putc(out, '/');
out:
    free(seg);
    free(len);
    return rc;
}

int st_sigv4_canonical_path(st_buf_t *b, const char *path, unsigned flags)
{
    if (path == NULL || path[0] == '\0') path = "/";
    st_buf_t tmp = ST_BUF_INIT;
    int rc;
    if (flags & ST_SIGV4_S3) {
        /* S3 signs the path as sent: valid %XX escapes stay verbatim (so "a%2Fb" stays, as botocore
         * signs it), bytes that need escaping and were sent raw are escaped once */
        static const char hex[] = "0123456789ABCDEF";
        size_t n = strlen(path);
        rc = st_buf_reserve(b, n * 3);
        for (size_t i = 0; i < n && rc == 0; i++) {
            unsigned char ch = (unsigned char)path[i];
            bool esc = ch == '%' && i + 2 < n && isxdigit((unsigned char)path[i + 1]) &&
                       isxdigit((unsigned char)path[i + 2]);
            if (esc || unreserved(ch) || ch == '/') {
                b->data[b->len++] = (char)ch;
            } else {
                b->data[b->len++] = '%';
                b->data[b->len++] = hex[ch >> 4];
                b->data[b->len++] = hex[ch & 15];
            }
        }
        if (rc == 0) b->data[b->len] = '\0';
        return rc;
    } else if (flags & ST_SIGV4_NORMALIZE) {
        rc = normalize_path(&tmp, path);
    } else {
        rc = st_buf_puts(&tmp, path);
    }
    if (rc == 0) rc = st_sigv4_uri_encode(b, tmp.data ? tmp.data : "", tmp.len, true);
    st_buf_free(&tmp);
    return rc;
}

typedef struct {
    char *name; /* encoded */
    char *value;
} qparam_t;

static int qparam_cmp(const void *a, const void *b)
{
    const qparam_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static int encode_dup(const char *p, size_t n, char **out)
{
    st_buf_t dec = ST_BUF_INIT, enc = ST_BUF_INIT;
    int rc = st_pct_decode(&dec, p, n, false);
    if (rc == 0) rc = st_sigv4_uri_encode(&enc, dec.data ? dec.data : "", dec.len, false);
    st_buf_free(&dec);
    if (rc == 0 && st_buf_cstr(&enc) == NULL) rc = -ENOMEM;
    if (rc < 0) {
        st_buf_free(&enc);
        return rc;
    }
    *out = enc.data;
    return 0;
}

int st_sigv4_canonical_query(st_buf_t *b, const char *query)
{
    if (query == NULL || query[0] == '\0') return st_buf_puts(b, "");
    size_t n = strlen(query), cnt = 1;
    for (size_t i = 0; i < n; i++) cnt += query[i] == '&';
    qparam_t *q = calloc(cnt, sizeof *q);
    if (q == NULL) return -ENOMEM;
    size_t nq = 0;
    int rc = 0;
    for (size_t i = 0; i <= n && rc == 0;) {
        const char *amp = memchr(query + i, '&', n - i);
        size_t e = amp ? (size_t)(amp - query) : n;
        if (e > i) {
            const char *eq = memchr(query + i, '=', e - i);
            size_t ne = eq ? (size_t)(eq - query) : e;
            rc = encode_dup(query + i, ne - i, &q[nq].name);
            if (rc == 0) {
                rc = eq ? encode_dup(eq + 1, e - ne - 1, &q[nq].value) : encode_dup("", 0, &q[nq].value);
                if (rc < 0) free(q[nq].name);
            }
            if (rc == 0) nq++;
        }
        i = e + 1;
    }
    if (rc == 0) {
        qsort(q, nq, sizeof *q, qparam_cmp);
        for (size_t i = 0; i < nq && rc == 0; i++)
            rc = st_buf_printf(b, "%s%s=%s", i ? "&" : "", q[i].name, q[i].value);
        if (rc == 0 && nq == 0) rc = st_buf_puts(b, "");
    }
    for (size_t i = 0; i < nq; i++) {
        free(q[i].name);
        free(q[i].value);
    }
    free(q);
    return rc;
}

typedef struct {
    char *name;  /* lowercased, owned */
    char *value; /* trimmed, whitespace collapsed, owned */
    size_t order;
} hdr_t;

static int hdr_cmp(const void *a, const void *b)
{
    const hdr_t *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static char *trim_collapse(const char *v)
{
    size_t n = strlen(v), k = 0;
    char *o = malloc(n + 1);
    if (o == NULL) return NULL;
    bool pending = false;
    for (size_t i = 0; i < n; i++) {
        if (ws(v[i])) {
            pending = k > 0;
            continue;
        }
        if (pending) o[k++] = ' ';
        pending = false;
        o[k++] = v[i];
    }
    o[k] = '\0';
    return o;
}

static bool never_signed(const char *lname)
{
    return strcmp(lname, "authorization") == 0 || strcmp(lname, "user-agent") == 0 ||
           strcmp(lname, "expect") == 0 || strcmp(lname, "x-amzn-trace-id") == 0;
}

/* Appends canonical headers ("name:value\n" each) to creq and the signed-header list to sh. */
static int canonical_headers(const st_kv_t *h, size_t nh, const st_kv_t *extra, size_t nextra, st_buf_t *creq,
                             st_buf_t *sh, bool *has_host)
{
    size_t total = nh + nextra;
    hdr_t *v = calloc(total ? total : 1, sizeof *v);
    if (v == NULL) return -ENOMEM;
    size_t nv = 0;
    int rc = 0;
    *has_host = false;
    for (size_t i = 0; i < total && rc == 0; i++) {
        const st_kv_t *kv = i < nh ? &h[i] : &extra[i - nh];
        if (kv->name == NULL || kv->value == NULL) continue;
        char *ln = strdup(kv->name);
        if (ln == NULL) {
            rc = -ENOMEM;
            break;
        }
        for (char *c = ln; *c; c++)
            if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
        /* the signer adds these itself */
        if (never_signed(ln) || (i < nh && (strcmp(ln, "x-amz-date") == 0))) {
            free(ln);
            continue;
        }
        if (strcmp(ln, "host") == 0) *has_host = true;
        char *val = trim_collapse(kv->value);
        if (val == NULL) {
            free(ln);
            rc = -ENOMEM;
            break;
        }
        v[nv].name = ln;
        v[nv].value = val;
        v[nv].order = i;
        nv++;
    }
    if (rc == 0) {
        qsort(v, nv, sizeof *v, hdr_cmp);
        for (size_t i = 0; i < nv && rc == 0;) {
            size_t j = i;
            rc = st_buf_printf(creq, "%s:%s", v[i].name, v[i].value);
            for (j = i + 1; j < nv && strcmp(v[j].name, v[i].name) == 0 && rc == 0; j++)
                rc = st_buf_printf(creq, ",%s", v[j].value);
            if (rc == 0) rc = st_buf_putc(creq, '\n');
            if (rc == 0) rc = st_buf_printf(sh, "%s%s", sh->len ? ";" : "", v[i].name);
            i = j;
        }
    }
    for (size_t i = 0; i < nv; i++) {
        free(v[i].name);
        free(v[i].value);
    }
    free(v);
    return rc;
}

static void init_out(st_sigv4_t *out)
{
    memset(out, 0, sizeof *out);
}

void st_sigv4_free(st_sigv4_t *s)
{
    if (s == NULL) return;
    st_buf_free(&s->canonical_request);
    st_buf_free(&s->string_to_sign);
    st_buf_free(&s->signed_headers);
    st_buf_free(&s->authorization);
    st_buf_free(&s->query);
    memset(s, 0, sizeof *s);
}

static int check_params(const st_sigv4_request_t *r, const st_sigv4_params_t *p)
{
    if (r == NULL || p == NULL || r->method == NULL || p->access_key == NULL || p->secret_key == NULL ||
        p->region == NULL || p->service == NULL || p->access_key[0] == '\0')
        return -EINVAL;
    return 0;
}

static int set_time(st_sigv4_t *out, const st_sigv4_params_t *p)
{
    struct tm tm;
    time_t t = p->now;
    if (gmtime_r(&t, &tm) == NULL) return -EINVAL;
    strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm);
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    int w = snprintf(out->scope, sizeof out->scope, "%s/%s/%s/aws4_request", date8, p->region, p->service);
    return w > 0 && (size_t)w < sizeof out->scope ? 0 : -EINVAL;
}

/* string to sign and signature from the finished canonical request */
static int finish(st_sigv4_t *out, const st_sigv4_params_t *p)
{
    char h[65];
    st_sha256_hex(out->canonical_request.data, out->canonical_request.len, h);
    ST_TRY(st_buf_printf(&out->string_to_sign, "AWS4-HMAC-SHA256\n%s\n%s\n%s", out->amz_date, out->scope, h));
    char date8[9];
    memcpy(date8, out->amz_date, 8);
    date8[8] = '\0';
    uint8_t key[32], sig[32];
    st_sigv4_signing_key(p->secret_key, date8, p->region, p->service, key);
    hmac(key, 32, out->string_to_sign.data, out->string_to_sign.len, sig);
    OPENSSL_cleanse(key, sizeof key);
    st_hex(sig, 32, out->signature);
    return 0;
}

int st_sigv4_sign(const st_sigv4_request_t *r, const st_sigv4_params_t *p, st_sigv4_t *out)
{
    init_out(out);
    ST_TRY(check_params(r, p));
    ST_TRY(set_time(out, p));
    const char *ph = r->payload_hash ? r->payload_hash : ST_SIGV4_EMPTY_SHA256;
    bool token = p->session_token && p->session_token[0];
    snprintf(out->content_sha256, sizeof out->content_sha256, "%s", ph);
    out->add[out->nadd++] = (st_kv_t){"X-Amz-Date", out->amz_date};
    if ((p->flags & ST_SIGV4_CONTENT_SHA256) || (p->flags & ST_SIGV4_S3))
        out->add[out->nadd++] = (st_kv_t){"x-amz-content-sha256", out->content_sha256};
    if (token) out->add[out->nadd++] = (st_kv_t){"X-Amz-Security-Token", p->session_token};
    size_t nextra = (size_t)out->nadd - (token && (p->flags & ST_SIGV4_OMIT_TOKEN) ? 1 : 0);

    st_buf_t *c = &out->canonical_request;
    bool has_host;
    ST_TRY(st_buf_printf(c, "%s\n", r->method));
    ST_TRY(st_sigv4_canonical_path(c, r->path, p->flags));
    ST_TRY(st_buf_putc(c, '\n'));
    ST_TRY(st_sigv4_canonical_query(c, r->query));
    ST_TRY(st_buf_putc(c, '\n'));
    ST_TRY(canonical_headers(r->headers, r->nheaders, out->add, nextra, c, &out->signed_headers, &has_host));
    if (!has_host) return -EINVAL;
    ST_TRY(st_buf_printf(c, "\n%s\n%s", st_buf_cstr(&out->signed_headers), ph));
    ST_TRY(finish(out, p));
    return st_buf_printf(&out->authorization, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                         p->access_key, out->scope, st_buf_cstr(&out->signed_headers), out->signature);
}

int st_sigv4_presign(const st_sigv4_request_t *r, const st_sigv4_params_t *p, st_sigv4_t *out)
{
    init_out(out);
    ST_TRY(check_params(r, p));
    if (p->expires < 1 || p->expires > 604800) return -EINVAL;
    ST_TRY(set_time(out, p));
    const char *ph = r->payload_hash ? r->payload_hash : ST_SIGV4_EMPTY_SHA256;
    bool token = p->session_token && p->session_token[0];
    bool sign_token = token && !(p->flags & ST_SIGV4_OMIT_TOKEN);

    /* signed headers first: they are part of the query */
    st_buf_t ch = ST_BUF_INIT, q = ST_BUF_INIT, cred = ST_BUF_INIT;
    bool has_host;
    int rc = canonical_headers(r->headers, r->nheaders, NULL, 0, &ch, &out->signed_headers, &has_host);
    if (rc == 0 && !has_host) rc = -EINVAL;
    if (rc == 0 && r->query && r->query[0]) rc = st_buf_printf(&q, "%s&", r->query);
    if (rc == 0) rc = st_buf_printf(&cred, "%s/%s", p->access_key, out->scope);
    if (rc == 0) rc = st_buf_puts(&q, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    if (rc == 0) rc = st_sigv4_uri_encode(&q, cred.data, cred.len, false);
    if (rc == 0) rc = st_buf_printf(&q, "&X-Amz-Date=%s&X-Amz-Expires=%ld", out->amz_date, p->expires);
    if (rc == 0 && sign_token) {
        rc = st_buf_puts(&q, "&X-Amz-Security-Token=");
        if (rc == 0) rc = st_sigv4_uri_encode(&q, p->session_token, strlen(p->session_token), false);
    }
    if (rc == 0) rc = st_buf_puts(&q, "&X-Amz-SignedHeaders=");
    if (rc == 0) rc = st_sigv4_uri_encode(&q, out->signed_headers.data, out->signed_headers.len, false);

    st_buf_t *c = &out->canonical_request;
    if (rc == 0) rc = st_buf_printf(c, "%s\n", r->method);
    if (rc == 0) rc = st_sigv4_canonical_path(c, r->path, p->flags);
    if (rc == 0) rc = st_buf_putc(c, '\n');
    size_t qstart = c->len;
    if (rc == 0) rc = st_sigv4_canonical_query(c, st_buf_cstr(&q));
    size_t qend = c->len;
    if (rc == 0) rc = st_buf_printf(c, "\n%s\n%s\n%s", st_buf_cstr(&ch), st_buf_cstr(&out->signed_headers), ph);
    if (rc == 0) rc = finish(out, p);
    if (rc == 0) rc = st_buf_append(&out->query, c->data + qstart, qend - qstart);
    if (rc == 0) rc = st_buf_printf(&out->query, "&X-Amz-Signature=%s", out->signature);
    if (rc == 0 && token && !sign_token) {
        rc = st_buf_puts(&out->query, "&X-Amz-Security-Token=");
        if (rc == 0) rc = st_sigv4_uri_encode(&out->query, p->session_token, strlen(p->session_token), false);
    }
    st_buf_free(&ch);
    st_buf_free(&q);
    st_buf_free(&cred);
    return rc;
}
