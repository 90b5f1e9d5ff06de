/* codec.h: bounded decompression of request bodies (gzip, raw deflate, zlib).
 *
 * Decompression stops with ST_ELIMIT as soon as the output would exceed max_out, so a decompression
 * bomb costs at most max_out bytes of memory. */
#ifndef ST_COMMON_CODEC_H
#define ST_COMMON_CODEC_H

#include "common/buf.h"

typedef enum {
    ST_INFLATE_GZIP,    /* RFC 1952 (also accepts concatenated members) */
    ST_INFLATE_DEFLATE, /* raw RFC 1951, as Go's compress/flate */
    ST_INFLATE_ZLIB     /* RFC 1950 */
} st_inflate_mode_t;

/* Appends the decompressed bytes to out. Returns 0, ST_ELIMIT, ST_EPARSE (corrupt/truncated input)
 * or -ENOMEM. On error out may hold partial output; callers discard it. */
int st_inflate(st_inflate_mode_t mode, const void *in, size_t n, size_t max_out, st_buf_t *out);
/* Compresses with gzip (level 1..9) into out (appending). Used by tests and tools. */
int st_gzip(const void *in, size_t n, int level, st_buf_t *out);

#endif
