package main

// Fault injection: real vipd daemons in namespaces under loss, jitter,
// partitions, freezes, crashes, link flaps and floods of bad adverts. Each
// test asserts its invariant on protocol outcomes (states, transition
// counts, addresses, the order of adverts on the wire), never on elapsed
// time. CI runs them briefly; VIPD_FAULT_LONG=1 runs minutes of loss and
// jitter (bench/fault-long.sh).

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// faultInstance is a vrrp_instance block for the fault LANs: VRID 51 on
// eth0, VIP 10.77.0.100/24, version 3 unless extra says otherwise.
func faultInstance(name string, vrid, prio int, advert string, extra string) string {
	return fmt.Sprintf(`vrrp_instance %s {
    state BACKUP
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
%s    virtual_ipaddress {
        %s/24 dev eth0
    }
}
`, name, vrid, prio, advert, extra, faultVIP)
}

func faultConf(instances ...string) string {
	return "global_defs {\n    vrrp_garp_master_delay 0\n}\n" + strings.Join(instances, "")
}

// faultPair starts the higher priority router hi (200) and the lower lo
// (100) on l's first two hosts with one v3 instance VI_1 and waits until
// hi is master.
func faultPair(t *testing.T, l *faultLAN, advert string, extra string) (hi, lo *faultProc) {
	t.Helper()
	hi = startFaultVipd(t, l.Hosts[0], "hi", faultConf(faultInstance("VI_1", 51, 200, advert, "    version 3\n"+extra)))
	lo = startFaultVipd(t, l.Hosts[1], "lo", faultConf(faultInstance("VI_1", 51, 100, advert, "    version 3\n"+extra)))
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	return hi, lo
}

// noisyLAN runs hi and lo at 100 ms adverts over the wire with the given
// loss and delay for d, then checks the invariants of RFC 5798 sections
// 6.4.2 and 6.4.3 on the wire's trace:
//   - hi (the highest priority, preempting) never leaves MASTER and keeps
//     its VIP at every sample;
//   - lo takes over only after Master_Down_Interval without hi's adverts
//     (with 20 % loss three consecutive losses do happen: those takeovers
//     are legitimate and counted, not failures);
//   - each such takeover ends at the first advert of hi that reaches lo:
//     lo sends at most one more (crossing it on the wire), because hi
//     re-asserts at once on hearing lo's lower priority and lo steps down
//     on hearing hi's higher one. Both hold the VIP no longer than that.
func noisyLAN(t *testing.T, loss float64, jitter, d time.Duration) {
	l := newFaultLAN(t, 2, true)
	hi, lo := faultPair(t, l, "0.1", "")
	hiTrans := hi.Instance("VI_1").Transitions
	loTrans := lo.Instance("VI_1").Transitions
	start := l.Wire.Reset()
	l.Wire.Set(loss, jitter)
	load0 := loadAvg()
	samples, hiLost := 0, 0
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		samples++
		if hi.state("VI_1") != "MASTER" || addrCount(t, l.Hosts[0], faultVIP, "eth0") != 1 {
			hiLost++
		}
	}
	l.Wire.Set(0, 0)
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	time.Sleep(500 * time.Millisecond) // delayed copies land; the trace is complete
	tr := l.Wire.Trace()
	loDelta := lo.Instance("VI_1").Transitions - loTrans

	mdi := masterDown(100*time.Millisecond, 100)
	eps, violations := takeovers(tr, start, 0, 1, mdi, 50*time.Millisecond)
	var sent [2]int
	var dropped, delivered int
	for _, e := range tr {
		switch {
		case e.To == -1:
			sent[e.From]++
		case e.Dropped:
			dropped++
		default:
			delivered++
		}
	}
	late, loAdverts := 0, 0
	for _, e := range eps {
		late += e.Late
		loAdverts += e.Adverts
	}
	t.Logf("loss %.0f%%, delay 0..%v, %v: hi sent %d adverts, lo %d; %d copies delivered, %d dropped (load %s -> %s)",
		loss*100, jitter, d, sent[0], sent[1], delivered, dropped, load0, loadAvg())
	t.Logf("spurious takeovers by lo: %d (lo transitions +%d), lo adverts as master %d, of which after hi's advert reached it %d",
		len(eps), loDelta, loAdverts, late)
	for i, e := range eps {
		if i < 10 {
			t.Logf("  takeover %d: %v without hi's adverts, lo sent %d, hi's adverts reaching lo before its last %d",
				i+1, e.Gap.Round(time.Millisecond), e.Adverts, e.HiBeforeLast)
		}
	}
	if n := hi.Instance("VI_1").Transitions; n != hiTrans {
		t.Errorf("hi made %d transitions: the highest priority master must never leave MASTER", n-hiTrans)
	}
	if hiLost > 0 {
		t.Errorf("hi was not MASTER with its VIP in %d of %d samples", hiLost, samples)
	}
	if sent[0] == 0 || delivered == 0 {
		t.Fatalf("the wire carried nothing: %d adverts from hi", sent[0])
	}
	if n := addrCount(t, l.Hosts[1], faultVIP, ""); n != 0 {
		t.Errorf("lo still holds the VIP after the loss ended (%d)", n)
	}
	// The invariants assume daemons that run when their timers say so.
	// On an overloaded host (other jobs on the same two cores) a daemon
	// starved for longer than Master_Down_Interval takes over whatever
	// the protocol says; hi's own adverts leaving late show it.
	var maxSendGap time.Duration
	var lastSend time.Time
	for _, e := range tr {
		if e.From == 0 && e.To == -1 {
			if !lastSend.IsZero() && e.At.Sub(lastSend) > maxSendGap {
				maxSendGap = e.At.Sub(lastSend)
			}
			lastSend = e.At
		}
	}
	t.Logf("hi's adverts left at most %v apart (interval 100 ms)", maxSendGap.Round(time.Millisecond))
	if len(violations) > 0 && maxSendGap > 250*time.Millisecond {
		for _, v := range violations {
			t.Log(v)
		}
		t.Skipf("the host starved the daemons (hi's adverts up to %v apart at a 100 ms interval, load %s): the violations above are the scheduler's, not the protocol's; rerun on a quieter machine",
			maxSendGap.Round(time.Millisecond), loadAvg())
	}
	for _, v := range violations {
		t.Error(v)
	}
	// Every takeover of lo is on the wire: it advertises at once on
	// becoming master (RFC 5798 section 6.4.2), and goes back to BACKUP.
	if loDelta != 2*len(eps) && maxSendGap <= 250*time.Millisecond {
		t.Errorf("lo made %d transitions but the wire shows %d takeovers (%d expected)", loDelta, len(eps), loDelta/2)
	}
}

// TestFaultLoss: 20 % loss each way at 100 ms adverts (CI: 10 s; long: 5 min).
func TestFaultLoss(t *testing.T) {
	noisyLAN(t, 0.20, 0, faultDur(10*time.Second, 5*time.Minute))
}

// TestFaultJitter: every frame delayed by 0..200 ms (reordering included)
// at 100 ms adverts. The longest gap between two adverts is then 300 ms,
// under Master_Down_Interval (361 ms for priority 100), so no takeover
// should happen at all; any that does must be explained by the trace.
func TestFaultJitter(t *testing.T) {
	noisyLAN(t, 0, 200*time.Millisecond, faultDur(10*time.Second, 5*time.Minute))
}

// lateAfter counts, after t0, the adverts of hi that reached lo before
// lo's last advert as a master, and lo's adverts: how long after the fault
// ended both were masters, measured in hi's adverts. A master that steps
// down for a higher priority sends one farewell advert at its own priority
// (higher_prio_send_advert, on by default in vipd, so that the winner
// learns of a split brain); that one advert, after hi's first reached lo,
// is not lo being master.
func lateAfter(tr []wireEvent, t0 time.Time, hi, lo int) (hiBefore, loAdverts int) {
	var firstHi time.Time
	for _, e := range tr {
		if e.At.After(t0) && e.From == hi && e.To == lo && !e.Dropped {
			firstHi = e.At
			break
		}
	}
	var los []time.Time
	for _, e := range tr {
		if e.At.After(t0) && e.From == lo && e.To == -1 && e.Prio > 0 {
			los = append(los, e.At)
		}
	}
	loAdverts = len(los)
	if n := len(los); n > 0 && !firstHi.IsZero() && los[n-1].After(firstHi) {
		los = los[:n-1] // the farewell
	}
	if len(los) == 0 {
		return 0, loAdverts
	}
	lastLo := los[len(los)-1]
	for _, e := range tr {
		if e.At.After(t0) && !e.At.After(lastLo) && e.From == hi && e.To == lo && !e.Dropped {
			hiBefore++
		}
	}
	return hiBefore, loAdverts
}

// TestFaultPartition: a partition makes both routers master (RFC 5798
// section 6.4.2: no adverts for Master_Down_Interval); after the heal lo
// stops at the first advert of hi that reaches it (section 6.4.3), well
// within one Master_Down_Interval (three of hi's adverts), and exactly one
// router holds the VIP.
func TestFaultPartition(t *testing.T) {
	l := newFaultLAN(t, 2, true)
	hi, lo := faultPair(t, l, "0.1", "")
	hiTrans := hi.Instance("VI_1").Transitions
	l.Wire.Cut(true)
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "MASTER"})
	time.Sleep(500 * time.Millisecond)
	if a, b := addrCount(t, l.Hosts[0], faultVIP, "eth0"), addrCount(t, l.Hosts[1], faultVIP, "eth0"); a != 1 || b != 1 {
		t.Fatalf("partitioned, hi has the VIP %d times and lo %d, want both once", a, b)
	}
	heal := l.Wire.Reset()
	l.Wire.Cut(false)
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	time.Sleep(300 * time.Millisecond)
	hiBefore, loAdverts := lateAfter(l.Wire.Trace(), heal, 0, 1)
	t.Logf("after the heal lo sent %d adverts; %d of hi's adverts reached lo before its last (load %s)", loAdverts, hiBefore, loadAvg())
	if hiBefore > 1 {
		t.Errorf("lo kept advertising after %d of hi's adverts reached it (RFC 5798 section 6.4.3: it must step down on the first)", hiBefore)
	}
	if n := hi.Instance("VI_1").Transitions; n != hiTrans {
		t.Errorf("hi made %d transitions during the partition", n-hiTrans)
	}
	if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
		t.Errorf("after the heal hi has the VIP %d times and lo %d, want 1 and 0", a, b)
	}
}

// TestFaultFreeze: the master is frozen (SIGSTOP) for twice
// Master_Down_Interval, so the backup takes over; on SIGCONT the old
// master, higher priority and preempting, stays master and the backup
// steps down at the first of its adverts that reaches it: both hold the
// VIP for no more than one advert of the master.
func TestFaultFreeze(t *testing.T) {
	l := newFaultLAN(t, 3, true) // host 3 is a client
	hi, lo := faultPair(t, l, "0.1", "")
	client := l.Hosts[2]
	if out, err := client.Exec("ping", "-c1", "-W2", faultVIP); err != nil {
		t.Fatalf("client cannot reach the VIP before the freeze: %v: %s", err, out)
	}
	// Past the client's ARP locktime (1 s), so that lo's gratuitous ARP
	// updates its entry, as it would on a quiet LAN.
	time.Sleep(1500 * time.Millisecond)
	hi.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	waitStates(t, "VI_1", map[*faultProc]string{lo: "MASTER"})
	time.Sleep(time.Until(stopped.Add(2 * masterDown(100*time.Millisecond, 200))))
	during, _ := client.TryIP("neigh", "show", faultVIP)
	t.Logf("client's neighbour entry for the VIP during the freeze: %s(lo is %s)", during, macOf(t, l.Hosts[1], "eth0"))
	cont := l.Wire.Reset()
	hi.Signal(syscall.SIGCONT)
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	time.Sleep(300 * time.Millisecond)
	hiBefore, loAdverts := lateAfter(l.Wire.Trace(), cont, 0, 1)
	t.Logf("after SIGCONT lo sent %d adverts; %d of hi's adverts reached lo before its last (load %s)", loAdverts, hiBefore, loadAvg())
	if hiBefore > 1 {
		t.Errorf("both were master for %d of hi's adverts after it resumed, want at most 1", hiBefore)
	}
	if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
		t.Errorf("after the freeze hi has the VIP %d times and lo %d, want 1 and 0", a, b)
	}
	// The client followed lo's gratuitous ARP during the freeze; it must
	// be sent back to hi, or its traffic goes to a router without the VIP.
	// The bound only guards a hung test: on a busy host hi's ARP may
	// come a little after the states settled.
	hiMAC := macOf(t, l.Hosts[0], "eth0").String()
	var neigh string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if neigh, _ = client.TryIP("neigh", "show", faultVIP); strings.Contains(neigh, hiMAC) {
			break
		}
	}
	t.Logf("client's neighbour entry for the VIP after the freeze: %s(hi is %s)", neigh, hiMAC)
	if !strings.Contains(neigh, hiMAC) {
		t.Errorf("the client still sends the VIP's traffic to %q, not to the master hi (%s): no gratuitous ARP after the split brain", strings.TrimSpace(neigh), hiMAC)
	}
}

// TestFaultKillRestart: the master is killed with SIGKILL (its VIP stays
// on the interface: nobody removed it), the backup takes over; the
// restarted master removes the address left by its crashed run before it
// enters BACKUP (issue 4: "addresses of its own config left by a crashed
// run are cleaned"), then preempts: in the end exactly one VIP, on hi.
func TestFaultKillRestart(t *testing.T) {
	l := newFaultLAN(t, 2, false)
	hi, lo := faultPair(t, l, "1", "")
	hi.Signal(syscall.SIGKILL)
	hi.Wait()
	if n := addrCount(t, l.Hosts[0], faultVIP, "eth0"); n != 1 {
		t.Fatalf("after kill -9 hi has the VIP %d times; the test expects the crash to leave it", n)
	}
	waitStates(t, "VI_1", map[*faultProc]string{lo: "MASTER"})
	hi.Restart()
	// hi is BACKUP for a Master_Down_Interval (3.6 s at 1 s adverts)
	// before it preempts; while BACKUP it must not hold the VIP.
	backupSamples := 0
	for {
		s := hi.state("VI_1")
		if s == "MASTER" {
			break
		}
		if s == "BACKUP" {
			backupSamples++
			// The address check sits between two status reads: hi may
			// have preempted (and added the VIP) in between on a busy
			// machine; only BACKUP on both sides with no transition
			// between them is a stale VIP.
			before := hi.Instance("VI_1")
			n := addrCount(t, l.Hosts[0], faultVIP, "")
			after := hi.Instance("VI_1")
			if n != 0 && before.State == "BACKUP" && after.State == "BACKUP" && before.Transitions == after.Transitions {
				t.Fatalf("restarted hi is BACKUP with the stale VIP still on it (%d)", n)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if backupSamples == 0 {
		t.Fatal("never saw the restarted hi in BACKUP: the stale-address check did not run")
	}
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	if !strings.Contains(hi.log.String(), "left by an earlier run") {
		t.Error("hi did not log the removal of the stale VIP")
	}
	if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
		t.Errorf("after the restart hi has the VIP %d times and lo %d, want 1 and 0", a, b)
	}
	// kill -9 of the backup leaves nothing; its restart takes no VIP.
	lo.Signal(syscall.SIGKILL)
	lo.Restart()
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
		t.Errorf("after lo's restart hi has the VIP %d times and lo %d, want 1 and 0", a, b)
	}
	t.Logf("restarted hi was BACKUP for %d samples before preempting (load %s)", backupSamples, loadAvg())
}

// links lists the namespace's links of a type ("macvlan").
func links(t testing.TB, ns *testNS, typ string) []string {
	t.Helper()
	out := ns.IP("-o", "link", "show", "type", typ)
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// addrSnapshot is every address in the namespace, by device, sorted.
func addrSnapshot(t testing.TB, ns *testNS) string {
	t.Helper()
	out := ns.IP("-o", "addr", "show")
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			lines = append(lines, f[1]+" "+f[3])
		}
	}
	return strings.Join(lines, "\n")
}

// TestFaultLinkFlapStorm: 100 down/up flaps of the master's link with
// use_vmac. Link down is FAULT (VIPs released), link up is BACKUP, and hi
// preempts again; in the end hi is MASTER with the VIP once on its
// macvlan, lo BACKUP, one macvlan each; after SIGTERM no macvlan and no
// VIP is left and the addresses are those before the test.
func TestFaultLinkFlapStorm(t *testing.T) {
	l := newFaultLAN(t, 2, false)
	before := []string{addrSnapshot(t, l.Hosts[0]), addrSnapshot(t, l.Hosts[1])}
	vmac := "    use_vmac\n"
	hi := startFaultVipd(t, l.Hosts[0], "hi", faultConf(strings.Replace(faultInstance("VI_1", 51, 200, "0.1", "    version 3\n"+vmac), " dev eth0", "", 1)))
	lo := startFaultVipd(t, l.Hosts[1], "lo", faultConf(strings.Replace(faultInstance("VI_1", 51, 100, "0.1", "    version 3\n"+vmac), " dev eth0", "", 1)))
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	trans0 := hi.Instance("VI_1").Transitions
	rng := rand.New(rand.NewPCG(faultSeed(t), 2))
	const flaps = 100
	for i := 0; i < flaps; i++ {
		l.Hosts[0].IP("link", "set", "eth0", "down")
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		l.Hosts[0].IP("link", "set", "eth0", "up")
		// Sometimes long enough for hi to be BACKUP or MASTER again,
		// mostly not.
		time.Sleep(time.Duration(rng.IntN(60)) * time.Millisecond)
	}
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	hs := hi.Instance("VI_1")
	t.Logf("%d flaps: hi made %d transitions, now %s (load %s)", flaps, hs.Transitions-trans0, hs.State, loadAvg())
	if hs.Transitions-trans0 < 2 {
		t.Errorf("hi made %d transitions over %d flaps: the link events were not seen", hs.Transitions-trans0, flaps)
	}
	for i, p := range []*faultProc{hi, lo} {
		ns := l.Hosts[i]
		if got := links(t, ns, "macvlan"); len(got) != 1 {
			t.Errorf("%s has macvlans %v, want exactly one", p.name, got)
		}
		want := 0
		if p == hi {
			want = 1
		}
		if n := addrCount(t, ns, faultVIP, ""); n != want {
			t.Errorf("%s holds the VIP %d times, want %d", p.name, n, want)
		}
		if n := addrCount(t, ns, faultVIP, "eth0"); n != 0 {
			t.Errorf("%s has the VIP on eth0 (%d), not on its macvlan", p.name, n)
		}
	}
	hi.stop()
	lo.stop()
	for i, ns := range l.Hosts[:2] {
		if got := links(t, ns, "macvlan"); len(got) != 0 {
			t.Errorf("after SIGTERM host %d still has macvlans %v", i+1, got)
		}
		if got := addrSnapshot(t, ns); got != before[i] {
			t.Errorf("after SIGTERM host %d addresses:\n%s\nwant:\n%s", i+1, got, before[i])
		}
	}
}

// floodFrames are the bad adverts of the flood, one of each kind, aimed
// at VI_1 (v2, PASS auth, multicast, VRID 51) and VI_2 (v3 unicast,
// VRID 52, check_unicast_src) of hi and lo.
func floodFrames(t *testing.T, src net.HardwareAddr, srcIP netip.Addr, hiMAC, loMAC net.HardwareAddr) (frames [][]byte, kinds []string) {
	t.Helper()
	group := vrrpGroup4
	vip := netip.MustParseAddr(faultVIP)
	add := func(kind string, dstMAC net.HardwareAddr, dst netip.Addr, a Advert, mutate func(f []byte)) {
		msg, err := a.Marshal(srcIP, dst, ChecksumPseudo)
		if err != nil {
			t.Fatal(err)
		}
		f, err := buildFrame(src, dstMAC, srcIP, dst, 1, msg)
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			mutate(f)
		}
		frames = append(frames, f)
		kinds = append(kinds, kind)
	}
	mc := multicastMAC(group)
	v2 := func(vrid uint8, pass string) Advert {
		return Advert{Version: 2, Type: 1, VRID: vrid, Priority: 254, AuthType: authSimple, Auth: authKey(pass),
			Interval: 100, Addresses: []netip.Addr{vip}}
	}
	add("wrong auth (higher priority)", mc, group, v2(51, "wrong"), nil)
	add("wrong TTL", mc, group, v2(51, "secret1"), func(f []byte) {
		f[14+8] = 64
		f[14+10], f[14+11] = 0, 0
		c := ipChecksum(f[14 : 14+20])
		f[14+10], f[14+11] = byte(c>>8), byte(c)
	})
	add("wrong VRID", mc, group, v2(99, "secret1"), nil)
	add("bad checksum", mc, group, v2(51, "secret1"), func(f []byte) { f[len(f)-1] ^= 0xff })
	add("truncated", mc, group, v2(51, "secret1"), func(f []byte) {})
	frames[len(frames)-1] = truncateIPv4(frames[len(frames)-1], 10)
	add("version 3 to a v2 instance", mc, group, Advert{Version: 3, Type: 1, VRID: 51, Priority: 254, Interval: 100, Addresses: []netip.Addr{vip}}, nil)
	v3 := Advert{Version: 3, Type: 1, VRID: 53, Priority: 254, Interval: 10, Addresses: []netip.Addr{netip.MustParseAddr("10.77.0.102")}}
	add("v3 bad checksum", mc, group, v3, func(f []byte) { f[len(f)-1] ^= 0xff })
	add("v3 wrong TTL", mc, group, v3, func(f []byte) {
		f[14+8] = 1
		f[14+10], f[14+11] = 0, 0
		c := ipChecksum(f[14 : 14+20])
		f[14+10], f[14+11] = byte(c>>8), byte(c)
	})
	for i, mac := range []net.HardwareAddr{hiMAC, loMAC} {
		dst := netip.MustParseAddr(faultAddr(i))
		add("unicast from a non-peer", mac, dst, Advert{Version: 3, Type: 1, VRID: 52, Priority: 254, Interval: 100,
			Addresses: []netip.Addr{netip.MustParseAddr("10.77.0.101")}}, nil)
	}
	return frames, kinds
}

// truncateIPv4 cuts the VRRP message of an IPv4 frame to n bytes and fixes
// the IP header, so that only the VRRP length is wrong.
func truncateIPv4(f []byte, n int) []byte {
	f = f[:14+20+n]
	tl := 20 + n
	f[14+2], f[14+3] = byte(tl>>8), byte(tl)
	f[14+10], f[14+11] = 0, 0
	c := ipChecksum(f[14 : 14+20])
	f[14+10], f[14+11] = byte(c>>8), byte(c)
	return f
}

// TestFaultFlood: a flood of malformed and forged adverts at the rate one
// sender can put on the LAN (wrong password with a higher priority, wrong
// TTL, unknown VRID, bad checksum, truncated, wrong version, unicast from
// a non-peer with check_unicast_src) for a few seconds, against a v2
// instance at 1 s, a unicast v3 one and a multicast v3 one at 100 ms. RFC 5798 section
// 7.1 / RFC 3768 section 7.1: each is discarded and counted; no state
// changes; none is queued for the instance (overruns would crowd out the
// master's adverts); vipd's CPU stays below one core (the flooder and
// both daemons share two cores).
func TestFaultFlood(t *testing.T) {
	l := newFaultLAN(t, 3, false)
	auth := "    authentication {\n        auth_type PASS\n        auth_pass secret1\n    }\n"
	uni := func(self, peer int) string {
		return fmt.Sprintf("    version 3\n    unicast_src_ip %s\n    check_unicast_src\n    unicast_peer {\n        %s\n    }\n",
			faultAddr(self), faultAddr(peer))
	}
	vi2 := func(prio, self, peer int) string {
		return strings.Replace(faultInstance("VI_2", 52, prio, "0.1", uni(self, peer)), faultVIP, "10.77.0.101", 1)
	}
	vi3 := func(prio int) string {
		return strings.Replace(faultInstance("VI_3", 53, prio, "0.1", "    version 3\n"), faultVIP, "10.77.0.102", 1)
	}
	hi := startFaultVipd(t, l.Hosts[0], "hi", faultConf(faultInstance("VI_1", 51, 200, "1", "    version 2\n"+auth), vi2(200, 0, 1), vi3(200)))
	lo := startFaultVipd(t, l.Hosts[1], "lo", faultConf(faultInstance("VI_1", 51, 100, "1", "    version 2\n"+auth), vi2(100, 1, 0), vi3(100)))
	insts := []string{"VI_1", "VI_2", "VI_3"}
	for _, inst := range insts {
		waitStates(t, inst, map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
	}
	before := map[string]instanceStatus{}
	for _, p := range []*faultProc{hi, lo} {
		for _, inst := range insts {
			before[p.name+inst] = p.Instance(inst)
		}
	}
	fl := l.Hosts[2]
	ifi := fl.Interface("eth0")
	frames, kinds := floodFrames(t, ifi.HardwareAddr, netip.MustParseAddr(faultAddr(2)), macOf(t, l.Hosts[0], "eth0"), macOf(t, l.Hosts[1], "eth0"))
	var fd int
	fl.MustDo(func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	defer unix.Close(fd)

	cpu0 := map[*faultProc]time.Duration{}
	for _, p := range []*faultProc{hi, lo} {
		c, err := procCPU(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		cpu0[p] = c
	}
	d := faultDur(3*time.Second, 20*time.Second)
	load0 := loadAvg()
	sent, sendErr := 0, 0
	t0 := time.Now()
	for end := t0.Add(d); time.Now().Before(end); {
		for range 64 {
			if _, err := unix.Write(fd, frames[sent%len(frames)]); err != nil {
				sendErr++
			}
			sent++
		}
	}
	elapsed := time.Since(t0)
	cpu := map[*faultProc]time.Duration{}
	for _, p := range []*faultProc{hi, lo} {
		c, err := procCPU(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		cpu[p] = c - cpu0[p]
	}
	time.Sleep(2 * time.Second) // let the last adverts be counted and a wrongful takeover show
	t.Logf("flood: %d frames in %v (%.0f/s, %d send errors) of %d kinds: %s", sent, elapsed.Round(time.Millisecond),
		float64(sent)/elapsed.Seconds(), sendErr, len(kinds), strings.Join(kinds, ", "))
	for _, p := range []*faultProc{hi, lo} {
		// Frames the kernel dropped because the socket's buffer was full
		// (the daemon was not scheduled in time on an overloaded host)
		// may include the master's adverts: a 100 ms instance may then
		// rightly take over. Only the 1 s instance must hold regardless.
		dbg, err := p.Debug()
		if err != nil {
			t.Fatal(err)
		}
		var kernelDrops uint32
		for _, h := range dbg.Hubs {
			kernelDrops += h.KernelDrops
		}
		t.Logf("%s: CPU %v over %v = %.0f%% of a core (load %s -> %s)", p.name, cpu[p].Round(10*time.Millisecond),
			elapsed.Round(time.Millisecond), 100*cpu[p].Seconds()/elapsed.Seconds(), load0, loadAvg())
		if cpu[p] > elapsed {
			t.Errorf("%s used %v of CPU during a %v flood: more than one core", p.name, cpu[p], elapsed)
		}
		for _, inst := range insts {
			is, was := p.Instance(inst), before[p.name+inst]
			t.Logf("  %s %s: %s, drops %v, overruns %d, accepted %d", p.name, inst, is.State, is.Drops, is.Overruns-was.Overruns, is.AdvertsReceived-was.AdvertsReceived)
			if n := is.Overruns - was.Overruns; n > 0 {
				t.Errorf("%s %s overran its queue %d times: bad adverts crowd out the master's", p.name, inst, n)
			}
			if is.State != was.State || is.Transitions != was.Transitions {
				if inst != "VI_1" && kernelDrops > 0 {
					t.Logf("%s %s made %d transitions during the flood, with %d frames dropped by the kernel (socket buffer full, load %s): not counted against vipd",
						p.name, inst, is.Transitions-was.Transitions, kernelDrops, loadAvg())
					continue
				}
				t.Errorf("%s %s went from %s to %s (%d transitions) during the flood", p.name, inst, was.State, is.State, is.Transitions-was.Transitions)
			}
		}
		t.Logf("  %s hubs: %+v", p.name, dbg.Hubs)
		unknown := uint64(0)
		for _, h := range dbg.Hubs {
			unknown += h.UnknownVRID
		}
		if unknown == 0 {
			t.Errorf("%s counted no adverts for the unknown VRID 99", p.name)
		}
		v1, v2 := p.Instance("VI_1"), p.Instance("VI_2")
		for _, r := range []string{"auth_pass", "ttl", "checksum", "length", "version"} {
			if v1.Drops[r] == 0 {
				t.Errorf("%s VI_1 counted no %s drops: %v", p.name, r, v1.Drops)
			}
		}
		if v2.Drops["unicast_src"] == 0 {
			t.Errorf("%s VI_2 counted no unicast_src drops: %v", p.name, v2.Drops)
		}
		if v3 := p.Instance("VI_3"); v3.Drops["checksum"] == 0 || v3.Drops["ttl"] == 0 {
			t.Errorf("%s VI_3 counted no checksum or ttl drops: %v", p.name, v3.Drops)
		}
	}
	if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
		t.Errorf("after the flood hi has the VIP %d times and lo %d, want 1 and 0", a, b)
	}
}

// TestTakeoverAnalysis checks the trace checker the noisy-LAN tests rely
// on, so that a broken checker cannot pass a broken daemon.
func TestTakeoverAnalysis(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	hiTo := func(ms int, dropped bool) wireEvent {
		return wireEvent{At: at(ms), From: 0, To: 1, Dropped: dropped, Prio: 200}
	}
	lo := func(ms int) wireEvent { return wireEvent{At: at(ms), From: 1, To: -1, Prio: 100} }
	mdi := masterDown(100*time.Millisecond, 100)
	for _, tc := range []struct {
		name       string
		tr         []wireEvent
		eps, viols int
	}{
		{"quiet", []wireEvent{hiTo(100, false), hiTo(200, false), hiTo(300, false)}, 0, 0},
		{"takeover after three losses, ended by hi", []wireEvent{hiTo(100, false), hiTo(200, true), hiTo(300, true), hiTo(400, true),
			lo(465), hiTo(466, false), hiTo(500, false)}, 1, 0},
		{"one crossing advert is allowed", []wireEvent{hiTo(100, false), hiTo(200, true), hiTo(300, true), hiTo(400, true),
			lo(465), hiTo(500, false), lo(501), hiTo(600, false)}, 1, 0},
		{"lo ignores hi", []wireEvent{hiTo(100, false), hiTo(200, true), hiTo(300, true), hiTo(400, true),
			lo(465), hiTo(500, false), lo(565), hiTo(600, false), lo(665)}, 1, 1},
		{"lo takes over too early", []wireEvent{hiTo(100, false), hiTo(200, true), lo(300)}, 1, 1},
		{"two separate takeovers", []wireEvent{hiTo(100, false), hiTo(200, true), hiTo(300, true), hiTo(400, true),
			lo(465), hiTo(500, false), hiTo(600, true), hiTo(700, true), hiTo(800, true), lo(865), hiTo(900, false)}, 2, 0},
	} {
		eps, viols := takeovers(tc.tr, t0, 0, 1, mdi, 50*time.Millisecond)
		if len(eps) != tc.eps || len(viols) != tc.viols {
			t.Errorf("%s: %d takeovers, %d violations %v; want %d, %d", tc.name, len(eps), len(viols), viols, tc.eps, tc.viols)
		}
	}
}
