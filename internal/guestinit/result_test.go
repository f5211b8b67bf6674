package guestinit

import (
	"strings"
	"testing"
)

func TestParseRestoreResult(t *testing.T) {
	tests := []struct {
		name, stdout string
		want         RestoreResult
		wantErr      bool
	}{
		{name: "ok", stdout: "banger-restore: ok reseed=ioctl clock=ns hostname=set mac=kept net=kept\n",
			want: RestoreResult{OK: true, Reseed: "ioctl", Clock: "ns", Hostname: "set", MAC: "kept", Net: "kept"}},
		{name: "after other output, CRLF", stdout: "Wed May  6 07:08:10 UTC 2031\r\nbanger-restore: failed reseed=none clock=failed hostname=set mac=failed net=set\r\n",
			want: RestoreResult{Reseed: "none", Clock: "failed", Hostname: "set", MAC: "failed", Net: "set"}},
		{name: "empty", stdout: "", wantErr: true},
		{name: "not last", stdout: "banger-restore: ok reseed=ioctl clock=ns hostname=set mac=kept net=kept\nmore\n", wantErr: true},
		{name: "unknown status", stdout: "banger-restore: maybe reseed=ioctl clock=ns hostname=set mac=kept net=kept", wantErr: true},
		{name: "unknown value", stdout: "banger-restore: ok reseed=magic clock=ns hostname=set mac=kept net=kept", wantErr: true},
		{name: "keys out of order", stdout: "banger-restore: ok clock=ns reseed=ioctl hostname=set mac=kept net=kept", wantErr: true},
		{name: "missing key", stdout: "banger-restore: ok reseed=ioctl clock=ns hostname=set", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRestoreResult(tc.stdout)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseRestoreResult(f *testing.F) {
	f.Add("banger-restore: ok reseed=ioctl clock=ns hostname=set mac=kept net=kept\n")
	f.Add("x\nbanger-restore: failed reseed=none clock=s hostname=failed mac=set net=failed")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRestoreResult(s)
		if err == nil && (r.Reseed == "" || r.Clock == "" || r.Hostname == "" || r.MAC == "" || r.Net == "" || !strings.Contains(s, resultPrefix)) {
			t.Errorf("accepted %q as %+v", s, r)
		}
	})
}
