# Lifecycle section (lifecycle/policy.c, cloudwatch.c parsers) fuzz target.
st_fuzz_target(lifecycle SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_lifecycle.c DEPS st_lifecycle st_config)
