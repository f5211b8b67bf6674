package qcow2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The layout Create writes, which is qemu-img's for a new image with
// 64 KiB clusters: the header in cluster 0, the refcount table in
// cluster 1, its one refcount block in cluster 2, the L1 table from
// cluster 3 on, every L1 entry zero (nothing allocated: every read goes
// to the backing file).
const (
	magic            = "QFI\xfb"
	version          = 3
	clusterBits      = 16
	clusterSize      = 1 << clusterBits
	headerLength     = 112 // version 3 with the compression type field
	refcountOrder    = 4   // 16-bit refcounts
	refcountTableOff = 1 * clusterSize
	refcountBlockOff = 2 * clusterSize
	l1TableOff       = 3 * clusterSize
	// extBackingFormat is the header extension naming the backing
	// file's format.
	extBackingFormat = 0xe2792aca
	// bytesPerL1Entry is what one L1 entry maps: an L2 table of
	// clusterSize/8 entries, each mapping a cluster.
	bytesPerL1Entry = clusterSize * (clusterSize / 8)
	// maxNameLen is the longest backing file name QEMU reads.
	maxNameLen = 1023
	// MaxSize bounds the guest's size (64 TiB), which keeps the L1 table
	// within the clusters one refcount block counts.
	MaxSize = 64 << 40
)

// Create makes path, which must not exist, a new qcow2 overlay of the raw
// file backing; the guest sees size bytes (0 means backing's size), which
// is rounded up to a multiple of 512. backing must be an absolute path:
// the overlay records it and QEMU resolves it at every open. The file is
// what "qemu-img create -f qcow2 -F raw -b BACKING PATH SIZE" makes (less
// its informational feature-name table), private (0600) and flushed to
// disk.
func Create(path, backing string, size int64) (err error) {
	fail := func(err error) error { return fmt.Errorf("creating overlay %s of %s: %w", path, backing, err) }
	if !filepath.IsAbs(backing) {
		return fail(errors.New("the backing file is not an absolute path"))
	}
	if len(backing) > maxNameLen {
		return fail(fmt.Errorf("the backing file's name is %d bytes, longer than qcow2 allows (%d)", len(backing), maxNameLen))
	}
	st, err := os.Stat(backing)
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(errors.New("the backing file is not a regular file"))
	}
	if size == 0 {
		size = st.Size()
	}
	size = (size + 511) &^ 511
	if size <= 0 || size > MaxSize {
		return fail(fmt.Errorf("size %d is not between 1 byte and %d TiB", size, MaxSize>>40))
	}
	head, err := header(backing, size)
	if err != nil {
		return fail(err)
	}
	l1Size := (size + bytesPerL1Entry - 1) / bytesPerL1Entry
	l1Clusters := (l1Size*8 + clusterSize - 1) / clusterSize
	// Refcount 1 for each cluster in use: header, refcount table,
	// refcount block, L1 table.
	block := make([]byte, 2*(3+l1Clusters))
	for i := range 3 + l1Clusters {
		binary.BigEndian.PutUint16(block[2*i:], 1)
	}
	var table [8]byte
	binary.BigEndian.PutUint64(table[:], refcountBlockOff)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fail(err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fail(cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	for _, w := range []struct {
		off  int64
		data []byte
	}{{0, head}, {refcountTableOff, table[:]}, {refcountBlockOff, block}} {
		if _, err := f.WriteAt(w.data, w.off); err != nil {
			return fail(err)
		}
	}
	// The L1 table is all zeros: a hole up to the end of the file.
	if err := f.Truncate(l1TableOff + l1Size*8); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("syncing: %w", err))
	}
	return nil
}

// header is cluster 0's content: the version 3 header, the backing format
// extension, the end of extensions and the backing file's name.
func header(backing string, size int64) ([]byte, error) {
	const fmtExt = "raw"
	extLen := 8 + (len(fmtExt)+7)&^7 + 8 // backing format, end marker
	nameOff := headerLength + extLen
	if len(backing) > maxNameLen || nameOff+len(backing) > clusterSize {
		return nil, fmt.Errorf("the backing file's name is %d bytes, longer than qcow2 allows (%d)", len(backing), maxNameLen)
	}
	l1Size := (size + bytesPerL1Entry - 1) / bytesPerL1Entry
	h := make([]byte, nameOff+len(backing))
	be := binary.BigEndian
	copy(h, magic)
	be.PutUint32(h[4:], version)
	be.PutUint64(h[8:], uint64(nameOff))       // backing_file_offset
	be.PutUint32(h[16:], uint32(len(backing))) // backing_file_size
	be.PutUint32(h[20:], clusterBits)
	be.PutUint64(h[24:], uint64(size))
	// 32: crypt_method 0
	be.PutUint32(h[36:], uint32(l1Size))
	be.PutUint64(h[40:], l1TableOff)
	be.PutUint64(h[48:], refcountTableOff)
	be.PutUint32(h[56:], 1) // refcount_table_clusters
	// 60: nb_snapshots, 64: snapshots_offset, 72/80/88: incompatible,
	// compatible and autoclear features: all 0.
	be.PutUint32(h[96:], refcountOrder)
	be.PutUint32(h[100:], headerLength)
	// 104: compression type 0 (zlib), then padding.
	be.PutUint32(h[headerLength:], extBackingFormat)
	be.PutUint32(h[headerLength+4:], uint32(len(fmtExt)))
	copy(h[headerLength+8:], fmtExt)
	// The end-of-extensions marker (type 0, length 0) is zeros already.
	copy(h[nameOff:], backing)
	return h, nil
}
