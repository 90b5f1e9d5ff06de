/* chunk.c: chunk encoding, writing and reading (format in docs/formats.md, API in store.h).
 * Compression contexts are per thread and reused; no function here keeps a file open between calls. */
#include "store/store.h"

#include "common/err.h"
#include "common/hash.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define CHUNK_MAGIC    "STCK"
#define CODEC_ZSTD     1
#define MAX_BLOCK_ULEN (64u << 20) /* sanity bound when decoding untrusted metadata */
#define MAX_FOOTER_LEN (64u << 20)
#define MAX_HEADER_LEN (1u << 20)

/* ---- block trigram filters ------------------------------------------------------------------------
 * A block may start with a filter of the 3-byte substrings of its lines ("STF", log2 of the bit count,
 * the bits), before its zstd frame (which starts 28 b5 2f fd, so the two cannot be confused; blocks
 * written before filters existed have none). One hash per trigram, trigrams holding a digit left
 * out. The filter is built at 2^11 bits and folded (bit i of the half-size filter = bits 2i | 2i+1)
 * while the result stays at most 70% set: at most 260 bytes, ~1% of a 256 KiB block's compressed
 * size (the chunk ratio target leaves no room for more). A typical block of logs has 200-6,000
 * distinct digit-free trigrams; a literal of k of them passes a block without it with probability
 * about fill^k (0.7^20 < 0.1%; 0.95^20 = 36% for the most varied blocks), so a search for a rare
 * string decompresses little. */
#define BF_MAGIC    "STF"
#define BF_MAX_LOG2 11u
#define BF_MIN_LOG2 8u

/* Trigram t0 t1 t2 as the 24-bit value t0<<16 | t1<<8 | t2 (what a rolling window of the bytes
 * holds) -> its bit in a filter of 2^log2 bits: the top log2 bits of a multiplicative hash. So the bit
 * in a filter half the size is bit/2, and folding ORs adjacent pairs of bits. */
static inline uint32_t bf_pos(uint32_t tri, unsigned log2)
{
    return (tri * 0x9e3779b1u) >> (32 - log2);
}

static inline bool is_digit(uint8_t c)
{
    return (uint8_t)(c - '0') < 10;
}

/* The 4 bits of b's adjacent pairs (bit i = bit 2i | bit 2i+1). */
static inline unsigned fold_pairs(unsigned b)
{
    b = (b | b >> 1) & 0x55;
    return (b & 1) | (b >> 1 & 2) | (b >> 2 & 4) | (b >> 3 & 8);
}

static size_t popcount_bytes(const uint8_t *b, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        c += (size_t)__builtin_popcountll(w);
    }
    return c;
}

/* Appends the filter of the lines of e[0..n) to out. Trigrams with a digit are left out: numbers,
 * times and ids make up half of a block's distinct trigrams but rarely all of a search string's. */
static int bf_build(const st_entry_t *e, size_t n, st_buf_t *out)
{
    uint8_t bits[1u << (BF_MAX_LOG2 - 3)];
    memset(bits, 0, sizeof bits);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)e[i].line.p;
        uint32_t tri = 0;
        unsigned skip = 1; /* bit k: byte k back was a digit; the 1 marks the first two bytes */
        for (size_t j = 0; j < e[i].line.n; j++) {
            tri = (tri << 8 | p[j]) & 0xffffff;
            skip = (skip << 1 | is_digit(p[j])) & 7;
            /* branch-free: whether a trigram has a digit is unpredictable (a branch cost 2x) */
            uint32_t b = bf_pos(tri, BF_MAX_LOG2);
            bits[b >> 3] |= (uint8_t)((unsigned)(skip == 0) << (b & 7));
        }
    }
    unsigned log2 = BF_MAX_LOG2;
    size_t bytes = sizeof bits;
    uint8_t folded[sizeof bits / 2];
    while (log2 > BF_MIN_LOG2) {
        size_t half = bytes / 2;
        for (size_t i = 0; i < half; i++)
            folded[i] = (uint8_t)(fold_pairs(bits[2 * i]) | fold_pairs(bits[2 * i + 1]) << 4);
        if (popcount_bytes(folded, half) * 10 > half * 8 * 7) break; /* folding would pass 70% */
        memcpy(bits, folded, half);
        bytes = half;
        log2--;
    }
    uint8_t hdr[4] = {BF_MAGIC[0], BF_MAGIC[1], BF_MAGIC[2], (uint8_t)log2};
    ST_TRY(st_buf_append(out, hdr, 4));
    return st_buf_append(out, bits, bytes);
}

/* Length of the filter at the start of a block's stored bytes (0: none), or ST_ECORRUPT. */
static int64_t bf_len(const uint8_t *p, size_t n)
{
    if (n < 4 || memcmp(p, BF_MAGIC, 3) != 0) return 0;
    unsigned log2 = p[3];
    if (log2 < BF_MIN_LOG2 || log2 > BF_MAX_LOG2) return ST_ECORRUPT;
    size_t len = 4 + ((size_t)1 << (log2 - 3));
    return len <= n ? (int64_t)len : ST_ECORRUPT;
}

bool st_block_may_contain(const void *stored, size_t n, const char *needle, size_t nlen)
{
    const uint8_t *p = stored;
    int64_t len = bf_len(p, n);
    if (len <= 0 || nlen < 3) return true; /* no (valid) filter: st_block_load decides */
    unsigned log2 = p[3];
    const uint8_t *bits = p + 4;
    const uint8_t *q = (const uint8_t *)needle;
    for (size_t j = 0; j + 3 <= nlen; j++) {
        if (is_digit(q[j]) || is_digit(q[j + 1]) || is_digit(q[j + 2])) continue;
        uint32_t b = bf_pos((uint32_t)q[j] << 16 | (uint32_t)q[j + 1] << 8 | q[j + 2], log2);
        if (!(bits[b >> 3] & (1u << (b & 7)))) return false;
    }
    return true;
}

int st_block_filter_info(const void *stored, size_t n, uint32_t *bits, double *fill)
{
    int64_t len = bf_len(stored, n);
    if (len <= 0) return (int)len;
    const uint8_t *p = stored;
    *bits = 1u << p[3];
    size_t bytes = (size_t)1 << (p[3] - 3);
    *fill = (double)popcount_bytes(p + 4, bytes) / (double)*bits;
    return 1;
}

/* ---- per-thread zstd contexts --------------------------------------------------------------------- */

static pthread_key_t cctx_key, dctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *p)
{
    ZSTD_freeCCtx(p);
}
static void free_dctx(void *p)
{
    ZSTD_freeDCtx(p);
}
static void make_keys(void)
{
    pthread_key_create(&cctx_key, free_cctx);
    pthread_key_create(&dctx_key, free_dctx);
}

ZSTD_CCtx *st_zstd_cctx(void)
{
    pthread_once(&ctx_once, make_keys);
    ZSTD_CCtx *c = pthread_getspecific(cctx_key);
    if (c == NULL && (c = ZSTD_createCCtx()) != NULL) pthread_setspecific(cctx_key, c);
    return c;
}

ZSTD_DCtx *st_zstd_dctx(void)
{
    pthread_once(&ctx_once, make_keys);
    ZSTD_DCtx *d = pthread_getspecific(dctx_key);
    if (d == NULL && (d = ZSTD_createDCtx()) != NULL) pthread_setspecific(dctx_key, d);
    return d;
}

/* ---- structured metadata ------------------------------------------------------------------------- */

int st_md_encode(st_buf_t *out, const st_str_t *names, const st_str_t *values, size_t n)
{
    if (n == 0) return 0;
    ST_TRY(st_buf_put_uvarint(out, n));
    for (size_t i = 0; i < n; i++) {
        ST_TRY(st_buf_put_lstr(out, names[i].p, names[i].n));
        ST_TRY(st_buf_put_lstr(out, values[i].p, values[i].n));
    }
    return 0;
}

void st_md_iter_init(st_md_iter_t *it, st_str_t md)
{
    it->r = st_reader(md.p, md.n);
    it->left = md.n ? st_read_uvarint(&it->r) : 0;
}

int st_md_next(st_md_iter_t *it, st_str_t *name, st_str_t *value)
{
    if (it->r.err) return ST_ECORRUPT;
    if (it->left == 0) return 0;
    *name = st_read_lstr(&it->r);
    *value = st_read_lstr(&it->r);
    if (it->r.err) return ST_ECORRUPT;
    it->left--;
    return 1;
}

/* ---- blocks -------------------------------------------------------------------------------------- */

/* Uncompressed block layout (all integers uvarint):
 *   n, flags(bit0: metadata present),
 *   n timestamp deltas (first from the block's min_ts, then from the previous entry),
 *   n line lengths, [n metadata lengths, metadata bytes], line bytes. */
int st_block_encode(const st_entry_t *e, size_t n, st_buf_t *out)
{
    bool has_md = false;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (e[i].md.n) has_md = true;
        total += e[i].line.n + e[i].md.n + 16;
        if (i > 0 && e[i].ts < e[i - 1].ts) return -EINVAL;
    }
    ST_TRY(st_buf_reserve(out, total + 32));
    st_buf_put_uvarint(out, n);
    st_buf_put_uvarint(out, has_md ? 1 : 0);
    int64_t prev = n ? e[0].ts : 0;
    for (size_t i = 0; i < n; i++) {
        st_buf_put_uvarint(out, (uint64_t)(e[i].ts - prev));
        prev = e[i].ts;
    }
    for (size_t i = 0; i < n; i++) st_buf_put_uvarint(out, e[i].line.n);
    if (has_md) {
        for (size_t i = 0; i < n; i++) st_buf_put_uvarint(out, e[i].md.n);
        for (size_t i = 0; i < n; i++) st_buf_append(out, e[i].md.p, e[i].md.n);
    }
    for (size_t i = 0; i < n; i++) st_buf_append(out, e[i].line.p, e[i].line.n);
    return 0;
}

void st_block_free(st_block_t *b)
{
    if (b == NULL) return;
    free(b->ts);
    free(b->line_off);
    free(b->md_off);
    st_buf_free(&b->raw);
    memset(b, 0, sizeof *b);
}

void st_block_drop(st_block_t *b, const uint8_t *drop)
{
    /* entries keep their order; their bytes move down over the dropped ones (never up) */
    char *lines = (char *)(uintptr_t)b->lines, *md = (char *)(uintptr_t)b->md;
    uint32_t w = 0, lo = 0, mo = 0;
    for (uint32_t i = 0; i < b->n; i++) {
        uint32_t ls = b->line_off[i], ll = b->line_off[i + 1] - ls;
        uint32_t ms = b->md_off ? b->md_off[i] : 0, ml = b->md_off ? b->md_off[i + 1] - ms : 0;
        if (drop[i]) continue;
        b->ts[w] = b->ts[i];
        if (lo != ls) memmove(lines + lo, lines + ls, ll);
        b->line_off[w] = lo;
        lo += ll;
        if (b->md_off) {
            if (mo != ms) memmove(md + mo, md + ms, ml);
            b->md_off[w] = mo;
            mo += ml;
        }
        w++;
    }
    b->line_off[w] = lo;
    if (b->md_off) b->md_off[w] = mo;
    b->n = w;
}

static int block_grow(st_block_t *b, uint32_t n, bool md)
{
    if (n + 1 > b->cap || (md && b->md_off == NULL)) {
        size_t cap = b->cap > n + 1 ? b->cap : n + 1;
        int64_t *ts = realloc(b->ts, cap * sizeof *ts);
        if (ts) b->ts = ts;
        uint32_t *lo = realloc(b->line_off, cap * sizeof *lo);
        if (lo) b->line_off = lo;
        uint32_t *mo = b->md_off;
        if (md || b->md_off) {
            mo = realloc(b->md_off, cap * sizeof *mo);
            if (mo) b->md_off = mo;
        }
        if (!ts || !lo || ((md || b->md_off) && !mo)) return -ENOMEM;
        b->cap = cap;
    }
    return 0;
}

/* One uvarint in the hot loops of block decoding, inline (no call per value); errors and overlong
 * values go through the reader, which flags them. */
static inline uint64_t fast_uvarint(st_reader_t *r)
{
    const uint8_t *p = r->p, *end = r->end;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 63 && p < end; shift += 7) {
        uint8_t c = *p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            r->p = p;
            return v;
        }
    }
    return st_read_uvarint(r);
}

int st_block_decode_raw(st_block_t *b, int64_t min_ts)
{
    st_reader_t r = st_reader(b->raw.data, b->raw.len);
    uint64_t n = st_read_uvarint(&r);
    uint64_t flags = st_read_uvarint(&r);
    if (r.err || n > b->raw.len || n > UINT32_MAX - 1) return ST_ECORRUPT;
    bool md = flags & 1;
    ST_TRY(block_grow(b, (uint32_t)n, md));
    uint32_t *saved_md = b->md_off;
    int64_t t = min_ts;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t d = fast_uvarint(&r);
        t += (int64_t)d;
        b->ts[i] = t;
    }
    uint64_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        b->line_off[i] = (uint32_t)off;
        off += fast_uvarint(&r);
        if (off > b->raw.len) return ST_ECORRUPT;
    }
    b->line_off[n] = (uint32_t)off;
    uint64_t lines_len = off;
    if (md) {
        off = 0;
        for (uint64_t i = 0; i < n; i++) {
            b->md_off[i] = (uint32_t)off;
            off += st_read_uvarint(&r);
            if (off > b->raw.len) return ST_ECORRUPT;
        }
        b->md_off[n] = (uint32_t)off;
        st_str_t mdb = st_read_bytes(&r, off);
        b->md = mdb.p;
    } else {
        b->md = NULL;
    }
    st_str_t lb = st_read_bytes(&r, lines_len);
    if (r.err || st_reader_left(&r) != 0) return ST_ECORRUPT;
    b->lines = lb.p ? lb.p : "";
    b->n = (uint32_t)n;
    if (!md) {
        /* keep the allocation for later blocks but mark this block as metadata-free */
        b->md_off = NULL;
        free(saved_md);
    }
    return 0;
}

int st_block_decompress(st_block_t *b, const st_block_meta_t *m, const void *compressed)
{
    if (m->ulen > MAX_BLOCK_ULEN) return ST_ECORRUPT;
    st_buf_reset(&b->raw);
    ST_TRY(st_buf_reserve(&b->raw, m->ulen));
    int64_t skip = bf_len(compressed, m->clen);
    if (skip < 0) return ST_ECORRUPT;
    ZSTD_DCtx *d = st_zstd_dctx();
    if (d == NULL) return -ENOMEM;
    size_t got =
        ZSTD_decompressDCtx(d, b->raw.data, m->ulen, (const char *)compressed + skip, m->clen - (size_t)skip);
    if (ZSTD_isError(got) || got != m->ulen) return ST_ECORRUPT;
    b->raw.len = got;
    ST_TRY(st_block_decode_raw(b, m->min_ts));
    if (b->n != m->entries) return ST_ECORRUPT;
    if (b->n && (b->ts[0] != m->min_ts || b->ts[b->n - 1] != m->max_ts)) return ST_ECORRUPT;
    return 0;
}

int st_block_load(st_block_t *b, const st_block_meta_t *m, const void *compressed)
{
    if (st_crc32(0, compressed, m->clen) != m->crc) return ST_ECORRUPT;
    return st_block_decompress(b, m, compressed);
}

int st_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : ST_ECORRUPT; /* short file */
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int st_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int st_write_full(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int st_block_fetch(int fd, uint64_t base, const st_block_meta_t *m, st_buf_t *scratch)
{
    st_buf_reset(scratch);
    ST_TRY(st_buf_reserve(scratch, m->clen));
    ST_TRY(st_pread_full(fd, scratch->data, m->clen, base + m->offset));
    scratch->len = m->clen;
    if (st_crc32(0, scratch->data, m->clen) != m->crc) return ST_ECORRUPT;
    return 0;
}

int st_block_empty(st_block_t *b)
{
    st_buf_reset(&b->raw);
    ST_TRY(st_buf_append(&b->raw, "\0\0", 2)); /* n = 0, flags = 0 */
    return st_block_decode_raw(b, 0);
}

int st_block_read(int fd, uint64_t base, const st_block_meta_t *m, st_buf_t *scratch, st_block_t *b)
{
    ST_TRY(st_block_fetch(fd, base, m, scratch));
    return st_block_decompress(b, m, scratch->data);
}

int st_block_read_for(int fd, uint64_t base, const st_block_meta_t *m, const char *needle, size_t nlen,
                      st_buf_t *scratch, st_block_t *b)
{
    ST_TRY(st_block_fetch(fd, base, m, scratch));
    if (needle && !st_block_may_contain(scratch->data, m->clen, needle, nlen)) {
        ST_TRY(st_block_empty(b));
        return 1;
    }
    return st_block_decompress(b, m, scratch->data);
}

/* ---- writer -------------------------------------------------------------------------------------- */

struct st_chunk_writer {
    char *path; /* NULL: in-memory writer, bytes go to mem */
    st_buf_t mem;
    char *tenant;
    char *labels;
    uint64_t stream_id;
    int level;
    uint64_t off; /* bytes written */
    uint32_t crc; /* running CRC-32 of everything written */
    st_block_meta_t *blocks;
    uint32_t nblocks, capblocks;
    uint64_t entries, raw_bytes;
    int64_t min_ts, max_ts;
    int failed;    /* sticky error */
    bool no_filters; /* st_chunk_writer_set_filters(false) */
    st_buf_t cbuf; /* compression output */
    st_buf_t rawbuf;
};

/* Appends bytes at the writer's offset, opening the file for this call only. */
static int writer_append(st_chunk_writer_t *w, const void *p, size_t n, bool sync)
{
    if (w->path == NULL) {
        ST_TRY(st_buf_append(&w->mem, p, n));
        w->off += n;
        w->crc = st_crc32(w->crc, p, n);
        return 0;
    }
    int fd = open(w->path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = st_pwrite_full(fd, p, n, w->off);
    if (rc == 0 && sync && fdatasync(fd) < 0) rc = -errno;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    if (rc == 0) {
        w->off += n;
        w->crc = st_crc32(w->crc, p, n);
    } else {
        /* Cut a partial write back so a retry (or the next block) starts at a clean offset. */
        int fd2 = open(w->path, O_WRONLY | O_CLOEXEC);
        if (fd2 >= 0) {
            if (ftruncate(fd2, (off_t)w->off) < 0) w->failed = rc;
            close(fd2);
        } else {
            w->failed = rc;
        }
    }
    return rc;
}

int st_chunk_writer_open(const char *path, const char *tenant, st_str_t labels, uint64_t stream_id,
                         int zstd_level, st_chunk_writer_t **out)
{
    st_chunk_writer_t *w = calloc(1, sizeof *w);
    if (w == NULL) return -ENOMEM;
    w->path = path ? strdup(path) : NULL;
    w->tenant = strdup(tenant);
    w->labels = st_str_dup(labels);
    w->stream_id = stream_id;
    w->level = zstd_level;
    w->min_ts = INT64_MAX;
    w->max_ts = INT64_MIN;
    st_buf_t h = ST_BUF_INIT;
    int rc = -ENOMEM;
    if ((path && !w->path) || !w->tenant || !w->labels) goto fail;
    if (st_buf_append(&h, CHUNK_MAGIC, 4) < 0 || st_buf_putc(&h, ST_CHUNK_VERSION) < 0 ||
        st_buf_putc(&h, CODEC_ZSTD) < 0 || st_buf_append(&h, "\0\0", 2) < 0 || st_buf_put_u32le(&h, 0) < 0 ||
        st_buf_put_lstr(&h, tenant, strlen(tenant)) < 0 || st_buf_put_lstr(&h, labels.p, labels.n) < 0 ||
        st_buf_put_u64le(&h, stream_id) < 0)
        goto fail;
    st_put_u32le((uint8_t *)h.data + 8, (uint32_t)(h.len + 4));
    if (st_buf_put_u32le(&h, st_crc32(0, h.data, h.len)) < 0) goto fail;
    if (path == NULL) {
        if ((rc = writer_append(w, h.data, h.len, false)) < 0) goto fail;
        st_buf_free(&h);
        *out = w;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    rc = st_write_full(fd, h.data, h.len);
    close(fd);
    if (rc < 0) {
        unlink(path);
        goto fail;
    }
    w->off = h.len;
    w->crc = st_crc32(0, h.data, h.len);
    st_buf_free(&h);
    *out = w;
    return 0;
fail:
    st_buf_free(&h);
    st_chunk_writer_free(w);
    return rc;
}

int st_chunk_writer_rename(st_chunk_writer_t *w, const char *newpath)
{
    if (w->path == NULL) return -EINVAL;
    char *p = strdup(newpath);
    if (p == NULL) return -ENOMEM;
    if (rename(w->path, newpath) < 0) {
        int rc = -errno;
        free(p);
        return rc;
    }
    free(w->path);
    w->path = p;
    return 0;
}

const char *st_chunk_writer_path(const st_chunk_writer_t *w)
{
    return w->path;
}

st_str_t st_chunk_writer_bytes(const st_chunk_writer_t *w)
{
    return st_str(w->mem.data ? w->mem.data : "", w->mem.len);
}

/* Appends one block: the filter of e (when given), then raw compressed. */
static int writer_add_raw(st_chunk_writer_t *w, const void *raw, size_t n, uint32_t entries, int64_t min_ts,
                          int64_t max_ts, const st_entry_t *e)
{
    if (w->failed) return ST_EBADSTATE;
    if (n > MAX_BLOCK_ULEN) return ST_ELIMIT;
    if (w->nblocks == w->capblocks) {
        uint32_t cap = w->capblocks ? w->capblocks * 2 : 16;
        st_block_meta_t *b = realloc(w->blocks, cap * sizeof *b);
        if (b == NULL) return -ENOMEM;
        w->blocks = b;
        w->capblocks = cap;
    }
    size_t bound = ZSTD_compressBound(n);
    st_buf_reset(&w->cbuf);
    if (e) ST_TRY(bf_build(e, entries, &w->cbuf));
    size_t flen = w->cbuf.len;
    ST_TRY(st_buf_reserve(&w->cbuf, bound));
    ZSTD_CCtx *c = st_zstd_cctx();
    if (c == NULL) return -ENOMEM;
    size_t zlen = ZSTD_compressCCtx(c, w->cbuf.data + flen, bound, raw, n, w->level);
    if (ZSTD_isError(zlen)) return -EIO;
    size_t clen = flen + zlen;
    if (clen > UINT32_MAX) return ST_ELIMIT;
    st_block_meta_t *m = &w->blocks[w->nblocks];
    m->offset = w->off;
    m->clen = (uint32_t)clen;
    m->ulen = (uint32_t)n;
    m->entries = entries;
    m->min_ts = min_ts;
    m->max_ts = max_ts;
    m->crc = st_crc32(0, w->cbuf.data, clen);
    ST_TRY(writer_append(w, w->cbuf.data, clen, false));
    w->nblocks++;
    w->entries += entries;
    if (min_ts < w->min_ts) w->min_ts = min_ts;
    if (max_ts > w->max_ts) w->max_ts = max_ts;
    return 0;
}

void st_chunk_writer_set_level(st_chunk_writer_t *w, int zstd_level)
{
    w->level = zstd_level;
}

void st_chunk_writer_set_filters(st_chunk_writer_t *w, bool on)
{
    w->no_filters = !on;
}

int st_chunk_writer_add(st_chunk_writer_t *w, const st_entry_t *e, size_t n)
{
    if (n == 0) return 0;
    if (w->failed) return ST_EBADSTATE;
    st_buf_reset(&w->rawbuf);
    ST_TRY(st_block_encode(e, n, &w->rawbuf));
    uint64_t raw = 0;
    for (size_t i = 0; i < n; i++) raw += e[i].line.n + e[i].md.n;
    int rc = writer_add_raw(w, w->rawbuf.data, w->rawbuf.len, (uint32_t)n, e[0].ts, e[n - 1].ts,
                            w->no_filters ? NULL : e);
    if (rc == 0) w->raw_bytes += raw;
    return rc;
}

uint64_t st_chunk_writer_size(const st_chunk_writer_t *w)
{
    return w->off;
}

const st_block_meta_t *st_chunk_writer_blocks(const st_chunk_writer_t *w, uint32_t *n)
{
    *n = w->nblocks;
    return w->blocks;
}

static int encode_footer(st_buf_t *f, const st_block_meta_t *blocks, uint32_t nblocks, uint64_t entries,
                         int64_t min_ts, int64_t max_ts, uint64_t raw_bytes)
{
    ST_TRY(st_buf_put_uvarint(f, nblocks));
    for (uint32_t i = 0; i < nblocks; i++) {
        const st_block_meta_t *m = &blocks[i];
        ST_TRY(st_buf_put_uvarint(f, m->offset));
        ST_TRY(st_buf_put_uvarint(f, m->clen));
        ST_TRY(st_buf_put_uvarint(f, m->ulen));
        ST_TRY(st_buf_put_uvarint(f, m->entries));
        ST_TRY(st_buf_put_uvarint(f, st_zigzag(m->min_ts)));
        ST_TRY(st_buf_put_uvarint(f, (uint64_t)(m->max_ts - m->min_ts)));
        ST_TRY(st_buf_put_u32le(f, m->crc));
    }
    ST_TRY(st_buf_put_uvarint(f, entries));
    ST_TRY(st_buf_put_uvarint(f, st_zigzag(min_ts)));
    ST_TRY(st_buf_put_uvarint(f, (uint64_t)(max_ts - min_ts)));
    ST_TRY(st_buf_put_uvarint(f, raw_bytes));
    return 0;
}

int st_chunk_writer_finish(st_chunk_writer_t *w, uint32_t *crc, uint64_t *size)
{
    if (w->failed) return ST_EBADSTATE;
    if (w->nblocks == 0) return -EINVAL;
    st_buf_t f = ST_BUF_INIT;
    int rc = encode_footer(&f, w->blocks, w->nblocks, w->entries, w->min_ts, w->max_ts, w->raw_bytes);
    if (rc == 0) {
        uint64_t foff = w->off;
        uint32_t flen = (uint32_t)f.len, fcrc = st_crc32(0, f.data, f.len);
        uint8_t tail[ST_CHUNK_TAIL_SIZE];
        st_put_u64le(tail, foff);
        st_put_u32le(tail + 8, flen);
        st_put_u32le(tail + 12, fcrc);
        st_put_u32le(tail + 16, ST_CHUNK_VERSION);
        memcpy(tail + 20, CHUNK_MAGIC, 4);
        rc = st_buf_append(&f, tail, sizeof tail);
        if (rc == 0) rc = writer_append(w, f.data, f.len, true);
    }
    st_buf_free(&f);
    if (rc < 0) {
        w->failed = rc;
        return rc;
    }
    if (crc) *crc = w->crc;
    if (size) *size = w->off;
    return 0;
}

void st_chunk_writer_free(st_chunk_writer_t *w)
{
    if (w == NULL) return;
    free(w->path);
    st_buf_free(&w->mem);
    free(w->tenant);
    free(w->labels);
    free(w->blocks);
    st_buf_free(&w->cbuf);
    st_buf_free(&w->rawbuf);
    free(w);
}

/* ---- reader -------------------------------------------------------------------------------------- */

void st_chunk_info_free(st_chunk_info_t *ci)
{
    if (ci == NULL) return;
    free(ci->tenant);
    free(ci->labels);
    free(ci->blocks);
    memset(ci, 0, sizeof *ci);
}

static int parse_header(const uint8_t *p, size_t n, st_chunk_info_t *ci, uint32_t *hlen)
{
    if (n < 16 || memcmp(p, CHUNK_MAGIC, 4) != 0) return ST_ECORRUPT;
    if (p[4] != ST_CHUNK_VERSION) return ST_EVERSION;
    if (p[5] != CODEC_ZSTD) return ST_EVERSION;
    uint32_t len = st_get_u32le(p + 8);
    if (len < 16 || len > n || len > MAX_HEADER_LEN) return ST_ECORRUPT;
    if (st_crc32(0, p, len - 4) != st_get_u32le(p + len - 4)) return ST_ECORRUPT;
    st_reader_t r = st_reader(p + 12, len - 16);
    st_str_t tenant = st_read_lstr(&r);
    st_str_t labels = st_read_lstr(&r);
    uint64_t sid = st_read_u64le(&r);
    if (r.err) return ST_ECORRUPT;
    ci->tenant = st_str_dup(tenant);
    ci->labels = st_str_dup(labels);
    if (!ci->tenant || !ci->labels) return -ENOMEM;
    ci->stream_id = sid;
    *hlen = len;
    return 0;
}

static int parse_footer(const uint8_t *f, size_t flen, uint64_t foff, uint32_t hlen, st_chunk_info_t *ci)
{
    st_reader_t r = st_reader(f, flen);
    uint64_t nb = st_read_uvarint(&r);
    if (r.err || nb == 0 || nb > flen) return ST_ECORRUPT;
    ci->blocks = calloc(nb, sizeof *ci->blocks);
    if (ci->blocks == NULL) return -ENOMEM;
    uint64_t expect_off = hlen;
    for (uint64_t i = 0; i < nb; i++) {
        st_block_meta_t *m = &ci->blocks[i];
        m->offset = st_read_uvarint(&r);
        uint64_t clen = st_read_uvarint(&r), ulen = st_read_uvarint(&r), ent = st_read_uvarint(&r);
        m->min_ts = st_unzigzag(st_read_uvarint(&r));
        uint64_t span = st_read_uvarint(&r);
        m->crc = st_read_u32le(&r);
        if (r.err || clen > MAX_BLOCK_ULEN || ulen > MAX_BLOCK_ULEN || ent > ulen ||
            m->offset != expect_off || span > (uint64_t)INT64_MAX || m->min_ts > INT64_MAX - (int64_t)span)
            return ST_ECORRUPT;
        m->clen = (uint32_t)clen;
        m->ulen = (uint32_t)ulen;
        m->entries = (uint32_t)ent;
        m->max_ts = m->min_ts + (int64_t)span;
        expect_off += clen;
    }
    if (expect_off != foff) return ST_ECORRUPT;
    ci->nblocks = (uint32_t)nb;
    ci->entries = st_read_uvarint(&r);
    ci->min_ts = st_unzigzag(st_read_uvarint(&r));
    uint64_t span = st_read_uvarint(&r);
    ci->raw_bytes = st_read_uvarint(&r);
    if (r.err || st_reader_left(&r) != 0 || span > (uint64_t)INT64_MAX ||
        ci->min_ts > INT64_MAX - (int64_t)span)
        return ST_ECORRUPT;
    ci->max_ts = ci->min_ts + (int64_t)span;
    return 0;
}

static int parse_tail(const uint8_t *t, uint64_t total, uint64_t *foff, uint32_t *flen, uint32_t *fcrc)
{
    if (memcmp(t + 20, CHUNK_MAGIC, 4) != 0) return ST_ECORRUPT;
    if (st_get_u32le(t + 16) != ST_CHUNK_VERSION) return ST_EVERSION;
    *foff = st_get_u64le(t);
    *flen = st_get_u32le(t + 8);
    *fcrc = st_get_u32le(t + 12);
    if (*flen > MAX_FOOTER_LEN || *foff > total || total - *foff != (uint64_t)*flen + ST_CHUNK_TAIL_SIZE)
        return ST_ECORRUPT;
    return 0;
}

int st_chunk_parse(const void *p, size_t n, st_chunk_info_t *out)
{
    const uint8_t *b = p;
    st_chunk_info_t ci;
    memset(&ci, 0, sizeof ci);
    uint32_t hlen = 0, flen, fcrc;
    uint64_t foff;
    int rc;
    if (n < ST_CHUNK_TAIL_SIZE + 16) return ST_ECORRUPT;
    if ((rc = parse_tail(b + n - ST_CHUNK_TAIL_SIZE, n, &foff, &flen, &fcrc)) < 0) return rc;
    if ((rc = parse_header(b, n, &ci, &hlen)) < 0) goto fail;
    rc = ST_ECORRUPT;
    if (foff < hlen || st_crc32(0, b + foff, flen) != fcrc) goto fail;
    if ((rc = parse_footer(b + foff, flen, foff, hlen, &ci)) < 0) goto fail;
    ci.size = n;
    *out = ci;
    return 0;
fail:
    st_chunk_info_free(&ci);
    return rc;
}

int st_chunk_read_info(int fd, uint64_t off, uint64_t len, st_chunk_info_t *out)
{
    if (len == 0) {
        struct stat st;
        if (fstat(fd, &st) < 0) return -errno;
        if ((uint64_t)st.st_size < off) return ST_ECORRUPT;
        len = (uint64_t)st.st_size - off;
    }
    if (len < ST_CHUNK_TAIL_SIZE + 16) return ST_ECORRUPT;
    uint8_t tail[ST_CHUNK_TAIL_SIZE];
    ST_TRY(st_pread_full(fd, tail, sizeof tail, off + len - ST_CHUNK_TAIL_SIZE));
    uint64_t foff;
    uint32_t flen, fcrc, hlen = 0;
    ST_TRY(parse_tail(tail, len, &foff, &flen, &fcrc));
    st_chunk_info_t ci;
    memset(&ci, 0, sizeof ci);
    uint8_t head[4096];
    size_t hn = len < sizeof head ? (size_t)len : sizeof head;
    uint8_t *hbuf = head, *fbuf = NULL;
    int rc = st_pread_full(fd, head, hn, off);
    if (rc < 0) return rc;
    uint32_t want = st_get_u32le(head + 8);
    if (want > hn && want <= MAX_HEADER_LEN && want <= len) {
        hbuf = malloc(want);
        if (hbuf == NULL) return -ENOMEM;
        if ((rc = st_pread_full(fd, hbuf, want, off)) < 0) goto fail;
        hn = want;
    }
    if ((rc = parse_header(hbuf, hn, &ci, &hlen)) < 0) goto fail;
    rc = ST_ECORRUPT;
    if (foff < hlen) goto fail;
    fbuf = malloc(flen ? flen : 1);
    if (fbuf == NULL) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = st_pread_full(fd, fbuf, flen, off + foff)) < 0) goto fail;
    rc = ST_ECORRUPT;
    if (st_crc32(0, fbuf, flen) != fcrc) goto fail;
    if ((rc = parse_footer(fbuf, flen, foff, hlen, &ci)) < 0) goto fail;
    ci.size = len;
    if (hbuf != head) free(hbuf);
    free(fbuf);
    *out = ci;
    return 0;
fail:
    if (hbuf != head) free(hbuf);
    free(fbuf);
    st_chunk_info_free(&ci);
    return rc;
}

int st_chunk_verify(int fd, uint64_t off, uint64_t len)
{
    st_chunk_info_t ci;
    ST_TRY(st_chunk_read_info(fd, off, len, &ci));
    st_buf_t scratch = ST_BUF_INIT;
    st_block_t b;
    memset(&b, 0, sizeof b);
    int rc = 0;
    uint64_t entries = 0;
    for (uint32_t i = 0; i < ci.nblocks && rc == 0; i++) {
        rc = st_block_read(fd, off, &ci.blocks[i], &scratch, &b);
        entries += b.n;
    }
    if (rc == 0 && entries != ci.entries) rc = ST_ECORRUPT;
    st_block_free(&b);
    st_buf_free(&scratch);
    st_chunk_info_free(&ci);
    return rc;
}

/* ---- locations and filesystem helpers ------------------------------------------------------------ */

void st_chunk_local_path(uint64_t chunk_id, char *out, size_t outsz)
{
    snprintf(out, outsz, "%06llx/%016llx.chunk", (unsigned long long)(chunk_id >> 16),
             (unsigned long long)chunk_id);
}

int st_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int st_mkdirs(const char *path, int mode)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return -ENAMETOOLONG;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST) return -errno;
    return 0;
}
