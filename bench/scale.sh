#!/usr/bin/env bash
# Scale benchmark (issue 8): 1,000 VRRP instances (4 interfaces x 250 VRIDs) on two
# routers per daemon, vipd and then keepalived on identical generated configurations,
# in network namespaces (vipd-fault-<pid>-*), adverts every 1 s and every 0.1 s.
# Prints CPU seconds over the steady window, CPU at start-up, peak RSS, start to first
# advert and start to every instance advertised, with the 1-minute load average, and
# the vipd/keepalived ratios. Root only; keepalived from Debian (scripts/deps.sh).
#
#   bench/scale.sh [-d 60s] [-i 1,0.1] [--impls vipd,keepalived] [--ifaces 4] [--vrids 250]
#                  [--profile DIR] [--logs DIR]
#
# -d is the steady window per run (use -d 10s for a quick look); --profile DIR writes
# CPU profiles of vipd (start-up and steady, 10 s each) and a heap profile to DIR;
# --logs DIR keeps every daemon's configuration and log.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=60s intervals=1,0.1 impls=vipd,keepalived ifaces=4 vrids=250 profile= logs=
while [ $# -gt 0 ]; do
  case $1 in
    -d|--duration) dur=$2; shift 2 ;;
    -i|--intervals) intervals=$2; shift 2 ;;
    --impls) impls=$2; shift 2 ;;
    --ifaces) ifaces=$2; shift 2 ;;
    --vrids) vrids=$2; shift 2 ;;
    --profile) profile=$(realpath -m "$2"); mkdir -p "$profile"; shift 2 ;;
    --logs) logs=$(realpath -m "$2"); mkdir -p "$logs"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/scale.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "bench/scale.sh needs root: it creates network namespaces" >&2
  exit 1
fi
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(keepalived --version 2>&1 | head -1 || echo 'no keepalived')"
echo "command: bench/scale.sh -d $dur -i $intervals --impls $impls --ifaces $ifaces --vrids $vrids"
export VIPD_BENCH_SCALE=1 VIPD_SCALE_DURATION=$dur VIPD_SCALE_INTERVALS=$intervals VIPD_SCALE_IMPLS=$impls \
  VIPD_SCALE_IFACES=$ifaces VIPD_SCALE_VRIDS=$vrids VIPD_SCALE_PROFILE=$profile VIPD_SCALE_LOGDIR=$logs
set +e
go test -count=1 -timeout 120m -run '^TestScaleBench$' -v . 2>&1 | grep -v -E '^\s+[0-9]{4}-[0-9]{2}-[0-9]{2} '
rc=${PIPESTATUS[0]}
exit "$rc"
