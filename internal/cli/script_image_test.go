package cli

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/thaloco/banger/internal/imagebuild/imagetest"
)

// TestImageScripts runs the image command scripts against real ext4
// files, a real OCI registry on 127.0.0.1 and real mkfs.ext4, debugfs and
// e2fsck.
func TestImageScripts(t *testing.T) {
	p := scriptParams(t, "image_*.txtar", imageScriptCmds())
	p.Condition = func(cond string) (bool, error) {
		if cond == "root" {
			return os.Geteuid() == 0, nil
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
	testscript.Run(t, p)
}

func imageScriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){
		"registry":  cmdRegistry,
		"push":      cmdPush,
		"waitblobs": cmdWaitBlobs,
	}
}

// registries holds each script's registry.
var registries sync.Map // *testscript.TestScript → *imagetest.Registry

func registryOf(ts *testscript.TestScript) *imagetest.Registry {
	r, ok := registries.Load(ts)
	if !ok {
		ts.Fatalf("no registry (run registry first)")
	}
	return r.(*imagetest.Registry)
}

// registry [-delay DURATION [-from N]]: serve a registry on 127.0.0.1 and
// set $REGISTRY to its host:port; -delay holds every blob download (with
// -from, the Nth and later) for DURATION or until its client goes away.
func cmdRegistry(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! registry")
	}
	r := imagetest.NewRegistry()
	usage := func() { ts.Fatalf("usage: registry [-delay DURATION [-from N]]") }
	if len(args) >= 2 && args[0] == "-delay" {
		d, err := time.ParseDuration(args[1])
		ts.Check(err)
		r.BlobDelay.Store(int64(d))
		args = args[2:]
		if len(args) == 2 && args[0] == "-from" {
			n, err := strconv.ParseInt(args[1], 10, 64)
			ts.Check(err)
			r.DelayFrom.Store(n)
			args = args[2:]
		}
	}
	if len(args) != 0 {
		usage()
	}
	registries.Store(ts, r)
	ts.Defer(func() { r.Close(); registries.Delete(ts) })
	ts.Setenv("REGISTRY", r.Host)
}

// push REPO:TAG KIND: build a test image and push it. KIND is rich,
// marked-OS-ARCH (e.g. marked-linux-arm64), multi (an index of amd64 and
// arm64) or hostile-<kind> aimed at $WORK/outside.
func cmdPush(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: push REPO:TAG KIND")
	}
	r := registryOf(ts)
	var err error
	switch kind := args[1]; {
	case kind == "rich":
		_, err = r.Push(args[0], imagetest.Rich())
	case kind == "multi":
		_, err = r.PushIndex(args[0], imagetest.Index(imagetest.Marked("linux/arm64"), imagetest.Marked("linux/amd64")))
	case strings.HasPrefix(kind, "marked-"):
		_, err = r.Push(args[0], imagetest.Marked(strings.Replace(strings.TrimPrefix(kind, "marked-"), "-", "/", 1)))
	case strings.HasPrefix(kind, "hostile-"):
		_, err = r.Push(args[0], imagetest.Hostile(strings.TrimPrefix(kind, "hostile-"), ts.MkAbs("outside")))
	default:
		ts.Fatalf("push: unknown kind %q", kind)
	}
	ts.Check(err)
}

// waitblobs N: wait until the registry has started N blob downloads.
func cmdWaitBlobs(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitblobs N")
	}
	n, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	r := registryOf(ts)
	deadline := time.Now().Add(30 * time.Second)
	for r.BlobGets.Load() < n {
		if time.Now().After(deadline) {
			ts.Fatalf("waitblobs: only %d blob downloads after 30s", r.BlobGets.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
