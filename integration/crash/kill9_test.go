package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// TestDevSurvivesKill9 kills `gust dev` with SIGKILL at random moments, at
// least 30 times, while fleets launch, burst, fill and scale, and restarts
// it on the same state every time. Every restart must come up (a crash
// mid-transaction leaves a hot SQLite journal that the start-up check must
// let SQLite roll back, not call corruption), and at the end every fleet
// finishes with the invariant: its live instances are exactly the ones it
// reports, at its last target, none twice, and none leaked.
//
// GUST_KILL_SEED replays a failing run's moments.
func TestDevSurvivesKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("GUST_KILL_SEED"); s != "" {
		var err error
		seed, err = strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("GUST_KILL_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	state := t.TempDir()
	devArgs := []string{"--state-dir", state, "--ui-port", "0", "--cloud-capacity", "m5.large=100000", "--cloud-boot", "200ms", "--launch-rate", "40"}

	const kills = 30
	hot := 0 // restarts that found a hot journal
	// asked holds every target a fleet was given: a scale whose answer the
	// kill cut off may or may not have been accepted.
	asked := map[string][]int{}
	var fleets []string
	for k := range kills {
		d := itest.StartDev(t, devArgs...) // fails the test if it cannot start
		c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		switch {
		case k%3 == 0 || len(fleets) == 0:
			id := fmt.Sprintf("k9-%02d", k)
			target := 40 + rng.IntN(120)
			_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.FleetWorkflowID("", id), TaskQueue: workflows.TaskQueue},
				workflows.LaunchFleetWorkflow, workflows.LaunchFleetInput{FleetID: id, InstanceType: "m5.large", Min: 20, Target: target, Burst: true})
			require.NoError(t, err)
			fleets = append(fleets, id)
			asked[id] = append(asked[id], target)
		case k%3 == 1:
			// A scale may land or not before the kill; the fleet's own
			// answer after the last restart says which.
			id := fleets[rng.IntN(len(fleets))]
			target := 20 + rng.IntN(160)
			asked[id] = append(asked[id], target)
			_, _ = c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: workflows.FleetWorkflowID("", id),
				UpdateName: workflows.ScaleUpdate, Args: []any{workflows.ScaleInput{Target: target}}, WaitForStage: client.WorkflowUpdateStageAccepted})
		}
		time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond)
		cancel()
		c.Close()
		d.Kill(t)
		if info, err := os.Stat(filepath.Join(state, "temporal.db-journal")); err == nil && info.Size() > 0 {
			hot++
		}
	}

	d := itest.StartDev(t, devArgs...)
	defer d.Stop(t)
	c, err := client.Dial(client.Options{HostPort: d.Address, Logger: itest.QuietLogger()})
	require.NoError(t, err)
	defer c.Close()
	key, err := itest.ReadPlatformKey(state)
	require.NoError(t, err)
	compute := itest.ComputeAt(context.Background(), t, d.Cloud, itest.Static(key))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	reported := map[string]bool{}
	for _, id := range fleets {
		var res workflows.FleetResult
		require.NoError(t, c.GetWorkflow(ctx, workflows.FleetWorkflowID("", id), "").Get(ctx, &res), id)
		require.Equal(t, workflows.PhaseFulfilled, res.State, "%s: %s", id, res.Message)
		require.Contains(t, asked[id], res.Target, "%s: a target nobody asked for", id)
		ids := slices.Clone(res.InstanceIDs)
		slices.Sort(ids)
		require.Len(t, slices.Compact(ids), len(res.InstanceIDs), "%s reports an instance twice", id)
		require.Len(t, ids, res.Target, id)
		var live []string
		for _, in := range itest.LiveInstances(ctx, t, compute, id) {
			live = append(live, in.ID)
		}
		slices.Sort(live)
		require.Equal(t, ids, live, "%s: live instances differ from what the fleet reports", id)
		for _, i := range ids {
			reported[i] = true
		}
	}
	for _, in := range itest.Describe(ctx, t, compute, providers.InstanceFilter{States: []string{providers.StatePending, providers.StateRunning}}) {
		require.True(t, reported[in.ID], "instance %s (%v) runs but no fleet reports it: leaked", in.ID, in.Tags)
	}
	t.Logf("%d kills (%d left a journal), %d fleets, %d instances, all accounted for", kills, hot, len(fleets), len(reported))
}
