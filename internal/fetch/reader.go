package fetch

import (
	"context"
	"errors"
	"io"
	"sync"
)

// The download goroutine runs ahead of the reader by at most
// numChunks*chunkSize bytes, so network, hashing and the consumer's work
// overlap without unbounded buffering. The chunks are allocated once.
const (
	chunkSize = 256 << 10
	numChunks = 8
)

type chunk struct {
	buf   []byte
	n     int // valid bytes in buf
	saved int // bytes of buf[:n] already appended to the partial file
}

var errClosed = errors.New("download closed")

// reader is the consumer's end: it hands out the chunks the producer
// filled and returns them to the free list once read.
type reader struct {
	full   <-chan *chunk
	free   chan<- *chunk
	cancel context.CancelCauseFunc
	done   <-chan struct{}
	result *error // written by the producer before it closes full

	cur  *chunk
	off  int
	err  error
	once sync.Once
}

// next makes r.cur a chunk with unread bytes, or returns the final error.
func (r *reader) next() error {
	for r.cur == nil {
		if r.err != nil {
			return r.err
		}
		c, ok := <-r.full
		if !ok {
			r.err = *r.result
			if r.err == nil {
				r.err = io.EOF
			}
			return r.err
		}
		if c.n == 0 {
			r.free <- c
			continue
		}
		r.cur, r.off = c, 0
	}
	return nil
}

// consumed advances past n bytes of r.cur, recycling it when done.
func (r *reader) consumed(n int) {
	r.off += n
	if r.off == r.cur.n {
		r.free <- r.cur // never blocks: free has room for every chunk
		r.cur = nil
	}
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := r.next(); err != nil {
		return 0, err
	}
	n := copy(p, r.cur.buf[r.off:r.cur.n])
	r.consumed(n)
	return n, nil
}

// WriteTo lets io.Copy write whole chunks without an extra copy.
func (r *reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if err := r.next(); err != nil {
			if errors.Is(err, io.EOF) {
				return total, nil
			}
			return total, err
		}
		b := r.cur.buf[r.off:r.cur.n]
		n, err := w.Write(b)
		if n < 0 || n > len(b) {
			n = 0
		}
		if err == nil && n < len(b) {
			err = io.ErrShortWrite
		}
		total += int64(n)
		r.consumed(n)
		if err != nil {
			return total, err
		}
	}
}

// Close stops the download and waits for its goroutine to finish, so the
// partial file is complete and closed when Close returns.
func (r *reader) Close() error {
	r.once.Do(func() {
		r.cancel(errClosed)
		<-r.done
	})
	return nil
}
