/* index.h: the label and chunk index, one LMDB environment partitioned by tenant and UTC day.
 *
 * Per (tenant, day) it maps label name -> value -> stream ids (postings) and lists the day's streams;
 * per stream it keeps the canonical labels and the WAL sequence up to which the stream is flushed;
 * per (tenant, day, stream) it lists chunk references (time range, counts, checksum, location).
 * A chunk spanning midnight is referenced from every day it overlaps. One writer at a time (a write
 * handle serialises on LMDB's writer lock); any number of concurrent readers, each a consistent
 * snapshot. Views returned by readers are valid until st_index_read_end. */
#ifndef ST_INDEX_INDEX_H
#define ST_INDEX_INDEX_H

#include "common/buf.h"
#include "common/labels.h"
#include "common/vec.h"
#include "store/store.h"

#include <stdint.h>

#define ST_INDEX_SCHEMA 1

typedef struct st_index st_index_t;
typedef struct st_index_read st_index_read_t;
typedef struct st_index_write st_index_write_t;

/* What the index knows about one chunk. */
typedef struct {
    uint64_t chunk_id;
    uint64_t stream_id;
    int64_t min_ts, max_ts;
    uint32_t entries;
    uint64_t raw_bytes;    /* line + structured metadata bytes before compression */
    uint64_t size;         /* stored (compressed) bytes */
    uint32_t crc32;        /* CRC-32 of the stored chunk bytes */
    uint8_t storage_class; /* 0 = hot (local); later tiers use other values */
    st_chunk_loc_t loc;
} st_chunk_ref_t;

/* Opens (creating) the environment in dir. map_size is the virtual map size. */
int st_index_open(const char *dir, size_t map_size, st_index_t **out);
void st_index_close(st_index_t *ix);

/* ---- reading ------------------------------------------------------------------------------------ */

int st_index_read_begin(st_index_t *ix, st_index_read_t **out);
void st_index_read_end(st_index_read_t *r); /* NULL-safe */

/* Ids (sorted, unique) of the tenant's streams that have chunks in a day of [day_from, day_to] and
 * whose labels satisfy every matcher. With no matcher that rejects the empty string, every stream of
 * those days is a candidate (then filtered). Returns 0 or an error. */
int st_index_select(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                    const st_matcher_t *m, size_t nm, st_u64vec_t *out);
/* A stream's canonical label text and flushed WAL sequence. Returns 0 or ST_ENOTFOUND. */
int st_index_stream(st_index_read_t *r, const char *tenant, uint64_t stream_id, st_str_t *labels,
                    uint64_t *flushed_seq);
/* Calls cb for each chunk of the stream in day whose [min_ts, max_ts] overlaps [from, through]
 * (inclusive), in ascending min_ts order. cb returns 0 to go on, >0 to stop, <0 to fail. */
int st_index_chunks(st_index_read_t *r, const char *tenant, int64_t day, uint64_t stream_id, int64_t from,
                    int64_t through, int (*cb)(void *arg, const st_chunk_ref_t *ref), void *arg);
/* Label names / values used in the days [day_from, day_to], appended to out (unsorted, may repeat
 * across days; callers sort_unique). */
int st_index_label_names(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                         st_strvec_t *out);
int st_index_label_values(st_index_read_t *r, const char *tenant, int64_t day_from, int64_t day_to,
                          st_str_t name, st_strvec_t *out);
/* Reads a u64 from the meta table; ST_ENOTFOUND if unset. */
int st_index_get_meta(st_index_read_t *r, const char *key, uint64_t *out);

/* ---- writing ------------------------------------------------------------------------------------ */

int st_index_write_begin(st_index_t *ix, st_index_write_t **out);
/* Indexes a chunk: chunk references and (once per stream and day) postings for every day the chunk
 * overlaps, plus the stream record if new. labels must be the parsed form of labels_text. */
int st_index_put_chunk(st_index_write_t *w, const char *tenant, const st_labels_t *labels,
                       st_str_t labels_text, const st_chunk_ref_t *ref);
/* Records that every WAL record of the stream with sequence <= seq is in indexed chunks. */
int st_index_set_flushed_seq(st_index_write_t *w, const char *tenant, uint64_t stream_id,
                             st_str_t labels_text, uint64_t seq);
int st_index_set_meta(st_index_write_t *w, const char *key, uint64_t v);
/* Commits (durably) and frees the handle; on failure everything since begin is discarded. */
int st_index_write_commit(st_index_write_t *w);
void st_index_write_abort(st_index_write_t *w); /* NULL-safe */

/* ---- whole-index access for the lifecycle worker and reports ---------------------------------- */

/* Calls cb for every chunk reference of every tenant and day (a chunk spanning midnight appears once
 * per day). tenant is NUL-terminated and valid during the call. cb returns 0 to go on, >0 to stop. */
int st_index_scan_chunks(st_index_read_t *r,
                         int (*cb)(void *arg, const char *tenant, int64_t day, const st_chunk_ref_t *ref),
                         void *arg);
/* Rewrites a chunk's reference in every day it spans (location, storage class, sizes). */
int st_index_update_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *ref);
/* Removes a chunk's references; a stream left without chunks in a day leaves that day's postings. */
int st_index_delete_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *ref);
/* Replaces a chunk by a rewritten version of itself (same chunk and stream id; a time range inside
 * the old one, e.g. after a delete request removed entries). Returns 0, -EINVAL or an error. */
int st_index_replace_chunk(st_index_write_t *w, const char *tenant, const st_chunk_ref_t *old,
                           const st_chunk_ref_t *nw);

/* A small key/value table for lifecycle and compliance state (intents, packs, restores, deletes).
 * Keys are strings; values are opaque bytes. Views are valid until the transaction ends. */
int st_index_state_put(st_index_write_t *w, st_str_t key, st_str_t value);
int st_index_state_del(st_index_write_t *w, st_str_t key);
int st_index_state_get(st_index_read_t *r, st_str_t key, st_str_t *value); /* ST_ENOTFOUND */
int st_index_state_get_w(st_index_write_t *w, st_str_t key, st_str_t *value);
/* Calls cb for each key starting with prefix, in key order. cb returns 0 to go on, >0 to stop. */
int st_index_state_scan(st_index_read_t *r, st_str_t prefix,
                        int (*cb)(void *arg, st_str_t key, st_str_t value), void *arg);

/* Encodes/decodes a chunk reference value (exposed for tests and tools). */
int st_chunk_ref_encode(const st_chunk_ref_t *ref, st_buf_t *out);
int st_chunk_ref_decode(st_str_t v, st_chunk_ref_t *out);

#endif
