package main

// Scenario scripts (testdata/scenarios/*.txt), in the spirit of etcd raft's
// interaction tests: each file drives one instance and holds the expected
// trace. A line that does not start with white space is a command; the
// indented lines after it are its expected output: every action Step
// returned, then "-> STATE deadline=OFFSET". Lines starting with # are
// comments. Run with -update-scenarios to rewrite the expected output (then review
// the diff).
//
// Commands:
//
//	config version=3 prio=100 interval=100 [nopreempt] [preempt_delay=5s]
//	       [state=MASTER] [strict] [down_adverts=N] [higher_prio_send_advert]
//	       [garp_lower_prio] [sync_group] [vips=A,B]
//	at TIME EVENT     TIME is an offset from the start ("1.5s") or "deadline"
//
// Events: startup, shutdown, timer, advert from=ADDR prio=N [interval=CS],
// track weight=N [faults=N], link down|up, force STATE [DETAIL],
// reconfig KEY=VALUE... (the config keys).

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var updateScenarios = flag.Bool("update-scenarios", false, "rewrite the expected output of testdata/scenarios")

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			out, mismatches := runScenario(t, file, string(b))
			if *updateScenarios {
				if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, m := range mismatches {
				t.Error(m)
			}
		})
	}
}

// runScenario runs a script and returns it with the actual output in
// place of the expected one, and the differences.
func runScenario(t *testing.T, file, script string) (string, []string) {
	var (
		out        strings.Builder
		mismatches []string
		i          *instance
		cfg        instanceConfig
		expected   []string
		actual     []string
		cmdLine    int
	)
	flush := func() {
		if cmdLine == 0 {
			return
		}
		if strings.Join(expected, "\n") != strings.Join(actual, "\n") {
			mismatches = append(mismatches, fmt.Sprintf("%s:%d:\n got:\n    %s\n want:\n    %s",
				file, cmdLine, strings.Join(actual, "\n    "), strings.Join(expected, "\n    ")))
		}
		for _, l := range actual {
			out.WriteString("  " + l + "\n")
		}
		expected, actual, cmdLine = nil, nil, 0
	}
	for n, line := range strings.Split(strings.TrimRight(script, "\n"), "\n") {
		if strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t") {
			expected = append(expected, strings.TrimSpace(line))
			continue
		}
		flush()
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		cmdLine = n + 1
		fail := func(format string, args ...any) {
			t.Fatalf("%s:%d: %s", file, n+1, fmt.Sprintf(format, args...))
		}
		switch f[0] {
		case "config":
			cfg = fsmConfig(100)
			if err := scenarioConfig(&cfg, f[1:]); err != nil {
				fail("%v", err)
			}
			var err error
			if i, err = newInstance(cfg); err != nil {
				fail("%v", err)
			}
			cmdLine = 0
		case "at":
			if i == nil || len(f) < 3 {
				fail("at needs a config first and TIME EVENT")
			}
			now, err := scenarioTime(f[1], i)
			if err != nil {
				fail("%v", err)
			}
			acts, err := scenarioStep(i, cfg, f[2:], now)
			if err != nil {
				fail("%v", err)
			}
			for _, a := range acts {
				actual = append(actual, a.String())
			}
			d := "none"
			if dl := i.Deadline(); !dl.IsZero() {
				d = dl.Sub(fsmT0).String()
			}
			actual = append(actual, fmt.Sprintf("-> %s deadline=%s", i.State(), d))
			if f[2] == "reconfig" {
				cfg = i.Config()
			}
		default:
			fail("unknown command %q", f[0])
		}
	}
	flush()
	return out.String(), mismatches
}

func scenarioTime(s string, i *instance) (time.Time, error) {
	if s == "deadline" {
		d := i.Deadline()
		if d.IsZero() {
			return d, fmt.Errorf("no deadline in %s", i.State())
		}
		return d, nil
	}
	d, err := time.ParseDuration(s)
	return fsmT0.Add(d), err
}

func scenarioConfig(c *instanceConfig, args []string) error {
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		n, _ := strconv.Atoi(v)
		switch k {
		case "version":
			c.Version = uint8(n)
		case "prio":
			c.Priority = uint8(n)
		case "interval":
			c.Interval = uint16(n)
		case "nopreempt":
			c.NoPreempt = true
		case "preempt_delay":
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			c.PreemptDelay = d
		case "strict":
			c.LowerPrioNoAdvert = true
		case "down_adverts":
			c.DownAdverts = n
		case "higher_prio_send_advert":
			c.HigherPrioSendAdvert = true
		case "state":
			c.InitialMaster = v == "MASTER"
		case "sync_group":
			c.SyncGroup = true
		case "garp_lower_prio":
			c.GARPOnLowerPrio = true
		case "vips":
			c.VIPs = nil
			for _, s := range strings.Split(v, ",") {
				addr, err := netip.ParseAddr(s)
				if err != nil {
					return err
				}
				c.VIPs = append(c.VIPs, addr)
			}
		default:
			return fmt.Errorf("unknown config key %q", k)
		}
	}
	return nil
}

func scenarioStep(i *instance, cfg instanceConfig, f []string, now time.Time) ([]action, error) {
	kv := map[string]string{}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		kv[k] = v
	}
	num := func(k string, def int) int {
		if v, ok := kv[k]; ok {
			n, _ := strconv.Atoi(v)
			return n
		}
		return def
	}
	switch f[0] {
	case "startup":
		return i.Step(event{Kind: evStartup}, now), nil
	case "shutdown":
		return i.Step(event{Kind: evShutdown}, now), nil
	case "timer":
		return i.Step(event{Kind: evTimer}, now), nil
	case "advert":
		src, err := netip.ParseAddr(kv["from"])
		if err != nil {
			return nil, err
		}
		return i.Step(fsmAdvert(src, uint8(num("prio", 100)), uint16(num("interval", 100))), now), nil
	case "track":
		return i.Step(event{Kind: evTrack, Weight: num("weight", 0), Faults: num("faults", 0)}, now), nil
	case "link":
		if len(f) == 2 && f[1] == "down" {
			return i.Step(event{Kind: evLinkDown}, now), nil
		}
		return i.Step(event{Kind: evLinkUp}, now), nil
	case "force":
		if len(f) < 2 {
			return nil, fmt.Errorf("force needs a state")
		}
		var s state
		switch f[1] {
		case "MASTER":
			s = stateMaster
		case "BACKUP":
			s = stateBackup
		case "FAULT":
			s = stateFault
		default:
			return nil, fmt.Errorf("force %q", f[1])
		}
		return i.Step(event{Kind: evForce, State: s, Detail: strings.Join(f[2:], " ")}, now), nil
	case "reconfig":
		if err := scenarioConfig(&cfg, f[1:]); err != nil {
			return nil, err
		}
		return i.Reconfigure(cfg, now)
	}
	return nil, fmt.Errorf("unknown event %q", f[0])
}
