package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func randomBytes(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func TestMaxBytes(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", strings.Repeat("k", 1<<20)), file("modules/a.ko", "x"))
	data := compress(t, raw)
	if _, err := newSandbox(t).extract(t, data, Limits{MaxBytes: int64(len(raw))}); err != nil {
		t.Errorf("tar of exactly MaxBytes: %v", err)
	}
	_, err := newSandbox(t).extract(t, data, Limits{MaxBytes: int64(len(raw)) - 1})
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "bundle expands to more than") {
		t.Errorf("tar one byte over MaxBytes: err = %v, want a MaxBytes error", err)
	}
	_, err = newSandbox(t).extract(t, data, Limits{MaxBytes: 512 << 10})
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "more than 512 KiB of tar data") {
		t.Errorf("1 MiB file, 512 KiB MaxBytes: err = %v", err)
	}
}

func TestMaxEntries(t *testing.T) {
	data := bundle(t, file("vmlinux", "k"), file("modules/a/b.ko", "x"))
	if _, err := newSandbox(t).extract(t, data, Limits{MaxEntries: 4}); err != nil {
		t.Errorf("4 entries (2 implicit directories), MaxEntries 4: %v", err)
	}
	_, err := newSandbox(t).extract(t, data, Limits{MaxEntries: 3})
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), `"modules/a/b.ko": more than 3 entries`) {
		t.Errorf("MaxEntries 3: err = %v", err)
	}
}

// TestZstdWindow checks the window cap on a frame header the real encoder
// wrote, and on one that claims a 256 MiB window (patched in, so the test
// does not have to allocate it) against the 128 MiB default.
func TestZstdWindow(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", strings.Repeat("kernel\n", 3<<20/7)))
	big := compress(t, raw, zstd.WithWindowSize(8<<20), zstd.WithSingleSegment(false))
	var h zstd.Header
	if err := h.Decode(big); err != nil || h.WindowSize <= 1<<20 {
		t.Fatalf("encoder wrote window %d (%v), want more than 1 MiB", h.WindowSize, err)
	}
	if _, err := newSandbox(t).extract(t, big, Limits{MaxWindow: h.WindowSize}); err != nil {
		t.Errorf("%d-byte window at the cap: %v", h.WindowSize, err)
	}
	_, err := newSandbox(t).extract(t, big, Limits{MaxWindow: 1 << 20})
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "zstd window is larger than the 1 MiB limit") {
		t.Errorf("%d-byte window, 1 MiB cap: err = %v", h.WindowSize, err)
	}

	// A frame header claiming a 256 MiB window (patched in, so the test does
	// not allocate it) against the 128 MiB default. The header is the
	// magic, the frame descriptor, then the window descriptor.
	huge := compress(t, tarBytes(t, file("vmlinux", "kernel")), zstd.WithSingleSegment(false))
	huge[5] = 18 << 3 // exponent 18: 2^(10+18) = 256 MiB, mantissa 0
	if err := h.Decode(huge); err != nil || h.WindowSize != 256<<20 {
		t.Fatalf("patched header: window %d, %v; want 256 MiB", h.WindowSize, err)
	}
	_, err = newSandbox(t).extract(t, huge, DefaultLimits())
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "larger than the 128 MiB limit") {
		t.Errorf("256 MiB window, default cap: err = %v", err)
	}
}

func TestBadStreams(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", randomBytes(t, 64<<10)))
	good := compress(t, raw)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not zstd", raw, "decompressing bundle: "},
		{"empty input", nil, "bundle is empty"},
		{"empty zstd frame", compress(t, nil), "bundle is empty"},
		{"truncated zstd", good[:len(good)/2], "decompressing bundle: "},
		{"corrupt zstd", corrupt(good), "decompressing bundle: "},
		{"tar without end marker", compress(t, raw[:len(raw)-1024]), "no end-of-archive marker"},
		{"tar with one zero block", compress(t, raw[:len(raw)-512]), "no end-of-archive marker"},
		{"tar truncated mid-file", compress(t, raw[:1024]), "the bundle is truncated"},
		{"not a tar", compress(t, bytes.Repeat([]byte("garbage!"), 200)), "reading bundle tar: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSandbox(t).extract(t, tt.data, Limits{})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line containing %q", err, tt.want)
			}
		})
	}
}

func corrupt(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0xff
	return c
}

// TestCallerDrainsReader: ExtractBundle has stopped reading r when it
// returns, so the caller's hash over everything it read plus the rest
// equals the hash of the whole download (run with -race).
func TestCallerDrainsReader(t *testing.T) {
	data := bundle(t, file("vmlinux", randomBytes(t, 1<<20)))
	data = append(data, make([]byte, 4096)...) // not zstd: left for the caller
	want := sha256.Sum256(data)
	h := sha256.New()
	r := io.TeeReader(bytes.NewReader(data), h)
	s := newSandbox(t)
	if _, err := ExtractBundle(context.Background(), io.LimitReader(r, int64(len(data)-4096)), s.out, Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); err != nil {
		t.Fatal(err)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want[:]) {
		t.Errorf("hash after draining = %x, want %x", got, want)
	}
}

func TestContextCanceled(t *testing.T) {
	data := bundle(t, file("vmlinux", randomBytes(t, 8<<20)), file("modules/a.ko", "x"))
	t.Run("before", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s := newSandbox(t)
		_, err := ExtractBundle(ctx, bytes.NewReader(data), s.out, Limits{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := s.tree(t); len(got) != 0 {
			t.Errorf("wrote %q after cancellation", got)
		}
	})
	t.Run("during a long copy", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// A real stream; the wrapper only pulls the trigger (as Ctrl-C
		// would) once a quarter of it was read.
		r := &cancelAfter{r: bytes.NewReader(data), n: len(data) / 4, cancel: cancel}
		s := newSandbox(t)
		_, err := ExtractBundle(ctx, r, s.out, Limits{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if got := s.tree(t); !equalStrings(got, []string{"vmlinux"}) {
			t.Errorf("tree after cancel = %q, want the partial vmlinux only", got)
		}
	})
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }

// TestWriteError makes writes fail the way a full disk would, with a real
// file size limit (RLIMIT_FSIZE; Go ignores the SIGXFSZ it raises, so the
// write returns EFBIG), for a small file (written by the pool) and a large
// one (streamed).
func TestWriteError(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, entry string }{
		{"small file", "modules/big.ko"},
		{"large file", "vmlinux"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			size := 200 << 10
			if tt.entry == "vmlinux" {
				size = smallFile + 1
			}
			ents := []ent{file(tt.entry, randomBytes(t, size))}
			if tt.entry != "vmlinux" {
				ents = append(ents, file("vmlinux", "k"))
			}
			data := bundle(t, ents...)
			s := newSandbox(t)
			lim := syscall.Rlimit{Cur: 100 << 10, Max: old.Max}
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
				t.Fatal(err)
			}
			_, err := ExtractBundle(context.Background(), bytes.NewReader(data), s.out, Limits{})
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
			if err == nil || !strings.Contains(err.Error(), `writing "`+tt.entry+`": `) || !errors.Is(err, syscall.EFBIG) {
				t.Errorf("err = %v, want a write error naming %s", err, tt.entry)
			}
		})
	}
}
