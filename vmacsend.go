package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/mdlayher/packet"
)

// vmacSender sends multicast adverts with the virtual router MAC as the
// Ethernet source (RFC 5798 section 7.3, keepalived's use_vmac). A raw IP
// socket would send from the interface's own MAC, so this writes whole
// frames over AF_PACKET. Receiving stays with the interface's hub, so its
// socket asks for no protocol and never queues a frame.
type vmacSender struct {
	pc     *packet.Conn
	mac    net.HardwareAddr
	src    netip.Addr
	group  netip.Addr
	dstMAC net.HardwareAddr
	id     atomic.Uint32
}

func newVMACSender(ifi *net.Interface, mac net.HardwareAddr, src, group netip.Addr) (advertConn, error) {
	pc, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("vmac sender on %s: %w", ifi.Name, err)
	}
	return &vmacSender{pc: pc, mac: mac, src: src.WithZone(""), group: group, dstMAC: multicastMAC(group)}, nil
}

func (s *vmacSender) WriteAdvert(msg []byte, dst netip.Addr) error {
	if !dst.IsValid() {
		dst = s.group
	}
	f, err := buildFrame(s.mac, multicastMAC(dst), s.src, dst.WithZone(""), uint16(s.id.Add(1)), msg)
	if err != nil {
		return err
	}
	_, err = s.pc.WriteTo(f, &packet.Addr{HardwareAddr: multicastMAC(dst)})
	return err
}

var errSendOnly = errors.New("vmac sender does not receive")

func (s *vmacSender) ReadAdvert([]byte) (int, frameMeta, error) {
	return 0, frameMeta{}, errSendOnly
}

func (s *vmacSender) Close() error { return s.pc.Close() }
