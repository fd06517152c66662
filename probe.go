package main

// TCP_CHECK's connects, all in one epoll set, as keepalived's checker
// process runs them in its event loop. net.Dial costs a dozen system calls
// per connection (TCP_NODELAY, four keep-alive options, both addresses,
// the poller's registration), each one telling the Go scheduler, which
// wakes its monitor thread (see mcastConn.recvfrom). At 5,000 real
// servers that was a fifth of vipd's checker CPU on the host (44 against
// 36 us a check, BenchmarkLVSManagerChecks) and more in the IPVS guest.
// Here a check is socket, connect, getsockopt and close, all raw system
// calls that cannot block, started on the checker scheduler's goroutine
// (rsProber). A connect still under way after the connect call joins the
// epoll set; the set itself is registered with Go's poller, so one
// goroutine waits on it without holding a thread and hands each result
// to its sink, the scheduler's channel. No goroutine, timer or channel is
// made per check: the scheduler's own timer heap holds the deadlines.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpProber owns the epoll set of connects in flight.
type tcpProber struct {
	once    sync.Once
	initErr error
	epfd    int
	rc      syscall.RawConn
	mu      sync.Mutex
	pending map[int32]tcpProbe  // by socket
	seq     uint32              // the last connect's number
	dead    error               // the loop's wait failed: connects use net.Dial
	events  [64]unix.EpollEvent // the loop's scratch
}

// tcpProbe is one connect in flight.
type tcpProbe struct {
	// seq tells this connect from another on the same socket number; the
	// epoll event carries it too.
	seq  uint32
	sink tcpProbeSink
	// self is the target when the kernel might pick it as the local end
	// too (a TCP self-connect to a local port in the ephemeral range with
	// nothing listening), which must not pass as a server.
	self netip.AddrPort
}

// tcpProbeID names a connect in flight, for cancel.
type tcpProbeID struct {
	fd  int32
	seq uint32
}

// tcpProbeSink takes a connect's result (nil: connected) on the prober's
// goroutine, with the prober's lock held: it must not block or call the
// prober.
type tcpProbeSink interface{ tcpProbeDone(err error) }

// tcpProbes is the process's prober, started by the first TCP_CHECK.
var tcpProbes tcpProber

func (p *tcpProber) start() error {
	p.once.Do(func() {
		fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			p.initErr = fmt.Errorf("epoll_create1: %w", err)
			return
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			unix.Close(fd)
			p.initErr = err
			return
		}
		f := os.NewFile(uintptr(fd), "tcp_check epoll")
		rc, err := f.SyscallConn()
		if err != nil {
			f.Close()
			p.initErr = err
			return
		}
		p.epfd, p.rc, p.pending = fd, rc, make(map[int32]tcpProbe)
		go p.loop(f)
	})
	return p.initErr
}

// usable starts the prober if need be and reports whether it runs.
func (p *tcpProber) usable() bool {
	if p.start() != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead == nil
}

// loop waits for the epoll set to become readable and completes the
// connects it reports, forever: the set lives as long as the process.
func (p *tcpProber) loop(f *os.File) {
	defer f.Close()
	for {
		if err := p.rc.Read(p.drain); err != nil {
			// Not expected: the set is never closed. Fail what is in
			// flight and let later connects go through net.Dial.
			p.mu.Lock()
			p.dead = fmt.Errorf("tcp_check epoll: %w", err)
			for fd, pr := range p.pending {
				delete(p.pending, fd)
				rawClose(int(fd))
				pr.sink.tcpProbeDone(p.dead)
			}
			p.mu.Unlock()
			return
		}
	}
}

// drain completes every connect epoll reports ready; false (nothing was
// ready) asks Go's poller to wait for the set. It reads until a call
// returns less than a full batch, so that the next event makes a new edge
// for the poller.
func (p *tcpProber) drain(uintptr) bool {
	got := false
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(p.epfd), uintptr(unsafe.Pointer(&p.events[0])),
			uintptr(len(p.events)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			return got
		}
		got = true
		p.mu.Lock()
		for i := range p.events[:n] {
			fd, seq := p.events[i].Fd, uint32(p.events[i].Pad)
			pr, ok := p.pending[fd]
			if !ok || pr.seq != seq {
				continue // timed out or cancelled meanwhile
			}
			err, ok := tcpConnectResult(int(fd), pr.self)
			if !ok {
				continue // still connecting
			}
			delete(p.pending, fd)
			rawClose(int(fd))
			pr.sink.tcpProbeDone(err)
		}
		p.mu.Unlock()
		if int(n) < len(p.events) {
			return true
		}
	}
}

// begin starts a connect to the spec's target. When it ends within the
// connect call (refused, or connected as on loopback, where the kernel
// completes the handshake before the call returns) done is true and err
// is its result. Otherwise the prober owns the socket from now on and
// hands the result to sink, unless cancel(id) takes it back first.
func (p *tcpProber) begin(spec *checkerSpec, sink tcpProbeSink) (id tcpProbeID, done bool, err error) {
	target := spec.addrPort()
	var sa checkSockaddr
	salen, domain, err := sa.set(target)
	if err != nil {
		return id, true, err
	}
	var self netip.AddrPort
	if spec.BindPort == 0 && tcpEphemeral(target.Port()) {
		self = target
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return id, true, e
	}
	fd := int(r)
	if err := checkSocketOptions(fd, spec); err != nil {
		rawClose(fd)
		return id, true, err
	}
	_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(salen))
	switch e {
	case 0:
		if self.IsValid() && tcpSelfConnected(fd, self) {
			e = unix.ECONNREFUSED
		}
		rawClose(fd)
		if e != 0 {
			return id, true, e
		}
		return id, true, nil
	case unix.EINPROGRESS, unix.EINTR:
	default:
		rawClose(fd)
		return id, true, e
	}
	if err, ok := tcpConnectResult(fd, self); ok {
		rawClose(fd)
		return id, true, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead != nil {
		rawClose(fd)
		return id, true, p.dead
	}
	p.seq++
	id = tcpProbeID{int32(fd), p.seq}
	// Edge-triggered: a socket is reported once when it connects or
	// fails. Level-triggered, a socket closed while a child process being
	// started still held a copy of it would stay in the set, ready, and
	// be reported on every wait until the child ran exec.
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: id.fd, Pad: int32(id.seq)}
	_, _, e = unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(p.epfd), unix.EPOLL_CTL_ADD, uintptr(fd),
		uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		rawClose(fd)
		return id, true, fmt.Errorf("epoll_ctl: %v", e)
	}
	p.pending[id.fd] = tcpProbe{seq: id.seq, sink: sink, self: self}
	return id, false, nil
}

// cancel takes back a connect in flight and closes its socket. It returns
// false when the connect has ended and its result has gone to its sink.
func (p *tcpProber) cancel(id tcpProbeID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pr, ok := p.pending[id.fd]; !ok || pr.seq != id.seq {
		return false
	}
	delete(p.pending, id.fd)
	rawClose(int(id.fd)) // also takes it out of the epoll set
	return true
}

// tcpConnectResult reads a connecting socket's outcome: ok is false while
// the handshake is still under way. A socket that connected to itself
// (self, see tcpProbe) is refused.
func tcpConnectResult(fd int, self netip.AddrPort) (err error, ok bool) {
	var info [8]byte // tcp_info up to tcpi_state and a little more
	l := uint32(len(info))
	_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info[0])), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e, true
	}
	switch info[0] {
	case tcpSynSent:
		return nil, false
	case tcpClose:
		var soErr int32
		l := uint32(unsafe.Sizeof(soErr))
		_, _, e := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_ERROR,
			uintptr(unsafe.Pointer(&soErr)), uintptr(unsafe.Pointer(&l)), 0)
		switch {
		case e != 0:
			return e, true
		case soErr == 0:
			return unix.ECONNRESET, true
		}
		return unix.Errno(soErr), true
	}
	// Established, or closed by the server since.
	if self.IsValid() && tcpSelfConnected(fd, self) {
		return unix.ECONNREFUSED, true
	}
	return nil, true
}

// TCP states in tcp_info (include/net/tcp_states.h).
const (
	tcpSynSent = 2
	tcpClose   = 7
)

func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// tcpWaiter is the sink of a connect that a goroutine waits for.
type tcpWaiter chan error

func (w tcpWaiter) tcpProbeDone(err error) { w <- err }

// tcpConnect completes one TCP handshake with the spec's target and closes
// the connection, waiting for it: keepalived's tcp_connect_thread and
// tcp_check_thread. Errors read as checkDial's: "connect: connection
// refused", "connect: timeout after 3s", "connect: cancelled". The
// scheduler does not wait: see tcpChecker.probe.
func tcpConnect(ctx context.Context, spec *checkerSpec) error {
	if !tcpProbes.usable() {
		// No epoll set for the prober: net.Dial still works.
		c, err := checkDial(ctx, spec, "tcp")
		if err == nil {
			c.Close()
		}
		return err
	}
	w := make(tcpWaiter, 1)
	id, done, err := tcpProbes.begin(spec, w)
	if done {
		return tcpConnectErr(err)
	}
	t := time.NewTimer(spec.ConnectTimeout)
	defer t.Stop()
	var why error
	select {
	case err := <-w:
		return tcpConnectErr(err)
	case <-t.C:
		why = tcpTimeoutErr(spec)
	case <-ctx.Done():
		why = errors.New("connect: cancelled")
	}
	if !tcpProbes.cancel(id) { // ended as the timer fired
		return tcpConnectErr(<-w)
	}
	return why
}

// tcpConnectErr words a connect's result as checkDial does.
func tcpConnectErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("connect: %v", err)
}

func tcpTimeoutErr(spec *checkerSpec) error {
	return fmt.Errorf("connect: timeout after %v", spec.ConnectTimeout)
}

// tcpSelfConnected reports whether fd's local end is target: the kernel
// picked the target's own port for a connect to a local address, and the
// socket connected to itself. net.Dial refuses these too.
func tcpSelfConnected(fd int, target netip.AddrPort) bool {
	var sa checkSockaddr
	l := uint32(unsafe.Sizeof(sa))
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&l))); e != 0 {
		return false
	}
	local, ok := sa.addrPort()
	return ok && local.Port() == target.Port() && local.Addr().Unmap() == target.Addr().WithZone("").Unmap()
}

// tcpEphemeral reports whether port is in the kernel's range for local
// ports (ip_local_port_range, read once), the only ports a connect can
// be given as its own.
func tcpEphemeral(port uint16) bool {
	lo, hi := tcpEphemeralRange()
	return port >= lo && port <= hi
}

var tcpEphemeralRange = sync.OnceValues(func() (uint16, uint16) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		var lo, hi uint16
		if _, err := fmt.Sscan(string(b), &lo, &hi); err == nil && lo > 0 && lo <= hi {
			return lo, hi
		}
	}
	return 1024, 65535 // unknown: check every unprivileged port
})

// checkSockaddr holds a raw IPv4 or IPv6 socket address for the system
// calls (RawSockaddrInet6 is the larger and aligns both).
type checkSockaddr struct{ unix.RawSockaddrInet6 }

// set stores ap (its zone as the scope) and returns the address's length
// and family.
func (sa *checkSockaddr) set(ap netip.AddrPort) (salen, domain int, err error) {
	a := ap.Addr()
	if a.Is4() || a.Is4In6() {
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		r.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r.Port))[:], ap.Port())
		r.Addr = a.Unmap().As4()
		return unix.SizeofSockaddrInet4, unix.AF_INET, nil
	}
	r := &sa.RawSockaddrInet6
	r.Family = unix.AF_INET6
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&r.Port))[:], ap.Port())
	r.Addr = a.As16()
	if z := a.Zone(); z != "" {
		id, err := checkZoneIndex(z)
		if err != nil {
			return 0, 0, err
		}
		r.Scope_id = id
	}
	return unix.SizeofSockaddrInet6, unix.AF_INET6, nil
}

// addrPort reads back an address the kernel wrote.
func (sa *checkSockaddr) addrPort() (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		r := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&r.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(r.Addr), port), true
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}

// checkZoneIndex is the interface index of an IPv6 zone, a name or a number.
func checkZoneIndex(z string) (uint32, error) {
	if ifi, err := net.InterfaceByName(z); err == nil {
		return uint32(ifi.Index), nil
	}
	n, err := strconv.ParseUint(z, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("zone %s: no such interface", z)
	}
	return uint32(n), nil
}

// checkSocketMarks applies bind_if and fwmark to a checker's socket
// (checkDialer's net.Dial and tcpConnect).
func checkSocketMarks(fd int, spec *checkerSpec) error {
	if spec.BindIf != "" {
		if err := unix.BindToDevice(fd, spec.BindIf); err != nil {
			return fmt.Errorf("bind_if %s: %w", spec.BindIf, err)
		}
	}
	if spec.FWMark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(spec.FWMark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", spec.FWMark, err)
		}
	}
	return nil
}

// checkSocketOptions applies bind_if, fwmark, bindto and bind_port to a
// checker's socket before it connects, as checkDialer does for net.Dial.
func checkSocketOptions(fd int, spec *checkerSpec) error {
	if err := checkSocketMarks(fd, spec); err != nil {
		return err
	}
	if spec.BindTo.IsValid() || spec.BindPort != 0 {
		local := spec.BindTo
		if !local.IsValid() {
			local = netip.IPv4Unspecified()
			if !spec.ConnectIP.Unmap().Is4() {
				local = netip.IPv6Unspecified()
			}
		}
		var sa checkSockaddr
		salen, _, err := sa.set(netip.AddrPortFrom(local, spec.BindPort))
		if err != nil {
			return err
		}
		if _, _, e := unix.RawSyscall(unix.SYS_BIND, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(salen)); e != 0 {
			return fmt.Errorf("bind %s: %w", netip.AddrPortFrom(local, spec.BindPort), e)
		}
	}
	return nil
}
