#!/usr/bin/env bash
# Score-CAM on the pytorch-grad-cam fixture (ResNet-18, 2 images of 224x224, top-1, 512
# channels each = 1024 masked forwards): Sightline (`sightline bench explain --fixtures`)
# against the peer's algorithm in Python PyTorch (tools/bench_scorecam_python.py, which checks
# its maps against the peer's fixture), 2 threads, alternating for ROUNDS rounds in one run;
# the best round of each is compared (load from other processes only ever adds time).
# Usage: bash bench/compare_scorecam.sh [BUILD_DIR]   (default build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
# The ResNet-18 fixture is the full peer set's (not in the repository): FIXTURES or
# $SIGHTLINE_PEER_FIXTURES/gradcam names it.
fixtures=${FIXTURES:-${SIGHTLINE_PEER_FIXTURES:?set SIGHTLINE_PEER_FIXTURES (or FIXTURES) to the full peer fixtures}/gradcam}
rounds=${ROUNDS:-2}
py=/usr/bin/python3
export OMP_NUM_THREADS=2

cpp_s=()
py_s=()
for ((r = 1; r <= rounds; r++)); do
  c=$("$build/sightline" bench explain --fixtures "$fixtures" --threads 2 2>&1 |
      awk '$1 == "scorecam" { sub(/s$/, "", $2); print $2 }')
  p=$($py "$here/tools/bench_scorecam_python.py" --fixtures "$fixtures" |
      $py -c 'import json,sys; print(json.load(sys.stdin)["seconds"])')
  echo "round $r: Sightline ${c} s, Python (peer algorithm) ${p} s"
  cpp_s+=("$c")
  py_s+=("$p")
done
$py - "${cpp_s[*]}" "${py_s[*]}" <<'PY'
import sys
c = min(float(v) for v in sys.argv[1].split())
p = min(float(v) for v in sys.argv[2].split())
print(f"Score-CAM, ResNet-18, 2 images: Sightline {c:.1f} s, peer algorithm in Python {p:.1f} s, ratio {c / p:.2f}")
PY
