package worker

import (
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/workflows"
)

func registerFleet(w sdkworker.Registry, opts Options) {
	w.RegisterWorkflow(workflows.LaunchFleetWorkflow)
	w.RegisterActivity(fleetActivities(opts))
}

// fleetActivities are the fleet activities of opts, on both task queues:
// launches tell the event router their instances' fleet, reconciles ask
// it whether events flow.
func fleetActivities(opts Options) *activities.Fleet {
	return &activities.Fleet{Accounts: opts.Accounts, Events: opts.watcher}
}
