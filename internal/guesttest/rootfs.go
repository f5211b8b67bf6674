package guesttest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/guestinit"
)

// ReadyMarker is the line the test root filesystems print on the serial
// console when their init has set up the system.
const ReadyMarker = "banger-test: ready"

// Rootfs describes a test root filesystem.
type Rootfs struct {
	// AuthorizedKey, when set, adds Debian's dropbear SSH server, started
	// at boot, trusting this authorized_keys line for root.
	AuthorizedKey string
	// SFTP, with AuthorizedKey, adds OpenSSH's sftp-server (Debian's
	// openssh-sftp-server) where dropbear runs its sftp subsystem from,
	// /usr/lib/sftp-server.
	SFTP bool
	// Perl adds Debian's perl interpreter (no modules), as Debian images
	// have it (perl-base).
	Perl bool
	// Init is shell run by /sbin/init after the standard setup and before the
	// ready marker; it may end the boot (e.g. "reboot -f").
	Init string
	// Inittab replaces the default /etc/inittab (a console shell, and
	// Ctrl-Alt-Del reboots).
	Inittab string
	// SizeMiB is the filesystem size; 0 means 32.
	SizeMiB int
	// Arch is the guest architecture: "" or "x86_64" takes the host's
	// busybox and dropbear; "arm64" takes Debian's arm64 packages (see
	// ARM64Debs), whose init also starts busybox's acpid so the power
	// button (QEMU's system_powerdown) powers the guest off.
	Arch string
}

// inittab: a root shell on the console, Ctrl-Alt-Del reboots (QEMU and
// Firecracker then exit).
const inittab = `::ctrlaltdel:/bin/reboot -f
ttyS0::respawn:-/bin/sh
`

const initHead = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
ip link set lo up
if [ -x /usr/sbin/dropbear ]; then /usr/sbin/dropbear -R -p 22; fi
`

// BuildRootfs writes an ext4 image at path holding BuildTree's tree.
func BuildRootfs(t testing.TB, path string, r Rootfs) {
	t.Helper()
	root := BuildTree(t, r)
	size := r.SizeMiB
	if size == 0 {
		size = 32
	}
	_ = os.Remove(path)
	cmd := exec.CommandContext(t.Context(), "mkfs.ext4", "-q", "-F", "-d", root, path, fmt.Sprintf("%dM", size))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
}

// BuildTree makes a root filesystem tree in a temporary directory and
// returns it: Debian's static busybox, an /init that mounts the basics,
// runs r.Init, prints ReadyMarker and hands over to busybox init, banger's
// reseed program (guestinit.InstallFiles), and optionally dropbear.
func BuildTree(t testing.TB, r Rootfs) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"bin", "sbin", "etc/dropbear", "proc", "sys", "dev", "tmp", "root/.ssh", "usr/bin", "usr/sbin", "var/log", "run"} {
		mkdir(t, filepath.Join(root, d))
	}
	arm64 := r.Arch == "arm64"
	var debs string // the arm64 packages, unpacked
	if arm64 {
		debs = UnpackARM64Debs(t)
		copyFile(t, filepath.Join(debs, "bin/busybox"), filepath.Join(root, "bin/busybox"), 0o755)
	} else {
		copyFile(t, "/bin/busybox", filepath.Join(root, "bin/busybox"), 0o755)
	}
	for _, applet := range applets(t) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	// /tmp is everyone's, as on any system: a guest process may run as
	// nobody (banger node runs pods as their image's user).
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	write(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644)
	write(t, root, "etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644)
	write(t, root, "etc/shells", "/bin/sh\n", 0o644)
	tab := inittab
	if r.Inittab != "" {
		tab = r.Inittab
	}
	head := initHead
	guestArch := "x86_64"
	if arm64 {
		tab = strings.ReplaceAll(tab, "ttyS0::", "ttyAMA0::")
		head += "acpid\n"
		guestArch = "arm64"
		mkdir(t, filepath.Join(root, "etc/acpi/PWRF"))
		// -f: the reboot call at once, as the inittab's ctrlaltdel line
		// does; a plain poweroff signals init, which loses the signal when
		// the button is pressed before busybox init has taken over.
		write(t, root, "etc/acpi/PWRF/00000080", "#!/bin/sh\npoweroff -f\n", 0o755)
	}
	write(t, root, "etc/inittab", tab, 0o644)
	init := head + r.Init + "\necho '" + ReadyMarker + "'\nexec /bin/init\n"
	write(t, root, "sbin/init", init, 0o755)
	files, err := guestinit.InstallFiles(guestArch)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		mkdir(t, filepath.Join(root, filepath.Dir(f.Path)))
		write(t, root, f.Path, string(f.Data), f.Mode)
	}
	if (r.SFTP || r.Perl) && arm64 {
		t.Fatal("guesttest: SFTP and Perl are copied from the host, so only into x86_64 root filesystems")
	}
	if r.AuthorizedKey != "" {
		if arm64 {
			addARM64Dropbear(t, debs, root)
		} else {
			addBinary(t, root, "/usr/sbin/dropbear", "/usr/sbin/dropbear", "dropbear-bin")
		}
		if r.SFTP {
			addBinary(t, root, "/usr/lib/openssh/sftp-server", DropbearSFTPServer, "openssh-sftp-server")
		}
		write(t, root, "root/.ssh/authorized_keys", r.AuthorizedKey, 0o600)
	}
	if r.Perl {
		addBinary(t, root, "/usr/bin/perl", "/usr/bin/perl", "perl-base")
	}
	if err := os.Chmod(filepath.Join(root, "root"), 0o700); err != nil {
		t.Fatal(err)
	}
	return root
}

// applets are the applet names of the host's busybox, the same Debian
// package's as the arm64 one (a name the other lacks is a dangling link).
func applets(t testing.TB) []string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), "/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v (hint: install busybox-static)", err)
	}
	return strings.Fields(string(out))
}

var libRE = regexp.MustCompile(`(/\S+\.so[.\d]*)\s`)

// DropbearSFTPServer is the program Debian's dropbear runs for the sftp
// subsystem (its compiled-in SFTPSERVER_PATH).
const DropbearSFTPServer = "/usr/lib/sftp-server"

// addBinary copies the host's program bin to dst in the root filesystem,
// with the shared libraries ldd lists for it; pkg names the Debian package
// that provides bin.
func addBinary(t testing.TB, root, bin, dst, pkg string) {
	t.Helper()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s: %v (hint: install the %s package)", bin, err, pkg)
	}
	mkdir(t, filepath.Join(root, filepath.Dir(dst)))
	copyFile(t, bin, filepath.Join(root, dst), 0o755)
	out, err := exec.CommandContext(t.Context(), "ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	for _, m := range libRE.FindAllStringSubmatch(string(out)+"\n", -1) {
		lib := m[1]
		mkdir(t, filepath.Join(root, filepath.Dir(lib)))
		copyFile(t, lib, filepath.Join(root, lib), 0o755)
	}
}

func mkdir(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, root, name, data string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, name), []byte(data), mode); err != nil {
		t.Fatal(err)
	}
}

// copyFile copies src (following symlinks) to dst.
func copyFile(t testing.TB, src, dst string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}
