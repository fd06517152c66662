package main

// syncgroup.go is vrrp_sync_group: instances that must change state
// together, such as the outside and inside addresses of a router. The
// rules are keepalived 2.2.7's (vrrp_sync.c):
//   - a member that fails (a weight-0 tracked object, a tracked object of
//     the group, its interface) puts the whole group in FAULT
//     (vrrp_sync_fault: "Syncing instances to FAULT state"); the group
//     leaves FAULT for BACKUP only when no member has a fault left;
//   - a member whose Master_Down_Timer fires does not take over alone: the
//     state machine (instanceConfig.SyncGroup) reports that it wants to,
//     and the group moves every member to MASTER once all of them are
//     ready (vrrp_sync_can_goto_master); a member that becomes MASTER by
//     itself (an address owner) takes the others with it
//     (vrrp_sync_master);
//   - a master member that goes back to BACKUP (a higher priority master
//     appeared) takes the other masters with it (vrrp_sync_backup);
//   - the group has its own notify scripts, called when the group's state
//     changes, as `SCRIPT GROUP NAME STATE 0`.
// The members are moved with evForce, so the state machine stays the only
// place that changes an instance's state.

import (
	"sync"

	"github.com/rs/zerolog"
)

// workQueue is an unbounded FIFO served by one goroutine: producers on
// runner goroutines never block, and work runs in the order it was queued.
type workQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []func()
	closed bool
	done   chan struct{}
}

func newWorkQueue() *workQueue {
	q := &workQueue{done: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.serve()
	return q
}

func (q *workQueue) push(fn func()) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, fn)
		q.cond.Signal()
	}
	q.mu.Unlock()
}

func (q *workQueue) serve() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.items) == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.items) == 0 {
			q.mu.Unlock()
			return
		}
		fn := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		fn()
	}
}

// close stops taking work; the queued work still runs. The channel is
// closed when it has.
func (q *workQueue) close() <-chan struct{} {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	return q.done
}

// syncGroup is the run-time state of one vrrp_sync_group.
type syncGroup struct {
	def     *SyncGroup
	state   state
	members map[string]state
	faulty  map[string]bool
	wants   map[string]bool // BACKUP members whose Master_Down_Timer fired
}

// syncGroups moves the members of every sync group together.
type syncGroups struct {
	log    zerolog.Logger
	send   func(instance string, ev event)
	notify func(g *SyncGroup, st state) // group notifies; may be nil
	q      *workQueue

	mu       sync.Mutex
	byMember map[string]*syncGroup // the map is fixed; its groups are guarded by mu
	out      []syncSend            // commands decided under mu, sent after it (flush)
}

type syncSend struct {
	instance string
	ev       event
}

// queueSend records a command for a member; flush sends it once mu is
// released. A send blocks while the member's queue is full, and a member
// setting up takes mu (initial): sending under mu could wait for ever on
// a member that waits for mu.
func (s *syncGroups) queueSend(instance string, ev event) {
	s.out = append(s.out, syncSend{instance, ev})
}

// flush sends the queued commands, in order, without mu.
func (s *syncGroups) flush() {
	s.mu.Lock()
	out := s.out
	s.out = nil
	s.mu.Unlock()
	for _, c := range out {
		s.send(c.instance, c.ev)
	}
}

// newSyncGroups builds the groups of cfg; faulty gives each member's
// fault status at start.
func newSyncGroups(log zerolog.Logger, cfg *Config, faulty func(string) bool, send func(string, event), notify func(*SyncGroup, state)) *syncGroups {
	s := &syncGroups{log: log, send: send, notify: notify, byMember: map[string]*syncGroup{}}
	for _, g := range cfg.SyncGroups {
		sg := &syncGroup{def: g, members: map[string]state{}, faulty: map[string]bool{}, wants: map[string]bool{}}
		for _, m := range g.Members {
			sg.members[m] = stateInit
			sg.faulty[m] = faulty != nil && faulty(m)
			if sg.faulty[m] {
				sg.state = stateFault
			}
			s.byMember[m] = sg
		}
	}
	return s
}

// start begins serving events.
func (s *syncGroups) start() { s.q = newWorkQueue() }

// stop waits for the queued work.
func (s *syncGroups) stop() {
	if s != nil && s.q != nil {
		<-s.q.close()
	}
}

// initial is the command a member must start with: FAULT when its group
// starts faulted (keepalived's initialise_tracking_priorities).
func (s *syncGroups) initial(instance string) (event, bool) {
	if s == nil {
		return event{}, false
	}
	sg := s.byMember[instance]
	if sg == nil {
		return event{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sg.state != stateFault {
		return event{}, false
	}
	return event{Kind: evForce, State: stateFault, Detail: "vrrp_sync_group " + sg.def.Name + " is in FAULT"}, true
}

// onEvent is the daemon subscriber.
func (s *syncGroups) onEvent(ev instanceEvent) {
	if s.byMember[ev.Instance] == nil {
		return
	}
	switch {
	case ev.Transition:
		s.q.push(func() { s.transition(ev) })
	case ev.WantMaster:
		s.q.push(func() { s.want(ev.Instance, ev.Want) })
	}
}

// want is keepalived's vrrp_sync_can_goto_master: a member whose
// Master_Down_Timer fired only says so; when every member is either
// MASTER or a BACKUP that wants to be, the group moves them all to MASTER
// at once. A group in FAULT goes nowhere.
func (s *syncGroups) want(instance string, want bool) {
	defer s.flush() // after the unlock below
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.byMember[instance]
	sg.wants[instance] = want
	if !want || sg.state == stateFault {
		return
	}
	for _, m := range sg.def.Members {
		if st := sg.members[m]; st != stateMaster && !(st == stateBackup && sg.wants[m]) {
			return
		}
	}
	s.log.Info().Msgf("VRRP_Group(%s) Syncing instances to MASTER state", sg.def.Name)
	s.setState(sg, stateMaster)
	for _, m := range sg.def.Members {
		if sg.members[m] == stateBackup {
			s.queueSend(m, event{Kind: evForce, State: stateMaster, Detail: "vrrp_sync_group " + sg.def.Name + ": every member is ready"})
		}
	}
}

// onFaulty is the tracker's hook.
func (s *syncGroups) onFaulty(instance string, faulty bool) {
	if s.byMember[instance] == nil {
		return
	}
	s.q.push(func() { s.fault(instance, faulty) })
}

func (s *syncGroups) fault(instance string, faulty bool) {
	defer s.flush() // after the unlock below
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.byMember[instance]
	sg.faulty[instance] = faulty
	if faulty {
		if sg.state != stateFault {
			s.log.Info().Msgf("VRRP_Group(%s) Syncing instances to FAULT state", sg.def.Name)
			s.setState(sg, stateFault)
		}
		// Every member, the failed one too: it must stay in FAULT until
		// the whole group is released, even if its own fault clears.
		for _, m := range sg.def.Members {
			s.queueSend(m, event{Kind: evForce, State: stateFault, Detail: "vrrp_sync_group " + sg.def.Name + ": " + instance + " failed"})
		}
		return
	}
	for _, f := range sg.faulty {
		if f {
			return
		}
	}
	if sg.state == stateFault {
		s.log.Info().Msgf("VRRP_Group(%s) Syncing instances to BACKUP state", sg.def.Name)
		s.setState(sg, stateBackup)
		for _, m := range sg.def.Members {
			s.queueSend(m, event{Kind: evForce, State: stateBackup, Detail: "vrrp_sync_group " + sg.def.Name + " recovered"})
		}
	}
}

func (s *syncGroups) transition(ev instanceEvent) {
	defer s.flush() // after the unlock below
	s.mu.Lock()
	defer s.mu.Unlock()
	sg := s.byMember[ev.Instance]
	sg.members[ev.Instance] = ev.To
	if ev.To != stateBackup {
		sg.wants[ev.Instance] = false
	}
	if ev.Reason == reasonForced {
		return
	}
	switch {
	case ev.To == stateMaster && sg.state != stateFault:
		if sg.state != stateMaster {
			s.log.Info().Msgf("VRRP_Group(%s) Syncing instances to MASTER state", sg.def.Name)
			s.setState(sg, stateMaster)
		}
		for _, m := range sg.def.Members {
			if m != ev.Instance && sg.members[m] == stateBackup {
				s.queueSend(m, event{Kind: evForce, State: stateMaster, Detail: "vrrp_sync_group " + sg.def.Name + ": " + ev.Instance + " is MASTER"})
			}
		}
	case ev.To == stateBackup && ev.From == stateMaster && sg.state != stateFault:
		s.log.Info().Msgf("VRRP_Group(%s) Syncing instances to BACKUP state", sg.def.Name)
		s.setState(sg, stateBackup)
		for _, m := range sg.def.Members {
			if m != ev.Instance && sg.members[m] == stateMaster {
				s.queueSend(m, event{Kind: evForce, State: stateBackup, Detail: "vrrp_sync_group " + sg.def.Name + ": " + ev.Instance + " is BACKUP"})
			}
		}
	case ev.To == stateBackup && sg.state == stateInit:
		s.setState(sg, stateBackup)
	case ev.To == stateStop:
		for _, st := range sg.members {
			if st != stateStop {
				return
			}
		}
		s.setState(sg, stateStop)
	}
}

func (s *syncGroups) setState(sg *syncGroup, st state) {
	if sg.state == st {
		return
	}
	sg.state = st
	if s.notify != nil {
		s.notify(sg.def, st)
	}
}
