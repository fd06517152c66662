package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// lvsTest is a manager on the fake kernel with its log and the scripts it
// ran.
type lvsTest struct {
	m       *lvsManager
	k       *fakeIPVS
	log     *syncBuffer
	scripts []string
}

func newLVSTest(t *testing.T, conf string, k ipvsKernel) *lvsTest {
	t.Helper()
	cfg, diags, err := loadString(t, conf, nil)
	if err != nil {
		t.Fatalf("config: %v %v", err, diags)
	}
	lt := &lvsTest{log: &syncBuffer{}}
	if f, ok := k.(*fakeIPVS); ok {
		lt.k = f
	}
	lt.m = noMail(newLVSManager(zerolog.New(lt.log), cfg, k, lvsOptions{}))
	var mu sync.Mutex
	lt.m.runScript = func(what string, s Script) {
		mu.Lock()
		lt.scripts = append(lt.scripts, what+": "+s.Cmd)
		mu.Unlock()
	}
	lt.m.localAddr = func(netip.Addr) bool { return false }
	return lt
}

// noMail stops m's mailer: tests never send mail to the addresses a
// configuration names (keepalived's samples have smtp_server 192.168.200.1).
func noMail(m *lvsManager) *lvsManager {
	m.mail.close(0)
	m.mail = nil
	return m
}

// set reports a checker transition of real server rs (index in the
// virtual server vs) as the scheduler would.
func (lt *lvsTest) set(t *testing.T, vs, rs int, up bool) {
	t.Helper()
	lt.setWeight(t, vs, rs, up, -1)
}

func (lt *lvsTest) setWeight(t *testing.T, vs, rs int, up bool, w int) {
	t.Helper()
	c := lt.m.vss[vs].reals[rs].checkers[0]
	lt.m.mu.Lock()
	lt.m.handle(checkTransition{ID: c.id, Kind: c.spec.Kind, Up: up, Weight: w, Reason: "connect: connection refused", Attempts: 2})
	lt.m.mu.Unlock()
}

func (lt *lvsTest) takeScripts() string {
	s := strings.Join(lt.scripts, "\n")
	lt.scripts = nil
	return s
}

// Quorum, hysteresis, inhibit_on_failure and the sorry server follow
// keepalived's ipwrapper.c: a failed server is removed (or weighted 0 with
// inhibit_on_failure); below quorum-hysteresis the sorry server replaces
// the pool and quorum_down runs; at quorum+hysteresis the pool is back and
// quorum_up runs.
func TestLVSTransitions(t *testing.T) {
	lt := newLVSTest(t, `
global_defs { router_id t }
virtual_server 10.0.0.1 80 {
    delay_loop 5
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    quorum 3
    hysteresis 1
    omega
    quorum_up "/bin/echo up"
    quorum_down "/bin/echo down"
    sorry_server 10.9.9.9 8080
    real_server 10.1.0.1 80 {
        weight 2
        notify_up /bin/rs1-up
        notify_down /bin/rs1-down
        TCP_CHECK { connect_timeout 1 }
    }
    real_server 10.1.0.2 80 {
        weight 1
        inhibit_on_failure
        HTTP_GET { url { path /health status_code 200 } }
    }
    real_server 10.1.0.3 80 {
        weight 1
        MISC_CHECK {
            misc_path /bin/true
            misc_dynamic
        }
    }
}
`, newFakeIPVS())
	lt.k.CreateService(tcpSvc("192.0.2.9:22", "wlc")) // not ours: never touched
	lt.m.start()
	step := func(name, wantTable, wantScripts string) {
		t.Helper()
		if got := ipvsTable(t, lt.k); got != wantTable {
			t.Errorf("%s: table\n%s\nwant\n%s", name, got, wantTable)
		}
		if got := lt.takeScripts(); got != wantScripts {
			t.Errorf("%s: scripts %q, want %q", name, got, wantScripts)
		}
	}
	step("start", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.1:80 NAT 2
  -> 10.1.0.2:80 NAT 1
  -> 10.1.0.3:80 NAT 1
TCP 192.0.2.9:22 wlc
`, "quorum_up of VS [10.0.0.1]:tcp:80: /bin/echo up")

	// rs2 fails: inhibited to weight 0; live weight 3 >= quorum-hysteresis.
	lt.set(t, 0, 1, false)
	step("rs2 down", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.1:80 NAT 2
  -> 10.1.0.2:80 NAT 0
  -> 10.1.0.3:80 NAT 1
TCP 192.0.2.9:22 wlc
`, "")
	// rs1 fails: removed; live 1 < 3-1: quorum lost, sorry server in.
	lt.set(t, 0, 0, false)
	step("rs1 down", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.2:80 NAT 0
  -> 10.9.9.9:8080 NAT 1
TCP 192.0.2.9:22 wlc
`, "notify_down of [10.1.0.1]:tcp:80: /bin/rs1-down\nquorum_down of VS [10.0.0.1]:tcp:80: /bin/echo down")
	// misc_dynamic raises rs3 to weight 3 (exit status 5): live 3 is not
	// yet quorum+hysteresis 4.
	lt.setWeight(t, 0, 2, true, 3)
	step("rs3 weight 3", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.2:80 NAT 0
  -> 10.9.9.9:8080 NAT 1
TCP 192.0.2.9:22 wlc
`, "")
	lt.set(t, 0, 1, true) // live 4: quorum back
	step("rs2 up", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.2:80 NAT 1
  -> 10.1.0.3:80 NAT 3
TCP 192.0.2.9:22 wlc
`, "quorum_up of VS [10.0.0.1]:tcp:80: /bin/echo up")
	lt.set(t, 0, 0, true)
	step("rs1 up", `TCP 10.0.0.1:80 wrr
  -> 10.1.0.1:80 NAT 2
  -> 10.1.0.2:80 NAT 1
  -> 10.1.0.3:80 NAT 3
TCP 192.0.2.9:22 wlc
`, "notify_up of [10.1.0.1]:tcp:80: /bin/rs1-up")
	for _, want := range []string{
		"Adding service [10.1.0.1]:tcp:80 to VS [10.0.0.1]:tcp:80",
		"Removing service [10.1.0.1]:tcp:80 from VS [10.0.0.1]:tcp:80",
		"Lost quorum 3-1=2 > 1 for VS [10.0.0.1]:tcp:80",
		"Adding sorry server [10.9.9.9]:tcp:8080 to VS [10.0.0.1]:tcp:80",
		"Removing sorry server [10.9.9.9]:tcp:8080 from VS [10.0.0.1]:tcp:80",
		"Disabling service [10.1.0.2]:tcp:80 of VS [10.0.0.1]:tcp:80",
		"Enabling service [10.1.0.2]:tcp:80 of VS [10.0.0.1]:tcp:80",
		"Changing weight from 1 to 3 for active service [10.1.0.3]:tcp:80 of VS [10.0.0.1]:tcp:80",
		"TCP_CHECK on service [10.1.0.1]:tcp:80 failed after 1 retries: connect: connection refused",
	} {
		if !strings.Contains(lt.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, lt.log.String())
		}
	}
	st := lt.m.Status()
	if len(st) != 1 || st[0].Quorum != "up" || st[0].LiveWeight != 6 || len(st[0].RealServers) != 3 ||
		st[0].RealServers[2].Weight != 3 || st[0].RealServers[2].KernelWeight != 3 || !st[0].RealServers[0].Up {
		t.Errorf("status %+v", st)
	}
	var out bytes.Buffer
	printLVSStatus(&out, st)
	if !strings.Contains(out.String(), "10.1.0.3:80") || !strings.Contains(out.String(), "MISC_CHECK ok") {
		t.Errorf("printed status:\n%s", out.String())
	}

	// omega: stopping, the live real servers go down (notify_down) and
	// then the quorum (quorum_down).
	lt.m.stop()
	step("stop", "TCP 192.0.2.9:22 wlc\n", "notify_down of [10.1.0.1]:tcp:80: /bin/rs1-down\nquorum_down of VS [10.0.0.1]:tcp:80: /bin/echo down")
}

// A real server is up only while all its checkers are up.
func TestLVSAllCheckersMustPass(t *testing.T) {
	lt := newLVSTest(t, `
virtual_server 10.0.0.1 80 {
    real_server 10.1.0.1 80 {
        TCP_CHECK { }
        HTTP_GET { url { path / } }
    }
    real_server 10.1.0.2 80 {
    }
}
`, newFakeIPVS())
	lt.m.start()
	rs := lt.m.vss[0].reals[0]
	tr := func(i int, up bool) {
		lt.m.mu.Lock()
		lt.m.handle(checkTransition{ID: rs.checkers[i].id, Up: up, Weight: -1})
		lt.m.mu.Unlock()
	}
	both := "TCP 10.0.0.1:80 wlc\n  -> 10.1.0.1:80 NAT 1\n  -> 10.1.0.2:80 NAT 1\n"
	one := "TCP 10.0.0.1:80 wlc\n  -> 10.1.0.2:80 NAT 1\n"
	tr(0, false)
	if got := ipvsTable(t, lt.k); got != one {
		t.Errorf("TCP_CHECK down:\n%s", got)
	}
	tr(1, false)
	tr(0, true)
	if got := ipvsTable(t, lt.k); got != one {
		t.Errorf("HTTP_GET still down:\n%s", got)
	}
	tr(1, true)
	if got := ipvsTable(t, lt.k); got != both {
		t.Errorf("both up:\n%s", got)
	}
}

// ha_suspend: the service is programmed and its checkers run only while a
// vrrp_instance carrying the virtual server's address is MASTER.
func TestLVSHASuspend(t *testing.T) {
	lt := newLVSTest(t, `
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 7
    virtual_ipaddress { 10.0.0.1/24 }
}
virtual_server 10.0.0.1 80 {
    ha_suspend
    real_server 10.1.0.1 80 { TCP_CHECK { } }
}
virtual_server 10.0.0.2 80 {
    real_server 10.1.0.1 80 { TCP_CHECK { } }
}
`, newFakeIPVS())
	lt.m.start()
	other := "TCP 10.0.0.2:80 wlc\n  -> 10.1.0.1:80 NAT 1\n"
	if got := ipvsTable(t, lt.k); got != other {
		t.Errorf("backup at start:\n%s", got)
	}
	id := lt.m.vss[0].reals[0].checkers[0].id
	if st, _ := lt.m.sched.State(id); st.Enabled {
		t.Error("checker of a suspended virtual server is enabled")
	}
	ev := func(to state) {
		lt.m.vrrpEvent(instanceEvent{Instance: "VI_1", Transition: true, To: to})
		lt.m.mu.Lock()
		lt.m.resync()
		lt.m.mu.Unlock()
	}
	ev(stateMaster)
	if got, want := ipvsTable(t, lt.k), "TCP 10.0.0.1:80 wlc\n  -> 10.1.0.1:80 NAT 1\n"+other; got != want {
		t.Errorf("master:\n%s\nwant\n%s", got, want)
	}
	if st, _ := lt.m.sched.State(id); !st.Enabled {
		t.Error("checker not resumed on MASTER")
	}
	ev(stateBackup)
	if got := ipvsTable(t, lt.k); got != other {
		t.Errorf("backup again:\n%s", got)
	}
	if st := lt.m.Status(); !st[0].Suspended || st[0].Programmed || st[1].Suspended {
		t.Errorf("status %+v", st)
	}
}

// Problems are reported with the file and line of the virtual server or
// checker.
func TestLVSErrorsNameFileLine(t *testing.T) {
	lt := newLVSTest(t, `
virtual_server 10.0.0.1 80 {
    lb_algo rr
    sh-port
    real_server 10.1.0.1 80 { }
}
virtual_server 10.0.0.2 80 {
    lb_algo twos
    real_server 10.1.0.1 80 { }
}
virtual_server 10.0.0.3 80 {
    persistence_engine sip
    real_server 10.1.0.1 80 {
        FILE_CHECK { track_file f }
    }
}
`, newFakeIPVS())
	lt.m.start()
	log := lt.log.String()
	for _, want := range []string{
		`keepalived.conf:2: virtual_server 10.0.0.1:80/TCP: sh-port only applies to the sh scheduler, not \"rr\"`,
		`keepalived.conf:7: virtual_server 10.0.0.2:80/TCP: ipvs: add service TCP 10.0.0.2:80 (twos): scheduler \"twos\" is not available in the running kernel`,
		`keepalived.conf:11: virtual_server 10.0.0.3:80/TCP: not supported by vipd: persistence_engine sip`,
		`keepalived.conf:14: FILE_CHECK of real_server [10.1.0.1]:tcp:80: not supported by vipd: FILE_CHECK`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if got, want := ipvsTable(t, lt.k), "TCP 10.0.0.3:80 wlc\n  -> 10.1.0.1:80 NAT 1\n"; got != want {
		t.Errorf("table:\n%s\nwant\n%s", got, want)
	}
	if st := lt.m.Status(); len(st) != 2 || !strings.Contains(st[0].Error, "twos") {
		t.Errorf("status %+v", st)
	}
	// Retried later: the same error is not logged again; once the
	// scheduler exists (module loaded) the service is programmed.
	lt.m.mu.Lock()
	lt.m.retryFailed(time.Now().Add(time.Hour))
	lt.m.mu.Unlock()
	if n := strings.Count(lt.log.String(), "no ip_vs_twos module"); n != 1 {
		t.Errorf("error logged %d times", n)
	}
	lt.k.scheds = append(lt.k.scheds, "twos")
	lt.m.mu.Lock()
	lt.m.retryFailed(time.Now().Add(2 * time.Hour))
	lt.m.mu.Unlock()
	if got := ipvsTable(t, lt.k); !strings.Contains(got, "TCP 10.0.0.2:80 twos\n  -> 10.1.0.1:80 NAT 1") {
		t.Errorf("after retry:\n%s", got)
	}
	if st := lt.m.Status(); st[0].Error != "" || !st[0].Programmed {
		t.Errorf("status after retry %+v", st[0])
	}
}

// lockedKernel serializes a kernel for tests that read it while the
// manager runs.
type lockedKernel struct {
	mu sync.Mutex
	k  ipvsKernel
}

func (l *lockedKernel) do(f func() error) error { l.mu.Lock(); defer l.mu.Unlock(); return f() }
func (l *lockedKernel) Services() (s []ipvsService, err error) {
	l.do(func() error { s, err = l.k.Services(); return nil })
	return
}
func (l *lockedKernel) Dests(x ipvsService) (d []ipvsDest, err error) {
	l.do(func() error { d, err = l.k.Dests(x); return nil })
	return
}
func (l *lockedKernel) CreateService(s ipvsService) error {
	return l.do(func() error { return l.k.CreateService(s) })
}
func (l *lockedKernel) UpdateService(s ipvsService) error {
	return l.do(func() error { return l.k.UpdateService(s) })
}
func (l *lockedKernel) DeleteService(s ipvsService) error {
	return l.do(func() error { return l.k.DeleteService(s) })
}
func (l *lockedKernel) CreateDest(s ipvsService, d ipvsDest) error {
	return l.do(func() error { return l.k.CreateDest(s, d) })
}
func (l *lockedKernel) UpdateDest(s ipvsService, d ipvsDest) error {
	return l.do(func() error { return l.k.UpdateDest(s, d) })
}
func (l *lockedKernel) DeleteDest(s ipvsService, d ipvsDest) error {
	return l.do(func() error { return l.k.DeleteDest(s, d) })
}
func (l *lockedKernel) Close() error { return nil }

// The whole manager with real TCP_CHECK and HTTP_GET checkers against
// loopback servers: a server that stops is taken out of the pool within
// retry x delay_before_retry + connect_timeout (polled, not timed), comes
// back when it returns, and notify_up/notify_down run. On stop our
// service is removed and the foreign one kept.
func TestLVSManagerLoopback(t *testing.T) {
	listen := func(addr string) net.Listener {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	serveHTTP := func(ln net.Listener) {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					buf := make([]byte, 512)
					c.Read(buf)
					fmt.Fprint(c, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
					c.Close()
				}()
			}
		}()
	}
	tcpLn := listen("127.0.0.1:0")
	serveHTTP(tcpLn)
	httpLn := listen("127.0.0.1:0")
	httpAddr := httpLn.Addr().String()
	serveHTTP(httpLn)
	defer tcpLn.Close()
	dir := t.TempDir()
	conf := fmt.Sprintf(`
global_defs {
    lvs_notify_fifo %s/fifo
}
virtual_server 10.0.0.1 80 {
    delay_loop 0.05
    warmup 0
    lb_algo rr
    real_server 127.0.0.1 %d {
        TCP_CHECK { connect_timeout 1 retry 1 delay_before_retry 0.05 }
    }
    real_server 127.0.0.1 %d {
        notify_up "/bin/touch %s/up"
        notify_down "/bin/touch %s/down"
        HTTP_GET { url { path /health } connect_timeout 1 retry 1 delay_before_retry 0.05 }
    }
}
`, dir, tcpLn.Addr().(*net.TCPAddr).Port, httpLn.Addr().(*net.TCPAddr).Port, dir, dir)
	fk := newFakeIPVS()
	fk.CreateService(tcpSvc("192.0.2.9:22", "wlc"))
	k := &lockedKernel{k: fk}
	cfg, diags, err := loadString(t, conf, nil)
	if err != nil {
		t.Fatal(err, diags)
	}
	log := &syncBuffer{}
	m := newLVSManager(zerolog.New(log), cfg, k, lvsOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	go m.Run(ctx)
	defer func() { cancel(); m.Wait() }()

	table := func() string {
		var s string
		k.do(func() error { s = ipvsTable(t, fk); return nil })
		return s
	}
	rsLines := []string{fmt.Sprintf("  -> %s NAT 1\n", tcpLn.Addr()), fmt.Sprintf("  -> %s NAT 1\n", httpAddr)}
	slices.Sort(rsLines)
	both := "TCP 10.0.0.1:80 rr\n" + strings.Join(rsLines, "") + "TCP 192.0.2.9:22 wlc\n"
	one := fmt.Sprintf("TCP 10.0.0.1:80 rr\n  -> %s NAT 1\nTCP 192.0.2.9:22 wlc\n", tcpLn.Addr())
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: table\n%s\nlog:\n%s", what, table(), log.String())
			}
		}
	}
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(dir, name)); return err == nil }
	waitFor("both up", func() bool { return table() == both })
	// lvs_notify_fifo: keepalived's "VS ... UP" and "RS ... DOWN|UP" lines.
	fifo, err := os.OpenFile(filepath.Join(dir, "fifo"), os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	fifoLines := &syncBuffer{}
	go io.Copy(fifoLines, fifo)
	httpLn.Close()
	waitFor("HTTP server removed", func() bool { return table() == one && exists("down") })
	httpLn = listen(httpAddr)
	defer httpLn.Close()
	serveHTTP(httpLn)
	waitFor("HTTP server back", func() bool { return table() == both && exists("up") })
	rsName := fmt.Sprintf("[127.0.0.1]:tcp:%d", httpLn.Addr().(*net.TCPAddr).Port)
	wantFifo := "VS [10.0.0.1]:tcp:80 UP\nRS " + rsName + " [10.0.0.1]:tcp:80 DOWN\nRS " + rsName + " [10.0.0.1]:tcp:80 UP\n"
	waitFor("fifo lines", func() bool { return fifoLines.String() == wantFifo })
	st := m.Status()
	if ck := st[0].RealServers[1].Checkers[0]; ck.Attempts < 3 || ck.Failed < 2 || ck.Failed >= ck.Attempts {
		t.Errorf("HTTP_GET counters: %+v", ck)
	}
	cancel()
	m.Wait()
	if got := table(); got != "TCP 192.0.2.9:22 wlc\n" {
		t.Errorf("after stop:\n%s", got)
	}
}

// --dont-release-ipvs keeps the services; lvs_flush empties the table at
// start.
func TestLVSKeepAndFlush(t *testing.T) {
	k := newFakeIPVS()
	k.CreateService(tcpSvc("192.0.2.9:22", "wlc"))
	lt := newLVSTest(t, `
global_defs { lvs_flush }
virtual_server 10.0.0.1 80 { real_server 10.1.0.1 80 { } }
`, k)
	lt.m.opts.Keep = true
	lt.m.start()
	want := "TCP 10.0.0.1:80 wlc\n  -> 10.1.0.1:80 NAT 1\n"
	if got := ipvsTable(t, k); got != want {
		t.Errorf("after flush and start:\n%s", got)
	}
	lt.m.stop()
	if got := ipvsTable(t, k); got != want {
		t.Errorf("kept:\n%s", got)
	}
}

// A kernel without IPVS: the manager reports it and does nothing.
func TestLVSNoKernel(t *testing.T) {
	lt := newLVSTest(t, `virtual_server 10.0.0.1 80 { real_server 10.1.0.1 80 { } }`, nil)
	lt.m.err = errNoIPVS
	if err := lt.m.Run(context.Background()); err != errNoIPVS {
		t.Errorf("Run = %v", err)
	}
	if st := lt.m.Status(); len(st) != 1 || !strings.Contains(st[0].Error, "load ip_vs") || st[0].Programmed {
		t.Errorf("status %+v", st)
	}
}

// Golden dumps of the desired IPVS state and the checkers for keepalived's
// sample configurations that have virtual servers, and the fake kernel's
// table after start.
func TestLVSGoldenSamples(t *testing.T) {
	var files []string
	// The samples sit next to the repository; a git worktree is one level
	// deeper.
	for _, dir := range []string{samplesDir, filepath.Join("..", samplesDir)} {
		if files, _ = filepath.Glob(filepath.Join(dir, "keepalived.conf.*")); len(files) > 0 {
			break
		}
	}
	if len(files) == 0 {
		t.Skipf("no keepalived samples in %s", samplesDir)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || !bytes.Contains(b, []byte("virtual_server")) || strings.HasSuffix(f, ".in") {
			continue
		}
		n++
		name := strings.TrimPrefix(filepath.Base(f), "keepalived.conf.")
		t.Run(name, func(t *testing.T) {
			cfg, _, err := loadConfig(f, loadOptions{ConfigID: "test"})
			if err != nil && cfg == nil {
				t.Fatal(err)
			}
			got := lvsDump(t, cfg)
			golden := filepath.Join("testdata", "lvs", name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("dump differs from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
	if n == 0 {
		t.Error("no sample with virtual_server")
	}
}

// lvsDump renders buildLVS's result and the table it programs.
func lvsDump(t *testing.T, cfg *Config) string {
	t.Helper()
	var b strings.Builder
	vss, errs := buildLVS(cfg)
	for _, e := range errs {
		fmt.Fprintf(&b, "%s: %s\n", map[bool]string{true: "warning", false: "error"}[e.Warn], e.Msg)
	}
	for _, vs := range vss {
		fmt.Fprintf(&b, "VS %s\n", vs.name)
		for _, s := range vs.services {
			n := s.normalize()
			fmt.Fprintf(&b, "  service %s sched %s flags %q timeout %d netmask /%d\n", n, n.Scheduler, n.Flags, n.Timeout, n.Netmask)
		}
		fmt.Fprintf(&b, "  quorum %d hysteresis %d", vs.pool.Quorum, vs.pool.Hysteresis)
		if vs.pool.Sorry != nil {
			fmt.Fprintf(&b, " sorry %s %s inhibit %v", vs.pool.Sorry, vs.pool.Sorry.Method, vs.pool.SorryInhibit)
		}
		if vs.haAddr.IsValid() {
			fmt.Fprintf(&b, " ha_suspend %s", vs.haAddr)
		}
		b.WriteString("\n")
		for _, rs := range vs.reals {
			fmt.Fprintf(&b, "  RS %s %s weight %d inhibit %v up %v thresholds %d/%d\n", rs.dest, rs.dest.Method, rs.dest.Weight,
				rs.cfg.InhibitOnFailure, rs.up, rs.dest.UThreshold, rs.dest.LThreshold)
			for _, c := range rs.checkers {
				s := c.spec
				fmt.Fprintf(&b, "    %s %s timeout %v loop %v retry %d delay_before_retry %v warmup %v alpha %v", s.Kind, s.addrPort(),
					s.ConnectTimeout, s.DelayLoop, s.Retry, s.DelayBeforeRetry, s.Warmup, s.Alpha)
				for _, u := range s.URLs {
					fmt.Fprintf(&b, " url %s status %s digest %q", u.Path, u.statusText(), u.Digest)
				}
				if s.VirtualHost != "" {
					fmt.Fprintf(&b, " virtualhost %s", s.VirtualHost)
				}
				if s.Kind == checkMisc {
					fmt.Fprintf(&b, " misc %q timeout %v dynamic %v", s.MiscPath, s.MiscTimeout, s.MiscDynamic)
				}
				b.WriteString("\n")
			}
		}
	}
	k := newFakeIPVS()
	m := noMail(newLVSManager(zerolog.Nop(), cfg, k, lvsOptions{}))
	m.localAddr = func(netip.Addr) bool { return true }
	m.start()
	b.WriteString("-- kernel table after start\n")
	b.WriteString(ipvsTable(t, k))
	return b.String()
}

// Throughput of the whole LVS manager: real servers from a configuration,
// each with a TCP_CHECK against its own loopback listener (in a helper
// process, TestHelperListeners, so that only the checking side's CPU is
// counted), transitions and pools through the manager, a fake kernel.
// Two schedules: delay_loop 1s (the rate a config of N real servers asks
// for) and delay_loop 1ms (saturation: the concurrency bound limits).
//
//	go test -run XXX -bench LVSManagerChecks -benchtime 5000x
func BenchmarkLVSManagerChecks(b *testing.B) {
	for _, bc := range []struct {
		name      string
		reals     int
		delayLoop string
	}{{"rs=1000/loop=1s", 1000, "1"}, {"rs=5000/loop=1s", 5000, "1"}, {"rs=1000/loop=1ms", 1000, "0.001"}} {
		b.Run(bc.name, func(b *testing.B) { benchLVSManager(b, bc.reals, bc.delayLoop) })
	}
}

func benchLVSManager(b *testing.B, reals int, delayLoop string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperListeners$")
	cmd.Env = append(os.Environ(), "VIPD_BENCH_LISTENERS="+strconv.Itoa(reals))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	var conf strings.Builder
	fmt.Fprintf(&conf, "virtual_server 10.0.0.1 80 {\n  delay_loop %s\n  lb_algo rr\n", delayLoop)
	sc := bufio.NewScanner(stdout)
	n := 0
	for sc.Scan() && sc.Text() != "ready" {
		if strings.HasPrefix(sc.Text(), "error") {
			b.Skip(sc.Text())
		}
		a := netip.MustParseAddrPort(sc.Text())
		fmt.Fprintf(&conf, "  real_server %s %d {\n    TCP_CHECK {\n      connect_timeout 2\n      warmup %s\n    }\n  }\n", a.Addr(), a.Port(), delayLoop)
		n++
	}
	conf.WriteString("}\n")
	if n != reals {
		b.Fatalf("helper started %d listeners", n)
	}
	go io.Copy(io.Discard, stdout)
	cfg, diags, err := loadConfig("keepalived.conf", memOptions(map[string]string{"keepalived.conf": conf.String()}, "bench"))
	if err != nil {
		b.Fatal(err, diags)
	}
	var count, failed, transitions atomic.Int64
	target := int64(b.N)
	reached := make(chan struct{})
	lvsMetricsHook = func(e lvsCheckEvent) {
		if e.Transition {
			transitions.Add(1)
			return
		}
		if !e.OK {
			failed.Add(1)
		}
		if count.Add(1) == target {
			close(reached)
		}
	}
	defer func() { lvsMetricsHook = nil }()
	k := &lockedKernel{k: newFakeIPVS()}
	m := newLVSManager(zerolog.Nop(), cfg, k, lvsOptions{})
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	ctx, cancel := context.WithCancel(context.Background())
	b.ResetTimer()
	start := time.Now()
	go m.Run(ctx)
	<-reached
	elapsed := time.Since(start)
	cancel()
	m.Wait()
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
	b.Logf("%d real servers, delay_loop %ss: %d TCP_CHECKs in %v through the LVS manager: %.0f checks/s at %.0f%% of one core (%.1f µs CPU per check, %d transitions)",
		reals, delayLoop, b.N, elapsed.Round(time.Millisecond), rate, 100*cpu.Seconds()/elapsed.Seconds(), float64(cpu.Microseconds())/float64(b.N), transitions.Load())
}

// A reload keeps the health of the real servers that stay, deletes the
// services that left the configuration, edits changed ones and creates new
// ones; foreign services are untouched.
func TestLVSReload(t *testing.T) {
	lt := newLVSTest(t, `
virtual_server 10.0.0.1 80 {
    lb_algo rr
    real_server 10.1.0.1 80 { TCP_CHECK { } }
    real_server 10.1.0.2 80 { TCP_CHECK { } }
}
virtual_server 10.0.0.2 80 {
    real_server 10.1.0.1 80 { }
}
`, newFakeIPVS())
	lt.k.CreateService(tcpSvc("192.0.2.9:22", "wlc"))
	lt.m.start()
	lt.set(t, 0, 0, false) // 10.1.0.1 fails
	lt.takeScripts()
	cfg, diags, err := loadString(t, `
virtual_server 10.0.0.1 80 {
    lb_algo wrr
    quorum_up /bin/up
    real_server 10.1.0.1 80 { TCP_CHECK { } }
    real_server 10.1.0.3 80 { TCP_CHECK { } }
}
virtual_server 10.0.0.3 80 {
    real_server 10.1.0.1 80 { }
}
`, nil)
	if err != nil {
		t.Fatal(err, diags)
	}
	lt.m.mu.Lock()
	lt.m.applyConfig(cfg)
	lt.m.mu.Unlock()
	want := `TCP 10.0.0.1:80 wrr
  -> 10.1.0.3:80 NAT 1
TCP 10.0.0.3:80 wlc
  -> 10.1.0.1:80 NAT 1
TCP 192.0.2.9:22 wlc
`
	if got := ipvsTable(t, lt.k); got != want {
		t.Errorf("after reload:\n%s\nwant\n%s", got, want)
	}
	// Quorum stayed up for 10.0.0.1: no quorum_up; the new virtual server
	// has none configured.
	if s := lt.takeScripts(); s != "" {
		t.Errorf("scripts %q", s)
	}
	// The failed checker was carried over down; its recovery adds it.
	c := lt.m.vss[0].reals[0].checkers[0]
	if st, ok := lt.m.sched.State(c.id); !ok || st.Up || len(lt.m.checks) != 2 {
		t.Errorf("carried checker %s: %+v %v (%d checkers)", c.id, st, ok, len(lt.m.checks))
	}
	lt.set(t, 0, 0, true)
	if got := ipvsTable(t, lt.k); !strings.Contains(got, "10.1.0.1:80 NAT 1\n  -> 10.1.0.3:80") {
		t.Errorf("after recovery:\n%s", got)
	}
	lt.m.stop()
	if got := ipvsTable(t, lt.k); got != "TCP 192.0.2.9:22 wlc\n" {
		t.Errorf("after stop:\n%s", got)
	}
}

// The keywords of issue 6 land in the IPVS service and destinations.
func TestLVSBuildMapping(t *testing.T) {
	cfg, diags, err := loadString(t, `
virtual_server_group G {
    10.0.0.10-12 443
    fwmark 9
}
virtual_server 10.0.0.1 53 {
    protocol UDP
    lvs_sched sh
    sh-port
    sh-fallback
    ops
    persistence_timeout 120
    persistence_granularity 255.255.255.0
    lvs_method TUN type gue port 6080 csum
    virtualhost www.example.com
    retry 4
    delay_before_retry 2
    connect_timeout 3
    warmup 1
    delay_loop 7
    sorry_server 10.9.9.9 53
    sorry_server_inhibit
    real_server 10.1.0.1 53 {
        weight 5
        uthreshold 100
        lthreshold 10
        DNS_CHECK { type A name example.com }
    }
    real_server 10.1.0.2 53 {
        lvs_method DR
        alpha
        HTTP_GET {
            url {
                path /a
                status_code 200-204
            }
            retry 0
        }
    }
}
virtual_server fwmark 7 {
    ip_family inet6
    lb_algo mh
    mh-port
    real_server fd00::1 80 { }
}
virtual_server group G {
    lb_algo rr
    real_server 10.1.0.5 443 { }
}
`, nil)
	if err != nil {
		t.Fatal(err, diags)
	}
	got := lvsDump(t, cfg)
	want := `VS [10.0.0.1]:udp:53
  service UDP 10.0.0.1:53 sched sh flags "persistent,ops,flag-1,flag-2" timeout 120 netmask /24
  quorum 1 hysteresis 0 sorry 10.9.9.9:53 TUN inhibit true
  RS 10.1.0.1:53 TUN weight 5 inhibit false up true thresholds 100/10
    DNS_CHECK 10.1.0.1:53 timeout 3s loop 7s retry 4 delay_before_retry 2s warmup 1s alpha false virtualhost www.example.com
  RS 10.1.0.2:53 DR weight 1 inhibit false up false thresholds 0/0
    HTTP_GET 10.1.0.2:53 timeout 3s loop 7s retry 0 delay_before_retry 2s warmup 1s alpha true url /a status 200-204 digest "" virtualhost www.example.com
VS FWM 7
  service FWM 7 IPv6 sched mh flags "flag-2" timeout 0 netmask /128
  quorum 1 hysteresis 0
  RS [fd00::1]:80 NAT weight 1 inhibit false up true thresholds 0/0
VS group G
  service TCP 10.0.0.10:443 sched rr flags "" timeout 0 netmask /32
  service TCP 10.0.0.11:443 sched rr flags "" timeout 0 netmask /32
  service TCP 10.0.0.12:443 sched rr flags "" timeout 0 netmask /32
  service FWM 9 sched rr flags "" timeout 0 netmask /32
  quorum 1 hysteresis 0
  RS 10.1.0.5:443 NAT weight 1 inhibit false up true thresholds 0/0
-- kernel table after start
FWM 7 IPv6 mh flag-2
  -> [fd00::1]:80 NAT 1
FWM 9 rr
  -> 10.1.0.5:443 NAT 1
TCP 10.0.0.10:443 rr
  -> 10.1.0.5:443 NAT 1
TCP 10.0.0.11:443 rr
  -> 10.1.0.5:443 NAT 1
TCP 10.0.0.12:443 rr
  -> 10.1.0.5:443 NAT 1
UDP 10.0.0.1:53 sh persistent,ops,flag-1,flag-2 timeout 120 /24
  -> 10.1.0.1:53 TUN 5
  -> 10.9.9.9:53 TUN 0
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	// The TUN options reach the destinations.
	d := cfg.VirtualServers[0]
	vss, _ := buildLVS(cfg)
	if rs := vss[0].reals[0].dest; rs.Tunnel != tunnelGUE || rs.TunnelPort != 6080 || rs.TunnelCsum != 1 {
		t.Errorf("tunnel of %s: %+v (config %s %d %s)", rs, rs, d.TunnelType, d.TunnelPort, d.TunnelCsum)
	}
}

// FuzzLVSBuild: any configuration that loads maps to IPVS state and
// programs the fake kernel without panicking; every service that reaches
// the kernel is valid. Crashers are kept in testdata/fuzz/FuzzLVSBuild.
func FuzzLVSBuild(f *testing.F) {
	for _, dir := range []string{samplesDir, filepath.Join("..", samplesDir)} {
		files, _ := filepath.Glob(filepath.Join(dir, "keepalived.conf.*"))
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte("virtual_server")) {
				f.Add(string(b))
			}
		}
	}
	f.Add("virtual_server_group G {\n10.0.0.1-255 80\nfwmark 1\n}\nvirtual_server group G {\nlb_algo mh\nmh-port\nreal_server 10.0.0.9 80 {\nweight 0\n}\n}\n")
	f.Add("virtual_server fe80::1 0 {\npersistence_granularity 64\nsorry_server fe80::2\nreal_server fe80::3 {\nMISC_CHECK {\nmisc_path \"/x y\"\n}\n}\n}\n")
	f.Fuzz(func(t *testing.T, text string) {
		opt := memOptions(map[string]string{"keepalived.conf": text}, "x")
		opt.MaxLines = 5000
		cfg, _, err := loadConfig("keepalived.conf", opt)
		if err != nil {
			return
		}
		vss, _ := buildLVS(cfg)
		for _, vs := range vss {
			for _, s := range vs.services {
				if err := s.validate(); err != nil {
					t.Fatalf("invalid service built: %v", err)
				}
			}
		}
		k := newFakeIPVS()
		m := noMail(newLVSManager(zerolog.Nop(), cfg, k, lvsOptions{}))
		m.localAddr = func(netip.Addr) bool { return true }
		m.runScript = func(string, Script) {}
		m.start()
		m.Status()
		m.stop()
		if len(k.svcs) != 0 {
			t.Fatalf("services left after stop: %v", k.svcs)
		}
	})
}

// A checker that cannot run (a regex RE2 rejects, an unknown MISC_CHECK
// user) keeps its real server out of the pool: never taken for healthy.
func TestLVSBrokenCheckerFailsClosed(t *testing.T) {
	lt := newLVSTest(t, `
virtual_server 10.0.0.4 80 {
    real_server 10.1.0.1 80 {
        HTTP_GET {
            url {
                path /
                regex "(?<=a)b"
            }
        }
    }
    real_server 10.1.0.2 80 {
        TCP_CHECK {
        }
    }
}
`, newFakeIPVS())
	lt.m.start()
	if got, want := ipvsTable(t, lt.k), "TCP 10.0.0.4:80 wlc\n  -> 10.1.0.2:80 NAT 1\n"; got != want {
		t.Errorf("table:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(lt.log.String(), `keepalived.conf:4: HTTP_GET of real_server [10.1.0.1]:tcp:80: regex`) ||
		!strings.Contains(lt.log.String(), "kept out of the pool") {
		t.Errorf("log:\n%s", lt.log.String())
	}
	st := lt.m.Status()
	if rs := st[0].RealServers[0]; rs.Up || rs.KernelWeight != -1 || !strings.Contains(rs.Error, "regex") {
		t.Errorf("status %+v", rs)
	}
	cfg := lt.m.cfg
	if ds := lvsDiags(cfg); len(ds) != 1 || ds[0].Severity != sevError || ds[0].Line != 4 {
		t.Errorf("diags %v", ds)
	}
}

// smtp_alert on a real server mails its state changes, and on the virtual
// server its quorum changes, to a local SMTP server (keepalived's
// "Realserver ... of virtual server ... - DOWN" subjects).
func TestLVSSMTPAlert(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := startSMTP(t, ln)
	cfg, diags, err := loadString(t, fmt.Sprintf(`
global_defs {
    router_id lb1
    notification_email {
        ops@example.org
    }
    notification_email_from vipd@lb1.example.org
    smtp_server 127.0.0.1 %d
    smtp_connect_timeout 2
}
virtual_server 10.0.0.1 80 {
    smtp_alert
    real_server 10.1.0.1 80 {
        TCP_CHECK {
        }
    }
}
`, ln.Addr().(*net.TCPAddr).Port), nil)
	if err != nil {
		t.Fatal(err, diags)
	}
	log := &syncBuffer{}
	m := newLVSManager(zerolog.New(log), cfg, newFakeIPVS(), lvsOptions{})
	m.runScript = func(string, Script) {}
	if m.mail == nil {
		t.Fatal("no mailer")
	}
	m.start() // quorum gained: one mail
	c := m.vss[0].reals[0].checkers[0]
	m.mu.Lock()
	m.handle(checkTransition{ID: c.id, Kind: checkTCP, Up: false, Weight: -1, Reason: "connect: connection refused"})
	m.mu.Unlock()
	for i := 0; i < 3; i++ { // quorum up, real server down, quorum down
		select {
		case <-be.got:
		case <-time.After(10 * time.Second):
			t.Fatalf("mail %d not received; log:\n%s", i+1, log.String())
		}
	}
	m.stop()
	be.mu.Lock()
	defer be.mu.Unlock()
	var subjects []string
	for _, msg := range be.msgs {
		for _, l := range strings.Split(msg.Data, "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subjects = append(subjects, s)
			}
		}
	}
	want := []string{
		"[lb1] Virtualserver [10.0.0.1]:tcp:80 - UP",
		"[lb1] Realserver [10.1.0.1]:tcp:80 of virtual server [10.0.0.1]:tcp:80 - DOWN",
		"[lb1] Virtualserver [10.0.0.1]:tcp:80 - DOWN",
	}
	if !slices.Equal(subjects, want) {
		t.Errorf("subjects %q, want %q", subjects, want)
	}
	if len(be.msgs) > 1 && !strings.Contains(be.msgs[1].Data, "=> TCP_CHECK on service [10.1.0.1]:tcp:80 failed: connect: connection refused <=") {
		t.Errorf("real server mail:\n%s", be.msgs[1].Data)
	}
}
