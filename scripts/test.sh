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
go test -count=1 -timeout 15m ./...
if [ -x scripts/fuzz-short.sh ]; then
  echo "== fuzz (short)"
  scripts/fuzz-short.sh
fi
if [ "${VIPD_SKIP_VM:-0}" != 1 ] && [ -x scripts/test-ipvs.sh ]; then
  echo "== IPVS tests in a guest kernel"
  scripts/test-ipvs.sh
fi
