package netsetup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// Lease is one VM's share of the pool and the host devices made for it.
type Lease struct {
	VM string `json:"vm"`
	// Owner names the state directory the lease was made in (ownerID).
	// It is part of the tap's name and of the tag on the tap and the
	// firewall rules, so VMs of one name in two state directories never
	// adopt or remove each other's. Leases made before banger did this
	// have none; Setup migrates them.
	Owner string `json:"owner,omitempty"`
	Tap   string `json:"tap"` // host tap device, "bg-…", at most 15 bytes
	// Subnet is the VM's /30; HostAddr (.1, on the tap, the guest's
	// gateway) and GuestAddr (.2) lie in it.
	Subnet    netip.Prefix `json:"subnet"`
	HostAddr  netip.Prefix `json:"-"`
	GuestAddr netip.Prefix `json:"-"`
	MAC       string       `json:"mac"` // the guest's MAC, stable for a VM name
	// Uplink is the interface the VM's traffic is NATed out of, "" when the
	// host had no default route. Set by Setup only (not stored).
	Uplink string `json:"-"`
	// Notes are things the user should know about this Setup (no NAT,
	// forwarding switched on), one sentence each. Set by Setup only.
	Notes []string `json:"-"`
}

// KernelIPArg is the kernel command-line argument that configures the
// guest's eth0 statically at boot (kernel IP autoconfiguration, which needs
// CONFIG_IP_PNP): ip=GUEST::GATEWAY:NETMASK:HOSTNAME:eth0:off. The VM name
// becomes the guest's hostname. No DNS server is set: the host runs none.
func (l Lease) KernelIPArg() string {
	mask := net.IP(net.CIDRMask(l.Subnet.Bits(), 32)).String()
	return fmt.Sprintf("ip=%s::%s:%s:%s:eth0:off", l.GuestAddr.Addr(), l.HostAddr.Addr(), mask, l.VM)
}

// tapName derives the tap device name of VM vm in the state directory
// owner: "bg-", up to 5 bytes of the VM's name, "-" and 6 hex digits of
// the SHA-256 of owner and name, at most IFNAMSIZ-1 (15) bytes.
func tapName(owner, vm string) string {
	sum := sha256.Sum256([]byte(owner + ":" + vm))
	short := vm
	if len(short) > 5 {
		short = short[:5]
	}
	return tapPrefix + short + "-" + hex.EncodeToString(sum[:3])
}

// legacyTapName is the tap name of VM vm in leases made before tap
// names were unique per state directory (Owner ""): "bg-NAME", or for
// names longer than 12 bytes "bg-" + 5 bytes + "-" + 6 hex digits of the
// name's SHA-256.
func legacyTapName(vm string) string {
	if len(vm) <= 12 {
		return tapPrefix + vm
	}
	sum := sha256.Sum256([]byte(vm))
	return tapPrefix + vm[:5] + "-" + hex.EncodeToString(sum[:3])
}

const tapPrefix = "bg-"

// ownerID is the Owner of leases made in stateDir: the first 8 hex digits
// of the SHA-256 of its cleaned path.
func ownerID(stateDir string) string {
	sum := sha256.Sum256([]byte(filepath.Clean(stateDir)))
	return hex.EncodeToString(sum[:4])
}

// tag marks what banger made for l: the tap's alias and the comment on
// its firewall rules, "banger:OWNER:NAME" ("banger:NAME" in a lease
// without an owner). A ':' cannot appear in a VM name, so the two forms
// never meet.
func (l Lease) tag() string {
	if l.Owner == "" {
		return "banger:" + l.VM
	}
	return "banger:" + l.Owner + ":" + l.VM
}

// guestMAC derives a stable, locally administered unicast MAC from a VM name.
func guestMAC(vm string) string { return DeriveMAC("banger:" + vm) }

// DeriveMAC derives a stable, locally administered unicast MAC from key:
// the first six bytes of its SHA-256 with the multicast bit cleared and
// the locally administered bit set.
func DeriveMAC(key string) string {
	sum := sha256.Sum256([]byte(key))
	sum[0] = sum[0]&^1 | 2
	return net.HardwareAddr(sum[:6]).String()
}

// newLease builds the lease of vm in the state directory owner on subnet.
func newLease(owner, vm string, subnet netip.Prefix) Lease {
	l := Lease{VM: vm, Owner: owner, Tap: tapName(owner, vm), Subnet: subnet, MAC: guestMAC(vm)}
	l.fillAddrs()
	return l
}

func (l *Lease) fillAddrs() {
	host := l.Subnet.Addr().Next()
	l.HostAddr = netip.PrefixFrom(host, l.Subnet.Bits())
	l.GuestAddr = netip.PrefixFrom(host.Next(), l.Subnet.Bits())
}

func leasesDir(cfg Config) string { return filepath.Join(cfg.StateDir, "leases") }

func leasePath(cfg Config, vm string) string {
	return filepath.Join(leasesDir(cfg), vm+".json")
}

// readLease loads the lease of vm; it returns an error wrapping
// fs.ErrNotExist when vm has none.
func readLease(cfg Config, vm string) (Lease, error) {
	path := leasePath(cfg, vm)
	b, err := os.ReadFile(path)
	if err != nil {
		return Lease{}, fmt.Errorf("reading lease %s: %w", path, err)
	}
	var l Lease
	if err := json.Unmarshal(b, &l); err != nil {
		return Lease{}, fmt.Errorf("reading lease %s: %w (hint: remove VM %q, or delete the file if the VM is gone)", path, err, vm)
	}
	switch {
	case l.VM != vm, !strings.HasPrefix(l.Tap, tapPrefix), len(l.Tap) > 15, !validOwner(l.Owner),
		!l.Subnet.Addr().Is4(), l.Subnet.Bits() != 30, l.Subnet.Masked() != l.Subnet:
		return Lease{}, fmt.Errorf("reading lease %s: inconsistent contents (hint: remove VM %q, or delete the file if the VM is gone)", path, vm)
	}
	l.fillAddrs()
	return l, nil
}

// validOwner reports whether o is "" or 8 lower-case hex digits.
func validOwner(o string) bool {
	if o == "" {
		return true
	}
	_, err := hex.DecodeString(o)
	return err == nil && len(o) == 8 && strings.ToLower(o) == o
}

// readLeases loads every lease in cfg.StateDir.
func readLeases(cfg Config) ([]Lease, error) {
	entries, err := os.ReadDir(leasesDir(cfg))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing leases: %w", err)
	}
	var leases []Lease
	for _, e := range entries {
		vm, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() {
			continue // temp files of an interrupted write
		}
		l, err := readLease(cfg, vm)
		if err != nil {
			return nil, err
		}
		leases = append(leases, l)
	}
	return leases, nil
}

// List returns the leases currently held in cfg.StateDir, so callers can
// spot leases of VMs that no longer exist (and Teardown them).
func List(cfg Config) ([]Lease, error) {
	cfg, err := cfg.checked()
	if err != nil {
		return nil, err
	}
	return readLeases(cfg)
}

// writeLease stores l atomically: temp file, fsync, rename, fsync the dir.
func writeLease(cfg Config, l Lease) error {
	dir := leasesDir(cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating lease directory: %w", err)
	}
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+l.VM+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing lease of VM %q: %w", l.VM, err)
	}
	tmp := f.Name()
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, leasePath(cfg, l.VM))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing lease of VM %q: %w", l.VM, err)
	}
	return syncDir(dir)
}

// removeLease deletes the lease file of vm, if any.
func removeLease(cfg Config, vm string) error {
	err := os.Remove(leasePath(cfg, vm))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("releasing lease of VM %q: %w", vm, err)
	}
	return syncDir(leasesDir(cfg))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
