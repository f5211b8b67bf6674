package kernelcat

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeCatalog(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "catalog.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadFrom(path string) (*Catalog, error) {
	return Load(func(k string) string {
		if k == "BANGER_CATALOG" {
			return path
		}
		return ""
	})
}

// TestLoadCapsFileSize: a BANGER_CATALOG that never ends, or is larger
// than any catalog, is refused after MaxFileSize bytes with an error naming
// the file, the limit and the fix, instead of being read until memory runs
// out. A catalog of exactly MaxFileSize bytes is still read.
func TestLoadCapsFileSize(t *testing.T) {
	big := filepath.Join(t.TempDir(), "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxFileSize + 1); err != nil { // sparse: zeros, like /dev/zero
		t.Fatal(err)
	}
	f.Close()
	for _, p := range []string{"/dev/zero", big} {
		_, err := loadFrom(p)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !errors.As(err, new(*FileError)) {
			t.Errorf("BANGER_CATALOG=%s: err = %v, want a *FileError", p, err)
		}
		for _, want := range []string{p, "larger than 16 MiB"} {
			if !strings.Contains(msg, want) {
				t.Errorf("BANGER_CATALOG=%s: err = %v, want it to contain %q", p, err, want)
			}
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("BANGER_CATALOG=%s: error is more than one line: %q", p, msg)
		}
	}

	doc := `{"version":1,"entries":[` + good + `]}`
	p := writeCatalog(t, doc+strings.Repeat(" ", MaxFileSize-len(doc)))
	c, err := loadFrom(p)
	if err != nil {
		t.Fatalf("catalog of exactly MaxFileSize bytes: %v", err)
	}
	if len(c.Entries) != 1 {
		t.Fatalf("entries = %+v", c.Entries)
	}
}

// TestLoadSkipsInvalidEntries: one bad entry in a private catalog is
// skipped with its reason; the others stay usable, and looking up the bad
// one says why it cannot be pulled. The same file fails strict Parse, which
// the embedded catalog goes through.
func TestLoadSkipsInvalidEntries(t *testing.T) {
	other := strings.NewReplacer(`"name":"generic-6.12"`, `"name":"other-6.1"`).Replace(good)
	bad := func(from, to string) string {
		e := strings.Replace(strings.Replace(good, `"name":"generic-6.12"`, `"name":"bad-1"`, 1), from, to, 1)
		if e == good {
			panic("replacement did nothing")
		}
		return e
	}
	tests := []struct {
		name    string
		entry   string
		badName string // name Lookup should explain ("" when it cannot be named)
		want    string // in the warning and the Lookup error
	}{
		{"size 0", bad(`"size":10`, `"size":0`), "bad-1", "size 0 is not positive"},
		{"negative size", bad(`"size":10`, `"size":-5`), "bad-1", "size -5 is not positive"},
		{"bad sha256", bad(`"sha256":"0123`, `"sha256":"zz23`), "bad-1", "not 64 lower-case hex digits"},
		{"no sha256", bad(`"sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"`, `"sha256":""`), "bad-1", "no sha256"},
		{"bad name", strings.Replace(good, `"name":"generic-6.12"`, `"name":"../evil"`, 1), "", `invalid kernel name "../evil"`},
		{"unknown arch", bad(`"arch":"x86_64"`, `"arch":"mips"`), "bad-1", `unknown arch "mips"`},
		{"bad scheme", bad("https://", "ftp://"), "bad-1", "must be https://"},
		{"unknown field", bad(`"size":10`, `"size":10,"sizee":10`), "bad-1", `unknown field "sizee"`},
		{"wrong type", bad(`"size":10`, `"size":"10"`), "bad-1", "cannot unmarshal string"},
		{"not an object", `42`, "", "cannot unmarshal number"},
		{"duplicate", bad(`"size":10`, `"size":11`) + "," + bad(`"size":10`, `"size":12`), "bad-1", "bad-1 for x86_64 is listed more than once (entries 1, 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := `{"version":1,"entries":[` + good + "," + tt.entry + "," + other + `]}`
			p := writeCatalog(t, doc)
			c, err := loadFrom(p)
			if err != nil {
				t.Fatalf("one bad entry made the whole catalog unusable: %v", err)
			}
			var names []string
			for _, e := range c.Entries {
				names = append(names, e.Name)
			}
			if strings.Join(names, " ") != "generic-6.12 other-6.1" {
				t.Fatalf("usable entries = %v, want generic-6.12 other-6.1", names)
			}
			if len(c.Skipped) == 0 {
				t.Fatal("nothing skipped")
			}
			for _, s := range c.Skipped {
				line := s.String()
				if !strings.HasPrefix(line, "entries[1] (name ") && !strings.HasPrefix(line, "entries[2] (name ") {
					t.Errorf("warning %q does not name the entry", line)
				}
				if !strings.Contains(line, tt.want) || strings.Contains(line, "\n") {
					t.Errorf("warning = %q, want one line containing %q", line, tt.want)
				}
			}
			for _, n := range []string{"generic-6.12", "other-6.1"} {
				if _, err := c.Lookup(n, "x86_64"); err != nil {
					t.Errorf("Lookup(%s): %v", n, err)
				}
			}
			if tt.badName != "" {
				_, err := c.Lookup(tt.badName, "x86_64")
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "cannot be pulled") || !strings.Contains(err.Error(), "hint: fix entries[") {
					t.Errorf("Lookup(%s) = %v, want an error saying why (%q)", tt.badName, err, tt.want)
				}
			}
			if _, err := Parse([]byte(doc), p); err == nil {
				t.Error("strict Parse accepted the bad entry")
			}
		})
	}
}
