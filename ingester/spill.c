/* spill.c: segment files for frozen head frames (see spill.h). */
#include "ingester/spill.h"

#include "common/buf.h"
#include "common/err.h"
#include "common/hash.h"
#include "store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FRAME_HDR   4
#define SEGMENT_MIN (4u << 10)
#define SEGMENT_MAX (1u << 30)

struct st_spill_seg {
    st_spill_t *sp;
    uint64_t num;
    int fd;
    uint64_t size;   /* bytes written */
    uint64_t live;   /* bytes of referenced frames */
    uint64_t frames; /* referenced frames */
    st_spill_seg_t *prev, *next;
};

struct st_spill {
    char *dir;
    size_t segment_size;
    pthread_mutex_t mu;
    st_spill_seg_t *first, *last; /* ascending; last is the one written to (the active segment) */
    uint64_t next_num;
    uint64_t disk, live, segments, frames;
};

static void seg_path(const st_spill_t *s, uint64_t num, char *out, size_t n)
{
    snprintf(out, n, "%s/%016llx.spill", s->dir, (unsigned long long)num);
}

static uint32_t frame_sum(const void *p, size_t n)
{
    return (uint32_t)st_hash64(p, n);
}

/* Closes, unlinks and frees a segment. Under mu. */
static void seg_delete(st_spill_t *s, st_spill_seg_t *g)
{
    char path[4096];
    seg_path(s, g->num, path, sizeof path);
    if (g->fd >= 0) close(g->fd);
    unlink(path);
    if (g->prev)
        g->prev->next = g->next;
    else
        s->first = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        s->last = g->prev;
    s->disk -= g->size;
    s->segments--;
    free(g);
}

int st_spill_open(const char *dir, size_t segment_size, st_spill_t **out)
{
    *out = NULL;
    if (segment_size < SEGMENT_MIN) segment_size = SEGMENT_MIN;
    if (segment_size > SEGMENT_MAX) segment_size = SEGMENT_MAX;
    ST_TRY(st_mkdirs(dir, 0755));
    DIR *d = opendir(dir);
    if (d == NULL) return -errno;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p); /* a previous run's cache: the WAL replay rebuilds the heads */
    }
    closedir(d);
    st_spill_t *s = calloc(1, sizeof *s);
    if (s == NULL || (s->dir = strdup(dir)) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->segment_size = segment_size;
    s->next_num = 1;
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
}

/* Starts a new active segment; the old one is deleted if nothing references it. Under mu. */
static int seg_new(st_spill_t *s)
{
    st_spill_seg_t *g = calloc(1, sizeof *g);
    if (g == NULL) return -ENOMEM;
    char path[4096];
    g->sp = s;
    g->num = s->next_num++;
    seg_path(s, g->num, path, sizeof path);
    g->fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (g->fd < 0) {
        int rc = -errno;
        free(g);
        return rc;
    }
    st_spill_seg_t *old = s->last;
    g->prev = old;
    if (old)
        old->next = g;
    else
        s->first = g;
    s->last = g;
    s->segments++;
    if (old && old->frames == 0) seg_delete(s, old);
    return 0;
}

int st_spill_write(st_spill_t *s, const void *p, size_t n, st_spill_ref_t *ref)
{
    *ref = (st_spill_ref_t){0};
    if (n == 0 || n > SEGMENT_MAX) return -EINVAL;
    uint8_t hdr[FRAME_HDR];
    st_put_u32le(hdr, frame_sum(p, n));
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    st_spill_seg_t *g = s->last;
    if (g == NULL || (g->size > 0 && g->size + FRAME_HDR + n > s->segment_size)) {
        rc = seg_new(s);
        g = s->last;
    }
    if (rc == 0) rc = st_pwrite_full(g->fd, hdr, FRAME_HDR, g->size);
    if (rc == 0) rc = st_pwrite_full(g->fd, p, n, g->size + FRAME_HDR);
    if (rc == 0) {
        *ref = (st_spill_ref_t){g, (uint32_t)g->size, (uint32_t)n};
        g->size += FRAME_HDR + n;
        g->live += FRAME_HDR + n;
        g->frames++;
        s->disk += FRAME_HDR + n;
        s->live += FRAME_HDR + n;
        s->frames++;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int st_spill_read(st_spill_ref_t ref, void *dst)
{
    if (ref.seg == NULL) return -EINVAL;
    uint8_t hdr[FRAME_HDR];
    /* the segment's fd stays open while this reference is held */
    ST_TRY(st_pread_full(ref.seg->fd, hdr, FRAME_HDR, ref.off));
    ST_TRY(st_pread_full(ref.seg->fd, dst, ref.len, (uint64_t)ref.off + FRAME_HDR));
    return st_get_u32le(hdr) == frame_sum(dst, ref.len) ? 0 : -EIO;
}

void st_spill_release(st_spill_ref_t *ref)
{
    st_spill_seg_t *g = ref->seg;
    if (g == NULL) return;
    st_spill_t *s = g->sp;
    pthread_mutex_lock(&s->mu);
    g->live -= FRAME_HDR + ref->len;
    g->frames--;
    s->live -= FRAME_HDR + ref->len;
    s->frames--;
    if (g->frames == 0 && g != s->last) seg_delete(s, g);
    pthread_mutex_unlock(&s->mu);
    *ref = (st_spill_ref_t){0};
}

void st_spill_stats(st_spill_t *s, st_spill_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = (st_spill_stats_t){s->disk, s->live, s->segments, s->frames};
    pthread_mutex_unlock(&s->mu);
}

st_spill_seg_t *st_spill_victim(st_spill_t *s)
{
    st_spill_seg_t *best = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->disk > 2 * s->live + 2 * (uint64_t)s->segment_size)
        for (st_spill_seg_t *g = s->first; g && g != s->last; g = g->next)
            if (best == NULL || g->live < best->live) best = g;
    pthread_mutex_unlock(&s->mu);
    return best;
}

void st_spill_close(st_spill_t *s)
{
    if (s == NULL) return;
    while (s->first) seg_delete(s, s->first);
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}
