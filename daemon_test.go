package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestHubAttachDetach: the last runner leaving a receive socket and a new
// one joining it at the same moment (a reload stopping one instance while
// another's setup retries on the same interface). The new runner must end
// on an open socket that the daemon still routes to, never on one its
// predecessor closed. The window is a few instructions wide: before the
// fix about one round in 50,000 hit it.
func TestHubAttachDetach(t *testing.T) {
	d := newDaemon(zerolog.Nop(), &Config{}, (&fakeSys{}).system())
	key := hubKey{ifname: "eth0", addr: netip.MustParseAddr("224.0.0.18")}
	open := func() (advertConn, error) { return &silentConn{closed: make(chan struct{})}, nil }
	closed := func(c advertConn) bool {
		select {
		case <-c.(*silentConn).closed:
			return true
		default:
			return false
		}
	}
	rounds := 100000
	if testing.Short() {
		rounds = 5000
	}
	for i := 0; i < rounds; i++ {
		a, b := &runner{}, &runner{}
		ha, err := d.attach(key, 1, a, open)
		if err != nil {
			t.Fatal(err)
		}
		var hb *hub
		done := make(chan struct{})
		go func() {
			defer close(done)
			hb, _ = d.attach(key, 2, b, open)
		}()
		d.detach(ha, 1, a)
		<-done
		d.mu.Lock()
		routed := d.hubs[key] == hb
		d.mu.Unlock()
		if closed(hb.conn) || !routed {
			t.Fatalf("round %d: the joining runner's socket is closed (%v) or no longer the daemon's (%v)", i, closed(hb.conn), !routed)
		}
		d.detach(hb, 2, b)
	}
}

// TestWaitDueQueued: a backup's runner wakes earlyWake before its
// Master_Down_Timer (RFC 5798 section 6.4.2); an input waiting before the
// deadline goes first, but once the deadline has passed the timer is due
// whatever is queued. Before the fix any queued input postponed it, so a
// flood that kept the queue from emptying (adverts to drop) postponed a
// takeover for as long as it lasted.
func TestWaitDueQueued(t *testing.T) {
	r := &runner{in: make(chan *runnerInput, 4)}
	r.in <- &runnerInput{kind: inPing}
	if r.waitDue(time.Now().Add(time.Hour)) != true {
		t.Error("a deadline beyond earlyWake: not due at once (the caller re-arms for it)")
	}
	if r.waitDue(time.Now().Add(earlyWake/2)) != false {
		t.Error("an input waiting before the deadline does not go first")
	}
	if r.waitDue(time.Now().Add(-time.Millisecond)) != true {
		t.Error("a passed deadline is not due while an input waits")
	}
}
