/* deletions.c: deletion evidence from the audit trail: every "delete.retention" (end of retention: S3
 * objects with their versions, hot chunks), "erasure.chunk" and "erasure.object" (lines removed by an
 * erasure request) whose time lies in [from, to], with what was deleted (keys, versions, bytes, chunks,
 * the streams' labels and the data's time range), when, under which rule or request, and the record's
 * seq and SHA-256 so each row can be matched to the verified chain; plus the requests' outcomes. */
#include "audit/audit_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"
#include "common/vec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t seq;
    char hash[ST_AUDIT_HASH_HEX];
    int64_t time, recorded;
    char type[48];
    char tenant[160];
    char *details; /* owned copy */
    size_t dlen;
} drow_t;

typedef struct {
    uint64_t sid;
    char tenant[160];
    char *labels;
} slabel_t;

typedef struct {
    const char *tenant;
    int64_t from, to;
    drow_t *rows;
    size_t n, cap;
    st_u64vec_t sids; /* streams to name */
    slabel_t *names;
    size_t nnames, capnames;
    int pass;
} dctx_t;

static bool deletion_type(const char *t)
{
    return strcmp(t, "delete.retention") == 0 || strcmp(t, "erasure.chunk") == 0 ||
           strcmp(t, "erasure.object") == 0 || strcmp(t, "erasure.processed") == 0 ||
           strcmp(t, "erasure.refused") == 0 || strcmp(t, "erasure.cancelled") == 0;
}

/* The stream ids a record's chunks belong to. */
static int each_stream(st_str_t d, int (*fn)(void *arg, uint64_t sid), void *arg)
{
    char sid[40];
    st_str_t arr, old;
    if (st_audit_json_get(d, "old", &old) == 0 && st_audit_json_str(old, "stream_id", sid, sizeof sid) == 0)
        return fn(arg, strtoull(sid, NULL, 16));
    if (st_audit_json_get(d, "chunks", &arr) < 0 || arr.n == 0 || arr.p[0] != '[') return 0;
    const char *p = arr.p, *end = arr.p + arr.n;
    while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (q == NULL) break;
        if (st_audit_json_str(st_str(p, (size_t)(q - p + 1)), "stream_id", sid, sizeof sid) == 0)
            ST_TRY(fn(arg, strtoull(sid, NULL, 16)));
        p = q + 1;
    }
    return 0;
}

static int want_sid(void *arg, uint64_t sid)
{
    return st_u64vec_push(arg, sid);
}

static int scan_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    dctx_t *c = arg;
    if (c->pass == 2) {
        /* names of the streams the rows mention, from the chunks' own records */
        if (strcmp(rec->type, "chunk.write") != 0) return 0;
        char sid[40];
        if (st_audit_json_str(rec->details, "stream_id", sid, sizeof sid) < 0) return 0;
        uint64_t id = strtoull(sid, NULL, 16);
        if (!st_u64vec_contains(&c->sids, id)) return 0;
        for (size_t i = 0; i < c->nnames; i++)
            if (c->names[i].sid == id && strcmp(c->names[i].tenant, rec->tenant) == 0) return 0;
        char labels[4096];
        if (st_audit_json_str(rec->details, "labels", labels, sizeof labels) < 0) return 0;
        if (c->nnames == c->capnames) {
            size_t cap = c->capnames ? c->capnames * 2 : 32;
            slabel_t *v = realloc(c->names, cap * sizeof *v);
            if (v == NULL) return -ENOMEM;
            c->names = v;
            c->capnames = cap;
        }
        slabel_t *s = &c->names[c->nnames];
        s->sid = id;
        snprintf(s->tenant, sizeof s->tenant, "%s", rec->tenant);
        if ((s->labels = strdup(labels)) == NULL) return -ENOMEM;
        c->nnames++;
        return 0;
    }
    if (!deletion_type(rec->type)) return 0;
    if (c->tenant && strcmp(rec->tenant, c->tenant) != 0) return 0;
    int64_t t = 0;
    if (st_audit_json_i64(rec->details, "as_of", &t) < 0 || t == 0) t = rec->time_ns;
    if (t < c->from || t > c->to) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        drow_t *v = realloc(c->rows, cap * sizeof *v);
        if (v == NULL) return -ENOMEM;
        c->rows = v;
        c->cap = cap;
    }
    drow_t *r = &c->rows[c->n];
    memset(r, 0, sizeof *r);
    r->seq = rec->seq;
    memcpy(r->hash, rec->hash, sizeof r->hash);
    r->time = t;
    r->recorded = rec->time_ns;
    snprintf(r->type, sizeof r->type, "%s", rec->type);
    snprintf(r->tenant, sizeof r->tenant, "%s", rec->tenant);
    if ((r->details = malloc(rec->details.n + 1)) == NULL) return -ENOMEM;
    memcpy(r->details, rec->details.p, rec->details.n);
    r->details[rec->details.n] = '\0';
    r->dlen = rec->details.n;
    c->n++;
    return each_stream(rec->details, want_sid, &c->sids);
}

static const char *name_of(const dctx_t *c, const char *tenant, uint64_t sid)
{
    for (size_t i = 0; i < c->nnames; i++)
        if (c->names[i].sid == sid && strcmp(c->names[i].tenant, tenant) == 0) return c->names[i].labels;
    return NULL;
}

/* Facts of one row, for both formats. */
typedef struct {
    char kind[16];
    char policy[64];
    char rule[160];
    char request[24];
    char legal[512];
    st_strvec_t keys, versions, streams;
    uint64_t bytes, chunks, lines;
    int64_t lo, hi;
    char status[16];
    char message[512];
} facts_t;

typedef struct {
    const dctx_t *c;
    const drow_t *r;
    facts_t *f;
} sctx_t;

static int add_stream_name(void *arg, uint64_t sid)
{
    sctx_t *s = arg;
    const char *n = name_of(s->c, s->r->tenant, sid);
    char tmp[40];
    if (n == NULL) {
        snprintf(tmp, sizeof tmp, "stream %016llx", (unsigned long long)sid);
        n = tmp;
    }
    return st_strvec_push(&s->f->streams, st_cstr(n));
}

static int facts(const dctx_t *c, const drow_t *r, facts_t *f)
{
    memset(f, 0, sizeof *f);
    st_str_t d = st_str(r->details, r->dlen), o;
    char tmp[600];
    int64_t v;
    st_audit_json_str(d, "policy", f->policy, sizeof f->policy);
    st_audit_json_str(d, "rule", f->rule, sizeof f->rule);
    st_audit_json_str(d, "legal_basis", f->legal, sizeof f->legal);
    if (strcmp(r->type, "delete.retention") == 0) {
        st_audit_json_str(d, "kind", f->kind, sizeof f->kind);
        if (st_audit_json_i64(d, "bytes", &v) == 0) f->bytes = (uint64_t)v;
        if (st_audit_json_i64(d, "count", &v) == 0) f->chunks = (uint64_t)v;
        if (st_audit_json_get(d, "object", &o) == 0) {
            if (st_audit_json_str(o, "key", tmp, sizeof tmp) == 0)
                ST_TRY(st_strvec_push(&f->keys, st_cstr(tmp)));
            if (st_audit_json_str(o, "version_id", tmp, sizeof tmp) == 0)
                ST_TRY(st_strvec_push(&f->versions, st_cstr(tmp)));
            if (st_audit_json_i64(o, "size", &v) == 0) f->bytes = (uint64_t)v;
            st_audit_json_i64(o, "min_ts", &f->lo);
            st_audit_json_i64(o, "max_ts", &f->hi);
        } else {
            st_audit_json_i64(d, "min_ts", &f->lo);
            st_audit_json_i64(d, "max_ts", &f->hi);
            /* hot chunks: their files */
            st_str_t arr;
            if (st_audit_json_get(d, "chunks", &arr) == 0) {
                const char *p = arr.p, *end = arr.p + arr.n;
                while ((p = memchr(p, '{', (size_t)(end - p))) != NULL) {
                    const char *q = memchr(p, '}', (size_t)(end - p));
                    if (q == NULL) break;
                    char id[40];
                    st_str_t one = st_str(p, (size_t)(q - p + 1));
                    if (st_audit_json_str(one, "path", tmp, sizeof tmp) == 0 &&
                        st_audit_json_str(one, "id", id, sizeof id) == 0) {
                        char k[700];
                        snprintf(k, sizeof k, "%s#chunk=%s", tmp, id);
                        ST_TRY(st_strvec_push(&f->keys, st_cstr(k)));
                    }
                    p = q + 1;
                }
            }
        }
    } else if (strcmp(r->type, "erasure.chunk") == 0) {
        snprintf(f->kind, sizeof f->kind, "erasure");
        st_audit_json_str(d, "request", f->request, sizeof f->request);
        if (st_audit_json_i64(d, "lines_removed", &v) == 0) f->lines = (uint64_t)v;
        if (st_audit_json_i64(d, "bytes", &v) == 0) f->bytes = (uint64_t)v;
        f->chunks = 1;
        if (st_audit_json_get(d, "old", &o) == 0) {
            char id[40];
            if (st_audit_json_str(o, "path", tmp, sizeof tmp) == 0 &&
                st_audit_json_str(o, "chunk_id", id, sizeof id) == 0) {
                char k[700];
                snprintf(k, sizeof k, "%s#chunk=%s", tmp, id);
                ST_TRY(st_strvec_push(&f->keys, st_cstr(k)));
            }
            st_audit_json_i64(o, "min_ts", &f->lo);
            st_audit_json_i64(o, "max_ts", &f->hi);
        }
    } else if (strcmp(r->type, "erasure.object") == 0) {
        snprintf(f->kind, sizeof f->kind, "erasure");
        st_audit_json_str(d, "request", f->request, sizeof f->request);
        if (st_audit_json_i64(d, "lines_removed", &v) == 0) f->lines = (uint64_t)v;
        if (st_audit_json_i64(d, "chunks_rewritten", &v) == 0) f->chunks = (uint64_t)v;
        if (st_audit_json_i64(d, "chunks_dropped", &v) == 0) f->chunks += (uint64_t)v;
        if (st_audit_json_get(d, "object", &o) == 0) {
            if (st_audit_json_str(o, "key", tmp, sizeof tmp) == 0)
                ST_TRY(st_strvec_push(&f->keys, st_cstr(tmp)));
            if (st_audit_json_str(o, "version_id", tmp, sizeof tmp) == 0)
                ST_TRY(st_strvec_push(&f->versions, st_cstr(tmp)));
            st_audit_json_str(o, "policy", f->policy, sizeof f->policy);
            st_audit_json_i64(o, "min_ts", &f->lo);
            st_audit_json_i64(o, "max_ts", &f->hi);
        }
    } else {
        snprintf(f->kind, sizeof f->kind, "request");
        st_audit_json_str(d, "id", f->request, sizeof f->request);
        snprintf(f->status, sizeof f->status, "%s", r->type + strlen("erasure."));
        if (st_audit_json_str(d, "reason", f->message, sizeof f->message) < 0)
            st_audit_json_str(d, "message", f->message, sizeof f->message);
        if (st_audit_json_i64(d, "lines", &v) == 0) f->lines = (uint64_t)v;
        st_audit_json_i64(d, "start", &f->lo);
        st_audit_json_i64(d, "end", &f->hi);
        char q[400];
        if (st_audit_json_str(d, "query", q, sizeof q) == 0) ST_TRY(st_strvec_push(&f->streams, st_cstr(q)));
    }
    sctx_t s = {c, r, f};
    return each_stream(d, add_stream_name, &s);
}

static void facts_free(facts_t *f)
{
    st_strvec_free(&f->keys);
    st_strvec_free(&f->versions);
    st_strvec_free(&f->streams);
}

static void put_list(st_buf_t *b, const char *key, const st_strvec_t *v)
{
    st_buf_printf(b, ",\"%s\":[", key);
    for (size_t i = 0; i < v->n; i++) {
        if (i) st_buf_putc(b, ',');
        st_json_put_str(b, st_strvec_at(v, i));
    }
    st_buf_putc(b, ']');
}

static void put_t(st_buf_t *b, const char *key, int64_t ns)
{
    char t[40] = "";
    if (ns) st_format_rfc3339(ns, t);
    st_buf_printf(b, ",\"%s\":", key);
    if (t[0])
        st_buf_printf(b, "\"%s\"", t);
    else
        st_buf_puts(b, "null");
}

static void csv_field(st_buf_t *b, const char *s)
{
    if (strpbrk(s, ",\"\n\r") == NULL) {
        st_buf_puts(b, s);
        return;
    }
    st_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"') st_buf_putc(b, '"');
        st_buf_putc(b, *s);
    }
    st_buf_putc(b, '"');
}

static void joined(st_buf_t *b, const st_strvec_t *v)
{
    st_buf_t t = ST_BUF_INIT;
    for (size_t i = 0; i < v->n; i++) {
        if (i) st_buf_puts(&t, "; ");
        st_buf_append(&t, v->v[i], v->len[i]);
    }
    csv_field(b, st_buf_cstr(&t));
    st_buf_free(&t);
}

int st_report_deletions(const st_config_t *cfg, const st_lc_config_t *lc, st_index_t *ix, const char *tenant,
                        int64_t from, int64_t to, st_report_format_t fmt, st_buf_t *out, size_t *count)
{
    char dir[1100];
    st_audit_dir_of(cfg, lc, dir, sizeof dir);
    dctx_t c;
    memset(&c, 0, sizeof c);
    c.tenant = tenant;
    c.from = from;
    c.to = to;
    c.pass = 1;
    st_audit_chain_t chain;
    st_audit_break_t brk;
    memset(&brk, 0, sizeof brk);
    int rc = st_audit_scan(dir, scan_cb, &c, &chain, &brk);
    bool broken = rc == ST_ECORRUPT, absent = rc == ST_ENOTFOUND;
    if (broken || absent) rc = 0;
    st_u64vec_sort_unique(&c.sids);
    if (rc == 0 && c.sids.n && !absent) {
        c.pass = 2;
        st_audit_chain_t ch2;
        st_audit_break_t b2;
        int r2 = st_audit_scan(dir, scan_cb, &c, &ch2, &b2);
        if (r2 < 0 && r2 != ST_ECORRUPT) rc = r2;
    }
    /* streams the trail does not name: the index, while they exist */
    if (rc == 0 && ix && c.sids.n) {
        st_index_read_t *rd;
        if (st_index_read_begin(ix, &rd) == 0) {
            for (size_t i = 0; rc == 0 && i < c.n; i++) {
                const drow_t *r = &c.rows[i];
                st_u64vec_t ids = ST_U64VEC_INIT;
                rc = each_stream(st_str(r->details, r->dlen), want_sid, &ids);
                for (size_t k = 0; rc == 0 && k < ids.n; k++) {
                    if (name_of(&c, r->tenant, ids.v[k])) continue;
                    st_str_t text;
                    if (st_index_stream(rd, r->tenant, ids.v[k], &text, NULL) < 0) continue;
                    if (c.nnames == c.capnames) {
                        size_t cap = c.capnames ? c.capnames * 2 : 32;
                        slabel_t *v = realloc(c.names, cap * sizeof *v);
                        if (v == NULL) {
                            rc = -ENOMEM;
                            break;
                        }
                        c.names = v;
                        c.capnames = cap;
                    }
                    slabel_t *s = &c.names[c.nnames];
                    s->sid = ids.v[k];
                    snprintf(s->tenant, sizeof s->tenant, "%s", r->tenant);
                    if ((s->labels = st_str_dup(text)) == NULL)
                        rc = -ENOMEM;
                    else
                        c.nnames++;
                }
                st_u64vec_free(&ids);
            }
            st_index_read_end(rd);
        }
    }
    uint64_t total = 0;
    size_t rows = 0;
    if (rc == 0 && fmt == ST_REPORT_CSV) {
        st_buf_puts(
            out,
            "time,type,tenant,kind,policy,rule,request,status,keys,version_ids,bytes,chunks,lines_removed,"
            "streams,data_from,data_to,recorded_at,seq,record_sha256,detail\r\n");
    } else if (rc == 0) {
        char a[40], z[40];
        st_format_rfc3339(from, a);
        st_format_rfc3339(to, z);
        st_buf_printf(out, "{\"report\":\"deletions\",\"from\":\"%s\",\"to\":\"%s\",\"tenant\":", a, z);
        if (tenant)
            st_json_put_cstr(out, tenant);
        else
            st_buf_puts(out, "null");
        st_buf_puts(out, ",\"audit_dir\":");
        st_json_put_cstr(out, dir);
        st_buf_printf(out, ",\"audit_chain\":\"%s\"", absent ? "absent" : broken ? "broken" : "intact");
        if (broken) {
            st_buf_printf(out, ",\"audit_break\":{\"segment\":%llu,\"line\":%llu,\"seq\":%llu,\"what\":",
                          (unsigned long long)brk.segment, (unsigned long long)brk.line,
                          (unsigned long long)brk.seq);
            st_json_put_cstr(out, brk.what);
            st_buf_putc(out, '}');
        }
        st_buf_puts(out, ",\"deletions\":[");
    }
    for (size_t i = 0; rc == 0 && i < c.n; i++) {
        const drow_t *r = &c.rows[i];
        facts_t f;
        if ((rc = facts(&c, r, &f)) < 0) {
            facts_free(&f);
            break;
        }
        if (strcmp(f.kind, "request") != 0) total += f.bytes;
        char t[40], rec[40], lo[40] = "", hi[40] = "";
        st_format_rfc3339(r->time, t);
        st_format_rfc3339(r->recorded, rec);
        if (f.lo) st_format_rfc3339(f.lo, lo);
        if (f.hi) st_format_rfc3339(f.hi, hi);
        if (fmt == ST_REPORT_CSV) {
            char n1[32], n2[32], n3[32], seq[32];
            snprintf(n1, sizeof n1, "%llu", (unsigned long long)f.bytes);
            snprintf(n2, sizeof n2, "%llu", (unsigned long long)f.chunks);
            snprintf(n3, sizeof n3, "%llu", (unsigned long long)f.lines);
            snprintf(seq, sizeof seq, "%llu", (unsigned long long)r->seq);
            const char *a[] = {t, r->type, r->tenant, f.kind, f.policy, f.rule, f.request, f.status};
            for (int k = 0; k < 8; k++) {
                csv_field(out, a[k]);
                st_buf_putc(out, ',');
            }
            joined(out, &f.keys);
            st_buf_putc(out, ',');
            joined(out, &f.versions);
            const char *z[] = {n1, n2, n3};
            for (int k = 0; k < 3; k++) {
                st_buf_putc(out, ',');
                csv_field(out, z[k]);
            }
            st_buf_putc(out, ',');
            joined(out, &f.streams);
            const char *e[] = {lo, hi, rec, seq, r->hash, f.message};
            for (int k = 0; k < 6; k++) {
                st_buf_putc(out, ',');
                csv_field(out, e[k]);
            }
            st_buf_puts(out, "\r\n");
        } else {
            st_buf_printf(out, "%s{\"time\":\"%s\",\"type\":\"%s\",\"tenant\":", rows ? "," : "", t, r->type);
            st_json_put_cstr(out, r->tenant);
            st_buf_printf(out, ",\"kind\":\"%s\",\"policy\":", f.kind);
            st_json_put_cstr(out, f.policy);
            st_buf_puts(out, ",\"rule\":");
            st_json_put_cstr(out, f.rule);
            st_buf_puts(out, ",\"legal_basis\":");
            st_json_put_cstr(out, f.legal);
            st_buf_puts(out, ",\"request\":");
            st_json_put_cstr(out, f.request);
            if (f.status[0]) {
                st_buf_printf(out, ",\"status\":\"%s\",\"message\":", f.status);
                st_json_put_cstr(out, f.message);
            }
            put_list(out, "keys", &f.keys);
            put_list(out, "version_ids", &f.versions);
            st_buf_printf(out, ",\"bytes\":%llu,\"chunks\":%llu,\"lines_removed\":%llu",
                          (unsigned long long)f.bytes, (unsigned long long)f.chunks,
                          (unsigned long long)f.lines);
            put_list(out, "streams", &f.streams);
            put_t(out, "data_from", f.lo);
            put_t(out, "data_to", f.hi);
            st_buf_printf(out, ",\"recorded_at\":\"%s\",\"seq\":%llu,\"record_sha256\":\"%s\"}", rec,
                          (unsigned long long)r->seq, r->hash);
        }
        rows++;
        facts_free(&f);
    }
    if (rc == 0 && fmt != ST_REPORT_CSV)
        st_buf_printf(out, "],\"count\":%zu,\"bytes\":%llu}\n", rows, (unsigned long long)total);
    if (count) *count = rows;
    for (size_t i = 0; i < c.n; i++) free(c.rows[i].details);
    free(c.rows);
    for (size_t i = 0; i < c.nnames; i++) free(c.names[i].labels);
    free(c.names);
    st_u64vec_free(&c.sids);
    return rc;
}
