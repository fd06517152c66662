package main

// runner.go drives one vrrp_instance: a goroutine that owns the pure state
// machine (vrrp.go), feeds it adverts, link events and timer expiries, and
// executes the actions it returns, in order: send adverts, add and remove
// VIPs, announce them with gratuitous ARP / unsolicited NA, log.

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// runnerInput is one message to a runner's goroutine.
type runnerInput struct {
	kind  inputKind
	msg   []byte    // inAdvert
	meta  frameMeta // inAdvert
	link  linkEvent
	ev    event // inTrack, inForce
	ic    *VRRPInstance
	reply chan struct{}
	err   chan error
	plan  chan reloadPlan // inReconfig: the VIPs to remove and add
	skip  []vip           // inReconfigDels, inReconfigAdds: VIPs moving between instances
}

type inputKind uint8

const (
	inLink   inputKind = iota + 1
	inEvent            // a state machine event from tracking or a sync group
	inAdvert           // an advert the hub could not step (own was taken)
	inStop
	inReconfig     // reload, phase 1: new settings; VIPs that went and came are noted
	inReconfigDels // reload, phase 2: VIPs that went are removed
	inReconfigAdds // reload, phase 3: VIPs that came are added
	inPing         // the watchdog: reply when the loop gets here
	inRelease      // reload: ev (evForce BACKUP) unless the instance is MASTER
)

// runner is one instance's driver.
//
// Two goroutines step its state machine, one at a time under own: the
// runner's own (run: timers, link, tracking, reload, stop) and the hub's
// that reads the instance's socket (deliver: received adverts). Adverts
// are not handed over: a hand-over to a goroutine per instance cost two
// goroutine wake-ups per advert, most of vipd's CPU at 1,000 instances
// (bench/scale.sh), while the hub, stepping each instance as it reads,
// handles a burst of adverts in one wake-up.
type runner struct {
	// own guards the fields below it but mu and status: the state
	// machine and what the driver keeps with it. Lock order: own, then
	// mu; d.mu and a hub's mu may be taken under own, never the reverse.
	//
	// The fields the scheduler and the hub touch for every advert come
	// first, in the order of use, and the counters they bump follow them
	// (mu, status): at 1,000 instances every advert finds its runner out
	// of the CPU's caches, and each further cache line read was a
	// visible part of the cost (perf annotate, bench/scale.sh).
	own     sync.Mutex
	stopped bool         // shut down: the hub no longer steps it
	unicast bool         // adverts go to ic.UnicastPeers (sharePolicy)
	queued  atomic.Int32 // adverts in the queue (deliver found own taken): later ones queue too
	m       *instance
	hub     *hub
	hubPol  atomic.Pointer[hubPolicy] // a copy of pol and the name for the hub's goroutine (deliver)
	batch   *sendBatch                // while the scheduler steps it: where its multicast adverts go (batch.go)
	batched atomic.Int32              // its adverts in the scheduler's batch, not yet sent
	timer   *time.Timer               // the state machine's and the GARP scheduler's deadline
	ic      *VRRPInstance
	schedAt time.Time // queued in the hub's advertSched for this grid point; zero: not queued
	garpAt  time.Time // next GARP/NA due; zero: none
	armed   time.Time // when timer fires; zero: stopped (or fired, and the run loop saw it)
	src     netip.Addr
	group   netip.Addr

	mu     sync.Mutex
	status runnerStatus

	d   *daemon
	log zerolog.Logger
	in  chan *runnerInput

	// Set up once the interface exists (setup), under own.
	ifi     *net.Interface
	vmacIfi *net.Interface
	pol     rxPolicy
	vips    []vip // VIPs and excluded VIPs with their device resolved
	garp    *garpSched
	ann     map[string]announcer
	adv     Advert // receive scratch
	linkUp  bool

	// Reload: while reconfiguring, additions wait for phase 2 so that an
	// address moving between instances is never removed after its add.
	reconfiguring bool
	oldVIPs       []vip
	pendingAdds   []vip
	pendingDels   []vip
	pendingGARP   bool

	// tk measures a takeover from the timer that caused it: set while a
	// timer expiry is executed, it ends up in the "Entering MASTER STATE"
	// log line (vipd lab --bench reads it).
	tk takeoverTimes
}

// runnerStatus is what status, metrics and the lab read of a runner.
type runnerStatus struct {
	// Counted for every advert: first, on mu's cache line.
	SentAdverts  uint64
	PrioZeroSent uint64
	PrioZeroRcvd uint64
	Rx           rxCounters

	State       state
	Priority    uint8
	Master      netip.Addr
	MasterPrio  uint8
	IntervalCS  uint16
	Since       time.Time
	Transitions int
	Overruns    uint64        // adverts dropped because the runner was busy and its queue full (deliver)
	Err         string        // why the instance cannot run, when it cannot
	Config      *VRRPInstance // r.ic, for readers on other goroutines (status, metrics)

	// keepalived's stats (keepalived.stats) and the split-brain monitor.
	BecameMaster   uint64
	ReleasedMaster uint64
	SplitBrains    uint64     // another master heard that we outrank
	Rival          netip.Addr // that master, until it falls silent
}

// runnerQueueLen is the depth of a runner's input queue: link events,
// tracking and sync group events, reload and stop, and the adverts that
// came in while the runner was busy (the hub steps the others itself, see
// deliver), so a short queue does.
const runnerQueueLen = 32

func newRunner(d *daemon, ic *VRRPInstance) *runner {
	return &runner{
		d:   d,
		ic:  ic,
		log: d.log.With().Str("instance", ic.Name).Logger(),
		in:  make(chan *runnerInput, runnerQueueLen),
		// Stopped until armed (arm); Reset and Stop are safe from the
		// hub's goroutine while run selects on C (Go 1.23 timers).
		timer: stoppedTimer(),
		ann:   map[string]announcer{},
		status: runnerStatus{
			State:  stateInit,
			Since:  time.Now(),
			Config: ic,
		},
	}
}

// logf logs msg with keepalived's "(VI_1) " prefix, so grep habits work.
func (r *runner) logf(ev *zerolog.Event, format string, a ...any) {
	ev.Msg("(" + r.ic.Name + ") " + fmt.Sprintf(format, a...))
}

// watched are the interfaces whose link state matters to the instance.
// It is called from other goroutines (the link watcher), so it reads the
// configuration from the status snapshot, not r.ic, which a reload changes.
func (r *runner) watched() []string {
	ic := r.snapshot().Config
	names := []string{ic.Interface}
	for _, t := range ic.Track.Interfaces {
		names = append(names, t.Name)
	}
	return names
}

// hubPolicy is what deliver reads without own.
type hubPolicy struct {
	pol  rxPolicy
	name string // the instance's name, for log lines (a reload may rename it)
}

// sharePolicy publishes r.pol to deliver; call it after each change.
func (r *runner) sharePolicy() {
	r.unicast = len(r.pol.Peers) > 0
	r.hubPol.Store(&hubPolicy{pol: r.pol, name: r.ic.Name})
}

// deliver steps the state machine with a received advert, on the hub's
// goroutine, under own. Adverts that fail the receive checks (RFC 5798
// section 7.1) are counted and dropped first, without own: a flood of bad
// adverts then never waits for the runner's goroutine. receive validates
// the rest again, with the policy of the moment (a reload may have changed
// it since hubPol was read).
//
// a is the hub's scratch advert (its goroutine's alone, and hot in the
// cache where a runner's would not be): the state machine keeps nothing
// of it after the step.
func (r *runner) deliver(msg []byte, meta frameMeta, a *Advert) {
	p := r.hubPol.Load()
	var v verdict
	if p != nil {
		v = validate(rxMeta{Src: meta.Src, Dst: meta.Dst, TTL: meta.TTL, SrcMAC: meta.SrcMAC}, msg, &p.pol, a)
		if !v.OK() {
			r.mu.Lock()
			r.status.Rx.add(v)
			r.mu.Unlock()
			if e := r.d.log.Debug(); e.Enabled() {
				e.Str("instance", p.name).Str("from", meta.Src.String()).Str("reason", v.Reason.String()).
					Msgf("(%s) dropped advert: %v", p.name, v.Err)
			}
			return
		}
	}
	// When the runner's goroutine is busy with this instance (a
	// takeover's VIPs, a reload, a stop), the hub must not wait for it:
	// every other instance on the socket would wait too. The advert goes
	// to the runner's queue instead, and so do the ones after it until
	// the runner has caught up, so that they keep their order.
	if r.queued.Load() > 0 || !r.own.TryLock() {
		r.queue(msg, meta)
		return
	}
	defer r.own.Unlock()
	if r.m == nil || r.stopped {
		return
	}
	now := time.Now()
	if p != nil && r.hubPol.Load() == p {
		// The policy checked above is still the runner's (sharePolicy
		// runs under own): the verdict and the decoded advert stand.
		r.accept(v, a, meta, now)
	} else {
		r.receive(msg, meta, now)
	}
	r.arm(now)
}

// queue hands a copy of an advert to the runner's goroutine; a full queue
// drops it (counted as an overrun).
func (r *runner) queue(msg []byte, meta frameMeta) {
	r.queued.Add(1)
	select {
	case r.in <- &runnerInput{kind: inAdvert, msg: slices.Clone(msg), meta: meta}:
		return
	default:
	}
	r.queued.Add(-1)
	r.mu.Lock()
	r.status.Overruns++
	r.mu.Unlock()
}

func (r *runner) linkEvent(ev linkEvent) {
	for _, n := range r.watched() {
		if n == ev.Name {
			r.in <- &runnerInput{kind: inLink, link: ev}
			return
		}
	}
}

// step feeds the state machine an event from outside (tracking, sync
// groups, operators).
func (r *runner) step(ev event) { r.in <- &runnerInput{kind: inEvent, ev: ev} }

// stop asks the runner to shut down and waits until it has.
func (r *runner) stop() {
	done := make(chan struct{})
	r.in <- &runnerInput{kind: inStop, reply: done}
	<-done
}

// setupSlots bounds how many runners set up at once. Each setup lists
// interfaces and addresses over netlink; a thousand at once held a
// thousand dumps' buffers together and the peak RSS stayed at ~120 MB
// (bench/scale.sh), for no gain in start-up time on a few cores.
var setupSlots = make(chan struct{}, 4)

// setupLimited is setup within setupSlots.
func (r *runner) setupLimited() error {
	setupSlots <- struct{}{}
	defer func() { <-setupSlots }()
	return r.setup()
}

// setup makes the instance ready to run on its interface: address,
// sockets, VMAC, stale VIPs from a crashed run removed.
func (r *runner) setup() error {
	ic, sys := r.ic, r.d.sys
	ifi, err := sys.interfaceByName(ic.Interface)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ic.Interface, err)
	}
	ipv6 := ic.Family == 6
	src := ic.UnicastSrcIP
	if !src.IsValid() {
		src = ic.McastSrcIP
	}
	if !src.IsValid() {
		if src, err = sys.primaryAddr(ifi, ipv6); err != nil {
			return err
		}
	}
	r.ifi, r.src = ifi, src
	if !ipv6 {
		r.d.promote(ic.Interface)
	}
	r.group = ic.McastGroup4
	if ipv6 {
		r.group = ic.McastGroup6
	}
	if !r.group.IsValid() {
		r.group = vrrpGroup4
		if ipv6 {
			r.group = vrrpGroup6
		}
	}
	vipDev := ic.Interface
	if ic.UseVMAC {
		vc := vmacConfig{Name: ic.VMACName, Parent: ic.Interface, VRID: uint8(ic.VRID), IPv6: ipv6}
		if r.vmacIfi, err = sys.vmacs.Create(vc); err != nil {
			return err
		}
		vipDev = r.vmacIfi.Name
	}
	var advertised []netip.Addr
	r.vips, advertised = resolveVIPs(ic, vipDev)
	// Addresses of our configuration left by a crashed run are removed
	// before we enter BACKUP; nothing else is touched.
	if stale, err := sys.addrs.Present(r.vips); err != nil {
		r.logf(r.log.Warn(), "cannot list addresses: %v", err)
	} else {
		for _, v := range stale {
			r.logf(r.log.Warn(), "removing %s left by an earlier run", v)
			if err := sys.addrs.Del(v); err != nil {
				r.logf(r.log.Error(), "remove %s: %v", v, err)
			}
		}
	}
	if r.m == nil {
		if r.m, err = newInstance(machineConfig(ic, src, advertised)); err != nil {
			return fmt.Errorf("%s: %w", ic.Pos, err)
		}
	}
	r.pol = rxPolicyFor(ic, advertised, r.group)
	r.sharePolicy()
	r.garp = newGARPSched(garpConfigFor(ic))
	// Sockets last, so that a failure above leaves none open.
	if ic.UnicastFaultNoPeer && len(ic.UnicastPeers) == 0 && ic.UnicastSrcIP.IsValid() {
		return fmt.Errorf("unicast_fault_no_peer: no unicast_peer configured")
	}
	if len(ic.UnicastPeers) > 0 {
		key := hubKey{unicast: true, addr: src}
		r.hub, err = r.d.attach(key, uint8(ic.VRID), r, func() (advertConn, error) {
			c, err := sys.listenUnicast(src)
			if err == nil && ic.UnicastTTL > 0 && ic.UnicastTTL != vrrpTTL {
				if t, ok := c.(interface{ SetTTL(int) error }); ok {
					err = t.SetTTL(ic.UnicastTTL)
				}
			}
			return c, err
		})
		if err != nil {
			return err
		}
	} else {
		// With use_vmac the adverts go out of, and come in on, the
		// macvlan: its MAC is the virtual MAC (RFC 5798 section 7.3), and
		// the kernel hands a multicast frame whose source is one of its
		// private-mode macvlans' MACs to that macvlan, not to the parent.
		// vmac_xmit_base keeps both on the parent.
		on := ifi
		if r.vmacIfi != nil && !ic.VMACXmitBase {
			on = r.vmacIfi
		}
		key := hubKey{ifname: on.Name, addr: r.group}
		r.hub, err = r.d.attach(key, uint8(ic.VRID), r, func() (advertConn, error) {
			return sys.listenMulticast(on, mcastConfig{Src: src, Group: r.group})
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// resolveVIPs returns ic's virtual and excluded addresses on their
// devices (dev: where an address without "dev" goes), and the addresses
// its adverts carry.
func resolveVIPs(ic *VRRPInstance, dev string) (vips []vip, advertised []netip.Addr) {
	for i, list := range [][]VIP{ic.VIPs, ic.VIPsExcluded} {
		for _, v := range list {
			if ic.UseVMAC && v.Dev == ic.Interface {
				// keepalived moves the instance interface's VIPs onto
				// the VMAC even when "dev <interface>" names it: on the
				// parent, clients would learn the parent's MAC.
				v.Dev = ""
			}
			vips = append(vips, toVIP(v, dev))
			if i == 0 {
				advertised = append(advertised, v.Prefix.Addr())
			}
		}
	}
	return vips, advertised
}

// machineConfig is what the state machine needs of ic.
func machineConfig(ic *VRRPInstance, src netip.Addr, advertised []netip.Addr) instanceConfig {
	return instanceConfig{
		Name:                 ic.Name,
		VRID:                 uint8(ic.VRID),
		Version:              uint8(ic.Version),
		IPv6:                 ic.Family == 6,
		Priority:             uint8(ic.Priority),
		Interval:             uint16(ic.AdvertCentis),
		NoPreempt:            !ic.Preempt,
		PreemptDelay:         ic.PreemptDelay,
		Primary:              src.WithZone(""),
		VIPs:                 advertised,
		InitialMaster:        ic.InitialState == "MASTER",
		DownAdverts:          ic.DownTimerAdverts,
		LowerPrioNoAdvert:    ic.LowerPrioNoAdvert,
		HigherPrioSendAdvert: ic.HigherPrioSendAdvert,
		GARPOnLowerPrio:      ic.Garp.LowerPrioRepeat > 0,
		SyncGroup:            ic.SyncGroup != "",
	}
}

// rxPolicyFor is what ic expects of received adverts (RFC 5798 section 7.1).
func rxPolicyFor(ic *VRRPInstance, advertised []netip.Addr, group netip.Addr) rxPolicy {
	p := rxPolicy{
		VRID:            uint8(ic.VRID),
		Version:         uint8(ic.Version),
		Interval:        uint16(ic.AdvertCentis),
		Addresses:       advertised,
		Owner:           ic.Priority == 255,
		CheckUnicastSrc: ic.CheckUnicastSrc,
		Group:           group,
	}
	switch ic.Auth.Type {
	case "PASS":
		p.AuthType, p.AuthPass = authSimple, ic.Auth.Pass
	case "AH":
		p.AuthType = authAH
	}
	for _, peer := range ic.UnicastPeers {
		p.Peers = append(p.Peers, peer.Addr.WithZone(""))
		hi := peer.MaxTTL
		if hi <= 0 || hi > 255 {
			hi = 255
		}
		p.PeerTTL = append(p.PeerTTL, [2]uint8{uint8(max(peer.MinTTL, 0)), uint8(hi)})
	}
	return p
}

func garpConfigFor(ic *VRRPInstance) garpConfig {
	return garpConfig{
		Repeat:        ic.Garp.MasterRepeat,
		Delay:         ic.Garp.MasterDelay,
		Refresh:       ic.Garp.MasterRefresh,
		RefreshRepeat: ic.Garp.MasterRefreshRepeat,
		Interval:      ic.Garp.Interval,
		NAInterval:    ic.Garp.NAInterval,
	}
}

// toVIP resolves a configured address onto its device.
func toVIP(v VIP, dev string) vip {
	out := vip{Prefix: v.Prefix, Dev: v.Dev, Brd: v.Brd, Label: v.Label, Peer: v.Peer, NoPrefixRoute: v.NoPrefixRoute}
	if out.Dev == "" {
		out.Dev = dev
	}
	if v.BrdAuto && v.Prefix.Addr().Is4() && v.Prefix.Bits() < 31 {
		a := v.Prefix.Masked().Addr().As4()
		n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
		n |= 1<<(32-v.Prefix.Bits()) - 1
		out.Brd = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	}
	switch strings.ToLower(v.Scope) {
	case "host":
		out.Scope = unix.RT_SCOPE_HOST
	case "link":
		out.Scope = unix.RT_SCOPE_LINK
	case "site":
		out.Scope = unix.RT_SCOPE_SITE
	case "nowhere":
		out.Scope = unix.RT_SCOPE_NOWHERE
	default:
		if n, err := parseUint8(v.Scope); err == nil {
			out.Scope = int(n)
		}
	}
	return out
}

func parseUint8(s string) (uint8, error) {
	var n uint8
	_, err := fmt.Sscanf(s, "%d", &n)
	return n, err
}

// stoppedTimer returns a timer that is not running.
func stoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// run is the runner's goroutine.
func (r *runner) run() {
	var retry <-chan time.Time
	r.own.Lock()
	if err := r.setupLimited(); err != nil {
		r.setErr(err)
		retry = time.After(time.Second)
	} else {
		r.startup()
		// Arm the timer now: a lone backup must not need an input to
		// wake up for its Master_Down_Timer.
		r.arm(time.Now())
	}
	r.own.Unlock()
	for {
		select {
		case in := <-r.in:
			if r.handleLocked(in, &retry) {
				return
			}
		case <-r.timer.C:
			// A goroutine that was descheduled wakes with its deadline
			// passed and inputs waiting, and select picks at random.
			// What is queued goes first (an advert, which the hub steps
			// as it reads it, can reset the timer meanwhile: RFC 5798
			// section 6.4.2); evTimer before the deadline does nothing.
			for n := len(r.in); n > 0; n-- {
				if r.handleLocked(<-r.in, &retry) {
					return
				}
			}
			r.own.Lock()
			if !r.armed.After(time.Now()) {
				r.armed = time.Time{} // not if the hub armed it again since
			}
			if r.m == nil {
				r.own.Unlock()
				break
			}
			st, dl := r.m.State(), r.m.Deadline()
			r.own.Unlock()
			// The early wake-up's last stretch is slept without own,
			// so the hub can step an advert that comes in before the
			// deadline.
			if st == stateBackup && !r.waitDue(dl) {
				// An input came in before the deadline: it goes first.
				break
			}
			r.own.Lock()
			now := time.Now()
			if r.m.State() != stateMaster {
				r.tk = takeoverTimes{due: r.m.Deadline(), fired: now}
				r.exec(r.m.Step(event{Kind: evTimer}, now))
				r.tk = takeoverTimes{}
			}
			// A master's adverts are sent by its hub's scheduler
			// (sched.go): its timer is for gratuitous ARPs alone.
			r.announce(now)
			r.own.Unlock()
		case <-retry:
			retry = nil
			r.own.Lock()
			if r.m == nil || r.hub == nil {
				if err := r.setupLimited(); err != nil {
					r.setErr(err)
					retry = time.After(5 * time.Second)
					r.own.Unlock()
					continue
				}
				r.setErr(nil)
				r.startup()
			}
			r.own.Unlock()
		}
		r.own.Lock()
		if r.m != nil {
			r.arm(time.Now())
		}
		r.own.Unlock()
	}
}

// handleLocked is handle under own.
func (r *runner) handleLocked(in *runnerInput, retry *<-chan time.Time) bool {
	r.own.Lock()
	defer r.own.Unlock()
	return r.handle(in, retry)
}

// startup starts the protocol once setup has succeeded, from the link
// state the interface has now: link events that arrived before setup were
// not applied, so the state must be read, not assumed.
func (r *runner) startup() {
	r.linkUp = r.ifi.Flags&(net.FlagUp|net.FlagRunning) == net.FlagUp|net.FlagRunning
	hold := r.applyTracking() // a weight-0 script has no result yet: INIT until it has
	if !r.linkUp && !r.ic.DontTrackPrimary {
		// Straight to FAULT, not INIT -> BACKUP -> FAULT.
		r.exec(r.m.Step(event{Kind: evLinkDown}, time.Now()))
	}
	if !hold {
		r.exec(r.m.Step(event{Kind: evStartup}, time.Now()))
	}
}

// handle processes one input; it reports whether the runner stopped.
func (r *runner) handle(in *runnerInput, retry *<-chan time.Time) (stopped bool) {
	now := time.Now()
	switch in.kind {
	case inAdvert:
		r.queued.Add(-1)
		if r.m != nil && !r.stopped {
			r.receive(in.msg, in.meta, now)
		}
	case inLink:
		r.onLink(in.link, now)
		if r.m == nil {
			*retry = time.After(0)
		}
	case inEvent:
		if r.m != nil {
			r.exec(r.m.Step(in.ev, now))
		}
	case inStop:
		r.shutdown()
		r.stopped = true
		r.timer.Stop()
		r.armed = time.Time{}
		close(in.reply)
		return true
	case inReconfig:
		err := r.reconfigure(in.ic, now)
		if in.plan != nil {
			in.plan <- reloadPlan{Dels: slices.Clone(r.pendingDels), Adds: slices.Clone(r.pendingAdds)}
		}
		in.err <- err
	case inReconfigDels:
		r.commitDels(in.skip)
		close(in.reply)
	case inReconfigAdds:
		r.commitAdds(now, in.skip)
		close(in.reply)
	case inPing:
		close(in.reply)
	case inRelease:
		// Releases a sync group's FAULT command; a MASTER has
		// none to release and must not be demoted by it.
		if r.m != nil && r.m.State() != stateMaster {
			r.exec(r.m.Step(in.ev, now))
		}
	}
	return false
}

func (r *runner) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.status.Err = ""
		return
	}
	if r.status.Err != err.Error() {
		r.logf(r.log.Error(), "cannot run: %v (FAULT until it can)", err)
	}
	r.status.Err = err.Error()
	if r.status.State != stateFault {
		// The state machine does not exist yet (no address to run it
		// with), but users and notify scripts see the instance in FAULT.
		from := r.status.State
		now := time.Now()
		r.status.State, r.status.Since = stateFault, now
		r.status.Transitions++
		r.mu.Unlock()
		r.logf(r.log.Info().Str("from", from.String()).Str("to", "FAULT").Str("reason", "cannot run"), "Entering FAULT STATE")
		r.d.publish(instanceEvent{Instance: r.ic.Name, Runner: r, At: now, Transition: true,
			From: from, To: stateFault, Reason: reasonLinkDown, Detail: err.Error(), Priority: uint8(r.ic.Priority)})
		r.mu.Lock()
	}
}

// arm sets the timer to the earlier of the state machine's and the GARP
// scheduler's deadlines. Called under own.
//
// It leaves a timer alone that fires early enough: every advert a backup
// receives moves its Master_Down_Timer one interval on, and stopping and
// resetting a Go timer each time was a tenth of vipd's CPU at 1,000
// instances (bench/scale.sh). A timer that fires before the deadline
// costs a wake-up that steps nothing (evTimer before the deadline does
// nothing) and arms again, but a backup's timer is reset before that:
// only when the deadline has moved on by half of what is left.
func (r *runner) arm(now time.Time) {
	timer := r.timer
	dl := r.m.Deadline()
	if r.m.State() == stateMaster && !dl.IsZero() {
		// The hub sends the adverts (sched.go); the runner's timer is
		// left for the GARP scheduler. (A master always has a hub: setup
		// attaches one before the state machine starts.)
		if r.hub != nil {
			r.hub.sched.at(r, advertSlot(dl, csDuration(r.m.Config().Interval)))
		}
		dl = time.Time{}
	} else if r.hub != nil {
		r.hub.sched.at(r, time.Time{})
	}
	if next := r.garpAt; !next.IsZero() && (dl.IsZero() || next.Before(dl)) {
		dl = next
	}
	if dl.IsZero() {
		if !r.armed.IsZero() {
			timer.Stop()
			r.armed = time.Time{}
		}
		return
	}
	d := max(dl.Sub(now), 0)
	if r.m.State() == stateBackup && d > earlyWake {
		// Master_Down_Timer: wake early, preciseWait does the rest.
		d -= earlyWake
	}
	at := now.Add(d)
	if !r.armed.IsZero() && !r.armed.After(at) && at.Sub(r.armed) < d/2 {
		return // fires early, by less than half the wait: see above
	}
	timer.Stop()
	timer.Reset(d)
	r.armed = at
}

// Adverts are sent on a grid. A master's Adver_Timer is queued in its
// hub's scheduler (sched.go) for a slot (advertSlot) at most a tenth of
// the interval after its deadline, and the state machine is stepped at
// that slot (advertAt), so that the next deadline is one interval after
// it. The slot is the next point of a grid of half the interval
// (advertQuantum) when that is near enough, else the next tenth of the
// interval: an instance off the grid (a new master, whose first advert
// left at once) moves onto it a tenth of an interval per advert, at most
// four adverts, and then stays. In the steady state the masters of a
// daemon are sent at a few grid points by one wake-up each, as
// keepalived's are (its timer loop reads the clock once for all of them):
// one wake-up sending 250 adverts costs a fraction of 250 wake-ups, and
// a grid of half the interval used 10 % less CPU than one of a tenth at
// 1,000 instances (bench/scale.sh). No gap between a master's adverts is
// longer than 1.1 intervals, so a backup with keepalived's
// down_timer_adverts 1 still hears one in its Master_Down_Interval.
// Only Adver_Timer is rounded: Master_Down_Timer, which a takeover waits
// for, is not.
func advertQuantum(interval time.Duration) time.Duration {
	return interval / 2
}

// advertSlot is the time the scheduler sends a master's advert due at dl:
// the next point of the advert grid when it is at most a tenth of the
// interval away, else the next tenth of the interval (a whole tenth when
// dl is on one already), so that the slots of an instance reach the grid.
func advertSlot(dl time.Time, interval time.Duration) time.Time {
	step := interval / 10
	if step <= 0 {
		return dl
	}
	if g := alignUp(dl, advertQuantum(interval)); g.Sub(dl) <= step {
		return g
	}
	if s := alignUp(dl, step); s.After(dl) {
		return s
	}
	return dl.Add(step)
}

// alignUp rounds t up to a multiple of q (of wall-clock time since the
// Unix epoch, so every runner of the daemon shares the grid). The result
// keeps t's monotonic clock reading: the scheduler compares deadlines on
// it, and a wall clock stepped by NTP must neither silence the masters
// until it catches up nor make the scheduler spin.
func alignUp(t time.Time, q time.Duration) time.Time {
	if q <= 0 {
		return t
	}
	r := t.UnixNano() % int64(q)
	if r == 0 {
		return t
	}
	return t.Add(q - time.Duration(r))
}

// advertAt is the time a master's Adver_Timer expiry is stepped at: its
// slot dl (advertSlot) when the scheduler woke for it in time (less than
// one interval late), so adverts keep their period and phase; now when it
// was held up for longer, so that a stalled daemon does not catch up with
// a burst.
func advertAt(dl, now time.Time, interval time.Duration) time.Time {
	if dl.IsZero() || dl.After(now) || now.Sub(dl) >= interval {
		return now
	}
	return dl
}

// earlyWake is how much earlier than Master_Down_Timer a backup's runner
// wakes up. Go's timers sleep in epoll_wait, whose timeout is in whole
// milliseconds: a timer fires up to about 1 ms late, which was most of a
// takeover's cost (vipd lab --bench). The runner wakes early and sleeps
// the rest in short nanosleeps, which the kernel times to microseconds. Only
// a takeover pays this, as a backup's timer fires only then.
const earlyWake = 2 * time.Millisecond

// With one P (daemon.go) the hub's goroutine runs during these last
// milliseconds only when the runtime's monitor hands the P over, which it
// may not do in time: an advert that comes in during them can be read
// after the takeover, as keepalived's one thread reads a packet that
// arrives while it runs a due timer. The master has then been silent for
// Master_Down_Interval less at most earlyWake.
//
// waitDue sleeps until dl, at most earlyWake, in short nanosleeps. It
// returns false as soon as an input is waiting before dl: an advert
// received before the deadline must be handled before the timer, as it
// would have been without the early wake-up. Once dl has passed the timer
// is due whatever is queued: a queue that never empties (a flood of
// adverts to drop) must not postpone a takeover for ever.
func (r *runner) waitDue(dl time.Time) bool {
	for {
		d := time.Until(dl)
		if d <= 0 || d > earlyWake {
			return true
		}
		if len(r.in) > 0 {
			return false
		}
		ts := unix.NsecToTimespec(min(d, 50*time.Microsecond).Nanoseconds())
		unix.Nanosleep(&ts, nil)
	}
}

// receive validates an advert (RFC 5798 section 7.1) and steps the machine.
func (r *runner) receive(msg []byte, meta frameMeta, now time.Time) {
	v := validate(rxMeta{Src: meta.Src, Dst: meta.Dst, TTL: meta.TTL, SrcMAC: meta.SrcMAC}, msg, &r.pol, &r.adv)
	r.accept(v, &r.adv, meta, now)
}

// accept counts an advert validated against r.pol (verdict v, decoded
// into a) and steps the state machine with it if it passed. Under own.
func (r *runner) accept(v verdict, a *Advert, meta frameMeta, now time.Time) {
	r.mu.Lock()
	r.status.Rx.add(v)
	if v.OK() && a.Priority == 0 {
		r.status.PrioZeroRcvd++
	}
	r.mu.Unlock()
	if !v.OK() {
		if e := r.log.Debug(); e.Enabled() {
			r.logf(e.Str("from", meta.Src.String()).Str("reason", v.Reason.String()), "dropped advert: %v", v.Err)
		}
		return
	}
	var flags advertFlags
	if v.IntervalMismatch {
		flags |= advIntervalDiffers
	}
	if v.AddrMismatch {
		flags |= advAddrsDiffer
		if e := r.log.Debug(); e.Enabled() {
			r.logf(e, "advert from %s carries other addresses than ours: %v", meta.Src, a.Addresses)
		}
	}
	r.exec(r.m.Step(event{Kind: evAdvert, Advert: a, Src: meta.Src, Flags: flags}, now))
}

func (r *runner) onLink(ev linkEvent, now time.Time) {
	if r.m == nil {
		return
	}
	if ev.Name == r.ic.Interface && !r.ic.DontTrackPrimary {
		if ev.Up == r.linkUp {
			return
		}
		r.linkUp = ev.Up
		if ev.Up {
			r.logf(r.log.Info(), "interface %s is up", ev.Name)
			r.exec(r.m.Step(event{Kind: evLinkUp}, now))
		} else {
			r.logf(r.log.Warn(), "interface %s is down", ev.Name)
			r.exec(r.m.Step(event{Kind: evLinkDown}, now))
		}
	}
}

// exec executes the state machine's actions in order.
func (r *runner) exec(acts []action) {
	now := time.Now()
	for _, a := range acts {
		switch a.Kind {
		case actSendAdvert:
			r.sendAdvert(a.Priority)
		case actAddVIPs:
			vs := r.selectVIPs(a.Addrs, r.vips)
			if r.reconfiguring {
				r.pendingAdds = append(r.pendingAdds, vs...)
				continue
			}
			r.addVIPs(vs)
			r.tk.added = time.Now()
		case actRemoveVIPs:
			if r.reconfiguring {
				r.pendingDels = append(r.pendingDels, r.selectVIPs(a.Addrs, r.oldVIPs)...)
				continue
			}
			r.delVIPs(r.selectVIPs(a.Addrs, r.vips))
			if !r.reconfiguring {
				r.garp.Stop()
				r.garpAt = time.Time{}
			}
		case actGARP:
			if r.reconfiguring {
				r.pendingGARP = true
				continue
			}
			targets := make([]garpTarget, 0, len(r.vips))
			for _, v := range r.vips {
				targets = append(targets, garpTarget{Addr: v.Prefix.Addr(), Dev: v.Dev})
			}
			r.garp.Start(now, targets)
			r.announce(now)
			r.tk.garp = time.Now()
		case actNotify:
			r.transition(a, now)
		case actLog:
			r.logf(r.log.Info(), "%s", a.Log)
			r.countLog(a.Log)
			r.d.publish(instanceEvent{Instance: r.ic.Name, Runner: r, At: now, Log: a.Log, Priority: r.m.Priority()})
		case actAdoptInterval:
			r.mu.Lock()
			r.status.IntervalCS = a.Interval
			r.mu.Unlock()
		case actWantMaster:
			r.d.publish(instanceEvent{Instance: r.ic.Name, Runner: r, At: now, WantMaster: true, Want: a.Want, Priority: r.m.Priority()})
		}
	}
	r.mu.Lock()
	r.status.State = r.m.State()
	r.status.Priority = r.m.Priority()
	r.status.Master, r.status.MasterPrio = r.m.Master()
	r.status.IntervalCS = r.m.MasterAdverInterval()
	r.mu.Unlock()
}

// selectVIPs returns the entries of list whose address is in addrs. When
// addrs is every advertised address (entering or leaving MASTER), the
// excluded addresses (virtual_ipaddress_excluded) go with them.
func (r *runner) selectVIPs(addrs []netip.Addr, list []vip) []vip {
	all := !r.reconfiguring && len(addrs) == len(r.pol.Addresses)
	var out []vip
	for _, v := range list {
		if all || slices.Contains(addrs, v.Prefix.Addr()) {
			out = append(out, v)
		}
	}
	return out
}

func (r *runner) addVIPs(vs []vip) {
	for _, v := range vs {
		if err := r.d.sys.addrs.Add(v); err != nil {
			r.logf(r.log.Error(), "add %s: %v", v, err)
		}
	}
}

func (r *runner) delVIPs(vs []vip) {
	for _, v := range vs {
		if err := r.d.sys.addrs.Del(v); err != nil {
			r.logf(r.log.Error(), "remove %s: %v", v, err)
		}
	}
}

func (r *runner) transition(a action, now time.Time) {
	r.mu.Lock()
	r.status.Since = now
	r.status.Transitions++
	if a.To == stateMaster {
		r.status.BecameMaster++
	}
	if a.From == stateMaster {
		r.status.ReleasedMaster++
	}
	r.mu.Unlock()
	ev := r.log.Info().Str("from", a.From.String()).Str("to", a.To.String()).Str("reason", a.Reason.String())
	if a.Detail != "" {
		ev = ev.Str("detail", a.Detail)
	}
	if a.To == stateMaster && !r.tk.due.IsZero() && !r.tk.added.IsZero() {
		// Takeover overhead: from the timer being due to the VIPs added
		// and the first round of gratuitous ARPs / NAs written.
		ev = ev.Time("takeover_due", r.tk.due).
			Float64("takeover_fired_us", float64(r.tk.fired.Sub(r.tk.due).Nanoseconds())/1e3).
			Float64("takeover_vips_us", float64(r.tk.added.Sub(r.tk.due).Nanoseconds())/1e3).
			Float64("takeover_garp_us", float64(r.tk.garp.Sub(r.tk.due).Nanoseconds())/1e3)
	}
	r.logf(ev, "Entering %s STATE", a.To)
	r.d.publish(instanceEvent{Instance: r.ic.Name, Runner: r, At: now, Transition: true,
		From: a.From, To: a.To, Reason: a.Reason, Detail: a.Detail, Priority: r.m.Priority()})
}

// sendAdvert sends one advert: to the group, or to each unicast peer with
// the checksum over that peer's pseudo-header (RFC 5798 section 5.2.8).
func (r *runner) sendAdvert(prio uint8) {
	a := r.m.Advert(prio)
	if a.Version == 2 && r.pol.AuthType != authNone {
		a.AuthType, a.Auth = r.pol.AuthType, r.pol.AuthPass
	}
	src := r.src.WithZone("")
	peers := 0
	if r.unicast {
		peers = len(r.ic.UnicastPeers) // the configuration's: a link-local peer keeps its zone
	}
	for k := range max(peers, 1) {
		dst := r.group
		if peers > 0 {
			dst = r.ic.UnicastPeers[k].Addr
		}
		mb := framePool.Get().(*[]byte) // not a buffer per runner: 1.5 MB at 1,000
		b, err := a.Append((*mb)[:0], src, dst.WithZone(""), ChecksumPseudo)
		if err != nil {
			framePool.Put(mb)
			r.logf(r.log.Error(), "encode advert: %v", err)
			return
		}
		mc, mcast := r.hub.conn.(*mcastConn)
		batched := mcast && r.batch != nil
		if batched {
			err = r.batch.add(mc, b, dst, r, prio)
		} else {
			if mcast {
				r.awaitBatch()
			}
			err = r.hub.conn.WriteAdvert(b, dst)
		}
		*mb = b
		framePool.Put(mb)
		if err != nil {
			r.logf(r.log.Warn(), "send advert to %s: %v", dst, err)
			continue
		}
		if batched {
			continue // counted once sent (batchDone)
		}
		r.mu.Lock()
		r.status.SentAdverts++
		if prio == 0 {
			r.status.PrioZeroSent++
		}
		r.mu.Unlock()
	}
}

// awaitBatch waits until the scheduler has sent r's adverts from its batch
// (batch.go), so that an advert sent now (a priority 0 on shutdown, a
// priority change) does not reach the wire before an older one: a backup
// hearing the older one last would wait a whole Master_Down_Interval
// instead of Skew_Time. The batch is sent within microseconds; the wait is
// bounded all the same, in case the scheduler is held up (a log write).
func (r *runner) awaitBatch() {
	if r.batched.Load() == 0 {
		return
	}
	for end := time.Now().Add(10 * time.Millisecond); r.batched.Load() > 0 && time.Now().Before(end); {
		runtime.Gosched()
	}
}

// announce sends the gratuitous ARPs / NAs that are due.
func (r *runner) announce(now time.Time) {
	send, next := r.garp.Due(now)
	r.garpAt = next
	if len(send) == 0 {
		return
	}
	for _, t := range send {
		if _, ok := r.ann[t.Dev]; ok {
			continue
		}
		ifi, err := r.d.sys.interfaceByName(t.Dev)
		if err != nil {
			r.logf(r.log.Warn(), "gratuitous ARP on %s: %v", t.Dev, err)
			continue
		}
		a, err := r.d.sys.announcer(ifi)
		if err != nil {
			r.logf(r.log.Warn(), "gratuitous ARP on %s: %v", t.Dev, err)
			continue
		}
		r.ann[t.Dev] = a
	}
	if err := announceAll(r.ann, send); err != nil {
		r.logf(r.log.Warn(), "gratuitous ARP: %v", err)
	}
}

// shutdown releases everything: a master sends priority 0 and removes its
// VIPs (RFC 5798 section 6.4.3), then sockets and the VMAC go.
func (r *runner) shutdown() {
	if r.m != nil {
		r.exec(r.m.Step(event{Kind: evShutdown}, time.Now()))
	}
	for dev, a := range r.ann {
		a.Close()
		delete(r.ann, dev)
	}
	if r.hub != nil {
		r.d.detach(r.hub, uint8(r.ic.VRID), r)
		r.hub = nil
	}
	if r.vmacIfi != nil {
		vc := vmacConfig{Name: r.ic.VMACName, Parent: r.ic.Interface, VRID: uint8(r.ic.VRID), IPv6: r.ic.Family == 6}
		if err := r.d.sys.vmacs.Delete(vc); err != nil {
			r.logf(r.log.Warn(), "remove %s: %v", r.vmacIfi.Name, err)
		}
	}
	r.logf(r.log.Info(), "Stopped")
}

// takeoverTimes are the instants of one timer-driven takeover.
type takeoverTimes struct {
	due   time.Time // the deadline of the timer that fired
	fired time.Time // when the runner woke up for it
	added time.Time // VIPs added
	garp  time.Time // first round of announcements written
}

// snapshot returns a copy of the runner's status.
func (r *runner) snapshot() runnerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
