package cli

import (
	"github.com/thaloco/banger/internal/kernelcat"
	"github.com/thaloco/banger/internal/kernelstore"
)

// kernelView is how kernel list --json and kernel show --json print an
// installed kernel; a broken one has only its name and broken. Files
// are listed by show only.
type kernelView struct {
	Name          string           `json:"name"`
	Broken        string           `json:"broken,omitempty"`
	Distro        string           `json:"distro,omitempty"`
	Arch          string           `json:"arch,omitempty"`
	KernelVersion string           `json:"kernel_version,omitempty"`
	Description   string           `json:"description,omitempty"`
	Source        string           `json:"source,omitempty"`
	CatalogName   string           `json:"catalog_name,omitempty"`
	URL           string           `json:"url,omitempty"`
	TarballSHA256 string           `json:"tarball_sha256,omitempty"`
	TarballSize   int64            `json:"tarball_size,omitempty"`
	Size          int64            `json:"size,omitempty"`
	Dir           string           `json:"dir,omitempty"`
	InstalledAt   string           `json:"installed_at,omitempty"`
	Files         []kernelFileView `json:"files,omitempty"`
}

// kernelFileView is one file of an installed kernel.
type kernelFileView struct {
	Path       string `json:"path"`
	Mode       string `json:"mode"`
	Size       int64  `json:"size"`
	SHA256     string `json:"sha256,omitempty"`
	LinkTarget string `json:"link_target,omitempty"`
}

func toKernelView(l kernelstore.Listing, withFiles bool) kernelView {
	if l.Broken != "" {
		return kernelView{Name: l.Name, Broken: l.Broken}
	}
	m := l.Manifest
	v := kernelView{
		Name: m.Name, Distro: m.Distro, Arch: m.Arch, KernelVersion: m.KernelVersion, Description: m.Description,
		Source: m.Source, CatalogName: m.CatalogName, URL: m.URL, TarballSHA256: m.TarballSHA256, TarballSize: m.TarballSize,
		Size: m.Size(), Dir: m.Dir(), InstalledAt: jsonTime(m.InstalledAt),
	}
	if withFiles {
		v.Files = make([]kernelFileView, 0, len(m.Files))
		for _, f := range m.Files {
			v.Files = append(v.Files, kernelFileView{Path: f.Path, Mode: f.Mode, Size: f.Size, SHA256: f.SHA256, LinkTarget: f.LinkTarget})
		}
	}
	return v
}

// catalogView is one catalog entry in kernel list --available --json,
// with whether it is installed.
type catalogView struct {
	Name          string `json:"name"`
	Distro        string `json:"distro"`
	Arch          string `json:"arch"`
	KernelVersion string `json:"kernel_version"`
	URL           string `json:"url"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	Description   string `json:"description"`
	Status        string `json:"status"`
	InstalledAs   string `json:"installed_as,omitempty"`
}

// toCatalogView is e with its status, and the local name it was pulled
// under when that is not its own (kernel pull --as).
func toCatalogView(e kernelcat.Entry, status, installedAs string) catalogView {
	return catalogView{
		Name: e.Name, Distro: e.Distro, Arch: e.Arch, KernelVersion: e.KernelVersion,
		URL: e.URL, SHA256: e.SHA256, Size: e.Size, Description: e.Description, Status: status, InstalledAs: installedAs,
	}
}
