// Package cli is banger's command tree: thin cobra commands that parse
// flags and call into the library packages.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitCanceled = 130
)

// ExitError carries an exit code chosen by a command (for example the exit
// status of a command run inside a guest) without printing anything.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// usageError marks errors in how banger was called.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// Main runs banger with the process's arguments and environment and
// returns the exit code.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globalOptions{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
	}
	return run(ctx, g, os.Args[1:])
}

func run(ctx context.Context, g *globalOptions, args []string) int {
	root := newRootCommand(g)
	root.SetArgs(args)
	root.SetIn(g.Stdin)
	root.SetOut(g.Stdout)
	root.SetErr(g.Stderr)
	err := root.ExecuteContext(ctx)
	return reportError(g.Stderr, ctx, err)
}

func reportError(w io.Writer, ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		fmt.Fprintln(w, "banger: interrupted")
		return exitCanceled
	}
	fmt.Fprintf(w, "banger: %v\n", withHint(err))
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	if ctx.Err() != nil {
		return exitCanceled
	}
	return exitFailure
}
