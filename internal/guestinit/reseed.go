package guestinit

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
)

// ReseedPath is where images carry the reseed program.
const ReseedPath = "/usr/lib/banger/reseed"

// reseedCode is the machine code of testdata/reseed_<arch>.s: openat
// /dev/urandom write-only, ioctl RNDRESEEDCRNG (0x5207), exit 0, or 1 if
// either call fails. It is position-independent and has no relocations.
var reseedCode = map[string]struct {
	machine elf.Machine
	code    []byte
}{
	"x86_64": {elf.EM_X86_64, []byte{
		0xb8, 0x01, 0x01, 0x00, 0x00, // mov $257, %eax (openat)
		0xbf, 0x9c, 0xff, 0xff, 0xff, // mov $-100, %edi (AT_FDCWD)
		0x48, 0x8d, 0x35, 0x2f, 0x00, 0x00, 0x00, // lea path(%rip), %rsi
		0xba, 0x01, 0x00, 0x00, 0x00, // mov $1, %edx (O_WRONLY)
		0x0f, 0x05, // syscall
		0x85, 0xc0, // test %eax, %eax
		0x78, 0x18, // js fail
		0x89, 0xc7, // mov %eax, %edi (fd)
		0xb8, 0x10, 0x00, 0x00, 0x00, // mov $16, %eax (ioctl)
		0xbe, 0x07, 0x52, 0x00, 0x00, // mov $0x5207, %esi (RNDRESEEDCRNG)
		0x31, 0xd2, // xor %edx, %edx
		0x0f, 0x05, // syscall
		0x85, 0xc0, // test %eax, %eax
		0x75, 0x04, // jnz fail
		0x31, 0xff, // xor %edi, %edi
		0xeb, 0x05, // jmp exit
		0xbf, 0x01, 0x00, 0x00, 0x00, // fail: mov $1, %edi
		0xb8, 0x3c, 0x00, 0x00, 0x00, // exit: mov $60, %eax (exit)
		0x0f, 0x05, // syscall
		'/', 'd', 'e', 'v', '/', 'u', 'r', 'a', 'n', 'd', 'o', 'm', 0, // path
	}},
	"arm64": {elf.EM_AARCH64, []byte{
		0x60, 0x0c, 0x80, 0x92, // mov x0, #-100 (AT_FDCWD)
		0xe1, 0x01, 0x00, 0x10, // adr x1, path
		0x22, 0x00, 0x80, 0xd2, // mov x2, #1 (O_WRONLY)
		0x08, 0x07, 0x80, 0xd2, // mov x8, #56 (openat)
		0x01, 0x00, 0x00, 0xd4, // svc #0
		0x00, 0x01, 0xf8, 0xb7, // tbnz x0, #63, fail
		0xe1, 0x40, 0x8a, 0xd2, // mov x1, #0x5207 (RNDRESEEDCRNG)
		0x02, 0x00, 0x80, 0xd2, // mov x2, #0
		0xa8, 0x03, 0x80, 0xd2, // mov x8, #29 (ioctl)
		0x01, 0x00, 0x00, 0xd4, // svc #0
		0x60, 0x00, 0x00, 0xb5, // cbnz x0, fail
		0x00, 0x00, 0x80, 0xd2, // mov x0, #0
		0x02, 0x00, 0x00, 0x14, // b exit
		0x20, 0x00, 0x80, 0xd2, // fail: mov x0, #1
		0xa8, 0x0b, 0x80, 0xd2, // exit: mov x8, #93 (exit)
		0x01, 0x00, 0x00, 0xd4, // svc #0
		'/', 'd', 'e', 'v', '/', 'u', 'r', 'a', 'n', 'd', 'o', 'm', 0, // path
	}},
}

// reseedBase is where the program's one segment is mapped.
const reseedBase = 0x400000

// ReseedProgram returns the reseed program for arch ("x86_64" or
// "arm64"): a static Linux ELF executable of one read-execute segment
// holding the headers and the code, which starts right after them.
func ReseedProgram(arch string) ([]byte, error) {
	c, ok := reseedCode[arch]
	if !ok {
		return nil, fmt.Errorf("no reseed program for architecture %q (hint: banger has x86_64 and arm64)", arch)
	}
	const hdrSize = 64 + 56 // ELF header, one program header
	size := uint64(hdrSize + len(c.code))
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_EXEC), Machine: uint16(c.machine), Version: uint32(elf.EV_CURRENT),
		Entry: reseedBase + hdrSize, Phoff: 64, Ehsize: 64, Phentsize: 56, Phnum: 1,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	h.Ident[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	p := elf.Prog64{
		Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_R | elf.PF_X),
		Vaddr: reseedBase, Paddr: reseedBase, Filesz: size, Memsz: size, Align: 0x1000,
	}
	_ = binary.Write(&b, binary.LittleEndian, h) // a bytes.Buffer does not fail
	_ = binary.Write(&b, binary.LittleEndian, p)
	b.Write(c.code)
	return b.Bytes(), nil
}

// File is a file banger puts into guest images.
type File struct {
	Path string // absolute, as the guest sees it
	Mode os.FileMode
	Data []byte
}

// InstallFiles lists the files images for arch should carry: the reseed
// program at ReseedPath.
func InstallFiles(arch string) ([]File, error) {
	prog, err := ReseedProgram(arch)
	if err != nil {
		return nil, err
	}
	return []File{{Path: ReseedPath, Mode: 0o755, Data: prog}}, nil
}
