/* test_wal.c: WAL group commit, replay order, torn tails and truncation. */
#include "testutil.h"

#include "common/err.h"
#include "ingester/wal.h"

#include <dirent.h>
#include <pthread.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int completed, applied;
static uint64_t last_applied;

static void apply(void *arg, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)n;
    uint64_t seq = st_get_u64le(p + ST_WAL_SEQ_OFFSET);
    assert_true(seq > last_applied); /* strictly in order */
    last_applied = seq;
    applied++;
}

static void complete(void *arg, st_wal_ticket_t *list)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    for (; list; list = list->next) {
        assert_int_equal(list->status, 0);
        completed++;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static st_wal_t *open_wal(const char *dir)
{
    st_wal_opts_t o = {dir, 4096, 1 << 20, apply, complete, NULL};
    st_wal_t *w;
    assert_int_equal(st_wal_open(&o, &w), 0);
    return w;
}

static void submit(st_wal_t *w, st_wal_ticket_t *t, const char *text)
{
    st_buf_t b = ST_BUF_INIT;
    assert_int_equal(st_wal_record_begin(&b, 1), 0);
    st_buf_puts(&b, text);
    assert_int_equal(st_wal_submit(w, &b, 1, t), 0);
    assert_null(b.data); /* ownership moved */
}

static int nrep;
static char rep[200][64];
static void replay_cb(void *arg, uint64_t seq, const uint8_t *p, size_t n)
{
    (void)arg;
    (void)seq;
    size_t len = n - 9 > 42 ? 42 : n - 9; /* keep the "record-NNN-padding..." prefix */
    snprintf(rep[nrep++], 64, "%.*s", (int)len, (const char *)p + 9);
}

static void test_commit_replay_truncate(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("wal");
    st_wal_t *w = open_wal(dir);
    uint64_t maxs;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_true(maxs == 0);
    assert_int_equal(st_wal_start(w, 1), 0);
    static st_wal_ticket_t t[100];
    char text[64];
    for (int i = 0; i < 100; i++) {
        char big[300];
        snprintf(text, sizeof text, "record-%03d-%s", i, "padding-padding-padding-padding");
        snprintf(big, sizeof big, "%s%0200d", text, 0);
        submit(w, &t[i], big);
        /* wait for each one so batches (and segments, rotated between batches) stay small */
        pthread_mutex_lock(&mu);
        while (completed < i + 1) pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    pthread_mutex_lock(&mu);
    while (completed < 100) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    assert_int_equal(applied, 100);
    assert_true(t[99].last_seq == 100);
    st_wal_close(w);

    /* replay sees all 100 in order (several segments of 4 KiB) */
    w = open_wal(dir);
    nrep = 0;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_int_equal(nrep, 100);
    assert_true(maxs == 100);
    assert_string_equal(rep[0], "record-000-padding-padding-padding-padding");
    assert_string_equal(rep[99], "record-099-padding-padding-padding-padding");
    /* truncation keeps what is still needed */
    st_wal_truncate(w, 50);
    st_wal_close(w);
    w = open_wal(dir);
    nrep = 0;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_true(nrep < 100 && nrep >= 51); /* whole segments below seq 50 are gone, the rest stays */
    assert_string_equal(rep[nrep - 1], "record-099-padding-padding-padding-padding");
    st_wal_close(w);
    st_test_rmrf(dir);
    free(dir);
}

static void test_torn_tail(void **state)
{
    (void)state;
    char *dir = st_test_tmpdir("waltorn");
    completed = applied = 0;
    last_applied = 0;
    st_wal_t *w = open_wal(dir);
    uint64_t maxs;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_int_equal(st_wal_start(w, 1), 0);
    static st_wal_ticket_t t[3];
    submit(w, &t[0], "one");
    submit(w, &t[1], "two");
    pthread_mutex_lock(&mu);
    while (completed < 2) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    st_wal_close(w);
    /* append half a record to the newest segment, as a crash mid-write would */
    DIR *d = opendir(dir);
    struct dirent *e;
    char last[4096] = "";
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".wal") && strcmp(e->d_name, last + (last[0] ? strlen(dir) + 1 : 0)) > 0)
            snprintf(last, sizeof last, "%s/%s", dir, e->d_name);
    closedir(d);
    FILE *f = fopen(last, "ab");
    fwrite("\x40\x00\x00\x00garbage", 1, 11, f);
    fclose(f);
    w = open_wal(dir);
    nrep = 0;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_int_equal(nrep, 2);
    assert_string_equal(rep[1], "two");
    assert_int_equal(st_wal_start(w, maxs + 1), 0);
    submit(w, &t[2], "three");
    pthread_mutex_lock(&mu);
    while (completed < 3) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    st_wal_close(w);
    w = open_wal(dir);
    nrep = 0;
    assert_int_equal(st_wal_replay(w, replay_cb, NULL, &maxs), 0);
    assert_int_equal(nrep, 3);
    assert_string_equal(rep[2], "three");
    assert_true(maxs == 3);
    st_wal_close(w);
    st_test_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_commit_replay_truncate), cmocka_unit_test(test_torn_tail)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
