#!/usr/bin/env bash
# Configures and builds Sightline in build/ (ccache + precompiled LibTorch headers). Unity
# builds are on (the fastest build from scratch, as in CI); SIGHTLINE_UNITY_BUILD=OFF turns them
# off for one-file incremental rebuilds (docs/testing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SIGHTLINE_JOBS:-$(nproc)}
unity=${SIGHTLINE_UNITY_BUILD:-ON}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSIGHTLINE_UNITY_BUILD="$unity" >/dev/null
if ! cmake --build build -j "$jobs"; then
  [ "$unity" = ON ] || exit 1
  # Most likely two helpers of the same name in one unity batch (a newly added file): say so
  # loudly, but still build and test, file by file.
  echo "build.sh: the unity build failed (see the first error above; docs/testing.md, Build time);" \
       "building again without unity builds" >&2
  cmake -S . -B build -DSIGHTLINE_UNITY_BUILD=OFF >/dev/null
  cmake --build build -j "$jobs"
fi
