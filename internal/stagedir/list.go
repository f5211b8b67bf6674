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

// brokenReason is the reason of a *BrokenError, or the whole message of
// another get error.
func brokenReason(err error) string {
	var be *BrokenError
	if errors.As(err, &be) {
		return be.Reason
	}
	return err.Error()
}

// BrokenError is a directory of a store that cannot be read as a Kind
// ("kernel", "image", "snapshot").
type BrokenError struct {
	Kind, Name, Reason string
	// Hint says what to do about it, "" for nothing to say.
	Hint string
	// Replaceable: installing it again over the broken one repairs it.
	Replaceable bool
	// Err is the cause, if there is one.
	Err error
}

func (e *BrokenError) Error() string {
	msg := fmt.Sprintf("%s %q is broken: %s", e.Kind, e.Name, e.Reason)
	if e.Hint != "" {
		msg += " (hint: " + e.Hint + ")"
	}
	return msg
}

func (e *BrokenError) Unwrap() error { return e.Err }
