package worker

import (
	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/events"
)

// HelpTexts explains every metric a gust worker serves, by its name before
// the Prometheus naming scope adds _total (counters) or _seconds (timers,
// served as histograms). The Go runtime's and the process's metrics bring
// their own.
//
// The SDK's metrics carry the labels namespace, task_queue (the queue's
// name: gust or gust-launch, or a worker's sticky queue), worker_type
// (WorkflowWorker, ActivityWorker, LocalActivityWorker) and, where they
// apply, workflow_type, activity_type, operation and poller_type.
var HelpTexts = map[string]string{
	// gust's own.
	MetricFleetsInFlight: "Fleets whose LaunchFleetWorkflow this worker holds, by phase (validating, reserving, bursting, filling, " +
		"or a final one while it cleans up). Summed over all workers it counts every fleet in flight once.",
	activities.MetricInstancesLaunched: "Instances launched by fleets, by path: burst (the minimum, launched at once against a capacity reservation) " +
		"or fill (towards the target, through the platform's launch rate limiter).",
	activities.MetricInvocations: "Function invocation attempts, by tenant, function and outcome: ok, function_error (the handler failed, " +
		"crashed or timed out) or error (it did not run: a full concurrency limit, a throttle, a platform failure; retried until the deadline). " +
		"The subtenant label is there only when the worker runs with --metrics-subtenant-label.",
	activities.MetricColdStarts: "Function invocations that started a new execution environment, by tenant and function " +
		"(and subtenant with --metrics-subtenant-label).",
	activities.MetricInvokeLatency: "Time an invocation that ran took at the provider, from the call to the answer, in seconds, " +
		"by tenant and function.",
	activities.MetricQueueWait: "Time an invocation that ran waited in the durable queue, in seconds: from its invoke activity's first " +
		"schedule until the attempt that got an execution environment began, retries behind full concurrency limits included.",
	activities.MetricThrottled: "Cloud calls refused for a limit, by api (service and operation, such as EC2.RunInstances, or the provider " +
		"method) and reason: rate (a request rate, such as EC2's RequestLimitExceeded) or concurrency (a function's concurrency limit, " +
		"Lambda's TooManyRequestsException). Each is retried with backoff by the activity's retry policy.",
	events.MetricReceived: "Instance events (EC2 state changes and spot interruption warnings) the worker's event router received " +
		"from a tenant's events queue, by tenant; redeliveries count again.",
	events.MetricDelivered: "Instance events the event router signalled to the fleet that owns the instance, by tenant.",
	events.MetricIgnored: "Instance events and queue messages the event router dropped, by tenant and reason: not_event (a message that is not " +
		"an EC2 instance event the fleets need, deleted unread), no_fleet (an instance of no fleet, or one the cloud did not find) or " +
		"fleet_closed (the fleet's workflow has ended).",
	events.MetricLookupMisses: "Instances whose fleet the event router did not know (no launch reported them to this worker) and looked up " +
		"with DescribeInstances, by tenant; a batch's misses cost one call.",

	// The Temporal SDK's.
	"temporal_workflow_completed":                      "Workflow executions this worker completed successfully.",
	"temporal_workflow_canceled":                       "Workflow executions this worker ended as canceled.",
	"temporal_workflow_failed":                         "Workflow executions this worker ended as failed.",
	"temporal_workflow_continue_as_new":                "Workflow runs this worker ended by continuing as new.",
	"temporal_workflow_endtoend_latency":               "Time from a workflow execution's start to its close, in seconds, for executions this worker closed.",
	"temporal_workflow_task_replay_latency":            "Time spent replaying history to rebuild a workflow's state before processing a task, in seconds.",
	"temporal_workflow_task_queue_poll_empty":          "Workflow task polls that ended without a task (the long poll timed out).",
	"temporal_workflow_task_queue_poll_succeed":        "Workflow task polls that returned a task.",
	"temporal_workflow_task_schedule_to_start_latency": "Time workflow tasks waited in the task queue before a worker picked them up, in seconds: high values mean too few workers or pollers.",
	"temporal_workflow_task_execution_latency":         "Time this worker spent processing a workflow task, in seconds.",
	"temporal_workflow_task_execution_failed":          "Workflow tasks that failed (a panic, a non-determinism error, an unknown workflow type), by failure_reason.",
	"temporal_workflow_task_no_completion":             "Workflow tasks this worker processed without sending a completion (a query-only task, or one abandoned).",
	"temporal_activity_poll_no_task":                   "Activity task polls that ended without a task.",
	"temporal_activity_schedule_to_start_latency":      "Time activity tasks waited in the task queue before a worker picked them up, in seconds; on gust-launch this includes waiting for the launch rate limiter.",
	"temporal_activity_execution_failed":               "Activity attempts that returned an error (each retry counts), by activity_type.",
	"temporal_unregistered_activity_invocation":        "Activity tasks for an activity type this worker does not register.",
	"temporal_activity_execution_latency":              "Time one activity attempt took in this worker, in seconds.",
	"temporal_activity_succeed_endtoend_latency":       "Time from an activity's first schedule to its successful completion, retries included, in seconds.",
	"temporal_activity_task_error":                     "Activity tasks that failed inside the worker itself (the result could not be reported, a panic in the SDK).",
	"temporal_local_activity_total":                    "Local activity attempts started.",
	"temporal_local_activity_canceled":                 "Local activities canceled (deprecated name of temporal_local_activity_execution_cancelled).",
	"temporal_local_activity_execution_cancelled":      "Local activities canceled.",
	"temporal_local_activity_failed":                   "Local activities that failed (deprecated name of temporal_local_activity_execution_failed).",
	"temporal_local_activity_execution_failed":         "Local activity attempts that returned an error.",
	"temporal_local_activity_error":                    "Local activities that failed inside the worker itself (a panic, a timeout before they ran).",
	"temporal_local_activity_execution_latency":        "Time one local activity attempt took, in seconds.",
	"temporal_local_activity_succeed_endtoend_latency": "Time from a local activity's schedule to its successful completion, retries included, in seconds.",
	"temporal_corrupted_signals":                       "Signals whose payload the worker could not decode, and dropped.",
	"temporal_worker_start":                            "Worker starts (one per worker type and task queue).",
	"temporal_worker_task_slots_available":             "Free task slots of the worker, by worker_type: how many more tasks it would take now.",
	"temporal_worker_task_slots_used":                  "Task slots in use, by worker_type: tasks the worker is running now.",
	"temporal_poller_start":                            "Poller goroutines started.",
	"temporal_num_pollers":                             "Pollers currently polling, by poller_type.",
	"temporal_request":                                 "Requests the worker's client sent to the Temporal frontend, by operation.",
	"temporal_request_failure":                         "Requests to the Temporal frontend that failed, by operation and status_code.",
	"temporal_request_latency":                         "Time requests to the Temporal frontend took, in seconds, by operation.",
	"temporal_long_request":                            "Long-poll requests (task polls, history waits) sent to the Temporal frontend, by operation.",
	"temporal_long_request_failure":                    "Long-poll requests to the Temporal frontend that failed, by operation and status_code.",
	"temporal_long_request_latency":                    "Time long-poll requests to the Temporal frontend took, in seconds, by operation.",
	"temporal_request_resource_exhausted":              "Requests the Temporal frontend refused as RESOURCE_EXHAUSTED (rate limits), by operation and cause.",
	"temporal_long_request_resource_exhausted":         "Long-poll requests the Temporal frontend refused as RESOURCE_EXHAUSTED, by operation and cause.",
	// The same per attempt: the SDK retries some failed requests itself.
	"temporal_request_attempt":                      "Attempts of requests to the Temporal frontend, retries included, by operation.",
	"temporal_request_failure_attempt":              "Attempts of requests to the Temporal frontend that failed, retries included, by operation and status_code.",
	"temporal_request_latency_attempt":              "Time each attempt of a request to the Temporal frontend took, in seconds, by operation.",
	"temporal_long_request_attempt":                 "Attempts of long-poll requests to the Temporal frontend, retries included, by operation.",
	"temporal_long_request_failure_attempt":         "Attempts of long-poll requests to the Temporal frontend that failed, retries included, by operation and status_code.",
	"temporal_long_request_latency_attempt":         "Time each attempt of a long-poll request to the Temporal frontend took, in seconds, by operation.",
	"temporal_sticky_cache_hit":                     "Workflow tasks that found their workflow's state in the worker's cache.",
	"temporal_sticky_cache_miss":                    "Workflow tasks whose workflow had to be replayed from history, not found in the cache.",
	"temporal_sticky_cache_total_forced_eviction":   "Workflows evicted from the worker's cache to make room.",
	"temporal_sticky_cache_size":                    "Workflows held in the worker's cache.",
	"temporal_workflow_active_thread_count":         "Workflow coroutines alive in the worker.",
	"temporal_nexus_poll_no_task":                   "Nexus task polls that ended without a task (gust registers no Nexus services).",
	"temporal_nexus_task_schedule_to_start_latency": "Time Nexus tasks waited before a worker picked them up, in seconds.",
	"temporal_nexus_task_execution_failed":          "Nexus tasks that failed.",
	"temporal_nexus_task_execution_latency":         "Time the worker spent on a Nexus task, in seconds.",
	"temporal_nexus_task_endtoend_latency":          "Time from a Nexus task's schedule to its completion, in seconds.",
}
