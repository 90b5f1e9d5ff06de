/* test_spill.c: head spill files: frames read back exactly, damage is detected, segments go once
 * released, compaction victims, and a new open removes a previous run's files. */
#include "testutil.h"

#include "common/err.h"
#include "ingester/spill.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static void fill(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) p[i] = (char)('a' + (i * 7 + seed) % 26);
}

static void test_write_read_release(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("spill");
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/s", dir);
    st_spill_t *s;
    assert_int_equal(st_spill_open(sub, 4096, &s), 0);
    st_spill_ref_t r[40];
    char buf[1500], got[1500];
    for (unsigned i = 0; i < 40; i++) { /* 40 frames of 1,000 bytes: ten 4 KiB segments */
        fill(buf, 1000, i);
        assert_int_equal(st_spill_write(s, buf, 1000, &r[i]), 0);
        assert_non_null(r[i].seg);
        assert_int_equal(r[i].len, 1000);
    }
    st_spill_stats_t st;
    st_spill_stats(s, &st);
    assert_int_equal(st.frames, 40);
    assert_int_equal(st.segments, 10);
    assert_int_equal(st.live_bytes, 40 * 1004);
    assert_int_equal(st.disk_bytes, 40 * 1004);
    assert_int_equal(count_files(sub), 10);
    for (unsigned i = 0; i < 40; i++) {
        fill(buf, 1000, i);
        assert_int_equal(st_spill_read(r[i], got), 0);
        assert_memory_equal(got, buf, 1000);
    }
    /* nothing to compact while every frame is referenced */
    assert_null(st_spill_victim(s));

    /* a segment goes with its last reference; the one being written stays */
    for (unsigned i = 0; i < 4; i++) st_spill_release(&r[i]);
    assert_null(r[0].seg);
    st_spill_release(&r[0]); /* a released (cleared) reference is a no-op */
    st_spill_stats(s, &st);
    assert_int_equal(st.segments, 9);
    assert_int_equal(count_files(sub), 9);
    for (unsigned i = 36; i < 40; i++) st_spill_release(&r[i]);
    st_spill_stats(s, &st);
    assert_int_equal(st.segments, 9); /* the active segment, empty now, is kept */
    assert_int_equal(st.frames, 32);

    /* one frame left in each of eight old segments: compaction names the emptiest */
    for (unsigned i = 4; i < 36; i++)
        if (i % 4 != 0 && i != 13) st_spill_release(&r[i]);
    /* disk 9 x 4016 > 2 x live (9 frames) + 2 segments */
    st_spill_seg_t *v = st_spill_victim(s);
    assert_non_null(v);
    assert_true(v == r[4].seg || v == r[8].seg || v == r[16].seg || v == r[20].seg || v == r[24].seg ||
                v == r[28].seg || v == r[32].seg); /* not r[12]'s segment, which holds two frames */
    assert_ptr_not_equal(v, r[12].seg);
    for (unsigned i = 4; i < 36; i++) {
        if (r[i].seg == NULL) continue;
        fill(buf, 1000, i);
        assert_int_equal(st_spill_read(r[i], got), 0);
        assert_memory_equal(got, buf, 1000);
    }

    /* damage on disk is an error, not wrong bytes */
    char path[4096];
    snprintf(path, sizeof path, "%s/%016llx.spill", sub, 3ULL); /* frames 8..11: r[8] is its first */
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "Z", 1, 100), 1);
    close(fd);
    assert_int_equal(st_spill_read(r[8], got), -EIO);

    /* a frame larger than a segment gets a segment of its own */
    char big[9000];
    fill(big, sizeof big, 99);
    st_spill_ref_t rb, rb2;
    assert_int_equal(st_spill_write(s, big, sizeof big, &rb), 0);
    char bgot[9000];
    assert_int_equal(st_spill_read(rb, bgot), 0);
    assert_memory_equal(bgot, big, sizeof big);
    assert_int_equal(st_spill_write(s, big, 0, &rb2), -EINVAL); /* empty frames are refused */
    assert_null(rb2.seg);
    assert_int_equal(st_spill_write(s, big, sizeof big, &rb2), 0);
    assert_ptr_not_equal(rb2.seg, rb.seg);
    st_spill_release(&rb2);
    for (unsigned i = 4; i < 36; i++) st_spill_release(&r[i]);
    st_spill_stats(s, &st);
    assert_int_equal(st.frames, 1);
    assert_int_equal(st.segments, 2); /* rb's, and the one being written (empty) */
    st_spill_release(&rb);
    st_spill_stats(s, &st);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.live_bytes, 0);
    st_spill_close(s);
    assert_int_equal(count_files(sub), 0);
    st_test_rmrf(dir);
    free(dir);
}

static void test_open_removes_old_files(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("spill2");
    st_spill_t *s;
    assert_int_equal(st_spill_open(dir, 4096, &s), 0);
    st_spill_ref_t r;
    assert_int_equal(st_spill_write(s, "hello", 5, &r), 0);
    assert_int_equal(count_files(dir), 1);
    /* a crash leaves the file behind; the next run starts empty */
    st_spill_t *s2;
    assert_int_equal(st_spill_open(dir, 4096, &s2), 0);
    assert_int_equal(count_files(dir), 0);
    st_spill_stats_t st;
    st_spill_stats(s2, &st);
    assert_int_equal(st.disk_bytes, 0);
    st_spill_close(s2);
    st_spill_release(&r);
    st_spill_close(s);
    st_test_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_write_read_release),
                                       cmocka_unit_test(test_open_removes_old_files)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
