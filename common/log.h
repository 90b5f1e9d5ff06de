/* log.h: levelled logfmt logging to stderr: "ts=... level=... module=... <fields>".
 *
 * ST_LOG_*(module, fmt, ...) checks the level before formatting anything. fmt writes the rest of the
 * logfmt line, starting with msg, e.g.
 *   ST_LOG_WARN("wal", "msg=\"fsync failed\" path=%s err=\"%s\"", path, st_strerror(rc));
 * Callers quote values that may hold spaces. Never log secrets. Thread safe (one write per line). */
#ifndef ST_COMMON_LOG_H
#define ST_COMMON_LOG_H

#include <stdarg.h>

typedef enum { ST_LOG_ERROR = 0, ST_LOG_WARN, ST_LOG_INFO, ST_LOG_DEBUG } st_log_level_t;

extern st_log_level_t st_log_level;

/* Parses "error|warn|info|debug"; returns 0 or ST_EPARSE. */
int st_log_set_level(const char *name);

void st_log_write(st_log_level_t lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ST_LOG_(lvl, module, ...)                                                                  \
    do {                                                                                           \
        if ((lvl) <= st_log_level) st_log_write((lvl), (module), __VA_ARGS__);                     \
    } while (0)
#define ST_LOG_ERROR(module, ...) ST_LOG_(ST_LOG_ERROR, module, __VA_ARGS__)
#define ST_LOG_WARN(module, ...) ST_LOG_(ST_LOG_WARN, module, __VA_ARGS__)
#define ST_LOG_INFO(module, ...) ST_LOG_(ST_LOG_INFO, module, __VA_ARGS__)
#define ST_LOG_DEBUG(module, ...) ST_LOG_(ST_LOG_DEBUG, module, __VA_ARGS__)

#endif
