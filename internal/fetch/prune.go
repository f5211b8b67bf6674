package fetch

import (
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// PruneStale removes the partial download files (see Options.Partial) in
// dir last written before cutoff, and returns the names of those it
// removed. Newer ones are kept for a later run to resume, and so is any
// that a download holds right now (its flock), however old. Failures are
// ignored: partial downloads are a cache.
func PruneStale(dir string, cutoff time.Time) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if info, err := e.Info(); err != nil || !info.ModTime().Before(cutoff) {
			continue
		}
		if removeIf(filepath.Join(dir, e.Name()), cutoff) {
			removed = append(removed, e.Name())
		}
	}
	return removed
}

// removeIfFree removes the partial file at path unless a download holds it.
func removeIfFree(path string) { removeIf(path, time.Time{}) }

// removeIf removes the partial file at path if no download holds it and,
// unless cutoff is zero, it was last written before cutoff. It decides
// holding the file's lock, on the file it locked, so a download that has
// just opened it, or written to it, keeps it.
func removeIf(path string, cutoff time.Time) bool {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false // in use
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || (!cutoff.IsZero() && !fi.ModTime().Before(cutoff)) {
		return false
	}
	if cur, err := os.Lstat(path); err != nil || !os.SameFile(fi, cur) {
		return false
	}
	return os.Remove(path) == nil
}
