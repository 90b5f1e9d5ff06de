/* cmd_audit.c: the compliance commands of the strata CLI (audit/audit.h, docs/compliance.md):
 *   strata audit verify | seal | restore-test
 *   strata report retention | deletions
 * Each takes its own --flags plus the configuration flags of every command (-config.file=...,
 * -config.expand-env=true, -<key>=<value>). Exit status: 0 fine, 1 a problem or violation was found,
 * 2 usage or configuration error, 4 the command could not do its work. */
#include "server/app.h"

#include "audit/audit.h"
#include "common/err.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "objstore/objstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const usage_audit =
    "Usage: strata audit <verify|seal|restore-test> [flags] [-config.file=PATH] [-<key>=<value> ...]\n"
    "\n"
    "  verify        recompute the audit trail's hash chain from the sealed copies (and the local unsealed\n"
    "                segments), compare local and sealed copies, check every seal, and check stored data\n"
    "                (local chunks, S3 objects) against their recorded checksums\n"
    "      --all                 check every stored object\n"
    "      --sample=N            check N random objects\n"
    "      --confidence=0.99     else: a random sample that finds at least one corrupt object with this\n"
    "      --min-corrupt=0.01      probability when this fraction of them is corrupt\n"
    "      --seed=N              the sample's random seed (reported; repeat a check with it)\n"
    "      --chain-only          the trail only, no stored objects\n"
    "      --format=text|json\n"
    "  seal          close the active segment now and seal every closed segment (upload + seal record)\n"
    "  restore-test  restore a random sample of each archive class, time it, read it back, record it\n"
    "      --per-tier=N          objects per archive class (default 1)\n"
    "      --tier=Standard|Bulk|Expedited   retrieval tier (default Standard)\n"
    "      --days=N              lifetime of the restored copy (default 1)\n"
    "      --timeout=12h --poll=60s\n"
    "      --seed=N --format=text|json\n"
    "\n"
    "Exit status: 0 fine, 1 a problem was found, 2 usage or configuration error, 4 could not run.\n";

static const char *const usage_report =
    "Usage: strata report <retention|deletions> [flags] [-config.file=PATH] [-<key>=<value> ...]\n"
    "\n"
    "  retention     per policy and stream: bytes and chunks per tier, oldest/newest entry, next transition "
    "and\n"
    "                deletion, legal basis, Object Lock, CloudWatch retention, erasure requests, cost, and\n"
    "                violations (exit status 1 when there is one)\n"
    "      --tenant=T --policy=P --as-of=TIME (RFC3339 or Unix seconds)\n"
    "      --format=json|csv|html (default json)   --output=FILE\n"
    "      --grace=DURATION      report data this long past its deletion date (default "
    "lifecycle.audit.deletion_grace)\n"
    "      --no-object-checks    no HEAD per S3 object / stat per local file\n"
    "      --no-cloudwatch       no CloudWatch Logs calls\n"
    "  deletions     deletion evidence from the audit trail: what was deleted, when, under which rule or "
    "request\n"
    "      --from=TIME --to=TIME (required) --tenant=T --format=json|csv --output=FILE\n";

typedef struct {
    char **rest; /* configuration flags for the loader */
    int nrest;
    const char *config_file;
    bool expand_env;
} cfgflags_t;

/* Loads the configuration from the flags that are not the command's own. Prints errors; 0 or 2. */
static int load_cfg(cfgflags_t *f, st_config_t *cfg)
{
    char err[16384];
    st_config_defaults(cfg);
    if (f->config_file && st_config_load_file(cfg, f->config_file, f->expand_env ? ST_CONFIG_EXPAND_ENV : 0,
                                              err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err[0] ? err : f->config_file);
        return 2;
    }
    for (int i = 0; i < f->nrest; i++) {
        char *kv = f->rest[i];
        char *eq = strchr(kv, '=');
        if (eq == NULL) {
            fprintf(stderr, "strata: flag %s needs a value (-key=value)\n", kv);
            return 2;
        }
        *eq = '\0';
        const char *key = kv + (kv[1] == '-' ? 2 : 1);
        int rc = st_config_set(cfg, key, eq + 1, err, sizeof err);
        *eq = '=';
        if (rc < 0) {
            fprintf(stderr, "command line: %s\n", err);
            return 2;
        }
    }
    if (st_config_finish(cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    return 0;
}

/* Splits argv into the command's own --flags (name=value in own) and configuration flags. */
typedef struct {
    const char *name;
    const char *value; /* NULL when absent; "" for a bare flag */
} opt_t;

static int split_args(int argc, char **argv, opt_t *own, int nown, cfgflags_t *f)
{
    f->rest = calloc((size_t)argc + 1, sizeof *f->rest);
    if (f->rest == NULL) return 4;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "-config.file=", 13) == 0 || strncmp(a, "--config.file=", 14) == 0) {
            f->config_file = strchr(a, '=') + 1;
            continue;
        }
        if (strcmp(a, "-config.file") == 0 && i + 1 < argc) {
            f->config_file = argv[++i];
            continue;
        }
        if (strncmp(a, "-config.expand-env", 18) == 0 || strncmp(a, "--config.expand-env", 19) == 0) {
            const char *eq = strchr(a, '=');
            f->expand_env = eq == NULL || strcmp(eq + 1, "true") == 0 || strcmp(eq + 1, "1") == 0;
            continue;
        }
        bool matched = false;
        if (strncmp(a, "--", 2) == 0) {
            const char *n = a + 2, *eq = strchr(n, '=');
            size_t nl = eq ? (size_t)(eq - n) : strlen(n);
            for (int k = 0; k < nown; k++) {
                if (strlen(own[k].name) != nl || strncmp(own[k].name, n, nl) != 0) continue;
                own[k].value = eq ? eq + 1 : "";
                matched = true;
                break;
            }
        }
        if (matched) continue;
        if (a[0] != '-') {
            fprintf(stderr, "strata: unexpected argument \"%s\"\n", a);
            return 2;
        }
        f->rest[f->nrest++] = argv[i];
    }
    return 0;
}

static const char *opt(const opt_t *o, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(o[i].name, name) == 0) return o[i].value;
    return NULL;
}

static int parse_time_flag(const char *what, const char *v, int64_t *out)
{
    if (v == NULL || st_parse_query_time(st_cstr(v), out) < 0) {
        fprintf(stderr, "strata: --%s: cannot parse \"%s\" (RFC3339 or Unix seconds)\n", what, v ? v : "");
        return 2;
    }
    return 0;
}

static int parse_dur_flag(const char *what, const char *v, int64_t *out)
{
    if (st_parse_prom_duration(st_cstr(v), out) == 0 || st_parse_go_duration(st_cstr(v), out) == 0) return 0;
    fprintf(stderr, "strata: --%s: invalid duration \"%s\"\n", what, v);
    return 2;
}

static int write_out(const char *path, const st_buf_t *b)
{
    FILE *f = path && path[0] ? fopen(path, "w") : stdout;
    if (f == NULL) {
        perror(path);
        return 4;
    }
    bool ok = fwrite(b->data ? b->data : "", 1, b->len, f) == b->len;
    if (f != stdout)
        ok &= fclose(f) == 0;
    else
        fflush(stdout);
    return ok ? 0 : 4;
}

/* The configuration, its lifecycle section and the index. */
typedef struct {
    st_config_t cfg;
    st_lc_config_t *lc;
    st_index_t *ix;
} env_t;

static int open_env(cfgflags_t *f, env_t *e, bool need_index)
{
    int rc = load_cfg(f, &e->cfg);
    if (rc) return rc;
    st_log_set_level(e->cfg.server.log_level);
    char err[16384];
    if (st_lifecycle_config_parse(&e->cfg, &e->lc, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if (!need_index) return 0;
    int irc =
        st_index_open(e->cfg.storage_config.lmdb.directory, e->cfg.storage_config.lmdb.map_size, &e->ix);
    if (irc < 0) {
        fprintf(stderr, "strata: cannot open the index at %s: %s\n", e->cfg.storage_config.lmdb.directory,
                st_strerror(irc));
        return 4;
    }
    return 0;
}

static void close_env(env_t *e)
{
    if (e->ix) st_index_close(e->ix);
    st_lifecycle_config_free(e->lc);
}

/* ---- strata audit -----------------------------------------------------------------------------------------
 */

static int audit_verify(int argc, char **argv)
{
    opt_t o[] = {{"all", NULL},  {"sample", NULL},     {"confidence", NULL}, {"min-corrupt", NULL},
                 {"seed", NULL}, {"chain-only", NULL}, {"format", NULL}};
    int no = (int)(sizeof o / sizeof o[0]);
    cfgflags_t f = {0};
    static env_t e;
    int rc = split_args(argc, argv, o, no, &f);
    st_audit_verify_opts_t vo = {
        .all = opt(o, no, "all") != NULL,
        .skip_objects = opt(o, no, "chain-only") != NULL,
        .confidence = opt(o, no, "confidence") ? atof(opt(o, no, "confidence")) : 0.99,
        .min_corrupt = opt(o, no, "min-corrupt") ? atof(opt(o, no, "min-corrupt")) : 0.01,
        .sample = opt(o, no, "sample") ? (size_t)strtoull(opt(o, no, "sample"), NULL, 10) : 0,
        .seed = opt(o, no, "seed") ? strtoull(opt(o, no, "seed"), NULL, 10) : 0};
    const char *fmt = opt(o, no, "format") ? opt(o, no, "format") : "text";
    if (rc == 0 &&
        (!(vo.confidence > 0 && vo.confidence < 1) || !(vo.min_corrupt > 0 && vo.min_corrupt <= 1))) {
        fprintf(stderr, "strata audit verify: --confidence must be in (0, 1) and --min-corrupt in (0, 1]\n");
        rc = 2;
    }
    if (rc == 0 && strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0) {
        fprintf(stderr, "strata audit verify: --format must be text or json\n");
        rc = 2;
    }
    if (rc == 0) rc = open_env(&f, &e, !vo.skip_objects);
    st_buf_t out = ST_BUF_INIT;
    if (rc == 0) {
        int vrc = st_audit_verify(&e.cfg, e.ix, &vo, strcmp(fmt, "json") == 0 ? &out : NULL,
                                  strcmp(fmt, "text") == 0 ? &out : NULL);
        if (vrc < 0) {
            fprintf(stderr, "strata audit verify: %s\n", st_s3_strerror(vrc));
            rc = 4;
        } else {
            rc = write_out(NULL, &out) ? 4 : vrc;
        }
    }
    st_buf_free(&out);
    close_env(&e);
    free(f.rest);
    return rc;
}

static int audit_seal(int argc, char **argv)
{
    cfgflags_t f = {0};
    static env_t e;
    int rc = split_args(argc, argv, NULL, 0, &f);
    if (rc == 0) rc = open_env(&f, &e, false);
    if (rc == 0 && !st_audit_config_of(e.lc)->enabled) {
        fprintf(stderr, "strata audit seal: lifecycle.audit.enabled is false\n");
        rc = 2;
    }
    if (rc == 0 && st_audit_start(&e.cfg, "audit", false) < 0) rc = 4;
    if (rc == 0) {
        int src = st_audit_seal(st_audit_global(), true);
        if (src < 0) {
            fprintf(stderr, "strata audit seal: %s\n", st_s3_strerror(src));
            rc = 4;
        } else {
            printf("sealed\n");
        }
    }
    if (st_audit_stop() < 0 && rc == 0) rc = 4;
    close_env(&e);
    free(f.rest);
    return rc;
}

static int audit_restore_test(int argc, char **argv)
{
    opt_t o[] = {{"per-tier", NULL}, {"tier", NULL}, {"days", NULL},  {"timeout", NULL},
                 {"poll", NULL},     {"seed", NULL}, {"format", NULL}};
    int no = (int)(sizeof o / sizeof o[0]);
    cfgflags_t f = {0};
    static env_t e;
    int rc = split_args(argc, argv, o, no, &f);
    st_drill_opts_t d = {.per_tier = opt(o, no, "per-tier") ? atoi(opt(o, no, "per-tier")) : 1,
                         .tier = opt(o, no, "tier"),
                         .days = opt(o, no, "days") ? atoi(opt(o, no, "days")) : 1,
                         .seed = opt(o, no, "seed") ? strtoull(opt(o, no, "seed"), NULL, 10) : 0};
    if (rc == 0 && opt(o, no, "timeout"))
        rc = parse_dur_flag("timeout", opt(o, no, "timeout"), &d.timeout_ns);
    if (rc == 0 && opt(o, no, "poll")) rc = parse_dur_flag("poll", opt(o, no, "poll"), &d.poll_ns);
    const char *fmt = opt(o, no, "format") ? opt(o, no, "format") : "text";
    if (rc == 0) rc = open_env(&f, &e, true);
    if (rc == 0 && st_audit_start(&e.cfg, "audit", false) < 0) rc = 4;
    st_buf_t out = ST_BUF_INIT;
    if (rc == 0) {
        d.progress = strcmp(fmt, "json") == 0 ? NULL : stderr;
        int drc = st_audit_restore_drill(&e.cfg, e.lc, e.ix, &d, &out);
        if (drc < 0) {
            fprintf(stderr, "strata audit restore-test: %s\n",
                    drc == ST_EPARSE      ? "--tier must be Standard, Bulk or Expedited"
                    : drc == ST_ENOTFOUND ? "no lifecycle.s3 bucket: nothing is archived"
                                          : st_s3_strerror(drc));
            rc = drc == ST_EPARSE ? 2 : 4;
        } else {
            if (strcmp(fmt, "json") == 0)
                write_out(NULL, &out);
            else
                printf("restore-test: %s\n", drc == 0 ? "every sampled restore succeeded" : "FAILED");
            rc = drc;
        }
    }
    if (st_audit_stop() < 0 && rc == 0) rc = 4;
    st_buf_free(&out);
    close_env(&e);
    free(f.rest);
    return rc;
}

int st_cmd_audit(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage_audit, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_audit, stdout);
            return 0;
        }
    if (strcmp(argv[0], "verify") == 0) return audit_verify(argc - 1, argv + 1);
    if (strcmp(argv[0], "seal") == 0) return audit_seal(argc - 1, argv + 1);
    if (strcmp(argv[0], "restore-test") == 0) return audit_restore_test(argc - 1, argv + 1);
    fprintf(stderr, "strata audit: unknown subcommand \"%s\"\n\n%s", argv[0], usage_audit);
    return 2;
}

/* ---- strata report ----------------------------------------------------------------------------------------
 */

static int report_retention(int argc, char **argv)
{
    opt_t o[] = {{"tenant", NULL},           {"policy", NULL},       {"as-of", NULL},
                 {"format", NULL},           {"output", NULL},       {"grace", NULL},
                 {"no-object-checks", NULL}, {"no-cloudwatch", NULL}};
    int no = (int)(sizeof o / sizeof o[0]);
    cfgflags_t f = {0};
    static env_t e;
    int rc = split_args(argc, argv, o, no, &f);
    st_report_opts_t ro = {.tenant = opt(o, no, "tenant"),
                           .policy = opt(o, no, "policy"),
                           .grace_ns = -1,
                           .skip_objects = opt(o, no, "no-object-checks") != NULL,
                           .skip_cloudwatch = opt(o, no, "no-cloudwatch") != NULL};
    st_report_format_t fmt = ST_REPORT_JSON;
    if (rc == 0 && opt(o, no, "format") && st_report_format_parse(opt(o, no, "format"), &fmt) < 0) {
        fprintf(stderr, "strata report retention: --format must be json, csv or html\n");
        rc = 2;
    }
    if (rc == 0 && opt(o, no, "as-of")) rc = parse_time_flag("as-of", opt(o, no, "as-of"), &ro.as_of);
    if (rc == 0 && opt(o, no, "grace")) rc = parse_dur_flag("grace", opt(o, no, "grace"), &ro.grace_ns);
    if (rc == 0) rc = open_env(&f, &e, true);
    if (rc == 0 && ro.policy) {
        bool known = false;
        for (int i = 0; i < e.lc->npolicies; i++) known |= strcmp(e.lc->policies[i].name, ro.policy) == 0;
        if (!known) {
            fprintf(stderr, "strata report retention: no policy named \"%s\"\n", ro.policy);
            rc = 2;
        }
    }
    st_buf_t out = ST_BUF_INIT;
    if (rc == 0) {
        size_t nviol = 0;
        int rrc = st_report_retention(&e.cfg, e.lc, e.ix, &ro, fmt, &out, &nviol);
        if (rrc < 0) {
            fprintf(stderr, "strata report retention: %s\n", st_s3_strerror(rrc));
            rc = 4;
        } else {
            rc = write_out(opt(o, no, "output"), &out);
            if (rc == 0 && nviol) {
                fprintf(stderr, "strata report retention: %zu violation%s\n", nviol, nviol == 1 ? "" : "s");
                rc = 1;
            }
        }
    }
    st_buf_free(&out);
    close_env(&e);
    free(f.rest);
    return rc;
}

static int report_deletions(int argc, char **argv)
{
    opt_t o[] = {{"from", NULL}, {"to", NULL}, {"tenant", NULL}, {"format", NULL}, {"output", NULL}};
    int no = (int)(sizeof o / sizeof o[0]);
    cfgflags_t f = {0};
    static env_t e;
    int rc = split_args(argc, argv, o, no, &f);
    int64_t from = 0, to = 0;
    st_report_format_t fmt = ST_REPORT_JSON;
    if (rc == 0 && (opt(o, no, "from") == NULL || opt(o, no, "to") == NULL)) {
        fprintf(stderr, "strata report deletions: --from and --to are required\n");
        rc = 2;
    }
    if (rc == 0) rc = parse_time_flag("from", opt(o, no, "from"), &from);
    if (rc == 0) rc = parse_time_flag("to", opt(o, no, "to"), &to);
    if (rc == 0 && opt(o, no, "format") &&
        (st_report_format_parse(opt(o, no, "format"), &fmt) < 0 || fmt == ST_REPORT_HTML)) {
        fprintf(stderr, "strata report deletions: --format must be json or csv\n");
        rc = 2;
    }
    if (rc == 0) rc = open_env(&f, &e, true);
    st_buf_t out = ST_BUF_INIT;
    if (rc == 0) {
        size_t n = 0;
        int drc = st_report_deletions(&e.cfg, e.lc, e.ix, opt(o, no, "tenant"), from, to, fmt, &out, &n);
        if (drc < 0) {
            fprintf(stderr, "strata report deletions: %s\n", st_strerror(drc));
            rc = 4;
        } else {
            rc = write_out(opt(o, no, "output"), &out);
        }
    }
    st_buf_free(&out);
    close_env(&e);
    free(f.rest);
    return rc;
}

int st_cmd_report(int argc, char **argv)
{
    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        fputs(usage_report, argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage_report, stdout);
            return 0;
        }
    if (strcmp(argv[0], "retention") == 0) return report_retention(argc - 1, argv + 1);
    if (strcmp(argv[0], "deletions") == 0) return report_deletions(argc - 1, argv + 1);
    fprintf(stderr, "strata report: unknown subcommand \"%s\"\n\n%s", argv[0], usage_report);
    return 2;
}
