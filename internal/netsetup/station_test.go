package netsetup

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// station is a userspace network stack just big enough to prove traffic
// through a tap device: it holds the tap open (as a VMM would), answers ARP
// for its addresses and sends and receives IPv4/UDP frames.
type station struct {
	f   *os.File
	mac net.HardwareAddr
	ips []netip.Addr
}

// openStation opens the existing tap device name, the way QEMU and
// Firecracker do (IFF_TAP|IFF_NO_PI), and closes it when the test ends.
func openStation(t *testing.T, name string, mac net.HardwareAddr, ips ...netip.Addr) *station {
	t.Helper()
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("opening /dev/net/tun: %v", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		t.Fatalf("attaching to tap %s: %v", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil { // so deadlines work
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return &station{f: f, mac: mac, ips: ips}
}

// udp is a received UDP datagram and the MAC it came from.
type udp struct {
	from     net.HardwareAddr
	src, dst netip.AddrPort
	payload  string
}

// nextUDP reads frames for up to 5 s, answering ARP requests for the
// station's addresses, until an IPv4/UDP frame arrives.
func (s *station) nextUDP() (udp, error) { return s.udpWithin(5 * time.Second) }

// udpWithin is nextUDP waiting up to d.
func (s *station) udpWithin(d time.Duration) (udp, error) {
	if err := s.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		return udp{}, err
	}
	buf := make([]byte, 65536)
	for {
		n, err := s.f.Read(buf)
		if err != nil {
			return udp{}, fmt.Errorf("reading %s: %w", s.f.Name(), err)
		}
		fr := buf[:n]
		if len(fr) < 14 {
			continue
		}
		src := net.HardwareAddr(slices.Clone(fr[6:12]))
		switch binary.BigEndian.Uint16(fr[12:14]) {
		case 0x0806:
			if err := s.answerARP(fr[14:]); err != nil {
				return udp{}, err
			}
		case 0x0800:
			if u, ok := parseUDP(fr[14:]); ok {
				u.from = src
				return u, nil
			}
		}
	}
}

// answerARP replies to an ARP request for one of the station's addresses.
func (s *station) answerARP(p []byte) error {
	if len(p) < 28 || binary.BigEndian.Uint16(p[6:8]) != 1 {
		return nil
	}
	target := netip.AddrFrom4([4]byte(p[24:28]))
	if !slices.Contains(s.ips, target) {
		return nil
	}
	reply := make([]byte, 28)
	copy(reply, p[:6])                       // htype, ptype, hlen, plen
	binary.BigEndian.PutUint16(reply[6:], 2) // op: reply
	copy(reply[8:], s.mac)
	copy(reply[14:], p[24:28]) // our address
	copy(reply[18:], p[8:18])  // requester's MAC and address
	return s.send(net.HardwareAddr(p[8:14]), 0x0806, reply)
}

// sendUDP sends one IPv4/UDP datagram to the MAC dst.
func (s *station) sendUDP(dst net.HardwareAddr, from, to netip.AddrPort, payload string) error {
	ulen := 8 + len(payload)
	p := make([]byte, 20+ulen)
	p[0], p[8], p[9] = 0x45, 64, 17 // IPv4 with a 20-byte header, TTL, UDP
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	binary.BigEndian.PutUint16(p[6:], 0x4000) // don't fragment
	f4, t4 := from.Addr().As4(), to.Addr().As4()
	copy(p[12:], f4[:])
	copy(p[16:], t4[:])
	binary.BigEndian.PutUint16(p[10:], checksum(p[:20]))
	binary.BigEndian.PutUint16(p[20:], from.Port())
	binary.BigEndian.PutUint16(p[22:], to.Port())
	binary.BigEndian.PutUint16(p[24:], uint16(ulen)) // checksum 0: none (IPv4)
	copy(p[28:], payload)
	return s.send(dst, 0x0800, p)
}

func (s *station) send(dst net.HardwareAddr, etherType uint16, payload []byte) error {
	fr := make([]byte, 14, 14+len(payload))
	copy(fr, dst)
	copy(fr[6:], s.mac)
	binary.BigEndian.PutUint16(fr[12:], etherType)
	if _, err := s.f.Write(append(fr, payload...)); err != nil {
		return fmt.Errorf("writing to %s: %w", s.f.Name(), err)
	}
	return nil
}

func parseUDP(p []byte) (udp, bool) {
	if len(p) < 20 || p[0]>>4 != 4 || p[9] != 17 {
		return udp{}, false
	}
	ihl := int(p[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(p[2:4]))
	if total > len(p) || ihl+8 > total {
		return udp{}, false
	}
	src := netip.AddrFrom4([4]byte(p[12:16]))
	dst := netip.AddrFrom4([4]byte(p[16:20]))
	u := p[ihl:total]
	return udp{
		src:     netip.AddrPortFrom(src, binary.BigEndian.Uint16(u[0:2])),
		dst:     netip.AddrPortFrom(dst, binary.BigEndian.Uint16(u[2:4])),
		payload: string(u[8:]),
	}, true
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
