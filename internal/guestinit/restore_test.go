package guestinit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// shells are the /bin/sh an image may have: the host's (dash on Debian),
// bash, and busybox ash.
var shells = []struct{ name, path string }{
	{"dash", "/bin/dash"},
	{"bash", "/bin/bash"},
	{"ash", "/bin/busybox"},
}

func shellArgs(sh string, args ...string) []string {
	if filepath.Base(sh) == "busybox" {
		return append([]string{sh, "sh"}, args...)
	}
	return append([]string{sh}, args...)
}

func testParams() RestoreParams {
	return RestoreParams{
		Hostname: "web-1",
		MAC:      "02:fc:00:00:00:2a",
		Now:      time.Date(2031, 5, 6, 7, 8, 9, 987654321, time.UTC),
		Seed:     bytes.Repeat([]byte{0xa5}, 32),
	}
}

func TestRestoreCommandParses(t *testing.T) {
	p := testParams()
	p.Hostname = strings.Repeat("a.-_9", 12) // long, and dots for sed
	p.Seed = make([]byte, 64)
	p.MAC = "02:00:00:00:00:01' ; rm -rf / ; '"
	cmd := RestoreCommand(p)
	if len(cmd) > 2048 {
		t.Errorf("the command is %d bytes; keep it well under 4 KiB", len(cmd))
	}
	if strings.Contains(cmd, "\n") {
		t.Errorf("the command spans lines: %q", cmd)
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			argv := shellArgs(sh.path, "-n", "-c", cmd)
			if out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v: %s\n%s", sh.name, err, out, cmd)
			}
		})
	}
}

func TestShellQuote(t *testing.T) {
	words := []string{"", "plain", "a b", "it's", `"$HOME"`, "`id`", "$(id)", "a\nb", `back\slash`, "*", "-n", "'", "; rm -rf /"}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			for _, w := range words {
				argv := shellArgs(sh.path, "-c", "printf %s "+shellQuote(w))
				out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).Output()
				if err != nil || string(out) != w {
					t.Errorf("%q came back as %q (%v)", w, out, err)
				}
			}
		})
	}
}

// TestReseedFallbacks runs the perl and python3 snippets on this host:
// they reseed as root and fail as nobody.
func TestReseedFallbacks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RNDRESEEDCRNG needs root")
	}
	for _, tc := range []struct{ prog, flag, code string }{
		{"perl", "-e", perlReseed},
		{"python3", "-c", pythonReseed},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			prog, err := exec.LookPath(tc.prog)
			if err != nil {
				t.Skipf("%s: %v", tc.prog, err)
			}
			if out, err := exec.CommandContext(t.Context(), prog, tc.flag, tc.code).CombinedOutput(); err != nil {
				t.Errorf("as root: %v: %s", err, out)
			}
			out, err := exec.CommandContext(t.Context(), "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", prog, tc.flag, tc.code).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Errorf("as nobody: want a failure, got %v: %s", err, out)
			}
		})
	}
}

// TestRestoreCommandRuns runs the command in a busybox chroot inside new
// UTS and network namespaces, so hostname and ip change a real (throwaway)
// hostname and a real veth's MAC, the seed goes to the real /dev/urandom
// and the reseed program makes the real ioctl. Only what cannot be done
// for real here is replaced by recording fakes on PATH (see fakeDate).
func TestRestoreCommandRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for chroot, namespaces and mknod")
	}
	const oldMAC = "02:00:00:00:00:99"
	tests := []struct {
		name, shell, date string // date: the fake's parser, "busybox" or "gnu"; "" for none
		edit              func(p *RestoreParams)
		setup             func(t *testing.T, root string)
		want              RestoreResult
		wantWarn          []string
		wantHostname      string // "" means p.Hostname
	}{{
		// A tap clone moves from the snapshot's address to its own; the
		// old one goes two seconds later (the wrapper waits for it).
		name: "dash, new address", shell: "/bin/dash", date: "gnu",
		edit: func(p *RestoreParams) {
			p.Net = &NetChange{Old: "172.16.0.2/30", New: "172.16.0.6/30", Gateway: "172.16.0.5"}
		},
		setup: func(t *testing.T, root string) {
			writeFile(t, root, "run/systemd/network/90-eth0.network",
				"[Match]\nName=eth0\n\n[Address]\nAddress=172.16.0.2/30\n\n[Route]\nGateway=172.16.0.1\n", 0o644)
		},
		want: RestoreResult{OK: true, Reseed: "ioctl", Clock: "ns", Hostname: "set", MAC: "set", Net: "set"},
	}, {
		name: "busybox ash, same address", shell: "/bin/sh",
		edit: func(p *RestoreParams) {
			p.Net = &NetChange{Old: "172.16.0.2/30", New: "172.16.0.2/30", Gateway: "172.16.0.1"}
		},
		want:     RestoreResult{OK: false, Reseed: "ioctl", Clock: "failed", Hostname: "set", MAC: "set", Net: "same"},
		wantWarn: []string{"cannot set the clock"},
	}, {
		// busybox-static's ash runs its own applets before searching
		// PATH, so here the real busybox date runs; without CAP_SYS_TIME
		// (runInGuestRoot drops it) it refuses the fraction, accepts the
		// rounded second and fails to set it.
		name: "busybox ash", shell: "/bin/sh",
		want:     RestoreResult{OK: false, Reseed: "ioctl", Clock: "failed", Hostname: "set", MAC: "set", Net: "kept"},
		wantWarn: []string{"cannot set the clock"},
	}, {
		name: "dash, busybox date", shell: "/bin/dash", date: "busybox",
		want: RestoreResult{OK: true, Reseed: "ioctl", Clock: "s", Hostname: "set", MAC: "set", Net: "kept"},
	}, {
		name: "dash, GNU date, no MAC", shell: "/bin/dash", date: "gnu",
		edit: func(p *RestoreParams) { p.MAC = ""; p.Hostname = "0.a-b_c." },
		want: RestoreResult{OK: true, Reseed: "ioctl", Clock: "ns", Hostname: "set", MAC: "kept", Net: "kept"},
	}, {
		name: "bash, no reseed program, hostile MAC", shell: "/bin/bash", date: "gnu",
		edit: func(p *RestoreParams) { p.MAC = "x'; touch /pwned; '$(touch /pwned)" },
		setup: func(t *testing.T, root string) {
			rm(t, root, ReseedPath)
		},
		want:     RestoreResult{OK: true, Reseed: "none", Clock: "ns", Hostname: "set", MAC: "failed", Net: "kept"},
		wantWarn: []string{"cannot reseed", "cannot set the MAC"},
	}, {
		name: "failing reseed program falls back to perl", shell: "/bin/dash", date: "busybox",
		setup: func(t *testing.T, root string) {
			// Fault injection: a reseed program that fails, and a perl
			// (none in the chroot) that records its arguments; the real
			// perl snippet is run in TestReseedFallbacks.
			writeFile(t, root, ReseedPath, "#!/bin/sh\nexit 1\n", 0o755)
			writeFile(t, root, "fake/perl", "#!/bin/sh\nprintf '%s\\n' \"$@\" >/fake/perl.log\n", 0o755)
		},
		want: RestoreResult{OK: true, Reseed: "perl", Clock: "s", Hostname: "set", MAC: "set", Net: "kept"},
	}, {
		name: "hostname fails", shell: "/bin/dash", date: "busybox",
		setup: func(t *testing.T, root string) {
			// Fault injection: hostname fails, and without /proc the
			// fallback through /proc/sys/kernel/hostname fails too.
			writeFile(t, root, "fake/hostname", "#!/bin/sh\nexit 1\n", 0o755)
		},
		want:         RestoreResult{OK: false, Reseed: "ioctl", Clock: "s", Hostname: "failed", MAC: "set", Net: "kept"},
		wantWarn:     []string{"cannot set the hostname"},
		wantHostname: "snap",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams()
			if tc.edit != nil {
				tc.edit(&p)
			}
			root := guestRoot(t, tc.shell, tc.date)
			if tc.setup != nil {
				tc.setup(t, root)
			}
			wait := "0"
			if tc.want.Net == "set" {
				// The old address goes by a background "sleep 2" in the
				// guest: give it time on a loaded host.
				wait = "30"
			}
			stdout, stderr, rc := runInGuestRoot(t, root, tc.shell, oldMAC, wait, RestoreCommand(p))
			got, err := ParseRestoreResult(stdout)
			if err != nil {
				t.Fatalf("%v\nstdout: %s\nstderr: %s", err, stdout, stderr)
			}
			if got != tc.want {
				t.Errorf("result %+v, want %+v\nstderr: %s", got, tc.want, stderr)
			}
			if (rc == 0) != tc.want.OK {
				t.Errorf("exit status %d with result %+v", rc, got)
			}
			var warns []string
			for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
				if strings.HasPrefix(l, "banger-restore: warning: ") {
					warns = append(warns, l)
				}
			}
			if len(warns) != len(tc.wantWarn) {
				t.Errorf("warnings %q, want ones containing %q", warns, tc.wantWarn)
			}
			for i := range min(len(warns), len(tc.wantWarn)) {
				if !strings.Contains(warns[i], tc.wantWarn[i]) {
					t.Errorf("warning %q, want one containing %q", warns[i], tc.wantWarn[i])
				}
			}

			wantName := p.Hostname
			if tc.wantHostname != "" {
				wantName = tc.wantHostname
			}
			if h := readFile(t, root, "uts.out"); h != wantName+"\n" {
				t.Errorf("hostname %q, want %q", h, wantName)
			}
			if tc.want.Hostname == "set" {
				if h := readFile(t, root, "etc/hostname"); h != p.Hostname+"\n" {
					t.Errorf("/etc/hostname is %q", h)
				}
				wantHosts := "127.0.0.1\tlocalhost\n127.0.1.1 " + p.Hostname + "\n::1\tlocalhost\n"
				if h := readFile(t, root, "etc/hosts"); h != wantHosts {
					t.Errorf("/etc/hosts is %q, want %q", h, wantHosts)
				}
			}
			wantMAC := oldMAC
			if tc.want.MAC == "set" {
				wantMAC = p.MAC
			}
			if l := readFile(t, root, "link.out"); !strings.Contains(l, wantMAC) {
				t.Errorf("eth0 is %q, want MAC %s", l, wantMAC)
			}
			addrs, routes := readFile(t, root, "addr.out"), readFile(t, root, "route.out")
			switch tc.want.Net {
			case "set":
				if !strings.Contains(addrs, "172.16.0.6/30") || !strings.Contains(routes, "default via 172.16.0.5") {
					t.Errorf("after the move eth0 has %q and routes %q", addrs, routes)
				}
				if later := readFile(t, root, "addr-later.out"); strings.Contains(later, "172.16.0.2/30") || !strings.Contains(later, "172.16.0.6/30") {
					t.Errorf("after the move eth0 has %q, want the new address alone", later)
				}
				want := "[Match]\nName=eth0\n\n[Address]\nAddress=172.16.0.6/30\n\n[Route]\nGateway=172.16.0.5\n"
				if got := readFile(t, root, "run/systemd/network/90-eth0.network"); got != want {
					t.Errorf("networkd config %q, want %q", got, want)
				}
			default:
				if !strings.Contains(addrs, "172.16.0.2/30") || strings.Contains(addrs, "172.16.0.6") || !strings.Contains(routes, "default via 172.16.0.1") {
					t.Errorf("eth0 changed without a move: %q, routes %q", addrs, routes)
				}
			}
			if _, err := os.Lstat(filepath.Join(root, "var/lib/systemd/random-seed")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("random-seed not removed: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(root, "pwned")); err == nil {
				t.Error("the MAC escaped its quoting")
			}

			// The clock: GNU date takes the nanoseconds, busybox's takes
			// the rounded second after refusing them.
			if tc.date == "" {
				if !strings.Contains(stderr, "can't set date: Operation not permitted") {
					t.Errorf("busybox date did not accept the rounded second: %s", stderr)
				}
			} else {
				fracArg := fmt.Sprintf("-s @%d.%09d", p.Now.Unix(), p.Now.Nanosecond())
				wantDate := []string{fracArg}
				wantSet := fmt.Sprint(p.Now.Unix())
				if tc.want.Clock == "s" {
					wantDate = append(wantDate, fmt.Sprintf("-s @%d", p.Now.Unix()+1)) // .98s rounds up
					wantSet = fmt.Sprint(p.Now.Unix() + 1)
				}
				if d := readFile(t, root, "fake/date.log"); d != strings.Join(wantDate, "\n")+"\n" {
					t.Errorf("date ran with %q, want %q", d, wantDate)
				}
				if d := readFile(t, root, "fake/date.set"); d != wantSet+"\n" {
					t.Errorf("date set %q, want %s", d, wantSet)
				}
			}
			if tc.want.Reseed == "perl" {
				if a := readFile(t, root, "fake/perl.log"); a != "-e\n"+perlReseed+"\n" {
					t.Errorf("perl ran with %q", a)
				}
			}
		})
	}
}

// fakeDate stands in for date: a test cannot set the host's clock (time
// namespaces do not cover CLOCK_REALTIME). It records its arguments and
// has the real date (busybox's or GNU's) parse the time it was given, so
// it accepts and refuses what that date would.
const fakeDate = `#!/bin/sh
echo "$*" >>/fake/date.log
[ "$1" = -s ] || exit 2
REAL -d "$2" +%s >/fake/date.tmp || exit 1
cat /fake/date.tmp >/fake/date.set
`

// guestRoot builds a chroot tree: busybox with all its applets, shell and
// (for "gnu") GNU date with their libraries, /dev/urandom, the files
// InstallFiles lists, a /etc/hostname and /etc/hosts naming "snap", a
// systemd random seed, and /fake holding fakeDate made to parse times as
// date ("busybox" or "gnu") does.
func guestRoot(t *testing.T, shell, date string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "dev", "etc", "fake", "run/systemd/network", "tmp", "usr/bin", "usr/sbin", "var/lib/systemd"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin/busybox"))
	out, err := exec.CommandContext(t.Context(), "/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v (hint: install busybox-static)", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if shell != "/bin/sh" {
		copyWithLibs(t, root, shell, shell)
	}
	switch date {
	case "busybox":
		writeFile(t, root, "fake/date", strings.Replace(fakeDate, "REAL", "/bin/busybox date", 1), 0o755)
	case "gnu":
		copyWithLibs(t, root, "/usr/bin/date", "/usr/bin/gnu-date")
		writeFile(t, root, "fake/date", strings.Replace(fakeDate, "REAL", "/usr/bin/gnu-date", 1), 0o755)
	}
	if out, err := exec.CommandContext(t.Context(), "mknod", "-m", "666", filepath.Join(root, "dev/urandom"), "c", "1", "9").CombinedOutput(); err != nil {
		t.Fatalf("mknod: %v: %s", err, out)
	}
	files, err := InstallFiles("x86_64")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f.Path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f.Path), f.Data, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, root, "etc/hostname", "snap\n", 0o644)
	writeFile(t, root, "etc/hosts", "127.0.0.1\tlocalhost\n127.0.1.1\tsnap\n::1\tlocalhost\n", 0o644)
	writeFile(t, root, "var/lib/systemd/random-seed", "old", 0o600)
	return root
}

// runInGuestRoot runs cmd as `shell -c cmd` chrooted in root, in new UTS
// and network namespaces holding an eth0 (a veth) with MAC mac, and
// without CAP_SYS_TIME, so that nothing in it can set the host's clock.
// eth0 has 172.16.0.2/30 and a default route via 172.16.0.1. It leaves
// the namespace's hostname in root/uts.out, eth0 in root/link.out, its
// addresses and the routes in addr.out and route.out, and eth0's
// addresses again in addr-later.out once 172.16.0.2 has left eth0 or
// wait seconds have passed, whichever comes first.
func runInGuestRoot(t *testing.T, root, shell, mac, wait, cmd string) (stdout, stderr string, rc int) {
	t.Helper()
	const wrapper = `set -e
ip link add eth0 address "$4" type veth peer name peer0
ip link set peer0 up
ip link set eth0 up
ip addr add 172.16.0.2/30 dev eth0
ip route add default via 172.16.0.1
hostname snap
set +e
setpriv --inh-caps=-sys_time --bounding-set=-sys_time chroot "$1" /usr/bin/env -i PATH=/fake:/bin:/usr/bin $(case "$2" in /bin/sh) echo /bin/busybox sh;; *) echo "$2";; esac) -c "$3"
rc=$?
hostname >"$1/uts.out"
ip -br link show eth0 >"$1/link.out"
ip -4 -o addr show dev eth0 >"$1/addr.out"
ip -4 route >"$1/route.out"
end=$(($(date +%s) + $5))
while ip -4 -o addr show dev eth0 | grep -q ' 172\.16\.0\.2/' && [ "$(date +%s)" -lt "$end" ]; do sleep 0.1; done
ip -4 -o addr show dev eth0 >"$1/addr-later.out"
exit $rc
`
	if err := os.Symlink("../../bin/busybox", filepath.Join(root, "usr/bin/env")); err != nil {
		t.Fatal(err)
	}
	c := exec.CommandContext(t.Context(), "unshare", "--uts", "--net", "sh", "-c", wrapper, "sh", root, shell, cmd, mac, wait)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("unshare: %v: %s", err, errb.String())
	}
	if _, statErr := os.Stat(filepath.Join(root, "link.out")); statErr != nil {
		t.Fatalf("setting up the namespaces: %v: %s", err, errb.String())
	}
	return out.String(), errb.String(), c.ProcessState.ExitCode()
}

var libRE = regexp.MustCompile(`(/\S+\.so[.\d]*)\s`)

// copyWithLibs copies the host binary src to dst in root, with the shared
// libraries ldd lists for it.
func copyWithLibs(t *testing.T, root, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, filepath.Dir(dst)), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, src, filepath.Join(root, dst))
	out, err := exec.CommandContext(t.Context(), "ldd", src).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", src, err)
	}
	for _, m := range libRE.FindAllStringSubmatch(string(out)+"\n", -1) {
		lib := m[1]
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(lib)), 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, lib, filepath.Join(root, lib))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, root, name, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, name)
	_ = os.Remove(p)
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, root, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Error(err)
	}
	return string(data)
}

func rm(t *testing.T, root, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(root, name)); err != nil {
		t.Fatal(err)
	}
}
