package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// rsGenhashServer serves a plain page, a chunked page (HTTP/1.1 only) and a
// page echoing the Host header.
func rsGenhashServer(t *testing.T, tlsOn bool) *httptest.Server {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "first part,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "second part\n")
		case "/host":
			io.WriteString(w, "host="+r.Host)
		default:
			io.WriteString(w, "<html>vipd genhash test page</html>\n")
		}
	})
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(h)
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func rsRunGenhash(t *testing.T, g genhashCmd) string {
	t.Helper()
	var out bytes.Buffer
	if err := g.run(&out); err != nil {
		t.Fatalf("genhash %+v: %v", g, err)
	}
	return strings.TrimSpace(out.String())
}

func TestGenhashURLAndKeepalivedFlagsAgree(t *testing.T) {
	srv := rsGenhashServer(t, false)
	want := rsBodyMD5("<html>vipd genhash test page</html>\n")
	if got := rsRunGenhash(t, genhashCmd{Target: srv.URL + "/index.html", Protocol: "1.0", Timeout: "5"}); got != want {
		t.Errorf("URL form: %s, want %s", got, want)
	}
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	p, _ := strconv.Atoi(port)
	if got := rsRunGenhash(t, genhashCmd{Server: host, Port: uint16(p), Path: "/index.html", Protocol: "1.1", Timeout: "2.5"}); got != want {
		t.Errorf("flag form: %s, want %s", got, want)
	}
	// -V sets the Host header, and the digest follows the page.
	if got := rsRunGenhash(t, genhashCmd{Server: host, Port: uint16(p), Path: "/host", VirtualHost: "www.example.com", Protocol: "1.0", Timeout: "5"}); got != rsBodyMD5("host=www.example.com") {
		t.Errorf("virtualhost: %s", got)
	}
	tls := rsGenhashServer(t, true)
	if got := rsRunGenhash(t, genhashCmd{Target: tls.URL + "/", Protocol: "1.0", Timeout: "5s"}); got != want {
		t.Errorf("https: %s, want %s", got, want)
	}
}

func TestGenhashCommandLineErrors(t *testing.T) {
	cases := map[string]genhashCmd{
		"either a URL":       {Target: "http://127.0.0.1/", Server: "127.0.0.1", Timeout: "5"},
		"scheme must be":     {Target: "ftp://127.0.0.1/", Timeout: "5"},
		"need a URL":         {Server: "127.0.0.1", Timeout: "5"},
		"bad port":           {Target: "http://127.0.0.1:0/", Timeout: "5"},
		"not a positive":     {Target: "http://127.0.0.1/", Timeout: "-3"},
		"http_protocol":      {Target: "http://127.0.0.1/", Timeout: "5", Protocol: "2.0"},
		"does not resolve":   {Target: "http://no-such-host.invalid/", Timeout: "5"},
		"connection refused": {Target: "http://127.0.0.1:1/", Timeout: "5", Protocol: "1.0"},
	}
	for want, g := range cases {
		err := g.run(io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", g, err, want)
		}
	}
}

// The digest must be the one keepalived itself computes, so configs made
// with keepalived's genhash keep working: compare with the real binary,
// including a chunked HTTP/1.1 body (hashed with its framing).
func TestGenhashMatchesKeepalived(t *testing.T) {
	bin, err := exec.LookPath("genhash")
	if err != nil {
		t.Skip("keepalived's genhash is not installed")
	}
	srv := rsGenhashServer(t, false)
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	p, _ := strconv.Atoi(port)
	for _, c := range []struct{ path, proto string }{
		{"/index.html", "1.0"}, {"/chunked", "1.1"}, {"/chunked", "1.0"}, {"/host", "1.0C"},
	} {
		out, err := exec.Command(bin, "-s", host, "-p", port, "-u", c.path, "-P", c.proto, "-t", "5").Output()
		if err != nil {
			t.Fatalf("genhash %s %s: %v", c.path, c.proto, err)
		}
		theirs := strings.TrimSpace(string(out))
		ours := rsRunGenhash(t, genhashCmd{Server: host, Port: uint16(p), Path: c.path, Protocol: c.proto, Timeout: "5"})
		if ours != theirs {
			t.Errorf("%s over HTTP/%s: vipd %s, keepalived %s", c.path, c.proto, ours, theirs)
		}
	}
}

func TestGenhashTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.5": 500 * time.Millisecond, "750ms": 750 * time.Millisecond} {
		if got, err := genhashTimeout(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
}

// The command line parses keepalived genhash's flags through vipd's kong CLI.
func TestGenhashKongFlags(t *testing.T) {
	var c cli
	p, err := kong.New(&c, kong.Name("vipd"), kong.Vars{"version": "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse([]string{"genhash", "-S", "-I", "-s", "10.0.0.1", "-p", "8443", "-u", "/check", "-V", "www.example.com", "-P", "1.1", "-t", "3"}); err != nil {
		t.Fatal(err)
	}
	g := c.Genhash
	if !g.SSL || !g.SNI || g.Server != "10.0.0.1" || g.Port != 8443 || g.Path != "/check" || g.VirtualHost != "www.example.com" || g.Protocol != "1.1" || g.Timeout != "3" {
		t.Fatalf("parsed %+v", g)
	}
	spec, err := g.spec()
	if err != nil || spec.Kind != checkSSL || spec.ConnectTimeout != 3*time.Second || !spec.EnableSNI {
		t.Fatalf("spec %+v, %v", spec, err)
	}
	c = cli{}
	if _, err := p.Parse([]string{"genhash", "https://127.0.0.1/x?y=1"}); err != nil {
		t.Fatal(err)
	}
	if spec, err := c.Genhash.spec(); err != nil || spec.ConnectPort != 443 || spec.URLs[0].Path != "/x?y=1" {
		t.Fatalf("spec %+v, %v", spec, err)
	}
}
