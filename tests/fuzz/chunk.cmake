# Chunk files and block trigram filters: parse/load of arbitrary bytes; written chunks read back and
# their filters never reject a substring of a line (fuzz_chunk.c).
st_fuzz_target(chunk SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_chunk.c DEPS st_store)
