// Package ext4 checks and makes ext4 root filesystem images: it reads the
// superblock of an existing image, sizes a new one for a directory tree,
// and writes it with mkfs.ext4 -d.
package ext4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Superblock fields banger reads (offsets inside the superblock, which
// starts 1024 bytes into the device).
const (
	sbOffset        = 1024
	sbSize          = 1024
	offBlocksLo     = 0x04
	offLogBlockSize = 0x18
	offMagic        = 0x38
	offCompat       = 0x5C
	offIncompat     = 0x60
	offUUID         = 0x68
	offLabel        = 0x78
	offBlocksHi     = 0x150
	magic           = 0xEF53

	compatHasJournal  = 0x4
	incompatJournalDe = 0x8
	incompatExtents   = 0x40
	incompat64Bit     = 0x80
	incompatFlexBG    = 0x200
)

// Info describes an ext2/3/4 filesystem image.
type Info struct {
	Kind      string // "ext4", "ext3" or "ext2" (all mount with the ext4 driver)
	BlockSize int64
	Size      int64 // filesystem size in bytes (blocks × block size)
	Label     string
	UUID      string
}

// Check reads the superblock of the image at path and returns what it
// says, or an error naming the file and what is wrong with it.
func Check(path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("reading rootfs %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("reading rootfs %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return Info{}, fmt.Errorf("rootfs %s is not a regular file (hint: pass an ext4 image file)", path)
	}
	head := make([]byte, sbOffset+sbSize)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Info{}, fmt.Errorf("reading rootfs %s: %w", path, err)
	}
	head = head[:n]
	if len(head) < sbOffset+sbSize || binary.LittleEndian.Uint16(head[sbOffset+offMagic:]) != magic {
		return Info{}, fmt.Errorf("rootfs %s is not an ext4 filesystem: %s (hint: %s)", path, sniff(head), hintFor(head))
	}
	sb := head[sbOffset:]
	incompat := binary.LittleEndian.Uint32(sb[offIncompat:])
	if incompat&incompatJournalDe != 0 {
		return Info{}, fmt.Errorf("rootfs %s is an ext4 external journal device, not a filesystem", path)
	}
	logBS := binary.LittleEndian.Uint32(sb[offLogBlockSize:])
	if logBS > 6 {
		return Info{}, fmt.Errorf("rootfs %s has a corrupt ext4 superblock (block size 2^%d KiB) (hint: check it with e2fsck -fn)", path, logBS)
	}
	info := Info{BlockSize: 1024 << logBS}
	blocks := uint64(binary.LittleEndian.Uint32(sb[offBlocksLo:]))
	if incompat&incompat64Bit != 0 {
		blocks |= uint64(binary.LittleEndian.Uint32(sb[offBlocksHi:])) << 32
	}
	info.Size = int64(blocks) * info.BlockSize
	switch {
	case incompat&(incompatExtents|incompat64Bit|incompatFlexBG) != 0:
		info.Kind = "ext4"
	case binary.LittleEndian.Uint32(sb[offCompat:])&compatHasJournal != 0:
		info.Kind = "ext3"
	default:
		info.Kind = "ext2"
	}
	info.Label = string(bytes.TrimRight(sb[offLabel:offLabel+16], "\x00"))
	u := sb[offUUID : offUUID+16]
	info.UUID = fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	if fi.Size() < info.Size {
		return Info{}, fmt.Errorf("rootfs %s is truncated: its ext4 superblock says %d bytes, the file has %d (hint: copy the complete image)", path, info.Size, fi.Size())
	}
	return info, nil
}

// sniff names what the start of a file looks like, for error messages.
func sniff(head []byte) string {
	switch {
	case len(head) == 0:
		return "the file is empty"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "it is zstd-compressed"
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "it is gzip-compressed"
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return "it is xz-compressed"
	case bytes.HasPrefix(head, []byte("QFI\xfb")):
		return "it is a qcow2 image"
	case len(head) > 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return "it is a tar archive"
	case len(head) < sbOffset+sbSize:
		return fmt.Sprintf("the file is only %d bytes", len(head))
	}
	return "no ext2/3/4 superblock at offset 1024"
}

func hintFor(head []byte) string {
	switch s := sniff(head); s {
	case "it is zstd-compressed", "it is gzip-compressed", "it is xz-compressed":
		return "decompress it first"
	case "it is a qcow2 image":
		return "convert it with \"qemu-img convert -O raw IMG rootfs.ext4\""
	case "it is a tar archive":
		return "make an ext4 image from it with \"mkfs.ext4 -d DIR\", or import it with \"banger image build --from-image docker-archive:FILE\" if it is a docker save archive"
	}
	return "pass an ext4 image made with mkfs.ext4, or build one with \"banger image build\""
}
