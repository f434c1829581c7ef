package codec_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/gust-dev/gust/codec"
)

// secretive is a value that carries a secret when Secret is set.
type secretive struct {
	Name   string
	Secret string
}

func (s secretive) ContainsSecrets() bool { return s.Secret != "" }

func newKey(t testing.TB) codec.Key {
	t.Helper()
	raw := make([]byte, codec.KeySize)
	_, err := rand.Read(raw)
	require.NoError(t, err)
	k, err := codec.NewKey(raw)
	require.NoError(t, err)
	return k
}

func TestRoundTripEncryptsOnlySecrets(t *testing.T) {
	k := newKey(t)
	dc := codec.DataConverter(k)

	in := secretive{Name: "fn", Secret: "sk_live_hunter2"}
	p, err := dc.ToPayload(in)
	require.NoError(t, err)
	require.Equal(t, codec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	require.Equal(t, k.ID(), string(p.Metadata[codec.MetadataKeyID]))
	require.NotContains(t, p.Metadata, codec.MetadataSecret, "the flag travels inside the ciphertext")
	wire, err := proto.Marshal(p)
	require.NoError(t, err)
	require.False(t, bytes.Contains(wire, []byte("hunter2")), "secret in clear")
	require.False(t, bytes.Contains(wire, []byte(`"Name"`)), "an encrypted payload hides its whole JSON")

	var out secretive
	require.NoError(t, dc.FromPayload(p, &out))
	require.Equal(t, in, out)
	require.Contains(t, dc.ToString(p), "hunter2", "a process with the key can show it")

	// A fresh nonce each time: the same value never encrypts the same way.
	p2, err := dc.ToPayload(in)
	require.NoError(t, err)
	require.NotEqual(t, p.Data, p2.Data)

	// ToPayloads marks each value on its own.
	ps, err := dc.ToPayloads(secretive{Name: "a"}, in, "plain")
	require.NoError(t, err)
	require.Len(t, ps.Payloads, 3)
	require.Equal(t, "json/plain", string(ps.Payloads[0].Metadata[converter.MetadataEncoding]))
	require.Equal(t, codec.EncodingEncrypted, string(ps.Payloads[1].Metadata[converter.MetadataEncoding]))
	require.Equal(t, "json/plain", string(ps.Payloads[2].Metadata[converter.MetadataEncoding]))
	var a, b secretive
	var c string
	require.NoError(t, dc.FromPayloads(ps, &a, &b, &c))
	require.Equal(t, in, b)
	require.Equal(t, "plain", c)
}

// Everything that carries no secret must look exactly as the default
// converter writes it, so the Web UI and other SDKs read it as before.
func TestUnmarkedPayloadsAreByteIdentical(t *testing.T) {
	dc := codec.DataConverter(newKey(t))
	def := converter.GetDefaultDataConverter()
	var nilSecretive *secretive
	for _, v := range []any{
		secretive{Name: "no secret"}, nilSecretive, &secretive{Name: "ptr"}, "text", 42, []byte{1, 2, 3},
		map[string]string{"Secret": "not marked, so not a secret"}, nil, struct{ A []int }{[]int{1}},
	} {
		got, err := dc.ToPayload(v)
		require.NoError(t, err)
		want, err := def.ToPayload(v)
		require.NoError(t, err)
		gb, err := proto.Marshal(got)
		require.NoError(t, err)
		wb, err := proto.Marshal(want)
		require.NoError(t, err)
		require.Equal(t, wb, gb, "%#v", v)
	}

	// Decoding leaves a plain payload alone too: the same pointer.
	plain, err := def.ToPayload("x")
	require.NoError(t, err)
	out, err := codec.NewCodec(newKey(t)).Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	require.Same(t, plain, out[0])
}

func TestPointersToSecretCarriersAreMarked(t *testing.T) {
	dc := codec.DataConverter(newKey(t))
	p, err := dc.ToPayload(&secretive{Secret: "s"})
	require.NoError(t, err)
	require.Equal(t, codec.EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
}

func TestTamperingIsAnError(t *testing.T) {
	k, other := newKey(t), newKey(t)
	c := codec.NewCodec(k, other)
	dc := converter.NewCodecDataConverter(codec.Marker(converter.GetDefaultDataConverter()), c)
	fresh := func() *commonpb.Payload {
		p, err := dc.ToPayload(secretive{Secret: "s3cret"})
		require.NoError(t, err)
		return p
	}

	for name, tamper := range map[string]func(p *commonpb.Payload){
		"flipped ciphertext byte": func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 },
		"flipped nonce byte":      func(p *commonpb.Payload) { p.Data[0] ^= 0x80 },
		"flipped tag byte":        func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"truncated":               func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"empty":                   func(p *commonpb.Payload) { p.Data = nil },
		"other configured key id": func(p *commonpb.Payload) { p.Metadata[codec.MetadataKeyID] = []byte(other.ID()) },
	} {
		t.Run(name, func(t *testing.T) {
			p := fresh()
			tamper(p)
			_, err := c.Decode([]*commonpb.Payload{p})
			require.Error(t, err)
			require.True(t, codec.IsCorrupt(err), "%v", err)
			require.NotContains(t, err.Error(), "s3cret")
			var out secretive
			require.Error(t, dc.FromPayload(p, &out))
			require.Empty(t, out.Secret)
		})
	}

	t.Run("unknown key id", func(t *testing.T) {
		p := fresh()
		p.Metadata[codec.MetadataKeyID] = []byte("0011223344556677")
		_, err := c.Decode([]*commonpb.Payload{p})
		require.True(t, codec.IsKeyError(err), "%v", err)
		require.Contains(t, err.Error(), "0011223344556677")
	})
}

func TestRotation(t *testing.T) {
	oldKey, newKey := newKey(t), newKey(t)
	before := codec.DataConverter(oldKey)
	during := codec.DataConverter(newKey, oldKey) // the first encrypts, both decrypt
	after := codec.DataConverter(newKey)

	old, err := before.ToPayload(secretive{Secret: "v1"})
	require.NoError(t, err)
	cur, err := during.ToPayload(secretive{Secret: "v2"})
	require.NoError(t, err)
	require.Equal(t, newKey.ID(), string(cur.Metadata[codec.MetadataKeyID]), "the newest key encrypts")

	var v secretive
	require.NoError(t, during.FromPayload(old, &v))
	require.Equal(t, "v1", v.Secret)
	require.NoError(t, after.FromPayload(cur, &v))
	require.Equal(t, "v2", v.Secret)

	err = after.FromPayload(old, &v)
	require.True(t, codec.IsKeyError(err), "a retired key's payloads need that key: %v", err)
	require.Contains(t, err.Error(), oldKey.ID())
}

func TestMissingKey(t *testing.T) {
	none := codec.DataConverter()

	// Encoding a secret without a key fails, and returns no payload that
	// a careless caller could send anyway.
	p, err := none.ToPayload(secretive{Secret: "s"})
	require.True(t, codec.IsKeyError(err), "%v", err)
	require.Contains(t, err.Error(), "no codec key")
	require.Nil(t, p, "no payload in clear next to the error")
	ps, err := none.ToPayloads("fine", secretive{Secret: "s"})
	require.True(t, codec.IsKeyError(err), "%v", err)
	require.Nil(t, ps)

	// Without a secret a keyless converter works as the default one.
	p, err = none.ToPayload(secretive{Name: "x"})
	require.NoError(t, err)
	var v secretive
	require.NoError(t, none.FromPayload(p, &v))

	// Decoding an encrypted payload without the key is a clear error,
	// not garbage.
	enc, err := codec.DataConverter(newKey(t)).ToPayload(secretive{Secret: "s"})
	require.NoError(t, err)
	err = none.FromPayload(enc, &v)
	require.True(t, codec.IsKeyError(err), "%v", err)
	require.Contains(t, err.Error(), "no codec key is configured")
	require.Contains(t, none.ToString(enc), "no codec key is configured")

	// The default converter, which knows no codec, refuses it too.
	require.Error(t, converter.GetDefaultDataConverter().FromPayload(enc, &v))
}

func TestKeyNeverPrintsItsBytes(t *testing.T) {
	raw := bytes.Repeat([]byte{0xAB}, codec.KeySize)
	k, err := codec.NewKey(raw)
	require.NoError(t, err)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		s := fmt.Sprintf(verb, k)
		require.Equal(t, "codec key "+k.ID(), s, verb)
		s = fmt.Sprintf(verb, []codec.Key{k})
		require.NotContains(t, s, "abab", verb)
		require.NotContains(t, s, "171", verb)
	}
	same, err := codec.NewKey(raw)
	require.NoError(t, err)
	require.Equal(t, k.ID(), same.ID(), "the id is a function of the key")
	require.Len(t, k.ID(), 16)

	_, err = codec.NewKey(raw[:16])
	require.ErrorContains(t, err, "32 bytes")
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, codec.KeyFileName)

	k, created, err := codec.EnsureKeyFile(path)
	require.NoError(t, err)
	require.True(t, created)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.EqualValues(t, codec.KeySize, st.Size())

	again, created, err := codec.EnsureKeyFile(path)
	require.NoError(t, err)
	require.False(t, created, "kept across restarts")
	require.Equal(t, k.ID(), again.ID())
	loaded, err := codec.LoadKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, k.ID(), loaded.ID())

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file left behind")

	bad := filepath.Join(dir, "short.key")
	require.NoError(t, os.WriteFile(bad, []byte("0123456789abcdef0123456789abcdef\n"), 0o600))
	_, err = codec.LoadKeyFile(bad)
	require.ErrorContains(t, err, "exactly 32 bytes")
	_, _, err = codec.EnsureKeyFile(bad)
	require.Error(t, err, "an existing bad file is never replaced")
	_, err = codec.LoadKeyFile(filepath.Join(dir, "missing.key"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestEnsureKeyFileRaceAgreesOnOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), codec.KeyFileName)
	const n = 8
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, err := codec.EnsureKeyFile(path)
			if err == nil {
				ids[i] = k.ID()
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		require.Equal(t, ids[0], id)
	}
	require.NotEmpty(t, ids[0])
}

func BenchmarkEncodeDecode(b *testing.B) {
	dc := codec.DataConverter(newKey(b))
	in := secretive{Name: "fn", Secret: string(bytes.Repeat([]byte("x"), 4096))}
	var out secretive
	for b.Loop() {
		p, err := dc.ToPayload(in)
		if err != nil {
			b.Fatal(err)
		}
		if err := dc.FromPayload(p, &out); err != nil {
			b.Fatal(err)
		}
	}
}
