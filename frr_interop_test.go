package main

// Interop with FRR's vrrpd (Debian's frr 8.4): FRR's zebra and vrrpd run
// in one namespace of a test LAN, vipd in another, and each must elect,
// stay backup, take over and yield as RFC 5798 section 6.4 (VRRPv3, IPv4
// and IPv6 in one virtual router) and RFC 3768 (VRRPv2) say.
//
// FRR does VRRP its own way (doc/user/vrrp.rst): the VIPs live on macvlan
// interfaces carrying the virtual MAC (vrrp4-VRID: 00:00:5e:00:01:VRID,
// vrrp6-VRID: 00:00:5e:00:02:VRID, mode bridge, addrgenmode random) that
// the administrator creates, and a backup keeps its addresses but puts the
// macvlan into protodown. So on FRR's side the tests read the state from
// `show vrrp json` and the protodown flag of the macvlans, never from the
// presence of the VIP.
//
// Every FRR daemon runs with its pid file, vty socket and zserv socket in
// the test's temporary directory (nothing under /etc/frr or /run/frr), so
// tests never collide with each other or with a system FRR. (FRR also
// makes /var/tmp/frr/DAEMON.PID, which it removes when it exits on
// SIGTERM; the cleanup removes it after a SIGKILL.)
//
// What FRR 8.4 sends, as `vipd inspect` judges it (logged by the test):
// VRRPv3 IPv4 and IPv6 with the pseudo-header checksum of RFC 5798
// section 5.2.8, VRRPv2 with the checksum over the message alone, all
// with verdict ok; source MAC the virtual MAC, IPv4 source eth0's
// primary address, IPv6 source the macvlan's link-local.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// frrTag names the namespaces of these tests: vipd-frr-<pid>-*.
const frrTag = "frr"

// frrDir is where Debian installs FRR's daemons.
const frrDir = "/usr/lib/frr"

// needFRR skips t unless it runs as root with FRR's zebra, vrrpd and vtysh
// installed, and returns the vipd binary.
func needFRR(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs FRR")
	}
	for _, p := range []string{filepath.Join(frrDir, "zebra"), filepath.Join(frrDir, "vrrpd")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs FRR's %s (apt-get install frr): %v", p, err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		t.Skip("needs FRR's vtysh (apt-get install frr)")
	}
	if _, err := user.Lookup("frr"); err != nil {
		t.Skip("needs the frr user the frr package creates")
	}
	return needE2E(t)
}

// frrDaemon is one FRR daemon process running in a namespace.
type frrDaemon struct {
	Name string
	Log  string // its stdout and stderr (--log stdout)
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Running reports whether the daemon has not exited yet.
func (d *frrDaemon) Running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// frrRouter is FRR (zebra + vrrpd) in a namespace, with its files in Dir.
type frrRouter struct {
	t     *testing.T
	NS    *testNS
	Dir   string
	Conf  string // frr.conf given to vrrpd with -f
	zebra *frrDaemon
	vrrpd *frrDaemon
	runs  int // vrrpd starts, for log file names
}

// newFRRRouter prepares FRR's directory in ns. FRR drops privileges to
// the frr user, which must be able to write its pid files and sockets
// there: the directory is handed to frr, and its parent (made by
// t.TempDir, mode 0700) opened for traversal.
func newFRRRouter(t *testing.T, ns *testNS) *frrRouter {
	t.Helper()
	u, err := user.Lookup("frr")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return &frrRouter{t: t, NS: ns, Dir: dir}
}

// macvlan creates the interface FRR's vrrpd needs for one family of a
// virtual router on eth0, as FRR's documentation does with iproute2:
// named vrrp4-VRID or vrrp6-VRID, the VRRP virtual MAC (RFC 5798 section
// 7.3), bridge mode so that adverts arriving on eth0 still reach vrrpd
// while the macvlan is in protodown, a random link-local address (IPv6
// adverts come from it and must differ between routers), and the VIP.
// (addrgenmode is set after creation: the kernel here refuses it in the
// creating request.)
func (r *frrRouter) macvlan(family, vrid int, vip string) string {
	r.t.Helper()
	name := fmt.Sprintf("vrrp%d-%d", family, vrid)
	mac := fmt.Sprintf("00:00:5e:00:%02x:%02x", map[int]int{4: 1, 6: 2}[family], vrid)
	r.NS.IP("link", "add", name, "link", "eth0", "type", "macvlan", "mode", "bridge")
	r.NS.IP("link", "set", name, "addrgenmode", "random")
	r.NS.IP("link", "set", name, "address", mac)
	r.NS.IP("link", "set", name, "up")
	r.NS.IP("addr", "add", vip, "dev", name)
	return name
}

// Start writes conf as frr.conf and starts zebra, then vrrpd.
func (r *frrRouter) Start(conf string) {
	r.t.Helper()
	r.Conf = filepath.Join(r.Dir, "frr.conf")
	if err := os.WriteFile(r.Conf, []byte(conf), 0o644); err != nil {
		r.t.Fatal(err)
	}
	// Empty configurations for zebra and for vtysh (which would
	// otherwise read /etc/frr/vtysh.conf).
	zconf := filepath.Join(r.Dir, "zebra.conf")
	for _, f := range []string{zconf, filepath.Join(r.Dir, "vtysh.conf")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.zebra = r.startDaemon("zebra", "zebra.log", "-f", zconf)
	// vrrpd's zclient retries a refused connection only after 10 s
	// (FRR's lib/zclient.c), so wait for zebra to listen first.
	zserv := filepath.Join(r.Dir, "zserv.api")
	deadline := time.Now().Add(e2eWait)
	for {
		c, err := net.Dial("unix", zserv)
		if err == nil {
			c.Close()
			break
		}
		if !r.zebra.Running() || time.Now().After(deadline) {
			r.t.Fatalf("zebra does not listen on %s: %v", zserv, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.StartVrrpd()
}

// StartVrrpd (re)starts vrrpd with frr.conf; zebra keeps running.
func (r *frrRouter) StartVrrpd() {
	r.t.Helper()
	r.runs++
	r.vrrpd = r.startDaemon("vrrpd", fmt.Sprintf("vrrpd.%d.log", r.runs), "-f", r.Conf)
}

// startDaemon runs one FRR daemon in the foreground in r's namespace, with
// every path it would take from /etc/frr or /run/frr given explicitly.
func (r *frrRouter) startDaemon(name, logName string, args ...string) *frrDaemon {
	t := r.t
	t.Helper()
	d := &frrDaemon{Name: name, Log: filepath.Join(r.Dir, logName), done: make(chan struct{})}
	logf, err := os.Create(d.Log)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{"netns", "exec", r.NS.Name, filepath.Join(frrDir, name),
		"--vty_socket", r.Dir, // name.vty
		"-i", filepath.Join(r.Dir, name+".pid"),
		"-z", filepath.Join(r.Dir, "zserv.api"),
		"-P", "0", // no TCP vty
		"--log", "stdout"}, args...)
	d.cmd = exec.Command("ip", argv...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	t.Cleanup(func() {
		r.stop(d)
		if t.Failed() {
			r.dump(d)
		}
	})
	return d
}

// stop ends a daemon with SIGTERM (FRR then removes its own pid file,
// sockets and /var/tmp/frr/NAME.PID), with SIGKILL if it hangs, and
// removes what a killed daemon leaves under /var/tmp/frr.
func (r *frrRouter) stop(d *frrDaemon) {
	if !d.Running() {
		return
	}
	pid := d.cmd.Process.Pid
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	<-d.done
	os.RemoveAll(fmt.Sprintf("/var/tmp/frr/%s.%d", d.Name, pid))
}

// StopVrrpd stops vrrpd with SIGTERM and waits for it to exit: a master
// sends an advert with priority 0 first (FRR's vrrp_shutdown, RFC 5798
// section 6.4.3).
func (r *frrRouter) StopVrrpd() {
	r.t.Helper()
	r.vrrpd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.vrrpd.done:
	case <-time.After(e2eWait):
		r.t.Fatalf("vrrpd did not exit within %v of SIGTERM", e2eWait)
	}
	if r.vrrpd.err != nil {
		r.t.Errorf("vrrpd exited with %v", r.vrrpd.err)
	}
}

func (r *frrRouter) dump(d *frrDaemon) {
	b, _ := os.ReadFile(d.Log)
	r.t.Logf("--- log of FRR %s (%s):\n%s", d.Name, r.NS.Name, b)
}

// WaitLog waits until the running vrrpd's log has a line matching pred
// (the configuration turns on `debug vrrp protocol`).
func (r *frrRouter) WaitLog(what string, pred func(string) bool) string {
	r.t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		b, _ := os.ReadFile(r.vrrpd.Log)
		for _, line := range strings.Split(string(b), "\n") {
			if pred(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("FRR vrrpd logged no %s within %v", what, e2eWait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// frrFamily is one address family of a virtual router in `show vrrp
// json` (FRR's vrrp_vty.c).
type frrFamily struct {
	Interface string `json:"interface"`
	VMAC      string `json:"vmac"`
	Primary   string `json:"primaryAddress"`
	Status    string `json:"status"` // Initialize, Backup, Master
	Priority  int    `json:"effectivePriority"`
	Stats     struct {
		AdverTx     int `json:"adverTx"`
		AdverRx     int `json:"adverRx"`
		Transitions int `json:"transitions"`
	} `json:"stats"`
}

// frrVRRP is one virtual router in `show vrrp json`.
type frrVRRP struct {
	VRID    int       `json:"vrid"`
	Version int       `json:"version"`
	V4      frrFamily `json:"v4"`
	V6      frrFamily `json:"v6"`
}

// Family returns the family (4 or 6) of v.
func (v frrVRRP) Family(f int) frrFamily {
	if f == 6 {
		return v.V6
	}
	return v.V4
}

// Show asks vrrpd (through vtysh on its vty socket only) for its virtual
// router vrid; ok is false while vrrpd is not answering yet.
func (r *frrRouter) Show(vrid int) (v frrVRRP, ok bool) {
	r.t.Helper()
	out, err := exec.Command("vtysh", "--vty_socket", r.Dir, "--config_dir", r.Dir, "-d", "vrrpd",
		"-c", fmt.Sprintf("show vrrp %d json", vrid)).Output()
	if err != nil {
		return v, false
	}
	var list []frrVRRP
	if err := json.Unmarshal(out, &list); err != nil {
		r.t.Fatalf("show vrrp json: %v:\n%s", err, out)
	}
	for _, x := range list {
		if x.VRID == vrid {
			return x, true
		}
	}
	return v, false
}

// WaitStatus waits until every family in fams of virtual router vrid is
// in status (Backup, Master), as FRR reports it, and returns the router.
func (r *frrRouter) WaitStatus(vrid int, fams []int, status string) frrVRRP {
	r.t.Helper()
	return r.WaitFor(vrid, "status "+status, func(v frrVRRP) bool {
		for _, f := range fams {
			if v.Family(f).Status != status {
				return false
			}
		}
		return true
	})
}

// WaitFor polls `show vrrp` until cond holds (a liveness limit of e2eWait).
func (r *frrRouter) WaitFor(vrid int, what string, cond func(frrVRRP) bool) frrVRRP {
	r.t.Helper()
	deadline := time.Now().Add(e2eWait)
	for {
		v, ok := r.Show(vrid)
		if ok && cond(v) {
			return v
		}
		if !r.vrrpd.Running() {
			r.t.Fatalf("FRR vrrpd exited (%v) while waiting for %s", r.vrrpd.err, what)
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("FRR VRID %d: no %s within %v: %+v", vrid, what, e2eWait, v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ProtoDown reports whether vrrpd has put the macvlan dev into protodown,
// which is how an FRR backup gives up its addresses.
func (r *frrRouter) ProtoDown(dev string) bool {
	r.t.Helper()
	var links []struct {
		ProtoDown bool `json:"proto_down"`
	}
	out := r.NS.IP("-j", "-d", "link", "show", "dev", dev)
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		r.t.Fatalf("ip -j link show %s: %v: %s", dev, err, out)
	}
	return links[0].ProtoDown
}

// frrMode is one way of running VRRP with FRR.
type frrMode struct {
	name     string
	version  int
	vrid     int
	v6       bool   // an IPv6 virtual router too, with the same VRID
	interval string // keepalived advert_int
	frrIntMS int    // FRR advertisement-interval (ms)
	quiet    time.Duration
	vmac     bool // vipd with use_vmac, as FRR always is
}

var frrModes = []frrMode{
	// VRRPv3: FRR runs IPv4 and IPv6 in one virtual router; vipd has one
	// instance per family with the same VRID. 0.5 s adverts, not 0.1 s:
	// on a loaded machine (2 cores, fuzzers next door) both daemons have
	// been seen stalled for 0.7 s, longer than a 0.36 s
	// Master_Down_Interval, which made the steady-state checks flap.
	{name: "v3", version: 3, vrid: 5, v6: true, interval: "0.5", frrIntMS: 500, quiet: 2 * time.Second},
	// The same with vipd on use_vmac macvlans: both routers then send
	// from the virtual MAC, and clients see one MAC whoever is master.
	{name: "v3-vmac", version: 3, vrid: 7, v6: true, interval: "0.5", frrIntMS: 500, quiet: 2 * time.Second, vmac: true},
	// VRRPv2 (IPv4 only, no authentication in FRR). FRR drops a v2
	// advert whose interval differs from its own, as RFC 3768 section
	// 7.1 says.
	{name: "v2", version: 2, vrid: 42, interval: "1", frrIntMS: 1000, quiet: 4 * time.Second},
}

// fams is the address families of m.
func (m frrMode) fams() []int {
	if m.v6 {
		return []int{4, 6}
	}
	return []int{4}
}

// frrLAN is a LAN with FRR on host 0 (10.N.0.1, fd00:N::1), vipd on
// host 1 (10.N.0.2, fd00:N::2) and, with use_vmac, a client on host 2.
type frrLAN struct {
	L        *testLAN
	FRR      *frrRouter
	VIP      map[int]string // per family, without prefix length
	macvlans map[int]string
}

func newFRRLAN(t *testing.T, m frrMode) *frrLAN {
	t.Helper()
	hosts := 2
	if m.vmac {
		hosts = 3
	}
	l := newTestLANPrefix(t, frrTag, hosts)
	x := &frrLAN{L: l, FRR: newFRRRouter(t, l.Hosts[0]), VIP: map[int]string{}, macvlans: map[int]string{}}
	// FRR's documentation stops at the macvlans, but with Linux's
	// default arp_ignore=0 the router's eth0 answers ARP for the VIP (an
	// address of the host, on the macvlan) with its own MAC, even as a
	// backup with the macvlan in protodown or with vrrpd stopped: clients
	// would send to FRR's box whoever is master. arp_ignore=1 answers only
	// for eth0's own addresses (as keepalived and vipd set on a use_vmac
	// parent); arp_announce=2 keeps the VIP out of eth0's own requests.
	x.FRR.NS.sysctl("net.ipv4.conf.eth0.arp_ignore=1", "net.ipv4.conf.eth0.arp_announce=2")
	x.VIP[4] = lanVIP(l)
	x.macvlans[4] = x.FRR.macvlan(4, m.vrid, x.VIP[4]+"/24")
	if m.v6 {
		x.VIP[6] = fmt.Sprintf("fd00:%d::100", l.Net)
		x.macvlans[6] = x.FRR.macvlan(6, m.vrid, x.VIP[6]+"/64")
	}
	return x
}

// frrConf is FRR's configuration for mode m at priority prio.
func (x *frrLAN) frrConf(m frrMode, prio int) string {
	var b strings.Builder
	b.WriteString("debug vrrp protocol\n")
	fmt.Fprintf(&b, "interface eth0\n vrrp %d version %d\n vrrp %d priority %d\n vrrp %d advertisement-interval %d\n",
		m.vrid, m.version, m.vrid, prio, m.vrid, m.frrIntMS)
	fmt.Fprintf(&b, " vrrp %d ip %s\n", m.vrid, x.VIP[4])
	if m.v6 {
		fmt.Fprintf(&b, " vrrp %d ipv6 %s\n", m.vrid, x.VIP[6])
	}
	return b.String()
}

// vipdConf is vipd's keepalived.conf for mode m at priority prio: VI_4
// (and VI_6) on eth0.
func (x *frrLAN) vipdConf(m frrMode, prio int) string {
	insts := []vrrpInst{{Name: "VI_4", VRID: m.vrid, Priority: prio, Version: m.version, Interval: m.interval,
		VIPs: []string{x.VIP[4] + "/24 dev eth0"}}}
	if m.v6 {
		insts = append(insts, vrrpInst{Name: "VI_6", VRID: m.vrid, Priority: prio, Version: m.version, Interval: m.interval,
			VIPs: []string{x.VIP[6] + "/64 dev eth0"}})
	}
	if m.vmac {
		for i := range insts {
			// One macvlan per family: their virtual MACs differ.
			insts[i].Extra = append(insts[i].Extra, fmt.Sprintf("use_vmac vrrp%s.%d", insts[i].Name[3:], m.vrid))
		}
	}
	return keepalivedConf("vipd", nil, insts...)
}

// frrInst is vipd's instance for family f.
func frrInst(f int) string { return fmt.Sprintf("VI_%d", f) }

// frrWaitInst waits for instance inst of p to log a line matching pred after
// line from.
func frrWaitInst(p *daemonProc, from int, inst, what string, pred func(daemonLog) bool) daemonLog {
	p.t.Helper()
	l, _ := p.waitFrom(from, inst+" "+what, func(l daemonLog) bool { return l.Instance == inst && pred(l) })
	return l
}

// assertRoles checks that the vipd host holds the VIPs (vipdMaster) or none
// of them, and that FRR's macvlans are in protodown exactly when vipd is master.
func (x *frrLAN) assertRoles(t *testing.T, m frrMode, vipdMaster bool) {
	t.Helper()
	for _, f := range m.fams() {
		if got := hasAddr(x.L.Hosts[1], x.VIP[f]); got != vipdMaster {
			t.Errorf("vipd holds VIP %s: %v, want %v", x.VIP[f], got, vipdMaster)
		}
		if got := x.FRR.ProtoDown(x.macvlans[f]); got != vipdMaster {
			t.Errorf("FRR's %s protodown %v, want %v (FRR backup)", x.macvlans[f], got, vipdMaster)
		}
	}
}

// assertClientSeesVMAC checks, with m.vmac, that a client resolving the
// VIPs afresh gets the virtual MAC 00:00:5e:00:0F:VRID (RFC 5798 section
// 7.3) from whichever router is master, and (for vipd) that the VIP is on
// its use_vmac macvlan.
func (x *frrLAN) assertClientSeesVMAC(t *testing.T, m frrMode, vipdMaster bool) {
	t.Helper()
	if !m.vmac {
		return
	}
	client := x.L.Hosts[2]
	client.IP("neigh", "flush", "dev", "eth0")
	for _, f := range m.fams() {
		if vipdMaster {
			dev := fmt.Sprintf("vrrp%d.%d", f, m.vrid)
			if out, _ := x.L.Hosts[1].TryIP("-o", "addr", "show", "dev", dev); !strings.Contains(out, " "+x.VIP[f]+"/") {
				t.Errorf("vipd's VIP %s is not on its use_vmac interface %s:\n%s", x.VIP[f], dev, x.L.Hosts[1].IP("-o", "addr"))
			}
		}
		if out, err := client.Exec("ping", fmt.Sprintf("-%d", f), "-c1", "-W2", x.VIP[f]); err != nil {
			t.Errorf("client cannot reach %s: %v: %s", x.VIP[f], err, out)
			continue
		}
		vmac := fmt.Sprintf("00:00:5e:00:%02x:%02x", map[int]int{4: 1, 6: 2}[f], m.vrid)
		if n := client.IP("neigh", "show", x.VIP[f]); !strings.Contains(n, vmac) {
			t.Errorf("client's neighbour entry for %s is %q, want %s (vipd master: %v; FRR's eth0 is %s, vipd's %s)",
				x.VIP[f], strings.TrimSpace(n), vmac, vipdMaster, x.L.Hosts[0].Interface("eth0").HardwareAddr, x.L.Hosts[1].Interface("eth0").HardwareAddr)
		}
	}
}

// waitProtoDown waits until FRR's macvlans are (down) or are not in
// protodown: zebra applies vrrpd's request asynchronously.
func (x *frrLAN) waitProtoDown(t *testing.T, m frrMode, down bool) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for _, f := range m.fams() {
		for x.FRR.ProtoDown(x.macvlans[f]) != down {
			if time.Now().After(deadline) {
				t.Fatalf("FRR's %s protodown is not %v after %v", x.macvlans[f], down, e2eWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestInteropFRR runs vipd against FRR's vrrpd in both roles: FRR master
// with vipd backup (vipd stays backup, takes over when FRR stops with
// priority 0 and when FRR's link goes down, yields when FRR comes back),
// and vipd master with FRR backup (FRR stays backup, takes over when vipd
// stops with priority 0, yields when vipd comes back).
func TestInteropFRR(t *testing.T) {
	needFRR(t)
	for _, m := range frrModes {
		long := func(t *testing.T) {
			if testing.Short() && m.version == 2 {
				t.Skip("VRRPv2 at 1 s adverts takes 15 s: skipped with -short")
			}
		}
		t.Run(m.name+"/frr-master", func(t *testing.T) {
			long(t)
			t.Parallel()
			interopFRRMaster(t, m)
		})
		t.Run(m.name+"/vipd-master", func(t *testing.T) {
			long(t)
			t.Parallel()
			interopFRRBackup(t, m)
		})
	}
	t.Run("v3/equal-priority", func(t *testing.T) {
		t.Parallel()
		// 1 s adverts: right after the partition heals both sides
		// re-assert, and a loaded machine stalled both daemons for
		// 1.4 s, which at 0.5 s made the loser's Master_Down_Timer
		// (1.8 s) fire now and then.
		m := frrModes[0]
		m.interval, m.frrIntMS, m.quiet = "1", 1000, 4*time.Second
		interopFRREqual(t, m)
	})
}

// interopFRREqual: FRR and vipd at priority 100, each master alone behind
// a partition; when the partition heals, the master with the greater
// primary address stays master and the other becomes backup (RFC 5798
// section 6.4.3). For IPv4 that is vipd (10.N.0.2 against 10.N.0.1); for
// IPv6 it depends on the link-local addresses (FRR's macvlan has a random
// one), compared as RFC 5798 section 6.4.3 does, as unsigned integers.
func interopFRREqual(t *testing.T, m frrMode) {
	step := frrSteps(t)
	x := newFRRLAN(t, m)
	fams := m.fams()
	// Partition without losing carrier (a link down would put both into
	// FAULT/Initialize): isolated bridge ports do not forward to each
	// other.
	isolate := func(on string) {
		t.Helper()
		for _, port := range []string{"p1", "p2"} {
			if out, err := x.L.Bridge.Exec("bridge", "link", "set", "dev", port, "isolated", on); err != nil {
				t.Fatalf("bridge link set %s isolated %s: %v: %s", port, on, err, out)
			}
		}
	}
	isolate("on")
	x.FRR.Start(x.frrConf(m, 100))
	vd := startVipd(t, x.L.Hosts[1], "vipd", x.vipdConf(m, 100))
	x.FRR.WaitStatus(m.vrid, fams, "Master")
	for _, f := range fams {
		frrWaitInst(vd, 0, frrInst(f), "entering MASTER", entering("MASTER"))
	}
	// FRR binds its IPv6 socket to the macvlan's link-local once it has
	// one: wait for the address its adverts come from.
	frrSide := x.FRR.WaitFor(m.vrid, "primary addresses", func(v frrVRRP) bool {
		return !m.v6 || (v.V6.Primary != "" && v.V6.Primary != "::")
	})
	step("both masters behind the partition")

	vipdWins := map[int]bool{4: true}
	if m.v6 {
		ours := x.L.LinkLocal(t, 1)
		theirs, err := netip.ParseAddr(frrSide.V6.Primary)
		if err != nil {
			t.Fatalf("FRR's IPv6 primary address %q: %v", frrSide.V6.Primary, err)
		}
		vipdWins[6] = ours.Compare(theirs) > 0
		t.Logf("IPv6: vipd %s, FRR %s: vipd wins: %v", ours, theirs, vipdWins[6])
	}

	mark := vd.Mark()
	isolate("off")
	for _, f := range fams {
		want := "Backup"
		if !vipdWins[f] {
			want = "Master"
		}
		x.FRR.WaitFor(m.vrid, fmt.Sprintf("IPv%d %s", f, want), func(v frrVRRP) bool { return v.Family(f).Status == want })
		if !vipdWins[f] {
			frrWaitInst(vd, mark, frrInst(f), "entering BACKUP", entering("BACKUP"))
			waitAddr(t, x.L.Hosts[1], x.VIP[f], false)
		}
	}
	step("partition healed")
	settle(vd)
	mark = vd.Mark()
	before, _ := x.FRR.Show(m.vrid)
	time.Sleep(m.quiet)
	after, _ := x.FRR.Show(m.vrid)
	for _, f := range fams {
		if a, b := after.Family(f).Stats.Transitions, before.Family(f).Stats.Transitions; a != b {
			t.Errorf("FRR IPv%d changed state %d times after the election", f, a-b)
		}
		if n := vd.countFrom(mark, func(l daemonLog) bool { return l.Instance == frrInst(f) && entering("")(l) }); n != 0 {
			t.Errorf("vipd %s changed state %d times after the election", frrInst(f), n)
		}
		st := after.Family(f).Status
		if vipdWins[f] && (st != "Backup" || !hasAddr(x.L.Hosts[1], x.VIP[f]) || !x.FRR.ProtoDown(x.macvlans[f])) {
			t.Errorf("IPv%d: want vipd master with %s, FRR backup in protodown; FRR is %s", f, x.VIP[f], st)
		}
		if !vipdWins[f] && (st != "Master" || hasAddr(x.L.Hosts[1], x.VIP[f]) || x.FRR.ProtoDown(x.macvlans[f])) {
			t.Errorf("IPv%d: want FRR master, vipd backup without %s; FRR is %s", f, x.VIP[f], st)
		}
	}
	step("steady state checked")
}

// interopFRRMaster: FRR at 150, vipd at 100.
func interopFRRMaster(t *testing.T, m frrMode) {
	step := frrSteps(t)
	x := newFRRLAN(t, m)
	fams := m.fams()
	x.FRR.Start(x.frrConf(m, 150))
	x.FRR.WaitStatus(m.vrid, fams, "Master")
	x.waitProtoDown(t, m, false)
	step("FRR master")

	// What FRR sends, as vipd's receive ladder judges it.
	capture := frrCaptureVRRP(t, x.L.Hosts[1], "eth0", 3*len(fams))
	vd := startVipd(t, x.L.Hosts[1], "vipd", x.vipdConf(m, 100))
	for _, f := range fams {
		frrWaitInst(vd, 0, frrInst(f), "entering BACKUP", entering("BACKUP"))
	}
	step("vipd backup")
	settle(vd)
	mark := vd.Mark()
	before, _ := x.FRR.Show(m.vrid)
	time.Sleep(m.quiet)
	if n := vd.countFrom(mark, contains("Entering")); n != 0 {
		t.Errorf("vipd changed state %d times under an FRR master", n)
	}
	after := x.FRR.WaitStatus(m.vrid, fams, "Master")
	for _, f := range fams {
		if a, b := after.Family(f).Stats.Transitions, before.Family(f).Stats.Transitions; a != b {
			t.Errorf("FRR IPv%d changed state %d times with vipd as backup", f, a-b)
		}
	}
	x.assertRoles(t, m, false)
	x.assertClientSeesVMAC(t, m, false)
	inspectFRRCapture(t, capture(), m)
	step("steady state checked")

	// FRR stops: its priority 0 advert makes vipd take over at once
	// (RFC 5798 section 6.4.2: Master_Down_Timer = Skew_Time).
	mark = vd.Mark()
	x.FRR.StopVrrpd()
	for _, f := range fams {
		frrWaitInst(vd, mark, frrInst(f), "hearing priority 0", contains("Backup received priority 0 advertisement"))
		frrWaitInst(vd, mark, frrInst(f), "entering MASTER", entering("MASTER"))
		waitAddr(t, x.L.Hosts[1], x.VIP[f], true)
	}
	// zebra puts the macvlans of a vrrpd that went away into protodown.
	x.waitProtoDown(t, m, true)
	x.assertClientSeesVMAC(t, m, true)
	step("vipd master after FRR's priority 0")

	// FRR comes back and preempts vipd (section 6.4.3).
	mark = vd.Mark()
	x.FRR.StartVrrpd()
	x.FRR.WaitStatus(m.vrid, fams, "Master")
	for _, f := range fams {
		frrWaitInst(vd, mark, frrInst(f), "yielding to priority 150", contains("with higher priority 150, ours 100"))
		frrWaitInst(vd, mark, frrInst(f), "entering BACKUP", entering("BACKUP"))
		waitAddr(t, x.L.Hosts[1], x.VIP[f], false)
	}
	x.waitProtoDown(t, m, false)
	step("FRR master again")

	// FRR's link goes down: silence, vipd takes over when its
	// Master_Down_Timer fires (section 6.4.2).
	mark = vd.Mark()
	x.L.Hosts[0].IP("link", "set", "eth0", "down")
	for _, f := range fams {
		if l := frrWaitInst(vd, mark, frrInst(f), "entering MASTER", entering("MASTER")); l.Reason != "master down" {
			t.Errorf("%s took over because of %q, want master down", frrInst(f), l.Reason)
		}
		waitAddr(t, x.L.Hosts[1], x.VIP[f], true)
	}
	step("vipd master after FRR's link down")
}

// interopFRRBackup: vipd at 150, FRR at 100.
func interopFRRBackup(t *testing.T, m frrMode) {
	step := frrSteps(t)
	x := newFRRLAN(t, m)
	fams := m.fams()
	vd := startVipd(t, x.L.Hosts[1], "vipd", x.vipdConf(m, 150))
	for _, f := range fams {
		frrWaitInst(vd, 0, frrInst(f), "entering MASTER", entering("MASTER"))
		waitAddr(t, x.L.Hosts[1], x.VIP[f], true)
	}
	step("vipd master")
	x.FRR.Start(x.frrConf(m, 100))
	// FRR starts in Backup (its vrrp_startup) and must stay there on
	// hearing vipd: it has received adverts and is still Backup.
	x.FRR.WaitFor(m.vrid, "adverts received in Backup", func(v frrVRRP) bool {
		for _, f := range fams {
			if v.Family(f).Status != "Backup" || v.Family(f).Stats.AdverRx < 3 {
				return false
			}
		}
		return true
	})
	x.waitProtoDown(t, m, true)
	step("FRR backup")
	settle(vd)
	mark := vd.Mark()
	before, _ := x.FRR.Show(m.vrid)
	time.Sleep(m.quiet)
	after := x.FRR.WaitStatus(m.vrid, fams, "Backup")
	for _, f := range fams {
		a, b := after.Family(f), before.Family(f)
		if a.Stats.Transitions != b.Stats.Transitions {
			t.Errorf("FRR IPv%d changed state %d times under a vipd master", f, a.Stats.Transitions-b.Stats.Transitions)
		}
		if a.Stats.AdverRx <= b.Stats.AdverRx {
			t.Errorf("FRR IPv%d received no adverts from vipd in %v (%d -> %d)", f, m.quiet, b.Stats.AdverRx, a.Stats.AdverRx)
		}
	}
	if n := vd.countFrom(mark, contains("Entering")); n != 0 {
		t.Errorf("vipd changed state %d times with FRR as backup", n)
	}
	x.assertRoles(t, m, true)
	x.assertClientSeesVMAC(t, m, true)
	step("steady state checked")

	// vipd stops: priority 0, FRR takes over.
	stopped := time.Now()
	vd.Signal(syscall.SIGTERM)
	if err := vd.Wait(); err != nil {
		t.Errorf("vipd exited with %v", err)
	}
	x.FRR.WaitStatus(m.vrid, fams, "Master")
	for _, f := range fams {
		x.FRR.WaitLog(fmt.Sprintf("IPv%d priority 0 advert received", f), func(line string) bool {
			return strings.Contains(line, fmt.Sprintf("[IPv%d] Received VRRP Advertisement", f)) &&
				strings.Contains(line, "priority 0,")
		})
	}
	t.Logf("FRR master %v after vipd's SIGTERM (FRR's Skew_Time %v, Master_Down_Interval %v)",
		time.Since(stopped).Round(time.Millisecond), frrSkew(m, 100), frrDown(m, 100))
	x.waitProtoDown(t, m, false)
	for _, f := range fams {
		if hasAddr(x.L.Hosts[1], x.VIP[f]) {
			t.Errorf("the stopped vipd still holds %s", x.VIP[f])
		}
	}
	x.assertClientSeesVMAC(t, m, false)
	step("FRR master after vipd's priority 0")

	// vipd comes back and preempts FRR.
	mark = vd.Mark()
	vd.start()
	for _, f := range fams {
		frrWaitInst(vd, mark, frrInst(f), "entering MASTER", entering("MASTER"))
		waitAddr(t, x.L.Hosts[1], x.VIP[f], true)
	}
	x.FRR.WaitStatus(m.vrid, fams, "Backup")
	x.waitProtoDown(t, m, true)
	step("vipd master again, FRR backup")
}

// frrSteps returns a function logging how far into the test each step
// is done: figures for the log, never asserted.
func frrSteps(t *testing.T) func(string) {
	start := time.Now()
	return func(what string) {
		t.Helper()
		t.Logf("%7s %s", time.Since(start).Round(time.Millisecond), what)
	}
}

// frrSkew and frrDown are RFC 5798 section 6.1's Skew_Time and
// Master_Down_Interval of a backup at prio in mode m, for the log.
func frrSkew(m frrMode, prio int) time.Duration {
	return time.Duration(256-prio) * time.Duration(m.frrIntMS) * time.Millisecond / 256
}

func frrDown(m frrMode, prio int) time.Duration {
	return 3*time.Duration(m.frrIntMS)*time.Millisecond + frrSkew(m, prio)
}

// frrCaptureVRRP starts tcpdump in ns on dev for n VRRP frames (IPv4 and
// IPv6) and returns a function that waits for it and returns the pcap.
func frrCaptureVRRP(t *testing.T, ns *testNS, dev string, n int) func() string {
	t.Helper()
	if _, err := exec.LookPath("tcpdump"); err != nil {
		t.Skip("needs tcpdump")
	}
	path := filepath.Join(t.TempDir(), "frr.pcap")
	cmd := exec.Command("ip", "netns", "exec", ns.Name, "tcpdump", "-i", dev, "-U", "-n", "-c", strconv.Itoa(n),
		"-w", path, "ip proto 112 or ip6 proto 112")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})
	return func() string {
		t.Helper()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("tcpdump: %v: %s", err, out.String())
			}
		case <-time.After(e2eWait):
			t.Fatalf("tcpdump saw fewer than %d VRRP frames in %v", n, e2eWait)
		}
		return path
	}
}

// inspectFRRCapture runs `vipd inspect --json` on a capture of FRR's
// adverts: every one must get the verdict ok, with a good checksum. The
// checksum form FRR uses (RFC 5798 section 5.2.8: VRRPv3 includes the
// IPv4 pseudo-header) and its source MAC are logged.
func inspectFRRCapture(t *testing.T, pcap string, m frrMode) {
	t.Helper()
	out, err := exec.Command(vipdBinary(t), "inspect", "--json", pcap).CombinedOutput()
	if err != nil {
		t.Fatalf("vipd inspect: %v: %s", err, out)
	}
	seen := map[int]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var rec inspectRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("vipd inspect output: %v: %s", err, sc.Text())
		}
		f := 4
		if strings.Contains(rec.Src, ":") {
			f = 6
		}
		seen[f] = true
		form := "-"
		if rec.ChecksumForm != nil {
			form = *rec.ChecksumForm
		}
		t.Logf("FRR advert: IPv%d v%d vrid %d prio %d from %s (%s) ttl %d, checksum %s ok=%v form %s: verdict %s",
			f, rec.Version, rec.VRID, rec.Priority, rec.Src, rec.SrcMAC, rec.TTL, rec.Checksum, rec.ChecksumOK, form, rec.Verdict)
		if rec.Verdict != "ok" || !rec.ChecksumOK {
			t.Errorf("vipd inspect: FRR's advert frame %d: verdict %q, checksum ok %v", rec.Frame, rec.Verdict, rec.ChecksumOK)
		}
		if int(rec.Version) != m.version || int(rec.VRID) != m.vrid {
			t.Errorf("vipd inspect: FRR's advert frame %d is v%d VRID %d, want v%d VRID %d", rec.Frame, rec.Version, rec.VRID, m.version, m.vrid)
		}
	}
	for _, f := range m.fams() {
		if !seen[f] {
			t.Errorf("no IPv%d advert from FRR in the capture:\n%s", f, out)
		}
	}
}
