/* s3.c: the S3 operations: each builds one request (headers, query, body), hands it to s3_exec
 * (client.c) for signing, sending and retries, and parses the answer. Multipart uploads, batched
 * deletes and listing pages are composed here. */
#include "objstore/objstore_int.h"

#include "common/err.h"
#include "common/log.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define MOD "objstore"
#define S3_NS "http://s3.amazonaws.com/doc/2006-03-01/"

static void fmt_iso(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static bool valid_name(const char *s) { return s != NULL && s[0] != '\0'; }

static void md5_b64(const void *p, size_t n, char out[25])
{
    uint8_t m[16];
    unsigned int ml = 0;
    EVP_Digest(p, n, m, &ml, EVP_md5(), NULL);
    st_base64(m, 16, out);
}

/* ---- object headers shared by PutObject, CreateMultipartUpload and CopyObject */

typedef struct {
    char until[32];
    char meta[ST_S3_MAX_META][80];
} hdr_bufs_t;

static int add_object_headers(s3_req_t *r, const char *storage_class, const char *content_type,
                              const char *lock_mode, time_t lock_until, bool legal_hold, const st_kv_t *meta,
                              size_t nmeta, hdr_bufs_t *b)
{
    if (nmeta > ST_S3_MAX_META) return -EINVAL;
    if (storage_class) s3_req_header(r, "x-amz-storage-class", storage_class);
    if (content_type) s3_req_header(r, "Content-Type", content_type);
    if (lock_mode) {
        if (strcmp(lock_mode, "COMPLIANCE") != 0 && strcmp(lock_mode, "GOVERNANCE") != 0) return -EINVAL;
        if (lock_until <= 0) return -EINVAL;
        fmt_iso(lock_until, b->until);
        s3_req_header(r, "x-amz-object-lock-mode", lock_mode);
        s3_req_header(r, "x-amz-object-lock-retain-until-date", b->until);
    }
    if (legal_hold) s3_req_header(r, "x-amz-object-lock-legal-hold", "ON");
    for (size_t i = 0; i < nmeta; i++) {
        if (!valid_name(meta[i].name) || meta[i].value == NULL) return -EINVAL;
        int w = snprintf(b->meta[i], sizeof b->meta[i], "x-amz-meta-%s", meta[i].name);
        if (w < 0 || (size_t)w >= sizeof b->meta[i]) return -EINVAL;
        s3_req_header(r, b->meta[i], meta[i].value);
    }
    return 0;
}

static bool echo_crc(const s3_resp_t *resp, const char *sent, bool *verified, st_s3_error_t *err)
{
    st_str_t v;
    if (!s3_resp_header(resp, "x-amz-checksum-crc32", &v)) return true;
    if (st_str_eqc(v, sent)) {
        *verified = true;
        return true;
    }
    if (err) {
        snprintf(err->code, sizeof err->code, "ChecksumMismatch");
        snprintf(err->message, sizeof err->message, "sent crc32 %s, S3 stored %.*s", sent, (int)(v.n > 20 ? 20 : v.n),
                 v.p);
    }
    return false;
}

static void copy_header(const s3_resp_t *resp, const char *name, char *out, size_t cap)
{
    st_str_t v;
    if (s3_resp_header(resp, name, &v)) {
        st_copy_str(out, cap, v);
    } else if (cap) {
        out[0] = '\0';
    }
}

/* ---- PutObject */

static int put_single(st_s3_client_t *c, const char *bucket, const char *key, const uint8_t *mem, int fd,
                      off_t off, uint64_t len, const st_s3_put_opts_t *o, st_s3_put_result_t *res,
                      st_s3_error_t *err)
{
    st_s3_put_opts_t none = {0};
    if (o == NULL) o = &none;
    bool lock = o->lock_mode != NULL || o->legal_hold;
    char sha[65], md5[32], crcb[12];
    uint32_t crc;
    ST_TRY(s3_digest(mem, fd, off, len, sha, &crc, lock ? md5 : NULL, NULL));
    st_s3_crc32_b64(crc, crcb);
    s3_req_t r;
    s3_resp_t resp = {0};
    hdr_bufs_t hb;
    s3_req_init(&r, "PutObject", "PUT", bucket, key);
    r.body = mem;
    r.body_fd = mem ? -1 : fd;
    r.body_off = off;
    r.body_len = len;
    r.has_body = true;
    snprintf(r.payload_hash, sizeof r.payload_hash, "%s", s3_client_unsigned_payload(c) ? ST_SIGV4_UNSIGNED_PAYLOAD : sha);
    s3_req_header(&r, "x-amz-sdk-checksum-algorithm", "CRC32");
    s3_req_header(&r, "x-amz-checksum-crc32", crcb);
    if (lock) s3_req_header(&r, "Content-MD5", md5);
    if (o->if_none_match) s3_req_header(&r, "If-None-Match", "*");
    int rc = add_object_headers(&r, o->storage_class, o->content_type ? o->content_type : "application/octet-stream",
                                o->lock_mode, o->lock_retain_until, o->legal_hold, o->meta, o->nmeta, &hb);
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    bool verified = false;
    if (rc == 0 && !echo_crc(&resp, crcb, &verified, err)) rc = ST_S3_ECHECKSUM;
    if (rc == 0 && res) {
        memset(res, 0, sizeof *res);
        copy_header(&resp, "ETag", res->etag, sizeof res->etag);
        copy_header(&resp, "x-amz-version-id", res->version_id, sizeof res->version_id);
        res->crc32 = crc;
        res->crc32_verified = verified;
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

static int put_multipart(st_s3_client_t *c, const char *bucket, const char *key, const uint8_t *mem, int fd,
                         off_t off, uint64_t len, const st_s3_put_opts_t *o, st_s3_put_result_t *res,
                         st_s3_error_t *err)
{
    st_s3_upload_t *u = NULL;
    ST_TRY(st_s3_upload_begin(c, bucket, key, o, &u, err));
    size_t ps = s3_client_part_size(c);
    int rc = 0;
    for (uint64_t done = 0; done < len && rc == 0;) {
        uint64_t n = len - done > ps ? ps : len - done;
        rc = mem ? st_s3_upload_part(u, mem + done, (size_t)n, err) : st_s3_upload_part_fd(u, fd, off + (off_t)done, n, err);
        done += n;
    }
    if (rc == 0) rc = st_s3_upload_complete(u, res, err);
    if (rc < 0) {
        st_s3_error_t ae;
        int arc = st_s3_upload_abort(u, &ae);
        if (arc < 0)
            ST_LOG_WARN(MOD, "msg=\"abort of failed multipart upload failed\" bucket=%s upload_id=%s err=\"%s\"",
                        bucket, st_s3_upload_id(u), st_s3_strerror(arc));
    }
    st_s3_upload_destroy(u);
    return rc;
}

int st_s3_put_object(st_s3_client_t *c, const char *bucket, const char *key, const void *data, size_t len,
                     const st_s3_put_opts_t *o, st_s3_put_result_t *res, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key) || (data == NULL && len > 0)) return -EINVAL;
    const uint8_t *mem = data ? data : (const uint8_t *)"";
    if (len > s3_client_threshold(c)) return put_multipart(c, bucket, key, mem, -1, 0, len, o, res, err);
    return put_single(c, bucket, key, mem, -1, 0, len, o, res, err);
}

int st_s3_put_object_fd(st_s3_client_t *c, const char *bucket, const char *key, int fd, off_t off, uint64_t len,
                        const st_s3_put_opts_t *o, st_s3_put_result_t *res, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key) || fd < 0 || off < 0) return -EINVAL;
    if (len > s3_client_threshold(c)) return put_multipart(c, bucket, key, NULL, fd, off, len, o, res, err);
    return put_single(c, bucket, key, NULL, fd, off, len, o, res, err);
}

/* ---- multipart */

typedef struct {
    char etag[80];
    char crc[12];
    uint64_t len;
} part_t;

struct st_s3_upload {
    st_s3_client_t *c;
    char *bucket, *key, *upload_id;
    bool lock;
    part_t *parts;
    int nparts, cap;
    uint32_t crc;
    uint64_t total;
    bool all_verified;
};

const char *st_s3_upload_id(const st_s3_upload_t *u) { return u ? u->upload_id : ""; }

void st_s3_upload_destroy(st_s3_upload_t *u)
{
    if (u == NULL) return;
    free(u->bucket);
    free(u->key);
    free(u->upload_id);
    free(u->parts);
    free(u);
}

int st_s3_upload_begin(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_put_opts_t *o,
                       st_s3_upload_t **out, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key)) return -EINVAL;
    st_s3_put_opts_t none = {0};
    if (o == NULL) o = &none;
    st_s3_upload_t *u = calloc(1, sizeof *u);
    if (u == NULL) return -ENOMEM;
    u->c = c;
    u->bucket = strdup(bucket);
    u->key = strdup(key);
    u->lock = o->lock_mode != NULL || o->legal_hold;
    u->all_verified = true;
    if (u->bucket == NULL || u->key == NULL) {
        st_s3_upload_destroy(u);
        return -ENOMEM;
    }
    s3_req_t r;
    s3_resp_t resp = {0};
    hdr_bufs_t hb;
    s3_req_init(&r, "CreateMultipartUpload", "POST", bucket, key);
    r.has_body = true;
    int rc = s3_req_query(&r, "uploads", NULL);
    s3_req_header(&r, "x-amz-checksum-algorithm", "CRC32");
    if (o->if_none_match) s3_req_header(&r, "If-None-Match", "*");
    if (rc == 0)
        rc = add_object_headers(&r, o->storage_class, o->content_type ? o->content_type : "application/octet-stream",
                                o->lock_mode, o->lock_retain_until, o->legal_hold, o->meta, o->nmeta, &hb);
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) rc = st_s3_parse_initiate(resp.body.data ? resp.body.data : "", resp.body.len, &u->upload_id);
    s3_resp_free(&resp);
    s3_req_free(&r);
    if (rc < 0) {
        st_s3_upload_destroy(u);
        return rc;
    }
    *out = u;
    return 0;
}

static int upload_part(st_s3_upload_t *u, const uint8_t *mem, int fd, off_t off, uint64_t len, st_s3_error_t *err)
{
    if (u->nparts >= 10000) return ST_ELIMIT;
    if (u->nparts == u->cap) {
        int cap = u->cap ? u->cap * 2 : 16;
        part_t *np = realloc(u->parts, (size_t)cap * sizeof *np);
        if (np == NULL) return -ENOMEM;
        u->parts = np;
        u->cap = cap;
    }
    char sha[65], md5[32], crcb[12], pn[16];
    uint32_t crc;
    ST_TRY(s3_digest(mem, fd, off, len, sha, &crc, u->lock ? md5 : NULL, NULL));
    st_s3_crc32_b64(crc, crcb);
    snprintf(pn, sizeof pn, "%d", u->nparts + 1);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "UploadPart", "PUT", u->bucket, u->key);
    r.body = mem;
    r.body_fd = mem ? -1 : fd;
    r.body_off = off;
    r.body_len = len;
    r.has_body = true;
    snprintf(r.payload_hash, sizeof r.payload_hash, "%s",
             s3_client_unsigned_payload(u->c) ? ST_SIGV4_UNSIGNED_PAYLOAD : sha);
    int rc = s3_req_query(&r, "partNumber", pn);
    if (rc == 0) rc = s3_req_query(&r, "uploadId", u->upload_id);
    s3_req_header(&r, "x-amz-sdk-checksum-algorithm", "CRC32");
    s3_req_header(&r, "x-amz-checksum-crc32", crcb);
    if (u->lock) s3_req_header(&r, "Content-MD5", md5);
    if (rc == 0) rc = s3_exec(u->c, &r, &resp, err);
    bool verified = false;
    if (rc == 0 && !echo_crc(&resp, crcb, &verified, err)) rc = ST_S3_ECHECKSUM;
    part_t *p = &u->parts[u->nparts];
    if (rc == 0) {
        copy_header(&resp, "ETag", p->etag, sizeof p->etag);
        if (p->etag[0] == '\0') rc = ST_EPARSE;
    }
    if (rc == 0) {
        snprintf(p->crc, sizeof p->crc, "%s", crcb);
        p->len = len;
        u->crc = u->nparts == 0 ? crc : (uint32_t)crc32_combine(u->crc, crc, (z_off_t)len);
        u->total += len;
        u->all_verified &= verified;
        u->nparts++;
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_upload_part(st_s3_upload_t *u, const void *data, size_t len, st_s3_error_t *err)
{
    if (u == NULL || (data == NULL && len > 0)) return -EINVAL;
    return upload_part(u, data ? data : (const uint8_t *)"", -1, 0, len, err);
}

int st_s3_upload_part_fd(st_s3_upload_t *u, int fd, off_t off, uint64_t len, st_s3_error_t *err)
{
    if (u == NULL || fd < 0 || off < 0) return -EINVAL;
    return upload_part(u, NULL, fd, off, len, err);
}

/* The ETag S3 gives a completed multipart object: MD5 over the parts' binary MD5s, then "-<parts>".
 * Returns false when a part ETag is not a plain MD5 (SSE-KMS and friends). */
static bool multipart_etag(const st_s3_upload_t *u, char out[48])
{
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (m == NULL || EVP_DigestInit_ex(m, EVP_md5(), NULL) != 1) {
        EVP_MD_CTX_free(m);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < u->nparts && ok; i++) {
        const char *e = u->parts[i].etag;
        size_t n = strlen(e);
        if (n >= 2 && e[0] == '"' && e[n - 1] == '"') e++, n -= 2;
        uint8_t bin[16];
        ok = n == 32;
        for (size_t j = 0; j < 16 && ok; j++) {
            unsigned v;
            ok = sscanf(e + 2 * j, "%2x", &v) == 1;
            bin[j] = (uint8_t)v;
        }
        if (ok) EVP_DigestUpdate(m, bin, 16);
    }
    uint8_t d[16];
    unsigned int dl = 0;
    if (ok) EVP_DigestFinal_ex(m, d, &dl);
    EVP_MD_CTX_free(m);
    if (!ok) return false;
    char hex[33];
    st_hex(d, 16, hex);
    snprintf(out, 48, "%s-%d", hex, u->nparts);
    return true;
}

static int complete_by_head(st_s3_upload_t *u, st_s3_put_result_t *res, st_s3_error_t *err)
{
    st_s3_object_info_t *info = malloc(sizeof *info);
    if (info == NULL) return -ENOMEM;
    st_s3_error_t he;
    int rc = st_s3_head_object(u->c, u->bucket, u->key, NULL, info, &he);
    if (rc == 0) {
        char want[48];
        const char *got = info->etag;
        size_t gn = strlen(got);
        if (gn >= 2 && got[0] == '"') got++, gn -= 2;
        char suffix[16];
        snprintf(suffix, sizeof suffix, "-%d", u->nparts);
        bool match = multipart_etag(u, want) ? (strlen(want) == gn && memcmp(want, got, gn) == 0)
                                              : (info->size == u->total && gn > strlen(suffix) &&
                                                 memcmp(got + gn - strlen(suffix), suffix, strlen(suffix)) == 0);
        if (match) {
            ST_LOG_WARN(MOD, "msg=\"CompleteMultipartUpload retried into NoSuchUpload; HEAD shows it completed\" "
                             "bucket=%s upload_id=%s",
                        u->bucket, u->upload_id);
            if (res) {
                snprintf(res->etag, sizeof res->etag, "%s", info->etag);
                snprintf(res->version_id, sizeof res->version_id, "%s", info->version_id);
            }
        } else {
            rc = ST_ENOTFOUND; /* the upload is gone and the object is not ours */
        }
    }
    free(info);
    if (rc < 0 && err) snprintf(err->code, sizeof err->code, "NoSuchUpload");
    return rc;
}

int st_s3_upload_complete(st_s3_upload_t *u, st_s3_put_result_t *res, st_s3_error_t *err)
{
    if (u == NULL || u->nparts == 0) return -EINVAL;
    st_buf_t body = ST_BUF_INIT;
    int rc = st_buf_puts(&body, "<CompleteMultipartUpload xmlns=\"" S3_NS "\">");
    for (int i = 0; i < u->nparts && rc == 0; i++) {
        rc = st_buf_puts(&body, "<Part><ETag>");
        if (rc == 0) rc = st_xml_escape(&body, u->parts[i].etag, strlen(u->parts[i].etag));
        if (rc == 0)
            rc = st_buf_printf(&body, "</ETag><ChecksumCRC32>%s</ChecksumCRC32><PartNumber>%d</PartNumber></Part>",
                               u->parts[i].crc, i + 1);
    }
    if (rc == 0) rc = st_buf_puts(&body, "</CompleteMultipartUpload>");
    if (rc < 0) {
        st_buf_free(&body);
        return rc;
    }
    s3_req_t r;
    s3_resp_t resp = {0};
    st_s3_error_t local;
    if (err == NULL) err = &local;
    char md5[32];
    md5_b64(body.data, body.len, md5);
    s3_req_init(&r, "CompleteMultipartUpload", "POST", u->bucket, u->key);
    r.body = (const uint8_t *)body.data;
    r.body_len = body.len;
    r.has_body = true;
    r.error_in_200 = true;
    rc = s3_req_query(&r, "uploadId", u->upload_id);
    s3_req_header(&r, "Content-Type", "application/xml");
    s3_req_header(&r, "Content-MD5", md5);
    if (rc == 0) rc = s3_exec(u->c, &r, &resp, err);
    if (res) memset(res, 0, sizeof *res);
    if (rc == 0) {
        char etag[80] = "", crc[16] = "";
        rc = st_s3_parse_etag_result(resp.body.data ? resp.body.data : "", resp.body.len, etag, crc, err);
        if (rc == 0 && res) {
            snprintf(res->etag, sizeof res->etag, "%s", etag);
            copy_header(&resp, "x-amz-version-id", res->version_id, sizeof res->version_id);
        }
    } else if (rc == ST_ENOTFOUND && strcmp(err->code, "NoSuchUpload") == 0 && err->attempts > 1) {
        rc = complete_by_head(u, res, err);
    }
    if (rc == 0 && res) {
        res->crc32 = u->crc;
        res->crc32_verified = u->all_verified;
        res->parts = u->nparts;
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    st_buf_free(&body);
    return rc;
}

int st_s3_upload_abort(st_s3_upload_t *u, st_s3_error_t *err)
{
    if (u == NULL) return -EINVAL;
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "AbortMultipartUpload", "DELETE", u->bucket, u->key);
    int rc = s3_req_query(&r, "uploadId", u->upload_id);
    if (rc == 0) rc = s3_exec(u->c, &r, &resp, err);
    if (rc == ST_ENOTFOUND) rc = 0; /* already gone */
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

/* ---- HeadObject / GetObject */

static void fill_info(const s3_resp_t *resp, st_s3_object_info_t *info)
{
    memset(info, 0, sizeof *info);
    st_str_t v;
    if (s3_resp_header(resp, "Content-Length", &v)) {
        char tmp[32];
        st_copy_str(tmp, sizeof tmp, v);
        info->size = strtoull(tmp, NULL, 10);
    }
    if (s3_resp_header(resp, "Content-Range", &v)) {
        const char *slash = memchr(v.p, '/', v.n);
        if (slash && (size_t)(v.p + v.n - slash) > 1 && slash[1] != '*') {
            char tmp[32];
            st_copy_str(tmp, sizeof tmp, st_str(slash + 1, (size_t)(v.p + v.n - slash - 1)));
            info->size = strtoull(tmp, NULL, 10);
        }
    }
    copy_header(resp, "ETag", info->etag, sizeof info->etag);
    copy_header(resp, "x-amz-storage-class", info->storage_class, sizeof info->storage_class);
    if (info->storage_class[0] == '\0') snprintf(info->storage_class, sizeof info->storage_class, "STANDARD");
    copy_header(resp, "x-amz-version-id", info->version_id, sizeof info->version_id);
    copy_header(resp, "Content-Type", info->content_type, sizeof info->content_type);
    if (s3_resp_header(resp, "Last-Modified", &v)) st_s3_parse_http_date(v.p, v.n, &info->last_modified);
    copy_header(resp, "x-amz-checksum-crc32", info->checksum_crc32, sizeof info->checksum_crc32);
    if (s3_resp_header(resp, "x-amz-restore", &v) && st_s3_parse_restore(v.p, v.n, &info->restore) < 0) {
        ST_LOG_WARN(MOD, "msg=\"unparsable x-amz-restore header\" value=\"%.*s\"", (int)(v.n > 120 ? 120 : v.n),
                    v.p);
        info->restore.present = true;
    }
    copy_header(resp, "x-amz-object-lock-mode", info->lock_mode, sizeof info->lock_mode);
    if (s3_resp_header(resp, "x-amz-object-lock-retain-until-date", &v))
        st_s3_parse_iso8601(v.p, v.n, &info->lock_retain_until);
    info->legal_hold = s3_resp_header(resp, "x-amz-object-lock-legal-hold", &v) && st_str_ieq(v, "ON");
    /* user metadata */
    const char *p = resp->hdrs.data, *end = p ? p + resp->hdrs.len : NULL;
    while (p && p < end && info->nmeta < ST_S3_MAX_META) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *colon = memchr(p, ':', (size_t)(le - p));
        if (colon && colon - p > 11 && strncasecmp(p, "x-amz-meta-", 11) == 0) {
            const char *vs = colon + 1, *ve = le;
            while (vs < ve && *vs == ' ') vs++;
            while (ve > vs && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
            int i = info->nmeta++;
            st_copy_str(info->meta[i].name, sizeof info->meta[i].name, st_str(p + 11, (size_t)(colon - p - 11)));
            for (char *q = info->meta[i].name; *q; q++)
                if (*q >= 'A' && *q <= 'Z') *q = (char)(*q + 32);
            st_copy_str(info->meta[i].value, sizeof info->meta[i].value, st_str(vs, (size_t)(ve - vs)));
        }
        p = nl ? nl + 1 : end;
    }
}

int st_s3_head_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                      st_s3_object_info_t *info, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key)) return -EINVAL;
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "HeadObject", "HEAD", bucket, key);
    int rc = version_id ? s3_req_query(&r, "versionId", version_id) : 0;
    s3_req_header(&r, "x-amz-checksum-mode", "ENABLED");
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0 && info) fill_info(&resp, info);
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

static int get_common(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_get_opts_t *o,
                      st_buf_t *buf, int fd, off_t fd_off, uint64_t *nread, st_s3_object_info_t *info,
                      st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key)) return -EINVAL;
    st_s3_get_opts_t none = {0};
    if (o == NULL) o = &none;
    s3_req_t r;
    s3_resp_t resp = {0};
    char range[64];
    s3_req_init(&r, "GetObject", "GET", bucket, key);
    int rc = o->version_id ? s3_req_query(&r, "versionId", o->version_id) : 0;
    if (o->range) {
        if (o->length > 0) {
            snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)o->offset,
                     (unsigned long long)(o->offset + o->length - 1));
        } else {
            snprintf(range, sizeof range, "bytes=%llu-", (unsigned long long)o->offset);
        }
        s3_req_header(&r, "Range", range);
    }
    s3_req_header(&r, "x-amz-checksum-mode", "ENABLED");
    r.sink_buf = buf;
    r.sink_fd = fd;
    r.sink_off = fd_off;
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) {
        st_str_t v;
        /* verify a whole-object checksum (composite "-N" values and ranges cannot be checked) */
        if (resp.status == 200 && s3_resp_header(&resp, "x-amz-checksum-crc32", &v) && memchr(v.p, '-', v.n) == NULL) {
            char mine[12];
            st_s3_crc32_b64(resp.crc32, mine);
            if (!st_str_eqc(v, mine)) {
                rc = ST_S3_ECHECKSUM;
                if (err) snprintf(err->code, sizeof err->code, "ChecksumMismatch");
            }
        }
        if (nread) *nread = resp.received;
        if (info) fill_info(&resp, info);
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_get_object(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_get_opts_t *o,
                     st_buf_t *out, st_s3_object_info_t *info, st_s3_error_t *err)
{
    if (out == NULL) return -EINVAL;
    st_buf_reset(out);
    return get_common(c, bucket, key, o, out, -1, 0, NULL, info, err);
}

int st_s3_get_object_fd(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_get_opts_t *o, int fd,
                        off_t fd_off, uint64_t *nread, st_s3_object_info_t *info, st_s3_error_t *err)
{
    if (fd < 0 || fd_off < 0) return -EINVAL;
    return get_common(c, bucket, key, o, NULL, fd, fd_off, nread, info, err);
}

/* ---- CopyObject */

int st_s3_copy_object(st_s3_client_t *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
                      const char *dst_key, const st_s3_copy_opts_t *o, st_s3_put_result_t *res, st_s3_error_t *err)
{
    if (!valid_name(src_bucket) || !valid_name(src_key) || !valid_name(dst_bucket) || !valid_name(dst_key))
        return -EINVAL;
    st_s3_copy_opts_t none = {0};
    if (o == NULL) o = &none;
    st_buf_t src = ST_BUF_INIT;
    int rc = st_sigv4_uri_encode(&src, src_bucket, strlen(src_bucket), false);
    if (rc == 0) rc = st_buf_putc(&src, '/');
    if (rc == 0) rc = st_sigv4_uri_encode(&src, src_key, strlen(src_key), true);
    if (rc == 0 && o->src_version_id) {
        rc = st_buf_puts(&src, "?versionId=");
        if (rc == 0) rc = st_sigv4_uri_encode(&src, o->src_version_id, strlen(o->src_version_id), false);
    }
    s3_req_t r;
    s3_resp_t resp = {0};
    hdr_bufs_t hb;
    s3_req_init(&r, "CopyObject", "PUT", dst_bucket, dst_key);
    r.has_body = true;
    r.error_in_200 = true;
    if (rc == 0) {
        s3_req_header(&r, "x-amz-copy-source", st_buf_cstr(&src));
        if (o->replace_metadata) s3_req_header(&r, "x-amz-metadata-directive", "REPLACE");
        /* S3 (and moto) want an integrity header on any write that sets Object Lock; a copy has no
         * body, so this is the MD5 of the empty string. */
        if (o->lock_mode) s3_req_header(&r, "Content-MD5", "1B2M2Y8AsgTpgAEAAAAAAA==");
        rc = add_object_headers(&r, o->storage_class, o->replace_metadata ? o->content_type : NULL, o->lock_mode,
                                o->lock_retain_until, false, o->replace_metadata ? o->meta : NULL,
                                o->replace_metadata ? o->nmeta : 0, &hb);
    }
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) {
        char etag[80] = "", crc[16] = "";
        rc = st_s3_parse_etag_result(resp.body.data ? resp.body.data : "", resp.body.len, etag, crc, err);
        if (rc == ST_S3_EREMOTE && err) {
            rc = strcmp(err->code, "ObjectNotInActiveTierError") == 0 || strcmp(err->code, "InvalidObjectState") == 0
                     ? ST_S3_EARCHIVED
                     : ST_S3_EREMOTE;
        }
        if (rc == 0 && res) {
            memset(res, 0, sizeof *res);
            snprintf(res->etag, sizeof res->etag, "%s", etag);
            copy_header(&resp, "x-amz-version-id", res->version_id, sizeof res->version_id);
            uint8_t be[4];
            if (crc[0] && st_base64_decode(crc, strlen(crc), be, 4) == 4)
                res->crc32 = (uint32_t)be[0] << 24 | (uint32_t)be[1] << 16 | (uint32_t)be[2] << 8 | be[3];
        }
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    st_buf_free(&src);
    return rc;
}

/* ---- deletes */

int st_s3_delete_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                        bool bypass_governance, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key)) return -EINVAL;
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "DeleteObject", "DELETE", bucket, key);
    int rc = version_id ? s3_req_query(&r, "versionId", version_id) : 0;
    if (bypass_governance) s3_req_header(&r, "x-amz-bypass-governance-retention", "true");
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

static int delete_batch(st_s3_client_t *c, const char *bucket, const st_s3_object_id_t *ids, size_t n,
                        bool bypass, st_s3_delete_result_t *res, st_s3_error_t *err)
{
    st_buf_t body = ST_BUF_INIT;
    int rc = st_buf_puts(&body, "<Delete xmlns=\"" S3_NS "\"><Quiet>true</Quiet>");
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!valid_name(ids[i].key)) rc = -EINVAL;
        if (rc == 0) rc = st_buf_puts(&body, "<Object><Key>");
        if (rc == 0) rc = st_xml_escape(&body, ids[i].key, strlen(ids[i].key));
        if (rc == 0) rc = st_buf_puts(&body, "</Key>");
        if (rc == 0 && ids[i].version_id) {
            rc = st_buf_puts(&body, "<VersionId>");
            if (rc == 0) rc = st_xml_escape(&body, ids[i].version_id, strlen(ids[i].version_id));
            if (rc == 0) rc = st_buf_puts(&body, "</VersionId>");
        }
        if (rc == 0) rc = st_buf_puts(&body, "</Object>");
    }
    if (rc == 0) rc = st_buf_puts(&body, "</Delete>");
    if (rc < 0) {
        st_buf_free(&body);
        return rc;
    }
    char md5[32];
    md5_b64(body.data, body.len, md5);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "DeleteObjects", "POST", bucket, NULL);
    r.body = (const uint8_t *)body.data;
    r.body_len = body.len;
    r.has_body = true;
    r.error_in_200 = true;
    rc = s3_req_query(&r, "delete", NULL);
    s3_req_header(&r, "Content-Type", "application/xml");
    s3_req_header(&r, "Content-MD5", md5);
    if (bypass) s3_req_header(&r, "x-amz-bypass-governance-retention", "true");
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) {
        size_t before_err = res->nerrors, before_del = res->ndeleted;
        rc = st_s3_parse_delete_result(resp.body.data ? resp.body.data : "", resp.body.len, res);
        /* quiet mode lists only failures: everything else was deleted */
        if (rc == 0 && res->ndeleted == before_del) res->ndeleted += n - (res->nerrors - before_err);
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    st_buf_free(&body);
    return rc;
}

int st_s3_delete_objects(st_s3_client_t *c, const char *bucket, const st_s3_object_id_t *ids, size_t n,
                         bool bypass_governance, st_s3_delete_result_t *res, st_s3_error_t *err)
{
    if (!valid_name(bucket) || res == NULL || (ids == NULL && n > 0)) return -EINVAL;
    memset(res, 0, sizeof *res);
    for (size_t i = 0; i < n; i += 1000) {
        size_t m = n - i > 1000 ? 1000 : n - i;
        ST_TRY(delete_batch(c, bucket, ids + i, m, bypass_governance, res, err));
    }
    return 0;
}

/* ---- listing */

int st_s3_list_objects(st_s3_client_t *c, const char *bucket, const st_s3_list_opts_t *o, st_s3_list_page_t *page,
                       st_s3_error_t *err)
{
    if (!valid_name(bucket) || page == NULL) return -EINVAL;
    memset(page, 0, sizeof *page);
    st_s3_list_opts_t none = {0};
    if (o == NULL) o = &none;
    if (o->max_keys < 0 || o->max_keys > 1000) return -EINVAL;
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "ListObjectsV2", "GET", bucket, NULL);
    int rc = s3_req_query(&r, "list-type", "2");
    if (rc == 0) rc = s3_req_query(&r, "encoding-type", "url");
    if (rc == 0 && o->prefix) rc = s3_req_query(&r, "prefix", o->prefix);
    if (rc == 0 && o->delimiter) rc = s3_req_query(&r, "delimiter", o->delimiter);
    if (rc == 0 && o->start_after) rc = s3_req_query(&r, "start-after", o->start_after);
    if (rc == 0 && o->continuation_token) rc = s3_req_query(&r, "continuation-token", o->continuation_token);
    if (rc == 0 && o->max_keys > 0) {
        char mk[16];
        snprintf(mk, sizeof mk, "%d", o->max_keys);
        rc = s3_req_query(&r, "max-keys", mk);
    }
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) rc = st_s3_parse_list(resp.body.data ? resp.body.data : "", resp.body.len, page);
    if (rc == 0 && page->truncated && page->next_token == NULL) rc = ST_EPARSE; /* would loop forever */
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_list_all(st_s3_client_t *c, const char *bucket, const st_s3_list_opts_t *o, st_s3_list_cb cb, void *arg,
                   st_s3_error_t *err)
{
    st_s3_list_opts_t lo = {0};
    if (o) lo = *o;
    char *token = NULL;
    int rc = 0;
    for (;;) {
        st_s3_list_page_t page;
        lo.continuation_token = token;
        rc = st_s3_list_objects(c, bucket, &lo, &page, err);
        if (rc < 0) break;
        for (size_t i = 0; i < page.n && rc == 0; i++) rc = cb(&page.entries[i], arg);
        for (size_t i = 0; i < page.nprefixes && rc == 0; i++) {
            st_s3_list_entry_t e = {.key = page.prefixes[i]};
            snprintf(e.storage_class, sizeof e.storage_class, "PREFIX");
            rc = cb(&e, arg);
        }
        free(token);
        token = page.next_token;
        page.next_token = NULL;
        bool more = page.truncated;
        st_s3_list_page_free(&page);
        if (rc != 0 || !more) break;
    }
    free(token);
    return rc;
}

/* ---- restore, retention, buckets */

int st_s3_restore_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id, int days,
                         st_s3_tier_t tier, bool *started, st_s3_error_t *err)
{
    static const char *const tiers[] = {"Standard", "Bulk", "Expedited"};
    if (!valid_name(bucket) || !valid_name(key) || days < 1 || (unsigned)tier > ST_S3_TIER_EXPEDITED) return -EINVAL;
    char body[320], md5[32];
    int bn = snprintf(body, sizeof body,
                      "<RestoreRequest xmlns=\"" S3_NS "\"><Days>%d</Days><GlacierJobParameters><Tier>%s</Tier>"
                      "</GlacierJobParameters></RestoreRequest>",
                      days, tiers[tier]);
    md5_b64(body, (size_t)bn, md5);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "RestoreObject", "POST", bucket, key);
    r.body = (const uint8_t *)body;
    r.body_len = (uint64_t)bn;
    r.has_body = true;
    int rc = s3_req_query(&r, "restore", NULL);
    if (rc == 0 && version_id) rc = s3_req_query(&r, "versionId", version_id);
    s3_req_header(&r, "Content-Type", "application/xml");
    s3_req_header(&r, "Content-MD5", md5);
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0 && started) *started = resp.status == 202;
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_put_object_retention(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                               const char *mode, time_t retain_until, bool bypass_governance, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key) || mode == NULL ||
        (strcmp(mode, "COMPLIANCE") != 0 && strcmp(mode, "GOVERNANCE") != 0) || retain_until <= 0)
        return -EINVAL;
    char until[32], body[256], md5[32];
    fmt_iso(retain_until, until);
    int bn = snprintf(body, sizeof body,
                      "<Retention xmlns=\"" S3_NS "\"><Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
                      mode, until);
    md5_b64(body, (size_t)bn, md5);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "PutObjectRetention", "PUT", bucket, key);
    r.body = (const uint8_t *)body;
    r.body_len = (uint64_t)bn;
    r.has_body = true;
    int rc = s3_req_query(&r, "retention", NULL);
    if (rc == 0 && version_id) rc = s3_req_query(&r, "versionId", version_id);
    s3_req_header(&r, "Content-Type", "application/xml");
    s3_req_header(&r, "Content-MD5", md5);
    if (bypass_governance) s3_req_header(&r, "x-amz-bypass-governance-retention", "true");
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_get_object_retention(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                               char mode[16], time_t *retain_until, st_s3_error_t *err)
{
    if (!valid_name(bucket) || !valid_name(key) || mode == NULL || retain_until == NULL) return -EINVAL;
    s3_req_t r;
    s3_resp_t resp = {0};
    st_s3_error_t local;
    if (err == NULL) err = &local;
    s3_req_init(&r, "GetObjectRetention", "GET", bucket, key);
    int rc = s3_req_query(&r, "retention", NULL);
    if (rc == 0 && version_id) rc = s3_req_query(&r, "versionId", version_id);
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    if (rc == 0) {
        rc = st_s3_parse_retention(resp.body.data ? resp.body.data : "", resp.body.len, mode, retain_until);
    } else if (rc == ST_ENOTFOUND && strcmp(err->code, "NoSuchObjectLockConfiguration") == 0) {
        mode[0] = '\0';
        *retain_until = 0;
        rc = 0;
    }
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_create_bucket(st_s3_client_t *c, const char *bucket, bool object_lock, st_s3_error_t *err)
{
    if (!valid_name(bucket)) return -EINVAL;
    st_s3_error_t local;
    if (err == NULL) err = &local;
    char body[256];
    int bn = 0;
    const char *region = s3_client_region(c);
    if (strcmp(region, "us-east-1") != 0)
        bn = snprintf(body, sizeof body,
                      "<CreateBucketConfiguration xmlns=\"" S3_NS "\"><LocationConstraint>%s</LocationConstraint>"
                      "</CreateBucketConfiguration>",
                      region);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "CreateBucket", "PUT", bucket, NULL);
    r.body = bn ? (const uint8_t *)body : NULL;
    r.body_len = (uint64_t)bn;
    r.has_body = true;
    if (bn) s3_req_header(&r, "Content-Type", "application/xml");
    if (object_lock) s3_req_header(&r, "x-amz-bucket-object-lock-enabled", "true");
    int rc = s3_exec(c, &r, &resp, err);
    if (rc < 0 && strcmp(err->code, "BucketAlreadyOwnedByYou") == 0) rc = 0;
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

int st_s3_put_bucket_versioning(st_s3_client_t *c, const char *bucket, bool enabled, st_s3_error_t *err)
{
    if (!valid_name(bucket)) return -EINVAL;
    char body[200], md5[32];
    int bn = snprintf(body, sizeof body,
                      "<VersioningConfiguration xmlns=\"" S3_NS "\"><Status>%s</Status></VersioningConfiguration>",
                      enabled ? "Enabled" : "Suspended");
    md5_b64(body, (size_t)bn, md5);
    s3_req_t r;
    s3_resp_t resp = {0};
    s3_req_init(&r, "PutBucketVersioning", "PUT", bucket, NULL);
    r.body = (const uint8_t *)body;
    r.body_len = (uint64_t)bn;
    r.has_body = true;
    int rc = s3_req_query(&r, "versioning", NULL);
    s3_req_header(&r, "Content-Type", "application/xml");
    s3_req_header(&r, "Content-MD5", md5);
    if (rc == 0) rc = s3_exec(c, &r, &resp, err);
    s3_resp_free(&resp);
    s3_req_free(&r);
    return rc;
}

/* ---- presigned URLs */

int st_s3_presign(st_s3_client_t *c, const char *method, const char *bucket, const char *key, long expires_s,
                  char **url)
{
    if (method == NULL || !valid_name(bucket) || !valid_name(key) || url == NULL) return -EINVAL;
    st_aws_creds_t cr;
    ST_TRY(s3_client_creds(c, &cr));
    st_buf_t u = ST_BUF_INIT, host = ST_BUF_INIT, path = ST_BUF_INIT;
    st_sigv4_t sig;
    memset(&sig, 0, sizeof sig);
    int rc = s3_client_url(c, bucket, key, &u, &host, &path);
    if (rc == 0) {
        st_kv_t h[] = {{"host", st_buf_cstr(&host)}};
        st_sigv4_request_t sr = {.method = method, .path = st_buf_cstr(&path), .query = "", .headers = h,
                                 .nheaders = 1, .payload_hash = ST_SIGV4_UNSIGNED_PAYLOAD};
        st_sigv4_params_t sp = {.access_key = cr.access_key, .secret_key = cr.secret_key,
                                .session_token = cr.session_token, .region = s3_client_region(c), .service = "s3",
                                .now = s3_client_now(c), .flags = ST_SIGV4_S3, .expires = expires_s};
        rc = st_sigv4_presign(&sr, &sp, &sig);
    }
    if (rc == 0) rc = st_buf_printf(&u, "?%s", st_buf_cstr(&sig.query));
    if (rc == 0) {
        *url = (char *)st_buf_cstr(&u);
        u.data = NULL;
    }
    st_aws_creds_clear(&cr);
    st_sigv4_free(&sig);
    st_buf_free(&u);
    st_buf_free(&host);
    st_buf_free(&path);
    return rc;
}
