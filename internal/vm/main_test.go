package vm

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/thaloco/banger/internal/guesttest"
	"github.com/thaloco/banger/internal/paths"
	"github.com/thaloco/banger/internal/sshkey"
)

// shared holds what the tests of this package reuse: one kernels
// directory with the test kernel installed as "test", one SSH key pair,
// and the test root filesystems.
var shared struct {
	once    sync.Once
	dir     string
	kernels string
	ssh     string
	plain   string // busybox, no SSH server
	sshd    string // busybox + dropbear trusting the shared key
	panics  string // init exits at once: the kernel panics
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// setup prepares the shared files once.
func setup(t testing.TB) {
	t.Helper()
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "banger-vm-test-")
		if err != nil {
			t.Fatal(err)
		}
		shared.dir = dir
		shared.kernels = filepath.Join(dir, "kernels")
		guesttest.InstallKernel(t, shared.kernels, "test")
		shared.ssh = filepath.Join(dir, "ssh")
		kp, err := sshkey.Ensure(shared.ssh)
		if err != nil {
			t.Fatal(err)
		}
		shared.plain = filepath.Join(dir, "plain.ext4")
		guesttest.BuildRootfs(t, shared.plain, guesttest.Rootfs{})
		shared.sshd = filepath.Join(dir, "sshd.ext4")
		guesttest.BuildRootfs(t, shared.sshd, guesttest.Rootfs{AuthorizedKey: kp.Public,
			Init: "echo 'hello from the guest' > /srv.txt; busybox httpd -p 8080 -h /"})
		shared.panics = filepath.Join(dir, "panics.ext4")
		guesttest.BuildRootfs(t, shared.panics, guesttest.Rootfs{Init: "echo dying; exit 1"})
	})
	if shared.sshd == "" {
		t.Fatal("shared test files could not be prepared (see the first failing test)")
	}
}

// newStore is a store in a fresh state directory that uses the shared
// kernels and SSH key. env is its environment.
func newStore(t testing.TB, env map[string]string) *Store {
	t.Helper()
	setup(t)
	state := t.TempDir()
	if err := os.CopyFS(filepath.Join(state, "ssh"), os.DirFS(shared.ssh)); err != nil {
		t.Fatal(err)
	}
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env[AccelEnv]; !ok {
		env[AccelEnv] = "" // detect: TCG here, KVM on hosts that have it
	}
	s := NewWithOptions(paths.Layout{State: state, KernelsDir: shared.kernels}, Options{
		Getenv: func(k string) string { return env[k] },
		Logf:   func(format string, args ...any) { t.Logf("banger: "+format, args...) },
	})
	t.Cleanup(func() { killAll(s) })
	return s
}

// killAll kills the VMMs a test left running, so no QEMU outlives it.
func killAll(s *Store) {
	ls, _ := s.List()
	for _, l := range ls {
		if l.VM != nil && l.VM.State.PID != 0 {
			_ = l.VM.State.Process().Kill(0)
		}
	}
}
