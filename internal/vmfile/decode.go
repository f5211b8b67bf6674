package vmfile

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// badValue is a wrong value at a line other than its key's value (a
// list item).
type badValue struct {
	line int
	err  error
}

func (e *badValue) Error() string { return e.err.Error() }
func (e *badValue) Unwrap() error { return e.err }

func bad(n *yaml.Node, format string, args ...any) error {
	return &badValue{line: n.Line, err: fmt.Errorf(format, args...)}
}

// unbad drops the line of a badValue.
func unbad(err error) error {
	var bv *badValue
	if errors.As(err, &bv) {
		return bv.err
	}
	return err
}

// deref follows aliases to their anchor's node.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// describe names what a node is, for "want X, got Y".
func describe(n *yaml.Node) string {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// str reads a scalar as written (a number is its digits).
func str(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("want a string, got %s", describe(n))
	}
	return n.Value, nil
}

func strValue(n *yaml.Node) (value, error) {
	s, err := str(n)
	return value{s: s, line: n.Line}, err
}

func integer(n *yaml.Node) (int, error) {
	var i int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
		return 0, fmt.Errorf("want a whole number, got %s", describe(n))
	}
	return i, nil
}

func boolean(n *yaml.Node) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		return false, fmt.Errorf("want true or false, got %s", describe(n))
	}
	return b, nil
}

// sizeText is a size: a string with a unit ("2G") or a number.
func sizeText(n *yaml.Node) (string, error) {
	if t := n.ShortTag(); n.Kind != yaml.ScalarNode || (t != "!!str" && t != "!!int") {
		return "", fmt.Errorf("want a size such as 512M or 2G, got %s", describe(n))
	}
	return n.Value, nil
}

func oneOf(n *yaml.Node, choices ...string) (string, error) {
	s, err := str(n)
	if err != nil {
		return "", err
	}
	for _, c := range choices {
		if s == c {
			return s, nil
		}
	}
	return "", fmt.Errorf("want %s or %s, got %q", strings.Join(choices[:len(choices)-1], ", "), choices[len(choices)-1], s)
}

// list reads a list of strings.
func list(n *yaml.Node) ([]*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode {
		return nil, fmt.Errorf("want a list, got %s (hint: write a list of one as [%q])", describe(n), n.Value)
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("want a list, got %s", describe(n))
	}
	items := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		it = deref(it)
		if it.Kind != yaml.ScalarNode || it.ShortTag() == "!!null" {
			return nil, bad(it, "want a string in the list, got %s", describe(it))
		}
		items = append(items, it)
	}
	return items, nil
}

func values(n *yaml.Node) ([]value, error) {
	items, err := list(n)
	if err != nil {
		return nil, err
	}
	vs := make([]value, 0, len(items))
	for _, it := range items {
		vs = append(vs, value{s: it.Value, line: it.Line})
	}
	return vs, nil
}
