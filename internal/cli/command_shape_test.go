package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandShape: every runnable command is built by newXCommand(g
// *globalOptions), keeps its flags in an xOptions struct of unexported
// fields (with an addFlags method, never AddFlags) and runs
// runX(ctx, g, opts, args), named after its path ("banger vm start":
// newVMStartCommand, vmStartOptions, runVMStart); nothing writes to
// os.Stdout or cobra's streams, and no flag is checked for by hand. The
// package's source is read with go/ast, so a command out of shape fails
// here however it is wired.
func TestCommandShape(t *testing.T) {
	src := parsePackage(t)
	root := newRootCommand(&globalOptions{})
	var paths []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Name() != "help" && !c.HasSubCommands() && (c.RunE != nil || c.Run != nil) {
			paths = append(paths, c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	ok := 0
	for _, p := range paths {
		problems := src.checkShape(strings.Fields(strings.TrimPrefix(p, "banger")))
		for _, pr := range problems {
			t.Errorf("%s: %s", p, pr)
		}
		if len(problems) == 0 {
			ok++
		}
	}
	t.Logf("%d/%d commands in shape", ok, len(paths))
	if len(paths) < 30 {
		t.Errorf("only %d runnable commands found", len(paths))
	}
	// Output goes through g.Stdout and g.Stderr only.
	for _, use := range src.badWriters {
		t.Errorf("%s: write through g.Stdout/g.Stderr instead", use)
	}
	// Required flags are marked (mustMarkRequired), not checked by hand.
	for _, lit := range src.requiredChecks {
		t.Errorf("%s: mark the flag required with mustMarkRequired instead", lit)
	}
}

// goPackage is what TestCommandShape reads from the package's files.
type goPackage struct {
	funcs      map[string]*ast.FuncDecl
	types      map[string]*ast.TypeSpec
	methods    map[string][]string // receiver type -> method names
	badWriters []string            // positions of OutOrStdout, os.Stdout, fmt.Print...
	// requiredChecks are string literals saying a flag "is required".
	requiredChecks []string
}

func parsePackage(t *testing.T) *goPackage {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	p := &goPackage{funcs: map[string]*ast.FuncDecl{}, types: map[string]*ast.TypeSpec{}, methods: map[string][]string{}}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, b, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					p.funcs[d.Name.Name] = d
					continue
				}
				recv := d.Recv.List[0].Type
				if s, ok := recv.(*ast.StarExpr); ok {
					recv = s.X
				}
				if id, ok := recv.(*ast.Ident); ok {
					p.methods[id.Name] = append(p.methods[id.Name], d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						p.types[ts.Name.Name] = ts
					}
				}
			}
		}
		if name == "main.go" {
			continue // Main hands os.Stdout and os.Stderr to the commands
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING && strings.Contains(lit.Value, "is required") {
				p.requiredChecks = append(p.requiredChecks, fset.Position(lit.Pos()).String()+": "+lit.Value)
			}
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			x, _ := sel.X.(*ast.Ident)
			switch {
			case sel.Sel.Name == "OutOrStdout", sel.Sel.Name == "OutOrStderr", sel.Sel.Name == "ErrOrStderr",
				x != nil && x.Name == "os" && (sel.Sel.Name == "Stdout" || sel.Sel.Name == "Stderr"),
				x != nil && x.Name == "fmt" && strings.HasPrefix(sel.Sel.Name, "Print"):
				p.badWriters = append(p.badWriters, fset.Position(sel.Pos()).String()+": "+exprString(sel))
			}
			return true
		})
	}
	return p
}

// shapeNames are the names a command's parts must have: words are the
// command path after "banger".
func shapeNames(words []string) (newFn, opts, run string) {
	var b strings.Builder
	for _, w := range words {
		for part := range strings.SplitSeq(w, "-") {
			switch part {
			case "vm", "ssh":
				b.WriteString(strings.ToUpper(part))
			default:
				b.WriteString(strings.ToUpper(part[:1]) + part[1:])
			}
		}
	}
	x := b.String()
	lower := strings.ToLower(words[0][:1]) + x[1:]
	if words[0] == "vm" {
		lower = "vm" + x[2:]
	}
	return "new" + x + "Command", lower + "Options", "run" + x
}

// checkShape lists what is out of shape in the command at words.
func (p *goPackage) checkShape(words []string) []string {
	newFn, opts, run := shapeNames(words)
	var problems []string
	// newXCommand(g *globalOptions) *cobra.Command, using xOptions and runX.
	if f := p.funcs[newFn]; f == nil {
		problems = append(problems, "no func "+newFn)
	} else {
		if params := fieldTypes(f.Type.Params); len(params) != 1 || params[0] != "*globalOptions" {
			problems = append(problems, newFn+" takes ("+strings.Join(params, ", ")+"), want (g *globalOptions)")
		}
		if !mentions(f.Body, opts) {
			problems = append(problems, newFn+" does not declare its "+opts)
		}
		if !mentions(f.Body, run) {
			problems = append(problems, newFn+" does not call "+run)
		}
	}
	// type xOptions struct of unexported fields.
	if ts := p.types[opts]; ts == nil {
		problems = append(problems, "no type "+opts)
	} else if st, ok := ts.Type.(*ast.StructType); !ok {
		problems = append(problems, opts+" is not a struct")
	} else {
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				if n.IsExported() {
					problems = append(problems, opts+"."+n.Name+" is exported")
				}
			}
			if len(f.Names) == 0 {
				problems = append(problems, opts+" embeds "+exprString(f.Type))
			}
		}
	}
	for _, m := range p.methods[opts] {
		if m == "AddFlags" {
			problems = append(problems, opts+".AddFlags: call it addFlags")
		}
	}
	// runX(ctx context.Context, g *globalOptions, opts *xOptions, args []string) error
	want := []string{"context.Context", "*globalOptions", "*" + opts, "[]string"}
	if f := p.funcs[run]; f == nil {
		problems = append(problems, "no func "+run)
	} else if params, results := fieldTypes(f.Type.Params), fieldTypes(f.Type.Results); strings.Join(params, ", ") != strings.Join(want, ", ") ||
		len(results) != 1 || results[0] != "error" {
		problems = append(problems, run+" takes ("+strings.Join(params, ", ")+") ("+strings.Join(results, ", ")+"), want ("+strings.Join(want, ", ")+") error")
	}
	return problems
}

// fieldTypes lists a parameter list's types, one per parameter.
func fieldTypes(fl *ast.FieldList) []string {
	if fl == nil {
		return nil
	}
	var out []string
	for _, f := range fl.List {
		n := max(len(f.Names), 1)
		for range n {
			out = append(out, exprString(f.Type))
		}
	}
	return out
}

// mentions reports whether the identifier name occurs in n.
func mentions(n ast.Node, name string) bool {
	found := false
	ast.Inspect(n, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && id.Name == name {
			found = true
		}
		return !found
	})
	return found
}

// exprString prints the type expressions used in signatures.
func exprString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.StarExpr:
		return "*" + exprString(e.X)
	case *ast.SelectorExpr:
		return exprString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + exprString(e.Elt)
	case *ast.Ellipsis:
		return "..." + exprString(e.Elt)
	case *ast.FuncType:
		return "func"
	case *ast.MapType:
		return "map[" + exprString(e.Key) + "]" + exprString(e.Value)
	case *ast.InterfaceType:
		return "interface"
	}
	return "?"
}
