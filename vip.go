package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// vip is one virtual address as keepalived.conf's virtual_ipaddress
// writes it: `10.0.0.10/24 brd 10.0.0.255 dev eth0 scope global label
// eth0:1` (RFC 5798 section 1.2: the IPvX addresses of a virtual router).
type vip struct {
	Prefix netip.Prefix // address and prefix length (/32 or /128 when none was given)
	Dev    string       // interface name
	// Brd is the IPv4 broadcast address; zero means none, as `ip addr add`
	// without brd.
	Brd   netip.Addr
	Scope int    // netlink.SCOPE_* (unix.RT_SCOPE_*): 0 global, 253 link, 254 host
	Label string // IPv4 only, e.g. "eth0:1"
	// Peer makes it a point-to-point address (`peer` in ip-address(8)).
	Peer          netip.Prefix
	NoPrefixRoute bool
}

func (v vip) String() string {
	return fmt.Sprintf("%s dev %s", v.Prefix, v.Dev)
}

// addrs adds and removes virtual addresses. The netlink form programs the
// kernel; tests and the simulator can use a fake.
type addrs interface {
	// Add adds v; an address already present is not an error.
	Add(v vip) error
	// Del removes v; an address already gone is not an error.
	Del(v vip) error
	// Present returns those of vs that are configured now, matching on
	// address and interface only. At start the daemon removes these: they
	// are left from a crashed run. Other addresses are never looked at.
	Present(vs []vip) ([]vip, error)
}

// offloadAddrs runs another addrs' calls on one long-lived goroutine.
// vishvananda/netlink receives into a 64 KiB array on the caller's stack,
// so each runner goroutine that called it directly kept a 128 KiB stack:
// 63 MB of stacks at 1,000 instances (bench/scale.sh). One goroutine
// pays that once; the calls take microseconds, so queueing them costs
// nothing that matters, and it spares the kernel concurrent dumps.
type offloadAddrs struct {
	inner addrs
	calls chan func()
}

func newOffloadAddrs(inner addrs) *offloadAddrs {
	o := &offloadAddrs{inner: inner, calls: make(chan func())}
	go func() {
		for f := range o.calls {
			f()
		}
	}()
	return o
}

func (o *offloadAddrs) do(f func()) {
	done := make(chan struct{})
	o.calls <- func() { f(); close(done) }
	<-done
}

// Add implements addrs.
func (o *offloadAddrs) Add(v vip) (err error) { o.do(func() { err = o.inner.Add(v) }); return err }

// Del implements addrs.
func (o *offloadAddrs) Del(v vip) (err error) { o.do(func() { err = o.inner.Del(v) }); return err }

// Present implements addrs.
func (o *offloadAddrs) Present(vs []vip) (out []vip, err error) {
	o.do(func() { out, err = o.inner.Present(vs) })
	return out, err
}

// netlinkAddrs is addrs over rtnetlink. The zero value uses the calling
// thread's network namespace on every call; H pins it to a namespace.
type netlinkAddrs struct {
	H *netlink.Handle
}

// handle returns H, or a zero Handle, which (like the netlink package's
// own functions) opens a socket per request in the calling thread's
// namespace.
func (n netlinkAddrs) handle() *netlink.Handle {
	if n.H != nil {
		return n.H
	}
	return &netlink.Handle{}
}

// toNetlink turns v into the kernel's form.
func (v vip) toNetlink() (*netlink.Addr, error) {
	if !v.Prefix.IsValid() {
		return nil, fmt.Errorf("vip %q: no address", v.Prefix)
	}
	a := v.Prefix.Addr()
	bits := v.Prefix.Bits()
	na := &netlink.Addr{
		IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(bits, a.BitLen())},
		Scope: v.Scope,
	}
	if a.Is4() {
		na.Label = v.Label
		// The netlink library invents a broadcast address when none is
		// given; 0.0.0.0 stops that, so the result matches `ip addr add`.
		na.Broadcast = net.IPv4zero
		if v.Brd.IsValid() {
			na.Broadcast = v.Brd.AsSlice()
		}
	} else {
		// The VIP must be usable the moment we become master; duplicate
		// address detection would hold it tentative for a second or more
		// (and VRRP already guarantees a single owner). keepalived adds
		// IPv6 VIPs with IFA_F_NODAD for the same reason.
		na.Flags |= unix.IFA_F_NODAD
		if v.Prefix.Bits() == 128 {
			// keepalived marks a /128 VIP deprecated (preferred
			// lifetime 0, RFC 4862 section 5.5.4) so that the host
			// does not pick it as the source of its own connections
			// (RFC 6724 rule 3), e.g. health checks that must come from
			// the real address.
			na.PreferedLft, na.ValidLft = 0, 0xffffffff
		}
	}
	if v.NoPrefixRoute {
		na.Flags |= unix.IFA_F_NOPREFIXROUTE
	}
	if v.Peer.IsValid() {
		p := v.Peer.Addr()
		na.Peer = &net.IPNet{IP: p.AsSlice(), Mask: net.CIDRMask(v.Peer.Bits(), p.BitLen())}
	}
	return na, nil
}

// Add implements addrs.
func (n netlinkAddrs) Add(v vip) error {
	h := n.handle()
	na, err := v.toNetlink()
	if err != nil {
		return err
	}
	link, err := h.LinkByName(v.Dev)
	if err != nil {
		return fmt.Errorf("add %s: %w", v, err)
	}
	if err := h.AddrAdd(link, na); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s: %w", v, err)
	}
	return nil
}

// Del implements addrs. It removes the address whatever prefix length,
// label or peer it has now, so that an address left by a crashed run with
// an older configuration still goes; addresses that differ from v's are
// never touched.
func (n netlinkAddrs) Del(v vip) error {
	h := n.handle()
	if !v.Prefix.IsValid() {
		return fmt.Errorf("vip %q: no address", v.Prefix)
	}
	link, err := h.LinkByName(v.Dev)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil // the interface and its addresses are gone
		}
		return fmt.Errorf("delete %s: %w", v, err)
	}
	// The address as configured goes with one request. Listing first
	// would cost a dump of every address in the namespace per delete
	// (1,000 instances: seconds of CPU on each mass failover), and a dump
	// that address changes by the other instances interrupt fails: the
	// VIP then stayed on a backup (bench/scale.sh found both).
	if na, err := v.toNetlink(); err == nil {
		err := h.AddrDel(link, na)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete %s: %w", v, err)
		}
	}
	// Not there in that form: look for it under another prefix or label.
	list, err := addrList(h, link)
	if err != nil {
		return fmt.Errorf("delete %s: %w", v, err)
	}
	want := v.Prefix.Addr().Unmap()
	for _, a := range list {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok || ip.Unmap() != want {
			continue
		}
		err := h.AddrDel(link, &a)
		// The kernel says EADDRNOTAVAIL (IPv4) or ENODEV/ENOENT (IPv6)
		// when it went meanwhile.
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENODEV) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("delete %s: %w", v, err)
		}
	}
	return nil
}

// addrList lists link's addresses, again when address changes elsewhere
// interrupted the kernel's dump (the result is then incomplete).
func addrList(h *netlink.Handle, link netlink.Link) ([]netlink.Addr, error) {
	for try := 0; ; try++ {
		list, err := h.AddrList(link, netlink.FAMILY_ALL)
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 10 {
			continue
		}
		return list, err
	}
}

// Present implements addrs.
func (n netlinkAddrs) Present(vs []vip) ([]vip, error) {
	h := n.handle()
	have := map[string]map[netip.Addr]bool{}
	var out []vip
	for _, v := range vs {
		set, ok := have[v.Dev]
		if !ok {
			set = map[netip.Addr]bool{}
			have[v.Dev] = set
			link, err := h.LinkByName(v.Dev)
			if err != nil {
				var nf netlink.LinkNotFoundError
				if errors.As(err, &nf) {
					continue
				}
				return nil, fmt.Errorf("list addresses of %s: %w", v.Dev, err)
			}
			list, err := addrList(h, link)
			if err != nil {
				return nil, fmt.Errorf("list addresses of %s: %w", v.Dev, err)
			}
			for _, a := range list {
				if ip, ok := netip.AddrFromSlice(a.IP); ok {
					set[ip.Unmap()] = true
				}
			}
		}
		if set[v.Prefix.Addr().Unmap()] {
			out = append(out, v)
		}
	}
	return out, nil
}

// fakeAddrs is an in-memory addrs for tests of the daemon.
type fakeAddrs struct {
	mu  sync.Mutex
	set map[string]vip // key: dev + address
	Err error          // returned by every call when set
}

func (f *fakeAddrs) key(v vip) string { return v.Dev + "|" + v.Prefix.Addr().String() }

// Add implements addrs.
func (f *fakeAddrs) Add(v vip) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	if f.set == nil {
		f.set = map[string]vip{}
	}
	f.set[f.key(v)] = v
	return nil
}

// Del implements addrs.
func (f *fakeAddrs) Del(v vip) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	delete(f.set, f.key(v))
	return nil
}

// Present implements addrs.
func (f *fakeAddrs) Present(vs []vip) ([]vip, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	var out []vip
	for _, v := range vs {
		if _, ok := f.set[f.key(v)]; ok {
			out = append(out, v)
		}
	}
	return out, nil
}

// Has reports whether v is configured in the fake.
func (f *fakeAddrs) Has(v vip) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.set[f.key(v)]
	return ok
}

// vmacConfig describes keepalived's use_vmac interface: a macvlan on the
// instance's interface carrying the virtual router MAC (RFC 5798 section
// 7.3) so that clients' ARP/ND entries for the VIPs never change.
type vmacConfig struct {
	Name   string // default "vrrp.<VRID>"
	Parent string // the instance's interface
	VRID   uint8
	IPv6   bool // 00:00:5e:00:02:VRID instead of 00:00:5e:00:01:VRID
}

func (c vmacConfig) name() string {
	if c.Name != "" {
		return c.Name
	}
	return "vrrp." + strconv.Itoa(int(c.VRID))
}

// vmacs creates and removes VMAC interfaces.
type vmacs interface {
	// Create makes (or reuses) the macvlan, sets its sysctls and brings it
	// up; it returns the interface.
	Create(c vmacConfig) (*net.Interface, error)
	// Delete removes the macvlan made by Create and restores the parent's
	// sysctls. A missing interface is not an error.
	Delete(c vmacConfig) error
}

// netlinkVMACs is vmacs over rtnetlink and /proc/sys. Like keepalived
// (vrrp_vmac.c, vrrp_if_config.c) it uses macvlan mode private, sets on
// the macvlan arp_ignore=1 (answer ARP only for its own addresses),
// accept_local=1 (hear the other routers' adverts sent with our VMAC),
// rp_filter=0 (receive with no address) and promote_secondaries=1, and on
// the parent arp_ignore=1 and arp_filter=1 so that the parent never
// answers ARP for the VIPs with its own MAC. Beyond keepalived it sets
// arp_announce=2 on the parent: replies from a VIP leave through the
// parent (its connected route comes first), and with the default
// arp_announce=0 the parent's ARP request for the client says "tell VIP"
// from the parent's MAC, which moves the client's entry for the VIP off
// the VMAC. Delete restores the parent's previous values when its last
// VMAC goes.
type netlinkVMACs struct {
	H *netlink.Handle // nil: the calling thread's namespace

	mu    sync.Mutex
	saved map[string]*parentSysctls
}

type parentSysctls struct {
	vmacs map[string]bool // names of the VMACs on this parent
	old   map[string]string
}

// parentARPSysctls are set on a VMAC's parent; see netlinkVMACs.
var parentARPSysctls = [][2]string{{"arp_ignore", "1"}, {"arp_filter", "1"}, {"arp_announce", "2"}}

func (n *netlinkVMACs) handle() *netlink.Handle {
	return netlinkAddrs{H: n.H}.handle()
}

// Create implements vmacs.
func (n *netlinkVMACs) Create(c vmacConfig) (*net.Interface, error) {
	h := n.handle()
	name := c.name()
	mac := vmacFor(c.VRID, c.IPv6)
	parent, err := h.LinkByName(c.Parent)
	if err != nil {
		return nil, fmt.Errorf("vmac %s: parent: %w", name, err)
	}
	if old, err := h.LinkByName(name); err == nil {
		mv, ok := old.(*netlink.Macvlan)
		if !ok {
			return nil, fmt.Errorf("vmac %s: an interface of type %s has that name", name, old.Type())
		}
		if mv.ParentIndex != parent.Attrs().Index || mv.HardwareAddr.String() != mac.String() {
			// Left by an earlier run with another configuration.
			if err := h.LinkDel(old); err != nil {
				return nil, fmt.Errorf("vmac %s: remove stale: %w", name, err)
			}
		}
	}
	if _, err := h.LinkByName(name); err != nil {
		mv := &netlink.Macvlan{
			LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index, HardwareAddr: mac},
			// Private: the macvlan receives frames for its own MAC only,
			// never another macvlan's on the same parent.
			Mode: netlink.MACVLAN_MODE_PRIVATE,
		}
		if err := h.LinkAdd(mv); err != nil {
			return nil, fmt.Errorf("vmac %s: create: %w", name, err)
		}
	}
	link, err := h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("vmac %s: %w", name, err)
	}
	if c.IPv6 {
		// RFC 5798 section 7.4: no link-local from the VMAC; the source of
		// adverts is the parent's link-local, added below.
		if err := h.LinkSetIP6AddrGenMode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */); err != nil {
			return nil, fmt.Errorf("vmac %s: addr_gen_mode: %w", name, err)
		}
	} else {
		for _, kv := range [][2]string{{"arp_ignore", "1"}, {"accept_local", "1"}, {"rp_filter", "0"}, {"promote_secondaries", "1"}} {
			if err := writeSysctl("ipv4", name, kv[0], kv[1]); err != nil {
				return nil, fmt.Errorf("vmac %s: %w", name, err)
			}
		}
		if err := n.holdParent(c.Parent, name); err != nil {
			return nil, fmt.Errorf("vmac %s: %w", name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("vmac %s: up: %w", name, err)
	}
	if c.IPv6 {
		ll, err := parentLinkLocal(h, parent)
		if err != nil {
			return nil, fmt.Errorf("vmac %s: %w", name, err)
		}
		v := vip{Prefix: netip.PrefixFrom(ll, 64), Dev: name}
		if err := (netlinkAddrs{H: h}).Add(v); err != nil {
			return nil, fmt.Errorf("vmac %s: link-local: %w", name, err)
		}
	}
	ifi, err := net.InterfaceByIndex(link.Attrs().Index)
	if err != nil {
		// net.InterfaceByIndex works in the calling thread's namespace,
		// which may differ from H's; build it from netlink instead.
		a := link.Attrs()
		ifi = &net.Interface{Index: a.Index, MTU: a.MTU, Name: a.Name, HardwareAddr: mac, Flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast}
	}
	return ifi, nil
}

// parentLinkLocal picks the parent's link-local address, or makes one
// from its MAC (modified EUI-64, RFC 4291 appendix A) as keepalived does.
func parentLinkLocal(h *netlink.Handle, parent netlink.Link) (netip.Addr, error) {
	list, err := h.AddrList(parent, netlink.FAMILY_V6)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range list {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	m := parent.Attrs().HardwareAddr
	if len(m) != 6 {
		return netip.Addr{}, fmt.Errorf("parent %s has no link-local address and no MAC", parent.Attrs().Name)
	}
	return netip.AddrFrom16([16]byte{0xfe, 0x80, 8: m[0] ^ 2, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]}), nil
}

func (n *netlinkVMACs) holdParent(parent, vmac string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.saved == nil {
		n.saved = map[string]*parentSysctls{}
	}
	if s, ok := n.saved[parent]; ok {
		s.vmacs[vmac] = true
		return nil
	}
	ps := &parentSysctls{vmacs: map[string]bool{vmac: true}, old: map[string]string{}}
	for _, kv := range parentARPSysctls {
		v, err := readSysctl("ipv4", parent, kv[0])
		if err != nil {
			return err
		}
		ps.old[kv[0]] = v
	}
	for _, kv := range parentARPSysctls {
		if err := writeSysctl("ipv4", parent, kv[0], kv[1]); err != nil {
			return err
		}
	}
	n.saved[parent] = ps
	return nil
}

func (n *netlinkVMACs) releaseParent(parent, vmac string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	s, ok := n.saved[parent]
	if !ok {
		return nil
	}
	if delete(s.vmacs, vmac); len(s.vmacs) > 0 {
		return nil
	}
	delete(n.saved, parent)
	var errs []error
	for _, kv := range parentARPSysctls {
		errs = append(errs, writeSysctl("ipv4", parent, kv[0], s.old[kv[0]]))
	}
	return errors.Join(errs...)
}

// Delete implements vmacs.
func (n *netlinkVMACs) Delete(c vmacConfig) error {
	h := n.handle()
	name := c.name()
	var rerr error
	if !c.IPv6 {
		rerr = n.releaseParent(c.Parent, name)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return rerr
		}
		return fmt.Errorf("vmac %s: %w", name, err)
	}
	// Never delete a real interface that happens to carry the name.
	if _, ok := link.(*netlink.Macvlan); !ok {
		return fmt.Errorf("vmac %s: is a %s, not a macvlan; left alone", name, link.Type())
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("vmac %s: delete: %w", name, err)
	}
	return rerr
}

// sysctlRoot is where net sysctls live; /proc/sys/net shows the calling
// thread's network namespace.
var sysctlRoot = "/proc/sys/net"

func sysctlPath(family, ifname, key string) string {
	return filepath.Join(sysctlRoot, family, "conf", ifname, key)
}

func readSysctl(family, ifname, key string) (string, error) {
	b, err := os.ReadFile(sysctlPath(family, ifname, key))
	if err != nil {
		return "", fmt.Errorf("sysctl: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func writeSysctl(family, ifname, key, val string) error {
	if err := os.WriteFile(sysctlPath(family, ifname, key), []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	return nil
}

// promoteSecondaries sets net.ipv4.conf.<ifname>.promote_secondaries=1,
// as keepalived does for each VRRP interface at start, and returns a
// function restoring the old value (call it on exit). Without it, removing
// an IPv4 VIP that happens to be the primary address of its subnet on the
// interface removes every secondary address of that subnet with it:
// other VIPs, or the host's own addresses.
func promoteSecondaries(ifname string) (restore func() error, err error) {
	old, err := readSysctl("ipv4", ifname, "promote_secondaries")
	if err != nil {
		return nil, err
	}
	if old == "1" {
		return func() error { return nil }, nil
	}
	if err := writeSysctl("ipv4", ifname, "promote_secondaries", "1"); err != nil {
		return nil, err
	}
	return func() error { return writeSysctl("ipv4", ifname, "promote_secondaries", old) }, nil
}

// fakeVMACs is vmacs in memory for tests of the daemon.
type fakeVMACs struct {
	mu   sync.Mutex
	Live map[string]vmacConfig // by name
	Err  error
}

// Create implements vmacs.
func (f *fakeVMACs) Create(c vmacConfig) (*net.Interface, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return nil, f.Err
	}
	if f.Live == nil {
		f.Live = map[string]vmacConfig{}
	}
	f.Live[c.name()] = c
	return &net.Interface{Index: 1000 + int(c.VRID), MTU: 1500, Name: c.name(),
		HardwareAddr: vmacFor(c.VRID, c.IPv6), Flags: net.FlagUp | net.FlagBroadcast | net.FlagMulticast}, nil
}

// Delete implements vmacs.
func (f *fakeVMACs) Delete(c vmacConfig) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	delete(f.Live, c.name())
	return nil
}

var (
	_ addrs = netlinkAddrs{}
	_ addrs = (*fakeAddrs)(nil)
	_ vmacs = (*netlinkVMACs)(nil)
	_ vmacs = (*fakeVMACs)(nil)
)
