package main

// config_model.go is the typed model of keepalived.conf that loadConfig
// produces and the daemon, tracking and IPVS code consume. Every default
// keepalived applies is already resolved here (priority, version, advert
// interval, GARP settings, multicast groups), so consumers never look at
// global_defs again. Each item carries the Pos it was defined at, so the
// daemon can report run-time problems (a missing interface, a script that
// cannot run) at the right place.

import (
	"math"
	"net"
	"net/netip"
	"time"
)

// Pos is where an item was defined.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.File == "" {
		return "-"
	}
	return p.File + ":" + itoa(p.Line)
}

// Defaults applied by keepalived 2.2.7 (checked against its source and
// against `keepalived -d` dumps of the installed 2.2.7).
const (
	vrrpPrioDefault   = 100 // VRRP_PRIO_DFL
	vrrpPrioOwner     = 255 // RFC 5798 section 5.2.4: the address owner
	vrrpAdvertDefault = time.Second
	garpDelayDefault  = 5 * time.Second // vrrp_garp_master_delay
	garpRepeatDefault = 5               // vrrp_garp_master_repeat
	downTimerAdverts  = 3               // RFC 5798 section 6.1: Master_Down_Interval = 3 * Advertisement_Interval + Skew
	maxVIPsPerAdvert  = 255             // the Count IPvX Addr field is one byte
	vrrpMTUDefault    = 1500
)

// Config is a whole configuration.
type Config struct {
	// File is the main configuration file.
	File           string
	Global         GlobalDefs
	Scripts        map[string]*VRRPScript
	TrackFiles     map[string]*TrackFileDef
	TrackProcesses map[string]*TrackProcessDef
	Instances      []*VRRPInstance // in file order
	SyncGroups     []*SyncGroup
	GarpGroups     []*GarpGroup
	VirtualServers []*VirtualServer
	VSGroups       map[string]*VSGroup
	// StaticAddresses, StaticRoutes and StaticRules are set at start and
	// not tied to any VRRP state.
	StaticAddresses []VIP
	StaticRoutes    []Route
	StaticRules     []Rule
	// LinkbeatInterfaces lists interfaces keepalived polls for link state.
	LinkbeatInterfaces []string
	// SSL is the top-level SSL block: the client credentials SSL_GET
	// checkers present (all empty: no client certificate).
	SSL SSLDefs
}

// SSLDefs is keepalived's SSL { password ca certificate key } block.
type SSLDefs struct {
	Password    string
	CA          string
	Certificate string
	Key         string
	Pos         Pos // where it is defined
}

// Instance returns the vrrp_instance called name, or nil.
func (c *Config) Instance(name string) *VRRPInstance {
	for _, v := range c.Instances {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Script is a command line to run, as written (tracking splits it into
// arguments or runs it under /bin/sh -c), and the user and group to run
// it as (empty: global script_user, else keepalived_script, else root).
type Script struct {
	Cmd   string
	User  string
	Group string
	Pos   Pos // where it is defined
}

// IsSet reports whether a script was configured.
func (s Script) IsSet() bool { return s.Cmd != "" }

// GlobalDefs is global_defs with defaults applied.
type GlobalDefs struct {
	RouterID              string
	NotificationEmail     []string
	NotificationEmailFrom string
	SMTPServer            string // host or address
	SMTPPort              int    // default 25
	SMTPHeloName          string
	SMTPConnectTimeout    time.Duration // default 30s
	SMTPAlert             bool
	SMTPAlertVRRP         *bool // nil: follows SMTPAlert
	SMTPAlertChecker      *bool
	NoEmailFaults         bool
	ScriptUser            string
	ScriptGroup           string
	EnableScriptSecurity  bool
	DefaultInterface      string
	McastGroup4           netip.Addr // default 224.0.0.18
	McastGroup6           netip.Addr // default ff02::12
	VRRPVersion           int        // default 2
	Garp                  GarpSettings
	DownTimerAdverts      int
	LowerPrioNoAdvert     bool
	HigherPrioSendAdvert  bool
	SkipCheckAdvAddr      bool
	Strict                bool
	CheckUnicastSrc       bool
	NotifyPriorityChanges bool
	MaxAutoPriority       int // -1: not set
	DynamicInterfaces     bool
	DynamicInterfacesFlag string // "" or "allow_if_changes"
	NotifyFifo            Fifo
	VRRPNotifyFifo        Fifo
	LVSNotifyFifo         Fifo
	LVSFlush              bool
	LVSFlushOnStop        string // "", "VS", "RS"? kept as written
	CheckerLogAllFailures bool
	StartupScript         Script
	ShutdownScript        Script
	Pos                   Pos // where it is defined
}

// Fifo is a notify fifo and its optional reader script.
type Fifo struct {
	Path   string
	Script Script
}

// GarpSettings are the gratuitous ARP / unsolicited NA timings (RFC 5227
// style announcements keepalived sends on becoming master).
type GarpSettings struct {
	MasterDelay         time.Duration // resend after becoming master; 0: never
	MasterRepeat        int           // GARPs sent at once and after MasterDelay
	MasterRefresh       time.Duration // periodic resend while master; 0: off
	MasterRefreshRepeat int
	LowerPrioDelay      time.Duration // after a lower-priority advert
	LowerPrioRepeat     int
	Interval            time.Duration // between GARPs (vrrp_garp_interval)
	NAInterval          time.Duration // between unsolicited NAs (vrrp_gna_interval)
}

// VRRPAuth is VRRPv2 authentication (RFC 3768 section 5.3.6). Type is
// "" (none), "PASS" (simple text) or "AH" (parsed, reported unsupported).
type VRRPAuth struct {
	Type string
	Pass [8]byte // zero padded, as on the wire
}

// UnicastPeer is one unicast_peer entry.
type UnicastPeer struct {
	Addr   netip.Addr
	MinTTL int // 0: no check
	MaxTTL int // 255
	Pos    Pos // where it is defined
}

// VIP is one address of virtual_ipaddress (or static_ipaddress).
type VIP struct {
	Prefix        netip.Prefix // /32 or /128 when no length was given
	Dev           string       // "" : the instance's interface
	Brd           netip.Addr
	BrdAuto       bool // "brd +"
	Scope         string
	Label         string
	Peer          netip.Prefix
	NoPrefixRoute bool
	NoDAD         bool
	Pos           Pos // where it is defined
}

// Route is one virtual_routes / static_routes entry; Raw keeps the words
// so they can be reported and dumped. vipd parses them but does not
// install them yet.
type Route struct {
	Dest   netip.Prefix
	Src    netip.Addr
	Via    netip.Addr
	Dev    string
	Scope  string
	Table  string
	Metric int
	Type   string // "", "blackhole", "unreachable", "prohibit", "throw"
	Raw    []string
	Pos    Pos // where it is defined
}

// Rule is one virtual_rules / static_rules entry (kept as written).
type Rule struct {
	Raw []string
	Pos Pos // where it is defined
}

// TrackInterface is one track_interface entry.
type TrackInterface struct {
	Name    string
	Weight  int
	Reverse bool
	Pos     Pos // where it is defined
}

// TrackRef refers to a vrrp_script, vrrp_track_file or vrrp_track_process
// by name with an optional weight override.
type TrackRef struct {
	Name      string
	Weight    int
	WeightSet bool // a weight was given here; else the definition's applies
	Reverse   bool
	Pos       Pos // where it is defined
}

// Track is what an instance or sync group tracks.
type Track struct {
	Interfaces []TrackInterface
	Scripts    []TrackRef
	Files      []TrackRef
	Processes  []TrackRef
	BFDs       []TrackRef
}

// Notify are the notify scripts of an instance or sync group.
type Notify struct {
	Master, Backup, Fault, Stop, Deleted Script
	MasterRxLowerPri                     Script
	// Generic is `notify SCRIPT`, called as SCRIPT TYPE NAME STATE PRIORITY.
	Generic  Script
	Priority bool // notify_priority_changes
}

// VRRPInstance is one vrrp_instance with every default resolved.
type VRRPInstance struct {
	Name             string
	Interface        string
	DontTrackPrimary bool
	// State is the configured initial state: "MASTER", "BACKUP" or ""
	// (derived from priority: 255 means MASTER).
	State string
	// InitialState is the resolved start state hint, "MASTER" or "BACKUP".
	InitialState string
	VRID         int
	// Priority is the base priority: the configured one, else 255 with
	// state MASTER, else 100 (keepalived's vrrp_complete_instance).
	Priority int
	// Version is 2 or 3: the instance's version, else the global
	// vrrp_version; IPv6 forces 3 (RFC 5798 only).
	Version int
	// Family is 4 or 6, from the first VIP (4 when there is none).
	Family int
	// AdvertInterval is rounded as the version allows: whole seconds for
	// v2 (RFC 3768 section 5.3.7), centiseconds for v3 (RFC 5798 section
	// 5.2.7). AdvertCentis is the same in centiseconds.
	AdvertInterval     time.Duration
	AdvertCentis       int
	Preempt            bool
	PreemptDelay       time.Duration
	Auth               VRRPAuth
	McastSrcIP         netip.Addr // mcast_src_ip / unicast_src_ip
	UnicastSrcIP       netip.Addr
	UnicastPeers       []UnicastPeer
	UnicastTTL         int // 0: default (255)
	UnicastFaultNoPeer bool
	McastGroup4        netip.Addr
	McastGroup6        netip.Addr
	// UseVMAC creates a macvlan carrying 00:00:5e:00:01:VRID (v6:
	// 00:00:5e:00:02:VRID); VMACName defaults to "vrrp.VRID".
	UseVMAC              bool
	VMACName             string
	VMACAddr             net.HardwareAddr // nil: the RFC 5798 section 7.3 virtual MAC
	VMACXmitBase         bool
	VIPs                 []VIP
	VIPsExcluded         []VIP
	VirtualRoutes        []Route
	VirtualRules         []Rule
	PromoteSecondaries   bool
	Track                Track
	Notify               Notify
	Garp                 GarpSettings
	Accept               bool
	StrictMode           bool
	CheckUnicastSrc      bool
	SkipCheckAdvAddr     bool
	DownTimerAdverts     int
	LowerPrioNoAdvert    bool
	HigherPrioSendAdvert bool
	SMTPAlert            bool
	Debug                int
	// SyncGroup is the name of the vrrp_sync_group the instance is in.
	SyncGroup string
	Pos       Pos // where it is defined
}

// VRRPScript is a vrrp_script.
type VRRPScript struct {
	Name     string
	Script   Script
	Interval time.Duration // default 1s
	Timeout  time.Duration // default: the interval (keepalived prints 0 and waits one interval)
	Weight   int
	Reverse  bool
	Rise     int // default 1
	Fall     int // default 1
	InitFail bool
	Pos      Pos // where it is defined
}

// TrackFileDef is a vrrp_track_file (track_file at top level).
type TrackFileDef struct {
	Name          string
	Path          string
	Weight        int
	Reverse       bool
	InitFile      bool
	InitValue     int
	InitOverwrite bool
	Pos           Pos // where it is defined
}

// TrackProcessDef is a vrrp_track_process.
type TrackProcessDef struct {
	Name           string
	Process        string
	Param          []string
	ParamMatch     string // "", "initial", "partial"
	Weight         int
	Reverse        bool
	Quorum         int // default 1
	QuorumMax      int // 0: no maximum
	ForkDelay      time.Duration
	TerminateDelay time.Duration
	Delay          time.Duration
	FullCommand    bool
	Pos            Pos // where it is defined
}

// SyncGroup is a vrrp_sync_group.
type SyncGroup struct {
	Name           string
	Members        []string
	Track          Track
	Notify         Notify
	SMTPAlert      bool
	GlobalTracking bool
	TrackingWeight bool // sync_group_tracking_weight
	Pos            Pos  // where it is defined
}

// GarpGroup is a garp_group.
type GarpGroup struct {
	Interval   time.Duration
	NAInterval time.Duration
	Interface  string
	Interfaces []string
	Pos        Pos // where it is defined
}

// VirtualServer is one virtual_server: exactly one of Addr (with Port),
// FWMark or Group identifies it.
type VirtualServer struct {
	Addr     netip.Addr
	Port     int
	FWMark   int
	Group    string
	Family   int    // 4 or 6 (ip_family for fwmark services)
	Protocol string // TCP (default), UDP, SCTP
	// Sched is lb_algo / lvs_sched (default wlc).
	Sched string
	// SchedFlags: sh-port, sh-fallback, mh-port, mh-fallback, flag-1..3.
	SchedFlags []string
	// Method is lb_kind / lvs_method: NAT (default), DR, TUN.
	Method                 string
	TunnelType             string // ipip (default), gue, gre
	TunnelPort             int
	TunnelCsum             string
	PersistenceTimeout     time.Duration
	PersistenceGranularity netip.Addr
	PersistenceEngine      string
	OPS                    bool
	HASuspend              bool
	Virtualhost            string
	Quorum                 int // default 1
	QuorumUp               Script
	QuorumDown             Script
	Hysteresis             int
	Alpha                  bool
	Omega                  bool
	InhibitOnFailure       bool
	SMTPAlert              bool
	SorryServer            *RealServer
	SorryServerInhibit     bool
	DelayLoop              time.Duration // default 60s
	Checker                CheckerCommon // defaults inherited by checkers
	RealServers            []*RealServer
	Pos                    Pos // where it is defined
}

// RealServer is one real_server of a virtual server.
type RealServer struct {
	Addr             netip.Addr
	Port             int
	Weight           int // default 1
	Method           string
	InhibitOnFailure bool
	NotifyUp         Script
	NotifyDown       Script
	UThreshold       int
	LThreshold       int
	Alpha            bool
	SMTPAlert        bool
	Virtualhost      string
	Checker          CheckerCommon
	Checkers         []*Checker
	Pos              Pos // where it is defined
}

// CheckerCommon are the settings shared by every checker; unset fields
// inherit from the real server, then the virtual server.
type CheckerCommon struct {
	ConnectIP        netip.Addr
	ConnectPort      int
	BindTo           netip.Addr
	BindPort         int
	BindIf           string
	FWMark           int
	ConnectTimeout   time.Duration // default 5s
	Retry            int           // default 1 (nb_get_retry is the old name)
	DelayBeforeRetry time.Duration // default 1s
	Warmup           time.Duration
	DelayLoop        time.Duration
	Alpha            bool
	LogAllFailures   bool
}

// Checker is one health checker of a real server.
type Checker struct {
	Type string // TCP_CHECK HTTP_GET SSL_GET MISC_CHECK DNS_CHECK PING_CHECK UDP_CHECK SMTP_CHECK FILE_CHECK
	CheckerCommon
	// HTTP_GET / SSL_GET
	URLs         []URLCheck
	Virtualhost  string
	HTTPProtocol string
	EnableSNI    bool
	FastRecovery bool
	// MISC_CHECK
	Misc        Script
	MiscTimeout time.Duration
	MiscDynamic bool
	// DNS_CHECK
	DNSType string // default SOA
	DNSName string // default "."
	// SMTP_CHECK
	HeloName string
	// UDP_CHECK
	Payload        []byte
	RequireReply   bool
	ReplyPayload   []byte
	MinReplyLength int
	MaxReplyLength int
	// FILE_CHECK
	TrackFile   string
	Dynamic     bool
	FileWeight  int // default 1
	FileReverse bool
	Pos         Pos        // where it is defined
	smtpHosts   []*Checker // SMTP_CHECK host{} blocks, expanded by the parser
}

// URLCheck is one url{} of HTTP_GET / SSL_GET.
type URLCheck struct {
	Path         string
	Digest       string        // hex MD5 of the body
	StatusCodes  []StatusRange // empty: 200-299
	Regex        string
	RegexNoMatch bool
	Virtualhost  string
	Pos          Pos // where it is defined
}

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// VSGroup is a virtual_server_group.
type VSGroup struct {
	Name    string
	Entries []VSGroupEntry
	Pos     Pos // where it is defined
}

// VSGroupEntry is an address (or range ending at RangeEnd's last byte) and
// port, or a fwmark.
type VSGroupEntry struct {
	Addr     netip.Addr
	RangeEnd netip.Addr // invalid unless a range was given
	Port     int
	FWMark   int
	Pos      Pos // where it is defined
}

func newConfig() *Config {
	return &Config{
		Global: GlobalDefs{
			SMTPPort:           25,
			SMTPConnectTimeout: 30 * time.Second,
			McastGroup4:        netip.MustParseAddr("224.0.0.18"),
			McastGroup6:        netip.MustParseAddr("ff02::12"),
			VRRPVersion:        2,
			Garp: GarpSettings{
				MasterDelay:         garpDelayDefault,
				MasterRepeat:        garpRepeatDefault,
				MasterRefreshRepeat: 1,
				LowerPrioDelay:      garpDelayDefault,
				LowerPrioRepeat:     garpRepeatDefault,
			},
			DownTimerAdverts: downTimerAdverts,
			MaxAutoPriority:  -1,
		},
		Scripts:        map[string]*VRRPScript{},
		TrackFiles:     map[string]*TrackFileDef{},
		TrackProcesses: map[string]*TrackProcessDef{},
		VSGroups:       map[string]*VSGroup{},
	}
}

// finish resolves defaults and validates across blocks, the way
// keepalived's vrrp_complete_instance does, after the whole file is read.
func (l *loader) finish() {
	c := l.cfg
	type vridKey struct {
		iface  string
		family int
		vrid   int
	}
	vrids := map[vridKey]*VRRPInstance{}
	byName := map[string]*VRRPInstance{}
	for _, v := range c.Instances {
		byName[v.Name] = v
		l.completeInstance(v)
		if v.Interface == "" || v.VRID == 0 {
			continue
		}
		k := vridKey{v.Interface, v.Family, v.VRID}
		if o, dup := vrids[k]; dup {
			l.errorAt(v.Pos, "vrrp_instance %s: virtual_router_id %d on %s (IPv%d) is already used by vrrp_instance %s at %s",
				v.Name, v.VRID, v.Interface, v.Family, o.Name, o.Pos)
			continue
		}
		vrids[k] = v
	}
	for _, s := range c.Scripts {
		if s.Timeout == 0 {
			s.Timeout = s.Interval
		}
	}
	for _, sg := range c.SyncGroups {
		var members []string
		for _, m := range sg.Members {
			v, ok := byName[m]
			switch {
			case !ok:
				l.warnAt(sg.Pos, "vrrp_sync_group %s: vrrp_instance %s does not exist (ignored)", sg.Name, m)
				continue
			case v.SyncGroup != "":
				l.errorAt(sg.Pos, "vrrp_sync_group %s: vrrp_instance %s is already in vrrp_sync_group %s", sg.Name, m, v.SyncGroup)
				continue
			}
			v.SyncGroup = sg.Name
			members = append(members, m)
		}
		sg.Members = members
		if len(members) == 1 {
			l.warnAt(sg.Pos, "vrrp_sync_group %s has only 1 instance, which is probably not what you want", sg.Name)
		}
		sg.Track = l.checkTrack(sg.Pos, "vrrp_sync_group "+sg.Name, sg.Track)
	}
	for _, v := range c.Instances {
		inSyncNoWeight := false
		for _, sg := range c.SyncGroups {
			if sg.Name == v.SyncGroup && !sg.TrackingWeight {
				inSyncNoWeight = true
			}
		}
		l.unweightTracking(v, inSyncNoWeight)
	}
	if len(c.StaticAddresses) > 0 {
		l.warnAt(c.StaticAddresses[0].Pos, "not supported by vipd: static_ipaddress (parsed, not added)")
	}
	if len(c.StaticRoutes) > 0 {
		l.warnAt(c.StaticRoutes[0].Pos, "not supported by vipd: static_routes (parsed, not installed)")
	}
	if len(c.StaticRules) > 0 {
		l.warnAt(c.StaticRules[0].Pos, "not supported by vipd: static_rules (parsed, not installed)")
	}
	l.finishVirtualServers()
}

// completeInstance applies keepalived's defaults and checks to one
// instance, in the order of keepalived 2.2's vrrp_complete_instance
// (vrrp.c); the results were compared with `keepalived -d` dumps and
// `keepalived -t` runs of the installed 2.2.7 on the same files.
func (l *loader) completeInstance(v *VRRPInstance) {
	g := &l.cfg.Global
	if v.Interface == "" {
		if g.DefaultInterface != "" {
			v.Interface = g.DefaultInterface
		} else {
			l.errorAt(v.Pos, "vrrp_instance %s has no interface", v.Name)
		}
	}
	if v.VRID == 0 && !l.isSet(v, "virtual_router_id given") {
		l.errorAt(v.Pos, "vrrp_instance %s has no virtual_router_id (1..255)", v.Name)
	}
	// Strict mode (RFC conformance): strict_mode, else global vrrp_strict.
	strict := g.Strict
	if l.isSet(v, "strict_mode") {
		strict = v.StrictMode
	}
	v.StrictMode = strict
	// Family: the first VIP decides; addresses of the other family are
	// dropped, as keepalived does ("address family must match").
	v.Family = 4
	if len(v.VIPs) > 0 && v.VIPs[0].Prefix.Addr().Is6() {
		v.Family = 6
	} else if len(v.VIPs) == 0 && v.UnicastSrcIP.Is6() {
		v.Family = 6
	}
	keep := v.VIPs[:0]
	type vipKey struct {
		a   netip.Addr
		dev string
	}
	seenVIP := map[vipKey]Pos{}
	for _, ip := range v.VIPs {
		k := vipKey{ip.Prefix.Addr(), ip.Dev}
		if p, dup := seenVIP[k]; dup {
			l.warnAt(ip.Pos, "vrrp_instance %s: virtual address %s is already listed at %s; ignored", v.Name, ip.Prefix.Addr(), p)
			continue
		}
		seenVIP[k] = ip.Pos
		if (ip.Prefix.Addr().Is6()) != (v.Family == 6) {
			l.warnAt(ip.Pos, "vrrp_instance %s: %s is not IPv%d like the first virtual address; ignored (use virtual_ipaddress_excluded)", v.Name, ip.Prefix, v.Family)
			continue
		}
		keep = append(keep, ip)
	}
	v.VIPs = keep
	// Version: instance, else global; IPv6 needs VRRPv3 (RFC 5798 is the
	// only VRRP for IPv6). keepalived keeps an explicit "version 2" with
	// IPv6 outside strict mode; vipd always uses 3, since no VRRPv2 peer
	// can understand an IPv6 advert.
	if v.Version == 0 {
		v.Version = g.VRRPVersion
	}
	if v.Family == 6 && v.Version == 2 {
		if l.isSet(v, "version") {
			l.warnAt(v.Pos, "vrrp_instance %s: cannot use IPv6 with VRRP version 2; using version 3", v.Name)
		}
		v.Version = 3
	}
	if len(v.VIPs) == 0 {
		if v.Version == 3 || strict {
			l.errorAt(v.Pos, "vrrp_instance %s has no virtual_ipaddress; at least one is required", v.Name)
		} else {
			l.warnAt(v.Pos, "vrrp_instance %s has no virtual_ipaddress; at least one is sensible", v.Name)
		}
	}
	// Priority: unset means 255 (address owner) with state MASTER, else
	// 100; state unset means MASTER for 255, else BACKUP.
	if !l.isSet(v, "priority") {
		v.Priority = vrrpPrioDefault
		if v.State == "MASTER" {
			v.Priority = vrrpPrioOwner
		}
	}
	owner := v.Priority == vrrpPrioOwner
	v.InitialState = v.State
	if v.InitialState == "" {
		v.InitialState = "BACKUP"
		if owner {
			v.InitialState = "MASTER"
		}
	} else if strict && (v.State == "MASTER") != owner {
		l.warnAt(v.Pos, "vrrp_instance %s: vrrp_strict: state MASTER must match being the address owner (priority 255)", v.Name)
		v.InitialState = "BACKUP"
		if owner {
			v.InitialState = "MASTER"
		}
	}
	// Authentication: VRRPv2 only (RFC 5798 section 9 removed it); strict
	// mode forbids it.
	if v.Auth.Type != "" {
		p := l.authPos[v].pos()
		switch {
		case strict:
			l.warnAt(p, "vrrp_instance %s: vrrp_strict does not allow authentication; ignored", v.Name)
			v.Auth = VRRPAuth{}
		case v.Version == 3:
			l.warnAt(p, "vrrp_instance %s: VRRP version 3 does not support authentication; ignored", v.Name)
			v.Auth = VRRPAuth{}
		case v.Auth.Pass == [8]byte{}:
			l.warnAt(p, "vrrp_instance %s: authentication without auth_pass; ignored", v.Name)
			v.Auth = VRRPAuth{}
		}
	}
	// Unicast.
	if len(v.UnicastPeers) > 0 {
		if strict {
			l.errorAt(v.UnicastPeers[0].Pos, "vrrp_instance %s: unicast peers are not supported with vrrp_strict", v.Name)
		}
		seen := map[netip.Addr]bool{}
		for _, p := range v.UnicastPeers {
			if p.Addr.Is6() != (v.Family == 6) {
				l.errorAt(p.Pos, "vrrp_instance %s: unicast_peer %s is not IPv%d like the instance", v.Name, p.Addr, v.Family)
			}
			if seen[p.Addr] {
				l.warnAt(p.Pos, "vrrp_instance %s: unicast_peer %s is listed twice", v.Name, p.Addr)
			}
			seen[p.Addr] = true
			if p.MinTTL > p.MaxTTL {
				l.errorAt(p.Pos, "vrrp_instance %s: unicast_peer %s min_ttl %d is more than max_ttl %d", v.Name, p.Addr, p.MinTTL, p.MaxTTL)
			}
		}
		if v.UnicastSrcIP.IsValid() && v.UnicastSrcIP.Is6() != (v.Family == 6) {
			l.errorAt(v.Pos, "vrrp_instance %s: unicast_src_ip %s is not IPv%d like the instance", v.Name, v.UnicastSrcIP, v.Family)
		}
		if v.UseVMAC && !v.VMACXmitBase {
			l.warnAt(v.Pos, "vrrp_instance %s: unicast with use_vmac requires vmac_xmit_base; setting it", v.Name)
			v.VMACXmitBase = true
		}
	} else {
		if v.UnicastSrcIP.IsValid() || v.UnicastTTL != 0 || v.UnicastFaultNoPeer {
			l.warnAt(v.Pos, "vrrp_instance %s: a unicast keyword is set but there is no unicast_peer; adverts are multicast", v.Name)
		}
		if v.Family == 6 && len(v.VIPs) > 0 && !v.VIPs[0].Prefix.Addr().IsLinkLocalUnicast() {
			l.warnAt(v.VIPs[0].Pos, "vrrp_instance %s: the first IPv6 virtual address should be link local (RFC 5798 section 5.2.9)", v.Name)
		}
	}
	// Too many VIPs for one advert: keepalived counts Ethernet, IP, VRRP
	// and v2 auth headers against the interface MTU (assumed 1500 here)
	// and the one-byte count field.
	hdr, addrLen := 14+20+8, 4
	if v.Family == 6 {
		hdr, addrLen = 14+40+8, 16
	} else if v.Version == 2 {
		hdr += 8
	}
	maxAddr := min((vrrpMTUDefault-hdr)/addrLen, maxVIPsPerAdvert)
	if len(v.VIPs) > maxAddr {
		l.warnAt(v.VIPs[maxAddr].Pos, "vrrp_instance %s: %d virtual addresses do not fit in one advert (at most %d); the rest are moved to virtual_ipaddress_excluded", v.Name, len(v.VIPs), maxAddr)
		v.VIPsExcluded = append(append([]VIP(nil), v.VIPs[maxAddr:]...), v.VIPsExcluded...)
		v.VIPs = v.VIPs[:maxAddr:maxAddr]
	}
	// Preemption.
	if owner && !v.Preempt {
		l.warnAt(v.Pos, "vrrp_instance %s: nopreempt is incompatible with priority 255; preempting", v.Name)
		v.Preempt = true
	}
	if v.InitialState == "MASTER" {
		if !v.Preempt {
			l.warnAt(v.Pos, "vrrp_instance %s: nopreempt does not work with state MASTER; preempting", v.Name)
			v.Preempt = true
		}
		if v.PreemptDelay > 0 {
			l.warnAt(v.Pos, "vrrp_instance %s: preempt_delay does not work with state MASTER; cleared", v.Name)
			v.PreemptDelay = 0
		}
	}
	if v.PreemptDelay > 0 && strict {
		l.warnAt(v.Pos, "vrrp_instance %s: preempt_delay is incompatible with vrrp_strict; cleared", v.Name)
		v.PreemptDelay = 0
	}
	if v.PreemptDelay > 0 && !v.Preempt {
		l.warnAt(v.Pos, "vrrp_instance %s: preempt_delay is incompatible with nopreempt; cleared", v.Name)
		v.PreemptDelay = 0
	}
	// Accept mode: default on, off in strict mode; VRRPv2 has no accept
	// mode (RFC 3768), so strict mode clears it there.
	if !l.isSet(v, "accept") && !l.isSet(v, "no_accept") {
		v.Accept = !strict
	}
	if v.Accept && !owner && strict && v.Version == 2 {
		l.warnAt(v.Pos, "vrrp_instance %s: accept mode for VRRP version 2 does not comply with RFC 3768; cleared", v.Name)
		v.Accept = false
	}
	if !v.Accept && !owner {
		// keepalived enforces Accept_Mode off (RFC 5798 section 6.1) with
		// firewall rules dropping traffic to the VIPs; vipd installs none.
		l.warnAt(v.Pos, "not supported by vipd: accept mode off (no_accept or vrrp_strict) for vrrp_instance %s: no firewall rules are installed, so a master accepts traffic to its VIPs", v.Name)
	}
	// Settings inherited from global_defs; strict mode forces the lower
	// priority advert behaviour of RFC 5798 section 6.4.3.
	strictInt := func(key string, val *int, global int, name string) {
		switch {
		case !l.isSet(v, key) && strict:
			*val = 0
		case !l.isSet(v, key):
			*val = global
		case strict && *val != 0:
			l.warnAt(v.Pos, "vrrp_instance %s: vrrp_strict requires %s 0; reset", v.Name, name)
			*val = 0
		}
	}
	strictInt("garp_lower_prio_repeat", &v.Garp.LowerPrioRepeat, g.Garp.LowerPrioRepeat, "garp_lower_prio_repeat")
	lpd := int(v.Garp.LowerPrioDelay)
	strictInt("garp_lower_prio_delay", &lpd, int(g.Garp.LowerPrioDelay), "garp_lower_prio_delay")
	v.Garp.LowerPrioDelay = time.Duration(lpd)
	switch {
	case !l.isSet(v, "lower_prio_no_advert"):
		v.LowerPrioNoAdvert = strict || g.LowerPrioNoAdvert
	case strict && !v.LowerPrioNoAdvert:
		l.warnAt(v.Pos, "vrrp_instance %s: vrrp_strict requires lower_prio_no_advert; set", v.Name)
		v.LowerPrioNoAdvert = true
	}
	switch {
	case !l.isSet(v, "higher_prio_send_advert"):
		v.HigherPrioSendAdvert = !strict && g.HigherPrioSendAdvert
	case strict && v.HigherPrioSendAdvert:
		l.warnAt(v.Pos, "vrrp_instance %s: vrrp_strict requires higher_prio_send_advert off; cleared", v.Name)
		v.HigherPrioSendAdvert = false
	}
	if !l.isSet(v, "smtp_alert") {
		v.SMTPAlert = g.SMTPAlert
		if g.SMTPAlertVRRP != nil {
			v.SMTPAlert = *g.SMTPAlertVRRP
		}
	}
	if !l.isSet(v, "notify_priority_changes") {
		v.Notify.Priority = g.NotifyPriorityChanges
	}
	// Advert interval: RFC 3768 section 5.3.7 (whole seconds, 8 bits) and
	// RFC 5798 section 5.2.7 (centiseconds, 12 bits); keepalived clamps and
	// rounds half up with a warning.
	secs, ok := l.advert[v]
	if !ok {
		secs = vrrpAdvertDefault.Seconds()
	}
	us := int64(math.Round(secs * 1e6))
	if v.Version == 2 {
		switch {
		case us >= 256e6:
			l.warnAt(v.Pos, "vrrp_instance %s: VRRPv2 advert_int %s is out of range (less than 256 s); using 255", v.Name, fmtFloat(secs))
			us = 255e6
		case us%1e6 != 0:
			r := (us + 5e5) / 1e6 * 1e6
			if r == 0 {
				r = 1e6
			}
			l.warnAt(v.Pos, "vrrp_instance %s: VRRPv2 advert_int %s must be whole seconds; rounded to %d", v.Name, fmtFloat(secs), r/1e6)
			us = r
		}
	} else {
		switch {
		case us >= 4096e4:
			l.warnAt(v.Pos, "vrrp_instance %s: VRRPv3 advert_int %s is out of range (less than 40.96 s); using 40.95", v.Name, fmtFloat(secs))
			us = 4095e4
		case us%1e4 != 0:
			r := (us + 5e3) / 1e4 * 1e4
			if r == 0 {
				r = 1e4
			}
			l.warnAt(v.Pos, "vrrp_instance %s: VRRPv3 advert_int %s must be in units of 10 ms; rounded to %s", v.Name, fmtFloat(secs), centis(int(r/1e4)))
			us = r
		}
	}
	v.AdvertCentis = int(us / 1e4)
	v.AdvertInterval = time.Duration(us) * time.Microsecond
	// VMAC.
	if v.UseVMAC && v.VMACName == "" {
		v.VMACName = "vrrp." + itoa(v.VRID)
	}
	if v.UseVMAC && strict && v.VMACXmitBase {
		l.warnAt(v.Pos, "vrrp_instance %s: vmac_xmit_base is incompatible with vrrp_strict; cleared", v.Name)
		v.VMACXmitBase = false
	}
	if v.UseVMAC && v.PromoteSecondaries {
		l.warnAt(v.Pos, "vrrp_instance %s: promote_secondaries is automatic with use_vmac; ignored", v.Name)
		v.PromoteSecondaries = false
	}
	if v.VMACXmitBase && !v.UseVMAC {
		l.warnAt(v.Pos, "vrrp_instance %s: vmac_xmit_base is only valid with use_vmac; cleared", v.Name)
		v.VMACXmitBase = false
	}
	// The rest of the instance's settings come from global_defs unless set.
	inherit := func(key string, set func()) {
		if !l.isSet(v, key) {
			set()
		}
	}
	inherit("garp_master_delay", func() { v.Garp.MasterDelay = g.Garp.MasterDelay })
	inherit("garp_master_repeat", func() { v.Garp.MasterRepeat = g.Garp.MasterRepeat })
	inherit("garp_master_refresh", func() { v.Garp.MasterRefresh = g.Garp.MasterRefresh })
	inherit("garp_master_refresh_repeat", func() { v.Garp.MasterRefreshRepeat = g.Garp.MasterRefreshRepeat })
	v.Garp.Interval = g.Garp.Interval
	v.Garp.NAInterval = g.Garp.NAInterval
	inherit("down_timer_adverts", func() { v.DownTimerAdverts = g.DownTimerAdverts })
	inherit("check_unicast_src", func() { v.CheckUnicastSrc = g.CheckUnicastSrc })
	inherit("skip_check_adv_addr", func() { v.SkipCheckAdvAddr = g.SkipCheckAdvAddr })
	if !v.McastGroup4.IsValid() {
		v.McastGroup4 = g.McastGroup4
	}
	if !v.McastGroup6.IsValid() {
		v.McastGroup6 = g.McastGroup6
	}
	// Tracking: an instance does not track its own interface explicitly.
	var tifs []TrackInterface
	for _, t := range v.Track.Interfaces {
		if t.Name == v.Interface {
			l.warnAt(t.Pos, "vrrp_instance %s: track_interface %s is the instance's own interface; ignored", v.Name, t.Name)
			continue
		}
		tifs = append(tifs, t)
	}
	v.Track.Interfaces = tifs
	v.Track = l.checkTrack(v.Pos, "vrrp_instance "+v.Name, v.Track)
}

// checkTrack drops references to scripts, files and processes that are
// not defined, with a warning (keepalived ignores them the same way), and
// resolves each reference's weight: the one given in track_* wins, else
// the definition's.
func (l *loader) checkTrack(p Pos, who string, t Track) Track {
	c := l.cfg
	filter := func(refs []TrackRef, kind string, def func(string) (w int, rev, ok bool)) []TrackRef {
		var out []TrackRef
		for _, r := range refs {
			w, rev, ok := def(r.Name)
			if !ok {
				l.warnAt(r.Pos, "%s: %s %s is not defined; ignored", who, kind, r.Name)
				continue
			}
			if !r.WeightSet {
				r.Weight, r.Reverse = w, rev
			}
			out = append(out, r)
		}
		return out
	}
	t.Scripts = filter(t.Scripts, "vrrp_script", func(s string) (int, bool, bool) {
		d, ok := c.Scripts[s]
		if !ok {
			return 0, false, false
		}
		return d.Weight, d.Reverse, true
	})
	t.Files = filter(t.Files, "vrrp_track_file", func(s string) (int, bool, bool) {
		d, ok := c.TrackFiles[s]
		if !ok {
			return 0, false, false
		}
		return d.Weight, d.Reverse, true
	})
	t.Processes = filter(t.Processes, "vrrp_track_process", func(s string) (int, bool, bool) {
		d, ok := c.TrackProcesses[s]
		if !ok {
			return 0, false, false
		}
		return d.Weight, d.Reverse, true
	})
	return t
}

// unweightTracking applies keepalived's rule that an instance in a sync
// group without sync_group_tracking_weight, or an address owner
// (priority 255), ignores tracking weights: the sync group member's
// weights become 0 (a failure means FAULT), the owner's weighted
// tracking is dropped (its priority must stay 255).
func (l *loader) unweightTracking(v *VRRPInstance, inSyncNoWeight bool) {
	owner := v.Priority == vrrpPrioOwner
	if !inSyncNoWeight && !owner {
		return
	}
	why := "address owner"
	if inSyncNoWeight {
		why = "sync group without sync_group_tracking_weight"
	}
	var ifs []TrackInterface
	for _, t := range v.Track.Interfaces {
		if t.Weight != 0 {
			l.warnAt(t.Pos, "vrrp_instance %s: ignoring weight of tracked interface %s (%s)", v.Name, t.Name, why)
			if !inSyncNoWeight {
				continue
			}
			t.Weight = 0
		}
		ifs = append(ifs, t)
	}
	v.Track.Interfaces = ifs
	fix := func(refs []TrackRef, kind string) []TrackRef {
		var out []TrackRef
		for _, r := range refs {
			if r.Weight != 0 {
				l.warnAt(r.Pos, "vrrp_instance %s: ignoring weight of %s %s (%s)", v.Name, kind, r.Name, why)
				if !inSyncNoWeight {
					continue
				}
				r.Weight, r.WeightSet = 0, true
			}
			out = append(out, r)
		}
		return out
	}
	v.Track.Scripts = fix(v.Track.Scripts, "track_script")
	v.Track.Files = fix(v.Track.Files, "track_file")
	v.Track.Processes = fix(v.Track.Processes, "track_process")
}

// finishVirtualServers resolves the checker settings each checker
// inherits (checker, else real_server, else virtual_server, else
// keepalived's default) and checks virtual servers against their groups
// and real servers.
func (l *loader) finishVirtualServers() {
	c := l.cfg
	seen := map[string]*VirtualServer{}
	for _, vs := range c.VirtualServers {
		key := vsKey(vs)
		if o, dup := seen[key]; dup {
			l.errorAt(vs.Pos, "virtual_server %s is already defined at %s", key, o.Pos)
			continue
		}
		seen[key] = vs
		if vs.Group != "" {
			g, ok := c.VSGroups[vs.Group]
			if !ok {
				l.errorAt(vs.Pos, "virtual_server group %s: no virtual_server_group %s is defined", vs.Group, vs.Group)
				continue
			}
			for _, e := range g.Entries {
				if e.Addr.IsValid() && vs.Family == 0 {
					vs.Family = familyOf(e.Addr)
				}
			}
		}
		if vs.Checker.DelayLoop >= 0 {
			vs.DelayLoop = vs.Checker.DelayLoop
		}
		if len(vs.RealServers) == 0 && vs.SorryServer == nil {
			l.warnAt(vs.Pos, "virtual_server %s has no real_server", key)
		}
		rsSeen := map[string]bool{}
		for _, rs := range vs.RealServers {
			if vs.Family == 0 {
				vs.Family = familyOf(rs.Addr)
			}
			if familyOf(rs.Addr) != vs.Family {
				l.errorAt(rs.Pos, "real_server %s is not IPv%d like virtual_server %s", rs.Addr, vs.Family, key)
			}
			k := netip.AddrPortFrom(rs.Addr, uint16(rs.Port)).String()
			if rsSeen[k] {
				l.errorAt(rs.Pos, "real_server %s is listed twice in virtual_server %s", k, key)
			}
			rsSeen[k] = true
			if rs.Method == "" {
				rs.Method = vs.Method
			}
			if (rs.Method == "DR" || rs.Method == "TUN") && vs.Port != 0 && rs.Port != vs.Port {
				l.warnAt(rs.Pos, "real_server %s: with lvs_method %s the port cannot be changed; %d is used", k, rs.Method, vs.Port)
			}
			if !rs.InhibitOnFailure {
				rs.InhibitOnFailure = vs.InhibitOnFailure
			}
			for _, ck := range rs.Checkers {
				own := ck.CheckerCommon
				ck.CheckerCommon = resolveCommon(own, rs.Checker, vs.Checker, vs.DelayLoop)
				ck.CheckerCommon = checkerKindDefaults(ck.Type, ck.CheckerCommon, rs.Checker, vs.Checker, own)
				if ck.Type == "MISC_CHECK" && ck.MiscTimeout == 0 {
					ck.MiscTimeout = ck.DelayLoop
				}
			}
			rs.Checker = resolveCommon(rs.Checker, vs.Checker, unsetCommon(), vs.DelayLoop)
		}
		if vs.SorryServer != nil && vs.SorryServer.Method == "" {
			vs.SorryServer.Method = vs.Method
		}
		vs.Checker = resolveCommon(vs.Checker, unsetCommon(), unsetCommon(), vs.DelayLoop)
		if vs.Family == 0 {
			vs.Family = 4
		}
	}
}

// resolveCommon fills unset (negative) settings of c from rs, then vs,
// then keepalived's defaults: connect_timeout 5s, retry 1,
// delay_before_retry 1s, delay_loop the virtual server's, warmup the
// resolved delay_loop.
// checkerKindDefaults replaces resolveCommon's generic defaults with the
// ones keepalived gives each checker type when neither the checker, its
// real server nor its virtual server set them: MISC_CHECK retries 0 times,
// DNS_CHECK 3 (check_misc.c, check_dns.c); HTTP_GET and SSL_GET wait 3 s
// before a retry and DNS_CHECK a delay_loop (check_http.c, check_dns.c).
func checkerKindDefaults(kind string, c, rs, vs, own CheckerCommon) CheckerCommon {
	if own.Retry < 0 && rs.Retry < 0 && vs.Retry < 0 {
		switch kind {
		case "MISC_CHECK":
			c.Retry = 0
		case "DNS_CHECK":
			c.Retry = 3
		}
	}
	if own.DelayBeforeRetry < 0 && rs.DelayBeforeRetry < 0 && vs.DelayBeforeRetry < 0 {
		switch kind {
		case "HTTP_GET", "SSL_GET":
			c.DelayBeforeRetry = 3 * time.Second
		case "DNS_CHECK":
			c.DelayBeforeRetry = c.DelayLoop
		}
	}
	return c
}

func resolveCommon(c, rs, vs CheckerCommon, delayLoop time.Duration) CheckerCommon {
	pickD := func(v ...time.Duration) time.Duration {
		for _, x := range v {
			if x >= 0 {
				return x
			}
		}
		return 0
	}
	pickI := func(v ...int) int {
		for _, x := range v {
			if x >= 0 {
				return x
			}
		}
		return 0
	}
	c.ConnectTimeout = pickD(c.ConnectTimeout, rs.ConnectTimeout, vs.ConnectTimeout, 5*time.Second)
	c.Retry = pickI(c.Retry, rs.Retry, vs.Retry, 1)
	c.DelayBeforeRetry = pickD(c.DelayBeforeRetry, rs.DelayBeforeRetry, vs.DelayBeforeRetry, time.Second)
	c.DelayLoop = pickD(c.DelayLoop, rs.DelayLoop, vs.DelayLoop, delayLoop)
	// keepalived's default warmup is the checker's delay_loop
	// (check_api.c): the first checks of many real servers spread over a
	// delay_loop instead of starting together.
	c.Warmup = pickD(c.Warmup, rs.Warmup, vs.Warmup, c.DelayLoop)
	return c
}

func familyOf(a netip.Addr) int {
	if a.Is6() {
		return 6
	}
	return 4
}

// vsKey names a virtual server the way users write it.
func vsKey(vs *VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return "fwmark " + itoa(vs.FWMark)
	case vs.Group != "":
		return "group " + vs.Group
	}
	return netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String() + "/" + vs.Protocol
}
