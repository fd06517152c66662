package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// dummyHost is a namespace with eth0 (a veth to a peer namespace: the
// dummy driver may be missing) holding 10.77.0.1/24 and
// fd77::1/64, the host's own addresses that VIP handling must never touch.
func dummyHost(t *testing.T) *testNS {
	needRoot(t)
	n := newTestNS(t, "vip")
	veth(t, n, "eth0", newTestNS(t, "vippeer"), "eth0")
	n.IP("addr", "add", "10.77.0.1/24", "dev", "eth0")
	n.IP("addr", "add", "fd77::1/64", "dev", "eth0")
	return n
}

// TestVIPAddDel adds and removes virtual addresses (RFC 5798 section
// 6.4.3: a master accepts packets for them) with the options keepalived's
// virtual_ipaddress takes, and checks them as `ip addr` shows them.
func TestVIPAddDel(t *testing.T) {
	n := dummyHost(t)
	a := netlinkAddrs{H: n.Netlink()}
	vips := []vip{
		{Prefix: netip.MustParsePrefix("10.77.0.10/24"), Dev: "eth0", Brd: netip.MustParseAddr("10.77.0.255"), Label: "eth0:1"},
		{Prefix: netip.MustParsePrefix("10.88.0.1/32"), Dev: "eth0", Scope: 253 /* link */},
		{Prefix: netip.MustParsePrefix("10.99.0.1/32"), Dev: "eth0", Peer: netip.MustParsePrefix("10.99.0.2/32")},
		{Prefix: netip.MustParsePrefix("fd77::10/64"), Dev: "eth0", NoPrefixRoute: true},
		{Prefix: netip.MustParsePrefix("fd78::10/128"), Dev: "eth0"},
	}
	for _, v := range vips {
		if err := a.Add(v); err != nil {
			t.Fatalf("add %s: %v", v, err)
		}
		// Idempotent: a second add of the same address is fine.
		if err := a.Add(v); err != nil {
			t.Fatalf("second add %s: %v", v, err)
		}
	}
	show := n.IP("-o", "addr", "show", "dev", "eth0")
	for _, want := range []string{
		"inet 10.77.0.10/24 brd 10.77.0.255 scope global secondary eth0:1",
		"inet 10.88.0.1/32 scope link eth0",
		"inet 10.99.0.1 peer 10.99.0.2/32 scope global eth0",
		"inet6 fd77::10/64 scope global nodad noprefixroute",
		"inet6 fd78::10/128 scope global nodad deprecated",
	} {
		if !strings.Contains(show, want) {
			t.Errorf("ip addr lacks %q:\n%s", want, show)
		}
	}
	// nodad: usable at once, never tentative.
	if strings.Contains(show, "tentative") {
		t.Errorf("an address is tentative:\n%s", show)
	}
	// noprefixroute: no route for fd77::/64 from the VIP (the host's
	// own fd77::1/64 has one, so look for a route with the VIP as source).
	if rt := n.IP("-6", "route", "show", "fd78::10"); !strings.Contains(rt, "fd78::10") {
		t.Errorf("fd78::10/128 has no route:\n%s", rt)
	}

	// Present finds ours and only asks about ours.
	other := vip{Prefix: netip.MustParsePrefix("10.66.0.1/32"), Dev: "eth0"}
	missingDev := vip{Prefix: netip.MustParsePrefix("10.66.0.2/32"), Dev: "nosuch0"}
	got, err := a.Present(append([]vip{other, missingDev}, vips...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vips) {
		t.Errorf("Present = %v, want the %d added", got, len(vips))
	}

	for _, v := range vips {
		if err := a.Del(v); err != nil {
			t.Fatalf("del %s: %v", v, err)
		}
		if err := a.Del(v); err != nil {
			t.Fatalf("second del %s: %v", v, err)
		}
	}
	if err := a.Del(missingDev); err != nil {
		t.Errorf("del on a missing interface: %v", err)
	}
	show = n.IP("-o", "addr", "show", "dev", "eth0")
	for _, v := range vips {
		if strings.Contains(show, " "+v.Prefix.Addr().String()+"/") {
			t.Errorf("%s still present:\n%s", v, show)
		}
	}
	// The host's own addresses are untouched.
	for _, own := range []string{"10.77.0.1/24", "fd77::1/64"} {
		if !strings.Contains(show, own) {
			t.Errorf("host address %s is gone:\n%s", own, show)
		}
	}
	if got, _ := a.Present(vips); len(got) != 0 {
		t.Errorf("Present after delete = %v", got)
	}
	// Crash cleanup after a configuration change: an address left with
	// another prefix and label still goes.
	n.IP("addr", "add", "10.77.0.30/16", "dev", "eth0", "label", "eth0:old")
	if err := a.Del(vip{Prefix: netip.MustParsePrefix("10.77.0.30/24"), Dev: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if show := n.IP("-o", "addr"); strings.Contains(show, "10.77.0.30") || !strings.Contains(show, "10.77.0.1/24") {
		t.Errorf("after deleting 10.77.0.30:\n%s", show)
	}
	if err := a.Add(vip{Prefix: netip.MustParsePrefix("10.1.1.1/32"), Dev: "nosuch0"}); err == nil {
		t.Error("add on a missing interface succeeded")
	}
}

// TestVIPThreadNamespace checks the zero netlinkAddrs, which works in the
// calling thread's namespace as the daemon uses it.
func TestVIPThreadNamespace(t *testing.T) {
	n := dummyHost(t)
	v := vip{Prefix: netip.MustParsePrefix("10.77.0.20/24"), Dev: "eth0"}
	n.MustDo(func() error { return netlinkAddrs{}.Add(v) })
	if show := n.IP("-o", "addr"); !strings.Contains(show, "10.77.0.20/24") {
		t.Fatalf("not added in the namespace:\n%s", show)
	}
	n.MustDo(func() error { return netlinkAddrs{}.Del(v) })
	if show := n.IP("-o", "addr"); strings.Contains(show, "10.77.0.20/24") {
		t.Fatalf("not removed:\n%s", show)
	}
}

func TestFakeAddrs(t *testing.T) {
	var f fakeAddrs
	v := vip{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Dev: "eth0"}
	if err := f.Del(v); err != nil || f.Has(v) {
		t.Fatal("del of a missing vip")
	}
	f.Add(v)
	f.Add(v)
	if got, _ := f.Present([]vip{v, {Prefix: netip.MustParsePrefix("10.0.0.2/24"), Dev: "eth0"}}); len(got) != 1 {
		t.Fatalf("Present = %v", got)
	}
	f.Del(v)
	if f.Has(v) {
		t.Fatal("still there after Del")
	}
	f.Err = os.ErrPermission
	if f.Add(v) == nil {
		t.Fatal("Err not returned")
	}
}

func TestFakeVMACs(t *testing.T) {
	var f fakeVMACs
	ifi, err := f.Create(vmacConfig{Parent: "eth0", VRID: 3})
	if err != nil || ifi.Name != "vrrp.3" || ifi.HardwareAddr.String() != "00:00:5e:00:01:03" {
		t.Fatalf("%+v %v", ifi, err)
	}
	f.Delete(vmacConfig{Parent: "eth0", VRID: 3})
	if len(f.Live) != 0 {
		t.Fatal("still live")
	}
}

// TestVMAC creates keepalived's use_vmac macvlan and checks its mode, MAC
// (RFC 5798 section 7.3), sysctls, and that Delete removes it and
// restores the parent.
func TestVMAC(t *testing.T) {
	n := dummyHost(t)
	m := &netlinkVMACs{H: n.Netlink()}
	cfg := vmacConfig{Parent: "eth0", VRID: 42}
	var ifi4 string
	n.MustDo(func() error {
		ifi, err := m.Create(cfg)
		if err != nil {
			return err
		}
		ifi4 = ifi.HardwareAddr.String()
		// Again: an existing right one is reused.
		_, err = m.Create(cfg)
		return err
	})
	if ifi4 != "00:00:5e:00:01:2a" {
		t.Errorf("VMAC interface MAC = %s", ifi4)
	}
	d := n.IP("-d", "link", "show", "vrrp.42")
	for _, want := range []string{"vrrp.42@eth0", "00:00:5e:00:01:2a", "macvlan mode private", "UP"} {
		if !strings.Contains(d, want) {
			t.Errorf("ip -d link lacks %q:\n%s", want, d)
		}
	}
	sys := func(ifname, key string) string {
		out, err := n.Exec("cat", "/proc/sys/net/ipv4/conf/"+ifname+"/"+key)
		if err != nil {
			t.Fatalf("%s %s: %v", ifname, key, err)
		}
		return strings.TrimSpace(out)
	}
	for key, want := range map[string]string{"arp_ignore": "1", "accept_local": "1", "rp_filter": "0", "promote_secondaries": "1"} {
		if got := sys("vrrp.42", key); got != want {
			t.Errorf("vrrp.42 %s = %s, want %s", key, got, want)
		}
	}
	for key, want := range map[string]string{"arp_ignore": "1", "arp_filter": "1", "arp_announce": "2"} {
		if got := sys("eth0", key); got != want {
			t.Errorf("eth0 %s = %s, want %s", key, got, want)
		}
	}
	// IPv6 VMAC on the same parent: 00:00:5e:00:02:VRID, no address made
	// from the VMAC (RFC 5798 section 7.4) but the parent's link-local.
	cfg6 := vmacConfig{Parent: "eth0", VRID: 42, IPv6: true, Name: "vrrp6.42"}
	n.MustDo(func() error { _, err := m.Create(cfg6); return err })
	d6 := n.IP("-d", "addr", "show", "vrrp6.42")
	if !strings.Contains(d6, "00:00:5e:00:02:2a") || !strings.Contains(d6, "inet6 fe80::") {
		t.Errorf("IPv6 VMAC:\n%s", d6)
	}
	if out, _ := n.Exec("cat", "/proc/sys/net/ipv6/conf/vrrp6.42/addr_gen_mode"); strings.TrimSpace(out) != "1" {
		t.Errorf("vrrp6.42 addr_gen_mode = %q, want 1 (none)", out)
	}
	if strings.Contains(d6, "fe80::200:5eff:fe00:22a") {
		t.Errorf("IPv6 VMAC has a link-local made from the VMAC:\n%s", d6)
	}

	// A second IPv4 VMAC on the same parent keeps the parent's sysctls
	// until both are gone.
	cfg2 := vmacConfig{Parent: "eth0", VRID: 43}
	n.MustDo(func() error { _, err := m.Create(cfg2); return err })
	n.MustDo(func() error { return m.Delete(cfg) })
	if got := sys("eth0", "arp_ignore"); got != "1" {
		t.Errorf("eth0 arp_ignore = %s with vrrp.43 still there, want 1", got)
	}
	for _, c := range []vmacConfig{cfg, cfg2, cfg6} {
		if err := n.Do(func() error { return m.Delete(c) }); err != nil {
			t.Fatal(err)
		}
		if err := n.Do(func() error { return m.Delete(c) }); err != nil {
			t.Fatalf("second delete: %v", err)
		}
	}
	if out := n.IP("link"); strings.Contains(out, "vrrp") {
		t.Errorf("VMAC left behind:\n%s", out)
	}
	for key, want := range map[string]string{"arp_ignore": "0", "arp_filter": "0", "arp_announce": "0"} {
		if got := sys("eth0", key); got != want {
			t.Errorf("eth0 %s = %s after delete, want %s restored", key, got, want)
		}
	}
	// Another kind of interface with the VMAC's name is never deleted or
	// reused.
	n.IP("link", "add", "vrrp.9", "type", "veth", "peer", "name", "vrrp.9p")
	if err := n.Do(func() error { return m.Delete(vmacConfig{Parent: "eth0", VRID: 9}) }); err == nil {
		t.Error("delete of a veth named vrrp.9 succeeded")
	}
	if err := n.Do(func() error { _, err := m.Create(vmacConfig{Parent: "eth0", VRID: 9}); return err }); err == nil {
		t.Error("create over a veth named vrrp.9 succeeded")
	}
	if !strings.Contains(n.IP("link"), "vrrp.9") {
		t.Error("the veth vrrp.9 was removed")
	}
}

// TestVMACClientSeesVMAC: with the VIP on the VMAC interface, a client
// resolving the VIP always gets 00:00:5e:00:01:VRID (RFC 5798 section
// 7.3), never the parent's MAC; that is what the parent's arp_ignore=1
// is for. Flushed and resolved several times, since two replies would
// race.
func TestVMACClientSeesVMAC(t *testing.T) {
	l := newTestLAN(t, 2)
	r, client := l.Hosts[0], l.Hosts[1]
	m := &netlinkVMACs{H: r.Netlink()}
	r.MustDo(func() error { _, err := m.Create(vmacConfig{Parent: "eth0", VRID: 7}); return err })
	v := netip.MustParseAddr(fmt.Sprintf("10.%d.0.100", l.Net))
	if err := (netlinkAddrs{H: r.Netlink()}).Add(vip{Prefix: netip.PrefixFrom(v, 24), Dev: "vrrp.7"}); err != nil {
		t.Fatal(err)
	}
	// IPv6: its own VMAC, 00:00:5e:00:02:VRID.
	r.MustDo(func() error {
		_, err := m.Create(vmacConfig{Parent: "eth0", VRID: 7, IPv6: true, Name: "vrrp6.7"})
		return err
	})
	v6 := netip.MustParseAddr(fmt.Sprintf("fd00:%d::100", l.Net))
	if err := (netlinkAddrs{H: r.Netlink()}).Add(vip{Prefix: netip.PrefixFrom(v6, 64), Dev: "vrrp6.7"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		client.IP("neigh", "flush", "dev", "eth0")
		for _, tc := range []struct {
			ip  netip.Addr
			mac string
		}{{v, "00:00:5e:00:01:07"}, {v6, "00:00:5e:00:02:07"}} {
			if out, err := client.Exec("ping", "-c1", "-W2", tc.ip.String()); err != nil {
				t.Fatalf("ping the VIP on the VMAC: %v: %s", err, out)
			}
			if n := client.IP("neigh", "show", tc.ip.String()); !strings.Contains(n, tc.mac) {
				t.Fatalf("client resolved %s to %q, want the VMAC %s", tc.ip, n, tc.mac)
			}
		}
	}
}

// TestPromoteSecondaries: with promote_secondaries set, removing a VIP
// that became the primary address of its subnet leaves the other
// addresses of that subnet alone; restore puts the old value back.
func TestPromoteSecondaries(t *testing.T) {
	n := dummyHost(t)
	a := netlinkAddrs{H: n.Netlink()}
	first := vip{Prefix: netip.MustParsePrefix("10.55.0.1/24"), Dev: "eth0"}
	second := vip{Prefix: netip.MustParsePrefix("10.55.0.2/24"), Dev: "eth0"}
	var restore func() error
	n.MustDo(func() (err error) { restore, err = promoteSecondaries("eth0"); return err })
	for _, v := range []vip{first, second} {
		if err := a.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Del(first); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.Present([]vip{second}); len(got) != 1 {
		t.Fatalf("10.55.0.2 went with the primary 10.55.0.1:\n%s", n.IP("-o", "addr"))
	}
	n.MustDo(restore)
	if out, _ := n.Exec("cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries"); strings.TrimSpace(out) != "0" {
		t.Fatalf("promote_secondaries after restore = %q", out)
	}
	// And the failure it prevents, so the test means something.
	a.Add(first)
	a.Add(vip{Prefix: netip.MustParsePrefix("10.55.0.3/24"), Dev: "eth0"})
	a.Del(second) // primary now
	if got, _ := a.Present([]vip{first}); len(got) != 0 {
		t.Fatalf("without promote_secondaries the kernel kept the secondaries; the test proves nothing")
	}
}
