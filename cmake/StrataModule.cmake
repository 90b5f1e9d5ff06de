# Helpers shared by every module's CMakeLists.txt.
#
# st_module(<name> SOURCES ... DEPS ...): a static library st_<name>; the repo root is the include
# root, so code includes "<module>/<header>.h".
# st_unit_test(<module> <name> SOURCES ... DEPS ...): a cmocka executable registered with ctest as
# unit.<module>.<name>, label "unit", with a timeout.
function(st_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(st_${name} STATIC ${M_SOURCES})
  target_include_directories(st_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(st_${name} PUBLIC ${M_DEPS})
endfunction()

function(st_unit_test module name)
  if(NOT ST_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;DEPS" ${ARGN})
  set(exe test_${module}_${name})
  add_executable(${exe} ${T_SOURCES})
  target_include_directories(${exe} PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/tests/unit)
  target_link_libraries(${exe} PRIVATE ${T_DEPS} PkgConfig::CMOCKA)
  add_test(NAME unit.${module}.${name} COMMAND ${exe})
  set_tests_properties(unit.${module}.${name} PROPERTIES LABELS unit TIMEOUT 120
                       ENVIRONMENT "ST_TEST_TMPDIR=${CMAKE_BINARY_DIR}/test-tmp")
endfunction()

# st_fuzz_target(<name> SOURCES ... DEPS ...): with ST_FUZZ a libFuzzer binary fuzz_<name>;
# always a regression driver fuzzreg_<name> that replays tests/fuzz/corpus/<name> as a ctest.
function(st_fuzz_target name)
  cmake_parse_arguments(F "" "" "SOURCES;DEPS" ${ARGN})
  if(ST_FUZZ)
    add_executable(fuzz_${name} ${F_SOURCES})
    target_include_directories(fuzz_${name} PRIVATE ${PROJECT_SOURCE_DIR})
    target_link_libraries(fuzz_${name} PRIVATE ${F_DEPS})
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  else()
    add_executable(fuzzreg_${name} ${F_SOURCES} ${PROJECT_SOURCE_DIR}/tests/fuzz/regression_driver.c)
    target_include_directories(fuzzreg_${name} PRIVATE ${PROJECT_SOURCE_DIR})
    target_link_libraries(fuzzreg_${name} PRIVATE ${F_DEPS})
    add_test(NAME fuzzreg.${name}
             COMMAND fuzzreg_${name} ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${name})
    set_tests_properties(fuzzreg.${name} PROPERTIES LABELS fuzz-regression TIMEOUT 300)
  endif()
endfunction()
