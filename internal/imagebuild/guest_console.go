package imagebuild

import (
	"strings"

	"github.com/thaloco/banger/internal/arch"
)

const autologinDropIn = `# Written by banger: the serial console logs in as root (only the host
# that runs the VM can reach it).
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I $TERM
`

// serialConsoles are the guest's serial consoles on arch a, the one QEMU
// gives first: on x86_64 both VMMs give an 8250 UART (ttyS0); on arm64
// QEMU's virt machine gives a PL011 (ttyAMA0) and Firecracker an 8250
// (ttyS0).
func serialConsoles(a string) []string {
	if a == arch.ARM64 {
		return []string{"ttyAMA0", "ttyS0"}
	}
	return []string{"ttyS0"}
}

// console puts a root login on the serial console. Under systemd each
// console gets the autologin drop-in; on x86_64 its getty is also enabled,
// on arm64 systemd's getty generator starts the one the kernel's console=
// names (a getty enabled for a UART the machine lacks would wait for it
// for 90 s). Other inits get an inittab line for QEMU's console.
func (g *guest) console(cfg GuestConfig) error {
	ttys := serialConsoles(arch.Or(cfg.Arch, arch.X86_64))
	if g.systemd() {
		for _, tty := range ttys {
			if err := g.write("etc/systemd/system/serial-getty@"+tty+".service.d/banger-autologin.conf", autologinDropIn, 0o644); err != nil {
				return err
			}
		}
		if p := g.unitPath("serial-getty@.service"); p != "" && len(ttys) == 1 {
			return g.link(p, "etc/systemd/system/getty.target.wants/serial-getty@"+ttys[0]+".service")
		}
		return nil
	}
	tty := ttys[0]
	data, err := g.root.ReadFile("etc/inittab")
	if err != nil {
		g.warn = append(g.warn, "no systemd and no /etc/inittab: no login on the serial console")
		return nil
	}
	if strings.Contains(string(data), tty) {
		return nil
	}
	line := "T0:2345:respawn:/sbin/getty -L " + tty + " 115200 vt100\n"
	if strings.Contains(string(data), "::") { // busybox init's format
		line = tty + "::respawn:/sbin/getty -L 115200 " + tty + " vt100\n"
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return g.write("etc/inittab", string(data)+line, 0o644)
}
