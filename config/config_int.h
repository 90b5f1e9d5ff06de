/* config_int.h: internals of the config module, shared by its sources and its unit tests.
 *
 * The key table (config_table.c) drives everything: defaults, YAML loading, CLI overrides, /config
 * output and the reference docs. Value parsers/formatters live in values.c. Not a public header. */
#ifndef ST_CONFIG_CONFIG_INT_H
#define ST_CONFIG_CONFIG_INT_H

#include "config/config.h"

#include "common/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ST_CFG_BOOL,      /* bool: true|false (also yes|no|on|off, any case) */
    ST_CFG_INT,       /* int in [min, max] */
    ST_CFG_STRING,    /* char[size]: at most size-1 bytes of UTF-8, no NUL */
    ST_CFG_ENUM,      /* char[size]: one of choices ("a|b|c") */
    ST_CFG_DURATION,  /* int64_t ns in [min, max]; written in Go form ("2h0m0s") */
    ST_CFG_PDURATION, /* same, written in Prometheus form ("1w") like Loki's model.Duration */
    ST_CFG_BYTES,     /* size_t in [min, max]; plain integer or humanized ("256KB", "1.5MiB") */
    ST_CFG_FLOAT,     /* double >= min (finite) */
    ST_CFG_PERIODS,   /* schema_config (configs + nconfigs): a YAML list of period maps */
} st_cfg_type_t;

/* One configuration key: one row of the table. */
typedef struct {
    const char *key; /* dotted YAML path, e.g. "limits_config.max_line_size" */
    st_cfg_type_t type;
    size_t off;          /* offsetof(st_config_t, field) */
    size_t size;         /* sizeof the field (strings: capacity including the NUL) */
    const char *def;     /* default as text, parsed like a YAML value ("" = derived / empty) */
    int64_t min, max;    /* INT, DURATION, PDURATION, BYTES: inclusive range; STRING: min length */
    const char *choices; /* ENUM: "a|b|c" */
    /* Extra rule for STRING values (NUL-terminated); writes a reason into msg on failure. */
    int (*check)(const char *v, char *msg, size_t msgsz);
    const char *help; /* one line */
} st_cfg_key_t;

#define ST_CFG_MAX_KEYS 128 /* capacity of per-key bookkeeping; config_table.c asserts it */

extern const st_cfg_key_t st_cfg_keys[];
extern const size_t st_cfg_nkeys;

/* Returns the row for a dotted key, or NULL. */
const st_cfg_key_t *st_cfg_find(const char *key, size_t n);
/* True when key is a proper prefix section of some row ("server", "ingester.wal"). */
bool st_cfg_is_section(const char *key, size_t n);
/* The closest known key or section at the same depth for an unknown dotted key, or NULL when no key
 * is an obvious typo of it (or the same leaf name exists in exactly one other section). */
const char *st_cfg_suggest(const char *key, size_t n, char *out, size_t outsz);

/* Name of a type for the reference ("int", "duration", ...). */
const char *st_cfg_type_name(st_cfg_type_t t);

/* Tenant ID rules (Loki): 1..150 bytes of [A-Za-z0-9!-_.*'()], not "." or "..". */
int st_cfg_check_tenant(const char *v, char *msg, size_t msgsz);
/* Index table prefix: 1..31 bytes of [A-Za-z0-9_-]. */
int st_cfg_check_index_prefix(const char *v, char *msg, size_t msgsz);

/* ---- value parsers (values.c); each returns 0 or ST_EPARSE and writes *out only on success ---- */

/* Decimal integer with optional sign; ST_ELIMIT when it does not fit in int64. */
int st_cfg_parse_int(const char *s, size_t n, int64_t *out);
/* YAML 1.1 booleans: true/false/yes/no/on/off in any case. */
int st_cfg_parse_bool(const char *s, size_t n, bool *out);
/* st_cfg_parse_bytes: in config.h (the lifecycle and audit files read sizes the same way) */
/* Prometheus form ("7d", "1h30m") or Go form ("1.5h", "300ms"); Go's exact integer algorithm. */
int st_cfg_parse_duration(const char *s, size_t n, int64_t *out);
/* Go's time.ParseDuration, exact (also accepts a sign). */
int st_cfg_parse_go_duration(const char *s, size_t n, int64_t *out);
/* "YYYY-MM-DD" (valid civil date, 4-digit year) -> UTC day number. */
int st_cfg_parse_date(const char *s, size_t n, int64_t *out_day);

/* Formats bytes exactly: the largest unit (KiB..PiB, KB..PB) giving an integer, or at most three
 * decimals below 1000 ("256KB", "1.5MiB", "64GiB"); else a plain integer. out: 32 bytes. */
void st_cfg_format_bytes(uint64_t v, char *out);
/* "YYYY-MM-DD"; out must hold 32 bytes. */
void st_cfg_format_date(int64_t day, char *out);

/* True when s[0..n) is valid UTF-8. */
bool st_cfg_utf8_valid(const char *s, size_t n);

/* Appends s as a double-quoted YAML/C-like string ("..." with \" \\ \n \t \xNN escapes), cutting
 * it at max bytes with "..." (max 0 = no limit). Used for values in messages and YAML output. */
int st_cfg_quote(st_buf_t *b, const char *s, size_t n, size_t max);

/* Levenshtein distance, for key suggestions (inputs longer than 64 bytes compare as far apart). */
size_t st_cfg_edit_distance(const char *a, size_t an, const char *b, size_t bn);

#endif
