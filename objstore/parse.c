/* parse.c: pure parsers for S3/STS responses and headers (XML bodies, x-amz-restore, dates) and the
 * small encoders the client needs (hex, base64, percent-decoding). No I/O here, so everything in this
 * file is reachable from the s3xml fuzz target. */
#include "objstore/objstore_int.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void st_copy_str(char *dst, size_t cap, st_str_t s)
{
    if (cap == 0) return;
    size_t n = s.n < cap - 1 ? s.n : cap - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = '\0';
}

bool st_str_ieq(st_str_t a, const char *b)
{
    size_t n = strlen(b);
    return a.n == n && strncasecmp(a.p, b, n) == 0;
}

void st_hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void st_base64(const uint8_t *p, size_t n, char *out)
{
    size_t k = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[k++] = b64[v >> 18];
        out[k++] = b64[(v >> 12) & 63];
        out[k++] = b64[(v >> 6) & 63];
        out[k++] = b64[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[k++] = b64[v >> 18];
        out[k++] = b64[(v >> 12) & 63];
        out[k++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
}

int st_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 4 != 0) return -1;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = s[i + j];
            const char *pos = c ? strchr(b64, c) : NULL;
            if (c == '=' && i + 4 == n && j >= 2) {
                pad++;
                v <<= 6;
                continue;
            }
            if (pos == NULL || pad) return -1;
            v = v << 6 | (uint32_t)(pos - b64);
        }
        size_t m = 3 - (size_t)pad;
        if (k + m > cap) return -1;
        for (size_t j = 0; j < m; j++) out[k++] = (uint8_t)(v >> (16 - 8 * j));
    }
    return (int)k;
}

void st_s3_crc32_b64(uint32_t crc, char out[9])
{
    uint8_t be[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
    st_base64(be, 4, out);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int st_pct_decode(st_buf_t *b, const char *p, size_t n, bool plus_space)
{
    ST_TRY(st_buf_reserve(b, n));
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            c = (char)(hexval(p[i + 1]) << 4 | hexval(p[i + 2]));
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        b->data[b->len++] = c;
    }
    if (b->len < b->cap) b->data[b->len] = '\0';
    return 0;
}

/* ---- dates */

int st_s3_parse_iso8601(const char *s, size_t n, time_t *out)
{
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    int64_t ns;
    if (st_parse_rfc3339(st_str(s, n), &ns) < 0) return ST_EPARSE;
    int64_t sec = ns / ST_NS_PER_SEC;
    if (ns % ST_NS_PER_SEC < 0) sec--;
    *out = (time_t)sec;
    return 0;
}

static int num(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 0;
}

/* RFC 1123: "Fri, 21 Dec 2012 00:00:00 GMT" (the weekday is not checked). */
int st_s3_parse_http_date(const char *s, size_t n, time_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    while (n > 0 && isspace((unsigned char)*s)) s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
    const char *comma = memchr(s, ',', n);
    if (comma == NULL) return ST_EPARSE;
    size_t i = (size_t)(comma - s) + 1;
    while (i < n && s[i] == ' ') i++;
    /* DD Mon YYYY HH:MM:SS GMT */
    if (n - i != 24 && n - i != 23) return ST_EPARSE;
    const char *p = s + i;
    int dlen = n - i == 24 ? 2 : 1;
    int D, Y, h, mi, sec;
    if (num(p, dlen, &D) < 0 || p[dlen] != ' ') return ST_EPARSE;
    p += dlen + 1;
    int M = -1;
    for (int m = 0; m < 12; m++)
        if (memcmp(p, months + 3 * m, 3) == 0) M = m + 1;
    if (M < 0 || p[3] != ' ') return ST_EPARSE;
    p += 4;
    if (num(p, 4, &Y) < 0 || p[4] != ' ' || num(p + 5, 2, &h) < 0 || p[7] != ':' || num(p + 8, 2, &mi) < 0 ||
        p[10] != ':' || num(p + 11, 2, &sec) < 0 || memcmp(p + 13, " GMT", 4) != 0)
        return ST_EPARSE;
    if (D < 1 || D > 31 || h > 23 || mi > 59 || sec > 60) return ST_EPARSE;
    int64_t days = st_days_from_civil(Y, (unsigned)M, (unsigned)D);
    *out = (time_t)(days * 86400 + h * 3600 + mi * 60 + sec);
    return 0;
}

/* ---- x-amz-restore */

int st_s3_parse_restore(const char *v, size_t n, st_s3_restore_t *out)
{
    st_s3_restore_t r = {.present = true};
    bool have_ongoing = false;
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) i++;
        if (i >= n) break;
        size_t ns = i;
        while (i < n && v[i] != '=' && v[i] != ',' && v[i] != ' ') i++;
        size_t nn = i - ns;
        if (i >= n || v[i] != '=' || nn == 0) return ST_EPARSE;
        i++;
        const char *val;
        size_t vn;
        if (i < n && v[i] == '"') {
            const char *q = memchr(v + i + 1, '"', n - i - 1);
            if (q == NULL) return ST_EPARSE;
            val = v + i + 1;
            vn = (size_t)(q - val);
            i = (size_t)(q - v) + 1;
        } else {
            val = v + i;
            while (i < n && v[i] != ',' && v[i] != ' ') i++;
            vn = (size_t)(v + i - val);
        }
        st_str_t name = st_str(v + ns, nn), value = st_str(val, vn);
        if (st_str_ieq(name, "ongoing-request")) {
            if (st_str_ieq(value, "true")) {
                r.ongoing = true;
            } else if (st_str_ieq(value, "false")) {
                r.ongoing = false;
            } else {
                return ST_EPARSE;
            }
            have_ongoing = true;
        } else if (st_str_ieq(name, "expiry-date")) {
            if (st_s3_parse_http_date(val, vn, &r.expiry) < 0 && st_s3_parse_iso8601(val, vn, &r.expiry) < 0)
                return ST_EPARSE;
        }
    }
    if (!have_ongoing) return ST_EPARSE;
    *out = r;
    return 0;
}

/* ---- XML bodies */

static int root_named(const st_xml_doc_t *d, const char *name)
{
    int root = d->nodes[0].first_child;
    st_str_t rn = st_str(d->nodes[root].name, d->nodes[root].name_n);
    return st_str_eqc(rn, name) ? root : -1;
}

int st_s3_parse_error(const char *xml, size_t n, st_s3_error_t *out)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    if (rc == 0) {
        int e = root_named(&d, "Error");
        if (e < 0) {
            /* STS wraps it: <ErrorResponse><Error>...</Error><RequestId/></ErrorResponse> */
            int r = root_named(&d, "ErrorResponse");
            e = st_xml_child(&d, r, "Error");
            if (r >= 0) st_xml_copy(&d, r, "RequestId", out->request_id, sizeof out->request_id);
        }
        if (e >= 0) {
            st_xml_copy(&d, e, "Code", out->code, sizeof out->code);
            st_xml_copy(&d, e, "Message", out->message, sizeof out->message);
            if (st_xml_child(&d, e, "RequestId") >= 0)
                st_xml_copy(&d, e, "RequestId", out->request_id, sizeof out->request_id);
        } else {
            rc = ST_EPARSE;
        }
    }
    st_xml_free(&d);
    return rc < 0 ? ST_EPARSE : 0;
}

static uint64_t parse_u64(st_str_t s, bool *ok)
{
    uint64_t v = 0;
    if (s.n == 0 || s.n > 20) *ok = false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') {
            *ok = false;
            return 0;
        }
        uint64_t nv = v * 10 + (uint64_t)(s.p[i] - '0');
        if (nv / 10 != v) *ok = false;
        v = nv;
    }
    return v;
}

/* A malloc'd copy of a leaf's text (url-decoded if asked). NULL with *rc set: -ENOMEM, or ST_EPARSE
 * when decoding produced a NUL byte (a key we could not represent as a C string). */
static char *dup_text(const st_xml_doc_t *d, int node, bool url_decode, int *rc)
{
    st_str_t t = st_xml_text(d, node);
    st_buf_t b = ST_BUF_INIT;
    int r = url_decode ? st_pct_decode(&b, t.p, t.n, true) : st_buf_append(&b, t.p, t.n);
    if (r == 0 && memchr(b.data ? b.data : "", '\0', b.len) != NULL) r = ST_EPARSE;
    if (r == 0) r = st_buf_putc(&b, '\0');
    if (r < 0) {
        st_buf_free(&b);
        *rc = r;
        return NULL;
    }
    return b.data;
}

void st_s3_list_page_free(st_s3_list_page_t *page)
{
    if (page == NULL) return;
    for (size_t i = 0; i < page->n; i++) free(page->entries[i].key);
    free(page->entries);
    for (size_t i = 0; i < page->nprefixes; i++) free(page->prefixes[i]);
    free(page->prefixes);
    free(page->next_token);
    memset(page, 0, sizeof *page);
}

int st_s3_parse_list(const char *xml, size_t n, st_s3_list_page_t *page)
{
    memset(page, 0, sizeof *page);
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    int root = rc == 0 ? root_named(&d, "ListBucketResult") : -1;
    if (rc == 0 && root < 0) rc = ST_EPARSE;
    if (rc < 0) goto out;
    bool enc = st_str_eqc(st_xml_text(&d, st_xml_child(&d, root, "EncodingType")), "url");
    page->truncated = st_str_eqc(st_xml_text(&d, st_xml_child(&d, root, "IsTruncated")), "true");
    int tok = st_xml_child(&d, root, "NextContinuationToken");
    if (tok >= 0 && st_xml_text(&d, tok).n > 0) {
        page->next_token = dup_text(&d, tok, false, &rc);
        if (page->next_token == NULL) goto out;
    }
    size_t cnt = 0, pcnt = 0;
    for (int c = st_xml_child(&d, root, "Contents"); c >= 0; c = st_xml_next(&d, c, "Contents")) cnt++;
    for (int c = st_xml_child(&d, root, "CommonPrefixes"); c >= 0; c = st_xml_next(&d, c, "CommonPrefixes"))
        pcnt++;
    if (cnt) {
        page->entries = calloc(cnt, sizeof *page->entries);
        if (page->entries == NULL) goto oom;
    }
    if (pcnt) {
        page->prefixes = calloc(pcnt, sizeof *page->prefixes);
        if (page->prefixes == NULL) goto oom;
    }
    for (int c = st_xml_child(&d, root, "Contents"); c >= 0; c = st_xml_next(&d, c, "Contents")) {
        st_s3_list_entry_t *e = &page->entries[page->n];
        int k = st_xml_child(&d, c, "Key");
        if (k < 0) {
            rc = ST_EPARSE;
            goto out;
        }
        e->key = dup_text(&d, k, enc, &rc);
        if (e->key == NULL) goto out;
        page->n++;
        bool ok = true;
        e->size = parse_u64(st_xml_text(&d, st_xml_child(&d, c, "Size")), &ok);
        if (!ok) {
            rc = ST_EPARSE;
            goto out;
        }
        st_xml_copy(&d, c, "ETag", e->etag, sizeof e->etag);
        if (!st_xml_copy(&d, c, "StorageClass", e->storage_class, sizeof e->storage_class))
            snprintf(e->storage_class, sizeof e->storage_class, "STANDARD");
        st_str_t lm = st_xml_text(&d, st_xml_child(&d, c, "LastModified"));
        if (lm.n) st_s3_parse_iso8601(lm.p, lm.n, &e->last_modified);
    }
    for (int c = st_xml_child(&d, root, "CommonPrefixes"); c >= 0;
         c = st_xml_next(&d, c, "CommonPrefixes")) {
        char *pfx = dup_text(&d, st_xml_child(&d, c, "Prefix"), enc, &rc);
        if (pfx == NULL) goto out;
        page->prefixes[page->nprefixes++] = pfx;
    }
    rc = 0;
    goto out;
oom:
    rc = -ENOMEM;
out:
    st_xml_free(&d);
    if (rc < 0) st_s3_list_page_free(page);
    return rc;
}

void st_s3_delete_result_free(st_s3_delete_result_t *res)
{
    if (res == NULL) return;
    for (size_t i = 0; i < res->nerrors; i++) {
        free(res->errors[i].key);
        free(res->errors[i].version_id);
    }
    free(res->errors);
    memset(res, 0, sizeof *res);
}

/* Appends the <Deleted>/<Error> entries of one DeleteResult to res (which may hold earlier batches). */
int st_s3_parse_delete_result(const char *xml, size_t n, st_s3_delete_result_t *res)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    int root = rc == 0 ? root_named(&d, "DeleteResult") : -1;
    if (rc == 0 && root < 0) rc = ST_EPARSE;
    if (rc < 0) goto out;
    size_t ne = 0;
    for (int c = st_xml_child(&d, root, "Deleted"); c >= 0; c = st_xml_next(&d, c, "Deleted")) res->ndeleted++;
    for (int c = st_xml_child(&d, root, "Error"); c >= 0; c = st_xml_next(&d, c, "Error")) ne++;
    if (ne) {
        st_s3_delete_error_t *ne_arr = realloc(res->errors, (res->nerrors + ne) * sizeof *ne_arr);
        if (ne_arr == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        res->errors = ne_arr;
    }
    for (int c = st_xml_child(&d, root, "Error"); c >= 0; c = st_xml_next(&d, c, "Error")) {
        st_s3_delete_error_t *e = &res->errors[res->nerrors];
        memset(e, 0, sizeof *e);
        e->key = st_str_dup(st_xml_text(&d, st_xml_child(&d, c, "Key")));
        int v = st_xml_child(&d, c, "VersionId");
        if (v >= 0) e->version_id = st_str_dup(st_xml_text(&d, v));
        if (e->key == NULL || (v >= 0 && e->version_id == NULL)) {
            free(e->key);
            free(e->version_id);
            rc = -ENOMEM;
            goto out;
        }
        st_xml_copy(&d, c, "Code", e->code, sizeof e->code);
        st_xml_copy(&d, c, "Message", e->message, sizeof e->message);
        res->nerrors++;
    }
out:
    st_xml_free(&d);
    return rc;
}

int st_s3_parse_initiate(const char *xml, size_t n, char **upload_id)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    int root = rc == 0 ? root_named(&d, "InitiateMultipartUploadResult") : -1;
    int u = st_xml_child(&d, root, "UploadId");
    if (rc == 0 && (u < 0 || st_xml_text(&d, u).n == 0)) rc = ST_EPARSE;
    if (rc == 0) {
        *upload_id = st_str_dup(st_xml_text(&d, u));
        if (*upload_id == NULL) rc = -ENOMEM;
    }
    st_xml_free(&d);
    return rc;
}

int st_s3_parse_etag_result(const char *xml, size_t n, char etag[80], char crc32_b64[16], st_s3_error_t *err)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    if (rc < 0) goto out;
    int e = root_named(&d, "Error");
    if (e >= 0) {
        if (err) {
            st_xml_copy(&d, e, "Code", err->code, sizeof err->code);
            st_xml_copy(&d, e, "Message", err->message, sizeof err->message);
            st_xml_copy(&d, e, "RequestId", err->request_id, sizeof err->request_id);
        }
        rc = ST_S3_EREMOTE;
        goto out;
    }
    int root = root_named(&d, "CompleteMultipartUploadResult");
    if (root < 0) root = root_named(&d, "CompleteMultipartUploadResponse"); /* moto */
    if (root < 0) root = root_named(&d, "CopyObjectResult");
    if (root < 0) root = root_named(&d, "CopyPartResult");
    if (root < 0) {
        rc = ST_EPARSE;
        goto out;
    }
    st_xml_copy(&d, root, "ETag", etag, 80);
    st_xml_copy(&d, root, "ChecksumCRC32", crc32_b64, 16);
out:
    st_xml_free(&d);
    return rc;
}

int st_s3_parse_retention(const char *xml, size_t n, char mode[16], time_t *retain_until)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    int root = rc == 0 ? root_named(&d, "Retention") : -1;
    if (rc == 0 && root < 0) rc = ST_EPARSE;
    if (rc == 0) {
        st_xml_copy(&d, root, "Mode", mode, 16);
        st_str_t t = st_xml_text(&d, st_xml_child(&d, root, "RetainUntilDate"));
        *retain_until = 0;
        if (t.n && st_s3_parse_iso8601(t.p, t.n, retain_until) < 0) rc = ST_EPARSE;
    }
    st_xml_free(&d);
    return rc;
}

int st_aws_parse_sts_credentials(const char *xml, size_t n, st_aws_creds_t *out)
{
    st_xml_doc_t d = {0};
    int rc = st_xml_parse(&d, xml, n);
    if (rc < 0) goto out;
    int root = d.nodes[0].first_child, cred = -1;
    for (int r = d.nodes[root].first_child; r >= 0 && cred < 0; r = d.nodes[r].next)
        cred = st_xml_child(&d, r, "Credentials");
    st_str_t ak = st_xml_text(&d, st_xml_child(&d, cred, "AccessKeyId"));
    st_str_t sk = st_xml_text(&d, st_xml_child(&d, cred, "SecretAccessKey"));
    st_str_t tk = st_xml_text(&d, st_xml_child(&d, cred, "SessionToken"));
    st_str_t ex = st_xml_text(&d, st_xml_child(&d, cred, "Expiration"));
    if (cred < 0 || ak.n == 0 || sk.n == 0 || ak.n >= sizeof out->access_key ||
        sk.n >= sizeof out->secret_key || tk.n >= sizeof out->session_token) {
        rc = ST_EPARSE;
        goto out;
    }
    time_t exp = 0;
    if (ex.n && st_s3_parse_iso8601(ex.p, ex.n, &exp) < 0) {
        rc = ST_EPARSE;
        goto out;
    }
    st_copy_str(out->access_key, sizeof out->access_key, ak);
    st_copy_str(out->secret_key, sizeof out->secret_key, sk);
    st_copy_str(out->session_token, sizeof out->session_token, tk);
    out->expiration = exp;
out:
    st_xml_free(&d);
    return rc;
}
