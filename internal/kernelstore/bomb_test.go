package kernelstore

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/archive"
	"github.com/thaloco/banger/internal/bundletest"
)

// TestPullRefusesBomb: a bundle of a couple of hundred KiB that expands to
// 2 GiB is refused while it is unpacked, with one line naming the bundle,
// the ratio and the limit, and nothing of it is left visible: no kernel,
// no staging directory.
func TestPullRefusesBomb(t *testing.T) {
	e, _ := serveBundle(t, "bomb", bundletest.Bomb(2<<30), bundletest.Faults{})
	s := New(t.TempDir())
	_, err := s.Pull(context.Background(), e, PullOptions{})
	if !errors.Is(err, archive.ErrLimitExceeded) {
		t.Fatalf("err = %v, want a bundle limit error", err)
	}
	msg := err.Error()
	for _, want := range []string{`pulling kernel "bomb": unpacking ` + e.URL + ": bundle expands ", "-fold (", "over the 50-fold limit"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error = %q, want it to contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	if _, err := s.Get("bomb"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("after the refused pull, Get = %v, want not installed", err)
	}
	ents, err := os.ReadDir(s.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		if n := ent.Name(); n != ".locks" && n != ".partial" {
			t.Errorf("left in the kernels directory after the refused pull: %s", n)
		}
	}
}
