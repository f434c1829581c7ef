package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// KeySize is the size of a codec key: AES-256.
const KeySize = 32

// KeyFileName is the key file's name in a gust state directory.
const KeyFileName = "codec.key"

// Key is one AES-256-GCM codec key. It holds the cipher, not the key
// bytes, and prints as its id only, so it cannot leak through a log line.
type Key struct {
	id   string
	aead cipher.AEAD
}

// NewKey makes a key of KeySize raw bytes. Its id is derived from the key
// (an HMAC, which reveals nothing about it), so the same key has the same
// id in every process and needs no separate configuration.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("codec key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return Key{}, fmt.Errorf("codec key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return Key{}, fmt.Errorf("codec key: %w", err)
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte("gust codec key id v1"))
	return Key{id: hex.EncodeToString(mac.Sum(nil)[:8]), aead: aead}, nil
}

// ID is the key's public id, as payload metadata names it.
func (k Key) ID() string { return k.id }

// String, GoString and Format print the id only.
func (k Key) String() string             { return "codec key " + k.id }
func (k Key) GoString() string           { return k.String() }
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LoadKeyFile reads a key file: exactly KeySize raw bytes.
func LoadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("reading codec key: %w", err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return Key{}, fmt.Errorf("reading codec key %s: %w", path, err)
	}
	defer clear(raw)
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("codec key file %s must hold exactly %d bytes (e.g. head -c %d /dev/urandom), not %d", path, KeySize, KeySize, len(raw))
	}
	return NewKey(raw)
}

// EnsureKeyFile loads the key at path, or creates one there if there is
// none: KeySize random bytes, mode 0600, written to a temporary file and
// linked into place, so the file is never seen half written and two
// processes racing to create it agree on one key. created reports whether
// this call made it.
func EnsureKeyFile(path string) (k Key, created bool, err error) {
	k, err = LoadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	raw := make([]byte, KeySize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, false, fmt.Errorf("generating codec key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".codec-key-*")
	if err != nil {
		return Key{}, false, fmt.Errorf("creating codec key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil { // CreateTemp already uses 0600; be explicit
		tmp.Close()
		return Key{}, false, fmt.Errorf("creating codec key: %w", err)
	}
	_, werr := tmp.Write(raw)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return Key{}, false, fmt.Errorf("writing codec key: %w", err)
	}
	// Link, unlike rename, never replaces a key another process created
	// meanwhile: losing the race means using the winner's key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err = LoadKeyFile(path)
			return k, false, err
		}
		return Key{}, false, fmt.Errorf("creating codec key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync() // the new name survives a crash
		d.Close()
	}
	k, err = NewKey(raw)
	return k, err == nil, err
}
