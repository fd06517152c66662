package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// neighMAC is the link-layer address ns has for addr, or "".
func neighMAC(ns *testNS, addr netip.Addr) string {
	out, _ := ns.TryIP("neigh", "show", addr.String())
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// TestSplitBrainPartition partitions two routers with bridge port
// isolation while a client still reaches both: both become master (RFC
// 5798 section 6.4.2, Master_Down_Timer), the live monitor on the client
// warns of two masters, and the metrics say MASTER on both. When the
// partition heals exactly one master remains (section 6.4.3), it counts
// and logs the split brain, and its gratuitous ARPs make the client's ARP
// entry point to it again: the client sends nothing meanwhile, so only an
// announcement can move the entry.
func TestSplitBrainPartition(t *testing.T) { splitBrainPartition(t, false, false) }

// TestSplitBrainShortPartition heals right after B took over, while B has
// been master for less than a Master_Down_Interval: B's last advert still
// tells A, which re-announces.
func TestSplitBrainShortPartition(t *testing.T) { splitBrainPartition(t, false, true) }

// TestSplitBrainPartitionKeepalivedPeer is the same with keepalived 2.2.7
// as the lower priority router. It steps down silently unless told to send
// one last advert (higher_prio_send_advert, as docs/operations.md
// advises); with it vipd learns of the split brain and re-announces.
func TestSplitBrainPartitionKeepalivedPeer(t *testing.T) { splitBrainPartition(t, true, false) }

func splitBrainPartition(t *testing.T, keepalivedPeer, short bool) {
	needRoot(t)
	l := newOpsLAN(t, 3)
	a, b, client := l.Hosts[0], l.Hosts[1], l.Hosts[2]
	vip := l.opsVIP(1)
	conf := func(name string, prio int) string {
		// garp_master_delay 1: the second burst after becoming master
		// comes 1 s later, before the partition or the heal is looked at.
		return fmt.Sprintf(`global_defs {
    router_id %s
    vrrp_garp_master_delay 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    version 3
    advert_int 0.2
    virtual_ipaddress {
        %s/24 dev eth0
    }
}
`, name, prio, vip)
	}
	pa := startOpsVipd(t, a, conf("A", 200), "--metrics-addr", "127.0.0.1:9650")
	var pb *vipdProc
	if keepalivedPeer {
		runKeepalived(t, b, strings.Replace(conf("B", 100), "    advert_int 0.2\n", "    advert_int 0.2\n    higher_prio_send_advert\n", 1))
	} else {
		pb = startOpsVipd(t, b, conf("B", 100), "--metrics-addr", "127.0.0.1:9650")
	}
	peers := []*vipdProc{pa}
	if pb != nil {
		peers = append(peers, pb)
	}
	macA, macB := a.Interface("eth0").HardwareAddr.String(), b.Interface("eth0").HardwareAddr.String()
	waitFor(t, 10*time.Second, "A master, B backup", func() bool {
		return pa.instance(t, "VI_1").State == "MASTER" && hasVIP(a, vip)
	})
	time.Sleep(time.Second) // B in BACKUP (keepalived says nothing on the wire)
	if hasVIP(b, vip) {
		t.Fatal("B has the VIP before the partition")
	}
	if out, err := client.Exec("ping", "-c1", "-W2", vip.String()); err != nil {
		t.Fatalf("ping %s: %v: %s", vip, err, out)
	}
	if got := neighMAC(client, vip); got != macA {
		t.Fatalf("client's ARP entry for %s is %q, want A's %s", vip, got, macA)
	}
	watch := watchInspect(t, client)
	time.Sleep(1500 * time.Millisecond) // A's second GARP burst

	// Partition: isolated ports reach only non-isolated ones (the client).
	l.Bridge.IP("link", "set", "dev", "p1", "type", "bridge_slave", "isolated", "on")
	l.Bridge.IP("link", "set", "dev", "p2", "type", "bridge_slave", "isolated", "on")
	waitFor(t, 10*time.Second, "B to become master too", func() bool { return hasVIP(b, vip) })
	if st := pa.instance(t, "VI_1"); st.State != "MASTER" {
		t.Fatalf("A is %s during the partition", st.State)
	}
	if !short {
		waitFor(t, 5*time.Second, "the monitor's two-masters warning", func() bool {
			for _, r := range watch.snapshot() {
				for _, w := range r.Warnings {
					if w.Kind == warnTwoMasters && w.VRID == 51 {
						t.Logf("monitor: %s", w.Detail)
						return true
					}
				}
			}
			return false
		})
		// The text view says the same to a human.
		out, err := client.Exec(vipdBinary(t), "inspect", "-i", "eth0", "--timeout", "1500ms")
		if err != nil || !strings.Contains(out, "WARNING vrid 51 (inet): two_masters: 2 routers advertise as master") ||
			strings.Count(out, " master ") < 2 {
			t.Errorf("vipd inspect -i during the split brain: %v:\n%s", err, out)
		} else if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) > 6 {
			t.Logf("vipd inspect -i (first and last lines):\n%s\n...\n%s", strings.Join(lines[:3], "\n"), strings.Join(lines[len(lines)-4:], "\n"))
		}
		masterMetric := `vipd_vrrp_state{instance="VI_1",interface="eth0",state="MASTER",vrid="51"}`
		for _, p := range peers {
			if v, _ := metricValue(p.metrics(t, "127.0.0.1:9650"), masterMetric); v != "1" {
				t.Errorf("%s: %s = %q during the partition, want 1", p.ns.Name, masterMetric, v)
			}
		}
	}
	// B announced itself: the client follows the wrong master.
	waitFor(t, 5*time.Second, "the client's ARP entry to follow B", func() bool { return neighMAC(client, vip) == macB })
	if !short {
		time.Sleep(1500 * time.Millisecond) // B's second GARP burst
		if got := neighMAC(client, vip); got != macB {
			t.Fatalf("client's ARP entry moved to %s during the partition", got)
		}
	}

	// Heal.
	healed, healAt := len(watch.snapshot()), time.Now()
	l.Bridge.IP("link", "set", "dev", "p1", "type", "bridge_slave", "isolated", "off")
	l.Bridge.IP("link", "set", "dev", "p2", "type", "bridge_slave", "isolated", "off")
	waitFor(t, 10*time.Second, "B back to backup", func() bool { return !hasVIP(b, vip) })
	if pb != nil {
		if st := pb.instance(t, "VI_1").State; st != "BACKUP" {
			t.Errorf("B is %s after the heal", st)
		}
	}
	waitFor(t, 10*time.Second, "the client's ARP entry to follow A again", func() bool { return neighMAC(client, vip) == macA })
	// garp_lower_prio_repeat (5 by default) answers B's last advert at
	// once; the split brain's resolution re-announces again later.
	t.Logf("the client's ARP entry followed A %v after the heal", time.Since(healAt).Round(10*time.Millisecond))
	ia := pa.instance(t, "VI_1")
	if ia.State != "MASTER" || !hasVIP(a, vip) || hasVIP(b, vip) {
		t.Fatalf("after the heal: A %s (has VIP %v), B has VIP %v", ia.State, hasVIP(a, vip), hasVIP(b, vip))
	}
	if ia.SplitBrains < 1 {
		t.Errorf("A counted %d split brains", ia.SplitBrains)
	}
	if v, _ := metricValue(pa.metrics(t, "127.0.0.1:9650"), `vipd_vrrp_split_brain_events_total{instance="VI_1",interface="eth0",vrid="51"}`); v == "" || v == "0" {
		t.Errorf("split brain metric %q", v)
	}
	waitFor(t, 5*time.Second, "A's split brain resolved log", func() bool {
		return strings.Contains(pa.logs(), "split brain resolved")
	})
	if !strings.Contains(pa.logs(), "(VI_1) split brain: another master "+l.Addr4(1).Addr().String()) {
		t.Error("A did not log the split brain")
	}
	// One master on the wire: after the heal, B's adverts stop.
	time.Sleep(time.Second)
	recs := watch.snapshot()
	lastB := -1
	for i, r := range recs {
		if r.Src == l.Addr4(1).Addr().String() {
			lastB = i
		}
	}
	if n, _ := watch.maxGap(l.Addr4(1).Addr().String(), 51, lastB+1); lastB < healed || n != 0 {
		t.Errorf("B's adverts: last at record %d (heal at %d)", lastB, healed)
	}
	if _, gap := watch.maxGap(l.Addr4(0).Addr().String(), 51, healed); gap == 0 {
		t.Error("the monitor heard no adverts from A after the heal")
	}
}
