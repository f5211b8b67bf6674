package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// kernelish returns n bytes that compress roughly like kernel code with
// zstd: tokens drawn with a skewed distribution from a vocabulary of short
// random byte strings ("instructions"), mixed with random immediates.
func kernelish(rng *rand.Rand, vocab [][]byte, n int) []byte {
	b := make([]byte, 0, n+16)
	for len(b) < n {
		if rng.IntN(3) == 0 {
			b = binary.LittleEndian.AppendUint32(b, rng.Uint32())
			continue
		}
		i := int(rng.ExpFloat64() * float64(len(vocab)) / 8)
		b = append(b, vocab[i%len(vocab)]...)
	}
	return b[:n]
}

// benchTar builds a realistic ~106 MB bundle tar: a 40 MiB vmlinux, an
// 8 MiB incompressible initrd.img (a compressed cpio) and a modules/ tree
// of 1,225 .ko files (4 KiB to 256 KiB, 25 per directory, 49 directories),
// four index files and two symlinks.
func benchTar() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := make([][]byte, 4096)
	for i := range vocab {
		vocab[i] = make([]byte, 2+rng.IntN(10))
		for j := range vocab[i] {
			vocab[i][j] = byte(rng.Uint32())
		}
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err) // writing to memory: cannot happen
		}
		if _, err := tw.Write(body); err != nil {
			panic(err)
		}
	}
	add(&tar.Header{Name: "vmlinux", Mode: 0o755}, kernelish(rng, vocab, 40<<20))
	add(&tar.Header{Name: "initrd.img"}, random(8<<20))
	add(&tar.Header{Name: "modules/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	base := "modules/6.12.0/"
	add(&tar.Header{Name: base, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	total := 0
	for d := 0; total < 52<<20; d++ {
		dir := fmt.Sprintf("%skernel/drivers/sub%02d/", base, d)
		add(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755}, nil)
		for f := 0; f < 25; f++ {
			n := 4<<10 + int(rng.ExpFloat64()*40*1024)
			n = min(n, 256<<10)
			add(&tar.Header{Name: fmt.Sprintf("%smod%02d_%02d.ko", dir, d, f)}, kernelish(rng, vocab, n))
			total += n
		}
	}
	for _, idx := range []string{"modules.dep", "modules.alias", "modules.symbols", "modules.order"} {
		add(&tar.Header{Name: base + idx}, bytes.Repeat([]byte("kernel/drivers/sub00/mod00_00.ko: kernel/drivers/sub01/mod01_01.ko\n"), 2000))
	}
	for _, l := range [][2]string{{base + "build", "kernel"}, {"modules/latest", "6.12.0"}} {
		add(&tar.Header{Name: l[0], Typeflag: tar.TypeSymlink, Linkname: l[1], Mode: 0o777}, nil)
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

var benchBundle = sync.OnceValues(func() ([]byte, int) {
	raw := benchTar()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	return enc.EncodeAll(raw, nil), len(raw)
})

// BenchmarkExtractBundle extracts a ~100 MB bundle with ExtractBundle and
// with `zstd -dc FILE | tar --no-same-owner -x` from the same file, in
// alternating order each round, and reports both rates (MB/s of tar data)
// and the ratio of the times (below 1: ExtractBundle is faster), although
// ExtractBundle also hashes every file and checks every entry; and the CPU
// time each used, which a busy machine disturbs less than the wall time. It runs
// once into a directory on the disk and once on tmpfs (/dev/shm), where
// creating a file costs microseconds instead of, on a virtualized ext4,
// milliseconds.
func BenchmarkExtractBundle(b *testing.B) {
	data, rawSize := benchBundle()
	src := filepath.Join(b.TempDir(), "bench-x86_64.tar.zst")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("bundle: %.1f MB tar, %.1f MB zstd (%.2f:1)", float64(rawSize)/1e6, float64(len(data))/1e6, float64(rawSize)/float64(len(data)))
	b.Run("disk", func(b *testing.B) { benchExtract(b, src, b.TempDir(), rawSize) })
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		b.Run("tmpfs", func(b *testing.B) {
			work, err := os.MkdirTemp("/dev/shm", "banger-bench-")
			if err != nil {
				b.Fatal(err)
			}
			defer os.RemoveAll(work)
			benchExtract(b, src, work, rawSize)
		})
	}
}

func benchExtract(b *testing.B, src, work string, rawSize int) {
	_, pipeErr := exec.LookPath("zstd")
	var ourCPU, theirCPU time.Duration
	extract := func() time.Duration {
		out := filepath.Join(work, "banger")
		if err := os.Mkdir(out, 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		start, cpu := time.Now(), cpuTime()
		if _, err := ExtractBundle(context.Background(), f, out, DefaultLimits()); err != nil {
			b.Fatal(err)
		}
		ourCPU += cpuTime() - cpu
		return time.Since(start)
	}
	pipeline := func() time.Duration {
		out := filepath.Join(work, "pipeline")
		if err := os.Mkdir(out, 0o755); err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("sh", "-c", `zstd -dc "$1" | tar --no-same-owner -x -C "$2"`, "sh", src, out)
		start := time.Now()
		if output, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("zstd | tar: %v: %s", err, output)
		}
		// The shell's usage includes its waited-for children: zstd and tar.
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			theirCPU += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		return time.Since(start)
	}
	var ours, theirs time.Duration
	for i := range b.N {
		switch {
		case pipeErr != nil:
			ours += extract()
		case i%2 == 0:
			ours += extract()
			theirs += pipeline()
		default:
			theirs += pipeline()
			ours += extract()
		}
		b.StopTimer()
		for _, d := range []string{"banger", "pipeline"} {
			if err := os.RemoveAll(filepath.Join(work, d)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	mb := float64(rawSize) / 1e6 * float64(b.N)
	b.ReportMetric(mb/ours.Seconds(), "MB/s")
	b.ReportMetric(float64(ourCPU.Milliseconds())/float64(b.N), "cpu-ms/op")
	if pipeErr != nil {
		b.Logf("no zstd binary (%v): no pipeline comparison", pipeErr)
		return
	}
	b.ReportMetric(mb/theirs.Seconds(), "pipeline-MB/s")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "time-ratio")
	b.ReportMetric(float64(theirCPU.Milliseconds())/float64(b.N), "pipeline-cpu-ms/op")
}

// cpuTime is the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
