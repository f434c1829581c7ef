// Package fleets holds the end-to-end tests of fleets of offerings: a
// mixed, maintained fleet against the local cloud over HTTP, with spot
// reclaims and instance events, counted by tag through the EC2 API. They
// live in their own package so that each package stays within go test's
// ten minutes.
package fleets

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/platform"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// status queries a fleet.
func status(ctx context.Context, t *testing.T, c client.Client, fleetID string) workflows.FleetStatus {
	t.Helper()
	st, err := itest.FleetStatus(ctx, c, fleetID)
	require.NoError(t, err)
	return st
}

// TestMaintainedMixedFleetStaysAtTargetUnderReclaim launches a maintained
// fleet of two offerings (weights 1 and 2), an on-demand base of 4 units
// and half of the rest on spot, into a cloud that reclaims spot instances
// every few seconds with a short interruption notice. From the moment it
// first reaches its target, the running capacity counted by tag through
// the EC2 API must be at the target at least 99% of the time; it must
// never hold more than the target plus one instance's weight beyond what
// is under notice (no duplicate launches); and a cancel must leave nothing
// running (no leak).
func TestMaintainedMixedFleetStaysAtTargetUnderReclaim(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const target = 20
	p := itest.StartPlatform(t, func(c *platform.Config) {
		c.LaunchRate = 50
		c.Cloud.BootDelay = 300 * time.Millisecond
		c.Cloud.EC2.SpotReclaimPerMinute = 12
		c.Cloud.EC2.SpotNoticePeriod = 8 * time.Second
	})
	compute := itest.Compute(ctx, t, p)
	weight := map[string]int{"m5.large": 1, "c5.xlarge": 2}
	in := workflows.LaunchFleetInput{
		FleetID:      "mixed",
		InstanceType: "m5.large",
		Offerings:    []workflows.Offering{{InstanceType: "m5.large"}, {InstanceType: "c5.xlarge", Weight: 2}},
		Min:          10, Target: target, Burst: true,
		OnDemandBase: 4, SpotShare: 50,
		OnLost: workflows.OnLostReplace,
	}
	_, err := p.Client().ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: in.FleetID, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow, in)
	require.NoError(t, err)
	itest.WaitFor(t, time.Minute, "the fleet is fulfilled", func() bool {
		return status(ctx, t, p.Client(), in.FleetID).Phase == workflows.PhaseFulfilled
	})
	st := status(ctx, t, p.Client(), in.FleetID)
	require.True(t, st.EventDriven, "the fleet learns of its instances through events")
	require.GreaterOrEqual(t, st.OnDemandUnits, 12, "4 base + half of 16")
	require.GreaterOrEqual(t, st.SpotUnits, 8)
	require.GreaterOrEqual(t, st.Units, target)

	// Sample the cloud for a minute.
	var samples, atTarget int
	seen := map[string]bool{}
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		live := itest.FleetInstances(ctx, t, compute, in.FleetID, providers.StatePending, providers.StateRunning)
		running, serving := 0, 0
		for _, inst := range live {
			seen[inst.ID] = true
			w := weight[inst.InstanceType]
			require.NotZero(t, w, "an instance of a type the fleet did not ask for: %s", inst.InstanceType)
			if inst.State == providers.StateRunning {
				running += w
			}
			if !inst.Interrupted {
				serving += w
			}
		}
		samples++
		if running >= target {
			atTarget++
		}
		require.LessOrEqual(t, serving, target+1, "more capacity launched than the target needs: a duplicate")
	}
	t.Logf("at target in %d of %d samples; %d instances seen", atTarget, samples, len(seen))
	require.GreaterOrEqual(t, float64(atTarget), 0.99*float64(samples), "at target %d of %d samples", atTarget, samples)

	st = status(ctx, t, p.Client(), in.FleetID)
	require.Equal(t, workflows.PhaseFulfilled, st.Phase)
	require.GreaterOrEqual(t, st.Replaced, 3, "the cloud reclaimed spot instances and the fleet replaced them")
	// The fleet's own list is exactly what serves, by tag.
	live := itest.FleetInstances(ctx, t, compute, in.FleetID, providers.StatePending, providers.StateRunning)
	live = slices.DeleteFunc(live, func(i providers.Instance) bool { return i.Interrupted })
	require.Len(t, live, st.Launched)

	h, err := p.Client().UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: in.FleetID, UpdateName: workflows.CancelUpdate, Args: []any{workflows.CancelInput{}},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	var res workflows.CancelResult
	require.NoError(t, h.Get(ctx, &res))
	itest.WaitFor(t, 30*time.Second, "nothing of the fleet is left running", func() bool {
		return len(itest.FleetInstances(ctx, t, compute, in.FleetID, providers.StatePending, providers.StateRunning)) == 0
	})
}
