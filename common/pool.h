/* pool.h: a fixed pool of worker threads for CPU-heavy query work (decompressing and scanning chunk
 * blocks ahead of the merge).
 *
 * A task is submitted once and then either run by a worker or, when its owner needs the result
 * before a worker picked it up, run inline by st_pool_wait (so a busy pool never stalls a query).
 * Task memory belongs to the submitter and must stay valid until st_pool_wait returns. */
#ifndef ST_COMMON_POOL_H
#define ST_COMMON_POOL_H

#include <stdatomic.h>

typedef struct st_pool st_pool_t;

typedef struct st_task {
    void (*fn)(struct st_task *t);
    _Atomic int state; /* internal */
    struct st_task *next;
} st_task_t;

/* nthreads <= 0 means one per online CPU. */
int st_pool_new(int nthreads, st_pool_t **out);
void st_pool_free(st_pool_t *p); /* waits for running tasks; NULL-safe */
/* Queues t (fn set by the caller). Returns 0 or ST_EBADSTATE after shutdown. */
int st_pool_submit(st_pool_t *p, st_task_t *t);
/* Returns once t has run (running it here if no worker started it). */
void st_pool_wait(st_pool_t *p, st_task_t *t);

#endif
