package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/demo"
	"github.com/gust-dev/gust/localcloud"
	lambdacloud "github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	lambdaprovider "github.com/gust-dev/gust/providers/lambda"
	"github.com/gust-dev/gust/runwait"
	"github.com/gust-dev/gust/workflows"
)

// benchFloorQueue is the task queue of the bench's bare no-op workflow. It
// has its own worker on the platform's client, so eager start works for it
// exactly as for InvokeWorkflow.
const benchFloorQueue = "gust-bench-floor"

// benchNoopWorkflowName is the floor workflow's registered name.
const benchNoopWorkflowName = "GustBenchNoopWorkflow"

// benchNoopWorkflow does nothing: its latency is the cost of any workflow
// on this server, the floor an invocation's end-to-end latency is held to.
func benchNoopWorkflow(workflow.Context) error { return nil }

// benchSeries is one measured series.
type benchSeries struct {
	Name  string          `json:"name"`
	N     int             `json:"n"`
	P50MS float64         `json:"p50_ms"`
	P99MS float64         `json:"p99_ms"`
	ds    []time.Duration // the samples
}

func newSeries(name string, ds []time.Duration) benchSeries {
	return benchSeries{Name: name, N: len(ds), P50MS: ms(percentile(ds, 50)), P99MS: ms(percentile(ds, 99)), ds: ds}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchFnResult is the JSON form of `gust bench fn`.
type benchFnResult struct {
	Handler       string             `json:"handler"`
	HandlerMB     int64              `json:"handler_mb"`
	Series        []benchSeries      `json:"series"`
	Throughput    float64            `json:"throughput_per_s"`
	Ratios        map[string]float64 `json:"ratios"`
	DefaultMode   string             `json:"default_activity_mode"`
	Isolation     string             `json:"isolation"`
	ThroughputCfg string             `json:"throughput_config"`
}

// FnOptions configure Fn. The caller validates them: counts at least 1,
// Isolation and Wait one of their constants, Handler an existing file.
type FnOptions struct {
	// Out receives the report, Progress the progress as it goes.
	Out, Progress io.Writer
	// JSON reports as one JSON object (--output json).
	JSON bool
	// Handler is the Lambda bootstrap executable to deploy: this gust
	// binary (its handler mode) or another one.
	Handler string
	// Iterations is the measured invocations per warm and floor series,
	// Cold the cold starts measured.
	Iterations, Cold int
	// SubTenants invoke in parallel in the throughput run,
	// PerSubTenant times each.
	SubTenants, PerSubTenant int
	// Isolation is the local cloud's function isolation (sandbox or
	// none).
	Isolation string
	// Waits, when not 0, measures only result waits: Waits start-and-wait
	// invocations in each activity mode, waited for as Wait says.
	Waits int
	Wait  string
}

// Fn starts an embedded platform (UI off), deploys opts.Handler and
// measures cold starts, warm invocations through the provider and end to
// end through InvokeWorkflow, the no-op workflow floor and throughput, or,
// with opts.Waits, only how long callers wait for results.
func Fn(ctx context.Context, opts FnOptions) error {
	handler, iso, asJSON := opts.Handler, opts.Isolation, opts.JSON
	iters, cold, subs, per := opts.Iterations, opts.Cold, opts.SubTenants, opts.PerSubTenant
	waits, waitHow := opts.Waits, opts.Wait
	st, err := os.Stat(handler)
	if err != nil {
		return err
	}
	out, progress := opts.Out, opts.Progress

	p, err := platform.Start(ctx, platform.Config{
		IP: "127.0.0.1",
		Cloud: localcloud.Config{Lambda: lambdacloud.Config{
			// Every cold start is a new sub-tenant's environment, and they
			// stay warm: lift the per-function cap above the run's total.
			MaxEnvsPerFunction: cold + subs + 10,
			MaxEnvsTotal:       cold + subs + 10,
			MaxCodeBytes:       1 << 30, // the gust binary exceeds Lambda's 250 MB
			Isolation:          iso,
		}},
		Logger: discardLogger(),
	})
	if err != nil {
		return err
	}
	defer p.Close()

	const tenant = "bench"
	if _, err := p.EnsureTenant(ctx, tenant); err != nil {
		return err
	}
	fmt.Fprintf(progress, "deploying %s (%d MB) as %s/echo...\n", handler, st.Size()>>20, tenant)
	if _, err := demo.DeploySample(ctx, p, tenant, "echo", handler, 0); err != nil {
		return err
	}
	// The provider acts for the tenant as the worker does: the platform's
	// key assumes the tenant's role.
	key := p.PlatformCredentials()
	prov, err := lambdaprovider.NewFromConfig(ctx, lambdaprovider.Options{Endpoint: p.Cloud().Endpoint(), Region: lambdacloud.DefaultRegion,
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, key.SessionToken),
		Roles:       platform.WorkerConfig{Endpoint: p.Cloud().Endpoint()}.RoleARN})
	if err != nil {
		return fmt.Errorf("configuring lambda provider: %w", err)
	}
	floor := sdkworker.New(p.Client(), benchFloorQueue, sdkworker.Options{})
	floor.RegisterWorkflowWithOptions(benchNoopWorkflow, workflow.RegisterOptions{Name: benchNoopWorkflowName})
	if err := floor.Start(); err != nil {
		return fmt.Errorf("starting the floor worker: %w", err)
	}
	defer floor.Stop()

	b := &fnBench{ctx: ctx, cl: p.Client(), prov: prov, tenant: tenant, fn: "echo", sdkWait: waitHow == WaitSDK}
	if waits > 0 {
		res, err := b.waitSeries(waits, progress)
		if err != nil {
			return err
		}
		res.Wait, res.Handler, res.Isolation = waitHow, handler, iso
		if asJSON {
			return writeJSON(out, res)
		}
		return printBenchWaits(out, res)
	}
	var series []benchSeries
	add := func(name string, ds []time.Duration, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		s := newSeries(name, ds)
		fmt.Fprintf(progress, "  %-38s p50 %8.2f ms  p99 %8.2f ms  (n=%d)\n", s.Name, s.P50MS, s.P99MS, s.N)
		series = append(series, s)
		return nil
	}

	fmt.Fprintln(progress, "measuring...")
	// Warm everything up first: the first workflows on a new server pay
	// for caches and connections, which is not what we measure.
	if _, err := b.e2e(20, "warm", workflows.ActivityModeLocal, true); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, err := b.floor(20, true); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	ds, err := b.cold(cold)
	if err := add("cold start (provider)", ds, err); err != nil {
		return err
	}
	ds, err = b.providerWarm(iters)
	if err := add("warm, provider Invoke", ds, err); err != nil {
		return err
	}
	for _, mode := range []workflows.ActivityMode{workflows.ActivityModeLocal, workflows.ActivityModeRegular} {
		for _, eager := range []bool{true, false} {
			ds, err := b.e2e(iters, "warm", mode, eager)
			if err := add(fmt.Sprintf("warm e2e, %s activity, eager %s", mode, onOff(eager)), ds, err); err != nil {
				return err
			}
		}
	}
	for _, eager := range []bool{true, false} {
		ds, err := b.floor(iters, eager)
		if err := add(fmt.Sprintf("floor: no-op workflow, eager %s", onOff(eager)), ds, err); err != nil {
			return err
		}
	}
	ds, rate, err := b.throughput(subs, per)
	if err := add(fmt.Sprintf("throughput run, %d sub-tenants", subs), ds, err); err != nil {
		return err
	}

	res := benchFnResult{
		Handler:       handler,
		HandlerMB:     st.Size() >> 20,
		Series:        series,
		Throughput:    rate,
		Ratios:        map[string]float64{},
		DefaultMode:   string(workflows.DefaultInvokeActivityMode),
		Isolation:     iso,
		ThroughputCfg: fmt.Sprintf("%d sub-tenants x %d invocations, default activity mode, eager start", subs, per),
	}
	find := func(name string) benchSeries {
		for _, s := range series {
			if s.Name == name {
				return s
			}
		}
		return benchSeries{}
	}
	for _, mode := range []workflows.ActivityMode{workflows.ActivityModeLocal, workflows.ActivityModeRegular} {
		for _, eager := range []bool{true, false} {
			e2e := find(fmt.Sprintf("warm e2e, %s activity, eager %s", mode, onOff(eager)))
			fl := find(fmt.Sprintf("floor: no-op workflow, eager %s", onOff(eager)))
			if fl.P50MS > 0 {
				res.Ratios[fmt.Sprintf("%s_eager_%s", mode, onOff(eager))] = e2e.P50MS / fl.P50MS
			}
		}
	}
	if asJSON {
		return writeJSON(out, res)
	}
	return printBenchFn(out, res)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func printBenchFn(out io.Writer, res benchFnResult) error {
	fmt.Fprintf(out, "gust bench fn: handler %s (%d MB), default activity mode %s, isolation %s\n\n", res.Handler, res.HandlerMB, res.DefaultMode, res.Isolation)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERIES\t    N\tP50 (ms)\tP99 (ms)")
	for _, s := range res.Series {
		fmt.Fprintf(w, "%s\t%5d\t%8.2f\t%8.2f\n", s.Name, s.N, s.P50MS, s.P99MS)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nthroughput: %.0f invocations/s (%s)\n", res.Throughput, res.ThroughputCfg)
	fmt.Fprintln(out, "e2e warm p50 / floor p50 (same eager setting):")
	for _, mode := range []string{"local", "regular"} {
		for _, eager := range []string{"on", "off"} {
			fmt.Fprintf(out, "  %-8s activity, eager %-3s  %.2fx\n", mode, eager, res.Ratios[mode+"_eager_"+eager])
		}
	}
	return nil
}

// fnBench runs the measured series against one deployed function.
type fnBench struct {
	ctx    context.Context
	cl     client.Client
	prov   providers.Functions
	tenant string
	fn     string
	// sdkWait makes get wait with the SDK's plain WorkflowRun.Get.
	sdkWait bool
}

// get waits for run's result as the bench was told to.
func (b *fnBench) get(run client.WorkflowRun, valuePtr any) error {
	if b.sdkWait {
		return run.Get(b.ctx, valuePtr)
	}
	return runwait.Get(b.ctx, b.cl, run, valuePtr)
}

// cold invokes n new sub-tenants, each a cold start.
func (b *fnBench) cold(n int) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for i := range n {
		start := time.Now()
		res, err := b.prov.Invoke(b.ctx, providers.InvokeInput{Tenant: b.tenant, Function: b.fn, SubTenant: fmt.Sprintf("cold-%d", i), Payload: []byte("{}")})
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if !res.ColdStart {
			return nil, fmt.Errorf("sub-tenant cold-%d was not a cold start", i)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// providerWarm invokes one sub-tenant n times straight through the
// provider, after one warm-up invocation.
func (b *fnBench) providerWarm(n int) ([]time.Duration, error) {
	in := providers.InvokeInput{Tenant: b.tenant, Function: b.fn, SubTenant: "warm", Payload: []byte("{}")}
	if _, err := b.prov.Invoke(b.ctx, in); err != nil {
		return nil, err
	}
	ds := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		res, err := b.prov.Invoke(b.ctx, in)
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if res.ColdStart {
			return nil, errors.New("a warm invocation started a new environment")
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// e2e runs n InvokeWorkflows for one sub-tenant, one after another.
func (b *fnBench) e2e(n int, sub string, mode workflows.ActivityMode, eager bool) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: b.tenant, Function: b.fn, SubTenant: sub, ActivityMode: mode}
		start := time.Now()
		res, err := demo.Invoke(b.ctx, b.cl, in, eager)
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		if res.FunctionError != nil {
			return nil, fmt.Errorf("function error %s: %s", res.FunctionError.Type, res.FunctionError.Message)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// floor runs n no-op workflows one after another.
func (b *fnBench) floor(n int, eager bool) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		run, err := b.cl.ExecuteWorkflow(b.ctx, client.StartWorkflowOptions{
			ID: "bench-noop-" + uuid.NewString(), TaskQueue: benchFloorQueue, EnableEagerStart: eager,
		}, benchNoopWorkflowName)
		if err == nil {
			err = b.get(run, nil)
		}
		if err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(start))
	}
	return ds, nil
}

// throughput warms subs sub-tenants, then has each invoke per times in a
// loop, all at once. It returns every invocation's latency and the rate.
func (b *fnBench) throughput(subs, per int) ([]time.Duration, float64, error) {
	run := func(n int) ([][]time.Duration, time.Duration, error) {
		all := make([][]time.Duration, subs)
		errs := make([]error, subs)
		var wg sync.WaitGroup
		start := time.Now()
		for i := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				all[i], errs[i] = b.e2e(n, fmt.Sprintf("tp-%d", i), workflows.ActivityModeDefault, true)
			}()
		}
		wg.Wait()
		return all, time.Since(start), errors.Join(errs...)
	}
	if _, _, err := run(1); err != nil { // cold starts, not measured
		return nil, 0, err
	}
	all, elapsed, err := run(per)
	if err != nil {
		return nil, 0, err
	}
	var ds []time.Duration
	for _, s := range all {
		ds = append(ds, s...)
	}
	return ds, float64(len(ds)) / elapsed.Seconds(), nil
}

// How `gust bench fn --wait` waits for results (FnOptions.Wait).
const (
	WaitRunwait = "runwait" // runwait.Get, what gust's commands and gateway use
	WaitSDK     = "sdk"     // the SDK's plain WorkflowRun.Get
)

// benchWaitOutlier is one wait over a second, with what the server says
// the run itself took.
type benchWaitOutlier struct {
	Index     int     `json:"index"`
	LatencyMS float64 `json:"latency_ms"`
	// ServerMS is the run's close time minus its start time.
	ServerMS float64 `json:"server_ms"`
}

// benchWaitSeries is one activity mode's start-and-wait latencies.
type benchWaitSeries struct {
	Mode     workflows.ActivityMode `json:"mode"`
	N        int                    `json:"n"`
	P50MS    float64                `json:"p50_ms"`
	P99MS    float64                `json:"p99_ms"`
	MaxMS    float64                `json:"max_ms"`
	OverOneS int                    `json:"over_1s"`
	// Stalls counts the waits that ended over a second after the run
	// closed on the server: latency minus the run's own duration over 1 s
	// (a run that is itself slow under load is an outlier, not a stall).
	Stalls    int                `json:"stalls"`
	Outliers  []benchWaitOutlier `json:"outliers"`
	ElapsedMS float64            `json:"elapsed_ms"`
}

// benchWaitResult is the JSON form of `gust bench fn --waits N`.
type benchWaitResult struct {
	Wait      string            `json:"wait"`
	Handler   string            `json:"handler"`
	Isolation string            `json:"isolation"`
	Series    []benchWaitSeries `json:"series"`
}

// waitSeries runs n InvokeWorkflows one after another in each activity
// mode, each started (eager, as the gateway and gust fn invoke start) and
// then waited for with b.get, after 20 unmeasured ones to warm up.
func (b *fnBench) waitSeries(n int, progress io.Writer) (benchWaitResult, error) {
	var res benchWaitResult
	for _, mode := range []workflows.ActivityMode{workflows.ActivityModeLocal, workflows.ActivityModeRegular} {
		for range 20 {
			if _, _, err := b.startAndWait(mode); err != nil {
				return res, fmt.Errorf("warm-up: %w", err)
			}
		}
		s := benchWaitSeries{Mode: mode, N: n}
		ds := make([]time.Duration, 0, n)
		start := time.Now()
		for i := range n {
			d, run, err := b.startAndWait(mode)
			if err != nil {
				return res, fmt.Errorf("%s activity, invocation %d: %w", mode, i, err)
			}
			ds = append(ds, d)
			if d > time.Second {
				o := benchWaitOutlier{Index: i, LatencyMS: ms(d), ServerMS: -1}
				if desc, err := b.cl.DescribeWorkflowExecution(b.ctx, run.GetID(), run.GetRunID()); err == nil {
					info := desc.GetWorkflowExecutionInfo()
					o.ServerMS = ms(info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime()))
				}
				s.Outliers = append(s.Outliers, o)
				if o.ServerMS < 0 || o.LatencyMS-o.ServerMS > 1000 {
					s.Stalls++
				}
				fmt.Fprintf(progress, "  %s activity, invocation %d: waited %.3f s for a run the server ran in %.1f ms\n", mode, i, d.Seconds(), o.ServerMS)
			}
			if (i+1)%1000 == 0 {
				fmt.Fprintf(progress, "  %s activity: %d of %d\n", mode, i+1, n)
			}
		}
		s.ElapsedMS = ms(time.Since(start))
		s.P50MS, s.P99MS, s.MaxMS = ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(percentile(ds, 100))
		s.OverOneS = len(s.Outliers)
		res.Series = append(res.Series, s)
	}
	return res, nil
}

// startAndWait starts one InvokeWorkflow and waits for its result,
// returning how long that took.
func (b *fnBench) startAndWait(mode workflows.ActivityMode) (time.Duration, client.WorkflowRun, error) {
	in := workflows.InvokeInput{RequestID: uuid.NewString(), Tenant: b.tenant, Function: b.fn, SubTenant: "wait", ActivityMode: mode}
	start := time.Now()
	run, err := b.cl.ExecuteWorkflow(b.ctx, client.StartWorkflowOptions{
		ID:               workflows.InvokeWorkflowID(in.Tenant, in.Function, in.RequestID),
		TaskQueue:        workflows.TaskQueue,
		EnableEagerStart: true,
	}, workflows.InvokeWorkflow, in)
	if err != nil {
		return 0, nil, err
	}
	var res workflows.InvokeResult
	if err := b.get(run, &res); err != nil {
		return 0, nil, err
	}
	d := time.Since(start)
	if res.FunctionError != nil {
		return 0, nil, fmt.Errorf("function error %s: %s", res.FunctionError.Type, res.FunctionError.Message)
	}
	return d, run, nil
}

func printBenchWaits(out io.Writer, res benchWaitResult) error {
	fmt.Fprintf(out, "gust bench fn --waits: wait %s, handler %s, isolation %s\n\n", res.Wait, res.Handler, res.Isolation)
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ACTIVITY MODE\t     N\tP50 (ms)\tP99 (ms)\tMAX (ms)\tOVER 1 S\tSTALLS\tWALL (s)")
	for _, s := range res.Series {
		fmt.Fprintf(w, "%s\t%6d\t%8.2f\t%8.2f\t%8.2f\t%8d\t%6d\t%8.1f\n", s.Mode, s.N, s.P50MS, s.P99MS, s.MaxMS, s.OverOneS, s.Stalls, s.ElapsedMS/1000)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "(STALLS: waits that ended over 1 s after the run closed on the server)")
	for _, s := range res.Series {
		for _, o := range s.Outliers {
			fmt.Fprintf(out, "  %s #%d: waited %.1f ms; the run took %.1f ms on the server\n", s.Mode, o.Index, o.LatencyMS, o.ServerMS)
		}
	}
	return nil
}
