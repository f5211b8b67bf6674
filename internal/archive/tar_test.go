package archive

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func (s *sandbox) extractTar(tb testing.TB, data []byte, lim Limits) ([]File, error) {
	tb.Helper()
	files, err := ExtractTar(context.Background(), bytes.NewReader(data), s.out, lim)
	s.checkOutside(tb)
	return files, err
}

// TestExtractTarGood: a plain tar with every root, padded with zeros to a
// full tar record as GNU tar writes it, installs like the same bundle.
func TestExtractTarGood(t *testing.T) {
	raw := tarBytes(t,
		file("vmlinux", "kernel"),
		file("initrd.img", "initrd"),
		file("modules/6.12.0/a.ko", "ko"),
		symlink("modules/latest", "6.12.0"),
	)
	raw = append(raw, make([]byte, 10240-len(raw)%10240)...)
	s := newSandbox(t)
	files, err := s.extractTar(t, raw, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "initrd.img", Size: 6, SHA256: sum("initrd"), Mode: "-rw-r--r--"},
		{Path: "modules", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0", Mode: "drwxr-xr-x"},
		{Path: "modules/6.12.0/a.ko", Size: 2, SHA256: sum("ko"), Mode: "-rw-r--r--"},
		{Path: "modules/latest", Mode: "Lrwxrwxrwx", LinkTarget: "6.12.0"},
		{Path: "vmlinux", Size: 6, SHA256: sum("kernel"), Mode: "-rw-r--r--"},
	}
	if !slices.Equal(files, want) {
		t.Errorf("files = %+v\nwant %+v", files, want)
	}
	if b, err := os.ReadFile(filepath.Join(s.out, "modules", "latest", "a.ko")); err != nil || string(b) != "ko" {
		t.Errorf("modules/latest/a.ko = %q, %v", b, err)
	}
}

// TestExtractTarHostile runs the bundle trust-model table through
// ExtractTar: the rules are the same without compression.
func TestExtractTarHostile(t *testing.T) {
	for _, tt := range hostileCases {
		t.Run(tt.name, func(t *testing.T) {
			s := newSandbox(t)
			files, err := s.extractTar(t, tarBytes(t, tt.ents...), Limits{})
			var ue *UnsafeEntryError
			if !errors.As(err, &ue) {
				t.Fatalf("ExtractTar = %v, %v; want an *UnsafeEntryError", files, err)
			}
			msg := err.Error()
			if ue.Name != tt.wantEntry || !strings.Contains(msg, tt.wantText) || strings.Contains(msg, "\n") {
				t.Errorf("error = %q, want one line naming %q and saying %q", msg, tt.wantEntry, tt.wantText)
			}
			if err := os.RemoveAll(s.out); err != nil {
				t.Fatalf("removing the extraction directory: %v", err)
			}
			s.checkOutside(t)
		})
	}
}

// TestExtractTarBadStreams: the end-of-archive and trailing-data checks of
// ExtractBundle hold for a plain tar, and limits still apply.
func TestExtractTarBadStreams(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", randomBytes(t, 64<<10)))
	tests := []struct {
		name string
		data []byte
		lim  Limits
		want string
	}{
		{"empty input", nil, Limits{}, "the tar stream is empty"},
		{"tar without end marker", raw[:len(raw)-1024], Limits{}, "no end-of-archive marker"},
		{"tar with one zero block", raw[:len(raw)-512], Limits{}, "no end-of-archive marker"},
		{"tar truncated mid-file", raw[:1024], Limits{}, "the bundle is truncated"},
		{"data after the end marker", append(slices.Clone(raw), "junk"...), Limits{}, "data after the end-of-archive marker"},
		{"second tar after the end marker", append(slices.Clone(raw), raw...), Limits{}, "data after the end-of-archive marker"},
		{"zstd instead of tar", compress(t, raw), Limits{}, "reading bundle tar: "},
		{"over MaxBytes", raw, Limits{MaxBytes: 32 << 10}, "bundle expands to more than 32 KiB of tar data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newSandbox(t).extractTar(t, tt.data, tt.lim)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line containing %q", err, tt.want)
			}
		})
	}
}

// TestExtractTarReaderError: an error from r (here the end of a pipe whose
// writer failed, as kernelstore's import does) is reported as such.
func TestExtractTarReaderError(t *testing.T) {
	raw := tarBytes(t, file("vmlinux", randomBytes(t, 4096)))
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write(raw[:1024])
		pw.CloseWithError(errors.New("open vmlinux: permission denied"))
	}()
	_, err := ExtractTar(context.Background(), pr, newSandbox(t).out, Limits{})
	if err == nil || err.Error() != "reading bundle tar: open vmlinux: permission denied" {
		t.Errorf("err = %v, want the writer's error", err)
	}
}
