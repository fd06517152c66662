package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// testAdvert is a VRRP-shaped payload: the conns do not parse VRRP, so any
// bytes do; these look like a v3 advert for VRID 7 so captures read well.
func testAdvert(n int) []byte {
	b := make([]byte, n)
	b[0], b[1], b[2], b[3] = 0x31, 7, 100, 1
	for i := 4; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// readWithin reads one advert, failing the test if none comes (the bound
// only guards against a hung test; no timing is asserted).
func readWithin(t *testing.T, c advertConn) ([]byte, frameMeta) {
	t.Helper()
	type res struct {
		b   []byte
		m   frameMeta
		err error
	}
	ch := make(chan res, 1)
	go func() {
		buf := make([]byte, 1500)
		n, m, err := c.ReadAdvert(buf)
		ch <- res{buf[:n], m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("read: %v", r.err)
		}
		return r.b, r.m
	case <-time.After(5 * time.Second):
		t.Fatal("no advert arrived")
	}
	return nil, frameMeta{}
}

func TestMulticastMAC(t *testing.T) {
	for _, tc := range []struct{ group, mac string }{
		{"224.0.0.18", "01:00:5e:00:00:12"}, // RFC 1112 section 6.4
		{"239.129.1.2", "01:00:5e:01:01:02"},
		{"ff02::12", "33:33:00:00:00:12"}, // RFC 2464 section 7
	} {
		if got := multicastMAC(netip.MustParseAddr(tc.group)).String(); got != tc.mac {
			t.Errorf("multicastMAC(%s) = %s, want %s", tc.group, got, tc.mac)
		}
	}
	// RFC 5798 section 7.3.
	if got := vmacFor(7, false).String(); got != "00:00:5e:00:01:07" {
		t.Errorf("IPv4 VMAC = %s", got)
	}
	if got := vmacFor(255, true).String(); got != "00:00:5e:00:02:ff" {
		t.Errorf("IPv6 VMAC = %s", got)
	}
}

func TestParseFrameRejects(t *testing.T) {
	good, err := buildFrame(net.HardwareAddr{2, 0, 0, 0, 0, 1}, multicastMAC(vrrpGroup4),
		netip.MustParseAddr("10.0.0.1"), vrrpGroup4, 1, testAdvert(20))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := parseFrame(good); err != nil {
		t.Fatalf("good frame: %v", err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"empty":        nil,
		"short eth":    good[:10],
		"short ip":     good[:20],
		"total > data": mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[16:], 200); return b }),
		"ihl < 5":      mut(func(b []byte) []byte { b[14] = 0x44; return b }),
		"proto 17":     mut(func(b []byte) []byte { b[23] = 17; return b }),
		"fragment":     mut(func(b []byte) []byte { b[20] = 0x20; return b }),
		"arp":          mut(func(b []byte) []byte { b[12], b[13] = 8, 6; return b }),
	} {
		if _, _, err := parseFrame(b); !errors.Is(err, errNotVRRP) {
			t.Errorf("%s: err = %v, want errNotVRRP", name, err)
		}
	}
}

// listenIn opens a multicast conn on ifi in n's namespace, closed when the
// test ends.
func listenIn(t testing.TB, n *testNS, ifi *net.Interface, cfg mcastConfig) *mcastConn {
	t.Helper()
	var c *mcastConn
	n.MustDo(func() (err error) {
		c, err = listenMulticast(ifi, cfg)
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMulticastConn sends adverts between two hosts on one LAN over
// AF_PACKET and checks what RFC 5798 section 5.1.1 requires of the IP
// layer (TTL 255, protocol 112, the group as destination), the Ethernet
// source (the interface MAC by default, the VMAC of section 7.3 when
// asked) and that the receiver drops Ethernet padding.
func TestMulticastConn(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, fam := range []string{"ipv4", "ipv6"} {
		t.Run(fam, func(t *testing.T) {
			v6 := fam == "ipv6"
			src1, src2 := l.Addr4(0).Addr(), l.Addr4(1).Addr()
			group := vrrpGroup4
			if v6 {
				src1, src2, group = l.LinkLocal(t, 0), l.LinkLocal(t, 1), vrrpGroup6
			}
			if1, if2 := h1.Interface("eth0"), h2.Interface("eth0")
			c1 := listenIn(t, h1, if1, mcastConfig{Src: src1})
			c1v := listenIn(t, h1, if1, mcastConfig{Src: src1, SrcMAC: vmacFor(7, v6)})
			c2 := listenIn(t, h2, if2, mcastConfig{Src: src2})

			// The IP-level join shows in the kernel's group list, so
			// IGMP/MLD reports go out for snooping switches.
			if out := h2.IP("maddr", "show", "dev", "eth0"); !strings.Contains(out, group.String()) {
				t.Errorf("group %s not joined on h2:\n%s", group, out)
			}

			msg := testAdvert(20)
			if err := c1.WriteAdvert(msg, netip.Addr{}); err != nil {
				t.Fatal(err)
			}
			got, m := readWithin(t, c2)
			if !bytes.Equal(got, msg) {
				t.Errorf("payload = %x, want %x", got, msg)
			}
			if m.TTL != 255 || m.Src != src1 || m.Dst != group || m.Unicast || m.Ifindex != if2.Index {
				t.Errorf("meta = %+v, want TTL 255 from %s to %s on ifindex %d", m, src1, group, if2.Index)
			}
			if m.SrcMAC.String() != if1.HardwareAddr.String() {
				t.Errorf("src MAC = %s, want interface MAC %s", m.SrcMAC, if1.HardwareAddr)
			}

			// use_vmac: the same advert with the virtual router MAC.
			if err := c1v.WriteAdvert(msg, group); err != nil {
				t.Fatal(err)
			}
			_, m = readWithin(t, c2)
			if want := vmacFor(7, v6).String(); m.SrcMAC.String() != want {
				t.Errorf("src MAC = %s, want VMAC %s", m.SrcMAC, want)
			}

			// Padding: a short frame padded to the Ethernet minimum, as a
			// NIC sends it, must come back without the padding.
			raw, err := buildFrame(if1.HardwareAddr, multicastMAC(group), src1, group, 9, msg)
			if err != nil {
				t.Fatal(err)
			}
			raw = append(raw, make([]byte, 30)...)
			var pc *packet.Conn
			h1.MustDo(func() (err error) {
				pc, err = packet.Listen(if1, packet.Raw, unix.ETH_P_ALL, nil)
				return err
			})
			defer pc.Close()
			if _, err := pc.WriteTo(raw, &packet.Addr{HardwareAddr: multicastMAC(group)}); err != nil {
				t.Fatal(err)
			}
			if got, _ := readWithin(t, c2); !bytes.Equal(got, msg) {
				t.Errorf("padded frame: payload = %x, want %x", got, msg)
			}

			// A conn never reads its own adverts (PACKET_OUTGOING): h1
			// sends first, h2 second, and h1's first read is h2's.
			if err := c1.WriteAdvert(testAdvert(24), netip.Addr{}); err != nil {
				t.Fatal(err)
			}
			if err := c2.WriteAdvert(testAdvert(28), netip.Addr{}); err != nil {
				t.Fatal(err)
			}
			// c1v shares h1's interface: it sees c1's frame? No: both
			// are outgoing on h1, so it must see only h2's too.
			for _, c := range []*mcastConn{c1, c1v} {
				got, m := readWithin(t, c)
				if len(got) == 20 { // the padded one from pc went out on h1 too
					got, m = readWithin(t, c)
				}
				if len(got) != 28 || m.Src != src2 {
					t.Errorf("h1 read %d bytes from %s, want h2's 28-byte advert", len(got), m.Src)
				}
			}

			// Close unblocks a pending read (on a conn no advert reaches:
			// it listens to another group).
			var c3 *mcastConn
			h2.MustDo(func() (err error) {
				g := netip.MustParseAddr("239.1.2.3")
				if v6 {
					g = netip.MustParseAddr("ff02::1:2:3")
				}
				c3, err = listenMulticast(if2, mcastConfig{Src: src2, Group: g})
				return err
			})
			done := make(chan error, 1)
			go func() {
				_, _, err := c3.ReadAdvert(make([]byte, 100))
				done <- err
			}()
			time.Sleep(10 * time.Millisecond)
			c3.Close()
			select {
			case err := <-done:
				if !isClosed(err) {
					t.Errorf("read after close: %v, want a closed error", err)
				}
			case <-time.After(5 * time.Second):
				t.Error("close did not unblock read")
			}
		})
	}
}

// TestMulticastFrameOnWire captures an advert in the peer namespace and
// checks the IP header byte by byte: RFC 5798 section 5.1.1.3 (TTL 255,
// protocol 112) and a valid IPv4 header checksum.
func TestMulticastFrameOnWire(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	if1, if2 := h1.Interface("eth0"), h2.Interface("eth0")
	var c1 *mcastConn
	var cap *packet.Conn
	h1.MustDo(func() (err error) {
		c1, err = listenMulticast(if1, mcastConfig{Src: l.Addr4(0).Addr()})
		return err
	})
	defer c1.Close()
	h2.MustDo(func() (err error) {
		cap, err = packet.Listen(if2, packet.Raw, unix.ETH_P_IP, nil)
		return err
	})
	defer cap.Close()
	msg := testAdvert(20)
	if err := c1.WriteAdvert(msg, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	cap.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2000)
	for {
		n, _, err := cap.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		if n < 34 || f[23] != 112 {
			continue
		}
		ip := f[14:34]
		if ip[0] != 0x45 || ip[1] != 0xc0 || ip[8] != 255 || ip[9] != 112 {
			t.Errorf("ip header %x: want version 4, ihl 5, tos 0xc0, ttl 255, proto 112", ip)
		}
		if ipChecksum(ip) != 0 {
			t.Errorf("ip header checksum does not verify: %x", ip)
		}
		if tl := binary.BigEndian.Uint16(ip[2:4]); int(tl) != 20+len(msg) {
			t.Errorf("total length %d", tl)
		}
		if !bytes.Equal(f[0:6], multicastMAC(vrrpGroup4)) || !bytes.Equal(ip[16:20], []byte{224, 0, 0, 18}) {
			t.Errorf("destination %x / %x, want 224.0.0.18 and its MAC", f[0:6], ip[16:20])
		}
		return
	}
}

// TestUnicastRoutedHop sends unicast adverts between hosts on two LANs
// joined by a router namespace: the kernel routes them and the router
// decrements the TTL, which the receiver must see (keepalived's unicast
// peers with min_ttl/max_ttl rely on it).
func TestUnicastRoutedHop(t *testing.T) {
	needRoot(t)
	a, r, b := newTestNS(t, "ua"), newTestNS(t, "ur"), newTestNS(t, "ub")
	veth(t, a, "eth0", r, "lan1")
	veth(t, b, "eth0", r, "lan2")
	r.sysctl("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	r.IP("addr", "add", "10.201.0.1/24", "dev", "lan1")
	r.IP("addr", "add", "10.202.0.1/24", "dev", "lan2")
	r.IP("addr", "add", "fd01::1/64", "dev", "lan1")
	r.IP("addr", "add", "fd02::1/64", "dev", "lan2")
	a.IP("addr", "add", "10.201.0.2/24", "dev", "eth0")
	a.IP("addr", "add", "fd01::2/64", "dev", "eth0")
	b.IP("addr", "add", "10.202.0.2/24", "dev", "eth0")
	b.IP("addr", "add", "fd02::2/64", "dev", "eth0")
	a.IP("route", "add", "default", "via", "10.201.0.1")
	a.IP("-6", "route", "add", "default", "via", "fd01::1")
	b.IP("route", "add", "default", "via", "10.202.0.1")
	b.IP("-6", "route", "add", "default", "via", "fd02::1")

	for _, tc := range []struct{ name, srcA, srcB string }{
		{"ipv4", "10.201.0.2", "10.202.0.2"},
		{"ipv6", "fd01::2", "fd02::2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srcA, srcB := netip.MustParseAddr(tc.srcA), netip.MustParseAddr(tc.srcB)
			var ca, cb *unicastConn
			a.MustDo(func() (err error) { ca, err = listenUnicast(srcA); return err })
			defer ca.Close()
			b.MustDo(func() (err error) { cb, err = listenUnicast(srcB); return err })
			defer cb.Close()
			ifB := b.Interface("eth0")

			// The checksum field (bytes 6-7) holds a value the kernel would
			// not compute; it must arrive untouched (IPV6_CHECKSUM off).
			msg := testAdvert(20)
			msg[6], msg[7] = 0xde, 0xad
			if err := ca.WriteAdvert(msg, srcB); err != nil {
				t.Fatal(err)
			}
			got, m := readWithin(t, cb)
			if !bytes.Equal(got, msg) {
				t.Errorf("payload = %x, want %x", got, msg)
			}
			// One router between: 255 - 1.
			if m.TTL != 254 || m.Src != srcA || m.Dst != srcB || !m.Unicast || m.Ifindex != ifB.Index {
				t.Errorf("meta = %+v, want TTL 254 from %s to %s on ifindex %d", m, srcA, srcB, ifB.Index)
			}
			// And back.
			if err := cb.WriteAdvert(testAdvert(32), srcA); err != nil {
				t.Fatal(err)
			}
			if got, m := readWithin(t, ca); len(got) != 32 || m.Src != srcB || m.TTL != 254 {
				t.Errorf("reply: %d bytes, meta %+v", len(got), m)
			}
			if err := ca.WriteAdvert(msg, netip.MustParseAddr("224.0.0.18").Unmap()); tc.name == "ipv6" && err == nil {
				t.Error("ipv6 conn sent to an IPv4 address")
			}
		})
	}
}

// TestUnicastLinkLocalZone: a unicast advert to a link-local IPv6 peer
// leaves on the interface its zone names, given by name or by index (the
// sender resolves the name through the interface cache).
func TestUnicastLinkLocalZone(t *testing.T) {
	needRoot(t)
	a, b := newTestNS(t, "lla"), newTestNS(t, "llb")
	veth(t, a, "eth0", b, "eth0")
	a.IP("addr", "add", "fe80::a/64", "dev", "eth0", "nodad")
	b.IP("addr", "add", "fe80::b/64", "dev", "eth0", "nodad")
	srcA, srcB := netip.MustParseAddr("fe80::a").WithZone("eth0"), netip.MustParseAddr("fe80::b").WithZone("eth0")
	var ca, cb *unicastConn
	a.MustDo(func() (err error) { ca, err = listenUnicast(srcA); return err })
	defer ca.Close()
	b.MustDo(func() (err error) { cb, err = listenUnicast(srcB); return err })
	defer cb.Close()
	ifA := a.Interface("eth0")
	for _, dst := range []netip.Addr{srcB, srcB.WithZone(strconv.Itoa(ifA.Index))} {
		msg := testAdvert(20)
		a.MustDo(func() error { return ca.WriteAdvert(msg, dst) })
		got, m := readWithin(t, cb)
		if !bytes.Equal(got, msg) || m.Src.WithZone("") != srcA.WithZone("") || m.TTL != 255 {
			t.Errorf("to %s: payload %x, meta %+v; want %x from %s, TTL 255", dst, got, m, msg, srcA)
		}
	}
	if err := ca.WriteAdvert(testAdvert(20), srcB.WithZone("nosuch0")); err == nil {
		t.Error("a zone naming no interface: sent")
	}
}

// TestMulticastVMACPeers runs two routers that both have the use_vmac
// macvlan (same VMAC, RFC 5798 section 7.3) on their LAN interface. The
// macvlan driver hands a multicast frame whose source MAC is one of its
// own to that macvlan alone, so a conn on the parent must still see the
// other router's adverts sent from the VMAC.
func TestMulticastVMACPeers(t *testing.T) {
	l := newTestLAN(t, 2)
	for _, h := range l.Hosts {
		m := &netlinkVMACs{H: h.Netlink()}
		h.MustDo(func() error { _, err := m.Create(vmacConfig{Parent: "eth0", VRID: 7}); return err })
	}
	if1, if2 := l.Hosts[0].Interface("eth0"), l.Hosts[1].Interface("eth0")
	var c1, c2 *mcastConn
	l.Hosts[0].MustDo(func() (err error) {
		c1, err = listenMulticast(if1, mcastConfig{Src: l.Addr4(0).Addr(), SrcMAC: vmacFor(7, false)})
		return err
	})
	defer c1.Close()
	l.Hosts[1].MustDo(func() (err error) {
		c2, err = listenMulticast(if2, mcastConfig{Src: l.Addr4(1).Addr(), SrcMAC: vmacFor(7, false)})
		return err
	})
	defer c2.Close()
	if err := c1.WriteAdvert(testAdvert(20), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, m := readWithin(t, c2); m.Src != l.Addr4(0).Addr() || m.SrcMAC.String() != vmacFor(7, false).String() {
		t.Fatalf("meta %+v", m)
	}
}

// FuzzParseFrame: parseFrame never panics or reads past the frame, and
// what it accepts survives buildFrame -> parseFrame unchanged.
func FuzzParseFrame(f *testing.F) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, src := range []string{"10.0.0.1", "fe80::1"} {
		s := netip.MustParseAddr(src)
		g := vrrpGroup4
		if s.Is6() {
			g = vrrpGroup6
		}
		b, err := buildFrame(mac, multicastMAC(g), s, g, 1, testAdvert(20))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(append(b, make([]byte, 20)...)) // Ethernet padding
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		payload, m, err := parseFrame(frame)
		if err != nil {
			if !errors.Is(err, errNotVRRP) {
				t.Fatalf("error %v does not wrap errNotVRRP", err)
			}
			return
		}
		if len(payload) > len(frame)-ethHdrLen-ipv4HdrLen {
			t.Fatalf("payload of %d bytes from a %d-byte frame", len(payload), len(frame))
		}
		b, err := buildFrame(m.SrcMAC, multicastMAC(m.Dst), m.Src, m.Dst, 1, payload)
		if err != nil {
			t.Fatal(err)
		}
		p2, m2, err := parseFrame(b)
		if err != nil {
			t.Fatalf("rebuilt frame: %v", err)
		}
		if !bytes.Equal(p2, payload) || m2.Src != m.Src || m2.Dst != m.Dst || m2.SrcMAC.String() != m.SrcMAC.String() {
			t.Fatalf("round trip: %x %+v -> %x %+v", payload, m, p2, m2)
		}
	})
}

// TestUnicastFreebind opens a unicast conn on an address not configured
// yet (the interface of unicast_src_ip may come later) and uses it once
// the address appears.
func TestUnicastFreebind(t *testing.T) {
	l := newTestLAN(t, 2)
	later := netip.MustParseAddr(fmt.Sprintf("10.%d.0.50", l.Net))
	var c1, c2 *unicastConn
	l.Hosts[0].MustDo(func() (err error) { c1, err = listenUnicast(later); return err })
	defer c1.Close()
	l.Hosts[0].IP("addr", "add", later.String()+"/24", "dev", "eth0")
	l.Hosts[1].MustDo(func() (err error) { c2, err = listenUnicast(l.Addr4(1).Addr()); return err })
	defer c2.Close()
	if err := c2.WriteAdvert(testAdvert(20), later); err != nil {
		t.Fatal(err)
	}
	if _, m := readWithin(t, c1); m.Src != l.Addr4(1).Addr() || m.Dst != later || m.TTL != 255 {
		t.Fatalf("meta %+v", m)
	}
}

func TestInterfaceSource(t *testing.T) {
	l := newTestLAN(t, 1)
	ifi := l.Hosts[0].Interface("eth0")
	var s4, s6 netip.Addr
	l.Hosts[0].MustDo(func() (err error) {
		if s4, err = interfaceSource(ifi, false); err != nil {
			return err
		}
		s6, err = interfaceSource(ifi, true)
		return err
	})
	if s4 != l.Addr4(0).Addr() || s6 != l.LinkLocal(t, 0) {
		t.Fatalf("sources %s %s", s4, s6)
	}
	lo := l.Hosts[0].Interface("lo")
	l.Hosts[0].MustDo(func() error {
		if _, err := interfaceSource(lo, true); err == nil {
			return errors.New("lo has an IPv6 link-local source?")
		}
		return nil
	})
}

func TestMemLAN(t *testing.T) {
	var l memLAN
	a4, b4, c4 := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	a := l.Conn(a4, net.HardwareAddr{2, 0, 0, 0, 0, 1})
	b := l.Conn(b4, net.HardwareAddr{2, 0, 0, 0, 0, 2})
	c := l.Conn(c4, net.HardwareAddr{2, 0, 0, 0, 0, 3})
	v6 := l.Conn(netip.MustParseAddr("fe80::1"), nil)
	msg := testAdvert(20)
	if err := a.WriteAdvert(msg, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*memConn{b, c} {
		got, m := readWithin(t, r)
		if !bytes.Equal(got, msg) || m.Src != a4 || m.Dst != vrrpGroup4 || m.TTL != 255 || m.Unicast || m.SrcMAC[5] != 1 {
			t.Fatalf("multicast: %x %+v", got, m)
		}
	}
	// Unicast to c only; a partition drops b -> c.
	l.Drop = func(from, to netip.Addr) bool { return from == b4 && to == c4 }
	a.WriteAdvert(msg, c4)
	b.WriteAdvert(msg, netip.Addr{})
	if _, m := readWithin(t, c); m.Src != a4 || !m.Unicast || m.Dst != c4 {
		t.Fatalf("unicast: %+v", m)
	}
	if _, m := readWithin(t, a); m.Src != b4 {
		t.Fatalf("a got %+v", m)
	}
	select {
	case f := <-c.ch:
		t.Fatalf("c got %+v across the partition", f.meta)
	case f := <-v6.ch:
		t.Fatalf("IPv6 conn got IPv4 frame %+v", f.meta)
	default:
	}
	c.Close()
	if _, _, err := c.ReadAdvert(make([]byte, 100)); !isClosed(err) {
		t.Fatalf("read after close: %v", err)
	}
}

// TestMulticastVLANSeparation: a conn on eth0 must not take adverts that
// arrived tagged for VLAN 10 (they belong to a conn on eth0.10), even
// though an AF_PACKET tap on eth0 sees them with the tag stripped into
// metadata by VLAN offload.
func TestMulticastVLANSeparation(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for i, h := range l.Hosts {
		if out, err := h.TryIP("link", "add", "link", "eth0", "name", "eth0.10", "type", "vlan", "id", "10"); err != nil {
			t.Skipf("no VLAN support in this kernel (8021q): %s", out)
		}
		h.IP("link", "set", "eth0.10", "up")
		h.IP("addr", "add", fmt.Sprintf("10.250.%d.%d/24", l.Net, i+1), "dev", "eth0.10")
	}
	var vlan1, plain2, vlan2 *mcastConn
	h1.MustDo(func() (err error) {
		vlan1, err = listenMulticast(h1.Interface("eth0.10"), mcastConfig{Src: netip.MustParseAddr(fmt.Sprintf("10.250.%d.1", l.Net))})
		return err
	})
	defer vlan1.Close()
	h2.MustDo(func() (err error) {
		if plain2, err = listenMulticast(h2.Interface("eth0"), mcastConfig{Src: l.Addr4(1).Addr()}); err != nil {
			return err
		}
		vlan2, err = listenMulticast(h2.Interface("eth0.10"), mcastConfig{Src: netip.MustParseAddr(fmt.Sprintf("10.250.%d.2", l.Net))})
		return err
	})
	defer plain2.Close()
	defer vlan2.Close()
	if err := vlan1.WriteAdvert(testAdvert(24), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readWithin(t, vlan2); len(got) != 24 {
		t.Fatalf("eth0.10 read %d bytes", len(got))
	}
	// Now an untagged advert; plain2's first read must be it, not the
	// tagged one.
	var c1 *mcastConn
	h1.MustDo(func() (err error) {
		c1, err = listenMulticast(h1.Interface("eth0"), mcastConfig{Src: l.Addr4(0).Addr()})
		return err
	})
	defer c1.Close()
	if err := c1.WriteAdvert(testAdvert(28), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got, m := readWithin(t, plain2); len(got) != 28 {
		t.Fatalf("eth0 conn read the VLAN 10 advert (%d bytes from %s)", len(got), m.Src)
	}
}

// TestMulticastDropsTagged injects a VLAN-tagged advert (802.1Q, VID 10)
// on the wire; the kernel moves the tag to metadata before taps see it,
// and a conn on the untagged interface must not take it.
func TestMulticastDropsTagged(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	if1 := h1.Interface("eth0")
	var c1, c2 *mcastConn
	var pc *packet.Conn
	h1.MustDo(func() (err error) {
		if c1, err = listenMulticast(if1, mcastConfig{Src: l.Addr4(0).Addr()}); err != nil {
			return err
		}
		pc, err = packet.Listen(if1, packet.Raw, 0, nil)
		return err
	})
	defer c1.Close()
	defer pc.Close()
	h2.MustDo(func() (err error) {
		c2, err = listenMulticast(h2.Interface("eth0"), mcastConfig{Src: l.Addr4(1).Addr()})
		return err
	})
	defer c2.Close()
	f, err := buildFrame(if1.HardwareAddr, multicastMAC(vrrpGroup4), l.Addr4(0).Addr(), vrrpGroup4, 1, testAdvert(24))
	if err != nil {
		t.Fatal(err)
	}
	tagged := append(append(append([]byte(nil), f[:12]...), 0x81, 0x00, 0x00, 10), f[12:]...)
	if _, err := pc.WriteTo(tagged, &packet.Addr{HardwareAddr: multicastMAC(vrrpGroup4)}); err != nil {
		t.Fatal(err)
	}
	if err := c1.WriteAdvert(testAdvert(28), netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := readWithin(t, c2); len(got) != 28 {
		t.Fatalf("conn on eth0 read the VLAN 10 advert (%d bytes)", len(got))
	}
}

// TestMulticastSurvivesLinkFlap: a link going down and up (RFC 5798
// section 6.4: FAULT and back) must not end the conn's read loop; the
// link watcher reports the flap, the conn just keeps reading.
func TestMulticastSurvivesLinkFlap(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	var c1, c2 *mcastConn
	h1.MustDo(func() (err error) {
		c1, err = listenMulticast(h1.Interface("eth0"), mcastConfig{Src: l.Addr4(0).Addr()})
		return err
	})
	defer c1.Close()
	h2.MustDo(func() (err error) {
		c2, err = listenMulticast(h2.Interface("eth0"), mcastConfig{Src: l.Addr4(1).Addr()})
		return err
	})
	defer c2.Close()
	type res struct {
		n   int
		err error
	}
	got := make(chan res, 1)
	go func() {
		n, _, err := c2.ReadAdvert(make([]byte, 1500))
		got <- res{n, err}
	}()
	h2.IP("link", "set", "eth0", "down")
	if err := c2.WriteAdvert(testAdvert(20), netip.Addr{}); err == nil {
		t.Error("send on a down interface succeeded")
	}
	h2.IP("link", "set", "eth0", "up")
	// Carrier comes back after a moment; send until one gets through.
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := c1.WriteAdvert(testAdvert(20), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-got:
			if r.err != nil || r.n != 20 {
				t.Fatalf("read across the flap: %d bytes, %v", r.n, r.err)
			}
			return
		default:
		}
		if time.Now().After(end) {
			t.Fatal("no advert after the link came back")
		}
	}
}

// TestMulticastOnDownInterface: the daemon may open its conns while the
// interface is down (FAULT at start); that must work, and adverts flow
// once it is up.
func TestMulticastOnDownInterface(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	h2.IP("link", "set", "eth0", "down")
	var c1, c2, c2v6 *mcastConn
	h2.MustDo(func() (err error) {
		ifi := h2.Interface("eth0")
		if c2, err = listenMulticast(ifi, mcastConfig{Src: l.Addr4(1).Addr()}); err != nil {
			return err
		}
		c2v6, err = listenMulticast(ifi, mcastConfig{Src: netip.MustParseAddr("fe80::2")})
		return err
	})
	defer c2.Close()
	defer c2v6.Close()
	h2.IP("link", "set", "eth0", "up")
	h1.MustDo(func() (err error) {
		c1, err = listenMulticast(h1.Interface("eth0"), mcastConfig{Src: l.Addr4(0).Addr()})
		return err
	})
	defer c1.Close()
	got := make(chan int, 1)
	go func() {
		n, _, _ := c2.ReadAdvert(make([]byte, 1500))
		got <- n
	}()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if err := c1.WriteAdvert(testAdvert(20), netip.Addr{}); err != nil {
			t.Fatal(err)
		}
		select {
		case n := <-got:
			if n != 20 {
				t.Fatalf("read %d bytes", n)
			}
			return
		default:
		}
		if time.Now().After(end) {
			t.Fatal("no advert once the interface came up")
		}
	}
}
