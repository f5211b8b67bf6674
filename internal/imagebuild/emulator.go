package imagebuild

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/thaloco/banger/internal/arch"
)

// binfmtDir is where the kernel lists its binfmt_misc handlers.
const binfmtDir = "/proc/sys/fs/binfmt_misc"

// EmulatorError says that the image's programs are built for another
// architecture than the host's and the kernel has no usable binfmt_misc
// handler to run them through user-mode emulation (QEMU's), which apt in
// the image's chroot needs.
type EmulatorError struct {
	Arch   string // the image's architecture (package arch)
	Host   string // the host's
	Reason string // what is missing
}

func (e *EmulatorError) Error() string {
	return fmt.Sprintf("this %s host cannot run the image's %s programs: %s (install qemu-user-static and binfmt-support, then run \"update-binfmts --enable %s\")",
		e.Host, e.Arch, e.Reason, binfmtName(e.Arch))
}

// binfmtName is the handler qemu-user-static registers for a.
func binfmtName(a string) string { return "qemu-" + arch.UName(a) }

// checkEmulator returns nil when programs of architecture a run on this
// host: natively, or through an enabled binfmt_misc handler with the F
// flag (the interpreter opened when it was registered, so it works inside
// the image's chroot, where the interpreter's path does not exist). dir
// lists the handlers; "" is the kernel's binfmt_misc.
func checkEmulator(dir, a string) error {
	if dir == "" {
		dir = binfmtDir
	}
	return checkEmulatorIn(dir, a, arch.Host())
}

func checkEmulatorIn(dir, a, host string) error {
	if a == "" || a == host {
		return nil
	}
	fail := func(format string, args ...any) error {
		return &EmulatorError{Arch: a, Host: host, Reason: fmt.Sprintf(format, args...)}
	}
	if _, err := os.Stat(filepath.Join(dir, "status")); err != nil {
		return fail("binfmt_misc is not mounted on %s (mount -t binfmt_misc binfmt_misc %s)", dir, dir)
	}
	name := binfmtName(a)
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fail("no %s handler is registered in binfmt_misc", name)
	}
	if err != nil {
		return fail("reading its binfmt_misc handler: %v", err)
	}
	lines := strings.Split(string(data), "\n")
	if strings.TrimSpace(lines[0]) != "enabled" {
		return fail("the %s binfmt_misc handler is disabled", name)
	}
	for _, l := range lines {
		if flags, ok := strings.CutPrefix(l, "flags: "); ok && strings.Contains(flags, "F") {
			return nil
		}
	}
	return fail("the %s binfmt_misc handler lacks the F flag, so it cannot run programs inside a chroot", name)
}

// platformArch is the architecture (package arch) of an os/arch[/variant]
// platform, or "" when it names none banger knows.
func platformArch(platform string) string {
	parts := strings.Split(platform, "/")
	if len(parts) < 2 {
		return ""
	}
	a, err := arch.Canonical(parts[1])
	if err != nil {
		return ""
	}
	return a
}
