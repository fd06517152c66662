package main

// track.go is tracking: vrrp_script, track_interface, track_file and
// track_process results turned into each instance's priority adjustment
// and fault count, with keepalived 2.2.7's arithmetic (vrrp_track.c), and
// sent to the instance's runner as an evTrack the moment they change.
//
// keepalived's rules, which trackContribution and fileContribution follow:
//   - A tracked object with weight W != 0 adds W to the priority while it
//     is up when W > 0, or while it is down when W < 0 (reverse flips the
//     sign: W*-1). vrrp_track.c initialise_track_script_state and
//     process_script_update_priority.
//   - Weight 0: the instance goes to FAULT while the object is down (with
//     reverse: while it is up). down_instance().
//   - track_file: the file's integer (strtol, clamped to -254..254) times
//     the weight (times -1 with reverse), clamped to -254..253; -254 means
//     FAULT. Weight 0: a non-zero value means FAULT (reverse: a zero one).
//     update_track_file_status.
//   - The effective priority is base + sum, clamped to 1..254; an address
//     owner (255) is never changed (vrrp_set_effective_priority).
//   - In a vrrp_sync_group without sync_group_tracking_weight the weights
//     are ignored (every tracked object is weight 0: its failure faults the
//     member and so the group); the group's own track_* apply to every
//     member (vrrp.c vrrp_complete_instance: "ignoring weight of tracked
//     interface ... due to SYNC group").

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Track file and process polling periods. Files are also watched with
// inotify (a change counts at once); processes are only polled, where
// keepalived listens to the kernel's proc connector.
const (
	trackFilePoll    = time.Second
	trackProcessPoll = time.Second
)

// trackKind is the kind of a tracked object.
type trackKind uint8

const (
	trackScript trackKind = iota + 1
	trackInterface
	trackFile
	trackProcess
)

var trackKindNames = [...]string{"", "vrrp_script", "track_interface", "track_file", "track_process"}

func (k trackKind) String() string { return trackKindNames[k] }

// trackObj is one tracked object and its current status.
type trackObj struct {
	kind trackKind
	name string
	// known is false until the object has a result (a script before its
	// first run without init_fail): it then adjusts nothing.
	known bool
	up    bool // scripts, interfaces, processes
	value int  // files
}

// trackUse is one instance tracking one object.
type trackUse struct {
	obj     *trackObj
	weight  int
	reverse bool
}

// trackContribution is what an up/down object adds to the priority and
// whether it faults the instance (vrrp_track.c process_script_update_priority,
// initialise_interface_tracking_priorities).
func trackContribution(up bool, weight int, reverse bool) (delta int, fault bool) {
	mult := 1
	if reverse {
		mult = -1
	}
	if weight == 0 {
		return 0, up != (mult == 1)
	}
	if up && weight > 0 || !up && weight < 0 {
		return weight * mult, false
	}
	return 0, false
}

// fileContribution is what a track_file value adds to the priority and
// whether it faults the instance (vrrp_track.c update_track_file_status).
func fileContribution(value, weight int, reverse bool) (delta int, fault bool) {
	value = max(-254, min(254, value))
	mult := 1
	if reverse {
		mult = -1
	}
	if weight == 0 {
		return 0, (value != 0) == (mult == 1)
	}
	s := max(-254, min(253, value*weight*mult))
	if s == -254 {
		return 0, true
	}
	return s, false
}

// trackSum adds up the uses of one instance.
func trackSum(uses []trackUse) (weight, faults int) {
	for _, u := range uses {
		if !u.obj.known {
			continue
		}
		var d int
		var f bool
		if u.obj.kind == trackFile {
			d, f = fileContribution(u.obj.value, u.weight, u.reverse)
		} else {
			d, f = trackContribution(u.obj.up, u.weight, u.reverse)
		}
		weight += d
		if f {
			faults++
		}
	}
	return weight, faults
}

// parseTrackFile reads a track_file's value like keepalived's
// strtol(buf, NULL, 0): leading space, a sign, decimal, 0x hex or 0 octal
// digits up to the first other character; anything unreadable is 0.
func trackFileValue(b []byte) int {
	s := strings.TrimLeft(string(b), " \t\n\r\v\f")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isDigitIn(s[2], 16):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base = 8
	}
	end := 0
	for end < len(s) && isDigitIn(s[end], base) {
		end++
	}
	if end == 0 {
		return 0
	}
	n, err := strconv.ParseInt(s[:end], base, 64)
	if err != nil {
		n = 1 << 20 // out of range: clamped by the caller
	}
	if neg {
		n = -n
	}
	return int(max(-1<<20, min(1<<20, n)))
}

func isDigitIn(c byte, base int) bool {
	var v int
	switch {
	case c >= '0' && c <= '9':
		v = int(c - '0')
	case c >= 'a' && c <= 'f':
		v = int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		v = int(c-'A') + 10
	default:
		return false
	}
	return v < base
}

// scriptCounter is keepalived's rise/fall counter of a vrrp_script
// (vrrp_scheduler.c vrrp_script_child_thread): result runs from 0 to
// rise+fall-1 and the script is up while result >= rise. Without init_fail
// it starts at rise-1 in an "init" state, so the first run decides at once.
type scriptCounter struct {
	rise, fall int
	result     int
	init       bool // no result yet
}

func newScriptCounter(rise, fall int, initFail bool) scriptCounter {
	rise, fall = max(rise, 1), max(fall, 1)
	c := scriptCounter{rise: rise, fall: fall, init: !initFail}
	if !initFail {
		c.result = rise - 1
	}
	return c
}

// up reports whether the script counts as succeeding.
func (c *scriptCounter) up() bool { return c.result >= c.rise }

// add records one run; changed says the script's status changed (or it
// got its first status).
func (c *scriptCounter) add(ok bool) (changed bool) {
	wasInit := c.init
	c.init = false
	if ok {
		switch {
		case c.result < c.rise-1:
			c.result++
		case c.result != c.rise+c.fall-1:
			changed = c.result < c.rise
			c.result = c.rise + c.fall - 1
		}
		return changed || wasInit
	}
	if c.result > c.rise {
		c.result--
		return wasInit
	}
	changed = c.result >= c.rise || wasInit
	c.result = 0
	return changed
}

// tracker owns every tracked object of a configuration and keeps the
// instances' runners told of their tracking summary.
type tracker struct {
	log  zerolog.Logger
	cfg  *Config
	sys  *system
	send func(instance string, ev event) // to the runner

	sendMu sync.Mutex // serialises set, so runners get summaries in order
	mu     sync.Mutex
	objs   map[string]*trackObj // kind/name
	uses   map[string][]trackUse
	base   map[string]int
	last   map[string][2]int // weight, faults last sent
	// primary is the interface of a sync group member: its link state is
	// part of the member's fault status for the group (the runner itself
	// handles it for the instance).
	primary map[string]*trackObj
	faulty  map[string]bool
	held    map[string]bool // runners in INIT waiting for weight-0 scripts
	// onFaulty hears when an instance's fault status (failed weight-0
	// objects, or its interface for sync group members) changes; called
	// in order, after the runner's evTrack, and must not block.
	onFaulty func(instance string, faulty bool)
	// onPriority hears effective priority changes (for
	// notify_priority_changes); called like onFaulty.
	onPriority func(instance string, prio uint8)
	scripts    []*scriptLoop
	files      []*TrackFileDef
	procs      []*TrackProcessDef
	ifaces     []string

	// pollEvery is how often files and processes are re-read.
	pollEvery time.Duration

	wg     sync.WaitGroup
	cancel context.CancelFunc
}

// scriptLoop runs one vrrp_script.
type scriptLoop struct {
	def *VRRPScript
	run *runnable
	obj *trackObj
	cnt scriptCounter
}

func objKey(k trackKind, name string) string { return k.String() + "/" + name }

// newTracker builds the tracked objects of cfg and their users. Scripts
// that cannot run (unknown user, enable_script_security) are logged and
// left failed, as keepalived disables them.
func newTracker(log zerolog.Logger, cfg *Config, sys *system, send func(string, event)) *tracker {
	t := &tracker{log: log, cfg: cfg, sys: sys, send: send,
		objs: map[string]*trackObj{}, uses: map[string][]trackUse{}, base: map[string]int{}, last: map[string][2]int{},
		primary: map[string]*trackObj{}, faulty: map[string]bool{}, held: map[string]bool{}, pollEvery: min(trackFilePoll, trackProcessPoll)}
	groups := map[string]*SyncGroup{}
	for _, g := range cfg.SyncGroups {
		groups[g.Name] = g
	}
	for _, ic := range cfg.Instances {
		t.base[ic.Name] = ic.Priority
		tr := ic.Track
		zero := false
		if g := groups[ic.SyncGroup]; g != nil {
			tr = Track{
				Interfaces: append(slices.Clone(tr.Interfaces), g.Track.Interfaces...),
				Scripts:    append(slices.Clone(tr.Scripts), g.Track.Scripts...),
				Files:      append(slices.Clone(tr.Files), g.Track.Files...),
				Processes:  append(slices.Clone(tr.Processes), g.Track.Processes...),
			}
			zero = !g.TrackingWeight
			if !ic.DontTrackPrimary && ic.Interface != "" {
				t.primary[ic.Name] = t.obj(trackInterface, ic.Interface)
			}
		}
		add := func(k trackKind, name string, w int, rev bool) {
			if zero {
				w = 0
			}
			t.uses[ic.Name] = append(t.uses[ic.Name], trackUse{obj: t.obj(k, name), weight: w, reverse: rev})
		}
		for _, ti := range tr.Interfaces {
			add(trackInterface, ti.Name, ti.Weight, ti.Reverse)
		}
		// A reference's own weight wins, else its definition's.
		addRef := func(k trackKind, r TrackRef, w int, rev bool) {
			if r.WeightSet {
				w, rev = r.Weight, r.Reverse
			}
			add(k, r.Name, w, rev)
		}
		for _, r := range tr.Scripts {
			d := cfg.Scripts[r.Name]
			addRef(trackScript, r, d.Weight, d.Reverse)
		}
		for _, r := range tr.Files {
			d := cfg.TrackFiles[r.Name]
			addRef(trackFile, r, d.Weight, d.Reverse)
		}
		for _, r := range tr.Processes {
			d := cfg.TrackProcesses[r.Name]
			addRef(trackProcess, r, d.Weight, d.Reverse)
		}
		if zero && len(t.uses[ic.Name]) > 0 {
			log.Info().Msgf("(%s) ignoring weights of tracked objects in vrrp_sync_group %s (no sync_group_tracking_weight)", ic.Name, ic.SyncGroup)
		}
	}
	// The objects' initial status, so runners start with it.
	for _, name := range sortedKeys(cfg.Scripts) {
		d := cfg.Scripts[name]
		o := t.objs[objKey(trackScript, name)]
		if o == nil {
			continue // not tracked by anyone: keepalived does not run it
		}
		sl := &scriptLoop{def: d, obj: o, cnt: newScriptCounter(d.Rise, d.Fall, d.InitFail)}
		if d.InitFail {
			o.known, o.up = true, false
		}
		r, err := resolveScript(d.Script, &cfg.Global)
		if err != nil {
			log.Error().Msgf("VRRP_Script(%s) %v; it counts as failed", name, err)
			o.known, o.up = true, false
		} else {
			sl.run = r
		}
		t.scripts = append(t.scripts, sl)
	}
	for _, name := range sortedKeys(cfg.TrackFiles) {
		d := cfg.TrackFiles[name]
		o := t.objs[objKey(trackFile, name)]
		if o == nil {
			continue
		}
		initTrackFile(log, d)
		o.known, o.value = true, readTrackFile(d.Path)
		t.files = append(t.files, d)
	}
	for _, name := range sortedKeys(cfg.TrackProcesses) {
		d := cfg.TrackProcesses[name]
		o := t.objs[objKey(trackProcess, name)]
		if o == nil {
			continue
		}
		o.known, o.up = true, haveQuorum(d, countProcesses(d))
		t.procs = append(t.procs, d)
	}
	for k, o := range t.objs {
		if o.kind != trackInterface {
			continue
		}
		_ = k
		t.ifaces = append(t.ifaces, o.name)
		o.known = true
		if sys != nil && sys.interfaceByName != nil {
			if ifi, err := sys.interfaceByName(o.name); err == nil {
				o.up = ifi.Flags&(net.FlagUp|net.FlagRunning) == net.FlagUp|net.FlagRunning
			}
		}
	}
	slices.Sort(t.ifaces)
	for _, ic := range cfg.Instances {
		t.faulty[ic.Name] = t.faultyLocked(ic.Name)
	}
	return t
}

// faultyLocked is an instance's fault status as a sync group sees it.
func (t *tracker) faultyLocked(instance string) bool {
	_, f := trackSum(t.uses[instance])
	p := t.primary[instance]
	return f > 0 || p != nil && p.known && !p.up
}

// pendingLocked reports a weight-0 vrrp_script of the instance without a
// result yet.
func (t *tracker) pendingLocked(instance string) bool {
	for _, u := range t.uses[instance] {
		if u.weight == 0 && u.obj.kind == trackScript && !u.obj.known {
			return true
		}
	}
	return false
}

// hold registers a runner that must stay in INIT until its weight-0
// scripts have a result; false when there is nothing to wait for.
func (t *tracker) hold(instance string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.pendingLocked(instance) {
		return false
	}
	t.held[instance] = true
	return true
}

// isFaulty reports an instance's fault status as a sync group sees it.
func (t *tracker) isFaulty(instance string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.faulty[instance]
}

func (t *tracker) obj(k trackKind, name string) *trackObj {
	key := objKey(k, name)
	o := t.objs[key]
	if o == nil {
		o = &trackObj{kind: k, name: name}
		t.objs[key] = o
	}
	return o
}

// current is the tracking summary of an instance as an evTrack.
func (t *tracker) current(instance string) event {
	if t == nil {
		return event{Kind: evTrack}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w, f := trackSum(t.uses[instance])
	t.last[instance] = [2]int{w, f}
	return event{Kind: evTrack, Weight: w, Faults: f}
}

// tracks reports whether the instance tracks anything.
func (t *tracker) tracks(instance string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.uses[instance]) > 0
}

// faults is the number of failed weight-0 objects of an instance now.
func (t *tracker) faults(instance string) int {
	if t == nil {
		return 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, f := trackSum(t.uses[instance])
	return f
}

// changedLocked recomputes every instance that tracks o and returns what
// to tell whom: the runners whose summary changed (first), then the
// priority and sync group hooks. Called with t.mu held; the caller runs
// the result after unlocking, so a runner that is busy never holds up a
// reader of the tracker.
func (t *tracker) changedLocked(o *trackObj) []func() {
	var out, faults []func()
	for _, ic := range t.cfg.Instances {
		name := ic.Name
		uses := t.uses[name]
		if fy := t.faultyLocked(name); fy != t.faulty[name] {
			t.faulty[name] = fy
			if t.onFaulty != nil {
				faults = append(faults, func() { t.onFaulty(name, fy) })
			}
		}
		if !slices.ContainsFunc(uses, func(u trackUse) bool { return u.obj == o }) {
			continue
		}
		w, f := trackSum(uses)
		old := t.last[name]
		release := t.held[name] && !t.pendingLocked(name)
		if release {
			delete(t.held, name)
		}
		if old == [2]int{w, f} {
			if release && t.send != nil {
				out = append(out, func() { t.send(name, event{Kind: evStartup}) })
			}
			continue
		}
		t.last[name] = [2]int{w, f}
		if t.send != nil {
			out = append(out, func() { t.send(name, event{Kind: evTrack, Weight: w, Faults: f}) })
		}
		if base := t.base[name]; base != prioOwner {
			if from, to := effectivePriority(uint8(base), old[0]), effectivePriority(uint8(base), w); from != to {
				t.log.Info().Str("instance", name).Msgf("(%s) Changing effective priority from %d to %d", name, from, to)
				if t.onPriority != nil {
					out = append(out, func() { t.onPriority(name, to) })
				}
			}
		}
		if release && t.send != nil {
			out = append(out, func() { t.send(name, event{Kind: evStartup}) })
		}
	}
	return append(out, faults...)
}

// set updates an object's status and tells the runners. Updates are
// serialised by sendMu, so each runner gets its summaries in order.
func (t *tracker) set(o *trackObj, up bool, value int) {
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	t.mu.Lock()
	if o.known && o.up == up && o.value == value {
		t.mu.Unlock()
		return
	}
	o.known, o.up, o.value = true, up, value
	out := t.changedLocked(o)
	t.mu.Unlock()
	for _, fn := range out {
		fn()
	}
}

// start runs the scripts, watches the tracked interfaces and polls the
// tracked files and processes until stop.
func (t *tracker) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	for _, sl := range t.scripts {
		if sl.run == nil {
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.runScript(ctx, sl)
		}()
	}
	if len(t.ifaces) > 0 && t.sys != nil && t.sys.watchLinks != nil {
		lw, err := t.sys.watchLinks(t.ifaces)
		if err != nil {
			cancel()
			return fmt.Errorf("watch tracked interfaces: %w", err)
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			<-ctx.Done()
			lw.Close()
		}()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			for ev := range lw.Events() {
				t.link(ev)
			}
		}()
	}
	if len(t.files) > 0 || len(t.procs) > 0 {
		kick := watchFiles(ctx, t.log, t.files)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.poll(ctx, kick)
		}()
	}
	return nil
}

// stop ends every script (killing running ones) and watcher.
func (t *tracker) stop() {
	if t == nil || t.cancel == nil {
		return
	}
	t.cancel()
	t.wg.Wait()
}

// link takes a link event of a tracked interface.
func (t *tracker) link(ev linkEvent) {
	t.mu.Lock()
	o := t.objs[objKey(trackInterface, ev.Name)]
	t.mu.Unlock()
	if o == nil {
		return
	}
	t.mu.Lock()
	was := o.up
	t.mu.Unlock()
	if was != ev.Up {
		state := "down"
		if ev.Up {
			state = "up"
		}
		t.log.Info().Msgf("tracked interface %s is %s", ev.Name, state)
	}
	t.set(o, ev.Up, 0)
}

// runScript runs a vrrp_script every interval (start to start; a run
// longer than the interval delays the next, so runs never overlap).
func (t *tracker) runScript(ctx context.Context, sl *scriptLoop) {
	d := sl.def
	interval := d.Interval
	if interval <= 0 {
		interval = time.Second
	}
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	log := t.log.With().Str("script", d.Name).Logger()
	for {
		start := time.Now()
		res := sl.run.run(ctx, timeout)
		if ctx.Err() != nil {
			return
		}
		ok := res.OK()
		if e := log.Debug(); e.Enabled() {
			e.Int("status", res.Code).Dur("took", res.Took).Str("output", strings.TrimSpace(string(res.Output))).
				Msgf("VRRP_Script(%s) ran", d.Name)
		}
		if res.TimedOut {
			log.Warn().Msgf("VRRP_Script(%s) timed out after %v: process group killed", d.Name, timeout)
		} else if res.Err != nil && res.Code == -1 {
			log.Warn().Msgf("VRRP_Script(%s): %v", d.Name, res.Err)
		}
		if sl.cnt.add(ok) {
			if ok {
				log.Info().Msgf("VRRP_Script(%s) succeeded", d.Name)
			} else if res.Err != nil {
				log.Info().Msgf("VRRP_Script(%s) failed (%v)", d.Name, res.Err)
			} else {
				log.Info().Msgf("VRRP_Script(%s) failed (exited with status %d)", d.Name, res.Code)
			}
		}
		t.set(sl.obj, sl.cnt.up(), 0)
		wait := time.Until(start.Add(interval))
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
	}
}

// poll re-reads tracked files and process counts.
func (t *tracker) poll(ctx context.Context, kick <-chan struct{}) {
	tick := time.NewTicker(t.pollEvery)
	defer tick.Stop()
	type procState struct {
		have    bool
		pending bool
		since   time.Time
	}
	ps := map[string]*procState{}
	for _, d := range t.procs {
		t.mu.Lock()
		ps[d.Name] = &procState{have: t.objs[objKey(trackProcess, d.Name)].up}
		t.mu.Unlock()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
			t.readFiles()
		case now := <-tick.C:
			t.readFiles()
			for _, d := range t.procs {
				s := ps[d.Name]
				have := haveQuorum(d, countProcesses(d))
				if have == s.have {
					s.pending = false
					continue
				}
				// keepalived's delays: a loss of quorum counts after
				// terminate_delay (or delay), a gain after fork_delay
				// (or delay).
				delay := d.Delay
				if have && d.ForkDelay > 0 {
					delay = d.ForkDelay
				}
				if !have && d.TerminateDelay > 0 {
					delay = d.TerminateDelay
				}
				if !s.pending {
					s.pending, s.since = true, now
				}
				if now.Sub(s.since) < delay {
					continue
				}
				s.have, s.pending = have, false
				word := "lost"
				if have {
					word = "gained"
				}
				t.log.Info().Msgf("Track process %s: quorum %s", d.Name, word)
				t.mu.Lock()
				o := t.objs[objKey(trackProcess, d.Name)]
				t.mu.Unlock()
				t.set(o, have, 0)
			}
		}
	}
}

// readFiles re-reads every tracked file.
func (t *tracker) readFiles() {
	for _, d := range t.files {
		v := readTrackFile(d.Path)
		t.mu.Lock()
		o := t.objs[objKey(trackFile, d.Name)]
		old := o.value
		t.mu.Unlock()
		if v != old {
			t.log.Info().Msgf("track_file %s (%s) is now %d", d.Name, d.Path, v)
		}
		t.set(o, false, v)
	}
}

// watchFiles watches the directories of the tracked files with inotify
// (as keepalived does), so a write reaches the instances at once; the
// returned channel gets a value after a change. Without inotify the
// caller's polling still notices within trackFilePoll.
func watchFiles(ctx context.Context, log zerolog.Logger, files []*TrackFileDef) <-chan struct{} {
	kick := make(chan struct{}, 1)
	if len(files) == 0 {
		return kick
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		log.Warn().Msgf("track_file: inotify: %v; polling every %v", err, trackFilePoll)
		return kick
	}
	f := os.NewFile(uintptr(fd), "inotify")
	seen := map[string]bool{}
	for _, d := range files {
		dir := filepath.Dir(d.Path)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		const mask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY
		if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
			log.Warn().Msgf("track_file %s: watch %s: %v; polling every %v", d.Name, dir, err, trackFilePoll)
		}
	}
	go func() {
		<-ctx.Done()
		f.Close()
	}()
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	}()
	return kick
}

// initTrackFile creates a track file with its init_file value when it is
// missing (or always, with overwrite), as keepalived does at start.
func initTrackFile(log zerolog.Logger, d *TrackFileDef) {
	if !d.InitFile {
		return
	}
	if _, err := os.Stat(d.Path); err == nil && !d.InitOverwrite {
		return
	}
	if err := os.MkdirAll(filepath.Dir(d.Path), 0o755); err != nil {
		log.Warn().Msgf("track_file %s: %v", d.Name, err)
		return
	}
	if err := os.WriteFile(d.Path, []byte(strconv.Itoa(d.InitValue)+"\n"), 0o644); err != nil {
		log.Warn().Msgf("track_file %s: %v", d.Name, err)
	}
}

// readTrackFile returns a track file's value; a missing or unreadable file
// is 0, as in keepalived.
func readTrackFile(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	buf := make([]byte, 127)
	n, _ := f.Read(buf)
	return max(-254, min(254, trackFileValue(buf[:n])))
}

// haveQuorum applies quorum and quorum_max to a process count.
func haveQuorum(d *TrackProcessDef, n int) bool {
	q := max(d.Quorum, 1)
	return n >= q && (d.QuorumMax == 0 || n <= d.QuorumMax)
}

// procRoot is where processes are listed (a test may point it elsewhere).
var procRoot = "/proc"

// countProcesses counts the processes matching a vrrp_track_process: by
// name (the kernel's comm, or argv[0] with full_command) and, when
// parameters are given, by the arguments after it (param_match: exact,
// initial = a prefix, partial = a contiguous run anywhere).
func countProcesses(d *TrackProcessDef) int {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a kernel thread
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if processMatches(d, args, func() string {
			b, _ := os.ReadFile(filepath.Join(dir, "comm"))
			return strings.TrimSpace(string(b))
		}) {
			n++
		}
	}
	return n
}

func processMatches(d *TrackProcessDef, args []string, comm func() string) bool {
	if len(args) == 0 {
		return false
	}
	if d.FullCommand {
		if args[0] != d.Process {
			return false
		}
	} else {
		name := d.Process
		if len(name) > 15 {
			name = name[:15] // TASK_COMM_LEN - 1
		}
		if comm() != name && filepath.Base(args[0]) != d.Process {
			return false
		}
	}
	if len(d.Param) == 0 {
		return true
	}
	rest := args[1:]
	switch d.ParamMatch {
	case "initial":
		return len(rest) >= len(d.Param) && slices.Equal(rest[:len(d.Param)], d.Param)
	case "partial":
		for i := 0; i+len(d.Param) <= len(rest); i++ {
			if slices.Equal(rest[i:i+len(d.Param)], d.Param) {
				return true
			}
		}
		return false
	}
	return slices.Equal(rest, d.Param)
}

// applyTracking gives a runner's state machine the current tracking
// summary before it starts, so that a failed weight-0 object starts it in
// FAULT instead of flapping through BACKUP. hold says a weight-0
// vrrp_script has not returned yet: the runner stays in INIT and the
// tracker sends evStartup once it has (keepalived's num_script_init).
func (r *runner) applyTracking() (hold bool) {
	if r.m == nil {
		return false
	}
	t, g := r.d.extras.current()
	if t.tracks(r.ic.Name) {
		r.exec(r.m.Step(t.current(r.ic.Name), time.Now()))
	}
	if ev, ok := g.initial(r.ic.Name); ok {
		r.exec(r.m.Step(ev, time.Now()))
	}
	return t.hold(r.ic.Name)
}

// daemonExtras are tracking, sync groups and notifications of a daemon.
// A reload replaces the tracker and the sync groups; the notifier (its
// fifos and mailer) lives as long as the daemon.
type daemonExtras struct {
	d      *daemon
	notify *notifier

	mu     sync.Mutex
	track  *tracker
	groups *syncGroups
}

// startTracking builds and starts tracking, sync groups and notifications
// for the daemon's runners (which must exist, and not run yet).
func (d *daemon) startTracking() (*daemonExtras, error) {
	x := &daemonExtras{d: d, notify: newNotifier(d.log, d.cfg)}
	d.subscribe(x.onEvent)
	if err := x.build(d.cfg); err != nil {
		x.notify.close(0)
		return nil, err
	}
	d.extras = x
	return x, nil
}

// current returns the tracker and sync groups in use (nil-safe).
func (x *daemonExtras) current() (*tracker, *syncGroups) {
	if x == nil {
		return nil, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.track, x.groups
}

// onEvent is the daemon subscriber: notifications, then the sync groups.
func (x *daemonExtras) onEvent(ev instanceEvent) {
	x.notify.onEvent(ev)
	if _, g := x.current(); g != nil {
		g.onEvent(ev)
	}
}

// build makes and starts the tracker and sync groups of cfg.
func (x *daemonExtras) build(cfg *Config) error {
	d := x.d
	send := func(name string, ev event) {
		if r := d.runnerNamed(name); r != nil {
			r.step(ev)
		}
	}
	t := newTracker(d.log, cfg, d.sys, send)
	t.onPriority = func(name string, prio uint8) {
		if r := d.runnerNamed(name); r != nil {
			x.notify.priority(name, r.snapshot().State, prio)
		}
	}
	var g *syncGroups
	if len(cfg.SyncGroups) > 0 {
		g = newSyncGroups(d.log, cfg, t.isFaulty, send, x.notify.group)
		// Members kept across a reload are where they are.
		for name, sg := range g.byMember {
			if r := d.runnerNamed(name); r != nil {
				sg.members[name] = r.snapshot().State
			}
		}
		t.onFaulty = g.onFaulty
		g.start()
	}
	x.mu.Lock()
	x.track, x.groups = t, g
	x.mu.Unlock()
	if err := t.start(); err != nil {
		g.stop()
		return err
	}
	return nil
}

// deleted says a reload removes an instance: its last notification is
// notify_deleted (keepalived's VRRP_STATE_DELETED), not notify_stop.
func (x *daemonExtras) deleted(instance string) {
	if x != nil {
		x.notify.deleting(instance)
	}
}

// reload moves tracking, sync groups and notify scripts to cfg. The
// daemon calls it after stopping removed instances and reconfiguring the
// kept ones, before starting new ones; kept runners get their new
// tracking summary (and group command) at once.
func (x *daemonExtras) reload(cfg *Config) {
	if x == nil {
		return
	}
	t, g := x.current()
	t.stop()
	g.stop()
	x.notify.reconfigure(cfg)
	if err := x.build(cfg); err != nil {
		x.d.log.Error().Msgf("reload: tracking: %v", err)
		return
	}
	t, g = x.current()
	x.d.mu.Lock()
	kept := slices.Clone(x.d.runners)
	x.d.mu.Unlock()
	for _, r := range kept {
		r.step(t.current(r.ic.Name))
		if ev, ok := g.initial(r.ic.Name); ok {
			r.step(ev)
		} else {
			// The old group may have forced it into FAULT: nothing
			// keeps it there now but its own faults, if any.
			r.in <- &runnerInput{kind: inRelease, ev: event{Kind: evForce, State: stateBackup, Detail: "reload: no vrrp_sync_group holds it in FAULT"}}
		}
		// One held by the old tracker waits for the new one's scripts.
		if r.snapshot().State == stateInit && !t.hold(r.ic.Name) {
			r.step(event{Kind: evStartup})
		}
	}
}

// runnerNamed returns the runner of an instance, or nil. Tracking and
// sync groups call it from their goroutines, so it reads the name from the
// status snapshot: r.ic belongs to the runner's goroutine, which a reload
// changes.
func (d *daemon) runnerNamed(name string) *runner {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, r := range d.runners {
		if r.snapshot().Config.Name == name {
			return r
		}
	}
	return nil
}

// beforeStop ends tracking, so no more events reach stopping runners.
func (x *daemonExtras) beforeStop() {
	if t, _ := x.current(); t != nil {
		t.stop()
	}
}

// afterStop runs the last notifications (notify_stop) and closes the
// fifos and the mailer.
func (x *daemonExtras) afterStop() {
	if x != nil {
		_, g := x.current()
		g.stop()
		x.notify.close(notifyTimeout)
	}
}
