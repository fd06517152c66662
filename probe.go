package main

// TCP_CHECK's connects, all in one epoll set, as keepalived's checker
// process runs them in its event loop. net.Dial costs a dozen system calls
// per connection (TCP_NODELAY, four keep-alive options, both addresses,
// the poller's registration), each one telling the Go scheduler, which
// wakes its monitor thread (see mcastConn.recvfrom). At 5,000 real
// servers that was a fifth of vipd's checker CPU on the host (44 against
// 36 us a check, BenchmarkLVSManagerChecks) and more in the IPVS guest.
// Here a check is socket, connect, epoll_ctl, getsockopt and close, all raw
// system calls that cannot block; the epoll set itself is registered with
// Go's poller, so one goroutine waits on it without holding a thread.

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
	pending map[int32]*tcpProbe // by socket
	dead    error               // the loop's wait failed: connects use net.Dial
	events  [64]unix.EpollEvent // the loop's scratch
}

// tcpProbe is one connect in flight; done receives its result once.
type tcpProbe struct {
	done chan error
	// self is the target when the kernel might pick it as the local end
	// too (a TCP self-connect to a local port in the ephemeral range with
	// nothing listening), which must not pass as a server.
	self netip.AddrPort
}

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
		p.epfd, p.rc, p.pending = fd, rc, make(map[int32]*tcpProbe)
		go p.loop(f)
	})
	return p.initErr
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
				pr.done <- p.dead
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
			fd := p.events[i].Fd
			pr := p.pending[fd]
			if pr == nil {
				continue // timed out or cancelled meanwhile
			}
			err, ok := tcpConnectResult(int(fd))
			if !ok {
				continue // still connecting (a stale event for a reused number)
			}
			if err == nil && pr.self.IsValid() && tcpSelfConnected(int(fd), pr.self) {
				err = unix.ECONNREFUSED
			}
			delete(p.pending, fd)
			rawClose(int(fd))
			pr.done <- err
		}
		p.mu.Unlock()
		if int(n) < len(p.events) {
			return true
		}
	}
}

// connect starts a non-blocking connect on fd (owned by the prober from
// now on) and waits for its result, the deadline or ctx.
func (p *tcpProber) connect(ctx context.Context, fd int, self netip.AddrPort, deadline time.Time) error {
	pr := &tcpProbe{done: make(chan error, 1), self: self}
	p.mu.Lock()
	if p.dead != nil {
		rawClose(fd)
		p.mu.Unlock()
		return p.dead
	}
	p.pending[int32(fd)] = pr
	// Edge-triggered: a socket is reported once when it connects or
	// fails. Level-triggered, a socket closed while a child process being
	// started still held a copy of it would stay in the set, ready, and
	// be reported on every wait until the child ran exec.
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(fd)}
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(p.epfd), unix.EPOLL_CTL_ADD, uintptr(fd),
		uintptr(unsafe.Pointer(&ev)), 0, 0)
	if e != 0 {
		delete(p.pending, int32(fd))
		rawClose(fd)
		p.mu.Unlock()
		return fmt.Errorf("epoll_ctl: %v", e)
	}
	p.mu.Unlock()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var why error
	select {
	case err := <-pr.done:
		return err
	case <-t.C:
		why = os.ErrDeadlineExceeded
	case <-ctx.Done():
		why = context.Canceled
	}
	p.mu.Lock()
	if p.pending[int32(fd)] != pr { // completed as the timer fired
		p.mu.Unlock()
		return <-pr.done
	}
	delete(p.pending, int32(fd))
	rawClose(fd) // also takes it out of the epoll set
	p.mu.Unlock()
	return why
}

// tcpConnectResult reads a connecting socket's outcome: ok is false while
// the handshake is still under way.
func tcpConnectResult(fd int) (err error, ok bool) {
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
	return nil, true // established, or closed by the server since
}

// TCP states in tcp_info (include/net/tcp_states.h).
const (
	tcpSynSent = 2
	tcpClose   = 7
)

func rawClose(fd int) {
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

// tcpConnect completes one TCP handshake with the spec's target and closes
// the connection: keepalived's tcp_connect_thread and tcp_check_thread.
// Errors read as checkDial's: "connect: connection refused",
// "connect: timeout after 3s", "connect: cancelled".
func tcpConnect(ctx context.Context, spec *checkerSpec) error {
	if err := tcpProbes.start(); err != nil || tcpProbes.broken() {
		// No epoll set for the prober: net.Dial still works.
		c, err := checkDial(ctx, spec, "tcp")
		if err == nil {
			c.Close()
		}
		return err
	}
	deadline := time.Now().Add(spec.ConnectTimeout)
	target := spec.addrPort()
	var sa checkSockaddr
	salen, domain, err := sa.set(target)
	if err != nil {
		return fmt.Errorf("connect: %v", err)
	}
	var self netip.AddrPort
	if spec.BindPort == 0 && tcpEphemeral(target.Port()) {
		self = target
	}
	r, _, e := unix.RawSyscall(unix.SYS_SOCKET, uintptr(domain), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return fmt.Errorf("connect: %v", e)
	}
	fd := int(r)
	if err := checkSocketOptions(fd, spec); err != nil {
		rawClose(fd)
		return fmt.Errorf("connect: %v", err)
	}
	_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(salen))
	switch e {
	case 0:
		if self.IsValid() && tcpSelfConnected(fd, self) {
			e = unix.ECONNREFUSED
		}
		rawClose(fd)
		if e != 0 {
			return fmt.Errorf("connect: %v", e)
		}
		return nil
	case unix.EINPROGRESS, unix.EINTR:
	default:
		rawClose(fd)
		return fmt.Errorf("connect: %v", e)
	}
	switch err := tcpProbes.connect(ctx, fd, self, deadline); {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("connect: timeout after %v", spec.ConnectTimeout)
	case errors.Is(err, context.Canceled):
		return errors.New("connect: cancelled")
	default:
		return fmt.Errorf("connect: %v", err)
	}
}

// broken reports whether the loop has stopped.
func (p *tcpProber) broken() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dead != nil
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
