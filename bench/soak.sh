#!/usr/bin/env bash
# Soak (issue 8): N failovers (default 1,000) between two vipd routers in network
# namespaces, alternating SIGTERM + restart of the master and a link down/up of its
# interface, the master's advert interval cycling through 10, 20, 50 and 100 ms.
# Reports the surviving backup's file descriptors, goroutines and RSS (vipd debug)
# at start and end and fails if they grew. Root only.
#
#   bench/soak.sh [FAILOVERS] [INTERVALS]     e.g. bench/soak.sh 1000 0.01,0.02,0.05,0.1
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench/soak.sh needs root: it creates network namespaces" >&2
  exit 1
fi
export VIPD_SOAK_FAILOVERS=${1:-1000}
[ -n "${2:-}" ] && export VIPD_SOAK_INTERVALS=$2
set +e
go test -count=1 -timeout 120m -run '^TestSoakFailovers$' -v . 2>&1 | grep -v -E '^\s+[0-9]{4}-[0-9]{2}-[0-9]{2} '
exit "${PIPESTATUS[0]}"
