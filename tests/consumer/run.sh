#!/usr/bin/env bash
# Installs the built tree into BUILD/consumer/install, then configures, builds and runs the
# consumer project against it (find_package(sightline) only: no path into the source tree).
# Usage: run.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
prefix=$build/consumer/install
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
log=$build/consumer/build.log
{ cmake -S "$src/tests/consumer" -B "$build/consumer/build" -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_PREFIX_PATH="$prefix" "${launcher[@]}" &&
  cmake --build "$build/consumer/build" -j 2; } >"$log" 2>&1 || { cat "$log"; exit 1; }
fixtures=$src/tests/fixtures/gradcam
"$build/consumer/build/explain_one" "$fixtures/gapnet.pt" features "$fixtures/input_3x64x80.npy" \
    "$fixtures/gapnet__GradCAM__top1.npy"
