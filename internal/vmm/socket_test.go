package vmm

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSocketPath(t *testing.T) {
	if err := CheckSocketPath("API socket", "/"+strings.Repeat("s", MaxSocketPath-1)); err != nil {
		t.Errorf("a %d-byte path: %v", MaxSocketPath, err)
	}
	err := CheckSocketPath("API socket", "/"+strings.Repeat("s", MaxSocketPath))
	if err == nil || !strings.Contains(err.Error(), "API socket path /s") || !strings.Contains(err.Error(), "108 bytes, longer than the 107 bytes") ||
		!errors.As(err, new(*SocketPathError)) {
		t.Errorf("a %d-byte path: %v", MaxSocketPath+1, err)
	}
}

// TestClearStaleSocket: a socket something listens on is refused, one
// nobody listens on any more is removed, a missing one is fine.
func TestClearStaleSocket(t *testing.T) {
	ctx := context.Background()
	sock := filepath.Join(t.TempDir(), "s.sock")
	if err := ClearStaleSocket(ctx, "test socket", sock); err != nil {
		t.Fatalf("missing socket: %v", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	if err := ClearStaleSocket(ctx, "test socket", sock); err == nil || !strings.Contains(err.Error(), "test socket "+sock+" is in use") {
		t.Errorf("live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(sock); err != nil {
		t.Fatal(err)
	}
	if err := ClearStaleSocket(ctx, "test socket", sock); err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("stale socket not removed: %v", err)
	}
}
