package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/thaloco/banger/internal/childproc"
)

// sandboxPath is the PATH of the sandbox's setup (host programs) and of
// the image's programs inside it.
const sandboxPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// sandboxSetup runs as root on the host, inside the new namespaces unshare
// made, with the image's tree as $1. It mounts there a proc of the new pid
// namespace (with the parts that reach the host's kernel settings
// read-only), a read-only sysfs and a small /dev, all gone when the
// namespace is, names the new UTS namespace banger-build, brings up the
// loopback of a new network namespace, and runs $SANDBOX_SCRIPT with the
// image's /bin/sh chrooted in the tree through capsh, which first drops
// the capabilities $SANDBOX_DROP from the bounding set: nothing the image
// runs can regain them.
const sandboxSetup = `set -e
r="$1"; shift
mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
echo banger-build >"$r/proc/sys/kernel/hostname"
for p in sys sysrq-trigger irq bus fs; do
	if [ -e "$r/proc/$p" ]; then
		mount --bind "$r/proc/$p" "$r/proc/$p"
		mount -o remount,bind,ro "$r/proc/$p"
	fi
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
mount -t tmpfs -o mode=0755,size=16m,nosuid dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3; mknod -m 666 "$r/dev/zero" c 1 5; mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8; mknod -m 666 "$r/dev/urandom" c 1 9; mknod -m 666 "$r/dev/tty" c 5 0
ln -s /proc/self/fd "$r/dev/fd"
if [ -z "$SANDBOX_HOST_NET" ]; then ip link set lo up 2>/dev/null || true; fi
capsh=$SANDBOX_CAPSH drop=$SANDBOX_DROP script=$SANDBOX_SCRIPT
unset SANDBOX_CAPSH SANDBOX_DROP SANDBOX_SCRIPT SANDBOX_HOST_NET
exec "$capsh" --drop="$drop" --chroot="$r" --inh= --shell=/bin/sh -- -c "$script" sandbox "$@"
`

// keepCaps are the capabilities the image's programs keep: what dpkg and
// packages' scripts need to own, chmod and setcap files and to change
// users (apt downloads as _apt). That is Docker's default set without
// MKNOD (no cgroup limits devices here), SYS_CHROOT (a second chroot
// leaves the first), NET_RAW, NET_BIND_SERVICE and AUDIT_WRITE. Gone with
// the rest: SYS_ADMIN (mount, namespaces), SYS_MODULE, SYS_RAWIO,
// SYS_PTRACE, DAC_READ_SEARCH (open_by_handle_at), NET_ADMIN, SYS_TIME,
// SYS_BOOT, BPF, ...
var keepCaps = []int{
	unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER, unix.CAP_FSETID, unix.CAP_KILL,
	unix.CAP_SETGID, unix.CAP_SETUID, unix.CAP_SETPCAP, unix.CAP_SETFCAP,
}

// dropCaps lists, by number, every capability this kernel has but
// keepCaps: capsh drops them from the bounding set.
func dropCaps() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return "", fmt.Errorf("reading the kernel's capabilities: %w", err)
	}
	last, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return "", fmt.Errorf("reading the kernel's capabilities: %w", err)
	}
	var drop []string
	for c := 0; c <= last; c++ {
		if !slices.Contains(keepCaps, c) {
			drop = append(drop, strconv.Itoa(c))
		}
	}
	return strings.Join(drop, ","), nil
}

// lookSandboxPath finds name in sandboxPath.
func lookSandboxPath(name, hint string) (string, error) {
	for _, d := range filepath.SplitList(sandboxPath) {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s (hint: %s)", name, sandboxPath, hint)
}

// proxyEnv are the variables that point apt at a proxy; the download
// step passes them on.
var proxyEnv = []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"}

// runSandboxed runs script with the image's /bin/sh, as root chrooted in
// the tree dir, with args as $1..., and returns its combined output. The
// sandbox has its own mount, pid, ipc and UTS namespaces, a network
// namespace of its own (only a loopback) unless hostNet, a fresh /proc
// showing only its own processes, a read-only /sys, a small /dev, and a
// bounding set of keepCaps only; its environment is PATH, HOME, LC_ALL
// and, with hostNet, the host's proxy settings. It all ends with the
// sandbox's first process (unshare --kill-child), which ends with banger
// (childproc).
//
// What it still trusts: the image's programs run as real root with the
// host's kernel and the image tree's files, with write access to the
// tree, and with hostNet reach whatever the host's network reaches.
func runSandboxed(ctx context.Context, dir string, hostNet bool, script string, args ...string) (string, error) {
	capsh, err := lookSandboxPath("capsh", "apt-get install libcap2-bin")
	if err != nil {
		return "", err
	}
	drop, err := dropCaps()
	if err != nil {
		return "", err
	}
	uargs := []string{"--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--ipc", "--uts"}
	env := []string{"PATH=" + sandboxPath, "HOME=/root", "LC_ALL=C.UTF-8",
		"SANDBOX_CAPSH=" + capsh, "SANDBOX_DROP=" + drop, "SANDBOX_SCRIPT=" + script}
	if hostNet {
		env = append(env, "SANDBOX_HOST_NET=1")
		for _, k := range proxyEnv {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
	} else {
		uargs = append(uargs, "--net")
	}
	uargs = append(uargs, "--", "/bin/sh", "-c", sandboxSetup, "sandbox", dir)
	cmd := childproc.Command(ctx, "unshare", append(uargs, args...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err
}
