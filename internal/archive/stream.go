package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// A large file is streamed in chunks: the tar loop fills a chunk while two
// goroutines hash and write the previous ones, so decompression, hashing
// and writing overlap. Up to numChunks chunks are in flight.
const (
	chunkSize = 1 << 20
	numChunks = 4
	syncEvery = 8 << 20 // bytes between write-back starts
)

type chunk struct {
	b    []byte
	refs atomic.Int32
}

// stream copies body into out, hashing it on the way, and returns the size
// and the sha256 in hex. ctx is checked between chunks. Errors reading body
// are returned as they are.
func (x *extractor) stream(name string, out *os.File, body io.Reader) (int64, string, error) {
	if x.chunks == nil {
		x.chunks = make(chan *chunk, numChunks)
		for range numChunks {
			x.chunks <- &chunk{b: make([]byte, chunkSize)}
		}
	}
	release := func(c *chunk) {
		if c.refs.Add(-1) == 0 {
			x.chunks <- c
		}
	}
	hashq := make(chan *chunk, numChunks)
	writeq := make(chan *chunk, numChunks)
	hash := sha256.New()
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		werr   error
	)
	wg.Go(func() {
		for c := range hashq {
			hash.Write(c.b)
			release(c)
		}
	})
	wg.Go(func() {
		// Start write-back every syncEvery bytes without waiting for it,
		// so the final flush of the file has little left to do.
		var written, started int64
		for c := range writeq {
			if werr == nil {
				if _, werr = out.Write(c.b); werr != nil {
					failed.Store(true)
				}
				written += int64(len(c.b))
				if written-started >= syncEvery {
					_ = unix.SyncFileRange(int(out.Fd()), started, written-started, unix.SYNC_FILE_RANGE_WRITE)
					started = written
				}
			}
			release(c)
		}
	})

	var size int64
	var err error
	for !failed.Load() {
		if err = x.ctx.Err(); err != nil {
			break
		}
		c := <-x.chunks
		n, rerr := fill(body, c.b[:chunkSize])
		if n == 0 {
			x.chunks <- c
		} else {
			c.b = c.b[:n]
			c.refs.Store(2)
			hashq <- c
			writeq <- c
			size += int64(n)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			err = rerr
			break
		}
	}
	close(hashq)
	close(writeq)
	wg.Wait()
	if err == nil && werr != nil {
		err = fmt.Errorf("writing %q: %w", name, werr)
	}
	if err != nil {
		return 0, "", err
	}
	return size, hex.EncodeToString(hash.Sum(nil)), nil
}
