package main

// The soak (bench/soak.sh): failovers in a loop between two vipd routers,
// by SIGTERM and restart of the master or by flapping its link, at 10 ms
// to 100 ms adverts; the backup that lives through all of them reports
// its file descriptors, goroutines and RSS at start and end (vipd debug),
// which must not grow. CI runs 40 failovers; VIPD_SOAK_FAILOVERS=1000 is
// the real soak.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSoakFailovers(t *testing.T) {
	failovers := 40
	if s := os.Getenv("VIPD_SOAK_FAILOVERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 2 {
			t.Fatalf("VIPD_SOAK_FAILOVERS=%q: want a number >= 2", s)
		}
		failovers = n
	}
	intervals := []string{"0.01", "0.02", "0.05", "0.1"}
	if s := os.Getenv("VIPD_SOAK_INTERVALS"); s != "" {
		intervals = strings.Split(s, ",")
	}
	l := newFaultLAN(t, 2, false)
	hiConf := func(iv string) string {
		return faultConf(faultInstance("VI_1", 51, 200, iv, "    version 3\n"))
	}
	hi := startFaultVipd(t, l.Hosts[0], "hi", hiConf(intervals[0]))
	// lo keeps its interval; as backup it follows the master's (RFC 5798
	// section 6.4.2: Master_Adver_Interval), which changes on restarts.
	lo := startFaultVipd(t, l.Hosts[1], "lo", faultConf(faultInstance("VI_1", 51, 100, intervals[0], "    version 3\n")))
	waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})

	sample := func(p *faultProc) debugStatus {
		t.Helper()
		st, err := p.Debug()
		if err != nil {
			t.Fatalf("%s debug: %v", p.name, err)
		}
		return st
	}
	// The first sample is taken after one failover of each kind: lo opens
	// its gratuitous-ARP socket on its first takeover and keeps it.
	const warmup = 4
	var first debugStatus
	var start time.Time
	var load0 string
	done := 0
	for cycle := 0; done < failovers+warmup; cycle++ {
		if done == warmup {
			first = sample(lo)
			start = time.Now()
			load0 = loadAvg()
			t.Logf("start: lo fds %d, goroutines %d, RSS %d KiB, heap %d KiB (load %s)",
				first.FDs, first.Goroutines, first.RSSKiB, first.HeapAlloc>>10, load0)
		}
		iv := intervals[cycle%len(intervals)]
		if cycle%2 == 0 {
			// Graceful: SIGTERM sends priority 0 (RFC 5798 section
			// 6.4.3), lo takes over at once; hi restarts and preempts.
			hi.Signal(syscall.SIGTERM)
			hi.Wait()
			waitStates(t, "VI_1", map[*faultProc]string{lo: "MASTER"})
			if err := os.WriteFile(hi.conf, []byte(hiConf(iv)), 0o644); err != nil {
				t.Fatal(err)
			}
			hi.Restart()
		} else {
			// Link down is FAULT: lo takes over after
			// Master_Down_Interval; link up, hi preempts.
			l.Hosts[0].IP("link", "set", "eth0", "down")
			waitStates(t, "VI_1", map[*faultProc]string{lo: "MASTER"})
			l.Hosts[0].IP("link", "set", "eth0", "up")
		}
		waitStates(t, "VI_1", map[*faultProc]string{hi: "MASTER", lo: "BACKUP"})
		done += 2
		if a, b := addrCount(t, l.Hosts[0], faultVIP, ""), addrCount(t, l.Hosts[1], faultVIP, ""); a != 1 || b != 0 {
			t.Fatalf("after %d failovers hi has the VIP %d times and lo %d, want 1 and 0", done, a, b)
		}
		if n := failovers / 5; n >= 10 && done > warmup && (done-warmup)%n == 0 {
			st := sample(lo)
			t.Logf("%d failovers: lo fds %d, goroutines %d, RSS %d KiB, heap %d KiB", done, st.FDs, st.Goroutines, st.RSSKiB, st.HeapAlloc>>10)
		}
	}
	last := sample(lo)
	elapsed := time.Since(start)
	done -= warmup
	hs := sample(hi)
	is := lo.Instance("VI_1")
	t.Logf("end after %d failovers in %v (load %s -> %s): lo fds %d -> %d, goroutines %d -> %d, RSS %d -> %d KiB (peak %d), heap %d -> %d KiB; lo transitions %d; hi (restarted or flapped) fds %d goroutines %d RSS %d KiB",
		done, elapsed.Round(time.Second), load0, loadAvg(), first.FDs, last.FDs, first.Goroutines, last.Goroutines,
		first.RSSKiB, last.RSSKiB, last.PeakRSSKiB, first.HeapAlloc>>10, last.HeapAlloc>>10, is.Transitions, hs.FDs, hs.Goroutines, hs.RSSKiB)
	fmt.Printf("soak: %d failovers in %v, lo fds %d -> %d, goroutines %d -> %d, RSS %d -> %d KiB, load %s -> %s\n",
		done, elapsed.Round(time.Second), first.FDs, last.FDs, first.Goroutines, last.Goroutines, first.RSSKiB, last.RSSKiB, load0, loadAvg())
	if last.FDs != first.FDs {
		t.Errorf("lo's file descriptors went from %d to %d over %d failovers", first.FDs, last.FDs, done)
	}
	if last.Goroutines != first.Goroutines {
		t.Errorf("lo's goroutines went from %d to %d over %d failovers", first.Goroutines, last.Goroutines, done)
	}
	// RSS moves with the garbage collector's cycle; growth beyond that
	// slack is a leak.
	if last.RSSKiB > first.RSSKiB*3/2+4096 {
		t.Errorf("lo's RSS grew from %d to %d KiB over %d failovers", first.RSSKiB, last.RSSKiB, done)
	}
	if is.Transitions < done+warmup {
		t.Errorf("lo made %d transitions for %d failovers", is.Transitions, done)
	}
}
