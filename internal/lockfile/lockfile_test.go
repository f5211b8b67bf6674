package lockfile

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestExclusiveAndWait(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(p); !errors.Is(err, ErrBusy) {
		t.Fatalf("second TryLock = %v, want ErrBusy", err)
	}
	waited := make(chan struct{})
	got := make(chan error, 1)
	go func() {
		l2, err := Acquire(context.Background(), p, func() { close(waited) })
		if err == nil {
			err = l2.Unlock()
		}
		got <- err
	}()
	<-waited
	select {
	case err := <-got:
		t.Fatalf("Acquire returned while lock held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestAcquireHonoursContext(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.lock")
	l, err := TryLock(p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := Acquire(ctx, p, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

// TestShared: shared holders coexist and keep an exclusive lock out; the
// exclusive one, once taken, keeps new shared holders out.
func TestShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	a, err := TryLockShared(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := TryLockShared(path)
	if err != nil {
		t.Fatalf("second shared holder: %v", err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrBusy) {
		t.Fatalf("exclusive lock while shared holders: %v", err)
	}
	a.Unlock()
	b.Unlock()
	x, err := TryLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLockShared(path); !errors.Is(err, ErrBusy) {
		t.Fatalf("shared lock while exclusive: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := AcquireShared(ctx, path, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireShared while exclusive: %v", err)
	}
	x.Unlock()
	if l, err := AcquireShared(context.Background(), path, nil); err != nil {
		t.Fatal(err)
	} else {
		l.Unlock()
	}
}
