# line_format/label_format templates: parse, then render over labels and a line taken from the input
# (fuzz_template.c).
st_fuzz_target(template SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_template.c DEPS st_querier)
