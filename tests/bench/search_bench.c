/* search_bench.c: compares glibc memmem with st_memmem (common/search.c) over real log text, the
 * measurement behind writing our own substring search (docs/performance.md).
 * Usage: strata-search-bench FILE [needle ...] */
#include "common/search.h"
#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double run(const char *h, size_t n, const char *needle, int ours, size_t *hits)
{
    size_t nl = strlen(needle);
    st_finder_t f;
    st_finder_init(&f, needle, nl);
    int64_t t0 = st_mono_ns();
    *hits = 0;
    for (int rep = 0; rep < 5; rep++) {
        size_t pos = 0;
        while (pos < n) {
            const char *m = ours ? st_finder_find(&f, h + pos, n - pos) : memmem(h + pos, n - pos, needle, nl);
            if (m == NULL) break;
            (*hits)++;
            pos = (size_t)(m - h) + 1;
        }
    }
    return (double)(st_mono_ns() - t0) / 1e9 / 5;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE [needle ...]\n", argv[0]);
        return 2;
    }
    FILE *fp = fopen(argv[1], "rb");
    if (fp == NULL) {
        perror(argv[1]);
        return 1;
    }
    fseek(fp, 0, SEEK_END);
    size_t n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *h = malloc(n);
    if (h == NULL || fread(h, 1, n, fp) != n) return 1;
    fclose(fp);
    const char *defaults[] = {"NO_SUCH_STRING_ANYWHERE", "error", "Exception", "blk_", "session opened", NULL};
    const char **needles = argc > 2 ? (const char **)(argv + 2) : defaults;
    int nn = argc > 2 ? argc - 2 : 5;
    printf("%-28s %12s %12s %10s\n", "needle", "glibc GB/s", "strata GB/s", "matches");
    for (int i = 0; i < nn; i++) {
        size_t h1, h2;
        double a = run(h, n, needles[i], 0, &h1), b = run(h, n, needles[i], 1, &h2);
        printf("%-28s %12.2f %12.2f %10zu%s\n", needles[i], n / a / 1e9, n / b / 1e9, h1 / 5,
               h1 == h2 ? "" : "  MISMATCH");
    }
    free(h);
    return 0;
}
