package sshkey

import (
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// privateLine returns the authorized_keys line (without comment) derived
// from the private key on disk.
func privateLine(t *testing.T, kp KeyPair) string {
	t.Helper()
	priv, err := os.ReadFile(kp.PrivatePath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
}

// assertPairMatches checks that kp.Public and the .pub file both carry the
// public half of the private key on disk, in the " banger" comment format.
func assertPairMatches(t *testing.T, kp KeyPair) {
	t.Helper()
	want := privateLine(t, kp) + " banger\n"
	if kp.Public != want {
		t.Fatalf("Public %q does not match the private key (%q)", kp.Public, want)
	}
	pub, err := os.ReadFile(kp.PublicPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(pub) != want {
		t.Fatalf("%s holds %q, which does not match the private key (%q)", kp.PublicPath, pub, want)
	}
}

func TestEnsureCreatesOnceAndParses(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	start := make(chan struct{})
	kps := make([]KeyPair, 16)
	for i := range kps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			kp, err := Ensure(dir)
			if err != nil {
				t.Error(err)
				return
			}
			kps[i] = kp
		}()
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	kp, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertPairMatches(t, kp)
	for _, k := range kps {
		if k.Public != kp.Public {
			t.Fatalf("concurrent Ensure returned different keys: %q and %q", k.Public, kp.Public)
		}
	}
	st, _ := os.Stat(kp.PrivatePath)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
}

// A first run stopped after linking the private key but before the public
// one: the next run must complete the pair from the private key that is
// there, not pair it with a freshly generated public key.
func TestEnsureCompletesInterruptedPair(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(first.PublicPath); err != nil {
		t.Fatal(err)
	}
	kp, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertPairMatches(t, kp)
	if kp.Public != first.Public {
		t.Fatalf("the key changed: %q, was %q", kp.Public, first.Public)
	}
}

// A .pub left by an older banger that does not match the private key is
// rewritten from the private key, which is what banger logs in with.
func TestEnsureRepairsMismatchedPublicKey(t *testing.T) {
	dir := t.TempDir()
	first, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Ensure(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(first.PublicPath, []byte(other.Public), 0o644); err != nil {
		t.Fatal(err)
	}
	kp, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	assertPairMatches(t, kp)
	if kp.Public != first.Public {
		t.Fatalf("the key changed: %q, was %q", kp.Public, first.Public)
	}
}
