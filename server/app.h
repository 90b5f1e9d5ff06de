/* app.h: the running server (internal to server/): configuration, storage, ingester, querier, HTTP,
 * and the glue that answers pushes once the WAL made them durable. */
#ifndef ST_SERVER_APP_H
#define ST_SERVER_APP_H

#include "config/config.h"
#include "http/http.h"
#include "index/index.h"
#include "ingester/ingester.h"
#include "lifecycle/lifecycle.h"
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
    uv_signal_t sighup;        /* reloads the TLS certificate (only with server.http_tls_config) */
    bool has_sighup;
    _Atomic int state;         /* 0 starting, 1 ready, 2 stopping */
    int64_t started_ns;
    int exit_code;
    int datadir_lock;          /* fd holding <path_prefix>/strata.lock */
    struct st_auth *auth;      /* NULL: no HTTP authentication */
    /* lifecycle */
    st_lc_config_t *lc;       /* parsed lifecycle: section (never NULL once serving) */
    st_lc_reader_t *reader;   /* reads chunks stored in S3 (NULL without lifecycle.s3) */
    uv_timer_t lc_timer;
    bool lc_timer_on, lc_running;
    int64_t lc_last_moves;    /* last run with tier moves (ns) */
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

/* Lifecycle inside serve (api_lifecycle.c). */
int st_api_lifecycle_start(st_app_t *app);
void st_api_lifecycle_stop(st_app_t *app);
int st_api_register_lifecycle(st_app_t *app);
/* Loki's delete API (api_delete.c). */
int st_api_register_delete(st_app_t *app);
/* Compliance (api_reports.c, cmd_audit.c; audit/audit.h): the report routes, the audit record of a read of
 * a tenant's data, and the `strata audit` / `strata report` commands. */
int st_api_register_reports(st_app_t *app);
void st_api_audit_query(st_app_t *app, st_http_req_t *r, const char *tenant, const char *query, int64_t start,
                        int64_t end);
int st_cmd_audit(int argc, char **argv);
int st_cmd_report(int argc, char **argv);

/* Ingester options from the configuration (shared by serve and offline commands that ingest). */
void st_app_ingester_opts(const st_config_t *c, st_index_t *ix, st_ingester_opts_t *io);
/* Takes the exclusive lock of the data directory (<path_prefix>/strata.lock) that one strata serve (or
 * an offline command that writes through the ingester) holds while it runs. Returns the lock's file
 * descriptor (kept open to hold it), ST_EBADSTATE when another process holds it, or -errno. */
int st_datadir_lock(const char *dir);
/* st_lc_run_opts_t.ingest for an open ingester: st_ingester_push_wait. */
int st_app_ingest_wait(void *ingester, st_push_t *p);

/* ---- authentication (auth.c) ---- */
typedef struct st_auth st_auth_t;
/* Loads auth.credentials_file; errors name the file and line. */
int st_auth_load(const char *path, st_auth_t **out, char *err, size_t errsz);
/* The same from memory (name is used in messages). */
int st_auth_parse(const char *text, size_t len, const char *name, st_auth_t **out, char *err, size_t errsz);
void st_auth_free(st_auth_t *a); /* NULL-safe */
/* Verifies an Authorization header value; *tenants gets the credential's comma-separated tenant
 * list ("*" = any). Returns 0 or ST_ENOTFOUND. Thread safe. */
int st_auth_check(st_auth_t *a, st_str_t header, const char **tenants);
/* Whether the list allows tenant; *single when it names exactly one (then first holds it). */
bool st_auth_allows(const char *tenants, st_str_t tenant, bool *single, char *first, size_t firstsz);
/* `strata auth hash`. */
int st_auth_hash_cmd(int argc, char **argv);
/* For endpoints without a tenant (/flush, /config): false after answering 401 when credentials are
 * required and missing or wrong. */
bool st_api_authorized(st_app_t *app, st_http_req_t *r);

/* Runs the server until SIGTERM/SIGINT. Returns the process exit code. */
int st_app_serve(st_app_t *app);

#endif
