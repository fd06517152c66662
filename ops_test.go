package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// opsTestDaemon is a daemon with two runners whose status is set by hand,
// as the runner goroutines would have it.
func opsTestDaemon(t *testing.T) (*daemon, *runner, *runner) {
	t.Helper()
	d := newDaemon(zerolog.Nop(), &Config{}, nil)
	d.cfgPath = "/etc/keepalived/keepalived.conf"
	ic1 := &VRRPInstance{Name: "VI_1", Interface: "eth0", VRID: 51, Version: 2, Family: 4, Priority: 150, AdvertCentis: 100,
		Preempt: true, Auth: VRRPAuth{Type: "PASS", Pass: [8]byte{'s', 'e', 'c', 'r', 'e', 't'}},
		VIPs: []VIP{{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Label: "eth0:vip"}},
		Garp: GarpSettings{MasterDelay: 5 * time.Second, MasterRepeat: 5, MasterRefreshRepeat: 1}}
	ic2 := &VRRPInstance{Name: "VI_6", Interface: "eth1", VRID: 52, Version: 3, Family: 6, Priority: 100, AdvertCentis: 50,
		VIPs: []VIP{{Prefix: netip.MustParsePrefix("2001:db8::100/64")}}}
	r1, r2 := newRunner(d, ic1), newRunner(d, ic2)
	since := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	r1.status = runnerStatus{State: stateMaster, Priority: 140, Master: netip.MustParseAddr("192.0.2.1"), MasterPrio: 140,
		IntervalCS: 100, Since: since, Transitions: 2, SentAdverts: 1000, Config: ic1,
		BecameMaster: 1, ReleasedMaster: 0, PrioZeroRcvd: 1, PrioZeroSent: 0, SplitBrains: 2,
		Rival: netip.MustParseAddr("192.0.2.9")}
	r1.status.Rx.Drops[dropOK] = 7
	r1.status.Rx.Drops[dropAuthPass] = 3
	r1.status.Rx.Drops[dropTTL] = 4
	r1.status.Rx.AddrMismatch = 1
	r2.status = runnerStatus{State: stateBackup, Priority: 100, Master: netip.MustParseAddr("fe80::1"), MasterPrio: 200,
		IntervalCS: 50, Since: since, Transitions: 1, Config: ic2}
	r2.status.Rx.Drops[dropOK] = 500
	d.runners = []*runner{r1, r2}
	return d, r1, r2
}

// keepalived's --signum numbers on Linux with glibc.
func TestSignum(t *testing.T) {
	for name, want := range map[string]string{"RELOAD": "1", "DATA": "10", "STATS": "12", "JSON": "36", "STOP": "15", "json": "36"} {
		var b bytes.Buffer
		if err := printSignum(&b, name); err != nil || strings.TrimSpace(b.String()) != want {
			t.Errorf("--signum=%s: %q %v, want %s", name, b.String(), err, want)
		}
	}
	if err := printSignum(io.Discard, "USR1"); err == nil {
		t.Error("unknown name accepted")
	}
}

// The dumps keep keepalived's line layout (vrrp_print.c, vrrp_json.c) so
// that scripts grepping them keep working.
func TestDumps(t *testing.T) {
	d, _, _ := opsTestDaemon(t)
	st := d.status()
	var data, stats, js bytes.Buffer
	for k, w := range map[dumpKind]*bytes.Buffer{dumpData: &data, dumpStats: &stats, dumpJSON: &js} {
		if err := k.render(w, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		"------< VRRP Topology >------\n VRRP Instance = VI_1\n VRRP Version = 2\n   State = MASTER\n",
		"   Virtual Router ID = 51\n   Priority = 150\n   Effective priority = 140\n   Advert interval = 1 sec\n",
		"   Authentication type = SIMPLE_PASSWORD\n   Password = secret\n",
		"   Virtual IP = 1\n     192.0.2.100/24 dev eth0 scope global label eth0:vip\n",
		"   Split brain with = 192.0.2.9\n",
		" VRRP Instance = VI_6\n VRRP Version = 3\n   Using Native IPv6\n   State = BACKUP\n   Master router = fe80::1\n   Master priority = 200\n",
		"   Advert interval = 500 milli-sec\n",
	} {
		if !strings.Contains(data.String(), want) {
			t.Errorf("data dump lacks %q:\n%s", want, data.String())
		}
	}
	for _, want := range []string{
		"VRRP Instance: VI_1\n  Advertisements:\n    Received: 7\n    Sent: 1000\n  Became master: 1\n  Released master: 0\n",
		"  Packet Errors:\n    Length: 0\n    TTL: 4\n",
		"  Authentication Errors:\n    Invalid Type: 0\n    Type Mismatch: 0\n    Failure: 3\n  Priority Zero:\n    Received: 1\n    Sent: 0\n",
		"  Split brain: 2\n",
	} {
		if !strings.Contains(stats.String(), want) {
			t.Errorf("stats dump lacks %q:\n%s", want, stats.String())
		}
	}
	var dump []map[string]map[string]any
	if err := json.Unmarshal(js.Bytes(), &dump); err != nil || len(dump) != 2 {
		t.Fatalf("json dump: %v\n%s", err, js.String())
	}
	d1, s1 := dump[0]["data"], dump[0]["stats"]
	for k, want := range map[string]any{"iname": "VI_1", "vrid": 51.0, "state": 2.0, "base_priority": 150.0, "effective_priority": 140.0,
		"auth_type": 1.0, "auth_data": "secret", "adver_int": 1.0, "ifp_ifname": "eth0"} {
		if d1[k] != want {
			t.Errorf("json data %s = %v, want %v", k, d1[k], want)
		}
	}
	for k, want := range map[string]any{"advert_rcvd": 7.0, "advert_sent": 1000.0, "auth_failure": 3.0, "ip_ttl_err": 4.0, "addr_list_err": 1.0} {
		if s1[k] != want {
			t.Errorf("json stats %s = %v, want %v", k, s1[k], want)
		}
	}
	if dump[1]["data"]["state"] != 1.0 {
		t.Errorf("VI_6 state %v, want 1 (BACKUP)", dump[1]["data"]["state"])
	}
}

// The signal handler writes the file atomically into --dump-dir.
func TestDumpFile(t *testing.T) {
	d, _, _ := opsTestDaemon(t)
	dir := t.TempDir()
	path, err := d.writeDumpFile(dir, dumpStats)
	if err != nil || path != filepath.Join(dir, "keepalived.stats") {
		t.Fatal(path, err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "VRRP Instance: VI_1\n") {
		t.Errorf("keepalived.stats:\n%s", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("dump dir holds %d files, want 1 (no temporary left)", len(ents))
	}
}

// Metrics are read from status at scrape time, so they move with it.
func TestMetrics(t *testing.T) {
	d, r1, _ := opsTestDaemon(t)
	trackStatusFunc = func(d *daemon, r *runner) []trackedStatus {
		if r == r1 {
			return []trackedStatus{{Kind: "script", Name: "chk_nginx", OK: false, Weight: -10}}
		}
		return nil
	}
	defer func() { trackStatusFunc = nil }()
	ipvsStatusFunc = func(d *daemon) []rsMetric {
		return []rsMetric{{VirtualServer: "192.0.2.100:80/TCP", RealServer: "10.0.0.1:8080", Up: true, Weight: 3}}
	}
	defer func() { ipvsStatusFunc = nil }()
	srv := httptest.NewServer(metricsHandler(d))
	defer srv.Close()
	scrape := func() string {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	l1 := `instance="VI_1",interface="eth0",vrid="51"`
	m := scrape()
	for prefix, want := range map[string]string{
		`vipd_vrrp_state{instance="VI_1",interface="eth0",state="MASTER",vrid="51"}`:                                 "1",
		`vipd_vrrp_state{instance="VI_1",interface="eth0",state="BACKUP",vrid="51"}`:                                 "0",
		`vipd_vrrp_state{instance="VI_6",interface="eth1",state="BACKUP",vrid="52"}`:                                 "1",
		`vipd_vrrp_priority{` + l1 + `}`:                                                                             "140",
		`vipd_vrrp_configured_priority{` + l1 + `}`:                                                                  "150",
		`vipd_vrrp_adverts_sent_total{` + l1 + `}`:                                                                   "1000",
		`vipd_vrrp_adverts_received_total{` + l1 + `}`:                                                               "7",
		`vipd_vrrp_advert_drops_total{instance="VI_1",interface="eth0",reason="auth_pass",vrid="51"}`:                "3",
		`vipd_vrrp_advert_drops_total{instance="VI_1",interface="eth0",reason="checksum",vrid="51"}`:                 "0",
		`vipd_vrrp_split_brain_events_total{` + l1 + `}`:                                                             "2",
		`vipd_vrrp_split_brain{` + l1 + `}`:                                                                          "1",
		`vipd_vrrp_transitions_total{` + l1 + `}`:                                                                    "2",
		`vipd_vrrp_tracked_object_up{instance="VI_1",interface="eth0",kind="script",name="chk_nginx",vrid="51"}`:     "0",
		`vipd_vrrp_tracked_object_weight{instance="VI_1",interface="eth0",kind="script",name="chk_nginx",vrid="51"}`: "-10",
		`vipd_ipvs_real_server_weight{real_server="10.0.0.1:8080",virtual_server="192.0.2.100:80/TCP"}`:              "3",
		`vipd_vrrp_advert_interval_seconds{instance="VI_6",interface="eth1",vrid="52"}`:                              "0.5",
	} {
		if got, ok := metricValue(m, prefix); !ok || got != want {
			t.Errorf("%s = %q, want %s", prefix, got, want)
		}
	}
	// A transition shows at the next scrape.
	r1.mu.Lock()
	r1.status.State, r1.status.Transitions, r1.status.Rival = stateBackup, 3, netip.Addr{}
	r1.mu.Unlock()
	m = scrape()
	for prefix, want := range map[string]string{
		`vipd_vrrp_state{instance="VI_1",interface="eth0",state="MASTER",vrid="51"}`: "0",
		`vipd_vrrp_state{instance="VI_1",interface="eth0",state="BACKUP",vrid="51"}`: "1",
		`vipd_vrrp_transitions_total{` + l1 + `}`:                                    "3",
		`vipd_vrrp_split_brain{` + l1 + `}`:                                          "0",
	} {
		if got, _ := metricValue(m, prefix); got != want {
			t.Errorf("after the transition %s = %q, want %s", prefix, got, want)
		}
	}
}

// sd_notify(3): one datagram per state to $NOTIFY_SOCKET, path or
// abstract.
func TestSdNotify(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@vipd-ops-test-" + itoa(os.Getpid())} {
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		if err := sdNotify(name, "READY=1\nSTATUS=ok"); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ln.Read(buf)
		if err != nil || string(buf[:n]) != "READY=1\nSTATUS=ok" {
			t.Errorf("%s: got %q %v", name, buf[:n], err)
		}
		ln.Close()
	}
	if err := sdNotify("", "READY=1"); err != nil {
		t.Errorf("no NOTIFY_SOCKET: %v", err)
	}
	if !strings.HasPrefix(reloadingState(), "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reloading state %q", reloadingState())
	}
}

// The daemon under a fake systemd: READY=1 once running, RELOADING=1 then
// READY=1 around SIGHUP, WATCHDOG=1 while alive, STOPPING=1 on SIGTERM. The
// configuration names an interface that does not exist, so the daemon
// touches no network (its instance waits in FAULT).
func TestSdNotifyDaemon(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conf := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(conf, []byte("vrrp_instance VI_1 {\n interface vipd-ops-none0\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  192.0.2.100\n }\n}\n"), 0o644)
	cmd := exec.Command(vipdBinary(t), "run", "-f", conf, "--control", filepath.Join(dir, "ctl"), "--log-format", "json")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=200000")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(prefix string) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("socket closed waiting for %q", prefix)
				}
				if strings.HasPrefix(m, prefix) {
					return
				}
			case <-deadline:
				t.Fatalf("no %q from the daemon; log:\n%s", prefix, logs.String())
			}
		}
	}
	expect("READY=1")
	expect("WATCHDOG=1")
	cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1\nMONOTONIC_USEC=")
	expect("READY=1")
	cmd.Process.Signal(syscall.SIGTERM)
	expect("STOPPING=1")
	cmd.Wait()
}

// Under systemd the log lines carry sd-daemon priorities and no timestamp.
func TestJournalWriter(t *testing.T) {
	var b bytes.Buffer
	log := zerolog.New(&journalWriter{out: &b}).With().Timestamp().Logger()
	log.Error().Str("instance", "VI_1").Msg("(VI_1) cannot run")
	log.Info().Msg("(VI_1) Entering MASTER STATE")
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "<3>") || !strings.HasPrefix(lines[1], "<6>") {
		t.Fatalf("journal lines %q", lines)
	}
	if !strings.Contains(lines[0], "(VI_1) cannot run") || !strings.Contains(lines[0], "instance=VI_1") || strings.Contains(lines[0], "202") {
		t.Errorf("line %q", lines[0])
	}
}

// The watchdog's liveness check fails while a runner's loop does not turn.
func TestAlive(t *testing.T) {
	d, r1, r2 := opsTestDaemon(t)
	if err := d.alive(50 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "VI_1") {
		t.Fatalf("no runner loop running: %v", err)
	}
	stop := make(chan struct{})
	defer close(stop)
	for _, r := range []*runner{r1, r2} {
		go func() {
			for {
				select {
				case in := <-r.in:
					if in.kind == inPing {
						close(in.reply)
					}
				case <-stop:
					return
				}
			}
		}()
	}
	if err := d.alive(time.Second); err != nil {
		t.Fatal(err)
	}
}
