/* test_parse.c: the XML reader and the S3/STS response parsers (errors, listings, delete results,
 * multipart/copy results, retention, STS credentials), x-amz-restore, dates and base64. */
#include "testutil.h"

#include "common/err.h"
#include "objstore/objstore.h"
#include "objstore/objstore_int.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_xml_reader(void **state)
{
    (void)state;
    st_xml_doc_t d = {0};
    const char *x = "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->"
                    "<s3:Root xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" a='1>2'>"
                    "<Key>a&amp;b &lt;c&gt; &quot;&apos; &#65;&#x263A;</Key><Empty/><Empty></Empty>"
                    "<CD><![CDATA[<raw & stuff>]]></CD><Mixed>text<Child>v</Child>tail</Mixed></s3:Root>  \n";
    assert_int_equal(st_xml_parse(&d, x, strlen(x)), 0);
    int root = d.nodes[0].first_child;
    assert_true(st_str_eqc(st_str(d.nodes[root].name, d.nodes[root].name_n), "Root"));
    assert_true(st_str_eqc(st_xml_text(&d, st_xml_child(&d, root, "Key")), "a&b <c> \"' A\xE2\x98\xBA"));
    int e = st_xml_child(&d, root, "Empty");
    assert_true(e >= 0 && st_xml_text(&d, e).n == 0);
    assert_true(st_xml_next(&d, e, "Empty") >= 0);
    assert_true(st_str_eqc(st_xml_text(&d, st_xml_child(&d, root, "CD")), "<raw & stuff>"));
    assert_true(st_str_eqc(st_xml_text(&d, st_xml_path(&d, root, "Mixed/Child")), "v"));
    assert_int_equal(st_xml_text(&d, st_xml_child(&d, root, "Mixed")).n, 0); /* no mixed content */
    assert_int_equal(st_xml_child(&d, root, "Missing"), -1);
    assert_int_equal(st_xml_path(&d, root, "Mixed/Nope/X"), -1);

    static const char *const bad[] = {
        "",                          "   ",
        "<a>",                       "<a></b>",
        "<a><b></a></b>",            "<a>&bogus;</a>",
        "<a>&#0;</a>",               "<a>&#xD800;</a>",
        "<a>&#x110000;</a>",         "<a>& x</a>",
        "<a b=\"1></a>",             "<a b=1></a>",
        "<a></a><b></b>",            "text<a/>",
        "<a/>trailing",              "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        "<a><![CDATA[x</a>",         "<a><!-- x </a>",
        "<?xml x",                   "<>",
        "</a>",                      "<a/ >",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_xml_doc_t b = {0};
        int rc = st_xml_parse(&b, bad[i], strlen(bad[i]));
        if (rc != ST_EPARSE) fail_msg("accepted or wrong error %d for: %s", rc, bad[i]);
        st_xml_free(&b);
    }
    /* NUL bytes are never valid XML (and would cut keys short) */
    assert_int_equal(st_xml_parse(&d, "<a>x\0y</a>", 10), ST_EPARSE);
    /* depth limit */
    st_buf_t deep = ST_BUF_INIT;
    for (int i = 0; i < ST_XML_MAX_DEPTH + 1; i++) st_buf_puts(&deep, "<a>");
    for (int i = 0; i < ST_XML_MAX_DEPTH + 1; i++) st_buf_puts(&deep, "</a>");
    assert_int_equal(st_xml_parse(&d, deep.data, deep.len), ST_EPARSE);
    st_buf_free(&deep);
    st_xml_free(&d);

    st_buf_t esc = ST_BUF_INIT;
    assert_int_equal(st_xml_escape(&esc, S("a<b>&\"'\x01z")), 0);
    assert_string_equal(st_buf_cstr(&esc), "a&lt;b&gt;&amp;&quot;&apos;&#x1;z");
    st_buf_free(&esc);
}

static void test_error_body(void **state)
{
    (void)state;
    st_s3_error_t e = {0};
    assert_int_equal(st_s3_parse_error(S("<?xml version=\"1.0\"?><Error><Code>InvalidObjectState</Code>"
                                         "<Message>The operation is not valid for the object's storage class"
                                         "</Message><StorageClass>GLACIER</StorageClass><RequestId>RID1"
                                         "</RequestId><HostId>h</HostId></Error>"),
                                       &e),
                     0);
    assert_string_equal(e.code, "InvalidObjectState");
    assert_string_equal(e.request_id, "RID1");
    assert_non_null(strstr(e.message, "storage class"));
    memset(&e, 0, sizeof e);
    assert_int_equal(st_s3_parse_error(S("<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken"
                                         "</Code><Message>m</Message></Error><RequestId>sts-1</RequestId>"
                                         "</ErrorResponse>"),
                                       &e),
                     0);
    assert_string_equal(e.code, "InvalidIdentityToken");
    assert_string_equal(e.request_id, "sts-1");
    assert_int_equal(st_s3_parse_error(S("<html>502 Bad Gateway</html>"), &e), ST_EPARSE);
    assert_int_equal(st_s3_parse_error(S("not xml"), &e), ST_EPARSE);
    /* long messages are cut, not overflowed */
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "<Error><Code>");
    for (int i = 0; i < 500; i++) st_buf_putc(&b, 'C');
    st_buf_puts(&b, "</Code></Error>");
    assert_int_equal(st_s3_parse_error(b.data, b.len, &e), 0);
    assert_int_equal(strlen(e.code), sizeof e.code - 1);
    st_buf_free(&b);
}

static void test_list_result(void **state)
{
    (void)state;
    st_s3_list_page_t p;
    const char *x = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
                    "<Prefix>logs%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><EncodingType>url"
                    "</EncodingType><IsTruncated>true</IsTruncated><Contents><Key>logs/a+b%26c.txt</Key>"
                    "<LastModified>2026-01-02T03:04:05.000Z</LastModified><ETag>&quot;abc&quot;</ETag>"
                    "<Size>1234</Size><StorageClass>GLACIER</StorageClass></Contents><Contents><Key>logs/%F0%9F%98"
                    "%80</Key><Size>0</Size></Contents><CommonPrefixes><Prefix>logs/sub%2F</Prefix>"
                    "</CommonPrefixes><NextContinuationToken>1/ab+c==</NextContinuationToken></ListBucketResult>";
    assert_int_equal(st_s3_parse_list(x, strlen(x), &p), 0);
    assert_int_equal(p.n, 2);
    assert_string_equal(p.entries[0].key, "logs/a b&c.txt");
    assert_int_equal(p.entries[0].size, 1234);
    assert_string_equal(p.entries[0].etag, "\"abc\"");
    assert_string_equal(p.entries[0].storage_class, "GLACIER");
    assert_int_equal(p.entries[0].last_modified, 1767323045);
    assert_string_equal(p.entries[1].key, "logs/\xF0\x9F\x98\x80");
    assert_string_equal(p.entries[1].storage_class, "STANDARD");
    assert_int_equal(p.nprefixes, 1);
    assert_string_equal(p.prefixes[0], "logs/sub/");
    assert_true(p.truncated);
    assert_string_equal(p.next_token, "1/ab+c=="); /* tokens are never url-decoded */
    st_s3_list_page_free(&p);
    /* without encoding-type the key is taken literally */
    assert_int_equal(st_s3_parse_list(S("<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a+%41"
                                        "</Key><Size>1</Size></Contents></ListBucketResult>"),
                                      &p),
                     0);
    assert_string_equal(p.entries[0].key, "a+%41");
    assert_false(p.truncated);
    assert_null(p.next_token);
    st_s3_list_page_free(&p);
    assert_int_equal(st_s3_parse_list(S("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>"),
                                      &p),
                     ST_EPARSE);
    assert_int_equal(st_s3_parse_list(S("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents>"
                                        "</ListBucketResult>"),
                                      &p),
                     ST_EPARSE);
    assert_int_equal(st_s3_parse_list(S("<Error><Code>x</Code></Error>"), &p), ST_EPARSE);
    assert_int_equal(st_s3_parse_list(S("<ListBucketResult><EncodingType>url</EncodingType><Contents><Key>a%00b"
                                        "</Key><Size>1</Size></Contents></ListBucketResult>"),
                                      &p),
                     ST_EPARSE);
}

static void test_delete_and_results(void **state)
{
    (void)state;
    st_s3_delete_result_t r = {0};
    assert_int_equal(st_s3_parse_delete_result(S("<DeleteResult><Deleted><Key>a</Key></Deleted><Error><Key>sox/1"
                                                 "</Key><VersionId>v1</VersionId><Code>AccessDenied</Code><Message>"
                                                 "locked</Message></Error><Error><Key>k&amp;2</Key><Code>"
                                                 "InternalError</Code></Error></DeleteResult>"),
                                               &r),
                     0);
    assert_int_equal(r.ndeleted, 1);
    assert_int_equal(r.nerrors, 2);
    assert_string_equal(r.errors[0].key, "sox/1");
    assert_string_equal(r.errors[0].version_id, "v1");
    assert_string_equal(r.errors[0].code, "AccessDenied");
    assert_string_equal(r.errors[1].key, "k&2");
    assert_null(r.errors[1].version_id);
    /* a second batch appends */
    assert_int_equal(st_s3_parse_delete_result(S("<DeleteResult><Error><Key>z</Key><Code>C</Code></Error>"
                                                 "</DeleteResult>"),
                                               &r),
                     0);
    assert_int_equal(r.nerrors, 3);
    st_s3_delete_result_free(&r);

    char *id = NULL;
    assert_int_equal(st_s3_parse_initiate(S("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key>"
                                            "<UploadId>VXBsb2FkIElE</UploadId></InitiateMultipartUploadResult>"),
                                          &id),
                     0);
    assert_string_equal(id, "VXBsb2FkIElE");
    free(id);
    assert_int_equal(st_s3_parse_initiate(S("<InitiateMultipartUploadResult/>"), &id), ST_EPARSE);

    char etag[80], crc[16];
    st_s3_error_t e = {0};
    assert_int_equal(st_s3_parse_etag_result(S("\n  \n<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag>"
                                               "<ChecksumCRC32>AAAAAA==-3</ChecksumCRC32>"
                                               "</CompleteMultipartUploadResult>"),
                                             etag, crc, &e),
                     0);
    assert_string_equal(etag, "\"x-3\"");
    assert_string_equal(crc, "AAAAAA==-3");
    assert_int_equal(st_s3_parse_etag_result(S("<CopyObjectResult><ETag>e</ETag></CopyObjectResult>"), etag, crc, &e),
                     0);
    assert_int_equal(st_s3_parse_etag_result(S("<Error><Code>InternalError</Code><Message>We encountered"
                                               "</Message></Error>"),
                                             etag, crc, &e),
                     ST_S3_EREMOTE);
    assert_string_equal(e.code, "InternalError");

    char mode[16];
    time_t until;
    assert_int_equal(st_s3_parse_retention(S("<Retention><Mode>GOVERNANCE</Mode><RetainUntilDate>2030-01-01T00:00:00"
                                             ".000Z</RetainUntilDate></Retention>"),
                                           mode, &until),
                     0);
    assert_string_equal(mode, "GOVERNANCE");
    assert_int_equal(until, 1893456000);
    assert_int_equal(st_s3_parse_retention(S("<Retention><Mode>X</Mode><RetainUntilDate>soon</RetainUntilDate>"
                                             "</Retention>"),
                                           mode, &until),
                     ST_EPARSE);

    st_aws_creds_t c;
    memset(&c, 0, sizeof c);
    assert_int_equal(st_aws_parse_sts_credentials(
                         S("<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
                           "<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>"
                           "<SecretAccessKey>sec</SecretAccessKey><SessionToken>tok/+=</SessionToken><Expiration>"
                           "2026-11-26T13:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                           "</AssumeRoleWithWebIdentityResponse>"),
                         &c),
                     0);
    assert_string_equal(c.access_key, "ASIA1");
    assert_string_equal(c.secret_key, "sec");
    assert_string_equal(c.session_token, "tok/+=");
    assert_int_equal(c.expiration, 1795698000);
    assert_int_equal(st_aws_parse_sts_credentials(S("<R><X><Credentials><AccessKeyId>a</AccessKeyId></Credentials>"
                                                    "</X></R>"),
                                                  &c),
                     ST_EPARSE);
}

static void test_restore_header(void **state)
{
    (void)state;
    st_s3_restore_t r;
    assert_int_equal(st_s3_parse_restore(S("ongoing-request=\"true\""), &r), 0);
    assert_true(r.present && r.ongoing);
    assert_int_equal(r.expiry, 0);
    assert_int_equal(st_s3_parse_restore(S("ongoing-request=\"false\", expiry-date=\"Fri, 21 Dec 2012 00:00:00 GMT\""),
                                         &r),
                     0);
    assert_false(r.ongoing);
    assert_int_equal(r.expiry, 1356048000);
    /* any order, extra attributes, no space after the comma */
    assert_int_equal(st_s3_parse_restore(S("expiry-date=\"Sat, 1 Jan 2000 00:00:00 GMT\",ongoing-request=\"false\","
                                           "restore-tier=\"Bulk\""),
                                         &r),
                     0);
    assert_int_equal(r.expiry, 946684800);
    static const char *const bad[] = {"", "ongoing-request", "ongoing-request=\"maybe\"", "expiry-date=\"x\"",
                                      "ongoing-request=\"true", "ongoing-request=\"false\", expiry-date=\"junk\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(st_s3_parse_restore(bad[i], strlen(bad[i]), &r), ST_EPARSE);
}

static void test_dates_and_base64(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(st_s3_parse_http_date(S("Thu, 26 Nov 2026 12:00:00 GMT"), &t), 0);
    assert_int_equal(t, 1795694400);
    assert_int_equal(st_s3_parse_http_date(S("Thu, 26 Nov 2026 12:00:00 UTC"), &t), ST_EPARSE);
    assert_int_equal(st_s3_parse_http_date(S("26 Nov 2026 12:00:00 GMT"), &t), ST_EPARSE);
    assert_int_equal(st_s3_parse_iso8601(S(" 2026-11-26T12:00:00+01:00 "), &t), 0);
    assert_int_equal(t, 1795690800);
    assert_int_equal(st_s3_parse_iso8601(S("2026-11-26"), &t), ST_EPARSE);

    char b[16];
    st_s3_crc32_b64(0xE8B3AC00u, b);
    assert_string_equal(b, "6LOsAA==");
    uint8_t out[8];
    assert_int_equal(st_base64_decode(S("6LOsAA=="), out, sizeof out), 4);
    assert_int_equal(out[0], 0xE8);
    assert_int_equal(st_base64_decode(S("6LOsAA="), out, sizeof out), -1);
    assert_int_equal(st_base64_decode(S("6L=sAA=="), out, sizeof out), -1);
    assert_int_equal(st_base64_decode(S("AAAAAAAAAAAA"), out, 8), -1);
    st_base64((const uint8_t *)"ab", 2, b);
    assert_string_equal(b, "YWI=");
    assert_string_equal(st_s3_strerror(ST_S3_EARCHIVED), "object is archived (restore it first)");
    assert_string_equal(st_s3_strerror(ST_ENOTFOUND), "not found");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xml_reader),         cmocka_unit_test(test_error_body),
        cmocka_unit_test(test_list_result),        cmocka_unit_test(test_delete_and_results),
        cmocka_unit_test(test_restore_header),     cmocka_unit_test(test_dates_and_base64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
