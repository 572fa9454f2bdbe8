#!/usr/bin/env bash
# Builds the libFuzzer targets (Debian's clang, ASan + UBSan) and runs each for a fixed time
# from the committed seed corpora in tests/fuzz/corpus/<target>/; prints executions per target.
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#        tools/fuzz.sh --build-only     (configure and build the targets, run nothing)
# New inputs go to build-fuzz/corpus/<target>/ (the committed seeds are not modified); a crash
# leaves build-fuzz/crash-* and the script exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_only=false
if [ "${1:-}" = --build-only ]; then build_only=true; shift; fi
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(npy mask_png image dataset_lists coco)
build=$root/build-fuzz
cmake -S "$root" -B "$build" -DSIGHTLINE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target $(printf 'fuzz_%s ' "${targets[@]}") >/dev/null
$build_only && exit 0
status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  log=$build/fuzz_$t.log
  # -rss_limit_mb: an input that makes a parser allocate beyond this is a finding.
  if (cd "$build" && "./tests/fuzz/fuzz_$t" "$corpus" "$root/tests/fuzz/corpus/$t" -max_total_time="$seconds" \
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 >"$log" 2>&1); then result=ok; else result=FAILED; status=1; fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  echo "fuzz_$t: $result, $runs executions in ${seconds} s (log: $log)"
done
exit $status
