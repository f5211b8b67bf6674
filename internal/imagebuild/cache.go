package imagebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/thaloco/banger/internal/lockfile"
)

// The build cache keeps, per package hash, the image's tree after its
// layers are applied and its base packages installed:
//
//	<cache>/<hash>/rootfs/     the tree
//	<cache>/<hash>/info.json   what was found and installed
//
// A tree appears under its hash only complete (built in .tmp-<hash>-<rand>
// and renamed). Each entry has a lock, held for the whole build, because
// the guest setup rewrites a few files of the tree before mkfs.ext4 reads
// it.

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
}

func openCache(ctx context.Context, base, hash string, onWait func()) (*cacheEntry, error) {
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
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	tmp := filepath.Join(e.base, ".tmp-"+e.hash+"-"+hex.EncodeToString(b))
	if err := os.MkdirAll(filepath.Join(tmp, "rootfs"), 0o755); err != nil {
		return "", fmt.Errorf("creating build directory: %w", err)
	}
	return tmp, nil
}

// Commit records ci in tmp and makes it the entry.
func (e *cacheEntry) Commit(tmp string, ci *cacheInfo) error {
	data, err := json.MarshalIndent(ci, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "info.json"), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing build cache: %w", err)
	}
	if err := removeTree(e.dir()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("replacing build cache entry: %w", err)
	}
	if err := os.Rename(tmp, e.dir()); err != nil {
		return fmt.Errorf("writing build cache: %w", err)
	}
	return nil
}

func (e *cacheEntry) Release() { e.lock.Unlock() }

// cleanLeftovers removes temp trees of interrupted builds of this hash.
func (e *cacheEntry) cleanLeftovers() {
	matches, _ := filepath.Glob(filepath.Join(e.base, ".tmp-"+e.hash+"-*"))
	for _, m := range matches {
		if rest := strings.TrimPrefix(filepath.Base(m), ".tmp-"+e.hash+"-"); len(rest) == 12 {
			_ = removeTree(m)
		}
	}
}

// removeTree removes dir like os.RemoveAll, first making directories
// writable when an unprivileged build left some read-only.
func removeTree(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
