package lambda_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/tenants"
)

// signed is what recordingProxy saw of one request: who signed it, for
// which service, and for STS the role it asked for.
type signed struct {
	Service, AccessKeyID, RoleARN string
	SessionToken                  bool
}

type recorder struct {
	mu   sync.Mutex
	reqs []signed
}

func (r *recorder) since(n int) []signed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]signed(nil), r.reqs[n:]...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// recordingProxy forwards to target, recording who signed each request
// (the Host header is kept, so signatures still verify).
func recordingProxy(t *testing.T, target string) (string, *recorder) {
	u, err := url.Parse(target)
	require.NoError(t, err)
	rp := httputil.NewSingleHostReverseProxy(u)
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		_, cred, _ := strings.Cut(r.Header.Get("Authorization"), "Credential=")
		scope := strings.Split(strings.SplitN(cred, ",", 2)[0], "/")
		s := signed{AccessKeyID: scope[0], SessionToken: r.Header.Get("X-Amz-Security-Token") != ""}
		if len(scope) == 5 {
			s.Service = scope[3]
		}
		if s.Service == "sts" {
			form, _ := url.ParseQuery(string(body))
			s.RoleARN = form.Get("RoleArn")
		}
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, s)
		rec.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, rec
}

// plainProcesses keeps these tests light: isolation is not what they test.
func plainProcesses(c *lc.Config) { c.Isolation = lc.IsolationNone; c.WarmSandboxes = -1 }

func proxiedProvider(t *testing.T, endpoint string, key tenants.Credentials) *lambda.Provider {
	cfg := aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")}
	return lambda.New(cfg, lambda.Options{Endpoint: endpoint, Roles: platformRoles})
}

// TestEachTenantSignsWithItsAssumedRole: the platform's key only calls STS;
// each tenant's Lambda calls are signed with that tenant's temporary
// credentials, assumed once and then reused.
func TestEachTenantSignsWithItsAssumedRole(t *testing.T) {
	ctx := context.Background()
	srv := startLocal(t, plainProcesses)
	key, err := srv.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	endpoint, rec := recordingProxy(t, srv.Endpoint())
	p := proxiedProvider(t, endpoint, key)

	keys := map[string]string{}
	for _, tenant := range localTenants {
		mark := rec.len()
		deploy(t, p, tenant, "echo", nil)
		_, err := p.Invoke(ctx, providers.InvokeInput{Tenant: tenant, Function: "echo", SubTenant: "s", Payload: []byte(`{}`)})
		require.NoError(t, err)
		_, err = p.Environments(ctx, tenant, "echo") // signed by the provider itself, not the SDK client
		require.NoError(t, err)

		reqs := rec.since(mark)
		require.Greater(t, len(reqs), 3)
		assert.Equal(t, signed{Service: "sts", AccessKeyID: key.AccessKeyID, RoleARN: tenants.PlatformRoleARN(tenant)}, reqs[0],
			"the tenant's role is assumed first, with the platform's key")
		for _, r := range reqs[1:] {
			assert.Equal(t, "lambda", r.Service, "one AssumeRole per tenant: %+v", reqs)
			assert.True(t, strings.HasPrefix(r.AccessKeyID, "ASIA"), r.AccessKeyID)
			assert.True(t, r.SessionToken)
			assert.Equal(t, reqs[1].AccessKeyID, r.AccessKeyID, "one tenant, one set of credentials")
		}
		keys[tenant] = reqs[1].AccessKeyID
	}
	assert.NotEqual(t, keys["acme"], keys["globex"])

	// Back to acme: its cached credentials, no new AssumeRole.
	mark := rec.len()
	_, err = p.Get(ctx, "acme", "echo")
	require.NoError(t, err)
	assert.Equal(t, []signed{{Service: "lambda", AccessKeyID: keys["acme"], SessionToken: true}}, rec.since(mark))
}

func TestUnknownTenantIsNotFound(t *testing.T) {
	ctx := context.Background()
	srv := startLocal(t, plainProcesses)
	key, err := srv.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	endpoint, rec := recordingProxy(t, srv.Endpoint())
	p := proxiedProvider(t, endpoint, key)

	_, err = p.Get(ctx, "nobody", "f")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.Contains(t, err.Error(), "tenant nobody")
	_, err = p.List(ctx, "nobody")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	for _, r := range rec.since(0) {
		assert.Equal(t, "sts", r.Service, "nothing but AssumeRole is sent for an unknown tenant")
	}

	// A tenant's own key is not the platform's: it may not assume roles.
	acme, err := srv.Registry().Credentials(ctx, "acme")
	require.NoError(t, err)
	_, err = proxiedProvider(t, endpoint, acme).Get(ctx, "globex", "f")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.NotContains(t, err.Error(), acme.SecretAccessKey)
}

// TestDeletedTenantBecomesNotFound: the cached session of a deleted tenant
// is rejected, the provider assumes the role again and is refused.
func TestDeletedTenantBecomesNotFound(t *testing.T) {
	ctx := context.Background()
	p, srv := newLocal(t, plainProcesses)
	deploy(t, p, "globex", "echo", nil)
	require.NoError(t, srv.Registry().Delete(ctx, "globex"))
	require.Eventually(t, func() bool {
		_, err := p.Get(ctx, "globex", "echo")
		return providers.IsNotFound(err) && strings.Contains(err.Error(), "tenant globex")
	}, 5*time.Second, 50*time.Millisecond)

	// Created again, the tenant is the same account and works at once.
	_, err := srv.Registry().Create(ctx, "globex")
	require.NoError(t, err)
	_, err = p.Get(ctx, "globex", "echo")
	require.NoError(t, err)
}

func TestSTSUnreachableStaysRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := proxiedProvider(t, endpoint, tenants.Credentials{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: "x"})
	_, err = p.Get(ctx, "acme", "f")
	require.Error(t, err)
	assert.False(t, providers.IsNotFound(err) || providers.IsInvalid(err), "a network error must stay retryable: %v", err)
}

// TestTenantsOnAWS: roles and the single-account tenant, without a cloud.
func TestTenantsOnAWS(t *testing.T) {
	ctx := context.Background()
	api := &recordingAPI{}
	p := lambda.NewWithAPI(api, lambda.Options{Tenant: "acme", Roles: func(tenant string) (string, bool) {
		return "arn:aws:iam::123456789012:role/gust", tenant == "globex"
	}})
	_, err := p.Deploy(ctx, providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x")})
	assert.ErrorContains(t, err, "recorded", "acme is the worker's own account")
	_, err = p.Get(ctx, "initech", "f")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.Contains(t, err.Error(), "--tenant-role initech=")
}
