package imagebuild

import (
	"path"
	"strings"
)

// keygenUnit makes the host key on first boot. Only ed25519: generating
// RSA and ECDSA keys too takes half a minute in an emulated (TCG) guest.
const keygenUnit = `# Written by banger: every VM gets its own SSH host key on first boot.
[Unit]
Description=Generate the SSH host key
Before=ssh.service sshd.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
`

const sshdDropIn = `# Written by banger: root logs in with banger's key only, and the host
# key is the ed25519 one each VM makes on first boot.
PermitRootLogin prohibit-password
PasswordAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
`

// ssh authorizes banger's key for root and makes sshd start with fresh
// host keys in each VM.
func (g *guest) ssh(cfg GuestConfig) error {
	if err := g.root.MkdirAll("root/.ssh", 0o700); err != nil {
		return err
	}
	if err := g.root.Chmod("root/.ssh", 0o700); err != nil {
		return err
	}
	var keep []string
	if old, err := g.root.ReadFile("root/.ssh/authorized_keys"); err == nil {
		for _, line := range strings.Split(string(old), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] != "banger" {
				keep = append(keep, line)
			}
		}
	}
	keys := strings.Join(append(keep, strings.TrimSpace(cfg.AuthorizedKey)), "\n") + "\n"
	if err := g.write("root/.ssh/authorized_keys", keys, 0o600); err != nil {
		return err
	}
	sshd := g.exists("usr/sbin/sshd") || g.exists("sbin/sshd")
	if !sshd {
		return nil
	}
	if g.exists("etc/ssh/sshd_config.d") {
		if err := g.write("etc/ssh/sshd_config.d/banger.conf", sshdDropIn, 0o644); err != nil {
			return err
		}
	}
	if !g.systemd() {
		return nil
	}
	unit := ""
	for _, u := range []string{"ssh.service", "sshd.service"} {
		if g.unitPath(u) != "" {
			unit = u
			break
		}
	}
	if unit == "" {
		g.warn = append(g.warn, "sshd has no systemd unit in this image: start it yourself")
		return nil
	}
	if err := g.enable(unit, "multi-user.target"); err != nil {
		return err
	}
	// Host keys baked into the image would be shared by every VM.
	matches, _ := g.globHostKeys()
	for _, m := range matches {
		_ = g.root.Remove(m)
	}
	if err := g.write("etc/systemd/system/banger-ssh-keygen.service", keygenUnit, 0o644); err != nil {
		return err
	}
	return g.enable("banger-ssh-keygen.service", "multi-user.target")
}

func (g *guest) globHostKeys() ([]string, error) {
	d, err := g.root.Open("etc/ssh")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, "ssh_host_") && (strings.HasSuffix(n, "_key") || strings.HasSuffix(n, "_key.pub")) {
			out = append(out, path.Join("etc/ssh", n))
		}
	}
	return out, nil
}
