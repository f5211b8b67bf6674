package archive

import (
	"archive/tar"
	"fmt"
	"strings"
)

// The three names allowed at the archive root.
const (
	vmlinux = "vmlinux"
	initrd  = "initrd.img"
	modules = "modules"
)

const layoutHint = "a bundle holds vmlinux, initrd.img and modules/ at the archive root"

// cleanName validates a header name and returns it without a leading "./"
// or a trailing "/" (directories). It returns "" for the archive root
// itself ("." or "./"), which the caller skips.
func cleanName(h *tar.Header) (string, error) {
	raw := h.Name
	switch {
	case raw == "":
		return "", unsafeEntry(raw, "empty name", "")
	case len(raw) > maxNameLen:
		return "", unsafeEntry(raw[:64]+"...", fmt.Sprintf("name longer than %d bytes", maxNameLen), "")
	case strings.IndexByte(raw, 0) >= 0:
		return "", unsafeEntry(raw, "name contains a NUL byte", "")
	case strings.HasPrefix(raw, "/"):
		return "", unsafeEntry(raw, "absolute path", "entry names must be relative to the archive root")
	}
	name := strings.TrimPrefix(raw, "./")
	if h.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
		if name == "" || name == "." {
			return "", nil
		}
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == ".." {
			return "", unsafeEntry(raw, `path has a ".." component`, "entry names must stay inside the archive")
		}
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" || c == "." {
			return "", unsafeEntry(raw, "non-canonical path (empty or \".\" component)", "")
		}
	}
	return name, nil
}

// checkLayout enforces the bundle layout on a cleaned name: everything
// under vmlinux, initrd.img or modules/, the first two regular files, the
// third a directory. Symlinks are thus only possible inside modules/.
func checkLayout(raw, name string, typ byte) error {
	top, rest, nested := strings.Cut(name, "/")
	switch top {
	case vmlinux, initrd:
		if nested {
			return unsafeEntry(raw, top+" must be a regular file at the archive root, not a directory", "")
		}
		if typ != tar.TypeReg {
			return unsafeEntry(raw, fmt.Sprintf("%s must be a regular file, not a %s", top, typeName(typ)), "")
		}
	case modules:
		if !nested && typ != tar.TypeDir {
			return unsafeEntry(raw, fmt.Sprintf("modules must be a directory, not a %s", typeName(typ)), "")
		}
	default:
		second, _, _ := strings.Cut(rest, "/")
		if (nested && (second == vmlinux || second == initrd || second == modules)) || (!nested && typ == tar.TypeDir) {
			return unsafeEntry(raw, fmt.Sprintf("top-level directory %q", top), "bundle contents must be at the archive root, not inside a directory such as linux-6.12/")
		}
		return unsafeEntry(raw, "outside the bundle layout", layoutHint)
	}
	return nil
}

// checkType rejects the entry types a bundle may not hold.
func checkType(h *tar.Header) error {
	switch h.Typeflag {
	case tar.TypeReg:
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return unsafeEntry(h.Name, "sparse files are not supported", "archive without --sparse")
			}
		}
		return nil
	case tar.TypeDir, tar.TypeSymlink:
		return nil
	case tar.TypeLink:
		return unsafeEntry(h.Name, fmt.Sprintf("hardlink to %q: hardlinks are not allowed", h.Linkname), "archive with tar --hard-dereference")
	case tar.TypeChar, tar.TypeBlock:
		return unsafeEntry(h.Name, "device node entries are not allowed", "")
	case tar.TypeFifo:
		return unsafeEntry(h.Name, "fifo entries are not allowed", "")
	case tar.TypeGNUSparse:
		return unsafeEntry(h.Name, "sparse files are not supported", "archive without --sparse")
	default:
		return unsafeEntry(h.Name, fmt.Sprintf("unsupported entry type %q", h.Typeflag), "a bundle holds only regular files, directories and symlinks")
	}
}

func typeName(typ byte) string {
	switch typ {
	case tar.TypeReg:
		return "regular file"
	case tar.TypeDir:
		return "directory"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hardlink"
	case tar.TypeChar, tar.TypeBlock:
		return "device node"
	case tar.TypeFifo:
		return "fifo"
	default:
		return fmt.Sprintf("entry of type %q", typ)
	}
}
