package sshkey

import (
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestEnsureCreatesOnceAndParses(t *testing.T) {
	dir := t.TempDir()
	var wg sync.WaitGroup
	pubs := make([]string, 8)
	for i := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kp, err := Ensure(dir)
			if err != nil {
				t.Error(err)
				return
			}
			pubs[i] = kp.Public
		}()
	}
	wg.Wait()
	kp, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pubs {
		if p != kp.Public {
			t.Fatalf("concurrent Ensure returned different keys")
		}
	}
	priv, err := os.ReadFile(kp.PrivatePath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))); !strings.HasPrefix(kp.Public, got) {
		t.Fatalf("public key %q does not match private key %q", kp.Public, got)
	}
	st, _ := os.Stat(kp.PrivatePath)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
}
