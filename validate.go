package main

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// dropReason is why a received advert was discarded: one rung of the
// receive ladder of RFC 3768 section 7.1 and RFC 5798 section 7.1, plus
// keepalived's additions. The zero value means the advert passed.
type dropReason uint8

// The rungs, in the order validate tries them.
const (
	dropOK         dropReason = iota
	dropTTL                   // multicast TTL/hop limit not 255; unicast outside min_ttl..max_ttl
	dropVersion               // not the version the instance runs (or not 2/3)
	dropType                  // type is not 1 (ADVERTISEMENT)
	dropLength                // shorter than its address count needs
	dropChecksum              // no accepted checksum form matches
	dropVRID                  // VRID is not this instance's
	dropAuthType              // v2 auth type differs from the configured one, or is unknown
	dropAuthAH                // v2 auth type 2 (IP AH): recognised, not implemented
	dropAuthPass              // v2 simple password differs
	dropInterval              // v2 advert interval differs from ours
	dropOwner                 // we own the addresses (priority 255): we never accept adverts
	dropUnicastSrc            // unicast source is not a configured peer (check_unicast_src)
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	dropOK:         "ok",
	dropTTL:        "ttl",
	dropVersion:    "version",
	dropType:       "type",
	dropLength:     "length",
	dropChecksum:   "checksum",
	dropVRID:       "vrid",
	dropAuthType:   "auth_type",
	dropAuthAH:     "auth_ah",
	dropAuthPass:   "auth_pass",
	dropInterval:   "interval",
	dropOwner:      "owner",
	dropUnicastSrc: "unicast_src",
}

func (r dropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return fmt.Sprintf("dropReason(%d)", uint8(r))
}

// rxPolicy is what an instance expects of the adverts it receives. Its
// zero value is not useful; validate with a nil policy applies only the
// stateless rules (what vipd inspect does).
type rxPolicy struct {
	VRID    uint8
	Version uint8 // 2 or 3
	// AuthType and AuthPass are version 2's configured authentication;
	// AuthPass is the password as authKey pads it.
	AuthType uint8
	AuthPass [8]byte
	// Interval is our advert interval in centiseconds. A version 2 advert
	// with another interval is dropped (RFC 3768 section 7.1); version 3
	// flags it and the backup adopts it (RFC 5798 section 6.4.2).
	Interval uint16
	// Addresses are the configured virtual addresses. A differing list is
	// flagged, not dropped (RFC 5798 section 7.1 says "MAY"; keepalived
	// logs and accepts).
	Addresses []netip.Addr
	// Owner: we are the address owner (priority 255), which never accepts
	// an advert; keepalived drops them with a log line.
	Owner bool
	// Peers are the unicast peers. With CheckUnicastSrc, a unicast advert
	// from any other source is dropped (keepalived check_unicast_src).
	Peers           []netip.Addr
	CheckUnicastSrc bool
	// MinTTL and MaxTTL bound the TTL/hop limit of unicast adverts
	// (keepalived unicast_peer min_ttl / max_ttl). MaxTTL 0 means 255.
	MinTTL, MaxTTL uint8
	// PeerTTL, when set, holds each peer's own range, index for index
	// with Peers (unicast_peer { IP min_ttl N max_ttl M }); an advert
	// from a listed peer is checked against its range, others against
	// MinTTL..MaxTTL.
	PeerTTL [][2]uint8
	// Group is the multicast group for the old_unicast_checksum form;
	// when invalid, the VRRP group of the advert's family is used.
	Group netip.Addr
}

// rxMeta is what the socket says about a received advert: the IP header
// fields the ladder needs. Whether it was unicast follows from Dst.
type rxMeta struct {
	Src, Dst netip.Addr
	TTL      uint8 // TTL (IPv4) or hop limit (IPv6)
	SrcMAC   net.HardwareAddr
}

// verdict is the outcome of validate.
type verdict struct {
	Reason dropReason // dropOK when the advert is accepted
	// Form is the checksum form the sender used (valid once the checksum
	// rung has passed).
	Form ChecksumForm
	// AddrMismatch: the advert's address list differs from the configured
	// one. Counted and logged, not dropped.
	AddrMismatch bool
	// IntervalMismatch: a version 3 advert carries another interval than
	// ours; the backup adopts the master's (RFC 5798 section 6.4.2).
	IntervalMismatch bool
	// Err details the drop for the debug log; nil when accepted.
	Err error
}

// OK says whether the advert was accepted.
func (v verdict) OK() bool { return v.Reason == dropOK }

// rxCounters counts received adverts per outcome; one per instance.
type rxCounters struct {
	Forms            [3]uint64              // accepted adverts per ChecksumForm
	Drops            [numDropReasons]uint64 // Drops[dropOK] counts accepted adverts
	AddrMismatch     uint64
	IntervalMismatch uint64
}

// add counts v.
func (c *rxCounters) add(v verdict) {
	if v.Reason < numDropReasons {
		c.Drops[v.Reason]++
	}
	if v.Reason != dropOK {
		return
	}
	if int(v.Form) < len(c.Forms) {
		c.Forms[v.Form]++
	}
	if v.AddrMismatch {
		c.AddrMismatch++
	}
	if v.IntervalMismatch {
		c.IntervalMismatch++
	}
}

// validate decodes msg into a and runs the receive ladder of RFC 3768
// section 7.1 and RFC 5798 section 7.1 in order, stopping at the first rule
// that fails. With p nil only the stateless rules run: TTL 255 for
// multicast, version 2 or 3, type 1, length, checksum, and a known auth
// type. validate neither allocates on an accepted advert nor reads outside
// msg; a holds whatever was decoded even when the advert is dropped.
func validate(meta rxMeta, msg []byte, p *rxPolicy, a *Advert) verdict {
	ipv6 := meta.Src.Is6() && !meta.Src.Is4In6()
	multicast := meta.Dst.IsMulticast()

	// RFC 5798 section 7.1 / RFC 3768 section 7.1: "MUST verify that the
	// IPv4 TTL / IPv6 Hop Limit is 255". Unicast is keepalived's extension
	// and has its own configured range.
	if multicast {
		if meta.TTL != vrrpTTL {
			return verdict{Reason: dropTTL, Err: fmt.Errorf("ttl %d, multicast adverts must have %d", meta.TTL, vrrpTTL)}
		}
	} else if p != nil {
		minTTL, maxTTL := p.MinTTL, p.MaxTTL
		if len(p.PeerTTL) == len(p.Peers) {
			if i := slices.Index(p.Peers, meta.Src.Unmap().WithZone("")); i >= 0 {
				minTTL, maxTTL = p.PeerTTL[i][0], p.PeerTTL[i][1]
			}
		}
		if maxTTL == 0 {
			maxTTL = 255
		}
		if meta.TTL < minTTL || meta.TTL > maxTTL {
			return verdict{Reason: dropTTL, Err: fmt.Errorf("ttl %d outside unicast range %d..%d", meta.TTL, minTTL, maxTTL)}
		}
	}

	// "MUST verify the VRRP version field": the layout depends on it, so
	// it and the type are read before the full decode.
	if len(msg) < 1 {
		return verdict{Reason: dropLength, Err: parseErrorf("empty vrrp message")}
	}
	version := msg[0] >> 4
	if version != 2 && version != 3 || version == 2 && ipv6 {
		return verdict{Reason: dropVersion, Err: fmt.Errorf("vrrp version %d not usable over %s", version, familyName(ipv6))}
	}
	if p != nil && version != p.Version {
		return verdict{Reason: dropVersion, Err: fmt.Errorf("vrrp version %d, instance runs version %d", version, p.Version)}
	}
	if typ := msg[0] & 0x0f; typ != vrrpTypeAdvert {
		return verdict{Reason: dropType, Err: fmt.Errorf("vrrp type %d, only 1 (advertisement) exists", typ)}
	}

	// "MUST verify that the received packet contains the complete VRRP
	// packet (including fixed fields, and IPvX address(es))". Bytes after
	// it (padding) are ignored.
	if err := a.Unmarshal(msg, ipv6); err != nil {
		return verdict{Reason: dropLength, Err: err}
	}

	// "MUST verify the VRRP checksum", over exactly the message: the
	// sender's checksum does not cover any padding after it.
	group := vrrpGroup4
	if ipv6 {
		group = vrrpGroup6
	}
	if p != nil && p.Group.IsValid() {
		group = p.Group
	}
	form, ok := verifyChecksum(msg[:advertLen(a.Version, a.Count, ipv6)], meta.Src, meta.Dst, group, a.Version)
	if !ok {
		return verdict{Reason: dropChecksum, Err: fmt.Errorf("bad vrrp checksum 0x%04x", a.Checksum)}
	}
	v := verdict{Form: form}

	if p == nil {
		if a.Version == 2 {
			switch a.AuthType {
			case authNone, authSimple:
			case authAH:
				return verdict{Reason: dropAuthAH, Form: form, Err: fmt.Errorf("auth type 2 (ip ah) is not supported")}
			default:
				return verdict{Reason: dropAuthType, Form: form, Err: fmt.Errorf("unknown auth type %d", a.AuthType)}
			}
		}
		return v
	}

	// "MUST verify that the VRID is configured on the receiving interface
	// and the local router is not the IPvX Address owner"; the owner part
	// is checked below, after the softer rules, as keepalived does.
	if a.VRID != p.VRID {
		return verdict{Reason: dropVRID, Form: form, Err: fmt.Errorf("vrid %d, instance has %d", a.VRID, p.VRID)}
	}

	// RFC 3768 section 7.1: "MUST verify that the Auth Type matches the
	// locally configured authentication method", then the password.
	if a.Version == 2 {
		if a.AuthType == authAH {
			return verdict{Reason: dropAuthAH, Form: form, Err: fmt.Errorf("auth type 2 (ip ah) is not supported")}
		}
		if a.AuthType != p.AuthType {
			return verdict{Reason: dropAuthType, Form: form, Err: fmt.Errorf("auth type %d, instance uses %d", a.AuthType, p.AuthType)}
		}
		if a.AuthType == authSimple && !authEqual(a.Auth, p.AuthPass) {
			return verdict{Reason: dropAuthPass, Form: form, Err: fmt.Errorf("simple password does not match")}
		}
	}

	// RFC 3768 section 7.1: "MUST verify that the Adver Interval in the
	// packet is the same as the locally configured"; RFC 5798 section 6.4.2
	// has the backup adopt the master's interval instead.
	if a.Interval != p.Interval {
		if a.Version == 2 {
			return verdict{Reason: dropInterval, Form: form, Err: fmt.Errorf("advert interval %d s, instance has %d s", a.Interval/100, p.Interval/100)}
		}
		v.IntervalMismatch = true
	}

	// RFC 5798 section 7.1: the address list "MAY" be checked; a mismatch
	// is logged, and the advert still counts (keepalived does the same).
	v.AddrMismatch = !sameAddrs(a.Addresses, p.Addresses)

	if p.Owner {
		return verdict{Reason: dropOwner, Form: form, Err: fmt.Errorf("we own the addresses (priority 255) and accept no adverts")}
	}

	// A socket may hand over a v4-mapped or zoned address; peers are
	// configured plain.
	if p.CheckUnicastSrc && !multicast && !slices.Contains(p.Peers, meta.Src.Unmap().WithZone("")) {
		return verdict{Reason: dropUnicastSrc, Form: form, Err: fmt.Errorf("unicast source %v is not a configured peer", meta.Src)}
	}
	return v
}

// sameAddrs says whether an advert's addresses are the configured ones, in
// any order. Lists are short (at most 255), so a quadratic scan that does
// not allocate is the better trade.
func sameAddrs(got, want []netip.Addr) bool {
	if len(got) != len(want) {
		return false
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			return false
		}
	}
	return true
}

func familyName(ipv6 bool) string {
	if ipv6 {
		return "ipv6"
	}
	return "ipv4"
}
