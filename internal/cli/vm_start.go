package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/vm"
)

func newVMStartCommand(g *globalOptions) *cobra.Command {
	var timeout time.Duration
	var timing bool
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
			return runVMStart(cmd.Context(), g, args, vm.StartOptions{Timeout: timeout}, timing, cmd.OutOrStdout())
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", vm.DefaultReadyTimeout, "how long to wait for the guest to be ready")
	cmd.Flags().BoolVar(&timing, "timing", false, "print the boot timings")
	return cmd
}

func runVMStart(ctx context.Context, g *globalOptions, names []string, o vm.StartOptions, timing bool, w io.Writer) error {
	s, err := g.vmStore()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		v, err := s.Start(ctx, name, o)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(w, "VM %s is running (ready in %s)%s\n", name, seconds(v.State.Boot.Ready), accessHint(v))
		if timing {
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
