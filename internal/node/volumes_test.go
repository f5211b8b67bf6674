package node

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

func TestItemPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"key", "/etc/cfg/key"},
		{"a/b/../c", "/etc/cfg/a/c"},
		{"../escape", ""},
		{"a/../../escape", ""},
		{"/abs", ""},
		{".", ""},
	} {
		got, err := itemPath("/etc/cfg", tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("itemPath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("itemPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestVolumesTar: the stream names paths under the guest's root, with
// the modes asked for and directories as directories.
func TestVolumesTar(t *testing.T) {
	stream, err := volumesTar([]volumeFile{
		{path: "/etc/cfg", mode: 0o755, dir: true},
		{path: "/etc/cfg/key", mode: 0o440, data: []byte("value")},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(stream))
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(tr)
		got = append(got, h.Name)
		if h.Name == "etc/cfg/key" && (h.Mode != 0o440 || string(data) != "value") {
			t.Errorf("key: mode %o, %q", h.Mode, data)
		}
		if h.Name == "etc/cfg/" && h.Typeflag != tar.TypeDir {
			t.Errorf("etc/cfg/ is type %c, want a directory", h.Typeflag)
		}
	}
	if len(got) != 2 || got[0] != "etc/cfg/" || got[1] != "etc/cfg/key" {
		t.Errorf("entries %q, want etc/cfg/ and etc/cfg/key", got)
	}
}
