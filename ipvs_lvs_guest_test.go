package main

// LVS-NAT and LVS-DR traffic inside the IPVS test VM: a client namespace,
// the director (the guest's root namespace) and two real-server namespaces,
// each running a tiny TCP server started by this test binary. Skipped
// outside the VM (needGuest).

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// inNS runs f on a thread in ns. The goroutine keeps its thread locked and
// exits, so Go discards the thread instead of reusing it in the wrong
// namespace.
func inNS(ns netns.NsHandle, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			ch <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ch <- f()
	}()
	return <-ch
}

// newNS makes an unnamed network namespace with lo up.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	ch := make(chan netns.NsHandle, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			ns.Close()
			errc <- err
			return
		}
		ch <- ns
	}()
	select {
	case ns := <-ch:
		t.Cleanup(func() { ns.Close() })
		return ns
	case err := <-errc:
		t.Fatalf("new netns: %v", err)
	}
	return 0
}

func sysctl(path, val string) error {
	return os.WriteFile("/proc/sys/"+strings.ReplaceAll(path, ".", "/"), []byte(val), 0o644)
}

// veth creates a veth pair in the current (root) namespace and moves the
// peer into ns. The root end is returned, still down.
func guestVeth(t *testing.T, name, peer string, ns netns.NsHandle) netlink.Link {
	t.Helper()
	la := netlink.NewLinkAttrs()
	la.Name = name
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: la, PeerName: peer}); err != nil {
		t.Fatalf("add veth %s: %v", name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(l) })
	p, err := netlink.LinkByName(peer)
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(p, int(ns)); err != nil {
		t.Fatalf("move %s: %v", peer, err)
	}
	return l
}

// ifup brings link name up in the current namespace with addrs and an
// optional default gateway.
func ifup(name string, gw string, addrs ...string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		na, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if na.IP.To4() == nil {
			na.Flags |= unix.IFA_F_NODAD // usable at once, not tentative
		}
		if err := netlink.AddrAdd(l, na); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, name, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	if gw != "" {
		if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(gw)}); err != nil {
			return fmt.Errorf("default via %s: %w", gw, err)
		}
	}
	return nil
}

// serveName listens on addr inside ns and answers every connection with
// name and a newline.
func serveName(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, name, err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, name+"\n")
			c.Close()
		}
	}()
}

// hits opens n connections to addr from ns and counts which server
// answered.
func hits(t *testing.T, ns netns.NsHandle, addr string, n int) map[string]int {
	t.Helper()
	got := make(map[string]int)
	err := inNS(ns, func() error {
		for i := 0; i < n; i++ {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err != nil {
				return fmt.Errorf("connection %d to %s: %w", i, addr, err)
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil {
				return fmt.Errorf("connection %d to %s: read: %w", i, addr, err)
			}
			got[strings.TrimSpace(string(b))]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// lvsRig drives one virtual server through ipvsManager as health checks
// would, and checks which servers new connections reach.
type lvsRig struct {
	t      *testing.T
	m      *ipvsManager
	vs     *ipvsVirtualServer
	client netns.NsHandle
	vip    string
}

func newLVSRig(t *testing.T, k ipvsKernel, vs *ipvsVirtualServer, client netns.NsHandle, vip string) *lvsRig {
	t.Helper()
	m, _, err := newIPVSManager(k, []*ipvsVirtualServer{vs}, false)
	if err != nil {
		t.Fatal(err)
	}
	return &lvsRig{t: t, m: m, vs: vs, client: client, vip: vip}
}

func (l *lvsRig) phase(name string, up [2]bool, inhibit bool, want map[string]bool) quorumEvent {
	l.t.Helper()
	for i := range l.vs.Reals {
		l.vs.Reals[i].Up = up[i]
		l.vs.Reals[i].Inhibit = inhibit
	}
	_, ev, err := l.m.Update(l.vs)
	if err != nil {
		l.t.Fatalf("%s: %v", name, err)
	}
	const n = 12
	got := hits(l.t, l.client, l.vip, n)
	total := 0
	for srv, c := range got {
		total += c
		if !want[srv] {
			l.t.Errorf("%s: %d of %d new connections reached %s: %v", name, c, n, srv, got)
		}
	}
	for srv := range want {
		if got[srv] == 0 {
			l.t.Errorf("%s: no connection reached %s: %v", name, srv, got)
		}
	}
	l.t.Logf("%s: %v (ipvsadm: %s)", name, got, strings.ReplaceAll(ipvsadm(l.t), "\n", " | "))
	if total != n {
		l.t.Errorf("%s: %d answers for %d connections", name, total, n)
	}
	return ev
}

func (l *lvsRig) run() {
	both := map[string]bool{"rs1": true, "rs2": true}
	l.phase("both up", [2]bool{true, true}, false, both)
	l.phase("rs2 failed, inhibit_on_failure (weight 0)", [2]bool{true, false}, true, map[string]bool{"rs1": true})
	if out := ipvsadm(l.t); !strings.Contains(out, l.vs.Reals[1].Dest.String()+" ") {
		l.t.Errorf("inhibited rs2 not in the table:\n%s", out)
	}
	l.phase("rs2 back", [2]bool{true, true}, true, both)
	l.phase("rs1 failed, removed", [2]bool{false, true}, false, map[string]bool{"rs2": true})
	if out := ipvsadm(l.t); strings.Contains(out, l.vs.Reals[0].Dest.String()+" ") {
		l.t.Errorf("failed rs1 still in the table:\n%s", out)
	}
	l.phase("rs1 back", [2]bool{true, true}, false, both)
	if l.vs.Pool.Sorry != nil {
		if ev := l.phase("both failed: sorry server", [2]bool{false, false}, false, map[string]bool{"sorry": true}); ev != quorumLost {
			l.t.Errorf("quorum event %v, want quorumLost", ev)
		}
		if ev := l.phase("rs2 back: quorum regained", [2]bool{false, true}, false, map[string]bool{"rs2": true}); ev != quorumGained {
			l.t.Errorf("quorum event %v, want quorumGained", ev)
		}
	}
	if _, err := l.m.Stop(false); err != nil {
		l.t.Fatal(err)
	}
	err := inNS(l.client, func() error {
		c, err := net.DialTimeout("tcp", l.vip, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	if err == nil {
		l.t.Errorf("connection to %s succeeded after the service was released", l.vip)
	}
}

// LVS-NAT: client 10.0.0.2 -> VIP 10.0.0.1:80 on the director -> real
// servers 10.1.{1,2}.2:8080 whose default route is the director.
func TestIPVSGuestNAT(t *testing.T) {
	k := needGuest(t)
	client, rs1, rs2, sorry := natTopology(t, "nat")
	serveName(t, rs1, "10.1.1.2:8080", "rs1")
	serveName(t, rs2, "10.1.2.2:8080", "rs2")
	serveName(t, sorry, "10.1.3.2:8080", "sorry")
	sorryDest := nat("10.1.3.2:8080", 1)
	vs := &ipvsVirtualServer{Services: []ipvsService{tcpSvc("10.0.0.1:80", "rr")}, Pool: poolConfig{Sorry: &sorryDest},
		Reals: []poolMember{{Dest: nat("10.1.1.2:8080", 1)}, {Dest: nat("10.1.2.2:8080", 1)}}}
	newLVSRig(t, k, vs, client, "10.0.0.1:80").run()
}

// natTopology builds the LVS-NAT network: client 10.0.0.2 on the director's
// 10.0.0.0/24, real servers 10.1.1.2, 10.1.2.2 and 10.1.3.2 (the sorry
// server), each routed through the director.
func natTopology(t *testing.T, prefix string) (client, rs1, rs2, sorry netns.NsHandle) {
	t.Helper()
	client, rs1, rs2, sorry = newNS(t), newNS(t), newNS(t), newNS(t)
	if err := sysctl("net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	guestVeth(t, prefix+"-c0", "eth0", client)
	guestVeth(t, prefix+"-r1", "eth0", rs1)
	guestVeth(t, prefix+"-r2", "eth0", rs2)
	guestVeth(t, prefix+"-s", "eth0", sorry)
	for _, e := range []error{
		ifup(prefix+"-c0", "", "10.0.0.1/24"),
		ifup(prefix+"-r1", "", "10.1.1.1/24"),
		ifup(prefix+"-r2", "", "10.1.2.1/24"),
		ifup(prefix+"-s", "", "10.1.3.1/24"),
		inNS(client, func() error { return ifup("eth0", "", "10.0.0.2/24") }),
		inNS(rs1, func() error { return ifup("eth0", "10.1.1.1", "10.1.1.2/24") }),
		inNS(rs2, func() error { return ifup("eth0", "10.1.2.1", "10.1.2.2/24") }),
		inNS(sorry, func() error { return ifup("eth0", "10.1.3.1", "10.1.3.2/24") }),
	} {
		if e != nil {
			t.Fatal(e)
		}
	}
	return client, rs1, rs2, sorry
}

// serveNameUDP answers every datagram to addr inside ns with name.
func serveNameUDP(t *testing.T, ns netns.NsHandle, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := inNS(ns, func() (err error) {
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, name, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name), from)
		}
	}()
}

// Persistence (persistence_timeout) sends one client to one real server;
// UDP services balance datagrams from new source ports.
func TestIPVSGuestNATPersistenceUDP(t *testing.T) {
	k := needGuest(t)
	client, rs1, rs2, _ := natTopology(t, "pers")
	serveName(t, rs1, "10.1.1.2:8080", "rs1")
	serveName(t, rs2, "10.1.2.2:8080", "rs2")
	serveNameUDP(t, rs1, "10.1.1.2:5353", "rs1")
	serveNameUDP(t, rs2, "10.1.2.2:5353", "rs2")
	r := newIPVSReconciler(k)
	t.Cleanup(func() { r.Release(false) })
	persistent := ipvsService{Protocol: protoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Scheduler: "rr", Timeout: 300}
	udp := ipvsService{Protocol: protoUDP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53, Scheduler: "rr"}
	if _, err := r.Apply([]ipvsVirtual{
		{persistent, []ipvsDest{nat("10.1.1.2:8080", 1), nat("10.1.2.2:8080", 1)}},
		{udp, []ipvsDest{nat("10.1.1.2:5353", 1), nat("10.1.2.2:5353", 1)}},
	}); err != nil {
		t.Fatal(err)
	}
	if got := hits(t, client, "10.0.0.1:80", 10); len(got) != 1 {
		t.Errorf("persistent service spread one client over %v", got)
	}
	got := make(map[string]int)
	err := inNS(client, func() error {
		for i := 0; i < 10; i++ {
			c, err := net.Dial("udp", "10.0.0.1:53")
			if err != nil {
				return err
			}
			c.SetDeadline(time.Now().Add(3 * time.Second))
			b := make([]byte, 64)
			_, err = c.Write([]byte("q"))
			var n int
			if err == nil {
				n, err = c.Read(b)
			}
			c.Close()
			if err != nil {
				return fmt.Errorf("udp query %d: %w", i, err)
			}
			got[string(b[:n])]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["rs1"] == 0 || got["rs2"] == 0 || got["rs1"]+got["rs2"] != 10 {
		t.Errorf("udp answers %v, want both real servers", got)
	}
}

// LVS-DR: client, director and real servers share one bridge; the VIP
// 10.2.0.100 is on the director and on the real servers' lo (which do not
// answer ARP for it), and replies go from the real servers straight to the
// client.
func TestIPVSGuestDR(t *testing.T) {
	k := needGuest(t)
	client, rs1, rs2 := newNS(t), newNS(t), newNS(t)
	la := netlink.NewLinkAttrs()
	la.Name = "dr-br"
	br := &netlink.Bridge{LinkAttrs: la}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	for _, p := range []struct {
		name string
		ns   netns.NsHandle
	}{{"dr-c", client}, {"dr-r1", rs1}, {"dr-r2", rs2}} {
		l := guestVeth(t, p.name, "eth0", p.ns)
		if err := netlink.LinkSetMaster(l, br); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	rsUp := func(addr string) func() error {
		return func() error { return drRealServerUp("10.2.0.100/32", addr) }
	}
	for _, e := range []error{
		ifup("dr-br", "", "10.2.0.1/24", "10.2.0.100/32"),
		inNS(client, func() error { return ifup("eth0", "", "10.2.0.2/24") }),
		inNS(rs1, rsUp("10.2.0.11/24")),
		inNS(rs2, rsUp("10.2.0.12/24")),
	} {
		if e != nil {
			t.Fatal(e)
		}
	}
	serveName(t, rs1, "10.2.0.100:80", "rs1")
	serveName(t, rs2, "10.2.0.100:80", "rs2")
	dr := func(a string) ipvsDest {
		return ipvsDest{Addr: netip.MustParseAddr(a), Port: 80, Weight: 1, Method: methodDR}
	}
	vs := &ipvsVirtualServer{Services: []ipvsService{tcpSvc("10.2.0.100:80", "rr")},
		Reals: []poolMember{{Dest: dr("10.2.0.11")}, {Dest: dr("10.2.0.12")}}}
	newLVSRig(t, k, vs, client, "10.2.0.100:80").run()
}

// LVS-NAT over IPv6: client fd00:a::2 -> VIP [fd00:a::1]:80 -> real servers
// [fd00:1::2]:8080 and [fd00:2::2]:8080.
func TestIPVSGuestNAT6(t *testing.T) {
	k := needGuest(t)
	client, rs1, rs2 := newNS(t), newNS(t), newNS(t)
	if err := sysctl("net.ipv6.conf.all.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	guestVeth(t, "nat6-c0", "eth0", client)
	guestVeth(t, "nat6-r1", "eth0", rs1)
	guestVeth(t, "nat6-r2", "eth0", rs2)
	for _, e := range []error{
		ifup("nat6-c0", "", "fd00:a::1/64"),
		ifup("nat6-r1", "", "fd00:1::1/64"),
		ifup("nat6-r2", "", "fd00:2::1/64"),
		inNS(client, func() error { return ifup("eth0", "", "fd00:a::2/64") }),
		inNS(rs1, func() error { return ifup("eth0", "fd00:1::1", "fd00:1::2/64") }),
		inNS(rs2, func() error { return ifup("eth0", "fd00:2::1", "fd00:2::2/64") }),
	} {
		if e != nil {
			t.Fatal(e)
		}
	}
	serveName(t, rs1, "[fd00:1::2]:8080", "rs1")
	serveName(t, rs2, "[fd00:2::2]:8080", "rs2")
	vs := &ipvsVirtualServer{Services: []ipvsService{tcpSvc("[fd00:a::1]:80", "wrr")},
		Reals: []poolMember{{Dest: nat("[fd00:1::2]:8080", 1)}, {Dest: nat("[fd00:2::2]:8080", 2)}}}
	l := newLVSRig(t, k, vs, client, "[fd00:a::1]:80")
	l.phase("both up", [2]bool{true, true}, false, map[string]bool{"rs1": true, "rs2": true})
	l.phase("rs1 failed", [2]bool{false, true}, false, map[string]bool{"rs2": true})
	if out := ipvsadm(t); !strings.Contains(out, "TCP [fd00:a::1]:80 wrr") || !strings.Contains(out, "-> [fd00:2::2]:8080 Masq 2") || strings.Contains(out, "fd00:1::2") {
		t.Errorf("ipvsadm -Ln:\n%s", out)
	}
}

// drRealServerUp configures an LVS-DR real server in the current namespace:
// the VIP on lo, never answered or announced over ARP (arp_ignore=1,
// arp_announce=2), and addr on eth0.
func drRealServerUp(vip, addr string) error {
	for _, kv := range [][2]string{{"net.ipv4.conf.all.arp_ignore", "1"}, {"net.ipv4.conf.all.arp_announce", "2"}} {
		if err := sysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	a, err := netlink.ParseAddr(vip)
	if err != nil {
		return err
	}
	if err := netlink.AddrAdd(lo, a); err != nil {
		return err
	}
	return ifup("eth0", "", addr)
}
