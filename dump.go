package main

// dump.go writes keepalived's state dumps, for the scripts people already
// have: SIGUSR1 writes keepalived.data, SIGUSR2 keepalived.stats and
// SIGRTMIN+2 keepalived.json, in /tmp unless --dump-dir says otherwise,
// with keepalived's layout (vrrp_print.c, vrrp_json.c) where vipd has the
// same facts. `vipd dump data|stats|json` prints the same through the
// control socket, and `vipd --signum=NAME` prints the signal numbers as
// keepalived does, for `kill -s $(vipd --signum=DATA) $(pidof vipd)`.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// sigRTMin is glibc's SIGRTMIN, which keepalived's SIGRTMIN+2 is relative
// to: the kernel's 32 and 33 are taken by NPTL.
const sigRTMin = 34

// dumpSignals are keepalived's signal names for --signum.
var dumpSignals = map[string]syscall.Signal{
	"RELOAD": syscall.SIGHUP,
	"DATA":   syscall.SIGUSR1,
	"STATS":  syscall.SIGUSR2,
	"JSON":   syscall.Signal(sigRTMin + 2),
	"STOP":   syscall.SIGTERM,
}

// dumpKind is one of keepalived's dumps.
type dumpKind string

const (
	dumpData  dumpKind = "data"
	dumpStats dumpKind = "stats"
	dumpJSON  dumpKind = "json"
)

// file is the dump's file name, as keepalived names it.
func (k dumpKind) file() string { return "keepalived." + string(k) }

// signalDump maps the dump signals to their dump.
var signalDump = map[syscall.Signal]dumpKind{
	syscall.SIGUSR1:              dumpData,
	syscall.SIGUSR2:              dumpStats,
	syscall.Signal(sigRTMin + 2): dumpJSON,
}

// opsFlags are the daemon's operations flags: dumps, metrics, signals.
type opsFlags struct {
	Signum      string `placeholder:"NAME" help:"Print the number of keepalived's signal NAME (RELOAD, DATA, STATS, JSON, STOP) and exit."`
	DumpDir     string `default:"/tmp" placeholder:"DIR" help:"Where SIGUSR1, SIGUSR2 and SIGRTMIN+2 write keepalived.data, keepalived.stats and keepalived.json."`
	MetricsAddr string `placeholder:"HOST:PORT" help:"Serve Prometheus metrics on http://HOST:PORT/metrics (off by default), e.g. 127.0.0.1:9650."`
}

// printSignum prints the signal number keepalived's --signum prints.
func printSignum(w io.Writer, name string) error {
	sig, ok := dumpSignals[strings.ToUpper(name)]
	if !ok {
		names := make([]string, 0, len(dumpSignals))
		for n := range dumpSignals {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("unknown signal name %q (want one of %s)", name, strings.Join(names, ", "))
	}
	_, err := fmt.Fprintln(w, int(sig))
	return err
}

// render writes dump k of st to w.
func (k dumpKind) render(w io.Writer, st daemonStatus) error {
	switch k {
	case dumpData:
		return writeDataDump(w, st)
	case dumpStats:
		return writeStatsDump(w, st)
	case dumpJSON:
		return writeJSONDump(w, st)
	}
	return fmt.Errorf("unknown dump %q (want data, stats or json)", string(k))
}

// writeDumpFile writes dump k into dir, replacing the file atomically so
// that a script reading it never sees half a dump.
func (d *daemon) writeDumpFile(dir string, k dumpKind) (string, error) {
	var b bytes.Buffer
	if err := k.render(&b, d.status()); err != nil {
		return "", err
	}
	path := filepath.Join(dir, k.file())
	tmp, err := os.CreateTemp(dir, "."+k.file()+".*")
	if err != nil {
		return "", fmt.Errorf("dump %s: %w", k, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b.Bytes()); err != nil {
		tmp.Close()
		return "", fmt.Errorf("dump %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", fmt.Errorf("dump %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("dump %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("dump %s: %w", path, err)
	}
	return path, nil
}

// keepalivedState is keepalived's state number (vrrp.h): INIT 0, BACKUP
// 1, MASTER 2, FAULT 3; vipd's state enum has the same values.
func keepalivedState(name string) int {
	for s := stateInit; s <= stateFault; s++ {
		if s.String() == name {
			return int(s)
		}
	}
	return 0
}

func ctimeString(t time.Time) string { return t.Format("Mon Jan _2 15:04:05 2006") }

// writeDataDump writes keepalived.data: vrrp_print.c's "VRRP Topology".
func writeDataDump(w io.Writer, st daemonStatus) error {
	b := &bytes.Buffer{}
	fmt.Fprintf(b, "------< Global definitions >------\n")
	fmt.Fprintf(b, " vipd version = %s\n", st.Version)
	fmt.Fprintf(b, " Config file = %s\n", st.Config)
	fmt.Fprintf(b, " Started = %d (%s)\n", st.Started.Unix(), ctimeString(st.Started))
	fmt.Fprintf(b, "------< VRRP Topology >------\n")
	for _, is := range st.Instances {
		ic := is.cfg
		fmt.Fprintf(b, " VRRP Instance = %s\n", is.Name)
		fmt.Fprintf(b, " VRRP Version = %d\n", is.Version)
		if is.Family == "inet6" {
			fmt.Fprintf(b, "   Using Native IPv6\n")
		}
		fmt.Fprintf(b, "   State = %s\n", is.State)
		if is.Error != "" {
			fmt.Fprintf(b, "   Error = %s\n", is.Error)
		}
		if is.State == "BACKUP" && is.Master != "" {
			fmt.Fprintf(b, "   Master router = %s\n", is.Master)
			fmt.Fprintf(b, "   Master priority = %d\n", is.MasterPriority)
		}
		fmt.Fprintf(b, "   Last transition = %d (%s)\n", is.Since.Unix(), ctimeString(is.Since))
		fmt.Fprintf(b, "   Listening device = %s\n", is.Interface)
		if ic != nil {
			if ic.DontTrackPrimary {
				fmt.Fprintf(b, "   VRRP interface tracking disabled\n")
			}
			if ic.SkipCheckAdvAddr {
				fmt.Fprintf(b, "   Skip checking advert IP addresses\n")
			}
			if ic.StrictMode {
				fmt.Fprintf(b, "   Enforcing VRRP compliance\n")
			}
			if src := firstValid(ic.UnicastSrcIP, ic.McastSrcIP); src != "" {
				fmt.Fprintf(b, "   Using src_ip = %s\n", src)
			}
			if ic.UseVMAC {
				fmt.Fprintf(b, "   Use VMAC, ifname = %s\n", ic.VMACName)
			}
			fmt.Fprintf(b, "   Gratuitous ARP delay = %d\n", int(ic.Garp.MasterDelay/time.Second))
			fmt.Fprintf(b, "   Gratuitous ARP repeat = %d\n", ic.Garp.MasterRepeat)
			fmt.Fprintf(b, "   Gratuitous ARP refresh = %d\n", int(ic.Garp.MasterRefresh/time.Second))
			fmt.Fprintf(b, "   Gratuitous ARP refresh repeat = %d\n", ic.Garp.MasterRefreshRepeat)
		}
		fmt.Fprintf(b, "   Virtual Router ID = %d\n", is.VRID)
		fmt.Fprintf(b, "   Priority = %d\n", is.ConfiguredPriority)
		fmt.Fprintf(b, "   Effective priority = %d\n", is.EffectivePriority)
		if is.Version == 2 {
			fmt.Fprintf(b, "   Advert interval = %d sec\n", is.AdvertIntervalMs/1000)
		} else {
			fmt.Fprintf(b, "   Advert interval = %d milli-sec\n", is.AdvertIntervalMs)
		}
		if ic != nil {
			fmt.Fprintf(b, "   Accept = %s\n", enabledWord(ic.Accept))
			fmt.Fprintf(b, "   Preempt = %s\n", enabledWord(ic.Preempt))
			if ic.PreemptDelay > 0 {
				fmt.Fprintf(b, "   Preempt delay = %d secs\n", int(ic.PreemptDelay/time.Second))
			}
			switch ic.Auth.Type {
			case "PASS":
				fmt.Fprintf(b, "   Authentication type = SIMPLE_PASSWORD\n")
				fmt.Fprintf(b, "   Password = %s\n", strings.TrimRight(string(ic.Auth.Pass[:]), "\x00"))
			case "AH":
				fmt.Fprintf(b, "   Authentication type = IPSEC_AH\n")
			default:
				fmt.Fprintf(b, "   Authentication type = none\n")
			}
			if len(ic.UnicastPeers) > 0 {
				fmt.Fprintf(b, "   Unicast Peer = %d\n", len(ic.UnicastPeers))
				for _, p := range ic.UnicastPeers {
					fmt.Fprintf(b, "     %s\n", p.Addr)
				}
			}
		}
		if len(is.Tracked) > 0 {
			fmt.Fprintf(b, "   Tracked objects = %d\n", len(is.Tracked))
			for _, t := range is.Tracked {
				res := "BAD"
				if t.OK {
					res = "GOOD"
				}
				fmt.Fprintf(b, "     %s %s, status = %s, weight = %d\n", t.Kind, t.Name, res, t.Weight)
			}
		}
		if ic != nil {
			writeDumpVIPs(b, "Virtual IP", ic.VIPs, ic.Interface)
			writeDumpVIPs(b, "Virtual IP Excluded", ic.VIPsExcluded, ic.Interface)
		}
		if is.SplitBrainWith != "" {
			fmt.Fprintf(b, "   Split brain with = %s\n", is.SplitBrainWith)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func writeDumpVIPs(b *bytes.Buffer, title string, vs []VIP, dev string) {
	if len(vs) == 0 {
		return
	}
	fmt.Fprintf(b, "   %s = %d\n", title, len(vs))
	for _, v := range vs {
		d := v.Dev
		if d == "" {
			d = dev
		}
		line := fmt.Sprintf("     %s", v.Prefix)
		if v.Brd.IsValid() {
			line += " brd " + v.Brd.String()
		}
		line += " dev " + d
		if v.Prefix.Addr().Is4() {
			scope := v.Scope
			if scope == "" {
				scope = "global"
			}
			line += " scope " + scope
		}
		if v.Label != "" {
			line += " label " + v.Label
		}
		fmt.Fprintln(b, line)
	}
}

func firstValid(as ...interface{ IsValid() bool }) string {
	for _, a := range as {
		if a.IsValid() {
			return fmt.Sprint(a)
		}
	}
	return ""
}

func enabledWord(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// writeStatsDump writes keepalived.stats (vrrp_print_stats).
func writeStatsDump(w io.Writer, st daemonStatus) error {
	b := &bytes.Buffer{}
	for _, is := range st.Instances {
		fmt.Fprintf(b, "VRRP Instance: %s\n", is.Name)
		fmt.Fprintf(b, "  Advertisements:\n")
		fmt.Fprintf(b, "    Received: %d\n", is.AdvertsReceived)
		fmt.Fprintf(b, "    Sent: %d\n", is.AdvertsSent)
		fmt.Fprintf(b, "  Became master: %d\n", is.BecameMaster)
		fmt.Fprintf(b, "  Released master: %d\n", is.ReleasedMaster)
		fmt.Fprintf(b, "  Packet Errors:\n")
		fmt.Fprintf(b, "    Length: %d\n", is.Drops[dropLength.String()])
		fmt.Fprintf(b, "    TTL: %d\n", is.Drops[dropTTL.String()])
		fmt.Fprintf(b, "    Invalid Type: %d\n", is.Drops[dropType.String()])
		fmt.Fprintf(b, "    Advertisement Interval: %d\n", is.Drops[dropInterval.String()])
		fmt.Fprintf(b, "    Address List: %d\n", is.AddressMismatches)
		fmt.Fprintf(b, "  Authentication Errors:\n")
		fmt.Fprintf(b, "    Invalid Type: %d\n", is.Drops[dropAuthAH.String()])
		fmt.Fprintf(b, "    Type Mismatch: %d\n", is.Drops[dropAuthType.String()])
		fmt.Fprintf(b, "    Failure: %d\n", is.Drops[dropAuthPass.String()])
		fmt.Fprintf(b, "  Priority Zero:\n")
		fmt.Fprintf(b, "    Received: %d\n", is.PrioZeroReceived)
		fmt.Fprintf(b, "    Sent: %d\n", is.PrioZeroSent)
		// vipd's additions, after keepalived's lines so that parsers of
		// the old layout keep working.
		fmt.Fprintf(b, "  Other Drops:\n")
		for _, r := range []dropReason{dropVersion, dropChecksum, dropVRID, dropOwner, dropUnicastSrc} {
			fmt.Fprintf(b, "    %s: %d\n", r, is.Drops[r.String()])
		}
		fmt.Fprintf(b, "  Split brain: %d\n", is.SplitBrains)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// jsonDumpData and jsonDumpStats are vrrp_json.c's "data" and "stats".
type jsonDumpData struct {
	Iname                string   `json:"iname"`
	DontTrackPrimary     int      `json:"dont_track_primary"`
	SkipCheckAdvAddr     int      `json:"skip_check_adv_addr"`
	StrictMode           int      `json:"strict_mode"`
	VMACIfname           string   `json:"vmac_ifname"`
	IfpIfname            string   `json:"ifp_ifname"`
	MasterPriority       int      `json:"master_priority"`
	LastTransition       float64  `json:"last_transition"`
	GarpDelay            float64  `json:"garp_delay"`
	GarpRefresh          int      `json:"garp_refresh"`
	GarpRep              int      `json:"garp_rep"`
	GarpRefreshRep       int      `json:"garp_refresh_rep"`
	GarpLowerPrioDelay   int      `json:"garp_lower_prio_delay"`
	GarpLowerPrioRep     int      `json:"garp_lower_prio_rep"`
	LowerPrioNoAdvert    int      `json:"lower_prio_no_advert"`
	HigherPrioSendAdvert int      `json:"higher_prio_send_advert"`
	VRID                 int      `json:"vrid"`
	BasePriority         int      `json:"base_priority"`
	EffectivePriority    int      `json:"effective_priority"`
	VIPSet               bool     `json:"vipset"`
	PromoteSecondaries   bool     `json:"promote_secondaries"`
	AdverInt             float64  `json:"adver_int"`
	MasterAdverInt       float64  `json:"master_adver_int"`
	Accept               int      `json:"accept"`
	NoPreempt            bool     `json:"nopreempt"`
	PreemptDelay         int      `json:"preempt_delay"`
	State                int      `json:"state"`
	WantState            int      `json:"wantstate"`
	Version              int      `json:"version"`
	SMTPAlert            bool     `json:"smtp_alert"`
	VIPs                 []string `json:"vips,omitempty"`
	EVIPs                []string `json:"evips,omitempty"`
	TrackIfp             []string `json:"track_ifp,omitempty"`
	TrackScript          []string `json:"track_script,omitempty"`
	AuthType             int      `json:"auth_type"`
	AuthData             string   `json:"auth_data,omitempty"`
	// vipd's additions.
	Master         string `json:"master,omitempty"`
	SplitBrainWith string `json:"split_brain_with,omitempty"`
	Error          string `json:"error,omitempty"`
}

type jsonDumpStats struct {
	AdvertRcvd        uint64 `json:"advert_rcvd"`
	AdvertSent        uint64 `json:"advert_sent"`
	BecomeMaster      uint64 `json:"become_master"`
	ReleaseMaster     uint64 `json:"release_master"`
	PacketLenErr      uint64 `json:"packet_len_err"`
	AdvertIntervalErr uint64 `json:"advert_interval_err"`
	IPTTLErr          uint64 `json:"ip_ttl_err"`
	InvalidTypeRcvd   uint64 `json:"invalid_type_rcvd"`
	AddrListErr       uint64 `json:"addr_list_err"`
	InvalidAuthtype   uint64 `json:"invalid_authtype"`
	AuthtypeMismatch  uint64 `json:"authtype_mismatch"`
	AuthFailure       uint64 `json:"auth_failure"`
	PriZeroRcvd       uint64 `json:"pri_zero_rcvd"`
	PriZeroSent       uint64 `json:"pri_zero_sent"`
	// vipd's additions.
	SplitBrain uint64            `json:"split_brain"`
	Drops      map[string]uint64 `json:"drops"`
}

type jsonDumpInstance struct {
	Data  jsonDumpData  `json:"data"`
	Stats jsonDumpStats `json:"stats"`
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// writeJSONDump writes keepalived.json: an array with one {data, stats}
// object per instance (keepalived's json_version 1).
func writeJSONDump(w io.Writer, st daemonStatus) error {
	out := []jsonDumpInstance{}
	for _, is := range st.Instances {
		dd := jsonDumpData{
			Iname:             is.Name,
			IfpIfname:         is.Interface,
			MasterPriority:    is.MasterPriority,
			LastTransition:    float64(is.Since.UnixMicro()) / 1e6,
			VRID:              is.VRID,
			BasePriority:      is.ConfiguredPriority,
			EffectivePriority: is.EffectivePriority,
			VIPSet:            is.State == "MASTER",
			MasterAdverInt:    float64(is.AdvertIntervalMs) / 1000,
			State:             keepalivedState(is.State),
			WantState:         keepalivedState(is.State),
			Version:           is.Version,
			Master:            is.Master,
			SplitBrainWith:    is.SplitBrainWith,
			Error:             is.Error,
		}
		if ic := is.cfg; ic != nil {
			dd.DontTrackPrimary = b2i(ic.DontTrackPrimary)
			dd.SkipCheckAdvAddr = b2i(ic.SkipCheckAdvAddr)
			dd.StrictMode = b2i(ic.StrictMode)
			if ic.UseVMAC {
				dd.VMACIfname = ic.VMACName
			}
			dd.GarpDelay = ic.Garp.MasterDelay.Seconds()
			dd.GarpRefresh = int(ic.Garp.MasterRefresh / time.Second)
			dd.GarpRep = ic.Garp.MasterRepeat
			dd.GarpRefreshRep = ic.Garp.MasterRefreshRepeat
			dd.GarpLowerPrioDelay = int(ic.Garp.LowerPrioDelay / time.Second)
			dd.GarpLowerPrioRep = ic.Garp.LowerPrioRepeat
			dd.LowerPrioNoAdvert = b2i(ic.LowerPrioNoAdvert)
			dd.HigherPrioSendAdvert = b2i(ic.HigherPrioSendAdvert)
			dd.PromoteSecondaries = ic.PromoteSecondaries
			dd.AdverInt = float64(ic.AdvertCentis) / 100
			dd.Accept = b2i(ic.Accept)
			dd.NoPreempt = !ic.Preempt
			dd.PreemptDelay = int(ic.PreemptDelay / time.Second)
			dd.SMTPAlert = ic.SMTPAlert
			for _, v := range ic.VIPs {
				dd.VIPs = append(dd.VIPs, v.Prefix.String())
			}
			for _, v := range ic.VIPsExcluded {
				dd.EVIPs = append(dd.EVIPs, v.Prefix.String())
			}
			for _, t := range ic.Track.Interfaces {
				dd.TrackIfp = append(dd.TrackIfp, t.Name)
			}
			switch ic.Auth.Type {
			case "PASS":
				dd.AuthType = int(authSimple)
				dd.AuthData = strings.TrimRight(string(ic.Auth.Pass[:]), "\x00")
			case "AH":
				dd.AuthType = int(authAH)
			}
		}
		for _, t := range is.Tracked {
			if t.Kind == "script" {
				dd.TrackScript = append(dd.TrackScript, t.Name)
			}
		}
		out = append(out, jsonDumpInstance{Data: dd, Stats: jsonDumpStats{
			AdvertRcvd:        is.AdvertsReceived,
			AdvertSent:        is.AdvertsSent,
			BecomeMaster:      is.BecameMaster,
			ReleaseMaster:     is.ReleasedMaster,
			PacketLenErr:      is.Drops[dropLength.String()],
			AdvertIntervalErr: is.Drops[dropInterval.String()],
			IPTTLErr:          is.Drops[dropTTL.String()],
			InvalidTypeRcvd:   is.Drops[dropType.String()],
			AddrListErr:       is.AddressMismatches,
			InvalidAuthtype:   is.Drops[dropAuthAH.String()],
			AuthtypeMismatch:  is.Drops[dropAuthType.String()],
			AuthFailure:       is.Drops[dropAuthPass.String()],
			PriZeroRcvd:       is.PrioZeroReceived,
			PriZeroSent:       is.PrioZeroSent,
			SplitBrain:        is.SplitBrains,
			Drops:             is.Drops,
		}})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// dumpCmd is `vipd dump data|stats|json`: keepalived's dumps, printed.
type dumpCmd struct {
	Kind string `arg:"" enum:"data,stats,json" help:"Which dump: data (keepalived.data), stats (keepalived.stats) or json (keepalived.json)."`
	controlFlag
}

func (c *dumpCmd) Run() error {
	var res struct {
		Dump string `json:"dump"`
	}
	if err := controlCall(c.Control, "dump "+c.Kind, &res); err != nil {
		return err
	}
	_, err := io.WriteString(os.Stdout, res.Dump)
	return err
}

func init() {
	for _, k := range []dumpKind{dumpData, dumpStats, dumpJSON} {
		controlHandlers["dump "+string(k)] = func(d *daemon) any {
			var b bytes.Buffer
			if err := k.render(&b, d.status()); err != nil {
				return map[string]string{"error": err.Error()}
			}
			return map[string]string{"dump": b.String()}
		}
	}
}
