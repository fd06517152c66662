package main

// The daemon with tracking, in process, over a fake system: no sockets,
// no root, the real runners, tracker, sync groups and notifier.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// silentConn is an advertConn on a LAN with no one else: writes vanish,
// reads block until Close.
type silentConn struct {
	once   sync.Once
	closed chan struct{}
}

func (c *silentConn) WriteAdvert(msg []byte, dst netip.Addr) error { return nil }
func (c *silentConn) ReadAdvert(buf []byte) (int, frameMeta, error) {
	<-c.closed
	return 0, frameMeta{}, net.ErrClosed
}
func (c *silentConn) Close() error { c.once.Do(func() { close(c.closed) }); return nil }

type nopAnnouncer struct{}

func (nopAnnouncer) Announce(netip.Addr) error { return nil }
func (nopAnnouncer) Close() error              { return nil }

// fakeSys is a system whose link watchers the test drives.
type fakeSys struct {
	mu       sync.Mutex
	watchers []*fakeLinks
	names    [][]string
	addrs    fakeAddrs
}

func (f *fakeSys) system() *system {
	return &system{
		listenMulticast: func(*net.Interface, mcastConfig) (advertConn, error) {
			return &silentConn{closed: make(chan struct{})}, nil
		},
		listenUnicast: func(netip.Addr) (advertConn, error) { return &silentConn{closed: make(chan struct{})}, nil },
		addrs:         &f.addrs,
		announcer:     func(*net.Interface) (announcer, error) { return nopAnnouncer{}, nil },
		watchLinks: func(names []string) (linkWatcher, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			w := newFakeLinks()
			f.watchers = append(f.watchers, w)
			f.names = append(f.names, names)
			return w, nil
		},
		interfaceByName: func(name string) (*net.Interface, error) {
			return &net.Interface{Name: name, Index: 2, MTU: 1500, Flags: net.FlagUp | net.FlagRunning | net.FlagMulticast}, nil
		},
		primaryAddr: func(*net.Interface, bool) (netip.Addr, error) { return netip.MustParseAddr("192.0.2.1"), nil },
	}
}

// link reports name up or down to every watcher that watches it.
func (f *fakeSys) link(name string, up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, w := range f.watchers {
		if slices.Contains(f.names[i], name) {
			w.Set(name, 3, up)
		}
	}
}

// transitions collects the daemon's state changes per instance.
type transitions struct {
	mu  sync.Mutex
	evs []instanceEvent
}

func (tr *transitions) add(ev instanceEvent) {
	if !ev.Transition {
		return
	}
	tr.mu.Lock()
	tr.evs = append(tr.evs, ev)
	tr.mu.Unlock()
}

// wait waits for instance to reach st (its latest transition).
func (tr *transitions) wait(t *testing.T, instance string, st state) instanceEvent {
	t.Helper()
	var last instanceEvent
	ok := pollUntil(10*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		for i := len(tr.evs) - 1; i >= 0; i-- {
			if tr.evs[i].Instance == instance {
				last = tr.evs[i]
				return last.To == st
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("%s never reached %s (last: %s -> %s, %s)", instance, st, last.From, last.To, last.Reason)
	}
	return last
}

func (tr *transitions) states(instance string) []state {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []state
	for _, ev := range tr.evs {
		if ev.Instance == instance {
			out = append(out, ev.To)
		}
	}
	return out
}

func runDaemon(t *testing.T, conf string) (*daemon, *fakeSys, *transitions, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cfg, diags, err := loadConfig(path, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	fs := &fakeSys{}
	d := newDaemon(zerolog.New(zerolog.NewTestWriter(t)), cfg, fs.system())
	var tr transitions
	d.subscribe(tr.add)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	return d, fs, &tr, stop
}

// TestDaemonTracking runs one instance that tracks an interface (weight
// 0), a file (weight -10) and ignores its own interface
// (dont_track_primary): the interface going down is FAULT with the
// tracking reason and the VIP removed, back up it is MASTER again, and the
// file lowers the advertised priority at once.
func TestDaemonTracking(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "prio")
	d, fs, tr, stop := runDaemon(t, `
vrrp_track_file f {
	file `+file+`
	weight -10
	init_file 0
}
vrrp_instance VI_1 {
	interface eth0
	dont_track_primary
	virtual_router_id 9
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.100/24
	}
	track_interface {
		eth1
	}
	track_file {
		f
	}
}`)
	defer stop()
	vip := toVIP(d.cfg.Instances[0].VIPs[0], "eth0")
	tr.wait(t, "VI_1", stateMaster)
	if !fs.addrs.Has(vip) {
		t.Fatal("MASTER without its VIP")
	}
	fs.link("eth0", false) // dont_track_primary: ignored
	fs.link("eth1", false)
	if ev := tr.wait(t, "VI_1", stateFault); ev.Reason != reasonTrackFault {
		t.Errorf("FAULT because of %s, want %s", ev.Reason, reasonTrackFault)
	}
	if fs.addrs.Has(vip) {
		t.Error("FAULT kept the VIP")
	}
	fs.link("eth1", true)
	tr.wait(t, "VI_1", stateMaster)
	os.WriteFile(file, []byte("3\n"), 0o644)
	r := d.runners[0]
	if !pollUntil(5*time.Second, func() bool { return r.snapshot().Priority == 70 }) {
		t.Errorf("priority %d after the file said 3 (weight -10), want 70", r.snapshot().Priority)
	}
	if got := tr.states("VI_1"); !slices.Equal(got, []state{stateBackup, stateMaster, stateFault, stateBackup, stateMaster}) {
		t.Errorf("transitions %v", got)
	}
}

// TestDaemonSyncGroup runs a sync group of two instances: they become
// MASTER together once both are ready, a tracked interface of one member
// failing puts both in FAULT, and when it comes back both return.
func TestDaemonSyncGroup(t *testing.T) {
	_, fs, tr, stop := runDaemon(t, `
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
	track_interface {
		eth1 weight -50
	}
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 2
	version 3
	advert_int 0.5
	priority 100
	virtual_ipaddress {
		192.0.2.102/24
	}
}`)
	// VI_1's Master_Down_Timer fires first, but it waits for VI_2's
	// (keepalived's vrrp_sync_can_goto_master): the group moves both.
	if ev := tr.wait(t, "VI_1", stateMaster); ev.Reason != reasonForced {
		t.Errorf("VI_1 became MASTER because of %s, not with its group", ev.Reason)
	}
	tr.wait(t, "VI_2", stateMaster)
	fs.link("eth1", false) // weight ignored in a sync group: FAULT
	tr.wait(t, "VI_1", stateFault)
	if ev := tr.wait(t, "VI_2", stateFault); ev.Reason != reasonForced {
		t.Errorf("VI_2 FAULT because of %s, want forced by the group", ev.Reason)
	}
	fs.link("eth1", true)
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
	stop()
	for _, name := range []string{"VI_1", "VI_2"} {
		if got := tr.states(name); got[len(got)-1] != stateStop {
			t.Errorf("%s ended in %v", name, got)
		}
	}
}

// TestDaemonReloadTracking reloads a configuration that adds a track_file
// to a running instance and removes another: the kept instance takes the
// new tracking at once, the removed one reports DELETED and runs
// notify_deleted instead of notify_stop.
func TestDaemonReloadTracking(t *testing.T) {
	dir := t.TempDir()
	rec, out := recorder(t, dir)
	file := filepath.Join(dir, "prio")
	os.WriteFile(file, []byte("3\n"), 0o644)
	inst := func(name string, vrid int, extra string) string {
		return `
vrrp_instance ` + name + ` {
	interface eth0
	virtual_router_id ` + itoa(vrid) + `
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.` + itoa(100+vrid) + `/24
	}
	notify_stop "` + rec + ` stop"
	notify_deleted "` + rec + ` deleted"
	notify ` + rec + `
` + extra + `
}`
	}
	// The daemon's parts, driven from this goroutine as run() and a SIGHUP
	// would drive them from its own.
	path0 := filepath.Join(t.TempDir(), "keepalived.conf")
	os.WriteFile(path0, []byte(inst("VI_1", 1, "")+inst("VI_2", 2, "")), 0o644)
	cfg0, diags, err := loadConfig(path0, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	fs := &fakeSys{}
	d := newDaemon(zerolog.New(zerolog.NewTestWriter(t)), cfg0, fs.system())
	tr := &transitions{}
	d.subscribe(tr.add)
	x, err := d.startTracking()
	if err != nil {
		t.Fatal(err)
	}
	for _, ic := range cfg0.Instances {
		d.startRunner(newRunner(d, ic))
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		x.beforeStop()
		d.mu.Lock()
		rs := slices.Clone(d.runners)
		d.mu.Unlock()
		for _, r := range rs {
			r.stop()
		}
		d.wg.Wait()
		x.afterStop()
	}
	defer stop()
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
	path := filepath.Join(t.TempDir(), "reloaded.conf")
	os.WriteFile(path, []byte(`
vrrp_track_file f {
	file `+file+`
	weight -10
}`+inst("VI_1", 1, "track_file {\n f\n}")), 0o644)
	cfg, diags, err := loadConfig(path, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	d.apply(cfg)
	tr.wait(t, "VI_2", stateStop)
	r := d.runnerNamed("VI_1")
	if r == nil || !pollUntil(5*time.Second, func() bool { return r.snapshot().Priority == 70 }) {
		t.Fatalf("VI_1 after the reload: priority %d, want 70 (file 3 x weight -10)", r.snapshot().Priority)
	}
	stop()
	// VI_2's scripts run in order, one at a time; VI_1's notify_stop at the
	// end may interleave with them.
	var vi2 []string
	for _, l := range readLines(t, out) {
		if strings.Contains(l, "VI_2") || strings.HasSuffix(l, "deleted") {
			vi2 = append(vi2, l)
		}
	}
	want := []string{"start INSTANCE VI_2 BACKUP 100", "end INSTANCE VI_2 BACKUP 100", "start INSTANCE VI_2 MASTER 100", "end INSTANCE VI_2 MASTER 100",
		"start deleted", "end deleted", "start INSTANCE VI_2 DELETED 100", "end INSTANCE VI_2 DELETED 100"}
	if !slices.Equal(vi2, want) {
		t.Errorf("notifications of the removed VI_2:\n got %q\nwant %q", vi2, want)
	}
	if stops := slices.Index(readLines(t, out), "start stop"); stops < 0 {
		t.Error("VI_1's notify_stop did not run at the end")
	}
}

// TestDaemonHoldsForScripts checks keepalived's init state: an instance
// tracking a weight-0 vrrp_script stays in INIT until the script's first
// result, so a service down at start gives INIT -> FAULT, not a BACKUP
// (and its notify) first.
func TestDaemonHoldsForScripts(t *testing.T) {
	_, _, tr, stop := runDaemon(t, `
vrrp_script down {
	script "/bin/sh -c 'sleep 0.3; exit 1'"
	interval 1
}
vrrp_script up {
	script "/bin/sh -c 'sleep 0.3; exit 0'"
	interval 1
}
vrrp_instance VI_DOWN {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.101/24
	}
	track_script {
		down
	}
}
vrrp_instance VI_UP {
	interface eth0
	virtual_router_id 2
	version 3
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.102/24
	}
	track_script {
		up
	}
}`)
	defer stop()
	tr.wait(t, "VI_DOWN", stateFault)
	tr.wait(t, "VI_UP", stateMaster)
	if got := tr.states("VI_DOWN"); !slices.Equal(got, []state{stateFault}) {
		t.Errorf("VI_DOWN went %v, want straight to FAULT", got)
	}
	if got := tr.states("VI_UP"); !slices.Equal(got, []state{stateBackup, stateMaster}) {
		t.Errorf("VI_UP went %v", got)
	}
}
