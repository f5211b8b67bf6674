package cli

import (
	"context"
	"slices"

	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/kernelstore"
	"github.com/thaloco/banger/internal/progress"
)

// Catalog entry states in `kernel list --available`.
const (
	statusInstalled    = "installed"
	statusNotInstalled = "not installed"
	statusOutdated     = "outdated"
	statusImported     = "imported"
)

func runKernelListAvailable(ctx context.Context, g *globalOptions, opts *kernelListOptions, _ []string) error {
	w := g.Stdout
	cat, err := g.catalog()
	if err != nil {
		return err
	}
	store, err := g.kernelStore()
	if err != nil {
		return err
	}
	if opts.arch != "" {
		cat.Entries = slices.DeleteFunc(cat.Entries, func(e kernelcat.Entry) bool { return e.Arch != opts.arch })
	}
	installed, err := store.List()
	if err != nil {
		return err
	}
	// status says whether e is installed: under its own name, or pulled
	// under another (kernel pull --as), which it returns too.
	status := func(e kernelcat.Entry) (string, string) {
		for _, l := range installed {
			if m := l.Manifest; l.Broken == "" && m.Arch == e.Arch && m.CatalogEntry() == e.Name && m.Name != e.Name {
				if m.TarballSHA256 != e.SHA256 {
					return statusOutdated, m.Name
				}
				return statusInstalled, m.Name
			}
		}
		m, err := store.Get(e.Name)
		switch {
		case err != nil || m.Arch != e.Arch:
			return statusNotInstalled, ""
		case m.Source == kernelstore.SourceImport:
			return statusImported, ""
		case m.TarballSHA256 != e.SHA256:
			return statusOutdated, ""
		}
		return statusInstalled, ""
	}
	if opts.json {
		out := make([]catalogView, 0, len(cat.Entries))
		for _, e := range cat.Entries {
			st, as := status(e)
			out = append(out, toCatalogView(e, st, as))
		}
		return writeJSON(w, out)
	}
	if len(cat.Entries) == 0 && opts.arch != "" {
		return printEmpty(w, opts.arch+" kernels in the catalog", `"banger kernel list --available" lists all of them`)
	}
	if len(cat.Entries) == 0 {
		return printEmpty(w, "kernels in the catalog", `import a kernel you built with "banger kernel import NAME --from DIR --distro D --arch A", `+
			"or point BANGER_CATALOG at a catalog.json (BANGER_KERNEL_MIRROR at a mirror of its tarballs)")
	}
	t := newTable(w, "NAME", "ARCH", "VERSION", "SIZE", "STATUS", "DESCRIPTION")
	for _, e := range cat.Entries {
		st, as := status(e)
		if as != "" {
			st += " as " + as
		}
		t.Row(e.Name, e.Arch, e.KernelVersion, progress.FormatBytes(e.Size), st, e.Description)
	}
	return t.Flush()
}
