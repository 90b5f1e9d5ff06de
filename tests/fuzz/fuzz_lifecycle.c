/* fuzz_lifecycle.c: libFuzzer target for the lifecycle section (policies, tiers, rules, S3 and
 * CloudWatch settings): YAML text -> st_config_load_string -> st_lifecycle_config_parse. Any input
 * is accepted or rejected with a NUL-terminated message; a parsed configuration answers policy
 * lookups and targets for a few label sets and ages. */
#include "config/config.h"
#include "lifecycle/lifecycle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char err[16384];
    st_config_t *c = malloc(sizeof *c);
    if (c == NULL) return 0;
    err[0] = '\0';
    if (st_config_load_string(c, "fuzz.yaml", (const char *)data, size, 0, err, sizeof err) == 0) {
        st_lc_config_t *lc = NULL;
        if (st_lifecycle_config_parse(c, &lc, err, sizeof err) == 0) {
            static const char *const sets[] = {"{app=\"a\"}", "{retention=\"gdpr\", app=\"x\"}", "{}"};
            for (size_t i = 0; i < 3; i++) {
                st_labels_t l;
                char e[256];
                if (st_labels_parse(st_cstr(sets[i]), &l, e) < 0) continue;
                int p = st_lc_policy_for(lc, "fake", &l);
                if (p >= 0)
                    for (int64_t age = 0; age < 4000; age += 97) st_lc_target(&lc->policies[p], age * 86400000000000LL);
                st_labels_free(&l);
            }
            st_lifecycle_config_free(lc);
        } else if (memchr(err, '\0', sizeof err) == NULL) {
            abort();
        }
    }
    free(c);
    return 0;
}
