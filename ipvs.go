package main

// IPVS virtual servers: the LVS half of keepalived.
//
// The daemon describes the table it wants as []ipvsVirtual (services with
// their destinations). ipvsReconciler compares that with the kernel's table
// and applies the difference through the ipvsKernel seam: netlinkIPVS on
// Linux (generic netlink family "IPVS", via github.com/cloudflare/ipvs), or
// fakeIPVS in tests. ipvsPool turns a virtual server's real servers and
// their health into the destinations to program (inhibit_on_failure, sorry
// server, quorum with hysteresis); it is pure so the quorum rules are unit
// tested without a kernel.

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
	"github.com/mdlayher/genetlink"
	"golang.org/x/sys/unix"
)

// ipvsFamily is a service's address family (AF_INET or AF_INET6).
type ipvsFamily uint16

const (
	familyINET  ipvsFamily = unix.AF_INET
	familyINET6 ipvsFamily = unix.AF_INET6
)

func (f ipvsFamily) String() string {
	switch f {
	case familyINET:
		return "inet"
	case familyINET6:
		return "inet6"
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// ipvsProtocol is a service's transport protocol (keepalived's "protocol").
type ipvsProtocol uint16

const (
	protoTCP  ipvsProtocol = unix.IPPROTO_TCP
	protoUDP  ipvsProtocol = unix.IPPROTO_UDP
	protoSCTP ipvsProtocol = unix.IPPROTO_SCTP
)

func (p ipvsProtocol) String() string {
	switch p {
	case protoTCP:
		return "TCP"
	case protoUDP:
		return "UDP"
	case protoSCTP:
		return "SCTP"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// ipvsFlags are the service flags of include/uapi/linux/ip_vs.h
// (IP_VS_SVC_F_*). The scheduler flags share bits: sh-fallback and
// mh-fallback are both SCHED1, sh-port and mh-port both SCHED2.
type ipvsFlags uint32

const (
	svcPersistent      ipvsFlags = 0x0001 // IP_VS_SVC_F_PERSISTENT, set by persistence_timeout
	svcHashed          ipvsFlags = 0x0002 // IP_VS_SVC_F_HASHED, kernel-internal; ignored when comparing
	svcOnePacket       ipvsFlags = 0x0004 // IP_VS_SVC_F_ONEPACKET, keepalived's "ops"
	svcSHFallback      ipvsFlags = 0x0008 // IP_VS_SVC_F_SCHED_SH_FALLBACK
	svcSHPort          ipvsFlags = 0x0010 // IP_VS_SVC_F_SCHED_SH_PORT
	svcMHFallback      ipvsFlags = 0x0008 // IP_VS_SVC_F_SCHED_MH_FALLBACK
	svcMHPort          ipvsFlags = 0x0010 // IP_VS_SVC_F_SCHED_MH_PORT
	svcSched3          ipvsFlags = 0x0020 // IP_VS_SVC_F_SCHED3 (flag-3)
	svcComparableFlags           = ^svcHashed
)

func (f ipvsFlags) String() string {
	var s []string
	for _, x := range []struct {
		f ipvsFlags
		n string
	}{{svcPersistent, "persistent"}, {svcHashed, "hashed"}, {svcOnePacket, "ops"},
		{svcSHFallback, "flag-1"}, {svcSHPort, "flag-2"}, {svcSched3, "flag-3"}} {
		if f&x.f != 0 {
			s = append(s, x.n)
		}
	}
	if r := f &^ (svcPersistent | svcHashed | svcOnePacket | svcSHFallback | svcSHPort | svcSched3); r != 0 {
		s = append(s, fmt.Sprintf("%#x", uint32(r)))
	}
	return strings.Join(s, ",")
}

// ipvsService is one IPVS virtual service: either an address, port and
// protocol, or a firewall mark (FWMark != 0; then Addr, Port and Protocol
// are unused and Family says which family the mark applies to).
type ipvsService struct {
	Family    ipvsFamily // derived from Addr unless FWMark is set; inet when zero
	Protocol  ipvsProtocol
	Addr      netip.Addr
	Port      uint16
	FWMark    uint32
	Scheduler string // rr when empty
	Flags     ipvsFlags
	// Timeout is persistence_timeout in seconds; non-zero implies
	// svcPersistent.
	Timeout uint32
	// Netmask is persistence_granularity as a prefix length; 0 means the
	// whole address (32 or 128).
	Netmask int
}

// ipvsKey identifies a service in the kernel's table.
type ipvsKey struct {
	Family   ipvsFamily
	Protocol ipvsProtocol
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
}

// ipvsDestKey identifies a destination within a service.
type ipvsDestKey struct {
	Addr netip.Addr
	Port uint16
}

// ipvsMethod is a destination's forwarding method (lb_kind/lvs_method).
type ipvsMethod uint32

const (
	methodNAT   ipvsMethod = 0 // IP_VS_CONN_F_MASQ
	methodLocal ipvsMethod = 1 // IP_VS_CONN_F_LOCALNODE: the kernel's choice for a local address
	methodTUN   ipvsMethod = 2 // IP_VS_CONN_F_TUNNEL
	methodDR    ipvsMethod = 3 // IP_VS_CONN_F_DROUTE
)

func (m ipvsMethod) String() string {
	switch m {
	case methodNAT:
		return "NAT"
	case methodLocal:
		return "Local"
	case methodTUN:
		return "TUN"
	case methodDR:
		return "DR"
	}
	return "method(" + strconv.Itoa(int(m)) + ")"
}

// ipvsTunnel is the encapsulation of a TUN destination (keepalived's
// "lvs_method TUN type ipip|gue|gre").
type ipvsTunnel uint8

const (
	tunnelIPIP ipvsTunnel = 0
	tunnelGUE  ipvsTunnel = 1
	tunnelGRE  ipvsTunnel = 2
)

// ipvsDest is one destination (real server) of a service.
type ipvsDest struct {
	Addr       netip.Addr
	Port       uint16
	Weight     int
	Method     ipvsMethod
	Tunnel     ipvsTunnel // only with methodTUN
	TunnelPort uint16     // GUE destination port
	TunnelCsum uint16     // IP_VS_TUNNEL_ENCAP_FLAG_* (nocsum 0, csum 1, remcsum 2)
	UThreshold uint32
	LThreshold uint32
}

// ipvsVirtual is a service with the destinations it should have.
type ipvsVirtual struct {
	Service ipvsService
	Dests   []ipvsDest
}

// normalize fills defaults so that a desired service compares equal to the
// kernel's copy: family from the address, rr, the persistent flag, a full
// netmask, and no address/port/protocol for fwmark services (the kernel
// reports TCP for those).
func (s ipvsService) normalize() ipvsService {
	if s.FWMark != 0 {
		s.Addr, s.Port, s.Protocol = netip.Addr{}, 0, protoTCP
		if s.Family == 0 {
			s.Family = familyINET
		}
	} else {
		s.Addr = s.Addr.Unmap()
		s.Family = familyINET
		if s.Addr.Is6() {
			s.Family = familyINET6
		}
	}
	if s.Scheduler == "" {
		s.Scheduler = "rr"
	}
	if s.Timeout != 0 {
		s.Flags |= svcPersistent
	}
	s.Flags &= svcComparableFlags
	if s.Netmask == 0 {
		s.Netmask = s.bits()
	}
	return s
}

func (s ipvsService) bits() int {
	if s.Family == familyINET6 {
		return 128
	}
	return 32
}

func (s ipvsService) key() ipvsKey {
	s = s.normalize()
	return ipvsKey{Family: s.Family, Protocol: s.Protocol, Addr: s.Addr, Port: s.Port, FWMark: s.FWMark}
}

// validate reports what is wrong with a service before the kernel sees it.
func (s ipvsService) validate() error {
	if s.FWMark == 0 {
		if !s.Addr.IsValid() {
			return fmt.Errorf("virtual server has neither an address nor a fwmark")
		}
		switch s.Protocol {
		case protoTCP, protoUDP, protoSCTP:
		default:
			return fmt.Errorf("virtual server %s: unsupported protocol %s (want TCP, UDP or SCTP)", s, s.Protocol)
		}
	} else if s.Family != 0 && s.Family != familyINET && s.Family != familyINET6 {
		return fmt.Errorf("virtual server %s: bad address family %d", s, s.Family)
	}
	if s.Scheduler != "" && !slices.Contains(ipvsSchedulers, s.Scheduler) {
		return fmt.Errorf("virtual server %s: unknown scheduler %q (want one of %s)", s, s.Scheduler, strings.Join(ipvsSchedulers, " "))
	}
	n := s.normalize()
	if s.Netmask < 0 || s.Netmask > n.bits() {
		return fmt.Errorf("virtual server %s: persistence granularity /%d out of range", s, s.Netmask)
	}
	return nil
}

// String formats a service like ipvsadm -Ln: "TCP 10.0.0.1:80", "FWM 7".
func (s ipvsService) String() string {
	if s.FWMark != 0 {
		if s.Family == familyINET6 {
			return fmt.Sprintf("FWM %d IPv6", s.FWMark)
		}
		return fmt.Sprintf("FWM %d", s.FWMark)
	}
	return s.Protocol.String() + " " + netip.AddrPortFrom(s.Addr, s.Port).String()
}

func (d ipvsDest) key() ipvsDestKey { return ipvsDestKey{d.Addr.Unmap(), d.Port} }

func (d ipvsDest) String() string { return netip.AddrPortFrom(d.Addr, d.Port).String() }

func (d ipvsDest) validate() error {
	if !d.Addr.IsValid() {
		return fmt.Errorf("real server without an address")
	}
	if d.Weight < 0 || d.Weight > 1<<31-1 {
		return fmt.Errorf("real server %s: weight %d out of range", d, d.Weight)
	}
	switch d.Method {
	case methodNAT, methodDR, methodTUN:
	default:
		return fmt.Errorf("real server %s: unsupported forwarding method %s", d, d.Method)
	}
	if d.Tunnel > tunnelGRE {
		return fmt.Errorf("real server %s: unknown tunnel type %d", d, d.Tunnel)
	}
	return nil
}

// validate checks a service and its destinations, which must be distinct.
func (v ipvsVirtual) validate() error {
	if err := v.Service.validate(); err != nil {
		return err
	}
	seen := make(map[ipvsDestKey]bool, len(v.Dests))
	for _, d := range v.Dests {
		if err := d.validate(); err != nil {
			return fmt.Errorf("virtual server %s: %w", v.Service, err)
		}
		if seen[d.key()] {
			return fmt.Errorf("virtual server %s: real server %s listed twice", v.Service, d)
		}
		seen[d.key()] = true
	}
	return nil
}

// sameDest reports whether the kernel's destination k already is what d
// asks for. The kernel reports Local for an address of the director itself
// whatever method was asked, so Local matches any method.
func sameDest(d, k ipvsDest) bool {
	if d.Weight != k.Weight || d.UThreshold != k.UThreshold || d.LThreshold != k.LThreshold {
		return false
	}
	if k.Method == methodLocal {
		return true
	}
	if d.Method != k.Method {
		return false
	}
	if d.Method == methodTUN {
		return d.Tunnel == k.Tunnel && d.TunnelPort == k.TunnelPort && d.TunnelCsum == k.TunnelCsum
	}
	return true
}

// ipvsKernel is the seam to the kernel's IPVS table.
type ipvsKernel interface {
	Services() ([]ipvsService, error)
	Dests(ipvsService) ([]ipvsDest, error)
	CreateService(ipvsService) error
	UpdateService(ipvsService) error
	DeleteService(ipvsService) error
	CreateDest(ipvsService, ipvsDest) error
	UpdateDest(ipvsService, ipvsDest) error
	DeleteDest(ipvsService, ipvsDest) error
	Close() error
}

// errNoIPVS is returned by openIPVS when the running kernel has no IPVS.
var errNoIPVS = errors.New("the kernel has no IPVS (generic netlink family IPVS not found): load ip_vs")

// netlinkIPVS is the real ipvsKernel: generic netlink family "IPVS".
type netlinkIPVS struct {
	c ipvs.Client
}

// openIPVS connects to the kernel's IPVS. It checks that the generic
// netlink family exists first so that a kernel without ip_vs gets a clear
// error instead of "no such file or directory".
func openIPVS() (*netlinkIPVS, error) {
	g, err := genetlink.Dial(nil)
	if err != nil {
		return nil, fmt.Errorf("ipvs: open generic netlink: %w", err)
	}
	_, err = g.GetFamily("IPVS")
	g.Close()
	if errors.Is(err, os.ErrNotExist) {
		return nil, errNoIPVS
	}
	if err != nil {
		return nil, fmt.Errorf("ipvs: look up generic netlink family IPVS: %w", err)
	}
	c, err := ipvs.New()
	if err != nil {
		return nil, fmt.Errorf("ipvs: %w", err)
	}
	return &netlinkIPVS{c: c}, nil
}

func (n *netlinkIPVS) Close() error {
	if c, ok := n.c.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

func toLibService(s ipvsService) ipvs.Service {
	s = s.normalize()
	return ipvs.Service{
		Address:   s.Addr,
		Netmask:   netmask.MaskFrom(s.Netmask, s.bits()),
		Scheduler: s.Scheduler,
		Timeout:   s.Timeout,
		Flags:     ipvs.Flags(s.Flags),
		Port:      s.Port,
		FWMark:    s.FWMark,
		Family:    ipvs.AddressFamily(s.Family),
		Protocol:  ipvs.Protocol(s.Protocol),
	}
}

func fromLibService(l ipvs.Service) ipvsService {
	s := ipvsService{
		Family:    ipvsFamily(l.Family),
		Protocol:  ipvsProtocol(l.Protocol),
		Addr:      l.Address,
		Port:      l.Port,
		FWMark:    l.FWMark,
		Scheduler: l.Scheduler,
		Flags:     ipvsFlags(l.Flags) & svcComparableFlags,
		Timeout:   l.Timeout,
	}
	if b := l.Netmask.Bits(); b > 0 {
		s.Netmask = b
	}
	return s.normalize()
}

func toLibDest(d ipvsDest) ipvs.Destination {
	fam := ipvs.INET
	if d.Addr.Unmap().Is6() {
		fam = ipvs.INET6
	}
	return ipvs.Destination{
		Address:        d.Addr.Unmap(),
		FwdMethod:      ipvs.ForwardType(d.Method),
		Weight:         uint32(d.Weight),
		UpperThreshold: d.UThreshold,
		LowerThreshold: d.LThreshold,
		Port:           d.Port,
		Family:         fam,
		TunnelType:     ipvs.TunnelType(d.Tunnel),
		TunnelPort:     d.TunnelPort,
		TunnelFlags:    ipvs.TunnelFlags(d.TunnelCsum),
	}
}

func fromLibDest(l ipvs.Destination) ipvsDest {
	return ipvsDest{
		Addr:       l.Address,
		Port:       l.Port,
		Weight:     int(l.Weight),
		Method:     ipvsMethod(l.FwdMethod),
		Tunnel:     ipvsTunnel(l.TunnelType),
		TunnelPort: l.TunnelPort,
		TunnelCsum: uint16(l.TunnelFlags),
		UThreshold: l.UpperThreshold,
		LThreshold: l.LowerThreshold,
	}
}

func (n *netlinkIPVS) Services() ([]ipvsService, error) {
	ls, err := n.c.Services()
	if err == os.ErrNotExist { // the library's answer to an empty dump
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]ipvsService, 0, len(ls))
	for _, l := range ls {
		out = append(out, fromLibService(l.Service))
	}
	return out, nil
}

func (n *netlinkIPVS) Dests(s ipvsService) ([]ipvsDest, error) {
	ls, err := n.c.Destinations(toLibService(s))
	if err == os.ErrNotExist { // the library's answer to an empty dump
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]ipvsDest, 0, len(ls))
	for _, l := range ls {
		out = append(out, fromLibDest(l.Destination))
	}
	return out, nil
}

func (n *netlinkIPVS) CreateService(s ipvsService) error { return n.c.CreateService(toLibService(s)) }
func (n *netlinkIPVS) UpdateService(s ipvsService) error { return n.c.UpdateService(toLibService(s)) }
func (n *netlinkIPVS) DeleteService(s ipvsService) error { return n.c.RemoveService(toLibService(s)) }
func (n *netlinkIPVS) CreateDest(s ipvsService, d ipvsDest) error {
	return n.c.CreateDestination(toLibService(s), toLibDest(d))
}
func (n *netlinkIPVS) UpdateDest(s ipvsService, d ipvsDest) error {
	return n.c.UpdateDestination(toLibService(s), toLibDest(d))
}
func (n *netlinkIPVS) DeleteDest(s ipvsService, d ipvsDest) error {
	return n.c.RemoveDestination(toLibService(s), toLibDest(d))
}

// ipvsOpKind is one kind of change to the kernel's table.
type ipvsOpKind uint8

const (
	opAddService ipvsOpKind = iota
	opEditService
	opDelService
	opAddDest
	opEditDest
	opDelDest
)

// ipvsOp is one change the reconciler makes.
type ipvsOp struct {
	Kind    ipvsOpKind
	Service ipvsService
	Dest    ipvsDest // for the dest kinds
}

func (o ipvsOp) String() string {
	s := o.Service.normalize()
	switch o.Kind {
	case opAddService:
		return fmt.Sprintf("add service %s (%s)", s, s.Scheduler)
	case opEditService:
		return fmt.Sprintf("edit service %s (%s)", s, s.Scheduler)
	case opDelService:
		return fmt.Sprintf("delete service %s", s)
	case opAddDest:
		return fmt.Sprintf("add real server %s to %s (%s weight %d)", o.Dest, s, o.Dest.Method, o.Dest.Weight)
	case opEditDest:
		return fmt.Sprintf("edit real server %s of %s (%s weight %d)", o.Dest, s, o.Dest.Method, o.Dest.Weight)
	case opDelDest:
		return fmt.Sprintf("delete real server %s from %s", o.Dest, s)
	}
	return "op(" + strconv.Itoa(int(o.Kind)) + ")"
}

// ipvsDiff computes the changes that turn current into desired. Services
// that are in neither desired nor owned are someone else's and are left
// alone; owned services no longer desired are deleted. A desired service's
// destinations are all ours: the ones not desired are deleted. The result
// is in a fixed order: service deletions, then per desired service (in
// desired order) the service change, destination deletions, edits, adds.
func ipvsDiff(current, desired []ipvsVirtual, owned map[ipvsKey]bool) []ipvsOp {
	cur := make(map[ipvsKey]ipvsVirtual, len(current))
	for _, v := range current {
		cur[v.Service.key()] = v
	}
	want := make(map[ipvsKey]bool, len(desired))
	for _, v := range desired {
		want[v.Service.key()] = true
	}
	var ops []ipvsOp
	for _, v := range current {
		k := v.Service.key()
		if owned[k] && !want[k] {
			ops = append(ops, ipvsOp{Kind: opDelService, Service: v.Service.normalize()})
		}
	}
	for _, v := range desired {
		s := v.Service.normalize()
		c, exists := cur[s.key()]
		if !exists {
			ops = append(ops, ipvsOp{Kind: opAddService, Service: s})
		} else if c.Service.normalize() != s {
			ops = append(ops, ipvsOp{Kind: opEditService, Service: s})
		}
		have := make(map[ipvsDestKey]ipvsDest, len(c.Dests))
		for _, d := range c.Dests {
			have[d.key()] = d
		}
		wantD := make(map[ipvsDestKey]bool, len(v.Dests))
		for _, d := range v.Dests {
			wantD[d.key()] = true
		}
		for _, d := range c.Dests {
			if !wantD[d.key()] {
				ops = append(ops, ipvsOp{Kind: opDelDest, Service: s, Dest: d})
			}
		}
		var adds []ipvsOp
		for _, d := range v.Dests {
			h, ok := have[d.key()]
			switch {
			case !ok:
				adds = append(adds, ipvsOp{Kind: opAddDest, Service: s, Dest: d})
			case !sameDest(d, h):
				ops = append(ops, ipvsOp{Kind: opEditDest, Service: s, Dest: d})
			}
		}
		ops = append(ops, adds...)
	}
	return ops
}

// ipvsReconciler keeps the kernel's IPVS table in line with the desired
// one, touching only the services it owns: those it has been asked for.
type ipvsReconciler struct {
	k     ipvsKernel
	owned map[ipvsKey]bool
}

func newIPVSReconciler(k ipvsKernel) *ipvsReconciler {
	return &ipvsReconciler{k: k, owned: make(map[ipvsKey]bool)}
}

// Apply programs desired and returns the changes it made. It applies every
// change it can: one failing service (a scheduler the kernel lacks) does
// not keep the others out; the errors are joined.
func (r *ipvsReconciler) Apply(desired []ipvsVirtual) ([]ipvsOp, error) {
	var errs []error
	seen := make(map[ipvsKey]bool)
	var ok []ipvsVirtual
	for _, v := range desired {
		err := v.validate()
		if err == nil && seen[v.Service.key()] {
			err = fmt.Errorf("virtual server %s configured twice", v.Service)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[v.Service.key()] = true
		ok = append(ok, v)
	}
	current, err := r.read(seen)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	ops := ipvsDiff(current, ok, r.owned)
	var done []ipvsOp
	failed := make(map[ipvsKey]bool)
	for _, op := range ops {
		k := op.Service.key()
		if failed[k] {
			continue
		}
		if err := r.do(op); err != nil {
			errs = append(errs, err)
			if op.Kind == opAddService || op.Kind == opEditService {
				failed[k] = true // its destinations would fail too
			}
			continue
		}
		done = append(done, op)
		if op.Kind == opDelService {
			delete(r.owned, k)
		}
	}
	for k := range seen {
		r.owned[k] = true
	}
	return done, errors.Join(errs...)
}

// read returns the kernel's services, with destinations for those in want.
func (r *ipvsReconciler) read(want map[ipvsKey]bool) ([]ipvsVirtual, error) {
	svcs, err := r.k.Services()
	if err != nil {
		return nil, fmt.Errorf("ipvs: list services: %w", err)
	}
	out := make([]ipvsVirtual, 0, len(svcs))
	for _, s := range svcs {
		v := ipvsVirtual{Service: s}
		if want[s.key()] {
			if v.Dests, err = r.k.Dests(s); err != nil {
				return nil, fmt.Errorf("ipvs: list real servers of %s: %w", s, err)
			}
		}
		out = append(out, v)
	}
	return out, nil
}

func (r *ipvsReconciler) do(op ipvsOp) error {
	var err error
	switch op.Kind {
	case opAddService:
		err = r.k.CreateService(op.Service)
	case opEditService:
		err = r.k.UpdateService(op.Service)
	case opDelService:
		err = r.k.DeleteService(op.Service)
	case opAddDest:
		err = r.k.CreateDest(op.Service, op.Dest)
	case opEditDest:
		err = r.k.UpdateDest(op.Service, op.Dest)
	case opDelDest:
		err = r.k.DeleteDest(op.Service, op.Dest)
	}
	if err == nil {
		return nil
	}
	// The kernel answers ENOENT to a new or edited service whose scheduler
	// module it cannot find (ip_vs_scheduler_get fails); ESRCH is a missing
	// service.
	if (op.Kind == opAddService || op.Kind == opEditService) && errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("ipvs: %s: scheduler %q is not available in the running kernel (no ip_vs_%s module): %w",
			op, op.Service.Scheduler, op.Service.Scheduler, err)
	}
	return fmt.Errorf("ipvs: %s: %w", op, err)
}

// Flush deletes every service in the kernel's table, ours or not
// (keepalived's lvs_flush).
func (r *ipvsReconciler) Flush() error {
	svcs, err := r.k.Services()
	if err != nil {
		return fmt.Errorf("ipvs: list services: %w", err)
	}
	var errs []error
	for _, s := range svcs {
		if err := r.k.DeleteService(s); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: flush %s: %w", s, err))
		}
	}
	clear(r.owned)
	return errors.Join(errs...)
}

// Release is called on stop: it deletes the services this reconciler owns
// unless keep is set (keepalived's --dont-release-ipvs).
func (r *ipvsReconciler) Release(keep bool) error {
	if keep {
		return nil
	}
	svcs, err := r.k.Services()
	if err != nil {
		return fmt.Errorf("ipvs: list services: %w", err)
	}
	var errs []error
	for _, s := range svcs {
		if !r.owned[s.key()] {
			continue
		}
		if err := r.k.DeleteService(s); err != nil {
			errs = append(errs, fmt.Errorf("ipvs: release %s: %w", s, err))
			continue
		}
		delete(r.owned, s.key())
	}
	return errors.Join(errs...)
}

// poolMember is one real server of a virtual server with its health.
type poolMember struct {
	Dest ipvsDest // as configured; Weight may have been set by a dynamic check
	Up   bool
	// Inhibit is inhibit_on_failure: a failed server stays in the table
	// with weight 0 (existing connections live on) instead of being removed.
	Inhibit bool
}

// poolConfig is the part of a virtual server that decides its pool.
type poolConfig struct {
	// Quorum is the minimum total weight of live real servers for the
	// pool to be "up" (keepalived default 1); Hysteresis dampens flaps:
	// quorum is lost below Quorum-Hysteresis and regained at
	// Quorum+Hysteresis.
	Quorum     int
	Hysteresis int
	// Sorry is the sorry_server, nil when none. While quorum is down it
	// replaces the pool. SorryInhibit (sorry_server_inhibit) keeps it in
	// the table with weight 0 while quorum is up.
	Sorry        *ipvsDest
	SorryInhibit bool
}

// quorumState is a virtual server's quorum: unknown before the first
// evaluation.
type quorumState int8

const (
	quorumUnknown quorumState = iota
	quorumUp
	quorumDown
)

func (q quorumState) String() string {
	switch q {
	case quorumUp:
		return "up"
	case quorumDown:
		return "down"
	}
	return "unknown"
}

// quorumEvent tells the caller to run quorum_up or quorum_down.
type quorumEvent int8

const (
	quorumNoEvent quorumEvent = iota
	quorumGained
	quorumLost
)

// ipvsPool computes the destinations a virtual server should have and its
// new quorum state from its real servers' health, the way keepalived's
// check daemon does (ipwrapper.c): live servers are in with their weight;
// failed ones are out, or in with weight 0 with inhibit_on_failure; when
// the live weight drops below the quorum the sorry server (if any) takes
// over the pool. The event is quorumGained or quorumLost when the state
// crossed, for the caller to run quorum_up/quorum_down. The first
// evaluation (prev quorumUnknown) reports quorumGained when the pool
// starts up, and quorumLost when it starts down with a sorry server, as
// keepalived's update_quorum_state does at init.
func ipvsPool(members []poolMember, cfg poolConfig, prev quorumState) ([]ipvsDest, quorumState, quorumEvent) {
	live := 0
	for _, m := range members {
		if m.Up && m.Dest.Weight > 0 {
			live += m.Dest.Weight
		}
	}
	q := cfg.Quorum
	if q <= 0 {
		q = 1
	}
	state := prev
	switch prev {
	case quorumUp:
		if live == 0 || live < q-cfg.Hysteresis {
			state = quorumDown
		}
	case quorumDown:
		if live > 0 && live >= q+cfg.Hysteresis {
			state = quorumUp
		}
	default:
		// keepalived starts a virtual server with quorum down and
		// evaluates it once (init_service_vs): gaining it needs
		// Quorum+Hysteresis.
		state = quorumDown
		if live > 0 && live >= q+cfg.Hysteresis {
			state = quorumUp
		}
	}
	ev := quorumNoEvent
	switch {
	case state == prev:
	case state == quorumUp:
		ev = quorumGained
	case prev != quorumUnknown || cfg.Sorry != nil:
		// At start keepalived reports quorum down only when it has a
		// sorry server to put in.
		ev = quorumLost
	}
	sorryActive := state == quorumDown && cfg.Sorry != nil
	var dests []ipvsDest
	for _, m := range members {
		d := m.Dest
		switch {
		case m.Up && !sorryActive:
			dests = append(dests, d)
		case m.Inhibit:
			d.Weight = 0
			dests = append(dests, d)
		}
	}
	if cfg.Sorry != nil {
		s := *cfg.Sorry
		switch {
		case sorryActive:
			if s.Weight == 0 {
				s.Weight = 1
			}
			dests = append(dests, s)
		case cfg.SorryInhibit:
			s.Weight = 0
			dests = append(dests, s)
		}
	}
	// A sorry server that is also a real server appears once, as the
	// later (sorry) entry says.
	slices.SortStableFunc(dests, func(a, b ipvsDest) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Port, b.Port))
	})
	out := dests[:0]
	for _, d := range dests {
		if n := len(out); n > 0 && out[n-1].key() == d.key() {
			out[n-1] = d
			continue
		}
		out = append(out, d)
	}
	return out, state, ev
}

// ApplyService programs one desired service and its destinations without
// looking at the others: the cheap path for a health change. The service
// becomes owned.
func (r *ipvsReconciler) ApplyService(v ipvsVirtual) ([]ipvsOp, error) {
	if err := v.validate(); err != nil {
		return nil, err
	}
	k := v.Service.key()
	current, err := r.read(map[ipvsKey]bool{k: true})
	if err != nil {
		return nil, err
	}
	current = slices.DeleteFunc(current, func(c ipvsVirtual) bool { return c.Service.key() != k })
	r.owned[k] = true
	var done []ipvsOp
	for _, op := range ipvsDiff(current, []ipvsVirtual{v}, nil) {
		if err := r.do(op); err != nil {
			return done, err
		}
		done = append(done, op)
	}
	return done, nil
}

// ipvsVirtualServer is one configured virtual server (a virtual_server
// block) with its real servers' current health. The daemon builds it from
// the configuration (all Reals Up at start, or all down with alpha) and
// flips Reals[i].Up (and Dest.Weight for misc_dynamic) as checks report.
type ipvsVirtualServer struct {
	// Services are the kernel services sharing this pool: one for
	// "virtual_server IP PORT" or "fwmark N", one per address (range
	// element) and fwmark of a virtual_server_group.
	Services []ipvsService
	Pool     poolConfig
	Reals    []poolMember
	// Omega: on stop, report quorum lost so quorum_down runs.
	Omega bool

	quorum quorumState
}

// Quorum is the virtual server's quorum state as last computed.
func (vs *ipvsVirtualServer) Quorum() quorumState { return vs.quorum }

// ipvsQuorumChange tells the daemon to run a virtual server's quorum_up or
// quorum_down command.
type ipvsQuorumChange struct {
	VS    *ipvsVirtualServer
	Event quorumEvent
}

// ipvsManager keeps the kernel's table in step with the configured virtual
// servers and their health. It is not safe for concurrent use: the daemon
// calls it from one goroutine.
type ipvsManager struct {
	r   *ipvsReconciler
	vss []*ipvsVirtualServer
}

// newIPVSManager programs every virtual server (after deleting the whole
// table first when flush, keepalived's lvs_flush) and returns the initial
// quorum events. Services that fail (a missing scheduler) are reported in
// the joined error; the rest are programmed.
func newIPVSManager(k ipvsKernel, vss []*ipvsVirtualServer, flush bool) (*ipvsManager, []ipvsQuorumChange, error) {
	m := &ipvsManager{r: newIPVSReconciler(k), vss: vss}
	if flush {
		if err := m.r.Flush(); err != nil {
			return nil, nil, err
		}
	}
	var changes []ipvsQuorumChange
	desired := make([]ipvsVirtual, 0, len(vss))
	for _, vs := range vss {
		dests, st, ev := ipvsPool(vs.Reals, vs.Pool, vs.quorum)
		vs.quorum = st
		if ev != quorumNoEvent {
			changes = append(changes, ipvsQuorumChange{vs, ev})
		}
		for _, svc := range vs.Services {
			desired = append(desired, ipvsVirtual{svc, dests})
		}
	}
	_, err := m.r.Apply(desired)
	return m, changes, err
}

// Update reprograms vs after its Reals changed and reports the changes
// made and a quorum crossing, if any.
func (m *ipvsManager) Update(vs *ipvsVirtualServer) ([]ipvsOp, quorumEvent, error) {
	dests, st, ev := ipvsPool(vs.Reals, vs.Pool, vs.quorum)
	vs.quorum = st
	var ops []ipvsOp
	var errs []error
	for _, svc := range vs.Services {
		o, err := m.r.ApplyService(ipvsVirtual{svc, dests})
		ops = append(ops, o...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return ops, ev, errors.Join(errs...)
}

// Stop releases the virtual servers unless keep (--dont-release-ipvs) and
// returns quorum_down events for the virtual servers with omega whose
// quorum was up.
func (m *ipvsManager) Stop(keep bool) ([]ipvsQuorumChange, error) {
	var changes []ipvsQuorumChange
	for _, vs := range m.vss {
		if vs.Omega && vs.quorum == quorumUp {
			vs.quorum = quorumDown
			changes = append(changes, ipvsQuorumChange{vs, quorumLost})
		}
	}
	return changes, m.r.Release(keep)
}

// Keyword helpers for the configuration parser: each turns the arguments
// of one keepalived.conf keyword into IPVS terms and says what was wrong;
// the caller adds file:line.

// ipvsDefaultPersistence is keepalived's persistence_timeout when the
// keyword has no value or only persistence_granularity is given
// (IPVS_SVC_PERSISTENT_TIMEOUT, 6 minutes).
const ipvsDefaultPersistence = 360

// parseIPVSProtocol parses "protocol TCP|UDP|SCTP" (any case).
func parseIPVSProtocol(s string) (ipvsProtocol, error) {
	switch strings.ToUpper(s) {
	case "TCP":
		return protoTCP, nil
	case "UDP":
		return protoUDP, nil
	case "SCTP":
		return protoSCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want TCP, UDP or SCTP)", s)
}

// parseIPVSScheduler checks an lb_algo/lvs_sched name.
func parseIPVSScheduler(s string) (string, error) {
	if !slices.Contains(ipvsSchedulers, s) {
		return "", fmt.Errorf("unknown scheduler %q (want one of %s)", s, strings.Join(ipvsSchedulers, " "))
	}
	return s, nil
}

// parseIPVSFlag maps a virtual_server flag keyword to its service flag.
// sh-port/sh-fallback need the sh scheduler and mh-port/mh-fallback the mh
// one, as keepalived requires; hashed is accepted and has no effect (the
// kernel manages that bit).
func parseIPVSFlag(keyword, sched string) (ipvsFlags, error) {
	switch keyword {
	case "hashed":
		return 0, nil
	case "ops":
		return svcOnePacket, nil
	case "flag-1":
		return svcSHFallback, nil
	case "flag-2":
		return svcSHPort, nil
	case "flag-3":
		return svcSched3, nil
	case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		if want := keyword[:2]; sched != want {
			return 0, fmt.Errorf("%s only applies to the %s scheduler, not %q", keyword, want, sched)
		}
		if strings.HasSuffix(keyword, "-port") {
			return svcSHPort, nil
		}
		return svcSHFallback, nil
	}
	return 0, fmt.Errorf("unknown virtual server flag %q", keyword)
}

// parseLVSMethod parses the arguments of lb_kind/lvs_method:
// NAT | DR | TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum].
// The tunnel fields are set in the returned destination template.
func parseLVSMethod(args []string) (ipvsDest, error) {
	var d ipvsDest
	if len(args) == 0 {
		return d, fmt.Errorf("lvs_method needs NAT, DR or TUN")
	}
	switch args[0] {
	case "NAT":
		d.Method = methodNAT
	case "DR":
		d.Method = methodDR
	case "TUN":
		d.Method = methodTUN
	default:
		return d, fmt.Errorf("unknown forwarding method %q (want NAT, DR or TUN)", args[0])
	}
	rest := args[1:]
	if d.Method != methodTUN && len(rest) > 0 {
		return d, fmt.Errorf("%s takes no options, got %q", args[0], strings.Join(rest, " "))
	}
	haveCsum := false
	for len(rest) > 0 {
		switch rest[0] {
		case "type", "port":
			if len(rest) < 2 {
				return d, fmt.Errorf("TUN %s needs a value", rest[0])
			}
			if rest[0] == "type" {
				switch rest[1] {
				case "ipip":
					d.Tunnel = tunnelIPIP
				case "gue":
					d.Tunnel = tunnelGUE
				case "gre":
					d.Tunnel = tunnelGRE
				default:
					return d, fmt.Errorf("unknown tunnel type %q (want ipip, gue or gre)", rest[1])
				}
			} else {
				p, err := strconv.ParseUint(rest[1], 10, 16)
				if err != nil || p == 0 {
					return d, fmt.Errorf("bad tunnel port %q", rest[1])
				}
				d.TunnelPort = uint16(p)
			}
			rest = rest[2:]
		case "nocsum", "csum", "remcsum":
			d.TunnelCsum = map[string]uint16{"nocsum": 0, "csum": 1, "remcsum": 2}[rest[0]]
			haveCsum = true
			rest = rest[1:]
		default:
			return d, fmt.Errorf("unknown TUN option %q", rest[0])
		}
	}
	switch {
	case d.Tunnel == tunnelGUE && d.TunnelPort == 0:
		return d, fmt.Errorf("TUN type gue needs a port")
	case d.Tunnel != tunnelGUE && d.TunnelPort != 0:
		return d, fmt.Errorf("a tunnel port only applies to TUN type gue")
	case d.Tunnel == tunnelIPIP && haveCsum:
		return d, fmt.Errorf("checksum options only apply to TUN type gue or gre")
	case d.Tunnel == tunnelGRE && d.TunnelCsum == 2:
		return d, fmt.Errorf("remcsum only applies to TUN type gue")
	}
	return d, nil
}

// parsePersistenceGranularity parses persistence_granularity: a solid
// IPv4 netmask (255.255.255.0) or an IPv6 prefix length (1-128). It
// returns the prefix length and the family the value implies.
func parsePersistenceGranularity(s string) (int, ipvsFamily, error) {
	if strings.Contains(s, ".") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return 0, 0, fmt.Errorf("bad IPv4 persistence_granularity %q", s)
		}
		b := a.As4()
		m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		ones := 0
		for ones < 32 && m&(1<<(31-ones)) != 0 {
			ones++
		}
		if ones == 0 || m<<ones != 0 {
			return 0, 0, fmt.Errorf("IPv4 persistence_granularity %q is not a solid netmask", s)
		}
		return ones, familyINET, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 128 {
		return 0, 0, fmt.Errorf("bad IPv6 persistence_granularity %q (want a prefix length 1-128)", s)
	}
	return n, familyINET6, nil
}
