/* tls.c: optional TLS for the http module (OpenSSL). Every TLS connection has an SSL object in server
 * mode between two memory BIOs: ciphertext that libuv reads is written into the read BIO and
 * decrypted with SSL_read, plaintext given to st__http_conn_write is encrypted with SSL_write and the
 * write BIO's bytes go out with uv_write. Sockets never block and everything runs on the loop thread.
 * Also here: the server context (certificate chain, key, client CAs, minimum version, ALPN
 * "http/1.1", session resumption), Go's answer to plain HTTP on the TLS port, the TLS metrics and the
 * verified client certificate's CN. */
#include "http/http_int.h"

#include "common/err.h"
#include "common/log.h"

#include <limits.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STAGE_SIZE    16384        /* one full record: small plaintext buffers are coalesced into it */
#define WRITE_PIECE   (256 * 1024) /* plaintext encrypted per SSL_write before the BIO is drained */
#define SESSION_CACHE 4096         /* server-side sessions kept for TLS 1.2 session-ID resumption */

static const char plain_http_answer[] =
    "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
static const unsigned char alpn_http11[] = "\x08http/1.1";
static const char session_ctx[] = "strata-http";

struct st_http_tls {
    atomic_int refs;
    SSL_CTX *ctx;
    st_http_tls_client_auth_t client_auth;
    char subject[512];
    int64_t not_after;
};

typedef struct st__tls_conn {
    SSL *ssl;
    BIO *rbio, *wbio;   /* owned by ssl */
    st_http_tls_t *tls; /* the context the connection was created with (a reference) */
    uint8_t first[5];   /* the first record header, checked for plain HTTP */
    size_t nfirst;
    bool hs_done; /* OpenSSL reported the handshake done (even if the same read then failed) */
    bool established;
    bool failed;
    bool shut; /* close_notify queued: no more writes */
    char *peer_cn;
} st__tls_conn_t;

/* An encrypted (or raw) write: the ciphertext and the caller's request and callback. */
typedef struct {
    uv_write_t w;
    uv_write_t *orig;
    uv_write_cb cb;
    char *data; /* owned */
} tls_wr_t;

/* ------------------------------------------------------------------------------------------------ */
/* context */

static void tls_ref(st_http_tls_t *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void st_http_tls_free(st_http_tls_t *t)
{
    if (t == NULL || atomic_fetch_sub(&t->refs, 1) != 1) return;
    SSL_CTX_free(t->ctx);
    free(t);
}

/* The reason of the newest OpenSSL error (or fallback), and an empty error queue afterwards. */
static const char *ssl_reason(char *buf, size_t n, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(buf, n, "%s", r ? r : fallback);
    ERR_clear_error();
    return buf;
}

/* Never prompt for a pass phrase on a terminal: an encrypted key simply fails to load. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* RequestClientCert and RequireAnyClientCert: a certificate is taken without checking its chain
 * (OpenSSL still checks the client's proof of owning its key). */
static int accept_any(int ok, X509_STORE_CTX *x)
{
    (void)ok, (void)x;
    return 1;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    unsigned char *sel = NULL;
    unsigned char sellen = 0;
    if (SSL_select_next_proto(&sel, &sellen, alpn_http11, sizeof alpn_http11 - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* no protocol in common: go on without ALPN, as HTTP/1.1 */
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

static void describe(st_http_tls_t *t)
{
    X509 *x = SSL_CTX_get0_certificate(t->ctx);
    snprintf(t->subject, sizeof t->subject, "?");
    if (x == NULL) return;
    BIO *b = BIO_new(BIO_s_mem());
    if (b &&
        X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int n = BIO_read(b, t->subject, (int)sizeof t->subject - 1);
        t->subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1) t->not_after = (int64_t)timegm(&tm);
    ERR_clear_error();
}

int st_http_tls_new(const st_http_tls_opts_t *o, st_http_tls_t **out, char *err, size_t errsz)
{
    char why[256];
    int rc = -EIO;
    snprintf(err, errsz, "%s", "");
    if (o->cert_file == NULL || o->cert_file[0] == '\0' || o->key_file == NULL || o->key_file[0] == '\0') {
        snprintf(err, errsz, "a certificate file and a key file are both required");
        return -EINVAL;
    }
    bool verify = o->client_auth == ST_HTTP_TLS_VERIFY_CLIENT_CERT_IF_GIVEN ||
                  o->client_auth == ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT;
    bool has_ca = o->client_ca_file != NULL && o->client_ca_file[0] != '\0';
    if (verify && !has_ca) {
        snprintf(err, errsz, "verifying client certificates needs a client CA file");
        return -EINVAL;
    }
    st_http_tls_t *t = calloc(1, sizeof *t);
    if (t == NULL) return -ENOMEM;
    atomic_init(&t->refs, 1);
    t->client_auth = o->client_auth;
    ERR_clear_error();
    SSL_CTX *ctx = t->ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errsz, "cannot create a TLS context: %s", ssl_reason(why, sizeof why, "out of memory"));
        rc = -ENOMEM;
        goto fail;
    }
    SSL_CTX_set_min_proto_version(ctx, o->min_version == ST_HTTP_TLS_V13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx,
                        SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
        snprintf(err, errsz, "certificate %s: %s", o->cert_file, ssl_reason(why, sizeof why, "cannot load"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();
        if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errsz, "private key %s does not match certificate %s", o->key_file, o->cert_file);
        } else {
            snprintf(err, errsz, "private key %s: %s", o->key_file,
                     ssl_reason(why, sizeof why, "cannot load"));
        }
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errsz, "private key %s does not match certificate %s", o->key_file, o->cert_file);
        goto fail;
    }
    if (has_ca) {
        if (SSL_CTX_load_verify_locations(ctx, o->client_ca_file, NULL) != 1) {
            snprintf(err, errsz, "client CA file %s: %s", o->client_ca_file,
                     ssl_reason(why, sizeof why, "cannot load"));
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca_file);
        if (names == NULL) {
            snprintf(err, errsz, "client CA file %s: %s", o->client_ca_file,
                     ssl_reason(why, sizeof why, "no certificate in it"));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* the names go into CertificateRequest */
    }
    switch (o->client_auth) {
    case ST_HTTP_TLS_NO_CLIENT_CERT: SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); break;
    case ST_HTTP_TLS_REQUEST_CLIENT_CERT: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any); break;
    case ST_HTTP_TLS_REQUIRE_ANY_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any);
        break;
    case ST_HTTP_TLS_VERIFY_CLIENT_CERT_IF_GIVEN: SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); break;
    case ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT:
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        break;
    default:
        snprintf(err, errsz, "unknown client auth type %d", (int)o->client_auth);
        rc = -EINVAL;
        goto fail;
    }
    /* Resumption: stateless tickets (on by default) plus the server cache for TLS 1.2 session IDs. The
     * session ID context is required once client certificates are requested. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)session_ctx, sizeof session_ctx - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, SESSION_CACHE);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    describe(t);
    *out = t;
    return 0;
fail:
    ERR_clear_error();
    st_http_tls_free(t);
    return rc;
}

const char *st_http_tls_subject(const st_http_tls_t *t)
{
    return t->subject;
}

int64_t st_http_tls_not_after(const st_http_tls_t *t)
{
    return t->not_after;
}

int st_http_tls_client_auth_parse(const char *name, st_http_tls_client_auth_t *out)
{
    static const char *const names[] = {"NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                                        "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (st_http_tls_client_auth_t)i;
            return 0;
        }
    }
    return -EINVAL;
}

int st_http_tls_version_parse(const char *name, st_http_tls_version_t *out)
{
    if (strcmp(name, "VersionTLS12") == 0) {
        *out = ST_HTTP_TLS_V12;
        return 0;
    }
    if (strcmp(name, "VersionTLS13") == 0) {
        *out = ST_HTTP_TLS_V13;
        return 0;
    }
    return -EINVAL;
}

/* ------------------------------------------------------------------------------------------------ */
/* server */

int st__tls_server_init(st_http_server_t *s, const st_http_tls_t *t)
{
    s->tls_stage = malloc(STAGE_SIZE);
    if (s->tls_stage == NULL) return -ENOMEM;
    s->tls = (st_http_tls_t *)t; /* the reference count is the only thing that changes */
    tls_ref(s->tls);
    static const char *const hs_help = "TLS handshakes completed, by whether the session was resumed.";
    static const char *const err_help = "TLS connections closed because of an error, by reason.";
    s->m_tls_hs[0] = st_counter("strata_http_tls_handshakes_total", hs_help, "resumed=\"false\"");
    s->m_tls_hs[1] = st_counter("strata_http_tls_handshakes_total", hs_help, "resumed=\"true\"");
    s->m_tls_err[ST__TLS_ERR_HANDSHAKE] =
        st_counter("strata_http_tls_errors_total", err_help, "reason=\"handshake\"");
    s->m_tls_err[ST__TLS_ERR_PLAIN_HTTP] =
        st_counter("strata_http_tls_errors_total", err_help, "reason=\"plain_http\"");
    s->m_tls_err[ST__TLS_ERR_TIMEOUT] =
        st_counter("strata_http_tls_errors_total", err_help, "reason=\"handshake_timeout\"");
    s->m_tls_err[ST__TLS_ERR_PROTOCOL] =
        st_counter("strata_http_tls_errors_total", err_help, "reason=\"protocol\"");
    return 0;
}

void st__tls_server_dispose(st_http_server_t *s)
{
    st_http_tls_free(s->tls);
    s->tls = NULL;
    free(s->tls_stage);
    s->tls_stage = NULL;
}

int st_http_server_set_tls(st_http_server_t *s, st_http_tls_t *t)
{
    if (s->tls == NULL || t == NULL) return ST_EBADSTATE;
    if (t == s->tls) return 0;
    /* Keep the ticket keys, so that clients resume their sessions across a reload. */
    unsigned char keys[80];
    if (SSL_CTX_get_tlsext_ticket_keys(s->tls->ctx, keys, sizeof keys) == 1)
        SSL_CTX_set_tlsext_ticket_keys(t->ctx, keys, sizeof keys);
    OPENSSL_cleanse(keys, sizeof keys);
    ERR_clear_error();
    tls_ref(t);
    st_http_tls_free(s->tls);
    s->tls = t;
    return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* connections */

static void info_cb(const SSL *ssl, int where, int ret)
{
    (void)ret;
    if (where & SSL_CB_HANDSHAKE_DONE) {
        st__tls_conn_t *t = SSL_get_app_data(ssl);
        t->hs_done = true;
    }
}

int st__tls_conn_new(st_http_conn_t *c)
{
    st__tls_conn_t *t = calloc(1, sizeof *t);
    if (t == NULL) return -ENOMEM;
    t->ssl = SSL_new(c->srv->tls->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        SSL_free(t->ssl);
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "wait for more", never EOF */
    BIO_set_mem_eof_return(t->wbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_info_callback(t->ssl, info_cb);
    SSL_set_accept_state(t->ssl);
    t->tls = c->srv->tls;
    tls_ref(t->tls);
    c->tls = t;
    return 0;
}

void st__tls_conn_free(st_http_conn_t *c)
{
    st__tls_conn_t *t = c->tls;
    if (t == NULL) return;
    c->tls = NULL;
    SSL_free(t->ssl); /* frees the BIOs */
    st_http_tls_free(t->tls);
    free(t->peer_cn);
    free(t);
}

static void on_raw_written(uv_write_t *w, int status)
{
    tls_wr_t *x = w->data;
    if (x->cb) x->cb(x->orig, status);
    free(x->data);
    free(x);
}

/* Writes data (ownership taken) to the socket; cb(req, status) once written. */
static int submit(st_http_conn_t *c, char *data, size_t len, uv_write_t *req, uv_write_cb cb)
{
    if (len > UINT_MAX) {
        free(data);
        return UV_E2BIG;
    }
    tls_wr_t *x = malloc(sizeof *x);
    if (x == NULL) {
        free(data);
        return UV_ENOMEM;
    }
    x->orig = req;
    x->cb = cb;
    x->data = data;
    x->w.data = x;
    uv_buf_t b = uv_buf_init(data ? data : (char *)"", (unsigned)len);
    int rc = uv_write(&x->w, (uv_stream_t *)&c->tcp, &b, 1, on_raw_written);
    if (rc < 0) {
        free(data);
        free(x);
    }
    return rc;
}

/* Appends everything the write BIO holds to out. */
static int drain(st__tls_conn_t *t, st_buf_t *out)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    while (n > 0) {
        int want = n > INT_MAX ? INT_MAX : (int)n;
        if (st_buf_reserve(out, (size_t)want) < 0) return UV_ENOMEM;
        int got = BIO_read(t->wbio, out->data + out->len, want);
        if (got <= 0) return UV_EIO;
        out->len += (size_t)got;
        n -= (size_t)got;
    }
    return 0;
}

/* Sends what OpenSSL produced on its own (handshake messages, tickets, alerts, close_notify). */
static int flush_output(st_http_conn_t *c)
{
    st__tls_conn_t *t = c->tls;
    if (BIO_ctrl_pending(t->wbio) == 0 || c->closing) return 0;
    st_buf_t out = ST_BUF_INIT;
    int rc = drain(t, &out);
    if (rc < 0) {
        st_buf_free(&out);
        return rc;
    }
    size_t len = 0;
    char *p = st_buf_steal(&out, &len);
    return submit(c, p, len, NULL, NULL);
}

static void count_error(st_http_conn_t *c, int reason)
{
    st_counter_inc(c->srv->m_tls_err[reason]);
}

/* A fatal error: the alert OpenSSL queued goes out, then the connection closes (after a handshake
 * failure it lingers so the alert is not lost to a reset; afterwards it closes at once). */
static void conn_fail(st_http_conn_t *c, int reason)
{
    st__tls_conn_t *t = c->tls;
    char why[256];
    ssl_reason(why, sizeof why, "unexpected error");
    t->failed = true;
    count_error(c, reason);
    ST_LOG_DEBUG("http", "msg=\"TLS %s failed\" err=\"%s\" remote=%s",
                 reason == ST__TLS_ERR_HANDSHAKE ? "handshake" : "connection", why, c->remote);
    flush_output(c);
    if (t->established)
        st__http_conn_close(c);
    else
        st__http_conn_linger(c);
}

static char *peer_cn(SSL *ssl)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (x == NULL || SSL_get_verify_result(ssl) != X509_V_OK) return NULL;
    X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return NULL;
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    char *cn = NULL;
    if (n >= 0 && memchr(utf8, '\0', (size_t)n) == NULL && (cn = malloc((size_t)n + 1)) != NULL) {
        memcpy(cn, utf8, (size_t)n);
        cn[n] = '\0';
    }
    OPENSSL_free(utf8);
    ERR_clear_error();
    return cn;
}

static void established(st_http_conn_t *c)
{
    st__tls_conn_t *t = c->tls;
    t->established = true;
    bool resumed = SSL_session_reused(t->ssl) == 1;
    st_counter_inc(c->srv->m_tls_hs[resumed ? 1 : 0]);
    if (t->tls->client_auth == ST_HTTP_TLS_VERIFY_CLIENT_CERT_IF_GIVEN ||
        t->tls->client_auth == ST_HTTP_TLS_REQUIRE_AND_VERIFY_CLIENT_CERT)
        t->peer_cn = peer_cn(t->ssl);
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(t->ssl, &alpn, &alen);
    ST_LOG_DEBUG(
        "http",
        "msg=\"TLS handshake\" version=%s cipher=%s resumed=%s alpn=\"%.*s\" client_cn=\"%s\" remote=%s",
        SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl), resumed ? "true" : "false", (int)alen,
        alpn ? (const char *)alpn : "", t->peer_cn ? t->peer_cn : "", c->remote);
}

/* Go's net/http test for "the client spoke HTTP to the TLS port" (tlsRecordHeaderLooksLikeHTTP). */
static bool looks_like_http(const uint8_t h[5])
{
    static const char *const starts[] = {"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"};
    for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
        if (memcmp(h, starts[i], 5) == 0) return true;
    return false;
}

void st__tls_input(st_http_conn_t *c, const char *data, size_t len)
{
    st__tls_conn_t *t = c->tls;
    if (t->failed || t->shut) return; /* draining before the close */
    if (t->nfirst < sizeof t->first) {
        size_t k = sizeof t->first - t->nfirst;
        if (k > len) k = len;
        memcpy(t->first + t->nfirst, data, k);
        t->nfirst += k;
        if (t->nfirst == sizeof t->first && looks_like_http(t->first)) {
            t->failed = true;
            count_error(c, ST__TLS_ERR_PLAIN_HTTP);
            ST_LOG_DEBUG("http", "msg=\"plain HTTP request on the TLS port\" remote=%s", c->remote);
            char *copy = malloc(sizeof plain_http_answer - 1);
            if (copy) memcpy(copy, plain_http_answer, sizeof plain_http_answer - 1);
            if (copy == NULL || submit(c, copy, sizeof plain_http_answer - 1, NULL, NULL) < 0)
                st__http_conn_close(c);
            else
                st__http_conn_linger(c);
            return;
        }
    }
    ERR_clear_error();
    if (len > INT_MAX || BIO_write(t->rbio, data, (int)len) != (int)len) {
        conn_fail(c, t->established ? ST__TLS_ERR_PROTOCOL : ST__TLS_ERR_HANDSHAKE);
        return;
    }
    if (t->nfirst < sizeof t->first) return; /* not even a record header yet */
    /* The plaintext goes through the server's read buffer: its ciphertext is in the BIO by now, and
     * st__http_conn_input consumes (or copies) each piece before the next SSL_read. */
    char *buf = c->srv->rbuf;
    int cap = (int)c->srv->rbuf_len;
    while (!c->closing && !c->lingering) {
        ERR_clear_error();
        int n = SSL_read(t->ssl, buf, cap);
        if (n > 0) {
            if (!t->established) established(c);
            st__http_conn_input(c, buf, (size_t)n);
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        /* the handshake may complete in a read that ends otherwise (no data, close_notify, an error) */
        if (!t->established && (t->hs_done || SSL_is_init_finished(t->ssl))) established(c);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: the client sends nothing more */
            flush_output(c);
            st__http_conn_eof(c);
            return;
        }
        conn_fail(c, t->established ? ST__TLS_ERR_PROTOCOL : ST__TLS_ERR_HANDSHAKE);
        return;
    }
    if (flush_output(c) < 0) st__http_conn_close(c);
}

/* Encrypts len bytes into out. */
static int encrypt(st__tls_conn_t *t, const char *p, size_t len, st_buf_t *out)
{
    while (len > 0) {
        int k = len > WRITE_PIECE ? WRITE_PIECE : (int)len;
        int w = SSL_write(t->ssl, p, k);
        if (w <= 0) return UV_EPROTO;
        p += w;
        len -= (size_t)w;
        int rc = drain(t, out);
        if (rc < 0) return rc;
    }
    return 0;
}

int st__tls_write(st_http_conn_t *c, uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb)
{
    st__tls_conn_t *t = c->tls;
    if (!t->established || t->failed || t->shut) return UV_EPIPE;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) total += bufs[i].len;
    st_buf_t out = ST_BUF_INIT;
    /* records add at most ~30 bytes per 16 KiB */
    if (st_buf_reserve(&out, total + total / 256 + 512) < 0) return UV_ENOMEM;
    char *stage = c->srv->tls_stage;
    size_t sl = 0;
    int rc = 0;
    ERR_clear_error();
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const char *p = bufs[i].base;
        size_t len = bufs[i].len;
        if (sl + len <= STAGE_SIZE) {
            if (len) memcpy(stage + sl, p, len);
            sl += len;
            continue;
        }
        if (sl > 0) {
            rc = encrypt(t, stage, sl, &out);
            sl = 0;
            if (rc < 0) break;
        }
        if (len < STAGE_SIZE) {
            memcpy(stage, p, len);
            sl = len;
        } else {
            rc = encrypt(t, p, len, &out);
        }
    }
    if (rc == 0 && sl > 0) rc = encrypt(t, stage, sl, &out);
    if (rc < 0) {
        st_buf_free(&out);
        if (rc == UV_EPROTO) {
            char why[256];
            t->failed = true;
            count_error(c, ST__TLS_ERR_PROTOCOL);
            ST_LOG_DEBUG("http", "msg=\"TLS write failed\" err=\"%s\" remote=%s",
                         ssl_reason(why, sizeof why, "unexpected error"), c->remote);
        }
        return rc;
    }
    size_t olen = 0;
    char *p = st_buf_steal(&out, &olen);
    return submit(c, p, olen, req, cb);
}

void st__tls_close_notify(st_http_conn_t *c)
{
    st__tls_conn_t *t = c->tls;
    if (t == NULL || !t->established || t->failed || t->shut) return;
    t->shut = true;
    ERR_clear_error();
    SSL_shutdown(t->ssl); /* queues close_notify; the peer's answer is not waited for */
    ERR_clear_error();
    flush_output(c);
}

void st__tls_timeout(st_http_conn_t *c)
{
    st__tls_conn_t *t = c->tls;
    if (t == NULL || t->established || t->failed) return;
    t->failed = true;
    count_error(c, ST__TLS_ERR_TIMEOUT);
    ST_LOG_DEBUG("http", "msg=\"TLS handshake timed out\" remote=%s", c->remote);
}

/* ------------------------------------------------------------------------------------------------ */
/* requests */

bool st_http_req_tls(const st_http_req_t *r)
{
    return ((const st__http_req_t *)r)->conn->tls != NULL;
}

const char *st_http_tls_peer_cn(const st_http_req_t *r)
{
    const st__tls_conn_t *t = ((const st__http_req_t *)r)->conn->tls;
    return t ? t->peer_cn : NULL;
}
