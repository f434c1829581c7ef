// Package demo is gust's showcase, `gust demo`: on a running platform it
// proves the platform alive, launches the same fleet with and without the
// burst, and serves one function to several sub-tenants, each in execution
// environments of its own, checking what it shows as it goes.
package demo

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/workflows"
)

// PlatformConfig is the platform the showcase is made for: everything in
// memory, every service on a free port of 127.0.0.1, the Web UI on uiPort
// (-1 a free one, 0 off), the fill path at LaunchRate and the server's logs
// discarded.
func PlatformConfig(uiPort int) platform.Config {
	return platform.Config{
		IP:         "127.0.0.1",
		UIPort:     uiPort,
		CloudPort:  0,
		Cloud:      localcloud.Config{BootDelay: localcloud.DefaultBootDelay},
		LaunchRate: LaunchRate,
		Logger:     slog.New(slog.DiscardHandler),
	}
}

// Options configure Run.
type Options struct {
	// Out receives the showcase's report. Required.
	Out io.Writer
	// ShowFleet, when set, displays the progress of fleet fleetID on out
	// while the showcase waits for it, until stop is called: gust passes
	// the progress bar of `gust fleet launch`.
	ShowFleet func(ctx context.Context, c client.Client, fleetID string, out io.Writer) (stop func())
}

// Run runs the showcase on p, which must run a worker, and reports each
// step and then a summary with the Web UI's address to opts.Out. It fails
// on the first step that fails or does not show what it should. Its
// workflows have fixed ids (demo-ping, BurstFleetID, ...), for people to
// find them in the Web UI and with gust's commands afterwards.
func Run(ctx context.Context, p *platform.Platform, opts Options) error {
	out := opts.Out
	var summary []string
	for _, step := range []func() (string, error){
		func() (string, error) { return ping(ctx, out, p.Client()) },
		func() (string, error) { return fleets(ctx, out, p.Client(), opts.ShowFleet) },
		func() (string, error) { return functions(ctx, out, p) },
	} {
		line, err := step()
		if err != nil {
			return err
		}
		summary = append(summary, line)
		fmt.Fprintln(out)
	}
	fmt.Fprintln(out, "Summary")
	for _, line := range summary {
		fmt.Fprintf(out, "  %s\n", line)
	}
	if ui := p.Server().UIAddress(); ui != "" {
		fmt.Fprintf(out, "Web UI: %s/namespaces/default/workflows\n", ui)
	}
	return nil
}

// ping proves the platform is alive: one workflow, a durable timer and an
// activity, end to end.
func ping(ctx context.Context, out io.Writer, c client.Client) (string, error) {
	start := time.Now()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        "demo-ping",
		TaskQueue: workflows.TaskQueue,
	}, workflows.PingWorkflow, workflows.PingInput{Message: "hello from gust", Wait: 100 * time.Millisecond})
	if err != nil {
		return "", fmt.Errorf("starting ping workflow: %w", err)
	}
	var res workflows.PingResult
	if err := run.Get(ctx, &res); err != nil {
		return "", fmt.Errorf("ping workflow: %w", err)
	}
	took := time.Since(start).Round(time.Millisecond)
	fmt.Fprintf(out, "Platform check: PingWorkflow %s answered %q from worker %s in %v\n",
		run.GetID(), res.Message, res.Worker, took)
	return fmt.Sprintf("platform:  a durable timer and an activity through worker %s in %v", res.Worker, took), nil
}
