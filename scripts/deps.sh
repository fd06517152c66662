#!/usr/bin/env bash
# Installs what vipd's tests and benchmarks need on a fresh Debian machine (run as root).
# Idempotent: packages already present are skipped, so a second run costs seconds.
set -euo pipefail

pkgs=(
  iproute2 iputils-ping tcpdump tshark arping nftables procps psmisc
  keepalived frr nginx-light haproxy
  qemu-system-x86 linux-image-amd64 busybox-static ipvsadm kmod cpio xz-utils binutils
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# keepalived's package starts a service; vipd's tests run their own copies in namespaces.
systemctl disable --now keepalived >/dev/null 2>&1 || true
pkill -x keepalived 2>/dev/null || true
go mod download
