// reseed: open /dev/urandom for writing and ask the kernel to reseed its
// CRNG at once (RNDRESEEDCRNG). Exit 0 on success, 1 if either call fails.
// Position-independent and self-contained: guestinit's Go code wraps
// these bytes in an ELF header and a single PT_LOAD segment, and
// TestReseedCodeMatchesAssembly checks them against this file.
//
//	aarch64-linux-gnu-as -o reseed.o reseed_arm64.s
	.text
	.globl _start
_start:
	mov	x0, #-100		// openat(AT_FDCWD, "/dev/urandom", O_WRONLY)
	adr	x1, path
	mov	x2, #1
	mov	x8, #56
	svc	#0
	tbnz	x0, #63, fail
	mov	x1, #0x5207		// ioctl(fd, RNDRESEEDCRNG, 0)
	mov	x2, #0
	mov	x8, #29
	svc	#0
	cbnz	x0, fail
	mov	x0, #0
	b	exit
fail:
	mov	x0, #1
exit:
	mov	x8, #93			// exit(status)
	svc	#0
path:
	.asciz	"/dev/urandom"
