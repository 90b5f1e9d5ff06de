/* audit_int.h: internals shared by the audit files (not for other modules). */
#ifndef ST_AUDIT_INT_H
#define ST_AUDIT_INT_H

#include "audit/audit.h"

/* The trail's configuration (valid while it is open). */
const st_audit_config_t *st_audit_cfg(const st_audit_t *a);

/* Storage class names in st_tier_t order (the audit library does not call into the lifecycle's). */
const char *st_audit_tier_name(int tier);

/* Lowercase hex SHA-256 of len bytes at off of the file at path (read in pieces). Returns 0 or an
 * error. */
int st_audit_sha256_file(const char *path, uint64_t off, uint64_t len, char out[ST_AUDIT_HASH_HEX]);

#endif
