#!/usr/bin/env bash
# Checker scale benchmark (issue 8): 5,000 real servers with TCP_CHECK at delay_loop 1 s,
# against listeners on loopback, checked by keepalived's checker (keepalived --check) and
# by vipd on one generated configuration. keepalived's checker will not start without
# IPVS, so both run in the IPVS guest (scripts/ipvsvm/run.sh: Debian's kernel under QEMU,
# TCG here), with the listeners, one after the other. Prints each daemon's CPU seconds
# over the steady window, the checks that reached the listeners, CPU per check, start to
# every real server in IPVS and peak RSS, then the vipd/keepalived ratios.
#
#   bench/checkers.sh [-d 60s] [-r 5000] [--per-vs 100] [--loop 1] [--rounds 1]
#                     [--impls keepalived,vipd] [--cpus 1] [--warmup 10s]
#
# CPU time in the guest is emulated time: compare the two daemons with each other, not
# with figures taken on the host. IPVSVM_ENV="N=V ..." adds to the guest's environment
# (GODEBUG=..., for instance). Installs what it needs (scripts/test-ipvs.sh's list and
# keepalived) with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=60s reals=5000 pervs=100 loop=1 rounds=1 impls=keepalived,vipd cpus=1 warmup=10s
while [ $# -gt 0 ]; do
  case $1 in
    -d|--duration) dur=$2; shift 2 ;;
    -r|--reals) reals=$2; shift 2 ;;
    --per-vs) pervs=$2; shift 2 ;;
    --loop) loop=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --impls) impls=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench/checkers.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$dur" "$warmup"; do
  [[ $v =~ ^[0-9]+s?$ ]] || { echo "bench/checkers.sh: durations are whole seconds (60 or 60s), not $v" >&2; exit 2; }
done
dur=${dur%s}s warmup=${warmup%s}s
if ! command -v keepalived >/dev/null; then
  sudo=
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends keepalived
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/vipd-checkers.XXXXXX")
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -o "$work/vipd" .
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), host kernel $(uname -r), load $(cut -d' ' -f1 /proc/loadavg); guest: $cpus vCPU (QEMU TCG), $(keepalived --version 2>&1 | head -1)"
echo "command: bench/checkers.sh -d $dur -r $reals --per-vs $pervs --loop $loop --rounds $rounds --impls $impls --cpus $cpus --warmup $warmup"
# Minutes: start-up under TCG plus warm-up and window per daemon and round, with room.
n=$(( $(echo "$impls" | tr ',' '\n' | wc -l) * rounds ))
secs=$(awk -v d="${dur%s}" -v w="${warmup%s}" -v n="$n" 'BEGIN { printf "%d", n * (d + w + 300) + 120 }')
export IPVSVM_ENV="${IPVSVM_ENV:-} VIPD_BENCH_CHECKERS=1 VIPD_CHECKERS_DURATION=$dur VIPD_CHECKERS_REALS=$reals VIPD_CHECKERS_PER_VS=$pervs VIPD_CHECKERS_LOOP=$loop VIPD_CHECKERS_ROUNDS=$rounds VIPD_CHECKERS_IMPLS=$impls VIPD_CHECKERS_WARMUP=$warmup"
export IPVSVM_OPTS="-m 2048 -c $cpus -b keepalived -f $work/vipd"
scripts/test-ipvs.sh -run '^TestCheckerScaleBench$' -test.timeout="${secs}s"
