package main

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// goldenFrame is one captured advert of testdata/golden.
type goldenFrame struct {
	captureFrame
	vrrpFrame
}

// readFrames returns the VRRP frames of a capture file.
func readFrames(t testing.TB, name string) []goldenFrame {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []goldenFrame
	err = readCapture(f, func(fr captureFrame) error {
		if v, ok := findVRRP(fr.Data, fr.Link); ok {
			fr.Data = slices.Clone(fr.Data)
			v.Msg = slices.Clone(v.Msg)
			out = append(out, goldenFrame{fr, v})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	vip100 = netip.MustParseAddr("10.211.0.100")
	vip101 = netip.MustParseAddr("10.211.0.101")
	vip102 = netip.MustParseAddr("10.211.0.102")
	vip6a  = netip.MustParseAddr("fd00:211::100")
	vip6b  = netip.MustParseAddr("fd00:211::101")
)

// goldenCases describes testdata/golden, made by scripts/golden-capture.sh
// from keepalived 2.2.7 (the .conf beside each pcap is what it ran).
var goldenCases = []struct {
	file  string
	form  ChecksumForm
	want  Advert
	multi bool // sent to the VRRP multicast group
}{
	{"v2-noauth", ChecksumMessage, Advert{Version: 2, Type: 1, VRID: 51, Priority: 150, Count: 2, Interval: 100, Addresses: []netip.Addr{vip100, vip101}}, true},
	{"v2-pass", ChecksumMessage, Advert{Version: 2, Type: 1, VRID: 51, Priority: 150, Count: 1, AuthType: authSimple, Interval: 100, Addresses: []netip.Addr{vip100}, Auth: authKey("secret")}, true},
	{"v3-ipv4", ChecksumPseudo, Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Count: 3, Interval: 100, Addresses: []netip.Addr{vip100, vip101, vip102}}, true},
	{"v3-ipv6", ChecksumPseudo, Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Count: 2, Interval: 100, Addresses: []netip.Addr{vip6a, vip6b}}, true},
	{"v2-unicast", ChecksumMessage, Advert{Version: 2, Type: 1, VRID: 51, Priority: 150, Count: 1, Interval: 100, Addresses: []netip.Addr{vip100}}, false},
	{"v3-unicast", ChecksumPseudo, Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Count: 1, Interval: 100, Addresses: []netip.Addr{vip100}}, false},
	// old_unicast_checksum: the pseudo-header names 224.0.0.18 although
	// the advert went to the peer; tcpdump calls it "bad vrrp cksum".
	{"v3-unicast-oldcksum", ChecksumPseudoGroup, Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Count: 1, Interval: 100, Addresses: []netip.Addr{vip100}}, false},
	{"v3-ipv6-unicast", ChecksumPseudo, Advert{Version: 3, Type: 1, VRID: 51, Priority: 150, Count: 1, Interval: 100, Addresses: []netip.Addr{vip6a}}, false},
}

// TestGoldenKeepalived decodes adverts sent by keepalived and encodes them
// again: the encoding must be keepalived's byte for byte, checksum form
// included (RFC 3768 section 5.3, RFC 5798 section 5.2).
func TestGoldenKeepalived(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			frames := readFrames(t, filepath.Join("testdata", "golden", tc.file+".pcap"))
			if len(frames) == 0 {
				t.Fatal("no vrrp frames")
			}
			for _, fr := range frames {
				var a Advert
				if err := a.Unmarshal(fr.Msg, fr.Src.Is6()); err != nil {
					t.Fatalf("frame %d: %v", fr.N, err)
				}
				want := tc.want
				want.Checksum = a.Checksum
				if !advertEqual(&a, &want) {
					t.Errorf("frame %d: decoded\n%+v\nwant\n%+v", fr.N, a, want)
				}
				form, ok := verifyChecksum(fr.Msg, fr.Src, fr.Dst, groupOf(fr.Src), a.Version)
				if !ok || form != tc.form {
					t.Errorf("frame %d: checksum form %v ok %v, want %v", fr.N, form, ok, tc.form)
				}
				if got := fr.Dst.IsMulticast(); got != tc.multi {
					t.Errorf("frame %d: dst %v multicast %v, want %v", fr.N, fr.Dst, got, tc.multi)
				}
				b := a
				b.Checksum = 0
				enc, err := b.Append([]byte{0xee}, fr.Src, fr.Dst, tc.form)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(enc[1:], fr.Msg) {
					t.Errorf("frame %d: re-encoded\n% x\nkeepalived sent\n% x", fr.N, enc[1:], fr.Msg)
				}
				if b.Checksum != a.Checksum {
					t.Errorf("frame %d: computed checksum %#04x, keepalived %#04x", fr.N, b.Checksum, a.Checksum)
				}
				v := validate(rxMeta{Src: fr.Src, Dst: fr.Dst, TTL: fr.TTL}, fr.Msg, nil, &a)
				if !v.OK() || v.Form != tc.form {
					t.Errorf("frame %d: stateless verdict %v (%v) form %v", fr.N, v.Reason, v.Err, v.Form)
				}
			}
		})
	}
}

func groupOf(src netip.Addr) netip.Addr {
	if src.Is6() {
		return vrrpGroup6
	}
	return vrrpGroup4
}

func advertEqual(a, b *Advert) bool {
	return a.Version == b.Version && a.Type == b.Type && a.VRID == b.VRID &&
		a.Priority == b.Priority && a.Count == b.Count && a.AuthType == b.AuthType &&
		a.Interval == b.Interval && a.Checksum == b.Checksum && a.Auth == b.Auth &&
		slices.Equal(a.Addresses, b.Addresses)
}

// TestGopacketLayer checks that gopacket.NewPacket on a whole frame yields
// our layer for v2, v3/IPv4 and v3/IPv6 (not gopacket's VRRPv2), and that
// serializing the decoded layers gives back the frame byte for byte.
func TestGopacketLayer(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.file, func(t *testing.T) {
			fr := readFrames(t, filepath.Join("testdata", "golden", tc.file+".pcap"))[0]
			pk := gopacket.NewPacket(fr.Data, layers.LinkTypeEthernet, gopacket.Default)
			if el := pk.ErrorLayer(); el != nil {
				t.Fatalf("decode error: %v", el.Error())
			}
			if pk.Layer(layers.LayerTypeVRRP) != nil {
				t.Fatal("gopacket's own VRRPv2 decoder still ran")
			}
			v, ok := pk.Layer(LayerTypeVRRP).(*VRRP)
			if !ok {
				t.Fatalf("no VRRP layer in %v", pk)
			}
			want := tc.want
			want.Checksum = v.Checksum
			if !advertEqual(&v.Advert, &want) {
				t.Errorf("layer %+v, want %+v", v.Advert, want)
			}
			if v.IPv6 != fr.Src.Is6() {
				t.Errorf("layer IPv6 %v", v.IPv6)
			}

			var ls []gopacket.SerializableLayer
			for _, l := range pk.Layers() {
				switch l := l.(type) {
				case *layers.Ethernet:
					ls = append(ls, l)
				case *layers.IPv4:
					ls = append(ls, l)
					if err := v.SetNetworkLayerForChecksum(l); err != nil {
						t.Fatal(err)
					}
				case *layers.IPv6:
					ls = append(ls, l)
					if err := v.SetNetworkLayerForChecksum(l); err != nil {
						t.Fatal(err)
					}
				}
			}
			v.Form = tc.form
			v.Checksum = 0
			ls = append(ls, v)
			buf := gopacket.NewSerializeBuffer()
			if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{ComputeChecksums: true, FixLengths: true}, ls...); err != nil {
				t.Fatal(err)
			}
			// gopacket pads Ethernet frames to the 60-byte minimum; the
			// capture, taken on a veth, has no padding.
			got := buf.Bytes()
			if len(got) > len(fr.Data) && !bytes.ContainsFunc(got[len(fr.Data):], func(r rune) bool { return r != 0 }) {
				got = got[:len(fr.Data)]
			}
			if !bytes.Equal(got, fr.Data) {
				t.Errorf("serialized\n% x\ncaptured\n% x", buf.Bytes(), fr.Data)
			}
		})
	}
}

// TestUnmarshalMalformed checks that every length is checked before it is
// read (RFC 5798 section 7.1: "MUST verify that the received packet
// contains the complete VRRP packet") and that errors say what is wrong.
func TestUnmarshalMalformed(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
		ipv6 bool
		want string
	}{
		{"empty", nil, false, "advert is 0 bytes, shorter than the 8-byte header"},
		{"short header", []byte{0x21, 1, 100}, false, "advert is 3 bytes"},
		{"v2 count past end", []byte{0x21, 1, 100, 3, 0, 1, 0, 0}, false, "advert claims 3 ipv4 addresses but has 8 bytes, needs 28"},
		{"v2 without auth data", []byte{0x21, 1, 100, 1, 0, 1, 0, 0, 10, 0, 0, 1}, false, "advert claims 1 ipv4 addresses but has 12 bytes, needs 20"},
		{"v3 ipv6 count past end", append([]byte{0x31, 1, 100, 2, 0, 100, 0, 0}, make([]byte, 20)...), true, "advert claims 2 ipv6 addresses but has 28 bytes, needs 40"},
		{"v2 over ipv6", append([]byte{0x21, 1, 100, 0, 0, 1, 0, 0}, make([]byte, 8)...), true, "vrrp version 2 advert over ipv6"},
		{"version 15", []byte{0xf1, 1, 100, 0, 0, 1, 0, 0}, false, "unknown vrrp version 15"},
		{"version 0", []byte{0x01, 1, 100, 0, 0, 1, 0, 0}, false, "unknown vrrp version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Advert
			err := a.Unmarshal(tt.msg, tt.ipv6)
			if err == nil {
				t.Fatalf("decoded %+v", a)
			}
			if !errors.Is(err, errParse) {
				t.Errorf("error %v does not match errParse", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestUnmarshalPadding: bytes after the message (Ethernet or IP padding)
// are ignored, and the v3 reserved bits are not part of the interval (RFC
// 5798 section 5.2.6).
func TestUnmarshalPadding(t *testing.T) {
	msg := []byte{0x31, 7, 200, 1, 0xf0 | 0x01, 0x2c, 0, 0, 192, 0, 2, 1, 0, 0, 0, 0}
	var a Advert
	if err := a.Unmarshal(msg, false); err != nil {
		t.Fatal(err)
	}
	if a.Interval != 300 || a.VRID != 7 || a.Priority != 200 || len(a.Addresses) != 1 || a.Addresses[0] != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("decoded %+v", a)
	}
}

// TestUnmarshalNoAlloc: a warm Advert decodes without allocating.
func TestUnmarshalNoAlloc(t *testing.T) {
	fr := readFrames(t, "testdata/golden/v3-ipv6.pcap")[0]
	var a Advert
	if err := a.Unmarshal(fr.Msg, true); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = a.Unmarshal(fr.Msg, true) }); n != 0 {
		t.Errorf("Unmarshal allocates %v times per advert", n)
	}
}

// TestChecksumForms encodes a v3 advert in every form and checks that
// verification finds the same form (RFC 5798 section 5.2.8 and the
// deviations keepalived accepts), and that a corrupted checksum fails.
func TestChecksumForms(t *testing.T) {
	src4, dst4 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	src6, dst6 := netip.MustParseAddr("fe80::1"), netip.MustParseAddr("fe80::2")
	tests := []struct {
		name     string
		src, dst netip.Addr
		addrs    []netip.Addr
		form     ChecksumForm
		ok       bool
	}{
		{"v3 ipv4 pseudo multicast", src4, vrrpGroup4, []netip.Addr{vip100}, ChecksumPseudo, true},
		{"v3 ipv4 pseudo unicast", src4, dst4, []netip.Addr{vip100}, ChecksumPseudo, true},
		{"v3 ipv4 message", src4, vrrpGroup4, []netip.Addr{vip100}, ChecksumMessage, true},
		{"v3 ipv4 old unicast", src4, dst4, []netip.Addr{vip100}, ChecksumPseudoGroup, true},
		{"v3 ipv6 pseudo", src6, vrrpGroup6, []netip.Addr{vip6a}, ChecksumPseudo, true},
		{"v3 ipv6 old unicast", src6, dst6, []netip.Addr{vip6a}, ChecksumPseudoGroup, true},
		// IPv6 requires the pseudo-header (RFC 8200 section 8.1); a
		// message-only checksum is not accepted there.
		{"v3 ipv6 message", src6, dst6, []netip.Addr{vip6a}, ChecksumMessage, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := Advert{Version: 3, Type: 1, VRID: 9, Priority: 100, Interval: 100, Addresses: tt.addrs}
			msg, err := a.Append(nil, tt.src, tt.dst, tt.form)
			if err != nil {
				t.Fatal(err)
			}
			form, ok := verifyChecksum(msg, tt.src, tt.dst, groupOf(tt.src), 3)
			if ok != tt.ok || ok && form != tt.form {
				t.Errorf("verified as %v ok %v, want %v ok %v", form, ok, tt.form, tt.ok)
			}
			msg[7] ^= 0x01
			if _, ok := verifyChecksum(msg, tt.src, tt.dst, groupOf(tt.src), 3); ok {
				t.Error("corrupted checksum verified")
			}
		})
	}
	// Version 2 is always over the message (RFC 3768 section 5.3.8),
	// whatever form is asked for.
	a := Advert{Version: 2, Type: 1, VRID: 1, Priority: 100, Interval: 100, Addresses: []netip.Addr{vip100}}
	msg, err := a.Append(nil, src4, vrrpGroup4, ChecksumPseudo)
	if err != nil {
		t.Fatal(err)
	}
	if form, ok := verifyChecksum(msg, src4, vrrpGroup4, vrrpGroup4, 2); !ok || form != ChecksumMessage {
		t.Errorf("v2 verified as %v ok %v", form, ok)
	}
}

// TestAppendErrors: values the wire cannot carry are refused, not mangled.
func TestAppendErrors(t *testing.T) {
	src4 := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		a    Advert
		src  netip.Addr
		want string
	}{
		{"v2 fractional interval", Advert{Version: 2, Interval: 150}, src4, "not whole seconds"},
		{"v2 interval too long", Advert{Version: 2, Interval: 25600}, src4, "not whole seconds"},
		{"v3 interval too long", Advert{Version: 3, Interval: 4096}, src4, "exceeds 4095"},
		{"v3 no source", Advert{Version: 3, Interval: 100}, netip.Addr{}, "needs its source address"},
		{"v3 mixed family", Advert{Version: 3, Interval: 100, Addresses: []netip.Addr{vip6a}}, src4, "does not fit"},
		{"v2 ipv6 address", Advert{Version: 2, Interval: 100, Addresses: []netip.Addr{vip6a}}, src4, "does not fit"},
		{"version 4", Advert{Version: 4}, src4, "cannot encode vrrp version 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.a.Append([]byte{1, 2}, tt.src, vrrpGroup4, ChecksumPseudo)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
			if !bytes.Equal(b, []byte{1, 2}) {
				t.Errorf("buffer changed on error: % x", b)
			}
		})
	}
}

// TestAuthKey: simple passwords are the first 8 bytes, zero padded (RFC
// 3768 section 5.3.10; keepalived truncates longer ones the same way).
func TestAuthKey(t *testing.T) {
	if got := authKey("secret"); got != [8]byte{'s', 'e', 'c', 'r', 'e', 't', 0, 0} {
		t.Errorf("authKey(secret) = %q", got)
	}
	if got := authKey("abcdefghij"); got != [8]byte([]byte("abcdefgh")) {
		t.Errorf("authKey(abcdefghij) = %q", got)
	}
	if !authEqual(authKey("abc"), authKey("abc")) || authEqual(authKey("abc"), authKey("abd")) {
		t.Error("authEqual is wrong")
	}
}

// TestGoldenLive regenerates the golden captures from the installed
// keepalived into a temporary directory and runs the byte-for-byte checks
// on them, so CI checks the codec against today's keepalived too. It takes
// about 75 seconds, so it runs only with VIPD_GOLDEN_LIVE=1.
func TestGoldenLive(t *testing.T) {
	if os.Getenv("VIPD_GOLDEN_LIVE") == "" {
		t.Skip("set VIPD_GOLDEN_LIVE=1 to capture from keepalived (about 75 s)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	for _, tool := range []string{"keepalived", "tcpdump"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("sh", "scripts/golden-capture.sh", dir).CombinedOutput(); err != nil {
		t.Fatalf("golden-capture.sh: %v\n%s", err, out)
	}
	for _, tc := range goldenCases {
		frames := readFrames(t, filepath.Join(dir, tc.file+".pcap"))
		if len(frames) != 3 {
			t.Errorf("%s: %d adverts", tc.file, len(frames))
		}
		for _, fr := range frames {
			var a Advert
			if err := a.Unmarshal(fr.Msg, fr.Src.Is6()); err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			want := tc.want
			want.Checksum = a.Checksum
			if !advertEqual(&a, &want) {
				t.Errorf("%s: decoded %+v", tc.file, a)
			}
			enc, err := a.Marshal(fr.Src, fr.Dst, tc.form)
			if err != nil || !bytes.Equal(enc, fr.Msg) {
				t.Errorf("%s: re-encoded % x (%v), keepalived sent % x", tc.file, enc, err, fr.Msg)
			}
		}
	}
}

// TestLayerEdges: the gopacket layer reports decode errors as gopacket
// DecodeFailure layers (not panics), guesses the family without an IP
// layer, and serializes without a network layer when checksums are not
// computed.
func TestLayerEdges(t *testing.T) {
	fr := readFrames(t, "testdata/golden/v3-ipv6.pcap")[0]
	cut := slices.Clone(fr.Data[:len(fr.Data)-4])
	// Keep the IPv6 payload length consistent with the cut.
	cut[18], cut[19] = 0, byte(len(fr.Msg)-4)
	pk := gopacket.NewPacket(cut, layers.LinkTypeEthernet, gopacket.Default)
	el := pk.ErrorLayer()
	if el == nil || !errors.Is(el.Error(), errParse) || !strings.Contains(el.Error().Error(), "advert claims 2 ipv6 addresses but has 36 bytes") {
		t.Errorf("error layer %v", el)
	}

	var v VRRP
	if err := v.DecodeFromBytes(fr.Msg, gopacket.NilDecodeFeedback); err != nil || !v.IPv6 || len(v.Addresses) != 2 {
		t.Errorf("DecodeFromBytes: %v %+v", err, v)
	}
	v3 := readFrames(t, "testdata/golden/v3-ipv4.pcap")[0]
	if err := v.DecodeFromBytes(v3.Msg, gopacket.NilDecodeFeedback); err != nil || v.IPv6 || len(v.Addresses) != 3 {
		t.Errorf("DecodeFromBytes v3/IPv4: %v %+v", err, v)
	}
	buf := gopacket.NewSerializeBuffer()
	if err := v.SerializeTo(buf, gopacket.SerializeOptions{}); err != nil || !bytes.Equal(buf.Bytes(), v3.Msg) {
		t.Errorf("SerializeTo without checksum: %v % x", err, buf.Bytes())
	}
	var fresh VRRP
	fresh.Advert = v.Advert
	if err := fresh.SerializeTo(gopacket.NewSerializeBuffer(), gopacket.SerializeOptions{ComputeChecksums: true}); err == nil {
		t.Error("v3 checksum without a network layer succeeded")
	}
}
