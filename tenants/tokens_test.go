package tenants

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// currentKey reads a tenant's current signing key, as only a test may.
func currentKey(t *testing.T, r *Registry, tenant string) (kid string, secret []byte) {
	t.Helper()
	if err := r.db.QueryRow(`SELECT kid, secret FROM signing_keys WHERE tenant = ? AND expires = 0`, tenant).Scan(&kid, &secret); err != nil {
		t.Fatal(err)
	}
	return kid, secret
}

// forge builds a JWT from raw header and claims, signed HS256 with key
// (no signature when key is nil).
func forge(header, claims map[string]any, key []byte) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	s := enc(header) + "." + enc(claims)
	if key == nil {
		return s + "."
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	for _, n := range []string{"acme", "beta"} {
		if _, err := r.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}

	tok, err := r.IssueToken(ctx, "acme", "customer 7", "resize", 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	want := TokenClaims{Tenant: "acme", SubTenant: "customer 7", Function: "resize", IssuedAt: epoch, Expires: epoch.Add(30 * time.Minute)}
	if got != want {
		t.Fatalf("claims = %+v, want %+v", got, want)
	}
	// The token is a standard JWT: HS256, kid, iss, sub, tenant, fn.
	parsed, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := currentKey(t, r, "acme")
	mc := parsed.Claims.(jwt.MapClaims)
	if parsed.Header["alg"] != "HS256" || parsed.Header["kid"] != kid || mc["iss"] != "gust" || mc["sub"] != "customer 7" ||
		mc["tenant"] != "acme" || mc["fn"] != "resize" {
		t.Fatalf("token header %v claims %v", parsed.Header, mc)
	}

	// Without a function, and the default TTL.
	noFn, err := r.IssueToken(ctx, "acme", "s2", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.VerifyToken(ctx, noFn); err != nil || got.Function != "" || got.Expires != epoch.Add(time.Hour) {
		t.Fatalf("token without fn: %+v %v", got, err)
	}

	for _, bad := range []struct {
		tenant, sub, fn string
		ttl             time.Duration
	}{
		{"acme", "s", "", 24*time.Hour + time.Second},
		{"acme", "s", "", -time.Second},
		{"acme", "", "", 0},
		{"acme", "bad\nsub", "", 0},
		{"acme", strings.Repeat("s", 257), "", 0},
		{"acme", "s", "bad/fn", 0},
	} {
		if _, err := r.IssueToken(ctx, bad.tenant, bad.sub, bad.fn, bad.ttl); !IsInvalid(err) {
			t.Errorf("IssueToken(%q, %q, %q, %s): %v, want ErrInvalid", bad.tenant, bad.sub, bad.fn, bad.ttl, err)
		}
	}
	if _, err := r.IssueToken(ctx, "nobody", "s", "", 0); !IsNotFound(err) {
		t.Errorf("IssueToken(nobody): %v", err)
	}

	_, acmeKey := currentKey(t, r, "acme")
	betaKid, betaKey := currentKey(t, r, "beta")
	claims := func() map[string]any {
		return map[string]any{"iss": "gust", "tenant": "acme", "sub": "s1", "iat": epoch.Unix(), "exp": epoch.Add(time.Hour).Unix()}
	}
	hdr := func(alg, k string) map[string]any { return map[string]any{"alg": alg, "typ": "JWT", "kid": k} }
	parts := strings.Split(tok, ".")
	flip := func(s string) string { // changes a middle character: the decoded bytes change
		i := len(s) / 2
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	otherSub := strings.Replace(string(payload), `"customer 7"`, `"customer 8"`, 1)

	invalid := map[string]string{
		"tampered payload":   parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(otherSub)) + "." + parts[2],
		"tampered signature": parts[0] + "." + parts[1] + "." + flip(parts[2]),
		"no signature":       parts[0] + "." + parts[1] + ".",
		"alg none":           forge(hdr("none", kid), claims(), nil),
		"RS256 header":       forge(hdr("RS256", kid), claims(), acmeKey),
		"HS512 header":       forge(hdr("HS512", kid), claims(), acmeKey),
		"unknown kid":        forge(hdr("HS256", "gk-000000000000000000000000"), claims(), acmeKey),
		"no kid":             forge(map[string]any{"alg": "HS256", "typ": "JWT"}, claims(), acmeKey),
		// beta signs a token claiming acme with its own key.
		"other tenant's kid": forge(hdr("HS256", betaKid), claims(), betaKey),
		"wrong issuer": forge(hdr("HS256", kid), func() map[string]any {
			c := claims()
			c["iss"] = "evil"
			return c
		}(), acmeKey),
		"no exp": forge(hdr("HS256", kid), func() map[string]any {
			c := claims()
			delete(c, "exp")
			return c
		}(), acmeKey),
		"no sub": forge(hdr("HS256", kid), func() map[string]any {
			c := claims()
			delete(c, "sub")
			return c
		}(), acmeKey),
		"issued in the future": forge(hdr("HS256", kid), func() map[string]any {
			c := claims()
			c["iat"] = epoch.Add(time.Minute).Unix()
			return c
		}(), acmeKey),
		"garbage":  "not.a.token",
		"empty":    "",
		"too long": strings.Repeat("a", 9000),
	}
	for name, s := range invalid {
		if _, err := r.VerifyToken(ctx, s); !IsTokenInvalid(err) || IsTokenExpired(err) {
			t.Errorf("%s: %v, want an invalid-token error", name, err)
		}
	}
	// A correctly forged token with the right key verifies: the cases
	// above fail for the reason they name, not for the forging.
	if got, err := r.VerifyToken(ctx, forge(hdr("HS256", kid), claims(), acmeKey)); err != nil || got.SubTenant != "s1" {
		t.Fatalf("control token: %+v %v", got, err)
	}
	// beta's key verifies a token claiming beta.
	betaClaims := claims()
	betaClaims["tenant"] = "beta"
	if _, err := r.VerifyToken(ctx, forge(hdr("HS256", betaKid), betaClaims, betaKey)); err != nil {
		t.Fatalf("beta control token: %v", err)
	}

	// Expiry.
	c.Add(30 * time.Minute)
	if _, err := r.VerifyToken(ctx, tok); !IsTokenExpired(err) || IsTokenInvalid(err) {
		t.Fatalf("expired token: %v", err)
	}
	if _, err := r.VerifyToken(ctx, noFn); err != nil {
		t.Fatalf("token with time left: %v", err)
	}
}

func TestRotateSigningKey(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	r.Create(ctx, "acme")
	oldKid, _ := currentKey(t, r, "acme")
	old, err := r.IssueToken(ctx, "acme", "s1", "", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.RotateSigningKey(ctx, "acme", time.Hour); err != nil {
		t.Fatal(err)
	}
	newKid, _ := currentKey(t, r, "acme")
	if newKid == oldKid {
		t.Fatal("rotation kept the kid")
	}
	fresh, err := r.IssueToken(ctx, "acme", "s1", "", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if p, _, _ := jwt.NewParser().ParseUnverified(fresh, jwt.MapClaims{}); p.Header["kid"] != newKid {
		t.Fatalf("new token signed by %v, want %s", p.Header["kid"], newKid)
	}
	c.Add(59 * time.Minute)
	for _, tk := range []string{old, fresh} {
		if _, err := r.VerifyToken(ctx, tk); err != nil {
			t.Fatalf("within grace: %v", err)
		}
	}
	c.Add(time.Minute)
	if _, err := r.VerifyToken(ctx, old); !IsTokenInvalid(err) {
		t.Fatalf("old key after grace: %v", err)
	}
	if _, err := r.VerifyToken(ctx, fresh); err != nil {
		t.Fatalf("new key after grace: %v", err)
	}
	if err := r.RotateSigningKey(ctx, "acme", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := r.VerifyToken(ctx, fresh); !IsTokenInvalid(err) {
		t.Fatalf("rotation without grace: %v", err)
	}
	if err := r.RotateSigningKey(ctx, "nobody", 0); !IsNotFound(err) {
		t.Fatalf("RotateSigningKey(nobody): %v", err)
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	r, _, _ := newRegistry(b)
	r.Create(context.Background(), "acme")
	tok, err := r.IssueToken(context.Background(), "acme", "s1", "fn", 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.VerifyToken(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
