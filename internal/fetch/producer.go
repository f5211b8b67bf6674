package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"

	"github.com/thaloco/banger/internal/progress"
)

// source opens the file's body at offset. A body may also start at 0
// (a server that ignores Range); start says where it starts.
type source interface {
	open(ctx context.Context, offset int64) (body io.ReadCloser, start int64, err error)
	close()
}

// producer is the download goroutine: it fills chunks from the partial
// file and then the network, hashing every byte on the way.
type producer struct {
	ctx    context.Context
	src    Source
	name   string // the URL, redacted, for messages
	s      source
	part   *partial
	opts   Options
	h      hash.Hash
	full   chan<- *chunk
	free   <-chan *chunk
	cur    *chunk
	offset int64       // bytes hashed (and delivered) so far
	timer  *time.Timer // the current attempt's stall timer, or nil
	probe  [1]byte
	result error
}

func start(ctx context.Context, src Source, name string, s source, part *partial, opts Options) *reader {
	ctx, cancel := context.WithCancelCause(ctx)
	full := make(chan *chunk, numChunks)
	free := make(chan *chunk, numChunks)
	mem := make([]byte, numChunks*chunkSize)
	for i := range numChunks {
		free <- &chunk{buf: mem[i*chunkSize : (i+1)*chunkSize : (i+1)*chunkSize]}
	}
	done := make(chan struct{})
	p := &producer{ctx: ctx, src: src, name: name, s: s, part: part, opts: opts,
		h: sha256.New(), full: full, free: free}
	go func() {
		defer close(done)
		defer cancel(nil)
		defer close(full)
		p.result = p.run()
	}()
	return &reader{full: full, free: free, cancel: cancel, done: done, result: &p.result}
}

func (p *producer) run() error {
	defer p.s.close()
	err := p.download()
	if p.cur != nil && p.cur.n > 0 {
		p.send() // the tail, and its bytes into the partial file
	}
	var se *SizeError
	var de *DigestError
	bad := errors.As(err, &se) || errors.As(err, &de)
	p.part.close(err == nil || bad)
	if err == nil && p.part == nil && p.opts.Partial != "" {
		removeIfFree(p.opts.Partial) // a file:// download leaves no stale partial behind
	}
	return err
}

func (p *producer) download() error {
	if p.part != nil {
		if err := p.replay(); err != nil {
			return err
		}
	}
	if p.offset < p.src.Size {
		if err := p.fetchRest(); err != nil {
			return err
		}
	}
	if sum := hex.EncodeToString(p.h.Sum(nil)); sum != p.src.SHA256 {
		return &DigestError{URL: p.name, Expected: p.src.SHA256, Actual: sum}
	}
	return nil
}

// fetchRest runs attempts until the body is complete, retrying transient
// failures. An attempt that delivered new bytes resets the failure count,
// so a long download over a flaky link still finishes.
func (p *producer) fetchRest() error {
	failures := 0
	for {
		before := p.offset
		err := p.attempt()
		if err == nil {
			return nil
		}
		if p.ctx.Err() != nil {
			return fmt.Errorf("downloading %s: %w", p.name, context.Cause(p.ctx))
		}
		if !transient(err) {
			return err
		}
		if p.offset > before {
			failures = 0
		}
		failures++
		if failures > p.opts.Retries {
			return &retryError{name: p.name, attempts: failures, last: err}
		}
		d := backoff(p.opts.Backoff, failures)
		if st := (*StatusError)(nil); errors.As(err, &st) && st.RetryAfter > d {
			d = min(st.RetryAfter, maxRetryAfter) // the server said when
		}
		if p.offset > 0 {
			p.opts.Logf("downloading %s: %s at %s; resuming in %s (retry %d of %d)",
				p.name, describe(err), progress.FormatBytes(p.offset), d.Round(time.Millisecond), failures, p.opts.Retries)
		} else {
			p.opts.Logf("downloading %s: %s; retrying in %s (retry %d of %d)",
				p.name, describe(err), d.Round(time.Millisecond), failures, p.opts.Retries)
		}
		if err := sleep(p.ctx, d); err != nil {
			return fmt.Errorf("downloading %s: %w", p.name, err)
		}
	}
}

// backoff is base*2^(n-1), capped, with equal jitter.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// chunk returns the chunk being filled, waiting for the reader to free
// one if needed. The stall timer is paused meanwhile: a slow consumer is
// not a stalled server.
func (p *producer) chunk() (*chunk, error) {
	if p.cur != nil {
		return p.cur, nil
	}
	if p.timer != nil {
		p.timer.Stop()
	}
	select {
	case c := <-p.free:
		c.n, c.saved = 0, 0
		p.cur = c
	case <-p.ctx.Done():
		return nil, context.Cause(p.ctx)
	}
	if p.timer != nil {
		p.timer.Reset(p.opts.Stall)
	}
	return p.cur, nil
}

// deliver accounts for m new bytes at the end of the current chunk.
func (p *producer) deliver(m int) {
	c := p.cur
	data := c.buf[c.n : c.n+m]
	p.h.Write(data)
	if p.opts.Progress != nil {
		_, _ = p.opts.Progress.Write(data) // a progress display cannot fail a download
	}
	c.n += m
	p.offset += int64(m)
	if c.n == len(c.buf) {
		p.send()
	}
}

// send hands the current chunk to the reader. It never blocks: the full
// queue has room for every chunk there is.
func (p *producer) send() {
	c := p.cur
	p.cur = nil
	p.part.write(c)
	p.full <- c
}
