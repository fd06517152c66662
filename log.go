package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// logOptions are the logging flags shared by the daemon and the lab. The
// short flags are keepalived's, so existing unit files keep working.
type logOptions struct {
	LogConsole  bool   `short:"l" help:"Log to the console (vipd always does unless --log-facility is given; accepted for keepalived compatibility)."`
	LogDetail   bool   `short:"D" help:"Detailed log messages: debug level, with drop reasons and advert details."`
	LogFacility *int   `short:"S" placeholder:"N" help:"Log to syslog facility local<N> (0-7) instead of the console."`
	LogFormat   string `default:"console" enum:"console,json" help:"Console log format: console (readable) or json."`
	LogLevel    string `default:"info" enum:"debug,info,warn,error" help:"Minimum level logged (-D sets debug)."`
}

// newLogger builds the logger the flags ask for. It writes to w unless a
// syslog facility was given.
func (o logOptions) newLogger(w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(o.LogLevel)
	if err != nil {
		return zerolog.Nop(), err
	}
	if o.LogDetail {
		level = zerolog.DebugLevel
	}
	var out io.Writer = w
	switch {
	case o.LogFacility != nil:
		f := *o.LogFacility
		if f < 0 || f > 7 {
			return zerolog.Nop(), fmt.Errorf("log facility %d is out of range 0..7", f)
		}
		sw, err := syslog.New(syslog.LOG_LOCAL0+syslog.Priority(f)<<3|syslog.LOG_INFO, "vipd")
		if err != nil {
			return zerolog.Nop(), fmt.Errorf("open syslog: %w", err)
		}
		out = zerolog.SyslogLevelWriter(sw)
	case o.LogFormat == "console" && w == os.Stderr && underJournal(os.Stderr):
		out = &journalWriter{out: w} // ops.go
	case o.LogFormat == "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "2006-01-02 15:04:05.000", NoColor: !isTerminal(w)}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func init() {
	zerolog.TimeFieldFormat = time.RFC3339Nano
}
