package ec2

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Key pairs. The local cloud keeps only the public half: CreateKeyPair
// answers the private key once and forgets it, as EC2 does. Fingerprints
// follow EC2 for created keys (SHA-1 of the PKCS#8 private key for RSA,
// SHA-256 of the public key for ed25519); an imported key's fingerprint
// is the MD5 (RSA, ECDSA) or SHA-256 (ed25519) of its OpenSSH public key
// blob, a simplification of EC2's MD5 of the DER public key.

// maxKeyPairsPerAccount is EC2's default quota.
const maxKeyPairsPerAccount = 5000

type keyPair struct {
	name, id, keyType, fingerprint, publicKey string
	tags                                      map[string]string
	createdNs                                 int64
}

// loadKeyPair returns the account's key pair, or InvalidKeyPair.NotFound.
func loadKeyPair(ctx context.Context, tx *sql.Tx, acct, name string) (*keyPair, error) {
	k := &keyPair{}
	var tags string
	err := tx.QueryRowContext(ctx, `SELECT name, id, key_type, fingerprint, public_key, tags, created_ns FROM key_pairs WHERE account = ? AND name = ?`,
		acct, name).Scan(&k.name, &k.id, &k.keyType, &k.fingerprint, &k.publicKey, &tags, &k.createdNs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiErrorf(codeKeyPairNotFound, "The key pair '%s' does not exist", name)
	}
	if err != nil {
		return nil, fmt.Errorf("reading key pair, %w", err)
	}
	_ = json.Unmarshal([]byte(tags), &k.tags)
	return k, nil
}

// checkKeyName applies EC2's rule: 1 to 255 ASCII characters.
func checkKeyName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return apiErrorf(codeInvalidParameterValue, "Key name must be 1 to %d ASCII characters", maxNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r > 0x7e {
			return apiErrorf(codeInvalidParameterValue, "Key name must be 1 to %d ASCII characters", maxNameLen)
		}
	}
	return nil
}

// sshString appends an SSH wire-format string.
func sshString(b *bytes.Buffer, s []byte) {
	_ = binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

func sshMpint(b *bytes.Buffer, n *big.Int) {
	v := n.Bytes()
	if len(v) > 0 && v[0]&0x80 != 0 {
		v = append([]byte{0}, v...)
	}
	sshString(b, v)
}

// generateKey makes a key pair of keyType: the private key in the format
// EC2 answers (PEM for RSA, OpenSSH for ed25519), the public key as an
// authorized_keys line, and EC2's fingerprint.
func generateKey(keyType, name string) (private, public, fingerprint string, err error) {
	var blob bytes.Buffer
	switch keyType {
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return "", "", "", err
		}
		sshString(&blob, []byte("ssh-rsa"))
		sshMpint(&blob, big.NewInt(int64(k.E)))
		sshMpint(&blob, k.N)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return "", "", "", err
		}
		sum := sha1.Sum(der)
		private = string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
		return private, "ssh-rsa " + base64.StdEncoding.EncodeToString(blob.Bytes()) + " " + name, colonHex(sum[:]), nil
	case "ed25519":
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return "", "", "", err
		}
		sshString(&blob, []byte("ssh-ed25519"))
		sshString(&blob, pub)
		// The openssh-key-v1 container, unencrypted.
		var body bytes.Buffer
		var check [4]byte
		_, _ = rand.Read(check[:])
		body.Write(check[:])
		body.Write(check[:])
		sshString(&body, []byte("ssh-ed25519"))
		sshString(&body, pub)
		sshString(&body, priv)
		sshString(&body, []byte(name))
		for i := byte(1); body.Len()%8 != 0; i++ {
			body.WriteByte(i)
		}
		var out bytes.Buffer
		out.WriteString("openssh-key-v1\x00")
		sshString(&out, []byte("none"))
		sshString(&out, []byte("none"))
		sshString(&out, nil)
		_ = binary.Write(&out, binary.BigEndian, uint32(1))
		sshString(&out, blob.Bytes())
		sshString(&out, body.Bytes())
		private = string(pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PRIVATE KEY", Bytes: out.Bytes()}))
		sum := sha256.Sum256(blob.Bytes())
		return private, "ssh-ed25519 " + base64.StdEncoding.EncodeToString(blob.Bytes()) + " " + name, base64.StdEncoding.EncodeToString(sum[:]), nil
	}
	return "", "", "", apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for KeyType: expecting rsa or ed25519", keyType)
}

func colonHex(b []byte) string {
	h := hex.EncodeToString(b)
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// parsePublicKey checks that material is an OpenSSH public key line
// (ssh-rsa, ssh-ed25519 or ecdsa-sha2-nistp*), as EC2's ImportKeyPair
// requires, and returns its type, the normalized line and fingerprint.
func parsePublicKey(material []byte) (keyType, line, fingerprint string, err error) {
	bad := apiErrorf(codeKeyFormat, "Key is not in valid OpenSSH public key format")
	fields := strings.Fields(string(material))
	if len(fields) < 2 || len(material) > 16<<10 {
		return "", "", "", bad
	}
	blob, err := base64.StdEncoding.DecodeString(fields[1])
	if err != nil || len(blob) < 4 {
		return "", "", "", bad
	}
	// The blob's first field repeats the key type.
	n := binary.BigEndian.Uint32(blob)
	if uint64(n)+4 > uint64(len(blob)) || string(blob[4:4+n]) != fields[0] {
		return "", "", "", bad
	}
	rest := blob[4+n:]
	switch fields[0] {
	case "ssh-rsa":
		keyType = "rsa"
		// e and n follow; n must be a plausible modulus.
		var parts [][]byte
		for len(parts) < 2 {
			if len(rest) < 4 {
				return "", "", "", bad
			}
			m := binary.BigEndian.Uint32(rest)
			if uint64(m)+4 > uint64(len(rest)) {
				return "", "", "", bad
			}
			parts = append(parts, rest[4:4+m])
			rest = rest[4+m:]
		}
		if bits := new(big.Int).SetBytes(parts[1]).BitLen(); bits < 1024 || bits > 16384 {
			return "", "", "", apiErrorf(codeKeyFormat, "RSA keys must be 1024 to 16384 bits, got %d", bits)
		}
		sum := md5.Sum(blob)
		fingerprint = colonHex(sum[:])
	case "ssh-ed25519":
		keyType = "ed25519"
		if len(rest) != 4+ed25519.PublicKeySize || binary.BigEndian.Uint32(rest) != ed25519.PublicKeySize {
			return "", "", "", bad
		}
		sum := sha256.Sum256(blob)
		fingerprint = base64.StdEncoding.EncodeToString(sum[:])
	case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521":
		keyType = "rsa" // EC2 reports only rsa and ed25519 types
		if len(rest) < 8 {
			return "", "", "", bad
		}
		sum := md5.Sum(blob)
		fingerprint = colonHex(sum[:])
	default:
		return "", "", "", bad
	}
	return keyType, strings.Join(fields, " "), fingerprint, nil
}

func (c *Cloud) createKeyPair(ctx context.Context, acct string, p params, w *xmlWriter) error {
	name, err := p.required("KeyName")
	if err != nil {
		return err
	}
	if err := checkKeyName(name); err != nil {
		return err
	}
	keyType := p.get("KeyType")
	if keyType == "" {
		keyType = "rsa"
	}
	if f := p.get("KeyFormat"); f != "" && f != "pem" {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for KeyFormat: only pem is supported here", f)
	}
	tags, err := p.tags("TagSpecification", "key-pair")
	if err != nil {
		return err
	}
	private, public, fp, err := generateKey(keyType, name)
	if err != nil {
		return err
	}
	k := &keyPair{name: name, id: newID("key-"), keyType: keyType, fingerprint: fp, publicKey: public, tags: tags}
	if err := c.storeKeyPair(ctx, acct, k); err != nil {
		return err
	}
	w.text("keyName", k.name)
	w.text("keyFingerprint", k.fingerprint)
	w.text("keyMaterial", private)
	w.text("keyPairId", k.id)
	w.tagSet(tags)
	return nil
}

func (c *Cloud) importKeyPair(ctx context.Context, acct string, p params, w *xmlWriter) error {
	name, err := p.required("KeyName")
	if err != nil {
		return err
	}
	if err := checkKeyName(name); err != nil {
		return err
	}
	enc, err := p.required("PublicKeyMaterial")
	if err != nil {
		return err
	}
	material, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// The CLI v1 sends the file as is; accept a key line unencoded.
		material = []byte(enc)
	}
	keyType, line, fp, err := parsePublicKey(material)
	if err != nil {
		return err
	}
	tags, err := p.tags("TagSpecification", "key-pair")
	if err != nil {
		return err
	}
	k := &keyPair{name: name, id: newID("key-"), keyType: keyType, fingerprint: fp, publicKey: line, tags: tags}
	if err := c.storeKeyPair(ctx, acct, k); err != nil {
		return err
	}
	w.text("keyName", k.name)
	w.text("keyFingerprint", k.fingerprint)
	w.text("keyPairId", k.id)
	w.tagSet(tags)
	return nil
}

func (c *Cloud) storeKeyPair(ctx context.Context, acct string, k *keyPair) error {
	tagJSON, _ := json.Marshal(k.tags)
	return c.write(ctx, func(tx *sql.Tx) error {
		k.createdNs = c.cfg.Now().UnixNano()
		var n int
		var dup bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(name = ?), 0) FROM key_pairs WHERE account = ?`, k.name, acct).Scan(&n, &dup); err != nil {
			return fmt.Errorf("counting key pairs, %w", err)
		}
		if dup {
			return apiErrorf(codeKeyPairDuplicate, "The keypair '%s' already exists.", k.name)
		}
		if n >= maxKeyPairsPerAccount {
			return apiErrorf(codeResourceLimitExceeded, "The maximum number of key pairs (%d) has been reached.", maxKeyPairsPerAccount)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO key_pairs (account, name, id, key_type, fingerprint, public_key, tags, created_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, acct, k.name, k.id, k.keyType, k.fingerprint, k.publicKey, string(tagJSON), k.createdNs)
		if err != nil {
			return fmt.Errorf("storing key pair, %w", err)
		}
		return nil
	})
}

func (c *Cloud) describeKeyPairs(ctx context.Context, acct string, p params, w *xmlWriter) error {
	names, ids := p.list("KeyName"), p.list("KeyPairId")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	for _, f := range filters {
		switch f.Name {
		case "key-name", "key-pair-id", "fingerprint", "key-type":
		default:
			if !strings.HasPrefix(f.Name, "tag:") {
				return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
			}
		}
	}
	includePublic := p.get("IncludePublicKey") == "true"
	var list []*keyPair
	err = c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM key_pairs WHERE account = ? ORDER BY name`, acct)
		if err != nil {
			return fmt.Errorf("listing key pairs, %w", err)
		}
		var all []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return fmt.Errorf("listing key pairs, %w", err)
			}
			all = append(all, n)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("listing key pairs, %w", err)
		}
		for _, n := range names {
			if !contains(all, n) {
				return apiErrorf(codeKeyPairNotFound, "The key pair '%s' does not exist", n)
			}
		}
		for _, n := range all {
			k, err := loadKeyPair(ctx, tx, acct, n)
			if err != nil {
				return err
			}
			list = append(list, k)
		}
		if id, ok := missingID(ids, list, func(k *keyPair) string { return k.id }); ok {
			return apiErrorf(codeKeyPairNotFound, "The key pair '%s' does not exist", id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.open("keySet")
	for _, k := range list {
		if (len(names) > 0 || len(ids) > 0) && !contains(names, k.name) && !contains(ids, k.id) {
			continue
		}
		show := true
		for _, f := range filters {
			switch key, isTag := strings.CutPrefix(f.Name, "tag:"); {
			case isTag:
				v, ok := k.tags[key]
				show = show && ok && contains(f.Values, v)
			case f.Name == "key-name":
				show = show && contains(f.Values, k.name)
			case f.Name == "key-pair-id":
				show = show && contains(f.Values, k.id)
			case f.Name == "fingerprint":
				show = show && contains(f.Values, k.fingerprint)
			case f.Name == "key-type":
				show = show && contains(f.Values, k.keyType)
			}
		}
		if !show {
			continue
		}
		w.open("item")
		w.text("keyPairId", k.id)
		w.text("keyName", k.name)
		w.text("keyFingerprint", k.fingerprint)
		w.text("keyType", k.keyType)
		if includePublic {
			w.text("publicKey", k.publicKey)
		}
		w.time("createTime", time.Unix(0, k.createdNs))
		w.tagSet(k.tags)
		w.close("item")
	}
	w.close("keySet")
	return nil
}

// deleteKeyPair deletes by name or id; deleting a key pair that does not
// exist succeeds, as on EC2.
func (c *Cloud) deleteKeyPair(ctx context.Context, acct string, p params, w *xmlWriter) error {
	name, id := p.get("KeyName"), p.get("KeyPairId")
	if name == "" && id == "" {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter KeyName or KeyPairId")
	}
	var deleted string
	err := c.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM key_pairs WHERE account = ? AND (name = ? OR id = ?) RETURNING id`, acct, name, id).Scan(&deleted)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	w.bool("return", true)
	if deleted != "" {
		w.text("keyPairId", deleted)
	}
	return nil
}
