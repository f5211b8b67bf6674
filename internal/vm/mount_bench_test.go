package vm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/guest"
	"github.com/thaloco/banger/internal/guesttest"
)

// BenchmarkSharedFolder compares a shared folder (virtio-9p, --mount)
// with the VM's own disk (virtio-blk, ext4) in one booted guest: writing
// and reading a large file (BANGER_BENCH_MOUNT_MIB, default 1024 MiB;
// each written with fsync, each read after dropping the guest's caches),
// and creating and reading a tree of BANGER_BENCH_MOUNT_FILES small files
// (default 10000). It reports MB/s or files/s per case; run it with
//
//	go test -run '^$' -bench SharedFolder -benchtime 3x ./internal/vm/
//
// Under TCG (no KVM) both sides pay for software emulation; the ratio of
// the two is what carries over to KVM hosts.
func BenchmarkSharedFolder(b *testing.B) {
	mib := envInt(b, "BANGER_BENCH_MOUNT_MIB", 1024)
	files := envInt(b, "BANGER_BENCH_MOUNT_FILES", 10000)
	s := newBenchStore(b)
	share := b.TempDir()
	m, err := ParseMount(share + ":/mnt/share")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Create(ctx, CreateOptions{Name: "bench9p", Kernel: "test9p", Rootfs: shared.sshd, MemoryMiB: 512,
		DiskSize: int64(mib+256) << 20, Mounts: []Mount{m}}); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Start(ctx, "bench9p", StartOptions{Timeout: 3 * time.Minute}); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = s.Stop(context.Background(), "bench9p", StopOptions{Force: true}) }()
	target, err := s.SSH("bench9p")
	if err != nil {
		b.Fatal(err)
	}
	c, err := target.Connect(ctx, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	run := func(b *testing.B, cmd string) time.Duration {
		var out bytes.Buffer
		t0 := time.Now()
		code, err := guest.Run(ctx, c, cmd, nil, &out, io.Discard)
		d := time.Since(t0)
		if err != nil || code != 0 {
			b.Fatalf("%s: exit %d, %v: %s", cmd, code, err, out.String())
		}
		return d
	}
	for _, where := range []struct{ name, dir string }{{"disk", "/bench"}, {"mount", "/mnt/share/bench"}} {
		dir := where.dir
		const drop = "sync; echo 3 > /proc/sys/vm/drop_caches; "
		b.Run(fmt.Sprintf("write-%dMiB/%s", mib, where.name), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				total += run(b, fmt.Sprintf("mkdir -p %s && rm -f %s/big && dd if=/dev/zero of=%s/big bs=1M count=%d conv=fsync 2>/dev/null", dir, dir, dir, mib))
			}
			b.ReportMetric(float64(mib)*float64(b.N)/total.Seconds()*1.048576, "MB/s")
		})
		b.Run(fmt.Sprintf("read-%dMiB/%s", mib, where.name), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				run(b, drop)
				total += run(b, fmt.Sprintf("dd if=%s/big of=/dev/null bs=1M 2>/dev/null", dir))
			}
			b.ReportMetric(float64(mib)*float64(b.N)/total.Seconds()*1.048576, "MB/s")
		})
		b.Run(fmt.Sprintf("create-%dfiles/%s", files, where.name), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				run(b, fmt.Sprintf("rm -rf %s/tree; mkdir -p %s/tree", dir, dir))
				total += run(b, fmt.Sprintf("cd %s/tree && i=0; while [ $i -lt %d ]; do echo $i > f$i; i=$((i+1)); done; sync", dir, files))
			}
			b.ReportMetric(float64(files)*float64(b.N)/total.Seconds(), "files/s")
		})
		b.Run(fmt.Sprintf("read-%dfiles/%s", files, where.name), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				run(b, drop)
				total += run(b, fmt.Sprintf("cd %s/tree && cat * >/dev/null", dir))
			}
			b.ReportMetric(float64(files)*float64(b.N)/total.Seconds(), "files/s")
		})
		run(b, fmt.Sprintf("rm -rf %s", dir))
	}
}

// newBenchStore is newStore with the 9p test kernel installed as
// "test9p".
func newBenchStore(b *testing.B) *Store {
	b.Helper()
	s := newStore(b, nil)
	guesttest.InstallKernelBundle(b, privateKernels(b, s), "test9p", guesttest.Kernel9PBundleName)
	return s
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, v)
	}
	return n
}
