// Package lambda implements providers.Functions with aws-sdk-go-v2's Lambda
// client. One code path serves gust's local cloud, LocalStack and AWS:
// functions are created with TenancyConfig PER_TENANT and invoked with a
// TenantId (the sub-tenant). The local cloud's extras (environment id and
// cold-start headers, environment and log listings) are read when present
// and reported as absent or ErrUnsupported when not.
//
// # Tenants
//
// With Options.TenantAccessKeys (the default when Options.Endpoint is set),
// each tenant gets its own client whose static access key id is the tenant
// id: the local cloud, like LocalStack, maps access keys to tenants, so the
// cloud itself keeps tenants apart. On AWS a tenant is an account: the
// provider signs with the configured credentials, and Options.Tenant names
// the one tenant that account belongs to (calls for any other tenant are
// NotFoundError, as if its functions did not exist).
package lambda

import (
	"bytes"
	"context"
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
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

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

	// localSecret is the secret access key of per-tenant clients. The local
	// cloud does not verify signatures; LocalStack accepts any secret.
	localSecret = "gust"
	// DefaultRole is the execution role functions are created with when
	// Options.Role is empty; the local cloud ignores it.
	DefaultRole = "arn:aws:iam::000000000000:role/gust-function"
	// MaxPayloadBytes is Lambda's synchronous payload limit.
	MaxPayloadBytes = 6 * 1024 * 1024
	// MinEphemeralMB and MaxEphemeralMB are Lambda's bounds on
	// EphemeralStorage.Size.
	MinEphemeralMB = 512
	MaxEphemeralMB = 10240
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
	// TenantAccessKeys signs each tenant's requests with the tenant id as
	// access key id. Nil means true when Endpoint is set, false otherwise.
	TenantAccessKeys *bool
	// Tenant is, on AWS (TenantAccessKeys false), the one tenant the
	// account belongs to: an AWS account is the tenant boundary there, so
	// every other tenant id is refused. It is required in that mode; without
	// it every function call is refused rather than letting tenants share
	// one account's functions.
	Tenant string
	// Role is the execution role of created functions; DefaultRole if empty.
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
	perTenant  bool
	shared     LambdaAPI // used when !perTenant
	newClient  func(tenant string) LambdaAPI
	clients    sync.Map       // tenant -> LambdaAPI when perTenant
	httpClient aws.HTTPClient // for the local cloud's extension endpoints
	signer     *v4.Signer
}

var _ providers.Functions = (*Provider)(nil)

// NewFromConfig builds a provider from the standard configuration chain
// (environment, shared config, Options.Profile). With an Endpoint, the
// client uses it as BaseEndpoint and falls back to static credentials when
// the chain has none, as the local cloud needs no real ones.
func NewFromConfig(ctx context.Context, o Options) (*Provider, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Endpoint: o.Endpoint, Region: o.Region, Profile: o.Profile})
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
	if o.Role == "" {
		o.Role = DefaultRole
	}
	perTenant := o.Endpoint != ""
	if o.TenantAccessKeys != nil {
		perTenant = *o.TenantAccessKeys
	}
	clientOpts := func(lo *awslambda.Options) {
		if o.Endpoint != "" {
			lo.BaseEndpoint = aws.String(o.Endpoint)
		}
		// After the SDK has resolved its own HTTP client (timeouts of the
		// defaults mode), so those are kept.
		lo.HTTPClient = inMemoryBodyClient{lo.HTTPClient}
	}
	p := &Provider{opts: o, cfg: cfg, perTenant: perTenant, httpClient: cfg.HTTPClient, signer: v4.NewSigner()}
	if p.httpClient == nil {
		p.httpClient = http.DefaultClient
	}
	p.newClient = func(tenant string) LambdaAPI {
		c := cfg.Copy()
		c.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(tenant, localSecret, ""))
		return awslambda.NewFromConfig(c, clientOpts)
	}
	if !perTenant {
		p.shared = awslambda.NewFromConfig(cfg, clientOpts)
	}
	return p
}

// NewWithAPI returns a provider whose every tenant uses api, for tests
// with a fake LambdaAPI.
func NewWithAPI(api LambdaAPI, o Options) *Provider {
	if o.Role == "" {
		o.Role = DefaultRole
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	return &Provider{opts: o, shared: api, httpClient: http.DefaultClient, signer: v4.NewSigner()}
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
func (p *Provider) client(tenant string) (LambdaAPI, error) {
	if !validTenant(tenant) {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid tenant id %q: use 1 to 128 characters from [A-Za-z0-9_-]", tenant))
	}
	if !p.perTenant {
		if p.opts.Tenant == "" {
			return nil, providers.NewInvalidError(errors.New("this worker serves no tenant on AWS: start it with --tenant, the tenant its AWS account belongs to"))
		}
		if tenant != p.opts.Tenant {
			return nil, providers.NewNotFoundError(fmt.Errorf("tenant %s has no functions in this account", tenant))
		}
		return p.shared, nil
	}
	if c, ok := p.clients.Load(tenant); ok {
		return c.(LambdaAPI), nil
	}
	c, _ := p.clients.LoadOrStore(tenant, p.newClient(tenant))
	return c.(LambdaAPI), nil
}

// Deploy creates the function, or updates its configuration and code if it
// exists. Lambda cannot change a function's tenancy mode; that is an
// InvalidError (delete and deploy again).
func (p *Provider) Deploy(ctx context.Context, spec providers.FunctionSpec) (providers.Function, error) {
	if err := validateSpec(spec); err != nil {
		return providers.Function{}, err
	}
	c, err := p.client(spec.Tenant)
	if err != nil {
		return providers.Function{}, err
	}
	in := &awslambda.CreateFunctionInput{
		FunctionName:     aws.String(spec.Name),
		Role:             aws.String(p.opts.Role),
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
	c, err := p.client(tenant)
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
	return toFunction(tenant, out.Configuration, out.Tags), nil
}

// List returns the tenant's functions. ListFunctions does not return tags,
// which carry the egress policy and MaxEnvsPerSubTenant, so each listed
// function is read with GetFunction (a few at a time); one deleted in
// between is left out.
func (p *Provider) List(ctx context.Context, tenant string) ([]providers.Function, error) {
	c, err := p.client(tenant)
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
				fns[i], found[i] = toFunction(tenant, out.Configuration, out.Tags), true
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
	c, err := p.client(tenant)
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
	c, err := p.client(in.Tenant)
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
	if in.Async {
		input.InvocationType = types.InvocationTypeEvent
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
	res := providers.InvokeResult{Payload: out.Payload, Duration: dur}
	if raw, ok := awsmiddleware.GetRawResponse(out.ResultMetadata).(*smithyhttp.Response); ok {
		res.EnvironmentID = raw.Header.Get(headerEnvironmentID)
		res.ColdStart = raw.Header.Get(headerColdStart) == "true"
	}
	if out.FunctionError != nil {
		return res, parseFunctionError(out.Payload, aws.ToString(out.FunctionError))
	}
	return res, nil
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
	if _, err := p.client(tenant); err != nil {
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
	creds, err := p.credentials(ctx, tenant)
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

func (p *Provider) credentials(ctx context.Context, tenant string) (aws.Credentials, error) {
	if p.perTenant {
		return aws.Credentials{AccessKeyID: tenant, SecretAccessKey: localSecret, Source: "gust"}, nil
	}
	if p.cfg.Credentials == nil {
		return aws.Credentials{}, errors.New("no aws credentials configured")
	}
	creds, err := p.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return aws.Credentials{}, fmt.Errorf("retrieving credentials, %w", err)
	}
	return creds, nil
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
		"UnrecognizedClientException", "AccessDeniedException", "ValidationException":
		return providers.NewInvalidError(err)
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
