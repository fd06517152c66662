package main

// configcmd.go is `vipd config` and the shared body of `vipd -t`.

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// configCmd is `vipd config [-f FILE] [-i ID] [--dump]`.
type configCmd struct {
	File     string `short:"f" name:"use-file" default:"/etc/keepalived/keepalived.conf" help:"Configuration file."`
	ConfigID string `short:"i" name:"config-id" help:"Config id selecting @ID lines (default: the short host name)."`
	Dump     bool   `help:"Print the normalised configuration."`
}

// Run checks (and with --dump prints) the configuration; it exits with
// runConfigTest's status.
func (c *configCmd) Run() error {
	if rc := runConfigTest(c.File, c.ConfigID, c.Dump, os.Stdout, os.Stderr); rc != 0 {
		os.Exit(rc)
	}
	return nil
}

// runConfigTest loads file, prints every diagnostic to stderr and, if dump
// is set and the configuration is usable, the normalised configuration to
// stdout. It returns the exit status: 0 when the configuration is usable
// (warnings allowed), 1 when it has errors (all listed).
func runConfigTest(file, configID string, dump bool, stdout, stderr io.Writer) int {
	cfg, diags, err := loadConfig(file, loadOptions{ConfigID: configID})
	for _, d := range diags {
		fmt.Fprintln(stderr, d)
	}
	if err != nil {
		if errors.Is(err, errConfig) {
			fmt.Fprintf(stderr, "%s: configuration is not usable\n", file)
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	if dump {
		io.WriteString(stdout, dumpConfig(cfg))
	} else {
		fmt.Fprintf(stderr, "%s: configuration is usable (%d warning(s))\n", file, len(diags))
	}
	return 0
}
