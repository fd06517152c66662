#!/usr/bin/env bash
# The long fuzz campaign (issue 8): every Fuzz target of the package runs until it has
# made N executions (default 10,000,000), one after another; then a table of executions,
# wall time (with the build), the fuzzer's last rate and new corpus entries per target.
# A crasher fails the campaign and stays in testdata/fuzz/<Target>/ as a regression case
# (commit it). CI runs the short form (scripts/fuzz-short.sh). PARALLEL sets the number
# of fuzz workers (default: all CPUs); MAXTIME (a timeout(1) duration, e.g. 8m) stops a
# target that has not reached N by then (interrupted, it still reports its executions).
# Rates: every package the test binary links is instrumented for coverage, so a target
# makes ~5-20k executions a second on 2 CPUs: 10 million take 10-30 minutes each.
#
#   bench/fuzz-campaign.sh [N] [TARGET-REGEXP]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000000}
filter=${2:-.}
par=${PARALLEL:-$(nproc)}
targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' ./*_test.go | sed 's/^func //' | sort -u | grep -E "$filter")
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
failed=0
echo "fuzz campaign: $n executions per target, $par workers, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
for f in $targets; do
  echo "== $f"
  start=$(date +%s)
  if [ -n "${MAXTIME:-}" ]; then
    out=$(timeout -s INT "$MAXTIME" go test -timeout 0 -run '^$' -fuzz "^$f\$" -fuzztime "${n}x" -parallel "$par" . 2>&1)
  else
    out=$(go test -timeout 0 -run '^$' -fuzz "^$f\$" -fuzztime "${n}x" -parallel "$par" . 2>&1)
  fi
  rc=$?
  secs=$(( $(date +%s) - start ))
  echo "$out" | tail -4
  last=$(echo "$out" | grep -o 'execs: [0-9]*' | tail -1 | cut -d' ' -f2)
  new=$(echo "$out" | grep -o 'new interesting: [0-9]*' | tail -1 | cut -d' ' -f3)
  rate=$(echo "$out" | grep -o '([0-9]*/sec)' | tail -1 | tr -dc '0-9')
  res=ok
  if [ $rc = 124 ] && ! echo "$out" | grep -q -- '--- FAIL'; then
    res=stopped # MAXTIME
  elif [ $rc != 0 ]; then
    res=FAIL; failed=1
    echo "$out" | sed -n '/--- FAIL/,$p' | head -40 # the failure itself, not only its last lines
  fi
  printf '%-32s %12s %7ss %10s/s %6s %s\n' "$f" "${last:-?}" "$secs" "${rate:-?}" "${new:-?}" "$res" >> "$summary"
done
printf '\n%-32s %12s %8s %12s %6s %s\n' target execs time rate new result
cat "$summary"
echo "load after: $(cut -d' ' -f1 /proc/loadavg)"
exit $failed
