package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/thaloco/banger/internal/progress"
)

var errStalled = errors.New("stalled")

// attempt makes one request and copies its body until the file is
// complete or the attempt fails.
func (p *producer) attempt() error {
	actx, cancel := context.WithCancelCause(p.ctx)
	defer cancel(nil)
	p.timer = time.AfterFunc(p.opts.Stall, func() { cancel(errStalled) })
	defer func() {
		p.timer.Stop()
		p.timer = nil
	}()
	err := p.pumpFrom(actx)
	if err != nil && p.ctx.Err() == nil && errors.Is(context.Cause(actx), errStalled) {
		return fmt.Errorf("no data received for %s", p.opts.Stall)
	}
	return err
}

func (p *producer) pumpFrom(ctx context.Context) error {
	body, start, err := p.s.open(ctx, p.offset)
	if err != nil {
		return err
	}
	defer body.Close()
	if start < p.offset {
		p.opts.Logf("downloading %s: the server sent the whole file again; skipping the %s already received",
			p.name, progress.FormatBytes(p.offset))
	}
	return p.pump(body, start)
}

// pump copies body, which starts at byte start of the file, into chunks:
// it drops the bytes before p.offset, delivers the rest and fails as soon
// as the body runs past the expected size.
func (p *producer) pump(body io.Reader, start int64) error {
	pos := start // file position of the body's next byte
	for {
		if pos == p.src.Size {
			return p.probeEnd(body)
		}
		c, err := p.chunk()
		if err != nil {
			return err
		}
		want := min(int64(len(c.buf)-c.n), p.src.Size-pos)
		n, rerr := body.Read(c.buf[c.n : c.n+int(want)])
		if n > 0 {
			p.timer.Reset(p.opts.Stall)
			pos += int64(n)
			m := n
			if skip := p.offset - (pos - int64(n)); skip > 0 {
				d := int(min(skip, int64(n)))
				copy(c.buf[c.n:], c.buf[c.n+d:c.n+n])
				m -= d
			}
			if m > 0 {
				p.deliver(m)
			}
			if p.cur != nil && p.cur.n > 0 && len(p.full) == 0 {
				// The reader is waiting: hand over what is there rather
				// than let it idle until the chunk fills.
				p.send()
			}
		}
		switch {
		case rerr == io.EOF && pos == p.src.Size:
			return nil
		case rerr == io.EOF:
			return &SizeError{URL: p.name, Expected: p.src.Size, Actual: pos}
		case rerr != nil:
			return rerr
		}
	}
}

// probeEnd checks that a body that delivered every expected byte has
// nothing more to say.
func (p *producer) probeEnd(body io.Reader) error {
	for range 100 {
		n, err := body.Read(p.probe[:])
		if n > 0 {
			return &SizeError{URL: p.name, Expected: p.src.Size, Actual: p.src.Size + int64(n)}
		}
		if err != nil {
			// io.EOF, or a fault after the last byte: the digest decides.
			return nil
		}
	}
	return nil
}
