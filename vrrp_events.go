package main

import (
	"fmt"
	"net/netip"
)

// eventKind says what happened to an instance; see event.
type eventKind uint8

const (
	_ eventKind = iota
	// evStartup starts the protocol (RFC 5798 section 6.4.1). It is also
	// how a stopped instance is started again.
	evStartup
	// evAdvert is a received advertisement that passed receive validation
	// (RFC 5798 section 7.1): Advert, Src and Flags are set.
	evAdvert
	// evTimer says the deadline returned by Deadline may have passed; the
	// instance compares it with now, so an early or spurious wake-up is
	// harmless.
	evTimer
	// evTrack carries the tracking summary: Weight is the sum of the
	// weights of the tracked objects' current results, Faults the number of
	// failed tracked objects with weight 0 (any puts the instance in FAULT).
	evTrack
	// evLinkDown and evLinkUp report the VRRP interface's carrier.
	evLinkDown
	evLinkUp
	// evForce is a command from outside the protocol, such as a sync group
	// moving its members together or an operator: State is MASTER, BACKUP
	// or FAULT and Detail says why (for the notify action and the log).
	// FAULT holds until a forced BACKUP (or MASTER) releases it.
	evForce
	// evShutdown stops the instance: a master sends priority 0 and releases
	// its addresses (RFC 5798 section 6.4.3, "Shutdown event").
	evShutdown
)

var eventKindNames = [...]string{"", "startup", "advert", "timer", "track", "link-down", "link-up", "force", "shutdown"}

func (k eventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// advertFlags are the findings of receive validation that do not drop an
// advertisement.
type advertFlags uint8

const (
	// advIntervalDiffers: the advertised interval is not ours. RFC 3768
	// section 7.1 discards such a version 2 advert (the machine does, if
	// validation let it through); version 3 accepts it and a backup adopts
	// the master's interval (RFC 5798 section 6.4.2).
	advIntervalDiffers advertFlags = 1 << iota
	// advAddrsDiffer: the address list is not ours. keepalived counts and
	// logs it and otherwise processes the advert; so does the machine (the
	// validator logs it).
	advAddrsDiffer
)

// event is one input to instance.Step. Only the fields of its Kind are
// read; it is a plain value so that Step allocates nothing.
type event struct {
	Kind eventKind

	// evAdvert: the validated advert, its IP source address and the
	// validation findings. The instance does not keep Advert.
	Advert *Advert
	Src    netip.Addr
	Flags  advertFlags

	// evTrack.
	Weight int
	Faults int

	// evForce.
	State  state
	Detail string
}

// actionKind says what the driver must do; see action.
type actionKind uint8

const (
	_ actionKind = iota
	// actSendAdvert: send one advertisement with Priority (the effective
	// priority, or 0 when leaving). instance.Advert builds it.
	actSendAdvert
	// actAddVIPs, actRemoveVIPs: add or remove Addrs on the interface.
	actAddVIPs
	actRemoveVIPs
	// actGARP: start a gratuitous ARP / unsolicited NA burst for Addrs
	// (RFC 5798 section 6.4.1 and 6.4.2). The GARP scheduler owns repeats,
	// delays and refresh.
	actGARP
	// actNotify: the instance changed state From -> To because of Reason
	// (Detail adds a forced event's text). The driver logs keepalived's
	// "(VI_1) Entering MASTER STATE" and runs notify scripts.
	actNotify
	// actLog: Log is worth a log line (keepalived's wording).
	actLog
	// actAdoptInterval: Master_Adver_Interval is now Interval centiseconds
	// (version 3 backups follow the master, RFC 5798 section 6.4.2; it
	// returns to the configured one on becoming master). For status only.
	actAdoptInterval
	// actWantMaster: a sync group member's Master_Down_Timer fired (Want)
	// or it follows a master again (!Want). The group forces MASTER on
	// all members once all want it.
	actWantMaster
)

var actionKindNames = [...]string{"", "send-advert", "add-vips", "remove-vips", "garp", "notify", "log", "adopt-interval", "want-master"}

func (k actionKind) String() string {
	if int(k) < len(actionKindNames) && k != 0 {
		return actionKindNames[k]
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// action is one output of instance.Step, to be executed in order.
type action struct {
	Kind actionKind

	// actSendAdvert.
	Priority uint8
	// actAddVIPs, actRemoveVIPs, actGARP. The slice is the configuration's:
	// the driver must not modify it.
	Addrs []netip.Addr
	// actNotify.
	From, To state
	Reason   transReason
	Detail   string
	// actLog.
	Log protoLog
	// actAdoptInterval, in centiseconds.
	Interval uint16
	// actWantMaster.
	Want bool
}

func (a action) String() string {
	switch a.Kind {
	case actSendAdvert:
		return fmt.Sprintf("send-advert prio=%d", a.Priority)
	case actAddVIPs, actRemoveVIPs, actGARP:
		return fmt.Sprintf("%s %v", a.Kind, a.Addrs)
	case actNotify:
		s := fmt.Sprintf("notify %s->%s (%s)", a.From, a.To, a.Reason)
		if a.Detail != "" {
			s += " " + a.Detail
		}
		return s
	case actLog:
		return "log " + a.Log.String()
	case actAdoptInterval:
		return fmt.Sprintf("adopt-interval %dcs", a.Interval)
	case actWantMaster:
		return fmt.Sprintf("want-master %v", a.Want)
	}
	return a.Kind.String()
}

// transReason says why an instance changed state.
type transReason uint8

const (
	_                transReason = iota
	reasonStartup                // startup or restart into BACKUP
	reasonOwner                  // priority 255 takes over at once (RFC 5798 section 6.4.1)
	reasonMasterDown             // Master_Down_Timer fired (RFC 5798 section 6.4.2)
	reasonPriority               // a higher priority master, or equal from a higher address (section 6.4.3)
	reasonLinkDown               // the interface went down
	reasonLinkUp                 // the interface came back
	reasonTrackFault             // a weight-0 tracked object failed
	reasonTrackOK                // all weight-0 tracked objects recovered
	reasonForced                 // an evForce command (sync group, operator)
	reasonShutdown               // evShutdown
	reasonReconfig               // a reload changed the configuration
)

var reasonNames = [...]string{"", "startup", "address owner", "master down", "higher priority master", "interface down", "interface up", "tracked object failed", "tracked objects recovered", "forced", "shutdown", "reconfigured"}

func (r transReason) String() string {
	if int(r) < len(reasonNames) && r != 0 {
		return reasonNames[r]
	}
	return fmt.Sprintf("transReason(%d)", uint8(r))
}

// protoLogKind names a log-worthy protocol event.
type protoLogKind uint8

const (
	_                       protoLogKind = iota
	plMasterHigherPrio                   // Src, Prio, Ours
	plMasterEqualHigherAddr              // Src, Prio
	plMasterLowerPrio                    // Src, Prio, Ours, Reassert
	plSplitBrain                         // Src, Prio, Ours: another master that we outrank
	plSplitBrainResolved                 // Src: the other master fell silent
	plMasterPrioZero                     // Src
	plBackupPrioZero                     // Src
	plBackupLowerPrio                    // Src, Prio: discarded, we will preempt
	plIntervalUpdated                    // From, To (centiseconds)
	plOwnAddress                         // Src: equal priority from our own address
	plOwnerConflict                      // Src: another address owner
	plPreemptDelayStart                  // Delay (seconds in To)
	plPreemptDelayStop
	plSentPrioZero
)

// protoLog is a log-worthy event. Its String is keepalived's wording
// without the "(VI_1) " prefix, which the driver adds.
type protoLog struct {
	Kind     protoLogKind
	Src      netip.Addr
	Prio     uint8
	Ours     uint8
	Reassert bool
	From, To uint16
}

func (l protoLog) String() string {
	switch l.Kind {
	case plMasterHigherPrio:
		return fmt.Sprintf("Master received advert from %s with higher priority %d, ours %d", l.Src, l.Prio, l.Ours)
	case plMasterEqualHigherAddr:
		return fmt.Sprintf("Master received advert from %s with same priority %d but higher IP address than ours", l.Src, l.Prio)
	case plMasterLowerPrio:
		s := fmt.Sprintf("Received advert from %s with lower priority %d, ours %d", l.Src, l.Prio, l.Ours)
		if l.Reassert {
			s += ", forcing new election"
		}
		return s
	case plSplitBrain:
		return fmt.Sprintf("split brain: another master %s at priority %d, ours %d", l.Src, l.Prio, l.Ours)
	case plSplitBrainResolved:
		return fmt.Sprintf("split brain resolved: %s no longer advertises", l.Src)
	case plMasterPrioZero:
		return "Master received priority 0 message"
	case plBackupPrioZero:
		return "Backup received priority 0 advertisement"
	case plBackupLowerPrio:
		return fmt.Sprintf("received lower priority (%d) advert from %s - discarding", l.Prio, l.Src)
	case plIntervalUpdated:
		return fmt.Sprintf("advertisement interval updated to %d milli-sec from %d milli-sec", int(l.To)*10, int(l.From)*10)
	case plOwnAddress:
		return "WARNING - equal priority advert received from remote host with our IP address."
	case plOwnerConflict:
		return fmt.Sprintf("CONFIGURATION ERROR: local instance and a remote instance (%s) are both configured as address owner, please fix - reducing local priority", l.Src)
	case plPreemptDelayStart:
		return fmt.Sprintf("start preempt delay(%d)", l.To)
	case plPreemptDelayStop:
		return "stop preempt delay"
	case plSentPrioZero:
		return "sent 0 priority"
	}
	return fmt.Sprintf("log(%d)", uint8(l.Kind))
}
