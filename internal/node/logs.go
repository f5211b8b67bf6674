package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	"github.com/virtual-kubelet/virtual-kubelet/node/api"

	"github.com/thaloco/banger/internal/guest"
)

// GetContainerLogs is the main process's output: of its current run, or
// with Previous of the run before (kept when the process was restarted).
// It is read in the guest while the VM runs, from the copies taken when
// the pod ended after. Tail, LimitBytes and Follow are honoured;
// Timestamps is not (the log does not record when lines were written).
func (p *pods) GetContainerLogs(ctx context.Context, ns, name, ctr string, opts api.ContainerLogOpts) (io.ReadCloser, error) {
	r, err := p.lookup(ns, name)
	if err != nil {
		return nil, err
	}
	v, err := p.store.Get(r.vm)
	if err != nil {
		return nil, err
	}
	file := mainLog
	if opts.Previous {
		file = previousLog
	}
	if v.SSHAddr() == "" || opts.Previous {
		var data []byte
		if v.SSHAddr() == "" {
			data, err = os.ReadFile(filepath.Join(v.Dir, file))
		} else {
			data, err = p.readGuestFile(ctx, r.vm, file)
		}
		if errors.Is(err, fs.ErrNotExist) && opts.Previous {
			return nil, errdefs.InvalidInputf("previous terminated container %q in pod %q not found", ctr, name)
		}
		if err != nil {
			return nil, fmt.Errorf("reading the log of pod %s/%s: %w", ns, name, err)
		}
		return limitBytes(io.NopCloser(bytes.NewReader(lastLines(data, opts.Tail))), opts.LimitBytes), nil
	}
	c, err := p.connect(ctx, r.vm)
	if err != nil {
		return nil, err
	}
	cmd := "tail -n +1"
	if opts.Tail > 0 {
		cmd = "tail -n " + strconv.Itoa(opts.Tail)
	}
	if opts.Follow {
		// By name: a restart moves the log to previous.log, and the
		// next run's is a new file, shown from its start.
		cmd += " -F"
	}
	cmd += " " + guestPodDir + "/" + file
	// Closing the stream (the client went away, or LimitBytes was
	// reached) ends the guest's tail too.
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		defer func() { _ = c.Close() }()
		_, err := guest.Run(ctx, c, cmd, nil, pw, io.Discard)
		pw.CloseWithError(err)
	}()
	return limitBytes(readCloser{pr, func() error { cancel(); return pr.Close() }}, opts.LimitBytes), nil
}

// readGuestFile reads file of the guest's pod directory in VM name; an
// error wraps fs.ErrNotExist when the file is not there.
func (p *pods) readGuestFile(ctx context.Context, name, file string) ([]byte, error) {
	c, err := p.connect(ctx, name)
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.Close() }()
	var out, errb bytes.Buffer
	path := guestPodDir + "/" + file
	code, err := guest.Run(ctx, c, "test -e "+path+" || exit 3; cat "+path, nil, &out, &errb)
	switch {
	case err != nil:
		return nil, err
	case code == 3:
		return nil, fmt.Errorf("%s in the guest: %w", path, fs.ErrNotExist)
	case code != 0:
		return nil, fmt.Errorf("reading %s in the guest: exit status %d: %s", path, code, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// lastLines is the last n lines of data (all of it when n is 0).
func lastLines(data []byte, n int) []byte {
	if n <= 0 {
		return data
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end-- // the last line's newline does not start another line
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			if n--; n == 0 {
				return data[i+1:]
			}
		}
	}
	return data
}

// limitBytes ends rc after n bytes (n 0: no limit).
func limitBytes(rc io.ReadCloser, n int) io.ReadCloser {
	if n <= 0 {
		return rc
	}
	return readCloser{io.LimitReader(rc, int64(n)), rc.Close}
}

// readCloser is a reader with its own Close.
type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
