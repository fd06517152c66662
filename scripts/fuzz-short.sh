#!/usr/bin/env bash
# Runs every fuzz target in the package for a short time (FUZZTIME, default 10s each), as
# CI does. A crasher is written to testdata/fuzz/<Target>/ by go test and fails the run;
# keep it there as a regression case.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10s}
targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' ./*_test.go | sed 's/^func //' | sort -u)
for f in $targets; do
  echo "fuzz $f for $t"
  go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -parallel 2 . 2>&1 | tail -3
done
