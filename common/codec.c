/* codec.c: zlib-based bounded decompression (see codec.h). */
#include "common/codec.h"

#include "common/err.h"

#include <zlib.h>

int st_inflate(st_inflate_mode_t mode, const void *in, size_t n, size_t max_out, st_buf_t *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    int wbits = mode == ST_INFLATE_GZIP ? 16 + MAX_WBITS : mode == ST_INFLATE_DEFLATE ? -MAX_WBITS : MAX_WBITS;
    if (inflateInit2(&zs, wbits) != Z_OK) return -ENOMEM;
    const unsigned char *src = in;
    size_t left = n;
    size_t produced = 0;
    int rc = 0;
    zs.next_in = (unsigned char *)(uintptr_t)src;
    zs.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
    left -= zs.avail_in;
    for (;;) {
        size_t want = n < 4096 ? 16384 : n * 4;
        if (want > 1 << 20) want = 1 << 20;
        if (produced + want > max_out + 1) want = max_out + 1 - produced;
        if (want == 0) {
            rc = ST_ELIMIT;
            break;
        }
        if (st_buf_reserve(out, want) < 0) {
            rc = -ENOMEM;
            break;
        }
        zs.next_out = (unsigned char *)out->data + out->len;
        zs.avail_out = (uInt)want;
        int z = inflate(&zs, Z_NO_FLUSH);
        size_t got = want - zs.avail_out;
        out->len += got;
        produced += got;
        if (produced > max_out) {
            rc = ST_ELIMIT;
            break;
        }
        if (zs.avail_in == 0 && left > 0) {
            zs.avail_in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
            left -= zs.avail_in;
        }
        if (z == Z_STREAM_END) {
            /* gzip allows several members back to back (Go's gzip reader reads them all). */
            if (mode == ST_INFLATE_GZIP && (zs.avail_in > 0 || left > 0)) {
                if (inflateReset(&zs) != Z_OK) {
                    rc = ST_EPARSE;
                    break;
                }
                continue;
            }
            if (zs.avail_in > 0 || left > 0) rc = ST_EPARSE; /* trailing garbage */
            break;
        }
        if (z == Z_BUF_ERROR && zs.avail_in == 0 && left == 0) {
            rc = ST_EPARSE; /* truncated */
            break;
        }
        if (z != Z_OK && z != Z_BUF_ERROR) {
            rc = z == Z_MEM_ERROR ? -ENOMEM : ST_EPARSE;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

int st_gzip(const void *in, size_t n, int level, st_buf_t *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return -ENOMEM;
    size_t bound = deflateBound(&zs, (uLong)n);
    int rc = st_buf_reserve(out, bound);
    if (rc == 0) {
        zs.next_in = (unsigned char *)(uintptr_t)in;
        zs.avail_in = (uInt)n;
        zs.next_out = (unsigned char *)out->data + out->len;
        zs.avail_out = (uInt)bound;
        if (deflate(&zs, Z_FINISH) != Z_STREAM_END) rc = ST_EPARSE;
        else out->len += bound - zs.avail_out;
    }
    deflateEnd(&zs);
    return rc;
}
