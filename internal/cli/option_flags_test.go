package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/option"
	"github.com/thaloco/banger/internal/vmfile"
)

// TestOptionFlags: every option a library names in an option.Error is
// spelled as a flag of each command that passes the library's errors on
// (a VM's as a flag of vm create and vm run and as a key of a VM file;
// image warm, whose throwaway VM sets only some options, has those).
// The libraries' source is read with go/ast: an option.Error's Option is
// a string literal, and the options it names elsewhere are {name} in
// string literals.
func TestOptionFlags(t *testing.T) {
	root := newRootCommand(&globalOptions{})
	for _, tc := range []struct {
		pkg      string
		commands [][]string
		fileKeys bool
		some     map[string][]string // a command's options, when not all
	}{
		{"vm", [][]string{{"vm", "create"}, {"vm", "run"}, {"image", "warm"}}, true,
			// vm.WarmImage's CreateOptions: an image, and what WarmOptions set.
			map[string][]string{"image warm": {"cpus", "memory", "vmm", "net", "host-access"}}},
		{"imagebuild", [][]string{{"image", "build"}}, false, nil},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			options := optionsNamed(t, filepath.Join("..", tc.pkg))
			if len(options) == 0 {
				t.Fatal("no options found")
			}
			t.Logf("options: %s", strings.Join(options, ", "))
			for _, path := range tc.commands {
				cmd, _, err := root.Find(path)
				if err != nil {
					t.Fatal(err)
				}
				cmdOptions := options
				if some, ok := tc.some[strings.Join(path, " ")]; ok {
					cmdOptions = some
					for _, o := range some {
						if !slices.Contains(options, o) {
							t.Errorf("%s names no option %q", tc.pkg, o)
						}
					}
				}
				for _, o := range cmdOptions {
					f := cmd.Flags().Lookup(o)
					switch {
					case f == nil:
						t.Errorf("%s names option %q, but %q has no --%s", tc.pkg, o, cmd.CommandPath(), o)
					case optionFlag(o) != "--"+o && optionFlag(o) != "-"+f.Shorthand:
						t.Errorf("option %q is spelled %s, but the shorthand of --%s is %q", o, optionFlag(o), o, f.Shorthand)
					}
				}
			}
			if !tc.fileKeys {
				return
			}
			keys := vmfile.Keys()
			for _, o := range options {
				if !slices.Contains(keys, vmfile.Key(o)) {
					t.Errorf("%s names option %q, but a VM file has no key %q", tc.pkg, o, vmfile.Key(o))
				}
			}
		})
	}
}

// optionsNamed returns the options the non-test Go files in dir name.
func optionsNamed(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BasicLit:
				if s, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING {
					for _, o := range option.Refs(s) {
						seen[o] = true
					}
				}
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Error" || !isIdent(sel.X, "option") {
					return true
				}
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok || !isIdent(kv.Key, "Option") {
						continue
					}
					lit, ok := kv.Value.(*ast.BasicLit)
					s, err := "", error(nil)
					if ok {
						s, err = strconv.Unquote(lit.Value)
					}
					if !ok || err != nil {
						t.Errorf("%s: an option.Error's Option is not a string literal", fset.Position(kv.Pos()))
						continue
					}
					seen[s] = true
				}
			}
			return true
		})
	}
	var out []string
	for o := range seen {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}
