// Package fetch downloads one file of known size and sha256 (a kernel
// tarball from the catalog) as a verified stream: it retries transient
// failures, resumes with HTTP Range, can persist received bytes for a later
// run, and only ends the stream with io.EOF once size and digest matched.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Source is what to download and what it must turn out to be.
type Source struct {
	URL    string // https://, http:// or file://
	Size   int64  // exact expected size in bytes (> 0)
	SHA256 string // expected lower-case hex digest
}

// Options tune a download. The zero value is ready to use.
type Options struct {
	// Client performs the HTTP requests. nil: a client with connect, TLS
	// and response-header timeouts but no overall timeout.
	Client *http.Client
	// Partial, if set, is a file that receives every byte as it arrives so
	// that a later Open with the same Partial resumes where this one
	// stopped. It is replayed (and re-verified) first, and removed after
	// success or a size/digest mismatch. The download holds a flock on it
	// while it runs: a second download of the same Partial goes ahead
	// without one, and PruneStale leaves it alone. Ignored for file://
	// URLs, apart from being removed after success.
	Partial string
	// Progress, if set, receives every delivered byte (only its length
	// matters; it is typically a *progress.Bar).
	Progress io.Writer
	// Retries is how many failed attempts in a row (attempts that
	// delivered no new byte) are retried; 0 means 5.
	Retries int
	// Backoff is the first retry delay, doubled per failure with jitter
	// and capped at 5s; 0 means 200ms. A longer Retry-After from the
	// server (429, 503) is honoured up to 60s.
	Backoff time.Duration
	// Stall aborts and retries an attempt that receives no byte for this
	// long; 0 means 60s.
	Stall time.Duration
	// Logf, if set, receives one line per retry or resume. It is called
	// from the download goroutine.
	Logf func(format string, args ...any)
}

const (
	defaultRetries = 5
	defaultBackoff = 200 * time.Millisecond
	maxBackoff     = 5 * time.Second
	maxRetryAfter  = 60 * time.Second
	defaultStall   = 60 * time.Second
)

// Open starts downloading src and returns its bytes as a stream. Reads
// deliver the file's bytes in order; the final Read returns io.EOF only
// after exactly src.Size bytes were received and their sha256 matched,
// otherwise a *SizeError, *DigestError, *StatusError or another error
// naming the URL. Open itself fails only for an invalid Source or an
// unusable Partial path; network errors arrive through Read. Close stops
// the download and releases everything.
func Open(ctx context.Context, src Source, opts Options) (io.ReadCloser, error) {
	u, err := checkSource(src)
	if err != nil {
		return nil, err
	}
	if opts.Retries <= 0 {
		opts.Retries = defaultRetries
	}
	if opts.Backoff <= 0 {
		opts.Backoff = defaultBackoff
	}
	if opts.Stall <= 0 {
		opts.Stall = defaultStall
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	name := u.Redacted()
	var s source
	if u.Scheme == "file" {
		s, err = newFileSource(u, name, src.Size)
	} else {
		s = newHTTPSource(u.String(), name, src.Size, opts)
	}
	if err != nil {
		return nil, err
	}
	var part *partial
	if opts.Partial != "" && u.Scheme != "file" {
		part, err = openPartial(opts.Partial, src.Size, opts.Logf)
		if errors.Is(err, errPartialBusy) {
			opts.Logf("downloading %s: partial download %s is in use by another process; downloading without keeping the bytes", name, opts.Partial)
			opts.Partial, err = "", nil
		}
		if err != nil {
			s.close()
			return nil, err
		}
	}
	return start(ctx, src, name, s, part, opts), nil
}

func checkSource(src Source) (*url.URL, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return nil, fmt.Errorf("downloading %q: bad URL: %w", src.URL, err)
	}
	name := u.Redacted()
	switch u.Scheme {
	case "https", "http", "file":
	default:
		return nil, fmt.Errorf("downloading %s: unsupported URL scheme %q (hint: use https://, http:// or file://)", name, u.Scheme)
	}
	if src.Size <= 0 {
		return nil, fmt.Errorf("downloading %s: expected size %d is not positive (hint: the catalog entry needs its tarball's size)", name, src.Size)
	}
	if !isHexDigest(src.SHA256) {
		return nil, fmt.Errorf("downloading %s: expected sha256 %q is not 64 lower-case hex digits (hint: the catalog entry needs its tarball's sha256)", name, src.SHA256)
	}
	return u, nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
