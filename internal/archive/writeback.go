package archive

import (
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The extractor does not flush what it writes: its caller puts the whole
// tree on stable storage at once, with one syncfs, before renaming it
// into place (kernelstore does, through stagedir.FS). To leave that flush
// little to do, the extractor starts write-back early, without waiting
// for it:
//
//   - a large file every syncEvery bytes as it streams, and its tail when
//     it is closed, with sync_file_range;
//   - small files in bulk: once wbEvery bytes of them were written, one
//     syncfs in the background (one at a time) writes back everything
//     dirty on the file system, while the tar loop and the writers go on.
//
// The alternatives, measured pulling a bundle of a 16 MiB vmlinux and
// 6,260 source files (150 MiB, 409 directories) from 127.0.0.1 on a
// 2-CPU VM with a virtio disk, alternating, medians of 5 (load 2 to 3),
// next to `curl | tee >(sha256sum) | zstd -dc | tar -x` at 1.19 s and
// the same followed by `sync -f` at 1.41 s:
//
//   - an fdatasync per file, as the extractor did: 3.13 s (in another
//     run, where the pipeline took 1.00 s, and 1.32 s with sync -f);
//   - a sync_file_range per small file, then one syncfs: 1.61 s; each
//     call costs about 50 µs of CPU, which tar -x does not pay;
//   - no early write-back, one syncfs at the end: 1.32 s;
//   - the background syncfs kicks, then one syncfs: 1.35 s.
//
// With the download throttled to 10 MB/s (pipeline 2.75 s, with sync -f
// 3.16 s), where writing could overlap downloading: 4.17 s with an
// fdatasync per file, 3.06 s with the syncfs at the end only, 2.93 s with
// a sync_file_range per file, 2.81 s with the kicks (medians of 4). The kicks are as cheap as no early write-back when the
// CPU is the limit, and hide the writes when the network is. Their cost:
// each kick, like the final flush and `sync -f`, also writes back other
// programs' dirty data on that file system; they never make the
// extraction wait for it.
const wbEvery = 32 << 20

// writeback starts the write-back of small files in bulk.
type writeback struct {
	fd      int          // any descriptor on the file system: the destination's
	pending atomic.Int64 // bytes written since the last kick
	running atomic.Bool
	wg      sync.WaitGroup
}

// wrote counts n bytes written to a small file and starts a background
// write-back once wbEvery bytes are pending and none is running.
func (b *writeback) wrote(n int64) {
	if b.pending.Add(n) < wbEvery || !b.running.CompareAndSwap(false, true) {
		return
	}
	b.pending.Store(0)
	b.wg.Go(func() {
		// Errors are the final flush's to report: it waits for the same
		// writes, and reports every write-back error since its caller
		// opened the file system.
		_ = ignoringEINTR(func() error { return unix.Syncfs(b.fd) })
		b.running.Store(false)
	})
}

// wait waits for a running write-back, so the destination's descriptor
// can be closed.
func (b *writeback) wait() { b.wg.Wait() }

// closeLarge starts write-back of bytes [from, to) of the large file fd,
// the part not yet started while it streamed, and closes it.
func closeLarge(fd int, name string, from, to int64) error {
	if to > from {
		// Only a hint to the kernel: the final flush reports errors.
		_ = unix.SyncFileRange(fd, from, to-from, unix.SYNC_FILE_RANGE_WRITE)
	}
	if err := unix.Close(fd); err != nil && err != unix.EINTR {
		return fmt.Errorf("writing %q: %w", name, err)
	}
	return nil
}
