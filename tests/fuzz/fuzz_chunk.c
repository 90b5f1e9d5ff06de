/* fuzz_chunk.c: libFuzzer target for chunk files and block filters. Input byte 0 picks the mode:
 * even: the rest is a chunk (as read from disk or object storage): parse it and load every block,
 * which must fail cleanly or succeed; odd: the rest is log lines (one per '\n'), written into a chunk
 * in memory, which must parse and load back to the same lines, and whose block filter must never
 * reject a substring of any line (a false negative would silently drop matching lines). */
#include "common/err.h"
#include "store/store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void load_all(const uint8_t *p, size_t n)
{
    st_chunk_info_t ci;
    if (st_chunk_parse(p, n, &ci) != 0) return;
    st_block_t b = {0};
    for (uint32_t i = 0; i < ci.nblocks; i++) {
        const st_block_meta_t *m = &ci.blocks[i];
        if (m->offset > n || m->clen > n - m->offset) abort(); /* parse must have checked this */
        if (st_block_load(&b, m, p + m->offset) == 0) {
            for (uint32_t k = 0; k < b.n; k++) (void)st_block_entry(&b, k);
        }
        (void)st_block_may_contain(p + m->offset, m->clen, "needle", 6);
    }
    st_block_free(&b);
    st_chunk_info_free(&ci);
}

static void roundtrip(const uint8_t *p, size_t n)
{
    size_t cap = 64, ne = 0;
    st_entry_t *e = malloc(cap * sizeof *e);
    if (e == NULL) return;
    const uint8_t *s = p, *end = p + n;
    while (s <= end && ne < 4096) {
        const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
        if (nl == NULL) nl = end;
        if (ne == cap) {
            st_entry_t *x = realloc(e, (cap *= 2) * sizeof *e);
            if (x == NULL) break;
            e = x;
        }
        e[ne] = (st_entry_t){(int64_t)ne, st_str((const char *)s, (size_t)(nl - s)), st_str("", 0)};
        ne++;
        s = nl + 1;
    }
    st_chunk_writer_t *w;
    if (st_chunk_writer_open(NULL, "t", st_str("{a=\"b\"}", 7), 1, 1, &w) != 0) {
        free(e);
        return;
    }
    uint32_t crc;
    uint64_t sz;
    if (st_chunk_writer_add(w, e, ne) == 0 && st_chunk_writer_finish(w, &crc, &sz) == 0) {
        st_str_t bytes = st_chunk_writer_bytes(w);
        st_chunk_info_t ci;
        if (st_chunk_parse(bytes.p, bytes.n, &ci) != 0) abort();
        st_block_t b = {0};
        const uint8_t *blk = (const uint8_t *)bytes.p + ci.blocks[0].offset;
        if (st_block_load(&b, &ci.blocks[0], blk) != 0 || b.n != ne) abort();
        for (size_t i = 0; i < ne; i++) {
            st_entry_t x = st_block_entry(&b, (uint32_t)i);
            if (!st_str_eq(x.line, e[i].line)) abort();
            for (size_t a = 0; a < x.line.n; a++)
                for (size_t len = 3; len <= 12 && a + len <= x.line.n; len++)
                    if (!st_block_may_contain(blk, ci.blocks[0].clen, x.line.p + a, len)) {
                        fprintf(stderr, "filter rejects a substring of line %zu\n", i);
                        abort();
                    }
        }
        st_block_free(&b);
        st_chunk_info_free(&ci);
    }
    st_chunk_writer_free(w);
    free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    if (data[0] & 1)
        roundtrip(data + 1, size - 1);
    else
        load_all(data + 1, size - 1);
    return 0;
}
