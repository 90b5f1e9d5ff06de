/* trail.c: the audit trail's writer: segments under one directory, appends serialised across threads (a
 * mutex) and processes (flock on <dir>/lock, the tail re-read whenever another process wrote), durable
 * (fdatasync per durable record, per batch for queued ones), rotation by size and age, and seals (upload
 * of closed segments to S3, then a "seal" record). Formats: docs/formats.md. */
#include "audit/audit_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD         "audit"
#define ZERO_HASH   "0000000000000000000000000000000000000000000000000000000000000000"
#define QUEUE_MAX   200000 /* queued records (queries) before new ones are dropped and counted */
#define QUEUE_BYTES (64u << 20)

typedef struct qrec {
    struct qrec *next;
    int64_t time_ns;
    char *type, *tenant, *actor, *details; /* one allocation: the struct, then the strings */
    size_t details_len;
} qrec_t;

struct st_audit {
    st_audit_config_t cfg;
    char dir[1024];
    char actor[300];
    st_s3_client_t *s3;
    char bucket[64];
    char prefix[256];
    bool background;
    /* writes */
    pthread_mutex_t wmu;
    int lockfd;
    int segfd;
    uint64_t segno, seg_size, seg_first_seq, last_seq;
    int64_t seg_open_ns;
    char last_hash[ST_AUDIT_HASH_HEX];
    char last_type[48];
    bool tail_ok;
    uint64_t repaired_bytes; /* a torn tail cut off: recorded by the next write */
    char repaired_sha[ST_AUDIT_HASH_HEX];
    /* queue */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    qrec_t *qhead, **qtail;
    size_t qn, qbytes;
    uint64_t dropped;
    bool stop, thr_on;
    pthread_t thr;
};

static _Atomic(st_audit_t *) g_trail;
static st_metric_t *m_records, *m_fail, *m_dropped, *m_seals, *m_seal_fail;

void st_audit_set_global(st_audit_t *a)
{
    atomic_store(&g_trail, a);
}
st_audit_t *st_audit_global(void)
{
    return atomic_load(&g_trail);
}
const char *st_audit_dir(const st_audit_t *a)
{
    return a->dir;
}
const char *st_audit_actor(const st_audit_t *a)
{
    return a->actor;
}
const st_audit_config_t *st_audit_cfg(const st_audit_t *a)
{
    return &a->cfg;
}

static void metrics_init(void)
{
    m_records = st_counter("strata_audit_records_total", "Audit records written.", NULL);
    m_fail = st_counter(
        "strata_audit_append_failures_total",
        "Audit records that could not be written (the operation was logged; see docs/compliance.md).", NULL);
    m_dropped =
        st_counter("strata_audit_dropped_records_total",
                   "Queued audit records dropped because the queue was full (recorded as trail.gap).", NULL);
    m_seals = st_counter("strata_audit_seals_total", "Audit segments sealed.", NULL);
    m_seal_fail =
        st_counter("strata_audit_seal_failures_total", "Audit segment seals that failed (retried).", NULL);
}

/* ---- files -------------------------------------------------------------------------------------------- */

static int read_whole(const char *path, st_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    int rc = fstat(fd, &st) < 0 ? -errno : 0;
    if (rc == 0) rc = st_buf_reserve(out, (size_t)st.st_size);
    if (rc == 0) rc = st_pread_full(fd, out->data, (size_t)st.st_size, 0);
    if (rc == 0) out->len = (size_t)st.st_size;
    close(fd);
    return rc;
}

/* The first line of fd (at most 1 MiB). */
static int first_line(int fd, st_buf_t *out)
{
    st_buf_reset(out);
    char tmp[4096];
    off_t off = 0;
    while (out->len < (1u << 20)) {
        ssize_t k = pread(fd, tmp, sizeof tmp, off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return k < 0 ? -errno : ST_ECORRUPT;
        char *nl = memchr(tmp, '\n', (size_t)k);
        ST_TRY(st_buf_append(out, tmp, nl ? (size_t)(nl - tmp) : (size_t)k));
        if (nl) return 0;
        off += k;
    }
    return ST_ECORRUPT;
}

/* The last complete line of fd (size bytes, ending with '\n'). */
static int last_line(int fd, uint64_t size, st_buf_t *out)
{
    st_buf_reset(out);
    if (size < 2) return ST_ECORRUPT;
    uint64_t end = size - 1, pos = end; /* the final '\n' is at end */
    char tmp[8192];
    for (;;) {
        uint64_t from = pos >= sizeof tmp ? pos - sizeof tmp : 0;
        size_t n = (size_t)(pos - from);
        if (n == 0) break;
        ST_TRY(st_pread_full(fd, tmp, n, (uint64_t)from));
        char *nl = NULL;
        for (size_t i = n; i > 0; i--)
            if (tmp[i - 1] == '\n') {
                nl = tmp + i - 1;
                break;
            }
        if (nl) {
            from += (uint64_t)(nl - tmp) + 1;
            pos = from;
            break;
        }
        pos = from;
        if (end - pos > (64u << 20)) return ST_ECORRUPT;
    }
    ST_TRY(st_buf_reserve(out, (size_t)(end - pos)));
    ST_TRY(st_pread_full(fd, out->data, (size_t)(end - pos), (uint64_t)pos));
    out->len = (size_t)(end - pos);
    return 0;
}

static int fsync_dir(const char *dir)
{
    return st_fsync_dir(dir);
}

/* ---- the tail ----------------------------------------------------------------------------------------- */

static int render_append(st_audit_t *a, st_buf_t *buf, int64_t t, const char *type, const char *actor,
                         const char *tenant, st_str_t details, uint64_t *seq, char hash[ST_AUDIT_HASH_HEX])
{
    size_t start = buf->len;
    int rc = st_audit_record_render(buf, *seq + 1, t, type, actor ? actor : a->actor, tenant, details, hash);
    if (rc < 0) {
        buf->len = start;
        return rc;
    }
    st_audit_sha256_hex(buf->data + start, buf->len - start, hash);
    (*seq)++;
    return st_buf_putc(buf, '\n');
}

/* Creates segment segno holding its segment.open record, chained to (seq, hash). prev_sha: the SHA-256
 * of the whole previous segment ("" for the first). The file may exist empty (a crash right after its
 * creation). */
static int create_segment(st_audit_t *a, uint64_t segno, uint64_t seq, const char *hash, const char *prev_sha)
{
    char path[1200];
    st_audit_segment_path(a->dir, segno, path, sizeof path);
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size != 0) {
        close(fd);
        return -EEXIST;
    }
    st_buf_t d = ST_BUF_INIT, line = ST_BUF_INIT;
    st_buf_printf(&d, "{\"segment\":%llu,\"format\":1,\"hash\":\"sha256\"", (unsigned long long)segno);
    if (segno > 1)
        st_buf_printf(&d, ",\"previous_segment\":%llu,\"previous_sha256\":\"%s\",\"previous_last_seq\":%llu",
                      (unsigned long long)(segno - 1), prev_sha, (unsigned long long)seq);
    int rc = st_buf_putc(&d, '}');
    char h[ST_AUDIT_HASH_HEX];
    snprintf(h, sizeof h, "%s", hash);
    uint64_t s = seq;
    int64_t now = st_now_ns();
    if (rc == 0) rc = render_append(a, &line, now, "segment.open", NULL, "", st_str(d.data, d.len), &s, h);
    if (rc == 0) rc = st_write_full(fd, line.data, line.len);
    if (rc == 0 && fsync(fd) < 0) rc = -errno;
    if (rc == 0) rc = fsync_dir(a->dir);
    if (rc < 0) {
        close(fd);
    } else {
        if (a->segfd >= 0) close(a->segfd);
        a->segfd = fd;
        a->segno = segno;
        a->seg_size = line.len;
        a->seg_first_seq = s;
        a->seg_open_ns = now;
        a->last_seq = s;
        memcpy(a->last_hash, h, sizeof h);
        snprintf(a->last_type, sizeof a->last_type, "segment.open");
        a->tail_ok = true;
    }
    st_buf_free(&d);
    st_buf_free(&line);
    return rc;
}

/* The seq and hash of the last record of segment segno (for a new segment's open record). */
static int segment_tail(st_audit_t *a, uint64_t segno, uint64_t *seq, char hash[ST_AUDIT_HASH_HEX], char *sha)
{
    char path[1200];
    st_audit_segment_path(a->dir, segno, path, sizeof path);
    st_buf_t b = ST_BUF_INIT;
    int rc = read_whole(path, &b);
    if (rc == 0 && (b.len < 2 || b.data[b.len - 1] != '\n')) rc = ST_ECORRUPT;
    if (rc == 0) {
        size_t e = b.len - 1, s = e;
        while (s > 0 && b.data[s - 1] != '\n') s--;
        st_audit_rec_t rec;
        char why[200];
        rc = st_audit_record_parse(st_str(b.data + s, e - s), &rec, why, sizeof why) < 0 ? ST_ECORRUPT : 0;
        if (rc == 0) {
            *seq = rec.seq;
            memcpy(hash, rec.hash, ST_AUDIT_HASH_HEX);
            st_audit_sha256_hex(b.data, b.len, sha);
        }
    }
    st_buf_free(&b);
    return rc;
}

/* Brings the cached tail up to date with the files (another process may have appended or rotated).
 * Called with wmu and the flock held. */
static int sync_tail(st_audit_t *a)
{
    char path[1200];
    if (a->segfd < 0) {
        st_u64vec_t segs = ST_U64VEC_INIT;
        int rc = st_audit_list_segments(a->dir, &segs);
        uint64_t last = segs.n ? segs.v[segs.n - 1] : 0;
        st_u64vec_free(&segs);
        if (rc < 0) return rc;
        if (last == 0) return create_segment(a, 1, 0, ZERO_HASH, "");
        st_audit_segment_path(a->dir, last, path, sizeof path);
        if ((a->segfd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0) return -errno;
        a->segno = last;
        a->tail_ok = false;
    }
    for (;;) { /* rotated by another process */
        struct stat st;
        st_audit_segment_path(a->dir, a->segno + 1, path, sizeof path);
        if (stat(path, &st) < 0) break;
        close(a->segfd);
        if ((a->segfd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0) return -errno;
        a->segno++;
        a->tail_ok = false;
    }
    struct stat st;
    if (fstat(a->segfd, &st) < 0) return -errno;
    uint64_t size = (uint64_t)st.st_size;
    if (a->tail_ok && size == a->seg_size) return 0;
    if (size == 0) {
        /* created but its first record never written: write it now */
        uint64_t seq = 0;
        char hash[ST_AUDIT_HASH_HEX] = ZERO_HASH, sha[ST_AUDIT_HASH_HEX] = "";
        if (a->segno > 1) ST_TRY(segment_tail(a, a->segno - 1, &seq, hash, sha));
        close(a->segfd);
        a->segfd = -1;
        return create_segment(a, a->segno, seq, hash, sha);
    }
    st_buf_t b = ST_BUF_INIT;
    int rc = 0;
    char c;
    if ((rc = st_pread_full(a->segfd, &c, 1, (uint64_t)size - 1)) < 0) return rc;
    if (c != '\n') {
        /* a torn record (a crash in the middle of a write): cut it off and record that */
        uint64_t keep = size;
        char tmp[4096];
        while (keep > 0) {
            uint64_t from = keep > sizeof tmp ? keep - sizeof tmp : 0;
            if ((rc = st_pread_full(a->segfd, tmp, (size_t)(keep - from), (uint64_t)from)) < 0) return rc;
            size_t i = (size_t)(keep - from);
            while (i > 0 && tmp[i - 1] != '\n') i--;
            if (i > 0) {
                keep = from + i;
                break;
            }
            keep = from;
        }
        st_buf_t cut = ST_BUF_INIT;
        if ((rc = st_buf_reserve(&cut, (size_t)(size - keep))) < 0) return rc;
        if ((rc = st_pread_full(a->segfd, cut.data, (size_t)(size - keep), (uint64_t)keep)) == 0) {
            st_audit_sha256_hex(cut.data, (size_t)(size - keep), a->repaired_sha);
            a->repaired_bytes = size - keep;
        }
        st_buf_free(&cut);
        if (rc == 0 && ftruncate(a->segfd, (off_t)keep) < 0) rc = -errno;
        if (rc == 0 && fsync(a->segfd) < 0) rc = -errno;
        if (rc < 0) return rc;
        ST_LOG_WARN(
            MOD,
            "msg=\"incomplete audit record cut off (a crash during a write); recorded as trail.repair\" "
            "segment=%llu bytes=%llu",
            (unsigned long long)a->segno, (unsigned long long)(size - keep));
        size = keep;
        if (size == 0) return sync_tail(a);
    }
    st_audit_rec_t rec;
    char why[200];
    if ((rc = first_line(a->segfd, &b)) == 0 &&
        st_audit_record_parse(st_str(b.data, b.len), &rec, why, sizeof why) == 0) {
        a->seg_first_seq = rec.seq;
        a->seg_open_ns = rec.time_ns;
    } else if (rc == 0) {
        rc = ST_ECORRUPT;
    }
    if (rc == 0 && (rc = last_line(a->segfd, size, &b)) == 0) {
        if (st_audit_record_parse(st_str(b.data, b.len), &rec, why, sizeof why) == 0) {
            a->last_seq = rec.seq;
            memcpy(a->last_hash, rec.hash, sizeof a->last_hash);
            snprintf(a->last_type, sizeof a->last_type, "%s", rec.type);
        } else {
            rc = ST_ECORRUPT;
        }
    }
    st_buf_free(&b);
    if (rc < 0) {
        ST_LOG_ERROR(
            MOD,
            "msg=\"the audit trail's last segment does not end with a valid record; nothing is appended "
            "until it is repaired (strata audit verify names the break)\" segment=%llu err=\"%s\"",
            (unsigned long long)a->segno, st_strerror(rc));
        return rc;
    }
    a->seg_size = size;
    a->tail_ok = true;
    return 0;
}

static int lock_trail(st_audit_t *a)
{
    pthread_mutex_lock(&a->wmu);
    while (flock(a->lockfd, LOCK_EX) < 0) {
        if (errno == EINTR) continue;
        int e = -errno;
        pthread_mutex_unlock(&a->wmu);
        return e;
    }
    return 0;
}

static void unlock_trail(st_audit_t *a)
{
    flock(a->lockfd, LOCK_UN);
    pthread_mutex_unlock(&a->wmu);
}

/* Closes the active segment and opens the next. With the lock held and the tail in sync. */
static int rotate(st_audit_t *a)
{
    char path[1200], sha[ST_AUDIT_HASH_HEX];
    st_audit_segment_path(a->dir, a->segno, path, sizeof path);
    st_buf_t b = ST_BUF_INIT;
    int rc = read_whole(path, &b);
    if (rc == 0) st_audit_sha256_hex(b.data ? b.data : "", b.len, sha);
    st_buf_free(&b);
    if (rc == 0) rc = create_segment(a, a->segno + 1, a->last_seq, a->last_hash, sha);
    if (rc < 0) ST_LOG_ERROR(MOD, "msg=\"cannot start a new audit segment\" err=\"%s\"", st_strerror(rc));
    return rc;
}

static bool has_content(const st_audit_t *a)
{
    if (a->last_seq <= a->seg_first_seq) return false;
    return !(a->last_seq == a->seg_first_seq + 1 && strcmp(a->last_type, "seal") == 0);
}

/* Writes the queued records in list followed by one more record (type non-NULL), in one write, fsynced
 * when durable. The caller keeps list (freed on success, put back in the queue on failure). */
static int write_records(st_audit_t *a, qrec_t *list, uint64_t dropped, const char *type, const char *tenant,
                         const char *actor, st_str_t details, bool durable, st_audit_ref_t *ref)
{
    st_buf_t buf = ST_BUF_INIT;
    size_t nrec = 0;
    int rc = lock_trail(a);
    if (rc == 0) {
        rc = sync_tail(a);
        uint64_t seq = a->last_seq;
        char hash[ST_AUDIT_HASH_HEX];
        memcpy(hash, a->last_hash, sizeof hash);
        int64_t now = st_now_ns();
        if (rc == 0 && a->repaired_bytes) {
            st_buf_t d = ST_BUF_INIT;
            st_buf_printf(&d, "{\"segment\":%llu,\"truncated_bytes\":%llu,\"sha256\":\"%s\"}",
                          (unsigned long long)a->segno, (unsigned long long)a->repaired_bytes,
                          a->repaired_sha);
            rc = render_append(a, &buf, now, "trail.repair", NULL, "", st_str(d.data, d.len), &seq, hash);
            st_buf_free(&d);
            nrec++;
        }
        if (rc == 0 && dropped) {
            char d[128];
            snprintf(d, sizeof d, "{\"dropped\":%llu,\"reason\":\"queue full\"}",
                     (unsigned long long)dropped);
            rc = render_append(a, &buf, now, "trail.gap", NULL, "", st_cstr(d), &seq, hash);
            nrec++;
        }
        for (qrec_t *q = list; rc == 0 && q; q = q->next, nrec++)
            rc = render_append(a, &buf, q->time_ns, q->type, q->actor, q->tenant,
                               st_str(q->details, q->details_len), &seq, hash);
        if (rc == 0 && type) {
            rc = render_append(a, &buf, now, type, actor, tenant, details, &seq, hash);
            nrec++;
        }
        if (rc == 0 && buf.len) rc = st_write_full(a->segfd, buf.data, buf.len);
        if (rc == 0 && buf.len && durable && fdatasync(a->segfd) < 0) rc = -errno;
        if (rc == 0) {
            a->seg_size += buf.len;
            a->last_seq = seq;
            memcpy(a->last_hash, hash, sizeof hash);
            if (nrec) {
                const char *lt = type ? type : NULL;
                if (lt == NULL)
                    for (qrec_t *q = list; q; q = q->next) lt = q->type;
                if (lt) snprintf(a->last_type, sizeof a->last_type, "%s", lt);
            }
            a->repaired_bytes = 0;
            if (ref) {
                ref->seq = seq;
                memcpy(ref->hash, hash, sizeof hash);
            }
            if (a->seg_size >= a->cfg.segment_max_bytes) rotate(a); /* a failure is retried next write */
        } else {
            a->tail_ok = false; /* a partial write is cut off by the next sync */
        }
        unlock_trail(a);
    }
    st_buf_free(&buf);
    if (rc < 0) {
        st_counter_add(m_fail, nrec ? nrec : 1);
        ST_LOG_ERROR(MOD, "msg=\"cannot write audit records\" records=%zu err=\"%s\"",
                     nrec ? nrec : (size_t)1, st_strerror(rc));
    } else {
        st_counter_add(m_records, nrec);
    }
    return rc;
}

static qrec_t *take_queue(st_audit_t *a, uint64_t *dropped)
{
    pthread_mutex_lock(&a->qmu);
    qrec_t *l = a->qhead;
    a->qhead = NULL;
    a->qtail = &a->qhead;
    a->qn = a->qbytes = 0;
    *dropped = a->dropped;
    a->dropped = 0;
    pthread_mutex_unlock(&a->qmu);
    return l;
}

/* After a write: frees the records taken from the queue, or puts them back at its front (with the
 * count of dropped ones) when the write failed, so the next write retries them. */
static void settle_queue(st_audit_t *a, qrec_t *l, uint64_t dropped, int rc)
{
    if (rc == 0) {
        while (l) {
            qrec_t *n = l->next;
            free(l);
            l = n;
        }
        return;
    }
    pthread_mutex_lock(&a->qmu);
    if (l) {
        qrec_t *last = l;
        size_t n = 1, bytes = l->details_len;
        while (last->next) {
            last = last->next;
            n++;
            bytes += last->details_len;
        }
        last->next = a->qhead;
        if (a->qhead == NULL) a->qtail = &last->next;
        a->qhead = l;
        a->qn += n;
        a->qbytes += bytes;
    }
    a->dropped += dropped;
    pthread_mutex_unlock(&a->qmu);
}

int st_audit_append(st_audit_t *a, const char *type, const char *tenant, const char *actor, st_str_t details,
                    bool durable, st_audit_ref_t *ref)
{
    if (a == NULL) return 0;
    uint64_t dropped;
    qrec_t *l = take_queue(a, &dropped);
    int rc = write_records(a, l, dropped, type, tenant, actor, details, durable, ref);
    settle_queue(a, l, dropped, rc);
    return rc;
}

int st_audit_flush(st_audit_t *a)
{
    if (a == NULL) return 0;
    uint64_t dropped;
    qrec_t *l = take_queue(a, &dropped);
    if (l == NULL && dropped == 0) return 0;
    int rc = write_records(a, l, dropped, NULL, NULL, NULL, ST_STR(""), true, NULL);
    settle_queue(a, l, dropped, rc);
    return rc;
}

void st_audit_enqueue(st_audit_t *a, const char *type, const char *tenant, const char *actor,
                      st_str_t details)
{
    if (a == NULL) return;
    size_t lt = strlen(type) + 1, ln = strlen(tenant ? tenant : "") + 1,
           la = strlen(actor ? actor : a->actor) + 1;
    qrec_t *q = malloc(sizeof *q + lt + ln + la + details.n + 1);
    bool flush_now = false;
    pthread_mutex_lock(&a->qmu);
    if (q == NULL || a->qn >= QUEUE_MAX || a->qbytes + details.n > QUEUE_BYTES) {
        a->dropped++;
        st_counter_inc(m_dropped);
        free(q);
        q = NULL;
    } else {
        char *p = (char *)(q + 1);
        q->next = NULL;
        q->time_ns = st_now_ns();
        q->type = memcpy(p, type, lt);
        q->tenant = memcpy(p + lt, tenant ? tenant : "", ln);
        q->actor = memcpy(p + lt + ln, actor ? actor : a->actor, la);
        q->details = p + lt + ln + la;
        memcpy(q->details, details.p, details.n);
        q->details[details.n] = '\0';
        q->details_len = details.n;
        *a->qtail = q;
        a->qtail = &q->next;
        a->qn++;
        a->qbytes += details.n;
        flush_now = !a->background && a->qn >= 256;
    }
    pthread_mutex_unlock(&a->qmu);
    if (flush_now) st_audit_flush(a);
}

/* ---- seals ----------------------------------------------------------------------------------------------
 */

static int count_lines(st_str_t b, uint64_t *first_seq, uint64_t *last_seq, uint64_t *n)
{
    *n = 0;
    size_t off = 0, last_start = 0;
    while (off < b.n) {
        const char *nl = memchr(b.p + off, '\n', b.n - off);
        if (nl == NULL) return ST_ECORRUPT;
        if (*n == 0) {
            st_audit_rec_t r;
            char why[200];
            if (st_audit_record_parse(st_str(b.p, (size_t)(nl - b.p)), &r, why, sizeof why) < 0)
                return ST_ECORRUPT;
            *first_seq = r.seq;
        }
        last_start = off;
        (*n)++;
        off = (size_t)(nl - b.p) + 1;
    }
    if (*n == 0) return ST_ECORRUPT;
    st_audit_rec_t r;
    char why[200];
    const char *e = memchr(b.p + last_start, '\n', b.n - last_start);
    if (st_audit_record_parse(st_str(b.p + last_start, (size_t)(e - (b.p + last_start))), &r, why,
                              sizeof why) < 0)
        return ST_ECORRUPT;
    *last_seq = r.seq;
    return 0;
}

/* Uploads segment k (bytes b) unless an identical sealed copy exists. */
static int upload_segment(st_audit_t *a, uint64_t k, st_str_t b, const char *sha, char *version, size_t vcap,
                          time_t *retain)
{
    char key[512];
    st_audit_seal_key(a->prefix, k, key, sizeof key);
    st_s3_put_opts_t po;
    memset(&po, 0, sizeof po);
    po.content_type = "application/x-ndjson";
    po.if_none_match = true;
    *retain = 0;
    if (a->cfg.lock_mode[0] && a->cfg.lock_retain_ns > 0) {
        po.lock_mode = a->cfg.lock_mode;
        po.lock_retain_until = *retain = (time_t)((st_now_ns() + a->cfg.lock_retain_ns) / ST_NS_PER_SEC);
    }
    st_s3_put_result_t res;
    st_s3_error_t err;
    memset(&res, 0, sizeof res);
    memset(&err, 0, sizeof err);
    int rc = st_s3_put_object(a->s3, a->bucket, key, b.p, b.n, &po, &res, &err);
    if (rc == 0) {
        snprintf(version, vcap, "%s", res.version_id);
        return 0;
    }
    if (rc != ST_S3_EPRECONDITION) {
        ST_LOG_ERROR(MOD,
                     "msg=\"sealing an audit segment failed; retried later\" key=%s err=\"%s\" s3_code=%s",
                     key, st_s3_strerror(rc), err.code);
        return rc;
    }
    /* a copy exists (an earlier attempt that was not recorded): adopt it only if it is the same */
    st_buf_t got = ST_BUF_INIT;
    st_s3_object_info_t info;
    rc = st_s3_get_object(a->s3, a->bucket, key, NULL, &got, &info, &err);
    char gsha[ST_AUDIT_HASH_HEX] = "";
    if (rc == 0) st_audit_sha256_hex(got.data ? got.data : "", got.len, gsha);
    st_buf_free(&got);
    if (rc == 0 && strcmp(gsha, sha) != 0) {
        ST_LOG_ERROR(
            MOD,
            "msg=\"a different sealed copy of this audit segment exists in object storage; not sealed "
            "(strata audit verify reports it)\" key=%s local_sha256=%s sealed_sha256=%s",
            key, sha, gsha);
        return ST_ECORRUPT;
    }
    if (rc == 0) {
        snprintf(version, vcap, "%s", info.version_id);
        *retain = info.lock_retain_until;
    }
    return rc;
}

static int seal_one(st_audit_t *a, uint64_t k)
{
    char path[1200], marker[1200];
    st_audit_segment_path(a->dir, k, path, sizeof path);
    snprintf(marker, sizeof marker, "%s/%016llx.sealed", a->dir, (unsigned long long)k);
    st_buf_t b = ST_BUF_INIT, d = ST_BUF_INIT;
    int rc = read_whole(path, &b);
    uint64_t first = 0, last = 0, n = 0;
    char sha[ST_AUDIT_HASH_HEX], version[160] = "", key[512] = "";
    time_t retain = 0;
    if (rc == 0) rc = count_lines(st_str(b.data ? b.data : "", b.len), &first, &last, &n);
    if (rc == 0) st_audit_sha256_hex(b.data, b.len, sha);
    if (rc == 0 && a->s3) {
        rc = upload_segment(a, k, st_str(b.data, b.len), sha, version, sizeof version, &retain);
        st_audit_seal_key(a->prefix, k, key, sizeof key);
    }
    if (rc == 0) {
        st_buf_printf(&d,
                      "{\"segment\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,\"records\":%llu,\"bytes\":%zu,"
                      "\"sha256\":\"%s\",\"stored\":\"%s\",\"bucket\":",
                      (unsigned long long)k, (unsigned long long)first, (unsigned long long)last,
                      (unsigned long long)n, b.len, sha, a->s3 ? "s3" : "local");
        st_json_put_cstr(&d, a->s3 ? a->bucket : "");
        st_buf_puts(&d, ",\"key\":");
        st_json_put_cstr(&d, key);
        st_buf_puts(&d, ",\"version_id\":");
        st_json_put_cstr(&d, version);
        st_buf_puts(&d, ",\"lock_mode\":");
        st_json_put_cstr(&d, retain ? a->cfg.lock_mode : "");
        char ru[40] = "";
        if (retain) st_format_rfc3339_sec((int64_t)retain * ST_NS_PER_SEC, ru);
        st_buf_puts(&d, ",\"retain_until\":");
        st_json_put_cstr(&d, ru);
        rc = st_buf_putc(&d, '}');
    }
    st_audit_ref_t ref;
    if (rc == 0) rc = st_audit_append(a, "seal", "", NULL, st_str(d.data, d.len), true, &ref);
    if (rc == 0) {
        char m[128];
        int mn = snprintf(m, sizeof m, "%llu %s\n", (unsigned long long)ref.seq, ref.hash);
        int fd = open(marker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            if (st_write_full(fd, m, (size_t)mn) == 0) fsync(fd);
            close(fd);
        }
        st_counter_inc(m_seals);
        ST_LOG_INFO(MOD, "msg=\"audit segment sealed\" segment=%llu records=%llu stored=%s",
                    (unsigned long long)k, (unsigned long long)n, a->s3 ? "s3" : "local");
    } else {
        st_counter_inc(m_seal_fail);
    }
    st_buf_free(&b);
    st_buf_free(&d);
    return rc;
}

int st_audit_seal(st_audit_t *a, bool force)
{
    if (a == NULL) return 0;
    st_audit_flush(a);
    int rc = lock_trail(a);
    if (rc < 0) return rc;
    rc = sync_tail(a);
    bool due =
        rc == 0 && has_content(a) && (force || st_now_ns() - a->seg_open_ns >= a->cfg.seal_interval_ns);
    if (due) rc = rotate(a);
    uint64_t active = a->segno;
    unlock_trail(a);
    if (rc < 0) return rc;
    /* one sealer at a time (others skip: the holder seals everything pending) */
    char lp[1200];
    snprintf(lp, sizeof lp, "%s/seal.lock", a->dir);
    int lfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0) return -errno;
    if (flock(lfd, LOCK_EX | (force ? 0 : LOCK_NB)) < 0) {
        close(lfd);
        return 0;
    }
    st_u64vec_t segs = ST_U64VEC_INIT;
    rc = st_audit_list_segments(a->dir, &segs);
    for (size_t i = 0; rc == 0 && i < segs.n; i++) {
        uint64_t k = segs.v[i];
        if (k >= active) continue;
        char marker[1200];
        struct stat st;
        snprintf(marker, sizeof marker, "%s/%016llx.sealed", a->dir, (unsigned long long)k);
        if (stat(marker, &st) == 0) continue;
        rc = seal_one(a, k);
    }
    st_u64vec_free(&segs);
    flock(lfd, LOCK_UN);
    close(lfd);
    return rc;
}

/* ---- life cycle --------------------------------------------------------------------------------------- */

static void *thread_main(void *arg)
{
    st_audit_t *a = arg;
    int64_t every = a->cfg.seal_interval_ns / 4;
    if (every > 60 * ST_NS_PER_SEC) every = 60 * ST_NS_PER_SEC;
    if (every < ST_NS_PER_SEC) every = ST_NS_PER_SEC;
    int64_t next_seal = st_mono_ns() + every;
    pthread_mutex_lock(&a->qmu);
    while (!a->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t until = (int64_t)ts.tv_sec * ST_NS_PER_SEC + ts.tv_nsec + a->cfg.flush_interval_ns;
        ts.tv_sec = (time_t)(until / ST_NS_PER_SEC);
        ts.tv_nsec = (long)(until % ST_NS_PER_SEC);
        pthread_cond_timedwait(&a->qcv, &a->qmu, &ts);
        if (a->stop) break;
        bool work = a->qn > 0 || a->dropped > 0;
        pthread_mutex_unlock(&a->qmu);
        if (work) st_audit_flush(a);
        if (st_mono_ns() >= next_seal) {
            st_audit_seal(a, false);
            next_seal = st_mono_ns() + every;
        }
        pthread_mutex_lock(&a->qmu);
    }
    pthread_mutex_unlock(&a->qmu);
    return NULL;
}

static void actor_of(const char *role, char *out, size_t cap)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct passwd pw, *res = NULL;
    char pbuf[1024];
    const char *user = getpwuid_r(geteuid(), &pw, pbuf, sizeof pbuf, &res) == 0 && res ? res->pw_name : NULL;
    char uid[32];
    if (user == NULL) {
        snprintf(uid, sizeof uid, "uid%u", (unsigned)geteuid());
        user = uid;
    }
    snprintf(out, cap, "%s/%s@%s", role && role[0] ? role : "strata", user, host);
}

int st_audit_open(const st_audit_opts_t *o, st_audit_t **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, metrics_init);
    if (o->dir == NULL || o->dir[0] == '\0') return -EINVAL;
    st_audit_t *a = calloc(1, sizeof *a);
    if (a == NULL) return -ENOMEM;
    if (o->cfg)
        a->cfg = *o->cfg;
    else
        st_audit_config_defaults(&a->cfg);
    snprintf(a->dir, sizeof a->dir, "%s", o->dir);
    actor_of(o->actor, a->actor, sizeof a->actor);
    snprintf(a->bucket, sizeof a->bucket, "%s", o->bucket ? o->bucket : "");
    snprintf(a->prefix, sizeof a->prefix, "%s", o->prefix ? o->prefix : "");
    a->background = o->background;
    a->segfd = -1;
    a->lockfd = -1;
    a->qtail = &a->qhead;
    pthread_mutex_init(&a->wmu, NULL);
    pthread_mutex_init(&a->qmu, NULL);
    pthread_cond_init(&a->qcv, NULL);
    int rc = st_mkdirs(a->dir, 0755);
    char lp[1200];
    snprintf(lp, sizeof lp, "%s/lock", a->dir);
    if (rc == 0 && (a->lockfd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0) rc = -errno;
    if (rc == 0 && (rc = lock_trail(a)) == 0) {
        rc = sync_tail(a);
        unlock_trail(a);
    }
    if (rc == 0 && a->background) {
        if (pthread_create(&a->thr, NULL, thread_main, a) != 0)
            rc = -EAGAIN;
        else
            a->thr_on = true;
    }
    if (rc < 0) {
        if (a->segfd >= 0) close(a->segfd);
        if (a->lockfd >= 0) close(a->lockfd);
        pthread_mutex_destroy(&a->wmu);
        pthread_mutex_destroy(&a->qmu);
        pthread_cond_destroy(&a->qcv);
        free(a);
        return rc;
    }
    a->s3 = o->s3; /* owned from here on */
    *out = a;
    return 0;
}

int st_audit_close(st_audit_t *a)
{
    if (a == NULL) return 0;
    if (a->thr_on) {
        pthread_mutex_lock(&a->qmu);
        a->stop = true;
        pthread_cond_broadcast(&a->qcv);
        pthread_mutex_unlock(&a->qmu);
        pthread_join(a->thr, NULL);
    }
    int rc = st_audit_flush(a);
    int src = st_audit_seal(a, false);
    if (rc == 0) rc = src;
    if (a->segfd >= 0) close(a->segfd);
    if (a->lockfd >= 0) close(a->lockfd);
    st_s3_client_destroy(a->s3);
    pthread_mutex_destroy(&a->wmu);
    pthread_mutex_destroy(&a->qmu);
    pthread_cond_destroy(&a->qcv);
    free(a);
    return rc;
}
