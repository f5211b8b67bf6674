package cli

import (
	"os"
	"path/filepath"
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
		Cmds:                cmds,
		UpdateScripts:       os.Getenv("UPDATE_SCRIPTS") != "",
		RequireExplicitExec: true,
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
