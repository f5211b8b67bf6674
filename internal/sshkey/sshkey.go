// Package sshkey keeps banger's own SSH key pair, which built images trust
// for root and which banger uses to reach its guests.
package sshkey

import (
	"bytes"
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
// first time. The private key is the truth: it appears whole or not at all
// (the first of racing callers wins), and the public key line is always
// derived from it, so an interrupted or concurrent first run, or a stale
// .pub, never leaves a pair that does not match.
func Ensure(dir string) (KeyPair, error) {
	kp := KeyPair{PrivatePath: filepath.Join(dir, "id_ed25519"), PublicPath: filepath.Join(dir, "id_ed25519.pub")}
	privPEM, err := os.ReadFile(kp.PrivatePath)
	if errors.Is(err, fs.ErrNotExist) {
		if err := generate(dir, kp.PrivatePath); err != nil {
			return KeyPair{}, err
		}
		privPEM, err = os.ReadFile(kp.PrivatePath)
	}
	if err != nil {
		return KeyPair{}, fmt.Errorf("reading banger's SSH private key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(privPEM)
	if err != nil {
		return KeyPair{}, fmt.Errorf("parsing banger's SSH private key %s: %w (hint: remove it and %s; banger makes a new pair, and images built before must be rebuilt)", kp.PrivatePath, err, filepath.Base(kp.PublicPath))
	}
	kp.Public = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " banger\n"
	if err := ensurePublic(kp.PublicPath, signer.PublicKey(), kp.Public); err != nil {
		return KeyPair{}, err
	}
	return kp, nil
}

// generate makes a new ed25519 private key at path unless one is already
// there (then the existing one wins).
func generate(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating SSH key directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generating SSH key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "banger")
	if err != nil {
		return fmt.Errorf("encoding SSH private key: %w", err)
	}
	return writeFile(path, pem.EncodeToMemory(block), 0o600, false)
}

// ensurePublic makes path hold line unless it already holds the same key.
func ensurePublic(path string, key ssh.PublicKey, line string) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading banger's SSH public key: %w", err)
	}
	if err == nil {
		if have, _, _, _, perr := ssh.ParseAuthorizedKey(data); perr == nil && bytes.Equal(have.Marshal(), key.Marshal()) {
			return nil
		}
	}
	// Missing, or stale: racing callers all write the same line.
	return writeFile(path, []byte(line), 0o644, true)
}

// writeFile writes data to a temp file beside path, flushes it, and then
// either renames it over path (replace) or links it to path unless path
// already exists (then the existing file wins).
func writeFile(path string, data []byte, mode os.FileMode, replace bool) error {
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
	if replace {
		err = os.Rename(f.Name(), path)
	} else if err = os.Link(f.Name(), path); errors.Is(err, fs.ErrExist) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
