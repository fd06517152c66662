package main

// configcmd.go is `vipd config` and the shared body of `vipd -t`.

import (
	"errors"
	"fmt"
	"github.com/alecthomas/kong"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// configCmd is `vipd config [-f FILE] [-i ID] [--dump]`.
//
// When the root command gets keepalived's global -f/--use-file and
// -i/--config-id flags, delete File and ConfigID here (kong rejects a
// flag declared twice on one command path): Run reads the flags by name
// from wherever they are declared.
type configCmd struct {
	File     string `short:"f" name:"use-file" default:"/etc/keepalived/keepalived.conf" help:"Configuration file."`
	ConfigID string `short:"i" name:"config-id" help:"Config id selecting @ID lines (default: the short host name)."`
	Dump     bool   `help:"Print the normalised configuration."`
}

// Run checks (and with --dump prints) the configuration; it exits with
// runConfigTest's status.
func (c *configCmd) Run(ctx *kong.Context) error {
	file, id := c.File, c.ConfigID
	for _, f := range ctx.Flags() {
		v, ok := ctx.FlagValue(f).(string)
		if !ok {
			continue
		}
		switch f.Name {
		case "use-file":
			file = v
		case "config-id":
			id = v
		}
	}
	if rc := runConfigTest(file, id, c.Dump, os.Stdout, os.Stderr); rc != 0 {
		os.Exit(rc)
	}
	return nil
}

// runConfigTest loads file, prints every diagnostic to stderr and, if dump
// is set and the configuration is usable, the normalised configuration to
// stdout. It returns the exit status: 0 when the configuration is usable
// (warnings allowed), 1 when it has errors (all listed).
func runConfigTest(file, configID string, dump bool, stdout, stderr io.Writer) int {
	cfg, diags, err := loadConfig(file, loadOptions{ConfigID: configID})
	if cfg != nil {
		diags = append(diags, hostDiags(cfg)...)
		diags = append(diags, lvsDiags(cfg)...) // virtual servers as lvs.go maps them
		order := map[string]int{}
		for _, d := range diags {
			if _, ok := order[d.File]; !ok {
				order[d.File] = len(order)
			}
		}
		sort.SliceStable(diags, func(i, j int) bool {
			if a, b := order[diags[i].File], order[diags[j].File]; a != b {
				return a < b
			}
			return diags[i].Line < diags[j].Line
		})
	}
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if err != nil {
		if errors.Is(err, errConfig) {
			fmt.Fprintf(stderr, "%s: configuration is not usable\n", file)
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	if slices.ContainsFunc(diags, func(d diag) bool { return d.Severity == sevError }) {
		fmt.Fprintf(stderr, "%s: configuration is not usable\n", file)
		return 1
	}
	if dump {
		io.WriteString(stdout, dumpConfig(cfg))
	} else {
		fmt.Fprintf(stderr, "%s: configuration is usable (%d warning(s))\n", file, len(diags))
	}
	return 0
}

// interfaceExists reports whether this host has the named interface;
// tests replace it so results do not depend on the host.
var interfaceExists = func(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// accountExists reports whether this host has the user or group ("user"
// or "group" kind); tests replace it.
var accountExists = func(kind, name string) bool {
	var err error
	if kind == "user" {
		_, err = user.Lookup(name)
	} else {
		_, err = user.LookupGroup(name)
	}
	return err == nil
}

// hostDiags warns about interfaces the configuration names that this host
// does not have (keepalived -t does the same). They are warnings: the
// daemon waits for a missing interface in FAULT state.
func hostDiags(c *Config) []diag {
	var out []diag
	seen := map[string]bool{}
	check := func(name string, p Pos, what string) {
		if name == "" || seen[name] {
			return
		}
		seen[name] = true
		if !interfaceExists(name) {
			out = append(out, diag{File: p.File, Line: p.Line, Severity: sevWarning,
				Msg: fmt.Sprintf("interface %s for %s does not exist on this host", name, what)})
		}
	}
	users := map[string]bool{}
	checkUser := func(s Script, what string) {
		for _, u := range []struct{ name, kind string }{{s.User, "user"}, {s.Group, "group"}} {
			if u.name == "" || users[u.kind+u.name] {
				continue
			}
			users[u.kind+u.name] = true
			if !accountExists(u.kind, u.name) {
				out = append(out, diag{File: s.Pos.File, Line: s.Pos.Line, Severity: sevWarning,
					Msg: fmt.Sprintf("%s %s for %s does not exist on this host (unquoted script arguments are taken for user and group: quote the command)", u.kind, u.name, what)})
			}
		}
	}
	if g := c.Global; g.ScriptUser != "" {
		checkUser(Script{User: g.ScriptUser, Group: g.ScriptGroup, Pos: g.Pos}, "script_user")
	}
	for _, name := range sortedKeys(c.Scripts) {
		checkUser(c.Scripts[name].Script, "vrrp_script "+name)
	}
	for _, v := range c.Instances {
		who := "vrrp_instance " + v.Name
		n := v.Notify
		for _, s := range []Script{n.Master, n.Backup, n.Fault, n.Stop, n.Deleted, n.Generic, n.MasterRxLowerPri} {
			checkUser(s, who)
		}
		check(v.Interface, v.Pos, who)
		for _, ip := range append(append([]VIP(nil), v.VIPs...), v.VIPsExcluded...) {
			check(ip.Dev, ip.Pos, who)
		}
		for _, t := range v.Track.Interfaces {
			check(t.Name, t.Pos, who)
		}
	}
	return out
}

// dumpConfig prints the model as keepalived.conf in a stable order with
// every default resolved, so users see what vipd understood. The output
// loads back to the same model (config_test.go checks this).
func dumpConfig(c *Config) string {
	d := &dumper{}
	g := &c.Global
	d.open("global_defs")
	d.kv("router_id", g.RouterID)
	if len(g.NotificationEmail) > 0 {
		d.open("notification_email")
		for _, e := range g.NotificationEmail {
			d.line(quote(e))
		}
		d.close()
	}
	d.kv("notification_email_from", g.NotificationEmailFrom)
	if g.SMTPServer != "" {
		d.line("smtp_server", quote(g.SMTPServer), itoa(g.SMTPPort))
	}
	d.kv("smtp_helo_name", g.SMTPHeloName)
	d.line("smtp_connect_timeout", secs(g.SMTPConnectTimeout))
	d.line("smtp_alert", yesno(g.SMTPAlert))
	if g.SMTPAlertVRRP != nil {
		d.line("smtp_alert_vrrp", yesno(*g.SMTPAlertVRRP))
	}
	if g.SMTPAlertChecker != nil {
		d.line("smtp_alert_checker", yesno(*g.SMTPAlertChecker))
	}
	d.flag("no_email_faults", g.NoEmailFaults)
	d.flag("checker_log_all_failures", g.CheckerLogAllFailures)
	if g.ScriptUser != "" {
		d.line("script_user", quote(g.ScriptUser), quoteOpt(g.ScriptGroup))
	}
	d.flag("enable_script_security", g.EnableScriptSecurity)
	d.kv("default_interface", g.DefaultInterface)
	d.line("vrrp_mcast_group4", g.McastGroup4.String())
	d.line("vrrp_mcast_group6", g.McastGroup6.String())
	d.line("vrrp_version", itoa(g.VRRPVersion))
	d.line("vrrp_garp_master_delay", secs(g.Garp.MasterDelay))
	d.line("vrrp_garp_master_repeat", itoa(g.Garp.MasterRepeat))
	d.line("vrrp_garp_master_refresh", secs(g.Garp.MasterRefresh))
	d.line("vrrp_garp_master_refresh_repeat", itoa(g.Garp.MasterRefreshRepeat))
	d.line("vrrp_garp_lower_prio_repeat", itoa(g.Garp.LowerPrioRepeat))
	if g.Garp.Interval > 0 { // keepalived 2.2 rejects 0, its default
		d.line("vrrp_garp_interval", secs(g.Garp.Interval))
	}
	if g.Garp.NAInterval > 0 {
		d.line("vrrp_gna_interval", secs(g.Garp.NAInterval))
	}
	d.line("vrrp_down_timer_adverts", itoa(g.DownTimerAdverts))
	d.line("vrrp_lower_prio_no_advert", yesno(g.LowerPrioNoAdvert))
	d.line("vrrp_higher_prio_send_advert", yesno(g.HigherPrioSendAdvert))
	d.line("vrrp_skip_check_adv_addr", yesno(g.SkipCheckAdvAddr))
	d.line("vrrp_strict", yesno(g.Strict))
	d.line("vrrp_check_unicast_src", yesno(g.CheckUnicastSrc))
	d.line("vrrp_notify_priority_changes", yesno(g.NotifyPriorityChanges))
	if g.DynamicInterfaces {
		d.line("dynamic_interfaces", g.DynamicInterfacesFlag)
	}
	d.fifo("notify_fifo", g.NotifyFifo)
	d.fifo("vrrp_notify_fifo", g.VRRPNotifyFifo)
	d.fifo("lvs_notify_fifo", g.LVSNotifyFifo)
	d.flag("lvs_flush", g.LVSFlush)
	d.script("startup_script", g.StartupScript)
	d.script("shutdown_script", g.ShutdownScript)
	d.close()

	for _, name := range sortedKeys(c.Scripts) {
		s := c.Scripts[name]
		d.open("vrrp_script", quote(name))
		d.line("script", quote(s.Script.Cmd))
		d.line("interval", secs(s.Interval))
		d.line("timeout", secs(s.Timeout))
		d.line("weight", itoa(s.Weight), rev(s.Reverse))
		d.line("rise", itoa(s.Rise))
		d.line("fall", itoa(s.Fall))
		if s.Script.User != "" {
			d.line("user", quote(s.Script.User), quoteOpt(s.Script.Group))
		}
		d.flag("init_fail", s.InitFail)
		d.close()
	}
	for _, name := range sortedKeys(c.TrackFiles) {
		f := c.TrackFiles[name]
		d.open("vrrp_track_file", quote(name))
		d.line("file", quote(f.Path))
		d.line("weight", itoa(f.Weight), rev(f.Reverse))
		if f.InitFile {
			ow := ""
			if f.InitOverwrite {
				ow = "overwrite"
			}
			d.line("init_file", itoa(f.InitValue), ow)
		}
		d.close()
	}
	for _, name := range sortedKeys(c.TrackProcesses) {
		p := c.TrackProcesses[name]
		d.open("vrrp_track_process", quote(name))
		args := []string{quote(p.Process)}
		for _, a := range p.Param {
			args = append(args, quote(a))
		}
		d.line("process", args...)
		d.kv("param_match", p.ParamMatch)
		d.line("weight", itoa(p.Weight), rev(p.Reverse))
		d.line("quorum", itoa(p.Quorum))
		if p.QuorumMax > 0 {
			d.line("quorum_max", itoa(p.QuorumMax))
		}
		d.line("fork_delay", secs(p.ForkDelay))
		d.line("terminate_delay", secs(p.TerminateDelay))
		d.line("delay", secs(p.Delay))
		d.line("full_command", yesno(p.FullCommand))
		d.close()
	}
	for _, v := range c.Instances {
		dumpInstance(d, v)
	}
	for _, sg := range c.SyncGroups {
		d.open("vrrp_sync_group", quote(sg.Name))
		d.open("group")
		for _, m := range sg.Members {
			d.line(quote(m))
		}
		d.close()
		d.track(sg.Track)
		d.notify(sg.Notify)
		d.line("smtp_alert", yesno(sg.SMTPAlert))
		d.flag("global_tracking", sg.GlobalTracking)
		d.flag("sync_group_tracking_weight", sg.TrackingWeight)
		d.close()
	}
	for _, gg := range c.GarpGroups {
		d.open("garp_group")
		d.line("garp_interval", secs(gg.Interval))
		d.line("gna_interval", secs(gg.NAInterval))
		d.kv("interface", gg.Interface)
		if len(gg.Interfaces) > 0 {
			d.open("interfaces")
			for _, i := range gg.Interfaces {
				d.line(quote(i))
			}
			d.close()
		}
		d.close()
	}
	for _, name := range sortedKeys(c.VSGroups) {
		g := c.VSGroups[name]
		d.open("virtual_server_group", quote(name))
		for _, e := range g.Entries {
			switch {
			case e.FWMark != 0:
				d.line("fwmark", itoa(e.FWMark))
			case e.RangeEnd.IsValid():
				d.line(e.Addr.String()+"-"+rangeLast(e.RangeEnd), itoa(e.Port))
			default:
				d.line(e.Addr.String(), itoa(e.Port))
			}
		}
		d.close()
	}
	for _, vs := range c.VirtualServers {
		dumpVirtualServer(d, vs)
	}
	if s := c.SSL; s != (SSLDefs{Pos: s.Pos}) {
		d.open("SSL")
		d.kv("password", s.Password)
		d.kv("ca", s.CA)
		d.kv("certificate", s.Certificate)
		d.kv("key", s.Key)
		d.close()
	}
	d.list("static_ipaddress", c.StaticAddresses)
	d.routes("static_routes", c.StaticRoutes)
	d.rules("static_rules", c.StaticRules)
	if len(c.LinkbeatInterfaces) > 0 {
		d.open("linkbeat_interfaces")
		for _, i := range c.LinkbeatInterfaces {
			d.line(quote(i))
		}
		d.close()
	}
	return d.b.String()
}

func dumpInstance(d *dumper, v *VRRPInstance) {
	d.open("vrrp_instance", quote(v.Name))
	d.line("state", v.InitialState)
	d.line("interface", quote(v.Interface))
	d.flag("dont_track_primary", v.DontTrackPrimary)
	d.line("virtual_router_id", itoa(v.VRID))
	d.line("priority", itoa(v.Priority))
	d.line("version", itoa(v.Version))
	d.line("advert_int", centis(v.AdvertCentis))
	if v.Preempt {
		d.line("preempt")
	} else {
		d.line("nopreempt")
	}
	if v.PreemptDelay > 0 {
		d.line("preempt_delay", secs(v.PreemptDelay))
	}
	if v.Auth.Type != "" {
		d.open("authentication")
		d.line("auth_type", v.Auth.Type)
		d.line("auth_pass", quote(strings.TrimRight(string(v.Auth.Pass[:]), "\x00")))
		d.close()
	}
	if v.McastSrcIP.IsValid() {
		d.line("mcast_src_ip", v.McastSrcIP.String())
	}
	if v.UnicastSrcIP.IsValid() {
		d.line("unicast_src_ip", v.UnicastSrcIP.String())
	}
	if len(v.UnicastPeers) > 0 {
		d.open("unicast_peer")
		for _, p := range v.UnicastPeers {
			a := []string{}
			if p.MinTTL > 0 {
				a = append(a, "min_ttl", itoa(p.MinTTL))
			}
			if p.MaxTTL != 255 {
				a = append(a, "max_ttl", itoa(p.MaxTTL))
			}
			d.line(p.Addr.String(), a...)
		}
		d.close()
	}
	if v.UnicastTTL > 0 {
		d.line("unicast_ttl", itoa(v.UnicastTTL))
	}
	d.flag("unicast_fault_no_peer", v.UnicastFaultNoPeer)
	if len(v.UnicastPeers) > 0 {
		d.line("check_unicast_src", yesno(v.CheckUnicastSrc))
	}
	if v.Family == 6 {
		d.line("mcast_dst_ip", v.McastGroup6.String())
	} else {
		d.line("mcast_dst_ip", v.McastGroup4.String())
	}
	if v.UseVMAC {
		mac := ""
		if v.VMACAddr != nil {
			mac = v.VMACAddr.String()
		}
		d.line("use_vmac", quote(v.VMACName), mac)
	}
	d.flag("vmac_xmit_base", v.VMACXmitBase)
	d.list("virtual_ipaddress", v.VIPs)
	d.list("virtual_ipaddress_excluded", v.VIPsExcluded)
	d.routes("virtual_routes", v.VirtualRoutes)
	d.rules("virtual_rules", v.VirtualRules)
	d.flag("promote_secondaries", v.PromoteSecondaries)
	d.track(v.Track)
	d.notify(v.Notify)
	d.line("smtp_alert", yesno(v.SMTPAlert))
	d.line("garp_master_delay", secs(v.Garp.MasterDelay))
	d.line("garp_master_repeat", itoa(v.Garp.MasterRepeat))
	d.line("garp_master_refresh", secs(v.Garp.MasterRefresh))
	d.line("garp_master_refresh_repeat", itoa(v.Garp.MasterRefreshRepeat))
	d.line("garp_lower_prio_repeat", itoa(v.Garp.LowerPrioRepeat))
	d.line("down_timer_adverts", itoa(v.DownTimerAdverts))
	d.line("lower_prio_no_advert", yesno(v.LowerPrioNoAdvert))
	d.line("higher_prio_send_advert", yesno(v.HigherPrioSendAdvert))
	if v.Accept {
		d.line("accept")
	} else {
		d.line("no_accept")
	}
	d.line("skip_check_adv_addr", yesno(v.SkipCheckAdvAddr))
	d.line("strict_mode", yesno(v.StrictMode))
	d.close()
}

func dumpVirtualServer(d *dumper, vs *VirtualServer) {
	switch {
	case vs.FWMark != 0:
		d.open("virtual_server", "fwmark", itoa(vs.FWMark))
	case vs.Group != "":
		d.open("virtual_server", "group", quote(vs.Group))
	default:
		d.open("virtual_server", vs.Addr.String(), itoa(vs.Port))
	}
	if vs.FWMark != 0 || vs.Group != "" {
		if vs.Family == 6 {
			d.line("ip_family", "inet6")
		} else {
			d.line("ip_family", "inet")
		}
	}
	if vs.FWMark == 0 {
		d.line("protocol", vs.Protocol)
	}
	d.line("lvs_sched", vs.Sched)
	for _, f := range vs.SchedFlags {
		d.line(f)
	}
	m := []string{vs.Method}
	if vs.TunnelType != "" {
		m = append(m, "type", vs.TunnelType)
	}
	if vs.TunnelPort != 0 {
		m = append(m, "port", itoa(vs.TunnelPort))
	}
	if vs.TunnelCsum != "" {
		m = append(m, vs.TunnelCsum)
	}
	d.line("lvs_method", m...)
	if vs.PersistenceTimeout > 0 {
		d.line("persistence_timeout", secs(vs.PersistenceTimeout))
	}
	if vs.PersistenceGranularity.IsValid() {
		d.line("persistence_granularity", vs.PersistenceGranularity.String())
	}
	d.kv("persistence_engine", vs.PersistenceEngine)
	d.flag("ops", vs.OPS)
	d.flag("ha_suspend", vs.HASuspend)
	d.kv("virtualhost", vs.Virtualhost)
	d.line("quorum", itoa(vs.Quorum))
	d.script("quorum_up", vs.QuorumUp)
	d.script("quorum_down", vs.QuorumDown)
	d.line("hysteresis", itoa(vs.Hysteresis))
	d.flag("alpha", vs.Alpha)
	d.flag("omega", vs.Omega)
	d.flag("inhibit_on_failure", vs.InhibitOnFailure)
	d.flag("smtp_alert", vs.SMTPAlert)
	if s := vs.SorryServer; s != nil {
		d.line("sorry_server", s.Addr.String(), itoa(s.Port))
		d.line("sorry_server_lvs_method", s.Method)
	}
	d.flag("sorry_server_inhibit", vs.SorryServerInhibit)
	d.common(vs.Checker)
	for _, rs := range vs.RealServers {
		d.open("real_server", rs.Addr.String(), itoa(rs.Port))
		d.line("weight", itoa(rs.Weight))
		d.line("lvs_method", rs.Method)
		d.flag("inhibit_on_failure", rs.InhibitOnFailure)
		d.script("notify_up", rs.NotifyUp)
		d.script("notify_down", rs.NotifyDown)
		if rs.UThreshold > 0 {
			d.line("uthreshold", itoa(rs.UThreshold))
		}
		if rs.LThreshold > 0 {
			d.line("lthreshold", itoa(rs.LThreshold))
		}
		d.flag("alpha", rs.Alpha)
		d.flag("smtp_alert", rs.SMTPAlert)
		d.kv("virtualhost", rs.Virtualhost)
		d.common(rs.Checker)
		for _, ck := range rs.Checkers {
			dumpChecker(d, ck)
		}
		d.close()
	}
	d.close()
}

func dumpChecker(d *dumper, c *Checker) {
	d.open(c.Type)
	if c.ConnectIP.IsValid() {
		d.line("connect_ip", c.ConnectIP.String())
	}
	if c.ConnectPort != 0 {
		d.line("connect_port", itoa(c.ConnectPort))
	}
	if c.BindTo.IsValid() {
		d.line("bindto", c.BindTo.String())
	}
	if c.BindPort != 0 {
		d.line("bind_port", itoa(c.BindPort))
	}
	d.kv("bind_if", c.BindIf)
	if c.FWMark != 0 {
		d.line("fwmark", itoa(c.FWMark))
	}
	d.flag("alpha", c.Alpha)
	d.flag("log_all_failures", c.LogAllFailures)
	switch c.Type {
	case "MISC_CHECK":
		c.ConnectTimeout = -1 // MISC_CHECK has misc_timeout instead
		d.common(c.CheckerCommon)
	case "FILE_CHECK": // no timing: it follows the file
	default:
		d.common(c.CheckerCommon)
	}
	for _, u := range c.URLs {
		d.open("url")
		d.line("path", quote(u.Path))
		d.kv("digest", u.Digest)
		if len(u.StatusCodes) > 0 {
			var codes []string
			for _, r := range u.StatusCodes {
				if r.Lo == r.Hi {
					codes = append(codes, itoa(r.Lo))
				} else {
					codes = append(codes, itoa(r.Lo)+"-"+itoa(r.Hi))
				}
			}
			d.line("status_code", codes...)
		}
		if u.Regex != "" {
			d.line("regex", quote(u.Regex))
		}
		d.flag("regex_no_match", u.RegexNoMatch)
		d.kv("virtualhost", u.Virtualhost)
		d.close()
	}
	d.kv("virtualhost", c.Virtualhost)
	d.kv("http_protocol", c.HTTPProtocol)
	d.flag("fast_recovery", c.FastRecovery)
	if c.Type == "SSL_GET" {
		d.line("enable_sni", yesno(c.EnableSNI))
	}
	switch c.Type {
	case "MISC_CHECK":
		d.line("misc_path", quote(c.Misc.Cmd))
		d.line("misc_timeout", secs(c.MiscTimeout))
		d.flag("misc_dynamic", c.MiscDynamic)
		if c.Misc.User != "" {
			d.line("user", quote(c.Misc.User), quoteOpt(c.Misc.Group))
		}
	case "DNS_CHECK":
		d.line("type", c.DNSType)
		d.line("name", quote(c.DNSName))
	case "SMTP_CHECK":
		d.kv("helo_name", c.HeloName)
	case "UDP_CHECK":
		if len(c.Payload) > 0 {
			d.line("payload", fmt.Sprintf("%x", c.Payload))
		}
		if c.RequireReply {
			d.line("require_reply", fmt.Sprintf("%x", c.ReplyPayload))
		}
		if c.MinReplyLength > 0 {
			d.line("min_reply_length", itoa(c.MinReplyLength))
		}
		if c.MaxReplyLength > 0 {
			d.line("max_reply_length", itoa(c.MaxReplyLength))
		}
	case "FILE_CHECK":
		d.line("track_file", quote(c.TrackFile))
		d.flag("dynamic", c.Dynamic)
		d.line("weight", itoa(c.FileWeight), rev(c.FileReverse))
	}
	d.close()
}

// dumper writes indented keepalived.conf.
type dumper struct {
	b     strings.Builder
	depth int
}

func (d *dumper) line(key string, args ...string) {
	d.b.WriteString(strings.Repeat("    ", d.depth))
	d.b.WriteString(key)
	for _, a := range args {
		if a != "" {
			d.b.WriteByte(' ')
			d.b.WriteString(a)
		}
	}
	d.b.WriteByte('\n')
}

func (d *dumper) open(key string, args ...string) {
	d.line(key, append(args, "{")...)
	d.depth++
}

func (d *dumper) close() {
	d.depth--
	d.line("}")
}

// kv writes key value when value is set.
func (d *dumper) kv(key, val string) {
	if val != "" {
		d.line(key, quote(val))
	}
}

func (d *dumper) flag(key string, on bool) {
	if on {
		d.line(key)
	}
}

func (d *dumper) script(key string, s Script) {
	if s.IsSet() {
		d.line(key, quote(s.Cmd), quoteOpt(s.User), quoteOpt(s.Group))
	}
}

func (d *dumper) fifo(key string, f Fifo) {
	if f.Path != "" {
		d.line(key, quote(f.Path))
	}
	d.script(key+"_script", f.Script)
}

func (d *dumper) common(c CheckerCommon) {
	if c.ConnectTimeout >= 0 {
		d.line("connect_timeout", secs(c.ConnectTimeout))
	}
	d.line("retry", itoa(c.Retry))
	d.line("delay_before_retry", secs(c.DelayBeforeRetry))
	d.line("warmup", secs(c.Warmup))
	d.line("delay_loop", secs(c.DelayLoop))
}

func (d *dumper) list(key string, vips []VIP) {
	if len(vips) == 0 {
		return
	}
	d.open(key)
	for _, v := range vips {
		a := []string{}
		if v.Dev != "" {
			a = append(a, "dev", quote(v.Dev))
		}
		if v.BrdAuto {
			a = append(a, "brd", "+")
		} else if v.Brd.IsValid() {
			a = append(a, "brd", v.Brd.String())
		}
		if v.Scope != "" {
			a = append(a, "scope", v.Scope)
		}
		if v.Label != "" {
			a = append(a, "label", quote(v.Label))
		}
		if v.Peer.IsValid() {
			a = append(a, "peer", v.Peer.String())
		}
		if v.NoPrefixRoute {
			a = append(a, "noprefixroute")
		}
		if v.NoDAD {
			a = append(a, "nodad")
		}
		d.line(v.Prefix.String(), a...)
	}
	d.close()
}

func (d *dumper) routes(key string, rs []Route) {
	raw := make([][]string, len(rs))
	for i, r := range rs {
		raw[i] = r.Raw
	}
	d.rawLines(key, raw)
}

func (d *dumper) rules(key string, rs []Rule) {
	raw := make([][]string, len(rs))
	for i, r := range rs {
		raw[i] = r.Raw
	}
	d.rawLines(key, raw)
}

// rawLines writes a block of entries kept as written (routes, rules).
func (d *dumper) rawLines(key string, lines [][]string) {
	if len(lines) == 0 {
		return
	}
	d.open(key)
	for _, raw := range lines {
		q := make([]string, len(raw))
		for i, w := range raw {
			q[i] = quote(w)
		}
		d.line(q[0], q[1:]...)
	}
	d.close()
}

func (d *dumper) track(t Track) {
	if len(t.Interfaces) > 0 {
		d.open("track_interface")
		for _, i := range t.Interfaces {
			d.line(quote(i.Name), "weight", itoa(i.Weight), rev(i.Reverse))
		}
		d.close()
	}
	refs := func(key string, rs []TrackRef) {
		if len(rs) == 0 {
			return
		}
		d.open(key)
		for _, r := range rs {
			if r.WeightSet {
				d.line(quote(r.Name), "weight", itoa(r.Weight), rev(r.Reverse))
			} else {
				d.line(quote(r.Name), rev(r.Reverse))
			}
		}
		d.close()
	}
	refs("track_script", t.Scripts)
	refs("track_file", t.Files)
	refs("track_process", t.Processes)
}

func (d *dumper) notify(n Notify) {
	d.script("notify_master", n.Master)
	d.script("notify_backup", n.Backup)
	d.script("notify_fault", n.Fault)
	d.script("notify_stop", n.Stop)
	d.script("notify_deleted", n.Deleted)
	d.script("notify", n.Generic)
	d.script("notify_master_rx_lower_pri", n.MasterRxLowerPri)
	d.line("notify_priority_changes", yesno(n.Priority))
}

func rev(r bool) string {
	if r {
		return "reverse"
	}
	return ""
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// secs formats a duration as keepalived seconds.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func centis(c int) string {
	return strconv.FormatFloat(float64(c)/100, 'f', -1, 64)
}

func rangeLast(a netip.Addr) string {
	b := a.As16()
	if a.Is4() {
		return itoa(int(b[15]))
	}
	return strconv.FormatUint(uint64(b[14])<<8|uint64(b[15]), 16)
}

// quote returns s as one keepalived word: bare when it is plain, else in
// double quotes with '"' and '\' escaped. A word the loader would take for
// a directive at the start of a line (@ID conditional, ~SEQ / ~LST, an
// include) is quoted too: a dump writes list items one per line.
func quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\r\n\v\f\"'\\{}#!$") && s[0] != '@' && s[0] != '~' &&
		!strings.HasPrefix(s, "include") {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteOpt(s string) string {
	if s == "" {
		return ""
	}
	return quote(s)
}
