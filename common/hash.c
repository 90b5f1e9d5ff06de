/* hash.c: thin wrappers over libxxhash and zlib (see hash.h). */
#include "common/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>
#include <zlib.h>

uint64_t st_hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

uint32_t st_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = (uint32_t)crc32(crc, b, chunk);
        b += chunk;
        n -= chunk;
    }
    return crc;
}
