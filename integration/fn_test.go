package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	lambdacloud "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
)

// fnPlatform is what `gust dev` runs, inside the test process: its
// frontend's address and its client, which encrypts secrets with its codec
// key, and where the read commands (fn list, envs, logs) find the cloud
// and the tenants' keys.
type fnPlatform struct {
	address string
	client  client.Client
	// cloud is the read commands' --endpoint and --state-dir.
	cloud []string
}

func startFnPlatform(t *testing.T) fnPlatform {
	t.Helper()
	return newFnPlatform(startPlatform(t, 100))
}

func newFnPlatform(p *platform.Platform) fnPlatform {
	return fnPlatform{address: p.Server().FrontendAddress(), client: p.Client(),
		cloud: []string{"--endpoint", p.Cloud().Endpoint(), "--state-dir", filepath.Dir(p.RegistryFile())}}
}

func deployFn(ctx context.Context, t *testing.T, c client.Client, tenant, name, code string) workflows.DeployResult {
	t.Helper()
	in := workflows.DeployInput{Tenant: tenant, Name: name}
	require.NoError(t, in.SetCode(code))
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.FunctionWorkflowID(workflows.OpDeploy, tenant, name, uuid.NewString()), TaskQueue: workflows.TaskQueue,
	}, workflows.DeployFunctionWorkflow, in)
	require.NoError(t, err)
	var res workflows.DeployResult
	require.NoError(t, run.Get(ctx, &res))
	return res
}

// TestFunctionInvokeWorkflowOverHTTP deploys a real aws-lambda-go handler
// through DeployFunctionWorkflow and invokes it through InvokeWorkflow, the
// worker's provider talking HTTP to the local cloud: a cold start, then
// warm reuse of the same environment, the sub-tenant visible to the handler;
// then many sub-tenants invoking concurrently never share an environment.
func TestFunctionInvokeWorkflowOverHTTP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startFnPlatform(t)
	dep := deployFn(ctx, t, p.client, "acme", "echo", itest.EchoHandler(t))
	require.Equal(t, "PER_TENANT", dep.Function.Tenancy)

	first, err := itest.InvokeFn(ctx, p.client, "acme", "echo", "cust-1", `{"echo":"hi"}`)
	require.NoError(t, err)
	require.Nil(t, first.FunctionError)
	require.True(t, first.ColdStart)
	require.NotEmpty(t, first.EnvironmentID)
	var resp sample.Response
	require.NoError(t, json.Unmarshal(first.Payload, &resp))
	require.Equal(t, "cust-1", resp.TenantID)
	require.JSONEq(t, `"hi"`, string(resp.Echo))

	second, err := itest.InvokeFn(ctx, p.client, "acme", "echo", "cust-1", `{}`)
	require.NoError(t, err)
	require.False(t, second.ColdStart)
	require.Equal(t, first.EnvironmentID, second.EnvironmentID)

	t.Run("isolation under concurrency", func(t *testing.T) {
		const subs, each = 8, 6
		type seen struct{ sub, env, handlerSaw string }
		results := make(chan seen, subs*each)
		errs := make(chan error, subs*each)
		var wg sync.WaitGroup
		for i := range subs {
			for range each {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sub := fmt.Sprintf("customer/%d@example.com", i) // Lambda's TenantId charset
					res, err := itest.InvokeFn(ctx, p.client, "acme", "echo", sub, `{"sleep_ms":30}`)
					if err == nil && res.FunctionError != nil {
						err = errors.New(res.FunctionError.Message)
					}
					if err != nil {
						errs <- err
						return
					}
					var r sample.Response
					if err := json.Unmarshal(res.Payload, &r); err != nil {
						errs <- err
						return
					}
					results <- seen{sub: sub, env: res.EnvironmentID, handlerSaw: r.TenantID}
				}()
			}
		}
		wg.Wait()
		close(results)
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		owner := map[string]string{}
		n := 0
		for r := range results {
			n++
			require.Equal(t, r.sub, r.handlerSaw, "the handler saw another sub-tenant")
			if prev, ok := owner[r.env]; ok {
				require.Equal(t, prev, r.sub, "environment %s served two sub-tenants", r.env)
			}
			owner[r.env] = r.sub
		}
		require.Equal(t, subs*each, n)
		require.GreaterOrEqual(t, len(owner), subs)
	})
}

// TestFunctionCLI drives a real aws-lambda-go handler, built from source,
// through the gust binary against an in-process platform.
func TestFunctionCLI(t *testing.T) {
	itest.GustBinary(t) // build before the platform starts
	code := itest.EchoHandler(t)
	p, keyFile, _ := startCodecFnPlatform(t) // deploy --env needs the codec key
	addr := []string{"--address", p.address, "--codec-key-file", keyFile}
	fn := func(args ...string) (string, string, int) {
		t.Helper()
		switch args[0] {
		case "list", "envs", "logs": // reads: the cloud, not Temporal
			return gust(t, append(append([]string{"fn"}, args...), p.cloud...)...)
		}
		return gust(t, append(append([]string{"fn"}, args...), addr...)...)
	}

	stdout, stderr, rc := fn("deploy", "echo", "--tenant", "acme", "--code", code, "--timeout", "5s", "--env", "GREETING=hello", "--max-envs-per-subtenant", "3")
	require.Equal(t, 0, rc, stderr)
	require.Contains(t, stdout, "deployed echo version")

	t.Run("invoke json", func(t *testing.T) {
		stdout, stderr, rc := fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"echo":{"n":1},"env":["GREETING"]}`, "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(stdout), "\n")+1, "one line: %q", stdout)
		var out map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(stdout), &out))
		keys := []string{}
		for k := range out {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"request_id", "payload", "environment_id", "cold_start", "duration_ms"}, keys)
		var resp sample.Response
		require.NoError(t, json.Unmarshal(out["payload"], &resp))
		require.Equal(t, "cust 1", resp.TenantID, "lambdacontext.FromContext(ctx).TenantID")
		require.Equal(t, "hello", resp.Env["GREETING"])
		require.JSONEq(t, `{"n":1}`, string(resp.Echo))
		require.JSONEq(t, "true", string(out["cold_start"]))
		var env string
		require.NoError(t, json.Unmarshal(out["environment_id"], &env))
		require.NotEmpty(t, env)
		var dur int64
		require.NoError(t, json.Unmarshal(out["duration_ms"], &dur))
		require.GreaterOrEqual(t, dur, int64(0))

		// An Event invocation returns no payload: its request id is how
		// to find it again.
		stdout, stderr, rc = fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust async", "--async", "--request-id", "async-json-1", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.NoError(t, json.Unmarshal([]byte(stdout), &out))
		require.JSONEq(t, `"async-json-1"`, string(out["request_id"]), stdout)
		require.JSONEq(t, "null", string(out["payload"]), stdout)
	})

	t.Run("invoke text prints the payload", func(t *testing.T) {
		stdout, stderr, rc := fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"echo":"plain"}`)
		require.Equal(t, 0, rc, stderr)
		var resp sample.Response
		require.NoError(t, json.Unmarshal([]byte(stdout), &resp))
		require.Equal(t, "cust 1", resp.TenantID)
		require.EqualValues(t, 2, resp.Invocations, "the warm environment was reused")
	})

	t.Run("function error exits 1 with type and message", func(t *testing.T) {
		_, stderr, rc := fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"error":"card declined"}`)
		require.Equal(t, 1, rc)
		require.Contains(t, stderr, "EchoError")
		require.Contains(t, stderr, "card declined")
		require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)

		stdout, _, rc := fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"exit":3}`, "--output", "json")
		require.Equal(t, 1, rc)
		var out workflows.InvokeResult
		require.NoError(t, json.Unmarshal([]byte(stdout), &out))
		require.NotNil(t, out.FunctionError)
		require.NotEmpty(t, out.FunctionError.Type)
	})

	t.Run("memory over the function's size is an out-of-memory error", func(t *testing.T) {
		_, stderr, rc := fn("deploy", "hog", "--tenant", "acme", "--code", code, "--memory", "128")
		require.Equal(t, 0, rc, stderr)
		_, stderr, rc = fn("invoke", "hog", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"alloc_mb":16}`)
		require.Equal(t, 0, rc, stderr)
		stdout, stderr, rc := fn("envs", "hog", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		var envs []struct {
			MemoryMB int  `json:"memory_mb"`
			Enforced bool `json:"memory_limit_enforced"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &envs))
		require.Len(t, envs, 1, stdout)
		require.Equal(t, 128, envs[0].MemoryMB)
		if !envs[0].Enforced {
			t.Skip("this machine allows gust no memory cgroup; localcloud/lambda's TestMemoryLimitIsReportedHonestly covers that case")
		}
		_, stderr, rc = fn("invoke", "hog", "--tenant", "acme", "--subtenant", "cust 1", "--payload", `{"alloc_mb":400}`)
		require.Equal(t, 1, rc, stderr)
		require.Contains(t, stderr, "Runtime.OutOfMemory")
		require.Contains(t, stderr, "128 MB")
	})

	t.Run("bad input exits 2 and starts nothing", func(t *testing.T) {
		big := filepath.Join(t.TempDir(), "big.json")
		require.NoError(t, os.WriteFile(big, []byte(`"`+strings.Repeat("x", workflows.MaxPayloadBytes)+`"`), 0o600))
		cases := map[string][]string{
			"bad json":       {"--subtenant", "cust", "--payload", `{"a":`},
			"over 6 MB":      {"--subtenant", "cust", "--payload", "@" + big},
			"bad sub-tenant": {"--subtenant", "cust#1", "--payload", `{}`},
			"no sub-tenant":  {"--payload", `{}`},
		}
		for name, args := range cases {
			reqID := "bad-" + strings.ReplaceAll(name, " ", "-")
			_, stderr, rc := fn(append([]string{"invoke", "echo", "--tenant", "acme", "--request-id", reqID}, args...)...)
			assert.Equal(t, 2, rc, "%s: %s", name, stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "%s: one line: %q", name, stderr)
			_, err := p.client.DescribeWorkflowExecution(context.Background(), workflows.InvokeWorkflowID("acme", "echo", reqID), "")
			var notFound *serviceerror.NotFound
			assert.True(t, errors.As(err, &notFound), "%s: a workflow was started: %v", name, err)
		}
		_, _, rc := fn("invoke", "../echo", "--tenant", "acme", "--subtenant", "cust")
		require.Equal(t, 2, rc)
		_, _, rc = fn("deploy", "echo2", "--tenant", "acme/../b", "--code", code)
		require.Equal(t, 2, rc)

		for name, args := range map[string][]string{
			"egress with a space":     {"--egress", "a b.example.com"},
			"egress port over 65535":  {"--egress", "example.com:70000"},
			"egress all and a host":   {"--egress", "all,example.com"},
			"ephemeral under 512 MB":  {"--ephemeral-storage", "511"},
			"ephemeral over 10240 MB": {"--ephemeral-storage", "10241"},
		} {
			_, stderr, rc := fn(append([]string{"deploy", "baddeploy", "--tenant", "acme", "--code", code}, args...)...)
			assert.Equal(t, 2, rc, "%s: %s", name, stderr)
			assert.Equal(t, 1, strings.Count(stderr, "\n"), "%s: one line: %q", name, stderr)
		}
		stdout, stderr, rc := fn("list", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.NotContains(t, stdout, "baddeploy", "a refused deploy deploys nothing")
	})

	t.Run("egress and ephemeral storage show in fn list", func(t *testing.T) {
		_, stderr, rc := fn("deploy", "net", "--tenant", "acme", "--code", code,
			"--egress", "API.example.com:443,*.s3.amazonaws.com", "--ephemeral-storage", "1024")
		require.Equal(t, 0, rc, stderr)
		stdout, stderr, rc := fn("list", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		var fns []struct {
			Name        string `json:"name"`
			Egress      string `json:"egress"`
			EphemeralMB int    `json:"ephemeral_mb"`
			MaxEnvs     int    `json:"max_envs_per_subtenant"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &fns))
		got := map[string]string{}
		for _, f := range fns {
			got[f.Name] = fmt.Sprintf("%s %d", f.Egress, f.EphemeralMB)
			switch f.Name {
			case "echo":
				require.Equal(t, 3, f.MaxEnvs, stdout)
			case "net": // deployed without --max-envs-per-subtenant
				require.Equal(t, lambdacloud.DefaultMaxEnvsPerSubTenant, f.MaxEnvs, "the default in force, not 0: %s", stdout)
			}
		}
		require.Equal(t, "*.s3.amazonaws.com,api.example.com:443 1024", got["net"], stdout)
		require.Equal(t, "none 512", got["echo"], "the defaults: %s", stdout)

		stdout, stderr, rc = fn("list", "--tenant", "acme")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, "EGRESS")
		require.Contains(t, stdout, "*.s3.amazonaws.com,api.example.com:443")

		// Each deploy sets the policy anew: without --egress it is none.
		_, stderr, rc = fn("deploy", "net", "--tenant", "acme", "--code", code, "--egress", "all")
		require.Equal(t, 0, rc, stderr)
		stdout, stderr, rc = fn("deploy", "net", "--tenant", "acme", "--code", code, "--output", "json")
		require.Equal(t, 0, rc, stderr)
		var deployed struct {
			Egress      string `json:"egress"`
			EphemeralMB int    `json:"ephemeral_mb"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &deployed))
		require.Equal(t, "none", deployed.Egress)
		require.Equal(t, 512, deployed.EphemeralMB)
	})

	t.Run("tenants cannot see each other's functions", func(t *testing.T) {
		_, stderr, rc := fn("invoke", "echo", "--tenant", "globex", "--subtenant", "cust 1")
		require.Equal(t, 1, rc)
		require.Contains(t, stderr, "not found")
		require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)

		stdout, stderr, rc := fn("list", "--tenant", "globex", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		require.JSONEq(t, "[]", stdout)
		stdout, stderr, rc = fn("list", "--tenant", "acme")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, "echo")
		require.Contains(t, stdout, "PER_TENANT")

		for _, verb := range [][]string{{"envs", "echo"}, {"delete", "echo"}, {"logs", "echo", "--subtenant", "cust 1"}} {
			_, stderr, rc := fn(append(verb, "--tenant", "globex")...)
			require.Equal(t, 1, rc, "%v: %s", verb, stderr)
			require.Contains(t, stderr, "not found", verb)
		}
	})

	t.Run("envs, logs and delete", func(t *testing.T) {
		_, stderr, rc := fn("invoke", "echo", "--tenant", "acme", "--subtenant", "cust 2", "--payload", `{"stdout":"hello from cust 2"}`)
		require.Equal(t, 0, rc, stderr)
		stdout, stderr, rc := fn("envs", "echo", "--tenant", "acme", "--output", "json")
		require.Equal(t, 0, rc, stderr)
		requireJSONStyle(t, stdout)
		var envs []map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &envs))
		subs := map[any]bool{}
		for _, e := range envs {
			subs[e["subtenant"]] = true
		}
		require.True(t, subs["cust 2"], "envs: %s", stdout)
		stdout, stderr, rc = fn("envs", "echo", "--tenant", "acme")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, "SUB-TENANT")
		require.Contains(t, stdout, `"cust 2"`)

		stdout, stderr, rc = fn("logs", "echo", "--tenant", "acme", "--subtenant", "cust 2")
		require.Equal(t, 0, rc, stderr)
		require.Contains(t, stdout, "hello from cust 2")
		stdout, _, rc = fn("logs", "echo", "--tenant", "acme", "--subtenant", "cust 1")
		require.Equal(t, 0, rc)
		require.NotContains(t, stdout, "hello from cust 2")

		_, stderr, rc = fn("delete", "echo", "--tenant", "acme")
		require.Equal(t, 0, rc, stderr)
		_, stderr, rc = fn("delete", "echo", "--tenant", "acme")
		require.Equal(t, 1, rc)
		require.Contains(t, stderr, "not found")
	})
}
