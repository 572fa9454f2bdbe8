#!/usr/bin/env bash
# Rewrites the method table of docs/methods.md from the registry (`sightline list --markdown`).
# Usage: bash tools/update_method_table.sh [SIGHTLINE_BINARY]   (default build/sightline)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/sightline}
page=$root/docs/methods.md
begin='<!-- begin: sightline list --markdown -->'
end='<!-- end: sightline list --markdown -->'
table=$("$bin" list --markdown)
awk -v b="$begin" -v e="$end" -v table="$table" '
  $0 == b { print; print table; skip = 1; next }
  $0 == e { skip = 0 }
  !skip { print }' "$page" >"$page.tmp"
mv "$page.tmp" "$page"
echo "updated $page"
