// Command vipd keeps virtual IP addresses alive across machines with VRRP
// (RFC 3768, RFC 5798) and programs Linux IPVS virtual servers. It reads
// keepalived.conf unchanged.
package main

import (
	"fmt"
	"os"

	"github.com/alecthomas/kong"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// cli is vipd's command line. Flags and commands are defined by the file
// that implements them; this struct only gathers them.
type cli struct {
	Version kong.VersionFlag `short:"v" help:"Print the version and exit."`
	Run     runCmd           `cmd:"" default:"withargs" help:"Run the VRRP daemon (the default command; keepalived's flags)."`
	Lab     labCmd           `cmd:"" help:"Try vipd on one machine: a LAN of network namespaces where the master fails (root)."`
	Status  statusCmd        `cmd:"" help:"Show the running daemon's instances: state, priorities, master, counters."`
	Reload  reloadCmd        `cmd:"" help:"Make the running daemon re-read its configuration (like SIGHUP)."`
	Dump    dumpCmd          `cmd:"" help:"Print keepalived's data, stats or JSON dump of the running daemon (SIGUSR1, SIGUSR2, SIGRTMIN+2 write them to files)."`
	Inspect inspectCmd       `cmd:"" help:"Print the VRRP adverts in pcap/pcapng captures, or live on a link with -i IFACE (every VRID, split-brain warnings), with the verdict vipd would give each."`
	Config  configCmd        `cmd:"" help:"Check or print the configuration."`
	Genhash genhashCmd       `cmd:"" help:"Print the MD5 digest an HTTP_GET/SSL_GET url block expects (keepalived's genhash)."`
	Debug   debugCmd         `cmd:"" hidden:"" help:"Print the running daemon's goroutines, file descriptors, memory and socket counters (JSON), or fetch a CPU profile."`
}

func main() {
	var c cli
	ctx := kong.Parse(&c,
		kong.Name("vipd"),
		kong.Description("VRRP virtual IPs and IPVS virtual servers, configured by keepalived.conf."),
		kong.Vars{"version": version},
		kong.UsageOnError(),
	)
	if err := ctx.Run(&c); err != nil {
		fmt.Fprintln(os.Stderr, "vipd:", err)
		os.Exit(1)
	}
}
