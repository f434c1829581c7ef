package tenants

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/gust-dev/gust/tenants/sigv4"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var epoch = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func openAt(t testing.TB, path string, c *clock) *Registry {
	t.Helper()
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	r.now = c.Now
	t.Cleanup(func() { r.Close() })
	return r
}

func newRegistry(t testing.TB) (*Registry, *clock, string) {
	t.Helper()
	c := &clock{t: epoch}
	path := filepath.Join(t.TempDir(), "tenants.db")
	return openAt(t, path, c), c, path
}

// signedRequest is a Lambda Invoke signed by the SDK at the given time,
// as a server reads it off the wire.
func signedRequest(t testing.TB, creds Credentials, at time.Time) (*http.Request, []byte) {
	t.Helper()
	body := []byte(`{"n":1}`)
	r, err := http.NewRequest("POST", "http://127.0.0.1:4567/2015-03-31/functions/fn/invocations", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("X-Amz-Tenant-Id", "sub-1")
	sum := sha256.Sum256(body)
	ac := aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), ac, r, hex.EncodeToString(sum[:]), "lambda", "us-east-1", at); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, b
}

func authenticate(t testing.TB, r *Registry, creds Credentials, at time.Time) (Principal, error) {
	t.Helper()
	req, body := signedRequest(t, creds, at)
	p, _, err := r.Authenticate(req, body)
	return p, err
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tenants.db")
	c := &clock{t: epoch}
	r := openAt(t, path, c)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("registry file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := r.Create(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Reopening keeps the data.
	r2 := openAt(t, path, c)
	if _, err := r2.Get(context.Background(), "acme"); err != nil {
		t.Fatalf("after reopen: %v", err)
	}

	// A file that is not a registry is refused with a clear error.
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, bytes.Repeat([]byte("not sqlite "), 1000), 0o600)
	if _, err := Open(garbage); err == nil || !strings.Contains(err.Error(), "not a gust tenant registry") {
		t.Fatalf("Open(garbage) = %v", err)
	}
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE functions (name TEXT)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(other); err == nil || !strings.Contains(err.Error(), "not a gust tenant registry") {
		t.Fatalf("Open(other sqlite db) = %v", err)
	}
	// A looser mode is tightened: the file holds secrets.
	os.Chmod(path, 0o644)
	openAt(t, path, c)
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after reopen %v, want 0600", fi.Mode().Perm())
	}
}

var (
	longTermKeyRE = regexp.MustCompile(`^AKIA[A-Z2-7]{16}$`)
	tempKeyRE     = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)
)

func TestCreateGetListDelete(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	acme, err := r.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if acme.Tenant != "acme" || acme.AccountID != AccountID("acme") || !longTermKeyRE.MatchString(acme.AccessKeyID) ||
		len(acme.SecretAccessKey) != 40 || acme.SessionToken != "" || !acme.Expiration.IsZero() {
		t.Fatalf("Create = %#v / %q", acme, acme.AccessKeyID)
	}
	c.Add(time.Second)
	if _, err := r.Create(ctx, "Beta_2"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(ctx, "acme"); !IsExists(err) {
		t.Fatalf("duplicate Create: %v", err)
	}
	for _, bad := range []string{"", "-x", "_x", "a/b", "a b", "a.b", "../x", strings.Repeat("a", 65), "000000000000", "é"} {
		if _, err := r.Create(ctx, bad); !IsInvalid(err) {
			t.Errorf("Create(%q): %v, want ErrInvalid", bad, err)
		}
	}

	info, err := r.Get(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "acme" || info.AccountID != AccountID("acme") || !info.Created.Equal(epoch) ||
		!info.LastUsed.IsZero() || len(info.Keys) != 1 || info.Keys[0].AccessKeyID != acme.AccessKeyID {
		t.Fatalf("Get = %+v", info)
	}
	if _, err := r.Get(ctx, "nobody"); !IsNotFound(err) {
		t.Fatalf("Get(nobody): %v", err)
	}
	list, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "Beta_2" || list[1].Name != "acme" || len(list[1].Keys) != 1 {
		t.Fatalf("List = %+v", list)
	}
	if s := fmt.Sprintf("%+v", list); strings.Contains(s, acme.SecretAccessKey) {
		t.Fatal("List holds a secret")
	}
	got, err := r.Credentials(ctx, "acme")
	if err != nil || got != acme {
		t.Fatalf("Credentials = %v, %v; want %v", got, err, acme)
	}
	if _, err := r.Credentials(ctx, "nobody"); !IsNotFound(err) {
		t.Fatalf("Credentials(nobody): %v", err)
	}

	if err := r.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := r.Delete(ctx, "acme"); !IsNotFound(err) {
		t.Fatalf("second Delete: %v", err)
	}
	if _, err := r.Get(ctx, "acme"); !IsNotFound(err) {
		t.Fatalf("Get after Delete: %v", err)
	}
	for _, table := range []string{"access_keys", "sessions", "signing_keys"} {
		var n int
		r.db.QueryRow(`SELECT count(*) FROM ` + table + ` WHERE tenant = 'acme'`).Scan(&n)
		if n != 0 {
			t.Errorf("%d rows of acme left in %s", n, table)
		}
	}
	// The name can be created again, with new keys.
	again, err := r.Create(ctx, "acme")
	if err != nil || again.AccessKeyID == acme.AccessKeyID {
		t.Fatalf("Create after Delete: %v, %v", again, err)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	c := Credentials{Tenant: "acme", AccountID: "123456789012", AccessKeyID: "ASIAEXAMPLE",
		SecretAccessKey: "s3cr3t-VALUE-0123456789", SessionToken: "tok3n-VALUE-abcdef", Expiration: epoch}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("creds", "c", c)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("creds", "c", c)
	outs := []string{logged.String(), c.String(), c.GoString()}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T %v"} {
		outs = append(outs, fmt.Sprintf(verb, c))
	}
	outs = append(outs, fmt.Sprint([]Credentials{c}), fmt.Sprintf("%v", &c), fmt.Errorf("wrap %v", c).Error())
	for _, s := range outs {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, "tok3n") || strings.Contains(s, hex.EncodeToString([]byte("s3cr3t"))) {
			t.Errorf("formatted credentials leak a secret: %s", s)
		}
	}
	if !strings.Contains(c.String(), "ASIAEXAMPLE") {
		t.Errorf("String hides the key id too: %s", c)
	}
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	acme, err := r.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	p, err := authenticate(t, r, acme, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p != (Principal{Tenant: "acme", AccessKeyID: acme.AccessKeyID}) {
		t.Fatalf("principal = %+v", p)
	}
	if p.AccountID() != AccountID("acme") || p.ARN() != "arn:aws:iam::"+AccountID("acme")+":root" {
		t.Fatalf("principal account/ARN = %s %s", p.AccountID(), p.ARN())
	}

	wrong := acme
	// Always another first character: "x" alone would leave 1 secret in
	// 64 as it was.
	first := "x"
	if acme.SecretAccessKey[0] == 'x' {
		first = "y"
	}
	wrong.SecretAccessKey = first + acme.SecretAccessKey[1:]
	if _, err := authenticate(t, r, wrong, c.Now()); !sigv4.IsBadSignature(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	unknown := acme
	unknown.AccessKeyID = "AKIAAAAAAAAAAAAAAAAA"
	if _, err := authenticate(t, r, unknown, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := authenticate(t, r, acme, c.Now().Add(-6*time.Minute)); !sigv4.IsExpired(err) {
		t.Fatalf("old signature: %v", err)
	}

	// The platform's key authenticates as the platform, never a tenant.
	plat, err := r.PlatformCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if plat.Tenant != "" || plat.AccountID != PlatformAccountID || !longTermKeyRE.MatchString(plat.AccessKeyID) {
		t.Fatalf("PlatformCredentials = %v", plat)
	}
	p, err = authenticate(t, r, plat, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p != (Principal{AccessKeyID: plat.AccessKeyID, Platform: true}) || p.AccountID() != "" {
		t.Fatalf("platform principal = %+v", p)
	}
	again, err := r.PlatformCredentials(ctx)
	if err != nil || again != plat {
		t.Fatalf("PlatformCredentials not stable: %v %v", again, err)
	}
	if list, _ := r.List(ctx); len(list) != 1 {
		t.Fatalf("the platform shows up as a tenant: %+v", list)
	}
}

func TestLastUsed(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	acme, _ := r.Create(ctx, "acme")
	c.Add(time.Hour)
	if _, err := authenticate(t, r, acme, c.Now()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := r.Get(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if info.LastUsed.Equal(epoch.Add(time.Hour)) && info.Keys[0].LastUsed.Equal(epoch.Add(time.Hour)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last use not recorded: %+v", info)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Within the minute, a use records nothing new.
	c.Add(30 * time.Second)
	if _, err := authenticate(t, r, acme, c.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if info, _ := r.Get(ctx, "acme"); !info.LastUsed.Equal(epoch.Add(time.Hour)) {
		t.Fatalf("last use rewritten within a minute: %v", info.LastUsed)
	}
}

func TestRotateKey(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	old, _ := r.Create(ctx, "acme")
	c.Add(time.Minute)
	rotated, err := r.RotateKey(ctx, "acme", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.AccessKeyID == old.AccessKeyID || rotated.SecretAccessKey == old.SecretAccessKey {
		t.Fatal("RotateKey returned the old key")
	}
	if cur, _ := r.Credentials(ctx, "acme"); cur != rotated {
		t.Fatalf("Credentials after rotate = %v, want the new key", cur)
	}
	info, _ := r.Get(ctx, "acme")
	if len(info.Keys) != 2 || !info.Keys[0].Expires.Equal(c.Now().Add(time.Hour)) || !info.Keys[1].Expires.IsZero() {
		t.Fatalf("keys after rotate: %+v", info.Keys)
	}

	// Within the grace period both keys work.
	c.Add(59 * time.Minute)
	for _, k := range []Credentials{old, rotated} {
		if _, err := authenticate(t, r, k, c.Now()); err != nil {
			t.Fatalf("key %s within grace: %v", k.AccessKeyID, err)
		}
	}
	// A second rotation keeps the old key's earlier expiry.
	third, err := r.RotateKey(ctx, "acme", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// After it the old key fails, even from the warm cache.
	c.Add(time.Minute)
	if _, err := authenticate(t, r, old, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("old key after grace: %v", err)
	}
	for _, k := range []Credentials{rotated, third} {
		if _, err := authenticate(t, r, k, c.Now()); err != nil {
			t.Fatalf("key %s: %v", k.AccessKeyID, err)
		}
	}

	// Grace 0 stops the older keys at once.
	fourth, err := r.RotateKey(ctx, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []Credentials{rotated, third} {
		if _, err := authenticate(t, r, k, c.Now()); !sigv4.IsUnknownKey(err) {
			t.Fatalf("key %s after rotate with no grace: %v", k.AccessKeyID, err)
		}
	}
	if _, err := authenticate(t, r, fourth, c.Now()); err != nil {
		t.Fatal(err)
	}
	if info, _ := r.Get(ctx, "acme"); len(info.Keys) != 1 || info.Keys[0].AccessKeyID != fourth.AccessKeyID {
		t.Fatalf("keys after rotate with no grace: %+v", info.Keys)
	}
	if _, err := r.RotateKey(ctx, "nobody", 0); !IsNotFound(err) {
		t.Fatalf("RotateKey(nobody): %v", err)
	}
	if _, err := r.RotateKey(ctx, "acme", -time.Second); !IsInvalid(err) {
		t.Fatalf("negative grace: %v", err)
	}
}

// TestSecondProcess opens the file twice, as two gust processes would:
// a delete or a rotation through one stops keys through the other at
// once (within syncEvery, a millisecond), although the other's cache is
// warm.
func TestSecondProcess(t *testing.T) {
	ctx := context.Background()
	a, c, path := newRegistry(t)
	b := openAt(t, path, c)
	settle := func() { time.Sleep(syncEvery + time.Millisecond) }
	acme, err := a.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	settle()
	beta, _ := a.Create(ctx, "beta")
	for i := 0; i < 3; i++ { // warm b's cache
		if _, err := authenticate(t, b, acme, c.Now()); err != nil {
			t.Fatalf("b authenticates a's new tenant: %v", err)
		}
	}
	tok, err := a.IssueToken(ctx, "acme", "s1", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.VerifyToken(ctx, tok); err != nil {
		t.Fatal(err)
	}

	// Rotation without grace in a: the old key fails in b at once.
	rotated, err := a.RotateKey(ctx, "acme", 0)
	if err != nil {
		t.Fatal(err)
	}
	settle()
	if _, err := authenticate(t, b, acme, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("b after rotation in a: %v", err)
	}
	if _, err := authenticate(t, b, rotated, c.Now()); err != nil {
		t.Fatalf("b with the rotated key: %v", err)
	}

	// Delete in b: a refuses at once.
	if _, err := authenticate(t, a, beta, c.Now()); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	settle()
	if _, err := authenticate(t, a, rotated, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("a after delete in b: %v", err)
	}
	if _, err := a.VerifyToken(ctx, tok); !IsTokenInvalid(err) {
		t.Fatalf("token of a deleted tenant: %v", err)
	}
	if _, err := authenticate(t, a, beta, c.Now()); err != nil {
		t.Fatalf("another tenant after the delete: %v", err)
	}
}

func TestConcurrentOpenAndCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.db")
	c := &clock{t: epoch}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := Open(path)
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			r.now = c.Now
			for j := 0; j < 5; j++ {
				if _, err := r.Create(context.Background(), fmt.Sprintf("t%d-%d", i, j)); err != nil {
					errs <- err
					return
				}
			}
			if _, err := r.PlatformCredentials(context.Background()); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r := openAt(t, path, c)
	if list, _ := r.List(context.Background()); len(list) != 20 {
		t.Fatalf("%d tenants, want 20", len(list))
	}
	var n int
	r.db.QueryRow(`SELECT count(*) FROM access_keys WHERE tenant = ''`).Scan(&n)
	if n != 1 {
		t.Fatalf("%d platform keys, want 1", n)
	}
}

func TestAssumeRole(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	acme, _ := r.Create(ctx, "acme")
	if _, err := r.Create(ctx, "beta"); err != nil {
		t.Fatal(err)
	}
	plat, _ := r.PlatformCredentials(ctx)
	platform, err := authenticate(t, r, plat, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	tenant, err := authenticate(t, r, acme, c.Now())
	if err != nil {
		t.Fatal(err)
	}

	creds, err := r.AssumeRole(ctx, platform, PlatformRoleARN("acme"), "gust-worker", 0)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Tenant != "acme" || creds.AccountID != AccountID("acme") || !tempKeyRE.MatchString(creds.AccessKeyID) ||
		len(creds.SecretAccessKey) != 40 || len(creds.SessionToken) < 64 || !creds.Expiration.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("AssumeRole = %v", creds)
	}
	p, err := authenticate(t, r, creds, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := Principal{Tenant: "acme", AccessKeyID: creds.AccessKeyID, RoleARN: PlatformRoleARN("acme"), SessionName: "gust-worker"}
	if p != want {
		t.Fatalf("session principal = %+v, want %+v", p, want)
	}
	if p.ARN() != "arn:aws:sts::"+AccountID("acme")+":assumed-role/gust-platform/gust-worker" {
		t.Fatalf("session ARN = %s", p.ARN())
	}
	noToken := creds
	noToken.SessionToken = ""
	if _, err := authenticate(t, r, noToken, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("session without token: %v", err)
	}
	badToken := creds
	badToken.SessionToken = creds.SessionToken[:len(creds.SessionToken)-2] + "AA"
	if _, err := authenticate(t, r, badToken, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("session with a wrong token: %v", err)
	}
	withToken := acme
	withToken.SessionToken = creds.SessionToken
	if _, err := authenticate(t, r, withToken, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("long-term key with a session token: %v", err)
	}

	denied := []struct {
		name   string
		caller Principal
		arn    string
	}{
		{"tenant caller, own role", tenant, PlatformRoleARN("acme")},
		{"tenant caller, other tenant's role", tenant, PlatformRoleARN("beta")},
		{"session caller (no chaining)", p, PlatformRoleARN("beta")},
		{"platform flag with a tenant", Principal{Tenant: "acme", Platform: true}, PlatformRoleARN("beta")},
		{"unauthenticated zero principal", Principal{}, PlatformRoleARN("acme")},
		{"unknown tenant's role", platform, PlatformRoleARN("nobody")},
		{"other role in the account", platform, "arn:aws:iam::" + AccountID("acme") + ":role/admin"},
		{"role path", platform, "arn:aws:iam::" + AccountID("acme") + ":role/x/gust-platform"},
		{"platform account", platform, PlatformRoleARN("000000000000")},
		{"case changed", platform, strings.ToUpper(PlatformRoleARN("acme"))},
		{"suffix", platform, PlatformRoleARN("acme") + "x"},
		{"garbage", platform, "acme"},
	}
	for _, d := range denied {
		if _, err := r.AssumeRole(ctx, d.caller, d.arn, "s1", 0); !IsAccessDenied(err) {
			t.Errorf("%s: %v, want ErrAccessDenied", d.name, err)
		}
	}
	// Denials do not tell an unknown tenant from a forbidden one.
	_, e1 := r.AssumeRole(ctx, platform, PlatformRoleARN("nobody"), "s1", 0)
	_, e2 := r.AssumeRole(ctx, tenant, PlatformRoleARN("beta"), "s1", 0)
	if e1.Error() != e2.Error() {
		t.Errorf("denials differ: %q vs %q", e1, e2)
	}

	for _, d := range []time.Duration{time.Minute, 15*time.Minute - 1, 12*time.Hour + 1, -time.Hour} {
		if _, err := r.AssumeRole(ctx, platform, PlatformRoleARN("acme"), "s1", d); !IsInvalid(err) {
			t.Errorf("duration %s: %v, want ErrInvalid", d, err)
		}
	}
	for _, n := range []string{"", "a", "has space", "slash/no", strings.Repeat("a", 65), "é1"} {
		if _, err := r.AssumeRole(ctx, platform, PlatformRoleARN("acme"), n, 0); !IsInvalid(err) {
			t.Errorf("session name %q: %v, want ErrInvalid", n, err)
		}
	}
	short, err := r.AssumeRole(ctx, platform, PlatformRoleARN("beta"), "w+=,.@-_1", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Expiry: the session stops working at its Expiration, and is removed.
	c.Add(15 * time.Minute)
	if _, err := authenticate(t, r, short, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("expired session: %v", err)
	}
	if _, err := authenticate(t, r, creds, c.Now()); err != nil {
		t.Fatalf("live session: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		r.db.QueryRow(`SELECT count(*) FROM sessions WHERE access_key_id = ?`, short.AccessKeyID).Scan(&n)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired session not removed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Deleting the tenant ends its sessions at once.
	if err := r.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(t, r, creds, c.Now()); !sigv4.IsUnknownKey(err) {
		t.Fatalf("session of a deleted tenant: %v", err)
	}
}

func TestErrorsHoldNoSecrets(t *testing.T) {
	ctx := context.Background()
	r, c, _ := newRegistry(t)
	acme, _ := r.Create(ctx, "acme")
	wrong := acme
	wrong.SecretAccessKey = strings.ToLower(acme.SecretAccessKey)
	_, err := authenticate(t, r, wrong, c.Now())
	if err == nil || strings.Contains(err.Error(), acme.SecretAccessKey) || strings.Contains(err.Error(), wrong.SecretAccessKey) {
		t.Fatalf("error: %v", err)
	}
	if _, err := r.Create(ctx, "acme"); err == nil || strings.Contains(err.Error(), acme.SecretAccessKey) {
		t.Fatalf("error: %v", err)
	}
}

func BenchmarkAuthenticate(b *testing.B) {
	r, c, _ := newRegistry(b)
	acme, err := r.Create(context.Background(), "acme")
	if err != nil {
		b.Fatal(err)
	}
	req, body := signedRequest(b, acme, c.Now())
	if _, _, err := r.Authenticate(req, body); err != nil { // warm the cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := r.Authenticate(req, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAuthenticateParallel(b *testing.B) {
	r, c, _ := newRegistry(b)
	acme, err := r.Create(context.Background(), "acme")
	if err != nil {
		b.Fatal(err)
	}
	req, body := signedRequest(b, acme, c.Now())
	if _, _, err := r.Authenticate(req, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := r.Authenticate(req, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var _ = errors.New
