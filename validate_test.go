package main

import (
	"net/netip"
	"testing"
)

var (
	peerA = netip.MustParseAddr("192.0.2.1")
	peerB = netip.MustParseAddr("192.0.2.2")
	peer6 = netip.MustParseAddr("fe80::1")
)

// ladderCase builds one received advert from a valid one, changed by mod
// (on the advert before encoding), modMsg (on the encoded bytes) and
// modMeta / modPolicy.
type ladderCase struct {
	name      string
	version   uint8
	mod       func(a *Advert)
	modMsg    func(msg []byte) []byte
	modMeta   func(m *rxMeta)
	modPolicy func(p *rxPolicy)
	form      ChecksumForm
	want      dropReason
	addrMis   bool
	intMis    bool
}

func (tc ladderCase) build(t *testing.T) (rxMeta, []byte, *rxPolicy) {
	t.Helper()
	a := Advert{Version: tc.version, Type: 1, VRID: 51, Priority: 100, Interval: 100, Addresses: []netip.Addr{vip100, vip101}}
	p := &rxPolicy{VRID: 51, Version: tc.version, Interval: 100, Addresses: []netip.Addr{vip101, vip100}}
	if tc.version == 2 {
		a.AuthType = authSimple
		a.Auth = authKey("secret")
		p.AuthType = authSimple
		p.AuthPass = authKey("secret")
	}
	meta := rxMeta{Src: peerA, Dst: vrrpGroup4, TTL: 255}
	if tc.mod != nil {
		tc.mod(&a)
	}
	if tc.modMeta != nil {
		tc.modMeta(&meta)
	}
	if tc.modPolicy != nil {
		tc.modPolicy(p)
	}
	msg, err := a.Append(nil, meta.Src, meta.Dst, tc.form)
	if err != nil {
		t.Fatal(err)
	}
	if tc.modMsg != nil {
		msg = tc.modMsg(msg)
	}
	return meta, msg, p
}

// TestLadder walks the receive ladder of RFC 3768 section 7.1 and RFC
// 5798 section 7.1 (plus keepalived's unicast rules): each case breaks one
// rule and must be dropped for exactly that reason.
func TestLadder(t *testing.T) {
	tests := []ladderCase{
		{name: "v2 ok", version: 2, want: dropOK},
		{name: "v3 ok", version: 3, want: dropOK},
		{name: "v3 ok message checksum", version: 3, form: ChecksumMessage, want: dropOK},
		// 7.1: "MUST verify that the IP TTL is 255".
		{name: "multicast ttl 254", version: 3, modMeta: func(m *rxMeta) { m.TTL = 254 }, want: dropTTL},
		{name: "multicast ttl 1", version: 2, modMeta: func(m *rxMeta) { m.TTL = 1 }, want: dropTTL},
		// Unicast: keepalived's unicast_peer min_ttl/max_ttl.
		{name: "unicast ttl 64 default range", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB; m.TTL = 64 }, want: dropOK},
		{name: "unicast ttl below min", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB; m.TTL = 9 }, modPolicy: func(p *rxPolicy) { p.MinTTL = 10 }, want: dropTTL},
		{name: "unicast ttl above max", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB; m.TTL = 64 }, modPolicy: func(p *rxPolicy) { p.MaxTTL = 63 }, want: dropTTL},
		// Each unicast_peer has its own range; the sender's applies.
		{name: "unicast ttl in the peer's range", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB; m.TTL = 62 },
			modPolicy: func(p *rxPolicy) { p.Peers = []netip.Addr{peerB, peerA}; p.PeerTTL = [][2]uint8{{1, 255}, {60, 63}} }, want: dropOK},
		{name: "unicast ttl outside the peer's range", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB; m.TTL = 64 },
			modPolicy: func(p *rxPolicy) { p.Peers = []netip.Addr{peerB, peerA}; p.PeerTTL = [][2]uint8{{1, 255}, {60, 63}} }, want: dropTTL},
		// 7.1: "MUST verify the VRRP version field".
		{name: "v3 advert to v2 instance", version: 3, modPolicy: func(p *rxPolicy) { p.Version = 2 }, want: dropVersion},
		{name: "version 4", version: 3, modMsg: func(m []byte) []byte { m[0] = 0x41; return m }, want: dropVersion},
		// RFC 5798 section 5.2.2: only type 1 exists.
		{name: "type 2", version: 3, mod: func(a *Advert) { a.Type = 2 }, want: dropType},
		// 7.1: "MUST verify that the received packet contains the complete
		// VRRP packet".
		{name: "count past end", version: 3, modMsg: func(m []byte) []byte { m[3] = 5; return m }, want: dropLength},
		{name: "v2 auth data cut", version: 2, modMsg: func(m []byte) []byte { return m[:len(m)-1] }, want: dropLength},
		{name: "empty", version: 3, modMsg: func(m []byte) []byte { return m[:0] }, want: dropLength},
		{name: "ethernet padding tolerated", version: 3, modMsg: func(m []byte) []byte { return append(m, 0, 0, 0, 0, 0, 0) }, want: dropOK},
		// 7.1: "MUST verify the VRRP checksum".
		{name: "bad checksum", version: 3, modMsg: func(m []byte) []byte { m[7]++; return m }, want: dropChecksum},
		{name: "v2 bad checksum", version: 2, modMsg: func(m []byte) []byte { m[2]++; return m }, want: dropChecksum},
		// keepalived's old_unicast_checksum form is accepted on unicast.
		{name: "old unicast checksum", version: 3, form: ChecksumPseudoGroup, modMeta: func(m *rxMeta) { m.Dst = peerB }, want: dropOK},
		// 7.1: "MUST verify that the VRID is configured".
		{name: "other vrid", version: 3, mod: func(a *Advert) { a.VRID = 52 }, want: dropVRID},
		// RFC 3768 7.1: auth type must match, then the password.
		{name: "v2 auth none vs simple", version: 2, mod: func(a *Advert) { a.AuthType = authNone; a.Auth = [8]byte{} }, want: dropAuthType},
		{name: "v2 auth ah", version: 2, mod: func(a *Advert) { a.AuthType = authAH }, want: dropAuthAH},
		{name: "v2 wrong password", version: 2, mod: func(a *Advert) { a.Auth = authKey("secreT") }, want: dropAuthPass},
		{name: "v2 no auth both sides", version: 2, mod: func(a *Advert) { a.AuthType = authNone; a.Auth = [8]byte{} }, modPolicy: func(p *rxPolicy) { p.AuthType = authNone }, want: dropOK},
		// RFC 3768 7.1: the interval must match; RFC 5798 6.4.2: adopt it.
		{name: "v2 interval mismatch", version: 2, mod: func(a *Advert) { a.Interval = 200 }, want: dropInterval},
		{name: "v3 interval mismatch flagged", version: 3, mod: func(a *Advert) { a.Interval = 50 }, want: dropOK, intMis: true},
		// RFC 5798 7.1: address list mismatch MAY be logged; not dropped.
		{name: "address mismatch flagged", version: 3, mod: func(a *Advert) { a.Addresses = a.Addresses[:1] }, want: dropOK, addrMis: true},
		// RFC 5798 7.1: "the local router is not the IPvX Address owner".
		{name: "owner", version: 3, modPolicy: func(p *rxPolicy) { p.Owner = true }, want: dropOwner},
		// keepalived check_unicast_src.
		{name: "unicast src not a peer", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB }, modPolicy: func(p *rxPolicy) { p.CheckUnicastSrc = true; p.Peers = []netip.Addr{peerB} }, want: dropUnicastSrc},
		{name: "unicast src a peer", version: 3, modMeta: func(m *rxMeta) { m.Dst = peerB }, modPolicy: func(p *rxPolicy) { p.CheckUnicastSrc = true; p.Peers = []netip.Addr{peerA} }, want: dropOK},
		// Ladder order: the first failing rule wins.
		{name: "ttl before checksum", version: 3, modMeta: func(m *rxMeta) { m.TTL = 1 }, modMsg: func(m []byte) []byte { m[7]++; return m }, want: dropTTL},
		{name: "checksum before vrid", version: 3, mod: func(a *Advert) { a.VRID = 9 }, modMsg: func(m []byte) []byte { m[7]++; return m }, want: dropChecksum},
		{name: "vrid before owner", version: 3, mod: func(a *Advert) { a.VRID = 9 }, modPolicy: func(p *rxPolicy) { p.Owner = true }, want: dropVRID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			meta, msg, p := tc.build(t)
			var a Advert
			v := validate(meta, msg, p, &a)
			if v.Reason != tc.want {
				t.Fatalf("verdict %v (%v), want %v", v.Reason, v.Err, tc.want)
			}
			if (v.Err != nil) != (tc.want != dropOK) {
				t.Errorf("verdict %v with detail %v", v.Reason, v.Err)
			}
			if v.OK() && (v.AddrMismatch != tc.addrMis || v.IntervalMismatch != tc.intMis) {
				t.Errorf("flags addr %v interval %v, want %v %v", v.AddrMismatch, v.IntervalMismatch, tc.addrMis, tc.intMis)
			}
			if v.OK() && v.Form != tc.form && tc.version == 3 {
				t.Errorf("form %v, want %v", v.Form, tc.form)
			}
		})
	}
}

// TestLadderIPv6: v3 over IPv6 with the hop limit rule and the IPv6
// pseudo-header (RFC 5798 sections 5.1.2.3 and 5.2.8); v2 is refused there.
func TestLadderIPv6(t *testing.T) {
	a := Advert{Version: 3, Type: 1, VRID: 5, Priority: 100, Interval: 100, Addresses: []netip.Addr{vip6a}}
	msg, err := a.Append(nil, peer6, vrrpGroup6, ChecksumPseudo)
	if err != nil {
		t.Fatal(err)
	}
	p := &rxPolicy{VRID: 5, Version: 3, Interval: 100, Addresses: []netip.Addr{vip6a}}
	var b Advert
	if v := validate(rxMeta{Src: peer6, Dst: vrrpGroup6, TTL: 255}, msg, p, &b); !v.OK() || v.AddrMismatch {
		t.Errorf("verdict %v %v", v.Reason, v.Err)
	}
	if v := validate(rxMeta{Src: peer6, Dst: vrrpGroup6, TTL: 64}, msg, p, &b); v.Reason != dropTTL {
		t.Errorf("hop limit 64: verdict %v", v.Reason)
	}
	// Unicast from a zoned link-local source: the zone does not hide the
	// configured peer (check_unicast_src).
	dst := netip.MustParseAddr("fe80::2")
	uni, err := a.Append(nil, peer6, dst, ChecksumPseudo)
	if err != nil {
		t.Fatal(err)
	}
	pu := *p
	pu.CheckUnicastSrc, pu.Peers = true, []netip.Addr{peer6}
	if v := validate(rxMeta{Src: peer6.WithZone("eth0"), Dst: dst, TTL: 64}, uni, &pu, &b); !v.OK() {
		t.Errorf("zoned unicast peer: verdict %v %v", v.Reason, v.Err)
	}
	pu.Peers = []netip.Addr{netip.MustParseAddr("fe80::9")}
	if v := validate(rxMeta{Src: peer6.WithZone("eth0"), Dst: dst, TTL: 64}, uni, &pu, &b); v.Reason != dropUnicastSrc {
		t.Errorf("unknown unicast peer: verdict %v", v.Reason)
	}
	msg[0] = 0x21
	if v := validate(rxMeta{Src: peer6, Dst: vrrpGroup6, TTL: 255}, msg, nil, &b); v.Reason != dropVersion {
		t.Errorf("v2 over ipv6: verdict %v", v.Reason)
	}
}

// TestLadderStateless: with no policy only the stateless rules run, as
// vipd inspect uses them.
func TestLadderStateless(t *testing.T) {
	a := Advert{Version: 2, Type: 1, VRID: 5, Priority: 100, Interval: 300, AuthType: 7, Addresses: []netip.Addr{vip100}}
	msg, _ := a.Append(nil, peerA, vrrpGroup4, ChecksumMessage)
	var b Advert
	if v := validate(rxMeta{Src: peerA, Dst: vrrpGroup4, TTL: 255}, msg, nil, &b); v.Reason != dropAuthType {
		t.Errorf("unknown auth type: verdict %v", v.Reason)
	}
	a.AuthType = authNone
	msg, _ = a.Append(msg[:0], peerA, peerB, ChecksumMessage)
	// Any VRID, interval and TTL is fine for a unicast advert.
	if v := validate(rxMeta{Src: peerA, Dst: peerB, TTL: 3}, msg, nil, &b); !v.OK() {
		t.Errorf("verdict %v %v", v.Reason, v.Err)
	}
}

// TestCounters: each verdict is counted under its reason; flags and forms
// only for accepted adverts.
func TestCounters(t *testing.T) {
	var c rxCounters
	c.add(verdict{Reason: dropOK, Form: ChecksumPseudoGroup, AddrMismatch: true})
	c.add(verdict{Reason: dropOK, Form: ChecksumPseudo, IntervalMismatch: true})
	c.add(verdict{Reason: dropChecksum})
	c.add(verdict{Reason: dropChecksum, AddrMismatch: true})
	if c.Drops[dropOK] != 2 || c.Drops[dropChecksum] != 2 || c.AddrMismatch != 1 || c.IntervalMismatch != 1 ||
		c.Forms[ChecksumPseudoGroup] != 1 || c.Forms[ChecksumPseudo] != 1 {
		t.Errorf("counters %+v", c)
	}
	for r := range numDropReasons {
		if s := r.String(); s == "" || s[0] == 'd' {
			t.Errorf("reason %d has no name: %q", r, s)
		}
	}
}

// BenchmarkDecodeValidate measures decode + full ladder of one v3 advert
// with three addresses; the goal is 5 million per second per core and no
// allocation.
func BenchmarkDecodeValidate(b *testing.B) {
	a := Advert{Version: 3, Type: 1, VRID: 51, Priority: 100, Interval: 100, Addresses: []netip.Addr{vip100, vip101, vip102}}
	meta := rxMeta{Src: peerA, Dst: vrrpGroup4, TTL: 255}
	msg, err := a.Append(nil, meta.Src, meta.Dst, ChecksumPseudo)
	if err != nil {
		b.Fatal(err)
	}
	p := &rxPolicy{VRID: 51, Version: 3, Interval: 100, Addresses: []netip.Addr{vip100, vip101, vip102}}
	var got Advert
	var c rxCounters
	b.ReportAllocs()
	for b.Loop() {
		c.add(validate(meta, msg, p, &got))
	}
	if c.Drops[dropOK] != uint64(b.N) {
		b.Fatalf("counters %+v after %d adverts", c, b.N)
	}
}

// BenchmarkDecodeValidateV2 is the same for a v2 advert with a password.
func BenchmarkDecodeValidateV2(b *testing.B) {
	a := Advert{Version: 2, Type: 1, VRID: 51, Priority: 100, Interval: 100, AuthType: authSimple, Auth: authKey("secret"), Addresses: []netip.Addr{vip100}}
	meta := rxMeta{Src: peerA, Dst: vrrpGroup4, TTL: 255}
	msg, _ := a.Append(nil, meta.Src, meta.Dst, ChecksumMessage)
	p := &rxPolicy{VRID: 51, Version: 2, Interval: 100, AuthType: authSimple, AuthPass: authKey("secret"), Addresses: []netip.Addr{vip100}}
	var got Advert
	b.ReportAllocs()
	for b.Loop() {
		if v := validate(meta, msg, p, &got); !v.OK() {
			b.Fatal(v.Err)
		}
	}
}
