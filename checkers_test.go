package main

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/sys/unix"
)

// ---------------------------------------------------------------------------
// Pure scheduling core, on fake time.

var rsSimStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type rsSimAttempt struct {
	id string
	at time.Time
	ok bool
}

// rsSimulate drives q on fake time until `until`: each attempt starts when
// due, takes `took`, and gets its outcome from fn. Attempts run one after
// another, which is exact for a single checker.
func rsSimulate(q *rsCheckQueue, until time.Time, took time.Duration, fn func(id string, at time.Time) checkOutcome) ([]rsSimAttempt, []checkTransition) {
	var atts []rsSimAttempt
	var trs []checkTransition
	now := rsSimStart
	for {
		due, ok := q.next()
		if !ok || due.After(until) {
			return atts, trs
		}
		if due.After(now) {
			now = due
		}
		e := q.popDue(now)
		if e == nil { // a suspended checker was pushed back
			continue
		}
		out := fn(e.id, now)
		atts = append(atts, rsSimAttempt{e.id, now, out.Err == nil})
		now = now.Add(took)
		if t, ok := q.done(e, out, now); ok {
			trs = append(trs, t)
		}
	}
}

func rsNoJitterQueue() *rsCheckQueue {
	q := newRSCheckQueue()
	q.jitter = func(time.Duration) time.Duration { return 0 }
	return q
}

func rsSimSpec(kind checkKind, retry int, loop, dbr time.Duration) *checkerSpec {
	s := newCheckerSpec(kind, netip.MustParseAddr("127.0.0.1"), 80)
	s.Retry, s.DelayLoop, s.DelayBeforeRetry, s.Warmup = retry, loop, dbr, 0
	s.URLs = []checkURL{{Path: "/"}}
	s.MiscPath = "true"
	if err := s.normalize(); err != nil {
		panic(err)
	}
	return s
}

func rsFail(err string) checkOutcome { return checkOutcome{Err: errors.New(err), Weight: -1} }

var rsOK = checkOutcome{Weight: -1}

// keepalived check_tcp.c tcp_epilog: a checker that is up goes down after
// retry+1 consecutive failures separated by delay_before_retry; the down
// transition happens retry*delay_before_retry after the first failed
// attempt started (plus that attempt's own duration): attempts keep their
// phase (rsNextDue).
func TestCheckRetryRuleGoesDownAfterRetryPlusOne(t *testing.T) {
	for _, retry := range []int{0, 1, 3} {
		t.Run(strconv.Itoa(retry), func(t *testing.T) {
			q := rsNoJitterQueue()
			spec := rsSimSpec(checkTCP, retry, 10*time.Second, 2*time.Second)
			q.add("rs", spec, nil, rsSimStart)
			failAt := rsSimStart.Add(35 * time.Second) // server dies here
			backAt := rsSimStart.Add(120 * time.Second)
			took := 100 * time.Millisecond
			atts, trs := rsSimulate(q, rsSimStart.Add(200*time.Second), took, func(_ string, at time.Time) checkOutcome {
				if !at.Before(failAt) && at.Before(backAt) {
					return rsFail("connect: connection refused")
				}
				return rsOK
			})
			if len(trs) != 2 {
				t.Fatalf("transitions = %+v, want down then up", trs)
			}
			down, up := trs[0], trs[1]
			if down.Up || down.Attempts != retry+1 || down.Reason != "connect: connection refused" {
				t.Fatalf("down transition %+v, want Attempts %d", down, retry+1)
			}
			// The first failing attempt is the first one at or after failAt.
			var first time.Time
			for _, a := range atts {
				if !a.ok {
					first = a.at
					break
				}
			}
			want := first.Add(time.Duration(retry)*2*time.Second + took)
			if !down.At.Equal(want) {
				t.Errorf("down at %v, want %v", down.At.Sub(rsSimStart), want.Sub(rsSimStart))
			}
			// Bound from the issue: within retry x delay_before_retry plus the
			// attempts' own time (each at most connect_timeout) after the first failure.
			if bound := first.Add(time.Duration(retry)*2*time.Second + time.Duration(retry+1)*spec.ConnectTimeout); down.At.After(bound) {
				t.Errorf("down at %v after bound %v", down.At, bound)
			}
			// Once down, attempts are delay_loop apart and the first success
			// brings it back.
			if !up.Up || up.At.Before(backAt) || up.At.After(backAt.Add(spec.DelayLoop+took)) {
				t.Errorf("up transition %+v, want within one delay_loop of %v", up, backAt.Sub(rsSimStart))
			}
			var prev time.Time
			for _, a := range atts {
				if a.at.After(down.At) && a.at.Before(up.At) {
					if !prev.IsZero() && a.at.Sub(prev) != spec.DelayLoop {
						t.Errorf("attempts while down %v apart, want delay_loop", a.at.Sub(prev))
					}
					prev = a.at
				}
			}
		})
	}
}

// keepalived check_data.c: "For non alpha mode, one failure is enough
// initially" - retry_it starts at retry.
func TestCheckFirstFailureAtStartIsEnough(t *testing.T) {
	q := rsNoJitterQueue()
	q.add("rs", rsSimSpec(checkTCP, 3, 10*time.Second, time.Second), nil, rsSimStart)
	_, trs := rsSimulate(q, rsSimStart.Add(time.Second), 0, func(string, time.Time) checkOutcome { return rsFail("x") })
	if len(trs) != 1 || trs[0].Up || trs[0].Attempts != 1 || !trs[0].At.Equal(rsSimStart) {
		t.Fatalf("transitions %+v, want one down after the first attempt", trs)
	}
}

// alpha: the checker starts down; the first success brings it up, failures
// while down report nothing.
func TestCheckAlphaStartsDown(t *testing.T) {
	q := rsNoJitterQueue()
	spec := rsSimSpec(checkTCP, 1, 10*time.Second, time.Second)
	spec.Alpha = true
	q.add("rs", spec, nil, rsSimStart)
	n := 0
	_, trs := rsSimulate(q, rsSimStart.Add(35*time.Second), 0, func(string, time.Time) checkOutcome {
		n++
		if n <= 2 {
			return rsFail("refused")
		}
		return rsOK
	})
	if len(trs) != 1 || !trs[0].Up || !trs[0].At.Equal(rsSimStart.Add(20*time.Second)) {
		t.Fatalf("transitions %+v, want one up at 20s", trs)
	}
}

// A failure after a success resets nothing until retry+1 failures in a row:
// an isolated failure is retried and forgotten (check_tcp.c retry_it = 0 on
// success).
func TestCheckIsolatedFailureIsRetriedNotReported(t *testing.T) {
	q := rsNoJitterQueue()
	q.add("rs", rsSimSpec(checkTCP, 2, 10*time.Second, time.Second), nil, rsSimStart)
	n := 0
	atts, trs := rsSimulate(q, rsSimStart.Add(60*time.Second), 0, func(string, time.Time) checkOutcome {
		n++
		if n == 3 || n == 4 || n == 7 { // two failures, recovered; later one more
			return rsFail("refused")
		}
		return rsOK
	})
	if len(trs) != 0 {
		t.Fatalf("transitions %+v, want none", trs)
	}
	// After the failure at attempt 3 the retry comes delay_before_retry later.
	if d := atts[3].at.Sub(atts[2].at); d != time.Second {
		t.Errorf("retry after %v, want delay_before_retry 1s", d)
	}
	if d := atts[5].at.Sub(atts[4].at); d != 10*time.Second {
		t.Errorf("after recovery next attempt in %v, want delay_loop", d)
	}
}

// check_misc.c: misc_dynamic exit 2..255 is success with weight exit-2; a
// changed weight is reported even when up/down did not change.
func TestCheckMiscDynamicWeightTransitions(t *testing.T) {
	q := rsNoJitterQueue()
	spec := rsSimSpec(checkMisc, 0, 5*time.Second, time.Second)
	spec.MiscDynamic = true
	q.add("rs", spec, nil, rsSimStart)
	outs := []checkOutcome{{Weight: 10}, {Weight: 10}, {Weight: -1}, {Weight: 3}, rsFail("exit status 1"), {Weight: 3}}
	n := 0
	_, trs := rsSimulate(q, rsSimStart.Add(27*time.Second), 0, func(string, time.Time) checkOutcome {
		o := outs[n%len(outs)]
		n++
		return o
	})
	type tr struct {
		up     bool
		weight int
		only   bool
	}
	var got []tr
	for _, t := range trs {
		got = append(got, tr{t.Up, t.Weight, t.WeightOnly})
	}
	want := []tr{{true, 10, true}, {true, 3, true}, {false, 3, false}, {true, 3, false}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("transitions %v, want %v", got, want)
	}
}

// check_misc.c schedules the next run from last_ran (the start). The other
// checkers keep their phase: the next attempt is due a whole number of
// delays after the last was due, at least half a delay and at most a delay
// after it ended.
func TestCheckDelayPhase(t *testing.T) {
	for _, c := range []struct {
		kind      checkKind
		took, gap time.Duration // an attempt's length; start to start
	}{
		{checkTCP, 3 * time.Second, 10 * time.Second},
		{checkTCP, 7 * time.Second, 17 * time.Second},  // the next phase is too close: a delay after the end
		{checkTCP, 12 * time.Second, 20 * time.Second}, // the phase after, 8 s after the end
		{checkHTTP, 4 * time.Second, 10 * time.Second},
		{checkMisc, 3 * time.Second, 10 * time.Second},
		{checkMisc, 12 * time.Second, 12 * time.Second},
	} {
		q := rsNoJitterQueue()
		q.add("rs", rsSimSpec(c.kind, 0, 10*time.Second, time.Second), nil, rsSimStart)
		atts, _ := rsSimulate(q, rsSimStart.Add(45*time.Second), c.took, func(string, time.Time) checkOutcome { return rsOK })
		if d := atts[1].at.Sub(atts[0].at); d != c.gap {
			t.Errorf("%v taking %v: second run %v after the first, want %v", c.kind, c.took, d, c.gap)
		}
	}
}

func TestRSNextDue(t *testing.T) {
	d := time.Second
	at := func(ms int) time.Time { return rsSimStart.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct{ due, now, want int }{
		{0, 0, 1000},       // ended at once
		{0, 400, 1000},     // late by less than half a delay: same phase
		{0, 600, 1600},     // the next phase too close, the one after too far: a delay after the end
		{0, 3200, 4000},    // a slow attempt (a timeout): the first phase half a delay on
		{0, 3700, 4700},    // never later than a delay after the end
		{1000, 1000, 2000}, //
	} {
		if got := rsNextDue(at(c.due), at(c.now), d); !got.Equal(at(c.want)) {
			t.Errorf("due %d ms, ended %d ms: next %v, want %d ms", c.due, c.now, got.Sub(rsSimStart), c.want)
		}
	}
	if got := rsNextDue(at(0), at(5), 0); !got.Equal(at(5)) {
		t.Errorf("no delay: next %v, want now", got.Sub(rsSimStart))
	}
}

// register_checkers_thread: the first run waits a random time in
// [0, warmup], warmup defaulting to delay_loop.
func TestCheckWarmupSpreadsFirstRuns(t *testing.T) {
	q := newRSCheckQueue()
	spec := newCheckerSpec(checkTCP, netip.MustParseAddr("127.0.0.1"), 80)
	spec.DelayLoop = 6 * time.Second
	if err := spec.normalize(); err != nil {
		t.Fatal(err)
	}
	if spec.Warmup != spec.DelayLoop {
		t.Fatalf("default warmup %v, want delay_loop", spec.Warmup)
	}
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		e, err := q.add(strconv.Itoa(i), spec, nil, rsSimStart)
		if err != nil {
			t.Fatal(err)
		}
		d := e.due.Sub(rsSimStart)
		if d < 0 || d > spec.Warmup {
			t.Fatalf("first run at %v, outside [0, %v]", d, spec.Warmup)
		}
		seen[d/time.Second] = true
	}
	if len(seen) < 4 {
		t.Errorf("200 first runs fell in only %d one-second buckets; warmup is not spreading them", len(seen))
	}
}

// ha_suspend: a suspended checker runs no attempts and keeps its state;
// resumed, it runs within its warmup (at once here: no jitter).
func TestCheckQueueSuspend(t *testing.T) {
	q := rsNoJitterQueue()
	q.add("rs", rsSimSpec(checkTCP, 0, 10*time.Second, time.Second), nil, rsSimStart)
	if !q.setEnabled("rs", false, rsSimStart) || q.setEnabled("nope", false, rsSimStart) {
		t.Fatal("setEnabled on known/unknown ids")
	}
	atts, trs := rsSimulate(q, rsSimStart.Add(55*time.Second), 0, func(string, time.Time) checkOutcome { return rsFail("x") })
	if len(atts) != 0 || len(trs) != 0 {
		t.Fatalf("suspended checker ran %d attempts, %d transitions", len(atts), len(trs))
	}
	resume := rsSimStart.Add(55 * time.Second)
	q.setEnabled("rs", true, resume)
	if due, _ := q.next(); !due.Equal(resume) {
		t.Fatalf("resumed checker due at %v, want at once", due.Sub(rsSimStart))
	}
	if e := q.popDue(resume); e == nil || e.id != "rs" {
		t.Fatal("resumed checker not due")
	}
}

func TestCheckTransitionMessages(t *testing.T) {
	tcp := newCheckerSpec(checkTCP, netip.MustParseAddr("10.0.0.1"), 80)
	web := newCheckerSpec(checkHTTP, netip.MustParseAddr("2001:db8::1"), 8080)
	misc := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	misc.MiscPath = "/usr/local/bin/chk"
	cases := []struct {
		t    checkTransition
		spec *checkerSpec
		want string
	}{
		{checkTransition{Up: true}, tcp, "TCP connection to [10.0.0.1]:tcp:80 success."},
		{checkTransition{Attempts: 2, Reason: "connect: connection refused"}, tcp, "TCP_CHECK on service [10.0.0.1]:tcp:80 failed after 1 retries: connect: connection refused"},
		{checkTransition{Attempts: 1, Reason: "url /: status 500 not in 200-299"}, web, "HTTP_CHECK on service [2001:db8::1]:tcp:8080 failed: url /: status 500 not in 200-299"},
		{checkTransition{Up: true}, web, "Remote Web server [2001:db8::1]:tcp:8080 succeed on service."},
		{checkTransition{Up: true, WeightOnly: true, Weight: 7}, misc, "Misc check for [/usr/local/bin/chk] set weight 7."},
		{checkTransition{Attempts: 1, Reason: "timed out after 5s"}, misc, "MISC_CHECK on service [/usr/local/bin/chk] failed: timed out after 5s"},
	}
	for _, c := range cases {
		if got := c.t.message(c.spec); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// The Host header of keepalived's template brackets IPv6 (RFC 2732).
func TestCheckHTTPRequestTemplate(t *testing.T) {
	s := newCheckerSpec(checkHTTP, netip.MustParseAddr("::1"), 8080)
	s.URLs = []checkURL{{Path: "/a"}}
	s.normalize()
	if got, want := checkHTTPRequest(s, &s.URLs[0]), "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: [::1]:8080\r\n\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.HTTPProtocol, s.VirtualHost = "1.0C", "www.example.com"
	if got, want := checkHTTPRequest(s, &s.URLs[0]), "GET /a HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// bind_if and fwmark reach the socket (SO_BINDTODEVICE, SO_MARK need
// CAP_NET_RAW / CAP_NET_ADMIN).
func TestTCPCheckBindIfAndFWMark(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: SO_BINDTODEVICE and SO_MARK")
	}
	ln := acceptAndClose(t)
	s := rsLoopSpec(t, checkTCP, ln.Addr().String())
	s.BindIf, s.FWMark = "lo", 0x42
	rsWantOK(t, rsRunCheck(t, s))
	s.BindIf = "vipd-nonexistent0"
	rsWantFail(t, rsRunCheck(t, s), "bind_if vipd-nonexistent0")
	// The checkers that dial with net.Dial apply the same options.
	h := rsLoopSpec(t, checkHTTP, ln.Addr().String())
	h.URLs = []checkURL{{Path: "/"}}
	h.BindIf, h.FWMark = "vipd-nonexistent0", 0x42
	rsWantFail(t, rsRunCheck(t, h), "bind_if vipd-nonexistent0")
}

// MISC_CHECK's `user` runs the script with that uid/gid.
func TestMiscCheckUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: switches to uid 65534")
	}
	s := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	s.MiscTimeout = 5 * time.Second
	s.MiscUser = &syscall.Credential{Uid: 65534, Gid: 65534}
	s.MiscPath = `test "$(id -u):$(id -g)" = 65534:65534`
	rsWantOK(t, rsRunCheck(t, s))
}

func TestCheckQueueOrderAndRemove(t *testing.T) {
	q := rsNoJitterQueue()
	for i, off := range []int{5, 1, 3} {
		s := rsSimSpec(checkTCP, 0, time.Minute, time.Second)
		s.Warmup = 0
		e, _ := q.add(fmt.Sprint("c", i), s, nil, rsSimStart)
		e.due = rsSimStart.Add(time.Duration(off) * time.Second)
	}
	// heap invariants were broken by editing due directly; rebuild
	q2 := rsNoJitterQueue()
	for _, e := range q.h {
		q2.add(e.id, e.spec, nil, e.due)
	}
	if e := q2.popDue(rsSimStart.Add(500 * time.Millisecond)); e != nil {
		t.Fatalf("popDue before anything is due returned %s", e.id)
	}
	var order []string
	for e := q2.popDue(rsSimStart.Add(time.Hour)); e != nil; e = q2.popDue(rsSimStart.Add(time.Hour)) {
		order = append(order, e.id)
		if e.id == "c2" {
			q2.remove("c2") // removed while running: its result is dropped
			if _, ok := q2.done(e, rsFail("x"), rsSimStart); ok {
				t.Error("removed checker reported a transition")
			}
		}
	}
	if strings.Join(order, ",") != "c1,c2,c0" {
		t.Errorf("order %v, want c1,c2,c0", order)
	}
	if _, ok := q2.next(); ok {
		t.Error("removed checker was requeued")
	}
	// c0 was taken to run and not finished: it is still known.
	if _, err := q2.add("c0", rsSimSpec(checkTCP, 0, time.Minute, time.Second), nil, rsSimStart); err == nil {
		t.Error("adding a running checker's id again succeeded")
	}
	if _, err := q2.add("c2", rsSimSpec(checkTCP, 0, time.Minute, time.Second), nil, rsSimStart); err != nil {
		t.Errorf("re-adding a removed id: %v", err)
	}
}

func TestCheckerSpecDefaults(t *testing.T) {
	cases := []struct {
		kind  checkKind
		retry int
		dbr   time.Duration
	}{
		{checkTCP, 1, time.Second},
		{checkHTTP, 1, 3 * time.Second},
		{checkSSL, 1, 3 * time.Second},
		{checkMisc, 0, time.Second},
		{checkDNS, 3, 60 * time.Second}, // delay_before_retry defaults to delay_loop
		{checkSMTP, 1, time.Second},
		{checkUDP, 1, time.Second},
		{checkPing, 1, time.Second},
	}
	for _, c := range cases {
		s := newCheckerSpec(c.kind, netip.MustParseAddr("10.0.0.1"), 80)
		s.URLs = []checkURL{{Path: "/"}}
		s.MiscPath = "/bin/true"
		if err := s.normalize(); err != nil {
			t.Fatalf("%v: %v", c.kind, err)
		}
		if s.Retry != c.retry || s.DelayBeforeRetry != c.dbr || s.DelayLoop != time.Minute || s.ConnectTimeout != 5*time.Second {
			t.Errorf("%v: retry %d dbr %v loop %v timeout %v", c.kind, s.Retry, s.DelayBeforeRetry, s.DelayLoop, s.ConnectTimeout)
		}
	}
}

func TestCheckerSpecErrors(t *testing.T) {
	ip := netip.MustParseAddr("10.0.0.1")
	cases := map[string]func(s *checkerSpec){
		"has no url":               func(s *checkerSpec) { s.Kind = checkHTTP },
		"not 32 hex digits":        func(s *checkerSpec) { s.Kind = checkHTTP; s.URLs = []checkURL{{Path: "/", Digest: "abc"}} },
		"regex":                    func(s *checkerSpec) { s.Kind = checkHTTP; s.URLs = []checkURL{{Path: "/", Regex: "(("}} },
		"http_protocol":            func(s *checkerSpec) { s.Kind = checkHTTP; s.URLs = []checkURL{{Path: "/"}}; s.HTTPProtocol = "2" },
		"no misc_path":             func(s *checkerSpec) { s.Kind = checkMisc },
		"DNS_CHECK type":           func(s *checkerSpec) { s.Kind = checkDNS; s.DNSType = "PTRX" },
		"min_reply_length":         func(s *checkerSpec) { s.Kind = checkUDP; s.UDPMinReply = 300 },
		"has no connect_port":      func(s *checkerSpec) { s.ConnectPort = 0 },
		"differ in address family": func(s *checkerSpec) { s.BindTo = netip.MustParseAddr("::1") },
		"needs bind_if":            func(s *checkerSpec) { s.ConnectIP = netip.MustParseAddr("fe80::1") },
		"unknown checker kind":     func(s *checkerSpec) { s.Kind = 99 },
		"has no connect_ip":        func(s *checkerSpec) { s.ConnectIP = netip.Addr{} },
		"ssl ca": func(s *checkerSpec) {
			s.Kind = checkSSL
			s.URLs = []checkURL{{Path: "/"}}
			s.TLSCAFile = "/nonexistent"
		},
		"holds no PEM certificate": func(s *checkerSpec) {
			s.Kind = checkSSL
			s.URLs = []checkURL{{Path: "/"}}
			s.TLSCAFile = "/etc/hostname"
		},
		"reply mask and reply": func(s *checkerSpec) { s.Kind = checkUDP; s.UDPReply = []byte{1}; s.UDPReplyMask = []byte{1, 2} },
		"has no path":          func(s *checkerSpec) { s.Kind = checkHTTP; s.URLs = []checkURL{{}} },
		"DNS_CHECK name":       func(s *checkerSpec) { s.Kind = checkDNS; s.DNSName = strings.Repeat("a", 300) },
		"unterminated":         nil, // checkMiscCommand, below
	}
	for want, mod := range cases {
		if mod == nil {
			continue
		}
		s := newCheckerSpec(checkTCP, ip, 80)
		mod(s)
		err := s.normalize()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v", want, err)
		}
	}
	if _, err := checkMiscCommand(`/bin/echo "abc`); err == nil || !strings.Contains(err.Error(), "unterminated") {
		t.Errorf("unterminated quote: %v", err)
	}
}

func TestParseStatusCodes(t *testing.T) {
	r, err := parseStatusCodes([]string{"200", "300-302"})
	if err != nil {
		t.Fatal(err)
	}
	u := checkURL{StatusCodes: r}
	for code, want := range map[int]bool{200: true, 201: false, 301: true, 303: false} {
		if u.statusOK(code) != want {
			t.Errorf("status %d ok=%v", code, !want)
		}
	}
	if (&checkURL{}).statusOK(204) != true || (&checkURL{}).statusOK(301) {
		t.Error("default status codes are not 200-299")
	}
	for _, bad := range []string{"abc", "300-200", "99", "200-1000", "2x0-300"} {
		if _, err := parseStatusCodes([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseCheckHex(t *testing.T) {
	d, m, err := parseCheckHex("01 ab Fx", true)
	if err != nil || hex.EncodeToString(d) != "01abf0" || hex.EncodeToString(m) != "00000f" {
		t.Fatalf("got %x %x %v", d, m, err)
	}
	if _, _, err := parseCheckHex("0x", false); err == nil {
		t.Error("wildcard accepted where not allowed")
	}
	for _, bad := range []string{"", "abc", "zz"} {
		if _, _, err := parseCheckHex(bad, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMiscCommandSplitting(t *testing.T) {
	cases := map[string][]string{
		`/usr/bin/check a b`:           {"/usr/bin/check", "a", "b"},
		`/usr/bin/check "a b" 'c d'`:   {"/usr/bin/check", "a b", "c d"},
		`  check   x  `:                {"check", "x"},
		`cat </dev/tcp/127.0.0.1/8080`: {"/bin/sh", "-c", `cat </dev/tcp/127.0.0.1/8080`},
		`curl -s x | grep ok`:          {"/bin/sh", "-c", `curl -s x | grep ok`},
		`test -f /x; exit $?`:          {"/bin/sh", "-c", `test -f /x; exit $?`},
		`/bin/check "quoted | not sh"`: {"/bin/check", "quoted | not sh"},
		`check ""`:                     {"check", ""},
		`test "$(id -u)" = 0`:          {"/bin/sh", "-c", `test "$(id -u)" = 0`},
		`echo '$HOME'`:                 {"echo", "$HOME"},
	}
	for in, want := range cases {
		got, err := checkMiscCommand(in)
		if err != nil || fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
			t.Errorf("checkMiscCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// ---------------------------------------------------------------------------
// The driver, with fake checkers on real time (no timing assertions).

type rsCountingCheck struct {
	running, maxRunning, calls atomic.Int64
	hold                       time.Duration
}

func (c *rsCountingCheck) Check(ctx context.Context) checkOutcome {
	n := c.running.Add(1)
	for {
		m := c.maxRunning.Load()
		if n <= m || c.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	c.calls.Add(1)
	select {
	case <-time.After(c.hold):
	case <-ctx.Done():
	}
	c.running.Add(-1)
	return rsOK
}

// Thousands of checks share a bounded number of in-flight attempts, and
// every checker still gets its turn.
func TestCheckSchedulerBoundsConcurrency(t *testing.T) {
	base := runtime.NumGoroutine()
	s := newRSCheckScheduler(8, nil)
	var seen atomic.Int64
	s.OnAttempt = func(id string, out checkOutcome, st rsCheckStatus) {
		if out.Err == nil && st.Up && st.HasRun {
			seen.Add(1)
		}
	}
	ck := &rsCountingCheck{hold: 2 * time.Millisecond}
	const n = 300
	for i := 0; i < n; i++ {
		spec := newCheckerSpec(checkTCP, netip.MustParseAddr("127.0.0.1"), 1)
		spec.DelayLoop, spec.Warmup = time.Hour, 0
		if err := s.AddChecker(fmt.Sprint("c", i), spec, ck); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	for deadline := time.Now().Add(20 * time.Second); seen.Load() < n && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if got := ck.calls.Load(); got != n {
		t.Fatalf("%d of %d checkers ran", got, n)
	}
	if m := ck.maxRunning.Load(); m > 8 {
		t.Fatalf("%d attempts ran at once, limit 8", m)
	}
	if r := ck.running.Load(); r != 0 {
		t.Fatalf("%d attempts still running after Run returned", r)
	}
	if seen.Load() != n {
		t.Errorf("OnAttempt saw %d successful attempts, want %d", seen.Load(), n)
	}
	// No goroutine outlives Run: attempts run in goroutines that end with them.
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 200 {
			t.Fatalf("%d goroutines after Run returned, %d before", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Checkers against real servers on loopback.

func rsLoopSpec(t *testing.T, kind checkKind, addr string) *checkerSpec {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	s := newCheckerSpec(kind, ap.Addr(), ap.Port())
	s.ConnectTimeout = 2 * time.Second
	return s
}

func rsRunCheck(t *testing.T, s *checkerSpec) checkOutcome {
	t.Helper()
	ck, err := newChecker(s)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Check(context.Background())
}

func rsWantOK(t *testing.T, o checkOutcome) {
	t.Helper()
	if o.Err != nil {
		t.Fatalf("check failed: %v", o.Err)
	}
}

func rsWantFail(t *testing.T, o checkOutcome, reason string) {
	t.Helper()
	if o.Err == nil || !strings.Contains(o.Err.Error(), reason) {
		t.Fatalf("check error %v, want one containing %q", o.Err, reason)
	}
}

func TestTCPCheckRealServer(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		ln, err := net.Listen("tcp", network)
		if err != nil {
			t.Skipf("no %s: %v", network, err)
		}
		s := rsLoopSpec(t, checkTCP, ln.Addr().String())
		rsWantOK(t, rsRunCheck(t, s))
		ln.Close()
		rsWantFail(t, rsRunCheck(t, s), "connect: connection refused")
	}
	// bindto: the check's source address is the one configured.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	src := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			src <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	s := rsLoopSpec(t, checkTCP, ln.Addr().String())
	s.BindTo = netip.MustParseAddr("127.0.0.2")
	rsWantOK(t, rsRunCheck(t, s))
	if got := <-src; !strings.HasPrefix(got, "127.0.0.2:") {
		t.Errorf("connection came from %s, want bindto 127.0.0.2", got)
	}
}

// A server whose accept queue is full drops SYNs: the check times out at
// connect_timeout, and a cancelled context ends it early.
func TestTCPCheckTimeoutAndCancel(t *testing.T) {
	addr := synDropper(t)
	s := rsLoopSpec(t, checkTCP, addr)
	s.ConnectTimeout = 200 * time.Millisecond
	rsWantFail(t, rsRunCheck(t, s), "connect: timeout after 200ms")

	s.ConnectTimeout = time.Minute
	ck, err := newChecker(s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	rsWantFail(t, ck.Check(ctx), "connect: cancelled")
}

func rsBodyMD5(b string) string {
	h := md5.Sum([]byte(b))
	return hex.EncodeToString(h[:])
}

func TestHTTPGetRealServer(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	var gotHost, gotUA, gotProto atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost.Store(r.Host)
		gotUA.Store(r.UserAgent())
		gotProto.Store(r.Proto)
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "<html>service OK</html>\n")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	body := "<html>service OK</html>\n"

	s := rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/health", Digest: rsBodyMD5(body), Regex: `service\s+OK`}}
	rsWantOK(t, rsRunCheck(t, s))
	if gotHost.Load() != addr || gotUA.Load() != "KeepAliveClient" || gotProto.Load() != "HTTP/1.0" {
		t.Errorf("request Host %v UA %v proto %v, want keepalived's template", gotHost.Load(), gotUA.Load(), gotProto.Load())
	}

	status.Store(500)
	rsWantFail(t, rsRunCheck(t, s), "status 500 not in 200-299")
	status.Store(200)

	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Digest: rsBodyMD5("something else")}}
	rsWantFail(t, rsRunCheck(t, s), "digest mismatch")

	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Regex: "service OK", RegexNoMatch: true}}
	rsWantFail(t, rsRunCheck(t, s), "matched")
	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Regex: "maintenance"}}
	rsWantFail(t, rsRunCheck(t, s), "did not match")
	// "service" starts at byte 6 of the body.
	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Regex: "service", RegexMinOffset: 6, RegexMaxOffset: 6}}
	rsWantOK(t, rsRunCheck(t, s))
	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Regex: "service", RegexMinOffset: 7}}
	rsWantFail(t, rsRunCheck(t, s), "did not match")
	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/", Regex: "service", RegexMaxOffset: 5}}
	rsWantFail(t, rsRunCheck(t, s), "did not match")

	// status_code set, virtualhost and HTTP/1.1.
	status.Store(503)
	s = rsLoopSpec(t, checkHTTP, addr)
	codes, _ := parseStatusCodes([]string{"200", "500-503"})
	s.URLs = []checkURL{{Path: "/", StatusCodes: codes}, {Path: "/second", VirtualHost: "per-url.example", StatusCodes: codes}}
	s.VirtualHost = "www.example.com"
	s.HTTPProtocol = "1.1"
	rsWantOK(t, rsRunCheck(t, s))
	if gotHost.Load() != "per-url.example" || gotProto.Load() != "HTTP/1.1" {
		t.Errorf("Host %v proto %v, want the url's virtualhost over HTTP/1.1", gotHost.Load(), gotProto.Load())
	}

	srv.Close()
	rsWantFail(t, rsRunCheck(t, s), "connection refused")
}

// A server that accepts and never answers fails at connect_timeout.
func TestHTTPGetHungServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	s := rsLoopSpec(t, checkHTTP, ln.Addr().String())
	s.ConnectTimeout = 200 * time.Millisecond
	s.URLs = []checkURL{{Path: "/"}}
	rsWantFail(t, rsRunCheck(t, s), "timeout after 200ms")
}

func TestHTTPReadResponseParsing(t *testing.T) {
	spec := &checkerSpec{ConnectTimeout: time.Second}
	cases := []struct {
		in     string
		status int
		body   string
		err    string
	}{
		{"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello trailing", 200, "hello", ""},
		{"HTTP/1.1 404 Not Found\r\n\r\nbody to eof", 404, "body to eof", ""},
		{"HTTP/1.1 200\r\n\r\nx", 200, "x", ""},
		// Chunked bodies are hashed raw, framing included, as keepalived does.
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "3\r\nabc\r\n0\r\n\r\n", ""},
		{"", 0, "", "no data received"},
		{"HTTP/1.0 200 OK\r\nX: y\r\n", 0, "", "inside the header"},
		{"SSH-2.0-OpenSSH\r\n\r\n", 0, "", "not HTTP"},
		{"HTTP/1.0 2000 OK\r\n\r\n", 0, "", "bad status line"},
		{"HTTP/1.0 abc OK\r\n\r\n", 0, "", "bad status line"},
		{"HTTP/1.0\r\n\r\n", 0, "", "bad status line"},
	}
	for _, c := range cases {
		r, err := checkHTTPReadResponse(strings.NewReader(c.in), spec)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || r.Status != c.status || r.Digest != rsBodyMD5(c.body) || string(r.Body) != c.body {
			t.Errorf("%q: got %+v %v", c.in, r, err)
		}
	}
	long := "HTTP/1.0 200 OK\r\nX: " + strings.Repeat("a", checkHTTPMaxHeader) + "\r\n\r\n"
	if _, err := checkHTTPReadResponse(strings.NewReader(long), spec); err == nil || !strings.Contains(err.Error(), "header longer") {
		t.Errorf("huge header: %v", err)
	}
}

func rsWriteServerCA(t *testing.T, srv *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSSLGetRealServer(t *testing.T) {
	var sni atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sni.Store(r.TLS.ServerName)
		io.WriteString(w, "secure ok")
	}))
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")

	s := rsLoopSpec(t, checkSSL, addr)
	s.URLs = []checkURL{{Path: "/", Digest: rsBodyMD5("secure ok")}}
	rsWantOK(t, rsRunCheck(t, s)) // keepalived does not verify: self-signed passes
	if sni.Load() != "" {
		t.Errorf("SNI %q sent without enable_sni", sni.Load())
	}

	s = rsLoopSpec(t, checkSSL, addr)
	s.URLs = []checkURL{{Path: "/"}}
	s.VirtualHost, s.EnableSNI = "example.com", true
	rsWantOK(t, rsRunCheck(t, s))
	if sni.Load() != "example.com" {
		t.Errorf("SNI %q, want the virtualhost", sni.Load())
	}

	// Verification against the system roots fails for a test certificate...
	s = rsLoopSpec(t, checkSSL, addr)
	s.URLs = []checkURL{{Path: "/"}}
	s.TLSVerify = true
	rsWantFail(t, rsRunCheck(t, s), "tls handshake")
	// ...and passes with its CA; httptest's certificate names example.com.
	s = rsLoopSpec(t, checkSSL, addr)
	s.URLs = []checkURL{{Path: "/"}}
	s.TLSVerify, s.TLSCAFile, s.TLSServerName = true, rsWriteServerCA(t, srv), "example.com"
	rsWantOK(t, rsRunCheck(t, s))
	s = rsLoopSpec(t, checkSSL, addr)
	s.URLs = []checkURL{{Path: "/"}}
	s.TLSVerify, s.TLSCAFile, s.TLSServerName = true, rsWriteServerCA(t, srv), "wrong.example.net"
	rsWantFail(t, rsRunCheck(t, s), "tls handshake")

	// Plain HTTP against a TLS port fails with a reason.
	s = rsLoopSpec(t, checkHTTP, addr)
	s.URLs = []checkURL{{Path: "/"}}
	rsWantFail(t, rsRunCheck(t, s), "status 400")
}

// rsUDPEcho serves UDP on loopback, answering with reply(payload); nil
// reply means silence.
func rsUDPEcho(t *testing.T, addr string, reply func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r := reply(buf[:n]); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestUDPCheckRealServer(t *testing.T) {
	echo := rsUDPEcho(t, "127.0.0.1:0", func(p []byte) []byte { return append([]byte{}, p...) })
	s := rsLoopSpec(t, checkUDP, echo)
	s.UDPPayload = []byte("PING")
	s.UDPRequireReply = true
	s.UDPReply, s.UDPReplyMask, _ = parseCheckHex("50 49 4x", true) // "PI" then 0x4?
	rsWantOK(t, rsRunCheck(t, s))

	s.UDPReply, s.UDPReplyMask, _ = parseCheckHex("504f", true)
	rsWantFail(t, rsRunCheck(t, s), "reply data mismatch at byte 1")

	s.UDPReply, s.UDPReplyMask = nil, nil
	s.UDPMinReply = 10
	rsWantFail(t, rsRunCheck(t, s), "reply length 4 outside 10-255")

	// Without a payload keepalived's 32-byte filler is sent.
	got := make(chan []byte, 1)
	rec := rsUDPEcho(t, "127.0.0.1:0", func(p []byte) []byte { got <- append([]byte{}, p...); return p })
	s = rsLoopSpec(t, checkUDP, rec)
	rsWantOK(t, rsRunCheck(t, s))
	if p := <-got; string(p) != "keepalived check - keepalived ch" {
		t.Errorf("default payload %q", p)
	}

	// A silent server: fine without require_reply, a failure with it.
	silent := rsUDPEcho(t, "127.0.0.1:0", func([]byte) []byte { return nil })
	s = rsLoopSpec(t, checkUDP, silent)
	s.ConnectTimeout = 200 * time.Millisecond
	rsWantOK(t, rsRunCheck(t, s))
	s.UDPRequireReply = true
	rsWantFail(t, rsRunCheck(t, s), "timeout after 200ms")

	// A closed port answers with ICMP port unreachable.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	closed := pc.LocalAddr().String()
	pc.Close()
	s = rsLoopSpec(t, checkUDP, closed)
	s.UDPPayload = []byte("x")
	rsWantFail(t, rsRunCheck(t, s), "connection refused")
}

// rsDNSServer is a tiny DNS server over UDP on loopback: it answers every
// query with rcode, after sending one reply with a wrong ID first.
func rsDNSServer(t *testing.T, rcode dnsmessage.RCode, seen chan<- dnsmessage.Question) string {
	t.Helper()
	return rsUDPEcho(t, "127.0.0.1:0", func(p []byte) []byte {
		var ps dnsmessage.Parser
		h, err := ps.Start(p)
		if err != nil {
			return nil
		}
		q, err := ps.Question()
		if err != nil {
			return nil
		}
		if seen != nil {
			select {
			case seen <- q:
			default:
			}
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RCode: rcode, Authoritative: true})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if rcode == dnsmessage.RCodeSuccess && q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: [4]byte{192, 0, 2, 1}})
		}
		out, _ := b.Finish()
		return out
	})
}

func TestDNSCheckRealServer(t *testing.T) {
	seen := make(chan dnsmessage.Question, 4)
	addr := rsDNSServer(t, dnsmessage.RCodeSuccess, seen)
	s := rsLoopSpec(t, checkDNS, addr)
	rsWantOK(t, rsRunCheck(t, s))
	q := <-seen
	if q.Type != dnsmessage.TypeSOA || q.Name.String() != "." {
		t.Errorf("default query %v %v, want SOA for .", q.Type, q.Name)
	}
	s = rsLoopSpec(t, checkDNS, addr)
	s.DNSType, s.DNSName = "a", "www.example.com"
	rsWantOK(t, rsRunCheck(t, s))
	if q := <-seen; q.Type != dnsmessage.TypeA || q.Name.String() != "www.example.com." {
		t.Errorf("query %v %v", q.Type, q.Name)
	}

	bad := rsDNSServer(t, dnsmessage.RCodeServerFailure, nil)
	rsWantFail(t, rsRunCheck(t, rsLoopSpec(t, checkDNS, bad)), "rcode RCodeServerFailure")

	// Replies with another ID are ignored, so a server answering only with
	// wrong IDs times out.
	wrong := rsUDPEcho(t, "127.0.0.1:0", func(p []byte) []byte {
		if len(p) < 12 {
			return nil
		}
		r := append([]byte{}, p...)
		r[0] ^= 0xff
		r[2] |= 0x80 // QR
		return r
	})
	s = rsLoopSpec(t, checkDNS, wrong)
	s.ConnectTimeout = 200 * time.Millisecond
	rsWantFail(t, rsRunCheck(t, s), "timeout")
}

// rsSMTPServer is a minimal SMTP responder on loopback: banner, HELO, QUIT.
func rsSMTPServer(t *testing.T, banner string, helos chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c, banner)
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
					case "HELO":
						if helos != nil {
							helos <- strings.TrimSpace(line)
						}
						io.WriteString(c, "250 mx.test Hello\r\n")
					case "QUIT":
						io.WriteString(c, "221 mx.test closing\r\n")
						return
					default:
						io.WriteString(c, "500 unknown\r\n")
					}
				}
			}(c)
		}
	}()
	return ln.Addr().String()
}

func TestSMTPCheckRealServer(t *testing.T) {
	helos := make(chan string, 2)
	addr := rsSMTPServer(t, "220-mx.test ESMTP\r\n220 ready\r\n", helos)
	rsWantOK(t, rsRunCheck(t, rsLoopSpec(t, checkSMTP, addr)))
	if h := <-helos; h != "HELO smtpchecker.keepalived.org" {
		t.Errorf("got %q, want keepalived's default helo_name", h)
	}
	s := rsLoopSpec(t, checkSMTP, addr)
	s.SMTPHelo = "lb1.example.com"
	rsWantOK(t, rsRunCheck(t, s))
	if h := <-helos; h != "HELO lb1.example.com" {
		t.Errorf("got %q", h)
	}
	busy := rsSMTPServer(t, "554 no service\r\n", nil)
	rsWantFail(t, rsRunCheck(t, rsLoopSpec(t, checkSMTP, busy)), `bad banner reply "554 no service", want 220`)
}

func TestPingCheckLoopback(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "::1"} {
		s := newCheckerSpec(checkPing, netip.MustParseAddr(a), 0)
		s.ConnectTimeout = 2 * time.Second
		o := rsRunCheck(t, s)
		if o.Err != nil && strings.Contains(o.Err.Error(), "icmp socket") {
			t.Skipf("no ICMP socket (needs root or net.ipv4.ping_group_range): %v", o.Err)
		}
		rsWantOK(t, o)
	}
}

func TestMiscCheckExitCodes(t *testing.T) {
	s := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	s.MiscTimeout = 5 * time.Second
	s.MiscPath = "/bin/true"
	rsWantOK(t, rsRunCheck(t, s))
	s.MiscPath = "/bin/false"
	rsWantFail(t, rsRunCheck(t, s), "exit status 1")
	s.MiscPath = "exit 7" // shell syntax-free but not a program: runs via argv
	rsWantFail(t, rsRunCheck(t, s), "start")
	s.MiscPath = "/bin/sh -c 'exit 7'"
	rsWantFail(t, rsRunCheck(t, s), "exit status 7")
	s.MiscDynamic = true
	if o := rsRunCheck(t, s); o.Err != nil || o.Weight != 5 {
		t.Fatalf("misc_dynamic exit 7: %+v, want success with weight 5", o)
	}
	s.MiscPath = "test 1 -eq 1 && exit 2" // shell syntax: /bin/sh -c
	if o := rsRunCheck(t, s); o.Err != nil || o.Weight != 0 {
		t.Fatalf("misc_dynamic exit 2: %+v, want success with weight 0", o)
	}
	s.MiscPath = "exit 1;"
	rsWantFail(t, rsRunCheck(t, s), "exit status 1")
}

// A hanging script is killed at misc_timeout with its whole process group,
// including children it started in the background.
func TestMiscCheckTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	s.MiscTimeout = 300 * time.Millisecond
	s.MiscPath = fmt.Sprintf("sleep 1000 & echo $! > %s; sleep 1000", pidFile)
	rsWantFail(t, rsRunCheck(t, s), "timed out after 300ms")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("bad child pid %q", b)
	}
	// The background sleep was in the script's group: it must be gone (it
	// may linger a moment as a zombie until its new parent reaps it).
	for i := 0; ; i++ {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if i == 500 {
			t.Fatalf("background child %d of the timed-out script is still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// End to end: the scheduler watching real servers going down and back.

type rsTransitionLog struct {
	mu sync.Mutex
	ch chan checkTransition
}

func newRSTransitionLog() *rsTransitionLog {
	return &rsTransitionLog{ch: make(chan checkTransition, 64)}
}

func (l *rsTransitionLog) notify(t checkTransition) { l.ch <- t }

func (l *rsTransitionLog) wait(t *testing.T, what string) checkTransition {
	t.Helper()
	select {
	case tr := <-l.ch:
		return tr
	case <-time.After(30 * time.Second):
		t.Fatalf("no transition while waiting for %s", what)
	}
	return checkTransition{}
}

func rsStartScheduler(t *testing.T, s *rsCheckScheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestSchedulerTCPServerDownAndBack(t *testing.T) {
	ln := acceptAndClose(t)
	addr := ln.Addr().String()
	log := newRSTransitionLog()
	s := newRSCheckScheduler(4, log.notify)
	spec := rsLoopSpec(t, checkTCP, addr)
	spec.DelayLoop, spec.DelayBeforeRetry, spec.Retry, spec.Warmup = 30*time.Millisecond, 10*time.Millisecond, 2, 0
	var attempts atomic.Int64
	ck, _ := newChecker(spec)
	counted := rsCheckFunc(func(ctx context.Context) checkOutcome { attempts.Add(1); return ck.Check(ctx) })
	if err := s.AddChecker("rs1", spec, counted); err != nil {
		t.Fatal(err)
	}
	rsStartScheduler(t, s)
	for attempts.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	if st, ok := s.State("rs1"); !st.Up || !st.HasRun || !st.Enabled || !ok {
		t.Fatalf("state %+v known=%v with the server listening", st, ok)
	}
	ln.Close()
	tr := log.wait(t, "down")
	if tr.Up || tr.ID != "rs1" || tr.Attempts != 3 || !strings.Contains(tr.Reason, "connection refused") {
		t.Fatalf("transition %+v, want down after retry+1=3 refused attempts", tr)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	tr = log.wait(t, "up")
	if !tr.Up || tr.Reason != "" {
		t.Fatalf("transition %+v, want up", tr)
	}
}

type rsCheckFunc func(ctx context.Context) checkOutcome

func (f rsCheckFunc) Check(ctx context.Context) checkOutcome { return f(ctx) }

func TestSchedulerHTTPStatusDownAndBack(t *testing.T) {
	var status atomic.Int64
	status.Store(200)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	log := newRSTransitionLog()
	s := newRSCheckScheduler(0, log.notify)
	spec := rsLoopSpec(t, checkHTTP, strings.TrimPrefix(srv.URL, "http://"))
	spec.URLs = []checkURL{{Path: "/"}}
	spec.DelayLoop, spec.DelayBeforeRetry, spec.Retry, spec.Warmup = 30*time.Millisecond, 10*time.Millisecond, 1, 0
	spec.Alpha = true // starts down: the first success is reported
	if err := s.Add("web", spec); err != nil {
		t.Fatal(err)
	}
	rsStartScheduler(t, s)
	if tr := log.wait(t, "initial up"); !tr.Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	status.Store(500)
	tr := log.wait(t, "down")
	if tr.Up || tr.Attempts != 2 || tr.Reason != "url /: status 500 not in 200-299" {
		t.Fatalf("transition %+v", tr)
	}
	status.Store(200)
	if tr := log.wait(t, "up again"); !tr.Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	s.Remove("web")
	if _, ok := s.State("web"); ok {
		t.Fatal("removed checker still known")
	}
}

func TestSchedulerMiscDynamicWeight(t *testing.T) {
	dir := t.TempDir()
	codeFile := filepath.Join(dir, "code")
	os.WriteFile(codeFile, []byte("12"), 0o600)
	log := newRSTransitionLog()
	s := newRSCheckScheduler(0, log.notify)
	spec := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	spec.MiscPath = "exit $(cat " + codeFile + ")"
	spec.MiscDynamic = true
	spec.DelayLoop, spec.Warmup = 20*time.Millisecond, 0
	spec.MiscTimeout = 10 * time.Second // the default, delay_loop, is too short on a loaded machine
	if err := s.Add("misc", spec); err != nil {
		t.Fatal(err)
	}
	rsStartScheduler(t, s)
	if tr := log.wait(t, "weight"); !tr.Up || !tr.WeightOnly || tr.Weight != 10 {
		t.Fatalf("transition %+v, want weight 10", tr)
	}
	os.WriteFile(codeFile, []byte("1"), 0o600)
	if tr := log.wait(t, "down"); tr.Up || tr.Reason != "exit status 1" {
		t.Fatalf("transition %+v, want down", tr)
	}
}

// ---------------------------------------------------------------------------
// Fuzzing the parsers of untrusted input.

func FuzzHTTPReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 301 Moved\r\nContent-Length: -1\r\n\r\n"))
	f.Add([]byte("HTTP/1.1 200\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := checkHTTPReadResponse(strings.NewReader(string(b)), &checkerSpec{ConnectTimeout: time.Second})
		if err == nil && (r.Status < 100 || r.Status > 999 || len(r.Digest) != 32) {
			t.Fatalf("accepted %q as %+v", b, r)
		}
	})
}

func FuzzParseCheckHex(f *testing.F) {
	f.Add("01 ab Fx", true)
	f.Add("zz", false)
	f.Fuzz(func(t *testing.T, s string, wild bool) {
		d, m, err := parseCheckHex(s, wild)
		if err == nil && (len(d) == 0 || (m != nil && len(m) != len(d))) {
			t.Fatalf("%q -> %x %x", s, d, m)
		}
	})
}

func FuzzMiscCommand(f *testing.F) {
	f.Add(`/bin/check "a b" c`)
	f.Add(`cat </dev/tcp/x/1`)
	f.Fuzz(func(t *testing.T, s string) {
		argv, err := checkMiscCommand(s)
		if err == nil && len(argv) == 0 {
			t.Fatalf("%q gave no argv and no error", s)
		}
	})
}

func FuzzParseStatusCodes(f *testing.F) {
	f.Add("200-299")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseStatusCodes(strings.Fields(s))
		if err != nil {
			return
		}
		for _, x := range r {
			if x.Lo < 100 || x.Hi > 999 || x.Lo > x.Hi {
				t.Fatalf("%q -> %+v", s, r)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// Throughput: TCP_CHECKs per second through the scheduler against 1000
// loopback listeners, and the CPU time the checking process spends on them.
// The listeners live in a helper process (this test binary re-executed) so
// that their accept loops are not counted. delay_loop is 1ms so that the
// concurrency bound, not the schedule, limits the rate.
//
//	go test -run XXX -bench TCPCheckLoopback -benchtime 100000x

// TestHelperListeners is the benchmark's server process; it does nothing in
// a normal test run.
func TestHelperListeners(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIPD_BENCH_LISTENERS"))
	if n == 0 {
		t.Skip("helper process for BenchmarkTCPCheckLoopback")
	}
	// A listener per real server can exceed the default 4096 descriptors
	// (the checker scale benchmark has 5,000); root may raise the limit.
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(n)+256 {
		want := max(lim.Max, uint64(n)+256)
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: want, Max: want})
	}
	port, _ := strconv.Atoi(os.Getenv("VIPD_BENCH_LISTENERS_PORT")) // 0: any
	if port > 0 {
		// The checker scale benchmark starts this process in a network
		// namespace of its own, whose loopback is down.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		if err != nil {
			fmt.Println("error: cannot bring lo up:", err)
			os.Exit(1)
		}
	}
	var accepted atomic.Int64
	for i := 0; i < n; i++ {
		addr := "127.0.0.1:0"
		if port > 0 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port+i))
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(ln.Addr())
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
				accepted.Add(1)
			}
		}()
	}
	fmt.Println("ready")
	// Each line on stdin asks for the number of connections accepted so
	// far; the benchmark's end closes stdin.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		fmt.Println(accepted.Load())
	}
	os.Exit(0)
}

func BenchmarkTCPCheckLoopback(b *testing.B) {
	const listeners = 1000
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperListeners$")
	cmd.Env = append(os.Environ(), "VIPD_BENCH_LISTENERS="+strconv.Itoa(listeners))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var addrs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "ready" {
		if strings.HasPrefix(sc.Text(), "error") {
			b.Skip(sc.Text())
		}
		addrs = append(addrs, sc.Text())
	}
	if len(addrs) != listeners {
		b.Fatalf("helper started %d listeners", len(addrs))
	}
	go io.Copy(io.Discard, stdout)

	var count, failed atomic.Int64
	target := int64(b.N)
	reached := make(chan struct{})
	s := newRSCheckScheduler(256, nil)
	for i, a := range addrs {
		ap := netip.MustParseAddrPort(a)
		spec := newCheckerSpec(checkTCP, ap.Addr(), ap.Port())
		spec.DelayLoop, spec.Warmup, spec.ConnectTimeout = time.Millisecond, time.Millisecond, 2*time.Second
		ck, err := newChecker(spec)
		if err != nil {
			b.Fatal(err)
		}
		counted := rsCheckFunc(func(ctx context.Context) checkOutcome {
			o := ck.Check(ctx)
			if o.Err != nil && ctx.Err() == nil { // not cut short by the end of the run
				failed.Add(1)
			}
			if count.Add(1) == target {
				close(reached)
			}
			return o
		})
		if err := s.AddChecker(strconv.Itoa(i), spec, counted); err != nil {
			b.Fatal(err)
		}
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { s.Run(ctx); close(done) }()
	<-reached
	elapsed := time.Since(start)
	cancel()
	<-done
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	if f := failed.Load(); f > 0 {
		b.Errorf("%d of %d checks failed", f, count.Load())
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "checks/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/check")
	b.ReportMetric(100*cpu.Seconds()/elapsed.Seconds(), "%cpu")
	b.Logf("%d TCP_CHECKs against %d loopback listeners (in another process) in %v: %.0f checks/s, checker CPU %v (%.0f%% of one core, %.1f µs per check)",
		b.N, listeners, elapsed.Round(time.Millisecond), rate, cpu.Round(time.Millisecond), 100*cpu.Seconds()/elapsed.Seconds(), float64(cpu.Microseconds())/float64(b.N))
}

// HTTP_GET over IPv6 loopback: the Host header carries [::1]:port.
func TestHTTPGetIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	var host atomic.Value
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host.Store(r.Host)
		io.WriteString(w, "v6")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	s := rsLoopSpec(t, checkHTTP, ln.Addr().String())
	s.URLs = []checkURL{{Path: "/", Digest: rsBodyMD5("v6")}}
	rsWantOK(t, rsRunCheck(t, s))
	if host.Load() != ln.Addr().String() {
		t.Errorf("Host %v, want %s", host.Load(), ln.Addr())
	}
}

// A real web server: Debian's nginx on loopback, checked by HTTP_GET with
// the digest keepalived's genhash computes, stopped (down) and restarted
// (up) under the scheduler.
func TestHTTPGetRealNginx(t *testing.T) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed (scripts/deps.sh installs nginx-light)")
	}
	dir := t.TempDir()
	page := "<html>vipd nginx check</html>\n"
	os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path %[1]s;
	proxy_temp_path %[1]s;
	fastcgi_temp_path %[1]s;
	uwsgi_temp_path %[1]s;
	scgi_temp_path %[1]s;
	server { listen %[2]s; root %[1]s; }
}
`, dir, addr)), 0o644)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-c", conf, "-p", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		for i := 0; ; i++ {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
				return cmd
			}
			if i == 500 {
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx did not start: %s", b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	nginx := start()

	want := rsBodyMD5(page)
	if gh, err := exec.LookPath("genhash"); err == nil {
		host, port, _ := strings.Cut(addr, ":")
		out, err := exec.Command(gh, "-s", host, "-p", port, "-u", "/index.html").Output()
		if err != nil || strings.TrimSpace(string(out)) != want {
			t.Fatalf("keepalived genhash says %q (%v), want %s", out, err, want)
		}
	}
	log := newRSTransitionLog()
	s := newRSCheckScheduler(0, log.notify)
	spec := rsLoopSpec(t, checkHTTP, addr)
	spec.URLs = []checkURL{{Path: "/index.html", Digest: want}, {Path: "/missing", StatusCodes: []statusRange{{404, 404}}}}
	spec.DelayLoop, spec.DelayBeforeRetry, spec.Retry, spec.Warmup = 50*time.Millisecond, 20*time.Millisecond, 1, 0
	spec.Alpha = true
	if err := s.Add("nginx", spec); err != nil {
		t.Fatal(err)
	}
	rsStartScheduler(t, s)
	if tr := log.wait(t, "up"); !tr.Up {
		t.Fatalf("transition %+v, want up", tr)
	}
	nginx.Process.Kill()
	nginx.Wait()
	if tr := log.wait(t, "down"); tr.Up || tr.Attempts != 2 || !strings.Contains(tr.Reason, "connection refused") {
		t.Fatalf("transition %+v, want down after 2 refused attempts", tr)
	}
	start()
	if tr := log.wait(t, "up again"); !tr.Up {
		t.Fatalf("transition %+v, want up", tr)
	}
}

// rsApplyConf feeds a keepalived checker block, one keyword per line, to
// checkerKeyword the way the config loader does.
func rsApplyConf(t *testing.T, spec *checkerSpec, conf string) error {
	t.Helper()
	var u *checkURL
	for n, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "}" {
			u = nil
			continue
		}
		if f[len(f)-1] == "{" {
			f = f[:len(f)-1]
		}
		nu, err := checkerKeyword(spec, u, f[0], f[1:])
		if err != nil {
			return fmt.Errorf("line %d: %w", n+1, err)
		}
		if f[0] == "url" {
			u = nu
		}
	}
	return spec.normalize()
}

func TestCheckerKeywordsFromKeepalivedConf(t *testing.T) {
	spec := newCheckerSpec(checkHTTP, netip.MustParseAddr("192.0.2.10"), 80)
	err := rsApplyConf(t, spec, `
		url {
			path /health
			digest 9B3A0C85A887A256D6939DA88AABD8CD
			status_code 200 300-302
			regex "service +ok"
			regex_options caseless
			virtualhost per-url.example
		}
		url {
			path /second
		}
		connect_ip 192.0.2.11
		connect_port 8080
		bindto 192.0.2.1
		bind_port 4000
		bind_if eth0
		fwmark 7
		connect_timeout 3
		retry 3
		nb_get_retry 4
		delay_before_retry 2.5
		delay_loop 6
		warmup 0
		alpha
		virtualhost www.example.com
		enable_sni on
		http_protocol 1.1
		fast_recovery
		log_all_failures off`)
	if err != nil {
		t.Fatal(err)
	}
	u := spec.URLs[0]
	if len(spec.URLs) != 2 || u.Path != "/health" || u.Digest != "9b3a0c85a887a256d6939da88aabd8cd" ||
		fmt.Sprint(u.StatusCodes) != "[{200 200} {300 302}]" || u.VirtualHost != "per-url.example" ||
		!u.regexMatch([]byte("x SERVICE   OK")) || spec.URLs[1].Path != "/second" {
		t.Errorf("urls %+v", spec.URLs)
	}
	if spec.ConnectIP.String() != "192.0.2.11" || spec.ConnectPort != 8080 || spec.BindTo.String() != "192.0.2.1" ||
		spec.BindPort != 4000 || spec.BindIf != "eth0" || spec.FWMark != 7 || spec.ConnectTimeout != 3*time.Second ||
		spec.Retry != 4 || spec.DelayBeforeRetry != 2500*time.Millisecond || spec.DelayLoop != 6*time.Second ||
		spec.Warmup != 0 || !spec.Alpha || spec.VirtualHost != "www.example.com" || !spec.EnableSNI || spec.HTTPProtocol != "1.1" {
		t.Errorf("spec %+v", spec)
	}

	misc := newCheckerSpec(checkMisc, netip.Addr{}, 0)
	if err := rsApplyConf(t, misc, `
		misc_path "/usr/local/bin/check --port 80"
		misc_timeout 5
		misc_dynamic
		user nobody`); err != nil {
		t.Fatal(err)
	}
	if misc.MiscPath != "/usr/local/bin/check --port 80" || misc.MiscTimeout != 5*time.Second || !misc.MiscDynamic || misc.MiscUser == nil || misc.MiscUser.Uid != 65534 {
		t.Errorf("misc %+v", misc)
	}

	udp := newCheckerSpec(checkUDP, netip.MustParseAddr("192.0.2.10"), 53)
	if err := rsApplyConf(t, udp, `
		payload 01 02 ab
		require_reply 01 0x
		min_reply_length 2
		max_reply_length 100`); err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(udp.UDPPayload) != "0102ab" || !udp.UDPRequireReply || hex.EncodeToString(udp.UDPReply) != "0100" ||
		hex.EncodeToString(udp.UDPReplyMask) != "000f" || udp.UDPMinReply != 2 || udp.UDPMaxReply != 100 {
		t.Errorf("udp %+v", udp)
	}

	dns := newCheckerSpec(checkDNS, netip.MustParseAddr("192.0.2.10"), 53)
	if err := rsApplyConf(t, dns, "type AAAA\nname example.org"); err != nil || dns.DNSName != "example.org." || dns.dnsType != dnsmessage.TypeAAAA {
		t.Errorf("dns %+v %v", dns, err)
	}
	smtp := newCheckerSpec(checkSMTP, netip.MustParseAddr("192.0.2.10"), 25)
	if err := rsApplyConf(t, smtp, "helo_name lb.example.com"); err != nil || smtp.SMTPHelo != "lb.example.com" {
		t.Errorf("smtp %+v %v", smtp, err)
	}

	for conf, want := range map[string]string{
		"connect_port 0":             "not a port",
		"connect_ip 300.1.1.1":       "not an IP address",
		"connect_timeout soon":       "not a number of seconds",
		"retry -1":                   "not a number",
		"alpha maybe":                "not true or false",
		"frobnicate 1":               `unknown keyword "frobnicate"`,
		"url {\nfrob 1":              `unknown keyword "frob" in url block`,
		"url {\nstatus_code":         "status_code needs a value",
		"url {\nregex_options extra": "not supported",
		"user no-such-user-vipd":     `user "no-such-user-vipd"`,
		"payload zz":                 "bad digit",
		"connect_ip":                 "needs a value",
	} {
		s := newCheckerSpec(checkTCP, netip.MustParseAddr("192.0.2.10"), 80)
		if err := rsApplyConf(t, s, conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", conf, err, want)
		}
	}
}

func FuzzCheckerKeyword(f *testing.F) {
	f.Add("status_code", "200-300 x")
	f.Add("require_reply", "0x 1")
	f.Add("connect_timeout", "1e400")
	f.Fuzz(func(t *testing.T, kw, args string) {
		s := newCheckerSpec(checkHTTP, netip.MustParseAddr("192.0.2.1"), 80)
		u, _ := checkerKeyword(s, nil, "url", nil)
		checkerKeyword(s, u, kw, strings.Fields(args))
		checkerKeyword(s, nil, kw, strings.Fields(args))
		s.normalize()
	})
}

func TestParseCheckKind(t *testing.T) {
	for k := checkTCP; k <= checkSMTP; k++ {
		if got, err := parseCheckKind(k.String()); err != nil || got != k {
			t.Errorf("%v: %v %v", k, got, err)
		}
	}
	if _, err := parseCheckKind("BFD_CHECK"); err == nil || !strings.Contains(err.Error(), "unknown checker") {
		t.Errorf("BFD_CHECK: %v", err)
	}
}

// The scheduler's queue coalesces: when the first checker falls due, those
// due within their slack after it (a 64th of delay_loop, at most 10 ms)
// start with it, none starts after its due time, and each keeps its own
// phase for the next attempt.
func TestCheckCoalesce(t *testing.T) {
	q := rsNoJitterQueue()
	q.coalesce = true
	for _, c := range []struct {
		id        string
		off       time.Duration // due after rsSimStart
		delayLoop time.Duration
	}{{"a", 0, time.Second}, {"b", 4 * time.Millisecond, time.Second}, {"c", 10 * time.Millisecond, time.Second},
		{"d", 11 * time.Millisecond, time.Second}, {"e", 12 * time.Millisecond, 64 * time.Millisecond}} {
		if _, err := q.add(c.id, rsSimSpec(checkTCP, 0, c.delayLoop, time.Second), nil, rsSimStart.Add(c.off)); err != nil {
			t.Fatal(err)
		}
	}
	if due, _ := q.next(); !due.Equal(rsSimStart) {
		t.Fatalf("first wake-up at %v, want the first due time", due.Sub(rsSimStart))
	}
	var got []string
	for e := q.popDue(rsSimStart); e != nil; e = q.popDue(rsSimStart) {
		got = append(got, e.id)
		if e.id == "b" {
			q.done(e, rsOK, rsSimStart.Add(time.Millisecond))
			if want := rsSimStart.Add(4*time.Millisecond + time.Second); !e.due.Equal(want) {
				t.Errorf("b started 4 ms early is next due at +%v, want +%v (its own phase)", e.due.Sub(rsSimStart), want.Sub(rsSimStart))
			}
		}
	}
	// d, due 11 ms later, waits (a 64th of its delay_loop would be 15.6
	// ms: the slack is at most 10); so does e, due 12 ms later with a
	// slack of 1 ms.
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("started together at the first due time: %v, want a,b,c", got)
	}
	if due, _ := q.next(); !due.Equal(rsSimStart.Add(11 * time.Millisecond)) {
		t.Errorf("next wake-up at +%v, want d's due time +11ms", due.Sub(rsSimStart))
	}
	// MISC_CHECK counts from its start, but from its due time when it
	// started early.
	q3 := rsNoJitterQueue()
	q3.coalesce = true
	q3.add("m", rsSimSpec(checkMisc, 0, time.Second, time.Second), nil, rsSimStart.Add(5*time.Millisecond))
	if m := q3.popDue(rsSimStart); m == nil {
		t.Error("MISC_CHECK due within its slack did not start")
	} else if q3.done(m, rsOK, rsSimStart.Add(time.Millisecond)); !m.due.Equal(rsSimStart.Add(5*time.Millisecond + time.Second)) {
		t.Errorf("MISC_CHECK started 5 ms early is next due at +%v, want +1.005s", m.due.Sub(rsSimStart))
	}
	// Exact times without coalescing.
	q2 := rsNoJitterQueue()
	q2.add("a", rsSimSpec(checkTCP, 0, time.Second, time.Second), nil, rsSimStart)
	q2.add("b", rsSimSpec(checkTCP, 0, time.Second, time.Second), nil, rsSimStart.Add(time.Millisecond))
	if q2.popDue(rsSimStart) == nil || q2.popDue(rsSimStart) != nil {
		t.Error("without coalescing a checker started before its due time")
	}
}
