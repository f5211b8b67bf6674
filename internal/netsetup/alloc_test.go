package netsetup

import (
	"net/netip"
	"strings"
	"testing"
)

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
