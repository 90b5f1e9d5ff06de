/* record.c: audit records (one JSON object per line, hash-chained by SHA-256), their strict parser,
 * and the chain check over segment bytes and over a directory of segments (docs/formats.md). */
#include "audit/audit.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <dirent.h>
#include <stdarg.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

void st_audit_sha256_hex(const void *p, size_t n, char out[ST_AUDIT_HASH_HEX])
{
    unsigned char md[32];
    unsigned len = sizeof md;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[64] = '\0';
}

int st_audit_record_render(st_buf_t *out, uint64_t seq, int64_t time_ns, const char *type, const char *actor,
                           const char *tenant, st_str_t details, const char *prev_hex)
{
    if (details.n < 2 || details.p[0] != '{' || details.p[details.n - 1] != '}' ||
        memchr(details.p, '\n', details.n))
        return -EINVAL;
    char t[40];
    st_format_rfc3339(time_ns, t);
    int rc = st_buf_printf(out, "{\"seq\":%llu,\"time\":\"%s\",\"type\":", (unsigned long long)seq, t);
    if (rc == 0) rc = st_json_put_cstr(out, type);
    if (rc == 0) rc = st_buf_puts(out, ",\"actor\":");
    if (rc == 0) rc = st_json_put_cstr(out, actor ? actor : "");
    if (rc == 0) rc = st_buf_puts(out, ",\"tenant\":");
    if (rc == 0) rc = st_json_put_cstr(out, tenant ? tenant : "");
    if (rc == 0) rc = st_buf_puts(out, ",\"details\":");
    if (rc == 0) rc = st_buf_append(out, details.p, details.n);
    if (rc == 0) rc = st_buf_printf(out, ",\"prev\":\"%s\"}", prev_hex);
    return rc;
}

static int expect_key(st_json_t *j, st_buf_t *scratch, const char *want, char *why, size_t whysz)
{
    st_str_t k;
    int rc = st_json_next_key(j, &k, scratch);
    if (rc == 1 && st_str_eqc(k, want)) return 0;
    snprintf(why, whysz, rc < 0 ? "not a JSON object" : "expected key \"%s\" in this position", want);
    return ST_EPARSE;
}

static int get_string(st_json_t *j, st_buf_t *scratch, char *out, size_t cap, const char *what, char *why,
                      size_t whysz)
{
    st_str_t s;
    if (st_json_peek(j) != ST_JSON_STRING || st_json_string(j, &s, scratch) < 0) {
        snprintf(why, whysz, "%s is not a string", what);
        return ST_EPARSE;
    }
    if (s.n >= cap || memchr(s.p, '\0', s.n)) {
        snprintf(why, whysz, "%s is too long or holds a NUL", what);
        return ST_EPARSE;
    }
    memcpy(out, s.p, s.n);
    out[s.n] = '\0';
    return 0;
}

int st_audit_record_parse(st_str_t line, st_audit_rec_t *out, char *why, size_t whysz)
{
    memset(out, 0, sizeof *out);
    out->line = line;
    st_json_t j;
    st_json_init(&j, line.p, line.n);
    st_buf_t scratch = ST_BUF_INIT;
    int rc = ST_EPARSE;
    st_str_t v;
    char tbuf[64];
    if (st_json_object_begin(&j) < 0) {
        snprintf(why, whysz, "not a JSON object");
        goto out;
    }
    if (expect_key(&j, &scratch, "seq", why, whysz) < 0) goto out;
    if (st_json_peek(&j) != ST_JSON_NUMBER || st_json_number(&j, &v) < 0 || v.n == 0 || v.n > 19) {
        snprintf(why, whysz, "seq is not a number");
        goto out;
    }
    for (size_t i = 0; i < v.n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9' || (i == 0 && v.p[i] == '0' && v.n > 1)) {
            snprintf(why, whysz, "seq is not a decimal integer");
            goto out;
        }
        out->seq = out->seq * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (expect_key(&j, &scratch, "time", why, whysz) < 0) goto out;
    if (get_string(&j, &scratch, tbuf, sizeof tbuf, "time", why, whysz) < 0) goto out;
    if (st_parse_rfc3339(st_cstr(tbuf), &out->time_ns) < 0) {
        snprintf(why, whysz, "time is not an RFC3339 timestamp");
        goto out;
    }
    if (expect_key(&j, &scratch, "type", why, whysz) < 0 ||
        get_string(&j, &scratch, out->type, sizeof out->type, "type", why, whysz) < 0)
        goto out;
    if (expect_key(&j, &scratch, "actor", why, whysz) < 0 ||
        get_string(&j, &scratch, out->actor, sizeof out->actor, "actor", why, whysz) < 0)
        goto out;
    if (expect_key(&j, &scratch, "tenant", why, whysz) < 0 ||
        get_string(&j, &scratch, out->tenant, sizeof out->tenant, "tenant", why, whysz) < 0)
        goto out;
    if (expect_key(&j, &scratch, "details", why, whysz) < 0) goto out;
    if (st_json_peek(&j) != ST_JSON_OBJECT || st_json_skip(&j, &out->details) < 0) {
        snprintf(why, whysz, "details is not a JSON object");
        goto out;
    }
    if (expect_key(&j, &scratch, "prev", why, whysz) < 0 ||
        get_string(&j, &scratch, out->prev, sizeof out->prev, "prev", why, whysz) < 0)
        goto out;
    if (strlen(out->prev) != 64 || strspn(out->prev, "0123456789abcdef") != 64) {
        snprintf(why, whysz, "prev is not 64 lowercase hex digits");
        goto out;
    }
    st_str_t k;
    if (st_json_next_key(&j, &k, &scratch) != 0 || st_json_finish(&j) < 0) {
        snprintf(why, whysz, "unexpected content after prev");
        goto out;
    }
    st_audit_sha256_hex(line.p, line.n, out->hash);
    rc = 0;
out:
    st_buf_free(&scratch);
    return rc;
}

int st_audit_json_get(st_str_t obj, const char *key, st_str_t *raw)
{
    st_json_t j;
    st_json_init(&j, obj.p, obj.n);
    st_buf_t scratch = ST_BUF_INIT;
    int rc = st_json_object_begin(&j);
    st_str_t k;
    while (rc == 0 && (rc = st_json_next_key(&j, &k, &scratch)) == 1) {
        bool hit = st_str_eqc(k, key);
        rc = st_json_skip(&j, raw);
        if (rc == 0 && hit) {
            st_buf_free(&scratch);
            return 0;
        }
    }
    st_buf_free(&scratch);
    return rc < 0 ? ST_EPARSE : ST_ENOTFOUND;
}

int st_audit_json_str(st_str_t obj, const char *key, char *out, size_t cap)
{
    st_str_t raw;
    int rc = st_audit_json_get(obj, key, &raw);
    if (rc < 0) return rc;
    st_json_t j;
    st_json_init(&j, raw.p, raw.n);
    st_buf_t scratch = ST_BUF_INIT;
    st_str_t s;
    if (st_json_peek(&j) != ST_JSON_STRING || st_json_string(&j, &s, &scratch) < 0)
        rc = ST_EPARSE;
    else
        snprintf(out, cap, "%.*s", (int)s.n, s.p);
    st_buf_free(&scratch);
    return rc;
}

int st_audit_json_i64(st_str_t obj, const char *key, int64_t *out)
{
    st_str_t raw;
    int rc = st_audit_json_get(obj, key, &raw);
    if (rc < 0) return rc;
    char tmp[32];
    if (raw.n == 0 || raw.n >= sizeof tmp) return ST_EPARSE;
    memcpy(tmp, raw.p, raw.n);
    tmp[raw.n] = '\0';
    char *end;
    long long v = strtoll(tmp, &end, 10);
    if (*end != '\0') return ST_EPARSE;
    *out = v;
    return 0;
}

/* ---- the chain --------------------------------------------------------------------------------------- */

static int fail(st_audit_break_t *b, uint64_t segno, uint64_t line, uint64_t off, uint64_t seq,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int fail(st_audit_break_t *b, uint64_t segno, uint64_t line, uint64_t off, uint64_t seq,
                const char *fmt, ...)
{
    if (b) {
        b->segment = segno;
        b->line = line;
        b->offset = off;
        b->seq = seq;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->what, sizeof b->what, fmt, ap);
        va_end(ap);
    }
    return ST_ECORRUPT;
}

int st_audit_chain_segment(st_audit_chain_t *c, uint64_t segno, st_str_t bytes,
                           int (*cb)(void *arg, uint64_t segno, const st_audit_rec_t *rec), void *arg,
                           st_audit_break_t *brk)
{
    if (c->next_seq == 0) {
        c->next_seq = 1;
        memcpy(c->last_hash, ZERO_HASH, sizeof c->last_hash);
    }
    if (bytes.n == 0) return fail(brk, segno, 1, 0, 0, "the segment is empty (no segment.open record)");
    size_t off = 0;
    uint64_t lineno = 0;
    while (off < bytes.n) {
        lineno++;
        const char *nl = memchr(bytes.p + off, '\n', bytes.n - off);
        if (nl == NULL)
            return fail(brk, segno, lineno, off, 0,
                        "incomplete last record (%zu bytes without a newline): cut off or torn by a crash",
                        bytes.n - off);
        st_str_t line = st_str(bytes.p + off, (size_t)(nl - (bytes.p + off)));
        st_audit_rec_t rec;
        char why[200];
        if (st_audit_record_parse(line, &rec, why, sizeof why) < 0)
            return fail(brk, segno, lineno, off, 0, "malformed record (expected seq %llu): %s",
                        (unsigned long long)c->next_seq, why);
        if (rec.seq != c->next_seq) {
            if (rec.seq > c->next_seq)
                return fail(brk, segno, lineno, off, rec.seq,
                            "seq %llu follows seq %llu: %llu record(s) missing (removed) before it",
                            (unsigned long long)rec.seq, (unsigned long long)(c->next_seq - 1),
                            (unsigned long long)(rec.seq - c->next_seq));
            return fail(
                brk, segno, lineno, off, rec.seq,
                "seq %llu where seq %llu was expected: a record was inserted or records were reordered",
                (unsigned long long)rec.seq, (unsigned long long)c->next_seq);
        }
        if (strcmp(rec.prev, c->last_hash) != 0 && c->next_seq == 1)
            return fail(brk, segno, lineno, off, rec.seq,
                        "the first record's prev is not 64 zeros (records before it removed)");
        if (strcmp(rec.prev, c->last_hash) != 0)
            return fail(brk, segno, lineno, off, rec.seq,
                        "prev of seq %llu (%.16s...) is not the hash of the record before it, seq %llu "
                        "(%.16s...): seq %llu was altered, or records were inserted or removed between them",
                        (unsigned long long)rec.seq, rec.prev, (unsigned long long)(c->next_seq - 1),
                        c->last_hash, (unsigned long long)(c->next_seq - 1));
        bool first = lineno == 1;
        if (first != (strcmp(rec.type, "segment.open") == 0))
            return fail(brk, segno, lineno, off, rec.seq,
                        first ? "the segment does not start with its segment.open record"
                              : "a segment.open record inside a segment");
        if (first) {
            int64_t s = -1;
            if (st_audit_json_i64(rec.details, "segment", &s) < 0 || (uint64_t)s != segno)
                return fail(
                    brk, segno, lineno, off, rec.seq,
                    "segment.open names segment %lld, but this is segment %llu (segments swapped or renamed)",
                    (long long)s, (unsigned long long)segno);
        }
        if (cb) {
            int r = cb(arg, segno, &rec);
            if (r < 0) return r;
        }
        memcpy(c->last_hash, rec.hash, sizeof c->last_hash);
        c->next_seq++;
        c->records++;
        c->last_time_ns = rec.time_ns;
        off = (size_t)(nl - bytes.p) + 1;
    }
    c->segments++;
    return 0;
}

void st_audit_segment_path(const char *dir, uint64_t segno, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%016llx.jsonl", dir, (unsigned long long)segno);
}

void st_audit_seal_key(const char *prefix, uint64_t segno, char *out, size_t cap)
{
    snprintf(out, cap, "%saudit/%016llx.jsonl", prefix ? prefix : "", (unsigned long long)segno);
}

int st_audit_list_segments(const char *dir, st_u64vec_t *out)
{
    DIR *d = opendir(dir);
    if (d == NULL) return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strlen(n) != 22 || strcmp(n + 16, ".jsonl") != 0 || strspn(n, "0123456789abcdef") != 16) continue;
        uint64_t v = strtoull(n, NULL, 16);
        if (v > 0) rc = st_u64vec_push(out, v);
    }
    closedir(d);
    st_u64vec_sort_unique(out);
    return rc;
}

static int read_file(const char *path, st_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    char tmp[65536];
    for (;;) {
        ssize_t k = read(fd, tmp, sizeof tmp);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) rc = -errno;
        if (k <= 0) break;
        if ((rc = st_buf_append(out, tmp, (size_t)k)) < 0) break;
    }
    close(fd);
    return rc;
}

int st_audit_scan(const char *dir, int (*cb)(void *arg, uint64_t segno, const st_audit_rec_t *rec), void *arg,
                  st_audit_chain_t *chain, st_audit_break_t *brk)
{
    st_u64vec_t segs = ST_U64VEC_INIT;
    int rc = st_audit_list_segments(dir, &segs);
    if (rc == 0 && segs.n == 0) rc = ST_ENOTFOUND;
    memset(chain, 0, sizeof *chain);
    st_buf_t b = ST_BUF_INIT;
    for (size_t i = 0; rc == 0 && i < segs.n; i++) {
        if (segs.v[i] != (uint64_t)i + 1) {
            rc = fail(brk, (uint64_t)i + 1, 0, 0, 0, "segment %llu is missing (the next one present is %llu)",
                      (unsigned long long)i + 1, (unsigned long long)segs.v[i]);
            break;
        }
        char path[1200];
        st_audit_segment_path(dir, segs.v[i], path, sizeof path);
        st_buf_reset(&b);
        if ((rc = read_file(path, &b)) < 0) break;
        rc = st_audit_chain_segment(chain, segs.v[i], st_str(b.data ? b.data : "", b.len), cb, arg, brk);
    }
    st_buf_free(&b);
    st_u64vec_free(&segs);
    return rc;
}
