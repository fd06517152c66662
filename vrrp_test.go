package main

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

var fsmT0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var (
	fsmOurAddr   = netip.MustParseAddr("192.0.2.10")
	fsmLowerAddr = netip.MustParseAddr("192.0.2.5")
	fsmUpperAddr = netip.MustParseAddr("192.0.2.20")
	fsmVIP       = netip.MustParseAddr("192.0.2.100")
)

// fsmConfig is a version 3 IPv4 instance at priority prio, 1 s interval.
func fsmConfig(prio uint8) instanceConfig {
	return instanceConfig{
		Name: "VI_1", VRID: 51, Version: 3, Priority: prio, Interval: 100,
		Primary: fsmOurAddr, VIPs: []netip.Addr{fsmVIP},
	}
}

func fsmInstance(t testing.TB, c instanceConfig) *instance {
	t.Helper()
	i, err := newInstance(c)
	if err != nil {
		t.Fatalf("newInstance: %v", err)
	}
	return i
}

// fsmBackup returns an instance that started at fsmT0 and is in BACKUP.
func fsmBackup(t testing.TB, c instanceConfig) *instance {
	t.Helper()
	i := fsmInstance(t, c)
	i.Step(event{Kind: evStartup}, fsmT0)
	if i.State() != stateBackup {
		t.Fatalf("after startup: %s, want BACKUP", i.State())
	}
	return i
}

// fsmMaster returns an instance that became master at the returned time.
func fsmMaster(t testing.TB, c instanceConfig) (*instance, time.Time) {
	t.Helper()
	i := fsmBackup(t, c)
	now := i.Deadline()
	i.Step(event{Kind: evTimer}, now)
	if i.State() != stateMaster {
		t.Fatalf("after down timer: %s, want MASTER", i.State())
	}
	return i, now
}

func fsmAdvert(src netip.Addr, prio uint8, intervalCS uint16) event {
	return event{Kind: evAdvert, Src: src, Advert: &Advert{
		Version: 3, Type: 1, VRID: 51, Priority: prio, Count: 1, Interval: intervalCS,
		Addresses: []netip.Addr{fsmVIP},
	}}
}

// fsmRender is the actions as strings, log lines left out unless withLogs.
func fsmRender(acts []action, withLogs bool) []string {
	var out []string
	for _, a := range acts {
		if a.Kind == actLog && !withLogs {
			continue
		}
		out = append(out, a.String())
	}
	return out
}

func fsmWant(t *testing.T, got []action, want ...string) {
	t.Helper()
	if g := fsmRender(got, false); !slices.Equal(g, want) {
		t.Errorf("actions:\n got  %q\n want %q", g, want)
	}
}

func fsmHasLog(acts []action, k protoLogKind) bool {
	for _, a := range acts {
		if a.Kind == actLog && a.Log.Kind == k {
			return true
		}
	}
	return false
}

func TestStateString(t *testing.T) {
	// The daemon logs keepalived's "(VI_1) Entering MASTER STATE".
	for s, want := range map[state]string{stateInit: "INIT", stateBackup: "BACKUP", stateMaster: "MASTER", stateFault: "FAULT", stateStop: "STOP", 9: "STATE(9)"} {
		if got := s.String(); got != want {
			t.Errorf("%d: %q, want %q", s, got, want)
		}
	}
}

// RFC 3768 section 6.1 (v2) and RFC 5798 section 6.1 (v3): Skew_Time and
// Master_Down_Interval.
func TestSkewAndMasterDownInterval(t *testing.T) {
	tests := []struct {
		name     string
		version  uint8
		prio     uint8
		cs       uint16
		adverts  int
		skew     time.Duration
		downIntv time.Duration
	}{
		// RFC 3768 6.1: (256-100)/256 s, whatever the interval.
		{"v2 prio 100 1s", 2, 100, 100, 3, 609375 * time.Microsecond, 3*time.Second + 609375*time.Microsecond},
		{"v2 prio 100 5s skew does not scale", 2, 100, 500, 3, 609375 * time.Microsecond, 15*time.Second + 609375*time.Microsecond},
		{"v2 prio 254", 2, 254, 100, 3, 7812500 * time.Nanosecond, 3*time.Second + 7812500*time.Nanosecond},
		{"v2 prio 1", 2, 1, 100, 3, 996093750 * time.Nanosecond, 3*time.Second + 996093750*time.Nanosecond},
		// RFC 5798 6.1: ((256-Priority) * Master_Adver_Interval)/256 cs.
		{"v3 prio 100 100cs", 3, 100, 100, 3, 609375 * time.Microsecond, 3*time.Second + 609375*time.Microsecond},
		{"v3 prio 100 50cs scales", 3, 100, 50, 3, 304687500 * time.Nanosecond, 1500*time.Millisecond + 304687500*time.Nanosecond},
		{"v3 prio 255 1cs", 3, 255, 1, 3, 39062 * time.Nanosecond, 30*time.Millisecond + 39062*time.Nanosecond},
		{"v3 prio 1 4095cs", 3, 1, 4095, 3, time.Duration(255 * 4095 * 10_000_000 / 256), 3*40950*time.Millisecond + time.Duration(255*4095*10_000_000/256)},
		// keepalived's down_timer_adverts replaces the 3.
		{"v3 down_timer_adverts 5", 3, 100, 100, 5, 609375 * time.Microsecond, 5*time.Second + 609375*time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := skewTime(tt.version, tt.prio, tt.cs); got != tt.skew {
				t.Errorf("skew %v, want %v", got, tt.skew)
			}
			if got := masterDownInterval(tt.version, tt.prio, tt.cs, tt.adverts); got != tt.downIntv {
				t.Errorf("Master_Down_Interval %v, want %v", got, tt.downIntv)
			}
		})
	}
}

// RFC 3768 section 5.3.7 (v2: whole seconds, 1 byte) and RFC 5798 section
// 5.2.7 (v3: 12 bits of centiseconds); keepalived's limits for the rest.
func TestConfigCheck(t *testing.T) {
	v6 := netip.MustParseAddr("fe80::1")
	tests := []struct {
		name string
		mod  func(c *instanceConfig)
		err  string // substring; empty: valid
	}{
		{"defaults", func(c *instanceConfig) { c.Interval = 0 }, ""},
		{"v2 1s", func(c *instanceConfig) { c.Version = 2; c.Interval = 100 }, ""},
		{"v2 255s", func(c *instanceConfig) { c.Version = 2; c.Interval = 25500 }, ""},
		{"v2 256s", func(c *instanceConfig) { c.Version = 2; c.Interval = 25600 }, "whole seconds 1..255"},
		{"v2 0.5s", func(c *instanceConfig) { c.Version = 2; c.Interval = 50 }, "whole seconds 1..255"},
		{"v2 1.5s", func(c *instanceConfig) { c.Version = 2; c.Interval = 150 }, "whole seconds 1..255"},
		{"v3 1cs", func(c *instanceConfig) { c.Interval = 1 }, ""},
		{"v3 4095cs", func(c *instanceConfig) { c.Interval = 4095 }, ""},
		{"v3 4096cs", func(c *instanceConfig) { c.Interval = 4096 }, "0.01..40.95"},
		{"v2 ipv6", func(c *instanceConfig) { c.Version = 2; c.IPv6 = true; c.Primary = v6; c.VIPs = nil }, "no IPv6"},
		{"v4", func(c *instanceConfig) { c.Version = 4 }, "not 2 or 3"},
		{"vrid 0", func(c *instanceConfig) { c.VRID = 0 }, "virtual_router_id"},
		{"priority 0", func(c *instanceConfig) { c.Priority = 0 }, "priority"},
		{"down adverts 101", func(c *instanceConfig) { c.DownAdverts = 101 }, "down_timer_adverts"},
		{"preempt delay", func(c *instanceConfig) { c.PreemptDelay = 1001 * time.Second }, "preempt_delay"},
		{"no primary", func(c *instanceConfig) { c.Primary = netip.Addr{} }, "no primary"},
		{"v6 primary in v4", func(c *instanceConfig) { c.Primary = v6 }, "family"},
		{"v6 fsmVIP in v4", func(c *instanceConfig) { c.VIPs = []netip.Addr{v6} }, "family"},
		{"v6", func(c *instanceConfig) { c.IPv6 = true; c.Primary = v6; c.VIPs = []netip.Addr{v6} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fsmConfig(100)
			tt.mod(&c)
			err := c.check()
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("no error, want %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("error %q, want %q", err, tt.err)
			}
			if err == nil && (c.Interval == 0 || c.DownAdverts != 3) {
				t.Errorf("defaults not filled: interval %d, down adverts %d", c.Interval, c.DownAdverts)
			}
		})
	}
}

// keepalived's effective priority: configured + weights, clamped to
// 1..254; the owner (255) is never changed (vrrp_track.c).
func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		conf uint8
		w    int
		want uint8
	}{
		{100, 0, 100}, {100, 10, 110}, {100, -20, 80}, {100, -200, 1}, {250, 10, 254},
		{254, 1, 254}, {1, -1, 1}, {255, -50, 255}, {255, 10, 255}, {100, 1000, 254},
	}
	for _, tt := range tests {
		if got := effectivePriority(tt.conf, tt.w); got != tt.want {
			t.Errorf("effectivePriority(%d, %d) = %d, want %d", tt.conf, tt.w, got, tt.want)
		}
	}
}

// RFC 5798 section 6.4.1: Startup.
func TestStartup(t *testing.T) {
	t.Run("owner becomes master at once", func(t *testing.T) {
		i := fsmInstance(t, fsmConfig(255))
		acts := i.Step(event{Kind: evStartup}, fsmT0)
		fsmWant(t, acts, "add-vips [192.0.2.100]", "send-advert prio=255", "garp [192.0.2.100]", "notify INIT->MASTER (address owner)")
		if d := i.Deadline(); !d.Equal(fsmT0.Add(time.Second)) {
			t.Errorf("Adver_Timer %v after start, want 1s", d.Sub(fsmT0))
		}
	})
	t.Run("backup waits Master_Down_Interval", func(t *testing.T) {
		i := fsmInstance(t, fsmConfig(100))
		acts := i.Step(event{Kind: evStartup}, fsmT0)
		fsmWant(t, acts, "notify INIT->BACKUP (startup)")
		if got, want := i.Deadline().Sub(fsmT0), 3*time.Second+609375*time.Microsecond; got != want {
			t.Errorf("Master_Down_Timer %v, want %v", got, want)
		}
	})
	t.Run("faulted at startup", func(t *testing.T) {
		i := fsmInstance(t, fsmConfig(255))
		i.Step(event{Kind: evLinkDown}, fsmT0)
		if i.State() != stateInit {
			t.Fatalf("link down before startup moved to %s", i.State())
		}
		acts := i.Step(event{Kind: evStartup}, fsmT0)
		fsmWant(t, acts, "notify INIT->FAULT (interface down)")
		if !i.Deadline().IsZero() {
			t.Errorf("FAULT has a deadline %v", i.Deadline())
		}
	})
	t.Run("second startup ignored", func(t *testing.T) {
		i := fsmBackup(t, fsmConfig(100))
		if acts := i.Step(event{Kind: evStartup}, fsmT0.Add(time.Second)); len(acts) != 0 {
			t.Errorf("actions %v", fsmRender(acts, true))
		}
	})
}

// RFC 5798 section 6.4.2: a backup whose Master_Down_Timer fires becomes
// master; an early timer event does nothing.
func TestBackupTimer(t *testing.T) {
	i := fsmBackup(t, fsmConfig(100))
	d := i.Deadline()
	if acts := i.Step(event{Kind: evTimer}, d.Add(-time.Nanosecond)); len(acts) != 0 || i.State() != stateBackup {
		t.Fatalf("early timer: %s %v", i.State(), fsmRender(acts, true))
	}
	acts := i.Step(event{Kind: evTimer}, d)
	fsmWant(t, acts, "add-vips [192.0.2.100]", "send-advert prio=100", "garp [192.0.2.100]", "notify BACKUP->MASTER (master down)")
	if got := i.Deadline().Sub(d); got != time.Second {
		t.Errorf("Adver_Timer %v, want 1s", got)
	}
	if m, p := i.Master(); m != fsmOurAddr || p != 100 {
		t.Errorf("Master() = %s %d", m, p)
	}
}

// RFC 5798 section 6.4.2, "If an ADVERTISEMENT is received" in Backup.
func TestBackupAdvert(t *testing.T) {
	now := fsmT0.Add(time.Second)
	mdi := 3*time.Second + 609375*time.Microsecond // prio 100, 1 s
	tests := []struct {
		name      string
		nopreempt bool
		prio      uint8
		wantDown  time.Duration // from now; 0: unchanged
	}{
		{"higher resets Master_Down_Timer", false, 200, mdi},
		{"equal resets Master_Down_Timer", false, 100, mdi},
		{"lower with preempt is discarded", false, 50, 0},
		{"lower with nopreempt resets", true, 50, mdi},
		// "If the Priority in the ADVERTISEMENT is zero, then: Set the
		// Master_Down_Timer to Skew_Time".
		{"priority 0 sets Skew_Time", false, 0, 609375 * time.Microsecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fsmConfig(100)
			c.NoPreempt = tt.nopreempt
			i := fsmBackup(t, c)
			before := i.Deadline()
			acts := i.Step(fsmAdvert(fsmUpperAddr, tt.prio, 100), now)
			fsmWant(t, acts)
			want := before
			if tt.wantDown != 0 {
				want = now.Add(tt.wantDown)
			}
			if !i.Deadline().Equal(want) {
				t.Errorf("Master_Down_Timer at %v, want %v", i.Deadline().Sub(fsmT0), want.Sub(fsmT0))
			}
			if i.State() != stateBackup {
				t.Errorf("state %s", i.State())
			}
		})
	}
}

// RFC 5798 section 6.4.2: a version 3 backup sets Master_Adver_Interval to
// the advert's interval and recomputes Skew_Time and Master_Down_Interval;
// version 2 has a fixed interval (mismatches are dropped in validation).
func TestBackupAdoptsInterval(t *testing.T) {
	i := fsmBackup(t, fsmConfig(100))
	now := fsmT0.Add(time.Second)
	acts := i.Step(fsmAdvert(fsmUpperAddr, 200, 50), now)
	fsmWant(t, acts, "adopt-interval 50cs")
	if !fsmHasLog(acts, plIntervalUpdated) {
		t.Error("no interval log")
	}
	if got, want := i.Deadline().Sub(now), 1500*time.Millisecond+304687500*time.Nanosecond; got != want {
		t.Errorf("Master_Down_Interval %v, want %v", got, want)
	}
	// On becoming master it advertises its own interval again.
	acts = i.Step(event{Kind: evTimer}, i.Deadline())
	fsmWant(t, acts, "adopt-interval 100cs", "add-vips [192.0.2.100]", "send-advert prio=100", "garp [192.0.2.100]", "notify BACKUP->MASTER (master down)")
	if a := i.Advert(100); a.Interval != 100 {
		t.Errorf("advert interval %d", a.Interval)
	}

	c := fsmConfig(100)
	c.Version = 2
	i = fsmBackup(t, c)
	acts = i.Step(fsmAdvert(fsmUpperAddr, 200, 200), now)
	fsmWant(t, acts)
	if i.MasterAdverInterval() != 100 {
		t.Errorf("v2 adopted %d", i.MasterAdverInterval())
	}
}

// keepalived's preempt_delay: a backup that hears a lower priority master
// keeps following it for preempt_delay, then preempts.
func TestPreemptDelay(t *testing.T) {
	c := fsmConfig(200)
	c.PreemptDelay = 10 * time.Second
	i := fsmBackup(t, c)
	now := fsmT0
	var took time.Time
	for k := 0; k < 30 && took.IsZero(); k++ {
		now = now.Add(time.Second)
		if d := i.Deadline(); !now.Before(d) {
			i.Step(event{Kind: evTimer}, d)
			if i.State() == stateMaster {
				took = d
				break
			}
		}
		acts := i.Step(fsmAdvert(fsmLowerAddr, 100, 100), now)
		if k == 0 && !fsmHasLog(acts, plPreemptDelayStart) {
			t.Error("no preempt delay start log")
		}
	}
	// Delay starts at fsmT0+1s; the first ignored advert is at fsmT0+11s, the
	// last accepted at fsmT0+10s, so the timer fires at 10s + MDI(200).
	want := fsmT0.Add(10*time.Second + masterDownInterval(3, 200, 100, 3))
	if !took.Equal(want) {
		t.Errorf("preempted at %v, want %v", took.Sub(fsmT0), want.Sub(fsmT0))
	}

	// A higher priority advert stops the delay.
	i = fsmBackup(t, c)
	i.Step(fsmAdvert(fsmLowerAddr, 100, 100), fsmT0.Add(time.Second))
	acts := i.Step(fsmAdvert(fsmUpperAddr, 250, 100), fsmT0.Add(2*time.Second))
	if !fsmHasLog(acts, plPreemptDelayStop) || !i.preemptAt.IsZero() {
		t.Error("higher priority did not stop the preempt delay")
	}
}

// RFC 5798 section 6.4.3, "If an ADVERTISEMENT is received" in Master, and
// keepalived's re-assertion on lower priority.
func TestMasterAdvert(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(c *instanceConfig)
		src    netip.Addr
		prio   uint8
		state  state
		acts   []string
		log    protoLogKind
		timerR bool // Adver_Timer restarted
	}{
		// One last advert before stepping down (keepalived's
		// higher_prio_send_advert, vipd's default), so a master that never
		// heard us learns of a split brain; not under lower_prio_no_advert.
		{"higher priority: backup", nil, fsmLowerAddr, 150, stateBackup,
			[]string{"send-advert prio=100", "remove-vips [192.0.2.100]", "notify MASTER->BACKUP (higher priority master)"}, plMasterHigherPrio, false},
		{"equal from higher address: backup", nil, fsmUpperAddr, 100, stateBackup,
			[]string{"send-advert prio=100", "remove-vips [192.0.2.100]", "notify MASTER->BACKUP (higher priority master)"}, plMasterEqualHigherAddr, false},
		{"higher priority, strict: silent backup", func(c *instanceConfig) { c.LowerPrioNoAdvert = true }, fsmLowerAddr, 150, stateBackup,
			[]string{"remove-vips [192.0.2.100]", "notify MASTER->BACKUP (higher priority master)"}, plMasterHigherPrio, false},
		{"equal from lower address: re-assert", nil, fsmLowerAddr, 100, stateMaster,
			[]string{"send-advert prio=100"}, plSplitBrain, false},
		{"lower: re-assert (keepalived)", nil, fsmUpperAddr, 50, stateMaster,
			[]string{"send-advert prio=100"}, plMasterLowerPrio, false},
		{"lower: silent (RFC, lower_prio_no_advert)", func(c *instanceConfig) { c.LowerPrioNoAdvert = true }, fsmUpperAddr, 50, stateMaster,
			nil, plSplitBrain, false},
		{"lower: garp_lower_prio", func(c *instanceConfig) { c.GARPOnLowerPrio = true }, fsmUpperAddr, 50, stateMaster,
			[]string{"send-advert prio=100", "garp [192.0.2.100]"}, plMasterLowerPrio, false},
		// "If the Priority in the ADVERTISEMENT is zero, then: Send an
		// ADVERTISEMENT; Reset the Adver_Timer to Advertisement_Interval".
		{"priority 0: advertise now", nil, fsmUpperAddr, 0, stateMaster,
			[]string{"send-advert prio=100"}, plMasterPrioZero, true},
		{"higher_prio_send_advert", func(c *instanceConfig) { c.HigherPrioSendAdvert = true }, fsmLowerAddr, 150, stateBackup,
			[]string{"send-advert prio=100", "remove-vips [192.0.2.100]", "notify MASTER->BACKUP (higher priority master)"}, plMasterHigherPrio, false},
		{"own address", nil, fsmOurAddr, 100, stateMaster, nil, plOwnAddress, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fsmConfig(100)
			if tt.mod != nil {
				tt.mod(&c)
			}
			i, became := fsmMaster(t, c)
			now := became.Add(300 * time.Millisecond)
			acts := i.Step(fsmAdvert(tt.src, tt.prio, 100), now)
			fsmWant(t, acts, tt.acts...)
			if !fsmHasLog(acts, tt.log) {
				t.Errorf("no log %d in %q", tt.log, fsmRender(acts, true))
			}
			if i.State() != tt.state {
				t.Fatalf("state %s, want %s", i.State(), tt.state)
			}
			switch {
			case tt.state == stateBackup:
				if got, want := i.Deadline().Sub(now), masterDownInterval(3, 100, 100, 3); got != want {
					t.Errorf("Master_Down_Timer %v, want %v", got, want)
				}
				if m, p := i.Master(); m != tt.src || p != tt.prio {
					t.Errorf("Master() = %s %d", m, p)
				}
			case tt.timerR:
				if got := i.Deadline().Sub(now); got != time.Second {
					t.Errorf("Adver_Timer %v, want 1s from now", got)
				}
			default:
				if got := i.Deadline().Sub(became); got != time.Second {
					t.Errorf("Adver_Timer moved to %v", got)
				}
			}
		})
	}
}

// RFC 5798 section 6.4.3: a master sends adverts every
// Advertisement_Interval.
func TestMasterTimer(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	for k := 0; k < 3; k++ {
		now = i.Deadline()
		fsmWant(t, i.Step(event{Kind: evTimer}, now), "send-advert prio=100")
		if got := i.Deadline().Sub(now); got != time.Second {
			t.Fatalf("Adver_Timer %v", got)
		}
	}
	fsmWant(t, i.Step(event{Kind: evTimer}, now.Add(time.Millisecond)))
}

// RFC 5798 section 6.4.3 and 6.4.2 "If a Shutdown event is received".
func TestShutdown(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	acts := i.Step(event{Kind: evShutdown}, now)
	fsmWant(t, acts, "send-advert prio=0", "remove-vips [192.0.2.100]", "notify MASTER->STOP (shutdown)")
	if !i.Deadline().IsZero() || i.State() != stateStop {
		t.Errorf("after shutdown: %s, deadline %v", i.State(), i.Deadline())
	}
	if acts := i.Step(fsmAdvert(fsmUpperAddr, 200, 100), now); len(acts) != 0 {
		t.Errorf("STOP reacted to an advert: %q", fsmRender(acts, true))
	}
	if acts := i.Step(event{Kind: evShutdown}, now); len(acts) != 0 {
		t.Errorf("second shutdown: %q", fsmRender(acts, true))
	}
	// A stopped instance can start again.
	i.Step(event{Kind: evStartup}, now)
	if i.State() != stateBackup {
		t.Errorf("restart: %s", i.State())
	}

	i = fsmBackup(t, fsmConfig(100))
	fsmWant(t, i.Step(event{Kind: evShutdown}, fsmT0), "notify BACKUP->STOP (shutdown)")
}

// Tracking (keepalived's track_script/track_interface weights): a master
// advertises a priority change at once; a weight-0 failure is FAULT.
func TestTrack(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	now = now.Add(200 * time.Millisecond)
	acts := i.Step(event{Kind: evTrack, Weight: -30}, now)
	fsmWant(t, acts, "send-advert prio=70")
	if i.Priority() != 70 || i.Deadline().Sub(now) != time.Second {
		t.Errorf("priority %d, Adver_Timer %v", i.Priority(), i.Deadline().Sub(now))
	}
	// Same weight: nothing.
	fsmWant(t, i.Step(event{Kind: evTrack, Weight: -30}, now))
	// Clamped to 1.
	fsmWant(t, i.Step(event{Kind: evTrack, Weight: -500}, now), "send-advert prio=1")

	acts = i.Step(event{Kind: evTrack, Weight: -30, Faults: 1}, now)
	fsmWant(t, acts, "send-advert prio=0", "remove-vips [192.0.2.100]", "notify MASTER->FAULT (tracked object failed)")
	acts = i.Step(event{Kind: evTrack, Weight: 0}, now)
	fsmWant(t, acts, "notify FAULT->BACKUP (tracked objects recovered)")
	if i.Priority() != 100 {
		t.Errorf("priority %d after recovery", i.Priority())
	}

	// A backup's priority change is not advertised.
	i = fsmBackup(t, fsmConfig(100))
	fsmWant(t, i.Step(event{Kind: evTrack, Weight: 50}, fsmT0))
	if i.Priority() != 150 {
		t.Errorf("priority %d", i.Priority())
	}
}

// Interface down is FAULT with the addresses removed; up is BACKUP (an
// owner goes straight to MASTER, as at Startup).
func TestLinkDownUp(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	fsmWant(t, i.Step(event{Kind: evLinkDown}, now), "remove-vips [192.0.2.100]", "notify MASTER->FAULT (interface down)")
	fsmWant(t, i.Step(event{Kind: evAdvert, Src: fsmUpperAddr, Advert: &Advert{Priority: 1}}, now))
	fsmWant(t, i.Step(event{Kind: evTimer}, now.Add(time.Hour)))
	fsmWant(t, i.Step(event{Kind: evLinkUp}, now), "notify FAULT->BACKUP (interface up)")
	if got := i.Deadline().Sub(now); got != masterDownInterval(3, 100, 100, 3) {
		t.Errorf("Master_Down_Timer %v", got)
	}

	// Link up does not clear a tracking fault.
	i = fsmBackup(t, fsmConfig(100))
	i.Step(event{Kind: evTrack, Faults: 1}, fsmT0)
	i.Step(event{Kind: evLinkDown}, fsmT0)
	fsmWant(t, i.Step(event{Kind: evLinkUp}, fsmT0))
	if i.State() != stateFault {
		t.Errorf("state %s", i.State())
	}

	o := fsmInstance(t, fsmConfig(255))
	o.Step(event{Kind: evStartup}, fsmT0)
	o.Step(event{Kind: evLinkDown}, fsmT0)
	fsmWant(t, o.Step(event{Kind: evLinkUp}, fsmT0), "add-vips [192.0.2.100]", "send-advert prio=255", "garp [192.0.2.100]", "notify FAULT->MASTER (address owner)")
}

// Sync groups and operators move an instance with evForce.
func TestForce(t *testing.T) {
	i := fsmBackup(t, fsmConfig(100))
	acts := i.Step(event{Kind: evForce, State: stateMaster, Detail: "sync group G"}, fsmT0)
	fsmWant(t, acts, "add-vips [192.0.2.100]", "send-advert prio=100", "garp [192.0.2.100]", "notify BACKUP->MASTER (forced) sync group G")
	acts = i.Step(event{Kind: evForce, State: stateBackup, Detail: "sync group G"}, fsmT0)
	fsmWant(t, acts, "remove-vips [192.0.2.100]", "notify MASTER->BACKUP (forced) sync group G")
	acts = i.Step(event{Kind: evForce, State: stateFault, Detail: "sync group G"}, fsmT0)
	fsmWant(t, acts, "notify BACKUP->FAULT (forced) sync group G")
	// A faulted member is not forced to MASTER.
	fsmWant(t, i.Step(event{Kind: evForce, State: stateMaster}, fsmT0))
	// The group's BACKUP releases the forced fault, unless another holds.
	i.Step(event{Kind: evLinkDown}, fsmT0)
	fsmWant(t, i.Step(event{Kind: evForce, State: stateBackup}, fsmT0))
	fsmWant(t, i.Step(event{Kind: evLinkUp}, fsmT0), "notify FAULT->BACKUP (interface up)")
}

// A master that outranks another master logs a split brain once, and
// when the other falls silent for its Master_Down_Interval re-sends
// gratuitous ARPs so clients follow the survivor.
func TestSplitBrain(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	acts := i.Step(fsmAdvert(fsmLowerAddr, 50, 100), now.Add(100*time.Millisecond))
	if !fsmHasLog(acts, plSplitBrain) {
		t.Fatal("no split brain log")
	}
	acts = i.Step(fsmAdvert(fsmLowerAddr, 50, 100), now.Add(1100*time.Millisecond))
	if fsmHasLog(acts, plSplitBrain) {
		t.Error("split brain logged twice for one episode")
	}
	resolved := time.Time{}
	for k := 0; k < 10 && resolved.IsZero(); k++ {
		d := i.Deadline()
		acts = i.Step(event{Kind: evTimer}, d)
		if fsmHasLog(acts, plSplitBrainResolved) {
			resolved = d
			fsmWant(t, acts, "send-advert prio=100", "garp [192.0.2.100]")
		}
	}
	// Last heard at +1.1s; resolved at the first tick more than 3 s later.
	if want := now.Add(5 * time.Second); !resolved.Equal(want) {
		t.Errorf("resolved at %v, want %v", resolved.Sub(now), want.Sub(now))
	}
}

// keepalived: two address owners is a configuration error; the one that
// hears the other first steps down to 254 and yields.
func TestOwnerConflict(t *testing.T) {
	i := fsmInstance(t, fsmConfig(255))
	i.Step(event{Kind: evStartup}, fsmT0)
	acts := i.Step(fsmAdvert(fsmUpperAddr, 255, 100), fsmT0.Add(time.Second))
	if !fsmHasLog(acts, plOwnerConflict) || i.State() != stateBackup || i.Priority() != 254 {
		t.Errorf("state %s prio %d, %q", i.State(), i.Priority(), fsmRender(acts, true))
	}
}

// Reload (issue 7): state and timers kept, VIP and priority changes
// applied in place.
func TestReconfigure(t *testing.T) {
	i, now := fsmMaster(t, fsmConfig(100))
	deadline := i.Deadline()
	c := fsmConfig(100)
	newVIP := netip.MustParseAddr("192.0.2.101")
	c.VIPs = []netip.Addr{newVIP}
	acts, err := i.Reconfigure(c, now)
	if err != nil {
		t.Fatal(err)
	}
	fsmWant(t, acts, "remove-vips [192.0.2.100]", "add-vips [192.0.2.101]", "garp [192.0.2.101]", "send-advert prio=100")
	if i.State() != stateMaster {
		t.Errorf("state %s", i.State())
	}
	// Unchanged config: nothing at all, same deadline.
	i2, _ := fsmMaster(t, fsmConfig(100))
	acts, err = i2.Reconfigure(fsmConfig(100), now)
	if err != nil || len(acts) != 0 || !i2.Deadline().Equal(deadline) {
		t.Errorf("unchanged reload: %v %q deadline %v", err, fsmRender(acts, true), i2.Deadline().Sub(deadline))
	}
	c.Priority = 120
	acts, _ = i.Reconfigure(c, now)
	fsmWant(t, acts, "send-advert prio=120")
	c.VRID = 52
	if _, err := i.Reconfigure(c, now); err == nil {
		t.Error("VRID change accepted")
	}
	c = fsmConfig(100)
	c.Interval = 0xffff
	if _, err := i.Reconfigure(c, now); err == nil {
		t.Error("bad interval accepted")
	}
}

func TestActionStrings(t *testing.T) {
	// Every log kind renders to text without a fallback.
	for k := plMasterHigherPrio; k <= plSentPrioZero; k++ {
		if s := (protoLog{Kind: k, Src: fsmOurAddr}).String(); strings.HasPrefix(s, "log(") {
			t.Errorf("log kind %d has no text", k)
		}
	}
	for k := actSendAdvert; k <= actWantMaster; k++ {
		if strings.HasPrefix(k.String(), "action(") {
			t.Errorf("action kind %d has no name", k)
		}
	}
	for k := evStartup; k <= evShutdown; k++ {
		if strings.HasPrefix(k.String(), "event(") {
			t.Errorf("event kind %d has no name", k)
		}
	}
	for r := reasonStartup; r <= reasonReconfig; r++ {
		if strings.HasPrefix(r.String(), "transReason(") {
			t.Errorf("transReason %d has no name", r)
		}
	}
}

// BenchmarkStepAdvert is Step on a received advert: a backup accepting the
// master's advert (the steady state of every backup), and a master
// re-asserting against a lower priority.
func BenchmarkStepAdvert(b *testing.B) {
	b.Run("backup", func(b *testing.B) {
		i := fsmBackup(b, fsmConfig(100))
		ev := fsmAdvert(fsmUpperAddr, 200, 100)
		now := fsmT0
		b.ReportAllocs()
		for b.Loop() {
			now = now.Add(time.Second)
			i.Step(ev, now)
		}
	})
	b.Run("master", func(b *testing.B) {
		i, now := fsmMaster(b, fsmConfig(100))
		ev := fsmAdvert(fsmLowerAddr, 50, 100)
		b.ReportAllocs()
		for b.Loop() {
			i.Step(ev, now)
		}
	})
}

// FuzzStep drives one instance with arbitrary event sequences and checks
// the invariants every driver relies on: no panic; the instance holds its
// VIPs exactly when MASTER; notify actions chain from the previous state;
// an advert carries the effective priority (0 only when leaving MASTER);
// after a timer event, a BACKUP or MASTER deadline lies in the future.
func FuzzStep(f *testing.F) {
	f.Add([]byte{3, 100, 100, 0, 0, 0, 2, 0, 200, 1, 200, 10, 1, 50, 10, 9, 0, 0})
	f.Add([]byte{2, 255, 100, 0, 0, 0, 4, 1, 0, 5, 0, 1, 6, 0, 1, 1, 0, 3})
	f.Add([]byte{3, 1, 1, 0, 0, 0, 2, 0, 5, 7, 2, 0, 7, 1, 0, 7, 0, 0, 8, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 3 {
			return
		}
		c := fsmConfig(data[1] | 1)
		c.Version = 2 + data[0]&1
		c.Interval = uint16(data[2])%50*10 + 10
		if c.Version == 2 {
			c.Interval = uint16(data[2]%3+1) * 100
		}
		c.NoPreempt = data[0]&2 != 0
		c.LowerPrioNoAdvert = data[0]&4 != 0
		if data[0]&16 != 0 {
			c.PreemptDelay = 5 * time.Second
		}
		c.SyncGroup = data[0]&32 != 0
		c.InitialMaster = data[0]&8 != 0
		i, err := newInstance(c)
		if err != nil {
			t.Fatalf("config %+v: %v", c, err)
		}
		held := map[netip.Addr]bool{}
		now := fsmT0
		srcs := []netip.Addr{fsmLowerAddr, fsmUpperAddr, fsmOurAddr}
		for data = data[3:]; len(data) >= 3; data = data[3:] {
			kind, p, dt := data[0]%10, data[1], data[2]
			now = now.Add(time.Duration(dt) * 37 * time.Millisecond)
			var ev event
			switch kind {
			case 0:
				ev = event{Kind: evStartup}
			case 1, 2:
				ev = fsmAdvert(srcs[int(dt)%3], p, uint16(p)%200+1)
			case 3:
				ev = event{Kind: evTimer}
				if d := i.Deadline(); !d.IsZero() && p&1 == 0 {
					now = d
				}
			case 4:
				ev = event{Kind: evTrack, Weight: int(p) - 128, Faults: int(dt & 1)}
			case 5:
				ev = event{Kind: evLinkDown}
			case 6:
				ev = event{Kind: evLinkUp}
			case 7:
				ev = event{Kind: evForce, State: state(p % 5)}
			case 8:
				nc := c
				nc.VIPs = []netip.Addr{fsmVIP, netip.AddrFrom4([4]byte{192, 0, 2, p})}[:1+int(p&1)]
				nc.Priority = p | 1
				before := i.State()
				acts, err := i.Reconfigure(nc, now)
				if err != nil {
					continue
				}
				fsmApply(t, acts, held, before, i)
				continue
			case 9:
				ev = event{Kind: evShutdown}
			}
			before := i.State()
			acts := i.Step(ev, now)
			fsmApply(t, acts, held, before, i)
			if ev.Kind == evTimer && (i.State() == stateBackup || i.State() == stateMaster) && !i.Deadline().After(now) {
				t.Fatalf("%s after timer at %v: deadline %v not in the future", i.State(), now.Sub(fsmT0), i.Deadline().Sub(fsmT0))
			}
			if d := i.Deadline(); d.IsZero() != (i.State() != stateBackup && i.State() != stateMaster) {
				t.Fatalf("%s with deadline %v", i.State(), d)
			}
		}
	})
}

// fsmApply executes acts against the set of held VIPs and checks them.
func fsmApply(t *testing.T, acts []action, held map[netip.Addr]bool, before state, i *instance) {
	t.Helper()
	st := before
	for _, a := range acts {
		switch a.Kind {
		case actAddVIPs:
			for _, x := range a.Addrs {
				held[x] = true
			}
		case actRemoveVIPs:
			for _, x := range a.Addrs {
				delete(held, x)
			}
		case actNotify:
			if a.From != st || a.From == a.To {
				t.Fatalf("notify %s->%s while in %s", a.From, a.To, st)
			}
			st = a.To
		case actSendAdvert:
			if a.Priority == 0 && before != stateMaster {
				t.Fatalf("priority 0 advert from %s", before)
			}
			if a.Priority != 0 && a.Priority != i.Priority() {
				t.Fatalf("advert priority %d, effective %d", a.Priority, i.Priority())
			}
		}
	}
	if st != i.State() {
		t.Fatalf("notifies end in %s, state is %s", st, i.State())
	}
	master := i.State() == stateMaster
	for _, x := range i.Config().VIPs {
		if held[x] != master {
			t.Fatalf("%s holds %s: %v (%q)", i.State(), x, held[x], fsmRender(acts, true))
		}
	}
	if !master && len(held) != 0 {
		t.Fatalf("%s still holds %v", i.State(), held)
	}
}

// keepalived's "state MASTER" (vrrp_init_state): a non-owner starts in
// BACKUP with the full Master_Down_Interval, exactly like state BACKUP.
func TestInitialMasterWaitsMasterDownInterval(t *testing.T) {
	c := fsmConfig(100)
	c.InitialMaster = true
	i := fsmInstance(t, c)
	fsmWant(t, i.Step(event{Kind: evStartup}, fsmT0), "notify INIT->BACKUP (startup)")
	if got, want := i.Deadline().Sub(fsmT0), masterDownInterval(3, 100, 100, 3); got != want {
		t.Errorf("first Master_Down_Timer %v, want %v", got, want)
	}
}

// RFC 3768 section 7.1: a version 2 advert whose interval differs from
// ours is discarded, whether validation flagged it or the value shows it.
func TestV2IntervalMismatchDiscarded(t *testing.T) {
	c := fsmConfig(100)
	c.Version = 2
	for _, tt := range []struct {
		interval uint16
		flags    advertFlags
	}{{200, 0}, {100, advIntervalDiffers}} {
		i := fsmBackup(t, c)
		before := i.Deadline()
		ev := fsmAdvert(fsmUpperAddr, 200, tt.interval)
		ev.Flags = tt.flags
		fsmWant(t, i.Step(ev, fsmT0.Add(time.Second)))
		if !i.Deadline().Equal(before) {
			t.Errorf("interval %d flags %d: Master_Down_Timer reset", tt.interval, tt.flags)
		}
	}
	// An address mismatch is processed like any advert (keepalived).
	i := fsmBackup(t, c)
	ev := fsmAdvert(fsmUpperAddr, 200, 100)
	ev.Flags = advAddrsDiffer
	i.Step(ev, fsmT0.Add(time.Second))
	if got := i.Deadline().Sub(fsmT0.Add(time.Second)); got != masterDownInterval(2, 100, 100, 3) {
		t.Errorf("address mismatch: Master_Down_Timer %v", got)
	}
}
