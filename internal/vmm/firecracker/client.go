package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// maxBody caps how much of a response the client reads (as lima's
// hostagent client does): Firecracker's answers are tiny.
const maxBody = 64 << 10

// Client talks to one Firecracker process over its API unix socket.
// The zero value is usable once Socket is set; it is safe for concurrent use.
type Client struct {
	// Socket is the path of Firecracker's --api-sock.
	Socket string
	// Dial, if set, replaces the unix socket dialer (tests, proxies).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	once sync.Once
	hc   *http.Client
}

// APIError is a response from Firecracker with an unexpected status.
type APIError struct {
	Method, Path string
	Status       int
	// FaultMessage is Firecracker's {"fault_message": …}, or the raw body
	// when the answer was not shaped like that.
	FaultMessage string
}

func (e *APIError) Error() string {
	msg := e.FaultMessage
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("firecracker API %s %s: %d: %s", e.Method, e.Path, e.Status, msg)
}

func (c *Client) httpClient() *http.Client {
	c.once.Do(func() {
		dial := c.Dial
		if dial == nil {
			var d net.Dialer
			dial = d.DialContext
		}
		c.hc = &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dial(ctx, "unix", c.Socket)
			},
			// One connection per call: nothing lingers after a VM is
			// configured, and a restarted Firecracker is never talked to
			// over a dead connection.
			DisableKeepAlives: true,
		}}
	})
	return c.hc
}

// Send makes one API call. A non-nil body is sent as JSON. It returns the
// response body when the status is wantStatus, else an *APIError.
func (c *Client) Send(ctx context.Context, method, path string, wantStatus int, body any) ([]byte, error) {
	if c.Socket == "" {
		return nil, errors.New("firecracker API client: no socket path set")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("firecracker API %s %s: encoding body: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	// The host is a placeholder: the transport always dials Socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, rd)
	if err != nil {
		return nil, fmt.Errorf("firecracker API %s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("firecracker API %s %s via %s: %w", method, path, c.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("firecracker API %s %s: reading response: %w", method, path, err)
	}
	if len(data) > maxBody {
		return nil, fmt.Errorf("firecracker API %s %s: response larger than %d bytes", method, path, maxBody)
	}
	if resp.StatusCode != wantStatus {
		return nil, &APIError{Method: method, Path: path, Status: resp.StatusCode, FaultMessage: faultMessage(data)}
	}
	return data, nil
}

// Put sends body with PUT and expects Firecracker's 204 No Content.
func (c *Client) Put(ctx context.Context, path string, body any) error {
	_, err := c.Send(ctx, http.MethodPut, path, http.StatusNoContent, body)
	return err
}

// Patch sends body with PATCH and expects Firecracker's 204 No Content.
func (c *Client) Patch(ctx context.Context, path string, body any) error {
	_, err := c.Send(ctx, http.MethodPatch, path, http.StatusNoContent, body)
	return err
}

// Get fetches path and decodes its JSON answer into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	data, err := c.Send(ctx, http.MethodGet, path, http.StatusOK, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("firecracker API GET %s: decoding response: %w", path, err)
	}
	return nil
}

// Action runs a synchronous action: InstanceStart, SendCtrlAltDel, FlushMetrics.
func (c *Client) Action(ctx context.Context, actionType string) error {
	return c.Put(ctx, "/actions", map[string]string{"action_type": actionType})
}

func faultMessage(data []byte) string {
	var e struct {
		FaultMessage string `json:"fault_message"`
	}
	if json.Unmarshal(data, &e) == nil && e.FaultMessage != "" {
		return e.FaultMessage
	}
	return strings.TrimSpace(string(data))
}
