package netsetup

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// TestForwardScope proves with real packets what a VM's FORWARD rules let
// through on a host whose FORWARD policy is ACCEPT (no Docker): the VM's
// own traffic leaves through the uplink, masqueraded, and the replies come
// back; it cannot reach another VM, send from an address outside its /30,
// or be reached by a connection opened from the uplink's side. Then a
// foreign ACCEPT-everything rule ahead of banger's lets the same packets
// through, so what stopped them was banger's rules.
func TestForwardScope(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	// Strict reverse-path filtering would drop the spoofed packet before
	// the firewall sees it.
	sh(t, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0")
	ctx := t.Context()
	cfg := Config{StateDir: t.TempDir()}
	a, err := Setup(ctx, cfg, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Setup(ctx, cfg, "b")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(context.Background(), cfg, "a"); Teardown(context.Background(), cfg, "b") })
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	linkMAC := func(name string) net.HardwareAddr {
		l, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		return l.Attrs().HardwareAddr
	}
	ga := openStation(t, a.Tap, mac(a.MAC), a.GuestAddr.Addr())
	gb := openStation(t, b.Tap, mac(b.MAC), b.GuestAddr.Addr())
	router := openStation(t, "up0", mac("02:00:00:00:99:fe"), netip.MustParseAddr("10.99.0.254"))
	gwA, up0 := linkMAC(a.Tap), linkMAC("up0")
	// The host knows the guests' MACs, so a forwarded packet never waits
	// for an ARP answer that comes too late.
	for _, l := range []Lease{a, b} {
		sh(t, "ip", "neigh", "replace", l.GuestAddr.Addr().String(), "lladdr", l.MAC, "dev", l.Tap)
	}
	outside := netip.MustParseAddrPort("198.51.100.7:53")
	aPort := func(p uint16) netip.AddrPort { return netip.AddrPortFrom(a.GuestAddr.Addr(), p) }

	// Egress and its reply.
	if err := ga.sendUDP(gwA, aPort(4000), outside, "out"); err != nil {
		t.Fatal(err)
	}
	up, err := router.nextUDP()
	if err != nil || up.payload != "out" || up.src.Addr() != netip.MustParseAddr("10.99.0.1") {
		t.Fatalf("uplink saw %+v, %v; want %q masqueraded to 10.99.0.1", up, err, "out")
	}
	if err := router.sendUDP(up.from, outside, up.src, "back"); err != nil {
		t.Fatal(err)
	}
	if in, err := ga.nextUDP(); err != nil || in.payload != "back" || in.dst != aPort(4000) {
		t.Fatalf("VM a got %+v, %v; want the reply", in, err)
	}

	// What must not pass, each sent once while banger's rules decide and
	// once more behind a foreign ACCEPT-everything rule.
	cases := []struct {
		name string
		send func() error
		to   *station
		want string
	}{
		{"VM a to VM b", func() error {
			return ga.sendUDP(gwA, aPort(4001), netip.AddrPortFrom(b.GuestAddr.Addr(), 7), "a-to-b")
		}, gb, "a-to-b"},
		{"a new connection from the uplink's side into VM a", func() error {
			return router.sendUDP(up0, netip.MustParseAddrPort("198.51.100.7:5000"), aPort(7), "in")
		}, ga, "in"},
		{"VM a from an address outside its /30", func() error {
			return ga.sendUDP(gwA, netip.MustParseAddrPort("10.0.0.9:4002"), outside, "spoofed")
		}, router, "spoofed"},
	}
	for _, c := range cases {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		if got, err := c.to.udpWithin(2 * time.Second); err == nil {
			t.Errorf("%s: %q from %s to %s got through", c.name, got.payload, got.src, got.dst)
		}
	}
	sh(t, "iptables", "-w", "-I", "FORWARD", "1", "-j", "ACCEPT")
	for _, c := range cases {
		if err := c.send(); err != nil {
			t.Fatal(err)
		}
		if got, err := c.to.nextUDP(); err != nil || got.payload != c.want {
			t.Errorf("%s, behind an ACCEPT-everything rule: got %+v, %v; the test's packets do not flow", c.name, got, err)
		}
	}
}
