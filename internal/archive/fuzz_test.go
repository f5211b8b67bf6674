package archive

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// FuzzExtractBundle mutates the tar stream inside a bundle (the zstd layer
// is applied by the target, so mutations reach the tar parser and the
// bundle rules). Whatever the input: no panic, nothing created or changed
// outside the extraction directory, errors on one line; and when the
// bundle is accepted, the manifest matches the disk, vmlinux is a regular
// file, no special mode bits, and os.Root agrees no symlink escapes.
func FuzzExtractBundle(f *testing.F) {
	f.Add(tarBytes(f, file("vmlinux", "kernel")))
	f.Add(tarBytes(f, dir("./"), file("./vmlinux", "k"), file("./initrd.img", "i"), dir("./modules/"),
		file("./modules/6.12/kernel/a.ko", "ko"), symlink("./modules/latest", "6.12"),
		symlink("./modules/k", "latest/kernel/a.ko"), symlink("./modules/6.12/vmlinux", "../../vmlinux")))
	for _, c := range hostileCases {
		f.Add(tarBytes(f, c.ents...))
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		f.Fatal(err)
	}
	lim := Limits{MaxBytes: 4 << 20, MaxEntries: 1000}
	f.Fuzz(func(t *testing.T, tarData []byte) {
		s := newSandbox(t)
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
		if fi.Mode()&fs.ModeSymlink != 0 {
			_, err := root.Stat(p)
			if err != nil && strings.Contains(err.Error(), "escapes") {
				t.Errorf("%s: symlink escapes the extraction directory: %v", p, err)
			}
		}
	}
}
