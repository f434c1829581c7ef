// Package worker builds gust's Temporal workers: one on workflows.TaskQueue
// for every workflow and every unthrottled activity, and one on
// workflows.LaunchTaskQueue, the platform launch rate limiter. `gust worker`
// and `gust dev` both run it; nothing here imports the Temporal server.
package worker

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/events"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// DefaultLaunchRate is the fill path's default instance launch rate per
// second, matching EC2's default RunInstances resource refill rate.
const DefaultLaunchRate = 2.0

// Options configures the workers.
type Options struct {
	// Accounts backs the fleet activities: the cloud of each tenant's
	// account. Required unless Compute is set.
	Accounts providers.Accounts
	// Compute is shorthand for Accounts: providers.OneAccount(Compute), a
	// single account serving the default tenant. Ignored when Accounts is
	// set.
	Compute providers.Compute
	// Functions backs the function activities. Required.
	Functions providers.Functions
	// LaunchRate is the fill path's launch rate in instances per second,
	// enforced by the Temporal server across all workers. Default
	// DefaultLaunchRate.
	LaunchRate float64
	// Identity names this worker process in the Web UI. Default: the SDK's
	// pid@host.
	Identity string
	// SubTenantMetrics labels the invocation metrics with the sub-tenant
	// too (activities.Functions.SubTenantMetrics): one series per
	// sub-tenant, so off by default.
	SubTenantMetrics bool
	// Events, when set, is each tenant's instance event queue
	// (*sqsevents.Accounts): the worker runs one events.Router on it, and
	// fleets get their instances' state changes as signals instead of
	// polling. Nil: fleets poll.
	Events events.Source
	// Metrics receives the event router's counters: the MetricsHandler
	// of c's client.Options. Nil records none.
	Metrics client.MetricsHandler

	// watcher is the router New made, for the fleet activities.
	watcher activities.EventWatcher
}

// Workers is a started set of gust workers.
type Workers struct {
	main, launch sdkworker.Worker
	router       *events.Router // nil without Options.Events
}

// New registers every workflow and activity on workers bound to c. It does
// not start polling. The workers encode and decode with c's data converter,
// so c must use codec.DataConverter with the platform's codec key for the
// workers to read and write function variables, which travel encrypted.
func New(c client.Client, opts Options) (*Workers, error) {
	if opts.Accounts == nil && opts.Compute != nil {
		opts.Accounts = providers.OneAccount(opts.Compute)
	}
	if opts.Accounts == nil || opts.Functions == nil {
		return nil, errors.New("worker needs both a compute and a functions provider")
	}
	if opts.LaunchRate == 0 {
		opts.LaunchRate = DefaultLaunchRate
	}
	if opts.LaunchRate < 0 {
		return nil, fmt.Errorf("launch rate must be positive, got %v", opts.LaunchRate)
	}
	// One router per process: each tenant's queue is read by one loop
	// however many fleets watch it.
	var router *events.Router
	if opts.Events != nil {
		router = events.New(events.Config{Source: opts.Events, Accounts: opts.Accounts, Signaler: c, Metrics: opts.Metrics})
		opts.watcher = router
	}
	// Every throttled cloud call is counted and logged where the provider
	// returns it (gust_cloud_throttled).
	opts.Accounts = activities.MeterAccounts(opts.Accounts)
	opts.Functions = activities.MeterFunctions(opts.Functions)

	// Pollers scale with the server's backlog hints. The SDK's fixed
	// default, two workflow task pollers, prefers the sticky queue while
	// it has a backlog, so with a hundred fleets launching together each
	// new fleet's first workflow task waited seconds behind the others'
	// (BenchmarkConcurrentFleets): with more pollers their p50 time to
	// min went from 5.7 s to 2.4 s (docs/benchmarks.md).
	mainWorker := sdkworker.New(c, workflows.TaskQueue, sdkworker.Options{
		Identity:                   opts.Identity,
		WorkflowTaskPollerBehavior: sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{}),
		ActivityTaskPollerBehavior: sdkworker.NewPollerBehaviorAutoscaling(sdkworker.PollerBehaviorAutoscalingOptions{}),
	})
	register(mainWorker, opts)

	// The server enforces TaskQueueActivitiesPerSecond for the whole queue,
	// across every worker polling it. Each fill activity launches at most
	// FillBatchSize instances, so this activity rate bounds the instance
	// rate at LaunchRate.
	launchWorker := sdkworker.New(c, workflows.LaunchTaskQueue, sdkworker.Options{
		Identity:                     opts.Identity,
		TaskQueueActivitiesPerSecond: opts.LaunchRate / workflows.FillBatchSize,
		DisableWorkflowWorker:        true,
	})
	launchWorker.RegisterActivity(fleetActivities(opts))

	return &Workers{main: mainWorker, launch: launchWorker, router: router}, nil
}

// register is the one list of everything gust runs.
func register(w sdkworker.Registry, opts Options) {
	w.RegisterWorkflow(workflows.PingWorkflow)
	w.RegisterActivity(&activities.Platform{})
	registerFleet(w, opts)
	registerFunctions(w, opts)
}

// Start starts polling on both task queues.
func (w *Workers) Start() error {
	if err := w.main.Start(); err != nil {
		return fmt.Errorf("starting worker on %s: %w", workflows.TaskQueue, err)
	}
	if err := w.launch.Start(); err != nil {
		w.main.Stop()
		return fmt.Errorf("starting worker on %s: %w", workflows.LaunchTaskQueue, err)
	}
	return nil
}

// Stop stops polling and waits for running activities to finish or be
// abandoned, per the SDK's graceful stop, then stops the event router: a
// batch it was delivering stays in its queue for another worker.
func (w *Workers) Stop() {
	w.launch.Stop()
	w.main.Stop()
	if w.router != nil {
		w.router.Close()
	}
}

// Run starts the workers and blocks until ctx is done.
func Run(ctx context.Context, c client.Client, opts Options) error {
	w, err := New(c, opts)
	if err != nil {
		return err
	}
	if err := w.Start(); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
