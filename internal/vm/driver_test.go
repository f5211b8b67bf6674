package vm

import (
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/vmm/firecracker"
)

// TestJailerIDs: jailed Firecrackers run as 64000:64000 unless
// BANGER_JAILER_UID/GID say otherwise, and never as root.
func TestJailerIDs(t *testing.T) {
	for _, tc := range []struct {
		name     string
		uid, gid string
		wantUID  int
		wantGID  int
		wantErr  string
	}{
		{name: "default", wantUID: 64000, wantGID: 64000},
		{name: "configured", uid: "5000", gid: "5001", wantUID: 5000, wantGID: 5001},
		{name: "uid only", uid: "5000", wantUID: 5000, wantGID: 64000},
		{name: "root uid", uid: "0", wantErr: "refusing to run the jailed Firecracker as uid 0 (root)"},
		{name: "root gid", gid: "0", wantErr: "refusing to run the jailed Firecracker as gid 0 (root)"},
		{name: "name", uid: "nobody", wantErr: `BANGER_JAILER_UID="nobody" is not a numeric id`},
		{name: "negative", gid: "-1", wantErr: `BANGER_JAILER_GID="-1" is not a numeric id`},
		{name: "chown's -1", uid: "4294967295", wantErr: "jailer uid 4294967295 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{JailerUIDEnv: tc.uid, JailerGIDEnv: tc.gid}
			s := &Store{opts: Options{Getenv: func(k string) string { return env[k] }}}
			d, err := s.driver(&VM{Config: Config{Name: "j", VMM: VMMFirecracker, Jailer: true}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "hint: set BANGER_JAILER_UID and BANGER_JAILER_GID") {
					t.Fatalf("driver: %v, want %q with a hint", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			j := d.(*firecracker.Driver).Jailer
			if j.UID != tc.wantUID || j.GID != tc.wantGID {
				t.Errorf("jailer runs Firecracker as %d:%d, want %d:%d", j.UID, j.GID, tc.wantUID, tc.wantGID)
			}
		})
	}
}
