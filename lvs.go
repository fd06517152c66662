package main

// lvs.go is the LVS half of vipd wired together: it turns the
// configuration's virtual_server blocks into IPVS services and pools
// (buildLVS), runs the real-server checkers (checkers.go), and keeps the
// kernel's table in step with their health (ipvs.go), the way keepalived's
// checker process does (keepalived/check/ipwrapper.c, check_daemon.c).
//
// Data flow, all on the manager's goroutine:
//
//	checker transition ──┐
//	VRRP MASTER/BACKUP ──┼─> lvsManager ─> ipvsPool ─> ipvsReconciler ─> kernel
//	address poll, reload ┘        └─> notify_up/down, quorum_up/down (script queue),
//	                                  notify fifo lines, smtp_alert mail
//
// A real server is up when all its checkers are up (keepalived's
// failed_checkers list is empty); one with no checker is always up, one
// whose checker cannot run never is.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// lvsScriptTimeout bounds notify_up/down and quorum_up/down runs; keepalived
// has none for these, but a hung script must not hold the queue forever.
const lvsScriptTimeout = 60 * time.Second

// lvsGroupMax bounds the services one virtual_server_group may expand to
// (address ranges), so a typo such as 10.0.0.1-10.255.255.255 is an error,
// not a million services.
const lvsGroupMax = 4096

// lvsRetryFailed is how often a virtual server whose kernel update failed
// is tried again.
const lvsRetryFailed = 30 * time.Second

// lvsAddrPoll is how often ha_suspend looks at the local addresses of
// virtual servers whose address no vrrp_instance carries.
const lvsAddrPoll = 2 * time.Second

// lvsVS is one virtual_server block with its run-time state.
type lvsVS struct {
	cfg      *VirtualServer
	name     string // keepalived's form: [10.0.0.1]:tcp:80, FWM 1, group NAME
	services []ipvsService
	pool     poolConfig
	reals    []*lvsRS
	// haAddr is the address ha_suspend watches; invalid without ha_suspend.
	haAddr netip.Addr

	// Run-time state, guarded by lvsManager.mu.
	quorum     quorumState
	dests      []ipvsDest // the pool as last computed
	sorryIn    bool       // the sorry server replaces the pool
	quorumText string     // the last quorum change, as logged
	suspended  bool       // ha_suspend and the address is not held
	programmed bool       // our services are in the kernel
	err        string     // last kernel error for this virtual server
}

// lvsRS is one real_server with its checkers' state.
type lvsRS struct {
	cfg      *RealServer
	name     string // [10.0.0.2]:tcp:80
	dest     ipvsDest
	checkers []*lvsCheck

	up        bool
	dynWeight int    // misc_dynamic weight in force, -1 when none
	broken    string // a checker could not be built: never up
}

// healthy reports whether all of rs's checkers are up (keepalived's empty
// failed_checkers list) and none was unusable.
func (rs *lvsRS) healthy() bool {
	return rs.broken == "" && !slices.ContainsFunc(rs.checkers, func(c *lvsCheck) bool { return !c.up })
}

// lvsCheck is one checker of a real server.
type lvsCheck struct {
	id     string
	spec   *checkerSpec
	cfg    *Checker
	vs     *lvsVS
	rs     *lvsRS
	up     bool
	reason string // last failure
	logAll bool
	// attempts and failed count finished attempts (guarded by
	// lvsManager.mu), for status and metrics.
	attempts, failed uint64
}

// lvsError is a configuration problem found while building the IPVS state;
// it names the file and line.
type lvsError struct {
	Pos  Pos
	Msg  string
	Warn bool // usable anyway; the item is skipped or adjusted
}

func (e lvsError) Error() string { return e.Pos.String() + ": " + e.Msg }

// buildLVS maps the configuration's virtual servers onto IPVS services,
// pools and checker specs. Problems come back with file:line; a virtual
// server with an error is left out, a checker with an error is left out
// (its real server then counts as having one checker fewer).
func buildLVS(cfg *Config) ([]*lvsVS, []lvsError) {
	var out []*lvsVS
	var errs []lvsError
	for i, v := range cfg.VirtualServers {
		vs, e := buildVS(cfg, v, i)
		errs = append(errs, e...)
		if vs != nil {
			out = append(out, vs)
		}
	}
	return out, errs
}

// lvsDiags are buildLVS's problems as configuration diagnostics, for
// `vipd -t` (a virtual server the daemon would leave out is an error).
func lvsDiags(cfg *Config) []diag {
	_, errs := buildLVS(cfg)
	out := make([]diag, 0, len(errs))
	for _, e := range errs {
		sev := sevError
		if e.Warn {
			sev = sevWarning
		}
		out = append(out, diag{File: e.Pos.File, Line: e.Pos.Line, Severity: sev, Msg: e.Msg})
	}
	return out
}

func buildVS(cfg *Config, v *VirtualServer, index int) (*lvsVS, []lvsError) {
	var errs []lvsError
	fail := func(format string, a ...any) {
		errs = append(errs, lvsError{Pos: v.Pos, Msg: "virtual_server " + vsKey(v) + ": " + fmt.Sprintf(format, a...)})
	}
	warn := func(p Pos, format string, a ...any) {
		errs = append(errs, lvsError{Pos: p, Msg: fmt.Sprintf(format, a...), Warn: true})
	}
	proto, err := parseIPVSProtocol(v.Protocol)
	if err != nil {
		fail("%v", err)
		return nil, errs
	}
	sched, err := parseIPVSScheduler(v.Sched)
	if err != nil {
		fail("%v", err)
		return nil, errs
	}
	tmpl := ipvsService{Protocol: proto, Scheduler: sched}
	for _, f := range v.SchedFlags {
		fl, err := parseIPVSFlag(f, sched)
		if err != nil {
			fail("%v", err)
			return nil, errs
		}
		tmpl.Flags |= fl
	}
	if v.OPS {
		tmpl.Flags |= svcOnePacket
	}
	if v.PersistenceTimeout > 0 {
		tmpl.Timeout = uint32(min(v.PersistenceTimeout/time.Second, 1<<32-1))
		if tmpl.Timeout == 0 {
			tmpl.Timeout = 1
		}
	}
	if g := v.PersistenceGranularity; g.IsValid() {
		bits := 0
		for _, b := range g.AsSlice() {
			for m := byte(0x80); m != 0 && b&m != 0; m >>= 1 {
				bits++
			}
			if b != 0xff {
				break
			}
		}
		if tmpl.Timeout == 0 {
			// keepalived: granularity implies persistence with the default timeout.
			tmpl.Timeout = ipvsDefaultPersistence
		}
		tmpl.Netmask = bits
	}
	if v.PersistenceEngine != "" {
		warn(v.Pos, "virtual_server %s: not supported by vipd: persistence_engine %s (ignored)", vsKey(v), v.PersistenceEngine)
	}
	fam := familyINET
	if v.Family == 6 {
		fam = familyINET6
	}
	vs := &lvsVS{cfg: v}
	switch {
	case v.FWMark != 0:
		s := tmpl
		s.FWMark, s.Family = uint32(v.FWMark), fam
		vs.services = []ipvsService{s}
		vs.name = "FWM " + strconv.Itoa(v.FWMark)
	case v.Group != "":
		g := cfg.VSGroups[v.Group]
		if g == nil {
			fail("no virtual_server_group %s", v.Group)
			return nil, errs
		}
		for _, e := range g.Entries {
			if e.FWMark != 0 {
				s := tmpl
				s.FWMark, s.Family = uint32(e.FWMark), fam
				vs.services = append(vs.services, s)
				continue
			}
			end := e.Addr
			if e.RangeEnd.IsValid() {
				end = e.RangeEnd
			}
			if end.Less(e.Addr) {
				errs = append(errs, lvsError{Pos: e.Pos, Msg: fmt.Sprintf("virtual_server_group %s: range %s-%s is reversed", g.Name, e.Addr, end)})
				return nil, errs
			}
			for a := e.Addr; ; a = a.Next() {
				if len(vs.services) >= lvsGroupMax {
					errs = append(errs, lvsError{Pos: e.Pos, Msg: fmt.Sprintf("virtual_server_group %s expands to more than %d services", g.Name, lvsGroupMax)})
					return nil, errs
				}
				s := tmpl
				s.Addr, s.Port = a, uint16(e.Port)
				vs.services = append(vs.services, s)
				if a == end || !a.IsValid() {
					break
				}
			}
		}
		vs.name = "group " + v.Group
	default:
		s := tmpl
		s.Addr, s.Port = v.Addr, uint16(v.Port)
		vs.services = []ipvsService{s}
		vs.name = svcName(v.Addr, v.Port, proto)
	}
	for _, s := range vs.services {
		if err := s.validate(); err != nil {
			fail("%v", err)
			return nil, errs
		}
	}
	if v.HASuspend {
		if v.Addr.IsValid() {
			vs.haAddr = v.Addr
		} else {
			warn(v.Pos, "virtual_server %s: ha_suspend needs a virtual server address; ignored", vsKey(v))
		}
	}
	tunnel := func(d *ipvsDest) {
		if d.Method != methodTUN {
			return
		}
		d.Tunnel = map[string]ipvsTunnel{"": tunnelIPIP, "ipip": tunnelIPIP, "gue": tunnelGUE, "gre": tunnelGRE}[v.TunnelType]
		d.TunnelPort = uint16(v.TunnelPort)
		d.TunnelCsum = map[string]uint16{"": 0, "nocsum": 0, "csum": 1, "remcsum": 2}[v.TunnelCsum]
	}
	methodOf := func(m string) ipvsMethod {
		switch m {
		case "DR":
			return methodDR
		case "TUN":
			return methodTUN
		}
		return methodNAT
	}
	vs.pool = poolConfig{Quorum: v.Quorum, Hysteresis: v.Hysteresis, SorryInhibit: v.SorryServerInhibit}
	if ss := v.SorryServer; ss != nil {
		d := ipvsDest{Addr: ss.Addr, Port: uint16(ss.Port), Weight: max(ss.Weight, 1), Method: methodOf(ss.Method)}
		if d.Port == 0 || d.Method == methodDR || d.Method == methodTUN {
			d.Port = uint16(v.Port)
		}
		tunnel(&d)
		vs.pool.Sorry = &d
	}
	for j, r := range v.RealServers {
		rs := &lvsRS{cfg: r, up: true, dynWeight: -1}
		rs.dest = ipvsDest{Addr: r.Addr, Port: uint16(r.Port), Weight: r.Weight, Method: methodOf(r.Method),
			UThreshold: uint32(r.UThreshold), LThreshold: uint32(r.LThreshold)}
		if (rs.dest.Method == methodDR || rs.dest.Method == methodTUN) && v.Port != 0 {
			rs.dest.Port = uint16(v.Port) // the config loader warned already
		}
		tunnel(&rs.dest)
		rs.name = svcName(r.Addr, int(rs.dest.Port), proto)
		for k, c := range r.Checkers {
			spec, err := checkerSpecFor(v, r, c)
			if errors.Is(err, errLVSUnsupported) {
				errs = append(errs, lvsError{Pos: c.Pos, Msg: fmt.Sprintf("%s of real_server %s: %v", c.Type, rs.name, err), Warn: true})
				continue
			}
			if err != nil {
				// Fail closed: a real server whose checker cannot run is
				// never taken for healthy.
				rs.broken = fmt.Sprintf("%s: %v", c.Type, err)
				errs = append(errs, lvsError{Pos: c.Pos, Msg: fmt.Sprintf("%s of real_server %s: %v; the real server is kept out of the pool", c.Type, rs.name, err)})
				continue
			}
			ck := &lvsCheck{id: fmt.Sprintf("vs%d/rs%d/%d", index, j, k), spec: spec, cfg: c, vs: vs, rs: rs,
				up: !spec.Alpha, logAll: c.LogAllFailures || cfg.Global.CheckerLogAllFailures}
			rs.checkers = append(rs.checkers, ck)
		}
		rs.up = rs.healthy()
		vs.reals = append(vs.reals, rs)
	}
	return vs, errs
}

// svcName formats an address, port and protocol the way keepalived's log
// lines do: [10.0.0.1]:tcp:80.
func svcName(a netip.Addr, port int, p ipvsProtocol) string {
	return "[" + a.String() + "]:" + strings.ToLower(p.String()) + ":" + strconv.Itoa(port)
}

// errLVSUnsupported marks a configured feature vipd does not implement.
var errLVSUnsupported = errors.New("not supported by vipd")

// checkerSpecFor maps one checker block of the configuration model onto a
// checkerSpec. Settings the model resolved through inheritance (checker,
// real_server, virtual_server) arrive here as plain values.
func checkerSpecFor(v *VirtualServer, r *RealServer, c *Checker) (*checkerSpec, error) {
	typ := c.Type
	if typ == "ICMP_CHECK" {
		typ = "PING_CHECK"
	}
	if typ == "FILE_CHECK" {
		return nil, fmt.Errorf("%w: FILE_CHECK (ignored; the real server's other checkers decide)", errLVSUnsupported)
	}
	kind, err := parseCheckKind(typ)
	if err != nil {
		return nil, err
	}
	ip := r.Addr
	if c.ConnectIP.IsValid() {
		ip = c.ConnectIP
	}
	port := uint16(r.Port)
	if c.ConnectPort != 0 {
		port = uint16(c.ConnectPort)
	}
	s := newCheckerSpec(kind, ip, port)
	s.BindTo, s.BindPort, s.BindIf, s.FWMark = c.BindTo, uint16(c.BindPort), c.BindIf, uint32(c.FWMark)
	s.ConnectTimeout = c.ConnectTimeout
	s.DelayLoop = c.DelayLoop
	s.DelayBeforeRetry = c.DelayBeforeRetry
	s.Warmup = c.Warmup
	s.Retry = c.Retry
	s.Alpha = c.Alpha || r.Alpha || r.Checker.Alpha || v.Alpha || v.Checker.Alpha
	s.VirtualHost = firstNonEmpty(c.Virtualhost, r.Virtualhost, v.Virtualhost)
	s.EnableSNI = c.EnableSNI
	s.HTTPProtocol = c.HTTPProtocol
	for _, u := range c.URLs {
		cu := checkURL{Path: u.Path, Digest: u.Digest, Regex: u.Regex, RegexNoMatch: u.RegexNoMatch, VirtualHost: u.Virtualhost}
		for _, sr := range u.StatusCodes {
			cu.StatusCodes = append(cu.StatusCodes, statusRange{sr.Lo, sr.Hi})
		}
		s.URLs = append(s.URLs, cu)
	}
	s.MiscPath = c.Misc.Cmd
	s.MiscTimeout = c.MiscTimeout
	s.MiscDynamic = c.MiscDynamic
	if c.Misc.User != "" {
		args := []string{c.Misc.User}
		if c.Misc.Group != "" {
			args = append(args, c.Misc.Group)
		}
		if s.MiscUser, err = checkLookupUser(args); err != nil {
			return nil, err
		}
	}
	s.DNSType, s.DNSName = c.DNSType, c.DNSName
	s.UDPPayload = c.Payload
	s.UDPRequireReply = c.RequireReply
	s.UDPReply = c.ReplyPayload
	s.UDPMinReply = c.MinReplyLength
	if c.MaxReplyLength > 0 {
		s.UDPMaxReply = c.MaxReplyLength
	}
	s.SMTPHelo = c.HeloName
	if err := s.normalize(); err != nil {
		return nil, err
	}
	return s, nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// lvsOptions are the daemon's LVS settings from the command line.
type lvsOptions struct {
	// Keep leaves our services in the kernel on stop (--dont-release-ipvs).
	Keep bool
}

// lvsManager runs the virtual servers: checkers, pools, the kernel table
// and the scripts. Its state is owned by the Run goroutine; mu guards it
// for Status.
type lvsManager struct {
	log  zerolog.Logger
	cfg  *Config
	opts lvsOptions
	k    ipvsKernel
	r    *ipvsReconciler

	sched  *rsCheckScheduler
	vss    []*lvsVS
	checks map[string]*lvsCheck

	// runScript runs a notify or quorum script; what names it for the log.
	// Replaced in tests.
	runScript func(what string, s Script)
	// localAddr reports whether an address is configured on this host
	// (ha_suspend for addresses no vrrp_instance carries).
	localAddr func(netip.Addr) bool

	mu      sync.Mutex
	err     error                   // IPVS unavailable
	masters map[string]bool         // vrrp_instance -> MASTER
	vipOf   map[netip.Addr][]string // address -> instances carrying it
	pending []checkTransition       // from the scheduler, for Run
	reload  *Config                 // from Reload, for Run
	gen     int                     // configuration generation, in checker ids
	retried time.Time               // last retryFailed
	// checkOnly is -C/--check: no VRRP here, ha_suspend follows the
	// local addresses.
	checkOnly bool
	wake      chan struct{} // pending or VRRP state changed
	scripts   *lvsScriptQueue
	fifos     []*fifoWriter // notify_fifo, lvs_notify_fifo
	mail      *mailer       // smtp_alert; nil when none is wanted
	host      string
	done      chan struct{}
}

// lvsCheckEvent is what the metrics hook sees: one finished attempt
// (Transition false) or a change of a checker's state.
type lvsCheckEvent struct {
	VirtualServer string
	RealServer    string
	Checker       string
	OK            bool
	Transition    bool
	Err           string
}

// lvsMetricsHook, when set, sees every checker attempt and transition
// (metrics.go counts them). It runs on the scheduler's goroutine and must
// not block.
var lvsMetricsHook func(lvsCheckEvent)

// newLVSManager builds the virtual servers of cfg for kernel k; problems
// in the configuration are logged with file:line. It runs nothing yet.
func newLVSManager(log zerolog.Logger, cfg *Config, k ipvsKernel, opts lvsOptions) *lvsManager {
	m := &lvsManager{log: log, cfg: cfg, opts: opts, k: k, checks: map[string]*lvsCheck{},
		masters: map[string]bool{}, vipOf: map[netip.Addr][]string{}, wake: make(chan struct{}, 1),
		localAddr: hasLocalAddr, done: make(chan struct{})}
	if k != nil {
		m.r = newIPVSReconciler(k)
	}
	m.scripts = newLVSScriptQueue(log, &cfg.Global)
	m.runScript = m.scripts.add
	vss, errs := buildLVS(cfg)
	for _, e := range errs {
		if e.Warn {
			log.Warn().Msg(e.Error())
		} else {
			log.Error().Msg(e.Error())
		}
	}
	m.vss = vss
	m.host, _ = os.Hostname()
	m.initMail()
	m.setVIPs(cfg)
	m.sched = newRSCheckScheduler(0, m.transition)
	m.sched.OnAttempt = m.attempt
	m.index()
	return m
}

// initMail starts the mailer when some virtual or real server has
// smtp_alert (its own or global).
func (m *lvsManager) initMail() {
	m.mail = &mailer{} // non-nil for alerts() while asking
	want := false
	for _, vs := range m.vss {
		want = want || m.alerts(vs, nil)
		for _, rs := range vs.reals {
			want = want || m.alerts(vs, rs)
		}
	}
	m.mail = nil
	if want {
		if m.mail = newMailer(m.log, &m.cfg.Global); m.mail == nil {
			m.log.Warn().Msg("smtp_alert is set for virtual servers but global_defs has no smtp_server or notification_email: no alerts are mailed")
		}
	}
}

// setVIPs records which vrrp_instances carry which addresses (ha_suspend).
func (m *lvsManager) setVIPs(cfg *Config) {
	clear(m.vipOf)
	for _, ic := range cfg.Instances {
		for _, v := range append(slices.Clone(ic.VIPs), ic.VIPsExcluded...) {
			a := v.Prefix.Addr()
			m.vipOf[a] = append(m.vipOf[a], ic.Name)
		}
	}
}

// index gives the checkers of m.vss ids unique across reloads and
// indexes them. Called before Run or with mu held.
func (m *lvsManager) index() {
	checks := make(map[string]*lvsCheck)
	for _, vs := range m.vss {
		for _, rs := range vs.reals {
			for _, c := range rs.checkers {
				c.id = "g" + strconv.Itoa(m.gen) + "/" + c.id
				checks[c.id] = c
			}
		}
	}
	m.checks = checks
}

// transition is the scheduler's notify: queue for Run.
func (m *lvsManager) transition(t checkTransition) {
	m.mu.Lock()
	m.pending = append(m.pending, t)
	c := m.checks[t.ID]
	m.mu.Unlock()
	m.poke()
	if h := lvsMetricsHook; h != nil {
		if c != nil {
			h(lvsCheckEvent{VirtualServer: c.vs.name, RealServer: c.rs.name, Checker: c.spec.Kind.String(), OK: t.Up, Transition: true, Err: t.Reason})
		}
	}
}

// attempt is the scheduler's OnAttempt: log_all_failures and metrics.
func (m *lvsManager) attempt(id string, out checkOutcome, st rsCheckStatus) {
	m.mu.Lock()
	c := m.checks[id]
	if c != nil {
		c.attempts++
		if out.Err != nil {
			c.failed++
		}
	}
	m.mu.Unlock()
	if c == nil {
		return
	}
	if out.Err != nil && c.logAll {
		m.log.Info().Msgf("%s on service %s of VS %s failed (attempt %d): %v", c.spec.Kind, c.rs.name, c.vs.name, st.Failures, out.Err)
	}
	if h := lvsMetricsHook; h != nil {
		e := lvsCheckEvent{VirtualServer: c.vs.name, RealServer: c.rs.name, Checker: c.spec.Kind.String(), OK: out.Err == nil}
		if out.Err != nil {
			e.Err = out.Err.Error()
		}
		h(e)
	}
}

func (m *lvsManager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// vrrpEvent follows the vrrp_instances' states for ha_suspend. It runs on
// a runner's goroutine and only records the state.
func (m *lvsManager) vrrpEvent(ev instanceEvent) {
	if !ev.Transition {
		return
	}
	m.mu.Lock()
	m.masters[ev.Instance] = ev.To == stateMaster
	m.mu.Unlock()
	m.poke()
}

// held reports whether this host holds addr: a vrrp_instance carrying it
// is MASTER or, when none carries it, it is configured on an interface.
// Called with mu held.
func (m *lvsManager) held(a netip.Addr) bool {
	if ins, ok := m.vipOf[a]; ok {
		for _, n := range ins {
			if m.masters[n] {
				return true
			}
		}
		return false
	}
	return m.localAddr(a)
}

// hasLocalAddr reports whether a is configured on an interface of this
// network namespace.
func hasLocalAddr(a netip.Addr) bool {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, x := range as {
		if n, ok := x.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a.Unmap() {
				return true
			}
		}
	}
	return false
}

// start programs every virtual server with its initial pool (all real
// servers up, except those with alpha checkers) and schedules the
// checkers. With lvs_flush the whole table is emptied first.
func (m *lvsManager) start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg.Global.LVSFlush {
		if err := m.r.Flush(); err != nil {
			m.log.Error().Err(err).Msg("lvs_flush")
		}
	}
	for _, vs := range m.vss {
		if vs.haAddr.IsValid() {
			vs.suspended = !m.held(vs.haAddr)
		}
		m.updateNotify(vs)
		m.addCheckers(vs)
		if vs.suspended {
			m.log.Info().Msgf("Suspending healthcheckers of VS %s: %s is not held (ha_suspend)", vs.name, vs.haAddr)
		}
	}
}

// addCheckers schedules vs's checkers (suspended with vs). Called with mu
// held.
func (m *lvsManager) addCheckers(vs *lvsVS) {
	for _, rs := range vs.reals {
		for _, c := range rs.checkers {
			if err := m.sched.AddChecker(c.id, c.spec, mustChecker(c.spec)); err != nil {
				m.log.Error().Msgf("%s: %v", c.cfg.Pos, err)
				continue
			}
			if vs.suspended {
				m.sched.SetEnabled(c.id, false)
			}
		}
	}
}

// mustChecker builds the checker of a spec that normalized already.
func mustChecker(s *checkerSpec) rsChecker {
	ck, err := newChecker(s)
	if err != nil {
		return rsCheckFailer{err}
	}
	return ck
}

// rsCheckFailer fails every attempt with err.
type rsCheckFailer struct{ err error }

func (f rsCheckFailer) Check(context.Context) checkOutcome {
	return checkOutcome{Err: f.err, Weight: -1}
}

// update recomputes vs's pool and programs it unless suspended. Called
// with mu held.
func (m *lvsManager) update(vs *lvsVS) quorumEvent {
	members := make([]poolMember, 0, len(vs.reals))
	live := 0
	for _, rs := range vs.reals {
		d := rs.dest
		d.Weight = rs.weight()
		members = append(members, poolMember{Dest: d, Up: rs.up, Inhibit: rs.cfg.InhibitOnFailure})
		if rs.up {
			live += d.Weight
		}
	}
	prev := vs.quorum
	dests, st, ev := ipvsPool(members, vs.pool, prev)
	vs.quorum, vs.dests = st, dests
	q, h := vs.pool.Quorum, vs.pool.Hysteresis
	switch {
	case ev == quorumGained:
		vs.quorumText = fmt.Sprintf("Gained quorum %d+%d=%d <= %d", q, h, q+h, live)
	case ev == quorumLost && prev == quorumUnknown:
		vs.quorumText = fmt.Sprintf("Starting with quorum down %d-%d=%d > %d", q, h, q+h, live)
	case ev == quorumLost:
		vs.quorumText = fmt.Sprintf("Lost quorum %d-%d=%d > %d", q, h, q-h, live)
	}
	if ev != quorumNoEvent {
		m.log.Info().Msgf("%s for VS %s", vs.quorumText, vs.name)
	}
	if sorry := vs.pool.Sorry; sorry != nil {
		in := st == quorumDown
		if in != vs.sorryIn {
			name := svcName(sorry.Addr, int(sorry.Port), vs.services[0].Protocol)
			verb := map[[2]bool]string{{true, false}: "Adding sorry server %s to VS %s", {true, true}: "Enabling sorry server %s of VS %s",
				{false, false}: "Removing sorry server %s from VS %s", {false, true}: "Disabling sorry server %s of VS %s"}[[2]bool{in, vs.pool.SorryInhibit}]
			m.log.Info().Msgf(verb, name, vs.name)
		}
		vs.sorryIn = in
	}
	m.program(vs)
	return ev
}

// updateNotify is update followed by the quorum notifies it calls for.
func (m *lvsManager) updateNotify(vs *lvsVS) {
	if m.update(vs) != quorumNoEvent {
		m.vsNotify(vs)
	}
}

// program puts vs's services and pool into the kernel, or takes them out
// while vs is suspended. Called with mu held.
func (m *lvsManager) program(vs *lvsVS) {
	if m.r == nil {
		return
	}
	var errs []error
	if vs.suspended {
		if !vs.programmed {
			return
		}
		for _, s := range vs.services {
			if err := m.k.DeleteService(s); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("ipvs: delete service %s: %w", s, err))
			}
		}
		vs.programmed = false
	} else {
		for _, s := range vs.services {
			ops, err := m.r.ApplyService(ipvsVirtual{s, vs.dests})
			if err != nil {
				errs = append(errs, err)
			}
			for _, op := range ops {
				m.log.Debug().Msgf("VS %s: %s", vs.name, op)
			}
		}
		vs.programmed = true
	}
	if err := errors.Join(errs...); err != nil {
		if err.Error() != vs.err { // a retry failing the same way is not logged again
			m.log.Error().Msgf("%s: virtual_server %s: %v", vs.cfg.Pos, vsKey(vs.cfg), err)
		}
		vs.err = err.Error()
	} else {
		if vs.err != "" {
			m.log.Info().Msgf("VS %s programmed after an earlier error", vs.name)
		}
		vs.err = ""
	}
}

// retryFailed reprograms the virtual servers whose last kernel update
// failed (a scheduler module loaded since, a transient netlink error), at
// most every lvsRetryFailed. Called with mu held.
func (m *lvsManager) retryFailed(now time.Time) {
	if now.Sub(m.retried) < lvsRetryFailed {
		return
	}
	m.retried = now
	for _, vs := range m.vss {
		if vs.err != "" && !vs.suspended {
			m.program(vs)
		}
	}
}

// handle applies one checker transition, with keepalived's log lines
// (ipwrapper.c perform_svr_state, update_svr_wgt). Called with mu held.
func (m *lvsManager) handle(t checkTransition) {
	c := m.checks[t.ID]
	if c == nil {
		return
	}
	rs, vs := c.rs, c.vs
	m.log.Info().Msg(t.message(c.spec))
	if t.Weight >= 0 && c.spec.MiscDynamic && t.Weight != rs.dynWeight {
		old := rs.weight()
		rs.dynWeight = t.Weight
		if w := rs.weight(); w != old {
			in := ""
			if !rs.up {
				in = "in"
			}
			m.log.Info().Msgf("Changing weight from %d to %d for %sactive service %s of VS %s", old, w, in, rs.name, vs.name)
		}
	}
	c.up = t.Up
	if !t.Up {
		c.reason = t.Reason
	}
	was := rs.up
	rs.up = rs.healthy()
	if rs.up != was {
		inhibit := rs.cfg.InhibitOnFailure
		switch {
		case rs.up && inhibit:
			m.log.Info().Msgf("Enabling service %s of VS %s", rs.name, vs.name)
		case rs.up:
			m.log.Info().Msgf("Adding service %s to VS %s", rs.name, vs.name)
		case inhibit:
			m.log.Info().Msgf("Disabling service %s of VS %s", rs.name, vs.name)
		default:
			m.log.Info().Msgf("Removing service %s from VS %s", rs.name, vs.name)
		}
	}
	// keepalived's order: the kernel, the real server's notifies, then the
	// quorum's.
	ev := m.update(vs)
	if rs.up != was {
		m.rsNotify(vs, rs, t.message(c.spec))
	}
	if ev != quorumNoEvent {
		m.vsNotify(vs)
	}
}

// rsNotify runs a real server's notify_up/notify_down and writes its
// notify fifo line (keepalived's do_rs_notifies). Called with mu held.
func (m *lvsManager) rsNotify(vs *lvsVS, rs *lvsRS, why string) {
	s, st := rs.cfg.NotifyDown, "DOWN"
	if rs.up {
		s, st = rs.cfg.NotifyUp, "UP"
	}
	if s.IsSet() {
		m.runScript(strings.ToLower("notify_"+st)+" of "+rs.name, s)
	}
	m.fifo("RS " + rs.name + " " + vs.name + " " + st + "\n")
	if m.alerts(vs, rs) {
		m.mail.send(mail{Subject: fmt.Sprintf("[%s] Realserver %s of virtual server %s - %s", m.routerID(), rs.name, vs.name, st),
			Body: fmt.Sprintf("=> %s <=\n\nHost: %s\nTime: %s\n", why, m.host, time.Now().Format(time.RFC3339)), At: time.Now()})
	}
}

// alerts reports whether state changes of rs (nil: vs's quorum) are
// mailed: smtp_alert of the real server or the virtual server, else
// global smtp_alert_checker, else smtp_alert.
func (m *lvsManager) alerts(vs *lvsVS, rs *lvsRS) bool {
	if m.mail == nil {
		return false
	}
	if (rs != nil && rs.cfg.SMTPAlert) || vs.cfg.SMTPAlert {
		return true
	}
	g := &m.cfg.Global
	if g.SMTPAlertChecker != nil {
		return *g.SMTPAlertChecker
	}
	return g.SMTPAlert
}

func (m *lvsManager) routerID() string {
	if id := m.cfg.Global.RouterID; id != "" {
		return id
	}
	return m.host
}

// vsNotify runs quorum_up/quorum_down and writes the fifo line (keepalived's
// do_vs_notifies). Called with mu held.
func (m *lvsManager) vsNotify(vs *lvsVS) {
	s, st := vs.cfg.QuorumDown, "DOWN"
	if vs.quorum == quorumUp {
		s, st = vs.cfg.QuorumUp, "UP"
	}
	if s.IsSet() {
		m.runScript(strings.ToLower("quorum_"+st)+" of VS "+vs.name, s)
	}
	m.fifo("VS " + vs.name + " " + st + "\n")
	if m.alerts(vs, nil) {
		m.mail.send(mail{Subject: fmt.Sprintf("[%s] Virtualserver %s - %s", m.routerID(), vs.name, st),
			Body: fmt.Sprintf("=> %s <=\n\nHost: %s\nTime: %s\n", vs.quorumText, m.host, time.Now().Format(time.RFC3339)), At: time.Now()})
	}
}

// fifo writes one line to notify_fifo and lvs_notify_fifo (when open).
func (m *lvsManager) fifo(line string) {
	for _, f := range m.fifos {
		f.write(line)
	}
}

// openFifos opens global notify_fifo and lvs_notify_fifo and starts
// lvs_notify_fifo_script (notify_fifo_script is the VRRP notifier's).
func (m *lvsManager) openFifos() {
	g := &m.cfg.Global
	for _, f := range []Fifo{g.NotifyFifo, g.LVSNotifyFifo} {
		if f.Path == "" || slices.ContainsFunc(m.fifos, func(w *fifoWriter) bool { return w.path == f.Path }) {
			continue
		}
		w, err := openFifo(m.log, f.Path)
		if err != nil {
			m.log.Error().Msg(err.Error())
			continue
		}
		if f == g.LVSNotifyFifo && f.Script.IsSet() && f.Path != g.NotifyFifo.Path {
			if r, err := resolveScript(f.Script, g); err != nil {
				m.log.Error().Msgf("lvs_notify_fifo_script: %v", err)
			} else {
				w.startScript(r)
			}
		}
		m.fifos = append(m.fifos, w)
	}
}

// weight is the real server's weight in force: misc_dynamic's, else the
// configured one.
func (rs *lvsRS) weight() int {
	if rs.dynWeight >= 0 {
		return rs.dynWeight
	}
	return rs.dest.Weight
}

// resync re-evaluates ha_suspend for every virtual server. Called with mu
// held.
func (m *lvsManager) resync() {
	for _, vs := range m.vss {
		if !vs.haAddr.IsValid() {
			continue
		}
		susp := !m.held(vs.haAddr)
		if susp == vs.suspended {
			continue
		}
		vs.suspended = susp
		verb := "Activating"
		if susp {
			verb = "Suspending"
		}
		m.log.Info().Msgf("%s healthcheckers of VS %s (ha_suspend, %s)", verb, vs.name, vs.haAddr)
		for _, rs := range vs.reals {
			for _, c := range rs.checkers {
				m.sched.SetEnabled(c.id, !susp)
			}
		}
		m.program(vs)
	}
}

// Run runs the checkers and keeps the kernel's table in step until ctx
// ends; then it releases our services (unless Keep) and waits for the
// scripts it started. A kernel without IPVS is logged as an error and Run
// returns at once: VRRP keeps running.
func (m *lvsManager) Run(ctx context.Context) error {
	defer close(m.done)
	if m.k == nil {
		return m.err
	}
	m.openFifos()
	m.start()
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); m.sched.Run(sctx) }()
	go func() { defer wg.Done(); m.scripts.run(sctx) }()
	poll := time.NewTicker(lvsAddrPoll)
	defer poll.Stop()
	for loop := true; loop; {
		select {
		case <-ctx.Done():
			loop = false
		case <-m.wake:
		case <-poll.C:
		}
		m.mu.Lock()
		pend := m.pending
		m.pending = nil
		for _, t := range pend {
			m.handle(t)
		}
		if cfg := m.reload; cfg != nil {
			m.reload = nil
			m.applyConfig(cfg)
		}
		m.resync()
		m.retryFailed(time.Now())
		m.mu.Unlock()
	}
	// Stop the checkers first so no transition reprograms what we release.
	cancel()
	wg.Wait()
	m.stop()
	return nil
}

// stop runs omega's quorum_down, releases our services (unless Keep) and
// runs the scripts still queued.
func (m *lvsManager) stop() {
	m.mu.Lock()
	// omega: the real servers and the virtual server go down "all the
	// way down the exit" (keepalived's clear_service_rs), notifying.
	for _, vs := range m.vss {
		if !vs.cfg.Omega {
			continue
		}
		for _, rs := range vs.reals {
			if rs.up {
				rs.up = false
				m.rsNotify(vs, rs, "Shutting down")
			}
		}
		if vs.quorum == quorumUp {
			vs.quorum = quorumDown
			vs.quorumText = "Shutting down"
			m.log.Info().Msgf("Lost quorum for VS %s (omega, stopping)", vs.name)
			m.vsNotify(vs)
		}
	}
	if m.r != nil {
		if err := m.r.Release(m.opts.Keep); err != nil {
			m.log.Error().Err(err).Msg("releasing IPVS services")
		} else if !m.opts.Keep {
			m.log.Info().Msg("Removed our IPVS virtual servers")
		}
	}
	m.mu.Unlock()
	m.scripts.drain(context.Background())
	for _, f := range m.fifos {
		f.close()
	}
	m.mail.close(2 * time.Second)
	if m.k != nil {
		m.k.Close()
	}
}

// Reload hands a re-read configuration (SIGHUP, `vipd reload`) to Run.
// It does not wait. It is nil-safe.
func (m *lvsManager) Reload(cfg *Config) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.reload = cfg
	m.mu.Unlock()
	m.poke()
}

// applyConfig moves to a re-read configuration without losing health:
// a real server kept (same virtual server, address and port) keeps its
// checkers' state when the checker is the same kind against the same
// target, and its misc_dynamic weight; a virtual server kept keeps its
// quorum state, so no quorum script runs for nothing. Services that left
// the configuration are deleted, new ones created, changed ones edited.
// Called with mu held.
func (m *lvsManager) applyConfig(cfg *Config) {
	vss, errs := buildLVS(cfg)
	for _, e := range errs {
		if e.Warn {
			m.log.Warn().Msg(e.Error())
		} else {
			m.log.Error().Msg(e.Error())
		}
	}
	type ckKey struct {
		vs, rs, target string
		kind           checkKind
		n              int
	}
	keyOf := func(c *lvsCheck, n int) ckKey {
		return ckKey{c.vs.name, c.rs.dest.String(), c.spec.addrPort().String() + c.spec.MiscPath, c.spec.Kind, n}
	}
	// nth numbers checkers of one kind and target on a real server.
	nth := func(rs *lvsRS, i int) int {
		n := 0
		for _, o := range rs.checkers[:i] {
			if o.spec.Kind == rs.checkers[i].spec.Kind && o.spec.addrPort() == rs.checkers[i].spec.addrPort() {
				n++
			}
		}
		return n
	}
	oldVS := map[string]*lvsVS{}
	oldRS := map[[2]string]*lvsRS{}
	oldCk := map[ckKey]*lvsCheck{}
	for _, vs := range m.vss {
		oldVS[vs.name] = vs
		for _, rs := range vs.reals {
			oldRS[[2]string{vs.name, rs.dest.String()}] = rs
			for i, c := range rs.checkers {
				oldCk[keyOf(c, nth(rs, i))] = c
			}
			for _, c := range rs.checkers {
				m.sched.Remove(c.id)
			}
		}
	}
	want := map[ipvsKey]bool{}
	for _, vs := range vss {
		for _, s := range vs.services {
			want[s.key()] = true
		}
		if o := oldVS[vs.name]; o != nil {
			vs.quorum = o.quorum
			vs.suspended, vs.programmed = o.suspended, o.programmed
		}
		for _, rs := range vs.reals {
			if o := oldRS[[2]string{vs.name, rs.dest.String()}]; o != nil {
				rs.dynWeight = o.dynWeight
			}
			for i, c := range rs.checkers {
				if o := oldCk[keyOf(c, nth(rs, i))]; o != nil {
					c.up, c.reason = o.up, o.reason
					c.attempts, c.failed = o.attempts, o.failed
					// The scheduler starts a checker down only with
					// alpha: a carried-over failed checker starts so.
					c.spec.Alpha = !o.up
				}
			}
			rs.up = rs.healthy()
		}
	}
	for _, vs := range m.vss {
		if !vs.programmed || m.r == nil {
			continue
		}
		for _, s := range vs.services {
			if want[s.key()] {
				continue
			}
			if err := m.k.DeleteService(s); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
				m.log.Error().Msgf("%s: virtual_server %s: ipvs: delete service %s: %v", vs.cfg.Pos, vsKey(vs.cfg), s, err)
			} else {
				m.log.Info().Msgf("Removed service %s (no longer configured)", s)
			}
		}
	}
	m.cfg = cfg
	m.scripts.setGlobal(&cfg.Global)
	if !m.checkOnly {
		m.setVIPs(cfg)
	}
	m.gen++
	m.vss = vss
	m.index()
	for _, vs := range vss {
		if vs.haAddr.IsValid() {
			vs.suspended = !m.held(vs.haAddr)
		} else {
			vs.suspended = false
		}
		m.updateNotify(vs)
		m.addCheckers(vs)
	}
	m.log.Info().Int("virtual_servers", len(vss)).Msg("Reloaded virtual servers")
}

// Wait blocks until Run has returned. It is nil-safe.
func (m *lvsManager) Wait() {
	if m == nil {
		return
	}
	<-m.done
}

// startLVS opens IPVS and starts the LVS manager for the daemon's virtual
// servers; nil when there are none. Without IPVS in the kernel it logs a
// clear error and returns a manager that only reports it: VRRP keeps
// running.
func (d *daemon) startLVS(ctx context.Context, opts lvsOptions) *lvsManager {
	if len(d.cfg.VirtualServers) == 0 {
		return nil
	}
	var k ipvsKernel
	nk, err := openIPVS()
	if err != nil {
		more := ""
		if d.vrrp && len(d.cfg.Instances) > 0 {
			more = " (VRRP keeps running)"
		}
		d.log.Error().Err(err).Msgf("IPVS is not available: %d virtual servers are not programmed and not checked%s", len(d.cfg.VirtualServers), more)
	} else {
		k = nk
	}
	m := newLVSManager(d.log, d.cfg, k, opts)
	m.err = err
	if !d.vrrp {
		// -C/--check: no instance runs here, so ha_suspend looks at the
		// local addresses (keepalived's checker process does the same).
		m.checkOnly = true
		clear(m.vipOf)
	}
	d.subscribe(m.vrrpEvent)
	d.mu.Lock()
	d.lvs = m
	d.mu.Unlock()
	go m.Run(ctx)
	return m
}

// lvsScriptQueue runs notify and quorum scripts one at a time, in order,
// off the manager's goroutine (keepalived forks them and does not wait;
// running them in order keeps a down/up pair from overtaking itself).
// Each runs through script.go like the VRRP notify scripts (split like
// misc_path, as its user, script_user or keepalived_script, refused by
// enable_script_security when unsafe), killed after lvsScriptTimeout.
type lvsScriptQueue struct {
	log  zerolog.Logger
	g    *GlobalDefs
	mu   sync.Mutex
	jobs []lvsScriptJob
	wake chan struct{}
}

type lvsScriptJob struct {
	what string
	s    Script
}

func newLVSScriptQueue(log zerolog.Logger, g *GlobalDefs) *lvsScriptQueue {
	return &lvsScriptQueue{log: log, g: g, wake: make(chan struct{}, 1)}
}

func (q *lvsScriptQueue) setGlobal(g *GlobalDefs) {
	q.mu.Lock()
	q.g = g
	q.mu.Unlock()
}

func (q *lvsScriptQueue) add(what string, s Script) {
	q.mu.Lock()
	q.jobs = append(q.jobs, lvsScriptJob{what, s})
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *lvsScriptQueue) run(ctx context.Context) {
	for {
		q.next(ctx)
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
	}
}

// next runs every queued job.
func (q *lvsScriptQueue) next(ctx context.Context) {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 {
			q.mu.Unlock()
			return
		}
		j := q.jobs[0]
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		q.exec(ctx, j)
	}
}

// drain runs what is still queued (after Run's context ended).
func (q *lvsScriptQueue) drain(ctx context.Context) { q.next(ctx) }

func (q *lvsScriptQueue) exec(ctx context.Context, j lvsScriptJob) {
	q.mu.Lock()
	g := q.g
	q.mu.Unlock()
	r, err := resolveScript(j.s, g)
	if err != nil {
		q.log.Error().Msgf("%s: %v", j.what, err)
		return
	}
	q.log.Info().Msgf("Executing [%s] for %s", j.s.Cmd, j.what)
	res := r.run(ctx, lvsScriptTimeout)
	switch {
	case res.TimedOut:
		q.log.Warn().Msgf("%s: %s [%s] timed out after %v: killed", j.s.Pos, j.what, j.s.Cmd, lvsScriptTimeout)
	case res.Err != nil:
		q.log.Warn().Msgf("%s: %s [%s]: %v", j.s.Pos, j.what, j.s.Cmd, res.Err)
	case res.Code != 0:
		q.log.Warn().Msgf("%s: %s [%s] exited with status %d", j.s.Pos, j.what, j.s.Cmd, res.Code)
	}
	if e := q.log.Debug(); e.Enabled() && len(res.Output) > 0 {
		e.Str("output", strings.TrimSpace(string(res.Output))).Msgf("%s ran", j.what)
	}
}

// virtualServerStatus is one virtual server in `vipd status`.
type virtualServerStatus struct {
	Name        string             `json:"name"` // [10.0.0.1]:tcp:80, FWM 1, group NAME
	Config      string             `json:"config"`
	Services    []string           `json:"services"`
	Scheduler   string             `json:"scheduler"`
	Quorum      string             `json:"quorum"` // up, down, unknown
	QuorumMin   int                `json:"quorum_min"`
	Hysteresis  int                `json:"hysteresis"`
	LiveWeight  int                `json:"live_weight"`
	SorryServer string             `json:"sorry_server,omitempty"`
	SorryActive bool               `json:"sorry_active"`
	Suspended   bool               `json:"suspended"` // ha_suspend: address not held
	Programmed  bool               `json:"programmed"`
	Error       string             `json:"error,omitempty"`
	RealServers []realServerStatus `json:"real_servers"`
}

// realServerStatus is one real server: its health and the weight it has
// in the kernel (-1 when it is not in the table).
type realServerStatus struct {
	Addr         string          `json:"addr"`
	Method       string          `json:"method"`
	Up           bool            `json:"up"`
	Weight       int             `json:"weight"`          // configured, or misc_dynamic's
	KernelWeight int             `json:"kernel_weight"`   // -1: not in the table
	Error        string          `json:"error,omitempty"` // a checker that cannot run: kept out
	Checkers     []checkerStatus `json:"checkers,omitempty"`
}

// checkerStatus is one checker of a real server.
type checkerStatus struct {
	Kind     string `json:"kind"`
	Target   string `json:"target"`
	Up       bool   `json:"up"`
	Enabled  bool   `json:"enabled"`
	Failures int    `json:"failures"` // consecutive
	Reason   string `json:"reason,omitempty"`
	Attempts uint64 `json:"attempts_total"`
	Failed   uint64 `json:"failed_total"`
}

// Status reports every virtual server. It is nil-safe.
func (m *lvsManager) Status() []virtualServerStatus {
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []virtualServerStatus
	for _, vs := range m.vss {
		st := virtualServerStatus{Name: vs.name, Config: vs.cfg.Pos.String(), Scheduler: vs.cfg.Sched,
			Quorum: vs.quorum.String(), QuorumMin: vs.pool.Quorum, Hysteresis: vs.pool.Hysteresis,
			Suspended: vs.suspended, Programmed: vs.programmed && m.r != nil, Error: vs.err}
		if m.err != nil {
			st.Error = m.err.Error()
		}
		for _, s := range vs.services {
			st.Services = append(st.Services, s.normalize().String())
		}
		kw := map[ipvsDestKey]int{}
		for _, d := range vs.dests {
			kw[d.key()] = d.Weight
		}
		if s := vs.pool.Sorry; s != nil {
			st.SorryServer = s.String()
			w, in := kw[s.key()]
			st.SorryActive = in && w > 0 && vs.quorum == quorumDown
		}
		for _, rs := range vs.reals {
			w := rs.dest.Weight
			if rs.dynWeight >= 0 {
				w = rs.dynWeight
			}
			if rs.up {
				st.LiveWeight += w
			}
			r := realServerStatus{Addr: rs.dest.String(), Method: rs.dest.Method.String(), Up: rs.up, Weight: w, KernelWeight: -1, Error: rs.broken}
			if k, ok := kw[rs.dest.key()]; ok && vs.programmed {
				r.KernelWeight = k
			}
			for _, c := range rs.checkers {
				cs := checkerStatus{Kind: c.spec.Kind.String(), Target: c.spec.addrPort().String(), Up: c.up, Enabled: true,
					Attempts: c.attempts, Failed: c.failed}
				if c.spec.Kind == checkMisc {
					cs.Target = c.spec.MiscPath
				}
				if s, ok := m.sched.State(c.id); ok {
					cs.Enabled, cs.Failures = s.Enabled, s.Failures
				}
				if !c.up {
					cs.Reason = c.reason
				}
				r.Checkers = append(r.Checkers, cs)
			}
			st.RealServers = append(st.RealServers, r)
		}
		out = append(out, st)
	}
	return out
}

// printLVSStatus prints the virtual servers part of `vipd status`.
func printLVSStatus(w io.Writer, vss []virtualServerStatus) {
	if len(vss) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VIRTUAL SERVER\tSCHED\tQUORUM\tREAL SERVER\tMETHOD\tHEALTH\tWEIGHT\tIN KERNEL\tCHECKERS")
	for _, vs := range vss {
		q := fmt.Sprintf("%s %d/%d", vs.Quorum, vs.LiveWeight, vs.QuorumMin)
		switch {
		case vs.Error != "":
			q += " (error)"
		case vs.Suspended:
			q += " (suspended)"
		case vs.SorryActive:
			q += " (sorry " + vs.SorryServer + ")"
		}
		name := vs.Name
		if len(vs.RealServers) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t%s\t-\t\t\t\t\t\n", name, vs.Scheduler, q)
		}
		for i, rs := range vs.RealServers {
			if i > 0 {
				name, q = "", ""
			}
			health := "DOWN"
			if rs.Up {
				health = "UP"
			}
			kw := "-"
			if rs.KernelWeight >= 0 {
				kw = strconv.Itoa(rs.KernelWeight)
			}
			var cks []string
			for _, c := range rs.Checkers {
				s := c.Kind + " " + map[bool]string{true: "ok", false: "failed"}[c.Up]
				if !c.Enabled {
					s += " (suspended)"
				}
				if c.Reason != "" && !c.Up {
					s += ": " + c.Reason
				}
				cks = append(cks, s)
			}
			if rs.Error != "" {
				cks = append(cks, "error: "+rs.Error)
			}
			if len(cks) == 0 {
				cks = []string{"-"}
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", name, map[bool]string{true: vs.Scheduler, false: ""}[i == 0],
				q, rs.Addr, rs.Method, health, rs.Weight, kw, strings.Join(cks, "; "))
		}
	}
	tw.Flush()
	for _, vs := range vss {
		if vs.Error != "" {
			fmt.Fprintf(w, "%s (%s): %s\n", vs.Name, vs.Config, vs.Error)
		}
	}
}
