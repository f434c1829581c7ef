package workflows

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/codec"
)

// replayTypes is every workflow type gust's worker registers (worker.register,
// registerFleet and registerFunctions), each with a changed twin that
// starts with a one-second timer and then does what the workflow does. A
// workflow type added to the worker belongs here, with a recorded history.
var replayTypes = []struct {
	wf, changed any
}{
	{PingWorkflow, delayed(PingWorkflow)},
	{LaunchFleetWorkflow, delayed(LaunchFleetWorkflow)},
	{InvokeWorkflow, delayed(InvokeWorkflow)},
	{DeployFunctionWorkflow, delayed(DeployFunctionWorkflow)},
	{ListFunctionsWorkflow, delayed(ListFunctionsWorkflow)},
	{DeleteFunctionWorkflow, delayedErr(DeleteFunctionWorkflow)},
	{FunctionEnvironmentsWorkflow, delayed(FunctionEnvironmentsWorkflow)},
	{FunctionLogsWorkflow, delayed(FunctionLogsWorkflow)},
}

// inputsChanged lists, by file name prefix, the recordings whose activity
// inputs a later change altered on purpose, with why: they still replay
// for determinism, but their inputs are no longer compared. Add an entry
// only for a deliberate input change that in-flight workflows tolerate,
// and record the scenarios anew with a new tag.
var inputsChanged = map[string]string{}

// TestReplayRecordedHistories replays every history in testdata/ with
// today's workflow code and fails on any nondeterminism: a change to the
// commands a workflow makes for an input it was already run with (an
// in-flight workflow replays its history after a deploy) fails here, and
// needs a workflow.GetVersion. A file's workflow type picks the workflow.
// It also checks that every regular activity is scheduled with the input
// the history holds, which the SDK's replay does not compare: a pure
// refactor must keep client tokens, tags and counts as they were.
//
// The histories, named <kind>-<recording>-<scenario>.json.gz, are the SDK's
// JSON (protojson of historypb.History, as client.GetWorkflowHistory gives
// it and client.HistoryFromJSON reads it), gzipped:
//
//   - fleet-pre-tenants-*: fleets recorded by the gust of before tenants (no
//     Tenant in any input) with `gust dev` and `gust fleet launch/scale/
//     cancel`: one that reached its target, and one that filled, was scaled
//     down and cancelled.
//   - invoke-pre-gateway-*: invocations recorded by the gust of before the
//     gateway (no MaxQueueWait, EventRetries, DryRun, LogTail or Qualifier in
//     any input) with `gust dev --ephemeral` and `gust fn invoke`: a local and
//     a regular activity, a function error, an Event, a not-found function,
//     and, in each activity mode, an invocation that waited in the queue
//     (five TooManyRequests before it ran).
//   - *-v1-*: every workflow type and the paths of the fleet and the
//     invocation (burst, fill, no burst, scale, the three ways to cancel,
//     continue-as-new run by run, adoption, capacity and fill timeouts, a
//     rejected request; sync, async and failing invocations and those the
//     gateway starts), recorded by integration.TestRecordHistories at
//     commit 3bcaa6a, before workflows/fleet.go was refactored.
//   - *-v2-*: the same scenarios recorded after that refactor, with the
//     fleet-look-again and fleet-scale-memo markers.
//   - *-v3-*: the same scenarios and a scale down that drops queued fill
//     rounds, recorded after the operator-experience issue: payloads in
//     snake_case JSON (codec.LegacyJSONPayloadConverter still reads the
//     Go-named ones above), fill rounds with a fairness key, and the
//     fleet-keep-count and fleet-drop-surplus markers.
//   - fleet-v4-*: the fleet scenarios recorded after fleets of offerings
//     (the fleet-offerings marker): PrepareFleet, ReserveOfferings,
//     LaunchOfferings and ReconcileFleet in place of the one-type
//     activities, and a wait-timeout scenario given 20s so that it
//     retries its reservation.
//   - fleet-v5-*: the same fleet scenarios on fleet-offerings' version 2
//     (fleetFastStart): PrepareFleet as a local activity marker, no
//     marker for the older change ids, and no count after a launch while
//     events arrive.
//   - fleet-v6-*: the same fleet scenarios on fleet-offerings' version 3
//     (fleetEventsFirst). The recording's worker reads no events queue,
//     so these fleets count at the start and poll; the path without that
//     count is TestFastStart's.
//   - fleet-v7-*: the same fleet scenarios on fleet-offerings' version 4
//     (fleetLocalReserve): ReserveOfferings as a local activity marker
//     after PrepareFleet's, in the first workflow task, and a fleet that
//     ends only on a count taken with every launch settled.
//
// docs/design.md, "Recording a history for the replay tests", says how to
// record more. The control replays each history with the changed twin of
// its workflow, which must fail: it shows the replay really compares
// commands, so a pass is not vacuous.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json.gz")
	require.NoError(t, err)
	require.NotEmpty(t, files)

	known := map[string]bool{}
	for _, rt := range replayTypes {
		known[workflowName(rt.wf)] = true
	}
	seen := map[string]bool{}
	histories := make([]*historypb.History, len(files))
	for i, path := range files {
		histories[i] = readHistory(t, path)
		typ := histories[i].Events[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowType().GetName()
		require.True(t, known[typ], "%s: workflow type %q is not in replayTypes: add it, as the worker registers it", path, typ)
		seen[typ] = true
	}
	for _, rt := range replayTypes {
		require.True(t, seen[workflowName(rt.wf)], "no recorded history of %s in testdata/", workflowName(rt.wf))
	}

	for i, path := range files {
		history := histories[i]
		t.Run(strings.TrimSuffix(filepath.Base(path), ".json.gz"), func(t *testing.T) {
			calls := &activityCalls{}
			// The converters every gust process uses, without keys: the
			// histories hold no secrets, and older ones hold the Go-named
			// keys of before the message structs had JSON tags.
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				Interceptors:     []interceptor.WorkerInterceptor{calls},
				DataConverter:    codec.JSONDataConverter(),
				FailureConverter: codec.FailureConverter(),
			})
			require.NoError(t, err)
			for _, rt := range replayTypes {
				replayer.RegisterWorkflow(rt.wf)
			}
			require.NoError(t, replayer.ReplayWorkflowHistory(nil, history))
			if why := inputsChangedFor(path); why != "" {
				t.Logf("activity inputs not compared: %s", why)
			} else {
				requireSameActivityInputs(t, history, calls.calls)
			}

			changed, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter: codec.JSONDataConverter(), FailureConverter: codec.FailureConverter(),
			})
			require.NoError(t, err)
			for _, rt := range replayTypes {
				changed.RegisterWorkflowWithOptions(rt.changed, workflow.RegisterOptions{Name: workflowName(rt.wf)})
			}
			// The SDK logs the control's nondeterminism panic at error
			// level; it is expected, so it goes nowhere.
			quiet := log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
			err = changed.ReplayWorkflowHistory(quiet, history)
			require.ErrorContains(t, err, "TMPRL1100", "the control: a changed workflow must fail to replay as nondeterministic")
		})
	}
}

// readHistory reads a gzipped history in the SDK's JSON.
func readHistory(t *testing.T, path string) *historypb.History {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(t, err)
	history, err := client.HistoryFromJSON(zr, client.HistoryJSONOptions{})
	require.NoError(t, err, path)
	require.NotEmpty(t, history.Events, path)
	return history
}

func inputsChangedFor(path string) string {
	for _, prefix := range slices.Sorted(maps.Keys(inputsChanged)) {
		if strings.HasPrefix(filepath.Base(path), prefix) {
			return inputsChanged[prefix]
		}
	}
	return ""
}

// requireSameActivityInputs checks that the replay scheduled each activity
// with the input the history recorded. The SDK's replay compares only an
// activity's id and type, so without this a change to an input (a client
// token, a tag, a count) would replay cleanly. Each recorded input is
// decoded into the type of the replayed argument, with the converter every
// gust process uses (which reads the Go-named keys of histories recorded
// before the message structs had JSON tags), and both are compared as
// JSON, so a field added since the recording compares equal at its zero
// value.
func requireSameActivityInputs(t *testing.T, history *historypb.History, calls []activityCall) {
	t.Helper()
	var scheduled []*historypb.HistoryEvent
	for _, ev := range history.Events {
		if ev.GetActivityTaskScheduledEventAttributes() != nil {
			scheduled = append(scheduled, ev)
		}
	}
	require.Len(t, calls, len(scheduled), "the replay scheduled another number of activities than the history holds")
	dc := codec.JSONDataConverter()
	for i, ev := range scheduled {
		a, call := ev.GetActivityTaskScheduledEventAttributes(), calls[i]
		require.Equal(t, a.GetActivityType().GetName(), call.activityType, "activity %d", i+1)
		payloads := a.GetInput().GetPayloads()
		require.Len(t, payloads, len(call.args), "activity %d (%s): argument count", i+1, call.activityType)
		for j, arg := range call.args {
			recorded := reflect.New(reflect.TypeOf(arg))
			require.NoError(t, dc.FromPayload(payloads[j], recorded.Interface()))
			want, err := json.Marshal(recorded.Elem().Interface())
			require.NoError(t, err)
			got, err := json.Marshal(arg)
			require.NoError(t, err)
			require.JSONEq(t, string(want), string(got), "activity %d (%s, event %d): argument %d differs from the recorded one",
				i+1, call.activityType, ev.GetEventId(), j+1)
		}
	}
}

// activityCall is one regular activity a replayed workflow scheduled.
type activityCall struct {
	activityType string
	args         []any
}

// activityCalls is a worker interceptor that records the regular
// activities replayed workflows schedule, in order. Local activities leave
// only their result in history, so there is no input to compare.
type activityCalls struct {
	interceptor.WorkerInterceptorBase
	calls []activityCall
}

func (c *activityCalls) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	in := &activityCallsInbound{calls: c}
	in.Next = next
	return in
}

type activityCallsInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	calls *activityCalls
}

func (in *activityCallsInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	out := &activityCallsOutbound{calls: in.calls}
	out.Next = outbound
	return in.Next.Init(out)
}

type activityCallsOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	calls *activityCalls
}

func (out *activityCallsOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	out.calls.calls = append(out.calls.calls, activityCall{activityType: activityType, args: args})
	return out.Next.ExecuteActivity(ctx, activityType, args...)
}

// workflowName is the name RegisterWorkflow gives wf: its function name
// without the package path.
func workflowName(wf any) string {
	name := runtime.FuncForPC(reflect.ValueOf(wf).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

func delayed[I, R any](wf func(workflow.Context, I) (R, error)) func(workflow.Context, I) (R, error) {
	return func(ctx workflow.Context, in I) (R, error) {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			var zero R
			return zero, err
		}
		return wf(ctx, in)
	}
}

func delayedErr[I any](wf func(workflow.Context, I) error) func(workflow.Context, I) error {
	return func(ctx workflow.Context, in I) error {
		if err := workflow.Sleep(ctx, time.Second); err != nil {
			return err
		}
		return wf(ctx, in)
	}
}
