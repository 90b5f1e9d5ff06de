# http: request parsing, limits, routing and forms through the simulated connection seam (http_int.h).
st_fuzz_target(http SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_http.c DEPS st_http)
