#!/bin/sh
# mkinitramfs.sh builds an uncompressed initramfs that boots Debian's kernel
# far enough to test IPVS: busybox, the ip_vs modules (and their softdeps),
# ipvsadm, and a payload (a static program or #!/bin/sh script) that /init
# runs before it prints "@@IPVSVM-EXIT@@ rc=N" and powers off.
#
# usage: mkinitramfs.sh [-k KVER] [-b BINARY]... [-e NAME=VALUE]... OUT PAYLOAD [-- ARGS...]
#
# ARGS and the -e environment are stored in the image, one per line, not on
# the kernel command line (which limits their number and mangles quotes).
set -eu
PATH=$PATH:/usr/sbin:/sbin

kver=
bins=
envs=
while getopts k:b:e: opt; do
	case $opt in
	k) kver=$OPTARG ;;
	b) bins="$bins $OPTARG" ;;
	e) envs="$envs
$OPTARG" ;;
	*) echo "usage: $0 [-k KVER] [-b BIN]... [-e N=V]... OUT PAYLOAD [-- ARGS...]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 2 ] || { echo "usage: $0 [-k KVER] [-b BIN]... [-e N=V]... OUT PAYLOAD [-- ARGS...]" >&2; exit 2; }
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
[ -f "$payload" ] || { echo "mkinitramfs: payload $payload not found" >&2; exit 1; }

root=$(mktemp -d "${TMPDIR:-/tmp}/ipvsvm-root.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/dev" "$root/proc" \
	"$root/sys" "$root/tmp" "$root/run" "$root/etc" "$root/lib/modules/$kver"

bb=$(command -v busybox)
if ldd "$bb" >/dev/null 2>&1; then echo "mkinitramfs: $bb is not static; install busybox-static" >&2; exit 1; fi
cp "$bb" "$root/bin/busybox"
for a in $("$bb" --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done

# Modules in load order, softdeps included (modprobe --show-depends follows
# "libcrc32c: pre: crc32c", which modinfo misses).
mods="ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_sh ip_vs_dh ip_vs_mh ip_vs_sed ip_vs_nq ip_vs_fo ip_vs_ovf ip_vs_lblc ip_vs_lblcr veth dummy bridge ipip"
: >"$root/modules.order"
for m in $mods; do
	modprobe -S "$kver" --show-depends "$m" 2>/dev/null | while read -r cmd path opts; do
		[ "$cmd" = insmod ] || continue
		grep -q "^$path" "$root/modules.order" || echo "$path $opts" >>"$root/modules.order"
	done
done
while read -r path opts; do
	mkdir -p "$root$(dirname "$path")"
	cp "$path" "$root$path"
done <"$root/modules.order"
for f in modules.order modules.builtin modules.builtin.modinfo; do
	[ -f "/lib/modules/$kver/$f" ] && cp "/lib/modules/$kver/$f" "$root/lib/modules/$kver/"
done
depmod -b "$root" "$kver" 2>/dev/null || true

# Host binaries (dynamically linked ones with their libraries).
addbin() {
	b=$(command -v "$1") || { echo "mkinitramfs: $1 not found" >&2; exit 1; }
	mkdir -p "$root$(dirname "$b")"
	cp "$b" "$root$b"
	ldd "$b" 2>/dev/null | grep -o '/[^ ]*' | while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
for b in ipvsadm $bins; do addbin "$b"; done
[ -e "$root/lib64" ] || ln -s lib "$root/lib64" 2>/dev/null || true

cp "$payload" "$root/payload"
chmod 755 "$root/payload"
: >"$root/args"
for a in "$@"; do printf '%s\n' "$a" >>"$root/args"; done
printf '%s\n' "$envs" | grep . >"$root/env" || true

cat >"$root/init" <<'INIT'
#!/bin/sh
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
		*crc32c-intel*) ;; # needs SSE4.2, crc32c_generic takes over
		*) echo "ipvsvm: insmod $path failed" ;;
	esac
done </modules.order
ip link set lo up
while IFS= read -r kv; do export "$kv"; done </env
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

(cd "$root" && find . | cpio -o -H newc --quiet) >"$out.tmp"
mv "$out.tmp" "$out"
