package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type kernelVerifyOptions struct{ json bool }

func newKernelVerifyCommand(g *globalOptions) *cobra.Command {
	var o kernelVerifyOptions
	return newVerifyCommand("kernel", `  banger kernel verify
  banger kernel verify generic-6.12 --json`, `Re-read every file of the named installed kernels (all of them without
a name) and compare each with the kernel's manifest: type, mode, size,
sha256, symlink targets, and no file the manifest does not list.
"banger vm start" checks the vmlinux of the kernel it boots the same way.`,
		&o.json, func(cmd *cobra.Command, args []string) error {
			return runKernelVerify(cmd.Context(), g, &o, args)
		})
}

func runKernelVerify(ctx context.Context, g *globalOptions, o *kernelVerifyOptions, names []string) error {
	s, err := g.kernelStore()
	if err != nil {
		return err
	}
	list := func() ([]string, error) { return listingNames(s.List()) }
	return verifyEach(ctx, g, o.json, "kernel", names, list, s.Verify)
}
