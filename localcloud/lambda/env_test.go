package lambda_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// TestIsolationUnderConcurrency is the property test for rule 1: many
// sub-tenants, many parallel invocations each; every response names its
// environment, and no environment (nor process) ever serves two
// sub-tenants. The handler itself reports the tenant id it was given.
func TestIsolationUnderConcurrency(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, maxEnvs: 4})

	const subTenants, parallel, rounds = 8, 4, 4
	var (
		mu      sync.Mutex
		envSub  = map[string]string{}
		invoked atomic.Int64
	)
	var wg sync.WaitGroup
	for s := range subTenants {
		sub := fmt.Sprintf("customer-%d", s)
		for range parallel {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					r, err := invoke(t, c, "echo", sub, map[string]any{"sleep_ms": 5})
					if err != nil {
						// A sub-tenant's own limit (4) equals its
						// parallelism, so no throttling is expected.
						t.Errorf("invoke %s: %v", sub, err)
						return
					}
					invoked.Add(1)
					assert.Equal(t, sub, r.resp.TenantID, "the handler saw another sub-tenant")
					mu.Lock()
					if prev, ok := envSub[r.envID]; ok && prev != sub {
						t.Errorf("environment %s served %s and %s", r.envID, prev, sub)
					}
					envSub[r.envID] = sub
					if r.resp.EnvironmentID != r.envID {
						t.Errorf("the process of environment %s answered for %s", r.resp.EnvironmentID, r.envID)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	assert.Equal(t, int64(subTenants*parallel*rounds), invoked.Load())
	perSub := map[string]int{}
	for _, sub := range envSub {
		perSub[sub]++
	}
	assert.Len(t, perSub, subTenants)
	for sub, n := range perSub {
		assert.LessOrEqual(t, n, 4, "sub-tenant %s exceeded its environment limit", sub)
	}
	// The listing agrees with what the responses said.
	for _, e := range h.envs(t, "t1", "echo").Environments {
		assert.Equal(t, envSub[e.EnvironmentID], e.SubTenant)
	}
}

func TestWarmEnvironmentIsReused(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})

	first := mustInvoke(t, c, "echo", "s1", nil)
	assert.True(t, first.cold)
	assert.Equal(t, int64(1), first.resp.Invocations)
	assert.Equal(t, "1", first.executed)
	assert.Regexp(t, `^env-[0-9a-f]{16}$`, first.envID)
	for i := 2; i <= 4; i++ {
		r := mustInvoke(t, c, "echo", "s1", nil)
		assert.False(t, r.cold)
		assert.Equal(t, first.envID, r.envID)
		assert.Equal(t, first.resp.PID, r.resp.PID)
		assert.Equal(t, int64(i), r.resp.Invocations)
	}
	// Another sub-tenant never gets that environment, idle as it is.
	other := mustInvoke(t, c, "echo", "s2", nil)
	assert.True(t, other.cold)
	assert.NotEqual(t, first.envID, other.envID)

	envs := h.envs(t, "t1", "echo").Environments
	require.Len(t, envs, 2)
	for _, e := range envs {
		assert.Equal(t, "idle", e.State)
	}
}

func TestHandledErrorKeepsEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	ok := mustInvoke(t, c, "echo", "s", nil)
	r := mustInvoke(t, c, "echo", "s", map[string]any{"error": "boom"})
	assert.Equal(t, "Unhandled", r.fnError)
	assert.Equal(t, "EchoError", r.errDoc["errorType"])
	assert.Equal(t, "boom", r.errDoc["errorMessage"])
	assert.Equal(t, ok.envID, r.envID, "a handled error does not discard the environment")
	again := mustInvoke(t, c, "echo", "s", nil)
	assert.Equal(t, ok.envID, again.envID)
}

func TestPerSubTenantLimitThrottles(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, maxEnvs: 2, timeout: 10})

	release := h.holdBusy(t, "t1", "echo", "noisy", 2)
	_, err := invoke(t, c, "echo", "noisy", nil)
	var tmr *types.TooManyRequestsException
	require.ErrorAs(t, err, &tmr)
	assert.Equal(t, types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded, tmr.Reason)

	// The noisy sub-tenant does not starve a quiet one.
	quiet := mustInvoke(t, c, "echo", "quiet", nil)
	assert.Equal(t, "quiet", quiet.resp.TenantID)
	release()

	// Once its invocations end, the noisy sub-tenant is served again, warm.
	r := mustInvoke(t, c, "echo", "noisy", nil)
	assert.False(t, r.cold)
}

func TestMaxEnvsPerSubTenantFromHeader(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.MaxEnvsPerSubTenant = 5 })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 10})
	// Through the gust header on UpdateFunctionConfiguration.
	_, err := c.UpdateFunctionConfiguration(context.Background(), &awslambda.UpdateFunctionConfigurationInput{
		FunctionName: aws.String("echo")}, func(o *awslambda.Options) {
		o.APIOptions = append(o.APIOptions, addHeader(lambda.HeaderMaxEnvsPerSubTenant, "1"))
	})
	require.NoError(t, err)
	got, err := c.GetFunction(context.Background(), &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assert.Equal(t, "1", got.Tags[lambda.TagMaxEnvsPerSubTenant])
	assert.Equal(t, "2", aws.ToString(got.Configuration.Version), "a configuration change is a new version")

	release := h.holdBusy(t, "t1", "echo", "s", 1)
	defer release()
	_, err = invoke(t, c, "echo", "s", nil)
	var tmr *types.TooManyRequestsException
	require.ErrorAs(t, err, &tmr)
}

func TestFunctionAndTotalLimits(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.MaxEnvsPerFunction = 3
		cfg.MaxEnvsTotal = 4
	})
	c := h.client("t1")
	createFn(t, c, "f1", fnOpts{tenancy: true, timeout: 10})
	createFn(t, c, "f2", fnOpts{tenancy: true, timeout: 10})

	release1 := h.holdBusy(t, "t1", "f1", "a", 1)
	release2 := h.holdBusy(t, "t1", "f1", "b", 1)
	release3 := h.holdBusy(t, "t1", "f1", "c", 1)
	_, err := invoke(t, c, "f1", "d", nil)
	var tmr *types.TooManyRequestsException
	require.ErrorAs(t, err, &tmr, "per-function limit")

	release4 := h.holdBusy(t, "t1", "f2", "a", 1)
	_, err = invoke(t, c, "f2", "b", nil)
	require.ErrorAs(t, err, &tmr, "total limit, with nothing idle to evict")
	assert.Equal(t, types.ThrottleReasonConcurrentInvocationLimitExceeded, tmr.Reason)
	release1()
	release2()
	release3()
	release4()
}

// TestLRUIdleEnvironmentEvictedWhenFull is rule 4's second half.
func TestLRUIdleEnvironmentEvictedWhenFull(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.MaxEnvsTotal = 2 })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})

	a := mustInvoke(t, c, "echo", "a", nil)
	b := mustInvoke(t, c, "echo", "b", nil)
	bPID := h.pidOf(t, "t1", "echo", b.envID)
	mustInvoke(t, c, "echo", "a", nil) // a is now the most recently used; b the least
	cr := mustInvoke(t, c, "echo", "c", nil)
	assert.True(t, cr.cold)

	ids := map[string]string{}
	for _, e := range h.envs(t, "t1", "echo").Environments {
		ids[e.EnvironmentID] = e.SubTenant
	}
	assert.Equal(t, map[string]string{a.envID: "a", cr.envID: "c"}, ids, "b's idle environment made room")
	assertProcessGone(t, bPID)

	again := mustInvoke(t, c, "echo", "a", nil)
	assert.Equal(t, a.envID, again.envID)
}

func TestIdleEnvironmentsAreReaped(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.IdleTTL = time.Hour // the background reaper never fires on its own in this test
		cfg.Now = func() time.Time { return time.Unix(0, now.Load()) }
	})
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	old := mustInvoke(t, c, "echo", "old", nil)
	oldPID := h.pidOf(t, "t1", "echo", old.envID)
	now.Add(int64(50 * time.Minute))
	fresh := mustInvoke(t, c, "echo", "fresh", nil)

	assert.Equal(t, 0, h.cloud.Reap())
	now.Add(int64(11 * time.Minute))
	assert.Equal(t, 1, h.cloud.Reap(), "only the environment idle for over an hour")
	envs := h.envs(t, "t1", "echo").Environments
	require.Len(t, envs, 1)
	assert.Equal(t, fresh.envID, envs[0].EnvironmentID)
	assertProcessGone(t, oldPID)
	_, err := os.Stat(filepath.Join(h.cfg.StateDir, "envs", old.envID))
	assert.True(t, os.IsNotExist(err), "the reaped environment's directory is removed")

	r := mustInvoke(t, c, "echo", "old", nil)
	assert.True(t, r.cold)
}

func TestBackgroundReaper(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.IdleTTL = 100 * time.Millisecond })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	r := mustInvoke(t, c, "echo", "s", nil)
	rPID := h.pidOf(t, "t1", "echo", r.envID)
	eventually(t, func() bool { return len(h.envs(t, "t1", "echo").Environments) == 0 }, "reaped")
	assertProcessGone(t, rPID)
}

func TestTimeoutKillsEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 1})
	warm := mustInvoke(t, c, "echo", "s", nil)
	warmPID := h.pidOf(t, "t1", "echo", warm.envID)
	start := time.Now()
	// The handler would sleep a minute; returning long before that shows
	// the process was killed at the timeout, with a wide margin for a busy
	// machine.
	r := mustInvoke(t, c, "echo", "s", map[string]any{"sleep_ms": 60000})
	elapsed := time.Since(start)
	assert.Equal(t, "Unhandled", r.fnError)
	assert.Equal(t, "Sandbox.Timedout", r.errDoc["errorType"])
	assert.Contains(t, r.errDoc["errorMessage"], "Task timed out after 1.00 seconds")
	assert.Less(t, elapsed, 30*time.Second)
	assert.Equal(t, warm.envID, r.envID)
	assertProcessGone(t, warmPID)

	next := mustInvoke(t, c, "echo", "s", nil)
	assert.True(t, next.cold)
	assert.NotEqual(t, warm.envID, next.envID)
}

func TestCrashDiscardsEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	warm := mustInvoke(t, c, "echo", "s", nil)
	r := mustInvoke(t, c, "echo", "s", map[string]any{"exit": 3, "stderr": "about to crash"})
	assert.Equal(t, "Unhandled", r.fnError)
	assert.Equal(t, "Runtime.ExitError", r.errDoc["errorType"])
	assert.Contains(t, r.errDoc["errorMessage"], "exit status 3")

	next := mustInvoke(t, c, "echo", "s", nil)
	assert.True(t, next.cold)
	assert.NotEqual(t, warm.envID, next.envID)
	assert.Equal(t, int64(1), next.resp.Invocations)

	// The crash is in the logs.
	status, logs := h.get(t, "t1", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant=s")
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, string(logs), warm.envID+" about to crash")

	// A panic is a function error too; aws-lambda-go exits after reporting it.
	p := mustInvoke(t, c, "echo", "s", map[string]any{"panic": "oh no"})
	assert.Equal(t, "Unhandled", p.fnError)
	assert.Equal(t, "oh no", p.errDoc["errorMessage"])
	after := mustInvoke(t, c, "echo", "s", nil)
	assert.Equal(t, "s", after.resp.TenantID)
}

func TestBadBootstrapIsAFunctionError(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	// A script whose interpreter does not exist cannot be executed.
	createFn(t, c, "broken", fnOpts{code: []byte("#!/nonexistent/interpreter\n")})
	r := mustInvoke(t, c, "broken", "", nil)
	assert.Equal(t, "Unhandled", r.fnError)
	assert.Equal(t, "Runtime.InvalidEntrypoint", r.errDoc["errorType"])

	// A bootstrap that exits at once.
	createFn(t, c, "quitter", fnOpts{code: []byte("#!/bin/sh\necho bye >&2\nexit 7\n")})
	r = mustInvoke(t, c, "quitter", "", nil)
	assert.Equal(t, "Runtime.ExitError", r.errDoc["errorType"])
	assert.Contains(t, r.errDoc["errorMessage"], "exit status 7")
	assert.Empty(t, h.envs(t, "t1", "quitter").Environments)
}

func TestUpdateFunctionCodeRetiresOldVersion(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 10})
	idle := mustInvoke(t, c, "echo", "idle", nil)
	idlePID := h.pidOf(t, "t1", "echo", idle.envID)

	// Keep one v1 environment busy across the update.
	gate := "/tmp/gust-test-gate"
	busyDone := make(chan echoResult)
	go func() {
		r, err := invoke(t, c, "echo", "busy", map[string]any{"until_file": gate})
		assert.NoError(t, err)
		busyDone <- r
	}()
	eventually(t, func() bool { return h.busy(t, "t1", "echo", "busy") == 1 }, "the busy invocation started")

	out, err := c.UpdateFunctionCode(context.Background(), &awslambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("echo"), ZipFile: echoZip(t)})
	require.NoError(t, err)
	assert.Equal(t, "2", aws.ToString(out.Version))

	// The idle v1 environment is gone at once; the busy one is retired.
	envs := h.envs(t, "t1", "echo").Environments
	require.Len(t, envs, 1)
	assert.Equal(t, "retired", envs[0].State)
	assert.Equal(t, "1", envs[0].Version)
	assertProcessGone(t, idlePID)

	// The busy invocation completes on v1, then its environment stops.
	h.openGate(t, "t1", "echo", "busy", gate)
	busy := <-busyDone
	assert.Empty(t, busy.fnError)
	assert.Equal(t, "1", busy.resp.FunctionVersion)
	eventually(t, func() bool { return len(h.envs(t, "t1", "echo").Environments) == 0 }, "retired environment stopped")

	// New invocations run v2 in new environments.
	r := mustInvoke(t, c, "echo", "busy", nil)
	assert.True(t, r.cold)
	assert.Equal(t, "2", r.executed)
	assert.Equal(t, "2", r.resp.FunctionVersion)
	assert.NotEqual(t, busy.envID, r.envID)
}

func TestDeleteFunctionStopsEnvironments(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	r := mustInvoke(t, c, "echo", "s", nil)
	rPID := h.pidOf(t, "t1", "echo", r.envID)
	_, err := c.DeleteFunction(context.Background(), &awslambda.DeleteFunctionInput{FunctionName: aws.String("echo")})
	require.NoError(t, err)
	assertProcessGone(t, rPID)

	// A new function of the same name never inherits the old environments.
	createFn(t, c, "echo", fnOpts{tenancy: true})
	again := mustInvoke(t, c, "echo", "s", nil)
	assert.True(t, again.cold)
	assert.Equal(t, "1", again.executed)
}

func TestEnvironmentIsScrubbed(t *testing.T) {
	t.Setenv("GUST_TEST_SECRET", "must-not-leak")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "host-credential")
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, memoryMB: 512, env: map[string]string{"GREETING": "hello"}})
	r := mustInvoke(t, c, "echo", "s", map[string]any{"env": []string{"*"}})
	env := r.resp.Env
	assert.NotContains(t, env, "GUST_TEST_SECRET")
	assert.NotContains(t, env, "AWS_SECRET_ACCESS_KEY")
	assert.Equal(t, "hello", env["GREETING"])
	assert.Equal(t, "echo", env["AWS_LAMBDA_FUNCTION_NAME"])
	assert.Equal(t, "1", env["AWS_LAMBDA_FUNCTION_VERSION"])
	assert.Equal(t, "512", env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
	assert.Equal(t, "us-east-1", env["AWS_REGION"])
	assert.Equal(t, r.envID, env["GUST_ENVIRONMENT_ID"])
	assert.NotEmpty(t, env["AWS_LAMBDA_RUNTIME_API"])
	// Lambda's paths, inside the environment's own root filesystem.
	assert.Equal(t, "127.0.0.1:9001", env["AWS_LAMBDA_RUNTIME_API"])
	assert.Equal(t, "/tmp", env["TMPDIR"])
	assert.Equal(t, "/tmp", r.resp.TmpDir)
	assert.Equal(t, "/var/task", r.resp.Cwd)
	assert.Equal(t, "/var/task", env["LAMBDA_TASK_ROOT"])
	allowed := map[string]bool{"GREETING": true, "_HANDLER": true, "TZ": true, "LANG": true, "PATH": true,
		"LD_LIBRARY_PATH": true, "TMPDIR": true, "HOME": true, "LAMBDA_TASK_ROOT": true, "LAMBDA_RUNTIME_DIR": true,
		"GUST_ENVIRONMENT_ID": true, "_X_AMZN_TRACE_ID": true,
		// The egress proxy, the environment's only way out.
		"HTTP_PROXY": true, "HTTPS_PROXY": true, "http_proxy": true, "https_proxy": true, "NO_PROXY": true, "no_proxy": true}
	for k := range env {
		if !allowed[k] && !strings.HasPrefix(k, "AWS_") {
			t.Errorf("unexpected variable %s in the environment", k)
		}
	}
	assert.Equal(t, "s", r.resp.TenantID)
}

func TestTmpIsPerEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 10})
	a := mustInvoke(t, c, "echo", "a", map[string]any{"write_tmp": "a-was-here"})
	assert.Equal(t, []string{"a-was-here"}, a.resp.TmpFiles)

	b := mustInvoke(t, c, "echo", "b", nil)
	assert.Empty(t, b.resp.TmpFiles, "another sub-tenant's environment has its own tmp")

	// A second environment of the same sub-tenant has its own tmp too.
	release := h.holdBusy(t, "t1", "echo", "a", 1)
	a2 := mustInvoke(t, c, "echo", "a", nil)
	release()
	assert.NotEqual(t, a.envID, a2.envID)
	assert.Empty(t, a2.resp.TmpFiles)

	// The same environment keeps its tmp between invocations, like Lambda.
	again := mustInvoke(t, c, "echo", "a", nil)
	if again.envID == a.envID {
		assert.Equal(t, []string{"a-was-here"}, again.resp.TmpFiles)
	}
}

func TestLogsAreCapturedPerSubTenant(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.MaxLogBytes = 4096 })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	r := mustInvoke(t, c, "echo", "a b/../c", map[string]any{"stdout": "to-stdout", "stderr": "to-stderr"})
	mustInvoke(t, c, "echo", "other", map[string]any{"stdout": "other-output"})

	logs := func(sub string) string {
		status, b := h.get(t, "t1", "/2015-03-31/functions/echo/"+lambda.LogsSuffix+"?subtenant="+url.QueryEscape(sub))
		require.Equal(t, http.StatusOK, status, string(b))
		return string(b)
	}
	eventually(t, func() bool {
		l := logs("a b/../c")
		return strings.Contains(l, "to-stdout") && strings.Contains(l, "to-stderr")
	}, "both streams captured")
	l := logs("a b/../c")
	assert.Contains(t, l, r.envID+" to-stdout")
	assert.Contains(t, l, "START RequestId: "+r.resp.RequestID)
	assert.Contains(t, l, "END RequestId: "+r.resp.RequestID)
	assert.NotContains(t, l, "other-output")

	// Logs are bounded: a flood leaves at most two files' worth.
	for range 20 {
		mustInvoke(t, c, "echo", "a b/../c", map[string]any{"stdout": strings.Repeat("x", 500)})
	}
	eventually(t, func() bool { return strings.Count(logs("a b/../c"), "xxxxx") >= 5 }, "flood logged")
	assert.LessOrEqual(t, len(logs("a b/../c")), 2*4096)

	// Logs outlive their environment.
	_, err := c.UpdateFunctionCode(context.Background(), &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("echo"), ZipFile: echoBinary})
	require.NoError(t, err)
	assert.Contains(t, logs("other"), "other-output")
}

func TestCloseStopsEverything(t *testing.T) {
	dir := t.TempDir()
	cl, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	h := &harness{cloud: cl, url: newServer(t, cl), cfg: lambda.Config{StateDir: dir}}
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	var pids []int
	for i := range 3 {
		r := mustInvoke(t, c, "echo", fmt.Sprint(i), nil)
		pids = append(pids, h.pidOf(t, "t1", "echo", r.envID))
	}
	require.NoError(t, cl.Close())
	for _, pid := range pids {
		assertProcessGone(t, pid)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "envs"))
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestMemoryLimitIsReportedHonestly(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.DisableMemoryLimits = true })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	mustInvoke(t, c, "echo", "s", nil)
	l := h.envs(t, "t1", "echo")
	assert.False(t, l.MemoryLimitEnforced, "memory limits disabled")
	assert.Contains(t, l.MemoryLimitNote, "turned off")
	require.Len(t, l.Environments, 1)
	assert.False(t, l.Environments[0].MemoryLimitEnforced)

	// A function over its memory size runs on: nothing limits it, and
	// nothing pretends to.
	r := mustInvoke(t, c, "echo", "s", map[string]any{"alloc_mb": 200})
	assert.Empty(t, r.fnError)
}

func TestMemoryLimitKillsEnvironment(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true, memoryMB: 128})
	within := mustInvoke(t, c, "echo", "s", map[string]any{"alloc_mb": 32})
	withinPID := h.pidOf(t, "t1", "echo", within.envID)
	require.Empty(t, within.fnError, "32 MB fits in 128 MB")
	l := h.envs(t, "t1", "echo")
	if !l.MemoryLimitEnforced {
		t.Skipf("this machine allows no memory limit (%s); TestMemoryLimitIsReportedHonestly covers that case", l.MemoryLimitNote)
	}
	require.Len(t, l.Environments, 1)
	assert.True(t, l.Environments[0].MemoryLimitEnforced)

	r := mustInvoke(t, c, "echo", "s", map[string]any{"alloc_mb": 400})
	assert.Equal(t, "Unhandled", r.fnError)
	assert.Equal(t, "Runtime.OutOfMemory", r.errDoc["errorType"])
	assert.Contains(t, r.errDoc["errorMessage"], "signal: killed")
	assert.Contains(t, r.errDoc["errorMessage"], "128 MB")
	assert.Equal(t, within.envID, r.envID)
	assertProcessGone(t, withinPID)

	// The environment is discarded; the next invocation starts afresh,
	// limited again.
	next := mustInvoke(t, c, "echo", "s", nil)
	assert.True(t, next.cold)
	assert.NotEqual(t, within.envID, next.envID)
	l = h.envs(t, "t1", "echo")
	require.Len(t, l.Environments, 1)
	assert.True(t, l.Environments[0].MemoryLimitEnforced)
}

// holdBusy starts n invocations of sub that block until the returned
// release is called, and waits until they all hold an environment.
func (h *harness) holdBusy(t *testing.T, tenant, fn, sub string, n int) (release func()) {
	t.Helper()
	c := h.client(tenant)
	// The gate is a file in the environment's own /tmp: nothing of the
	// test's is visible inside a sandbox.
	gate := "/tmp/gust-test-release"
	payload := []byte(fmt.Sprintf(`{"until_file":%q}`, gate))
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload}
			if sub != "" {
				in.TenantId = aws.String(sub)
			}
			out, err := c.Invoke(context.Background(), in)
			if err != nil {
				t.Errorf("holding %s busy: %v", sub, err)
				return
			}
			if out.FunctionError != nil {
				t.Errorf("holding %s busy: %s", sub, out.Payload)
			}
		}()
	}
	eventually(t, func() bool { return h.busy(t, tenant, fn, sub) >= n }, "invocations holding environments")
	var once sync.Once
	release = func() {
		once.Do(func() {
			h.openGate(t, tenant, fn, sub, gate)
			wg.Wait()
			eventually(t, func() bool { return h.busy(t, tenant, fn, sub) == 0 }, "environments released")
		})
	}
	t.Cleanup(release)
	return release
}

// openGate creates the file gate inside every busy environment of sub, as
// the environment sees its filesystem, releasing invocations that wait for
// it (until_file). The host reaches a sandbox's files through
// /proc/PID/root, as root (or the sandbox's owner) can; the file belongs to
// the environment's uid, so the handler can remove it.
func (h *harness) openGate(t *testing.T, tenant, fn, sub, gate string) {
	t.Helper()
	var envs []envEntry
	eventually(t, func() bool {
		envs = envs[:0]
		for _, e := range h.envs(t, tenant, fn).Environments {
			if e.SubTenant == sub && (e.State == "busy" || e.State == "retired") {
				if e.Pid == 0 {
					return false // still starting
				}
				envs = append(envs, e)
			}
		}
		return true
	}, "busy environments started")
	for _, e := range envs {
		p := fmt.Sprintf("/proc/%d/root%s", e.Pid, gate)
		require.NoError(t, os.WriteFile(p, nil, 0o644))
		require.NoError(t, os.Chown(p, e.Uid, e.Uid))
	}
}

// pidOf is the host's pid of an environment's process (its sandbox's PID
// 1), from the listing.
func (h *harness) pidOf(t *testing.T, tenant, fn, envID string) int {
	t.Helper()
	for _, e := range h.envs(t, tenant, fn).Environments {
		if e.EnvironmentID == envID {
			require.NotZero(t, e.Pid)
			return e.Pid
		}
	}
	t.Fatalf("environment %s is not listed", envID)
	return 0
}

func (h *harness) busy(t *testing.T, tenant, fn, sub string) int {
	n := 0
	for _, e := range h.envs(t, tenant, fn).Environments {
		if e.SubTenant == sub && e.State == "busy" {
			n++
		}
	}
	return n
}

func assertProcessGone(t *testing.T, pid int) {
	t.Helper()
	require.NotZero(t, pid)
	eventually(t, func() bool {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH)
	}, fmt.Sprintf("process %d is gone", pid))
}

// TestRelativeStateDirRunsFunctions: `gust dev`'s default state dir is the
// relative ".gust"; environments run in their own working directory, so
// their bootstrap must still be found.
func TestRelativeStateDirRunsFunctions(t *testing.T) {
	t.Chdir(t.TempDir())
	h := newHarness(t, func(cfg *lambda.Config) { cfg.StateDir = filepath.Join(".gust", "lambda") })
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})
	r := mustInvoke(t, c, "echo", "s1", nil)
	assert.Equal(t, "s1", r.resp.TenantID)
}
