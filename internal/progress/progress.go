// Package progress reports the progress of long transfers: a redrawn bar
// (bytes, rate, ETA) on a terminal, a few plain lines otherwise.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Bar tracks one transfer of a known (or unknown, total <= 0) size. It is
// an io.Writer so it can sit behind an io.TeeReader. A nil *Bar is valid
// and reports nothing.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	label    string
	total    int64
	done     int64
	start    time.Time
	lastDraw time.Time
	now      func() time.Time
	finished bool
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts a bar labelled label writing to w. On a terminal it redraws
// one line at most ten times a second; otherwise it prints one line at the
// start and one at the end.
func New(w io.Writer, label string, total int64) *Bar {
	b := &Bar{w: w, tty: IsTerminal(w), label: label, total: total, now: time.Now}
	b.start = b.now()
	if !b.tty {
		if total > 0 {
			fmt.Fprintf(w, "%s: %s\n", label, FormatBytes(total))
		} else {
			fmt.Fprintf(w, "%s\n", label)
		}
	}
	return b
}

// Add records n more bytes done.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.tty && b.now().Sub(b.lastDraw) >= 100*time.Millisecond {
		b.draw()
	}
}

// Write implements io.Writer by counting len(p).
func (b *Bar) Write(p []byte) (int, error) {
	b.Add(int64(len(p)))
	return len(p), nil
}

// Finish prints the final state; err == nil means success.
func (b *Bar) Finish(err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	elapsed := b.now().Sub(b.start)
	if b.tty {
		b.draw()
		fmt.Fprintln(b.w)
	}
	if err != nil {
		if !b.tty {
			fmt.Fprintf(b.w, "%s: failed after %s\n", b.label, FormatBytes(b.done))
		}
		return
	}
	if !b.tty {
		fmt.Fprintf(b.w, "%s: done, %s in %s (%s/s)\n", b.label, FormatBytes(b.done), elapsed.Round(time.Millisecond), FormatBytes(rate(b.done, elapsed)))
	}
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

func (b *Bar) draw() {
	b.lastDraw = b.now()
	elapsed := b.lastDraw.Sub(b.start)
	r := rate(b.done, elapsed)
	var line string
	if b.total > 0 {
		frac := min(float64(b.done)/float64(b.total), 1)
		const width = 30
		fill := int(frac * width)
		eta := "--"
		if r > 0 && b.done < b.total {
			eta = (time.Duration(float64(b.total-b.done)/float64(r)) * time.Second).Round(time.Second).String()
		} else if b.done >= b.total {
			eta = "0s"
		}
		line = fmt.Sprintf("%s [%s%s] %3.0f%% %s/%s %s/s ETA %s", b.label, strings.Repeat("=", fill), strings.Repeat(" ", width-fill),
			frac*100, FormatBytes(b.done), FormatBytes(b.total), FormatBytes(r), eta)
	} else {
		line = fmt.Sprintf("%s %s %s/s", b.label, FormatBytes(b.done), FormatBytes(r))
	}
	fmt.Fprintf(b.w, "\r\x1b[K%s", line)
}

// FormatBytes formats n in binary units: 512 B, 1.5 KiB, 14.2 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
