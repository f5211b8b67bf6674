package imagebuild

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/thaloco/banger/internal/ext4"
)

// fixup is what an unprivileged build cannot give an entry in the tree:
// an owner other than root, a device node, a privileged xattr. It is
// applied to the ext4 image with debugfs after mkfs.ext4.
type fixup struct {
	UID    int               `json:"uid,omitempty"`
	GID    int               `json:"gid,omitempty"`
	Device bool              `json:"device,omitempty"` // create a device node
	Major  uint32            `json:"major,omitempty"`
	Minor  uint32            `json:"minor,omitempty"`
	Mode   uint32            `json:"mode,omitempty"` // full st_mode, for device nodes
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

func (f *fixup) clone() *fixup {
	c := *f
	c.Xattrs = map[string]string{}
	for k, v := range f.Xattrs {
		c.Xattrs[k] = v
	}
	return &c
}

// fixups are keyed by path relative to the image root.
type fixups map[string]*fixup

func (a *applier) fixup(name string) *fixup {
	f, ok := a.fix[name]
	if !ok {
		f = &fixup{Xattrs: map[string]string{}}
		a.fix[name] = f
	}
	return f
}

// forget drops the fixups of rel and of everything under it.
func (fx fixups) forget(rel string) {
	for k := range fx {
		if k == rel || strings.HasPrefix(k, rel+"/") {
			delete(fx, k)
		}
	}
}

// commands turns the fixups into debugfs commands, parents first. Xattr
// values go through files in dir (they may be binary).
func (fx fixups) commands(dir string) ([]string, error) {
	names := make([]string, 0, len(fx))
	for n := range fx {
		names = append(names, n)
	}
	sort.Strings(names)
	var cmds []string
	for i, n := range names {
		f, p := fx[n], "/"+n
		if f.Device {
			kind := "c"
			if f.Mode&0o170000 == 0o060000 {
				kind = "b"
			}
			// debugfs's mknod takes a name in the current directory.
			cmds = append(cmds, "cd "+ext4.Quote(path.Dir(p)),
				fmt.Sprintf("mknod %s %s %d %d", ext4.Quote(path.Base(p)), kind, f.Major, f.Minor),
				"cd /", fmt.Sprintf("sif %s mode 0%o", ext4.Quote(p), f.Mode))
		}
		if f.UID != 0 || f.Device {
			cmds = append(cmds, fmt.Sprintf("sif %s uid %d", ext4.Quote(p), f.UID))
		}
		if f.GID != 0 || f.Device {
			cmds = append(cmds, fmt.Sprintf("sif %s gid %d", ext4.Quote(p), f.GID))
		}
		keys := make([]string, 0, len(f.Xattrs))
		for k := range f.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for j, k := range keys {
			file := filepath.Join(dir, fmt.Sprintf("xattr-%d-%d", i, j))
			if err := os.WriteFile(file, []byte(f.Xattrs[k]), 0o600); err != nil {
				return nil, err
			}
			cmds = append(cmds, fmt.Sprintf("ea_set -f %s %s %s", ext4.Quote(file), ext4.Quote(p), k))
		}
	}
	return cmds, nil
}
