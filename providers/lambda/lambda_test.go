package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	lc "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/tenants"
)

var echoBinary []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gust-echo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin, err := lambdatest.BuildEcho(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if echoBinary, err = os.ReadFile(bin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// localTenants are the tenants startLocal registers.
var localTenants = []string{"acme", "globex"}

// startLocal starts the whole local cloud (SigV4 on every call, STS,
// accounts) with the tenants localTenants, its Lambda service configured
// by mod.
func startLocal(t testing.TB, mod func(*lc.Config)) *localcloud.Server {
	t.Helper()
	cfg := localcloud.Config{StateDir: t.TempDir()}
	if mod != nil {
		mod(&cfg.Lambda)
	}
	srv, err := localcloud.Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { srv.Close() })
	for _, tenant := range localTenants {
		_, err := srv.Registry().Create(context.Background(), tenant)
		require.NoError(t, err)
	}
	return srv
}

// platformProvider is a provider as gust's worker builds it for the local
// cloud: it signs with the platform principal's key and assumes each
// tenant's platform role. hc, when set, carries its HTTP requests.
func platformProvider(t testing.TB, srv *localcloud.Server, hc aws.HTTPClient) *lambda.Provider {
	t.Helper()
	key, err := srv.Registry().PlatformCredentials(context.Background())
	require.NoError(t, err)
	cfg := aws.Config{Region: "us-east-1", HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "")}
	return lambda.New(cfg, lambda.Options{Endpoint: srv.Endpoint(), Roles: platformRoles})
}

func platformRoles(tenant string) (string, bool) { return tenants.PlatformRoleARN(tenant), true }

func newLocal(t testing.TB, mod func(*lc.Config)) (*lambda.Provider, *localcloud.Server) {
	t.Helper()
	srv := startLocal(t, mod)
	return platformProvider(t, srv, nil), srv
}

// memoryLimitsHere reports whether a local cloud on this machine enforces
// memory limits (it does where it may create memory cgroups).
func memoryLimitsHere(t testing.TB) bool {
	cloud, err := lc.Open(lc.Config{StateDir: t.TempDir()})
	require.NoError(t, err)
	defer cloud.Close()
	enforced, _ := cloud.MemoryLimits()
	return enforced
}

func deploy(t testing.TB, p *lambda.Provider, tenant, name string, mod func(*providers.FunctionSpec)) providers.Function {
	t.Helper()
	spec := providers.FunctionSpec{Tenant: tenant, Name: name, Zip: echoBinary, Timeout: 5 * time.Second,
		MemoryMB: 256, Tenancy: providers.TenancyPerTenant}
	if mod != nil {
		mod(&spec)
	}
	f, err := p.Deploy(context.Background(), spec)
	require.NoError(t, err)
	return f
}

func TestDeployGetListDelete(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	f := deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) {
		s.Env = map[string]string{"GREETING": "hi"}
		s.MaxEnvsPerSubTenant = 3
		s.Timeout = 1500 * time.Millisecond
	})
	assert.Equal(t, "acme", f.Tenant)
	assert.Equal(t, "1", f.Version)
	assert.Equal(t, providers.TenancyPerTenant, f.Tenancy)
	assert.Equal(t, 2*time.Second, f.Timeout, "rounded up to whole seconds")
	assert.Equal(t, 3, f.MaxEnvsPerSubTenant)
	assert.Equal(t, "hi", f.Env["GREETING"])
	assert.NotEmpty(t, f.CodeSHA256)
	assert.False(t, f.LastModified.IsZero())

	// Deploying again updates configuration and code: a new version.
	f2 := deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) { s.MaxEnvsPerSubTenant = 5 })
	assert.NotEqual(t, f.Version, f2.Version)
	assert.Equal(t, 5, f2.MaxEnvsPerSubTenant)
	assert.Empty(t, f2.Env, "variables not in the spec are cleared")

	_, err := p.Deploy(ctx, providers.FunctionSpec{Tenant: "acme", Name: "echo", Zip: echoBinary})
	assert.True(t, providers.IsInvalid(err), "tenancy cannot change: %v", err)

	got, err := p.Get(ctx, "acme", "echo")
	require.NoError(t, err)
	assert.Equal(t, f2.Version, got.Version)

	deploy(t, p, "acme", "second", nil)
	list, err := p.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, list, 2)

	require.NoError(t, p.Delete(ctx, "acme", "echo"))
	_, err = p.Get(ctx, "acme", "echo")
	assert.True(t, providers.IsNotFound(err), "%v", err)
	assert.True(t, providers.IsNotFound(p.Delete(ctx, "acme", "echo")))
}

func TestTenantsAreIsolated(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	deploy(t, p, "acme", "private", nil)
	_, err := p.Get(ctx, "globex", "private")
	assert.True(t, providers.IsNotFound(err))
	_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "globex", Function: "private", SubTenant: "s"})
	assert.True(t, providers.IsNotFound(err))
	assert.True(t, providers.IsNotFound(p.Delete(ctx, "globex", "private")))
	_, err = p.Environments(ctx, "globex", "private")
	assert.True(t, providers.IsNotFound(err))
	_, err = p.Logs(ctx, "globex", "private", "s")
	assert.True(t, providers.IsNotFound(err))
	list, err := p.List(ctx, "globex")
	require.NoError(t, err)
	assert.Empty(t, list)

	_, err = p.Get(ctx, "../acme", "private")
	assert.True(t, providers.IsInvalid(err))
}

func TestInvokeReportsEnvironmentAndColdStart(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	deploy(t, p, "acme", "echo", nil)
	in := providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "customer-1",
		Payload: []byte(`{"echo":{"n":1}}`), RequestID: "wf-123:invoke"}
	first, err := p.Invoke(ctx, in)
	require.NoError(t, err)
	assert.True(t, first.ColdStart)
	assert.Regexp(t, `^env-[0-9a-f]{16}$`, first.EnvironmentID)
	assert.Positive(t, first.Duration)
	var resp sample.Response
	require.NoError(t, json.Unmarshal(first.Payload, &resp))
	assert.Equal(t, "customer-1", resp.TenantID)
	assert.Equal(t, "wf-123:invoke", resp.RequestID, "the request id reaches the runtime")
	assert.JSONEq(t, `{"n":1}`, string(resp.Echo))

	in.RequestID = "wf-124:invoke" // a request id names one invocation (the cloud answers a repeat without running it)
	second, err := p.Invoke(ctx, in)
	require.NoError(t, err)
	assert.False(t, second.ColdStart)
	assert.Equal(t, first.EnvironmentID, second.EnvironmentID)

	envs, err := p.Environments(ctx, "acme", "echo")
	require.NoError(t, err)
	require.Len(t, envs, 1)
	assert.Equal(t, first.EnvironmentID, envs[0].ID)
	assert.Equal(t, "customer-1", envs[0].SubTenant)
	assert.Equal(t, "idle", envs[0].State)
	assert.Equal(t, 2, envs[0].Invocations)
	assert.Equal(t, 256, envs[0].MemoryMB)
	assert.Equal(t, memoryLimitsHere(t), envs[0].MemoryLimitEnforced, "the provider reports what the cloud enforces")

	_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "customer-1",
		Payload: []byte(`{"stdout":"hello from customer-1"}`)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		logs, err := p.Logs(ctx, "acme", "echo", "customer-1")
		return err == nil && strings.Contains(logs, "hello from customer-1")
	}, 5*time.Second, 10*time.Millisecond)
}

func TestFunctionErrorsAreTyped(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) { s.Timeout = time.Second })

	res, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{"error":"bad input"}`)})
	var fe *providers.FunctionError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "EchoError", fe.Type)
	assert.Equal(t, "bad input", fe.Message)
	assert.NotEmpty(t, res.EnvironmentID, "the result says where it failed")

	_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{"exit":2}`)})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "Runtime.ExitError", fe.Type)

	_, err = p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s", Payload: []byte(`{"sleep_ms":3000}`)})
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "Sandbox.Timedout", fe.Type)
}

func TestBadInputIsInvalid(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()
	deploy(t, p, "acme", "echo", nil)
	deploy(t, p, "acme", "plain", func(s *providers.FunctionSpec) { s.Tenancy = providers.TenancyNone })
	for name, in := range map[string]providers.InvokeInput{
		"missing sub-tenant":  {Function: "echo"},
		"sub-tenant on plain": {Function: "plain", SubTenant: "s"},
		"bad sub-tenant":      {Function: "echo", SubTenant: "a;b"},
		"bad json":            {Function: "echo", SubTenant: "s", Payload: []byte(`{`)},
		"too large":           {Function: "echo", SubTenant: "s", Payload: []byte(`"` + strings.Repeat("a", lambda.MaxPayloadBytes) + `"`)},
		"bad name":            {Function: "../echo", SubTenant: "s"},
	} {
		in.Tenant = "acme"
		_, err := p.Invoke(ctx, in)
		assert.True(t, providers.IsInvalid(err), "%s: %v", name, err)
	}
	_, err := p.Deploy(ctx, providers.FunctionSpec{Tenant: "acme", Name: "nocode"})
	assert.True(t, providers.IsInvalid(err))
	_, err = p.Deploy(ctx, providers.FunctionSpec{Tenant: "acme", Name: "junk", Zip: []byte("not a zip")})
	assert.True(t, providers.IsInvalid(err), "%v", err)
}

func TestThrottlingIsTypedAndNotRetried(t *testing.T) {
	// Plain processes: the gate is a file of the test's, which a sandbox
	// would not see. Throttling does not depend on the isolation.
	p, srv := newLocal(t, func(c *lc.Config) { c.Isolation = lc.IsolationNone })
	ctx := context.Background()
	deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) { s.MaxEnvsPerSubTenant = 1 })

	gate := filepath.Join(t.TempDir(), "gate")
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := p.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s",
			Payload: []byte(fmt.Sprintf(`{"until_file":%q}`, gate))})
		assert.NoError(t, err)
	}()
	require.Eventually(t, func() bool {
		envs, err := p.Environments(ctx, "acme", "echo")
		return err == nil && len(envs) == 1 && envs[0].State == "busy"
	}, 10*time.Second, 10*time.Millisecond)

	// Count the HTTP requests a throttled invoke makes: exactly one.
	var calls int
	var mu sync.Mutex
	counting := platformProvider(t, srv, countingClient{&calls, &mu})
	_, err := counting.Invoke(ctx, providers.InvokeInput{Tenant: "acme", Function: "echo", SubTenant: "s"})
	assert.True(t, providers.IsTooManyRequests(err), "%v", err)
	mu.Lock()
	assert.Equal(t, 1, calls, "throttling is left to the workflow's durable backoff")
	mu.Unlock()

	require.NoError(t, os.WriteFile(gate, nil, 0o600))
	wg.Wait()
}

func TestExtensionsUnsupportedOutsideTheLocalCloud(t *testing.T) {
	// AWS: no endpoint.
	onAWS := lambda.New(awsConfig(), lambda.Options{Tenant: "acme"})
	_, err := onAWS.Environments(context.Background(), "acme", "f")
	assert.ErrorIs(t, err, providers.ErrUnsupported)
	// Another tenant than the account's is nobody's.
	_, err = onAWS.Get(context.Background(), "globex", "f")
	assert.True(t, providers.IsNotFound(err))
	// An AWS worker without a tenant serves nobody: tenants never share an
	// account's functions.
	_, err = lambda.NewWithAPI(&recordingAPI{}, lambda.Options{}).Get(context.Background(), "acme", "f")
	assert.True(t, providers.IsInvalid(err), "got %v", err)

	// An endpoint that is not a gust local cloud (say LocalStack).
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-Errortype", "UnknownOperationException")
		w.WriteHeader(http.StatusNotFound)
	}))
	defer other.Close()
	p := lambda.New(awsConfig(), lambda.Options{Endpoint: other.URL, Tenant: "acme"})
	_, err = p.Environments(context.Background(), "acme", "f")
	assert.ErrorIs(t, err, providers.ErrUnsupported)
	_, err = p.Logs(context.Background(), "acme", "f", "s")
	assert.ErrorIs(t, err, providers.ErrUnsupported)
}

func TestCreateUsesTenancyAndRuntime(t *testing.T) {
	api := &recordingAPI{}
	p := lambda.NewWithAPI(api, lambda.Options{Tenant: "acme"})
	_, _ = p.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x"),
		Tenancy: providers.TenancyPerTenant, Timeout: 3 * time.Second, MemoryMB: 512})
	require.NotNil(t, api.create)
	assert.Equal(t, types.TenantIsolationModePerTenant, api.create.TenancyConfig.TenantIsolationMode)
	assert.Equal(t, types.RuntimeProvidedal2023, api.create.Runtime)
	assert.Equal(t, "bootstrap", aws.ToString(api.create.Handler))
	assert.Equal(t, lambda.DefaultRole, aws.ToString(api.create.Role))
	assert.Equal(t, int32(3), aws.ToInt32(api.create.Timeout))
	assert.Equal(t, int32(512), aws.ToInt32(api.create.MemorySize))
}

// TestCreateUsesTheTenantsAccountForItsRole: with no role configured, a
// tenant's function gets the execution role in the tenant's own account
// (the account of the role assumed for it), so its Role and its ARN name
// one account; a configured role is used as is.
func TestCreateUsesTheTenantsAccountForItsRole(t *testing.T) {
	roles := func(tenant string) (string, bool) {
		return "arn:aws:iam::111122223333:role/gust-platform-" + tenant, tenant == "acme"
	}
	api := &recordingAPI{}
	p := lambda.NewWithAPI(api, lambda.Options{Roles: roles})
	_, _ = p.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x"), Tenancy: providers.TenancyPerTenant})
	require.NotNil(t, api.create)
	assert.Equal(t, "arn:aws:iam::111122223333:role/"+lambda.DefaultRoleName, aws.ToString(api.create.Role))

	api = &recordingAPI{}
	p = lambda.NewWithAPI(api, lambda.Options{Roles: roles, Role: "arn:aws:iam::444455556666:role/mine"})
	_, _ = p.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x"), Tenancy: providers.TenancyPerTenant})
	require.NotNil(t, api.create)
	assert.Equal(t, "arn:aws:iam::444455556666:role/mine", aws.ToString(api.create.Role))
}

// recordingAPI records CreateFunction and fails everything else.
type recordingAPI struct {
	lambda.LambdaAPI
	create *awslambda.CreateFunctionInput
}

func (r *recordingAPI) CreateFunction(_ context.Context, in *awslambda.CreateFunctionInput, _ ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error) {
	r.create = in
	return nil, fmt.Errorf("recorded")
}

type countingClient struct {
	n  *int
	mu *sync.Mutex
}

// Do counts Lambda requests (not the STS call that assumes the role).
func (c countingClient) Do(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/") {
		*c.n++
	}
	c.mu.Unlock()
	return http.DefaultClient.Do(r)
}

func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("x", "y", "")}
}

func TestDeployEgressAndEphemeralStorage(t *testing.T) {
	p, _ := newLocal(t, nil)
	ctx := context.Background()

	plain := deploy(t, p, "acme", "plain", nil)
	assert.Equal(t, "none", plain.Egress, "no policy reads back as none")
	assert.Equal(t, 512, plain.EphemeralMB, "Lambda's default size")

	f := deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) {
		s.Egress = "API.example.com:443,*.s3.amazonaws.com"
		s.EphemeralMB = 2048
		s.MaxEnvsPerSubTenant = 3
	})
	assert.Equal(t, "*.s3.amazonaws.com,api.example.com:443", f.Egress, "the cloud's canonical form")
	assert.Equal(t, 2048, f.EphemeralMB)
	got, err := p.Get(ctx, "acme", "echo")
	require.NoError(t, err)
	assert.Equal(t, f.Egress, got.Egress)
	assert.Equal(t, 2048, got.EphemeralMB)

	// List reads the tags too, so it reports the policy (and max envs).
	list, err := p.List(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, list, 2)
	byName := map[string]providers.Function{}
	for _, fn := range list {
		byName[fn.Name] = fn
	}
	assert.Equal(t, "*.s3.amazonaws.com,api.example.com:443", byName["echo"].Egress)
	assert.Equal(t, 2048, byName["echo"].EphemeralMB)
	assert.Equal(t, 3, byName["echo"].MaxEnvsPerSubTenant)
	assert.Equal(t, "none", byName["plain"].Egress)
	assert.Equal(t, 512, byName["plain"].EphemeralMB)

	// Updating through UpdateFunctionConfiguration: a new policy and size.
	f2 := deploy(t, p, "acme", "echo", func(s *providers.FunctionSpec) { s.Egress = "all"; s.EphemeralMB = 10240 })
	assert.NotEqual(t, f.Version, f2.Version)
	assert.Equal(t, "all", f2.Egress)
	assert.Equal(t, 10240, f2.EphemeralMB)
	// A deploy without a policy takes egress away, as it does variables;
	// without a size it keeps the size, as it does timeout and memory.
	f3 := deploy(t, p, "acme", "echo", nil)
	assert.Equal(t, "none", f3.Egress)
	assert.Equal(t, 10240, f3.EphemeralMB)

	// Bad input: checked before any call, or refused by the cloud.
	for name, mod := range map[string]func(*providers.FunctionSpec){
		"ephemeral too small": func(s *providers.FunctionSpec) { s.EphemeralMB = 511 },
		"ephemeral too large": func(s *providers.FunctionSpec) { s.EphemeralMB = 10241 },
		"egress header break": func(s *providers.FunctionSpec) { s.Egress = "example.com\r\nX-Evil: 1" },
		"egress bad port":     func(s *providers.FunctionSpec) { s.Egress = "example.com:70000" },
		"egress with space":   func(s *providers.FunctionSpec) { s.Egress = "a b.example.com" },
	} {
		for _, fn := range []string{"echo", "fresh"} { // update and create
			spec := providers.FunctionSpec{Tenant: "acme", Name: fn, Zip: echoBinary, Tenancy: providers.TenancyPerTenant}
			mod(&spec)
			_, err := p.Deploy(ctx, spec)
			assert.True(t, providers.IsInvalid(err), "%s on %s: %v", name, fn, err)
		}
	}
	_, err = p.Get(ctx, "acme", "fresh")
	assert.True(t, providers.IsNotFound(err), "%v", err)
}

func TestCreateSendsEphemeralStorage(t *testing.T) {
	api := &recordingAPI{}
	p := lambda.NewWithAPI(api, lambda.Options{Tenant: "acme"})
	_, _ = p.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x"), EphemeralMB: 4096})
	require.NotNil(t, api.create)
	require.NotNil(t, api.create.EphemeralStorage)
	assert.Equal(t, int32(4096), aws.ToInt32(api.create.EphemeralStorage.Size))

	_, _ = p.Deploy(context.Background(), providers.FunctionSpec{Tenant: "acme", Name: "f", Zip: []byte("x")})
	assert.Nil(t, api.create.EphemeralStorage, "0 leaves the size to Lambda's default")
}
