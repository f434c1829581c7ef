package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gust-dev/gust/providers"
)

// Functions method names, as recorded in FunctionCall.Method and accepted by
// Functions.FailNext.
const (
	MethodDeploy       = "Deploy"
	MethodGet          = "Get"
	MethodList         = "List"
	MethodDelete       = "Delete"
	MethodInvoke       = "Invoke"
	MethodEnvironments = "Environments"
	MethodLogs         = "Logs"
)

// Handler is a fake function's code: it gets the invocation and returns
// the response payload, or a *providers.FunctionError for a function error.
type Handler func(ctx context.Context, in providers.InvokeInput) ([]byte, error)

// FunctionCall is one recorded call of Functions. Input is the method's
// argument after ctx: a providers.FunctionSpec, a providers.InvokeInput, or
// a []string of the string arguments.
type FunctionCall struct {
	Method string
	Input  any
}

// Functions is an in-memory providers.Functions with the local cloud's
// semantics where gust depends on them: functions keyed by (tenant, name)
// and invisible to other tenants; PER_TENANT functions require a sub-tenant
// and others refuse one; an environment per (tenant, function, version,
// sub-tenant) that is reused while free (ColdStart false) and never shared;
// the per-sub-tenant limit answered with TooManyRequestsError; payloads
// over 6 MB and bad JSON answered with InvalidError. Invocations run the
// function's Handler (see SetHandler; Echo by default) synchronously, one
// at a time per environment. It is safe for concurrent use.
type Functions struct {
	mu       sync.Mutex
	fns      map[fnKey]*fakeFunction
	failures map[string][]error
	calls    []FunctionCall
	seq      int
}

type fnKey struct{ tenant, name string }

type fakeFunction struct {
	fn       providers.Function
	handler  Handler
	envs     []*fakeEnv
	logs     map[string]string // by sub-tenant
	deployed int               // deploys, for versions
}

type fakeEnv struct {
	env  providers.Environment
	busy bool
}

var _ providers.Functions = (*Functions)(nil)

// NewFunctions returns an empty Functions.
func NewFunctions() *Functions {
	return &Functions{fns: map[fnKey]*fakeFunction{}, failures: map[string][]error{}}
}

// Echo is the default handler: it returns the payload (or {} when empty).
func Echo(_ context.Context, in providers.InvokeInput) ([]byte, error) {
	if len(in.Payload) == 0 {
		return []byte("{}"), nil
	}
	return in.Payload, nil
}

// SetHandler sets the code of a deployed function; it survives redeploys.
func (f *Functions) SetHandler(tenant, name string, h Handler) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.fns[fnKey{tenant, name}]
	if !ok {
		return providers.NewNotFoundError(fmt.Errorf("function %s not found", name))
	}
	fn.handler = h
	return nil
}

// FailNext makes the next call of method return err, once. Calls queue up.
func (f *Functions) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = append(f.failures[method], err)
}

// Calls returns the calls made so far, in order.
func (f *Functions) Calls() []FunctionCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FunctionCall(nil), f.calls...)
}

// begin records a call and returns a queued error, if any.
func (f *Functions) begin(method string, input any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, FunctionCall{method, input})
	if q := f.failures[method]; len(q) > 0 {
		f.failures[method] = q[1:]
		return q[0]
	}
	return nil
}

func (f *Functions) Deploy(ctx context.Context, spec providers.FunctionSpec) (providers.Function, error) {
	if err := f.begin(MethodDeploy, spec); err != nil {
		return providers.Function{}, err
	}
	if spec.Tenant == "" || spec.Name == "" || len(spec.Zip) == 0 {
		return providers.Function{}, providers.NewInvalidError(fmt.Errorf("tenant, name and code are required"))
	}
	if spec.Tenancy != providers.TenancyNone && spec.Tenancy != providers.TenancyPerTenant {
		return providers.Function{}, providers.NewInvalidError(fmt.Errorf("invalid tenancy %q", spec.Tenancy))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fnKey{spec.Tenant, spec.Name}
	fn, ok := f.fns[k]
	if !ok {
		fn = &fakeFunction{handler: Echo, logs: map[string]string{}}
		f.fns[k] = fn
	} else if fn.fn.Tenancy != spec.Tenancy {
		return providers.Function{}, providers.NewInvalidError(fmt.Errorf("tenancy cannot change"))
	}
	fn.deployed++
	fn.fn = providers.Function{
		Tenant: spec.Tenant, Name: spec.Name, Version: strconv.Itoa(fn.deployed),
		CodeSHA256: fmt.Sprintf("fake-%d", len(spec.Zip)), Timeout: spec.Timeout, MemoryMB: spec.MemoryMB,
		Env: spec.Env, MaxEnvsPerSubTenant: spec.MaxEnvsPerSubTenant, Tenancy: spec.Tenancy, LastModified: time.Now(),
		Egress: spec.Egress, EphemeralMB: spec.EphemeralMB,
	}
	// As a cloud reports them: no policy is "none", no size the default.
	if fn.fn.Egress == "" {
		fn.fn.Egress = "none"
	}
	if fn.fn.EphemeralMB == 0 {
		fn.fn.EphemeralMB = 512
	}
	// Environments of older versions retire: idle ones go now.
	kept := fn.envs[:0]
	for _, e := range fn.envs {
		if e.busy {
			e.env.State = "retired"
			kept = append(kept, e)
		}
	}
	fn.envs = kept
	return fn.fn, nil
}

func (f *Functions) Get(ctx context.Context, tenant, name string) (providers.Function, error) {
	if err := f.begin(MethodGet, []string{tenant, name}); err != nil {
		return providers.Function{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.fns[fnKey{tenant, name}]
	if !ok {
		return providers.Function{}, providers.NewNotFoundError(fmt.Errorf("function %s not found", name))
	}
	return fn.fn, nil
}

func (f *Functions) List(ctx context.Context, tenant string) ([]providers.Function, error) {
	if err := f.begin(MethodList, []string{tenant}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []providers.Function
	for k, fn := range f.fns {
		if k.tenant == tenant {
			out = append(out, fn.fn)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Functions) Delete(ctx context.Context, tenant, name string) error {
	if err := f.begin(MethodDelete, []string{tenant, name}); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	k := fnKey{tenant, name}
	if _, ok := f.fns[k]; !ok {
		return providers.NewNotFoundError(fmt.Errorf("function %s not found", name))
	}
	delete(f.fns, k)
	return nil
}

// Invoke runs the function's handler in the sub-tenant's environment.
// Async invocations run synchronously here and return an empty payload.
func (f *Functions) Invoke(ctx context.Context, in providers.InvokeInput) (providers.InvokeResult, error) {
	if err := f.begin(MethodInvoke, in); err != nil {
		return providers.InvokeResult{}, err
	}
	if len(in.Payload) > 6*1024*1024 {
		return providers.InvokeResult{}, providers.NewInvalidError(fmt.Errorf("payload over 6 MB"))
	}
	if len(in.Payload) > 0 && !json.Valid(in.Payload) {
		return providers.InvokeResult{}, providers.NewInvalidError(fmt.Errorf("payload is not valid JSON"))
	}
	f.mu.Lock()
	fn, ok := f.fns[fnKey{in.Tenant, in.Function}]
	if !ok {
		f.mu.Unlock()
		return providers.InvokeResult{}, providers.NewNotFoundError(fmt.Errorf("function %s not found", in.Function))
	}
	if fn.fn.Tenancy == providers.TenancyPerTenant && in.SubTenant == "" {
		f.mu.Unlock()
		return providers.InvokeResult{}, providers.NewInvalidError(fmt.Errorf("function %s is PER_TENANT: a sub-tenant is required", in.Function))
	}
	if fn.fn.Tenancy != providers.TenancyPerTenant && in.SubTenant != "" {
		f.mu.Unlock()
		return providers.InvokeResult{}, providers.NewInvalidError(fmt.Errorf("function %s has no tenancy: remove the sub-tenant", in.Function))
	}
	if q := in.Qualifier; q != "" && q != "$LATEST" && q != fn.fn.Version {
		f.mu.Unlock()
		return providers.InvokeResult{}, providers.NewNotFoundError(fmt.Errorf("function %s:%s not found", in.Function, q))
	}
	version := fn.fn.Version
	env, cold, err := f.acquireLocked(fn, in.SubTenant)
	handler := fn.handler
	f.mu.Unlock()
	if err != nil {
		return providers.InvokeResult{}, err
	}

	start := time.Now()
	payload, herr := handler(ctx, in)
	res := providers.InvokeResult{Payload: payload, EnvironmentID: env.env.ID, ColdStart: cold, Duration: time.Since(start), ExecutedVersion: version}
	if in.Async {
		res.Payload = nil
	}

	f.mu.Lock()
	env.busy = false
	env.env.LastUsed = time.Now()
	if env.env.State != "retired" {
		env.env.State = "idle"
	} else {
		f.removeEnvLocked(fn, env)
	}
	if herr == nil {
		fn.logs[in.SubTenant] += fmt.Sprintf("START RequestId: %s\nEND RequestId: %s\n", in.RequestID, in.RequestID)
	}
	f.mu.Unlock()
	if in.LogTail && !in.Async {
		// What the local cloud's tail holds for a function that prints
		// nothing: the invocation's own START and END lines.
		res.LogTail = fmt.Sprintf("START RequestId: %s\nEND RequestId: %s\n", in.RequestID, in.RequestID)
	}
	if herr != nil {
		return res, herr
	}
	return res, nil
}

func (f *Functions) acquireLocked(fn *fakeFunction, sub string) (*fakeEnv, bool, error) {
	live := 0
	for i := len(fn.envs) - 1; i >= 0; i-- {
		e := fn.envs[i]
		if e.env.SubTenant != sub || e.env.Version != fn.fn.Version {
			continue
		}
		live++
		if !e.busy {
			e.busy = true
			e.env.State = "busy"
			e.env.Invocations++
			return e, false, nil
		}
	}
	limit := fn.fn.MaxEnvsPerSubTenant
	if limit <= 0 {
		limit = 10
	}
	if live >= limit {
		return nil, false, providers.NewTooManyRequestsError(fmt.Errorf("sub-tenant %q has all %d environments busy", sub, limit))
	}
	f.seq++
	now := time.Now()
	e := &fakeEnv{busy: true, env: providers.Environment{
		ID: fmt.Sprintf("env-fake%011d", f.seq), Function: fn.fn.Name, Version: fn.fn.Version, SubTenant: sub,
		State: "busy", Invocations: 1, Started: now, LastUsed: now, MemoryMB: fn.fn.MemoryMB,
	}}
	fn.envs = append(fn.envs, e)
	return e, true, nil
}

func (f *Functions) removeEnvLocked(fn *fakeFunction, env *fakeEnv) {
	for i, e := range fn.envs {
		if e == env {
			fn.envs = append(fn.envs[:i], fn.envs[i+1:]...)
			return
		}
	}
}

func (f *Functions) Environments(ctx context.Context, tenant, name string) ([]providers.Environment, error) {
	if err := f.begin(MethodEnvironments, []string{tenant, name}); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.fns[fnKey{tenant, name}]
	if !ok {
		return nil, providers.NewNotFoundError(fmt.Errorf("function %s not found", name))
	}
	out := make([]providers.Environment, 0, len(fn.envs))
	for _, e := range fn.envs {
		out = append(out, e.env)
	}
	return out, nil
}

func (f *Functions) Logs(ctx context.Context, tenant, name, subTenant string) (string, error) {
	if err := f.begin(MethodLogs, []string{tenant, name, subTenant}); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fn, ok := f.fns[fnKey{tenant, name}]
	if !ok {
		return "", providers.NewNotFoundError(fmt.Errorf("function %s not found", name))
	}
	return fn.logs[subTenant], nil
}
