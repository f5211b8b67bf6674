package netsetup

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
)

// DefaultPool is the private range VM subnets are carved from when neither
// Config.Pool nor $BANGER_NET_POOL says otherwise.
const DefaultPool = "172.30.0.0/16"

// PoolEnv is the environment variable that overrides DefaultPool.
const PoolEnv = "BANGER_NET_POOL"

// Config says where VM subnets come from and where leases are kept.
type Config struct {
	// Pool is the private IPv4 range the per-VM /30s are carved from.
	// The zero value means DefaultPool.
	Pool netip.Prefix
	// StateDir holds the lock file and the lease files. It is created if
	// missing.
	StateDir string
}

// ConfigFromEnv returns a Config for stateDir with the pool taken from
// $BANGER_NET_POOL (read through getenv), else DefaultPool.
func ConfigFromEnv(getenv func(string) string, stateDir string) (Config, error) {
	cfg := Config{StateDir: stateDir}
	if s := getenv(PoolEnv); s != "" {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return Config{}, fmt.Errorf("%s=%q is not an IPv4 prefix (hint: use a private range in CIDR form, such as %s)", PoolEnv, s, DefaultPool)
		}
		if err := checkPool(p); err != nil {
			return Config{}, fmt.Errorf("%s=%q: %w", PoolEnv, s, err)
		}
		cfg.Pool = p
	}
	return cfg, nil
}

// checked returns cfg with defaults filled in, or an error naming the bad
// field.
func (cfg Config) checked() (Config, error) {
	if cfg.StateDir == "" {
		return Config{}, errors.New("netsetup: Config.StateDir is empty")
	}
	if !filepath.IsAbs(cfg.StateDir) {
		return Config{}, fmt.Errorf("netsetup: state directory %q is not absolute", cfg.StateDir)
	}
	if !cfg.Pool.IsValid() {
		cfg.Pool = netip.MustParsePrefix(DefaultPool)
	}
	if err := checkPool(cfg.Pool); err != nil {
		return Config{}, fmt.Errorf("network pool %s: %w", cfg.Pool, err)
	}
	return cfg, nil
}

func checkPool(p netip.Prefix) error {
	switch {
	case !p.Addr().Is4():
		return fmt.Errorf("not an IPv4 range (hint: use a private IPv4 range such as %s)", DefaultPool)
	case p.Bits() > 30:
		return fmt.Errorf("smaller than one /30 (hint: use a larger range, such as %s)", DefaultPool)
	case p.Masked() != p:
		return fmt.Errorf("has host bits set (hint: did you mean %s?)", p.Masked())
	case !privateRange(p):
		return fmt.Errorf("not inside a private range (hint: use part of 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16)")
	}
	return nil
}

// privateRange reports whether p lies inside one RFC 1918 range.
func privateRange(p netip.Prefix) bool {
	for _, r := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"} {
		r := netip.MustParsePrefix(r)
		if r.Bits() <= p.Bits() && r.Contains(p.Addr()) {
			return true
		}
	}
	return false
}
