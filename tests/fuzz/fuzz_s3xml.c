/* fuzz_s3xml.c: libFuzzer target for the objstore parsers that see bytes from the network or disk:
 * the XML reader, S3 error/list/delete/initiate/complete/retention bodies, STS credentials,
 * x-amz-restore, HTTP and ISO dates, and the shared credentials INI reader. Oracles: text views stay
 * inside the document, parsed lists are consistent, and escape -> parse round-trips any text. */
#include "common/err.h"
#include "objstore/objstore.h"
#include "objstore/objstore_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "fuzz_s3xml: check failed at line %d: %s\n", __LINE__, #x);                      \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static void xml_tree(const char *p, size_t n)
{
    st_xml_doc_t d = {0};
    if (st_xml_parse(&d, p, n) == 0) {
        FCHECK(d.n >= 2 && d.nodes[0].first_child == 1);
        for (size_t i = 0; i < d.n; i++) {
            st_str_t t = st_xml_text(&d, (int)i);
            FCHECK(t.n <= d.text.len);
            FCHECK(t.n == 0 || (t.p >= d.text.data && t.p + t.n <= d.text.data + d.text.len));
            FCHECK(d.nodes[i].name_n <= n);
            if (i > 0) FCHECK(d.nodes[i].parent >= 0 && (size_t)d.nodes[i].parent < i);
        }
        (void)st_xml_path(&d, 0, "A/B/C");
    }
    st_xml_free(&d);
}

static void roundtrip(const char *p, size_t n)
{
    if (memchr(p, '\0', n) != NULL) return;
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "<r>");
    st_xml_escape(&b, p, n);
    st_buf_puts(&b, "</r>");
    st_xml_doc_t d = {0};
    FCHECK(st_xml_parse(&d, b.data, b.len) == 0);
    st_str_t t = st_xml_text(&d, 1);
    FCHECK(t.n == n && (n == 0 || memcmp(t.p, p, n) == 0));
    st_xml_free(&d);
    st_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    xml_tree(p, size);
    roundtrip(p, size);

    st_s3_error_t e;
    memset(&e, 0, sizeof e);
    if (st_s3_parse_error(p, size, &e) == 0) FCHECK(strlen(e.code) < sizeof e.code);

    st_s3_list_page_t page;
    if (st_s3_parse_list(p, size, &page) == 0) {
        for (size_t i = 0; i < page.n; i++) FCHECK(page.entries[i].key != NULL);
        for (size_t i = 0; i < page.nprefixes; i++) FCHECK(page.prefixes[i] != NULL);
        st_s3_list_page_free(&page);
    }

    st_s3_delete_result_t dr = {0};
    st_s3_parse_delete_result(p, size, &dr);
    for (size_t i = 0; i < dr.nerrors; i++) FCHECK(dr.errors[i].key != NULL);
    st_s3_delete_result_free(&dr);

    char *id = NULL;
    if (st_s3_parse_initiate(p, size, &id) == 0) FCHECK(id != NULL && id[0] != '\0');
    free(id);

    char etag[80], crc[16];
    st_s3_parse_etag_result(p, size, etag, crc, &e);
    char mode[16];
    time_t t;
    st_s3_parse_retention(p, size, mode, &t);
    st_aws_creds_t c;
    memset(&c, 0, sizeof c);
    if (st_aws_parse_sts_credentials(p, size, &c) == 0) FCHECK(c.access_key[0] != '\0');

    st_s3_restore_t r;
    if (st_s3_parse_restore(p, size, &r) == 0) FCHECK(r.present);
    st_s3_parse_http_date(p, size, &t);
    st_s3_parse_iso8601(p, size, &t);
    uint8_t out[64];
    int bn = st_base64_decode(p, size, out, sizeof out);
    FCHECK(bn <= (int)sizeof out);

    st_aws_profile_t prof;
    memset(&prof, 0, sizeof prof);
    if (st_aws_profile_parse(p, size, size > 0 && (data[0] & 1), "default", &prof) == 0)
        FCHECK(strlen(prof.access_key) < sizeof prof.access_key);

    st_buf_t q = ST_BUF_INIT;
    if (size < 4096) {
        char *z = strndup(p, size);
        if (z != NULL) {
            st_sigv4_canonical_query(&q, z);
            st_buf_reset(&q);
            st_sigv4_canonical_path(&q, z, ST_SIGV4_S3);
            st_buf_reset(&q);
            st_sigv4_canonical_path(&q, z, ST_SIGV4_NORMALIZE);
            free(z);
        }
    }
    st_buf_free(&q);
    return 0;
}
