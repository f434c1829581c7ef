package worker

import (
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/workflows"
)

func registerFunctions(w sdkworker.Registry, opts Options) {
	w.RegisterWorkflow(workflows.InvokeWorkflow)
	w.RegisterWorkflow(workflows.DeployFunctionWorkflow)
	w.RegisterWorkflow(workflows.ListFunctionsWorkflow)
	w.RegisterWorkflow(workflows.DeleteFunctionWorkflow)
	w.RegisterWorkflow(workflows.FunctionEnvironmentsWorkflow)
	w.RegisterWorkflow(workflows.FunctionLogsWorkflow)
	w.RegisterActivity(&activities.Functions{Functions: opts.Functions, SubTenantMetrics: opts.SubTenantMetrics})
}
