package main

// Interop of the I/O layer with the real keepalived (Debian's package):
// its adverts reach our conns with the fields the validation ladder needs,
// and our frames pass keepalived's own checks.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// lockedBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runKeepalived starts keepalived's VRRP process in ns with conf and
// stops it at cleanup. Its console log is returned.
func runKeepalived(t *testing.T, ns *testNS, conf string) *lockedBuffer {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("needs keepalived (apt-get install keepalived)")
	}
	dir := t.TempDir()
	cf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "-n", "-l", "-G", "-D", "--vrrp",
		"-f", cf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
	log := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("keepalived log:\n%s", log.String())
		}
	})
	return log
}

// waitLog waits for s in keepalived's log; the bound only guards against
// a hung test.
func waitLog(t *testing.T, log *lockedBuffer, s string) {
	t.Helper()
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(log.String(), s) {
			return
		}
	}
	t.Fatalf("keepalived never logged %q", s)
}

// TestKeepalivedAdvertsReachUs: keepalived as master (VRRPv3 at 100 ms,
// IPv4 and IPv6) and our multicast conn on a peer: the advert arrives with
// TTL 255 (RFC 5798 section 7.1 check), the group as destination, the
// master's interface MAC and primary address (link-local for IPv6,
// section 5.1.2.1), and exactly the VRRP message (8 bytes + addresses).
func TestKeepalivedAdvertsReachUs(t *testing.T) {
	l := newTestLAN(t, 2)
	vipA := fmt.Sprintf("10.%d.0.100", l.Net)
	vipB := fmt.Sprintf("fd00:%d::100", l.Net)
	log := runKeepalived(t, l.Hosts[0], fmt.Sprintf(`
vrrp_instance V4 {
	state MASTER
	interface eth0
	virtual_router_id 51
	priority 200
	version 3
	advert_int 0.1
	virtual_ipaddress {
		%s/24
	}
}
vrrp_instance V6 {
	state MASTER
	interface eth0
	virtual_router_id 52
	priority 200
	version 3
	advert_int 0.1
	virtual_ipaddress {
		%s/64
	}
}
`, vipA, vipB))
	if1 := l.Hosts[0].Interface("eth0")
	if2 := l.Hosts[1].Interface("eth0")
	for _, tc := range []struct {
		name string
		src  netip.Addr
		peer netip.Addr
		vrid byte
		n    int
	}{
		{"ipv4", l.Addr4(1).Addr(), l.Addr4(0).Addr(), 51, 8 + 4},
		{"ipv6", l.LinkLocal(t, 1), l.LinkLocal(t, 0), 52, 8 + 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *mcastConn
			l.Hosts[1].MustDo(func() (err error) {
				c, err = listenMulticast(if2, mcastConfig{Src: tc.src})
				return err
			})
			defer c.Close()
			for {
				got, m := readWithin(t, c)
				if len(got) < 2 || got[1] != tc.vrid {
					continue // the other instance
				}
				if got[0] != 0x31 || len(got) != tc.n {
					t.Fatalf("advert %x: want version 3 type 1 and %d bytes", got, tc.n)
				}
				if m.TTL != 255 || m.Src != tc.peer || m.SrcMAC.String() != if1.HardwareAddr.String() || !m.Dst.IsMulticast() {
					t.Fatalf("meta %+v: want TTL 255 from %s (%s) to the group", m, tc.peer, if1.HardwareAddr)
				}
				return
			}
		})
	}
	waitLog(t, log, "(V4) Entering MASTER STATE")
}

// vrrp3Advert builds a VRRPv3 advert (RFC 5798 section 5.2) with its
// checksum over the pseudo-header (section 5.2.8), as keepalived checks
// it. The codec proper lives in packet.go; this keeps the I/O tests
// independent of it.
func vrrp3Advert(vrid, prio byte, intervalCS uint16, src, dst netip.Addr, addrs ...netip.Addr) []byte {
	b := []byte{0x31, vrid, prio, byte(len(addrs)), byte(intervalCS >> 8), byte(intervalCS), 0, 0}
	for _, a := range addrs {
		b = append(b, a.AsSlice()...)
	}
	var ph []byte
	ph = append(ph, src.AsSlice()...)
	ph = append(ph, dst.AsSlice()...)
	if src.Is4() {
		ph = append(ph, 0, vrrpProto, byte(len(b)>>8), byte(len(b)))
	} else {
		ph = binary.BigEndian.AppendUint32(ph, uint32(len(b)))
		ph = append(ph, 0, 0, 0, vrrpProto)
	}
	binary.BigEndian.PutUint16(b[6:8], ipChecksum(append(ph, b...)))
	return b
}

// TestKeepalivedHearsUs: keepalived as BACKUP with priority 100 and our
// conn sending priority 250 adverts. RFC 5798 section 6.4.2:
// a backup receiving adverts with a higher priority stays backup; only
// when they stop does it become master. keepalived drops frames with a
// bad TTL, checksum or length, so staying backup shows it accepted ours.
// Multicast (IPv4, IPv6) and unicast across a router.
func TestKeepalivedHearsUs(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: interop with keepalived takes about 20 s")
	}
	l := newTestLAN(t, 2)
	k, us := l.Hosts[0], l.Hosts[1]
	ifUs := us.Interface("eth0")
	vip4 := netip.MustParseAddr(fmt.Sprintf("10.%d.0.100", l.Net))
	vip6 := netip.MustParseAddr(fmt.Sprintf("fd00:%d::100", l.Net))
	for _, tc := range []struct {
		name string
		vip  netip.Addr
		src  netip.Addr
	}{
		{"ipv4", vip4, l.Addr4(1).Addr()},
		{"ipv6", vip6, l.LinkLocal(t, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c *mcastConn
			us.MustDo(func() (err error) {
				c, err = listenMulticast(ifUs, mcastConfig{Src: tc.src})
				return err
			})
			defer c.Close()
			group := vrrpGroup4
			if tc.vip.Is6() {
				group = vrrpGroup6
			}
			msg := vrrp3Advert(61, 250, 50, tc.src, group, tc.vip)
			send := func() error { return c.WriteAdvert(msg, netip.Addr{}) }
			bits := 24
			if tc.vip.Is6() {
				bits = 64
			}
			keepalivedBackup(t, k, fmt.Sprintf("%s/%d", tc.vip, bits), "", send)
		})
	}

	t.Run("unicast across a router", func(t *testing.T) {
		a, r, b := newTestNS(t, "ka"), newTestNS(t, "kr"), newTestNS(t, "kb")
		veth(t, a, "eth0", r, "lan1")
		veth(t, b, "eth0", r, "lan2")
		r.sysctl("net.ipv4.ip_forward=1")
		r.IP("addr", "add", "10.211.0.1/24", "dev", "lan1")
		r.IP("addr", "add", "10.212.0.1/24", "dev", "lan2")
		a.IP("addr", "add", "10.211.0.2/24", "dev", "eth0")
		b.IP("addr", "add", "10.212.0.2/24", "dev", "eth0")
		a.IP("route", "add", "default", "via", "10.211.0.1")
		b.IP("route", "add", "default", "via", "10.212.0.1")
		src, peer := netip.MustParseAddr("10.212.0.2"), netip.MustParseAddr("10.211.0.2")
		var c *unicastConn
		b.MustDo(func() (err error) { c, err = listenUnicast(src); return err })
		defer c.Close()
		msg := vrrp3Advert(61, 250, 50, src, peer, netip.MustParseAddr("10.211.0.100"))
		send := func() error { return c.WriteAdvert(msg, peer) }
		// keepalived wants TTL 255 on unicast too unless told otherwise;
		// across one router it is 254.
		keepalivedBackup(t, a, "10.211.0.100/24",
			"unicast_src_ip 10.211.0.2\n\tunicast_peer {\n\t\t10.212.0.2 min_ttl 254 max_ttl 255\n\t}", send)

		// And keepalived's unicast adverts reach our conn with the TTL
		// one lower (it is master by now).
		for {
			got, m := readWithin(t, c)
			if got[1] != 61 {
				continue
			}
			if m.TTL != 254 || m.Src != peer || m.Dst != src || !m.Unicast {
				t.Fatalf("keepalived's unicast advert: %+v", m)
			}
			break
		}
	})
}

// keepalivedBackup runs a keepalived BACKUP instance (VRID 61, priority
// 100, v3, 500 ms) in ns while send is called every 100 ms, checks that it
// stays BACKUP, then stops sending and waits for it to become MASTER.
// Sending five times faster than advertised leaves a wide margin for a
// loaded machine: only a stall of a whole Master_Down_Interval (about
// 1.8 s) could make keepalived take over while we send.
func keepalivedBackup(t *testing.T, ns *testNS, vip, extra string, send func() error) {
	t.Helper()
	stop := make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := send(); err != nil {
				errc <- err
				return
			}
			select {
			case <-stop:
				errc <- nil
				return
			case <-tick.C:
			}
		}
	}()
	log := runKeepalived(t, ns, fmt.Sprintf(`
vrrp_instance VI_1 {
	state BACKUP
	interface eth0
	virtual_router_id 61
	priority 100
	version 3
	advert_int 0.5
	%s
	virtual_ipaddress {
		%s
	}
}
`, extra, vip))
	waitLog(t, log, "(VI_1) Entering BACKUP STATE")
	// Master_Down_Interval is 3 * 0.5 s + (256-100)/256 * 0.5 s, about
	// 1.8 s; after two of them with our adverts flowing it must still be
	// backup.
	time.Sleep(3600 * time.Millisecond)
	close(stop)
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
	if strings.Contains(log.String(), "Entering MASTER STATE") {
		t.Fatalf("keepalived became master while we advertised priority 250:\n%s", log.String())
	}
	for _, bad := range []string{"invalid ttl", "Invalid ttl", "checksum", "bad ip", "invalid"} {
		if strings.Contains(log.String(), bad) {
			t.Errorf("keepalived complained (%q):\n%s", bad, log.String())
		}
	}
	waitLog(t, log, "(VI_1) Entering MASTER STATE")
}

// TestVIPsLikeKeepalived: the same virtual_ipaddress block added by
// keepalived (as master) in one namespace and by netlinkAddrs in another
// must look the same in `ip addr`: no broadcast unless given, label,
// scope, IPv6 nodad, /128 deprecated. And keepalived's gratuitous ARP and
// unsolicited NA on the wire are byte for byte what garpFrame and
// unsolicitedNA build.
func TestVIPsLikeKeepalived(t *testing.T) {
	needRoot(t)
	mk := func(tag string) (*testNS, *testNS) {
		n, p := newTestNS(t, tag), newTestNS(t, tag+"p")
		veth(t, n, "eth0", p, "eth0")
		n.IP("addr", "add", "10.9.0.1/24", "dev", "eth0")
		return n, p
	}
	k, kPeer := mk("kv")
	us, _ := mk("uv")
	kcap := capture(t, kPeer, "eth0")
	log := runKeepalived(t, k, `
vrrp_instance A {
	state MASTER
	interface eth0
	virtual_router_id 5
	priority 200
	version 3
	advert_int 0.1
	virtual_ipaddress {
		10.9.0.100/24
		10.9.0.101/24 brd 10.9.0.255 label eth0:1
		10.9.0.102/32 scope link
	}
}
vrrp_instance B {
	state MASTER
	interface eth0
	virtual_router_id 6
	priority 200
	version 3
	advert_int 0.1
	virtual_ipaddress {
		fd09::100/128
		fd09::101/64
	}
}
`)
	waitLog(t, log, "(A) Entering MASTER STATE")
	waitLog(t, log, "(B) Entering MASTER STATE")
	a := netlinkAddrs{H: us.Netlink()}
	for _, v := range []vip{
		{Prefix: netip.MustParsePrefix("10.9.0.100/24"), Dev: "eth0"},
		{Prefix: netip.MustParsePrefix("10.9.0.101/24"), Dev: "eth0", Brd: netip.MustParseAddr("10.9.0.255"), Label: "eth0:1"},
		{Prefix: netip.MustParsePrefix("10.9.0.102/32"), Dev: "eth0", Scope: 253},
		{Prefix: netip.MustParsePrefix("fd09::100/128"), Dev: "eth0"},
		{Prefix: netip.MustParsePrefix("fd09::101/64"), Dev: "eth0"},
	} {
		if err := a.Add(v); err != nil {
			t.Fatal(err)
		}
	}
	vipLines := func(n *testNS) []string {
		var out []string
		for _, l := range strings.Split(n.IP("-o", "addr", "show", "dev", "eth0"), "\n") {
			if !strings.Contains(l, "10.9.0.10") && !strings.Contains(l, "fd09::") {
				continue
			}
			f := strings.Fields(l)
			out = append(out, strings.Join(f[1:], " ")) // drop the ifindex
		}
		return out
	}
	// keepalived adds its VIPs one by one right after the transition; wait
	// until all five are there.
	var want []string
	for end := time.Now().Add(10 * time.Second); len(want) < 5 && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		want = vipLines(k)
	}
	got := vipLines(us)
	slices.Sort(want)
	slices.Sort(got)
	if w, g := strings.Join(want, "\n"), strings.Join(got, "\n"); w != g {
		t.Fatalf("keepalived's VIPs:\n%s\nours:\n%s", w, g)
	}

	kmac := k.Interface("eth0").HardwareAddr
	for _, tc := range []struct {
		what  string
		ip    netip.Addr
		build func() ([]byte, error)
	}{
		{"gratuitous ARP", netip.MustParseAddr("10.9.0.100"), func() ([]byte, error) {
			return garpFrame(kmac, netip.MustParseAddr("10.9.0.100"))
		}},
		{"neighbour advertisement", netip.MustParseAddr("fd09::101"), func() ([]byte, error) {
			return unsolicitedNA(kmac, netip.MustParseAddr("fd09::101"), false)
		}},
	} {
		want, err := tc.build()
		if err != nil {
			t.Fatal(err)
		}
		p := kcap.waitFor(t, "keepalived's "+tc.what, func(p gopacket.Packet) bool {
			if a, ok := p.Layer(layers.LayerTypeARP).(*layers.ARP); ok {
				return bytes.Equal(a.SourceProtAddress, tc.ip.AsSlice())
			}
			na, ok := p.Layer(layers.LayerTypeICMPv6NeighborAdvertisement).(*layers.ICMPv6NeighborAdvertisement)
			return ok && na.TargetAddress.Equal(tc.ip.AsSlice())
		})
		if got := p.Data(); !bytes.Equal(got, want) {
			t.Errorf("%s:\nkeepalived %x\nours       %x", tc.what, got, want)
		}
	}
	// Adverts: the Ethernet and IP headers keepalived's kernel socket
	// puts around the VRRP message are what buildFrame makes.
	for _, fam := range []layers.EthernetType{layers.EthernetTypeIPv4, layers.EthernetTypeIPv6} {
		p := kcap.waitFor(t, "keepalived's advert over "+fam.String(), func(p gopacket.Packet) bool {
			eth, ok := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !ok || eth.EthernetType != fam {
				return false
			}
			_, m, err := parseFrame(p.Data())
			return err == nil && m.Dst.IsMulticast()
		})
		f := p.Data()
		msg, m, _ := parseFrame(f)
		var id uint16
		if fam == layers.EthernetTypeIPv4 {
			id = binary.BigEndian.Uint16(f[ethHdrLen+4:])
		}
		want, err := buildFrame(m.SrcMAC, multicastMAC(m.Dst), m.Src, m.Dst, id, msg)
		if err != nil {
			t.Fatal(err)
		}
		if fam == layers.EthernetTypeIPv6 {
			// The flow label is the kernel's hash; ours is 0.
			f = slices.Clone(f)
			f[ethHdrLen+1] &= 0xf0
			f[ethHdrLen+2], f[ethHdrLen+3] = 0, 0
		}
		if !bytes.Equal(f, want) {
			t.Errorf("advert over %s:\nkeepalived %x\nours       %x", fam, f, want)
		}
	}
}
