package main

// A simulated LAN of VRRP routers on a virtual clock, in the spirit of etcd
// raft's newNetwork: every router is an instance driven by an event queue;
// adverts are multicast to every other router through links with loss,
// delay and cuts. Everything is deterministic for a seed.

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

type simEvent struct {
	at  time.Time
	seq uint64
	fn  func()
}

type simQueue []simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(a, b int) bool {
	if !q[a].at.Equal(q[b].at) {
		return q[a].at.Before(q[b].at)
	}
	return q[a].seq < q[b].seq
}
func (q simQueue) Swap(a, b int) { q[a], q[b] = q[b], q[a] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *simQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type simTransition struct {
	at       time.Time
	from, to state
	why      transReason
}

type simNode struct {
	id       int
	addr     netip.Addr
	inst     *instance
	timerGen uint64
	trans    []simTransition
	sent     int
}

// simNet is the LAN. loss is the chance that one delivery (one advert to
// one receiver) is lost; delay plus up to jitter is its latency.
type simNet struct {
	t      testing.TB
	rng    *rand.Rand
	now    time.Time
	q      simQueue
	seq    uint64
	nodes  []*simNode
	loss   float64
	delay  time.Duration
	jitter time.Duration
	cut    map[[2]int]bool
	// afterStep, when set, runs after every Step of any node.
	afterStep func()
	// onAction, when set, sees every action of every node (after the
	// network has). It must not Step x itself: schedule with at.
	onAction func(x *simNode, a action)
}

// newSimNet builds routers from configs; router k gets address
// 192.0.2.(k+1), so a later router wins priority ties.
func newSimNet(t testing.TB, seed uint64, cfgs ...instanceConfig) *simNet {
	n := &simNet{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: fsmT0, cut: map[[2]int]bool{}}
	for k, c := range cfgs {
		addr := netip.AddrFrom4([4]byte{192, 0, 2, byte(k + 1)})
		c.Primary = addr
		i, err := newInstance(c)
		if err != nil {
			t.Fatalf("router %d: %v", k, err)
		}
		n.nodes = append(n.nodes, &simNode{id: k, addr: addr, inst: i})
	}
	return n
}

func simConfig(version uint8, prio uint8) instanceConfig {
	c := fsmConfig(prio)
	c.Version = version
	return c
}

func (n *simNet) at(t time.Time, fn func()) {
	if t.Before(n.now) {
		t = n.now
	}
	n.seq++
	heap.Push(&n.q, simEvent{at: t, seq: n.seq, fn: fn})
}

// step feeds ev to node x now and executes its actions.
func (n *simNet) step(x *simNode, ev event) {
	acts := x.inst.Step(ev, n.now)
	for _, a := range acts {
		switch a.Kind {
		case actSendAdvert:
			x.sent++
			adv := x.inst.Advert(a.Priority)
			n.multicast(x, &adv)
		case actNotify:
			x.trans = append(x.trans, simTransition{at: n.now, from: a.From, to: a.To, why: a.Reason})
		}
		if n.onAction != nil {
			n.onAction(x, a)
		}
	}
	x.timerGen++
	if d := x.inst.Deadline(); !d.IsZero() {
		gen := x.timerGen
		n.at(d, func() {
			if x.timerGen == gen {
				n.step(x, event{Kind: evTimer})
			}
		})
	}
	if n.afterStep != nil {
		n.afterStep()
	}
}

func (n *simNet) multicast(from *simNode, adv *Advert) {
	for _, to := range n.nodes {
		if to == from || n.cut[[2]int{from.id, to.id}] || to.inst.Config().VRID != adv.VRID {
			continue
		}
		if n.loss > 0 && n.rng.Float64() < n.loss {
			continue
		}
		d := n.delay
		if n.jitter > 0 {
			d += time.Duration(n.rng.Int64N(int64(n.jitter)))
		}
		to := to
		n.at(n.now.Add(d), func() {
			if n.cut[[2]int{from.id, to.id}] {
				return // cut while in flight
			}
			n.step(to, event{Kind: evAdvert, Advert: adv, Src: from.addr})
		})
	}
}

// run processes events up to and including time until.
func (n *simNet) run(until time.Time) {
	for n.q.Len() > 0 && !n.q[0].at.After(until) {
		e := heap.Pop(&n.q).(simEvent)
		n.now = e.at
		e.fn()
	}
	n.now = until
}

func (n *simNet) runFor(d time.Duration) { n.run(n.now.Add(d)) }

func (n *simNet) startAll() {
	for _, x := range n.nodes {
		n.step(x, event{Kind: evStartup})
	}
}

// isolate cuts every link between the routers in set and the others.
func (n *simNet) isolate(set map[int]bool) {
	for _, a := range n.nodes {
		for _, b := range n.nodes {
			if set[a.id] != set[b.id] {
				n.cut[[2]int{a.id, b.id}] = true
			}
		}
	}
}

func (n *simNet) heal() { clear(n.cut) }

func (n *simNet) masters() []int {
	var m []int
	for _, x := range n.nodes {
		if x.inst.State() == stateMaster {
			m = append(m, x.id)
		}
	}
	return m
}

// topPriority is the highest effective priority of the routers that can be
// master. When all preempt, the master must have it (RFC 5798 section
// 6.4.2: a backup ignores lower priority adverts and takes over). Between
// equal priorities the address breaks the tie only between two masters
// (section 6.4.3); a backup of equal priority stays backup.
func (n *simNet) topPriority() uint8 {
	var top uint8
	for _, x := range n.nodes {
		if s := x.inst.State(); s != stateFault && s != stateStop {
			top = max(top, x.inst.Priority())
		}
	}
	return top
}

// downIntervals are the smallest and largest Master_Down_Interval of the
// routers at their current priorities.
func (n *simNet) downIntervals() (lo, hi time.Duration) {
	lo = time.Duration(math.MaxInt64)
	for _, x := range n.nodes {
		c := x.inst.Config()
		d := masterDownInterval(c.Version, x.inst.Priority(), c.Interval, c.DownAdverts)
		lo, hi = min(lo, d), max(hi, d)
	}
	return lo, hi
}

// minDownInterval is the strictest bound for "within one
// Master_Down_Interval" when no priority changed.
func (n *simNet) minDownInterval() time.Duration { lo, _ := n.downIntervals(); return lo }

func (n *simNet) maxDownInterval() time.Duration { _, hi := n.downIntervals(); return hi }

// RFC 5798 section 6.4: three routers elect the highest priority, the
// others stay backup, and each moves exactly INIT->BACKUP(->MASTER).
func TestSimElection(t *testing.T) {
	for _, v := range []uint8{2, 3} {
		t.Run(fmt.Sprintf("v%d", v), func(t *testing.T) {
			n := newSimNet(t, 1, simConfig(v, 100), simConfig(v, 200), simConfig(v, 150))
			n.delay = time.Millisecond
			n.startAll()
			n.runFor(60 * time.Second)
			if m := n.masters(); len(m) != 1 || m[0] != 1 {
				t.Fatalf("masters %v, want [1]", m)
			}
			if got := len(n.nodes[1].trans); got != 2 {
				t.Errorf("master made %d transitions, want 2: %v", got, n.nodes[1].trans)
			}
			// It took over after its Master_Down_Interval (RFC 5798 6.4.1).
			if got, want := n.nodes[1].trans[1].at.Sub(fsmT0), masterDownInterval(v, 200, 100, 3); got != want {
				t.Errorf("took over after %v, want %v", got, want)
			}
			for _, k := range []int{0, 2} {
				if got := len(n.nodes[k].trans); got != 1 {
					t.Errorf("backup %d made %d transitions: %v", k, got, n.nodes[k].trans)
				}
			}
		})
	}
}

// RFC 5798 section 6.4.2: when the master shuts down it sends priority 0,
// and the best backup takes over after its Skew_Time instead of a
// Master_Down_Interval.
func TestSimShutdownHandover(t *testing.T) {
	n := newSimNet(t, 1, simConfig(3, 100), simConfig(3, 200), simConfig(3, 150))
	n.delay = time.Millisecond
	n.startAll()
	n.runFor(10 * time.Second)
	stop := n.now
	n.step(n.nodes[1], event{Kind: evShutdown})
	n.runFor(5 * time.Second)
	if m := n.masters(); len(m) != 1 || m[0] != 2 {
		t.Fatalf("masters %v, want [2]", m)
	}
	tr := n.nodes[2].trans[len(n.nodes[2].trans)-1]
	if got, want := tr.at.Sub(stop), time.Millisecond+skewTime(3, 150, 100); got != want {
		t.Errorf("takeover %v after shutdown, want delay + Skew_Time = %v", got, want)
	}
}

// keepalived's nopreempt (RFC 5798 Preempt_Mode false): a higher priority
// router that starts later stays backup; with preempt it takes over.
func TestSimNoPreempt(t *testing.T) {
	for _, nopreempt := range []bool{false, true} {
		t.Run(fmt.Sprintf("nopreempt=%v", nopreempt), func(t *testing.T) {
			hi := simConfig(3, 200)
			hi.NoPreempt = nopreempt
			n := newSimNet(t, 1, simConfig(3, 100), hi)
			n.delay = time.Millisecond
			n.step(n.nodes[0], event{Kind: evStartup})
			n.runFor(10 * time.Second)
			n.step(n.nodes[1], event{Kind: evStartup})
			n.runFor(30 * time.Second)
			want := 1
			if nopreempt {
				want = 0
			}
			if m := n.masters(); len(m) != 1 || m[0] != want {
				t.Fatalf("masters %v, want [%d]", m, want)
			}
		})
	}
}

// Property over many seeded runs (RFC 5798 section 6.4.3, with keepalived's
// re-assertion): after any heal of a partition, exactly one master remains
// within one Master_Down_Interval (plus the link delay), it is the highest
// priority router, and it stays the only one until the next partition.
func TestSimHealExactlyOneMaster(t *testing.T) {
	seeds := 200
	if testing.Short() {
		seeds = 30
	}
	heals := 0
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		version := uint8(2 + r.IntN(2))
		interval := uint16(100)
		if version == 3 {
			interval = []uint16{20, 50, 100, 300}[r.IntN(4)]
		}
		// Half the runs keep RFC 5798's silence towards a lower priority
		// master, a quarter run with nopreempt (then only the count of
		// masters is checked).
		strict, nopreempt := r.IntN(2) == 0, r.IntN(4) == 0
		var cfgs []instanceConfig
		for k := 2 + r.IntN(4); k > 0; k-- {
			c := simConfig(version, uint8(1+r.IntN(254)))
			c.Interval = interval
			if r.IntN(4) == 0 {
				c.Priority = 100 // ties, broken by address
			}
			c.LowerPrioNoAdvert, c.NoPreempt = strict, nopreempt
			cfgs = append(cfgs, c)
		}
		n := newSimNet(t, seed, cfgs...)
		n.delay = time.Duration(r.IntN(3)) * time.Millisecond
		n.jitter = time.Duration(1+r.IntN(5)) * time.Millisecond
		maxDelay := n.delay + n.jitter
		n.startAll()
		n.runFor(20 * csDuration(interval))
		checking := false
		n.afterStep = func() {
			if checking {
				if m := n.masters(); len(m) != 1 {
					t.Fatalf("seed %d at %v: masters %v after convergence", seed, n.now.Sub(fsmT0), m)
				}
			}
		}
		for round := 0; round < 10; round++ {
			set := map[int]bool{}
			for _, x := range n.nodes {
				set[x.id] = r.IntN(2) == 0
			}
			checking = false
			n.isolate(set)
			n.runFor(time.Duration(r.Int64N(int64(15 * csDuration(interval)))))
			n.heal()
			heals++
			healed := n.now
			bound := n.minDownInterval() + maxDelay
			n.run(healed.Add(bound))
			m := n.masters()
			if len(m) != 1 {
				t.Fatalf("seed %d round %d: %v after heal: masters %v (version %d, interval %dcs)", seed, round, bound, m, version, interval)
			}
			if p, top := n.nodes[m[0]].inst.Priority(), n.topPriority(); p != top && !nopreempt {
				t.Fatalf("seed %d round %d: master %d has priority %d, top is %d", seed, round, m[0], p, top)
			}
			checking = true
			n.runFor(time.Duration(r.Int64N(int64(10 * csDuration(interval)))))
		}
		checking = false
	}
	t.Logf("%d seeded runs, %d heals: exactly one master (with the top priority when preempting) within Master_Down_Interval + delay after each", seeds, heals)
}

// Property (keepalived's tracking): when priorities change, the router
// with the highest effective priority becomes the only master within one
// Master_Down_Interval (plus delay) when everyone preempts.
func TestSimHighestPriorityWins(t *testing.T) {
	seeds := 100
	if testing.Short() {
		seeds = 20
	}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		r := rand.New(rand.NewPCG(seed, 11))
		var cfgs []instanceConfig
		for k := 2 + r.IntN(4); k > 0; k-- {
			cfgs = append(cfgs, simConfig(3, uint8(50+r.IntN(100))))
		}
		n := newSimNet(t, seed, cfgs...)
		n.delay, n.jitter = time.Millisecond, 2*time.Millisecond
		// Staggered starts.
		for _, x := range n.nodes {
			n.at(fsmT0.Add(time.Duration(r.Int64N(int64(5*time.Second)))), func() { n.step(x, event{Kind: evStartup}) })
		}
		n.runFor(20 * time.Second)
		for change := 0; change < 20; change++ {
			x := n.nodes[r.IntN(len(n.nodes))]
			// A backup armed Master_Down_Timer with the skew of its old
			// priority (Skew_Time is recomputed on the next accepted
			// advert, RFC 5798 section 6.4.2), so the bound is the larger
			// Master_Down_Interval of before and after the change.
			bound := n.maxDownInterval()
			n.step(x, event{Kind: evTrack, Weight: r.IntN(121) - 60})
			changed := n.now
			bound = max(bound, n.maxDownInterval())
			n.run(changed.Add(bound + 3*time.Millisecond))
			m, top := n.masters(), n.topPriority()
			if len(m) != 1 || n.nodes[m[0]].inst.Priority() != top {
				for _, y := range n.nodes {
					t.Logf("router %d %s prio %d transitions %v", y.id, y.inst.State(), y.inst.Priority(), y.trans)
				}
				t.Fatalf("seed %d change %d (router %d at %v): masters %v, top priority %d", seed, change, x.id, changed.Sub(fsmT0), m, top)
			}
			n.runFor(time.Duration(r.Int64N(int64(5 * time.Second))))
		}
	}
}

// lossStats is what a long lossy run measured.
type lossStats struct {
	masterTrans   int           // transitions of the best router after it first became master
	takeovers     int           // backups becoming master while the best was master
	maxEpisode    time.Duration // longest time with two masters
	noMaster      time.Duration // time without any master after convergence
	expectedTakes float64
}

// runLossy runs three routers (priority 200, 150, 100; default timers) for
// dur with loss on every delivery and measures what happened after the
// best router became master.
func runLossy(t *testing.T, seed uint64, version uint8, loss float64, downAdverts int, dur time.Duration) lossStats {
	var cfgs []instanceConfig
	for _, p := range []uint8{100, 150, 200} {
		c := simConfig(version, p)
		c.DownAdverts = downAdverts
		cfgs = append(cfgs, c)
	}
	n := newSimNet(t, seed, cfgs...)
	n.loss = loss
	n.delay, n.jitter = time.Millisecond, time.Millisecond
	n.startAll()
	n.runFor(10 * time.Second)
	best := n.nodes[2]
	if best.inst.State() != stateMaster {
		t.Fatalf("seed %d: best not master after 10s", seed)
	}
	start := len(best.trans)
	var st lossStats
	var dualSince, noneSince time.Time
	n.afterStep = func() {
		m := len(n.masters())
		switch {
		case m > 1 && dualSince.IsZero():
			dualSince = n.now
		case m <= 1 && !dualSince.IsZero():
			st.maxEpisode = max(st.maxEpisode, n.now.Sub(dualSince))
			dualSince = time.Time{}
		}
		switch {
		case m == 0 && noneSince.IsZero():
			noneSince = n.now
		case m > 0 && !noneSince.IsZero():
			st.noMaster += n.now.Sub(noneSince)
			noneSince = time.Time{}
		}
	}
	before := [2]int{len(n.nodes[0].trans), len(n.nodes[1].trans)}
	n.runFor(dur)
	st.masterTrans = len(best.trans) - start
	for k := 0; k < 2; k++ {
		for _, tr := range n.nodes[k].trans[before[k]:] {
			if tr.to == stateMaster {
				st.takeovers++
			}
		}
	}
	// A backup takes over when the adverts of DownAdverts consecutive
	// intervals after an accepted one are all lost: per backup, per
	// interval, (1-loss) * loss^DownAdverts.
	st.expectedTakes = 2 * dur.Seconds() * (1 - loss) * math.Pow(loss, float64(downAdverts))
	if m := n.masters(); len(m) != 1 || m[0] != 2 {
		// Reconvergence: the last episode must have ended by now, or
		// end within a few intervals.
		n.afterStep = nil
		n.loss = 0
		n.runFor(5 * time.Second)
		if m := n.masters(); len(m) != 1 || m[0] != 2 {
			t.Errorf("seed %d: masters %v after the run", seed, m)
		}
	}
	return st
}

// Property with 20% random loss and default timers over 10,000 simulated
// seconds. Neither RFC 5798 nor keepalived promises a backup never takes
// over then: Master_Down_Interval is 3 intervals plus skew, so a backup
// takes over whenever three adverts in a row are lost, (1-p)*p^3 = 0.64%
// of intervals, about 64 times per backup in 10,000 s. What the protocol
// does guarantee, and this test asserts:
//   - the best master never leaves MASTER (a lower priority advert cannot
//     move it) and there is never a moment without a master;
//   - spurious takeovers happen at the rate the timers predict (within a
//     factor of 1.5), so a wrong multiplier or skew would fail;
//   - each takeover ends quickly: keepalived's re-assertion answers the
//     usurper at once, so two masters coexist for at most a few intervals;
//   - down_timer_adverts 6 (keepalived's knob for lossy links) makes them
//     rare (2 * 10,000 * 0.8 * 0.2^6 = 1.0 expected in 10,000 s).
func TestSimLoss20(t *testing.T) {
	dur := 10000 * time.Second
	seeds := 3
	if testing.Short() {
		dur, seeds = 2000*time.Second, 1
	}
	for _, v := range []uint8{2, 3} {
		var takes, expected float64
		for seed := uint64(1); seed <= uint64(seeds); seed++ {
			// Version 2 and 3 share these timers: distinct seeds make
			// the samples independent.
			st := runLossy(t, seed+100*uint64(v), v, 0.2, 3, dur)
			if st.masterTrans != 0 {
				t.Errorf("v%d seed %d: the best master made %d transitions", v, seed, st.masterTrans)
			}
			if st.noMaster != 0 {
				t.Errorf("v%d seed %d: %v without a master", v, seed, st.noMaster)
			}
			if st.maxEpisode > 10*time.Second {
				t.Errorf("v%d seed %d: two masters for %v", v, seed, st.maxEpisode)
			}
			takes += float64(st.takeovers)
			expected += st.expectedTakes
			t.Logf("v%d seed %d: %d spurious takeovers in %v (expected %.1f), longest dual-master episode %v",
				v, seed, st.takeovers, dur, st.expectedTakes, st.maxEpisode)
		}
		if takes < expected/1.5 || takes > expected*1.5 {
			t.Errorf("v%d: %.0f takeovers, expected %.1f ± 50%%", v, takes, expected)
		}
	}
	st := runLossy(t, 1, 3, 0.2, 6, dur)
	t.Logf("down_timer_adverts 6: %d spurious takeovers in %v (expected %.2f)", st.takeovers, dur, st.expectedTakes)
	if st.masterTrans != 0 || float64(st.takeovers) > st.expectedTakes+5 {
		t.Errorf("down_timer_adverts 6: %d master transitions, %d takeovers", st.masterTrans, st.takeovers)
	}
}

// simGroups coordinates vrrp_sync_groups the way keepalived does, on top of
// the instances' evForce and actWantMaster: a member's own move to FAULT,
// BACKUP or MASTER moves the others; a member that wants MASTER gets it
// (with all the others) once every member wants it or is MASTER.
func (n *simNet) simGroups(groups ...[]*simNode) {
	groupOf := map[*simNode][]*simNode{}
	for _, g := range groups {
		for _, x := range g {
			groupOf[x] = g
		}
	}
	force := func(g []*simNode, except *simNode, s state) {
		for _, y := range g {
			if y != except {
				n.at(n.now, func() { n.step(y, event{Kind: evForce, State: s, Detail: "sync group"}) })
			}
		}
	}
	n.onAction = func(x *simNode, a action) {
		g := groupOf[x]
		if g == nil {
			return
		}
		switch {
		case a.Kind == actNotify && a.Reason != reasonForced && a.To != stateStop:
			force(g, x, a.To)
		case a.Kind == actWantMaster && a.Want:
			for _, y := range g {
				if y != x && !y.inst.WantsMaster() && y.inst.State() != stateMaster {
					return
				}
			}
			force(g, nil, stateMaster)
		}
	}
}

func simGroupConfig(vrid, prio uint8, sync bool) instanceConfig {
	c := simConfig(3, prio)
	c.VRID = vrid
	c.SyncGroup = sync
	return c
}

// Sync groups (keepalived's vrrp_sync_group): two routers A and B, each
// with instances for VRID 1 and 2 in one group. A link failure under one
// of A's instances moves both VRIDs to B; its recovery moves both back.
func TestSimSyncGroupFailover(t *testing.T) {
	n := newSimNet(t, 1,
		simGroupConfig(1, 200, true), simGroupConfig(2, 200, true), // A1, A2
		simGroupConfig(1, 100, true), simGroupConfig(2, 100, true)) // B1, B2
	n.delay = time.Millisecond
	a1, a2, b1, b2 := n.nodes[0], n.nodes[1], n.nodes[2], n.nodes[3]
	n.simGroups([]*simNode{a1, a2}, []*simNode{b1, b2})
	states := func() string {
		return fmt.Sprintf("A1 %s A2 %s B1 %s B2 %s", a1.inst.State(), a2.inst.State(), b1.inst.State(), b2.inst.State())
	}
	n.startAll()
	n.runFor(10 * time.Second)
	if got, want := states(), "A1 MASTER A2 MASTER B1 BACKUP B2 BACKUP"; got != want {
		t.Fatalf("start: %s, want %s", got, want)
	}
	n.isolate(map[int]bool{0: true})
	n.step(a1, event{Kind: evLinkDown})
	n.runFor(masterDownInterval(3, 100, 100, 3) + 10*time.Millisecond)
	if got, want := states(), "A1 FAULT A2 FAULT B1 MASTER B2 MASTER"; got != want {
		t.Fatalf("after A1 link down: %s, want %s", got, want)
	}
	n.runFor(10 * time.Second)
	n.heal()
	n.step(a1, event{Kind: evLinkUp})
	n.runFor(masterDownInterval(3, 200, 100, 3) + 10*time.Millisecond)
	if got, want := states(), "A1 MASTER A2 MASTER B1 BACKUP B2 BACKUP"; got != want {
		t.Fatalf("after A1 link up: %s, want %s", got, want)
	}
}

// Sync groups with crossed priorities: A is best for VRID 1, B for VRID 2.
// keepalived's rule that a group goes MASTER only when every member wants
// to (actWantMaster) makes the groups settle with each group's members in
// one state and one master per VRID, whichever group got there first;
// members that took over on their own would flap forever. (With exactly
// simultaneous timers the two groups can mirror each other; link jitter
// and staggered starts break that, as on a real LAN.)
func TestSimSyncGroupCrossedPriorities(t *testing.T) {
	for _, gate := range []bool{true, false} {
		t.Run(fmt.Sprintf("gate=%v", gate), func(t *testing.T) {
			total := 0
			for seed := uint64(1); seed <= 20; seed++ {
				r := rand.New(rand.NewPCG(seed, 3))
				n := newSimNet(t, seed,
					simGroupConfig(1, 200, gate), simGroupConfig(2, 100, gate), // A1, A2
					simGroupConfig(1, 100, gate), simGroupConfig(2, 150, gate)) // B1, B2
				n.delay, n.jitter = time.Millisecond, 2*time.Millisecond
				n.simGroups(n.nodes[:2], n.nodes[2:])
				for _, x := range n.nodes {
					n.at(fsmT0.Add(time.Duration(r.Int64N(int64(2*time.Second)))), func() { n.step(x, event{Kind: evStartup}) })
				}
				n.runFor(60 * time.Second)
				before := 0
				for _, x := range n.nodes {
					before += len(x.trans)
				}
				n.runFor(300 * time.Second)
				flaps := -before
				for _, x := range n.nodes {
					flaps += len(x.trans)
				}
				total += flaps
				if !gate {
					continue
				}
				if flaps != 0 {
					t.Errorf("seed %d: %d transitions after settling", seed, flaps)
				}
				a1, a2, b1, b2 := n.nodes[0].inst.State(), n.nodes[1].inst.State(), n.nodes[2].inst.State(), n.nodes[3].inst.State()
				if a1 != a2 || b1 != b2 || (a1 == stateMaster) == (b1 == stateMaster) {
					t.Errorf("seed %d: A1 %s A2 %s B1 %s B2 %s", seed, a1, a2, b1, b2)
				}
			}
			t.Logf("transitions in 300 s after settling, 20 seeds: %d", total)
			if !gate && total == 0 {
				t.Error("without the gate the groups should flap; the test does not exercise it")
			}
		})
	}
}
