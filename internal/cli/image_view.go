package cli

import (
	"github.com/thaloco/banger/internal/image"
)

// imageView is how image list --json and image show --json print an
// image; a broken one has only its name and broken.
type imageView struct {
	Name           string           `json:"name"`
	Broken         string           `json:"broken,omitempty"`
	KernelRef      string           `json:"kernel_ref,omitempty"`
	Source         string           `json:"source,omitempty"`
	RegisteredFrom string           `json:"registered_from,omitempty"`
	ImageRef       string           `json:"image_ref,omitempty"`
	ImageDigest    string           `json:"image_digest,omitempty"`
	Platform       string           `json:"platform,omitempty"`
	Arch           string           `json:"arch,omitempty"`
	OS             string           `json:"os,omitempty"`
	Installed      []string         `json:"installed_packages,omitempty"`
	PackageHash    string           `json:"package_hash,omitempty"`
	Warnings       []string         `json:"warnings,omitempty"`
	Config         *imageConfigView `json:"config,omitempty"`
	RootfsPath     string           `json:"rootfs_path,omitempty"`
	RootfsSize     int64            `json:"rootfs_size,omitempty"`
	RootfsSHA256   string           `json:"rootfs_sha256,omitempty"`
	DiskUsage      int64            `json:"disk_usage,omitempty"`
	CreatedAt      string           `json:"created_at,omitempty"`
}

// imageConfigView is how a built image's OCI config says to run it.
type imageConfigView struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	WorkingDir string   `json:"working_dir,omitempty"`
	User       string   `json:"user,omitempty"`
}

func toImageConfigView(c *image.Config) *imageConfigView {
	if c.IsZero() {
		return nil
	}
	return &imageConfigView{Entrypoint: c.Entrypoint, Cmd: c.Cmd, Env: c.Env, WorkingDir: c.WorkingDir, User: c.User}
}

func toImageView(l image.Listing) imageView {
	if l.Broken != "" {
		return imageView{Name: l.Name, Broken: l.Broken}
	}
	m := l.Manifest
	return imageView{
		Name: m.Name, KernelRef: m.KernelRef, Source: m.Source, RegisteredFrom: m.RegisteredFrom,
		ImageRef: m.ImageRef, ImageDigest: m.ImageDigest, Platform: m.Platform, Arch: m.Architecture(), OS: m.OS,
		Installed: m.Installed, PackageHash: m.PackageHash, Warnings: m.Warnings, Config: toImageConfigView(m.Config),
		RootfsPath: m.RootfsPath(), RootfsSize: m.RootfsSize, RootfsSHA256: m.RootfsSHA256, DiskUsage: m.DiskUsage(),
		CreatedAt: jsonTime(m.CreatedAt),
	}
}
