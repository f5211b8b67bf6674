// Package bundletest builds real kernel bundles (zstd-compressed tar
// streams) and serves them over HTTP on 127.0.0.1, for tests. It is only
// imported by _test.go files.
package bundletest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Entry is one tar entry. Type defaults to a regular file.
type Entry struct {
	Name     string
	Body     string
	Type     byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar...
	Linkname string
	Mode     int64 // default 0644 (files) / 0755 (dirs)
}

// Build returns entries as a .tar.zst bundle.
func Build(entries ...Entry) []byte {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Linkname, Mode: e.Mode, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err) // test fixture: entries are written by the test itself
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return Compress(tb.Bytes())
}

// Compress zstd-compresses b.
func Compress(b []byte) []byte {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(b, nil)
}

// Minimal is a valid bundle holding only a vmlinux with the given body.
func Minimal(vmlinux string) []byte {
	return Build(Entry{Name: "vmlinux", Body: vmlinux, Mode: 0o755})
}

// Full is a valid bundle with vmlinux, initrd.img and a modules/ tree with
// a relative symlink inside it.
func Full(vmlinux string) []byte {
	return Build(
		Entry{Name: "vmlinux", Body: vmlinux, Mode: 0o755},
		Entry{Name: "initrd.img", Body: "initrd"},
		Entry{Name: "modules/", Type: tar.TypeDir},
		Entry{Name: "modules/6.12.0/", Type: tar.TypeDir},
		Entry{Name: "modules/6.12.0/modules.dep", Body: "dep"},
		Entry{Name: "modules/6.12.0/build", Type: tar.TypeSymlink, Linkname: "modules.dep"},
	)
}

// Bomb is a valid bundle whose vmlinux is size bytes of zeros (size a
// multiple of 1 MiB): a decompression bomb, about 100 bytes of bundle per
// MiB. It is a real zstd stream of concatenated frames, one per MiB, so
// building it costs no gigabytes of compression.
func Bomb(size int64) []byte {
	if size%(1<<20) != 0 {
		panic("bundletest.Bomb: size is not a multiple of 1 MiB")
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	h := &tar.Header{Name: "vmlinux", Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := tw.WriteHeader(h); err != nil {
		panic(err)
	}
	// The body follows as zeros, then the end-of-archive marker: two zero
	// blocks. tw is not closed: it would complain of the missing body.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	out := enc.EncodeAll(hdr.Bytes(), nil)
	mib := enc.EncodeAll(make([]byte, 1<<20), nil)
	for range size >> 20 {
		out = append(out, mib...)
	}
	out = enc.EncodeAll(make([]byte, 1024), out)
	if err := enc.Close(); err != nil {
		panic(err)
	}
	return out
}

// SHA256 is the lower-case hex sha256 of b.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// FakeVMLinux returns a body that carries a Linux version banner, like a
// real vmlinux does, padded to size bytes with incompressible bytes
// (derived from the version, so the same arguments give the same body).
func FakeVMLinux(version string, size int) string {
	s := "\x7fELF....Linux version " + version + " (builder@banger) (gcc 12.2.0) #1 SMP\x00"
	if len(s) < size {
		pad := make([]byte, size-len(s))
		seed := sha256.Sum256([]byte(version))
		_, _ = rand.NewChaCha8(seed).Read(pad)
		s += string(pad)
	}
	return s
}

// FakeKernel is FakeVMLinux (of size bytes) that a kernel's architecture
// check recognises as built for arch: "x86_64" starts as an x86-64 ELF
// file (e_machine 62), "arm64" carries the arm64 boot Image magic
// ("ARM\x64" at byte 56).
func FakeKernel(arch, version string, size int) string {
	head := make([]byte, 64) // an ELF64 header, or the Image header
	switch arch {
	case "x86_64":
		copy(head, "\x7fELF\x02\x01\x01\x00")
		head[18] = 62
	case "arm64":
		copy(head, "MZ") // the EFI stub's PE header, as real Images start
		copy(head[56:], "ARM\x64")
	default:
		panic("FakeKernel: unknown arch " + arch)
	}
	return string(head) + FakeVMLinux(version, max(size-64, 128))[len("\x7fELF...."):]
}

// SharedDir is the project's shared/ directory (test kernels, reference
// data): $BANGER_SHARED_DIR, else ../shared beside the repository root.
func SharedDir() (string, error) {
	if d := os.Getenv("BANGER_SHARED_DIR"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			shared := filepath.Join(filepath.Dir(dir), "shared")
			if _, err := os.Stat(shared); err != nil {
				return "", fmt.Errorf("shared directory not found at %s (hint: set BANGER_SHARED_DIR)", shared)
			}
			return shared, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.mod) not found above the working directory")
		}
		dir = parent
	}
}
