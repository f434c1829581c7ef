package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/limits"
	"github.com/gust-dev/gust/providers"
)

// Invocation contract.
//
// One InvokeWorkflow runs per invocation, on TaskQueue, with the workflow id
// InvokeWorkflowID(tenant, function, requestID). A starter should:
//
//   - call InvokeInput.Validate first and exit 2 on error, so a bad request
//     never reaches Temporal (the workflow validates again, for starters that
//     skip this);
//   - start with client.StartWorkflowOptions{ID: InvokeWorkflowID(...),
//     TaskQueue: TaskQueue, EnableEagerStart: true}. Eager start saves the
//     first workflow task's round trip through matching, but only when the
//     starting client is also the client of a running worker in the same
//     process (gust bench, gust demo, an embedded starter); the server's
//     system.enableEagerWorkflowStart is on by default. A standalone `gust fn invoke`
//     process has no local worker, so there the flag is harmless and ignored;
//   - treat a successful workflow whose InvokeResult.FunctionError is set as
//     "the function failed": print FunctionError.Type and Message, exit 1.
//     A failed workflow means gust itself could not run the invocation (see
//     the error types below);
//   - leave WorkflowExecutionTimeout unset, or set it above the deadline:
//     the deadline already bounds the invocation.
//
// Payloads travel inline through Temporal history. Validate accepts
// Lambda's 6 MB, but Temporal's default blob size limit (limit.blobSize.error,
// 2 MB) and the frontend's 4 MB gRPC message limit are lower: with default
// server settings a request payload over about 2 MB is refused when the
// workflow starts (nothing runs, nothing is half done), and a response over
// activities.DefaultMaxResponseBytes (1.5 MB) comes back as a function error
// of type "Function.ResponseSizeTooLarge", as Lambda reports responses over
// its limit.

// Invocation limits, as AWS Lambda sets them (see package limits, which
// every layer checks).
const (
	// MaxPayloadBytes is the largest request payload (Lambda's 6 MB
	// synchronous invocation limit).
	MaxPayloadBytes = limits.MaxPayloadBytes
	// MaxSubTenantLen is the longest sub-tenant id (Lambda's TenantId).
	MaxSubTenantLen = limits.MaxSubTenantIDLen
	// MaxNameLen is the longest tenant id or function name.
	MaxNameLen = limits.MaxNameLen
	// MaxRequestIDLen is the longest request id.
	MaxRequestIDLen = limits.MaxRequestIDLen
)

// Invocation deadlines. The deadline bounds the whole invocation: waiting
// for a free environment while concurrency limits are reached (gust's
// durable queue) plus running the function.
const (
	DefaultInvokeDeadline = 5 * time.Minute
	MaxInvokeDeadline     = 24 * time.Hour
)

// Error types of a failed InvokeWorkflow, besides the provider types
// (providers.ErrTypeInvalid "InvalidRequest", providers.ErrTypeNotFound
// "NotFound", providers.ErrTypeUnsupported "Unsupported"). All are
// non-retryable. A function's own error is not a workflow failure: it is
// InvokeResult.FunctionError.
const (
	// ErrTypeDeadlineExceeded means the invocation could not be run before
	// its deadline, typically because the function's concurrency limits
	// stayed full (TooManyRequests) the whole time.
	ErrTypeDeadlineExceeded = providers.ErrTypeDeadlineExceeded
	// ErrTypeQueueTimeout means the invocation waited MaxQueueWait in the
	// durable queue without getting an environment. It never ran and never
	// will: the workflow is closed. The gateway answers it with Lambda's
	// TooManyRequestsException (429).
	ErrTypeQueueTimeout = providers.ErrTypeQueueTimeout
)

// Bounds of the gateway-facing InvokeInput fields.
const (
	// MaxEventRetries is the most retries of a function error
	// InvokeInput.EventRetries allows (Lambda's MaximumRetryAttempts).
	MaxEventRetries = 2
	// DefaultEventRetryDelay is the wait before the first retry of a
	// failed event; it doubles for the second (Lambda waits about one
	// minute, then two).
	DefaultEventRetryDelay = time.Minute
	// MaxEventRetryDelay bounds InvokeInput.EventRetryDelay.
	MaxEventRetryDelay = time.Hour
)

// ActivityMode selects how InvokeWorkflow runs the invoke step.
type ActivityMode string

const (
	// ActivityModeDefault uses DefaultInvokeActivityMode.
	ActivityModeDefault ActivityMode = ""
	// ActivityModeLocal runs the invoke step as a local activity, in the
	// worker that runs the workflow task. It saves the activity task's trip
	// through the server's matching service and two history events, but a
	// worker crash retries the attempt only after the workflow task times
	// out.
	ActivityModeLocal ActivityMode = "local"
	// ActivityModeRegular runs the invoke step as a regular activity,
	// dispatched through the task queue to any worker.
	ActivityModeRegular ActivityMode = "regular"
)

// DefaultInvokeActivityMode is the mode an invocation with
// ActivityModeDefault uses. `gust bench fn` measures both modes; see
// docs/benchmarks.md. Changing this constant changes the commands of
// in-flight workflows, so it must go behind workflow.GetVersion.
const DefaultInvokeActivityMode = ActivityModeLocal

// InvokeInput is one invocation of a deployed function for a sub-tenant.
type InvokeInput struct {
	// RequestID identifies the invocation; it is part of the workflow id and
	// is passed to the provider for idempotency and logs. 1 to 128 characters
	// from [a-zA-Z0-9._:-].
	RequestID string `json:"request_id"`
	Tenant    string `json:"tenant"`
	Function  string `json:"function"`
	// SubTenant is Lambda's TenantId: the tenant's customer this invocation
	// runs for. Its environments serve nobody else.
	SubTenant string `json:"subtenant"`
	// Payload is the JSON event; empty or null is sent as {}. At most
	// MaxPayloadBytes.
	Payload json.RawMessage `json:"payload"`
	// Async selects Lambda's Event invocation type: the result carries no
	// payload.
	Async bool `json:"async"`
	// Deadline bounds the whole invocation, including the wait for a free
	// environment; 0 means DefaultInvokeDeadline.
	Deadline time.Duration `json:"deadline_ns"`
	// ActivityMode selects a local or a regular activity for the invoke step;
	// empty means DefaultInvokeActivityMode.
	ActivityMode ActivityMode `json:"activity_mode"`

	// The fields below were added for the gateway. Each one's zero value
	// keeps the workflow's earlier behaviour and command sequence, so
	// histories of inputs without them replay unchanged. omitempty keeps
	// them out of the encoded inputs of starters that do not use them.

	// MaxQueueWait bounds the wait in the durable queue (all environments
	// of the sub-tenant busy, a concurrency limit reached): an invocation
	// that has not started running within MaxQueueWait of the workflow's
	// start (of each event attempt's start) fails with ErrTypeQueueTimeout
	// and never runs afterwards. One that got an environment runs to
	// completion, however long that takes. 0 means no bound but Deadline.
	MaxQueueWait time.Duration `json:"max_queue_wait_ns,omitempty"`
	// EventRetries retries a function error up to this many times (0 to
	// MaxEventRetries), waiting EventRetryDelay before the first retry and
	// twice that before the second: Lambda's retries of asynchronous
	// invocations, which the gateway queues here as synchronous runs of the
	// function so that gust sees their outcome. Not with Async, whose
	// outcome only the cloud sees. The result is the last attempt's.
	EventRetries int `json:"event_retries,omitempty"`
	// EventRetryDelay is the first retry's wait; 0 means
	// DefaultEventRetryDelay.
	EventRetryDelay time.Duration `json:"event_retry_delay_ns,omitempty"`
	// DryRun checks that the function exists and may be invoked with this
	// input (Lambda's DryRun invocation type) and runs nothing.
	DryRun bool `json:"dry_run,omitempty"`
	// LogTail asks for the last 4 KB of the invocation's log in
	// InvokeResult.LogTail (Lambda's LogType Tail). Ignored with Async.
	LogTail bool `json:"log_tail,omitempty"`
	// Qualifier selects the version to run (Lambda's Qualifier): empty or
	// "$LATEST" for the latest, or a version number; one the function does
	// not have fails with NotFound.
	Qualifier string `json:"qualifier,omitempty"`
}

// InvokeResult is a completed invocation. `gust fn invoke --output json`
// prints its fixed fields (payload, environment_id, cold_start,
// duration_ms, function_error) and the request id; see docs/cli.md.
type InvokeResult struct {
	// Payload is the function's response; a response that is not valid JSON
	// arrives as a JSON string. null for Async invocations and function
	// errors.
	Payload json.RawMessage `json:"payload"`
	// EnvironmentID and ColdStart are reported by the local cloud; AWS
	// reports neither (empty and false).
	EnvironmentID string `json:"environment_id"`
	ColdStart     bool   `json:"cold_start"`
	// DurationMS is how long the invocation ran, in milliseconds.
	DurationMS int64 `json:"duration_ms"`
	// FunctionError is set when the function's handler failed, crashed or
	// timed out. The workflow still succeeds: the CLI prints Type and
	// Message and exits 1.
	FunctionError *FunctionErrorInfo `json:"function_error,omitempty"`
	// LogTail is the end of the invocation's log (at most 4 KB) when
	// InvokeInput.LogTail asked for it and the cloud returned one.
	LogTail string `json:"log_tail,omitempty"`
	// Attempts is how many times the function ran when InvokeInput.EventRetries
	// allowed retries; 0 otherwise (one run).
	Attempts int `json:"attempts,omitempty"`
	// ExecutedVersion is the version that ran, when the cloud says.
	ExecutedVersion string `json:"executed_version,omitempty"`
}

// FunctionErrorInfo is a function's own error, as its runtime reported it.
type FunctionErrorInfo struct {
	Type    string `json:"type"`    // e.g. "Runtime.ExitError"
	Message string `json:"message"` // e.g. "exit status 2"
}

// Memo fields of an InvokeWorkflow, set by InvokeMemo. `gust fn
// invocations` reads them from visibility to filter a listing without
// reading each workflow's history; workflows started without them are
// filtered by their input instead.
const (
	MemoTenant    = "tenant"
	MemoFunction  = "function"
	MemoSubTenant = "subtenant"
)

// InvokeMemo is the memo a starter should give an InvokeWorkflow
// (client.StartWorkflowOptions.Memo). The sub-tenant id is no secret: it
// is in the workflow's input too.
func InvokeMemo(in InvokeInput) map[string]any {
	return map[string]any{MemoTenant: in.Tenant, MemoFunction: in.Function, MemoSubTenant: in.SubTenant}
}

// InvokeStartOptions are the options a starter (`gust fn invoke`, the demo,
// the benchmarks) gives the InvokeWorkflow of in: its id InvokeWorkflowID,
// TaskQueue, InvokeMemo, and REJECT_DUPLICATE, so a request id runs once and
// a second start with it fails with WorkflowExecutionAlreadyStarted, which
// the starter answers by joining the run. eager asks the server to hand the
// first workflow task straight to the starter's own worker. The gateway
// starts invocations with options of its own (idempotency keys).
func InvokeStartOptions(in InvokeInput, eager bool) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                    InvokeWorkflowID(in.Tenant, in.Function, in.RequestID),
		TaskQueue:             TaskQueue,
		EnableEagerStart:      eager,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		Memo:                  InvokeMemo(in),
	}
}

// InvokeWorkflowID is the workflow id of one invocation:
// invoke-<tenant>-<function>-<requestID>. Inputs that pass Validate are used
// unchanged, so distinct valid requests get distinct ids; any other
// character is replaced with '_' and each part is truncated, so the id is
// always a safe workflow id.
func InvokeWorkflowID(tenant, function, requestID string) string {
	return "invoke-" + sanitizeIDPart(tenant, MaxNameLen) + "-" +
		sanitizeIDPart(function, MaxNameLen) + "-" + sanitizeIDPart(requestID, MaxRequestIDLen)
}

// InvokeWorkflowIDPrefix is the prefix every InvokeWorkflowID of the
// tenant's function starts with. Names may contain '-', so other
// functions' ids can share it (tenant "a", function "b-c" and function
// "b"): a listing by prefix must still check each workflow's tenant and
// function.
func InvokeWorkflowIDPrefix(tenant, function string) string {
	return "invoke-" + sanitizeIDPart(tenant, MaxNameLen) + "-" + sanitizeIDPart(function, MaxNameLen) + "-"
}

func sanitizeIDPart(s string, maxLen int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			break
		}
		if r < utf8.RuneSelf && (limits.IsAlnum(byte(r)) || strings.ContainsRune("._:-", r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// ValidateTenantID checks a tenant id: 1 to 64 characters from
// [a-zA-Z0-9_-], starting with a letter or digit. Tenant ids name
// directories and database keys, so path separators and ".." can never
// appear.
func ValidateTenantID(tenant string) error { return validateName("tenant id", tenant) }

// ValidateFunctionName checks a function name with the same rule as
// ValidateTenantID (Lambda's function-name charset, without the ARN forms).
func ValidateFunctionName(name string) error { return validateName("function name", name) }

func validateName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%s is required", what)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%s %.20q... is longer than %d characters", what, s, MaxNameLen)
	case strings.ContainsAny(s, `/\`) || strings.Contains(s, ".."):
		return fmt.Errorf("%s %q must not contain path separators or \"..\"", what, s)
	case !limits.ValidName(s):
		return fmt.Errorf("%s %q must start with a letter or digit and contain only letters, digits, '-' and '_'", what, s)
	}
	return nil
}

// ValidateSubTenant checks a sub-tenant id with limits.ValidSubTenantID:
// Lambda's TenantId rule, 1 to 256 characters from [a-zA-Z0-9._:/=+\-@ ],
// not starting or ending with a space (which HTTP headers drop). Sub-tenant
// ids may contain '/', so they must never be used as a path; no workflow id
// contains one.
func ValidateSubTenant(subTenant string) error {
	switch {
	case subTenant == "":
		return errors.New("sub-tenant id is required")
	case len(subTenant) > MaxSubTenantLen:
		return fmt.Errorf("sub-tenant id is %d characters, more than %d", len(subTenant), MaxSubTenantLen)
	case !limits.ValidSubTenantID(subTenant):
		return fmt.Errorf("sub-tenant id %q may contain only letters, digits, spaces and . _ : / = + - @, and must not start or end with a space", subTenant)
	}
	return nil
}

// MaxQualifierLen is the longest version qualifier (Lambda's).
const MaxQualifierLen = 128

var qualifierRE = regexp.MustCompile(`^[a-zA-Z0-9$_-]+$`)

// ValidateQualifier checks a version qualifier with Lambda's rule: empty,
// or 1 to 128 characters from [a-zA-Z0-9$_-].
func ValidateQualifier(q string) error {
	switch {
	case q == "":
		return nil
	case len(q) > MaxQualifierLen:
		return fmt.Errorf("qualifier is longer than %d characters", MaxQualifierLen)
	case !qualifierRE.MatchString(q):
		return fmt.Errorf("qualifier %q may contain only letters, digits, $, _ and -", q)
	}
	return nil
}

// ValidateRequestID checks a request id: 1 to 128 characters from
// [a-zA-Z0-9._:-] (a UUID fits).
func ValidateRequestID(id string) error {
	switch {
	case id == "":
		return errors.New("request id is required")
	case len(id) > MaxRequestIDLen:
		return fmt.Errorf("request id is longer than %d characters", MaxRequestIDLen)
	case !limits.ValidRequestID(id):
		return fmt.Errorf("request id %q may contain only letters, digits and . _ : -", id)
	}
	return nil
}

// Validate checks the invocation before it starts. The CLI calls it to exit
// 2 on a usage error; InvokeWorkflow calls it again and fails with a
// non-retryable "InvalidRequest" ApplicationError.
func (in InvokeInput) Validate() error {
	if err := ValidateRequestID(in.RequestID); err != nil {
		return err
	}
	if err := ValidateTenantID(in.Tenant); err != nil {
		return err
	}
	if err := ValidateFunctionName(in.Function); err != nil {
		return err
	}
	if err := ValidateSubTenant(in.SubTenant); err != nil {
		return err
	}
	if len(in.Payload) > MaxPayloadBytes {
		return fmt.Errorf("payload is %d bytes, more than the %d byte (6 MB) limit", len(in.Payload), MaxPayloadBytes)
	}
	if len(in.Payload) > 0 && !json.Valid(in.Payload) {
		return errors.New("payload is not valid JSON")
	}
	if in.Deadline < 0 || in.Deadline > MaxInvokeDeadline {
		return fmt.Errorf("deadline %s is outside 0 (default %s) to %s", in.Deadline, DefaultInvokeDeadline, MaxInvokeDeadline)
	}
	switch in.ActivityMode {
	case ActivityModeDefault, ActivityModeLocal, ActivityModeRegular:
	default:
		return fmt.Errorf("activity mode %q is not %q or %q", in.ActivityMode, ActivityModeLocal, ActivityModeRegular)
	}
	if in.MaxQueueWait < 0 || in.MaxQueueWait > MaxInvokeDeadline {
		return fmt.Errorf("max queue wait %s is outside 0 (no bound) to %s", in.MaxQueueWait, MaxInvokeDeadline)
	}
	if in.EventRetries < 0 || in.EventRetries > MaxEventRetries {
		return fmt.Errorf("event retries %d is outside 0 to %d", in.EventRetries, MaxEventRetries)
	}
	if in.EventRetryDelay < 0 || in.EventRetryDelay > MaxEventRetryDelay {
		return fmt.Errorf("event retry delay %s is outside 0 (default %s) to %s", in.EventRetryDelay, DefaultEventRetryDelay, MaxEventRetryDelay)
	}
	if err := ValidateQualifier(in.Qualifier); err != nil {
		return err
	}
	if in.EventRetries > 0 && in.Async {
		return errors.New("event retries need the workflow to run the function (not Async): an Async invocation's outcome is the cloud's to see")
	}
	return nil
}
