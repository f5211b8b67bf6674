package kernelcat

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEmbeddedCatalog validates the catalog shipped inside banger with the
// official rules on top of the general ones.
func TestEmbeddedCatalog(t *testing.T) {
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateOfficial(); err != nil {
		t.Fatal(err)
	}
	if c.Source != "embedded" {
		t.Fatalf("source = %q", c.Source)
	}
	if len(c.Skipped) != 0 {
		t.Fatalf("embedded catalog has skipped entries: %v", c.Skipped)
	}
}

const good = `{"name":"generic-6.12","distro":"generic","arch":"x86_64","kernel_version":"6.12.1","url":"https://example.invalid/generic-6.12-x86_64.tar.zst","sha256":"` +
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `","size":10,"description":"d"}`

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"bad json", `{`, "parsing"},
		{"version", `{"version":2,"entries":[]}`, "version 2"},
		{"unknown field", `{"version":1,"entries":[],"x":1}`, "unknown field"},
		{"no sha", `{"version":1,"entries":[` + strings.Replace(good, `"sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, `"sha256":""`, 1) + `]}`, "without a hash"},
		{"upper sha", `{"version":1,"entries":[` + strings.Replace(good, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", 1) + `]}`, "lower-case hex"},
		{"short sha", `{"version":1,"entries":[` + strings.Replace(good, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "0123", 1) + `]}`, "lower-case hex"},
		{"arch", `{"version":1,"entries":[` + strings.Replace(good, "x86_64\"", "mips\"", 1) + `]}`, "unknown arch"},
		{"size", `{"version":1,"entries":[` + strings.Replace(good, `"size":10`, `"size":0`, 1) + `]}`, "size"},
		{"scheme", `{"version":1,"entries":[` + strings.Replace(good, "https://", "ftp://", 1) + `]}`, "must be https"},
		{"name", `{"version":1,"entries":[` + strings.Replace(good, `"name":"generic-6.12"`, `"name":"../x"`, 1) + `]}`, "invalid kernel name"},
		{"dup", `{"version":1,"entries":[` + good + "," + good + `]}`, "duplicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "test")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
		})
	}
}

func TestOfficialRules(t *testing.T) {
	c, err := Parse([]byte(`{"version":1,"entries":[`+good+`]}`), "t")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateOfficial(); err != nil {
		t.Fatalf("good entry rejected: %v", err)
	}
	for _, bad := range []struct{ name, from, to, want string }{
		{"name", `"name":"generic-6.12"`, `"name":"generic"`, "<distro>-<major.minor>"},
		{"version", `"kernel_version":"6.12.1"`, `"kernel_version":"6.13.1"`, "not on the 6.12 line"},
		{"http", "https://", "http://", "not https"},
		{"distro", `"distro":"generic"`, `"distro":"void"`, "distro"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			c, err := Parse([]byte(`{"version":1,"entries":[`+strings.Replace(good, bad.from, bad.to, 1)+`]}`), "t")
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ValidateOfficial(); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("%s: err = %v, want %q", bad.to, err, bad.want)
			}
		})
	}
}

func TestLoadOverrideAndMirror(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.json")
	if err := os.WriteFile(p, []byte(`{"version":1,"entries":[`+good+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BANGER_CATALOG": p, "BANGER_KERNEL_MIRROR": "file:///mirror/"}
	c, err := Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.Lookup("generic-6.12", "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if e.URL != "file:///mirror/generic-6.12-x86_64.tar.zst" {
		t.Fatalf("mirror url = %q", e.URL)
	}
	if _, err := c.Lookup("generic-6.12", "arm64"); err == nil || !strings.Contains(err.Error(), "not published for arm64, only for x86_64") {
		t.Fatalf("arch miss: %v", err)
	}
	_, err = c.Lookup("generic-6.13", "x86_64")
	if err == nil || !strings.Contains(err.Error(), "did you mean generic-6.12") {
		t.Fatalf("unknown name: %v", err)
	}
	// The embedded catalog is not mutated by a mirror.
	emb, _ := Embedded()
	for _, e := range emb.Entries {
		if strings.HasPrefix(e.URL, "file:///mirror") {
			t.Fatal("mirror leaked into embedded catalog")
		}
	}
	env["BANGER_CATALOG"] = filepath.Join(dir, "missing.json")
	if _, err := Load(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "BANGER_CATALOG") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestArchSpelling: a private catalog may write aarch64 or amd64, which
// become arm64 and x86_64 (mirror file names included); the embedded
// catalog must write them canonically; an unknown arch is skipped.
func TestArchSpelling(t *testing.T) {
	entry := func(name, a string) string {
		return fmt.Sprintf(`{"name": %q, "distro": "generic", "arch": %q, "kernel_version": "6.12.1", "url": "https://x.example/%s-%s.tar.zst", "sha256": "%s", "size": 1, "description": ""}`,
			name, a, name, a, strings.Repeat("a", 64))
	}
	data := []byte(`{"version": 1, "entries": [` + entry("generic-6.12", "aarch64") + `, ` + entry("generic-6.12", "amd64") + `, ` + entry("generic-6.11", "mips") + `]}`)
	c, err := ParsePrivate(data, "private.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Entries) != 2 || c.Entries[0].Arch != "arm64" || c.Entries[1].Arch != "x86_64" {
		t.Fatalf("entries = %+v; want arm64 and x86_64", c.Entries)
	}
	if len(c.Skipped) != 1 || !strings.Contains(c.Skipped[0].String(), `unknown arch "mips" (known: x86_64, arm64`) {
		t.Fatalf("skipped = %v", c.Skipped)
	}
	if _, err := c.Lookup("generic-6.12", "arm64"); err != nil {
		t.Errorf("lookup arm64: %v", err)
	}
	if _, err := c.Lookup("generic-6.11", "x86_64"); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Errorf("lookup of the skipped entry: %v", err)
	}
	if err := c.applyMirror("file:///m"); err != nil || c.Entries[0].URL != "file:///m/generic-6.12-arm64.tar.zst" {
		t.Errorf("mirror: %v, %q", err, c.Entries[0].URL)
	}
	_, err = Parse(data, "strict.json")
	if err == nil || !strings.Contains(err.Error(), `arch "aarch64" must be written "arm64"`) {
		t.Errorf("strict parse: %v", err)
	}
}
