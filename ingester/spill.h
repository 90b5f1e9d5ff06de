/* spill.h: files that hold frozen head frames (internal to the ingester module; tests include it).
 *
 * When heads hold more than ingester.head_memory_target, the flusher zstd-compresses the older part
 * of live heads ("freezing"). With ingester.head_spill those frames are written to segment files
 * here instead of staying on the heap: they then live in the kernel's page cache, which writes them
 * back or drops them under memory pressure and reads them in again on demand, instead of in the
 * process' resident memory (Prometheus keeps its full head chunks in files for the same reason).
 * Spill files are a cache of data the WAL holds durably: never synced, and removed at open and close.
 *
 * Each frame is appended as [u32 checksum][bytes] to the segment being written; a reference names
 * the segment, the frame's offset and its length. A segment is deleted once it is no longer the one
 * being written and its last reference is released. Segments whose frames are mostly released can
 * be compacted by the owner: st_spill_victim names one, the owner rewrites the frames it still
 * references there and releases the old references.
 *
 * Thread safety: every function may be called from any thread. A reference must not be read after
 * it was released, and must be released exactly once; the caller serializes that (the ingester under
 * its mutex or on its flusher thread). */
#ifndef ST_INGESTER_SPILL_H
#define ST_INGESTER_SPILL_H

#include <stddef.h>
#include <stdint.h>

typedef struct st_spill st_spill_t;
typedef struct st_spill_seg st_spill_seg_t;

typedef struct {
    st_spill_seg_t *seg; /* NULL: no frame */
    uint32_t off;        /* of the frame's checksum in the segment file */
    uint32_t len;        /* frame bytes after the checksum */
} st_spill_ref_t;

typedef struct {
    uint64_t disk_bytes; /* in segment files */
    uint64_t live_bytes; /* of frames still referenced (with their checksums) */
    uint64_t segments;
    uint64_t frames; /* referenced */
} st_spill_stats_t;

/* Creates dir if needed and removes every file a previous run left in it. segment_size: bytes after
 * which a new segment file is started (at least 4 KiB; at most 1 GiB). */
int st_spill_open(const char *dir, size_t segment_size, st_spill_t **out);
/* Appends a frame of n bytes (1 <= n <= 1 GiB); *ref references it. Returns 0 or a negative errno
 * (-ENOSPC when the disk is full: the caller keeps the bytes in memory instead). */
int st_spill_write(st_spill_t *s, const void *p, size_t n, st_spill_ref_t *ref);
/* Reads the frame's ref.len bytes into dst. Returns 0, -EIO if its checksum does not match,
 * ST_ECORRUPT if the file is shorter, or a negative errno. */
int st_spill_read(st_spill_ref_t ref, void *dst);
/* Releases the reference (a NULL seg is a no-op) and clears it. */
void st_spill_release(st_spill_ref_t *ref);
void st_spill_stats(st_spill_t *s, st_spill_stats_t *out);
/* A segment worth compacting: when the files hold more than twice the live bytes plus two segments,
 * the finished segment with the fewest live bytes. NULL if none. The pointer identifies the segment
 * (compare ref.seg with it); it stays valid while a reference into it is held. */
st_spill_seg_t *st_spill_victim(st_spill_t *s);
/* Removes every segment file and frees s. Every reference must have been released. NULL-safe. */
void st_spill_close(st_spill_t *s);

#endif
