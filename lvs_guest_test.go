package main

// A classic keepalived LVS-DR cluster, end to end, inside the IPVS test VM
// (scripts/test-ipvs.sh): two directors running vipd as processes (this
// test binary in "be the daemon" mode, each in its own network namespace)
// share a VIP by VRRP and balance it over two real servers checked with
// HTTP_GET and TCP_CHECK. The real servers carry the VIP on lo with
// arp_ignore/arp_announce set and run a small HTTP server from this test.
//
//	client 10.4.0.2 ──┐
//	dir1   10.4.0.11 ─┤  (VRRP MASTER, priority 150, holds VIP 10.4.0.100)
//	dir2   10.4.0.12 ─┼─ bridge lvs-br (guest root namespace)
//	rs1    10.4.0.21 ─┤  (VIP on lo, HTTP_GET /health)
//	rs2    10.4.0.22 ─┘  (VIP on lo, TCP_CHECK)
//
// A second virtual server on :8080 has ha_suspend: only the director that
// holds the VIP programs it.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// TestHelperLVSDaemon is vipd itself when VIPD_LVS_DAEMON is set: it waits
// for a line on stdin (its network is being set up) and then runs
// `vipd $VIPD_LVS_ARGS` until SIGTERM.
func TestHelperLVSDaemon(t *testing.T) {
	if os.Getenv("VIPD_LVS_DAEMON") == "" {
		t.Skip("helper process for the LVS guest test")
	}
	bufio.NewReader(os.Stdin).ReadString('\n')
	var c cli
	p, err := kong.New(&c, kong.Name("vipd"), kong.Vars{"version": version})
	if err != nil {
		fmt.Fprintln(os.Stderr, "vipd:", err)
		os.Exit(1)
	}
	ctx, err := p.Parse(strings.Fields(os.Getenv("VIPD_LVS_ARGS")))
	if err == nil {
		err = ctx.Run(&c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vipd:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// lvsDirector is one vipd process in its own network namespace.
type lvsDirector struct {
	name string
	cmd  *exec.Cmd
	ns   netns.NsHandle
	log  *syncBuffer
	done chan struct{}
}

// startDirector starts vipd with conf in a new network namespace whose
// eth0 is plugged into br with addr.
func startDirector(t *testing.T, name, conf, addr string, br *netlink.Bridge) *lvsDirector {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &lvsDirector{name: name, log: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(exe, "-test.run=^TestHelperLVSDaemon$")
	d.cmd.Env = append(os.Environ(), "VIPD_LVS_DAEMON=1", "VIPD_LVS_ARGS=-f "+path)
	// No Pdeathsig: it fires when the forking thread exits, and inNS
	// throws threads away.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	stdin, err := d.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		err := d.cmd.Wait()
		fmt.Fprintf(d.log, "[%s exited: %v]\n", name, err)
		close(d.done)
	}()
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		t.Logf("%s log:\n%s", name, d.log.String())
	})
	if d.ns, err = netns.GetFromPid(d.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	l := guestVeth(t, name, "eth0", d.ns)
	if err := netlink.LinkSetMaster(l, br); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(l); err != nil {
		t.Fatal(err)
	}
	if err := inNS(d.ns, func() error {
		lo, _ := netlink.LinkByName("lo")
		if err := netlink.LinkSetUp(lo); err != nil {
			return err
		}
		return ifup("eth0", "", addr)
	}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	return d
}

// stop signals the process and waits for it; SIGKILL is a crash: the
// namespace, with its VIP and IPVS table, goes with the process.
func (d *lvsDirector) stop(sig syscall.Signal) {
	if d.ns.IsOpen() {
		d.ns.Close()
	}
	if d.cmd.Process != nil {
		d.cmd.Process.Signal(sig)
	}
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
}

// status asks the director's control socket (abstract, in its namespace).
func (d *lvsDirector) status() (daemonStatus, error) {
	var st daemonStatus
	err := inNS(d.ns, func() error { return controlCall(defaultControl, "status", &st) })
	return st, err
}

// lvsRealServer is an HTTP server on :80 in a namespace that answers every
// request with its name.
type lvsRealServer struct {
	t    *testing.T
	name string
	ns   netns.NsHandle
	mu   sync.Mutex
	ln   net.Listener
}

func (r *lvsRealServer) start() {
	r.t.Helper()
	var ln net.Listener
	if err := inNS(r.ns, func() (err error) { ln, err = net.Listen("tcp", ":80"); return err }); err != nil {
		r.t.Fatalf("%s: listen: %v", r.name, err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || strings.TrimSpace(l) == "" {
						break
					}
				}
				fmt.Fprintf(c, "HTTP/1.0 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(r.name), r.name)
			}()
		}
	}()
}

func (r *lvsRealServer) stop() {
	r.mu.Lock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	r.mu.Unlock()
}

// lvsGet makes one HTTP request to addr from ns and returns the body.
func lvsGet(ns netns.NsHandle, addr string) (string, error) {
	var body string
	err := inNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil {
			return err
		}
		_, bd, ok := strings.Cut(string(b), "\r\n\r\n")
		if !ok {
			return fmt.Errorf("bad reply %q", b)
		}
		body = bd
		return nil
	})
	return body, err
}

// TestIPVSGuestLVSCluster: "A classic LVS-DR + keepalived cluster config
// (two directors, two real servers, TCP_CHECK and HTTP_GET) works end to
// end in the guest" (issue 6).
func TestIPVSGuestLVSCluster(t *testing.T) {
	if os.Getenv("VIPD_IPVS_GUEST") == "" {
		t.Skip("runs only in the IPVS test VM (scripts/test-ipvs.sh sets VIPD_IPVS_GUEST=1)")
	}
	const vip = "10.4.0.100:80"
	la := netlink.NewLinkAttrs()
	la.Name = "lvs-br"
	br := &netlink.Bridge{LinkAttrs: la}
	if err := netlink.LinkAdd(br); err != nil {
		t.Fatalf("add bridge: %v", err)
	}
	t.Cleanup(func() { netlink.LinkDel(br) })
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	client, ns1, ns2 := newNS(t), newNS(t), newNS(t)
	for _, p := range []struct {
		name string
		ns   netns.NsHandle
	}{{"lvs-c", client}, {"lvs-r1", ns1}, {"lvs-r2", ns2}} {
		l := guestVeth(t, p.name, "eth0", p.ns)
		if err := netlink.LinkSetMaster(l, br); err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
	}
	rsUp := func(addr string) func() error {
		return func() error { return drRealServerUp("10.4.0.100/32", addr) }
	}
	for _, e := range []error{
		inNS(client, func() error { return ifup("eth0", "", "10.4.0.2/24") }),
		inNS(ns1, rsUp("10.4.0.21/24")),
		inNS(ns2, rsUp("10.4.0.22/24")),
	} {
		if e != nil {
			t.Fatal(e)
		}
	}
	rs1 := &lvsRealServer{t: t, name: "rs1", ns: ns1}
	rs2 := &lvsRealServer{t: t, name: "rs2", ns: ns2}
	rs1.start()
	rs2.start()
	t.Cleanup(rs1.stop)
	t.Cleanup(rs2.stop)

	flags := t.TempDir()
	conf := func(name, state string, prio int) string {
		return fmt.Sprintf(`global_defs {
    router_id %[1]s
}
vrrp_instance VI_1 {
    state %[2]s
    interface eth0
    virtual_router_id 51
    priority %[3]d
    advert_int 1
    virtual_ipaddress {
        10.4.0.100/24 dev eth0
    }
}
virtual_server 10.4.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server 10.4.0.21 80 {
        weight 1
        notify_up "/bin/touch %[4]s/%[1]s-rs1-up"
        notify_down "/bin/touch %[4]s/%[1]s-rs1-down"
        HTTP_GET {
            url {
                path /health
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 10.4.0.22 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
virtual_server 10.4.0.100 8080 {
    ha_suspend
    lb_kind DR
    real_server 10.4.0.22 8080 {
    }
}
`, name, state, prio, flags)
	}
	dir1 := startDirector(t, "lvs-d1", conf("dir1", "MASTER", 150), "10.4.0.11/24", br)
	dir2 := startDirector(t, "lvs-d2", conf("dir2", "BACKUP", 100), "10.4.0.12/24", br)

	// traffic polls the VIP until the answers over the last 8 requests
	// are exactly want (every one answered); it returns what it saw.
	t0 := time.Now()
	traffic := func(what string, want map[string]bool, extra func() bool) {
		t.Helper()
		start := time.Now()
		var last []string
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			body, err := lvsGet(client, vip)
			if err != nil {
				body = "error: " + err.Error()
			}
			last = append(last, body)
			if len(last) > 8 {
				last = last[1:]
			}
			seen := map[string]bool{}
			ok := len(last) == 8
			for _, b := range last {
				seen[b] = true
				ok = ok && want[b]
			}
			if ok && len(seen) == len(want) && (extra == nil || extra()) {
				t.Logf("%.1fs: %s after %.1fs: %v", time.Since(t0).Seconds(), what, time.Since(start).Seconds(), last)
				return
			}
			if time.Now().After(deadline) {
				st1, _ := dir1.status()
				st2, _ := dir2.status()
				t.Fatalf("%s: the last answers were %q\ndir1 status %+v\ndir2 status %+v", what, last, st1, st2)
			}
		}
	}
	both := map[string]bool{"rs1": true, "rs2": true}
	traffic("both real servers reached through the VIP", both, nil)
	st, err := dir1.status()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Instances) != 1 || st.Instances[0].State != "MASTER" || len(st.VirtualServers) != 2 ||
		len(st.VirtualServers[0].RealServers) != 2 || st.VirtualServers[0].RealServers[0].KernelWeight != 1 {
		t.Fatalf("dir1 status: %+v", st)
	}

	// rs1's HTTP server stops: HTTP_GET fails, rs1 is removed and new
	// connections all go to rs2; notify_down runs.
	rs1.stop()
	exists := func(f string) func() bool {
		return func() bool { _, err := os.Stat(filepath.Join(flags, f)); return err == nil }
	}
	traffic("rs1 removed after its HTTP server stopped", map[string]bool{"rs2": true}, exists("dir1-rs1-down"))
	if st, err := dir1.status(); err != nil || st.VirtualServers[0].RealServers[0].Up || st.VirtualServers[0].RealServers[0].KernelWeight != -1 {
		t.Errorf("dir1 status after rs1 failed: %+v %v", st.VirtualServers, err)
	}
	// It comes back: rs1 is added again and notify_up runs.
	rs1.start()
	traffic("rs1 back", both, exists("dir1-rs1-up"))

	// ha_suspend: only the director holding the VIP has the :8080
	// service in its kernel.
	haSuspended := func(d *lvsDirector) (suspended, programmed bool) {
		st, err := d.status()
		if err != nil || len(st.VirtualServers) != 2 {
			t.Fatalf("%s status: %v %+v", d.name, err, st)
		}
		return st.VirtualServers[1].Suspended, st.VirtualServers[1].Programmed
	}
	if s, p := haSuspended(dir1); s || !p {
		t.Errorf("dir1 (MASTER): ha_suspend service suspended %v, programmed %v", s, p)
	}
	if s, p := haSuspended(dir2); !s || p {
		t.Errorf("dir2 (BACKUP): ha_suspend service suspended %v, programmed %v", s, p)
	}

	// The master director dies: dir2 takes the VIP over and traffic goes on.
	dir1.stop(syscall.SIGKILL)
	traffic("traffic through dir2 after dir1 died", both, func() bool {
		st, err := dir2.status()
		return err == nil && len(st.Instances) == 1 && st.Instances[0].State == "MASTER"
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if s, p := haSuspended(dir2); !s && p {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dir2 (MASTER now) did not program its ha_suspend service")
		}
	}
	// On SIGTERM dir2 removes its virtual server from its IPVS table.
	dir2Log := func() string { return dir2.log.String() }
	dir2.stop(syscall.SIGTERM)
	if !strings.Contains(dir2Log(), "Removed our IPVS virtual servers") {
		t.Errorf("dir2 did not release its virtual servers:\n%s", dir2Log())
	}
}
