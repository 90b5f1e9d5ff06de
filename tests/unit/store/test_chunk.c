/* test_chunk.c: chunk and block encode/decode round trips, checksums and corruption detection. */
#include "testutil.h"

#include "common/err.h"
#include "common/hash.h"
#include "store/store.h"

#include <fcntl.h>

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = st_test_tmpdir("chunk");
    return dir ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_test_rmrf(dir);
    free(dir);
    return 0;
}

static void test_block_roundtrip(void **state)
{
    (void)state;
    st_entry_t e[4] = {{100, ST_STR("first"), ST_STR("")},
                       {100, ST_STR("same ts"), ST_STR("")},
                       {250, ST_STR(""), ST_STR("")},
                       {INT64_C(1700000000000000000), ST_STR("big jump"), ST_STR("")}};
    st_buf_t raw = ST_BUF_INIT;
    assert_int_equal(st_block_encode(e, 4, &raw), 0);
    st_block_t b;
    memset(&b, 0, sizeof b);
    b.raw = raw;
    assert_int_equal(st_block_decode_raw(&b, 100), 0);
    assert_int_equal(b.n, 4);
    for (int i = 0; i < 4; i++) {
        st_entry_t x = st_block_entry(&b, (uint32_t)i);
        assert_true(x.ts == e[i].ts);
        assert_true(st_str_eq(x.line, e[i].line));
        assert_int_equal(x.md.n, 0);
    }
    st_block_free(&b);
    /* unsorted input is rejected */
    st_entry_t bad[2] = {{5, ST_STR("a"), ST_STR("")}, {4, ST_STR("b"), ST_STR("")}};
    st_buf_t raw2 = ST_BUF_INIT;
    assert_int_equal(st_block_encode(bad, 2, &raw2), -EINVAL);
    st_buf_free(&raw2);
}

static void test_metadata(void **state)
{
    (void)state;
    st_str_t names[2] = {ST_STR("trace_id"), ST_STR("user")}, values[2] = {ST_STR("abc"), ST_STR("u1")};
    st_buf_t md = ST_BUF_INIT;
    assert_int_equal(st_md_encode(&md, names, values, 2), 0);
    st_entry_t e[2] = {{1, ST_STR("x"), st_str(md.data, md.len)}, {2, ST_STR("y"), ST_STR("")}};
    st_buf_t raw = ST_BUF_INIT;
    assert_int_equal(st_block_encode(e, 2, &raw), 0);
    st_block_t b;
    memset(&b, 0, sizeof b);
    b.raw = raw;
    assert_int_equal(st_block_decode_raw(&b, 1), 0);
    st_entry_t x = st_block_entry(&b, 0);
    st_md_iter_t it;
    st_md_iter_init(&it, x.md);
    st_str_t n, v;
    assert_int_equal(st_md_next(&it, &n, &v), 1);
    assert_true(st_str_eqc(n, "trace_id") && st_str_eqc(v, "abc"));
    assert_int_equal(st_md_next(&it, &n, &v), 1);
    assert_true(st_str_eqc(n, "user") && st_str_eqc(v, "u1"));
    assert_int_equal(st_md_next(&it, &n, &v), 0);
    assert_int_equal(st_block_entry(&b, 1).md.n, 0);
    st_block_free(&b);
    st_buf_free(&md);
}

static void write_chunk(const char *path, int nblocks, int per_block)
{
    st_chunk_writer_t *w;
    assert_int_equal(st_chunk_writer_open(path, "tenant-a", ST_STR("{app=\"x\"}"), 42, 3, &w), 0);
    char line[64];
    st_entry_t *e = calloc((size_t)per_block, sizeof *e);
    char *store = calloc((size_t)per_block, 64);
    for (int b = 0; b < nblocks; b++) {
        for (int i = 0; i < per_block; i++) {
            snprintf(line, sizeof line, "block %d line %d level=info", b, i);
            memcpy(store + i * 64, line, strlen(line) + 1);
            e[i].ts = 1000000000LL * (b * per_block + i);
            e[i].line = st_cstr(store + i * 64);
            e[i].md = st_str("", 0);
        }
        assert_int_equal(st_chunk_writer_add(w, e, (size_t)per_block), 0);
    }
    uint32_t crc;
    uint64_t size;
    assert_int_equal(st_chunk_writer_finish(w, &crc, &size), 0);
    st_chunk_writer_free(w);
    free(e);
    free(store);
}

static void test_chunk_file(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/c1.chunk", dir);
    write_chunk(path, 3, 100);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    st_chunk_info_t ci;
    assert_int_equal(st_chunk_read_info(fd, 0, 0, &ci), 0);
    assert_string_equal(ci.tenant, "tenant-a");
    assert_string_equal(ci.labels, "{app=\"x\"}");
    assert_true(ci.stream_id == 42);
    assert_int_equal(ci.nblocks, 3);
    assert_true(ci.entries == 300);
    assert_true(ci.min_ts == 0 && ci.max_ts == 299000000000LL);
    st_block_t b;
    memset(&b, 0, sizeof b);
    st_buf_t scratch = ST_BUF_INIT;
    assert_int_equal(st_block_read(fd, 0, &ci.blocks[1], &scratch, &b), 0);
    assert_int_equal(b.n, 100);
    st_entry_t x = st_block_entry(&b, 5);
    assert_true(st_str_eqc(x.line, "block 1 line 5 level=info"));
    assert_true(x.ts == 105000000000LL);
    assert_int_equal(st_chunk_verify(fd, 0, 0), 0);
    st_block_free(&b);
    st_buf_free(&scratch);
    st_chunk_info_free(&ci);
    close(fd);
}

static void test_chunk_in_pack(void **state)
{
    (void)state;
    /* A chunk placed at an offset inside a larger object reads the same through (offset, length). */
    char path[4096], pack[4096];
    snprintf(path, sizeof path, "%s/c2.chunk", dir);
    snprintf(pack, sizeof pack, "%s/pack", dir);
    write_chunk(path, 2, 10);
    FILE *in = fopen(path, "rb"), *out = fopen(pack, "wb");
    fputs("leading bytes of another chunk", out);
    long off = ftell(out);
    int ch;
    long len = 0;
    while ((ch = fgetc(in)) != EOF) {
        fputc(ch, out);
        len++;
    }
    fputs("trailing", out);
    fclose(in);
    fclose(out);
    int fd = open(pack, O_RDONLY);
    st_chunk_info_t ci;
    assert_int_equal(st_chunk_read_info(fd, (uint64_t)off, (uint64_t)len, &ci), 0);
    assert_true(ci.entries == 20);
    assert_int_equal(st_chunk_verify(fd, (uint64_t)off, (uint64_t)len), 0);
    st_chunk_info_free(&ci);
    close(fd);
}

static void test_corruption_detected(void **state)
{
    (void)state;
    char path[4096];
    snprintf(path, sizeof path, "%s/c3.chunk", dir);
    write_chunk(path, 2, 50);
    int fd = open(path, O_RDWR);
    st_chunk_info_t ci;
    assert_int_equal(st_chunk_read_info(fd, 0, 0, &ci), 0);
    /* flip one byte inside the second block */
    uint64_t at = ci.blocks[1].offset + ci.blocks[1].clen / 2;
    char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)at), 1);
    c ^= 0x5a;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)at), 1);
    assert_int_equal(st_chunk_verify(fd, 0, 0), ST_ECORRUPT);
    st_chunk_info_free(&ci);
    /* a truncated file fails cleanly */
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_true(st_chunk_read_info(fd, 0, 0, &ci) < 0);
    close(fd);
    /* garbage in memory */
    char junk[200];
    memset(junk, 'x', sizeof junk);
    assert_true(st_chunk_parse(junk, sizeof junk, &ci) < 0);
}

static void test_timestamps_are_compact(void **state)
{
    (void)state;
    /* 10,000 entries 1ms apart: the timestamp column must cost far less than 8 bytes an entry. */
    enum { N = 10000 };
    st_entry_t *e = calloc(N, sizeof *e);
    for (int i = 0; i < N; i++) e[i] = (st_entry_t){1700000000000000000LL + i * 1000000LL, ST_STR(""), ST_STR("")};
    st_buf_t raw = ST_BUF_INIT;
    assert_int_equal(st_block_encode(e, N, &raw), 0);
    assert_true(raw.len < N * 5); /* delta 1e6 ns = 3-byte varint + 1-byte length */
    st_buf_free(&raw);
    free(e);
}

/* A block's trigram filter never rejects a string one of its lines contains (every substring of
 * every line, random lines), rejects a long absent string, and blocks without a filter (older
 * chunks, or filters off) still load and never reject. Corrupt filter headers fail the load. */
static void test_block_filters(void **state)
{
    (void)state;
    enum { N = 300 };
    static const char *words[] = {
        "error", "connection", "refused", "GET",     "/api/v1/users", "user=", "took",    "ms",
        "blk_",  "INFO",       "WARN",    "session", "opened",        "for",   "ünïcode", "\"\\"};
    char *lines[N];
    st_entry_t e[N];
    uint64_t seed = 42;
    for (int i = 0; i < N; i++) {
        char buf[256];
        size_t n = 0;
        for (int k = 0; k < 8; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%llu ", words[(seed >> 33) % 16],
                                  (unsigned long long)((seed >> 20) % 1000));
        }
        lines[i] = strdup(buf);
        e[i] = (st_entry_t){1000 + i, st_str(lines[i], n), ST_STR("")};
    }
    for (int filters = 0; filters <= 1; filters++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/f%d.chunk", dir, filters);
        st_chunk_writer_t *w;
        assert_int_equal(st_chunk_writer_open(path, "t", ST_STR("{a=\"b\"}"), 1, 3, &w), 0);
        if (!filters) st_chunk_writer_set_filters(w, false);
        assert_int_equal(st_chunk_writer_add(w, e, N), 0);
        uint32_t crc;
        uint64_t size;
        assert_int_equal(st_chunk_writer_finish(w, &crc, &size), 0);
        st_chunk_writer_free(w);
        int fd = open(path, O_RDONLY);
        st_chunk_info_t ci;
        assert_int_equal(st_chunk_read_info(fd, 0, 0, &ci), 0);
        st_buf_t scratch = ST_BUF_INIT;
        st_block_t b = {0};
        assert_int_equal(st_block_fetch(fd, 0, &ci.blocks[0], &scratch), 0);
        uint32_t bits = 0;
        double fill = 0;
        assert_int_equal(st_block_filter_info(scratch.data, scratch.len, &bits, &fill), filters);
        if (filters) assert_true(bits >= 256 && bits <= 2048 && fill > 0 && fill <= 0.7);
        for (int i = 0; i < N; i++)
            for (size_t a = 0; a < e[i].line.n; a++)
                for (size_t len = 1; a + len <= e[i].line.n && len <= 24; len++)
                    if (!st_block_may_contain(scratch.data, scratch.len, e[i].line.p + a, len))
                        fail_msg("rejects \"%.*s\"", (int)len, e[i].line.p + a);
        bool rejected = !st_block_may_contain(scratch.data, scratch.len, "NO_SUCH_STRING_ANYWHERE", 23);
        assert_int_equal(rejected, filters);
        assert_true(st_block_may_contain(scratch.data, scratch.len, "zz", 2)); /* too short to tell */
        assert_int_equal(st_block_decompress(&b, &ci.blocks[0], scratch.data), 0);
        assert_int_equal(b.n, N);
        assert_memory_equal(st_block_entry(&b, 7).line.p, lines[7], e[7].line.n);
        if (filters) {
            /* a filter header claiming more bits than the block holds is corruption, not a crash */
            st_block_meta_t m = ci.blocks[0];
            uint8_t *p = (uint8_t *)scratch.data;
            p[3] = 40;
            m.crc = st_crc32(0, p, m.clen);
            assert_int_equal(st_block_load(&b, &m, p), ST_ECORRUPT);
            assert_true(st_block_may_contain(p, m.clen, "NO_SUCH_STRING_ANYWHERE", 23));
            p[3] = 11;
            m.clen = 100; /* truncated inside the filter */
            m.crc = st_crc32(0, p, m.clen);
            assert_int_equal(st_block_load(&b, &m, p), ST_ECORRUPT);
        }
        assert_int_equal(st_block_empty(&b), 0);
        assert_int_equal(b.n, 0);
        assert_int_equal(b.line_off[0], 0);
        st_block_free(&b);
        st_buf_free(&scratch);
        st_chunk_info_free(&ci);
        close(fd);
    }
    for (int i = 0; i < N; i++) free(lines[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_roundtrip),     cmocka_unit_test(test_metadata),
        cmocka_unit_test(test_chunk_file),          cmocka_unit_test(test_chunk_in_pack),
        cmocka_unit_test(test_corruption_detected), cmocka_unit_test(test_timestamps_are_compact),
        cmocka_unit_test(test_block_filters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
