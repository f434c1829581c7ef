package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/gateway"
	"github.com/gust-dev/gust/integration/itest"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// Environment of TestRecordHistories.
const (
	// recordDirEnv names the directory the histories are written to; the
	// test skips without it.
	recordDirEnv = "GUST_RECORD_HISTORIES"
	// recordTagEnv, when set, goes into every file name after its kind
	// ("fleet-v2-burst.json.gz"), so a recording can be written straight
	// into workflows/testdata next to those of earlier code.
	recordTagEnv = "GUST_RECORD_TAG"
)

// recordPools gives each fleet scenario its own instance type, so their
// capacity never mixes: the scenarios that must stay open while the test
// talks to them draw from pools that only trickle.
var recordPools = []ec2.Pool{
	{InstanceType: "m5.large", Initial: 5000, RatePerSec: 50}, // burst, fill, no-burst, continue-as-new, tenant
	{InstanceType: "r5.large", Initial: 10, RatePerSec: 1},    // scale
	{InstanceType: "r5.xlarge", Initial: 4, RatePerSec: 0.5},  // cancel
	{InstanceType: "r5.2xlarge", Initial: 4, RatePerSec: 0.5}, // cancel, keep
	{InstanceType: "r6i.large", Initial: 4, RatePerSec: 0.5},  // cancel signal
	{InstanceType: "r6i.xlarge", Initial: 4, RatePerSec: 0.5}, // workflow cancellation
	{InstanceType: "c6i.large", Initial: 5},                   // fill timeout
	{InstanceType: "t3.nano", Initial: 3},                     // insufficient capacity
	// Adoption: zone a holds only the fleet's minimum, zone b is where
	// the test launches the fleet's "orphans" out of band.
	{InstanceType: "c5.large", Zone: "us-east-1a", Initial: 5},
	{InstanceType: "c5.large", Zone: "us-east-1b", Initial: 50},
}

// recordTenant is the tenant the function scenarios deploy for and call
// the gateway as.
const recordTenant = "rec"

// TestRecordHistories records the histories of gust's workflows, run by
// the code of this checkout on the embedded platform, for the replay tests
// in workflows/ (TestReplayRecordedHistories). Every scenario asserts it
// took the path it is named for, so a recording that silently missed its
// path fails instead of being saved as coverage it is not. See
// docs/design.md, "Recording a history for the replay tests".
//
//	GUST_RECORD_HISTORIES=/tmp/histories [GUST_RECORD_TAG=v2] \
//	  go test -count=1 -run TestRecordHistories -v -timeout 20m ./integration/
func TestRecordHistories(t *testing.T) {
	dir := os.Getenv(recordDirEnv)
	if dir == "" {
		t.Skip(recordDirEnv + " is not set: set it to a directory to record workflow histories for the replay tests there")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()

	_, c := startServer(t)
	cloud := startCloud(t, func(cfg *localcloud.Config) {
		cfg.Capacity = recordPools
		cfg.BootDelay = 200 * time.Millisecond
	})
	startGustWorker(t, c, cloud.Endpoint(), 50)
	r := &recorder{c: c, dir: dir, tag: os.Getenv(recordTagEnv)}

	t.Run("fleet", func(t *testing.T) { recordFleets(ctx, t, r, cloud) })
	t.Run("functions", func(t *testing.T) { recordFunctions(ctx, t, r, cloud) })
	t.Run("ping", func(t *testing.T) {
		var res workflows.PingResult
		_, hs, err := r.execute(ctx, t, "ping", client.StartWorkflowOptions{ID: "rec-ping"},
			workflows.PingWorkflow, workflows.PingInput{Message: "rec", Wait: 200 * time.Millisecond}, &res)
		require.NoError(t, err)
		require.Equal(t, "rec", res.Message)
		require.Positive(t, countEvents(hs, enumspb.EVENT_TYPE_TIMER_STARTED))
	})
	t.Logf("histories written to %s", dir)
}

// recordFleets runs the LaunchFleetWorkflow scenarios, one fleet each.
func recordFleets(ctx context.Context, t *testing.T, r *recorder, cloud *localcloud.Server) {
	fleet := func(t *testing.T, name string, in workflows.LaunchFleetInput) (workflows.FleetResult, []*historypb.History, error) {
		t.Helper()
		var res workflows.FleetResult
		_, hs, err := r.execute(ctx, t, name, fleetOptions(in), workflows.LaunchFleetWorkflow, in, &res)
		return res, hs, err
	}
	fulfilled := func(t *testing.T, res workflows.FleetResult, err error, target int) {
		t.Helper()
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseFulfilled, res.State, res.Message)
		require.Equal(t, target, res.Running)
		require.Len(t, res.InstanceIDs, target)
	}

	t.Run("burst", func(t *testing.T) {
		res, _, err := fleet(t, "fleet-burst", workflows.LaunchFleetInput{
			FleetID: "rec-burst", InstanceType: "m5.large", Min: 20, Target: 20, Burst: true})
		fulfilled(t, res, err, 20)
		require.Equal(t, 20, res.BurstLaunched)
		require.Zero(t, res.FillLaunched)
	})

	t.Run("fill", func(t *testing.T) {
		res, _, err := fleet(t, "fleet-fill", workflows.LaunchFleetInput{
			FleetID: "rec-fill", InstanceType: "m5.large", Min: 5, Target: 30, Burst: true})
		fulfilled(t, res, err, 30)
		require.Equal(t, 5, res.BurstLaunched)
		require.Equal(t, 25, res.FillLaunched)
	})

	t.Run("noburst", func(t *testing.T) {
		res, hs, err := fleet(t, "fleet-noburst", workflows.LaunchFleetInput{
			FleetID: "rec-noburst", InstanceType: "m5.large", Min: 5, Target: 15, Burst: false})
		fulfilled(t, res, err, 15)
		require.Zero(t, res.BurstLaunched)
		require.Equal(t, 15, res.FillLaunched)
		require.Zero(t, countActivities(hs, "LaunchBurstChunk"))
		// The first fill round launched into the reservation.
		var first activities.LaunchInput
		require.NoError(t, activityInput(hs, "LaunchFill", &first))
		require.NotEmpty(t, first.ReservationID, "the fill path launches into the reservation first")
	})

	t.Run("tenant", func(t *testing.T) {
		res, _, err := fleet(t, "fleet-tenant", workflows.LaunchFleetInput{
			Tenant: "acme", FleetID: "rec-tenant", InstanceType: "m5.large", Min: 3, Target: 6, Burst: true})
		fulfilled(t, res, err, 6)
		require.Equal(t, "acme", res.Tenant)
	})

	t.Run("scale", func(t *testing.T) {
		in := workflows.LaunchFleetInput{FleetID: "rec-scale", InstanceType: "r5.large", Min: 5, Target: 40, Burst: true}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the fleet has its first 10", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling && s.Launched >= 10
		})
		up := scaleFleet(ctx, t, r.c, run, 45)
		require.Equal(t, 40, up.PreviousTarget)
		waitFleet(ctx, t, r.c, run, "the fleet grows past 12", func(s workflows.FleetStatus) bool { return s.Launched >= 12 })
		down := scaleFleet(ctx, t, r.c, run, 8)
		require.Equal(t, 45, down.PreviousTarget)
		require.LessOrEqual(t, down.Launched, 8)

		var res workflows.FleetResult
		err := run.Get(ctx, &res)
		r.save(ctx, t, "fleet-scale", run)
		fulfilled(t, res, err, 8)
		require.Equal(t, 8, res.Target)
		require.GreaterOrEqual(t, res.Terminated, 4, "the scale down terminated the newest")
	})

	t.Run("scale-drop", func(t *testing.T) {
		// Scaled down to its min just after the burst, while its fill
		// rounds still queue behind the launch rate: the newest are
		// dropped before they launch (fleet-drop-surplus).
		in := workflows.LaunchFleetInput{FleetID: "rec-scale-drop", InstanceType: "m5.large", Min: 5, Target: 200, Burst: true}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the burst landed", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling
		})
		down := scaleFleet(ctx, t, r.c, run, 5)
		require.Equal(t, 200, down.PreviousTarget)
		var res workflows.FleetResult
		err := run.Get(ctx, &res)
		hs := r.save(ctx, t, "fleet-scale-drop", run)
		fulfilled(t, res, err, 5)
		require.Positive(t, countEvents(hs, enumspb.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED), "no fill round was dropped")
		require.Less(t, res.FillLaunched, 195, "the dropped rounds launched")
	})

	cancelled := func(t *testing.T, name, instanceType string, keep bool) {
		in := workflows.LaunchFleetInput{FleetID: "rec-" + name, InstanceType: instanceType, Min: 2, Target: 50, Burst: true}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the fleet is filling with 4", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling && s.Launched >= 4
		})
		h, err := r.c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.CancelUpdate,
			Args: []any{workflows.CancelInput{Keep: keep}}, WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		require.NoError(t, err)
		var cres workflows.CancelResult
		require.NoError(t, h.Get(ctx, &cres))
		var res workflows.FleetResult
		err = run.Get(ctx, &res)
		r.save(ctx, t, "fleet-"+name, run)
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseCancelled, res.State)
		if keep {
			require.GreaterOrEqual(t, cres.Kept, 4)
			require.Zero(t, cres.Terminated)
		} else {
			require.GreaterOrEqual(t, cres.Terminated, 4)
			require.Empty(t, fleetInstances(ctx, t, cloud.Endpoint(), in.FleetID))
		}
	}
	t.Run("cancel", func(t *testing.T) { cancelled(t, "cancel", "r5.xlarge", false) })
	t.Run("cancel-keep", func(t *testing.T) { cancelled(t, "cancel-keep", "r5.2xlarge", true) })

	t.Run("cancel-signal", func(t *testing.T) {
		in := workflows.LaunchFleetInput{FleetID: "rec-cancel-signal", InstanceType: "r6i.large", Min: 2, Target: 50, Burst: true}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the fleet is filling with 4", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling && s.Launched >= 4
		})
		require.NoError(t, r.c.SignalWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.CancelSignal, workflows.CancelInput{}))
		var res workflows.FleetResult
		err := run.Get(ctx, &res)
		r.save(ctx, t, "fleet-cancel-signal", run)
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseCancelled, res.State)
		require.GreaterOrEqual(t, res.Terminated, 4)
	})

	t.Run("workflow-cancel", func(t *testing.T) {
		in := workflows.LaunchFleetInput{FleetID: "rec-workflow-cancel", InstanceType: "r6i.xlarge", Min: 2, Target: 50, Burst: true}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the fleet is filling with 4", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling && s.Launched >= 4
		})
		require.NoError(t, r.c.CancelWorkflow(ctx, run.GetID(), run.GetRunID()))
		err := run.Get(ctx, nil)
		hs := r.save(ctx, t, "fleet-workflow-cancel", run)
		var canceled *temporal.CanceledError
		require.ErrorAs(t, err, &canceled)
		require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, lastEvent(hs).GetEventType())
		require.Equal(t, 1, countActivities(hs, "TerminateFleet"), "the cancelled workflow cleaned up")
		require.Empty(t, fleetInstances(ctx, t, cloud.Endpoint(), in.FleetID))
	})

	t.Run("continue-as-new", func(t *testing.T) {
		res, hs, err := fleet(t, "fleet-continue-as-new", workflows.LaunchFleetInput{
			FleetID: "rec-continue-as-new", InstanceType: "m5.large", Min: 5, Target: 50, Burst: true,
			Tuning: workflows.FleetTuning{ContinueAsNewAfter: 8, MaxFillInFlight: 1},
		})
		fulfilled(t, res, err, 50)
		require.GreaterOrEqual(t, len(hs), 3, "the chain must continue as new at least twice")
		require.Equal(t, len(hs)-1, res.Runs)
		for _, h := range hs[:len(hs)-1] {
			require.Equal(t, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW, lastEvent([]*historypb.History{h}).GetEventType())
		}
	})

	t.Run("adoption", func(t *testing.T) {
		// The fleet's zone holds its minimum only, so after the burst it
		// backs off in its fill loop with every launch settled: the state
		// in which a count finding more instances than the fleet knows
		// makes it adopt them.
		in := workflows.LaunchFleetInput{FleetID: "rec-adoption", InstanceType: "c5.large", Zones: []string{"us-east-1a"},
			Min: 5, Target: 10, Burst: true, Tuning: workflows.FleetTuning{IdlePollInterval: 300 * time.Millisecond}}
		run := r.start(ctx, t, fleetOptions(in), workflows.LaunchFleetWorkflow, in)
		waitFleet(ctx, t, r.c, run, "the fleet backs off for capacity after its burst", func(s workflows.FleetStatus) bool {
			return s.Phase == workflows.PhaseFilling && s.Launched == 5 && s.CapacityRetries > 0
		})
		// Seven instances carrying the fleet's tags that no launch of the
		// fleet reported: what a burst chunk whose response was lost for
		// good leaves behind.
		const extra = 7
		compute := tenantCompute(ctx, t, cloud.Endpoint())
		for {
			_, err := compute.Run(ctx, providers.RunInput{
				InstanceType: in.InstanceType, Zone: "us-east-1b", MinCount: extra, MaxCount: extra,
				ClientToken: "rec-orphans-" + uuid.NewString()[:8],
				Tags:        map[string]string{providers.FleetTagKey: in.FleetID, activities.FleetRunTagKey: run.GetRunID()},
			})
			if providers.IsThrottled(err) && ctx.Err() == nil {
				time.Sleep(250 * time.Millisecond)
				continue
			}
			require.NoError(t, err)
			break
		}
		var res workflows.FleetResult
		err := run.Get(ctx, &res)
		hs := r.save(ctx, t, "fleet-adoption", run)
		fulfilled(t, res, err, in.Target)
		require.Equal(t, extra, res.Adopted, "the fleet adopted the instances no launch reported")
		require.Equal(t, 5+extra-in.Target, res.Terminated, "and terminated those over its target")
		require.Positive(t, countActivities(hs, "ListFleetInstances"))
		// A fleet on fleet-offerings' version 2 has adoption without
		// asking adopt-orphans' GetVersion; an older one asks it.
		require.True(t, countVersionMarkers(hs, "adopt-orphans") > 0 || recordedVersion(hs, "fleet-offerings") >= 2,
			"the adopt-orphans GetVersion marker, or fleet-offerings' version 2 that implies it")
	})

	t.Run("insufficient-capacity", func(t *testing.T) {
		res, _, err := fleet(t, "fleet-insufficient-capacity", workflows.LaunchFleetInput{
			FleetID: "rec-insufficient", InstanceType: "t3.nano", Min: 5, Target: 8, Burst: true,
			CapacityPolicy: workflows.CapacityPolicyFail})
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseInsufficientCapacity, res.State)
		require.Empty(t, res.InstanceIDs)
	})

	t.Run("wait-timeout", func(t *testing.T) {
		res, hs, err := fleet(t, "fleet-wait-timeout", workflows.LaunchFleetInput{
			FleetID: "rec-wait-timeout", InstanceType: "t3.nano", Min: 5, Target: 8, Burst: true,
			// Long enough for a second attempt of a fleet of offerings,
			// whose attempt asks several offerings and sizes (up to v3
			// the recordings used 6s).
			CapacityPolicy: workflows.CapacityPolicyWait, WaitTimeout: 20 * time.Second})
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseInsufficientCapacity, res.State)
		// How many attempts fit depends on how long each one is throttled.
		// ReserveCapacity for one-type fleets, ReserveOfferings for
		// fleets of offerings (fleet-offerings), as a local activity
		// since fleetLocalReserve: every fleet recorded now.
		reserves := countActivities(hs, "ReserveCapacity") + countActivities(hs, "ReserveOfferings") + countLocalActivities(hs, "ReserveOfferings")
		require.GreaterOrEqual(t, reserves, 2, "the wait policy retried the reservation")
		require.Positive(t, countEvents(hs, enumspb.EVENT_TYPE_TIMER_STARTED), "after a durable timer")
	})

	t.Run("fill-timeout", func(t *testing.T) {
		res, _, err := fleet(t, "fleet-fill-timeout", workflows.LaunchFleetInput{
			FleetID: "rec-fill-timeout", InstanceType: "c6i.large", Min: 3, Target: 10, Burst: true,
			FillTimeout: 4 * time.Second})
		require.NoError(t, err)
		require.Equal(t, workflows.PhaseInsufficientCapacity, res.State)
		require.Contains(t, res.Message, "fill timeout")
		require.Len(t, res.InstanceIDs, 5, "a fill timeout keeps what was launched")
	})

	t.Run("invalid", func(t *testing.T) {
		_, hs, err := fleet(t, "fleet-invalid", workflows.LaunchFleetInput{
			FleetID: "rec-invalid", InstanceType: "zz9.huge", Min: 1, Target: 2, Burst: true})
		requireAppError(t, err, providers.ErrTypeInvalid)
		require.Equal(t, 1, countActivities(hs, "CheckInstanceType")+countActivities(hs, "PrepareFleet")+countLocalActivities(hs, "PrepareFleet"),
			"the cloud was asked once")
		require.Zero(t, countActivities(hs, "ReserveCapacity")+countActivities(hs, "ReserveOfferings")+countLocalActivities(hs, "ReserveOfferings"))
	})
}

// recordFunctions runs the function scenarios: the admin workflows, direct
// InvokeWorkflows, and invocations started by the gateway.
func recordFunctions(ctx context.Context, t *testing.T, r *recorder, cloud *localcloud.Server) {
	key, err := cloud.Registry().Create(ctx, recordTenant)
	require.NoError(t, err)
	code := itest.EchoHandler(t)
	admin := func(name, op, fn string) client.StartWorkflowOptions {
		return client.StartWorkflowOptions{ID: workflows.FunctionWorkflowID(op, recordTenant, fn, "rec-"+name)}
	}

	t.Run("deploy", func(t *testing.T) {
		in := workflows.DeployInput{Tenant: recordTenant, Name: "echo", Timeout: 30 * time.Second, MaxEnvsPerSubTenant: 1}
		require.NoError(t, in.SetCode(code))
		var res workflows.DeployResult
		_, _, err := r.execute(ctx, t, "functions-deploy", admin("deploy", workflows.OpDeploy, "echo"), workflows.DeployFunctionWorkflow, in, &res)
		require.NoError(t, err)
		require.Equal(t, "echo", res.Function.Name)
	})

	invoke := func(t *testing.T, name string, in workflows.InvokeInput) (workflows.InvokeResult, []*historypb.History, error) {
		t.Helper()
		in.Tenant, in.RequestID = recordTenant, "rec-"+name
		if in.Function == "" {
			in.Function = "echo"
		}
		if in.SubTenant == "" {
			in.SubTenant = "cust-1"
		}
		var res workflows.InvokeResult
		_, hs, err := r.execute(ctx, t, "invoke-"+name, client.StartWorkflowOptions{
			ID: workflows.InvokeWorkflowID(in.Tenant, in.Function, in.RequestID), EnableEagerStart: true,
			Memo: workflows.InvokeMemo(in),
		}, workflows.InvokeWorkflow, in, &res)
		return res, hs, err
	}

	t.Run("invoke-sync", func(t *testing.T) {
		res, hs, err := invoke(t, "sync", workflows.InvokeInput{Payload: json.RawMessage(`{"echo":"hi"}`)})
		require.NoError(t, err)
		require.Nil(t, res.FunctionError)
		require.JSONEq(t, `"hi"`, string(echoed(t, res.Payload).Echo))
		require.Positive(t, countEvents(hs, enumspb.EVENT_TYPE_MARKER_RECORDED), "the default mode runs a local activity")
	})
	t.Run("invoke-sync-regular", func(t *testing.T) {
		res, hs, err := invoke(t, "sync-regular", workflows.InvokeInput{
			Payload: json.RawMessage(`{"echo":"regular"}`), ActivityMode: workflows.ActivityModeRegular})
		require.NoError(t, err)
		require.Nil(t, res.FunctionError)
		require.Equal(t, 1, countActivities(hs, "InvokeFunction"))
	})
	t.Run("invoke-async", func(t *testing.T) {
		res, _, err := invoke(t, "async", workflows.InvokeInput{Payload: json.RawMessage(`{"stdout":"async"}`), Async: true})
		require.NoError(t, err)
		require.Nil(t, res.FunctionError)
		require.True(t, len(res.Payload) == 0 || string(res.Payload) == "null", "an Event invocation has no payload: %s", res.Payload)
	})
	t.Run("invoke-fnerr", func(t *testing.T) {
		res, _, err := invoke(t, "fnerr", workflows.InvokeInput{Payload: json.RawMessage(`{"error":"boom"}`)})
		require.NoError(t, err)
		require.NotNil(t, res.FunctionError)
		require.Equal(t, "EchoError", res.FunctionError.Type)
		require.Equal(t, "boom", res.FunctionError.Message)
	})
	t.Run("invoke-notfound", func(t *testing.T) {
		_, _, err := invoke(t, "notfound", workflows.InvokeInput{Function: "nope"})
		requireAppError(t, err, providers.ErrTypeNotFound)
	})

	// The gateway, in this process, started as `gust dev` starts it; its
	// event retries wait 200 ms instead of Lambda's minute.
	srv := httptest.NewServer(gateway.New(gateway.Config{
		Client: r.c, Registry: cloud.Registry(), EventRetryDelay: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	sdk := itest.TenantLambda(srv.URL, key.AccessKeyID, key.SecretAccessKey)
	call := func(sub string, typ lambdatypes.InvocationType, req sample.Request, opts ...func(*lambda.Options)) (*lambda.InvokeOutput, error) {
		return sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String(sub),
			InvocationType: typ, Payload: payloadOf(t, req)}, opts...)
	}
	// saveGateway waits for the invocation the gateway started and
	// records it.
	saveGateway := func(t *testing.T, name, requestID string, res *workflows.InvokeResult) ([]*historypb.History, workflows.InvokeInput, error) {
		t.Helper()
		run := r.c.GetWorkflow(ctx, workflows.InvokeWorkflowID(recordTenant, "echo", requestID), "")
		err := run.Get(ctx, res)
		hs := r.save(ctx, t, "invoke-"+name, run)
		var in workflows.InvokeInput
		require.NoError(t, startInput(hs, &in))
		return hs, in, err
	}

	t.Run("invoke-gateway-sync", func(t *testing.T) {
		out, err := sdk.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("echo"), TenantId: aws.String("cust-gw"),
			LogType: lambdatypes.LogTypeTail, Payload: payloadOf(t, sample.Request{Echo: json.RawMessage(`"gw"`), Stderr: "tail-marker"})},
			withHeader(gateway.HeaderIdempotencyKey, "rec-key-1"), withHeader(gateway.HeaderMaxWait, "20s"))
		require.NoError(t, err)
		require.Nil(t, out.FunctionError)
		require.NotNil(t, out.LogResult)
		var res workflows.InvokeResult
		_, in, err := saveGateway(t, "gateway-sync", itest.RequestID(t, out, nil), &res)
		require.NoError(t, err)
		require.True(t, in.LogTail)
		require.Equal(t, 20*time.Second, in.MaxQueueWait)
		require.Equal(t, gateway.RequestResponseDeadline(20*time.Second), in.Deadline)
		require.Contains(t, res.LogTail, "tail-marker")
	})
	t.Run("invoke-gateway-event", func(t *testing.T) {
		out, err := call("cust-gw", lambdatypes.InvocationTypeEvent, sample.Request{Stdout: "event"})
		require.NoError(t, err)
		require.EqualValues(t, 202, out.StatusCode)
		var res workflows.InvokeResult
		_, in, err := saveGateway(t, "gateway-event", itest.RequestID(t, out, nil), &res)
		require.NoError(t, err)
		require.Equal(t, workflows.MaxEventRetries, in.EventRetries)
		require.Nil(t, res.FunctionError)
		require.Equal(t, 1, res.Attempts)
	})
	t.Run("invoke-gateway-event-retries", func(t *testing.T) {
		out, err := call("cust-gw", lambdatypes.InvocationTypeEvent, sample.Request{Error: "always"})
		require.NoError(t, err)
		require.EqualValues(t, 202, out.StatusCode)
		var res workflows.InvokeResult
		hs, _, err := saveGateway(t, "gateway-event-retries", itest.RequestID(t, out, nil), &res)
		require.NoError(t, err)
		require.NotNil(t, res.FunctionError)
		require.Equal(t, 1+workflows.MaxEventRetries, res.Attempts)
		require.Equal(t, workflows.MaxEventRetries, countEvents(hs, enumspb.EVENT_TYPE_TIMER_STARTED), "a durable timer before each retry")
	})
	t.Run("invoke-gateway-dryrun", func(t *testing.T) {
		out, err := call("cust-gw", lambdatypes.InvocationTypeDryRun, sample.Request{})
		require.NoError(t, err)
		require.EqualValues(t, 204, out.StatusCode)
		var res workflows.InvokeResult
		_, in, err := saveGateway(t, "gateway-dryrun", itest.RequestID(t, out, nil), &res)
		require.NoError(t, err)
		require.True(t, in.DryRun)
	})
	t.Run("invoke-gateway-queue-timeout", func(t *testing.T) {
		// The sub-tenant's one environment is held busy, so a call with a
		// one-second max wait times out in the queue and never runs.
		_, err := call("cust-busy", lambdatypes.InvocationTypeRequestResponse, sample.Request{})
		require.NoError(t, err)
		slow := make(chan error, 1)
		go func() {
			_, err := call("cust-busy", lambdatypes.InvocationTypeRequestResponse, sample.Request{SleepMS: 5000})
			slow <- err
		}()
		time.Sleep(500 * time.Millisecond)
		_, err = call("cust-busy", lambdatypes.InvocationTypeRequestResponse, sample.Request{Stdout: "must-never-run"},
			withHeader(gateway.HeaderMaxWait, "1"))
		var tmr *lambdatypes.TooManyRequestsException
		require.ErrorAs(t, err, &tmr)
		var res workflows.InvokeResult
		_, in, err := saveGateway(t, "gateway-queue-timeout", itest.RequestID(t, nil, err), &res)
		requireAppError(t, err, workflows.ErrTypeQueueTimeout)
		require.Equal(t, time.Second, in.MaxQueueWait)
		require.NoError(t, <-slow)
	})

	t.Run("list", func(t *testing.T) {
		var res workflows.ListFunctionsResult
		_, _, err := r.execute(ctx, t, "functions-list", admin("list", workflows.OpList, ""),
			workflows.ListFunctionsWorkflow, workflows.ListFunctionsInput{Tenant: recordTenant}, &res)
		require.NoError(t, err)
		require.NotEmpty(t, res.Functions)
	})
	t.Run("envs", func(t *testing.T) {
		var res workflows.FunctionEnvironmentsResult
		_, _, err := r.execute(ctx, t, "functions-envs", admin("envs", workflows.OpEnvironments, "echo"),
			workflows.FunctionEnvironmentsWorkflow, workflows.FunctionEnvironmentsInput{Tenant: recordTenant, Name: "echo"}, &res)
		require.NoError(t, err)
		require.NotEmpty(t, res.Environments)
	})
	t.Run("logs", func(t *testing.T) {
		var res workflows.FunctionLogsResult
		_, _, err := r.execute(ctx, t, "functions-logs", admin("logs", workflows.OpLogs, "echo"),
			workflows.FunctionLogsWorkflow, workflows.FunctionLogsInput{Tenant: recordTenant, Name: "echo", SubTenant: "cust-gw"}, &res)
		require.NoError(t, err)
		require.Contains(t, res.Logs, "tail-marker")
	})
	t.Run("delete", func(t *testing.T) {
		deployFn(ctx, t, r.c, recordTenant, "scratch", code)
		_, _, err := r.execute(ctx, t, "functions-delete", admin("delete", workflows.OpDelete, "scratch"),
			workflows.DeleteFunctionWorkflow, workflows.DeleteFunctionInput{Tenant: recordTenant, Name: "scratch"}, nil)
		require.NoError(t, err)
	})
}

// recorder starts workflows and writes their histories.
type recorder struct {
	c   client.Client
	dir string
	tag string
}

// fileName is name with the recorder's tag after its kind: "fleet-burst"
// becomes "fleet-v2-burst", "ping" becomes "ping-v2".
func (r *recorder) fileName(name string) string {
	if r.tag == "" {
		return name
	}
	kind, rest, ok := strings.Cut(name, "-")
	if !ok {
		return kind + "-" + r.tag
	}
	return kind + "-" + r.tag + "-" + rest
}

func (r *recorder) start(ctx context.Context, t *testing.T, opts client.StartWorkflowOptions, wf, in any) client.WorkflowRun {
	t.Helper()
	opts.TaskQueue = workflows.TaskQueue
	run, err := r.c.ExecuteWorkflow(ctx, opts, wf, in)
	require.NoError(t, err)
	return run
}

// execute runs a workflow to its end, records it as name, and returns the
// workflow's error for the caller to check: a failure may be the path the
// scenario records.
func (r *recorder) execute(ctx context.Context, t *testing.T, name string, opts client.StartWorkflowOptions, wf, in, out any) (client.WorkflowRun, []*historypb.History, error) {
	t.Helper()
	run := r.start(ctx, t, opts, wf, in)
	err := run.Get(ctx, out)
	return run, r.save(ctx, t, name, run), err
}

// save writes every run of run's closed workflow chain as
// <dir>/<name>.json.gz, or <name>-run1.json.gz, -run2 ... when it continued
// as new, and returns the histories in order. run may be any run of the
// chain: a WorkflowRun's Get follows continue-as-new and moves its run id
// along, so the chain is walked from the first run its history names.
func (r *recorder) save(ctx context.Context, t *testing.T, name string, run client.WorkflowRun) []*historypb.History {
	t.Helper()
	start := r.history(ctx, t, run.GetID(), run.GetRunID()).GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	require.NotEmpty(t, start.GetFirstExecutionRunId())
	var hs []*historypb.History
	for runID := start.GetFirstExecutionRunId(); runID != ""; {
		h := r.history(ctx, t, run.GetID(), runID)
		hs = append(hs, h)
		runID = ""
		if last := lastEvent([]*historypb.History{h}); last.GetEventType() == enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW {
			runID = last.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
			require.Less(t, len(hs), 100, "a chain of continue-as-new too long to record")
		}
	}
	for i, h := range hs {
		file := r.fileName(name)
		if len(hs) > 1 {
			file += "-run" + strconv.Itoa(i+1)
		}
		writeHistory(t, filepath.Join(r.dir, file+".json.gz"), h)
	}
	return hs
}

// runHistory reads a run's history so far (all of it, once the run is
// closed).
func runHistory(ctx context.Context, t *testing.T, c client.Client, workflowID, runID string) *historypb.History {
	t.Helper()
	iter := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	return h
}

// history reads one run's whole history; the run must be closed.
func (r *recorder) history(ctx context.Context, t *testing.T, workflowID, runID string) *historypb.History {
	t.Helper()
	h := runHistory(ctx, t, r.c, workflowID, runID)
	require.NotEmpty(t, h.Events)
	switch last := lastEvent([]*historypb.History{h}).GetEventType(); last {
	case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
	default:
		t.Fatalf("workflow %s run %s is not closed by itself: its last event is %s", workflowID, runID, last)
	}
	return h
}

// writeHistory writes h as the SDK's JSON (protojson of historypb.History,
// which client.HistoryFromJSON reads), gzipped, and reads it back.
func writeHistory(t *testing.T, path string, h *historypb.History) {
	t.Helper()
	b, err := protojson.Marshal(h)
	require.NoError(t, err)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))

	zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
	require.NoError(t, err)
	back, err := client.HistoryFromJSON(zr, client.HistoryJSONOptions{})
	require.NoError(t, err)
	require.Len(t, back.Events, len(h.Events), "%s does not read back", path)
	t.Logf("recorded %s: %d events, %d bytes", filepath.Base(path), len(h.Events), buf.Len())
}

func fleetOptions(in workflows.LaunchFleetInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.FleetWorkflowID(in.Tenant, in.FleetID)}
}

// waitFleet polls the fleet's status until cond holds.
func waitFleet(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun, what string, cond func(workflows.FleetStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last workflows.FleetStatus
	for time.Now().Before(deadline) {
		v, err := c.QueryWorkflow(ctx, run.GetID(), run.GetRunID(), workflows.StatusQuery)
		if err == nil && v.Get(&last) == nil && cond(last) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: never happened; last status %+v", what, last)
}

func scaleFleet(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun, target int) workflows.ScaleResult {
	t.Helper()
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: run.GetID(), RunID: run.GetRunID(), UpdateName: workflows.ScaleUpdate,
		Args: []any{workflows.ScaleInput{Target: target}}, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	require.NoError(t, err)
	var res workflows.ScaleResult
	require.NoError(t, h.Get(ctx, &res))
	require.Equal(t, target, res.Target)
	return res
}

func requireAppError(t *testing.T, err error, typ string) {
	t.Helper()
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "want an ApplicationError of type %s, got %v", typ, err)
	require.Equal(t, typ, appErr.Type(), "%v", err)
}

func echoed(t *testing.T, payload json.RawMessage) sample.Response {
	t.Helper()
	var resp sample.Response
	require.NoError(t, json.Unmarshal(payload, &resp), string(payload))
	return resp
}

func lastEvent(hs []*historypb.History) *historypb.HistoryEvent {
	events := hs[len(hs)-1].GetEvents()
	return events[len(events)-1]
}

func countEvents(hs []*historypb.History, typ enumspb.EventType) int {
	n := 0
	for _, h := range hs {
		for _, ev := range h.GetEvents() {
			if ev.GetEventType() == typ {
				n++
			}
		}
	}
	return n
}

// countActivities counts the scheduled activities of the given type.
func countActivities(hs []*historypb.History, activity string) int {
	n := 0
	for _, h := range hs {
		for _, ev := range h.GetEvents() {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activity {
				n++
			}
		}
	}
	return n
}

// markers returns the markers named name recorded in hs, in order.
func markers(hs []*historypb.History, name string) []*historypb.MarkerRecordedEventAttributes {
	var out []*historypb.MarkerRecordedEventAttributes
	for _, h := range hs {
		for _, ev := range h.GetEvents() {
			if m := ev.GetMarkerRecordedEventAttributes(); m != nil && m.GetMarkerName() == name {
				out = append(out, m)
			}
		}
	}
	return out
}

// countLocalActivities counts the local activities of the given type
// recorded in hs (their markers).
func countLocalActivities(hs []*historypb.History, activity string) int {
	n := 0
	for _, m := range markers(hs, "LocalActivity") {
		for _, p := range m.GetDetails()["data"].GetPayloads() {
			if bytes.Contains(p.GetData(), []byte(`"ActivityType":"`+activity+`"`)) {
				n++
			}
		}
	}
	return n
}

// activityInput decodes the input of the first activity of the given type.
func activityInput(hs []*historypb.History, activity string, v any) error {
	for _, h := range hs {
		for _, ev := range h.GetEvents() {
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == activity {
				return decodeFirst(a.GetInput(), v)
			}
		}
	}
	return errors.New("no " + activity + " activity was scheduled")
}

// startInput decodes the workflow's input from its first run's start event.
func startInput(hs []*historypb.History, v any) error {
	a := hs[0].GetEvents()[0].GetWorkflowExecutionStartedEventAttributes()
	if a == nil {
		return errors.New("the history does not begin with the workflow's start")
	}
	return decodeFirst(a.GetInput(), v)
}

func decodeFirst(p *commonpb.Payloads, v any) error {
	if len(p.GetPayloads()) == 0 {
		return errors.New("no input")
	}
	return converter.GetDefaultDataConverter().FromPayload(p.GetPayloads()[0], v)
}

// versionMarkers returns the workflow.GetVersion markers of changeID in
// hs, in order.
func versionMarkers(hs []*historypb.History, changeID string) []*historypb.MarkerRecordedEventAttributes {
	var out []*historypb.MarkerRecordedEventAttributes
	for _, m := range markers(hs, "Version") {
		var id string
		if p := m.GetDetails()["change-id"]; p != nil && decodeFirst(p, &id) == nil && id == changeID {
			out = append(out, m)
		}
	}
	return out
}

// countVersionMarkers counts the workflow.GetVersion markers of changeID.
func countVersionMarkers(hs []*historypb.History, changeID string) int {
	return len(versionMarkers(hs, changeID))
}

// recordedVersion is the version the first Version marker of changeID in
// hs recorded, or -2 without one.
func recordedVersion(hs []*historypb.History, changeID string) int {
	for _, m := range versionMarkers(hs, changeID) {
		var v int
		if p := m.GetDetails()["version"]; p != nil && decodeFirst(p, &v) == nil {
			return v
		}
	}
	return -2
}
