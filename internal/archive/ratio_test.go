package archive

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/bundletest"
)

// TestMaxRatio: a bundle of a couple of hundred KiB that expands to 2 GiB
// is refused as soon as it crosses the ratio limit, after RatioGrace bytes
// of tar rather than 2 GiB of writes, with one line naming the ratio and
// the limit.
func TestMaxRatio(t *testing.T) {
	bomb := bundletest.Bomb(2 << 30)
	if len(bomb) > 512<<10 {
		t.Fatalf("bomb is %d bytes, want a few hundred KiB", len(bomb))
	}
	s := newSandbox(t)
	_, err := s.extract(t, bomb, Limits{})
	if !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("2 GiB from %d bytes: err = %v, want a limit error", len(bomb), err)
	}
	msg := err.Error()
	t.Logf("%d-byte bundle refused: %s", len(bomb), msg)
	if !strings.HasPrefix(msg, "bundle expands ") || !strings.Contains(msg, "-fold (") || !strings.Contains(msg, "over the 50-fold limit") || strings.Contains(msg, "\n") {
		t.Errorf("error = %q, want one line with the ratio and the 50-fold limit", msg)
	}
	// As soon as it is crossed: the partial vmlinux (the caller removes
	// it) holds little more than RatioGrace, not 2 GiB.
	if st, err := os.Stat(filepath.Join(s.out, "vmlinux")); err == nil && st.Size() > RatioGrace+8<<20 {
		t.Errorf("%d bytes of vmlinux were written before the bomb was refused, want at most RatioGrace + 8 MiB", st.Size())
	}
}

// TestMaxRatioRealistic: a bundle shaped like a real x86_64 one (vmlinux
// starting with 2 MiB of zero padding, then data that compresses about
// fourfold) passes the default limit even though its first megabytes run
// at thousands to one; a 2-fold limit refuses it once past RatioGrace.
// ExtractTar has no compressed size to compare with and ignores the ratio.
func TestMaxRatioRealistic(t *testing.T) {
	body := make([]byte, 2<<20, 26<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 24 << 20 {
		body = append(body, "ELF\x00"[rng.IntN(4)]) // 2 bits a byte: about 4-fold
	}
	raw := tarBytes(t, file("vmlinux", string(body)))
	data := compress(t, raw)
	if r := len(raw) / len(data); r < 3 || r > 6 {
		t.Fatalf("test bundle compresses %d-fold, want about 4", r)
	}
	if _, err := newSandbox(t).extract(t, data, DefaultLimits()); err != nil {
		t.Fatalf("realistic bundle: %v", err)
	}
	_, err := newSandbox(t).extract(t, data, Limits{MaxRatio: 2})
	if !errors.Is(err, ErrLimitExceeded) || !strings.Contains(err.Error(), "over the 2-fold limit") {
		t.Fatalf("MaxRatio 2: err = %v, want a ratio error", err)
	}

	zeros := tarBytes(t, file("vmlinux", string(make([]byte, RatioGrace+(4<<20)))))
	if _, err := ExtractTar(context.Background(), bytes.NewReader(zeros), newSandbox(t).out, DefaultLimits()); err != nil {
		t.Fatalf("ExtractTar of zeros: %v", err)
	}
}
