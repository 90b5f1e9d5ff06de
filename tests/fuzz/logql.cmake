# LogQL front end: parse, then format -> parse -> format must be stable (fuzz_logql.c).
st_fuzz_target(logql SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_logql.c DEPS st_logql m)
