st_fuzz_target(push SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_push.c DEPS st_ingester)
