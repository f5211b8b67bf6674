package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/thaloco/banger/internal/arch"
	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/kernelcat"
)

// TestPublishPipelineARM64 runs the kernel pipeline for arm64 end to end:
// make-generic-kernel.sh cross-builds with the shared small arm64 config
// (not Firecracker's: the suite builds one full kernel, the x86_64 one),
// banger imports it under the aarch64 alias, publish-kernel.sh uploads it
// beside the catalog's x86_64 entry of the same name, kernel list
// --available --arch arm64 shows it, a fresh state directory pulls it, and
// it boots an arm64 busybox guest under qemu-system-aarch64.
func TestPublishPipelineARM64(t *testing.T) {
	ctx := testContext(t)
	banger := bangerBin(t)
	tmp := t.TempDir()

	src, err := linuxSource()
	if err != nil {
		t.Fatal(err)
	}
	built := filepath.Join(pkgTmp, "generic-kernel-arm64")
	env := cleanEnv("LINUX_SRC="+src, "OUT_DIR="+built,
		"FC_CONFIG="+filepath.Join(sharedDir(t), "kernels", "test-6.12-arm64.config"))
	r := runCmd(ctx, env, filepath.Join(repoRoot(t), "scripts", "make-generic-kernel.sh"), "--arch", "aarch64")
	t.Logf("make-generic-kernel.sh --arch aarch64:\n%s", r.stderr)
	if r.err != nil {
		t.Fatalf("make-generic-kernel.sh --arch aarch64: %v", r.err)
	}
	prov := readKV(t, filepath.Join(built, "provenance"))
	if prov["arch"] != arch.ARM64 || prov["name"] != kernelName {
		t.Fatalf("provenance names %s for %s, want %s for arm64", prov["name"], prov["arch"], kernelName)
	}
	if a, format, err := arch.Detect(filepath.Join(built, "vmlinux")); err != nil || a != arch.ARM64 {
		t.Fatalf("built vmlinux is %s (%s), %v; want the arm64 boot Image", a, format, err)
	}

	state := filepath.Join(tmp, "state")
	mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state), banger, "kernel", "import", kernelName,
		"--from", built, "--distro", "generic", "--arch", "aarch64")

	bucket := filepath.Join(tmp, "remote", "bucket")
	if err := os.MkdirAll(bucket, 0o755); err != nil {
		t.Fatal(err)
	}
	baseURL := serveHTTP(t, ctx, bucket)
	catalog := copyCatalog(t, tmp)
	x86Before, x86Err := parseCatalog(t, catalog).Lookup(kernelName, arch.X86_64)
	r = mustRun(t, ctx, cleanEnv("BANGER_STATE_DIR="+state, "BANGER="+banger, "CATALOG="+catalog,
		"PUBLISH_DIR="+filepath.Join(tmp, "publish"),
		"RCLONE_CONFIG_E2ELOCAL_TYPE=local", "RCLONE_REMOTE=e2elocal", "RCLONE_BUCKET="+bucket,
		"BASE_URL="+baseURL), filepath.Join(repoRoot(t), "scripts", "publish-kernel.sh"), kernelName, "--description", description)
	t.Logf("publish-kernel.sh:\n%s%s", r.stdout, r.stderr)

	const bundle = kernelName + "-arm64.tar.zst"
	uploaded := filepath.Join(bucket, bundle)
	c := parseCatalog(t, catalog)
	e, err := c.Lookup(kernelName, arch.ARM64)
	if err != nil {
		t.Fatalf("patched catalog: %v", err)
	}
	want := kernelcat.Entry{Name: kernelName, Distro: "generic", Arch: arch.ARM64, KernelVersion: prov["kernel_version"],
		URL: baseURL + "/" + bundle, SHA256: sha256File(t, uploaded), Size: fileSize(t, uploaded), Description: description}
	if e != want {
		t.Errorf("catalog entry\n got %+v\nwant %+v", e, want)
	}
	// The x86_64 entry of the same name stays as it was.
	if x86After, err := c.Lookup(kernelName, arch.X86_64); (err == nil) != (x86Err == nil) || x86After != x86Before {
		t.Errorf("publishing arm64 changed the x86_64 entry: %+v (%v), was %+v (%v)", x86After, err, x86Before, x86Err)
	}

	// kernel list --available --arch arm64 lists it, and only arm64 kernels.
	state2 := filepath.Join(tmp, "state2")
	env2 := cleanEnv("BANGER_STATE_DIR="+state2, "BANGER_CATALOG="+catalog)
	out := mustRun(t, ctx, env2, banger, "kernel", "list", "--available", "--arch", "aarch64").stdout
	t.Logf("kernel list --available --arch aarch64:\n%s", out)
	if !strings.Contains(out, kernelName) || !strings.Contains(out, "arm64") || strings.Contains(out, "x86_64") {
		t.Errorf("kernel list --available --arch aarch64 should list %s for arm64 alone:\n%s", kernelName, out)
	}

	// A fresh machine pulls it and boots an arm64 guest with it.
	mustRun(t, ctx, env2, banger, "kernel", "pull", kernelName, "--arch", "arm64")
	if !bytes.Equal(readFile(t, filepath.Join(built, "vmlinux")), readFile(t, filepath.Join(state2, "kernels", kernelName, "vmlinux"))) {
		t.Fatal("pulled vmlinux differs from the built one")
	}
	rootfs := filepath.Join(tmp, "arm64.ext4")
	guesttest.BuildRootfs(t, rootfs, guesttest.Rootfs{Arch: arch.ARM64})
	// A short state directory keeps the VM's unix socket paths short.
	vmState, err := os.MkdirTemp("", "bg-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vmKillAll(vmState); os.RemoveAll(vmState) })
	if err := os.CopyFS(filepath.Join(vmState, "kernels"), os.DirFS(filepath.Join(state2, "kernels"))); err != nil {
		t.Fatal(err)
	}
	vmEnv := cleanEnv("BANGER_STATE_DIR=" + vmState)
	mustRun(t, ctx, vmEnv, banger, "vm", "create", "arm", "--kernel", kernelName, "--rootfs", rootfs, "--net", "none",
		"--memory", "256M", "--ready-marker", guesttest.ReadyMarker)
	bootRetry(t, func(args ...string) result { return runCmd(ctx, vmEnv, banger, args...) }, "vm", "start", "arm", "--timeout", "3m")
	log := mustRun(t, ctx, vmEnv, banger, "vm", "logs", "arm").stdout
	if !strings.Contains(log, "Linux version "+prov["kernel_version"]) || !strings.Contains(log, "Machine model: linux,dummy-virt") {
		t.Errorf("the console does not show the pulled kernel booting on QEMU virt:\n%s", tail(log, 30))
	}
	mustRun(t, ctx, vmEnv, banger, "vm", "stop", "arm", "--timeout", "90s")
	mustRun(t, ctx, vmEnv, banger, "vm", "rm", "arm")
}
