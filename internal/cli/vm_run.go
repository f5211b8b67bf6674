package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/ssh"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/vm"
)

type vmRunOptions struct {
	create  vmCreateOptions
	name    string
	rm      bool
	timeout time.Duration
	timing  bool
}

func newVMRunCommand(g *globalOptions) *cobra.Command {
	var o vmRunOptions
	cmd := &cobra.Command{
		Use:   "run [--name NAME] [--rm] IMAGE [-- COMMAND...]",
		Short: "Create and start a VM, then run a command in it or attach its console",
		Long: `Create a VM from IMAGE (or from --kernel and --rootfs, without IMAGE),
start it and wait until it is ready. With a COMMAND, run it over SSH,
stream its output and exit with its exit status. Without one, attach the
serial console: type Ctrl-] to detach (the VM keeps running), or let the
guest power off.

--rm removes the VM afterwards: when the command ends, the guest powers
off, or you detach. A start that is interrupted (Ctrl-C) leaves no VM.`,
		Example: `  banger vm run --rm golden -- uname -a
  banger vm run --name dev golden
  banger vm run --rm --kernel generic-6.12 --rootfs ./rootfs.ext4 --net none`,
		Args: func(c *cobra.Command, args []string) error {
			pos := args
			if dash := c.ArgsLenAtDash(); dash >= 0 {
				pos = args[:dash]
			}
			want := 1
			if o.create.rootfs != "" || o.create.snapshot != "" {
				want = 0
			}
			if len(pos) != want {
				if want == 0 {
					return &usageError{fmt.Errorf("%s: --rootfs or --snapshot replaces IMAGE, got %d argument(s) before \"--\" (see \"%s --help\")", c.CommandPath(), len(pos), c.CommandPath())}
				}
				return &usageError{fmt.Errorf("%s: expected an IMAGE (and \"--\" before a command), got %d argument(s) (see \"%s --help\")", c.CommandPath(), len(pos), c.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var command []string
			if dash := cmd.ArgsLenAtDash(); dash >= 0 {
				command = args[dash:]
				args = args[:dash]
			}
			if len(args) == 1 {
				o.create.image = args[0]
			}
			o.create.noteChanged(cmd.Flags())
			return runVMRun(cmd.Context(), g, &o, command)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.name, "name", "", "name of the VM (default: IMAGE-<random>)")
	f.BoolVar(&o.rm, "rm", false, "remove the VM when the command ends, the guest powers off, or you detach")
	f.DurationVar(&o.timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for the guest to be ready")
	f.BoolVar(&o.timing, "timing", false, "print the boot timings (on stderr)")
	o.create.addFlags(f, false)
	return cmd
}

func runVMRun(ctx context.Context, g *globalOptions, o *vmRunOptions, command []string) error {
	name := o.name
	if name == "" {
		base := o.create.image
		if base == "" {
			base = o.create.snapshot
		}
		name = defaultRunName(base)
	}
	copts, err := o.create.options(name)
	if err != nil {
		return err
	}
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	v, err := s.Create(ctx, copts)
	if err != nil {
		return err
	}
	remove := func() {
		if err := s.Remove(context.Background(), name, true); err != nil {
			fmt.Fprintf(g.Stderr, "banger: %v\n", err)
		}
	}
	if len(command) > 0 && v.Config.Ready != vm.ReadySSH && v.Config.ReadyMarker == "" {
		remove()
		if v.Config.Net == vm.NetNone {
			return fmt.Errorf("VM %q has no network, so banger cannot run a command in it over SSH (hint: drop --net none, or run without a command to attach the console)", name)
		}
		return fmt.Errorf("the root filesystem of VM %q has no SSH server (no sshd or dropbear), so banger cannot run a command in it (hint: run without a command to attach the console, or use an image with openssh-server)", name)
	}
	// A restore hands over the SSH connection of its identity step: the
	// command runs on it, without a second handshake.
	var conn *ssh.Client
	v, err = s.Start(ctx, name, vm.StartOptions{Timeout: o.timeout, KeepSSH: &conn})
	if conn != nil {
		defer func() { _ = conn.Close() }()
	}
	if err != nil {
		if o.rm || ctx.Err() != nil {
			remove()
			return err
		}
		return fmt.Errorf("%w\n(VM %s is kept: \"banger vm logs %s\" shows its console, \"banger vm rm %s\" removes it)", err, name, name, name)
	}
	if o.timing {
		fmt.Fprintf(g.Stderr, "banger: VM %s boot timings: %s\n", name, formatTimings(v.State.Boot))
	}
	switch {
	case len(command) > 0 && conn != nil:
		err = exitCode(guest.Run(ctx, conn, guest.CommandLine(command), g.Stdin, g.Stdout, g.Stderr))
	case len(command) > 0:
		err = runInGuest(ctx, g, s, name, command)
	default:
		err = attachRun(ctx, g, s, v)
	}
	if o.rm {
		remove()
	}
	return err
}

// runInGuest runs command over SSH; its exit status becomes banger's.
func runInGuest(ctx context.Context, g *globalOptions, s *vm.Store, name string, command []string) error {
	target, err := s.SSH(name)
	if err != nil {
		return err
	}
	return sshExec(ctx, g, target, command, 30*time.Second)
}

// attachRun shows the boot so far and attaches the console until the
// user detaches or the VM stops; a crash is an error.
func attachRun(ctx context.Context, g *globalOptions, s *vm.Store, v *vm.VM) error {
	name := v.Name()
	fmt.Fprintf(g.Stderr, "banger: attached to the console of VM %s; detach with %s\r\n", name, guest.DetachKeyName)
	// The boot so far, then the rest, without a gap between them.
	detached, err := s.Console(ctx, name, g.Stdin, g.Stdout, vm.ConsoleOptions{FromBoot: true})
	if detached {
		fmt.Fprintf(g.Stderr, "\r\nbanger: detached from VM %s\n", name)
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The console ended or could not attach: the VM has probably stopped.
	after, gerr := s.Get(name)
	if gerr != nil {
		return errors.Join(err, gerr)
	}
	switch after.State.Status {
	case vm.StatusCrashed:
		return fmt.Errorf("VM %s crashed: %s", name, after.State.Reason)
	case vm.StatusStopped:
		return nil
	}
	return err
}

// defaultRunName is IMAGE-xxxxxx (or vm-xxxxxx).
func defaultRunName(image string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	base := image
	if base == "" {
		base = "vm"
	}
	if len(base) > 40 {
		base = base[:40]
	}
	return base + "-" + hex.EncodeToString(b)
}
