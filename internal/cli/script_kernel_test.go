package cli

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/thaloco/banger/internal/bundletest"
	"github.com/thaloco/banger/internal/kernelcat"
)

// TestKernelScripts runs the kernel command scripts against real bundles
// served by a real HTTP server on 127.0.0.1.
func TestKernelScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t, "kernel_*.txtar", kernelScriptCmds()))
}

func kernelScriptCmds() map[string]func(*testscript.TestScript, bool, []string) {
	return map[string]func(*testscript.TestScript, bool, []string){
		"bundle":       cmdBundle,
		"serve":        cmdServe,
		"requests":     cmdRequests,
		"waitrequests": cmdWaitRequests,
		"catalog":      cmdCatalog,
		"vmlinux":      cmdVMLinux,
	}
}

// vmlinux FILE ARCH writes a fake kernel that banger recognises as built
// for ARCH (x86_64: an ELF header, arm64: the boot Image magic).
func cmdVMLinux(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: vmlinux FILE ARCH")
	}
	out := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(out), 0o755))
	ts.Check(os.WriteFile(out, []byte(bundletest.FakeKernel(args[1], "6.12.5", 4096)), 0o755))
}

// bundles are the kinds `bundle` can write: good ones and one per hostile
// class the extractor must refuse.
func bundles(version string) map[string][]byte {
	vm := bundletest.FakeVMLinux(version, 4096)
	e := func(name, body string) bundletest.Entry { return bundletest.Entry{Name: name, Body: body} }
	vml := bundletest.Entry{Name: "vmlinux", Body: vm, Mode: 0o755}
	return map[string][]byte{
		"minimal":        bundletest.Minimal(vm),
		"x86_64-elf":     bundletest.Minimal(bundletest.FakeKernel("x86_64", version, 4096)),
		"arm64-image":    bundletest.Minimal(bundletest.FakeKernel("arm64", version, 4096)),
		"full":           bundletest.Full(vm),
		"large":          bundletest.Minimal(bundletest.FakeVMLinux(version, 512<<10)),
		"traversal":      bundletest.Build(vml, e("../evil", "x")),
		"absolute":       bundletest.Build(vml, e("/etc/evil", "x")),
		"outside-roots":  bundletest.Build(vml, e("etc/passwd", "x")),
		"toplevel-dir":   bundletest.Build(bundletest.Entry{Name: "linux-6.12/", Type: tar.TypeDir}, bundletest.Entry{Name: "linux-6.12/vmlinux", Body: vm}),
		"symlink-escape": bundletest.Build(vml, bundletest.Entry{Name: "modules/", Type: tar.TypeDir}, bundletest.Entry{Name: "modules/x", Type: tar.TypeSymlink, Linkname: "../../etc/passwd"}),
		"device":         bundletest.Build(vml, bundletest.Entry{Name: "modules/", Type: tar.TypeDir}, bundletest.Entry{Name: "modules/null", Type: tar.TypeChar}),
		"no-vmlinux":     bundletest.Build(e("initrd.img", "x")),
		"duplicate":      bundletest.Build(vml, vml),
		"bomb":           bundletest.Bomb(2 << 30),
	}
}

// bundle OUT KIND [VERSION]
func cmdBundle(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: bundle OUT KIND [VERSION]")
	}
	version := "6.12.5"
	if len(args) > 2 {
		version = args[2]
	}
	b, ok := bundles(version)[args[1]]
	if !ok {
		ts.Fatalf("unknown bundle kind %q", args[1])
	}
	out := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(filepath.Dir(out), 0o755))
	ts.Check(os.WriteFile(out, b, 0o644))
}

// serve [-drop N] [-fail N] [-bps N] [-stall N] DIR: serve DIR on
// 127.0.0.1 and set $SERVER to its URL until the script ends. -stall N
// holds the first full download after N bytes until its client goes away.
func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! serve")
	}
	var f bundletest.Faults
	for len(args) > 2 && strings.HasPrefix(args[0], "-") {
		n, err := strconv.ParseInt(args[1], 10, 64)
		ts.Check(err)
		switch args[0] {
		case "-drop":
			f.DropAfter = n
		case "-fail":
			f.FailFirst = int(n)
		case "-bps":
			f.BytesPerSecond = n
		case "-stall":
			f.StallAfter = n
		default:
			ts.Fatalf("serve: unknown flag %s", args[0])
		}
		args = args[2:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: serve [-drop N] [-fail N] [-bps N] [-stall N] DIR")
	}
	srv := bundletest.Serve(ts.MkAbs(args[0]), f)
	ts.Defer(srv.Close)
	ts.Setenv("SERVER", srv.URL)
	stateOf(ts).values["server"] = srv
}

// requests [-ranges] N: the server got exactly N requests (with -ranges:
// N Range requests).
func cmdRequests(ts *testscript.TestScript, neg bool, args []string) {
	srv, ok := stateOf(ts).values["server"].(*bundletest.Server)
	if !ok {
		ts.Fatalf("requests: no server (run serve first)")
	}
	got := srv.Requests.Load()
	if len(args) == 2 && args[0] == "-ranges" {
		got = srv.Ranges.Load()
		args = args[1:]
	}
	if len(args) != 1 {
		ts.Fatalf("usage: requests [-ranges] N")
	}
	want, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	if (got == want) == neg {
		ts.Fatalf("server saw %d requests, want %s%d", got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// waitrequests N: wait (up to a minute) until the server has seen at least N
// requests, so a signal sent next reaches a banger that is mid-download
// rather than one still starting up.
func cmdWaitRequests(ts *testscript.TestScript, neg bool, args []string) {
	srv, ok := stateOf(ts).values["server"].(*bundletest.Server)
	if neg || !ok || len(args) != 1 {
		ts.Fatalf("usage: waitrequests N (after serve)")
	}
	want, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for srv.Requests.Load() < want {
		if time.Now().After(deadline) {
			ts.Fatalf("server saw %d requests after a minute, want %d", srv.Requests.Load(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// catalog OUT NAME=FILE[,key=value]... writes a private catalog. Keys:
// arch, version, sha (override), size (override), sizeof (size of another
// file), url (default
// $SERVER/<file's base name>), distro, desc.
func cmdCatalog(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: catalog OUT NAME=FILE[,key=value]...")
	}
	c := kernelcat.Catalog{Version: 1, Entries: []kernelcat.Entry{}}
	for _, a := range args[1:] {
		name, spec, ok := strings.Cut(a, "=")
		if !ok {
			ts.Fatalf("catalog: bad entry %q", a)
		}
		parts := strings.Split(spec, ",")
		file := ts.MkAbs(parts[0])
		data, err := os.ReadFile(file)
		ts.Check(err)
		e := kernelcat.Entry{
			Name: name, Distro: "test", Arch: "x86_64", KernelVersion: "6.12.5",
			URL: ts.Getenv("SERVER") + "/" + filepath.Base(file), SHA256: bundletest.SHA256(data),
			Size: int64(len(data)), Description: "test kernel " + name,
		}
		for _, kv := range parts[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "arch":
				e.Arch = v
			case "version":
				e.KernelVersion = v
			case "sha":
				e.SHA256 = v
			case "sizeof":
				st, err := os.Stat(ts.MkAbs(v))
				ts.Check(err)
				e.Size = st.Size()
			case "size":
				e.Size, err = strconv.ParseInt(v, 10, 64)
				ts.Check(err)
			case "url":
				e.URL = v
			case "distro":
				e.Distro = v
			case "desc":
				e.Description = v
			default:
				ts.Fatalf("catalog: unknown key %q", k)
			}
		}
		c.Entries = append(c.Entries, e)
	}
	var sb strings.Builder
	ts.Check(writeJSON(&sb, c))
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(sb.String()), 0o644))
}
