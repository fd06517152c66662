package main

// script.go runs the scripts of vrrp_script, notify_* and
// notify_fifo_script the way keepalived 2.2.7 does (notify.c): the command
// line is split into arguments (quotes group words), a line with shell
// syntax runs under /bin/sh -c, each run is in its own process group, runs
// as script_user, and a run past its timeout is killed with its whole
// group and counts as a failure. enable_script_security refuses scripts
// that a non-root user could replace.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// scriptKillGrace is how long a timed-out script's process group has
// between SIGTERM and SIGKILL (keepalived sends SIGTERM, then SIGKILL).
const scriptKillGrace = 200 * time.Millisecond

// scriptOutputMax bounds the output kept from one run for the debug log.
const scriptOutputMax = 4096

// defaultScriptUser is the user keepalived runs scripts as when
// script_user is not set and the user exists.
const defaultScriptUser = "keepalived_script"

// runnable is a resolved script: its argv (before per-call arguments), the
// credential to run it with (nil: as vipd) and where it was configured.
type runnable struct {
	Cmd   string
	Argv  []string
	Shell bool
	Cred  *syscall.Credential
	User  string // for messages
	Pos   Pos
}

// scriptResult is the outcome of one run.
type scriptResult struct {
	Code     int // exit status; -1 when killed or not run
	TimedOut bool
	Err      error // could not start, killed by a signal, timed out
	Output   []byte
	Took     time.Duration
}

// OK reports a zero exit status.
func (r scriptResult) OK() bool { return r.Err == nil && r.Code == 0 }

// resolveScript prepares s to run: splits it, resolves the user (the
// script's own, else global script_user, else keepalived_script when that
// user exists, else root) and, with enable_script_security, checks that
// no one but root can change the executable or any directory above it.
func resolveScript(s Script, g *GlobalDefs) (*runnable, error) {
	argv, err := checkMiscCommand(s.Cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", s.Pos, err)
	}
	r := &runnable{Cmd: s.Cmd, Argv: argv, Shell: len(argv) == 3 && argv[0] == "/bin/sh" && argv[1] == "-c" && argv[2] == strings.TrimSpace(s.Cmd), Pos: s.Pos}
	name, group := s.User, s.Group
	if name == "" {
		name, group = g.ScriptUser, g.ScriptGroup
	}
	explicit := name != ""
	if name == "" {
		if _, err := user.Lookup(defaultScriptUser); err == nil {
			name = defaultScriptUser
		}
	}
	if name != "" {
		cred, err := lookupCredential(name, group)
		if err != nil {
			if explicit {
				return nil, fmt.Errorf("%s: script %q: %v", s.Pos, s.Cmd, err)
			}
		} else {
			r.User = name
			if int(cred.Uid) != os.Geteuid() || int(cred.Gid) != os.Getegid() {
				r.Cred = cred
			}
		}
	}
	if r.User == "" {
		r.User = "root"
		if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
			r.User = u.Username
		}
	}
	if g.EnableScriptSecurity {
		exe := r.Argv[0]
		if err := checkScriptSecure(exe); err != nil {
			return nil, fmt.Errorf("%s: script %q is disabled by enable_script_security: %v", s.Pos, s.Cmd, err)
		}
	}
	return r, nil
}

// lookupCredential resolves USER [GROUP] to a credential; the group
// defaults to the user's primary group.
func lookupCredential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("user %s: %v", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q", name, u.Uid)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, fmt.Errorf("group %s: %v", group, err)
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group of %s: gid %q", name, gidStr)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// checkScriptSecure applies keepalived's check_script_secure rules to the
// executable exe (looked up in PATH when it has no slash): the file and
// every directory above it must be owned by root and not writable by group
// or others, else a non-root user could make vipd run anything as root.
// Symbolic links are followed and their targets checked too.
func checkScriptSecure(exe string) error {
	path := exe
	if !strings.Contains(exe, "/") {
		p, err := exec.LookPath(exe)
		if err != nil {
			return fmt.Errorf("%s is not in PATH", exe)
		}
		path = p
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("%s: %v", abs, err)
	}
	for _, p := range []string{abs, real} {
		for dir := p; ; dir = filepath.Dir(dir) {
			if err := secureEntry(dir, dir == p); err != nil {
				return err
			}
			if dir == "/" {
				break
			}
		}
	}
	return nil
}

func secureEntry(path string, isFile bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no owner information", path)
	}
	if st.Uid != 0 {
		return fmt.Errorf("%s is owned by uid %d, not root", path, st.Uid)
	}
	if fi.Mode().Perm()&0o022 != 0 && !(fi.IsDir() && fi.Mode()&os.ModeSticky != 0 && !isFile) {
		return fmt.Errorf("%s is writable by group or others (mode %v)", path, fi.Mode().Perm())
	}
	if isFile && fi.Mode().Perm()&0o111 == 0 && !fi.IsDir() {
		return fmt.Errorf("%s is not executable", path)
	}
	return nil
}

// argv returns the command line with extra arguments appended; a shell
// command gets them shell-quoted onto its text.
func (r *runnable) argv(extra ...string) []string {
	if len(extra) == 0 {
		return r.Argv
	}
	if r.Shell {
		q := make([]string, len(extra))
		for i, a := range extra {
			q[i] = shellQuote(a)
		}
		return []string{"/bin/sh", "-c", r.Argv[2] + " " + strings.Join(q, " ")}
	}
	return append(append([]string(nil), r.Argv...), extra...)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// limitedBuffer keeps the first scriptOutputMax bytes written to it.
type limitedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := scriptOutputMax - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (l *limitedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// run runs the script once with extra arguments, in its own process
// group. When timeout (if > 0) passes or ctx ends first, the whole group
// gets SIGTERM, then SIGKILL after scriptKillGrace, and the run is a
// failure. Whatever the script left in its group is killed when it exits,
// so a check never leaks processes.
func (r *runnable) run(ctx context.Context, timeout time.Duration, extra ...string) scriptResult {
	start := time.Now()
	argv := r.argv(extra...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: r.Cred}
	cmd.Dir = "/"
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A grandchild outside the group could hold the output pipe open:
	// give up on it rather than wait.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return scriptResult{Code: -1, Err: fmt.Errorf("start %s: %v", argv[0], err), Took: time.Since(start)}
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	res := scriptResult{Code: -1}
	select {
	case err := <-done:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		res.Code, res.Err = exitStatus(err)
	case <-timer:
		res.TimedOut = true
		res.Err = fmt.Errorf("timed out after %v", timeout)
		killGroup(pgid, done)
	case <-ctx.Done():
		res.Err = errors.New("cancelled")
		killGroup(pgid, done)
	}
	res.Output = out.Bytes()
	res.Took = time.Since(start)
	return res
}

// killGroup terminates process group pgid and waits for its leader.
func killGroup(pgid int, done <-chan error) {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(scriptKillGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

func exitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, fmt.Errorf("killed by signal %v", ws.Signal())
		}
		return ee.ExitCode(), nil
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return 0, nil
	}
	return -1, err
}
