package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// httpSource requests the file, from an offset with Range once it has
// part of it. If-Range makes a server whose file changed answer 200 with
// the whole new file instead of splicing two versions.
type httpSource struct {
	url       string
	name      string
	size      int64
	client    *http.Client
	own       bool   // client was made here: close its idle connections
	validator string // strong ETag or Last-Modified of the last response
	noRange   bool   // the server got Range wrong once: stop asking
}

func newHTTPSource(rawURL, name string, size int64, opts Options) *httpSource {
	s := &httpSource{url: rawURL, name: name, size: size, client: opts.Client}
	if s.client == nil {
		s.client, s.own = newClient(), true
	}
	return s
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4,
	}}
}

func (s *httpSource) close() {
	if s.own {
		s.client.CloseIdleConnections()
	}
}

func (s *httpSource) open(ctx context.Context, offset int64) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, 0, permanent(fmt.Errorf("downloading %s: %w", s.name, err))
	}
	// identity: the bytes hashed must be the file's, not a re-encoding.
	req.Header.Set("Accept-Encoding", "identity")
	if offset > 0 && !s.noRange {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if s.validator != "" {
			req.Header.Set("If-Range", s.validator)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by whoever reports it
		}
		return nil, 0, err
	}
	start, err := s.check(resp, offset)
	if err != nil {
		resp.Body.Close()
		return nil, 0, err
	}
	s.validator = validator(resp.Header)
	return resp.Body, start, nil
}

// check validates the response and returns where its body starts.
func (s *httpSource) check(resp *http.Response, offset int64) (int64, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength >= 0 && resp.ContentLength != s.size {
			return 0, &SizeError{URL: s.name, Expected: s.size, Actual: resp.ContentLength}
		}
		return 0, nil
	case http.StatusPartialContent:
		first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err == nil && total >= 0 && total != s.size {
			return 0, &SizeError{URL: s.name, Expected: s.size, Actual: total}
		}
		if err == nil && (first != offset || last != s.size-1) {
			err = fmt.Errorf("asked for bytes %d- but got %d-%d", offset, first, last)
		}
		if err == nil && resp.ContentLength >= 0 && resp.ContentLength != s.size-offset {
			err = fmt.Errorf("Content-Length %d does not match the range's %d bytes", resp.ContentLength, s.size-offset)
		}
		if err != nil {
			s.noRange = true
			return 0, fmt.Errorf("bad partial response (%w); downloading from the start instead", err)
		}
		return first, nil
	case http.StatusRequestedRangeNotSatisfiable:
		if offset > 0 && !s.noRange {
			s.noRange = true
			return 0, errors.New("the server refused the range; downloading from the start instead")
		}
	}
	return 0, &StatusError{URL: s.name, Code: resp.StatusCode, Status: resp.Status,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// validator returns what If-Range may carry: a strong ETag, else the
// Last-Modified date (weak ETags are not allowed in If-Range).
func validator(h http.Header) string {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		return et
	}
	return h.Get("Last-Modified")
}

// parseContentRange parses "bytes first-last/total"; total is -1 for "*".
func parseContentRange(v string) (first, last, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", v)
	spec, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	rng, tot, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	first, err1 := strconv.ParseInt(a, 10, 64)
	last, err2 := strconv.ParseInt(b, 10, 64)
	total = -1
	var err3 error
	if tot != "*" {
		total, err3 = strconv.ParseInt(tot, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || first < 0 || last < first || (total >= 0 && last >= total) {
		return 0, 0, 0, bad
	}
	return first, last, total, nil
}
