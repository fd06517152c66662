package main

// End-to-end operations tests: real vipd processes in network namespaces
// named vipd-ops-<pid>-*, driven through their control socket, signals and
// metrics like an operator would, with a client pinging the VIP.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// newOpsNS is newTestNS with this file's namespace prefix.
func newOpsNS(t testing.TB, tag string) *testNS {
	t.Helper()
	return newTestNSPrefix(t, "ops", tag)
}

// newOpsLAN is newTestLAN with this file's namespaces: hosts 0..n-1 on
// a bridge, ports p1..pn.
func newOpsLAN(t testing.TB, hosts int) *testLAN {
	t.Helper()
	needRoot(t)
	l := &testLAN{Bridge: newOpsNS(t, "br"), Net: 100 + int(lanSeq.Add(1))}
	l.Bridge.IP("link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.Bridge.IP("link", "set", "br0", "up")
	for i := 0; i < hosts; i++ {
		h := newOpsNS(t, fmt.Sprintf("h%d", i+1))
		port := fmt.Sprintf("p%d", i+1)
		veth(t, h, "eth0", l.Bridge, port)
		l.Bridge.IP("link", "set", port, "master", "br0")
		h.IP("addr", "add", l.Addr4(i).String(), "dev", "eth0")
		l.Hosts = append(l.Hosts, h)
	}
	return l
}

// opsVIP is the n-th virtual address on l.
func (l *testLAN) opsVIP(n int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("10.%d.0.%d", l.Net, 100+n))
}

// vipdProc is one vipd daemon in a namespace.
type vipdProc struct {
	t    testing.TB
	ns   *testNS
	bin  string
	conf string
	dir  string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	log bytes.Buffer
}

// startVipd runs vipd in ns with conf and waits for its control socket.
func startOpsVipd(t testing.TB, ns *testNS, conf string, extra ...string) *vipdProc {
	t.Helper()
	p := &vipdProc{t: t, ns: ns, bin: vipdBinary(t), dir: t.TempDir(), done: make(chan struct{})}
	p.conf = filepath.Join(p.dir, "keepalived.conf")
	p.write(conf)
	args := append([]string{"netns", "exec", ns.Name, p.bin, "run", "-f", p.conf, "--log-format", "json",
		"--dump-dir", p.dir}, extra...)
	p.cmd = exec.Command("ip", args...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := startPinned(p.cmd, func() { pw.Close(); close(p.done) }); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", ns.Name, p.logs())
		}
	})
	waitFor(t, 10*time.Second, "control socket of "+ns.Name, func() bool {
		_, err := p.tryStatus()
		return err == nil
	})
	return p
}

// startPinned starts cmd from a goroutine locked to its thread until cmd
// exits, then calls exited. Pdeathsig fires when the thread that forked
// the child exits, and Go ends a thread when a goroutine locked to it
// ends (testNS.Do does): an unpinned child could be killed by the next Do
// that happens to run on the thread it was forked from.
func startPinned(cmd *exec.Cmd, exited func()) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return // the thread ends with this goroutine: nothing to kill
		}
		started <- nil
		cmd.Wait()
		exited()
	}()
	return <-started
}

func (p *vipdProc) write(conf string) {
	if err := os.WriteFile(p.conf, []byte(conf), 0o644); err != nil {
		panic(err) // a temporary directory of the test
	}
}

func (p *vipdProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// vipdCmd runs a vipd client command in the daemon's namespace.
func (p *vipdProc) vipdCmd(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", p.ns.Name, p.bin}, args...)...).CombinedOutput()
	return string(out), err
}

func (p *vipdProc) tryStatus() (daemonStatus, error) {
	var st daemonStatus
	cmd := exec.Command("ip", "netns", "exec", p.ns.Name, p.bin, "status", "--json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return st, fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return st, json.Unmarshal(out, &st)
}

func (p *vipdProc) status(t testing.TB) daemonStatus {
	t.Helper()
	st, err := p.tryStatus()
	if err != nil {
		t.Fatalf("vipd status in %s: %v", p.ns.Name, err)
	}
	return st
}

// instance returns the named instance's status.
func (p *vipdProc) instance(t testing.TB, name string) instanceStatus {
	t.Helper()
	for _, is := range p.status(t).Instances {
		if is.Name == name {
			return is
		}
	}
	t.Fatalf("%s: no instance %s", p.ns.Name, name)
	return instanceStatus{}
}

func (p *vipdProc) reload() error {
	out, err := p.vipdCmd("reload")
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// metrics scrapes the daemon's /metrics from inside its namespace.
func (p *vipdProc) metrics(t testing.TB, addr string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, a string) (c net.Conn, err error) {
			err = p.ns.Do(func() error {
				c, err = net.DialTimeout(network, a, 5*time.Second)
				return err
			})
			return c, err
		},
	}}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s in %s: %v", addr, p.ns.Name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// metricValue is the value of the sample whose name and labels start line.
func metricValue(body, prefix string) (string, bool) {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			f := strings.Fields(l)
			return f[len(f)-1], true
		}
	}
	return "", false
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hasVIP reports whether ns has addr on eth0.
func hasVIP(ns *testNS, addr netip.Addr) bool {
	out, _ := ns.TryIP("-o", "addr", "show", "dev", "eth0")
	return strings.Contains(out, " "+addr.String()+"/")
}

// opsPinger pings a VIP from a namespace every 10 ms and records which
// echo requests got an answer.
type opsPinger struct {
	mu      sync.Mutex
	sent    map[int]time.Time
	replied map[int]time.Time
	cancel  context.CancelFunc
	done    chan struct{}
}

func startPinger(t testing.TB, ns *testNS, dst netip.Addr) *opsPinger {
	t.Helper()
	var conn *icmp.PacketConn
	ns.MustDo(func() (err error) {
		conn, err = icmp.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	ctx, cancel := context.WithCancel(context.Background())
	p := &opsPinger{sent: map[int]time.Time{}, replied: map[int]time.Time{}, cancel: cancel, done: make(chan struct{})}
	id := os.Getpid() & 0xffff
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := icmp.ParseMessage(1, buf[:n])
			if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
				continue
			}
			if e, ok := m.Body.(*icmp.Echo); ok && e.ID == id {
				p.mu.Lock()
				p.replied[e.Seq] = time.Now()
				p.mu.Unlock()
			}
		}
	}()
	go func() {
		defer close(p.done)
		defer conn.Close()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		to := &net.IPAddr{IP: dst.AsSlice()}
		for seq := 1; ; seq++ {
			b, _ := (&icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq & 0xffff, Data: []byte("vipd-ops")}}).Marshal(nil)
			p.mu.Lock()
			p.sent[seq&0xffff] = time.Now()
			p.mu.Unlock()
			conn.WriteTo(b, to)
			select {
			case <-ctx.Done():
				// Answers to the last requests are still on the way.
				time.Sleep(300 * time.Millisecond)
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(p.stop)
	return p
}

func (p *opsPinger) stop() {
	p.cancel()
	<-p.done
}

// result stops the pinger and returns requests sent, those unanswered,
// and the longest time between two answers.
func (p *opsPinger) result() (sent, lost int, gap time.Duration) {
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	var last time.Time
	for seq := 1; seq <= len(p.sent); seq++ {
		at, ok := p.replied[seq]
		if !ok {
			lost++
			continue
		}
		if !last.IsZero() && at.Sub(last) > gap {
			gap = at.Sub(last)
		}
		if at.After(last) {
			last = at
		}
	}
	return len(p.sent), lost, gap
}

// inspectWatch runs `vipd inspect -i eth0 --json` in ns (the live monitor)
// and collects the records it prints.
type inspectWatch struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	recs []inspectRecord
	at   []time.Time
}

func watchInspect(t testing.TB, ns *testNS) *inspectWatch {
	t.Helper()
	w := &inspectWatch{done: make(chan struct{})}
	w.cmd = exec.Command("ip", "netns", "exec", ns.Name, vipdBinary(t), "inspect", "-i", "eth0", "--json")
	out, pw := io.Pipe()
	w.cmd.Stdout, w.cmd.Stderr = pw, os.Stderr
	if err := startPinned(w.cmd, func() { pw.Close() }); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(w.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var rec inspectRecord
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Errorf("inspect -i printed %q: %v", sc.Text(), err)
				continue
			}
			w.mu.Lock()
			w.recs = append(w.recs, rec)
			w.at = append(w.at, time.Now())
			w.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		w.cmd.Process.Signal(os.Interrupt)
		<-w.done
	})
	return w
}

// snapshot returns the records so far.
func (w *inspectWatch) snapshot() []inspectRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]inspectRecord(nil), w.recs...)
}

// maxGap is the longest time between two adverts from src for vrid in
// the records from index from on, and how many there were.
func (w *inspectWatch) maxGap(src string, vrid uint8, from int) (n int, gap time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var last time.Time
	for i := from; i < len(w.recs); i++ {
		r := w.recs[i]
		if r.Src != src || r.VRID != vrid || r.Priority == 0 {
			continue
		}
		n++
		if !last.IsZero() && w.at[i].Sub(last) > gap {
			gap = w.at[i].Sub(last)
		}
		last = w.at[i]
	}
	return n, gap
}

func (w *inspectWatch) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.recs)
}
