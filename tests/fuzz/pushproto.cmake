# Loki protobuf push decoder: snappy block + PushRequest, validation and decorations (fuzz_pushproto.c).
st_fuzz_target(pushproto SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_pushproto.c DEPS st_ingester)
