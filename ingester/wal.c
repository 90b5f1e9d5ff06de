/* wal.c: segment files, group commit and replay for the write-ahead log (see wal.h). */
#include "ingester/wal.h"

#include "common/err.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SEG_MAGIC "STWAL\0\0\1"
#define SEG_MAGIC_LEN 8
#define IOV_BATCH 512

typedef struct {
    uint64_t num;
    uint64_t first_seq, last_seq; /* 0/0 when it holds no record yet */
    uint64_t size;
} segment_t;

typedef struct pending {
    char *data; /* one framed record */
    size_t len;
    struct pending *next;
} pending_t;

struct st_wal {
    st_wal_opts_t o;
    char *dir;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    pending_t *head, *tail;
    st_wal_ticket_t *thead, *ttail;
    uint64_t pending_bytes;
    uint64_t next_seq;
    bool stop;
    int failed;
    segment_t *segs; /* ascending; the last one is open for writing */
    size_t nsegs, capsegs;
    uint64_t disk_bytes;
    /* writer thread only */
    int fd;
    st_metric_t *m_bytes, *m_records, *m_fsyncs, *m_fsync_lat, *m_batch_records, *m_failures;
};

static void seg_path(const st_wal_t *w, uint64_t num, char *out, size_t n)
{
    snprintf(out, n, "%s/%016llx.wal", w->dir, (unsigned long long)num);
}

static uint32_t frame_sum(const void *p, size_t n) { return (uint32_t)st_hash64(p, n); }

int st_wal_open(const st_wal_opts_t *o, st_wal_t **out)
{
    st_wal_t *w = calloc(1, sizeof *w);
    if (w == NULL) return -ENOMEM;
    w->o = *o;
    w->fd = -1;
    w->dir = strdup(o->dir);
    if (w->dir == NULL) {
        free(w);
        return -ENOMEM;
    }
    int rc = st_mkdirs(o->dir, 0755);
    if (rc < 0) {
        free(w->dir);
        free(w);
        return rc;
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->m_bytes = st_counter("strata_wal_bytes_written_total", "Bytes written to the write-ahead log.", NULL);
    w->m_records = st_counter("strata_wal_records_written_total", "Records written to the write-ahead log.", NULL);
    w->m_fsyncs = st_counter("strata_wal_fsyncs_total", "fdatasync calls on WAL segments (one per group commit).", NULL);
    w->m_failures = st_counter("strata_wal_failures_total", "Failed WAL writes or syncs.", NULL);
    w->m_fsync_lat = st_histogram("strata_wal_fsync_duration_seconds", "Time to write and sync one WAL batch.", NULL,
                                  st_latency_buckets, st_latency_nbuckets);
    static const double batch_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};
    w->m_batch_records = st_histogram("strata_wal_batch_records", "Records per WAL group commit.", NULL, batch_bounds, 10);

    /* Collect the existing segments, ascending. */
    DIR *d = opendir(o->dir);
    if (d == NULL) {
        rc = -errno;
        st_wal_close(w);
        return rc;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned long long num;
        char tail[8];
        if (strlen(e->d_name) != 20 || sscanf(e->d_name, "%16llx.%3s", &num, tail) != 2 || strcmp(tail, "wal") != 0)
            continue;
        if (w->nsegs == w->capsegs) {
            size_t cap = w->capsegs ? w->capsegs * 2 : 16;
            segment_t *s = realloc(w->segs, cap * sizeof *s);
            if (s == NULL) {
                closedir(d);
                st_wal_close(w);
                return -ENOMEM;
            }
            w->segs = s;
            w->capsegs = cap;
        }
        w->segs[w->nsegs++] = (segment_t){num, 0, 0, 0};
    }
    closedir(d);
    for (size_t i = 1; i < w->nsegs; i++)
        for (size_t j = i; j > 0 && w->segs[j - 1].num > w->segs[j].num; j--) {
            segment_t t = w->segs[j];
            w->segs[j] = w->segs[j - 1];
            w->segs[j - 1] = t;
        }
    *out = w;
    return 0;
}

static int read_file(const char *path, st_buf_t *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    int rc = st_buf_reserve(out, (size_t)st.st_size);
    size_t got = 0;
    while (rc == 0 && got < (size_t)st.st_size) {
        ssize_t r = read(fd, out->data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        got += (size_t)r;
    }
    out->len = got;
    close(fd);
    return rc;
}

int st_wal_replay(st_wal_t *w, void (*cb)(void *, uint64_t, const uint8_t *, size_t), void *arg, uint64_t *max_seq)
{
    uint64_t maxs = 0;
    st_buf_t data = ST_BUF_INIT;
    for (size_t i = 0; i < w->nsegs; i++) {
        segment_t *s = &w->segs[i];
        char path[4096];
        seg_path(w, s->num, path, sizeof path);
        st_buf_reset(&data);
        int rc = read_file(path, &data);
        if (rc < 0) {
            st_buf_free(&data);
            return rc;
        }
        bool last = i + 1 == w->nsegs;
        size_t off = 0;
        if (data.len >= SEG_MAGIC_LEN && memcmp(data.data, SEG_MAGIC, SEG_MAGIC_LEN) == 0) {
            off = SEG_MAGIC_LEN;
        } else if (data.len > 0 || !last) {
            ST_LOG_ERROR("wal", "msg=\"bad WAL segment header, skipping segment\" path=%s", path);
            s->size = data.len;
            w->disk_bytes += data.len;
            continue;
        }
        size_t good = off;
        while (off + ST_WAL_HDR <= data.len) {
            const uint8_t *f = (const uint8_t *)data.data + off;
            uint32_t len = st_get_u32le(f), sum = st_get_u32le(f + 4);
            if (len < 1 + 8 || len > ST_WAL_MAX_RECORD || len > data.len - off - ST_WAL_HDR) break;
            if (frame_sum(f + ST_WAL_HDR, len) != sum) break;
            const uint8_t *payload = f + ST_WAL_HDR;
            uint64_t seq = st_get_u64le(payload + ST_WAL_SEQ_OFFSET);
            if (s->first_seq == 0) s->first_seq = seq;
            s->last_seq = seq;
            if (seq > maxs) maxs = seq;
            cb(arg, seq, payload, len);
            off += ST_WAL_HDR + len;
            good = off;
        }
        if (good != data.len) {
            if (last) {
                ST_LOG_WARN("wal", "msg=\"cutting torn WAL tail\" path=%s offset=%zu bytes=%zu", path, good,
                            data.len - good);
                if (truncate(path, (off_t)good) < 0) {
                    rc = -errno;
                    st_buf_free(&data);
                    return rc;
                }
            } else {
                ST_LOG_ERROR("wal", "msg=\"corrupt WAL record, rest of segment skipped\" path=%s offset=%zu", path,
                             good);
            }
        }
        s->size = good;
        w->disk_bytes += good;
    }
    st_buf_free(&data);
    if (max_seq) *max_seq = maxs;
    return 0;
}

/* Opens a fresh segment after the last one (writer thread or start-up). */
static int new_segment(st_wal_t *w)
{
    uint64_t num = w->nsegs ? w->segs[w->nsegs - 1].num + 1 : 1;
    char path[4096];
    seg_path(w, num, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    if (write(fd, SEG_MAGIC, SEG_MAGIC_LEN) != SEG_MAGIC_LEN || fdatasync(fd) < 0) {
        int rc = errno ? -errno : -EIO;
        close(fd);
        unlink(path);
        return rc;
    }
    int rc = st_fsync_dir(w->dir);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    if (w->nsegs == w->capsegs) {
        size_t cap = w->capsegs ? w->capsegs * 2 : 16;
        segment_t *s = realloc(w->segs, cap * sizeof *s);
        if (s == NULL) {
            pthread_mutex_unlock(&w->mu);
            close(fd);
            return -ENOMEM;
        }
        w->segs = s;
        w->capsegs = cap;
    }
    w->segs[w->nsegs++] = (segment_t){num, 0, 0, SEG_MAGIC_LEN};
    w->disk_bytes += SEG_MAGIC_LEN;
    pthread_mutex_unlock(&w->mu);
    if (w->fd >= 0) close(w->fd);
    w->fd = fd;
    return 0;
}

static int write_batch(st_wal_t *w, pending_t *batch, uint64_t bytes, uint64_t first, uint64_t last)
{
    segment_t *cur = &w->segs[w->nsegs - 1];
    if (w->fd < 0 || (cur->size > SEG_MAGIC_LEN && cur->size + bytes > w->o.segment_size)) {
        ST_TRY(new_segment(w));
        cur = &w->segs[w->nsegs - 1];
    }
    uint64_t start = cur->size;
    struct iovec iov[IOV_BATCH];
    int n = 0, rc = 0;
    for (pending_t *p = batch; p && rc == 0; p = p->next) {
        iov[n].iov_base = p->data;
        iov[n].iov_len = p->len;
        n++;
        if (n == IOV_BATCH || p->next == NULL) {
            /* writev may write partially; finish each vector by hand */
            int i = 0;
            while (i < n) {
                ssize_t wr = writev(w->fd, iov + i, n - i);
                if (wr < 0) {
                    if (errno == EINTR) continue;
                    rc = -errno;
                    break;
                }
                size_t left = (size_t)wr;
                while (i < n && left >= iov[i].iov_len) left -= iov[i++].iov_len;
                if (i < n) {
                    iov[i].iov_base = (char *)iov[i].iov_base + left;
                    iov[i].iov_len -= left;
                }
            }
            n = 0;
        }
    }
    if (rc == 0 && fdatasync(w->fd) < 0) rc = -errno;
    st_counter_inc(w->m_fsyncs);
    if (rc < 0) {
        /* Nothing of this batch may survive: cut it off and move to a new segment, since after a
         * failed fsync the old file's state is unknown. */
        st_counter_inc(w->m_failures);
        if (ftruncate(w->fd, (off_t)start) < 0 || fdatasync(w->fd) < 0) {
            ST_LOG_ERROR("wal", "msg=\"cannot cut failed batch from WAL segment; WAL disabled\" err=\"%s\"",
                         st_strerror(-errno));
            pthread_mutex_lock(&w->mu);
            w->failed = rc;
            pthread_mutex_unlock(&w->mu);
        }
        close(w->fd);
        w->fd = -1;
        return rc;
    }
    pthread_mutex_lock(&w->mu);
    cur->size += bytes;
    w->disk_bytes += bytes;
    if (cur->first_seq == 0) cur->first_seq = first;
    cur->last_seq = last;
    pthread_mutex_unlock(&w->mu);
    st_counter_add(w->m_bytes, bytes);
    return 0;
}

static void *wal_thread(void *arg)
{
    st_wal_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->head == NULL && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
        if (w->head == NULL && w->stop) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        pending_t *batch = w->head;
        st_wal_ticket_t *tickets = w->thead;
        uint64_t bytes = w->pending_bytes;
        w->head = w->tail = NULL;
        w->thead = w->ttail = NULL;
        w->pending_bytes = 0;
        int failed = w->failed;
        pthread_mutex_unlock(&w->mu);

        uint64_t first = 0, last = 0, nrec = 0;
        for (pending_t *p = batch; p; p = p->next) {
            uint8_t *f = (uint8_t *)p->data;
            uint32_t len = st_get_u32le(f);
            st_put_u32le(f + 4, frame_sum(f + ST_WAL_HDR, len));
            uint64_t seq = st_get_u64le(f + ST_WAL_HDR + ST_WAL_SEQ_OFFSET);
            if (first == 0) first = seq;
            last = seq;
            nrec++;
        }
        int64_t t0 = st_mono_ns();
        int rc = failed ? failed : write_batch(w, batch, bytes, first, last);
        st_histogram_observe(w->m_fsync_lat, (double)(st_mono_ns() - t0) / 1e9);
        st_histogram_observe(w->m_batch_records, (double)nrec);
        if (rc == 0) {
            st_counter_add(w->m_records, nrec);
            for (pending_t *p = batch; p; p = p->next)
                w->o.apply(w->o.arg, (const uint8_t *)p->data + ST_WAL_HDR, p->len - ST_WAL_HDR);
        } else {
            ST_LOG_ERROR("wal", "msg=\"WAL write failed; batch rejected\" records=%llu err=\"%s\"",
                         (unsigned long long)nrec, st_strerror(rc));
        }
        while (batch) {
            pending_t *n = batch->next;
            free(batch->data);
            free(batch);
            batch = n;
        }
        for (st_wal_ticket_t *t = tickets; t; t = t->next) t->status = rc;
        if (tickets) w->o.complete(w->o.arg, tickets);
    }
    return NULL;
}

int st_wal_start(st_wal_t *w, uint64_t next_seq)
{
    w->next_seq = next_seq;
    int rc = new_segment(w);
    if (rc < 0) return rc;
    if ((rc = pthread_create(&w->thread, NULL, wal_thread, w)) != 0) return -rc;
    w->started = true;
    return 0;
}

int st_wal_record_begin(st_buf_t *b, uint8_t type)
{
    st_buf_reset(b);
    ST_TRY(st_buf_reserve(b, 64));
    memset(b->data, 0, ST_WAL_HDR + 1 + 8);
    b->data[ST_WAL_HDR] = (char)type;
    b->len = ST_WAL_HDR + 1 + 8;
    return 0;
}

int st_wal_submit(st_wal_t *w, st_buf_t *records, size_t n, st_wal_ticket_t *t)
{
    /* Allocate list nodes outside the lock. */
    pending_t *first = NULL, *last = NULL;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (records[i].len < ST_WAL_HDR + 9 || records[i].len - ST_WAL_HDR > ST_WAL_MAX_RECORD) {
            while (first) {
                pending_t *x = first->next;
                free(first);
                first = x;
            }
            return ST_ELIMIT;
        }
        pending_t *p = malloc(sizeof *p);
        if (p == NULL) {
            while (first) {
                pending_t *x = first->next;
                free(first);
                first = x;
            }
            return -ENOMEM;
        }
        p->next = NULL;
        p->len = records[i].len;
        p->data = records[i].data;
        st_put_u32le((uint8_t *)p->data, (uint32_t)(p->len - ST_WAL_HDR));
        bytes += p->len;
        if (last) last->next = p;
        else first = p;
        last = p;
    }
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    if (w->stop || w->failed || !w->started) rc = ST_EBADSTATE;
    else if (w->pending_bytes > 0 && w->pending_bytes + bytes > w->o.max_pending) rc = ST_EFULL;
    if (rc < 0) {
        pthread_mutex_unlock(&w->mu);
        while (first) {
            pending_t *x = first->next;
            free(first);
            first = x;
        }
        return rc;
    }
    t->first_seq = w->next_seq;
    for (pending_t *p = first; p; p = p->next)
        st_put_u64le((uint8_t *)p->data + ST_WAL_HDR + ST_WAL_SEQ_OFFSET, w->next_seq++);
    t->last_seq = w->next_seq - 1;
    t->status = 0;
    t->next = NULL;
    if (first) {
        if (w->tail) w->tail->next = first;
        else w->head = first;
        w->tail = last;
    }
    if (w->ttail) w->ttail->next = t;
    else w->thead = t;
    w->ttail = t;
    w->pending_bytes += bytes;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    /* the WAL owns the bytes now */
    for (size_t i = 0; i < n; i++) records[i] = ST_BUF_INIT;
    return 0;
}

void st_wal_truncate(st_wal_t *w, uint64_t min_needed)
{
    pthread_mutex_lock(&w->mu);
    size_t drop = 0;
    /* never the last (open) segment */
    while (drop + 1 < w->nsegs) {
        segment_t *s = &w->segs[drop];
        if (s->last_seq != 0 && s->last_seq >= min_needed) break;
        drop++;
    }
    segment_t *gone = NULL;
    if (drop > 0) {
        gone = malloc(drop * sizeof *gone);
        if (gone == NULL) drop = 0;
    }
    if (drop > 0) {
        memcpy(gone, w->segs, drop * sizeof *gone);
        memmove(w->segs, w->segs + drop, (w->nsegs - drop) * sizeof *w->segs);
        w->nsegs -= drop;
        for (size_t i = 0; i < drop; i++) w->disk_bytes -= gone[i].size;
    }
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < drop; i++) {
        char path[4096];
        seg_path(w, gone[i].num, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT)
            ST_LOG_WARN("wal", "msg=\"cannot delete WAL segment\" path=%s err=\"%s\"", path, st_strerror(-errno));
    }
    free(gone);
}

uint64_t st_wal_disk_bytes(st_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t b = w->disk_bytes;
    pthread_mutex_unlock(&w->mu);
    return b;
}

uint64_t st_wal_pending_bytes(st_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t b = w->pending_bytes;
    pthread_mutex_unlock(&w->mu);
    return b;
}

void st_wal_stop(st_wal_t *w)
{
    if (w->started) {
        pthread_mutex_lock(&w->mu);
        w->stop = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
}

void st_wal_close(st_wal_t *w)
{
    if (w == NULL) return;
    st_wal_stop(w);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->segs);
    free(w->dir);
    free(w);
}

int st_wal_reset(st_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    for (size_t i = 0; i < w->nsegs; i++) {
        char path[4096];
        seg_path(w, w->segs[i].num, path, sizeof path);
        if (unlink(path) < 0 && errno != ENOENT) rc = -errno;
    }
    w->nsegs = 0;
    w->disk_bytes = 0;
    pthread_mutex_unlock(&w->mu);
    if (rc == 0) rc = st_fsync_dir(w->dir);
    return rc;
}
