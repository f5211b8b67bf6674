package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/thaloco/banger/internal/vm"
)

type vmStartOptions struct {
	timeout time.Duration
	timing  bool
}

func (o *vmStartOptions) addFlags(f *pflag.FlagSet) {
	f.DurationVar(&o.timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for the guest to be ready")
	f.BoolVar(&o.timing, "timing", false, "print the boot timings")
}

func newVMStartCommand(g *globalOptions) *cobra.Command {
	var o vmStartOptions
	cmd := &cobra.Command{
		Use:   "start NAME...",
		Short: "Start VMs and wait until their guests are ready",
		Long: `Start VMs. Each VMM runs detached and keeps running after banger exits;
banger waits until the guest is ready (its SSH server answers, or its
console shows the ready marker). If the guest panics, the VMM dies or the
timeout passes, the VMM is killed and the error quotes the console.`,
		Example: `  banger vm start web
  banger vm start web db --timing`,
		Args:              minArgs(1, "at least one VM name"),
		ValidArgsFunction: completeVMNames(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVMStart(cmd.Context(), g, &o, args)
		},
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func runVMStart(ctx context.Context, g *globalOptions, o *vmStartOptions, names []string) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	return startEach(ctx, g.Stdout, s, o, names)
}

// startEach starts each named VM; every name is tried (until an
// interrupt) and the failures are joined.
func startEach(ctx context.Context, w io.Writer, s *vm.Store, o *vmStartOptions, names []string) error {
	var errs []error
	for _, name := range names {
		v, err := s.Start(ctx, name, vm.StartOptions{Timeout: o.timeout})
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(w, "VM %s is running (ready in %s)%s\n", name, seconds(v.State.Boot.Ready), accessHint(v))
		if o.timing {
			fmt.Fprintf(w, "boot timings: %s\n", formatTimings(v.State.Boot))
		}
	}
	return errors.Join(errs...)
}

// accessHint says how to reach a running VM.
func accessHint(v *vm.VM) string {
	if v.Config.Ready == vm.ReadySSH {
		return fmt.Sprintf("; \"banger vm ssh %s\" opens a shell", v.Name())
	}
	return fmt.Sprintf("; \"banger vm console %s\" attaches its console", v.Name())
}

// seconds formats d as seconds with two decimals, "-" when zero.
func seconds(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// formatTimings prints the boot phases from spawning the VMM.
func formatTimings(t vm.Timings) string {
	return fmt.Sprintf("VMM up %s, kernel %s, init %s, ready %s (from VMM start)",
		seconds(t.VMM), seconds(t.Kernel), seconds(t.Init), seconds(t.Ready))
}
