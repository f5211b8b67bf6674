// Package sshkey keeps banger's own SSH key pair, which built images trust
// for root and which banger uses to reach its guests.
package sshkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// KeyPair locates banger's key pair on disk.
type KeyPair struct {
	PrivatePath string // OpenSSH private key, mode 0600
	PublicPath  string // authorized_keys line
	Public      string // the authorized_keys line itself, newline-terminated
}

// Ensure returns the key pair kept in dir, generating an ed25519 pair the
// first time. Generation is atomic: a concurrent or interrupted call never
// leaves half a key behind.
func Ensure(dir string) (KeyPair, error) {
	kp := KeyPair{PrivatePath: filepath.Join(dir, "id_ed25519"), PublicPath: filepath.Join(dir, "id_ed25519.pub")}
	if pub, err := os.ReadFile(kp.PublicPath); err == nil {
		if _, err := os.Stat(kp.PrivatePath); err == nil {
			kp.Public = string(pub)
			return kp, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return KeyPair{}, fmt.Errorf("reading banger's SSH public key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KeyPair{}, fmt.Errorf("creating SSH key directory: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return KeyPair{}, fmt.Errorf("generating SSH key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "banger")
	if err != nil {
		return KeyPair{}, fmt.Errorf("encoding SSH private key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return KeyPair{}, fmt.Errorf("encoding SSH public key: %w", err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " banger\n"
	// Private key first, public key last: the public key's presence marks
	// a complete pair. os.Link fails if another process won the race.
	if err := writeNew(kp.PrivatePath, pem.EncodeToMemory(block), 0o600); err != nil {
		return KeyPair{}, err
	}
	if err := writeNew(kp.PublicPath, []byte(line), 0o644); err != nil {
		return KeyPair{}, err
	}
	pubData, err := os.ReadFile(kp.PublicPath)
	if err != nil {
		return KeyPair{}, fmt.Errorf("reading banger's SSH public key: %w", err)
	}
	kp.Public = string(pubData)
	return kp, nil
}

// writeNew writes data to a temp file and links it to path unless path
// already exists (then the existing file wins).
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Link(f.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
