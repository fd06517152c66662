package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestTrackContribution checks keepalived's rule for up/down objects
// (vrrp_track.c process_script_update_priority and
// initialise_track_script_state): weight W > 0 is added while up, W < 0
// while down, reverse multiplies by -1, weight 0 faults while down (with
// reverse: while up).
func TestTrackContribution(t *testing.T) {
	for _, c := range []struct {
		up      bool
		weight  int
		reverse bool
		delta   int
		fault   bool
	}{
		{true, 10, false, 10, false},
		{false, 10, false, 0, false},
		{true, -10, false, 0, false},
		{false, -10, false, -10, false},
		{true, 10, true, -10, false}, // reverse: up lowers
		{false, 10, true, 0, false},
		{false, -10, true, 10, false}, // reverse: down raises
		{true, 0, false, 0, false},
		{false, 0, false, 0, true},
		{true, 0, true, 0, true}, // reverse weight 0: up is the fault
		{false, 0, true, 0, false},
	} {
		d, f := trackContribution(c.up, c.weight, c.reverse)
		if d != c.delta || f != c.fault {
			t.Errorf("up=%v weight=%d reverse=%v: got (%d, %v), want (%d, %v)", c.up, c.weight, c.reverse, d, f, c.delta, c.fault)
		}
	}
}

// TestFileContribution checks track_file arithmetic (vrrp_track.c
// update_track_file_status): value x weight clamped to -254..253, -254 is
// FAULT; weight 0 faults on a non-zero value; reverse negates.
func TestFileContribution(t *testing.T) {
	for _, c := range []struct {
		value, weight int
		reverse       bool
		delta         int
		fault         bool
	}{
		{0, 5, false, 0, false},
		{3, 5, false, 15, false},
		{-3, 5, false, -15, false},
		{3, 5, true, -15, false},
		{100, 10, false, 253, false}, // clamped high
		{-100, 10, false, 0, true},   // -1000 -> -254: FAULT
		{-254, 1, false, 0, true},
		{-253, 1, false, -253, false},
		{1000, 1, false, 253, false}, // value clamped to 254, then 253
		{0, 0, false, 0, false},
		{7, 0, false, 0, true},
		{0, 0, true, 0, true},
		{7, 0, true, 0, false},
	} {
		d, f := fileContribution(c.value, c.weight, c.reverse)
		if d != c.delta || f != c.fault {
			t.Errorf("value=%d weight=%d reverse=%v: got (%d, %v), want (%d, %v)", c.value, c.weight, c.reverse, d, f, c.delta, c.fault)
		}
	}
}

// TestEffectivePriorityRules checks the sum and clamp of
// vrrp_set_effective_priority: base + weights, below 1 is 1, 255 and more
// is 254, and an owner (255) never changes.
func TestEffectivePriorityRules(t *testing.T) {
	up := &trackObj{kind: trackScript, known: true, up: true}
	down := &trackObj{kind: trackScript, known: true, up: false}
	file := &trackObj{kind: trackFile, known: true, value: 4}
	unknown := &trackObj{kind: trackScript}
	for _, c := range []struct {
		base   uint8
		uses   []trackUse
		prio   uint8
		faults int
	}{
		{100, []trackUse{{up, 20, false}, {down, -30, false}}, 90, 0},
		{100, []trackUse{{up, 20, false}, {down, 30, false}}, 120, 0},
		{100, []trackUse{{file, -30, false}}, 1, 0},   // 100-120 -> clamped to 1
		{200, []trackUse{{up, 100, false}}, 254, 0},   // 300 -> 254
		{255, []trackUse{{down, -50, false}}, 255, 0}, // owner unchanged
		{100, []trackUse{{down, 0, false}, {up, 0, false}}, 100, 1},
		{100, []trackUse{{unknown, -50, false}, {unknown, 0, false}}, 100, 0}, // no result yet: no effect
	} {
		w, f := trackSum(c.uses)
		if p := effectivePriority(c.base, w); p != c.prio || f != c.faults {
			t.Errorf("base %d: got prio %d faults %d, want %d %d", c.base, p, f, c.prio, c.faults)
		}
	}
}

// TestScriptCounter checks rise/fall as vrrp_scheduler.c
// vrrp_script_child_thread counts: without init_fail the first result
// decides; then it takes fall failures to fail and rise successes to
// recover.
func TestScriptCounter(t *testing.T) {
	run := func(c scriptCounter, results ...bool) []bool {
		var ups []bool
		for _, ok := range results {
			c.add(ok)
			ups = append(ups, c.up())
		}
		return ups
	}
	T, F := true, false
	for _, c := range []struct {
		name       string
		rise, fall int
		initFail   bool
		in, want   []bool
	}{
		{"first success decides", 3, 3, false, []bool{T}, []bool{T}},
		{"first failure decides", 3, 3, false, []bool{F}, []bool{F}},
		{"fall 2", 1, 2, false, []bool{T, F, F, F}, []bool{T, T, F, F}},
		{"rise 2 after failing", 2, 1, false, []bool{F, T, T}, []bool{F, F, T}},
		{"init_fail needs rise", 2, 2, true, []bool{T, T, F, F}, []bool{F, T, T, F}},
		{"flap within fall", 1, 3, false, []bool{T, F, F, T, F, F, F}, []bool{T, T, T, T, T, T, F}},
	} {
		got := run(newScriptCounter(c.rise, c.fall, c.initFail), c.in...)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// TestTrackFileValue checks the strtol(buf, NULL, 0) reading.
func TestTrackFileValue(t *testing.T) {
	for in, want := range map[string]int{
		"":                     0,
		"12\n":                 12,
		"  -7 x":               -7,
		"0x10":                 16,
		"010":                  8,
		"+3":                   3,
		"abc":                  0,
		"99999999999999999999": 1 << 20,
	} {
		if got := trackFileValue([]byte(in)); got != want {
			t.Errorf("%q: got %d, want %d", in, got, want)
		}
	}
}

func TestProcessMatches(t *testing.T) {
	comm := func(s string) func() string { return func() string { return s } }
	d := &TrackProcessDef{Process: "nginx"}
	if !processMatches(d, []string{"nginx: master process /usr/sbin/nginx"}, comm("nginx")) {
		t.Error("nginx by comm")
	}
	if processMatches(d, []string{"/usr/sbin/haproxy"}, comm("haproxy")) {
		t.Error("haproxy matched nginx")
	}
	d = &TrackProcessDef{Process: "/usr/sbin/haproxy", FullCommand: true, Param: []string{"-f", "/etc/h.cfg"}}
	if !processMatches(d, []string{"/usr/sbin/haproxy", "-f", "/etc/h.cfg"}, comm("haproxy")) {
		t.Error("exact params")
	}
	if processMatches(d, []string{"/usr/sbin/haproxy", "-f", "/etc/h.cfg", "-D"}, comm("haproxy")) {
		t.Error("exact params must not match extra ones")
	}
	d.ParamMatch = "initial"
	if !processMatches(d, []string{"/usr/sbin/haproxy", "-f", "/etc/h.cfg", "-D"}, comm("haproxy")) {
		t.Error("initial params")
	}
	d.ParamMatch = "partial"
	if !processMatches(d, []string{"/usr/sbin/haproxy", "-D", "-f", "/etc/h.cfg"}, comm("haproxy")) {
		t.Error("partial params")
	}
	if !haveQuorum(&TrackProcessDef{Quorum: 2, QuorumMax: 3}, 3) || haveQuorum(&TrackProcessDef{Quorum: 2, QuorumMax: 3}, 4) || haveQuorum(&TrackProcessDef{Quorum: 2}, 1) {
		t.Error("quorum")
	}
}

// trackSends records what a tracker sends to runners.
type trackSends struct {
	mu  sync.Mutex
	evs map[string][]event
}

func (s *trackSends) send(name string, ev event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.evs == nil {
		s.evs = map[string][]event{}
	}
	s.evs[name] = append(s.evs[name], ev)
}

func (s *trackSends) last(name string) (event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.evs[name]
	if len(e) == 0 {
		return event{}, false
	}
	return e[len(e)-1], true
}

// TestTrackerSummaries runs a tracker over a configuration with a script,
// a file, an interface and a sync group, and checks what each runner is
// sent; in the sync group (no sync_group_tracking_weight) the weights are
// ignored, so a failure is a fault.
func TestTrackerSummaries(t *testing.T) {
	dir := t.TempDir()
	fpath := filepath.Join(dir, "prio")
	os.WriteFile(fpath, []byte("2\n"), 0o644)
	cfg := newConfig()
	cfg.Scripts["chk"] = &VRRPScript{Name: "chk", Script: Script{Cmd: "/bin/true"}, Weight: -30, Rise: 1, Fall: 1}
	cfg.TrackFiles["f"] = &TrackFileDef{Name: "f", Path: fpath, Weight: 5}
	cfg.Instances = []*VRRPInstance{
		{Name: "A", Interface: "eth0", Priority: 100, Track: Track{
			Scripts: []TrackRef{{Name: "chk"}}, Files: []TrackRef{{Name: "f"}},
			Interfaces: []TrackInterface{{Name: "eth9", Weight: 0}}}},
		{Name: "B", Interface: "eth0", Priority: 100, SyncGroup: "G", DontTrackPrimary: true, Track: Track{Scripts: []TrackRef{{Name: "chk", Weight: -30, WeightSet: true}}}},
		{Name: "C", Interface: "eth0", Priority: 100, SyncGroup: "G", DontTrackPrimary: true},
	}
	cfg.SyncGroups = []*SyncGroup{{Name: "G", Members: []string{"B", "C"}}}
	var s trackSends
	tr := newTracker(zerolog.Nop(), cfg, nil, s.send)
	// At start: the file gives +10; the script has no result; the
	// interface (no system to ask) is down: weight 0 -> a fault.
	if ev := tr.current("A"); ev.Weight != 10 || ev.Faults != 1 {
		t.Fatalf("A at start: %+v", ev)
	}
	tr.link(linkEvent{Name: "eth9", Up: true})
	if ev, _ := s.last("A"); ev.Weight != 10 || ev.Faults != 0 {
		t.Fatalf("A after eth9 up: %+v", ev)
	}
	chk := tr.objs[objKey(trackScript, "chk")]
	tr.set(chk, false, 0)
	if ev, _ := s.last("A"); ev.Weight != -20 || ev.Faults != 0 {
		t.Errorf("A after chk failed: %+v", ev)
	}
	if ev, _ := s.last("B"); ev.Weight != 0 || ev.Faults != 1 {
		t.Errorf("B (sync group, weights ignored) after chk failed: %+v", ev)
	}
	if _, sent := s.last("C"); sent {
		t.Error("C tracks nothing but was sent an event")
	}
	if !tr.isFaulty("B") || tr.isFaulty("C") {
		t.Error("fault status for the sync group is wrong")
	}
	// The file changes: polled value 0 takes the +10 away.
	tr.set(tr.objs[objKey(trackFile, "f")], false, 0)
	if ev, _ := s.last("A"); ev.Weight != -30 {
		t.Errorf("A after file 0: %+v", ev)
	}
}

// TestCountProcesses counts real processes in /proc by name and argument.
func TestCountProcesses(t *testing.T) {
	arg := strconv.Itoa(800000 + os.Getpid()%10000)
	d := &TrackProcessDef{Process: "sleep", Param: []string{arg}}
	if n := countProcesses(d); n != 0 {
		t.Fatalf("%d sleep %s before starting any", n, arg)
	}
	var cmds []*exec.Cmd
	for range 2 {
		c := exec.Command("sleep", arg)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	if n := countProcesses(d); n != 2 {
		t.Errorf("counted %d, want 2", n)
	}
	if !haveQuorum(&TrackProcessDef{Quorum: 2}, countProcesses(d)) {
		t.Error("quorum 2 not met by 2 processes")
	}
}

// TestTrackFileInotify checks that a write to a track file reaches the
// runner through inotify, with polling out of the picture.
func TestTrackFileInotify(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	cfg := newConfig()
	cfg.TrackFiles["f"] = &TrackFileDef{Name: "f", Path: path, Weight: -10, InitFile: true, InitValue: 0}
	cfg.Instances = []*VRRPInstance{{Name: "A", Priority: 100, Track: Track{Files: []TrackRef{{Name: "f"}}}}}
	var s trackSends
	tr := newTracker(zerolog.Nop(), cfg, nil, s.send)
	tr.pollEvery = time.Hour
	if b, err := os.ReadFile(path); err != nil || string(b) != "0\n" {
		t.Fatalf("init_file: %q %v", b, err)
	}
	if err := tr.start(); err != nil {
		t.Fatal(err)
	}
	defer tr.stop()
	// Replace the file the way tools do (write and rename).
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte("3\n"), 0o644)
	os.Rename(tmp, path)
	ok := pollUntil(5*time.Second, func() bool {
		ev, sent := s.last("A")
		return sent && ev.Weight == -30
	})
	if !ok {
		ev, _ := s.last("A")
		t.Fatalf("after writing 3 (weight -10): last event %+v, want weight -30", ev)
	}
}

var plainDecimal = regexp.MustCompile(`^[+-]?([1-9][0-9]*|0)$`)

// FuzzTrackFileValue: any file content reads as a bounded integer, and a
// plain decimal reads as itself.
func FuzzTrackFileValue(f *testing.F) {
	for _, s := range []string{"0", "12\n", "-7", "0x1f", "017", " +3 ", "", "zz", "99999999999999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v := trackFileValue(b)
		if v < -1<<20 || v > 1<<20 {
			t.Fatalf("%q -> %d out of bounds", b, v)
		}
		if n, err := strconv.Atoi(string(b)); err == nil && plainDecimal.Match(b) && n >= -1<<20 && n <= 1<<20 {
			if v != n {
				t.Fatalf("%q -> %d, want %d", b, v, n)
			}
		}
	})
}
