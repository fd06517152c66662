package main

// monitor.go is split-brain detection in two places:
//
//   - `vipd inspect -i IFACE` watches a link with AF_PACKET and keeps a
//     view of every VRID heard on it (who is master, with what priority,
//     interval, version, authentication and checksum form), warning about
//     what breaks VRRP: two masters for one VRID, interval or
//     authentication mismatches, VRID collisions, and more than one
//     address owner (priority 255).
//   - In the daemon, a master that hears another master it outranks logs
//     "split brain" (vrrp.go), counts it (status, metrics, dumps) and
//     publishes the event; when the other master falls silent the state
//     machine asks for a gratuitous ARP / NA burst, so clients that
//     followed the loser come back (keepalived sends none then).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// countLog keeps the runner's split-brain counters from the state
// machine's log events.
func (r *runner) countLog(l protoLog) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch l.Kind {
	case plSplitBrain:
		r.status.SplitBrains++
		r.status.Rival = l.Src
	case plSplitBrainResolved:
		r.status.Rival = netip.Addr{}
	}
}

// splitBrain says whether ev is a split brain starting (another master
// that this master outranks was heard) or ending (that master fell
// silent; the instance re-announces its VIPs). Notify code runs its
// split-brain hook on these: keepalived has none, so vipd's notify
// documents a "SPLIT" state for it.
func (ev instanceEvent) splitBrain() (begin, end bool) {
	if ev.Transition {
		return false, false
	}
	return ev.Log.Kind == plSplitBrain, ev.Log.Kind == plSplitBrainResolved
}

// inspectWarning is one problem the link monitor sees on a VRID.
type inspectWarning struct {
	Kind   string `json:"kind"` // see the warn* constants
	VRID   uint8  `json:"vrid"`
	Family string `json:"family"` // inet, inet6
	Detail string `json:"detail"`
}

const (
	warnTwoMasters   = "two_masters"       // more than one router advertises as master
	warnInterval     = "interval_mismatch" // routers advertise different intervals
	warnAuth         = "auth_mismatch"     // VRRPv2 authentication differs
	warnVersion      = "vrid_collision"    // v2 and v3 on one VRID: two groups share it
	warnAddresses    = "address_mismatch"  // different address lists: two groups share it, or a config differs
	warnTwoOwners    = "priority_255"      // more than one address owner
	monitorHistory   = 4                   // advert times kept per router
	monitorMinWindow = time.Second
)

// seenRouter is one router heard on a VRID.
type seenRouter struct {
	Src        netip.Addr
	MAC        string
	Priority   uint8
	IntervalCS uint16
	Version    uint8
	Auth       string // "none", "simple:PASS", "ah", "" for v3
	Addrs      string // sorted, comma separated
	Form       string // checksum form
	Adverts    uint64
	times      []time.Time // the last monitorHistory adverts
}

func (r *seenRouter) last() time.Time { return r.times[len(r.times)-1] }

func (r *seenRouter) interval() time.Duration {
	if r.IntervalCS == 0 {
		return 10 * time.Millisecond
	}
	return time.Duration(r.IntervalCS) * 10 * time.Millisecond
}

// window is how long the router counts as present after its last advert:
// a Master_Down_Interval (3 intervals), at least monitorMinWindow.
func (r *seenRouter) window() time.Duration {
	return max(3*r.interval()+r.interval()/2, monitorMinWindow)
}

// outranks reports whether r wins an election against o (RFC 5798
// section 6.4.3: higher priority, then higher primary address).
func (r *seenRouter) outranks(o *seenRouter) bool {
	if r.Priority != o.Priority {
		return r.Priority > o.Priority
	}
	return r.Src.Compare(o.Src) > 0
}

type vridKey struct {
	ipv6 bool
	vrid uint8
}

func (k vridKey) family() string {
	if k.ipv6 {
		return "inet6"
	}
	return "inet"
}

// linkMonitor is the pure part of `vipd inspect -i`: it takes decoded
// adverts with their arrival time and reports the warnings they raise.
type linkMonitor struct {
	vrids  map[vridKey]map[netip.Addr]*seenRouter
	raised map[vridKey]map[string]bool
}

func newLinkMonitor() *linkMonitor {
	return &linkMonitor{vrids: map[vridKey]map[netip.Addr]*seenRouter{}, raised: map[vridKey]map[string]bool{}}
}

// observe records an advert that passed the stateless checks and returns
// the warnings on its VRID now, and which kinds were raised or cleared by
// it.
func (m *linkMonitor) observe(rec *inspectRecord, now time.Time) (ws []inspectWarning, raised, cleared []string) {
	src, err := netip.ParseAddr(rec.Src)
	if err != nil || rec.Verdict != dropOK.String() {
		return nil, nil, nil
	}
	k := vridKey{ipv6: src.Is6(), vrid: rec.VRID}
	rs := m.vrids[k]
	if rs == nil {
		rs = map[netip.Addr]*seenRouter{}
		m.vrids[k] = rs
	}
	r := rs[src]
	if r == nil {
		r = &seenRouter{Src: src}
		rs[src] = r
	}
	r.MAC, r.Priority, r.IntervalCS, r.Version = rec.SrcMAC, rec.Priority, rec.IntervalCS, rec.Version
	r.Auth = ""
	if rec.AuthType != nil {
		switch *rec.AuthType {
		case authNone:
			r.Auth = "none"
		case authSimple:
			r.Auth = "simple"
			if rec.Auth != nil {
				r.Auth += ":" + *rec.Auth
			}
		case authAH:
			r.Auth = "ah"
		default:
			r.Auth = fmt.Sprintf("type %d", *rec.AuthType)
		}
	}
	addrs := slices.Clone(rec.Addresses)
	sort.Strings(addrs)
	r.Addrs = strings.Join(addrs, ",")
	r.Form = ""
	if rec.ChecksumForm != nil {
		r.Form = *rec.ChecksumForm
	}
	r.Adverts++
	if rec.Priority == 0 {
		// Leaving (RFC 5798 section 6.4.3): no longer a master.
		r.times = r.times[:0]
	}
	r.times = append(r.times, now)
	if len(r.times) > monitorHistory {
		r.times = r.times[len(r.times)-monitorHistory:]
	}
	ws = m.warnings(k, now)
	was := m.raised[k]
	now2 := map[string]bool{}
	for _, w := range ws {
		if !now2[w.Kind] && !was[w.Kind] {
			raised = append(raised, w.Kind)
		}
		now2[w.Kind] = true
	}
	for kind := range was {
		if !now2[kind] {
			cleared = append(cleared, kind)
		}
	}
	sort.Strings(cleared)
	m.raised[k] = now2
	return ws, raised, cleared
}

// present are the routers of k heard within their window, by address.
func (m *linkMonitor) present(k vridKey, now time.Time) []*seenRouter {
	var out []*seenRouter
	for _, r := range m.vrids[k] {
		if len(r.times) > 0 && now.Sub(r.last()) <= r.window() {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Src.Less(out[j].Src) })
	return out
}

// masters are the routers of k acting as master now. Only a master sends
// adverts (RFC 5798 section 6.4.2: a backup is silent), so a router is a
// master while it keeps advertising periodically: adverts at least 0.9
// interval apart, the last within one and a half intervals (a burst, such
// as keepalived's re-assertion, is not periodic). A router that fell
// silent while one that outranks it advertised periodically has yielded;
// this keeps a normal preemption (the old master's last advert, then the
// new master's) from looking like two masters.
func (m *linkMonitor) masters(k vridKey, now time.Time) []*seenRouter {
	var out []*seenRouter
	all := m.present(k, now)
	for _, r := range all {
		if r.Priority == 0 || !r.periodicAfter(time.Time{}) || now.Sub(r.last()) > r.interval()*3/2 {
			continue
		}
		yielded := false
		for _, o := range all {
			if o != r && o.outranks(r) && o.periodicAfter(r.last()) {
				yielded = true
			}
		}
		if !yielded {
			out = append(out, r)
		}
	}
	return out
}

// periodicAfter reports whether r sent adverts after t that are at least
// 0.9 of its interval apart.
func (r *seenRouter) periodicAfter(t time.Time) bool {
	for _, at := range r.times {
		if at.After(t) {
			return r.last().Sub(at) >= r.interval()*9/10
		}
	}
	return false
}

// warnings are the problems on VRID k now.
func (m *linkMonitor) warnings(k vridKey, now time.Time) []inspectWarning {
	var ws []inspectWarning
	add := func(kind, format string, a ...any) {
		ws = append(ws, inspectWarning{Kind: kind, VRID: k.vrid, Family: k.family(), Detail: fmt.Sprintf(format, a...)})
	}
	describe := func(rs []*seenRouter, f func(r *seenRouter) string) string {
		var parts []string
		for _, r := range rs {
			parts = append(parts, fmt.Sprintf("%s %s", r.Src, f(r)))
		}
		return strings.Join(parts, ", ")
	}
	if ms := m.masters(k, now); len(ms) > 1 {
		add(warnTwoMasters, "%d routers advertise as master: %s", len(ms),
			describe(ms, func(r *seenRouter) string { return fmt.Sprintf("(%s, priority %d)", r.MAC, r.Priority) }))
	}
	all := m.present(k, now)
	differ := func(f func(r *seenRouter) string) bool {
		for _, r := range all[1:] {
			if f(r) != f(all[0]) {
				return true
			}
		}
		return false
	}
	if len(all) < 2 {
		return ws
	}
	if differ(func(r *seenRouter) string { return fmt.Sprint(r.Version) }) {
		add(warnVersion, "VRRPv2 and VRRPv3 on one VRID: %s",
			describe(all, func(r *seenRouter) string { return fmt.Sprintf("v%d", r.Version) }))
	}
	if differ(func(r *seenRouter) string { return fmt.Sprint(r.IntervalCS) }) {
		add(warnInterval, "advert intervals differ: %s",
			describe(all, func(r *seenRouter) string { return fmt.Sprintf("%dms", int(r.IntervalCS)*10) }))
	}
	if differ(func(r *seenRouter) string { return r.Auth }) {
		add(warnAuth, "authentication differs: %s",
			describe(all, func(r *seenRouter) string { return r.Auth }))
	}
	if differ(func(r *seenRouter) string { return r.Addrs }) {
		add(warnAddresses, "address lists differ (another group on this VRID, or a configuration differs): %s",
			describe(all, func(r *seenRouter) string { return "[" + r.Addrs + "]" }))
	}
	var owners []*seenRouter
	for _, r := range all {
		if r.Priority == prioOwner {
			owners = append(owners, r)
		}
	}
	if len(owners) > 1 {
		add(warnTwoOwners, "%d routers claim to own the addresses (priority 255): %s", len(owners),
			describe(owners, func(r *seenRouter) string { return "(" + r.MAC + ")" }))
	}
	return ws
}

// writeTable prints the current view: one line per router heard.
func (m *linkMonitor) writeTable(w io.Writer, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VRID\tFAMILY\tROUTER\tMAC\tROLE\tPRIO\tINTERVAL\tVERSION\tAUTH\tCHECKSUM\tADVERTS\tLAST\tADDRESSES")
	keys := make([]vridKey, 0, len(m.vrids))
	for k := range m.vrids {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].vrid != keys[j].vrid {
			return keys[i].vrid < keys[j].vrid
		}
		return !keys[i].ipv6 && keys[j].ipv6
	})
	for _, k := range keys {
		ms := m.masters(k, now)
		present := m.present(k, now)
		var rs []*seenRouter
		for _, r := range m.vrids[k] {
			rs = append(rs, r)
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Src.Less(rs[j].Src) })
		for _, r := range rs {
			role := "gone"
			switch {
			case slices.Contains(ms, r):
				role = "master"
			case slices.Contains(present, r):
				role = "silent"
			}
			auth := r.Auth
			if auth == "" {
				auth = "-"
			}
			last := "-"
			if len(r.times) > 0 {
				last = now.Sub(r.last()).Round(time.Millisecond).String() + " ago"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%dms\tv%d\t%s\t%s\t%d\t%s\t%s\n", k.vrid, k.family(), r.Src, r.MAC, role,
				r.Priority, int(r.IntervalCS)*10, r.Version, auth, r.Form, r.Adverts, last, r.Addrs)
		}
	}
	tw.Flush()
}

// monitorFilter passes untagged Ethernet frames with IPv4 protocol 112 or
// IPv6 next header 112.
func monitorFilter() []bpf.RawInstruction {
	prog, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadExtension{Num: bpf.ExtVLANTagPresent},
		bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 8}, // -> drop
		bpf.LoadAbsolute{Off: 12, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IP, SkipFalse: 2},
		bpf.LoadAbsolute{Off: ethHdrLen + 9, Size: 1},
		bpf.Jump{Skip: 2}, // -> protocol check
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: unix.ETH_P_IPV6, SkipFalse: 3}, // -> drop
		bpf.LoadAbsolute{Off: ethHdrLen + 6, Size: 1},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: vrrpProto, SkipFalse: 1},
		bpf.RetConstant{Val: maxFrameSize},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		panic("monitor bpf filter does not assemble: " + err.Error())
	}
	return prog
}

// liveOptions are `vipd inspect -i`'s.
type liveOptions struct {
	Interface string
	JSON      bool
	Timeout   time.Duration // 0: until interrupted
	Count     int           // stop after this many VRRP frames; 0: no limit
	Summary   time.Duration // text mode: print the table this often; 0: at the end only
}

// runLive watches o.Interface until interrupted, the timeout or the count.
func runLive(ctx context.Context, w io.Writer, o liveOptions) error {
	ifi, err := net.InterfaceByName(o.Interface)
	if err != nil {
		return err
	}
	pc, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ALL, &packet.Config{Filter: monitorFilter()})
	if err != nil {
		return fmt.Errorf("listen on %s (needs root): %w", ifi.Name, err)
	}
	defer pc.Close()
	// Promiscuous, so unicast adverts between other routers are seen
	// too; the group MACs for NICs that filter multicast.
	if err := pc.SetPromiscuous(true); err != nil {
		fmt.Fprintf(os.Stderr, "vipd: %s: not promiscuous (%v): unicast adverts between other routers will not be seen\n", ifi.Name, err)
	}
	pc.JoinGroup(multicastMAC(vrrpGroup4))
	pc.JoinGroup(multicastMAC(vrrpGroup6))
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	go func() {
		<-ctx.Done()
		pc.SetReadDeadline(time.Unix(1, 0))
	}()
	mon := newLinkMonitor()
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	var a Advert
	buf := make([]byte, maxFrameSize)
	nextTable := time.Time{}
	if o.Summary > 0 {
		nextTable = time.Now().Add(o.Summary)
	}
	for n := 1; o.Count == 0 || n <= o.Count; {
		k, _, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("read on %s: %w", ifi.Name, err)
		}
		now := time.Now()
		rec, ok := inspectFrame(captureFrame{N: n, Time: now, Link: layers.LinkTypeEthernet, Data: buf[:k]}, &a)
		if !ok {
			continue
		}
		n++
		rec.Interface = ifi.Name
		ws, raised, cleared := mon.observe(&rec, now)
		rec.Warnings = ws
		if o.JSON {
			if err := enc.Encode(rec); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(bw, rec.text())
			for _, w := range ws {
				if slices.Contains(raised, w.Kind) {
					fmt.Fprintf(bw, "WARNING vrid %d (%s): %s: %s\n", w.VRID, w.Family, w.Kind, w.Detail)
				}
			}
			for _, kind := range cleared {
				fmt.Fprintf(bw, "cleared vrid %d (%s): %s\n", rec.VRID, vridKey{ipv6: !strings.Contains(rec.Src, "."), vrid: rec.VRID}.family(), kind)
			}
			if !nextTable.IsZero() && now.After(nextTable) {
				bw.WriteString("\n")
				mon.writeTable(bw, now)
				bw.WriteString("\n")
				nextTable = now.Add(o.Summary)
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	if !o.JSON {
		bw.WriteString("\n")
		mon.writeTable(bw, time.Now())
	}
	return nil
}

// runLive is the inspect command's live mode, until SIGINT or SIGTERM.
func (c *inspectCmd) runLive() error {
	if len(c.Files) > 0 {
		return fmt.Errorf("give capture files or -i IFACE, not both")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runLive(ctx, os.Stdout, liveOptions{Interface: c.Interface, JSON: c.JSON, Timeout: c.Timeout, Count: c.Count, Summary: c.Summary})
}
