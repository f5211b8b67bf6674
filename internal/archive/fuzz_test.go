package archive

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzExtractBundle builds a real tar from a compact spec the fuzzer mutates
// (mutating tar bytes directly mostly breaks header checksums), compresses
// it with zstd and extracts it. The spec has one entry per line: the tar
// type flag byte ('0' file, '5' directory, '2' symlink, '1' hardlink, '3',
// '4', '6' devices and fifo, anything else as is), the name, and for links
// ">target"; files hold their own name. mode is every entry's mode.
// Whatever the input: no panic, nothing created or changed outside the
// extraction directory, errors on one line; and when the bundle is
// accepted, the manifest matches the disk, vmlinux is a regular file, no
// special mode bits, and os.Root agrees no symlink escapes.
func FuzzExtractBundle(f *testing.F) {
	f.Add("0vmlinux", uint16(0o644))
	f.Add("5./\n0./vmlinux\n0./initrd.img\n5./modules/\n0./modules/6.12/kernel/a.ko\n2./modules/latest>6.12\n"+
		"2./modules/k>latest/kernel/a.ko\n2./modules/6.12/vmlinux>../../vmlinux\n5./modules/6.12/", uint16(0o7755))
	for _, c := range hostileCases {
		if _, ok := specTar(spec(c.ents), 0o644); !ok {
			f.Fatalf("seed %q: archive/tar cannot write it", c.name)
		}
		f.Add(spec(c.ents), uint16(0o644))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	lim := Limits{MaxBytes: 4 << 20, MaxEntries: 1000}
	// One sandbox per fuzzing process, on tmpfs when there is one: creating
	// files on a virtualized disk can cost milliseconds.
	s := newSandboxIn(f, fastTempDir(f))
	f.Fuzz(func(t *testing.T, spec string, mode uint16) {
		tarData, ok := specTar(spec, int64(mode))
		if !ok {
			return // archive/tar refused to write it: no bundle to test
		}
		if err := os.RemoveAll(s.out); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(s.out, 0o755); err != nil {
			t.Fatal(err)
		}
		files, err := ExtractBundle(context.Background(), bytes.NewReader(enc.EncodeAll(tarData, nil)), s.out, lim)
		s.checkOutside(t)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			return
		}
		checkExtracted(t, s, files)
	})
}

// spec writes ents in FuzzExtractBundle's spec format.
func spec(ents []ent) string {
	var lines []string
	for _, e := range ents {
		typ := cmp.Or(e.typ, tar.TypeReg)
		line := string(rune(typ)) + e.name
		if e.typ == tar.TypeSymlink || e.typ == tar.TypeLink {
			line += ">" + e.link
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// specTar builds the tar a spec describes; ok is false if archive/tar
// refuses a header.
func specTar(spec string, mode int64) (data []byte, ok bool) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for line := range strings.SplitSeq(spec, "\n") {
		if line == "" {
			continue
		}
		h := &tar.Header{Typeflag: line[0], Name: line[1:], Mode: mode}
		if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
			h.Name, h.Linkname, _ = strings.Cut(h.Name, ">")
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if tw.WriteHeader(h) != nil {
			return nil, false
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(h.Name)); err != nil {
				return nil, false
			}
		}
	}
	if tw.Close() != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

func checkExtracted(t *testing.T, s *sandbox, files []File) {
	byPath := map[string]File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	if len(byPath) != len(files) {
		t.Errorf("manifest has duplicate paths: %+v", files)
	}
	if f, ok := byPath["vmlinux"]; !ok || f.Mode[0] != '-' {
		t.Errorf("accepted a bundle without a regular vmlinux: %+v", files)
	}
	root, err := os.OpenRoot(s.out)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	tree := s.tree(t)
	if len(tree) != len(files) {
		t.Errorf("disk has %q, manifest %+v", tree, files)
	}
	for _, p := range tree {
		f, ok := byPath[p]
		fi, err := os.Lstat(filepath.Join(s.out, p))
		if !ok || err != nil || fi.Mode().String() != f.Mode {
			t.Errorf("%s: on disk %v (%v), manifest %+v", p, fi.Mode(), err, f)
			continue
		}
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			t.Errorf("%s: special mode bits %v", p, fi.Mode())
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(filepath.Join(s.out, p))
			if err != nil || int64(len(b)) != f.Size || sum(string(b)) != f.SHA256 {
				t.Errorf("%s: %d bytes on disk (%v), manifest %+v", p, len(b), err, f)
			}
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			_, err := root.Stat(p)
			if err != nil && strings.Contains(err.Error(), "escapes") {
				t.Errorf("%s: symlink escapes the extraction directory: %v", p, err)
			}
		}
	}
}

// fastTempDir returns a temporary directory on /dev/shm if it can, else in
// the test's temporary directory.
func fastTempDir(tb testing.TB) string {
	d, err := os.MkdirTemp("/dev/shm", "banger-archive-fuzz-")
	if err != nil {
		return tb.TempDir()
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return d
}
