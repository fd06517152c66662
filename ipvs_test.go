package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeIPVS is an in-memory ipvsKernel that answers like the kernel does:
// EEXIST for a duplicate, ESRCH for a missing service, ENOENT for a
// destination that is not there or a scheduler it does not have.
type fakeIPVS struct {
	svcs   []ipvsService // kernel order: creation order
	dests  map[ipvsKey][]ipvsDest
	scheds []string
	calls  []string
	fail   error // returned by Services when set
}

func newFakeIPVS() *fakeIPVS {
	return &fakeIPVS{dests: make(map[ipvsKey][]ipvsDest), scheds: slices.DeleteFunc(slices.Clone(ipvsSchedulers), func(s string) bool { return s == "twos" })}
}

func (f *fakeIPVS) find(s ipvsService) int {
	return slices.IndexFunc(f.svcs, func(x ipvsService) bool { return x.key() == s.key() })
}

func (f *fakeIPVS) Services() ([]ipvsService, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	return slices.Clone(f.svcs), nil
}

func (f *fakeIPVS) Dests(s ipvsService) ([]ipvsDest, error) {
	if f.find(s) < 0 {
		return nil, unix.ESRCH
	}
	return slices.Clone(f.dests[s.key()]), nil
}

func (f *fakeIPVS) CreateService(s ipvsService) error {
	f.calls = append(f.calls, "add "+s.String())
	if f.find(s) >= 0 {
		return unix.EEXIST
	}
	if !slices.Contains(f.scheds, s.normalize().Scheduler) {
		return unix.ENOENT
	}
	f.svcs = append(f.svcs, s.normalize())
	return nil
}

func (f *fakeIPVS) UpdateService(s ipvsService) error {
	f.calls = append(f.calls, "edit "+s.String())
	i := f.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	if !slices.Contains(f.scheds, s.normalize().Scheduler) {
		return unix.ENOENT
	}
	f.svcs[i] = s.normalize()
	return nil
}

func (f *fakeIPVS) DeleteService(s ipvsService) error {
	f.calls = append(f.calls, "del "+s.String())
	i := f.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	f.svcs = slices.Delete(f.svcs, i, i+1)
	delete(f.dests, s.key())
	return nil
}

func (f *fakeIPVS) destIndex(s ipvsService, d ipvsDest) (int, error) {
	if f.find(s) < 0 {
		return -1, unix.ESRCH
	}
	return slices.IndexFunc(f.dests[s.key()], func(x ipvsDest) bool { return x.key() == d.key() }), nil
}

func (f *fakeIPVS) CreateDest(s ipvsService, d ipvsDest) error {
	f.calls = append(f.calls, "add "+s.String()+" -> "+d.String())
	i, err := f.destIndex(s, d)
	if err != nil {
		return err
	}
	if i >= 0 {
		return unix.EEXIST
	}
	f.dests[s.key()] = append(f.dests[s.key()], d)
	return nil
}

func (f *fakeIPVS) UpdateDest(s ipvsService, d ipvsDest) error {
	f.calls = append(f.calls, fmt.Sprintf("edit %s -> %s w%d", s, d, d.Weight))
	i, err := f.destIndex(s, d)
	if err != nil {
		return err
	}
	if i < 0 {
		return unix.ENOENT
	}
	f.dests[s.key()][i] = d
	return nil
}

func (f *fakeIPVS) DeleteDest(s ipvsService, d ipvsDest) error {
	f.calls = append(f.calls, "del "+s.String()+" -> "+d.String())
	i, err := f.destIndex(s, d)
	if err != nil {
		return err
	}
	if i < 0 {
		return unix.ENOENT
	}
	f.dests[s.key()] = slices.Delete(f.dests[s.key()], i, i+1)
	return nil
}

func (f *fakeIPVS) Close() error { return nil }

var _ ipvsKernel = (*fakeIPVS)(nil)
var _ ipvsKernel = (*netlinkIPVS)(nil)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func tcpSvc(addrport, sched string) ipvsService {
	a := ap(addrport)
	return ipvsService{Protocol: protoTCP, Addr: a.Addr(), Port: a.Port(), Scheduler: sched}
}

func nat(addrport string, w int) ipvsDest {
	a := ap(addrport)
	return ipvsDest{Addr: a.Addr(), Port: a.Port(), Weight: w, Method: methodNAT}
}

// ipvsTable renders a kernel's table in a stable, ipvsadm-like form.
func ipvsTable(t *testing.T, k ipvsKernel) string {
	t.Helper()
	svcs, err := k.Services()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(svcs, func(a, b ipvsService) int { return strings.Compare(a.String(), b.String()) })
	var b strings.Builder
	for _, s := range svcs {
		fmt.Fprintf(&b, "%s %s", s, s.Scheduler)
		if s.Flags != 0 {
			fmt.Fprintf(&b, " %s", s.Flags)
		}
		if s.Timeout != 0 {
			fmt.Fprintf(&b, " timeout %d /%d", s.Timeout, s.Netmask)
		}
		b.WriteString("\n")
		ds, err := k.Dests(s)
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(ds, func(a, b ipvsDest) int { return strings.Compare(a.String(), b.String()) })
		for _, d := range ds {
			fmt.Fprintf(&b, "  -> %s %s %d\n", d, d.Method, d.Weight)
		}
	}
	return b.String()
}

func TestIPVSNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want ipvsService
	}{
		{ipvsService{Protocol: protoTCP, Addr: netip.MustParseAddr("::ffff:10.0.0.1"), Port: 80},
			ipvsService{Family: familyINET, Protocol: protoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 80, Scheduler: "rr", Netmask: 32}},
		{ipvsService{Protocol: protoUDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Timeout: 300, Netmask: 64, Flags: svcHashed},
			ipvsService{Family: familyINET6, Protocol: protoUDP, Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Scheduler: "rr", Timeout: 300, Netmask: 64, Flags: svcPersistent}},
		{ipvsService{FWMark: 7, Protocol: protoUDP, Port: 9, Scheduler: "sh", Flags: svcSHPort},
			ipvsService{Family: familyINET, Protocol: protoTCP, FWMark: 7, Scheduler: "sh", Flags: svcSHPort, Netmask: 32}},
		{ipvsService{FWMark: 7, Family: familyINET6},
			ipvsService{Family: familyINET6, Protocol: protoTCP, FWMark: 7, Scheduler: "rr", Netmask: 128}},
	} {
		if got := tc.in.normalize(); got != tc.want {
			t.Errorf("normalize(%+v)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestIPVSValidate(t *testing.T) {
	for _, tc := range []struct {
		s    ipvsService
		want string
	}{
		{ipvsService{Protocol: protoTCP}, "neither an address nor a fwmark"},
		{ipvsService{Protocol: 99, Addr: netip.MustParseAddr("10.0.0.1"), Port: 1}, "unsupported protocol"},
		{tcpSvc("10.0.0.1:80", "fastest"), `unknown scheduler "fastest"`},
		{ipvsService{Protocol: protoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 1, Netmask: 33}, "granularity /33 out of range"},
		{ipvsService{FWMark: 1, Family: 3}, "bad address family"},
	} {
		err := tc.s.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("validate(%+v) = %v, want %q", tc.s, err, tc.want)
		}
	}
	for _, s := range []ipvsService{tcpSvc("10.0.0.1:80", "twos"), {FWMark: 3}, {Protocol: protoSCTP, Addr: netip.MustParseAddr("::1"), Netmask: 128}} {
		if err := s.validate(); err != nil {
			t.Errorf("validate(%+v) = %v, want nil", s, err)
		}
	}
	if err := (ipvsDest{Addr: netip.MustParseAddr("10.0.0.2"), Weight: -1}).validate(); err == nil || !strings.Contains(err.Error(), "weight -1") {
		t.Errorf("negative weight: %v", err)
	}
	if err := (ipvsDest{Addr: netip.MustParseAddr("10.0.0.2"), Method: methodLocal}).validate(); err == nil {
		t.Errorf("Local method accepted")
	}
}

func TestIPVSReconcile(t *testing.T) {
	k := newFakeIPVS()
	foreign := tcpSvc("192.0.2.9:22", "wlc")
	if err := k.CreateService(foreign); err != nil {
		t.Fatal(err)
	}
	r := newIPVSReconciler(k)
	web := ipvsVirtual{tcpSvc("10.0.0.1:80", "rr"), []ipvsDest{nat("10.1.1.2:8080", 1), nat("10.1.2.2:8080", 2)}}
	dns := ipvsVirtual{ipvsService{Protocol: protoUDP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53, Scheduler: "wrr", Timeout: 60, Netmask: 24},
		[]ipvsDest{nat("10.1.1.2:53", 1)}}
	ops, err := r.Apply([]ipvsVirtual{web, dns})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 5 {
		t.Errorf("first apply: %d ops, want 5: %v", len(ops), ops)
	}
	want := `TCP 10.0.0.1:80 rr
  -> 10.1.1.2:8080 NAT 1
  -> 10.1.2.2:8080 NAT 2
TCP 192.0.2.9:22 wlc
UDP 10.0.0.1:53 wrr persistent timeout 60 /24
  -> 10.1.1.2:53 NAT 1
`
	if got := ipvsTable(t, k); got != want {
		t.Errorf("table after first apply:\n%s\nwant:\n%s", got, want)
	}

	// Applying the same state again changes nothing.
	k.calls = nil
	if ops, err := r.Apply([]ipvsVirtual{web, dns}); err != nil || len(ops) != 0 || len(k.calls) != 0 {
		t.Errorf("second apply: ops %v calls %v err %v", ops, k.calls, err)
	}

	// Weight change, a removed real server, a new one, a scheduler change,
	// and a dropped service.
	web2 := ipvsVirtual{tcpSvc("10.0.0.1:80", "wlc"), []ipvsDest{nat("10.1.1.2:8080", 0), nat("10.1.3.2:8080", 5)}}
	k.calls = nil
	ops, err = r.Apply([]ipvsVirtual{web2})
	if err != nil {
		t.Fatal(err)
	}
	wantCalls := []string{
		"del UDP 10.0.0.1:53",
		"edit TCP 10.0.0.1:80",
		"del TCP 10.0.0.1:80 -> 10.1.2.2:8080",
		"edit TCP 10.0.0.1:80 -> 10.1.1.2:8080 w0",
		"add TCP 10.0.0.1:80 -> 10.1.3.2:8080",
	}
	if !slices.Equal(k.calls, wantCalls) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(k.calls, "\n"), strings.Join(wantCalls, "\n"))
	}
	if len(ops) != len(wantCalls) {
		t.Errorf("ops %v", ops)
	}
	want = `TCP 10.0.0.1:80 wlc
  -> 10.1.1.2:8080 NAT 0
  -> 10.1.3.2:8080 NAT 5
TCP 192.0.2.9:22 wlc
`
	if got := ipvsTable(t, k); got != want {
		t.Errorf("table after second apply:\n%s\nwant:\n%s", got, want)
	}

	// Stop with --dont-release-ipvs leaves everything; stop without it
	// removes ours only.
	if err := r.Release(true); err != nil {
		t.Fatal(err)
	}
	if len(k.svcs) != 2 {
		t.Errorf("Release(keep) removed services: %v", k.svcs)
	}
	if err := r.Release(false); err != nil {
		t.Fatal(err)
	}
	if got, want := ipvsTable(t, k), "TCP 192.0.2.9:22 wlc\n"; got != want {
		t.Errorf("after Release: %q, want %q", got, want)
	}
}

// A service left by an earlier run (kept with --dont-release-ipvs) is
// adopted: its stray destinations are removed and it is released on stop.
func TestIPVSReconcileAdopt(t *testing.T) {
	k := newFakeIPVS()
	web := tcpSvc("10.0.0.1:80", "rr")
	k.CreateService(web)
	k.CreateDest(web, nat("10.1.9.9:80", 1))
	k.CreateDest(web, nat("10.1.1.2:80", 1))
	r := newIPVSReconciler(k)
	if _, err := r.Apply([]ipvsVirtual{{web, []ipvsDest{nat("10.1.1.2:80", 3)}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := ipvsTable(t, k), "TCP 10.0.0.1:80 rr\n  -> 10.1.1.2:80 NAT 3\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := r.Release(false); err != nil || len(k.svcs) != 0 {
		t.Errorf("release: %v, left %v", err, k.svcs)
	}
}

func TestIPVSFlush(t *testing.T) {
	k := newFakeIPVS()
	k.CreateService(tcpSvc("192.0.2.9:22", "wlc"))
	r := newIPVSReconciler(k)
	if _, err := r.Apply([]ipvsVirtual{{Service: tcpSvc("10.0.0.1:80", "rr")}}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(k.svcs) != 0 {
		t.Errorf("flush left %v", k.svcs)
	}
}

// A scheduler the kernel lacks fails that service with an error naming the
// scheduler; the other services are still programmed.
func TestIPVSMissingScheduler(t *testing.T) {
	k := newFakeIPVS()
	r := newIPVSReconciler(k)
	twos := ipvsVirtual{tcpSvc("10.0.0.1:80", "twos"), []ipvsDest{nat("10.1.1.2:80", 1)}}
	rr := ipvsVirtual{tcpSvc("10.0.0.1:443", "rr"), []ipvsDest{nat("10.1.1.2:443", 1)}}
	_, err := r.Apply([]ipvsVirtual{twos, rr})
	if err == nil || !strings.Contains(err.Error(), `scheduler "twos" is not available in the running kernel`) {
		t.Fatalf("err = %v", err)
	}
	if !errors.Is(err, unix.ENOENT) {
		t.Errorf("error does not wrap ENOENT: %v", err)
	}
	if got, want := ipvsTable(t, k), "TCP 10.0.0.1:443 rr\n  -> 10.1.1.2:443 NAT 1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestIPVSApplyBadInput(t *testing.T) {
	k := newFakeIPVS()
	r := newIPVSReconciler(k)
	good := ipvsVirtual{Service: tcpSvc("10.0.0.1:80", "rr")}
	_, err := r.Apply([]ipvsVirtual{
		{Service: tcpSvc("10.0.0.1:81", "bogus")},
		good,
		{Service: tcpSvc("10.0.0.1:80", "wrr")},
		{Service: tcpSvc("10.0.0.1:82", "rr"), Dests: []ipvsDest{{Addr: netip.MustParseAddr("10.1.1.1"), Weight: -3}}},
		{Service: tcpSvc("10.0.0.1:83", "rr"), Dests: []ipvsDest{{Addr: netip.MustParseAddr("10.1.1.1")}, {Addr: netip.MustParseAddr("10.1.1.1")}}},
	})
	for _, want := range []string{`unknown scheduler "bogus"`, "TCP 10.0.0.1:80 configured twice", "weight -3 out of range", "real server 10.1.1.1:0 listed twice"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}
	if got, want := ipvsTable(t, k), "TCP 10.0.0.1:80 rr\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	k.fail = unix.EPERM
	if _, err := r.Apply([]ipvsVirtual{good}); !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "list services") {
		t.Errorf("kernel failure: %v", err)
	}
}

func TestIPVSDiffTunnelAndLocal(t *testing.T) {
	s := tcpSvc("10.0.0.1:80", "rr")
	tun := ipvsDest{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80, Weight: 1, Method: methodTUN, Tunnel: tunnelGUE, TunnelPort: 6080}
	cur := []ipvsVirtual{{s, []ipvsDest{tun}}}
	if ops := ipvsDiff(cur, cur, nil); len(ops) != 0 {
		t.Errorf("same state: %v", ops)
	}
	tun2 := tun
	tun2.TunnelPort = 6081
	if ops := ipvsDiff(cur, []ipvsVirtual{{s, []ipvsDest{tun2}}}, nil); len(ops) != 1 || ops[0].Kind != opEditDest {
		t.Errorf("tunnel port change: %v", ops)
	}
	// The kernel reports Local for a director's own address.
	local := tun
	local.Method = methodLocal
	dr := tun
	dr.Method = methodDR
	if ops := ipvsDiff([]ipvsVirtual{{s, []ipvsDest{local}}}, []ipvsVirtual{{s, []ipvsDest{dr}}}, nil); len(ops) != 0 {
		t.Errorf("local dest: %v", ops)
	}
}

func members(ups ...bool) []poolMember {
	var m []poolMember
	for i, up := range ups {
		m = append(m, poolMember{Dest: nat(fmt.Sprintf("10.1.%d.2:80", i+1), 1), Up: up})
	}
	return m
}

func destList(ds []ipvsDest) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%s/%d", d, d.Weight))
	}
	return strings.Join(s, " ")
}

func TestIPVSPool(t *testing.T) {
	sorry := nat("10.9.9.9:80", 0)
	for _, tc := range []struct {
		name      string
		m         []poolMember
		cfg       poolConfig
		prev      quorumState
		want      string
		wantState quorumState
		wantEv    quorumEvent
	}{
		{"all up, first evaluation", members(true, true), poolConfig{}, quorumUnknown,
			"10.1.1.2:80/1 10.1.2.2:80/1", quorumUp, quorumGained},
		{"one down is removed", members(true, false), poolConfig{}, quorumUp,
			"10.1.1.2:80/1", quorumUp, quorumNoEvent},
		{"inhibit_on_failure keeps it at weight 0", []poolMember{{nat("10.1.1.2:80", 3), true, true}, {nat("10.1.2.2:80", 3), false, true}}, poolConfig{}, quorumUp,
			"10.1.1.2:80/3 10.1.2.2:80/0", quorumUp, quorumNoEvent},
		{"all down without sorry server: empty, quorum lost", members(false, false), poolConfig{}, quorumUp,
			"", quorumDown, quorumLost},
		{"all down: sorry server takes over with weight 1", members(false, false), poolConfig{Sorry: &sorry}, quorumUp,
			"10.9.9.9:80/1", quorumDown, quorumLost},
		{"quorum up: sorry server out", members(true, false), poolConfig{Sorry: &sorry}, quorumDown,
			"10.1.1.2:80/1", quorumUp, quorumGained},
		{"sorry_server_inhibit keeps it at 0", members(true, false), poolConfig{Sorry: &sorry, SorryInhibit: true}, quorumUp,
			"10.1.1.2:80/1 10.9.9.9:80/0", quorumUp, quorumNoEvent},
		{"below quorum 2: sorry replaces live servers", members(true, false, false), poolConfig{Quorum: 2, Sorry: &sorry}, quorumUp,
			"10.9.9.9:80/1", quorumDown, quorumLost},
		{"below quorum, inhibited live server stays at 0", []poolMember{{nat("10.1.1.2:80", 1), true, true}}, poolConfig{Quorum: 2, Sorry: &sorry}, quorumUp,
			"10.1.1.2:80/0 10.9.9.9:80/1", quorumDown, quorumLost},
		{"below quorum without sorry: live servers stay", members(true, false, false), poolConfig{Quorum: 2}, quorumUp,
			"10.1.1.2:80/1", quorumDown, quorumLost},
		// Hysteresis 1 around quorum 3: lost below 2, regained at 4.
		{"hysteresis: 2 of quorum 3 keeps it up", members(true, true, false, false), poolConfig{Quorum: 3, Hysteresis: 1}, quorumUp,
			"10.1.1.2:80/1 10.1.2.2:80/1", quorumUp, quorumNoEvent},
		{"hysteresis: 1 of quorum 3 loses it", members(true, false, false, false), poolConfig{Quorum: 3, Hysteresis: 1}, quorumUp,
			"10.1.1.2:80/1", quorumDown, quorumLost},
		{"hysteresis: 3 of quorum 3 does not regain it", members(true, true, true, false), poolConfig{Quorum: 3, Hysteresis: 1}, quorumDown,
			"10.1.1.2:80/1 10.1.2.2:80/1 10.1.3.2:80/1", quorumDown, quorumNoEvent},
		{"hysteresis: 4 of quorum 3 regains it", members(true, true, true, true), poolConfig{Quorum: 3, Hysteresis: 1}, quorumDown,
			"10.1.1.2:80/1 10.1.2.2:80/1 10.1.3.2:80/1 10.1.4.2:80/1", quorumUp, quorumGained},
		{"live servers of weight 0 count nothing; starting down without sorry server is no event", []poolMember{{nat("10.1.1.2:80", 0), true, false}}, poolConfig{}, quorumUnknown,
			"10.1.1.2:80/0", quorumDown, quorumNoEvent},
		{"starting down with a sorry server is an event", members(false), poolConfig{Sorry: &sorry}, quorumUnknown,
			"10.9.9.9:80/1", quorumDown, quorumLost},
		{"starting needs quorum plus hysteresis", members(true, true), poolConfig{Quorum: 2, Hysteresis: 1}, quorumUnknown,
			"10.1.1.2:80/1 10.1.2.2:80/1", quorumDown, quorumNoEvent},
		{"sorry server that is also a real server appears once", []poolMember{{nat("10.9.9.9:80", 4), false, true}}, poolConfig{Sorry: &sorry}, quorumUp,
			"10.9.9.9:80/1", quorumDown, quorumLost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st, ev := ipvsPool(tc.m, tc.cfg, tc.prev)
			if destList(got) != tc.want || st != tc.wantState || ev != tc.wantEv {
				t.Errorf("got %q %v %v, want %q %v %v", destList(got), st, ev, tc.want, tc.wantState, tc.wantEv)
			}
		})
	}
}

// On a kernel without ip_vs (this build machine's), openIPVS says so.
func TestIPVSNoFamily(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	k, err := openIPVS()
	if err == nil {
		k.Close()
		t.Fatal("openIPVS succeeded on a kernel without /proc/net/ip_vs")
	}
	if !errors.Is(err, errNoIPVS) {
		t.Fatalf("err = %v, want %v", err, errNoIPVS)
	}
}

// TestIPVSVM boots the guest and runs the IPVS tests there when asked:
// VIPD_IPVS_VM=1 go test -run TestIPVSVM . (CI runs scripts/test-ipvs.sh).
func TestIPVSVM(t *testing.T) {
	if os.Getenv("VIPD_IPVS_VM") == "" || os.Getenv("VIPD_IPVS_GUEST") != "" {
		t.Skip("boots a QEMU guest; set VIPD_IPVS_VM=1 (or run scripts/test-ipvs.sh)")
	}
	cmd := exec.Command("scripts/test-ipvs.sh")
	cmd.Env = append(os.Environ(), "VIPD_IPVS_VM=")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("scripts/test-ipvs.sh: %v", err)
	}
}

// The manager end to end on the fake kernel: start with quorum events,
// failures falling back to the sorry server below quorum, recovery, stop
// with omega.
func TestIPVSManager(t *testing.T) {
	k := newFakeIPVS()
	k.CreateService(tcpSvc("192.0.2.9:22", "wlc"))
	sorry := nat("10.9.9.9:80", 0)
	web := &ipvsVirtualServer{
		// A virtual_server_group: two addresses sharing one pool.
		Services: []ipvsService{tcpSvc("10.0.0.1:80", "wrr"), tcpSvc("10.0.0.2:80", "wrr")},
		Pool:     poolConfig{Quorum: 2, Sorry: &sorry},
		Reals:    []poolMember{{Dest: nat("10.1.1.2:80", 1), Up: true}, {Dest: nat("10.1.2.2:80", 1), Up: true, Inhibit: true}},
		Omega:    true,
	}
	// alpha: real servers start down until their first check passes.
	dns := &ipvsVirtualServer{
		Services: []ipvsService{{Protocol: protoUDP, Addr: netip.MustParseAddr("10.0.0.1"), Port: 53}},
		Reals:    []poolMember{{Dest: nat("10.1.1.2:53", 1)}},
	}
	m, changes, err := newIPVSManager(k, []*ipvsVirtualServer{web, dns}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0] != (ipvsQuorumChange{web, quorumGained}) || dns.Quorum() != quorumDown {
		t.Errorf("start events: %v", changes)
	}
	want := `TCP 10.0.0.1:80 wrr
  -> 10.1.1.2:80 NAT 1
  -> 10.1.2.2:80 NAT 1
TCP 10.0.0.2:80 wrr
  -> 10.1.1.2:80 NAT 1
  -> 10.1.2.2:80 NAT 1
TCP 192.0.2.9:22 wlc
UDP 10.0.0.1:53 rr
`
	if got := ipvsTable(t, k); got != want {
		t.Errorf("table at start:\n%s\nwant:\n%s", got, want)
	}

	dns.Reals[0].Up = true
	if _, ev, err := m.Update(dns); err != nil || ev != quorumGained {
		t.Errorf("dns up: %v %v", ev, err)
	}
	web.Reals[1].Up = false // below quorum 2: the sorry server takes over
	ops, ev, err := m.Update(web)
	if err != nil || ev != quorumLost {
		t.Errorf("web down: %v %v", ev, err)
	}
	want = `TCP 10.0.0.1:80 wrr
  -> 10.1.2.2:80 NAT 0
  -> 10.9.9.9:80 NAT 1
TCP 10.0.0.2:80 wrr
  -> 10.1.2.2:80 NAT 0
  -> 10.9.9.9:80 NAT 1
TCP 192.0.2.9:22 wlc
UDP 10.0.0.1:53 rr
  -> 10.1.1.2:53 NAT 1
`
	if got := ipvsTable(t, k); got != want {
		t.Errorf("table below quorum (ops %v):\n%s\nwant:\n%s", ops, got, want)
	}
	web.Reals[1].Up = true
	if _, ev, err := m.Update(web); err != nil || ev != quorumGained || web.Quorum() != quorumUp {
		t.Errorf("web back: %v %v", ev, err)
	}
	if _, ev, err := m.Update(web); err != nil || ev != quorumNoEvent {
		t.Errorf("no change: %v %v", ev, err)
	}
	changes, err = m.Stop(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0] != (ipvsQuorumChange{web, quorumLost}) {
		t.Errorf("stop events: %v", changes)
	}
	if got, want := ipvsTable(t, k), "TCP 192.0.2.9:22 wlc\n"; got != want {
		t.Errorf("after stop: %q, want %q", got, want)
	}

	// lvs_flush clears what was there before.
	if _, _, err := newIPVSManager(k, nil, true); err != nil || len(k.svcs) != 0 {
		t.Errorf("flush: %v, left %v", err, k.svcs)
	}
}

// fuzzTable decodes bytes into a small IPVS table: each service takes 3
// bytes (address/port, scheduler, flags), then a count of destinations of 2
// bytes each (address, weight/method).
func fuzzTable(b []byte) []ipvsVirtual {
	var out []ipvsVirtual
	seen := map[ipvsKey]bool{}
	for len(b) >= 4 {
		s := ipvsService{
			Protocol:  []ipvsProtocol{protoTCP, protoUDP, protoSCTP}[b[0]%3],
			Addr:      netip.AddrFrom4([4]byte{10, 0, 0, b[0] >> 4}),
			Port:      uint16(b[0] & 3),
			Scheduler: ipvsSchedulers[int(b[1])%(len(ipvsSchedulers)-1)],
			Flags:     ipvsFlags(b[2]) & (svcOnePacket | svcSHFallback | svcSHPort),
		}
		if b[2]&0x80 != 0 {
			s.Timeout = uint32(b[2] & 0x70)
		}
		if b[2]&0x40 != 0 && b[2]&0x80 == 0 {
			s = ipvsService{FWMark: uint32(b[0]) + 1, Scheduler: s.Scheduler}
		}
		n := int(b[3] % 4)
		b = b[4:]
		v := ipvsVirtual{Service: s}
		dseen := map[ipvsDestKey]bool{}
		for ; n > 0 && len(b) >= 2; n-- {
			d := ipvsDest{Addr: netip.AddrFrom4([4]byte{10, 1, 0, b[0] % 8}), Port: 80, Weight: int(b[1] >> 2), Method: []ipvsMethod{methodNAT, methodDR, methodTUN, methodNAT}[b[1]&3]}
			b = b[2:]
			if !dseen[d.key()] {
				dseen[d.key()] = true
				v.Dests = append(v.Dests, d)
			}
		}
		if !seen[s.key()] {
			seen[s.key()] = true
			out = append(out, v)
		}
	}
	return out
}

// Whatever the kernel holds and whatever is asked, one Apply makes the
// desired services exactly as asked, leaves the others alone, and a second
// Apply has nothing to do.
func FuzzIPVSReconcile(f *testing.F) {
	f.Add([]byte{0x11, 0, 0, 2, 1, 4, 2, 8}, []byte{0x11, 1, 0x80, 1, 1, 9})
	f.Add([]byte{0x40, 3, 0x40, 0}, []byte{0x21, 2, 0x11, 3, 0, 1, 1, 2, 2, 3})
	f.Fuzz(func(t *testing.T, before, after []byte) {
		k := newFakeIPVS()
		cur, want := fuzzTable(before), fuzzTable(after)
		for _, v := range cur {
			k.CreateService(v.Service)
			for _, d := range v.Dests {
				k.CreateDest(v.Service, d)
			}
		}
		r := newIPVSReconciler(k)
		if _, err := r.Apply(want); err != nil {
			t.Fatal(err)
		}
		wantKeys := map[ipvsKey]bool{}
		for _, v := range want {
			wantKeys[v.Service.key()] = true
			ds, err := k.Dests(v.Service)
			if err != nil {
				t.Fatalf("%s missing: %v", v.Service, err)
			}
			if ops := ipvsDiff([]ipvsVirtual{{k.svcs[k.find(v.Service)], ds}}, []ipvsVirtual{v}, nil); len(ops) != 0 {
				t.Fatalf("%s not as asked: %v", v.Service, ops)
			}
			if len(ds) != len(v.Dests) {
				t.Fatalf("%s has %d real servers, want %d", v.Service, len(ds), len(v.Dests))
			}
		}
		for _, v := range cur {
			if !wantKeys[v.Service.key()] && k.find(v.Service) < 0 {
				t.Fatalf("foreign %s removed", v.Service)
			}
		}
		k.calls = nil
		if ops, err := r.Apply(want); err != nil || len(ops) != 0 || len(k.calls) != 0 {
			t.Fatalf("second apply: %v %v %v", ops, k.calls, err)
		}
		if err := r.Release(false); err != nil {
			t.Fatal(err)
		}
		for _, v := range want {
			if k.find(v.Service) >= 0 {
				t.Fatalf("%s not released", v.Service)
			}
		}
	})
}

func TestIPVSKeywords(t *testing.T) {
	if p, err := parseIPVSProtocol("udp"); err != nil || p != protoUDP {
		t.Errorf("udp: %v %v", p, err)
	}
	if _, err := parseIPVSProtocol("ICMP"); err == nil || !strings.Contains(err.Error(), `unknown protocol "ICMP"`) {
		t.Errorf("ICMP: %v", err)
	}
	if _, err := parseIPVSScheduler("twos"); err != nil {
		t.Errorf("twos is a valid name (the kernel may lack it): %v", err)
	}
	if _, err := parseIPVSScheduler("WRR"); err == nil {
		t.Errorf("WRR accepted; the kernel's names are lower case")
	}
	for _, tc := range []struct {
		kw, sched string
		want      ipvsFlags
		err       string
	}{
		{"ops", "rr", svcOnePacket, ""},
		{"hashed", "rr", 0, ""},
		{"sh-port", "sh", svcSHPort, ""},
		{"sh-fallback", "sh", svcSHFallback, ""},
		{"mh-port", "mh", svcMHPort, ""},
		{"mh-fallback", "mh", svcMHFallback, ""},
		{"flag-3", "rr", svcSched3, ""},
		{"sh-port", "rr", 0, `sh-port only applies to the sh scheduler, not "rr"`},
		{"mh-fallback", "sh", 0, "only applies to the mh scheduler"},
		{"fast", "rr", 0, `unknown virtual server flag "fast"`},
	} {
		f, err := parseIPVSFlag(tc.kw, tc.sched)
		if tc.err == "" && (err != nil || f != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseIPVSFlag(%q, %q) = %v, %v; want %v, %q", tc.kw, tc.sched, f, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		in   string
		want ipvsDest
		err  string
	}{
		{"NAT", ipvsDest{Method: methodNAT}, ""},
		{"DR", ipvsDest{Method: methodDR}, ""},
		{"TUN", ipvsDest{Method: methodTUN}, ""},
		{"TUN type gue port 6080 remcsum", ipvsDest{Method: methodTUN, Tunnel: tunnelGUE, TunnelPort: 6080, TunnelCsum: 2}, ""},
		{"TUN type gre csum", ipvsDest{Method: methodTUN, Tunnel: tunnelGRE, TunnelCsum: 1}, ""},
		{"", ipvsDest{}, "needs NAT, DR or TUN"},
		{"MASQ", ipvsDest{}, `unknown forwarding method "MASQ"`},
		{"DR type gue", ipvsDest{}, `DR takes no options, got "type gue"`},
		{"TUN type gue", ipvsDest{}, "gue needs a port"},
		{"TUN type ipip port 1", ipvsDest{}, "only applies to TUN type gue"},
		{"TUN type gue port 0", ipvsDest{}, `bad tunnel port "0"`},
		{"TUN type gue port", ipvsDest{}, "TUN port needs a value"},
		{"TUN type vxlan", ipvsDest{}, `unknown tunnel type "vxlan"`},
		{"TUN csum", ipvsDest{}, "checksum options only apply"},
		{"TUN type gre remcsum", ipvsDest{}, "remcsum only applies"},
		{"TUN fast", ipvsDest{}, `unknown TUN option "fast"`},
	} {
		d, err := parseLVSMethod(strings.Fields(tc.in))
		if tc.err == "" && (err != nil || d != tc.want) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseLVSMethod(%q) = %+v, %v; want %+v, %q", tc.in, d, err, tc.want, tc.err)
		}
	}
	for _, tc := range []struct {
		in   string
		bits int
		fam  ipvsFamily
		err  string
	}{
		{"255.255.255.0", 24, familyINET, ""},
		{"255.255.255.255", 32, familyINET, ""},
		{"128.0.0.0", 1, familyINET, ""},
		{"64", 64, familyINET6, ""},
		{"255.0.255.0", 0, 0, "not a solid netmask"},
		{"0.0.0.0", 0, 0, "not a solid netmask"},
		{"255.255.256.0", 0, 0, "bad IPv4"},
		{"129", 0, 0, "bad IPv6"},
		{"0", 0, 0, "bad IPv6"},
		{"ffff::", 0, 0, "bad IPv6"},
	} {
		b, f, err := parsePersistenceGranularity(tc.in)
		if tc.err == "" && (err != nil || b != tc.bits || f != tc.fam) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parsePersistenceGranularity(%q) = %d, %v, %v; want %d %v %q", tc.in, b, f, err, tc.bits, tc.fam, tc.err)
		}
	}
}

// The keyword parsers never panic, and what they accept is valid.
func FuzzIPVSKeywords(f *testing.F) {
	for _, s := range []string{"TUN type gue port 6080 csum", "NAT", "255.255.255.0", "64", "sh-port", "TUN port 99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := parseLVSMethod(strings.Fields(s)); err == nil {
			d.Addr = netip.MustParseAddr("10.0.0.1")
			if err := d.validate(); err != nil {
				t.Fatalf("parseLVSMethod(%q) accepted an invalid dest: %v", s, err)
			}
		}
		if b, fam, err := parsePersistenceGranularity(s); err == nil {
			svc := ipvsService{Protocol: protoTCP, Addr: netip.MustParseAddr("10.0.0.1"), Netmask: b}
			if fam == familyINET6 {
				svc.Addr = netip.MustParseAddr("::1")
			}
			if err := svc.validate(); err != nil {
				t.Fatalf("granularity %q: %v", s, err)
			}
		}
		parseIPVSProtocol(s)
		parseIPVSFlag(s, "sh")
	})
}

// The no-op sync the daemon does on every health change, on the fake
// kernel: 1000 services x 10 real servers.
func BenchmarkIPVSDiffNoop(b *testing.B) {
	var table []ipvsVirtual
	for i := range 1000 {
		v := ipvsVirtual{Service: tcpSvc(fmt.Sprintf("10.9.%d.%d:80", i>>8, i&255), "wrr")}
		for j := range 10 {
			v.Dests = append(v.Dests, nat(fmt.Sprintf("10.8.%d.2:80", j), 1))
		}
		table = append(table, v)
	}
	b.ResetTimer()
	for range b.N {
		if ops := ipvsDiff(table, table, nil); len(ops) != 0 {
			b.Fatal(ops)
		}
	}
}
