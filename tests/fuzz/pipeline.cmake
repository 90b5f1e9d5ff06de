# LogQL pipelines (every parser, formatting stage and label filter type) over arbitrary lines
# (fuzz_pipeline.c).
st_fuzz_target(pipeline SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_pipeline.c DEPS st_querier)
