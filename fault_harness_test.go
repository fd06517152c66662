package main

// The fault-injection harness: real vipd processes in network namespaces
// named vipd-fault-<pid>-*, joined either by a Linux bridge or by a
// userspace "wire" that forwards every frame between its ports with
// seeded loss, delay and partitions and keeps a trace of the VRRP adverts
// it carried. The kernel here has no netem, so the wire stands in for it;
// its trace is also what the invariants are checked against: protocol
// outcomes (who advertised after hearing whom), not wall-clock timings.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// faultLong reports whether the long versions run (VIPD_FAULT_LONG=1):
// minutes of loss and jitter instead of CI's seconds.
func faultLong() bool { return os.Getenv("VIPD_FAULT_LONG") != "" }

// faultDur is short in CI and long with VIPD_FAULT_LONG.
func faultDur(short, long time.Duration) time.Duration {
	if faultLong() {
		return long
	}
	return short
}

// faultSeed is the wire's random seed: VIPD_FAULT_SEED or a fixed one, so
// a run's loss pattern can be replayed.
func faultSeed(t testing.TB) uint64 {
	seed := uint64(5798)
	if s := os.Getenv("VIPD_FAULT_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("VIPD_FAULT_SEED=%q: %v", s, err)
		}
		seed = n
	}
	t.Logf("wire seed %d (VIPD_FAULT_SEED replays it)", seed)
	return seed
}

// newFaultNS makes a namespace named vipd-fault-<pid>-<n>-<tag> (the same
// set-up as newTestNS: DAD off, loopback up), deleted at cleanup.
func newFaultNS(t testing.TB, tag string) *testNS {
	t.Helper()
	needRoot(t)
	return newTestNSPrefix(t, "fault", tag)
}

// faultLAN is one Ethernet segment of hosts with eth0 at 10.77.0.<i+1>/24:
// through a bridge (Hub is the bridge's namespace) or through a wire (Hub
// is the wire's namespace, Wire its forwarder).
type faultLAN struct {
	Hub   *testNS
	Hosts []*testNS
	Wire  *wire
}

const faultVIP = "10.77.0.100"

func faultAddr(i int) string { return fmt.Sprintf("10.77.0.%d", i+1) }

// newFaultLAN builds the LAN; with withWire the wire forwards frames,
// without it a bridge does.
func newFaultLAN(t testing.TB, hosts int, withWire bool) *faultLAN {
	t.Helper()
	l := &faultLAN{Hub: newFaultNS(t, "hub")}
	// The hub itself stays silent: no IPv6 on its ports.
	l.Hub.sysctl("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	if !withWire {
		l.Hub.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
		l.Hub.IP("link", "set", "br0", "up")
	}
	for i := 0; i < hosts; i++ {
		h := newFaultNS(t, fmt.Sprintf("h%d", i+1))
		port := fmt.Sprintf("p%d", i+1)
		veth(t, h, "eth0", l.Hub, port)
		if !withWire {
			l.Hub.IP("link", "set", port, "master", "br0")
		}
		h.IP("addr", "add", faultAddr(i)+"/24", "dev", "eth0")
		l.Hosts = append(l.Hosts, h)
	}
	if withWire {
		l.Wire = newWire(t, l.Hub, hosts)
	}
	return l
}

// wireEvent is one VRRP advert on the wire: as sent by port From (To is
// -1), or its copy toward port To, delivered or dropped.
type wireEvent struct {
	At       time.Time
	From, To int
	Dropped  bool
	VRID     uint8
	Prio     uint8
}

// wire is a userspace hub: AF_PACKET sockets on ports p1..pN of its
// namespace; every frame read on one port is written to every other port,
// unless the seeded loss or a cut drops it, after a seeded random delay
// in [0, Jitter]. It stands in for netem, which this kernel lacks.
type wire struct {
	t    testing.TB
	fds  []int
	stop atomic.Bool
	wg   sync.WaitGroup

	mu      sync.Mutex
	rng     *rand.Rand
	loss    float64
	jitter  time.Duration
	cut     bool
	trace   []wireEvent
	pending sync.WaitGroup // delayed deliveries
}

func newWire(t testing.TB, hub *testNS, ports int) *wire {
	t.Helper()
	w := &wire{t: t, rng: rand.New(rand.NewPCG(faultSeed(t), 1))}
	for i := 0; i < ports; i++ {
		ifi := hub.Interface(fmt.Sprintf("p%d", i+1))
		var fd int
		hub.MustDo(func() (err error) {
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
			if err != nil {
				return fmt.Errorf("wire socket: %w", err)
			}
			if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
				unix.Close(fd)
				return fmt.Errorf("wire bind %s: %w", ifi.Name, err)
			}
			return nil
		})
		unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		w.fds = append(w.fds, fd)
	}
	for i := range w.fds {
		w.wg.Add(1)
		go w.readLoop(i)
	}
	t.Cleanup(w.close)
	return w
}

func (w *wire) close() {
	if w.stop.Swap(true) {
		return
	}
	w.wg.Wait()
	w.pending.Wait()
	for _, fd := range w.fds {
		unix.Close(fd)
	}
}

// Set changes the loss probability (0..1) and the maximum delay.
func (w *wire) Set(loss float64, jitter time.Duration) {
	w.mu.Lock()
	w.loss, w.jitter = loss, jitter
	w.mu.Unlock()
}

// Cut partitions every port from every other (true) or heals (false).
func (w *wire) Cut(on bool) {
	w.mu.Lock()
	w.cut = on
	w.mu.Unlock()
}

// Trace returns the adverts carried since the last Reset, in time order.
func (w *wire) Trace() []wireEvent {
	w.mu.Lock()
	tr := append([]wireEvent(nil), w.trace...)
	w.mu.Unlock()
	sort.SliceStable(tr, func(i, j int) bool { return tr[i].At.Before(tr[j].At) })
	return tr
}

// Reset empties the trace and returns the time it did.
func (w *wire) Reset() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trace = w.trace[:0]
	return time.Now()
}

func (w *wire) readLoop(i int) {
	defer w.wg.Done()
	buf := make([]byte, 65536)
	for !w.stop.Load() {
		n, from, err := unix.Recvfrom(w.fds[i], buf, 0)
		if err != nil {
			continue // timeout (to see stop), or the port is down during a flap
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		w.forward(i, append([]byte(nil), buf[:n]...))
	}
}

// vrrpInfo returns the VRID and priority of an IPv4 VRRP frame.
func vrrpInfo(f []byte) (vrid, prio uint8, ok bool) {
	if len(f) < 14+20+8 || binary.BigEndian.Uint16(f[12:14]) != unix.ETH_P_IP || f[14+9] != vrrpProto {
		return 0, 0, false
	}
	ihl := int(f[14]&0x0f) * 4
	if len(f) < 14+ihl+8 {
		return 0, 0, false
	}
	v := f[14+ihl:]
	return v[1], v[2], true
}

func (w *wire) forward(from int, f []byte) {
	now := time.Now()
	vrid, prio, isVRRP := vrrpInfo(f)
	w.mu.Lock()
	defer w.mu.Unlock()
	if isVRRP {
		w.trace = append(w.trace, wireEvent{At: now, From: from, To: -1, VRID: vrid, Prio: prio})
	}
	for to := range w.fds {
		if to == from {
			continue
		}
		drop := w.cut || w.loss > 0 && w.rng.Float64() < w.loss
		var delay time.Duration
		if w.jitter > 0 {
			delay = time.Duration(w.rng.Int64N(int64(w.jitter) + 1))
		}
		if drop {
			if isVRRP {
				w.trace = append(w.trace, wireEvent{At: now, From: from, To: to, Dropped: true, VRID: vrid, Prio: prio})
			}
			continue
		}
		deliver := func() {
			unix.Write(w.fds[to], f) // a port that is down loses the frame, as a cable would
			if isVRRP {
				w.trace = append(w.trace, wireEvent{At: time.Now(), From: from, To: to, VRID: vrid, Prio: prio})
			}
		}
		if delay == 0 {
			deliver()
			continue
		}
		w.pending.Add(1)
		time.AfterFunc(delay, func() {
			defer w.pending.Done()
			if w.stop.Load() {
				return
			}
			w.mu.Lock()
			deliver()
			w.mu.Unlock()
		})
	}
}

// takeover is one episode in which the lower priority router advertised
// as master while the higher priority one was running.
type takeover struct {
	At time.Time
	// Gap is how long no advert of the higher priority router had reached
	// the lower one when it took over; RFC 5798 section 6.4.2 allows a
	// takeover only after Master_Down_Interval.
	Gap time.Duration
	// Adverts is how many adverts the lower router sent in the episode.
	Adverts int
	// HiReached counts the higher router's adverts that reached the lower
	// one during the episode; Late the lower router's adverts after the
	// first of them (one may cross it on the wire; more means it did not
	// step down on a higher priority, RFC 5798 section 6.4.3).
	HiReached int
	Late      int
	// HiBeforeLast is HiReached at the lower router's last advert: how
	// many of the master's adverts it took to end the episode (0: it
	// stepped down on the first, its last advert crossed it or none did).
	HiBeforeLast int
}

// takeovers finds the lower router's (port lo) episodes as master in a
// trace that starts at start with the higher router (port hi) master, and
// the violations of the two rules: a takeover needs Master_Down_Interval
// (mdi, less tol for the hosts' scheduling) without the master's adverts,
// and a backup that hears a higher priority stops advertising.
func takeovers(tr []wireEvent, start time.Time, hi, lo int, mdi, tol time.Duration) (eps []takeover, violations []string) {
	last := start // the last advert of hi that reached lo
	var cur *takeover
	for _, e := range tr {
		switch {
		case e.From == hi && e.To == lo && !e.Dropped:
			last = e.At
			if cur != nil {
				cur.HiReached++
			}
		case e.From == lo && e.To == -1 && e.Prio > 0:
			gap := e.At.Sub(last)
			if cur == nil || cur.HiReached > 0 && gap >= mdi-tol {
				if gap < mdi-tol {
					violations = append(violations, fmt.Sprintf("%s: lower priority took over %v after the master's last advert reached it (Master_Down_Interval %v)",
						e.At.Format("15:04:05.000"), gap.Round(time.Millisecond), mdi))
				}
				eps = append(eps, takeover{At: e.At, Gap: gap})
				cur = &eps[len(eps)-1]
			} else if cur.HiReached > 0 {
				cur.Late++
				if cur.Late == 2 {
					violations = append(violations, fmt.Sprintf("%s: lower priority still advertising after %d adverts of the master reached it",
						e.At.Format("15:04:05.000"), cur.HiReached))
				}
			}
			cur.Adverts++
			cur.HiBeforeLast = cur.HiReached
		}
	}
	return eps, violations
}

// masterDown is Master_Down_Interval (RFC 5798 section 6.1) for interval
// and priority.
func masterDown(interval time.Duration, prio int) time.Duration {
	return 3*interval + time.Duration(256-prio)*interval/256
}

// faultProc is one vipd daemon in a namespace.
type faultProc struct {
	t    testing.TB
	ns   *testNS
	name string
	bin  string
	conf string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan struct{}
}

// startVipd writes conf and runs vipd with it in ns until cleanup.
func startFaultVipd(t testing.TB, ns *testNS, name, conf string) *faultProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &faultProc{t: t, ns: ns, name: name, bin: vipdBinary(t), conf: path}
	p.start()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	return p
}

func (p *faultProc) start() {
	p.t.Helper()
	p.cmd = exec.Command("ip", "netns", "exec", p.ns.Name, p.bin, "run", "-f", p.conf)
	if p.log == nil {
		p.log = &lockedBuffer{}
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(p.cmd)
}

// Restart starts the daemon again after it exited (kill -9, SIGTERM).
func (p *faultProc) Restart() {
	p.t.Helper()
	p.Wait()
	p.start()
}

// stop ends the daemon: SIGTERM, then SIGKILL if it hangs (and resumes a
// stopped one first).
func (p *faultProc) stop() {
	if p.cmd == nil || p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Errorf("%s did not exit on SIGTERM", p.name)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *faultProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits until the daemon has exited.
func (p *faultProc) Wait() {
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit", p.name)
	}
}

func (p *faultProc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

func (p *faultProc) Pid() int { return p.cmd.Process.Pid }

// call sends a control command in the daemon's namespace.
func (p *faultProc) call(cmd string, v any) error {
	return p.ns.Do(func() error { return controlCall(defaultControl, cmd, v) })
}

// Status is `vipd status --json`.
func (p *faultProc) Status() (daemonStatus, error) {
	var st daemonStatus
	err := p.call("status", &st)
	return st, err
}

// Debug is `vipd debug`.
func (p *faultProc) Debug() (debugStatus, error) {
	var st debugStatus
	err := p.call("debug", &st)
	return st, err
}

// Instance returns the status of one instance; failure is fatal.
func (p *faultProc) Instance(name string) instanceStatus {
	p.t.Helper()
	st, err := p.Status()
	if err != nil {
		p.t.Fatalf("%s status: %v", p.name, err)
	}
	for _, is := range st.Instances {
		if is.Name == name {
			return is
		}
	}
	p.t.Fatalf("%s has no instance %s", p.name, name)
	return instanceStatus{}
}

// state returns an instance's state, "" while the daemon does not answer.
func (p *faultProc) state(inst string) string {
	st, err := p.Status()
	if err != nil {
		return ""
	}
	for _, is := range st.Instances {
		if is.Name == inst {
			return is.State
		}
	}
	return ""
}

// waitFor polls cond until it holds; the bound only guards against a
// hung test, it is not the property under test.
func faultWait(t testing.TB, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(bound); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("gave up waiting (%v) for %s", bound, what)
		}
	}
}

// waitStates waits until each daemon's instance is in the given state.
func waitStates(t testing.TB, inst string, want map[*faultProc]string) {
	t.Helper()
	faultWait(t, fmt.Sprintf("%s states %v", inst, describeStates(want)), 30*time.Second, func() bool {
		for p, s := range want {
			if p.state(inst) != s {
				return false
			}
		}
		return true
	})
}

func describeStates(m map[*faultProc]string) string {
	var parts []string
	for p, s := range m {
		parts = append(parts, p.name+"="+s)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// addrCount counts addr on the namespace's interfaces (dev "" means any).
func addrCount(t testing.TB, ns *testNS, addr, dev string) int {
	t.Helper()
	args := []string{"-o", "-4", "addr", "show"}
	if dev != "" {
		args = append(args, "dev", dev)
	}
	out, err := ns.TryIP(args...)
	if err != nil {
		if dev != "" && strings.Contains(out, "does not exist") {
			return 0
		}
		t.Fatalf("ip addr in %s: %v: %s", ns.Name, err, out)
	}
	return strings.Count(out, " "+addr+"/")
}

// procCPU returns the user+system CPU time of pid from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
	const hz = 100                           // USER_HZ
	return time.Duration(ut+st) * time.Second / hz, nil
}

// loadAvg is the 1-minute load average, for the figures' context.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// macOf returns the MAC of dev in ns.
func macOf(t testing.TB, ns *testNS, dev string) net.HardwareAddr {
	t.Helper()
	return ns.Interface(dev).HardwareAddr
}
