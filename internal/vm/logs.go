package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// Logs copies the VM's serial console log (all boots) to w. With follow,
// it keeps copying what is appended until the VM stops or ctx ends.
func (s *Store) Logs(ctx context.Context, name string, w io.Writer, follow bool) error {
	v, err := s.Get(name)
	if err != nil {
		return err
	}
	f, err := os.Open(v.ConsoleLog())
	if errors.Is(err, fs.ErrNotExist) && !follow {
		return nil // never started: no output yet
	}
	for errors.Is(err, fs.ErrNotExist) {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		f, err = os.Open(v.ConsoleLog())
	}
	if err != nil {
		return fmt.Errorf("reading the console log of VM %q: %w", name, err)
	}
	defer f.Close()
	// Following, the VM's record is read again (and reconciled) only when
	// nothing new was written and either its VMM as last recorded is gone
	// (the VM stopped, or a start recorded no VMM yet, or a restart) or
	// the guest halted, which ends no VMM by itself.
	halted := false
	for {
		n, err := io.Copy(w, f)
		if err != nil {
			return fmt.Errorf("reading the console log of VM %q: %w", name, err)
		}
		if !follow {
			return nil
		}
		if n > 0 {
			halted = guestHalted(v)
		}
		if n == 0 && (halted || !v.State.Process().Alive()) {
			if v, err = s.Get(name); err != nil || !v.State.Status.active() {
				_, _ = io.Copy(w, f) // what was written before it stopped
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
