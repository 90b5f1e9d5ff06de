/* s3_selftest.c: strata-s3-selftest, a command-line driver of the objstore client for the Python tests
 * (moto and the fault server). One command per run; the result is one JSON object on stdout
 * ({"rc":0,...} or {"rc":<code>,"err":"...","code":"<S3 code>","status":<http>,"attempts":n}); the exit
 * status is 0 only when rc is 0. Configuration comes from the environment:
 *   STRATA_S3_ENDPOINT, STRATA_S3_REGION, STRATA_S3_ADDRESSING (path|virtual), STRATA_S3_MAX_ATTEMPTS,
 *   STRATA_S3_RETRY_BASE_MS, STRATA_S3_TIMEOUT_MS, STRATA_S3_PART_SIZE, STRATA_S3_THRESHOLD,
 *   STRATA_S3_FIXED_TIME (signing clock, for signer comparisons); credentials from the AWS chain. */
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "objstore/objstore.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static st_buf_t out;

static void jkey(const char *k)
{
    st_buf_puts(&out, out.len > 1 ? "," : "");
    st_json_put_cstr(&out, k);
    st_buf_putc(&out, ':');
}
static void jstr(const char *k, const char *v)
{
    jkey(k);
    st_json_put_cstr(&out, v ? v : "");
}
static void jnum(const char *k, long long v)
{
    jkey(k);
    st_buf_printf(&out, "%lld", v);
}
static void jbool(const char *k, bool v)
{
    jkey(k);
    st_buf_puts(&out, v ? "true" : "false");
}

static int finish(int rc, const st_s3_error_t *e)
{
    jnum("rc", rc);
    if (rc != 0) jstr("err", st_s3_strerror(rc));
    if (e) {
        jstr("code", e->code);
        jstr("message", e->message);
        jnum("status", e->http_status);
        jnum("attempts", e->attempts);
        jstr("request_id", e->request_id);
    }
    st_buf_putc(&out, '}');
    printf("%s\n", st_buf_cstr(&out));
    st_buf_free(&out);
    return rc == 0 ? 0 : 1;
}

static long envl(const char *n, long def)
{
    const char *v = getenv(n);
    return v && v[0] ? strtol(v, NULL, 10) : def;
}

/* --name value options after the positional arguments */
static const char *opt(int argc, char **argv, const char *name)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0) return argv[i + 1];
    return NULL;
}
static bool flag(int argc, char **argv, const char *name)
{
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return true;
    return false;
}

static void info_json(const st_s3_object_info_t *i)
{
    jnum("size", (long long)i->size);
    jstr("etag", i->etag);
    jstr("storage_class", i->storage_class);
    jstr("version_id", i->version_id);
    jstr("checksum_crc32", i->checksum_crc32);
    jbool("restore_present", i->restore.present);
    jbool("restore_ongoing", i->restore.ongoing);
    jnum("restore_expiry", (long long)i->restore.expiry);
    jstr("lock_mode", i->lock_mode);
    jnum("lock_until", (long long)i->lock_retain_until);
    jbool("legal_hold", i->legal_hold);
    jnum("last_modified", (long long)i->last_modified);
    jkey("meta");
    st_buf_putc(&out, '{');
    for (int k = 0; k < i->nmeta; k++) {
        if (k) st_buf_putc(&out, ',');
        st_json_put_cstr(&out, i->meta[k].name);
        st_buf_putc(&out, ':');
        st_json_put_cstr(&out, i->meta[k].value);
    }
    st_buf_putc(&out, '}');
}

typedef struct {
    FILE *f;
    long n;
} list_state_t;

static int list_cb(const st_s3_list_entry_t *e, void *arg)
{
    list_state_t *s = arg;
    fprintf(s->f, "%s\t%llu\t%s\n", e->key, (unsigned long long)e->size, e->storage_class);
    s->n++;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: strata-s3-selftest <command> args...\n"
                    "  create-bucket B [--lock]        versioning B\n"
                    "  put B K FILE [--class C] [--lock-mode M --lock-until T] [--meta k=v] [--fd]\n"
                    "  get B K OUTFILE [--offset O --length L] [--version V]\n"
                    "  head B K [--version V]          copy SB SK DB DK [--class C] [--replace-meta k=v]\n"
                    "  restore B K DAYS TIER           list B OUTFILE [--prefix P] [--max-keys N] [--delimiter D]\n"
                    "  delete B K [--version V] [--bypass]   delete-objects B KEYFILE (key[\\tversion] per line)\n"
                    "  retention-put B K MODE UNTIL [--version V]   retention-get B K [--version V]\n"
                    "  presign METHOD B K EXPIRES      sign METHOD PATH QUERY PAYLOADHASH HDRFILE (Name: value lines)\n"
                    "  creds                           metrics\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    if (getenv("STRATA_LOG_LEVEL")) st_log_set_level(getenv("STRATA_LOG_LEVEL"));
    st_buf_putc(&out, '{');
    const char *cmd = argv[1];
    char **a = argv + 2;
    int n = argc - 2;
    st_s3_error_t e = {0};
    int rc;

    if (strcmp(cmd, "sign") == 0) {
        /* signs a request the way the client does (S3 rules), with static env credentials */
        if (n < 5) return usage(), 2;
        size_t hn = 0;
        st_kv_t h[32];
        char *lines[32];
        FILE *f = fopen(a[4], "r");
        char line[8192];
        while (f && hn < 32 && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            char *colon = strchr(line, ':');
            if (colon == NULL) continue;
            lines[hn] = strdup(line);
            lines[hn][colon - line] = '\0';
            char *v = lines[hn] + (colon - line) + 1;
            while (*v == ' ') v++;
            h[hn] = (st_kv_t){lines[hn], v};
            hn++;
        }
        if (f) fclose(f);
        st_sigv4_request_t sr = {.method = a[0], .path = a[1], .query = a[2], .headers = h, .nheaders = hn,
                                 .payload_hash = a[3]};
        st_sigv4_params_t sp = {.access_key = getenv("AWS_ACCESS_KEY_ID"),
                                .secret_key = getenv("AWS_SECRET_ACCESS_KEY"),
                                .session_token = getenv("AWS_SESSION_TOKEN"),
                                .region = getenv("STRATA_S3_REGION") ? getenv("STRATA_S3_REGION") : "us-east-1",
                                .service = "s3", .now = (time_t)envl("STRATA_S3_FIXED_TIME", 0),
                                .flags = ST_SIGV4_S3};
        st_sigv4_t s;
        rc = st_sigv4_sign(&sr, &sp, &s);
        if (rc == 0) {
            jstr("canonical_request", st_buf_cstr(&s.canonical_request));
            jstr("string_to_sign", st_buf_cstr(&s.string_to_sign));
            jstr("signature", s.signature);
            jstr("authorization", st_buf_cstr(&s.authorization));
        }
        st_sigv4_free(&s);
        for (size_t i = 0; i < hn; i++) free(lines[i]);
        return finish(rc, NULL);
    }

    if (strcmp(cmd, "creds") == 0) {
        st_aws_creds_provider_t *p;
        st_aws_creds_opts_t co = {.timeout_ms = envl("STRATA_S3_TIMEOUT_MS", 2000)};
        rc = st_aws_creds_provider_create(&co, &p);
        st_aws_creds_t c;
        if (rc == 0) rc = st_aws_creds_get(p, &c);
        if (rc == 0) {
            /* tests only: print the key id and whether secret/token exist, never the secret itself */
            jstr("access_key", c.access_key);
            jbool("has_secret", c.secret_key[0] != '\0');
            jbool("has_token", c.session_token[0] != '\0');
            jnum("expiration", (long long)c.expiration);
            jstr("source", c.source);
            /* a second get is served from the cache */
            st_aws_creds_t c2;
            rc = st_aws_creds_get(p, &c2);
            jbool("cached_same", rc == 0 && strcmp(c.access_key, c2.access_key) == 0);
            st_aws_creds_clear(&c2);
        }
        st_aws_creds_clear(&c);
        st_aws_creds_provider_destroy(p);
        return finish(rc, NULL);
    }

    st_s3_config_t cfg = {
        .region = getenv("STRATA_S3_REGION"),
        .endpoint = getenv("STRATA_S3_ENDPOINT"),
        .max_attempts = (int)envl("STRATA_S3_MAX_ATTEMPTS", 0),
        .retry_base_ms = envl("STRATA_S3_RETRY_BASE_MS", 0),
        .request_timeout_ms = envl("STRATA_S3_TIMEOUT_MS", 0),
        .connect_timeout_ms = envl("STRATA_S3_CONNECT_TIMEOUT_MS", 0),
        .part_size = (size_t)envl("STRATA_S3_PART_SIZE", 0),
        .multipart_threshold = (size_t)envl("STRATA_S3_THRESHOLD", 0),
    };
    const char *addr = getenv("STRATA_S3_ADDRESSING");
    if (addr && strcmp(addr, "path") == 0) cfg.addressing = ST_S3_ADDR_PATH;
    if (addr && strcmp(addr, "virtual") == 0) cfg.addressing = ST_S3_ADDR_VIRTUAL;
    st_s3_client_t *c;
    rc = st_s3_client_create(&cfg, &c);
    if (rc < 0) return finish(rc, NULL);
    if (envl("STRATA_S3_FIXED_TIME", 0)) st_s3_client_set_time(c, (time_t)envl("STRATA_S3_FIXED_TIME", 0));

    if (strcmp(cmd, "create-bucket") == 0 && n >= 1) {
        rc = st_s3_create_bucket(c, a[0], flag(n, a, "--lock"), &e);
    } else if (strcmp(cmd, "versioning") == 0 && n >= 1) {
        rc = st_s3_put_bucket_versioning(c, a[0], true, &e);
    } else if (strcmp(cmd, "put") == 0 && n >= 3) {
        st_s3_put_opts_t po = {.storage_class = opt(n, a, "--class")};
        po.lock_mode = opt(n, a, "--lock-mode");
        if (opt(n, a, "--lock-until")) po.lock_retain_until = (time_t)strtoll(opt(n, a, "--lock-until"), NULL, 10);
        st_kv_t meta[1];
        char mk[128];
        const char *m = opt(n, a, "--meta");
        if (m && strchr(m, '=')) {
            snprintf(mk, sizeof mk, "%.*s", (int)(strchr(m, '=') - m), m);
            meta[0] = (st_kv_t){mk, strchr(m, '=') + 1};
            po.meta = meta;
            po.nmeta = 1;
        }
        int fd = open(a[2], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            rc = -errno;
        } else {
            st_s3_put_result_t res;
            if (flag(n, a, "--fd")) {
                rc = st_s3_put_object_fd(c, a[0], a[1], fd, 0, (uint64_t)st.st_size, &po, &res, &e);
            } else {
                char *buf = malloc((size_t)st.st_size + 1);
                ssize_t got = 0;
                while (buf && got < st.st_size) {
                    ssize_t r = read(fd, buf + got, (size_t)(st.st_size - got));
                    if (r <= 0) break;
                    got += r;
                }
                rc = buf && got == st.st_size ? st_s3_put_object(c, a[0], a[1], buf, (size_t)got, &po, &res, &e)
                                              : -EIO;
                free(buf);
            }
            if (rc == 0) {
                jstr("etag", res.etag);
                jstr("version_id", res.version_id);
                jnum("crc32", res.crc32);
                jbool("crc32_verified", res.crc32_verified);
                jnum("parts", res.parts);
            }
        }
        if (fd >= 0) close(fd);
    } else if (strcmp(cmd, "get") == 0 && n >= 3) {
        st_s3_get_opts_t go = {.version_id = opt(n, a, "--version")};
        if (opt(n, a, "--offset")) {
            go.range = true;
            go.offset = strtoull(opt(n, a, "--offset"), NULL, 10);
            go.length = opt(n, a, "--length") ? strtoull(opt(n, a, "--length"), NULL, 10) : 0;
        }
        st_s3_object_info_t info;
        if (flag(n, a, "--fd")) {
            int fd = open(a[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            uint64_t got = 0;
            rc = fd < 0 ? -errno : st_s3_get_object_fd(c, a[0], a[1], &go, fd, 0, &got, &info, &e);
            if (fd >= 0) close(fd);
        } else {
            st_buf_t body = ST_BUF_INIT;
            rc = st_s3_get_object(c, a[0], a[1], &go, &body, &info, &e);
            if (rc == 0) {
                FILE *f = fopen(a[2], "wb");
                if (f == NULL || fwrite(body.data ? body.data : "", 1, body.len, f) != body.len) rc = -EIO;
                if (f) fclose(f);
            }
            st_buf_free(&body);
        }
        if (rc == 0) info_json(&info);
    } else if (strcmp(cmd, "head") == 0 && n >= 2) {
        st_s3_object_info_t info;
        rc = st_s3_head_object(c, a[0], a[1], opt(n, a, "--version"), &info, &e);
        if (rc == 0) info_json(&info);
    } else if (strcmp(cmd, "copy") == 0 && n >= 4) {
        st_s3_copy_opts_t co = {.storage_class = opt(n, a, "--class")};
        st_kv_t meta[1];
        char mk[128];
        const char *m = opt(n, a, "--replace-meta");
        if (m && strchr(m, '=')) {
            snprintf(mk, sizeof mk, "%.*s", (int)(strchr(m, '=') - m), m);
            meta[0] = (st_kv_t){mk, strchr(m, '=') + 1};
            co.replace_metadata = true;
            co.meta = meta;
            co.nmeta = 1;
        }
        st_s3_put_result_t res;
        rc = st_s3_copy_object(c, a[0], a[1], a[2], a[3], &co, &res, &e);
        if (rc == 0) {
            jstr("etag", res.etag);
            jstr("version_id", res.version_id);
        }
    } else if (strcmp(cmd, "restore") == 0 && n >= 4) {
        st_s3_tier_t tier = strcmp(a[3], "Bulk") == 0        ? ST_S3_TIER_BULK
                            : strcmp(a[3], "Expedited") == 0 ? ST_S3_TIER_EXPEDITED
                                                             : ST_S3_TIER_STANDARD;
        bool started = false;
        rc = st_s3_restore_object(c, a[0], a[1], NULL, atoi(a[2]), tier, &started, &e);
        if (rc == 0) jbool("started", started);
    } else if (strcmp(cmd, "list") == 0 && n >= 2) {
        st_s3_list_opts_t lo = {.prefix = opt(n, a, "--prefix"), .delimiter = opt(n, a, "--delimiter"),
                                .max_keys = opt(n, a, "--max-keys") ? atoi(opt(n, a, "--max-keys")) : 0};
        list_state_t ls = {fopen(a[1], "w"), 0};
        if (ls.f == NULL) {
            rc = -errno;
        } else {
            st_s3_list_page_t first;
            rc = st_s3_list_objects(c, a[0], &lo, &first, &e);
            if (rc == 0) {
                jbool("first_truncated", first.truncated);
                jnum("first_n", (long long)first.n);
                st_s3_list_page_free(&first);
                rc = st_s3_list_all(c, a[0], &lo, list_cb, &ls, &e);
            }
            fclose(ls.f);
            jnum("count", ls.n);
            jnum("requests", (long long)st_counter_value(st_counter(
                                 "strata_s3_requests_total", "", "op=\"ListObjectsV2\",code=\"200\"")));
        }
    } else if (strcmp(cmd, "delete") == 0 && n >= 2) {
        rc = st_s3_delete_object(c, a[0], a[1], opt(n, a, "--version"), flag(n, a, "--bypass"), &e);
    } else if (strcmp(cmd, "delete-objects") == 0 && n >= 2) {
        FILE *f = fopen(a[1], "r");
        size_t cap = 0, cnt = 0;
        st_s3_object_id_t *ids = NULL;
        char line[2048];
        while (f && fgets(line, sizeof line, f)) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '\0') continue;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 256;
                ids = realloc(ids, cap * sizeof *ids);
            }
            char *tab = strchr(line, '\t');
            if (tab) *tab = '\0';
            ids[cnt].key = strdup(line);
            ids[cnt].version_id = tab ? strdup(tab + 1) : NULL;
            cnt++;
        }
        if (f) fclose(f);
        st_s3_delete_result_t res;
        rc = st_s3_delete_objects(c, a[0], ids, cnt, flag(n, a, "--bypass"), &res, &e);
        if (rc == 0) {
            jnum("deleted", (long long)res.ndeleted);
            jnum("errors", (long long)res.nerrors);
            jkey("failed");
            st_buf_putc(&out, '[');
            for (size_t i = 0; i < res.nerrors; i++) {
                st_buf_printf(&out, "%s{\"key\":", i ? "," : "");
                st_json_put_cstr(&out, res.errors[i].key);
                st_buf_puts(&out, ",\"code\":");
                st_json_put_cstr(&out, res.errors[i].code);
                st_buf_putc(&out, '}');
            }
            st_buf_putc(&out, ']');
            st_s3_delete_result_free(&res);
        }
        for (size_t i = 0; i < cnt; i++) {
            free((char *)ids[i].key);
            free((char *)ids[i].version_id);
        }
        free(ids);
    } else if (strcmp(cmd, "retention-put") == 0 && n >= 4) {
        rc = st_s3_put_object_retention(c, a[0], a[1], opt(n, a, "--version"), a[2], (time_t)strtoll(a[3], NULL, 10),
                                        flag(n, a, "--bypass"), &e);
    } else if (strcmp(cmd, "retention-get") == 0 && n >= 2) {
        char mode[16];
        time_t until;
        rc = st_s3_get_object_retention(c, a[0], a[1], opt(n, a, "--version"), mode, &until, &e);
        if (rc == 0) {
            jstr("mode", mode);
            jnum("until", (long long)until);
        }
    } else if (strcmp(cmd, "presign") == 0 && n >= 4) {
        char *url = NULL;
        rc = st_s3_presign(c, a[0], a[1], a[2], atol(a[3]), &url);
        if (rc == 0) jstr("url", url);
        free(url);
    } else if (strcmp(cmd, "metrics") == 0) {
        st_buf_t m = ST_BUF_INIT;
        rc = st_metrics_render(&m);
        jstr("text", st_buf_cstr(&m));
        st_buf_free(&m);
    } else {
        usage();
        st_s3_client_destroy(c);
        return 2;
    }
    if (getenv("STRATA_S3_METRICS")) {
        st_buf_t m = ST_BUF_INIT;
        st_metrics_render(&m);
        jstr("metrics", st_buf_cstr(&m));
        st_buf_free(&m);
    }
    st_s3_client_destroy(c);
    return finish(rc, &e);
}
