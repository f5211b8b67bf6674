package imagebuild

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/image"
	"github.com/thaloco/banger/internal/imagebuild/imagetest"
)

func TestBuildNameClashBeforePulling(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, _ := reg.Push("test/m:v1", imagetest.Marked("linux/amd64"))
	e := newEnv(t, "")
	if _, err := e.build(context.Background(), ref, "taken"); err != nil {
		t.Fatal(err)
	}
	before := reg.BlobGets.Load()
	_, err := e.build(context.Background(), ref, "taken")
	if !errors.Is(err, image.ErrExists) || !errors.As(err, new(*image.ExistsError)) {
		t.Fatalf("second build: %v", err)
	}
	if reg.BlobGets.Load() != before {
		t.Error("a refused build still downloaded blobs")
	}
}

func TestBuildInterrupted(t *testing.T) {
	needRoot(t)
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, _ := reg.Push("test/rich:v1", imagetest.Rich())
	// The first blob comes at once; the others are held for a minute (or
	// until the build hangs up), so the cancel lands mid-download however
	// slow the host, and a build that missed it would take that minute.
	reg.BlobDelay.Store(int64(time.Minute))
	reg.DelayFrom.Store(2)
	e := newEnv(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		// Cancel while the layers are downloading.
		for reg.BlobGets.Load() < 2 {
			time.Sleep(10 * time.Millisecond)
		}
		cancelled <- time.Now()
		cancel()
	}()
	_, err := e.build(ctx, ref, "cut")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted build: %v", err)
	}
	// Timed from the cancel, not from the start.
	if d := time.Since(<-cancelled); d > 5*time.Second {
		t.Errorf("the build took %s to notice the interruption", d)
	}
	if v := e.imageNames(t); len(v) != 0 {
		t.Errorf("interrupted build left images %v", v)
	}
	if l := e.leftovers(t); len(l) != 0 {
		t.Errorf("interrupted build left %v", l)
	}
	// The next build works.
	reg.BlobDelay.Store(0)
	if _, err := e.build(context.Background(), ref, "cut"); err != nil {
		t.Fatal(err)
	}
}

func TestBuildDiskFull(t *testing.T) {
	needRoot(t)
	// A real full disk: the whole state on a 24 MiB tmpfs, an image with
	// 40 MiB of incompressible data.
	state := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	defer exec.Command("umount", state).Run()
	big := make([]byte, 40<<20)
	for i := range big {
		big[i] = byte(i*2654435761>>13 + i>>7)
	}
	reg := imagetest.NewRegistry()
	defer reg.Close()
	ref, err := reg.Push("test/big:v1", imagetest.Image("linux/amd64", imagetest.Layer(imagetest.File("big", string(big)))))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, state)
	_, err = e.build(context.Background(), ref, "big")
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "hint: free some space") {
		t.Fatalf("build onto a full disk: %v", err)
	}
	t.Log(err)
	if v := e.imageNames(t); len(v) != 0 {
		t.Errorf("failed build left images %v", v)
	}
	if l := e.leftovers(t); len(l) != 0 {
		t.Errorf("failed build left %v", l)
	}
}
