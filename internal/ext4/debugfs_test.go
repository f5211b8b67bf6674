package ext4

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/ext4/ext4test"
)

func TestEdit(t *testing.T) {
	tree := t.TempDir()
	if err := os.Mkdir(filepath.Join(tree, `a "dir"`), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, `a "dir"`, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "i.ext4")
	mkfs(t, img, 16<<20, "-d", tree)
	p := `/a "dir"/f`
	err := Edit(context.Background(), img, []string{"sif " + Quote(p) + " uid 1234", "sif " + Quote(p) + " mode 0104711"})
	if err != nil {
		t.Fatal(err)
	}
	in, ok := ext4test.Stat(t, img, p)
	if !ok || in.UID != 1234 || in.Mode != 0o4711 {
		t.Fatalf("after Edit: %+v", in)
	}
	ext4test.Fsck(t, img)
	err = Edit(context.Background(), img, []string{"sif /missing uid 1"})
	if err == nil || !strings.Contains(err.Error(), "/missing") {
		t.Fatalf("Edit of a missing path: %v", err)
	}
	if err := Edit(context.Background(), img, nil); err != nil {
		t.Fatal(err)
	}
}
