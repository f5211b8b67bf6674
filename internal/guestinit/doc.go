// Package guestinit makes a guest restored from a memory snapshot its own
// machine. Every clone restored from one snapshot wakes up with the same
// hostname, MAC address, wall clock and kernel random state; right after
// restore banger connects over SSH as root and runs RestoreCommand, one
// POSIX sh command line that mixes a fresh host seed into the kernel's
// input pool, reseeds the CRNG, sets the clock, the hostname and
// optionally the MAC, and ends with a line ParseRestoreResult reads.
//
// Writing to /dev/urandom only mixes bytes into the input pool: since
// Linux 5.18 the CRNG that serves /dev/urandom and getrandom is reseeded
// from that pool on a timer, so until then clones read identical bytes.
// The RNDRESEEDCRNG ioctl (root only) forces the reseed at once. Images
// may hold nothing but busybox, so banger ships a tiny static program
// that makes the call (ReseedProgram, installed at ReseedPath by
// InstallFiles) and falls back to perl or python3 when it is missing.
//
// What the image needs: /bin/sh (busybox ash, dash or bash), root login
// over SSH with banger's key, and ideally the reseed program.
package guestinit
