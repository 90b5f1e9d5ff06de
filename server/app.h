/* app.h: the running server (internal to server/): configuration, storage, ingester, querier, HTTP,
 * and the glue that answers pushes once the WAL made them durable. */
#ifndef ST_SERVER_APP_H
#define ST_SERVER_APP_H

#include "config/config.h"
#include "http/http.h"
#include "index/index.h"
#include "ingester/ingester.h"
#include "querier/querier.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct st_app {
    st_config_t cfg;
    const char *config_file;  /* NULL for the embedded default */
    uv_loop_t *loop;
    st_http_server_t *http;
    st_index_t *index;
    st_ingester_t *ingester;
    st_querier_t *querier;
    /* pushes completed on the WAL thread, answered on the loop */
    uv_async_t push_async;
    pthread_mutex_t push_mu;
    void *done;                /* completed push contexts (api_push.c), guarded by push_mu */
    uv_signal_t sigterm, sigint;
    _Atomic int state;         /* 0 starting, 1 ready, 2 stopping */
    int64_t started_ns;
    int exit_code;
} st_app_t;

enum { ST_APP_STARTING = 0, ST_APP_READY = 1, ST_APP_STOPPING = 2 };

/* Registers every route. */
int st_api_register(st_app_t *app);
/* Push completion plumbing (api_push.c). */
int st_api_push_init(st_app_t *app);
void st_api_push_on_complete(void *arg, st_push_t *p);
void st_api_push_close(st_app_t *app);

/* Resolves the request's tenant (auth_enabled semantics). On failure it has already responded
 * (401 "no org id", 400 for an invalid id) and returns false. out holds 151 bytes. */
bool st_api_tenant(st_app_t *app, st_http_req_t *r, char *out);

/* Runs the server until SIGTERM/SIGINT. Returns the process exit code. */
int st_app_serve(st_app_t *app);

#endif
