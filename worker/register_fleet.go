package worker

import (
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/workflows"
)

func registerFleet(w sdkworker.Registry, opts Options) {
	w.RegisterWorkflow(workflows.LaunchFleetWorkflow)
	w.RegisterActivity(&activities.Fleet{Accounts: opts.Accounts})
}
