package netsetup

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Leases made before tap names and tags were unique per state directory
// (Owner "") name their tap "bg-NAME" and tag it and its rules
// "banger:NAME", which a VM of the same name in another state directory
// shares. Setup moves such a lease to the current naming (keeping its
// subnet and MAC, so the guest keeps its address); Setup and Teardown
// remove what the old naming made only where it is provably this lease's.

// legacyTap is what became of a legacy lease's tap.
type legacyTap int

const (
	legacyTapGone    legacyTap = iota // no such device
	legacyTapOurs                     // banger's for this VM name, with this lease's host address
	legacyTapInUse                    // ours, and a VMM holds it open
	legacyTapForeign                  // someone else's: another state directory's VM, or not banger's
)

// legacyTapOf looks at the tap of legacy lease l.
func legacyTapOf(l Lease) (legacyTap, error) {
	link, err := netlink.LinkByName(l.Tap)
	if errors.As(err, new(netlink.LinkNotFoundError)) {
		return legacyTapGone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("looking up tap device %s: %w", l.Tap, err)
	}
	if !ours(link, l.tag()) {
		return legacyTapForeign, nil
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return 0, fmt.Errorf("listing the addresses of %s: %w", l.Tap, err)
	}
	if !slices.ContainsFunc(addrs, func(a netlink.Addr) bool {
		p, ok := prefixOf(a.IPNet)
		return ok && p == l.HostAddr
	}) {
		return legacyTapForeign, nil
	}
	if link.Attrs().RawFlags&unix.IFF_LOWER_UP != 0 {
		return legacyTapInUse, nil // a tap has carrier while a process holds it
	}
	return legacyTapOurs, nil
}

// removeLegacy removes what legacy lease l's naming made and is provably
// its: the tap when it is ours (or in use, when force), the FORWARD rules
// tagged "banger:NAME" that name the tap unless it is someone else's, and
// the tagged nat rule of l's subnet.
func (t tools) removeLegacy(ctx context.Context, l Lease, tap legacyTap, force bool) error {
	tag := l.tag()
	for _, c := range chains {
		rules, err := t.taggedRules(ctx, c.table, c.chain, tag)
		if err != nil {
			return err
		}
		for _, args := range rules {
			namesTap := slices.Contains(args, l.Tap)
			if (namesTap && tap == legacyTapForeign) || (!namesTap && !slices.Contains(args, l.Subnet.String())) {
				continue
			}
			if _, err := t.iptables(ctx, append([]string{"-t", c.table, "-D", c.chain}, args...)...); err != nil {
				return fmt.Errorf("removing firewall rule of VM %q: %w", l.VM, err)
			}
		}
	}
	if tap == legacyTapOurs || tap == legacyTapInUse && force {
		return deleteTap(l)
	}
	return nil
}

// migrate moves legacy lease old to the current naming in cfg: it
// removes the old tap and rules where they are provably old's, then
// records the lease with its owner and new tap name. A tap that a VMM
// still holds is not taken from it.
func (t tools) migrate(ctx context.Context, cfg Config, old Lease) (Lease, error) {
	tap, err := legacyTapOf(old)
	if err != nil {
		return old, err
	}
	if tap == legacyTapInUse {
		return old, fmt.Errorf("tap device %s of VM %q is held open by a running VMM (hint: stop the VM first)", old.Tap, old.VM)
	}
	if err := t.removeLegacy(ctx, old, tap, false); err != nil {
		return old, err
	}
	l := old
	l.Owner = ownerID(cfg.StateDir)
	l.Tap = tapName(l.Owner, l.VM)
	if err := checkTapFree(cfg, l); err != nil {
		return old, err
	}
	return l, writeLease(cfg, l)
}
