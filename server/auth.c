/* auth.c: optional HTTP authentication (auth.credentials_file): Basic (user + password) or Bearer
 * (token) credentials, each allowed one or more tenants. Secrets are stored only as hashes — PBKDF2-
 * HMAC-SHA256 for passwords, SHA-256 for (random) tokens — compared in constant time, and never
 * logged. A verified Authorization header is remembered (by its SHA-256) for a minute, so PBKDF2 is
 * not paid on every request of a keep-alive shipper.
 *
 * File format, one credential per line ('#' starts a comment):
 *   <tenant>[,<tenant>...]  basic   <user>  pbkdf2-sha256$<iterations>$<salt base64>$<hash base64>
 *   <tenant>[,<tenant>...]  bearer  sha256$<hex>
 * `strata auth hash` prints these hashes; `*` as tenant allows every tenant. */
#include "server/app.h"

#include "common/err.h"
#include "common/timeutil.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUTH_CACHE    256
#define AUTH_CACHE_NS (60 * ST_NS_PER_SEC)

typedef struct {
    bool bearer;
    char user[128];
    int iterations;
    uint8_t salt[64];
    size_t nsalt;
    uint8_t hash[32];
    char tenants[1024]; /* comma-separated; "*" for all */
} cred_t;

struct st_auth {
    cred_t *v;
    size_t n;
    pthread_mutex_t mu;
    struct {
        uint8_t key[32]; /* SHA-256 of the Authorization header value */
        int cred;
        int64_t until;
    } cache[AUTH_CACHE];
};

static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outn)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap) return ST_EPARSE;
    int k = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
    if (k < 0) return ST_EPARSE;
    size_t pad = (s[n - 1] == '=') + (s[n - 2] == '=');
    *outn = (size_t)k - pad;
    return 0;
}

static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned len = 32;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static bool tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 150 || strcmp(t, ".") == 0 || strcmp(t, "..") == 0) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!-_.*'()", c)))
            return false;
    }
    return true;
}

static int parse_line(char *line, cred_t *c, char *why, size_t whysz)
{
    memset(c, 0, sizeof *c);
    char *save = NULL, *tenants = strtok_r(line, " \t", &save), *kind = strtok_r(NULL, " \t", &save);
    char *a = strtok_r(NULL, " \t", &save), *b = strtok_r(NULL, " \t", &save),
         *extra = strtok_r(NULL, " \t", &save);
    if (tenants == NULL || kind == NULL || a == NULL) {
        snprintf(why, whysz, "expected \"<tenants> basic <user> <hash>\" or \"<tenants> bearer <hash>\"");
        return ST_EPARSE;
    }
    if (strlen(tenants) >= sizeof c->tenants) {
        snprintf(why, whysz, "tenant list too long");
        return ST_EPARSE;
    }
    char tl[1024];
    snprintf(tl, sizeof tl, "%s", tenants);
    char *ts = NULL;
    for (char *t = strtok_r(tl, ",", &ts); t; t = strtok_r(NULL, ",", &ts)) {
        if (strcmp(t, "*") != 0 && !tenant_ok(t)) {
            snprintf(why, whysz, "invalid tenant ID \"%.150s\"", t);
            return ST_EPARSE;
        }
    }
    snprintf(c->tenants, sizeof c->tenants, "%s", tenants);
    const char *hash;
    if (strcmp(kind, "basic") == 0) {
        if (b == NULL || extra) {
            snprintf(why, whysz, "basic needs a user name and a pbkdf2-sha256 hash");
            return ST_EPARSE;
        }
        if (strlen(a) >= sizeof c->user || strchr(a, ':')) {
            snprintf(why, whysz, "invalid user name");
            return ST_EPARSE;
        }
        snprintf(c->user, sizeof c->user, "%s", a);
        hash = b;
        /* pbkdf2-sha256$<iterations>$<salt>$<hash> */
        char h[512];
        snprintf(h, sizeof h, "%s", hash);
        char *hs = NULL, *alg = strtok_r(h, "$", &hs), *it = strtok_r(NULL, "$", &hs),
             *salt = strtok_r(NULL, "$", &hs), *dk = strtok_r(NULL, "$", &hs);
        size_t n;
        uint8_t saltbuf[96], dkbuf[48]; /* EVP_DecodeBlock writes whole 3-byte groups, padding included */
        if (alg == NULL || strcmp(alg, "pbkdf2-sha256") != 0 || it == NULL || salt == NULL || dk == NULL ||
            (c->iterations = atoi(it)) < 1000 ||
            b64_decode(salt, strlen(salt), saltbuf, sizeof saltbuf, &c->nsalt) < 0 ||
            c->nsalt > sizeof c->salt || b64_decode(dk, strlen(dk), dkbuf, sizeof dkbuf, &n) < 0 || n != 32) {
            snprintf(why, whysz,
                     "basic credentials need a hash \"pbkdf2-sha256$<iterations >= 1000>$<salt>$<hash>\" "
                     "(strata auth hash)");
            return ST_EPARSE;
        }
        memcpy(c->salt, saltbuf, c->nsalt);
        memcpy(c->hash, dkbuf, 32);
    } else if (strcmp(kind, "bearer") == 0) {
        if (b != NULL) {
            snprintf(why, whysz, "bearer needs only a sha256 hash");
            return ST_EPARSE;
        }
        c->bearer = true;
        if (strncmp(a, "sha256$", 7) != 0 || !hex_decode(a + 7, c->hash, 32)) {
            snprintf(why, whysz,
                     "bearer tokens need a hash \"sha256$<64 hex digits>\" (strata auth hash --bearer)");
            return ST_EPARSE;
        }
    } else {
        snprintf(why, whysz, "unknown kind \"%.32s\" (basic or bearer)", kind);
        return ST_EPARSE;
    }
    return 0;
}

int st_auth_parse(const char *text, size_t len, const char *name, st_auth_t **out, char *err, size_t errsz)
{
    st_auth_t *a = calloc(1, sizeof *a);
    if (a == NULL) return -ENOMEM;
    pthread_mutex_init(&a->mu, NULL);
    char line[4096];
    int lineno = 0, rc = 0;
    size_t cap = 0, pos = 0;
    while (rc == 0 && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (n >= sizeof line) {
            snprintf(err, errsz, "%s:%d: auth.credentials_file: line too long", name, lineno);
            rc = ST_EPARSE;
            break;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl != NULL);
        if (memchr(line, '\0', n) != NULL) {
            snprintf(err, errsz, "%s:%d: auth.credentials_file: NUL byte", name, lineno);
            rc = ST_EPARSE;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t')) line[--n] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0') continue;
        if (a->n == cap) {
            cap = cap ? cap * 2 : 16;
            cred_t *v = realloc(a->v, cap * sizeof *v);
            if (v == NULL) {
                rc = -ENOMEM;
                break;
            }
            a->v = v;
        }
        char why[256];
        if (parse_line(p, &a->v[a->n], why, sizeof why) < 0) {
            snprintf(err, errsz, "%s:%d: auth.credentials_file: %s", name, lineno, why);
            rc = ST_EPARSE;
            break;
        }
        a->n++;
    }
    if (rc == 0 && a->n == 0) {
        snprintf(err, errsz, "%s: auth.credentials_file: no credentials (every request would be refused)", name);
        rc = ST_EPARSE;
    }
    if (rc < 0) {
        st_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

int st_auth_load(const char *path, st_auth_t **out, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int e = errno;
        snprintf(err, errsz, "%s: cannot open: %s", path, strerror(e));
        return -e;
    }
    st_buf_t b = ST_BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.len + n > (1u << 20)) {
            snprintf(err, errsz, "%s: auth.credentials_file: larger than 1 MiB", path);
            rc = ST_EPARSE;
        } else {
            rc = st_buf_append(&b, chunk, n);
        }
    }
    fclose(f);
    if (rc == 0) rc = st_auth_parse(b.data ? b.data : "", b.len, path, out, err, errsz);
    OPENSSL_cleanse(b.data, b.cap);
    st_buf_free(&b);
    return rc;
}

void st_auth_free(st_auth_t *a)
{
    if (a == NULL) return;
    OPENSSL_cleanse(a->v, a->n * sizeof *a->v);
    free(a->v);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static int verify(const st_auth_t *a, st_str_t hv)
{
    if (hv.n > 7 && strncasecmp(hv.p, "Bearer ", 7) == 0) {
        st_str_t tok = st_str(hv.p + 7, hv.n - 7);
        uint8_t h[32];
        sha256(tok.p, tok.n, h);
        for (size_t i = 0; i < a->n; i++)
            if (a->v[i].bearer && CRYPTO_memcmp(h, a->v[i].hash, 32) == 0) return (int)i;
        return -1;
    }
    if (hv.n > 6 && strncasecmp(hv.p, "Basic ", 6) == 0) {
        uint8_t dec[1024];
        size_t n;
        const char *b = hv.p + 6;
        size_t bn = hv.n - 6;
        if (bn >= sizeof dec || b64_decode(b, bn, dec, sizeof dec, &n) < 0) return -1;
        uint8_t *colon = memchr(dec, ':', n);
        if (colon == NULL) return -1;
        size_t un = (size_t)(colon - dec), pn = n - un - 1;
        int found = -1;
        for (size_t i = 0; i < a->n && found < 0; i++) {
            const cred_t *c = &a->v[i];
            if (c->bearer || strlen(c->user) != un || memcmp(c->user, dec, un) != 0) continue;
            uint8_t dk[32];
            if (PKCS5_PBKDF2_HMAC((const char *)colon + 1, (int)pn, c->salt, (int)c->nsalt, c->iterations,
                                  EVP_sha256(), 32, dk) == 1 &&
                CRYPTO_memcmp(dk, c->hash, 32) == 0)
                found = (int)i;
            OPENSSL_cleanse(dk, sizeof dk);
        }
        OPENSSL_cleanse(dec, sizeof dec);
        return found;
    }
    return -1;
}

int st_auth_check(st_auth_t *a, st_str_t header, const char **tenants)
{
    uint8_t key[32];
    sha256(header.p, header.n, key);
    int64_t now = st_mono_ns();
    unsigned slot = ((unsigned)key[0] << 8 | key[1]) % AUTH_CACHE;
    pthread_mutex_lock(&a->mu);
    if (a->cache[slot].until > now && CRYPTO_memcmp(a->cache[slot].key, key, 32) == 0) {
        int c = a->cache[slot].cred;
        pthread_mutex_unlock(&a->mu);
        *tenants = a->v[c].tenants;
        return 0;
    }
    pthread_mutex_unlock(&a->mu);
    int c = verify(a, header);
    if (c < 0) return ST_ENOTFOUND;
    pthread_mutex_lock(&a->mu);
    memcpy(a->cache[slot].key, key, 32);
    a->cache[slot].cred = c;
    a->cache[slot].until = now + AUTH_CACHE_NS;
    pthread_mutex_unlock(&a->mu);
    *tenants = a->v[c].tenants;
    return 0;
}

bool st_auth_allows(const char *tenants, st_str_t tenant, bool *single, char *first, size_t firstsz)
{
    bool ok = false;
    size_t count = 0;
    const char *p = tenants;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (count == 0) snprintf(first, firstsz, "%.*s", (int)n, p);
        count++;
        if ((n == 1 && p[0] == '*') || (n == tenant.n && memcmp(p, tenant.p, n) == 0)) ok = true;
        if (n == 1 && p[0] == '*') count = 2; /* never a single implied tenant */
        p = e ? e + 1 : p + n;
    }
    *single = count == 1;
    return ok;
}

int st_auth_hash_cmd(int argc, char **argv)
{
    bool bearer = false;
    int iterations = 310000;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--bearer") == 0)
            bearer = true;
        else if (strncmp(argv[i], "--iterations=", 13) == 0)
            iterations = atoi(argv[i] + 13);
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(
                "Usage: strata auth hash [--bearer] [--iterations=N] < secret\n\n"
                "Reads a password (or, with --bearer, a token) from the first line of stdin and prints the "
                "hash\n"
                "for auth.credentials_file: pbkdf2-sha256$<iterations>$<salt>$<hash> for passwords (default\n"
                "310000 iterations), sha256$<hex> for tokens (use long random tokens).\n",
                stdout);
            return 0;
        } else {
            fprintf(stderr, "strata auth hash: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    char secret[1024];
    if (fgets(secret, sizeof secret, stdin) == NULL) {
        fprintf(stderr, "strata auth hash: no secret on stdin\n");
        return 2;
    }
    size_t n = strlen(secret);
    while (n && (secret[n - 1] == '\n' || secret[n - 1] == '\r')) secret[--n] = '\0';
    if (n == 0) {
        fprintf(stderr, "strata auth hash: empty secret\n");
        return 2;
    }
    if (bearer) {
        uint8_t h[32];
        sha256(secret, n, h);
        printf("sha256$");
        for (int i = 0; i < 32; i++) printf("%02x", h[i]);
        printf("\n");
    } else {
        if (iterations < 1000) {
            fprintf(stderr, "strata auth hash: --iterations must be at least 1000\n");
            return 2;
        }
        uint8_t salt[16], dk[32];
        char s64[64], d64[64];
        if (RAND_bytes(salt, sizeof salt) != 1 ||
            PKCS5_PBKDF2_HMAC(secret, (int)n, salt, sizeof salt, iterations, EVP_sha256(), 32, dk) != 1) {
            fprintf(stderr, "strata auth hash: OpenSSL failed\n");
            return 1;
        }
        EVP_EncodeBlock((unsigned char *)s64, salt, sizeof salt);
        EVP_EncodeBlock((unsigned char *)d64, dk, sizeof dk);
        printf("pbkdf2-sha256$%d$%s$%s\n", iterations, s64, d64);
    }
    OPENSSL_cleanse(secret, sizeof secret);
    return 0;
}
