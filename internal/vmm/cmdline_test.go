package vmm

import "testing"

func TestMergeCmdline(t *testing.T) {
	for _, tc := range []struct{ defaults, user, want string }{
		{"console=ttyS0 reboot=t panic=-1", "", "console=ttyS0 reboot=t panic=-1"},
		{"console=ttyS0 reboot=t panic=-1", "  panic=5 quiet ", "console=ttyS0 reboot=t panic=5 quiet"},
		{"console=ttyS0 pci=off", "console=hvc0 init=\"/bin/sh -c x\"", "pci=off console=hvc0 init=\"/bin/sh -c x\""},
		{"", "quiet", "quiet"},
	} {
		if got := MergeCmdline(tc.defaults, tc.user); got != tc.want {
			t.Errorf("MergeCmdline(%q, %q) = %q, want %q", tc.defaults, tc.user, got, tc.want)
		}
	}
}
