// Package lambda implements providers.Functions with aws-sdk-go-v2's Lambda
// client. One code path serves gust's local cloud, LocalStack and AWS:
// functions are created with TenancyConfig PER_TENANT and invoked with a
// TenantId (the sub-tenant). The local cloud's extras (environment id and
// cold-start headers, environment and log listings) are read when present
// and reported as absent or ErrUnsupported when not.
//
// # Tenants
//
// A tenant is an account, and the provider acts for it the AWS way: it
// assumes a role in the tenant's account with STS AssumeRole, signing that
// call with the configured (the platform's) credentials, and signs the
// tenant's requests with the temporary credentials it gets back
// (Options.Roles; see awsconfig.Tenants). On gust's local cloud every
// tenant's role is tenants.PlatformRoleARN(tenant), which only the
// platform's principal may assume; on AWS the roles are cross-account
// roles, so one worker serves many tenants' accounts. Options.Tenant is
// the legacy single-account mode: that one tenant's requests are signed
// with the configured credentials themselves. A tenant the provider cannot
// act for is NotFoundError, as if its functions did not exist.
package lambda

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gust-dev/gust/limits"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/awsconfig"
)

// The local cloud's extensions (see localcloud/lambda). Repeated here, not
// imported, so the provider does not depend on the local cloud.
const (
	headerEnvironmentID       = "X-Gust-Environment-Id"
	headerColdStart           = "X-Gust-Cold-Start"
	headerLocalCloud          = "X-Gust-Local-Cloud"
	headerRequestID           = "X-Gust-Request-Id"
	headerMaxEnvsPerSubTenant = "X-Gust-Max-Envs-Per-Subtenant"
	tagMaxEnvsPerSubTenant    = "gust:max-envs-per-subtenant"
	headerEgress              = "X-Gust-Egress"
	tagEgress                 = "gust:egress"
	environmentsSuffix        = "gust-environments"
	logsSuffix                = "gust-logs"

	// DefaultRole is the execution role functions are created with when
	// Options.Role is empty and the tenant's account is not known (no
	// role is assumed for it); see executionRole.
	DefaultRole = "arn:aws:iam::000000000000:role/" + DefaultRoleName
	// DefaultRoleName names the execution role in the tenant's own
	// account that functions get when Options.Role is empty.
	DefaultRoleName = "gust-function"
	// MaxPayloadBytes is Lambda's synchronous payload limit.
	MaxPayloadBytes = limits.MaxPayloadBytes
	// MinEphemeralMB and MaxEphemeralMB are Lambda's bounds on
	// EphemeralStorage.Size.
	MinEphemeralMB = limits.MinEphemeralMB
	MaxEphemeralMB = limits.MaxEphemeralMB
	// EgressNone is the canonical policy of a function without egress.
	EgressNone = "none"
	// listGetConcurrency bounds the GetFunction calls List makes at once.
	listGetConcurrency = 8
)

// LambdaAPI is the part of *awslambda.Client the provider uses.
type LambdaAPI interface {
	CreateFunction(ctx context.Context, in *awslambda.CreateFunctionInput, optFns ...func(*awslambda.Options)) (*awslambda.CreateFunctionOutput, error)
	GetFunction(ctx context.Context, in *awslambda.GetFunctionInput, optFns ...func(*awslambda.Options)) (*awslambda.GetFunctionOutput, error)
	ListFunctions(ctx context.Context, in *awslambda.ListFunctionsInput, optFns ...func(*awslambda.Options)) (*awslambda.ListFunctionsOutput, error)
	DeleteFunction(ctx context.Context, in *awslambda.DeleteFunctionInput, optFns ...func(*awslambda.Options)) (*awslambda.DeleteFunctionOutput, error)
	UpdateFunctionCode(ctx context.Context, in *awslambda.UpdateFunctionCodeInput, optFns ...func(*awslambda.Options)) (*awslambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *awslambda.UpdateFunctionConfigurationInput, optFns ...func(*awslambda.Options)) (*awslambda.UpdateFunctionConfigurationOutput, error)
	Invoke(ctx context.Context, in *awslambda.InvokeInput, optFns ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error)
}

var _ LambdaAPI = (*awslambda.Client)(nil)

// Options configures the provider.
type Options struct {
	// Endpoint is the Lambda endpoint of the local cloud or LocalStack, for
	// example http://127.0.0.1:4566. Empty means AWS.
	Endpoint string
	// Region defaults to the configuration chain's, then us-east-1.
	Region string
	// Profile selects a shared-config profile.
	Profile string
	// Credentials, when set, replace the configuration chain's
	// credentials (NewFromConfig): the platform principal's key.
	Credentials aws.CredentialsProvider
	// Roles returns the role to assume to act in a tenant's account (see
	// the package comment). STS is called at Endpoint when set.
	Roles func(tenant string) (roleARN string, ok bool)
	// Tenant is the legacy single-account mode on AWS: the one tenant the
	// configured credentials' own account belongs to, used when Roles has
	// no role for it. An AWS account is the tenant boundary, so only one
	// tenant may be served this way; a provider with neither Roles nor
	// Tenant refuses every call rather than let tenants share an account's
	// functions.
	Tenant string
	// Role is the execution role of created functions. Empty means
	// DefaultRoleName in the tenant's account, the account of the role
	// Roles assumes for it (DefaultRole when none is).
	Role string
	// WaitTimeout bounds waiting for a function to become active or
	// updated after a deploy (AWS applies changes asynchronously).
	// Default 5 minutes.
	WaitTimeout time.Duration
}

// Provider implements providers.Functions.
type Provider struct {
	opts       Options
	cfg        aws.Config
	tenants    awsconfig.Tenants
	newClient  func(tenant string) (*tenantClient, error)
	clients    sync.Map       // tenant -> *tenantClient
	httpClient aws.HTTPClient // for the local cloud's extension endpoints
	signer     *v4.Signer
}

// tenantClient is one tenant's client and the credentials it signs with
// (nil for NewWithAPI's fake).
type tenantClient struct {
	api   LambdaAPI
	creds aws.CredentialsProvider
}

var _ providers.Functions = (*Provider)(nil)

// NewFromConfig builds a provider from the standard configuration chain
// (environment, shared config, Options.Profile) or Options.Credentials:
// the platform's own credentials. With an Endpoint, the clients and STS use
// it as BaseEndpoint, and a chain without credentials falls back to dummy
// ones, which LocalStack accepts (gust's local cloud refuses them).
func NewFromConfig(ctx context.Context, o Options) (*Provider, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Endpoint: o.Endpoint, Region: o.Region, Profile: o.Profile, Credentials: o.Credentials})
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		cfg.Region = awsconfig.DefaultLocalRegion
	}
	return New(cfg, o), nil
}

// New builds a provider from an aws.Config, for callers that configure the
// SDK themselves (tests).
func New(cfg aws.Config, o Options) *Provider {
	cfg = cfg.Copy()
	// Throttling is not retried here: a TooManyRequestsException goes back
	// to the workflow, which backs off durably until the invocation's
	// deadline. Retrying inside the activity would hide it and hold the
	// activity slot. The client-side retry quota is off for the same
	// reason: under load it would turn retryable errors into quota errors.
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(noRetryOnThrottle)}, so.Retryables...)
			so.RateLimiter = ratelimit.None
		})
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	clientOpts := func(lo *awslambda.Options) {
		if o.Endpoint != "" {
			lo.BaseEndpoint = aws.String(o.Endpoint)
		}
		// After the SDK has resolved its own HTTP client (timeouts of the
		// defaults mode), so those are kept.
		lo.HTTPClient = inMemoryBodyClient{lo.HTTPClient}
	}
	p := &Provider{opts: o, cfg: cfg, tenants: awsconfig.Tenants{RoleARN: o.Roles, Own: o.Tenant},
		httpClient: cfg.HTTPClient, signer: v4.NewSigner()}
	if p.httpClient == nil {
		p.httpClient = http.DefaultClient
	}
	p.newClient = func(tenant string) (*tenantClient, error) {
		creds, err := p.tenants.Credentials(cfg, o.Endpoint, tenant)
		if err != nil {
			return nil, err
		}
		return &tenantClient{api: awslambda.NewFromConfig(awsconfig.TenantConfig(cfg, creds), clientOpts), creds: creds}, nil
	}
	return p
}

// NewWithAPI returns a provider whose every served tenant (o.Tenant, and
// those o.Roles has a role for) uses api, for tests with a fake LambdaAPI.
func NewWithAPI(api LambdaAPI, o Options) *Provider {
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	p := &Provider{opts: o, tenants: awsconfig.Tenants{RoleARN: o.Roles, Own: o.Tenant}, httpClient: http.DefaultClient, signer: v4.NewSigner()}
	p.newClient = func(tenant string) (*tenantClient, error) {
		if !p.tenants.Serves(tenant) {
			_, err := p.tenants.Credentials(aws.Config{}, "", tenant) // the reason it does not
			return nil, err
		}
		return &tenantClient{api: api}, nil
	}
	return p
}

// smallBodyBytes bounds the request bodies inMemoryBodyClient copies.
const smallBodyBytes = 64 << 10

// inMemoryBodyClient hands net/http small request bodies as in-memory
// readers. The SDK's body is an opaque stream, for which net/http flushes
// the headers in a write of their own before copying the body ("in case the
// server needs them early"): two writes and two segments per Invoke, and on
// the server a second read, often a second wake-up. With a *bytes.Reader the
// request goes out in one write. Nothing else about the request changes.
type inMemoryBodyClient struct{ aws.HTTPClient }

func (c inMemoryBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody && r.ContentLength > 0 && r.ContentLength <= smallBodyBytes {
		b := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, b)
		_ = r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("reading request body, %w", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return c.HTTPClient.Do(r)
}

func noRetryOnThrottle(err error) aws.Ternary {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "TooManyRequestsException" {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// client returns the tenant's client. This is the one place tenancy is
// decided.
func (p *Provider) client(ctx context.Context, tenant string) (LambdaAPI, error) {
	tc, err := p.tenantClient(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return tc.api, nil
}

// tenantClient returns the tenant's client, built on first use and kept,
// after making sure its credentials are at hand: the role is assumed here
// when the cache holds no fresh credentials, so a refused role is a typed
// error (awsconfig.Retrieve) rather than an SDK signing failure.
func (p *Provider) tenantClient(ctx context.Context, tenant string) (*tenantClient, error) {
	if !validTenant(tenant) {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid tenant id %q: use 1 to %d characters from [A-Za-z0-9_-], starting with a letter or digit", tenant, limits.MaxNameLen))
	}
	v, ok := p.clients.Load(tenant)
	if !ok {
		tc, err := p.newClient(tenant)
		if err != nil {
			return nil, err
		}
		v, _ = p.clients.LoadOrStore(tenant, tc)
	}
	tc := v.(*tenantClient)
	if tc.creds == nil {
		return tc, nil
	}
	if _, err := awsconfig.Retrieve(ctx, tc.creds, tenant); err != nil {
		if providers.IsNotFound(err) || providers.IsInvalid(err) {
			// Not kept: a tenant created later must work, and names
			// nobody has must not accumulate clients.
			p.clients.CompareAndDelete(tenant, tc)
		}
		return nil, err
	}
	return tc, nil
}

// Deploy creates the function, or updates its configuration and code if it
// exists. Lambda cannot change a function's tenancy mode; that is an
// InvalidError (delete and deploy again).
func (p *Provider) Deploy(ctx context.Context, spec providers.FunctionSpec) (providers.Function, error) {
	if err := validateSpec(spec); err != nil {
		return providers.Function{}, err
	}
	c, err := p.client(ctx, spec.Tenant)
	if err != nil {
		return providers.Function{}, err
	}
	in := &awslambda.CreateFunctionInput{
		FunctionName:     aws.String(spec.Name),
		Role:             aws.String(p.executionRole(spec.Tenant)),
		Runtime:          types.RuntimeProvidedal2023,
		Handler:          aws.String("bootstrap"),
		Code:             &types.FunctionCode{ZipFile: spec.Zip},
		Timeout:          timeoutSeconds(spec.Timeout),
		MemorySize:       memorySize(spec.MemoryMB),
		EphemeralStorage: ephemeralStorage(spec.EphemeralMB),
	}
	if spec.Env != nil {
		in.Environment = &types.Environment{Variables: spec.Env}
	}
	if spec.Tenancy == providers.TenancyPerTenant {
		in.TenancyConfig = &types.TenancyConfig{TenantIsolationMode: types.TenantIsolationModePerTenant}
	}
	if spec.MaxEnvsPerSubTenant > 0 {
		in.Tags = map[string]string{tagMaxEnvsPerSubTenant: strconv.Itoa(spec.MaxEnvsPerSubTenant)}
	}
	var opts []func(*awslambda.Options)
	if spec.Egress != "" {
		opts = append(opts, withHeader(headerEgress, spec.Egress))
	}
	_, err = c.CreateFunction(ctx, in, opts...)
	var conflict *types.ResourceConflictException
	switch {
	case err == nil:
		if err := p.waitActive(ctx, c, spec.Name); err != nil {
			return providers.Function{}, err
		}
		return p.Get(ctx, spec.Tenant, spec.Name)
	case errors.As(err, &conflict):
		return p.update(ctx, c, spec)
	default:
		return providers.Function{}, fmt.Errorf("creating function %s, %w", spec.Name, mapError(err))
	}
}

func (p *Provider) update(ctx context.Context, c LambdaAPI, spec providers.FunctionSpec) (providers.Function, error) {
	cur, err := p.Get(ctx, spec.Tenant, spec.Name)
	if err != nil {
		return providers.Function{}, err
	}
	if cur.Tenancy != spec.Tenancy {
		return providers.Function{}, providers.NewInvalidError(fmt.Errorf(
			"function %s has tenancy %q and cannot change to %q: delete it and deploy again", spec.Name, cur.Tenancy, spec.Tenancy))
	}
	env := spec.Env
	if env == nil {
		env = map[string]string{} // clears variables a previous deploy set
	}
	// The egress policy is always sent, so a deploy without one takes a
	// previous deploy's away, as it does variables.
	egress := spec.Egress
	if egress == "" {
		egress = EgressNone
	}
	opts := []func(*awslambda.Options){withHeader(headerEgress, egress)}
	if spec.MaxEnvsPerSubTenant > 0 {
		opts = append(opts, withHeader(headerMaxEnvsPerSubTenant, strconv.Itoa(spec.MaxEnvsPerSubTenant)))
	}
	_, err = c.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{
		FunctionName:     aws.String(spec.Name),
		Timeout:          timeoutSeconds(spec.Timeout),
		MemorySize:       memorySize(spec.MemoryMB),
		EphemeralStorage: ephemeralStorage(spec.EphemeralMB),
		Environment:      &types.Environment{Variables: env},
	}, opts...)
	if err != nil {
		return providers.Function{}, fmt.Errorf("updating configuration of %s, %w", spec.Name, mapError(err))
	}
	// AWS applies a configuration change asynchronously and refuses a code
	// update until it is done.
	if err := p.waitUpdated(ctx, c, spec.Name); err != nil {
		return providers.Function{}, err
	}
	if _, err := c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{
		FunctionName: aws.String(spec.Name), ZipFile: spec.Zip,
	}); err != nil {
		return providers.Function{}, fmt.Errorf("updating code of %s, %w", spec.Name, mapError(err))
	}
	if err := p.waitUpdated(ctx, c, spec.Name); err != nil {
		return providers.Function{}, err
	}
	return p.Get(ctx, spec.Tenant, spec.Name)
}

func (p *Provider) waitActive(ctx context.Context, c LambdaAPI, name string) error {
	w := awslambda.NewFunctionActiveV2Waiter(c, func(o *awslambda.FunctionActiveV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)}, p.opts.WaitTimeout); err != nil {
		return fmt.Errorf("waiting for %s to become active, %w", name, mapError(err))
	}
	return nil
}

func (p *Provider) waitUpdated(ctx context.Context, c LambdaAPI, name string) error {
	w := awslambda.NewFunctionUpdatedV2Waiter(c, func(o *awslambda.FunctionUpdatedV2WaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, 5*time.Second
	})
	if err := w.Wait(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)}, p.opts.WaitTimeout); err != nil {
		return fmt.Errorf("waiting for %s to be updated, %w", name, mapError(err))
	}
	return nil
}

// Get returns NotFoundError if the tenant has no such function.
func (p *Provider) Get(ctx context.Context, tenant, name string) (providers.Function, error) {
	c, err := p.client(ctx, tenant)
	if err != nil {
		return providers.Function{}, err
	}
	if !validName(name) {
		return providers.Function{}, providers.NewInvalidError(fmt.Errorf("invalid function name %q", name))
	}
	out, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)})
	if err != nil {
		return providers.Function{}, fmt.Errorf("getting function %s, %w", name, mapError(err))
	}
	return fromGetFunction(tenant, out), nil
}

// List returns the tenant's functions. ListFunctions does not return tags,
// which carry the egress policy and MaxEnvsPerSubTenant, so each listed
// function is read with GetFunction (a few at a time); one deleted in
// between is left out.
func (p *Provider) List(ctx context.Context, tenant string) ([]providers.Function, error) {
	c, err := p.client(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var names []string
	pg := awslambda.NewListFunctionsPaginator(c, &awslambda.ListFunctionsInput{})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing functions, %w", mapError(err))
		}
		for i := range page.Functions {
			names = append(names, aws.ToString(page.Functions[i].FunctionName))
		}
	}
	fns := make([]providers.Function, len(names))
	found := make([]bool, len(names))
	errs := make([]error, len(names))
	sem := make(chan struct{}, listGetConcurrency)
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)})
			switch err := mapError(err); {
			case err == nil:
				fns[i], found[i] = fromGetFunction(tenant, out), true
			case !providers.IsNotFound(err):
				errs[i] = fmt.Errorf("listing functions: getting %s, %w", name, err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	var out []providers.Function
	for i := range fns {
		if found[i] {
			out = append(out, fns[i])
		}
	}
	return out, nil
}

// Delete returns NotFoundError if the tenant has no such function.
func (p *Provider) Delete(ctx context.Context, tenant, name string) error {
	c, err := p.client(ctx, tenant)
	if err != nil {
		return err
	}
	if !validName(name) {
		return providers.NewInvalidError(fmt.Errorf("invalid function name %q", name))
	}
	if _, err := c.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String(name)}); err != nil {
		return fmt.Errorf("deleting function %s, %w", name, mapError(err))
	}
	return nil
}

// Invoke runs the function for in.SubTenant. On a function error it returns
// both the result (environment id, cold start, duration; Payload holds the
// error document) and a *providers.FunctionError, so callers can record
// where the failure happened.
func (p *Provider) Invoke(ctx context.Context, in providers.InvokeInput) (providers.InvokeResult, error) {
	c, err := p.client(ctx, in.Tenant)
	if err != nil {
		return providers.InvokeResult{}, err
	}
	if err := validateInvoke(in); err != nil {
		return providers.InvokeResult{}, err
	}
	input := &awslambda.InvokeInput{FunctionName: aws.String(in.Function), Payload: in.Payload}
	if in.SubTenant != "" {
		input.TenantId = aws.String(in.SubTenant)
	}
	if in.Qualifier != "" {
		input.Qualifier = aws.String(in.Qualifier)
	}
	if in.Async {
		input.InvocationType = types.InvocationTypeEvent
	} else if in.LogTail {
		input.LogType = types.LogTypeTail
	}
	var opts []func(*awslambda.Options)
	if in.RequestID != "" && validRequestID(in.RequestID) {
		opts = append(opts, withHeader(headerRequestID, in.RequestID))
	}
	start := time.Now()
	out, err := c.Invoke(ctx, input, opts...)
	dur := time.Since(start)
	if err != nil {
		return providers.InvokeResult{}, fmt.Errorf("invoking %s, %w", in.Function, mapError(err))
	}
	res := providers.InvokeResult{Payload: out.Payload, Duration: dur, LogTail: logTail(out.LogResult), ExecutedVersion: aws.ToString(out.ExecutedVersion)}
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		res.EnvironmentID = raw.Header.Get(headerEnvironmentID)
		res.ColdStart = raw.Header.Get(headerColdStart) == "true"
	}
	if out.FunctionError != nil {
		return res, parseFunctionError(out.Payload, aws.ToString(out.FunctionError))
	}
	return res, nil
}

// logTail decodes Invoke's LogResult (base64 of the log's last 4 KB). A
// result that does not decode is dropped rather than failing an invocation
// that ran; one over the limit keeps its end.
func logTail(b64 *string) string {
	if b64 == nil || *b64 == "" {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(*b64)
	if err != nil {
		return ""
	}
	if len(b) > providers.MaxLogTailBytes {
		b = b[len(b)-providers.MaxLogTailBytes:]
	}
	return string(b)
}

// parseFunctionError reads Lambda's error document,
// {"errorType":..,"errorMessage":..}.
func parseFunctionError(payload []byte, header string) *providers.FunctionError {
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal(payload, &doc) != nil || doc.ErrorType == "" {
		doc.ErrorType = header
		if doc.ErrorMessage == "" {
			doc.ErrorMessage = string(payload)
		}
	}
	return &providers.FunctionError{Type: doc.ErrorType, Message: doc.ErrorMessage}
}

// Environments lists the function's environments from the local cloud's
// gust-environments endpoint; ErrUnsupported anywhere else.
func (p *Provider) Environments(ctx context.Context, tenant, name string) ([]providers.Environment, error) {
	body, err := p.extension(ctx, tenant, name, environmentsSuffix, nil)
	if err != nil {
		return nil, err
	}
	var out struct {
		Environments []struct {
			EnvironmentID       string `json:"EnvironmentId"`
			FunctionName        string
			Version             string
			SubTenant           string
			State               string
			Invocations         int
			MemoryMB            int
			MemoryLimitEnforced bool
			Isolation           string
			Pid                 int
			Uid                 int
			PidsMax             int
			CpuShare            int
			EphemeralStorageMB  int
			Started             time.Time
			LastUsed            time.Time
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decoding environments, %w", err)
	}
	envs := make([]providers.Environment, 0, len(out.Environments))
	for _, e := range out.Environments {
		envs = append(envs, providers.Environment{
			ID: e.EnvironmentID, Function: e.FunctionName, Version: e.Version, SubTenant: e.SubTenant,
			State: e.State, Invocations: e.Invocations, Started: e.Started, LastUsed: e.LastUsed,
			MemoryMB: e.MemoryMB, MemoryLimitEnforced: e.MemoryLimitEnforced,
			Isolation: e.Isolation, PID: e.Pid, UID: e.Uid, PidsMax: e.PidsMax, CPUShare: e.CpuShare,
			EphemeralMB: e.EphemeralStorageMB,
		})
	}
	return envs, nil
}

// Logs returns the sub-tenant's captured output from the local cloud's
// gust-logs endpoint; ErrUnsupported anywhere else.
func (p *Provider) Logs(ctx context.Context, tenant, name, subTenant string) (string, error) {
	body, err := p.extension(ctx, tenant, name, logsSuffix, url.Values{"subtenant": {subTenant}})
	if err != nil {
		return "", err
	}
	return string(body), nil
}

// extension GETs one of the local cloud's extension endpoints, signed with
// the tenant's credentials like any SDK call.
func (p *Provider) extension(ctx context.Context, tenant, name, suffix string, q url.Values) ([]byte, error) {
	if p.opts.Endpoint == "" {
		return nil, providers.ErrUnsupported
	}
	tc, err := p.tenantClient(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if !validName(name) {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid function name %q", name))
	}
	u := strings.TrimRight(p.opts.Endpoint, "/") + "/2015-03-31/functions/" + url.PathEscape(name) + "/" + suffix
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("building %s request, %w", suffix, err)
	}
	if tc.creds == nil {
		return nil, errors.New("no aws credentials configured")
	}
	creds, err := awsconfig.Retrieve(ctx, tc.creds, tenant)
	if err != nil {
		return nil, err
	}
	const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if err := p.signer.SignHTTP(ctx, creds, req, emptySHA256, "lambda", p.region(), time.Now()); err != nil {
		return nil, fmt.Errorf("signing %s request, %w", suffix, err)
	}
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("calling %s, %w", suffix, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s, %w", suffix, err)
	}
	if resp.Header.Get(headerLocalCloud) == "" {
		return nil, providers.ErrUnsupported // not a gust local cloud (LocalStack, a proxy...)
	}
	if resp.StatusCode != http.StatusOK {
		var doc struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &doc)
		return nil, fmt.Errorf("calling %s, %w", suffix, mapError(&smithy.GenericAPIError{
			Code: resp.Header.Get("X-Amzn-Errortype"), Message: doc.Message}))
	}
	return body, nil
}

func (p *Provider) region() string {
	if p.cfg.Region != "" {
		return p.cfg.Region
	}
	if p.opts.Region != "" {
		return p.opts.Region
	}
	return "us-east-1"
}

// mapError turns Lambda error codes into the providers' typed errors. This
// is the only place that knows Lambda's codes.
func mapError(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.ErrorCode() {
	case "ResourceNotFoundException":
		return providers.NewNotFoundError(err)
	case "TooManyRequestsException":
		var tmr *types.TooManyRequestsException
		if errors.As(err, &tmr) {
			switch tmr.Reason {
			case types.ThrottleReasonCallerRateLimitExceeded, types.ThrottleReasonFunctionInvocationRateLimitExceeded,
				types.ThrottleReasonReservedFunctionInvocationRateLimitExceeded:
				return providers.NewThrottledError(err) // a request rate, not concurrency
			}
		}
		return providers.NewTooManyRequestsError(err)
	case "ThrottlingException", "RequestLimitExceeded":
		return providers.NewThrottledError(err)
	case "InvalidParameterValueException", "InvalidRequestContentException", "RequestEntityTooLargeException",
		"RequestTooLargeException", "UnsupportedMediaTypeException", "CodeStorageExceededException",
		"UnrecognizedClientException", "AccessDeniedException", "ValidationException",
		"InvalidSignatureException", "MissingAuthenticationTokenException":
		return providers.NewInvalidError(err)
	case "AccessDenied":
		// STS refused the tenant's role while the SDK renewed its
		// credentials mid-call: the tenant is gone.
		return providers.NewNotFoundError(err)
	}
	return err
}

func withHeader(name, value string) func(*awslambda.Options) {
	return func(o *awslambda.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return smithyhttp.AddHeaderValue(name, value)(s)
		})
	}
}

// fromGetFunction reads a GetFunction answer. The per-sub-tenant limit is
// the local cloud's X-Gust-Max-Envs-Per-Subtenant response header, the
// limit in force (its default included) where the tag holds only what a
// deploy set; AWS sends neither, and the limit is 0 there.
func fromGetFunction(tenant string, out *awslambda.GetFunctionOutput) providers.Function {
	f := toFunction(tenant, out.Configuration, out.Tags)
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		if n, err := strconv.Atoi(raw.Header.Get(headerMaxEnvsPerSubTenant)); err == nil && n > 0 {
			f.MaxEnvsPerSubTenant = n
		}
	}
	return f
}

func toFunction(tenant string, c *types.FunctionConfiguration, tags map[string]string) providers.Function {
	f := providers.Function{
		Tenant:     tenant,
		Name:       aws.ToString(c.FunctionName),
		Version:    aws.ToString(c.Version),
		CodeSHA256: aws.ToString(c.CodeSha256),
		Timeout:    time.Duration(aws.ToInt32(c.Timeout)) * time.Second,
		MemoryMB:   int(aws.ToInt32(c.MemorySize)),
	}
	if c.Environment != nil && len(c.Environment.Variables) > 0 {
		f.Env = c.Environment.Variables
	}
	if c.TenancyConfig != nil {
		f.Tenancy = string(c.TenancyConfig.TenantIsolationMode)
	}
	if v, ok := tags[tagMaxEnvsPerSubTenant]; ok {
		f.MaxEnvsPerSubTenant, _ = strconv.Atoi(v)
	}
	f.Egress = EgressNone
	if v := tags[tagEgress]; v != "" {
		f.Egress = v
	}
	if c.EphemeralStorage != nil {
		f.EphemeralMB = int(aws.ToInt32(c.EphemeralStorage.Size))
	}
	if lm := aws.ToString(c.LastModified); lm != "" {
		f.LastModified, _ = time.Parse("2006-01-02T15:04:05.000-0700", lm)
	}
	return f
}

func timeoutSeconds(d time.Duration) *int32 {
	if d <= 0 {
		return nil
	}
	s := int32((d + time.Second - 1) / time.Second) // round up: never cut a function short
	return &s
}

func ephemeralStorage(mb int) *types.EphemeralStorage {
	if mb <= 0 {
		return nil
	}
	return &types.EphemeralStorage{Size: aws.Int32(int32(mb))}
}

func memorySize(mb int) *int32 {
	if mb <= 0 {
		return nil
	}
	m := int32(mb)
	return &m
}

// executionRole is the role a tenant's functions are created with: the
// configured one, else DefaultRoleName in the tenant's account, so the
// function's Role names the same account as its ARN.
func (p *Provider) executionRole(tenant string) string {
	if p.opts.Role != "" {
		return p.opts.Role
	}
	if p.opts.Roles != nil {
		if arn, ok := p.opts.Roles(tenant); ok {
			// arn:aws:iam::<account>:role/<name>
			if parts := strings.SplitN(arn, ":", 6); len(parts) == 6 && parts[4] != "" {
				return "arn:" + parts[1] + ":iam::" + parts[4] + ":role/" + DefaultRoleName
			}
		}
	}
	return DefaultRole
}
