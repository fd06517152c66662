package main

// Reload on the in-process daemon over a fake system (track_daemon_test.go):
// what a reload must release, keep and re-announce.

import (
	"os"
	"path/filepath"
	"testing"
)

// reloadTo loads conf and applies it to d, as SIGHUP does.
func reloadTo(t *testing.T, d *daemon, conf string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reloaded.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	cfg, diags, err := loadConfig(path, loadOptions{})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	d.apply(cfg)
}

// TestReloadReleasesSyncGroupFault: a sync group in FAULT because a
// member's tracked interface is down; the reload drops that
// track_interface. Nothing faults the group any more, so its members must
// leave FAULT (keepalived's vrrp_sync_group recovery to BACKUP, then
// MASTER on this silent LAN), not stay held by the old group's command.
func TestReloadReleasesSyncGroupFault(t *testing.T) {
	conf := func(track string) string {
		return `
vrrp_sync_group G {
	group {
		VI_1
		VI_2
	}
}
vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.101/24
	}
` + track + `
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 2
	version 3
	advert_int 0.1
	priority 100
	virtual_ipaddress {
		192.0.2.102/24
	}
}`
	}
	d, fs, tr, stop := runDaemon(t, conf("track_interface {\n eth1\n}"))
	defer stop()
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
	fs.link("eth1", false)
	tr.wait(t, "VI_1", stateFault)
	tr.wait(t, "VI_2", stateFault)
	reloadTo(t, d, conf(""))
	tr.wait(t, "VI_1", stateMaster)
	tr.wait(t, "VI_2", stateMaster)
}
