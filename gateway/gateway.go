// Package gateway is gust's front door for tenants' applications: it speaks
// AWS Lambda's Invoke API (POST /2015-03-31/functions/{name}/invocations),
// so unmodified AWS SDKs invoke gust functions, and it runs every call as
// an InvokeWorkflow.
//
// Every call is verified first: SigV4 against the tenant registry (the
// tenant is the key's owner), or a sub-tenant token (Authorization: Bearer,
// issued by `gust tenant token`), which may only invoke as its sub-tenant
// and, when it names one, only its function. Then every call starts
// InvokeWorkflow; RequestResponse and DryRun calls wait for its result.
//
// The gateway keeps no state of its own: the durable queue is the
// workflow's (an invocation waits for a free environment in its retry
// policy), idempotency is the workflow id, and the credentials are the
// registry's. Any number of gateways can serve side by side behind a load
// balancer.
package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/runwait"
	"github.com/gust-dev/gust/tenants"
	"github.com/gust-dev/gust/tenants/sigv4"
	"github.com/gust-dev/gust/workflows"
)

// Config configures a gateway.
type Config struct {
	// Client reaches the Temporal namespace gust's workers serve. Required.
	Client client.Client
	// Registry verifies callers. Required.
	Registry *tenants.Registry
	// Logger receives one line per refused caller and per internal
	// failure, never a secret or a token. Nil: slog.Default().
	Logger *slog.Logger
	// EventRetryDelay is the wait before the first retry of an Event
	// invocation whose function failed (twice that before the second);
	// 0 means workflows.DefaultEventRetryDelay, a minute, as Lambda.
	// Tests shorten it.
	EventRetryDelay time.Duration
	// ActivityMode is the invoke step's mode; empty: the workflow's default.
	ActivityMode workflows.ActivityMode
}

// Deadlines of the invocations the gateway starts. A RequestResponse
// invocation may queue for its max wait and then run for up to Lambda's
// longest function timeout, so its deadline covers both, and a function
// that got an environment is never cut short by gust. An event queues
// without a bound of its own (as Lambda's event queue), up to
// EventDeadline per attempt.
const (
	maxFunctionTimeout = 15 * time.Minute
	runMargin          = time.Minute
	EventDeadline      = time.Hour
)

// RequestResponseDeadline is the InvokeInput.Deadline the gateway gives a
// RequestResponse invocation with this max wait.
func RequestResponseDeadline(maxWait time.Duration) time.Duration {
	return maxWait + maxFunctionTimeout + runMargin
}

// gateway is the http.Handler New returns.
type gateway struct {
	cfg Config
	log *slog.Logger
}

// New returns the gateway's handler. It panics without a Client or a
// Registry, a programming error.
func New(cfg Config) http.Handler {
	if cfg.Client == nil || cfg.Registry == nil {
		panic("gateway: Config needs a Client and a Registry")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &gateway{cfg: cfg, log: log}
}

// caller is who a verified request comes from and what it may do.
type caller struct {
	tenant string
	// region is the SigV4 scope's region, for ARNs in messages.
	region string
	// token is set for a sub-tenant token: the scope of what it may
	// invoke.
	token *tenants.TokenClaims
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, ok := functionPath(r)
	if !ok || r.Method != http.MethodPost {
		g.fail(w, "", errorf(http.StatusNotFound, codeUnknownOperation, fmt.Sprintf("unknown operation %.10s %.200q", r.Method, r.URL.Path)))
		return
	}
	body, apiErr := readBody(r)
	if apiErr != nil {
		g.fail(w, "", apiErr)
		return
	}
	who, apiErr := g.authenticate(r, body, raw)
	if apiErr != nil {
		g.fail(w, "", apiErr)
		return
	}
	inv, apiErr := g.parse(r, who, raw, body)
	if apiErr != nil {
		g.fail(w, inv.in.RequestID, apiErr)
		return
	}
	g.invoke(w, r, inv)
}

// fail writes e with the request id, a new one if the call has none yet,
// so every answer carries one as Lambda's do.
func (g *gateway) fail(w http.ResponseWriter, requestID string, e *apiError) {
	if requestID == "" {
		requestID = uuid.NewString()
	}
	w.Header()[HeaderRequestID] = []string{requestID}
	writeError(w, e)
}

// authenticate verifies the caller: a bearer token, or SigV4 (header or
// presigned query) against the registry.
func (g *gateway) authenticate(r *http.Request, body []byte, rawFunction string) (caller, *apiError) {
	if tok, ok := bearerToken(r); ok {
		claims, err := g.cfg.Registry.VerifyToken(r.Context(), tok)
		if err != nil {
			return caller{}, g.tokenRefused(r, rawFunction, err)
		}
		return caller{tenant: claims.Tenant, region: "us-east-1", token: &claims}, nil
	}
	p, signed, err := g.cfg.Registry.Authenticate(r, body)
	if err != nil {
		return caller{}, g.signatureRefused(r, err)
	}
	if signed.Service != "lambda" {
		g.log.Info("gateway: request refused", "access_key_id", p.AccessKeyID, "reason", "credential scoped to service "+signed.Service)
		return caller{}, errorf(http.StatusForbidden, codeInvalidSignature, "Credential should be scoped to correct service: 'lambda'.")
	}
	if p.Platform || p.Tenant == "" {
		g.log.Info("gateway: request refused", "access_key_id", p.AccessKeyID, "reason", "the platform principal acts for no tenant")
		return caller{}, errorf(http.StatusForbidden, codeAccessDenied,
			"User: "+p.ARN()+" is not authorized to perform: lambda:InvokeFunction: the platform principal must assume a tenant's role first")
	}
	return caller{tenant: p.Tenant, region: signed.Region}, nil
}

// bearerToken returns the token of "Authorization: Bearer <token>".
func bearerToken(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(auth[7:]), true
}

// tokenRefused maps a token VerifyToken refused and logs one line naming
// why (the TokenError's message is safe to log), never the token.
func (g *gateway) tokenRefused(r *http.Request, rawFunction string, err error) *apiError {
	var te *tenants.TokenError
	if !errors.As(err, &te) {
		return g.internal(r, "verifying a bearer token", err)
	}
	g.log.Warn("gateway: bearer token refused", "function", rawFunction, "reason", te.Error())
	if tenants.IsTokenExpired(err) {
		return errorf(http.StatusUnauthorized, codeExpiredToken, "The bearer token has expired.")
	}
	return errorf(http.StatusUnauthorized, codeUnrecognizedClient, "The bearer token included in the request is invalid.")
}

// signatureRefused maps a SigV4 failure to the codes Lambda answers with.
// sigv4.Error messages are safe to show.
func (g *gateway) signatureRefused(r *http.Request, err error) *apiError {
	var se *sigv4.Error
	if !errors.As(err, &se) || sigv4.IsInternal(err) {
		return g.internal(r, "verifying a signature", err)
	}
	g.log.Info("gateway: request refused", "reason", se.Message)
	switch {
	case sigv4.IsMissingAuth(err):
		return errorf(http.StatusForbidden, codeMissingAuth, "Missing Authentication Token")
	case sigv4.IsUnknownKey(err):
		return errorf(http.StatusForbidden, codeUnrecognizedClient, "The security token included in the request is invalid.")
	case sigv4.IsMalformed(err):
		return errorf(http.StatusBadRequest, codeIncompleteSignature, se.Message)
	default: // a bad signature, or one outside the clock skew ("Signature expired: ...")
		return errorf(http.StatusForbidden, codeInvalidSignature, se.Message)
	}
}

// internal logs err, a failure of gust's own, under a new incident id and
// returns the ServiceException that names only the id.
func (g *gateway) internal(r *http.Request, doing string, err error) *apiError {
	id := uuid.NewString()[:8]
	g.log.Error("gateway: internal error", "doing", doing, "path", r.URL.Path, "incident", id, "error", err)
	return errorf(http.StatusInternalServerError, codeService, "internal error; see the gateway's log (incident "+id+")")
}

// invocation is a parsed, authorized call.
type invocation struct {
	in      workflows.InvokeInput
	typ     string
	maxWait time.Duration
	// keyed is set when an idempotency key named the invocation.
	keyed  bool
	region string
}

// parse checks the call and builds its InvokeInput. Every check that needs
// no lookup happens here, so a bad call starts nothing.
func (g *gateway) parse(r *http.Request, who caller, raw string, body []byte) (invocation, *apiError) {
	inv := invocation{region: who.region}
	var q string
	if r.URL.RawQuery != "" {
		q = r.URL.Query().Get("Qualifier")
	}
	fn, apiErr := parseFunction(raw, who.tenant, q)
	if apiErr != nil {
		return inv, apiErr
	}
	sub := r.Header.Get(HeaderTenantID)
	if who.token != nil {
		if apiErr := g.tokenScope(who, fn.name, &sub); apiErr != nil {
			return inv, apiErr
		}
	}
	inv.typ = r.Header.Get(HeaderInvocationType)
	switch inv.typ {
	case "":
		inv.typ = TypeRequestResponse
	case TypeRequestResponse, TypeEvent, TypeDryRun:
	default:
		return inv, errorf(http.StatusBadRequest, codeInvalidParameter,
			fmt.Sprintf("invalid invocation type %.40q: use RequestResponse, Event or DryRun", inv.typ))
	}
	logTail := false
	switch lt := r.Header.Get(HeaderLogType); lt {
	case "", "None":
	case "Tail":
		logTail = inv.typ == TypeRequestResponse // Lambda tails synchronous invocations only
	default:
		return inv, errorf(http.StatusBadRequest, codeInvalidParameter, fmt.Sprintf("invalid log type %.40q: use None or Tail", lt))
	}
	if sub == "" {
		return inv, errorf(http.StatusBadRequest, codeInvalidParameter, fmt.Sprintf(
			"The function %s has tenant isolation mode PER_TENANT: invocations must include a tenant id (%s)", fn.name, HeaderTenantID))
	}
	if err := workflows.ValidateSubTenant(sub); err != nil {
		return inv, errorf(http.StatusBadRequest, codeInvalidParameter, "invalid tenant id: "+err.Error())
	}
	maxWait, apiErr := parseMaxWait(r.Header.Get(HeaderMaxWait))
	if apiErr != nil {
		return inv, apiErr
	}
	inv.maxWait = maxWait
	requestID := uuid.NewString()
	if key := r.Header.Get(HeaderIdempotencyKey); key != "" {
		if err := workflows.ValidateRequestID(key); err != nil {
			return inv, errorf(http.StatusBadRequest, codeInvalidParameter, HeaderIdempotencyKey+": "+strings.Replace(err.Error(), "request id", "key", 1))
		}
		requestID, inv.keyed = idempotentRequestID(who.tenant, fn.name, sub, key), true
	}
	var payload json.RawMessage // nil, not empty, without a body: it encodes as null, sent as {}
	if len(body) > 0 {
		if !json.Valid(body) {
			return inv, errorf(http.StatusBadRequest, codeInvalidContent, "Could not parse request body into json: the payload is not valid JSON")
		}
		payload = body
	}
	inv.in = workflows.InvokeInput{
		RequestID:    requestID,
		Tenant:       who.tenant,
		Function:     fn.name,
		SubTenant:    sub,
		Payload:      payload,
		Qualifier:    fn.qualifier,
		LogTail:      logTail,
		ActivityMode: g.cfg.ActivityMode,
	}
	switch inv.typ {
	case TypeRequestResponse:
		inv.in.MaxQueueWait = maxWait
		inv.in.Deadline = RequestResponseDeadline(maxWait)
	case TypeEvent:
		inv.in.EventRetries = workflows.MaxEventRetries
		inv.in.EventRetryDelay = g.cfg.EventRetryDelay
		inv.in.Deadline = EventDeadline
	case TypeDryRun:
		inv.in.DryRun = true
	}
	if err := inv.in.Validate(); err != nil {
		return inv, errorf(http.StatusBadRequest, codeInvalidParameter, err.Error())
	}
	return inv, nil
}

// tokenScope holds a token to what it allows: its sub-tenant (a missing
// X-Amz-Tenant-Id means it) and, if it names one, its function. A refusal
// is logged with the tenant, the function and why, never the token.
func (g *gateway) tokenScope(who caller, function string, sub *string) *apiError {
	claims := who.token
	refuse := func(why string) *apiError {
		g.log.Warn("gateway: bearer token refused", "tenant", claims.Tenant, "function", function, "reason", why)
		return errorf(http.StatusForbidden, codeAccessDenied, "The bearer token does not allow this invocation: "+why)
	}
	switch {
	case *sub == "":
		*sub = claims.SubTenant
	case *sub != claims.SubTenant:
		return refuse(fmt.Sprintf("it is scoped to another sub-tenant than %.64q", *sub))
	}
	if claims.Function != "" && claims.Function != function {
		return refuse("it is scoped to another function than " + function)
	}
	return nil
}

// invoke starts the invocation and answers it.
func (g *gateway) invoke(w http.ResponseWriter, r *http.Request, inv invocation) {
	in := inv.in
	opts := client.StartWorkflowOptions{
		ID:        workflows.InvokeWorkflowID(in.Tenant, in.Function, in.RequestID),
		TaskQueue: workflows.TaskQueue,
		// Saves a round trip through matching when this process also
		// runs a worker (gust dev); ignored otherwise.
		EnableEagerStart: true,
		Memo:             workflows.InvokeMemo(in),
	}
	if inv.keyed {
		// A retried call joins the first: a running invocation is
		// attached to (USE_EXISTING, no error), and a closed one is
		// answered with its result (the server refuses a new run and the
		// SDK returns the closed one). Only a failed run may be replaced:
		// a failed InvokeWorkflow never ran the function to completion
		// (it timed out in the queue, the function was not found...), so
		// a retry with the same key after a 429 waits in the queue again
		// instead of getting the same 429 forever.
		opts.WorkflowIDConflictPolicy = enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING
		opts.WorkflowIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY
	}
	w.Header()[HeaderRequestID] = []string{in.RequestID}
	run, err := g.cfg.Client.ExecuteWorkflow(r.Context(), opts, workflows.InvokeWorkflow, in)
	if err != nil {
		g.fail(w, in.RequestID, g.startFailed(r, err))
		return
	}
	if inv.typ == TypeEvent {
		// Started is durable: the event will run, and be retried.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), in.Deadline+runMargin)
	defer cancel()
	var res workflows.InvokeResult
	if err := waitResult(ctx, g.cfg.Client, run, &res); err != nil {
		g.fail(w, in.RequestID, g.invokeFailed(r, inv, err))
		return
	}
	if inv.typ == TypeDryRun {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h := w.Header()
	version := res.ExecutedVersion
	if version == "" {
		version = "$LATEST"
	}
	h[HeaderExecuted] = []string{version}
	if in.LogTail {
		h[HeaderLogResult] = []string{base64.StdEncoding.EncodeToString([]byte(res.LogTail))}
	}
	payload := []byte(res.Payload)
	if res.FunctionError != nil {
		h[HeaderFunctionError] = []string{"Unhandled"}
		payload, _ = json.Marshal(struct {
			ErrorType    string `json:"errorType"`
			ErrorMessage string `json:"errorMessage"`
		}{res.FunctionError.Type, res.FunctionError.Message})
	} else if len(payload) == 0 {
		payload = []byte("null")
	}
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = []string{strconv.Itoa(len(payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

// waitResult waits for the invocation's result: the one place the gateway
// waits. runwait.Get is run.Get without the 20 s stall a lost long-poll
// wake-up causes on the server (issue 8, section 7), which every
// RequestResponse call would otherwise risk.
func waitResult(ctx context.Context, c client.Client, run client.WorkflowRun, res *workflows.InvokeResult) error {
	return runwait.Get(ctx, c, run, res)
}

// startFailed maps a failure to start the workflow.
func (g *gateway) startFailed(r *http.Request, err error) *apiError {
	var invalid *serviceerror.InvalidArgument
	var exhausted *serviceerror.ResourceExhausted
	switch {
	case errors.As(err, &invalid) && strings.Contains(strings.ToLower(invalid.Message), "size"):
		// Temporal's blob size limit (2 MB by default) is below Lambda's
		// 6 MB: the payload cannot travel through history.
		return errorf(http.StatusRequestEntityTooLarge, codeTooLarge,
			"the payload is larger than this gust's Temporal server accepts in a workflow input (limit.blobSize.error, 2 MB by default)")
	case errors.As(err, &exhausted):
		return &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, reason: reasonCallerRateExceeded,
			message: "Rate Exceeded. gust's Temporal namespace is at its request rate limit"}
	case errors.Is(err, context.Canceled):
		return errorf(499, codeService, "the caller went away") // nobody reads it
	}
	var unavailable *serviceerror.Unavailable
	if errors.As(err, &unavailable) || errors.Is(err, context.DeadlineExceeded) {
		g.log.Error("gateway: temporal unavailable", "error", err)
		return errorf(http.StatusServiceUnavailable, codeService, "gust's Temporal service is unavailable; retry")
	}
	return g.internal(r, "starting InvokeWorkflow", err)
}

// invokeFailed maps InvokeWorkflow's failure types (see the contract in
// workflows/invoke_api.go) to Lambda's errors.
func (g *gateway) invokeFailed(r *http.Request, inv invocation, err error) *apiError {
	in := inv.in
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		switch appErr.Type() {
		case providers.ErrTypeNotFound:
			arn := "arn:aws:lambda:" + inv.region + ":" + tenants.AccountID(in.Tenant) + ":function:" + in.Function
			if in.Qualifier != "" {
				arn += ":" + in.Qualifier
			}
			return errorf(http.StatusNotFound, codeNotFound, "Function not found: "+arn)
		case workflows.ErrTypeQueueTimeout:
			return &apiError{status: http.StatusTooManyRequests, code: codeTooManyRequests, reason: reasonConcurrentLimit,
				message: fmt.Sprintf("Rate Exceeded. No execution environment of sub-tenant %q was free within %s (%s); the invocation was not run",
					in.SubTenant, inv.maxWait, HeaderMaxWait)}
		case providers.ErrTypeInvalid, providers.ErrTypeUnsupported:
			return errorf(http.StatusBadRequest, codeInvalidParameter, callerMessage(appErr.Message()))
		case workflows.ErrTypeDeadlineExceeded:
			// The queue's bound ends a wait for an environment first, so
			// this is gust failing to reach its cloud for that long.
			return g.internal(r, "running InvokeWorkflow", err)
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return errorf(http.StatusGatewayTimeout, codeService, "timed out waiting for the invocation's result; it may still complete")
	}
	if errors.Is(err, context.Canceled) {
		return errorf(499, codeService, "the caller went away")
	}
	return g.internal(r, "running InvokeWorkflow", err)
}

// callerMessage strips what a provider error prefixes to a cloud's message
// ("invoking function, invoking f, operation error Lambda: Invoke, https
// response error StatusCode: 400, RequestID: ..., InvalidParameterValueException: the message"),
// so the caller sees the cloud's own words.
func callerMessage(msg string) string {
	if i := strings.LastIndex(msg, "Exception: "); i >= 0 {
		return msg[i+len("Exception: "):]
	}
	return msg
}
