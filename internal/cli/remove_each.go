package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
)

// removeEach removes each named kind ("kernel", "image") with remove,
// keeping those that users (what depends on them, e.g. "VM(s)") reports
// in use unless force. Every name is tried; the failures are joined.
func removeEach(ctx context.Context, w io.Writer, kind, usersKind string, names []string, force bool,
	users func(name string) ([]string, error), remove func(ctx context.Context, name string) error) error {
	var errs []error
	for _, name := range names {
		if !force {
			u, err := users(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if len(u) > 0 {
				errs = append(errs, fmt.Errorf("%s %q is used by %s %s (hint: remove them first, or pass --force)", kind, name, usersKind, strings.Join(u, ", ")))
				continue
			}
		}
		if err := remove(ctx, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "%s %s removed\n", kind, name)
	}
	return errors.Join(errs...)
}
