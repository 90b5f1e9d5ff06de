/* log.c: logfmt writer behind log.h. One fputs per line so concurrent lines never interleave. */
#include "common/log.h"

#include "common/err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

st_log_level_t st_log_level = ST_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int st_log_set_level(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            st_log_level = (st_log_level_t)i;
            return 0;
        }
    }
    return ST_EPARSE;
}

void st_log_write(st_log_level_t lvl, const char *module, const char *fmt, ...)
{
    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s module=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[lvl], module);
    if (n < 0) return;
    if ((size_t)n < sizeof line - 2) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
        va_end(ap);
        if (m > 0) n += m;
    }
    if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    line[n] = '\0';
    fputs(line, stderr);
}
