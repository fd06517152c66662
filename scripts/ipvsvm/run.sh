#!/bin/bash
# run.sh boots a payload in a throw-away QEMU guest running Debian's kernel
# with IPVS and exits with the payload's exit status. It works as
#
#   go test -exec scripts/ipvsvm/run.sh -run IPVS .
#
# (the test binary must be static: CGO_ENABLED=0) and as
#
#   scripts/ipvsvm/run.sh [-k KVER] [-a tcg|kvm] [-m MB] [-c CPUS] [-e N=V]... [-b BIN]... [-f FILE]... PAYLOAD [ARGS...]
#
# -b copies a host program and its libraries into the guest (same path); -f
# copies FILE to /files/NAME in the guest; -c gives the guest CPUS processors
# (default 1).
#
# The guest gets VIPD_IPVS_GUEST=1 in its environment, plus IPVSVM_ENV (a
# space-separated list of N=V) and each -e. The host environment is not
# inherited. Exit status: the payload's, 124 on timeout, 125 when the guest
# died without reporting one (kernel panic, /init failure).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kver=
accel=
mem=512
cpus=1
extra=()
usage="usage: $0 [-k KVER] [-a tcg|kvm] [-m MB] [-c CPUS] [-e N=V]... [-b BIN]... [-f FILE]... PAYLOAD [ARGS...]"
while getopts k:a:m:c:e:b:f: opt; do
	case $opt in
	k) kver=$OPTARG ;;
	a) accel=$OPTARG ;;
	m) mem=$OPTARG ;;
	c) cpus=$OPTARG ;;
	e) extra+=(-e "$OPTARG") ;;
	b) extra+=(-b "$OPTARG") ;;
	f) extra+=(-f "$OPTARG") ;;
	*) echo "$usage" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "$usage" >&2; exit 2; }
payload=$1
shift

if ldd "$payload" >/dev/null 2>&1 && ! head -c2 "$payload" | grep -q '#!'; then
	echo "ipvsvm: $payload is dynamically linked; build it with CGO_ENABLED=0" >&2
	exit 2
fi

if [ -z "$kver" ]; then
	for d in $(ls -d /lib/modules/*/kernel/net/netfilter/ipvs 2>/dev/null | sort -V); do
		kver=$(echo "$d" | cut -d/ -f4)
	done
fi
[ -n "$kver" ] || { echo "ipvsvm: no kernel with ip_vs in /lib/modules; install linux-image-amd64" >&2; exit 2; }
vmlinuz=/boot/vmlinuz-$kver
[ -e "$vmlinuz" ] || { echo "ipvsvm: $vmlinuz not found; install linux-image-amd64" >&2; exit 2; }

# Boot the ELF vmlinux through its PVH note: no firmware decompression, which
# costs ~3.5 s under TCG. Extract it once from the XZ payload of the bzImage.
cache=${IPVSVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vipd-ipvsvm}
mkdir -p "$cache"
vmlinux=$cache/vmlinux-$kver
if [ ! -s "$vmlinux" ]; then
	# Debian installs vmlinuz readable by root only.
	if [ ! -r "$vmlinuz" ]; then
		sudo -n true 2>/dev/null || { echo "ipvsvm: $vmlinuz not readable (and no sudo)" >&2; exit 2; }
		copy=$(mktemp "$cache/vmlinuz.XXXXXX")
		sudo -n cat "$vmlinuz" >"$copy"
		vmlinuz=$copy
	fi
	off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -n1 | cut -d: -f1)
	[ -n "$off" ] || { echo "ipvsvm: no XZ payload in $vmlinuz" >&2; exit 2; }
	tmp=$(mktemp "$cache/vmlinux.XXXXXX")
	tail -c +$((off + 1)) "$vmlinuz" | xz -dc --single-stream >"$tmp" 2>/dev/null || true
	if [ "$(head -c4 "$tmp" | od -An -c | tr -d ' ')" != '177ELF' ]; then
		rm -f "$tmp"
		echo "ipvsvm: could not extract an ELF vmlinux from $vmlinuz" >&2
		exit 2
	fi
	mv "$tmp" "$vmlinux"
	if [ -n "${copy:-}" ]; then rm -f "$copy"; fi
fi

# go test passes -test.timeout; let Go's own timeout fire first in the guest.
tmo=660
for a in "$@"; do
	case $a in
	-test.timeout=*)
		# A Go duration (10m0s, 90s, 1h): seconds, rounded up, plus 60.
		t=$(echo "${a#-test.timeout=}" | awk '{
			s = 0; x = $0
			while (match(x, /^[0-9.]+(h|ms|m|s|us|ns)/)) {
				n = substr(x, 1, RLENGTH); x = substr(x, RLENGTH + 1)
				v = n + 0; u = n; sub(/^[0-9.]+/, "", u)
				if (u == "h") s += v * 3600; else if (u == "m") s += v * 60; else if (u == "s") s += v
			}
			if (x != "" || s <= 0) exit 1
			printf "%d\n", s + 61
		}') && tmo=$t
		;;
	esac
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ipvsvm.XXXXXX")
trap 'rm -rf "$work"' EXIT
envargs=(-e VIPD_IPVS_GUEST=1)
for kv in ${IPVSVM_ENV:-}; do envargs+=(-e "$kv"); done
"$here/mkinitramfs.sh" -k "$kver" "${envargs[@]}" "${extra[@]}" "$work/initrd.cpio" "$payload" -- "$@"

# /dev/kvm here may be PVM (kvm_pvm), under which stock kernels crash or crawl;
# use KVM only when asked or when it is real hardware KVM.
if [ -z "$accel" ]; then
	accel=tcg
	if [ -w /dev/kvm ] && [ ! -d /sys/module/kvm_pvm ]; then accel=kvm; fi
fi
case $accel in
kvm) acc=(-accel kvm -cpu host) ;;
*) acc=(-accel tcg -cpu max) ;;
esac

set +e
timeout "$tmo" qemu-system-x86_64 -M pc "${acc[@]}" -smp "$cpus" -m "$mem" \
	-kernel "$vmlinux" -initrd "$work/initrd.cpio" \
	-append 'console=ttyS0 quiet loglevel=1 panic=-1 oops=panic' \
	-display none -vga none -no-reboot -nic none -monitor none -serial stdio </dev/null |
	awk '
	{ sub(/\r$/, "") }
	(i = index($0, "@@IPVSVM-EXIT@@ rc=")) > 0 {
		if (i > 1) { print substr($0, 1, i - 1); fflush() }
		rc = substr($0, i + 19) + 0; found = 1; next
	}
	/reboot: Power down$/ { next }
	/PCI: Fatal: No config space access function found/ { next }
	{ print; fflush() }
	END { if (!found) exit 125; exit rc }'
st=("${PIPESTATUS[@]}")
set -e
if [ "${st[0]}" = 124 ]; then
	echo "ipvsvm: guest timed out after ${tmo}s" >&2
	exit 124
fi
if [ "${st[1]}" = 125 ]; then
	echo "ipvsvm: guest exited without a status (qemu status ${st[0]}); kernel panic or /init failure" >&2
fi
exit "${st[1]}"
