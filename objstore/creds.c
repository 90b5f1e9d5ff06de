/* creds.c: the AWS credential chain (environment, web identity via STS, shared files, container
 * endpoint, EC2 IMDSv2) with caching and refresh ahead of expiry, plus the INI reader for the shared
 * files. Secrets are copied only into st_aws_creds_t buffers, wiped when dropped, and never logged:
 * log lines name the source and the error code only. */
#include "objstore/objstore_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "objstore"

enum { SRC_NONE = -1, SRC_STATIC, SRC_ENV, SRC_WEBID, SRC_PROFILE, SRC_CONTAINER, SRC_IMDS };

struct st_aws_creds_provider {
    pthread_mutex_t mu;
    int source;
    bool have;
    bool invalid;
    st_aws_creds_t cached;
    bool profile_explicit;
    char *profile, *credentials_file, *config_file, *region, *sts_endpoint, *imds_endpoint;
    long timeout_ms;
    long refresh_before_s;
    bool no_imds;
};

void st_aws_creds_clear(st_aws_creds_t *c)
{
    if (c) OPENSSL_cleanse(c, sizeof *c);
}

static void profile_clear(st_aws_profile_t *p) { OPENSSL_cleanse(p, sizeof *p); }

/* ---- INI */

static void trim(const char **p, const char **e)
{
    while (*p < *e && (**p == ' ' || **p == '\t' || **p == '\r')) (*p)++;
    while (*e > *p && ((*e)[-1] == ' ' || (*e)[-1] == '\t' || (*e)[-1] == '\r')) (*e)--;
}

static void set_field(st_aws_profile_t *o, st_str_t k, st_str_t v)
{
    static const struct {
        const char *key;
        size_t off, cap;
    } f[] = {
        {"aws_access_key_id", offsetof(st_aws_profile_t, access_key), sizeof(((st_aws_profile_t *)0)->access_key)},
        {"aws_secret_access_key", offsetof(st_aws_profile_t, secret_key),
         sizeof(((st_aws_profile_t *)0)->secret_key)},
        {"aws_session_token", offsetof(st_aws_profile_t, session_token),
         sizeof(((st_aws_profile_t *)0)->session_token)},
        {"aws_security_token", offsetof(st_aws_profile_t, session_token),
         sizeof(((st_aws_profile_t *)0)->session_token)},
        {"region", offsetof(st_aws_profile_t, region), sizeof(((st_aws_profile_t *)0)->region)},
        {"role_arn", offsetof(st_aws_profile_t, role_arn), sizeof(((st_aws_profile_t *)0)->role_arn)},
        {"web_identity_token_file", offsetof(st_aws_profile_t, web_identity_token_file),
         sizeof(((st_aws_profile_t *)0)->web_identity_token_file)},
        {"role_session_name", offsetof(st_aws_profile_t, role_session_name),
         sizeof(((st_aws_profile_t *)0)->role_session_name)},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (st_str_ieq(k, f[i].key)) {
            char *dst = (char *)o + f[i].off;
            if (dst[0] == '\0') st_copy_str(dst, f[i].cap, v); /* first value in a section wins */
        }
    }
}

int st_aws_profile_parse(const char *text, size_t n, bool is_config, const char *name, st_aws_profile_t *out)
{
    const char *p = text, *end = text + n;
    bool in = false, found = false, nested = false;
    size_t name_n = strlen(name);
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *ls = p;
        p = nl ? nl + 1 : end;
        bool indented = ls < le && (*ls == ' ' || *ls == '\t');
        trim(&ls, &le);
        if (ls == le || *ls == '#' || *ls == ';') continue;
        if (*ls == '[') {
            if (le[-1] != ']') return ST_EPARSE;
            const char *s = ls + 1, *e = le - 1;
            trim(&s, &e);
            st_str_t sec = st_str(s, (size_t)(e - s));
            in = false;
            if (is_config && sec.n > 8 && strncmp(sec.p, "profile", 7) == 0 &&
                (sec.p[7] == ' ' || sec.p[7] == '\t')) {
                const char *ps = sec.p + 8, *pe = e;
                trim(&ps, &pe);
                in = (size_t)(pe - ps) == name_n && memcmp(ps, name, name_n) == 0;
            } else if (!is_config || (sec.n == 7 && memcmp(sec.p, "default", 7) == 0)) {
                in = sec.n == name_n && memcmp(sec.p, name, name_n) == 0;
            }
            found |= in;
            nested = false;
            continue;
        }
        if (indented && nested) continue; /* "s3 =" followed by indented sub-keys (config file) */
        nested = false;
        const char *eq = memchr(ls, '=', (size_t)(le - ls));
        if (eq == NULL) return ST_EPARSE;
        const char *ks = ls, *ke = eq, *vs = eq + 1, *ve = le;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (ks == ke) return ST_EPARSE;
        nested = vs == ve;
        if (in) set_field(out, st_str(ks, (size_t)(ke - ks)), st_str(vs, (size_t)(ve - vs)));
    }
    return found ? 0 : ST_ENOTFOUND;
}

static int read_file(const char *path, size_t max, st_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    char tmp[4096];
    for (;;) {
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            break;
        }
        if (r == 0) break;
        if (out->len + (size_t)r > max) {
            rc = ST_ELIMIT;
            break;
        }
        if ((rc = st_buf_append(out, tmp, (size_t)r)) < 0) break;
    }
    close(fd);
    OPENSSL_cleanse(tmp, sizeof tmp);
    return rc;
}

static int load_one(const char *path, bool is_config, const char *name, st_aws_profile_t *out)
{
    if (path == NULL) return ST_ENOTFOUND;
    st_buf_t b = ST_BUF_INIT;
    int rc = read_file(path, 1 << 20, &b);
    if (rc == -ENOENT || rc == -ENOTDIR) rc = ST_ENOTFOUND;
    if (rc == 0) rc = st_aws_profile_parse(b.data ? b.data : "", b.len, is_config, name, out);
    if (b.data) OPENSSL_cleanse(b.data, b.cap);
    st_buf_free(&b);
    return rc;
}

int st_aws_profile_load(const char *credentials_path, const char *config_path, const char *name,
                        st_aws_profile_t *out)
{
    memset(out, 0, sizeof *out);
    int a = load_one(credentials_path, false, name, out); /* first: its values win */
    if (a < 0 && a != ST_ENOTFOUND) return a;
    int b = load_one(config_path, true, name, out);
    if (b < 0 && b != ST_ENOTFOUND) return b;
    return (a == 0 || b == 0) ? 0 : ST_ENOTFOUND;
}

/* ---- HTTP helper */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void global_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void st_objstore_global_init(void) { pthread_once(&g_once, global_init); }

typedef struct {
    st_buf_t *b;
    bool over;
} sink_t;

static size_t simple_write(char *p, size_t sz, size_t nm, void *arg)
{
    sink_t *s = arg;
    size_t n = sz * nm;
    if (s->b->len + n > (1u << 20)) {
        s->over = true;
        return 0;
    }
    return st_buf_append(s->b, p, n) == 0 ? n : 0;
}

int st_http_simple(const char *method, const char *url, const char *const *headers, size_t nheaders,
                   const char *body, size_t body_n, long timeout_ms, st_http_simple_resp_t *resp)
{
    st_objstore_global_init();
    resp->status = 0;
    st_buf_reset(&resp->body);
    CURL *h = curl_easy_init();
    if (h == NULL) return -ENOMEM;
    struct curl_slist *hl = NULL;
    int rc = 0;
    for (size_t i = 0; i < nheaders; i++) {
        struct curl_slist *n = curl_slist_append(hl, headers[i]);
        if (n == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        hl = n;
    }
    struct curl_slist *n2 = curl_slist_append(hl, "Expect:");
    if (n2 == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    hl = n2;
    sink_t sink = {&resp->body, false};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, simple_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body != NULL || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_n);
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    } else if (sink.over) {
        rc = ST_ELIMIT;
    } else if (cc == CURLE_OPERATION_TIMEDOUT) {
        rc = ST_ETIMEOUT;
    } else if (cc == CURLE_OUT_OF_MEMORY) {
        rc = -ENOMEM;
    } else {
        rc = ST_S3_ENETWORK;
    }
out:
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return rc;
}

/* ---- sources */

static const char *env(const char *name)
{
    const char *v = getenv(name);
    return v && v[0] ? v : NULL;
}

static int set_keys(st_aws_creds_t *c, const char *ak, const char *sk, const char *tok, const char *src)
{
    if (strlen(ak) >= sizeof c->access_key || strlen(sk) >= sizeof c->secret_key ||
        (tok && strlen(tok) >= sizeof c->session_token))
        return ST_EPARSE;
    memset(c, 0, sizeof *c);
    snprintf(c->access_key, sizeof c->access_key, "%s", ak);
    snprintf(c->secret_key, sizeof c->secret_key, "%s", sk);
    if (tok) snprintf(c->session_token, sizeof c->session_token, "%s", tok);
    snprintf(c->source, sizeof c->source, "%s", src);
    return 0;
}

static int from_env(st_aws_creds_t *c)
{
    const char *ak = env("AWS_ACCESS_KEY_ID"), *sk = env("AWS_SECRET_ACCESS_KEY");
    if (ak == NULL || sk == NULL) return ST_ENOTFOUND;
    const char *tok = env("AWS_SESSION_TOKEN");
    if (tok == NULL) tok = env("AWS_SECURITY_TOKEN");
    ST_TRY(set_keys(c, ak, sk, tok, "env"));
    const char *exp = env("AWS_CREDENTIAL_EXPIRATION");
    if (exp && st_s3_parse_iso8601(exp, strlen(exp), &c->expiration) < 0) c->expiration = 0;
    return 0;
}

static const char *home_path(char *buf, size_t cap, const char *rel)
{
    const char *home = env("HOME");
    if (home == NULL) return NULL;
    snprintf(buf, cap, "%s/%s", home, rel);
    return buf;
}

static int load_profile(st_aws_creds_provider_t *p, st_aws_profile_t *prof)
{
    char b1[1024], b2[1024];
    const char *cf = p->credentials_file ? p->credentials_file : env("AWS_SHARED_CREDENTIALS_FILE");
    const char *gf = p->config_file ? p->config_file : env("AWS_CONFIG_FILE");
    if (cf == NULL) cf = home_path(b1, sizeof b1, ".aws/credentials");
    if (gf == NULL) gf = home_path(b2, sizeof b2, ".aws/config");
    const char *name = p->profile ? p->profile : env("AWS_PROFILE");
    if (name == NULL) name = "default";
    return st_aws_profile_load(cf, gf, name, prof);
}

static int from_profile(st_aws_creds_provider_t *p, st_aws_creds_t *c)
{
    st_aws_profile_t prof;
    int rc = load_profile(p, &prof);
    if (rc == 0 && (prof.access_key[0] == '\0' || prof.secret_key[0] == '\0')) rc = ST_ENOTFOUND;
    if (rc == 0) rc = set_keys(c, prof.access_key, prof.secret_key, prof.session_token, "profile");
    profile_clear(&prof);
    return rc;
}

static const char *region_of(st_aws_creds_provider_t *p)
{
    if (p->region) return p->region;
    const char *r = env("AWS_REGION");
    if (r == NULL) r = env("AWS_DEFAULT_REGION");
    return r ? r : "us-east-1";
}

static int form_add(st_buf_t *b, const char *k, const char *v, size_t vn)
{
    ST_TRY(st_buf_printf(b, "%s%s=", b->len ? "&" : "", k));
    return st_sigv4_uri_encode(b, v, vn, false);
}

static int from_web_identity(st_aws_creds_provider_t *p, st_aws_creds_t *c)
{
    const char *arn = env("AWS_ROLE_ARN"), *file = env("AWS_WEB_IDENTITY_TOKEN_FILE");
    const char *sess = env("AWS_ROLE_SESSION_NAME");
    st_aws_profile_t prof;
    memset(&prof, 0, sizeof prof);
    if (arn == NULL || file == NULL) {
        if (load_profile(p, &prof) == 0 && prof.role_arn[0] && prof.web_identity_token_file[0]) {
            arn = prof.role_arn;
            file = prof.web_identity_token_file;
            if (prof.role_session_name[0]) sess = prof.role_session_name;
        } else {
            profile_clear(&prof);
            return ST_ENOTFOUND;
        }
    }
    char sessbuf[64];
    if (sess == NULL) {
        snprintf(sessbuf, sizeof sessbuf, "strata-%ld", (long)time(NULL));
        sess = sessbuf;
    }
    st_buf_t tok = ST_BUF_INIT, form = ST_BUF_INIT, url = ST_BUF_INIT;
    st_http_simple_resp_t resp = {0};
    int rc = read_file(file, 64 << 10, &tok); /* re-read each time: the token file is rotated */
    if (rc < 0) {
        ST_LOG_WARN(MOD, "msg=\"cannot read web identity token file\" path=\"%s\" err=\"%s\"", file,
                    st_strerror(rc));
        rc = ST_S3_EAUTH;
        goto out;
    }
    while (tok.len && (tok.data[tok.len - 1] == '\n' || tok.data[tok.len - 1] == '\r')) tok.len--;
    if ((rc = form_add(&form, "Action", "AssumeRoleWithWebIdentity", 25)) < 0 ||
        (rc = form_add(&form, "Version", "2011-06-15", 10)) < 0 ||
        (rc = form_add(&form, "RoleArn", arn, strlen(arn))) < 0 ||
        (rc = form_add(&form, "RoleSessionName", sess, strlen(sess))) < 0 ||
        (rc = form_add(&form, "WebIdentityToken", tok.data ? tok.data : "", tok.len)) < 0)
        goto out;
    const char *ep = p->sts_endpoint ? p->sts_endpoint : env("AWS_ENDPOINT_URL_STS");
    if (ep) {
        rc = st_buf_printf(&url, "%s%s", ep, ep[strlen(ep) - 1] == '/' ? "" : "/");
    } else {
        rc = st_buf_printf(&url, "https://sts.%s.amazonaws.com/", region_of(p));
    }
    if (rc < 0) goto out;
    /* AssumeRoleWithWebIdentity is unsigned: the JWT is the proof */
    const char *hdr[] = {"Content-Type: application/x-www-form-urlencoded; charset=utf-8",
                         "Accept: application/xml"};
    rc = st_http_simple("POST", st_buf_cstr(&url), hdr, 2, form.data, form.len, p->timeout_ms, &resp);
    if (rc == 0 && resp.status != 200) {
        st_s3_error_t e = {0};
        st_s3_parse_error(resp.body.data ? resp.body.data : "", resp.body.len, &e);
        ST_LOG_WARN(MOD, "msg=\"AssumeRoleWithWebIdentity failed\" status=%ld code=\"%s\" request_id=\"%s\"",
                    resp.status, e.code, e.request_id);
        rc = ST_S3_EAUTH;
    } else if (rc == 0) {
        st_aws_creds_t tmp;
        memset(&tmp, 0, sizeof tmp);
        rc = st_aws_parse_sts_credentials(resp.body.data ? resp.body.data : "", resp.body.len, &tmp);
        if (rc == 0) {
            snprintf(tmp.source, sizeof tmp.source, "web-identity");
            *c = tmp;
        }
        st_aws_creds_clear(&tmp);
    } else {
        ST_LOG_WARN(MOD, "msg=\"STS unreachable\" url=\"%s\" err=\"%s\"", st_buf_cstr(&url), st_s3_strerror(rc));
    }
out:
    if (tok.data) OPENSSL_cleanse(tok.data, tok.cap);
    if (form.data) OPENSSL_cleanse(form.data, form.cap);
    if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.cap);
    st_buf_free(&tok);
    st_buf_free(&form);
    st_buf_free(&url);
    st_buf_free(&resp.body);
    profile_clear(&prof);
    return rc;
}

/* JSON {"AccessKeyId","SecretAccessKey","Token","Expiration"} of IMDS and the container endpoint. */
static int parse_json_creds(const char *p, size_t n, st_aws_creds_t *c, const char *src)
{
    st_json_t j;
    st_buf_t scratch = ST_BUF_INIT;
    st_aws_creds_t tmp;
    memset(&tmp, 0, sizeof tmp);
    st_json_init(&j, p, n);
    int rc = st_json_object_begin(&j);
    st_str_t k, v;
    while (rc >= 0 && (rc = st_json_next_key(&j, &k, &scratch)) == 1) {
        char *dst = NULL;
        size_t cap = 0;
        char exp[64] = "";
        if (st_str_eqc(k, "AccessKeyId")) {
            dst = tmp.access_key, cap = sizeof tmp.access_key;
        } else if (st_str_eqc(k, "SecretAccessKey")) {
            dst = tmp.secret_key, cap = sizeof tmp.secret_key;
        } else if (st_str_eqc(k, "Token")) {
            dst = tmp.session_token, cap = sizeof tmp.session_token;
        } else if (st_str_eqc(k, "Expiration")) {
            dst = exp, cap = sizeof exp;
        }
        if (dst == NULL || st_json_peek(&j) != ST_JSON_STRING) {
            rc = st_json_skip(&j, NULL);
            continue;
        }
        if ((rc = st_json_string(&j, &v, &scratch)) < 0) break;
        if (v.n >= cap) {
            rc = ST_EPARSE;
            break;
        }
        st_copy_str(dst, cap, v);
        if (dst == exp && st_s3_parse_iso8601(exp, strlen(exp), &tmp.expiration) < 0) rc = ST_EPARSE;
    }
    if (rc == 0 && (tmp.access_key[0] == '\0' || tmp.secret_key[0] == '\0')) rc = ST_EPARSE;
    if (rc == 0) {
        snprintf(tmp.source, sizeof tmp.source, "%s", src);
        *c = tmp;
    }
    st_aws_creds_clear(&tmp);
    if (scratch.data) OPENSSL_cleanse(scratch.data, scratch.cap);
    st_buf_free(&scratch);
    return rc < 0 ? ST_EPARSE : 0;
}

static int from_container(st_aws_creds_provider_t *p, st_aws_creds_t *c)
{
    const char *rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if (rel == NULL && full == NULL) return ST_ENOTFOUND;
    st_buf_t url = ST_BUF_INIT, auth = ST_BUF_INIT, tokf = ST_BUF_INIT;
    st_http_simple_resp_t resp = {0};
    int rc = rel ? st_buf_printf(&url, "http://169.254.170.2%s", rel) : st_buf_puts(&url, full);
    const char *hdr[1];
    size_t nh = 0;
    const char *tok = env("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    const char *tf = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (rc == 0 && rel == NULL && tok == NULL && tf != NULL) {
        if (read_file(tf, 16 << 10, &tokf) == 0) {
            while (tokf.len && (tokf.data[tokf.len - 1] == '\n' || tokf.data[tokf.len - 1] == '\r')) tokf.len--;
            tok = st_buf_cstr(&tokf);
        }
    }
    if (rc == 0 && rel == NULL && tok != NULL) {
        rc = st_buf_printf(&auth, "Authorization: %s", tok);
        hdr[nh++] = st_buf_cstr(&auth);
    }
    for (int attempt = 0; rc == 0 && attempt < 3; attempt++) {
        rc = st_http_simple("GET", st_buf_cstr(&url), hdr, nh, NULL, 0, p->timeout_ms, &resp);
        if (rc == 0 && resp.status == 200) break;
        if (rc == 0) rc = ST_S3_EAUTH;
        if (attempt < 2) rc = 0;
    }
    if (rc == 0) rc = parse_json_creds(resp.body.data ? resp.body.data : "", resp.body.len, c, "container");
    if (rc < 0) ST_LOG_WARN(MOD, "msg=\"container credentials failed\" err=\"%s\"", st_s3_strerror(rc));
    if (auth.data) OPENSSL_cleanse(auth.data, auth.cap);
    if (tokf.data) OPENSSL_cleanse(tokf.data, tokf.cap);
    if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.cap);
    st_buf_free(&url);
    st_buf_free(&auth);
    st_buf_free(&tokf);
    st_buf_free(&resp.body);
    return rc < 0 && rc != -ENOMEM ? ST_S3_EAUTH : rc;
}

static int from_imds(st_aws_creds_provider_t *p, st_aws_creds_t *c)
{
    if (p->no_imds) return ST_ENOTFOUND;
    const char *dis = env("AWS_EC2_METADATA_DISABLED");
    if (dis && strcasecmp(dis, "true") == 0) return ST_ENOTFOUND;
    const char *ep = p->imds_endpoint ? p->imds_endpoint : env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
    if (ep == NULL) ep = "http://169.254.169.254";
    size_t en = strlen(ep);
    while (en > 0 && ep[en - 1] == '/') en--;
    st_buf_t url = ST_BUF_INIT, th = ST_BUF_INIT, role = ST_BUF_INIT;
    st_http_simple_resp_t resp = {0};
    int rc = st_buf_printf(&url, "%.*s/latest/api/token", (int)en, ep);
    const char *ttl[] = {"X-aws-ec2-metadata-token-ttl-seconds: 21600"};
    if (rc == 0) rc = st_http_simple("PUT", st_buf_cstr(&url), ttl, 1, NULL, 0, p->timeout_ms, &resp);
    if (rc == 0 && (resp.status != 200 || resp.body.len == 0 || resp.body.len > 4096)) rc = ST_S3_EAUTH;
    if (rc == 0) rc = st_buf_printf(&th, "X-aws-ec2-metadata-token: %.*s", (int)resp.body.len, resp.body.data);
    const char *hdr[] = {st_buf_cstr(&th)};
    st_buf_reset(&url);
    if (rc == 0) rc = st_buf_printf(&url, "%.*s/latest/meta-data/iam/security-credentials/", (int)en, ep);
    if (rc == 0) rc = st_http_simple("GET", st_buf_cstr(&url), hdr, 1, NULL, 0, p->timeout_ms, &resp);
    if (rc == 0 && (resp.status != 200 || resp.body.len == 0)) rc = ST_S3_EAUTH;
    if (rc == 0) {
        size_t l = 0;
        while (l < resp.body.len && resp.body.data[l] != '\n' && resp.body.data[l] != '\r') l++;
        rc = st_sigv4_uri_encode(&role, resp.body.data, l, false);
    }
    if (rc == 0) rc = st_buf_printf(&url, "%s", st_buf_cstr(&role));
    if (rc == 0) rc = st_http_simple("GET", st_buf_cstr(&url), hdr, 1, NULL, 0, p->timeout_ms, &resp);
    if (rc == 0 && resp.status != 200) rc = ST_S3_EAUTH;
    if (rc == 0) rc = parse_json_creds(resp.body.data ? resp.body.data : "", resp.body.len, c, "imds");
    if (rc < 0) ST_LOG_DEBUG(MOD, "msg=\"IMDS credentials unavailable\" err=\"%s\"", st_s3_strerror(rc));
    if (th.data) OPENSSL_cleanse(th.data, th.cap);
    if (resp.body.data) OPENSSL_cleanse(resp.body.data, resp.body.cap);
    st_buf_free(&url);
    st_buf_free(&th);
    st_buf_free(&role);
    st_buf_free(&resp.body);
    if (rc == ST_ETIMEOUT || rc == ST_S3_ENETWORK) rc = ST_ENOTFOUND; /* not on EC2 */
    return rc < 0 && rc != -ENOMEM && rc != ST_ENOTFOUND ? ST_S3_EAUTH : rc;
}

static int fetch(st_aws_creds_provider_t *p, int src, st_aws_creds_t *c)
{
    switch (src) {
    case SRC_ENV: return p->profile_explicit ? ST_ENOTFOUND : from_env(c);
    case SRC_WEBID: return from_web_identity(p, c);
    case SRC_PROFILE: return from_profile(p, c);
    case SRC_CONTAINER: return from_container(p, c);
    case SRC_IMDS: return from_imds(p, c);
    default: return ST_ENOTFOUND;
    }
}

/* ---- provider */

static char *dup_opt(const char *s, int *rc)
{
    if (s == NULL) return NULL;
    char *d = strdup(s);
    if (d == NULL) *rc = -ENOMEM;
    return d;
}

int st_aws_creds_provider_create(const st_aws_creds_opts_t *o, st_aws_creds_provider_t **out)
{
    st_aws_creds_opts_t def = {0};
    if (o == NULL) o = &def;
    st_aws_creds_provider_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    int rc = 0;
    pthread_mutex_init(&p->mu, NULL);
    p->source = SRC_NONE;
    p->profile_explicit = o->profile != NULL;
    p->profile = dup_opt(o->profile, &rc);
    p->credentials_file = dup_opt(o->credentials_file, &rc);
    p->config_file = dup_opt(o->config_file, &rc);
    p->region = dup_opt(o->region, &rc);
    p->sts_endpoint = dup_opt(o->sts_endpoint, &rc);
    p->imds_endpoint = dup_opt(o->imds_endpoint, &rc);
    p->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 2000;
    p->refresh_before_s = o->refresh_before_s > 0 ? o->refresh_before_s : 600;
    p->no_imds = o->no_imds;
    if (rc < 0) {
        st_aws_creds_provider_destroy(p);
        return rc;
    }
    *out = p;
    return 0;
}

int st_aws_creds_provider_create_static(const st_aws_creds_t *c, st_aws_creds_provider_t **out)
{
    if (c == NULL || c->access_key[0] == '\0') return -EINVAL;
    int rc = st_aws_creds_provider_create(NULL, out);
    if (rc < 0) return rc;
    (*out)->source = SRC_STATIC;
    (*out)->cached = *c;
    (*out)->cached.expiration = 0;
    snprintf((*out)->cached.source, sizeof (*out)->cached.source, "static");
    (*out)->have = true;
    return 0;
}

void st_aws_creds_provider_destroy(st_aws_creds_provider_t *p)
{
    if (p == NULL) return;
    st_aws_creds_clear(&p->cached);
    pthread_mutex_destroy(&p->mu);
    free(p->profile);
    free(p->credentials_file);
    free(p->config_file);
    free(p->region);
    free(p->sts_endpoint);
    free(p->imds_endpoint);
    free(p);
}

void st_aws_creds_invalidate(st_aws_creds_provider_t *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->source != SRC_STATIC) p->invalid = true;
    pthread_mutex_unlock(&p->mu);
}

static bool fresh(const st_aws_creds_provider_t *p, time_t now)
{
    return p->have && !p->invalid && (p->cached.expiration == 0 || now < p->cached.expiration - p->refresh_before_s);
}

int st_aws_creds_get(st_aws_creds_provider_t *p, st_aws_creds_t *out)
{
    pthread_mutex_lock(&p->mu);
    time_t now = time(NULL);
    int rc = 0;
    if (!fresh(p, now)) {
        st_aws_creds_t c;
        memset(&c, 0, sizeof c);
        if (p->source == SRC_NONE) {
            /* env -> web identity -> profile -> container -> IMDS; the first that answers is kept */
            static const int order[] = {SRC_ENV, SRC_WEBID, SRC_PROFILE, SRC_CONTAINER, SRC_IMDS};
            rc = ST_ENOTFOUND;
            for (size_t i = 0; i < sizeof order / sizeof order[0] && rc == ST_ENOTFOUND; i++) {
                rc = fetch(p, order[i], &c);
                if (rc == 0) p->source = order[i];
            }
        } else {
            rc = fetch(p, p->source, &c);
        }
        if (rc == 0) {
            p->cached = c;
            p->have = true;
            p->invalid = false;
            ST_LOG_DEBUG(MOD, "msg=\"credentials loaded\" source=%s expires=%ld", c.source, (long)c.expiration);
        } else if (p->have && !p->invalid && (p->cached.expiration == 0 || now < p->cached.expiration - 60)) {
            ST_LOG_WARN(MOD, "msg=\"credential refresh failed, using cached keys\" source=%s err=\"%s\"",
                        p->cached.source, st_s3_strerror(rc));
            rc = 0;
        } else {
            if (rc == ST_ENOTFOUND) ST_LOG_WARN(MOD, "msg=\"no AWS credentials found in any source\"");
            rc = rc == -ENOMEM ? rc : ST_S3_EAUTH;
        }
        st_aws_creds_clear(&c);
    }
    if (rc == 0) *out = p->cached;
    pthread_mutex_unlock(&p->mu);
    return rc;
}
