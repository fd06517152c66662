package main

import (
	"runtime"
	"testing"
	"time"
)

// nextLink returns the next link event, failing if none comes (the bound
// only guards against a hung test).
func nextLink(t *testing.T, w linkWatcher) linkEvent {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatal("events channel closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no link event")
	}
	return linkEvent{}
}

func expectLink(t *testing.T, w linkWatcher, name string, up bool) linkEvent {
	t.Helper()
	ev := nextLink(t, w)
	t.Logf("%s %+v", time.Now().Format("05.000"), ev)
	if ev.Name != name || ev.Up != up {
		t.Fatalf("link event %+v, want %s up=%v", ev, name, up)
	}
	if up && ev.Index == 0 {
		t.Fatalf("link event %+v: up without an index", ev)
	}
	return ev
}

// TestLinkWatch checks the link events that drive RFC 5798 section 6.4's
// Shutdown / Startup (keepalived's FAULT): admin down and up, carrier
// loss, an interface missing at start that appears later, deletion and
// renaming.
func TestLinkWatch(t *testing.T) {
	needRoot(t)
	a, b := newTestNS(t, "lw"), newTestNS(t, "lwpeer")
	veth(t, a, "eth0", b, "eth0")
	before := runtime.NumGoroutine()
	var w *netlinkLinks
	a.MustDo(func() (err error) {
		w, err = watchLinks([]string{"eth0", "eth1"})
		return err
	})
	defer w.Close()
	// At start: eth0 up, eth1 missing and so down.
	ev := expectLink(t, w, "eth0", true)
	if ev0 := a.Interface("eth0"); ev.Index != ev0.Index {
		t.Fatalf("index %d, want %d", ev.Index, ev0.Index)
	}
	if ev := expectLink(t, w, "eth1", false); ev.Index != 0 {
		t.Fatalf("missing eth1 has index %d", ev.Index)
	}

	a.IP("link", "set", "eth0", "down")
	expectLink(t, w, "eth0", false)
	a.IP("link", "set", "eth0", "up")
	expectLink(t, w, "eth0", true)

	// Carrier loss: the peer goes down, eth0 stays admin up but is no
	// longer running.
	b.IP("link", "set", "eth0", "down")
	expectLink(t, w, "eth0", false)
	b.IP("link", "set", "eth0", "up")
	expectLink(t, w, "eth0", true)

	// eth1 appears, down (reported for its new index), then comes up.
	a.IP("link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", b.Name)
	if ev := expectLink(t, w, "eth1", false); ev.Index == 0 {
		t.Fatal("new eth1 reported without its index")
	}
	b.IP("link", "set", "eth1", "up")
	a.IP("link", "set", "eth1", "up")
	expectLink(t, w, "eth1", true)
	// Deleted: the kernel closes it first (down, index kept), then
	// removes it (index 0).
	a.IP("link", "del", "eth1")
	for ev := expectLink(t, w, "eth1", false); ev.Index != 0; {
		ev = expectLink(t, w, "eth1", false)
	}
	// Renamed away (a link must be down to be renamed): eth0 is gone
	// (index 0) and lan0 coming up says nothing about it; the next event
	// is eth1's.
	a.IP("link", "set", "eth0", "down")
	old := expectLink(t, w, "eth0", false)
	a.IP("link", "set", "eth0", "name", "lan0")
	if ev := expectLink(t, w, "eth0", false); ev.Index != 0 {
		t.Fatalf("renamed eth0 keeps index %d", ev.Index)
	}
	a.IP("link", "set", "lan0", "up")
	a.IP("link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", b.Name)
	expectLink(t, w, "eth1", false)
	b.IP("link", "set", "eth1", "up")
	a.IP("link", "set", "eth1", "up")
	expectLink(t, w, "eth1", true)
	// And renamed back: eth0 again, with its old index.
	a.IP("link", "set", "lan0", "down")
	a.IP("link", "set", "lan0", "name", "eth0")
	if ev := expectLink(t, w, "eth0", false); ev.Index != old.Index {
		t.Fatalf("eth0 back with index %d, want %d", ev.Index, old.Index)
	}
	a.IP("link", "set", "eth0", "up")
	expectLink(t, w, "eth0", true)

	w.Close()
	if _, ok := <-w.Events(); ok {
		// Drain what was queued; the channel must end.
		for range w.Events() {
		}
	}
	// No goroutine is left behind (the library's reader ends when its
	// socket is closed).
	for i := 0; ; i++ {
		if runtime.NumGoroutine() <= before {
			break
		}
		if i == 100 {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d before, %d after close\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFakeLinks(t *testing.T) {
	f := newFakeLinks()
	f.Set("eth0", 2, true)
	expectLink(t, f, "eth0", true)
	f.Close()
	if _, ok := <-f.Events(); ok {
		t.Fatal("channel open after Close")
	}
}
