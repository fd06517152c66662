package main

// Interop with the real keepalived (Debian's 2.2.7): vipd and keepalived
// run side by side on one LAN of network namespaces, in both roles, for
// VRRPv2, VRRPv2 with simple password authentication, VRRPv3 and unicast
// peers. vipd must elect, stay backup, take over and yield exactly as a
// keepalived peer would (RFC 3768 / RFC 5798 section 6.4).

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// needKeepalived skips t unless keepalived is installed.
func needKeepalived(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("needs keepalived (apt-get install keepalived)")
	}
}

// startKeepalived writes conf and runs `keepalived -n -l -D --vrrp` in ns
// with its pid files in a temporary directory.
func startKeepalived(t testing.TB, ns *testNS, name, conf string) *daemonProc {
	t.Helper()
	p := &daemonProc{t: t, Name: name, NS: ns, ka: true}
	p.Conf = filepath.Join(t.TempDir(), name+".conf")
	if err := os.WriteFile(p.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start()
	return p
}

// interopMode is one way of running VRRP that both daemons must agree on.
type interopMode struct {
	name     string
	version  int
	interval string
	auth     bool
	unicast  bool
}

var interopModes = []interopMode{
	{name: "v2", version: 2, interval: "1"},
	{name: "v2-auth", version: 2, interval: "1", auth: true},
	{name: "v3", version: 3, interval: "0.1"},
	{name: "unicast", version: 3, interval: "0.1", unicast: true},
}

// inst is host i's instance in mode m on LAN l at priority prio.
func (m interopMode) inst(l *testLAN, i, prio int) vrrpInst {
	in := vrrpInst{Priority: prio, Version: m.version, Interval: m.interval, VIPs: []string{lanVIP(l) + "/24 dev eth0"}}
	if m.auth {
		in.Extra = append(in.Extra, "authentication {", "    auth_type PASS", "    auth_pass interop", "}")
	}
	if m.unicast {
		in.Extra = append(in.Extra, "unicast_src_ip "+l.Addr4(i).Addr().String(), "unicast_peer {", "    "+l.Addr4(1-i).Addr().String(), "}")
	}
	return in
}

// TestInteropKeepalived runs every mode with keepalived as the higher
// priority router (vipd stays backup, takes over when keepalived crashes,
// yields when it comes back) and as the lower one (keepalived stays
// backup, takes over when vipd stops with priority 0, yields when vipd
// comes back).
func TestInteropKeepalived(t *testing.T) {
	needE2E(t)
	needKeepalived(t)
	for _, m := range interopModes {
		t.Run(m.name+"/keepalived-master", func(t *testing.T) {
			t.Parallel()
			interopKeepalivedMaster(t, m)
		})
		t.Run(m.name+"/vipd-master", func(t *testing.T) {
			t.Parallel()
			interopVipdMaster(t, m)
		})
	}
}

// interopKeepalivedMaster: keepalived at 150 on host 0, vipd at 100 on
// host 1.
func interopKeepalivedMaster(t *testing.T, m interopMode) {
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	ka := startKeepalived(t, l.Hosts[0], "keepalived", keepalivedConf("ka", nil, m.inst(l, 0, 150)))
	vd := startVipd(t, l.Hosts[1], "vipd", keepalivedConf("vipd", nil, m.inst(l, 1, 100)))

	// Elect: keepalived is master, vipd backup, and it stays so.
	ka.waitState(0, "MASTER")
	vd.waitState(0, "BACKUP")
	waitAddr(t, l.Hosts[0], vip, true)
	settle(ka, vd)
	mark := vd.Mark()
	time.Sleep(interopQuiet(m))
	if n := vd.countFrom(mark, contains("Entering")); n != 0 {
		t.Errorf("vipd changed state %d times under a keepalived master", n)
	}
	assertMasterBackup(t, ka, vd, vip)

	// Take over: keepalived crashes.
	mark = vd.Mark()
	ka.crash("eth0")
	if l, _ := vd.waitState(mark, "MASTER"); l.Reason != "master down" {
		t.Errorf("vipd took over because of %q, want master down", l.Reason)
	}
	waitAddr(t, l.Hosts[1], vip, true)

	// Yield: keepalived comes back and preempts.
	mark, kmark := vd.Mark(), ka.Mark()
	l.Hosts[0].IP("link", "set", "eth0", "up")
	ka.start()
	ka.waitState(kmark, "MASTER")
	vd.waitFrom(mark, "yielding to priority 150", contains("with higher priority 150, ours 100"))
	vd.waitState(mark, "BACKUP")
	waitAddr(t, l.Hosts[1], vip, false)
	waitAddr(t, l.Hosts[0], vip, true)
}

// interopVipdMaster: vipd at 150 on host 0, keepalived at 100 on host 1.
func interopVipdMaster(t *testing.T, m interopMode) {
	l := newTestLANPrefix(t, e2eTag, 2)
	vip := lanVIP(l)
	vd := startVipd(t, l.Hosts[0], "vipd", keepalivedConf("vipd", nil, m.inst(l, 0, 150)))
	ka := startKeepalived(t, l.Hosts[1], "keepalived", keepalivedConf("ka", nil, m.inst(l, 1, 100)))

	vd.waitState(0, "MASTER")
	ka.waitState(0, "BACKUP")
	waitAddr(t, l.Hosts[0], vip, true)
	settle(ka, vd)
	kmark := ka.Mark()
	time.Sleep(interopQuiet(m))
	if n := ka.countFrom(kmark, contains("Entering")); n != 0 {
		t.Errorf("keepalived changed state %d times under a vipd master", n)
	}
	assertMasterBackup(t, vd, ka, vip)

	// vipd stops: priority 0, keepalived takes over after Skew_Time.
	kmark = ka.Mark()
	vd.Signal(syscall.SIGTERM)
	if err := vd.Wait(); err != nil {
		t.Errorf("vipd exited with %v", err)
	}
	ka.waitFrom(kmark, "hearing priority 0", contains("priority 0"))
	ka.waitState(kmark, "MASTER")
	waitAddr(t, l.Hosts[1], vip, true)
	if hasAddr(l.Hosts[0], vip) {
		t.Error("the stopped vipd still holds the VIP")
	}

	// vipd comes back and preempts keepalived.
	mark := vd.Mark()
	kmark = ka.Mark()
	vd.start()
	vd.waitState(mark, "BACKUP")
	vd.waitState(mark, "MASTER")
	ka.waitState(kmark, "BACKUP")
	waitAddr(t, l.Hosts[1], vip, false)
	waitAddr(t, l.Hosts[0], vip, true)
}

// interopQuiet is how long a steady state is watched: a few
// Master_Down_Intervals.
func interopQuiet(m interopMode) time.Duration {
	if m.version == 2 {
		return 4 * time.Second
	}
	return time.Second
}
