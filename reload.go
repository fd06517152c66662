package main

// reload.go applies a re-read configuration to a running daemon (SIGHUP,
// `vipd reload`) without losing what did not change: an unchanged instance
// keeps its state, VIPs and timers; a changed one is updated in place where
// the protocol allows; a removed one releases like a stop; a new one starts.
//
// keepalived's reload failures that this order avoids: VIPs dropped on
// reload (nothing unchanged is removed), a VIP moved between instances lost
// (every removal happens before any addition), a reload forcing BACKUP
// (instances are updated in place, not restarted).

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// errRestart says an instance's identity changed (interface, VRID,
// family, version, addressing): it is replaced rather than updated.
var errRestart = errors.New("identity changed")

// identity is what cannot change in place: the socket, the advert's VRID
// and version, and where the VIPs live.
func identity(ic *VRRPInstance) string {
	return fmt.Sprintf("%s|%d|%d|%d|%s|%s|%v|%v|%s|%v|%s|%s|%v",
		ic.Interface, ic.VRID, ic.Family, ic.Version, ic.UnicastSrcIP, ic.McastSrcIP,
		len(ic.UnicastPeers) > 0, ic.UseVMAC, ic.VMACName, ic.VMACXmitBase, ic.McastGroup4, ic.McastGroup6, ic.Priority == 255)
}

// reconfigure is reload's phase 1 on the runner's goroutine: it takes the
// new settings, removes the VIPs that went and keeps the additions for
// commitAdds.
func (r *runner) reconfigure(nic *VRRPInstance, now time.Time) error {
	if identity(nic) != identity(r.ic) {
		return errRestart
	}
	defer func() {
		r.mu.Lock()
		r.status.Config = r.ic
		r.mu.Unlock()
	}()
	if r.m == nil || r.hub == nil {
		// Not running yet (interface missing): the next setup uses it.
		r.ic = nic
		return nil
	}
	dev := r.ic.Interface
	if r.vmacIfi != nil {
		dev = r.vmacIfi.Name
	}
	vips, advertised := resolveVIPs(nic, dev)
	oldVIPs, oldAdvertised := r.vips, r.pol.Addresses
	r.reconfiguring, r.oldVIPs = true, oldVIPs
	defer func() { r.reconfiguring, r.oldVIPs = false, nil }()
	mc := machineConfig(nic, r.src, advertised)
	mc.Name = r.m.cfg.Name // the state machine keeps its first name; a rename is the daemon's affair
	acts, err := r.m.Reconfigure(mc, now)
	if err != nil {
		return fmt.Errorf("%s: %w", nic.Pos, err)
	}
	if nic.Name != r.ic.Name {
		r.log = r.d.log.With().Str("instance", nic.Name).Logger()
	}
	r.ic, r.vips = nic, vips
	r.pol = rxPolicyFor(nic, advertised, r.group)
	r.sharePolicy()
	if r.m.State() != stateMaster {
		r.garp = newGARPSched(garpConfigFor(nic))
	}
	r.exec(acts) // advertised VIPs that went are removed, those that came wait
	if r.m.State() != stateMaster {
		return nil
	}
	// What the state machine cannot see, as adverts carry addresses only:
	// excluded addresses that went or came, and addresses whose attributes
	// (prefix, label, device, ...) changed.
	var gone []vip
	for _, v := range oldVIPs {
		a := v.Prefix.Addr()
		switch {
		case slices.Contains(vips, v):
		case !slices.Contains(oldAdvertised, a) || containsAddr(vips, a):
			gone = append(gone, v)
		}
	}
	r.pendingDels = append(r.pendingDels, gone...)
	for _, v := range vips {
		a := v.Prefix.Addr()
		if !slices.Contains(oldVIPs, v) && !containsAddr(r.pendingAdds, a) {
			r.pendingAdds = append(r.pendingAdds, v)
		}
	}
	return nil
}

func containsAddr(vs []vip, a netip.Addr) bool {
	return slices.ContainsFunc(vs, func(v vip) bool { return v.Prefix.Addr() == a })
}

// reloadPlan is what a runner's phase 1 decided: the VIPs it will remove
// and add.
type reloadPlan struct{ Dels, Adds []vip }

// commitDels is reload's phase 2: the removals kept by reconfigure, except
// the VIPs in skip, which another instance adds in phase 3 with the same
// attributes: they stay on the interface, so a VIP moving between
// instances never disappears, not even for the moment between the phases.
func (r *runner) commitDels(skip []vip) {
	dels := r.pendingDels
	r.pendingDels = nil
	for _, v := range dels {
		if !slices.Contains(skip, v) {
			r.delVIPs([]vip{v})
		}
	}
}

// commitAdds is reload's phase 3: the additions kept by reconfigure (those
// in skip are on the interface already), then their announcements.
func (r *runner) commitAdds(now time.Time, skip []vip) {
	adds, garp := r.pendingAdds, r.pendingGARP
	r.pendingAdds, r.pendingGARP = nil, false
	if len(adds) == 0 || r.m == nil || r.m.State() != stateMaster {
		return
	}
	for _, v := range adds {
		if !slices.Contains(skip, v) {
			r.addVIPs([]vip{v})
		}
	}
	if garp || len(adds) > 0 {
		// Every address, not only the new ones: the scheduler's targets
		// are also what garp_master_refresh re-announces, and a Start
		// with the new ones alone left the others unrefreshed.
		targets := make([]garpTarget, 0, len(r.vips))
		for _, v := range r.vips {
			targets = append(targets, garpTarget{Addr: v.Prefix.Addr(), Dev: v.Dev})
		}
		r.garp.Start(now, targets)
		r.announce(now)
	}
}

// reloadFrom loads path and applies it. A configuration with errors is
// rejected whole, with its errors logged, and the running one is kept.
func (d *daemon) reloadFrom(path string, opt loadOptions) error {
	d.sdNotify(reloadingState())
	defer func() { d.sdNotify(d.readyState()) }()
	cfg, diags, err := loadConfig(path, opt)
	for _, dg := range diags {
		ev := d.log.Warn()
		if dg.Severity == sevError {
			ev = d.log.Error()
		}
		ev.Msg(dg.String())
	}
	if err != nil {
		d.log.Error().Msg("Reload rejected: the configuration is not usable; the running configuration is kept")
		return fmt.Errorf("%s: configuration is not usable", path)
	}
	return d.apply(cfg)
}

// errStopped refuses a reload that comes after the daemon stopped its
// instances.
var errStopped = errors.New("vipd is stopping: reload refused")

// apply moves the daemon to cfg (see the file comment for the order).
func (d *daemon) apply(cfg *Config) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.stopped {
		// The runners are gone: they would never answer phase 1, and
		// new ones would run with nothing to stop them.
		d.log.Warn().Msg("Reload refused: vipd is stopping")
		return errStopped
	}
	d.log.Info().Msg("Reloading configuration")
	d.mu.Lock()
	old := map[string]*runner{}
	for _, r := range d.runners {
		old[r.ic.Name] = r
	}
	d.mu.Unlock()

	var keep, stop []*runner
	var start []*VRRPInstance
	var dels, adds []vip
	if d.vrrp {
		// Pair each new instance with the runner that speaks for the same
		// virtual router: by name when its identity is unchanged, else by
		// identity (a renamed instance, or two instances whose VRIDs were
		// swapped), so it is updated in place and its VIPs move rather
		// than go away with a restart.
		pairs := map[*VRRPInstance]*runner{}
		for _, ic := range cfg.Instances {
			if r := old[ic.Name]; r != nil && identity(r.ic) == identity(ic) {
				pairs[ic] = r
				delete(old, ic.Name)
			}
		}
		for _, ic := range cfg.Instances {
			if pairs[ic] != nil {
				continue
			}
			for name, r := range old {
				if identity(r.ic) == identity(ic) {
					r.logf(d.log.Info(), "now %s in the configuration (same interface and VRID)", ic.Name)
					pairs[ic] = r
					delete(old, name)
					break
				}
			}
		}
		for _, ic := range cfg.Instances {
			r := pairs[ic]
			if r == nil {
				r = old[ic.Name]
				delete(old, ic.Name)
			}
			if r == nil {
				start = append(start, ic)
				continue
			}
			e, plan := make(chan error, 1), make(chan reloadPlan, 1)
			r.in <- &runnerInput{kind: inReconfig, ic: ic, err: e, plan: plan}
			switch err := <-e; {
			case err == nil:
				keep = append(keep, r)
				p := <-plan
				dels, adds = append(dels, p.Dels...), append(adds, p.Adds...)
			case errors.Is(err, errRestart):
				r.logf(d.log.Info(), "interface, VRID, version or addressing changed: restarting the instance")
				stop = append(stop, r)
				start = append(start, ic)
			default:
				r.logf(d.log.Error(), "reload: %v; restarting the instance", err)
				stop = append(stop, r)
				start = append(start, ic)
			}
		}
	}
	for _, r := range old {
		d.extras.deleted(r.ic.Name)
		r.logf(d.log.Info(), "removed from the configuration: releasing")
		stop = append(stop, r)
	}
	var wg sync.WaitGroup
	for _, r := range stop {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop() }()
	}
	wg.Wait()
	// A VIP one kept instance removes and another adds, alike, moves.
	var moved []vip
	for _, v := range dels {
		if slices.Contains(adds, v) {
			moved = append(moved, v)
		}
	}
	for _, kind := range []inputKind{inReconfigDels, inReconfigAdds} {
		for _, r := range keep {
			done := make(chan struct{})
			r.in <- &runnerInput{kind: kind, reply: done, skip: moved}
			<-done
		}
	}
	d.mu.Lock()
	d.runners = keep
	d.cfg = cfg
	lvs := d.lvs
	d.mu.Unlock()
	if lvs == nil && d.lvsOn && len(cfg.VirtualServers) > 0 {
		// The first virtual servers. ha_suspend needs to know which
		// instances are MASTER now, not only from their next transition.
		if m := d.startLVS(d.lvsCtx, d.lvsOpts); m != nil {
			for _, r := range keep {
				if st := r.snapshot(); st.State == stateMaster {
					m.vrrpEvent(instanceEvent{Instance: st.Config.Name, Runner: r, At: time.Now(), Transition: true, To: stateMaster})
				}
			}
		}
	} else {
		lvs.Reload(cfg) // virtual servers (lvs.go)
	}
	d.extras.reload(cfg)
	for _, ic := range start {
		d.startRunner(newRunner(d, ic))
	}
	d.watchAll()
	d.log.Info().Int("kept", len(keep)).Int("restarted_or_removed", len(stop)).Int("started", len(start)).Msg("Reload done")
	return nil
}
