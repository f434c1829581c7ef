package ec2

import (
	"bytes"
	"context"
	"errors"
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
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/tenants"
)

// signed is what a recordingProxy saw of one request: who signed it, for
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

// recordingProxy forwards to target, recording who signed each request.
// The Host header is kept, so signatures still verify.
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

func platformRoles(tenant string) (string, bool) { return tenants.PlatformRoleARN(tenant), true }

// startCloud starts the whole local cloud (SigV4, STS, accounts) with the
// given tenants and returns it with the platform principal's key.
func startCloud(t *testing.T, names ...string) (*localcloud.Server, tenants.Credentials) {
	t.Helper()
	// No Lambda sandboxes prepared ahead: only EC2 and STS are used.
	srv, err := localcloud.Start(localcloud.Config{StateDir: t.TempDir(), BootDelay: time.Millisecond,
		Lambda: lc.Config{Isolation: lc.IsolationNone, WarmSandboxes: -1}})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	ctx := context.Background()
	for _, name := range names {
		_, err := srv.Registry().Create(ctx, name)
		require.NoError(t, err)
	}
	key, err := srv.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	return srv, key
}

func platformConfig(key tenants.Credentials) aws.Config {
	return aws.Config{Region: "us-east-1", Retryer: newRetryer,
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")}
}

// TestTenantsActInTheirOwnAccounts: each tenant's calls are signed with
// temporary credentials of that tenant's role, assumed once with the
// platform's key, and each tenant sees only its own instances.
func TestTenantsActInTheirOwnAccounts(t *testing.T) {
	ctx := context.Background()
	srv, key := startCloud(t, providers.DefaultTenant, "acme", "globex")
	endpoint, rec := recordingProxy(t, srv.Endpoint())
	accounts := NewAccounts(platformConfig(key), Options{Endpoint: endpoint, Roles: platformRoles, DefaultImageID: LocalCloudImageID})

	tags := map[string]string{providers.FleetTagKey: "web"} // the same fleet name everywhere
	launched := map[string][]string{}
	keys := map[string]string{}
	for tenant, n := range map[string]int{"": 1, "acme": 2, "globex": 3} {
		mark := rec.len()
		c, err := accounts.Compute(ctx, tenant)
		require.NoError(t, err)
		got, err := c.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: n, MaxCount: n, Tags: tags})
		require.NoError(t, err)
		launched[tenant] = ids(got)
		_, err = c.Describe(ctx, providers.InstanceFilter{Tags: tags})
		require.NoError(t, err)

		reqs := rec.since(mark)
		require.Len(t, reqs, 3, "AssumeRole, RunInstances, DescribeInstances: %+v", reqs)
		assume := reqs[0]
		assert.Equal(t, "sts", assume.Service)
		assert.Equal(t, key.AccessKeyID, assume.AccessKeyID, "the role is assumed with the platform's key")
		assert.False(t, assume.SessionToken)
		assert.Equal(t, tenants.PlatformRoleARN(providers.TenantOrDefault(tenant)), assume.RoleARN)
		for _, r := range reqs[1:] {
			assert.Equal(t, "ec2", r.Service)
			assert.True(t, strings.HasPrefix(r.AccessKeyID, "ASIA"), "temporary credentials sign the tenant's calls: %s", r.AccessKeyID)
			assert.True(t, r.SessionToken)
			assert.Equal(t, reqs[1].AccessKeyID, r.AccessKeyID)
		}
		keys[tenant] = reqs[1].AccessKeyID
	}
	assert.Len(t, map[string]bool{keys[""]: true, keys["acme"]: true, keys["globex"]: true}, 3, "each tenant has its own credentials")

	// Each tenant sees its own instances of fleet "web", and only those.
	mark := rec.len()
	for tenant, want := range launched {
		c, err := accounts.Compute(ctx, tenant)
		require.NoError(t, err)
		got, err := c.Describe(ctx, providers.InstanceFilter{Tags: tags})
		require.NoError(t, err)
		assert.ElementsMatch(t, want, ids(got), "tenant %q", tenant)
	}
	// ...and cannot touch another's.
	acme, err := accounts.Compute(ctx, "acme")
	require.NoError(t, err)
	err = acme.Terminate(ctx, launched["globex"][:1])
	assert.True(t, providers.IsNotFound(err), "%v", err)
	for _, r := range rec.since(mark) {
		assert.NotEqual(t, "sts", r.Service, "credentials are cached, not assumed per call")
	}
	// "" and "default" are one account.
	def, err := accounts.Compute(ctx, providers.DefaultTenant)
	require.NoError(t, err)
	got, err := def.Describe(ctx, providers.InstanceFilter{Tags: tags})
	require.NoError(t, err)
	assert.Equal(t, launched[""], ids(got))
}

func TestUnknownTenantIsNotFound(t *testing.T) {
	ctx := context.Background()
	srv, key := startCloud(t, "acme")
	endpoint, rec := recordingProxy(t, srv.Endpoint())
	accounts := NewAccounts(platformConfig(key), Options{Endpoint: endpoint, Roles: platformRoles, DefaultImageID: LocalCloudImageID})

	_, err := accounts.Compute(ctx, "nobody")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.Contains(t, err.Error(), "tenant nobody")
	for _, r := range rec.since(0) {
		assert.Equal(t, "sts", r.Service, "nothing but AssumeRole is sent for an unknown tenant")
	}
	_, err = accounts.Compute(ctx, "../acme")
	assert.True(t, providers.IsInvalid(err), "%v", err)

	// A platform key the cloud does not know: the worker is misconfigured,
	// which no retry fixes.
	bad := NewAccounts(platformConfig(tenants.Credentials{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: "x"}),
		Options{Endpoint: endpoint, Roles: platformRoles})
	_, err = bad.Compute(ctx, "acme")
	assert.True(t, providers.IsInvalid(err), "%v", err)
	assert.NotContains(t, err.Error(), key.SecretAccessKey)
}

// TestDeletedTenantIsNotFoundAndRecreatedWorks: a deleted tenant's cached
// session is rejected; the provider assumes the role again, which the cloud
// refuses, so the tenant is NotFound; once created again it works.
func TestDeletedTenantIsNotFoundAndRecreatedWorks(t *testing.T) {
	ctx := context.Background()
	srv, key := startCloud(t, "acme")
	accounts := NewAccounts(platformConfig(key), Options{Endpoint: srv.Endpoint(), Roles: platformRoles, DefaultImageID: LocalCloudImageID})
	c, err := accounts.Compute(ctx, "acme")
	require.NoError(t, err)
	_, err = c.Describe(ctx, providers.InstanceFilter{})
	require.NoError(t, err)

	require.NoError(t, srv.Registry().Delete(ctx, "acme"))
	require.Eventually(t, func() bool {
		_, err := c.Describe(ctx, providers.InstanceFilter{})
		return providers.IsNotFound(err)
	}, 5*time.Second, 50*time.Millisecond, "the deleted tenant's calls must become NotFound")
	_, err = accounts.Compute(ctx, "acme")
	assert.True(t, providers.IsNotFound(err), "%v", err)

	_, err = srv.Registry().Create(ctx, "acme")
	require.NoError(t, err)
	c, err = accounts.Compute(ctx, "acme")
	require.NoError(t, err)
	_, err = c.Describe(ctx, providers.InstanceFilter{})
	require.NoError(t, err)
}

func TestSTSUnreachableStaysRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	endpoint := "http://" + ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	accounts := NewAccounts(platformConfig(tenants.Credentials{AccessKeyID: "AKIAAAAAAAAAAAAAAAAA", SecretAccessKey: "x"}),
		Options{Endpoint: endpoint, Roles: platformRoles})
	_, err = accounts.Compute(ctx, "acme")
	require.Error(t, err)
	assert.False(t, providers.IsNotFound(err) || providers.IsInvalid(err), "a network error must stay retryable: %v", err)
	var opErr *net.OpError
	assert.True(t, errors.As(err, &opErr), "%v", err)
}

// TestTenantWithoutRoleOnAWS: on AWS (no endpoint), the default tenant
// without a role is the worker's own account, as before tenants; another
// tenant without a role is refused without any call.
func TestTenantWithoutRoleOnAWS(t *testing.T) {
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	accounts := NewAccounts(cfg, Options{Roles: func(tenant string) (string, bool) {
		return "arn:aws:iam::123456789012:role/gust", tenant == "acme"
	}})
	c, err := accounts.Compute(ctx, "")
	require.NoError(t, err)
	creds, err := c.(*Provider).api.(*awsec2.Client).Options().Credentials.Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, "AKIDEXAMPLE", creds.AccessKeyID)
	_, err = accounts.Compute(ctx, "globex")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.Contains(t, err.Error(), "--tenant-role globex=")
}
