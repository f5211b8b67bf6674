package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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

// stream copies body into the file fd, hashing it on the way, and returns
// the size, the sha256 in hex and the offset up to which write-back was
// started. ctx is checked between chunks. Errors reading body are returned
// as they are.
func (x *extractor) stream(name string, fd int, body io.Reader) (int64, string, int64, error) {
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
		wg      sync.WaitGroup
		failed  atomic.Bool
		werr    error
		started int64 // write-back was started up to here
	)
	wg.Go(func() {
		for c := range hashq {
			hash.Write(c.b)
			release(c)
		}
	})
	wg.Go(func() {
		// Start write-back every syncEvery bytes without waiting for it,
		// so the final flush has little left to do.
		var written int64
		for c := range writeq {
			if werr == nil {
				if werr = writeFull(fd, c.b); werr != nil {
					failed.Store(true)
				}
				written += int64(len(c.b))
				if written-started >= syncEvery {
					_ = unix.SyncFileRange(fd, started, written-started, unix.SYNC_FILE_RANGE_WRITE)
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
		return 0, "", 0, err
	}
	return size, hex.EncodeToString(hash.Sum(nil)), started, nil
}
