#!/usr/bin/env bash
# Data-parallel scaling on this machine: the same `train classify` epoch (same data, global
# batch and seed) on 1 process and on 2 processes (`sightline launch`), 1 thread each, timed as
# whole commands one after the other; prints both times, their ratio and the gradient volume
# each process all-reduces per step (docs/distributed.md, Scaling).
# Usage: bench/compare_ddp.sh [SIGHTLINE_BINARY (default build/sightline)] [IMAGES (default 2048)]
set -euo pipefail
bin=$(realpath "${1:-build/sightline}")
images=${2:-2048}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" data synth --out "$work/data" --n "$images" --size 64 --seed 3 >/dev/null
# Training only: no validation splits, so each time is start-up plus one training epoch.
rm -f "$work"/data/ImageSets/Segmentation/val*.txt
train="train classify --data $work/data --arch resnet_gap --width 16 --norm group --epochs 1 --batch 32 --threads 1 --workers 1"
run() {  # prints the wall seconds of "$@"
  local start=$(date +%s.%N)
  "$@" >"$work/last.txt"
  awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN { printf "%.1f", a - b }' 
}
one=$(run "$bin" $train --out "$work/one")
two=$(run "$bin" launch --nproc 2 --threads 1 -- "$bin" $train --out "$work/two")
echo "images $images, batch 32, $(nproc) cores"
echo "1 process : ${one} s"
echo "2 processes: ${two} s"
awk -v a="$one" -v b="$two" 'BEGIN { printf "speed-up: %.2f\n", a / b }' 
grep "data-parallel" "$work/last.txt"
