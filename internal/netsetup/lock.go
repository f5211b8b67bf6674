package netsetup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/thaloco/banger/internal/lockfile"
)

// RunDir is the host-wide directory of root's banger: it holds the lock
// that serialises every Setup and Teardown on the host, whatever state
// directory they use. Created 0700.
const RunDir = "/run/banger"

// lock takes the lock Setup, Teardown and migrations hold while they read
// leases and change the host: RunDir/net.lock for root, so two state
// directories (sudo and sudo -E) never allocate one subnet at the same
// time; the state directory's own lock for a non-root process holding
// CAP_NET_ADMIN, which may not write /run.
func lock(ctx context.Context, cfg Config) (*lockfile.Lock, error) {
	path := filepath.Join(cfg.StateDir, "lock")
	if os.Geteuid() == 0 {
		if err := ensureRunDir(); err != nil {
			return nil, err
		}
		path = filepath.Join(RunDir, "net.lock")
	}
	return lockfile.Acquire(ctx, path, nil)
}

// ensureRunDir creates RunDir 0700, or checks that the existing one is a
// root-owned directory and takes group and other access away from it.
func ensureRunDir() error {
	err := os.Mkdir(RunDir, 0o700)
	switch {
	case err == nil:
		return nil
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("creating %s: %w", RunDir, err)
	}
	st, err := os.Lstat(RunDir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || sys.Uid != 0 {
		return fmt.Errorf("%s is not a directory owned by root (hint: remove it; banger creates it)", RunDir)
	}
	if st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(RunDir, 0o700); err != nil {
			return fmt.Errorf("making %s private: %w", RunDir, err)
		}
	}
	return nil
}
