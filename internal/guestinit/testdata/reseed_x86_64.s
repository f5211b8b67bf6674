# reseed: open /dev/urandom for writing and ask the kernel to reseed its
# CRNG at once (RNDRESEEDCRNG). Exit 0 on success, 1 if either call fails.
# Position-independent and self-contained: guestinit's Go code wraps
# these bytes in an ELF header and a single PT_LOAD segment, and
# TestReseedCodeMatchesAssembly checks them against this file.
#
#	as --64 -o reseed.o reseed_x86_64.s
	.text
	.globl _start
_start:
	mov	$257, %eax		# openat(AT_FDCWD, "/dev/urandom", O_WRONLY)
	mov	$-100, %edi
	lea	path(%rip), %rsi
	mov	$1, %edx
	syscall
	test	%eax, %eax
	js	fail
	mov	%eax, %edi		# ioctl(fd, RNDRESEEDCRNG, 0)
	mov	$16, %eax
	mov	$0x5207, %esi
	xor	%edx, %edx
	syscall
	test	%eax, %eax
	jnz	fail
	xor	%edi, %edi
	jmp	exit
fail:
	mov	$1, %edi
exit:
	mov	$60, %eax		# exit(status)
	syscall
path:
	.asciz	"/dev/urandom"
