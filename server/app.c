/* app.c: bringing the server up (storage, WAL replay, HTTP or HTTPS) and down (SIGTERM: stop accepting,
 * finish requests in flight, close every head into a chunk, sync, exit 0); SIGHUP reloads the TLS
 * certificate. */
#include "server/app.h"

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/timeutil.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void on_http_closed(void *arg)
{
    st_app_t *app = arg;
    ST_LOG_INFO("server", "msg=\"HTTP drained; closing heads into chunks\"");
    int rc = st_ingester_close(app->ingester, app->cfg.ingester.wal.flush_on_shutdown);
    app->ingester = NULL;
    if (rc < 0) {
        ST_LOG_ERROR("server", "msg=\"shutdown flush failed; the WAL is kept and replays on start\" err=\"%s\"",
                     st_strerror(rc));
        app->exit_code = 1;
    }
    st_api_push_close(app);
    st_api_lifecycle_stop(app);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    if (app->has_sighup) uv_close((uv_handle_t *)&app->sighup, NULL);
}

static void on_signal(uv_signal_t *h, int sig)
{
    st_app_t *app = h->data;
    if (atomic_load(&app->state) == ST_APP_STOPPING) {
        ST_LOG_WARN("server", "msg=\"second signal: exiting without flushing (the WAL replays on start)\"");
        _exit(1);
    }
    atomic_store(&app->state, ST_APP_STOPPING);
    ST_LOG_INFO("server", "msg=\"shutting down\" signal=%d", sig);
    st_http_server_shutdown(app->http, on_http_closed, app);
}

/* Loads server.http_tls_config (certificate, key and CAs are read here, once). Logs what is wrong. */
static int tls_load(const st_config_t *c, st_http_tls_t **out)
{
    st_http_tls_opts_t o = {.cert_file = c->server.http_tls_config.cert_file,
                            .key_file = c->server.http_tls_config.key_file,
                            .client_ca_file = c->server.http_tls_config.client_ca_file};
    char err[1200];
    int rc = st_http_tls_client_auth_parse(c->server.http_tls_config.client_auth_type, &o.client_auth);
    if (rc == 0) rc = st_http_tls_version_parse(c->server.http_tls_config.min_version, &o.min_version);
    if (rc < 0) {
        snprintf(err, sizeof err, "invalid client_auth_type or min_version");
    } else {
        rc = st_http_tls_new(&o, out, err, sizeof err);
    }
    if (rc < 0) ST_LOG_ERROR("server", "msg=\"invalid server.http_tls_config\" err=\"%s\"", err);
    return rc;
}

/* The certificate's subject and expiry (never anything about the key). */
static void tls_log(const st_config_t *c, const st_http_tls_t *t, const char *what)
{
    time_t na = (time_t)st_http_tls_not_after(t);
    struct tm tm;
    char exp[32] = "?";
    if (gmtime_r(&na, &tm)) strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    ST_LOG_INFO("server", "msg=\"%s\" subject=\"%s\" not_after=%s client_auth_type=%s min_version=%s", what,
                st_http_tls_subject(t), exp, c->server.http_tls_config.client_auth_type,
                c->server.http_tls_config.min_version);
    if ((int64_t)na <= st_now_ns() / ST_NS_PER_SEC)
        ST_LOG_WARN("server", "msg=\"the TLS certificate has expired\" not_after=%s", exp);
}

static void on_sighup(uv_signal_t *h, int sig)
{
    st_app_t *app = h->data;
    st_http_tls_t *t = NULL;
    if (atomic_load(&app->state) != ST_APP_READY) return;
    if (tls_load(&app->cfg, &t) < 0) {
        ST_LOG_WARN("server", "msg=\"TLS reload failed; new connections keep the previous certificate\"");
        return;
    }
    st_http_server_set_tls(app->http, t); /* the server takes its own reference */
    tls_log(&app->cfg, t, "TLS certificate reloaded");
    st_http_tls_free(t);
}

static double gauge_uptime(void *arg)
{
    st_app_t *app = arg;
    return (double)(st_now_ns() - app->started_ns) / 1e9;
}

void st_app_ingester_opts(const st_config_t *c, st_index_t *ix, st_ingester_opts_t *io)
{
    *io = (st_ingester_opts_t){
        .wal_dir = c->ingester.wal.dir,
        .chunks_dir = c->storage_config.filesystem.directory,
        .block_size = c->ingester.chunk_block_size,
        .target_size = c->ingester.chunk_target_size,
        .zstd_level = c->ingester.zstd_level,
        .block_filters = c->ingester.block_filters,
        .max_chunk_age_ns = c->ingester.max_chunk_age_ns,
        .idle_period_ns = c->ingester.chunk_idle_period_ns,
        .flush_check_period_ns = c->ingester.flush_check_period_ns,
        .wal_segment_size = c->ingester.wal.segment_size,
        .wal_max_pending = c->ingester.wal.max_pending_bytes,
        .wal_max_size = c->ingester.wal.max_size,
        .head_memory_target = c->ingester.head_memory_target,
        .head_spill = c->ingester.head_spill,
        .spill_segment_size = c->ingester.head_spill_segment_size,
        .index = ix,
        .limits = {.tenant_rate = c->limits_config.ingestion_rate_mb * 1048576.0,
                   .tenant_burst = c->limits_config.ingestion_burst_size_mb * 1048576.0,
                   .stream_rate = (double)c->limits_config.per_stream_rate_limit,
                   .stream_burst = (double)c->limits_config.per_stream_rate_limit_burst,
                   .max_streams = c->limits_config.max_global_streams_per_user,
                   .memory_budget = c->ingester.memory_budget,
                   .tenant_memory_budget = c->limits_config.memory_budget_per_tenant}};
}

int st_datadir_lock(const char *dir)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/strata.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? ST_EBADSTATE : -e;
    }
    return fd;
}

int st_app_ingest_wait(void *ingester, st_push_t *p)
{
    return st_ingester_push_wait(ingester, p);
}

int st_app_serve(st_app_t *app)
{
    const st_config_t *c = &app->cfg;
    int rc;
    app->started_ns = st_now_ns();
    raise_fd_limit();
    if (getenv("UV_THREADPOOL_SIZE") == NULL) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        char v[32];
        snprintf(v, sizeof v, "%ld", n * 2 > 4 ? n * 2 : 4);
        setenv("UV_THREADPOOL_SIZE", v, 1);
    }
    st_log_set_level(c->server.log_level);
    st_gauge_fn("strata_uptime_seconds", "Seconds since the server started.", NULL, gauge_uptime, app);
    st_gauge_set(st_gauge("strata_build_info", "Build information.", "version=\"" ST_VERSION "\""), 1);

    app->loop = uv_default_loop();
    if ((rc = st_mkdirs(c->common.path_prefix, 0755)) < 0) {
        ST_LOG_ERROR("server", "msg=\"cannot create data directory\" path=\"%s\" err=\"%s\"", c->common.path_prefix,
                     st_strerror(rc));
        return 1;
    }
    if ((app->datadir_lock = st_datadir_lock(c->common.path_prefix)) < 0) {
        ST_LOG_ERROR("server", "msg=\"%s\" path=\"%s\"",
                     app->datadir_lock == ST_EBADSTATE ? "data directory in use by another strata process"
                                                       : "cannot lock the data directory",
                     c->common.path_prefix);
        return 1;
    }
    if ((rc = st_index_open(c->storage_config.lmdb.directory, c->storage_config.lmdb.map_size, &app->index)) < 0) {
        ST_LOG_ERROR("server", "msg=\"cannot open index\" path=\"%s\" err=\"%s\"", c->storage_config.lmdb.directory,
                     st_strerror(rc));
        return 1;
    }
    st_ingester_opts_t io;
    st_app_ingester_opts(c, app->index, &io);
    io.on_complete = st_api_push_on_complete;
    io.arg = app;
    if ((rc = st_api_push_init(app)) < 0) return 1;
    if (st_audit_start(c, "serve", true) < 0) return 1; /* lifecycle.audit (audit/audit.h); it logs why */
    if ((rc = st_ingester_open(&io, &app->ingester)) < 0) {
        ST_LOG_ERROR("server", "msg=\"cannot open ingester\" err=\"%s\"", st_strerror(rc));
        return 1;
    }
    if (c->auth_credentials_file[0]) {
        char aerr[512];
        if ((rc = st_auth_load(c->auth_credentials_file, &app->auth, aerr, sizeof aerr)) < 0) {
            ST_LOG_ERROR("server", "msg=\"invalid credentials file\" err=\"%s\"", aerr);
            return 1;
        }
    }
    char lerr[16384];
    if ((rc = st_lifecycle_config_parse(c, &app->lc, lerr, sizeof lerr)) < 0) {
        ST_LOG_ERROR("server", "msg=\"invalid lifecycle configuration\" err=\"%s\"", lerr);
        return 1;
    }
    if (app->lc->s3.bucket[0]) {
        char cache[1100];
        snprintf(cache, sizeof cache, "%s/cache", c->common.path_prefix);
        if ((rc = st_lc_reader_new(app->lc, cache, 0, &app->reader)) < 0)
            ST_LOG_WARN("server", "msg=\"cannot read chunks stored in S3\" err=\"%s\"", st_strerror(rc));
    }
    st_querier_opts_t qo = {.index = app->index,
                            .fetch = app->reader ? st_lc_reader_fetch : NULL,
                            .fetch_arg = app->reader,
                            .apply_deletes = strcmp(c->limits_config.deletion_mode, "disabled") != 0,
                            .ingester = app->ingester,
                            .chunks_dir = c->storage_config.filesystem.directory,
                            .max_query_series = c->limits_config.max_query_series,
                            .query_timeout_ns = c->limits_config.query_timeout_ns};
    if ((rc = st_querier_new(&qo, &app->querier)) < 0) return 1;
    st_http_tls_t *tls = NULL;
    if (c->server.http_tls_config.cert_file[0] && tls_load(c, &tls) < 0) {
        st_ingester_close(app->ingester, false);
        return 1;
    }
    st_http_opts_t ho = {.host = c->server.http_listen_address,
                         .port = c->server.http_listen_port,
                         .max_header_bytes = c->server.http_max_header_bytes,
                         .max_body_bytes = c->distributor.max_recv_msg_size,
                         .read_timeout_ns = c->server.http_server_read_timeout_ns,
                         .write_timeout_ns = c->server.http_server_write_timeout_ns,
                         .idle_timeout_ns = c->server.http_server_idle_timeout_ns,
                         .max_connections = c->server.http_listen_conn_limit,
                         .tls = tls};
    rc = st_http_server_create(app->loop, &ho, &app->http);
    if (tls && rc == 0) tls_log(c, tls, "TLS enabled");
    st_http_tls_free(tls); /* the server keeps its own reference */
    if (rc < 0) {
        ST_LOG_ERROR("server", "msg=\"cannot listen\" addr=%s:%d err=\"%s\"", ho.host, ho.port, uv_strerror(rc));
        st_ingester_close(app->ingester, false);
        return 1;
    }
    if ((rc = st_api_register(app)) < 0 || (rc = st_api_register_lifecycle(app)) < 0 ||
        (rc = st_api_register_delete(app)) < 0 || (rc = st_api_register_reports(app)) < 0)
        return 1;
    st_api_lifecycle_start(app);
    uv_signal_init(app->loop, &app->sigterm);
    uv_signal_init(app->loop, &app->sigint);
    app->sigterm.data = app->sigint.data = app;
    uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    uv_signal_start(&app->sigint, on_signal, SIGINT);
    if (c->server.http_tls_config.cert_file[0]) {
        uv_signal_init(app->loop, &app->sighup);
        app->sighup.data = app;
        uv_signal_start(&app->sighup, on_sighup, SIGHUP);
        app->has_sighup = true;
    }
    atomic_store(&app->state, ST_APP_READY);
    ST_LOG_INFO("server", "msg=\"Strata ready\" version=%s addr=%s:%d tls=%s data=\"%s\" config=\"%s\"", ST_VERSION,
                ho.host, st_http_port(app->http), c->server.http_tls_config.cert_file[0] ? "true" : "false",
                c->common.path_prefix, app->config_file ? app->config_file : "(embedded default)");
    uv_run(app->loop, UV_RUN_DEFAULT);
    st_http_server_destroy(app->http);
    st_querier_free(app->querier);
    st_lc_reader_free(app->reader);
    st_lifecycle_config_free(app->lc);
    st_audit_stop(); /* after the ingester's last flush: its chunks are recorded */
    st_index_close(app->index);
    close(app->datadir_lock);
    st_auth_free(app->auth);
    uv_loop_close(app->loop);
    ST_LOG_INFO("server", "msg=\"stopped\" exit_code=%d", app->exit_code);
    return app->exit_code;
}
