package bundletest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"
)

// Faults injects failures a real server does not produce on demand. They
// are a fake, used only for what real parts cannot do.
type Faults struct {
	// DropAfter > 0: the first full (non-Range) response is cut after
	// that many body bytes by closing the connection.
	DropAfter int64
	// FailFirst answers the first n requests with 503.
	FailFirst int
	// BytesPerSecond > 0 throttles bodies, so concurrent clients overlap.
	BytesPerSecond int64
	// StallAfter > 0: the first full (non-Range) GET response stops after
	// that many body bytes and sends nothing more until the client goes
	// away, so a download is certainly under way when a test acts on it.
	StallAfter int64
}

// Server serves files from a directory on 127.0.0.1 with Range support
// (http.ServeContent) and counts requests.
type Server struct {
	*httptest.Server
	Requests atomic.Int64
	Ranges   atomic.Int64 // requests that carried a Range header
	mu       sync.Mutex
	dropped  bool
	stalled  bool
	failed   int
	stop     chan struct{} // closed by Close: stalled responses end
	stopOnce sync.Once
}

// Serve starts a server for dir. Close it when done.
func Serve(dir string, f Faults) *Server {
	s := &Server{stop: make(chan struct{})}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		if r.Header.Get("Range") != "" {
			s.Ranges.Add(1)
		}
		s.mu.Lock()
		if s.failed < f.FailFirst {
			s.failed++
			s.mu.Unlock()
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		drop := f.DropAfter > 0 && !s.dropped && r.Header.Get("Range") == ""
		if drop {
			s.dropped = true
		}
		stall := f.StallAfter > 0 && !s.stalled && r.Method == http.MethodGet && r.Header.Get("Range") == ""
		if stall {
			s.stalled = true
		}
		s.mu.Unlock()
		ww := http.ResponseWriter(w)
		switch {
		case stall:
			ww = &faultWriter{ResponseWriter: w, limit: f.StallAfter, stall: r.Context().Done(), stop: s.stop, bps: f.BytesPerSecond}
		case drop || f.BytesPerSecond > 0:
			ww = &faultWriter{ResponseWriter: w, limit: f.DropAfter, drop: drop, bps: f.BytesPerSecond}
		}
		files.ServeHTTP(ww, r)
	}))
	return s
}

// Close ends stalled responses and shuts the server down.
func (s *Server) Close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.Server.Close()
}

type faultWriter struct {
	http.ResponseWriter
	written int64
	limit   int64
	drop    bool
	stall   <-chan struct{} // not nil: stall at limit until it is closed (the client left)
	stop    <-chan struct{} // or this one is (the server closes)
	bps     int64
}

func (w *faultWriter) Write(p []byte) (int, error) {
	if w.stall != nil && w.written+int64(len(p)) > w.limit {
		n, _ := w.ResponseWriter.Write(p[:w.limit-w.written])
		w.written += int64(n)
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		select {
		case <-w.stall:
		case <-w.stop:
		}
		return n, http.ErrAbortHandler
	}
	if w.drop && w.written+int64(len(p)) > w.limit {
		n, _ := w.ResponseWriter.Write(p[:w.limit-w.written])
		w.written += int64(n)
		if f, ok := w.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		// Cut the connection mid-body.
		if hj, ok := w.ResponseWriter.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				_ = c.Close()
			}
		}
		return n, http.ErrAbortHandler
	}
	if w.bps > 0 {
		total := len(p)
		for len(p) > 0 {
			chunk := min(len(p), int(w.bps/20)+1)
			n, err := w.ResponseWriter.Write(p[:chunk])
			w.written += int64(n)
			if err != nil {
				return n, err
			}
			p = p[chunk:]
			time.Sleep(50 * time.Millisecond)
		}
		return total, nil
	}
	n, err := w.ResponseWriter.Write(p)
	w.written += int64(n)
	return n, err
}
