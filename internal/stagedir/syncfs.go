package stagedir

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// FS is the file system a staging directory is on, held open to put
// everything written into the directory on stable storage with one
// syncfs(2) before Publish.
//
// One syncfs, not an fsync per file: a kernel's modules/ tree is about
// 6,000 files, and flushing each one waits for a journal commit and a disk
// cache flush of its own, which made installing such a tree several times
// slower than tar -x. syncfs writes back and commits everything in one go
// (internal/archive starts the write-back early, so little is left to do;
// see its writeback.go for the alternatives measured).
//
// What it costs: syncfs flushes the whole file system, so it also waits for
// other programs' unwritten data there, as `sync -f` does.
//
// Write-back errors are reported for everything written since OpenFS
// (since Linux 5.8, syncfs reports the file system's write-back errors seen
// since its descriptor was opened; older kernels report none), so open it
// before writing into the directory.
type FS struct{ f *os.File }

// OpenFS opens the file system of dir, before anything is written into it.
func OpenFS(dir string) (*FS, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("opening %s to flush it: %w", dir, err)
	}
	return &FS{f: f}, nil
}

// Sync puts everything written on the file system so far, data and
// metadata, on stable storage, and reports any write-back error met since
// OpenFS.
func (s *FS) Sync() error {
	err := ignoringEINTR(func() error { return unix.Syncfs(int(s.f.Fd())) })
	if err != nil {
		return fmt.Errorf("flushing %s to disk: %w", s.f.Name(), err)
	}
	return nil
}

// Close releases the descriptor.
func (s *FS) Close() error { return s.f.Close() }

func ignoringEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
