package imagebuild

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/lockfile"
	"github.com/thaloco/banger/internal/stagedir"
)

// The build cache keeps, per package hash, the image's tree after its
// layers are applied and its base packages installed:
//
//	<cache>/<hash>/rootfs/     the tree
//	<cache>/<hash>/info.json   what was found and installed
//
// A tree appears under its hash only complete (built and published with
// stagedir). Each entry has a lock, held for the whole build, because
// the guest setup rewrites a few files of the tree before mkfs.ext4 reads
// it.
//
// The trees are pulled images' files, setuid binaries and device nodes
// included, so the cache and its entries are private to the user (0700).

// cacheInfo is what a finished cache entry records.
type cacheInfo struct {
	Ref       string   `json:"ref"`
	Digest    string   `json:"digest"`
	Platform  string   `json:"platform"`
	OS        string   `json:"os"`
	Installed []string `json:"installed_packages,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Fixups    fixups   `json:"fixups,omitempty"` // rootless builds only
}

type cacheEntry struct {
	base, hash string
	lock       *lockfile.Lock
	fs         *stagedir.FS // the file system of the tree Prepare made, to flush it in Commit
}

func openCache(ctx context.Context, base, hash string, onWait func()) (*cacheEntry, error) {
	// Chmod too: a cache made by an older banger was world-readable.
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, fmt.Errorf("creating build cache: %w", err)
	}
	if err := os.Chmod(base, 0o700); err != nil {
		return nil, fmt.Errorf("making build cache %s private: %w", base, err)
	}
	lock, err := lockfile.Acquire(ctx, filepath.Join(base, ".locks", hash+".lock"), onWait)
	if err != nil {
		return nil, fmt.Errorf("locking build cache: %w", err)
	}
	e := &cacheEntry{base: base, hash: hash, lock: lock}
	e.cleanLeftovers()
	return e, nil
}

func (e *cacheEntry) dir() string  { return filepath.Join(e.base, e.hash) }
func (e *cacheEntry) Tree() string { return filepath.Join(e.dir(), "rootfs") }

// Info returns the entry's record if the entry is complete.
func (e *cacheEntry) Info() (*cacheInfo, bool) {
	data, err := os.ReadFile(filepath.Join(e.dir(), "info.json"))
	if err != nil {
		return nil, false
	}
	var ci cacheInfo
	if json.Unmarshal(data, &ci) != nil {
		return nil, false
	}
	if st, err := os.Stat(e.Tree()); err != nil || !st.IsDir() {
		return nil, false
	}
	return &ci, true
}

// Prepare returns a fresh hidden directory to build the entry's tree in
// (its rootfs/ subdirectory exists).
func (e *cacheEntry) Prepare() (string, error) {
	tmp, err := stagedir.Create(e.base, e.hash)
	if err != nil {
		return "", fmt.Errorf("creating build directory: %w", err)
	}
	if e.fs != nil {
		_ = e.fs.Close()
	}
	if e.fs, err = stagedir.OpenFS(tmp); err != nil {
		_ = stagedir.RemoveAll(tmp)
		return "", fmt.Errorf("creating build directory: %w", err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		_ = stagedir.RemoveAll(tmp)
		return "", fmt.Errorf("creating build directory: %w", err)
	}
	if err := os.Mkdir(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		_ = stagedir.RemoveAll(tmp)
		return "", fmt.Errorf("creating build directory: %w", err)
	}
	return tmp, nil
}

// Commit records ci in tmp, the directory Prepare returned, and makes it
// the entry, swapping out (and then removing) an incomplete entry of the
// same hash. The tree is flushed to disk first, in one syncfs: the layers
// and apt write thousands of files without flushing any, and a cached
// tree that a power cut left with empty files would go, unnoticed, into
// every image built from it.
func (e *cacheEntry) Commit(tmp string, ci *cacheInfo) error {
	if err := stagedir.WriteJSON(filepath.Join(tmp, "info.json"), ci); err != nil {
		return fmt.Errorf("writing build cache: %w", err)
	}
	if err := e.fs.Sync(); err != nil {
		return fmt.Errorf("writing build cache: %w", err)
	}
	if err := stagedir.Publish(e.base, tmp, e.hash, true); err != nil {
		return fmt.Errorf("writing build cache: %w", err)
	}
	return nil
}

func (e *cacheEntry) Release() {
	if e.fs != nil {
		_ = e.fs.Close()
	}
	e.lock.Unlock()
}

// cleanLeftovers removes the trees interrupted builds of this hash left.
// The "-rootless" entry of a hash is another name and keeps its own.
func (e *cacheEntry) cleanLeftovers() { stagedir.CleanLeftovers(e.base, e.hash) }
