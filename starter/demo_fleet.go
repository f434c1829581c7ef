package main

import (
	"context"
	"fmt"
	"io"

	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/workflows"
)

// demoLaunchRate is the demo's fill-path rate: slow enough that the burst's
// advantage shows, fast enough that the demo stays short.
const demoLaunchRate = 5

// demoFleet launches the same small fleet with and without the burst and
// shows what the burst buys: time to min bounded by the boot delay rather
// than by min / launch rate.
func demoFleet(ctx context.Context, out io.Writer, c client.Client) (string, error) {
	const min, target = 20, 30
	fmt.Fprintf(out, "Fleet: at least %d m5.large now, %d as capacity allows (fill rate %d/s)\n", min, target, demoLaunchRate)
	var results []workflows.FleetResult
	for _, burst := range []bool{true, false} {
		id := "demo-fleet-burst"
		if !burst {
			id = "demo-fleet-no-burst"
		}
		in := workflows.LaunchFleetInput{FleetID: id, InstanceType: "m5.large", Min: min, Target: target, Burst: burst}
		if _, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in); err != nil {
			return "", fmt.Errorf("starting fleet %s: %w", id, err)
		}
		stop := showProgress(ctx, c, id, out)
		res, err := fleetOutcome(ctx, c, id)
		stop()
		if err != nil {
			return "", err
		}
		if res.State != workflows.PhaseFulfilled {
			return "", fmt.Errorf("demo fleet %s ended %s: %s", id, res.State, res.Message)
		}
		results = append(results, res)
	}
	b, nb := results[0], results[1]
	fmt.Fprintf(out, "  with burst:    min in %v, target in %v\n", msDuration(b.TimeToMinMS), msDuration(b.TimeToTargetMS))
	fmt.Fprintf(out, "  without burst: min in %v, target in %v\n", msDuration(nb.TimeToMinMS), msDuration(nb.TimeToTargetMS))
	ratio := float64(nb.TimeToMinMS) / float64(max(b.TimeToMinMS, 1))
	fmt.Fprintf(out, "  the burst reached the minimum %.1fx sooner\n", ratio)
	return fmt.Sprintf("fleet:     min %d running in %v with the burst, %v without (%.1fx sooner); %d/%d reached",
		min, msDuration(b.TimeToMinMS), msDuration(nb.TimeToMinMS), ratio, b.Running, target), nil
}
