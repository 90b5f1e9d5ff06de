/* hash.h: the project's hash and checksum functions.
 *
 * st_hash64 (xxHash3, 64-bit) identifies streams and keys hash tables; st_crc32 is the IEEE CRC-32 of
 * zlib, the same CRC that S3 accepts as x-amz-checksum-crc32, used for on-disk checksums. */
#ifndef ST_COMMON_HASH_H
#define ST_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t st_hash64(const void *p, size_t n);
uint32_t st_crc32(uint32_t crc, const void *p, size_t n);

#endif
