package kernelstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// VerifyError lists how an installed kernel differs from its manifest.
type VerifyError struct {
	Kernel   string
	Problems []string // one per file, e.g. `vmlinux: sha256 0a1b… is not the manifest's 9f8e…`
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("kernel %q does not match its manifest: %s", e.Kernel, strings.Join(e.Problems, "; "))
}

// Verify re-reads every file of the installed kernel name and compares it
// with the manifest: type, mode, size and sha256 of each file, the target
// of each symlink, and nothing extra. It returns a *VerifyError listing
// every difference, or nil.
func (s *Store) Verify(ctx context.Context, name string) error {
	m, err := s.Get(name)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(m.Dir())
	if err != nil {
		return fmt.Errorf("verifying kernel %q: %w", name, err)
	}
	defer func() { _ = root.Close() }()
	var problems []string
	listed := map[string]bool{ManifestFile: true}
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		listed[f.Path] = true
		if p := checkFile(root, f.Path, f.Mode, f.Size, f.SHA256, f.LinkTarget); p != "" {
			problems = append(problems, f.Path+": "+p)
		}
	}
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != "." && !listed[p] {
			problems = append(problems, p+": not in the manifest")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("verifying kernel %q: %w", name, err)
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return &VerifyError{Kernel: name, Problems: problems}
	}
	return nil
}

// VerifyVMLinux checks the installed kernel's vmlinux (one file: cheap
// enough for every start) against the sha256 its manifest recorded.
func VerifyVMLinux(m *Manifest) error {
	for _, f := range m.Files {
		if f.Path != "vmlinux" {
			continue
		}
		root, err := os.OpenRoot(m.Dir())
		if err != nil {
			return err
		}
		defer func() { _ = root.Close() }()
		if p := checkFile(root, f.Path, f.Mode, f.Size, f.SHA256, ""); p != "" {
			return &VerifyError{Kernel: m.Name, Problems: []string{"vmlinux: " + p}}
		}
		return nil
	}
	return &VerifyError{Kernel: m.Name, Problems: []string{"vmlinux: not in the manifest"}}
}

// checkFile compares the entry at p in root with what the manifest says
// and returns the difference, "" if none.
func checkFile(root *os.Root, p, mode string, size int64, sum, link string) string {
	st, err := root.Lstat(path.Clean(p))
	if errors.Is(err, fs.ErrNotExist) {
		return "missing"
	}
	if err != nil {
		return err.Error()
	}
	if got := st.Mode().String(); got != mode {
		return fmt.Sprintf("mode %s, the manifest says %s", got, mode)
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := root.Readlink(p)
		if err != nil {
			return err.Error()
		}
		if target != link {
			return fmt.Sprintf("links to %q, the manifest says %q", target, link)
		}
	case st.Mode().IsRegular():
		if st.Size() != size {
			return fmt.Sprintf("%d bytes, the manifest says %d", st.Size(), size)
		}
		f, err := root.Open(p)
		if err != nil {
			return err.Error()
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return err.Error()
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return fmt.Sprintf("sha256 %.12s…, the manifest says %.12s…", got, sum)
		}
	}
	return ""
}
