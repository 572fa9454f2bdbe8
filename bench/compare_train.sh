#!/usr/bin/env bash
# Training step time of the built-in ResNet, C++ (bench_train BM_TrainStep) against the same
# architecture and step in Python PyTorch (tools/bench_train_python.py), batch 32, 96x96,
# 2 threads, in one run: C++ and Python alternate for ROUNDS rounds (on a shared machine the
# load drifts; interference only ever adds time), and the best round of each is compared. Then the share of time a real training epoch spent
# waiting for data (synthetic scenes, `sightline train classify`).
# Usage: bash bench/compare_train.sh [BUILD_DIR]   (default build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${ROUNDS:-5}
py=/usr/bin/python3
export OMP_NUM_THREADS=2

cpp_ms=()
py_ms=()
for ((r = 1; r <= rounds; r++)); do
  c=$("$build/bench/bench_train" --benchmark_filter='BM_TrainStep/' --benchmark_format=json 2>/dev/null |
      $py -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]; print(b["real_time"])')
  p=$($py "$here/tools/bench_train_python.py" --steps 6 | $py -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')
  echo "round $r: C++ ${c} ms/step, Python ${p} ms/step"
  cpp_ms+=("$c")
  py_ms+=("$p")
done
$py - "${cpp_ms[*]}" "${py_ms[*]}" <<'PY'
import sys
c = min(float(v) for v in sys.argv[1].split())
p = min(float(v) for v in sys.argv[2].split())
print(f"train step (resnet_gap, batch 32, 96x96, 2 threads): C++ {c:.1f} ms, Python {p:.1f} ms, ratio C++/Python {c / p:.3f}")
PY

# Data waiting share of a real epoch (images decoded from PNG by 2 loader threads).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/sightline" data synth --out "$tmp/scenes" --n 640 --seed 3 >/dev/null
"$build/sightline" train classify --data "$tmp/scenes" --out "$tmp/run" --epochs 1 --val val_matched >/dev/null
$py - "$tmp/run/metrics.jsonl" <<'PY'
import json, sys
m = [json.loads(line) for line in open(sys.argv[1])][-1]
print(f"data wait share of a training epoch (640 images of 96x96, 20 steps, 2 loader threads): {100 * m['data_wait_share']:.1f}%")
PY
