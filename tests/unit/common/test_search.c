/* test_search.c: st_memmem agrees with glibc memmem on random haystacks and needles, including
 * matches at the edges, overlapping candidates and needles of every length up to 40. */
#include "testutil.h"

#include "common/search.h"

static uint32_t seed = 12345;
static uint32_t rnd(void)
{
    seed = seed * 1103515245u + 12345u;
    return seed >> 8;
}

static void test_against_memmem(void **state)
{
    (void)state;
    char hay[700];
    for (int iter = 0; iter < 20000; iter++) {
        size_t hn = rnd() % sizeof hay;
        int alpha = 2 + (int)(rnd() % 6); /* small alphabets make many candidates */
        for (size_t i = 0; i < hn; i++) hay[i] = (char)('a' + rnd() % (unsigned)alpha);
        size_t nn = rnd() % 41;
        char needle[41];
        if (hn > 0 && nn <= hn && rnd() % 2) {
            size_t at = rnd() % (hn - nn + 1);
            memcpy(needle, hay + at, nn); /* a needle that occurs */
        } else {
            for (size_t i = 0; i < nn; i++) needle[i] = (char)('a' + rnd() % (unsigned)alpha);
        }
        const char *want = memmem(hay, hn, needle, nn);
        const char *got = st_memmem(hay, hn, needle, nn);
        if (want != got) fail_msg("hn=%zu nn=%zu want=%td got=%td", hn, nn, want ? want - hay : -1, got ? got - hay : -1);
    }
}

static void test_edges(void **state)
{
    (void)state;
    const char *h = "0123456789abcdefghijklmnopqrstuvwxyz";
    assert_ptr_equal(st_memmem(h, strlen(h), "xyz", 3), h + 33);
    assert_ptr_equal(st_memmem(h, strlen(h), "012", 3), h);
    assert_null(st_memmem(h, strlen(h), "xyz!", 4));
    assert_ptr_equal(st_memmem(h, 0, "", 0), h);
    assert_null(st_memmem(h, 2, "012", 3));
    const char bin[] = {'\xff', '\xfe', '\0', 'z'};
    assert_ptr_equal(st_memmem(bin, 4, "\0z", 2), bin + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_memmem), cmocka_unit_test(test_edges)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
