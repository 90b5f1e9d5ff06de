/* pool.c: worker threads with a FIFO queue and run-inline waiting (see pool.h). */
#include "common/pool.h"

#include "common/err.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

enum { T_QUEUED = 1, T_RUNNING = 2, T_DONE = 3 };

struct st_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* tasks queued or stopping */
    pthread_cond_t done; /* some task finished */
    st_task_t *head, *tail;
    bool stop;
    int n;
    pthread_t *th;
};

static void run(st_pool_t *p, st_task_t *t)
{
    t->fn(t);
    pthread_mutex_lock(&p->mu);
    atomic_store(&t->state, T_DONE);
    pthread_cond_broadcast(&p->done);
    pthread_mutex_unlock(&p->mu);
}

static void *worker(void *arg)
{
    st_pool_t *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->head == NULL && !p->stop) pthread_cond_wait(&p->work, &p->mu);
        if (p->head == NULL && p->stop) break;
        st_task_t *t = p->head;
        p->head = t->next;
        if (p->head == NULL) p->tail = NULL;
        int expect = T_QUEUED;
        if (!atomic_compare_exchange_strong(&t->state, &expect, T_RUNNING)) continue; /* taken inline */
        pthread_mutex_unlock(&p->mu);
        run(p, t);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int st_pool_new(int nthreads, st_pool_t **out)
{
    if (nthreads <= 0) nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads <= 0) nthreads = 1;
    st_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (p->th == NULL) {
        free(p);
        return -ENOMEM;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->th[i], NULL, worker, p) != 0) break;
        p->n++;
    }
    if (p->n == 0) {
        st_pool_free(p);
        return -EAGAIN;
    }
    *out = p;
    return 0;
}

void st_pool_free(st_pool_t *p)
{
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int st_pool_submit(st_pool_t *p, st_task_t *t)
{
    atomic_store(&t->state, T_QUEUED);
    t->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stop) {
        pthread_mutex_unlock(&p->mu);
        atomic_store(&t->state, T_DONE);
        return ST_EBADSTATE;
    }
    if (p->tail) p->tail->next = t;
    else p->head = t;
    p->tail = t;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

void st_pool_wait(st_pool_t *p, st_task_t *t)
{
    int expect = T_QUEUED;
    if (atomic_compare_exchange_strong(&t->state, &expect, T_RUNNING)) {
        /* Not started: run it here. Workers skip it when they pop it later, so the node must be
         * unlinked before the caller may reuse the memory. */
        t->fn(t);
        pthread_mutex_lock(&p->mu);
        st_task_t **pp = &p->head, *prev = NULL;
        while (*pp && *pp != t) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp == t) {
            *pp = t->next;
            if (p->tail == t) p->tail = prev;
        }
        atomic_store(&t->state, T_DONE);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&t->state) != T_DONE) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
