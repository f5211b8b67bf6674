package kernelstore

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/thaloco/banger/internal/stagedir"
)

// stage is a kernel being installed: a hidden build directory beside its
// target, so the final rename stays on one file system, and that file
// system, opened before anything is written so that the flush in commit
// reports every write-back error.
type stage struct {
	dir string
	fs  *stagedir.FS
}

// newStage creates the stage for name.
func (s *Store) newStage(name string) (*stage, error) {
	dir, err := stagedir.Create(s.dir, name)
	if err != nil {
		return nil, fmt.Errorf("kernel %q: %w", name, err)
	}
	fsys, err := stagedir.OpenFS(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("kernel %q: %w", name, err)
	}
	return &stage{dir: dir, fs: fsys}, nil
}

// remove deletes what is left of the stage: everything after a failure,
// nothing after a successful commit.
func (st *stage) remove() {
	_ = st.fs.Close()
	_ = os.RemoveAll(st.dir)
}

// cleanLeftovers removes what interrupted runs left for name. The caller
// holds name's lock.
func (s *Store) cleanLeftovers(name string) { stagedir.CleanLeftovers(s.dir, name) }

// commit writes m into the stage, whose files are written, and makes the
// stage visible as kernel name, atomically replacing an existing install.
//
// The order is what makes a crash, even a power cut, harmless: the whole
// stage is on stable storage (one syncfs, see stagedir.FS) before the
// rename that publishes it is even issued, so the rename can never reach
// the disk ahead of the data it names; until the rename is on disk the
// kernel is simply not installed, and the next run removes the stage. A
// pull that returned success has also flushed the kernels directory
// (stagedir.Publish), so the rename itself is durable.
// TestPowerCut cuts the power at each step and checks exactly this.
func (s *Store) commit(st *stage, name string, m *Manifest) error {
	if err := stagedir.WriteJSON(filepath.Join(st.dir, ManifestFile), m); err != nil {
		return s.diskFull(fmt.Errorf("installing kernel %q: %w", name, err))
	}
	s.step(StepStaged)
	if err := st.fs.Sync(); err != nil {
		return s.diskFull(fmt.Errorf("installing kernel %q: %w", name, err))
	}
	s.step(StepFlushed)
	if err := stagedir.Publish(s.dir, st.dir, name, true); err != nil {
		return fmt.Errorf("installing kernel %q: %w", name, err)
	}
	s.step(StepPublished)
	m.dir = s.path(name)
	return nil
}
