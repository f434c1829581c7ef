package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
)

// Fleet contract.
//
// One LaunchFleetWorkflow runs per fleet, on TaskQueue, with
// FleetWorkflowID(tenant, fleet id) as its workflow id: a second request
// with the same tenant and id joins the running workflow instead of
// launching twice, and two tenants may each have a fleet of the same name.
// A fleet acts in its tenant's account (LaunchFleetInput.Tenant; empty
// means providers.DefaultTenant). A starter should call
// LaunchFleetInput.Validate first and exit 2 on error; the workflow validates
// again (and also checks the instance type against the cloud) and fails with
// a non-retryable ApplicationError of type providers.ErrTypeInvalid
// ("InvalidRequest") before launching anything.
//
// The workflow goes through the phases
//
//	validating → reserving → bursting → filling → fulfilled
//
// and ends in one of the terminal states below. A maintained fleet
// (OnLost OnLostReplace, fleets of offerings only) is the exception: once
// fulfilled it keeps running in state fulfilled, replacing what it loses,
// until it is cancelled, and scale and cancel work all along. Any other
// fleet completes (the workflow returns a FleetResult) when it is
// fulfilled, when the minimum's
// capacity is not there (insufficient_capacity), or when it is cancelled
// through the cancel update or signal. A cancellation of the workflow itself
// (Web UI, `temporal workflow cancel`) runs the same cleanup and then ends
// the workflow as Canceled, with the FleetResult as the CanceledError's
// details. A fleet that cannot reach its target for another reason (the
// cloud rejected the launch parameters, or instances were terminated outside
// gust) terminates what it launched, releases its reservation and fails the
// workflow with an ApplicationError of type ErrTypeFleetFailed whose details
// are the FleetResult; if nothing was launched yet, a request the cloud
// rejects fails it with the InvalidRequest error itself.
//
// Scale and cancel act on a fleet whose workflow is still open: until the
// target is running, or, for a maintained fleet, until it is cancelled. The instances of a fulfilled fleet stay; they
// carry the tags providers.FleetTagKey (the fleet id) and
// activities.FleetRunTagKey (Origin, the first run id of the launch) so they
// can be found later.

// Message names.
const (
	// StatusQuery returns a FleetStatus.
	StatusQuery = "status"
	// InstancesQuery returns the ids of the fleet's live instances, oldest
	// first, as FleetResult.InstanceIDs lists them: what a maintained
	// fleet, which has no result until it is cancelled, holds now.
	InstancesQuery = "instances"
	// ScaleUpdate takes a ScaleInput and returns a ScaleResult. Raising the
	// target launches more through the fill path and returns at once;
	// lowering it terminates the newest instances first and returns once
	// they are terminated.
	ScaleUpdate = "scale"
	// CancelUpdate takes a CancelInput and returns a CancelResult once the
	// fleet's instances are terminated (or kept). The workflow then ends with
	// state cancelled. If they could not all be terminated, the update
	// fails with an ApplicationError of type ErrTypeFleetFailed, and the
	// FleetResult keeps their ids and says so in its message: a failed
	// cleanup is never reported as a clean cancel.
	CancelUpdate = "cancel"
	// CancelSignal is the fire-and-forget form of CancelUpdate; it takes a
	// CancelInput.
	CancelSignal = "cancel"
	// InstanceEventsSignal delivers the cloud's instance state changes to
	// the fleet that owns the instances; it takes an InstanceEventsInput.
	// The worker's event router (package events) sends it, so fleets need
	// not poll. Events of another launch of the same fleet id (RunTag is
	// not the fleet's origin) and of unknown instances are ignored until a
	// launch reports them.
	InstanceEventsSignal = "instance_events"
)

// InstanceEventsInput is a batch of state changes of one fleet's instances.
type InstanceEventsInput struct {
	// RunTag is the instances' activities.FleetRunTagKey tag.
	RunTag string          `json:"run_tag"`
	Events []InstanceEvent `json:"events"`
}

// InstanceEvent is one instance's new state, as EC2's "EC2 Instance
// State-change Notification" (State) or "EC2 Spot Instance Interruption
// Warning" (Interrupted, the instance still running) reports it.
type InstanceEvent struct {
	ID          string    `json:"id"`
	State       string    `json:"state,omitempty"`
	Interrupted bool      `json:"interrupted,omitempty"`
	At          time.Time `json:"at"`
}

// Memo fields a starter sets on a fleet's workflow, so listings show them
// without a query (the tenant's is MemoTenant). The workflow keeps
// MemoTarget current when it is scaled.
const (
	MemoMin          = "min"
	MemoTarget       = "target"
	MemoInstanceType = "instance_type"
)

// Fleet phases. The last four are also the terminal states of FleetResult.
const (
	PhaseValidating           = "validating"
	PhaseReserving            = "reserving"
	PhaseBursting             = "bursting"
	PhaseFilling              = "filling"
	PhaseFulfilled            = "fulfilled"
	PhaseInsufficientCapacity = "insufficient_capacity"
	PhaseCancelled            = "cancelled"
	PhaseFailed               = "failed"
)

// Capacity policies: what the fleet does when no zone has capacity for min.
const (
	// CapacityPolicyFail ends the fleet at once with state
	// insufficient_capacity, having launched nothing. The default.
	CapacityPolicyFail = "fail"
	// CapacityPolicyWait retries the reservation with backoff (1s doubling to
	// 30s, on durable timers) until the wait deadline, then ends with state
	// insufficient_capacity.
	CapacityPolicyWait = "wait"
)

// Allocation strategies: the order in which a fleet uses its offerings.
const (
	// AllocationPrioritized uses offerings by Priority (lower first), then
	// in the order given. The default.
	AllocationPrioritized = "prioritized"
	// AllocationLowestPrice uses the offering with the lowest price per
	// capacity unit first.
	AllocationLowestPrice = "lowest-price"
	// AllocationCapacityOptimized uses the offering with the most free
	// capacity first, as the cloud scores it (EC2 scores spot offerings
	// only; unscored offerings follow by priority).
	AllocationCapacityOptimized = "capacity-optimized"
)

// What a fleet does when instances are terminated outside gust or
// reclaimed.
const (
	// OnLostReplace launches replacements through the fill path and keeps
	// maintaining the target until the fleet is cancelled: the workflow
	// does not complete when the target runs. `gust fleet launch` asks for
	// it unless told otherwise.
	OnLostReplace = "replace"
	// OnLostFail fails the fleet and terminates what it launched, as gust
	// did before maintained fleets; such a fleet completes once its target
	// runs. An empty OnLost means OnLostFail, so a program that starts
	// LaunchFleetWorkflow as before and waits for its result still gets
	// one.
	OnLostFail = "fail"
)

// DefaultUnavailableTTL is how long an offering that answered
// InsufficientInstanceCapacity is skipped.
const DefaultUnavailableTTL = 3 * time.Minute

// MaxOfferings is the most offerings a fleet may list (EC2 Fleet allows
// 300 overrides; gust keeps far fewer in workflow state).
const MaxOfferings = 50

// Offering is one instance type, optionally in one zone, that a fleet may
// launch, in either market.
type Offering struct {
	InstanceType string `json:"instance_type"`
	// Zone is empty for any zone (each subnet's zone when SubnetIDs are
	// set).
	Zone string `json:"zone,omitempty"`
	// Weight is the capacity units one instance counts for; 0 means 1.
	Weight int `json:"weight,omitempty"`
	// Priority orders offerings for AllocationPrioritized: lower first;
	// ties keep the order given.
	Priority int `json:"priority,omitempty"`
}

// ErrTypeFleetFailed is the type of the ApplicationError a fleet fails with
// when it cannot reach its target for a reason other than capacity, for
// example instances terminated by someone else. Its details are the
// FleetResult.
const ErrTypeFleetFailed = providers.ErrTypeFleetFailed

// Fleet limits.
const (
	// MaxFleetSize is the largest min or target.
	MaxFleetSize = 100000
	// DefaultWaitTimeout is how long CapacityPolicyWait waits when neither
	// WaitTimeout nor WaitDeadline is set.
	DefaultWaitTimeout = 15 * time.Minute
	// MaxUserTags is the most tags a user may add: EC2 allows 50 per
	// instance and gust adds two.
	MaxUserTags = 48
)

// LaunchFleetInput asks for a fleet of at least Min and up to Target
// instances.
type LaunchFleetInput struct {
	// Tenant is the tenant whose account the fleet launches into; empty
	// means providers.DefaultTenant. Every activity of the fleet acts in
	// that account, so its instances and reservation are the tenant's.
	Tenant string `json:"tenant,omitempty"`
	// FleetID names the fleet within its tenant: it is the value of the
	// instances' providers.FleetTagKey tag, and the workflow id is
	// FleetWorkflowID(Tenant, FleetID).
	FleetID      string `json:"fleet_id"`
	InstanceType string `json:"instance_type"`
	// Zones the fleet may use; empty lets the cloud choose.
	Zones []string `json:"zones"`
	// ImageID is passed to RunInstances as is; empty lets the provider pick
	// its default.
	ImageID string `json:"image_id"`
	// Tags go on every instance, besides gust's own tags. Keys must not start
	// with "gust:" or "aws:".
	Tags map[string]string `json:"tags"`
	// Min is launched in one burst once capacity for it is reserved; Target
	// is filled through the rate limiter. 1 <= Min <= Target <= MaxFleetSize.
	Min    int `json:"min"`
	Target int `json:"target"`
	// Burst launches Min in parallel, outside the launch rate limiter. The
	// CLI defaults it to true (--no-burst sets false). Without the burst the
	// minimum's capacity is still verified and reserved, and the fill path
	// launches into the reservation first: the same fleet, but every
	// instance goes through the rate limiter, which is the baseline the
	// benchmark compares against (time to min ≈ Min / launch rate).
	Burst bool `json:"burst"`
	// CapacityPolicy is CapacityPolicyFail (also when empty) or
	// CapacityPolicyWait.
	CapacityPolicy string `json:"capacity_policy"`
	// WaitTimeout and WaitDeadline bound CapacityPolicyWait: it gives up at
	// the earlier of fleet start + WaitTimeout and WaitDeadline (each when
	// set; DefaultWaitTimeout when neither is).
	WaitTimeout  time.Duration `json:"wait_timeout_ns"`
	WaitDeadline time.Time     `json:"wait_deadline"`
	// FillTimeout, when positive, bounds the fill: a fleet that has not
	// launched its target by fleet start + FillTimeout ends with state
	// insufficient_capacity and keeps the instances it has. Zero fills for as
	// long as it takes.
	FillTimeout time.Duration `json:"fill_timeout_ns"`
	// Offerings, when set, are what the fleet may launch, and Min and
	// Target count capacity units (an instance counts its offering's
	// Weight). Empty means one offering: InstanceType in each of Zones (or
	// any zone), weight 1. InstanceType, when also set, must be the first
	// offering's type (it is what listings show).
	Offerings []Offering `json:"offerings,omitempty"`
	// AllocationStrategy is one of the Allocation constants; empty means
	// AllocationPrioritized.
	AllocationStrategy string `json:"allocation_strategy,omitempty"`
	// OnDemandBase units are on-demand; of the units above it, SpotShare
	// percent (0..100) are spot and the rest on-demand.
	OnDemandBase int `json:"on_demand_base,omitempty"`
	SpotShare    int `json:"spot_share,omitempty"`
	// OnLost is OnLostReplace or OnLostFail (also when empty).
	OnLost string `json:"on_lost,omitempty"`
	// SubnetIDs place the instances (a subnet implies its zone).
	SubnetIDs []string `json:"subnet_ids,omitempty"`
	// Launch holds the other launch parameters, passed to RunInstances and
	// CreateFleet as they are (Launch.ImageID is ignored: ImageID is the
	// fleet's image).
	Launch providers.LaunchParams `json:"launch,omitzero"`
	// Tuning holds optional knobs; the zero value is right for production.
	Tuning FleetTuning `json:"tuning"`
	// Resume is internal: the state a run hands to the next one through
	// continue-as-new. Starters leave it nil.
	Resume *FleetState `json:"resume,omitempty"`
}

// FleetTuning holds the workflow's knobs. Zero values mean the defaults.
type FleetTuning struct {
	// PollInterval is the pause between running counts while instances are
	// launching or booting (default 500ms). Time to min is measured at this
	// resolution.
	PollInterval time.Duration `json:"poll_interval_ns"`
	// IdlePollInterval is the pause between running counts when nothing is
	// pending (default 10s).
	IdlePollInterval time.Duration `json:"idle_poll_interval_ns"`
	// MaxFillInFlight bounds the fill activities outstanding at once
	// (default 32): enough to keep the rate-limited queue busy, never
	// thousands of pending activities.
	MaxFillInFlight int `json:"max_fill_in_flight"`
	// ContinueAsNewAfter is how many activities a run schedules before it
	// continues as new (default 500); the server's suggestion also triggers
	// it.
	ContinueAsNewAfter int `json:"continue_as_new_after"`
	// BurstChunk overrides the burst chunk size (see burstChunkSize).
	BurstChunk int `json:"burst_chunk"`
	// UnavailableTTL is how long an offering without capacity is skipped
	// (default DefaultUnavailableTTL).
	UnavailableTTL time.Duration `json:"unavailable_ttl_ns,omitempty"`
	// ReconcileInterval is the pause between the safety-net counts of a
	// fleet that receives instance events (default 30s, jittered by up to
	// a fifth).
	ReconcileInterval time.Duration `json:"reconcile_interval_ns,omitempty"`
}

// FleetState is what one run of LaunchFleetWorkflow hands to the next
// through continue-as-new. It is compact: the live instance ids plus
// counters.
type FleetState struct {
	// Origin is the first run id of the chain. Client tokens and the
	// activities.FleetRunTagKey tag derive from it, never from the current
	// run id, which continue-as-new changes.
	Origin    string    `json:"origin"`
	StartedAt time.Time `json:"started_at"`
	Phase     string    `json:"phase"`
	Target    int       `json:"target"`
	Runs      int       `json:"runs"`

	ReserveAttempts     int    `json:"reserve_attempts"`
	ReservationID       string `json:"reservation_id"`
	ReservationZone     string `json:"reservation_zone"`
	ReservedLeft        int    `json:"reserved_left"`
	ReservationReleased bool   `json:"reservation_released"`

	BurstDone     bool `json:"burst_done"`
	BurstLaunched int  `json:"burst_launched"`
	BurstFailed   int  `json:"burst_failed"`

	FillRound       int           `json:"fill_round"`
	FillLaunched    int           `json:"fill_launched"`
	CapacityRetries int           `json:"capacity_retries"`
	Backoff         time.Duration `json:"backoff_ns"`
	BackoffUntil    time.Time     `json:"backoff_until"`

	// Adopted counts instances found carrying the fleet's tags that no
	// launch reported: their launch's response was lost for good.
	Adopted int `json:"adopted"`

	// InstanceIDs are the live instances, oldest first.
	InstanceIDs []string `json:"instance_ids"`
	// Terminated counts the instances gust terminated (scale down).
	Terminated int `json:"terminated"`

	Running         int       `json:"running"`
	Pending         int       `json:"pending"`
	Gone            int       `json:"gone"`
	MinReachedAt    time.Time `json:"min_reached_at"`
	TargetReachedAt time.Time `json:"target_reached_at"`

	// The rest is kept by fleets of offerings only (versionOfferings).

	// Offerings are the fleet's offerings as the cloud confirmed them,
	// expanded by subnet; Placements say, for each of InstanceIDs (same
	// index), which offering and market it was launched from.
	Offerings  []activities.PreparedOffering `json:"offerings,omitempty"`
	Placements []Placement                   `json:"placements,omitempty"`
	// Reservations hold the minimum's on-demand units.
	Reservations []HeldReservation `json:"reservations,omitempty"`
	// Unavailable are the offerings skipped until their time is up.
	Unavailable []Unavailability `json:"unavailable,omitempty"`
	// SpotBackoff and SpotBackoffUntil are Backoff and BackoffUntil for
	// spot rounds; Backoff and BackoffUntil are on-demand's.
	SpotBackoff      time.Duration `json:"spot_backoff_ns,omitempty"`
	SpotBackoffUntil time.Time     `json:"spot_backoff_until,omitzero"`
	// Replaced counts the instances lost (terminated outside gust, or
	// reclaimed) that the fleet replaced.
	Replaced int `json:"replaced,omitempty"`
}

// Placement is where one instance of a fleet came from.
type Placement struct {
	Offering int  `json:"o"`
	Spot     bool `json:"s,omitempty"`
}

// HeldReservation is one capacity reservation a fleet holds.
type HeldReservation struct {
	Offering int    `json:"offering"`
	ID       string `json:"id"`
	Zone     string `json:"zone"`
	// Left is how many instances the fill may still launch into it (no
	// burst); Released says it was cancelled.
	Left     int  `json:"left"`
	Released bool `json:"released,omitempty"`
}

// Unavailability marks an offering in a market as without capacity until
// Until.
type Unavailability struct {
	Offering int       `json:"offering"`
	Spot     bool      `json:"spot,omitempty"`
	Until    time.Time `json:"until"`
}

// FleetStatus answers StatusQuery.
type FleetStatus struct {
	FleetID string `json:"fleet_id"`
	// Tenant is the tenant whose account the fleet is in; empty for the
	// default tenant.
	Tenant string `json:"tenant,omitempty"`
	// Phase is one of the Phase constants. Its JSON name is "state", as in
	// FleetResult and `gust fleet list`: one name for the fleet's state
	// everywhere.
	Phase  string `json:"state"`
	Min    int    `json:"min"`
	Target int    `json:"target"`
	Burst  bool   `json:"burst"`
	// Launched counts the live instances: launched and not terminated by gust.
	Launched int `json:"launched"`
	// Running and Pending are the last observed counts (polled).
	Running int `json:"running"`
	Pending int `json:"pending"`
	// Terminated counts the instances gust terminated (scale down, cancel).
	Terminated int `json:"terminated"`
	// Kept counts the instances a cancel with keep left running.
	Kept int `json:"kept"`
	// Lost counts instances that left running without gust terminating them.
	Lost          int `json:"lost"`
	BurstLaunched int `json:"burst_launched"`
	BurstFailed   int `json:"burst_failed"`
	FillLaunched  int `json:"fill_launched"`
	FillRounds    int `json:"fill_rounds"`
	// Adopted counts instances found by the fleet's tags whose launch
	// never reported them (a response lost for good); they count as
	// launched, and scale-down terminates the extra.
	Adopted         int    `json:"adopted"`
	InFlight        int    `json:"in_flight"`
	CapacityRetries int    `json:"capacity_retries"`
	ReservationID   string `json:"reservation_id,omitempty"`
	// StartedAt is when the fleet's first run started; TimeToMinMS and
	// TimeToTargetMS are measured from it (see FleetResult).
	StartedAt time.Time `json:"started_at"`
	// MinReachedAt and TargetReachedAt are when a poll first saw Min
	// (Target) reached; nil (JSON null) until then.
	MinReachedAt    *time.Time `json:"min_reached_at"`
	TargetReachedAt *time.Time `json:"target_reached_at"`
	// TimeToMinMS and TimeToTargetMS are FleetResult's; 0 until reached.
	TimeToMinMS    int64  `json:"time_to_min_ms"`
	TimeToTargetMS int64  `json:"time_to_target_ms"`
	Runs           int    `json:"runs"`
	HistoryLength  int    `json:"history_events"`
	Message        string `json:"message,omitempty"`
	// Units are the live capacity units (Launched when every weight is 1),
	// OnDemandUnits and SpotUnits their split by market.
	Units         int `json:"units"`
	OnDemandUnits int `json:"on_demand_units"`
	SpotUnits     int `json:"spot_units"`
	// Replaced counts the instances lost outside gust that were replaced.
	Replaced int `json:"replaced"`
	// Offerings are the per-offering counts of a fleet of offerings;
	// Unavailable the offerings skipped for now.
	Offerings   []OfferingStatus      `json:"offerings,omitempty"`
	Unavailable []UnavailableOffering `json:"unavailable,omitempty"`
	// EventDriven says the fleet learns its instances' states from the
	// cloud's events rather than by polling.
	EventDriven bool `json:"event_driven"`
}

// OfferingStatus is one offering of FleetStatus.
type OfferingStatus struct {
	InstanceType string `json:"instance_type"`
	Zone         string `json:"zone,omitempty"`
	SubnetID     string `json:"subnet_id,omitempty"`
	Weight       int    `json:"weight"`
	// OnDemand and Spot count the live instances.
	OnDemand int `json:"on_demand"`
	Spot     int `json:"spot"`
}

// UnavailableOffering is an offering a fleet skips for LeftMS more.
type UnavailableOffering struct {
	InstanceType string `json:"instance_type"`
	Zone         string `json:"zone,omitempty"`
	Market       string `json:"market"`
	LeftMS       int64  `json:"left_ms"`
}

// UnmarshalJSON reads a FleetStatus, also as older workers answer the
// query: with "phase" for "state", "time_to_min_ns" and "time_to_target_ns"
// in nanoseconds, and 0001-01-01T00:00:00Z for unset times. A CLI that
// queries a worker not yet upgraded so still shows the right values.
func (s *FleetStatus) UnmarshalJSON(data []byte) error {
	type plain FleetStatus // without this method
	var v struct {
		plain
		LegacyPhase        string        `json:"phase"`
		LegacyTimeToMin    time.Duration `json:"time_to_min_ns"`
		LegacyTimeToTarget time.Duration `json:"time_to_target_ns"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = FleetStatus(v.plain)
	if s.Phase == "" {
		s.Phase = v.LegacyPhase
	}
	if s.TimeToMinMS == 0 {
		s.TimeToMinMS = v.LegacyTimeToMin.Milliseconds()
	}
	if s.TimeToTargetMS == 0 {
		s.TimeToTargetMS = v.LegacyTimeToTarget.Milliseconds()
	}
	for _, t := range []**time.Time{&s.MinReachedAt, &s.TargetReachedAt} {
		if *t != nil && (*t).IsZero() {
			*t = nil
		}
	}
	return nil
}

// FleetResult is the workflow's result. The JSON names of the first eight
// fields are a contract: `gust fleet launch --wait --output json` prints it.
type FleetResult struct {
	FleetID string `json:"fleet_id"`
	// State is PhaseFulfilled, PhaseInsufficientCapacity, PhaseCancelled or
	// PhaseFailed.
	State  string `json:"state"`
	Min    int    `json:"min"`
	Target int    `json:"target"`
	// Running is the last observed count of running instances.
	Running     int      `json:"running"`
	InstanceIDs []string `json:"instance_ids"`
	// TimeToMinMS is the time from the fleet's start (the first run's start
	// time, so validation and the reservation count) until a poll first saw
	// at least Min instances running; 0 if it never did. TimeToTargetMS is
	// the same for Target with every instance launched.
	TimeToMinMS    int64 `json:"time_to_min_ms"`
	TimeToTargetMS int64 `json:"time_to_target_ms"`

	Launched      int    `json:"launched"`
	BurstLaunched int    `json:"burst_launched"`
	BurstFailed   int    `json:"burst_failed"`
	FillLaunched  int    `json:"fill_launched"`
	FillRounds    int    `json:"fill_rounds"`
	Adopted       int    `json:"adopted"`
	Terminated    int    `json:"terminated"`
	Kept          int    `json:"kept"`
	Burst         bool   `json:"burst"`
	Runs          int    `json:"runs"`
	HistoryEvents int    `json:"history_events"`
	Message       string `json:"message,omitempty"`
	// Tenant is the tenant whose account the fleet is in; empty for the
	// default tenant.
	Tenant string `json:"tenant,omitempty"`
	// Units and Replaced are FleetStatus's.
	Units    int `json:"units,omitempty"`
	Replaced int `json:"replaced,omitempty"`
}

// ScaleInput changes a running fleet's target. Min <= Target <= MaxFleetSize:
// a fleet never goes below its minimum; cancel it instead.
type ScaleInput struct {
	Target int `json:"target"`
}

// ScaleResult answers ScaleUpdate; `gust fleet scale --output json` prints
// it.
type ScaleResult struct {
	PreviousTarget int `json:"previous_target"`
	Target         int `json:"target"`
	// Launched is the live instance count when the update returned.
	Launched int `json:"launched"`
}

// CancelInput cancels a fleet. Keep leaves its instances running.
type CancelInput struct {
	Keep bool `json:"keep"`
}

// CancelResult answers CancelUpdate; `gust fleet cancel --output json`
// prints it.
type CancelResult struct {
	// Terminated counts the instances the cancel terminated.
	Terminated int `json:"terminated"`
	// Kept counts the instances left running because of Keep.
	Kept int `json:"kept"`
}

var (
	fleetIDRe      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	instanceTypeRe = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
	zoneRe         = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$`)
)

// ValidFleetID reports whether id is a fleet id: 1-128 letters, digits,
// '.', '_' or '-', starting with a letter or digit (so never a '/').
func ValidFleetID(id string) bool { return fleetIDRe.MatchString(id) }

// Validate checks the request without asking the cloud; the workflow also
// checks that the cloud offers InstanceType. Its errors are one-line and
// meant for the user.
func (in LaunchFleetInput) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if in.Tenant != "" {
		if err := ValidateTenantID(in.Tenant); err != nil {
			errs = append(errs, err)
		}
	}
	if !fleetIDRe.MatchString(in.FleetID) {
		bad("fleet id %q must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit", in.FleetID)
	}
	switch {
	case in.InstanceType == "" && len(in.Offerings) == 0:
		bad("instance type is required")
	case in.InstanceType != "" && !instanceTypeRe.MatchString(in.InstanceType):
		bad("instance type %q is not of the form family.size (e.g. m5.large)", in.InstanceType)
	case in.InstanceType != "" && len(in.Offerings) > 0 && in.InstanceType != in.Offerings[0].InstanceType:
		bad("instance type %q must be the first offering's (%q)", in.InstanceType, in.Offerings[0].InstanceType)
	}
	errs = append(errs, in.validateOfferings()...)
	if in.Min < 1 || in.Min > MaxFleetSize {
		bad("min %d must be between 1 and %d", in.Min, MaxFleetSize)
	}
	if in.Target < 1 || in.Target > MaxFleetSize {
		bad("target %d must be between 1 and %d", in.Target, MaxFleetSize)
	}
	if in.Min > in.Target {
		bad("min %d must not exceed target %d", in.Min, in.Target)
	}
	seen := make(map[string]bool, len(in.Zones))
	for _, z := range in.Zones {
		switch {
		case !zoneRe.MatchString(z):
			bad("zone %q is not a zone name (e.g. us-east-1a)", z)
		case seen[z]:
			bad("zone %q is listed twice", z)
		}
		seen[z] = true
	}
	if len(in.ImageID) > 256 || strings.ContainsAny(in.ImageID, " \t\r\n") {
		bad("image id %q is not an image id", in.ImageID)
	}
	if len(in.Tags) > MaxUserTags {
		bad("%d tags: at most %d are allowed", len(in.Tags), MaxUserTags)
	}
	for _, k := range sortedKeys(in.Tags) {
		v := in.Tags[k]
		lower := strings.ToLower(k)
		switch {
		case k == "" || len(k) > 128:
			bad("tag key %q must be 1-128 characters", k)
		case len(v) > 256:
			bad("tag %q: value longer than 256 characters", k)
		case k == providers.FleetTagKey:
			if v != in.FleetID {
				bad("tag %s is set by gust to the fleet id %q", k, in.FleetID)
			}
		case strings.HasPrefix(lower, "gust:"):
			bad("tag key %q: the gust: prefix is reserved", k)
		case strings.HasPrefix(lower, "aws:"):
			bad("tag key %q: the aws: prefix is reserved", k)
		}
	}
	switch in.CapacityPolicy {
	case "", CapacityPolicyFail, CapacityPolicyWait:
	default:
		bad("capacity policy %q must be %q or %q", in.CapacityPolicy, CapacityPolicyFail, CapacityPolicyWait)
	}
	if in.WaitTimeout < 0 {
		bad("wait timeout %s must not be negative", in.WaitTimeout)
	}
	if in.FillTimeout < 0 {
		bad("fill timeout %s must not be negative", in.FillTimeout)
	}
	t := in.Tuning
	if t.PollInterval < 0 || t.IdlePollInterval < 0 || t.MaxFillInFlight < 0 || t.ContinueAsNewAfter < 0 || t.BurstChunk < 0 {
		bad("tuning values must not be negative")
	}
	if in.Resume != nil && in.Resume.Origin == "" {
		bad("resume state without an origin run id")
	}
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, err := range errs {
		msgs[i] = err.Error()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// FleetWorkflowID is the workflow id of tenant's fleet fleetID: the fleet id
// itself for the default tenant (as before tenants existed, so older fleets
// keep their ids), else "TENANT/FLEET_ID". Fleet ids cannot contain '/', so
// no tenant's id can equal another's or a default fleet's.
func FleetWorkflowID(tenant, fleetID string) string {
	if providers.TenantOrDefault(tenant) == providers.DefaultTenant {
		return fleetID
	}
	return tenant + "/" + fleetID
}

// Validate checks a scale request against the fleet's min.
func (in ScaleInput) Validate(minimum int) error {
	if in.Target < minimum || in.Target > MaxFleetSize {
		return fmt.Errorf("target %d must be between the fleet's min %d and %d (cancel the fleet to go below min)", in.Target, minimum, MaxFleetSize)
	}
	return nil
}

// launchTags are the tags on every instance of the fleet: the user's plus
// gust's two.
func (in LaunchFleetInput) launchTags(origin string) map[string]string {
	tags := make(map[string]string, len(in.Tags)+2)
	for _, k := range sortedKeys(in.Tags) {
		tags[k] = in.Tags[k]
	}
	tags[providers.FleetTagKey] = in.FleetID
	tags[activities.FleetRunTagKey] = origin
	return tags
}

// sortedKeys returns m's keys in order, so workflow code never depends on
// map iteration order.
func sortedKeys(m map[string]string) []string {
	return workflow.DeterministicKeys(m)
}
