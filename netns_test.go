package main

// A test harness of network namespaces: every namespace, veth and bridge a
// test makes lives inside namespaces named vipd-netio-<pid>-*, which
// t.Cleanup deletes even when the test fails. Nothing touches the host's
// own interfaces.

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// needRoot skips t unless it runs as root with ip(8) at hand.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8) from iproute2")
	}
}

var nsSeq atomic.Int32

// testNS is a network namespace made for one test.
type testNS struct {
	t      testing.TB
	Name   string
	Handle netns.NsHandle
	nl     *netlink.Handle
}

// newTestNS makes a namespace named vipd-netio-<pid>-<n>-<tag>, with
// IPv6 duplicate address detection off (so test addresses work at once)
// and loopback up.
func newTestNS(t testing.TB, tag string) *testNS {
	t.Helper()
	return newTestNSPrefix(t, "netio", tag)
}

// newTestNSPrefix is newTestNS for the tests of another helper tag: the
// namespace is vipd-<helper>-<pid>-<n>-<tag>.
func newTestNSPrefix(t testing.TB, helper, tag string) *testNS {
	t.Helper()
	name := fmt.Sprintf("vipd-%s-%d-%d-%s", helper, os.Getpid(), nsSeq.Add(1), tag)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &testNS{t: t, Name: name}
	t.Cleanup(func() {
		if n.nl != nil {
			n.nl.Close()
		}
		if n.Handle.IsOpen() {
			n.Handle.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	n.Handle = h
	n.sysctl("net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	n.IP("link", "set", "lo", "up")
	return n
}

// IP runs `ip -n NS args...` and returns its output; failure is fatal.
func (n *testNS) IP(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TryIP is IP returning the error instead of failing.
func (n *testNS) TryIP(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"-n", n.Name}, args...)...).CombinedOutput()
	return string(out), err
}

// Exec runs a command inside the namespace.
func (n *testNS) Exec(name string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...).CombinedOutput()
	return string(out), err
}

func (n *testNS) sysctl(kv ...string) {
	n.t.Helper()
	if out, err := n.Exec("sysctl", append([]string{"-qw"}, kv...)...); err != nil {
		n.t.Fatalf("sysctl in %s: %v: %s", n.Name, err, out)
	}
}

// Netlink returns a netlink handle bound to the namespace.
func (n *testNS) Netlink() *netlink.Handle {
	n.t.Helper()
	if n.nl == nil {
		h, err := netlink.NewHandleAt(n.Handle)
		if err != nil {
			n.t.Fatalf("netlink handle in %s: %v", n.Name, err)
		}
		n.nl = h
	}
	return n.nl
}

// Do runs fn on an OS thread switched into the namespace. The thread is
// never switched back: it is locked and exits with the goroutine, so no
// other goroutine can inherit the namespace. Sockets fn opens stay in the
// namespace and may be used from any goroutine afterwards; goroutines fn
// starts do not run in the namespace.
func (n *testNS) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.Handle); err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", n.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// MustDo is Do, failing the test on error.
func (n *testNS) MustDo(fn func() error) {
	n.t.Helper()
	if err := n.Do(fn); err != nil {
		n.t.Fatal(err)
	}
}

// Interface returns the named interface as seen inside the namespace.
func (n *testNS) Interface(name string) *net.Interface {
	n.t.Helper()
	var ifi *net.Interface
	n.MustDo(func() (err error) {
		ifi, err = net.InterfaceByName(name)
		return err
	})
	return ifi
}

// veth links ifA in a to ifB in b and brings both up.
func veth(t testing.TB, a *testNS, ifA string, b *testNS, ifB string) {
	t.Helper()
	a.IP("link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.Name)
	a.IP("link", "set", ifA, "up")
	b.IP("link", "set", ifB, "up")
}

// testLAN is one Ethernet segment: a bridge in its own namespace and N
// hosts, each with eth0 attached to it. Host i (0-based) has
// 10.<net>.0.<i+1>/24 and fd00:<net>::<i+1>/64.
type testLAN struct {
	Bridge *testNS
	Hosts  []*testNS
	Net    int
}

var lanSeq atomic.Int32

func newTestLAN(t testing.TB, hosts int) *testLAN {
	t.Helper()
	return newTestLANPrefix(t, "netio", hosts)
}

// newTestLANPrefix is newTestLAN with namespaces named for helper (see
// newTestNSPrefix).
func newTestLANPrefix(t testing.TB, helper string, hosts int) *testLAN {
	t.Helper()
	needRoot(t)
	l := &testLAN{Bridge: newTestNSPrefix(t, helper, "br"), Net: int(lanSeq.Add(1))}
	l.Bridge.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.Bridge.IP("link", "set", "br0", "up")
	for i := 0; i < hosts; i++ {
		h := newTestNSPrefix(t, helper, fmt.Sprintf("h%d", i+1))
		port := fmt.Sprintf("p%d", i+1)
		veth(t, h, "eth0", l.Bridge, port)
		l.Bridge.IP("link", "set", port, "master", "br0")
		h.IP("addr", "add", l.Addr4(i).String(), "dev", "eth0")
		h.IP("addr", "add", l.Addr6(i).String(), "dev", "eth0")
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// Addr4 and Addr6 are host i's addresses with their prefix.
func (l *testLAN) Addr4(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("10.%d.0.%d/24", l.Net, i+1))
}

func (l *testLAN) Addr6(i int) netip.Prefix {
	return netip.MustParsePrefix(fmt.Sprintf("fd00:%d::%d/64", l.Net, i+1))
}

// LinkLocal returns host i's link-local address on eth0.
func (l *testLAN) LinkLocal(t testing.TB, i int) netip.Addr {
	t.Helper()
	link, err := l.Hosts[i].Netlink().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	list, err := l.Hosts[i].Netlink().AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
			return ip
		}
	}
	t.Fatalf("%s: eth0 has no link-local address", l.Hosts[i].Name)
	return netip.Addr{}
}

// TestHarnessLAN checks the harness itself: hosts on one LAN reach each
// other and the namespaces are really separate.
func TestHarnessLAN(t *testing.T) {
	l := newTestLAN(t, 2)
	out, err := l.Hosts[0].Exec("ping", "-c1", "-W2", l.Addr4(1).Addr().String())
	if err != nil {
		t.Fatalf("ping across the LAN: %v: %s", err, out)
	}
	if !bytes.Contains([]byte(l.Hosts[0].IP("addr")), []byte(l.Addr4(0).Addr().String())) {
		t.Fatal("host 1 lacks its address")
	}
	if bytes.Contains([]byte(l.Hosts[1].IP("addr")), []byte(l.Addr4(0).Addr().String()+"/")) {
		t.Fatal("host 2 sees host 1's address: namespaces are not separate")
	}
}
