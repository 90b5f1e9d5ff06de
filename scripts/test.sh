#!/usr/bin/env bash
# test.sh: installs dependencies, builds, and runs every test:
#   1. unit tests, fuzz-corpus regression tests (ctest) on the release build
#   2. integration and conformance tests (node --test) against the real binary; the S3 client and
#      the lifecycle against moto_server and fault servers (python unittest)
#   3. the unit and regression tests, the integration, lifecycle and S3 client tests again under
#      ASan+UBSan (clang)
#   4. each libFuzzer target for a bounded time (FUZZ_SECONDS, default 20)
# Fails on the first failing step.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

step() { printf '\n==== %s ====\n' "$*"; }

step "dependencies"
scripts/deps.sh

step "build (release, -Werror)"
scripts/build.sh -DST_WERROR=ON

step "unit tests"
(cd build && ctest --output-on-failure -j"$JOBS")

step "integration tests (node --test, real strata binary)"
STRATA_BIN="$PWD/build/server/strata" node --test --test-concurrency=1 tests/integration/ tests/logql/

step "objstore S3 client (python unittest: moto_server, scripted fault server, botocore signer)"
python3 -c "import moto, boto3" 2>/dev/null || python3 -m pip install -q 'moto[server]' boto3 ||
  echo "objstore: moto/boto3 missing and pip failed: the moto tests will be skipped"
STRATA_S3_SELFTEST="$PWD/build/objstore/strata-s3-selftest" python3 -m unittest discover -s tests/objstore

step "lifecycle (python unittest: strata lifecycle run and serve against moto_server, crashes, faults)"
STRATA_BIN="$PWD/build/server/strata" python3 -m unittest discover -s tests/lifecycle

step "sanitizer build (clang, ASan+UBSan)"
CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DST_ASAN=ON -DST_UBSAN=ON -DST_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j"$JOBS")

step "integration, lifecycle and S3 client tests against the sanitizer build (a report exits non-zero)"
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1
STRATA_BIN="$PWD/build-asan/server/strata" node --test --test-concurrency=1 tests/integration/ tests/logql/
STRATA_BIN="$PWD/build-asan/server/strata" python3 -m unittest discover -s tests/lifecycle
STRATA_S3_SELFTEST="$PWD/build-asan/objstore/strata-s3-selftest" python3 -m unittest discover -s tests/objstore
unset ASAN_OPTIONS UBSAN_OPTIONS

step "fuzzing (libFuzzer, ${FUZZ_SECONDS}s per target)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DST_FUZZ=ON -DST_ASAN=ON -DST_UBSAN=ON -DST_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS"
mkdir -p build-fuzz/artifacts
for f in build-fuzz/tests/fuzz/fuzz_*; do
  name=$(basename "$f"); name=${name#fuzz_}
  corpus=$(mktemp -d)
  cp -r tests/fuzz/corpus/"$name"/. "$corpus"/ 2>/dev/null || true
  dict=(); [ -f tests/fuzz/"$name".dict ] && dict=(-dict=tests/fuzz/"$name".dict)
  echo "fuzz $name"
  "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -artifact_prefix=build-fuzz/artifacts/"$name"- \
       "${dict[@]}" "$corpus" 2>&1 | tail -n 2
  rm -rf "$corpus"
done

step "all tests passed"
