package main

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// TestSendBatch: the scheduler's batch sends each conn's adverts with one
// sendmmsg, in the order they were added and from the conn's own MAC; a full batch goes at
// once; a frame the kernel refuses is reported with its runner and does
// not hold up the others.
func TestSendBatch(t *testing.T) {
	l := newTestLAN(t, 2)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	src1, src2 := l.Addr4(0).Addr(), l.Addr4(1).Addr()
	if1, if2 := h1.Interface("eth0"), h2.Interface("eth0")
	c1 := listenIn(t, h1, if1, mcastConfig{Src: src1})
	c1v := listenIn(t, h1, if1, mcastConfig{Src: src1, SrcMAC: vmacFor(7, false)})
	cx := listenIn(t, h1, if1, mcastConfig{Src: src1}) // closed below: its send fails
	c2 := listenIn(t, h2, if2, mcastConfig{Src: src2})

	advert := func(vrid byte) []byte {
		m := testAdvert(20)
		m[1] = vrid
		return m
	}
	r := &runner{ic: &VRRPInstance{Name: "VI_batch"}}
	var failed []batchEnt
	var errs []error
	sent := 0
	b := newSendBatch()
	b.done = func(e *batchEnt, err error) {
		if err == nil {
			sent++
			return
		}
		failed, errs = append(failed, *e), append(errs, err)
	}

	// Order and grouping: c1, c1, c1v, c1v, closed, c1 go out as one
	// sendmmsg per conn, in the order of each conn's first advert: 1, 2, 6,
	// then 3, 4. The closed conn's advert fails alone.
	cx.Close()
	plan := []struct {
		c    *mcastConn
		vrid byte
	}{{c1, 1}, {c1, 2}, {c1v, 3}, {c1v, 4}, {cx, 5}, {c1, 6}}
	for _, p := range plan {
		if err := b.add(p.c, advert(p.vrid), netip.Addr{}, r, 100); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.batched.Load(); n != int32(len(plan)) {
		t.Errorf("runner's adverts in the batch: %d, want %d", n, len(plan))
	}
	b.flush()
	if n := r.batched.Load(); n != 0 || sent != 5 {
		t.Errorf("after flush: %d of the runner's adverts still in the batch, %d reported sent; want 0 and 5", n, sent)
	}
	for _, want := range []struct {
		vrid byte
		mac  string
	}{{1, if1.HardwareAddr.String()}, {2, if1.HardwareAddr.String()}, {6, if1.HardwareAddr.String()},
		{3, vmacFor(7, false).String()}, {4, vmacFor(7, false).String()}} {
		got, m := readWithin(t, c2)
		if !bytes.Equal(got, advert(want.vrid)) {
			t.Fatalf("advert = %x, want VRID %d's %x", got, want.vrid, advert(want.vrid))
		}
		if m.SrcMAC.String() != want.mac || m.Src != src1 || m.TTL != 255 {
			t.Errorf("VRID %d: meta %+v, want from %s (%s), TTL 255", want.vrid, m, src1, want.mac)
		}
	}
	if len(failed) != 1 || failed[0].r != r || failed[0].c != cx || failed[0].name != "VI_batch" {
		t.Fatalf("failed sends: %+v, want the closed conn's one", failed)
	}
	if !errors.Is(errs[0], net.ErrClosed) {
		t.Errorf("failure: %v, want net.ErrClosed", errs[0])
	}
	if len(b.ents) != 0 || len(b.arena) != 0 {
		t.Errorf("batch not empty after flush: %d adverts, %d bytes", len(b.ents), len(b.arena))
	}

	// A full batch is sent without flush.
	for k := range batchMax {
		if err := b.add(c1, advert(byte(1+k%250)), netip.Addr{}, r, 100); err != nil {
			t.Fatal(err)
		}
	}
	for k := range batchMax {
		if got, _ := readWithin(t, c2); !bytes.Equal(got, advert(byte(1+k%250))) {
			t.Fatalf("full batch, advert %d: %x", k, got)
		}
	}

	// An advert that cannot be framed is refused at add, not queued.
	if err := b.add(c1, advert(9), netip.MustParseAddr("192.0.2.1"), r, 100); err == nil || len(b.ents) != 0 {
		t.Errorf("advert to a unicast address: err %v, %d queued", err, len(b.ents))
	}
}

// TestBatchDone: an advert the kernel took is counted as the runner counts
// the ones it sends itself; one it refused is not, and is logged as the
// runner logs a failed send.
func TestBatchDone(t *testing.T) {
	var log bytes.Buffer
	d := newDaemon(zerolog.New(&log), &Config{}, (&fakeSys{}).system())
	r := &runner{d: d, ic: &VRRPInstance{Name: "VI_9"}}
	e := &batchEnt{c: &mcastConn{ifi: &net.Interface{Name: "eth7"}}, r: r, name: "VI_9", dst: vrrpGroup4, prio: 0}
	batchDone(e, nil)
	e.prio = 100
	batchDone(e, nil)
	batchDone(e, unix.ENOBUFS)
	if r.status.SentAdverts != 2 || r.status.PrioZeroSent != 1 {
		t.Errorf("counts: sent %d, priority 0 %d; want 2 and 1", r.status.SentAdverts, r.status.PrioZeroSent)
	}
	if want := "(VI_9) send advert to 224.0.0.18: multicast conn on eth7: send: no buffer space available"; !strings.Contains(log.String(), want) {
		t.Errorf("log = %q, want %q", log.String(), want)
	}
}
