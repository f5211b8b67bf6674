package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guestinit"
	"github.com/thaloco/banger/internal/logtail"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/sshkey"
	"github.com/thaloco/banger/internal/vmm"
	"golang.org/x/crypto/ssh"
)

// Mount is a host directory shared with the guest over virtio-9p (QEMU).
type Mount struct {
	HostDir  string `json:"host_dir"` // absolute, symlinks resolved
	GuestDir string `json:"guest_dir"`
	ReadOnly bool   `json:"read_only,omitempty"`
	Tag      string `json:"tag"` // the 9p mount tag, "banger0", …
}

func (m Mount) String() string {
	s := m.HostDir + ":" + m.GuestDir
	if m.ReadOnly {
		s += ":ro"
	}
	return s
}

// CopyIn is a host directory copied, at creation, into an ext4 drive of
// the VM's own that the guest mounts read-only at GuestDir.
type CopyIn struct {
	HostDir  string `json:"host_dir"`
	GuestDir string `json:"guest_dir"`
	Drive    string `json:"drive"` // file in the VM's directory, "copyin0.ext4", …
	Label    string `json:"label"` // its ext4 label, "bcopy0", …
}

func (c CopyIn) String() string { return c.HostDir + ":" + c.GuestDir }

// initScriptFile holds the VM's --init-script, copied at creation.
const initScriptFile = "init-script"

// MountForms is the syntax ParseMount accepts.
const MountForms = "HOSTDIR:GUESTDIR[:ro], e.g. ./src:/src or /data:/mnt/data:ro"

// MountError is a --mount or --copy-in value that cannot be used.
type MountError struct {
	Value  string
	Reason string
}

func (e *MountError) Error() string { return fmt.Sprintf("%q: %s", e.Value, e.Reason) }

// guestDirRE is what a guest directory may be: absolute, no white space
// or characters that fstab or the mount options would read otherwise.
var guestDirRE = regexp.MustCompile(`^(/[A-Za-z0-9._+@=-]+)+$`)

// ParseMount parses HOSTDIR:GUESTDIR[:ro|:rw]. The host directory is made
// absolute, its symlinks resolved, and it must be a directory.
func ParseMount(s string) (Mount, error) {
	parts := strings.Split(s, ":")
	m := Mount{}
	switch {
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		m.ReadOnly = parts[2] == "ro"
	case len(parts) != 2:
		return m, &MountError{s, "expected HOSTDIR:GUESTDIR or HOSTDIR:GUESTDIR:ro"}
	}
	host, guestDir, err := parseDirPair(s, parts[0], parts[1])
	if err != nil {
		return m, err
	}
	m.HostDir, m.GuestDir = host, guestDir
	return m, nil
}

// ParseCopyIn parses HOSTDIR:GUESTDIR, as ParseMount.
func ParseCopyIn(s string) (CopyIn, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 2 {
		return CopyIn{}, &MountError{s, "expected HOSTDIR:GUESTDIR (copy-ins are always read-only)"}
	}
	host, guestDir, err := parseDirPair(s, parts[0], parts[1])
	return CopyIn{HostDir: host, GuestDir: guestDir}, err
}

func parseDirPair(s, host, guestDir string) (string, string, error) {
	if host == "" {
		return "", "", &MountError{s, "the host directory is empty"}
	}
	guestDir = filepath.Clean(guestDir)
	if !guestDirRE.MatchString(guestDir) {
		return "", "", &MountError{s, "the guest directory must be an absolute path other than / of letters, digits and ._+@=-"}
	}
	abs, err := filepath.Abs(host)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return "", "", &MountError{s, fmt.Sprintf("host directory: %v", errors.Unwrap(err))}
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", "", &MountError{s, err.Error()}
	}
	if !st.IsDir() {
		return "", "", &MountError{s, abs + " is not a directory"}
	}
	return abs, guestDir, nil
}

// hostnameRE is a hostname: dot-separated labels of letters, digits and
// '-', not starting or ending with '-'.
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$`)

// planSetup checks and fills in the first-boot setup of o into cfg.
func planSetup(cfg *Config, o CreateOptions) error {
	if o.Hostname != "" && (len(o.Hostname) > 253 || !hostnameRE.MatchString(o.Hostname)) {
		return fmt.Errorf("invalid hostname %q: use letters, digits and '-' in dot-separated labels", o.Hostname)
	}
	cfg.Hostname = o.Hostname
	for _, k := range o.SSHKeys {
		pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			return fmt.Errorf("SSH key %q is not one public key line (as in id_ed25519.pub)", clip(k, 40))
		}
		line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		if comment != "" {
			line += " " + comment
		}
		cfg.SSHKeys = append(cfg.SSHKeys, line)
	}
	seen := map[string]string{}
	claim := func(dir, what string) error {
		if prev, ok := seen[dir]; ok {
			return &option.Error{Problem: fmt.Sprintf("guest directory %s is used by both %s and %s", dir, prev, what)}
		}
		seen[dir] = what
		return nil
	}
	for i, m := range o.Mounts {
		if err := claim(m.GuestDir, "{mount} "+m.String()); err != nil {
			return err
		}
		m.Tag = "banger" + strconv.Itoa(i)
		cfg.Mounts = append(cfg.Mounts, m)
	}
	for i, c := range o.CopyIns {
		if err := claim(c.GuestDir, "{copy-in} "+c.String()); err != nil {
			return err
		}
		c.Drive = "copyin" + strconv.Itoa(i) + ".ext4"
		c.Label = "bcopy" + strconv.Itoa(i)
		cfg.CopyIns = append(cfg.CopyIns, c)
	}
	if len(cfg.Mounts) > 0 && cfg.VMM == VMMFirecracker {
		return ErrNoSharedFolders
	}
	cfg.InitScript = o.InitScript != ""
	return nil
}

// hasSetup reports whether cfg has a setup step to run over SSH.
func (c *Config) hasSetup() bool {
	return c.Hostname != "" || len(c.SSHKeys) > 0 || len(c.Mounts) > 0 || len(c.CopyIns) > 0 || c.InitScript
}

// setupFlags names what makes a setup step, for messages.
func (c *Config) setupFlags() string {
	var f []string
	for _, x := range []struct {
		on   bool
		name string
	}{{len(c.Mounts) > 0, "mounts"}, {len(c.CopyIns) > 0, "copy-ins"}, {c.InitScript, "an init script"}, {len(c.SSHKeys) > 0, "SSH keys"}, {c.Hostname != "", "a hostname"}} {
		if x.on {
			f = append(f, x.name)
		}
	}
	return strings.Join(f, ", ")
}

// populateSetup writes the copy-in drives and the init script into the
// VM's (temporary) directory.
func populateSetup(ctx context.Context, v *VM, o CreateOptions) error {
	for _, c := range v.Config.CopyIns {
		u, err := ext4.DirUsage(ctx, c.HostDir)
		if err != nil {
			return fmt.Errorf("copy-in %s: %w", c, err)
		}
		if err := ext4.Make(ctx, filepath.Join(v.Dir, c.Drive), ext4.MakeOptions{Dir: c.HostDir, Size: ext4.DefaultSize(u), Inodes: u.Inodes, Label: c.Label}); err != nil {
			return fmt.Errorf("copy-in %s: %w", c, err)
		}
	}
	if o.InitScript != "" {
		data, err := os.ReadFile(o.InitScript)
		if err != nil {
			return fmt.Errorf("init script: %w", err)
		}
		if err := os.WriteFile(filepath.Join(v.Dir, initScriptFile), data, 0o600); err != nil {
			return fmt.Errorf("init script: %w", err)
		}
	}
	return nil
}

// machineSetup adds v's copy-in drives and shared folders to m.
func machineSetup(v *VM, m *vmm.Machine) {
	for _, c := range v.Config.CopyIns {
		m.Drives = append(m.Drives, vmm.Drive{ID: strings.TrimSuffix(c.Drive, ".ext4"), Path: filepath.Join(v.Dir, c.Drive), ReadOnly: true})
	}
	for _, mt := range v.Config.Mounts {
		m.Shares = append(m.Shares, vmm.Share{Tag: mt.Tag, HostDir: mt.HostDir, ReadOnly: mt.ReadOnly})
	}
}

// SetupError is a failed setup step or init script. Output holds the
// last lines the guest printed.
type SetupError struct {
	What   string // "setup", "init script"
	Status int    // exit status, -1 if it did not report one
	Output string
}

func (e *SetupError) Error() string {
	msg := e.What + " failed"
	if e.Status >= 0 {
		msg = fmt.Sprintf("%s failed (exit %d)", e.What, e.Status)
	}
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}

// DefaultInitScriptTimeout bounds an init script's run.
const DefaultInitScriptTimeout = 15 * time.Minute

// runSetup applies v's setup in the guest over SSH: every start its
// hostname, keys, mounts and copy-ins; the first start its init script.
func (s *Store) runSetup(ctx context.Context, v *VM, c *ssh.Client, timeout time.Duration) error {
	cfg := &v.Config
	p := guestinit.SetupParams{Hostname: cfg.Hostname, SSHKeys: cfg.SSHKeys}
	for _, m := range cfg.Mounts {
		p.Mounts = append(p.Mounts, guestinit.Mount{Tag: m.Tag, Dir: m.GuestDir, ReadOnly: m.ReadOnly})
	}
	for _, ci := range cfg.CopyIns {
		p.CopyIns = append(p.CopyIns, guestinit.CopyIn{Label: ci.Label, Dir: ci.GuestDir})
	}
	var out, errb bytes.Buffer
	code, err := guest.Run(ctx, c, guestinit.SetupCommand(p), nil, &out, &errb)
	if err != nil {
		return fmt.Errorf("setup step: %w", err)
	}
	if code != 0 {
		msg := strings.TrimSpace(errb.String())
		if i := strings.LastIndex(msg, "banger-setup: error: "); i >= 0 {
			msg = msg[i+len("banger-setup: error: "):]
		}
		return &SetupError{What: "setup", Status: code, Output: clip(msg, 300)}
	}
	if !cfg.InitScript || v.State.InitScriptDone {
		return nil
	}
	script, err := os.Open(filepath.Join(v.Dir, initScriptFile))
	if err != nil {
		return fmt.Errorf("init script: %w", err)
	}
	defer script.Close()
	if timeout == 0 {
		timeout = DefaultInitScriptTimeout
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out.Reset()
	errb.Reset()
	if _, err := guest.Run(sctx, c, guestinit.InitScriptCommand(), script, &out, &errb); err != nil {
		if sctx.Err() != nil && ctx.Err() == nil {
			return &SetupError{What: "init script", Status: -1, Output: fmt.Sprintf("still running after %v; last lines: %s", timeout, logtail.Quote(out.String(), 5))}
		}
		return fmt.Errorf("init script: %w", err)
	}
	text := strings.TrimRight(out.String(), "\n")
	i := strings.LastIndex(text, guestinit.InitScriptMarker)
	if i < 0 {
		return &SetupError{What: "init script", Status: -1, Output: "it could not be run: " + logtail.Quote(text+"\n"+errb.String(), 5)}
	}
	status, err := strconv.Atoi(strings.TrimSpace(text[i+len(guestinit.InitScriptMarker):]))
	if err != nil {
		return &SetupError{What: "init script", Status: -1, Output: logtail.Quote(text, 5)}
	}
	if status != 0 {
		return &SetupError{What: "init script", Status: status, Output: logtail.Quote(text[:i], 5)}
	}
	v.State.InitScriptDone = true
	return v.saveState()
}

// setupAfterReady runs v's setup step once the guest is ready, reusing
// *keep when a connection is there, and leaving it in *keep (if keep is
// not nil) for the caller.
func (s *Store) setupAfterReady(ctx context.Context, v *VM, o StartOptions) error {
	if !v.Config.hasSetup() {
		return nil
	}
	var c *ssh.Client
	if o.KeepSSH != nil && *o.KeepSSH != nil {
		c = *o.KeepSSH
	} else {
		kp, err := sshkey.Ensure(s.Layout.SSHDir())
		if err != nil {
			return err
		}
		target := &guest.SSH{Addr: v.sshAddr(), KeyPath: kp.PrivatePath, KnownHosts: v.KnownHosts(), Name: v.Name()}
		wait := o.Timeout
		if wait == 0 {
			wait = DefaultReadyTimeout
		}
		if c, err = target.Connect(ctx, wait); err != nil {
			return fmt.Errorf("reaching the guest over SSH for its setup: %w", err)
		}
		if o.KeepSSH != nil {
			*o.KeepSSH = c
		} else {
			defer func() { _ = c.Close() }()
		}
	}
	err := s.runSetup(ctx, v, c, o.InitScriptTimeout)
	if err != nil && o.KeepSSH != nil && *o.KeepSSH != nil {
		_ = (*o.KeepSSH).Close()
		*o.KeepSSH = nil
	}
	return err
}

// clip shortens s to at most n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
