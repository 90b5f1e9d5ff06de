# The literal a |~ regex's matches must contain: a match without it fails (fuzz_regexlit.c).
st_fuzz_target(regexlit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_regexlit.c DEPS st_querier)
