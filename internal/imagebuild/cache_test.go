package imagebuild

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/powercut"
)

func TestCacheEntryLeftoversAndReplace(t *testing.T) {
	base := t.TempDir()
	const hash = "0123abcd"
	for _, d := range []string{
		".tmp-" + hash + "-0123456789ab",          // an interrupted build of hash
		".old-" + hash + "-0123456789ab",          // an interrupted replace of hash
		".tmp-" + hash + "-rootless-0123456789ab", // another entry's, kept
		hash, // incomplete: no info.json
	} {
		if err := os.MkdirAll(filepath.Join(base, d, "rootfs", "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e, err := openCache(context.Background(), base, hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release()
	if _, ok := e.Info(); ok {
		t.Fatal("an entry without info.json counts as complete")
	}
	names := func() []string {
		ents, _ := os.ReadDir(base)
		var out []string
		for _, x := range ents {
			out = append(out, x.Name())
		}
		return out
	}
	if got, want := names(), []string{".locks", ".tmp-" + hash + "-rootless-0123456789ab", hash}; !slices.Equal(got, want) {
		t.Fatalf("after opening the entry the cache holds %v, want %v", got, want)
	}
	tmp, err := e.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "rootfs", "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Commit(tmp, &cacheInfo{Ref: "r", OS: "Debian"}); err != nil {
		t.Fatal(err)
	}
	ci, ok := e.Info()
	if !ok || ci.Ref != "r" || ci.OS != "Debian" {
		t.Fatalf("after Commit: %+v %v", ci, ok)
	}
	if _, err := os.Stat(filepath.Join(e.Tree(), "new")); err != nil {
		t.Fatalf("the committed tree is not the entry: %v", err)
	}
	if got, want := names(), []string{".locks", ".tmp-" + hash + "-rootless-0123456789ab", hash}; !slices.Equal(got, want) {
		t.Fatalf("after Commit the cache holds %v, want %v", got, want)
	}
}

// The cache holds pulled images' trees (setuid binaries, device nodes):
// other local users must not reach them.
func TestCacheIsPrivate(t *testing.T) {
	mode := func(p string) os.FileMode {
		t.Helper()
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	state := t.TempDir()
	old := filepath.Join(state, "old", "images") // made by an older banger
	if err := os.MkdirAll(old, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, base := range []string{filepath.Join(state, "cache", "images"), old} {
		e, err := openCache(context.Background(), base, "0123abcd", nil)
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(base); m != 0o700 {
			t.Errorf("cache %s has mode %v, want 0700", base, m)
		}
		tmp, err := e.Prepare()
		if err != nil {
			t.Fatal(err)
		}
		if m := mode(tmp); m != 0o700 {
			t.Errorf("build directory %s has mode %v, want 0700", tmp, m)
		}
		if err := e.Commit(tmp, &cacheInfo{Ref: "r"}); err != nil {
			t.Fatal(err)
		}
		if m := mode(filepath.Join(base, "0123abcd")); m != 0o700 {
			t.Errorf("cache entry has mode %v, want 0700", m)
		}
		e.Release()
	}
}

// TestCacheEntrySurvivesPowerCut: a tree committed to the cache is on
// stable storage once Commit returns. The layers and apt write thousands
// of files without flushing them; a power cut right after Commit (on a
// real ext4, see package powercut) must not leave an entry whose files are
// empty, which every later build of that image would copy in unnoticed.
func TestCacheEntrySurvivesPowerCut(t *testing.T) {
	fsys := powercut.New(t, 64<<20)
	base := filepath.Join(fsys.Dir, "cache")
	e, err := openCache(context.Background(), base, "0123abcd", nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := e.Prepare()
	if err != nil {
		t.Fatal(err)
	}
	body := func(i int) string { return strings.Repeat(fmt.Sprintf("file %d ", i), 100+i) }
	for i := range 300 {
		p := filepath.Join(tmp, "rootfs", "usr", fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err = e.Commit(tmp, &cacheInfo{Ref: "r", OS: "Debian"})
	e.Release() // it holds files open, which would keep the file system from unmounting
	if err != nil {
		t.Fatal(err)
	}
	fsys.Cut(t)
	fsys.Remount(t)
	e, err = openCache(context.Background(), base, "0123abcd", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release()
	if ci, ok := e.Info(); !ok || ci.OS != "Debian" {
		t.Fatalf("after the power cut the entry is %+v, complete=%v", ci, ok)
	}
	bad := 0
	for i := range 300 {
		got, err := os.ReadFile(filepath.Join(e.Tree(), "usr", fmt.Sprintf("d%d", i%10), fmt.Sprintf("f%d", i)))
		if err != nil || string(got) != body(i) {
			if bad++; bad <= 3 {
				t.Errorf("f%d after the power cut: %d bytes, %v", i, len(got), err)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of 300 files of the committed tree did not survive the power cut", bad)
	}
}
