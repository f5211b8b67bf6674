package kubetest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
)

// Version is the Kubernetes release the tests run against.
const Version = "v1.37.2"

// APIServerEnv names a kube-apiserver binary to use instead of the cached
// build of scripts/build-control-plane.sh.
const APIServerEnv = "BANGER_KUBE_APISERVER"

var apiserverPath = sync.OnceValues(func() (string, error) {
	if p := os.Getenv(APIServerEnv); p != "" {
		return p, nil
	}
	// The script prints the cache directory last; it builds only when the
	// binary is missing there (about 20 minutes on 2 cores), once even
	// when several test binaries ask at the same time.
	cmd := exec.CommandContext(context.Background(), filepath.Join(repoRoot(), "scripts", "build-control-plane.sh"), "--version", Version)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", &buildError{err: err, stderr: stderr.String()}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return filepath.Join(lines[len(lines)-1], "kube-apiserver"), nil
})

type buildError struct {
	err    error
	stderr string
}

func (e *buildError) Error() string {
	s := e.stderr
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return "scripts/build-control-plane.sh: " + e.err.Error() + "\n" + s
}

// apiserver returns the kube-apiserver binary, building it if needed.
func apiserver() (string, error) {
	p, err := apiserverPath()
	if err != nil {
		return "", fmt.Errorf("kube-apiserver %s: %w", Version, err)
	}
	return p, nil
}

// etcd returns Debian's etcd (package etcd-server).
func etcd() (string, error) {
	p, err := exec.LookPath("etcd")
	if err != nil {
		return "", fmt.Errorf("etcd: %w (hint: apt-get install etcd-server, or run scripts/install-deps.sh)", err)
	}
	return p, nil
}

// repoRoot is the checkout this file is in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	// file is <repo>/internal/kubetest/binary.go.
	return filepath.Join(filepath.Dir(file), "..", "..")
}
