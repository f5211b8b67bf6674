package arch

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// Kernel formats Detect recognises.
const (
	FormatELF     = "ELF"
	FormatBzImage = "bzImage"
	FormatImage   = "arm64 Image"
)

// ELF machine numbers (e_machine).
const (
	emX86_64  = 62
	emAArch64 = 183
)

// Detect reads the start of the kernel file at path and returns the
// architecture and format it is recognisably built for: an ELF vmlinux
// (by e_machine), an x86 bzImage (its "HdrS" setup header at 0x202) or an
// arm64 boot Image (its "ARM\x64" magic at byte 56). Anything else is
// reported as ("", "", nil): banger does not refuse what it cannot
// recognise.
func Detect(path string) (arch, format string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	head := make([]byte, 0x206)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF { //nolint:errorlint // io.ReadFull returns these unwrapped
		return "", "", fmt.Errorf("reading %s: %w", path, err)
	}
	arch, format = detect(head[:n])
	return arch, format, nil
}

func detect(b []byte) (arch, format string) {
	if len(b) >= 20 && bytes.HasPrefix(b, []byte("\x7fELF")) {
		var m uint16
		switch b[5] { // EI_DATA; anything else is no real ELF file
		case 1:
			m = binary.LittleEndian.Uint16(b[18:])
		case 2:
			m = binary.BigEndian.Uint16(b[18:])
		}
		switch {
		case m == emX86_64:
			return X86_64, FormatELF
		case m == emAArch64:
			return ARM64, FormatELF
		case b[5] == 1 || b[5] == 2:
			return fmt.Sprintf("ELF machine %d", m), FormatELF
		}
	}
	switch {
	case len(b) >= 60 && string(b[56:60]) == "ARM\x64":
		return ARM64, FormatImage
	case len(b) >= 0x206 && string(b[0x202:0x206]) == "HdrS":
		return X86_64, FormatBzImage
	}
	return "", ""
}

// CheckKernel refuses the kernel file at path when its content is built
// for another architecture than want (canonical). The error names both
// and the format found, e.g. "vmlinux is built for x86_64 (ELF), not
// arm64".
func CheckKernel(path, want string) error {
	got, format, err := Detect(path)
	if err != nil {
		return err
	}
	if got == "" || got == want {
		return nil
	}
	return &MismatchError{Got: got, Format: format, Want: want}
}

// MismatchError is a kernel file built for another architecture.
type MismatchError struct {
	Got, Format, Want string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("vmlinux is built for %s (%s), not %s", e.Got, e.Format, e.Want)
}
