package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// boundLoopback returns a TCP socket bound to 127.0.0.1 on a free port,
// closed when the test ends, and that port.
func boundLoopback(t *testing.T) (fd, port int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4).Port
}

// boundNotListening returns the address of a TCP socket that is bound but
// not listening: connects to it are refused, and no other test can take
// its port meanwhile.
func boundNotListening(t *testing.T) string {
	t.Helper()
	_, port := boundLoopback(t)
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// acceptAndClose returns a loopback listener that accepts and closes every
// connection until the test ends.
func acceptAndClose(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// Many connects at once through the one epoll set: each gets its own
// outcome, whichever order the kernel reports them in and however the
// socket numbers are reused.
func TestTCPProberConcurrent(t *testing.T) {
	ln := acceptAndClose(t)
	refused := boundNotListening(t)
	up, down := rsLoopSpec(t, checkTCP, ln.Addr().String()), rsLoopSpec(t, checkTCP, refused)
	var wg sync.WaitGroup
	errs := make(chan error, 64*20)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if err := tcpConnect(context.Background(), up); err != nil {
					errs <- fmt.Errorf("open listener: %v", err)
				}
				if err := tcpConnect(context.Background(), down); err == nil || !strings.Contains(err.Error(), "connection refused") {
					errs <- fmt.Errorf("closed port: %v, want connection refused", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	tcpProbes.mu.Lock()
	left := len(tcpProbes.pending)
	tcpProbes.mu.Unlock()
	if left != 0 {
		t.Errorf("%d connects still pending after every check returned", left)
	}
}

// A socket connected to itself (TCP simultaneous open) is recognised, and
// an ordinary connection is not.
func TestTCPSelfConnected(t *testing.T) {
	fd, port := boundLoopback(t)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Skipf("no self-connect here: %v", err)
	}
	me := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	if !tcpSelfConnected(fd, me) {
		t.Errorf("a socket connected to itself at %v is not seen as such", me)
	}
	ln := acceptAndClose(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.(*net.TCPConn).SyscallConn()
	rc.Control(func(cfd uintptr) {
		if tcpSelfConnected(int(cfd), netip.MustParseAddrPort(ln.Addr().String())) {
			t.Errorf("an ordinary connection to %v is seen as a self-connect", ln.Addr())
		}
	})
}

// Socket addresses go to the kernel in network byte order and come back.
func TestCheckSockaddr(t *testing.T) {
	for _, s := range []string{"10.1.2.3:8080", "[2001:db8::1]:443", "[fe80::1%1]:80", "[::ffff:10.0.0.1]:53"} {
		ap := netip.MustParseAddrPort(s)
		var sa checkSockaddr
		salen, domain, err := sa.set(ap)
		if err != nil {
			t.Fatal(s, err)
		}
		back, ok := sa.addrPort()
		want := netip.AddrPortFrom(ap.Addr().WithZone("").Unmap(), ap.Port())
		if !ok || back != want {
			t.Errorf("%s: read back %v, want %v", s, back, want)
		}
		if b := (*[4]byte)(unsafe.Pointer(&sa)); b[2] != byte(ap.Port()>>8) || b[3] != byte(ap.Port()) {
			t.Errorf("%s: port bytes %x %x, want network order", s, b[2], b[3])
		}
		if ap.Addr().Unmap().Is4() != (domain == unix.AF_INET) || (domain == unix.AF_INET) != (salen == unix.SizeofSockaddrInet4) {
			t.Errorf("%s: family %d, length %d", s, domain, salen)
		}
		if ap.Addr().Zone() == "1" && sa.Scope_id != 1 {
			t.Errorf("%s: scope %d, want 1", s, sa.Scope_id)
		}
	}
}

// synDropper returns the address of a loopback listener whose accept
// queue is full: the kernel drops SYNs to it, so connects to it stay
// under way until their timeout.
func synDropper(t *testing.T) string {
	t.Helper()
	fd, port := boundLoopback(t)
	if err := unix.Listen(fd, 0); err != nil { // never accepted
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	var filled []net.Conn
	t.Cleanup(func() {
		for _, c := range filled {
			c.Close()
		}
	})
	for {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err != nil {
			return addr
		}
		if filled = append(filled, c); len(filled) > 16 {
			t.Skip("the accept queue does not fill here")
		}
	}
}

// TCP_CHECK attempts run on the scheduler's goroutine: a connect still
// under way waits in the prober up to its connect_timeout and holds one of
// the scheduler's places meanwhile; removing its checker or stopping the
// scheduler takes it back at once; no socket is left behind.
func TestSchedulerProbes(t *testing.T) {
	slow, fast := synDropper(t), acceptAndClose(t).Addr().String()
	log := newRSTransitionLog()
	s := newRSCheckScheduler(2, log.notify)
	var mu sync.Mutex
	var order []string
	s.OnAttempt = func(id string, out checkOutcome, st rsCheckStatus) {
		mu.Lock()
		defer mu.Unlock()
		r := "ok"
		if out.Err != nil {
			r = out.Err.Error()
		}
		order = append(order, id+": "+r)
	}
	attempts := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(order, "; ")
	}
	probing := func() (ids []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, e := range s.q.waits {
			if e.probing {
				ids = append(ids, e.id)
			}
		}
		slices.Sort(ids)
		return ids
	}
	// Added in this order with no warmup, they are due in this order.
	for _, c := range []struct {
		id, addr string
		timeout  time.Duration
	}{{"a-timeout", slow, 100 * time.Millisecond}, {"b-removed", slow, time.Hour}, {"c-fast", fast, time.Hour}, {"d-held", slow, time.Hour}} {
		spec := rsLoopSpec(t, checkTCP, c.addr)
		spec.ConnectTimeout, spec.DelayLoop, spec.Warmup, spec.Retry = c.timeout, time.Hour, 0, 0
		if err := s.Add(c.id, spec); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	// a and b take both places; c runs when a's deadline frees one, ends
	// at once (loopback), and d takes the place.
	tr := log.wait(t, "a down")
	if tr.ID != "a-timeout" || tr.Up || tr.Reason != "connect: timeout after 100ms" {
		t.Fatalf("transition %+v, want a-timeout down on its connect_timeout", tr)
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; !ok(); i++ {
			if i == 2000 {
				t.Fatalf("%s: connects in flight %v, attempts %q", what, probing(), attempts())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want := "a-timeout: connect: timeout after 100ms; c-fast: ok"
	waitFor("a times out, c runs in its place, d takes the next", func() bool {
		return slices.Equal(probing(), []string{"b-removed", "d-held"}) && attempts() == want
	})

	// Removing b frees its place at once (its deadline is an hour away):
	// a checker added now runs.
	s.Remove("b-removed")
	spec := rsLoopSpec(t, checkTCP, fast)
	spec.DelayLoop, spec.Warmup = time.Hour, 0
	if err := s.Add("e-after", spec); err != nil {
		t.Fatal(err)
	}
	want += "; e-after: ok"
	waitFor("b removed, e runs", func() bool { return slices.Equal(probing(), []string{"d-held"}) && attempts() == want })

	// Stopping takes d back at once, where the kernel would retry its SYN
	// for two minutes.
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return with a connect in flight")
	}
	if got := attempts(); got != want {
		t.Errorf("attempts %q, want %q: removed and cancelled ones are not reported", got, want)
	}
	tcpProbes.mu.Lock()
	left := len(tcpProbes.pending)
	tcpProbes.mu.Unlock()
	if left != 0 {
		t.Errorf("%d connects still in the prober after Run returned", left)
	}
}
