// Package imagebuild turns an OCI or Docker image into a banger image: it
// pulls the image (registry, OCI layout or docker save archive), applies
// its layers into a directory tree, installs the Debian base packages a
// guest needs, bakes in the guest setup, and writes the tree as an ext4
// root filesystem with mkfs.ext4 -d. Trees are cached by package hash.
package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/ext4"
	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/progress"
	"github.com/thaloco/banger/internal/stagedir"
)

// Defaults for Options.
const (
	DefaultPlatform = "linux/amd64"
	DefaultKernel   = "generic-6.12"
)

// ErrNoImageRef is returned when Options.ImageRef is empty.
var ErrNoImageRef = errors.New("image build needs an image reference")

// PlatformError says the image Ref is not for the platform Want: it is for
// Have, or (Index) it is an index of images for the platforms in Have.
type PlatformError struct {
	Ref, Want string
	Have      []string
	Index     bool
}

func (e *PlatformError) Error() string {
	if e.Index {
		return fmt.Sprintf("image %q has no %s variant (it has %s)", e.Ref, e.Want, strings.Join(e.Have, ", "))
	}
	return fmt.Sprintf("image %q is for %s, not %s", e.Ref, strings.Join(e.Have, ", "), e.Want)
}

// KernelArchError says the image would be of another architecture than
// the kernel it is to boot with.
type KernelArchError struct{ Kernel, KernelArch, Image, ImageArch string }

func (e *KernelArchError) Error() string {
	return fmt.Sprintf("kernel %q is %s but image %q would be %s", e.Kernel, e.KernelArch, e.Image, e.ImageArch)
}

// Options describe one build.
type Options struct {
	Ref       string // image reference: registry ref, oci:DIR[:TAG], docker-archive:FILE, or a path
	Name      string // name of the new image
	KernelRef string // kernel the image boots with (DefaultKernel if empty)
	Size      int64  // rootfs size in bytes; 0 means ext4.DefaultSize of the content
	// Platform is os/arch[/variant]; aarch64 and x86_64 are accepted for
	// arm64 and amd64. Empty means the kernel's architecture (with
	// KernelArch), else DefaultPlatform.
	Platform string
	Force    bool // replace an existing image of the same name
	// CacheDir holds the build cache (paths.Layout.ImageBuildCacheDir).
	CacheDir string
	// AuthorizedKey is banger's SSH public key, trusted for root.
	AuthorizedKey string
	// CheckKernel returns an error with a hint unless the kernel is
	// installed (kernelstore.Store.Get fits). Nil skips the check.
	CheckKernel func(name string) error
	// KernelArch returns the architecture of an installed kernel (package
	// arch), to default the platform and refuse a kernel of another
	// architecture than the image. Nil skips both.
	KernelArch func(name string) (string, error)
	// Transport for registry requests (nil: ggcr's default).
	Transport http.RoundTripper
	// Log receives progress bars, steps and warnings (nil: quiet).
	Log io.Writer

	// rootless builds as an unprivileged user must (automatic when not
	// root; tests set it to exercise that path as root).
	rootless bool
	// binfmtDir is where binfmt_misc handlers are listed ("" the
	// kernel's, see checkEmulator); tests point it at listings they write.
	binfmtDir string
}

// Build builds the image described by opts into store and returns its
// manifest. Nothing appears under the image's name unless the build
// completes; an interrupted or failed build leaves only hidden
// directories that the next build of that name removes.
func Build(ctx context.Context, store *image.Store, opts Options) (*image.Manifest, error) {
	if err := paths.ValidateName("image", opts.Name); err != nil {
		return nil, err
	}
	if opts.Ref == "" {
		return nil, ErrNoImageRef
	}
	if opts.KernelRef == "" {
		opts.KernelRef = DefaultKernel
	}
	if opts.CheckKernel != nil {
		if err := opts.CheckKernel(opts.KernelRef); err != nil {
			return nil, err
		}
	}
	kernelArch := ""
	if opts.KernelArch != nil {
		a, err := opts.KernelArch(opts.KernelRef)
		if err != nil {
			return nil, err
		}
		kernelArch = a
	}
	if opts.Platform == "" {
		opts.Platform = DefaultPlatform
		if kernelArch != "" {
			opts.Platform = "linux/" + arch.GOARCH(kernelArch)
		}
	}
	platform, err := parsePlatform(opts.Platform)
	if err != nil {
		return nil, err
	}
	imageArch := arch.Or(platform.Architecture, "")
	if kernelArch != "" && imageArch != "" && kernelArch != imageArch {
		return nil, &KernelArchError{Kernel: opts.KernelRef, KernelArch: kernelArch, Image: opts.Name, ImageArch: imageArch}
	}
	log := opts.Log
	if log == nil {
		log = io.Discard
	}
	onWait := func() { fmt.Fprintf(log, "waiting for another banger building image %q...\n", opts.Name) }
	txn, err := store.Begin(ctx, opts.Name, opts.Force, onWait)
	if err != nil {
		return nil, err
	}
	defer txn.Abort()

	src, err := openSource(ctx, opts.Ref, *platform, opts.Transport)
	if err != nil {
		return nil, err
	}
	hash := PackageHash(src.Digest, DebianBasePackages)
	rootless := opts.rootless || os.Geteuid() != 0
	key := hash
	if rootless {
		key += "-rootless" // its tree has other owners
	}
	entry, err := openCache(ctx, opts.CacheDir, key, func() { fmt.Fprintln(log, "waiting for another build of the same image...") })
	if err != nil {
		return nil, err
	}
	defer entry.Release()
	info, ok := entry.Info()
	if ok {
		fmt.Fprintf(log, "using the cached tree of %s (%s)\n", src.Digest, info.OS)
	} else if info, err = populate(ctx, entry, src, rootless, opts.binfmtDir, log); err != nil {
		return nil, diskFull(err, opts.CacheDir)
	}
	warnings := append([]string(nil), info.Warnings...)
	gw, err := setupGuest(entry.Tree(), GuestConfig{Hostname: opts.Name, AuthorizedKey: opts.AuthorizedKey, Arch: guestArch(platform.Architecture)})
	if err != nil {
		return nil, diskFull(err, opts.CacheDir)
	}
	warnings = append(warnings, gw...)
	for _, w := range warnings {
		fmt.Fprintf(log, "warning: %s\n", w)
	}
	if err := writeRootfs(ctx, entry.Tree(), txn.RootfsPath(), opts.Size, rootless, info.Fixups, log); err != nil {
		return nil, diskFull(err, store.Dir())
	}
	m, err := txn.Commit(ctx, &image.Manifest{
		KernelRef: opts.KernelRef, Source: image.SourceBuild,
		ImageRef: opts.Ref, ImageDigest: src.Digest, Platform: src.Platform, Arch: imageArch,
		OS: info.OS, Installed: info.Installed, PackageHash: hash, Warnings: warnings,
		Config: recordedConfig(src.Config),
	})
	return m, diskFull(err, store.Dir())
}

// recordedConfig is the config a manifest records: nil when the image
// says nothing about how to run it.
func recordedConfig(c image.Config) *image.Config {
	if c.IsZero() {
		return nil
	}
	return &c
}

// parsePlatform parses os/arch[/variant], spelling the architecture as OCI
// does: aarch64 is arm64, x86_64 amd64.
func parsePlatform(s string) (*v1.Platform, error) {
	p, err := v1.ParsePlatform(s)
	if err != nil || p.OS == "" || p.Architecture == "" {
		return nil, fmt.Errorf("invalid platform %q (hint: use OS/ARCH such as linux/amd64 or linux/arm64)", s)
	}
	if a, err := arch.Canonical(p.Architecture); err == nil {
		p.Architecture = arch.GOARCH(a)
	}
	return p, nil
}

// populate fills a new cache entry: layers, then base packages.
func populate(ctx context.Context, entry *cacheEntry, src *source, rootless bool, binfmtDir string, log io.Writer) (*cacheInfo, error) {
	tmp, err := entry.Prepare()
	if err != nil {
		return nil, err
	}
	defer func() { _ = stagedir.RemoveAll(tmp) }() // gone already after a successful Commit
	tree := tmp + "/rootfs"
	info := &cacheInfo{Ref: src.Ref, Digest: src.Digest, Platform: src.Platform}
	if info.Fixups, err = pull(ctx, src, tree, rootless, log, &info.Warnings); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(tree)
	if err != nil {
		return nil, err
	}
	defer func() { _ = root.Close() }()
	osr := readOSRelease(root)
	info.OS = osr.String()
	if osr.DebianLike() {
		if missing := missingPackages(root, DebianBasePackages); len(missing) > 0 {
			fmt.Fprintf(log, "%s lacks %s: installing with apt...\n", osr, strings.Join(missing, " "))
			start := time.Now()
			if err := installPackages(ctx, tree, missing, platformArch(src.Platform), binfmtDir); err != nil {
				return nil, fmt.Errorf("image %q is %s and lacks %s; %w", src.Ref, osr, strings.Join(missing, ", "), err)
			}
			still := missingPackages(root, missing)
			for _, p := range missing {
				if !contains(still, p) {
					info.Installed = append(info.Installed, p)
				}
			}
			if len(still) > 0 {
				info.Warnings = append(info.Warnings, fmt.Sprintf("%s not installed: not available from the image's apt sources", strings.Join(still, ", ")))
			}
			fmt.Fprintf(log, "installed %s in %s\n", strings.Join(info.Installed, " "), time.Since(start).Round(time.Second))
		}
	} else if lacks := lacking(root); len(lacks) > 0 {
		info.Warnings = append(info.Warnings, fmt.Sprintf("%s is not Debian or Ubuntu, so banger installed nothing; it lacks %s", osr, strings.Join(lacks, ", ")))
	}
	if err := entry.Commit(tmp, info); err != nil {
		return nil, err
	}
	return info, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// pull applies src's layers, base first, into tree and returns what a
// rootless build must still apply to the image.
func pull(ctx context.Context, src *source, tree string, rootless bool, log io.Writer, warnings *[]string) (fx fixups, err error) {
	layers, err := src.Image.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers of %q: %w", src.Ref, err)
	}
	bar := progress.New(log, fmt.Sprintf("pulling %s (%s, %d layers)", src.Ref, src.Platform, len(layers)), src.Total)
	defer func() { bar.Finish(err) }()
	a, err := newApplier(tree, rootless, func(w string) { *warnings = append(*warnings, w) })
	if err != nil {
		return nil, err
	}
	defer func() { _ = a.Close() }()
	for i, l := range layers {
		if err := applyLayer(ctx, a, src, l, bar); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			d, _ := l.Digest()
			return nil, fmt.Errorf("layer %d/%d (%s) of %q: %w", i+1, len(layers), shortDigest(d.String()), src.Ref, err)
		}
	}
	return a.fix, nil
}

func applyLayer(ctx context.Context, a *applier, src *source, l v1.Layer, bar io.Writer) error {
	rc, err := openLayer(src, l, bar)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := a.Apply(ctx, rc); err != nil {
		return err
	}
	// Read to the end so the digest is checked.
	_, err = io.Copy(io.Discard, rc)
	return err
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

// writeRootfs writes tree as an ext4 image at out with a progress bar,
// then applies the fixups of a rootless build.
func writeRootfs(ctx context.Context, tree, out string, size int64, rootless bool, fx fixups, log io.Writer) error {
	u, err := ext4.DirUsage(ctx, tree)
	if err != nil {
		return err
	}
	if size == 0 {
		size = ext4.DefaultSize(u)
	} else if min := ext4.MinSize(u); size < min {
		return &option.Error{Option: "size", Value: progress.FormatBytes(size),
			Problem: fmt.Sprintf("is too small for %s of content", progress.FormatBytes(u.Bytes)), Hint: fmt.Sprintf("pass at least {size} %dM, or leave {size} out", min>>20)}
	}
	bar := progress.New(log, fmt.Sprintf("writing %s ext4 image", progress.FormatBytes(size)), u.Bytes)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		// Report progress, and start writing what mkfs.ext4 wrote so far
		// to disk so the final fsync has little left to do.
		defer close(done)
		var last int64
		var f *os.File
		defer func() {
			if f != nil {
				f.Close()
			}
		}()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				var st unix.Stat_t
				if unix.Stat(out, &st) == nil && st.Blocks*512 > last {
					bar.Add(st.Blocks*512 - last)
					last = st.Blocks * 512
				}
				if f == nil {
					f, _ = os.Open(out)
				}
				if f != nil {
					_ = unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
				}
			}
		}
	}()
	err = ext4.Make(ctx, out, ext4.MakeOptions{Dir: tree, Size: size, Inodes: u.Inodes, Label: "rootfs", MapRoot: rootless})
	close(stop)
	<-done
	bar.Finish(err)
	if err != nil || len(fx) == 0 {
		return err
	}
	tmp, err := os.MkdirTemp("", "banger-fixups-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cmds, err := fx.commands(tmp)
	if err != nil {
		return err
	}
	if err := ext4.Edit(ctx, out, cmds); err != nil {
		return fmt.Errorf("setting owners and device nodes: %w", err)
	}
	return nil
}

// diskFull adds a hint to out-of-space errors that have none yet.
func diskFull(err error, where string) error {
	if errors.Is(err, syscall.ENOSPC) && !errors.As(err, new(*ext4.NoSpaceError)) {
		return fmt.Errorf("%w (hint: free some space under %s)", err, where)
	}
	return err
}
