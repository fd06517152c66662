package main

// fifo.go writes keepalived's notify fifo lines (vrrp_notify.c
// notify_fifo): one line per state change,
//
//	INSTANCE "VI_1" MASTER 100
//	GROUP "VG_1" FAULT 0
//
// to notify_fifo and vrrp_notify_fifo, and runs notify_fifo_script with the
// fifo's path as its argument to read them.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// fifoLine is one notify fifo line: kind is INSTANCE or GROUP, what is a
// state name or one of keepalived's events (MASTER_RX_LOWER_PRI,
// MASTER_PRIORITY, BACKUP_PRIORITY); the priority is 0 for a group, as
// keepalived writes it.
func fifoLine(kind, name, what string, prio uint8) string {
	return fmt.Sprintf("%s \"%s\" %s %d\n", kind, name, what, prio)
}

// fifoWriter is one open notify fifo.
type fifoWriter struct {
	log     zerolog.Logger
	path    string
	created bool

	mu sync.Mutex
	f  *os.File

	cancel context.CancelFunc
	done   chan struct{}
}

// openFifo creates the fifo when missing and opens it read-write and
// non-blocking: writes never wait for a reader (a full fifo loses lines,
// logged) and the open does not fail when no one reads yet.
func openFifo(log zerolog.Logger, path string) (*fifoWriter, error) {
	w := &fifoWriter{log: log, path: path}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := syscall.Mkfifo(path, 0o600); err != nil {
			return nil, fmt.Errorf("notify fifo %s: %w", path, err)
		}
		w.created = true
	case err != nil:
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	case fi.Mode()&os.ModeNamedPipe == 0:
		return nil, fmt.Errorf("notify fifo %s exists and is not a fifo", path)
	}
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("notify fifo %s: %w", path, err)
	}
	w.f = f
	return w, nil
}

// write writes one line; it never blocks.
func (w *fifoWriter) write(line string) {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	// One write(2) on the fd: os.File would park in the poller on a
	// full pipe (vipd holds the fifo open itself, so with no reader it
	// fills), and this runs on goroutines that serve other instances.
	// A line under PIPE_BUF is written whole or not at all.
	var werr error
	rc, err := w.f.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { _, werr = unix.Write(int(fd), []byte(line)) })
	}
	if err == nil {
		err = werr
	}
	if err != nil {
		w.log.Warn().Msgf("notify fifo %s: line lost: %v", w.path, err)
	}
}

// startScript runs notify_fifo_script FIFO for as long as vipd runs.
func (w *fifoWriter) startScript(r *runnable) {
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel, w.done = cancel, make(chan struct{})
	go func() {
		defer close(w.done)
		res := r.run(ctx, 0, w.path)
		if ctx.Err() == nil {
			w.log.Warn().Msgf("notify_fifo_script %q for %s exited: status %d %v", r.Cmd, w.path, res.Code, res.Err)
		}
	}()
}

// close stops the fifo script and closes (and removes, if vipd made it)
// the fifo.
func (w *fifoWriter) close() {
	if w == nil {
		return
	}
	if w.cancel != nil {
		w.cancel()
		<-w.done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	if w.created {
		os.Remove(w.path)
	}
}
