package main

// sched.go: the masters' Adver_Timers of the daemon, on one goroutine.
//
// A master's runner does not wake for its own adverts: its Adver_Timer,
// moved to its slot on the advert grid (advertSlot), is queued here, and
// one goroutine for every hub wakes once for all the masters due at the
// same grid point, stepping each under its own lock and sending its
// advert (batch.go). At 1,000 instances a goroutine wake-up per advert was
// the largest cost left after the grid (bench/scale.sh, perf): 500
// masters per router at 0.1 s are 5,000 wake-ups a second that become
// twenty. Backups'
// Master_Down_Timers stay on their runners, which wake early for them
// (earlyWake): a takeover is not delayed by anyone else's adverts.

import (
	"sync"
	"sync/atomic"
	"time"
)

// advertSched is the daemon's queue of masters' advert deadlines (every
// hub's: hub.sched is the daemon's).
type advertSched struct {
	mu     sync.Mutex
	q      schedHeap
	wake   chan struct{} // a new earliest deadline, or closed
	closed bool

	// Wake-ups that found masters due, and the expiries they handled
	// (stale ones included): their ratio is the batching (vipd debug).
	batches, expiries atomic.Uint64
}

type schedEntry struct {
	r    *runner
	when time.Time // the grid point the runner was queued for (r.schedAt)
}

// schedHeap is a binary min-heap on when. Typed, not container/heap: its
// Push and Pop box every entry in an interface, an allocation for each
// advert sent (and a call through an interface for every comparison).
type schedHeap []schedEntry

func (h *schedHeap) push(e schedEntry) {
	q := append(*h, e)
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q[i].when.Before(q[p].when) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
	*h = q
}

// pop removes and returns the earliest entry; the heap must not be empty.
func (h *schedHeap) pop() schedEntry {
	q := *h
	e := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q[n] = schedEntry{} // no runner kept alive by the spare capacity
	q = q[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && q[l].when.Before(q[m].when) {
			m = l
		}
		if r := l + 1; r < n && q[r].when.Before(q[m].when) {
			m = r
		}
		if m == i {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return e
}

func newAdvertSched() *advertSched {
	s := &advertSched{wake: make(chan struct{}, 1)}
	go s.run()
	return s
}

// at queues r for when. An entry whose when is no longer r.schedAt when
// it comes up is stale and skipped, so a runner re-queued earlier (or no
// longer master) needs no removal. Called under r.own.
func (s *advertSched) at(r *runner, when time.Time) {
	if r.schedAt.Equal(when) {
		return
	}
	r.schedAt = when
	if when.IsZero() {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.q.push(schedEntry{r: r, when: when})
	if s.q[0].r == r && s.q[0].when.Equal(when) {
		select { // under mu: close cannot have closed wake
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// close stops the goroutine; the daemon is stopping. It does not wait for
// the goroutine, which may be waiting for a runner's lock (advertDue then
// finds the runner stopped).
func (s *advertSched) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		s.q = nil
		close(s.wake)
	}
	s.mu.Unlock()
}

func (s *advertSched) run() {
	timer := stoppedTimer()
	defer timer.Stop()
	var due []schedEntry
	batch := newSendBatch()
	for {
		s.mu.Lock()
		now := time.Now()
		due = due[:0]
		for len(s.q) > 0 && !s.q[0].when.After(now) {
			due = append(due, s.q.pop())
		}
		var next time.Duration = -1
		if len(s.q) > 0 {
			next = s.q[0].when.Sub(now)
		}
		s.mu.Unlock()
		for _, e := range due {
			e.r.advertDue(e.when, now, batch)
		}
		batch.flush()
		if len(due) > 0 {
			s.batches.Add(1)
			s.expiries.Add(uint64(len(due)))
			clear(due) // no runner kept alive by the scratch slice
			continue   // the steps queued new deadlines: look again
		}
		if next >= 0 {
			timer.Reset(next)
		}
		select {
		case _, ok := <-s.wake:
			if !ok {
				return
			}
		case <-timer.C:
		}
		timer.Stop()
	}
}

// advertDue is the Adver_Timer expiry of a master queued for when, on the
// hub's scheduling goroutine, which woke at now (the clock is read once
// for all the masters due: their steps take their deadlines, not now, and
// arm needs no better); its multicast advert joins batch (batch.go).
func (r *runner) advertDue(when, now time.Time, batch *sendBatch) {
	if !r.own.TryLock() {
		// The runner's goroutine is busy with this instance (a
		// takeover, a reload, a stop): the other masters due now must
		// not wait for it. This one is sent once it is free.
		go func() {
			r.own.Lock()
			defer r.own.Unlock()
			r.advertDueLocked(when, time.Now(), nil)
		}()
		return
	}
	defer r.own.Unlock()
	r.advertDueLocked(when, now, batch)
}

func (r *runner) advertDueLocked(when, now time.Time, batch *sendBatch) {
	if r.stopped || r.m == nil || !r.schedAt.Equal(when) {
		return // stale: re-queued, stopped or no longer master
	}
	r.schedAt = time.Time{}
	if r.m.State() == stateMaster {
		// Stepped at its slot, not its deadline: the next deadline is
		// one interval after the slot (advertSlot).
		at := advertAt(when, now, csDuration(r.m.Config().Interval))
		r.batch = batch
		r.exec(r.m.Step(event{Kind: evTimer}, at))
		r.batch = nil
	}
	r.arm(now)
}
