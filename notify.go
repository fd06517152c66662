package main

// notify.go runs what keepalived runs on a state change
// (vrrp_notify.c send_instance_notifies / send_group_notifies), in this
// order: the state's script (notify_master, notify_backup, notify_fault,
// notify_stop), the generic `notify` script as
// `SCRIPT INSTANCE|GROUP NAME STATE PRIORITY` (priority 0 for a group),
// the notify fifo line and the SMTP alert.
//
// Scripts of one instance (or group) run one at a time, in transition
// order, each bounded by notifyTimeout; the runner only queues them, so a
// slow script never delays the protocol.

import (
	"context"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// notifyTimeout bounds one notify script run (keepalived has no limit for
// most of them; a hung script must not block the instance's later ones
// for ever).
const notifyTimeout = 30 * time.Second

// notifyScripts are the resolved scripts of an instance or group.
type notifyScripts struct {
	byState    map[state]*runnable
	generic    *runnable
	rxLowerPri *runnable // notify_master_rx_lower_pri
	deleted    *runnable // notify_deleted
	priority   bool      // notify_priority_changes
}

// notifier runs notifications for every instance and sync group.
type notifier struct {
	log      zerolog.Logger
	cfg      *Config
	timeout  time.Duration
	routerID string
	host     string

	fifos []*fifoWriter
	mail  *mailer

	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	scripts  map[string]*notifyScripts // "i/NAME", "g/NAME"
	smtp     map[string]bool           // same keys: smtp_alert on
	del      map[string]bool           // instances a reload removes
	queues   map[string]*workQueue
	lastMail map[string]state
}

// newNotifier resolves every notify script (a script that cannot run is
// logged and skipped), opens the notify fifos and starts their scripts.
func newNotifier(log zerolog.Logger, cfg *Config) *notifier {
	g := &cfg.Global
	host, _ := os.Hostname()
	n := &notifier{log: log, cfg: cfg, timeout: notifyTimeout, host: host, routerID: g.RouterID,
		del: map[string]bool{}, queues: map[string]*workQueue{}, lastMail: map[string]state{}}
	if n.routerID == "" {
		n.routerID = host
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.scripts, n.smtp = n.resolveAll(cfg)
	seen := map[string]bool{}
	for _, f := range []Fifo{g.NotifyFifo, g.VRRPNotifyFifo} {
		if f.Path == "" || seen[f.Path] {
			continue
		}
		seen[f.Path] = true
		w, err := openFifo(log, f.Path)
		if err != nil {
			log.Error().Msg(err.Error())
			continue
		}
		if f.Script.IsSet() {
			if r, err := resolveScript(f.Script, g); err != nil {
				log.Error().Msgf("notify_fifo_script: %v", err)
			} else {
				w.startScript(r)
			}
		}
		n.fifos = append(n.fifos, w)
	}
	wantMail := false
	for _, on := range n.smtp {
		wantMail = wantMail || on
	}
	if wantMail {
		if n.mail = newMailer(log, g); n.mail == nil {
			log.Warn().Msg("smtp_alert is set but global_defs has no smtp_server or notification_email: no alerts are mailed")
		}
	}
	return n
}

// resolveAll resolves the notify scripts and smtp_alert of every instance
// and sync group of cfg.
func (n *notifier) resolveAll(cfg *Config) (map[string]*notifyScripts, map[string]bool) {
	g := &cfg.Global
	scripts, smtp := map[string]*notifyScripts{}, map[string]bool{}
	for _, ic := range cfg.Instances {
		scripts["i/"+ic.Name] = n.resolve(cfg, "vrrp_instance "+ic.Name, ic.Notify)
		smtp["i/"+ic.Name] = ic.SMTPAlert
	}
	for _, sg := range cfg.SyncGroups {
		scripts["g/"+sg.Name] = n.resolve(cfg, "vrrp_sync_group "+sg.Name, sg.Notify)
		smtp["g/"+sg.Name] = sg.SMTPAlert || g.SMTPAlert && (g.SMTPAlertVRRP == nil || *g.SMTPAlertVRRP)
	}
	return scripts, smtp
}

// reconfigure takes a reloaded configuration's scripts and smtp_alert
// settings. The fifos and the mail server stay those of the start.
func (n *notifier) reconfigure(cfg *Config) {
	scripts, smtp := n.resolveAll(cfg)
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg, n.scripts, n.smtp = cfg, scripts, smtp
	if n.mail == nil {
		for _, on := range smtp {
			if on {
				n.log.Warn().Msg("reload: smtp_alert needs a restart of vipd to start mailing")
				break
			}
		}
	}
}

// deleting marks an instance a reload removes: its STOP is reported as
// DELETED and runs notify_deleted (else notify_stop).
func (n *notifier) deleting(instance string) {
	n.mu.Lock()
	n.del[instance] = true
	n.mu.Unlock()
}

func (n *notifier) lookup(key string) (*notifyScripts, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.scripts[key], n.smtp[key]
}

func (n *notifier) resolve(cfg *Config, who string, nt Notify) *notifyScripts {
	ns := &notifyScripts{byState: map[state]*runnable{}}
	one := func(s Script, kw string) *runnable {
		if !s.IsSet() {
			return nil
		}
		r, err := resolveScript(s, &cfg.Global)
		if err != nil {
			n.log.Error().Msgf("%s: %s: %v; not run", who, kw, err)
			return nil
		}
		return r
	}
	for st, s := range map[state]Script{stateMaster: nt.Master, stateBackup: nt.Backup, stateFault: nt.Fault, stateStop: nt.Stop} {
		if r := one(s, "notify_"+strings.ToLower(st.String())); r != nil {
			ns.byState[st] = r
		}
	}
	ns.generic = one(nt.Generic, "notify")
	ns.rxLowerPri = one(nt.MasterRxLowerPri, "notify_master_rx_lower_pri")
	ns.deleted = one(nt.Deleted, "notify_deleted")
	ns.priority = nt.Priority
	return ns
}

func (n *notifier) queue(key string) *workQueue {
	n.mu.Lock()
	defer n.mu.Unlock()
	q := n.queues[key]
	if q == nil {
		q = newWorkQueue()
		n.queues[key] = q
	}
	return q
}

// onEvent is the daemon subscriber: it writes the fifo line at once (the
// write never blocks) and queues the scripts and mail.
func (n *notifier) onEvent(ev instanceEvent) {
	if !ev.Transition {
		// A master hearing a lower priority advert (keepalived's
		// send_event_notify): its script, without arguments, and a fifo line.
		if ev.Log.Kind == plMasterLowerPrio {
			n.event("i/"+ev.Instance, ev.Instance, "MASTER_RX_LOWER_PRI", ev.Priority)
		}
		// vipd's split-brain hook (docs/operations.md): a fifo line and the
		// generic notify script with state SPLIT or SPLIT_RESOLVED.
		if begin, end := ev.splitBrain(); begin || end {
			what := "SPLIT"
			if end {
				what = "SPLIT_RESOLVED"
			}
			n.splitBrain("i/"+ev.Instance, ev.Instance, what, ev.Priority)
		}
		return
	}
	if ev.To == stateInit {
		return
	}
	deleted := false
	if ev.To == stateStop {
		n.mu.Lock()
		deleted = n.del[ev.Instance]
		delete(n.del, ev.Instance)
		n.mu.Unlock()
	}
	n.dispatch("i/"+ev.Instance, "INSTANCE", "Instance", ev.Instance, ev.From, ev.To, deleted, ev.Reason.String()+detailSuffix(ev.Detail), ev.Priority, ev.At)
}

// group is the sync groups' hook for a group state change.
func (n *notifier) group(g *SyncGroup, st state) {
	if st == stateInit {
		return
	}
	n.dispatch("g/"+g.Name, "GROUP", "Group", g.Name, stateInit, st, false, "", 0, time.Now())
}

// priority is the tracker's hook for an effective priority change: with
// notify_priority_changes, a MASTER_PRIORITY or BACKUP_PRIORITY fifo line
// (keepalived's send_instance_priority_notifies).
func (n *notifier) priority(instance string, st state, prio uint8) {
	ns, _ := n.lookup("i/" + instance)
	if ns == nil || !ns.priority {
		return
	}
	what := "BACKUP_PRIORITY"
	if st == stateMaster {
		what = "MASTER_PRIORITY"
	}
	for _, f := range n.fifos {
		f.write(fifoLine("INSTANCE", instance, what, prio))
	}
}

func (n *notifier) event(key, name, what string, prio uint8) {
	for _, f := range n.fifos {
		f.write(fifoLine("INSTANCE", name, what, prio))
	}
	if ns, _ := n.lookup(key); ns != nil && ns.rxLowerPri != nil {
		n.queue(key).push(func() { n.runScript(ns.rxLowerPri, name, "notify_master_rx_lower_pri") })
	}
}

// splitBrain sends a split brain's start or end (what: SPLIT or
// SPLIT_RESOLVED) to the fifos and the generic notify script, in order
// with the instance's other notifications.
func (n *notifier) splitBrain(key, name, what string, prio uint8) {
	for _, f := range n.fifos {
		f.write(fifoLine("INSTANCE", name, what, prio))
	}
	if ns, _ := n.lookup(key); ns != nil && ns.generic != nil {
		prioArg := itoa(int(prio))
		n.queue(key).push(func() { n.runScript(ns.generic, name, "notify", "INSTANCE", name, what, prioArg) })
	}
}

func detailSuffix(d string) string {
	if d == "" {
		return ""
	}
	return ": " + d
}

func (n *notifier) dispatch(key, fifoKind, mailKind, name string, from, to state, deleted bool, why string, prio uint8, at time.Time) {
	what := to.String()
	if deleted {
		what = "DELETED"
	}
	line := fifoLine(fifoKind, name, what, prio)
	for _, f := range n.fifos {
		f.write(line)
	}
	ns, alert := n.lookup(key)
	var script *runnable
	kw := "notify_" + strings.ToLower(what)
	if ns != nil {
		script = ns.byState[to]
		if deleted && ns.deleted != nil {
			script = ns.deleted
		} else if deleted {
			kw = "notify_stop"
		}
	}
	var ml mail
	send := false
	if alert && n.mail != nil {
		n.mu.Lock()
		if last, ok := n.lastMail[key]; (!ok || last != to) && !(n.cfg.Global.NoEmailFaults && to == stateFault) {
			n.lastMail[key] = to
			ml, send = vrrpAlert(n.routerID, mailKind, name, from, to, why, prio, n.host, at)
		}
		n.mu.Unlock()
	}
	if (ns == nil || script == nil && ns.generic == nil) && !send {
		return
	}
	prioArg := itoa(int(prio))
	n.queue(key).push(func() {
		if script != nil {
			n.runScript(script, name, kw)
		}
		if ns != nil && ns.generic != nil {
			n.runScript(ns.generic, name, "notify", fifoKind, name, what, prioArg)
		}
		if send {
			n.mail.send(ml)
		}
	})
}

func (n *notifier) runScript(r *runnable, name, kw string, args ...string) {
	res := r.run(n.ctx, n.timeout, args...)
	log := n.log.With().Str("instance", name).Logger()
	switch {
	case res.TimedOut:
		log.Warn().Msgf("(%s) %s %q timed out after %v: killed", name, kw, r.Cmd, n.timeout)
	case res.Err != nil:
		log.Warn().Msgf("(%s) %s %q: %v", name, kw, r.Cmd, res.Err)
	case res.Code != 0:
		log.Warn().Msgf("(%s) %s %q exited with status %d", name, kw, r.Cmd, res.Code)
	}
	if e := log.Debug(); e.Enabled() && len(res.Output) > 0 {
		e.Str("output", strings.TrimSpace(string(res.Output))).Msgf("(%s) %s ran", name, kw)
	}
}

// close waits for the queued notifications (at most wait, then running
// scripts are killed), then stops the fifo scripts and the mailer.
func (n *notifier) close(wait time.Duration) {
	if n == nil {
		return
	}
	n.mu.Lock()
	qs := make([]*workQueue, 0, len(n.queues))
	for _, q := range n.queues {
		qs = append(qs, q)
	}
	n.mu.Unlock()
	deadline := time.After(wait)
	for _, q := range qs {
		select {
		case <-q.close():
		case <-deadline:
			n.cancel()
			<-q.close()
		}
	}
	n.cancel()
	for _, f := range n.fifos {
		f.close()
	}
	n.mail.close(2 * time.Second)
}
