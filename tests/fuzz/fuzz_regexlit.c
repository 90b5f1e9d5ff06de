/* fuzz_regexlit.c: libFuzzer target for st_regex_required_literal, the literal a |~ regex's matches
 * must contain (line filters skip PCRE2 and whole blocks on it). Input: a regex (RE2 syntax), then
 * after a NUL a subject line. The regex goes through the LogQL parser as `|~`; when it compiles and
 * matches the subject, the subject must contain the extracted literal, or lines would be dropped
 * that Loki keeps. */
#include "querier/querier_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    const uint8_t *nul = memchr(data, 0, size);
    size_t rn = nul ? (size_t)(nul - data) : size;
    const char *subj = nul ? (const char *)nul + 1 : "";
    size_t sn = nul ? size - rn - 1 : 0;

    char lit[256];
    size_t ln = st_regex_required_literal(st_str((const char *)data, rn), lit, sizeof lit);
    if (ln > sizeof lit) abort();

    /* the same regex as a line filter: {a="b"} |~ `regex` (backquotes: no escapes to undo) */
    if (memchr(data, '`', rn) != NULL) return 0;
    st_buf_t q = ST_BUF_INIT;
    if (st_buf_puts(&q, "{a=\"b\"} |~ `") < 0 || st_buf_append(&q, data, rn) < 0 ||
        st_buf_puts(&q, "`") < 0) {
        st_buf_free(&q);
        return 0;
    }
    st_logql_expr_t *e = NULL;
    char err[512];
    if (st_logql_parse(q.data, q.len, &e, err, sizeof err) == 0) {
        st_pipeline_t *p;
        char perr[256];
        if (st_pipeline_compile(&e->log.pipeline, NULL, &p, perr) == 0) {
            /* keep_line uses the literal (and the literal fast paths); PCRE2 alone is the reference */
            static pcre2_match_data *md;
            if (md == NULL && (md = pcre2_match_data_create(1, NULL)) == NULL) abort();
            bool kept = st_pipeline_keep_line(p, st_str(subj, sn));
            const st_logql_pipeline_t *pl = &e->log.pipeline;
            bool re = pl->n == 1 && pl->v[0].line.n_alts == 1 && pl->v[0].line.alts[0].re != NULL
                          ? pcre2_match(pl->v[0].line.alts[0].re, (PCRE2_SPTR)(subj ? subj : ""), sn, 0, 0,
                                        md, NULL) >= 0
                          : kept;
            if (kept != re) {
                fprintf(stderr, "regex %.*s: keep_line %d, PCRE2 %d, literal \"%.*s\"\n", (int)rn,
                        (const char *)data, kept, re, (int)ln, lit);
                abort();
            }
            if (re && ln && (sn < ln || memmem(subj, sn, lit, ln) == NULL)) {
                fprintf(stderr, "regex %.*s matches a line without its literal \"%.*s\"\n", (int)rn,
                        (const char *)data, (int)ln, lit);
                abort();
            }
            st_pipeline_free(p);
        }
        st_logql_free(e);
    }
    st_buf_free(&q);
    return 0;
}
