#!/usr/bin/env bash
# Mask R-CNN (ResNet-18 FPN, the parity fixture's weights and configuration, two images, 2
# threads): inference and a training step, C++ (bench_maskrcnn) against torchvision's Python
# model (tools/bench_maskrcnn_python.py) on the same weights and pixels, in one run: they
# alternate for ROUNDS rounds and each round gives a ratio; the median ratio is printed.
# Usage: bash bench/compare_maskrcnn.sh [BUILD_DIR]   (default build/; needs its maskrcnn-fixtures)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${ROUNDS:-5}
py=/usr/bin/python3
weights=$build/maskrcnn-fixtures/state_dict.pth
export OMP_NUM_THREADS=2

for mode in infer train; do
  if [ $mode = train ]; then filter='BM_MaskRCNNTrainStep'; steps=3; else filter='BM_MaskRCNNInference'; steps=3; fi
  cs=() ps=()
  for ((r = 1; r <= rounds; r++)); do
    c=$(SIGHTLINE_MASKRCNN_WEIGHTS=$weights "$build/bench/bench_maskrcnn" --benchmark_filter="$filter" \
          --benchmark_format=json 2>/dev/null | $py -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["real_time"])')
    p=$($py "$here/tools/bench_maskrcnn_python.py" --weights "$weights" --mode $mode --steps $steps |
        $py -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')
    echo "$mode round $r: C++ ${c} ms, torchvision ${p} ms per step of 2 images"
    cs+=("$c") ps+=("$p")
  done
  $py - "$mode" "${cs[*]}" "${ps[*]}" <<'PY'
import statistics, sys
mode = sys.argv[1]
c, p = ([float(v) for v in a.split()] for a in sys.argv[2:4])
med = statistics.median
what = "training step" if mode == "train" else "inference"
print(f"{what} (2 images): C++ {med(c):.1f} ms ({2000 / med(c):.2f} images/s), torchvision {med(p):.1f} ms "
      f"({2000 / med(p):.2f} images/s); median paired ratio C++/torchvision {med(a / b for a, b in zip(c, p)):.3f}")
PY
done
