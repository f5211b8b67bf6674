package guestinit

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReseedCodeMatchesAssembly assembles testdata/reseed_<arch>.s with
// binutils and checks its .text is the code ReseedProgram embeds.
func TestReseedCodeMatchesAssembly(t *testing.T) {
	for _, tc := range []struct {
		arch, as string
		optional bool // a cross assembler, not always installed
	}{
		{"x86_64", "as", false},
		{"arm64", "aarch64-linux-gnu-as", true},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			as, err := exec.LookPath(tc.as)
			if err != nil && tc.optional {
				t.Skipf("%s: %v (install binutils-aarch64-linux-gnu to check this)", tc.as, err)
			}
			if err != nil {
				t.Fatalf("%s: %v (hint: install binutils)", tc.as, err)
			}
			obj := filepath.Join(t.TempDir(), "reseed.o")
			out, err := exec.CommandContext(t.Context(), as, "-o", obj, filepath.Join("testdata", "reseed_"+tc.arch+".s")).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", tc.as, err, out)
			}
			f, err := elf.Open(obj)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if s := f.Section(".rela.text"); s != nil {
				t.Fatal("the assembly has relocations: the code must be position-independent")
			}
			text, err := f.Section(".text").Data()
			if err != nil {
				t.Fatal(err)
			}
			if got := reseedCode[tc.arch].code; !bytes.Equal(got, text) {
				t.Errorf("reseedCode[%q] differs from the assembly:\n go: % x\n as: % x", tc.arch, got, text)
			}
		})
	}
}

func TestReseedProgramELF(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		machine elf.Machine
		file    string // what file(1) says
	}{
		{"x86_64", elf.EM_X86_64, "x86-64"},
		{"arm64", elf.EM_AARCH64, "ARM aarch64"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			prog, err := ReseedProgram(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(prog))
			if err != nil {
				t.Fatalf("parsing the program: %v", err)
			}
			if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB || f.Type != elf.ET_EXEC || f.Machine != tc.machine {
				t.Errorf("header: class %v data %v type %v machine %v", f.Class, f.Data, f.Type, f.Machine)
			}
			if len(f.Progs) != 1 || f.Progs[0].Type != elf.PT_LOAD || f.Progs[0].Flags != elf.PF_R|elf.PF_X {
				t.Fatalf("want one R+X PT_LOAD segment, got %+v", f.Progs)
			}
			seg := f.Progs[0]
			if seg.Off != 0 || seg.Filesz != uint64(len(prog)) || f.Entry != seg.Vaddr+120 {
				t.Errorf("segment %+v, entry %#x, size %d", seg.ProgHeader, f.Entry, len(prog))
			}
			p := filepath.Join(t.TempDir(), "reseed")
			if err := os.WriteFile(p, prog, 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(t.Context(), "file", "-b", p).Output()
			if err != nil {
				t.Fatalf("file: %v", err)
			}
			if s := string(out); !strings.Contains(s, "ELF 64-bit LSB executable, "+tc.file) || !strings.Contains(s, "statically linked") {
				t.Errorf("file says %q", s)
			}
		})
	}
	if _, err := ReseedProgram("riscv64"); err == nil {
		t.Error("ReseedProgram(riscv64) did not fail")
	}
}

// TestReseedProgramRuns runs the program on this host (x86_64) and under
// qemu-aarch64-static when installed: it reseeds as root and fails with
// EPERM as nobody.
func TestReseedProgramRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("RNDRESEEDCRNG needs root")
	}
	for _, tc := range []struct{ arch, emulator string }{
		{"x86_64", ""},
		{"arm64", "qemu-aarch64-static"},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			var argv []string
			if tc.emulator != "" {
				emu, err := exec.LookPath(tc.emulator)
				if err != nil {
					t.Skipf("%s: %v (install qemu-user-static to run this)", tc.emulator, err)
				}
				argv = append(argv, emu)
			}
			prog, err := ReseedProgram(tc.arch)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil { // nobody must reach it
				t.Fatal(err)
			}
			p := filepath.Join(dir, "reseed")
			if err := os.WriteFile(p, prog, 0o755); err != nil {
				t.Fatal(err)
			}
			argv = append(argv, p)
			if out, err := exec.CommandContext(t.Context(), argv[0], argv[1:]...).CombinedOutput(); err != nil {
				t.Errorf("as root: %v: %s", err, out)
			}
			nobody := append([]string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}, argv...)
			out, err := exec.CommandContext(t.Context(), nobody[0], nobody[1:]...).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("as nobody: want exit status 1, got %v: %s", err, out)
			}
		})
	}
}
