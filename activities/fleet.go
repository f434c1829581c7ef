package activities

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// FleetRunTagKey is the second tag every fleet instance carries: the first
// run id of the LaunchFleetWorkflow chain that launched it. A fleet id can be
// reused after its workflow ended, so the running count of one launch filters
// by both tags.
const FleetRunTagKey = "gust:fleet-run"

// maxTerminateBatch is the most instance ids one TerminateInstances call takes
// (EC2 accepts up to 1000).
const maxTerminateBatch = 1000

// Fleet holds the fleet activities. Workers register one *Fleet on both task
// queues; LaunchFleetWorkflow decides which queue each call goes to.
//
// Every input names the tenant whose account the call acts in (Tenant;
// empty means providers.DefaultTenant, which is what inputs recorded before
// tenants existed carry).
type Fleet struct {
	// Accounts gives each tenant's cloud. Never nil on a worker.
	Accounts providers.Accounts
	// Events, when set, is the worker's instance event router: launches
	// tell it which fleet their instances belong to, and ReconcileFleet
	// reports whether the tenant's events arrive. Nil means no event source:
	// fleets poll.
	Events EventWatcher
}

// compute returns the Compute of tenant's account. A tenant this worker
// cannot act for (unknown, or no role for it) fails the activity without
// retries: no attempt of it can do better, and a fleet for a tenant that
// does not exist should fail at once, not after minutes of retries. A
// transient failure (the cloud unreachable while assuming the role) stays
// retryable.
func (a *Fleet) compute(ctx context.Context, tenant string) (providers.Compute, error) {
	c, err := a.Accounts.Compute(ctx, tenant)
	if err == nil {
		return c, nil
	}
	if providers.IsNotFound(err) {
		// The provider's message names the tenant and the reason.
		return nil, temporal.NewNonRetryableApplicationError(err.Error(), providers.ErrTypeNotFound, nil)
	}
	return nil, ProviderErrorf("acting for tenant "+providers.TenantOrDefault(tenant), err)
}

// CheckInstanceTypeInput asks whether the cloud offers an instance type.
type CheckInstanceTypeInput struct {
	Tenant       string `json:"tenant,omitempty"`
	InstanceType string `json:"instance_type"`
}

// CheckInstanceTypeResult answers CheckInstanceType.
type CheckInstanceTypeResult struct {
	Known bool `json:"known"`
	// Offered is the number of instance types the cloud offers, for the
	// error message when Known is false.
	Offered int `json:"offered"`
}

// CheckInstanceType reports whether the cloud offers in.InstanceType.
func (a *Fleet) CheckInstanceType(ctx context.Context, in CheckInstanceTypeInput) (CheckInstanceTypeResult, error) {
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return CheckInstanceTypeResult{}, err
	}
	types, err := compute.InstanceTypes(ctx)
	if err != nil {
		return CheckInstanceTypeResult{}, ProviderErrorf("listing instance types", err)
	}
	return CheckInstanceTypeResult{Known: slices.Contains(types, in.InstanceType), Offered: len(types)}, nil
}

// ReserveCapacityInput asks for a capacity reservation of Count instances in
// one of Zones (any zone when empty).
type ReserveCapacityInput struct {
	Tenant       string   `json:"tenant,omitempty"`
	FleetID      string   `json:"fleet_id"`
	InstanceType string   `json:"instance_type"`
	Zones        []string `json:"zones"`
	Count        int      `json:"count"`
	// ClientToken makes the call idempotent; the workflow derives it from the
	// fleet id, its run chain and the attempt.
	ClientToken string            `json:"client_token"`
	Tags        map[string]string `json:"tags"`
}

// ReserveCapacityResult is the reservation that holds the fleet's minimum.
type ReserveCapacityResult struct {
	ReservationID string `json:"reservation_id"`
	Zone          string `json:"zone"`
	Count         int    `json:"count"`
}

// ReserveCapacity creates a capacity reservation. The provider tries each
// zone. It fails with an InsufficientCapacity ApplicationError when no zone
// can hold Count instances, which the workflow handles by its capacity policy.
func (a *Fleet) ReserveCapacity(ctx context.Context, in ReserveCapacityInput) (ReserveCapacityResult, error) {
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return ReserveCapacityResult{}, err
	}
	res, err := compute.Reserve(ctx, providers.ReserveInput{
		InstanceType: in.InstanceType,
		Zones:        in.Zones,
		Count:        in.Count,
		ClientToken:  in.ClientToken,
		Tags:         in.Tags,
	})
	if err != nil {
		return ReserveCapacityResult{}, ProviderErrorf(fmt.Sprintf("reserving %d %s", in.Count, in.InstanceType), err)
	}
	activity.GetLogger(ctx).Info("capacity reserved", "FleetID", in.FleetID, "ReservationID", res.ID, "Zone", res.Zone, "Count", res.Count)
	return ReserveCapacityResult{ReservationID: res.ID, Zone: res.Zone, Count: res.Count}, nil
}

// ReleaseReservationInput names the reservation to cancel.
type ReleaseReservationInput struct {
	Tenant        string `json:"tenant,omitempty"`
	ReservationID string `json:"reservation_id"`
}

// ReleaseReservationResult is empty: to the workflow a reservation that was
// released and one that was already gone are alike. (It once carried
// Released; histories that still do decode into it.)
type ReleaseReservationResult struct{}

// ReleaseReservation cancels a reservation, releasing its unused capacity.
// Instances already launched into it keep running. A reservation that no
// longer exists is not an error.
func (a *Fleet) ReleaseReservation(ctx context.Context, in ReleaseReservationInput) (ReleaseReservationResult, error) {
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return ReleaseReservationResult{}, err
	}
	err = compute.CancelReservation(ctx, in.ReservationID)
	if providers.IsNotFound(err) {
		return ReleaseReservationResult{}, nil
	}
	if err != nil {
		return ReleaseReservationResult{}, ProviderErrorf("cancelling reservation "+in.ReservationID, err)
	}
	return ReleaseReservationResult{}, nil
}

// LaunchInput is one RunInstances call of a fleet: a burst chunk
// (MinCount == MaxCount, against the reservation) or a fill round
// (MinCount 1).
type LaunchInput struct {
	Tenant       string `json:"tenant,omitempty"`
	FleetID      string `json:"fleet_id"`
	InstanceType string `json:"instance_type"`
	ImageID      string `json:"image_id"`
	Zone         string `json:"zone"`
	MinCount     int    `json:"min_count"`
	MaxCount     int    `json:"max_count"`
	// ClientToken is deterministic per fleet, run chain and step, so a retried
	// or replayed call returns the instances of the first call instead of
	// launching more.
	ClientToken   string `json:"client_token"`
	ReservationID string `json:"reservation_id"`
	// Tags go on every instance; they include providers.FleetTagKey.
	Tags map[string]string `json:"tags"`
	// Market, SubnetID and Params are set by fleets of offerings only;
	// empty, the launch is what it always was (on-demand, ImageID only).
	Market   string                 `json:"market,omitempty"`
	SubnetID string                 `json:"subnet_id,omitempty"`
	Params   providers.LaunchParams `json:"params,omitzero"`
	// RunTag, when set, is the fleet's run tag (FleetRunTagKey), so the
	// event router learns the launched instances' fleet.
	RunTag string `json:"run_tag,omitempty"`
}

// LaunchResult lists the instances one call launched.
type LaunchResult struct {
	InstanceIDs []string `json:"instance_ids"`
}

// LaunchBurstChunk launches one all-or-nothing chunk of the burst. Workflows
// schedule it on workflows.TaskQueue, outside the platform rate limiter.
func (a *Fleet) LaunchBurstChunk(ctx context.Context, in LaunchInput) (LaunchResult, error) {
	res, err := a.launch(ctx, "launching burst chunk", in)
	countLaunched(ctx, "burst", len(res.InstanceIDs))
	return res, err
}

// LaunchFill launches up to MaxCount instances of the fill path. Workflows
// schedule it on workflows.LaunchTaskQueue, whose server-enforced activity
// rate is the platform launch rate limiter.
func (a *Fleet) LaunchFill(ctx context.Context, in LaunchInput) (LaunchResult, error) {
	res, err := a.launch(ctx, "launching fill round", in)
	countLaunched(ctx, "fill", len(res.InstanceIDs))
	return res, err
}

func (a *Fleet) launch(ctx context.Context, doing string, in LaunchInput) (LaunchResult, error) {
	if in.FleetID == "" || in.ClientToken == "" || in.MinCount < 1 || in.MaxCount < in.MinCount {
		return LaunchResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: bad launch input (fleet %q, token %q, count %d..%d)", doing, in.FleetID, in.ClientToken, in.MinCount, in.MaxCount),
			providers.ErrTypeInvalid, nil)
	}
	tags := make(map[string]string, len(in.Tags)+1)
	for k, v := range in.Tags {
		tags[k] = v
	}
	tags[providers.FleetTagKey] = in.FleetID
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return LaunchResult{}, err
	}
	instances, err := keepAlive(ctx, func() ([]providers.Instance, error) {
		return compute.Run(ctx, providers.RunInput{
			InstanceType:  in.InstanceType,
			ImageID:       in.ImageID,
			Zone:          in.Zone,
			MinCount:      in.MinCount,
			MaxCount:      in.MaxCount,
			ClientToken:   in.ClientToken,
			ReservationID: in.ReservationID,
			Tags:          tags,
			Market:        in.Market,
			SubnetID:      in.SubnetID,
			Params:        in.Params,
		})
	})
	if err != nil {
		return LaunchResult{}, ProviderErrorf(fmt.Sprintf("%s (%d..%d %s)", doing, in.MinCount, in.MaxCount, in.InstanceType), err)
	}
	res := LaunchResult{InstanceIDs: make([]string, 0, len(instances))}
	for _, inst := range instances {
		res.InstanceIDs = append(res.InstanceIDs, inst.ID)
	}
	if len(res.InstanceIDs) > in.MaxCount {
		// A cloud that returns more than MaxCount breaks the fleet's
		// exactness; fail loudly rather than silently over-launch.
		return LaunchResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: cloud returned %d instances for MaxCount %d", doing, len(res.InstanceIDs), in.MaxCount),
			providers.ErrTypeTooManyInstances, nil, res)
	}
	if a.Events != nil && in.RunTag != "" && len(res.InstanceIDs) > 0 {
		a.Events.Learn(providers.TenantOrDefault(in.Tenant), in.FleetID, in.RunTag, res.InstanceIDs)
	}
	return res, nil
}

// CountRunningInput selects a fleet's instances by its tags.
type CountRunningInput struct {
	Tenant  string `json:"tenant,omitempty"`
	FleetID string `json:"fleet_id"`
	// RunTag, when set, also requires FleetRunTagKey == RunTag.
	RunTag string `json:"run_tag"`
}

// CountRunningResult counts a fleet's instances by state. Total includes
// those that are shutting down, terminated, stopping or stopped.
type CountRunningResult struct {
	Running int `json:"running"`
	Pending int `json:"pending"`
	Total   int `json:"total"`
}

// CountRunning counts the fleet's instances by state with one
// DescribeInstances (by tag). The workflow polls it with durable timers in
// between to learn when min and target are running.
func (a *Fleet) CountRunning(ctx context.Context, in CountRunningInput) (CountRunningResult, error) {
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return CountRunningResult{}, err
	}
	instances, err := keepAlive(ctx, func() ([]providers.Instance, error) {
		return compute.Describe(ctx, providers.InstanceFilter{Tags: fleetTags(in.FleetID, in.RunTag)})
	})
	if err != nil {
		return CountRunningResult{}, ProviderErrorf("describing fleet instances", err)
	}
	res := CountRunningResult{Total: len(instances)}
	for _, inst := range instances {
		switch inst.State {
		case providers.StateRunning:
			res.Running++
		case providers.StatePending:
			res.Pending++
		}
	}
	return res, nil
}

// ListFleetInput selects one fleet launch's instances by its tags.
type ListFleetInput struct {
	Tenant  string `json:"tenant,omitempty"`
	FleetID string `json:"fleet_id"`
	RunTag  string `json:"run_tag"`
}

// ListFleetResult lists the fleet's pending and running instances.
type ListFleetResult struct {
	IDs []string `json:"ids"`
}

// ListFleetInstances lists the ids of the fleet's pending and running
// instances, in the cloud's order. The workflow calls it only when a count
// finds more instances than it knows of: a launch whose response never
// arrived, however often it was retried, still left its instances tagged.
func (a *Fleet) ListFleetInstances(ctx context.Context, in ListFleetInput) (ListFleetResult, error) {
	ids, err := a.liveFleetIDs(ctx, in.Tenant, in.FleetID, in.RunTag)
	return ListFleetResult{IDs: ids}, err
}

// fleetTags selects one fleet launch's instances: the fleet id tag, and the
// run tag when given.
func fleetTags(fleetID, runTag string) map[string]string {
	tags := map[string]string{providers.FleetTagKey: fleetID}
	if runTag != "" {
		tags[FleetRunTagKey] = runTag
	}
	return tags
}

// liveFleetIDs returns the ids of the pending and running instances that
// carry the fleet's tags.
func (a *Fleet) liveFleetIDs(ctx context.Context, tenant, fleetID, runTag string) ([]string, error) {
	compute, err := a.compute(ctx, tenant)
	if err != nil {
		return nil, err
	}
	instances, err := keepAlive(ctx, func() ([]providers.Instance, error) {
		return compute.Describe(ctx, providers.InstanceFilter{
			Tags:   fleetTags(fleetID, runTag),
			States: []string{providers.StatePending, providers.StateRunning},
		})
	})
	if err != nil {
		return nil, ProviderErrorf("describing fleet instances", err)
	}
	ids := make([]string, 0, len(instances))
	for _, inst := range instances {
		// The filter says so already; a cloud that ignores it must not
		// make gust adopt or terminate what has already gone.
		if inst.State == providers.StatePending || inst.State == providers.StateRunning {
			ids = append(ids, inst.ID)
		}
	}
	return ids, nil
}

// TerminateInput lists instances to terminate.
type TerminateInput struct {
	Tenant string   `json:"tenant,omitempty"`
	IDs    []string `json:"ids"`
}

// TerminateResult counts what TerminateInstances did.
type TerminateResult struct {
	Terminated int `json:"terminated"`
	// NotFound counts ids the cloud did not know; they are not an error.
	NotFound int `json:"not_found"`
}

// TerminateInstances terminates the instances in batches, heartbeating between
// batches. Already terminated instances are fine; unknown ids are counted in
// NotFound rather than failing the whole call.
func (a *Fleet) TerminateInstances(ctx context.Context, in TerminateInput) (TerminateResult, error) {
	var res TerminateResult
	if len(in.IDs) == 0 {
		return res, nil
	}
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return res, err
	}
	for start := 0; start < len(in.IDs); start += maxTerminateBatch {
		batch := in.IDs[start:min(start+maxTerminateBatch, len(in.IDs))]
		n, missing, err := terminateBatch(ctx, compute, batch)
		if err != nil {
			return res, err
		}
		res.Terminated += n
		res.NotFound += missing
		activity.RecordHeartbeat(ctx, start+len(batch))
	}
	return res, nil
}

// terminateBatch terminates ids in one call; if the cloud rejects the call
// because some id is unknown, it falls back to one call per id so the known
// ones still go.
func terminateBatch(ctx context.Context, compute providers.Compute, ids []string) (terminated, notFound int, err error) {
	err = compute.Terminate(ctx, ids)
	if err == nil {
		return len(ids), 0, nil
	}
	if !providers.IsNotFound(err) {
		return 0, 0, ProviderErrorf("terminating instances", err)
	}
	for _, id := range ids {
		err := compute.Terminate(ctx, []string{id})
		switch {
		case err == nil:
			terminated++
		case providers.IsNotFound(err):
			notFound++
		default:
			return terminated, notFound, ProviderErrorf("terminating "+id, err)
		}
	}
	return terminated, notFound, nil
}

// TerminateFleetInput selects every instance of one fleet launch by its tags.
type TerminateFleetInput struct {
	Tenant  string `json:"tenant,omitempty"`
	FleetID string `json:"fleet_id"`
	RunTag  string `json:"run_tag"`
}

// TerminateFleet terminates every pending or running instance carrying the
// fleet's tags, including any the workflow never learned the id of. It is
// the cancel path's sweep.
func (a *Fleet) TerminateFleet(ctx context.Context, in TerminateFleetInput) (TerminateResult, error) {
	ids, err := a.liveFleetIDs(ctx, in.Tenant, in.FleetID, in.RunTag)
	if err != nil {
		return TerminateResult{}, err
	}
	return a.TerminateInstances(ctx, TerminateInput{Tenant: in.Tenant, IDs: ids})
}
