// Package logtail quotes the end of a log or of a command's output in an
// error message: the last few non-empty lines, terminal control sequences
// removed.
package logtail

import (
	"io"
	"os"
	"regexp"
	"strings"
)

var ansiRE = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]`)

// Lines returns the last n non-empty lines of s, with ANSI escape
// sequences and other control characters removed and spaces trimmed.
func Lines(s string, n int) []string {
	var lines []string
	for _, l := range strings.Split(ansiRE.ReplaceAllString(s, ""), "\n") {
		l = strings.TrimSpace(strings.Map(func(r rune) rune {
			if r < ' ' && r != '\t' || r == 0x7f {
				return -1
			}
			return r
		}, l))
		if l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// Quote is Lines joined with "; ", for one-line errors.
func Quote(s string, n int) string { return strings.Join(Lines(s, n), "; ") }

// ReadFrom returns what file holds after offset, at most the last max
// bytes of it; "" if it cannot be read.
func ReadFrom(file string, offset, max int64) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() <= offset {
		return ""
	}
	if st.Size()-offset > max {
		offset = st.Size() - max
	}
	data, _ := io.ReadAll(io.NewSectionReader(f, offset, st.Size()-offset))
	return string(data)
}

// File returns the last n lines file holds after offset (reading at most
// its last 64 KiB).
func File(file string, offset int64, n int) []string {
	return Lines(ReadFrom(file, offset, 64<<10), n)
}
