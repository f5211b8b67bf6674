package fetch

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/thaloco/banger/internal/progress"
	"golang.org/x/sys/unix"
)

// partial is the file that keeps received bytes for a later run. Its
// content is always a prefix of the stream: once a write fails it is
// left alone for the rest of the run. The download holds an exclusive
// flock on it until close, so PruneStale and other downloads of the same
// file leave it alone.
type partial struct {
	f      *os.File
	path   string
	size   int64 // bytes found at open
	broken bool
	logf   func(string, ...any)
}

// errPartialBusy: another download holds the partial file.
var errPartialBusy = errors.New("partial download in use by another process")

func openPartial(path string, max int64, logf func(string, ...any)) (*partial, error) {
	// PruneStale may remove the file between the open and the flock; the
	// second try creates a new one.
	for range 3 {
		p, err := tryOpenPartial(path, max, logf)
		if p != nil || err != nil {
			return p, err
		}
	}
	return nil, fmt.Errorf("opening partial download %s: it was removed while being opened, three times", path)
}

// tryOpenPartial returns nil, nil when the file it locked had been removed.
func tryOpenPartial(path string, max int64, logf func(string, ...any)) (*partial, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening partial download: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errPartialBusy
		}
		return nil, fmt.Errorf("locking partial download %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
			f.Close()
			return nil, nil
		}
	}
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil && fi.Size() > max {
		logf("discarding partial download %s: %s is longer than expected", path, progress.FormatBytes(fi.Size()))
		err = f.Truncate(0)
		fi = nil
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening partial download: %w", err)
	}
	p := &partial{f: f, path: path, logf: logf}
	if fi != nil {
		p.size = fi.Size()
	}
	return p, nil
}

// replay delivers the bytes already in the partial file.
func (p *producer) replay() error {
	part := p.part
	for p.offset < part.size {
		c, err := p.chunk()
		if err != nil {
			return err
		}
		want := min(int64(len(c.buf)-c.n), part.size-p.offset)
		n, err := io.ReadFull(part.f, c.buf[c.n:c.n+int(want)])
		if n > 0 {
			c.saved = c.n + n
			p.deliver(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break // shrank since we looked: resume from what is there
		}
		if err != nil {
			return fmt.Errorf("reading partial download %s: %w", part.path, err)
		}
	}
	if err := part.f.Truncate(p.offset); err != nil {
		return fmt.Errorf("truncating partial download %s: %w", part.path, err)
	}
	if _, err := part.f.Seek(p.offset, io.SeekStart); err != nil {
		return fmt.Errorf("seeking partial download %s: %w", part.path, err)
	}
	if p.offset > 0 {
		p.opts.Logf("downloading %s: resuming after the %s kept in %s", p.name, progress.FormatBytes(p.offset), part.path)
	}
	return nil
}

// write appends the chunk's bytes not yet saved.
func (p *partial) write(c *chunk) {
	if p == nil || p.broken || c.saved >= c.n {
		return
	}
	_, err := p.f.Write(c.buf[c.saved:c.n])
	c.saved = c.n
	if err != nil {
		p.broken = true
		p.logf("partial download %s: %v (a later run resumes from an earlier point)", p.path, err)
	}
}

// close closes the file and, when the download is finished (either
// verified or proven bad), removes it.
func (p *partial) close(remove bool) {
	if p == nil {
		return
	}
	if remove {
		// Under the lock, so nobody starts resuming from it meanwhile.
		os.Remove(p.path)
	}
	p.f.Close()
}
