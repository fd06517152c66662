package main

// lab_bench.go is `vipd lab --bench`: the failover benchmark of issue 4
// ("Measure"), vipd and keepalived on identical LANs in the same run, and
// the wire capture it needs.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// arpSniffer records the gratuitous ARPs and the VRRP adverts seen on
// the client's eth0, with the kernel's receive timestamps
// (SO_TIMESTAMPNS): the figures do not include the lab's own scheduling
// delays.
type arpSniffer struct {
	fd   int
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	frames  []sniffedARP
	adverts []sniffedAdvert
}

// sniffedAdvert is a VRRP advert (IPv4) seen on the wire.
type sniffedAdvert struct {
	at   time.Time
	src  netip.Addr
	prio uint8
}

type sniffedARP struct {
	at     time.Time
	sender string // sender MAC
	ip     netip.Addr
}

// htons is v in network byte order, as sockaddr_ll's protocol and
// socket(2)'s protocol argument for AF_PACKET want it, on any host.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

// sniffARP opens an AF_PACKET socket for ARP on the client's eth0.
func (l *lab) sniffARP() (*arpSniffer, error) {
	s := &arpSniffer{fd: -1, done: make(chan struct{})}
	err := inNetns(l.ns("client"), func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("arp capture: %w", err)
		}
		s.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("arp capture: bind: %w", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("arp capture: SO_TIMESTAMPNS: %w", err)
		}
		// Reads wake up now and then so that Close is noticed.
		tv := unix.Timeval{Usec: 100000}
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		if s.fd >= 0 {
			unix.Close(s.fd)
		}
		return nil, err
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

func (s *arpSniffer) loop() {
	defer s.wg.Done()
	buf := make([]byte, 1600)
	oob := make([]byte, 256)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		n, oobn, _, from, err := unix.Recvmsg(s.fd, buf, oob, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // the client's own pings
		}
		at := time.Now()
		if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_TIMESTAMPNS && len(m.Data) >= 16 {
					at = time.Unix(int64(binary.NativeEndian.Uint64(m.Data[0:8])), int64(binary.NativeEndian.Uint64(m.Data[8:16])))
				}
			}
		}
		f := buf[:n]
		// An IPv4 VRRP advert: IP header, then version/type, VRID,
		// priority.
		if n >= 14+20+3 && f[12] == 0x08 && f[13] == 0x00 && f[14+9] == vrrpProto {
			ihl := int(f[14]&0x0f) * 4
			if n >= 14+ihl+3 {
				s.mu.Lock()
				s.adverts = append(s.adverts, sniffedAdvert{at: at, src: netip.AddrFrom4([4]byte(f[14+12 : 14+16])), prio: f[14+ihl+2]})
				s.mu.Unlock()
			}
			continue
		}
		// Ethernet header, then ARP for IPv4 over Ethernet: sender MAC at
		// 8, sender IP at 14, target IP at 24.
		if n < 42 || f[12] != 0x08 || f[13] != 0x06 {
			continue
		}
		a := f[14:]
		sip, tip := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28]))
		if sip != tip {
			continue // not gratuitous
		}
		s.mu.Lock()
		s.frames = append(s.frames, sniffedARP{at: at, sender: net.HardwareAddr(a[8:14]).String(), ip: sip})
		s.mu.Unlock()
	}
}

// first returns the time of the first gratuitous ARP for ip after from,
// sent by to (or, with use_vmac, where every router sends from the VMAC,
// by anyone), zero if none yet.
func (s *arpSniffer) first(from time.Time, ip netip.Addr, failed, to string, vmac bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.frames {
		if f.at.Before(from) || f.ip != ip {
			continue
		}
		if vmac || f.sender == to {
			return f.at
		}
	}
	return time.Time{}
}

// lastAdvert returns the time of the last advert from src before t, zero
// if none.
func (s *arpSniffer) lastAdvert(src netip.Addr, t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for _, a := range s.adverts {
		if a.src == src && !a.at.After(t) {
			last = a.at
		}
	}
	return last
}

func (s *arpSniffer) Close() error {
	close(s.done)
	s.wg.Wait()
	return unix.Close(s.fd)
}

// benchCase is one row of the failover table.
type benchCase struct {
	label    string
	version  int
	interval time.Duration
	fault    string
}

var benchCases = []benchCase{
	{"crash, v2 1s", 2, time.Second, "kill"},
	{"crash, v3 100ms", 3, 100 * time.Millisecond, "kill"},
	{"crash, v3 10ms", 3, 10 * time.Millisecond, "kill"},
	{"SIGTERM handover, v2 1s", 2, time.Second, "stop"},
	{"SIGTERM handover, v3 100ms", 3, 100 * time.Millisecond, "stop"},
	{"SIGTERM handover, v3 10ms", 3, 10 * time.Millisecond, "stop"},
}

// bench runs the failover benchmark and prints its table to out.
func (c *labCmd) bench(out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	runs := c.Runs
	if runs <= 1 {
		runs = 5
	}
	impls := []string{"vipd"}
	if _, err := exec.LookPath("keepalived"); err == nil {
		impls = append(impls, "keepalived")
	} else {
		fmt.Fprintln(os.Stderr, "bench: keepalived is not installed; vipd only")
	}
	n := 0
	lab := func(impl string, version int, interval time.Duration, fault string, runs int) ([]labRunResult, error) {
		n++
		cc := *c
		cc.Bench, cc.JSON, cc.Keepalived, cc.Keep = false, false, false, false
		cc.Impl, cc.VRRPVersion, cc.Interval, cc.Fault, cc.Runs = impl, version, interval, fault, runs
		cc.IPv6, cc.Unicast = false, false
		if cc.PingEvery == 10*time.Millisecond {
			cc.PingEvery = 2 * time.Millisecond
		}
		cc.Prefix = fmt.Sprintf("vipdbench%d-%d", os.Getpid(), n)
		if err := cc.check(); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "bench: %s, VRRPv%d %v, fault %s, %d runs\n", impl, version, interval, fault, runs)
		res, err := cc.runLab(ctx, io.Discard)
		var ok []labRunResult
		for _, r := range res {
			if r.Err != "" {
				fmt.Fprintf(os.Stderr, "bench: run %d: %s\n", r.Run, r.Err)
				continue
			}
			ok = append(ok, r)
		}
		return ok, err
	}
	type row struct {
		c    benchCase
		figs map[string][]labRunResult
	}
	var rows []row
	for _, bc := range benchCases {
		rw := row{c: bc, figs: map[string][]labRunResult{}}
		for _, impl := range impls {
			res, err := lab(impl, bc.version, bc.interval, bc.fault, runs)
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s %s: %v\n", impl, bc.label, err)
			}
			rw.figs[impl] = res
		}
		rows = append(rows, rw)
	}
	tk, err := lab("vipd", 3, 10*time.Millisecond, "stop", c.TakeoverRuns)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: takeover overhead: %v\n", err)
	}

	fmt.Fprintf(out, "\nFailover, median [min..max] of %d runs, ms. \"fault\": from the fault to the new master's first gratuitous ARP on the wire\n"+
		"(client's kernel timestamp; crash figures depend on the fault's phase against the adverts, which is random).\n"+
		"\"silence\": from the failed master's last advert on the wire (its priority 0 advert when stopped) to that ARP:\n"+
		"Master_Down_Interval (or Skew_Time) plus the takeover. Ratio: vipd / keepalived medians. Ping gap: the client's\n"+
		"longest gap between replies to a ping every 2 ms, median.\n\n", runs)
	fmt.Fprintf(out, "| %-26s | %-22s | %-22s | %-5s | %-22s | %-22s | %-5s | %-13s |\n", "case", "vipd fault", "keepalived fault", "ratio", "vipd silence", "keepalived silence", "ratio", "ping gap v/ka")
	fmt.Fprintf(out, "|%s|%s|%s|%s|%s|%s|%s|%s|\n", dashes(28), dashes(24), dashes(24), dashes(7), dashes(24), dashes(24), dashes(7), dashes(15))
	for _, rw := range rows {
		v, k := wireMS(rw.figs["vipd"]), wireMS(rw.figs["keepalived"])
		sv, sk := silenceMS(rw.figs["vipd"]), silenceMS(rw.figs["keepalived"])
		fmt.Fprintf(out, "| %-26s | %-22s | %-22s | %-5s | %-22s | %-22s | %-5s | %-13s |\n", rw.c.label, spread(v), spread(k), ratio(v, k),
			spread(sv), spread(sk), ratio(sv, sk), medianText(gapMS(rw.figs["vipd"]))+" / "+medianText(gapMS(rw.figs["keepalived"])))
	}
	var woke, vips, written, wire []float64
	for _, r := range tk {
		if r.TakeoverVIPsUS > 0 {
			woke = append(woke, r.TakeoverFiredUS)
			vips = append(vips, r.TakeoverVIPsUS)
			written = append(written, r.TakeoverGARPUS)
		}
		if r.TakeoverWireUS > 0 {
			wire = append(wire, r.TakeoverWireUS)
		}
	}
	fmt.Fprintf(out, "\nvipd takeover overhead (VRRPv3 10ms, SIGTERM handover; from the backup's timer being due), %d runs, us:\n\n", len(vips))
	fmt.Fprintf(out, "| %-46s | %8s | %8s | %8s | %8s |\n", "", "p50", "p90", "p99", "max")
	fmt.Fprintf(out, "|%s|%s|%s|%s|%s|\n", dashes(48), dashes(10), dashes(10), dashes(10), dashes(10))
	for _, x := range []struct {
		name string
		v    []float64
	}{{"woken up (vipd's clock)", woke}, {"VIPs added (vipd's clock)", vips}, {"first GARP round written (vipd's clock)", written}, {"first GARP on the wire (client's kernel stamp)", wire}} {
		fmt.Fprintf(out, "| %-46s | %8.0f | %8.0f | %8.0f | %8.0f |\n", x.name, pct(x.v, 50), pct(x.v, 90), pct(x.v, 99), pct(x.v, 100))
	}
	return nil
}

func dashes(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '-'
	}
	return string(b)
}

func wireMS(rs []labRunResult) []float64 {
	var v []float64
	for _, r := range rs {
		if r.WireMS >= 0 {
			v = append(v, r.WireMS)
		}
	}
	return v
}

func silenceMS(rs []labRunResult) []float64 {
	var v []float64
	for _, r := range rs {
		if r.SilenceMS >= 0 {
			v = append(v, r.SilenceMS)
		}
	}
	return v
}

func ratio(a, b []float64) string {
	if len(a) == 0 || len(b) == 0 || median(b) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", median(a)/median(b))
}

func gapMS(rs []labRunResult) []float64 {
	var v []float64
	for _, r := range rs {
		if r.PingGapMS >= 0 {
			v = append(v, r.PingGapMS)
		}
	}
	return v
}

// pct is the p-th percentile (nearest rank) of v; NaN-free: 0 when empty.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := int(float64(len(s))*p/100+0.5) - 1
	k = max(0, min(k, len(s)-1))
	return s[k]
}

func median(v []float64) float64 { return pct(v, 50) }

func medianText(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", median(v))
}

func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f [%.1f..%.1f]", median(v), pct(v, 0), pct(v, 100))
}
