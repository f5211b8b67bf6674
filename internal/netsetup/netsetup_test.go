package netsetup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/netnstest"
	"github.com/vishvananda/netlink"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

// linkNames lists the interfaces of the namespace.
func linkNames(t *testing.T) []string {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range links {
		names = append(names, l.Attrs().Name)
	}
	slices.Sort(names)
	return names
}

func ipForward(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// addForeign adds an interface, a bg- tap and firewall rules that banger did
// not make; the caller checks they survive.
func addForeign(t *testing.T) {
	t.Helper()
	sh(t, "ip", "tuntap", "add", "dev", "keep0", "mode", "tap")
	sh(t, "ip", "tuntap", "add", "dev", "bg-other", "mode", "tap")
	sh(t, "iptables", "-w", "-A", "FORWARD", "-i", "keep0", "-j", "ACCEPT")
	sh(t, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.1.0.0/24", "-m", "comment", "--comment", "not-banger", "-j", "MASQUERADE")
	sh(t, "iptables", "-w", "-A", "FORWARD", "-m", "comment", "--comment", "banger:webby", "-j", "ACCEPT")
}

func TestSetupTeardown(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	addForeign(t)
	rulesBefore, linksBefore := ruleset(t), linkNames(t)
	cfg := Config{StateDir: t.TempDir()}
	ctx := t.Context()

	start := time.Now()
	l, err := Setup(ctx, cfg, "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Setup took %v", time.Since(start))
	tap, tag := tapOf(cfg, "web"), tagOf(cfg, "web")
	if !strings.HasPrefix(tap, "bg-web-") || len(tap) != 13 || tag != "banger:"+ownerID(cfg.StateDir)+":web" {
		t.Fatalf("tap name %q, tag %q", tap, tag)
	}
	want := Lease{VM: "web", Owner: ownerID(cfg.StateDir), Tap: tap, Subnet: mustPrefix("172.30.0.0/30"),
		HostAddr: mustPrefix("172.30.0.1/30"), GuestAddr: mustPrefix("172.30.0.2/30"),
		MAC: guestMAC("web"), Uplink: "up0"}
	got := l
	got.Notes = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lease = %+v, want %+v", got, want)
	}
	if !strings.Contains(strings.Join(l.Notes, "\n"), "IPv4 forwarding") {
		t.Errorf("notes %q do not mention switching on IPv4 forwarding", l.Notes)
	}
	if got, want := l.KernelIPArg(), "ip=172.30.0.2::172.30.0.1:255.255.255.252:web:eth0:off"; got != want {
		t.Errorf("KernelIPArg() = %q, want %q", got, want)
	}

	link, err := netlink.LinkByName(tap)
	if err != nil {
		t.Fatalf("tap not created: %v", err)
	}
	if link.Type() != "tuntap" || link.Attrs().Alias != tag || link.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("tap %s: type %s, alias %q, flags %v; want an up tuntap with alias %s", tap, link.Type(), link.Attrs().Alias, link.Attrs().Flags, tag)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "172.30.0.1/30" {
		t.Errorf("tap addresses = %v (%v), want just 172.30.0.1/30", addrs, err)
	}
	if got := ipForward(t); got != "1" {
		t.Errorf("ip_forward = %s after Setup, want 1", got)
	}
	rules := bangerRules(t, tag)
	wantRules := []string{
		`-A FORWARD -s 172.30.0.0/30 -i TAP -o up0 -m comment --comment "TAG" -j ACCEPT`,
		`-A FORWARD -o TAP -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment "TAG" -j ACCEPT`,
		`-A FORWARD -i TAP -m comment --comment "TAG" -j DROP`,
		`-A FORWARD -o TAP -m comment --comment "TAG" -j DROP`,
		`-A POSTROUTING -s 172.30.0.0/30 -o up0 -m comment --comment "TAG" -j MASQUERADE`,
	}
	for i := range wantRules {
		wantRules[i] = strings.NewReplacer("TAP", tap, "TAG", tag).Replace(wantRules[i])
	}
	if !slices.Equal(rules, wantRules) {
		t.Errorf("banger rules:\n%s\nwant:\n%s", strings.Join(rules, "\n"), strings.Join(wantRules, "\n"))
	}
	if fw := strings.Split(sh(t, "iptables", "-w", "-S", "FORWARD"), "\n"); !slices.Equal(fw[1:5], wantRules[:4]) {
		t.Errorf("banger's FORWARD rules are not first, in order: %q", fw)
	}
	// What Setup reads back equals what it asks for, so a repeated Setup
	// leaves the rules alone instead of replacing them.
	tl, err := checkHost("test")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		have, err := tl.taggedRules(ctx, c.table, c.chain, tag)
		if err != nil {
			t.Fatal(err)
		}
		var want [][]string
		for _, r := range rulesFor(l, "up0") {
			if r.table == c.table && r.chain == c.chain {
				want = append(want, r.args)
			}
		}
		if !slices.EqualFunc(have, want, slices.Equal) {
			t.Errorf("%s rules read back as %q, want %q", c.chain, have, want)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "leases", "web.json")); err != nil {
		t.Errorf("lease file: %v", err)
	}

	// Setup again (as on every start): same lease, no new rules or notes
	// about forwarding.
	start = time.Now()
	again, err := Setup(ctx, cfg, "web")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Setup took %v", time.Since(start))
	if again.Subnet != l.Subnet || again.Tap != l.Tap || again.MAC != l.MAC || len(again.Notes) != 0 {
		t.Errorf("second Setup = %+v, want the first lease %+v and no notes", again, l)
	}
	if got := bangerRules(t, tag); !slices.Equal(got, rules) {
		t.Errorf("rules after second Setup = %q, want %q", got, rules)
	}

	start = time.Now()
	if err := Teardown(ctx, cfg, "web"); err != nil {
		t.Fatal(err)
	}
	t.Logf("Teardown took %v", time.Since(start))
	if got := ruleset(t); got != rulesBefore {
		t.Errorf("ruleset after Teardown:\n%s\nwant as before Setup:\n%s", got, rulesBefore)
	}
	if got := linkNames(t); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces after Teardown = %v, want %v", got, linksBefore)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "leases", "web.json")); !os.IsNotExist(err) {
		t.Errorf("lease file still there after Teardown (%v)", err)
	}
	if leases, err := List(cfg); err != nil || len(leases) != 0 {
		t.Errorf("List after Teardown = %v, %v; want none", leases, err)
	}
	if err := Teardown(ctx, cfg, "web"); err != nil {
		t.Errorf("second Teardown: %v", err)
	}
	if got := ruleset(t); got != rulesBefore {
		t.Errorf("second Teardown changed the ruleset:\n%s", got)
	}
}

func TestSetupWithoutDefaultRoute(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	cfg := Config{StateDir: t.TempDir()}
	l, err := Setup(t.Context(), cfg, "lonely")
	if err != nil {
		t.Fatal(err)
	}
	if l.Uplink != "" || !strings.Contains(strings.Join(l.Notes, "\n"), "no default route") {
		t.Errorf("uplink %q, notes %q; want no uplink and a note about the missing default route", l.Uplink, l.Notes)
	}
	t.Log(l.Notes)
	rules := bangerRules(t, tagOf(cfg, "lonely"))
	if len(rules) != 3 || strings.Contains(strings.Join(rules, "\n"), "MASQUERADE") || strings.Contains(strings.Join(rules, "\n"), "-s ") {
		t.Errorf("banger rules = %q, want the replies' ACCEPT and two DROPs, no egress and no NAT", rules)
	}
	if err := Teardown(t.Context(), cfg, "lonely"); err != nil {
		t.Fatal(err)
	}
	if rules := bangerRules(t, tagOf(cfg, "lonely")); len(rules) != 0 {
		t.Errorf("rules left after Teardown: %q", rules)
	}
}

func TestConcurrentSetups(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	rulesBefore, linksBefore := ruleset(t), linkNames(t)
	cfg := Config{StateDir: t.TempDir()}
	const n = 6
	leases := make([]Lease, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { leases[i], errs[i] = Setup(t.Context(), cfg, fmt.Sprintf("vm%d", i)) })
	}
	wg.Wait()
	seen := map[netip.Prefix]string{}
	for i, l := range leases {
		if errs[i] != nil {
			t.Fatalf("Setup vm%d: %v", i, errs[i])
		}
		if other, dup := seen[l.Subnet]; dup {
			t.Errorf("%s and %s share subnet %s", l.VM, other, l.Subnet)
		}
		seen[l.Subnet] = l.VM
		if !mustPrefix("172.30.0.0/16").Contains(l.Subnet.Addr()) {
			t.Errorf("%s got %s, outside the default pool", l.VM, l.Subnet)
		}
		if _, err := netlink.LinkByName(l.Tap); err != nil {
			t.Errorf("tap %s of %s: %v", l.Tap, l.VM, err)
		}
	}
	if listed, err := List(cfg); err != nil || len(listed) != n {
		t.Errorf("List = %d leases, %v; want %d", len(listed), err, n)
	}
	for i := range n {
		wg.Go(func() { errs[i] = Teardown(t.Context(), cfg, fmt.Sprintf("vm%d", i)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Teardown vm%d: %v", i, err)
		}
	}
	if got := ruleset(t); got != rulesBefore {
		t.Errorf("ruleset after Teardowns:\n%s\nwant:\n%s", got, rulesBefore)
	}
	if got := linkNames(t); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces after Teardowns = %v, want %v", got, linksBefore)
	}
}

func TestPoolExhaustion(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	cfg := Config{Pool: mustPrefix("172.30.0.0/29"), StateDir: t.TempDir()}
	ctx := t.Context()
	a, err := Setup(ctx, cfg, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Setup(ctx, cfg, "b"); err != nil {
		t.Fatal(err)
	}
	_, err = Setup(ctx, cfg, "c")
	if err == nil || !strings.Contains(err.Error(), `no free /30 left in network pool 172.30.0.0/29 for VM "c"`) ||
		!strings.Contains(err.Error(), "hint:") || !strings.Contains(err.Error(), PoolEnv) {
		t.Fatalf("third Setup in a /29: error %v, want a clear pool-exhaustion error with a hint", err)
	}
	t.Log(err)
	if _, err := netlink.LinkByName(tapOf(cfg, "c")); err == nil {
		t.Error("failed Setup left its tap behind")
	}
	if _, err := os.Stat(leasePath(cfg, "c")); !os.IsNotExist(err) {
		t.Errorf("failed Setup left a lease behind (%v)", err)
	}
	if rules := bangerRules(t, tagOf(cfg, "c")); len(rules) != 0 {
		t.Errorf("failed Setup left rules: %q", rules)
	}
	// Teardown releases the subnet for the next VM.
	if err := Teardown(ctx, cfg, "a"); err != nil {
		t.Fatal(err)
	}
	c, err := Setup(ctx, cfg, "c")
	if err != nil {
		t.Fatalf("Setup after a Teardown: %v", err)
	}
	if c.Subnet != a.Subnet {
		t.Errorf("c got %s, want a's released %s", c.Subnet, a.Subnet)
	}
}

func TestSkipsSubnetsInUse(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	sh(t, "ip", "tuntap", "add", "dev", "lan0", "mode", "tap")
	sh(t, "ip", "link", "set", "lan0", "up")
	sh(t, "ip", "route", "add", "172.30.0.0/29", "dev", "lan0")
	sh(t, "ip", "route", "add", "172.30.0.8/30", "dev", "lan0", "table", "100")
	sh(t, "ip", "tuntap", "add", "dev", "down0", "mode", "tap")
	sh(t, "ip", "addr", "add", "172.30.0.13/32", "dev", "down0")
	cfg := Config{StateDir: t.TempDir()}
	l, err := Setup(t.Context(), cfg, "web")
	if err != nil {
		t.Fatal(err)
	}
	if want := mustPrefix("172.30.0.16/30"); l.Subnet != want {
		t.Errorf("subnet = %s, want %s (the first /30 clear of host routes and addresses)", l.Subnet, want)
	}
	if err := Teardown(t.Context(), cfg, "web"); err != nil {
		t.Fatal(err)
	}
}

func TestForeignInterfaceUntouched(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	cfg := Config{StateDir: t.TempDir()}
	tap := tapOf(cfg, "vmx")
	sh(t, "ip", "tuntap", "add", "dev", tap, "mode", "tap")
	_, err := Setup(t.Context(), cfg, "vmx")
	if err == nil || !strings.Contains(err.Error(), tap+" already exists and was not created by banger") {
		t.Fatalf("Setup over a foreign %s: error %v, want one naming the foreign interface", tap, err)
	}
	t.Log(err)
	if err := Teardown(t.Context(), cfg, "vmx"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(tap); err != nil {
		t.Errorf("foreign %s was removed: %v", tap, err)
	}
	if rules := bangerRules(t, tagOf(cfg, "vmx")); len(rules) != 0 {
		t.Errorf("rules left: %q", rules)
	}
	if leases, err := List(cfg); err != nil || len(leases) != 0 {
		t.Errorf("leases left: %v, %v", leases, err)
	}
}

func TestNeedsCapNetAdmin(t *testing.T) {
	if !netnstest.Run(t, "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin", "--") {
		return
	}
	if caps, err := effectiveCaps(); err != nil || caps&(1<<12) != 0 {
		t.Fatalf("test setup: CapEff %x (%v) still has CAP_NET_ADMIN", caps, err)
	}
	cfg := Config{StateDir: t.TempDir()}
	_, err := Setup(t.Context(), cfg, "web")
	var nc *NoCapError
	if !errors.As(err, &nc) || !strings.Contains(err.Error(), "CAP_NET_ADMIN") {
		t.Fatalf("Setup without CAP_NET_ADMIN: error %v, want a NoCapError naming CAP_NET_ADMIN (the CLI adds the hint)", err)
	}
	t.Log(err)
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "leases")); !os.IsNotExist(err) {
		t.Errorf("Setup without privileges wrote leases (%v)", err)
	}
	if err := Teardown(t.Context(), cfg, "web"); err != nil {
		t.Errorf("Teardown of nothing without CAP_NET_ADMIN: %v", err)
	}
}

func TestCancelledSetupLeavesNothing(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	rulesBefore, linksBefore := ruleset(t), linkNames(t)
	cfg := Config{StateDir: t.TempDir()}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Setup(ctx, cfg, "web"); err == nil {
		t.Fatal("Setup with a cancelled context succeeded")
	}
	if got := ruleset(t); got != rulesBefore {
		t.Errorf("ruleset after cancelled Setup:\n%s", got)
	}
	if got := linkNames(t); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces after cancelled Setup = %v", got)
	}
	if leases, err := List(cfg); err != nil || len(leases) != 0 {
		t.Errorf("leases after cancelled Setup: %v, %v", leases, err)
	}
}

// TestTraffic proves packets really flow: host ↔ guest through the tap, and
// guest → "outside" through forwarding and NAT and back. The guest and the
// upstream router are userspace stations holding the taps open; the
// "outside" address 198.51.100.7 (TEST-NET-2) is routed only to the test's
// own up0 tap inside the namespace, so nothing leaves it.
func TestTraffic(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	sh(t, "iptables", "-w", "-P", "FORWARD", "DROP") // as Docker leaves it
	cfg := Config{StateDir: t.TempDir()}
	l, err := Setup(t.Context(), cfg, "guest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(context.Background(), cfg, "guest") })
	guestMAC, _ := net.ParseMAC(l.MAC)
	routerMAC, _ := net.ParseMAC("02:00:00:00:99:fe")
	guest := openStation(t, l.Tap, guestMAC, l.GuestAddr.Addr())
	router := openStation(t, "up0", routerMAC, netip.MustParseAddr("10.99.0.254"))

	// Host → guest and back: the host must ARP for the guest on the tap.
	conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(l.GuestAddr.Addr(), 7)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	in, err := guest.nextUDP()
	if err != nil {
		t.Fatalf("guest received nothing from the host: %v", err)
	}
	if in.payload != "ping" || in.src.Addr() != l.HostAddr.Addr() || in.dst.Addr() != l.GuestAddr.Addr() {
		t.Fatalf("guest got %+v, want ping from %s", in, l.HostAddr.Addr())
	}
	if err := guest.sendUDP(in.from, in.dst, in.src, "pong"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "pong" {
		t.Fatalf("host read %q, %v; want the guest's pong", buf[:n], err)
	}

	// Guest → outside: forwarded despite the DROP policy, and masqueraded.
	outside := netip.MustParseAddrPort("198.51.100.7:53")
	guestPort := netip.AddrPortFrom(l.GuestAddr.Addr(), 4000)
	if err := guest.sendUDP(in.from, guestPort, outside, "out"); err != nil {
		t.Fatal(err)
	}
	up, err := router.nextUDP()
	if err != nil {
		t.Fatalf("nothing left through the uplink: %v", err)
	}
	if up.payload != "out" || up.dst != outside || up.src.Addr() != netip.MustParseAddr("10.99.0.1") {
		t.Fatalf("uplink saw %+v, want %q to %s masqueraded to 10.99.0.1", up, "out", outside)
	}
	if err := router.sendUDP(up.from, outside, up.src, "back"); err != nil {
		t.Fatal(err)
	}
	back, err := guest.nextUDP()
	if err != nil {
		t.Fatalf("the reply did not come back to the guest: %v", err)
	}
	if back.payload != "back" || back.src != outside || back.dst != guestPort {
		t.Fatalf("guest got %+v, want the reply from %s to %s", back, outside, guestPort)
	}
}

func TestBrokenLease(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	cfg := Config{StateDir: t.TempDir()}
	if err := os.MkdirAll(leasesDir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leasePath(cfg, "old"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Allocation cannot know which subnet the broken lease held: refuse,
	// naming the file.
	_, err := Setup(t.Context(), cfg, "new")
	if err == nil || !strings.Contains(err.Error(), leasePath(cfg, "old")) || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("Setup beside a broken lease: error %v, want one naming the file with a hint", err)
	}
	t.Log(err)
	if err := Teardown(t.Context(), cfg, "old"); err != nil {
		t.Fatalf("Teardown of the VM with the broken lease: %v", err)
	}
	if _, err := Setup(t.Context(), cfg, "new"); err != nil {
		t.Fatalf("Setup after removing the broken lease: %v", err)
	}
}

// TestUplinkChange: a Setup after the default route moved (a laptop going
// from Wi-Fi to Ethernet) NATs out of the new uplink and drops the old rule.
func TestUplinkChange(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	cfg := Config{StateDir: t.TempDir()}
	if _, err := Setup(t.Context(), cfg, "web"); err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "tuntap", "add", "dev", "up1", "mode", "tap")
	sh(t, "ip", "addr", "add", "10.98.0.1/24", "dev", "up1")
	sh(t, "ip", "link", "set", "up1", "up")
	sh(t, "ip", "route", "replace", "default", "via", "10.98.0.254", "dev", "up1")
	l, err := Setup(t.Context(), cfg, "web")
	if err != nil {
		t.Fatal(err)
	}
	rules := strings.Join(bangerRules(t, l.tag()), "\n")
	if l.Uplink != "up1" || len(bangerRules(t, l.tag())) != 5 || strings.Count(rules, "-o up1 ") != 2 || strings.Contains(rules, "up0") {
		t.Errorf("uplink %q, rules:\n%s\nwant egress and one MASQUERADE, out of up1 only", l.Uplink, rules)
	}
}

// TestIsolate: a tap held open (as by a restored VMM) moves into a private
// namespace where it has another VM's host address; a station behind it
// that answers at that VM's guest address is reached from inside, while
// the host's own addresses, including the other VM's, stay as they were.
// Close brings the tap back with its own address and rules.
func TestIsolate(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	cfg := Config{StateDir: t.TempDir()}
	ctx := t.Context()
	src, err := Setup(ctx, cfg, "src")
	if err != nil {
		t.Fatal(err)
	}
	clone, err := Setup(ctx, cfg, "clone")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Teardown(context.Background(), cfg, "clone"); Teardown(context.Background(), cfg, "src") })
	rulesBefore := bangerRules(t, clone.tag())
	mac, _ := net.ParseMAC(clone.MAC)
	// The clone's guest still answers at the source's address.
	guest := openStation(t, clone.Tap, mac, src.GuestAddr.Addr())

	iso, err := Isolate(ctx, cfg, "clone", src.HostAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(clone.Tap); err == nil {
		t.Errorf("tap %s is still in the host's namespace while isolated", clone.Tap)
	}
	if out := sh(t, "ip", "-4", "-o", "addr", "show", "dev", src.Tap); !strings.Contains(out, src.HostAddr.String()) {
		t.Errorf("the source's tap lost its address: %s", out)
	}
	conn, err := iso.DialContext(ctx, "udp4", netip.AddrPortFrom(src.GuestAddr.Addr(), 7).String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	in, err := guest.nextUDP()
	if err != nil {
		t.Fatalf("the isolated guest received nothing: %v", err)
	}
	if in.payload != "hello" || in.src.Addr() != src.HostAddr.Addr() {
		t.Fatalf("isolated guest got %+v, want hello from %s", in, src.HostAddr.Addr())
	}
	if err := guest.sendUDP(in.from, in.dst, in.src, "hi"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 16)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("read %q, %v from the isolated guest", buf[:n], err)
	}
	conn.Close()

	if err := iso.Close(ctx); err != nil {
		t.Fatal(err)
	}
	link, err := netlink.LinkByName(clone.Tap)
	if err != nil || link.Attrs().Flags&net.FlagUp == 0 {
		t.Fatalf("tap %s after Close: %v, %+v", clone.Tap, err, link)
	}
	if out := sh(t, "ip", "-4", "-o", "addr", "show", "dev", clone.Tap); !strings.Contains(out, clone.HostAddr.String()) {
		t.Errorf("tap %s after Close: %s", clone.Tap, out)
	}
	if got := bangerRules(t, clone.tag()); !slices.Equal(got, rulesBefore) {
		t.Errorf("rules after Close = %v, want %v", got, rulesBefore)
	}
	// The station, still attached, is reached at the clone's own address.
	guest.ips = []netip.Addr{clone.GuestAddr.Addr()}
	c2, err := net.Dial("udp4", netip.AddrPortFrom(clone.GuestAddr.Addr(), 7).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if in, err := guest.nextUDP(); err != nil || in.payload != "back" || in.src.Addr() != clone.HostAddr.Addr() {
		t.Fatalf("after Close the guest got %+v, %v; want back from %s", in, err, clone.HostAddr.Addr())
	}
}

// TestNamespaceThreadsComeBack: making isolation namespaces and dialing
// from inside them, many times over, leaves every thread of the process
// in its own network namespace. A thread left switched (Go may run such
// a goroutine on the main thread, which it never ends) made a later
// Isolate take that namespace for banger's own and lose a tap in it.
func TestNamespaceThreadsComeBack(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	want, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for range 200 {
		ns, err := newNetns()
		if err != nil {
			t.Fatal(err)
		}
		if err := inNetns(ns, func() error { return nil }); err != nil {
			t.Fatal(err)
		}
		ns.Close()
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		got, err := os.Readlink("/proc/self/task/" + task.Name() + "/ns/net")
		if err == nil && got != want {
			t.Errorf("thread %s is in %s, the process in %s", task.Name(), got, want)
		}
	}
	if got, _ := os.Readlink("/proc/self/ns/net"); got != want {
		t.Errorf("/proc/self/ns/net (the main thread) is %s, want %s", got, want)
	}
}
