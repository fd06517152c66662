package main

// Tests against the real IPVS of a kernel with ip_vs. They run inside the
// QEMU guest that scripts/test-ipvs.sh boots (scripts/ipvsvm/run.sh sets
// VIPD_IPVS_GUEST=1) and skip everywhere else: they program the kernel's
// global IPVS table and sysctls, which a guest can afford and a host
// cannot.

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func needGuest(t testing.TB) *netlinkIPVS {
	t.Helper()
	if os.Getenv("VIPD_IPVS_GUEST") == "" {
		t.Skip("runs only in the IPVS test VM (scripts/test-ipvs.sh sets VIPD_IPVS_GUEST=1)")
	}
	k, err := openIPVS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if svcs, err := k.Services(); err == nil {
			for _, s := range svcs {
				k.DeleteService(s)
			}
		}
		k.Close()
	})
	return k
}

// ipvsadm runs ipvsadm -Ln (and more args) in the guest and returns its
// output with runs of blanks squeezed to one.
func ipvsadm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", append([]string{"-Ln"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v\n%s", err, out)
	}
	var lines []string
	for l := range strings.SplitSeq(string(out), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

// Services of each protocol and family, fwmark, persistence and scheduler
// flags read back through netlink and ipvsadm as programmed.
func TestIPVSGuestProgram(t *testing.T) {
	k := needGuest(t)
	a := netip.MustParseAddr
	desired := []ipvsVirtual{
		{tcpSvc("10.0.0.1:80", "rr"), []ipvsDest{nat("10.1.1.2:8080", 3), nat("10.1.2.2:8080", 1)}},
		{ipvsService{Protocol: protoUDP, Addr: a("10.0.0.1"), Port: 53, Scheduler: "wrr", Timeout: 300, Netmask: 24, Flags: svcOnePacket},
			[]ipvsDest{{Addr: a("10.1.1.2"), Port: 53, Weight: 2, Method: methodDR, UThreshold: 100, LThreshold: 10}}},
		{ipvsService{FWMark: 7, Scheduler: "sh", Flags: svcSHPort | svcSHFallback},
			[]ipvsDest{{Addr: a("10.1.1.2"), Weight: 1, Method: methodTUN, Tunnel: tunnelIPIP}}},
		{ipvsService{Protocol: protoTCP, Addr: a("2001:db8::1"), Port: 443, Scheduler: "mh", Flags: svcMHPort},
			[]ipvsDest{{Addr: a("2001:db8:1::2"), Port: 443, Weight: 1, Method: methodDR},
				{Addr: a("2001:db8:1::3"), Port: 443, Weight: 1, Method: methodTUN, Tunnel: tunnelGUE, TunnelPort: 6080, TunnelCsum: 1}}},
		{ipvsService{Protocol: protoSCTP, Addr: a("10.0.0.1"), Port: 3868, Scheduler: "lc"}, []ipvsDest{nat("10.1.1.2:3868", 1)}},
		{ipvsService{FWMark: 8, Family: familyINET6, Scheduler: "wlc", Timeout: 30, Netmask: 64},
			[]ipvsDest{{Addr: a("2001:db8:1::4"), Weight: 7, Method: methodDR}}},
		{ipvsService{Protocol: protoTCP, Addr: a("10.0.0.2"), Port: 80, Scheduler: "wlc", Timeout: 60}, nil},
	}
	for i, s := range []string{"lblc", "lblcr", "dh", "sed", "nq", "fo", "ovf"} {
		desired = append(desired, ipvsVirtual{Service: tcpSvc(fmt.Sprintf("10.0.0.3:%d", 7+i), s)})
	}
	r := newIPVSReconciler(k)
	if _, err := r.Apply(desired); err != nil {
		t.Fatal(err)
	}
	// Read back through netlink: a second diff against the kernel is empty.
	cur, err := r.read(map[ipvsKey]bool{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != len(desired) {
		t.Errorf("kernel has %d services, want %d", len(cur), len(desired))
	}
	for i := range cur {
		if cur[i].Dests, err = k.Dests(cur[i].Service); err != nil {
			t.Fatal(err)
		}
	}
	if ops := ipvsDiff(cur, desired, nil); len(ops) != 0 {
		t.Errorf("kernel differs from what was programmed: %v", ops)
	}
	for _, v := range desired {
		want := v.Service.normalize()
		found := false
		for _, c := range cur {
			if c.Service.key() == want.key() {
				found = true
				if c.Service != want {
					t.Errorf("read back %+v\n want %+v", c.Service, want)
				}
			}
		}
		if !found {
			t.Errorf("%s missing from the kernel", want)
		}
	}
	// And through ipvsadm, the tool users debug with.
	out := ipvsadm(t)
	for _, want := range []string{
		"TCP 10.0.0.1:80 rr",
		"-> 10.1.1.2:8080 Masq 3 0 0",
		"-> 10.1.2.2:8080 Masq 1 0 0",
		"UDP 10.0.0.1:53 wrr persistent 300 mask 255.255.255.0 ops",
		"-> 10.1.1.2:53 Route 2 0 0",
		"FWM 7 sh (sh-fallback,sh-port)",
		"-> 10.1.1.2:0 Tunnel 1 0 0",
		"TCP [2001:db8::1]:443 mh (mh-port)",
		"-> [2001:db8:1::2]:443 Route 1 0 0",
		"-> [2001:db8:1::3]:443 Tunnel 1 0 0",
		"SCTP 10.0.0.1:3868 lc",
		"FWM 8 IPv6 wlc persistent 30 mask 64",
		"-> [2001:db8:1::4]:0 Route 7 0 0",
		"TCP 10.0.0.2:80 wlc persistent 60",
		"TCP 10.0.0.3:7 lblc",
		"TCP 10.0.0.3:13 ovf",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, out)
		}
	}
	if out := ipvsadm(t, "--thresholds"); !strings.Contains(out, "-> 10.1.1.2:53 100 10 0 0") {
		t.Errorf("ipvsadm -Ln --thresholds lacks the UDP thresholds:\n%s", out)
	}
	if out := ipvsadm(t, "--tun-info"); !strings.Contains(out, "-> [2001:db8:1::3]:443 Tunnel gue:6080:+c 1 0 0") || !strings.Contains(out, "-> 10.1.1.2:0 Tunnel ipip 1 0 0") {
		t.Errorf("ipvsadm -Ln --tun-info lacks the GUE tunnel:\n%s", out)
	}
	t.Logf("ipvsadm -Ln:\n%s", out)
}

// The reconciler against the kernel: edits, removals and additions land as
// diffed, a service someone else made (with ipvsadm) survives them, stop
// releases only ours, lvs_flush removes everything.
func TestIPVSGuestReconcile(t *testing.T) {
	k := needGuest(t)
	if out, err := exec.Command("ipvsadm", "-A", "-u", "192.0.2.9:514", "-s", "wlc").CombinedOutput(); err != nil {
		t.Fatalf("ipvsadm -A: %v\n%s", err, out)
	}
	r := newIPVSReconciler(k)
	web := ipvsVirtual{tcpSvc("10.0.0.1:80", "rr"), []ipvsDest{nat("10.1.1.2:8080", 1), nat("10.1.2.2:8080", 2)}}
	dns := ipvsVirtual{ipvsService{Protocol: protoUDP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53}, []ipvsDest{nat("10.1.1.2:53", 1)}}
	if _, err := r.Apply([]ipvsVirtual{web, dns}); err != nil {
		t.Fatal(err)
	}
	if ops, err := r.Apply([]ipvsVirtual{web, dns}); err != nil || len(ops) != 0 {
		t.Errorf("re-apply of the same state: %v %v", ops, err)
	}
	web2 := ipvsVirtual{tcpSvc("10.0.0.1:80", "wlc"), []ipvsDest{nat("10.1.1.2:8080", 0), nat("10.1.3.2:8080", 5)}}
	ops, err := r.Apply([]ipvsVirtual{web2})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, op := range ops {
		got = append(got, op.String())
	}
	want := []string{
		"delete service UDP 10.0.0.1:53",
		"edit service TCP 10.0.0.1:80 (wlc)",
		"delete real server 10.1.2.2:8080 from TCP 10.0.0.1:80",
		"edit real server 10.1.1.2:8080 of TCP 10.0.0.1:80 (NAT weight 0)",
		"add real server 10.1.3.2:8080 to TCP 10.0.0.1:80 (NAT weight 5)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("ops:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := ipvsTable(t, k), `TCP 10.0.0.1:80 wlc
  -> 10.1.1.2:8080 NAT 0
  -> 10.1.3.2:8080 NAT 5
UDP 192.0.2.9:514 wlc
`; got != want {
		t.Errorf("kernel table:\n%s\nwant:\n%s", got, want)
	}
	out := ipvsadm(t)
	for _, want := range []string{"UDP 192.0.2.9:514 wlc", "TCP 10.0.0.1:80 wlc", "-> 10.1.1.2:8080 Masq 0 0 0", "-> 10.1.3.2:8080 Masq 5 0 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("ipvsadm -Ln lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "10.0.0.1:53") || strings.Contains(out, "10.1.2.2") {
		t.Errorf("removed entries still in ipvsadm -Ln:\n%s", out)
	}
	if err := r.Release(true); err != nil {
		t.Fatal(err)
	}
	if svcs, _ := k.Services(); len(svcs) != 2 {
		t.Errorf("Release(keep) changed the table: %v", svcs)
	}
	if err := r.Release(false); err != nil {
		t.Fatal(err)
	}
	if got, want := ipvsTable(t, k), "UDP 192.0.2.9:514 wlc\n"; got != want {
		t.Errorf("after release: %q, want %q", got, want)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if svcs, _ := k.Services(); len(svcs) != 0 {
		t.Errorf("after flush: %v", svcs)
	}
}

// Debian's 6.1 kernel has no twos scheduler: the service that asks for it
// fails with an error naming it, the others are programmed.
func TestIPVSGuestMissingScheduler(t *testing.T) {
	k := needGuest(t)
	r := newIPVSReconciler(k)
	twos := ipvsVirtual{tcpSvc("10.0.0.1:80", "twos"), []ipvsDest{nat("10.1.1.2:80", 1)}}
	rr := ipvsVirtual{tcpSvc("10.0.0.1:443", "rr"), []ipvsDest{nat("10.1.1.2:443", 1)}}
	_, err := r.Apply([]ipvsVirtual{twos, rr})
	if err == nil {
		t.Skip("this kernel has the twos scheduler")
	}
	if !strings.Contains(err.Error(), `add service TCP 10.0.0.1:80 (twos): scheduler "twos" is not available in the running kernel`) {
		t.Errorf("err = %v", err)
	}
	t.Logf("error: %v", err)
	if got, want := ipvsTable(t, k), "TCP 10.0.0.1:443 rr\n  -> 10.1.1.2:443 NAT 1\n"; got != want {
		t.Errorf("kernel table %q, want %q", got, want)
	}
	// Editing an existing service to a missing scheduler fails the same way.
	twos.Service.Port = 443
	if _, err := r.Apply([]ipvsVirtual{twos}); err == nil || !strings.Contains(err.Error(), `edit service TCP 10.0.0.1:443 (twos): scheduler "twos"`) {
		t.Errorf("edit to twos: %v", err)
	}
}

// bigTable is n services with 4 NAT real servers each.
func bigTable(n, weight int) []ipvsVirtual {
	out := make([]ipvsVirtual, 0, n)
	for i := range n {
		v := ipvsVirtual{Service: ipvsService{Protocol: protoTCP, Addr: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), Port: 80, Scheduler: "wrr"}}
		for j := range 4 {
			v.Dests = append(v.Dests, ipvsDest{Addr: netip.AddrFrom4([4]byte{10, 8, byte(j), 2}), Port: 8080, Weight: weight})
		}
		out = append(out, v)
	}
	return out
}

// Programming 500 services x 4 real servers through netlink, then a no-op
// sync, then a weight change everywhere (figures only; run with
// scripts/test-ipvs.sh -run XXX -test.bench IPVSGuest).
func BenchmarkIPVSGuestApply(b *testing.B) {
	k := needGuest(b)
	for range b.N {
		r := newIPVSReconciler(k)
		start := time.Now()
		if _, err := r.Apply(bigTable(500, 1)); err != nil {
			b.Fatal(err)
		}
		created := time.Since(start)
		start = time.Now()
		if ops, err := r.Apply(bigTable(500, 1)); err != nil || len(ops) != 0 {
			b.Fatalf("no-op sync: %d ops, %v", len(ops), err)
		}
		noop := time.Since(start)
		start = time.Now()
		if ops, err := r.Apply(bigTable(500, 2)); err != nil || len(ops) != 2000 {
			b.Fatalf("weight change: %d ops, %v", len(ops), err)
		}
		edit := time.Since(start)
		if err := r.Release(false); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(created.Seconds(), "create-s")
		b.ReportMetric(noop.Seconds(), "noop-sync-s")
		b.ReportMetric(edit.Seconds(), "edit-2000-s")
	}
}
