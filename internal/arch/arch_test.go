package arch

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"x86_64", X86_64}, {"amd64", X86_64}, {"x86-64", X86_64}, {"AMD64", X86_64},
		{"arm64", ARM64}, {"aarch64", ARM64}, {"AArch64", ARM64},
	} {
		if got, err := Canonical(tc.in); err != nil || got != tc.want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "riscv64", "arm", "i386", " x86_64"} {
		_, err := Canonical(bad)
		var ue *UnknownError
		if !errors.As(err, &ue) || ue.Name != bad {
			t.Errorf("Canonical(%q) = %v; want an UnknownError", bad, err)
		}
	}
	_, err := Canonical("mips")
	if want := `unknown arch "mips" (known: x86_64, arm64; amd64 and aarch64 are accepted too)`; err == nil || err.Error() != want {
		t.Errorf("error = %v; want %s", err, want)
	}
}

func TestNames(t *testing.T) {
	if got := Host(); (runtime.GOARCH == "amd64" && got != X86_64) || (runtime.GOARCH == "arm64" && got != ARM64) {
		t.Errorf("Host() = %q on GOARCH %s", got, runtime.GOARCH)
	}
	if GOARCH(X86_64) != "amd64" || GOARCH(ARM64) != "arm64" {
		t.Errorf("GOARCH: %q %q", GOARCH(X86_64), GOARCH(ARM64))
	}
	if UName(X86_64) != "x86_64" || UName(ARM64) != "aarch64" {
		t.Errorf("UName: %q %q", UName(X86_64), UName(ARM64))
	}
	if Or("", X86_64) != X86_64 || Or("aarch64", X86_64) != ARM64 || Or("bogus", X86_64) != X86_64 {
		t.Error("Or does not default or canonicalise")
	}
}

// elfHeader is the start of an ELF64 file for machine.
func elfHeader(machine uint16, bigEndian bool) []byte {
	b := make([]byte, 64)
	copy(b, "\x7fELF")
	b[4] = 2 // ELFCLASS64
	b[5] = 1
	order := binary.ByteOrder(binary.LittleEndian)
	if bigEndian {
		b[5] = 2
		order = binary.BigEndian
	}
	order.PutUint16(b[18:], machine)
	return b
}

func image() []byte {
	b := make([]byte, 64)
	copy(b[56:], "ARM\x64")
	return b
}

func bzImage() []byte {
	b := make([]byte, 0x300)
	copy(b[0x202:], "HdrS")
	return b
}

func TestDetectAndCheck(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		data       []byte
		arch, form string
		// errX86, errARM: CheckKernel's error against each arch ("" none).
		errX86, errARM string
	}{
		{"elf-x86", elfHeader(62, false), X86_64, FormatELF, "", "vmlinux is built for x86_64 (ELF), not arm64"},
		{"elf-arm64", elfHeader(183, false), ARM64, FormatELF, "vmlinux is built for arm64 (ELF), not x86_64", ""},
		{"elf-s390", elfHeader(22, true), "ELF machine 22", FormatELF, "vmlinux is built for ELF machine 22 (ELF), not x86_64", "vmlinux is built for ELF machine 22 (ELF), not arm64"},
		{"image", image(), ARM64, FormatImage, "vmlinux is built for arm64 (arm64 Image), not x86_64", ""},
		{"bzimage", bzImage(), X86_64, FormatBzImage, "", "vmlinux is built for x86_64 (bzImage), not arm64"},
		{"text", []byte("fake kernel\nLinux version 6.1.0\n"), "", "", "", ""},
		{"elf-magic-only", []byte("\x7fELF....Linux version 6.12.5 (builder@banger)"), "", "", "", ""},
		{"empty", nil, "", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			a, f, err := Detect(p)
			if err != nil || a != tc.arch || f != tc.form {
				t.Fatalf("Detect = %q, %q, %v; want %q, %q", a, f, err, tc.arch, tc.form)
			}
			for _, c := range []struct{ want, err string }{{X86_64, tc.errX86}, {ARM64, tc.errARM}} {
				err := CheckKernel(p, c.want)
				got := ""
				if err != nil {
					got = err.Error()
					if !errors.As(err, new(*MismatchError)) {
						t.Errorf("CheckKernel(%s) = %T, not a MismatchError", c.want, err)
					}
				}
				if got != c.err {
					t.Errorf("CheckKernel(%s) = %q; want %q", c.want, got, c.err)
				}
			}
		})
	}
	if _, _, err := Detect(filepath.Join(dir, "missing")); err == nil {
		t.Error("Detect of a missing file: no error")
	}
}
