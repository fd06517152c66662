package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// discardConn is an advertConn that sends nowhere.
type discardConn struct{}

func (discardConn) WriteAdvert([]byte, netip.Addr) error      { return nil }
func (discardConn) ReadAdvert([]byte) (int, frameMeta, error) { select {} }
func (discardConn) Close() error                              { return nil }

// benchRunners returns n runners of 1,000-instance shape (VRIDs 1..250
// on 4 "interfaces") in the driver's steady state, all masters or all
// backups, with a scheduler that queues nothing (closed).
func benchRunners(b *testing.B, n int, master bool) []*runner {
	b.Helper()
	sched := newAdvertSched()
	sched.close()
	h := &hub{conn: discardConn{}, sched: sched}
	d := newDaemon(zerolog.Nop(), &Config{}, (&fakeSys{}).system())
	rs := make([]*runner, n)
	for k := range rs {
		c := fsmConfig(150)
		c.VRID, c.Interval = uint8(1+k%250), 10
		c.Name = "VI_" + itoa(k)
		if !master {
			c.Priority = 100
		}
		i := fsmInstance(b, c)
		now := time.Now()
		i.Step(event{Kind: evStartup}, now)
		if master {
			i.Step(event{Kind: evTimer}, now.Add(i.downInterval()))
		}
		ic := &VRRPInstance{Name: c.Name, VRID: int(c.VRID), Version: 3, AdvertCentis: 10}
		r := &runner{d: d, ic: ic, log: zerolog.Nop(), m: i, hub: h, timer: stoppedTimer(),
			src: fsmOurAddr, group: vrrpGroup4, ann: map[string]announcer{}}
		r.pol = rxPolicyFor(ic, []netip.Addr{fsmVIP}, vrrpGroup4)
		r.sharePolicy()
		rs[k] = r
	}
	return rs
}

// BenchmarkDriverAdvert is the driver's work per advert at 1,000
// instances, without the kernel: a master's Adver_Timer expiry (step,
// encode, frame, send to a conn that discards, re-arm) and a backup's
// received advert (validate, step, re-arm), the runners taken in turn so
// that caches see what the daemon's do. bench/scale.sh measures the whole.
func BenchmarkDriverAdvert(b *testing.B) {
	const n = 1000
	b.Run("master", func(b *testing.B) {
		rs := benchRunners(b, n, true)
		b.ReportAllocs()
		b.ResetTimer()
		for k := 0; k < b.N; k++ {
			r := rs[k%n]
			r.own.Lock()
			at := r.m.Deadline()
			r.exec(r.m.Step(event{Kind: evTimer}, at))
			r.arm(at)
			r.own.Unlock()
		}
	})
	b.Run("backup", func(b *testing.B) {
		rs := benchRunners(b, n, false)
		msgs := make([][]byte, 250)
		for v := range msgs {
			a := Advert{Version: 3, Type: vrrpTypeAdvert, VRID: uint8(1 + v), Priority: 150, Count: 1,
				Interval: 10, Addresses: []netip.Addr{fsmVIP}}
			m, err := a.Append(nil, fsmUpperAddr, vrrpGroup4, ChecksumPseudo)
			if err != nil {
				b.Fatal(err)
			}
			msgs[v] = m
		}
		meta := frameMeta{Src: fsmUpperAddr, Dst: vrrpGroup4, TTL: vrrpTTL}
		var adv Advert
		b.ReportAllocs()
		b.ResetTimer()
		for k := 0; k < b.N; k++ {
			r := rs[k%n]
			r.deliver(msgs[k%n%250], meta, &adv)
		}
		b.StopTimer()
		for _, r := range rs[:min(b.N, n)] {
			r.mu.Lock()
			ok := r.status.Rx.Drops[dropOK]
			r.mu.Unlock()
			if ok == 0 {
				b.Fatalf("%s accepted no advert", r.ic.Name)
			}
		}
		for _, r := range rs {
			r.timer.Stop()
		}
	})
}
