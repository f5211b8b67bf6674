package stagedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/thaloco/banger/internal/paths"
)

// Listing is one directory of a store: a good entry, or a broken one with
// the reason.
type Listing[M any] struct {
	Name     string `json:"name"`
	Manifest M      `json:"manifest,omitempty"`
	Broken   string `json:"broken,omitempty"`
}

// List reads every visible directory of parent with get, sorted by name.
// kind ("kernel", "image") names the entries in errors. A broken entry
// does not hide the others: it is listed with the reason get gave.
// Leftovers of interrupted runs that nobody works on are swept first.
func List[M any](parent, kind string, get func(name string) (M, error)) ([]Listing[M], error) {
	Sweep(parent)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %ss in %s: %w", kind, parent, err)
	}
	var out []Listing[M]
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue
		}
		l := Listing[M]{Name: e.Name()}
		if err := paths.ValidateName(kind, e.Name()); err != nil {
			l.Broken = err.Error()
		} else if m, err := get(e.Name()); err != nil {
			l.Broken = brokenReason(err)
		} else {
			l.Manifest = m
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// brokenReason trims the `<kind> "X" is broken:` prefix and the hint from
// a get error, leaving the reason alone.
func brokenReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, " is broken: "); i >= 0 {
		msg = msg[i+len(" is broken: "):]
	}
	if i := strings.Index(msg, " (hint:"); i >= 0 {
		msg = msg[:i]
	}
	return msg
}
