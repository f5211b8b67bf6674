package imagebuild

import (
	"strings"
)

const autologinDropIn = `# Written by banger: the serial console logs in as root (only the host
# that runs the VM can reach it).
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I $TERM
`

// console puts a root login on the serial console (ttyS0).
func (g *guest) console(GuestConfig) error {
	if g.systemd() {
		if err := g.write("etc/systemd/system/serial-getty@ttyS0.service.d/banger-autologin.conf", autologinDropIn, 0o644); err != nil {
			return err
		}
		if p := g.unitPath("serial-getty@.service"); p != "" {
			return g.link(p, "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service")
		}
		return nil
	}
	data, err := g.root.ReadFile("etc/inittab")
	if err != nil {
		g.warn = append(g.warn, "no systemd and no /etc/inittab: no login on the serial console")
		return nil
	}
	if strings.Contains(string(data), "ttyS0") {
		return nil
	}
	line := "T0:2345:respawn:/sbin/getty -L ttyS0 115200 vt100\n"
	if strings.Contains(string(data), "::") { // busybox init's format
		line = "ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100\n"
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return g.write("etc/inittab", string(data)+line, 0o644)
}
