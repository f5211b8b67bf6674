package imagebuild

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeApt stands in for the image's apt-get: it records, for each of its
// steps, what a program the image runs sees of the machine. Writing the
// domain name writes back the value it read.
const fakeApt = `#!/bin/sh
case "$*" in
*--download-only*) step=download ;;
update*) step=update ;;
install*) step=install ;;
clean*) step=clean ;;
*) step=other ;;
esac
mkdir -p /seen
{
echo "args=$*"
echo "pids=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
echo "init=$(tr '\0\n' '  ' </proc/1/cmdline)"
echo "hostname=$(cat /proc/sys/kernel/hostname)"
for ns in pid ipc uts net mnt; do echo "ns_$ns=$(readlink /proc/self/ns/$ns)"; done
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "capbnd=$(sed -n 's/^CapBnd:[[:space:]]*//p' /proc/self/status)"
d=$(cat /proc/sys/kernel/domainname)
if (echo "$d" >/proc/sys/kernel/domainname) 2>/dev/null; then echo sysctl=written; else echo sysctl=refused; fi
if mknod /tmp/sandbox-dev b 7 0 2>/dev/null; then echo mknod=made; rm -f /tmp/sandbox-dev; else echo mknod=refused; fi
if mount -t tmpfs t /mnt 2>/dev/null; then echo mount=made; umount /mnt; else echo mount=refused; fi
if chroot / /bin/true 2>/dev/null; then echo chroot=made; else echo chroot=refused; fi
echo "env=$(cat /proc/self/environ | tr '\n\0' ' \n' | cut -d= -f1 | sort | tr '\n' ' ')"
} >"/seen/$step"
`

// busyboxTree is an image tree of Debian's static busybox with fakeApt as
// apt-get and an apt-cache that has every package.
func busyboxTree(t *testing.T) string {
	t.Helper()
	return busyboxTreeFrom(t, "/bin/busybox")
}

// busyboxTreeFrom is busyboxTree with the busybox binary at bin.
func busyboxTreeFrom(t *testing.T, bin string) string {
	t.Helper()
	bb, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("no static busybox to make a test image of (hint: apt-get install busybox-static): %v", err)
	}
	tree := t.TempDir()
	for _, d := range []string{"bin", "usr/bin", "etc", "tmp", "mnt", "proc", "sys", "dev"} {
		must(t, os.MkdirAll(filepath.Join(tree, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(tree, "bin/busybox"), bb, 0o755))
	for _, a := range []string{"sh", "ls", "grep", "tr", "cat", "readlink", "tail", "cut", "sed", "mkdir",
		"mknod", "rm", "mount", "umount", "chroot", "true", "env", "sort"} {
		must(t, os.Symlink("busybox", filepath.Join(tree, "bin", a)))
	}
	must(t, os.WriteFile(filepath.Join(tree, "usr/bin/apt-get"), []byte(fakeApt), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "usr/bin/apt-cache"), []byte("#!/bin/sh\n[ \"$1\" = show ]\n"), 0o755))
	return tree
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestAptSandbox: the apt step runs the image's programs in a sandbox.
// Both steps see their own pid namespace (pid 1 is the sandbox's shell,
// /proc lists only the sandbox's processes), IPC, UTS and mount
// namespaces, a read-only /proc/sys, no capability to mount, make device
// nodes or chroot, and none of banger's environment; only the download
// has the host's network (and proxy settings), the installation, which
// runs the packages' scripts, has a loopback alone.
func TestAptSandbox(t *testing.T) {
	needRoot(t)
	tree := busyboxTree(t)
	t.Setenv("BANGER_TEST_SECRET", "not for the image")
	t.Setenv("http_proxy", "http://proxy.invalid:3128")
	if err := installPackages(context.Background(), tree, []string{"pkg-a", "pkg-b"}, "", ""); err != nil {
		t.Fatal(err)
	}

	hostNS := map[string]string{}
	for _, ns := range []string{"pid", "ipc", "uts", "net", "mnt"} {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		must(t, err)
		hostNS[ns] = l
	}
	hostDevs := netDevs(t)
	hostInit, err := os.ReadFile("/proc/1/cmdline")
	must(t, err)

	for _, step := range []struct {
		name    string
		hostNet bool
		args    string
	}{
		{"update", true, "update -qq"},
		{"download", true, "install -y -qq --no-install-recommends --download-only pkg-a pkg-b"},
		{"install", false, "install -y -qq --no-install-recommends pkg-a pkg-b"},
		{"clean", false, "clean"},
	} {
		t.Run(step.name, func(t *testing.T) {
			seen := readSeen(t, filepath.Join(tree, "seen", step.name))
			if seen["args"] != step.args {
				t.Errorf("apt-get %s, want apt-get %s", seen["args"], step.args)
			}
			for ns, host := range hostNS {
				shared := seen["ns_"+ns] == host
				if want := ns == "net" && step.hostNet; shared != want {
					t.Errorf("%s namespace %s (host's %s): shared with the host %v, want %v", ns, seen["ns_"+ns], host, shared, want)
				}
			}
			pids := strings.Fields(seen["pids"])
			if len(pids) == 0 || pids[0] != "1" || len(pids) > 8 {
				t.Errorf("/proc lists pids %v: want the sandbox's few, from 1", pids)
			}
			if init := seen["init"]; !strings.HasPrefix(init, "/bin/sh -c ") || init == strings.ReplaceAll(string(hostInit), "\x00", " ") {
				t.Errorf("pid 1 is %q: want the sandbox's shell, not the host's init", init)
			}
			if seen["hostname"] != "banger-build" {
				t.Errorf("hostname %q, want banger-build", seen["hostname"])
			}
			wantDevs := "lo"
			if step.hostNet {
				wantDevs = hostDevs
			}
			if seen["netdevs"] != wantDevs {
				t.Errorf("network devices %q, want %q", seen["netdevs"], wantDevs)
			}
			bnd, err := strconv.ParseUint(seen["capbnd"], 16, 64)
			must(t, err)
			for _, c := range []struct {
				name string
				bit  int
				want bool
			}{
				{"CAP_CHOWN", unix.CAP_CHOWN, true}, {"CAP_SETUID", unix.CAP_SETUID, true}, {"CAP_DAC_OVERRIDE", unix.CAP_DAC_OVERRIDE, true},
				{"CAP_SYS_ADMIN", unix.CAP_SYS_ADMIN, false}, {"CAP_MKNOD", unix.CAP_MKNOD, false}, {"CAP_SYS_CHROOT", unix.CAP_SYS_CHROOT, false},
				{"CAP_SYS_MODULE", unix.CAP_SYS_MODULE, false}, {"CAP_SYS_RAWIO", unix.CAP_SYS_RAWIO, false}, {"CAP_SYS_PTRACE", unix.CAP_SYS_PTRACE, false},
				{"CAP_DAC_READ_SEARCH", unix.CAP_DAC_READ_SEARCH, false}, {"CAP_NET_ADMIN", unix.CAP_NET_ADMIN, false}, {"CAP_BPF", unix.CAP_BPF, false},
			} {
				t.Run(c.name, func(t *testing.T) {
					if has := bnd&(1<<c.bit) != 0; has != c.want {
						t.Errorf("bounding set %s: %s %v, want %v", seen["capbnd"], c.name, has, c.want)
					}
				})
			}
			for _, k := range []string{"sysctl", "mknod", "mount", "chroot"} {
				if seen[k] != "refused" {
					t.Errorf("%s: %s, want refused", k, seen[k])
				}
			}
			// The environment is the sandbox's own (and the scripts'):
			// nothing of banger's but the proxy, for the download.
			want := "DEBIAN_FRONTEND HOME LC_ALL PATH PWD SHLVL"
			if step.hostNet {
				want += " http_proxy"
			}
			if seen["env"] != want {
				t.Errorf("environment %q, want %q", seen["env"], want)
			}
		})
	}
}

// readSeen parses fakeApt's key=value record.
func readSeen(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("this apt-get step did not run in the sandbox: %v", err)
	}
	seen := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		seen[k] = strings.TrimSpace(v)
	}
	return seen
}

// netDevs lists this network namespace's devices as fakeApt does.
func netDevs(t *testing.T) string {
	b, err := os.ReadFile("/proc/net/dev")
	must(t, err)
	var devs []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n")[2:] {
		name, _, _ := strings.Cut(line, ":")
		devs = append(devs, strings.TrimSpace(name))
	}
	return strings.Join(devs, " ")
}
