package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// sharedPcaps is the directory of public VRRP captures (../shared/pcaps
// from the main checkout; one more level up from a worktree under wt/).
func sharedPcaps(t testing.TB) string {
	t.Helper()
	for _, d := range []string{os.Getenv("VIPD_SHARED_PCAPS"), "../shared/pcaps", "../../shared/pcaps"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "PROVENANCE.md")); err == nil {
			return d
		}
	}
	t.Skip("public captures not found at ../shared/pcaps (see its PROVENANCE.md)")
	return ""
}

func captureFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"*.pcap", "*.pcapng"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		out = append(out, m...)
	}
	slices.Sort(out)
	return out
}

// inspectAll runs inspectFrame over every frame of a file and returns the
// records by frame number, plus the frames gopacket cannot take apart at
// the link layer (Frame Relay in a tcpdump fuzz case).
func inspectAll(t *testing.T, name string) (recs map[int]inspectRecord, undecodable map[int]bool) {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, undecodable = map[int]inspectRecord{}, map[int]bool{}
	var a Advert
	err = readCapture(f, func(fr captureFrame) error {
		if rec, ok := inspectFrame(fr, &a); ok {
			recs[fr.N] = rec
		} else if ls := gopacket.NewPacket(fr.Data, fr.Link, gopacket.Default).Layers(); len(ls) > 0 && ls[0].LayerType() == gopacket.LayerTypeDecodeFailure {
			undecodable[fr.N] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, undecodable
}

// TestReplaySharedPcaps replays the public captures: every VRRP frame gets
// a record with a verdict (never a panic), and its fields agree with
// tshark's decode of the same frame and with tcpdump's frame count.
func TestReplaySharedPcaps(t *testing.T) {
	dir := sharedPcaps(t)
	for _, name := range captureFiles(t, dir) {
		t.Run(filepath.Base(name), func(t *testing.T) {
			recs, undecodable := inspectAll(t, name)
			for n, rec := range recs {
				if rec.Verdict == "" {
					t.Errorf("frame %d: no verdict", n)
				}
			}
			// tcpdump -v prints one "VRRPv" line per VRRP frame.
			if td, err := os.ReadFile(name + ".tcpdump-nn-v.txt"); err == nil && len(undecodable) == 0 {
				if want := strings.Count(string(td), "VRRPv"); want != len(recs) {
					t.Errorf("%d vrrp frames, tcpdump printed %d", len(recs), want)
				}
			}
			tsv, err := os.ReadFile(name + ".tshark-vrrp-fields.tsv")
			if err != nil {
				t.Skip("no tshark decode beside the capture")
			}
			compareTshark(t, string(tsv), recs, undecodable)
		})
	}
}

func compareTshark(t *testing.T, tsv string, recs map[int]inspectRecord, undecodable map[int]bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(tsv))
	var cols []string
	rows := 0
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = f
			continue
		}
		row := map[string]string{}
		for i, c := range cols {
			if i < len(f) {
				row[c] = f[i]
			}
		}
		n, _ := strconv.Atoi(row["frame.number"])
		rec, ok := recs[n]
		if !ok {
			if undecodable[n] {
				t.Logf("frame %d: link type gopacket cannot decode; tshark shows vrrp", n)
				continue
			}
			t.Errorf("frame %d: tshark shows vrrp, inspect does not", n)
			continue
		}
		rows++
		check := func(field, got string) {
			if want := row[field]; want != got {
				t.Errorf("frame %d: %s = %q, tshark %q", n, field, got, want)
			}
		}
		src := row["ip.src"] + row["ipv6.src"]
		check("ip.src", strings.TrimPrefix(rec.Src, row["ipv6.src"]))
		if src != rec.Src {
			t.Errorf("frame %d: src %s, tshark %s", n, rec.Src, src)
		}
		if ttl := row["ip.ttl"] + row["ipv6.hlim"]; ttl != strconv.Itoa(int(rec.TTL)) {
			t.Errorf("frame %d: ttl %d, tshark %s", n, rec.TTL, ttl)
		}
		if row["eth.src"] != "" {
			check("eth.src", rec.SrcMAC)
		}
		check("vrrp.version", strconv.Itoa(int(rec.Version)))
		check("vrrp.type", strconv.Itoa(int(rec.Type)))
		check("vrrp.virt_rtr_id", strconv.Itoa(int(rec.VRID)))
		check("vrrp.prio", strconv.Itoa(int(rec.Priority)))
		check("vrrp.addr_count", strconv.Itoa(int(rec.Count)))
		if rec.Version == 2 {
			check("vrrp.auth_type", strconv.Itoa(int(*rec.AuthType)))
			check("vrrp.adver_int", strconv.Itoa(int(rec.IntervalCS/100)))
		} else {
			check("vrrp.short_adver_int", strconv.Itoa(int(rec.IntervalCS)))
		}
		if row["vrrp.checksum"] != "" {
			check("vrrp.checksum", rec.Checksum)
		}
		if rec.Verdict == "length" {
			// tshark decodes what it can of a short advert; we refuse it
			// (PcapPlusPlus's v2 vector lacks the 8 auth bytes).
			continue
		}
		check("vrrp.checksum.status", map[bool]string{true: "1", false: "0"}[rec.ChecksumOK])
		addrs := row["vrrp.ip_addr"] + row["vrrp.ipv6_addr"]
		if got := strings.Join(rec.Addresses, ";"); got != addrs {
			t.Errorf("frame %d: addresses %s, tshark %s", n, got, addrs)
		}
		if rec.Auth != nil {
			check("vrrp.auth_string", *rec.Auth)
		}
	}
	t.Logf("%d frames compared with tshark", rows)
}

// TestReplayTcpdumpVerdicts pins the verdicts on the tcpdump test-suite
// capture: every advert there is well formed, with a good checksum.
func TestReplayTcpdumpVerdicts(t *testing.T) {
	dir := sharedPcaps(t)
	recs, _ := inspectAll(t, filepath.Join(dir, "tcpdump-vrrp.pcap"))
	if len(recs) < 50 {
		t.Fatalf("only %d vrrp frames", len(recs))
	}
	forms := map[string]int{}
	for n, rec := range recs {
		if rec.Verdict != "ok" || !rec.ChecksumOK {
			t.Errorf("frame %d: verdict %s checksum ok %v", n, rec.Verdict, rec.ChecksumOK)
			continue
		}
		forms[strconv.Itoa(int(rec.Version))+"/"+*rec.ChecksumForm]++
	}
	if forms["2/message"] == 0 || forms["3/pseudo"] == 0 || len(forms) != 2 {
		t.Errorf("checksum forms %v, want v2 message and v3 pseudo only", forms)
	}
}

// TestReplayFuzzCrashers: tcpdump's fuzz crashers yield drop verdicts.
func TestReplayFuzzCrashers(t *testing.T) {
	dir := sharedPcaps(t)
	recs, _ := inspectAll(t, filepath.Join(dir, "tcpdump-vrrp-vrrp_print-oobr-2.pcap"))
	if len(recs) != 10 {
		t.Errorf("%d records, want 10", len(recs))
	}
	for n, rec := range recs {
		if rec.Verdict == "ok" {
			t.Errorf("frame %d accepted", n)
		}
	}
	if recs[10].Verdict != "version" {
		t.Errorf("frame 10 (VRRPv15): verdict %s", recs[10].Verdict)
	}
}

var inspectKeys = []string{"frame", "time", "src", "dst", "src_mac", "ttl", "version", "type", "vrid", "priority",
	"count", "auth_type", "auth", "interval_cs", "checksum", "checksum_ok", "checksum_form", "addresses", "verdict"}

// TestInspectJSON checks the --json output: one object per VRRP frame,
// with exactly the documented keys.
func TestInspectJSON(t *testing.T) {
	var out bytes.Buffer
	c := inspectCmd{JSON: true, Files: []string{"testdata/golden/v2-pass.pcap", "testdata/golden/v3-ipv6.pcap"}}
	if err := c.run(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	var objs []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Sorted(slices.Values(inspectKeys))
		if !slices.Equal(keys, want) {
			t.Fatalf("keys %v, want %v", keys, want)
		}
		objs = append(objs, m)
	}
	v2 := objs[0]
	want := map[string]any{
		"frame": 1.0, "time": "2026-11-25T08:01:24.211736Z", "src": "10.211.0.1", "dst": "224.0.0.18",
		"src_mac": "02:00:00:00:02:11", "ttl": 255.0, "version": 2.0, "type": 1.0, "vrid": 51.0, "priority": 150.0,
		"count": 1.0, "auth_type": 1.0, "auth": "secret", "interval_cs": 100.0, "checksum": "0x0047",
		"checksum_ok": true, "checksum_form": "message", "verdict": "ok",
	}
	for k, w := range want {
		if v2[k] != w {
			t.Errorf("v2 %s = %v, want %v", k, v2[k], w)
		}
	}
	if a, _ := v2["addresses"].([]any); len(a) != 1 || a[0] != "10.211.0.100" {
		t.Errorf("v2 addresses %v", v2["addresses"])
	}
	v3 := objs[3]
	if v3["auth_type"] != nil || v3["auth"] != nil || v3["checksum_form"] != "pseudo" || v3["src"] != "fe80::ff:fe00:211" || v3["frame"] != 1.0 {
		t.Errorf("v3 record %v", v3)
	}
}

// TestInspectLinkTypes writes one advert under every supported link type,
// to pcap and pcapng, and expects inspect to find it.
func TestInspectLinkTypes(t *testing.T) {
	fr := readFrames(t, "testdata/golden/v3-ipv4.pcap")[0]
	eth, ip := fr.Data[:14], fr.Data[14:]
	mac := eth[6:12]
	vlan := slices.Concat(eth[:12], []byte{0x81, 0x00, 0x00, 0x24, 0x08, 0x00}, ip)
	sll := slices.Concat([]byte{0, 2, 0, 1, 0, 6}, mac, []byte{0, 0, 0x08, 0x00}, ip)
	sll2 := slices.Concat([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 2, 6}, mac, []byte{0, 0}, ip)
	cases := []struct {
		name string
		link layers.LinkType
		data []byte
		mac  string
	}{
		{"ethernet", layers.LinkTypeEthernet, fr.Data, "02:00:00:00:02:11"},
		{"802.1q", layers.LinkTypeEthernet, vlan, "02:00:00:00:02:11"},
		{"sll", layers.LinkTypeLinuxSLL, sll, "02:00:00:00:02:11"},
		{"sll2", layers.LinkTypeLinuxSLL2, sll2, "02:00:00:00:02:11"},
		{"raw", layers.LinkTypeRaw, ip, ""},
		{"ipv4", layers.LinkTypeIPv4, ip, ""},
	}
	for _, tc := range cases {
		for _, ng := range []bool{false, true} {
			name := tc.name + map[bool]string{false: ".pcap", true: ".pcapng"}[ng]
			t.Run(name, func(t *testing.T) {
				file := filepath.Join(t.TempDir(), name)
				writeCapture(t, file, ng, tc.link, tc.data)
				var out bytes.Buffer
				if err := (&inspectCmd{JSON: true, Files: []string{file}}).run(&out); err != nil {
					t.Fatal(err)
				}
				var rec map[string]any
				if err := json.Unmarshal(out.Bytes(), &rec); err != nil {
					t.Fatalf("%v: %q", err, out.String())
				}
				if rec["verdict"] != "ok" || rec["vrid"] != 51.0 || rec["src_mac"] != tc.mac || rec["checksum_form"] != "pseudo" {
					t.Errorf("record %v", rec)
				}
			})
		}
	}
}

func writeCapture(t *testing.T, file string, ng bool, link layers.LinkType, frames ...[]byte) {
	t.Helper()
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if ng {
		w, err := pcapgo.NewNgWriter(f, link)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range frames {
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, link); err != nil {
		t.Fatal(err)
	}
	for _, d := range frames {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(d), Length: len(d)}, d); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInspectVerdicts: malformed and truncated adverts get a line with the
// reason; non-VRRP frames are skipped.
func TestInspectVerdicts(t *testing.T) {
	fr := readFrames(t, "testdata/golden/v2-noauth.pcap")[0] // 14 + 20 + 24 bytes
	ttl := slices.Clone(fr.Data)
	ttl[14+8] = 64
	ttl[14+10], ttl[14+11] = 0, 0 // the IP checksum is not ours to check
	badSum := slices.Clone(fr.Data)
	badSum[14+20+7] ^= 0xff
	truncated := fr.Data[:14+20+12]
	var a Advert
	if err := a.Unmarshal(fr.Msg, false); err != nil {
		t.Fatal(err)
	}
	a.AuthType = authAH
	ah, err := a.Append(slices.Clone(fr.Data[:14+20]), fr.Src, fr.Dst, ChecksumMessage)
	if err != nil {
		t.Fatal(err)
	}
	arp := slices.Concat([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, fr.Data[6:12], []byte{0x08, 0x06}, make([]byte, 28))
	file := filepath.Join(t.TempDir(), "mixed.pcap")
	writeCapture(t, file, false, layers.LinkTypeEthernet, fr.Data, arp, ttl, badSum, truncated, ah)
	var out bytes.Buffer
	if err := (&inspectCmd{JSON: true, Files: []string{file}}).run(&out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var rec inspectRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.Itoa(rec.Frame)+":"+rec.Verdict)
	}
	want := []string{"1:ok", "3:ttl", "4:checksum", "5:length", "6:auth_ah"}
	if !slices.Equal(got, want) {
		t.Errorf("verdicts %v, want %v", got, want)
	}
	// The text form says why.
	out.Reset()
	if err := (&inspectCmd{Files: []string{file}}).run(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"drop ttl: ttl 64, multicast adverts must have 255",
		"drop length: advert claims 2 ipv4 addresses but has 12 bytes, needs 24",
		"drop checksum: bad vrrp checksum",
		"drop auth_ah: auth type 2 (ip ah) is not supported",
	} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("text output lacks %q:\n%s", s, out.String())
		}
	}
}

// TestInspectNotACapture: files that are not captures are clear errors;
// frames before a truncation are still printed.
func TestInspectNotACapture(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	text := filepath.Join(dir, "text")
	os.WriteFile(text, []byte("hello, world\n"), 0o644)
	for _, f := range []string{empty, text} {
		err := (&inspectCmd{Files: []string{f}}).run(&bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "not a pcap or pcapng capture") || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: error %v", f, err)
		}
	}
	good, err := os.ReadFile("testdata/golden/v3-ipv4.pcap")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, good[:len(good)-5], 0o644)
	var out bytes.Buffer
	err = (&inspectCmd{Files: []string{cut}}).run(&out)
	if err == nil || !strings.Contains(err.Error(), "frame 3: capture file is truncated") {
		t.Errorf("error %v", err)
	}
	if n := strings.Count(out.String(), "\n"); n != 2 {
		t.Errorf("%d lines before the truncation, want 2:\n%s", n, out.String())
	}
}

// TestInspectBinary runs the built vipd binary on the golden captures.
func TestInspectBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "vipd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	files, _ := filepath.Glob("testdata/golden/*.pcap")
	out, err := exec.Command(bin, append([]string{"inspect", "--json"}, files...)...).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3*len(files) {
		t.Errorf("%d lines for %d files", len(lines), len(files))
	}
	for _, l := range lines {
		var rec inspectRecord
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Verdict != "ok" || !rec.ChecksumOK {
			t.Errorf("line %s: %v", l, err)
		}
	}
	text, err := exec.Command(bin, "inspect", "testdata/golden/v3-unicast-oldcksum.pcap").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(text), "10.211.0.1 > 10.211.0.2") || !strings.Contains(string(text), "(good, pseudo-group): ok") {
		t.Errorf("text output:\n%s", text)
	}
	cmd := exec.Command(bin, "inspect", "go.mod")
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "go.mod: not a pcap or pcapng capture") {
		t.Errorf("inspect go.mod: %v: %s", err, msg)
	}
}
