package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/workflows"
)

// LaunchRate is the demo's fill-path rate: slow enough that the burst's
// advantage shows, fast enough that the demo stays short.
const LaunchRate = 5

// BurstFleetID is the showcase's fleet launched with the burst; the one
// without is "demo-fleet-no-burst".
const BurstFleetID = "demo-fleet-burst"

// fleets launches the same small fleet with and without the burst and
// shows what the burst buys: time to min bounded by the boot delay rather
// than by min / launch rate.
func fleets(ctx context.Context, out io.Writer, c client.Client, show func(context.Context, client.Client, string, io.Writer) func()) (string, error) {
	const min, target = 20, 30
	fmt.Fprintf(out, "Fleet: at least %d m5.large now, %d as capacity allows (fill rate %d/s)\n", min, target, LaunchRate)
	var results []workflows.FleetResult
	for _, burst := range []bool{true, false} {
		id := BurstFleetID
		if !burst {
			id = "demo-fleet-no-burst"
		}
		in := workflows.LaunchFleetInput{FleetID: id, InstanceType: "m5.large", Min: min, Target: target, Burst: burst}
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
		if err != nil {
			return "", fmt.Errorf("starting fleet %s: %w", id, err)
		}
		stop := func() {}
		if show != nil {
			stop = show(ctx, c, id, out)
		}
		res, err := fleetOutcome(ctx, run)
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

// fleetOutcome waits for the fleet's workflow chain to end and returns its
// result, whether it completed or failed with a FleetResult (a fleet that
// did not reach its minimum).
func fleetOutcome(ctx context.Context, run client.WorkflowRun) (workflows.FleetResult, error) {
	var res workflows.FleetResult
	err := run.Get(ctx, &res)
	if err == nil {
		return res, nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.HasDetails() {
		if derr := appErr.Details(&res); derr == nil && res.FleetID != "" {
			return res, nil
		}
	}
	return res, fmt.Errorf("fleet %s: %w", run.GetID(), err)
}

func msDuration(ms int64) time.Duration {
	return (time.Duration(ms) * time.Millisecond).Round(time.Millisecond)
}
