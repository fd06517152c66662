package main

// The checker scale benchmark (bench/checkers.sh): 5,000 real servers with
// TCP_CHECK at delay_loop 1 s, against listeners on loopback, checked by
// keepalived's checker (keepalived --check) and then by vipd on the same
// generated configuration; CPU seconds of each over a steady window, the
// checks that reached the listeners, start to every real server in IPVS,
// and peak RSS. keepalived's checker programs IPVS and will not start
// without it, so this runs in the IPVS guest (scripts/ipvsvm/run.sh), with
// both daemons and the listeners on the guest's processors. Gated by
// VIPD_BENCH_CHECKERS=1 and VIPD_IPVS_GUEST: it is a benchmark, it asserts
// only that both daemons did the job (every real server in IPVS).

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// checkerScaleParams are the benchmark's knobs, from the environment.
type checkerScaleParams struct {
	Reals, PerVS     int
	DelayLoop        string // delay_loop, seconds
	Duration, Warmup time.Duration
	Impls            []string // keepalived, vipd, in the order they run
	Rounds           int
	VipdBin          string
}

func checkerScaleParamsFromEnv(t *testing.T) checkerScaleParams {
	p := checkerScaleParams{Reals: 5000, PerVS: 100, DelayLoop: "1", Duration: 60 * time.Second,
		Warmup: 10 * time.Second, Impls: []string{"keepalived", "vipd"}, Rounds: 1, VipdBin: "/files/vipd"}
	atoi := func(name string, v *int) {
		if s := os.Getenv(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", name, s)
			}
			*v = n
		}
	}
	dur := func(name string, v *time.Duration) {
		if s := os.Getenv(name); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a positive duration", name, s)
			}
			*v = d
		}
	}
	atoi("VIPD_CHECKERS_REALS", &p.Reals)
	atoi("VIPD_CHECKERS_PER_VS", &p.PerVS)
	atoi("VIPD_CHECKERS_ROUNDS", &p.Rounds)
	dur("VIPD_CHECKERS_DURATION", &p.Duration)
	dur("VIPD_CHECKERS_WARMUP", &p.Warmup)
	if s := os.Getenv("VIPD_CHECKERS_LOOP"); s != "" {
		if f, err := strconv.ParseFloat(s, 64); err != nil || f <= 0 {
			t.Fatalf("VIPD_CHECKERS_LOOP=%q: want seconds", s)
		}
		p.DelayLoop = s
	}
	if s := os.Getenv("VIPD_CHECKERS_IMPLS"); s != "" {
		p.Impls = strings.Split(s, ",")
	}
	if s := os.Getenv("VIPD_CHECKERS_VIPD"); s != "" {
		p.VipdBin = s
	}
	return p
}

// checkerScaleConf is the configuration both daemons load: reals real
// servers (the listeners' addresses), perVS to a NAT virtual server
// 10.9.x.y:80, each with a TCP_CHECK.
func checkerScaleConf(p checkerScaleParams, reals []netip.AddrPort) string {
	var b strings.Builder
	b.WriteString("global_defs {\n    router_id checkers\n}\n")
	for i, a := range reals {
		if i%p.PerVS == 0 {
			if i > 0 {
				b.WriteString("}\n")
			}
			v := i / p.PerVS
			fmt.Fprintf(&b, "virtual_server 10.9.%d.%d 80 {\n    delay_loop %s\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n",
				v/250, v%250+1, p.DelayLoop)
		}
		fmt.Fprintf(&b, "    real_server %s %d {\n        weight 1\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n",
			a.Addr(), a.Port())
	}
	if len(reals) > 0 {
		b.WriteString("}\n")
	}
	return b.String()
}

// ipvsTableCount counts the services and real servers in the IPVS table
// of process pid's network namespace.
func ipvsTableCount(pid int) (services, dests int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/ip_vs", pid))
	if err != nil {
		return 0, 0, err
	}
	services, dests = parseIPVSTableCount(string(b))
	return services, dests, nil
}

func parseIPVSTableCount(s string) (services, dests int) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "->" && f[1] != "RemoteAddress:Port":
			dests++
		case len(f) >= 2 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP" || f[0] == "FWM"):
			services++
		}
	}
	return services, dests
}

// guestBusy returns the busy and total jiffies of all processors, from
// /proc/stat.
func guestBusy() (busy, total int64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	for i := 1; i < len(f); i++ {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		total += n
		if i != 4 && i != 5 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}

// checkerListeners is the listener process (TestHelperListeners).
type checkerListeners struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	addrs []netip.AddrPort
}

// startCheckerListeners starts n listeners on 127.0.0.1, ports port,
// port+1, ..., in a new network namespace (the process's: see pid).
func startCheckerListeners(t *testing.T, n int, port int) *checkerListeners {
	t.Helper()
	l := &checkerListeners{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperListeners$")}
	l.cmd.Env = append(os.Environ(), "VIPD_BENCH_LISTENERS="+strconv.Itoa(n), "VIPD_BENCH_LISTENERS_PORT="+strconv.Itoa(port))
	l.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	l.cmd.Stderr = os.Stderr
	var err error
	if l.in, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := l.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.stop)
	l.out = bufio.NewScanner(stdout)
	for l.out.Scan() && l.out.Text() != "ready" {
		if strings.HasPrefix(l.out.Text(), "error") {
			t.Fatalf("listeners: %s", l.out.Text())
		}
		a, err := netip.ParseAddrPort(l.out.Text())
		if err != nil {
			t.Fatalf("listeners: %q: %v", l.out.Text(), err)
		}
		l.addrs = append(l.addrs, a)
	}
	if len(l.addrs) != n {
		t.Fatalf("listeners: started %d of %d", len(l.addrs), n)
	}
	return l
}

// stop ends the listener process (again is harmless).
func (l *checkerListeners) stop() {
	l.in.Close()
	l.cmd.Wait()
}

// accepted is the number of connections the listeners have accepted.
func (l *checkerListeners) accepted(t *testing.T) int64 {
	t.Helper()
	if _, err := fmt.Fprintln(l.in); err != nil {
		t.Fatal(err)
	}
	if !l.out.Scan() {
		t.Fatalf("listeners: %v", l.out.Err())
	}
	n, err := strconv.ParseInt(l.out.Text(), 10, 64)
	if err != nil {
		t.Fatalf("listeners: %q", l.out.Text())
	}
	return n
}

// checkerRun is one daemon's figures.
type checkerRun struct {
	Impl       string
	Start      time.Duration // start to every real server in IPVS
	StartCPU   time.Duration
	CPU        time.Duration // over the window
	Window     time.Duration
	Accepted   int64   // connections the listeners accepted in the window
	GuestBusy  float64 // share of the guest's processors busy in the window
	Up         int     // real servers in IPVS at the end of the window
	PeakRSSKiB int
}

func TestCheckerScaleBench(t *testing.T) {
	if os.Getenv("VIPD_BENCH_CHECKERS") == "" {
		t.Skip("benchmark: bench/checkers.sh (VIPD_BENCH_CHECKERS=1, in the IPVS guest)")
	}
	if os.Getenv("VIPD_IPVS_GUEST") == "" {
		t.Skip("runs in the IPVS guest: bench/checkers.sh boots it")
	}
	p := checkerScaleParamsFromEnv(t)
	dir := t.TempDir()
	// Every run has a network namespace of its own, with its own
	// listeners on its loopback: a fresh IPVS table and socket tables.
	// In one namespace a run's start paid for the one before: IPVS keeps
	// deleted real servers in a trash list for a minute or two and
	// searches it on every add, and keepalived, deleting them one by one,
	// left them in the order that costs most (vipd started in 4.5-5.0 s
	// after keepalived, 2.8 s after nothing).
	const port = 20000 // outside the ephemeral range, as services' ports are
	if p.Reals > 65535-port {
		t.Fatalf("at most %d real servers", 65535-port)
	}
	reals := make([]netip.AddrPort, p.Reals)
	for i := range reals {
		reals[i] = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port+i))
	}
	conf := checkerScaleConf(p, reals)
	cf := filepath.Join(dir, "checkers.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	nvs := (p.Reals + p.PerVS - 1) / p.PerVS
	fmt.Printf("checker scale: %d real servers (%d virtual servers x %d), TCP_CHECK, delay_loop %s s, listeners on 127.0.0.1:%d-%d; each run in a new network namespace; %s window after %s warm-up; %d round(s)\n",
		p.Reals, nvs, p.PerVS, p.DelayLoop, port, port+p.Reals-1, p.Duration, p.Warmup, p.Rounds)
	var runs []checkerRun
	for r := 0; r < p.Rounds; r++ {
		for _, impl := range p.Impls {
			run := runCheckerScale(t, p, port, impl, cf, nvs, dir)
			fmt.Printf("  %-10s  start %6.1f s (CPU %5.2f s)  window CPU %6.2f s  accepted %d (%.0f/s)  up %d/%d  guest busy %3.0f %%  peak RSS %.1f MiB\n",
				run.Impl, run.Start.Seconds(), run.StartCPU.Seconds(), run.CPU.Seconds(), run.Accepted,
				float64(run.Accepted)/run.Window.Seconds(), run.Up, p.Reals, 100*run.GuestBusy, float64(run.PeakRSSKiB)/1024)
			runs = append(runs, run)
			if run.Up != p.Reals {
				t.Errorf("%s: %d of %d real servers in IPVS at the end of the window", impl, run.Up, p.Reals)
			}
		}
	}
	printCheckerTable(os.Stdout, p, runs)
	cs, _ := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	fmt.Printf("guest clocksource at the end: %s\n", strings.TrimSpace(string(cs)))
}

func runCheckerScale(t *testing.T, p checkerScaleParams, port int, impl, cf string, nvs int, dir string) checkerRun {
	t.Helper()
	run := checkerRun{Impl: impl}
	// The listeners' process makes the run's network namespace; the
	// daemon joins it (nsenter), and it goes when both have ended.
	l := startCheckerListeners(t, p.Reals, port)
	defer l.stop()
	lpid := l.cmd.Process.Pid // its /proc/PID/net/ip_vs is the run's IPVS table
	logf, err := os.Create(filepath.Join(dir, impl+".log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var args []string
	checkPid := filepath.Join(dir, impl+".check.pid")
	switch impl {
	case "keepalived":
		bin, err := exec.LookPath("keepalived")
		if err != nil {
			t.Fatal("keepalived is not in the guest (bench/checkers.sh copies it with -b keepalived)")
		}
		// -G: no syslog; without a syslog daemon glibc writes each line
		// to the serial console (see bench_scale_test.go).
		args = []string{bin, "-n", "-l", "-G", "--check", "-f", cf, "-p", filepath.Join(dir, impl+".pid"), "-c", checkPid}
	case "vipd":
		if _, err := os.Stat(p.VipdBin); err != nil {
			t.Fatalf("vipd binary: %v (bench/checkers.sh copies it with -f)", err)
		}
		args = []string{p.VipdBin, "run", "-f", cf}
	default:
		t.Fatalf("unknown implementation %q", impl)
	}
	args = append([]string{"nsenter", "-t", strconv.Itoa(lpid), "-n", "--"}, args...)
	if _, _, err := ipvsTableCount(lpid); err != nil {
		t.Fatal(err)
	}
	child := ""
	if impl == "keepalived" {
		child = checkPid
	}
	start := time.Now()
	proc := startDaemonProc(t, args, logf, child)
	done, cpu := proc.done, proc.cpu
	defer proc.stop(60 * time.Second)
	deadline := start.Add(10 * time.Minute)
	for {
		svcs, dests, _ := ipvsTableCount(lpid)
		if svcs == nvs && dests == p.Reals {
			break
		}
		select {
		case <-done:
			logf.Sync()
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s exited before programming IPVS (%d services, %d real servers):\n%s", impl, svcs, dests, tail(b, 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d services and %d real servers in IPVS after 10 minutes, want %d and %d", impl, svcs, dests, nvs, p.Reals)
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.Start, run.StartCPU = time.Since(start), cpu()
	time.Sleep(p.Warmup)
	c0, a0 := cpu(), l.accepted(t)
	b0, g0 := guestBusy()
	t0 := time.Now()
	time.Sleep(p.Duration)
	c1, a1 := cpu(), l.accepted(t)
	b1, g1 := guestBusy()
	run.Window = time.Since(t0)
	run.CPU, run.Accepted = c1-c0, a1-a0
	if g1 > g0 {
		run.GuestBusy = float64(b1-b0) / float64(g1-g0)
	}
	run.PeakRSSKiB = proc.peakRSS()
	_, run.Up, _ = ipvsTableCount(lpid)
	logf.Sync()
	if b, err := os.ReadFile(logf.Name()); err == nil {
		lines := strings.Split(string(b), "\n")
		n := 0
		for _, l := range lines {
			if strings.Contains(strings.ToLower(l), "fail") || strings.Contains(l, "timeout") {
				if n++; n <= 5 {
					fmt.Printf("    %s log: %s\n", impl, l)
				}
			}
		}
		fmt.Printf("    %s log: %d lines, %d about failures\n", impl, len(lines)-1, n)
	}
	return run
}

// medianRange is v's median in format f, with its range when v has more
// than one value.
func medianRange(v []float64, f string) string {
	switch len(v) {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf(f, v[0])
	}
	return fmt.Sprintf(f+" ("+f+"-"+f+")", median(v), pct(v, 0), pct(v, 100))
}

// printCheckerTable prints the medians per daemon and vipd's ratios to
// keepalived.
func printCheckerTable(w io.Writer, p checkerScaleParams, runs []checkerRun) {
	type agg struct{ cpu, perCheck, rate, start, rss []float64 }
	by := map[string]*agg{}
	for _, r := range runs {
		a := by[r.Impl]
		if a == nil {
			a = &agg{}
			by[r.Impl] = a
		}
		rate := float64(r.Accepted) / r.Window.Seconds()
		a.cpu = append(a.cpu, r.CPU.Seconds()*60/r.Window.Seconds()) // per 60 s
		a.rate = append(a.rate, rate)
		if r.Accepted > 0 {
			a.perCheck = append(a.perCheck, 1e6*r.CPU.Seconds()/float64(r.Accepted))
		}
		a.start = append(a.start, r.Start.Seconds())
		a.rss = append(a.rss, float64(r.PeakRSSKiB)/1024)
	}
	fmt.Fprintf(w, "\n| daemon | CPU s per 60 s | checks/s reaching the listeners | CPU us per check | start to all in IPVS, s | peak RSS MiB |\n|---|---|---|---|---|---|\n")
	for _, impl := range p.Impls {
		a := by[impl]
		if a == nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %.0f | %s | %.1f | %.1f |\n", impl, medianRange(a.cpu, "%.2f"), median(a.rate),
			medianRange(a.perCheck, "%.0f"), median(a.start), median(a.rss))
	}
	v, k := by["vipd"], by["keepalived"]
	if v != nil && k != nil {
		fmt.Fprintf(w, "\nvipd/keepalived: CPU %s, CPU per check %s\n", ratio(v.cpu, k.cpu), ratio(v.perCheck, k.perCheck))
	}
}

// The benchmark's configuration loads without diagnostics, and the table
// counter reads /proc/net/ip_vs as the kernel writes it.
func TestCheckerScaleConfAndTable(t *testing.T) {
	p := checkerScaleParams{Reals: 5, PerVS: 2, DelayLoop: "1"}
	var reals []netip.AddrPort
	for i := 0; i < p.Reals; i++ {
		reals = append(reals, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(4000+i)))
	}
	cfg, diags, err := loadString(t, checkerScaleConf(p, reals), nil)
	if err != nil || len(diags) > 0 {
		t.Fatal(err, diags)
	}
	n := 0
	for _, vs := range cfg.VirtualServers {
		n += len(vs.RealServers)
	}
	if len(cfg.VirtualServers) != 3 || n != 5 {
		t.Errorf("%d virtual servers with %d real servers, want 3 with 5", len(cfg.VirtualServers), n)
	}
	table := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0A090001:0050 rr
  -> 7F000001:0FA0      Masq    1      0          0
  -> 7F000001:0FA1      Masq    1      0          0
FWM  00000001 wlc
  -> 0A000002:0000      Route   1      0          0
`
	if s, d := parseIPVSTableCount(table); s != 2 || d != 3 {
		t.Errorf("parsed %d services and %d real servers, want 2 and 3", s, d)
	}
}
