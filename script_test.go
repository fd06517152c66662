package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustResolve(t *testing.T, cmd string, g *GlobalDefs) *runnable {
	t.Helper()
	if g == nil {
		g = &GlobalDefs{}
	}
	r, err := resolveScript(Script{Cmd: cmd, Pos: Pos{File: "k.conf", Line: 3}}, g)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestScriptArgv checks splitting like keepalived (quotes group words) and
// the /bin/sh -c fallback for shell syntax, with notify arguments appended
// to both.
func TestScriptArgv(t *testing.T) {
	for _, c := range []struct {
		cmd   string
		extra []string
		want  []string
	}{
		{`/usr/bin/check a "b c" 'd'`, nil, []string{"/usr/bin/check", "a", "b c", "d"}},
		{`/etc/notify.sh`, []string{"INSTANCE", "VI_1", "MASTER", "100"}, []string{"/etc/notify.sh", "INSTANCE", "VI_1", "MASTER", "100"}},
		{`</dev/tcp/127.0.0.1/80`, nil, []string{"/bin/sh", "-c", `</dev/tcp/127.0.0.1/80`}},
		{`pidof nginx | grep -q .`, nil, []string{"/bin/sh", "-c", `pidof nginx | grep -q .`}},
		{`echo $HOME`, []string{"GROUP", "it's"}, []string{"/bin/sh", "-c", `echo $HOME 'GROUP' 'it'\''s'`}},
	} {
		r := mustResolve(t, c.cmd, nil)
		if got := r.argv(c.extra...); !slices.Equal(got, c.want) {
			t.Errorf("%q %v: got %q, want %q", c.cmd, c.extra, got, c.want)
		}
	}
	if _, err := resolveScript(Script{Cmd: `/bin/x "open`, Pos: Pos{File: "k.conf", Line: 9}}, &GlobalDefs{}); err == nil || !strings.Contains(err.Error(), "k.conf:9") {
		t.Errorf("unterminated quote: %v", err)
	}
}

// TestScriptShellArgs runs a shell-syntax script with appended arguments.
func TestScriptShellArgs(t *testing.T) {
	r := mustResolve(t, `echo "$0" | tr a-z A-Z; echo`, nil)
	res := r.run(context.Background(), 5*time.Second, "INSTANCE", "VI 1")
	if !res.OK() {
		t.Fatalf("run: %+v", res)
	}
	if got := string(res.Output); got != "/BIN/SH\nINSTANCE VI 1\n" {
		t.Errorf("output %q", got)
	}
	r = mustResolve(t, "/bin/sh -c 'exit 3'", nil)
	if res := r.run(context.Background(), 5*time.Second); res.Code != 3 || res.OK() {
		t.Errorf("exit 3: %+v", res)
	}
}

// TestScriptTimeoutKillsGroup checks that a run past its timeout is a
// failure and that its whole process group (here a background child)
// is killed.
func TestScriptTimeoutKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidf := filepath.Join(dir, "pid")
	r := mustResolve(t, "sleep 60 & echo $! > "+pidf+"; wait", nil)
	res := r.run(context.Background(), 300*time.Millisecond)
	if !res.TimedOut || res.OK() {
		t.Fatalf("want a timeout, got %+v", res)
	}
	b, err := os.ReadFile(pidf)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		// A killed child is reaped by init (or is a zombie until then).
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("background child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestScriptUser runs a script as another user (root only).
func TestScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: switches user")
	}
	r := mustResolve(t, "/usr/bin/id -u", &GlobalDefs{ScriptUser: "nobody"})
	res := r.run(context.Background(), 5*time.Second)
	if !res.OK() || strings.TrimSpace(string(res.Output)) != "65534" {
		t.Errorf("id -u as nobody: %+v %q", res, res.Output)
	}
	if _, err := resolveScript(Script{Cmd: "/bin/true", User: "no-such-user-vipd"}, &GlobalDefs{}); err == nil {
		t.Error("unknown user accepted")
	}
}

// TestScriptSecurity applies enable_script_security: a script a non-root
// user could change is refused.
func TestScriptSecurity(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chowns files")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "chk.sh")
	os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755)
	g := &GlobalDefs{EnableScriptSecurity: true}
	if _, err := resolveScript(Script{Cmd: p}, g); err != nil {
		t.Fatalf("root-owned 0755 script refused: %v", err)
	}
	os.Chmod(p, 0o777)
	if _, err := resolveScript(Script{Cmd: p}, g); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Errorf("world-writable script: %v", err)
	}
	os.Chmod(p, 0o755)
	os.Chown(p, 65534, 65534)
	if _, err := resolveScript(Script{Cmd: p}, g); err == nil || !strings.Contains(err.Error(), "owned") {
		t.Errorf("script owned by nobody: %v", err)
	}
	os.Chown(p, 0, 0)
	os.Chmod(dir, 0o777)
	if _, err := resolveScript(Script{Cmd: p}, g); err == nil {
		t.Error("script in a world-writable directory accepted")
	}
}

// TestScriptFromConfig checks scripts as the configuration loader hands
// them over: keepalived.conf quoting, then keepalived's splitting.
func TestScriptFromConfig(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	os.WriteFile(conf, []byte(`vrrp_script a {
	script "/bin/bash -c '</dev/tcp/127.0.0.1/80'"
}
vrrp_script b {
	script "/bin/busybox nc 127.0.0.1 80 </dev/null"
}
vrrp_script c {
	script /usr/bin/pgrep -x haproxy
}
`), 0o644)
	cfg, diags, err := loadConfig(conf, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	for name, want := range map[string][]string{
		"a": {"/bin/bash", "-c", "</dev/tcp/127.0.0.1/80"},
		"b": {"/bin/sh", "-c", "/bin/busybox nc 127.0.0.1 80 </dev/null"},
		"c": {"/usr/bin/pgrep", "-x", "haproxy"},
	} {
		r := mustResolve(t, cfg.Scripts[name].Script.Cmd, nil)
		if !slices.Equal(r.Argv, want) {
			t.Errorf("vrrp_script %s: argv %q, want %q", name, r.Argv, want)
		}
	}
}
