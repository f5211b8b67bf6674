package stagedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/thaloco/banger/internal/lockfile"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPublishReplaceAndRemove(t *testing.T) {
	parent := t.TempDir()
	tmp, err := Create(parent, "k")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(tmp, "f"), "one")
	if err := Publish(parent, tmp, "k", false); err != nil {
		t.Fatal(err)
	}
	tmp2, _ := Create(parent, "k")
	write(t, filepath.Join(tmp2, "f"), "two")
	if err := Publish(parent, tmp2, "k", false); !errors.Is(err, ErrExists) {
		t.Fatalf("publish over existing without replace: %v", err)
	}
	if got := read(t, filepath.Join(parent, "k", "f")); got != "one" {
		t.Fatalf("refused publish changed the existing dir: %q", got)
	}
	if err := Publish(parent, tmp2, "k", true); err != nil {
		t.Fatal(err)
	}
	if got := read(t, filepath.Join(parent, "k", "f")); got != "two" {
		t.Fatalf("replace: %q", got)
	}
	if got := entries(t, parent); len(got) != 1 || got[0] != "k" {
		t.Fatalf("after replace the parent holds %v, want only k", got)
	}
	if err := Remove(parent, "k"); err != nil {
		t.Fatal(err)
	}
	if got := entries(t, parent); len(got) != 0 {
		t.Fatalf("after remove the parent holds %v", got)
	}
	if err := Remove(parent, "k"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("second remove: %v", err)
	}
}

func TestCleanLeftoversTouchesOnlyThatName(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{".tmp-k-0123456789ab", ".old-k-0123456789ab", ".tmp-k-2-0123456789ab", ".tmp-k-short", "k"} {
		if err := os.MkdirAll(filepath.Join(parent, d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	CleanLeftovers(parent, "k")
	for d, want := range map[string]bool{".tmp-k-0123456789ab": false, ".old-k-0123456789ab": false, ".tmp-k-2-0123456789ab": true, ".tmp-k-short": true, "k": true} {
		if _, err := os.Stat(filepath.Join(parent, d)); (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", d, err == nil, want)
		}
	}
}

func TestWriteJSONRefusesToOverwrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "m.json")
	if err := WriteJSON(p, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "{\n  \"a\": 1\n}\n" {
		t.Fatalf("content %q", got)
	}
	if err := WriteJSON(p, 2); err == nil {
		t.Fatal("WriteJSON overwrote an existing file")
	}
}

func TestListShowsBrokenEntriesWithoutHidingOthers(t *testing.T) {
	parent := t.TempDir()
	for _, d := range []string{"good", "bad", "Bad-Name", ".tmp-good-0123456789ab"} {
		if err := os.Mkdir(filepath.Join(parent, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(parent, "afile"), "")
	get := func(name string) (string, error) {
		if name == "bad" {
			return "", fmt.Errorf("reading it: %w", &BrokenError{Kind: "kernel", Name: "bad", Reason: "vmlinux is missing", Hint: "remove it"})
		}
		return "manifest of " + name, nil
	}
	ls, err := List(parent, "kernel", get)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 3 || ls[0].Name != "Bad-Name" || ls[1].Name != "bad" || ls[2].Name != "good" {
		t.Fatalf("listing %+v", ls)
	}
	if ls[0].Broken == "" || ls[1].Broken != "vmlinux is missing" || ls[2].Manifest != "manifest of good" || ls[2].Broken != "" {
		t.Fatalf("listing %+v", ls)
	}
	if ls, err := List(filepath.Join(parent, "missing"), "kernel", get); err != nil || ls != nil {
		t.Fatalf("missing parent: %v %v", ls, err)
	}
}

// TestSweep: leftovers whose name nobody holds the lock of go; those of a
// name being worked on (lock held, as by a running build) and anything
// that is not a leftover stay.
func TestSweep(t *testing.T) {
	parent := t.TempDir()
	keep := []string{"k1", ".tmp-busy-0123456789ab", ".tmp-x-notahexsuffix", ".locks"}
	drop := []string{".tmp-k1-0123456789ab", ".old-my-name-ba9876543210", ".tmp-a-b-c-00000000000f"}
	for _, d := range append(append([]string{}, keep...), drop...) {
		if err := os.MkdirAll(filepath.Join(parent, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l, err := lockfile.TryLock(filepath.Join(parent, ".locks", "busy.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if n := Sweep(parent); n != len(drop) {
		t.Errorf("Sweep removed %d, want %d", n, len(drop))
	}
	for _, d := range keep {
		if _, err := os.Stat(filepath.Join(parent, d)); err != nil {
			t.Errorf("%s was swept: %v", d, err)
		}
	}
	for _, d := range drop {
		if _, err := os.Stat(filepath.Join(parent, d)); err == nil {
			t.Errorf("%s is still there", d)
		}
	}
}
