package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// invokeBanger runs banger in-process with args and returns its exit code,
// stdout and stderr.
func invokeBanger(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	home := t.TempDir()
	g := &globalOptions{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	}}
	return run(context.Background(), g, args), out.String(), errb.String()
}

// TestUnknownCommands: a mistyped command at any level is a usage error
// (exit 2) that names it, with a suggestion when one is close.
func TestUnknownCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus" for "banger" (see "banger --help")`},
		{[]string{"vm", "frobnicate"}, `unknown command "frobnicate" for "banger vm" (see "banger vm --help")`},
		{[]string{"kernel", "pul", "x"}, `unknown command "pul" for "banger kernel"; did you mean "pull"?`},
		{[]string{"image", "buidl"}, `unknown command "buidl" for "banger image"; did you mean "build"?`},
		{[]string{"snapshot", "lst"}, `unknown command "lst" for "banger snapshot"; did you mean "list"?`},
		{[]string{"upp"}, `unknown command "upp" for "banger"; did you mean "up"?`},
		{[]string{"vm", "cpy", "a", "b"}, `unknown command "cpy" for "banger vm"; did you mean "cp"?`},
	} {
		code, out, errs := invokeBanger(t, tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) || out != "" {
			t.Errorf("banger %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, out, errs, tc.want)
		}
	}
	// A group alone still prints its help, successfully.
	if code, out, _ := invokeBanger(t, "vm"); code != 0 || !strings.Contains(out, "Available Commands:") {
		t.Errorf("banger vm: exit %d, %q", code, out)
	}
}

// TestHelpEndsWithExitStatus: every command's help ends with its exit
// statuses.
func TestHelpEndsWithExitStatus(t *testing.T) {
	root := newRootCommand(&globalOptions{})
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "banger")), "--help")
		code, out, _ := invokeBanger(t, args...)
		last := out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n\n")+2:]
		if code != 0 || !strings.HasPrefix(last, "Exit status: ") || !strings.Contains(last, "usage error") {
			t.Errorf("%s --help (exit %d) ends with %q, want the exit statuses", c.CommandPath(), code, last)
		}
		n++
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 30 {
		t.Errorf("only %d commands checked", n)
	}
}

// TestRequiredFlags: a missing required flag is a usage error naming it.
func TestRequiredFlags(t *testing.T) {
	code, out, errs := invokeBanger(t, "image", "register", "--rootfs", "x")
	want := `banger: banger image register: required flag(s) "kernel-ref", "name" not set (see "banger image register --help")`
	if code != exitUsage || out != "" || strings.TrimSpace(errs) != want {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, out, errs, want)
	}
}
