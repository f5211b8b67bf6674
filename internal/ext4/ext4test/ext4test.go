// Package ext4test reads ext4 images with the real e2fsprogs tools
// (debugfs, e2fsck) so tests can check what an image holds.
package ext4test

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Inode is what debugfs reports about one path in an image.
type Inode struct {
	Type       string // "regular", "directory", "symlink", "character special", "FIFO", ...
	Mode       uint32 // permission and setuid/setgid/sticky bits
	UID, GID   int
	Size       int64
	Links      int
	Ino        int
	LinkTarget string            // symlinks only
	Xattrs     map[string]string // name → debugfs's rendering of the value
	Device     string            // "major:minor" (hex) for device nodes
}

func debugfs(t testing.TB, img, req string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), "debugfs", "-R", req, img)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("debugfs -R %q %s: %v: %s", req, img, err, e.String())
	}
	return o.String(), e.String()
}

// Stat returns the inode at path in img, and false if there is none.
func Stat(t testing.TB, img, path string) (Inode, bool) {
	t.Helper()
	out, _ := debugfs(t, img, "stat "+quote(path))
	if !strings.HasPrefix(out, "Inode:") {
		return Inode{}, false // not found, or a parent is not a directory
	}
	var in Inode
	in.Xattrs = map[string]string{}
	inXattrs := false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Inode:"):
			in.Ino = atoi(field(f, "Inode:"))
			typ := line[strings.Index(line, "Type:")+5 : strings.Index(line, "Mode:")]
			in.Type = strings.TrimSpace(typ)
			m, _ := strconv.ParseUint(field(f, "Mode:"), 8, 32)
			in.Mode = uint32(m)
		case strings.HasPrefix(line, "User:"):
			in.UID, in.GID = atoi(field(f, "User:")), atoi(field(f, "Group:"))
			in.Size = int64(atoi(field(f, "Size:")))
		case strings.HasPrefix(line, "Links:"):
			in.Links = atoi(field(f, "Links:"))
		case strings.HasPrefix(line, "Fast link dest:"):
			in.LinkTarget, _ = strconv.Unquote(strings.TrimSpace(strings.TrimPrefix(line, "Fast link dest:")))
		case strings.HasPrefix(line, "Device major/minor number:"):
			in.Device = f[3]
		case strings.HasPrefix(line, "Extended attributes:"):
			inXattrs = true
		case inXattrs && strings.HasPrefix(line, "  "):
			name, val, _ := strings.Cut(strings.TrimSpace(line), " = ")
			if i := strings.Index(name, " ("); i >= 0 {
				name = name[:i]
			}
			in.Xattrs[name] = val
		default:
			inXattrs = false
		}
	}
	if in.Type == "symlink" && in.LinkTarget == "" {
		in.LinkTarget = string(Cat(t, img, path))
	}
	return in, true
}

// Cat returns the content of path in img.
func Cat(t testing.TB, img, path string) []byte {
	t.Helper()
	out, errOut := debugfs(t, img, "cat "+quote(path))
	if strings.Contains(errOut, "File not found") {
		t.Fatalf("%s: no %s in the image", img, path)
	}
	return []byte(out)
}

// Ls lists the names in the directory path of img (without . and ..).
func Ls(t testing.TB, img, path string) []string {
	t.Helper()
	out, errOut := debugfs(t, img, "ls -p "+quote(path))
	if strings.Contains(errOut, "File not found") {
		t.Fatalf("%s: no %s in the image", img, path)
	}
	var names []string
	for _, line := range strings.Split(out, "\n") {
		// /ino/mode/uid/gid/name/size/
		parts := strings.Split(line, "/")
		if len(parts) < 7 || parts[5] == "." || parts[5] == ".." {
			continue
		}
		names = append(names, parts[5])
	}
	return names
}

// Fsck runs e2fsck -fn on img and fails the test unless it is clean.
func Fsck(t testing.TB, img string) {
	t.Helper()
	out, err := exec.CommandContext(context.Background(), "e2fsck", "-fn", img).CombinedOutput()
	if err != nil {
		t.Fatalf("e2fsck -fn %s: %v\n%s", img, err, out)
	}
}

func quote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `""`) + `"` }

func field(f []string, key string) string {
	for i := range f {
		if f[i] == key && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }
