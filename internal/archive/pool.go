package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Creating a file costs far more than writing a small one (about a
// millisecond on a virtualized ext4), so files up to smallFile bytes are
// read into memory by the tar loop and created, hashed, written and closed
// by a pool of writers, several at a time. Larger files are streamed by the
// tar loop itself. At most numWriters+2 small files are held in memory.
const (
	smallFile  = 1 << 20
	numWriters = 8
)

// job is one small file for the writers.
type job struct {
	dir  *os.Root // the file's directory
	base string   // the name within dir
	perm fs.FileMode
	data []byte
	f    *File // Path and Mode are set; the writer fills in Size and SHA256
	// flush, when set, makes the job "flush and close this large file,
	// already written" instead of writing data.
	flush *os.File
}

type writers struct {
	ctx  context.Context
	jobs chan *job
	free chan []byte // buffers for data, grown on demand
	wg   sync.WaitGroup

	mu  sync.Mutex
	err error
}

func startWriters(ctx context.Context) *writers {
	w := &writers{ctx: ctx, jobs: make(chan *job), free: make(chan []byte, numWriters+2)}
	for range cap(w.free) {
		w.free <- nil
	}
	w.wg.Add(numWriters)
	for range numWriters {
		go w.run()
	}
	return w
}

// buffer returns a buffer of n bytes, waiting while all are in use.
func (w *writers) buffer(n int) []byte {
	b := <-w.free
	if cap(b) < n {
		b = make([]byte, n, max(n, 64<<10))
	}
	return b[:n]
}

func (w *writers) submit(j *job) { w.jobs <- j }

// failed returns the first error a writer met, if any.
func (w *writers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait stops the writers once their jobs are done and returns the first
// error one met. Nothing is written to the directory after it returns.
func (w *writers) wait() error {
	close(w.jobs)
	w.wg.Wait()
	return w.failed()
}

func (w *writers) run() {
	defer w.wg.Done()
	for j := range w.jobs {
		if w.failed() == nil {
			if err := w.write(j); err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
			}
		} else if j.flush != nil {
			j.flush.Close()
		}
		if j.flush == nil {
			w.free <- j.data // flush jobs took no buffer
		}
	}
}

func (w *writers) write(j *job) error {
	if j.flush != nil {
		return flushClose(j.flush, j.f.Path)
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	f, err := j.dir.OpenFile(j.base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating %q: %w", j.f.Path, err)
	}
	sum := sha256.Sum256(j.data)
	if _, err := f.Write(j.data); err != nil {
		f.Close()
		return fmt.Errorf("writing %q: %w", j.f.Path, err)
	}
	if err := f.Chmod(j.perm); err != nil {
		f.Close()
		return fmt.Errorf("setting mode of %q: %w", j.f.Path, err)
	}
	if err := flushClose(f, j.f.Path); err != nil {
		return err
	}
	j.f.Size = int64(len(j.data))
	j.f.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// flushClose puts f's data on stable storage and closes it. Files are
// flushed by the writers, several at once, so the file system can commit
// them together while the tar loop reads on.
func flushClose(f *os.File, name string) error {
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		f.Close()
		return fmt.Errorf("flushing %q to disk: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", name, err)
	}
	return nil
}
