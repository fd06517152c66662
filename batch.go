package main

// batch.go: the multicast adverts of a grid point, sent with one system
// call per interface.
//
// The scheduler (sched.go) steps every master due at a grid point, and
// each sends its advert. With one sendto(2) per advert, perf put a fifth
// of the daemons' context switches at the sender's return from sendto:
// the frame woke the peer's poller and the kernel switched to it. The
// adverts of a grid point are collected here instead, and each
// interface's are sent with one sendmmsg(2), a return to user mode per
// batch (bench/scale.sh: 3 % less CPU at 1,000 instances; the peer still
// reads them about one at a time, as fast as they come). A frame waits for
// the rest of its batch, at most batchMax adverts' stepping
// (microseconds). Unicast adverts, and adverts sent
// outside the scheduler (a takeover's first, a priority-0 advert on
// shutdown), go at once as before.

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchMax is how many adverts a batch holds before it is sent.
const batchMax = 64

// sendBatch is the scheduler's batch of adverts; one goroutine uses it.
type sendBatch struct {
	arena []byte // the frames, back to back
	frame []byte // scratch: one frame, before it joins arena
	ents  []batchEnt
	group []int // scratch: the entries of one conn
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	done  func(e *batchEnt, err error) // each advert once sent or refused (tests replace it)
}

type batchEnt struct {
	c      *mcastConn
	off, n int // the frame: arena[off : off+n]
	sa     unix.RawSockaddrLinklayer
	r      *runner
	name   string // the instance's, for the log line
	dst    netip.Addr
	prio   uint8
}

func newSendBatch() *sendBatch {
	return &sendBatch{
		arena: make([]byte, 0, batchMax*128),
		frame: make([]byte, 0, 1514),
		ents:  make([]batchEnt, 0, batchMax),
		group: make([]int, 0, batchMax),
		hdrs:  make([]unix.Mmsghdr, batchMax),
		iovs:  make([]unix.Iovec, batchMax),
		done:  batchDone,
	}
}

// add frames msg to dst for c and queues it; the batch is sent when full
// and by flush, and the advert counted as sent then (batchDone). Until
// then r.batched holds it: an advert r sends directly waits for it
// (runner.sendAdvert), so that the two reach the wire in order.
func (b *sendBatch) add(c *mcastConn, msg []byte, dst netip.Addr, r *runner, prio uint8) error {
	frame, sa, err := c.appendFrame(b.frame[:0], msg, dst)
	if err != nil {
		return err
	}
	b.frame = frame
	off := len(b.arena)
	b.arena = append(b.arena, frame...)
	b.ents = append(b.ents, batchEnt{c: c, off: off, n: len(frame), sa: sa, r: r, name: r.ic.Name, dst: dst, prio: prio})
	r.batched.Add(1)
	if len(b.ents) == batchMax {
		b.flush()
	}
	return nil
}

// flush sends what is queued: one sendmmsg for each conn's adverts, in the
// order they were added.
func (b *sendBatch) flush() {
	for i := range b.ents {
		c := b.ents[i].c
		if c == nil {
			continue // sent with an earlier conn's group
		}
		b.group = b.group[:0]
		for j := i; j < len(b.ents); j++ {
			if b.ents[j].c == c {
				b.group = append(b.group, j)
			}
		}
		b.send(c, b.group)
		for _, j := range b.group {
			b.ents[j].c = nil
		}
	}
	clear(b.ents) // no runner kept alive by the scratch slice
	b.ents, b.arena = b.ents[:0], b.arena[:0]
}

// send sends the entries idx of b.ents, all on c. A frame the kernel
// refuses is reported and skipped; the ones after it are sent.
func (b *sendBatch) send(c *mcastConn, idx []int) {
	for k, j := range idx {
		e := &b.ents[j]
		b.iovs[k] = unix.Iovec{Base: &b.arena[e.off]}
		b.iovs[k].SetLen(e.n)
		b.hdrs[k] = unix.Mmsghdr{Hdr: unix.Msghdr{Name: (*byte)(unsafe.Pointer(&e.sa)), Namelen: uint32(unsafe.Sizeof(e.sa)),
			Iov: &b.iovs[k], Iovlen: 1}}
	}
	for i := 0; i < len(idx); {
		n, err := c.sendmmsg(b.hdrs[i:len(idx)])
		for _, j := range idx[i : i+n] {
			b.done(&b.ents[j], nil)
		}
		i += n
		if err != nil || n == 0 {
			if err == nil {
				err = unix.EIO // sendmmsg sent nothing and said nothing: not seen, but never loop
			}
			b.done(&b.ents[idx[i]], err)
			i++
		}
	}
	for _, j := range idx {
		b.ents[j].r.batched.Add(-1)
	}
	clear(b.hdrs[:len(idx)])
	clear(b.iovs[:len(idx)])
}

// batchDone counts an advert the kernel took as sent, as the runner counts
// the ones it sends itself, and logs one it refused as the runner logs a
// failed send.
func batchDone(e *batchEnt, err error) {
	r := e.r
	if err != nil {
		r.d.log.Warn().Str("instance", e.name).
			Msgf("(%s) send advert to %s: multicast conn on %s: send: %v", e.name, e.dst, e.c.ifi.Name, err)
		return
	}
	r.mu.Lock()
	r.status.SentAdverts++
	if e.prio == 0 {
		r.status.PrioZeroSent++
	}
	r.mu.Unlock()
}
