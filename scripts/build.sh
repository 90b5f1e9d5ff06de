#!/usr/bin/env bash
# build.sh: configures and builds Strata into ./build (release with debug info). Extra arguments go to
# cmake, e.g. scripts/build.sh -DST_WERROR=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
