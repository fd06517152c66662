package main

// Reload on the in-process daemon over a fake system (track_daemon_test.go):
// what a reload must release, keep and re-announce.

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// reloadTo loads conf and applies it to d, as SIGHUP does.
func reloadTo(t *testing.T, d *daemon, conf string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reloaded.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cfg, diags, err := loadConfig(path, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	d.apply(cfg)
}

// TestReloadReleasesSyncGroupFault: a sync group in FAULT because a
// member's tracked interface is down; the reload drops that
// track_interface. Nothing faults the group any more, so its members must
// leave FAULT (keepalived's vrrp_sync_group recovery to BACKUP, then
// MASTER on this silent LAN), not stay held by the old group's command.
func TestReloadReleasesSyncGroupFault(t *testing.T) {
	conf := func(track string) string {
		return `
vrrp_sync_group G {
	group {
		VI_1
		VI_2
	}
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.101/24
	}
` + track + `
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 2
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.102/24
	}
}`
	}
	d, fs, tr, stop := runDaemon(t, conf("track_interface {\n eth1\n}"))
	defer stop()
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
	fs.link("eth1", false)
	tr.wait(t, "VI_1", stateFault)
	tr.wait(t, "VI_2", stateFault)
	reloadTo(t, d, conf(""))
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
}

// loadTest loads conf from a file in a temporary directory.
func loadTest(t *testing.T, conf string) *Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cfg, diags, err := loadConfig(path, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	return cfg
}

// TestReloadKeepsGARPRefreshTargets: a master with garp_master_refresh
// gains an address by reload. The new address is announced at once, and
// the periodic refresh still covers every address (keepalived's
// vrrp_gratuitous_arp_refresh: all of the instance's VIPs), not only the
// one the reload added.
func TestReloadKeepsGARPRefreshTargets(t *testing.T) {
	conf := func(vips string) string {
		return `
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 1
	priority 100
	garp_master_refresh 60
	virtual_ipaddress {
` + vips + `
	}
}`
	}
	cfg0 := loadTest(t, conf("192.0.2.101/24"))
	cfg1 := loadTest(t, conf("192.0.2.101/24\n192.0.2.102/24"))
	fs := &fakeSys{}
	sys := fs.system()
	var rec recAnnouncer
	sys.announcer = func(*net.Interface) (announcer, error) { return &rec, nil }
	d := newDaemon(zerolog.New(zerolog.NewTestWriter(t)), cfg0, sys)
	r := newRunner(d, cfg0.Instances[0])
	if err := r.setup(); err != nil {
		t.Fatal(err)
	}
	defer r.shutdown()
	now := time.Now()
	r.exec(r.m.Step(event{Kind: evStartup}, now))
	now = r.m.Deadline()
	r.exec(r.m.Step(event{Kind: evTimer}, now))
	if r.m.State() != stateMaster {
		t.Fatalf("state %s after Master_Down_Timer, want MASTER", r.m.State())
	}
	now = drainGARP(r.garp, now)
	if err := r.reconfigure(cfg1.Instances[0], now); err != nil {
		t.Fatal(err)
	}
	rec.sent = nil
	r.commitDels(nil)
	r.commitAdds(now, nil)
	if !slices.Contains(rec.sent, netip.MustParseAddr("192.0.2.102")) {
		t.Errorf("the added address was not announced at the reload: %v", rec.sent)
	}
	now = drainGARP(r.garp, now)
	send, _ := r.garp.Due(now.Add(61 * time.Second))
	for _, a := range []string{"192.0.2.101", "192.0.2.102"} {
		if !slices.ContainsFunc(send, func(g garpTarget) bool { return g.Addr == netip.MustParseAddr(a) }) {
			t.Errorf("garp_master_refresh after the reload does not announce %s: %v", a, send)
		}
	}
}

// recAnnouncer records the addresses it announces.
type recAnnouncer struct{ sent []netip.Addr }

func (a *recAnnouncer) Announce(ip netip.Addr) error { a.sent = append(a.sent, ip); return nil }
func (a *recAnnouncer) Close() error                 { return nil }

// drainGARP runs s's announcements due within 30 s of now (the first
// rounds and garp_master_delay's second burst, not the refresh) and
// returns when the last was due.
func drainGARP(s *garpSched, now time.Time) time.Time {
	end := now.Add(30 * time.Second)
	for {
		_, next := s.Due(now)
		if next.IsZero() || next.After(end) {
			return now
		}
		now = next
	}
}

// TestReloadRunnerLookupRace: tracking and sync groups find an instance's
// runner by name (runnerNamed) from their own goroutines while a reload
// hands the runners their new configuration. Run with -race.
func TestReloadRunnerLookupRace(t *testing.T) {
	conf := func(prio int) string {
		return `
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 0.1
	priority ` + itoa(prio) + `
	virtual_ipaddress {
		192.0.2.101/24
	}
}`
	}
	d, _, tr, stop := runDaemon(t, conf(100))
	defer stop()
	tr.wait(t, "VI_1", stateMaster)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 10000; i++ {
			if d.runnerNamed("VI_1") == nil {
				t.Error("VI_1 has no runner")
				return
			}
		}
	}()
	for i := 0; i < 10; i++ {
		reloadTo(t, d, conf(100+i%2))
	}
	<-done
}

// TestReloadAfterStop: a reload that comes in as the daemon stops (`vipd
// reload` on the control socket racing SIGTERM) is refused once the
// runners are stopped: before, it waited for ever on a stopped runner's
// answer, or started new instances that nothing would stop.
func TestReloadAfterStop(t *testing.T) {
	conf := `
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.101/24
	}
}`
	d, _, tr, stop := runDaemon(t, conf)
	tr.wait(t, "VI_1", stateMaster)
	stop()
	cfg := loadTest(t, conf)
	done := make(chan error, 1)
	go func() { done <- d.apply(cfg) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a reload after the stop was applied")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a reload after the stop never returned")
	}
}
