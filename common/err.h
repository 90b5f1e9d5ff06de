/* err.h: Strata's one error convention.
 *
 * Every fallible function returns int: 0 on success, a negative errno (-ENOMEM, -EIO, ...) for system
 * failures, or one of the ST_E* codes below (a reserved negative range, like LMDB's -30799 block).
 * st_strerror() names both. Positive returns are allowed only where a header documents them. */
#ifndef ST_COMMON_ERR_H
#define ST_COMMON_ERR_H

#include <errno.h>

enum {
    ST_E_FIRST = -10000,
    ST_ENOTFOUND = ST_E_FIRST, /* key, stream, chunk or file does not exist */
    ST_ECORRUPT,               /* checksum mismatch, bad magic, truncated record */
    ST_ELIMIT,                 /* a configured size/count/memory limit was hit */
    ST_EPARSE,                 /* malformed input (JSON, LogQL, label string, config) */
    ST_ETENANT,                /* invalid or missing tenant */
    ST_EBADSTATE,              /* object unusable after an earlier failure, or shutting down */
    ST_EFULL,                  /* queue or buffer full: retry later */
    ST_EVERSION,               /* unsupported on-disk format version */
    ST_ETIMEOUT,               /* deadline passed */
    ST_EARCHIVED,              /* data is in an archive tier (Glacier, Deep Archive): restore first */
    ST_E_LAST
};

/* Returns a static string for any return code of this project (never NULL). */
const char *st_strerror(int rc);

/* Forward an error to the caller: ST_TRY(st_wal_write(w, b)); */
#define ST_TRY(expr)                                                                               \
    do {                                                                                           \
        int st_try_rc_ = (expr);                                                                   \
        if (st_try_rc_ < 0) return st_try_rc_;                                                     \
    } while (0)

/* Invariant that stays on in release builds: logs file:line and aborts. */
#define ST_ASSERT(x)                                                                               \
    do {                                                                                           \
        if (!(x)) st_assert_fail(#x, __FILE__, __LINE__);                                          \
    } while (0)
_Noreturn void st_assert_fail(const char *expr, const char *file, int line);

#endif
