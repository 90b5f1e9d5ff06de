/* cw_selftest.c: strata-cw-selftest, a command-line driver of the CloudWatch Logs client for the Python
 * tests (moto_server and the scripted fault server). One command per run; the result is one JSON object
 * on stdout ({"rc":0,...} or {"rc":<code>,"err":"...","code":"<__type>","status":<http>,"attempts":n});
 * the exit status is 0 only when rc is 0. Commands:
 *   put GROUP STREAM [--now MS] [--max-events N] [--max-bytes N] [--no-create]
 *       events from stdin, one per line "<timestamp ms> <message>" (\n, \t and \\ escapes in the message)
 *   gen GROUP STREAM COUNT SIZE [--ts MS] [--step MS]   COUNT generated events of SIZE bytes
 *   get GROUP STREAM [--start MS] [--end MS]            every event (GetLogEvents paging)
 *   filter GROUP [--prefix P]                           FilterLogEvents paging
 *   groups [PREFIX] | streams GROUP [PREFIX] | create GROUP [STREAM] | retention GROUP DAYS (0: delete)
 * Environment: STRATA_CW_ENDPOINT, STRATA_CW_REGION, STRATA_CW_MAX_ATTEMPTS, STRATA_CW_RETRY_BASE_MS;
 * credentials from the AWS chain. */
#include "common/err.h"
#include "common/json.h"
#include "objstore/objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static int finish(int rc, const st_s3_error_t *e)
{
    jnum("rc", rc);
    if (rc != 0) jstr("err", st_s3_strerror(rc));
    if (e) {
        jstr("code", e->code);
        jstr("message", e->message);
        jnum("status", e->http_status);
        jnum("attempts", e->attempts);
    }
    st_buf_putc(&out, '}');
    printf("%s\n", st_buf_cstr(&out));
    st_buf_free(&out);
    return rc == 0 ? 0 : 1;
}

static long long envll(const char *n, long long def)
{
    const char *v = getenv(n);
    return v && v[0] ? strtoll(v, NULL, 10) : def;
}

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

static long long optll(int argc, char **argv, const char *name, long long def)
{
    const char *v = opt(argc, argv, name);
    return v ? strtoll(v, NULL, 10) : def;
}

static void put_result(const st_cw_put_result_t *r)
{
    jnum("requests", (long long)r->requests);
    jnum("sent", (long long)r->sent);
    jnum("sent_bytes", (long long)r->sent_bytes);
    jnum("accepted", (long long)r->accepted);
    jnum("rejected_too_old", (long long)r->rejected_too_old);
    jnum("rejected_too_new", (long long)r->rejected_too_new);
    jnum("rejected_expired", (long long)r->rejected_expired);
    jkey("skipped");
    st_buf_putc(&out, '{');
    for (int i = 1; i < ST_CW_SKIP_COUNT; i++) {
        st_buf_printf(&out, "%s\"%s\":%llu", i > 1 ? "," : "", st_cw_skip_name(i),
                      (unsigned long long)r->skipped[i]);
    }
    st_buf_putc(&out, '}');
}

typedef struct {
    size_t batches;
    st_buf_t sizes; /* events per batch, as JSON numbers */
} batches_t;

static int after_cb(void *arg, const st_cw_batch_t *b, const st_cw_put_result_t *so_far)
{
    (void)so_far;
    batches_t *x = arg;
    if (b->batch < 0) return 0;
    x->batches++;
    st_buf_printf(&x->sizes, "%s%zu", x->sizes.len ? "," : "", b->nevents);
    return 0;
}

static int do_put(st_cw_client_t *c, const char *group, const char *stream, st_cw_put_event_t *ev, size_t n,
                  int argc, char **argv)
{
    st_cw_limits_t lim = {.max_events = (size_t)optll(argc, argv, "--max-events", 0),
                          .max_bytes = (size_t)optll(argc, argv, "--max-bytes", 0)};
    batches_t bx = {0};
    st_cw_put_opts_t o = {.now_ms = optll(argc, argv, "--now", 0),
                          .limits = &lim,
                          .create = !flag(argc, argv, "--no-create"),
                          .after = after_cb,
                          .arg = &bx};
    st_cw_put_result_t res;
    memset(&res, 0, sizeof res);
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    int rc = st_cw_put_log_events(c, group, stream, ev, n, &o, &res, &err);
    put_result(&res);
    jnum("batches", (long long)bx.batches);
    jkey("batch_sizes");
    st_buf_printf(&out, "[%s]", bx.sizes.data ? st_buf_cstr(&bx.sizes) : "");
    st_buf_free(&bx.sizes);
    return finish(rc, &err);
}

/* Unescapes \n, \t, \\ in place; returns the new length. */
static size_t unescape(char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            s[w++] = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
            s[w++] = s[i];
        }
    }
    return w;
}

static int cmd_put(st_cw_client_t *c, int argc, char **argv)
{
    if (argc < 2) return finish(-EINVAL, NULL);
    st_buf_t in = ST_BUF_INIT;
    char tmp[65536];
    size_t r;
    while ((r = fread(tmp, 1, sizeof tmp, stdin)) > 0) st_buf_append(&in, tmp, r);
    size_t cap = 1024, n = 0;
    st_cw_put_event_t *ev = malloc(cap * sizeof *ev);
    char *p = in.data, *end = in.data ? in.data + in.len : NULL;
    while (p && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *sp = memchr(p, ' ', (size_t)(le - p));
        if (sp != NULL) {
            if (n == cap) {
                cap *= 2;
                ev = realloc(ev, cap * sizeof *ev);
            }
            ev[n].timestamp_ms = strtoll(p, NULL, 10);
            size_t mn = unescape(sp + 1, (size_t)(le - sp - 1));
            ev[n].message = st_str(sp + 1, mn);
            n++;
        }
        p = nl ? nl + 1 : end;
    }
    int rc = do_put(c, argv[0], argv[1], ev, n, argc, argv);
    free(ev);
    st_buf_free(&in);
    return rc;
}

static int cmd_gen(st_cw_client_t *c, int argc, char **argv)
{
    if (argc < 4) return finish(-EINVAL, NULL);
    size_t count = (size_t)strtoull(argv[2], NULL, 10), size = (size_t)strtoull(argv[3], NULL, 10);
    long long ts = optll(argc, argv, "--ts", 0), step = optll(argc, argv, "--step", 1);
    if (ts == 0) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        ts = (long long)now.tv_sec * 1000 - (long long)count * step;
    }
    char *text = malloc(count * (size + 1) + 1);
    st_cw_put_event_t *ev = malloc((count ? count : 1) * sizeof *ev);
    for (size_t i = 0; i < count; i++) {
        char *m = text + i * (size + 1);
        char head[32];
        int hn = snprintf(head, sizeof head, "%zu ", i);
        for (size_t k = 0; k < size; k++) m[k] = k < (size_t)hn ? head[k] : (char)('a' + (i + k) % 26);
        ev[i].timestamp_ms = ts + (long long)i * step;
        ev[i].message = st_str(m, size);
    }
    int rc = do_put(c, argv[0], argv[1], ev, count, argc, argv);
    free(ev);
    free(text);
    return rc;
}

static int events_cb(void *arg, const st_cw_events_t *page)
{
    (void)arg;
    for (size_t i = 0; i < page->n; i++) {
        st_buf_puts(&out, out.len > 1 && out.data[out.len - 1] != '[' ? "," : "");
        st_buf_printf(&out, "[%lld,", (long long)page->v[i].timestamp_ms);
        st_json_put_str(&out, page->v[i].message);
        if (page->v[i].stream.n) {
            st_buf_putc(&out, ',');
            st_json_put_str(&out, page->v[i].stream);
        }
        st_buf_putc(&out, ']');
    }
    return 0;
}

static int cmd_get(st_cw_client_t *c, int argc, char **argv)
{
    if (argc < 2) return finish(-EINVAL, NULL);
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    jkey("events");
    st_buf_putc(&out, '[');
    int rc = st_cw_read_stream(c, argv[0], argv[1], optll(argc, argv, "--start", 0),
                               optll(argc, argv, "--end", 0), 100000, events_cb, NULL, &err);
    st_buf_putc(&out, ']');
    return finish(rc, &err);
}

static int cmd_filter(st_cw_client_t *c, int argc, char **argv)
{
    if (argc < 1) return finish(-EINVAL, NULL);
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    jkey("events");
    st_buf_putc(&out, '[');
    char *token = NULL;
    int rc = 0, pages = 0;
    do {
        st_cw_read_opts_t o = {.stream_prefix = opt(argc, argv, "--prefix"), .next_token = token};
        st_cw_events_t page;
        rc = st_cw_filter_log_events(c, argv[0], &o, &page, &err);
        free(token);
        token = NULL;
        if (rc == 0) {
            events_cb(NULL, &page);
            token = page.next_token;
            page.next_token = NULL;
        }
        st_cw_events_free(&page);
    } while (rc == 0 && token != NULL && ++pages < 10000);
    free(token);
    st_buf_putc(&out, ']');
    return finish(rc, &err);
}

static int group_cb(void *arg, const st_cw_group_t *g)
{
    (void)arg;
    st_buf_puts(&out, out.data[out.len - 1] == '[' ? "" : ",");
    st_buf_puts(&out, "{\"name\":");
    st_json_put_cstr(&out, g->name);
    st_buf_printf(&out, ",\"retention\":%d}", g->retention_days);
    return 0;
}

static int stream_cb(void *arg, const st_cw_stream_t *s)
{
    (void)arg;
    st_buf_puts(&out, out.data[out.len - 1] == '[' ? "" : ",");
    st_json_put_cstr(&out, s->name);
    return 0;
}

int main(int argc, char **argv)
{
    st_buf_putc(&out, '{');
    if (argc < 2) return finish(-EINVAL, NULL);
    st_cw_config_t cfg = {.endpoint = getenv("STRATA_CW_ENDPOINT"),
                          .region = getenv("STRATA_CW_REGION"),
                          .max_attempts = (int)envll("STRATA_CW_MAX_ATTEMPTS", 0),
                          .retry_base_ms = (long)envll("STRATA_CW_RETRY_BASE_MS", 0),
                          .request_timeout_ms = (long)envll("STRATA_CW_TIMEOUT_MS", 0)};
    st_cw_client_t *c = NULL;
    int rc = st_cw_client_create(&cfg, &c);
    if (rc < 0) return finish(rc, NULL);
    const char *cmd = argv[1];
    int ac = argc - 2;
    char **av = argv + 2;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    if (strcmp(cmd, "put") == 0) {
        rc = cmd_put(c, ac, av);
    } else if (strcmp(cmd, "gen") == 0) {
        rc = cmd_gen(c, ac, av);
    } else if (strcmp(cmd, "get") == 0) {
        rc = cmd_get(c, ac, av);
    } else if (strcmp(cmd, "filter") == 0) {
        rc = cmd_filter(c, ac, av);
    } else if (strcmp(cmd, "groups") == 0) {
        jkey("groups");
        st_buf_putc(&out, '[');
        int r = st_cw_list_log_groups(c, ac > 0 ? av[0] : NULL, group_cb, NULL, &err);
        st_buf_putc(&out, ']');
        rc = finish(r, &err);
    } else if (strcmp(cmd, "streams") == 0 && ac >= 1) {
        jkey("streams");
        st_buf_putc(&out, '[');
        int r = st_cw_list_log_streams(c, av[0], ac > 1 ? av[1] : NULL, stream_cb, NULL, &err);
        st_buf_putc(&out, ']');
        rc = finish(r, &err);
    } else if (strcmp(cmd, "create") == 0 && ac >= 1) {
        int r = st_cw_create_log_group(c, av[0], &err);
        if (r == 0 && ac > 1) r = st_cw_create_log_stream(c, av[0], av[1], &err);
        rc = finish(r, &err);
    } else if (strcmp(cmd, "retention") == 0 && ac >= 2) {
        int days = atoi(av[1]);
        int r = days ? st_cw_put_retention_policy(c, av[0], days, &err)
                     : st_cw_delete_retention_policy(c, av[0], &err);
        rc = finish(r, &err);
    } else {
        rc = finish(-EINVAL, NULL);
    }
    st_cw_client_destroy(c);
    return rc;
}
