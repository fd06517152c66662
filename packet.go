package main

import "net/netip"

// Advert is one VRRP advertisement: RFC 3768 section 5.1 (version 2) and
// RFC 5798 section 5.1 (version 3). Both versions share this one form; the
// fields that only one version has are documented as such.
type Advert struct {
	Version  uint8 // 2 or 3
	Type     uint8 // 1: ADVERTISEMENT, the only type defined
	VRID     uint8
	Priority uint8
	// Count is the "Count IP Addrs" field as it was on the wire; Marshal
	// writes len(Addresses) instead.
	Count uint8
	// AuthType is version 2's authentication type (0 none, 1 simple
	// password, 2 IP AH). Version 3 has no authentication; it is 0 there.
	AuthType uint8
	// Interval is the advertisement interval in centiseconds. Version 2
	// carries whole seconds (Adver Int); it is stored here times 100.
	Interval uint16
	Checksum uint16
	// Addresses are the virtual addresses, all IPv4 or all IPv6.
	Addresses []netip.Addr
	// Auth is version 2's authentication data (simple password, zero
	// padded to 8 bytes).
	Auth [8]byte
}
