package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"syscall"

	"github.com/thaloco/banger/internal/netsetup"
	"github.com/thaloco/banger/internal/vmm"
)

// User networking: QEMU's built-in network, whose addresses are fixed.
const (
	userGuestIP = "10.0.2.15"
	userGateway = "10.0.2.2"
	userDNS     = "10.0.2.3"
)

// setupNet prepares v's network for a boot: it fills in m.Net, records the
// addresses in v.State, and returns the kernel ip= argument that
// configures the guest's eth0 without DHCP.
func (s *Store) setupNet(ctx context.Context, v *VM, m *vmm.Machine) (string, error) {
	switch v.Config.Net {
	case NetNone, "":
		m.Net = vmm.Network{Mode: NetNone}
		return "", nil
	case NetUser:
		if err := checkNetForwards(&v.Config); err != nil {
			return "", fmt.Errorf("%w (an older banger stored it unchecked; hint: remove the VM and create it again with valid forwards)", err)
		}
		for _, f := range v.Config.Forwards {
			if err := portFree(ctx, f); err != nil {
				return "", err
			}
		}
		port, err := freePort(ctx, v.Config.Forwards)
		if err != nil {
			return "", err
		}
		fwds := []vmm.Forward{{HostIP: "127.0.0.1", HostPort: port, GuestPort: 22, Proto: "tcp"}}
		for _, f := range v.Config.Forwards {
			fwds = append(fwds, vmm.Forward{HostIP: f.HostIP, HostPort: f.HostPort, GuestPort: f.GuestPort, Proto: f.Proto})
		}
		m.Net = vmm.Network{Mode: NetUser, MAC: userMAC(v.Name()), Forwards: fwds,
			Restrict: v.Config.HostAccess != HostAccessLoopback}
		v.State.SSHPort = port
		return fmt.Sprintf("ip=%s::%s:255.255.255.0:%s:eth0:off:%s", userGuestIP, userGateway, v.Name(), userDNS), nil
	case NetTap:
		cfg, err := s.netConfig()
		if err != nil {
			return "", err
		}
		lease, err := netsetup.Setup(ctx, cfg, v.Name())
		if err != nil {
			return "", err
		}
		for _, n := range lease.Notes {
			s.logf("%s", n)
		}
		m.Net = vmm.Network{Mode: NetTap, Tap: lease.Tap, MAC: lease.MAC}
		v.State.Tap = lease.Tap
		v.State.GuestAddr = lease.GuestAddr.Addr().String()
		v.State.HostAddr = lease.HostAddr.Addr().String()
		return lease.KernelIPArg(), nil
	}
	return "", fmt.Errorf("unknown network mode %q", v.Config.Net)
}

// teardownNet removes what setupNet made that outlives a boot (the tap
// device, its address and rules, its lease).
func (s *Store) teardownNet(ctx context.Context, v *VM) error {
	if v.Config.Net != NetTap {
		return nil
	}
	cfg, err := s.netConfig()
	if err != nil {
		return err
	}
	return netsetup.Teardown(ctx, cfg, v.Name())
}

// netConfig is tap networking's configuration: the pool from the
// environment, leases in the state directory.
func (s *Store) netConfig() (netsetup.Config, error) {
	return netsetup.ConfigFromEnv(s.getenv, s.Layout.NetDir())
}

// lease is VM vm's tap lease.
func (s *Store) lease(vm string) (netsetup.Lease, error) {
	cfg, err := s.netConfig()
	if err != nil {
		return netsetup.Lease{}, err
	}
	ls, err := netsetup.List(cfg)
	if err != nil {
		return netsetup.Lease{}, err
	}
	for _, l := range ls {
		if l.VM == vm {
			return l, nil
		}
	}
	return netsetup.Lease{}, &VMError{Name: vm, Err: ErrNoTapLease}
}

// sshAddr is where the guest's SSH server is reached from the host, ""
// when the VM has no network.
func (v *VM) sshAddr() string {
	switch {
	case v.State.SSHPort != 0:
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(v.State.SSHPort))
	case v.State.GuestAddr != "":
		return net.JoinHostPort(v.State.GuestAddr, "22")
	}
	return ""
}

// GuestIP is the running guest's own address: its tap address, or QEMU's
// fixed user-network address; "" without a network or when not running.
func (v *VM) GuestIP() string {
	switch {
	case !v.State.Status.active():
		return ""
	case v.State.GuestAddr != "":
		return v.State.GuestAddr
	case v.Config.Net == NetUser:
		return userGuestIP
	}
	return ""
}

// SSHAddr is where the running guest's SSH server is reached, "" if the
// VM has no network or is not running.
func (v *VM) SSHAddr() string {
	if !v.State.Status.active() {
		return ""
	}
	return v.sshAddr()
}

// userMAC derives a stable, locally administered MAC from the VM's name
// for user networking (tap networking takes its MAC from the lease).
func userMAC(name string) string { return netsetup.DeriveMAC("banger-user:" + name) }

// freePort returns a TCP port on 127.0.0.1 that nothing listens on and
// none of fwds will bind.
func freePort(ctx context.Context, fwds []Forward) (int, error) {
	for range 10 {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port for SSH: %w", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		ssh := Forward{HostIP: "127.0.0.1", HostPort: port, Proto: "tcp"}
		if !slices.ContainsFunc(fwds, ssh.overlaps) {
			return port, nil
		}
	}
	return 0, errors.New("finding a free port for SSH: the kernel keeps offering ports the VM's forwards bind")
}

// portFree checks that the host side of a forward can be bound.
func portFree(ctx context.Context, f Forward) error {
	addr := net.JoinHostPort(f.HostIP, strconv.Itoa(f.HostPort))
	var lc net.ListenConfig
	var err error
	if f.Proto == "udp" {
		var c net.PacketConn
		if c, err = lc.ListenPacket(ctx, "udp", addr); err == nil {
			_ = c.Close()
		}
	} else {
		var ln net.Listener
		if ln, err = lc.Listen(ctx, "tcp", addr); err == nil {
			_ = ln.Close()
		}
	}
	if err != nil {
		var hint string
		if errors.Is(err, syscall.EADDRINUSE) {
			hint = " (hint: the port is in use; choose another host port with -p, or stop what listens there)"
		}
		return fmt.Errorf("forwarding %s/%s: %w%s", addr, f.Proto, err, hint)
	}
	return nil
}
