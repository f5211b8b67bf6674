package netsetup

import (
	"fmt"
	"net/netip"
)

// allocate picks the lowest /30 of pool that overlaps neither a held lease
// nor a route already on the host (taken).
func allocate(pool netip.Prefix, vm string, leases []Lease, taken []netip.Prefix) (netip.Prefix, error) {
	overlapsRoute := 0
	for cand := netip.PrefixFrom(pool.Addr(), 30); pool.Contains(cand.Addr()); {
		free := true
		for _, l := range leases {
			if l.Subnet.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			for _, r := range taken {
				if r.Overlaps(cand) {
					free = false
					overlapsRoute++
					break
				}
			}
		}
		if free {
			return cand, nil
		}
		next, ok := nextSubnet(cand)
		if !ok {
			break
		}
		cand = next
	}
	return netip.Prefix{}, fmt.Errorf("no free /30 left in network pool %s for VM %q: %d held by other VMs, %d overlap routes already on this host (hint: remove VMs you no longer need with \"banger vm rm\", or set %s to a larger or different private range)",
		pool, vm, len(leases), overlapsRoute, PoolEnv)
}

// nextSubnet returns the /30 after p; ok is false at the end of IPv4.
func nextSubnet(p netip.Prefix) (netip.Prefix, bool) {
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	if n+4 < n {
		return netip.Prefix{}, false
	}
	n += 4
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), 30), true
}
