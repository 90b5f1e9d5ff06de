/* err.c: names for Strata's return codes (see err.h). */
#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *st_strerror(int rc)
{
    switch (rc) {
    case 0: return "success";
    case ST_ENOTFOUND: return "not found";
    case ST_ECORRUPT: return "data corrupt (checksum or format)";
    case ST_ELIMIT: return "limit exceeded";
    case ST_EPARSE: return "parse error";
    case ST_ETENANT: return "invalid tenant";
    case ST_EBADSTATE: return "bad state";
    case ST_EFULL: return "queue full";
    case ST_EVERSION: return "unsupported format version";
    case ST_ETIMEOUT: return "timed out";
    case ST_EARCHIVED: return "archived: restore first";
    default: break;
    }
    if (rc < 0 && rc > ST_E_FIRST) return strerror(-rc);
    return "unknown error";
}

void st_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "level=fatal msg=\"assertion failed\" expr=\"%s\" at=%s:%d\n", expr, file, line);
    abort();
}
