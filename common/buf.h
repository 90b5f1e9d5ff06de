/* buf.h: growable byte buffers, borrowed string slices and varint coding.
 *
 * st_buf_t owns its bytes; every append returns 0 or -ENOMEM and leaves the buffer unchanged on
 * failure. st_str_t is a borrowed view (pointer + length) whose lifetime is its source's. Varints are
 * LEB128 (protobuf style); zig-zag maps signed values. Decoders never read past the given end. */
#ifndef ST_COMMON_BUF_H
#define ST_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data; /* owned; NUL-terminated when len < cap (st_buf_cstr guarantees it) */
    size_t len;
    size_t cap;
} st_buf_t;

typedef struct {
    const char *p; /* borrowed */
    size_t n;
} st_str_t;

#define ST_STR(lit) ((st_str_t){(lit), sizeof(lit) - 1})
#define ST_BUF_INIT ((st_buf_t){NULL, 0, 0})

static inline st_str_t st_str(const char *p, size_t n) { return (st_str_t){p, n}; }
static inline st_str_t st_cstr(const char *s) { return (st_str_t){s, s ? strlen(s) : 0}; }
static inline bool st_str_eq(st_str_t a, st_str_t b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}
static inline bool st_str_eqc(st_str_t a, const char *b) { return st_str_eq(a, st_cstr(b)); }
int st_str_cmp(st_str_t a, st_str_t b);
/* Returns a malloc'd NUL-terminated copy, or NULL on OOM. */
char *st_str_dup(st_str_t s);

void st_buf_free(st_buf_t *b);
/* Ensures room for `extra` more bytes (plus a NUL). */
int st_buf_reserve(st_buf_t *b, size_t extra);
/* The same growing by a quarter instead of doubling: for many long-lived small buffers (heads of
 * many streams), where slack costs more than the extra reallocations. */
int st_buf_reserve_lean(st_buf_t *b, size_t extra);
int st_buf_append(st_buf_t *b, const void *p, size_t n);
int st_buf_putc(st_buf_t *b, char c);
int st_buf_puts(st_buf_t *b, const char *s);
int st_buf_printf(st_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the contents as a C string (adds a NUL after len without counting it). */
const char *st_buf_cstr(st_buf_t *b);
static inline void st_buf_reset(st_buf_t *b) { b->len = 0; }
/* Transfers ownership of the bytes to the caller; the buffer becomes empty. */
char *st_buf_steal(st_buf_t *b, size_t *len);

int st_buf_put_uvarint(st_buf_t *b, uint64_t v);
int st_buf_put_u32le(st_buf_t *b, uint32_t v);
int st_buf_put_u64le(st_buf_t *b, uint64_t v);
/* uvarint length then the bytes */
int st_buf_put_lstr(st_buf_t *b, const void *p, size_t n);

static inline uint64_t st_zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t st_unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

/* Writes v at p (needs 10 bytes), returns bytes written. */
size_t st_uvarint_encode(uint8_t *p, uint64_t v);

/* A bounded reader over bytes. Any read past the end sets err (sticky) and yields zeros. */
typedef struct {
    const uint8_t *p;
    const uint8_t *end;
    bool err;
} st_reader_t;

/* p may be NULL when n is 0 (an empty st_buf_t). */
static inline st_reader_t st_reader(const void *p, size_t n)
{
    const uint8_t *b = p ? (const uint8_t *)p : (const uint8_t *)"";
    return (st_reader_t){b, b + n, false};
}
uint64_t st_read_uvarint(st_reader_t *r);
uint32_t st_read_u32le(st_reader_t *r);
uint64_t st_read_u64le(st_reader_t *r);
uint8_t st_read_u8(st_reader_t *r);
/* Returns a view of the next n bytes, or an empty view with err set. */
st_str_t st_read_bytes(st_reader_t *r, size_t n);
st_str_t st_read_lstr(st_reader_t *r);
static inline size_t st_reader_left(const st_reader_t *r) { return (size_t)(r->end - r->p); }

static inline void st_put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t st_get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void st_put_u64le(uint8_t *p, uint64_t v)
{
    st_put_u32le(p, (uint32_t)v);
    st_put_u32le(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t st_get_u64le(const uint8_t *p)
{
    return (uint64_t)st_get_u32le(p) | (uint64_t)st_get_u32le(p + 4) << 32;
}
static inline void st_put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t st_get_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline void st_put_u64be(uint8_t *p, uint64_t v)
{
    st_put_u32be(p, (uint32_t)(v >> 32));
    st_put_u32be(p + 4, (uint32_t)v);
}
static inline uint64_t st_get_u64be(const uint8_t *p)
{
    return (uint64_t)st_get_u32be(p) << 32 | st_get_u32be(p + 4);
}

#endif
