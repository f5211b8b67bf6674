// Package qcow2 makes and reads the qcow2 overlays QEMU VMs boot from: a
// small file that holds only what the guest wrote, over a raw backing file
// (an image's root filesystem) that QEMU opens read-only. Create writes
// a new overlay itself, laid out as "qemu-img create" lays it out (a few
// writes, not a process); ReadHeader reads one back; and ExportRaw serves
// one as a raw file through qemu-storage-daemon's FUSE export, so that
// host tools such as resize2fs can work on the guest's filesystem.
package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Header is what banger reads of a qcow2 file's header.
type Header struct {
	Version     uint32
	Size        int64 // what the guest sees, in bytes
	ClusterBits uint32
	// BackingFile is the file the overlay reads what it does not hold
	// from ("" for none), and BackingFormat its format ("raw"; "" when
	// unrecorded, which makes QEMU probe it).
	BackingFile   string
	BackingFormat string
}

// ErrNotQcow2 is wrapped by ReadHeader for files that are not qcow2.
var ErrNotQcow2 = errors.New("not a qcow2 file")

// ReadHeader reads the header of the qcow2 file at path.
func ReadHeader(path string) (*Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	h, err := parseHeader(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// parseHeader decodes a qcow2 header (version 2 or 3) from the start of
// a file. The backing file name must lie within buf.
func parseHeader(buf []byte) (*Header, error) {
	be := binary.BigEndian
	if len(buf) < 72 || string(buf[:4]) != magic {
		return nil, ErrNotQcow2
	}
	h := &Header{Version: be.Uint32(buf[4:]), ClusterBits: be.Uint32(buf[20:])}
	if h.Version != 2 && h.Version != 3 {
		return nil, fmt.Errorf("%w: unknown version %d", ErrNotQcow2, h.Version)
	}
	size := be.Uint64(buf[24:])
	if size > 1<<62 {
		return nil, fmt.Errorf("%w: size %d", ErrNotQcow2, size)
	}
	h.Size = int64(size)
	off, n := be.Uint64(buf[8:]), uint64(be.Uint32(buf[16:]))
	if off != 0 {
		if n > maxNameLen || off > uint64(len(buf)) || off+n > uint64(len(buf)) {
			return nil, fmt.Errorf("%w: backing file name at %d (%d bytes) is out of the header", ErrNotQcow2, off, n)
		}
		h.BackingFile = string(buf[off : off+n])
	}
	ext := uint64(72)
	if h.Version == 3 {
		if len(buf) < 104 {
			return nil, ErrNotQcow2
		}
		ext = uint64(be.Uint32(buf[100:]))
	}
	for ext+8 <= uint64(len(buf)) {
		typ, n := be.Uint32(buf[ext:]), uint64(be.Uint32(buf[ext+4:]))
		data := ext + 8
		if typ == 0 || data+n > uint64(len(buf)) {
			break
		}
		if typ == extBackingFormat {
			h.BackingFormat = string(buf[data : data+n])
		}
		ext = data + (n+7)&^7
	}
	return h, nil
}
