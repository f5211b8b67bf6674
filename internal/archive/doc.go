// Package archive safely extracts kernel bundles (zstd-compressed tar
// streams) into a directory, enforcing the bundle layout and trust rules.
// ExtractBundle takes a bundle; ExtractTar takes the same tar uncompressed
// (kernelstore's import streams a local directory through it) and applies
// the same rules.
//
// A bundle holds, at the archive root, a regular file vmlinux (required), a
// regular file initrd.img (optional) and a directory tree modules/
// (optional). A leading "./" on entry names is accepted; a "." (or "./")
// directory entry is ignored. Both functions reject, with an
// *UnsafeEntryError naming the entry:
//
//   - absolute names, ".." components and non-canonical names ("a//b", "a/./b");
//   - anything outside the three roots, including a top-level versioned
//     directory such as linux-6.12/vmlinux;
//   - vmlinux or initrd.img that is not a regular file, modules that is not a
//     directory, and a bundle without vmlinux;
//   - symlinks outside modules/, absolute symlink targets, and targets that
//     leave the archive when resolved from the link's own directory through
//     the archive's other symlinks (the whole set is checked again once the
//     tar is read, so a later link cannot change an earlier verdict), and
//     symlink loops;
//   - hardlinks, always: a bundle never needs them (archive with
//     "tar --hard-dereference");
//   - device, fifo, sparse and any other non-file, non-directory,
//     non-symlink entries (tar cannot hold sockets);
//   - entries whose parent is a symlink or a regular file (writes through a
//     symlink), and an entry whose name was already used (replacement or
//     duplicate). A directory entry for a directory created implicitly for an
//     earlier entry is not a duplicate.
//
// Everything is written beneath the destination the way os.Root does it:
// through descriptors of directories the extractor created itself, opened
// one component at a time with O_NOFOLLOW, naming a single component per
// system call, with O_EXCL for files, so no header can make it write
// outside that directory (see dirs.go for why not through os.Root itself).
// Modes keep only the permission bits (setuid, setgid and sticky bits are
// dropped), files get at least u+rw and directories u+rwx, implicit parent
// directories are 0755, and the umask does not change the modes. Ownership,
// times and xattrs from the archive are ignored: everything belongs to the
// invoking user.
//
// Limits bound the decompressed tar bytes (default 8 GiB), the zstd window
// (default 128 MiB), the number of entries (default 100,000) and, for a
// bundle, the expansion ratio: once past RatioGrace (16 MiB) of tar, every
// read checks that the tar is at most MaxRatio (default 50) times the
// compressed bytes read so far, so a decompression bomb is refused when it
// crosses the ratio, not after it was written out (see the constants for
// why 50). Names and symlink targets are at most 4096 bytes and a bundle
// may hold at most 4096 symlinks. Errors for a bundle past a limit match
// ErrLimitExceeded.
//
// For speed, decompression, hashing and writing overlap: small files are
// created, hashed and written by a pool of goroutines while the tar is
// read on, and large files are hashed and written by two goroutines while
// the next chunk is read and, for a bundle, decompressed. All writes are
// done when ExtractBundle or ExtractTar returns.
//
// On error the destination directory is left partially written: the caller
// extracts into a temporary directory of its own and removes it (with
// os.RemoveAll, which does not follow symlinks) when the extraction fails.
// On success everything is written but not yet on stable storage: the
// extractor has only started the write-back. The caller flushes the
// directory's file system once (syncfs, as stagedir.FS does) before it
// renames the directory into place; see writeback.go for why once and not
// per file.
package archive
