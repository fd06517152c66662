package main

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestAlignUp(t *testing.T) {
	q := 10 * time.Millisecond
	base := time.Unix(1_700_000_000, 0) // a multiple of q
	for _, tc := range []struct {
		in, want time.Duration // after base
	}{
		{0, 0},
		{1, q},
		{q - 1, q},
		{q, q},
		{q + 1, 2 * q},
		{25 * time.Millisecond, 30 * time.Millisecond},
	} {
		if got := alignUp(base.Add(tc.in), q); !got.Equal(base.Add(tc.want)) {
			t.Errorf("alignUp(base+%v) = base+%v, want base+%v", tc.in, got.Sub(base), tc.want)
		}
	}
	// The monotonic reading survives: the scheduler compares on it, and
	// a wall clock stepped by NTP must not move the masters' adverts.
	now := time.Now()
	if a := alignUp(now, q); a == a.Round(0) || a.Sub(now) < 0 || a.Sub(now) >= q {
		t.Errorf("alignUp(now) = %v: monotonic reading lost or not within one quantum", a)
	}
	if got := alignUp(base.Add(3), 0); !got.Equal(base.Add(3)) {
		t.Errorf("quantum 0 changed the time: %v", got.Sub(base))
	}
	if advertQuantum(time.Second) != 500*time.Millisecond || advertQuantum(10*time.Millisecond) != 5*time.Millisecond {
		t.Errorf("quantum: %v at 1 s, %v at 10 ms", advertQuantum(time.Second), advertQuantum(10*time.Millisecond))
	}
}

func TestAdvertAt(t *testing.T) {
	dl := time.Unix(1_700_000_000, 0)
	iv := 100 * time.Millisecond
	for _, tc := range []struct {
		name string
		now  time.Time
		want time.Time
	}{
		{"woken on the grid after the deadline", dl.Add(7 * time.Millisecond), dl},
		{"woken at the deadline", dl, dl},
		{"woken early (not due)", dl.Add(-time.Millisecond), dl.Add(-time.Millisecond)},
		{"held up for a whole interval", dl.Add(iv), dl.Add(iv)},
		{"held up for longer", dl.Add(3 * iv), dl.Add(3 * iv)},
	} {
		if got := advertAt(dl, tc.now, iv); !got.Equal(tc.want) {
			t.Errorf("%s: stepped at deadline%+v, want deadline%+v", tc.name, got.Sub(dl), tc.want.Sub(dl))
		}
	}
}

// sentLog records the adverts written to a conn, by VRID.
type sentLog struct {
	mu   sync.Mutex
	vrid []uint8
}

func (c *sentLog) WriteAdvert(msg []byte, dst netip.Addr) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vrid = append(c.vrid, msg[1])
	return nil
}
func (c *sentLog) ReadAdvert(buf []byte) (int, frameMeta, error) { select {} }
func (c *sentLog) Close() error                                  { return nil }

func (c *sentLog) count(vrid uint8) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.vrid {
		if v == vrid {
			n++
		}
	}
	return n
}

// TestAdvertSchedGrid: masters whose Adver_Timers fall within a tenth of
// the interval before a grid point are sent by one wake-up of their hub's
// scheduler and stay on the grid (the next deadline is one interval after
// the grid point), a master re-queued later is not sent early by its stale
// entry, and a stopped one is not sent at all.
func TestAdvertSchedGrid(t *testing.T) {
	const intervalCS = 100 // 1 s, quantum 100 ms: the next round is far off
	iv := csDuration(intervalCS)
	q := advertQuantum(iv)
	conn := &sentLog{}
	sched := newAdvertSched()
	defer sched.close()
	h := &hub{conn: conn, sched: sched}
	d := newDaemon(zerolog.Nop(), &Config{}, (&fakeSys{}).system())

	g := alignUp(time.Now().Add(300*time.Millisecond), q) // a grid point ahead
	offsets := []time.Duration{-70 * time.Millisecond, -40 * time.Millisecond, -10 * time.Millisecond, -50 * time.Millisecond, -20 * time.Millisecond}
	var rs []*runner
	for k, off := range offsets {
		c := fsmConfig(200)
		c.VRID, c.Interval = uint8(10+k), intervalCS
		i := fsmInstance(t, c)
		became := g.Add(off).Add(-iv) // so that Adver_Timer is g+off
		i.Step(event{Kind: evStartup}, became.Add(-i.downInterval()))
		i.Step(event{Kind: evTimer}, became)
		if i.State() != stateMaster || !i.Deadline().Equal(g.Add(off)) {
			t.Fatalf("VRID %d: %s, Adver_Timer at g%+v", c.VRID, i.State(), i.Deadline().Sub(g))
		}
		r := &runner{d: d, ic: &VRRPInstance{Name: c.Name}, log: zerolog.Nop(), m: i, hub: h,
			timer: stoppedTimer(), src: fsmOurAddr, group: vrrpGroup4, ann: map[string]announcer{}}
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.own.Lock()
		r.arm(time.Now())
		r.own.Unlock()
	}
	// VRID 13 is re-queued one quantum later, VRID 14 stops.
	rs[3].own.Lock()
	sched.at(rs[3], g.Add(q))
	rs[3].own.Unlock()
	rs[4].own.Lock()
	rs[4].stopped = true
	rs[4].own.Unlock()

	for end := time.Now().Add(10 * time.Second); conn.count(13) == 0 && time.Now().Before(end); {
		time.Sleep(5 * time.Millisecond)
	}
	for k := range 3 {
		if n := conn.count(uint8(10 + k)); n != 1 {
			t.Errorf("VRID %d: %d adverts by the time VRID 13 sent its first, want 1", 10+k, n)
		}
	}
	if n := conn.count(13); n != 1 {
		t.Errorf("VRID 13 (re-queued): %d adverts, want 1", n)
	}
	if n := conn.count(14); n != 0 {
		t.Errorf("VRID 14 (stopped): %d adverts, want none", n)
	}
	// g: VRIDs 10-12 (and the stale entries of 13 and 14), one wake-up;
	// g+q: VRID 13, another.
	if b := sched.batches.Load(); b != 2 {
		t.Errorf("%d scheduler wake-ups for two grid points (%d expiries)", b, sched.expiries.Load())
	}
	for k, off := range offsets[:3] {
		r := rs[k]
		r.own.Lock()
		dl := r.m.Deadline()
		r.own.Unlock()
		// Stepped at its slot g, not at its deadline g+off: the next
		// deadline is on the grid (advertSlot), one interval after g.
		if want := g.Add(iv); !dl.Equal(want) {
			t.Errorf("VRID %d (deadline g%+v): next Adver_Timer at g%+v, want g%+v (on the grid)", 10+k, off, dl.Sub(g), want.Sub(g))
		}
	}
	for _, r := range rs {
		r.own.Lock()
		r.stopped = true
		r.own.Unlock()
	}
}

// TestSchedHeap: entries come out in order of when, whatever the order
// of pushes and pops in between, and a popped entry's runner is not kept.
func TestSchedHeap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Unix(1_700_000_000, 0)
	var h schedHeap
	var ref []time.Duration // what is in h, sorted
	r := &runner{}
	for step := range 5000 {
		if len(h) == 0 || rng.IntN(3) > 0 {
			d := time.Duration(rng.IntN(1000)) * time.Millisecond
			h.push(schedEntry{r: r, when: base.Add(d)})
			i, _ := slices.BinarySearch(ref, d)
			ref = slices.Insert(ref, i, d)
			continue
		}
		e := h.pop()
		if got := e.when.Sub(base); got != ref[0] {
			t.Fatalf("step %d: popped %v, want the earliest %v", step, got, ref[0])
		}
		ref = ref[1:]
		if spare := h[len(h):cap(h)]; len(spare) > 0 && spare[0].r != nil {
			t.Fatalf("step %d: the popped slot still holds its runner", step)
		}
	}
	if len(h) != len(ref) {
		t.Fatalf("%d entries left, want %d", len(h), len(ref))
	}
}

// TestAdvertSlot: from any phase, a master's adverts are never more than
// 1.1 intervals apart (keepalived's down_timer_adverts 1 leaves a backup
// one interval and Skew_Time), reach the half-interval grid within five
// adverts, and then stay on it, one interval apart.
func TestAdvertSlot(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, iv := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 3 * time.Second} {
		for range 200 {
			sent := time.Unix(1_700_000_000, rng.Int64N(int64(10*time.Second))) // a takeover's first advert
			onGrid := -1
			for k := range 12 {
				dl := sent.Add(iv) // the state machine's Adver_Timer, stepped at the last slot
				slot := advertSlot(dl, iv)
				if slot.Before(dl) || slot.Sub(sent) > iv+iv/10 {
					t.Fatalf("interval %v, advert %d: sent %v after the last (deadline %v after)", iv, k, slot.Sub(sent), slot.Sub(dl))
				}
				if slot.UnixNano()%int64(iv/2) == 0 {
					if onGrid < 0 {
						onGrid = k
					}
				} else if onGrid >= 0 {
					t.Fatalf("interval %v: advert %d left the grid", iv, k)
				}
				if onGrid >= 0 && k > onGrid && !slot.Equal(dl) {
					t.Fatalf("interval %v: on the grid, advert %d %v after its deadline", iv, k, slot.Sub(dl))
				}
				sent = slot
			}
			if onGrid < 0 || onGrid > 4 {
				t.Fatalf("interval %v: on the grid from advert %d, want within 5", iv, onGrid)
			}
		}
	}
}
