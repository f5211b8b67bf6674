package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// jsonViews are the types --json prints, each documented in docs/json.md
// in the section after the comment <!-- view: NAME -->.
var jsonViews = []any{
	versionView{}, kernelView{}, catalogView{}, imageView{}, verifyView{},
	vmView{}, snapshotView{}, upView{}, downView{},
}

// TestJSONDocs: docs/json.md documents every field of every view, with
// its JSON type, and no field that does not exist; every struct of the
// package with JSON tags is one of the views or inside one.
func TestJSONDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "json.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	reached := map[string]bool{}
	for _, v := range jsonViews {
		typ := reflect.TypeOf(v)
		want := map[string]string{}
		jsonFields(typ, "", want, reached)
		got := docFields(t, doc, typ.Name())
		for _, name := range slices.Sorted(maps.Keys(want)) {
			switch g, ok := got[name]; {
			case !ok:
				t.Errorf("docs/json.md, %s: field %s (%s) is not documented", typ.Name(), name, want[name])
			case g != want[name]:
				t.Errorf("docs/json.md, %s: field %s is documented as %s, want %s", typ.Name(), name, g, want[name])
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("docs/json.md, %s: documents %s, which %s does not have", typ.Name(), name, typ.Name())
			}
		}
	}
	for _, name := range taggedStructs(t) {
		if !reached[name] {
			t.Errorf("%s has JSON tags but is in no view of jsonViews (add it, and document it in docs/json.md)", name)
		}
	}
}

// jsonFields records the JSON fields of struct type t as "prefix.name" ->
// JSON type, going into nested objects, and the struct types it reached.
func jsonFields(t reflect.Type, prefix string, out map[string]string, reached map[string]bool) {
	reached[t.Name()] = true
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		path := prefix + name
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct:
			out[path] = "object"
			jsonFields(ft, path+".", out, reached)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out[path] = "object[]"
			jsonFields(ft.Elem(), path+"[].", out, reached)
		case ft.Kind() == reflect.Slice:
			out[path] = jsonType(ft.Elem()) + "[]"
		default:
			out[path] = jsonType(ft)
		}
	}
}

func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	}
	return t.Kind().String()
}

// docRow is a table row of docs/json.md: | `field` | type | meaning |
var docRow = regexp.MustCompile("^\\| `([^`]+)` \\| ([^|]+?) \\|")

// docFields reads the fields documented for view: the table rows between
// its marker and the next marker or heading.
func docFields(t *testing.T, doc, view string) map[string]string {
	t.Helper()
	marker := "<!-- view: " + view + " -->"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Errorf("docs/json.md has no section for %s (a line %s)", view, marker)
		return nil
	}
	got := map[string]string{}
	for line := range strings.SplitSeq(doc[i+len(marker):], "\n") {
		if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "<!-- view: ") {
			break
		}
		if m := docRow.FindStringSubmatch(line); m != nil {
			got[m[1]] = m[2]
		}
	}
	return got
}

// taggedStructs names the package's struct types with JSON tags.
func taggedStructs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if st, ok := ts.Type.(*ast.StructType); ok {
				for _, fl := range st.Fields.List {
					if fl.Tag != nil && strings.Contains(fl.Tag.Value, `json:"`) {
						names = append(names, ts.Name.Name)
						break
					}
				}
			}
			return true
		})
	}
	return names
}
