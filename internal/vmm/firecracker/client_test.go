package firecracker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serveUnix serves h on a unix socket in a temp dir (a real HTTP server).
func serveUnix(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	ln, err := net.Listen("unix", sock)
	must(t, err)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestClient(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("PUT /fault", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"fault_message":"Invalid kernel path"}`))
	})
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("GET /info", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"vmm_version":"1.9.0"}`))
	})
	mux.HandleFunc("GET /big/{n}", func(w http.ResponseWriter, r *http.Request) {
		n := map[string]int{"cap": maxBody, "over": maxBody + 1}[r.PathValue("n")]
		_, _ = w.Write([]byte(strings.Repeat("x", n)))
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	sock := serveUnix(t, mux)
	ctx := context.Background()

	var dialed []string
	c := &Client{Socket: sock, Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, network+":"+addr)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	if err := c.Put(ctx, "/ok", map[string]int{"a": 1}); err != nil {
		t.Errorf("Put /ok: %v", err)
	}
	if len(dialed) != 1 || dialed[0] != "unix:"+sock {
		t.Errorf("custom Dial calls %q, want one to unix:%s", dialed, sock)
	}

	c = &Client{Socket: sock}
	var apiErr *APIError
	err := c.Put(ctx, "/fault", struct{}{})
	if !errors.As(err, &apiErr) || apiErr.Status != 400 || apiErr.FaultMessage != "Invalid kernel path" ||
		err.Error() != "firecracker API PUT /fault: 400: Invalid kernel path" {
		t.Errorf("fault: %v", err)
	}
	err = c.Get(ctx, "/plain", new(any))
	if !errors.As(err, &apiErr) || apiErr.Status != 500 || apiErr.FaultMessage != "boom" {
		t.Errorf("plain-text error: %v", err)
	}
	var info struct {
		V string `json:"vmm_version"`
	}
	if err := c.Get(ctx, "/info", &info); err != nil || info.V != "1.9.0" {
		t.Errorf("Get /info = %+v, %v", info, err)
	}
	if _, err := c.Send(ctx, "GET", "/big/cap", 200, nil); err != nil {
		t.Errorf("a 64 KiB body: %v", err)
	}
	if _, err := c.Send(ctx, "GET", "/big/over", 200, nil); err == nil || !strings.Contains(err.Error(), "larger than 65536 bytes") {
		t.Errorf("a body over 64 KiB: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Send(tctx, "GET", "/slow", 200, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call past its deadline: %v", err)
	}
	if err := new(Client).Put(ctx, "/ok", nil); err == nil || !strings.Contains(err.Error(), "no socket") {
		t.Errorf("zero Client: %v", err)
	}
	if err := (&Client{Socket: filepath.Join(t.TempDir(), "none.sock")}).Put(ctx, "/ok", nil); err == nil ||
		!strings.Contains(err.Error(), "none.sock") {
		t.Errorf("missing socket: %v", err)
	}
}
