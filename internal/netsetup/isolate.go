package netsetup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Isolation holds a VM's tap device in a network namespace of its own,
// where the tap has another host address than its lease's. A guest
// restored from a snapshot still has the address of the VM the snapshot
// was taken of; in the isolation its tap carries that VM's host address,
// so banger can reach the guest at the old address and give it its new
// one without touching any other VM's addresses or routes (the snapshot's
// VM may still run with them, and so may other clones being restored).
// Close moves the tap back and sets it up for its own lease again.
type Isolation struct {
	cfg  Config
	vm   string
	tap  string
	ns   *os.File // the isolation's namespace
	home *os.File // the namespace the tap came from
}

// Isolate moves the tap of VM vm (made by Setup) into a new network
// namespace and gives it the address host there. The caller must Close
// the isolation; if banger dies first, the namespace and the tap in it go
// away with the process.
func Isolate(ctx context.Context, cfg Config, vm string, host netip.Prefix) (*Isolation, error) {
	cfg, err := cfg.checked()
	if err != nil {
		return nil, err
	}
	l, err := readLease(cfg, vm)
	if err != nil {
		return nil, fmt.Errorf("isolating the network of VM %q: %w", vm, err)
	}
	fail := func(err error) (*Isolation, error) {
		return nil, fmt.Errorf("isolating tap device %s of VM %q: %w", l.Tap, vm, err)
	}
	link, err := netlink.LinkByName(l.Tap)
	if err != nil {
		return fail(err)
	}
	if !ours(link, l.tag()) {
		return fail(errors.New("it is not banger's tap for this VM"))
	}
	home, err := currentNetns()
	if err != nil {
		return fail(err)
	}
	ns, err := newNetns()
	if err != nil {
		home.Close()
		return fail(err)
	}
	iso := &Isolation{cfg: cfg, vm: vm, tap: l.Tap, ns: ns, home: home}
	if err := netlink.LinkSetNsFd(link, int(ns.Fd())); err != nil {
		iso.closeFiles()
		return fail(fmt.Errorf("moving it into a private network namespace: %w", err))
	}
	h, err := netlink.NewHandleAt(netns.NsHandle(ns.Fd()))
	if err == nil {
		defer h.Close()
		err = upWithAddr(h, l.Tap, host)
	}
	if err != nil {
		return fail(errors.Join(err, iso.Close(ctx)))
	}
	return iso, nil
}

// upWithAddr gives the link name the address a and brings it up, through h.
func upWithAddr(h *netlink.Handle, name string, a netip.Prefix) error {
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	if err := h.AddrReplace(link, &netlink.Addr{IPNet: ipNet(a)}); err != nil {
		return fmt.Errorf("adding address %s: %w", a, err)
	}
	return h.LinkSetUp(link)
}

// DialContext connects to addr from inside the isolation.
func (i *Isolation) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(i.ns, func() error {
		var (
			d   net.Dialer
			err error
		)
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		return nil, err
	}
	return c, nil
}

// Close moves the tap back where it came from and sets it up for its
// lease again (address, link, firewall rules), as Setup does.
func (i *Isolation) Close(ctx context.Context) error {
	defer i.closeFiles()
	h, err := netlink.NewHandleAt(netns.NsHandle(i.ns.Fd()))
	if err != nil {
		return fmt.Errorf("returning tap device %s of VM %q: %w", i.tap, i.vm, err)
	}
	defer h.Close()
	link, err := h.LinkByName(i.tap)
	if err == nil {
		err = h.LinkSetNsFd(link, int(i.home.Fd()))
	}
	if err != nil {
		return fmt.Errorf("returning tap device %s of VM %q: %w", i.tap, i.vm, err)
	}
	_, err = Setup(ctx, i.cfg, i.vm)
	return err
}

func (i *Isolation) closeFiles() {
	i.ns.Close()
	i.home.Close()
}

// newNetns makes a network namespace with nothing in it and returns a
// file that holds it (it lives until that and every file or process in
// it are gone).
func newNetns() (*os.File, error) {
	var f *os.File
	err := onOwnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating a network namespace: %w", err)
		}
		var err error
		f, err = os.Open("/proc/thread-self/ns/net")
		return err
	})
	if err != nil && f != nil {
		f.Close()
		return nil, err
	}
	return f, err
}

// currentNetns opens the network namespace banger runs in, read from a
// thread of the caller's: /proc/self shows the main thread's, which is
// not always banger's own (see onOwnThread).
func currentNetns() (*os.File, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return os.Open("/proc/thread-self/ns/net")
}

// inNetns runs fn with the calling goroutine's thread in the network
// namespace ns (the sockets fn opens belong there).
func inNetns(ns *os.File, fn func() error) error {
	return onOwnThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering a network namespace: %w", err)
		}
		return fn()
	})
}

// onOwnThread runs fn on a goroutine locked to its thread and afterwards
// puts the thread back into the network namespace it had, so that it
// serves other goroutines from banger's own. That matters for the main
// thread, which Go may pick: it is never ended, so a goroutine that
// leaves it switched and exits leaves it switched for good (and
// /proc/self/ns/net naming the wrong namespace). A thread that cannot
// be put back stays locked and goes away with the goroutine.
func onOwnThread(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		err = fn()
		if serr := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); serr != nil {
			done <- errors.Join(err, fmt.Errorf("returning to banger's network namespace: %w", serr))
			return // still locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}
