package netsetup

import (
	"net/netip"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	owner := ownerID("/root/.local/state/banger/net")
	if other := ownerID("/home/u/.local/state/banger/net"); len(owner) != 8 || other == owner || !validOwner(owner) {
		t.Errorf("ownerID: %q and %q for two state directories", owner, other)
	}
	if ownerID("/s/net/") != ownerID("/s/net") {
		t.Error("ownerID depends on a trailing slash")
	}
	for _, tc := range []struct{ vm, tap string }{
		{"web", "bg-web-"},
		{"abcde", "bg-abcde-"},
		{"abcdefghijklm", "bg-abcde-"},
		{strings.Repeat("x", 64), "bg-xxxxx-"},
	} {
		t.Run("tapName/"+tc.vm, func(t *testing.T) {
			got := tapName(owner, tc.vm)
			if !strings.HasPrefix(got, tc.tap) || len(got) != len(tc.tap)+6 || len(got) > 15 {
				t.Errorf("tapName(%q) = %q, want %q and 6 hex digits, at most 15 bytes", tc.vm, got, tc.tap)
			}
		})
	}
	if tapName(owner, "abcdefghijklm") == tapName(owner, "abcdefghijklmn") {
		t.Error("long names sharing a prefix get the same tap name")
	}
	if tapName(owner, "web") == tapName(ownerID("/other"), "web") {
		t.Error("one VM name in two state directories gets one tap name")
	}
	// The old naming, which leases without an owner keep.
	for vm, want := range map[string]string{"web": "bg-web", "abcdefghijkl": "bg-abcdefghijkl", "abcdefghijklm": "bg-abcde-"} {
		if got := legacyTapName(vm); !strings.HasPrefix(got, want) || len(got) > 15 {
			t.Errorf("legacyTapName(%q) = %q, want prefix %q", vm, got, want)
		}
	}
	if got := (Lease{VM: "web"}).tag(); got != "banger:web" {
		t.Errorf("legacy tag %q", got)
	}
	if got := (Lease{VM: "web", Owner: owner}).tag(); got != "banger:"+owner+":web" {
		t.Errorf("tag %q", got)
	}
	if a, b := guestMAC("web"), guestMAC("web"); a != b {
		t.Errorf("guestMAC not stable: %s, %s", a, b)
	}
	for _, vm := range []string{"web", "db", "x", "a-very-long-vm-name"} {
		mac := guestMAC(vm)
		if len(mac) != 17 || !strings.ContainsRune("26ae", rune(mac[1])) {
			t.Errorf("guestMAC(%q) = %s, want a locally administered unicast MAC", vm, mac)
		}
	}
	if guestMAC("web") == guestMAC("db") {
		t.Error("two VMs got the same MAC")
	}
	// Pinned (computed outside Go): a VM's MAC must not change between
	// banger versions. The second key is the vm package's user networking.
	for key, want := range map[string]string{"banger:web": "8e:0c:5e:60:31:a8", "banger-user:web": "f6:0c:8f:0d:d4:75"} {
		if got := DeriveMAC(key); got != want {
			t.Errorf("DeriveMAC(%q) = %s, want %s", key, got, want)
		}
	}
	if guestMAC("web") != DeriveMAC("banger:web") {
		t.Error("guestMAC does not derive from \"banger:\" + name")
	}
}

func TestKernelIPArg(t *testing.T) {
	l := newLease("0123abcd", "db", netip.MustParsePrefix("10.20.3.4/30"))
	if got, want := l.KernelIPArg(), "ip=10.20.3.6::10.20.3.5:255.255.255.252:db:eth0:off"; got != want {
		t.Errorf("KernelIPArg() = %q, want %q", got, want)
	}
}
