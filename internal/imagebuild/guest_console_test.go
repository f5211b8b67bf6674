package imagebuild

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuestConsole: the serial console logs in as root on the console the
// guest's VMM gives for its architecture.
func TestGuestConsole(t *testing.T) {
	const dropIn = "etc/systemd/system/serial-getty@%s.service.d/banger-autologin.conf"
	const wants = "etc/systemd/system/getty.target.wants/serial-getty@%s.service"
	for _, tc := range []struct {
		name    string
		arch    string
		inittab string // "" for a systemd tree
		present []string
		absent  []string
		tabLine string
	}{
		{name: "systemd x86_64", arch: "x86_64",
			present: []string{fmt.Sprintf(dropIn, "ttyS0"), fmt.Sprintf(wants, "ttyS0")}, absent: []string{fmt.Sprintf(dropIn, "ttyAMA0")}},
		{name: "systemd default arch", arch: "",
			present: []string{fmt.Sprintf(dropIn, "ttyS0"), fmt.Sprintf(wants, "ttyS0")}},
		{name: "systemd arm64", arch: "arm64",
			present: []string{fmt.Sprintf(dropIn, "ttyAMA0"), fmt.Sprintf(dropIn, "ttyS0")},
			absent:  []string{fmt.Sprintf(wants, "ttyAMA0"), fmt.Sprintf(wants, "ttyS0")}},
		{name: "busybox x86_64", arch: "x86_64", inittab: "::sysinit:/etc/init.d/rcS\n",
			tabLine: "ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100"},
		{name: "busybox arm64", arch: "arm64", inittab: "::sysinit:/etc/init.d/rcS",
			tabLine: "ttyAMA0::respawn:/sbin/getty -L 115200 ttyAMA0 vt100"},
		{name: "sysvinit arm64", arch: "arm64", inittab: "id:2:initdefault:\n",
			tabLine: "T0:2345:respawn:/sbin/getty -L ttyAMA0 115200 vt100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.inittab == "" {
				for _, f := range []string{"lib/systemd/systemd", "lib/systemd/system/serial-getty@.service"} {
					must(t, os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755))
					must(t, os.WriteFile(filepath.Join(dir, f), nil, 0o644))
				}
			} else {
				must(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
				must(t, os.WriteFile(filepath.Join(dir, "etc/inittab"), []byte(tc.inittab), 0o644))
			}
			root, err := os.OpenRoot(dir)
			must(t, err)
			defer root.Close()
			g := &guest{root: root}
			must(t, g.console(GuestConfig{Arch: tc.arch}))
			for _, p := range tc.present {
				if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
					t.Errorf("%s is missing", p)
				}
			}
			for _, p := range tc.absent {
				if _, err := os.Lstat(filepath.Join(dir, p)); err == nil {
					t.Errorf("%s should not be there", p)
				}
			}
			if tc.tabLine != "" {
				tab, err := os.ReadFile(filepath.Join(dir, "etc/inittab"))
				must(t, err)
				lines := strings.Split(strings.TrimSuffix(string(tab), "\n"), "\n")
				if got := lines[len(lines)-1]; got != tc.tabLine || !strings.HasPrefix(string(tab), strings.TrimSuffix(tc.inittab, "\n")+"\n") {
					t.Errorf("inittab:\n%s\nwant the original lines, then %q", tab, tc.tabLine)
				}
				// A second setup adds nothing.
				must(t, g.console(GuestConfig{Arch: tc.arch}))
				again, _ := os.ReadFile(filepath.Join(dir, "etc/inittab"))
				if string(again) != string(tab) {
					t.Errorf("a second setup changed the inittab to:\n%s", again)
				}
			}
		})
	}
}
