package fetch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/progress"
)

const cut = 1_000_003 // not a multiple of anything in the code

func TestDropResumesWithRange(t *testing.T) {
	data := payload(3<<20, 10)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w = &cutWriter{ResponseWriter: w, n: cut}
		}
		serve(w, r, data, `"v1"`)
	})
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the served bytes")
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if r := reqs[0].Get("Range"); r != "" {
		t.Errorf("first request carried Range %q", r)
	}
	if r, want := reqs[1].Get("Range"), "bytes="+strconv.Itoa(cut)+"-"; r != want {
		t.Errorf("second request Range = %q, want %q", r, want)
	}
	if ir := reqs[1].Get("If-Range"); ir != `"v1"` {
		t.Errorf("second request If-Range = %q, want the ETag", ir)
	}
	if !strings.Contains(logs.all(), "connection dropped at "+progress.FormatBytes(cut)+"; resuming") {
		t.Errorf("no resume line logged:\n%s", logs.all())
	}
}

func TestDropWithoutRangeSupport(t *testing.T) {
	data := payload(3<<20, 11)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// A server without range support: always the whole file, 200.
		if n == 0 {
			w = &cutWriter{ResponseWriter: w, n: cut}
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.Write(data)
	})
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the served bytes: the re-sent prefix was not skipped exactly")
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[1].Get("Range") != "bytes="+strconv.Itoa(cut)+"-" {
		t.Fatalf("requests %v, want 2 with the second asking for a range", reqs)
	}
	if !strings.Contains(logs.all(), "sent the whole file again") {
		t.Errorf("no re-download line logged:\n%s", logs.all())
	}
}

// The file changes between the dropped attempt and the retry: If-Range
// makes the server send the new file whole; spliced onto the old prefix
// it cannot match the digest, and it must not pass as good.
func TestChangedResourceIsDigestError(t *testing.T) {
	v1 := payload(2<<20, 12)
	v2 := payload(2<<20, 13)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			serve(&cutWriter{ResponseWriter: w, n: cut}, r, v1, `"v1"`)
			return
		}
		serve(w, r, v2, `"v2"`)
	})
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), v1), fast(t, &logs)))
	var de *DigestError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *DigestError", err)
	}
	spliced := append(append([]byte(nil), v1[:cut]...), v2[cut:]...)
	if !bytes.Equal(got, spliced) {
		t.Error("delivered bytes are not the old prefix plus the new rest")
	}
	if de.Expected != sum(v1) || de.Actual != sum(spliced) {
		t.Errorf("DigestError %+v, want expected %s actual %s", de, sum(v1), sum(spliced))
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[1].Get("If-Range") != `"v1"` {
		t.Fatalf("requests %v, want a second one with If-Range \"v1\"", reqs)
	}
}

func TestStallRetried(t *testing.T) {
	data := payload(1<<20, 14)
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w = &stallWriter{ResponseWriter: w, n: cut / 2, r: r, stop: srv.stop}
		}
		serve(w, r, data, `"v1"`)
	})
	var logs lines
	opts := fast(t, &logs)
	opts.Stall = 300 * time.Millisecond
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), opts))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the served bytes")
	}
	reqs := srv.requests()
	if len(reqs) != 2 || reqs[1].Get("Range") != "bytes="+strconv.Itoa(cut/2)+"-" {
		t.Fatalf("requests %v, want a second one resuming at %d", reqs, cut/2)
	}
	if !strings.Contains(logs.all(), "no data received for 300ms") {
		t.Errorf("no stall line logged:\n%s", logs.all())
	}
}

// A first run is cancelled mid-way (Ctrl-C); a second run with the same
// Partial replays the saved bytes and asks only for the rest.
func TestPartialAcrossRuns(t *testing.T) {
	data := payload(3<<20, 15)
	var srv *server
	srv = newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 0 {
			w = &stallWriter{ResponseWriter: w, n: cut, r: r, stop: srv.stop}
		}
		serve(w, r, data, `"v1"`)
	})
	part := filepath.Join(t.TempDir(), "k.part")
	var logs lines

	ctx, cancel := context.WithCancel(t.Context())
	received := &signalAt{at: cut, c: make(chan struct{})}
	rc := mustOpen(t, ctx, srcFor(srv.url(), data), Options{Partial: part, Logf: logs.logf(t), Progress: received})
	first := make([]byte, 512<<10)
	if _, err := io.ReadFull(rc, first); err != nil {
		t.Fatal(err)
	}
	select { // everything the server sent has arrived; now Ctrl-C
	case <-received.c:
	case <-time.After(10 * time.Second):
		t.Fatal("the first run never received the bytes sent")
	}
	cancel()
	if _, err := io.Copy(io.Discard, rc); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v, want context.Canceled", err)
	}
	rc.Close()
	kept, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != cut || !bytes.Equal(kept, data[:cut]) {
		t.Fatalf("partial file holds %d bytes, want the %d received, equal to the served prefix", len(kept), cut)
	}

	var progress countWriter
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data),
		Options{Partial: part, Logf: logs.logf(t), Progress: &progress}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("second run's output differs from the served bytes")
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	if r, want := reqs[1].Get("Range"), "bytes="+strconv.Itoa(cut)+"-"; r != want {
		t.Errorf("second run's Range = %q, want %q (the first run's received length)", r, want)
	}
	if progress.n != int64(len(data)) {
		t.Errorf("progress saw %d bytes, want %d (replayed bytes count)", progress.n, len(data))
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("partial file after success: %v, want it removed", err)
	}
}

func TestPartialEdgeCases(t *testing.T) {
	data := payload(1<<20, 16)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { serve(w, r, data, `"v1"`) })
	for _, tc := range []struct {
		name     string
		content  []byte
		requests int
		rng      string
	}{
		{"longer than size is discarded", append(append([]byte(nil), data...), 'x'), 1, ""},
		{"complete needs no request", data, 0, ""},
		{"empty starts from zero", nil, 1, ""},
		{"prefix resumes", data[:777], 1, "bytes=777-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			part := filepath.Join(t.TempDir(), "k.part")
			if err := os.WriteFile(part, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			before := len(srv.requests())
			got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), Options{Partial: part}))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Fatal("output differs from the served bytes")
			}
			reqs := srv.requests()[before:]
			if len(reqs) != tc.requests {
				t.Fatalf("%d requests, want %d", len(reqs), tc.requests)
			}
			if len(reqs) > 0 && reqs[0].Get("Range") != tc.rng {
				t.Errorf("Range = %q, want %q", reqs[0].Get("Range"), tc.rng)
			}
		})
	}
}

// A stale partial from another file: the digest check catches it and the
// partial is removed so the next run starts clean.
func TestStalePartialRemoved(t *testing.T) {
	data := payload(1<<20, 17)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, _ int) { serve(w, r, data, `"v1"`) })
	part := filepath.Join(t.TempDir(), "k.part")
	if err := os.WriteFile(part, payload(5000, 18), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), Options{Partial: part}))
	var de *DigestError
	if !errors.As(err, &de) {
		t.Fatalf("got %v, want a *DigestError", err)
	}
	if _, err := os.Stat(part); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale partial still there: %v", err)
	}
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), Options{Partial: part}))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("second run: %v", err)
	}
}

func TestParseContentRange(t *testing.T) {
	for _, tc := range []struct {
		in                 string
		first, last, total int64
		ok                 bool
	}{
		{"bytes 0-99/100", 0, 99, 100, true},
		{"bytes 5-9/*", 5, 9, -1, true},
		{"bytes 5-9/9", 0, 0, 0, false},
		{"bytes 9-5/100", 0, 0, 0, false},
		{"bytes -5/100", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	} {
		f, l, tot, err := parseContentRange(tc.in)
		if (err == nil) != tc.ok || tc.ok && (f != tc.first || l != tc.last || tot != tc.total) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v", tc.in, f, l, tot, err)
		}
	}
}

// signalAt closes c once at bytes have been written to it.
type signalAt struct {
	n, at int64
	c     chan struct{}
}

func (s *signalAt) Write(p []byte) (int, error) {
	s.n += int64(len(p))
	if s.n >= s.at && s.n-int64(len(p)) < s.at {
		close(s.c)
	}
	return len(p), nil
}

// A server that answers a range request with the wrong range is not
// trusted with ranges again: the retry asks for the whole file.
func TestBadPartialResponseFallsBack(t *testing.T) {
	data := payload(2<<20, 20)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch n {
		case 0:
			serve(&cutWriter{ResponseWriter: w, n: cut}, r, data, `"v1"`)
		case 1: // broken: claims a partial response but sends from byte 0
			w.Header().Set("Content-Range", "bytes 0-"+strconv.Itoa(len(data)-1)+"/"+strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data)
		default:
			serve(w, r, data, `"v1"`)
		}
	})
	var logs lines
	got, err := readAll(t, mustOpen(t, t.Context(), srcFor(srv.url(), data), fast(t, &logs)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("output differs from the served bytes")
	}
	reqs := srv.requests()
	if len(reqs) != 3 || reqs[2].Get("Range") != "" {
		t.Fatalf("requests %v, want a third one without Range", reqs)
	}
	if !strings.Contains(logs.all(), "bad partial response") {
		t.Errorf("no line about the bad partial response:\n%s", logs.all())
	}
}
