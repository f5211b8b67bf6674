package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"io/fs"
	"sync"

	"golang.org/x/sys/unix"
)

// Files up to smallFile bytes are read into memory by the tar loop and
// created, hashed, written and closed by a pool of writers while the tar
// loop reads on. Larger files are streamed by the tar loop itself. At most
// numBuffers small files are held in memory.
//
// Each directory's files go to one writer, in order: creating a file locks
// its directory, and writers creating files in the same directory at once
// only spin on that lock in the kernel, burning the CPU the tar loop needs
// (a quarter of the CPU time on a 2-CPU machine, measured with perf).
// Writers work in parallel on different directories and on hashing.
const (
	smallFile  = 1 << 20
	numWriters = 4
	numBuffers = 16
)

// job is one small file for the writers.
type job struct {
	dir     int  // descriptor of the file's directory
	ownsDir bool // the writer closes dir when done
	base    string
	perm    fs.FileMode
	umask   fs.FileMode
	data    []byte
	f       *File // Path and Mode are set; the writer fills in Size and SHA256
}

type writers struct {
	ctx    context.Context
	queues [numWriters]chan *job
	seed   maphash.Seed
	free   chan []byte // buffers for data, grown on demand
	wb     *writeback
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error
}

func startWriters(ctx context.Context, wb *writeback) *writers {
	w := &writers{ctx: ctx, seed: maphash.MakeSeed(), free: make(chan []byte, numBuffers), wb: wb}
	for range cap(w.free) {
		w.free <- nil
	}
	w.wg.Add(numWriters)
	for i := range w.queues {
		w.queues[i] = make(chan *job, numBuffers)
		go w.run(w.queues[i])
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

// submit queues j to the writer of directory dir.
func (w *writers) submit(j *job, dir string) {
	w.queues[maphash.String(w.seed, dir)%numWriters] <- j
}

// failed returns the first error a writer met, if any.
func (w *writers) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait stops the writers once their jobs are done and returns the first
// error one met. Nothing is written to the directory after it returns.
func (w *writers) wait() error {
	for _, q := range w.queues {
		close(q)
	}
	w.wg.Wait()
	return w.failed()
}

func (w *writers) run(jobs <-chan *job) {
	defer w.wg.Done()
	for j := range jobs {
		if w.failed() == nil {
			if err := w.write(j); err != nil {
				w.mu.Lock()
				if w.err == nil {
					w.err = err
				}
				w.mu.Unlock()
			}
		}
		if j.ownsDir {
			_ = unix.Close(j.dir)
		}
		w.free <- j.data
	}
}

// write creates the file, writes and hashes it from the one buffer the tar
// loop filled, and closes it: three system calls, as tar -x makes (it
// also sets owner, times and mode, which a bundle does not keep), plus a
// chmod when the umask takes bits from the mode. Its write-back is started
// in bulk (see writeback).
func (w *writers) write(j *job) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	fd, err := createFile(j.dir, j.base, j.perm, j.umask)
	if err != nil {
		return fmt.Errorf("creating %q: %w", j.f.Path, err)
	}
	sum := sha256.Sum256(j.data)
	err = writeFull(fd, j.data)
	if cerr := unix.Close(fd); err == nil && cerr != unix.EINTR {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q: %w", j.f.Path, err)
	}
	w.wb.wrote(int64(len(j.data)))
	j.f.Size = int64(len(j.data))
	j.f.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// createFile creates base in directory dir with mode perm, which the
// umask (passed in) does not change.
func createFile(dir int, base string, perm, umask fs.FileMode) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dir, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm))
		return err
	})
	if err != nil {
		return -1, err
	}
	if perm&umask != 0 {
		if err := fchmod(fd, perm); err != nil {
			_ = unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// writeFull writes all of b to fd.
func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b = b[n:]
	}
	return nil
}
