package main

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files (testdata/conf/*.golden, docs/keywords.md)")

// samplesDir finds keepalived's sample configurations: ../shared from the
// repository root (../../shared from a worktree under wt/).
var samplesDir = func() string {
	for _, d := range []string{"../shared/keepalived-samples", "../../shared/keepalived-samples"} {
		if st, err := os.Stat(d); err == nil && st.IsDir() {
			return d
		}
	}
	return "../shared/keepalived-samples"
}()

// loadString loads text as the file "keepalived.conf" (plus extra files).
func loadString(t *testing.T, text string, extra map[string]string) (*Config, []diag, error) {
	t.Helper()
	files := map[string]string{"keepalived.conf": text}
	for k, v := range extra {
		files[k] = v
	}
	return loadConfig("keepalived.conf", memOptions(files, "test"))
}

// memOptions serves files from a map (tests and fuzzing).
func memOptions(files map[string]string, id string) loadOptions {
	return loadOptions{
		ConfigID: id,
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := files[filepath.Clean(p)]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		},
		Glob: func(pat string) ([]string, error) {
			var out []string
			for name := range files {
				if ok, err := filepath.Match(pat, name); err != nil {
					return nil, err
				} else if ok {
					out = append(out, name)
				}
			}
			return out, nil
		},
	}
}

func diagText(ds []diag) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func mustLoad(t *testing.T, text string) (*Config, []diag) {
	t.Helper()
	c, ds, err := loadString(t, text, nil)
	if err != nil {
		t.Fatalf("load: %v\n%s", err, diagText(ds))
	}
	return c, ds
}

func hasDiag(ds []diag, s string) bool {
	for _, d := range ds {
		if strings.Contains(d.String(), s) {
			return true
		}
	}
	return false
}

// TestGolden loads every testdata/conf/*.conf and compares diagnostics
// and the normalised dump with the .golden file beside it. A first line
// "# config-id: ID" selects @ID lines.
func TestGolden(t *testing.T) {
	// Golden output must not depend on this host's interfaces.
	savedIf, savedAcct := interfaceExists, accountExists
	interfaceExists = func(name string) bool { return name != "missing0" }
	accountExists = func(kind, name string) bool { return name != "nosuchuser" }
	defer func() { interfaceExists, accountExists = savedIf, savedAcct }()
	files, _ := filepath.Glob("testdata/conf/*.conf")
	if len(files) == 0 {
		t.Fatal("no testdata/conf/*.conf")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			id := "host"
			if b, err := os.ReadFile(f); err == nil {
				if first, _, _ := strings.Cut(string(b), "\n"); strings.HasPrefix(first, "# config-id: ") {
					id = strings.TrimPrefix(first, "# config-id: ")
				}
			}
			var out, errb bytes.Buffer
			rc := runConfigTest(f, id, true, &out, &errb)
			got := "exit " + itoa(rc) + "\n" + errb.String() + "----\n" + out.String()
			golden := strings.TrimSuffix(f, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", f, golden, lineDiff(string(want), got))
			}
			wantErr := strings.HasPrefix(filepath.Base(f), "err_")
			if wantErr != (rc == 1) {
				t.Errorf("exit %d; files named err_* must fail, others must load", rc)
			}
		})
	}
}

func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return "line " + itoa(i+1) + ":\n- " + x + "\n+ " + y
		}
	}
	return ""
}

// TestSamples: every sample configuration shipped with keepalived loads
// with exit status 0 (warnings allowed), and its dump loads back to the
// same dump.
func TestSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf.*"))
	if len(files) == 0 {
		t.Skip("no keepalived samples in " + samplesDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errb bytes.Buffer
			if rc := runConfigTest(f, "high", true, &out, &errb); rc != 0 {
				t.Fatalf("exit %d:\n%s", rc, errb.String())
			}
			checkRoundTrip(t, out.String())
		})
	}
}

// checkRoundTrip loads a dump and checks that it dumps identically, with
// no errors and no warnings other than those dumps legitimately keep.
func checkRoundTrip(t *testing.T, dump string) {
	t.Helper()
	c, ds, err := loadConfig("dump.conf", memOptions(map[string]string{"dump.conf": dump}, "x"))
	if err != nil {
		t.Fatalf("dump does not load: %v\n%s\n%s", err, diagText(ds), dump)
	}
	if again := dumpConfig(c); again != dump {
		t.Fatalf("dump is not stable:\n%s", lineDiff(dump, again))
	}
}

func TestGoldenRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/conf/*.conf")
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), "err_") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errb bytes.Buffer
			if rc := runConfigTest(f, "lb2", true, &out, &errb); rc != 0 {
				t.Fatalf("exit %d:\n%s", rc, errb.String())
			}
			checkRoundTrip(t, out.String())
		})
	}
}

// TestKeepalivedAcceptsDump runs the installed keepalived's own config
// test on our dumps: every keyword vipd writes must be one keepalived
// knows, so a dump can go back to a keepalived host.
func TestKeepalivedAcceptsDump(t *testing.T) {
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived not installed")
	}
	files, _ := filepath.Glob("testdata/conf/*.conf")
	samples, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf.*"))
	for _, f := range append(files, samples...) {
		if strings.HasPrefix(filepath.Base(f), "err_") {
			continue
		}
		id := "lb1"
		if strings.HasPrefix(f, samplesDir) {
			id = "high"
		}
		var out, errb bytes.Buffer
		if rc := runConfigTest(f, id, true, &out, &errb); rc != 0 {
			t.Fatalf("%s: exit %d", f, rc)
		}
		p := filepath.Join(t.TempDir(), "dump.conf")
		if err := os.WriteFile(p, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		res, _ := exec.Command(ka, "-t", "-l", "-f", p).CombinedOutput()
		for _, line := range strings.Split(string(res), "\n") {
			// The samples carry some invalid values of their own (an
			// address "192.168.200./24" in a rule); check keywords there.
			if strings.Contains(line, "Unknown keyword") || id == "lb1" && strings.Contains(line, "invalid") {
				t.Errorf("%s: keepalived -t on the dump: %s", f, line)
			}
		}
	}
}

// TestInstanceDefaults checks the defaults keepalived applies, citing the
// RFC where the rule comes from it.
func TestInstanceDefaults(t *testing.T) {
	c, ds := mustLoad(t, `
vrrp_instance M {
    state MASTER
    interface eth0
    virtual_router_id 1
    nopreempt
    advert_int 1.6
    virtual_ipaddress {
        10.0.0.1/24
    }
}
vrrp_instance B {
    interface eth0
    virtual_router_id 2
    virtual_ipaddress {
        10.0.0.2
    }
}
vrrp_instance V3 {
    interface eth0
    virtual_router_id 3
    version 3
    advert_int 0.015
    virtual_ipaddress {
        10.0.0.3
    }
}
`)
	m, b, v3 := c.Instances[0], c.Instances[1], c.Instances[2]
	// keepalived: state MASTER without priority means the address owner
	// (RFC 5798 section 5.2.4: 255 is the owner's priority).
	if m.Priority != 255 || m.InitialState != "MASTER" {
		t.Errorf("MASTER without priority: priority %d state %s, want 255 MASTER", m.Priority, m.InitialState)
	}
	// The owner always preempts (RFC 5798 section 6.4.1).
	if !m.Preempt || !hasDiag(ds, "nopreempt is incompatible with priority 255") {
		t.Errorf("nopreempt with priority 255 must be cleared with a warning")
	}
	// RFC 3768 section 5.3.7: whole seconds; keepalived rounds half up.
	if m.AdvertCentis != 200 || m.AdvertInterval != 2*time.Second {
		t.Errorf("v2 advert_int 1.6: got %d cs %v, want 200 cs 2s", m.AdvertCentis, m.AdvertInterval)
	}
	if b.Priority != 100 || b.InitialState != "BACKUP" || b.Version != 2 || b.AdvertInterval != time.Second {
		t.Errorf("defaults: priority %d state %s version %d advert %v", b.Priority, b.InitialState, b.Version, b.AdvertInterval)
	}
	if b.VIPs[0].Prefix != netip.MustParsePrefix("10.0.0.2/32") {
		t.Errorf("VIP without length: %v, want /32", b.VIPs[0].Prefix)
	}
	if !b.Accept || b.Garp.MasterDelay != 5*time.Second || b.Garp.MasterRepeat != 5 || b.DownTimerAdverts != 3 {
		t.Errorf("accept %v garp %+v down %d", b.Accept, b.Garp, b.DownTimerAdverts)
	}
	if b.McastGroup4 != netip.MustParseAddr("224.0.0.18") || b.McastGroup6 != netip.MustParseAddr("ff02::12") {
		t.Errorf("multicast groups %v %v (RFC 5798 section 5.1.1.2 / 5.1.2.2)", b.McastGroup4, b.McastGroup6)
	}
	// RFC 5798 section 5.2.7: 12-bit centiseconds.
	if v3.AdvertCentis != 2 || v3.AdvertInterval != 20*time.Millisecond {
		t.Errorf("v3 advert_int 0.015: %d cs %v, want 2 cs", v3.AdvertCentis, v3.AdvertInterval)
	}
}

func TestIPv6ForcesV3(t *testing.T) {
	c, ds := mustLoad(t, `
global_defs {
    vrrp_version 2
}
vrrp_instance V6 {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        fe80::1/64
    }
}`)
	if v := c.Instances[0]; v.Version != 3 || v.Family != 6 {
		t.Errorf("IPv6 instance: version %d family %d, want 3 and 6 (RFC 5798 section 1)", v.Version, v.Family)
	}
	if len(ds) != 0 {
		t.Errorf("unexpected diagnostics:\n%s", diagText(ds))
	}
}

func TestAuthPassTruncated(t *testing.T) {
	c, ds := mustLoad(t, `vrrp_instance A {
    interface eth0
    virtual_router_id 1
    authentication {
        auth_type PASS
        auth_pass 0123456789
    }
    virtual_ipaddress {
        10.0.0.1
    }
}`)
	if c.Instances[0].Auth.Pass != [8]byte{'0', '1', '2', '3', '4', '5', '6', '7'} || c.Instances[0].Auth.Type != "PASS" {
		t.Errorf("auth %+v", c.Instances[0].Auth)
	}
	if !hasDiag(ds, "keepalived.conf:6: warning: auth_pass truncated to 8 characters") {
		t.Errorf("no truncation warning:\n%s", diagText(ds))
	}
}

func TestTooManyVIPs(t *testing.T) {
	var b strings.Builder
	b.WriteString("vrrp_instance A {\ninterface eth0\nvirtual_router_id 1\nvirtual_ipaddress {\n")
	b.WriteString("~SEQ(I, 1, 100) fe80::${I}\n")
	b.WriteString("}\n}\n")
	c, ds := mustLoad(t, b.String())
	v := c.Instances[0]
	// (1500 - 14 - 40 - 8) / 16 = 89 IPv6 addresses fit in one advert.
	if len(v.VIPs) != 89 || len(v.VIPsExcluded) != 11 {
		t.Errorf("VIPs %d excluded %d, want 89 and 11", len(v.VIPs), len(v.VIPsExcluded))
	}
	if !hasDiag(ds, "do not fit in one advert") {
		t.Errorf("no warning:\n%s", diagText(ds))
	}
}

func TestErrorsNameFileAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, conf, want string
	}{
		{"vrid range", "vrrp_instance A {\n interface eth0\n virtual_router_id 300\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n",
			"keepalived.conf:3: error: virtual_router_id 300 is out of range 1..255"},
		{"duplicate vrid", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.2\n }\n}\n",
			"keepalived.conf:8: error: vrrp_instance B: virtual_router_id 1 on eth0 (IPv4) is already used by vrrp_instance A at keepalived.conf:1"},
		{"missing brace", "vrrp_instance A {\n interface eth0\n",
			`keepalived.conf:1: error: block "vrrp_instance" opened here is not closed (missing '}')`},
		{"extra brace", "}\n", "keepalived.conf:1: error: '}' without a matching '{'"},
		{"strict unicast", "global_defs {\n vrrp_strict\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n 10.0.0.9\n }\n virtual_ipaddress {\n 10.0.0.1\n }\n}\n",
			"keepalived.conf:8: error: vrrp_instance A: unicast peers are not supported with vrrp_strict"},
		{"bad bool", "global_defs {\n vrrp_strict maybe\n}\n", `keepalived.conf:2: error: vrrp_strict "maybe" is not a boolean`},
		{"no vip v3", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n version 3\n}\n",
			"keepalived.conf:1: error: vrrp_instance A has no virtual_ipaddress; at least one is required"},
		{"recursive def", "$A=${B}\n$B=${A}\n${A}\n", "keepalived.conf:3: error: parameter expansion nested deeper than"},
		{"huge seq", "~SEQ(I, 1, 100000000) x\n", "keepalived.conf:1: error: ~SEQ generates 100000000 lines"},
		{"include missing", "includea nothing*.conf\n", `keepalived.conf:1: error: includea "nothing*.conf" matches no file`},
		{"dup script", "vrrp_script s {\n script /bin/true\n}\nvrrp_script s {\n script /bin/false\n}\n",
			"keepalived.conf:4: error: vrrp_script s is already defined at keepalived.conf:1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ds, err := loadString(t, tc.conf, nil)
			if err == nil || c != nil {
				t.Fatalf("loaded; want error %q\n%s", tc.want, diagText(ds))
			}
			if !hasDiag(ds, tc.want) {
				t.Errorf("want %q, got:\n%s", tc.want, diagText(ds))
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	_, ds := mustLoad(t, `global_defs {
    vrrp_ipsets keepalived
}
vrrp_instance A {
    interface eth0
    virtual_router_id 1
    prority 150
    unicast_src_ip 10.0.0.5
    virtual_router_id 2
    virtual_ipaddress {
        10.0.0.1
    }
}`)
	for _, want := range []string{
		"keepalived.conf:2: warning: not supported by vipd: vrrp_ipsets",
		"keepalived.conf:7: warning: unknown keyword 'prority' in vrrp_instance, did you mean 'priority'?",
		"keepalived.conf:4: warning: vrrp_instance A: a unicast keyword is set but there is no unicast_peer",
		"keepalived.conf:9: warning: virtual_router_id is given again (first at keepalived.conf:6); this one applies",
	} {
		if !hasDiag(ds, want) {
			t.Errorf("missing %q in:\n%s", want, diagText(ds))
		}
	}
}

// TestPreprocessor checks conditionals, parameters and generators
// against the examples of keepalived.conf(5).
func TestPreprocessor(t *testing.T) {
	files := map[string]string{
		"keepalived.conf": `
$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}
$ADDRESS_BASE_SUB=0
@main $PRIORITY=240
@backup $PRIORITY=200
$IF_MAIN=@main
vrrp_instance VI_0 {
    interface eth0
    virtual_router_id 1
    priority $PRIORITY
    $IF_MAIN advert_int 3
    notify_master "/bin/echo $NOT_DEFINED ${_INSTANCE}" # comment
    virtual_ipaddress {
        ${ADDRESS_BASE}.100/32
$ADDRESS_BASE_SUB=10
        ${ADDRESS_BASE}.100/32
        ~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}
    }
}
include sub/*.conf
`,
		"sub/a.conf": "vrrp_script s {\n script \"/bin/x ${_PWD}\"\n}\n",
	}
	for _, id := range []string{"main", "backup"} {
		c, ds, err := loadConfig("keepalived.conf", memOptions(files, id))
		if err != nil {
			t.Fatalf("%s: %v\n%s", id, err, diagText(ds))
		}
		v := c.Instances[0]
		wantPrio, wantAdv := 240, 3*time.Second
		if id == "backup" {
			wantPrio, wantAdv = 200, time.Second
		}
		if v.Priority != wantPrio || v.AdvertInterval != wantAdv {
			t.Errorf("-i %s: priority %d advert %v, want %d %v", id, v.Priority, v.AdvertInterval, wantPrio, wantAdv)
		}
		var got []string
		for _, ip := range v.VIPs {
			got = append(got, ip.Prefix.String())
		}
		want := "10.2.0.100/32 10.2.10.100/32 192.168.10.1/32 192.170.10.1/32 192.168.20.4/32 192.170.20.4/32"
		if strings.Join(got, " ") != want {
			t.Errorf("VIPs %v, want %s", got, want)
		}
		if v.Notify.Master.Cmd != "/bin/echo $NOT_DEFINED "+id {
			t.Errorf("notify_master %q", v.Notify.Master.Cmd)
		}
		abs, _ := filepath.Abs("sub")
		if s := c.Scripts["s"]; s == nil || s.Script.Cmd != "/bin/x "+abs {
			t.Errorf("included script %+v, want _PWD %s", s, abs)
		}
	}
}

func TestSplitWords(t *testing.T) {
	for in, want := range map[string]string{
		`abcd" efg h jkl "mnop`:     `[abcd efg h jkl mnop]`,
		`abcd "efg h jkl" mnop`:     `[abcd] [efg h jkl] [mnop]`,
		`a{b}c`:                     `[a] [{] [b] [}] [c]`,
		`"{" '}'`:                   `[{] [}]`,
		`"tab\there" "\x41\101\cA"`: "[tab\there] [AA\x01]",
		`'single "inner"' "esc\"q"`: `[single "inner"] [esc"q]`,
	} {
		ws, err := splitWords(in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var parts []string
		for _, w := range ws {
			parts = append(parts, "["+w.S+"]")
		}
		if got := strings.Join(parts, " "); got != want {
			t.Errorf("splitWords(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := instanceTable.names()
	for in, want := range map[string]string{
		"prority": "priority", "virtual_router": "virtual_routes", "frobnicate": "", "virtual_ipadress": "virtual_ipaddress", "x": "",
		"advert_init": "advert_int", "nopremept": "nopreempt",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestVirtualServerInheritance(t *testing.T) {
	c, _ := mustLoad(t, `virtual_server 10.0.0.1 80 {
    delay_loop 10
    retry 4
    real_server 10.0.1.1 80 {
        connect_timeout 2
        TCP_CHECK {
            delay_before_retry 7
        }
        HTTP_GET {
            retry 1
            url {
                path /
            }
        }
    }
}`)
	vs := c.VirtualServers[0]
	tcp, http := vs.RealServers[0].Checkers[0], vs.RealServers[0].Checkers[1]
	if tcp.Retry != 4 || tcp.ConnectTimeout != 2*time.Second || tcp.DelayBeforeRetry != 7*time.Second || tcp.DelayLoop != 10*time.Second {
		t.Errorf("TCP_CHECK inherited %+v", tcp.CheckerCommon)
	}
	// HTTP_GET's own default delay_before_retry is 3 s (check_http.c).
	if http.Retry != 1 || http.DelayBeforeRetry != 3*time.Second {
		t.Errorf("HTTP_GET %+v", http.CheckerCommon)
	}
	if vs.Sched != "wlc" || vs.Method != "NAT" || vs.Protocol != "TCP" || vs.RealServers[0].Weight != 1 {
		t.Errorf("virtual server defaults: %s %s %s weight %d", vs.Sched, vs.Method, vs.Protocol, vs.RealServers[0].Weight)
	}
}

// TestKeywordsDoc keeps docs/keywords.md equal to the keyword tables.
func TestKeywordsDoc(t *testing.T) {
	want := keywordsMarkdown()
	const path = "docs/keywords.md"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if got, err := os.ReadFile(path); err != nil || string(got) != want {
		t.Fatalf("%s is out of date; run go test -run TestKeywordsDoc -update", path)
	}
	// The README's summary, between its markers.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- keywords:begin -->\n", "<!-- keywords:end -->"
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatal("README.md has no keyword summary markers")
	}
	if sum := keywordsSummary(); *update {
		out := string(readme[:i+len(begin)]) + sum + string(readme[j:])
		if err := os.WriteFile("README.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if string(readme[i+len(begin):j]) != sum {
		t.Fatalf("README.md's keyword summary is out of date: replace it with keywordsSummary()'s output:\n%s", sum)
	}
}

// TestNoPartialConfig: a configuration with one error yields no model.
func TestNoPartialConfig(t *testing.T) {
	c, _, err := loadString(t, "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 10.0.0.1\n }\n}\nvrrp_instance B {\n priority 900\n}\n", nil)
	if c != nil || err == nil {
		t.Fatalf("got a model from a configuration with errors")
	}
}

func TestExpandBraces(t *testing.T) {
	for in, want := range map[string]string{
		"a/*.conf":             "a/*.conf",
		"{foo/{,cat,dog},bar}": "foo/ foo/cat foo/dog bar",
		"x{1,2}y{a,b}":         "x1ya x1yb x2ya x2yb",
		"odd{brace":            "odd{brace",
		"{single}":             "{single}",
	} {
		if got := strings.Join(expandBraces(in, 64), " "); got != want {
			t.Errorf("expandBraces(%q) = %q, want %q", in, got, want)
		}
	}
	if n := len(expandBraces(strings.Repeat("{a,b}", 20), 64)); n != 64 {
		t.Errorf("limit: got %d patterns", n)
	}
}
