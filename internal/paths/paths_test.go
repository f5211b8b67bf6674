package paths

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name        string
		env         map[string]string
		state, kern string
		wantErr     string
	}{
		{"home default", map[string]string{"HOME": "/h"}, "/h/.local/state/banger", "/h/.local/state/banger/kernels", ""},
		{"xdg", map[string]string{"HOME": "/h", "XDG_STATE_HOME": "/x"}, "/x/banger", "/x/banger/kernels", ""},
		{"explicit state wins", map[string]string{"HOME": "/h", "XDG_STATE_HOME": "/x", "BANGER_STATE_DIR": "/s"}, "/s", "/s/kernels", ""},
		{"kernels override", map[string]string{"BANGER_STATE_DIR": "/s", "BANGER_KERNELS_DIR": "/k"}, "/s", "/k", ""},
		{"relative xdg", map[string]string{"XDG_STATE_HOME": "rel"}, "", "", "not an absolute path"},
		{"nothing", map[string]string{}, "", "", "HOME is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := FromEnv(env(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.State != tt.state || l.KernelsDir != tt.kern {
				t.Fatalf("got state=%q kernels=%q, want %q %q", l.State, l.KernelsDir, tt.state, tt.kern)
			}
		})
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"generic-6.12", "a", "0x", "void_6.12", "a.b-c_d"}
	bad := []string{"", "-a", ".a", "A", "a/b", "..", ".", "a b", "a\x00", "ü", strings.Repeat("a", MaxNameLen+1), "a\\b"}
	for _, n := range good {
		if err := ValidateName("kernel", n); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", n, err)
		}
	}
	for _, n := range bad {
		if err := ValidateName("kernel", n); err == nil {
			t.Errorf("ValidateName(%q) = nil, want error", n)
		}
	}
}

// TestEnsureState: a new state directory is made 0700; an existing one
// that others could read is made private, once, and said so.
func TestEnsureState(t *testing.T) {
	l := Layout{State: filepath.Join(t.TempDir(), "a", "banger")}
	for i, want := range []bool{false, false} {
		got, err := EnsureState(l)
		if err != nil || got != want {
			t.Fatalf("call %d: EnsureState = %v, %v; want %v", i, got, err, want)
		}
	}
	st, err := os.Stat(l.State)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("new state directory: %v, %v; want 0700", st.Mode(), err)
	}
	if err := os.Chmod(l.State, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := EnsureState(l); err != nil || !got {
		t.Fatalf("EnsureState of a 0755 directory = %v, %v; want tightened", got, err)
	}
	if st, _ := os.Stat(l.State); st.Mode().Perm() != 0o700 {
		t.Errorf("after tightening: %v", st.Mode())
	}
	if got, _ := EnsureState(l); got {
		t.Error("tightened twice")
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureState(Layout{State: file}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as the state directory: %v", err)
	}
}
