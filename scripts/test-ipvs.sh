#!/bin/bash
# test-ipvs.sh runs vipd's IPVS tests in a QEMU guest with Debian's kernel
# (the build machine's kernel may have no ip_vs). It installs what it needs
# with apt-get when missing, builds a static test binary, boots it with
# scripts/ipvsvm/run.sh and exits with the guest's test status.
#
#   scripts/test-ipvs.sh [-run REGEXP] [go test flags for the binary...]
#
# Environment: IPVSVM_ENV="N=V ..." is passed into the guest; IPVSVM_OPTS
# holds more options for scripts/ipvsvm/run.sh (-m MB, -c CPUS, -b BIN,
# -f FILE). A later -test.timeout=D overrides the default of 3m.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for p in qemu-system-x86 linux-image-amd64 busybox-static ipvsadm kmod cpio xz-utils; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "test-ipvs: installing ${need[*]}" >&2
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}"
fi

run=IPVS
if [ "${1:-}" = -run ]; then
	run=$2
	shift 2
fi
bin=$(mktemp "${TMPDIR:-/tmp}/vipd-ipvs.test.XXXXXX")
trap 'rm -f "$bin"' EXIT
start=$(date +%s.%N)
CGO_ENABLED=0 go test -c -o "$bin" .
built=$(date +%s.%N)
set +e
# shellcheck disable=SC2086 # IPVSVM_OPTS is a list of options
scripts/ipvsvm/run.sh ${IPVSVM_OPTS:-} "$bin" -test.v -test.run "$run" -test.timeout 3m "$@"
rc=$?
set -e
end=$(date +%s.%N)
awk -v a="$start" -v b="$built" -v c="$end" -v rc="$rc" 'BEGIN { printf "test-ipvs: build %.1fs, guest %.1fs, rc=%d\n", b - a, c - b, rc }' >&2
exit $rc
