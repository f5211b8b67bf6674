package archive

import (
	"errors"
	"strings"
)

const (
	maxHops  = 40   // symlinks followed in one resolution, as Linux's MAXSYMLINKS
	maxSteps = 8192 // path components walked in one resolution
)

var (
	errEscapes = errors.New("leaves the archive")
	errLoop    = errors.New("too many levels of symlinks")
)

// checkSymlink resolves the symlink link (a cleaned archive path) the way
// the kernel would, from the link's own directory and through the other
// symlinks in links, and reports whether it stays inside the archive root.
// Components that name no symlink are taken as directories, whether or not
// the archive holds them.
func checkSymlink(links map[string]string, link string) error {
	cur := "" // resolved directory, slash-separated, "" is the root
	if i := strings.LastIndexByte(link, '/'); i >= 0 {
		cur = link[:i]
	}
	pending := links[link]
	hops, steps := 1, 0
	for pending != "" {
		if steps++; steps > maxSteps {
			return errLoop
		}
		c, rest, _ := strings.Cut(pending, "/")
		pending = rest
		switch c {
		case "", ".":
			continue
		case "..":
			if cur == "" {
				return errEscapes
			}
			cur = cur[:max(strings.LastIndexByte(cur, '/'), 0)]
			continue
		}
		next := c
		if cur != "" {
			next = cur + "/" + c
		}
		target, ok := links[next]
		if !ok {
			cur = next
			continue
		}
		if hops++; hops > maxHops {
			return errLoop
		}
		if strings.HasPrefix(target, "/") {
			return errEscapes
		}
		if pending != "" {
			target += "/" + pending
		}
		pending = target
	}
	return nil
}
