#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   build-test/  plain build with the on-purpose fault hooks: unit, integration
#                (incl. valgrind) tests
#   build-asan/  the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   build-fuzz/  libFuzzer targets (clang), each run for FUZZ_SECONDS (30)
# Also builds the release binaries in build/ (what tools/run.sh runs):
# CMAKE_BUILD_TYPE=Release with Debian's hardening flags (tools/build-release.sh).
# Every tree is built with -Werror (PRODUCT_WERROR=ON).
set -euo pipefail
cd "$(dirname "$0")/.."

# The Python tests check with bare `assert`, which an inherited
# PYTHONOPTIMIZE would strip (tests/integration/harness.py refuses to run so).
unset PYTHONOPTIMIZE

tools/install-deps.sh
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-30}

step() { printf '\n=== %s\n' "$*"; }

step "release build (build/)"
tools/build-release.sh -DPRODUCT_WERROR=ON

step "test build (build-test/)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRODUCT_TEST_FAULTS=ON \
  -DPRODUCT_WERROR=ON >/dev/null
cmake --build build-test -j"$jobs"

step "sanitizer build (build-asan/)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPRODUCT_SANITIZE=ON -DPRODUCT_TEST_FAULTS=ON \
  -DPRODUCT_WERROR=ON >/dev/null
cmake --build build-asan -j"$jobs"

step "fuzz build (build-fuzz/)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPRODUCT_FUZZ=ON \
  -DPRODUCT_SANITIZE=ON -DPRODUCT_WERROR=ON -DFUZZ_SECONDS="$fuzz_seconds" >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzzers

# Everything was installed above: a test script that finds a tool missing
# fails here instead of skipping (tests/integration/harness.py).
export PRODUCT_TESTS_NEED_TOOLS=1
status=0
step "tests: plain build"
(cd build-test && ctest --output-on-failure -j2 -LE fuzz) || status=1

step "tests: ASan + UBSan build"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j2 -LE fuzz) || status=1

step "fuzzing: ${fuzz_seconds}s per target"
(cd build-fuzz && ctest --output-on-failure -L fuzz) || status=1

if [ "$status" -ne 0 ]; then
  echo "tests: FAILED" >&2
fi
exit "$status"
