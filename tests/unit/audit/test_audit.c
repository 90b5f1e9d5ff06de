/* test_audit.c: the audit trail (audit/record.c, trail.c): records, the hash chain and every kind of
 * tampering with it (a changed, removed, inserted or reordered record, a cut-off tail, swapped segments),
 * rotation and local seals, concurrent appends from several processes, the repair of a torn tail, the
 * sample-size rule of `strata audit verify`, and the lifecycle.audit / lifecycle.prices configuration. */
#include "testutil.h"

#include "audit/audit.h"
#include "common/err.h"
#include "common/timeutil.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)len + 1);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    p[len] = '\0';
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void spit(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static st_audit_t *open_trail(const char *dir, uint64_t seg_max)
{
    st_audit_config_t cfg;
    st_audit_config_defaults(&cfg);
    cfg.enabled = true;
    if (seg_max) cfg.segment_max_bytes = seg_max;
    st_audit_opts_t o = {.cfg = &cfg, .dir = dir, .actor = "test"};
    st_audit_t *a = NULL;
    assert_int_equal(st_audit_open(&o, &a), 0);
    return a;
}

static void append_n(st_audit_t *a, int n, const char *tag)
{
    for (int i = 0; i < n; i++) {
        char d[128];
        snprintf(d, sizeof d, "{\"tag\":\"%s\",\"i\":%d}", tag, i);
        assert_int_equal(st_audit_append(a, "test.event", "t1", NULL, st_cstr(d), i % 3 == 0, NULL), 0);
    }
}

static int count_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    (void)rec;
    (*(int *)arg)++;
    return 0;
}

/* ---- records ---------------------------------------------------------------------------------------------
 */

static void test_record_roundtrip(void **state)
{
    (void)state;
    st_buf_t b = ST_BUF_INIT;
    char prev[ST_AUDIT_HASH_HEX];
    st_audit_sha256_hex("x", 1, prev);
    assert_int_equal(st_audit_record_render(&b, 42, 1700000000123456789LL, "chunk.write", "serve/u@h",
                                            "tenant \"a\"", ST_STR("{\"k\":[1,2]}"), prev),
                     0);
    st_audit_rec_t r;
    char why[200];
    assert_int_equal(st_audit_record_parse(st_str(b.data, b.len), &r, why, sizeof why), 0);
    assert_int_equal(r.seq, 42);
    assert_int_equal(r.time_ns, 1700000000123456789LL);
    assert_string_equal(r.type, "chunk.write");
    assert_string_equal(r.tenant, "tenant \"a\"");
    assert_string_equal(r.prev, prev);
    assert_true(st_str_eqc(r.details, "{\"k\":[1,2]}"));
    char h[ST_AUDIT_HASH_HEX];
    st_audit_sha256_hex(b.data, b.len, h);
    assert_string_equal(r.hash, h);
    /* details must be one object on one line */
    assert_int_equal(st_audit_record_render(&b, 1, 1, "t", "", "", ST_STR("[1]"), prev), -EINVAL);
    assert_int_equal(st_audit_record_render(&b, 1, 1, "t", "", "", ST_STR("{\"a\":\n1}"), prev), -EINVAL);
    st_buf_free(&b);
}

static void test_record_strict(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "[]",
        "{\"seq\":1}",
        "{\"time\":\"2026-01-01T00:00:00Z\",\"seq\":1,\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":-1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":01,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"time\":\"yesterday\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\",\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":[],"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"00000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"000000000000000000000000000000000000000000000000000000000000000A\"}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"x\":1}",
        "{\"seq\":1,\"time\":\"2026-01-01T00:00:00Z\",\"type\":\"a\",\"actor\":\"\",\"tenant\":\"\","
        "\"details\":{},"
        "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"} x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        st_audit_rec_t r;
        char why[200] = "";
        assert_int_equal(st_audit_record_parse(st_cstr(bad[i]), &r, why, sizeof why), ST_EPARSE);
        assert_true(why[0] != '\0');
    }
}

static void test_json_get(void **state)
{
    (void)state;
    st_str_t d = ST_STR("{\"a\":\"x\\\"y\",\"n\":-12,\"o\":{\"n\":5},\"arr\":[1,{\"n\":2}]}");
    char s[16];
    int64_t v;
    assert_int_equal(st_audit_json_str(d, "a", s, sizeof s), 0);
    assert_string_equal(s, "x\"y");
    assert_int_equal(st_audit_json_i64(d, "n", &v), 0);
    assert_int_equal(v, -12);
    st_str_t o;
    assert_int_equal(st_audit_json_get(d, "o", &o), 0);
    assert_int_equal(st_audit_json_i64(o, "n", &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(st_audit_json_i64(d, "missing", &v), ST_ENOTFOUND);
    assert_int_equal(st_audit_json_i64(d, "a", &v), ST_EPARSE);
}

/* ---- the chain and tampering ----------------------------------------------------------------------------
 */

/* A trail of n records in one segment; returns the directory (segment file path in seg). */
static char *make_trail(int n, char *seg, size_t segsz)
{
    char *dir = st_test_tmpdir("audit");
    assert_non_null(dir);
    st_audit_t *a = open_trail(dir, 0);
    append_n(a, n, "x");
    assert_int_equal(st_audit_close(a), 0);
    st_audit_segment_path(dir, 1, seg, segsz);
    return dir;
}

static int verify_dir(const char *dir, st_audit_break_t *brk, int *records)
{
    st_audit_chain_t chain;
    int n = 0;
    memset(brk, 0, sizeof *brk);
    int rc = st_audit_scan(dir, count_cb, &n, &chain, brk);
    if (records) *records = n;
    return rc;
}

static void test_chain_intact(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(20, seg, sizeof seg);
    st_audit_break_t brk;
    int n;
    assert_int_equal(verify_dir(dir, &brk, &n), 0);
    assert_int_equal(n, 21); /* segment.open + 20 */
    /* reopening continues the chain */
    st_audit_t *a = open_trail(dir, 0);
    append_n(a, 5, "y");
    st_audit_close(a);
    assert_int_equal(verify_dir(dir, &brk, &n), 0);
    assert_int_equal(n, 26);
    st_test_rmrf(dir);
    free(dir);
}

/* The byte offsets of the lines of a buffer. */
static int lines_of(const char *p, size_t n, size_t *off, int max)
{
    int k = 0;
    size_t i = 0;
    while (i < n && k < max) {
        off[k++] = i;
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL) break;
        i = (size_t)(nl - p) + 1;
    }
    off[k] = n;
    return k;
}

static void test_tamper_change(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(10, seg, sizeof seg);
    size_t n;
    char *p = slurp(seg, &n);
    /* record seq 5 (line 5): "i":3 -> "i":9 */
    size_t off[64];
    lines_of(p, n, off, 63);
    char *hit = strstr(p + off[4], "\"i\":3");
    assert_non_null(hit);
    hit[4] = '9';
    spit(seg, p, n);
    st_audit_break_t brk;
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.segment, 1);
    assert_int_equal(brk.line, 6);
    assert_int_equal(brk.seq, 6);
    assert_non_null(strstr(brk.what, "seq 5 was altered"));
    free(p);
    st_test_rmrf(dir);
    free(dir);
}

static void test_tamper_delete(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(10, seg, sizeof seg);
    size_t n;
    char *p = slurp(seg, &n);
    size_t off[64];
    lines_of(p, n, off, 63);
    /* drop line 4 (seq 4) */
    memmove(p + off[3], p + off[4], n - off[4]);
    spit(seg, p, n - (off[4] - off[3]));
    st_audit_break_t brk;
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.line, 4);
    assert_int_equal(brk.seq, 5);
    assert_non_null(strstr(brk.what, "missing"));
    /* dropping the last record is caught by nothing in the chain alone, but dropping the first is */
    free(p);
    p = slurp(seg, &n);
    lines_of(p, n, off, 63);
    spit(seg, p + off[1], n - off[1]);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.line, 1);
    free(p);
    st_test_rmrf(dir);
    free(dir);
}

static void test_tamper_insert_and_reorder(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(10, seg, sizeof seg);
    size_t n;
    char *p = slurp(seg, &n);
    size_t off[64];
    int k = lines_of(p, n, off, 63);
    assert_int_equal(k, 11);
    st_audit_break_t brk;
    /* insert a copy of line 3 after line 6 */
    size_t l3 = off[3] - off[2];
    char *q = malloc(n + l3);
    memcpy(q, p, off[6]);
    memcpy(q + off[6], p + off[2], l3);
    memcpy(q + off[6] + l3, p + off[6], n - off[6]);
    spit(seg, q, n + l3);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.line, 7);
    assert_non_null(strstr(brk.what, "inserted or records were reordered"));
    /* a forged record with the right seq and prev is caught at the record after it */
    st_audit_rec_t r5;
    char why[200];
    assert_int_equal(st_audit_record_parse(st_str(p + off[4], off[5] - off[4] - 1), &r5, why, sizeof why), 0);
    st_buf_t forged = ST_BUF_INIT;
    st_audit_record_render(&forged, r5.seq, r5.time_ns, r5.type, r5.actor, r5.tenant,
                           ST_STR("{\"forged\":true}"), r5.prev);
    st_buf_putc(&forged, '\n');
    memcpy(q, p, off[4]);
    memcpy(q + off[4], forged.data, forged.len);
    memcpy(q + off[4] + forged.len, p + off[5], n - off[5]);
    spit(seg, q, off[4] + forged.len + n - off[5]);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.seq, 6);
    assert_non_null(strstr(brk.what, "seq 5 was altered"));
    st_buf_free(&forged);
    /* swap lines 4 and 5 */
    size_t a = off[4] - off[3], b = off[5] - off[4];
    memcpy(q, p, off[3]);
    memcpy(q + off[3], p + off[4], b);
    memcpy(q + off[3] + b, p + off[3], a);
    memcpy(q + off[5], p + off[5], n - off[5]);
    spit(seg, q, n);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.line, 4);
    assert_int_equal(brk.seq, 5);
    /* cut in the middle of the last record */
    spit(seg, p, n - 7);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.line, 11);
    assert_non_null(strstr(brk.what, "incomplete"));
    free(q);
    free(p);
    st_test_rmrf(dir);
    free(dir);
}

/* ---- segments, seals, several processes, repair ------------------------------------------------------- */

static void test_rotation_and_local_seals(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("audit-rot");
    st_audit_t *a = open_trail(dir, 4096);
    append_n(a, 200, "rot"); /* ~60 bytes of details each: several segments */
    assert_int_equal(st_audit_seal(a, true), 0);
    assert_int_equal(st_audit_close(a), 0);
    st_u64vec_t segs = ST_U64VEC_INIT;
    assert_int_equal(st_audit_list_segments(dir, &segs), 0);
    assert_true(segs.n >= 4);
    st_audit_break_t brk;
    int n;
    assert_int_equal(verify_dir(dir, &brk, &n), 0);
    /* every closed segment has its seal record (stored locally: no object storage) */
    for (size_t i = 0; i + 1 < segs.n; i++) {
        char m[1300];
        struct stat st;
        snprintf(m, sizeof m, "%s/%016llx.sealed", dir, (unsigned long long)segs.v[i]);
        assert_int_equal(stat(m, &st), 0);
    }
    /* renaming segments breaks the chain at the first swapped one */
    char p1[1200], p2[1200], tmp[1300];
    st_audit_segment_path(dir, 2, p1, sizeof p1);
    st_audit_segment_path(dir, 3, p2, sizeof p2);
    snprintf(tmp, sizeof tmp, "%s.x", p1);
    assert_int_equal(rename(p1, tmp), 0);
    assert_int_equal(rename(p2, p1), 0);
    assert_int_equal(rename(tmp, p2), 0);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.segment, 2);
    assert_int_equal(brk.line, 1);
    /* a missing segment is named */
    assert_int_equal(unlink(p1), 0);
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    assert_int_equal(brk.segment, 2);
    assert_non_null(strstr(brk.what, "missing"));
    st_u64vec_free(&segs);
    st_test_rmrf(dir);
    free(dir);
}

static void test_processes(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("audit-mp");
    st_audit_close(open_trail(dir, 8192)); /* create it */
    enum { NPROC = 4, NREC = 150 };
    pid_t pids[NPROC];
    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            st_audit_t *a = open_trail(dir, 8192);
            char tag[16];
            snprintf(tag, sizeof tag, "p%d", i);
            for (int k = 0; k < NREC; k++) {
                char d[64];
                snprintf(d, sizeof d, "{\"p\":\"%s\",\"k\":%d}", tag, k);
                if (k % 2)
                    st_audit_enqueue(a, "test.q", "t", NULL, st_cstr(d));
                else if (st_audit_append(a, "test.d", "t", NULL, st_cstr(d), k % 10 == 0, NULL) < 0)
                    _exit(3);
            }
            _exit(st_audit_close(a) == 0 ? 0 : 4);
        }
    }
    for (int i = 0; i < NPROC; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    st_audit_break_t brk;
    st_audit_chain_t chain;
    int n = 0;
    assert_int_equal(st_audit_scan(dir, count_cb, &n, &chain, &brk), 0);
    /* every record once, plus segment.open and seal records */
    assert_true(n >= NPROC * NREC + 1);
    st_test_rmrf(dir);
    free(dir);
}

static int type_cb(void *arg, uint64_t segno, const st_audit_rec_t *rec)
{
    (void)segno;
    if (strcmp(rec->type, "trail.repair") == 0) (*(int *)arg)++;
    return 0;
}

static void test_torn_tail_repaired(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(5, seg, sizeof seg);
    int fd = open(seg, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"seq\":7,\"ti", 12), 12);
    close(fd);
    st_audit_break_t brk;
    assert_int_equal(verify_dir(dir, &brk, NULL), ST_ECORRUPT);
    st_audit_t *a = open_trail(dir, 0);
    append_n(a, 2, "after");
    st_audit_close(a);
    st_audit_chain_t chain;
    int repairs = 0;
    assert_int_equal(st_audit_scan(dir, type_cb, &repairs, &chain, &brk), 0);
    assert_int_equal(repairs, 1);
    st_test_rmrf(dir);
    free(dir);
}

static void test_corrupt_tail_blocks_writes(void **state)
{
    (void)state;
    char seg[1200];
    char *dir = make_trail(3, seg, sizeof seg);
    size_t n;
    char *p = slurp(seg, &n);
    p[n - 3] = 'X'; /* the last record's prev is no longer hex */
    spit(seg, p, n);
    st_audit_config_t cfg;
    st_audit_config_defaults(&cfg);
    st_audit_opts_t o = {.cfg = &cfg, .dir = dir, .actor = "test"};
    st_audit_t *a = NULL;
    assert_int_equal(st_audit_open(&o, &a), ST_ECORRUPT);
    free(p);
    st_test_rmrf(dir);
    free(dir);
}

/* ---- sampling and configuration ----------------------------------------------------------------------- */

static void test_sample_size(void **state)
{
    (void)state;
    assert_int_equal(st_audit_sample_size(0, 0.99, 0.01), 0);
    assert_int_equal(st_audit_sample_size(10, 0.99, 0.01), 10); /* one corrupt of ten: check all */
    size_t big = st_audit_sample_size(10000000, 0.99, 0.01);
    assert_true(big >= 455 && big <= 460); /* ln(0.01)/ln(0.99) = 458.2 */
    size_t mid = st_audit_sample_size(1000, 0.99, 0.01);
    assert_true(mid > 300 && mid < 459);
    /* the guarantee itself: P(no corrupt one in the sample) <= 1 - confidence */
    double miss = 1;
    for (size_t i = 0; i < mid; i++) miss *= (double)(1000 - 10 - i) / (double)(1000 - i);
    assert_true(miss <= 0.01);
    assert_int_equal(st_audit_sample_size(500, 0.95, 0.5), 5);
}

static void test_config(void **state)
{
    (void)state;
    st_config_t *cfg = calloc(1, sizeof *cfg);
    st_config_defaults(cfg);
    snprintf(cfg->lifecycle.text, sizeof cfg->lifecycle.text,
             "audit:\n  enabled: true\n  seal_interval: 10m\n  object_lock: COMPLIANCE\n  retain: 2557d\n"
             "  segment_max_bytes: 1MiB\n  record_queries: false\n"
             "prices:\n  storage_gb_month: {STANDARD: 0.0245, DEEP_ARCHIVE: 0.0018}\n  cloudwatch_ingest_gb: "
             "0.57\n");
    cfg->lifecycle.line = 1;
    snprintf(cfg->lifecycle.file, sizeof cfg->lifecycle.file, "t.yaml");
    st_lc_config_t *lc = NULL;
    char err[4096] = "";
    assert_int_equal(st_lifecycle_config_parse(cfg, &lc, err, sizeof err), 0);
    const st_audit_config_t *ac = st_audit_config_of(lc);
    assert_true(ac->enabled);
    assert_false(ac->record_queries);
    assert_int_equal(ac->seal_interval_ns, 600 * ST_NS_PER_SEC);
    assert_string_equal(ac->lock_mode, "COMPLIANCE");
    assert_int_equal(ac->lock_retain_ns, 2557 * ST_NS_PER_DAY);
    assert_int_equal(ac->segment_max_bytes, 1048576);
    assert_true(ac->prices.storage_gb_month[1] == 0.0245);
    assert_true(ac->prices.storage_gb_month[5] == 0.0018);
    assert_true(ac->prices.storage_gb_month[4] == 0.004); /* default kept */
    assert_true(ac->prices.cloudwatch_ingest_gb == 0.57);
    st_lifecycle_config_free(lc);
    /* sizes are 1024-based, as everywhere else in the config (Loki's datasize): 2MB = 2 MiB */
    snprintf(cfg->lifecycle.text, sizeof cfg->lifecycle.text,
             "audit:\n  enabled: true\n  segment_max_bytes: 2MB\n");
    assert_int_equal(st_lifecycle_config_parse(cfg, &lc, err, sizeof err), 0);
    assert_int_equal(st_audit_config_of(lc)->segment_max_bytes, 2097152);
    st_lifecycle_config_free(lc);
    snprintf(cfg->lifecycle.text, sizeof cfg->lifecycle.text,
             "audit:\n  enabled: true\n  segment_max_bytes: 1KB\n");
    assert_int_equal(st_lifecycle_config_parse(cfg, &lc, err, sizeof err), ST_EPARSE);
    assert_non_null(strstr(err, "lifecycle.audit.segment_max_bytes: invalid size"));
    /* problems name the file, line and key */
    snprintf(cfg->lifecycle.text, sizeof cfg->lifecycle.text,
             "audit:\n  enabled: maybe\n  object_lock: COMPLIANCE\n  bogus: 1\nprices:\n  storage_gb_month: "
             "{TAPE: 1}\n");
    assert_int_equal(st_lifecycle_config_parse(cfg, &lc, err, sizeof err), ST_EPARSE);
    assert_non_null(strstr(err, "t.yaml:2: lifecycle.audit.enabled: expected true or false"));
    assert_non_null(strstr(err, "lifecycle.audit.retain: is required with object_lock"));
    assert_non_null(strstr(err, "t.yaml:4: lifecycle.audit.bogus: unknown key"));
    assert_non_null(strstr(err, "lifecycle.prices.storage_gb_month.TAPE: unknown storage class"));
    /* no section: defaults, disabled */
    cfg->lifecycle.text[0] = '\0';
    assert_int_equal(st_lifecycle_config_parse(cfg, &lc, err, sizeof err), 0);
    assert_false(st_audit_config_of(lc)->enabled);
    assert_true(st_audit_config_of(lc)->prices.storage_gb_month[5] == 0.00099);
    st_lifecycle_config_free(lc);
    free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_roundtrip),
        cmocka_unit_test(test_record_strict),
        cmocka_unit_test(test_json_get),
        cmocka_unit_test(test_chain_intact),
        cmocka_unit_test(test_tamper_change),
        cmocka_unit_test(test_tamper_delete),
        cmocka_unit_test(test_tamper_insert_and_reorder),
        cmocka_unit_test(test_rotation_and_local_seals),
        cmocka_unit_test(test_processes),
        cmocka_unit_test(test_torn_tail_repaired),
        cmocka_unit_test(test_corrupt_tail_blocks_writes),
        cmocka_unit_test(test_sample_size),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
