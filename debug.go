package main

// debug.go is the daemon's self-inspection for the soak, fault and scale
// benchmarks: `vipd debug` prints the process's goroutines, open file
// descriptors, memory and the receive hubs' counters (adverts for a VRID
// no instance runs, frames the socket or the kernel dropped), which
// `vipd status` does not show; `vipd debug --cpu-profile FILE` (or
// --heap-profile) fetches a profile of the running daemon in pprof
// format. All go over the control socket, so they work inside the
// daemon's network namespace like `vipd status`.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"time"
)

// debugStatus is `vipd debug` (JSON).
type debugStatus struct {
	Pid        int    `json:"pid"`
	Goroutines int    `json:"goroutines"`
	FDs        int    `json:"fds"`
	RSSKiB     int    `json:"rss_kib"`      // VmRSS
	PeakRSSKiB int    `json:"peak_rss_kib"` // VmHWM
	HeapAlloc  uint64 `json:"heap_alloc"`
	HeapSys    uint64 `json:"heap_sys"`
	StackSys   uint64 `json:"stack_sys"`
	NumGC      uint32 `json:"num_gc"`
	// AdvertBatches is how many times the advert scheduler woke for
	// masters due, AdvertTimers the Adver_Timer expiries it handled then
	// (sched.go; one scheduler serves every hub): many expiries per
	// wake-up is the grid at work.
	AdvertBatches uint64      `json:"advert_batches"`
	AdvertTimers  uint64      `json:"advert_timers"`
	Hubs          []hubStatus `json:"hubs"`
}

// hubStatus is one receive socket's counters.
type hubStatus struct {
	Interface     string `json:"interface,omitempty"`
	Unicast       bool   `json:"unicast"`
	Addr          string `json:"addr"`
	Instances     int    `json:"instances"`
	UnknownVRID   uint64 `json:"unknown_vrid"`   // adverts for a VRID no instance here runs
	MalformedDrop uint64 `json:"malformed_drop"` // frames the conn dropped as not VRRP or malformed
	// KernelPackets and KernelDrops are the packet socket's counters
	// (PACKET_STATISTICS) since the previous `vipd debug`: frames queued,
	// and frames lost because the socket's receive buffer was full.
	KernelPackets uint32 `json:"kernel_packets,omitempty"`
	KernelDrops   uint32 `json:"kernel_drops,omitempty"`
	// ReadFrames and ReadWaits: frames the hub read, and the times it
	// found its socket empty and waited for the poller (multicast).
	ReadFrames uint64 `json:"read_frames,omitempty"`
	ReadWaits  uint64 `json:"read_waits,omitempty"`
}

// cpuProfileSeconds is how long `vipd debug --cpu-profile` profiles.
const cpuProfileSeconds = 10

func init() {
	controlHandlers["debug"] = func(d *daemon) any { return d.debugStatus() }
	controlHandlers["cpu-profile"] = func(d *daemon) any {
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			return map[string]string{"error": err.Error()}
		}
		time.Sleep(cpuProfileSeconds * time.Second)
		pprof.StopCPUProfile()
		return map[string][]byte{"profile": buf.Bytes()}
	}
	controlHandlers["heap-profile"] = func(d *daemon) any {
		var buf bytes.Buffer
		if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
			return map[string]string{"error": err.Error()}
		}
		return map[string][]byte{"profile": buf.Bytes()}
	}
}

func (d *daemon) debugStatus() debugStatus {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := debugStatus{Pid: os.Getpid(), Goroutines: runtime.NumGoroutine(),
		HeapAlloc: ms.HeapAlloc, HeapSys: ms.HeapSys, StackSys: ms.StackSys, NumGC: ms.NumGC}
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		st.FDs = len(ents) - 1 // the directory being read is one
	}
	st.RSSKiB, st.PeakRSSKiB = procStatusKiB("/proc/self/status", "VmRSS:"), procStatusKiB("/proc/self/status", "VmHWM:")
	d.mu.Lock()
	if d.sched != nil {
		st.AdvertBatches, st.AdvertTimers = d.sched.batches.Load(), d.sched.expiries.Load()
	}
	for k, h := range d.hubs {
		hs := hubStatus{Interface: k.ifname, Unicast: k.unicast, Addr: k.addr.String()}
		h.mu.RLock()
		for _, rs := range &h.byVRID {
			hs.Instances += len(rs)
		}
		hs.UnknownVRID = h.unknown
		h.mu.RUnlock()
		if c, ok := h.conn.(interface{ Drops() uint64 }); ok {
			hs.MalformedDrop = c.Drops()
		}
		if c, ok := h.conn.(*mcastConn); ok {
			if ks, err := c.pc.Stats(); err == nil {
				hs.KernelPackets, hs.KernelDrops = ks.Packets, ks.Drops
			}
			hs.ReadFrames, hs.ReadWaits = c.frames.Load(), c.waits.Load()
		}
		st.Hubs = append(st.Hubs, hs)
	}
	d.mu.Unlock()
	sort.Slice(st.Hubs, func(i, j int) bool {
		return st.Hubs[i].Interface+st.Hubs[i].Addr < st.Hubs[j].Interface+st.Hubs[j].Addr
	})
	return st
}

// procStatusKiB returns the kB value of key in a /proc/PID/status file, or 0.
func procStatusKiB(path, key string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// debugCmd is `vipd debug`: the running daemon's process figures.
type debugCmd struct {
	CPUProfile  string `name:"cpu-profile" placeholder:"FILE" help:"Write a CPU profile of the running daemon (10 s, pprof format) to FILE."`
	HeapProfile string `name:"heap-profile" placeholder:"FILE" help:"Write a heap profile of the running daemon (pprof format) to FILE."`
	controlFlag
}

func (c *debugCmd) Run() error {
	for cmd, file := range map[string]string{"cpu-profile": c.CPUProfile, "heap-profile": c.HeapProfile} {
		if file == "" {
			continue
		}
		var res struct {
			Profile []byte `json:"profile"`
		}
		if err := controlCall(c.Control, cmd, &res); err != nil {
			return err
		}
		return os.WriteFile(file, res.Profile, 0o644)
	}
	var st debugStatus
	if err := controlCall(c.Control, "debug", &st); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		return fmt.Errorf("debug: %w", err)
	}
	return nil
}
