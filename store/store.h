/* store.h: the chunk format and chunk storage (docs/formats.md describes the bytes).
 *
 * A chunk holds the entries of one stream: a header naming the stream, zstd-compressed blocks of
 * entries (timestamps as deltas, lengths and lines in separate columns), and a footer with per-block
 * metadata (offset, sizes, entry count, min/max time, CRC-32) located by a fixed-size tail. Every
 * offset is relative to the chunk's first byte, so a chunk can be stored alone in a file or as a byte
 * range inside a larger pack object. Where a chunk lives is a st_chunk_loc_t, stored in the index;
 * readers never derive it. Writers are single-threaded; readers are independent and thread safe. */
#ifndef ST_STORE_STORE_H
#define ST_STORE_STORE_H

#include "common/buf.h"

#include <stdbool.h>
#include <stdint.h>

#define ST_CHUNK_VERSION   1
#define ST_CHUNK_TAIL_SIZE 24

/* ---- entries and blocks ---------------------------------------------------------------------- */

/* One log entry. md is structured metadata encoded by st_md_* (uvarint count, then lstr pairs);
 * empty when the entry has none. Views are borrowed. */
typedef struct {
    int64_t ts;
    st_str_t line;
    st_str_t md;
} st_entry_t;

/* Structured metadata: encode pairs into md bytes; iterate them back. */
int st_md_encode(st_buf_t *out, const st_str_t *names, const st_str_t *values, size_t n);
typedef struct {
    st_reader_t r;
    uint64_t left;
} st_md_iter_t;
void st_md_iter_init(st_md_iter_t *it, st_str_t md);
/* Returns 1 with the next pair, 0 at the end, ST_ECORRUPT on malformed bytes. */
int st_md_next(st_md_iter_t *it, st_str_t *name, st_str_t *value);

/* A decoded block: column arrays over the decompressed bytes, all owned by the block and reused
 * across st_block_decode calls. Entries are in ascending timestamp order. */
typedef struct {
    uint32_t n;
    int64_t *ts;        /* n timestamps */
    uint32_t *line_off; /* n+1 offsets into lines */
    const char *lines;  /* all lines back to back */
    uint32_t *md_off;   /* n+1 offsets into md, or NULL when no entry has metadata */
    const char *md;
    st_buf_t raw; /* decompressed bytes */
    size_t cap;   /* capacity of the arrays */
} st_block_t;

void st_block_free(st_block_t *b);
static inline st_entry_t st_block_entry(const st_block_t *b, uint32_t i)
{
    st_entry_t e;
    e.ts = b->ts[i];
    e.line = st_str(b->lines + b->line_off[i], b->line_off[i + 1] - b->line_off[i]);
    e.md = b->md_off ? st_str(b->md + b->md_off[i], b->md_off[i + 1] - b->md_off[i]) : st_str("", 0);
    return e;
}

/* Removes the entries i with drop[i] != 0 from a decoded block, in place (order kept). */
void st_block_drop(st_block_t *b, const uint8_t *drop);
/* Encodes entries (which must be sorted by ts) into the uncompressed block layout, appended to out. */
int st_block_encode(const st_entry_t *e, size_t n, st_buf_t *out);
/* Decodes an uncompressed block. min_ts is the block's minimum from its metadata. */
int st_block_decode_raw(st_block_t *b, int64_t min_ts);

/* ---- chunk metadata ---------------------------------------------------------------------------- */

typedef struct {
    uint64_t offset; /* of the compressed bytes, from the chunk start */
    uint32_t clen;   /* compressed length */
    uint32_t ulen;   /* uncompressed length */
    uint32_t entries;
    int64_t min_ts, max_ts;
    uint32_t crc; /* CRC-32 of the compressed bytes */
} st_block_meta_t;

typedef struct {
    char *tenant; /* owned */
    char *labels; /* owned, canonical label text */
    uint64_t stream_id;
    st_block_meta_t *blocks; /* owned */
    uint32_t nblocks;
    uint64_t entries;
    int64_t min_ts, max_ts;
    uint64_t raw_bytes; /* sum of line + metadata bytes */
    uint64_t size;      /* total chunk bytes (header..tail) */
} st_chunk_info_t;

void st_chunk_info_free(st_chunk_info_t *ci);

/* ---- writing ----------------------------------------------------------------------------------- */

typedef struct st_chunk_writer st_chunk_writer_t;

/* Starts a chunk in a new file at path (O_EXCL) and writes its header. The writer keeps no file
 * descriptor open between calls (an ingester may have thousands of open chunks); each call opens the
 * file by its current path. With path NULL the chunk is built in memory (st_chunk_writer_bytes), for
 * packing many small chunks into one file. Returns 0 or -errno. */
int st_chunk_writer_open(const char *path, const char *tenant, st_str_t labels, uint64_t stream_id,
                         int zstd_level, st_chunk_writer_t **out);
/* Renames the chunk file (same filesystem) and remembers the new path. */
int st_chunk_writer_rename(st_chunk_writer_t *w, const char *newpath);
const char *st_chunk_writer_path(const st_chunk_writer_t *w);
/* The chunk's bytes of an in-memory writer (valid until the next call on w). */
st_str_t st_chunk_writer_bytes(const st_chunk_writer_t *w);
/* Compresses and appends one block of sorted entries. After a failure the writer is sticky-failed. */
int st_chunk_writer_add(st_chunk_writer_t *w, const st_entry_t *e, size_t n);
/* The calling thread's zstd contexts (created on first use, freed when the thread exits); NULL
 * when out of memory. */
struct ZSTD_CCtx_s *st_zstd_cctx(void);
struct ZSTD_DCtx_s *st_zstd_dctx(void);
/* zstd level of the blocks added from now on (1..19). */
void st_chunk_writer_set_level(st_chunk_writer_t *w, int zstd_level);
/* Compressed bytes written so far (header + blocks). */
uint64_t st_chunk_writer_size(const st_chunk_writer_t *w);
/* Block metadata written so far (valid until the next add). */
const st_block_meta_t *st_chunk_writer_blocks(const st_chunk_writer_t *w, uint32_t *n);
/* Writes the footer and tail, fsyncs. *crc gets the CRC-32 of the whole chunk, *size its length. */
int st_chunk_writer_finish(st_chunk_writer_t *w, uint32_t *crc, uint64_t *size);
/* Whether blocks get a trigram filter (default on; ingester.block_filters). */
void st_chunk_writer_set_filters(st_chunk_writer_t *w, bool on);
/* Frees the writer (an unfinished chunk's partial file stays for the caller to delete). NULL-safe. */
void st_chunk_writer_free(st_chunk_writer_t *w);

/* ---- reading ----------------------------------------------------------------------------------- */

/* Parses header + footer of a chunk held entirely in memory (e.g. fetched from object storage). */
int st_chunk_parse(const void *p, size_t n, st_chunk_info_t *out);
/* Reads header + footer from a file region [off, off+len) (len 0 = to the end of file). */
int st_chunk_read_info(int fd, uint64_t off, uint64_t len, st_chunk_info_t *out);
/* A block's stored bytes (m->clen of them at m->offset) are an optional trigram filter of its lines
 * followed by one zstd frame (docs/formats.md). */

/* Verifies (CRC) and decompresses one block from its stored bytes into b. */
int st_block_load(st_block_t *b, const st_block_meta_t *m, const void *compressed);
/* Reads (pread at base + m->offset) and verifies one block's stored bytes into scratch. */
int st_block_fetch(int fd, uint64_t base, const st_block_meta_t *m, st_buf_t *scratch);
/* Decompresses stored bytes already verified by st_block_fetch. */
int st_block_decompress(st_block_t *b, const st_block_meta_t *m, const void *compressed);
/* st_block_fetch then st_block_decompress. */
int st_block_read(int fd, uint64_t base, const st_block_meta_t *m, st_buf_t *scratch, st_block_t *b);
/* st_block_read for a scan whose every kept line must contain needle (NULL: none): when the
 * block's filter proves that no line does, b becomes a block of no entries without being
 * decompressed and 1 is returned; otherwise as st_block_read. */
int st_block_read_for(int fd, uint64_t base, const st_block_meta_t *m, const char *needle, size_t nlen,
                      st_buf_t *scratch, st_block_t *b);
/* False only when the block's filter proves that no line of the block contains needle (case
 * sensitive); true for blocks without a filter and needles shorter than 3 bytes. n is m->clen. */
bool st_block_may_contain(const void *stored, size_t n, const char *needle, size_t nlen);
/* Makes b a valid block of no entries (for a block skipped by its filter). */
int st_block_empty(st_block_t *b);
/* 1 with the filter's size and the fraction of its bits set, 0 when the block has none, or
 * ST_ECORRUPT. */
int st_block_filter_info(const void *stored, size_t n, uint32_t *bits, double *fill);

/* Verifies every block checksum and the footer of a chunk file region; returns 0 or ST_ECORRUPT. */
int st_chunk_verify(int fd, uint64_t off, uint64_t len);

/* ---- locations ---------------------------------------------------------------------------------- */

typedef enum {
    ST_LOC_LOCAL = 0, /* a file under the chunks directory: path relative to it */
    ST_LOC_S3 = 1     /* an object: bucket/key (later issues) */
} st_loc_kind_t;

typedef struct {
    st_loc_kind_t kind;
    char path[256];  /* relative path or object key */
    uint64_t offset; /* byte range of the chunk inside the file/object */
    uint64_t length;
} st_chunk_loc_t;

/* Local chunk layout: "<id >> 16 as 6 hex>/<id as 16 hex>.chunk"; packs of small chunks use the
 * id of their first chunk with the suffix ".pack". */
void st_chunk_local_path(uint64_t chunk_id, char *out, size_t outsz);

/* Exactly n bytes, retrying short transfers and EINTR. Return 0 or -errno; a read that meets the end
 * of the file is ST_ECORRUPT, a write that makes no progress -EIO. */
int st_pread_full(int fd, void *buf, size_t n, uint64_t off);
int st_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int st_write_full(int fd, const void *buf, size_t n);

/* fsync a directory (after renames/creates inside it). */
int st_fsync_dir(const char *dir);
/* mkdir -p */
int st_mkdirs(const char *path, int mode);

#endif
