#!/usr/bin/env bash
# Runs the command blocks of one Markdown page, as a reader would copy them. A page's blocks
# are tagged:
#   ```sh runnable   run here, in page order, in one scratch folder per page (tiny data, seconds)
#   ```sh proof      long measured runs (minutes to hours, or data that is not in the
#                    repository): shown, not run by the tests; docs/benchmarks.md lists them
# A ```sh block with neither tag fails the test: every command is either run or declared a proof.
# In the scratch folder `build/` is the build tree (so `build/sightline` is the program, also on
# PATH as `sightline`), and `tests/` and `tools/` are the source tree's.
# Usage: docs_commands.sh SIGHTLINE_BINARY PAGE.md
set -euo pipefail
bin=$1
page=$2
src=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/sightline-docs.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

untagged=$(grep -c '^```sh *$' "$page" || true)
if [ "$untagged" -gt 0 ]; then
  echo "$page: $untagged \`\`\`sh block(s) without a tag: mark each 'sh runnable' (run by this test) or 'sh proof'"
  grep -n '^```sh *$' "$page"
  exit 1
fi
proofs=$(grep -c '^```sh proof' "$page" || true)
awk '/^```sh runnable/ { inside = 1; print "echo \"+ block at line " NR "\""; next }
     inside && /^```/ { inside = 0; next }
     inside { print }' "$page" >"$scratch/blocks.sh"
runnable=$(grep -c '^```sh runnable' "$page" || true)

build=$(cd "$(dirname "$bin")" && pwd)
mkdir -p "$scratch/work"
ln -s "$build" "$scratch/work/build"
ln -s "$src/tests" "$scratch/work/tests"
ln -s "$src/tools" "$scratch/work/tools"
cd "$scratch/work"
PATH="$build:$PATH" bash -euo pipefail "$scratch/blocks.sh"
echo "$(basename "$page"): $runnable runnable block(s) ran; $proofs proof block(s) not run"
