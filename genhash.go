package main

// `vipd genhash`: print the MD5 digest an HTTP_GET / SSL_GET url block
// expects, computed exactly as the checker computes it (same request, same
// hashing of the raw body), like keepalived's genhash.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"time"
)

// genhashCmd accepts a URL (http://10.0.0.1:8080/health, https://...) or
// keepalived genhash's flags (-s SERVER -p PORT -u PATH [-S] [-V HOST]).
type genhashCmd struct {
	Target      string `arg:"" optional:"" name:"url" help:"Full URL, e.g. http://10.0.0.1:8080/index.html (the host must be an IP address or resolve to one)."`
	Server      string `short:"s" help:"Real server address (keepalived genhash -s)."`
	Port        uint16 `short:"p" help:"Real server port (genhash -p)."`
	Path        string `short:"u" name:"url-path" help:"URL path to fetch (genhash -u)."`
	SSL         bool   `short:"S" name:"use-ssl" help:"Use TLS, as SSL_GET (genhash -S)."`
	SNI         bool   `short:"I" name:"use-sni" help:"Send the virtualhost as TLS SNI (genhash -I)."`
	VirtualHost string `short:"V" name:"use-virtualhost" help:"Host header to send (genhash -V)."`
	Protocol    string `short:"P" name:"protocol" default:"1.0" enum:"1.0,1.0C,1.0c,1.1" help:"HTTP protocol: 1.0, 1.0C (1.0 with Connection: close) or 1.1."`
	Timeout     string `short:"t" default:"5" help:"Timeout for each step in seconds, or a Go duration (5, 2.5s, 500ms)."`
	Verbose     bool   `name:"verbose" help:"Also print the status code and body size."`
}

// Run fetches the page and prints its digest.
func (g *genhashCmd) Run() error { return g.run(os.Stdout) }

func (g *genhashCmd) run(w io.Writer) error {
	spec, err := g.spec()
	if err != nil {
		return err
	}
	r, err := genhashFetch(context.Background(), spec)
	if err != nil {
		return err
	}
	if g.Verbose {
		fmt.Fprintf(w, "status %d, %d body bytes\n", r.Status, r.Size)
	}
	fmt.Fprintln(w, r.Digest)
	return nil
}

// spec turns the command line into the checker spec a matching HTTP_GET
// block would produce.
func (g *genhashCmd) spec() (*checkerSpec, error) {
	server, port, path, ssl := g.Server, g.Port, g.Path, g.SSL
	if g.Target != "" {
		if server != "" || path != "" {
			return nil, errors.New("give either a URL or -s/-u, not both")
		}
		u, err := url.Parse(g.Target)
		if err != nil {
			return nil, fmt.Errorf("url %q: %v", g.Target, err)
		}
		switch u.Scheme {
		case "http":
		case "https":
			ssl = true
		default:
			return nil, fmt.Errorf("url %q: scheme must be http or https", g.Target)
		}
		server = u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("url %q: bad port", g.Target)
			}
			port = uint16(n)
		} else if port == 0 {
			port = 80
			if ssl {
				port = 443
			}
		}
		path = u.RequestURI()
	}
	if server == "" || port == 0 || path == "" {
		return nil, errors.New("need a URL, or -s SERVER -p PORT -u PATH")
	}
	ip, err := netip.ParseAddr(server)
	if err != nil {
		// keepalived's genhash takes only addresses; a name is a
		// convenience here and is resolved once.
		ips, lerr := net.DefaultResolver.LookupNetIP(context.Background(), "ip", server)
		if lerr != nil || len(ips) == 0 {
			return nil, fmt.Errorf("server %q is not an IP address and does not resolve", server)
		}
		ip = ips[0]
		if g.Target != "" {
			// A URL names its host: send it as Host, and as SNI over TLS,
			// as a browser would.
			if g.VirtualHost == "" {
				g.VirtualHost = server
			}
			g.SNI = g.SNI || ssl
		}
	}
	kind := checkHTTP
	if ssl {
		kind = checkSSL
	}
	spec := newCheckerSpec(kind, ip.Unmap(), port)
	timeout, err := genhashTimeout(g.Timeout)
	if err != nil {
		return nil, err
	}
	spec.ConnectTimeout = timeout
	spec.VirtualHost = g.VirtualHost
	spec.EnableSNI = g.SNI
	spec.HTTPProtocol = g.Protocol
	spec.URLs = []checkURL{{Path: path}}
	if err := spec.normalize(); err != nil {
		return nil, err
	}
	return spec, nil
}

// genhashFetch fetches the spec's single url as the checker would.
func genhashFetch(ctx context.Context, spec *checkerSpec) (*checkHTTPResponse, error) {
	r, err := checkHTTPFetch(ctx, spec, &spec.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec.addrPort(), err)
	}
	return r, nil
}

// genhashTimeout reads keepalived genhash's -t (whole seconds) or a Go
// duration.
func genhashTimeout(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil && n > 0 {
		return time.Duration(n * float64(time.Second)), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("timeout %q is not a positive number of seconds or a duration", s)
}
