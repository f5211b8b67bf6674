package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/thaloco/banger/internal/kernelcat"
)

const (
	kernelName  = "generic-6.12"
	bundleName  = "generic-6.12-x86_64.tar.zst"
	description = "Generic Firecracker kernel 6.12 (all drivers built-in, no initrd)"
)

// TestPublishPipeline runs the documented flow for real: build (or the
// cached build), banger kernel import, publish-kernel.sh uploading with
// rclone to a local-directory remote, rclone serve http on 127.0.0.1 as
// BASE_URL, and banger kernel pull from the patched catalog copy.
func TestPublishPipeline(t *testing.T) {
	built := genericKernel(t)
	ctx := testContext(t)
	banger := bangerBin(t)
	tmp := t.TempDir()

	state := filepath.Join(tmp, "state")
	mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state), banger, "kernel", "import", kernelName,
		"--from", built, "--distro", "generic", "--arch", "x86_64")

	bucket := filepath.Join(tmp, "remote", "bucket")
	if err := os.MkdirAll(bucket, 0o755); err != nil {
		t.Fatal(err)
	}
	baseURL := serveHTTP(t, ctx, bucket)
	catalog := copyCatalog(t, tmp)
	env := cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+banger, "CATALOG="+catalog,
		"PUBLISH_DIR="+filepath.Join(tmp, "publish"),
		"RCLONE_CONFIG_E2ELOCAL_TYPE=local", "RCLONE_REMOTE=e2elocal", "RCLONE_BUCKET="+bucket,
		"BASE_URL="+baseURL)
	publish := filepath.Join(repoRoot(t), "scripts", "publish-kernel.sh")
	r := mustRun(t, ctx, env, publish, kernelName, "--description", description)
	t.Logf("publish-kernel.sh:\n%s%s", r.stdout, r.stderr)

	uploaded := filepath.Join(bucket, bundleName)
	sum, size := sha256File(t, uploaded), fileSize(t, uploaded)
	c := parseCatalog(t, catalog)
	e, err := c.Lookup(kernelName, "x86_64")
	if err != nil {
		t.Fatalf("patched catalog: %v", err)
	}
	want := kernelcat.Entry{Name: kernelName, Distro: "generic", Arch: "x86_64", KernelVersion: readKV(t, filepath.Join(built, "provenance"))["kernel_version"],
		URL: baseURL + "/" + bundleName, SHA256: sum, Size: size, Description: description}
	if e != want {
		t.Errorf("catalog entry\n got %+v\nwant %+v", e, want)
	}

	// Publishing the same kernel again changes nothing.
	before := readFile(t, catalog)
	mustRun(t, ctx, env, publish, kernelName, "--description", description)
	if after := readFile(t, catalog); !bytes.Equal(before, after) {
		t.Errorf("second publish changed the catalog:\n%s\n---\n%s", before, after)
	}

	// A fresh machine pulls it from the served bucket through the catalog.
	state2 := filepath.Join(tmp, "state2")
	mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state2, "BANGER_CATALOG="+catalog), banger, "kernel", "pull", kernelName)
	if !bytes.Equal(readFile(t, filepath.Join(built, "vmlinux")), readFile(t, filepath.Join(state2, "kernels", kernelName, "vmlinux"))) {
		t.Fatal("pulled vmlinux differs from the built one")
	}
}

// TestPublishDryRunReproducible packs the same imported kernel twice with
// --dry-run and expects the same sha256, nothing uploaded and the catalog
// untouched.
func TestPublishDryRunReproducible(t *testing.T) {
	built := genericKernel(t)
	ctx := testContext(t)
	banger := bangerBin(t)
	tmp := t.TempDir()
	state := filepath.Join(tmp, "state")
	mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state), banger, "kernel", "import", kernelName,
		"--from", built, "--distro", "generic", "--arch", "x86_64")
	catalog := copyCatalog(t, tmp)
	before := readFile(t, catalog)
	bucket := filepath.Join(tmp, "bucket")

	var sums []string
	for i := range 2 {
		pub := filepath.Join(tmp, "publish"+strconv.Itoa(i))
		r := mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+banger, "CATALOG="+catalog, "PUBLISH_DIR="+pub,
			"RCLONE_CONFIG_E2ELOCAL_TYPE=local", "RCLONE_REMOTE=e2elocal", "RCLONE_BUCKET="+bucket),
			filepath.Join(repoRoot(t), "scripts", "publish-kernel.sh"), kernelName, "--description", description, "--dry-run")
		sum := outputField(t, r.stdout, "sha256")
		if got := sha256File(t, filepath.Join(pub, bundleName)); got != sum {
			t.Errorf("dry run %d printed sha256 %s, its file has %s", i, sum, got)
		}
		sums = append(sums, sum)
		checkBundleLayout(t, filepath.Join(pub, bundleName), readFile(t, filepath.Join(built, "vmlinux")))
	}
	if sums[0] != sums[1] {
		t.Errorf("two dry runs packed different bundles: %s and %s", sums[0], sums[1])
	}
	if !bytes.Equal(before, readFile(t, catalog)) {
		t.Error("--dry-run wrote the catalog")
	}
	if _, err := os.Stat(bucket); !os.IsNotExist(err) {
		t.Errorf("--dry-run uploaded something: %v", err)
	}
}

// serveHTTP runs rclone serve http over dir on a free 127.0.0.1 port and
// returns its base URL once it answers.
func serveHTTP(t *testing.T, ctx context.Context, dir string) string {
	t.Helper()
	for attempt := 0; attempt < 3; attempt++ {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		sctx, cancel := context.WithCancel(ctx)
		cmd := exec.CommandContext(sctx, "rclone", "serve", "http", dir, "--addr", addr,
			"--dir-cache-time", "0s") // see uploads at once, as a bucket would
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatalf("rclone serve http: %v (hint: apt-get install rclone)", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitHTTP(sctx, "http://"+addr+"/", exited); err == nil {
			t.Cleanup(func() { cancel(); <-exited })
			return "http://" + addr
		} else {
			cancel()
			<-exited
			t.Logf("rclone serve http on %s: %v\n%s", addr, err, stderr.String())
		}
	}
	t.Fatal("rclone serve http did not come up on 127.0.0.1")
	return ""
}

func waitHTTP(ctx context.Context, url string, exited <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("exited early: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("no answer from %s within 20s", url)
}

// copyCatalog copies the repo's catalog.json into dir, so publishing never
// touches the real one.
func copyCatalog(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "catalog.json")
	if err := os.WriteFile(p, readFile(t, filepath.Join(repoRoot(t), "internal", "kernelcat", "catalog.json")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseCatalog(t *testing.T, path string) *kernelcat.Catalog {
	t.Helper()
	c, err := kernelcat.Parse(readFile(t, path), path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// outputField finds "KEY  value" in the publish script's summary.
func outputField(t *testing.T, out, key string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q line in:\n%s", key, out)
	}
	return m[1]
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256File(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
