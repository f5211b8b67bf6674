// Package guestcopy copies files and directory trees between the host and
// a running guest, through the guest's SFTP server on an SSH connection,
// keeping modes and times, and holes in sparse files. Nothing
// half-written ever carries a destination's name, on either side.
package guestcopy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Options tune a copy.
type Options struct {
	// Recursive copies directories and everything in them; without it a
	// directory source is an ErrIsDir error. With it, a source that is a
	// symbolic link is copied as a link; without it, what it points to
	// is copied (as cp does).
	Recursive bool
	// Progress, if set, is called once the sources are listed with the
	// number of bytes of their regular files, and returns what is told of
	// bytes as they are copied (nil: nothing).
	Progress func(total int64) Progress
}

// Progress is told of bytes copied (holes included).
type Progress interface{ Add(n int64) }

// abortAfter is how long a cancelled copy may take to stop by itself
// (and clean up in the guest) before the SFTP session is cut, which ends
// any request the guest does not answer.
const abortAfter = 10 * time.Second

// Client copies to and from one guest.
type Client struct {
	sess *ssh.Session
	sc   *sftp.Client
	g    *guestFS
}

// New starts the SFTP subsystem on c. A guest without an SFTP server
// gives an error matching ErrNoSFTP, with what its SSH server said.
func New(ctx context.Context, c *ssh.Client) (*Client, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("opening an SSH session: %w", err)
	}
	w, err := sess.StdinPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	errPipe, err := sess.StderrPipe()
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	// The server's complaints, kept for the error if it fails to start;
	// read all along so that it never blocks writing them.
	stderr := &headBuffer{max: 1024}
	stderrDone := make(chan struct{})
	go func() { _, _ = io.Copy(stderr, errPipe); close(stderrDone) }()
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	defer stop()
	if err := sess.RequestSubsystem("sftp"); err != nil {
		_ = sess.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w (%w)", ErrNoSFTP, err)
	}
	sc, err := sftp.NewClientPipe(r, w, sftp.UseConcurrentWrites(true))
	if err != nil {
		// The server program is missing or failed: let its stderr arrive.
		select {
		case <-stderrDone:
		case <-time.After(2 * time.Second):
		}
		_ = sess.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		detail := strings.TrimSpace(stderr.String())
		if detail == "" {
			detail = err.Error()
		}
		return nil, fmt.Errorf("%w (%s)", ErrNoSFTP, detail)
	}
	return &Client{sess: sess, sc: sc, g: newGuestFS(sc, c)}, nil
}

// Close ends the SFTP session (not the SSH connection).
func (c *Client) Close() error {
	err := c.sc.Close()
	_ = c.sess.Close()
	return err
}

// Upload copies the host's srcs to dst in the guest, with cp's rules:
// when dst is a directory, each source goes into it under its base name
// (a directory merging into one that exists); otherwise dst is the one
// source's new name. Several sources need dst to be a directory.
func (c *Client) Upload(ctx context.Context, srcs []string, dst string, o Options) error {
	srcs, dst = orDot(srcs), orDot([]string{dst})[0]
	cp := &copier{src: hostSource{}, o: o}
	resolve := func(nodes []*node) (target, error) {
		return resolveTarget(srcs, nodes, dst, true, c.sc.Stat, func(err error) error { return c.g.classify(err, dst) })
	}
	open := func(dir string) (dest, string, func(), error) { return c.g, dir, func() {}, nil }
	return c.guarded(ctx, func() error { return cp.run(ctx, srcs, resolve, open) })
}

// Download copies the guest's srcs to dst on the host, with Upload's
// rules. Everything is written through an os.Root at the destination
// directory: names the guest lists cannot lead outside it.
func (c *Client) Download(ctx context.Context, srcs []string, dst string, o Options) error {
	srcs, dst = orDot(srcs), orDot([]string{dst})[0]
	cp := &copier{src: c.g, o: o}
	resolve := func(nodes []*node) (target, error) {
		return resolveTarget(srcs, nodes, dst, false, os.Stat, classifyHost)
	}
	open := func(dir string) (dest, string, func(), error) {
		d, err := openHostDest(filepath.Clean(dir))
		if err != nil {
			return nil, "", nil, &Error{Op: "writing into", Path: dir, Err: classifyHost(err)}
		}
		return d, ".", func() { _ = d.Close() }, nil
	}
	return c.guarded(ctx, func() error { return cp.run(ctx, srcs, resolve, open) })
}

// orDot turns empty paths into "." (a guest's home directory, the
// host's working directory).
func orDot(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = p
		if p == "" {
			out[i] = "."
		}
	}
	return out
}

// guarded runs copy; if ctx ends and copy has not returned abortAfter
// later (a guest that stopped answering), the session is cut.
func (c *Client) guarded(ctx context.Context, copy func() error) error {
	done := make(chan struct{})
	defer close(done)
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-done:
		case <-time.After(abortAfter):
			_ = c.sess.Close()
		}
	})
	defer stop()
	return copy()
}

// headBuffer keeps the first max bytes written to it, and notes whether
// more came.
type headBuffer struct {
	mu   sync.Mutex
	max  int
	b    bytes.Buffer
	over bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	room := h.max - h.b.Len()
	if len(p) > room {
		h.over = true
	}
	h.b.Write(p[:max(0, min(len(p), room))])
	return len(p), nil
}

func (h *headBuffer) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.b.String()
}
