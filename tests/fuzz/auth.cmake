# Credentials file parser (server/auth.c) fuzz target.
pkg_check_modules(FUZZ_UV REQUIRED IMPORTED_TARGET libuv)
st_fuzz_target(auth SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_auth.c ${PROJECT_SOURCE_DIR}/server/auth.c
               DEPS st_common PkgConfig::CRYPTO PkgConfig::FUZZ_UV)
