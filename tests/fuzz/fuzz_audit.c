/* fuzz_audit.c: libFuzzer target for the audit trail's reader (audit/record.c): arbitrary bytes as a
 * segment through the chain check, and each line through the strict record parser and the details
 * accessors. Oracles: a segment the chain accepts has every line parseable and counted once; a parsed
 * record's views stay inside its line, its hash is the SHA-256 of the line, and accessor results are
 * NUL-terminated within their buffers. */
#include "audit/audit.h"
#include "common/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "fuzz_audit: check failed at line %d: %s\n", __LINE__, #x);                      \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    (void)rec;
    (*(size_t *)arg)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    /* every line on its own */
    size_t lines = 0, good = 0, off = 0;
    while (off < size) {
        const char *nl = memchr(p + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (p + off)) : size - off;
        st_str_t line = st_str(p + off, n);
        st_audit_rec_t r;
        char why[200];
        why[sizeof why - 1] = '\0';
        lines++;
        if (st_audit_record_parse(line, &r, why, sizeof why) == 0) {
            good++;
            FCHECK(r.details.p >= line.p && r.details.p + r.details.n <= line.p + line.n);
            FCHECK(r.details.n >= 2 && r.details.p[0] == '{');
            char h[ST_AUDIT_HASH_HEX];
            st_audit_sha256_hex(line.p, line.n, h);
            FCHECK(strcmp(h, r.hash) == 0);
            FCHECK(strlen(r.prev) == 64);
            char s[8];
            memset(s, 'x', sizeof s);
            if (st_audit_json_str(r.details, "segment", s, sizeof s) == 0)
                FCHECK(memchr(s, '\0', sizeof s) != NULL);
            int64_t v;
            st_audit_json_i64(r.details, "segment", &v);
            st_str_t raw;
            if (st_audit_json_get(r.details, "chunks", &raw) == 0)
                FCHECK(raw.p >= r.details.p && raw.p + raw.n <= r.details.p + r.details.n);
        } else {
            FCHECK(memchr(why, '\0', sizeof why) != NULL);
        }
        off += n + (nl ? 1 : 0);
    }
    /* the whole input as segment 1 of a new trail */
    st_audit_chain_t c;
    memset(&c, 0, sizeof c);
    st_audit_break_t brk;
    size_t seen = 0;
    int rc = st_audit_chain_segment(&c, 1, st_str(p, size), count_cb, &seen, &brk);
    if (rc == 0) {
        FCHECK(size > 0 && p[size - 1] == '\n');
        FCHECK(seen == lines && good == lines && c.records == lines);
    } else {
        FCHECK(rc == ST_ECORRUPT);
        FCHECK(memchr(brk.what, '\0', sizeof brk.what) != NULL);
        FCHECK(brk.offset <= size);
    }
    return 0;
}
