/* wal.h: the ingester's write-ahead log (internal to the ingester module; tests include it).
 *
 * Records are opaque payloads framed as [u32 length][u32 checksum][payload] in numbered segment
 * files. Each payload starts with a type byte and a u64 sequence number that st_wal_submit assigns.
 * A dedicated thread batches everything submitted while the previous fsync ran (group commit):
 * write, fdatasync, then calls apply() for every record of the batch in sequence order, then
 * complete() with the batch's tickets. Nothing is applied or acknowledged before it is durable. */
#ifndef ST_INGESTER_WAL_H
#define ST_INGESTER_WAL_H

#include "common/buf.h"

#include <stdint.h>

#define ST_WAL_HDR 8           /* frame header: length + checksum */
#define ST_WAL_SEQ_OFFSET 1    /* payload offset of the u64 LE sequence number */
#define ST_WAL_MAX_RECORD (512u << 20)

typedef struct st_wal st_wal_t;

/* A submitter's handle for one group of records; completed once, on the WAL thread. */
typedef struct st_wal_ticket {
    uint64_t first_seq, last_seq; /* assigned by submit */
    int status;                   /* 0, or the write/fsync error */
    struct st_wal_ticket *next;   /* owned by the WAL until completion */
    void *owner;                  /* free for the submitter */
} st_wal_ticket_t;

typedef struct {
    const char *dir;
    size_t segment_size;   /* rotate after this many bytes */
    size_t max_pending;    /* submitted but not yet written bytes; over it submit says ST_EFULL */
    /* Called on the WAL thread for each durable record, in sequence order. */
    void (*apply)(void *arg, const uint8_t *payload, size_t n);
    /* Called on the WAL thread with a NULL-terminated list of completed tickets. */
    void (*complete)(void *arg, st_wal_ticket_t *list);
    void *arg;
} st_wal_opts_t;

/* Opens the directory (creating it) without starting the writer thread. */
int st_wal_open(const st_wal_opts_t *o, st_wal_t **out);
/* Replays every valid record in order: cb(arg, seq, payload, n). A torn tail of the last segment is
 * cut off; corruption elsewhere is logged and that segment's remainder skipped. *max_seq gets the
 * highest sequence seen (0 if none). Call before st_wal_start. */
int st_wal_replay(st_wal_t *w, void (*cb)(void *arg, uint64_t seq, const uint8_t *payload, size_t n), void *arg,
                  uint64_t *max_seq);
/* Starts the writer thread; sequence numbers continue at next_seq (> any seq ever used). */
int st_wal_start(st_wal_t *w, uint64_t next_seq);

/* Begins a record in b (reserving the frame header and the sequence slot): the caller then appends
 * the rest of its payload. */
int st_wal_record_begin(st_buf_t *b, uint8_t type);
/* Submits records (each built with st_wal_record_begin, one per buffer). Ownership of the buffers'
 * bytes passes to the WAL (the st_buf_t structs are emptied). Assigns consecutive sequence numbers.
 * Returns 0, ST_EFULL (too much pending: retry later), or ST_EBADSTATE (WAL failed or closing). */
int st_wal_submit(st_wal_t *w, st_buf_t *records, size_t n, st_wal_ticket_t *t);

/* Deletes closed segments whose records all have seq < min_needed. */
void st_wal_truncate(st_wal_t *w, uint64_t min_needed);
/* Bytes in all segment files, and the first sequence still on disk (0 if empty). */
uint64_t st_wal_disk_bytes(st_wal_t *w);
uint64_t st_wal_pending_bytes(st_wal_t *w);
/* Refuses further submits, writes and completes everything pending, stops the thread. */
void st_wal_stop(st_wal_t *w);
/* Removes every segment; only after st_wal_stop, once all data is in indexed chunks. */
int st_wal_reset(st_wal_t *w);
/* Stops (if needed) and frees. NULL-safe. */
void st_wal_close(st_wal_t *w);

#endif
