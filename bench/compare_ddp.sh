#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same `train classify` epoch (same data, global
# batch and seed) on 1 process and on 2 processes (`sightline launch`), 1 thread each, and on 1
# process of 2 threads, timed one after the other; prints the times (whole command and epoch),
# the ratio and the gradient volume each process all-reduces per step (docs/distributed.md).
# Usage: bench/compare_ddp.sh [SIGHTLINE_BINARY (default build/sightline)] [IMAGES (default 2048)]
set -euo pipefail
bin=$(realpath "${1:-build/sightline}")
images=${2:-2048}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" data synth --out "$work/data" --n "$images" --size 64 --seed 3 >/dev/null
# Training only: no validation splits, so each time is start-up plus one training epoch.
rm -f "$work"/data/ImageSets/Segmentation/val*.txt
train="train classify --data $work/data --arch resnet_gap --width 32 --norm group --epochs 1 --batch 32 --threads 1 --workers 1"
run() {  # prints the wall seconds of "$@"
  local start=$(date +%s.%N)
  "$@" >"$work/last.txt"
  awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }' 
}
one=$(run "$bin" $train --out "$work/one")
two=$(run "$bin" launch --nproc 2 --threads 1 -- "$bin" $train --out "$work/two")
threads2=$(run "$bin" ${train/--threads 1/--threads 2} --out "$work/threads2")
epoch() { grep -o '"seconds":[0-9.e+-]*' "$1/metrics.jsonl" | head -1 | cut -d: -f2; }
e1=$(epoch "$work/one"); e2=$(epoch "$work/two"); e3=$(epoch "$work/threads2")
echo "train images $(wc -l < "$work/data/ImageSets/Segmentation/train.txt" 2>/dev/null || echo "$images"), batch 32, $(nproc) cores"
awk -v a="$one" -v b="$two" -v c="$e1" -v d="$e2" -v e="$threads2" -v f="$e3" 'BEGIN {
  printf "1 process, 1 thread:    %.1f s in all, epoch %.2f s\n", a, c
  printf "2 processes, 1 thread:  %.1f s in all, epoch %.2f s\n", b, d
  printf "1 process, 2 threads:   %.1f s in all, epoch %.2f s\n", e, f
  printf "epoch time ratio (2 processes / 1): %.2f; whole command: %.2f\n", d / c, b / a }'
grep "data-parallel" "$work/last.txt"
