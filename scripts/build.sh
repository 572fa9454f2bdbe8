#!/usr/bin/env bash
# Configures and builds Sightline in build/ (ccache + precompiled LibTorch headers).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SIGHTLINE_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs"
