package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// linkEvent says that an interface the daemon cares about went up or
// down. RFC 5798 section 6.4.1-6.4.3: an instance whose interface goes
// down stops (keepalived: FAULT) and starts again when it comes back.
type linkEvent struct {
	Name  string
	Index int  // 0 while the interface does not exist
	Up    bool // administratively up and with carrier (IFF_UP and IFF_RUNNING)
}

// linkWatcher reports link state changes for a fixed set of interface
// names. The first event for each name is its state at start (a missing
// interface is reported down); later events come only when the up state
// or the index changes (an interface deleted while down is reported once
// more with index 0; one re-created under the same name has a new index,
// so sockets bound to the old one must be reopened).
type linkWatcher interface {
	Events() <-chan linkEvent
	Close() error
}

// netlinkLinks is the linkWatcher over an rtnetlink subscription
// (RTNLGRP_LINK), so changes arrive as they happen, without polling. If
// the subscription breaks (e.g. the socket overflows) it subscribes again
// and re-reads every watched link, so no change is lost for good.
type netlinkLinks struct {
	ns    netns.NsHandle
	h     *netlink.Handle
	names []string
	out   chan linkEvent
	done  chan struct{}
	wg    sync.WaitGroup

	closeOnce sync.Once
	state     map[string]linkEvent
	sent      map[string]bool

	// Resubscribe is how long to wait before subscribing again after a
	// failure; zero means one second.
	Resubscribe time.Duration
}

// watchLinks starts watching names in the calling thread's network
// namespace.
func watchLinks(names []string) (*netlinkLinks, error) {
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("watch links: %w", err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("watch links: %w", err)
	}
	w := &netlinkLinks{
		ns: ns, h: h, names: append([]string(nil), names...),
		out: make(chan linkEvent, 16), done: make(chan struct{}),
		state: map[string]linkEvent{}, sent: map[string]bool{},
	}
	// Subscribe before the first read of the links so that no change
	// between the two is missed.
	updates, stop, err := w.subscribe()
	if err != nil {
		h.Close()
		ns.Close()
		return nil, fmt.Errorf("watch links: %w", err)
	}
	w.wg.Add(1)
	go w.run(updates, stop)
	return w, nil
}

// Events implements linkWatcher.
func (w *netlinkLinks) Events() <-chan linkEvent { return w.out }

// Close implements linkWatcher. The events channel is closed.
func (w *netlinkLinks) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.done)
		w.wg.Wait()
		w.h.Close()
		err = w.ns.Close()
	})
	return err
}

func (w *netlinkLinks) subscribe() (<-chan netlink.LinkUpdate, chan struct{}, error) {
	updates := make(chan netlink.LinkUpdate, 64)
	stop := make(chan struct{})
	ns := w.ns
	err := netlink.LinkSubscribeWithOptions(updates, stop, netlink.LinkSubscribeOptions{
		Namespace: &ns,
		// The library closes updates after reporting an error; run
		// notices the close and subscribes again.
		ErrorCallback: func(error) {},
	})
	if err != nil {
		close(stop)
		return nil, nil, err
	}
	return updates, stop, nil
}

// unsubscribe ends a subscription. The library's reader goroutine blocks
// sending on updates, so drain them until it notices the closed socket.
func unsubscribe(updates <-chan netlink.LinkUpdate, stop chan struct{}) {
	close(stop)
	go func() {
		for range updates {
		}
	}()
}

func (w *netlinkLinks) run(updates <-chan netlink.LinkUpdate, stop chan struct{}) {
	defer w.wg.Done()
	defer close(w.out)
	for {
		if !w.resync() {
			unsubscribe(updates, stop)
			return
		}
	loop:
		for {
			select {
			case u, ok := <-updates:
				if !ok {
					break loop
				}
				if !w.update(u) {
					unsubscribe(updates, stop)
					return
				}
			case <-w.done:
				unsubscribe(updates, stop)
				return
			}
		}
		close(stop)
		// Subscribe again, retrying until it works or we are closed.
		for {
			wait := w.Resubscribe
			if wait <= 0 {
				wait = time.Second
			}
			select {
			case <-w.done:
				return
			case <-time.After(wait):
			}
			var err error
			if updates, stop, err = w.subscribe(); err == nil {
				break
			}
		}
	}
}

// resync reads every watched link and reports changes; false means the
// watcher was closed meanwhile.
func (w *netlinkLinks) resync() bool {
	ifaces.invalidate()
	for _, name := range w.names {
		ev := linkEvent{Name: name}
		l, err := w.h.LinkByName(name)
		var nf netlink.LinkNotFoundError
		switch {
		case err == nil:
			ev.Index, ev.Up = l.Attrs().Index, linkUp(l.Attrs())
		case errors.As(err, &nf):
		default:
			// Unknown failure: keep the last state rather than invent one.
			if last, ok := w.state[name]; ok {
				ev = last
			}
		}
		if !w.set(ev) {
			return false
		}
	}
	return true
}

// update applies one rtnetlink message.
func (w *netlinkLinks) update(u netlink.LinkUpdate) bool {
	ifaces.invalidate()
	a := u.Attrs()
	idx := int(u.Index)
	for _, name := range w.names {
		last := w.state[name]
		var ev linkEvent
		switch {
		case u.Header.Type == unix.RTM_DELLINK && last.Index == idx:
			ev = linkEvent{Name: name} // deleted
		case u.Header.Type == unix.RTM_NEWLINK && a.Name == name:
			ev = linkEvent{Name: name, Index: idx, Up: linkUp(a)}
		case u.Header.Type == unix.RTM_NEWLINK && last.Index == idx && a.Name != name:
			ev = linkEvent{Name: name} // renamed away
		default:
			continue
		}
		if !w.set(ev) {
			return false
		}
	}
	return true
}

// set records ev and sends it if it is the first for its name or the up
// state or index changed.
func (w *netlinkLinks) set(ev linkEvent) bool {
	last, seen := w.state[ev.Name]
	w.state[ev.Name] = ev
	if seen && w.sent[ev.Name] && last == ev {
		return true
	}
	select {
	case w.out <- ev:
		w.sent[ev.Name] = true
		return true
	case <-w.done:
		return false
	}
}

// linkUp is keepalived's test for a usable interface: up and running
// (carrier present, operstate up or unknown).
func linkUp(a *netlink.LinkAttrs) bool {
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0
}

// fakeLinks is a linkWatcher that tests drive by hand.
type fakeLinks struct {
	ch chan linkEvent
}

func newFakeLinks() *fakeLinks { return &fakeLinks{ch: make(chan linkEvent, 64)} }

// Set reports name as up or down.
func (f *fakeLinks) Set(name string, index int, up bool) {
	f.ch <- linkEvent{Name: name, Index: index, Up: up}
}

func (f *fakeLinks) Events() <-chan linkEvent { return f.ch }
func (f *fakeLinks) Close() error             { close(f.ch); return nil }

var (
	_ linkWatcher = (*netlinkLinks)(nil)
	_ linkWatcher = (*fakeLinks)(nil)
)
