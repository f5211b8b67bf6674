package e2e

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// checkBundleLayout reads a packed bundle with Go's own tar and zstd
// readers and checks the deterministic layout: only vmlinux, at the root,
// owned by 0:0, mtime 0, identical to the imported vmlinux.
func checkBundleLayout(t *testing.T, path string, vmlinux []byte) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := zstd.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: %s has uid %d gid %d mtime %s, want 0 0 epoch", path, h.Name, h.Uid, h.Gid, h.ModTime)
		}
		if h.Name == "vmlinux" {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, vmlinux) {
				t.Errorf("%s: vmlinux differs from the imported one", path)
			}
		}
	}
	if len(names) != 1 || names[0] != "vmlinux" {
		t.Errorf("%s holds %q, want just vmlinux at the root", path, names)
	}
}
