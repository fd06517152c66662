package main

// Real-server health checkers: keepalived's TCP_CHECK, HTTP_GET, SSL_GET,
// MISC_CHECK, PING_CHECK, UDP_CHECK, DNS_CHECK and SMTP_CHECK, and the
// scheduler that runs thousands of them.
//
// The retry rules are keepalived's (keepalived/check/check_tcp.c tcp_epilog,
// check_http.c epilog, check_misc.c misc_check_child_thread, check_dns.c
// dns_final, check_smtp.c smtp_final, check_data.c defaults): a checker that
// is up goes down after retry+1 consecutive failed attempts, separated by
// delay_before_retry; at start-up one failure is enough (keepalived sets
// retry_it = retry before the first run); a checker that is down is tried
// every delay_loop and comes up after one success. The first attempt waits a
// random time in [0, warmup], warmup defaulting to delay_loop, which spreads
// thousands of checks over the loop instead of firing them together.
//
// Layout: checkerSpec (configuration), rsCheckState/rsCheckQueue (the pure
// scheduling core: no goroutines, sockets or wall clock, time is an
// argument), rsCheckScheduler (the thin driver: one goroutine, one timer,
// bounded concurrency), and one checker implementation per kind.

import (
	"bufio"
	"bytes"
	"container/heap"
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// checkKind is one of keepalived's real-server checker blocks.
type checkKind int

const (
	checkTCP  checkKind = iota + 1 // TCP_CHECK
	checkHTTP                      // HTTP_GET
	checkSSL                       // SSL_GET
	checkMisc                      // MISC_CHECK
	checkDNS                       // DNS_CHECK
	checkPing                      // PING_CHECK
	checkUDP                       // UDP_CHECK
	checkSMTP                      // SMTP_CHECK
)

var checkKindNames = [...]string{
	checkTCP:  "TCP_CHECK",
	checkHTTP: "HTTP_GET",
	checkSSL:  "SSL_GET",
	checkMisc: "MISC_CHECK",
	checkDNS:  "DNS_CHECK",
	checkPing: "PING_CHECK",
	checkUDP:  "UDP_CHECK",
	checkSMTP: "SMTP_CHECK",
}

func (k checkKind) String() string {
	if k > 0 && int(k) < len(checkKindNames) {
		return checkKindNames[k]
	}
	return "checkKind(" + strconv.Itoa(int(k)) + ")"
}

// parseCheckKind maps a keepalived block keyword ("TCP_CHECK") to its kind.
func parseCheckKind(s string) (checkKind, error) {
	for k, name := range checkKindNames {
		if name != "" && name == s {
			return checkKind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown checker %q", s)
}

// Defaults, from keepalived's check_api.c queue_checker and check_data.c.
const (
	checkDefaultDelayLoop        = 60 * time.Second // virtual_server delay_loop
	checkDefaultConnectTimeout   = 5 * time.Second  // connect_timeout
	checkDefaultDelayBeforeRetry = 1 * time.Second  // all checkers but HTTP/SSL, DNS
	checkHTTPDelayBeforeRetry    = 3 * time.Second  // check_http.c http_get_handler
	checkDefaultRetry            = 1                // all checkers but MISC, DNS
	checkMiscRetry               = 0                // check_misc.c misc_check_handler
	checkDNSRetry                = 3                // check_dns.h DNS_DEFAULT_RETRY
	checkDefaultSMTPHelo         = "smtpchecker.keepalived.org"
	checkDefaultDNSName          = "."
	checkDefaultDNSType          = "SOA"
	checkMiscKillGrace           = 2 * time.Second // SIGTERM -> SIGKILL, as keepalived
	checkUnset                   = -1              // "not configured" for Retry, Warmup, DelayBeforeRetry
)

// checkURL is one `url { }` block of HTTP_GET / SSL_GET.
type checkURL struct {
	Path string
	// Digest is the hex MD5 of the response body, as `genhash` prints it;
	// empty means the body is not checked.
	Digest string
	// StatusCodes are the accepted status codes; empty means 200-299, as
	// keepalived's url_check().
	StatusCodes []statusRange
	// Regex must match the body (or must not, with RegexNoMatch). Go's RE2
	// syntax: PCRE features such as backreferences are rejected at load.
	Regex        string
	RegexNoMatch bool
	// RegexMinOffset and RegexMaxOffset bound where in the body a match
	// may start (regex_min_offset, regex_max_offset); 0 max means no bound.
	RegexMinOffset int
	RegexMaxOffset int
	// VirtualHost overrides the checker's virtualhost for this URL.
	VirtualHost string

	regexFlags string // from regex_options
	re         *regexp.Regexp
}

// statusRange is an inclusive range of HTTP status codes ("200-299" or "200").
type statusRange struct{ Lo, Hi int }

// parseStatusCodes reads keepalived's `status_code 200 300-399 ...` words.
func parseStatusCodes(words []string) ([]statusRange, error) {
	var out []statusRange
	for _, w := range words {
		lo, hi, isRange := strings.Cut(w, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("status_code %q is not a number or range", w)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return nil, fmt.Errorf("status_code %q is not a number or range", w)
			}
		}
		if a < 100 || b > 999 || a > b {
			return nil, fmt.Errorf("status_code %q outside 100-999 or reversed", w)
		}
		out = append(out, statusRange{a, b})
	}
	return out, nil
}

func (u *checkURL) statusOK(code int) bool {
	if len(u.StatusCodes) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range u.StatusCodes {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// regexMatch reports whether the regex matches with its start inside
// [RegexMinOffset, RegexMaxOffset]. The leftmost match is the earliest
// start, so checking it alone is exact.
func (u *checkURL) regexMatch(body []byte) bool {
	lo := min(max(u.RegexMinOffset, 0), len(body))
	loc := u.re.FindIndex(body[lo:])
	if loc == nil {
		return false
	}
	return u.RegexMaxOffset <= 0 || lo+loc[0] <= u.RegexMaxOffset
}

func (u *checkURL) statusText() string {
	if len(u.StatusCodes) == 0 {
		return "200-299"
	}
	var parts []string
	for _, r := range u.StatusCodes {
		if r.Lo == r.Hi {
			parts = append(parts, strconv.Itoa(r.Lo))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", r.Lo, r.Hi))
		}
	}
	return strings.Join(parts, ",")
}

// checkerSpec is one checker block inside a real_server. The config loader
// maps keepalived.conf onto it; newCheckerSpec gives keepalived's defaults.
// For Retry, Warmup and DelayBeforeRetry a negative value (checkUnset) means
// "not configured" and normalize applies the per-kind default; zero is a
// real value there (retry 0: down on the first failure).
type checkerSpec struct {
	Kind checkKind

	// ConnectIP and ConnectPort default to the real server's address.
	ConnectIP   netip.Addr
	ConnectPort uint16
	BindTo      netip.Addr // bindto
	BindPort    uint16     // bind_port
	BindIf      string     // bind_if: SO_BINDTODEVICE
	FWMark      uint32     // fwmark: SO_MARK on the checker's socket

	ConnectTimeout   time.Duration // connect_timeout, per I/O step
	DelayLoop        time.Duration // delay_loop
	DelayBeforeRetry time.Duration // delay_before_retry
	Warmup           time.Duration // warmup: max random delay before the first run
	Retry            int           // retry (nb_get_retry)
	Alpha            bool          // alpha: start down until the first success

	// HTTP_GET / SSL_GET.
	URLs         []checkURL
	VirtualHost  string // virtualhost: Host header, and SNI with EnableSNI
	EnableSNI    bool
	HTTPProtocol string // "1.0" (default), "1.0C" (with Connection: close), "1.1"
	// TLS verification; keepalived does not verify server certificates, so
	// neither do we unless TLSVerify is set.
	TLSVerify     bool
	TLSServerName string // name to verify; default VirtualHost, else ConnectIP
	TLSCAFile     string // PEM roots; default the system pool
	TLSCertFile   string // client certificate (keepalived's SSL { certificate })
	TLSKeyFile    string

	// MISC_CHECK.
	MiscPath    string
	MiscTimeout time.Duration // default delay_loop
	MiscDynamic bool
	MiscUser    *syscall.Credential // user USER [GROUP]; nil runs as vipd

	// DNS_CHECK.
	DNSType string // A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY (default SOA)
	DNSName string // default "."

	// UDP_CHECK.
	UDPPayload      []byte
	UDPRequireReply bool
	UDPReply        []byte // expected leading bytes of the reply
	UDPReplyMask    []byte // bits set here are wildcards in UDPReply (keepalived's 'x' nibbles)
	UDPMinReply     int    // min_reply_length
	UDPMaxReply     int    // max_reply_length (default 255)

	// SMTP_CHECK.
	SMTPHelo string // helo_name

	tlsConf *tls.Config
	dnsType dnsmessage.Type
}

// newCheckerSpec returns a spec of the given kind with every optional value
// unset, so that normalize applies keepalived's defaults for that kind.
func newCheckerSpec(kind checkKind, ip netip.Addr, port uint16) *checkerSpec {
	return &checkerSpec{
		Kind:             kind,
		ConnectIP:        ip,
		ConnectPort:      port,
		Retry:            checkUnset,
		Warmup:           checkUnset,
		DelayBeforeRetry: checkUnset,
		UDPMaxReply:      255,
	}
}

// normalize fills keepalived's defaults and checks the spec, compiling
// regexes and loading TLS material. It is idempotent.
func (s *checkerSpec) normalize() error {
	if s.Kind < checkTCP || s.Kind > checkSMTP {
		return fmt.Errorf("unknown checker kind %d", s.Kind)
	}
	if s.DelayLoop <= 0 {
		s.DelayLoop = checkDefaultDelayLoop
	}
	if s.ConnectTimeout <= 0 {
		s.ConnectTimeout = checkDefaultConnectTimeout
	}
	if s.Retry < 0 {
		switch s.Kind {
		case checkMisc:
			s.Retry = checkMiscRetry
		case checkDNS:
			s.Retry = checkDNSRetry
		default:
			s.Retry = checkDefaultRetry
		}
	}
	if s.DelayBeforeRetry < 0 {
		switch s.Kind {
		case checkHTTP, checkSSL:
			s.DelayBeforeRetry = checkHTTPDelayBeforeRetry
		case checkDNS:
			s.DelayBeforeRetry = s.DelayLoop // check_dns.c: 0, "defaults to delay_loop"
		default:
			s.DelayBeforeRetry = checkDefaultDelayBeforeRetry
		}
	}
	if s.Warmup < 0 {
		s.Warmup = s.DelayLoop
	}
	if s.Kind != checkMisc {
		if !s.ConnectIP.IsValid() {
			return fmt.Errorf("%s has no connect_ip", s.Kind)
		}
		if s.ConnectPort == 0 && s.Kind != checkPing {
			return fmt.Errorf("%s has no connect_port", s.Kind)
		}
		if s.BindTo.IsValid() && s.BindTo.Unmap().Is4() != s.ConnectIP.Unmap().Is4() {
			return fmt.Errorf("%s bindto %s and connect_ip %s differ in address family", s.Kind, s.BindTo, s.ConnectIP)
		}
		if s.ConnectIP.Is6() && s.ConnectIP.IsLinkLocalUnicast() && s.BindIf == "" && s.ConnectIP.Zone() == "" {
			return fmt.Errorf("%s link-local connect_ip %s needs bind_if", s.Kind, s.ConnectIP)
		}
	}
	switch s.Kind {
	case checkHTTP, checkSSL:
		if len(s.URLs) == 0 {
			return fmt.Errorf("%s has no url", s.Kind)
		}
		switch s.HTTPProtocol {
		case "":
			s.HTTPProtocol = "1.0"
		case "1.0", "1.1", "1.0C":
		case "1.0c":
			s.HTTPProtocol = "1.0C"
		default:
			return fmt.Errorf("http_protocol %q is not 1.0, 1.0C or 1.1", s.HTTPProtocol)
		}
		for i := range s.URLs {
			u := &s.URLs[i]
			if u.Path == "" {
				return fmt.Errorf("%s url %d has no path", s.Kind, i+1)
			}
			if u.Digest != "" {
				d := strings.ToLower(u.Digest)
				if b, err := hex.DecodeString(d); err != nil || len(b) != md5.Size {
					return fmt.Errorf("digest %q is not 32 hex digits", u.Digest)
				}
				u.Digest = d
			}
			if u.Regex != "" && u.re == nil {
				pat := u.Regex
				if u.regexFlags != "" {
					pat = "(?" + u.regexFlags + ")" + pat
				}
				re, err := regexp.Compile(pat)
				if err != nil {
					return fmt.Errorf("regex %q: %v", u.Regex, err)
				}
				u.re = re
			}
		}
		if s.Kind == checkSSL && s.tlsConf == nil {
			c, err := s.buildTLS()
			if err != nil {
				return err
			}
			s.tlsConf = c
		}
	case checkMisc:
		if strings.TrimSpace(s.MiscPath) == "" {
			return errors.New("MISC_CHECK has no misc_path")
		}
		if s.MiscTimeout <= 0 {
			s.MiscTimeout = s.DelayLoop // check_misc.c: timeout ? timeout : delay_loop
		}
	case checkDNS:
		if s.DNSType == "" {
			s.DNSType = checkDefaultDNSType
		}
		t, ok := checkDNSTypes[strings.ToUpper(s.DNSType)]
		if !ok {
			return fmt.Errorf("DNS_CHECK type %q is not one of A NS CNAME SOA MX TXT AAAA RRSIG DNSKEY", s.DNSType)
		}
		s.dnsType = t
		if s.DNSName == "" {
			s.DNSName = checkDefaultDNSName
		}
		if !strings.HasSuffix(s.DNSName, ".") {
			s.DNSName += "."
		}
		if _, err := dnsmessage.NewName(s.DNSName); err != nil {
			return fmt.Errorf("DNS_CHECK name %q: %v", s.DNSName, err)
		}
	case checkUDP:
		if s.UDPPayload == nil {
			s.UDPPayload = checkUDPFiller
		}
		if s.UDPMaxReply <= 0 {
			s.UDPMaxReply = 255
		}
		if s.UDPMinReply > s.UDPMaxReply {
			return fmt.Errorf("UDP_CHECK min_reply_length %d > max_reply_length %d", s.UDPMinReply, s.UDPMaxReply)
		}
		if len(s.UDPReplyMask) != 0 && len(s.UDPReplyMask) != len(s.UDPReply) {
			return errors.New("UDP_CHECK reply mask and reply differ in length")
		}
	case checkSMTP:
		if s.SMTPHelo == "" {
			s.SMTPHelo = checkDefaultSMTPHelo
		}
	}
	return nil
}

// checkUDPFiller is what keepalived sends when UDP_CHECK has no payload:
// 32 bytes of "keepalived check - " repeated (layer4.c set_buf, UDP_BUFSIZE).
var checkUDPFiller = []byte(strings.Repeat("keepalived check - ", 2)[:32])

var checkDNSTypes = map[string]dnsmessage.Type{
	"A": dnsmessage.TypeA, "NS": dnsmessage.TypeNS, "CNAME": dnsmessage.TypeCNAME,
	"SOA": dnsmessage.TypeSOA, "MX": dnsmessage.TypeMX, "TXT": dnsmessage.TypeTXT,
	"AAAA": dnsmessage.TypeAAAA, "RRSIG": dnsmessage.Type(46), "DNSKEY": dnsmessage.Type(48),
}

// parseCheckHex reads keepalived's hex strings (UDP_CHECK payload and
// require_reply): hex digits with optional spaces; with wildcards allowed,
// an 'x' nibble matches anything and sets the corresponding mask bits.
func parseCheckHex(s string, wildcards bool) (data, mask []byte, err error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if s == "" || len(s)%2 != 0 {
		return nil, nil, fmt.Errorf("hex string %q is empty or has an odd number of digits", s)
	}
	usedMask := false
	for i := 0; i < len(s); i += 2 {
		var b, m byte
		for j := 0; j < 2; j++ {
			c := s[i+j]
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v = c - 'A' + 10
			case wildcards && (c == 'x' || c == 'X'):
				m |= 0x0f << (4 * (1 - j))
				usedMask = true
			default:
				return nil, nil, fmt.Errorf("hex string %q has a bad digit %q at offset %d", s, c, i+j)
			}
			b |= v << (4 * (1 - j))
		}
		data = append(data, b)
		mask = append(mask, m)
	}
	if !usedMask {
		mask = nil
	}
	return data, mask, nil
}

func (s *checkerSpec) addrPort() netip.AddrPort {
	return netip.AddrPortFrom(s.ConnectIP, s.ConnectPort)
}

// ---------------------------------------------------------------------------
// Pure scheduling core.

// checkOutcome is the result of one attempt.
type checkOutcome struct {
	Err error
	// Weight is the weight a misc_dynamic script asked for (exit status - 2),
	// or -1 when the attempt says nothing about weight.
	Weight int
}

// checkTransition reports a change of a checker's state.
type checkTransition struct {
	ID   string
	Kind checkKind
	Up   bool
	// Weight is the misc_dynamic weight now in force, -1 when none was set.
	Weight int
	// WeightOnly is set when only the dynamic weight changed.
	WeightOnly bool
	// Reason is the last error for a down transition ("connect: connection
	// refused", "status 500 not in 200-299", "digest mismatch ...").
	Reason string
	// Attempts is the number of consecutive failed attempts that brought
	// the checker down (retry+1 once it has been up).
	Attempts int
	At       time.Time
}

// message renders a transition as keepalived logs it, with the reason, e.g.
// "TCP_CHECK on service [10.0.0.1]:tcp:80 failed after 1 retries: connect:
// connection refused" or "TCP connection to [10.0.0.1]:tcp:80 success.".
func (t checkTransition) message(spec *checkerSpec) string {
	svc := "[" + spec.ConnectIP.String() + "]:"
	switch spec.Kind {
	case checkDNS, checkUDP:
		svc += "udp:"
	case checkPing:
		svc += "icmp:"
	default:
		svc += "tcp:"
	}
	svc += strconv.Itoa(int(spec.ConnectPort))
	if spec.Kind == checkMisc {
		svc = "[" + spec.MiscPath + "]"
	}
	switch {
	case t.WeightOnly:
		return fmt.Sprintf("Misc check for %s set weight %d.", svc, t.Weight)
	case t.Up:
		switch spec.Kind {
		case checkTCP:
			return "TCP connection to " + svc + " success."
		case checkHTTP, checkSSL:
			return "Remote Web server " + svc + " succeed on service."
		case checkMisc:
			return "Misc check for " + svc + " succeeded."
		default:
			return spec.Kind.String() + " on service " + svc + " succeeded."
		}
	}
	name := spec.Kind.String()
	if spec.Kind == checkHTTP || spec.Kind == checkSSL {
		name = "HTTP_CHECK" // keepalived names both so in this message
	}
	if t.Attempts > 1 {
		return fmt.Sprintf("%s on service %s failed after %d retries: %s", name, svc, t.Attempts-1, t.Reason)
	}
	return fmt.Sprintf("%s on service %s failed: %s", name, svc, t.Reason)
}

// rsCheckState is one checker's retry state, keepalived's is_up, has_run and
// retry_it.
type rsCheckState struct {
	up       bool
	hasRun   bool
	retryIt  int
	failures int
	weight   int
}

func newRSCheckState(spec *checkerSpec) rsCheckState {
	// check_data.c: "For non alpha mode, one failure is enough initially":
	// retry_it starts at retry so that the first failure brings it down.
	return rsCheckState{up: !spec.Alpha, retryIt: spec.Retry, weight: -1}
}

// step applies one attempt's outcome and returns the delay before the next
// attempt and whether the up/down state or the dynamic weight changed. It is
// keepalived's tcp_epilog (check_tcp.c), which the other checkers repeat:
//
//	success:                     retry_it = 0, up, next in delay_loop
//	failure, up, retry_it < retry: retry_it++, next in delay_before_retry
//	failure, up, retry_it = retry: down, retry_it = 0, next in delay_loop
//	failure, down:               stay down, next in delay_loop
func (st *rsCheckState) step(spec *checkerSpec, out checkOutcome) (next time.Duration, changed, weightChanged bool) {
	next = spec.DelayLoop
	if out.Err == nil {
		st.retryIt = 0
		st.failures = 0
		if !st.up {
			st.up = true
			changed = true
		}
		if out.Weight >= 0 && out.Weight != st.weight {
			st.weight = out.Weight
			weightChanged = true
		}
		st.hasRun = true
		return next, changed, weightChanged
	}
	st.failures++
	if (st.up || !st.hasRun) && st.retryIt >= spec.Retry {
		st.retryIt = 0
		if st.up {
			st.up = false
			changed = true
		}
	} else if st.up {
		st.retryIt++
		next = spec.DelayBeforeRetry
	}
	st.hasRun = true
	return next, changed, false
}

// rsChecker runs one attempt against a real server. Implementations honour
// ctx (the scheduler cancels it at shutdown) and their own timeouts.
type rsChecker interface {
	Check(ctx context.Context) checkOutcome
}

// rsProber is a checker whose attempts need no goroutine of their own
// (TCP_CHECK): probe starts one on the scheduler's goroutine. An attempt
// that ends at once returns probeDone and its outcome; one in flight
// returns probePending and the id that cancels it, and its outcome goes to
// sink later; probeUnavailable asks for Check in a goroutine instead.
type rsProber interface {
	probe(sink tcpProbeSink) (out checkOutcome, id tcpProbeID, state rsProbeState)
	// timeout is the outcome of an attempt still in flight at its
	// deadline, which is then connect_timeout after its start.
	timeout() checkOutcome
}

type rsProbeState int

const (
	probeDone rsProbeState = iota
	probePending
	probeUnavailable
)

// rsCheckEntry is one scheduled checker.
type rsCheckEntry struct {
	id   string
	spec *checkerSpec
	ck   rsChecker
	st   rsCheckState
	// due is when the next attempt starts, or while an attempt is in
	// flight through the prober (probing) its deadline.
	due     time.Time
	slot    time.Time // the due time the running attempt started for
	index   int       // position in its heap (h, or waits while probing), -1 when in neither
	running bool
	removed bool
	probing bool       // the running attempt is in flight through the prober
	probe   tcpProbeID // and this is its connect
	sink    chan<- rsCheckResult
	// disabled entries keep their place but skip their attempts:
	// keepalived's checker->enabled, cleared by ha_suspend while the
	// virtual server's address is absent.
	disabled bool
	started  time.Time
}

type rsCheckHeap []*rsCheckEntry

func (h rsCheckHeap) Len() int           { return len(h) }
func (h rsCheckHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h rsCheckHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *rsCheckHeap) Push(x any) {
	e := x.(*rsCheckEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *rsCheckHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.index = -1
	return e
}

// rsCheckQueue is the scheduling core: a timer heap of checkers ordered by
// due time. It holds no goroutine, socket or clock; callers pass now.
type rsCheckQueue struct {
	h       rsCheckHeap // by due time: the checkers waiting for their next attempt
	waits   rsCheckHeap // by deadline: attempts in flight through the prober
	entries map[string]*rsCheckEntry
	// jitter returns a random duration in [0, max]; tests replace it.
	jitter func(max time.Duration) time.Duration
	// coalesce lets an attempt start up to rsSlack early, with others
	// due then (the scheduler sets it; the pure tests keep exact times).
	coalesce bool
}

// rsSlack is how early a checker with delay_loop d may start, so that
// checks due within a few milliseconds of each other share one wake-up:
// a 64th of d, at most 10 ms. The next one stays due on the checker's own
// phase (rsNextDue), so checks do not drift or bunch. With 250 real
// servers at delay_loop 1 s a wake-up then serves 2 or 3 checks instead
// of one; each costs Go's scheduler a dozen microseconds on the host.
func rsSlack(d time.Duration) time.Duration {
	return min(d/64, 10*time.Millisecond)
}

// startBy is the latest time at which e may start by now: its due time,
// less the slack when coalescing.
func (q *rsCheckQueue) startBy(e *rsCheckEntry) time.Time {
	if !q.coalesce {
		return e.due
	}
	return e.due.Add(-rsSlack(e.spec.DelayLoop))
}

func newRSCheckQueue() *rsCheckQueue {
	return &rsCheckQueue{
		entries: make(map[string]*rsCheckEntry),
		jitter: func(max time.Duration) time.Duration {
			if max <= 0 {
				return 0
			}
			return time.Duration(rand.Int64N(int64(max) + 1))
		},
	}
}

// add schedules a checker; its first run is at now + a random warmup, as
// keepalived's register_checkers_thread.
func (q *rsCheckQueue) add(id string, spec *checkerSpec, ck rsChecker, now time.Time) (*rsCheckEntry, error) {
	if _, dup := q.entries[id]; dup {
		return nil, fmt.Errorf("checker %q already scheduled", id)
	}
	e := &rsCheckEntry{id: id, spec: spec, ck: ck, st: newRSCheckState(spec), index: -1}
	e.due = now.Add(q.jitter(spec.Warmup))
	q.entries[id] = e
	heap.Push(&q.h, e)
	return e, nil
}

// remove unschedules a checker; a running attempt's result is dropped. An
// attempt in flight through the prober stays in waits until it ends or
// is cancelled.
func (q *rsCheckQueue) remove(id string) *rsCheckEntry {
	e, ok := q.entries[id]
	if !ok {
		return nil
	}
	delete(q.entries, id)
	e.removed = true
	if e.index >= 0 && !e.running {
		heap.Remove(&q.h, e.index)
	}
	return e
}

// next returns the earliest due time. When coalescing, popDue then takes
// the checkers due within their slack after it too.
func (q *rsCheckQueue) next() (time.Time, bool) {
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].due, true
}

// popDue takes the earliest checker due at or before now (or within its
// slack when coalescing), marking it running; nil when none is due.
func (q *rsCheckQueue) popDue(now time.Time) *rsCheckEntry {
	for len(q.h) > 0 && !q.startBy(q.h[0]).After(now) {
		e := q.h[0]
		if e.disabled {
			// As keepalived's *_connect_thread: a disabled checker is
			// looked at again at most a delay_loop later (on its
			// phase), its state untouched.
			e.due = rsNextDue(e.due, later(now, e.due), e.spec.DelayLoop)
			heap.Fix(&q.h, 0)
			continue
		}
		heap.Pop(&q.h)
		e.running = true
		e.started = now
		e.slot = e.due
		return e
	}
	return nil
}

// await queues a running checker in waits at its attempt's deadline,
// while the attempt is in flight through the prober.
func (q *rsCheckQueue) await(e *rsCheckEntry, deadline time.Time) {
	e.due = deadline
	heap.Push(&q.waits, e)
}

// expired takes the earliest attempt in waits whose deadline is at or
// before now; nil when there is none.
func (q *rsCheckQueue) expired(now time.Time) *rsCheckEntry {
	if len(q.waits) == 0 || q.waits[0].due.After(now) {
		return nil
	}
	return heap.Pop(&q.waits).(*rsCheckEntry)
}

// nextDeadline returns the earliest deadline in waits.
func (q *rsCheckQueue) nextDeadline() (time.Time, bool) {
	if len(q.waits) == 0 {
		return time.Time{}, false
	}
	return q.waits[0].due, true
}

// setEnabled enables or suspends a checker (ha_suspend). It returns false
// for an unknown id.
func (q *rsCheckQueue) setEnabled(id string, on bool, now time.Time) bool {
	e, ok := q.entries[id]
	if !ok {
		return false
	}
	if e.disabled && on && e.index >= 0 && !e.running {
		// Resume within the warmup (at most a delay_loop), not a whole
		// delay_loop later, at a random point: every checker of a
		// virtual server resumes at once, and on the same instant they
		// would keep running together (rsNextDue).
		e.due = now.Add(q.jitter(min(e.spec.Warmup, e.spec.DelayLoop)))
		heap.Fix(&q.h, e.index)
	}
	e.disabled = !on
	return true
}

// done records an attempt's outcome at now, requeues the checker and
// returns the transition to report, if any. MISC_CHECK counts its delay
// from the start of the run (check_misc.c uses last_ran), the others keep
// their phase (rsNextDue).
func (q *rsCheckQueue) done(e *rsCheckEntry, out checkOutcome, now time.Time) (checkTransition, bool) {
	e.running, e.probing = false, false
	if e.index >= 0 { // ended before its deadline
		heap.Remove(&q.waits, e.index)
	}
	if e.removed {
		return checkTransition{}, false
	}
	attempts := e.st.failures + 1
	next, changed, wchanged := e.st.step(e.spec, out)
	if e.spec.Kind == checkMisc {
		// From its start, or its due time when it started early
		// (rsSlack): keepalived never runs one early.
		e.due = later(e.started, e.slot).Add(next)
		if e.due.Before(now) {
			e.due = now
		}
	} else {
		// An attempt started early (rsSlack) counts as ended no
		// earlier than it was due, so that its phase holds.
		e.due = rsNextDue(e.slot, later(now, e.slot), next)
	}
	heap.Push(&q.h, e)
	if !changed && !wchanged {
		return checkTransition{}, false
	}
	t := checkTransition{ID: e.id, Kind: e.spec.Kind, Up: e.st.up, Weight: e.st.weight, At: now, WeightOnly: !changed}
	if out.Err != nil {
		t.Reason = out.Err.Error()
		t.Attempts = attempts
	}
	return t, true
}

// later returns the later of two times.
func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// rsNextDue is when a checker due at due, whose attempt ended at now, is
// due again with delay d: on its own phase (due plus a whole number of
// delays) if one falls between half a delay and a delay after now, else a
// delay after now as keepalived does. An attempt that ends at once, as
// nearly all do, is next due one delay after it was due; the wait after an
// attempt is never longer than keepalived's.
//
// keepalived counts the delay from the end of the attempt. Then a check
// that waited behind others starts its next one later, close behind them,
// and waits again: checks that once ran together keep running together and
// more join them. With 250 real servers at delay_loop 1 s in the IPVS
// guest (bench/checkers.sh) the wait grew from 6 ms to 80 ms within 20 s
// and the daemon made 185 checks a second instead of 250; on their own
// phase the wait stays at 3-4 ms and every check runs once a second.
func rsNextDue(due, now time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return now
	}
	earliest := now.Add(d / 2)
	next := due.Add(d)
	if next.Before(earliest) {
		n := (earliest.Sub(due) + d - 1) / d // whole delays from due
		next = due.Add(n * d)
	}
	if latest := now.Add(d); next.After(latest) {
		next = latest
	}
	return next
}

// ---------------------------------------------------------------------------
// Driver.

// rsCheckScheduler runs checkers: one goroutine owns the timer heap and arms
// a single timer for the earliest due checker or deadline. A due TCP_CHECK
// starts its connect on that goroutine (rsProber), and a second heap
// holds the deadlines of connects still under way; other due checkers run
// in goroutines that exist only for the attempt. At most limit attempts are in flight at once; transitions go
// to notify, called from Run's goroutine in order.
type rsCheckScheduler struct {
	// OnAttempt, when set, sees every finished attempt with the checker's
	// status after it, from Run's goroutine: for log_all_failures and
	// metrics. It must not block for long.
	OnAttempt func(id string, out checkOutcome, st rsCheckStatus)

	mu     sync.Mutex
	q      *rsCheckQueue
	limit  int
	notify func(checkTransition)
	now    func() time.Time
	wake   chan struct{}
	// results takes attempts' outcomes from their goroutines and the
	// prober; it has room for every attempt in flight.
	results chan rsCheckResult
	ended   []rsCheckResult // Run's scratch: attempts that ended at once
}

// newRSCheckScheduler returns a scheduler running at most limit attempts at
// once (0 means 256). notify must not block for long.
func newRSCheckScheduler(limit int, notify func(checkTransition)) *rsCheckScheduler {
	if limit <= 0 {
		limit = 256
	}
	if notify == nil {
		notify = func(checkTransition) {}
	}
	q := newRSCheckQueue()
	q.coalesce = true
	return &rsCheckScheduler{q: q, limit: limit, notify: notify, now: time.Now, wake: make(chan struct{}, 1),
		results: make(chan rsCheckResult, limit)}
}

// Add normalizes spec, builds its checker and schedules it under id.
func (s *rsCheckScheduler) Add(id string, spec *checkerSpec) error {
	ck, err := newChecker(spec)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	return s.AddChecker(id, spec, ck)
}

// AddChecker schedules a given checker implementation (tests use fakes).
func (s *rsCheckScheduler) AddChecker(id string, spec *checkerSpec, ck rsChecker) error {
	if err := spec.normalize(); err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	s.mu.Lock()
	e, err := s.q.add(id, spec, ck, s.now())
	if e != nil {
		e.sink = s.results
	}
	s.mu.Unlock()
	s.poke()
	return err
}

// Remove unschedules a checker. A connect it has in flight is taken back
// at once, and its place with it.
func (s *rsCheckScheduler) Remove(id string) {
	s.mu.Lock()
	if e := s.q.remove(id); e != nil && e.probing && tcpProbes.cancel(e.probe) {
		e.probing = false
		// Its result's room in results is free: this cannot block.
		s.results <- rsCheckResult{e, checkOutcome{Err: errors.New("connect: cancelled"), Weight: -1}}
	}
	s.mu.Unlock()
	s.poke()
}

// rsCheckStatus is a snapshot of one checker.
type rsCheckStatus struct {
	Up       bool
	Weight   int  // misc_dynamic weight, -1 when none was set
	Failures int  // consecutive failed attempts
	HasRun   bool // at least one attempt finished
	Enabled  bool
}

// State returns a checker's current status; false when the id is unknown.
// Before the first attempt a checker is up unless alpha is set.
func (s *rsCheckScheduler) State(id string) (rsCheckStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.q.entries[id]
	if !ok {
		return rsCheckStatus{}, false
	}
	return e.status(), true
}

func (e *rsCheckEntry) status() rsCheckStatus {
	return rsCheckStatus{Up: e.st.up, Weight: e.st.weight, Failures: e.st.failures, HasRun: e.st.hasRun, Enabled: !e.disabled}
}

// SetEnabled suspends (false) or resumes (true) a checker, for ha_suspend:
// a suspended checker keeps its state and runs no attempts. It returns
// false for an unknown id.
func (s *rsCheckScheduler) SetEnabled(id string, on bool) bool {
	s.mu.Lock()
	ok := s.q.setEnabled(id, on, s.now())
	s.mu.Unlock()
	s.poke()
	return ok
}

func (s *rsCheckScheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

type rsCheckResult struct {
	e   *rsCheckEntry
	out checkOutcome
}

// tcpProbeDone hands the outcome of the entry's connect to its scheduler.
func (e *rsCheckEntry) tcpProbeDone(err error) {
	e.sink <- rsCheckResult{e, tcpOutcome(err)}
}

// rsStartBatch bounds the attempts Run starts, or ends at once, while it
// holds the lock.
const rsStartBatch = 64

// Run drives the checkers until ctx ends, then waits for running attempts
// (which see ctx cancelled) and returns. Only one Run at a time; Add,
// Remove, SetEnabled and State may be called from any goroutine.
func (s *rsCheckScheduler) Run(ctx context.Context) error {
	inflight := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := s.start(ctx, &inflight)
		for _, r := range s.ended {
			s.finish(r)
		}
		clear(s.ended)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			s.stop(inflight)
			return nil
		case r := <-s.results:
			inflight--
			s.finish(r)
		case <-timer.C:
		case <-s.wake:
		}
		timer.Stop()
	}
}

// start starts due checkers, as many as the bound on attempts in flight
// allows, and times out connects at their deadlines. Attempts that ended
// at once go to s.ended, at most rsStartBatch of them. It returns the time
// to the next due checker or deadline: 0 when the batch is full, as there
// may be more to do now.
func (s *rsCheckScheduler) start(ctx context.Context, inflight *int) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = s.ended[:0]
	now := s.now()
	for len(s.ended) < rsStartBatch {
		if e := s.q.expired(now); e != nil { // a connect at its deadline
			e.probing = false
			if tcpProbes.cancel(e.probe) {
				*inflight--
				s.ended = append(s.ended, rsCheckResult{e, e.ck.(rsProber).timeout()})
			} // else it has just ended: its result is in s.results
			continue
		}
		if *inflight >= s.limit {
			break
		}
		e := s.q.popDue(now)
		if e == nil {
			break
		}
		if p, ok := e.ck.(rsProber); ok {
			out, id, state := p.probe(e)
			switch state {
			case probeDone:
				s.ended = append(s.ended, rsCheckResult{e, out})
				continue
			case probePending:
				*inflight++
				e.probing, e.probe = true, id
				s.q.await(e, now.Add(e.spec.ConnectTimeout))
				continue
			}
		}
		*inflight++
		go func(e *rsCheckEntry) {
			out := e.ck.Check(ctx)
			s.results <- rsCheckResult{e, out}
		}(e)
	}
	if len(s.ended) == rsStartBatch {
		return 0
	}
	wait := time.Hour
	if d, ok := s.q.nextDeadline(); ok {
		wait = max(d.Sub(now), 0)
	}
	if due, ok := s.q.next(); ok && *inflight < s.limit {
		wait = max(min(wait, due.Sub(now)), 0)
	}
	return wait
}

// finish records an attempt's outcome and reports it.
func (s *rsCheckScheduler) finish(r rsCheckResult) {
	s.mu.Lock()
	t, ok := s.q.done(r.e, r.out, s.now())
	st, removed := r.e.status(), r.e.removed
	s.mu.Unlock()
	if s.OnAttempt != nil && !removed {
		s.OnAttempt(r.e.id, r.out, st)
	}
	if ok {
		s.notify(t)
	}
}

// stop ends Run: it takes back the connects in flight and waits for the
// attempts running in goroutines, which see ctx cancelled.
func (s *rsCheckScheduler) stop(inflight int) {
	s.mu.Lock()
	for _, e := range s.q.waits {
		if e.probing && tcpProbes.cancel(e.probe) {
			e.probing = false
			inflight--
		}
	}
	s.mu.Unlock()
	for ; inflight > 0; inflight-- {
		<-s.results
	}
}

// ---------------------------------------------------------------------------
// Checkers.

// newChecker builds the checker for a spec.
func newChecker(spec *checkerSpec) (rsChecker, error) {
	if err := spec.normalize(); err != nil {
		return nil, err
	}
	switch spec.Kind {
	case checkTCP:
		return &tcpChecker{spec}, nil
	case checkHTTP, checkSSL:
		return &httpChecker{spec}, nil
	case checkMisc:
		return &miscChecker{spec}, nil
	case checkDNS:
		return &dnsChecker{spec}, nil
	case checkPing:
		return &pingChecker{spec}, nil
	case checkUDP:
		return &udpChecker{spec}, nil
	case checkSMTP:
		return &smtpChecker{spec}, nil
	}
	return nil, fmt.Errorf("unknown checker kind %d", spec.Kind)
}

// checkDialer returns a dialer honouring connect_timeout, bindto,
// bind_port, bind_if and fwmark.
func checkDialer(spec *checkerSpec, network string) *net.Dialer {
	d := &net.Dialer{Timeout: spec.ConnectTimeout}
	if spec.BindTo.IsValid() || spec.BindPort != 0 {
		ip := net.IP(nil)
		if spec.BindTo.IsValid() {
			ip = net.IP(spec.BindTo.AsSlice())
		}
		if strings.HasPrefix(network, "udp") {
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(spec.BindPort)}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(spec.BindPort)}
		}
	}
	if spec.BindIf != "" || spec.FWMark != 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) { serr = checkSocketMarks(int(fd), spec) })
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// checkDial connects with the spec's options and turns errors into short
// reasons ("connect: connection refused", "connect: timeout after 5s").
func checkDial(ctx context.Context, spec *checkerSpec, network string) (net.Conn, error) {
	c, err := checkDialer(spec, network).DialContext(ctx, network, spec.addrPort().String())
	if err != nil {
		return nil, checkNetErr("connect", spec, err)
	}
	return c, nil
}

// checkNetErr shortens a net error into a reason naming the step.
func checkNetErr(step string, spec *checkerSpec, err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timeout after %v", step, spec.ConnectTimeout)
	}
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: cancelled", step)
	}
	var se *os.SyscallError
	if errors.As(err, &se) {
		return fmt.Errorf("%s: %v", step, se.Err)
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return fmt.Errorf("%s: %v", step, oe.Err)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: connection closed by server", step)
	}
	return fmt.Errorf("%s: %v", step, err)
}

// checkDeadline arms the per-step timeout keepalived applies to every read
// and write (connect_timeout).
func checkDeadline(c net.Conn, spec *checkerSpec) {
	_ = c.SetDeadline(time.Now().Add(spec.ConnectTimeout))
}

// checkCloseOnCancel closes c when ctx ends, so that a blocked read returns.
func checkCloseOnCancel(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// tcpChecker is TCP_CHECK: success is a completed TCP handshake.
type tcpChecker struct{ spec *checkerSpec }

func (t *tcpChecker) Check(ctx context.Context) checkOutcome {
	if err := tcpConnect(ctx, t.spec); err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	return checkOutcome{Weight: -1}
}

// probe starts an attempt on the scheduler's goroutine (rsProber).
func (t *tcpChecker) probe(sink tcpProbeSink) (checkOutcome, tcpProbeID, rsProbeState) {
	if !tcpProbes.usable() {
		return checkOutcome{}, tcpProbeID{}, probeUnavailable
	}
	id, done, err := tcpProbes.begin(t.spec, sink)
	if done {
		return tcpOutcome(err), id, probeDone
	}
	return checkOutcome{}, id, probePending
}

func (t *tcpChecker) timeout() checkOutcome {
	return checkOutcome{Err: tcpTimeoutErr(t.spec), Weight: -1}
}

// tcpOutcome is a TCP_CHECK attempt's outcome from its connect's result.
func tcpOutcome(err error) checkOutcome {
	return checkOutcome{Err: tcpConnectErr(err), Weight: -1}
}

// httpChecker is HTTP_GET and SSL_GET. It speaks HTTP itself instead of
// using net/http because keepalived's digest is the MD5 of the raw bytes
// after the header (a chunked body is hashed with its chunk framing), and
// the request is keepalived's exact template, so digests made by
// keepalived's genhash stay valid. Every url is fetched on each attempt;
// the first failing url fails the attempt.
type httpChecker struct{ spec *checkerSpec }

func (h *httpChecker) Check(ctx context.Context) checkOutcome {
	for i := range h.spec.URLs {
		u := &h.spec.URLs[i]
		r, err := checkHTTPFetch(ctx, h.spec, u)
		if err != nil {
			return checkOutcome{Err: fmt.Errorf("url %s: %w", u.Path, err), Weight: -1}
		}
		if err := r.verify(u); err != nil {
			return checkOutcome{Err: fmt.Errorf("url %s: %w", u.Path, err), Weight: -1}
		}
	}
	return checkOutcome{Weight: -1}
}

// checkHTTPResponse is what keepalived looks at in a reply.
type checkHTTPResponse struct {
	Status int
	Digest string // hex MD5 of the body
	Body   []byte // kept only up to httpKeepBody, for regex
	Size   int64
}

const (
	checkHTTPMaxHeader = 64 << 10
	checkHTTPKeepBody  = 1 << 20
)

func (r *checkHTTPResponse) verify(u *checkURL) error {
	if !u.statusOK(r.Status) {
		return fmt.Errorf("status %d not in %s", r.Status, u.statusText())
	}
	if u.Digest != "" && r.Digest != u.Digest {
		return fmt.Errorf("digest mismatch: got %s, want %s", r.Digest, u.Digest)
	}
	if u.re != nil && u.regexMatch(r.Body) == u.RegexNoMatch {
		if u.RegexNoMatch {
			return fmt.Errorf("regex %q matched", u.Regex)
		}
		return fmt.Errorf("regex %q did not match", u.Regex)
	}
	return nil
}

// checkHTTPRequest builds keepalived's GET (check_http.c request_template).
func checkHTTPRequest(spec *checkerSpec, u *checkURL) string {
	host := u.VirtualHost
	if host == "" {
		host = spec.VirtualHost
	}
	if host == "" {
		host = spec.addrPort().String() // [v6]:port as RFC 2732
	}
	minor, conn := "0", ""
	switch spec.HTTPProtocol {
	case "1.1":
		minor, conn = "1", "Connection: close\r\n"
	case "1.0C":
		conn = "Connection: close\r\n"
	}
	return "GET " + u.Path + " HTTP/1." + minor + "\r\nUser-Agent: KeepAliveClient\r\n" + conn + "Host: " + host + "\r\n\r\n"
}

// checkHTTPFetch sends one GET and reads the reply until the server closes or
// Content-Length bytes arrived.
func checkHTTPFetch(ctx context.Context, spec *checkerSpec, u *checkURL) (*checkHTTPResponse, error) {
	c, err := checkDial(ctx, spec, "tcp")
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := checkCloseOnCancel(ctx, c)
	defer stop()
	if spec.Kind == checkSSL {
		conf := spec.tlsConf.Clone()
		if conf.ServerName == "" && spec.EnableSNI {
			conf.ServerName = u.VirtualHost
			if conf.ServerName == "" {
				conf.ServerName = spec.VirtualHost
			}
		}
		tc := tls.Client(c, conf)
		checkDeadline(c, spec)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, checkNetErr("tls handshake", spec, err)
		}
		c = tc
	}
	checkDeadline(c, spec)
	if _, err := io.WriteString(c, checkHTTPRequest(spec, u)); err != nil {
		return nil, checkNetErr("send request", spec, err)
	}
	return checkHTTPReadResponse(&checkDeadlineReader{c, spec}, spec)
}

// checkDeadlineReader re-arms connect_timeout before every read, as keepalived
// re-arms its read thread.
type checkDeadlineReader struct {
	c    net.Conn
	spec *checkerSpec
}

func (d *checkDeadlineReader) Read(p []byte) (int, error) {
	checkDeadline(d.c, d.spec)
	return d.c.Read(p)
}

// checkHTTPReadResponse parses the status line and header (keepalived's
// extract_status_code / extract_html) and hashes the body.
func checkHTTPReadResponse(r io.Reader, spec *checkerSpec) (*checkHTTPResponse, error) {
	br := bufio.NewReaderSize(r, 4096)
	var head []byte
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) {
		line, err := br.ReadSlice('\n')
		head = append(head, line...)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			switch {
			case !errors.Is(err, io.EOF):
				return nil, checkNetErr("read", spec, err)
			case len(head) == 0:
				return nil, errors.New("read: no data received")
			default:
				return nil, errors.New("read: reply ended inside the header")
			}
		}
		if len(head) > checkHTTPMaxHeader {
			return nil, fmt.Errorf("read: header longer than %d bytes", checkHTTPMaxHeader)
		}
	}
	status, err := checkHTTPStatus(head)
	if err != nil {
		return nil, err
	}
	length := checkHTTPContentLength(head)
	var body io.Reader = br
	if length >= 0 {
		body = io.LimitReader(br, length)
	}
	hash := md5.New()
	keep := &checkCapBuffer{max: checkHTTPKeepBody}
	n, err := io.Copy(io.MultiWriter(hash, keep), body)
	if err != nil {
		return nil, checkNetErr("read body", spec, err)
	}
	return &checkHTTPResponse{Status: status, Digest: hex.EncodeToString(hash.Sum(nil)), Body: keep.b, Size: n}, nil
}

// checkHTTPStatus reads "HTTP/1.x NNN ..." from the first header line.
func checkHTTPStatus(head []byte) (int, error) {
	line, _, _ := bytes.Cut(head, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if !bytes.HasPrefix(line, []byte("HTTP/")) {
		return 0, fmt.Errorf("reply is not HTTP: %q", checkTrim(line))
	}
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return 0, fmt.Errorf("bad status line %q", checkTrim(line))
	}
	code, err := strconv.Atoi(string(rest[:3]))
	if err != nil || code < 100 {
		return 0, fmt.Errorf("bad status line %q", checkTrim(line))
	}
	return code, nil
}

// checkHTTPContentLength returns the Content-Length header, -1 when absent or
// malformed (the body then runs to EOF).
func checkHTTPContentLength(head []byte) int64 {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		name, val, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "Content-Length") {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(val)), 10, 64)
			if err != nil || n < 0 {
				return -1
			}
			return n
		}
	}
	return -1
}

func checkTrim(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// checkCapBuffer keeps the first max bytes written and drops the rest.
type checkCapBuffer struct {
	b   []byte
	max int
}

func (c *checkCapBuffer) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// buildTLS makes the SSL_GET client configuration.
func (s *checkerSpec) buildTLS() (*tls.Config, error) {
	conf := &tls.Config{InsecureSkipVerify: !s.TLSVerify, MinVersion: tls.VersionTLS10}
	if s.TLSVerify {
		conf.ServerName = s.TLSServerName
		if conf.ServerName == "" {
			conf.ServerName = s.VirtualHost
		}
		if conf.ServerName == "" {
			conf.ServerName = s.ConnectIP.String()
		}
	}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("ssl ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ssl ca %s holds no PEM certificate", s.TLSCAFile)
		}
		conf.RootCAs = pool
	}
	if s.TLSCertFile != "" || s.TLSKeyFile != "" {
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("ssl certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// miscChecker is MISC_CHECK: it runs misc_path; exit 0 is success, and
// with misc_dynamic exit 2..255 is success with weight exit-2 (check_misc.c).
type miscChecker struct{ spec *checkerSpec }

func (m *miscChecker) Check(ctx context.Context) checkOutcome {
	argv, err := checkMiscCommand(m.spec.MiscPath)
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	code, err := checkMiscRun(ctx, argv, m.spec.MiscTimeout, m.spec.MiscUser)
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	switch {
	case code == 0:
		return checkOutcome{Weight: -1}
	case m.spec.MiscDynamic && code >= 2 && code <= 255:
		return checkOutcome{Weight: code - 2}
	}
	return checkOutcome{Err: fmt.Errorf("exit status %d", code), Weight: -1}
}

// miscShellChars are the characters that make a command line need a shell.
const checkMiscShellChars = "|&;<>()$`\\*?[]~{}#\n"

// checkMiscCommand splits misc_path into argv like keepalived's
// set_script_params_array (whitespace separated, quotes group, backslash
// escapes); a command with shell syntax runs as /bin/sh -c CMD so configs
// written for shells keep working.
func checkMiscCommand(cmd string) ([]string, error) {
	cmd = strings.TrimSpace(cmd)
	if cmd == "" {
		return nil, errors.New("empty misc_path")
	}
	var args []string
	var cur strings.Builder
	inArg := false
	quote := byte(0)
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote == '"' && (c == '$' || c == '`' || c == '\\'):
			// The shell still expands these inside double quotes.
			return []string{"/bin/sh", "-c", cmd}, nil
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inArg = true
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		case strings.IndexByte(checkMiscShellChars, c) >= 0:
			return []string{"/bin/sh", "-c", cmd}, nil
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("misc_path %q has an unterminated quote", cmd)
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// checkMiscRun runs argv in its own process group and returns its exit status.
// At timeout (or ctx end) the whole group gets SIGTERM, then SIGKILL after
// checkMiscKillGrace, as keepalived does; that is a failure.
func checkMiscRun(ctx context.Context, argv []string, timeout time.Duration, cred *syscall.Credential) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	// stdout/stderr go to /dev/null (nil): a pipe would keep Wait waiting
	// for grandchildren that inherited it.
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start: %v", err)
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var why error
	select {
	case err := <-done:
		// Reap stragglers the script left in its group.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		return checkMiscExit(err)
	case <-t.C:
		why = fmt.Errorf("timed out after %v", timeout)
	case <-ctx.Done():
		why = errors.New("cancelled")
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(checkMiscKillGrace)
	defer grace.Stop()
	select {
	case <-done:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	case <-grace.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	return 0, why
}

func checkMiscExit(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 0, fmt.Errorf("killed by signal %v", ws.Signal())
		}
		return ee.ExitCode(), nil
	}
	return 0, err
}

// dnsChecker is DNS_CHECK: a query over UDP with RD set; any reply with our
// ID, QR set and RCODE 0 is success (check_dns.c dns_recv_thread).
type dnsChecker struct{ spec *checkerSpec }

func (d *dnsChecker) Check(ctx context.Context) checkOutcome {
	id := uint16(rand.UintN(1 << 16))
	q, err := checkDNSQuery(id, d.spec.DNSName, d.spec.dnsType)
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	c, err := checkDial(ctx, d.spec, "udp")
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	defer c.Close()
	stop := checkCloseOnCancel(ctx, c)
	defer stop()
	checkDeadline(c, d.spec) // one timeout for the whole exchange, as keepalived
	if _, err := c.Write(q); err != nil {
		return checkOutcome{Err: checkNetErr("send query", d.spec, err), Weight: -1}
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return checkOutcome{Err: checkNetErr("read reply", d.spec, err), Weight: -1}
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil || h.ID != id || !h.Response {
			continue // not our reply: keep waiting, as keepalived
		}
		if h.RCode != dnsmessage.RCodeSuccess {
			return checkOutcome{Err: fmt.Errorf("rcode %v", h.RCode), Weight: -1}
		}
		return checkOutcome{Weight: -1}
	}
}

// checkDNSQuery builds the query keepalived's dns_make_query sends.
func checkDNSQuery(id uint16, name string, typ dnsmessage.Type) ([]byte, error) {
	n, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, fmt.Errorf("dns name %q: %v", name, err)
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(dnsmessage.Question{Name: n, Type: typ, Class: dnsmessage.ClassINET}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// udpChecker is UDP_CHECK: send the payload; without require_reply success
// is the absence of an ICMP error within connect_timeout; with it, a reply
// of the right length whose leading bytes match (check_udp.c).
type udpChecker struct{ spec *checkerSpec }

func (u *udpChecker) Check(ctx context.Context) checkOutcome {
	c, err := checkDial(ctx, u.spec, "udp")
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	defer c.Close()
	stop := checkCloseOnCancel(ctx, c)
	defer stop()
	checkDeadline(c, u.spec)
	if _, err := c.Write(u.spec.UDPPayload); err != nil {
		return checkOutcome{Err: checkNetErr("send", u.spec, err), Weight: -1}
	}
	buf := make([]byte, u.spec.UDPMaxReply+1)
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !u.spec.UDPRequireReply {
			return checkOutcome{Weight: -1}
		}
		return checkOutcome{Err: checkNetErr("read reply", u.spec, err), Weight: -1}
	}
	if !u.spec.UDPRequireReply {
		return checkOutcome{Weight: -1}
	}
	if err := checkUDPMatch(buf[:n], u.spec); err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	return checkOutcome{Weight: -1}
}

func checkUDPMatch(got []byte, spec *checkerSpec) error {
	if len(got) < spec.UDPMinReply || len(got) > spec.UDPMaxReply {
		return fmt.Errorf("reply length %d outside %d-%d", len(got), spec.UDPMinReply, spec.UDPMaxReply)
	}
	for i := 0; i < len(spec.UDPReply) && i < len(got); i++ {
		mask := byte(0xff)
		if spec.UDPReplyMask != nil {
			mask = ^spec.UDPReplyMask[i]
		}
		if (got[i]^spec.UDPReply[i])&mask != 0 {
			return fmt.Errorf("reply data mismatch at byte %d", i)
		}
	}
	return nil
}

// pingChecker is PING_CHECK: one ICMP or ICMPv6 echo, answered within
// connect_timeout. It uses an unprivileged ping socket when the kernel
// allows it (net.ipv4.ping_group_range) and a raw socket otherwise.
type pingChecker struct{ spec *checkerSpec }

func (p *pingChecker) Check(ctx context.Context) checkOutcome {
	dst := p.spec.ConnectIP.Unmap()
	v4 := dst.Is4()
	src := ""
	if p.spec.BindTo.IsValid() {
		src = p.spec.BindTo.String()
	}
	var pc *icmp.PacketConn
	var err error
	raw := false
	if v4 {
		if pc, err = icmp.ListenPacket("udp4", src); err != nil {
			pc, err = icmp.ListenPacket("ip4:icmp", src)
			raw = true
		}
	} else {
		if pc, err = icmp.ListenPacket("udp6", src); err != nil {
			pc, err = icmp.ListenPacket("ip6:ipv6-icmp", src)
			raw = true
		}
	}
	if err != nil {
		return checkOutcome{Err: fmt.Errorf("icmp socket: %v", err), Weight: -1}
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	id := int(rand.UintN(1 << 16))
	seq := int(rand.UintN(1 << 16))
	var typ, reply icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1
	if !v4 {
		typ, reply, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("vipd PING_CHECK")}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if raw {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	_ = pc.SetDeadline(time.Now().Add(p.spec.ConnectTimeout))
	if _, err := pc.WriteTo(wb, to); err != nil {
		return checkOutcome{Err: checkNetErr("send echo", p.spec, err), Weight: -1}
	}
	rb := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(rb)
		if err != nil {
			return checkOutcome{Err: checkNetErr("echo reply", p.spec, err), Weight: -1}
		}
		if fa, ok := netip.AddrFromSlice(checkAddrIP(from)); !ok || fa.Unmap() != dst.WithZone("") {
			continue
		}
		m, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil || m.Type != reply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		// A ping socket rewrites the ID; only a raw socket can check it.
		if !ok || e.Seq != seq || (raw && e.ID != id) {
			continue
		}
		return checkOutcome{Weight: -1}
	}
}

func checkAddrIP(a net.Addr) net.IP {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP
	case *net.IPAddr:
		return a.IP
	}
	return nil
}

// smtpChecker is SMTP_CHECK: a 220 banner, HELO answered by 250, then QUIT
// (check_smtp.c smtp_engine_thread).
type smtpChecker struct{ spec *checkerSpec }

func (s *smtpChecker) Check(ctx context.Context) checkOutcome {
	c, err := checkDial(ctx, s.spec, "tcp")
	if err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	defer c.Close()
	stop := checkCloseOnCancel(ctx, c)
	defer stop()
	br := bufio.NewReader(&checkDeadlineReader{c, s.spec})
	if err := checkSMTPExpect(br, 220, "banner", s.spec); err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	checkDeadline(c, s.spec)
	if _, err := io.WriteString(c, "HELO "+s.spec.SMTPHelo+"\r\n"); err != nil {
		return checkOutcome{Err: checkNetErr("send HELO", s.spec, err), Weight: -1}
	}
	if err := checkSMTPExpect(br, 250, "HELO", s.spec); err != nil {
		return checkOutcome{Err: err, Weight: -1}
	}
	checkDeadline(c, s.spec)
	if _, err := io.WriteString(c, "QUIT\r\n"); err != nil {
		return checkOutcome{Err: checkNetErr("send QUIT", s.spec, err), Weight: -1}
	}
	// keepalived waits for one more line and then succeeds whatever it says.
	if _, err := br.ReadString('\n'); err != nil {
		return checkOutcome{Err: checkNetErr("QUIT reply", s.spec, err), Weight: -1}
	}
	return checkOutcome{Weight: -1}
}

// checkSMTPExpect reads one reply (multi-line "220-..." continuations included)
// and checks its code.
func checkSMTPExpect(br *bufio.Reader, want int, what string, spec *checkerSpec) error {
	for lines := 0; lines < 100; lines++ {
		line, err := br.ReadString('\n')
		if err != nil {
			return checkNetErr(what, spec, err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return fmt.Errorf("bad %s reply %q", what, line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return fmt.Errorf("bad %s reply %q", what, checkTrim([]byte(line)))
		}
		if len(line) > 3 && line[3] == '-' {
			continue
		}
		if code != want {
			return fmt.Errorf("bad %s reply %q, want %d", what, checkTrim([]byte(line)), want)
		}
		return nil
	}
	return fmt.Errorf("%s reply longer than 100 lines", what)
}

// ---------------------------------------------------------------------------
// keepalived.conf keywords.

// checkerKeyword applies one keepalived.conf line from inside a checker
// block to spec: keyword and its arguments as the config tokenizer split
// them. Inside a `url { }` block pass that url; a `url` keyword itself
// appends a new url and returns it (valid until the next `url`). Errors
// name the keyword; the caller adds file:line. Call normalize afterwards.
func checkerKeyword(spec *checkerSpec, u *checkURL, kw string, args []string) (*checkURL, error) {
	arg := func() (string, error) {
		if len(args) < 1 {
			return "", fmt.Errorf("%s needs a value", kw)
		}
		return args[0], nil
	}
	timer := func() (time.Duration, error) {
		a, err := arg()
		if err != nil {
			return 0, err
		}
		f, err := strconv.ParseFloat(a, 64)
		if err != nil || f < 0 || f > 1e9 {
			return 0, fmt.Errorf("%s %q is not a number of seconds", kw, a)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	uint16v := func() (uint16, error) {
		a, err := arg()
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseUint(a, 10, 16)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("%s %q is not a port 1-65535", kw, a)
		}
		return uint16(n), nil
	}
	boolv := func() (bool, error) {
		if len(args) == 0 {
			return true, nil
		}
		switch strings.ToLower(args[0]) {
		case "true", "on", "yes", "1":
			return true, nil
		case "false", "off", "no", "0":
			return false, nil
		}
		return false, fmt.Errorf("%s %q is not true or false", kw, args[0])
	}
	addr := func() (netip.Addr, error) {
		a, err := arg()
		if err != nil {
			return netip.Addr{}, err
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%s %q is not an IP address", kw, a)
		}
		return ip.Unmap(), nil
	}
	intv := func(lo, hi int) (int, error) {
		a, err := arg()
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(a)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s %q is not a number %d-%d", kw, a, lo, hi)
		}
		return n, nil
	}
	unquote := func() (string, error) {
		if len(args) == 0 {
			return "", fmt.Errorf("%s needs a value", kw)
		}
		v := strings.Join(args, " ")
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		return v, nil
	}
	var err error
	if u != nil {
		switch kw {
		case "path":
			u.Path, err = arg()
		case "digest":
			u.Digest, err = arg()
		case "status_code":
			u.StatusCodes, err = parseStatusCodes(args)
			if err == nil && len(args) == 0 {
				err = errors.New("status_code needs a value")
			}
		case "virtualhost":
			u.VirtualHost, err = arg()
		case "regex":
			u.Regex, err = unquote()
		case "regex_no_match":
			u.RegexNoMatch = true
		case "regex_min_offset":
			u.RegexMinOffset, err = intv(0, 1<<30)
		case "regex_max_offset":
			u.RegexMaxOffset, err = intv(0, 1<<30)
		case "regex_options":
			// PCRE options with an RE2 equivalent become inline flags.
			var flags string
			for _, o := range args {
				f, ok := map[string]string{"caseless": "i", "multiline": "m", "dotall": "s", "ungreedy": "U"}[o]
				if !ok {
					return u, fmt.Errorf("regex_options %q is not supported (caseless, multiline, dotall, ungreedy are)", o)
				}
				flags += f
			}
			u.regexFlags += flags
		case "regex_stack":
			// PCRE JIT tuning: nothing to do for RE2.
		default:
			return u, fmt.Errorf("unknown keyword %q in url block", kw)
		}
		return u, err
	}
	switch kw {
	case "connect_ip":
		spec.ConnectIP, err = addr()
	case "connect_port":
		spec.ConnectPort, err = uint16v()
	case "bindto":
		spec.BindTo, err = addr()
	case "bind_port":
		spec.BindPort, err = uint16v()
	case "bind_if":
		spec.BindIf, err = arg()
	case "fwmark":
		var n int
		n, err = intv(0, 1<<31-1)
		spec.FWMark = uint32(n)
	case "connect_timeout":
		spec.ConnectTimeout, err = timer()
	case "delay_loop":
		spec.DelayLoop, err = timer()
	case "delay_before_retry":
		spec.DelayBeforeRetry, err = timer()
	case "warmup":
		spec.Warmup, err = timer()
	case "retry", "nb_get_retry":
		spec.Retry, err = intv(0, 1<<30)
	case "alpha":
		spec.Alpha, err = boolv()
	case "log_all_failures":
		_, err = boolv() // logging is the caller's: see rsCheckScheduler.OnAttempt
	case "url":
		spec.URLs = append(spec.URLs, checkURL{})
		return &spec.URLs[len(spec.URLs)-1], nil
	case "virtualhost":
		spec.VirtualHost, err = arg()
	case "enable_sni":
		spec.EnableSNI, err = boolv()
	case "fast_recovery":
		// Every url is fetched on each attempt already, so there is no
		// delay between urls to skip.
		_, err = boolv()
	case "http_protocol":
		spec.HTTPProtocol, err = arg()
	case "misc_path":
		spec.MiscPath, err = unquote()
	case "misc_timeout":
		spec.MiscTimeout, err = timer()
	case "misc_dynamic":
		spec.MiscDynamic = true
	case "user":
		spec.MiscUser, err = checkLookupUser(args)
	case "type":
		spec.DNSType, err = arg()
	case "name":
		spec.DNSName, err = arg()
	case "payload":
		spec.UDPPayload, _, err = parseCheckHex(strings.Join(args, ""), false)
	case "require_reply":
		spec.UDPRequireReply = true
		if len(args) > 0 {
			spec.UDPReply, spec.UDPReplyMask, err = parseCheckHex(strings.Join(args, ""), true)
		}
	case "min_reply_length":
		spec.UDPMinReply, err = intv(0, 65535)
	case "max_reply_length":
		spec.UDPMaxReply, err = intv(0, 65535)
	case "helo_name":
		spec.SMTPHelo, err = unquote()
	default:
		return nil, fmt.Errorf("unknown keyword %q in %s", kw, spec.Kind)
	}
	if err != nil {
		return nil, err
	}
	return nil, nil
}

// checkLookupUser resolves MISC_CHECK's `user USER [GROUP]`.
func checkLookupUser(args []string) (*syscall.Credential, error) {
	if len(args) == 0 {
		return nil, errors.New("user needs a name")
	}
	u, err := user.Lookup(args[0])
	if err != nil {
		return nil, fmt.Errorf("user %q: %v", args[0], err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if len(args) > 1 {
		g, err := user.LookupGroup(args[1])
		if err != nil {
			return nil, fmt.Errorf("group %q: %v", args[1], err)
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}
