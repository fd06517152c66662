#!/usr/bin/env bash
# The fault-injection tests (fault_test.go) in their long form: 5 minutes each of 20 %
# loss and of 0..200 ms delay at 100 ms adverts, a 20 s flood of bad adverts; the
# others as in CI. VIPD_FAULT_SEED=N replays another loss pattern. Root only.
#
#   bench/fault-long.sh [-run REGEXP]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench/fault-long.sh needs root: it creates network namespaces" >&2
  exit 1
fi
run='^TestFault'
if [ "${1:-}" = -run ]; then run=$2; fi
export VIPD_FAULT_LONG=1
set +e
go test -count=1 -timeout 60m -run "$run" -v . 2>&1 | grep -v -E '^\s+[0-9]{4}-[0-9]{2}-[0-9]{2} '
exit "${PIPESTATUS[0]}"
