package netsetup

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/thaloco/banger/internal/netnstest"
	"github.com/vishvananda/netlink"
)

// TestTwoStateDirs: VMs of one name in two state directories (as sudo and
// sudo -E give) get their own tap, subnet, tag and lease; tearing one
// down leaves the other's whole.
func TestTwoStateDirs(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	rulesBefore, linksBefore := ruleset(t), linkNames(t)
	ctx := t.Context()
	a, b := Config{StateDir: t.TempDir()}, Config{StateDir: t.TempDir()}
	la, err := Setup(ctx, a, "web")
	if err != nil {
		t.Fatal(err)
	}
	lb, err := Setup(ctx, b, "web")
	if err != nil {
		t.Fatal(err)
	}
	if la.Tap == lb.Tap || la.Subnet == lb.Subnet || la.tag() == lb.tag() {
		t.Fatalf("two state directories share: tap %s / %s, subnet %s / %s, tag %s / %s", la.Tap, lb.Tap, la.Subnet, lb.Subnet, la.tag(), lb.tag())
	}
	rulesB := bangerRules(t, lb.tag())
	if len(rulesB) != 5 {
		t.Fatalf("rules of b: %q", rulesB)
	}
	if st, err := os.Stat(RunDir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want a 0700 directory", RunDir, st.Mode(), err)
	}

	if err := Teardown(ctx, a, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(la.Tap); err == nil {
		t.Errorf("a's tap %s survived its Teardown", la.Tap)
	}
	if got := bangerRules(t, la.tag()); len(got) != 0 {
		t.Errorf("a's rules survived its Teardown: %q", got)
	}
	link, err := netlink.LinkByName(lb.Tap)
	if err != nil || link.Attrs().Alias != lb.tag() {
		t.Fatalf("b's tap after a's Teardown: %v, %+v", err, link)
	}
	if out := sh(t, "ip", "-4", "-o", "addr", "show", "dev", lb.Tap); !strings.Contains(out, lb.HostAddr.String()) {
		t.Errorf("b's tap lost its address: %s", out)
	}
	if got := bangerRules(t, lb.tag()); !slices.Equal(got, rulesB) {
		t.Errorf("b's rules after a's Teardown:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(rulesB, "\n"))
	}
	if ls, err := List(b); err != nil || len(ls) != 1 || ls[0].Tap != lb.Tap {
		t.Errorf("b's leases after a's Teardown: %+v, %v", ls, err)
	}
	if again, err := Setup(ctx, b, "web"); err != nil || again.Tap != lb.Tap || again.Subnet != lb.Subnet {
		t.Errorf("b's Setup after a's Teardown: %+v, %v", again, err)
	}
	if err := Teardown(ctx, b, "web"); err != nil {
		t.Fatal(err)
	}
	if got := ruleset(t); got != rulesBefore {
		t.Errorf("ruleset after both Teardowns:\n%s\nwant:\n%s", got, rulesBefore)
	}
	if got := linkNames(t); !slices.Equal(got, linksBefore) {
		t.Errorf("interfaces after both Teardowns = %v, want %v", got, linksBefore)
	}
}

// TestConcurrentStateDirs: Setups in several state directories at once
// never allocate one subnet twice: they share a host-wide lock.
func TestConcurrentStateDirs(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	const n = 6
	cfgs := make([]Config, n)
	leases := make([]Lease, n)
	errs := make([]error, n)
	for i := range cfgs {
		cfgs[i] = Config{StateDir: t.TempDir()}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { leases[i], errs[i] = Setup(t.Context(), cfgs[i], "web") })
	}
	wg.Wait()
	seen := map[netip.Prefix]int{}
	for i, l := range leases {
		if errs[i] != nil {
			t.Fatalf("Setup in state directory %d: %v", i, errs[i])
		}
		if j, dup := seen[l.Subnet]; dup {
			t.Errorf("state directories %d and %d both hold %s", i, j, l.Subnet)
		}
		seen[l.Subnet] = i
	}
	for i := range n {
		if err := Teardown(t.Context(), cfgs[i], "web"); err != nil {
			t.Error(err)
		}
	}
}

// TestSubnetTakenMeanwhile: a VM whose tap is gone (as after a reboot)
// while another state directory's VM got its subnet fails to set up with
// an error naming the interface that holds it, and changes nothing.
func TestSubnetTakenMeanwhile(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	ctx := t.Context()
	a, b := Config{StateDir: t.TempDir()}, Config{StateDir: t.TempDir()}
	la, err := Setup(ctx, a, "web")
	if err != nil {
		t.Fatal(err)
	}
	sh(t, "ip", "link", "del", la.Tap)
	lb, err := Setup(ctx, b, "db")
	if err != nil {
		t.Fatal(err)
	}
	if lb.Subnet != la.Subnet {
		t.Fatalf("b got %s, not a's %s: the test does not set up the clash", lb.Subnet, la.Subnet)
	}
	_, err = Setup(ctx, a, "web")
	if err == nil || !strings.Contains(err.Error(), "subnet "+la.Subnet.String()+` of VM "web" is in use on this host by `+lb.Tap) || !strings.Contains(err.Error(), "hint:") {
		t.Fatalf("Setup of a VM whose subnet another holds: %v", err)
	}
	t.Log(err)
	if _, err := netlink.LinkByName(la.Tap); err == nil {
		t.Errorf("the refused Setup made tap %s", la.Tap)
	}
	if out := sh(t, "ip", "-4", "-o", "addr", "show", "dev", lb.Tap); !strings.Contains(out, lb.HostAddr.String()) {
		t.Errorf("b's tap lost its address: %s", out)
	}
}

// writeLegacy sets up what banger made for VM vm before tap names and
// tags were unique per state directory: a lease without an owner and,
// unless hostAddr is invalid, its tap "bg-NAME" tagged "banger:NAME"
// carrying hostAddr, with its rules.
func writeLegacy(t *testing.T, cfg Config, vm string, subnet netip.Prefix, hostAddr netip.Prefix) Lease {
	t.Helper()
	l := Lease{VM: vm, Tap: legacyTapName(vm), Subnet: subnet, MAC: guestMAC(vm)}
	l.fillAddrs()
	if err := writeLease(cfg, l); err != nil {
		t.Fatal(err)
	}
	if !hostAddr.IsValid() {
		return l
	}
	sh(t, "ip", "tuntap", "add", "dev", l.Tap, "mode", "tap")
	sh(t, "ip", "link", "set", l.Tap, "alias", "banger:"+vm, "up")
	sh(t, "ip", "addr", "add", hostAddr.String(), "dev", l.Tap)
	sh(t, "iptables", "-w", "-I", "FORWARD", "-i", l.Tap, "-m", "comment", "--comment", "banger:"+vm, "-j", "ACCEPT")
	sh(t, "iptables", "-w", "-I", "FORWARD", "-o", l.Tap, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-m", "comment", "--comment", "banger:"+vm, "-j", "ACCEPT")
	sh(t, "iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", hostAddr.Masked().String(), "-o", "up0", "-m", "comment", "--comment", "banger:"+vm, "-j", "MASQUERADE")
	return l
}

// TestLegacyLeases: leases from before owners keep their subnet and MAC
// and move to the current naming at their next Setup. The old tap and
// rules go only where they are provably the lease's: a "bg-NAME" tap
// carrying another subnet belongs to a VM of that name in another state
// directory and stays, with its rules; a tap a VMM holds is not taken.
func TestLegacyLeases(t *testing.T) {
	if !netnstest.Run(t) {
		return
	}
	addUplink(t)
	ctx := t.Context()
	cfg := Config{StateDir: t.TempDir()}
	p := mustPrefix
	web := writeLegacy(t, cfg, "web", p("172.30.0.0/30"), p("172.30.0.1/30"))
	// db's old tap is another state directory's db, at 172.30.0.9.
	db := writeLegacy(t, cfg, "db", p("172.30.0.4/30"), p("172.30.0.9/30"))
	foreignDB := bangerRules(t, "banger:db")
	old := writeLegacy(t, cfg, "old", p("172.30.0.12/30"), p("172.30.0.13/30"))
	busy := writeLegacy(t, cfg, "busy", p("172.30.0.16/30"), p("172.30.0.17/30"))
	openStation(t, busy.Tap, net.HardwareAddr{2, 0, 0, 0, 0, 1})

	l, err := Setup(ctx, cfg, "web")
	if err != nil {
		t.Fatal(err)
	}
	if l.Owner != ownerID(cfg.StateDir) || l.Tap != tapOf(cfg, "web") || l.Subnet != web.Subnet || l.MAC != web.MAC {
		t.Errorf("migrated lease %+v, want owner, tap %s, the old subnet %s and MAC", l, tapOf(cfg, "web"), web.Subnet)
	}
	if _, err := netlink.LinkByName("bg-web"); err == nil {
		t.Error("the old tap bg-web survived the migration")
	}
	if got := bangerRules(t, "banger:web"); len(got) != 0 {
		t.Errorf("old rules survived the migration: %q", got)
	}
	if got := bangerRules(t, l.tag()); len(got) != 5 {
		t.Errorf("rules after the migration: %q", got)
	}
	if again, err := readLease(cfg, "web"); err != nil || again.Owner != l.Owner || again.Tap != l.Tap {
		t.Errorf("stored lease after the migration: %+v, %v", again, err)
	}

	ldb, err := Setup(ctx, cfg, "db")
	if err != nil {
		t.Fatal(err)
	}
	if ldb.Subnet != db.Subnet || ldb.Tap == db.Tap {
		t.Errorf("db after migration: %+v", ldb)
	}
	link, err := netlink.LinkByName(db.Tap)
	if err != nil || link.Attrs().Alias != "banger:db" {
		t.Errorf("the other state directory's %s: %v, %+v", db.Tap, err, link)
	}
	if got := bangerRules(t, "banger:db"); !slices.Equal(got, foreignDB) {
		t.Errorf("the other state directory's db rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(foreignDB, "\n"))
	}

	_, err = Setup(ctx, cfg, "busy")
	if err == nil || !strings.Contains(err.Error(), "held open by a running VMM") {
		t.Errorf("migrating a lease whose tap a VMM holds: %v", err)
	}
	if _, err := netlink.LinkByName(busy.Tap); err != nil {
		t.Errorf("the held tap is gone: %v", err)
	}

	// Teardown of a legacy lease removes its own old things only.
	if err := Teardown(ctx, cfg, "old"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(old.Tap); err == nil {
		t.Errorf("Teardown left the old tap %s", old.Tap)
	}
	if got := bangerRules(t, "banger:old"); len(got) != 0 {
		t.Errorf("Teardown left old rules: %q", got)
	}
	for _, vm := range []string{"web", "db", "busy"} {
		if err := Teardown(ctx, cfg, vm); err != nil {
			t.Fatal(err)
		}
	}
	if got := bangerRules(t, "banger:db"); !slices.Equal(got, foreignDB) {
		t.Errorf("Teardown of db touched the other state directory's rules: %q", got)
	}
	if _, err := netlink.LinkByName(db.Tap); err != nil {
		t.Errorf("Teardown of db removed the other state directory's tap: %v", err)
	}
	if ls, err := List(cfg); err != nil || len(ls) != 0 {
		t.Errorf("leases left: %+v, %v", ls, err)
	}
}
