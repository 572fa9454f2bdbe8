#!/usr/bin/env bash
# Builds Sightline with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ and runs the
# test suite under them (docs/robustness.md, Sanitizers). The Python module is not built there
# (python3 is not instrumented), so the Python tests are left out.
# Usage: tools/sanitizers/run-tests.sh [CTEST_ARGS...]   e.g. -R 'Crf|Npy'
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-asan
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSIGHTLINE_SANITIZE=address,undefined \
      -DSIGHTLINE_UNITY_BUILD=ON -DSIGHTLINE_BENCH=OFF >/dev/null
cmake --build "$build" -j "${SIGHTLINE_JOBS:-$(nproc)}"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$root/tools/sanitizers/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest -j "${SIGHTLINE_JOBS:-$(nproc)}" --output-on-failure -E '^Python\.|^Docs\.python$' "$@"
