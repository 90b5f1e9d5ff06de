/* json_bench.c: decodes the same Loki push bodies with common/json.c, jansson and yajl (Debian's JSON
 * libraries), touching every string, to show why Strata parses JSON itself (docs/performance.md).
 * Usage: strata-json-bench [lines] */
#include "common/buf.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

static size_t sink;

static void walk_ours(const st_buf_t *b)
{
    st_json_t j;
    st_buf_t s1 = ST_BUF_INIT, s2 = ST_BUF_INIT;
    st_json_init(&j, b->data, b->len);
    st_str_t k, v;
    st_json_object_begin(&j);
    while (st_json_next_key(&j, &k, &s1) == 1) {
        st_json_array_begin(&j);
        while (st_json_next_elem(&j) == 1) {
            st_json_object_begin(&j);
            while (st_json_next_key(&j, &k, &s1) == 1) {
                if (st_str_eqc(k, "stream")) {
                    st_json_object_begin(&j);
                    while (st_json_next_key(&j, &k, &s1) == 1) {
                        st_json_string(&j, &v, &s2);
                        sink += v.n;
                    }
                } else {
                    st_json_array_begin(&j);
                    while (st_json_next_elem(&j) == 1) {
                        st_json_array_begin(&j);
                        while (st_json_next_elem(&j) == 1) {
                            st_json_string(&j, &v, &s2);
                            sink += v.n;
                        }
                    }
                }
            }
        }
    }
    st_buf_free(&s1);
    st_buf_free(&s2);
}

static void walk_jansson(const st_buf_t *b)
{
    json_error_t err;
    json_t *root = json_loadb(b->data, b->len, 0, &err);
    json_t *streams = json_object_get(root, "streams");
    size_t i, k;
    json_t *s, *e;
    json_array_foreach(streams, i, s)
    {
        json_array_foreach(json_object_get(s, "values"), k, e) sink += json_string_length(json_array_get(e, 1));
    }
    json_decref(root);
}

static int y_string(void *ctx, const unsigned char *s, size_t n)
{
    (void)ctx;
    (void)s;
    sink += n;
    return 1;
}

static void walk_yajl(const st_buf_t *b)
{
    static yajl_callbacks cb = {.yajl_string = y_string};
    yajl_handle h = yajl_alloc(&cb, NULL, NULL);
    yajl_parse(h, (const unsigned char *)b->data, b->len);
    yajl_complete_parse(h);
    yajl_free(h);
}

int main(int argc, char **argv)
{
    long lines = argc > 1 ? atol(argv[1]) : 200000;
    int nb = (int)(lines / 1000);
    st_buf_t *bodies = calloc((size_t)nb, sizeof *bodies);
    size_t total = 0;
    for (int b = 0; b < nb; b++) {
        st_buf_puts(&bodies[b], "{\"streams\":[");
        for (int h = 0; h < 8; h++) {
            st_buf_printf(&bodies[b], "%s{\"stream\":{\"job\":\"HDFS\",\"host\":\"host-%d\"},\"values\":[", h ? "," : "", h);
            for (int i = 0; i < 125; i++) {
                st_buf_printf(&bodies[b], "%s[\"%lld\",", i ? "," : "", 1724240000000000000LL + i);
                st_json_put_cstr(&bodies[b], "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for "
                                             "block blk_38865049064139660 terminating \"quoted\" path=/a/b");
                st_buf_putc(&bodies[b], ']');
            }
            st_buf_puts(&bodies[b], "]}");
        }
        st_buf_puts(&bodies[b], "]}");
        total += bodies[b].len;
    }
    struct {
        const char *name;
        void (*fn)(const st_buf_t *);
    } impl[] = {{"strata common/json.c", walk_ours}, {"jansson (DOM)", walk_jansson}, {"yajl (callbacks)", walk_yajl}};
    printf("%-22s %10s  (%d bodies, %.1f MB, %ld lines)\n", "parser", "MB/s", nb, total / 1e6, lines);
    for (int k = 0; k < 3; k++) {
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            int64_t t0 = st_mono_ns();
            for (int b = 0; b < nb; b++) impl[k].fn(&bodies[b]);
            double s = (double)(st_mono_ns() - t0) / 1e9;
            if (s < best) best = s;
        }
        printf("%-22s %10.0f\n", impl[k].name, total / best / 1e6);
    }
    return sink == 0;
}
