# cwjson: the CloudWatch Logs client's JSON response parsers (errors, PutLogEvents results, log groups,
# log streams, events) and its batch planner over the parsed events.
st_fuzz_target(cwjson SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_cwjson.c DEPS st_objstore)
