/* buf.c: growable buffers, slices and varints (see buf.h). */
#include "common/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int st_str_cmp(st_str_t a, st_str_t b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c != 0) return c;
    return a.n < b.n ? -1 : a.n > b.n;
}

char *st_str_dup(st_str_t s)
{
    char *p = malloc(s.n + 1);
    if (p == NULL) return NULL;
    if (s.n) memcpy(p, s.p, s.n);
    p[s.n] = '\0';
    return p;
}

void st_buf_free(st_buf_t *b)
{
    if (b == NULL) return;
    free(b->data);
    *b = ST_BUF_INIT;
}

int st_buf_reserve(st_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) return -ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int st_buf_reserve_lean(st_buf_t *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) return -ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap + b->cap / 4 + 128;
    if (cap < need) cap = need;
    char *p = realloc(b->data, cap);
    if (p == NULL) return -ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int st_buf_append(st_buf_t *b, const void *p, size_t n)
{
    if (st_buf_reserve(b, n) < 0) return -ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int st_buf_putc(st_buf_t *b, char c)
{
    if (b->len + 2 > b->cap && st_buf_reserve(b, 1) < 0) return -ENOMEM;
    b->data[b->len++] = c;
    return 0;
}

int st_buf_puts(st_buf_t *b, const char *s) { return st_buf_append(b, s, strlen(s)); }

int st_buf_printf(st_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof tmp) return st_buf_append(b, tmp, (size_t)n);
    if (st_buf_reserve(b, (size_t)n) < 0) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

const char *st_buf_cstr(st_buf_t *b)
{
    if (st_buf_reserve(b, 0) < 0) return NULL;
    b->data[b->len] = '\0';
    return b->data;
}

char *st_buf_steal(st_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (len) *len = b->len;
    *b = ST_BUF_INIT;
    return p;
}

size_t st_uvarint_encode(uint8_t *p, uint64_t v)
{
    size_t i = 0;
    while (v >= 0x80) {
        p[i++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[i++] = (uint8_t)v;
    return i;
}

int st_buf_put_uvarint(st_buf_t *b, uint64_t v)
{
    if (st_buf_reserve(b, 10) < 0) return -ENOMEM;
    b->len += st_uvarint_encode((uint8_t *)b->data + b->len, v);
    return 0;
}

int st_buf_put_u32le(st_buf_t *b, uint32_t v)
{
    uint8_t t[4];
    st_put_u32le(t, v);
    return st_buf_append(b, t, 4);
}

int st_buf_put_u64le(st_buf_t *b, uint64_t v)
{
    uint8_t t[8];
    st_put_u64le(t, v);
    return st_buf_append(b, t, 8);
}

int st_buf_put_lstr(st_buf_t *b, const void *p, size_t n)
{
    if (st_buf_reserve(b, n + 10) < 0) return -ENOMEM;
    st_buf_put_uvarint(b, n);
    return st_buf_append(b, p, n);
}

uint64_t st_read_uvarint(st_reader_t *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) break;
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) return v;
    }
    r->err = true;
    r->p = r->end;
    return 0;
}

uint8_t st_read_u8(st_reader_t *r)
{
    if (r->p >= r->end) {
        r->err = true;
        return 0;
    }
    return *r->p++;
}

uint32_t st_read_u32le(st_reader_t *r)
{
    if (st_reader_left(r) < 4) {
        r->err = true;
        r->p = r->end;
        return 0;
    }
    uint32_t v = st_get_u32le(r->p);
    r->p += 4;
    return v;
}

uint64_t st_read_u64le(st_reader_t *r)
{
    if (st_reader_left(r) < 8) {
        r->err = true;
        r->p = r->end;
        return 0;
    }
    uint64_t v = st_get_u64le(r->p);
    r->p += 8;
    return v;
}

st_str_t st_read_bytes(st_reader_t *r, size_t n)
{
    if (st_reader_left(r) < n) {
        r->err = true;
        r->p = r->end;
        return st_str(NULL, 0);
    }
    st_str_t s = st_str((const char *)r->p, n);
    r->p += n;
    return s;
}

st_str_t st_read_lstr(st_reader_t *r)
{
    uint64_t n = st_read_uvarint(r);
    if (r->err) return st_str(NULL, 0);
    return st_read_bytes(r, (size_t)n);
}
