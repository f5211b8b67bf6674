package netsetup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/thaloco/banger/internal/paths"
)

// Setup gives VM vm its tap device, address, forwarding and NAT, allocating
// a subnet on first use and reusing its lease afterwards. It is idempotent:
// call it before every start, since tap devices do not survive a reboot.
// If a first Setup fails, everything it made is removed again.
func Setup(ctx context.Context, cfg Config, vm string) (Lease, error) {
	cfg, err := cfg.checked()
	if err != nil {
		return Lease{}, err
	}
	if err := paths.ValidateName("vm", vm); err != nil {
		return Lease{}, err
	}
	t, err := checkHost(fmt.Sprintf("tap networking for VM %q", vm))
	if err != nil {
		return Lease{}, err
	}
	lk, err := lock(ctx, cfg)
	if err != nil {
		return Lease{}, fmt.Errorf("setting up network of VM %q: %w", vm, err)
	}
	defer func() { _ = lk.Unlock() }() // closing the lock file cannot lose data

	l, err := readLease(cfg, vm)
	fresh := errors.Is(err, fs.ErrNotExist)
	switch {
	case fresh:
		l, err = allocateLease(cfg, vm)
		if err == nil {
			err = writeLease(cfg, l)
		}
	case err == nil && l.Owner == "":
		l, err = t.migrate(ctx, cfg, l)
	}
	if err != nil {
		return Lease{}, err
	}
	l, err = t.bringUp(ctx, l)
	if err != nil && fresh {
		// Undo even if ctx was cancelled (Ctrl-C), within a bound.
		undoCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := t.teardown(undoCtx, cfg, l); uerr != nil {
			err = errors.Join(err, fmt.Errorf("cleaning up after the failure: %w", uerr))
		}
	}
	if err != nil {
		return Lease{}, err
	}
	return l, nil
}

// allocateLease picks a subnet and tap name for a VM that has no lease.
func allocateLease(cfg Config, vm string) (Lease, error) {
	leases, err := readLeases(cfg)
	if err != nil {
		return Lease{}, err
	}
	taken, err := hostPrefixes()
	if err != nil {
		return Lease{}, err
	}
	subnet, err := allocate(cfg.Pool, vm, leases, taken)
	if err != nil {
		return Lease{}, err
	}
	l := newLease(ownerID(cfg.StateDir), vm, subnet)
	return l, tapFree(l, leases)
}

// tapFree refuses a tap name another lease of the state directory holds.
func tapFree(l Lease, leases []Lease) error {
	for _, o := range leases {
		if o.Tap == l.Tap && o.VM != l.VM {
			return fmt.Errorf("tap device name %s of VM %q is already used by VM %q (hint: choose another VM name)", l.Tap, l.VM, o.VM)
		}
	}
	return nil
}

// checkTapFree is tapFree against the leases in cfg.
func checkTapFree(cfg Config, l Lease) error {
	leases, err := readLeases(cfg)
	if err != nil {
		return err
	}
	return tapFree(l, leases)
}

// bringUp creates or repairs everything lease l needs on the host.
func (t tools) bringUp(ctx context.Context, l Lease) (Lease, error) {
	users, err := subnetUsers(l)
	if err != nil {
		return l, err
	}
	if len(users) > 0 {
		return l, fmt.Errorf("subnet %s of VM %q is in use on this host by %s, perhaps another banger state directory's VM that got it while this one's tap was gone (hint: stop what uses it, or remove VM %q and create it again to get a free subnet)",
			l.Subnet, l.VM, strings.Join(users, ", "), l.VM)
	}
	if err := ensureTap(l); err != nil {
		return l, err
	}
	changed, err := enableForwarding()
	if err != nil {
		return l, err
	}
	if changed {
		l.Notes = append(l.Notes, "switched on IPv4 forwarding on this host (net.ipv4.ip_forward was 0); banger leaves it on")
	}
	if l.Uplink, err = defaultUplink(); err != nil {
		return l, err
	}
	if l.Uplink == "" {
		l.Notes = append(l.Notes, fmt.Sprintf("the host has no default route, so VM %q gets no NAT to outside networks: it can reach only the host at %s", l.VM, l.HostAddr.Addr()))
	}
	// Replaces stale rules, e.g. for an old uplink.
	if err := t.syncRules(ctx, l, rulesFor(l, l.Uplink)); err != nil {
		return l, err
	}
	return l, nil
}

// Teardown removes the tap device, the firewall rules and the lease of VM
// vm. It is idempotent, and it leaves alone anything banger did not create
// for vm in this state directory. IPv4 forwarding stays on.
func Teardown(ctx context.Context, cfg Config, vm string) error {
	cfg, err := cfg.checked()
	if err != nil {
		return err
	}
	if err := paths.ValidateName("vm", vm); err != nil {
		return err
	}
	lk, err := lock(ctx, cfg)
	if err != nil {
		return fmt.Errorf("removing network of VM %q: %w", vm, err)
	}
	defer func() { _ = lk.Unlock() }() // closing the lock file cannot lose data

	l, err := readLease(cfg, vm)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && !tapExists(tapName(ownerID(cfg.StateDir), vm)):
		// Setup writes the lease before it makes anything and Teardown
		// removes it last: without a lease nothing of vm's is left.
		return nil
	default:
		// A lease that cannot be read: what the current naming would
		// have made for vm is found by name and tag.
		l = Lease{VM: vm, Owner: ownerID(cfg.StateDir)}
		l.Tap = tapName(l.Owner, vm)
	}
	t, err := checkHost(fmt.Sprintf("removing the tap network of VM %q", vm))
	if err != nil {
		return err
	}
	return t.teardown(ctx, cfg, l)
}

func (t tools) teardown(ctx context.Context, cfg Config, l Lease) error {
	if l.Owner == "" {
		tap, err := legacyTapOf(l)
		if err != nil {
			return err
		}
		if err := t.removeLegacy(ctx, l, tap, true); err != nil {
			return err
		}
		return removeLease(cfg, l.VM)
	}
	if err := t.deleteRules(ctx, l); err != nil {
		return err
	}
	if err := deleteTap(l); err != nil {
		return err
	}
	return removeLease(cfg, l.VM)
}
