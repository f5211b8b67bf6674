// Package kernelcat is the kernel catalog: the list of published kernel
// bundles (name, arch, URL, sha256, size) that banger can pull, embedded in
// the binary and replaceable at run time with BANGER_CATALOG.
package kernelcat

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/thaloco/banger/internal/arch"
)

//go:embed catalog.json
var embedded []byte

// SchemaVersion is the only catalog format version this banger understands.
const SchemaVersion = 1

// Entry is one published kernel bundle for one architecture.
type Entry struct {
	Name          string `json:"name"`
	Distro        string `json:"distro"`
	Arch          string `json:"arch"`
	KernelVersion string `json:"kernel_version"`
	URL           string `json:"url"`
	SHA256        string `json:"sha256"`
	Size          int64  `json:"size"`
	Description   string `json:"description"`
}

// TarballName is the file name a bundle is published under:
// <name>-<arch>.tar.zst.
func TarballName(name, arch string) string { return name + "-" + arch + ".tar.zst" }

// Catalog is a parsed catalog file.
type Catalog struct {
	Version int     `json:"version"`
	Entries []Entry `json:"entries"`
	// Source says where the catalog came from: "embedded" or the path
	// given in BANGER_CATALOG. Not part of the file.
	Source string `json:"-"`
	// Skipped are the entries of a private catalog that break the rules
	// (see ParsePrivate), left out of Entries. Not part of the file.
	Skipped []Skipped `json:"-"`
}

var (
	sha256RE       = regexp.MustCompile(`^[0-9a-f]{64}$`)
	officialNameRE = regexp.MustCompile(`^([a-z0-9]+)-([0-9]+\.[0-9]+)$`)
)

// ValidateOfficial applies the stricter rules of the catalog shipped inside
// banger: https URLs, <distro>-<major.minor> names matching the entry's
// distro and kernel version.
func (c *Catalog) ValidateOfficial() error {
	var errs []error
	for _, e := range c.Entries {
		m := officialNameRE.FindStringSubmatch(e.Name)
		switch {
		case m == nil:
			errs = append(errs, fmt.Errorf("%s: name must be <distro>-<major.minor>", e.Name))
		case m[1] != e.Distro:
			errs = append(errs, fmt.Errorf("%s: name does not start with distro %q", e.Name, e.Distro))
		case !strings.HasPrefix(e.KernelVersion, m[2]+".") && e.KernelVersion != m[2]:
			errs = append(errs, fmt.Errorf("%s: kernel_version %q is not on the %s line", e.Name, e.KernelVersion, m[2]))
		}
		if !strings.HasPrefix(e.URL, "https://") {
			errs = append(errs, fmt.Errorf("%s: url %q is not https", e.Name, e.URL))
		}
		if !strings.HasSuffix(e.URL, "/"+TarballName(e.Name, e.Arch)) {
			errs = append(errs, fmt.Errorf("%s: url %q does not end in %s", e.Name, e.URL, TarballName(e.Name, e.Arch)))
		}
	}
	return errors.Join(errs...)
}

func (c *Catalog) applyMirror(base string) error {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file") {
		return fmt.Errorf("BANGER_KERNEL_MIRROR=%q must be an https://, http:// or file:// URL", base)
	}
	base = strings.TrimRight(base, "/")
	for i := range c.Entries {
		c.Entries[i].URL = base + "/" + TarballName(c.Entries[i].Name, c.Entries[i].Arch)
	}
	return nil
}

// Lookup finds the entry for name on a (a canonical arch name, see
// package arch). When there is none it returns an
// error that names the closest catalog names, or the arches name exists for.
func (c *Catalog) Lookup(name, a string) (Entry, error) {
	var arches []string
	for _, e := range c.Entries {
		if e.Name == name {
			if e.Arch == a {
				return e, nil
			}
			arches = append(arches, e.Arch)
		}
	}
	for _, s := range c.Skipped {
		if s.Name == name && (arch.Or(s.Arch, "") == a || arch.Or(s.Arch, "") == "") {
			return Entry{}, fmt.Errorf("kernel %q for %s cannot be pulled: its entry in kernel catalog %s is invalid: %w (hint: fix entries[%d] in %s)", name, a, c.Source, s.Err, s.Index, c.Source)
		}
	}
	if len(arches) > 0 {
		return Entry{}, &NotPublishedError{Name: name, Arch: a, Arches: arches}
	}
	return Entry{}, &NotFoundError{Name: name, Suggestions: c.Closest(name, 3)}
}

// NotFoundError says a name is not in the catalog.
type NotFoundError struct {
	Name        string
	Suggestions []string
}

func (e *NotFoundError) Error() string {
	if len(e.Suggestions) == 0 {
		return fmt.Sprintf("kernel %q is not in the catalog", e.Name)
	}
	return fmt.Sprintf("kernel %q is not in the catalog; did you mean %s?", e.Name, strings.Join(e.Suggestions, ", "))
}

// NotPublishedError says a kernel is in the catalog, but not for Arch.
type NotPublishedError struct {
	Name, Arch string
	Arches     []string // those it is published for
}

func (e *NotPublishedError) Error() string {
	return fmt.Sprintf("kernel %q is not published for %s, only for %s", e.Name, e.Arch, strings.Join(e.Arches, ", "))
}

// Closest returns up to n distinct catalog names nearest to name by edit
// distance, nearest first; names that are too far away are left out.
func (c *Catalog) Closest(name string, n int) []string {
	type cand struct {
		name string
		d    int
	}
	seen := map[string]bool{}
	var cs []cand
	for _, e := range c.Entries {
		if seen[e.Name] {
			continue
		}
		seen[e.Name] = true
		d := levenshtein(name, e.Name)
		if d <= max(3, len(name)/2) || strings.HasPrefix(e.Name, name) || strings.HasPrefix(name, e.Name) {
			cs = append(cs, cand{e.Name, d})
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].d != cs[j].d {
			return cs[i].d < cs[j].d
		}
		return cs[i].name < cs[j].name
	})
	var out []string
	for i := 0; i < len(cs) && i < n; i++ {
		out = append(out, cs[i].name)
	}
	return out
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
