package netsetup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ours reports whether link is a tap banger made and marked with tag
// (a Lease's tag, its interface alias).
func ours(link netlink.Link, tag string) bool {
	return link.Type() == "tuntap" && strings.HasPrefix(link.Attrs().Name, tapPrefix) &&
		link.Attrs().Alias == tag
}

// ensureTap creates the tap of l if missing, gives it the host address and
// brings it up. An existing device is used only if it is banger's tap for
// l.VM.
func ensureTap(l Lease) error {
	link, err := netlink.LinkByName(l.Tap)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		tap := &netlink.Tuntap{
			LinkAttrs: netlink.LinkAttrs{Name: l.Tap},
			Mode:      netlink.TUNTAP_MODE_TAP,
			// TUN_EXCL: fail rather than adopt a device that appeared meanwhile.
			Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_TUN_EXCL,
			// The VMM runs as this user and may open the tap without
			// CAP_NET_ADMIN.
			Owner: uint32(os.Geteuid()),
			Group: uint32(os.Getegid()),
		}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("creating tap device %s for VM %q: %w", l.Tap, l.VM, err)
		}
		if err := netlink.LinkSetAlias(tap, l.tag()); err != nil {
			err = fmt.Errorf("marking tap device %s as banger's: %w", l.Tap, err)
			if derr := netlink.LinkDel(tap); derr != nil {
				err = errors.Join(err, fmt.Errorf("removing it again: %w", derr))
			}
			return err
		}
		link = tap
	case err != nil:
		return fmt.Errorf("looking up tap device %s: %w", l.Tap, err)
	case !ours(link, l.tag()):
		return fmt.Errorf("network interface %s already exists and was not created by banger for VM %q of this state directory (hint: remove it with \"ip link del %s\" if nothing uses it, or choose another VM name)", l.Tap, l.VM, l.Tap)
	}
	addr := &netlink.Addr{IPNet: ipNet(l.HostAddr)}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("adding address %s to %s: %w", l.HostAddr, l.Tap, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing up %s: %w", l.Tap, err)
	}
	return nil
}

// deleteTap removes the tap of l if it exists and carries l's tag; a
// device of that name that banger did not make for l is left alone.
func deleteTap(l Lease) error {
	name, vm := l.Tap, l.VM
	link, err := netlink.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up tap device %s: %w", name, err)
	}
	if !ours(link, l.tag()) {
		return nil
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("removing tap device %s of VM %q: %w", name, vm, err)
	}
	return nil
}

// tapExists reports whether a link called name exists.
func tapExists(name string) bool {
	_, err := netlink.LinkByName(name)
	return err == nil
}

// subnetUsers names the interfaces other than l's tap that hold an
// address or a route inside l's subnet (a route covering more than the
// subnet does not count: the subnet's own route is more specific). Such
// an interface is another banger state directory's VM given the same
// subnet while this one's tap did not exist (after a reboot), or another
// program's.
func subnetUsers(l Lease) ([]string, error) {
	self := 0
	if link, err := netlink.LinkByName(l.Tap); err == nil {
		self = link.Attrs().Index
	}
	users := map[int]bool{}
	routes, err := listRoutes(unix.RT_TABLE_UNSPEC)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if p, ok := prefixOfRoute(r); ok && p.Bits() >= l.Subnet.Bits() && l.Subnet.Contains(p.Addr()) && r.LinkIndex != self && r.LinkIndex != 0 {
			users[r.LinkIndex] = true
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("listing host addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok && l.Subnet.Contains(p.Addr()) && a.LinkIndex != self {
			users[a.LinkIndex] = true
		}
	}
	var names []string
	for idx := range users {
		name := fmt.Sprintf("interface #%d", idx)
		if link, err := netlink.LinkByIndex(idx); err == nil {
			name = link.Attrs().Name
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}

func prefixOfRoute(r netlink.Route) (netip.Prefix, bool) {
	if r.Dst == nil || isDefault(r.Dst) {
		return netip.Prefix{}, false
	}
	return prefixOf(r.Dst)
}

// defaultUplink returns the interface of the host's IPv4 default route with
// the lowest metric, or "" when there is none.
func defaultUplink() (string, error) {
	routes, err := listRoutes(unix.RT_TABLE_MAIN)
	if err != nil {
		return "", err
	}
	best, bestPrio := 0, -1
	for _, r := range routes {
		if r.Type != unix.RTN_UNICAST || (r.Dst != nil && !isDefault(r.Dst)) {
			continue
		}
		idx := r.LinkIndex
		if idx == 0 && len(r.MultiPath) > 0 {
			idx = r.MultiPath[0].LinkIndex
		}
		if idx != 0 && (bestPrio < 0 || r.Priority < bestPrio) {
			best, bestPrio = idx, r.Priority
		}
	}
	if best == 0 {
		return "", nil
	}
	link, err := netlink.LinkByIndex(best)
	if err != nil {
		return "", fmt.Errorf("looking up the default route's interface: %w", err)
	}
	return link.Attrs().Name, nil
}

func isDefault(n *net.IPNet) bool {
	ones, _ := n.Mask.Size()
	return ones == 0
}

// hostPrefixes returns every IPv4 prefix already routed or addressed on the
// host (all routing tables, all addresses), default routes excepted.
func hostPrefixes() ([]netip.Prefix, error) {
	routes, err := listRoutes(unix.RT_TABLE_UNSPEC)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, r := range routes {
		if r.Dst != nil && !isDefault(r.Dst) {
			if p, ok := prefixOf(r.Dst); ok {
				out = append(out, p)
			}
		}
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("listing host addresses: %w", err)
	}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	return out, nil
}

// listRoutes dumps the IPv4 routes of table (RT_TABLE_UNSPEC: all tables),
// retrying a dump the kernel interrupted.
func listRoutes(table int) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: table}
	var err error
	for range 5 {
		var routes []netlink.Route
		routes, err = netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
		if err == nil {
			return routes, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("listing host routes: %w", err)
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	a = a.Unmap()
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	return netip.PrefixFrom(a, ones), a.Is4()
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}
}

// enableForwarding switches on IPv4 forwarding; changed reports whether it
// was off.
func enableForwarding() (changed bool, err error) {
	const path = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(path)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return false, nil
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		return false, fmt.Errorf("enabling IPv4 forwarding (%s): %w", path, err)
	}
	return true, nil
}
