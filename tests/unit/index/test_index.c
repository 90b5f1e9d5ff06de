/* test_index.c: LMDB index put/get across day periods, matcher selection, label names and values. */
#include "testutil.h"

#include "common/err.h"
#include "common/timeutil.h"
#include "index/index.h"

#include <regex.h>

static char *dir;
static st_index_t *ix;
#define DAY ST_NS_PER_DAY
#define D0 (INT64_C(20000) * DAY) /* a midnight */

static bool posix_re_match(const void *re, st_str_t s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)s.n, s.p);
    return regexec(re, buf, 0, NULL, 0) == 0;
}

static void put(const char *tenant, const char *labels_text, uint64_t sid, uint64_t cid, int64_t min, int64_t max)
{
    st_labels_t l;
    char err[256];
    assert_int_equal(st_labels_parse(st_cstr(labels_text), &l, err), 0);
    st_index_write_t *w;
    assert_int_equal(st_index_write_begin(ix, &w), 0);
    st_chunk_ref_t ref;
    memset(&ref, 0, sizeof ref);
    ref.chunk_id = cid;
    ref.stream_id = sid;
    ref.min_ts = min;
    ref.max_ts = max;
    ref.entries = 10;
    ref.size = 100;
    ref.raw_bytes = 1000;
    ref.crc32 = 0xdeadbeef;
    st_chunk_local_path(cid, ref.loc.path, sizeof ref.loc.path);
    ref.loc.length = 100;
    assert_int_equal(st_index_put_chunk(w, tenant, &l, st_cstr(labels_text), &ref), 0);
    assert_int_equal(st_index_set_flushed_seq(w, tenant, sid, st_cstr(labels_text), cid * 10), 0);
    assert_int_equal(st_index_write_commit(w), 0);
    st_labels_free(&l);
}

static int setup(void **state)
{
    (void)state;
    dir = st_test_tmpdir("index");
    if (st_index_open(dir, 1 << 26, &ix) != 0) return -1;
    put("t1", "{app=\"api\", env=\"prod\"}", 1, 1, D0 + 10, D0 + 20);
    put("t1", "{app=\"web\", env=\"prod\"}", 2, 2, D0 + 30, D0 + DAY + 5); /* spans midnight */
    put("t1", "{app=\"api\", env=\"dev\", pod=\"p1\"}", 3, 3, D0 + DAY + 1, D0 + DAY + 2);
    put("t1", "{app=\"api\", env=\"prod\"}", 1, 4, D0 + 40, D0 + 50);
    put("t2", "{app=\"api\", env=\"prod\"}", 9, 5, D0 + 10, D0 + 20);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    st_index_close(ix);
    st_test_rmrf(dir);
    free(dir);
    return 0;
}

static void sel(const char *tenant, int64_t d0, int64_t d1, st_matcher_t *m, size_t nm, const uint64_t *want, size_t nwant)
{
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    st_u64vec_t out = ST_U64VEC_INIT;
    assert_int_equal(st_index_select(r, tenant, d0, d1, m, nm, &out), 0);
    assert_int_equal(out.n, nwant);
    for (size_t i = 0; i < nwant; i++) assert_true(out.v[i] == want[i]);
    st_u64vec_free(&out);
    st_index_read_end(r);
}

static void test_select(void **state)
{
    (void)state;
    int64_t d = st_day_of(D0);
    st_matcher_t eq_api = {ST_MATCH_EQ, ST_STR("app"), ST_STR("api"), NULL, NULL};
    sel("t1", d, d, &eq_api, 1, (uint64_t[]){1}, 1);
    sel("t1", d, d + 1, &eq_api, 1, (uint64_t[]){1, 3}, 2);
    sel("t2", d, d + 1, &eq_api, 1, (uint64_t[]){9}, 1); /* tenants are separate */
    st_matcher_t two[2] = {{ST_MATCH_EQ, ST_STR("env"), ST_STR("prod"), NULL, NULL},
                           {ST_MATCH_NEQ, ST_STR("app"), ST_STR("api"), NULL, NULL}};
    sel("t1", d, d + 1, two, 2, (uint64_t[]){2}, 1);
    regex_t re;
    regcomp(&re, "^(w.*|a.i)$", REG_EXTENDED | REG_NOSUB);
    st_matcher_t rem = {ST_MATCH_RE, ST_STR("app"), ST_STR("w.*|a.i"), posix_re_match, &re};
    sel("t1", d, d, &rem, 1, (uint64_t[]){1, 2}, 2);
    /* pod!="p1" matches streams without pod too */
    st_matcher_t nre[2] = {{ST_MATCH_EQ, ST_STR("app"), ST_STR("api"), NULL, NULL},
                           {ST_MATCH_NEQ, ST_STR("pod"), ST_STR("p1"), NULL, NULL}};
    sel("t1", d, d + 1, nre, 2, (uint64_t[]){1}, 1);
    /* no positive matcher: all streams of the days, filtered */
    sel("t1", d + 1, d + 1, NULL, 0, (uint64_t[]){2, 3}, 2);
    regfree(&re);
}

typedef struct {
    uint64_t ids[8];
    int n;
} got_t;

static int collect(void *arg, const st_chunk_ref_t *ref)
{
    got_t *g = arg;
    g->ids[g->n++] = ref->chunk_id;
    assert_true(ref->crc32 == 0xdeadbeef);
    return 0;
}

typedef struct {
    st_chunk_ref_t refs[4];
    int n;
} refs_got_t;

static int collect_ref(void *arg, const st_chunk_ref_t *ref)
{
    refs_got_t *g = arg;
    if (g->n < 4) g->refs[g->n] = *ref;
    g->n++;
    return 0;
}

/* Many streams sharing one label: the smallest posting drives the selection, a large posting is
 * probed per candidate, and regexes on few candidates are checked on their labels. */
static void test_select_many(void **state)
{
    (void)state;
    int64_t d = st_day_of(D0);
    for (uint64_t i = 0; i < 300; i++) {
        char l[128];
        snprintf(l, sizeof l, "{env=\"big\", group=\"g-%llu\", host=\"h-%llu\"}", (unsigned long long)(i % 3),
                 (unsigned long long)i);
        put("t3", l, 1000 + i, 1000 + i, D0 + 100, D0 + 200);
    }
    st_matcher_t one[2] = {{ST_MATCH_EQ, ST_STR("env"), ST_STR("big"), NULL, NULL},
                           {ST_MATCH_EQ, ST_STR("host"), ST_STR("h-42"), NULL, NULL}};
    sel("t3", d, d, one, 2, (uint64_t[]){1042}, 1);
    st_matcher_t grp[2] = {{ST_MATCH_EQ, ST_STR("env"), ST_STR("big"), NULL, NULL},
                           {ST_MATCH_EQ, ST_STR("group"), ST_STR("g-1"), NULL, NULL}};
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    st_u64vec_t out = ST_U64VEC_INIT;
    assert_int_equal(st_index_select(r, "t3", d, d, grp, 2, &out), 0);
    assert_int_equal(out.n, 100);
    for (size_t i = 0; i < out.n; i++) assert_true((out.v[i] - 1000) % 3 == 1);
    st_u64vec_free(&out);
    st_index_read_end(r);
    regex_t re;
    regcomp(&re, "^(g-.*)$", REG_EXTENDED | REG_NOSUB);
    st_matcher_t small[2] = {{ST_MATCH_EQ, ST_STR("host"), ST_STR("h-42"), NULL, NULL},
                             {ST_MATCH_RE, ST_STR("group"), ST_STR("g-.*"), posix_re_match, &re}};
    sel("t3", d, d, small, 2, (uint64_t[]){1042}, 1);
    regex_t re2;
    regcomp(&re2, "^(g-2)$", REG_EXTENDED | REG_NOSUB);
    st_matcher_t none[2] = {{ST_MATCH_EQ, ST_STR("host"), ST_STR("h-42"), NULL, NULL},
                            {ST_MATCH_RE, ST_STR("group"), ST_STR("g-2"), posix_re_match, &re2}};
    sel("t3", d, d, none, 2, NULL, 0);
    regex_t re3;
    regcomp(&re3, "^(h-4.)$", REG_EXTENDED | REG_NOSUB);
    st_matcher_t hosts[2] = {{ST_MATCH_EQ, ST_STR("env"), ST_STR("big"), NULL, NULL},
                             {ST_MATCH_RE, ST_STR("host"), ST_STR("h-4."), posix_re_match, &re3}};
    sel("t3", d, d, hosts, 2, (uint64_t[]){1040, 1041, 1042, 1043, 1044, 1045, 1046, 1047, 1048, 1049}, 10);
    regfree(&re);
    regfree(&re2);
    regfree(&re3);
}

/* A chunk rewritten with a narrower time range replaces the old references; a day it no longer
 * covers loses the stream's postings. */
static void test_replace_chunk(void **state)
{
    (void)state;
    put("t4", "{app=\"r\"}", 77, 70, D0 + 10, D0 + DAY + 10);
    int64_t d = st_day_of(D0);
    st_matcher_t m = {ST_MATCH_EQ, ST_STR("app"), ST_STR("r"), NULL, NULL};
    sel("t4", d + 1, d + 1, &m, 1, (uint64_t[]){77}, 1);
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    refs_got_t g;
    memset(&g, 0, sizeof g);
    assert_int_equal(st_index_chunks(r, "t4", d, 77, INT64_MIN, INT64_MAX, collect_ref, &g), 0);
    st_index_read_end(r);
    assert_int_equal(g.n, 1);
    st_chunk_ref_t nr = g.refs[0];
    nr.max_ts = D0 + 20; /* now within the first day */
    nr.entries = 3;
    st_index_write_t *w;
    assert_int_equal(st_index_write_begin(ix, &w), 0);
    assert_int_equal(st_index_replace_chunk(w, "t4", &g.refs[0], &nr), 0);
    assert_int_equal(st_index_write_commit(w), 0);
    sel("t4", d, d, &m, 1, (uint64_t[]){77}, 1);
    sel("t4", d + 1, d + 1, &m, 1, NULL, 0);
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    g.n = 0;
    assert_int_equal(st_index_chunks(r, "t4", d, 77, INT64_MIN, INT64_MAX, collect_ref, &g), 0);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.refs[0].entries, 3);
    g.n = 0;
    assert_int_equal(st_index_chunks(r, "t4", d + 1, 77, INT64_MIN, INT64_MAX, collect_ref, &g), 0);
    assert_int_equal(g.n, 0);
    st_index_read_end(r);
    /* a later min_ts (a key change) works too */
    st_chunk_ref_t nr2 = nr;
    nr2.min_ts = D0 + 15;
    assert_int_equal(st_index_write_begin(ix, &w), 0);
    assert_int_equal(st_index_replace_chunk(w, "t4", &nr, &nr2), 0);
    assert_int_equal(st_index_write_commit(w), 0);
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    g.n = 0;
    assert_int_equal(st_index_chunks(r, "t4", d, 77, INT64_MIN, INT64_MAX, collect_ref, &g), 0);
    st_index_read_end(r);
    assert_int_equal(g.n, 1);
    assert_true(g.refs[0].min_ts == D0 + 15);
    sel("t4", d, d, &m, 1, (uint64_t[]){77}, 1);
}

static void test_chunks_across_days(void **state)
{
    (void)state;
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    int64_t d = st_day_of(D0);
    got_t g = {{0}, 0};
    assert_int_equal(st_index_chunks(r, "t1", d, 1, D0, D0 + DAY, collect, &g), 0);
    assert_int_equal(g.n, 2);
    assert_true(g.ids[0] == 1 && g.ids[1] == 4);
    /* time filter */
    g.n = 0;
    assert_int_equal(st_index_chunks(r, "t1", d, 1, D0 + 21, D0 + 39, collect, &g), 0);
    assert_int_equal(g.n, 0);
    /* chunk 2 is referenced from both days */
    g.n = 0;
    assert_int_equal(st_index_chunks(r, "t1", d, 2, INT64_MIN, INT64_MAX, collect, &g), 0);
    assert_int_equal(st_index_chunks(r, "t1", d + 1, 2, INT64_MIN, INT64_MAX, collect, &g), 0);
    assert_int_equal(g.n, 2);
    assert_true(g.ids[0] == 2 && g.ids[1] == 2);
    st_str_t labels;
    uint64_t seq;
    assert_int_equal(st_index_stream(r, "t1", 2, &labels, &seq), 0);
    assert_true(st_str_eqc(labels, "{app=\"web\", env=\"prod\"}"));
    assert_true(seq == 20);
    assert_int_equal(st_index_stream(r, "t2", 2, &labels, &seq), ST_ENOTFOUND);
    st_index_read_end(r);
}

static void test_label_names_values(void **state)
{
    (void)state;
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    int64_t d = st_day_of(D0);
    st_strvec_t names = ST_STRVEC_INIT;
    assert_int_equal(st_index_label_names(r, "t1", d, d + 1, &names), 0);
    st_strvec_sort_unique(&names);
    assert_int_equal(names.n, 3);
    assert_string_equal(names.v[0], "app");
    assert_string_equal(names.v[1], "env");
    assert_string_equal(names.v[2], "pod");
    st_strvec_t vals = ST_STRVEC_INIT;
    assert_int_equal(st_index_label_values(r, "t1", d, d, ST_STR("app"), &vals), 0);
    st_strvec_sort_unique(&vals);
    assert_int_equal(vals.n, 2);
    assert_string_equal(vals.v[0], "api");
    assert_string_equal(vals.v[1], "web");
    st_strvec_free(&names);
    st_strvec_free(&vals);
    st_index_read_end(r);
}

static void test_long_values(void **state)
{
    (void)state;
    char lt[1200];
    char big[1001];
    memset(big, 'v', 1000);
    big[1000] = '\0';
    snprintf(lt, sizeof lt, "{app=\"long\", big=\"%s\"}", big);
    put("t1", lt, 77, 77, D0 + 5, D0 + 6);
    int64_t d = st_day_of(D0);
    st_matcher_t m = {ST_MATCH_EQ, ST_STR("big"), st_cstr(big), NULL, NULL};
    sel("t1", d, d, &m, 1, (uint64_t[]){77}, 1);
    st_index_read_t *r;
    assert_int_equal(st_index_read_begin(ix, &r), 0);
    st_strvec_t vals = ST_STRVEC_INIT;
    assert_int_equal(st_index_label_values(r, "t1", d, d, ST_STR("big"), &vals), 0);
    assert_int_equal(vals.n, 1);
    assert_int_equal(vals.len[0], 1000);
    st_strvec_free(&vals);
    st_index_read_end(r);
}

static void test_ref_codec(void **state)
{
    (void)state;
    st_chunk_ref_t a, b;
    memset(&a, 0, sizeof a);
    a.chunk_id = 5;
    a.min_ts = -5;
    a.max_ts = INT64_MAX;
    a.loc.kind = ST_LOC_S3;
    strcpy(a.loc.path, "bucket/key");
    a.loc.offset = 123;
    a.loc.length = 456;
    st_buf_t buf = ST_BUF_INIT;
    assert_int_equal(st_chunk_ref_encode(&a, &buf), 0);
    assert_int_equal(st_chunk_ref_decode(st_str(buf.data, buf.len), &b), 0);
    assert_memory_equal(&a, &b, sizeof a);
    assert_true(st_chunk_ref_decode(st_str(buf.data, buf.len - 3), &b) < 0);
    st_buf_free(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select),          cmocka_unit_test(test_chunks_across_days),
        cmocka_unit_test(test_label_names_values), cmocka_unit_test(test_long_values),
        cmocka_unit_test(test_ref_codec),         cmocka_unit_test(test_select_many),
        cmocka_unit_test(test_replace_chunk),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
