package netsetup

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env, want, err string
	}{
		{"", "invalid Prefix", ""}, // zero Pool: DefaultPool when used
		{"10.20.0.0/16", "10.20.0.0/16", ""},
		{"192.168.77.0/30", "192.168.77.0/30", ""},
		{"172.30.0.0", "", "is not an IPv4 prefix"},
		{"fd00::/64", "", "not an IPv4 range"},
		{"10.0.0.0/31", "", "smaller than one /30"},
		{"10.20.0.1/16", "", "did you mean 10.20.0.0/16"},
		{"8.8.0.0/16", "", "not inside a private range"},
		{"172.0.0.0/8", "", "not inside a private range"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			cfg, err := ConfigFromEnv(func(k string) string {
				if k == PoolEnv {
					return tc.env
				}
				return ""
			}, "/state/net")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), PoolEnv) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, PoolEnv, tc.err)
				}
				return
			}
			if err != nil || cfg.Pool.String() != tc.want || cfg.StateDir != "/state/net" {
				t.Fatalf("got %+v, %v; want pool %s", cfg, err, tc.want)
			}
		})
	}
}

func TestConfigChecked(t *testing.T) {
	cfg, err := Config{StateDir: "/s"}.checked()
	if err != nil || cfg.Pool.String() != DefaultPool {
		t.Errorf("zero pool: %+v, %v; want %s", cfg, err, DefaultPool)
	}
	for _, bad := range []Config{{}, {StateDir: "rel"}, {StateDir: "/s", Pool: netip.MustParsePrefix("1.2.3.0/24")}} {
		if _, err := bad.checked(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

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
		got := tapName(owner, tc.vm)
		if !strings.HasPrefix(got, tc.tap) || len(got) != len(tc.tap)+6 || len(got) > 15 {
			t.Errorf("tapName(%q) = %q, want %q and 6 hex digits, at most 15 bytes", tc.vm, got, tc.tap)
		}
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

func TestAllocate(t *testing.T) {
	p := netip.MustParsePrefix
	pool := p("172.30.0.0/28")
	for _, tc := range []struct {
		name   string
		leases []string
		taken  []string
		want   string
	}{
		{"empty", nil, nil, "172.30.0.0/30"},
		{"first leased", []string{"172.30.0.0/30"}, nil, "172.30.0.4/30"},
		{"hole", []string{"172.30.0.0/30", "172.30.0.8/30"}, nil, "172.30.0.4/30"},
		{"lease from an old pool", []string{"172.30.0.0/29"}, nil, "172.30.0.8/30"},
		{"host route", nil, []string{"172.30.0.0/29"}, "172.30.0.8/30"},
		{"host address", nil, []string{"172.30.0.5/32"}, "172.30.0.0/30"},
		{"covering host route", nil, []string{"172.16.0.0/12"}, ""},
		{"full", []string{"172.30.0.0/30", "172.30.0.4/30", "172.30.0.8/30", "172.30.0.12/30"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var leases []Lease
			for i, s := range tc.leases {
				leases = append(leases, newLease("0123abcd", string(rune('a'+i)), p(s)))
			}
			var taken []netip.Prefix
			for _, s := range tc.taken {
				taken = append(taken, p(s))
			}
			got, err := allocate(pool, "new", leases, taken)
			if tc.want == "" {
				if err == nil || !strings.Contains(err.Error(), `no free /30 left in network pool 172.30.0.0/28 for VM "new"`) {
					t.Fatalf("got %s, %v; want a pool-exhaustion error", got, err)
				}
				return
			}
			if err != nil || got != p(tc.want) {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	if _, ok := nextSubnet(p("255.255.255.252/30")); ok {
		t.Error("nextSubnet ran past the end of IPv4")
	}
}

func TestRuleWithComment(t *testing.T) {
	for _, tc := range []struct {
		line string
		want string // joined args, "" for no match
	}{
		{`-A FORWARD -i bg-web -m comment --comment "banger:web" -j ACCEPT`, `-i bg-web -m comment --comment banger:web -j ACCEPT`},
		{`-A FORWARD -i bg-web -m comment --comment banger:web -j ACCEPT`, `-i bg-web -m comment --comment banger:web -j ACCEPT`},
		{`-A FORWARD -i bg-web -m comment --comment "banger:webby" -j ACCEPT`, ""},
		{`-A FORWARD -i keep0 -j ACCEPT`, ""},
		{`-A INPUT -m comment --comment "banger:web" -j ACCEPT`, ""},
		{`-P FORWARD DROP`, ""},
		{``, ""},
	} {
		args, ok := ruleWithComment(tc.line, "FORWARD", "banger:web")
		if got := strings.Join(args, " "); ok != (tc.want != "") || got != tc.want {
			t.Errorf("ruleWithComment(%q) = %q, %v; want %q", tc.line, got, ok, tc.want)
		}
	}
}
