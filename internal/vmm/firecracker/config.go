package firecracker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/vmm"
)

// defaultArgs are the kernel arguments x86_64 Firecracker guests need:
// the serial console, reboot through the keyboard controller (so
// Ctrl-Alt-Del and a guest reboot end the Firecracker process), reboot 1s
// after a panic, no PCI probing, and the i8042 driver kept but not probed
// at length. Firecracker itself adds root=/dev/vda and the virtio-mmio
// devices.
const defaultArgs = "console=ttyS0 reboot=k panic=1 pci=off i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"

// arm64Args are those of arm64 guests: Firecracker's aarch64 serial port
// is an 8250 UART in the device tree (ttyS0), and a guest reboot or
// power-off goes through PSCI, which ends Firecracker; there is no i8042,
// and reboot=k means nothing there. The devices come from the device
// tree.
const arm64Args = "console=ttyS0 panic=1 pci=off"

// bootArgs puts the default arguments of m's architecture before m's
// command line, minus the ones it sets itself.
func bootArgs(m vmm.Machine) string {
	if m.Arch == arch.ARM64 {
		return vmm.MergeCmdline(arm64Args, m.Cmdline)
	}
	return vmm.MergeCmdline(defaultArgs, m.Cmdline)
}

// validate checks m before anything is spawned.
func validate(m vmm.Machine) error {
	if err := m.Validate(); err != nil {
		return err
	}
	return validateDevices(m)
}

// What Firecracker cannot do, wrapped by the errors that refuse a machine
// asking for it.
var (
	ErrNeedsKVM        = errors.New("firecracker needs KVM")
	ErrNoSharedFolders = errors.New("firecracker has no shared-folder device")
	ErrRawDisksOnly    = errors.New("firecracker boots raw disks only")
	ErrNoUserNet       = errors.New("firecracker has no user-mode networking")
	ErrJailedSnapshot  = errors.New("snapshots of jailed Firecracker VMs are not supported yet")
)

// validateDevices checks what Firecracker can do of m's vCPUs,
// acceleration and network.
func validateDevices(m vmm.Machine) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("VM %q: "+format, append([]any{m.Name}, a...)...)
	}
	switch {
	case m.Accel != "" && m.Accel != "kvm":
		return bad("%w, not %q", ErrNeedsKVM, m.Accel)
	case m.CPUs < 1 || m.CPUs > 32:
		return bad("firecracker supports 1 to 32 vCPUs, not %d", m.CPUs)
	case len(m.Shares) > 0:
		return bad("%w", ErrNoSharedFolders)
	case m.RootfsFormat != "" && m.RootfsFormat != "raw":
		return bad("%w, not %s", ErrRawDisksOnly, m.RootfsFormat)
	}
	switch m.Net.Mode {
	case "", "none":
	case "tap":
		if m.Net.Tap == "" {
			return bad("tap networking without a tap device name")
		}
	case "user":
		return bad("%w", ErrNoUserNet)
	default:
		return bad("unknown network mode %q (want none or tap)", m.Net.Mode)
	}
	return nil
}

// request is one PUT of the configuration sequence.
type request struct {
	path string
	body any
}

type (
	loggerBody struct {
		LogPath       string `json:"log_path"`
		Level         string `json:"level"`
		ShowLevel     bool   `json:"show_level"`
		ShowLogOrigin bool   `json:"show_log_origin"`
	}
	machineBody struct {
		VCPUs     int   `json:"vcpu_count"`
		MemMiB    int   `json:"mem_size_mib"`
		HTEnabled *bool `json:"ht_enabled,omitempty"` // required before v1.0, unknown since
	}
	bootBody struct {
		Kernel   string `json:"kernel_image_path"`
		BootArgs string `json:"boot_args"`
		Initrd   string `json:"initrd_path,omitempty"`
	}
	driveBody struct {
		ID       string `json:"drive_id"`
		Path     string `json:"path_on_host"`
		Root     bool   `json:"is_root_device"`
		ReadOnly bool   `json:"is_read_only"`
	}
	netBody struct {
		ID      string `json:"iface_id"`
		HostDev string `json:"host_dev_name"`
		MAC     string `json:"guest_mac,omitempty"`
	}
	vsockBody struct {
		ID      string `json:"vsock_id,omitempty"` // required before v1.0, deprecated since
		CID     uint32 `json:"guest_cid"`
		UDSPath string `json:"uds_path"`
	}
	actionBody struct {
		Type string `json:"action_type"`
	}
)

// loggerRequest points Firecracker's log at l's log file.
func loggerRequest(l layout) request {
	return request{"/logger", loggerBody{LogPath: l.logFile, Level: "Info", ShowLevel: true}}
}

// requests is the configuration sequence for m, ending with InstanceStart.
// legacy selects the pre-v1.0 API shapes.
func requests(m vmm.Machine, l layout, cid uint32, legacy bool) []request {
	mc := machineBody{VCPUs: m.CPUs, MemMiB: m.MemoryMiB}
	if legacy {
		mc.HTEnabled = new(bool)
	}
	rs := []request{
		loggerRequest(l),
		{"/machine-config", mc},
		{"/boot-source", bootBody{Kernel: l.kernel, BootArgs: bootArgs(m), Initrd: l.initrd}},
		{"/drives/rootfs", driveBody{ID: "rootfs", Path: l.rootfs, Root: true}},
	}
	for i, d := range m.Drives {
		rs = append(rs, request{"/drives/" + d.ID, driveBody{ID: d.ID, Path: l.drives[i], ReadOnly: d.ReadOnly}})
	}
	if m.Net.Mode == "tap" {
		rs = append(rs, request{"/network-interfaces/eth0", netBody{ID: "eth0", HostDev: m.Net.Tap, MAC: m.Net.MAC}})
	}
	if cid != 0 {
		v := vsockBody{CID: cid, UDSPath: l.vsock}
		if legacy {
			v.ID = "vsock0"
		}
		rs = append(rs, request{"/vsock", v})
	}
	return append(rs, request{"/actions", actionBody{Type: "InstanceStart"}})
}

// configure asks Firecracker its version, then sends the sequence.
func configure(ctx context.Context, c *Client, m vmm.Machine, l layout, cid uint32) error {
	version, err := apiVersion(ctx, c)
	if err != nil {
		return err
	}
	for _, r := range requests(m, l, cid, isLegacy(version)) {
		if err := c.Put(ctx, r.path, r.body); err != nil {
			return err
		}
	}
	return nil
}

// apiVersion is the version Firecracker reports in its instance info,
// e.g. "1.16.1".
func apiVersion(ctx context.Context, c *Client) (string, error) {
	var info struct {
		Version string `json:"vmm_version"`
	}
	if err := c.Get(ctx, "/", &info); err != nil {
		return "", err
	}
	return info.Version, nil
}

// isLegacy reports whether version (e.g. "0.24.6") predates v1.0, whose API
// renamed machine-config's ht_enabled and retired vsock_id.
func isLegacy(version string) bool {
	major, _, _ := strings.Cut(strings.TrimPrefix(version, "v"), ".")
	return major == "0"
}

// atLeast reports whether version (e.g. "v1.16.1", "1.17.0-dev") is
// major.minor or later; a version it cannot read is not.
func atLeast(version string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
