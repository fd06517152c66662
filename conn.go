package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// The Linux I/O layer below the daemon driver, one seam per concern, each
// with a real and a fake implementation:
//
//	advertConn  (conn.go)  VRRP messages in and out: listenMulticast
//	                       (AF_PACKET), listenUnicast (raw IP); memLAN fake
//	addrs       (vip.go)   VIPs via rtnetlink: netlinkAddrs; fakeAddrs;
//	                       promoteSecondaries per interface at start
//	vmacs       (vip.go)   use_vmac macvlan: netlinkVMACs
//	announcer   (arp.go)   gratuitous ARP / unsolicited NA: newAnnouncer;
//	                       fakeAnnouncer; garpSched decides when (pure)
//	linkWatcher (link.go)  link up/down: watchLinks; fakeLinks
//
// Constructors open sockets in the calling thread's network namespace;
// the results can then be used from any goroutine. A driver per instance:
//
//	c, _ := listenMulticast(ifi, mcastConfig{Src: src, SrcMAC: vmac})
//	go func() { for { n, meta, err := c.ReadAdvert(buf); if isClosed(err) { return } ... } }()
//	on MASTER: addrs.Add(each VIP); garp.Start(now, targets); send garp.Due(now)
//	           with announceAll, re-arm a timer for the returned deadline
//	on leaving: garp.Stop(); addrs.Del(each VIP)

// VRRP on the wire: RFC 3768 section 5.2 and RFC 5798 sections 5.1, 7.3.
const (
	vrrpTOS      = 0xc0
	ethHdrLen    = 14
	ipv4HdrLen   = 20
	ipv6HdrLen   = 40
	maxFrameSize = 65536
)

// advertConn sends and receives VRRP messages (the IP payload, header
// excluded). The multicast form speaks AF_PACKET on one interface; the
// unicast form uses a raw IP socket and the kernel's routing.
type advertConn interface {
	// WriteAdvert sends msg, a complete VRRP message whose checksum is
	// already set, to dst. For a multicast conn an invalid dst means the
	// configured group.
	WriteAdvert(msg []byte, dst netip.Addr) error
	// ReadAdvert blocks until a VRRP message arrives, copies it into buf
	// (trimmed to the IP length, so Ethernet padding is gone) and returns
	// its length and where it came from. Frames that are not VRRP or that
	// are malformed at the IP layer are dropped and counted, not returned.
	// After Close it returns an error for which isClosed is true. One
	// goroutine reads; another may write at the same time.
	ReadAdvert(buf []byte) (n int, meta frameMeta, err error)
	Close() error
}

// frameMeta is what the link and IP layers say about a received VRRP
// message; the validation ladder (RFC 5798 section 7.1) needs all of it.
type frameMeta struct {
	Src, Dst netip.Addr
	TTL      uint8 // TTL (IPv4) or hop limit (IPv6)
	SrcMAC   net.HardwareAddr
	Ifindex  int
	Unicast  bool // received on a unicast conn (SrcMAC is then unknown)
}

// isClosed reports whether err comes from using a closed conn; a read
// loop ends on it.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// errNotVRRP is wrapped by frame parse errors; ReadAdvert counts and
// skips them.
var errNotVRRP = errors.New("not a vrrp frame")

// vmacFor returns the virtual router MAC address for vrid: RFC 5798
// section 7.3, 00-00-5E-00-01-{VRID} for IPv4 and 00-00-5E-00-02-{VRID}
// for IPv6.
func vmacFor(vrid uint8, ipv6 bool) net.HardwareAddr {
	if ipv6 {
		return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, vrid}
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, vrid}
}

// multicastMAC maps an IP multicast group to its Ethernet address:
// RFC 1112 section 6.4 for IPv4, RFC 2464 section 7 for IPv6.
func multicastMAC(group netip.Addr) net.HardwareAddr {
	b := group.As16()
	if group.Is4() || group.Is4In6() {
		return net.HardwareAddr{0x01, 0x00, 0x5e, b[13] & 0x7f, b[14], b[15]}
	}
	return net.HardwareAddr{0x33, 0x33, b[12], b[13], b[14], b[15]}
}

// mcastConfig says how a multicast conn sends.
type mcastConfig struct {
	// Src is the source address of adverts; its family picks IPv4 or
	// IPv6. RFC 5798 section 5.1.2.1 wants a link-local source for IPv6.
	Src netip.Addr
	// Group is the destination group; zero means 224.0.0.18 / ff02::12
	// (keepalived's vrrp_mcast_group4/6 override it).
	Group netip.Addr
	// SrcMAC is the Ethernet source; nil means the interface's MAC (what
	// keepalived sends without use_vmac). With use_vmac it is vmacFor(VRID).
	SrcMAC net.HardwareAddr
}

// mcastConn is the multicast advertConn: AF_PACKET send and receive on one
// interface. AF_PACKET rather than a raw IP socket so that the Ethernet
// source can be the virtual MAC (RFC 5798 section 7.3) and so that the
// source MAC of received adverts is known.
type mcastConn struct {
	ifi    *net.Interface
	pc     *packet.Conn
	join   *membership // holds the IP-level membership, reads nothing
	src    netip.Addr
	group  netip.Addr
	srcMAC net.HardwareAddr
	dstMAC net.HardwareAddr
	ipID   atomic.Uint32
	rbuf   []byte
	drops  atomic.Uint64
	closed atomic.Bool
	// frames read, and reads that found the socket empty (each one a
	// wait for the poller): their ratio is frames per wake-up (vipd debug).
	frames, waits atomic.Uint64

	// sendFd is a second packet socket, for sending only: protocol 0, so
	// it receives nothing, and outside Go's poller. Sending on pc instead
	// woke the poller's thread for every advert, when the kernel freed the
	// frame and reported pc writable (bench/scale.sh, perf), and
	// mdlayher/socket's wrappers allocated a closure and a sockaddr per
	// frame. fdMu is read-held while sendFd is in use; Close write-holds
	// it to retire sendFd before closing it, so a send never reaches a
	// descriptor number the process has reused.
	fdMu   sync.RWMutex
	sendFd int // -1 once closed
	rc     syscall.RawConn
	readFn func(fd uintptr) bool // reads one frame into rbuf: rn, rerr, rll
	rn     int
	rerr   error
	rll    unix.RawSockaddrLinklayer
}

// listenMulticast opens a multicast VRRP conn on ifi. It must run in the
// network namespace of ifi; afterwards the conn may be used from any
// goroutine.
func listenMulticast(ifi *net.Interface, cfg mcastConfig) (*mcastConn, error) {
	if !cfg.Src.IsValid() {
		return nil, fmt.Errorf("multicast conn on %s: no source address", ifi.Name)
	}
	v6 := cfg.Src.Is6() && !cfg.Src.Is4In6()
	src := cfg.Src.Unmap()
	group := cfg.Group.Unmap()
	if !group.IsValid() {
		group = vrrpGroup4
		if v6 {
			group = vrrpGroup6
		}
	}
	if group.Is6() != v6 || !group.IsMulticast() {
		return nil, fmt.Errorf("multicast conn on %s: group %s does not suit source %s", ifi.Name, group, src)
	}
	srcMAC := cfg.SrcMAC
	if srcMAC == nil {
		srcMAC = ifi.HardwareAddr
	}
	if len(srcMAC) != 6 {
		return nil, fmt.Errorf("multicast conn on %s: interface has no Ethernet address", ifi.Name)
	}
	// ETH_P_ALL, not ETH_P_IP: packet sockets for one protocol get frames
	// only after the device's rx_handler, and macvlan's (use_vmac on this
	// interface) takes multicast frames whose source MAC is its own VMAC
	// for the macvlan alone, so the other routers' adverts sent from the
	// VMAC would never reach us. ETH_P_ALL taps see every frame first;
	// the BPF filter keeps the cost to VRRP frames, and our own outgoing
	// copies are skipped in ReadAdvert.
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: vrrpFilter(v6)})
	if err != nil {
		return nil, fmt.Errorf("multicast conn on %s: %w", ifi.Name, err)
	}
	sizeReceiveBuffer(pc)
	c := &mcastConn{ifi: ifi, pc: pc, src: src, group: group, srcMAC: srcMAC,
		dstMAC: multicastMAC(group), rbuf: make([]byte, maxFrameSize), sendFd: -1}
	if c.rc, err = pc.SyscallConn(); err == nil {
		c.sendFd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	}
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("multicast conn on %s: %w", ifi.Name, err)
	}
	c.readFn = c.recvfrom
	// The link-level membership makes the NIC pass the group's MAC; the
	// IP-level one below also sends IGMP/MLD reports, which snooping
	// switches need to forward the group to us, as keepalived's join does.
	if err := pc.JoinGroup(c.dstMAC); err != nil {
		c.Close()
		return nil, fmt.Errorf("multicast conn on %s: join %s: %w", ifi.Name, c.dstMAC, err)
	}
	if c.join, err = joinIPGroup(ifi, group); err != nil {
		c.Close()
		return nil, fmt.Errorf("multicast conn on %s: join %s: %w", ifi.Name, group, err)
	}
	return c, nil
}

// mcastReadBuffer is the receive buffer of a multicast conn. Hundreds of
// instances on one interface whose timers run in step send their adverts
// in bursts; the default buffer (~200 KiB, a few hundred small frames at
// their true size) overflowed at 250 instances per interface and the lost
// adverts made backups take over, whose adverts made more bursts: a split
// brain that did not settle (bench/scale.sh; keepalived sizes its buffers
// too, vrrp_rx_bufs_policy).
const mcastReadBuffer = 4 << 20

// sizeReceiveBuffer enlarges pc's receive buffer (beyond rmem_max when
// root: SO_RCVBUFFORCE) and asks the kernel not to queue our own
// outgoing frames (PACKET_IGNORE_OUTGOING, Linux 4.20), which would take
// half of it. Both are best effort: ReadAdvert skips outgoing copies
// anyway.
func sizeReceiveBuffer(pc *packet.Conn) {
	rc, err := pc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, mcastReadBuffer) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, mcastReadBuffer)
		}
		unix.SetsockoptInt(int(fd), unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
}

// membership is an IP-level multicast group membership, held by a UDP
// socket bound to no port: it receives nothing, and no other socket sees
// a copy of the adverts on its account. (A raw socket for protocol 112,
// as keepalived's, made the kernel clone every advert for it; its BPF
// filter then dropped the clone.) It stays outside Go's poller. With no
// raw socket for protocol 112 the IP layer counts the adverts it sees in
// IpInUnknownProtos / Ip6InUnknownProtos (netstat -s) before dropping
// them; no ICMP error goes out for a multicast destination.
type membership struct{ fd int }

// joinIPGroup joins group on ifi, so that the kernel sends IGMP / MLD
// reports for it (snooping switches forward the group only then).
func joinIPGroup(ifi *net.Interface, group netip.Addr) (*membership, error) {
	family := unix.AF_INET6
	if group.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if group.Is4() {
		err = unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifi.Index)})
	} else {
		err = unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP,
			&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifi.Index)})
	}
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	return &membership{fd: fd}, nil
}

// Close leaves the group. A second Close does nothing.
func (m *membership) Close() error {
	if m.fd < 0 {
		return nil
	}
	err := unix.Close(m.fd)
	m.fd = -1
	return err
}

// vrrpFilter is a BPF program passing only untagged Ethernet frames that
// carry IPv4 (or IPv6) with protocol (next header) 112, so the kernel does
// not wake us for all other traffic on the interface.
func vrrpFilter(v6 bool) []bpf.RawInstruction {
	etype, protoOff := uint32(unix.ETH_P_IP), uint32(ethHdrLen+9)
	if v6 {
		etype, protoOff = unix.ETH_P_IPV6, ethHdrLen+6
	}
	prog, err := bpf.Assemble([]bpf.Instruction{
		// Our own adverts: sent from another socket (sendFd), they reach
		// this tap as PACKET_OUTGOING copies. PACKET_IGNORE_OUTGOING
		// drops them first where the kernel has it (Linux 4.20).
		bpf.LoadExtension{Num: bpf.ExtType},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.PACKET_OUTGOING, SkipTrue: 7},
		// A frame whose VLAN tag the NIC moved to metadata belongs to the
		// VLAN interface, not to this one, though a tap here sees it.
		bpf.LoadExtension{Num: bpf.ExtVLANTagPresent},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 5},
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etype, SkipTrue: 3},
		bpf.LoadAbsolute{Off: protoOff, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: vrrpProto, SkipTrue: 1},
		bpf.RetConstant{Val: maxFrameSize},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic("vrrp bpf filter does not assemble: " + err.Error())
	}
	return prog
}

// WriteAdvert implements advertConn.
func (c *mcastConn) WriteAdvert(msg []byte, dst netip.Addr) error {
	fb := framePool.Get().(*[]byte)
	defer framePool.Put(fb)
	frame, sa, err := c.appendFrame((*fb)[:0], msg, dst)
	if err != nil {
		return err
	}
	*fb = frame
	if err := c.sendto(frame, &sa); err != nil {
		return fmt.Errorf("multicast conn on %s: send: %w", c.ifi.Name, err)
	}
	return nil
}

// appendFrame appends the Ethernet frame carrying msg to dst (the group
// when invalid) to b, and returns it with its link-layer destination.
func (c *mcastConn) appendFrame(b, msg []byte, dst netip.Addr) ([]byte, unix.RawSockaddrLinklayer, error) {
	var sa unix.RawSockaddrLinklayer
	dst = dst.Unmap()
	if !dst.IsValid() {
		dst = c.group
	}
	dstMAC := c.dstMAC
	if dst != c.group {
		if !dst.IsMulticast() || dst.Is4() != c.src.Is4() {
			return b, sa, fmt.Errorf("multicast conn on %s: cannot send to %s", c.ifi.Name, dst)
		}
		dstMAC = multicastMAC(dst)
	}
	frame, err := appendFrame(b, c.srcMAC, dstMAC, c.src, dst, uint16(c.ipID.Add(1)), msg)
	if err != nil {
		return b, sa, fmt.Errorf("multicast conn on %s: %w", c.ifi.Name, err)
	}
	proto := uint16(unix.ETH_P_IP)
	if !c.src.Is4() {
		proto = unix.ETH_P_IPV6
	}
	sa = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(proto),
		Ifindex: int32(c.ifi.Index), Halen: 6}
	copy(sa.Addr[:], dstMAC)
	return frame, sa, nil
}

// sendto writes frame to sa with one sendto(2) on the send socket, no
// allocation. It never waits: it runs on goroutines that serve every
// instance of the socket, and a device queue that stays full (the error
// is returned and logged) must not stall them. Since it cannot block it is
// a raw system call (see recvfrom).
func (c *mcastConn) sendto(frame []byte, sa *unix.RawSockaddrLinklayer) error {
	c.fdMu.RLock()
	defer c.fdMu.RUnlock()
	if c.sendFd < 0 {
		return net.ErrClosed
	}
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(c.sendFd), uintptr(unsafe.Pointer(&frame[0])), uintptr(len(frame)),
			unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(sa)), unsafe.Sizeof(*sa))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// sendmmsg writes the frames of msgs with one sendmmsg(2), raw and never
// waiting as sendto does. It returns how many were sent, and the error of
// the one after them when not all were.
func (c *mcastConn) sendmmsg(msgs []unix.Mmsghdr) (int, error) {
	c.fdMu.RLock()
	defer c.fdMu.RUnlock()
	if c.sendFd < 0 {
		return 0, net.ErrClosed
	}
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(c.sendFd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		}
		return 0, e
	}
}

// recvfrom is the read callback of ReadAdvert: one recvfrom(2) into rbuf,
// the sender's link-layer address into rll; false asks the poller to wait.
// Only the hub's goroutine reads a conn.
//
// It and sendto make raw system calls, which do not tell the Go scheduler:
// they cannot block (MSG_DONTWAIT on a non-blocking socket). unix.Syscall6
// does tell it, and every such call woke the runtime's monitor thread
// (sysmon) out of its deep sleep when the process was idle; it then polled
// every 20 us for a while. At 1,000 instances that was a third of the
// process's context switches and a tenth of its CPU time (bench/scale.sh,
// perf). The pointers are converted in the call itself, as unsafe.Pointer's
// rules for system calls require.
func (c *mcastConn) recvfrom(fd uintptr) bool {
	salen := uint32(unsafe.Sizeof(c.rll))
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.rbuf[0])), uintptr(len(c.rbuf)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&c.rll)), uintptr(unsafe.Pointer(&salen)))
	if e != 0 {
		c.rn, c.rerr = 0, e
		if e == unix.EAGAIN {
			c.waits.Add(1)
			return false
		}
		return true
	}
	c.rn, c.rerr = int(n), nil
	c.frames.Add(1)
	return true
}

// buildFrame wraps a VRRP message in Ethernet and IP headers as the
// kernel does for keepalived's raw socket: TTL / hop limit 255, IPv4 TOS
// and IPv6 traffic class 0xc0 (internetwork control), DF clear.
func buildFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, id uint16, msg []byte) ([]byte, error) {
	return appendFrame(nil, srcMAC, dstMAC, src, dst, id, msg)
}

// framePool holds send buffers: a conn sends from several goroutines (the
// hub's advert scheduler, runners taking over).
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1514); return &b }}

// appendFrame is buildFrame appending to b.
func appendFrame(b []byte, srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, id uint16, msg []byte) ([]byte, error) {
	v4 := src.Is4()
	hl := ipv6HdrLen
	if v4 {
		hl = ipv4HdrLen
	}
	if len(msg)+hl > 0xffff {
		return nil, fmt.Errorf("advert of %d bytes is too long", len(msg))
	}
	b = slices.Grow(b[:0], ethHdrLen+hl+len(msg))[:ethHdrLen+hl+len(msg)]
	clear(b)
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	ip := b[ethHdrLen:]
	if v4 {
		binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_IP)
		ip[0] = 0x45
		ip[1] = vrrpTOS
		binary.BigEndian.PutUint16(ip[2:4], uint16(hl+len(msg)))
		binary.BigEndian.PutUint16(ip[4:6], id)
		ip[8] = vrrpTTL
		ip[9] = vrrpProto
		s, d := src.As4(), dst.As4()
		copy(ip[12:16], s[:])
		copy(ip[16:20], d[:])
		binary.BigEndian.PutUint16(ip[10:12], ipChecksum(ip[:ipv4HdrLen]))
	} else {
		binary.BigEndian.PutUint16(b[12:14], unix.ETH_P_IPV6)
		// Traffic class 0xc0 as keepalived sets it; flow label 0 (its
		// kernel fills in a hash there, which receivers ignore).
		ip[0], ip[1] = 0x60|vrrpTOS>>4, vrrpTOS<<4&0xf0
		binary.BigEndian.PutUint16(ip[4:6], uint16(len(msg)))
		ip[6] = vrrpProto
		ip[7] = vrrpTTL
		s, d := src.As16(), dst.As16()
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
	}
	copy(ip[hl:], msg)
	return b, nil
}

// ipChecksum is the Internet checksum (RFC 1071) of b.
func ipChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// ReadAdvert implements advertConn.
func (c *mcastConn) ReadAdvert(buf []byte) (int, frameMeta, error) {
	for {
		err := c.rc.Read(c.readFn)
		n, rerr, frame := c.rn, c.rerr, c.rbuf
		if err != nil {
			if c.closed.Load() {
				// The raw conn says "use of closed file" without a
				// sentinel to test for.
				err = net.ErrClosed
			}
			return 0, frameMeta{}, fmt.Errorf("multicast conn on %s: read: %w", c.ifi.Name, err)
		}
		if rerr == unix.ENETDOWN {
			// The kernel reports the interface going down once on each
			// packet socket; the link watcher tells the daemon, and
			// reading goes on when the link is back. (After the interface
			// is deleted nothing more arrives: reopen the conn when the
			// watcher reports a new index.)
			continue
		}
		if rerr != nil {
			return 0, frameMeta{}, fmt.Errorf("multicast conn on %s: read: %w", c.ifi.Name, rerr)
		}
		// Our own adverts come back to packet sockets as PACKET_OUTGOING;
		// RFC 5798 section 7.1 has no use for them.
		if c.rll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		payload, meta, err := parseFrame(frame[:n])
		if err != nil {
			c.drops.Add(1)
			continue
		}
		if meta.Dst != c.group {
			// Adverts to another group (vrrp_mcast_group4/6 of other
			// routers) or unicast ones: not for this conn.
			continue
		}
		meta.Ifindex = c.ifi.Index
		if len(payload) > len(buf) {
			c.drops.Add(1)
			continue
		}
		return copy(buf, payload), meta, nil
	}
}

// parseFrame checks the Ethernet and IP headers of a received frame and
// returns the VRRP message it carries, trimmed to the IP length.
func parseFrame(f []byte) ([]byte, frameMeta, error) {
	var m frameMeta
	if len(f) < ethHdrLen {
		return nil, m, fmt.Errorf("%w: frame of %d bytes has no ethernet header", errNotVRRP, len(f))
	}
	m.SrcMAC = net.HardwareAddr(append([]byte(nil), f[6:12]...))
	ip := f[ethHdrLen:]
	switch binary.BigEndian.Uint16(f[12:14]) {
	case unix.ETH_P_IP:
		if len(ip) < ipv4HdrLen || ip[0]>>4 != 4 {
			return nil, m, fmt.Errorf("%w: short or bad ipv4 header", errNotVRRP)
		}
		hl := int(ip[0]&0x0f) * 4
		tl := int(binary.BigEndian.Uint16(ip[2:4]))
		if hl < ipv4HdrLen || tl < hl || tl > len(ip) {
			return nil, m, fmt.Errorf("%w: ipv4 header length %d, total length %d, frame has %d", errNotVRRP, hl, tl, len(ip))
		}
		if ip[9] != vrrpProto {
			return nil, m, fmt.Errorf("%w: ip protocol %d", errNotVRRP, ip[9])
		}
		if binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
			return nil, m, fmt.Errorf("%w: ipv4 fragment", errNotVRRP)
		}
		m.TTL = ip[8]
		m.Src = netip.AddrFrom4([4]byte(ip[12:16]))
		m.Dst = netip.AddrFrom4([4]byte(ip[16:20]))
		return ip[hl:tl], m, nil
	case unix.ETH_P_IPV6:
		if len(ip) < ipv6HdrLen || ip[0]>>4 != 6 {
			return nil, m, fmt.Errorf("%w: short or bad ipv6 header", errNotVRRP)
		}
		pl := int(binary.BigEndian.Uint16(ip[4:6]))
		if ipv6HdrLen+pl > len(ip) {
			return nil, m, fmt.Errorf("%w: ipv6 payload length %d, frame has %d", errNotVRRP, pl, len(ip)-ipv6HdrLen)
		}
		if ip[6] != vrrpProto {
			return nil, m, fmt.Errorf("%w: ipv6 next header %d", errNotVRRP, ip[6])
		}
		m.TTL = ip[7]
		m.Src = netip.AddrFrom16([16]byte(ip[8:24]))
		m.Dst = netip.AddrFrom16([16]byte(ip[24:40]))
		return ip[ipv6HdrLen : ipv6HdrLen+pl], m, nil
	}
	return nil, m, fmt.Errorf("%w: ethertype %#04x", errNotVRRP, binary.BigEndian.Uint16(f[12:14]))
}

// Drops is the number of frames dropped as not VRRP or malformed.
func (c *mcastConn) Drops() uint64 { return c.drops.Load() }

// Close implements advertConn.
func (c *mcastConn) Close() error {
	c.closed.Store(true)
	c.fdMu.Lock()
	if c.sendFd >= 0 {
		unix.Close(c.sendFd)
		c.sendFd = -1
	}
	c.fdMu.Unlock()
	err := c.pc.Close()
	if c.join != nil {
		c.join.Close()
	}
	return err
}

// unicastConn is the unicast advertConn (keepalived's unicast_peer): a raw
// IP socket for protocol 112, so adverts to each peer go through the
// kernel's routing and may cross routers.
type unicastConn struct {
	src netip.Addr
	p4  *ipv4.PacketConn
	p6  *ipv6.PacketConn
	c   net.PacketConn
	rc  syscall.RawConn
}

// listenUnicast opens a unicast VRRP conn bound to src (unicast_src_ip):
// adverts leave from src and only adverts sent to src are read. An
// unspecified src (0.0.0.0 or ::) lets the kernel choose and receives
// adverts to any local address. Run it in the namespace it serves.
func listenUnicast(src netip.Addr) (*unicastConn, error) {
	src = src.Unmap()
	if !src.IsValid() {
		return nil, errors.New("unicast conn: no source address")
	}
	u := &unicastConn{src: src}
	// Freebind: unicast_src_ip may not be configured yet (interface
	// missing or down at start); the conn works once it is.
	lc := net.ListenConfig{Control: func(network, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if strings.HasSuffix(network, "6") {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	ctx := context.Background()
	if src.Is4() {
		c, err := lc.ListenPacket(ctx, "ip4:112", src.String())
		if err != nil {
			return nil, fmt.Errorf("unicast conn: %w", err)
		}
		u.c, u.p4 = c, ipv4.NewPacketConn(c)
		u.rc, err = c.(syscall.Conn).SyscallConn()
		err = errors.Join(err,
			u.p4.SetTTL(vrrpTTL),
			u.p4.SetMulticastTTL(vrrpTTL),
			u.p4.SetTOS(vrrpTOS),
			u.p4.SetControlMessage(ipv4.FlagTTL|ipv4.FlagDst|ipv4.FlagInterface, true),
		)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("unicast conn: %w", err)
		}
		return u, nil
	}
	c, err := lc.ListenPacket(ctx, "ip6:112", src.String())
	if err != nil {
		return nil, fmt.Errorf("unicast conn: %w", err)
	}
	u.c, u.p6 = c, ipv6.NewPacketConn(c)
	u.rc, err = c.(syscall.Conn).SyscallConn()
	err = errors.Join(err,
		u.p6.SetHopLimit(vrrpTTL),
		u.p6.SetMulticastHopLimit(vrrpTTL),
		u.p6.SetTrafficClass(vrrpTOS),
		// The codec computes the VRRPv3 checksum over the IPv6
		// pseudo-header (RFC 5798 section 5.2.8); the kernel must leave
		// it alone.
		u.p6.SetChecksum(false, 0),
		u.p6.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true),
	)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("unicast conn: %w", err)
	}
	return u, nil
}

// SetTTL sets the TTL / hop limit of sent adverts (keepalived's
// unicast_ttl; 255 by default, RFC 5798 section 5.1.1.3).
func (u *unicastConn) SetTTL(ttl int) error {
	if u.p4 != nil {
		return u.p4.SetTTL(ttl)
	}
	return u.p6.SetHopLimit(ttl)
}

// WriteAdvert implements advertConn. dst is one unicast peer; a
// link-local IPv6 peer needs its zone.
func (u *unicastConn) WriteAdvert(msg []byte, dst netip.Addr) error {
	dst = dst.Unmap()
	if !dst.IsValid() || dst.Is4() != u.src.Is4() {
		return fmt.Errorf("unicast conn from %s: cannot send to %s", u.src, dst)
	}
	var sa unix.Sockaddr
	if dst.Is4() {
		sa = &unix.SockaddrInet4{Addr: dst.As4()}
	} else {
		sa6 := &unix.SockaddrInet6{Addr: dst.As16()}
		if z := dst.Zone(); z != "" {
			if n, err := strconv.Atoi(z); err == nil {
				sa6.ZoneId = uint32(n)
			} else if ifi, err := ifaces.byName(z); err == nil { // cached: not a netlink dump per advert
				sa6.ZoneId = uint32(ifi.Index)
			} else {
				return fmt.Errorf("unicast conn from %s: send to %s: %w", u.src, dst, err)
			}
		}
		sa = sa6
	}
	// Never wait for room in the send buffer: one scheduler sends every
	// master's adverts (sched.go), and adverts piling up behind a peer
	// whose address does not resolve must not silence the others. A full
	// buffer is an error, logged, as on the multicast conn.
	var serr error
	err := u.rc.Write(func(fd uintptr) bool {
		for {
			serr = unix.Sendto(int(fd), msg, unix.MSG_DONTWAIT, sa)
			if serr != unix.EINTR {
				return true
			}
		}
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("unicast conn from %s: send to %s: %w", u.src, dst, err)
	}
	return nil
}

// ReadAdvert implements advertConn. TTL and destination come from
// control messages (IP_RECVTTL / IP_PKTINFO, IPV6_RECVHOPLIMIT /
// IPV6_RECVPKTINFO).
func (u *unicastConn) ReadAdvert(buf []byte) (int, frameMeta, error) {
	m := frameMeta{Unicast: true}
	if u.p4 != nil {
		n, cm, src, err := u.p4.ReadFrom(buf)
		if err != nil {
			return 0, m, fmt.Errorf("unicast conn on %s: read: %w", u.src, err)
		}
		if a, ok := src.(*net.IPAddr); ok {
			m.Src, _ = netip.AddrFromSlice(a.IP)
			m.Src = m.Src.Unmap()
		}
		if cm != nil {
			m.TTL = uint8(cm.TTL)
			m.Dst, _ = netip.AddrFromSlice(cm.Dst)
			m.Dst = m.Dst.Unmap()
			m.Ifindex = cm.IfIndex
		}
		return n, m, nil
	}
	n, cm, src, err := u.p6.ReadFrom(buf)
	if err != nil {
		return 0, m, fmt.Errorf("unicast conn on %s: read: %w", u.src, err)
	}
	if a, ok := src.(*net.IPAddr); ok {
		m.Src, _ = netip.AddrFromSlice(a.IP)
		m.Src = m.Src.WithZone(a.Zone)
	}
	if cm != nil {
		m.TTL = uint8(cm.HopLimit)
		m.Dst, _ = netip.AddrFromSlice(cm.Dst)
		m.Ifindex = cm.IfIndex
	}
	return n, m, nil
}

// Close implements advertConn.
func (u *unicastConn) Close() error { return u.c.Close() }

// interfaceSource returns the address keepalived uses as the source of
// multicast adverts when none is configured: the interface's first IPv4
// address, or for IPv6 its link-local one (RFC 5798 section 5.1.2.1). It
// reads the calling thread's namespace.
func interfaceSource(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	as, err := ifaces.addrsOf(ifi)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range as {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !v6 && ip.Is4() {
			return ip, nil
		}
		if v6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("%s has no %s address", ifi.Name, fam)
}

// memLAN is an in-memory Ethernet segment of advertConns, for tests of
// the daemon and driver without root or sockets. A multicast write (dst
// invalid or multicast) reaches every other conn on the LAN; a unicast
// write reaches the conn whose source is dst. Delivery is synchronous
// into a buffer per conn; a full buffer drops, as a socket does.
type memLAN struct {
	mu    sync.Mutex
	conns []*memConn
	// Drop, when set, is asked for every delivery; true loses the frame
	// (loss, partitions).
	Drop func(from, to netip.Addr) bool
}

type memFrame struct {
	msg  []byte
	meta frameMeta
}

// memConn is one router's advertConn on a memLAN.
type memConn struct {
	lan     *memLAN
	src     netip.Addr
	mac     net.HardwareAddr
	ifindex int
	ch      chan memFrame
	closed  chan struct{}
	once    sync.Once
}

// Conn attaches a conn with source address src and MAC mac.
func (l *memLAN) Conn(src netip.Addr, mac net.HardwareAddr) *memConn {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := &memConn{lan: l, src: src, mac: mac, ifindex: len(l.conns) + 1,
		ch: make(chan memFrame, 256), closed: make(chan struct{})}
	l.conns = append(l.conns, c)
	return c
}

// WriteAdvert implements advertConn.
func (c *memConn) WriteAdvert(msg []byte, dst netip.Addr) error {
	select {
	case <-c.closed:
		return fmt.Errorf("mem conn %s: %w", c.src, net.ErrClosed)
	default:
	}
	unicast := dst.IsValid() && !dst.IsMulticast()
	if !dst.IsValid() {
		dst = vrrpGroup4
		if c.src.Is6() {
			dst = vrrpGroup6
		}
	}
	c.lan.mu.Lock()
	defer c.lan.mu.Unlock()
	for _, o := range c.lan.conns {
		if o == c || (unicast && o.src != dst) || o.src.Is4() != c.src.Is4() {
			continue
		}
		if c.lan.Drop != nil && c.lan.Drop(c.src, o.src) {
			continue
		}
		f := memFrame{msg: append([]byte(nil), msg...), meta: frameMeta{
			Src: c.src, Dst: dst, TTL: vrrpTTL, Ifindex: o.ifindex, Unicast: unicast}}
		if !unicast {
			f.meta.SrcMAC = c.mac
		}
		select {
		case o.ch <- f:
		default:
		}
	}
	return nil
}

// ReadAdvert implements advertConn.
func (c *memConn) ReadAdvert(buf []byte) (int, frameMeta, error) {
	select {
	case f := <-c.ch:
		if len(f.msg) > len(buf) {
			return 0, frameMeta{}, fmt.Errorf("mem conn %s: advert of %d bytes does not fit %d", c.src, len(f.msg), len(buf))
		}
		return copy(buf, f.msg), f.meta, nil
	case <-c.closed:
		return 0, frameMeta{}, fmt.Errorf("mem conn %s: %w", c.src, net.ErrClosed)
	}
}

// Close implements advertConn.
func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

var (
	_ advertConn = (*mcastConn)(nil)
	_ advertConn = (*unicastConn)(nil)
	_ advertConn = (*memConn)(nil)
)
