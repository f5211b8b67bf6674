package kernelcat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/paths"
)

// MaxFileSize bounds how much of a BANGER_CATALOG file banger reads. An
// entry takes about 350 bytes of JSON, so 16 MiB holds some 45,000 of
// them, thousands of times what a real catalog lists (the embedded one has
// a handful). Anything larger is not a catalog: BANGER_CATALOG=/dev/zero
// would otherwise be read until memory runs out.
const MaxFileSize = 16 << 20

// Skipped is an entry of a private catalog that breaks the rules. It is
// left out of Catalog.Entries; Lookup of its name says why it cannot be
// pulled.
type Skipped struct {
	Index int    // position in the file's "entries" array, from 0
	Name  string // as written: possibly empty or invalid
	Arch  string // as written
	Err   error  // what is wrong with it
}

// String is one line naming the entry and the reason: entries[2] (name
// "k1", arch "x86_64"): size must be greater than 0.
func (s Skipped) String() string {
	return fmt.Sprintf("%s: %v", describe(s.Index, s.Name, s.Arch), s.Err)
}

func describe(i int, name, arch string) string {
	return fmt.Sprintf("entries[%d] (name %q, arch %q)", i, name, arch)
}

// file is the catalog's JSON form. Entries are decoded one at a time, so
// that a private catalog can skip a bad one and keep the others.
type file struct {
	Version int               `json:"version"`
	Entries []json.RawMessage `json:"entries"`
}

// Parse decodes and validates a catalog, strictly: any bad entry fails the
// whole file. It is for the embedded catalog and for tools that check a
// catalog before it is published. Unknown fields are rejected so a typo is
// caught instead of silently ignored.
func Parse(data []byte, source string) (*Catalog, error) { return parse(data, source, true) }

// ParsePrivate is Parse for a catalog the user supplies (BANGER_CATALOG):
// an entry that cannot be decoded, breaks the rules or shares its name and
// arch with another entry is moved to Catalog.Skipped, and the others stay
// usable. The file itself (JSON syntax, version, top-level fields) must
// still be valid.
func ParsePrivate(data []byte, source string) (*Catalog, error) { return parse(data, source, false) }

func parse(data []byte, source string, strict bool) (*Catalog, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parsing kernel catalog %s: %w", source, err)
	}
	if f.Version != SchemaVersion {
		return nil, fmt.Errorf("kernel catalog %s has version %d, this banger understands version %d (hint: upgrade banger)", source, f.Version, SchemaVersion)
	}
	c := &Catalog{Version: f.Version, Source: source, Entries: make([]Entry, 0, len(f.Entries))}
	index := make([]int, 0, len(f.Entries)) // file index of each of c.Entries
	seen := map[string][]int{}              // name/arch -> file indexes
	for i, raw := range f.Entries {
		e, err := decodeEntry(raw)
		if err == nil {
			err = e.validate()
		}
		if err == nil {
			// One spelling from here on (aarch64 is arm64); the catalog
			// shipped inside banger must use it already.
			a, _ := arch.Canonical(e.Arch)
			if strict && a != e.Arch {
				err = fmt.Errorf("arch %q must be written %q", e.Arch, a)
			}
			e.Arch = a
		}
		if err != nil {
			if strict {
				return nil, fmt.Errorf("kernel catalog %s: %s: %w", source, describe(i, e.Name, e.Arch), err)
			}
			c.Skipped = append(c.Skipped, Skipped{Index: i, Name: e.Name, Arch: e.Arch, Err: err})
			continue
		}
		k := e.Name + "/" + e.Arch
		if len(seen[k]) > 0 && strict {
			return nil, fmt.Errorf("kernel catalog %s: duplicate entry %s for %s", source, e.Name, e.Arch)
		}
		seen[k] = append(seen[k], i)
		c.Entries = append(c.Entries, e)
		index = append(index, i)
	}
	// Which of two entries for one kernel is right is anybody's guess:
	// neither is used.
	kept := c.Entries[:0]
	for j, e := range c.Entries {
		dups := seen[e.Name+"/"+e.Arch]
		if len(dups) == 1 {
			kept = append(kept, e)
			continue
		}
		err := fmt.Errorf("%s for %s is listed more than once (entries %s)", e.Name, e.Arch, joinInts(dups))
		c.Skipped = append(c.Skipped, Skipped{Index: index[j], Name: e.Name, Arch: e.Arch, Err: err})
	}
	c.Entries = kept
	slices.SortFunc(c.Skipped, func(a, b Skipped) int { return a.Index - b.Index })
	return c, nil
}

// decodeEntry decodes one entry, rejecting unknown fields. On error the
// entry holds what could be decoded, for the error message.
func decodeEntry(raw json.RawMessage) (Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var e Entry
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("decoding: %w", err)
	}
	return e, nil
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// validate checks the rules every catalog (embedded or private) must obey.
// Its errors do not repeat the entry's name: the caller says which entry.
func (e Entry) validate() error {
	if err := paths.ValidateName("kernel", e.Name); err != nil {
		return err
	}
	if _, err := arch.Canonical(e.Arch); err != nil {
		return err
	}
	if e.SHA256 == "" {
		return errors.New("no sha256: an entry without a hash cannot be pulled")
	}
	if !sha256RE.MatchString(e.SHA256) {
		return fmt.Errorf("sha256 %q is not 64 lower-case hex digits", e.SHA256)
	}
	if e.Size <= 0 {
		return fmt.Errorf("size %d is not positive: it must be the tarball's size in bytes", e.Size)
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		return fmt.Errorf("bad url %q: %w", e.URL, err)
	}
	switch u.Scheme {
	case "https", "http", "file":
	default:
		return fmt.Errorf("url %q must be https://, http:// or file://", e.URL)
	}
	return nil
}

var parseEmbedded = sync.OnceValues(func() (*Catalog, error) { return Parse(embedded, "embedded") })

// Embedded returns the catalog compiled into banger.
func Embedded() (*Catalog, error) { return parseEmbedded() }

// Load returns the catalog in effect: the file named by BANGER_CATALOG if
// set (parsed with ParsePrivate: check Skipped), else the embedded one,
// with BANGER_KERNEL_MIRROR applied.
func Load(getenv func(string) string) (*Catalog, error) {
	var c *Catalog
	if p := getenv("BANGER_CATALOG"); p != "" {
		data, err := readFile(p)
		if err != nil {
			return nil, err
		}
		if c, err = ParsePrivate(data, p); err != nil {
			return nil, err
		}
	} else {
		emb, err := Embedded()
		if err != nil {
			return nil, err
		}
		cp := *emb
		cp.Entries = append([]Entry(nil), emb.Entries...)
		c = &cp
	}
	if m := getenv("BANGER_KERNEL_MIRROR"); m != "" {
		if err := c.applyMirror(m); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// readFile reads the BANGER_CATALOG file, at most MaxFileSize bytes of it.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("reading BANGER_CATALOG: %w", err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("reading BANGER_CATALOG %s: %w", path, err)}
	}
	if len(data) > MaxFileSize {
		return nil, &FileError{Path: path, Err: fmt.Errorf("reading BANGER_CATALOG: %s is larger than %d MiB, the most banger reads of a kernel catalog", path, MaxFileSize>>20)}
	}
	return data, nil
}

// FileError is a catalog file given in the environment that cannot be
// read.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string { return e.Err.Error() }

func (e *FileError) Unwrap() error { return e.Err }
