package main

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// state is a VRRP instance's protocol state (RFC 5798 section 6.4, RFC 3768
// section 6.4), plus keepalived's FAULT and STOP.
//
//	                     Startup, owner (255)
//	          +-------------------------------------------+
//	          |                                           v
//	      +------+  Startup   +--------+  Master_Down   +--------+
//	      | INIT |----------->| BACKUP |--------------->| MASTER |
//	      +------+            +--------+  Timer fires,  +--------+
//	          |                 ^    |    forced MASTER   |    |
//	          |                 |    +<-------------------+    |
//	          |                 |    |  higher priority, or    |
//	          |    link up,     |    |  equal from a higher    |
//	          |    tracking OK, |    |  address; forced BACKUP |
//	          |    unforced     |    |                         |
//	          |                 |    v  link down, weight-0    |
//	          |  Startup      +-------+ tracked failure,       |
//	          +-------------->| FAULT |<-----------------------+
//	             while faulted +-------+ forced FAULT (a master
//	                                     sends priority 0 first)
//
//	An owner leaves FAULT straight to MASTER. Any state goes to STOP on
//	Shutdown (a master sends priority 0 and releases its addresses);
//	Startup restarts a stopped instance as from INIT. Every other
//	(state, event) pair leaves the state unchanged.
type state uint8

const (
	stateInit state = iota
	stateBackup
	stateMaster
	stateFault
	stateStop
)

var stateNames = [...]string{"INIT", "BACKUP", "MASTER", "FAULT", "STOP"}

// String is keepalived's state name, as in "(VI_1) Entering MASTER STATE".
func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("STATE(%d)", uint8(s))
}

// instanceConfig is what the state machine needs of a vrrp_instance. Its
// zero values are keepalived's defaults where one exists (preempt on, 3
// adverts to Master_Down_Interval, re-assert on lower priority adverts);
// check fills the rest.
//

type instanceConfig struct {
	Name    string // the instance name, as in "(VI_1) ..." log lines
	VRID    uint8  // 1..255
	Version uint8  // 2 (RFC 3768) or 3 (RFC 5798)
	IPv6    bool   // address family of the instance (version 3 only)
	// Priority is the configured priority, 1..255; 255 is the address owner.
	Priority uint8
	// Interval is Advertisement_Interval in centiseconds; 0 means 100.
	// Version 2 needs whole seconds (a multiple of 100, 100..25500),
	// version 3 1..4095.
	Interval uint16
	// NoPreempt is keepalived's nopreempt: a higher priority backup does
	// not take over from a lower priority master (Preempt_Mode false,
	// RFC 5798 section 6.1). The address owner always preempts.
	NoPreempt bool
	// PreemptDelay is keepalived's preempt_delay: after first hearing a
	// lower priority master, a backup waits this long before it preempts.
	PreemptDelay time.Duration
	// Primary is our primary address on the interface: the advert's source
	// and the tie-break between equal priorities (RFC 5798 section 6.4.3).
	Primary netip.Addr
	// VIPs are the virtual addresses, all of the instance's family.
	VIPs []netip.Addr
	// InitialMaster is keepalived's "state MASTER", kept for status and
	// reload. It does not change the protocol: keepalived's vrrp_init_state
	// starts a non-owner in BACKUP with a full Master_Down_Interval like
	// any backup, and an owner (priority 255) becomes MASTER at Startup
	// whatever its state. (The config parser uses state MASTER for the
	// default priority: 255 when priority is not given.)
	InitialMaster bool
	// SyncGroup makes the instance a vrrp_sync_group member: when its
	// Master_Down_Timer fires it does not take over by itself but emits
	// actWantMaster and stays BACKUP; the group moves all members to
	// MASTER together with evForce once every member wants it (keepalived's
	// vrrp_sync_can_goto_master). An owner still starts as MASTER.
	SyncGroup bool
	// DownAdverts is keepalived's down_timer_adverts, the multiplier of
	// Master_Adver_Interval in Master_Down_Interval; 0 means 3.
	DownAdverts int
	// LowerPrioNoAdvert keeps a master silent when it hears a lower
	// priority advert, as RFC 5798 section 6.4.3 says ("discard the
	// ADVERTISEMENT"). By default a master re-asserts with an immediate
	// advert, as keepalived does, which ends a split brain within one
	// round trip instead of one Master_Down_Interval.
	LowerPrioNoAdvert bool
	// HigherPrioSendAdvert is keepalived's higher_prio_send_advert: a
	// master hearing a higher priority sends one last advert before it
	// becomes backup.
	HigherPrioSendAdvert bool
	// GARPOnLowerPrio asks for a gratuitous ARP / NA burst when a master
	// hears a lower priority master (keepalived's garp_lower_prio_repeat),
	// so clients that followed the other master come back.
	GARPOnLowerPrio bool
}

// check validates c and fills its defaults. Its errors say which field is
// wrong; the config parser adds file:line.
func (c *instanceConfig) check() error {
	if c.VRID == 0 {
		return errors.New("virtual_router_id must be 1..255")
	}
	switch c.Version {
	case 2:
		if c.IPv6 {
			return errors.New("vrrp version 2 has no IPv6 (RFC 3768); use version 3")
		}
	case 3:
	default:
		return fmt.Errorf("vrrp version %d is not 2 or 3", c.Version)
	}
	if c.Priority == 0 {
		return errors.New("priority must be 1..255")
	}
	if c.Interval == 0 {
		c.Interval = defaultAdverIntervalCS
	}
	if c.Version == 2 {
		if c.Interval%100 != 0 || c.Interval < minIntervalV2CS || c.Interval > maxIntervalV2CS {
			return fmt.Errorf("advert_int %d.%02d s: version 2 needs whole seconds 1..255", c.Interval/100, c.Interval%100)
		}
	} else if c.Interval < minIntervalV3CS || c.Interval > maxIntervalV3CS {
		return fmt.Errorf("advert_int %d.%02d s: version 3 needs 0.01..40.95 s", c.Interval/100, c.Interval%100)
	}
	if c.DownAdverts == 0 {
		c.DownAdverts = defaultDownAdverts
	}
	if c.DownAdverts < 1 || c.DownAdverts > maxDownAdverts {
		return fmt.Errorf("down_timer_adverts %d is not 1..%d", c.DownAdverts, maxDownAdverts)
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > maxPreemptDelay {
		return fmt.Errorf("preempt_delay %v is not 0..%v", c.PreemptDelay, maxPreemptDelay)
	}
	if !c.Primary.IsValid() {
		return errors.New("no primary address: the instance needs a source address on its interface")
	}
	if c.Primary.Is6() != c.IPv6 || c.Primary.Is4In6() {
		return fmt.Errorf("primary address %s is not of the instance's family", c.Primary)
	}
	for _, a := range c.VIPs {
		if !a.IsValid() || a.Is6() != c.IPv6 || a.Is4In6() {
			return fmt.Errorf("virtual address %s is not of the instance's family", a)
		}
	}
	if len(c.VIPs) > 255 {
		return fmt.Errorf("%d virtual addresses: an advert carries at most 255", len(c.VIPs))
	}
	return nil
}

// instance is one VRRP virtual router's protocol state machine (RFC 5798
// section 6.4). It is pure: inputs arrive through Step with the current
// time, outputs are returned as actions, and Deadline says when Step wants
// an evTimer. It has no sockets, goroutines, locks or clock; one driver
// goroutine owns it, along these lines:
//
//	i, err := newInstance(cfg)
//	acts := i.Step(event{Kind: evStartup}, clock.Now())
//	for {
//		execute(acts) // in order: send, add/remove VIPs, GARP, notify, log
//		arm(timer, i.Deadline()) // stopped when Deadline is zero
//		select {
//		case rx := <-adverts: // validated by the codec
//			acts = i.Step(event{Kind: evAdvert, Advert: &rx.advert, Src: rx.src}, clock.Now())
//		case <-timer.C:
//			acts = i.Step(event{Kind: evTimer}, clock.Now())
//		case t := <-tracking: // weights and weight-0 failures
//			acts = i.Step(event{Kind: evTrack, Weight: t.weight, Faults: t.faults}, clock.Now())
//		...
//		}
//	}
type instance struct {
	// What a step touches for every advert comes first, then the
	// configuration: at 1,000 instances each further cache line an
	// advert reads is a visible cost (bench/scale.sh). Field order only.
	st            state
	prio          uint8  // effective priority
	masterPrio    uint8  // the master's priority (BACKUP)
	masterAdverCS uint16 // Master_Adver_Interval, centiseconds
	linkDown      bool   // interface down
	forcedFault   bool   // evForce FAULT not yet released
	ownerConflict bool   // another owner seen: we act as 254
	wantMaster    bool   // a sync group member whose Master_Down_Timer fired

	downTimer  time.Time  // Master_Down_Timer (BACKUP)
	adverTimer time.Time  // Adver_Timer (MASTER)
	acts       []action   // reused by Step
	master     netip.Addr // the master we follow (BACKUP) or ourselves

	// A master that outranks another master (split brain) remembers it
	// until it has been silent for a Master_Down_Interval of its own.
	rival     netip.Addr
	rivalSeen time.Time
	rivalCS   uint16

	cfg instanceConfig

	weight      int       // sum of tracking weights (evTrack)
	trackFaults int       // failed weight-0 tracked objects
	preemptAt   time.Time // end of preempt_delay; zero: not started

	// masterSince is when the instance last became master; preempted is
	// the lower priority master it heard as a backup, whose last advert
	// right after a preemption is a hand-over, not a split brain.
	masterSince time.Time
	preempted   netip.Addr
	preemptedAt time.Time // when we last heard it as a backup
}

// newInstance returns an instance in INIT for c. It starts on evStartup.
func newInstance(c instanceConfig) (*instance, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	i := &instance{cfg: c, masterAdverCS: c.Interval}
	i.prio = i.effective()
	return i, nil
}

// State is the current state.
func (i *instance) State() state { return i.st }

// Priority is the effective priority (configured plus tracking weights).
func (i *instance) Priority() uint8 { return i.prio }

// Master is the address and priority of the current master as this
// instance knows it: its own primary when MASTER, the last accepted
// advert's source when BACKUP, invalid when unknown.
func (i *instance) Master() (netip.Addr, uint8) { return i.master, i.masterPrio }

// MasterAdverInterval is Master_Adver_Interval in centiseconds.
func (i *instance) MasterAdverInterval() uint16 { return i.masterAdverCS }

// WantsMaster says a sync group member in BACKUP would take over if its
// group let it (see instanceConfig.SyncGroup).
func (i *instance) WantsMaster() bool { return i.wantMaster }

// Config is the configuration in use.
func (i *instance) Config() instanceConfig { return i.cfg }

// Deadline is when the instance next wants an evTimer: Adver_Timer as
// MASTER, Master_Down_Timer as BACKUP, the zero time otherwise. The driver
// arms one timer for it after every Step.
func (i *instance) Deadline() time.Time {
	switch i.st {
	case stateBackup:
		return i.downTimer
	case stateMaster:
		return i.adverTimer
	}
	return time.Time{}
}

// Advert builds the advertisement a send action asks for: our VRID,
// priority prio, configured interval and VIPs. The driver adds
// authentication (version 2) and the codec the checksum.
func (i *instance) Advert(prio uint8) Advert {
	return Advert{
		Version:   i.cfg.Version,
		Type:      1,
		VRID:      i.cfg.VRID,
		Priority:  prio,
		Count:     uint8(len(i.cfg.VIPs)),
		Interval:  i.cfg.Interval,
		Addresses: i.cfg.VIPs,
	}
}

// Step feeds one event at time now and returns the actions to execute, in
// order. The returned slice is reused by the next Step: the driver drains
// it first. Events that do not apply to the current state (an advert in
// FAULT, a timer before the deadline, an unknown kind) return nothing.
func (i *instance) Step(ev event, now time.Time) []action {
	i.acts = i.acts[:0]
	switch ev.Kind {
	case evStartup:
		i.startup(now)
	case evShutdown:
		i.shutdown()
	case evTrack:
		i.trackFaults = ev.Faults
		if i.faulted() {
			i.weight = ev.Weight
			i.prio = i.effective()
			i.reconcile(now, reasonTrackFault, "")
			break
		}
		i.setWeight(ev.Weight, now)
		i.reconcile(now, reasonTrackOK, "")
	case evLinkDown:
		i.linkDown = true
		i.reconcile(now, reasonLinkDown, "")
	case evLinkUp:
		i.linkDown = false
		i.reconcile(now, reasonLinkUp, "")
	case evForce:
		i.force(ev, now)
	case evAdvert:
		if ev.Advert == nil {
			break
		}
		switch i.st {
		case stateBackup:
			i.backupAdvert(ev, now)
		case stateMaster:
			i.masterAdvert(ev, now)
		}
		// INIT, FAULT and STOP ignore adverts (RFC 5798 section 6.4.1:
		// only Startup leaves Initialize).
	case evTimer:
		switch i.st {
		case stateBackup:
			i.backupTimer(now)
		case stateMaster:
			i.masterTimer(now)
		}
	}
	return i.acts
}

// Reconfigure applies a reloaded configuration in place, keeping the state,
// timers and VIPs that did not change. The name, VRID, version and family
// identify an instance: changing them needs a new instance, and is an
// error here.
func (i *instance) Reconfigure(c instanceConfig, now time.Time) ([]action, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	o := i.cfg
	if c.Name != o.Name || c.VRID != o.VRID || c.Version != o.Version || c.IPv6 != o.IPv6 {
		return nil, fmt.Errorf("instance %s: name, virtual_router_id, version or family changed: it needs a new instance", o.Name)
	}
	i.acts = i.acts[:0]
	i.cfg = c
	if i.st == stateMaster {
		if gone := vrAddrsMinus(o.VIPs, c.VIPs); len(gone) > 0 {
			i.emit(action{Kind: actRemoveVIPs, Addrs: gone})
		}
		if added := vrAddrsMinus(c.VIPs, o.VIPs); len(added) > 0 {
			i.emit(action{Kind: actAddVIPs, Addrs: added})
			i.emit(action{Kind: actGARP, Addrs: added})
		}
	}
	if c.Interval != o.Interval {
		switch i.st {
		case stateMaster:
			i.masterAdverCS = c.Interval
			if next := now.Add(csDuration(c.Interval)); next.Before(i.adverTimer) {
				i.adverTimer = next
			}
		case stateBackup:
			if c.Version == 2 || i.masterAdverCS == o.Interval {
				i.masterAdverCS = c.Interval
			}
		default:
			i.masterAdverCS = c.Interval
		}
	}
	if c.PreemptDelay == 0 {
		i.preemptAt = time.Time{}
	}
	if c.Priority != o.Priority {
		i.ownerConflict = false
	}
	before := i.prio
	i.setWeight(i.weight, now)
	if i.st == stateMaster && i.prio == before && !vrAddrsEqual(o.VIPs, c.VIPs) {
		// The backups compare our address list with theirs.
		i.sendAdvert(i.prio, now)
	}
	return i.acts, nil
}

// effective is the effective priority from configuration and tracking.
func (i *instance) effective() uint8 {
	p := effectivePriority(i.cfg.Priority, i.weight)
	if i.ownerConflict && p == prioOwner {
		p = prioOwner - 1
	}
	return p
}

func (i *instance) owner() bool { return i.prio == prioOwner }

func (i *instance) faulted() bool { return i.linkDown || i.trackFaults > 0 || i.forcedFault }

func (i *instance) emit(a action) { i.acts = append(i.acts, a) }

func (i *instance) log(l protoLog) { i.emit(action{Kind: actLog, Log: l}) }

func (i *instance) transition(to state, r transReason, detail string) {
	from := i.st
	i.st = to
	i.wantMaster = false
	i.emit(action{Kind: actNotify, From: from, To: to, Reason: r, Detail: detail})
}

func (i *instance) sendAdvert(prio uint8, now time.Time) {
	i.emit(action{Kind: actSendAdvert, Priority: prio})
	if prio != prioStop {
		i.adverTimer = now.Add(csDuration(i.cfg.Interval))
	}
}

// setWeight recomputes the effective priority; a master advertises a
// change at once so backups can preempt without waiting (keepalived).
func (i *instance) setWeight(w int, now time.Time) {
	i.weight = w
	p := i.effective()
	if p == i.prio {
		return
	}
	i.prio = p
	if i.st == stateMaster {
		i.masterPrio = p
		i.sendAdvert(p, now)
	}
}

// downInterval is Master_Down_Interval for the current
// Master_Adver_Interval and effective priority (RFC 5798 section 6.1).
func (i *instance) downInterval() time.Duration {
	return masterDownInterval(i.cfg.Version, i.prio, i.masterAdverCS, i.cfg.DownAdverts)
}

// startup is RFC 5798 section 6.4.1's Startup event.
func (i *instance) startup(now time.Time) {
	if i.st != stateInit && i.st != stateStop {
		return
	}
	i.masterAdverCS = i.cfg.Interval
	i.preemptAt = time.Time{}
	switch {
	case i.faulted():
		r := reasonLinkDown
		switch {
		case i.forcedFault:
			r = reasonForced
		case i.trackFaults > 0:
			r = reasonTrackFault
		}
		i.transition(stateFault, r, "")
	case i.owner():
		i.becomeMaster(now, reasonOwner, "")
	default:
		i.becomeBackup(now, reasonStartup, "", i.downInterval())
	}
}

// shutdown is RFC 5798 section 6.4.3's Shutdown event (and 6.4.2's for a
// backup, which only stops its timer).
func (i *instance) shutdown() {
	switch i.st {
	case stateStop:
		return
	case stateMaster:
		i.emit(action{Kind: actSendAdvert, Priority: prioStop})
		i.log(protoLog{Kind: plSentPrioZero})
		i.emit(action{Kind: actRemoveVIPs, Addrs: i.cfg.VIPs})
	}
	i.master, i.masterPrio = netip.Addr{}, 0
	i.rival = netip.Addr{}
	i.transition(stateStop, reasonShutdown, "")
}

// reconcile moves into or out of FAULT after a fault input changed.
func (i *instance) reconcile(now time.Time, r transReason, detail string) {
	switch {
	case i.st == stateInit || i.st == stateStop:
		// Startup looks at the fault inputs.
	case i.faulted() && i.st != stateFault:
		if i.st == stateMaster {
			if !i.linkDown {
				// keepalived: tell the backups to take over now rather
				// than after Master_Down_Interval.
				i.emit(action{Kind: actSendAdvert, Priority: prioStop})
			}
			i.emit(action{Kind: actRemoveVIPs, Addrs: i.cfg.VIPs})
		}
		i.master, i.masterPrio = netip.Addr{}, 0
		i.rival = netip.Addr{}
		i.transition(stateFault, r, detail)
	case !i.faulted() && i.st == stateFault:
		i.masterAdverCS = i.cfg.Interval
		i.preemptAt = time.Time{}
		if i.owner() {
			i.becomeMaster(now, reasonOwner, detail)
			return
		}
		i.becomeBackup(now, r, detail, i.downInterval())
	}
}

// force applies an evForce command (sync groups, operators).
func (i *instance) force(ev event, now time.Time) {
	switch ev.State {
	case stateFault:
		i.forcedFault = true
		i.reconcile(now, reasonForced, ev.Detail)
	case stateBackup:
		i.forcedFault = false
		switch i.st {
		case stateMaster:
			i.becomeBackup(now, reasonForced, ev.Detail, i.downInterval())
		case stateFault:
			if !i.faulted() {
				i.masterAdverCS = i.cfg.Interval
				i.becomeBackup(now, reasonForced, ev.Detail, i.downInterval())
			}
		}
	case stateMaster:
		// A group moves a backup member to MASTER with the others; a
		// faulted member stays in FAULT.
		if i.st == stateBackup {
			i.becomeMaster(now, reasonForced, ev.Detail)
		}
	}
}

// becomeMaster is RFC 5798 section 6.4.1/6.4.2's transition to Master:
// take the addresses, send an advert, broadcast gratuitous ARP / NA, arm
// Adver_Timer.
func (i *instance) becomeMaster(now time.Time, r transReason, detail string) {
	if i.masterAdverCS != i.cfg.Interval {
		i.log(protoLog{Kind: plIntervalUpdated, From: i.masterAdverCS, To: i.cfg.Interval})
		i.masterAdverCS = i.cfg.Interval
		i.emit(action{Kind: actAdoptInterval, Interval: i.masterAdverCS})
	}
	i.emit(action{Kind: actAddVIPs, Addrs: i.cfg.VIPs})
	i.sendAdvert(i.prio, now)
	i.emit(action{Kind: actGARP, Addrs: i.cfg.VIPs})
	i.master, i.masterPrio = i.cfg.Primary, i.prio
	i.rival = netip.Addr{}
	i.preemptAt = time.Time{}
	i.masterSince = now
	i.transition(stateMaster, r, detail)
}

// becomeBackup enters BACKUP with Master_Down_Timer set to down from now.
// A master releases its addresses first.
func (i *instance) becomeBackup(now time.Time, r transReason, detail string, down time.Duration) {
	if i.st == stateMaster {
		i.emit(action{Kind: actRemoveVIPs, Addrs: i.cfg.VIPs})
		i.master, i.masterPrio = netip.Addr{}, 0
	}
	i.rival = netip.Addr{}
	i.downTimer = now.Add(down)
	i.transition(stateBackup, r, detail)
}

// backupTimer: Master_Down_Timer fired (RFC 5798 section 6.4.2).
func (i *instance) backupTimer(now time.Time) {
	if now.Before(i.downTimer) {
		return
	}
	if i.cfg.SyncGroup {
		// The group decides. Keep a deadline so the instance is
		// re-evaluated, but say so only once.
		i.downTimer = now.Add(i.downInterval())
		if !i.wantMaster {
			i.wantMaster = true
			i.emit(action{Kind: actWantMaster, Want: true})
		}
		return
	}
	i.becomeMaster(now, reasonMasterDown, "")
}

// masterTimer: Adver_Timer fired (RFC 5798 section 6.4.3).
func (i *instance) masterTimer(now time.Time) {
	if now.Before(i.adverTimer) {
		return
	}
	i.sendAdvert(i.prio, now)
	if i.rival.IsValid() {
		cs := i.rivalCS
		if cs == 0 {
			cs = i.cfg.Interval
		}
		if now.Sub(i.rivalSeen) > time.Duration(i.cfg.DownAdverts)*csDuration(cs) {
			// The other master gave up: clients that followed it must
			// learn our MAC again (keepalived never re-ARPs here).
			i.log(protoLog{Kind: plSplitBrainResolved, Src: i.rival})
			i.emit(action{Kind: actGARP, Addrs: i.cfg.VIPs})
			i.rival = netip.Addr{}
		}
	}
}

// backupAdvert is RFC 5798 section 6.4.2's "If an ADVERTISEMENT is
// received" for a backup, with keepalived's preempt_delay.
func (i *instance) backupAdvert(ev event, now time.Time) {
	a := ev.Advert
	if ev.Src == i.cfg.Primary {
		// Our own advert looped back, or a duplicate address.
		i.log(protoLog{Kind: plOwnAddress, Src: ev.Src})
		return
	}
	if i.cfg.Version == 2 && (a.Interval != i.cfg.Interval || ev.Flags&advIntervalDiffers != 0) {
		// RFC 3768 section 7.1: validation discards these; never follow
		// a master whose timers we do not share.
		return
	}
	if a.Priority == prioStop {
		// The master is leaving: take over after Skew_Time only.
		i.log(protoLog{Kind: plBackupPrioZero, Src: ev.Src})
		i.master, i.masterPrio = netip.Addr{}, 0
		i.downTimer = now.Add(skewTime(i.cfg.Version, i.prio, i.masterAdverCS))
		return
	}
	higherOrEqual := a.Priority >= i.prio
	if d := i.cfg.PreemptDelay; d > 0 {
		switch {
		case higherOrEqual:
			if !i.preemptAt.IsZero() {
				i.log(protoLog{Kind: plPreemptDelayStop})
				i.preemptAt = time.Time{}
			}
		case i.preemptAt.IsZero():
			i.preemptAt = now.Add(d)
			i.log(protoLog{Kind: plPreemptDelayStart, To: uint16(d / time.Second)})
		}
	}
	delaying := i.cfg.PreemptDelay > 0 && now.Before(i.preemptAt)
	if !higherOrEqual && !(i.cfg.NoPreempt && !i.owner()) && !delaying {
		// A lower priority master: let Master_Down_Timer run out and
		// preempt it.
		i.log(protoLog{Kind: plBackupLowerPrio, Src: ev.Src, Prio: a.Priority})
		i.preempted, i.preemptedAt = ev.Src, now
		return
	}
	if i.cfg.Version == 3 && a.Interval != 0 && a.Interval != i.masterAdverCS {
		i.log(protoLog{Kind: plIntervalUpdated, From: i.masterAdverCS, To: a.Interval})
		i.masterAdverCS = a.Interval
		i.emit(action{Kind: actAdoptInterval, Interval: a.Interval})
	}
	i.master, i.masterPrio = ev.Src, a.Priority
	i.downTimer = now.Add(i.downInterval())
	if i.wantMaster {
		// A master we follow is back: tell the group.
		i.wantMaster = false
		i.emit(action{Kind: actWantMaster, Want: false})
	}
}

// masterAdvert is RFC 5798 section 6.4.3's "If an ADVERTISEMENT is
// received" for a master, with keepalived's re-assertion.
func (i *instance) masterAdvert(ev event, now time.Time) {
	a := ev.Advert
	if a.Priority == prioStop {
		// A backup (or a stopping peer) asks who is master: answer now.
		i.log(protoLog{Kind: plMasterPrioZero, Src: ev.Src})
		i.sendAdvert(i.prio, now)
		return
	}
	cmp := ev.Src.Compare(i.cfg.Primary)
	if a.Priority == i.prio && cmp == 0 {
		i.log(protoLog{Kind: plOwnAddress, Src: ev.Src})
		return
	}
	if a.Priority == prioOwner && i.prio == prioOwner {
		// Two address owners: keepalived steps down to 254, so the first
		// to hear the other yields and the flapping stops.
		i.log(protoLog{Kind: plOwnerConflict, Src: ev.Src})
		i.ownerConflict = true
		i.prio = i.effective()
		i.masterPrio = i.prio
	}
	if a.Priority > i.prio || (a.Priority == i.prio && cmp > 0) {
		// keepalived's higher_prio_send_advert, on by default here: one
		// last advert, so that a master that never heard us (a split
		// brain healing, however short) learns of it and re-announces the
		// addresses to clients that followed us; after a preemption the
		// new master takes it for a hand-over. RFC-strict instances
		// (lower_prio_no_advert) stay silent (RFC 5798 section 6.4.3).
		if i.cfg.HigherPrioSendAdvert || !i.cfg.LowerPrioNoAdvert {
			i.emit(action{Kind: actSendAdvert, Priority: i.prio})
		}
		if a.Priority > i.prio {
			i.log(protoLog{Kind: plMasterHigherPrio, Src: ev.Src, Prio: a.Priority, Ours: i.prio})
		} else {
			i.log(protoLog{Kind: plMasterEqualHigherAddr, Src: ev.Src, Prio: a.Priority})
		}
		if i.cfg.Version == 3 && a.Interval != 0 && a.Interval != i.masterAdverCS {
			i.log(protoLog{Kind: plIntervalUpdated, From: i.masterAdverCS, To: a.Interval})
			i.masterAdverCS = a.Interval
			i.emit(action{Kind: actAdoptInterval, Interval: a.Interval})
		}
		i.becomeBackup(now, reasonPriority, "", i.downInterval())
		i.master, i.masterPrio = ev.Src, a.Priority
		return
	}
	// Another master that we outrank: a split brain (RFC 5798 section
	// 6.4.3 discards the advert; keepalived re-asserts at once so the
	// other side hears us and steps down).
	reassert := !i.cfg.LowerPrioNoAdvert
	i.log(protoLog{Kind: plMasterLowerPrio, Src: ev.Src, Prio: a.Priority, Ours: i.prio, Reassert: reassert})
	if ev.Src == i.preempted && now.Sub(i.masterSince) < i.downInterval() && i.masterSince.Sub(i.preemptedAt) < i.downInterval() {
		// The master we just preempted, saying its last advert: a
		// hand-over, not a split brain.
		if reassert {
			i.emit(action{Kind: actSendAdvert, Priority: i.prio})
		}
		return
	}
	if i.rival != ev.Src {
		i.log(protoLog{Kind: plSplitBrain, Src: ev.Src, Prio: a.Priority, Ours: i.prio})
	}
	i.rival, i.rivalSeen, i.rivalCS = ev.Src, now, a.Interval
	if reassert {
		i.emit(action{Kind: actSendAdvert, Priority: i.prio})
	}
	if i.cfg.GARPOnLowerPrio {
		i.emit(action{Kind: actGARP, Addrs: i.cfg.VIPs})
	}
}

// vrAddrsMinus is the addresses of a not in b.
func vrAddrsMinus(a, b []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, x := range a {
		found := false
		for _, y := range b {
			if x == y {
				found = true
				break
			}
		}
		if !found {
			out = append(out, x)
		}
	}
	return out
}

func vrAddrsEqual(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}
