package main

// ops.go wires the operations side into the daemon: keepalived's dump
// signals, the metrics server, and systemd's notify protocol
// (sd_notify(3)): READY=1 once the instances run, RELOADING=1 / READY=1
// around a reload, STOPPING=1 on the way out, and WATCHDOG=1 while the
// daemon answers.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// startOps starts what f asks for beside the protocol; it all ends with ctx.
func (d *daemon) startOps(ctx context.Context, f opsFlags) error {
	if f.MetricsAddr != "" {
		if err := d.serveMetrics(ctx, f.MetricsAddr); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	sigs := make(chan os.Signal, 4)
	for sig := range signalDump {
		signal.Notify(sigs, sig)
	}
	go func() {
		defer signal.Stop(sigs)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				k := signalDump[sig.(syscall.Signal)]
				path, err := d.writeDumpFile(f.DumpDir, k)
				if err != nil {
					d.log.Error().Err(err).Msg("cannot write the dump")
					continue
				}
				d.log.Info().Str("file", path).Msgf("Wrote the %s dump", k)
			}
		}
	}()
	if iv := watchdogInterval(); iv > 0 {
		go d.watchdog(ctx, iv)
	}
	return nil
}

// sdNotify sends state to systemd's notify socket ($NOTIFY_SOCKET); it
// does nothing when vipd does not run under a Type=notify unit.
func (d *daemon) sdNotify(state string) {
	if err := sdNotify(os.Getenv("NOTIFY_SOCKET"), state); err != nil {
		d.log.Warn().Err(err).Msg("cannot notify systemd")
	}
}

// sdNotify sends one datagram of newline-separated KEY=VALUE pairs to
// socket, a path or an abstract "@name" (sd_notify(3)).
func sdNotify(socket, state string) error {
	if socket == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notify socket %s: %w", socket, err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

// reloadingState is RELOADING=1 with the MONOTONIC_USEC that
// Type=notify-reload units require.
func reloadingState() string {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// watchdogInterval is half of $WATCHDOG_USEC (systemd's advice), or 0
// when no watchdog is armed for this process.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// watchdog pings systemd every iv while every runner's loop turns (each
// answers a ping within iv) and a status snapshot can be taken: a runner
// stuck in a system call or a lock stops the pings, and systemd restarts
// vipd (WatchdogSec=).
func (d *daemon) watchdog(ctx context.Context, iv time.Duration) {
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.alive(iv); err != nil {
				d.log.Error().Err(err).Msg("not pinging the systemd watchdog")
				continue
			}
			d.sdNotify("WATCHDOG=1")
		}
	}
}

// alive checks within timeout that every runner answers and that status
// can be taken.
func (d *daemon) alive(timeout time.Duration) error {
	// Not during a reload, whose stopped runners answer nothing; a reload
	// that never ends stops the pings too.
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	deadline := time.After(timeout)
	d.mu.Lock()
	runners := append([]*runner(nil), d.runners...)
	d.mu.Unlock()
	for _, r := range runners {
		reply := make(chan struct{})
		select {
		case r.in <- &runnerInput{kind: inPing, reply: reply}:
		case <-deadline:
			return fmt.Errorf("instance %s is not taking input", r.snapshot().Config.Name)
		}
		select {
		case <-reply:
		case <-deadline:
			return fmt.Errorf("instance %s does not answer", r.snapshot().Config.Name)
		}
	}
	done := make(chan struct{})
	go func() { d.status(); close(done) }()
	select {
	case <-done:
		return nil
	case <-deadline:
		return errors.New("status snapshot is stuck")
	}
}

// readyState is what READY=1 says: systemctl status shows STATUS=.
func (d *daemon) readyState() string {
	d.mu.Lock()
	n := len(d.runners)
	d.mu.Unlock()
	return "READY=1\nSTATUS=" + strings.TrimSpace(fmt.Sprintf("running %d VRRP instance(s)", n))
}

// underJournal reports whether stderr is connected to systemd's journal
// ($JOURNAL_STREAM names its device and inode, systemd.exec(5)).
func underJournal(f *os.File) bool {
	js := os.Getenv("JOURNAL_STREAM")
	if js == "" || f == nil {
		return false
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return js == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// journalWriter writes console lines for the journal: no timestamp (the
// journal has its own), no colour, and the sd-daemon(3) "<N>" prefix so
// that journalctl -p err shows vipd's errors.
type journalWriter struct {
	mu  sync.Mutex
	out io.Writer
	buf bytes.Buffer
}

func (w *journalWriter) Write(p []byte) (int, error) { return w.WriteLevel(zerolog.NoLevel, p) }

func (w *journalWriter) WriteLevel(l zerolog.Level, p []byte) (int, error) {
	prio := 6 // LOG_INFO
	switch l {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		prio = 7
	case zerolog.WarnLevel:
		prio = 4
	case zerolog.ErrorLevel:
		prio = 3
	case zerolog.FatalLevel, zerolog.PanicLevel:
		prio = 2
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Reset()
	fmt.Fprintf(&w.buf, "<%d>", prio)
	cw := zerolog.ConsoleWriter{Out: &w.buf, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}
	if _, err := cw.Write(p); err != nil {
		return 0, err
	}
	if _, err := w.out.Write(w.buf.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}
