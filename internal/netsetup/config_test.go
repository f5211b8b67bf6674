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
