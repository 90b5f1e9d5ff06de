/* client.c: the S3 client object and its request executor: addressing (path-style or
 * virtual-hosted), signing each attempt, a pool of libcurl easy handles shared by threads, retries
 * with full-jitter exponential backoff, clock-skew correction, and metrics. The individual S3
 * operations (s3.c) only build requests and parse answers. */
#include "objstore/objstore_int.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/md5.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MOD "objstore"
#define POOL_MAX 64

struct st_s3_client {
    char *region;
    char *scheme;    /* "http" or "https" */
    char *host;      /* host[:port], default port dropped */
    char *base_path; /* "" or "/prefix" of the endpoint */
    bool custom_endpoint;
    st_s3_addressing_t addressing;
    st_aws_creds_provider_t *creds;
    bool own_creds;
    long connect_timeout_ms, request_timeout_ms, low_speed_time_s;
    int max_attempts;
    long retry_base_ms, retry_max_ms;
    size_t part_size, threshold;
    bool unsigned_payload;
    char *ca_file;
    pthread_mutex_t pool_mu;
    CURL *pool[POOL_MAX];
    int npool, max_idle;
    _Atomic long skew_s;
    _Atomic long long fixed_now;
};

const char *st_s3_strerror(int rc)
{
    switch (rc) {
    case ST_S3_EARCHIVED: return "object is archived (restore it first)";
    case ST_S3_ERESTORING: return "restore already in progress";
    case ST_S3_EACCESS: return "access denied";
    case ST_S3_EAUTH: return "authentication failed or no credentials";
    case ST_S3_ECHECKSUM: return "checksum mismatch";
    case ST_S3_EPRECONDITION: return "precondition failed";
    case ST_S3_EEXISTS: return "already exists";
    case ST_S3_EUNAVAILABLE: return "service unavailable or throttled";
    case ST_S3_ENETWORK: return "network error";
    case ST_S3_EREMOTE: return "S3 error";
    default: return st_strerror(rc);
    }
}

/* ---- configuration */

static const char *envs(const char *n)
{
    const char *v = getenv(n);
    return v && v[0] ? v : NULL;
}

static int parse_endpoint(st_s3_client_t *c, const char *ep)
{
    const char *sep = strstr(ep, "://");
    if (sep == NULL) return -EINVAL;
    size_t sn = (size_t)(sep - ep);
    if (!((sn == 4 && strncasecmp(ep, "http", 4) == 0) || (sn == 5 && strncasecmp(ep, "https", 5) == 0)))
        return -EINVAL;
    c->scheme = strndup(ep, sn);
    const char *h = sep + 3, *slash = strchr(h, '/');
    size_t hn = slash ? (size_t)(slash - h) : strlen(h);
    if (hn == 0 || memchr(h, '@', hn) || memchr(h, '?', hn)) return -EINVAL;
    /* drop a default port so Host matches what curl would put there */
    if (sn == 4 && hn > 3 && memcmp(h + hn - 3, ":80", 3) == 0) hn -= 3;
    if (sn == 5 && hn > 4 && memcmp(h + hn - 4, ":443", 4) == 0) hn -= 4;
    c->host = strndup(h, hn);
    const char *bp = slash ? slash : "";
    size_t bn = strlen(bp);
    while (bn > 0 && bp[bn - 1] == '/') bn--;
    c->base_path = strndup(bp, bn);
    if (c->scheme == NULL || c->host == NULL || c->base_path == NULL) return -ENOMEM;
    for (char *p = c->scheme; *p; p++) *p = (char)(*p | 0x20);
    return 0;
}

int st_s3_client_create(const st_s3_config_t *cfg, st_s3_client_t **out)
{
    st_s3_config_t def = {0};
    if (cfg == NULL) cfg = &def;
    st_objstore_global_init();
    st_s3_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    pthread_mutex_init(&c->pool_mu, NULL);
    int rc = 0;
    const char *region = cfg->region ? cfg->region : envs("AWS_REGION");
    if (region == NULL) region = envs("AWS_DEFAULT_REGION");
    if (region == NULL) region = "us-east-1";
    c->region = strdup(region);
    if (c->region == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->endpoint) {
        c->custom_endpoint = true;
        rc = parse_endpoint(c, cfg->endpoint);
    } else {
        char ep[256];
        snprintf(ep, sizeof ep, "https://s3.%s.amazonaws.com", region);
        rc = parse_endpoint(c, ep);
    }
    if (rc < 0) goto fail;
    c->addressing = cfg->addressing;
    c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 5000;
    c->request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 0;
    c->low_speed_time_s = cfg->low_speed_time_s > 0 ? cfg->low_speed_time_s : 30;
    c->max_attempts = cfg->max_attempts > 0 ? cfg->max_attempts : 5;
    c->retry_base_ms = cfg->retry_base_ms > 0 ? cfg->retry_base_ms : 100;
    c->retry_max_ms = cfg->retry_max_ms > 0 ? cfg->retry_max_ms : 20000;
    c->part_size = cfg->part_size > 0 ? cfg->part_size : (size_t)16 << 20;
    c->threshold = cfg->multipart_threshold > 0 ? cfg->multipart_threshold : (size_t)32 << 20;
    if (c->part_size > ((size_t)5 << 30) || c->threshold < c->part_size / 2) {
        rc = -EINVAL;
        goto fail;
    }
    c->unsigned_payload = cfg->unsigned_payload;
    c->max_idle = cfg->max_idle_handles > 0 ? cfg->max_idle_handles : 8;
    if (c->max_idle > POOL_MAX) c->max_idle = POOL_MAX;
    if (cfg->ca_file && (c->ca_file = strdup(cfg->ca_file)) == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if (cfg->creds) {
        c->creds = cfg->creds;
    } else {
        st_aws_creds_opts_t co = {.region = c->region};
        if ((rc = st_aws_creds_provider_create(&co, &c->creds)) < 0) goto fail;
        c->own_creds = true;
    }
    *out = c;
    return 0;
fail:
    st_s3_client_destroy(c);
    return rc;
}

void st_s3_client_destroy(st_s3_client_t *c)
{
    if (c == NULL) return;
    for (int i = 0; i < c->npool; i++) curl_easy_cleanup(c->pool[i]);
    pthread_mutex_destroy(&c->pool_mu);
    if (c->own_creds) st_aws_creds_provider_destroy(c->creds);
    free(c->region);
    free(c->scheme);
    free(c->host);
    free(c->base_path);
    free(c->ca_file);
    free(c);
}

void st_s3_client_set_time(st_s3_client_t *c, time_t fixed_now) { atomic_store(&c->fixed_now, (long long)fixed_now); }

time_t s3_client_now(st_s3_client_t *c)
{
    long long f = atomic_load(&c->fixed_now);
    if (f) return (time_t)f;
    return time(NULL) + atomic_load(&c->skew_s);
}

bool s3_client_unsigned_payload(const st_s3_client_t *c)
{
    return c->unsigned_payload && strcmp(c->scheme, "https") == 0;
}
size_t s3_client_part_size(const st_s3_client_t *c) { return c->part_size; }
size_t s3_client_threshold(const st_s3_client_t *c) { return c->threshold; }
const char *s3_client_region(const st_s3_client_t *c) { return c->region; }
int s3_client_creds(st_s3_client_t *c, st_aws_creds_t *out) { return st_aws_creds_get(c->creds, out); }

/* Virtual-hosted style needs a DNS label: lowercase letters, digits, '-' and no dots (TLS wildcard). */
static bool virtual_ok(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || b[0] == '-' || b[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++)
        if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-')) return false;
    return true;
}

int s3_client_url(st_s3_client_t *c, const char *bucket, const char *key, st_buf_t *url, st_buf_t *host,
                  st_buf_t *path)
{
    bool vhost = false;
    if (bucket != NULL) {
        if (c->addressing == ST_S3_ADDR_VIRTUAL) {
            vhost = true;
        } else if (c->addressing == ST_S3_ADDR_AUTO) {
            vhost = !c->custom_endpoint && virtual_ok(bucket);
        }
    }
    if (vhost) {
        ST_TRY(st_buf_printf(host, "%s.%s", bucket, c->host));
    } else {
        ST_TRY(st_buf_puts(host, c->host));
    }
    ST_TRY(st_buf_puts(path, c->base_path));
    if (bucket != NULL && !vhost) {
        ST_TRY(st_buf_putc(path, '/'));
        ST_TRY(st_sigv4_uri_encode(path, bucket, strlen(bucket), false));
    }
    if (key != NULL) {
        ST_TRY(st_buf_putc(path, '/'));
        ST_TRY(st_sigv4_uri_encode(path, key, strlen(key), true));
    } else if (path->len == 0) {
        ST_TRY(st_buf_putc(path, '/'));
    }
    return st_buf_printf(url, "%s://%s%s", c->scheme, st_buf_cstr(host), st_buf_cstr(path));
}

/* ---- curl handle pool */

static CURL *pool_get(st_s3_client_t *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_mu);
    if (c->npool > 0) h = c->pool[--c->npool];
    pthread_mutex_unlock(&c->pool_mu);
    if (h != NULL) {
        curl_easy_reset(h); /* keeps its live connections */
        return h;
    }
    return curl_easy_init();
}

static void pool_put(st_s3_client_t *c, CURL *h, bool keep)
{
    if (h == NULL) return;
    pthread_mutex_lock(&c->pool_mu);
    if (keep && c->npool < c->max_idle) {
        c->pool[c->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_mu);
    if (h) curl_easy_cleanup(h);
}

/* ---- requests */

void s3_req_init(s3_req_t *r, const char *op, const char *method, const char *bucket, const char *key)
{
    memset(r, 0, sizeof *r);
    r->op = op;
    r->method = method;
    r->bucket = bucket;
    r->key = key;
    r->body_fd = -1;
    r->sink_fd = -1;
}

void s3_req_free(s3_req_t *r) { st_buf_free(&r->query); }

int s3_req_query(s3_req_t *r, const char *name, const char *value)
{
    if (r->query.len) ST_TRY(st_buf_putc(&r->query, '&'));
    ST_TRY(st_sigv4_uri_encode(&r->query, name, strlen(name), false));
    ST_TRY(st_buf_putc(&r->query, '='));
    return value ? st_sigv4_uri_encode(&r->query, value, strlen(value), false) : 0;
}

void s3_req_header(s3_req_t *r, const char *name, const char *value)
{
    ST_ASSERT(r->nhdr < (int)(sizeof r->hdr / sizeof r->hdr[0]));
    r->hdr[r->nhdr++] = (st_kv_t){name, value};
}

void s3_resp_free(s3_resp_t *r)
{
    st_buf_free(&r->body);
    st_buf_free(&r->hdrs);
}

bool s3_resp_header(const s3_resp_t *r, const char *name, st_str_t *out)
{
    size_t nn = strlen(name);
    const char *p = r->hdrs.data, *end = p ? p + r->hdrs.len : NULL;
    while (p && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > nn && p[nn] == ':' && strncasecmp(p, name, nn) == 0) {
            const char *v = p + nn + 1;
            while (v < le && (*v == ' ' || *v == '\t')) v++;
            const char *ve = le;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *out = st_str(v, (size_t)(ve - v));
            return true;
        }
        p = nl ? nl + 1 : end;
    }
    return false;
}

int s3_digest(const uint8_t *mem, int fd, off_t off, uint64_t len, char sha_hex[65], uint32_t *crc,
              char *md5_b64, uint8_t *md5_raw)
{
    EVP_MD_CTX *sha = EVP_MD_CTX_new(), *md5 = NULL;
    int rc = 0;
    if (sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1) {
        rc = -ENOMEM;
        goto out;
    }
    if (md5_b64 || md5_raw) {
        md5 = EVP_MD_CTX_new();
        if (md5 == NULL || EVP_DigestInit_ex(md5, EVP_md5(), NULL) != 1) {
            rc = -ENOMEM;
            goto out;
        }
    }
    uint32_t c = 0;
    uint8_t *buf = mem ? NULL : malloc(1 << 20);
    if (!mem && buf == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint64_t done = 0; done < len;) {
        size_t n = len - done > (1 << 20) ? (1 << 20) : (size_t)(len - done);
        const uint8_t *p;
        if (mem) {
            p = mem + done;
        } else {
            ssize_t r = pread(fd, buf, n, off + (off_t)done);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                rc = r < 0 ? -errno : -EIO; /* a short file is an I/O error for an upload */
                break;
            }
            n = (size_t)r;
            p = buf;
        }
        EVP_DigestUpdate(sha, p, n);
        if (md5) EVP_DigestUpdate(md5, p, n);
        c = st_crc32(c, p, n);
        done += n;
    }
    free(buf);
    if (rc == 0) {
        uint8_t h[32];
        unsigned int hl = 0;
        EVP_DigestFinal_ex(sha, h, &hl);
        st_hex(h, 32, sha_hex);
        if (md5) {
            uint8_t m[16];
            EVP_DigestFinal_ex(md5, m, &hl);
            if (md5_b64) st_base64(m, 16, md5_b64);
            if (md5_raw) memcpy(md5_raw, m, 16);
        }
        *crc = c;
    }
out:
    EVP_MD_CTX_free(sha);
    EVP_MD_CTX_free(md5);
    return rc;
}

/* ---- one attempt */

typedef struct {
    const s3_req_t *r;
    uint64_t pos;
    int err;
} src_t;

static size_t read_cb(char *buf, size_t sz, size_t nm, void *arg)
{
    src_t *s = arg;
    size_t want = sz * nm;
    uint64_t left = s->r->body_len - s->pos;
    if (want > left) want = (size_t)left;
    if (want == 0) return 0;
    if (s->r->body) {
        memcpy(buf, s->r->body + s->pos, want);
    } else {
        ssize_t n;
        do {
            n = pread(s->r->body_fd, buf, want, s->r->body_off + (off_t)s->pos);
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            s->err = n < 0 ? -errno : -EIO;
            return CURL_READFUNC_ABORT;
        }
        want = (size_t)n;
    }
    s->pos += want;
    return want;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
    src_t *s = arg;
    if (origin != SEEK_SET || off < 0 || (uint64_t)off > s->r->body_len) return CURL_SEEKFUNC_CANTSEEK;
    s->pos = (uint64_t)off;
    return CURL_SEEKFUNC_OK;
}

typedef struct {
    const s3_req_t *r;
    s3_resp_t *resp;
    int err;
} dst_t;

static size_t header_cb(char *p, size_t sz, size_t nm, void *arg)
{
    dst_t *d = arg;
    size_t n = sz * nm;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* a new response (after 100 Continue, or the final one): start over */
        st_buf_reset(&d->resp->hdrs);
        const char *sp = memchr(p, ' ', n);
        d->resp->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        return n;
    }
    if (d->resp->hdrs.len + n > (1 << 20)) return 0;
    return st_buf_append(&d->resp->hdrs, p, n) == 0 ? n : 0;
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *arg)
{
    dst_t *d = arg;
    size_t n = sz * nm;
    const s3_req_t *r = d->r;
    bool ok = d->resp->status >= 200 && d->resp->status < 300;
    if (ok && r->sink_fd >= 0) {
        for (size_t done = 0; done < n;) {
            ssize_t w = pwrite(r->sink_fd, p + done, n - done, r->sink_off + (off_t)(d->resp->received + done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                d->err = w < 0 ? -errno : -EIO;
                return 0;
            }
            done += (size_t)w;
        }
    } else {
        st_buf_t *b = ok && r->sink_buf ? r->sink_buf : &d->resp->body;
        if (!(ok && r->sink_buf) && b->len + n > (64u << 20)) {
            d->err = ST_ELIMIT; /* error bodies and XML results are small */
            return 0;
        }
        if (st_buf_append(b, p, n) < 0) {
            d->err = -ENOMEM;
            return 0;
        }
    }
    if (ok) d->resp->crc32 = st_crc32(d->resp->crc32, p, n);
    d->resp->received += n;
    return n;
}

typedef struct {
    CURLcode cc;
    int local_err; /* our own callback failures: not retryable */
    bool keep_handle;
} attempt_t;

static int add_hdr(struct curl_slist **l, const char *name, const char *value)
{
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (line == NULL) return -ENOMEM;
    snprintf(line, n, "%s: %s", name, value);
    struct curl_slist *x = curl_slist_append(*l, line);
    free(line);
    if (x == NULL) return -ENOMEM;
    *l = x;
    return 0;
}

static int run_attempt(st_s3_client_t *c, const s3_req_t *r, const st_aws_creds_t *cr, s3_resp_t *resp,
                       attempt_t *at)
{
    st_buf_t url = ST_BUF_INIT, host = ST_BUF_INIT, path = ST_BUF_INIT, cq = ST_BUF_INIT;
    struct curl_slist *hl = NULL;
    st_sigv4_t sig;
    memset(&sig, 0, sizeof sig);
    CURL *h = NULL;
    int rc = s3_client_url(c, r->bucket, r->key, &url, &host, &path);
    if (rc == 0) rc = st_sigv4_canonical_query(&cq, r->query.len ? st_buf_cstr((st_buf_t *)&r->query) : "");
    if (rc == 0 && cq.len) rc = st_buf_printf(&url, "?%s", st_buf_cstr(&cq));
    if (rc < 0) goto out;

    char payload[72];
    if (r->payload_hash[0]) {
        snprintf(payload, sizeof payload, "%s", r->payload_hash);
    } else {
        st_sha256_hex(r->body ? (const void *)r->body : "", r->body ? r->body_len : 0, payload);
    }
    st_kv_t hs[48];
    size_t nh = 0;
    hs[nh++] = (st_kv_t){"host", st_buf_cstr(&host)};
    for (int i = 0; i < r->nhdr; i++) hs[nh++] = r->hdr[i];
    st_sigv4_request_t sr = {.method = r->method, .path = st_buf_cstr(&path), .query = st_buf_cstr(&cq),
                             .headers = hs, .nheaders = nh, .payload_hash = payload};
    st_sigv4_params_t sp = {.access_key = cr->access_key, .secret_key = cr->secret_key,
                            .session_token = cr->session_token, .region = c->region,
                            .service = r->service ? r->service : "s3", .now = s3_client_now(c),
                            .flags = r->service ? 0u : (unsigned)ST_SIGV4_S3};
    if ((rc = st_sigv4_sign(&sr, &sp, &sig)) < 0) goto out;
    for (size_t i = 0; i < nh && rc == 0; i++) rc = add_hdr(&hl, hs[i].name, hs[i].value);
    for (int i = 0; i < sig.nadd && rc == 0; i++) rc = add_hdr(&hl, sig.add[i].name, sig.add[i].value);
    if (rc == 0) rc = add_hdr(&hl, "Authorization", st_buf_cstr(&sig.authorization));
    if (rc < 0) goto out;
    /* "Expect:" removes curl's 100-continue round trip for large bodies */
    struct curl_slist *x = curl_slist_append(hl, "Expect:");
    if (x == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    hl = x;

    h = pool_get(c);
    if (h == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    src_t src = {r, 0, 0};
    dst_t dst = {r, resp, 0};
    curl_easy_setopt(h, CURLOPT_URL, st_buf_cstr(&url));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    if (c->request_timeout_ms > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->low_speed_time_s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &dst);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &dst);
    if (c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &src);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &src);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    } else if (strcmp(r->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, r->method);
    }
    resp->status = 0;
    resp->received = 0;
    resp->crc32 = 0;
    st_buf_reset(&resp->body);
    st_buf_reset(&resp->hdrs);
    if (r->sink_buf) st_buf_reset(r->sink_buf);
    at->cc = curl_easy_perform(h);
    at->local_err = src.err ? src.err : dst.err;
    at->keep_handle = at->cc == CURLE_OK;
    curl_off_t up = 0, down = 0;
    curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
    curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
    st_counter_add(st_counter("strata_s3_sent_bytes_total", "Bytes sent to S3 in request bodies.", NULL),
                   (uint64_t)up);
    st_counter_add(st_counter("strata_s3_received_bytes_total", "Bytes received from S3 in response bodies.",
                              NULL),
                   (uint64_t)down);
out:
    pool_put(c, h, at->keep_handle);
    curl_slist_free_all(hl);
    st_sigv4_free(&sig);
    st_buf_free(&url);
    st_buf_free(&host);
    st_buf_free(&path);
    st_buf_free(&cq);
    return rc;
}

/* ---- classification */

static bool code_is(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0) return true;
    return false;
}

static const char *const retry_codes[] = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                                          "TooManyRequestsException", "RequestThrottled", "InternalError",
                                          "ServiceUnavailable", "RequestTimeout", "PriorRequestNotComplete",
                                          "OperationAborted", "ServiceUnavailableException",
                                          "OperationAbortedException", NULL};

static bool http_retryable(long status, const char *code)
{
    return status == 500 || status == 502 || status == 503 || status == 504 || status == 429 ||
           code_is(code, retry_codes);
}

static int map_http(long status, const char *code)
{
    static const char *const notfound[] = {"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NoSuchVersion",
                                           "NoSuchObjectLockConfiguration", NULL};
    static const char *const archived[] = {"InvalidObjectState", "ObjectNotInActiveTierError", NULL};
    static const char *const checksum[] = {"BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch",
                                           "InvalidChecksum", NULL};
    static const char *const auth[] = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken",
                                       "InvalidToken", "TokenRefreshRequired", "AuthorizationHeaderMalformed",
                                       "RequestTimeTooSkewed", "MissingSecurityHeader", NULL};
    if (code_is(code, notfound)) return ST_ENOTFOUND;
    if (code_is(code, archived)) return ST_S3_EARCHIVED;
    if (strcmp(code, "RestoreAlreadyInProgress") == 0) return ST_S3_ERESTORING;
    if (code_is(code, checksum)) return ST_S3_ECHECKSUM;
    if (code_is(code, auth)) return ST_S3_EAUTH;
    if (strcmp(code, "PreconditionFailed") == 0 || status == 412) return ST_S3_EPRECONDITION;
    if (strcmp(code, "BucketAlreadyExists") == 0) return ST_S3_EEXISTS;
    if (http_retryable(status, code)) return ST_S3_EUNAVAILABLE;
    if (status == 404) return ST_ENOTFOUND;
    if (status == 403 || status == 401 || strcmp(code, "AccessDenied") == 0) return ST_S3_EACCESS;
    return ST_S3_EREMOTE;
}

static int map_curl(CURLcode cc, bool *retry)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT: *retry = true; return ST_ETIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_WEIRD_SERVER_REPLY: *retry = true; return ST_S3_ENETWORK;
    case CURLE_OUT_OF_MEMORY: *retry = false; return -ENOMEM;
    case CURLE_URL_MALFORMAT: *retry = false; return -EINVAL;
    default: *retry = false; return ST_S3_ENETWORK;
    }
}

static _Thread_local uint64_t rng_state;

static uint64_t rng_next(void)
{
    if (rng_state == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        rng_state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts ^
                    (uint64_t)pthread_self();
        if (rng_state == 0) rng_state = 0x9E3779B97F4A7C15ULL;
    }
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static void backoff(const st_s3_client_t *c, int attempt)
{
    /* full jitter: uniform in [0, min(cap, base * 2^(attempt-1))] */
    long cap = c->retry_base_ms;
    for (int i = 1; i < attempt && cap < c->retry_max_ms; i++) cap *= 2;
    if (cap > c->retry_max_ms) cap = c->retry_max_ms;
    long ms = (long)(rng_next() % (uint64_t)(cap + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void count_request(const char *op, const char *code, double secs)
{
    char labels[160];
    snprintf(labels, sizeof labels, "op=\"%s\",code=\"%s\"", op, code);
    st_counter_inc(st_counter("strata_s3_requests_total", "S3 requests by operation and HTTP status (or error).",
                              labels));
    snprintf(labels, sizeof labels, "op=\"%s\"", op);
    st_histogram_observe(st_histogram("strata_s3_request_duration_seconds", "S3 request latency per attempt.",
                                      labels, st_latency_buckets, st_latency_nbuckets),
                         secs);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill_err(st_s3_error_t *e, const s3_resp_t *resp, const char *fallback_code)
{
    st_str_t rid;
    e->http_status = (int)resp->status;
    if (e->code[0] == '\0' && fallback_code) snprintf(e->code, sizeof e->code, "%s", fallback_code);
    if (e->request_id[0] == '\0' && (s3_resp_header(resp, "x-amz-request-id", &rid) ||
                                     s3_resp_header(resp, "x-amzn-RequestId", &rid)))
        st_copy_str(e->request_id, sizeof e->request_id, rid);
}

int s3_exec(st_s3_client_t *c, s3_req_t *r, s3_resp_t *resp, st_s3_error_t *err)
{
    st_s3_error_t local;
    if (err == NULL) err = &local;
    bool skew_fixed = false, token_refreshed = false;
    int rc = 0;
    int attempt = 0, counted = 0;
    for (;;) {
        attempt++;
        counted++;
        memset(err, 0, sizeof *err);
        err->attempts = counted;
        st_aws_creds_t cr;
        rc = s3_client_creds(c, &cr);
        if (rc < 0) {
            snprintf(err->code, sizeof err->code, "NoCredentials");
            return rc;
        }
        attempt_t at = {0};
        double t0 = mono_s();
        rc = run_attempt(c, r, &cr, resp, &at);
        st_aws_creds_clear(&cr);
        if (rc < 0) return rc; /* local failure before sending (ENOMEM, bad URL) */
        bool retry = false;
        if (at.local_err) {
            count_request(r->op, "local", mono_s() - t0);
            snprintf(err->code, sizeof err->code, "LocalError");
            return at.local_err; /* sink or source failed: retrying would not help */
        }
        if (at.cc != CURLE_OK) {
            rc = map_curl(at.cc, &retry);
            count_request(r->op, rc == ST_ETIMEOUT ? "timeout" : "network", mono_s() - t0);
            snprintf(err->code, sizeof err->code, "%s", rc == ST_ETIMEOUT ? "Timeout" : "Network");
            snprintf(err->message, sizeof err->message, "%s", curl_easy_strerror(at.cc));
        } else {
            char sc[8];
            snprintf(sc, sizeof sc, "%ld", resp->status);
            count_request(r->op, sc, mono_s() - t0);
            bool ok = resp->status >= 200 && resp->status < 300;
            if (ok && r->error_in_200 && resp->body.len > 0) {
                /* CopyObject/CompleteMultipartUpload can fail after the 200 was sent */
                const char *b = resp->body.data;
                size_t i = 0;
                while (i < resp->body.len && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t')) i++;
                if (i < resp->body.len && memmem(b + i, resp->body.len - i, "<Error>", 7) != NULL &&
                    st_s3_parse_error(b, resp->body.len, err) == 0) {
                    ok = false;
                }
            } else if (!ok) {
                (r->parse_error ? r->parse_error : st_s3_parse_error)(resp->body.data ? resp->body.data : "",
                                                                      resp->body.len, err);
            }
            if (ok) {
                fill_err(err, resp, NULL);
                return 0;
            }
            fill_err(err, resp, NULL);
            if (err->code[0] == '\0') {
                /* HEAD errors carry no body: name the status */
                snprintf(err->code, sizeof err->code, "%s",
                         resp->status == 404 ? "NotFound" : resp->status == 403 ? "Forbidden" : "");
            }
            long st = resp->status >= 200 && resp->status < 300 ? 500 : resp->status;
            rc = map_http(st, err->code);
            retry = http_retryable(st, err->code);
            st_str_t d;
            time_t server = 0;
            bool have_date = s3_resp_header(resp, "Date", &d) && st_s3_parse_http_date(d.p, d.n, &server) == 0;
            bool skewed = strcmp(err->code, "RequestTimeTooSkewed") == 0;
            /* HEAD errors have no body: a 403 whose Date is > 5 min off our signing clock is a skew */
            if (!skewed && resp->status == 403 && err->code[0] != '\0' && strcmp(err->code, "Forbidden") == 0 &&
                have_date && labs((long)(server - s3_client_now(c))) > 300)
                skewed = true;
            if (skewed && !skew_fixed) {
                if (have_date) {
                    atomic_store(&c->skew_s, (long)(server - time(NULL)));
                    ST_LOG_WARN(MOD, "msg=\"clock skew corrected\" op=%s skew_s=%ld", r->op,
                                (long)atomic_load(&c->skew_s));
                }
                skew_fixed = true;
                counted--; /* one free retry with the corrected clock */
                continue;
            }
            if ((strcmp(err->code, "ExpiredToken") == 0 || strcmp(err->code, "InvalidToken") == 0 ||
                 strcmp(err->code, "TokenRefreshRequired") == 0 || strcmp(err->code, "ExpiredTokenException") == 0) &&
                !token_refreshed) {
                st_aws_creds_invalidate(c->creds);
                token_refreshed = true;
                counted--;
                continue;
            }
        }
        if (!retry || counted >= c->max_attempts) {
            if (retry) {
                ST_LOG_WARN(MOD, "msg=\"giving up\" op=%s bucket=%s attempts=%d status=%d code=%s request_id=%s",
                            r->op, r->bucket ? r->bucket : "", counted, err->http_status, err->code,
                            err->request_id);
            }
            return rc;
        }
        char labels[96];
        snprintf(labels, sizeof labels, "op=\"%s\"", r->op);
        st_counter_inc(st_counter("strata_s3_retries_total", "S3 request attempts retried.", labels));
        ST_LOG_WARN(MOD, "msg=\"retrying\" op=%s bucket=%s key=\"%s\" attempt=%d status=%d code=%s request_id=%s",
                    r->op, r->bucket ? r->bucket : "", r->key ? r->key : "", counted, err->http_status, err->code,
                    err->request_id);
        backoff(c, counted);
    }
}
