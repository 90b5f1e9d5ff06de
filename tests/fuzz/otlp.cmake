# OTLP logs decoders (protobuf and JSON), the Loki mapping and the zstd/lz4 body decoders (fuzz_otlp.c).
st_fuzz_target(otlp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_otlp.c DEPS st_ingester)
