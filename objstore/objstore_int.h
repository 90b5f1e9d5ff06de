/* objstore_int.h: internals shared by the objstore sources (not part of the public API): the small XML
 * reader used for S3/STS responses, the bounded HTTP helper used by the credential sources, and
 * helpers for hex/base64/digests. */
#ifndef ST_OBJSTORE_INT_H
#define ST_OBJSTORE_INT_H

#include "objstore/objstore.h"

#include <stdint.h>

/* ---- XML: a tree over one borrowed document, built without recursion.
 * Supports elements, attributes (skipped), character data with the five predefined entities and
 * numeric character references, CDATA, comments and processing instructions. Rejects DOCTYPE (no
 * entity expansion ever), mismatched tags, text outside the root, depth > ST_XML_MAX_DEPTH.
 * Only leaf elements keep text (mixed content is not used by S3). Names are matched without their
 * namespace prefix. Node 0 is a virtual document node whose children are the root element. */
#define ST_XML_MAX_DEPTH 64

typedef struct {
    const char *name; /* local name, points into the input */
    uint32_t name_n;
    uint32_t text_off; /* into doc->text */
    uint32_t text_n;
    int32_t parent, first_child, last_child, next;
} st_xml_node_t;

typedef struct {
    st_xml_node_t *nodes;
    size_t n, cap;
    st_buf_t text;
} st_xml_doc_t;

/* Returns 0, ST_EPARSE, -ENOMEM. d must be zeroed (or freed) before; free with st_xml_free either way. */
int st_xml_parse(st_xml_doc_t *d, const char *p, size_t n);
void st_xml_free(st_xml_doc_t *d);
/* First child of node named name (local name), or -1. node -1 gives -1. */
int st_xml_child(const st_xml_doc_t *d, int node, const char *name);
/* Next sibling after node with the same local name as name, or -1. */
int st_xml_next(const st_xml_doc_t *d, int node, const char *name);
/* Follows "A/B/C" from node; -1 if any step is missing. */
int st_xml_path(const st_xml_doc_t *d, int node, const char *path);
/* Text of a leaf (empty view for -1 or non-leaf). Valid until st_xml_free. */
st_str_t st_xml_text(const st_xml_doc_t *d, int node);
/* Copies the text of path under node into out[cap] (truncated, NUL-terminated); "" if missing.
 * Returns true if the element exists. */
bool st_xml_copy(const st_xml_doc_t *d, int node, const char *path, char *out, size_t cap);
/* Appends s escaped for XML character data / attribute values. */
int st_xml_escape(st_buf_t *b, const char *s, size_t n);

/* ---- encodings and digests */
void st_hex(const uint8_t *p, size_t n, char *out); /* lowercase, NUL-terminated, out: 2n+1 */
/* base64 of n bytes into out (needs 4*ceil(n/3)+1). */
void st_base64(const uint8_t *p, size_t n, char *out);
/* Decodes base64 (padding required), returns bytes written or -1. */
int st_base64_decode(const char *s, size_t n, uint8_t *out, size_t cap);
/* big-endian CRC32 as S3's base64 x-amz-checksum-crc32 value; out[9]. */
void st_s3_crc32_b64(uint32_t crc, char out[9]);
/* percent-decodes (optionally '+' as space) into b. Returns 0, -ENOMEM; bad escapes are kept literally. */
int st_pct_decode(st_buf_t *b, const char *p, size_t n, bool plus_space);
/* Copies at most cap-1 bytes of s and NUL-terminates. */
void st_copy_str(char *dst, size_t cap, st_str_t s);
bool st_str_ieq(st_str_t a, const char *b);

/* ---- a small blocking HTTP helper (credential sources: STS, IMDS, container endpoint). */
typedef struct {
    long status;
    st_buf_t body;
} st_http_simple_resp_t;
/* method GET/PUT/POST; headers "Name: value" strings; body may be NULL. Returns 0 when a response
 * arrived (any status), ST_ETIMEOUT, ST_S3_ENETWORK, -ENOMEM. Body is capped at 1 MiB (ST_ELIMIT). */
int st_http_simple(const char *method, const char *url, const char *const *headers, size_t nheaders,
                   const char *body, size_t body_n, long timeout_ms, st_http_simple_resp_t *resp);
/* curl_global_init exactly once. */
void st_objstore_global_init(void);

/* ---- the S3 request executor (client.c), used by the operations in s3.c */
typedef struct {
    const char *op;      /* metrics and log label, e.g. "PutObject" */
    const char *method;  /* GET HEAD PUT POST DELETE */
    const char *bucket;  /* NULL: service level */
    const char *key;     /* NULL: bucket level */
    st_buf_t query;      /* encoded "a=b&c=" pairs in any order (canonicalised when sent); owned */
    st_kv_t hdr[40];     /* extra headers to send and sign */
    int nhdr;
    /* body: memory (body != NULL), file (body_fd >= 0), or none */
    const uint8_t *body;
    int body_fd;
    off_t body_off;
    uint64_t body_len;
    bool has_body;
    char payload_hash[72]; /* hex SHA-256 or UNSIGNED-PAYLOAD; "" = hash of the memory body/empty */
    /* success body sink: buffer (sink_buf) or file (sink_fd >= 0); else into resp->body */
    st_buf_t *sink_buf;
    int sink_fd;
    off_t sink_off;
    bool error_in_200; /* a 2xx body may be <Error> (CopyObject, CompleteMultipartUpload) */
    /* Other AWS services on the same executor (CloudWatch Logs, cwlogs.c): the SigV4 service name
     * (NULL: "s3", signed with S3's path rules) and the parser of error bodies (NULL: S3's XML). */
    const char *service;
    int (*parse_error)(const char *body, size_t n, st_s3_error_t *out);
} s3_req_t;

typedef struct {
    long status;
    st_buf_t body;  /* error body, or the 2xx body when no sink was given */
    st_buf_t hdrs;  /* raw header lines of the final response */
    uint64_t received;
    uint32_t crc32; /* CRC32 of the 2xx body bytes delivered to the sink */
} s3_resp_t;

void s3_req_init(s3_req_t *r, const char *op, const char *method, const char *bucket, const char *key);
void s3_req_free(s3_req_t *r);
/* Adds name=value to the query, encoded (value NULL: "name="). */
int s3_req_query(s3_req_t *r, const char *name, const char *value);
void s3_req_header(s3_req_t *r, const char *name, const char *value);
/* Runs the request with retries. 0 on a 2xx, else a mapped error with err filled. resp: reset first,
 * free with s3_resp_free. */
int s3_exec(st_s3_client_t *c, s3_req_t *r, s3_resp_t *resp, st_s3_error_t *err);
void s3_resp_free(s3_resp_t *r);
bool s3_resp_header(const s3_resp_t *r, const char *name, st_str_t *out);
/* Hashes a body (memory or fd range) in one pass: sha256 hex, crc32, optional md5 (base64 into md5_b64[25],
 * raw into md5_raw[16] when not NULL). */
int s3_digest(const uint8_t *mem, int fd, off_t off, uint64_t len, char sha_hex[65], uint32_t *crc,
              char *md5_b64, uint8_t *md5_raw);
bool s3_client_unsigned_payload(const st_s3_client_t *c);
size_t s3_client_part_size(const st_s3_client_t *c);
size_t s3_client_threshold(const st_s3_client_t *c);
const char *s3_client_region(const st_s3_client_t *c);
int s3_client_url(st_s3_client_t *c, const char *bucket, const char *key, st_buf_t *url, st_buf_t *host,
                  st_buf_t *path);
int s3_client_creds(st_s3_client_t *c, st_aws_creds_t *out);
time_t s3_client_now(st_s3_client_t *c);

#endif
