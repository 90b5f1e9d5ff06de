/* test_creds.c: shared credentials/config file parsing and the offline parts of the credential chain
 * (environment, profile files, static provider, explicit profile skipping the environment). Network
 * sources (STS, IMDS, container) are covered by the Python tests in tests/objstore. */
#include "testutil.h"

#include <sys/stat.h>

#include "common/err.h"
#include "objstore/objstore.h"

#define S(lit) lit, sizeof(lit) - 1

static const char creds_ini[] = "# shared credentials\n"
                                "[default]\n"
                                "aws_access_key_id = AKIDDEFAULT\n"
                                "aws_secret_access_key=secret/with+chars=\n"
                                "\n"
                                "[prod]  \n"
                                "  aws_access_key_id   =   AKIDPROD  \r\n"
                                "aws_secret_access_key = prodsecret\n"
                                "aws_session_token = FwoGZXIvYXdzEJr//////////wEaD\n"
                                "; comment\n"
                                "aws_access_key_id = IGNORED_SECOND_VALUE\n";

static const char config_ini[] = "[default]\n"
                                 "region = eu-central-1\n"
                                 "[profile prod]\n"
                                 "region = us-west-2\n"
                                 "s3 =\n"
                                 "  max_concurrent_requests = 20\n"
                                 "[profile irsa]\n"
                                 "role_arn = arn:aws:iam::123456789012:role/strata\n"
                                 "web_identity_token_file = /var/run/secrets/token\n"
                                 "role_session_name = strata-pod\n"
                                 "[prod]\n"
                                 "region = wrong-section-syntax-for-config\n";

static void test_ini(void **state)
{
    (void)state;
    st_aws_profile_t p;
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(creds_ini), false, "default", &p), 0);
    assert_string_equal(p.access_key, "AKIDDEFAULT");
    assert_string_equal(p.secret_key, "secret/with+chars=");
    assert_string_equal(p.session_token, "");
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(creds_ini), false, "prod", &p), 0);
    assert_string_equal(p.access_key, "AKIDPROD");
    assert_string_equal(p.session_token, "FwoGZXIvYXdzEJr//////////wEaD");
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(creds_ini), false, "nope", &p), ST_ENOTFOUND);

    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(config_ini), true, "prod", &p), 0);
    assert_string_equal(p.region, "us-west-2"); /* [prod] without "profile" is not the prod profile */
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(config_ini), true, "default", &p), 0);
    assert_string_equal(p.region, "eu-central-1");
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(S(config_ini), true, "irsa", &p), 0);
    assert_string_equal(p.role_arn, "arn:aws:iam::123456789012:role/strata");
    assert_string_equal(p.web_identity_token_file, "/var/run/secrets/token");
    assert_string_equal(p.role_session_name, "strata-pod");

    static const char *const bad[] = {"[default\nx=1\n", "[default]\njust words\n", "[default]\n=value\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&p, 0, sizeof p);
        assert_int_equal(st_aws_profile_parse(bad[i], strlen(bad[i]), false, "default", &p), ST_EPARSE);
    }
    /* over-long values are cut, never overflowed */
    st_buf_t b = ST_BUF_INIT;
    st_buf_puts(&b, "[default]\naws_access_key_id = ");
    for (int i = 0; i < 1000; i++) st_buf_putc(&b, 'K');
    st_buf_putc(&b, '\n');
    memset(&p, 0, sizeof p);
    assert_int_equal(st_aws_profile_parse(b.data, b.len, false, "default", &p), 0);
    assert_int_equal(strlen(p.access_key), sizeof p.access_key - 1);
    st_buf_free(&b);
}

static char *dir;

static char *write_file(const char *name, const char *text)
{
    char *path = malloc(4200);
    snprintf(path, 4200, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static void clear_env(void)
{
    static const char *const vars[] = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                       "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE",
                                       "AWS_CONFIG_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                       "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                                       "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CREDENTIAL_EXPIRATION"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    setenv("HOME", dir, 1);
}

static void test_chain_offline(void **state)
{
    (void)state;
    dir = st_test_tmpdir("creds");
    assert_non_null(dir);
    clear_env();
    char *cf = write_file("credentials", creds_ini);
    char *gf = write_file("config", config_ini);

    st_aws_profile_t prof;
    assert_int_equal(st_aws_profile_load(cf, gf, "prod", &prof), 0);
    assert_string_equal(prof.access_key, "AKIDPROD");
    assert_string_equal(prof.region, "us-west-2");
    assert_int_equal(st_aws_profile_load(cf, "/nonexistent/config", "prod", &prof), 0);
    assert_int_equal(st_aws_profile_load("/nonexistent/a", "/nonexistent/b", "prod", &prof), ST_ENOTFOUND);

    st_aws_creds_provider_t *p;
    st_aws_creds_t c;
    /* nothing anywhere */
    assert_int_equal(st_aws_creds_provider_create(NULL, &p), 0);
    assert_int_equal(st_aws_creds_get(p, &c), ST_S3_EAUTH);
    st_aws_creds_provider_destroy(p);

    /* environment first, with the legacy token name and an expiration */
    setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SECURITY_TOKEN", "legacy-token", 1);
    setenv("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z", 1);
    setenv("AWS_SHARED_CREDENTIALS_FILE", cf, 1);
    assert_int_equal(st_aws_creds_provider_create(NULL, &p), 0);
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.source, "env");
    assert_string_equal(c.access_key, "AKIDENV");
    assert_string_equal(c.session_token, "legacy-token");
    assert_int_equal(c.expiration, 4070908800);
    st_aws_creds_provider_destroy(p);

    /* a profile chosen in the options skips the environment (botocore's rule) */
    st_aws_creds_opts_t o = {.profile = "prod", .credentials_file = cf, .config_file = gf};
    assert_int_equal(st_aws_creds_provider_create(&o, &p), 0);
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.source, "profile");
    assert_string_equal(c.access_key, "AKIDPROD");
    st_aws_creds_invalidate(p); /* re-read from the same source */
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.access_key, "AKIDPROD");
    st_aws_creds_provider_destroy(p);

    /* AWS_PROFILE through the environment with no env keys */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_PROFILE", "default", 1);
    assert_int_equal(st_aws_creds_provider_create(NULL, &p), 0);
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.access_key, "AKIDDEFAULT");
    assert_string_equal(c.session_token, "");
    st_aws_creds_provider_destroy(p);
    /* ~/.aws/credentials is the default location */
    unsetenv("AWS_SHARED_CREDENTIALS_FILE");
    assert_int_equal(mkdir(dir, 0700) == 0 || errno == EEXIST, 1);
    char awsdir[4200];
    snprintf(awsdir, sizeof awsdir, "%s/.aws", dir);
    mkdir(awsdir, 0700);
    char *home_cf = write_file(".aws/credentials", "[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key=h\n");
    assert_int_equal(st_aws_creds_provider_create(NULL, &p), 0);
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.access_key, "AKIDHOME");
    st_aws_creds_provider_destroy(p);

    /* static provider */
    st_aws_creds_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.access_key, sizeof s.access_key, "AKIDSTATIC");
    snprintf(s.secret_key, sizeof s.secret_key, "x");
    assert_int_equal(st_aws_creds_provider_create_static(&s, &p), 0);
    st_aws_creds_invalidate(p);
    assert_int_equal(st_aws_creds_get(p, &c), 0);
    assert_string_equal(c.source, "static");
    st_aws_creds_clear(&c);
    assert_int_equal(c.secret_key[0], 0);
    st_aws_creds_provider_destroy(p);
    st_aws_creds_provider_destroy(NULL);
    memset(&s, 0, sizeof s);
    assert_int_equal(st_aws_creds_provider_create_static(&s, &p), -EINVAL);

    free(cf);
    free(gf);
    free(home_cf);
    st_test_rmrf(dir);
    free(dir);
}

static void test_client_config(void **state)
{
    (void)state;
    st_aws_creds_t s;
    memset(&s, 0, sizeof s);
    snprintf(s.access_key, sizeof s.access_key, "AK");
    snprintf(s.secret_key, sizeof s.secret_key, "SK");
    st_aws_creds_provider_t *p;
    assert_int_equal(st_aws_creds_provider_create_static(&s, &p), 0);
    st_s3_client_t *c;
    st_s3_config_t bad[] = {{.endpoint = "127.0.0.1:9000", .creds = p},
                            {.endpoint = "ftp://x", .creds = p},
                            {.endpoint = "http://", .creds = p},
                            {.endpoint = "http://u@h", .creds = p},
                            {.part_size = 64 << 20, .multipart_threshold = 1 << 20, .creds = p}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(st_s3_client_create(&bad[i], &c), -EINVAL);
    st_s3_config_t ok = {.region = "eu-west-1", .creds = p};
    assert_int_equal(st_s3_client_create(&ok, &c), 0);
    st_s3_client_set_time(c, 1700000000);
    char *url = NULL;
    assert_int_equal(st_s3_presign(c, "GET", "my-bucket", "a b/c", 600, &url), 0);
    /* virtual-hosted on AWS by default, key encoded once, slash kept */
    assert_true(strncmp(url, "https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c?X-Amz-Algorithm=AWS4-HMAC-SHA256",
                        84) == 0);
    assert_non_null(strstr(url, "X-Amz-Credential=AK%2F20231114%2Feu-west-1%2Fs3%2Faws4_request"));
    free(url);
    /* dotted bucket names fall back to path-style (TLS wildcard certificates) */
    assert_int_equal(st_s3_presign(c, "GET", "my.bucket", "k", 600, &url), 0);
    assert_true(strncmp(url, "https://s3.eu-west-1.amazonaws.com/my.bucket/k?", 47) == 0);
    free(url);
    st_s3_client_destroy(c);
    st_s3_config_t ep = {.endpoint = "http://127.0.0.1:80/", .addressing = ST_S3_ADDR_VIRTUAL, .creds = p};
    assert_int_equal(st_s3_client_create(&ep, &c), 0);
    assert_int_equal(st_s3_presign(c, "PUT", "bkt", "k", 60, &url), 0);
    assert_true(strncmp(url, "http://bkt.127.0.0.1/k?", 23) == 0);
    free(url);
    assert_int_equal(st_s3_presign(c, "PUT", "bkt", "k", 0, &url), -EINVAL);
    st_s3_client_destroy(c);
    st_s3_client_destroy(NULL);
    st_aws_creds_provider_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini),
        cmocka_unit_test(test_chain_offline),
        cmocka_unit_test(test_client_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
