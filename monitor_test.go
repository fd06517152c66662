package main

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// monRec is an advert as inspectFrame decodes it.
func monRec(src string, vrid, prio uint8, version uint8, intervalCS uint16, addrs ...string) *inspectRecord {
	r := &inspectRecord{Src: src, SrcMAC: "02:00:00:00:00:" + src[len(src)-2:], VRID: vrid, Priority: prio, Version: version,
		Type: 1, IntervalCS: intervalCS, Addresses: addrs, Verdict: "ok"}
	if version == 2 {
		var none uint8
		r.AuthType = &none
	}
	return r
}

func warnKinds(ws []inspectWarning) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Kind)
	}
	return out
}

// Only a master sends adverts (RFC 5798 section 6.4.2, a backup is
// silent): two routers that both keep advertising for one VRID are two
// masters; the old master's last advert after a preemption (section
// 6.4.3, it yields to the higher priority) is not.
func TestLinkMonitorMasters(t *testing.T) {
	t0 := time.Unix(1000, 0)
	sec := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

	t.Run("split brain", func(t *testing.T) {
		m := newLinkMonitor()
		var raised []string
		for k := 0; k < 4; k++ {
			_, r1, _ := m.observe(monRec("10.0.0.11", 51, 200, 3, 100, "10.0.0.100"), sec(float64(k)))
			ws, r2, _ := m.observe(monRec("10.0.0.12", 51, 100, 3, 100, "10.0.0.100"), sec(float64(k)+0.4))
			raised = append(append(raised, r1...), r2...)
			if k >= 1 && !slices.Contains(warnKinds(ws), warnTwoMasters) {
				t.Fatalf("round %d: warnings %v, want two masters", k, warnKinds(ws))
			}
		}
		if !slices.Equal(raised, []string{warnTwoMasters}) {
			t.Errorf("raised %v, want two_masters once", raised)
		}
		// The lower one stops (it heard the other): the warning clears.
		m.observe(monRec("10.0.0.11", 51, 200, 3, 100, "10.0.0.100"), sec(4))
		ws, _, cleared := m.observe(monRec("10.0.0.11", 51, 200, 3, 100, "10.0.0.100"), sec(5))
		if len(ws) != 0 || !slices.Equal(cleared, []string{warnTwoMasters}) {
			t.Errorf("after the loser stopped: warnings %v, cleared %v", warnKinds(ws), cleared)
		}
	})

	t.Run("preemption", func(t *testing.T) {
		m := newLinkMonitor()
		for k := 0; k < 3; k++ {
			m.observe(monRec("10.0.0.12", 51, 100, 3, 100, "10.0.0.100"), sec(float64(k)))
		}
		// The higher priority takes over; the old master's last advert.
		for _, ev := range []struct {
			src  string
			prio uint8
			at   float64
		}{{"10.0.0.11", 200, 2.5}, {"10.0.0.12", 100, 2.51}, {"10.0.0.11", 200, 2.52}, {"10.0.0.11", 200, 3.5}, {"10.0.0.11", 200, 4.5}} {
			if ws, _, _ := m.observe(monRec(ev.src, 51, ev.prio, 3, 100, "10.0.0.100"), sec(ev.at)); len(ws) > 0 {
				t.Errorf("at %.2fs: %v", ev.at, ws)
			}
		}
	})

	t.Run("one way: the higher re-asserts", func(t *testing.T) {
		// A hears B and answers each advert at once (keepalived's
		// re-assertion); B never hears A and stays master.
		m := newLinkMonitor()
		var ws []inspectWarning
		for k := 0; k < 4; k++ {
			f := float64(k)
			m.observe(monRec("10.0.0.11", 51, 200, 3, 100, "10.0.0.100"), sec(f))
			m.observe(monRec("10.0.0.12", 51, 100, 3, 100, "10.0.0.100"), sec(f+0.4))
			ws, _, _ = m.observe(monRec("10.0.0.11", 51, 200, 3, 100, "10.0.0.100"), sec(f+0.41))
		}
		if !slices.Contains(warnKinds(ws), warnTwoMasters) {
			t.Errorf("warnings %v, want two masters", warnKinds(ws))
		}
	})

	t.Run("priority zero leaves", func(t *testing.T) {
		m := newLinkMonitor()
		m.observe(monRec("10.0.0.12", 51, 100, 3, 100, "10.0.0.100"), sec(0))
		m.observe(monRec("10.0.0.12", 51, 100, 3, 100, "10.0.0.100"), sec(1))
		m.observe(monRec("10.0.0.12", 51, 0, 3, 100, "10.0.0.100"), sec(1.5))
		m.observe(monRec("10.0.0.11", 51, 90, 3, 100, "10.0.0.100"), sec(1.6))
		if ws, _, _ := m.observe(monRec("10.0.0.11", 51, 90, 3, 100, "10.0.0.100"), sec(2.6)); len(ws) > 0 {
			t.Errorf("after a priority 0 advert: %v", ws)
		}
	})
}

// Mismatches that make VRRP misbehave: RFC 3768 section 7.1 drops a v2
// advert with another interval or authentication; v2 and v3 on one VRID,
// or other addresses, mean two groups collide (RFC 5798 section 7.1);
// priority 255 belongs to the one address owner (section 5.2.4).
func TestLinkMonitorMismatches(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pass := func(r *inspectRecord, pw string) *inspectRecord {
		one := uint8(authSimple)
		r.AuthType, r.Auth = &one, &pw
		return r
	}
	tests := []struct {
		name string
		a, b *inspectRecord
		want string
	}{
		{"interval", monRec("10.0.0.11", 7, 100, 3, 100, "10.0.0.100"), monRec("10.0.0.12", 7, 90, 3, 200, "10.0.0.100"), warnInterval},
		{"auth", pass(monRec("10.0.0.11", 7, 100, 2, 100, "10.0.0.100"), "a"), pass(monRec("10.0.0.12", 7, 90, 2, 100, "10.0.0.100"), "b"), warnAuth},
		{"version", monRec("10.0.0.11", 7, 100, 2, 100, "10.0.0.100"), monRec("10.0.0.12", 7, 90, 3, 100, "10.0.0.100"), warnVersion},
		{"addresses", monRec("10.0.0.11", 7, 100, 3, 100, "10.0.0.100"), monRec("10.0.0.12", 7, 90, 3, 100, "10.0.0.200"), warnAddresses},
		{"owners", monRec("10.0.0.11", 7, 255, 3, 100, "10.0.0.100"), monRec("10.0.0.12", 7, 255, 3, 100, "10.0.0.100"), warnTwoOwners},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newLinkMonitor()
			m.observe(tt.a, t0)
			ws, raised, _ := m.observe(tt.b, t0.Add(100*time.Millisecond))
			if !slices.Contains(warnKinds(ws), tt.want) || !slices.Contains(raised, tt.want) {
				t.Fatalf("warnings %v (raised %v), want %s", warnKinds(ws), raised, tt.want)
			}
			for _, w := range ws {
				if w.VRID != 7 || w.Family != "inet" || w.Detail == "" {
					t.Errorf("warning %+v", w)
				}
			}
			// Another VRID, or the same VRID over IPv6, is another group.
			other := *tt.b
			other.VRID = 8
			if ws, _, _ := m.observe(&other, t0.Add(200*time.Millisecond)); len(ws) > 0 {
				t.Errorf("VRID 8 inherits VRID 7's warnings: %v", ws)
			}
			// Once the other router is gone for its Master_Down_Interval,
			// the warning clears.
			_, _, cleared := m.observe(tt.a, t0.Add(10*time.Second))
			if !slices.Contains(cleared, tt.want) {
				t.Errorf("not cleared: %v", cleared)
			}
		})
	}
}

// Records that did not pass the stateless checks are shown but never
// count as a router.
func TestLinkMonitorIgnoresBadAdverts(t *testing.T) {
	m := newLinkMonitor()
	for k := 0; k < 3; k++ {
		for _, src := range []string{"10.0.0.11", "10.0.0.12"} {
			r := monRec(src, 9, 100, 3, 100, "10.0.0.100")
			if src == "10.0.0.12" {
				r.Verdict = dropChecksum.String()
			}
			if ws, _, _ := m.observe(r, time.Unix(int64(1000+k), 0)); len(ws) > 0 {
				t.Fatalf("warnings from a bad advert: %v", ws)
			}
		}
	}
	var b strings.Builder
	m.writeTable(&b, time.Unix(1003, 0))
	if got := b.String(); !strings.Contains(got, "10.0.0.11") || !strings.Contains(got, "master") || strings.Contains(got, "10.0.0.12") {
		t.Errorf("table:\n%s", got)
	}
}

// FuzzLinkMonitor feeds the live monitor arbitrary frames, as AF_PACKET
// would hand them over: it never panics, and what it reports names the
// frame's VRID.
func FuzzLinkMonitor(f *testing.F) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, prio := range []uint8{100, 255, 0} {
		a := Advert{Version: 3, Type: 1, VRID: 51, Priority: prio, Interval: 100, Addresses: []netip.Addr{netip.MustParseAddr("10.0.0.100")}}
		src := netip.MustParseAddr("10.0.0.1")
		msg, err := a.Append(nil, src, vrrpGroup4, ChecksumPseudo)
		if err != nil {
			f.Fatal(err)
		}
		frame, err := buildFrame(mac, multicastMAC(vrrpGroup4), src, vrrpGroup4, 1, msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame, frame)
	}
	f.Fuzz(func(t *testing.T, f1, f2 []byte) {
		m := newLinkMonitor()
		var a Advert
		for k, data := range [][]byte{f1, f2, f1} {
			rec, ok := inspectFrame(captureFrame{N: k + 1, Time: time.Unix(int64(k), 0), Link: layers.LinkTypeEthernet, Data: data}, &a)
			if !ok {
				continue
			}
			ws, _, _ := m.observe(&rec, time.Unix(int64(k), 0))
			for _, w := range ws {
				if w.VRID != rec.VRID {
					t.Fatalf("warning for VRID %d on a frame of VRID %d", w.VRID, rec.VRID)
				}
			}
			m.writeTable(io.Discard, time.Unix(int64(k), 0))
		}
	})
}

// IPv6 adverts (RFC 5798 only) form their own VRID space: VRID 51 over
// IPv6 is not VRID 51 over IPv4.
func TestLinkMonitorIPv6(t *testing.T) {
	m := newLinkMonitor()
	var a Advert
	frame := func(src string, prio uint8) []byte {
		s := netip.MustParseAddr(src)
		adv := Advert{Version: 3, Type: 1, VRID: 51, Priority: prio, Interval: 100, Addresses: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}
		msg, err := adv.Append(nil, s, vrrpGroup6, ChecksumPseudo)
		if err != nil {
			t.Fatal(err)
		}
		b, err := buildFrame(net.HardwareAddr{2, 0, 0, 0, 0, prio}, multicastMAC(vrrpGroup6), s, vrrpGroup6, 0, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m.observe(monRec("10.0.0.11", 51, 255, 3, 100, "10.0.0.100"), time.Unix(1000, 0))
	var ws []inspectWarning
	for k, f := range [][]byte{frame("fe80::1", 255), frame("fe80::2", 255)} {
		rec, ok := inspectFrame(captureFrame{N: k + 1, Link: layers.LinkTypeEthernet, Data: f}, &a)
		if !ok || rec.Verdict != "ok" {
			t.Fatalf("frame %d: %+v", k, rec)
		}
		ws, _, _ = m.observe(&rec, time.Unix(1000, 0).Add(time.Duration(k+1)*100*time.Millisecond))
	}
	if len(ws) != 1 || ws[0].Kind != warnTwoOwners || ws[0].Family != "inet6" || !strings.Contains(ws[0].Detail, "fe80::2") {
		t.Fatalf("warnings %+v, want priority_255 over inet6 only", ws)
	}
}
