package vm

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/ext4"
)

// Network modes.
const (
	NetUser = "user"
	NetTap  = "tap"
	NetNone = "none"
)

// Host access modes of user networking: what a guest reaches through
// QEMU's user network besides the forwards into it.
const (
	// HostAccessNone: nothing. QEMU's restrict=on isolates the guest:
	// no host service (10.0.2.2 is the host's 127.0.0.1 otherwise, with
	// every other VM's SSH forward), and no outside network or DNS
	// either; forwards into the guest (SSH, -p) keep working.
	HostAccessNone = "none"
	// HostAccessLoopback: QEMU's full user network: outside networks, and
	// every service the host binds on 127.0.0.1, at 10.0.2.2.
	HostAccessLoopback = "loopback"
	// DefaultHostAccess is the safer one.
	DefaultHostAccess = HostAccessNone
)

// Readiness modes: wait for the guest's SSH server, or for a line on its
// serial console.
const (
	ReadySSH     = "ssh"
	ReadyConsole = "console"
)

// MinMemoryMiB is the least memory a VM may have: below it ordinary guest
// kernels and inits run out of memory while booting.
const MinMemoryMiB = 128

// Config is what a VM is made of; it is fixed at creation.
type Config struct {
	Name   string `json:"name"`
	Image  string `json:"image,omitempty"`  // image it was created from, "" for --rootfs
	Kernel string `json:"kernel"`           // installed kernel name
	Rootfs string `json:"rootfs,omitempty"` // file the disk was copied from (--rootfs)
	VMM    string `json:"vmm"`              // "qemu" or "firecracker"
	// Arch is the guest's architecture (package arch); "" in VMs created
	// before banger ran arm64 guests means x86_64.
	Arch string `json:"arch,omitempty"`
	// Jailer runs Firecracker through its jailer (chroot, own uid/gid).
	Jailer bool `json:"jailer,omitempty"`

	CPUs      int   `json:"cpus"`
	MemoryMiB int   `json:"memory_mib"`
	DiskSize  int64 `json:"disk_size"` // what the guest sees
	// Disk is how the VM's disk was made.
	Disk     Disk      `json:"disk,omitzero"`
	Net      string    `json:"net"`
	Forwards []Forward `json:"forwards,omitempty"`
	// HostAccess is HostAccessNone or HostAccessLoopback with --net user,
	// "" otherwise. VMs made before it existed had full access: load
	// reads their "" as HostAccessLoopback.
	HostAccess string `json:"host_access,omitempty"`
	KernelArgs string `json:"kernel_args,omitempty"`

	// Ready is ReadySSH or ReadyConsole; ReadyMarker is the console text
	// that means ready ("" means the kernel starting init).
	Ready       string    `json:"ready"`
	ReadyMarker string    `json:"ready_marker,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Snapshot is the snapshot the VM's first start restores instead of
	// booting (its disk is a copy of the snapshot's).
	Snapshot string `json:"snapshot,omitempty"`

	// The setup banger applies over SSH before a start reports the
	// guest ready (see setup.go).
	Mounts   []Mount  `json:"mounts,omitempty"`
	CopyIns  []CopyIn `json:"copy_ins,omitempty"`
	Hostname string   `json:"hostname,omitempty"`
	SSHKeys  []string `json:"ssh_keys,omitempty"`
	// InitScript: the VM's directory holds an init script, run once, at
	// its first start.
	InitScript bool `json:"init_script,omitempty"`
}

// Forward forwards a host port to a guest port (user networking).
type Forward struct {
	// HostIP is the IPv4 address the host side binds, in canonical
	// dotted-quad form ("0.0.0.0" for every address).
	HostIP    string `json:"host_ip"`
	HostPort  int    `json:"host_port"`
	GuestPort int    `json:"guest_port"`
	Proto     string `json:"proto"`
}

func (f Forward) String() string {
	return fmt.Sprintf("%s:%d->%d/%s", f.HostIP, f.HostPort, f.GuestPort, f.Proto)
}

// ForwardForms is the syntax ParseForward accepts, with examples.
const ForwardForms = "[IPV4:]HOSTPORT:GUESTPORT[/tcp|/udp], e.g. 8080:80, 0.0.0.0:8080:80 or 5353:53/udp"

// ParseForward parses a port forward: [IPV4:]HOSTPORT:GUESTPORT[/tcp|/udp].
// The host address defaults to 127.0.0.1, so forwards are not reachable
// from other machines unless asked for. It must be an IPv4 address in
// dotted-quad form (QEMU's user network forwards IPv4 only); it is stored
// in canonical form.
func ParseForward(s string) (Forward, error) {
	bad := func(why string) (Forward, error) {
		return Forward{}, &ForwardError{Value: s, Reason: why}
	}
	f := Forward{HostIP: "127.0.0.1", Proto: "tcp"}
	rest := s
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		f.Proto = rest[i+1:]
		rest = rest[:i]
		if f.Proto != "tcp" && f.Proto != "udp" {
			return bad("protocol must be tcp or udp")
		}
	}
	parts := strings.Split(rest, ":")
	switch {
	case strings.ContainsAny(rest, "[]"):
		return bad("IPv6 host addresses are not supported: QEMU's user network forwards IPv4 only")
	case len(parts) == 2:
	case len(parts) == 3:
		a, err := parseHostIP(parts[0])
		if err != nil {
			return bad(err.Error())
		}
		f.HostIP, parts = a.String(), parts[1:]
	default:
		return bad("expected two or three ':'-separated fields")
	}
	var err error
	if f.HostPort, err = parsePort(parts[0]); err != nil {
		return bad("host " + err.Error())
	}
	if f.GuestPort, err = parsePort(parts[1]); err != nil {
		return bad("guest " + err.Error())
	}
	return f, nil
}

// ForwardError is a port forward ParseForward refuses.
type ForwardError struct {
	Value  string // as given
	Reason string // what is wrong with it
}

func (e *ForwardError) Error() string {
	return fmt.Sprintf("invalid port forward %q: %s (hint: use %s)", e.Value, e.Reason, ForwardForms)
}

// parseHostIP parses the host address of a forward: IPv4, dotted quad.
func parseHostIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, fmt.Errorf("host address %q is not an IPv4 address", s)
	}
	return a, nil
}

// check verifies a forward read from a VM's config, which older versions
// stored unparsed.
func (f Forward) check() error {
	_, err := parseHostIP(f.HostIP)
	if err == nil {
		_, err = parsePort(strconv.Itoa(f.HostPort))
	}
	if err == nil {
		_, err = parsePort(strconv.Itoa(f.GuestPort))
	}
	if err == nil && f.Proto != "tcp" && f.Proto != "udp" {
		err = fmt.Errorf("protocol %q is not tcp or udp", f.Proto)
	}
	if err != nil {
		return fmt.Errorf("port forward %s: %w", f, err)
	}
	return nil
}

// overlaps reports whether f and g cannot both bind: the same protocol
// and host port, on the same address or with either on every address.
func (f Forward) overlaps(g Forward) bool {
	if f.Proto != g.Proto || f.HostPort != g.HostPort {
		return false
	}
	a, errA := netip.ParseAddr(f.HostIP)
	b, errB := netip.ParseAddr(g.HostIP)
	if errA != nil || errB != nil {
		return f.HostIP == g.HostIP
	}
	return a == b || a.IsUnspecified() || b.IsUnspecified()
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

// ParseMemory parses a memory size: a plain number is MiB ("512"), else a
// size with a unit ("512M", "2G").
func ParseMemory(s string) (int, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if n <= 0 {
			return 0, fmt.Errorf("invalid memory size %q (hint: use e.g. 512M or 2G)", s)
		}
		return n, nil
	}
	b, err := ext4.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("invalid memory size %q (hint: use e.g. 512M or 2G)", s)
	}
	if b%(1<<20) != 0 {
		return 0, fmt.Errorf("memory size %q is not a whole number of MiB", s)
	}
	return int(b >> 20), nil
}

// humanBytes formats n in binary units: 512M, 4G, 1.5G.
func humanBytes(n int64) string {
	units := []string{"", "K", "M", "G", "T"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f == float64(int64(f)) {
		return fmt.Sprintf("%d%s", int64(f), units[i])
	}
	return fmt.Sprintf("%.1f%s", f, units[i])
}
