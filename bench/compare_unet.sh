#!/usr/bin/env bash
# U-Net (base 16, depth 4, 7 classes, batch 8 of 96x96, 2 threads): training step and
# inference, C++ (bench_unet) against the same network in eager Python PyTorch
# (tools/bench_unet_python.py; tests/test_segment_cli.cpp checks it is the same network), in
# one run: C++ and Python alternate for ROUNDS rounds on the same machine state and each
# round gives a ratio; the median ratio is printed (robust to the load of a shared machine).
# Python runs twice per round: as usually started, and with glibc's malloc set as the sightline
# binary sets it (MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_), to separate the allocator
# from the rest.
# Usage: bash bench/compare_unet.sh [BUILD_DIR]   (default build/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
rounds=${ROUNDS:-5}
py=/usr/bin/python3
export OMP_NUM_THREADS=2

for mode in train infer; do
  if [ $mode = train ]; then filter='BM_UNetTrainStep'; steps=8; else filter='BM_UNetInference'; steps=20; fi
  cs=() ps=() qs=()
  for ((r = 1; r <= rounds; r++)); do
    c=$("$build/bench/bench_unet" --benchmark_filter="$filter" --benchmark_format=json 2>/dev/null |
        $py -c 'import json,sys; print(json.load(sys.stdin)["benchmarks"][0]["real_time"])')
    p=$($py "$here/tools/bench_unet_python.py" --mode $mode --steps $steps | $py -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')
    q=$(MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
        $py "$here/tools/bench_unet_python.py" --mode $mode --steps $steps | $py -c 'import json,sys; print(json.load(sys.stdin)["ms_per_step"])')
    echo "$mode round $r: C++ ${c} ms, Python ${p} ms, Python with the binary's malloc settings ${q} ms per batch of 8"
    cs+=("$c") ps+=("$p") qs+=("$q")
  done
  $py - "$mode" "${cs[*]}" "${ps[*]}" "${qs[*]}" <<'PY'
import statistics, sys
mode = sys.argv[1]
c, p, q = ([float(v) for v in a.split()] for a in sys.argv[2:5])
med = statistics.median
what = "training step" if mode == "train" else "inference"
print(f"{what} (batch 8, 96x96): C++ {med(c):.1f} ms ({8000 / med(c):.1f} images/s), Python {med(p):.1f} ms "
      f"({8000 / med(p):.1f} images/s), Python same malloc {med(q):.1f} ms; median paired ratio C++/Python "
      f"{med(a / b for a, b in zip(c, p)):.3f}, C++/Python-same-malloc {med(a / b for a, b in zip(c, q)):.3f}")
PY
done
