/* fuzz_cwjson.c: libFuzzer target for the CloudWatch Logs response parsers (objstore/cwlogs.c): error
 * bodies, PutLogEvents results, DescribeLogGroups / DescribeLogStreams pages, GetLogEvents /
 * FilterLogEvents pages. Oracles: parsed names are NUL-terminated and views stay inside the page's
 * own text; events that parse feed the batch planner, whose plan must respect every AWS limit. */
#include "common/err.h"
#include "objstore/objstore.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FCHECK(x)                                                                                            \
    do {                                                                                                     \
        if (!(x)) {                                                                                          \
            fprintf(stderr, "fuzz_cwjson: check failed at line %d: %s\n", __LINE__, #x);                     \
            abort();                                                                                         \
        }                                                                                                    \
    } while (0)

static bool inside(const st_cw_events_t *e, st_str_t s)
{
    if (s.n == 0) return true;
    return e->text.data && s.p >= e->text.data && s.p + s.n <= e->text.data + e->text.len;
}

static void plan(const st_cw_events_t *e)
{
    if (e->n == 0) return;
    st_cw_put_event_t *ev = calloc(e->n, sizeof *ev);
    int32_t *out = calloc(e->n, sizeof *out);
    FCHECK(ev && out);
    for (size_t i = 0; i < e->n; i++) ev[i] = (st_cw_put_event_t){e->v[i].timestamp_ms, e->v[i].message};
    st_cw_limits_t lim = {.max_events = 3, .max_bytes = 200};
    int64_t now = e->v[0].timestamp_ms;
    size_t nb = st_cw_plan_batches(ev, e->n, now, &lim, out);
    int32_t cur = -1;
    size_t cnt = 0, bytes = 0;
    int64_t first = 0, last = 0;
    for (size_t i = 0; i < e->n; i++) {
        if (out[i] < 0) {
            FCHECK(-out[i] >= 1 && -out[i] < ST_CW_SKIP_COUNT);
            continue;
        }
        if (out[i] != cur) {
            FCHECK(out[i] == cur + 1);
            cur = out[i];
            cnt = bytes = 0;
            first = ev[i].timestamp_ms;
        } else {
            FCHECK(ev[i].timestamp_ms >= last);
        }
        cnt++;
        bytes += st_cw_message_size(ev[i].message) + ST_CW_EVENT_OVERHEAD;
        last = ev[i].timestamp_ms;
        FCHECK(cnt <= 3 && bytes <= 200 && last - first < ST_CW_MAX_SPAN_MS);
    }
    FCHECK((size_t)(cur + 1) == nb);
    st_cw_sort_events(ev, e->n);
    for (size_t i = 1; i < e->n; i++) FCHECK(ev[i - 1].timestamp_ms <= ev[i].timestamp_ms);
    free(ev);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    st_s3_error_t err;
    memset(&err, 0, sizeof err);
    if (st_cw_parse_error(p, size, &err) == 0)
        FCHECK(err.code[0] != '\0' && strlen(err.code) < sizeof err.code);

    st_cw_rejected_t rej;
    if (st_cw_parse_put_result(p, size, &rej) == 0)
        FCHECK(strlen(rej.expected_token) < sizeof rej.expected_token);

    st_cw_groups_t g;
    if (st_cw_parse_groups(p, size, &g) == 0) {
        for (size_t i = 0; i < g.n; i++) FCHECK(g.v[i].name != NULL && g.v[i].retention_days >= 0);
    } else {
        FCHECK(g.n == 0 && g.v == NULL);
    }
    st_cw_groups_free(&g);

    st_cw_streams_t s;
    if (st_cw_parse_streams(p, size, &s) == 0) {
        for (size_t i = 0; i < s.n; i++) FCHECK(s.v[i].name != NULL);
    }
    st_cw_streams_free(&s);

    st_cw_events_t e;
    if (st_cw_parse_events(p, size, &e) == 0) {
        for (size_t i = 0; i < e.n; i++) {
            FCHECK(inside(&e, e.v[i].message) && inside(&e, e.v[i].stream) && inside(&e, e.v[i].event_id));
            FCHECK(st_cw_message_size(e.v[i].message) >= e.v[i].message.n);
        }
        plan(&e);
    }
    st_cw_events_free(&e);

    if (size <= 600) {
        st_str_t n = st_str(p, size);
        (void)st_cw_group_name_valid(n);
        (void)st_cw_stream_name_valid(n);
    }
    return 0;
}
