package vmm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMachineValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	good := Machine{Name: "m", Dir: dir, Kernel: file, Rootfs: file, MemoryMiB: 64}
	if err := good.Validate(); err != nil {
		t.Fatalf("good machine: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Machine)
		want string
	}{
		{"no dir", func(m *Machine) { m.Dir = "" }, `VM "m": no state directory`},
		{"no memory", func(m *Machine) { m.MemoryMiB = 0 }, `VM "m": memory size 0 MiB is not positive`},
		{"no kernel", func(m *Machine) { m.Kernel = "" }, `VM "m": no kernel`},
		{"no rootfs", func(m *Machine) { m.Rootfs = "" }, `VM "m": no rootfs`},
		{"missing initrd", func(m *Machine) { m.Initrd = file + ".gone" }, `VM "m": initrd: stat ` + file + ".gone"},
		{"rootfs is a dir", func(m *Machine) { m.Rootfs = dir }, `VM "m": rootfs ` + dir + " is not a regular file"},
		{"unknown disk format", func(m *Machine) { m.RootfsFormat = "vmdk" }, `VM "m": unknown disk format "vmdk"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := good
			tc.edit(&m)
			if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
			}
		})
	}
}
