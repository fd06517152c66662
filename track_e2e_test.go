package main

// End to end: two routers in network namespaces, each running nginx and
// the vipd binary as a real process, the classic "VIP follows the web
// server" setup.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// newTrackNS makes a namespace named vipd-track-<pid>-<n>-<tag> for the
// testNS harness of netns_test.go, deleted at cleanup.
func newTrackNS(t *testing.T, tag string) *testNS {
	t.Helper()
	return newTestNSPrefix(t, "track", tag)
}

// startProc starts argv inside ns, its output going to logPath; cleanup
// terminates it.
func startProc(t *testing.T, ns *testNS, logPath string, argv ...string) *exec.Cmd {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name}, argv...)...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopProc(cmd)
		lf.Close()
	})
	return cmd
}

// stopProc sends SIGTERM and waits (SIGKILL after 10 s).
func stopProc(cmd *exec.Cmd) {
	if cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// pollUntil polls cond every 20 ms until it holds or limit passes.
func pollUntil(limit time.Duration, cond func() bool) bool {
	end := time.Now().Add(limit)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

const e2eNginxConf = `worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log;
events { worker_connections 32; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	server { listen 127.0.0.1:80; location / { return 200 "ok\n"; } }
}
`

const e2eVipdConf = `global_defs {
	router_id %[2]s
	notify_fifo %[1]s/fifo
	notify_fifo_script %[1]s/fiforead.sh
	smtp_server 127.0.0.1 %[4]d
	smtp_connect_timeout 5
	notification_email {
		ops@example.org
	}
	notification_email_from vipd@%[2]s
}
vrrp_script chk_nginx {
	script "/bin/busybox nc 127.0.0.1 80 </dev/null"
	interval 1
	timeout 2
	fall 2
	rise 1
}
vrrp_script chk_hung {
	script "/bin/sleep %[5]d"
	interval 1
	timeout 1
	weight -5
}
vrrp_instance VI_1 {
	state BACKUP
	interface eth0
	virtual_router_id 77
	priority %[3]d
	advert_int 1
	virtual_ipaddress {
		10.77.0.100/24
	}
	track_script {
		chk_nginx
		%[6]s
	}
	notify_master "%[1]s/rec.sh master"
	notify_backup "%[1]s/rec.sh backup"
	notify_fault "%[1]s/rec.sh fault"
	notify_stop "%[1]s/rec.sh stop"
	notify %[1]s/rec.sh
	smtp_alert
}
`

// TestTrackNginxFailover is the classic setup: nginx on two routers,
// tracked by a vrrp_script (weight 0: a failed check is FAULT) written
// with shell syntax (a redirection), so it runs under /bin/sh -c. Stopping
// nginx on the master moves the VIP to the backup; starting it again
// brings the VIP back (preempt). Router B also tracks a script that hangs:
// it is killed at its timeout every interval and B keeps working. On A,
// notify scripts record their arguments in order, the notify fifo's reader
// script records its lines, and a real SMTP server in A's namespace
// receives the alerts.
func TestTrackNginxFailover(t *testing.T) {
	needRoot(t)
	for _, p := range []string{"/usr/sbin/nginx", "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s (Debian nginx-light, busybox-static)", p)
		}
	}
	bin := vipdBinary(t)
	br := newTrackNS(t, "br")
	br.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	br.IP("link", "set", "br0", "up")
	hung := 900000 + os.Getpid()%10000 // a unique sleep to find leaked runs
	type router struct {
		name  string
		ns    *testNS
		dir   string
		vipd  *exec.Cmd
		nginx *exec.Cmd
	}
	var rs []*router
	for i, name := range []string{"rA", "rB"} {
		r := &router{name: name, ns: newTrackNS(t, name), dir: t.TempDir()}
		os.Chmod(r.dir, 0o755)
		veth(t, r.ns, "eth0", br, "p"+name)
		br.IP("link", "set", "p"+name, "master", "br0")
		r.ns.IP("addr", "add", fmt.Sprintf("10.77.0.%d/24", i+1), "dev", "eth0")
		rs = append(rs, r)
	}
	a, b := rs[0], rs[1]
	// A real SMTP server listening inside A's namespace.
	var ln net.Listener
	a.ns.MustDo(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	})
	mails := startSMTP(t, ln)
	smtpPort := ln.Addr().(*net.TCPAddr).Port

	startNginx := func(r *router) {
		r.nginx = startProc(t, r.ns, filepath.Join(r.dir, "nginx.out"), "/usr/sbin/nginx", "-c", filepath.Join(r.dir, "nginx.conf"))
		if !pollUntil(5*time.Second, func() bool {
			_, err := r.ns.Exec("/bin/sh", "-c", "/bin/busybox nc 127.0.0.1 80 </dev/null")
			return err == nil
		}) {
			out, _ := os.ReadFile(filepath.Join(r.dir, "nginx-error.log"))
			t.Fatalf("%s: nginx does not answer: %s", r.name, out)
		}
	}
	for i, r := range rs {
		prio, extra := 150, ""
		if r == b {
			prio, extra = 100, "chk_hung"
		}
		os.WriteFile(filepath.Join(r.dir, "nginx.conf"), []byte(fmt.Sprintf(e2eNginxConf, r.dir)), 0o644)
		os.WriteFile(filepath.Join(r.dir, "rec.sh"), []byte("#!/bin/sh\necho \"$*\" >> "+r.dir+"/notify.log\n"), 0o755)
		os.WriteFile(filepath.Join(r.dir, "fiforead.sh"), []byte("#!/bin/sh\nwhile read -r l; do echo \"$l\" >> "+r.dir+"/fifo.log; done < \"$1\"\n"), 0o755)
		conf := filepath.Join(r.dir, "keepalived.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(e2eVipdConf, r.dir, r.name, prio, smtpPort, hung, extra)), 0o644)
		if out, err := exec.Command(bin, "run", "-t", "-f", conf).CombinedOutput(); err != nil {
			t.Fatalf("router %d config: %v: %s", i, err, out)
		}
		startNginx(r)
	}
	for _, r := range rs {
		r.vipd = startProc(t, r.ns, filepath.Join(r.dir, "vipd.log"), bin, "run", "-f", filepath.Join(r.dir, "keepalived.conf"), "--log-format", "json", "-D")
	}
	dumpLogs := func() {
		for _, r := range rs {
			out, _ := os.ReadFile(filepath.Join(r.dir, "vipd.log"))
			t.Logf("%s vipd log:\n%s", r.name, out)
		}
	}
	if !pollUntil(15*time.Second, func() bool { return hasAddr(a.ns, "10.77.0.100") }) {
		dumpLogs()
		t.Fatal("A (priority 150, nginx up) never became master")
	}
	if hasAddr(b.ns, "10.77.0.100") {
		t.Fatal("both routers hold the VIP")
	}

	// nginx dies on the master.
	stopProc(a.nginx)
	failed := time.Now()
	if !pollUntil(15*time.Second, func() bool { return hasAddr(b.ns, "10.77.0.100") }) {
		dumpLogs()
		t.Fatal("the VIP did not move to B after nginx stopped on A")
	}
	moved := time.Since(failed)
	// fall 2 x interval 1 s, then FAULT sends priority 0 and B takes over
	// after Skew_Time ((256-95)/256 s): about 2.6 s at most.
	t.Logf("nginx stopped on A -> VIP on B after %v (fall 2 x interval 1s + Skew_Time 0.63s)", moved.Round(time.Millisecond))
	if !pollUntil(3*time.Second, func() bool { return !hasAddr(a.ns, "10.77.0.100") }) {
		t.Fatal("A kept the VIP in FAULT")
	}

	// B's hung script: killed at each timeout, never piling up.
	for range 3 {
		out, _ := exec.Command("pgrep", "-c", "-f", fmt.Sprintf("sleep %d", hung)).Output()
		if n := strings.TrimSpace(string(out)); n != "0" && n != "1" {
			t.Errorf("%s runs of the hung script at once", n)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// nginx comes back on A: FAULT -> BACKUP, then A preempts B.
	startNginx(a)
	back := time.Now()
	if !pollUntil(15*time.Second, func() bool { return hasAddr(a.ns, "10.77.0.100") && !hasAddr(b.ns, "10.77.0.100") }) {
		dumpLogs()
		t.Fatal("the VIP did not come back to A after nginx restarted")
	}
	t.Logf("nginx restarted on A -> VIP back on A after %v (rise 1, then preemption after Master_Down_Interval)", time.Since(back).Round(time.Millisecond))

	for _, r := range rs {
		stopProc(r.vipd)
	}
	if out, _ := exec.Command("pgrep", "-c", "-f", fmt.Sprintf("sleep %d", hung)).Output(); strings.TrimSpace(string(out)) != "0" {
		t.Errorf("hung script runs left after vipd stopped: %s", out)
	}
	blog, _ := os.ReadFile(filepath.Join(b.dir, "vipd.log"))
	if !strings.Contains(string(blog), "VRRP_Script(chk_hung) timed out") {
		t.Error("B's log does not report the hung script's timeout")
	}

	// Notify scripts on A, in transition order, with keepalived's arguments.
	got := readLines(t, filepath.Join(a.dir, "notify.log"))
	var want []string
	for _, st := range []string{"BACKUP", "MASTER", "FAULT", "BACKUP", "MASTER", "STOP"} {
		want = append(want, strings.ToLower(st), "INSTANCE VI_1 "+st+" 150")
	}
	if !slices.Equal(got, want) {
		dumpLogs()
		t.Errorf("notify scripts on A:\n got %q\nwant %q", got, want)
	}
	// The fifo reader got the lines (the STOP line may race its exit).
	fl := readLines(t, filepath.Join(a.dir, "fifo.log"))
	wantFifo := []string{`INSTANCE "VI_1" BACKUP 150`, `INSTANCE "VI_1" MASTER 150`, `INSTANCE "VI_1" FAULT 150`, `INSTANCE "VI_1" BACKUP 150`, `INSTANCE "VI_1" MASTER 150`}
	if len(fl) < len(wantFifo) || !slices.Equal(fl[:len(wantFifo)], wantFifo) {
		t.Errorf("notify fifo on A:\n got %q\nwant %q (+ STOP)", fl, wantFifo)
	}
	// Mail: the alerts reached the SMTP server.
	mails.mu.Lock()
	var subjects []string
	for _, m := range mails.msgs {
		for _, l := range strings.Split(m.Data, "\r\n") {
			if s, ok := strings.CutPrefix(l, "Subject: "); ok {
				subjects = append(subjects, s)
			}
		}
	}
	mails.mu.Unlock()
	for _, w := range []string{"[rA] VRRP Instance VI_1 - Entering MASTER state", "[rA] VRRP Instance VI_1 - Entering FAULT state"} {
		if !slices.Contains(subjects, w) {
			t.Errorf("no mail %q; got %q", w, subjects)
		}
	}
}

const e2eGroupConf = `global_defs {
	router_id %[2]s
	vrrp_notify_fifo %[1]s/fifo
	vrrp_notify_fifo_script %[1]s/fiforead.sh
}
vrrp_track_file maint {
	file %[1]s/maint
	weight 0
	init_file 0
}
vrrp_sync_group G {
	group {
		VI_1
		VI_2
	}
	track_file {
		maint
	}
	notify %[1]s/rec.sh
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 81
	priority %[3]d
	advert_int 1
	virtual_ipaddress {
		10.78.0.101/24
	}
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 82
	priority %[3]d
	advert_int 1
	virtual_ipaddress {
		10.78.0.102/24
	}
}
`

// TestTrackSyncGroupFile runs a vrrp_sync_group of two instances with a
// group-level track_file (weight 0): writing 1 to the file on the master
// puts the whole group in FAULT there and both VIPs move together;
// writing 0 brings both back. The group's generic notify script is called
// as `SCRIPT GROUP G STATE 0`, and vrrp_notify_fifo carries GROUP lines.
func TestTrackSyncGroupFile(t *testing.T) {
	needRoot(t)
	bin := vipdBinary(t)
	br := newTrackNS(t, "gbr")
	br.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	br.IP("link", "set", "br0", "up")
	type router struct {
		ns   *testNS
		dir  string
		vipd *exec.Cmd
	}
	var rs []*router
	for i, name := range []string{"gA", "gB"} {
		r := &router{ns: newTrackNS(t, name), dir: t.TempDir()}
		veth(t, r.ns, "eth0", br, "p"+name)
		br.IP("link", "set", "p"+name, "master", "br0")
		r.ns.IP("addr", "add", fmt.Sprintf("10.78.0.%d/24", i+1), "dev", "eth0")
		os.WriteFile(filepath.Join(r.dir, "rec.sh"), []byte("#!/bin/sh\necho \"$*\" >> "+r.dir+"/notify.log\n"), 0o755)
		os.WriteFile(filepath.Join(r.dir, "fiforead.sh"), []byte("#!/bin/sh\nwhile read -r l; do echo \"$l\" >> "+r.dir+"/fifo.log; done < \"$1\"\n"), 0o755)
		conf := filepath.Join(r.dir, "keepalived.conf")
		os.WriteFile(conf, []byte(fmt.Sprintf(e2eGroupConf, r.dir, name, 150-50*i)), 0o644)
		r.vipd = startProc(t, r.ns, filepath.Join(r.dir, "vipd.log"), bin, "run", "-f", conf, "--log-format", "json")
		rs = append(rs, r)
	}
	a, b := rs[0], rs[1]
	both := func(r *router) bool { return hasAddr(r.ns, "10.78.0.101") && hasAddr(r.ns, "10.78.0.102") }
	none := func(r *router) bool { return !hasAddr(r.ns, "10.78.0.101") && !hasAddr(r.ns, "10.78.0.102") }
	dump := func() {
		for _, r := range rs {
			out, _ := os.ReadFile(filepath.Join(r.dir, "vipd.log"))
			t.Logf("%s:\n%s", r.ns.Name, out)
		}
	}
	if !pollUntil(15*time.Second, func() bool { return both(a) && none(b) }) {
		dump()
		t.Fatal("A did not become master of both instances")
	}
	if b, _ := os.ReadFile(filepath.Join(a.dir, "maint")); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("init_file 0 wrote %q", b)
	}
	os.WriteFile(filepath.Join(a.dir, "maint"), []byte("1\n"), 0o644)
	start := time.Now()
	if !pollUntil(10*time.Second, func() bool { return both(b) && none(a) }) {
		dump()
		t.Fatal("the group did not move to B when its track_file failed on A")
	}
	t.Logf("track_file failed on A -> both VIPs on B after %v", time.Since(start).Round(time.Millisecond))
	os.WriteFile(filepath.Join(a.dir, "maint"), []byte("0\n"), 0o644)
	if !pollUntil(15*time.Second, func() bool { return both(a) && none(b) }) {
		dump()
		t.Fatal("the group did not come back to A")
	}
	for _, r := range rs {
		stopProc(r.vipd)
	}
	got := readLines(t, filepath.Join(a.dir, "notify.log"))
	want := []string{"GROUP G BACKUP 0", "GROUP G MASTER 0", "GROUP G FAULT 0", "GROUP G BACKUP 0", "GROUP G MASTER 0", "GROUP G STOP 0"}
	if !slices.Equal(got, want) {
		dump()
		t.Errorf("group notify on A:\n got %q\nwant %q", got, want)
	}
	fl := readLines(t, filepath.Join(a.dir, "fifo.log"))
	for _, w := range []string{`GROUP "G" FAULT 0`, `INSTANCE "VI_1" FAULT 150`, `INSTANCE "VI_2" FAULT 150`} {
		if !slices.Contains(fl, w) {
			t.Errorf("fifo lacks %q: %q", w, fl)
		}
	}
}
