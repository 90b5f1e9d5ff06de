# Label-set parse/format round trip, OTLP name sanitising, service_name and level detection (fuzz_labels.c).
st_fuzz_target(labels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_labels.c DEPS st_ingester)
