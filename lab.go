package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	Routers     int           `default:"2" help:"Number of routers (2-9)."`
	VRRPVersion int           `name:"vrrp-version" default:"3" enum:"2,3" help:"VRRP version."`
	Interval    time.Duration `default:"1s" help:"Advert interval (v2: whole seconds; v3: 10ms steps)."`
	IPv6        bool          `name:"ipv6" help:"Use an IPv6 VIP (forces version 3)."`
	Unicast     bool          `help:"Unicast peers instead of multicast."`
	VMAC        bool          `name:"vmac" help:"use_vmac: the VIP lives on a macvlan with the virtual MAC."`
	Fault       string        `default:"kill" enum:"stop,kill,link" help:"How the master fails: stop (SIGTERM, graceful), kill (SIGKILL and its link down: a crash), link (its link goes down)."`
	Keepalived  bool          `help:"Run the real keepalived (when installed) as the last router."`
	After       time.Duration `default:"3s" help:"How long to watch after the fault."`
	Keep        bool          `help:"Leave the lab running for exploring; Ctrl-C removes it."`
	Prefix      string        `help:"Namespace name prefix (default vipdlab<pid>)."`
}

// labEvent is one line of the timeline.
type labEvent struct {
	at   time.Time
	who  string
	what string
}

type lab struct {
	cmd     *labCmd
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
}

func (c *labCmd) Run() error {
	if os.Geteuid() != 0 {
		return errors.New("vipd lab needs root: it creates network namespaces")
	}
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
	l := &lab{cmd: c, prefix: c.Prefix}
	if l.prefix == "" {
		l.prefix = fmt.Sprintf("vipdlab%d", os.Getpid())
	}
	dir, err := os.MkdirTemp("", l.prefix+"-")
	if err != nil {
		return err
	}
	l.dir = dir
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer l.teardown()
	if err := l.build(); err != nil {
		return err
	}
	return l.run(ctx)
}

func (l *lab) ns(name string) string { return l.prefix + "-" + name }

func (l *lab) note(who, what string) {
	l.mu.Lock()
	l.events = append(l.events, labEvent{time.Now(), who, what})
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
	if c.Keepalived {
		if _, err := exec.LookPath("keepalived"); err != nil {
			return errors.New("--keepalived: keepalived is not installed")
		}
		l.routers[len(l.routers)-1].isKA = true
	}
	return nil
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
	fmt.Fprintf(&b, "! vipd lab: %s\nglobal_defs {\n    router_id %s\n    vrrp_garp_master_delay 1\n}\n", r.name, r.name)
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
		args = []string{"netns", "exec", r.ns, "keepalived", "-n", "-l", "-D", "--vrrp", "-f", conf,
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
	logf, err := os.Create(filepath.Join(l.dir, r.name+".log"))
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
		line := sc.Text()
		msg := line
		var j struct {
			Message string `json:"message"`
		}
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &j) == nil {
			msg = j.Message
		}
		// "(VI_1) Entering MASTER STATE", keepalived also "... STATE (init)".
		if i := strings.Index(msg, "Entering "); i >= 0 {
			if f := strings.Fields(msg[i+len("Entering "):]); len(f) >= 2 && f[1] == "STATE" {
				l.note(r.name, f[0])
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
	t := time.NewTicker(10 * time.Millisecond)
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
func (l *lab) icmpConn() (*icmp.PacketConn, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return nil, err
	}
	defer orig.Close()
	target, err := netns.GetFromName(l.ns("client"))
	if err != nil {
		return nil, err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return nil, err
	}
	defer netns.Set(orig)
	if l.vip.Is6() {
		return icmp.ListenPacket("ip6:ipv6-icmp", "::")
	}
	return icmp.ListenPacket("ip4:icmp", "0.0.0.0")
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

func (l *lab) run(ctx context.Context) error {
	c := l.cmd
	fmt.Printf("lab %s: %d routers, VRRPv%d, advert every %v, %s%s, VIP %s, fault %q\n",
		l.prefix, c.Routers, c.VRRPVersion, c.Interval, map[bool]string{true: "unicast", false: "multicast"}[c.Unicast],
		map[bool]string{true: ", use_vmac", false: ""}[c.VMAC], l.vip, c.Fault)
	t0 := time.Now()
	for _, r := range l.routers {
		if err := l.start(r); err != nil {
			return err
		}
	}
	// Wait for a master: a fresh cluster elects after one Master_Down_Interval.
	down := 3*c.Interval + c.Interval
	if c.VRRPVersion == 2 {
		down = 4 * time.Second
	}
	deadline := time.Now().Add(3*down + 3*time.Second)
	var m *labRouter
	for m == nil && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		m = l.master()
	}
	if m == nil {
		l.printTimeline(t0, nil, time.Time{})
		return fmt.Errorf("no router became master within %v; logs in %s", time.Since(t0).Round(time.Millisecond), l.dir)
	}
	pctx, pcancel := context.WithCancel(ctx)
	p := &pinger{}
	perr := make(chan error, 1)
	go func() { perr <- l.ping(pctx, p) }()
	settle := 2*c.Interval + 500*time.Millisecond
	select {
	case <-ctx.Done():
	case <-time.After(settle):
	}
	if c.Keep {
		fmt.Printf("lab is up: master %s. Explore with e.g.\n  ip netns exec %s ip addr\n  ip netns exec %s tcpdump -ni eth0 vrrp\n  configs and logs in %s\nCtrl-C removes it.\n",
			m.name, m.ns, l.ns("client"), l.dir)
		<-ctx.Done()
		pcancel()
		return nil
	}
	faultAt := time.Now()
	if err := l.fail(m); err != nil {
		pcancel()
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(c.After):
	}
	pcancel()
	if err := <-perr; err != nil {
		return err
	}
	l.printTimeline(t0, m, faultAt)
	l.printPing(p, faultAt)
	return nil
}

func (l *lab) fail(m *labRouter) error {
	switch l.cmd.Fault {
	case "stop":
		l.note(m.name, "fault: SIGTERM")
		return m.signal(syscall.SIGTERM)
	case "kill":
		l.note(m.name, "fault: SIGKILL and link down")
		err := m.signal(syscall.SIGKILL)
		if err2 := ipCmd("-n", m.ns, "link", "set", "eth0", "down"); err == nil {
			err = err2
		}
		return err
	default:
		l.note(m.name, "fault: link down")
		return ipCmd("-n", l.ns("br"), "link", "set", m.name, "down")
	}
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
