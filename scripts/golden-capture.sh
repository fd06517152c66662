#!/bin/sh
# golden-capture.sh regenerates testdata/golden/: adverts sent by the real
# keepalived (Debian's 2.2.7) as MASTER, captured with tcpdump, one small
# pcap per configuration with its `tcpdump -nn -v -r` decode beside it.
# packet_test.go decodes each advert and re-encodes it byte for byte.
#
# Needs root and the Debian packages keepalived and tcpdump. All traffic
# stays in two network namespaces joined by a veth pair; both are deleted on
# exit. Timestamps, IP ids and IPv6 flow labels differ between runs; the
# adverts themselves do not.
#
# usage: scripts/golden-capture.sh [OUTDIR]   (default testdata/golden)
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "golden-capture: needs root (creates network namespaces)" >&2
	exit 1
fi
for tool in keepalived tcpdump ip; do
	command -v $tool >/dev/null || { echo "golden-capture: $tool not installed" >&2; exit 1; }
done

out=${1:-$(dirname "$0")/../testdata/golden}
out=$(cd "$out" && pwd)
tag=vipd-codec-$$
nsa=$tag-a # keepalived, MASTER
nsb=$tag-b # tcpdump
tmp=$(mktemp -d)
kpid=

cleanup() {
	if [ -n "$kpid" ]; then kill "$kpid" 2>/dev/null || true; fi
	ip netns del "$nsa" 2>/dev/null || true
	ip netns del "$nsb" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

ip netns add "$nsa"
ip netns add "$nsb"
for ns in "$nsa" "$nsb"; do
	# No duplicate address detection: the link-local address keepalived
	# sends IPv6 adverts from must be usable at once.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0
	ip -n "$ns" link set lo up
done
ip link add va netns "$nsa" address 02:00:00:00:02:11 type veth peer name vb netns "$nsb" address 02:00:00:00:02:12
ip -n "$nsa" addr add 10.211.0.1/24 dev va
ip -n "$nsb" addr add 10.211.0.2/24 dev vb
ip -n "$nsa" addr add fd00:211::1/64 dev va nodad
ip -n "$nsb" addr add fd00:211::2/64 dev vb nodad
ip -n "$nsa" link set va up
ip -n "$nsb" link set vb up

# capture NAME INSTANCE-BODY: run keepalived with one instance and keep
# the first three adverts it sends.
capture() {
	name=$1
	cat >"$tmp/$name.conf" <<CONF
global_defs {
	router_id vipd_golden
}
vrrp_instance VI_1 {
	state MASTER
	interface va
	virtual_router_id 51
	priority 150
	advert_int 1
$2
}
CONF
	ip netns exec "$nsb" tcpdump -i vb -U -Z root -c 3 -w "$tmp/$name.pcap" 'ip proto 112 or ip6 proto 112' 2>/dev/null &
	tpid=$!
	sleep 1
	ip netns exec "$nsa" keepalived -n -l -G -D --vrrp -f "$tmp/$name.conf" -p "$tmp/k.pid" -r "$tmp/v.pid" >"$tmp/$name.log" 2>&1 &
	kpid=$!
	i=0
	while kill -0 "$tpid" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
	kill "$kpid" 2>/dev/null || true
	wait "$kpid" 2>/dev/null || true
	kpid=
	if kill -0 "$tpid" 2>/dev/null; then
		kill "$tpid"
		echo "golden-capture: $name: keepalived sent fewer than 3 adverts in 30 s; log:" >&2
		cat "$tmp/$name.log" >&2
		exit 1
	fi
	cp "$tmp/$name.pcap" "$out/$name.pcap"
	cp "$tmp/$name.conf" "$out/$name.conf"
	TZ=UTC tcpdump -nn -v -r "$out/$name.pcap" >"$out/$name.txt" 2>/dev/null
	echo "golden-capture: $out/$name.pcap"
}

capture v2-noauth "	version 2
	virtual_ipaddress {
		10.211.0.100/24
		10.211.0.101/24
	}"
capture v2-pass "	version 2
	authentication {
		auth_type PASS
		auth_pass secret
	}
	virtual_ipaddress {
		10.211.0.100/24
	}"
capture v3-ipv4 "	version 3
	virtual_ipaddress {
		10.211.0.100/24
		10.211.0.101/24
		10.211.0.102/24
	}"
capture v3-ipv6 "	version 3
	virtual_ipaddress {
		fd00:211::100/64
		fd00:211::101/64
	}"
capture v2-unicast "	version 2
	unicast_src_ip 10.211.0.1
	unicast_peer {
		10.211.0.2
	}
	virtual_ipaddress {
		10.211.0.100/24
	}"
capture v3-unicast "	version 3
	unicast_src_ip 10.211.0.1
	unicast_peer {
		10.211.0.2
	}
	virtual_ipaddress {
		10.211.0.100/24
	}"
capture v3-unicast-oldcksum "	version 3
	old_unicast_checksum
	unicast_src_ip 10.211.0.1
	unicast_peer {
		10.211.0.2
	}
	virtual_ipaddress {
		10.211.0.100/24
	}"
capture v3-ipv6-unicast "	version 3
	unicast_src_ip fd00:211::1
	unicast_peer {
		fd00:211::2
	}
	virtual_ipaddress {
		fd00:211::100/64
	}"
