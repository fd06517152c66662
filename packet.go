package main

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// Wire constants of VRRP version 2 (RFC 3768) and version 3 (RFC 5798).
const (
	// vrrpProto is the IP protocol number of VRRP (RFC 5798 section 5.2.4,
	// RFC 3768 section 5.2.4).
	vrrpProto = 112
	// vrrpTTL is the TTL / hop limit every multicast advert is sent with
	// and must arrive with (RFC 5798 section 5.1.1.3, RFC 3768 section 5.2.3).
	vrrpTTL = 255
	// vrrpHeaderLen is the fixed part of an advert before the addresses
	// (RFC 5798 section 5.2, RFC 3768 section 5.3).
	vrrpHeaderLen = 8
	// vrrpAuthLen is the length of version 2's Authentication Data, which
	// follows the addresses (RFC 3768 section 5.3.10).
	vrrpAuthLen = 8
	// vrrpTypeAdvert is the only VRRP packet type (RFC 5798 section 5.2.2).
	vrrpTypeAdvert = 1
	// vrrpMaxIntervalV3 is the largest 12-bit Max Adver Int in centiseconds
	// (RFC 5798 section 5.2.7).
	vrrpMaxIntervalV3 = 4095
)

// Version 2 authentication types (RFC 3768 section 5.3.6). RFC 3768
// deprecates authentication; keepalived still offers the simple password.
const (
	authNone   = 0 // no authentication
	authSimple = 1 // 8-byte clear-text password in Authentication Data
	authAH     = 2 // IP Authentication Header (RFC 2402); not implemented
)

// The VRRP multicast groups: 224.0.0.18 (RFC 5798 section 5.1.1.2) and
// ff02::12 (RFC 5798 section 5.1.2.2).
var (
	vrrpGroup4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	vrrpGroup6 = netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 15: 0x12})
)

// errParse is wrapped by every decode error, so a read loop can drop and
// count malformed adverts with errors.Is(err, errParse).
var errParse = errors.New("malformed vrrp advert")

// parseError is a decode error: its text says what was wrong, and it
// matches errParse.
type parseError struct{ s string }

func (e *parseError) Error() string        { return e.s }
func (e *parseError) Is(target error) bool { return target == errParse }

func parseErrorf(format string, args ...any) error {
	return &parseError{s: fmt.Sprintf(format, args...)}
}

// ChecksumForm is how a VRRPv3 checksum was computed. RFC 5798 section
// 5.2.8 covers the IPv4 or IPv6 pseudo-header plus the message; some
// implementations differ, and a receiver that wants to interoperate accepts
// them all and records which one a peer uses.
type ChecksumForm uint8

const (
	// ChecksumPseudo is RFC 5798 section 5.2.8: pseudo-header (source,
	// destination, length, protocol 112) plus the VRRP message. keepalived
	// and FRR send this; it is the default.
	ChecksumPseudo ChecksumForm = iota
	// ChecksumMessage covers the VRRP message only, as version 2 does (RFC
	// 3768 section 5.3.8). Cisco IOS sends VRRPv3 over IPv4 this way, and
	// so does keepalived with v3_checksum_as_v2. Always used for version 2.
	ChecksumMessage
	// ChecksumPseudoGroup is the pseudo-header with the multicast group as
	// destination even though the advert was unicast: keepalived before
	// 1.3.6, and later with old_unicast_checksum.
	ChecksumPseudoGroup
)

func (f ChecksumForm) String() string {
	switch f {
	case ChecksumPseudo:
		return "pseudo"
	case ChecksumMessage:
		return "message"
	case ChecksumPseudoGroup:
		return "pseudo-group"
	}
	return fmt.Sprintf("ChecksumForm(%d)", uint8(f))
}

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

// advertLen is the length of a VRRP message of the given version with
// count addresses: header, addresses, and for version 2 the Authentication
// Data (RFC 3768 section 5.1, RFC 5798 section 5.1).
func advertLen(version, count uint8, ipv6 bool) int {
	n := vrrpHeaderLen + int(count)*addrLen(ipv6)
	if version == 2 {
		n += vrrpAuthLen
	}
	return n
}

func addrLen(ipv6 bool) int {
	if ipv6 {
		return 16
	}
	return 4
}

// Len is the length of a's encoding: header, len(a.Addresses) addresses of
// a.Addresses[0]'s family, and for version 2 the Authentication Data.
func (a *Advert) Len() int {
	ipv6 := len(a.Addresses) > 0 && a.Addresses[0].Is6() && !a.Addresses[0].Is4In6()
	n := vrrpHeaderLen + len(a.Addresses)*addrLen(ipv6)
	if a.Version == 2 {
		n += vrrpAuthLen
	}
	return n
}

// Unmarshal decodes the VRRP message msg (the IP payload) into a, reusing
// a.Addresses' capacity so a warm Advert decodes without allocating. ipv6
// says which family the message arrived over: version 3 addresses are 16
// bytes there (RFC 5798 section 5.2.9); version 2 is IPv4 only.
//
// Every length is checked against msg before it is read. Bytes after the
// message (padding) are ignored. Errors match errParse and say what was
// wrong. Unmarshal checks the layout only; the checksum and the receive
// rules are validate's job.
func (a *Advert) Unmarshal(msg []byte, ipv6 bool) error {
	if len(msg) < vrrpHeaderLen {
		return parseErrorf("advert is %d bytes, shorter than the %d-byte header", len(msg), vrrpHeaderLen)
	}
	version := msg[0] >> 4
	switch version {
	case 2:
		if ipv6 {
			return parseErrorf("vrrp version 2 advert over ipv6 (version 2 is ipv4 only)")
		}
	case 3:
	default:
		return parseErrorf("unknown vrrp version %d", version)
	}
	count := msg[3]
	need := advertLen(version, count, ipv6)
	if len(msg) < need {
		fam := "ipv4"
		if ipv6 {
			fam = "ipv6"
		}
		return parseErrorf("advert claims %d %s addresses but has %d bytes, needs %d", count, fam, len(msg), need)
	}
	a.Version = version
	a.Type = msg[0] & 0x0f
	a.VRID = msg[1]
	a.Priority = msg[2]
	a.Count = count
	a.Checksum = binary.BigEndian.Uint16(msg[6:8])
	if version == 2 {
		// RFC 3768 section 5.3.6/5.3.7: Auth Type, then Adver Int in seconds.
		a.AuthType = msg[4]
		a.Interval = uint16(msg[5]) * 100
		copy(a.Auth[:], msg[need-vrrpAuthLen:need])
	} else {
		// RFC 5798 section 5.2.6/5.2.7: 4 reserved bits, 12-bit Max Adver
		// Int in centiseconds. The reserved bits are ignored on receive.
		a.AuthType = 0
		a.Interval = binary.BigEndian.Uint16(msg[4:6]) & 0x0fff
		a.Auth = [8]byte{}
	}
	a.Addresses = a.Addresses[:0]
	off := vrrpHeaderLen
	for range int(count) {
		if ipv6 {
			a.Addresses = append(a.Addresses, netip.AddrFrom16([16]byte(msg[off:off+16])))
			off += 16
		} else {
			a.Addresses = append(a.Addresses, netip.AddrFrom4([4]byte(msg[off:off+4])))
			off += 4
		}
	}
	return nil
}

// Append appends a's encoding to b and returns the extended buffer. The
// Count field is len(a.Addresses); the checksum is computed (and stored in
// a.Checksum): version 2 over the message (RFC 3768 section 5.3.8), version
// 3 in the given form with src and dst as the pseudo-header addresses (RFC
// 5798 section 5.2.8; ChecksumPseudoGroup uses the VRRP group instead of
// dst). Version 3's address family is src's. The field layout matches
// keepalived's byte for byte: a version 2 advert always carries the 8 bytes
// of Authentication Data, zero when there is no password.
func (a *Advert) Append(b []byte, src, dst netip.Addr, form ChecksumForm) ([]byte, error) {
	return a.encode(b, src, dst, form, true)
}

// Marshal is Append to a new buffer of the right size.
func (a *Advert) Marshal(src, dst netip.Addr, form ChecksumForm) ([]byte, error) {
	return a.Append(make([]byte, 0, a.Len()), src, dst, form)
}

func (a *Advert) encode(b []byte, src, dst netip.Addr, form ChecksumForm, sum bool) ([]byte, error) {
	src, dst = src.Unmap(), dst.Unmap()
	var ipv6 bool
	switch a.Version {
	case 2:
		if a.Interval%100 != 0 || a.Interval/100 > 255 {
			return b, fmt.Errorf("vrrp version 2 interval %d cs is not whole seconds in 0..255", a.Interval)
		}
	case 3:
		if !src.IsValid() {
			return b, errors.New("vrrp version 3 advert needs its source address (family and checksum)")
		}
		ipv6 = src.Is6()
		if a.Interval > vrrpMaxIntervalV3 {
			return b, fmt.Errorf("vrrp version 3 interval %d cs exceeds %d", a.Interval, vrrpMaxIntervalV3)
		}
		if sum && form != ChecksumMessage {
			to := dst
			if form == ChecksumPseudoGroup {
				to = vrrpGroup4
				if ipv6 {
					to = vrrpGroup6
				}
			}
			if !to.IsValid() || to.Is6() != ipv6 {
				return b, fmt.Errorf("vrrp checksum pseudo-header needs source and destination of one family, have %v and %v", src, to)
			}
			dst = to
		}
	default:
		return b, fmt.Errorf("cannot encode vrrp version %d", a.Version)
	}
	if len(a.Addresses) > 255 {
		return b, fmt.Errorf("advert has %d addresses, at most 255 fit", len(a.Addresses))
	}
	start := len(b)
	b = append(b, a.Version<<4|a.Type&0x0f, a.VRID, a.Priority, uint8(len(a.Addresses)))
	if a.Version == 2 {
		b = append(b, a.AuthType, uint8(a.Interval/100))
	} else {
		b = binary.BigEndian.AppendUint16(b, a.Interval)
	}
	b = append(b, 0, 0) // checksum, filled in below
	for _, ip := range a.Addresses {
		// An IPv4-mapped address is IPv4 in an IPv4 advert, but over IPv6
		// it is the 16 bytes the advert carried (::ffff:a.b.c.d decodes
		// to it): unmapping it there failed the round trip (FuzzAdvert).
		if !ipv6 {
			ip = ip.Unmap()
		}
		if ip.Is6() != ipv6 {
			return b[:start], fmt.Errorf("address %v does not fit a vrrp version %d advert over %s", ip, a.Version, familyName(ipv6))
		}
		b = append(b, ip.AsSlice()...)
	}
	if a.Version == 2 {
		b = append(b, a.Auth[:]...)
	}
	msg := b[start:]
	if !sum {
		binary.BigEndian.PutUint16(msg[6:8], a.Checksum)
		return b, nil
	}
	s := sum16(msg, 0)
	if a.Version == 3 && form != ChecksumMessage {
		s += pseudoSum(src, dst, len(msg))
	}
	a.Checksum = ^fold(s)
	binary.BigEndian.PutUint16(msg[6:8], a.Checksum)
	return b, nil
}

// verifyChecksum checks msg's checksum and says which form it has. Version
// 2 accepts the message form only (RFC 3768 section 5.3.8). Version 3 tries
// the pseudo-header with dst (RFC 5798 section 5.2.8), then over IPv4 the
// message-only form, then, when group is valid and differs from dst, the
// pseudo-header with group (keepalived's old_unicast_checksum).
func verifyChecksum(msg []byte, src, dst, group netip.Addr, version uint8) (ChecksumForm, bool) {
	if len(msg) < vrrpHeaderLen {
		return ChecksumPseudo, false
	}
	s := sum16(msg, 0)
	if version != 3 {
		return ChecksumMessage, fold(s) == 0xffff
	}
	src, dst, group = src.Unmap(), dst.Unmap(), group.Unmap()
	if src.IsValid() && dst.Is6() == src.Is6() && fold(s+pseudoSum(src, dst, len(msg))) == 0xffff {
		return ChecksumPseudo, true
	}
	if !src.Is6() && fold(s) == 0xffff {
		return ChecksumMessage, true
	}
	if src.IsValid() && group.IsValid() && group != dst && group.Is6() == src.Is6() &&
		fold(s+pseudoSum(src, group, len(msg))) == 0xffff {
		return ChecksumPseudoGroup, true
	}
	return ChecksumPseudo, false
}

// sum16 adds b as big-endian 16-bit words to s (RFC 1071), b padded with a
// zero byte when its length is odd.
func sum16(b []byte, s uint64) uint64 {
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// pseudoSum is the sum of the IPv4 pseudo-header (RFC 768 form: source,
// destination, zero, protocol, length) or the IPv6 one (RFC 8200 section
// 8.1: source, destination, 32-bit length, zeros, next header).
func pseudoSum(src, dst netip.Addr, length int) uint64 {
	var s uint64
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = sum16(a[:], 0)
		s = sum16(b[:], s)
	} else {
		a, b := src.As16(), dst.As16()
		s = sum16(a[:], 0)
		s = sum16(b[:], s)
	}
	return s + vrrpProto + uint64(length>>16) + uint64(length&0xffff)
}

// authKey is a version 2 simple password as it goes on the wire: its first
// 8 bytes, zero padded when shorter, as keepalived does (RFC 3768 section
// 5.3.10).
func authKey(pass string) [8]byte {
	var k [8]byte
	copy(k[:], pass)
	return k
}

// authEqual compares two simple passwords in constant time, so that the
// time a receiver takes does not tell a sender how much of it was right.
func authEqual(a, b [8]byte) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// LayerTypeVRRP is the gopacket layer type of VRRP versions 2 and 3. It
// replaces gopacket's own decoder for IP protocol 112 (layers.VRRPv2, which
// reads version 3 and IPv6 adverts wrongly), so gopacket.NewPacket on a
// whole frame yields a *VRRP.
var LayerTypeVRRP = gopacket.RegisterLayerType(2112, gopacket.LayerTypeMetadata{
	Name:    "VRRP",
	Decoder: gopacket.DecodeFunc(decodeVRRPLayer),
})

func init() {
	layers.IPProtocolMetadata[layers.IPProtocolVRRP] = layers.EnumMetadata{
		DecodeWith: LayerTypeVRRP,
		Name:       "VRRP",
		LayerType:  LayerTypeVRRP,
	}
}

// VRRP is a VRRP advert as a gopacket layer, decoding and serializing.
type VRRP struct {
	layers.BaseLayer
	Advert
	// IPv6 is whether the advert is (to be) carried over IPv6, which makes
	// version 3 addresses 16 bytes.
	IPv6 bool
	// Form is the checksum form SerializeTo computes with
	// ComputeChecksums (version 3 only).
	Form ChecksumForm

	src, dst netip.Addr // pseudo-header, from SetNetworkLayerForChecksum
}

func (v *VRRP) LayerType() gopacket.LayerType     { return LayerTypeVRRP }
func (v *VRRP) CanDecode() gopacket.LayerClass    { return LayerTypeVRRP }
func (v *VRRP) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }
func (v *VRRP) Payload() []byte                   { return nil }
func (v *VRRP) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	return v.decode(data, guessIPv6(data))
}

func (v *VRRP) decode(data []byte, ipv6 bool) error {
	if err := v.Advert.Unmarshal(data, ipv6); err != nil {
		return err
	}
	v.IPv6 = ipv6
	n := advertLen(v.Version, v.Count, ipv6)
	v.BaseLayer = layers.BaseLayer{Contents: data[:n], Payload: data[n:]}
	return nil
}

// guessIPv6 says whether data, lacking its IP header, is more likely a
// version 3 advert over IPv6: only when it is long enough for Count 16-byte
// addresses. A decoder that knows the IP layer does not need to guess.
func guessIPv6(data []byte) bool {
	if len(data) < vrrpHeaderLen || data[0]>>4 != 3 || data[3] == 0 {
		return false
	}
	return len(data) >= advertLen(3, data[3], true)
}

func decodeVRRPLayer(data []byte, p gopacket.PacketBuilder) error {
	ipv6 := guessIPv6(data)
	if pk, ok := p.(interface{ NetworkLayer() gopacket.NetworkLayer }); ok {
		if nl := pk.NetworkLayer(); nl != nil {
			ipv6 = nl.LayerType() == layers.LayerTypeIPv6
		}
	}
	v := &VRRP{}
	if err := v.decode(data, ipv6); err != nil {
		return err
	}
	p.AddLayer(v)
	return nil
}

// SetNetworkLayerForChecksum gives SerializeTo the pseudo-header addresses
// for a version 3 checksum, as layers.TCP's method of the same name does.
func (v *VRRP) SetNetworkLayerForChecksum(l gopacket.NetworkLayer) error {
	switch ip := l.(type) {
	case *layers.IPv4:
		v.src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
		v.dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		v.IPv6 = false
	case *layers.IPv6:
		v.src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
		v.dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		v.IPv6 = true
	default:
		return fmt.Errorf("vrrp checksum needs an ipv4 or ipv6 layer, not %v", l.LayerType())
	}
	return nil
}

// SerializeTo writes the advert; with opts.ComputeChecksums it computes the
// checksum (version 3 needs SetNetworkLayerForChecksum first), otherwise it
// writes v.Checksum as it is.
func (v *VRRP) SerializeTo(b gopacket.SerializeBuffer, opts gopacket.SerializeOptions) error {
	src := v.src
	if !src.IsValid() && !opts.ComputeChecksums {
		// Only the family matters when the checksum is not computed.
		src = netip.IPv4Unspecified()
		if v.IPv6 {
			src = netip.IPv6Unspecified()
		}
	}
	if v.Version == 3 && opts.ComputeChecksums && !v.src.IsValid() {
		return errors.New("vrrp version 3 checksum needs SetNetworkLayerForChecksum")
	}
	enc, err := v.Advert.encode(make([]byte, 0, v.Advert.Len()), src, v.dst, v.Form, opts.ComputeChecksums)
	if err != nil {
		return err
	}
	buf, err := b.PrependBytes(len(enc))
	if err != nil {
		return err
	}
	copy(buf, enc)
	return nil
}
