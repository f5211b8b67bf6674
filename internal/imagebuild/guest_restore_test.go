package imagebuild

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/guestinit"
)

func TestSetupGuestInstallsReseed(t *testing.T) {
	for _, tc := range []struct {
		arch, want string // want: whose program lands, "" for none
	}{
		{"", "x86_64"},
		{"x86_64", "x86_64"},
		{"arm64", "arm64"},
		{"riscv64", ""},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			dir := t.TempDir()
			warns, err := setupGuest(dir, GuestConfig{Hostname: "img", AuthorizedKey: testKey, Arch: tc.arch})
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, guestinit.ReseedPath)
			fi, err := os.Lstat(p)
			if tc.want == "" {
				if err == nil || len(warns) == 0 || !strings.Contains(warns[len(warns)-1], "no reseed program for riscv64") {
					t.Errorf("unsupported arch: file %v, warnings %q", err, warns)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode() != 0o755 {
				t.Errorf("%s mode %v, want -rwxr-xr-x", guestinit.ReseedPath, fi.Mode())
			}
			want, err := guestinit.ReseedProgram(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
				t.Errorf("%s is not the %s reseed program", guestinit.ReseedPath, tc.want)
			}
		})
	}
}
