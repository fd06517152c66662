package main

// End-to-end tests: the vipd binary, built once per test run, runs as real
// processes in network namespaces made by the harness in netns_test.go
// (named vipd-e2e-<pid>-*), exactly as a user runs it:
//
//	ip netns exec NS vipd run -f CONF --log-format json
//
// The tests read its JSON log ("(VI_1) Entering MASTER STATE", ...), look
// at `ip addr` and `ip neigh` in the namespaces and capture frames on the
// wire. They assert protocol outcomes, never wall-clock bounds: the waits
// below are liveness limits, generous for a loaded machine, and measured
// figures are only logged.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mdlayher/packet"
)

// e2eTag names the namespaces of these tests: vipd-e2e-<pid>-*.
const e2eTag = "e2e"

// e2eWait bounds every wait for something that must happen. It is a
// liveness limit, not a timing assertion.
const e2eWait = 20 * time.Second

var e2eBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBuild.dir != "" {
		os.RemoveAll(e2eBuild.dir)
	}
	os.Exit(code)
}

// vipdBinary builds the vipd binary once (CGO_ENABLED=0, as it ships) into
// a temporary directory that TestMain removes.
func vipdBinary(t testing.TB) string {
	t.Helper()
	e2eBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "vipd-e2e-bin-")
		if err != nil {
			e2eBuild.err = err
			return
		}
		e2eBuild.dir = dir
		e2eBuild.path = filepath.Join(dir, "vipd")
		cmd := exec.Command("go", "build", "-o", e2eBuild.path, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			e2eBuild.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if e2eBuild.err != nil {
		t.Fatal(e2eBuild.err)
	}
	return e2eBuild.path
}

// needE2E skips without root and returns the vipd binary.
func needE2E(t testing.TB) string {
	t.Helper()
	needRoot(t)
	return vipdBinary(t)
}

// daemonLog is one log line of a daemon under test.
type daemonLog struct {
	At       time.Time // the daemon's own timestamp (vipd), or when read (keepalived)
	Level    string
	Msg      string
	Instance string
	Reason   string
	Fields   map[string]any
	Raw      string
}

// daemonProc is one vipd or keepalived process running in a namespace.
type daemonProc struct {
	t    testing.TB
	Name string
	NS   *testNS
	Conf string
	ka   bool
	args []string

	cleanup bool // t.Cleanup registered

	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []daemonLog
	changed chan struct{} // closed on every new line, then replaced
	done    chan struct{} // closed when the process has exited
	exitErr error
}

// startVipd writes conf and starts `vipd run -f CONF --log-format json`
// in ns. The process is killed at cleanup if still running.
func startVipd(t testing.TB, ns *testNS, name, conf string, args ...string) *daemonProc {
	t.Helper()
	p := &daemonProc{t: t, Name: name, NS: ns, args: args}
	p.Conf = filepath.Join(t.TempDir(), name+".conf")
	if err := os.WriteFile(p.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start()
	return p
}

func (p *daemonProc) command() []string {
	if p.ka {
		dir := filepath.Dir(p.Conf)
		return []string{"netns", "exec", p.NS.Name, "keepalived", "-n", "-l", "-G", "-D", "--vrrp", "-f", p.Conf,
			"-p", filepath.Join(dir, p.Name+".pid"), "-r", filepath.Join(dir, p.Name+".vrrp.pid")}
	}
	return append([]string{"netns", "exec", p.NS.Name, vipdBinary(p.t), "run", "-f", p.Conf, "--log-format", "json"}, p.args...)
}

// start (re)starts the process with the same configuration.
func (p *daemonProc) start() {
	t := p.t
	t.Helper()
	cmd := exec.Command("ip", p.command()...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.Name, err)
	}
	p.mu.Lock()
	p.cmd = cmd
	p.done = make(chan struct{})
	if p.changed == nil {
		p.changed = make(chan struct{})
	}
	done := p.done
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		pw.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(done)
	}()
	go p.read(pr)
	if !p.cleanup {
		p.cleanup = true
		t.Cleanup(func() {
			p.kill()
			if t.Failed() {
				p.dump()
			}
		})
	}
}

func (p *daemonProc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l := daemonLog{At: time.Now(), Msg: line, Raw: line}
		if !p.ka && strings.HasPrefix(line, "{") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil {
				l.Fields = m
				l.Msg, _ = m["message"].(string)
				l.Level, _ = m["level"].(string)
				l.Instance, _ = m["instance"].(string)
				l.Reason, _ = m["reason"].(string)
				if ts, ok := m["time"].(string); ok {
					if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
						l.At = at
					}
				}
			}
		}
		p.mu.Lock()
		p.lines = append(p.lines, l)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

// dump logs everything the process said, for a failed test.
func (p *daemonProc) dump() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t.Logf("--- log of %s (%s):", p.Name, p.NS.Name)
	for _, l := range p.lines {
		p.t.Logf("%s: %s", p.Name, l.Raw)
	}
}

// Mark is the number of log lines so far: waitFrom(Mark(), ...) looks only
// at what comes after now.
func (p *daemonProc) Mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// find returns the first line at index >= from matching pred.
func (p *daemonProc) find(from int, pred func(daemonLog) bool) (daemonLog, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := from; i < len(p.lines); i++ {
		if pred(p.lines[i]) {
			return p.lines[i], i, true
		}
	}
	return daemonLog{}, 0, false
}

// waitFrom waits for a line at index >= from matching pred, failing the
// test after e2eWait; it returns the line and its index.
func (p *daemonProc) waitFrom(from int, what string, pred func(daemonLog) bool) (daemonLog, int) {
	p.t.Helper()
	deadline := time.After(e2eWait)
	for {
		p.mu.Lock()
		ch := p.changed
		p.mu.Unlock()
		if l, i, ok := p.find(from, pred); ok {
			return l, i
		}
		select {
		case <-ch:
		case <-deadline:
			p.t.Fatalf("%s: no log line %s within %v", p.Name, what, e2eWait)
		}
	}
}

// contains matches a line whose message contains s.
func contains(s string) func(daemonLog) bool {
	return func(l daemonLog) bool { return strings.Contains(l.Msg, s) }
}

// entering matches "(VI_1) Entering <STATE> STATE" (keepalived and vipd).
func entering(state string) func(daemonLog) bool {
	return contains("Entering " + state + " STATE")
}

// waitState waits for the instance to enter state after line from.
func (p *daemonProc) waitState(from int, state string) (daemonLog, int) {
	p.t.Helper()
	return p.waitFrom(from, fmt.Sprintf("%q", "Entering "+state+" STATE"), entering(state))
}

// State is the last state the process logged entering ("" if none).
func (p *daemonProc) State() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		m := p.lines[i].Msg
		if k := strings.Index(m, "Entering "); k >= 0 {
			if f := strings.Fields(m[k+len("Entering "):]); len(f) >= 2 && f[1] == "STATE" {
				return f[0]
			}
		}
	}
	return ""
}

// countFrom counts lines at index >= from matching pred.
func (p *daemonProc) countFrom(from int, pred func(daemonLog) bool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for i := from; i < len(p.lines); i++ {
		if pred(p.lines[i]) {
			n++
		}
	}
	return n
}

// Signal sends sig to the daemon (ip netns exec execs it, so the pid is
// the daemon's).
func (p *daemonProc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %s: %v", p.Name, err)
	}
}

// Wait waits for the process to exit and returns its exit error.
func (p *daemonProc) Wait() error {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(e2eWait):
		p.t.Fatalf("%s did not exit within %v", p.Name, e2eWait)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// kill ends the process group (keepalived's VRRP child with it) and waits.
func (p *daemonProc) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	child := 0
	if p.ka {
		// keepalived's VRRP child lives in a process group of its own.
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(p.Conf), p.Name+".vrrp.pid")); err == nil {
			fmt.Sscan(string(b), &child)
		}
	}
	select {
	case <-p.done:
	default:
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Process.Kill()
		<-p.done
	}
	if child > 1 {
		syscall.Kill(child, syscall.SIGKILL)
		// Wait until it is gone (or a zombie): a restarted keepalived
		// refuses to run while its VRRP pid file names a live process.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
			if err != nil {
				break
			}
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				break
			}
		}
	}
	if p.ka {
		// A zombie child (nobody may reap it here) still counts as
		// running for keepalived's pid file check.
		dir := filepath.Dir(p.Conf)
		os.Remove(filepath.Join(dir, p.Name+".pid"))
		os.Remove(filepath.Join(dir, p.Name+".vrrp.pid"))
	}
}

// crash is a crash as the lab makes it: SIGKILL, then the link goes down
// so that nothing the dead node's kernel still holds answers.
func (p *daemonProc) crash(link string) time.Time {
	p.t.Helper()
	at := time.Now()
	p.kill()
	p.NS.IP("link", "set", link, "down")
	return at
}

// hasAddr reports whether addr is configured on any interface of ns.
func hasAddr(ns *testNS, addr string) bool {
	ns.t.Helper()
	return strings.Contains(ns.IP("-o", "addr", "show"), " "+addr+"/")
}

// waitAddr waits until addr is (present) or is not (!present) on ns.
func waitAddr(t testing.TB, ns *testNS, addr string, present bool) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for hasAddr(ns, addr) != present {
		if time.Now().After(deadline) {
			t.Fatalf("%s: address %s present=%v after %v:\n%s", ns.Name, addr, !present, e2eWait, ns.IP("-o", "addr", "show"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// vrrpInst is one vrrp_instance of a test configuration.
type vrrpInst struct {
	Name      string // default VI_1
	Interface string // default eth0
	VRID      int    // default 51
	Priority  int
	Version   int    // default 3
	Interval  string // advert_int, default 0.1 (version 2: 1)
	State     string // default BACKUP
	VIPs      []string
	Extra     []string // more lines inside the instance
}

// keepalivedConf renders a keepalived.conf for the instances; globals are
// extra lines in global_defs.
func keepalivedConf(routerID string, globals []string, insts ...vrrpInst) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n", routerID)
	for _, g := range globals {
		fmt.Fprintf(&b, "    %s\n", g)
	}
	b.WriteString("}\n")
	for _, in := range insts {
		if in.Name == "" {
			in.Name = "VI_1"
		}
		if in.Interface == "" {
			in.Interface = "eth0"
		}
		if in.VRID == 0 {
			in.VRID = 51
		}
		if in.Version == 0 {
			in.Version = 3
		}
		if in.Interval == "" {
			in.Interval = "0.1"
			if in.Version == 2 {
				in.Interval = "1"
			}
		}
		if in.State == "" {
			in.State = "BACKUP"
		}
		fmt.Fprintf(&b, "vrrp_instance %s {\n    state %s\n    interface %s\n    virtual_router_id %d\n    priority %d\n    version %d\n    advert_int %s\n",
			in.Name, in.State, in.Interface, in.VRID, in.Priority, in.Version, in.Interval)
		for _, e := range in.Extra {
			fmt.Fprintf(&b, "    %s\n", e)
		}
		b.WriteString("    virtual_ipaddress {\n")
		for _, v := range in.VIPs {
			fmt.Fprintf(&b, "        %s\n", v)
		}
		b.WriteString("    }\n}\n")
	}
	return b.String()
}

// lanVIP is the test VIP of LAN l: 10.<net>.0.100.
func lanVIP(l *testLAN) string { return fmt.Sprintf("10.%d.0.100", l.Net) }

// pair is the common fixture: a LAN with two routers (r1 priority high,
// r2 low) running vipd with one instance, and optionally a client.
type pair struct {
	LAN    *testLAN
	R1, R2 *daemonProc
	VIP    string
}

// startPair starts vipd on hosts 0 and 1 of a new LAN with hosts hosts,
// priorities 150 and 100, and waits for r1 to be master and r2 backup.
func startPair(t *testing.T, hosts int, mod func(i int, in *vrrpInst)) *pair {
	t.Helper()
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, hosts)
	p := &pair{LAN: l, VIP: lanVIP(l)}
	for i, prio := range []int{150, 100} {
		in := vrrpInst{Priority: prio, VIPs: []string{p.VIP + "/24 dev eth0"}}
		if mod != nil {
			mod(i, &in)
		}
		d := startVipd(t, l.Hosts[i], fmt.Sprintf("r%d", i+1), keepalivedConf(fmt.Sprintf("r%d", i+1), nil, in))
		if i == 0 {
			p.R1 = d
		} else {
			p.R2 = d
		}
	}
	p.R1.waitState(0, "MASTER")
	p.R2.waitState(0, "BACKUP")
	waitAddr(t, l.Hosts[0], p.VIP, true)
	return p
}

// settle waits until both routers have logged nothing new for quiet,
// i.e. the election is over, and returns the marks.
func settle(ps ...*daemonProc) {
	quiet := 300 * time.Millisecond
	for {
		var marks []int
		for _, p := range ps {
			marks = append(marks, p.Mark())
		}
		time.Sleep(quiet)
		same := true
		for i, p := range ps {
			if p.Mark() != marks[i] {
				same = false
			}
		}
		if same {
			return
		}
	}
}

// assertMasterBackup checks the steady state: m MASTER with the VIP, b
// BACKUP without it (RFC 5798 section 6.4: one master per virtual router).
func assertMasterBackup(t *testing.T, m, b *daemonProc, vip string) {
	t.Helper()
	if s := m.State(); s != "MASTER" {
		t.Errorf("%s is %s, want MASTER", m.Name, s)
	}
	if s := b.State(); s != "BACKUP" {
		t.Errorf("%s is %s, want BACKUP", b.Name, s)
	}
	if !hasAddr(m.NS, vip) {
		t.Errorf("master %s lacks the VIP %s", m.Name, vip)
	}
	if hasAddr(b.NS, vip) {
		t.Errorf("backup %s holds the VIP %s", b.Name, vip)
	}
}

// TestE2EElection: of two routers starting together, the higher priority
// one becomes master and keeps the VIP; the other stays backup (RFC 5798
// section 6.4.2: a backup hearing a higher priority master resets its
// Master_Down_Timer; section 6.4.3: a master hearing a higher priority
// steps down).
func TestE2EElection(t *testing.T) {
	p := startPair(t, 2, nil)
	settle(p.R1, p.R2)
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
	// Steady state: nothing changes over many Master_Down_Intervals.
	m1, m2 := p.R1.Mark(), p.R2.Mark()
	time.Sleep(time.Second)
	if n := p.R1.countFrom(m1, contains("Entering")) + p.R2.countFrom(m2, contains("Entering")); n != 0 {
		t.Errorf("%d state changes in a steady LAN", n)
	}
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
}

// TestE2ECrashFailover: the master is killed (SIGKILL, then its link goes
// down): the backup's Master_Down_Timer fires and it becomes master with
// the VIP (RFC 5798 section 6.4.2).
func TestE2ECrashFailover(t *testing.T) {
	p := startPair(t, 2, nil)
	settle(p.R1, p.R2)
	mark := p.R2.Mark()
	at := p.R1.crash("eth0")
	l, _ := p.R2.waitState(mark, "MASTER")
	if l.Reason != "master down" {
		t.Errorf("r2 became master because of %q, want master down", l.Reason)
	}
	waitAddr(t, p.R2.NS, p.VIP, true)
	// Master_Down_Interval = 3 * 0.1 s + (256-100)*0.1/256 s = 361 ms.
	t.Logf("failover: %v from the kill to r2 MASTER (Master_Down_Interval 361ms)", l.At.Sub(at).Round(time.Millisecond))
}

// TestE2EGracefulHandover: SIGTERM makes the master send priority 0 and
// release its VIP (RFC 5798 section 6.4.3, Shutdown); the backup takes
// over after Skew_Time (section 6.4.2) and vipd exits 0.
func TestE2EGracefulHandover(t *testing.T) {
	p := startPair(t, 2, nil)
	settle(p.R1, p.R2)
	m1, m2 := p.R1.Mark(), p.R2.Mark()
	at := time.Now()
	p.R1.Signal(syscall.SIGTERM)
	if err := p.R1.Wait(); err != nil {
		t.Errorf("vipd exited with %v after SIGTERM, want 0", err)
	}
	p.R1.waitFrom(m1, `"sent 0 priority"`, contains("sent 0 priority"))
	if hasAddr(p.R1.NS, p.VIP) {
		t.Error("the stopped master still holds the VIP")
	}
	p.R2.waitFrom(m2, `"Backup received priority 0 advertisement"`, contains("Backup received priority 0 advertisement"))
	l, _ := p.R2.waitState(m2, "MASTER")
	waitAddr(t, p.R2.NS, p.VIP, true)
	t.Logf("handover: %v from SIGTERM to r2 MASTER (Skew_Time 61ms)", l.At.Sub(at).Round(time.Millisecond))
}

// TestE2EPreemption: a higher priority router joining a LAN whose master
// has a lower priority takes over (Preempt_Mode true, RFC 5798 section
// 6.4.2), and the old master yields (section 6.4.3).
func TestE2EPreemption(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	low := startVipd(t, l.Hosts[1], "low", keepalivedConf("low", nil, vrrpInst{Priority: 100, VIPs: []string{vip + "/24"}}))
	low.waitState(0, "MASTER")
	waitAddr(t, l.Hosts[1], vip, true)
	mark := low.Mark()
	high := startVipd(t, l.Hosts[0], "high", keepalivedConf("high", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/24"}}))
	high.waitFrom(0, "about the lower priority advert", contains("received lower priority (100) advert"))
	high.waitState(0, "MASTER")
	low.waitFrom(mark, `"Master received advert ... with higher priority 150, ours 100"`, contains("with higher priority 150, ours 100"))
	low.waitState(mark, "BACKUP")
	waitAddr(t, l.Hosts[1], vip, false)
	settle(high, low)
	assertMasterBackup(t, high, low, vip)
}

// TestE2ENoPreempt: with nopreempt a higher priority backup leaves a lower
// priority master alone (Preempt_Mode false, RFC 5798 section 6.1), and
// takes over only when that master goes away.
func TestE2ENoPreempt(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	low := startVipd(t, l.Hosts[1], "low", keepalivedConf("low", nil, vrrpInst{Priority: 100, VIPs: []string{vip + "/24"}}))
	low.waitState(0, "MASTER")
	high := startVipd(t, l.Hosts[0], "high", keepalivedConf("high", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/24"}, Extra: []string{"nopreempt"}}))
	high.waitState(0, "BACKUP")
	// Many Master_Down_Intervals (361 ms each) pass without a preemption.
	time.Sleep(2 * time.Second)
	assertMasterBackup(t, low, high, vip)
	mark := high.Mark()
	low.Signal(syscall.SIGTERM)
	high.waitState(mark, "MASTER")
	waitAddr(t, l.Hosts[0], vip, true)
}

// TestE2EPreemptDelay: keepalived's preempt_delay: a higher priority
// backup that hears a lower priority master waits preempt_delay before
// preempting. The lower bound checked is the protocol's (both times are
// the daemon's own), which load can only lengthen.
func TestE2EPreemptDelay(t *testing.T) {
	needE2E(t)
	t.Parallel()
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	low := startVipd(t, l.Hosts[1], "low", keepalivedConf("low", nil, vrrpInst{Priority: 100, VIPs: []string{vip + "/24"}}))
	low.waitState(0, "MASTER")
	high := startVipd(t, l.Hosts[0], "high", keepalivedConf("high", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/24"}, Extra: []string{"preempt_delay 1"}}))
	start, _ := high.waitFrom(0, `"start preempt delay(1)"`, contains("start preempt delay(1)"))
	m, _ := high.waitState(0, "MASTER")
	if d := m.At.Sub(start.At); d < time.Second {
		t.Errorf("preempted %v after the delay started, before preempt_delay 1s", d)
	} else {
		t.Logf("preempted %v after the delay started", d.Round(time.Millisecond))
	}
	waitAddr(t, l.Hosts[0], vip, true)
	waitAddr(t, l.Hosts[1], vip, false)
}

// TestE2EVersion2: VRRPv2 (RFC 3768) at 1 s adverts: election, then a
// crash failover.
func TestE2EVersion2(t *testing.T) {
	t.Parallel()
	p := startPair(t, 2, func(i int, in *vrrpInst) { in.Version = 2 })
	settle(p.R1, p.R2)
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
	mark := p.R2.Mark()
	at := p.R1.crash("eth0")
	l, _ := p.R2.waitState(mark, "MASTER")
	waitAddr(t, p.R2.NS, p.VIP, true)
	t.Logf("v2 failover: %v (Master_Down_Interval 3.61s)", l.At.Sub(at).Round(time.Millisecond))
}

// TestE2EVersion2Auth: VRRPv2 simple text authentication (RFC 2338
// section 5.3.6.1). With the same password the two elect one master; with
// different ones each drops the other's adverts (counted, logged with
// reason auth_pass under -D) and both become master.
func TestE2EVersion2Auth(t *testing.T) {
	needE2E(t)
	t.Run("match", func(t *testing.T) {
		t.Parallel()
		p := startPair(t, 2, func(i int, in *vrrpInst) {
			in.Version = 2
			in.State = "MASTER"
			in.Extra = []string{"authentication {", "    auth_type PASS", "    auth_pass s3cret", "}"}
		})
		settle(p.R1, p.R2)
		assertMasterBackup(t, p.R1, p.R2, p.VIP)
	})
	t.Run("mismatch", func(t *testing.T) {
		t.Parallel()
		l := newTestLANPrefix(t, e2eTag, 2)
		vip := lanVIP(l)
		var ds []*daemonProc
		for i, pass := range []string{"s3cret", "wrong"} {
			in := vrrpInst{Version: 2, State: "MASTER", Priority: 150 - 50*i, VIPs: []string{vip + "/24"},
				Extra: []string{"authentication {", "    auth_type PASS", "    auth_pass " + pass, "}"}}
			name := fmt.Sprintf("r%d", i+1)
			ds = append(ds, startVipd(t, l.Hosts[i], name, keepalivedConf(name, nil, in), "-D"))
		}
		for _, d := range ds {
			d.waitState(0, "MASTER")
			d.waitFrom(0, "dropping the other's advert for its password", func(l daemonLog) bool {
				return strings.Contains(l.Msg, "dropped advert") && l.Fields["reason"] == "auth_pass"
			})
		}
		for i, d := range ds {
			waitAddr(t, l.Hosts[i], vip, true)
			if s := d.State(); s != "MASTER" {
				t.Errorf("%s is %s, want MASTER (it cannot hear the other)", d.Name, s)
			}
		}
	})
}

// TestE2EFastAdverts: VRRPv3 at its shortest interval, 10 ms (RFC 5798
// section 5.2.7): election and crash failover.
func TestE2EFastAdverts(t *testing.T) {
	p := startPair(t, 2, func(i int, in *vrrpInst) { in.Interval = "0.01" })
	settle(p.R1, p.R2)
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
	mark := p.R2.Mark()
	at := p.R1.crash("eth0")
	l, _ := p.R2.waitState(mark, "MASTER")
	waitAddr(t, p.R2.NS, p.VIP, true)
	t.Logf("10ms failover: %v (Master_Down_Interval 36ms)", l.At.Sub(at).Round(100*time.Microsecond))
}

// TestE2EIPv6: VRRPv3 for IPv6 (RFC 5798): adverts from the link-local
// address to ff02::12, the VIP added without DAD; election, SIGTERM
// handover.
func TestE2EIPv6(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := fmt.Sprintf("fd00:%d::100", l.Net)
	var ds []*daemonProc
	for i, prio := range []int{150, 100} {
		name := fmt.Sprintf("r%d", i+1)
		ds = append(ds, startVipd(t, l.Hosts[i], name, keepalivedConf(name, nil,
			vrrpInst{Priority: prio, VIPs: []string{vip + "/64 dev eth0"}})))
	}
	ds[0].waitState(0, "MASTER")
	ds[1].waitState(0, "BACKUP")
	waitAddr(t, l.Hosts[0], vip, true)
	settle(ds...)
	assertMasterBackup(t, ds[0], ds[1], vip)
	mark := ds[1].Mark()
	ds[0].Signal(syscall.SIGTERM)
	if err := ds[0].Wait(); err != nil {
		t.Errorf("vipd exited with %v", err)
	}
	if hasAddr(l.Hosts[0], vip) {
		t.Error("the stopped master still holds the IPv6 VIP")
	}
	ds[1].waitState(mark, "MASTER")
	waitAddr(t, l.Hosts[1], vip, true)
}

// routedPair is two LANs joined by a router namespace with forwarding on:
// a on 10.<n>.1.0/24, b on 10.<n>.2.0/24, gw .1 on both.
type routedPair struct {
	A, B, GW *testNS
	AddrA    string
	AddrB    string
}

var routedSeq = 200

func newRoutedPair(t *testing.T) *routedPair {
	t.Helper()
	needRoot(t)
	routedSeq++
	n := routedSeq
	r := &routedPair{A: newTestNSPrefix(t, e2eTag, "a"), B: newTestNSPrefix(t, e2eTag, "b"), GW: newTestNSPrefix(t, e2eTag, "gw")}
	veth(t, r.A, "eth0", r.GW, "ga")
	veth(t, r.B, "eth0", r.GW, "gb")
	r.AddrA, r.AddrB = fmt.Sprintf("10.%d.1.2", n), fmt.Sprintf("10.%d.2.2", n)
	r.GW.IP("addr", "add", fmt.Sprintf("10.%d.1.1/24", n), "dev", "ga")
	r.GW.IP("addr", "add", fmt.Sprintf("10.%d.2.1/24", n), "dev", "gb")
	r.GW.sysctl("net.ipv4.ip_forward=1")
	r.A.IP("addr", "add", r.AddrA+"/24", "dev", "eth0")
	r.B.IP("addr", "add", r.AddrB+"/24", "dev", "eth0")
	r.A.IP("route", "add", "default", "via", fmt.Sprintf("10.%d.1.1", n))
	r.B.IP("route", "add", "default", "via", fmt.Sprintf("10.%d.2.1", n))
	return r
}

// TestE2EUnicastRouted: unicast peers in different subnets, across a
// router, as in clouds: the adverts are routed (TTL 254 on arrival), the
// election works and the backup takes over when the master crashes.
func TestE2EUnicastRouted(t *testing.T) {
	needE2E(t)
	r := newRoutedPair(t)
	if out, err := r.A.Exec("ping", "-c1", "-W2", r.AddrB); err != nil {
		t.Fatalf("no route between the LANs: %v: %s", err, out)
	}
	vip := "192.0.2.77"
	conf := func(name string, prio int, src, peer string) string {
		return keepalivedConf(name, nil, vrrpInst{Priority: prio, VIPs: []string{vip + "/32 dev eth0"},
			Extra: []string{"unicast_src_ip " + src, "unicast_peer {", "    " + peer, "}"}})
	}
	a := startVipd(t, r.A, "a", conf("a", 150, r.AddrA, r.AddrB))
	b := startVipd(t, r.B, "b", conf("b", 100, r.AddrB, r.AddrA))
	a.waitState(0, "MASTER")
	b.waitState(0, "BACKUP")
	settle(a, b)
	assertMasterBackup(t, a, b, vip)
	mark := b.Mark()
	a.crash("eth0")
	l, _ := b.waitState(mark, "MASTER")
	if l.Reason != "master down" {
		t.Errorf("b became master because of %q", l.Reason)
	}
	waitAddr(t, r.B, vip, true)
}

// TestE2EVMAC: use_vmac puts the VIP on a macvlan with the virtual MAC
// 00:00:5e:00:01:VRID (RFC 5798 section 7.3), so a client's neighbour
// entry for the VIP stays the same across a failover.
func TestE2EVMAC(t *testing.T) {
	p := startPair(t, 3, func(i int, in *vrrpInst) { in.Extra = []string{"use_vmac"} })
	client := p.LAN.Hosts[2]
	settle(p.R1, p.R2)
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
	const vmac = "00:00:5e:00:01:33" // VRID 51
	if !strings.Contains(p.R1.NS.IP("link", "show", "vrrp.51"), vmac) {
		t.Errorf("master has no macvlan vrrp.51 with %s:\n%s", vmac, p.R1.NS.IP("link"))
	}
	neigh := func() string {
		t.Helper()
		if out, err := client.Exec("ping", "-c1", "-W2", p.VIP); err != nil {
			t.Fatalf("client cannot reach the VIP: %v: %s", err, out)
		}
		return client.IP("neigh", "show", p.VIP)
	}
	if n := neigh(); !strings.Contains(n, vmac) {
		t.Fatalf("client's neighbour entry for the VIP is %q, want %s\nr1:\n%s\nr2:\n%s", n, vmac,
			p.R1.NS.IP("-br", "link"), p.R2.NS.IP("-br", "link"))
	}
	mark := p.R2.Mark()
	p.R1.crash("eth0")
	p.R2.waitState(mark, "MASTER")
	waitAddr(t, p.R2.NS, p.VIP, true)
	if n := neigh(); !strings.Contains(n, vmac) {
		t.Errorf("after failover the client's neighbour entry is %q, want %s", n, vmac)
	}
	// A stopping master removes its macvlan.
	p.R2.Signal(syscall.SIGTERM)
	p.R2.Wait()
	if out, err := exec.Command("ip", "-n", p.R2.NS.Name, "link", "show", "vrrp.51").CombinedOutput(); err == nil {
		t.Errorf("vrrp.51 left after SIGTERM:\n%s", out)
	}
}

// arpCapture records gratuitous ARPs for one address seen in a namespace,
// with the time each frame was read.
type arpCapture struct {
	mu     sync.Mutex
	frames []arpSeen
}

type arpSeen struct {
	At     time.Time
	Sender net.HardwareAddr
}

// captureGARP opens an AF_PACKET socket for ARP on dev in ns and records
// ARP frames whose sender and target protocol address are both ip.
func captureGARP(t *testing.T, ns *testNS, dev string, ip netip.Addr) *arpCapture {
	t.Helper()
	ifi := ns.Interface(dev)
	var conn *packet.Conn
	ns.MustDo(func() (err error) {
		conn, err = packet.Listen(ifi, packet.Raw, 0x0806, nil)
		return err
	})
	t.Cleanup(func() { conn.Close() })
	c := &arpCapture{}
	want := ip.As4()
	go func() {
		buf := make([]byte, 1600)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			at := time.Now()
			f := buf[:n]
			// Ethernet (14) + ARP for IPv4 over Ethernet (28).
			if n < 42 || f[12] != 0x08 || f[13] != 0x06 {
				continue
			}
			arp := f[14:]
			if [4]byte(arp[14:18]) != want || [4]byte(arp[24:28]) != want {
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, arpSeen{At: at, Sender: net.HardwareAddr(append([]byte(nil), arp[8:14]...))})
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *arpCapture) seen() []arpSeen {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]arpSeen(nil), c.frames...)
}

// TestE2EGratuitousARP: on becoming master vipd broadcasts
// garp_master_repeat gratuitous ARPs for the VIP (RFC 5798 section
// 6.4.1), and as many again after garp_master_delay, from the interface's
// MAC; then no more (no garp_master_refresh).
func TestE2EGratuitousARP(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	capt := captureGARP(t, l.Hosts[1], "eth0", netip.MustParseAddr(vip))
	const repeat, delay = 3, time.Second
	r := startVipd(t, l.Hosts[0], "r1", keepalivedConf("r1", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/24"},
		Extra: []string{fmt.Sprintf("garp_master_repeat %d", repeat), fmt.Sprintf("garp_master_delay %d", delay/time.Second)}}))
	m, _ := r.waitState(0, "MASTER")
	deadline := time.Now().Add(e2eWait)
	for len(capt.seen()) < 2*repeat && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(delay) // anything more would arrive by now
	fs := capt.seen()
	if len(fs) != 2*repeat {
		t.Fatalf("saw %d gratuitous ARPs for %s, want %d (2 rounds of %d)", len(fs), vip, 2*repeat, repeat)
	}
	mac := l.Hosts[0].Interface("eth0").HardwareAddr.String()
	for _, f := range fs {
		if f.Sender.String() != mac {
			t.Errorf("gratuitous ARP from %s, want the interface's MAC %s", f.Sender, mac)
		}
	}
	// Rounds: the first repeat frames come together, the rest after the
	// delay; the split is by the widest gap.
	widest, at := time.Duration(0), 0
	for i := 1; i < len(fs); i++ {
		if d := fs[i].At.Sub(fs[i-1].At); d > widest {
			widest, at = d, i
		}
	}
	if at != repeat {
		t.Errorf("rounds of %d and %d, want %d and %d", at, len(fs)-at, repeat, repeat)
	}
	t.Logf("first GARP %v after MASTER was logged; round 1 spans %v; round 2 starts %v after round 1 (garp_master_delay %v)",
		fs[0].At.Sub(m.At).Round(time.Microsecond), fs[repeat-1].At.Sub(fs[0].At).Round(time.Microsecond),
		fs[repeat].At.Sub(fs[0].At).Round(time.Millisecond), delay)
}

// TestE2ELinkFault: the instance's interface going down puts it in FAULT
// and releases the VIP (the backup takes over); link up brings it back
// to BACKUP, from which it preempts again.
func TestE2ELinkFault(t *testing.T) {
	p := startPair(t, 2, nil)
	settle(p.R1, p.R2)
	m1, m2 := p.R1.Mark(), p.R2.Mark()
	p.R1.NS.IP("link", "set", "eth0", "down")
	l, _ := p.R1.waitState(m1, "FAULT")
	if l.Reason != "interface down" {
		t.Errorf("FAULT because of %q, want interface down", l.Reason)
	}
	waitAddr(t, p.R1.NS, p.VIP, false)
	p.R2.waitState(m2, "MASTER")
	waitAddr(t, p.R2.NS, p.VIP, true)
	m1 = p.R1.Mark()
	p.R1.NS.IP("link", "set", "eth0", "up")
	l, _ = p.R1.waitState(m1, "BACKUP")
	if l.Reason != "interface up" {
		t.Errorf("BACKUP because of %q, want interface up", l.Reason)
	}
	p.R1.waitState(m1, "MASTER")
	waitAddr(t, p.R1.NS, p.VIP, true)
	waitAddr(t, p.R2.NS, p.VIP, false)
}

// TestE2EMissingInterface: an instance whose interface does not exist yet
// waits in FAULT; when the interface appears it runs, and its link state
// is followed from then on.
func TestE2EMissingInterface(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 1)
	h := l.Hosts[0]
	vip := lanVIP(l)
	r := startVipd(t, h, "r1", keepalivedConf("r1", nil, vrrpInst{Interface: "eth1", Priority: 150, VIPs: []string{vip + "/24 dev eth1"}}))
	r.waitFrom(0, "saying it cannot run", contains("cannot run"))
	if r.Exited() {
		t.Fatal("vipd exited on a missing interface")
	}
	mark := r.Mark()
	// The interface appears: a second port on the LAN's bridge.
	veth(t, h, "eth1", l.Bridge, "q1")
	l.Bridge.IP("link", "set", "q1", "master", "br0")
	h.IP("addr", "add", fmt.Sprintf("10.%d.0.9/24", l.Net), "dev", "eth1")
	r.waitState(mark, "MASTER")
	waitAddr(t, h, vip, true)
	// And its link is watched.
	mark = r.Mark()
	h.IP("link", "set", "eth1", "down")
	r.waitState(mark, "FAULT")
	waitAddr(t, h, vip, false)
}

// Exited reports whether the process has exited.
func (p *daemonProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// TestE2EStaleVIP: a VIP of our configuration left on the interface by a
// crashed run is removed at start, before entering BACKUP; an address not
// in the configuration is never touched.
func TestE2EStaleVIP(t *testing.T) {
	p := startPair(t, 2, nil)
	settle(p.R1, p.R2)
	other := fmt.Sprintf("10.%d.0.200", p.LAN.Net)
	p.R2.kill()
	// What a crashed master leaves: the VIP still on eth0.
	p.R2.NS.IP("addr", "add", p.VIP+"/24", "dev", "eth0")
	p.R2.NS.IP("addr", "add", other+"/24", "dev", "eth0")
	mark := p.R2.Mark()
	p.R2.start()
	p.R2.waitFrom(mark, "about removing the stale VIP", contains("removing "+p.VIP))
	p.R2.waitState(mark, "BACKUP")
	if hasAddr(p.R2.NS, p.VIP) {
		t.Error("the stale VIP is still on the restarted backup")
	}
	if !hasAddr(p.R2.NS, other) {
		t.Errorf("vipd removed %s, which is not in its configuration", other)
	}
	assertMasterBackup(t, p.R1, p.R2, p.VIP)
}

// TestE2ESideBySide: two vipd in two separate namespaces, with the same
// configuration file and no pid file, run side by side: each is master
// of its own LAN, and stopping one leaves the other alone.
func TestE2ESideBySide(t *testing.T) {
	needE2E(t)
	a, b := newTestLANPrefix(t, e2eTag, 1), newTestLANPrefix(t, e2eTag, 1)
	vip := "192.0.2.50"
	conf := keepalivedConf("same", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/24 dev eth0"}})
	da := startVipd(t, a.Hosts[0], "a", conf)
	db := &daemonProc{t: t, Name: "b", NS: b.Hosts[0], Conf: da.Conf}
	db.start()
	da.waitState(0, "MASTER")
	db.waitState(0, "MASTER")
	waitAddr(t, a.Hosts[0], vip, true)
	waitAddr(t, b.Hosts[0], vip, true)
	mark := db.Mark()
	da.Signal(syscall.SIGTERM)
	if err := da.Wait(); err != nil {
		t.Errorf("a exited with %v", err)
	}
	waitAddr(t, a.Hosts[0], vip, false)
	time.Sleep(500 * time.Millisecond)
	if n := db.countFrom(mark, contains("Entering")); n != 0 || !hasAddr(b.Hosts[0], vip) {
		t.Errorf("stopping a disturbed b: %d state changes, VIP present %v", n, hasAddr(b.Hosts[0], vip))
	}
}

// captureNA records neighbour advertisements for ip seen on dev in ns
// (RFC 4861 section 4.4) that are well-formed unsolicited ones: hop limit
// 255, to all-nodes, override flag set, solicited flag clear.
func captureNA(t *testing.T, ns *testNS, dev string, ip netip.Addr) *arpCapture {
	t.Helper()
	ifi := ns.Interface(dev)
	var conn *packet.Conn
	ns.MustDo(func() (err error) {
		conn, err = packet.Listen(ifi, packet.Raw, 0x86dd, nil)
		return err
	})
	t.Cleanup(func() { conn.Close() })
	c := &arpCapture{}
	want := ip.As16()
	allNodes := netip.MustParseAddr("ff02::1").As16()
	go func() {
		buf := make([]byte, 1600)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			at := time.Now()
			f := buf[:n]
			// Ethernet (14), IPv6 (40), NA: type, code, checksum, flags
			// (4), target (16).
			if n < 14+40+24 || f[12] != 0x86 || f[13] != 0xdd {
				continue
			}
			h, icmp := f[14:54], f[54:]
			if h[6] != 58 || icmp[0] != 136 || [16]byte(icmp[8:24]) != want {
				continue
			}
			if h[7] != 255 || [16]byte(h[24:40]) != allNodes || icmp[4]&0x20 == 0 || icmp[4]&0x40 != 0 {
				t.Errorf("malformed unsolicited NA: hop limit %d, dst %x, flags %#x", h[7], h[24:40], icmp[4])
				continue
			}
			c.mu.Lock()
			c.frames = append(c.frames, arpSeen{At: at, Sender: net.HardwareAddr(append([]byte(nil), f[6:12]...))})
			c.mu.Unlock()
		}
	}()
	return c
}

// TestE2EUnsolicitedNA: for an IPv6 VIP a new master sends unsolicited
// neighbour advertisements instead of gratuitous ARPs (RFC 5798 section
// 6.4.1), garp_master_repeat of them and again after garp_master_delay.
func TestE2EUnsolicitedNA(t *testing.T) {
	needE2E(t)
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := fmt.Sprintf("fd00:%d::100", l.Net)
	capt := captureNA(t, l.Hosts[1], "eth0", netip.MustParseAddr(vip))
	const repeat = 2
	r := startVipd(t, l.Hosts[0], "r1", keepalivedConf("r1", nil, vrrpInst{Priority: 150, VIPs: []string{vip + "/64"},
		Extra: []string{fmt.Sprintf("garp_master_repeat %d", repeat), "garp_master_delay 1"}}))
	r.waitState(0, "MASTER")
	deadline := time.Now().Add(e2eWait)
	for len(capt.seen()) < 2*repeat && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	fs := capt.seen()
	if len(fs) != 2*repeat {
		t.Fatalf("saw %d unsolicited NAs for %s, want %d", len(fs), vip, 2*repeat)
	}
	mac := l.Hosts[0].Interface("eth0").HardwareAddr.String()
	for _, f := range fs {
		if f.Sender.String() != mac {
			t.Errorf("NA from %s, want the interface's MAC %s", f.Sender, mac)
		}
	}
	t.Logf("second round %v after the first", fs[repeat].At.Sub(fs[0].At).Round(time.Millisecond))
}
