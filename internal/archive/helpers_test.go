package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ent describes one tar entry for a test bundle. typ defaults to a regular
// file, mode to 0644 (files) or 0755 (directories).
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	pax  map[string]string // PAX records, e.g. xattrs
}

func dir(name string) ent             { return ent{name: name, typ: tar.TypeDir} }
func file(name, body string) ent      { return ent{name: name, body: body} }
func symlink(name, target string) ent { return ent{name: name, typ: tar.TypeSymlink, link: target} }

// tarBytes builds a real tar stream (PAX where needed) from ents.
func tarBytes(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, PAXRecords: e.pax}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			tb.Fatalf("tar body %q: %v", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// compress zstd-compresses data as one streamed frame.
func compress(tb testing.TB, data []byte, opts ...zstd.EOption) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func bundle(tb testing.TB, ents ...ent) []byte { return compress(tb, tarBytes(tb, ents...)) }

// sandbox is a temporary directory holding the extraction directory "out"
// and a sentinel tree "outside" that no extraction may touch.
type sandbox struct {
	root, out string
	before    map[string]string
}

func newSandbox(tb testing.TB) *sandbox { return newSandboxIn(tb, tb.TempDir()) }

// newSandboxIn makes a sandbox in the empty directory root.
func newSandboxIn(tb testing.TB, root string) *sandbox {
	tb.Helper()
	s := &sandbox{root: root}
	s.out = filepath.Join(s.root, "out")
	for _, d := range []string{s.out, filepath.Join(s.root, "outside", "etc")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.root, "outside", "etc", "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
	s.before = s.snapshot(tb)
	return s
}

// snapshot lists everything in the sandbox outside out, with contents.
func (s *sandbox) snapshot(tb testing.TB) map[string]string {
	tb.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.out {
			return fs.SkipDir
		}
		rel, _ := filepath.Rel(s.root, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		val := info.Mode().String()
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			val += ":" + string(b)
		}
		m[rel] = val
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// checkOutside fails if anything outside out was created or changed.
func (s *sandbox) checkOutside(tb testing.TB) {
	tb.Helper()
	after := s.snapshot(tb)
	for k, v := range after {
		if s.before[k] != v {
			tb.Errorf("outside the extraction directory: %q is %q, was %q", k, v, s.before[k])
		}
	}
	for k := range s.before {
		if _, ok := after[k]; !ok {
			tb.Errorf("outside the extraction directory: %q disappeared", k)
		}
	}
}

func (s *sandbox) extract(tb testing.TB, data []byte, lim Limits) ([]File, error) {
	tb.Helper()
	files, err := ExtractBundle(context.Background(), bytes.NewReader(data), s.out, lim)
	s.checkOutside(tb)
	return files, err
}

// tree lists the paths under out, slash-separated, sorted.
func (s *sandbox) tree(tb testing.TB) []string {
	tb.Helper()
	var paths []string
	err := filepath.WalkDir(s.out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != s.out {
			rel, _ := filepath.Rel(s.out, p)
			paths = append(paths, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}
