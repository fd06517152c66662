package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// inspectCmd is `vipd inspect`: it prints every VRRP frame of pcap or
// pcapng captures with the verdict vipd's receive ladder would give it, so
// that "the backup doesn't see the master" can be answered from a tcpdump
// -w taken on either side.
type inspectCmd struct {
	JSON  bool     `help:"Print one JSON object per line per VRRP frame."`
	Files []string `arg:"" optional:"" name:"file" help:"pcap or pcapng capture files." type:"path"`
	// Live mode (monitor.go).
	Interface string        `short:"i" name:"interface" placeholder:"IFACE" help:"Watch IFACE live (root) instead of reading files: every VRID seen, with warnings (two masters, mismatches, collisions)."`
	Timeout   time.Duration `help:"With -i: stop after this long (default: until interrupted)."`
	Count     int           `short:"c" help:"With -i: stop after this many VRRP frames."`
	Summary   time.Duration `help:"With -i, text mode: print the table of VRIDs this often (default: at the end)."`
}

// Run prints the VRRP frames of every file; a file that cannot be read is
// reported and the others are still printed.
func (c *inspectCmd) Run() error {
	if c.Interface != "" {
		return c.runLive()
	}
	if len(c.Files) == 0 {
		return errors.New("give pcap/pcapng files, or -i IFACE to watch a link")
	}
	return c.run(os.Stdout)
}

func (c *inspectCmd) run(w io.Writer) error {
	bw := bufio.NewWriter(w)
	var errs []error
	for i, name := range c.Files {
		if !c.JSON && len(c.Files) > 1 {
			if i > 0 {
				bw.WriteString("\n")
			}
			fmt.Fprintf(bw, "%s:\n", name)
		}
		if err := inspectFile(bw, name, c.JSON); err != nil {
			errs = append(errs, err)
		}
	}
	if err := bw.Flush(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func inspectFile(w io.Writer, name string, asJSON bool) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	var a Advert
	enc := json.NewEncoder(w)
	err = readCapture(f, func(fr captureFrame) error {
		rec, ok := inspectFrame(fr, &a)
		if !ok {
			return nil
		}
		if asJSON {
			return enc.Encode(rec)
		}
		_, err := io.WriteString(w, rec.text()+"\n")
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// captureFrame is one frame of a capture file.
type captureFrame struct {
	N    int // 1-based frame number in the file
	Time time.Time
	Link layers.LinkType
	Data []byte
}

// maxSnaplen bounds the size of a pcap frame, as tcpdump's MAXIMUM_SNAPLEN
// does, so a corrupt record header cannot make us allocate gigabytes.
const maxSnaplen = 262144

// maxNgBlock bounds a pcapng block: gopacket's reader allocates a block's
// declared length before reading it.
const maxNgBlock = 16 << 20

// ngGuard passes a pcapng stream to gopacket's NgReader block by block and
// stops, with an error, at a block that reader would mishandle: a declared
// length beyond maxNgBlock, or an interface description whose options it
// indexes without checking (if_filter, if_tsoffset and if_tsresol shorter
// than their fields) or whose if_tsresol makes its clock arithmetic divide
// by zero (pcapng section 4.2: a power of 2 up to 2^-63, of 10 up to
// 10^-19 before uint64 overflows).
type ngGuard struct {
	r   io.Reader
	bo  binary.ByteOrder
	buf []byte // the rest of the current block
	err error  // returned once buf is drained
}

func (g *ngGuard) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.err != nil {
			return 0, g.err
		}
		g.err = g.block()
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	return n, nil
}

// block reads the next block into buf; its error is for after buf.
func (g *ngGuard) block() error {
	hdr := make([]byte, 12)
	n, err := io.ReadFull(g.r, hdr[:8])
	if err != nil {
		g.buf = hdr[:n]
		if n == 0 {
			return io.EOF
		}
		return io.ErrUnexpectedEOF
	}
	typ := binary.LittleEndian.Uint32(hdr) // the Section Header's type reads the same both ways
	if typ == 0x0a0d0d0a {
		if m, err := io.ReadFull(g.r, hdr[8:12]); err != nil {
			g.buf = hdr[:8+m]
			return io.ErrUnexpectedEOF
		}
		switch uint32(0x1a2b3c4d) {
		case binary.LittleEndian.Uint32(hdr[8:]):
			g.bo = binary.LittleEndian
		case binary.BigEndian.Uint32(hdr[8:]):
			g.bo = binary.BigEndian
		default:
			return fmt.Errorf("pcapng section header with byte-order magic %x", hdr[8:12])
		}
	} else if g.bo == nil {
		return errors.New("pcapng block before the section header")
	} else {
		hdr = hdr[:8]
	}
	length := g.bo.Uint32(hdr[4:8])
	if length < uint32(len(hdr)) || length > maxNgBlock {
		return fmt.Errorf("pcapng block of %d bytes (at most %d)", length, maxNgBlock)
	}
	b := make([]byte, length)
	copy(b, hdr)
	if m, err := io.ReadFull(g.r, b[len(hdr):]); err != nil {
		g.buf = b[:len(hdr)+m]
		return io.ErrUnexpectedEOF
	}
	if g.bo.Uint32(b) == 1 { // Interface Description Block
		if err := g.checkIDB(b); err != nil {
			return err
		}
	}
	g.buf = b
	return nil
}

// checkIDB checks an Interface Description Block's options (pcapng
// section 4.2): code, length, value padded to 32 bits.
func (g *ngGuard) checkIDB(b []byte) error {
	if len(b) < 20 {
		return fmt.Errorf("pcapng interface description of %d bytes", len(b))
	}
	opts := b[16 : len(b)-4]
	for len(opts) >= 4 {
		code, n := g.bo.Uint16(opts), int(g.bo.Uint16(opts[2:]))
		opts = opts[4:]
		if code == 0 {
			break
		}
		if n > len(opts) {
			return fmt.Errorf("pcapng interface option %d claims %d bytes, %d left", code, n, len(opts))
		}
		v := opts[:n]
		switch {
		case code == 11 && n < 1, code == 14 && n < 8, code == 9 && n < 1:
			return fmt.Errorf("pcapng interface option %d is too short (%d bytes)", code, n)
		case code == 9 && v[0]&0x80 != 0 && v[0]&0x7f > 63, code == 9 && v[0]&0x80 == 0 && v[0] > 19:
			return fmt.Errorf("pcapng interface timestamp resolution %#x is out of range", v[0])
		}
		opts = opts[min(len(opts), (n+3)&^3):]
	}
	return nil
}

// readCapture calls fn for every frame of a pcap or pcapng stream.
func readCapture(r io.Reader, fn func(captureFrame) error) error {
	br := bufio.NewReader(r)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("not a pcap or pcapng capture: only %d bytes", len(magic))
	}
	var next func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error)
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a { // pcapng Section Header Block
		ng, err := pcapgo.NewNgReader(&ngGuard{r: br}, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return fmt.Errorf("not a readable pcapng capture: %v", err)
		}
		next = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := ng.ReadPacketData()
			link := ng.LinkType()
			if len(ci.AncillaryData) > 0 {
				if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
					link = l
				}
			}
			return data, ci, link, err
		}
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("not a pcap or pcapng capture (starts with %x)", magic)
		}
		// Like tcpdump, trust our own bound rather than the header's
		// snaplen, which some writers (and fuzzers) get wrong.
		pr.SetSnaplen(maxSnaplen)
		next = func() ([]byte, gopacket.CaptureInfo, layers.LinkType, error) {
			data, ci, err := pr.ReadPacketData()
			return data, ci, pr.LinkType(), err
		}
	}
	for n := 1; ; n++ {
		data, ci, link, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("frame %d: capture file is truncated", n)
			}
			return fmt.Errorf("frame %d: %v", n, err)
		}
		if err := fn(captureFrame{N: n, Time: ci.Timestamp, Link: link, Data: data}); err != nil {
			return err
		}
	}
}

// vrrpFrame is the VRRP message of a captured frame with the lower-layer
// fields the receive ladder looks at.
type vrrpFrame struct {
	Src, Dst netip.Addr
	TTL      uint8
	SrcMAC   net.HardwareAddr
	Msg      []byte // the IP payload, as far as it was captured
	// Fragment: the IPv4 packet is a fragment; Msg holds only its part.
	Fragment bool
}

// findVRRP returns the VRRP message of a frame of the given link type:
// the payload of its innermost IPv4/IPv6 header (or IPv6 extension header)
// that says protocol 112. ok is false for frames that carry no VRRP.
func findVRRP(data []byte, link layers.LinkType) (f vrrpFrame, ok bool) {
	switch link {
	case 12, 14, layers.LinkTypeIPv4, layers.LinkTypeIPv6:
		// Raw IP under its other numbers (DLT_RAW on some BSDs, and
		// LINKTYPE_IPV4/IPV6), which gopacket decodes only as 101.
		link = layers.LinkTypeRaw
	}
	pk := gopacket.NewPacket(data, link, gopacket.DecodeOptions{NoCopy: true})
	for _, l := range pk.Layers() {
		switch l := l.(type) {
		case *layers.Ethernet:
			f.SrcMAC = l.SrcMAC
		case *layers.LinuxSLL:
			f.SrcMAC = l.Addr
		case *layers.LinuxSLL2:
			f.SrcMAC = l.Addr
		case *layers.IPv4:
			f.Src, _ = netip.AddrFromSlice(l.SrcIP.To4())
			f.Dst, _ = netip.AddrFromSlice(l.DstIP.To4())
			f.TTL = l.TTL
			ok = l.Protocol == layers.IPProtocolVRRP
			f.Msg = l.Payload
			f.Fragment = l.Flags&layers.IPv4MoreFragments != 0 || l.FragOffset != 0
		case *layers.IPv6:
			f.Src, _ = netip.AddrFromSlice(l.SrcIP.To16())
			f.Dst, _ = netip.AddrFromSlice(l.DstIP.To16())
			f.TTL = l.HopLimit
			ok = l.NextHeader == layers.IPProtocolVRRP
			f.Msg = l.Payload
			f.Fragment = false
		case *layers.IPv6HopByHop:
			ok = l.NextHeader == layers.IPProtocolVRRP
			f.Msg = l.Payload
		case *layers.IPv6Destination:
			ok = l.NextHeader == layers.IPProtocolVRRP
			f.Msg = l.Payload
		}
	}
	return f, ok && f.Src.IsValid()
}

// inspectRecord is one line of `vipd inspect --json`. v2-only fields are
// null for version 3; checksum_form is null when no form matches.
type inspectRecord struct {
	Frame        int      `json:"frame"`
	Time         string   `json:"time"`
	Src          string   `json:"src"`
	Dst          string   `json:"dst"`
	SrcMAC       string   `json:"src_mac"`
	TTL          uint8    `json:"ttl"`
	Version      uint8    `json:"version"`
	Type         uint8    `json:"type"`
	VRID         uint8    `json:"vrid"`
	Priority     uint8    `json:"priority"`
	Count        uint8    `json:"count"`
	AuthType     *uint8   `json:"auth_type"`
	Auth         *string  `json:"auth"`
	IntervalCS   uint16   `json:"interval_cs"`
	Checksum     string   `json:"checksum"`
	ChecksumOK   bool     `json:"checksum_ok"`
	ChecksumForm *string  `json:"checksum_form"`
	Addresses    []string `json:"addresses"`
	Verdict      string   `json:"verdict"`
	// Live mode only (vipd inspect -i).
	Interface string           `json:"interface,omitempty"`
	Warnings  []inspectWarning `json:"warnings,omitempty"`

	detail string // why the verdict, for the text line
	length int
}

// inspectFrame decodes one captured frame; ok is false when it is not VRRP.
// The verdict comes from validate without a policy: the stateless rules.
func inspectFrame(fr captureFrame, a *Advert) (rec inspectRecord, ok bool) {
	f, ok := findVRRP(fr.Data, fr.Link)
	if !ok {
		return rec, false
	}
	rec = inspectRecord{
		Frame:     fr.N,
		Time:      fr.Time.UTC().Format(time.RFC3339Nano),
		Src:       f.Src.String(),
		Dst:       f.Dst.String(),
		SrcMAC:    f.SrcMAC.String(),
		TTL:       f.TTL,
		Addresses: []string{},
		length:    len(f.Msg),
	}
	msg := f.Msg
	// Header fields as far as they were captured, so that a truncated
	// advert still shows what it claimed.
	if len(msg) >= 1 {
		rec.Version, rec.Type = msg[0]>>4, msg[0]&0x0f
	}
	if len(msg) >= 4 {
		rec.VRID, rec.Priority, rec.Count = msg[1], msg[2], msg[3]
	}
	if len(msg) >= 8 {
		rec.Checksum = fmt.Sprintf("0x%04x", binary.BigEndian.Uint16(msg[6:8]))
		if rec.Version == 2 {
			at := msg[4]
			rec.AuthType = &at
			rec.IntervalCS = uint16(msg[5]) * 100
		} else {
			rec.IntervalCS = binary.BigEndian.Uint16(msg[4:6]) & 0x0fff
		}
	}
	ipv6 := f.Src.Is6()
	if err := a.Unmarshal(msg, ipv6); err == nil {
		for _, ip := range a.Addresses {
			rec.Addresses = append(rec.Addresses, ip.String())
		}
		if a.Version == 2 && a.AuthType == authSimple {
			pw := strings.TrimRight(string(a.Auth[:]), "\x00")
			rec.Auth = &pw
		}
		group := vrrpGroup4
		if ipv6 {
			group = vrrpGroup6
		}
		form, good := verifyChecksum(msg[:advertLen(a.Version, a.Count, ipv6)], f.Src, f.Dst, group, a.Version)
		rec.ChecksumOK = good
		if good {
			s := form.String()
			rec.ChecksumForm = &s
		}
	}
	v := validate(rxMeta{Src: f.Src, Dst: f.Dst, TTL: f.TTL, SrcMAC: f.SrcMAC}, msg, nil, a)
	rec.Verdict = v.Reason.String()
	if v.Err != nil {
		rec.detail = v.Err.Error()
	}
	if f.Fragment && v.Reason == dropOK {
		// VRRP adverts are never fragmented; a fragment is at best part of
		// one, so it cannot be accepted as a whole advert.
		rec.Verdict = dropLength.String()
		rec.detail = "ip fragment, not a whole advert"
	}
	return rec, true
}

// text is the human form of rec, close to tcpdump -v's VRRP line.
func (rec *inspectRecord) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s #%d %s > %s", rec.Time, rec.Frame, rec.Src, rec.Dst)
	if rec.SrcMAC != "" {
		fmt.Fprintf(&b, " (%s)", rec.SrcMAC)
	}
	fmt.Fprintf(&b, " ttl %d: VRRPv%d", rec.TTL, rec.Version)
	if rec.Type == vrrpTypeAdvert {
		b.WriteString(" advertisement")
	} else {
		fmt.Fprintf(&b, " type %d", rec.Type)
	}
	fmt.Fprintf(&b, ", vrid %d, prio %d", rec.VRID, rec.Priority)
	if rec.AuthType != nil {
		switch *rec.AuthType {
		case authNone:
			b.WriteString(", authtype none")
		case authSimple:
			b.WriteString(", authtype simple")
		case authAH:
			b.WriteString(", authtype ah")
		default:
			fmt.Fprintf(&b, ", authtype %d", *rec.AuthType)
		}
	}
	fmt.Fprintf(&b, ", intvl %dcs, length %d, addrs(%d): %s", rec.IntervalCS, rec.length, rec.Count, strings.Join(rec.Addresses, ","))
	if rec.Auth != nil {
		fmt.Fprintf(&b, ", auth %q", *rec.Auth)
	}
	if rec.Checksum != "" {
		fmt.Fprintf(&b, ", cksum %s", rec.Checksum)
		if rec.ChecksumForm != nil {
			fmt.Fprintf(&b, " (good, %s)", *rec.ChecksumForm)
		} else if len(rec.Addresses) == int(rec.Count) && rec.Verdict != dropLength.String() {
			b.WriteString(" (bad)")
		}
	}
	if rec.Verdict == dropOK.String() {
		b.WriteString(": ok")
	} else {
		fmt.Fprintf(&b, ": drop %s: %s", rec.Verdict, rec.detail)
	}
	return b.String()
}
