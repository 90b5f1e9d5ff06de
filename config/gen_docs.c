/* gen_docs.c: strata-config-docs, prints the configuration reference as Markdown from the key table.
 * Usage: strata-config-docs [output.md]   (stdout without an argument). docs/configuration.md is its
 * output; the unit test test_config_output fails when the committed file is out of date. */
#include "config/config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "usage: %s [output.md]\n", argv[0]);
        return 2;
    }
    FILE *out = stdout;
    if (argc == 2) {
        out = fopen(argv[1], "w");
        if (out == NULL) {
            fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
            return 1;
        }
    }
    st_config_print_markdown(out);
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "write failed: %s\n", strerror(errno));
        return 1;
    }
    if (out != stdout && fclose(out) != 0) return 1;
    return 0;
}
