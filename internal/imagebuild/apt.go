package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/thaloco/banger/internal/logtail"
)

// aptFetchScript runs in the image's sandbox with the host's network: it
// updates the package lists and downloads the packages given as arguments
// that the image's apt sources have.
const aptFetchScript = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
pkgs=""
for p in "$@"; do
	if apt-cache show "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; else echo "banger: package $p is not available here, skipped" >&2; fi
done
apt-get install -y -qq --no-install-recommends --download-only $pkgs
`

// aptInstallScript runs in the image's sandbox without a network: it
// installs what aptFetchScript downloaded (the same packages: the lists
// are the same), which runs the packages' maintainer scripts, and cleans
// up.
const aptInstallScript = `set -e
export DEBIAN_FRONTEND=noninteractive
pkgs=""
for p in "$@"; do
	if apt-cache show "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; fi
done
apt-get install -y -qq --no-install-recommends $pkgs
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// installPackages installs pkgs into the Debian-like tree dir with the
// image's own apt, as root in a chroot, in two sandboxed steps (see
// runSandboxed): the download with the host's network, the installation
// (dpkg and the packages' scripts) with none. It runs the image's
// programs (through user-mode emulation when the image is for another
// architecture than the host, see checkEmulator): build images you trust.
func installPackages(ctx context.Context, dir string, pkgs []string, imageArch, binfmtDir string) error {
	if err := checkEmulator(binfmtDir, imageArch); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("installing them runs apt in a chroot, which needs root (hint: run \"banger image build\" as root, or build from an image that already has them, such as images/golden)")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer func() { _ = root.Close() }()
	if _, err := root.Lstat("bin/sh"); err != nil {
		return errors.New("the image has no /bin/sh to run apt with")
	}
	for _, d := range []string{"proc", "sys", "dev"} {
		if err := realDir(root, d); err != nil {
			return err
		}
	}
	restore, err := hostResolvConf(root)
	if err != nil {
		return err
	}
	defer restore()
	undoPolicy, err := denyServiceStarts(root)
	if err != nil {
		return err
	}
	defer undoPolicy()

	list := strings.Join(pkgs, " ")
	if out, err := runSandboxed(ctx, dir, true, aptFetchScript, pkgs...); err != nil {
		return sandboxError(ctx, "apt-get download of "+list, err, out)
	}
	if out, err := runSandboxed(ctx, dir, false, aptInstallScript, pkgs...); err != nil {
		return sandboxError(ctx, "apt-get install "+list, err, out)
	}
	return nil
}

func sandboxError(ctx context.Context, what string, err error, out string) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("%s in the image failed: %w: %s", what, err, logtail.Quote(out, 8))
}

// realDir makes sure name in root is a directory (not a symlink, which a
// mount would follow).
func realDir(root *os.Root, name string) error {
	st, err := root.Lstat(name)
	if err == nil && st.IsDir() {
		return nil
	}
	if err == nil {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return root.Mkdir(name, 0o755)
}

// hostResolvConf puts the host's resolver config into the image for apt
// and returns a function that puts the image's own back.
func hostResolvConf(root *os.Root) (func(), error) {
	const p = "etc/resolv.conf"
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil, fmt.Errorf("reading the host's /etc/resolv.conf for apt: %w", err)
	}
	var saved func()
	if st, err := root.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		target, _ := root.Readlink(p)
		saved = func() { _ = root.Remove(p); _ = root.Symlink(target, p) }
	} else if data, err := root.ReadFile(p); err == nil {
		saved = func() { _ = root.Remove(p); _ = root.WriteFile(p, data, 0o644) }
	} else {
		saved = func() { _ = root.Remove(p) }
	}
	if err := root.MkdirAll("etc", 0o755); err != nil {
		return nil, err
	}
	_ = root.Remove(p)
	if err := root.WriteFile(p, host, 0o644); err != nil {
		return nil, err
	}
	return saved, nil
}

// denyServiceStarts installs a policy-rc.d that stops packages from
// starting services in the chroot.
func denyServiceStarts(root *os.Root) (func(), error) {
	const p = "usr/sbin/policy-rc.d"
	if _, err := root.Lstat(p); err == nil {
		return func() {}, nil
	}
	if err := root.MkdirAll("usr/sbin", 0o755); err != nil {
		return nil, err
	}
	if err := root.WriteFile(p, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return nil, err
	}
	return func() { _ = root.Remove(p) }, nil
}
