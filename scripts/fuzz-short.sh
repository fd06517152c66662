#!/usr/bin/env bash
# Runs every fuzz target in the package for a short time (FUZZTIME, default 10s each), as
# CI does. A crasher is written to testdata/fuzz/<Target>/ by go test and fails the run;
# keep it there as a regression case. A failure that leaves no crasher (the fuzzing engine
# itself giving up, e.g. a worker starved on a loaded machine) is shown and run once more.
set -uo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-10s}
targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' ./*_test.go | sed 's/^func //' | sort -u)
failed=0
for f in $targets; do
  for try in 1 2; do
    echo "fuzz $f for $t"
    before=$(ls "testdata/fuzz/$f" 2>/dev/null | sort)
    out=$(go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" -parallel 2 . 2>&1)
    rc=$?
    if [ $rc = 0 ]; then
      echo "$out" | tail -3
      break
    fi
    echo "$out" | tail -30
    after=$(ls "testdata/fuzz/$f" 2>/dev/null | sort)
    if [ "$before" != "$after" ] || [ $try = 2 ]; then
      echo "fuzz $f FAILED"
      failed=1
      break
    fi
    echo "fuzz $f: the engine failed without a crasher; once more"
  done
done
exit $failed
