/* output.c: everything the config module prints from the key table: the effective config as YAML
 * (GET /config), the plain-text reference (--help-config) and the Markdown reference that is
 * committed as docs/configuration.md. */
#include "config/config_int.h"

#include "common/err.h"
#include "common/json.h"
#include "common/timeutil.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- YAML output ---- */

/* True when s can be written as a YAML plain scalar that reads back as the same text. */
static bool plain_safe(const char *s)
{
    if (s[0] == '\0' || s[0] == '-') return false;
    if (strcmp(s, "null") == 0 || strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0) return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '.' || ch == '/' || ch == '-'))
            return false;
    }
    return true;
}

static int put_str_value(st_buf_t *b, const char *s)
{
    if (plain_safe(s)) return st_buf_puts(b, s);
    return st_cfg_quote(b, s, strlen(s), 0);
}

/* Prometheus model.Duration.String(): y and w only when they divide the rest exactly ("30d1h", not
 * "4w2d1h"), then d h m s ms. ns must be >= 0 and a whole number of milliseconds. */
static void format_prom(int64_t ns, char *out)
{
    static const struct {
        char u;
        int64_t ms;
        bool exact;
    } units[] = {{'y', INT64_C(365) * 86400000, true},
                 {'w', INT64_C(7) * 86400000, true},
                 {'d', 86400000, false},
                 {'h', 3600000, false},
                 {'m', 60000, false},
                 {'s', 1000, false}};
    int64_t ms = ns / ST_NS_PER_MS;
    size_t n = 0;
    if (ms == 0) {
        strcpy(out, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].exact && ms % units[i].ms != 0) continue;
        int64_t v = ms / units[i].ms;
        if (v > 0) {
            n += (size_t)snprintf(out + n, 64 - n, "%lld%c", (long long)v, units[i].u);
            ms -= v * units[i].ms;
        }
    }
    if (ms > 0) snprintf(out + n, 64 - n, "%lldms", (long long)ms);
}

/* Go form, or Prometheus form (Loki's model.Duration keys) when that is exact. out: 64 bytes. */
static void format_duration(int64_t ns, bool prom, char *out)
{
    if (prom && ns >= 0 && ns % ST_NS_PER_MS == 0)
        format_prom(ns, out);
    else
        st_format_go_duration(ns, out);
}

/* Appends the value of a scalar key as YAML text (also used for the reference's defaults). */
static int put_value(st_buf_t *b, const st_cfg_key_t *k, const st_config_t *c)
{
    const char *field = (const char *)c + k->off;
    char tmp[64];
    switch (k->type) {
    case ST_CFG_BOOL: {
        bool v;
        memcpy(&v, field, sizeof v);
        return st_buf_puts(b, v ? "true" : "false");
    }
    case ST_CFG_INT: {
        int v;
        memcpy(&v, field, sizeof v);
        return st_buf_printf(b, "%d", v);
    }
    case ST_CFG_STRING:
    case ST_CFG_ENUM: return put_str_value(b, field);
    case ST_CFG_DURATION:
    case ST_CFG_PDURATION: {
        int64_t v;
        memcpy(&v, field, sizeof v);
        format_duration(v, k->type == ST_CFG_PDURATION, tmp);
        return st_buf_puts(b, tmp);
    }
    case ST_CFG_BYTES: {
        size_t v;
        memcpy(&v, field, sizeof v);
        st_cfg_format_bytes(v, tmp);
        return st_buf_puts(b, tmp);
    }
    case ST_CFG_FLOAT: {
        double v;
        memcpy(&v, field, sizeof v);
        return st_json_put_float_str(b, v);
    }
    case ST_CFG_PERIODS: break;
    }
    return 0;
}

static int indent(st_buf_t *b, size_t depth)
{
    for (size_t i = 0; i < depth; i++) ST_TRY(st_buf_puts(b, "  "));
    return 0;
}

static int put_periods(st_buf_t *b, const st_config_t *c, size_t depth)
{
    for (int i = 0; i < c->schema_config.nconfigs && i < ST_CONFIG_MAX_PERIODS; i++) {
        const st_period_config_t *p = &c->schema_config.configs[i];
        char date[32], per[64];
        st_cfg_format_date(p->from_day, date);
        if (p->index_period_ns > 0 && p->index_period_ns % (3600 * ST_NS_PER_SEC) == 0)
            snprintf(per, sizeof per, "%lldh", (long long)(p->index_period_ns / (3600 * ST_NS_PER_SEC)));
        else
            st_format_go_duration(p->index_period_ns, per);
        ST_TRY(indent(b, depth));
        ST_TRY(st_buf_printf(b, "- from: %s\n", date));
        ST_TRY(indent(b, depth + 1));
        ST_TRY(st_buf_puts(b, "store: "));
        ST_TRY(put_str_value(b, p->store));
        ST_TRY(st_buf_putc(b, '\n'));
        ST_TRY(indent(b, depth + 1));
        ST_TRY(st_buf_puts(b, "object_store: "));
        ST_TRY(put_str_value(b, p->object_store));
        ST_TRY(st_buf_putc(b, '\n'));
        ST_TRY(indent(b, depth + 1));
        ST_TRY(st_buf_puts(b, "schema: "));
        ST_TRY(put_str_value(b, p->schema));
        ST_TRY(st_buf_putc(b, '\n'));
        ST_TRY(indent(b, depth + 1));
        ST_TRY(st_buf_puts(b, "index:\n"));
        ST_TRY(indent(b, depth + 2));
        ST_TRY(st_buf_puts(b, "prefix: "));
        ST_TRY(put_str_value(b, p->index_prefix));
        ST_TRY(st_buf_putc(b, '\n'));
        ST_TRY(indent(b, depth + 2));
        ST_TRY(st_buf_printf(b, "period: %s\n", per));
    }
    return 0;
}

/* Splits the section part of a dotted key (all but the leaf) into components. */
static size_t split_section(const char *key, const char *comp[8], size_t compn[8])
{
    size_t n = 0;
    const char *p = key;
    const char *dot;
    while ((dot = strchr(p, '.')) != NULL && n < 8) {
        comp[n] = p;
        compn[n++] = (size_t)(dot - p);
        p = dot + 1;
    }
    return n;
}

/* Writes the table as nested YAML. Rows of one section are contiguous, so section headers are due
 * from the first component where a row's section path differs from the previous row's. */
static int write_yaml(st_buf_t *b, const st_config_t *c)
{
    const char *pc[8], *cc[8];
    size_t pcn[8], ccn[8], np = 0;
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        size_t nc = split_section(k->key, cc, ccn);
        const char *leaf = strrchr(k->key, '.');
        leaf = leaf ? leaf + 1 : k->key;
        size_t same = 0;
        while (same < nc && same < np && ccn[same] == pcn[same] && memcmp(cc[same], pc[same], ccn[same]) == 0)
            same++;
        if (i > 0 && same == 0) ST_TRY(st_buf_putc(b, '\n')); /* blank line between top-level blocks */
        for (size_t d = same; d < nc; d++) {
            ST_TRY(indent(b, d));
            ST_TRY(st_buf_printf(b, "%.*s:\n", (int)ccn[d], cc[d]));
        }
        ST_TRY(indent(b, nc));
        if (k->type == ST_CFG_PERIODS) {
            ST_TRY(st_buf_printf(b, "%s:\n", leaf));
            ST_TRY(put_periods(b, c, nc + 1));
        } else {
            ST_TRY(st_buf_printf(b, "%s: ", leaf));
            ST_TRY(put_value(b, k, c));
            ST_TRY(st_buf_putc(b, '\n'));
        }
        memcpy(pc, cc, sizeof cc);
        memcpy(pcn, ccn, sizeof ccn);
        np = nc;
    }
    if (c->lifecycle.text[0] != '\0') {
        /* kept verbatim (see config.h); a flow value stays on the key's line */
        const char *t = c->lifecycle.text;
        while (*t == ' ') t++;
        bool flow = *t == '{' || *t == '[';
        ST_TRY(st_buf_puts(b, flow ? "\nlifecycle: " : "\nlifecycle:\n"));
        ST_TRY(st_buf_puts(b, flow ? t : c->lifecycle.text));
        if (b->len && b->data[b->len - 1] != '\n') ST_TRY(st_buf_putc(b, '\n'));
    }
    return 0;
}

char *st_config_to_yaml(const st_config_t *c)
{
    st_buf_t b = ST_BUF_INIT;
    if (write_yaml(&b, c) < 0 || st_buf_reserve(&b, 0) < 0) {
        st_buf_free(&b);
        return NULL;
    }
    b.data[b.len] = '\0';
    return b.data;
}

/* ---- reference ---- */

/* "int, 0..65535", "duration, > 0", "one of: error, warn, info, debug", ... */
static void describe_type(const st_cfg_key_t *k, char *out, size_t outsz)
{
    const char *t = st_cfg_type_name(k->type);
    int64_t umax = k->type == ST_CFG_INT ? INT_MAX : INT64_MAX;
    switch (k->type) {
    case ST_CFG_INT:
    case ST_CFG_DURATION:
    case ST_CFG_PDURATION:
    case ST_CFG_BYTES:
    case ST_CFG_FLOAT:
        if (k->max != umax)
            snprintf(out, outsz, "%s, %lld..%lld", t, (long long)k->min, (long long)k->max);
        else if (k->min == 1)
            snprintf(out, outsz, "%s, > 0", t);
        else if (k->min == 0)
            snprintf(out, outsz, "%s, >= 0", t);
        else
            snprintf(out, outsz, "%s, >= %lld", t, (long long)k->min);
        return;
    case ST_CFG_ENUM: {
        size_t j = (size_t)snprintf(out, outsz, "one of: ");
        for (const char *c = k->choices; *c && j + 3 < outsz; c++) {
            if (*c == '|') {
                out[j++] = ',';
                out[j++] = ' ';
            } else {
                out[j++] = *c;
            }
        }
        out[j < outsz ? j : outsz - 1] = '\0';
        return;
    }
    default: snprintf(out, outsz, "%s", t); return;
    }
}

/* The default as it appears in the YAML output ("" for derived directories). */
static char *default_text(const st_cfg_key_t *k, const st_config_t *defs)
{
    st_buf_t b = ST_BUF_INIT;
    int rc;
    if (k->type == ST_CFG_PERIODS)
        rc = st_buf_puts(&b, k->def);
    else if (k->type == ST_CFG_STRING && k->def[0] == '\0')
        rc = st_buf_puts(&b, "\"\"");
    else
        rc = put_value(&b, k, defs);
    if (rc < 0 || st_buf_reserve(&b, 0) < 0) {
        st_buf_free(&b);
        return NULL;
    }
    b.data[b.len] = '\0';
    return b.data;
}

void st_config_print_reference(FILE *out)
{
    st_config_t *defs = malloc(sizeof *defs);
    if (defs == NULL) return;
    st_config_defaults(defs);
    fprintf(out, "Strata configuration keys (YAML path: type, default). Sizes take plain integers or\n"
                 "256KB / 1.5MiB forms; durations take 1h30m / 7d or 1.5h / 300ms. Every key can also be\n"
                 "set on the command line as -<key>=<value>.\n\n");
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        char type[128];
        describe_type(k, type, sizeof type);
        char *def = default_text(k, defs);
        fprintf(out, "%s (%s; default %s)\n    %s\n", k->key, type, def ? def : "?", k->help);
        free(def);
    }
    free(defs);
}

/* Markdown table cell text: '|' escaped, no newlines. */
static void md_cell(FILE *out, const char *s, bool code)
{
    if (code) fputc('`', out);
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
    if (code) fputc('`', out);
}

static void md_table_head(FILE *out)
{
    fputs("| Key | Type | Default | Description |\n|---|---|---|---|\n", out);
}

void st_config_print_markdown(FILE *out)
{
    st_config_t *defs = malloc(sizeof *defs);
    if (defs == NULL) return;
    st_config_defaults(defs);
    fputs("# Strata configuration reference\n"
          "\n"
          "<!-- Generated from config/config_table.c by strata-config-docs; do not edit by hand.\n"
          "     Regenerate with: make -C <build dir> config-docs -->\n"
          "\n"
          "Strata reads one YAML file whose key names follow Loki's where the concept is the same\n"
          "(`server.http_listen_port`, `limits_config.*`, `schema_config`, ...). Keys that are left out\n"
          "keep the defaults below. Loading never stops at the first problem: every error is reported\n"
          "as `file:line: key: message`, and unknown keys are errors (a likely typo names the closest\n"
          "valid key).\n"
          "\n"
          "- **Sizes** take a plain byte count or a size with a unit, binary as in Loki (dskit's\n"
          "  `flagext.ByteSize`): `KB`/`K`/`KiB` = 1024, `MB` = 1024 KB, up to `EB`, case-insensitive,\n"
          "  decimals allowed (`256KB` = 262144, `1.5MB` = 1572864).\n"
          "- **Durations** take the Prometheus form (`7d`, `1h30m`, units `y w d h m s ms`) or the Go\n"
          "  form (`1.5h`, `300ms`, `2h45m`, units `h m s ms us ns`).\n"
          "- **Environment variables**: with Loki's `-config.expand-env=true`, `${VAR}` and\n"
          "  `${VAR:-default}` are replaced in the file text before it is parsed (the default applies\n"
          "  when `VAR` is unset or empty; an unset `VAR` without a default becomes empty).\n"
          "- **Command-line overrides**: every key can be set as `-<key>=<value>`, e.g.\n"
          "  `-server.http_listen_port=3101`; `schema_config.configs` takes a YAML flow list.\n"
          "- **Directories**: `ingester.wal.dir`, `storage_config.filesystem.directory` and\n"
          "  `storage_config.lmdb.directory` default to `wal`, `chunks` and `index` under\n"
          "  `common.path_prefix`.\n"
          "- `GET /config` returns the effective configuration in this same YAML layout.\n",
          out);
    const char *prev_top = NULL;
    size_t prev_topn = 0;
    for (size_t i = 0; i < st_cfg_nkeys; i++) {
        const st_cfg_key_t *k = &st_cfg_keys[i];
        const char *dot = strchr(k->key, '.');
        size_t topn = dot ? (size_t)(dot - k->key) : 0;
        if (prev_top == NULL || topn != prev_topn || memcmp(prev_top, k->key, topn) != 0) {
            if (topn == 0)
                fputs("\n## Top level\n\n", out);
            else
                fprintf(out, "\n## `%.*s`\n\n", (int)topn, k->key);
            md_table_head(out);
            prev_top = k->key;
            prev_topn = topn;
        }
        char type[128];
        describe_type(k, type, sizeof type);
        char *def = default_text(k, defs);
        fputs("| ", out);
        md_cell(out, k->key, true);
        fputs(" | ", out);
        md_cell(out, type, false);
        fputs(" | ", out);
        md_cell(out, def ? def : "?", true);
        fputs(" | ", out);
        md_cell(out, k->help, false);
        fputs(" |\n", out);
        free(def);
    }
    fputs("\n### Period fields (`schema_config.configs[]`)\n\n", out);
    md_table_head(out);
    fputs("| `from` | date | required | First UTC day of the period, `YYYY-MM-DD`; periods must be in "
          "strictly ascending order. |\n"
          "| `store` | one of: lmdb, tsdb | required | Index store; `tsdb` is accepted as an alias of "
          "`lmdb`. |\n"
          "| `object_store` | one of: filesystem | `filesystem` | Where chunks are kept. |\n"
          "| `schema` | one of: v13, strata-v1 | required | Chunk and index schema version. |\n"
          "| `index.prefix` | string | `index_` | Prefix of the per-day index tables (A-Za-z0-9_-). |\n"
          "| `index.period` | duration | `24h` | Index table period; must be `24h`. |\n",
          out);
    char *yaml = st_config_to_yaml(defs);
    if (yaml != NULL) {
        fprintf(out, "\n## All defaults as YAML\n\n```yaml\n%s```\n", yaml);
        free(yaml);
    }
    free(defs);
}
