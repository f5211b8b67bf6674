// Package lockfile provides advisory inter-process locks with flock(2).
// The kernel releases a flock when its holder dies, so a killed banger never
// leaves a lock behind.
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Lock is a held lock. Unlock releases it.
type Lock struct{ f *os.File }

// ErrBusy is returned by TryLock when another process holds the lock.
var ErrBusy = errors.New("lock is held by another process")

func open(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating lock directory: %w", err)
	}
	// 0600: another user who could open it could hold a lock and stall
	// banger.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	if st, err := f.Stat(); err == nil && st.Mode().Perm()&0o077 != 0 {
		_ = f.Chmod(0o600) // one made by an older banger
	}
	return f, nil
}

// TryLock takes the exclusive lock at path without waiting; it returns
// ErrBusy if another process (or another Lock in this one) holds it.
func TryLock(path string) (*Lock, error) { return tryLock(path, unix.LOCK_EX) }

// TryLockShared takes the lock at path shared without waiting: any number
// of shared holders, none while someone holds it exclusive (ErrBusy).
func TryLockShared(path string) (*Lock, error) { return tryLock(path, unix.LOCK_SH) }

func tryLock(path string, how int) (*Lock, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Acquire takes the exclusive lock at path, waiting until it is free or
// ctx is done. If it has to wait, onWait (if non-nil) is called once first,
// so a command can say what it is waiting for.
func Acquire(ctx context.Context, path string, onWait func()) (*Lock, error) {
	return acquire(ctx, path, onWait, TryLock)
}

// AcquireShared is Acquire for a shared lock: readers that must keep a
// thing from being removed or replaced while they use it.
func AcquireShared(ctx context.Context, path string, onWait func()) (*Lock, error) {
	return acquire(ctx, path, onWait, TryLockShared)
}

func acquire(ctx context.Context, path string, onWait func(), try func(string) (*Lock, error)) (*Lock, error) {
	delay := 10 * time.Millisecond
	for waited := false; ; waited = true {
		l, err := try(path)
		if !errors.Is(err, ErrBusy) {
			return l, err
		}
		if !waited && onWait != nil {
			onWait()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 250*time.Millisecond)
	}
}

// Unlock releases the lock. The lock file stays: removing it would race
// with a process that has just opened it.
func (l *Lock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
