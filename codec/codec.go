// Package codec keeps secrets out of Temporal's histories: a payload codec
// that encrypts, with AES-256-GCM, exactly the payloads that carry secrets
// (a function's environment variables), and leaves every other payload
// byte for byte as the default data converter wrote it, so the Web UI stays
// readable.
//
// A value is secret when it implements SecretCarrier and says so. The
// Marker converter flags its payload (MetadataSecret); the Codec encrypts
// flagged payloads and decrypts encrypted ones. DataConverter puts the two
// together for clients and workers. Every process that starts, runs or
// reads a secret-carrying workflow needs the same keys; a process without
// one refuses to encode a secret (it never sends it in clear) and reports
// an encrypted payload it cannot read as a KeyError.
//
// Its JSON decoding also reads the payloads gust wrote before its message
// structs had JSON tags (LegacyJSONPayloadConverter), so workflows in
// flight across that change, and recorded histories, decode as they did.
//
// Nothing here imports the Temporal server.
package codec

import (
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Payload metadata.
const (
	// MetadataSecret flags a payload that the Codec must encrypt. It is
	// set by Marker and travels inside the ciphertext, never in clear.
	MetadataSecret = "gust-secret"
	// EncodingEncrypted is the encoding of an encrypted payload, as in
	// Temporal's encryption samples.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted a payload.
	MetadataKeyID = "encryption-key-id"
)

// SecretCarrier is implemented by the messages that may carry secrets.
// ContainsSecrets reports whether this value does; it must not panic on a
// zero value.
type SecretCarrier interface {
	ContainsSecrets() bool
}

// DataConverter is Temporal's default data converter with secret-carrying
// values encrypted under keys: keys[0] encrypts, any of them decrypts.
// With no keys it still refuses to encode a secret, so a misconfigured
// process fails instead of writing a secret to history in clear. It
// decodes with JSONDataConverter, so payloads written before the message
// structs had JSON tags still read right.
func DataConverter(keys ...Key) converter.DataConverter {
	return noClearOnError{converter.NewCodecDataConverter(Marker(JSONDataConverter()), NewCodec(keys...))}
}

// noClearOnError drops the payload that converter.CodecDataConverter
// returns next to an encoding error: that is the payload before the codec
// ran, secret in clear, and no caller should be able to send it.
type noClearOnError struct{ converter.DataConverter }

func (c noClearOnError) ToPayload(value any) (*commonpb.Payload, error) {
	p, err := c.DataConverter.ToPayload(value)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (c noClearOnError) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	ps, err := c.DataConverter.ToPayloads(values...)
	if err != nil {
		return nil, err
	}
	return ps, nil
}

// Marker wraps parent so that the payload of every value whose
// ContainsSecrets reports true carries MetadataSecret. It changes nothing
// else: other payloads are exactly parent's.
func Marker(parent converter.DataConverter) converter.DataConverter {
	return marker{parent}
}

type marker struct{ converter.DataConverter }

func (m marker) ToPayload(value any) (*commonpb.Payload, error) {
	p, err := m.DataConverter.ToPayload(value)
	if err != nil || p == nil || !carriesSecrets(value) {
		return p, err
	}
	if p.Metadata == nil {
		p.Metadata = map[string][]byte{}
	}
	p.Metadata[MetadataSecret] = []byte("true")
	return p, nil
}

func (m marker) ToPayloads(values ...any) (*commonpb.Payloads, error) {
	if len(values) == 0 {
		return nil, nil
	}
	out := &commonpb.Payloads{}
	for i, v := range values {
		p, err := m.ToPayload(v)
		if err != nil {
			return nil, fmt.Errorf("values[%d]: %w", i, err)
		}
		out.Payloads = append(out.Payloads, p)
	}
	return out, nil
}

// carriesSecrets asks value, treating a nil pointer as no secret (calling
// a value-receiver method through it would panic).
func carriesSecrets(value any) bool {
	sc, ok := value.(SecretCarrier)
	if !ok {
		return false
	}
	if v := reflect.ValueOf(value); v.Kind() == reflect.Pointer && v.IsNil() {
		return false
	}
	return sc.ContainsSecrets()
}

// Codec is a converter.PayloadCodec that encrypts payloads flagged with
// MetadataSecret and decrypts payloads encoded EncodingEncrypted; all other
// payloads pass through untouched (the same pointers). It is safe for
// concurrent use.
type Codec struct {
	keys []Key // keys[0] encrypts
	byID map[string]Key
}

// NewCodec returns a codec that encrypts with keys[0] and decrypts with
// any of keys. Duplicate keys are harmless; zero Keys are ignored.
func NewCodec(keys ...Key) *Codec {
	c := &Codec{byID: make(map[string]Key, len(keys))}
	for _, k := range keys {
		if k.aead == nil {
			continue
		}
		c.keys = append(c.keys, k)
		c.byID[k.id] = k
	}
	return c
}

// KeyIDs lists the configured key ids, the encrypting key first.
func (c *Codec) KeyIDs() []string {
	ids := make([]string, len(c.keys))
	for i, k := range c.keys {
		ids[i] = k.id
	}
	return ids
}

// Encode encrypts every flagged payload. Errors: a *KeyError when a flagged
// payload must be encrypted and the codec has no key (nothing is returned
// then, so no caller can send the clear text by mistake).
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || p.Metadata[MetadataSecret] == nil || string(p.Metadata[converter.MetadataEncoding]) == EncodingEncrypted {
			out[i] = p
			continue
		}
		if len(c.keys) == 0 {
			return nil, &KeyError{Op: "encrypt"}
		}
		enc, err := c.keys[0].seal(p)
		if err != nil {
			return nil, err
		}
		out[i] = enc
	}
	return out, nil
}

// Decode decrypts every encrypted payload with the key its metadata names.
// Errors: a *KeyError when that key is not configured; a
// *CorruptPayloadError when the payload fails authentication (tampered
// with, truncated, or its key id changed) or does not hold a payload.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if p == nil || string(p.Metadata[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.Metadata[MetadataKeyID])
		k, ok := c.byID[id]
		if !ok {
			return nil, &KeyError{Op: "decrypt", KeyID: id, Configured: len(c.keys)}
		}
		dec, err := k.open(p)
		if err != nil {
			return nil, err
		}
		out[i] = dec
	}
	return out, nil
}

// seal encrypts the whole payload, metadata included, under a fresh
// random nonce. The key id is authenticated as additional data.
func (k Key) seal(p *commonpb.Payload) (*commonpb.Payload, error) {
	plain, err := proto.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("codec: marshalling payload: %w", err)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("codec: reading a nonce: %w", err)
	}
	data := k.aead.Seal(nonce, nonce, plain, additionalData(k.id))
	clear(plain)
	return &commonpb.Payload{
		Metadata: map[string][]byte{
			converter.MetadataEncoding: []byte(EncodingEncrypted),
			MetadataKeyID:              []byte(k.id),
		},
		Data: data,
	}, nil
}

func (k Key) open(p *commonpb.Payload) (*commonpb.Payload, error) {
	ns := k.aead.NonceSize()
	if len(p.Data) < ns+k.aead.Overhead() {
		return nil, &CorruptPayloadError{KeyID: k.id, Reason: "too short"}
	}
	plain, err := k.aead.Open(nil, p.Data[:ns], p.Data[ns:], additionalData(k.id))
	if err != nil {
		return nil, &CorruptPayloadError{KeyID: k.id, Reason: "authentication failed (tampered with, or encrypted under another key)"}
	}
	var dec commonpb.Payload
	if err := proto.Unmarshal(plain, &dec); err != nil {
		return nil, &CorruptPayloadError{KeyID: k.id, Reason: "not a payload"}
	}
	clear(plain)
	return &dec, nil
}

// additionalData binds a ciphertext to its format and key id.
func additionalData(keyID string) []byte {
	return []byte("gust-codec-v1/" + keyID)
}

// KeyError is a payload that could not be encrypted or decrypted because
// the right key is not configured.
type KeyError struct {
	Op string // "encrypt" or "decrypt"
	// KeyID is the key the encrypted payload names (decrypt only).
	KeyID string
	// Configured is how many keys this process has (decrypt only).
	Configured int
}

func (e *KeyError) Error() string {
	switch {
	case e.Op == "encrypt":
		return "codec: a payload carries secrets and no codec key is configured to encrypt it"
	case e.Configured == 0:
		return fmt.Sprintf("codec: a payload is encrypted (key id %s) and no codec key is configured", e.KeyID)
	default:
		return fmt.Sprintf("codec: a payload is encrypted with key id %s, which is not among the %d configured codec keys", e.KeyID, e.Configured)
	}
}

// IsKeyError reports whether err is, or wraps, a *KeyError.
func IsKeyError(err error) bool {
	var ke *KeyError
	return errors.As(err, &ke)
}

// CorruptPayloadError is an encrypted payload that does not decrypt under
// the key it names.
type CorruptPayloadError struct {
	KeyID  string
	Reason string
}

func (e *CorruptPayloadError) Error() string {
	return fmt.Sprintf("codec: encrypted payload (key id %s) is invalid: %s", e.KeyID, e.Reason)
}

// IsCorrupt reports whether err is, or wraps, a *CorruptPayloadError.
func IsCorrupt(err error) bool {
	var ce *CorruptPayloadError
	return errors.As(err, &ce)
}
