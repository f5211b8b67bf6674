package kernelstore

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/powercut"
)

// manyFiles is a bundle like a distribution kernel's, small: a vmlinux
// larger than the extractor's small-file limit (so it is streamed), an
// initrd and a modules/ tree of 400 files in 20 directories, with a
// symlink. It stays far below the extractor's background write-back
// threshold, so nothing of it reaches the disk unless the install flushes.
func manyFiles(version string) []bundletest.Entry {
	ents := []bundletest.Entry{
		{Name: "vmlinux", Body: bundletest.FakeVMLinux(version, 3<<20), Mode: 0o755},
		{Name: "initrd.img", Body: strings.Repeat("initrd", 1000)},
	}
	for d := range 20 {
		for f := range 20 {
			ents = append(ents, bundletest.Entry{
				Name: fmt.Sprintf("modules/%s/kernel/d%02d/m%02d.ko", version, d, f),
				Body: strings.Repeat(fmt.Sprintf("module %d/%d ", d, f), 100+37*f),
			})
		}
	}
	return append(ents, bundletest.Entry{Name: "modules/" + version + "/build", Type: tar.TypeSymlink, Linkname: "kernel"})
}

// writeTree writes ents under dir, as a directory to import from.
func writeTree(t *testing.T, dir string, ents []bundletest.Entry) {
	t.Helper()
	for _, e := range ents {
		p := filepath.Join(dir, e.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if e.Type == tar.TypeSymlink {
			err = os.Symlink(e.Linkname, p)
		} else {
			err = os.WriteFile(p, []byte(e.Body), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// install is one way of installing kernel "k1" into s: a pull from
// 127.0.0.1 or an import from a directory.
type install struct {
	name string
	run  func(ctx context.Context, s *Store) error
}

func installs(t *testing.T) []install {
	ents := manyFiles("6.12.5")
	e, _ := serveBundle(t, "k1", bundletest.Build(ents...), bundletest.Faults{})
	src := t.TempDir()
	writeTree(t, src, ents)
	return []install{
		{"pull", func(ctx context.Context, s *Store) error {
			_, err := s.Pull(ctx, e, PullOptions{})
			return err
		}},
		{"import", func(ctx context.Context, s *Store) error {
			_, err := s.Import(ctx, "k1", src, ImportOptions{Distro: "d", Arch: "x86_64"})
			return err
		}},
	}
}

// TestInstallSteps: a pull and an import report their steps in the order
// that makes them crash-proof (see commit), and at each step the kernel
// is visible only once it is published.
func TestInstallSteps(t *testing.T) {
	for _, in := range installs(t) {
		t.Run(in.name, func(t *testing.T) {
			var s *Store
			var steps []string
			s = NewWithOptions(t.TempDir(), Options{Step: func(step string) {
				_, err := s.Get("k1")
				visible := err == nil
				if visible != (step == StepPublished) {
					t.Errorf("at step %s the kernel is visible=%v (%v)", step, visible, err)
				}
				steps = append(steps, step)
			}})
			if err := in.run(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			if want := []string{StepStaged, StepFlushed, StepPublished}; !slices.Equal(steps, want) {
				t.Fatalf("steps %q, want %q", steps, want)
			}
			if err := s.Verify(context.Background(), "k1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPowerCut cuts the power at each step of a pull and of an import, on
// a real ext4 file system (see package powercut), and mounts it again, so
// only what was on stable storage survives. Then:
//
//   - before the flush (staged): no kernel is installed;
//   - after the flush, before the rename (flushed): no kernel is
//     installed, and the staged tree survived whole: the flush came
//     first, and what it flushed is complete;
//   - after the rename (published, i.e. once the install returned
//     success): the kernel is installed and verifies file by file.
//
// In every case the next List sweeps what the install left and shows no
// broken kernel. That such a cut does lose what was not flushed, so that
// these checks would see a missing or late flush, is powercut's TestCut
// (and removing the flush from commit makes the flushed and published
// cases fail: every small file comes back empty).
func TestPowerCut(t *testing.T) {
	for _, in := range installs(t) {
		for _, step := range []string{StepStaged, StepFlushed, StepPublished} {
			t.Run(in.name+"/"+step, func(t *testing.T) {
				fsys := powercut.New(t, 64<<20)
				dir := filepath.Join(fsys.Dir, "kernels")
				s := NewWithOptions(dir, Options{Step: func(at string) {
					if at == step {
						fsys.Cut(t)
					}
				}})
				err := in.run(context.Background(), s)
				if step == StepPublished && err != nil {
					t.Fatalf("the install failed after it was published: %v", err)
				}
				fsys.Remount(t)

				stages, _ := filepath.Glob(filepath.Join(dir, ".tmp-k1-*"))
				_, gerr := s.Get("k1")
				switch step {
				case StepStaged:
					if !errors.Is(gerr, ErrNotInstalled) {
						t.Errorf("after a cut before the flush, Get: %v, want not installed", gerr)
					}
				case StepFlushed:
					if !errors.Is(gerr, ErrNotInstalled) {
						t.Errorf("after a cut before the rename, Get: %v, want not installed", gerr)
					}
					if len(stages) != 1 {
						t.Fatalf("stages after the cut: %q, want one", stages)
					}
					if bad := checkTree(t, stages[0]); len(bad) != 0 {
						t.Errorf("the stage was not on disk when the install said it was flushed: %s", strings.Join(bad, "; "))
					}
				case StepPublished:
					if err := s.Verify(context.Background(), "k1"); err != nil {
						t.Errorf("after a cut once the install returned: %.400s", err)
					}
				}
				ls, err := s.List()
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range ls {
					if l.Broken != "" {
						t.Errorf("kernel %s listed as broken: %.400s", l.Name, l.Broken)
					}
				}
				if h := hidden(t, dir); len(h) != 0 {
					t.Errorf("left after listing: %v", h)
				}
			})
		}
	}
}

// checkTree compares the files under dir with the manifest there, as
// Verify does for an installed kernel, and returns the differences.
func checkTree(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return []string{err.Error()}
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return []string{fmt.Sprintf("%s: %v", ManifestFile, err)}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	var bad []string
	for _, f := range m.Files {
		if p := checkFile(root, f.Path, f.Mode, f.Size, f.SHA256, f.LinkTarget); p != "" {
			bad = append(bad, f.Path+": "+p)
		}
	}
	if len(m.Files) == 0 {
		bad = append(bad, "no files in the manifest")
	}
	if len(bad) > 4 {
		bad = append(bad[:3], fmt.Sprintf("and %d more", len(bad)-3))
	}
	return bad
}
