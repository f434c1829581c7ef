package integration

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/workflows"
)

// fillOrder returns, for fleets that filled through the rate limiter, the
// fleet of each fill round in the order the rounds launched (a round's
// instances share one launch time).
func fillOrder(ctx context.Context, t *testing.T, endpoint string, fleetIDs ...string) []string {
	t.Helper()
	type round struct {
		at    time.Time
		fleet string
	}
	var rounds []round
	for _, id := range fleetIDs {
		seen := map[time.Time]bool{}
		for _, in := range fleetInstances(ctx, t, endpoint, id) {
			if !seen[in.LaunchTime] {
				seen[in.LaunchTime] = true
				rounds = append(rounds, round{in.LaunchTime, id})
			}
		}
	}
	sort.Slice(rounds, func(i, j int) bool { return rounds[i].at.Before(rounds[j].at) })
	order := make([]string, len(rounds))
	for i, r := range rounds {
		order[i] = r.fleet
	}
	return order
}

// TestFleetsShareTheLaunchRateFairly: fleets that queue behind the launch
// rate limiter one after another are served in turn, not first come first
// served. Fleet a queues its eight rounds first; b and c queue theirs
// behind them. First come first served would launch all of a's rounds
// before b's first; fair dispatch gives b and c a round within the first
// few.
func TestFleetsShareTheLaunchRateFairly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = []ec2.Pool{{InstanceType: "m5.large", Initial: 1000}}
		cfg.EC2.RequestBucket = -1 // only gust's limiter shapes this run
		cfg.EC2.ResourceBucket = -1
	})
	startGustWorker(t, c, cloud.Endpoint(), 10) // 10 instances, two rounds, a second

	ids := []string{"fair-a", "fair-b", "fair-c"}
	runs := make([]client.WorkflowRun, len(ids))
	for i, id := range ids {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.TaskQueue}, workflows.LaunchFleetWorkflow,
			workflows.LaunchFleetInput{FleetID: id, InstanceType: "m5.large", Min: 5, Target: 40, Burst: false})
		require.NoError(t, err)
		runs[i] = run
		if i == 0 {
			// Let a queue every round before the others arrive.
			itest.WaitFor(t, 30*time.Second, "fleet a queues its rounds", func() bool {
				st, err := queryStatus(ctx, c, id)
				return err == nil && st.InFlight >= 30
			})
		}
	}
	for i, run := range runs {
		var res workflows.FleetResult
		require.NoError(t, run.Get(ctx, &res), ids[i])
		require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)
	}
	order := fillOrder(ctx, t, cloud.Endpoint(), ids...)
	t.Logf("fill rounds in launch order: %s", strings.Join(order, " "))
	require.Len(t, order, 24)
	first := map[string]int{}
	for i, f := range order {
		if _, ok := first[f]; !ok {
			first[f] = i
		}
	}
	// a's first round may already be running when b and c queue; fair
	// dispatch serves each of them within the next few rounds.
	for _, id := range ids[1:] {
		require.Less(t, first[id], 6, fmt.Sprintf("fleet %s waited behind the others: first round at position %d of %v", id, first[id], order))
	}
}

func queryStatus(ctx context.Context, c client.Client, id string) (workflows.FleetStatus, error) {
	return itest.FleetStatus(ctx, c, id)
}
