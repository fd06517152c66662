package main

// smtp.go sends keepalived's state change mails (smtp.c, vrrp_notify.c
// vrrp_smtp_notifier): subject "[ROUTER_ID] VRRP Instance VI_1 - Entering
// MASTER state", body saying which instance or group changed to what, on
// which host, when. Mail goes out from its own goroutine through a bounded
// queue: a mail server that is down or slow never delays a transition, and
// every failure is logged.

import (
	"fmt"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// mailQueueLen bounds the alerts waiting for a slow server; more are
// dropped (logged).
const mailQueueLen = 64

// mail is one alert.
type mail struct {
	Subject string
	Body    string
	At      time.Time
}

// mailer delivers alerts to smtp_server.
type mailer struct {
	log     zerolog.Logger
	addr    string // host:port
	helo    string
	timeout time.Duration
	from    string
	to      []string
	host    string // this host's name, for the body
	q       chan mail
	done    chan struct{}
}

// newMailer returns nil when global_defs does not say where to send mail.
func newMailer(log zerolog.Logger, g *GlobalDefs) *mailer {
	if g.SMTPServer == "" || len(g.NotificationEmail) == 0 {
		return nil
	}
	host, _ := os.Hostname()
	port := g.SMTPPort
	if port == 0 {
		port = 25
	}
	m := &mailer{
		log:     log,
		addr:    net.JoinHostPort(g.SMTPServer, strconv.Itoa(port)),
		helo:    g.SMTPHeloName,
		timeout: g.SMTPConnectTimeout,
		from:    g.NotificationEmailFrom,
		to:      g.NotificationEmail,
		host:    host,
		q:       make(chan mail, mailQueueLen),
		done:    make(chan struct{}),
	}
	if m.helo == "" {
		m.helo = host
	}
	if m.from == "" {
		m.from = "keepalived@" + host
	}
	if m.timeout <= 0 {
		m.timeout = 30 * time.Second
	}
	go m.serve()
	return m
}

// send queues an alert; it never blocks.
func (m *mailer) send(ml mail) {
	if m == nil {
		return
	}
	select {
	case m.q <- ml:
	default:
		m.log.Error().Msgf("SMTP alert %q dropped: %d alerts already wait for %s", ml.Subject, mailQueueLen, m.addr)
	}
}

func (m *mailer) serve() {
	defer close(m.done)
	for ml := range m.q {
		if err := m.deliver(ml); err != nil {
			m.log.Error().Msgf("Error sending SMTP alert %q to %s: %v", ml.Subject, m.addr, err)
			continue
		}
		m.log.Info().Msgf("SMTP alert successfully sent: %s", ml.Subject)
	}
}

// close stops the mailer, waiting at most wait for queued alerts.
func (m *mailer) close(wait time.Duration) {
	if m == nil {
		return
	}
	close(m.q)
	select {
	case <-m.done:
	case <-time.After(wait):
		m.log.Warn().Msg("SMTP alerts still queued at exit were not sent")
	}
}

// message is the RFC 5322 text of an alert.
func (m *mailer) message(ml mail) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", m.from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(m.to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", ml.Subject)
	fmt.Fprintf(&b, "Date: %s\r\n", ml.At.Format(time.RFC1123Z))
	b.WriteString("X-Mailer: vipd\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	// net/smtp's DATA writer does the dot-stuffing.
	for _, l := range strings.Split(strings.TrimRight(ml.Body, "\n"), "\n") {
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}

// deliver sends one alert: connect with smtp_connect_timeout, and the same
// timeout again for each step of the exchange.
func (m *mailer) deliver(ml mail) error {
	conn, err := net.DialTimeout("tcp", m.addr, m.timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(4 * m.timeout))
	host, _, _ := net.SplitHostPort(m.addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(m.helo); err != nil {
		return fmt.Errorf("HELO: %w", err)
	}
	if err := c.Mail(m.from); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, to := range m.to {
		if err := c.Rcpt(to); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", to, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(m.message(ml)); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	return c.Quit()
}

// vrrpAlert is keepalived's alert for an instance or group (kind
// "Instance" or "Group") entering st; ok is false for states keepalived
// does not mail about.
func vrrpAlert(routerID, kind, name string, from, to state, why string, prio uint8, host string, at time.Time) (mail, bool) {
	var subj, line string
	switch to {
	case stateMaster:
		subj, line = "Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="
	case stateBackup:
		subj, line = "Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case stateFault:
		subj, line = "Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="
	case stateStop:
		subj, line = "Stopping", "=> VRRP Instance stopping <="
	default:
		return mail{}, false
	}
	if kind == "Group" {
		line = "=> All VRRP group instances are now in " + to.String() + " state <="
		if to == stateStop {
			line = "=> All VRRP group instances are now stopping <="
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", line)
	fmt.Fprintf(&b, "VRRP %s: %s\n", kind, name)
	fmt.Fprintf(&b, "State: %s (was %s)\n", to, from)
	if why != "" {
		fmt.Fprintf(&b, "Reason: %s\n", why)
	}
	if kind == "Instance" {
		fmt.Fprintf(&b, "Priority: %d\n", prio)
	}
	fmt.Fprintf(&b, "Host: %s\n", host)
	fmt.Fprintf(&b, "Time: %s\n", at.Format(time.RFC3339))
	return mail{Subject: fmt.Sprintf("[%s] VRRP %s %s - %s", routerID, kind, name, subj), Body: b.String(), At: at}, true
}
