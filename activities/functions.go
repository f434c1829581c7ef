package activities

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/bootstrap"
	"github.com/gust-dev/gust/providers"
)

// Functions runs the Lambda-style function activities against a provider.
//
// Activity type names are the method names. They carry a "Function" prefix
// or suffix because every domain's activities share one worker registry,
// where generic names such as Get or Delete would collide.
type Functions struct {
	// Functions is the provider; never nil on a worker.
	Functions providers.Functions
	// MaxResponseBytes caps a function's response, which travels through
	// Temporal history; 0 means DefaultMaxResponseBytes. Raise it only with
	// the server's limit.blobSize.error.
	MaxResponseBytes int
	// SubTenantMetrics adds the subtenant label to the invocation
	// metrics (MetricInvocations, MetricColdStarts). Off by default: a
	// platform may serve millions of sub-tenants, and every one would be
	// a series of its own.
	SubTenantMetrics bool
}

// DefaultMaxResponseBytes keeps a response, with its encoding overhead,
// under Temporal's default 2 MB blob size limit. Lambda allows 6 MB; a
// larger response fails as Lambda's does, with a function error of type
// ResponseTooLargeErrorType, instead of failing the workflow inside Temporal.
const DefaultMaxResponseBytes = 1536 * 1024

// ResponseTooLargeErrorType is the function error type of a response over
// the limit, as Lambda names it.
const ResponseTooLargeErrorType = "Function.ResponseSizeTooLarge"

// Code limits of DeployFunction.
const (
	// MaxFunctionCodeBytes is the largest code a deploy accepts, zipped or a single
	// executable (Lambda's 50 MB direct-upload limit).
	MaxFunctionCodeBytes = 50 * 1024 * 1024
	// MaxFunctionLogBytes is the most log output FunctionLogs returns: the tail,
	// kept well under Temporal's payload size limit.
	MaxFunctionLogBytes = 1024 * 1024
)

// InvokeFunctionInput is one invocation. Payload is JSON; empty or null is
// sent as {}.
type InvokeFunctionInput struct {
	RequestID string          `json:"request_id"`
	Tenant    string          `json:"tenant"`
	Function  string          `json:"function"`
	SubTenant string          `json:"subtenant"`
	Payload   json.RawMessage `json:"payload"`
	Async     bool            `json:"async"`
	// LogTail asks for the last providers.MaxLogTailBytes of the
	// invocation's log in the result (Lambda's LogType Tail).
	LogTail bool `json:"log_tail,omitempty"`
	// Qualifier selects the version (Lambda's Qualifier); empty: latest.
	Qualifier string `json:"qualifier,omitempty"`
	// QueueDeadline, when set, bounds how long the invocation may wait in
	// the durable queue: an attempt that starts after it fails at once with
	// the non-retryable QueueTimeout, without invoking, and a retryable
	// failure (a full concurrency limit) is retried no later than at the
	// deadline, so the wait overshoots it by one retry's scheduling at
	// most. Once an attempt got an environment, the function runs to
	// completion whatever the time. Zero: no bound but the activity's
	// timeout.
	QueueDeadline time.Time `json:"queue_deadline,omitzero"`
}

// ErrTypeQueueTimeout is the error type of an invocation that did not start
// running before its InvokeFunctionInput.QueueDeadline. It is non-retryable:
// the invocation never ran and never will.
const ErrTypeQueueTimeout = providers.ErrTypeQueueTimeout

// The invoke step's retry backoff while a concurrency limit is full (see
// InvokeWorkflow's retry policy, which uses these): from
// QueueRetryInitialInterval, doubling, at most QueueRetryMaxInterval.
const (
	QueueRetryInitialInterval = 100 * time.Millisecond
	QueueRetryMaxInterval     = 5 * time.Second
)

// queueRetryDelay is the retry policy's backoff after the given attempt
// (1-based), as the SDK computes it.
func queueRetryDelay(attempt int32) time.Duration {
	d := QueueRetryInitialInterval
	for i := int32(1); i < attempt && d < QueueRetryMaxInterval; i++ {
		d *= 2
	}
	return min(d, QueueRetryMaxInterval)
}

// InvokeFunctionResult is a successful invocation. A response that is not
// valid JSON arrives as a JSON string, so the result always encodes.
type InvokeFunctionResult struct {
	Payload       json.RawMessage `json:"payload"`
	EnvironmentID string          `json:"environment_id"`
	ColdStart     bool            `json:"cold_start"`
	DurationMS    int64           `json:"duration_ms"`
	// LogTail is the end of the invocation's log when the input asked for
	// it (at most providers.MaxLogTailBytes).
	LogTail string `json:"log_tail,omitempty"`
	// ExecutedVersion is the version that ran, when the cloud says.
	ExecutedVersion string `json:"executed_version,omitempty"`
}

// InvokeFunction runs the function for the sub-tenant. The provider picks a
// warm environment of the sub-tenant or starts one.
//
// Errors are converted by ProviderError: FunctionError, InvalidRequest and
// Unsupported are non-retryable (a FunctionError carries the
// providers.FunctionError as its details); TooManyRequests (concurrency
// limits are full), Throttled and NotFound keep their types, and the
// workflow's retry policy decides (InvokeWorkflow waits out TooManyRequests
// until the deadline and treats NotFound as final).
func (f *Functions) InvokeFunction(ctx context.Context, in InvokeFunctionInput) (InvokeFunctionResult, error) {
	payload := bytes.TrimSpace(in.Payload)
	if len(payload) == 0 || bytes.Equal(payload, []byte("null")) {
		payload = []byte("{}") // an empty json.RawMessage travels as null
	}
	start := time.Now()
	if !in.QueueDeadline.IsZero() && start.After(in.QueueDeadline) {
		return InvokeFunctionResult{}, queueTimeout(in)
	}
	res, err := f.Functions.Invoke(ctx, providers.InvokeInput{
		Tenant:    in.Tenant,
		Function:  in.Function,
		SubTenant: in.SubTenant,
		Payload:   payload,
		Async:     in.Async,
		RequestID: in.RequestID,
		LogTail:   in.LogTail && !in.Async,
		Qualifier: in.Qualifier,
	})
	if err != nil {
		var fnErr *providers.FunctionError
		if !errors.As(err, &fnErr) {
			f.recordInvocation(ctx, in, "error", res.ColdStart, start)
			return InvokeFunctionResult{}, boundedRetry(ctx, in, ProviderErrorf("invoking function", err))
		}
		f.recordInvocation(ctx, in, "function_error", res.ColdStart, start)
		// The function ran: its environment, cold start and duration are
		// part of the result, so they travel as a second detail.
		return InvokeFunctionResult{}, NewFunctionError("invoking function, "+fnErr.Error(), *fnErr, InvokeFunctionResult{
			EnvironmentID:   res.EnvironmentID,
			ColdStart:       res.ColdStart,
			DurationMS:      durationOr(res.Duration, start).Milliseconds(),
			LogTail:         capLogTail(res.LogTail),
			ExecutedVersion: res.ExecutedVersion,
		})
	}
	f.recordInvocation(ctx, in, "ok", res.ColdStart, start)
	limit := f.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxResponseBytes
	}
	if len(res.Payload) > limit {
		return InvokeFunctionResult{}, ProviderErrorf("invoking function", &providers.FunctionError{
			Type:    ResponseTooLargeErrorType,
			Message: fmt.Sprintf("response payload size (%d bytes) exceeded the limit (%d bytes)", len(res.Payload), limit),
		})
	}
	return InvokeFunctionResult{
		Payload:         fnJSONPayload(res.Payload),
		EnvironmentID:   res.EnvironmentID,
		ColdStart:       res.ColdStart,
		DurationMS:      durationOr(res.Duration, start).Milliseconds(),
		LogTail:         capLogTail(res.LogTail),
		ExecutedVersion: res.ExecutedVersion,
	}, nil
}

// capLogTail keeps the last providers.MaxLogTailBytes of a provider's log
// tail, so a cloud that returns more cannot grow the history.
func capLogTail(s string) string {
	if len(s) > providers.MaxLogTailBytes {
		return s[len(s)-providers.MaxLogTailBytes:]
	}
	return s
}

// queueTimeout is the final error of an invocation that did not get to run
// before its queue deadline.
func queueTimeout(in InvokeFunctionInput) error {
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("invocation of %s for sub-tenant %q did not start before its queue deadline (%s): every environment it may use stayed busy",
			in.Function, in.SubTenant, in.QueueDeadline.UTC().Format(time.RFC3339Nano)),
		ErrTypeQueueTimeout, nil)
}

// boundedRetry keeps a queued invocation's retries within its
// QueueDeadline. Waiting in the queue means a full concurrency limit
// (TooManyRequests) or a rate limit (Throttled): past the deadline such an
// error becomes QueueTimeout, and before it the next attempt is asked for
// no later than the deadline (NextRetryDelay overrides the policy's
// backoff for that one retry). Other errors and invocations without a
// deadline pass unchanged.
func boundedRetry(ctx context.Context, in InvokeFunctionInput, err error) error {
	var appErr *temporal.ApplicationError
	if in.QueueDeadline.IsZero() || !errors.As(err, &appErr) || appErr.NonRetryable() {
		return err
	}
	if t := appErr.Type(); t != providers.ErrTypeTooManyRequests && t != providers.ErrTypeThrottled {
		return err
	}
	remaining := time.Until(in.QueueDeadline)
	if remaining <= 0 {
		return queueTimeout(in)
	}
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	if delay := queueRetryDelay(attempt); delay <= remaining {
		return err
	}
	// The SDK reads the delay only from the returned error itself, not
	// from one it wraps, so the error is rebuilt with its type and message.
	return temporal.NewApplicationErrorWithOptions(appErr.Message(), appErr.Type(),
		temporal.ApplicationErrorOptions{NextRetryDelay: remaining})
}

// durationOr is the provider's measured duration, or the time since start
// when the provider did not measure one (AWS reports none).
func durationOr(d time.Duration, start time.Time) time.Duration {
	if d <= 0 {
		return time.Since(start)
	}
	return d
}

// fnJSONPayload returns p if it is JSON, null if it is empty, and p as a JSON
// string otherwise (Lambda responses are bytes; most handlers return JSON).
func fnJSONPayload(p []byte) json.RawMessage {
	if len(bytes.TrimSpace(p)) == 0 {
		return nil
	}
	if json.Valid(p) {
		return p
	}
	s, _ := json.Marshal(string(p)) // a string always marshals
	return s
}

// DeployFunctionInput is a function to deploy. The code is either inline in
// Code or, when it is too big for a Temporal payload, a file at CodePath on
// this worker's machine whose SHA-256 must be CodeSHA256.
type DeployFunctionInput struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Code is a zip with bootstrap at its root, or a single executable.
	Code []byte `json:"code"`
	// CodePath is an absolute path the worker can read; CodeSHA256 (hex) is
	// its content hash as the deployer saw it. A file changed since fails
	// the deploy instead of deploying something else.
	CodePath            string            `json:"code_path"`
	CodeSHA256          string            `json:"code_sha256"`
	Timeout             time.Duration     `json:"timeout_ns"`
	MemoryMB            int               `json:"memory_mb"`
	Env                 map[string]string `json:"env"`
	MaxEnvsPerSubTenant int               `json:"max_envs_per_subtenant"`
	// Egress is the network egress policy ("none", "all" or
	// HOST[:PORT],...); "" means none.
	Egress string `json:"egress,omitempty"`
	// EphemeralMB is the size of /tmp in MB; 0 means the default (512).
	EphemeralMB int `json:"ephemeral_mb,omitempty"`
}

// ContainsSecrets reports whether the deploy carries variables, which
// tenants use for API keys: the codec data converter (codec.SecretCarrier)
// then encrypts the payload in history.
func (in DeployFunctionInput) ContainsSecrets() bool { return len(in.Env) > 0 }

// FunctionConfig is a function's configuration as an activity returns it:
// providers.Function (the same JSON), marked for the codec data converter
// when it carries variables, so they are encrypted in history.
type FunctionConfig providers.Function

// ContainsSecrets reports whether the function has variables.
func (f FunctionConfig) ContainsSecrets() bool { return len(f.Env) > 0 }

// FunctionList is a list of functions as an activity returns it (the JSON
// of []providers.Function), marked like FunctionConfig.
type FunctionList []providers.Function

// ContainsSecrets reports whether any function has variables.
func (fs FunctionList) ContainsSecrets() bool {
	for _, f := range fs {
		if len(f.Env) > 0 {
			return true
		}
	}
	return false
}

// DeployFunction creates the function or publishes a new version of it.
// A single executable is wrapped in a zip as bootstrap. Errors:
// InvalidRequest for bad code or configuration (including a CodePath that
// is missing, too big or changed), retryable errors otherwise.
func (f *Functions) DeployFunction(ctx context.Context, in DeployFunctionInput) (FunctionConfig, error) {
	code := in.Code
	if in.CodePath != "" {
		var err error
		if code, err = fnReadCode(in.CodePath, in.CodeSHA256); err != nil {
			return FunctionConfig{}, ProviderErrorf("deploying function", providers.NewInvalidError(err))
		}
	}
	zipped, err := BootstrapZip(code)
	if err != nil {
		return FunctionConfig{}, ProviderErrorf("deploying function", providers.NewInvalidError(err))
	}
	fn, err := f.Functions.Deploy(ctx, providers.FunctionSpec{
		Tenant:              in.Tenant,
		Name:                in.Name,
		Zip:                 zipped,
		Timeout:             in.Timeout,
		MemoryMB:            in.MemoryMB,
		Env:                 in.Env,
		MaxEnvsPerSubTenant: in.MaxEnvsPerSubTenant,
		Tenancy:             providers.TenancyPerTenant,
		Egress:              in.Egress,
		EphemeralMB:         in.EphemeralMB,
	})
	if err != nil {
		return FunctionConfig{}, ProviderErrorf("deploying function", err)
	}
	return FunctionConfig(fn), nil
}

// fnReadCode reads the code file and checks its size and hash.
func fnReadCode(path, wantSHA256 string) ([]byte, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("code path %q is not absolute", path)
	}
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading code on the worker (deploying a large file needs a worker on the same machine), %w", err)
	}
	defer file.Close()
	code, err := io.ReadAll(io.LimitReader(file, MaxFunctionCodeBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading code %s, %w", path, err)
	}
	if len(code) > MaxFunctionCodeBytes {
		return nil, fmt.Errorf("code %s is larger than %d MB", path, MaxFunctionCodeBytes>>20)
	}
	sum := sha256.Sum256(code)
	if got := hex.EncodeToString(sum[:]); got != wantSHA256 {
		return nil, fmt.Errorf("code %s changed since the deploy started (sha256 %s, expected %s)", path, got, wantSHA256)
	}
	return code, nil
}

// BootstrapZip returns code as a deployment zip: a zip is checked for a
// bootstrap file at its root and returned unchanged; anything else is taken
// as the bootstrap executable and wrapped by bootstrap.Zip, as the local
// cloud wraps one it is sent bare: the same executable always gives the same
// zip and the same code hash, whichever path deployed it.
func BootstrapZip(code []byte) ([]byte, error) {
	if len(code) == 0 {
		return nil, errors.New("code is empty")
	}
	if len(code) > MaxFunctionCodeBytes {
		return nil, fmt.Errorf("code is larger than %d MB", MaxFunctionCodeBytes>>20)
	}
	if bytes.HasPrefix(code, []byte("PK\x03\x04")) || bytes.HasPrefix(code, []byte("PK\x05\x06")) {
		zr, err := zip.NewReader(bytes.NewReader(code), int64(len(code)))
		if err != nil {
			return nil, fmt.Errorf("code looks like a zip but cannot be read, %w", err)
		}
		for _, file := range zr.File {
			if file.Name == bootstrap.FileName && !file.FileInfo().IsDir() {
				return code, nil
			}
		}
		return nil, errors.New("code zip has no bootstrap file at its root")
	}
	return bootstrap.Zip(code)
}

// FunctionCheck is what a dry run learns of a function: whether and how it
// may be invoked, and nothing secret (no variables), so a dry run's
// history holds none.
type FunctionCheck struct {
	Tenancy string `json:"tenancy"`
	Version string `json:"version"`
}

// CheckFunction looks the tenant's function up for a dry run; NotFound if
// it has none.
func (f *Functions) CheckFunction(ctx context.Context, tenant, name string) (FunctionCheck, error) {
	fn, err := f.Functions.Get(ctx, tenant, name)
	if err != nil {
		return FunctionCheck{}, ProviderErrorf("getting function", err)
	}
	return FunctionCheck{Tenancy: fn.Tenancy, Version: fn.Version}, nil
}

// ListFunctions returns the tenant's functions.
func (f *Functions) ListFunctions(ctx context.Context, tenant string) (FunctionList, error) {
	fns, err := f.Functions.List(ctx, tenant)
	if err != nil {
		return nil, ProviderErrorf("listing functions", err)
	}
	return fns, nil
}

// DeleteFunction deletes the tenant's function; NotFound if it has none.
func (f *Functions) DeleteFunction(ctx context.Context, tenant, name string) error {
	if err := f.Functions.Delete(ctx, tenant, name); err != nil {
		return ProviderErrorf("deleting function", err)
	}
	return nil
}

// FunctionEnvironments lists the function's execution environments;
// Unsupported where the provider cannot list them.
func (f *Functions) FunctionEnvironments(ctx context.Context, tenant, name string) ([]providers.Environment, error) {
	envs, err := f.Functions.Environments(ctx, tenant, name)
	if err != nil {
		return nil, ProviderErrorf("listing environments", err)
	}
	return envs, nil
}

// FunctionLogsResult is the tail of a sub-tenant's captured output.
type FunctionLogsResult struct {
	Logs string `json:"logs"`
	// Truncated is set when older output was cut to keep MaxFunctionLogBytes.
	Truncated bool `json:"truncated"`
}

// FunctionLogs returns the captured stdout and stderr of the sub-tenant's
// environments, at most the last MaxFunctionLogBytes.
func (f *Functions) FunctionLogs(ctx context.Context, tenant, name, subTenant string) (FunctionLogsResult, error) {
	logs, err := f.Functions.Logs(ctx, tenant, name, subTenant)
	if err != nil {
		return FunctionLogsResult{}, ProviderErrorf("reading logs", err)
	}
	if len(logs) <= MaxFunctionLogBytes {
		return FunctionLogsResult{Logs: logs}, nil
	}
	return FunctionLogsResult{Logs: logs[len(logs)-MaxFunctionLogBytes:], Truncated: true}, nil
}
