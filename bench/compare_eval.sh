#!/usr/bin/env bash
# Confusion-matrix throughput: Sightline (Google Benchmark, bench_eval) against numpy's
# bincount method (as the VOC / mmsegmentation evaluation scripts compute it) on the same
# 128 masks of 500x375, 21 classes, in one run. Prints both tables and the ratios.
#
#   bash bench/compare_eval.sh [build-dir]     (default: build)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$here/build}"
bench="$build/bench/bench_eval"
[ -x "$bench" ] || { echo "missing $bench: cmake --build $build --target bench_eval" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$bench" --dump="$tmp" --benchmark_min_time=1 --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true --benchmark_format=json >"$tmp/bench.json" \
    2>/dev/null

/usr/bin/python3 - "$tmp" <<'EOF'
import json, sys, time
import numpy as np

tmp = sys.argv[1]
K, IGNORE = 21, 255

def numpy_confusion(gts, preds):
    # The standard method: drop void pixels, one bincount of gt * K + pred per image.
    hist = np.zeros((K, K), np.int64)
    for gt, pred in zip(gts, preds):
        mask = gt != IGNORE
        hist += np.bincount(K * gt[mask].astype(np.int64) + pred[mask], minlength=K * K).reshape(K, K)
    return hist

def time_numpy(name):
    gts, preds = np.load(f"{tmp}/gt{name}.npy"), np.load(f"{tmp}/pred{name}.npy")
    pixels = gts.size
    numpy_confusion(gts[:4], preds[:4])  # warm up
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        numpy_confusion(gts, preds)
        best = min(best, time.perf_counter() - t0)
    return pixels / best / 1e6

bench = json.load(open(f"{tmp}/bench.json"))
ours = {}
for b in bench["benchmarks"]:
    if b.get("aggregate_name") == "median":
        ours[b["run_name"]] = b["Mpx/s"]
np_struct, np_random = time_numpy(""), time_numpy("_random")

print(f"machine: {bench['context'].get('num_cpus')} CPUs, {bench['context'].get('mhz_per_cpu')} MHz; "
      f"128 masks 500x375, 21 classes (median of 3 runs; numpy best of 3)")
print(f"{'method':<44} {'Mpx/s':>9} {'vs numpy':>9}")
rows = [
    ("numpy bincount (structured masks)", np_struct, np_struct),
    ("sightline, 1 thread (structured)", ours.get("BM_Structured/threads:1/real_time"), np_struct),
    ("sightline, 2 threads (structured)", ours.get("BM_Structured/threads:2/real_time"), np_struct),
    ("plain C++ loop, 1 thread (structured)", ours.get("BM_PlainLoop/real_time"), np_struct),
    ("numpy bincount (random labels)", np_random, np_random),
    ("sightline, 1 thread (random labels)", ours.get("BM_RandomLabels/threads:1/real_time"), np_random),
    ("sightline, 2 threads (random labels)", ours.get("BM_RandomLabels/threads:2/real_time"), np_random),
]
for name, v, base in rows:
    if v is None:
        print(f"{name:<44} {'(missing)':>9}")
    else:
        print(f"{name:<44} {v:9.0f} {v / base:8.1f}x")
EOF
