# websocket: frame parser (split-invariance) and the WebSocket connection logic through the simulated
# connection seam (http_int.h): fuzz_websocket.c.
st_fuzz_target(websocket SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_websocket.c DEPS st_http)
