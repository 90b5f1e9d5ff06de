# Config loader fuzz target: YAML text -> st_config_load_string, with a to_yaml round-trip oracle.
st_fuzz_target(config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.c DEPS st_config)
