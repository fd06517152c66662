package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
)

// Fuzz targets for every parser of received bytes. Crashers found are kept
// in testdata/fuzz/<Target>/ and run as regression cases by `go test`.
// Seeds are the adverts of testdata/golden and of the public captures.

// fuzzSeeds returns the VRRP messages (with ipv6 flag) of the golden and
// shared captures, and the capture files themselves.
func fuzzSeeds(f *testing.F) (msgs []goldenFrame, files [][]byte) {
	names, _ := filepath.Glob("testdata/golden/*.pcap")
	for _, d := range []string{"../shared/pcaps", "../../shared/pcaps"} {
		if _, err := os.Stat(d); err == nil {
			names = append(names, captureFiles(f, d)...)
			break
		}
	}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, b)
		msgs = append(msgs, readFrames(f, n)...)
	}
	return msgs, files
}

var (
	fuzzSrc4 = netip.MustParseAddr("192.0.2.1")
	fuzzSrc6 = netip.MustParseAddr("fe80::1")
)

// FuzzAdvert: decode -> encode -> decode is stable, and the encoding is
// the input message except for the checksum and v3's reserved bits.
func FuzzAdvert(f *testing.F) {
	msgs, _ := fuzzSeeds(f)
	for _, m := range msgs {
		f.Add(m.Msg, m.Src.Is6())
	}
	f.Fuzz(func(t *testing.T, msg []byte, ipv6 bool) {
		var a Advert
		if err := a.Unmarshal(msg, ipv6); err != nil {
			if !errors.Is(err, errParse) {
				t.Fatalf("error %v is not errParse", err)
			}
			return
		}
		src, dst := fuzzSrc4, vrrpGroup4
		if ipv6 {
			src, dst = fuzzSrc6, vrrpGroup6
		}
		wire := a // Append stores the computed checksum in a
		enc, err := a.Append(nil, src, dst, ChecksumPseudo)
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", a, err)
		}
		n := advertLen(a.Version, a.Count, ipv6)
		if len(enc) != n {
			t.Fatalf("encoded %d bytes, message was %d", len(enc), n)
		}
		want := bytes.Clone(msg[:n])
		want[6], want[7] = enc[6], enc[7]
		if a.Version == 3 {
			want[4] &= 0x0f
		}
		if !bytes.Equal(enc, want) {
			t.Fatalf("encoded\n% x\nfrom\n% x", enc, msg[:n])
		}
		if _, ok := verifyChecksum(enc, src, dst, dst, a.Version); !ok {
			t.Fatalf("own checksum does not verify: % x", enc)
		}
		var b Advert
		if err := b.Unmarshal(enc, ipv6); err != nil {
			t.Fatalf("own encoding does not decode: %v", err)
		}
		if !advertEqual(&a, &b) {
			t.Fatalf("round trip\n%+v\n%+v", a, b)
		}
		// The gopacket layer decodes the same without knowing the family.
		var v VRRP
		if err := v.DecodeFromBytes(msg, gopacket.NilDecodeFeedback); err == nil && v.IPv6 == ipv6 && !advertEqual(&v.Advert, &wire) {
			t.Fatalf("layer decoded %+v, Unmarshal %+v", v.Advert, wire)
		}
	})
}

// FuzzValidate: the ladder never panics, never reads outside msg, and an
// accepted advert really satisfies the policy.
func FuzzValidate(f *testing.F) {
	msgs, _ := fuzzSeeds(f)
	for _, m := range msgs {
		f.Add(m.Msg, m.TTL, m.Dst.IsMulticast(), m.Src.Is6())
	}
	p2 := &rxPolicy{VRID: 42, Version: 2, AuthType: authSimple, AuthPass: authKey("abcdefgh"), Interval: 1000,
		CheckUnicastSrc: true, Peers: []netip.Addr{fuzzSrc4}, MinTTL: 1}
	p3 := &rxPolicy{VRID: 51, Version: 3, Interval: 100, Addresses: []netip.Addr{vip100}}
	f.Fuzz(func(t *testing.T, msg []byte, ttl uint8, multicast, ipv6 bool) {
		meta := rxMeta{Src: fuzzSrc4, Dst: netip.MustParseAddr("192.0.2.2"), TTL: ttl}
		if multicast {
			meta.Dst = vrrpGroup4
		}
		if ipv6 {
			meta.Src, meta.Dst = fuzzSrc6, netip.MustParseAddr("fe80::2")
			if multicast {
				meta.Dst = vrrpGroup6
			}
		}
		var a Advert
		for _, p := range []*rxPolicy{nil, p2, p3} {
			v := validate(meta, bytes.Clone(msg), p, &a)
			if v.Reason >= numDropReasons {
				t.Fatalf("reason %d", v.Reason)
			}
			if !v.OK() {
				if v.Err == nil {
					t.Fatalf("drop %v without detail", v.Reason)
				}
				continue
			}
			if multicast && ttl != 255 {
				t.Fatalf("accepted multicast ttl %d", ttl)
			}
			if _, ok := verifyChecksum(msg[:advertLen(a.Version, a.Count, ipv6)], meta.Src, meta.Dst, groupOf(meta.Src), a.Version); !ok {
				t.Fatal("accepted a bad checksum")
			}
			if p != nil && (a.VRID != p.VRID || a.Version != p.Version) {
				t.Fatalf("accepted %+v under %+v", a, p)
			}
			if p == p2 && (a.Interval != p2.Interval || !authEqual(a.Auth, p2.AuthPass)) {
				t.Fatalf("accepted %+v under v2 policy", a)
			}
		}
	})
}

// FuzzInspectReader: arbitrary bytes as a capture file give frames or a
// clear error, never a panic.
func FuzzInspectReader(f *testing.F) {
	_, files := fuzzSeeds(f)
	for _, b := range files {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Advert
		err := readCapture(bytes.NewReader(data), func(fr captureFrame) error {
			if rec, ok := inspectFrame(fr, &a); ok {
				_ = rec.text()
				if _, err := json.Marshal(rec); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		if err != nil && err.Error() == "" {
			t.Fatal("empty error")
		}
	})
}
