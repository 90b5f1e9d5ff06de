/* objstore.h: Strata's S3 client for the lifecycle worker: our own SigV4 signer, the AWS credential
 * chain, the S3 calls needed to move chunks between STANDARD, GLACIER and DEEP_ARCHIVE (put with
 * CRC32, ranged get, head with restore status, copy, multipart, list, batch delete, restore, Object
 * Lock retention), retries with full-jitter backoff, and metrics. It does not know about chunks,
 * packing or lifecycle policy (that is the worker's job); besides S3 it speaks only CloudWatch Logs
 * (the last section, cwlogs.c).
 *
 * Threads: an st_s3_client_t and an st_aws_creds_provider_t may be used from any number of threads at
 * once (libcurl easy handles come from a mutex-protected pool, one per request in flight; credentials
 * are cached under a mutex). An st_s3_upload_t (one multipart upload) belongs to one thread at a time.
 * Calls block the calling thread: run them on a worker thread, never on the libuv loop.
 *
 * Errors follow common/err.h: 0, -errno (-ENOMEM, -EINVAL, -EIO), ST_ENOTFOUND (404, NoSuchKey,
 * NoSuchBucket, NoSuchUpload), ST_ETIMEOUT (request timed out on every attempt), ST_EPARSE (malformed
 * response) or one of the ST_S3_E* codes below. Every S3 call takes an optional st_s3_error_t *err
 * (NULL allowed) that receives the HTTP status, S3 error code, message and request id of the last
 * attempt. Secrets never reach logs or st_s3_error_t. */
#ifndef ST_OBJSTORE_OBJSTORE_H
#define ST_OBJSTORE_OBJSTORE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------------
 * Error codes (a reserved range below common/err.h's; st_s3_strerror names these and all others). */
enum {
    ST_S3_E_FIRST = -10100,
    ST_S3_EARCHIVED = ST_S3_E_FIRST, /* InvalidObjectState / ObjectNotInActiveTierError: the object is in
                                        GLACIER or DEEP_ARCHIVE and not restored; RestoreObject first */
    ST_S3_ERESTORING,                /* 409 RestoreAlreadyInProgress */
    ST_S3_EACCESS,                   /* 403 AccessDenied (also a delete refused by Object Lock) */
    ST_S3_EAUTH,                     /* no credentials, or SignatureDoesNotMatch, InvalidAccessKeyId,
                                        ExpiredToken, AuthorizationHeaderMalformed */
    ST_S3_ECHECKSUM,                 /* checksum sent != checksum returned, BadDigest, InvalidDigest,
                                        XAmzContentSHA256Mismatch */
    ST_S3_EPRECONDITION,             /* 412 PreconditionFailed (If-None-Match) */
    ST_S3_EEXISTS,                   /* 409 BucketAlreadyExists (owned by someone else) */
    ST_S3_EUNAVAILABLE,              /* 5xx / SlowDown / throttling on every attempt */
    ST_S3_ENETWORK,                  /* connection refused/reset, DNS, TLS on every attempt */
    ST_S3_EREMOTE,                   /* any other S3 error; see st_s3_error_t.code */
    ST_S3_E_LAST
};

/* Names any return code of this module (falls back to st_strerror). Never NULL. */
const char *st_s3_strerror(int rc);

/* Details of the last attempt of a failed (or successful) call. */
typedef struct {
    int http_status; /* 0 when no response arrived */
    char code[64];   /* S3 <Code>, or "" (HEAD errors carry no body), or "Timeout"/"Network" */
    char message[256];
    char request_id[64]; /* x-amz-request-id: quote it to AWS support and in audit logs */
    int attempts;        /* attempts made (1 = no retry) */
} st_s3_error_t;

/* ---------------------------------------------------------------------------------------------------
 * SigV4 signer. Exposed for tests and for other AWS clients (CloudWatch Logs later). */

#define ST_SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define ST_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct {
    const char *name; /* any case */
    const char *value;
} st_kv_t;

typedef struct {
    const char *method;  /* "GET", "PUT", ... */
    const char *path;    /* path as sent on the wire (percent-encoded), without the query; "" = "/" */
    const char *query;   /* query as sent, without '?'; NULL or "" for none. Parsed with %XX decoding
                            (no '+' -> space), then re-encoded canonically */
    const st_kv_t *headers; /* headers to sign, "host" included (exactly as sent, with a
                               non-default port); values may hold folded whitespace */
    size_t nheaders;
    const char *payload_hash; /* lowercase hex SHA-256 of the body or ST_SIGV4_UNSIGNED_PAYLOAD;
                                 NULL = hash of an empty body */
} st_sigv4_request_t;

enum {
    ST_SIGV4_S3 = 1,             /* S3 path rules: no normalisation, no double encoding: the wire path is
                                    signed as sent (valid %XX kept verbatim, raw bytes that need escaping
                                    escaped once); otherwise the wire path is encoded again ("double
                                    encoding", as every other service wants) */
    ST_SIGV4_NORMALIZE = 2,      /* non-S3 only: remove "." / ".." segments and empty segments */
    ST_SIGV4_CONTENT_SHA256 = 4, /* add and sign x-amz-content-sha256 (always for S3; header mode only) */
    ST_SIGV4_OMIT_TOKEN = 8,     /* send the session token but do not sign it (some STS-style services) */
};

typedef struct {
    const char *access_key;
    const char *secret_key;
    const char *session_token; /* NULL or "" for long-term keys */
    const char *region;
    const char *service; /* "s3", "logs", "sts", ... */
    time_t now;          /* signing time (UTC seconds) */
    unsigned flags;      /* ST_SIGV4_* */
    long expires;        /* presign only: X-Amz-Expires in seconds (1..604800) */
} st_sigv4_params_t;

/* Everything a signature is made of; the strings are exposed so tests can compare each step. */
typedef struct {
    char amz_date[17];           /* YYYYMMDDTHHMMSSZ */
    char scope[160];             /* YYYYMMDD/region/service/aws4_request */
    char signature[65];          /* lowercase hex */
    st_buf_t canonical_request;
    st_buf_t string_to_sign;
    st_buf_t signed_headers;     /* "host;x-amz-content-sha256;x-amz-date" */
    st_buf_t authorization;      /* header mode: value of the Authorization header */
    st_buf_t query;              /* presign mode: the complete query string to send, without '?' */
    /* Header mode: headers the caller must add to the request besides Authorization
     * (x-amz-date, x-amz-content-sha256 when flagged, x-amz-security-token when a token is given). */
    st_kv_t add[3];
    int nadd;
    char content_sha256[65 + 16];
} st_sigv4_t;

/* Signs r for the Authorization header. out is initialised here; free with st_sigv4_free even on
 * failure. Returns 0, -EINVAL (missing field, no host header, bad expiry) or -ENOMEM. */
int st_sigv4_sign(const st_sigv4_request_t *r, const st_sigv4_params_t *p, st_sigv4_t *out);
/* Signs r as a presigned request (X-Amz-* query parameters; p->expires required); out->query is the
 * query string to send. Same returns as st_sigv4_sign. */
int st_sigv4_presign(const st_sigv4_request_t *r, const st_sigv4_params_t *p, st_sigv4_t *out);
void st_sigv4_free(st_sigv4_t *s);

/* kSigning = HMAC chain over ("AWS4" + secret, date8, region, service, "aws4_request"). */
void st_sigv4_signing_key(const char *secret, const char *date8, const char *region, const char *service,
                          uint8_t out[32]);
/* URI-encodes with the RFC 3986 unreserved set (A-Z a-z 0-9 - _ . ~) left alone, uppercase hex;
 * '/' is kept when keep_slash. Appends to b; returns 0 or -ENOMEM. */
int st_sigv4_uri_encode(st_buf_t *b, const char *p, size_t n, bool keep_slash);
/* Appends the canonical URI of a wire path under the given flags (exposed for tests). */
int st_sigv4_canonical_path(st_buf_t *b, const char *path, unsigned flags);
/* Appends the canonical query string of a wire query (exposed for tests). */
int st_sigv4_canonical_query(st_buf_t *b, const char *query);
/* Lowercase hex SHA-256 of p[0..n) into out[65] (NUL-terminated). */
void st_sha256_hex(const void *p, size_t n, char out[65]);

/* ---------------------------------------------------------------------------------------------------
 * Credentials. */

typedef struct {
    char access_key[128];
    char secret_key[128];
    char session_token[4096]; /* "" for long-term keys */
    time_t expiration;        /* 0 = does not expire */
    char source[24];          /* "env", "profile", "web-identity", "container", "imds", "static" */
} st_aws_creds_t;

typedef struct st_aws_creds_provider st_aws_creds_provider_t;

typedef struct {
    const char *profile;          /* NULL: $AWS_PROFILE, else "default". Setting it here (not through
                                     the environment) skips the environment keys, as botocore does */
    const char *credentials_file; /* NULL: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
    const char *config_file;      /* NULL: $AWS_CONFIG_FILE, else ~/.aws/config */
    const char *region;           /* for STS; NULL: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1 */
    const char *sts_endpoint;     /* NULL: $AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com */
    const char *imds_endpoint;    /* NULL: $AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254 */
    long timeout_ms;              /* per HTTP call of STS/IMDS/container; default 2000 */
    long refresh_before_s;        /* refresh temporary credentials this long before expiry; default 600 */
    bool no_imds;                 /* also set by AWS_EC2_METADATA_DISABLED=true */
} st_aws_creds_opts_t;

/* The default chain, resolved lazily on the first st_aws_creds_get:
 *   1. environment: AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN or
 *      AWS_SECURITY_TOKEN, AWS_CREDENTIAL_EXPIRATION);
 *   2. web identity (EKS IRSA): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (+ AWS_ROLE_SESSION_NAME),
 *      or role_arn + web_identity_token_file in the profile: unsigned STS AssumeRoleWithWebIdentity,
 *      the token file is re-read on every refresh;
 *   3. shared files: the profile's aws_access_key_id / aws_secret_access_key / aws_session_token in the
 *      credentials file ([name]), then in the config file ([profile name], [default]);
 *   4. container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (http://169.254.170.2<uri>) or
 *      AWS_CONTAINER_CREDENTIALS_FULL_URI with AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE);
 *   5. EC2 IMDSv2: PUT /latest/api/token, then GET /latest/meta-data/iam/security-credentials/<role>.
 * The first source that yields keys is kept; temporary credentials are refreshed from the same source
 * refresh_before_s ahead of expiry (still-valid cached keys are served if a refresh fails). */
int st_aws_creds_provider_create(const st_aws_creds_opts_t *o, st_aws_creds_provider_t **out);
/* A provider that always returns *c (copied). */
int st_aws_creds_provider_create_static(const st_aws_creds_t *c, st_aws_creds_provider_t **out);
void st_aws_creds_provider_destroy(st_aws_creds_provider_t *p);
/* Copies current credentials into *out. Returns 0, ST_S3_EAUTH (no source has credentials, or the
 * source failed and nothing valid is cached), -ENOMEM. */
int st_aws_creds_get(st_aws_creds_provider_t *p, st_aws_creds_t *out);
/* Forces the next st_aws_creds_get to refresh (used after ExpiredToken). */
void st_aws_creds_invalidate(st_aws_creds_provider_t *p);
/* Wipes secrets (OPENSSL_cleanse). */
void st_aws_creds_clear(st_aws_creds_t *c);

/* One profile from the shared files (exposed for tests and `strata check-config`). */
typedef struct {
    char access_key[128];
    char secret_key[128];
    char session_token[4096];
    char region[64];
    char role_arn[256];
    char web_identity_token_file[512];
    char role_session_name[128];
} st_aws_profile_t;

/* Reads profile `name` from the credentials file (section [name]) and the config file ([profile name],
 * or [default] for "default"); values in the credentials file win. Either path may be NULL or missing.
 * Returns 0 when the profile exists in at least one file, ST_ENOTFOUND otherwise, ST_EPARSE on a
 * malformed file, -errno on read errors other than ENOENT. */
int st_aws_profile_load(const char *credentials_path, const char *config_path, const char *name,
                        st_aws_profile_t *out);
/* Same over in-memory INI text; is_config selects the [profile name] section syntax. Returns 0,
 * ST_ENOTFOUND (no such section), ST_EPARSE. */
int st_aws_profile_parse(const char *text, size_t n, bool is_config, const char *name, st_aws_profile_t *out);

/* ---------------------------------------------------------------------------------------------------
 * S3 client. */

typedef enum { ST_S3_ADDR_AUTO = 0, ST_S3_ADDR_PATH, ST_S3_ADDR_VIRTUAL } st_s3_addressing_t;

typedef struct {
    const char *region;         /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, "us-east-1" */
    const char *endpoint;       /* "http://127.0.0.1:5000"; NULL: https://s3.<region>.amazonaws.com */
    st_s3_addressing_t addressing; /* AUTO: path-style with a custom endpoint, virtual-hosted on AWS
                                      (path-style when the bucket name has dots or is not DNS-safe) */
    st_aws_creds_provider_t *creds; /* borrowed; NULL: the client creates the default chain */
    long connect_timeout_ms;    /* default 5000 */
    long request_timeout_ms;    /* whole attempt, 0 = none (default: big uploads take time) */
    long low_speed_time_s;      /* abort an attempt that moves < 1 byte/s for this long; default 30 */
    int max_attempts;           /* total attempts per request, default 5 (1 = no retries) */
    long retry_base_ms;         /* backoff: random(0, min(retry_max_ms, base * 2^(attempt-1))); 100 */
    long retry_max_ms;          /* default 20000 */
    size_t part_size;           /* multipart part size, default 16 MiB (min 5 MiB, except in tests) */
    size_t multipart_threshold; /* put_object switches to multipart above this; default 32 MiB */
    bool unsigned_payload;      /* over HTTPS only: sign bodies as UNSIGNED-PAYLOAD (they still carry
                                   x-amz-checksum-crc32); default: the body's SHA-256 is signed */
    int max_idle_handles;       /* curl handles (and their connections) kept for reuse; default 8 */
    const char *ca_file;        /* NULL: system CA store */
} st_s3_config_t;

typedef struct st_s3_client st_s3_client_t;

/* Returns 0, -EINVAL (bad endpoint/region/sizes), -ENOMEM, or an error of st_aws_creds_provider_create.
 * Credentials are not fetched here but on the first request. */
int st_s3_client_create(const st_s3_config_t *cfg, st_s3_client_t **out);
void st_s3_client_destroy(st_s3_client_t *c);

/* Test seam: overrides the clock used for signing (0 restores the real clock). */
void st_s3_client_set_time(st_s3_client_t *c, time_t fixed_now);

typedef struct {
    const char *storage_class;   /* NULL: not sent (bucket default, STANDARD); "GLACIER", "DEEP_ARCHIVE",
                                    "STANDARD_IA", "GLACIER_IR", ... sent as given */
    const char *content_type;    /* NULL: application/octet-stream */
    const char *lock_mode;       /* "COMPLIANCE", "GOVERNANCE" or NULL; needs lock_retain_until */
    time_t lock_retain_until;
    bool legal_hold;             /* x-amz-object-lock-legal-hold: ON */
    const st_kv_t *meta;         /* user metadata, sent as x-amz-meta-<name> (names lowercased by S3) */
    size_t nmeta;
    bool if_none_match;          /* If-None-Match: * (fails with ST_S3_EPRECONDITION if the key exists) */
} st_s3_put_opts_t;

typedef struct {
    char etag[80];        /* with quotes as S3 sends it; "<md5>-<parts>" for multipart */
    char version_id[128]; /* "" when the bucket is not versioned */
    uint32_t crc32;       /* CRC32 of what we sent (whole object; for multipart: of the whole object too) */
    bool crc32_verified;  /* S3 echoed x-amz-checksum-crc32 (per part for multipart) and it matched */
    int parts;            /* 0 for a single PUT */
} st_s3_put_result_t;

/* PutObject of len bytes (multipart above cfg.multipart_threshold). Sends x-amz-checksum-crc32 (and
 * Content-MD5 when Object Lock headers are set); a differing echo fails with ST_S3_ECHECKSUM. o and res
 * may be NULL. */
int st_s3_put_object(st_s3_client_t *c, const char *bucket, const char *key, const void *data, size_t len,
                     const st_s3_put_opts_t *o, st_s3_put_result_t *res, st_s3_error_t *err);
/* The same reading len bytes at offset off of fd with pread (twice: hashing, then sending), so large
 * objects never sit in memory; multipart parts are read one at a time. */
int st_s3_put_object_fd(st_s3_client_t *c, const char *bucket, const char *key, int fd, off_t off,
                        uint64_t len, const st_s3_put_opts_t *o, st_s3_put_result_t *res, st_s3_error_t *err);

typedef struct {
    bool present;         /* x-amz-restore was sent (a restore was requested at some point) */
    bool ongoing;         /* ongoing-request="true" */
    time_t expiry;        /* expiry-date of the restored copy, 0 if absent */
} st_s3_restore_t;

/* Parses an x-amz-restore value: ongoing-request="true|false"[, expiry-date="<RFC 1123 date>"], other
 * attributes tolerated, any order. Returns 0 or ST_EPARSE. */
int st_s3_parse_restore(const char *v, size_t n, st_s3_restore_t *out);

#define ST_S3_MAX_META 16

typedef struct {
    uint64_t size;          /* Content-Length of the object (of the whole object for ranged GETs) */
    char etag[80];
    char storage_class[32]; /* "STANDARD" when the header is absent */
    char version_id[128];
    char content_type[128];
    time_t last_modified;
    char checksum_crc32[16]; /* base64 as returned ("" if none; multipart: "<b64>-<parts>") */
    st_s3_restore_t restore;
    char lock_mode[16];      /* "" / "COMPLIANCE" / "GOVERNANCE" */
    time_t lock_retain_until;
    bool legal_hold;
    int nmeta;               /* x-amz-meta-* pairs, names without the prefix, lowercased */
    struct {
        char name[64];
        char value[256];
    } meta[ST_S3_MAX_META];
} st_s3_object_info_t;

/* HeadObject. version_id may be NULL. Returns 0, ST_ENOTFOUND, ST_S3_EACCESS, ... */
int st_s3_head_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                      st_s3_object_info_t *info, st_s3_error_t *err);

typedef struct {
    bool range;           /* read [offset, offset + length) only (length 0 = to the end) */
    uint64_t offset;
    uint64_t length;
    const char *version_id;
} st_s3_get_opts_t;

/* GetObject into out (reset first; on failure its contents are unspecified). A whole-object GET
 * verifies x-amz-checksum-crc32 when S3 returns one (ST_S3_ECHECKSUM). Archived, unrestored objects
 * fail with ST_S3_EARCHIVED. o and info may be NULL. */
int st_s3_get_object(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_get_opts_t *o,
                     st_buf_t *out, st_s3_object_info_t *info, st_s3_error_t *err);
/* The same writing to fd at offset fd_off with pwrite; *nread (optional) gets the byte count. */
int st_s3_get_object_fd(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_get_opts_t *o,
                        int fd, off_t fd_off, uint64_t *nread, st_s3_object_info_t *info, st_s3_error_t *err);

typedef struct {
    const char *storage_class;   /* new class, NULL to keep the default */
    bool replace_metadata;       /* x-amz-metadata-directive: REPLACE with meta/content_type below */
    const st_kv_t *meta;
    size_t nmeta;
    const char *content_type;
    const char *src_version_id;
    const char *lock_mode;       /* Object Lock for the new version */
    time_t lock_retain_until;
} st_s3_copy_opts_t;

/* CopyObject (server-side, <= 5 GiB). Copying onto itself is allowed when the class or metadata
 * changes. A 200 carrying an <Error> body is an error. An archived source gives ST_S3_EARCHIVED. */
int st_s3_copy_object(st_s3_client_t *c, const char *src_bucket, const char *src_key, const char *dst_bucket,
                      const char *dst_key, const st_s3_copy_opts_t *o, st_s3_put_result_t *res,
                      st_s3_error_t *err);

/* DeleteObject (204 also for missing keys). version_id NULL: adds a delete marker in versioned buckets. */
int st_s3_delete_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                        bool bypass_governance, st_s3_error_t *err);

typedef struct {
    const char *key;
    const char *version_id; /* NULL: latest */
} st_s3_object_id_t;

typedef struct {
    char *key;          /* owned */
    char *version_id;   /* owned, may be NULL */
    char code[64];      /* e.g. "AccessDenied" for a version under Object Lock */
    char message[256];
} st_s3_delete_error_t;

typedef struct {
    size_t ndeleted;              /* keys reported deleted (quiet mode: n - nerrors) */
    st_s3_delete_error_t *errors; /* owned array */
    size_t nerrors;
} st_s3_delete_result_t;

/* DeleteObjects in batches of up to 1000 keys (quiet mode, Content-MD5 sent). Returns 0 when every
 * batch was answered, even if some keys failed: check res->nerrors. Free res with
 * st_s3_delete_result_free. */
int st_s3_delete_objects(st_s3_client_t *c, const char *bucket, const st_s3_object_id_t *ids, size_t n,
                         bool bypass_governance, st_s3_delete_result_t *res, st_s3_error_t *err);
void st_s3_delete_result_free(st_s3_delete_result_t *res);

typedef struct {
    const char *prefix;
    const char *delimiter;
    const char *start_after;
    const char *continuation_token; /* NextContinuationToken of the previous page */
    int max_keys;                   /* 1..1000, 0 = server default (1000) */
} st_s3_list_opts_t;

typedef struct {
    char *key;                      /* owned (decoded from encoding-type=url) */
    uint64_t size;
    char etag[80];
    char storage_class[32];
    time_t last_modified;
} st_s3_list_entry_t;

typedef struct {
    st_s3_list_entry_t *entries;    /* owned */
    size_t n;
    char **prefixes;                /* CommonPrefixes (with a delimiter), owned */
    size_t nprefixes;
    bool truncated;
    char *next_token;               /* owned; NULL on the last page */
} st_s3_list_page_t;

/* ListObjectsV2, one page. Free with st_s3_list_page_free. */
int st_s3_list_objects(st_s3_client_t *c, const char *bucket, const st_s3_list_opts_t *o,
                       st_s3_list_page_t *page, st_s3_error_t *err);
void st_s3_list_page_free(st_s3_list_page_t *page);
/* Every page: calls cb for each entry (prefix entries have size 0 and storage_class "PREFIX");
 * a non-zero cb return stops and is returned. */
typedef int (*st_s3_list_cb)(const st_s3_list_entry_t *e, void *arg);
int st_s3_list_all(st_s3_client_t *c, const char *bucket, const st_s3_list_opts_t *o, st_s3_list_cb cb,
                   void *arg, st_s3_error_t *err);

typedef enum { ST_S3_TIER_STANDARD = 0, ST_S3_TIER_BULK, ST_S3_TIER_EXPEDITED } st_s3_tier_t;

/* RestoreObject for `days` days. *started (optional): true on 202 (restore started), false on 200 (a
 * restored copy exists; its expiry was extended). 409 gives ST_S3_ERESTORING. */
int st_s3_restore_object(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                         int days, st_s3_tier_t tier, bool *started, st_s3_error_t *err);

/* PutObjectRetention (mode "COMPLIANCE" or "GOVERNANCE"). */
int st_s3_put_object_retention(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                               const char *mode, time_t retain_until, bool bypass_governance,
                               st_s3_error_t *err);
/* GetObjectRetention: mode[16] gets "" when none is set (ST_ENOTFOUND from S3 is mapped to that). */
int st_s3_get_object_retention(st_s3_client_t *c, const char *bucket, const char *key, const char *version_id,
                               char mode[16], time_t *retain_until, st_s3_error_t *err);

/* CreateBucket (LocationConstraint outside us-east-1; x-amz-bucket-object-lock-enabled when asked).
 * An existing bucket we own is success. */
int st_s3_create_bucket(st_s3_client_t *c, const char *bucket, bool object_lock, st_s3_error_t *err);
int st_s3_put_bucket_versioning(st_s3_client_t *c, const char *bucket, bool enabled, st_s3_error_t *err);

/* Multipart upload driven by the caller (e.g. a packer streaming parts as it builds them). Parts are
 * numbered 1, 2, ... in call order; each carries x-amz-checksum-crc32, verified against the echo. */
typedef struct st_s3_upload st_s3_upload_t;
int st_s3_upload_begin(st_s3_client_t *c, const char *bucket, const char *key, const st_s3_put_opts_t *o,
                       st_s3_upload_t **out, st_s3_error_t *err);
int st_s3_upload_part(st_s3_upload_t *u, const void *data, size_t len, st_s3_error_t *err);
int st_s3_upload_part_fd(st_s3_upload_t *u, int fd, off_t off, uint64_t len, st_s3_error_t *err);
/* CompleteMultipartUpload. A retried Complete that gets NoSuchUpload is resolved by a HEAD: when the
 * object's ETag equals the multipart ETag computed from our parts, the upload is reported complete. */
int st_s3_upload_complete(st_s3_upload_t *u, st_s3_put_result_t *res, st_s3_error_t *err);
int st_s3_upload_abort(st_s3_upload_t *u, st_s3_error_t *err);
const char *st_s3_upload_id(const st_s3_upload_t *u);
/* Frees the handle (does not abort the upload on S3). NULL is allowed. */
void st_s3_upload_destroy(st_s3_upload_t *u);

/* Presigned URL (query-string SigV4, UNSIGNED-PAYLOAD) for method on bucket/key, valid expires_s
 * seconds. *url is malloc'd. Returns 0, -EINVAL, -ENOMEM, ST_S3_EAUTH. */
int st_s3_presign(st_s3_client_t *c, const char *method, const char *bucket, const char *key, long expires_s,
                  char **url);

/* ---------------------------------------------------------------------------------------------------
 * Response parsers (pure functions over bytes; exposed for tests and the s3xml fuzz target). */

/* <Error><Code/><Message/><RequestId/>... Returns 0 if an Error element was found, ST_EPARSE else. */
int st_s3_parse_error(const char *xml, size_t n, st_s3_error_t *out);
int st_s3_parse_list(const char *xml, size_t n, st_s3_list_page_t *page);
int st_s3_parse_delete_result(const char *xml, size_t n, st_s3_delete_result_t *res);
/* InitiateMultipartUploadResult/UploadId -> *upload_id (malloc'd). */
int st_s3_parse_initiate(const char *xml, size_t n, char **upload_id);
/* CompleteMultipartUploadResult or CopyObjectResult -> etag (and crc32 if present); an <Error> root
 * fills err and returns ST_S3_EREMOTE. */
int st_s3_parse_etag_result(const char *xml, size_t n, char etag[80], char crc32_b64[16], st_s3_error_t *err);
int st_s3_parse_retention(const char *xml, size_t n, char mode[16], time_t *retain_until);
/* AssumeRoleWithWebIdentityResponse (or any STS .../Credentials element) -> creds. */
int st_aws_parse_sts_credentials(const char *xml, size_t n, st_aws_creds_t *out);
/* ISO-8601 ("2025-01-02T03:04:05Z", fraction and offsets allowed) and RFC 1123 dates. */
int st_s3_parse_iso8601(const char *s, size_t n, time_t *out);
int st_s3_parse_http_date(const char *s, size_t n, time_t *out);

/* ===================================================================================================
 * CloudWatch Logs (cwlogs.c): the JSON-protocol client the lifecycle uses to ship streams to CloudWatch
 * Logs and to import log groups from it. POST / with X-Amz-Target: Logs_20140328.<Op>, SigV4 service
 * "logs", on the same executor as S3 (credential chain, curl handle pool, full-jitter retries, metrics
 * under strata_s3_* with the Logs operation names). Throttling (ThrottlingException), 5xx,
 * ServiceUnavailableException and OperationAbortedException are retried; after the last attempt they
 * give ST_S3_EUNAVAILABLE. Other errors: ST_ENOTFOUND (ResourceNotFoundException), ST_S3_EAUTH
 * (UnrecognizedClientException, InvalidSignatureException, ExpiredTokenException, no credentials),
 * ST_S3_EACCESS (AccessDeniedException), ST_S3_EREMOTE (anything else; err->code names it), -EINVAL
 * (a name or value that AWS would reject, caught before it goes on the wire), ST_EPARSE, -ENOMEM.
 * err (st_s3_error_t, NULL allowed) gets the error type without its "namespace#" prefix.
 * Threads: like st_s3_client_t (any number of threads; calls block). It knows nothing of chunks. */

#define ST_CW_MAX_NAME 512                   /* log group and log stream names: 1..512 bytes */
#define ST_CW_EVENT_OVERHEAD 26              /* bytes PutLogEvents counts per event besides the message */
#define ST_CW_MAX_BATCH_BYTES 1048576        /* sum of (UTF-8 message bytes + 26) per PutLogEvents */
#define ST_CW_MAX_BATCH_EVENTS 10000         /* events per PutLogEvents */
#define ST_CW_MAX_SPAN_MS (24LL * 3600 * 1000) /* newest - oldest event of one batch must stay below this */
#define ST_CW_MAX_AGE_MS (14LL * 86400 * 1000) /* AWS rejects events older than this ... */
#define ST_CW_MAX_FUTURE_MS (2LL * 3600 * 1000) /* ... or further than this in the future */

/* Log group names: 1..512 bytes of [A-Za-z0-9._/#-]. Log stream names: 1..512 bytes, no ':' or '*'. */
bool st_cw_group_name_valid(st_str_t name);
bool st_cw_stream_name_valid(st_str_t name);

/* The retention values PutRetentionPolicy accepts (days, ascending): 1, 3, 5, ..., 3653. */
extern const int st_cw_retention_values[];
extern const size_t st_cw_nretention_values;
bool st_cw_retention_valid(int days);
/* The smallest allowed value >= days (3653 when days is above every value; 1 for days <= 1). */
int st_cw_retention_at_least(int days);

typedef struct {
    const char *region;             /* NULL: $AWS_REGION, $AWS_DEFAULT_REGION, "us-east-1" */
    const char *endpoint;           /* "http://127.0.0.1:5000"; NULL: https://logs.<region>.amazonaws.com */
    st_aws_creds_provider_t *creds; /* borrowed; NULL: the default chain */
    long connect_timeout_ms;        /* default 5000 */
    long request_timeout_ms;        /* whole attempt; default 60000 */
    int max_attempts;               /* default 5 (1 = no retries) */
    long retry_base_ms;             /* full-jitter backoff base, default 100 */
    long retry_max_ms;              /* default 20000 */
    const char *ca_file;            /* NULL: system CA store */
} st_cw_config_t;

typedef struct st_cw_client st_cw_client_t;

/* Returns 0, -EINVAL (bad endpoint), -ENOMEM or an error of st_aws_creds_provider_create. */
int st_cw_client_create(const st_cw_config_t *cfg, st_cw_client_t **out);
void st_cw_client_destroy(st_cw_client_t *c); /* NULL-safe */

/* CreateLogGroup / CreateLogStream; ResourceAlreadyExistsException is success. */
int st_cw_create_log_group(st_cw_client_t *c, const char *group, st_s3_error_t *err);
int st_cw_create_log_stream(st_cw_client_t *c, const char *group, const char *stream, st_s3_error_t *err);
/* PutRetentionPolicy (days must be st_cw_retention_valid, else -EINVAL) / DeleteRetentionPolicy
 * (events never expire). */
int st_cw_put_retention_policy(st_cw_client_t *c, const char *group, int days, st_s3_error_t *err);
int st_cw_delete_retention_policy(st_cw_client_t *c, const char *group, st_s3_error_t *err);

typedef struct {
    char *name;                 /* owned */
    int retention_days;         /* 0: never expire (no retentionInDays in the answer) */
    int64_t creation_time_ms;
    uint64_t stored_bytes;
} st_cw_group_t;

typedef struct {
    st_cw_group_t *v;           /* owned */
    size_t n;
    char *next_token;           /* owned; NULL on the last page */
} st_cw_groups_t;

/* DescribeLogGroups, one page (prefix and next_token may be NULL; limit 1..50, 0 = 50). Free out with
 * st_cw_groups_free (also after a failure). */
int st_cw_describe_log_groups(st_cw_client_t *c, const char *prefix, const char *next_token, int limit,
                              st_cw_groups_t *out, st_s3_error_t *err);
void st_cw_groups_free(st_cw_groups_t *g);
/* Every page: cb per group; a non-zero cb return stops and is returned. */
int st_cw_list_log_groups(st_cw_client_t *c, const char *prefix, int (*cb)(void *arg, const st_cw_group_t *g),
                          void *arg, st_s3_error_t *err);
/* The group named exactly `group` (DescribeLogGroups by prefix, paged): 0 with *out filled (free with
 * st_cw_group_clear), or ST_ENOTFOUND. */
int st_cw_find_log_group(st_cw_client_t *c, const char *group, st_cw_group_t *out, st_s3_error_t *err);
void st_cw_group_clear(st_cw_group_t *g);

typedef struct {
    char *name;                 /* owned */
    int64_t creation_time_ms;
    int64_t first_event_ms, last_event_ms, last_ingestion_ms; /* 0 when absent (no events yet) */
    uint64_t stored_bytes;
} st_cw_stream_t;

typedef struct {
    st_cw_stream_t *v;          /* owned */
    size_t n;
    char *next_token;           /* owned; NULL on the last page */
} st_cw_streams_t;

/* DescribeLogStreams ordered by name, one page (limit 1..50, 0 = 50). Free with st_cw_streams_free. */
int st_cw_describe_log_streams(st_cw_client_t *c, const char *group, const char *prefix, const char *next_token,
                               int limit, st_cw_streams_t *out, st_s3_error_t *err);
void st_cw_streams_free(st_cw_streams_t *s);
int st_cw_list_log_streams(st_cw_client_t *c, const char *group, const char *prefix,
                           int (*cb)(void *arg, const st_cw_stream_t *s), void *arg, st_s3_error_t *err);

typedef struct {
    int64_t timestamp_ms;
    int64_t ingestion_ms;       /* 0 when absent */
    st_str_t message;           /* views into the page's text */
    st_str_t stream;            /* FilterLogEvents: logStreamName; empty for GetLogEvents */
    st_str_t event_id;          /* FilterLogEvents: eventId; empty for GetLogEvents */
} st_cw_event_t;

typedef struct {
    st_cw_event_t *v;           /* owned */
    size_t n;
    char *next_token;           /* GetLogEvents: nextForwardToken; FilterLogEvents: nextToken (owned, or NULL) */
    char *prev_token;           /* GetLogEvents: nextBackwardToken (owned, or NULL) */
    st_buf_t text;              /* owned backing store of the views */
} st_cw_events_t;

typedef struct {
    int64_t start_ms;           /* events at or after this time; 0 = from the beginning */
    int64_t end_ms;             /* events before this time; 0 = no limit */
    int limit;                  /* 1..10000, 0 = server default */
    const char *next_token;     /* a token of the previous page */
    bool start_from_head;       /* GetLogEvents: oldest first (without a token) */
    const char *stream_prefix;  /* FilterLogEvents: logStreamNamePrefix (NULL: every stream) */
    const char *filter_pattern; /* FilterLogEvents: filterPattern (NULL: every event) */
} st_cw_read_opts_t;

/* GetLogEvents / FilterLogEvents, one page. Free out with st_cw_events_free (also after a failure). */
int st_cw_get_log_events(st_cw_client_t *c, const char *group, const char *stream, const st_cw_read_opts_t *o,
                         st_cw_events_t *out, st_s3_error_t *err);
int st_cw_filter_log_events(st_cw_client_t *c, const char *group, const st_cw_read_opts_t *o, st_cw_events_t *out,
                            st_s3_error_t *err);
void st_cw_events_free(st_cw_events_t *e);
/* Reads a stream forward from start_ms (GetLogEvents, startFromHead, paging until the forward token
 * comes back unchanged), calling cb once per non-empty page (events with timestamp >= end_ms, when end_ms
 * is non-zero, are dropped here: emulators disagree on whether endTime is inclusive). A non-zero cb
 * return stops and is returned. At most max_pages pages (0 = no limit; ST_ELIMIT when reached). */
int st_cw_read_stream(st_cw_client_t *c, const char *group, const char *stream, int64_t start_ms, int64_t end_ms,
                      size_t max_pages, int (*cb)(void *arg, const st_cw_events_t *page), void *arg,
                      st_s3_error_t *err);

/* ---- PutLogEvents and its batch rules ---- */

typedef struct {
    int64_t timestamp_ms;
    st_str_t message;           /* borrowed */
} st_cw_put_event_t;

/* Why the client left an event out (it would be rejected or make the request fail). */
typedef enum {
    ST_CW_SKIP_TOO_OLD = 1,     /* older than max_age_ms before now */
    ST_CW_SKIP_TOO_NEW,         /* more than max_future_ms after now */
    ST_CW_SKIP_TOO_LARGE,       /* message + overhead above max_batch_bytes */
    ST_CW_SKIP_EMPTY,           /* CloudWatch needs at least one byte */
    ST_CW_SKIP_COUNT
} st_cw_skip_t;

const char *st_cw_skip_name(int reason); /* "too_old", "too_new", "too_large", "empty" */

/* Limits of one PutLogEvents; 0 fields take the AWS values above (tests shrink them). */
typedef struct {
    size_t max_events;
    size_t max_bytes;
    size_t overhead;
    int64_t max_span_ms;
    int64_t max_age_ms;
    int64_t max_future_ms;
} st_cw_limits_t;

/* Bytes CloudWatch counts for a message: its UTF-8 length after each byte of an invalid sequence became
 * U+FFFD (3 bytes), as our JSON writer sends it. */
size_t st_cw_message_size(st_str_t m);
/* The message as CloudWatch stores it (invalid bytes replaced), appended to out. Returns 0 or -ENOMEM. */
int st_cw_message_normalize(st_str_t m, st_buf_t *out);

/* Plans batches over ev[0..n) in the given order (never reordered): out[i] = the batch of event i
 * (0, 1, ... non-decreasing) or -reason (st_cw_skip_t) for a skipped event. A batch ends at the event
 * limit, the byte limit (26 bytes overhead per event), when the span would reach max_span_ms, or where
 * a timestamp goes back (AWS rejects unsorted batches). now_ms is AWS's clock for the age window.
 * Returns the number of batches. lim NULL: AWS values. */
size_t st_cw_plan_batches(const st_cw_put_event_t *ev, size_t n, int64_t now_ms, const st_cw_limits_t *lim,
                          int32_t *out);
/* Stable sort by timestamp. Returns 0 or -ENOMEM. */
int st_cw_sort_events(st_cw_put_event_t *ev, size_t n);

typedef struct {
    uint64_t requests;          /* PutLogEvents calls answered 200 */
    uint64_t sent, sent_bytes;  /* events (bytes incl. overhead) in those calls */
    uint64_t accepted, accepted_bytes; /* sent minus rejectedLogEventsInfo */
    uint64_t rejected_too_old, rejected_too_new, rejected_expired;
    uint64_t skipped[ST_CW_SKIP_COUNT];         /* left out by the client, per st_cw_skip_t */
} st_cw_put_result_t;

/* One planned batch: the events ev[first..last] whose plan entry is `batch` (skipped events between
 * them are not sent). When it succeeds, every event before `settled` is done (sent or skipped). */
typedef struct {
    int32_t batch;
    size_t first, last, settled;
    size_t nevents;
    uint64_t bytes;             /* including the per-event overhead */
    int64_t min_ts, max_ts;
    const int32_t *plan;        /* the whole plan (entries of ev) */
} st_cw_batch_t;

typedef struct {
    int64_t now_ms;             /* AWS's clock for the 14 d / 2 h window; 0 = the system clock */
    const st_cw_limits_t *limits; /* NULL: AWS values */
    bool create;                /* ResourceNotFoundException: CreateLogGroup + CreateLogStream, resend */
    /* Called before each PutLogEvents (e.g. to record an intent) and after it succeeded (to commit
     * progress); a non-zero return stops and is returned. Both may be NULL. With no batch at all
     * (everything skipped) `after` is called once with settled = n and batch -1. */
    int (*before)(void *arg, const st_cw_batch_t *b);
    int (*after)(void *arg, const st_cw_batch_t *b, const st_cw_put_result_t *so_far);
    void *arg;
} st_cw_put_opts_t;

/* Ships ev[0..n) to group/stream in as few valid PutLogEvents as the plan allows, in order. Rejections
 * AWS reports (rejectedLogEventsInfo) are counted, not retried; DataAlreadyAcceptedException counts as
 * success and InvalidSequenceTokenException is resent once with the expected token (legacy AWS only).
 * res (optional) accumulates (zero it first). Stops at the first failed batch: events before the last
 * `after` call's settled index are done, the rest are not. */
int st_cw_put_log_events(st_cw_client_t *c, const char *group, const char *stream, const st_cw_put_event_t *ev,
                         size_t n, const st_cw_put_opts_t *o, st_cw_put_result_t *res, st_s3_error_t *err);

/* ---- response parsers (pure; exposed for tests and the cwjson fuzz target) ---- */

/* {"__type": "[ns#]Code", "message"|"Message": ...} -> code (prefix stripped), message. Returns 0 or
 * ST_EPARSE (not a JSON object). */
int st_cw_parse_error(const char *body, size_t n, st_s3_error_t *out);

typedef struct {
    int64_t too_new_start;      /* -1 when absent */
    int64_t too_old_end;
    int64_t expired_end;
    char expected_token[128];   /* expectedSequenceToken of an InvalidSequenceTokenException body */
} st_cw_rejected_t;

/* PutLogEvents answer (or an error body carrying expectedSequenceToken). An empty body is success. */
int st_cw_parse_put_result(const char *body, size_t n, st_cw_rejected_t *out);
int st_cw_parse_groups(const char *body, size_t n, st_cw_groups_t *out);
int st_cw_parse_streams(const char *body, size_t n, st_cw_streams_t *out);
/* GetLogEvents or FilterLogEvents answer. */
int st_cw_parse_events(const char *body, size_t n, st_cw_events_t *out);

#endif
