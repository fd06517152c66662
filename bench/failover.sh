#!/bin/sh
# failover.sh: the failover benchmark of issue 4 ("Measure"). It builds
# vipd, then `vipd lab --bench` runs vipd and keepalived (when installed)
# on identical network-namespace LANs in the same run: crash failover
# (SIGKILL and link down) and SIGTERM handover at VRRPv2 1 s, VRRPv3 100 ms
# and 10 ms, each --runs times, and vipd's takeover overhead (from the
# backup's timer being due to the VIPs added and the first gratuitous ARP
# on the wire) over --takeover-runs runs. It prints a table.
#
# Needs root, iproute2 and keepalived (scripts/deps.sh installs them).
# Nothing leaves the namespaces it creates; they are removed at the end.
#
# usage: bench/failover.sh [RUNS [TAKEOVER_RUNS]]   (default 5 and 100)
set -eu
cd "$(dirname "$0")/.."
runs=${1:-5}
takeover=${2:-100}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
CGO_ENABLED=0 go build -o "$bin/vipd" .
echo "machine: $(uname -srm), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "keepalived: $(keepalived --version 2>&1 | head -1 || echo 'not installed')"
echo "vipd: $(git describe --always --dirty 2>/dev/null || echo unknown)"
"$bin/vipd" lab --bench --runs "$runs" --takeover-runs "$takeover"
