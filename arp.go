package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
)

// announcer tells the LAN that the VIPs now live at our MAC: RFC 5798
// section 6.4.2 ("for each IPv4 address associated with the virtual router
// broadcast a gratuitous ARP request", "for each IPv6 address ... send an
// unsolicited ND Neighbor Advertisement with the Router Flag (R) set ...").
type announcer interface {
	// Announce sends one gratuitous ARP (IPv4 ip) or one unsolicited
	// neighbour advertisement (IPv6 ip).
	Announce(ip netip.Addr) error
	Close() error
}

// packetAnnouncer is the announcer over AF_PACKET, building the frames
// itself: mdlayher/arp's client refuses an interface without an IPv4
// address (a VMAC has none until it becomes master), and an NA must carry
// the VIP as source, which an ICMPv6 socket refuses before the VIP is
// configured. The frames match keepalived's (vrrp_arp.c, vrrp_ndisc.c).
type packetAnnouncer struct {
	ifi *net.Interface
	mac net.HardwareAddr
	pc  *packet.Conn
	// Router reports whether to set the NA's router flag; nil means
	// read net.ipv6.conf.<dev>.forwarding each time, as keepalived does.
	// RFC 5798 section 6.4.2 wants it set; keepalived follows forwarding.
	Router func() bool
}

// newAnnouncer opens an announcer on ifi sending with srcMAC (nil: the
// interface's MAC; with use_vmac the VMAC). Run it in ifi's namespace.
func newAnnouncer(ifi *net.Interface, srcMAC net.HardwareAddr) (*packetAnnouncer, error) {
	if srcMAC == nil {
		srcMAC = ifi.HardwareAddr
	}
	if len(srcMAC) != 6 {
		return nil, fmt.Errorf("announcer on %s: no Ethernet address", ifi.Name)
	}
	// Protocol 0: the socket only sends and never queues received frames.
	pc, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("announcer on %s: %w", ifi.Name, err)
	}
	return &packetAnnouncer{ifi: ifi, mac: srcMAC, pc: pc}, nil
}

// Announce implements announcer.
func (a *packetAnnouncer) Announce(ip netip.Addr) error {
	ip = ip.Unmap()
	var (
		frame []byte
		dst   net.HardwareAddr
		err   error
	)
	if ip.Is4() {
		frame, err = garpFrame(a.mac, ip)
		dst = ethernet.Broadcast
	} else {
		router := a.Router
		if router == nil {
			router = func() bool {
				v, err := readSysctl("ipv6", a.ifi.Name, "forwarding")
				return err == nil && v == "1"
			}
		}
		frame, err = unsolicitedNA(a.mac, ip, router())
		dst = multicastMAC(allNodes)
	}
	if err != nil {
		return fmt.Errorf("announce %s on %s: %w", ip, a.ifi.Name, err)
	}
	if _, err := a.pc.WriteTo(frame, &packet.Addr{HardwareAddr: dst}); err != nil {
		return fmt.Errorf("announce %s on %s: %w", ip, a.ifi.Name, err)
	}
	return nil
}

// Close implements announcer.
func (a *packetAnnouncer) Close() error { return a.pc.Close() }

var allNodes = netip.MustParseAddr("ff02::1")

// garpFrame builds a gratuitous ARP for ip: an ARP request (RFC 5227
// section 3 calls it an ARP Announcement; keepalived sends this form)
// from mac, with sender and target protocol address both ip, target
// hardware address ff:ff:ff:ff:ff:ff, broadcast.
func garpFrame(mac net.HardwareAddr, ip netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, mac, ip, ethernet.Broadcast, ip)
	if err != nil {
		return nil, err
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: pb}
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// The library pads to the 60-byte Ethernet minimum; leave that to the
	// NIC, as keepalived does, so the frame is the same as keepalived's.
	return b[:ethHdrLen+len(pb)], nil
}

// unsolicitedNA builds an unsolicited neighbour advertisement for ip
// (RFC 4861 section 7.2.6): from ip to all-nodes ff02::1, hop limit 255,
// override flag set, solicited clear, with a target link-layer address
// option carrying mac.
func unsolicitedNA(mac net.HardwareAddr, ip netip.Addr, router bool) ([]byte, error) {
	na := &ndp.NeighborAdvertisement{
		Router:        router,
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	icmp, err := ndp.MarshalMessageChecksum(na, ip, allNodes)
	if err != nil {
		return nil, err
	}
	b := make([]byte, ethHdrLen+ipv6HdrLen+len(icmp))
	copy(b[0:6], multicastMAC(allNodes))
	copy(b[6:12], mac)
	binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_IPV6)
	h := b[ethHdrLen:]
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:6], uint16(len(icmp)))
	h[6] = unix.IPPROTO_ICMPV6
	h[7] = 255 // RFC 4861 section 7.1.2: receivers drop NAs with another hop limit
	s, d := ip.As16(), allNodes.As16()
	copy(h[8:24], s[:])
	copy(h[24:40], d[:])
	copy(h[ipv6HdrLen:], icmp)
	return b, nil
}

// fakeAnnouncer records announcements for tests.
type fakeAnnouncer struct {
	Sent []netip.Addr
	Err  error
}

func (f *fakeAnnouncer) Announce(ip netip.Addr) error {
	if f.Err != nil {
		return f.Err
	}
	f.Sent = append(f.Sent, ip)
	return nil
}

func (f *fakeAnnouncer) Close() error { return nil }

// garpConfig holds keepalived's gratuitous ARP / NA knobs (global_defs
// and vrrp_instance; keepalived.conf(5)).
type garpConfig struct {
	// Repeat is garp_master_repeat: how many of each are sent at once on
	// becoming master. Default 5.
	Repeat int
	// Delay is garp_master_delay: a second round of Repeat this long after
	// becoming master; 0 disables it. Default 5 s.
	Delay time.Duration
	// Refresh is garp_master_refresh: while master, send RefreshRepeat of
	// each this often; 0 (the default) disables it.
	Refresh time.Duration
	// RefreshRepeat is garp_master_refresh_repeat. Default 1.
	RefreshRepeat int
	// Interval is vrrp_garp_interval (or garp_interval): the least time
	// between two gratuitous ARPs on one interface. 0: no pacing.
	Interval time.Duration
	// NAInterval is vrrp_gna_interval: the same for neighbour
	// advertisements.
	NAInterval time.Duration
}

// defaultGARPConfig is keepalived's default.
func defaultGARPConfig() garpConfig {
	return garpConfig{Repeat: 5, Delay: 5 * time.Second, RefreshRepeat: 1}
}

// garpTarget is one VIP to announce and the interface to announce it on.
type garpTarget struct {
	Addr netip.Addr
	Dev  string
}

// garpQueue holds the announcements waiting on one interface and family:
// keepalived paces each interface's ARPs and NAs separately.
type garpQueue struct {
	dev     string
	v6      bool
	pending []garpTarget
	nextOK  time.Time // no send before this
}

// garpSched decides when to send gratuitous ARPs and NAs for one VRRP
// instance. It is pure: it holds no clock and no socket; the driver calls
// Due with the current time, sends what it returns, and arms one timer for
// the returned deadline.
//
// On becoming master (Start) it sends Repeat rounds at once, Repeat more
// after Delay, and RefreshRepeat every Refresh while master. A round is
// one announcement per VIP, in VIP order. Pacing spaces announcements on
// one interface by Interval (ARP) or NAInterval (NA). Unlike keepalived,
// which merges announcements still waiting for their pacing slot into one
// per address, every announcement of every round is sent; pacing only
// spreads them out.
type garpSched struct {
	cfg       garpConfig
	targets   []garpTarget
	active    bool
	burstAt   time.Time // second round due; zero: none
	refreshAt time.Time // next refresh; zero: none
	queues    []*garpQueue
}

// newGARPSched returns a stopped scheduler.
func newGARPSched(cfg garpConfig) *garpSched {
	return &garpSched{cfg: cfg}
}

// Start is called on entering MASTER (RFC 5798 section 6.4.1/6.4.2) with
// the instance's VIPs. Any earlier schedule is dropped.
func (s *garpSched) Start(now time.Time, targets []garpTarget) {
	s.Stop()
	s.active = true
	s.targets = slices.Clone(targets)
	s.enqueue(s.cfg.Repeat)
	if s.cfg.Delay > 0 {
		s.burstAt = now.Add(s.cfg.Delay)
	}
	if s.cfg.Refresh > 0 {
		s.refreshAt = now.Add(s.cfg.Refresh)
	}
}

// Burst queues repeat more rounds now, e.g. keepalived's
// garp_lower_prio_repeat when a master hears a lower priority advert.
// It does nothing when stopped.
func (s *garpSched) Burst(repeat int) {
	if s.active {
		s.enqueue(repeat)
	}
}

// Stop is called on leaving MASTER: nothing more is sent.
func (s *garpSched) Stop() {
	s.active = false
	s.burstAt, s.refreshAt = time.Time{}, time.Time{}
	for _, q := range s.queues {
		q.pending = nil
	}
}

func (s *garpSched) enqueue(rounds int) {
	for r := 0; r < rounds; r++ {
		for _, t := range s.targets {
			s.queue(t).pending = append(s.queue(t).pending, t)
		}
	}
}

func (s *garpSched) queue(t garpTarget) *garpQueue {
	v6 := !t.Addr.Unmap().Is4()
	for _, q := range s.queues {
		if q.dev == t.Dev && q.v6 == v6 {
			return q
		}
	}
	q := &garpQueue{dev: t.Dev, v6: v6}
	s.queues = append(s.queues, q)
	return q
}

// Due returns the announcements to send now and the time Due wants to be
// called next (zero: nothing is scheduled).
func (s *garpSched) Due(now time.Time) (send []garpTarget, next time.Time) {
	if !s.active {
		return nil, time.Time{}
	}
	if !s.burstAt.IsZero() && !now.Before(s.burstAt) {
		s.burstAt = time.Time{}
		s.enqueue(s.cfg.Repeat)
	}
	if !s.refreshAt.IsZero() && !now.Before(s.refreshAt) {
		s.refreshAt = now.Add(s.cfg.Refresh)
		s.enqueue(s.cfg.RefreshRepeat)
	}
	for _, q := range s.queues {
		gap := s.cfg.Interval
		if q.v6 {
			gap = s.cfg.NAInterval
		}
		if gap <= 0 {
			send = append(send, q.pending...)
			q.pending = q.pending[:0]
			continue
		}
		if len(q.pending) > 0 && !now.Before(q.nextOK) {
			send = append(send, q.pending[0])
			q.pending = q.pending[1:]
			q.nextOK = now.Add(gap)
		}
		if len(q.pending) > 0 {
			next = earliest(next, q.nextOK)
		}
	}
	next = earliest(next, s.burstAt)
	next = earliest(next, s.refreshAt)
	return send, next
}

// earliest returns the earlier of a and b, a zero time counting as none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// errNoAnnouncer is returned by announceAll for a target whose interface
// has no announcer.
var errNoAnnouncer = errors.New("no announcer for interface")

// announceAll sends each target through the announcer of its interface,
// returning the errors joined; one failure does not stop the others.
func announceAll(by map[string]announcer, targets []garpTarget) error {
	var errs []error
	for _, t := range targets {
		a, ok := by[t.Dev]
		if !ok {
			errs = append(errs, fmt.Errorf("announce %s on %s: %w", t.Addr, t.Dev, errNoAnnouncer))
			continue
		}
		if err := a.Announce(t.Addr); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	_ announcer = (*packetAnnouncer)(nil)
	_ announcer = (*fakeAnnouncer)(nil)
)
