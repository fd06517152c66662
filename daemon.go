package main

// daemon.go is `vipd` itself: it loads keepalived.conf, starts one runner
// per vrrp_instance, routes received adverts and link events to them, and
// stops them in order on SIGTERM/SIGINT.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// runCmd is the daemon: vipd's default command. Its flags are keepalived's
// so that vipd drops into an existing unit file.
type runCmd struct {
	UseFile    string `short:"f" default:"/etc/keepalived/keepalived.conf" help:"Configuration file (keepalived.conf syntax)."`
	DontFork   bool   `short:"n" help:"Stay in the foreground (vipd always does; accepted for keepalived compatibility)."`
	ConfigTest bool   `short:"t" help:"Check the configuration and exit: 0 when usable, 1 with every error listed."`
	Dump       bool   `help:"With -t: print the normalised configuration."`
	Pid        string `short:"p" placeholder:"FILE" help:"Write the daemon's pid to FILE (optional; none by default)."`
	VRRPPid    string `name:"vrrp_pid" short:"r" placeholder:"FILE" help:"keepalived's VRRP child pid file: vipd has no children; written like --pid when given."`
	CheckPid   string `name:"checkers_pid" short:"c" placeholder:"FILE" help:"keepalived's checker child pid file: written like --pid when given."`
	VRRPOnly   bool   `name:"vrrp" short:"P" help:"Run only VRRP (no IPVS virtual servers)."`
	CheckOnly  bool   `name:"check" short:"C" help:"Run only IPVS virtual servers and their checkers (no VRRP)."`
	ConfigID   string `short:"i" name:"config-id" help:"Config id selecting @ID lines (default: the short host name)."`
	KeepIPVS   bool   `name:"dont-release-ipvs" short:"I" help:"Leave the IPVS virtual servers in the kernel on stop."`
	logOptions
	controlFlag
	opsFlags
}

// Run runs the daemon until SIGTERM or SIGINT.
func (c *runCmd) Run() error {
	if c.Signum != "" {
		return printSignum(os.Stdout, c.Signum)
	}
	if c.ConfigTest {
		if rc := runConfigTest(c.UseFile, c.ConfigID, c.Dump, os.Stdout, os.Stderr); rc != 0 {
			os.Exit(rc)
		}
		return nil
	}
	if os.Getenv("GOGC") == "" {
		// The heap is mostly long-lived per-instance state and little is
		// allocated per advert: collecting at 25 % growth instead of
		// 100 % keeps the peak RSS of 1,000 instances at ~35 MiB instead
		// of ~40, for no measurable CPU (bench/scale.sh: 0.16 s against
		// 0.22 s per 15 s at 1 s adverts, 1.79 s at 0.1 s). Before
		// loading the configuration, whose garbage made the peak.
		debug.SetGCPercent(25)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// One processor for Go code, as keepalived has one thread per
		// process. The daemon's work comes in small pieces (an advert
		// sent or received is microseconds) and a second P costs more
		// than it gives: each goroutine woken while the other P was idle
		// woke a second thread to spin for work and sleep again, a
		// context switch each, the largest cost per advert on these
		// VMs. At 1,000 instances and 0.1 s adverts vipd used 27 % less
		// CPU with one P (bench/scale.sh). System calls that block
		// (netlink, scripts, files) still run beside it, and GOMAXPROCS
		// in the environment overrides this.
		runtime.GOMAXPROCS(1)
	}
	log, err := c.newLogger(os.Stderr)
	if err != nil {
		return err
	}
	cfg, diags, err := loadConfig(c.UseFile, loadOptions{ConfigID: c.ConfigID})
	for _, d := range diags {
		ev := log.Warn()
		if d.Severity == sevError {
			ev = log.Error()
		}
		ev.Msg(d.String())
	}
	if err != nil {
		return fmt.Errorf("%s: configuration is not usable", c.UseFile)
	}
	for _, f := range []string{c.Pid, c.VRRPPid, c.CheckPid} {
		if f == "" {
			continue
		}
		if err := os.WriteFile(f, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	d := newDaemon(log, cfg, linuxSystem())
	d.vrrp = !c.CheckOnly
	d.cfgPath, d.loadOpt = c.UseFile, loadOptions{ConfigID: c.ConfigID}
	log.Info().Str("version", version).Str("config", c.UseFile).Int("instances", len(cfg.Instances)).Msg("Starting vipd")
	if !c.VRRPOnly {
		// Before the control socket and metrics, which read d.lvs.
		d.lvsCtx, d.lvsOpts, d.lvsOn = ctx, lvsOptions{Keep: c.KeepIPVS}, true
		d.startLVS(ctx, d.lvsOpts)
		defer func() { // releases our IPVS services on any return
			stop()
			d.mu.Lock()
			lvs := d.lvs
			d.mu.Unlock()
			lvs.Wait()
		}()
	}
	ctl, err := d.listenControl(c.Control)
	if err != nil {
		return err
	}
	if ctl != nil {
		defer ctl.Close()
	}
	if err := d.startOps(ctx, c.opsFlags); err != nil {
		return err
	}
	return d.run(ctx)
}

// system is the daemon's seam to the operating system: sockets, netlink
// and link events. linuxSystem is the real one.
type system struct {
	listenMulticast func(ifi *net.Interface, cfg mcastConfig) (advertConn, error)
	listenUnicast   func(src netip.Addr) (advertConn, error)
	addrs           addrs
	vmacs           vmacs
	announcer       func(ifi *net.Interface) (announcer, error)
	watchLinks      func(names []string) (linkWatcher, error)
	interfaceByName func(name string) (*net.Interface, error)
	primaryAddr     func(ifi *net.Interface, ipv6 bool) (netip.Addr, error)
	// promoteSecondaries is nil in tests that must not touch sysctls.
	promoteSecondaries func(ifname string) (restore func() error, err error)
}

func linuxSystem() *system {
	return &system{
		listenMulticast:    func(ifi *net.Interface, cfg mcastConfig) (advertConn, error) { return listenMulticast(ifi, cfg) },
		listenUnicast:      func(src netip.Addr) (advertConn, error) { return listenUnicast(src) },
		addrs:              newOffloadAddrs(netlinkAddrs{}),
		vmacs:              &netlinkVMACs{},
		announcer:          func(ifi *net.Interface) (announcer, error) { return newAnnouncer(ifi, nil) },
		watchLinks:         func(names []string) (linkWatcher, error) { return watchLinks(names) },
		interfaceByName:    interfaceByName,
		primaryAddr:        primaryAddr,
		promoteSecondaries: promoteSecondaries,
	}
}

// interfaceByName is net.InterfaceByName through ifaces, with the
// hardware address copied: net's slices into the netlink dump it parsed,
// so each kept *net.Interface pinned a whole dump (11 MB for 1,000
// instances, bench/scale.sh).
func interfaceByName(name string) (*net.Interface, error) {
	return ifaces.byName(name)
}

// ifaces caches the interface list and addresses for ifaceTTL. At start a
// thousand instances looked up four interfaces a thousand times, each
// lookup a netlink dump of every link (and of every address, for the
// primary): 57 MB of garbage that set vipd's peak RSS (bench/scale.sh).
// Staleness is bounded: the link watcher drops the cache on every link
// message (and on a resync), and a runner applies the link events queued
// while it set up. The cache belongs to one network namespace: a lookup
// from a thread in another one (tests) refreshes it.
var ifaces = &ifaceCache{}

const ifaceTTL = 500 * time.Millisecond

type ifaceCache struct {
	mu    sync.Mutex
	at    time.Time
	ns    uint64 // the network namespace's inode
	list  []net.Interface
	addrs map[int][]net.Addr
}

// netnsID identifies the calling thread's network namespace.
func netnsID() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/thread-self/ns/net", &st) != nil {
		return 0
	}
	return st.Ino
}

// invalidate drops the cache.
func (c *ifaceCache) invalidate() {
	c.mu.Lock()
	c.at, c.list, c.addrs = time.Time{}, nil, nil
	c.mu.Unlock()
}

// fresh refreshes the list when it is older than ifaceTTL or force.
// Called with mu held.
func (c *ifaceCache) fresh(force bool) error {
	ns := netnsID()
	if !force && ns == c.ns && time.Since(c.at) < ifaceTTL {
		return nil
	}
	list, err := net.Interfaces()
	if err != nil {
		return err
	}
	for i := range list {
		list[i].HardwareAddr = slices.Clone(list[i].HardwareAddr)
	}
	c.at, c.ns, c.list, c.addrs = time.Now(), ns, list, map[int][]net.Addr{}
	return nil
}

func (c *ifaceCache) byName(name string) (*net.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	refreshed := time.Since(c.at) >= ifaceTTL || netnsID() != c.ns
	if err := c.fresh(false); err != nil {
		return nil, err
	}
	for range 2 {
		for i := range c.list {
			if c.list[i].Name == name {
				ifi := c.list[i]
				return &ifi, nil
			}
		}
		if refreshed {
			break
		}
		// Not in a cached list: it may have just been created.
		if err := c.fresh(true); err != nil {
			return nil, err
		}
		refreshed = true
	}
	return nil, &net.OpError{Op: "route", Net: "ip+net", Err: errors.New("no such network interface")}
}

// addrsOf is ifi.Addrs() through the cache.
func (c *ifaceCache) addrsOf(ifi *net.Interface) ([]net.Addr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fresh(false); err != nil {
		return nil, err
	}
	if as, ok := c.addrs[ifi.Index]; ok {
		return as, nil
	}
	as, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	c.addrs[ifi.Index] = as
	return as, nil
}

// daemon owns the runners and the shared receive hubs.
type daemon struct {
	log     zerolog.Logger
	cfg     *Config
	cfgPath string
	loadOpt loadOptions
	sys     *system
	vrrp    bool
	started time.Time
	lvs     *lvsManager // virtual servers (lvs.go); nil when none
	// LVS may also be started by a reload that brings the first virtual
	// servers: with this context and these options, unless -P.
	lvsCtx  context.Context
	lvsOpts lvsOptions
	lvsOn   bool

	mu      sync.Mutex
	runners []*runner
	hubs    map[hubKey]*hub
	sched   *advertSched // every hub's masters' Adver_Timers (sched.go); nil until the first hub
	subs    []func(instanceEvent)

	wg       sync.WaitGroup // runner goroutines
	reloadMu sync.Mutex     // one reload at a time
	stopped  bool           // run is stopping the runners: no more reloads (under reloadMu)
	links    linkWatcher
	linkSet  []string
	promoted map[string]func() error // interfaces with promote_secondaries set by us

	// Tracking, sync groups and notifications (track.go); nil when off.
	extras *daemonExtras
}

// instanceEvent is what the rest of vipd (notify scripts, sync groups,
// metrics, the split-brain monitor) hears from a runner: a state
// transition, or a protocol event worth a log line.
type instanceEvent struct {
	Instance string
	Runner   *runner
	At       time.Time
	// Transition: From -> To because of Reason, at effective Priority.
	Transition bool
	From, To   state
	Reason     transReason
	Detail     string
	Priority   uint8
	// Otherwise Log is the protocol event.
	Log protoLog
	// WantMaster: a sync group member's Master_Down_Timer fired (Want) or
	// it follows a master again (!Want); the group decides (syncgroup.go).
	WantMaster bool
	Want       bool
}

// subscribe registers fn for every instanceEvent. fn runs on the runner's
// goroutine, in the order of the events, and must not block: anything
// slow (scripts, mail) is queued by fn.
func (d *daemon) subscribe(fn func(instanceEvent)) {
	d.mu.Lock()
	d.subs = append(d.subs, fn)
	d.mu.Unlock()
}

func (d *daemon) publish(ev instanceEvent) {
	d.mu.Lock()
	subs := d.subs
	d.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
}

func newDaemon(log zerolog.Logger, cfg *Config, sys *system) *daemon {
	return &daemon{log: log, cfg: cfg, sys: sys, vrrp: true, hubs: map[hubKey]*hub{}, started: time.Now()}
}

// run starts every instance and blocks until ctx is done, then stops them:
// masters send priority 0 and release their VIPs (RFC 5798 section 6.4.3).
func (d *daemon) run(ctx context.Context) error {
	if !d.vrrp || len(d.cfg.Instances) == 0 {
		d.log.Info().Msg("no VRRP instances to run")
	}
	d.globalScript("startup_script", d.cfg.Global.StartupScript)
	defer d.globalScript("shutdown_script", d.cfg.Global.ShutdownScript)
	var extras *daemonExtras
	if d.vrrp {
		var err error
		if extras, err = d.startTracking(); err != nil {
			return err
		}
		for _, ic := range d.cfg.Instances {
			d.startRunner(newRunner(d, ic))
		}
	}
	d.watchAll()
	d.sdNotify(d.readyState())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for loop := true; loop; {
		select {
		case <-ctx.Done():
			loop = false
		case <-hup:
			d.reloadFrom(d.cfgPath, d.loadOpt)
		}
	}
	<-ctx.Done()
	d.sdNotify("STOPPING=1")
	d.log.Info().Msg("Stopping vipd")
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.stopped = true
	extras.beforeStop()
	d.mu.Lock()
	runners := d.runners
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.stop() }()
	}
	wg.Wait()
	d.wg.Wait()
	extras.afterStop()
	if d.links != nil {
		d.links.Close()
	}
	for name, restore := range d.promoted {
		if err := restore(); err != nil {
			d.log.Warn().Err(err).Str("interface", name).Msg("restore promote_secondaries")
		}
	}
	d.mu.Lock()
	for k, h := range d.hubs {
		h.conn.Close()
		delete(d.hubs, k)
	}
	if d.sched != nil {
		d.sched.close()
	}
	d.mu.Unlock()
	d.log.Info().Msg("Stopped vipd")
	return nil
}

// globalScript runs global_defs' startup_script or shutdown_script and
// waits for it (at most 10 s, keepalived's startup_script_timeout default).
func (d *daemon) globalScript(what string, s Script) {
	if !s.IsSet() {
		return
	}
	r, err := resolveScript(s, &d.cfg.Global)
	if err != nil {
		d.log.Error().Err(err).Msgf("%s not run", what)
		return
	}
	res := r.run(context.Background(), 10*time.Second)
	ev := d.log.Info()
	if !res.OK() {
		ev = d.log.Warn().Int("status", res.Code).AnErr("error", res.Err)
	}
	ev.Str("script", s.Cmd).Dur("took", res.Took).Msgf("%s finished", what)
}

// promote sets promote_secondaries on an instance interface once, as
// keepalived does: otherwise removing a VIP that is the primary address
// of its subnet would take the interface's other addresses in that subnet
// with it. The old value is restored on exit.
func (d *daemon) promote(ifname string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, done := d.promoted[ifname]; done || d.sys.promoteSecondaries == nil {
		return
	}
	restore, err := d.sys.promoteSecondaries(ifname)
	if err != nil {
		d.log.Warn().Err(err).Str("interface", ifname).Msg("cannot set promote_secondaries")
		return
	}
	if d.promoted == nil {
		d.promoted = map[string]func() error{}
	}
	d.promoted[ifname] = restore
}

// startRunner runs r on its own goroutine.
func (d *daemon) startRunner(r *runner) {
	d.mu.Lock()
	if !slices.Contains(d.runners, r) {
		d.runners = append(d.runners, r)
	}
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		r.run()
	}()
}

// watchAll (re)starts the link watcher for every interface the runners
// care about; link events go to every runner, which picks its own.
func (d *daemon) watchAll() {
	d.mu.Lock()
	var names []string
	for _, r := range d.runners {
		for _, n := range r.watched() {
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
	}
	d.mu.Unlock()
	slices.Sort(names)
	if slices.Equal(names, d.linkSet) && d.links != nil {
		return
	}
	if d.links != nil {
		d.links.Close()
		d.links = nil
	}
	d.linkSet = names
	if len(names) == 0 {
		return
	}
	lw, err := d.sys.watchLinks(names)
	if err != nil {
		d.log.Error().Err(err).Msg("cannot watch interfaces: link changes will not be seen")
		return
	}
	d.links = lw
	go func() {
		for ev := range lw.Events() {
			d.mu.Lock()
			runners := d.runners
			d.mu.Unlock()
			for _, r := range runners {
				r.linkEvent(ev)
			}
		}
	}()
}

// hubKey names one receive socket: multicast per interface, family and
// group; unicast per source address.
type hubKey struct {
	ifname  string
	unicast bool
	addr    netip.Addr // group, or unicast source
}

// hub reads one socket and hands each advert to the runners of its VRID,
// so that N instances on an interface cost one socket, not N.
type hub struct {
	d     *daemon
	key   hubKey
	conn  advertConn
	sched *advertSched // its masters' Adver_Timers: the daemon's, shared by every hub

	mu      sync.RWMutex
	byVRID  [256][]*runner // an array, not a map: looked up for every advert
	nVRID   int            // non-empty entries of byVRID
	unknown uint64         // adverts for a VRID no instance here runs (RFC 5798 section 7.1)

	adv Advert // readLoop's scratch for deliver

}

// attach returns the hub for key, opening its socket with open when it
// is the first, and registers r for vrid. Both happen under d.mu, so that
// a detach emptying the hub at the same moment cannot close the socket r
// has just joined.
func (d *daemon) attach(key hubKey, vrid uint8, r *runner, open func() (advertConn, error)) (*hub, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hubs[key]
	if h == nil {
		conn, err := open()
		if err != nil {
			return nil, err
		}
		if d.sched == nil {
			// One scheduler for all hubs: the masters due at a grid point
			// on every interface go out in one wake-up.
			d.sched = newAdvertSched()
		}
		h = &hub{d: d, key: key, conn: conn, sched: d.sched}
		d.hubs[key] = h
		go h.readLoop()
	}
	h.mu.Lock()
	if len(h.byVRID[vrid]) == 0 {
		h.nVRID++
	}
	h.byVRID[vrid] = append(h.byVRID[vrid], r)
	h.mu.Unlock()
	return h, nil
}

// detach unregisters r; the last runner closes the socket.
func (d *daemon) detach(h *hub, vrid uint8, r *runner) {
	d.mu.Lock()
	h.mu.Lock()
	rs := h.byVRID[vrid]
	for i, x := range rs {
		if x == r {
			rs = append(rs[:i:i], rs[i+1:]...)
			break
		}
	}
	if len(rs) == 0 && len(h.byVRID[vrid]) > 0 {
		h.nVRID--
	}
	h.byVRID[vrid] = rs
	empty := h.nVRID == 0
	h.mu.Unlock()
	if empty && d.hubs[h.key] == h {
		delete(d.hubs, h.key)
	}
	d.mu.Unlock()
	if empty {
		h.conn.Close()
	}
}

func (h *hub) readLoop() {
	buf := make([]byte, 65536)
	for {
		n, meta, err := h.conn.ReadAdvert(buf)
		if err != nil {
			if isClosed(err) {
				return
			}
			h.d.log.Warn().Err(err).Str("interface", h.key.ifname).Msg("reading VRRP adverts")
			continue
		}
		var vrid uint8
		if n >= 2 {
			vrid = buf[1]
		}
		h.mu.RLock()
		rs := h.byVRID[vrid]
		h.mu.RUnlock()
		if len(rs) == 0 {
			h.mu.Lock()
			h.unknown++
			h.mu.Unlock()
			h.d.log.Debug().Str("from", meta.Src.String()).Int("vrid", int(vrid)).Str("interface", h.key.ifname).
				Msg("dropped advert: no instance with this VRID")
			continue
		}
		for _, r := range rs {
			r.deliver(buf[:n], meta, &h.adv)
		}
	}
}

// primaryAddr is the address an instance advertises from when the
// configuration names none: for IPv4 the interface's first global
// address, for IPv6 its link-local address (RFC 5798 section 5.1.2.1),
// zoned to the interface.
func primaryAddr(ifi *net.Interface, ipv6 bool) (netip.Addr, error) {
	ip, err := interfaceSource(ifi, ipv6)
	if err != nil {
		return netip.Addr{}, err
	}
	if ipv6 {
		ip = ip.WithZone(ifi.Name)
	}
	return ip, nil
}
