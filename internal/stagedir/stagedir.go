// Package stagedir builds named directories (installed kernels, images,
// VMs)
// out of sight and makes them appear complete or not at all: each is
// assembled in a hidden .tmp-<name>-<rand> directory beside its final
// place and renamed into place once flushed to disk; removal renames it to
// .old-<name>-<rand> first, and copes with the read-only directories an
// unprivileged build leaves. The caller serializes work on one name (with
// a lock) and calls CleanLeftovers under it to remove what an interrupted
// run left behind.
package stagedir

import (
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
	"golang.org/x/sys/unix"
)

// ErrExists is returned by Publish when name exists and replace is false.
var ErrExists = errors.New("already exists")

const suffixLen = 12 // hex digits

func suffix() string {
	b := make([]byte, suffixLen/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create makes a new hidden staging directory for name in parent.
func Create(parent, name string) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", parent, err)
	}
	dir := filepath.Join(parent, ".tmp-"+name+"-"+suffix())
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating a staging directory for %q: %w", name, err)
	}
	return dir, nil
}

// CleanLeftovers removes the staging and removal directories that
// interrupted runs left for name, and nothing of any other name.
func CleanLeftovers(parent, name string) {
	for _, m := range Leftovers(parent, name) {
		_ = RemoveAll(m)
	}
}

// Leftovers returns the paths of the staging and removal directories that
// interrupted runs left for name, and of no other name.
func Leftovers(parent, name string) []string {
	var out []string
	for _, prefix := range []string{".tmp-", ".old-"} {
		matches, _ := filepath.Glob(filepath.Join(parent, prefix+name+"-*"))
		for _, m := range matches {
			rest := strings.TrimPrefix(filepath.Base(m), prefix+name+"-")
			if len(rest) == suffixLen && !strings.Contains(rest, "-") {
				out = append(out, m)
			}
		}
	}
	return out
}

// Publish makes the staged directory tmp visible as parent/name in one
// rename. With replace, an existing directory is swapped out atomically and
// then removed; without, an existing one is an error wrapping ErrExists.
// The files in tmp must already be on stable storage; Publish flushes tmp
// itself and parent.
func Publish(parent, tmp, name string, replace bool) error {
	if err := SyncDir(tmp); err != nil {
		return err
	}
	final := filepath.Join(parent, name)
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	exists := errors.Is(err, unix.EEXIST) || errors.Is(err, fs.ErrExist)
	switch {
	case exists && !replace:
		return fmt.Errorf("%s: %w", final, ErrExists)
	case exists:
		// The new tree takes the name; the old one ends up at tmp.
		if err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_EXCHANGE); err == nil {
			old := filepath.Join(parent, ".old-"+name+"-"+suffix())
			if os.Rename(tmp, old) == nil {
				_ = RemoveAll(old)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("renaming into %s: %w", final, err)
	}
	return SyncDir(parent)
}

// Remove takes parent/name out of sight in one rename, then deletes it.
// It returns an error wrapping fs.ErrNotExist if there is nothing to remove.
func Remove(parent, name string) error {
	dir := filepath.Join(parent, name)
	old := filepath.Join(parent, ".old-"+name+"-"+suffix())
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := SyncDir(parent); err != nil {
		return err
	}
	return RemoveAll(old)
}

// WriteJSON writes v, indented, to a new file at path and flushes it.
func WriteJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", filepath.Base(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	if _, err = f.Write(append(data, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Base(path), err)
	}
	return nil
}

// SyncDir flushes a directory's entries to stable storage.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// Sweep removes the staging and removal directories in parent whose name
// is not being worked on: those whose lock (parent/.locks/NAME.lock, the
// stores' convention) can be taken without waiting. Interrupted runs
// leave them; stores sweep when they list, so they do not wait for the
// next run of the same name. It reports how many it removed.
func Sweep(parent string) int {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		name, ok := LeftoverName(e.Name())
		if !ok {
			continue
		}
		l, err := lockfile.TryLock(filepath.Join(parent, ".locks", name+".lock"))
		if err != nil {
			continue
		}
		if RemoveAll(filepath.Join(parent, e.Name())) == nil {
			n++
		}
		_ = l.Unlock()
	}
	return n
}

// LeftoverName returns NAME for ".tmp-NAME-<suffix>" and
// ".old-NAME-<suffix>", the entries Create, Publish and Remove leave when
// interrupted.
func LeftoverName(base string) (string, bool) {
	for _, prefix := range []string{".tmp-", ".old-"} {
		rest, ok := strings.CutPrefix(base, prefix)
		if !ok || len(rest) < suffixLen+2 || rest[len(rest)-suffixLen-1] != '-' {
			continue
		}
		if _, err := hex.DecodeString(rest[len(rest)-suffixLen:]); err != nil {
			continue
		}
		return rest[:len(rest)-suffixLen-1], true
	}
	return "", false
}

// InUseError refuses to remove a thing others still use.
type InUseError struct {
	Kind, Name string   // "image", "golden"
	UsersKind  string   // "VM(s)"; "" when each user names its kind
	Users      []string // sorted
	// Backing says the users' disks are overlays of it: removing or
	// replacing it would lose their data, so forcing it does not either.
	Backing bool
}

func (e *InUseError) Error() string {
	users := strings.Join(e.Users, ", ")
	if e.UsersKind != "" {
		users = e.UsersKind + " " + users
	}
	if e.Backing {
		return fmt.Sprintf("%s %q is the base of the overlay disks of %s: removing or replacing it would lose their data", e.Kind, e.Name, users)
	}
	return fmt.Sprintf("%s %q is used by %s", e.Kind, e.Name, users)
}

// CheckUsers returns an *InUseError if users(name) names anyone. Stores
// call it under the name's exclusive lock, so that nobody can start using
// it between the check and the removal.
func CheckUsers(kind, name, usersKind string, users func(string) ([]string, error)) error {
	if users == nil {
		return nil
	}
	u, err := users(name)
	if err != nil {
		return err
	}
	if len(u) > 0 {
		return &InUseError{Kind: kind, Name: name, UsersKind: usersKind, Users: u}
	}
	return nil
}
