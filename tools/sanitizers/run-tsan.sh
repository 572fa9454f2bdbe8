#!/usr/bin/env bash
# Builds the tests of Sightline's own threads with ThreadSanitizer in build-tsan/ and runs them:
# the work queue (parallel_for_each), the dense CRF's thread pool and the training batch loader
# (docs/robustness.md, Sanitizers). LibTorch and its OpenMP runtime are not instrumented, so
# LibTorch runs on one thread here (OMP_NUM_THREADS=1): TSan cannot see the synchronisation
# inside an uninstrumented libgomp and would report its threads' accesses as races.
# Usage: tools/sanitizers/run-tsan.sh [CTEST_ARGS...]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build-tsan
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSIGHTLINE_SANITIZE=thread \
      -DSIGHTLINE_UNITY_BUILD=ON -DSIGHTLINE_BENCH=OFF >/dev/null
cmake --build "$build" -j "${SIGHTLINE_JOBS:-$(nproc)}" --target test_core test_crf test_train
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tools/sanitizers/tsan.supp"
export OMP_NUM_THREADS=1
cd "$build"
ctest -j "${SIGHTLINE_JOBS:-$(nproc)}" --output-on-failure \
      -R '^(Parallel|DenseCrf|DenseCrfTwin|CrfInput|Loader)\.' "$@"
