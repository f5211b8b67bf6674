package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/thaloco/banger/internal/stagedir"
)

// verifyView is one line of `kernel verify --json` / `image verify --json`.
type verifyView struct {
	Name  string `json:"name"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// newVerifyCommand builds the cobra command of "kernel verify" or "image
// verify": kind names the things verified ("kernel", "image"), json is
// where --json goes.
func newVerifyCommand(kind, example, long string, json *bool, runE func(*cobra.Command, []string) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify [NAME...]",
		Short: fmt.Sprintf("Re-hash installed %ss against their manifests", kind),
		Long:  long,
		Annotations: map[string]string{exitStatusKey: `Exit status: 0 when everything verified matches its manifest, 1 when
something does not (each is named on stderr, or in the JSON), 2 on a
usage error, 130 when interrupted.`},
		Example: example,
		RunE:    runE,
	}
	cmd.Flags().BoolVar(json, "json", false, "print one object per "+kind+" (name, ok, error) as a JSON array")
	return cmd
}

// verifyEach checks each named kind with verify, every installed one
// (list) when names is empty, and reports them all; any mismatch makes
// the exit status 1.
func verifyEach(ctx context.Context, g *globalOptions, asJSON bool, kind string, names []string,
	list func() ([]string, error), verify func(ctx context.Context, name string) error) error {
	if len(names) == 0 {
		var err error
		if names, err = list(); err != nil {
			return err
		}
	}
	views := []verifyView{}
	bad := 0
	for _, name := range names {
		err := verify(ctx, name)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		v := verifyView{Name: name, OK: err == nil}
		if err != nil {
			v.Error = withHint(err).Error()
			bad++
		}
		views = append(views, v)
	}
	if asJSON {
		if err := writeJSON(g.Stdout, views); err != nil {
			return err
		}
	} else {
		writeVerify(g.Stdout, g.Stderr, kind, views)
	}
	if bad > 0 {
		return &ExitError{Code: exitFailure}
	}
	return nil
}

func writeVerify(out, errw io.Writer, kind string, views []verifyView) {
	if len(views) == 0 {
		_ = printEmpty(out, kind+"s", "")
	}
	for _, v := range views {
		if v.OK {
			fmt.Fprintf(out, "%s %s: ok\n", kind, v.Name)
		} else {
			fmt.Fprintf(errw, "banger: %s\n", v.Error)
		}
	}
}

// listingNames is the names in a store's listing.
func listingNames[M any](ls []stagedir.Listing[M], err error) ([]string, error) {
	names := make([]string, 0, len(ls))
	for _, l := range ls {
		names = append(names, l.Name)
	}
	return names, err
}
