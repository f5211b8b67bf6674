package vm

import (
	"path/filepath"
	"strings"

	"github.com/thaloco/banger/internal/qcow2"
	"github.com/thaloco/banger/internal/stagedir"
)

// Before VM directories went through stagedir, banger staged them as
// ".tmp~NAME~<rand>" and removed them through ".rm~NAME~<rand>" ('~'
// cannot appear in a name). A VM directory killed half-way by such a
// banger is swept like stagedir's.
var legacyPrefixes = []string{".tmp~", ".rm~"}

// leftovers returns the directories that killed creates or removals of
// name left, this banger's and older ones'.
func (s *Store) leftovers(name string) []string {
	dir := s.Layout.VMsDir()
	out := stagedir.Leftovers(dir, name)
	for _, prefix := range legacyPrefixes {
		matches, _ := filepath.Glob(filepath.Join(dir, prefix+name+"~*"))
		out = append(out, matches...)
	}
	return out
}

// leftoverName returns the VM name of entry if it is a directory a killed
// create or removal left, this banger's or an older one's.
func leftoverName(entry string) (string, bool) {
	if name, ok := stagedir.LeftoverName(entry); ok {
		return name, true
	}
	for _, prefix := range legacyPrefixes {
		if rest, ok := strings.CutPrefix(entry, prefix); ok {
			name, _, ok := strings.Cut(rest, "~")
			return name, ok && name != ""
		}
	}
	return "", false
}

// cleanLeftovers removes the directories of earlier creates or removals
// of name that were killed half-way. The caller holds name's lock.
func (s *Store) cleanLeftovers(name string) {
	for _, m := range s.leftovers(name) {
		// A create killed while it grew an overlay left its export
		// mounted (its daemon died with it).
		if mnt := filepath.Join(m, growMount); !notExist(mnt) {
			qcow2.Unmount(mnt)
		}
		_ = stagedir.RemoveAll(m)
	}
}
