#!/usr/bin/env bash
# Builds vipd and runs `vipd lab` with the given flags (README quick start). Run as root on a
# fresh Debian/Ubuntu machine with Go installed: it installs iproute2 (and keepalived, for
# --keepalived) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v ip >/dev/null || need+=(iproute2)
if [[ " $* " == *" --keepalived "* ]] && ! command -v keepalived >/dev/null; then need+=(keepalived); fi
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  systemctl disable --now keepalived >/dev/null 2>&1 || true
fi
CGO_ENABLED=0 go build -o vipd .
exec ./vipd lab "$@"
