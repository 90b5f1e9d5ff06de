/* cwlogs.c: the CloudWatch Logs client (JSON 1.1 protocol, X-Amz-Target: Logs_20140328.<Op>): request
 * bodies, response parsers, name and retention validation, and PutLogEvents batching within AWS's rules
 * (10,000 events, 1,048,576 bytes counting 26 bytes per event, ascending order, < 24 h span, the 14 d /
 * 2 h acceptance window). Signing, credentials, connections and retries are the S3 executor's
 * (client.c, with service "logs"); nothing here knows about chunks, streams of Strata or policies. */
#include "objstore/objstore_int.h"

#include "common/err.h"
#include "common/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct st_cw_client {
    st_s3_client_t *http; /* owned: the executor, pointed at the Logs endpoint */
};

/* ---- names, retention values ----------------------------------------------------------------------- */

bool st_cw_group_name_valid(st_str_t name)
{
    if (name.n < 1 || name.n > ST_CW_MAX_NAME) return false;
    for (size_t i = 0; i < name.n; i++) {
        char c = name.p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '/' || c == '#' || c == '-';
        if (!ok) return false;
    }
    return true;
}

bool st_cw_stream_name_valid(st_str_t name)
{
    if (name.n < 1 || name.n > ST_CW_MAX_NAME) return false;
    if (memchr(name.p, ':', name.n) || memchr(name.p, '*', name.n) || memchr(name.p, '\0', name.n))
        return false;
    return st_utf8_valid(name);
}

const int st_cw_retention_values[] = {1,   3,   5,   7,   14,   30,   60,   90,   120,  150,  180,
                                      365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653};
const size_t st_cw_nretention_values = sizeof st_cw_retention_values / sizeof st_cw_retention_values[0];

bool st_cw_retention_valid(int days)
{
    for (size_t i = 0; i < st_cw_nretention_values; i++)
        if (st_cw_retention_values[i] == days) return true;
    return false;
}

int st_cw_retention_at_least(int days)
{
    for (size_t i = 0; i < st_cw_nretention_values; i++)
        if (st_cw_retention_values[i] >= days) return st_cw_retention_values[i];
    return st_cw_retention_values[st_cw_nretention_values - 1];
}

const char *st_cw_skip_name(int reason)
{
    switch (reason) {
    case ST_CW_SKIP_TOO_OLD: return "too_old";
    case ST_CW_SKIP_TOO_NEW: return "too_new";
    case ST_CW_SKIP_TOO_LARGE: return "too_large";
    case ST_CW_SKIP_EMPTY: return "empty";
    default: return "unknown";
    }
}

/* ---- messages as CloudWatch counts them ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p (1..4), or 0: the same rules as common/json.c's writer, which
 * turns each byte of an invalid sequence into U+FFFD. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp < 0xE000))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

size_t st_cw_message_size(st_str_t m)
{
    const unsigned char *p = (const unsigned char *)m.p, *end = p + m.n;
    size_t n = 0;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            n++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (k == 0) {
            n += 3;
            p++;
        } else {
            n += k;
            p += k;
        }
    }
    return n;
}

int st_cw_message_normalize(st_str_t m, st_buf_t *out)
{
    const unsigned char *p = (const unsigned char *)m.p, *end = p + m.n, *run = p;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = utf8_seq(p, end);
        if (k > 0) {
            p += k;
            continue;
        }
        ST_TRY(st_buf_append(out, run, (size_t)(p - run)));
        ST_TRY(st_buf_append(out, "\xEF\xBF\xBD", 3));
        p++;
        run = p;
    }
    return st_buf_append(out, run, (size_t)(p - run));
}

/* ---- batching ----------------------------------------------------------------------------------------- */

static st_cw_limits_t limits_of(const st_cw_limits_t *l)
{
    st_cw_limits_t r = l ? *l : (st_cw_limits_t){0};
    if (r.max_events == 0) r.max_events = ST_CW_MAX_BATCH_EVENTS;
    if (r.max_bytes == 0) r.max_bytes = ST_CW_MAX_BATCH_BYTES;
    if (r.overhead == 0) r.overhead = ST_CW_EVENT_OVERHEAD;
    if (r.max_span_ms == 0) r.max_span_ms = ST_CW_MAX_SPAN_MS;
    if (r.max_age_ms == 0) r.max_age_ms = ST_CW_MAX_AGE_MS;
    if (r.max_future_ms == 0) r.max_future_ms = ST_CW_MAX_FUTURE_MS;
    return r;
}

size_t st_cw_plan_batches(const st_cw_put_event_t *ev, size_t n, int64_t now_ms, const st_cw_limits_t *lim,
                          int32_t *out)
{
    st_cw_limits_t L = limits_of(lim);
    size_t nb = 0, cnt = 0, bytes = 0;
    int64_t first = 0, last = 0;
    bool open = false;
    for (size_t i = 0; i < n; i++) {
        int64_t ts = ev[i].timestamp_ms;
        size_t sz = st_cw_message_size(ev[i].message) + L.overhead;
        if (ev[i].message.n == 0) {
            out[i] = -ST_CW_SKIP_EMPTY;
            continue;
        }
        if (sz > L.max_bytes) {
            out[i] = -ST_CW_SKIP_TOO_LARGE;
            continue;
        }
        if (ts < now_ms - L.max_age_ms) {
            out[i] = -ST_CW_SKIP_TOO_OLD;
            continue;
        }
        if (ts > now_ms + L.max_future_ms) {
            out[i] = -ST_CW_SKIP_TOO_NEW;
            continue;
        }
        if (!open || cnt == L.max_events || bytes + sz > L.max_bytes || ts < last ||
            ts - first >= L.max_span_ms) {
            if (open) nb++;
            open = true;
            cnt = 0;
            bytes = 0;
            first = ts;
        }
        out[i] = (int32_t)nb;
        cnt++;
        bytes += sz;
        last = ts;
    }
    return open ? nb + 1 : 0;
}

int st_cw_sort_events(st_cw_put_event_t *ev, size_t n)
{
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) sorted = ev[i - 1].timestamp_ms <= ev[i].timestamp_ms;
    if (sorted) return 0;
    /* bottom-up merge sort: stable, O(n log n), one scratch array */
    st_cw_put_event_t *tmp = malloc(n * sizeof *tmp);
    if (tmp == NULL) return -ENOMEM;
    st_cw_put_event_t *a = ev, *b = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) b[k++] = a[j].timestamp_ms < a[i].timestamp_ms ? a[j++] : a[i++];
            while (i < mid) b[k++] = a[i++];
            while (j < hi) b[k++] = a[j++];
        }
        st_cw_put_event_t *t = a;
        a = b;
        b = t;
    }
    if (a != ev) memcpy(ev, a, n * sizeof *ev);
    free(tmp);
    return 0;
}

/* ---- JSON helpers ------------------------------------------------------------------------------------ */

static bool j_null(st_json_t *j)
{
    if (st_json_peek(j) != ST_JSON_NULL) return false;
    st_json_type_t t;
    st_json_literal(j, &t);
    return true;
}

static int j_i64(st_json_t *j, int64_t *out)
{
    if (j_null(j)) return 0;
    if (st_json_peek(j) != ST_JSON_NUMBER) return st_json_fail(j, "expected a number");
    st_str_t s;
    ST_TRY(st_json_number(j, &s));
    char tmp[48];
    if (s.n >= sizeof tmp) return st_json_fail(j, "number too long");
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0' || errno != 0) {
        double d = strtod(tmp, &end);
        if (*end != '\0' || !(d >= -9.2e18 && d <= 9.2e18)) return st_json_fail(j, "number out of range");
        v = (long long)d;
    }
    *out = v;
    return 0;
}

/* A string (or null: *out = NULL) copied into *out (owned; the old value is freed). */
static int j_strdup(st_json_t *j, st_buf_t *scratch, char **out)
{
    if (j_null(j)) {
        free(*out);
        *out = NULL;
        return 0;
    }
    st_str_t s;
    ST_TRY(st_json_string(j, &s, scratch));
    char *d = st_str_dup(s);
    if (d == NULL) return -ENOMEM;
    free(*out);
    *out = d;
    return 0;
}

static int j_copy(st_json_t *j, st_buf_t *scratch, char *out, size_t cap)
{
    if (j_null(j)) return 0;
    st_str_t s;
    ST_TRY(st_json_string(j, &s, scratch));
    st_copy_str(out, cap, s);
    return 0;
}

static int grow(void **v, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *nv = realloc(*v, nc * elem);
    if (nv == NULL) return -ENOMEM;
    memset((char *)nv + *cap * elem, 0, (nc - *cap) * elem);
    *v = nv;
    *cap = nc;
    return 0;
}

/* ---- response parsers ------------------------------------------------------------------------------ */

int st_cw_parse_error(const char *body, size_t n, st_s3_error_t *out)
{
    st_json_t j;
    st_json_init(&j, body, n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    int rc = st_json_peek(&j) == ST_JSON_OBJECT ? st_json_object_begin(&j) : ST_EPARSE;
    bool found = false;
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (st_str_eqc(k, "__type") || st_str_eqc(k, "code")) {
            char code[256] = "";
            rc = j_copy(&j, &vs, code, sizeof code);
            const char *c = strrchr(code, '#');
            c = c ? c + 1 : code;
            size_t cn = strcspn(c, ":"); /* "Code:http://..." as in x-amzn-ErrorType */
            if (rc == 0 && cn > 0) {
                snprintf(out->code, sizeof out->code, "%.*s", (int)cn, c);
                found = true;
            }
        } else if (st_str_eqc(k, "message") || st_str_eqc(k, "Message")) {
            rc = st_json_peek(&j) == ST_JSON_STRING ? j_copy(&j, &vs, out->message, sizeof out->message)
                                                    : st_json_skip(&j, NULL);
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0) return rc == -ENOMEM ? rc : ST_EPARSE;
    return found ? 0 : ST_EPARSE;
}

int st_cw_parse_put_result(const char *body, size_t n, st_cw_rejected_t *out)
{
    out->too_new_start = out->too_old_end = out->expired_end = -1;
    out->expected_token[0] = '\0';
    size_t i = 0;
    while (i < n && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t')) i++;
    if (i == n) return 0;
    st_json_t j;
    st_json_init(&j, body, n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (j_null(&j)) {
            continue; /* a null member is an absent one */
        } else if (st_str_eqc(k, "rejectedLogEventsInfo")) {
            rc = st_json_object_begin(&j);
            while (rc >= 0) {
                rc = st_json_next_key(&j, &k, &ks);
                if (rc <= 0) break;
                if (st_str_eqc(k, "tooNewLogEventStartIndex"))
                    rc = j_i64(&j, &out->too_new_start);
                else if (st_str_eqc(k, "tooOldLogEventEndIndex"))
                    rc = j_i64(&j, &out->too_old_end);
                else if (st_str_eqc(k, "expiredLogEventEndIndex"))
                    rc = j_i64(&j, &out->expired_end);
                else
                    rc = st_json_skip(&j, NULL);
            }
        } else if (st_str_eqc(k, "expectedSequenceToken") && st_json_peek(&j) == ST_JSON_STRING) {
            rc = j_copy(&j, &vs, out->expected_token, sizeof out->expected_token);
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    if (rc == 0) rc = st_json_finish(&j);
    st_buf_free(&ks);
    st_buf_free(&vs);
    return rc < 0 ? (rc == -ENOMEM ? rc : ST_EPARSE) : 0;
}

void st_cw_group_clear(st_cw_group_t *g)
{
    free(g->name);
    memset(g, 0, sizeof *g);
}

void st_cw_groups_free(st_cw_groups_t *g)
{
    for (size_t i = 0; i < g->n; i++) free(g->v[i].name);
    free(g->v);
    free(g->next_token);
    memset(g, 0, sizeof *g);
}

int st_cw_parse_groups(const char *body, size_t n, st_cw_groups_t *out)
{
    memset(out, 0, sizeof *out);
    st_json_t j;
    st_json_init(&j, body, n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    size_t cap = 0;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (j_null(&j)) {
            continue; /* a null member is an absent one */
        } else if (st_str_eqc(k, "nextToken")) {
            rc = j_strdup(&j, &vs, &out->next_token);
        } else if (st_str_eqc(k, "logGroups")) {
            rc = st_json_array_begin(&j);
            while (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) {
                if ((rc = grow((void **)&out->v, &cap, out->n, sizeof *out->v)) < 0) break;
                st_cw_group_t *g = &out->v[out->n++];
                int64_t rd = 0, sb = 0;
                rc = st_json_object_begin(&j);
                while (rc >= 0) {
                    rc = st_json_next_key(&j, &k, &ks);
                    if (rc <= 0) break;
                    if (st_str_eqc(k, "logGroupName"))
                        rc = j_strdup(&j, &vs, &g->name);
                    else if (st_str_eqc(k, "retentionInDays"))
                        rc = j_i64(&j, &rd);
                    else if (st_str_eqc(k, "creationTime"))
                        rc = j_i64(&j, &g->creation_time_ms);
                    else if (st_str_eqc(k, "storedBytes"))
                        rc = j_i64(&j, &sb);
                    else
                        rc = st_json_skip(&j, NULL);
                }
                g->retention_days = rd > 0 && rd <= 100000 ? (int)rd : 0;
                g->stored_bytes = sb > 0 ? (uint64_t)sb : 0;
                if (rc == 0 && g->name == NULL) rc = st_json_fail(&j, "log group without logGroupName");
            }
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    if (rc == 0) rc = st_json_finish(&j);
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0) {
        st_cw_groups_free(out);
        return rc == -ENOMEM ? rc : ST_EPARSE;
    }
    return 0;
}

void st_cw_streams_free(st_cw_streams_t *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->v[i].name);
    free(s->v);
    free(s->next_token);
    memset(s, 0, sizeof *s);
}

int st_cw_parse_streams(const char *body, size_t n, st_cw_streams_t *out)
{
    memset(out, 0, sizeof *out);
    st_json_t j;
    st_json_init(&j, body, n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    size_t cap = 0;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (j_null(&j)) {
            continue; /* a null member is an absent one */
        } else if (st_str_eqc(k, "nextToken")) {
            rc = j_strdup(&j, &vs, &out->next_token);
        } else if (st_str_eqc(k, "logStreams")) {
            rc = st_json_array_begin(&j);
            while (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) {
                if ((rc = grow((void **)&out->v, &cap, out->n, sizeof *out->v)) < 0) break;
                st_cw_stream_t *s = &out->v[out->n++];
                int64_t sb = 0;
                rc = st_json_object_begin(&j);
                while (rc >= 0) {
                    rc = st_json_next_key(&j, &k, &ks);
                    if (rc <= 0) break;
                    if (st_str_eqc(k, "logStreamName"))
                        rc = j_strdup(&j, &vs, &s->name);
                    else if (st_str_eqc(k, "creationTime"))
                        rc = j_i64(&j, &s->creation_time_ms);
                    else if (st_str_eqc(k, "firstEventTimestamp"))
                        rc = j_i64(&j, &s->first_event_ms);
                    else if (st_str_eqc(k, "lastEventTimestamp"))
                        rc = j_i64(&j, &s->last_event_ms);
                    else if (st_str_eqc(k, "lastIngestionTime"))
                        rc = j_i64(&j, &s->last_ingestion_ms);
                    else if (st_str_eqc(k, "storedBytes"))
                        rc = j_i64(&j, &sb);
                    else
                        rc = st_json_skip(&j, NULL);
                }
                s->stored_bytes = sb > 0 ? (uint64_t)sb : 0;
                if (rc == 0 && s->name == NULL) rc = st_json_fail(&j, "log stream without logStreamName");
            }
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    if (rc == 0) rc = st_json_finish(&j);
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0) {
        st_cw_streams_free(out);
        return rc == -ENOMEM ? rc : ST_EPARSE;
    }
    return 0;
}

void st_cw_events_free(st_cw_events_t *e)
{
    free(e->v);
    free(e->next_token);
    free(e->prev_token);
    st_buf_free(&e->text);
    memset(e, 0, sizeof *e);
}

/* Appends a string value to text; *where holds its offset and length (turned into a view once text
 * stops moving). */
static int j_text(st_json_t *j, st_buf_t *scratch, st_buf_t *text, st_str_t *where)
{
    if (j_null(j)) {
        *where = st_str(NULL, 0);
        return 0;
    }
    st_str_t s;
    ST_TRY(st_json_string(j, &s, scratch));
    size_t off = text->len;
    ST_TRY(st_buf_append(text, s.p, s.n));
    *where = st_str((const char *)(uintptr_t)off, s.n); /* an offset until the fix-up below */
    return 0;
}

int st_cw_parse_events(const char *body, size_t n, st_cw_events_t *out)
{
    memset(out, 0, sizeof *out);
    st_json_t j;
    st_json_init(&j, body, n);
    st_buf_t ks = ST_BUF_INIT, vs = ST_BUF_INIT;
    size_t cap = 0;
    int rc = st_json_object_begin(&j);
    while (rc >= 0) {
        st_str_t k;
        rc = st_json_next_key(&j, &k, &ks);
        if (rc <= 0) break;
        if (j_null(&j)) {
            continue; /* a null member is an absent one */
        } else if (st_str_eqc(k, "nextToken") || st_str_eqc(k, "nextForwardToken")) {
            rc = j_strdup(&j, &vs, &out->next_token);
        } else if (st_str_eqc(k, "nextBackwardToken")) {
            rc = j_strdup(&j, &vs, &out->prev_token);
        } else if (st_str_eqc(k, "events")) {
            rc = st_json_array_begin(&j);
            while (rc >= 0 && (rc = st_json_next_elem(&j)) == 1) {
                if ((rc = grow((void **)&out->v, &cap, out->n, sizeof *out->v)) < 0) break;
                st_cw_event_t *e = &out->v[out->n++];
                bool has_ts = false;
                rc = st_json_object_begin(&j);
                while (rc >= 0) {
                    rc = st_json_next_key(&j, &k, &ks);
                    if (rc <= 0) break;
                    if (st_str_eqc(k, "timestamp")) {
                        rc = j_i64(&j, &e->timestamp_ms);
                        has_ts = true;
                    } else if (st_str_eqc(k, "ingestionTime")) {
                        rc = j_i64(&j, &e->ingestion_ms);
                    } else if (st_str_eqc(k, "message")) {
                        rc = j_text(&j, &vs, &out->text, &e->message);
                    } else if (st_str_eqc(k, "logStreamName")) {
                        rc = j_text(&j, &vs, &out->text, &e->stream);
                    } else if (st_str_eqc(k, "eventId")) {
                        rc = j_text(&j, &vs, &out->text, &e->event_id);
                    } else {
                        rc = st_json_skip(&j, NULL);
                    }
                }
                if (rc == 0 && !has_ts) rc = st_json_fail(&j, "event without timestamp");
            }
        } else {
            rc = st_json_skip(&j, NULL);
        }
    }
    if (rc == 0) rc = st_json_finish(&j);
    st_buf_free(&ks);
    st_buf_free(&vs);
    if (rc < 0) {
        st_cw_events_free(out);
        return rc == -ENOMEM ? rc : ST_EPARSE;
    }
    /* offsets -> views now that text no longer moves */
    const char *base = out->text.data ? out->text.data : "";
    for (size_t i = 0; i < out->n; i++) {
        st_str_t *f[3] = {&out->v[i].message, &out->v[i].stream, &out->v[i].event_id};
        for (int x = 0; x < 3; x++)
            *f[x] = f[x]->n ? st_str(base + (uintptr_t)f[x]->p, f[x]->n) : st_str("", 0);
    }
    return 0;
}

/* ---- the client ---------------------------------------------------------------------------------------- */

static const char *envs(const char *n)
{
    const char *v = getenv(n);
    return v && v[0] ? v : NULL;
}

int st_cw_client_create(const st_cw_config_t *cfg, st_cw_client_t **out)
{
    st_cw_config_t def = {0};
    if (cfg == NULL) cfg = &def;
    const char *region = cfg->region && cfg->region[0] ? cfg->region : envs("AWS_REGION");
    if (region == NULL) region = envs("AWS_DEFAULT_REGION");
    if (region == NULL) region = "us-east-1";
    for (const char *p = region; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) return -EINVAL;
    char ep[128];
    if (cfg->endpoint == NULL || cfg->endpoint[0] == '\0') {
        if (strlen(region) > 64) return -EINVAL;
        snprintf(ep, sizeof ep, "https://logs.%s.amazonaws.com", region);
    }
    st_cw_client_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    st_s3_config_t sc;
    memset(&sc, 0, sizeof sc);
    sc.region = region;
    sc.endpoint = cfg->endpoint && cfg->endpoint[0] ? cfg->endpoint : ep;
    sc.addressing = ST_S3_ADDR_PATH;
    sc.creds = cfg->creds;
    sc.connect_timeout_ms = cfg->connect_timeout_ms;
    sc.request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 60000;
    sc.max_attempts = cfg->max_attempts;
    sc.retry_base_ms = cfg->retry_base_ms;
    sc.retry_max_ms = cfg->retry_max_ms;
    sc.ca_file = cfg->ca_file;
    int rc = st_s3_client_create(&sc, &c->http);
    if (rc < 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void st_cw_client_destroy(st_cw_client_t *c)
{
    if (c == NULL) return;
    st_s3_client_destroy(c->http);
    free(c);
}

static bool code_in(const char *code, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(code, *list) == 0) return true;
    return false;
}

/* The executor maps by S3's codes and HTTP status; CloudWatch answers most errors with 400 and a
 * JSON __type, mapped here. */
static int cw_map(int rc, const st_s3_error_t *e)
{
    static const char *const auth[] = {"UnrecognizedClientException",
                                       "InvalidSignatureException",
                                       "IncompleteSignatureException",
                                       "MissingAuthenticationTokenException",
                                       "ExpiredTokenException",
                                       "InvalidClientTokenId",
                                       NULL};
    if (rc >= 0) return rc;
    if (strcmp(e->code, "ResourceNotFoundException") == 0) return ST_ENOTFOUND;
    if (code_in(e->code, auth)) return ST_S3_EAUTH;
    if (strcmp(e->code, "AccessDeniedException") == 0) return ST_S3_EACCESS;
    return rc;
}

/* One Logs call: body is the JSON request; resp receives the answer (free with s3_resp_free). */
static int cw_call(st_cw_client_t *c, const char *op, const st_buf_t *body, s3_resp_t *resp,
                   st_s3_error_t *err)
{
    char target[64];
    snprintf(target, sizeof target, "Logs_20140328.%s", op);
    s3_req_t r;
    s3_req_init(&r, op, "POST", NULL, NULL);
    r.service = "logs";
    r.parse_error = st_cw_parse_error;
    r.body = body->data ? (const uint8_t *)body->data : (const uint8_t *)"";
    r.body_len = body->len;
    r.has_body = true;
    s3_req_header(&r, "Content-Type", "application/x-amz-json-1.1");
    s3_req_header(&r, "X-Amz-Target", target);
    int rc = s3_exec(c->http, &r, resp, err);
    s3_req_free(&r);
    return cw_map(rc, err);
}

/* Runs op with body and discards the answer. */
static int cw_simple(st_cw_client_t *c, const char *op, st_buf_t *body, st_s3_error_t *err)
{
    s3_resp_t resp = {0};
    int rc = cw_call(c, op, body, &resp, err);
    s3_resp_free(&resp);
    st_buf_free(body);
    return rc;
}

/* Starts a body {"logGroupName": group. */
static int body_group(st_buf_t *b, const char *group)
{
    ST_TRY(st_buf_puts(b, "{\"logGroupName\":"));
    return st_json_put_cstr(b, group);
}

static int body_opt_str(st_buf_t *b, const char *name, const char *v)
{
    if (v == NULL) return 0;
    ST_TRY(st_buf_printf(b, ",\"%s\":", name));
    return st_json_put_cstr(b, v);
}

#define LOCAL_ERR(err)                                                                                       \
    st_s3_error_t local_err_;                                                                                \
    if ((err) == NULL) (err) = &local_err_;                                                                  \
    memset((err), 0, sizeof *(err))

int st_cw_create_log_group(st_cw_client_t *c, const char *group, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group))) return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    rc = cw_simple(c, "CreateLogGroup", &b, err);
    if (rc < 0 && strcmp(err->code, "ResourceAlreadyExistsException") == 0) rc = 0;
    return rc;
}

int st_cw_create_log_stream(st_cw_client_t *c, const char *group, const char *stream, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    if (group == NULL || stream == NULL || !st_cw_group_name_valid(st_cstr(group)) ||
        !st_cw_stream_name_valid(st_cstr(stream)))
        return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = body_opt_str(&b, "logStreamName", stream);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    rc = cw_simple(c, "CreateLogStream", &b, err);
    if (rc < 0 && strcmp(err->code, "ResourceAlreadyExistsException") == 0) rc = 0;
    return rc;
}

int st_cw_put_retention_policy(st_cw_client_t *c, const char *group, int days, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group)) || !st_cw_retention_valid(days))
        return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = st_buf_printf(&b, ",\"retentionInDays\":%d}", days);
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    return cw_simple(c, "PutRetentionPolicy", &b, err);
}

int st_cw_delete_retention_policy(st_cw_client_t *c, const char *group, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group))) return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    if (rc < 0) {
        st_buf_free(&b);
        return rc;
    }
    return cw_simple(c, "DeleteRetentionPolicy", &b, err);
}

int st_cw_describe_log_groups(st_cw_client_t *c, const char *prefix, const char *next_token, int limit,
                              st_cw_groups_t *out, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    memset(out, 0, sizeof *out);
    if (prefix != NULL && prefix[0] != '\0' && !st_cw_group_name_valid(st_cstr(prefix))) return -EINVAL;
    if (limit <= 0 || limit > 50) limit = 50;
    st_buf_t b = ST_BUF_INIT;
    int rc = st_buf_printf(&b, "{\"limit\":%d", limit);
    if (rc == 0 && prefix && prefix[0]) rc = body_opt_str(&b, "logGroupNamePrefix", prefix);
    if (rc == 0 && next_token) rc = body_opt_str(&b, "nextToken", next_token);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    s3_resp_t resp = {0};
    if (rc == 0) rc = cw_call(c, "DescribeLogGroups", &b, &resp, err);
    if (rc == 0) rc = st_cw_parse_groups(resp.body.data ? resp.body.data : "", resp.body.len, out);
    s3_resp_free(&resp);
    st_buf_free(&b);
    return rc;
}

int st_cw_list_log_groups(st_cw_client_t *c, const char *prefix, int (*cb)(void *arg, const st_cw_group_t *g),
                          void *arg, st_s3_error_t *err)
{
    char *token = NULL;
    int rc = 0;
    do {
        st_cw_groups_t page;
        rc = st_cw_describe_log_groups(c, prefix, token, 50, &page, err);
        free(token);
        token = NULL;
        for (size_t i = 0; rc == 0 && i < page.n; i++) rc = cb(arg, &page.v[i]);
        if (rc == 0 && page.next_token && page.next_token[0]) {
            token = page.next_token;
            page.next_token = NULL;
        }
        st_cw_groups_free(&page);
    } while (rc == 0 && token != NULL);
    free(token);
    return rc;
}

typedef struct {
    const char *want;
    st_cw_group_t *out;
} find_t;

static int find_cb(void *arg, const st_cw_group_t *g)
{
    find_t *f = arg;
    if (strcmp(g->name, f->want) != 0) return 0;
    f->out->name = strdup(g->name);
    if (f->out->name == NULL) return -ENOMEM;
    f->out->retention_days = g->retention_days;
    f->out->creation_time_ms = g->creation_time_ms;
    f->out->stored_bytes = g->stored_bytes;
    return 1;
}

int st_cw_find_log_group(st_cw_client_t *c, const char *group, st_cw_group_t *out, st_s3_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group))) return -EINVAL;
    find_t f = {group, out};
    int rc = st_cw_list_log_groups(c, group, find_cb, &f, err);
    if (rc == 1) return 0;
    st_cw_group_clear(out);
    return rc < 0 ? rc : ST_ENOTFOUND;
}

int st_cw_describe_log_streams(st_cw_client_t *c, const char *group, const char *prefix,
                               const char *next_token, int limit, st_cw_streams_t *out, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    memset(out, 0, sizeof *out);
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group))) return -EINVAL;
    if (prefix != NULL && prefix[0] != '\0' && !st_cw_stream_name_valid(st_cstr(prefix))) return -EINVAL;
    if (limit <= 0 || limit > 50) limit = 50;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = st_buf_printf(&b, ",\"orderBy\":\"LogStreamName\",\"limit\":%d", limit);
    if (rc == 0 && prefix && prefix[0]) rc = body_opt_str(&b, "logStreamNamePrefix", prefix);
    if (rc == 0 && next_token) rc = body_opt_str(&b, "nextToken", next_token);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    s3_resp_t resp = {0};
    if (rc == 0) rc = cw_call(c, "DescribeLogStreams", &b, &resp, err);
    if (rc == 0) rc = st_cw_parse_streams(resp.body.data ? resp.body.data : "", resp.body.len, out);
    s3_resp_free(&resp);
    st_buf_free(&b);
    return rc;
}

int st_cw_list_log_streams(st_cw_client_t *c, const char *group, const char *prefix,
                           int (*cb)(void *arg, const st_cw_stream_t *s), void *arg, st_s3_error_t *err)
{
    char *token = NULL;
    int rc = 0;
    do {
        st_cw_streams_t page;
        rc = st_cw_describe_log_streams(c, group, prefix, token, 50, &page, err);
        free(token);
        token = NULL;
        for (size_t i = 0; rc == 0 && i < page.n; i++) rc = cb(arg, &page.v[i]);
        if (rc == 0 && page.next_token && page.next_token[0]) {
            token = page.next_token;
            page.next_token = NULL;
        }
        st_cw_streams_free(&page);
    } while (rc == 0 && token != NULL);
    free(token);
    return rc;
}

/* The fields GetLogEvents and FilterLogEvents share. */
static int body_read_opts(st_buf_t *b, const st_cw_read_opts_t *o)
{
    if (o->start_ms > 0) ST_TRY(st_buf_printf(b, ",\"startTime\":%lld", (long long)o->start_ms));
    if (o->end_ms > 0) ST_TRY(st_buf_printf(b, ",\"endTime\":%lld", (long long)o->end_ms));
    if (o->limit > 0) ST_TRY(st_buf_printf(b, ",\"limit\":%d", o->limit > 10000 ? 10000 : o->limit));
    return body_opt_str(b, "nextToken", o->next_token);
}

int st_cw_get_log_events(st_cw_client_t *c, const char *group, const char *stream, const st_cw_read_opts_t *o,
                         st_cw_events_t *out, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    memset(out, 0, sizeof *out);
    st_cw_read_opts_t none = {0};
    if (o == NULL) o = &none;
    if (group == NULL || stream == NULL || !st_cw_group_name_valid(st_cstr(group)) ||
        !st_cw_stream_name_valid(st_cstr(stream)))
        return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0) rc = body_opt_str(&b, "logStreamName", stream);
    if (rc == 0) rc = body_read_opts(&b, o);
    if (rc == 0) rc = st_buf_printf(&b, ",\"startFromHead\":%s}", o->start_from_head ? "true" : "false");
    s3_resp_t resp = {0};
    if (rc == 0) rc = cw_call(c, "GetLogEvents", &b, &resp, err);
    if (rc == 0) rc = st_cw_parse_events(resp.body.data ? resp.body.data : "", resp.body.len, out);
    s3_resp_free(&resp);
    st_buf_free(&b);
    return rc;
}

int st_cw_filter_log_events(st_cw_client_t *c, const char *group, const st_cw_read_opts_t *o,
                            st_cw_events_t *out, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    memset(out, 0, sizeof *out);
    st_cw_read_opts_t none = {0};
    if (o == NULL) o = &none;
    if (group == NULL || !st_cw_group_name_valid(st_cstr(group))) return -EINVAL;
    if (o->stream_prefix && o->stream_prefix[0] && !st_cw_stream_name_valid(st_cstr(o->stream_prefix)))
        return -EINVAL;
    st_buf_t b = ST_BUF_INIT;
    int rc = body_group(&b, group);
    if (rc == 0 && o->stream_prefix && o->stream_prefix[0])
        rc = body_opt_str(&b, "logStreamNamePrefix", o->stream_prefix);
    if (rc == 0) rc = body_opt_str(&b, "filterPattern", o->filter_pattern);
    if (rc == 0) rc = body_read_opts(&b, o);
    if (rc == 0) rc = st_buf_putc(&b, '}');
    s3_resp_t resp = {0};
    if (rc == 0) rc = cw_call(c, "FilterLogEvents", &b, &resp, err);
    if (rc == 0) rc = st_cw_parse_events(resp.body.data ? resp.body.data : "", resp.body.len, out);
    s3_resp_free(&resp);
    st_buf_free(&b);
    return rc;
}

int st_cw_read_stream(st_cw_client_t *c, const char *group, const char *stream, int64_t start_ms,
                      int64_t end_ms, size_t max_pages, int (*cb)(void *arg, const st_cw_events_t *page),
                      void *arg, st_s3_error_t *err)
{
    char *token = NULL;
    size_t pages = 0;
    int rc = 0;
    for (;;) {
        if (max_pages && pages >= max_pages) {
            rc = ST_ELIMIT;
            break;
        }
        st_cw_read_opts_t o = {
            .start_ms = start_ms, .end_ms = end_ms, .next_token = token, .start_from_head = true};
        st_cw_events_t page;
        rc = st_cw_get_log_events(c, group, stream, &o, &page, err);
        pages++;
        if (rc < 0) {
            st_cw_events_free(&page);
            break;
        }
        if (end_ms > 0) {
            size_t w = 0;
            for (size_t i = 0; i < page.n; i++)
                if (page.v[i].timestamp_ms < end_ms) page.v[w++] = page.v[i];
            page.n = w;
        }
        if (page.n > 0) rc = cb(arg, &page);
        /* the end: the forward token comes back as sent (or none at all) */
        bool end = page.next_token == NULL || page.next_token[0] == '\0' ||
                   (token != NULL && strcmp(token, page.next_token) == 0);
        free(token);
        token = page.next_token;
        page.next_token = NULL;
        st_cw_events_free(&page);
        if (rc != 0 || end) break;
    }
    free(token);
    return rc;
}

/* ---- PutLogEvents -------------------------------------------------------------------------------------- */

/* Sends the events of batch b (ev[first..last] with plan == b) once, with an optional sequence token.
 * resp keeps the answer for the caller. */
static int put_once(st_cw_client_t *c, const char *group, const char *stream, const st_cw_put_event_t *ev,
                    const st_cw_batch_t *bt, const char *seq_token, s3_resp_t *resp, st_s3_error_t *err)
{
    st_buf_t b = ST_BUF_INIT;
    int rc = st_buf_reserve(&b, (size_t)bt->bytes + 128);
    if (rc == 0) rc = body_group(&b, group);
    if (rc == 0) rc = body_opt_str(&b, "logStreamName", stream);
    if (rc == 0) rc = body_opt_str(&b, "sequenceToken", seq_token);
    if (rc == 0) rc = st_buf_puts(&b, ",\"logEvents\":[");
    bool first = true;
    for (size_t i = bt->first; rc == 0 && i <= bt->last; i++) {
        if (bt->plan[i] != bt->batch) continue;
        rc = st_buf_printf(&b, "%s{\"timestamp\":%lld,\"message\":", first ? "" : ",",
                           (long long)ev[i].timestamp_ms);
        if (rc == 0) rc = st_json_put_str(&b, ev[i].message);
        if (rc == 0) rc = st_buf_putc(&b, '}');
        first = false;
    }
    if (rc == 0) rc = st_buf_puts(&b, "]}");
    if (rc == 0) {
        s3_resp_free(resp);
        memset(resp, 0, sizeof *resp);
        rc = cw_call(c, "PutLogEvents", &b, resp, err);
    }
    st_buf_free(&b);
    return rc;
}

static int put_batch(st_cw_client_t *c, const char *group, const char *stream, const st_cw_put_event_t *ev,
                     const st_cw_batch_t *bt, bool create, st_cw_rejected_t *rej, st_s3_error_t *err)
{
    s3_resp_t resp = {0};
    bool created = false, token_tried = false;
    char token[128] = "";
    int rc;
    for (;;) {
        rc = put_once(c, group, stream, ev, bt, token[0] ? token : NULL, &resp, err);
        if (rc == ST_ENOTFOUND && create && !created) {
            /* a missing group or stream: create both (existing ones are fine) and send again */
            created = true;
            st_s3_error_t e2;
            int crc = st_cw_create_log_group(c, group, &e2);
            if (crc == 0) crc = st_cw_create_log_stream(c, group, stream, &e2);
            if (crc < 0) {
                *err = e2;
                rc = crc;
                break;
            }
            continue;
        }
        if (rc < 0 && strcmp(err->code, "DataAlreadyAcceptedException") == 0) {
            /* legacy sequence-token APIs: this batch was already stored */
            rc = 0;
            st_cw_parse_put_result("", 0, rej);
            break;
        }
        if (rc < 0 && strcmp(err->code, "InvalidSequenceTokenException") == 0 && !token_tried) {
            token_tried = true;
            st_cw_rejected_t r;
            if (st_cw_parse_put_result(resp.body.data ? resp.body.data : "", resp.body.len, &r) == 0 &&
                r.expected_token[0]) {
                snprintf(token, sizeof token, "%s", r.expected_token);
                continue;
            }
        }
        if (rc == 0) rc = st_cw_parse_put_result(resp.body.data ? resp.body.data : "", resp.body.len, rej);
        break;
    }
    s3_resp_free(&resp);
    return rc;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int st_cw_put_log_events(st_cw_client_t *c, const char *group, const char *stream,
                         const st_cw_put_event_t *ev, size_t n, const st_cw_put_opts_t *o,
                         st_cw_put_result_t *res, st_s3_error_t *err)
{
    LOCAL_ERR(err);
    st_cw_put_opts_t none = {0};
    if (o == NULL) o = &none;
    st_cw_put_result_t local_res;
    if (res == NULL) {
        memset(&local_res, 0, sizeof local_res);
        res = &local_res;
    }
    if (group == NULL || stream == NULL || !st_cw_group_name_valid(st_cstr(group)) ||
        !st_cw_stream_name_valid(st_cstr(stream)) || (ev == NULL && n > 0))
        return -EINVAL;
    st_cw_limits_t L = limits_of(o->limits);
    int32_t *plan = malloc((n ? n : 1) * sizeof *plan);
    if (plan == NULL) return -ENOMEM;
    size_t nb = st_cw_plan_batches(ev, n, o->now_ms ? o->now_ms : wall_ms(), o->limits, plan);
    for (size_t i = 0; i < n; i++)
        if (plan[i] < 0) res->skipped[-plan[i]]++;
    int rc = 0;
    if (nb == 0) {
        st_cw_batch_t bt = {.batch = -1, .settled = n, .plan = plan};
        if (o->after) rc = o->after(o->arg, &bt, res);
        free(plan);
        return rc;
    }
    size_t i = 0;
    for (size_t b = 0; b < nb && rc == 0; b++) {
        while (i < n && plan[i] != (int32_t)b) i++;
        st_cw_batch_t bt = {.batch = (int32_t)b,
                            .first = i,
                            .last = i,
                            .plan = plan,
                            .min_ts = ev[i].timestamp_ms,
                            .max_ts = ev[i].timestamp_ms};
        size_t k;
        for (k = i; k < n && plan[k] <= (int32_t)b; k++) {
            if (plan[k] != (int32_t)b) continue;
            bt.last = k;
            bt.nevents++;
            bt.bytes += st_cw_message_size(ev[k].message) + L.overhead;
            if (ev[k].timestamp_ms < bt.min_ts) bt.min_ts = ev[k].timestamp_ms;
            if (ev[k].timestamp_ms > bt.max_ts) bt.max_ts = ev[k].timestamp_ms;
        }
        bt.settled = k;
        if (o->before && (rc = o->before(o->arg, &bt)) != 0) break;
        st_cw_rejected_t rej;
        rc = put_batch(c, group, stream, ev, &bt, o->create, &rej, err);
        if (rc < 0) break;
        res->requests++;
        res->sent += bt.nevents;
        res->sent_bytes += bt.bytes;
        /* rejections are index ranges of what we sent: a prefix (too old, expired), a suffix (too new) */
        size_t ns = bt.nevents;
        size_t pre = 0, suf = 0;
        if (rej.too_old_end >= 0) {
            size_t x = (size_t)rej.too_old_end + 1 < ns ? (size_t)rej.too_old_end + 1 : ns;
            res->rejected_too_old += x;
            if (x > pre) pre = x;
        }
        if (rej.expired_end >= 0) {
            size_t x = (size_t)rej.expired_end + 1 < ns ? (size_t)rej.expired_end + 1 : ns;
            res->rejected_expired += x;
            if (x > pre) pre = x;
        }
        if (rej.too_new_start >= 0 && (size_t)rej.too_new_start < ns) {
            suf = ns - (size_t)rej.too_new_start;
            res->rejected_too_new += suf;
        }
        size_t idx = 0;
        for (size_t x = bt.first; x <= bt.last; x++) {
            if (plan[x] != bt.batch) continue;
            if (idx >= pre && idx + suf < ns) {
                res->accepted++;
                res->accepted_bytes += st_cw_message_size(ev[x].message) + L.overhead;
            }
            idx++;
        }
        if (o->after && (rc = o->after(o->arg, &bt, res)) != 0) break;
        i = k;
    }
    free(plan);
    return rc;
}
