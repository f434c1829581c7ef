package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/devserver"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
	"github.com/gust-dev/gust/runwait"
	"github.com/gust-dev/gust/worker"
	"github.com/gust-dev/gust/workflows"
)

// startWaitPlatform starts an in-memory server with the dynamic config
// dc, and a gust worker whose functions provider is an in-process fake
// with tenant "bench"'s PER_TENANT echo function. Waiting for a result is
// between the client and the server; the function's own cost is beside
// the point, so no local cloud runs.
func startWaitPlatform(tb testing.TB, dc map[string]any) client.Client {
	tb.Helper()
	s, err := devserver.Start(devserver.Config{DynamicConfig: dc})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Stop() })
	c, err := client.Dial(client.Options{HostPort: s.FrontendAddress(), Namespace: "default", Logger: itest.QuietLogger()})
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	fns := fake.NewFunctions()
	_, err = fns.Deploy(context.Background(), providers.FunctionSpec{
		Tenant: "bench", Name: "echo", Zip: []byte("fake"), Tenancy: providers.TenancyPerTenant,
	})
	require.NoError(tb, err)
	w, err := worker.New(c, worker.Options{Compute: fake.NewCompute(), Functions: fns})
	require.NoError(tb, err)
	require.NoError(tb, w.Start())
	tb.Cleanup(w.Stop)
	return c
}

// startInvoke starts one InvokeWorkflow of bench/echo as gust's starters
// do, eagerly, since c also serves the worker.
func startInvoke(ctx context.Context, c client.Client, mode workflows.ActivityMode, payload string) (client.WorkflowRun, error) {
	in := workflows.InvokeInput{
		RequestID: fmt.Sprintf("wait-%d", time.Now().UnixNano()), Tenant: "bench", Function: "echo",
		SubTenant: "waiter", Payload: json.RawMessage(payload), ActivityMode: mode,
	}
	return c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:               workflows.InvokeWorkflowID(in.Tenant, in.Function, in.RequestID),
		TaskQueue:        workflows.TaskQueue,
		EnableEagerStart: true,
	}, workflows.InvokeWorkflow, in)
}

// deafRun is a real run whose first Get is a long poll that never hears
// the run close, as when the server's notifier drops the close
// notification (see package runwait): it waits until its ctx ends.
type deafRun struct {
	client.WorkflowRun
	gets, deafCanceled atomic.Int32
}

func (r *deafRun) Get(ctx context.Context, valuePtr any) error {
	if r.gets.Add(1) == 1 {
		<-ctx.Done()
		r.deafCanceled.Add(1)
		return ctx.Err()
	}
	return r.WorkflowRun.Get(ctx, valuePtr)
}

// TestRunwaitRecoversALostWakeUp loses the first long poll's wake-up on a
// real server whose long polls expire only after 10 minutes, so nothing
// but runwait's own status checks can end the wait within the test's 30
// seconds (the SDK caps a history long poll at 65 s, which the server
// answers at 64 s: still past 30). It checks that runwait sees the closed
// run through DescribeWorkflowExecution, stops the deaf poll, and that a
// new poll on the closed run returns the decoded result at once.
func TestRunwaitRecoversALostWakeUp(t *testing.T) {
	c := startWaitPlatform(t, map[string]any{"history.longPollExpirationInterval": 10 * time.Minute})
	for _, mode := range []workflows.ActivityMode{workflows.ActivityModeLocal, workflows.ActivityModeRegular} {
		t.Run(string(mode), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			run, err := startInvoke(ctx, c, mode, `{"n":42}`)
			require.NoError(t, err)
			deaf := &deafRun{WorkflowRun: run}
			var res workflows.InvokeResult
			require.NoError(t, runwait.Get(ctx, c, deaf, &res))
			require.JSONEq(t, `{"n":42}`, string(res.Payload))
			require.Equal(t, int32(1), deaf.deafCanceled.Load(), "the deaf poll was not the one stopped")
			require.Equal(t, int32(2), deaf.gets.Load(), "want the deaf poll and one more")
		})
	}
}

// TestRunwaitReturnsTheWorkflowsError checks that a failed invocation
// comes back through runwait as the same error run.Get returns.
func TestRunwaitReturnsTheWorkflowsError(t *testing.T) {
	c := startWaitPlatform(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := workflows.InvokeInput{RequestID: "missing-fn", Tenant: "bench", Function: "nope", SubTenant: "waiter"}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: workflows.InvokeWorkflowID(in.Tenant, in.Function, in.RequestID), TaskQueue: workflows.TaskQueue,
	}, workflows.InvokeWorkflow, in)
	require.NoError(t, err)
	var res workflows.InvokeResult
	got := runwait.Get(ctx, c, &deafRun{WorkflowRun: run}, &res)
	want := run.Get(ctx, &res)
	require.Error(t, want)
	require.EqualError(t, got, want.Error())
}

// BenchmarkWaits starts InvokeWorkflows one after another and waits for
// each result, with the SDK's plain WorkflowRun.Get ("sdk") and with
// runwait.Get, in each activity mode. Besides time/op it reports the
// p50, p99 and max latency, how many waits took over a second, and how
// many of those ended over a second after the run closed on the server
// (stalls; a run that is itself slow under load is not one); with -v it
// logs each wait over a second with how long the run took on the server.
// docs/benchmarks.md ("Waiting for results") has the command and numbers.
func BenchmarkWaits(b *testing.B) {
	c := startWaitPlatform(b, nil)
	waits := []struct {
		name string
		get  func(ctx context.Context, run client.WorkflowRun, v any) error
	}{
		{"sdk", func(ctx context.Context, run client.WorkflowRun, v any) error { return run.Get(ctx, v) }},
		{"runwait", func(ctx context.Context, run client.WorkflowRun, v any) error { return runwait.Get(ctx, c, run, v) }},
	}
	for _, mode := range []workflows.ActivityMode{workflows.ActivityModeLocal, workflows.ActivityModeRegular} {
		for _, w := range waits {
			b.Run(string(mode)+"/"+w.name, func(b *testing.B) {
				ctx := context.Background()
				ds := make([]time.Duration, 0, b.N)
				over, stalls := 0, 0
				for i := 0; b.Loop(); i++ {
					start := time.Now()
					run, err := startInvoke(ctx, c, mode, `{}`)
					if err != nil {
						b.Fatal(err)
					}
					var res workflows.InvokeResult
					if err := w.get(ctx, run, &res); err != nil {
						b.Fatal(err)
					}
					d := time.Since(start)
					ds = append(ds, d)
					if d > time.Second {
						over++
						b.StopTimer()
						ran := time.Duration(-1)
						if desc, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID()); err == nil {
							info := desc.GetWorkflowExecutionInfo()
							ran = info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
						}
						if ran < 0 || d-ran > time.Second {
							stalls++
						}
						b.Logf("wait %d took %v; the run took %v on the server", i, d.Round(time.Millisecond), ran.Round(time.Microsecond))
						b.StartTimer()
					}
				}
				sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
				at := func(p float64) float64 {
					return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
				}
				b.ReportMetric(at(0.50), "p50-ms")
				b.ReportMetric(at(0.99), "p99-ms")
				b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "max-ms")
				b.ReportMetric(float64(over), "over-1s")
				b.ReportMetric(float64(stalls), "stalls")
			})
		}
	}
}
