package imagebuild

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/thaloco/banger/internal/childproc"
	"github.com/thaloco/banger/internal/logtail"
)

// aptScript runs inside the image's chroot: it installs the packages
// given as arguments that the image's apt sources have, and cleans up.
const aptScript = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
pkgs=""
for p in "$@"; do
	if apt-cache show "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; else echo "banger: package $p is not available here, skipped" >&2; fi
done
apt-get install -y -qq --no-install-recommends $pkgs
apt-get clean
rm -rf /var/lib/apt/lists/*
`

// chrootScript prepares a private mount namespace (proc, sys and a small
// /dev, gone when it exits) and runs aptScript in the chroot at $1.
const chrootScript = `set -e
r="$1"; shift
mount -t proc proc "$r/proc"
mount -t sysfs sysfs "$r/sys"
mount -t tmpfs -o mode=0755,size=16m dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3; mknod -m 666 "$r/dev/zero" c 1 5; mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8; mknod -m 666 "$r/dev/urandom" c 1 9; mknod -m 666 "$r/dev/tty" c 5 0
ln -s /proc/self/fd "$r/dev/fd"
exec chroot "$r" /bin/sh -c "$APT_SCRIPT" apt "$@"
`

// installPackages installs pkgs into the Debian-like tree dir with the
// image's own apt, as root in a chroot. It only runs the image's
// programs: build images you trust.
func installPackages(ctx context.Context, dir string, pkgs []string) error {
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

	args := append([]string{"--mount", "--propagation", "private", "--", "/bin/sh", "-c", chrootScript, "chroot", dir}, pkgs...)
	cmd := childproc.Command(ctx, "unshare", args...)
	cmd.Env = append(os.Environ(), "APT_SCRIPT="+aptScript, "LC_ALL=C.UTF-8", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("apt-get install %s in the image failed: %w: %s", strings.Join(pkgs, " "), err, logtail.Quote(out.String(), 8))
	}
	return nil
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
