package vm

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe to read while Logs writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogsFollow: logs -f prints what is appended to the console log
// while the VMM lives, and ends, with the last output, once it is gone.
// The VMM is a live process (sleep) standing in for QEMU: Logs only
// watches its pid, and no boot is needed.
func TestLogsFollow(t *testing.T) {
	s := newStore(t, nil)
	v, _, kill := standInVMM(t, s, "tail", StatusRunning)
	appendLog := func(text string) {
		f, err := os.OpenFile(v.ConsoleLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
	}
	appendLog("first line\n")

	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- s.Logs(context.Background(), "tail", &out, true) }()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("logs -f printed %q, want %q in it", out.String(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first line\n")
	time.Sleep(300 * time.Millisecond) // several idle polls: it must keep following
	select {
	case err := <-done:
		t.Fatalf("logs -f ended while the VMM runs: %v", err)
	default:
	}
	appendLog("second line\n")
	waitFor("first line\nsecond line\n")

	appendLog("last words\n")
	kill()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not end 5s after the VMM died")
	}
	if got := out.String(); got != "first line\nsecond line\nlast words\n" {
		t.Errorf("logs -f printed %q", got)
	}
	if v := status(t, s, "tail"); v.State.Status.active() {
		t.Errorf("VM still %s after its VMM died", v.State.Status)
	}
}
