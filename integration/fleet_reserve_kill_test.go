package integration

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// TestFleetReservationSurvivesWorkerKill kills the only worker while the
// fleet's first workflow task is reserving its minimum (ReserveOfferings
// as a local activity, fleetLocalReserve), after the first reservation
// was made and before the task completed, so the history keeps nothing
// of it. Capacity then changes, so the next worker's rerun plans
// otherwise: it must find the dead run's reservation by its tag and
// cancel it. In the end the fleet holds exactly its minimum and none of
// the dead run's capacity stays reserved.
func TestFleetReservationSurvivesWorkerKill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s, c := startServer(t)
	const fleetID, min = "kill-reserve", 8
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{
			{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 6},
			{InstanceType: "c5.large", Zone: "us-east-1b", Initial: 10},
		}
		// One mutating call at once, then one every 2s: the reservation
		// takes seconds, so the kill lands inside it.
		cfg.EC2.RequestBucket = 1
		cfg.EC2.RequestRefill = 0.5
		cfg.EC2.DescribeBucket = -1 // the test's polling must not slow the worker
	})
	compute := tenantCompute(ctx, t, cloud.Endpoint())
	// The test holds 4 c5.large, so no offering holds the whole minimum
	// and the first run splits it, m5.large first.
	var blocker providers.Reservation
	itest.WaitFor(t, 10*time.Second, "the test's own reservation", func() bool {
		var err error
		blocker, err = compute.Reserve(ctx, providers.ReserveInput{InstanceType: "c5.large", Zones: []string{"us-east-1b"}, Count: 4})
		require.True(t, err == nil || providers.IsThrottled(err), "%v", err)
		return err == nil
	})

	first := gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), 100, 0)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: fleetID, TaskQueue: workflows.TaskQueue},
		workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{
			FleetID: fleetID, Min: min, Target: min, Burst: true,
			Offerings: []workflows.Offering{{InstanceType: "m5.large", Zone: "us-east-1a"}, {InstanceType: "c5.large", Zone: "us-east-1b"}},
		})
	require.NoError(t, err)
	fleetTag := map[string]string{providers.FleetTagKey: fleetID}
	var dead []providers.Reservation
	itest.WaitFor(t, time.Minute, "the first run never reserved", func() bool {
		dead, err = compute.ListReservations(ctx, fleetTag)
		return err == nil && len(dead) > 0
	})
	require.NoError(t, syscall.Kill(-first.Process.Pid, syscall.SIGKILL))
	_ = first.Wait()
	for _, r := range dead {
		require.Equal(t, "m5.large", r.InstanceType, "the kill must land in the first run's split of the minimum")
	}
	hs := []*historypb.History{runHistory(ctx, t, c, fleetID, run.GetRunID())}
	require.Zero(t, countLocalActivities(hs, "ReserveOfferings"), "the kill must land before the first workflow task completed")

	// Room for the whole minimum in c5.large: the rerun's first pass takes
	// it there, under a token the dead run never used.
	require.NoError(t, compute.CancelReservation(ctx, blocker.ID))
	gustWorkerProcess(t, s.FrontendAddress(), cloud.Endpoint(), 100, 0)
	var res workflows.FleetResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)

	live := fleetInstances(ctx, t, cloud.Endpoint(), fleetID)
	require.Len(t, live, min, "exactly the minimum")
	for _, in := range live {
		require.Equal(t, "c5.large", in.InstanceType, "the rerun's plan")
	}
	left, err := compute.ListReservations(ctx, fleetTag)
	require.NoError(t, err)
	for _, r := range left {
		for _, d := range dead {
			require.NotEqual(t, d.ID, r.ID, "the dead run's reservation is still held")
		}
	}
	// Every m5.large is free again: the dead run's reservation gave its
	// capacity back.
	itest.WaitFor(t, 30*time.Second, "m5.large capacity still held", func() bool {
		r, err := compute.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Zones: []string{"us-east-1a"}, Count: 6})
		require.True(t, err == nil || providers.IsThrottled(err), "%v", err)
		return err == nil && r.Count == 6
	})
	hs = []*historypb.History{runHistory(ctx, t, c, fleetID, run.GetRunID())}
	require.Equal(t, 1, countLocalActivities(hs, "ReserveOfferings"), "the rerun's reservation is in the history")
}
