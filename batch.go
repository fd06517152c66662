package main

// batch.go: the multicast adverts of a grid point, sent with one system
// call per interface.
//
// The scheduler (sched.go) steps every master due at a grid point, and
// each sends its advert. One sendto(2) per advert made the peer's reader
// wake for almost every frame: the frame woke the peer's poller in the
// middle of the burst, the kernel switched to it at the sender's return
// to user mode, and the two processes took turns a frame at a time, a
// context switch each (perf, bench/scale.sh). The adverts of a grid
// point are collected here instead, and each interface's are sent with
// one sendmmsg(2): the peer is woken once for the lot and reads them in
// one go. A frame waits for the rest of its batch, at most batchMax
// adverts' stepping (microseconds). Unicast adverts, and adverts sent
// outside the scheduler (a takeover's first, a priority-0 advert on
// shutdown), go at once as before.

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batchMax is how many adverts a batch holds before it is sent.
const batchMax = 64

// sendBatch is the scheduler's batch of adverts; one goroutine uses it.
type sendBatch struct {
	arena []byte // the frames, back to back
	frame []byte // scratch: one frame, before it joins arena
	ents  []batchEnt
	hdrs  []mmsghdr
	iovs  []unix.Iovec
	sent  func(e *batchEnt, err error) // a failed send: counted and logged (tests replace it)
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
		hdrs:  make([]mmsghdr, batchMax),
		iovs:  make([]unix.Iovec, batchMax),
		sent:  sendFailed,
	}
}

// add frames msg to dst for c and queues it; the batch is sent when full
// and by flush. The caller counts the advert as sent; a send that fails
// at flush is taken back (sendFailed).
func (b *sendBatch) add(c *mcastConn, msg []byte, dst netip.Addr, r *runner, prio uint8) error {
	frame, sa, err := c.appendFrame(b.frame[:0], msg, dst)
	if err != nil {
		return err
	}
	b.frame = frame
	off := len(b.arena)
	b.arena = append(b.arena, frame...)
	b.ents = append(b.ents, batchEnt{c: c, off: off, n: len(frame), sa: sa, r: r, name: r.ic.Name, dst: dst, prio: prio})
	if len(b.ents) == batchMax {
		b.flush()
	}
	return nil
}

// flush sends what is queued, one sendmmsg per conn (the adverts of a
// conn keep their order).
func (b *sendBatch) flush() {
	for i := 0; i < len(b.ents); {
		j := i + 1
		for j < len(b.ents) && b.ents[j].c == b.ents[i].c {
			j++
		}
		b.send(b.ents[i:j])
		i = j
	}
	clear(b.ents) // no runner kept alive by the scratch slice
	b.ents, b.arena = b.ents[:0], b.arena[:0]
}

// send sends ents, all on one conn. A frame the kernel refuses is
// reported and skipped; the ones after it are sent.
func (b *sendBatch) send(ents []batchEnt) {
	for k := range ents {
		e := &ents[k]
		b.iovs[k] = unix.Iovec{Base: &b.arena[e.off]}
		b.iovs[k].SetLen(e.n)
		b.hdrs[k] = mmsghdr{hdr: unix.Msghdr{Name: (*byte)(unsafe.Pointer(&e.sa)), Namelen: uint32(unsafe.Sizeof(e.sa)),
			Iov: &b.iovs[k], Iovlen: 1}}
	}
	for i := 0; i < len(ents); {
		n, err := ents[0].c.sendmmsg(b.hdrs[i:len(ents)])
		i += n
		if err != nil || n == 0 {
			if err == nil {
				err = unix.EIO // sendmmsg sent nothing and said nothing: not seen, but never loop
			}
			b.sent(&ents[i], err)
			i++
		}
	}
	clear(b.hdrs[:len(ents)])
	clear(b.iovs[:len(ents)])
}

// sendFailed takes back the count of an advert the kernel refused, and
// logs it as the runner logs a failed send.
func sendFailed(e *batchEnt, err error) {
	r := e.r
	r.mu.Lock()
	r.status.SentAdverts--
	if e.prio == 0 {
		r.status.PrioZeroSent--
	}
	r.mu.Unlock()
	r.d.log.Warn().Str("instance", e.name).
		Msgf("(%s) send advert to %s: multicast conn on %s: send: %v", e.name, e.dst, e.c.ifi.Name, err)
}
