package progress

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestPlainOutputIsLineOriented(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "pulling x", 2048)
	for range 10 {
		b.Add(100)
	}
	b.Add(1048)
	b.Finish(nil)
	out := buf.String()
	if strings.Contains(out, "\r") || strings.Contains(out, "\x1b") {
		t.Fatalf("non-TTY output has terminal controls: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "2.0 KiB") || !strings.Contains(lines[1], "done, 2.0 KiB") {
		t.Fatalf("unexpected output %q", out)
	}
	b.Finish(nil) // idempotent
	if buf.String() != out {
		t.Fatal("second Finish printed again")
	}
}

func TestFailureAndNil(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 0)
	_, _ = b.Write(make([]byte, 10))
	b.Finish(errors.New("boom"))
	if !strings.Contains(buf.String(), "failed after 10 B") {
		t.Fatalf("got %q", buf.String())
	}
	var nb *Bar
	nb.Add(1)
	nb.Finish(nil)
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
