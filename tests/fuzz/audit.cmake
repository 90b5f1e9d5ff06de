# Audit trail reader (audit/record.c: record parser, chain check over segment bytes) fuzz target.
st_fuzz_target(audit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_audit.c DEPS st_audit)
