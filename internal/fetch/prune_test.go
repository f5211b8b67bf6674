package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPruneStale: partial downloads last written more than a cutoff ago
// are removed; newer ones, and an old one a download holds right now, are
// kept. Real files, real mtimes, a real download holding its flock.
func TestPruneStale(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	week := 7 * 24 * time.Hour
	put := func(name string, age time.Duration) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("bytes"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	put("old.part", week+time.Hour)
	put("fresh.part", week-time.Hour)
	if err := os.Mkdir(filepath.Join(dir, "old-dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	target := put("target", 30*24*time.Hour)
	if err := os.Symlink(target, filepath.Join(dir, "link.part")); err != nil {
		t.Fatal(err)
	}

	// A download in progress on busy.part, stalled by its server.
	data := payload(3<<20, 21)
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w = &stallWriter{ResponseWriter: w, n: cut, r: r, stop: srv.stop}
		}
		serve(w, r, data, `"v1"`)
	})
	busy := filepath.Join(dir, "busy.part")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	received := &signalAt{at: cut, c: make(chan struct{})}
	rc := mustOpen(t, ctx, srcFor(srv.url(), data), Options{Partial: busy, Progress: received})
	defer rc.Close()
	if _, err := io.ReadFull(rc, make([]byte, 512<<10)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-received.c:
	case <-time.After(10 * time.Second):
		t.Fatal("the download never received the bytes sent")
	}
	// The server is stalled: once the partial file stops growing, nothing
	// writes to it (and its mtime stays) until the test says so.
	for size := int64(-1); ; time.Sleep(100 * time.Millisecond) {
		st, err := os.Stat(busy)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() == size {
			break
		}
		size = st.Size()
	}
	if err := os.Chtimes(busy, now.Add(-2*week), now.Add(-2*week)); err != nil {
		t.Fatal(err)
	}

	removed := PruneStale(dir, now.Add(-week))
	if !slices.Equal(removed, []string{"old.part", "target"}) {
		t.Errorf("removed %v, want [old.part target]", removed)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if want := []string{"busy.part", "fresh.part", "link.part", "old-dir"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
	if st, err := os.Stat(busy); err != nil {
		t.Fatalf("the partial file of a running download was pruned: %v", err)
	} else if !st.ModTime().Before(now.Add(-week)) {
		t.Fatalf("busy.part was written to during the prune (mtime %v): the test proves nothing", st.ModTime())
	}

	// A second download of the same file while the first holds it goes
	// ahead without the partial file, and leaves the first one's alone.
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), Options{Partial: busy, Logf: logs.logf(t)}))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second download: %v", err)
	}
	if !strings.Contains(logs.all(), "is in use by another process") {
		t.Errorf("second download did not say the partial was busy: %q", logs.all())
	}

	// The first download ends (Ctrl-C) keeping what it received, untouched
	// by the second; it is then stale like any other.
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	rc.Close()
	if kept, err := os.ReadFile(busy); err != nil || !bytes.Equal(kept, data[:cut]) {
		t.Fatalf("the first download's partial file holds %d bytes (%v), want the %d it received", len(kept), err, cut)
	}
	if err := os.Chtimes(busy, now.Add(-2*week), now.Add(-2*week)); err != nil {
		t.Fatal(err)
	}
	if removed := PruneStale(dir, now.Add(-week)); !slices.Equal(removed, []string{"busy.part"}) {
		t.Errorf("after the download ended, removed %v, want [busy.part]", removed)
	}
}
