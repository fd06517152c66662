package main

// config_keywords.go holds one keyword table per keepalived.conf block.
// Each keyword is either applied to the model (supported) or known but not
// implemented (unsupported: one warning naming it). A keyword in neither
// gets an "unknown keyword" warning with the closest known spelling. The
// same tables generate docs/keywords.md (see keywordsMarkdown), so the
// documentation cannot drift from what the parser does.

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

type kwStatus int

const (
	kwSupported   kwStatus = iota
	kwUnsupported          // known, not implemented: one warning, skipped
	kwParsedOnly           // parsed into the model, not acted on yet: warns
)

// kwInfo documents one keyword.
type kwInfo struct {
	Name   string
	Status kwStatus
	Note   string
}

// kw is a keyword of a block whose model object is T.
type kw[T any] struct {
	kwInfo
	fn func(l *loader, n *node, t T)
}

// table is the keyword table of one block.
type table[T any] struct {
	name string
	kws  []kw[T]
	idx  map[string]int
}

// docTable is what keywordsMarkdown needs of a table.
type docTable interface {
	blockName() string
	infos() []kwInfo
}

var docTables []docTable

func newTable[T any](name string, kws ...kw[T]) *table[T] {
	t := &table[T]{name: name, kws: kws, idx: map[string]int{}}
	for i, k := range kws {
		if _, dup := t.idx[k.Name]; dup {
			panic("config: duplicate keyword " + k.Name + " in " + name) // a bug in this file
		}
		t.idx[k.Name] = i
	}
	docTables = append(docTables, t)
	return t
}

func (t *table[T]) blockName() string { return t.name }
func (t *table[T]) infos() []kwInfo {
	out := make([]kwInfo, len(t.kws))
	for i, k := range t.kws {
		out[i] = k.kwInfo
	}
	return out
}

// sup and unsup build table rows.
func sup[T any](name string, fn func(*loader, *node, T), note ...string) kw[T] {
	return kw[T]{kwInfo{Name: name, Status: kwSupported, Note: strings.Join(note, " ")}, fn}
}

// parsedOnly is a keyword whose values go into the model (so --dump shows
// them) but which vipd does not act on yet; fn must warn.
func parsedOnly[T any](name string, fn func(*loader, *node, T), note ...string) kw[T] {
	return kw[T]{kwInfo{Name: name, Status: kwParsedOnly, Note: strings.Join(note, " ")}, fn}
}

func unsup[T any](name string, note ...string) kw[T] {
	return kw[T]{kwInfo: kwInfo{Name: name, Status: kwUnsupported, Note: strings.Join(note, " ")}}
}

// repeatable keywords may appear several times in one block, adding to
// what came before; any other keyword given twice gets a warning, since
// only the last one counts (as in keepalived, which says nothing).
var repeatable = map[string]bool{
	"global_defs": true, "vrrp_instance": true, "vrrp_script": true, "vrrp_track_file": true,
	"track_file": true, "vrrp_track_process": true, "vrrp_sync_group": true, "garp_group": true,
	"virtual_server": true, "virtual_server_group": true, "static_ipaddress": true,
	"static_routes": true, "static_rules": true, "linkbeat_interfaces": true, "SSL": true,
	"virtual_ipaddress": true, "virtual_ipaddress_excluded": true, "virtual_routes": true,
	"virtual_rules": true, "track_interface": true, "track_script": true, "track_process": true,
	"unicast_peer": true, "notification_email": true, "group": true, "interfaces": true,
	"real_server": true, "url": true, "host": true, "TCP_CHECK": true, "HTTP_GET": true,
	"SSL_GET": true, "MISC_CHECK": true, "DNS_CHECK": true, "PING_CHECK": true,
	"ICMP_CHECK": true, "UDP_CHECK": true, "SMTP_CHECK": true, "FILE_CHECK": true,
}

// walk applies the table to the children of n.
func (t *table[T]) walk(l *loader, n *node, obj T) {
	seen := map[string]*node{}
	for _, c := range n.Children {
		i, ok := t.idx[c.Key]
		if !ok {
			l.unknown(c, t.name, t.names())
			continue
		}
		k := t.kws[i]
		if k.Status == kwUnsupported || k.fn == nil {
			l.warnf(c, "not supported by vipd: %s", c.Key)
			continue
		}
		if first, dup := seen[c.Key]; dup && !repeatable[c.Key] {
			l.warnf(c, "%s is given again (first at %s); this one applies", c.Key, first.pos())
		}
		seen[c.Key] = c
		k.fn(l, c, obj)
	}
}

func (t *table[T]) names() []string {
	out := make([]string, len(t.kws))
	for i, k := range t.kws {
		out[i] = k.Name
	}
	return out
}

// loader walks the tree into the model.
type loader struct {
	cfg   *Config
	diags []diag
	// set records which keywords were given per object, so defaults from
	// global_defs apply only where the instance did not say.
	set map[any]map[string]bool
	// advert holds each instance's advert_int as written, in seconds.
	advert map[*VRRPInstance]float64
	// authPos is where authentication was given (for strict warnings).
	authPos map[*VRRPInstance]*node
}

func (l *loader) mark(obj any, key string) {
	if l.set == nil {
		l.set = map[any]map[string]bool{}
	}
	m := l.set[obj]
	if m == nil {
		m = map[string]bool{}
		l.set[obj] = m
	}
	m[key] = true
}

func (l *loader) isSet(obj any, key string) bool { return l.set[obj][key] }

func (l *loader) warnf(n *node, format string, a ...any) {
	l.diags = append(l.diags, diag{File: n.File, Line: n.Line, Severity: sevWarning, Msg: fmt.Sprintf(format, a...)})
}

func (l *loader) errorf(n *node, format string, a ...any) {
	l.diags = append(l.diags, diag{File: n.File, Line: n.Line, Severity: sevError, Msg: fmt.Sprintf(format, a...)})
}

func (l *loader) warnAt(p Pos, format string, a ...any) {
	l.diags = append(l.diags, diag{File: p.File, Line: p.Line, Severity: sevWarning, Msg: fmt.Sprintf(format, a...)})
}

func (l *loader) errorAt(p Pos, format string, a ...any) {
	l.diags = append(l.diags, diag{File: p.File, Line: p.Line, Severity: sevError, Msg: fmt.Sprintf(format, a...)})
}

// unknown reports a keyword no table knows, suggesting the closest one.
func (l *loader) unknown(n *node, block string, known []string) {
	if s := suggest(n.Key, known); s != "" {
		l.warnf(n, "unknown keyword '%s' in %s, did you mean '%s'?", n.Key, block, s)
		return
	}
	l.warnf(n, "unknown keyword '%s' in %s", n.Key, block)
}

// suggest returns the known word closest to w by edit distance, if close.
func suggest(w string, known []string) string {
	best, bestD := "", 1<<30
	for _, k := range known {
		d := editDistance(w, k)
		if d < bestD || d == bestD && k < best {
			best, bestD = k, d
		}
	}
	limit := 2
	if len(w) > 10 {
		limit = 3
	}
	if bestD <= limit && bestD < len(w) {
		return best
	}
	return ""
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ---- argument helpers ----

// nargs checks that n has between lo and hi arguments (hi < 0: any).
func (l *loader) nargs(n *node, lo, hi int) bool {
	if len(n.Args) < lo {
		if lo == 1 {
			l.errorf(n, "%s needs an argument", n.Key)
		} else {
			l.errorf(n, "%s needs %d arguments", n.Key, lo)
		}
		return false
	}
	if hi >= 0 && len(n.Args) > hi {
		l.warnf(n, "%s: extra arguments ignored: %s", n.Key, strings.Join(n.Args[hi:], " "))
	}
	return true
}

func (l *loader) noBlock(n *node) {
	if n.Block {
		l.errorf(n, "%s does not take a block", n.Key)
	}
}

func (l *loader) needBlock(n *node) bool {
	if !n.Block {
		l.errorf(n, "%s needs a block { ... }", n.Key)
		return false
	}
	return true
}

// intArg parses argument i of n as an integer in lo..hi.
func (l *loader) intArg(n *node, i, lo, hi int) (int, bool) {
	if !l.nargs(n, i+1, -1) {
		return 0, false
	}
	s := n.Args[i]
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		l.errorf(n, "%s %q is not an integer", n.Key, s)
		return 0, false
	}
	if v < int64(lo) || v > int64(hi) {
		l.errorf(n, "%s %d is out of range %d..%d", n.Key, v, lo, hi)
		return 0, false
	}
	return int(v), true
}

// int1 is intArg for a keyword with exactly one argument.
func (l *loader) int1(n *node, lo, hi int) (int, bool) {
	if !l.nargs(n, 1, 1) {
		return 0, false
	}
	return l.intArg(n, 0, lo, hi)
}

// seconds parses a keepalived TIMER: seconds with an optional fraction.
func (l *loader) seconds(n *node, i int, lo, hi float64) (float64, bool) {
	if !l.nargs(n, i+1, -1) {
		return 0, false
	}
	s := n.Args[i]
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || strings.ContainsAny(s, "xXpPnN_") {
		l.errorf(n, "%s %q is not a number of seconds", n.Key, s)
		return 0, false
	}
	if v < lo || v > hi {
		l.errorf(n, "%s %s is out of range %s..%s seconds", n.Key, s, fmtFloat(lo), fmtFloat(hi))
		return 0, false
	}
	return v, true
}

func (l *loader) timer(n *node, lo, hi float64) (time.Duration, bool) {
	if !l.nargs(n, 1, 1) {
		return 0, false
	}
	v, ok := l.seconds(n, 0, lo, hi)
	return secondsToDuration(v), ok
}

func secondsToDuration(v float64) time.Duration {
	return time.Duration(math.Round(v*1e6)) * time.Microsecond
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// boolArg parses keepalived's optional <BOOL>: no argument means true.
func (l *loader) boolArg(n *node) (bool, bool) {
	l.noBlock(n)
	if len(n.Args) == 0 {
		return true, true
	}
	l.nargs(n, 0, 1)
	switch strings.ToLower(n.Args[0]) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	l.errorf(n, "%s %q is not a boolean (on|off|true|false|yes|no)", n.Key, n.Args[0])
	return false, false
}

func (l *loader) str1(n *node) (string, bool) {
	l.noBlock(n)
	if !l.nargs(n, 1, 1) {
		return "", false
	}
	return n.Args[0], true
}

func (l *loader) addr(n *node, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		l.errorf(n, "%s: %q is not an IP address", n.Key, s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// prefix parses ADDR[/LEN]; no length means a host prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address with prefix length", s)
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// script parses `KEYWORD SCRIPT [USER [GROUP]]` (notify_*, quorum_up...).
func (l *loader) script(n *node) (Script, bool) {
	l.noBlock(n)
	if !l.nargs(n, 1, 3) {
		return Script{}, false
	}
	s := Script{Cmd: n.Args[0], Pos: n.pos()}
	if len(n.Args) > 1 {
		s.User = n.Args[1]
	}
	if len(n.Args) > 2 {
		s.Group = n.Args[2]
	}
	return s, true
}

// scriptAll parses `script CMD ARGS...` where every word belongs to the
// command (vrrp_script's script, misc_path).
func (l *loader) scriptAll(n *node) (Script, bool) {
	l.noBlock(n)
	if !l.nargs(n, 1, -1) {
		return Script{}, false
	}
	return Script{Cmd: strings.Join(n.Args, " "), Pos: n.pos()}, true
}

// items returns the entries of a list block (virtual_ipaddress,
// notification_email, ...). Each child is one entry: its key and args.
func (l *loader) items(n *node) []*node {
	if !l.needBlock(n) {
		return nil
	}
	if len(n.Args) > 0 {
		l.warnf(n, "%s: arguments before '{' ignored: %s", n.Key, strings.Join(n.Args, " "))
	}
	for _, c := range n.Children {
		if c.Block {
			l.errorf(c, "unexpected block in %s", n.Key)
		}
	}
	return n.Children
}

func words(c *node) []string { return append([]string{c.Key}, c.Args...) }

func itoa(i int) string { return strconv.Itoa(i) }

// ---- top level ----

var topTable = newTable[*Config]("top level",
	sup("global_defs", func(l *loader, n *node, c *Config) {
		if l.needBlock(n) {
			c.Global.Pos = n.pos()
			globalTable.walk(l, n, &c.Global)
		}
	}),
	sup("vrrp_instance", parseInstance),
	sup("vrrp_script", parseVRRPScript),
	sup("vrrp_track_file", parseTrackFile),
	sup("track_file", parseTrackFile, "alias of vrrp_track_file"),
	sup("vrrp_track_process", parseTrackProcess),
	sup("vrrp_sync_group", parseSyncGroup),
	parsedOnly("garp_group", parseGarpGroup, "vrrp_garp_interval / vrrp_gna_interval apply"),
	sup("virtual_server", parseVirtualServer),
	sup("virtual_server_group", parseVSGroup),
	parsedOnly("static_ipaddress", func(l *loader, n *node, c *Config) {
		for _, it := range l.items(n) {
			if v, ok := l.vip(it); ok {
				c.StaticAddresses = append(c.StaticAddresses, v)
			}
		}
	}, "parsed; vipd does not add static addresses yet (warns)"),
	parsedOnly("static_routes", func(l *loader, n *node, c *Config) {
		for _, it := range l.items(n) {
			c.StaticRoutes = append(c.StaticRoutes, l.route(it))
		}
	}, "parsed; vipd does not install routes yet (warns)"),
	parsedOnly("static_rules", func(l *loader, n *node, c *Config) {
		for _, it := range l.items(n) {
			c.StaticRules = append(c.StaticRules, Rule{Raw: words(it), Pos: it.pos()})
		}
	}, "parsed; vipd does not install rules yet (warns)"),
	parsedOnly("linkbeat_interfaces", func(l *loader, n *node, c *Config) {
		for _, it := range l.items(n) {
			c.LinkbeatInterfaces = append(c.LinkbeatInterfaces, it.Key)
		}
		l.warnf(n, "not supported by vipd: linkbeat_interfaces (vipd follows netlink link events)")
	}, "vipd always uses netlink link events"),
	sup("SSL", func(l *loader, n *node, c *Config) {
		if l.needBlock(n) {
			c.SSL.Pos = n.pos()
			sslTable.walk(l, n, &c.SSL)
		}
	}, "client credentials for SSL_GET"),
	unsup[*Config]("track_group"),
	unsup[*Config]("bfd_instance"),
	unsup[*Config]("net_namespace", "run vipd inside the namespace instead (ip netns exec)"),
	unsup[*Config]("net_namespace_ipvs"),
	unsup[*Config]("namespace_with_ipsets"),
	unsup[*Config]("instance"),
	unsup[*Config]("use_pid_dir"),
	unsup[*Config]("linkbeat_use_polling"),
	unsup[*Config]("child_wait_time"),
	unsup[*Config]("vrrp_gratuitous_arp_delay_group"),
)

func (l *loader) walkTop(root *node) { topTable.walk(l, root, l.cfg) }

var sslTable = newTable[*SSLDefs]("SSL",
	sup("password", func(l *loader, n *node, s *SSLDefs) {
		if v, ok := l.str1(n); ok {
			s.Password = v
		}
	}),
	sup("ca", func(l *loader, n *node, s *SSLDefs) {
		if v, ok := l.str1(n); ok {
			s.CA = v
		}
	}),
	sup("certificate", func(l *loader, n *node, s *SSLDefs) {
		if v, ok := l.str1(n); ok {
			s.Certificate = v
		}
	}),
	sup("key", func(l *loader, n *node, s *SSLDefs) {
		if v, ok := l.str1(n); ok {
			s.Key = v
		}
	}),
)

// ---- global_defs ----

func gBool(set func(g *GlobalDefs, v bool)) func(*loader, *node, *GlobalDefs) {
	return func(l *loader, n *node, g *GlobalDefs) {
		if v, ok := l.boolArg(n); ok {
			set(g, v)
		}
	}
}

func gTimer(lo, hi float64, set func(g *GlobalDefs, v time.Duration)) func(*loader, *node, *GlobalDefs) {
	return func(l *loader, n *node, g *GlobalDefs) {
		l.noBlock(n)
		if v, ok := l.timer(n, lo, hi); ok {
			set(g, v)
		}
	}
}

func gInt(lo, hi int, set func(g *GlobalDefs, v int)) func(*loader, *node, *GlobalDefs) {
	return func(l *loader, n *node, g *GlobalDefs) {
		l.noBlock(n)
		if v, ok := l.int1(n, lo, hi); ok {
			set(g, v)
		}
	}
}

func gStr(set func(g *GlobalDefs, v string)) func(*loader, *node, *GlobalDefs) {
	return func(l *loader, n *node, g *GlobalDefs) {
		if v, ok := l.str1(n); ok {
			set(g, v)
		}
	}
}

// garpInterval parses vrrp_garp_interval / vrrp_gna_interval. keepalived
// 2.2 rejects 0 but tutorials write it meaning "no delay", which is the
// default; accept it.
func garpInterval(set func(g *GlobalDefs, v time.Duration)) func(*loader, *node, *GlobalDefs) {
	return gTimer(0, 4294.967295, set) // keepalived: 0.000001..4294.967295
}

func globalFifo(get func(g *GlobalDefs) *Fifo, script bool) func(*loader, *node, *GlobalDefs) {
	return func(l *loader, n *node, g *GlobalDefs) {
		f := get(g)
		if script {
			if s, ok := l.script(n); ok {
				f.Script = s
			}
			return
		}
		l.noBlock(n)
		if !l.nargs(n, 1, 3) {
			return
		}
		f.Path = n.Args[0]
	}
}

var globalTable = newTable[*GlobalDefs]("global_defs",
	sup("router_id", gStr(func(g *GlobalDefs, v string) { g.RouterID = v })),
	sup("notification_email", func(l *loader, n *node, g *GlobalDefs) {
		for _, it := range l.items(n) {
			g.NotificationEmail = append(g.NotificationEmail, words(it)...)
		}
	}),
	sup("notification_email_from", gStr(func(g *GlobalDefs, v string) { g.NotificationEmailFrom = v })),
	sup("smtp_server", func(l *loader, n *node, g *GlobalDefs) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		g.SMTPServer = n.Args[0]
		if len(n.Args) > 1 {
			if p, ok := l.intArg(n, 1, 1, 65535); ok {
				g.SMTPPort = p
			}
		}
	}),
	sup("smtp_helo_name", gStr(func(g *GlobalDefs, v string) { g.SMTPHeloName = v })),
	sup("smtp_connect_timeout", gTimer(1, 3600, func(g *GlobalDefs, v time.Duration) { g.SMTPConnectTimeout = v })),
	sup("smtp_alert", gBool(func(g *GlobalDefs, v bool) { g.SMTPAlert = v })),
	sup("smtp_alert_vrrp", gBool(func(g *GlobalDefs, v bool) { g.SMTPAlertVRRP = &v })),
	sup("smtp_alert_checker", gBool(func(g *GlobalDefs, v bool) { g.SMTPAlertChecker = &v })),
	sup("no_email_faults", gBool(func(g *GlobalDefs, v bool) { g.NoEmailFaults = v })),
	sup("checker_log_all_failures", gBool(func(g *GlobalDefs, v bool) { g.CheckerLogAllFailures = v })),
	sup("script_user", func(l *loader, n *node, g *GlobalDefs) {
		l.noBlock(n)
		if l.nargs(n, 1, 2) {
			g.ScriptUser = n.Args[0]
			if len(n.Args) > 1 {
				g.ScriptGroup = n.Args[1]
			}
		}
	}),
	sup("enable_script_security", gBool(func(g *GlobalDefs, v bool) { g.EnableScriptSecurity = v })),
	sup("default_interface", gStr(func(g *GlobalDefs, v string) { g.DefaultInterface = v })),
	sup("vrrp_mcast_group4", func(l *loader, n *node, g *GlobalDefs) {
		if s, ok := l.str1(n); ok {
			if a, ok := l.addr(n, s); ok {
				if !a.Is4() || !a.IsMulticast() {
					l.errorf(n, "vrrp_mcast_group4 %s is not an IPv4 multicast address", s)
					return
				}
				g.McastGroup4 = a
			}
		}
	}),
	sup("vrrp_mcast_group6", func(l *loader, n *node, g *GlobalDefs) {
		if s, ok := l.str1(n); ok {
			if a, ok := l.addr(n, s); ok {
				if !a.Is6() || !a.IsMulticast() {
					l.errorf(n, "vrrp_mcast_group6 %s is not an IPv6 multicast address", s)
					return
				}
				g.McastGroup6 = a
			}
		}
	}),
	sup("vrrp_version", gInt(2, 3, func(g *GlobalDefs, v int) { g.VRRPVersion = v })),
	sup("vrrp_garp_master_delay", gTimer(0, 255, func(g *GlobalDefs, v time.Duration) { g.Garp.MasterDelay = v })),
	sup("vrrp_garp_master_repeat", gInt(1, 255, func(g *GlobalDefs, v int) { g.Garp.MasterRepeat = v })),
	sup("vrrp_garp_master_refresh", gTimer(0, 1<<20, func(g *GlobalDefs, v time.Duration) { g.Garp.MasterRefresh = v })),
	sup("vrrp_garp_master_refresh_repeat", gInt(1, 255, func(g *GlobalDefs, v int) { g.Garp.MasterRefreshRepeat = v })),
	unsup[*GlobalDefs]("vrrp_garp_lower_prio_delay", "the lower-priority burst is sent at once"),
	sup("vrrp_garp_lower_prio_repeat", gInt(0, 255, func(g *GlobalDefs, v int) { g.Garp.LowerPrioRepeat = v })),
	sup("vrrp_garp_interval", garpInterval(func(g *GlobalDefs, v time.Duration) { g.Garp.Interval = v }), "0 (no delay) accepted though keepalived 2.2 rejects it"),
	sup("vrrp_gna_interval", garpInterval(func(g *GlobalDefs, v time.Duration) { g.Garp.NAInterval = v }), "0 (no delay) accepted though keepalived 2.2 rejects it"),
	sup("vrrp_down_timer_adverts", gInt(1, 100, func(g *GlobalDefs, v int) { g.DownTimerAdverts = v })),
	sup("vrrp_lower_prio_no_advert", gBool(func(g *GlobalDefs, v bool) { g.LowerPrioNoAdvert = v })),
	sup("vrrp_higher_prio_send_advert", gBool(func(g *GlobalDefs, v bool) { g.HigherPrioSendAdvert = v })),
	sup("vrrp_skip_check_adv_addr", gBool(func(g *GlobalDefs, v bool) { g.SkipCheckAdvAddr = v })),
	sup("vrrp_strict", gBool(func(g *GlobalDefs, v bool) { g.Strict = v })),
	sup("vrrp_check_unicast_src", gBool(func(g *GlobalDefs, v bool) { g.CheckUnicastSrc = v })),
	sup("vrrp_notify_priority_changes", gBool(func(g *GlobalDefs, v bool) { g.NotifyPriorityChanges = v })),
	unsup[*GlobalDefs]("max_auto_priority", "vipd does not change its scheduling priority"),
	sup("dynamic_interfaces", func(l *loader, n *node, g *GlobalDefs) {
		l.noBlock(n)
		l.nargs(n, 0, 1)
		g.DynamicInterfaces = true
		if len(n.Args) > 0 {
			if n.Args[0] != "allow_if_changes" {
				l.errorf(n, "dynamic_interfaces %q: expected allow_if_changes or nothing", n.Args[0])
				return
			}
			g.DynamicInterfacesFlag = n.Args[0]
		}
	}),
	sup("notify_fifo", globalFifo(func(g *GlobalDefs) *Fifo { return &g.NotifyFifo }, false)),
	sup("notify_fifo_script", globalFifo(func(g *GlobalDefs) *Fifo { return &g.NotifyFifo }, true)),
	sup("vrrp_notify_fifo", globalFifo(func(g *GlobalDefs) *Fifo { return &g.VRRPNotifyFifo }, false)),
	sup("vrrp_notify_fifo_script", globalFifo(func(g *GlobalDefs) *Fifo { return &g.VRRPNotifyFifo }, true)),
	sup("lvs_notify_fifo", globalFifo(func(g *GlobalDefs) *Fifo { return &g.LVSNotifyFifo }, false)),
	sup("lvs_notify_fifo_script", globalFifo(func(g *GlobalDefs) *Fifo { return &g.LVSNotifyFifo }, true)),
	sup("lvs_flush", gBool(func(g *GlobalDefs, v bool) { g.LVSFlush = v })),
	unsup[*GlobalDefs]("lvs_flush_on_stop", "vipd removes the services it created on stop, unless --dont-release-ipvs"),
	sup("startup_script", func(l *loader, n *node, g *GlobalDefs) {
		if s, ok := l.script(n); ok {
			g.StartupScript = s
		}
	}),
	sup("shutdown_script", func(l *loader, n *node, g *GlobalDefs) {
		if s, ok := l.script(n); ok {
			g.ShutdownScript = s
		}
	}),
	unsup[*GlobalDefs]("startup_script_timeout"),
	unsup[*GlobalDefs]("shutdown_script_timeout"),
	unsup[*GlobalDefs]("net_namespace", "run vipd inside the namespace instead"),
	unsup[*GlobalDefs]("net_namespace_ipvs"),
	unsup[*GlobalDefs]("namespace_with_ipsets"),
	unsup[*GlobalDefs]("instance"),
	unsup[*GlobalDefs]("use_pid_dir"),
	unsup[*GlobalDefs]("linkbeat_use_polling", "vipd uses netlink link events"),
	unsup[*GlobalDefs]("child_wait_time"),
	unsup[*GlobalDefs]("tmp_config_directory"),
	unsup[*GlobalDefs]("config_save_dir"),
	unsup[*GlobalDefs]("process_names"),
	unsup[*GlobalDefs]("process_name"),
	unsup[*GlobalDefs]("vrrp_process_name"),
	unsup[*GlobalDefs]("checker_process_name"),
	unsup[*GlobalDefs]("bfd_process_name"),
	unsup[*GlobalDefs]("lvs_sync_daemon"),
	unsup[*GlobalDefs]("lvs_timeouts"),
	unsup[*GlobalDefs]("vrrp_min_garp"),
	unsup[*GlobalDefs]("vrrp_garp_extra_if"),
	unsup[*GlobalDefs]("nftables"),
	unsup[*GlobalDefs]("nftables_priority"),
	unsup[*GlobalDefs]("nftables_counters"),
	unsup[*GlobalDefs]("nftables_ifindex"),
	unsup[*GlobalDefs]("nftables_ipvs"),
	unsup[*GlobalDefs]("nftables_ipvs_priority"),
	unsup[*GlobalDefs]("nftables_ipvs_start_fwmark"),
	unsup[*GlobalDefs]("vrrp_iptables"),
	unsup[*GlobalDefs]("vrrp_ipsets"),
	unsup[*GlobalDefs]("disable_local_igmp"),
	unsup[*GlobalDefs]("min_auto_priority_delay"),
	unsup[*GlobalDefs]("vrrp_priority"),
	unsup[*GlobalDefs]("checker_priority"),
	unsup[*GlobalDefs]("bfd_priority"),
	unsup[*GlobalDefs]("vrrp_no_swap"),
	unsup[*GlobalDefs]("checker_no_swap"),
	unsup[*GlobalDefs]("bfd_no_swap"),
	unsup[*GlobalDefs]("vrrp_cpu_affinity"),
	unsup[*GlobalDefs]("checker_cpu_affinity"),
	unsup[*GlobalDefs]("bfd_cpu_affinity"),
	unsup[*GlobalDefs]("vrrp_rt_priority"),
	unsup[*GlobalDefs]("checker_rt_priority"),
	unsup[*GlobalDefs]("bfd_rt_priority"),
	unsup[*GlobalDefs]("vrrp_rlimit_rttime"),
	unsup[*GlobalDefs]("checker_rlimit_rttime"),
	unsup[*GlobalDefs]("bfd_rlimit_rttime"),
	unsup[*GlobalDefs]("snmp_socket"),
	unsup[*GlobalDefs]("enable_snmp_vrrp"),
	unsup[*GlobalDefs]("enable_snmp_keepalived"),
	unsup[*GlobalDefs]("enable_snmp_checker"),
	unsup[*GlobalDefs]("enable_snmp_rfc"),
	unsup[*GlobalDefs]("enable_snmp_rfcv2"),
	unsup[*GlobalDefs]("enable_snmp_rfcv3"),
	unsup[*GlobalDefs]("enable_traps"),
	unsup[*GlobalDefs]("enable_dbus"),
	unsup[*GlobalDefs]("dbus_service_name"),
	unsup[*GlobalDefs]("fifo_write_vrrp_states_on_reload"),
	unsup[*GlobalDefs]("vrrp_netlink_cmd_rcv_bufs"),
	unsup[*GlobalDefs]("vrrp_netlink_cmd_rcv_bufs_force"),
	unsup[*GlobalDefs]("vrrp_netlink_monitor_rcv_bufs"),
	unsup[*GlobalDefs]("vrrp_netlink_monitor_rcv_bufs_force"),
	unsup[*GlobalDefs]("lvs_netlink_cmd_rcv_bufs"),
	unsup[*GlobalDefs]("lvs_netlink_cmd_rcv_bufs_force"),
	unsup[*GlobalDefs]("lvs_netlink_monitor_rcv_bufs"),
	unsup[*GlobalDefs]("lvs_netlink_monitor_rcv_bufs_force"),
	unsup[*GlobalDefs]("process_monitor_rcv_bufs"),
	unsup[*GlobalDefs]("process_monitor_rcv_bufs_force"),
	unsup[*GlobalDefs]("vrrp_rx_bufs_policy"),
	unsup[*GlobalDefs]("vrrp_rx_bufs_multiplier"),
	unsup[*GlobalDefs]("rs_init_notifies"),
	unsup[*GlobalDefs]("no_checker_emails"),
	unsup[*GlobalDefs]("umask"),
	unsup[*GlobalDefs]("vrrp_startup_delay"),
	unsup[*GlobalDefs]("log_unknown_vrids"),
	unsup[*GlobalDefs]("vmac_prefix"),
	unsup[*GlobalDefs]("vmac_addr_prefix"),
	unsup[*GlobalDefs]("random_seed"),
	unsup[*GlobalDefs]("reload_check_config"),
	unsup[*GlobalDefs]("include_check"),
	unsup[*GlobalDefs]("reload_time_file"),
	unsup[*GlobalDefs]("reload_repeat"),
	unsup[*GlobalDefs]("reload_file"),
	unsup[*GlobalDefs]("data_use_instance"),
	unsup[*GlobalDefs]("lvs_id", "old name of router_id"),
	unsup[*GlobalDefs]("vrrp_track_process_quorum"),
	unsup[*GlobalDefs]("bfd_rlimit_rtime"),
)

// ---- vrrp_instance ----

func parseInstance(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	for _, o := range c.Instances {
		if o.Name == n.Args[0] {
			l.errorf(n, "vrrp_instance %s is already defined at %s", o.Name, o.Pos)
			return
		}
	}
	v := &VRRPInstance{Name: n.Args[0], Pos: n.pos(), Preempt: true, Accept: true}
	instanceTable.walk(l, n, v)
	c.Instances = append(c.Instances, v)
}

func iBool(key string, set func(v *VRRPInstance, b bool)) func(*loader, *node, *VRRPInstance) {
	return func(l *loader, n *node, v *VRRPInstance) {
		if b, ok := l.boolArg(n); ok {
			set(v, b)
			l.mark(v, key)
		}
	}
}

func iTimer(key string, lo, hi float64, set func(v *VRRPInstance, d time.Duration)) func(*loader, *node, *VRRPInstance) {
	return func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		if d, ok := l.timer(n, lo, hi); ok {
			set(v, d)
			l.mark(v, key)
		}
	}
}

func iInt(key string, lo, hi int, set func(v *VRRPInstance, i int)) func(*loader, *node, *VRRPInstance) {
	return func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		if i, ok := l.int1(n, lo, hi); ok {
			set(v, i)
			l.mark(v, key)
		}
	}
}

func iScript(set func(v *VRRPInstance, s Script)) func(*loader, *node, *VRRPInstance) {
	return func(l *loader, n *node, v *VRRPInstance) {
		if s, ok := l.script(n); ok {
			set(v, s)
		}
	}
}

var instanceTable = newTable[*VRRPInstance]("vrrp_instance",
	sup("state", func(l *loader, n *node, v *VRRPInstance) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		switch strings.ToUpper(s) {
		case "MASTER":
			v.State = "MASTER"
		case "BACKUP", "SLAVE":
			v.State = "BACKUP"
		default:
			l.errorf(n, "state %q: expected MASTER or BACKUP", s)
		}
	}),
	sup("interface", func(l *loader, n *node, v *VRRPInstance) {
		if s, ok := l.str1(n); ok {
			v.Interface = s
		}
	}),
	sup("dont_track_primary", iBool("dont_track_primary", func(v *VRRPInstance, b bool) { v.DontTrackPrimary = b })),
	sup("virtual_router_id", func(l *loader, n *node, v *VRRPInstance) {
		l.mark(v, "virtual_router_id given") // reported here if invalid, not again as missing
		iInt("virtual_router_id", 1, 255, func(v *VRRPInstance, i int) { v.VRID = i })(l, n, v)
	}, "1..255, unique per interface and address family"),
	sup("priority", iInt("priority", 1, 255, func(v *VRRPInstance, i int) { v.Priority = i })),
	sup("advert_int", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		if !l.nargs(n, 1, 1) {
			return
		}
		if s, ok := l.seconds(n, 0, 0, 4096); ok {
			if s == 0 {
				l.errorf(n, "advert_int 0 is out of range: it must be more than 0")
				return
			}
			if l.advert == nil {
				l.advert = map[*VRRPInstance]float64{}
			}
			l.advert[v] = s
			l.mark(v, "advert_int")
		}
	}),
	sup("version", iInt("version", 2, 3, func(v *VRRPInstance, i int) { v.Version = i })),
	sup("nopreempt", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		v.Preempt = false
		l.mark(v, "nopreempt")
	}),
	sup("preempt", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		v.Preempt = true
	}),
	sup("preempt_delay", iTimer("preempt_delay", 0, 1000, func(v *VRRPInstance, d time.Duration) { v.PreemptDelay = d })),
	sup("authentication", func(l *loader, n *node, v *VRRPInstance) {
		if !l.needBlock(n) {
			return
		}
		if l.authPos == nil {
			l.authPos = map[*VRRPInstance]*node{}
		}
		l.authPos[v] = n
		authTable.walk(l, n, v)
	}, "PASS only; AH is reported unsupported"),
	sup("unicast_src_ip", func(l *loader, n *node, v *VRRPInstance) {
		if s, ok := l.str1(n); ok {
			if a, ok := l.addr(n, s); ok {
				v.UnicastSrcIP = a
			}
		}
	}),
	sup("mcast_src_ip", func(l *loader, n *node, v *VRRPInstance) {
		if s, ok := l.str1(n); ok {
			if a, ok := l.addr(n, s); ok {
				v.McastSrcIP = a
			}
		}
	}),
	sup("mcast_dst_ip", func(l *loader, n *node, v *VRRPInstance) {
		if s, ok := l.str1(n); ok {
			if a, ok := l.addr(n, s); ok {
				if !a.IsMulticast() {
					l.errorf(n, "mcast_dst_ip %s is not a multicast address", s)
				} else if a.Is4() {
					v.McastGroup4 = a
				} else {
					v.McastGroup6 = a
				}
			}
		}
	}),
	sup("unicast_peer", func(l *loader, n *node, v *VRRPInstance) {
		its := l.items(n)
		if n.Block && len(its) == 0 {
			l.warnf(n, "unicast_peer block is empty")
		}
		for _, it := range its {
			a, ok := l.addr(it, it.Key)
			if !ok {
				continue
			}
			p := UnicastPeer{Addr: a, MaxTTL: 255, Pos: it.pos()}
			args := it.Args
			for len(args) > 0 {
				if len(args) < 2 || (args[0] != "min_ttl" && args[0] != "max_ttl") {
					l.errorf(it, "unicast_peer %s: unexpected %q (expected min_ttl N or max_ttl N)", it.Key, args[0])
					break
				}
				t, err := strconv.Atoi(args[1])
				if err != nil || t < 0 || t > 255 {
					l.errorf(it, "unicast_peer %s: %s %q is out of range 0..255", it.Key, args[0], args[1])
					break
				}
				if args[0] == "min_ttl" {
					p.MinTTL = t
				} else {
					p.MaxTTL = t
				}
				args = args[2:]
			}
			v.UnicastPeers = append(v.UnicastPeers, p)
		}
	}),
	sup("unicast_ttl", iInt("unicast_ttl", 1, 255, func(v *VRRPInstance, i int) { v.UnicastTTL = i })),
	sup("unicast_fault_no_peer", iBool("unicast_fault_no_peer", func(v *VRRPInstance, b bool) { v.UnicastFaultNoPeer = b })),
	sup("check_unicast_src", iBool("check_unicast_src", func(v *VRRPInstance, b bool) { v.CheckUnicastSrc = b })),
	sup("use_vmac", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		l.nargs(n, 0, 2)
		v.UseVMAC = true
		for _, a := range n.Args {
			if mac, err := net.ParseMAC(a); err == nil && strings.Count(a, ":") == 5 {
				v.VMACAddr = mac
			} else if v.VMACName == "" {
				if len(a) > 15 {
					l.errorf(n, "use_vmac: interface name %q is longer than 15 characters", a)
					continue
				}
				v.VMACName = a
			} else {
				l.errorf(n, "use_vmac: %q is not a MAC address", a)
			}
		}
	}),
	sup("vmac_xmit_base", iBool("vmac_xmit_base", func(v *VRRPInstance, b bool) { v.VMACXmitBase = b })),
	sup("virtual_ipaddress", func(l *loader, n *node, v *VRRPInstance) {
		for _, it := range l.items(n) {
			if ip, ok := l.vip(it); ok {
				v.VIPs = append(v.VIPs, ip)
			}
		}
	}),
	sup("virtual_ipaddress_excluded", func(l *loader, n *node, v *VRRPInstance) {
		for _, it := range l.items(n) {
			if ip, ok := l.vip(it); ok {
				v.VIPsExcluded = append(v.VIPsExcluded, ip)
			}
		}
	}),
	parsedOnly("virtual_routes", func(l *loader, n *node, v *VRRPInstance) {
		for _, it := range l.items(n) {
			v.VirtualRoutes = append(v.VirtualRoutes, l.route(it))
		}
		l.warnf(n, "not supported by vipd: virtual_routes (parsed, not installed)")
	}, "parsed but not installed (warns)"),
	parsedOnly("virtual_rules", func(l *loader, n *node, v *VRRPInstance) {
		for _, it := range l.items(n) {
			v.VirtualRules = append(v.VirtualRules, Rule{Raw: words(it), Pos: it.pos()})
		}
		l.warnf(n, "not supported by vipd: virtual_rules (parsed, not installed)")
	}, "parsed but not installed (warns)"),
	sup("promote_secondaries", iBool("promote_secondaries", func(v *VRRPInstance, b bool) { v.PromoteSecondaries = b })),
	sup("track_interface", func(l *loader, n *node, v *VRRPInstance) {
		v.Track.Interfaces = append(v.Track.Interfaces, l.trackInterfaces(n)...)
	}),
	sup("track_script", func(l *loader, n *node, v *VRRPInstance) {
		v.Track.Scripts = append(v.Track.Scripts, l.trackRefs(n)...)
	}),
	sup("track_file", func(l *loader, n *node, v *VRRPInstance) { v.Track.Files = append(v.Track.Files, l.trackRefs(n)...) }),
	sup("track_process", func(l *loader, n *node, v *VRRPInstance) {
		v.Track.Processes = append(v.Track.Processes, l.trackRefs(n)...)
	}),
	sup("notify_master", iScript(func(v *VRRPInstance, s Script) { v.Notify.Master = s })),
	sup("notify_backup", iScript(func(v *VRRPInstance, s Script) { v.Notify.Backup = s })),
	sup("notify_fault", iScript(func(v *VRRPInstance, s Script) { v.Notify.Fault = s })),
	sup("notify_stop", iScript(func(v *VRRPInstance, s Script) { v.Notify.Stop = s })),
	sup("notify_deleted", iScript(func(v *VRRPInstance, s Script) { v.Notify.Deleted = s })),
	sup("notify", iScript(func(v *VRRPInstance, s Script) { v.Notify.Generic = s })),
	sup("notify_master_rx_lower_pri", iScript(func(v *VRRPInstance, s Script) { v.Notify.MasterRxLowerPri = s })),
	sup("notify_priority_changes", iBool("notify_priority_changes", func(v *VRRPInstance, b bool) { v.Notify.Priority = b })),
	sup("smtp_alert", iBool("smtp_alert", func(v *VRRPInstance, b bool) { v.SMTPAlert = b })),
	sup("garp_master_delay", iTimer("garp_master_delay", 0, 255, func(v *VRRPInstance, d time.Duration) { v.Garp.MasterDelay = d })),
	sup("garp_master_repeat", iInt("garp_master_repeat", 1, 255, func(v *VRRPInstance, i int) { v.Garp.MasterRepeat = i })),
	sup("garp_master_refresh", iTimer("garp_master_refresh", 0, 1<<20, func(v *VRRPInstance, d time.Duration) { v.Garp.MasterRefresh = d })),
	sup("garp_master_refresh_repeat", iInt("garp_master_refresh_repeat", 1, 255, func(v *VRRPInstance, i int) { v.Garp.MasterRefreshRepeat = i })),
	unsup[*VRRPInstance]("garp_lower_prio_delay", "the lower-priority burst is sent at once"),
	sup("garp_lower_prio_repeat", iInt("garp_lower_prio_repeat", 0, 255, func(v *VRRPInstance, i int) { v.Garp.LowerPrioRepeat = i })),
	sup("down_timer_adverts", iInt("down_timer_adverts", 1, 100, func(v *VRRPInstance, i int) { v.DownTimerAdverts = i })),
	sup("lower_prio_no_advert", iBool("lower_prio_no_advert", func(v *VRRPInstance, b bool) { v.LowerPrioNoAdvert = b })),
	sup("higher_prio_send_advert", iBool("higher_prio_send_advert", func(v *VRRPInstance, b bool) { v.HigherPrioSendAdvert = b })),
	sup("accept", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		v.Accept = true
		l.mark(v, "accept")
	}),
	sup("no_accept", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		v.Accept = false
		l.mark(v, "no_accept")
	}),
	sup("skip_check_adv_addr", iBool("skip_check_adv_addr", func(v *VRRPInstance, b bool) { v.SkipCheckAdvAddr = b })),
	sup("strict_mode", iBool("strict_mode", func(v *VRRPInstance, b bool) { v.StrictMode = b })),
	unsup[*VRRPInstance]("debug", "use -D / --log-detail"),
	unsup[*VRRPInstance]("lvs_sync_daemon_interface", "old keyword; keepalived wants global lvs_sync_daemon"),
	unsup[*VRRPInstance]("use_vmac_addr"),
	unsup[*VRRPInstance]("use_ipvlan"),
	unsup[*VRRPInstance]("vrf"),
	unsup[*VRRPInstance]("native_ipv6"),
	unsup[*VRRPInstance]("track_bfd"),
	unsup[*VRRPInstance]("track_src_ip"),
	unsup[*VRRPInstance]("old_unicast_checksum"),
	unsup[*VRRPInstance]("garp_extra_if"),
	unsup[*VRRPInstance]("garp_extra_if_vmac"),
	unsup[*VRRPInstance]("kernel_rx_buf_size"),
	unsup[*VRRPInstance]("linkbeat_use_polling", "vipd uses netlink link events"),
)

var authTable = newTable[*VRRPInstance]("authentication",
	sup("auth_type", func(l *loader, n *node, v *VRRPInstance) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		switch strings.ToUpper(s) {
		case "PASS":
			v.Auth.Type = "PASS"
		case "AH":
			l.warnf(n, "not supported by vipd: auth_type AH (IPsec AH); no authentication is used")
		default:
			l.errorf(n, "auth_type %q: expected PASS or AH", s)
		}
	}, "PASS (RFC 3768 section 5.3.6.1); AH warns"),
	sup("auth_pass", func(l *loader, n *node, v *VRRPInstance) {
		l.noBlock(n)
		if !l.nargs(n, 1, -1) {
			return
		}
		p := n.Args[0]
		if len(n.Args) > 1 {
			l.warnf(n, "auth_pass: only the first word is used")
		}
		if len(p) > 8 {
			l.warnf(n, "auth_pass truncated to 8 characters")
			p = p[:8]
		}
		v.Auth.Pass = [8]byte{}
		copy(v.Auth.Pass[:], p)
	}),
)

// vip parses `ADDR[/LEN] [dev DEV] [brd BRD|+|-] [scope SCOPE] [label L]
// [peer ADDR[/LEN]] [noprefixroute] [nodad] ...`.
func (l *loader) vip(it *node) (VIP, bool) {
	p, err := parsePrefix(it.Key)
	if err != nil {
		l.errorf(it, "virtual address: %v", err)
		return VIP{}, false
	}
	v := VIP{Prefix: netip.PrefixFrom(p.Addr().Unmap(), p.Bits()), Pos: it.pos()}
	a := it.Args
	for i := 0; i < len(a); i++ {
		opt := a[i]
		needVal := func() (string, bool) {
			if i+1 >= len(a) {
				l.errorf(it, "virtual address %s: %s needs a value", it.Key, opt)
				return "", false
			}
			i++
			return a[i], true
		}
		switch opt {
		case "dev":
			if s, ok := needVal(); ok {
				v.Dev = s
			}
		case "brd", "broadcast":
			s, ok := needVal()
			if !ok {
				continue
			}
			switch s {
			case "+":
				v.BrdAuto = true
			case "-":
			default:
				b, err := netip.ParseAddr(s)
				if err != nil || !b.Is4() {
					l.errorf(it, "virtual address %s: brd %q is not an IPv4 address", it.Key, s)
					continue
				}
				v.Brd = b
			}
		case "scope":
			if s, ok := needVal(); ok {
				switch s {
				case "global", "site", "link", "host", "nowhere":
					v.Scope = s
				default:
					if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= 255 {
						v.Scope = s
					} else {
						l.errorf(it, "virtual address %s: scope %q: expected global, site, link, host or nowhere", it.Key, s)
					}
				}
			}
		case "label":
			if s, ok := needVal(); ok {
				if len(s) > 15 {
					l.errorf(it, "virtual address %s: label %q is longer than 15 characters", it.Key, s)
					continue
				}
				v.Label = s
			}
		case "peer":
			if s, ok := needVal(); ok {
				pp, err := parsePrefix(s)
				if err != nil {
					l.errorf(it, "virtual address %s: peer %v", it.Key, err)
					continue
				}
				v.Peer = pp
			}
		case "noprefixroute":
			v.NoPrefixRoute = true
		case "nodad":
			v.NoDAD = true
		case "home", "autojoin", "no_track":
			l.warnf(it, "not supported by vipd: virtual address option %s (ignored)", opt)
		case "track_group", "preferred_lft", "valid_lft":
			needVal()
			l.warnf(it, "not supported by vipd: virtual address option %s (ignored)", opt)
		default:
			l.errorf(it, "virtual address %s: unknown option %q (expected dev, brd, scope, label, peer, noprefixroute)", it.Key, opt)
		}
	}
	if v.Label != "" && v.Prefix.Addr().Is6() {
		l.warnf(it, "virtual address %s: label is ignored for IPv6", it.Key)
		v.Label = ""
	}
	return v, true
}

// route parses a route line loosely: vipd does not install routes yet, so
// problems are warnings, and Raw keeps what was written.
func (l *loader) route(it *node) Route {
	r := Route{Raw: words(it), Pos: it.pos()}
	w := words(it)
	for i := 0; i < len(w); i++ {
		val := func() string {
			if i+1 < len(w) {
				i++
				return w[i]
			}
			return ""
		}
		switch w[i] {
		case "src":
			r.Src, _ = netip.ParseAddr(val())
		case "via", "gw":
			r.Via, _ = netip.ParseAddr(val())
		case "dev", "oif":
			r.Dev = val()
		case "scope":
			r.Scope = val()
		case "table":
			r.Table = val()
		case "metric", "preference", "priority":
			r.Metric, _ = strconv.Atoi(val())
		case "blackhole", "unreachable", "prohibit", "throw":
			r.Type = w[i]
		case "to":
			if p, err := parsePrefix(val()); err == nil {
				r.Dest = p
			}
		default:
			if !r.Dest.IsValid() {
				if p, err := parsePrefix(w[i]); err == nil {
					r.Dest = p
				}
			}
		}
	}
	if !r.Dest.IsValid() {
		l.warnf(it, "route %q has no destination prefix", strings.Join(w, " "))
	}
	return r
}

// trackInterfaces parses track_interface { IF [weight N [reverse]] }.
func (l *loader) trackInterfaces(n *node) []TrackInterface {
	var out []TrackInterface
	for _, it := range l.items(n) {
		t := TrackInterface{Name: it.Key, Pos: it.pos()}
		t.Weight, _, t.Reverse = l.weightOpts(it, it.Args)
		out = append(out, t)
	}
	return out
}

// trackRefs parses track_script/track_file/track_process { NAME [weight N [reverse]] }.
func (l *loader) trackRefs(n *node) []TrackRef {
	var out []TrackRef
	for _, it := range l.items(n) {
		t := TrackRef{Name: it.Key, Pos: it.pos()}
		t.Weight, t.WeightSet, t.Reverse = l.weightOpts(it, it.Args)
		out = append(out, t)
	}
	return out
}

// weightOpts parses `[weight N [reverse]]`; keepalived's range is
// -253..253 (so that 1 + 253 stays below the owner's 255).
func (l *loader) weightOpts(it *node, a []string) (w int, set, rev bool) {
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case "weight":
			if i+1 >= len(a) {
				l.errorf(it, "%s: weight needs a value", it.Key)
				return
			}
			i++
			v, err := strconv.Atoi(a[i])
			if err != nil || v < -253 || v > 253 {
				l.errorf(it, "%s: weight %s is out of range -253..253", it.Key, a[i])
				return
			}
			w, set = v, true
		case "reverse":
			rev = true
		case "noreverse":
			rev = false
		default:
			l.errorf(it, "%s: unexpected %q (expected weight N [reverse])", it.Key, a[i])
			return
		}
	}
	return
}

// ---- vrrp_script, track_file, track_process ----

func parseVRRPScript(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	if o, dup := c.Scripts[n.Args[0]]; dup {
		l.errorf(n, "vrrp_script %s is already defined at %s", o.Name, o.Pos)
		return
	}
	s := &VRRPScript{Name: n.Args[0], Interval: time.Second, Rise: 1, Fall: 1, Pos: n.pos()}
	scriptTable.walk(l, n, s)
	if !s.Script.IsSet() {
		// keepalived: "No script set for vrrp_script X - removing"; the
		// instances tracking it then warn that it is not defined.
		l.warnf(n, "vrrp_script %s has no script; removing it", s.Name)
		return
	}
	c.Scripts[s.Name] = s
}

var scriptTable = newTable[*VRRPScript]("vrrp_script",
	sup("script", func(l *loader, n *node, s *VRRPScript) {
		if sc, ok := l.scriptAll(n); ok {
			s.Script.Cmd, s.Script.Pos = sc.Cmd, sc.Pos
		}
	}),
	sup("interval", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0.000001, 1<<20); ok {
			s.Interval = d
		}
	}),
	sup("timeout", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0.000001, 1<<20); ok {
			s.Timeout = d
		}
	}),
	sup("weight", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		if w, ok := l.intArg(n, 0, -253, 253); ok {
			s.Weight = w
		}
		if len(n.Args) > 1 {
			if n.Args[1] != "reverse" {
				l.errorf(n, "weight: unexpected %q (expected reverse)", n.Args[1])
				return
			}
			s.Reverse = true
		}
	}),
	sup("rise", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if v, ok := l.int1(n, 1, 1<<20); ok {
			s.Rise = v
		}
	}),
	sup("fall", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if v, ok := l.int1(n, 1, 1<<20); ok {
			s.Fall = v
		}
	}),
	sup("user", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		if l.nargs(n, 1, 2) {
			s.Script.User = n.Args[0]
			if len(n.Args) > 1 {
				s.Script.Group = n.Args[1]
			}
		}
	}),
	sup("init_fail", func(l *loader, n *node, s *VRRPScript) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		s.InitFail = true
	}),
)

func parseTrackFile(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	if o, dup := c.TrackFiles[n.Args[0]]; dup {
		l.errorf(n, "%s %s is already defined at %s", n.Key, o.Name, o.Pos)
		return
	}
	f := &TrackFileDef{Name: n.Args[0], Weight: 1, Pos: n.pos()}
	trackFileTable.walk(l, n, f)
	if f.Path == "" {
		l.errorf(n, "%s %s has no file", n.Key, f.Name)
		return
	}
	c.TrackFiles[f.Name] = f
}

var trackFileTable = newTable[*TrackFileDef]("vrrp_track_file",
	sup("file", func(l *loader, n *node, f *TrackFileDef) {
		if s, ok := l.str1(n); ok {
			f.Path = s
		}
	}),
	sup("weight", func(l *loader, n *node, f *TrackFileDef) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		if w, ok := l.intArg(n, 0, -254, 254); ok {
			f.Weight = w
		}
		if len(n.Args) > 1 {
			f.Reverse = n.Args[1] == "reverse"
			if !f.Reverse {
				l.errorf(n, "weight: unexpected %q (expected reverse)", n.Args[1])
			}
		}
	}),
	sup("init_file", func(l *loader, n *node, f *TrackFileDef) {
		l.noBlock(n)
		f.InitFile = true
		a := n.Args
		if len(a) > 0 {
			if v, err := strconv.Atoi(a[0]); err == nil {
				f.InitValue = v
				a = a[1:]
			}
		}
		for _, w := range a {
			if w != "overwrite" {
				l.errorf(n, "init_file: unexpected %q (expected [VALUE] [overwrite])", w)
				return
			}
			f.InitOverwrite = true
		}
	}),
)

func parseTrackProcess(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	if o, dup := c.TrackProcesses[n.Args[0]]; dup {
		l.errorf(n, "vrrp_track_process %s is already defined at %s", o.Name, o.Pos)
		return
	}
	p := &TrackProcessDef{Name: n.Args[0], Weight: 0, Quorum: 1, Pos: n.pos()}
	trackProcessTable.walk(l, n, p)
	if p.Process == "" {
		l.errorf(n, "vrrp_track_process %s has no process", p.Name)
		return
	}
	if p.QuorumMax != 0 && p.QuorumMax < p.Quorum {
		l.errorf(n, "vrrp_track_process %s: quorum_max %d is less than quorum %d", p.Name, p.QuorumMax, p.Quorum)
		return
	}
	c.TrackProcesses[p.Name] = p
}

var trackProcessTable = newTable[*TrackProcessDef]("vrrp_track_process",
	sup("process", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if l.nargs(n, 1, -1) {
			p.Process = n.Args[0]
			p.Param = append([]string(nil), n.Args[1:]...)
		}
	}),
	sup("param_match", func(l *loader, n *node, p *TrackProcessDef) {
		if s, ok := l.str1(n); ok {
			if s != "initial" && s != "partial" {
				l.errorf(n, "param_match %q: expected initial or partial", s)
				return
			}
			p.ParamMatch = s
		}
	}),
	sup("weight", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		if w, ok := l.intArg(n, 0, -254, 254); ok {
			p.Weight = w
		}
		if len(n.Args) > 1 {
			p.Reverse = n.Args[1] == "reverse"
			if !p.Reverse {
				l.errorf(n, "weight: unexpected %q (expected reverse)", n.Args[1])
			}
		}
	}),
	sup("quorum", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if v, ok := l.int1(n, 1, 65535); ok {
			p.Quorum = v
		}
	}),
	sup("quorum_max", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if v, ok := l.int1(n, 1, 65535); ok {
			p.QuorumMax = v
		}
	}),
	sup("fork_delay", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0, 3600); ok {
			p.ForkDelay = d
		}
	}),
	sup("terminate_delay", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0, 3600); ok {
			p.TerminateDelay = d
		}
	}),
	sup("delay", func(l *loader, n *node, p *TrackProcessDef) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0, 3600); ok {
			p.Delay = d
		}
	}),
	sup("full_command", func(l *loader, n *node, p *TrackProcessDef) {
		if b, ok := l.boolArg(n); ok {
			p.FullCommand = b
		}
	}),
)

// ---- vrrp_sync_group, garp_group ----

func parseSyncGroup(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	for _, o := range c.SyncGroups {
		if o.Name == n.Args[0] {
			l.errorf(n, "vrrp_sync_group %s is already defined at %s", o.Name, o.Pos)
			return
		}
	}
	g := &SyncGroup{Name: n.Args[0], Pos: n.pos()}
	syncGroupTable.walk(l, n, g)
	c.SyncGroups = append(c.SyncGroups, g)
}

func gsScript(set func(g *SyncGroup, s Script)) func(*loader, *node, *SyncGroup) {
	return func(l *loader, n *node, g *SyncGroup) {
		if s, ok := l.script(n); ok {
			set(g, s)
		}
	}
}

var syncGroupTable = newTable[*SyncGroup]("vrrp_sync_group",
	sup("group", func(l *loader, n *node, g *SyncGroup) {
		for _, it := range l.items(n) {
			g.Members = append(g.Members, words(it)...)
		}
	}),
	sup("track_interface", func(l *loader, n *node, g *SyncGroup) {
		g.Track.Interfaces = append(g.Track.Interfaces, l.trackInterfaces(n)...)
	}),
	sup("track_script", func(l *loader, n *node, g *SyncGroup) { g.Track.Scripts = append(g.Track.Scripts, l.trackRefs(n)...) }),
	sup("track_file", func(l *loader, n *node, g *SyncGroup) { g.Track.Files = append(g.Track.Files, l.trackRefs(n)...) }),
	sup("track_process", func(l *loader, n *node, g *SyncGroup) {
		g.Track.Processes = append(g.Track.Processes, l.trackRefs(n)...)
	}),
	unsup[*SyncGroup]("track_bfd"),
	sup("notify_master", gsScript(func(g *SyncGroup, s Script) { g.Notify.Master = s })),
	sup("notify_backup", gsScript(func(g *SyncGroup, s Script) { g.Notify.Backup = s })),
	sup("notify_fault", gsScript(func(g *SyncGroup, s Script) { g.Notify.Fault = s })),
	sup("notify_stop", gsScript(func(g *SyncGroup, s Script) { g.Notify.Stop = s })),
	sup("notify_deleted", gsScript(func(g *SyncGroup, s Script) { g.Notify.Deleted = s })),
	sup("notify", gsScript(func(g *SyncGroup, s Script) { g.Notify.Generic = s })),
	sup("notify_priority_changes", func(l *loader, n *node, g *SyncGroup) {
		if b, ok := l.boolArg(n); ok {
			g.Notify.Priority = b
		}
	}),
	sup("smtp_alert", func(l *loader, n *node, g *SyncGroup) {
		if b, ok := l.boolArg(n); ok {
			g.SMTPAlert = b
		}
	}),
	sup("global_tracking", func(l *loader, n *node, g *SyncGroup) {
		l.noBlock(n)
		g.GlobalTracking = true
	}, "deprecated in keepalived; accepted"),
	sup("sync_group_tracking_weight", func(l *loader, n *node, g *SyncGroup) {
		l.noBlock(n)
		g.TrackingWeight = true
	}),
)

func parseGarpGroup(l *loader, n *node, c *Config) {
	if !l.needBlock(n) {
		return
	}
	g := &GarpGroup{Pos: n.pos()}
	garpGroupTable.walk(l, n, g)
	c.GarpGroups = append(c.GarpGroups, g)
	l.warnf(n, "not supported by vipd: garp_group (parsed; vrrp_garp_interval applies)")
}

var garpGroupTable = newTable[*GarpGroup]("garp_group",
	sup("garp_interval", func(l *loader, n *node, g *GarpGroup) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0, 4294.967295); ok {
			g.Interval = d
		}
	}),
	sup("gna_interval", func(l *loader, n *node, g *GarpGroup) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0, 4294.967295); ok {
			g.NAInterval = d
		}
	}),
	sup("interface", func(l *loader, n *node, g *GarpGroup) {
		if s, ok := l.str1(n); ok {
			g.Interface = s
		}
	}),
	sup("interfaces", func(l *loader, n *node, g *GarpGroup) {
		for _, it := range l.items(n) {
			g.Interfaces = append(g.Interfaces, words(it)...)
		}
	}),
)

// sortedKeys returns a map's keys in order (dump and finish need a stable
// order).
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}

// ---- virtual_server, real_server, checkers ----

// ipvsSchedulers are the schedulers Linux IPVS has (ip_vs_*.ko); whether
// the running kernel has one is checked when programming it.
var ipvsSchedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf", "twos"}

// unsetCommon marks every inheritable checker setting as not given.
func unsetCommon() CheckerCommon {
	return CheckerCommon{ConnectTimeout: -1, Retry: -1, DelayBeforeRetry: -1, Warmup: -1, DelayLoop: -1}
}

func parseVirtualServer(l *loader, n *node, c *Config) {
	if !l.needBlock(n) || !l.nargs(n, 1, 2) {
		return
	}
	vs := &VirtualServer{Protocol: "TCP", Sched: "wlc", Method: "NAT", Quorum: 1, DelayLoop: 60 * time.Second,
		Checker: unsetCommon(), Pos: n.pos()}
	switch n.Args[0] {
	case "fwmark":
		if m, ok := l.intArg(n, 1, 1, math.MaxUint32); ok {
			vs.FWMark = m
		}
	case "group":
		if l.nargs(n, 2, 2) {
			vs.Group = n.Args[1]
		}
	default:
		a, ok := l.addr(n, n.Args[0])
		if !ok {
			return
		}
		vs.Addr = a
		vs.Family = 4
		if a.Is6() {
			vs.Family = 6
		}
		if len(n.Args) > 1 {
			if p, ok := l.intArg(n, 1, 0, 65535); ok {
				vs.Port = p
			}
		}
	}
	vsTable.walk(l, n, vs)
	c.VirtualServers = append(c.VirtualServers, vs)
}

// schedOrMethod parses lb_algo/lvs_sched and lb_kind/lvs_method.
func (l *loader) sched(n *node) (string, bool) {
	s, ok := l.str1(n)
	if !ok {
		return "", false
	}
	for _, k := range ipvsSchedulers {
		if s == k {
			return s, true
		}
	}
	l.errorf(n, "%s %q is not an IPVS scheduler (expected one of %s)", n.Key, s, strings.Join(ipvsSchedulers, " "))
	return "", false
}

func (l *loader) method(n *node) (m, tunType string, tunPort int, csum string, ok bool) {
	l.noBlock(n)
	if !l.nargs(n, 1, -1) {
		return
	}
	m = strings.ToUpper(n.Args[0])
	switch m {
	case "NAT", "DR", "TUN":
	case "PMTUD", "LOCAL":
		l.warnf(n, "not supported by vipd: %s %s", n.Key, n.Args[0])
		return "", "", 0, "", false
	default:
		l.errorf(n, "%s %q: expected NAT, DR or TUN", n.Key, n.Args[0])
		return "", "", 0, "", false
	}
	a := n.Args[1:]
	if len(a) > 0 && m != "TUN" {
		l.errorf(n, "%s %s takes no options", n.Key, m)
		return "", "", 0, "", false
	}
	for i := 0; i < len(a); i++ {
		switch a[i] {
		case "type":
			if i+1 >= len(a) {
				l.errorf(n, "%s TUN: type needs ipip, gue or gre", n.Key)
				return "", "", 0, "", false
			}
			i++
			switch a[i] {
			case "ipip", "gue", "gre":
				tunType = a[i]
			default:
				l.errorf(n, "%s TUN: type %q: expected ipip, gue or gre", n.Key, a[i])
				return "", "", 0, "", false
			}
		case "port":
			if i+1 >= len(a) {
				l.errorf(n, "%s TUN: port needs a number", n.Key)
				return "", "", 0, "", false
			}
			i++
			p, err := strconv.Atoi(a[i])
			if err != nil || p < 1 || p > 65535 {
				l.errorf(n, "%s TUN: port %q is out of range 1..65535", n.Key, a[i])
				return "", "", 0, "", false
			}
			tunPort = p
		case "nocsum", "csum", "remcsum":
			csum = a[i]
		default:
			l.errorf(n, "%s TUN: unexpected %q", n.Key, a[i])
			return "", "", 0, "", false
		}
	}
	if tunType == "gue" && tunPort == 0 {
		l.errorf(n, "%s TUN type gue needs a port", n.Key)
		return "", "", 0, "", false
	}
	return m, tunType, tunPort, csum, true
}

// commonKws are the checker settings a virtual_server, real_server or
// checker may give; get finds the CheckerCommon in each.
func commonKws[T any](get func(T) *CheckerCommon) []kw[T] {
	return append([]kw[T]{connectTimeoutKw(get)}, timingKws(get)...)
}

func connectTimeoutKw[T any](get func(T) *CheckerCommon) kw[T] {
	return sup("connect_timeout", func(l *loader, n *node, t T) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0.000001, 1<<20); ok {
			get(t).ConnectTimeout = d
		}
	})
}

// timingKws are the retry and delay settings every checker has.
func timingKws[T any](get func(T) *CheckerCommon) []kw[T] {
	return []kw[T]{
		sup("retry", func(l *loader, n *node, t T) {
			l.noBlock(n)
			if v, ok := l.int1(n, 0, 1<<20); ok {
				get(t).Retry = v
			}
		}),
		sup("nb_get_retry", func(l *loader, n *node, t T) {
			l.noBlock(n)
			if v, ok := l.int1(n, 0, 1<<20); ok {
				get(t).Retry = v
			}
		}, "old name of retry"),
		sup("delay_before_retry", func(l *loader, n *node, t T) {
			l.noBlock(n)
			if d, ok := l.timer(n, 0, 1<<20); ok {
				get(t).DelayBeforeRetry = d
			}
		}),
		sup("warmup", func(l *loader, n *node, t T) {
			l.noBlock(n)
			if d, ok := l.timer(n, 0, 1<<20); ok {
				get(t).Warmup = d
			}
		}),
		sup("delay_loop", func(l *loader, n *node, t T) {
			l.noBlock(n)
			if d, ok := l.timer(n, 0.000001, 1<<20); ok {
				get(t).DelayLoop = d
			}
		}),
	}
}

func vsKws(k ...kw[*VirtualServer]) []kw[*VirtualServer] {
	return append(commonKws(func(v *VirtualServer) *CheckerCommon { return &v.Checker }), k...)
}

func vsBool(set func(v *VirtualServer, b bool)) func(*loader, *node, *VirtualServer) {
	return func(l *loader, n *node, v *VirtualServer) {
		if b, ok := l.boolArg(n); ok {
			set(v, b)
		}
	}
}

func vsFlag(flag string) func(*loader, *node, *VirtualServer) {
	return func(l *loader, n *node, v *VirtualServer) {
		l.noBlock(n)
		l.nargs(n, 0, 0)
		v.SchedFlags = append(v.SchedFlags, flag)
	}
}

var vsTable = newTable[*VirtualServer]("virtual_server", vsKws(
	sup("lb_algo", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.sched(n); ok {
			v.Sched = s
		}
	}, "same as lvs_sched"),
	sup("lvs_sched", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.sched(n); ok {
			v.Sched = s
		}
	}),
	sup("lb_kind", func(l *loader, n *node, v *VirtualServer) {
		if m, tt, tp, cs, ok := l.method(n); ok {
			v.Method, v.TunnelType, v.TunnelPort, v.TunnelCsum = m, tt, tp, cs
		}
	}, "same as lvs_method"),
	sup("lvs_method", func(l *loader, n *node, v *VirtualServer) {
		if m, tt, tp, cs, ok := l.method(n); ok {
			v.Method, v.TunnelType, v.TunnelPort, v.TunnelCsum = m, tt, tp, cs
		}
	}, "NAT, DR, TUN [type ipip|gue|gre] [port N] [csum]"),
	sup("sh-port", vsFlag("sh-port")),
	sup("sh-fallback", vsFlag("sh-fallback")),
	sup("mh-port", vsFlag("mh-port")),
	sup("mh-fallback", vsFlag("mh-fallback")),
	sup("flag-1", vsFlag("flag-1")),
	sup("flag-2", vsFlag("flag-2")),
	sup("flag-3", vsFlag("flag-3")),
	sup("ops", vsBool(func(v *VirtualServer, b bool) { v.OPS = b })),
	sup("protocol", func(l *loader, n *node, v *VirtualServer) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		switch strings.ToUpper(s) {
		case "TCP", "UDP", "SCTP":
			v.Protocol = strings.ToUpper(s)
		default:
			l.errorf(n, "protocol %q: expected TCP, UDP or SCTP", s)
		}
	}),
	sup("persistence_timeout", func(l *loader, n *node, v *VirtualServer) {
		l.noBlock(n)
		if len(n.Args) == 0 {
			v.PersistenceTimeout = 6 * time.Minute // keepalived's default when no value is given
			return
		}
		if d, ok := l.timer(n, 1, math.MaxUint32); ok {
			v.PersistenceTimeout = d
		}
	}),
	sup("persistence_granularity", func(l *loader, n *node, v *VirtualServer) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		// A prefix length (IPv6 services) or a netmask (IPv4).
		if bits, err := strconv.Atoi(s); err == nil && bits >= 1 && bits <= 128 {
			var m [16]byte
			for i := 0; i < bits; i++ {
				m[i/8] |= 0x80 >> (i % 8)
			}
			v.PersistenceGranularity = netip.AddrFrom16(m)
			return
		}
		if a, ok := l.addr(n, s); ok {
			v.PersistenceGranularity = a
		}
	}),
	sup("persistence_engine", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.str1(n); ok {
			v.PersistenceEngine = s
		}
	}),
	sup("ha_suspend", vsBool(func(v *VirtualServer, b bool) { v.HASuspend = b })),
	sup("virtualhost", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.str1(n); ok {
			v.Virtualhost = s
		}
	}),
	sup("alpha", vsBool(func(v *VirtualServer, b bool) { v.Alpha = b })),
	sup("omega", vsBool(func(v *VirtualServer, b bool) { v.Omega = b })),
	sup("quorum", func(l *loader, n *node, v *VirtualServer) {
		l.noBlock(n)
		if q, ok := l.int1(n, 1, math.MaxInt32); ok {
			v.Quorum = q
		}
	}),
	sup("quorum_up", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.script(n); ok {
			v.QuorumUp = s
		}
	}),
	sup("quorum_down", func(l *loader, n *node, v *VirtualServer) {
		if s, ok := l.script(n); ok {
			v.QuorumDown = s
		}
	}),
	sup("hysteresis", func(l *loader, n *node, v *VirtualServer) {
		l.noBlock(n)
		if q, ok := l.int1(n, 0, math.MaxInt32); ok {
			v.Hysteresis = q
		}
	}),
	sup("inhibit_on_failure", vsBool(func(v *VirtualServer, b bool) { v.InhibitOnFailure = b })),
	sup("smtp_alert", vsBool(func(v *VirtualServer, b bool) { v.SMTPAlert = b })),
	sup("sorry_server", func(l *loader, n *node, v *VirtualServer) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		a, ok := l.addr(n, n.Args[0])
		if !ok {
			return
		}
		rs := &RealServer{Addr: a, Weight: 1, Checker: unsetCommon(), Pos: n.pos()}
		if len(n.Args) > 1 {
			if p, ok := l.intArg(n, 1, 0, 65535); ok {
				rs.Port = p
			}
		}
		v.SorryServer = rs
	}),
	sup("sorry_server_inhibit", vsBool(func(v *VirtualServer, b bool) { v.SorryServerInhibit = b })),
	sup("sorry_server_lvs_method", func(l *loader, n *node, v *VirtualServer) {
		if m, _, _, _, ok := l.method(n); ok {
			if v.SorryServer == nil {
				l.errorf(n, "sorry_server_lvs_method before sorry_server")
				return
			}
			v.SorryServer.Method = m
		}
	}),
	sup("ip_family", func(l *loader, n *node, v *VirtualServer) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		switch s {
		case "inet":
			v.Family = 4
		case "inet6":
			v.Family = 6
		default:
			l.errorf(n, "ip_family %q: expected inet or inet6", s)
		}
	}),
	sup("real_server", parseRealServer),
	unsup[*VirtualServer]("snmp_name"),
	unsup[*VirtualServer]("nat_mask", "old keyword"),
	unsup[*VirtualServer]("syn_proxy"),
)...)

func parseRealServer(l *loader, n *node, vs *VirtualServer) {
	if !l.nargs(n, 1, 2) {
		return
	}
	a, ok := l.addr(n, n.Args[0])
	if !ok {
		return
	}
	rs := &RealServer{Addr: a, Port: vs.Port, Weight: 1, Checker: unsetCommon(), Pos: n.pos()}
	if len(n.Args) > 1 {
		if p, ok := l.intArg(n, 1, 0, 65535); ok {
			rs.Port = p
		}
	}
	rsTable.walk(l, n, rs)
	vs.RealServers = append(vs.RealServers, rs)
}

func rsKws(k ...kw[*RealServer]) []kw[*RealServer] {
	return append(commonKws(func(r *RealServer) *CheckerCommon { return &r.Checker }), k...)
}

func rsBool(set func(r *RealServer, b bool)) func(*loader, *node, *RealServer) {
	return func(l *loader, n *node, r *RealServer) {
		if b, ok := l.boolArg(n); ok {
			set(r, b)
		}
	}
}

func checkerKw(typ string, t *table[*Checker], note ...string) kw[*RealServer] {
	return sup(typ, func(l *loader, n *node, r *RealServer) {
		if !l.needBlock(n) {
			return
		}
		ck := &Checker{Type: typ, CheckerCommon: unsetCommon(), Pos: n.pos()}
		switch typ {
		case "FILE_CHECK":
			ck.FileWeight = 1
		case "DNS_CHECK":
			ck.DNSType, ck.DNSName = "SOA", "."
		case "UDP_CHECK":
			ck.MaxReplyLength = 0
		}
		t.walk(l, n, ck)
		if (typ == "HTTP_GET" || typ == "SSL_GET") && len(ck.URLs) == 0 {
			l.errorf(n, "%s has no url { path ... }", typ)
			return
		}
		if typ == "MISC_CHECK" && !ck.Misc.IsSet() {
			l.errorf(n, "MISC_CHECK has no misc_path")
			return
		}
		if typ == "FILE_CHECK" && ck.TrackFile == "" {
			l.errorf(n, "FILE_CHECK has no track_file")
			return
		}
		if len(ck.smtpHosts) == 0 {
			r.Checkers = append(r.Checkers, ck)
			return
		}
		for _, h := range ck.smtpHosts {
			c := *ck
			c.smtpHosts = nil
			c.Pos = h.Pos
			c.CheckerCommon = overrideCommon(ck.CheckerCommon, h.CheckerCommon)
			r.Checkers = append(r.Checkers, &c)
		}
	}, note...)
}

var rsTable = newTable[*RealServer]("real_server", rsKws(
	sup("weight", func(l *loader, n *node, r *RealServer) {
		l.noBlock(n)
		if w, ok := l.int1(n, 0, math.MaxInt32); ok {
			r.Weight = w
		}
	}),
	sup("lvs_method", func(l *loader, n *node, r *RealServer) {
		if m, _, _, _, ok := l.method(n); ok {
			r.Method = m
		}
	}),
	sup("lb_kind", func(l *loader, n *node, r *RealServer) {
		if m, _, _, _, ok := l.method(n); ok {
			r.Method = m
		}
	}),
	sup("inhibit_on_failure", rsBool(func(r *RealServer, b bool) { r.InhibitOnFailure = b })),
	sup("notify_up", func(l *loader, n *node, r *RealServer) {
		if s, ok := l.script(n); ok {
			r.NotifyUp = s
		}
	}),
	sup("notify_down", func(l *loader, n *node, r *RealServer) {
		if s, ok := l.script(n); ok {
			r.NotifyDown = s
		}
	}),
	sup("uthreshold", func(l *loader, n *node, r *RealServer) {
		l.noBlock(n)
		if v, ok := l.int1(n, 0, math.MaxInt32); ok {
			r.UThreshold = v
		}
	}),
	sup("lthreshold", func(l *loader, n *node, r *RealServer) {
		l.noBlock(n)
		if v, ok := l.int1(n, 0, math.MaxInt32); ok {
			r.LThreshold = v
		}
	}),
	sup("alpha", rsBool(func(r *RealServer, b bool) { r.Alpha = b })),
	sup("smtp_alert", rsBool(func(r *RealServer, b bool) { r.SMTPAlert = b })),
	sup("virtualhost", func(l *loader, n *node, r *RealServer) {
		if s, ok := l.str1(n); ok {
			r.Virtualhost = s
		}
	}),
	checkerKw("TCP_CHECK", tcpCheckTable),
	checkerKw("HTTP_GET", httpCheckTable),
	checkerKw("SSL_GET", sslCheckTable),
	checkerKw("MISC_CHECK", miscCheckTable),
	checkerKw("DNS_CHECK", dnsCheckTable),
	checkerKw("PING_CHECK", pingCheckTable),
	checkerKw("ICMP_CHECK", pingCheckTable, "alias of PING_CHECK"),
	checkerKw("UDP_CHECK", udpCheckTable),
	checkerKw("SMTP_CHECK", smtpCheckTable),
	checkerKw("FILE_CHECK", fileCheckTable),
	unsup[*RealServer]("BFD_CHECK"),
	unsup[*RealServer]("snmp_name"),
)...)

// checkerCommonKws are the settings every checker that connects has.
func checkerCommonKws(k ...kw[*Checker]) []kw[*Checker] {
	get := func(c *Checker) *CheckerCommon { return &c.CheckerCommon }
	out := append([]kw[*Checker]{connectTimeoutKw(get)}, checkerTimingKws()...)
	out = append(out,
		sup("connect_ip", func(l *loader, n *node, c *Checker) {
			if s, ok := l.str1(n); ok {
				if a, ok := l.addr(n, s); ok {
					c.ConnectIP = a
				}
			}
		}),
		sup("connect_port", func(l *loader, n *node, c *Checker) {
			l.noBlock(n)
			if p, ok := l.int1(n, 0, 65535); ok {
				c.ConnectPort = p
			}
		}),
		sup("bindto", func(l *loader, n *node, c *Checker) {
			if s, ok := l.str1(n); ok {
				if a, ok := l.addr(n, s); ok {
					c.BindTo = a
				}
			}
		}),
		sup("bind_port", func(l *loader, n *node, c *Checker) {
			l.noBlock(n)
			if p, ok := l.int1(n, 0, 65535); ok {
				c.BindPort = p
			}
		}),
		sup("bind_if", func(l *loader, n *node, c *Checker) {
			if s, ok := l.str1(n); ok {
				c.BindIf = s
			}
		}),
		sup("fwmark", func(l *loader, n *node, c *Checker) {
			l.noBlock(n)
			if m, ok := l.int1(n, 0, math.MaxUint32); ok {
				c.FWMark = m
			}
		}),
	)
	return append(out, k...)
}

// checkerTimingKws are the settings of every checker, MISC_CHECK included.
func checkerTimingKws(k ...kw[*Checker]) []kw[*Checker] {
	out := timingKws(func(c *Checker) *CheckerCommon { return &c.CheckerCommon })
	out = append(out,
		sup("alpha", func(l *loader, n *node, c *Checker) {
			if b, ok := l.boolArg(n); ok {
				c.Alpha = b
			}
		}),
		sup("log_all_failures", func(l *loader, n *node, c *Checker) {
			if b, ok := l.boolArg(n); ok {
				c.LogAllFailures = b
			}
		}),
	)
	return append(out, k...)
}

var tcpCheckTable = newTable[*Checker]("TCP_CHECK", checkerCommonKws()...)

func httpKws() []kw[*Checker] {
	return checkerCommonKws(
		sup("url", func(l *loader, n *node, c *Checker) {
			if !l.needBlock(n) {
				return
			}
			u := URLCheck{Pos: n.pos()}
			urlTable.walk(l, n, &u)
			if u.Path == "" {
				l.errorf(n, "url has no path")
				return
			}
			c.URLs = append(c.URLs, u)
		}),
		sup("virtualhost", func(l *loader, n *node, c *Checker) {
			if s, ok := l.str1(n); ok {
				c.Virtualhost = s
			}
		}),
		sup("http_protocol", func(l *loader, n *node, c *Checker) {
			s, ok := l.str1(n)
			if !ok {
				return
			}
			switch s {
			case "1.0", "1.1", "1.0C", "1.0c":
				c.HTTPProtocol = strings.ToUpper(s)
			default:
				l.errorf(n, "http_protocol %q: expected 1.0, 1.0C or 1.1", s)
			}
		}),
		sup("fast_recovery", func(l *loader, n *node, c *Checker) {
			if b, ok := l.boolArg(n); ok {
				c.FastRecovery = b
			}
		}),
	)
}

var httpCheckTable = newTable[*Checker]("HTTP_GET", httpKws()...)

var sslCheckTable = newTable[*Checker]("SSL_GET", append(httpKws(),
	sup("enable_sni", func(l *loader, n *node, c *Checker) {
		if b, ok := l.boolArg(n); ok {
			c.EnableSNI = b
		}
	}))...)

var urlTable = newTable[*URLCheck]("url",
	sup("path", func(l *loader, n *node, u *URLCheck) {
		if s, ok := l.str1(n); ok {
			u.Path = s
		}
	}),
	sup("digest", func(l *loader, n *node, u *URLCheck) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		if len(s) != 32 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
			l.errorf(n, "digest %q is not an MD5 digest (32 hex digits)", s)
			return
		}
		u.Digest = strings.ToLower(s)
	}),
	sup("status_code", func(l *loader, n *node, u *URLCheck) {
		l.noBlock(n)
		if !l.nargs(n, 1, -1) {
			return
		}
		for _, a := range n.Args {
			lo, hi, isRange := strings.Cut(a, "-")
			if !isRange {
				hi = lo
			}
			l1, e1 := strconv.Atoi(lo)
			h1, e2 := strconv.Atoi(hi)
			if e1 != nil || e2 != nil || l1 < 100 || h1 > 599 || l1 > h1 {
				l.errorf(n, "status_code %q: expected a code or range within 100..599", a)
				return
			}
			u.StatusCodes = append(u.StatusCodes, StatusRange{l1, h1})
		}
	}),
	sup("regex", func(l *loader, n *node, u *URLCheck) {
		l.noBlock(n)
		if l.nargs(n, 1, -1) {
			u.Regex = strings.Join(n.Args, " ")
		}
	}, "PCRE2 in keepalived; vipd uses Go regexp syntax"),
	sup("regex_no_match", func(l *loader, n *node, u *URLCheck) {
		l.noBlock(n)
		u.RegexNoMatch = true
	}),
	sup("virtualhost", func(l *loader, n *node, u *URLCheck) {
		if s, ok := l.str1(n); ok {
			u.Virtualhost = s
		}
	}),
	unsup[*URLCheck]("regex_options"),
	unsup[*URLCheck]("regex_stack"),
	unsup[*URLCheck]("regex_min_offset"),
	unsup[*URLCheck]("regex_max_offset"),
)

var miscCheckTable = newTable[*Checker]("MISC_CHECK", checkerTimingKws(
	sup("misc_path", func(l *loader, n *node, c *Checker) {
		if s, ok := l.scriptAll(n); ok {
			c.Misc.Cmd, c.Misc.Pos = s.Cmd, s.Pos
		}
	}),
	sup("misc_timeout", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		if d, ok := l.timer(n, 0.000001, 1<<20); ok {
			c.MiscTimeout = d
		}
	}),
	sup("misc_dynamic", func(l *loader, n *node, c *Checker) {
		if b, ok := l.boolArg(n); ok {
			c.MiscDynamic = b
		}
	}),
	sup("user", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		if l.nargs(n, 1, 2) {
			c.Misc.User = n.Args[0]
			if len(n.Args) > 1 {
				c.Misc.Group = n.Args[1]
			}
		}
	}),
)...)

var dnsTypes = []string{"A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"}

var dnsCheckTable = newTable[*Checker]("DNS_CHECK", checkerCommonKws(
	sup("type", func(l *loader, n *node, c *Checker) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		for _, t := range dnsTypes {
			if strings.EqualFold(s, t) {
				c.DNSType = t
				return
			}
		}
		l.errorf(n, "type %q: expected one of %s", s, strings.Join(dnsTypes, " "))
	}),
	sup("name", func(l *loader, n *node, c *Checker) {
		if s, ok := l.str1(n); ok {
			c.DNSName = s
		}
	}),
)...)

var pingCheckTable = newTable[*Checker]("PING_CHECK", checkerCommonKws()...)

var udpCheckTable = newTable[*Checker]("UDP_CHECK", checkerCommonKws(
	sup("payload", func(l *loader, n *node, c *Checker) {
		s, ok := l.str1(n)
		if !ok {
			return
		}
		b, err := parseHexPayload(s)
		if err != nil {
			l.errorf(n, "payload %q: %v", s, err)
			return
		}
		c.Payload = b
	}, "hex bytes"),
	sup("require_reply", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		c.RequireReply = true
		if len(n.Args) > 0 {
			b, err := parseHexPayload(n.Args[0])
			if err != nil {
				l.errorf(n, "require_reply %q: %v", n.Args[0], err)
				return
			}
			c.ReplyPayload = b
		}
	}),
	sup("min_reply_length", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		if v, ok := l.int1(n, 0, 65535); ok {
			c.MinReplyLength = v
		}
	}),
	sup("max_reply_length", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		if v, ok := l.int1(n, 0, 65535); ok {
			c.MaxReplyLength = v
		}
	}),
)...)

// parseHexPayload parses hex digits, optionally with ':' or ' ' between
// bytes and a 0x prefix.
func parseHexPayload(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	if len(s)%2 != 0 {
		return nil, fmt.Errorf("odd number of hex digits")
	}
	out := make([]byte, len(s)/2)
	for i := range out {
		v, err := strconv.ParseUint(s[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("not hex")
		}
		out[i] = byte(v)
	}
	return out, nil
}

var smtpCheckTable = newTable[*Checker]("SMTP_CHECK", checkerCommonKws(
	sup("helo_name", func(l *loader, n *node, c *Checker) {
		if s, ok := l.str1(n); ok {
			c.HeloName = s
		}
	}),
	sup("host", func(l *loader, n *node, c *Checker) {
		if !l.needBlock(n) {
			return
		}
		h := &Checker{Type: "SMTP_CHECK", CheckerCommon: unsetCommon(), Pos: n.pos()}
		smtpHostTable.walk(l, n, h)
		c.smtpHosts = append(c.smtpHosts, h)
	}, "each host block becomes an SMTP_CHECK of its own, as in keepalived 2"),
)...)

var smtpHostTable = newTable[*Checker]("SMTP_CHECK host", checkerCommonKws()...)

var fileCheckTable = newTable[*Checker]("FILE_CHECK",
	sup("track_file", func(l *loader, n *node, c *Checker) {
		if s, ok := l.str1(n); ok {
			c.TrackFile = s
		}
	}),
	sup("dynamic", func(l *loader, n *node, c *Checker) {
		if b, ok := l.boolArg(n); ok {
			c.Dynamic = b
		}
	}, "not known to keepalived 2.2.7's parser"),
	sup("weight", func(l *loader, n *node, c *Checker) {
		l.noBlock(n)
		if !l.nargs(n, 1, 2) {
			return
		}
		if w, ok := l.intArg(n, 0, -math.MaxInt32, math.MaxInt32); ok {
			c.FileWeight = w
		}
		if len(n.Args) > 1 {
			if n.Args[1] != "reverse" {
				l.errorf(n, "weight: unexpected %q (expected reverse)", n.Args[1])
				return
			}
			c.FileReverse = true
		}
	}),
)

// ---- virtual_server_group ----

func parseVSGroup(l *loader, n *node, c *Config) {
	l.nargs(n, 1, 1)
	if !l.needBlock(n) || len(n.Args) == 0 {
		return
	}
	if o, dup := c.VSGroups[n.Args[0]]; dup {
		l.errorf(n, "virtual_server_group %s is already defined at %s", o.Name, o.Pos)
		return
	}
	g := &VSGroup{Name: n.Args[0], Pos: n.pos()}
	for _, it := range n.Children {
		if it.Block {
			l.errorf(it, "unexpected block in virtual_server_group")
			continue
		}
		e := VSGroupEntry{Pos: it.pos()}
		if it.Key == "fwmark" {
			if m, ok := l.intArg(it, 0, 1, math.MaxUint32); ok {
				e.FWMark = m
				g.Entries = append(g.Entries, e)
			}
			continue
		}
		addr, last, isRange := strings.Cut(it.Key, "-")
		a, err := netip.ParseAddr(addr)
		if err != nil {
			l.errorf(it, "virtual_server_group %s: %q is not an address, address range or fwmark", g.Name, it.Key)
			continue
		}
		e.Addr = a
		if isRange {
			end, ok := rangeEnd(a, last)
			if !ok {
				l.errorf(it, "virtual_server_group %s: bad range %q (expected ADDR-LAST with LAST above the address's last part)", g.Name, it.Key)
				continue
			}
			e.RangeEnd = end
		}
		if len(it.Args) > 0 {
			p, ok := l.intArg(it, 0, 0, 65535)
			if !ok {
				continue
			}
			e.Port = p
		}
		for _, o := range g.Entries {
			if o.Addr.IsValid() && familyOf(o.Addr) != familyOf(a) {
				l.errorf(it, "virtual_server_group %s: %s is not IPv%d like %s; one group holds one address family", g.Name, a, familyOf(o.Addr), o.Addr)
				break
			}
		}
		g.Entries = append(g.Entries, e)
	}
	c.VSGroups[g.Name] = g
}

// rangeEnd computes the end of keepalived's address range A-N, where N
// replaces the last byte (IPv4, decimal) or last 16-bit group (IPv6, hex).
func rangeEnd(a netip.Addr, last string) (netip.Addr, bool) {
	if a.Is4() {
		v, err := strconv.Atoi(last)
		b := a.As4()
		if err != nil || v > 255 || v < int(b[3]) {
			return netip.Addr{}, false
		}
		b[3] = byte(v)
		return netip.AddrFrom4(b), true
	}
	v, err := strconv.ParseUint(last, 16, 16)
	b := a.As16()
	cur := uint64(b[14])<<8 | uint64(b[15])
	if err != nil || v < cur {
		return netip.Addr{}, false
	}
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b), true
}

// overrideCommon returns base with every setting given in over replacing
// it (SMTP_CHECK host{} blocks).
func overrideCommon(base, over CheckerCommon) CheckerCommon {
	if over.ConnectIP.IsValid() {
		base.ConnectIP = over.ConnectIP
	}
	if over.ConnectPort != 0 {
		base.ConnectPort = over.ConnectPort
	}
	if over.BindTo.IsValid() {
		base.BindTo = over.BindTo
	}
	if over.BindPort != 0 {
		base.BindPort = over.BindPort
	}
	if over.BindIf != "" {
		base.BindIf = over.BindIf
	}
	if over.FWMark != 0 {
		base.FWMark = over.FWMark
	}
	if over.ConnectTimeout >= 0 {
		base.ConnectTimeout = over.ConnectTimeout
	}
	if over.Retry >= 0 {
		base.Retry = over.Retry
	}
	if over.DelayBeforeRetry >= 0 {
		base.DelayBeforeRetry = over.DelayBeforeRetry
	}
	if over.Warmup >= 0 {
		base.Warmup = over.Warmup
	}
	if over.DelayLoop >= 0 {
		base.DelayLoop = over.DelayLoop
	}
	return base
}

// keywordsMarkdown renders docs/keywords.md from the keyword tables.
// config_test.go fails when the file differs (go test -run
// TestKeywordsDoc -update rewrites it).
func keywordsMarkdown() string {
	var b strings.Builder
	b.WriteString("# keepalived.conf keywords in vipd\n\n")
	b.WriteString("Generated from the parser's keyword tables (config_keywords.go) by\n")
	b.WriteString("`go test -run TestKeywordsDoc -update`; do not edit by hand.\n\n")
	b.WriteString("vipd reads keepalived.conf unchanged. A keyword marked *supported* is applied.\n")
	b.WriteString("One marked *not supported* is accepted with one warning naming it\n")
	b.WriteString("(`file:line: not supported by vipd: KEYWORD`) and otherwise ignored, so a\n")
	b.WriteString("configuration written for keepalived still loads; *parsed, not supported*\n")
	b.WriteString("keywords are also checked and kept in the model. A keyword in no table gets a\n")
	b.WriteString("closest known spelling. `vipd -t -f FILE` lists them all; `--dump` prints\n")
	b.WriteString("the configuration as vipd understood it, defaults included.\n\n")
	b.WriteString("The parser also implements keepalived's `include` (glob, relative to the\n")
	b.WriteString("including file, at most 8 deep), conditional lines `@ID` / `@^ID`\n")
	b.WriteString("(`-i/--config-id`, default the short host name), `$NAME=value` definitions\n")
	b.WriteString("(multi-line with `\\`, expanded as `$NAME` or `${NAME}`, predefined `_PWD`,\n")
	b.WriteString("`_INSTANCE`, `_RANDOM`, `_HASH`, `_BANG`) and the `~SEQ`, `~SEQx`, `~LST`\n")
	b.WriteString("line generators.\n\n")
	b.WriteString("| keyword | block | status | notes |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, t := range docTables {
		for _, k := range t.infos() {
			st := "supported"
			switch k.Status {
			case kwUnsupported:
				st = "not supported (warns, ignored)"
			case kwParsedOnly:
				st = "parsed, not supported (warns; shown by --dump)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k.Name, t.blockName(), st, strings.ReplaceAll(k.Note, "|", "\\|"))
		}
	}
	return b.String()
}

// keywordsSummary is the README's keyword list: per block, every keyword by
// its status, from the same tables as docs/keywords.md (TestKeywordsDoc
// keeps both in step).
func keywordsSummary() string {
	var b strings.Builder
	b.WriteString("| block | supported | parsed, not applied (warns) | not supported (warns, ignored) |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, t := range docTables {
		var cols [3][]string
		for _, k := range t.infos() {
			i := 0
			switch k.Status {
			case kwParsedOnly:
				i = 1
			case kwUnsupported:
				i = 2
			}
			cols[i] = append(cols[i], "`"+k.Name+"`")
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.blockName(), strings.Join(cols[0], " "), strings.Join(cols[1], " "), strings.Join(cols[2], " "))
	}
	return b.String()
}
