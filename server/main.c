/* main.c: the strata command line: serve, check-config, config-reference, version, help. The only
 * place that calls exit(). Flags follow Loki's single-dash style (-config.file=strata.yaml); any other
 * -<yaml.key>=<value> overrides that configuration key. */
#include "server/app.h"

#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "objstore/objstore.h"
#include "store/store.h"
#include "lifecycle/lifecycle.h"
#include "audit/audit.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const usage_main =
    "Strata: log aggregation with tiered lifecycle, compatible with Loki's HTTP API.\n"
    "\n"
    "Usage: strata <command> [flags]\n"
    "\n"
    "Commands:\n"
    "  serve             run the server (HTTP API on server.http_listen_port, default 127.0.0.1:3100)\n"
    "  check-config      validate a configuration file and print every problem with file, line and key\n"
    "  lifecycle run     move chunks between tiers and delete them per retention policy (cron/CronJob)\n"
    "  audit             verify the audit trail and stored data, seal segments, timed restore drills\n"
    "  report            retention report (json, csv, html) and deletion evidence\n"
    "  auth hash         hash a password or token for auth.credentials_file\n"
    "  config-reference  print every configuration key with its default and description\n"
    "  version           print the version\n"
    "  help <command>    show help for a command\n"
    "\n"
    "Run 'strata <command> --help' for the flags of a command.\n";

static const char *const usage_serve =
    "Usage: strata serve [-config.file=PATH] [-config.expand-env=true] [-<key>=<value> ...]\n"
    "\n"
    "Runs the server. Without -config.file the embedded default is used: data under ./data, listening\n"
    "on 127.0.0.1:3100, no cloud account needed.\n"
    "\n"
    "Flags:\n"
    "  -config.file=PATH         YAML configuration (keys as in Loki where the concept is the same)\n"
    "  -config.expand-env=true   expand ${VAR} and ${VAR:-default} in the file before parsing\n"
    "  -<key>=<value>            override one key, e.g. -server.http_listen_port=3101\n"
    "                            or -common.path_prefix=/var/lib/strata\n"
    "  -h, --help                this help\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop accepting requests, finish those in flight, close every open chunk,\n"
    "sync and exit 0. After kill -9 the next start replays the write-ahead log.\n";

static const char *const usage_check =
    "Usage: strata check-config [-config.file=PATH] [-config.expand-env=true] [-<key>=<value> ...]\n"
    "\n"
    "Validates the configuration (file plus overrides) and prints each problem as\n"
    "  <file>:<line>: <key>: <message>\n"
    "Exits 0 when valid, 1 otherwise. With no file it checks the embedded default.\n";

static const char *const usage_lifecycle =
    "Usage: strata lifecycle run [--dry-run] [--now=<RFC3339>] [--quiet] [-config.file=PATH] [-<key>=<value> ...]\n"
    "\n"
    "Runs the lifecycle once over the data directory of the configuration: chunks move from the hot tier\n"
    "to S3 Standard, Glacier and Deep Archive and are deleted as their policy says (the lifecycle: section;\n"
    "see docs/lifecycle.md). Only one run at a time holds the lease; a second one exits 3. A run killed at\n"
    "any point is completed by the next one.\n"
    "\n"
    "Flags:\n"
    "  --dry-run        print the plan (what moves where, bytes, objects, requests, cost) and change nothing\n"
    "  --now=TIME       evaluate as of TIME (RFC3339 or Unix seconds) instead of the current time\n"
    "  --quiet          no progress lines\n"
    "  -config.file=PATH, -config.expand-env=true, -<key>=<value> as for serve\n";

typedef struct {
    const char *config_file;
    bool expand_env;
    char **overrides; /* "key=value" */
    int noverrides;
    bool help;
} flags_t;

/* Accepts -k=v, --k=v, -k v, --k v. Returns 0, or 2 on a usage error (message printed). */
static int parse_flags(int argc, char **argv, flags_t *f)
{
    f->overrides = calloc((size_t)argc + 1, sizeof *f->overrides);
    if (f->overrides == NULL) return 2;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-help") == 0) {
            f->help = true;
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "strata: unexpected argument \"%s\"\n", a);
            return 2;
        }
        a += a[1] == '-' ? 2 : 1;
        const char *eq = strchr(a, '=');
        char key[256];
        const char *val;
        if (eq) {
            snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else {
            snprintf(key, sizeof key, "%s", a);
            if (i + 1 >= argc) {
                fprintf(stderr, "strata: flag -%s needs a value\n", key);
                return 2;
            }
            val = argv[++i];
        }
        if (strcmp(key, "config.file") == 0) {
            f->config_file = val;
        } else if (strcmp(key, "config.expand-env") == 0) {
            f->expand_env = strcmp(val, "true") == 0 || strcmp(val, "1") == 0;
        } else {
            size_t n = strlen(key) + strlen(val) + 2;
            char *kv = malloc(n);
            if (kv == NULL) return 2;
            snprintf(kv, n, "%s=%s", key, val);
            f->overrides[f->noverrides++] = kv;
        }
    }
    return 0;
}

static void free_flags(flags_t *f)
{
    for (int i = 0; i < f->noverrides; i++) free(f->overrides[i]);
    free(f->overrides);
}

/* Loads defaults, the file, then overrides. Prints errors; returns 0 or 1. */
static int load_config(const flags_t *f, st_config_t *cfg)
{
    char err[16384];
    int rc;
    st_config_defaults(cfg);
    if (f->config_file) {
        rc = st_config_load_file(cfg, f->config_file, f->expand_env ? ST_CONFIG_EXPAND_ENV : 0, err, sizeof err);
        if (rc < 0) {
            if (err[0]) fprintf(stderr, "%s\n", err);
            else fprintf(stderr, "%s: %s\n", f->config_file, st_strerror(rc));
            return 1;
        }
    }
    for (int i = 0; i < f->noverrides; i++) {
        char *kv = f->overrides[i];
        char *eq = strchr(kv, '=');
        *eq = '\0';
        rc = st_config_set(cfg, kv, eq + 1, err, sizeof err);
        *eq = '=';
        if (rc < 0) {
            fprintf(stderr, "command line: %s\n", err);
            return 1;
        }
    }
    if (st_config_finish(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    st_lc_config_t *lc = NULL;
    if (st_lifecycle_config_parse(cfg, &lc, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    st_lifecycle_config_free(lc);
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
#ifdef __GLIBC__
    /* Request bodies and their decoded forms (hundreds of KiB to MiBs) are short-lived. glibc raises
     * its mmap threshold after the first such buffer is freed, so later ones come from the heap and
     * leave holes between long-lived stream heads that RSS never gets back (measured: 30 MiB more
     * peak RSS at 100,000 streams, docs/performance.md). A fixed threshold keeps them in mmap. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    flags_t f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc == 0 && f.help) {
        fputs(usage_serve, stdout);
        free_flags(&f);
        return 0;
    }
    static st_app_t app; /* lives for the whole process */
    if (rc == 0) rc = load_config(&f, &app.cfg);
    if (rc == 0) {
        app.config_file = f.config_file;
        rc = st_app_serve(&app);
    }
    free_flags(&f);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    flags_t f = {0};
    int rc = parse_flags(argc, argv, &f);
    if (rc == 0 && f.help) {
        fputs(usage_check, stdout);
        free_flags(&f);
        return 0;
    }
    st_config_t *cfg = malloc(sizeof *cfg);
    if (cfg == NULL) return 1;
    if (rc == 0) rc = load_config(&f, cfg);
    if (rc == 0) printf("%s: configuration is valid\n", f.config_file ? f.config_file : "(embedded default)");
    free(cfg);
    free_flags(&f);
    return rc;
}

static int cmd_lifecycle(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage_lifecycle, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "run") != 0) {
        fprintf(stderr, "strata lifecycle: unknown subcommand \"%s\"\n\n%s", argv[0], usage_lifecycle);
        return 2;
    }
    bool dry = false, quiet = false;
    const char *now_s = NULL;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int nrest = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0 || strcmp(argv[i], "-dry-run") == 0) dry = true;
        else if (strcmp(argv[i], "--quiet") == 0) quiet = true;
        else if (strncmp(argv[i], "--now=", 6) == 0) now_s = argv[i] + 6;
        else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) now_s = argv[++i];
        else rest[nrest++] = argv[i];
    }
    flags_t f = {0};
    int rc = parse_flags(nrest, rest, &f);
    if (rc == 0 && f.help) {
        fputs(usage_lifecycle, stdout);
        free_flags(&f);
        free(rest);
        return 0;
    }
    static st_config_t cfg;
    if (rc == 0) rc = load_config(&f, &cfg);
    int64_t now = st_now_ns();
    if (rc == 0 && now_s && st_parse_query_time(st_cstr(now_s), &now) < 0) {
        fprintf(stderr, "strata lifecycle: --now: cannot parse \"%s\" (RFC3339 or Unix seconds)\n", now_s);
        rc = 2;
    }
    st_lc_config_t *lc = NULL;
    st_index_t *ix = NULL;
    char err[16384];
    if (rc == 0 && st_lifecycle_config_parse(&cfg, &lc, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        rc = 1;
    }
    if (rc == 0 && lc->npolicies == 0) {
        fprintf(stderr, "strata lifecycle: the configuration has no lifecycle policies; nothing to do\n");
    }
    if (rc == 0) {
        st_log_set_level(cfg.server.log_level);
        /* a data directory never served yet (an import-only first run) is created as serve would */
        int irc = st_mkdirs(cfg.storage_config.lmdb.directory, 0755);
        if (irc == 0) irc = st_index_open(cfg.storage_config.lmdb.directory, cfg.storage_config.lmdb.map_size, &ix);
        if (irc < 0) {
            fprintf(stderr, "strata lifecycle: cannot open the index at %s: %s\n", cfg.storage_config.lmdb.directory,
                    st_strerror(irc));
            rc = 1;
        }
    }
    if (rc == 0) {
        st_lc_run_opts_t o = {.cfg = &cfg, .lc = lc, .index = ix, .now_ns = now, .dry_run = dry,
                              .progress = quiet ? NULL : stderr, .plan = stdout};
        /* The CloudWatch import writes through an ingester of our own, which needs the data directory
         * to itself; while strata serve holds it, the server's lifecycle worker imports instead. */
        int lock = -1;
        st_ingester_t *ing = NULL;
        if (!dry && st_lc_wants_ingest(lc)) {
            lock = st_datadir_lock(cfg.common.path_prefix);
            st_ingester_opts_t io;
            st_app_ingester_opts(&cfg, ix, &io);
            int orc = lock >= 0 ? st_ingester_open(&io, &ing) : lock;
            if (orc == 0) {
                o.ingest = st_app_ingest_wait;
                o.ingest_arg = ing;
            } else if (!quiet) {
                fprintf(stderr, "strata lifecycle: %s; the CloudWatch import is left to it\n",
                        orc == ST_EBADSTATE ? "strata serve holds the data directory"
                                            : "cannot open the ingester for the CloudWatch import");
            }
        }
        st_lc_report_t rep;
        /* the audit trail (lifecycle.audit, audit/audit.h) records what the run does; it logs why it cannot */
        int lrc = dry || st_audit_start(&cfg, "lifecycle", false) == 0 ? st_lifecycle_run(&o, &rep) : -EIO;
        int crc = ing ? st_ingester_close(ing, true) : 0;
        st_audit_stop();
        if (crc < 0 && lrc >= 0) lrc = crc;
        if (lock >= 0) close(lock);
        if (lrc == ST_EBADSTATE) {
            fprintf(stderr, "strata lifecycle: another run holds the lease on %s; not running\n", cfg.common.path_prefix);
            rc = 3;
        } else if (lrc < 0) {
            fprintf(stderr, "strata lifecycle: run failed: %s\n", st_s3_strerror(lrc));
            rc = 1;
        } else {
            if (!dry)
                printf("done: %llu objects written, %llu deleted, %llu requests, %llu failures\n",
                       (unsigned long long)rep.packs_written, (unsigned long long)rep.objects_deleted,
                       (unsigned long long)rep.requests, (unsigned long long)rep.failures);
            rc = rep.failures ? 1 : 0;
        }
    }
    st_index_close(ix);
    st_lifecycle_config_free(lc);
    free_flags(&f);
    free(rest);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        if (strcmp(cmd, "help") == 0 && argc > 2) {
            if (strcmp(argv[2], "serve") == 0) fputs(usage_serve, stdout);
            else if (strcmp(argv[2], "check-config") == 0) fputs(usage_check, stdout);
            else if (strcmp(argv[2], "lifecycle") == 0) fputs(usage_lifecycle, stdout);
            else if (strcmp(argv[2], "audit") == 0 || strcmp(argv[2], "report") == 0) {
                char *h[] = {(char *)"--help"};
                return strcmp(argv[2], "audit") == 0 ? st_cmd_audit(1, h) : st_cmd_report(1, h);
            }
            else {
                fprintf(stderr, "strata: unknown command \"%s\"\n", argv[2]);
                return 2;
            }
            return 0;
        }
        fputs(usage_main, stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "-version") == 0) {
        printf("strata, version %s\n", ST_VERSION);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0) return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check-config") == 0) return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "lifecycle") == 0) return cmd_lifecycle(argc - 2, argv + 2);
    if (strcmp(cmd, "audit") == 0) return st_cmd_audit(argc - 2, argv + 2);
    if (strcmp(cmd, "report") == 0) return st_cmd_report(argc - 2, argv + 2);
    if (strcmp(cmd, "auth") == 0) {
        if (argc > 2 && strcmp(argv[2], "hash") == 0) return st_auth_hash_cmd(argc - 3, argv + 3);
        fputs("Usage: strata auth hash [--bearer] [--iterations=N] < secret\n", argc > 2 && strcmp(argv[2], "--help") == 0 ? stdout : stderr);
        return argc > 2 && strcmp(argv[2], "--help") == 0 ? 0 : 2;
    }
    if (strcmp(cmd, "config-reference") == 0) {
        if (argc > 2 && strcmp(argv[2], "--markdown") == 0) st_config_print_markdown(stdout);
        else st_config_print_reference(stdout);
        return 0;
    }
    fprintf(stderr, "strata: unknown command \"%s\"\n\n%s", cmd, usage_main);
    return 2;
}
