package imagebuild

// dhcpNetwork configures Ethernet NICs with DHCP unless the kernel command
// line has ip=: then systemd-network-generator turns ip= (address, gateway,
// DNS) into /run/systemd/network/90-<dev>.network, or 91-default.network
// when ip= names no device, and networkd applies that instead.
const dhcpNetwork = `# Written by banger: DHCP on Ethernet NICs, unless the kernel command line
# configures the network with ip= (systemd-network-generator then writes the
# equivalent static config to /run/systemd/network/ and networkd uses it).
[Match]
Type=ether
KernelCommandLine=!ip

[Network]
DHCP=ipv4
LinkLocalAddressing=no
IPv6AcceptRA=no
`

// network sets up systemd-networkd (DHCP, or the kernel's ip= config) and
// systemd-resolved for DNS.
func (g *guest) network(GuestConfig) error {
	networkd := g.exists("lib/systemd/systemd-networkd") || g.exists("usr/lib/systemd/systemd-networkd")
	if !g.systemd() || !networkd {
		g.warn = append(g.warn, "no systemd-networkd in the image: configure the network (DHCP on eth0) yourself")
		return nil
	}
	if err := g.write("etc/systemd/network/80-banger-dhcp.network", dhcpNetwork, 0o644); err != nil {
		return err
	}
	for _, e := range []struct{ unit, target string }{
		{"systemd-networkd.service", "multi-user.target"},
		{"systemd-networkd.socket", "sockets.target"},
		{"systemd-network-generator.service", "sysinit.target"},
		{"systemd-resolved.service", "multi-user.target"},
	} {
		if err := g.enable(e.unit, e.target); err != nil {
			return err
		}
	}
	if g.unitPath("systemd-resolved.service") != "" {
		return g.link("../run/systemd/resolve/stub-resolv.conf", "etc/resolv.conf")
	}
	g.warn = append(g.warn, "no systemd-resolved in the image: /etc/resolv.conf is left as it is")
	return nil
}
