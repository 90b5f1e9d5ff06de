/* search.h: fast substring search for line filters.
 *
 * st_memmem finds a needle with SSE2 by testing, 16 positions at a time, the two needle bytes that
 * are rarest in log text, and verifying candidates with memcmp. docs/performance.md has the benchmark
 * against glibc memmem that justifies it. st_finder_t precomputes the byte choice for a needle used
 * many times (the pointer is borrowed). */
#ifndef ST_COMMON_SEARCH_H
#define ST_COMMON_SEARCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *needle; /* borrowed */
    size_t n;
    size_t i1, i2;      /* offsets of the two rarest bytes (i1 < i2 when n >= 2) */
} st_finder_t;

void st_finder_init(st_finder_t *f, const char *needle, size_t n);
/* First occurrence of the needle in h[0..hn), or NULL. An empty needle matches at h. */
const char *st_finder_find(const st_finder_t *f, const char *h, size_t hn);
/* One-shot form of the above. */
const char *st_memmem(const char *h, size_t hn, const char *needle, size_t n);

#endif
