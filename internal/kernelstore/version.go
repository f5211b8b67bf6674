package kernelstore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
)

// linux_banner: "Linux version 6.12.117 (builder@host) (gcc ...) #1 SMP ..."
var bannerRE = regexp.MustCompile(`Linux version ([0-9]+\.[0-9]+[0-9A-Za-z._+~-]*) \(`)

// ReadKernelVersion finds the kernel release in an uncompressed vmlinux by
// its Linux version banner.
func ReadKernelVersion(vmlinux string) (string, error) {
	f, err := os.Open(vmlinux)
	if err != nil {
		return "", err
	}
	defer f.Close()
	const chunk = 1 << 20
	const overlap = 256
	r := bufio.NewReaderSize(f, chunk)
	buf := make([]byte, 0, chunk+overlap)
	tmp := make([]byte, chunk)
	for {
		n, err := io.ReadFull(r, tmp)
		buf = append(buf, tmp[:n]...)
		if i := bytes.Index(buf, []byte("Linux version ")); i >= 0 {
			if m := bannerRE.FindSubmatch(buf[i:]); m != nil {
				return string(m[1]), nil
			}
		}
		if err != nil {
			break
		}
		if len(buf) > overlap {
			buf = append(buf[:0], buf[len(buf)-overlap:]...)
		}
	}
	return "", fmt.Errorf("no Linux version string found in %s (is it an uncompressed vmlinux?)", vmlinux)
}
