package main

// control.go is the daemon's control socket and its clients, `vipd status`
// and `vipd reload`. The socket is an abstract unix socket by default
// ("@vipd"): it belongs to the daemon's network namespace, so two vipd in
// two namespaces never share a file. Only root may use it (SO_PEERCRED).

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"
)

// defaultControl is the control socket: abstract, per network namespace.
const defaultControl = "@vipd"

// controlFlag is shared by the daemon and the clients.
type controlFlag struct {
	Control string `default:"@vipd" placeholder:"SOCKET" help:"Control socket: a path, or @NAME for an abstract socket (per network namespace)."`
}

// instanceStatus is one instance in `vipd status --json`.
type instanceStatus struct {
	Name               string            `json:"name"`
	Interface          string            `json:"interface"`
	VRID               int               `json:"vrid"`
	Version            int               `json:"version"`
	Family             string            `json:"family"`
	State              string            `json:"state"`
	Since              time.Time         `json:"since"`
	TimeInState        float64           `json:"time_in_state_s"`
	Transitions        int               `json:"transitions"`
	ConfiguredPriority int               `json:"configured_priority"`
	EffectivePriority  int               `json:"effective_priority"`
	Master             string            `json:"master,omitempty"`
	MasterPriority     int               `json:"master_priority"`
	AdvertIntervalMs   int               `json:"advert_interval_ms"`
	VIPs               []string          `json:"vips"`
	AdvertsSent        uint64            `json:"adverts_sent"`
	AdvertsReceived    uint64            `json:"adverts_received"`
	Drops              map[string]uint64 `json:"drops"`
	AddressMismatches  uint64            `json:"address_mismatches"`
	ChecksumForms      map[string]uint64 `json:"checksum_forms"`
	Overruns           uint64            `json:"overruns"`
	Tracked            []trackedStatus   `json:"tracked,omitempty"`
	Error              string            `json:"error,omitempty"`
	BecameMaster       uint64            `json:"became_master"`
	ReleasedMaster     uint64            `json:"released_master"`
	PrioZeroReceived   uint64            `json:"priority_zero_received"`
	PrioZeroSent       uint64            `json:"priority_zero_sent"`
	SplitBrains        uint64            `json:"split_brains"`
	SplitBrainWith     string            `json:"split_brain_with,omitempty"` // the other master, while it lasts

	cfg *VRRPInstance // for the keepalived dumps
}

// trackedStatus is one tracked object's current result.
type trackedStatus struct {
	Kind   string `json:"kind"` // script, interface, file, process
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Weight int    `json:"weight"` // what it adds to the priority now
	Detail string `json:"detail,omitempty"`
}

// daemonStatus is `vipd status --json`.
type daemonStatus struct {
	Version   string           `json:"version"`
	Pid       int              `json:"pid"`
	Config    string           `json:"config"`
	Started   time.Time        `json:"started"`
	Instances []instanceStatus `json:"instances"`
	// VirtualServers are the IPVS virtual servers (lvs.go).
	VirtualServers []virtualServerStatus `json:"virtual_servers,omitempty"`
}

// trackStatusFunc, when set, reports an instance's tracked objects.
var trackStatusFunc func(d *daemon, r *runner) []trackedStatus

func (d *daemon) status() daemonStatus {
	d.mu.Lock()
	runners := append([]*runner(nil), d.runners...)
	lvs := d.lvs
	d.mu.Unlock()
	ds := daemonStatus{Version: version, Pid: os.Getpid(), Config: d.cfgPath, Started: d.started}
	now := time.Now()
	for _, r := range runners {
		st := r.snapshot()
		ic := st.Config
		is := instanceStatus{
			Name: ic.Name, Interface: ic.Interface, VRID: ic.VRID, Version: ic.Version,
			Family:             map[bool]string{true: "inet6", false: "inet"}[ic.Family == 6],
			State:              st.State.String(),
			Since:              st.Since,
			TimeInState:        now.Sub(st.Since).Seconds(),
			Transitions:        st.Transitions,
			ConfiguredPriority: ic.Priority,
			EffectivePriority:  int(st.Priority),
			MasterPriority:     int(st.MasterPrio),
			AdvertIntervalMs:   int(st.IntervalCS) * 10,
			AdvertsSent:        st.SentAdverts,
			AdvertsReceived:    st.Rx.Drops[dropOK],
			Drops:              map[string]uint64{},
			AddressMismatches:  st.Rx.AddrMismatch,
			ChecksumForms:      map[string]uint64{},
			Overruns:           st.Overruns,
			Error:              st.Err,
			cfg:                ic,
			BecameMaster:       st.BecameMaster,
			ReleasedMaster:     st.ReleasedMaster,
			PrioZeroReceived:   st.PrioZeroRcvd,
			PrioZeroSent:       st.PrioZeroSent,
			SplitBrains:        st.SplitBrains,
		}
		if st.Master.IsValid() {
			is.Master = st.Master.String()
		}
		if st.Rival.IsValid() {
			is.SplitBrainWith = st.Rival.String()
		}
		for i, n := range st.Rx.Drops {
			if dropReason(i) != dropOK && n > 0 {
				is.Drops[dropReason(i).String()] = n
			}
		}
		for i, n := range st.Rx.Forms {
			if n > 0 {
				is.ChecksumForms[ChecksumForm(i).String()] = n
			}
		}
		for _, v := range ic.VIPs {
			is.VIPs = append(is.VIPs, v.Prefix.String())
		}
		if trackStatusFunc != nil {
			is.Tracked = trackStatusFunc(d, r)
		}
		ds.Instances = append(ds.Instances, is)
	}
	ds.VirtualServers = lvs.Status()
	return ds
}

// listenControl opens the control socket and serves it until it is closed.
func (d *daemon) listenControl(addr string) (io.Closer, error) {
	if addr == "" {
		return nil, nil
	}
	if !strings.HasPrefix(addr, "@") {
		os.Remove(addr) // a socket left by a crashed run
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", addr, err)
	}
	if !strings.HasPrefix(addr, "@") {
		os.Chmod(addr, 0o600)
	}
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			go d.serveControl(c)
		}
	}()
	return ln, nil
}

func (d *daemon) serveControl(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if uid, err := peerUID(c); err != nil || uid != 0 {
		fmt.Fprintln(c, `{"error":"permission denied: the control socket is for root"}`)
		return
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	enc := json.NewEncoder(c)
	switch cmd := strings.TrimSpace(line); cmd {
	case "status":
		enc.Encode(d.status())
	case "reload":
		if err := d.reloadFrom(d.cfgPath, d.loadOpt); err != nil {
			enc.Encode(map[string]string{"error": err.Error()})
			return
		}
		enc.Encode(map[string]string{"result": "reloaded"})
	default:
		if h, ok := controlHandlers[cmd]; ok {
			enc.Encode(h(d))
			return
		}
		enc.Encode(map[string]string{"error": fmt.Sprintf("unknown command %q", cmd)})
	}
}

// controlHandlers are further control commands (dumps, ...), by name.
var controlHandlers = map[string]func(d *daemon) any{}

func peerUID(c *net.UnixConn) (uint32, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, err
	}
	var cred *unix.Ucred
	var serr error
	raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if serr != nil {
		return 0, serr
	}
	return cred.Uid, nil
}

// controlCall sends cmd to the daemon and decodes its JSON reply into v.
func controlCall(addr, cmd string, v any) error {
	c, err := net.DialTimeout("unix", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("is vipd running? control socket %s: %w", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, cmd+"\n"); err != nil {
		return err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return json.Unmarshal(body, v)
}

// statusCmd is `vipd status`.
type statusCmd struct {
	JSON bool `help:"Print JSON."`
	controlFlag
}

func (c *statusCmd) Run() error {
	var st daemonStatus
	if err := controlCall(c.Control, "status", &st); err != nil {
		return err
	}
	if c.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(os.Stdout, st)
	return nil
}

func printStatus(w io.Writer, st daemonStatus) {
	fmt.Fprintf(w, "vipd %s, pid %d, config %s, up %s\n\n", st.Version, st.Pid, st.Config, time.Since(st.Started).Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTANCE\tIFACE\tVRID\tSTATE\tPRIO\tMASTER\tINTERVAL\tIN STATE\tSENT\tRCVD\tDROPS\tVIPS")
	for _, is := range st.Instances {
		master := "-"
		if is.Master != "" {
			master = fmt.Sprintf("%s (%d)", is.Master, is.MasterPriority)
		}
		var drops []string
		for k, n := range is.Drops {
			drops = append(drops, fmt.Sprintf("%s=%d", k, n))
		}
		sort.Strings(drops)
		if len(drops) == 0 {
			drops = []string{"-"}
		}
		state := is.State
		if is.Error != "" {
			state += " (" + is.Error + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\tv%d %s\t%d/%d\t%s\t%dms\t%s\t%d\t%d\t%s\t%s\n",
			is.Name, is.Interface, is.VRID, is.Version, state, is.EffectivePriority, is.ConfiguredPriority,
			master, is.AdvertIntervalMs, time.Duration(is.TimeInState*float64(time.Second)).Round(time.Second),
			is.AdvertsSent, is.AdvertsReceived, strings.Join(drops, ","), strings.Join(is.VIPs, " "))
	}
	tw.Flush()
	for _, is := range st.Instances {
		for _, t := range is.Tracked {
			res := "FAIL"
			if t.OK {
				res = "OK"
			}
			fmt.Fprintf(w, "%s: %s %s %s weight %+d %s\n", is.Name, t.Kind, t.Name, res, t.Weight, t.Detail)
		}
		if is.SplitBrainWith != "" {
			fmt.Fprintf(w, "%s: SPLIT BRAIN: %s also advertises as master (split brains so far: %d)\n", is.Name, is.SplitBrainWith, is.SplitBrains)
		}
	}
	printLVSStatus(w, st.VirtualServers)
}

// reloadCmd is `vipd reload`: the running daemon re-reads its
// configuration (like SIGHUP), and says whether it was accepted.
type reloadCmd struct {
	controlFlag
}

func (c *reloadCmd) Run() error {
	var res map[string]string
	if err := controlCall(c.Control, "reload", &res); err != nil {
		return fmt.Errorf("reload: %w (the running configuration is kept; see the daemon's log)", err)
	}
	fmt.Println(res["result"])
	return nil
}
