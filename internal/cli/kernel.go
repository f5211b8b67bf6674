package cli

import (
	"fmt"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/kernelstore"
)

func newKernelCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kernel",
		Short: "Manage kernels: pull from the catalog, import, list, show, remove",
		Long: `Kernels are uncompressed vmlinux images (plus an optional initrd and
modules tree) that microVMs boot. "banger kernel pull" installs a bundle
from the kernel catalog built into banger, verifying its sha256 while it
downloads; "banger kernel import" installs one you built yourself.`,
	}
	cmd.AddCommand(
		newKernelListCommand(g),
		newKernelPullCommand(g),
		newKernelImportCommand(g),
		newKernelShowCommand(g),
		newKernelRmCommand(g),
		newKernelVerifyCommand(g),
	)
	return cmd
}

// kernelStore opens the kernels directory named by the environment.
func (g *globalOptions) kernelStore() (*kernelstore.Store, error) {
	l, err := g.layout()
	if err != nil {
		return nil, err
	}
	return kernelstore.NewWithOptions(l.KernelsDir, kernelstore.Options{Step: crashAt(g.Getenv("BANGER_TEST_CRASH_AT"))}), nil
}

// crashAt is a test hook: with BANGER_TEST_CRASH_AT=<step> (a
// kernelstore.Step* name) banger kills itself with SIGKILL when an install
// reaches that step, exactly as a crash there would end it. Unset, it does
// nothing.
func crashAt(step string) func(string) {
	if step == "" {
		return nil
	}
	return func(s string) {
		if s == step {
			// SIGKILL to itself: the process dies before the call returns.
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// catalog loads the catalog in effect and, when it is not the embedded
// one, says so once on stderr, with a warning for each entry it skips.
func (g *globalOptions) catalog() (*kernelcat.Catalog, error) {
	c, err := kernelcat.Load(g.Getenv)
	if err != nil {
		return nil, err
	}
	if c.Source != "embedded" {
		fmt.Fprintf(g.Stderr, "banger: using kernel catalog %s (BANGER_CATALOG)\n", c.Source)
	}
	for _, s := range c.Skipped {
		fmt.Fprintf(g.Stderr, "banger: warning: kernel catalog %s: skipping %s\n", c.Source, s)
	}
	if m := g.Getenv("BANGER_KERNEL_MIRROR"); m != "" {
		fmt.Fprintf(g.Stderr, "banger: fetching kernels from mirror %s (BANGER_KERNEL_MIRROR)\n", m)
	}
	return c, nil
}

// archFlag resolves an --arch value (aarch64 and amd64 are accepted),
// defaulting to the host's.
func archFlag(a string) (string, error) {
	if a == "" {
		return arch.Host(), nil
	}
	return arch.Canonical(a)
}
