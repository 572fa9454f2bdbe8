#!/usr/bin/env bash
# docs/methods.md holds, between its two marker lines, exactly what `sightline list --markdown`
# prints (the registry table); tools/update_method_table.sh rewrites it when the registry changes.
# Usage: docs_method_table.sh SIGHTLINE_BINARY docs/methods.md
set -euo pipefail
bin=$1
page=$2
begin='<!-- begin: sightline list --markdown -->'
end='<!-- end: sightline list --markdown -->'
grep -qF -- "$begin" "$page" && grep -qF -- "$end" "$page" || { echo "$page: the marker lines are missing"; exit 1; }
if ! diff <("$bin" list --markdown) <(awk -v b="$begin" -v e="$end" '$0 == e { inside = 0 } inside { print } $0 == b { inside = 1 }' "$page"); then
  echo "$page: the method table differs from 'sightline list --markdown' (< program, > page); run tools/update_method_table.sh"
  exit 1
fi
echo "$page: the method table is the registry's ($("$bin" list --markdown | tail -n +3 | wc -l) methods)"
