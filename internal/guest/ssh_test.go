package guest

import (
	"crypto/ed25519"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestQuoteArgs runs the quoted words through a real shell and checks
// that each arrives as one argument, unchanged.
func TestQuoteArgs(t *testing.T) {
	for _, args := range [][]string{
		{"echo", "plain"},
		{"printf", "%s|", "two words", "it's", `back\slash`, "$HOME", "", "*", "a;b", "\"q\""},
	} {
		out, err := exec.Command("sh", "-c", "printf '[%s]' "+QuoteArgs(args[1:])).Output()
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, a := range args[1:] {
			want.WriteString("[" + a + "]")
		}
		if string(out) != want.String() {
			t.Errorf("QuoteArgs(%q) through sh gave %q, want %q", args[1:], out, want.String())
		}
	}
	if got := CommandLine([]string{"ls | wc -l"}); got != "ls | wc -l" {
		t.Errorf("a single word must pass as is, got %q", got)
	}
}

// TestHostKeyPinning: the first key is recorded, the same key is
// accepted later, another key is refused.
func TestHostKeyPinning(t *testing.T) {
	newKey := func() ssh.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ssh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	s := &SSH{KnownHosts: filepath.Join(t.TempDir(), "known_hosts")}
	first, other := newKey(), newKey()
	if err := s.checkHostKey("", nil, first); err != nil {
		t.Fatalf("first key: %v", err)
	}
	if err := s.checkHostKey("", nil, first); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	err := s.checkHostKey("", nil, other)
	if err == nil || !strings.Contains(err.Error(), "host key changed") {
		t.Fatalf("another key: %v; want a host key change error", err)
	}
}
