package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

var (
	garpT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	vip4   = garpTarget{Addr: netip.MustParseAddr("10.0.0.100"), Dev: "eth0"}
	vip5   = garpTarget{Addr: netip.MustParseAddr("10.0.0.101"), Dev: "eth0"}
	vip6   = garpTarget{Addr: netip.MustParseAddr("fd00::100"), Dev: "eth0"}
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestGARPDefaults(t *testing.T) {
	// keepalived.conf(5): garp_master_repeat 5, garp_master_delay 5 s,
	// garp_master_refresh off, garp_master_refresh_repeat 1.
	c := defaultGARPConfig()
	if c.Repeat != 5 || c.Delay != 5*time.Second || c.Refresh != 0 || c.RefreshRepeat != 1 || c.Interval != 0 || c.NAInterval != 0 {
		t.Fatalf("defaults = %+v", c)
	}
}

// TestGARPSchedMaster checks RFC 5798 section 6.4.2's announcements on
// becoming master with keepalived's defaults: 5 of each at once, 5 more
// after garp_master_delay, then nothing.
func TestGARPSchedMaster(t *testing.T) {
	s := newGARPSched(defaultGARPConfig())
	if send, next := s.Due(garpT0); send != nil || !next.IsZero() {
		t.Fatalf("stopped scheduler: %v, %v", send, next)
	}
	s.Start(garpT0, []garpTarget{vip4, vip6})
	send, next := s.Due(garpT0)
	want := []garpTarget{vip4, vip4, vip4, vip4, vip4, vip6, vip6, vip6, vip6, vip6}
	if !slices.Equal(send, want) {
		t.Fatalf("at start: %v, want %v", send, want)
	}
	if !next.Equal(garpT0.Add(5 * time.Second)) {
		t.Fatalf("next = %v, want start + 5s", next)
	}
	if send, next2 := s.Due(garpT0.Add(ms(4999))); len(send) != 0 || !next2.Equal(next) {
		t.Fatalf("before the delay: %v, next %v", send, next2)
	}
	send, next = s.Due(garpT0.Add(5 * time.Second))
	if !slices.Equal(send, want) || !next.IsZero() {
		t.Fatalf("after the delay: %v, next %v; want a second set and nothing more", send, next)
	}
	if send, _ := s.Due(garpT0.Add(time.Hour)); len(send) != 0 {
		t.Fatalf("an hour later: %v", send)
	}
}

func TestGARPSchedNoDelayNoRepeat(t *testing.T) {
	s := newGARPSched(garpConfig{Repeat: 1})
	s.Start(garpT0, []garpTarget{vip4})
	if send, next := s.Due(garpT0); len(send) != 1 || !next.IsZero() {
		t.Fatalf("delay 0: %v, next %v; want one and no second set", send, next)
	}
	s = newGARPSched(garpConfig{Repeat: 0, Delay: time.Second})
	s.Start(garpT0, []garpTarget{vip4})
	if send, _ := s.Due(garpT0); len(send) != 0 {
		t.Fatalf("repeat 0: %v", send)
	}
}

func TestGARPSchedRefresh(t *testing.T) {
	s := newGARPSched(garpConfig{Repeat: 2, Delay: 5 * time.Second, Refresh: time.Minute, RefreshRepeat: 3})
	s.Start(garpT0, []garpTarget{vip4})
	if send, _ := s.Due(garpT0); len(send) != 2 {
		t.Fatalf("start: %d sent, want 2", len(send))
	}
	send, next := s.Due(garpT0.Add(5 * time.Second))
	if len(send) != 2 || !next.Equal(garpT0.Add(time.Minute)) {
		t.Fatalf("delay: %d sent, next %v", len(send), next)
	}
	send, next = s.Due(garpT0.Add(time.Minute))
	if len(send) != 3 || !next.Equal(garpT0.Add(2*time.Minute)) {
		t.Fatalf("refresh: %d sent, next %v; want 3 and another minute", len(send), next)
	}
	// A late call fires the refresh once and counts the next from now.
	send, next = s.Due(garpT0.Add(10 * time.Minute))
	if len(send) != 3 || !next.Equal(garpT0.Add(11*time.Minute)) {
		t.Fatalf("late refresh: %d sent, next %v", len(send), next)
	}
	s.Stop()
	if send, next := s.Due(garpT0.Add(time.Hour)); len(send) != 0 || !next.IsZero() {
		t.Fatalf("after stop: %v, %v", send, next)
	}
}

// TestGARPSchedPacing checks vrrp_garp_interval: ARPs on one interface
// are spaced by the interval, in round order; each interface has its own
// pace, and NAs (no vrrp_gna_interval here) are not held back.
func TestGARPSchedPacing(t *testing.T) {
	other := garpTarget{Addr: netip.MustParseAddr("10.9.0.1"), Dev: "eth1"}
	s := newGARPSched(garpConfig{Repeat: 2, Interval: ms(100)})
	s.Start(garpT0, []garpTarget{vip4, vip5, vip6, other})
	send, next := s.Due(garpT0)
	if want := []garpTarget{vip4, vip6, vip6, other}; !slices.Equal(send, want) {
		t.Fatalf("at start: %v, want %v", send, want)
	}
	if !next.Equal(garpT0.Add(ms(100))) {
		t.Fatalf("next = %v", next)
	}
	if send, n2 := s.Due(garpT0.Add(ms(50))); len(send) != 0 || !n2.Equal(next) {
		t.Fatalf("inside the interval: %v, next %v", send, n2)
	}
	var got []garpTarget
	now := garpT0.Add(ms(100))
	for i := 0; i < 10 && !now.IsZero(); i++ {
		send, next := s.Due(now)
		got = append(got, send...)
		if !next.IsZero() && next.Sub(now) != ms(100) {
			t.Fatalf("gap %v, want 100ms", next.Sub(now))
		}
		now = next
	}
	if want := []garpTarget{vip5, other, vip4, vip5}; !slices.Equal(got, want) {
		t.Fatalf("paced: %v, want %v", got, want)
	}
}

func TestGARPSchedNAInterval(t *testing.T) {
	s := newGARPSched(garpConfig{Repeat: 3, NAInterval: time.Second})
	s.Start(garpT0, []garpTarget{vip4, vip6})
	send, next := s.Due(garpT0)
	if want := []garpTarget{vip4, vip4, vip4, vip6}; !slices.Equal(send, want) || !next.Equal(garpT0.Add(time.Second)) {
		t.Fatalf("at start: %v next %v", send, next)
	}
}

func TestGARPSchedBurstAndRestart(t *testing.T) {
	s := newGARPSched(garpConfig{Repeat: 1})
	s.Burst(4)
	s.Start(garpT0, []garpTarget{vip4})
	s.Burst(2) // garp_lower_prio_repeat
	if send, _ := s.Due(garpT0); len(send) != 3 {
		t.Fatalf("burst: %d, want 1 + 2 (the burst before Start is ignored)", len(send))
	}
	s.Start(garpT0, []garpTarget{vip5})
	if send, _ := s.Due(garpT0); !slices.Equal(send, []garpTarget{vip5}) {
		t.Fatalf("restart: %v", send)
	}
	// Stop drops what pacing still holds.
	s = newGARPSched(garpConfig{Repeat: 3, Interval: time.Second})
	s.Start(garpT0, []garpTarget{vip4})
	s.Due(garpT0)
	s.Stop()
	if send, next := s.Due(garpT0.Add(time.Hour)); len(send) != 0 || !next.IsZero() {
		t.Fatalf("after stop: %v %v", send, next)
	}
}

func TestAnnounceAll(t *testing.T) {
	f := &fakeAnnouncer{}
	err := announceAll(map[string]announcer{"eth0": f}, []garpTarget{vip4, {Addr: vip4.Addr, Dev: "eth9"}, vip6})
	if err == nil || !strings.Contains(err.Error(), "eth9") {
		t.Fatalf("err = %v, want one naming eth9", err)
	}
	if !slices.Equal(f.Sent, []netip.Addr{vip4.Addr, vip6.Addr}) {
		t.Fatalf("sent %v", f.Sent)
	}
}

// capturer reads every frame seen on one interface of a namespace, as
// tcpdump would.
type capturer struct {
	pc     *packet.Conn
	frames chan []byte
}

func capture(t *testing.T, ns *testNS, ifname string) *capturer {
	t.Helper()
	ifi := ns.Interface(ifname)
	c := &capturer{frames: make(chan []byte, 1024)}
	ns.MustDo(func() (err error) {
		c.pc, err = packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, nil)
		return err
	})
	t.Cleanup(func() { c.pc.Close() })
	go func() {
		defer close(c.frames)
		buf := make([]byte, 2000)
		for {
			n, _, err := c.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			c.frames <- slices.Clone(buf[:n])
		}
	}()
	return c
}

// waitFor returns the first frame match accepts, failing the test if
// none comes within a bound that only guards against a hung test.
func (c *capturer) waitFor(t *testing.T, what string, match func(gopacket.Packet) bool) gopacket.Packet {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				t.Fatalf("capture ended before %s", what)
			}
			if p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default); match(p) {
				return p
			}
		case <-timeout:
			t.Fatalf("no %s on the wire", what)
		}
	}
}

// TestAnnounceOnWire sends a gratuitous ARP and an unsolicited NA for a
// VIP taken over from another host, and checks (1) the frames as gopacket
// decodes them, RFC 5798 section 6.4.2 and RFC 4861 section 7.2.6, and
// (2) that a client's neighbour entry for the VIP moves to the new MAC,
// which is what the announcement is for. The same with the VMAC.
func TestAnnounceOnWire(t *testing.T) {
	l := newTestLAN(t, 3)
	old, client, newm := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	vipA := netip.MustParseAddr(strings.Replace(l.Addr4(0).Addr().String(), ".0.1", ".0.100", 1))
	vipB := netip.MustParseAddr(strings.Replace(l.Addr6(0).Addr().String(), "::1", "::100", 1))
	for _, v := range []vip{{Prefix: netip.PrefixFrom(vipA, 24), Dev: "eth0"}, {Prefix: netip.PrefixFrom(vipB, 64), Dev: "eth0"}} {
		if err := (netlinkAddrs{H: old.Netlink()}).Add(v); err != nil {
			t.Fatal(err)
		}
	}
	// The client learns the VIPs at the old master's MAC.
	for _, ip := range []netip.Addr{vipA, vipB} {
		if out, err := client.Exec("ping", "-c1", "-W2", ip.String()); err != nil {
			t.Fatalf("ping %s: %v: %s", ip, err, out)
		}
	}
	oldMAC := old.Interface("eth0").HardwareAddr
	if n := client.IP("neigh", "show", vipA.String()); !strings.Contains(n, oldMAC.String()) {
		t.Fatalf("client neighbour entry before takeover: %s", n)
	}
	newIf := newm.Interface("eth0")

	for _, tc := range []struct {
		name string
		mac  net.HardwareAddr
	}{
		{"interface MAC", nil},
		{"VMAC", vmacFor(9, false)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.mac
			if want == nil {
				want = newIf.HardwareAddr
			}
			var a *packetAnnouncer
			newm.MustDo(func() (err error) {
				a, err = newAnnouncer(newIf, tc.mac)
				return err
			})
			defer a.Close()
			a.Router = func() bool { return true }
			c := capture(t, client, "eth0")
			if err := a.Announce(vipA); err != nil {
				t.Fatal(err)
			}
			if err := a.Announce(vipB); err != nil {
				t.Fatal(err)
			}
			fromUs := func(p gopacket.Packet) *layers.Ethernet {
				eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				if eth == nil || !bytes.Equal(eth.SrcMAC, want) {
					return nil
				}
				return eth
			}
			p := c.waitFor(t, "gratuitous ARP", func(p gopacket.Packet) bool {
				return fromUs(p) != nil && p.Layer(layers.LayerTypeARP) != nil
			})
			eth, arpL := fromUs(p), p.Layer(layers.LayerTypeARP).(*layers.ARP)
			if eth.DstMAC.String() != "ff:ff:ff:ff:ff:ff" || arpL.Operation != layers.ARPRequest ||
				!bytes.Equal(arpL.SourceHwAddress, want) ||
				!bytes.Equal(arpL.SourceProtAddress, vipA.AsSlice()) || !bytes.Equal(arpL.DstProtAddress, vipA.AsSlice()) ||
				!bytes.Equal(arpL.DstHwAddress, []byte{255, 255, 255, 255, 255, 255}) {
				t.Errorf("gratuitous ARP: eth dst %s, %+v", eth.DstMAC, arpL)
			}
			p = c.waitFor(t, "neighbour advertisement", func(p gopacket.Packet) bool {
				return fromUs(p) != nil && p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement) != nil
			})
			eth = fromUs(p)
			na := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			ip6 := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
			if ip6.HopLimit != 255 || ip6.DstIP.String() != "ff02::1" || !ip6.SrcIP.Equal(vipB.AsSlice()) ||
				eth.DstMAC.String() != "33:33:00:00:00:01" {
				t.Errorf("NA IPv6 header: %s -> %s hop limit %d, eth dst %s", ip6.SrcIP, ip6.DstIP, ip6.HopLimit, eth.DstMAC)
			}
			if !na.Override() || na.Solicited() || !na.Router() || !na.TargetAddress.Equal(vipB.AsSlice()) {
				t.Errorf("NA flags %#x target %s: want override and router, not solicited", na.Flags, na.TargetAddress)
			}
			var tlla bool
			for _, o := range na.Options {
				if o.Type == layers.ICMPv6OptTargetAddress && bytes.Equal(o.Data, want) {
					tlla = true
				}
			}
			if !tlla {
				t.Errorf("NA lacks a target link-layer address option with %s: %v", want, na.Options)
			}

			// The client's kernel accepted both (so the NA checksum is
			// right) and moved its entries to the new MAC. Poll for it;
			// the bound only guards a hung test.
			deadline := time.Now().Add(5 * time.Second)
			for {
				n4 := client.IP("neigh", "show", vipA.String())
				n6 := client.IP("-6", "neigh", "show", vipB.String())
				if strings.Contains(n4, want.String()) && strings.Contains(n6, want.String()) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("client neighbour entries not moved to %s:\n%s%s", want, n4, n6)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestAnnouncerWithoutIPv4 announces from an interface with no IPv4
// address at all (a VMAC before it takes its VIPs), which mdlayher/arp's
// client refuses.
func TestAnnouncerWithoutIPv4(t *testing.T) {
	needRoot(t)
	a, b := newTestNS(t, "noip"), newTestNS(t, "noippeer")
	veth(t, a, "eth0", b, "eth0")
	ifi := a.Interface("eth0")
	var an *packetAnnouncer
	a.MustDo(func() (err error) { an, err = newAnnouncer(ifi, nil); return err })
	defer an.Close()
	c := capture(t, b, "eth0")
	if err := an.Announce(netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "gratuitous ARP", func(p gopacket.Packet) bool {
		a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP)
		return ok && bytes.Equal(a.SourceProtAddress, []byte{192, 0, 2, 1}) && bytes.Equal(a.SourceHwAddress, ifi.HardwareAddr)
	})
}

// TestGARPScheduleOnWire drives the scheduler on a virtual clock through a
// real announcer and counts the frames a peer sees: keepalived's defaults
// give 5 gratuitous ARPs and 5 NAs per VIP at once, and as many again at
// garp_master_delay (RFC 5798 section 6.4.2's announcements, repeated).
func TestGARPScheduleOnWire(t *testing.T) {
	l := newTestLAN(t, 2)
	ifi := l.Hosts[0].Interface("eth0")
	var an *packetAnnouncer
	l.Hosts[0].MustDo(func() (err error) { an, err = newAnnouncer(ifi, nil); return err })
	defer an.Close()
	c := capture(t, l.Hosts[1], "eth0")
	v4 := garpTarget{Addr: netip.MustParseAddr("192.0.2.10"), Dev: "eth0"}
	v6 := garpTarget{Addr: netip.MustParseAddr("2001:db8::10"), Dev: "eth0"}
	s := newGARPSched(defaultGARPConfig())
	s.Start(garpT0, []garpTarget{v4, v6})
	by := map[string]announcer{"eth0": an}
	count := func(round int) {
		var arps, nas int
		for arps < 5 || nas < 5 {
			p := c.waitFor(t, fmt.Sprintf("announcement %d of round %d", arps+nas+1, round), func(p gopacket.Packet) bool {
				eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
				return eth != nil && bytes.Equal(eth.SrcMAC, ifi.HardwareAddr)
			})
			if a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok && bytes.Equal(a.SourceProtAddress, v4.Addr.AsSlice()) {
				arps++
			}
			if na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement); ok && na.TargetAddress.Equal(v6.Addr.AsSlice()) {
				nas++
			}
		}
		if arps != 5 || nas != 5 {
			t.Fatalf("round %d: %d ARPs, %d NAs, want 5 each", round, arps, nas)
		}
	}
	send, next := s.Due(garpT0)
	if err := announceAll(by, send); err != nil {
		t.Fatal(err)
	}
	count(1)
	send, next = s.Due(next)
	if err := announceAll(by, send); err != nil {
		t.Fatal(err)
	}
	count(2)
	if !next.IsZero() {
		t.Fatalf("more scheduled after the second round: %v", next)
	}
}
