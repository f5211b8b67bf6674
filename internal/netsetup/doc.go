// Package netsetup builds and removes the host side of banger's tap
// networking: one tap device per VM on a routed /30 carved from a private
// pool, with IPv4 forwarding and NAT to the host's uplink.
//
// Usage:
//
//	cfg, err := netsetup.ConfigFromEnv(os.Getenv, filepath.Join(layout.State, "net"))
//	lease, err := netsetup.Setup(ctx, cfg, "web")  // idempotent; call before each start
//	// give the VMM lease.Tap and lease.MAC; append lease.KernelIPArg() to the
//	// kernel command line; show lease.Notes to the user.
//	err = netsetup.Teardown(ctx, cfg, "web")       // idempotent; call on vm rm
//	leases, err := netsetup.List(cfg)              // e.g. to reap leases of deleted VMs
//
// A state directory is known by its owner ID, OWNER: 8 hex digits of the
// SHA-256 of its path. Everything Setup makes for a VM carries its tag,
// "banger:OWNER:NAME", so that VMs of one name in two state directories
// (say root's with sudo and a user's with sudo -E) never adopt or remove
// each other's. For a VM called NAME, Setup creates:
//   - a persistent tap device "bg-" + up to 5 bytes of NAME + "-" + 6 hex
//     digits of the SHA-256 of OWNER and NAME (at most 15 bytes), owned by
//     the calling user, with the tag as its interface alias;
//   - the /30's first address (.1) on the tap; the guest gets .2 and the
//     host's .1 as its gateway, passed on the kernel command line as
//     ip=GUEST::HOST:255.255.255.252:NAME:eth0:off (Lease.KernelIPArg).
//     banger runs no DNS server, so no DNS server is passed: images configure
//     their own resolver;
//   - net.ipv4.ip_forward=1 (never switched back off: other software on the
//     host may rely on it; a Lease note says when banger switched it on);
//   - iptables rules carrying the tag as their comment, first in the filter
//     FORWARD chain and in this order (so a DROP policy such as Docker's
//     does not drop VM traffic): accept from the tap with the /30 as source
//     out of the default route's interface (the uplink); accept replies
//     (conntrack RELATED,ESTABLISHED) into the tap; drop everything else
//     from the tap (other VMs' taps, other interfaces, other source
//     addresses) and into it (other VMs, connections opened from outside).
//     With them a nat POSTROUTING MASQUERADE rule for the /30 out of the
//     uplink. Without a default route there is no uplink: the VM only
//     reaches the host, and a Lease note says so. Traffic between the host
//     and the guest does not cross FORWARD and is left alone;
//   - a lease file StateDir/leases/NAME.json recording the owner, tap,
//     subnet and MAC, so the VM keeps its address across restarts (even if
//     the pool changes later) and no two VMs ever share a subnet. The lease
//     is written before anything is created and removed only after
//     everything is gone.
//
// Setup and Teardown hold a host-wide flock, RunDir/net.lock
// (/run/banger, created 0700), while they read leases and change the
// host, so concurrent "vm create"s, of one state directory or several,
// never allocate one subnet twice. A non-root process holding
// CAP_NET_ADMIN cannot create RunDir and locks StateDir/lock instead.
//
// A repeated Setup re-creates what is missing and moves the egress and
// NAT rules to the current uplink; rules already as wanted are left alone.
// Subnets overlapping an address or route already on the host (any
// routing table) are skipped at allocation; a lease whose subnet another
// interface holds by the time of a later Setup (another state directory's
// VM that got it while this one's tap was gone, as after a reboot) is
// refused with an error naming that interface. Teardown removes the tap
// only if it carries the VM's tag, deletes exactly the iptables rules
// with that tag, and releases the lease; it never touches anything else.
//
// Leases made before owners existed have none: their tap is "bg-NAME"
// (longer names "bg-" + 5 bytes + "-" + 6 hex digits of the name's
// SHA-256) and their tag "banger:NAME", which a VM of that name in another
// state directory shares. Setup moves such a lease to the current naming,
// keeping its subnet and MAC, so the guest keeps its address. It removes
// the old tap only when it carries the old tag and the lease's host
// address and no VMM holds it open, the old FORWARD rules naming that tap
// unless the tap is another state directory's, and the old nat rule of
// the lease's subnet; Teardown of a lease not yet moved does the same.
//
// The pool defaults to DefaultPool (172.30.0.0/16) and is set with the
// environment variable BANGER_NET_POOL (an RFC 1918 IPv4 prefix no longer
// than /30). Setup and Teardown need CAP_NET_ADMIN (root), /dev/net/tun and
// the iptables command (either backend); without them they fail up front
// with an error naming what is missing. A non-root banger holding
// CAP_NET_ADMIN passes it to iptables as an ambient capability.
package netsetup
