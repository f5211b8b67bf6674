package qemu

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// hostTSCKHz is the host CPU's clock in kHz from the first "cpu MHz" line
// of /proc/cpuinfo, or 0 when it cannot be read.
func hostTSCKHz() int {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseCPUMHz(bufio.NewScanner(f))
}

func parseCPUMHz(s *bufio.Scanner) int {
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(k) != "cpu MHz" {
			continue
		}
		mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || mhz <= 0 {
			return 0
		}
		return int(mhz*1000 + 0.5)
	}
	return 0
}
