package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// removeEach removes each named kind ("kernel", "image", "snapshot")
// with remove, which refuses (under the thing's lock) one still in use
// unless force. Every name is tried; the failures are joined.
func removeEach(ctx context.Context, w io.Writer, kind string, names []string, force bool,
	remove func(ctx context.Context, name string, force bool) error) error {
	var errs []error
	for _, name := range names {
		if err := remove(ctx, name, force); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "%s %s removed\n", kind, name)
	}
	return errors.Join(errs...)
}
