package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// labCmd is `vipd lab`: a private LAN of network namespaces (a bridge in its
// own namespace, N routers, a client) running vipd, where the master is made
// to fail while the client pings the VIP. It prints a timeline and removes
// everything it created. Nothing outside its namespaces is touched.
type labCmd struct {
	Routers      int           `default:"2" help:"Number of routers (2-9)."`
	VRRPVersion  int           `name:"vrrp-version" default:"3" enum:"2,3" help:"VRRP version."`
	Interval     time.Duration `default:"1s" help:"Advert interval (v2: whole seconds; v3: 10ms steps)."`
	IPv6         bool          `name:"ipv6" help:"Use an IPv6 VIP (forces version 3)."`
	Unicast      bool          `help:"Unicast peers instead of multicast."`
	VMAC         bool          `name:"vmac" help:"use_vmac: the VIP lives on a macvlan with the virtual MAC."`
	Fault        string        `default:"kill" enum:"stop,kill,link" help:"How the master fails: stop (SIGTERM, graceful), kill (SIGKILL and its link down: a crash), link (its link goes down)."`
	Keepalived   bool          `help:"Run the real keepalived (when installed) as the last router."`
	Impl         string        `default:"vipd" enum:"vipd,keepalived" help:"Daemon on every router: vipd or keepalived (when installed)."`
	After        time.Duration `default:"3s" help:"How long to watch after the fault."`
	Keep         bool          `help:"Leave the lab running for exploring; Ctrl-C removes it."`
	Prefix       string        `help:"Namespace name prefix (default vipdlab<pid>)."`
	Runs         int           `default:"1" help:"Make the master fail this many times, restoring it between runs, and print the figures of each run."`
	JSON         bool          `name:"json" help:"Print the figures of each run as one JSON object per line."`
	PingEvery    time.Duration `default:"10ms" help:"How often the client pings the VIP."`
	Bench        bool          `help:"Failover benchmark: vipd and keepalived on identical LANs, crash and graceful handover at v2 1s, v3 100ms and v3 10ms (--runs each), then vipd's takeover overhead (--takeover-runs); prints a table."`
	TakeoverRuns int           `default:"100" help:"With --bench: runs measuring vipd's takeover overhead."`
}

// labEvent is one line of the timeline.
type labEvent struct {
	at   time.Time
	who  string
	what string
	// fields are the JSON fields of a vipd log line (takeover_due, ...).
	fields map[string]any
}

type lab struct {
	cmd     *labCmd
	out     io.Writer
	prefix  string
	dir     string
	vip     netip.Addr
	bits    int
	routers []*labRouter

	mu     sync.Mutex
	events []labEvent
}

type labRouter struct {
	name     string
	ns       string
	addr     netip.Addr
	prio     int
	proc     *exec.Cmd
	isKA     bool
	waitDone chan struct{}
	mac      string // eth0's MAC
}

func (c *labCmd) Run() error {
	if os.Geteuid() != 0 {
		return errors.New("vipd lab needs root: it creates network namespaces")
	}
	if c.Bench {
		return c.bench(os.Stdout)
	}
	if err := c.check(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	_, err := c.runLab(ctx, os.Stdout)
	return err
}

// check validates the flags and fills defaults.
func (c *labCmd) check() error {
	if c.Routers < 2 || c.Routers > 9 {
		return fmt.Errorf("--routers %d is out of range 2..9", c.Routers)
	}
	if c.IPv6 {
		c.VRRPVersion = 3
	}
	if c.VRRPVersion == 2 && c.Interval%time.Second != 0 {
		return fmt.Errorf("--interval %v: VRRPv2 adverts are whole seconds", c.Interval)
	}
	if c.Interval < 10*time.Millisecond || c.Interval > 40950*time.Millisecond {
		return fmt.Errorf("--interval %v is out of range 10ms..40.95s", c.Interval)
	}
	if c.Runs < 1 {
		c.Runs = 1
	}
	if c.PingEvery <= 0 {
		c.PingEvery = 10 * time.Millisecond
	}
	return nil
}

// runLab builds a lab, runs it and removes it, returning the figures of
// each run.
func (c *labCmd) runLab(ctx context.Context, out io.Writer) ([]labRunResult, error) {
	l := &lab{cmd: c, prefix: c.Prefix, out: out}
	if l.prefix == "" {
		l.prefix = fmt.Sprintf("vipdlab%d", os.Getpid())
	}
	dir, err := os.MkdirTemp("", l.prefix+"-")
	if err != nil {
		return nil, err
	}
	l.dir = dir
	defer l.teardown()
	if err := l.build(); err != nil {
		return nil, err
	}
	return l.run(ctx)
}

func (l *lab) ns(name string) string { return l.prefix + "-" + name }

func (l *lab) note(who, what string) {
	l.mu.Lock()
	l.events = append(l.events, labEvent{at: time.Now(), who: who, what: what})
	l.mu.Unlock()
}

// ipCmd runs ip(8) with args and returns its error with its output.
func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// build creates the namespaces: <prefix>-br holds bridge br0; each router and
// the client gets a namespace with eth0, whose veth peer is a bridge port.
func (l *lab) build() error {
	c := l.cmd
	if c.IPv6 {
		l.vip, l.bits = netip.MustParseAddr("2001:db8:99::100"), 64
	} else {
		l.vip, l.bits = netip.MustParseAddr("192.0.2.100"), 24
	}
	br := l.ns("br")
	if err := ipCmd("netns", "add", br); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", br, "link", "add", "br0", "type", "bridge"},
		{"-n", br, "link", "set", "br0", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			return err
		}
	}
	hosts := []string{"client"}
	for i := 1; i <= c.Routers; i++ {
		hosts = append(hosts, fmt.Sprintf("r%d", i))
	}
	for i, h := range hosts {
		ns := l.ns(h)
		if err := ipCmd("netns", "add", ns); err != nil {
			return err
		}
		addr := l.hostAddr(i)
		family := "-4"
		if c.IPv6 {
			family = "-6"
		}
		for _, s := range [][]string{
			{"-n", br, "link", "add", h, "type", "veth", "peer", "name", "eth0", "netns", ns},
			{"-n", br, "link", "set", h, "master", "br0", "up"},
			{"-n", ns, "link", "set", "lo", "up"},
			{"-n", ns, family, "addr", "add", fmt.Sprintf("%s/%d", addr, l.bits), "dev", "eth0", "nodad"},
			{"-n", ns, "link", "set", "eth0", "up"},
		} {
			if err := ipCmd(s...); err != nil {
				return err
			}
		}
		if i > 0 {
			l.routers = append(l.routers, &labRouter{name: h, ns: ns, addr: addr, prio: 100 + 10*(c.Routers-i+1)})
		}
	}
	if c.Keepalived || c.Impl == "keepalived" {
		if _, err := exec.LookPath("keepalived"); err != nil {
			return errors.New("keepalived is not installed")
		}
		l.routers[len(l.routers)-1].isKA = true
		if c.Impl == "keepalived" {
			for _, r := range l.routers {
				r.isKA = true
			}
		}
	}
	for _, r := range l.routers {
		ifi, err := labInterface(r.ns, "eth0")
		if err != nil {
			return err
		}
		r.mac = ifi.HardwareAddr.String()
	}
	return nil
}

// labInterface returns interface name as seen in namespace ns.
func labInterface(ns, name string) (*net.Interface, error) {
	var ifi *net.Interface
	err := inNetns(ns, func() (err error) {
		ifi, err = net.InterfaceByName(name)
		return err
	})
	return ifi, err
}

// inNetns runs fn on a locked OS thread switched into namespace ns, then
// switches back. Sockets fn opens stay in ns.
func inNetns(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// hostAddr is host i's address: the client is 0, routers 1..N.
func (l *lab) hostAddr(i int) netip.Addr {
	if l.cmd.IPv6 {
		return netip.MustParseAddr(fmt.Sprintf("2001:db8:99::%d", 10+i))
	}
	return netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", 10+i))
}

// config writes router r's keepalived.conf.
func (l *lab) config(r *labRouter) string {
	c := l.cmd
	var b strings.Builder
	// Several runs turn the second round of gratuitous ARPs off, so that
	// one run's does not count as the next one's first.
	delay := 1
	if l.multi() {
		delay = 0
	}
	fmt.Fprintf(&b, "! vipd lab: %s\nglobal_defs {\n    router_id %s\n    vrrp_garp_master_delay %d\n}\n", r.name, r.name, delay)
	fmt.Fprintf(&b, "vrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    priority %d\n", r.prio)
	fmt.Fprintf(&b, "    version %d\n", c.VRRPVersion)
	if c.VRRPVersion == 2 {
		fmt.Fprintf(&b, "    advert_int %d\n", int(c.Interval/time.Second))
	} else {
		fmt.Fprintf(&b, "    advert_int %.2f\n", c.Interval.Seconds())
	}
	if c.VMAC {
		b.WriteString("    use_vmac\n")
	}
	if c.Unicast {
		fmt.Fprintf(&b, "    unicast_src_ip %s\n    unicast_peer {\n", r.addr)
		for _, o := range l.routers {
			if o != r {
				fmt.Fprintf(&b, "        %s\n", o.addr)
			}
		}
		b.WriteString("    }\n")
	}
	fmt.Fprintf(&b, "    virtual_ipaddress {\n        %s/%d dev eth0\n    }\n}\n", l.vip, l.bits)
	return b.String()
}

func (l *lab) start(r *labRouter) error {
	conf := filepath.Join(l.dir, r.name+".conf")
	if err := os.WriteFile(conf, []byte(l.config(r)), 0o644); err != nil {
		return err
	}
	var args []string
	if r.isKA {
		// A killed run's VRRP child may linger as a zombie that keepalived
		// takes for a running daemon: start from fresh pid files.
		os.Remove(filepath.Join(l.dir, r.name+".pid"))
		os.Remove(filepath.Join(l.dir, r.name+".vrrp.pid"))
		// -G: no syslog. Without a syslog daemon (namespaces, CI) glibc
		// falls back to /dev/console for keepalived's log lines (it opens
		// the log with LOG_CONS under -l), and that is a serial port on
		// these machines: each line took milliseconds of keepalived's
		// only thread and its adverts came late (bench/RESULTS.md). -l
		// still writes every line to its stderr, our log file.
		args = []string{"netns", "exec", r.ns, "keepalived", "-n", "-l", "-G", "-D", "--vrrp", "-f", conf,
			"-p", filepath.Join(l.dir, r.name+".pid"), "-r", filepath.Join(l.dir, r.name+".vrrp.pid")}
	} else {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		args = []string{"netns", "exec", r.ns, self, "run", "-f", conf, "--log-format", "json"}
	}
	cmd := exec.Command("ip", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf, err := os.OpenFile(filepath.Join(l.dir, r.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return err
	}
	r.proc = cmd
	r.waitDone = make(chan struct{})
	go func() {
		cmd.Wait()
		pw.Close()
		close(r.waitDone)
	}()
	go l.follow(r, io.TeeReader(pr, logf), logf)
	l.note(r.name, fmt.Sprintf("started (%s, priority %d)", r.kind(), r.prio))
	return nil
}

// vrrpChild is keepalived's VRRP child process id, 0 when unknown.
func (l *lab) vrrpChild(r *labRouter) int {
	if !r.isKA {
		return 0
	}
	b, err := os.ReadFile(filepath.Join(l.dir, r.name+".vrrp.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

func (r *labRouter) kind() string {
	if r.isKA {
		return "keepalived"
	}
	return "vipd"
}

// follow turns a router's log into timeline events: state entries, in
// vipd's JSON lines or keepalived's text lines alike.
func (l *lab) follow(r *labRouter, rd io.Reader, closer io.Closer) {
	defer closer.Close()
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		at := time.Now()
		line := sc.Text()
		msg := line
		var fields map[string]any
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &fields) == nil {
			msg, _ = fields["message"].(string)
		}
		// "(VI_1) Entering MASTER STATE", keepalived also "... STATE (init)".
		if i := strings.Index(msg, "Entering "); i >= 0 {
			if f := strings.Fields(msg[i+len("Entering "):]); len(f) >= 2 && f[1] == "STATE" {
				l.mu.Lock()
				l.events = append(l.events, labEvent{at: at, who: r.name, what: f[0], fields: fields})
				l.mu.Unlock()
			}
		}
	}
}

// pinger pings the VIP from the client every 10 ms and records replies.
type pinger struct {
	mu      sync.Mutex
	replies []time.Time
	sent    int
}

func (l *lab) ping(ctx context.Context, p *pinger) error {
	conn, err := l.icmpConn()
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); conn.Close() }()
	v6 := l.vip.Is6()
	typ := icmp.Type(ipv4.ICMPTypeEcho)
	proto := 1
	if v6 {
		typ, proto = ipv6.ICMPTypeEchoRequest, 58
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(proto, buf[:n])
			if err != nil {
				continue
			}
			if m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply {
				p.mu.Lock()
				p.replies = append(p.replies, time.Now())
				p.mu.Unlock()
			}
		}
	}()
	dst := &net.IPAddr{IP: l.vip.AsSlice()}
	t := time.NewTicker(l.cmd.PingEvery)
	defer t.Stop()
	for seq := 1; ; seq++ {
		msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: seq & 0xffff, Data: []byte("vipd lab")}}
		b, _ := msg.Marshal(nil)
		conn.WriteTo(b, dst)
		p.mu.Lock()
		p.sent++
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// icmpConn opens a raw ICMP socket inside the client namespace; a socket
// keeps the namespace it was created in.
func (l *lab) icmpConn() (c *icmp.PacketConn, err error) {
	err = inNetns(l.ns("client"), func() error {
		if l.vip.Is6() {
			c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		} else {
			c, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		}
		return err
	})
	return c, err
}

func (l *lab) master() *labRouter {
	l.mu.Lock()
	defer l.mu.Unlock()
	state := map[string]string{}
	for _, e := range l.events {
		state[e.who] = e.what
	}
	for _, r := range l.routers {
		if state[r.name] == "MASTER" {
			return r
		}
	}
	return nil
}

// labRunResult is what one run measured. Times are from the fault unless
// said otherwise; -1 means not seen.
type labRunResult struct {
	Impl       string  `json:"impl"`
	Version    int     `json:"version"`
	IntervalMS float64 `json:"interval_ms"`
	Fault      string  `json:"fault"`
	Run        int     `json:"run"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	// MasterMS: the new master's "Entering MASTER STATE" line, when the
	// lab read it.
	MasterMS float64 `json:"master_ms"`
	// WireMS: its first gratuitous ARP for the VIP on the wire, by the
	// kernel's receive timestamp in the client namespace (IPv4 only).
	WireMS float64 `json:"wire_ms"`
	// SilenceMS: from the failed master's last advert on the wire (its
	// priority 0 advert when stopped) to that first gratuitous ARP: the
	// detection time, Master_Down_Interval (or Skew_Time) plus the
	// takeover, free of the fault's phase against the advert interval.
	SilenceMS float64 `json:"silence_ms"`
	// PingGapMS: the longest gap between the client's ping replies
	// around the fault (resolution --ping-every).
	PingGapMS float64 `json:"ping_gap_ms"`
	// vipd only: its takeover overhead, from the timer being due to the
	// VIPs added and the first round of gratuitous ARPs written (vipd's
	// own clock), and to the first one on the wire (the client's kernel
	// timestamp; same host clock).
	TakeoverFiredUS float64 `json:"takeover_fired_us,omitempty"`
	TakeoverVIPsUS  float64 `json:"takeover_vips_us,omitempty"`
	TakeoverGARPUS  float64 `json:"takeover_garp_us,omitempty"`
	TakeoverWireUS  float64 `json:"takeover_wire_us,omitempty"`
	Err             string  `json:"error,omitempty"`
}

// downInterval is a generous Master_Down_Interval for waiting.
func (l *lab) downInterval() time.Duration {
	return 4 * l.cmd.Interval
}

// waitMaster waits until the highest priority router is the only master.
func (l *lab) waitMaster(ctx context.Context, limit time.Duration) (*labRouter, error) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if m := l.master(); m == l.routers[0] && l.masters() == 1 {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if m := l.master(); m != nil && !l.multi() {
		return m, nil
	}
	return nil, fmt.Errorf("no single master within %v; logs in %s", limit, l.dir)
}

// masters counts the routers whose last state is MASTER.
func (l *lab) masters() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	state := map[string]string{}
	for _, e := range l.events {
		state[e.who] = e.what
	}
	n := 0
	for _, r := range l.routers {
		if state[r.name] == "MASTER" {
			n++
		}
	}
	return n
}

func (l *lab) multi() bool { return l.cmd.Runs > 1 || l.cmd.JSON }

func (l *lab) run(ctx context.Context) ([]labRunResult, error) {
	c := l.cmd
	out := l.out
	if !c.JSON {
		fmt.Fprintf(out, "lab %s: %d routers (%s), VRRPv%d, advert every %v, %s%s, VIP %s, fault %q\n",
			l.prefix, c.Routers, c.Impl, c.VRRPVersion, c.Interval, map[bool]string{true: "unicast", false: "multicast"}[c.Unicast],
			map[bool]string{true: ", use_vmac", false: ""}[c.VMAC], l.vip, c.Fault)
	}
	var sn *arpSniffer
	if l.vip.Is4() {
		var err error
		if sn, err = l.sniffARP(); err != nil {
			return nil, err
		}
		defer sn.Close()
	}
	t0 := time.Now()
	for _, r := range l.routers {
		if err := l.start(r); err != nil {
			return nil, err
		}
	}
	// A fresh cluster elects after one Master_Down_Interval.
	m, err := l.waitMaster(ctx, 3*l.downInterval()+5*time.Second)
	if err != nil {
		if !c.JSON {
			l.printTimeline(t0, nil, time.Time{})
		}
		return nil, err
	}
	pctx, pcancel := context.WithCancel(ctx)
	defer pcancel()
	p := &pinger{}
	perr := make(chan error, 1)
	go func() { perr <- l.ping(pctx, p) }()
	settle := 2*c.Interval + 500*time.Millisecond
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(settle):
	}
	if c.Keep {
		fmt.Fprintf(out, "lab is up: master %s. Explore with e.g.\n  ip netns exec %s ip addr\n  ip netns exec %s tcpdump -ni eth0 vrrp\n  configs and logs in %s\nCtrl-C removes it.\n",
			m.name, m.ns, l.ns("client"), l.dir)
		<-ctx.Done()
		return nil, nil
	}
	var results []labRunResult
	var faultAt time.Time
	for run := 1; run <= c.Runs; run++ {
		if run > 1 {
			if m, err = l.waitMaster(ctx, 3*l.downInterval()+5*time.Second); err != nil {
				return results, err
			}
			select {
			case <-ctx.Done():
				return results, ctx.Err()
			case <-time.After(settle):
			}
		}
		if l.multi() {
			// A random phase against the adverts, so that crash figures
			// sample the whole Master_Down_Interval window.
			time.Sleep(time.Duration(rand.Int64N(int64(c.Interval))))
		}
		faultAt = time.Now()
		if err := l.fail(m); err != nil {
			return results, err
		}
		res := l.measure(ctx, run, m, faultAt, sn, p)
		results = append(results, res)
		if c.JSON {
			b, _ := json.Marshal(res)
			fmt.Fprintln(out, string(b))
		} else if l.multi() {
			fmt.Fprintf(out, "run %3d: %s -> %s: master after %8.2f ms, first GARP on the wire %8.2f ms (%8.2f ms after the last advert), ping gap %7.1f ms%s\n",
				run, res.From, res.To, res.MasterMS, res.WireMS, res.SilenceMS, res.PingGapMS, takeoverText(res))
		}
		if run < c.Runs {
			if err := l.restore(m); err != nil {
				return results, err
			}
		}
	}
	pcancel()
	if err := <-perr; err != nil {
		return results, err
	}
	if !l.multi() {
		l.printTimeline(t0, m, faultAt)
		l.printPing(p, faultAt)
	}
	return results, nil
}

func takeoverText(r labRunResult) string {
	if r.TakeoverVIPsUS == 0 {
		return ""
	}
	return fmt.Sprintf(", takeover: woke %.0f us, VIPs %.0f us, GARP written %.0f us, on the wire %.0f us after the timer was due",
		r.TakeoverFiredUS, r.TakeoverVIPsUS, r.TakeoverGARPUS, r.TakeoverWireUS)
}

// measure waits for another router to take over after the fault at
// faultAt and returns the run's figures.
func (l *lab) measure(ctx context.Context, run int, m *labRouter, faultAt time.Time, sn *arpSniffer, p *pinger) labRunResult {
	c := l.cmd
	res := labRunResult{Impl: c.Impl, Version: c.VRRPVersion, IntervalMS: float64(c.Interval) / 1e6, Fault: c.Fault,
		Run: run, From: m.name, MasterMS: -1, WireMS: -1, SilenceMS: -1, PingGapMS: -1}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	deadline := time.Now().Add(3*l.downInterval() + 3*time.Second)
	if !l.multi() {
		deadline = time.Now().Add(c.After)
	}
	var (
		took  *labEvent
		garp  time.Time
		endAt time.Time
	)
	for time.Now().Before(deadline) {
		if took == nil {
			took = l.takeover(m, faultAt)
		}
		if took != nil && sn != nil && garp.IsZero() {
			var to *labRouter
			for _, r := range l.routers {
				if r.name == took.who {
					to = r
				}
			}
			garp = sn.first(faultAt, l.vip, m.mac, to.mac, c.VMAC)
		}
		if took != nil && (sn == nil || !garp.IsZero()) && l.multi() {
			if endAt.IsZero() {
				// Let the client's pings see the new master.
				endAt = time.Now().Add(max(20*c.PingEvery, 50*time.Millisecond))
			}
			if time.Now().After(endAt) {
				break
			}
		}
		select {
		case <-ctx.Done():
			res.Err = ctx.Err().Error()
			return res
		case <-time.After(2 * time.Millisecond):
		}
	}
	if took == nil {
		res.Err = "no other router became master"
		return res
	}
	res.To = took.who
	res.MasterMS = ms(took.at.Sub(faultAt))
	if !garp.IsZero() {
		res.WireMS = ms(garp.Sub(faultAt))
		if last := sn.lastAdvert(m.addr, garp); !last.IsZero() && !last.Before(faultAt.Add(-2*c.Interval-100*time.Millisecond)) {
			res.SilenceMS = ms(garp.Sub(last))
		}
	}
	res.PingGapMS = ms(p.gap(faultAt, time.Now()))
	if took.fields != nil {
		if due, ok := took.fields["takeover_due"].(string); ok {
			res.TakeoverFiredUS, _ = took.fields["takeover_fired_us"].(float64)
			res.TakeoverVIPsUS, _ = took.fields["takeover_vips_us"].(float64)
			res.TakeoverGARPUS, _ = took.fields["takeover_garp_us"].(float64)
			if t, err := time.Parse(time.RFC3339Nano, due); err == nil && !garp.IsZero() {
				res.TakeoverWireUS = float64(garp.Sub(t).Nanoseconds()) / 1e3
			}
		}
	}
	return res
}

// takeover returns the first MASTER entry of a router other than m after
// faultAt.
func (l *lab) takeover(m *labRouter, faultAt time.Time) *labEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.events {
		e := &l.events[i]
		if e.who != m.name && e.what == "MASTER" && e.at.After(faultAt) {
			return e
		}
	}
	return nil
}

// gap is the longest gap between ping replies from the last one before
// from until to.
func (p *pinger) gap(from, to time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	last := from
	for _, r := range p.replies {
		if r.Before(from) {
			last = r
			continue
		}
		if r.After(to) {
			break
		}
		if d := r.Sub(last); d > gap {
			gap = d
		}
		last = r
	}
	if d := to.Sub(last); d > gap {
		gap = d
	}
	return gap
}

func (l *lab) fail(m *labRouter) error {
	switch l.cmd.Fault {
	case "stop":
		l.note(m.name, "fault: SIGTERM")
		return m.signal(syscall.SIGTERM)
	case "kill":
		l.note(m.name, "fault: SIGKILL and link down")
		child := l.vrrpChild(m)
		err := m.signal(syscall.SIGKILL)
		if child > 0 {
			syscall.Kill(child, syscall.SIGKILL)
		}
		if err2 := ipCmd("-n", m.ns, "link", "set", "eth0", "down"); err == nil {
			err = err2
		}
		return err
	default:
		l.note(m.name, "fault: link down")
		return ipCmd("-n", l.ns("br"), "link", "set", m.name, "down")
	}
}

// restore undoes the fault on m: a stopped or killed daemon is started
// again, a downed link brought up.
func (l *lab) restore(m *labRouter) error {
	switch l.cmd.Fault {
	case "link":
		return ipCmd("-n", l.ns("br"), "link", "set", m.name, "up")
	case "kill":
		if err := ipCmd("-n", m.ns, "link", "set", "eth0", "up"); err != nil {
			return err
		}
	}
	select {
	case <-m.waitDone:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s did not exit", m.name)
	}
	return l.start(m)
}

// signal sends sig to the daemon inside the namespace: ip netns exec
// execs the daemon, so the process is the one we started.
func (r *labRouter) signal(sig syscall.Signal) error {
	if r.proc == nil || r.proc.Process == nil {
		return errors.New("router not running")
	}
	return r.proc.Process.Signal(sig)
}

func (l *lab) printTimeline(t0 time.Time, m *labRouter, faultAt time.Time) {
	l.mu.Lock()
	ev := append([]labEvent(nil), l.events...)
	l.mu.Unlock()
	sort.SliceStable(ev, func(i, j int) bool { return ev[i].at.Before(ev[j].at) })
	fmt.Println("\ntimeline (ms since start):")
	var takeover time.Time
	for _, e := range ev {
		fmt.Printf("  %9.1f  %-4s %s\n", float64(e.at.Sub(t0).Microseconds())/1000, e.who, e.what)
		if m != nil && e.who != m.name && e.what == "MASTER" && e.at.After(faultAt) && takeover.IsZero() {
			takeover = e.at
		}
	}
	if m != nil {
		if takeover.IsZero() {
			fmt.Printf("\nno other router became master after the fault\n")
		} else {
			fmt.Printf("\nfailover: %v from the fault to a new master\n", takeover.Sub(faultAt).Round(100*time.Microsecond))
		}
	}
}

func (l *lab) printPing(p *pinger, faultAt time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gap time.Duration
	last := faultAt
	for _, r := range p.replies {
		if r.Before(faultAt) {
			continue
		}
		if d := r.Sub(last); d > gap {
			gap = d
		}
		last = r
	}
	fmt.Printf("client: %d pings every 10ms, %d replies; longest gap after the fault %v\n",
		p.sent, len(p.replies), gap.Round(time.Millisecond))
}

// teardown stops the routers and deletes every namespace the lab made.
func (l *lab) teardown() {
	for _, r := range l.routers {
		if r.proc != nil && r.proc.Process != nil {
			r.proc.Process.Signal(syscall.SIGTERM)
			select {
			case <-r.waitDone:
			case <-time.After(3 * time.Second):
				r.proc.Process.Kill()
				<-r.waitDone
			}
		}
	}
	names := []string{"client", "br"}
	for i := 1; i <= l.cmd.Routers; i++ {
		names = append(names, fmt.Sprintf("r%d", i))
	}
	for _, n := range names {
		exec.Command("ip", "netns", "del", l.ns(n)).Run()
	}
	if !l.cmd.Keep {
		os.RemoveAll(l.dir)
	}
}
