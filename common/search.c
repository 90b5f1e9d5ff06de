/* search.c: SSE2 "rare byte pair" substring search (see search.h). */
#include "common/search.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Rough frequency rank of bytes in log text (higher = more common). Derived from the character
 * mix of typical logs: spaces, digits, lower-case letters and separators dominate. */
static unsigned char rank_of(unsigned char c)
{
    static const char common[] = " e0t1a2o3i4n5s6r7l8:9.h-d/c_=u,m\"p[]()TfSgEIAgwCyNRbOLDvPM>k<'FxBUGHz{}j;qKVYWJQZX";
    const char *p = memchr(common, c, sizeof common - 1);
    if (p == NULL) return c >= 0x80 ? 40 : 10; /* non-ASCII bytes are middling in UTF-8 text */
    return (unsigned char)(255 - (p - common));
}

void st_finder_init(st_finder_t *f, const char *needle, size_t n)
{
    f->needle = needle;
    f->n = n;
    f->i1 = f->i2 = 0;
    if (n < 2) return;
    size_t best = 0, second = 1;
    if (rank_of((unsigned char)needle[1]) < rank_of((unsigned char)needle[0])) {
        best = 1;
        second = 0;
    }
    for (size_t i = 2; i < n; i++) {
        unsigned char r = rank_of((unsigned char)needle[i]);
        if (r < rank_of((unsigned char)needle[best])) {
            second = best;
            best = i;
        } else if (r < rank_of((unsigned char)needle[second])) {
            second = i;
        }
    }
    f->i1 = best < second ? best : second;
    f->i2 = best < second ? second : best;
}

static const char *find_scalar(const st_finder_t *f, const char *h, size_t hn, size_t from)
{
    const char *n = f->needle;
    size_t nn = f->n;
    unsigned char c1 = (unsigned char)n[f->i1], c2 = (unsigned char)n[f->i2];
    for (size_t i = from; i + nn <= hn; i++) {
        if ((unsigned char)h[i + f->i1] == c1 && (unsigned char)h[i + f->i2] == c2 && memcmp(h + i, n, nn) == 0)
            return h + i;
    }
    return NULL;
}

const char *st_finder_find(const st_finder_t *f, const char *h, size_t hn)
{
    size_t nn = f->n;
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    if (nn == 1) return memchr(h, f->needle[0], hn);
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i v1 = _mm_set1_epi8(f->needle[f->i1]);
    const __m128i v2 = _mm_set1_epi8(f->needle[f->i2]);
    /* positions i..i+15 are candidates; their needle windows must fit: i + 15 + nn <= hn */
    while (i + 15 + nn <= hn) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(h + i + f->i1));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + i + f->i2));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, v1), _mm_cmpeq_epi8(b, v2)));
        while (mask) {
            unsigned bit = (unsigned)__builtin_ctz(mask);
            if (memcmp(h + i + bit, f->needle, nn) == 0) return h + i + bit;
            mask &= mask - 1;
        }
        i += 16;
    }
#endif
    return find_scalar(f, h, hn, i);
}

const char *st_memmem(const char *h, size_t hn, const char *needle, size_t n)
{
    st_finder_t f;
    st_finder_init(&f, needle, n);
    return st_finder_find(&f, h, hn);
}
