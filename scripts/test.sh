#!/usr/bin/env bash
# The test command (README "Testing"): installs what the tests need, then runs every test.
# As root the namespace, netlink, AF_PACKET and keepalived interop tests run too; without
# root they skip with their reason. Set VIPD_SKIP_VM=1 to leave out the IPVS guest tests.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  scripts/deps.sh
fi
export CGO_ENABLED=0
echo "== go vet"
go vet ./...
echo "== go build (static)"
go build -o vipd .
echo "== go test"
# The namespace tests run real daemons against real timers on a shared
# machine. A test that fails is run once more on its own and reported as
# flaky when it then passes; more than three failures, or any failure on
# the second run, fails the build.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! go test -count=1 -timeout 15m ./... 2>&1 | tee "$log"; then
  failed=$(grep -oE '^--- FAIL: [A-Za-z0-9_]+' "$log" | awk '{print $3}' | sort -u)
  n=$(echo "$failed" | grep -c . || true)
  if [ "$n" -eq 0 ] || [ "$n" -gt 3 ]; then
    echo "go test failed ($n failed tests)"; exit 1
  fi
  echo "== go test: retrying $(echo $failed) once"
  go test -count=1 -timeout 10m -run "^($(echo $failed | tr ' ' '|'))\$" ./...
  echo "flaky (failed once, passed on retry): $(echo $failed)"
fi
if [ -x scripts/fuzz-short.sh ]; then
  echo "== fuzz (short)"
  scripts/fuzz-short.sh
fi
if [ "${VIPD_SKIP_VM:-0}" != 1 ] && [ -x scripts/test-ipvs.sh ]; then
  echo "== IPVS tests in a guest kernel"
  scripts/test-ipvs.sh
fi
