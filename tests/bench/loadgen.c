/* loadgen.c: the ingest benchmark's load generator. Replays real log lines (the loghub samples in
 * ../shared/data/loghub when present, else generated lines) with fresh timestamps as Loki JSON pushes
 * over several keep-alive connections, and reports lines/s and MB/s. Bodies are built before the clock
 * starts so the generator costs little CPU while measuring.
 *
 * Usage: strata-loadgen -port N [-lines 1000000] [-conns 4] [-batch 1000] [-jobs 16] [-hosts 8]
 *                       [-format json|proto|otlp] [-loghub DIR] [-raw FILE] [-span SECONDS]
 * -format proto sends Loki's protobuf PushRequest in a snappy block (as Alloy/Promtail do), otlp sends
 * OTLP/HTTP protobuf ExportLogsServiceRequest to /otlp/v1/logs; -raw writes the raw lines (for the
 * zstd/rg baselines). jobs x hosts is the number of streams. -span spreads the timestamps over the last
 * SECONDS (default 3600). */
#include "common/buf.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <snappy-c.h>
#include <unistd.h>

typedef struct {
    char **lines;
    size_t n;
    char name[64];
} corpus_t;

static int port = 3100;
static long total_lines = 1000000;
static int conns = 4, batch = 1000, njobs = 16, nhosts = 8;
static long span_s = 3600; /* timestamps spread over the last span_s seconds */
static const char *loghub = "../shared/data/loghub";
static const char *rawfile = NULL;
static const char *format = "json";

/* ---- protobuf wire format, written by hand (no schema compiler needed for a load generator) ---- */

static void pb_varint(st_buf_t *b, uint64_t v) { st_buf_put_uvarint(b, v); }
static void pb_tag(st_buf_t *b, unsigned field, unsigned wire) { pb_varint(b, (uint64_t)field << 3 | wire); }
static void pb_bytes(st_buf_t *b, unsigned field, const void *p, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    st_buf_append(b, p, n);
}
static void pb_msg(st_buf_t *b, unsigned field, const st_buf_t *m) { pb_bytes(b, field, m->data ? m->data : "", m->len); }
static void pb_fixed64(st_buf_t *b, unsigned field, uint64_t v)
{
    pb_tag(b, field, 1);
    st_buf_put_u64le(b, v);
}

static st_buf_t *bodies;
static size_t nbodies;
static _Atomic size_t next_body;
static _Atomic long failures;

static int load_corpora(corpus_t *c, int max)
{
    DIR *d = opendir(loghub);
    int n = 0;
    if (d) {
        struct dirent *e;
        char *names[64];
        int nn = 0;
        while ((e = readdir(d)) != NULL && nn < 64) {
            size_t l = strlen(e->d_name);
            if (l > 7 && strcmp(e->d_name + l - 7, "_2k.log") == 0)
                names[nn++] = strdup(e->d_name);
        }
        closedir(d);
        for (int i = 0; i < nn; i++)
            for (int j = i + 1; j < nn; j++)
                if (strcmp(names[i], names[j]) > 0) {
                    char *t = names[i];
                    names[i] = names[j];
                    names[j] = t;
                }
        for (int i = 0; i < nn && n < max; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", loghub, names[i]);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            corpus_t *cc = &c[n];
            memset(cc, 0, sizeof *cc);
            snprintf(cc->name, sizeof cc->name, "%.*s", (int)(strstr(names[i], "_2k") - names[i]), names[i]);
            char *line = NULL;
            size_t cap = 0;
            ssize_t len;
            size_t capl = 0;
            while ((len = getline(&line, &cap, f)) > 0) {
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
                if (len == 0) continue;
                if (cc->n == capl) {
                    capl = capl ? capl * 2 : 2048;
                    cc->lines = realloc(cc->lines, capl * sizeof *cc->lines);
                }
                cc->lines[cc->n++] = strdup(line);
            }
            free(line);
            fclose(f);
            if (cc->n) n++;
            free(names[i]);
        }
    }
    if (n > 0) return n;
    /* generated fallback: four formats, varied fields */
    for (int j = 0; j < max && j < 16; j++) {
        corpus_t *cc = &c[j];
        memset(cc, 0, sizeof *cc);
        snprintf(cc->name, sizeof cc->name, "gen%d", j);
        cc->n = 2000;
        cc->lines = calloc(cc->n, sizeof *cc->lines);
        for (size_t i = 0; i < cc->n; i++) {
            char buf[512];
            int a = (int)(i * 7 % 1000), b = (int)(i * 13 % 500);
            switch (j % 4) {
            case 0:
                snprintf(buf, sizeof buf,
                         "2026-11-26T10:00:00Z host=node-7 level=info msg=\"request served\" method=GET "
                         "path=/api/v1/items/%d status=200 duration=%dms",
                         a, b);
                break;
            case 1:
                snprintf(buf, sizeof buf, "Nov 26 10:00:00 node-7 sshd[%d]: Accepted publickey for deploy from "
                         "10.%d.3.7 port 51234 ssh2", a, b % 256);
                break;
            case 2:
                snprintf(buf, sizeof buf, "{\"ts\":\"2026-11-26T10:00:00Z\",\"host\":\"node-7\",\"level\":\"warn\","
                         "\"msg\":\"slow query\",\"rows\":%d,\"ms\":%d}", a, b);
                break;
            default:
                snprintf(buf, sizeof buf, "10.0.0.1 - - \"GET /static/%d.js HTTP/1.1\" 200 %d \"-\" \"curl/7.88\"", a, b);
                break;
            }
            cc->lines[i] = strdup(buf);
        }
        n++;
    }
    return n;
}

static void *sender(void *arg)
{
    (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        atomic_fetch_add(&failures, 1);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char hdr[256], resp[4096];
    for (;;) {
        size_t i = atomic_fetch_add(&next_body, 1);
        if (i >= nbodies) break;
        st_buf_t *b = &bodies[i];
        bool js = strcmp(format, "json") == 0, ot = strcmp(format, "otlp") == 0;
        int hn = snprintf(hdr, sizeof hdr, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                          ot ? "/otlp/v1/logs" : "/loki/api/v1/push", js ? "application/json" : "application/x-protobuf",
                          b->len);
        if (write(fd, hdr, (size_t)hn) != hn) break;
        size_t off = 0;
        while (off < b->len) {
            ssize_t w = write(fd, b->data + off, b->len - off);
            if (w <= 0) break;
            off += (size_t)w;
        }
        /* read the response: status line + headers; bodies are empty for 204, short otherwise */
        size_t got = 0;
        for (;;) {
            ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
            if (r <= 0) break;
            got += (size_t)r;
            resp[got] = '\0';
            char *end = strstr(resp, "\r\n\r\n");
            if (end) {
                char *cl = strcasestr(resp, "content-length:");
                size_t blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
                if ((size_t)(end + 4 - resp) + blen <= got) break;
            }
        }
        if (strncmp(resp, "HTTP/1.1 204", 12) != 0) {
            atomic_fetch_add(&failures, 1);
            fprintf(stderr, "push failed: %.200s\n", resp);
        }
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-lines")) total_lines = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "-conns")) conns = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-batch")) batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-jobs")) njobs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-hosts")) nhosts = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-loghub")) loghub = argv[i + 1];
        else if (!strcmp(argv[i], "-raw")) rawfile = argv[i + 1];
        else if (!strcmp(argv[i], "-format")) format = argv[i + 1];
        else if (!strcmp(argv[i], "-span")) span_s = atol(argv[i + 1]);
        else {
            fprintf(stderr, "unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    corpus_t corp[64];
    int nc = load_corpora(corp, 64);
    if (njobs > nc) njobs = nc;
    FILE *raw = rawfile ? fopen(rawfile, "w") : NULL;
    /* Each request: one job, all its hosts, batch lines split across them. */
    long per_req_host = batch / nhosts;
    if (per_req_host < 1) per_req_host = 1;
    long per_req = per_req_host * nhosts;
    nbodies = (size_t)((total_lines + per_req - 1) / per_req);
    bodies = calloc(nbodies, sizeof *bodies);
    int64_t t0 = st_now_ns() - span_s * ST_NS_PER_SEC; /* fresh: the last hour (-span) */
    int64_t step = span_s * ST_NS_PER_SEC / (total_lines > 0 ? total_lines : 1);
    if (step < 1) step = 1;
    size_t *pos = calloc((size_t)njobs * (size_t)nhosts, sizeof *pos);
    for (int j = 0; j < njobs; j++)
        for (int h = 0; h < nhosts; h++) pos[j * nhosts + h] = (size_t)h * 250;
    long emitted = 0;
    uint64_t raw_bytes = 0;
    bool proto = strcmp(format, "proto") == 0, otlp = strcmp(format, "otlp") == 0;
    st_buf_t msg = ST_BUF_INIT, sub = ST_BUF_INIT, ent = ST_BUF_INIT, ts = ST_BUF_INIT, kv = ST_BUF_INIT,
             any = ST_BUF_INIT, scope = ST_BUF_INIT;
    for (size_t b = 0; b < nbodies; b++) {
        int j = (int)(b % (size_t)njobs);
        st_buf_t *o = &bodies[b];
        st_buf_reset(&msg);
        if (!proto && !otlp) st_buf_puts(o, "{\"streams\":[");
        for (int h = 0; h < nhosts; h++) {
            char labels[256];
            snprintf(labels, sizeof labels, "{env=\"bench\", host=\"host-%d\", job=\"%s\"}", h, corp[j].name);
            if (proto) {
                st_buf_reset(&sub);
                pb_bytes(&sub, 1, labels, strlen(labels));
            } else if (otlp) {
                /* ResourceLogs{resource{attributes: service.name=job, service.instance.id=host}, scope_logs{log_records}} */
                st_buf_reset(&sub);
                st_buf_reset(&kv);
                char host[32];
                snprintf(host, sizeof host, "host-%d", h);
                st_buf_t tmp = ST_BUF_INIT;
                pb_bytes(&kv, 1, "service.name", 12);
                st_buf_reset(&any);
                pb_bytes(&any, 1, corp[j].name, strlen(corp[j].name));
                pb_msg(&kv, 2, &any);
                pb_msg(&tmp, 1, &kv);
                st_buf_reset(&kv);
                pb_bytes(&kv, 1, "service.instance.id", 19);
                st_buf_reset(&any);
                pb_bytes(&any, 1, host, strlen(host));
                pb_msg(&kv, 2, &any);
                pb_msg(&tmp, 1, &kv);
                pb_msg(&sub, 1, &tmp); /* resource */
                st_buf_free(&tmp);
                st_buf_reset(&scope);
            } else {
                if (h) st_buf_putc(o, ',');
                st_buf_printf(o, "{\"stream\":{\"job\":\"%s\",\"host\":\"host-%d\",\"env\":\"bench\"},\"values\":[",
                              corp[j].name, h);
            }
            for (long k = 0; k < per_req_host; k++) {
                size_t *p = &pos[j * nhosts + h];
                const char *line = corp[j].lines[*p % corp[j].n];
                (*p)++;
                int64_t t = t0 + (int64_t)emitted * step;
                emitted++;
                size_t ll = strlen(line);
                if (proto) {
                    st_buf_reset(&ent);
                    st_buf_reset(&ts);
                    pb_tag(&ts, 1, 0);
                    pb_varint(&ts, (uint64_t)(t / 1000000000));
                    pb_tag(&ts, 2, 0);
                    pb_varint(&ts, (uint64_t)(t % 1000000000));
                    pb_msg(&ent, 1, &ts);
                    pb_bytes(&ent, 2, line, ll);
                    pb_msg(&sub, 2, &ent);
                } else if (otlp) {
                    st_buf_reset(&ent);
                    pb_fixed64(&ent, 1, (uint64_t)t);
                    st_buf_reset(&any);
                    pb_bytes(&any, 1, line, ll);
                    pb_msg(&ent, 5, &any);
                    pb_msg(&scope, 2, &ent);
                } else {
                    if (k) st_buf_putc(o, ',');
                    st_buf_printf(o, "[\"%lld\",", (long long)t);
                    st_json_put_cstr(o, line);
                    st_buf_putc(o, ']');
                }
                raw_bytes += ll;
                if (raw) {
                    fputs(line, raw);
                    fputc('\n', raw);
                }
            }
            if (proto) pb_msg(&msg, 1, &sub);
            else if (otlp) {
                pb_msg(&sub, 2, &scope);
                pb_msg(&msg, 1, &sub);
            } else st_buf_puts(o, "]}");
        }
        if (proto) {
            size_t cap = snappy_max_compressed_length(msg.len);
            st_buf_reserve(o, cap);
            size_t out = cap;
            if (snappy_compress(msg.data, msg.len, o->data, &out) != SNAPPY_OK) {
                fprintf(stderr, "snappy failed\n");
                return 1;
            }
            o->len = out;
        } else if (otlp) {
            st_buf_append(o, msg.data, msg.len);
        } else {
            st_buf_puts(o, "]}");
        }
    }
    st_buf_free(&msg);
    st_buf_free(&sub);
    st_buf_free(&ent);
    st_buf_free(&ts);
    st_buf_free(&kv);
    st_buf_free(&any);
    st_buf_free(&scope);
    if (raw) fclose(raw);
    uint64_t body_bytes = 0;
    for (size_t b = 0; b < nbodies; b++) body_bytes += bodies[b].len;
    fprintf(stderr, "loadgen: %ld lines (%s corpus, %d jobs x %d hosts = %d streams), %zu %s requests, %.1f MB raw, %.1f MB of bodies\n",
            emitted, nc && strncmp(corp[0].name, "gen", 3) ? "loghub" : "generated", njobs, nhosts, njobs * nhosts, nbodies,
            format, raw_bytes / 1e6, body_bytes / 1e6);
    pthread_t th[64];
    if (conns > 64) conns = 64;
    int64_t s = st_mono_ns();
    for (int i = 0; i < conns; i++) pthread_create(&th[i], NULL, sender, NULL);
    for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
    double secs = (double)(st_mono_ns() - s) / 1e9;
    printf("lines=%ld seconds=%.3f lines_per_sec=%.0f raw_mb_per_sec=%.1f raw_bytes=%llu failures=%ld\n", emitted, secs,
           emitted / secs, raw_bytes / 1e6 / secs, (unsigned long long)raw_bytes, (long)atomic_load(&failures));
    return atomic_load(&failures) ? 1 : 0;
}
