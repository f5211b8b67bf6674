package powercut

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCut: what was flushed before the cut survives it, and what was only
// written does not, even though its directory entry was flushed: the file
// comes back empty (or not at all). A test that cuts the power can thus
// tell a flush that happened from one that did not.
func TestCut(t *testing.T) {
	fsys := New(t, 64<<20)
	body := []byte("data that must survive")
	write := func(name string, flush bool) {
		t.Helper()
		f, err := os.Create(filepath.Join(fsys.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(body); err != nil {
			t.Fatal(err)
		}
		if flush {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("flushed", true)
	write("written", false)
	d, err := os.Open(fsys.Dir)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Sync() // both names are on disk; one file's data is not
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	fsys.Cut(t)
	if err := os.WriteFile(filepath.Join(fsys.Dir, "after"), body, 0o644); err == nil {
		t.Error("writing after the cut succeeded")
	}
	fsys.Remount(t)
	if got, err := os.ReadFile(filepath.Join(fsys.Dir, "flushed")); err != nil || string(got) != string(body) {
		t.Errorf("the flushed file after the cut: %q, %v", got, err)
	}
	if got, _ := os.ReadFile(filepath.Join(fsys.Dir, "written")); string(got) == string(body) {
		t.Errorf("the file written but not flushed survived the cut: the cut is not one")
	}
	if _, err := os.Stat(filepath.Join(fsys.Dir, "after")); err == nil {
		t.Error("a file created after the cut exists")
	}
}
