/* push_proto.c: decoding Loki's protobuf push bodies (a snappy block holding a logproto PushRequest,
 * as Promtail, Alloy and the OTel lokiexporter send) into a push, through the shared validation of
 * validate.c. The schema is ingester/proto/push.proto, compiled by protoc-c at build time. */
#include "ingester/ingester.h"

#include "common/err.h"
#include "common/timeutil.h"
#include "ingester/proto/push.pb-c.h"

#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>

/* Replaces the error text with one fatal message (the whole body is rejected). */
static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fatal(st_push_errors_t *e, int rc, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    st_buf_reset(&e->text);
    st_buf_puts(&e->text, msg);
    return rc;
}

/* google.protobuf.Timestamp's valid range: [0001-01-01, 10000-01-01). */
#define MIN_VALID_SECONDS INT64_C(-62135596800)
#define MAX_VALID_SECONDS INT64_C(253402300800)

/* Checks a timestamp like Loki (message text included) and converts it to int64 nanoseconds,
 * clamped to what int64 holds. An absent timestamp is Go's zero time, 0001-01-01T00:00:00Z. */
static int entry_ts(const Strata__Push__Timestamp *t, st_push_errors_t *e, int64_t *out)
{
    int64_t sec = t ? t->seconds : MIN_VALID_SECONDS;
    int32_t nanos = t ? t->nanos : 0;
    const char *what = NULL;
    if (sec < MIN_VALID_SECONDS)
        what = " before 0001-01-01";
    else if (sec >= MAX_VALID_SECONDS)
        what = " after 10000-01-01";
    else if (nanos < 0 || nanos >= 1000000000)
        what = ": nanos not in range [0, 1e9)";
    if (what)
        return fatal(e, ST_EPARSE, "timestamp: &types.Timestamp{Seconds: %lld,\nNanos: %d,\n}%s",
                     (long long)sec, (int)nanos, what);
    /* int64 nanoseconds span 1677-09-21T00:12:43.145224192Z .. 2262-04-11T23:47:16.854775807Z; the low
     * end is clamped to a whole second so every timestamp can be formatted in messages */
    if (sec > INT64_MAX / ST_NS_PER_SEC - 1)
        *out = INT64_MAX;
    else if (sec <= INT64_MIN / ST_NS_PER_SEC)
        *out = INT64_MIN / ST_NS_PER_SEC * ST_NS_PER_SEC;
    else
        *out = sec * ST_NS_PER_SEC + nanos;
    return 0;
}

static st_str_t bin(ProtobufCBinaryData b)
{
    return st_str(b.data ? (const char *)b.data : "", b.len);
}

/* Encodes an entry's structured metadata (empty values dropped, like empty labels). */
static int entry_md(const Strata__Push__Entry *en, st_buf_t *md, st_str_t **names, st_str_t **values,
                    size_t *cap)
{
    st_buf_reset(md);
    if (en->n_structured_metadata == 0) return 0;
    if (en->n_structured_metadata > *cap) {
        size_t n = en->n_structured_metadata;
        st_str_t *a = realloc(*names, n * sizeof *a);
        if (a == NULL) return -ENOMEM;
        *names = a;
        st_str_t *b = realloc(*values, n * sizeof *b);
        if (b == NULL) return -ENOMEM;
        *values = b;
        *cap = n;
    }
    size_t k = 0;
    for (size_t i = 0; i < en->n_structured_metadata; i++) {
        const Strata__Push__LabelPair *lp = en->structured_metadata[i];
        if (lp->value.len == 0) continue;
        (*names)[k] = bin(lp->name);
        (*values)[k] = bin(lp->value);
        k++;
    }
    if (k == 0) return 0;
    return st_md_encode(md, *names, *values, k);
}

/* A bump allocator for protobuf-c's unpack: a request's thousands of small messages and strings come
 * from a few large blocks, freed together (malloc/free were ~13% of a protobuf push). */
typedef struct pb_blk {
    struct pb_blk *next;
    size_t used, cap;
    max_align_t data[];
} pb_blk_t;

typedef struct {
    pb_blk_t *head;
    size_t next_cap;
} pb_arena_t;

static void *pb_arena_alloc(void *arg, size_t n)
{
    pb_arena_t *a = arg;
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    pb_blk_t *b = a->head;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = a->next_cap > n ? a->next_cap : n;
        if ((b = malloc(sizeof *b + cap)) == NULL) return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
        if (a->next_cap < ((size_t)64 << 20)) a->next_cap *= 2;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    return p;
}

static void pb_arena_free(void *arg, void *p)
{
    (void)arg;
    (void)p; /* everything goes at once in pb_arena_release */
}

static void pb_arena_release(pb_arena_t *a)
{
    while (a->head) {
        pb_blk_t *b = a->head;
        a->head = b->next;
        free(b);
    }
}

/* Decodes the PushRequest bytes. */
static int decode_request(const uint8_t *buf, size_t n, const st_push_limits_t *lim, st_push_t *p,
                          st_push_errors_t *e)
{
    /* the unpacked form is a few times the wire size (structs, pointer arrays, string copies) */
    pb_arena_t arena = {NULL, 2 * n + 4096};
    ProtobufCAllocator alloc = {.alloc = pb_arena_alloc, .free = pb_arena_free, .allocator_data = &arena};
    Strata__Push__PushRequest *req = strata__push__push_request__unpack(&alloc, n, buf);
    if (req == NULL) {
        pb_arena_release(&arena);
        return fatal(e, ST_EPARSE, "proto: invalid PushRequest (malformed protobuf)");
    }
    int rc = 0;
    st_labels_t *labels = NULL;
    size_t *idx = NULL;
    st_buf_t md = ST_BUF_INIT;
    st_str_t *names = NULL, *values = NULL;
    size_t cap = 0;
    if (req->n_streams == 0) {
        rc = fatal(e, ST_ENOTFOUND, "error at least one valid stream is required for ingestion");
        goto out;
    }
    labels = calloc(req->n_streams, sizeof *labels);
    idx = calloc(req->n_streams, sizeof *idx);
    if (labels == NULL || idx == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    /* Every label string and timestamp is checked before anything is added, so a request that is
     * rejected as a whole leaves nothing behind (Loki parses all labels first, too). */
    for (size_t i = 0; i < req->n_streams; i++) {
        const Strata__Push__Stream *s = req->streams[i];
        char err[256];
        if (s->labels.len > (size_t)1 << 24) {
            rc = fatal(e, ST_ELIMIT,
                       "request body too large: stream labels size %zu bytes exceeds limit of %d bytes",
                       s->labels.len, 1 << 24);
            goto out;
        }
        int prc = st_labels_parse(bin(s->labels), &labels[i], err);
        if (prc == -ENOMEM) {
            rc = prc;
            goto out;
        }
        if (prc < 0) {
            rc = fatal(e, ST_EPARSE, "couldn't parse labels: %s", err);
            goto out;
        }
        for (size_t j = 0; j < s->n_entries; j++) {
            int64_t ts;
            if ((rc = entry_ts(s->entries[j]->timestamp, e, &ts)) < 0) goto out;
        }
    }
    for (size_t i = 0; i < req->n_streams; i++) {
        const Strata__Push__Stream *s = req->streams[i];
        if (s->n_entries == 0) continue; /* Loki skips streams without entries */
        if ((rc = st_push_add_stream(p, lim, &labels[i], e, &idx[i])) < 0) goto out;
        if (idx[i] == SIZE_MAX) continue;
        for (size_t j = 0; j < s->n_entries; j++) {
            const Strata__Push__Entry *en = s->entries[j];
            int64_t ts = 0;
            entry_ts(en->timestamp, e, &ts);
            if ((rc = entry_md(en, &md, &names, &values, &cap)) < 0) goto out;
            rc = st_push_add_entry(p, lim, idx[i], ts, bin(en->line), st_str(md.data ? md.data : "", md.len),
                                   e);
            if (rc < 0) goto out;
        }
    }
    st_push_errors_finish(e);
out:
    if (labels)
        for (size_t i = 0; i < req->n_streams; i++) st_labels_free(&labels[i]);
    free(labels);
    free(idx);
    free(names);
    free(values);
    st_buf_free(&md);
    pb_arena_release(&arena); /* req and everything in it */
    return rc;
}

int st_push_decode_proto(st_str_t body, size_t max_decompressed, const st_push_limits_t *lim, st_push_t *p,
                         st_push_errors_t *errs)
{
    size_t n = 0;
    if (snappy_uncompressed_length(body.p, body.n, &n) != SNAPPY_OK)
        return fatal(errs, ST_EPARSE, "snappy: corrupt input");
    if (n > max_decompressed)
        return fatal(errs, ST_ELIMIT, "request body too large: %zu bytes, limit: %zu bytes", n,
                     max_decompressed);
    /* No snappy element expands more than 64 bytes from 3 input bytes, so a header promising more than
     * 22x the input is corrupt: refuse it before allocating. */
    if (n / 22 > body.n) return fatal(errs, ST_EPARSE, "snappy: corrupt input");
    char *plain = malloc(n ? n : 1);
    if (plain == NULL) return -ENOMEM;
    size_t got = n;
    int rc;
    if (snappy_uncompress(body.p, body.n, plain, &got) != SNAPPY_OK || got != n)
        rc = fatal(errs, ST_EPARSE, "snappy: corrupt input");
    else
        rc = decode_request((const uint8_t *)plain, n, lim, p, errs);
    free(plain);
    return rc;
}
