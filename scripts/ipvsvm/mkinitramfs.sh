#!/bin/sh
# mkinitramfs.sh builds an uncompressed initramfs that boots Debian's kernel
# far enough to test IPVS: busybox, the ip_vs modules (and their softdeps),
# ipvsadm, and a payload (a static program or #!/bin/sh script) that /init
# runs before it prints "@@IPVSVM-EXIT@@ rc=N" and powers off.
#
# usage: mkinitramfs.sh [-k KVER] [-b BINARY]... [-f FILE]... [-e NAME=VALUE]... OUT PAYLOAD [-- ARGS...]
#
# -b copies a host binary (found on PATH) with its libraries into the cached
# base; -f copies FILE into the payload archive as /files/NAME (not cached:
# for programs built for this run, such as a static vipd).
#
# ARGS and the -e environment are stored in the image, one per line, not on
# the kernel command line (which limits their number and mangles quotes).
#
# The image is two concatenated cpio archives (the kernel unpacks both): a
# base (busybox, modules, host binaries, /init) cached in
# $IPVSVM_CACHE (default ~/.cache/vipd-ipvsvm) keyed by kernel, binaries and
# this script, and the payload with its args and environment.
set -eu
PATH=$PATH:/usr/sbin:/sbin

usage() { echo "usage: $0 [-k KVER] [-b BIN]... [-f FILE]... [-e N=V]... OUT PAYLOAD [-- ARGS...]" >&2; exit 2; }
kver=
bins=ipvsadm
files=
envs=
while getopts k:b:f:e: opt; do
	case $opt in
	k) kver=$OPTARG ;;
	b) bins="$bins $OPTARG" ;;
	f) [ -f "$OPTARG" ] || { echo "mkinitramfs: file $OPTARG not found" >&2; exit 1; }
	   files="$files
$OPTARG" ;;
	e) envs="$envs
$OPTARG" ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || usage
out=$1
payload=$2
shift 2
[ "${1:-}" = -- ] && shift

if [ -z "$kver" ]; then
	# The newest installed kernel that ships ip_vs.
	for d in $(ls -d /lib/modules/*/kernel/net/netfilter/ipvs 2>/dev/null | sort -V); do
		kver=$(echo "$d" | cut -d/ -f4)
	done
fi
[ -n "$kver" ] || { echo "mkinitramfs: no /lib/modules/*/ with ip_vs; install linux-image-amd64" >&2; exit 1; }
[ -d "/lib/modules/$kver" ] || { echo "mkinitramfs: /lib/modules/$kver not found" >&2; exit 1; }
[ -f "$payload" ] || { echo "mkinitramfs: payload $payload not found" >&2; exit 1; }

cache=${IPVSVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vipd-ipvsvm}
mkdir -p "$cache"
key=$( (echo "$kver $bins"; cat "$0"; ls -l "/lib/modules/$kver/modules.dep") | cksum | cut -d' ' -f1)
base=$cache/base-$kver-$key.cpio

work=$(mktemp -d "${TMPDIR:-/tmp}/ipvsvm-root.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ ! -s "$base" ]; then
	root=$work/base
	mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" \
		"$root/sys" "$root/tmp" "$root/run" "$root/etc" "$root/lib/modules/$kver"
	bb=$(command -v busybox) || { echo "mkinitramfs: busybox not found; install busybox-static" >&2; exit 1; }
	if ldd "$bb" >/dev/null 2>&1; then echo "mkinitramfs: $bb is not static; install busybox-static" >&2; exit 1; fi
	cp "$bb" "$root/bin/busybox"
	ln -s busybox "$root/bin/sh"

	# Modules in load order, softdeps included (modprobe --show-depends
	# follows "libcrc32c: pre: crc32c", which modinfo misses).
	mods="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr veth dummy bridge ipip"
	for m in $mods; do
		modprobe -S "$kver" --show-depends "$m" || { echo "mkinitramfs: cannot resolve module $m for $kver" >&2; exit 1; }
	done | awk '$1 == "insmod" && !seen[$2]++ { $1 = ""; sub(/^ /, ""); print }' >"$root/modules.order"
	while read -r path opts; do
		mkdir -p "$root$(dirname "$path")"
		cp "$path" "$root$path"
	done <"$root/modules.order"

	# Host binaries, dynamically linked ones with their libraries.
	for b in $bins; do
		p=$(command -v "$b") || { echo "mkinitramfs: $b not found" >&2; exit 1; }
		for f in "$p" $(ldd "$p" 2>/dev/null | grep -o '/[^ ]*'); do
			mkdir -p "$root$(dirname "$f")"
			cp -L "$f" "$root$f"
		done
	done

	cat >"$root/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp
mount -t devtmpfs dev /dev 2>/dev/null
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
mount -t tmpfs run /run
# Keep kernel messages (e.g. "Scheduler module ip_vs_twos not found") off the
# console the tests write to; panics still get through.
echo 1 >/proc/sys/kernel/printk
while read -r path opts; do
	insmod "$path" $opts 2>/dev/null || case $path in
		*crc32c-intel*) ;; # needs SSE4.2; crc32c_generic takes over
		*) echo "ipvsvm: insmod $path failed" ;;
	esac
done </modules.order
ip link set lo up
while IFS= read -r kv; do [ -n "$kv" ] && export "$kv"; done </env
set --
while IFS= read -r a; do set -- "$@" "$a"; done </args
cd /tmp
/payload "$@"
rc=$?
[ -n "${IPVSVM_DMESG:-}" ] && dmesg | tail -n 40
echo "@@IPVSVM-EXIT@@ rc=$rc"
poweroff -f
INIT
	chmod 755 "$root/init"
	tmp=$(mktemp "$cache/base.XXXXXX")
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$tmp"
	mv "$tmp" "$base"
fi

pl=$work/payload
mkdir -p "$pl"
cp "$payload" "$pl/payload"
chmod 755 "$pl/payload"
if [ -n "$files" ]; then
	mkdir -p "$pl/files"
	printf '%s\n' "$files" | while IFS= read -r f; do
		[ -n "$f" ] && cp "$f" "$pl/files/$(basename "$f")"
	done
fi
: >"$pl/args"
for a in "$@"; do printf '%s\n' "$a" >>"$pl/args"; done
printf '%s\n' "$envs" >"$pl/env"
(cd "$pl" && find . | cpio -o -H newc --quiet) >"$work/payload.cpio"
cat "$base" "$work/payload.cpio" >"$out.tmp"
mv "$out.tmp" "$out"
