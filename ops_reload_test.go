package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// opsConf is a keepalived.conf for the reload tests: VI_1 (VRID 51) and
// VI_2 (VRID 52) always, VI_3 (VRID 53) when VI3 is set.
type opsConf struct {
	Name       string
	Prio       int
	IntervalCS int // VI_1's advert_int
	VIPs1      []netip.Addr
	VIPs2      []netip.Addr
	VI3        []netip.Addr // nil: no VI_3
	Name1      string       // VI_1's name when not "VI_1"
	Swap       bool         // VI_1 gets VRID 52 and VI_2 VRID 51
}

func (c opsConf) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n    router_id %s\n}\n", c.Name)
	inst := func(name string, vrid, interval int, vips []netip.Addr) {
		fmt.Fprintf(&b, "vrrp_instance %s {\n    state BACKUP\n    interface eth0\n    virtual_router_id %d\n", name, vrid)
		fmt.Fprintf(&b, "    priority %d\n    version 3\n    advert_int %.2f\n    virtual_ipaddress {\n", c.Prio, float64(interval)/100)
		for _, v := range vips {
			fmt.Fprintf(&b, "        %s/24 dev eth0\n", v)
		}
		b.WriteString("    }\n}\n")
	}
	name1, vrid1, vrid2 := "VI_1", 51, 52
	if c.Name1 != "" {
		name1 = c.Name1
	}
	if c.Swap {
		vrid1, vrid2 = 52, 51
	}
	inst(name1, vrid1, c.IntervalCS, c.VIPs1)
	inst("VI_2", vrid2, 20, c.VIPs2)
	if c.VI3 != nil {
		inst("VI_3", 53, 20, c.VI3)
	}
	return b.String()
}

// TestReloadUnderTraffic reloads the master 50 times for each kind of
// change while a client pings a VIP every 10 ms and the live monitor on
// the client watches the adverts. No echo request may go unanswered, no
// advert may be missing (RFC 5798 section 6.4.3: the master keeps its
// Adver_Timer), and neither router may change state. keepalived's reload
// failures checked here: VIPs dropped on reload, a VIP moved between
// instances lost, VRIDs swapped losing VIPs, a reload forcing BACKUP.
func TestReloadUnderTraffic(t *testing.T) {
	needRoot(t)
	l := newOpsLAN(t, 3) // A (master), B (backup), client
	a, b, client := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	vip1, vipMoved, vipExtra, vip2, vip3 := l.opsVIP(1), l.opsVIP(2), l.opsVIP(3), l.opsVIP(4), l.opsVIP(5)
	base := opsConf{Name: "A", Prio: 200, IntervalCS: 20, VIPs1: []netip.Addr{vip1, vipMoved}, VIPs2: []netip.Addr{vip2}}
	peer := base
	peer.Name, peer.Prio = "B", 100
	pa := startOpsVipd(t, a, base.String(), "--metrics-addr", "127.0.0.1:9650")
	pb := startOpsVipd(t, b, peer.String())
	waitFor(t, 10*time.Second, "A master of VI_1 and VI_2", func() bool {
		return hasVIP(a, vip1) && hasVIP(a, vip2) && pb.instance(t, "VI_1").Master == l.Addr4(0).Addr().String()
	})
	watch := watchInspect(t, client)
	waitFor(t, 5*time.Second, "the monitor to hear A", func() bool { return watch.len() > 2 })

	kinds := []struct {
		name   string
		ping   netip.Addr
		change func(c opsConf, odd bool) opsConf
	}{
		{"unchanged", vip1, func(c opsConf, odd bool) opsConf { return c }},
		{"priority", vip1, func(c opsConf, odd bool) opsConf {
			if odd {
				c.Prio = 190
			}
			return c
		}},
		{"vip list", vip1, func(c opsConf, odd bool) opsConf {
			if odd {
				c.VIPs1 = append(slices.Clone(c.VIPs1), vipExtra)
			}
			return c
		}},
		{"vip moved between instances", vipMoved, func(c opsConf, odd bool) opsConf {
			if odd {
				c.VIPs1 = []netip.Addr{vip1}
				c.VIPs2 = []netip.Addr{vip2, vipMoved}
			}
			return c
		}},
		{"instance added and removed", vip1, func(c opsConf, odd bool) opsConf {
			if odd {
				c.VI3 = []netip.Addr{vip3}
			}
			return c
		}},
		{"instance renamed", vip1, func(c opsConf, odd bool) opsConf {
			if odd {
				c.Name1 = "VI_one"
			}
			return c
		}},
		// keepalived loses VIPs when two instances swap VRIDs; here the
		// runners follow their VRIDs and the VIPs move between them.
		{"vrids swapped", vip1, func(c opsConf, odd bool) opsConf {
			c.Swap = odd
			return c
		}},
		{"interval", vip1, func(c opsConf, odd bool) opsConf {
			if odd {
				c.IntervalCS = 30
			}
			return c
		}},
	}
	const reloads = 50
	for _, k := range kinds {
		t.Run(strings.ReplaceAll(k.name, " ", "_"), func(t *testing.T) {
			before1, before2 := pa.instance(t, "VI_1"), pb.instance(t, "VI_1")
			from := watch.len()
			ping := startPinger(t, client, k.ping)
			time.Sleep(100 * time.Millisecond)
			var last opsConf
			var took time.Duration
			for i := 1; i <= reloads; i++ {
				last = k.change(base, i%2 == 1)
				pa.write(last.String())
				t0 := time.Now()
				if err := pa.reload(); err != nil {
					t.Fatalf("reload %d: %v", i, err)
				}
				took += time.Since(t0)
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(200 * time.Millisecond)
			sent, lost, gap := ping.result()
			n, advGap := watch.maxGap(l.Addr4(0).Addr().String(), 51, from)
			t.Logf("%d reloads (%v each with the client round trip): %d pings to %s, %d lost, longest reply gap %v; %d adverts from A, longest gap %v",
				reloads, (took / reloads).Round(time.Millisecond), sent, k.ping, lost, gap.Round(time.Millisecond), n, advGap.Round(time.Millisecond))
			if lost > 0 {
				t.Errorf("%d of %d echo requests to %s went unanswered", lost, sent, k.ping)
			}
			// One missing advert makes a gap of two intervals.
			maxInterval := 300 * time.Millisecond
			if advGap >= 2*maxInterval {
				t.Errorf("an advert from A went missing: %v between two", advGap)
			}
			after1, after2 := pa.instance(t, "VI_1"), pb.instance(t, "VI_1")
			if after1.State != "MASTER" || after1.Transitions != before1.Transitions {
				t.Errorf("A's VI_1: %s after %d transitions, was MASTER after %d", after1.State, after1.Transitions, before1.Transitions)
			}
			if after2.State != "BACKUP" || after2.Transitions != before2.Transitions {
				t.Errorf("B's VI_1: %s after %d transitions, was BACKUP after %d", after2.State, after2.Transitions, before2.Transitions)
			}
			// The addresses are those of the last configuration.
			want := append(append(slices.Clone(last.VIPs1), last.VIPs2...), last.VI3...)
			for _, v := range []netip.Addr{vip1, vipMoved, vipExtra, vip2, vip3} {
				if v == vip3 && last.VI3 != nil {
					// A new instance starts in BACKUP: master after its down interval.
					waitFor(t, 5*time.Second, "VI_3 master", func() bool { return hasVIP(a, vip3) })
				}
				if got := hasVIP(a, v); got != slices.Contains(want, v) {
					t.Errorf("A has %s: %v, configuration says %v", v, got, !got)
				}
				if hasVIP(b, v) {
					t.Errorf("backup B has %s", v)
				}
			}
			// Back to the base configuration for the next kind.
			pa.write(base.String())
			if err := pa.reload(); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("broken_config_rejected", func(t *testing.T) {
		before := pa.status(t)
		ping := startPinger(t, client, vip1)
		pa.write(base.String() + "\nvrrp_instance VI_9 {\n    interface eth0\n    virtual_router_id 300\n    priority banana\n")
		out, err := pa.vipdCmd("reload")
		if err == nil {
			t.Fatalf("vipd reload accepted a broken configuration: %s", out)
		}
		time.Sleep(300 * time.Millisecond)
		if _, lost, _ := ping.result(); lost > 0 {
			t.Errorf("%d echo requests lost after a rejected reload", lost)
		}
		after := pa.status(t)
		if len(after.Instances) != len(before.Instances) || !hasVIP(a, vip1) || after.Instances[0].State != "MASTER" {
			t.Errorf("the running configuration was not kept: %+v", after.Instances)
		}
		if !strings.Contains(pa.logs(), "Reload rejected") {
			t.Error("no log line says the reload was rejected")
		}
		pa.write(base.String())
	})

	t.Run("status_metrics_dumps", func(t *testing.T) {
		checkOpsState(t, l, pa, pb)
	})
}

// checkOpsState compares what vipd says (status, metrics, dumps) with the
// kernel's addresses and the other router's view.
func checkOpsState(t *testing.T, l *testLAN, pa, pb *vipdProc) {
	addrA := l.Addr4(0).Addr().String()
	// B first: A's counter, read after, is at least what B received.
	ib := pb.instance(t, "VI_1")
	ia := pa.instance(t, "VI_1")
	if ia.State != "MASTER" || ib.State != "BACKUP" {
		t.Fatalf("states %s/%s, want MASTER/BACKUP", ia.State, ib.State)
	}
	if ib.Master != addrA || ib.MasterPriority != 200 {
		t.Errorf("B says the master is %s at %d, want %s at 200", ib.Master, ib.MasterPriority, addrA)
	}
	for _, v := range ia.VIPs {
		p := netip.MustParsePrefix(v)
		if !hasVIP(l.Hosts[0], p.Addr()) {
			t.Errorf("status lists %s but A lacks it", v)
		}
		if hasVIP(l.Hosts[1], p.Addr()) {
			t.Errorf("backup B has %s", v)
		}
	}
	// Every transition has its keepalived log line.
	if n := strings.Count(pa.logs(), `"message":"(VI_1) Entering `); n != ia.Transitions {
		t.Errorf("A logged %d transitions of VI_1, status says %d", n, ia.Transitions)
	}
	if ib.AdvertsReceived == 0 || ia.AdvertsSent == 0 {
		t.Errorf("counters: A sent %d, B received %d", ia.AdvertsSent, ib.AdvertsReceived)
	}
	// A's adverts that B received: B can only have received what A sent.
	if ib.AdvertsReceived > ia.AdvertsSent {
		t.Errorf("B received %d adverts, A sent only %d", ib.AdvertsReceived, ia.AdvertsSent)
	}

	m := pa.metrics(t, "127.0.0.1:9650")
	lbl := `instance="VI_1",interface="eth0",vrid="51"`
	for _, c := range []struct{ prefix, want string }{
		{`vipd_vrrp_state{instance="VI_1",interface="eth0",state="MASTER",vrid="51"}`, "1"},
		{`vipd_vrrp_state{instance="VI_1",interface="eth0",state="BACKUP",vrid="51"}`, "0"},
		{`vipd_vrrp_priority{` + lbl + `}`, "200"},
		{`vipd_vrrp_configured_priority{` + lbl + `}`, "200"},
		{`vipd_vrrp_advert_interval_seconds{` + lbl + `}`, "0.2"},
		{`vipd_vrrp_split_brain{` + lbl + `}`, "0"},
	} {
		if got, ok := metricValue(m, c.prefix); !ok || got != c.want {
			t.Errorf("%s = %q, want %s", c.prefix, got, c.want)
		}
	}
	var sent float64
	if v, ok := metricValue(m, `vipd_vrrp_adverts_sent_total{`+lbl+`}`); ok {
		fmt.Sscan(v, &sent)
	}
	if uint64(sent) < ia.AdvertsSent {
		t.Errorf("metrics say %v adverts sent, status said %d before", sent, ia.AdvertsSent)
	}

	// keepalived's signals write its files.
	for _, c := range []struct {
		sig  syscall.Signal
		file string
		want string
	}{
		{syscall.SIGUSR1, "keepalived.data", "   State = MASTER\n"},
		{syscall.SIGUSR2, "keepalived.stats", "VRRP Instance: VI_1\n  Advertisements:\n"},
		{syscall.Signal(sigRTMin + 2), "keepalived.json", `"iname": "VI_1"`},
	} {
		path := filepath.Join(pa.dir, c.file)
		os.Remove(path)
		pa.cmd.Process.Signal(c.sig)
		waitFor(t, 5*time.Second, c.file, func() bool { _, err := os.Stat(path); return err == nil })
		b, _ := os.ReadFile(path)
		if !strings.Contains(string(b), c.want) {
			t.Errorf("%s lacks %q:\n%s", c.file, c.want, b)
		}
		if c.file == "keepalived.json" {
			var dump []jsonDumpInstance
			if err := json.Unmarshal(b, &dump); err != nil || len(dump) == 0 || dump[0].Data.State != 2 {
				t.Errorf("keepalived.json: %v: %s", err, b)
			}
		}
	}
	out, err := pb.vipdCmd("dump", "data")
	if err != nil || !strings.Contains(out, "Master router = "+addrA) {
		t.Errorf("vipd dump data on B: %v:\n%s", err, out)
	}
}
