package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// kaInstance is what keepalived -d prints about one instance.
type kaInstance map[string]string

// runKeepalivedDump runs the installed keepalived on conf in a network
// namespace of its own (so it touches nothing on the host) and returns
// the instance settings it printed with -d (dump configuration).
func runKeepalivedDump(t *testing.T, conf string) map[string]kaInstance {
	t.Helper()
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs keepalived in a network namespace")
	}
	ns := fmt.Sprintf("vipd-config-%d-ka", os.Getpid())
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	run("-n", ns, "link", "set", "eth0", "up")
	run("-n", ns, "link", "set", "eth1", "up")
	dir := t.TempDir()
	p := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, ka, "-n", "-l", "-G", "-D", "-d", "--vrrp",
		"-f", p, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 3 * time.Second
	out, _ := cmd.CombinedOutput()
	res := map[string]kaInstance{}
	var cur kaInstance
	for _, line := range strings.Split(string(out), "\n") {
		// "Wed Nov 25 07:59:15 2026:    Priority = 255"
		if i := strings.Index(line, ": "); i >= 0 && i < 30 {
			line = line[i+2:]
		}
		k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		if k == "VRRP Instance" {
			cur = kaInstance{}
			res[v] = cur
			continue
		}
		if cur != nil {
			if _, seen := cur[k]; !seen {
				cur[k] = v
			}
		}
	}
	if len(res) == 0 {
		t.Fatalf("no instances in keepalived's dump:\n%s", out)
	}
	return res
}

// kaAdvert parses keepalived's "1 sec" / "20 milli-sec".
func kaAdvert(s string) time.Duration {
	f := strings.Fields(s)
	if len(f) != 2 {
		return -1
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return -1
	}
	if f[1] == "sec" {
		return time.Duration(n) * time.Second
	}
	return time.Duration(n) * time.Millisecond
}

func enabled(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// TestMatchesKeepalived compares the defaults and corrections vipd
// resolves with what keepalived 2.2.7 itself resolves for the same file.
func TestMatchesKeepalived(t *testing.T) {
	for _, tc := range []struct{ name, conf string }{
		{"plain", `
vrrp_instance A {
  state MASTER
  interface eth0
  virtual_router_id 1
  nopreempt
  preempt_delay 5
  virtual_ipaddress {
    10.9.0.1/24
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 2
  priority 255
  advert_int 2.5
  virtual_ipaddress {
    10.9.0.2/24
  }
}
vrrp_instance C {
  interface eth0
  virtual_router_id 3
  version 3
  advert_int 0.015
  no_accept
  preempt_delay 3
  garp_master_delay 2
  garp_lower_prio_repeat 2
  virtual_ipaddress {
    10.9.0.3/24
  }
}
vrrp_instance D {
  interface eth0
  virtual_router_id 4
  virtual_ipaddress {
    fe80::4/64
    2001:db8::4/64
  }
}
vrrp_instance E {
  state BACKUP
  interface eth0
  virtual_router_id 5
  priority 255
  nopreempt
  virtual_ipaddress {
    10.9.0.5/24
  }
}
vrrp_instance F {
  state BACKUP
  interface eth0
  virtual_router_id 6
  priority 90
  nopreempt
  advert_int 0.4
  virtual_ipaddress {
    10.9.0.6/24
  }
}`},
		{"strict", `
global_defs {
  vrrp_strict
  vrrp_garp_master_delay 3
}
vrrp_instance S1 {
  state MASTER
  interface eth0
  virtual_router_id 11
  priority 100
  accept
  preempt_delay 4
  virtual_ipaddress {
    10.9.1.1/24
  }
}
vrrp_instance S2 {
  interface eth0
  virtual_router_id 12
  version 3
  accept
  garp_lower_prio_repeat 3
  lower_prio_no_advert false
  virtual_ipaddress {
    10.9.1.2/24
  }
}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, ds := mustLoad(t, tc.conf)
			ka := runKeepalivedDump(t, tc.conf)
			for _, v := range cfg.Instances {
				k, ok := ka[v.Name]
				if !ok {
					t.Errorf("%s: not in keepalived's dump", v.Name)
					continue
				}
				check := func(what, want, got string) {
					if want != got {
						t.Errorf("%s %s: keepalived %q, vipd %q", v.Name, what, want, got)
					}
				}
				check("version", k["VRRP Version"], itoa(v.Version))
				check("state", k["Wantstate"], v.InitialState)
				check("priority", k["Priority"], itoa(v.Priority))
				check("accept", k["Accept"], enabled(v.Accept))
				check("preempt", k["Preempt"], enabled(v.Preempt))
				check("garp delay", k["Gratuitous ARP delay"], secs(v.Garp.MasterDelay))
				check("garp lower prio repeat", k["Gratuitous ARP lower priority repeat"], itoa(v.Garp.LowerPrioRepeat))
				check("send advert after lower", k["Send advert after receive lower priority advert"], strconv.FormatBool(!v.LowerPrioNoAdvert))
				if d := kaAdvert(k["Advert interval"]); d != v.AdvertInterval {
					t.Errorf("%s advert interval: keepalived %v, vipd %v", v.Name, d, v.AdvertInterval)
				}
				pd := k["Preempt delay"]
				if pd == "" {
					pd = "0 secs"
				}
				check("preempt delay", pd, secs(v.PreemptDelay)+" secs")
			}
			t.Logf("vipd diagnostics:\n%s", diagText(ds))
		})
	}
}
