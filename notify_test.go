package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/rs/zerolog"
)

// TestFifoLine checks keepalived's line format (vrrp_notify.c notify_fifo:
// "%s \"%s\" %s %d\n").
func TestFifoLine(t *testing.T) {
	if got := fifoLine("INSTANCE", "VI_1", stateMaster.String(), 100); got != "INSTANCE \"VI_1\" MASTER 100\n" {
		t.Errorf("got %q", got)
	}
	if got := fifoLine("GROUP", "VG", stateFault.String(), 0); got != "GROUP \"VG\" FAULT 0\n" {
		t.Errorf("got %q", got)
	}
}

// recorder is a notify script that appends its arguments to a file, and
// sleeps a little so that overlapping runs would interleave.
func recorder(t *testing.T, dir string) (script, out string) {
	t.Helper()
	out = filepath.Join(dir, "record")
	script = filepath.Join(dir, "rec.sh")
	body := "#!/bin/sh\necho \"start $*\" >> " + out + "\nsleep 0.05\necho \"end $*\" >> " + out + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestNotifyOrder feeds transitions faster than the scripts run and checks
// that each transition's state script, then its generic script, run one at
// a time in transition order, and that the fifo carries the lines.
func TestNotifyOrder(t *testing.T) {
	dir := t.TempDir()
	rec, out := recorder(t, dir)
	fifo := filepath.Join(dir, "fifo")
	cfg := newConfig()
	cfg.Global.NotifyFifo = Fifo{Path: fifo}
	cfg.Instances = []*VRRPInstance{{Name: "VI_1", Notify: Notify{
		Master:  Script{Cmd: rec + " master"},
		Backup:  Script{Cmd: rec + " backup"},
		Fault:   Script{Cmd: rec + " fault"},
		Generic: Script{Cmd: rec},
	}}}
	n := newNotifier(zerolog.Nop(), cfg)
	// A reader of the fifo, as notify_fifo_script would be.
	rf, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(rf)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	seq := []struct {
		from, to state
		prio     uint8
	}{{stateInit, stateBackup, 100}, {stateBackup, stateMaster, 100}, {stateMaster, stateFault, 100}, {stateFault, stateBackup, 90}}
	for _, s := range seq {
		n.onEvent(instanceEvent{Instance: "VI_1", Transition: true, From: s.from, To: s.to, Priority: s.prio, At: time.Now()})
	}
	n.close(10 * time.Second)
	want := []string{
		"start backup", "end backup", "start INSTANCE VI_1 BACKUP 100", "end INSTANCE VI_1 BACKUP 100",
		"start master", "end master", "start INSTANCE VI_1 MASTER 100", "end INSTANCE VI_1 MASTER 100",
		"start fault", "end fault", "start INSTANCE VI_1 FAULT 100", "end INSTANCE VI_1 FAULT 100",
		"start backup", "end backup", "start INSTANCE VI_1 BACKUP 90", "end INSTANCE VI_1 BACKUP 90",
	}
	if got := readLines(t, out); !slices.Equal(got, want) {
		t.Errorf("notify runs:\n got %q\nwant %q", got, want)
	}
	wantFifo := []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" MASTER 100`, `INSTANCE "VI_1" FAULT 100`, `INSTANCE "VI_1" BACKUP 90`}
	for i, w := range wantFifo {
		select {
		case l := <-lines:
			if l != w {
				t.Errorf("fifo line %d: %q, want %q", i, l, w)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("fifo line %d missing", i)
		}
	}
	if _, err := os.Stat(fifo); !errors.Is(err, os.ErrNotExist) {
		t.Error("the fifo vipd created is still there after close")
	}
}

// TestNotifyTimeout checks that a hung notify script is killed at the
// timeout and the next notification still runs.
func TestNotifyTimeout(t *testing.T) {
	dir := t.TempDir()
	rec, out := recorder(t, dir)
	cfg := newConfig()
	cfg.Instances = []*VRRPInstance{{Name: "VI_1", Notify: Notify{
		Master: Script{Cmd: "sleep 60"},
		Backup: Script{Cmd: rec + " backup"},
	}}}
	n := newNotifier(zerolog.Nop(), cfg)
	n.timeout = 200 * time.Millisecond
	n.onEvent(instanceEvent{Instance: "VI_1", Transition: true, From: stateBackup, To: stateMaster})
	n.onEvent(instanceEvent{Instance: "VI_1", Transition: true, From: stateMaster, To: stateBackup})
	start := time.Now()
	n.close(10 * time.Second)
	if got := readLines(t, out); !slices.Equal(got, []string{"start backup", "end backup"}) {
		t.Errorf("after a hung notify_master: %q", got)
	}
	t.Logf("hung notify_master killed and the next script run within %v", time.Since(start).Round(time.Millisecond))
}

// smtpBackend is a go-smtp server backend keeping what it receives.
type smtpBackend struct {
	mu   sync.Mutex
	msgs []smtpMsg
	got  chan struct{}
}

type smtpMsg struct {
	From string
	To   []string
	Data string
}

func (b *smtpBackend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{b: b}, nil
}

type smtpSession struct {
	b   *smtpBackend
	msg smtpMsg
}

func (s *smtpSession) Mail(from string, opts *smtp.MailOptions) error { s.msg.From = from; return nil }
func (s *smtpSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = string(b)
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.msg)
	s.b.mu.Unlock()
	s.b.got <- struct{}{}
	return nil
}
func (s *smtpSession) Reset()        { s.msg = smtpMsg{} }
func (s *smtpSession) Logout() error { return nil }

// startSMTP runs a real SMTP server (emersion/go-smtp) on ln.
func startSMTP(t *testing.T, ln net.Listener) *smtpBackend {
	t.Helper()
	be := &smtpBackend{got: make(chan struct{}, 16)}
	s := smtp.NewServer(be)
	s.Domain = "mx.test"
	s.AllowInsecureAuth = true
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return be
}

// TestSMTPAlert sends an instance alert through a real SMTP server on
// loopback and checks keepalived's subject and the body's content.
func TestSMTPAlert(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := startSMTP(t, ln)
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := newConfig()
	cfg.Global.RouterID = "lb1"
	cfg.Global.SMTPServer, cfg.Global.SMTPPort = "127.0.0.1", port
	cfg.Global.NotificationEmail = []string{"ops@example.org", "oncall@example.org"}
	cfg.Global.NotificationEmailFrom = "vipd@lb1.example.org"
	cfg.Global.SMTPConnectTimeout = 2 * time.Second
	cfg.Instances = []*VRRPInstance{{Name: "VI_1", SMTPAlert: true}, {Name: "VI_2"}}
	var logBuf syncBuffer
	n := newNotifier(zerolog.New(&logBuf), cfg)
	at := time.Date(2026, 11, 25, 8, 30, 0, 0, time.UTC)
	n.onEvent(instanceEvent{Instance: "VI_1", Transition: true, From: stateBackup, To: stateMaster, Reason: reasonMasterDown, Priority: 150, At: at})
	n.onEvent(instanceEvent{Instance: "VI_2", Transition: true, From: stateBackup, To: stateMaster, Priority: 100, At: at})
	select {
	case <-be.got:
	case <-time.After(5 * time.Second):
		t.Fatalf("no mail received; log: %s", logBuf.String())
	}
	n.close(5 * time.Second)
	be.mu.Lock()
	defer be.mu.Unlock()
	if len(be.msgs) != 1 {
		t.Fatalf("%d mails, want 1 (VI_2 has no smtp_alert)", len(be.msgs))
	}
	m := be.msgs[0]
	if m.From != "vipd@lb1.example.org" || !slices.Equal(m.To, cfg.Global.NotificationEmail) {
		t.Errorf("envelope %s -> %v", m.From, m.To)
	}
	host, _ := os.Hostname()
	for _, want := range []string{
		"Subject: [lb1] VRRP Instance VI_1 - Entering MASTER state",
		"=> VRRP Instance is now owning VRRP VIPs <=",
		"VRRP Instance: VI_1",
		"State: MASTER (was BACKUP)",
		"Reason: master down",
		"Priority: 150",
		"Host: " + host,
		"Time: 2026-11-25T08:30:00Z",
	} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}
}

// TestSMTPDown checks that a dead mail server delays nothing and that the
// failure is logged.
func TestSMTPDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	cfg := newConfig()
	cfg.Global.SMTPServer, cfg.Global.SMTPPort = "127.0.0.1", port
	cfg.Global.NotificationEmail = []string{"ops@example.org"}
	cfg.Instances = []*VRRPInstance{{Name: "VI_1", SMTPAlert: true}}
	var logBuf syncBuffer
	n := newNotifier(zerolog.New(&logBuf), cfg)
	start := time.Now()
	n.onEvent(instanceEvent{Instance: "VI_1", Transition: true, From: stateBackup, To: stateMaster, At: time.Now()})
	t.Logf("onEvent with the mail server down returned in %v", time.Since(start))
	n.close(5 * time.Second)
	if !strings.Contains(logBuf.String(), "Error sending SMTP alert") {
		t.Errorf("failure not logged: %s", logBuf.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSyncGroupRules checks vrrp_sync.c's rules: a member's fault forces
// every member to FAULT, the group is released to BACKUP only when no
// member has a fault, a MASTER takes the BACKUP members along, a master
// falling back to BACKUP takes the other masters along; group notifies
// follow the group state.
func TestSyncGroupRules(t *testing.T) {
	cfg := newConfig()
	cfg.SyncGroups = []*SyncGroup{{Name: "G", Members: []string{"A", "B", "C"}}}
	var s trackSends
	var gstates []state
	sg := newSyncGroups(zerolog.Nop(), cfg, func(string) bool { return false }, s.send, func(_ *SyncGroup, st state) { gstates = append(gstates, st) })
	sg.start()
	forced := func(name string) state {
		sg.stop()
		sg.start()
		ev, ok := s.last(name)
		if !ok || ev.Kind != evForce {
			return stateInit
		}
		return ev.State
	}
	tr := func(name string, from, to state, r transReason) {
		sg.onEvent(instanceEvent{Instance: name, Transition: true, From: from, To: to, Reason: r})
	}
	for _, m := range []string{"A", "B", "C"} {
		tr(m, stateInit, stateBackup, reasonStartup)
	}
	tr("A", stateBackup, stateMaster, reasonMasterDown)
	if forced("B") != stateMaster || forced("C") != stateMaster {
		t.Fatal("A became MASTER: B and C were not forced to MASTER")
	}
	tr("B", stateBackup, stateMaster, reasonForced)
	tr("C", stateBackup, stateMaster, reasonForced)
	tr("B", stateMaster, stateBackup, reasonPriority)
	if forced("A") != stateBackup || forced("C") != stateBackup {
		t.Fatal("B fell back to BACKUP: the other masters were not forced to BACKUP")
	}
	sg.onFaulty("C", true)
	sg.onFaulty("A", true)
	if forced("A") != stateFault || forced("B") != stateFault || forced("C") != stateFault {
		t.Fatal("a member failed: not every member was forced to FAULT")
	}
	sg.onFaulty("C", false)
	if forced("B") != stateFault {
		t.Fatal("released while A still has a fault")
	}
	sg.onFaulty("A", false)
	if forced("A") != stateBackup || forced("B") != stateBackup || forced("C") != stateBackup {
		t.Fatal("no fault left: members were not released to BACKUP")
	}
	sg.stop()
	if want := []state{stateBackup, stateMaster, stateBackup, stateFault, stateBackup}; !slices.Equal(gstates, want) {
		t.Errorf("group notifies %v, want %v", gstates, want)
	}
}

// TestNotifyFifoEvents checks keepalived's non-state fifo lines:
// MASTER_RX_LOWER_PRI (with notify_master_rx_lower_pri run) and, with
// notify_priority_changes, MASTER_PRIORITY / BACKUP_PRIORITY.
func TestNotifyFifoEvents(t *testing.T) {
	dir := t.TempDir()
	rec, out := recorder(t, dir)
	fifo := filepath.Join(dir, "fifo")
	cfg := newConfig()
	cfg.Global.VRRPNotifyFifo = Fifo{Path: fifo}
	cfg.Instances = []*VRRPInstance{
		{Name: "VI_1", Notify: Notify{MasterRxLowerPri: Script{Cmd: rec + " lower"}, Priority: true}},
		{Name: "VI_2"},
	}
	n := newNotifier(zerolog.Nop(), cfg)
	rf, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	n.onEvent(instanceEvent{Instance: "VI_1", Priority: 100, Log: protoLog{Kind: plMasterLowerPrio, Prio: 90, Ours: 100}})
	n.priority("VI_1", stateMaster, 80)
	n.priority("VI_1", stateBackup, 70)
	n.priority("VI_2", stateBackup, 70) // no notify_priority_changes: nothing
	n.close(5 * time.Second)
	buf := make([]byte, 4096)
	m, _ := rf.Read(buf)
	want := "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100\nINSTANCE \"VI_1\" MASTER_PRIORITY 80\nINSTANCE \"VI_1\" BACKUP_PRIORITY 70\n"
	if got := string(buf[:m]); got != want {
		t.Errorf("fifo:\n got %q\nwant %q", got, want)
	}
	if got := readLines(t, out); !slices.Equal(got, []string{"start lower", "end lower"}) {
		t.Errorf("notify_master_rx_lower_pri runs: %q", got)
	}
}

// TestSyncGroupCanGotoMaster checks vrrp_sync_can_goto_master: members
// that want MASTER wait until every member does, then all move at once;
// one that follows a master again withdraws.
func TestSyncGroupCanGotoMaster(t *testing.T) {
	cfg := newConfig()
	cfg.SyncGroups = []*SyncGroup{{Name: "G", Members: []string{"A", "B"}}}
	var s trackSends
	sg := newSyncGroups(zerolog.Nop(), cfg, func(string) bool { return false }, s.send, nil)
	sg.start()
	for _, m := range []string{"A", "B"} {
		sg.onEvent(instanceEvent{Instance: m, Transition: true, From: stateInit, To: stateBackup, Reason: reasonStartup})
	}
	sg.onEvent(instanceEvent{Instance: "A", WantMaster: true, Want: true})
	sg.onEvent(instanceEvent{Instance: "A", WantMaster: true, Want: false}) // follows a master again
	sg.onEvent(instanceEvent{Instance: "B", WantMaster: true, Want: true})
	sg.stop()
	if _, sent := s.last("B"); sent {
		t.Fatal("a member was moved while the other was not ready")
	}
	sg.start()
	sg.onEvent(instanceEvent{Instance: "A", WantMaster: true, Want: true})
	sg.stop()
	for _, m := range []string{"A", "B"} {
		if ev, _ := s.last(m); ev.Kind != evForce || ev.State != stateMaster {
			t.Errorf("%s: %+v, want a forced MASTER", m, ev)
		}
	}
}

// TestNotifySplitBrain checks vipd's split-brain hook (docs/operations.md):
// a fifo line and the generic notify script with SPLIT, then SPLIT_RESOLVED.
func TestNotifySplitBrain(t *testing.T) {
	dir := t.TempDir()
	rec, out := recorder(t, dir)
	fifo := filepath.Join(dir, "fifo")
	cfg := newConfig()
	cfg.Global.VRRPNotifyFifo = Fifo{Path: fifo}
	cfg.Instances = []*VRRPInstance{{Name: "VI_1", Notify: Notify{Generic: Script{Cmd: rec}}}}
	n := newNotifier(zerolog.Nop(), cfg)
	rf, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	n.onEvent(instanceEvent{Instance: "VI_1", Priority: 200, Log: protoLog{Kind: plSplitBrain, Prio: 100, Ours: 200}})
	n.onEvent(instanceEvent{Instance: "VI_1", Priority: 200, Log: protoLog{Kind: plSplitBrainResolved}})
	n.close(5 * time.Second)
	buf := make([]byte, 4096)
	m, _ := rf.Read(buf)
	if got, want := string(buf[:m]), "INSTANCE \"VI_1\" SPLIT 200\nINSTANCE \"VI_1\" SPLIT_RESOLVED 200\n"; got != want {
		t.Errorf("fifo:\n got %q\nwant %q", got, want)
	}
	want := []string{"start INSTANCE VI_1 SPLIT 200", "end INSTANCE VI_1 SPLIT 200", "start INSTANCE VI_1 SPLIT_RESOLVED 200", "end INSTANCE VI_1 SPLIT_RESOLVED 200"}
	if got := readLines(t, out); !slices.Equal(got, want) {
		t.Errorf("notify runs: %q, want %q", got, want)
	}
}
