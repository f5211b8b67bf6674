package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// DigestError reports that the received bytes do not hash to the
// expected sha256.
type DigestError struct{ URL, Expected, Actual string }

func (e *DigestError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s: expected %s, got %s (hint: the tarball is corrupt or was replaced; check the catalog entry or mirror, or try again)",
		e.URL, e.Expected, e.Actual)
}

// SizeError reports a body of the wrong length. Actual is the length the
// server announced, or the number of bytes seen when the body ended early
// or ran past Expected (then Actual > Expected is a lower bound).
type SizeError struct {
	URL              string
	Expected, Actual int64
}

func (e *SizeError) Error() string {
	got := fmt.Sprintf("got %d", e.Actual)
	if e.Actual > e.Expected {
		got = fmt.Sprintf("got more than %d", e.Expected)
	}
	return fmt.Sprintf("size mismatch for %s: expected %d bytes, %s (hint: the tarball is truncated or was replaced; check the catalog entry or mirror)",
		e.URL, e.Expected, got)
}

// StatusError is an HTTP response that is neither 200 nor 206.
type StatusError struct {
	URL        string
	Code       int
	Status     string        // e.g. "404 Not Found"
	RetryAfter time.Duration // from a Retry-After header, or 0
}

func (e *StatusError) Error() string {
	s := fmt.Sprintf("downloading %s: %s", e.URL, e.Status)
	if h := statusHint(e.Code); h != "" {
		s += " (hint: " + h + ")"
	}
	return s
}

// Gone reports whether the server says there is nothing at the URL.
func (e *StatusError) Gone() bool {
	return e.Code == http.StatusNotFound || e.Code == http.StatusGone
}

// Refused reports whether the server refused access.
func (e *StatusError) Refused() bool {
	return e.Code == http.StatusUnauthorized || e.Code == http.StatusForbidden
}

// statusHint is what to do about a status the caller cannot fix by
// pointing somewhere else (Gone and Refused are the caller's to explain).
func statusHint(code int) string {
	if transientStatus(code) {
		return "the server is failing; try again later"
	}
	return ""
}

func transientStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}

// retryError is the last transient failure once retries ran out.
type retryError struct {
	name     string
	attempts int
	last     error
}

func (e *retryError) Error() string {
	hint := "check the network and the server, then run the command again"
	var st *StatusError
	if errors.As(e.last, &st) {
		hint = statusHint(st.Code)
	}
	return fmt.Sprintf("downloading %s: giving up after %d failed attempts: %s (hint: %s)",
		e.name, e.attempts, describe(e.last), hint)
}

func (e *retryError) Unwrap() error { return e.last }

// describe is err without the "downloading URL:" its message may carry.
func describe(err error) string {
	var st *StatusError
	switch {
	case errors.As(err, &st):
		return st.Status
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection dropped"
	}
	return err.Error()
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// transient reports whether a failed attempt is worth retrying. The
// caller has already checked that its own context is still alive.
func transient(err error) bool {
	var (
		perm  *permanentError
		st    *StatusError
		se    *SizeError
		de    *DigestError
		dns   *net.DNSError
		cve   *tls.CertificateVerificationError
		unk   x509.UnknownAuthorityError
		host  x509.HostnameError
		inval x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &st):
		return transientStatus(st.Code)
	case errors.As(err, &perm), errors.As(err, &se), errors.As(err, &de):
		return false
	case errors.As(err, &dns):
		return !dns.IsNotFound
	case errors.As(err, &cve), errors.As(err, &unk), errors.As(err, &host), errors.As(err, &inval):
		return false
	case errors.Is(err, context.Canceled):
		return false
	}
	// Resets, drops, timeouts, unexpected EOFs: the network's usual faults.
	return true
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
