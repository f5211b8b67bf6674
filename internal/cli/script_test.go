package cli

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run banger in-process as the "banger" command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"banger": func() { os.Exit(Main()) },
	})
}

// scriptParams are the settings every group of CLI scripts shares: state
// under $WORK, and UPDATE_SCRIPTS=1 to rewrite expected output.
func scriptParams(t *testing.T, glob string, cmds map[string]func(ts *testscript.TestScript, neg bool, args []string)) testscript.Params {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "script", glob))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scripts match %s", glob)
	}
	return testscript.Params{
		Files: files,
		Setup: func(env *testscript.Env) error {
			env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, "state"))
			env.Setenv("HOME", filepath.Join(env.WorkDir, "home"))
			env.Values[scriptStateKey{}] = &scriptState{}
			return nil
		},
		Cmds:                withCommonCmds(cmds),
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") != "",
		RequireExplicitExec: true,
	}
}

// withCommonCmds adds the commands every group of scripts has.
func withCommonCmds(cmds map[string]func(ts *testscript.TestScript, neg bool, args []string)) map[string]func(ts *testscript.TestScript, neg bool, args []string) {
	all := map[string]func(ts *testscript.TestScript, neg bool, args []string){"jsonkeys": cmdJSONKeys}
	maps.Copy(all, cmds)
	return all
}

// jsonkeys prints the shape of the JSON the last command printed: one
// line per path, jq style (".[].name"), with its JSON type, sorted; the
// elements of an array share their paths. "cmp stdout FILE" then checks
// the shape.
func cmdJSONKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: jsonkeys")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	paths := map[string]string{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			paths[path] = "object"
			for k, x := range v {
				walk(strings.TrimSuffix(path, ".")+"."+k, x)
			}
		case []any:
			paths[path] = "array"
			for _, x := range v {
				walk(path+"[]", x)
			}
		case string:
			paths[path] = "string"
		case float64:
			paths[path] = "number"
		case bool:
			paths[path] = "boolean"
		case nil:
			paths[path] = "null"
		}
	}
	walk(".", v)
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		fmt.Fprintf(ts.Stdout(), "%s %s\n", p, paths[p])
	}
}

func TestGeneralScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "general_*.txtar", nil))
}

type scriptStateKey struct{}

// scriptState is what custom script commands keep between calls within one
// script (servers they started, for instance).
type scriptState struct {
	values map[string]any
}

func stateOf(ts *testscript.TestScript) *scriptState {
	st := ts.Value(scriptStateKey{}).(*scriptState)
	if st.values == nil {
		st.values = map[string]any{}
	}
	return st
}
