package imagebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// GuestConfig is what the guest setup bakes into an image.
type GuestConfig struct {
	Hostname      string // the image name
	AuthorizedKey string // banger's SSH public key (authorized_keys line)
	Arch          string // the guest's uname -m: x86_64 (if empty) or arm64
}

// guest writes files into an image tree through an os.Root, replacing
// whatever is there (a symlink included) so nothing is written outside.
type guest struct {
	root *os.Root
	warn []string
}

// setupGuest bakes the banger guest setup into the tree at dir: hostname,
// fstab for /dev/vda, a root autologin getty on the serial console,
// banger's SSH key for root with per-VM host keys, DHCP networking that
// yields to a kernel ip= configuration, sshd enabled, and the reseed
// program VMs restored from a snapshot run. It rewrites the same files
// every time, so it may run again on the same tree. It returns warnings
// for what the image cannot get.
func setupGuest(dir string, cfg GuestConfig) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	g := &guest{root: root}
	steps := []func(GuestConfig) error{g.identity, g.ssh, g.console, g.network, g.restore}
	for _, step := range steps {
		if err := step(cfg); err != nil {
			return nil, fmt.Errorf("guest setup: %w", err)
		}
	}
	return g.warn, nil
}

func (g *guest) exists(p string) bool { _, err := g.root.Lstat(p); return err == nil }

func (g *guest) systemd() bool {
	return g.exists("lib/systemd/systemd") || g.exists("usr/lib/systemd/systemd")
}

// unitPath finds a systemd unit shipped by the image, as the guest sees it.
func (g *guest) unitPath(unit string) string {
	for _, d := range []string{"lib/systemd/system", "usr/lib/systemd/system"} {
		if g.exists(path.Join(d, unit)) {
			return "/" + path.Join(d, unit)
		}
	}
	return ""
}

// write replaces p with a root-owned file holding data.
func (g *guest) write(p, data string, mode os.FileMode) error {
	if err := g.root.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	if err := g.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if err := g.root.RemoveAll(p); err != nil {
			return err
		}
	}
	f, err := g.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if os.Geteuid() == 0 {
		if err := f.Chown(0, 0); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// link replaces p with a symlink to target.
func (g *guest) link(target, p string) error {
	if err := g.root.MkdirAll(path.Dir(p), 0o755); err != nil {
		return err
	}
	if err := g.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return g.root.Symlink(target, p)
}

// enable links unit into target.wants, as systemctl enable would.
func (g *guest) enable(unit, target string) error {
	p := g.unitPath(unit)
	if p == "" {
		if !g.exists("etc/systemd/system/" + unit) {
			return nil
		}
		p = "/etc/systemd/system/" + unit
	}
	return g.link(p, path.Join("etc/systemd/system", target+".wants", unit))
}

func (g *guest) identity(cfg GuestConfig) error {
	if err := g.write("etc/hostname", cfg.Hostname+"\n", 0o644); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n", cfg.Hostname)
	if err := g.write("etc/hosts", hosts, 0o644); err != nil {
		return err
	}
	fstab := "# Written by banger: the root filesystem is the VM's first disk.\n/dev/vda\t/\text4\tdefaults,noatime,errors=remount-ro\t0\t1\n"
	if err := g.write("etc/fstab", fstab, 0o644); err != nil {
		return err
	}
	if g.systemd() {
		// Empty: each VM gets its own machine ID on first boot.
		return g.write("etc/machine-id", "", 0o444)
	}
	return nil
}
